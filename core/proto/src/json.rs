//! The Mesos JSON codec: protobuf messages to and from JSON, exactly as a
//! Mesos 1.11 master or agent writes and reads them.
//!
//! Mesos does not use the proto3 JSON mapping. It walks each message's
//! descriptor and writes:
//!
//! * fields in **declaration order** (the order in the `.proto` file, not by
//!   field number), under their **proto names** (`framework_id`);
//! * a field if it is set, a repeated field if it is non-empty, and an unset
//!   optional field if it has an explicit `[default = ...]` and is not
//!   deprecated (so `Filters.refuse_seconds` appears as `5.0` when unset);
//! * enums as their value names, `bytes` as standard base64, and every integer
//!   (64-bit ones too) as a bare JSON number;
//! * doubles the way rapidjson prints them (`1.0`, `0.1`, `1e21`).
//!
//! Reading is just as lenient as Mesos: keys that name no field are ignored,
//! `null` leaves a field unset, numbers and booleans may come as strings, a
//! scalar given for a repeated field adds one element, and an unknown enum
//! name leaves an optional field unset (a required one is an error). After
//! reading, every required field must be present, and the error names the
//! missing ones by path.
//!
//! Both directions go through [`prost_reflect::DynamicMessage`], using the
//! descriptors that the build script compiled from our `.proto` files, so
//! the generated prost types and the JSON view can never disagree.

use std::fmt::Write as _;

use base64::Engine as _;
use prost::Message as _;
use prost_reflect::ReflectMessage as _;
use prost_reflect::{
    Cardinality, DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, Value,
};
use serde_json::Value as Json;

use crate::descriptor_pool;

/// Why JSON could not become a protobuf message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    /// The bytes were not JSON at all.
    #[error("malformed JSON: {0}")]
    Syntax(String),
    /// The top-level value was not an object.
    #[error("expecting a JSON object")]
    NotAnObject,
    /// A field held a value of the wrong JSON type or an unusable value.
    #[error("failed to parse field '{path}': {reason}")]
    Field {
        /// The dotted path of the field, e.g. `subscribe.framework_info.name`.
        path: String,
        /// What was wrong with it.
        reason: String,
    },
    /// Required fields were missing after parsing.
    #[error("missing required fields: {}", .0.join(", "))]
    MissingRequired(Vec<String>),
    /// The message type is not in the descriptor pool (a build defect).
    #[error("unknown message type '{0}'")]
    UnknownType(String),
}

/// The descriptor of a generated message type.
pub fn descriptor_of<M: prost::Name>() -> Result<MessageDescriptor, JsonError> {
    let name = M::full_name();
    descriptor_pool()
        .get_message_by_name(&name)
        .ok_or(JsonError::UnknownType(name))
}

/// Converts a generated message to its dynamic, descriptor-driven form.
pub fn to_dynamic<M: prost::Message + prost::Name>(message: &M) -> DynamicMessage {
    let descriptor = descriptor_of::<M>()
        .expect("every generated type is compiled into the descriptor pool by build.rs");
    DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice())
        .expect("bytes prost encoded decode under the same schema")
}

/// Encodes a generated message as Mesos JSON.
pub fn to_json<M: prost::Message + prost::Name>(message: &M) -> String {
    let mut out = String::with_capacity(256);
    write_message(&to_dynamic(message), &mut out);
    out
}

/// Encodes a generated message as a `serde_json::Value`, for embedding in a
/// larger hand-built document such as `/master/state`.
pub fn to_json_value<M: prost::Message + prost::Name>(message: &M) -> Json {
    serde_json::from_str(&to_json(message))
        .expect("the JSON writer emits valid JSON for every message")
}

/// Decodes Mesos JSON bytes into a generated message.
pub fn from_json<M: prost::Message + prost::Name + Default>(bytes: &[u8]) -> Result<M, JsonError> {
    let json: Json = serde_json::from_slice(bytes).map_err(|e| JsonError::Syntax(e.to_string()))?;
    from_json_value(&json)
}

/// Decodes an already-parsed JSON value into a generated message.
pub fn from_json_value<M: prost::Message + prost::Name + Default>(
    json: &Json,
) -> Result<M, JsonError> {
    let descriptor = descriptor_of::<M>()?;
    let dynamic = dynamic_from_json(descriptor, json)?;
    let missing = missing_required_fields(&dynamic);
    if !missing.is_empty() {
        return Err(JsonError::MissingRequired(missing));
    }
    // The dynamic message was built from the same descriptors as `M`, so its
    // bytes always decode; a failure here is reported rather than trusted.
    M::decode(dynamic.encode_to_vec().as_slice()).map_err(|e| JsonError::Field {
        path: String::new(),
        reason: e.to_string(),
    })
}

/// Parses JSON into a dynamic message of the given type, without checking
/// required fields.
pub fn dynamic_from_json(
    descriptor: MessageDescriptor,
    json: &Json,
) -> Result<DynamicMessage, JsonError> {
    let Json::Object(object) = json else {
        return Err(JsonError::NotAnObject);
    };
    let mut message = DynamicMessage::new(descriptor);
    merge_object(&mut message, object, &Path::Root)?;
    Ok(message)
}

/// Lists the paths of required fields that are unset, anywhere in the
/// message, in the style of protobuf's `InitializationErrorString`.
pub fn missing_required_fields(message: &DynamicMessage) -> Vec<String> {
    let mut missing = Vec::new();
    collect_missing(message, &Path::Root, &mut missing);
    missing
}

fn collect_missing(message: &DynamicMessage, path: &Path<'_>, missing: &mut Vec<String>) {
    let meta = meta_of(&message.descriptor());
    // Most messages hold no required field at any depth (a DECLINE's
    // filters, a task's resources): they need no walk at all.
    if !meta.requires {
        return;
    }
    for declared in &meta.fields {
        let field = &declared.field;
        let has = message.has_field(field);
        if !has {
            if field.cardinality() == Cardinality::Required {
                missing.push(Path::Field(path, field.name()).render());
            }
            continue;
        }
        if !declared.requires {
            continue;
        }
        let path = Path::Field(path, field.name());
        match &*message.get_field(field) {
            Value::Message(inner) => collect_missing(inner, &path, missing),
            Value::List(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let Value::Message(inner) = item {
                        collect_missing(inner, &Path::Index(&path, i), missing);
                    }
                }
            }
            Value::Map(entries) => {
                for (key, value) in entries {
                    if let Value::Message(inner) = value {
                        let key = map_key_text(key);
                        collect_missing(inner, &Path::Key(&path, &key), missing);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Where a value sits in the document, built as the reader descends and
/// turned into text (`subscribe.framework_info.name`, `resources[2]`) only
/// when an error has to name it.
enum Path<'a> {
    /// The top-level object.
    Root,
    /// A field of the object at the parent path.
    Field(&'a Path<'a>, &'a str),
    /// An element of the repeated field at the parent path.
    Index(&'a Path<'a>, usize),
    /// An entry of the map field at the parent path.
    Key(&'a Path<'a>, &'a str),
}

impl Path<'_> {
    fn render(&self) -> String {
        let mut out = String::new();
        self.render_into(&mut out);
        out
    }

    fn render_into(&self, out: &mut String) {
        match self {
            Path::Root => {}
            Path::Field(parent, name) => {
                parent.render_into(out);
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(name);
            }
            Path::Index(parent, i) => {
                parent.render_into(out);
                let _ = write!(out, "[{i}]");
            }
            Path::Key(parent, key) => {
                parent.render_into(out);
                let _ = write!(out, "[{key}]");
            }
        }
    }
}

/// What the codec needs to know about one message type, worked out once
/// from its descriptor instead of on every message.
struct MessageMeta {
    /// The fields in declaration order, which is the order Mesos writes
    /// them in (the descriptor's own iterator goes by field number).
    fields: Vec<DeclaredField>,
    /// Whether this message, or any message reachable from it, declares a
    /// required field: if not, the required-field check skips it.
    requires: bool,
}

/// One field of a [`MessageMeta`].
struct DeclaredField {
    field: FieldDescriptor,
    /// Whether an unset value is still written (see [`emits_default`]).
    emits_default: bool,
    /// Whether the field's message type (if any) has required fields at
    /// some depth.
    requires: bool,
}

/// The metadata of every message type in the pool, keyed by full name.
fn meta_table() -> &'static std::collections::HashMap<String, MessageMeta> {
    static TABLE: std::sync::OnceLock<std::collections::HashMap<String, MessageMeta>> =
        std::sync::OnceLock::new();
    TABLE.get_or_init(build_meta_table)
}

fn build_meta_table() -> std::collections::HashMap<String, MessageMeta> {
    use std::collections::{HashMap, HashSet};
    let messages: Vec<MessageDescriptor> = descriptor_pool().all_messages().collect();
    // A type "requires" if it declares a required field or holds a type
    // that does; types can nest themselves, so iterate to a fixed point.
    let mut requires: HashSet<String> = messages
        .iter()
        .filter(|m| m.fields().any(|f| f.cardinality() == Cardinality::Required))
        .map(|m| m.full_name().to_string())
        .collect();
    loop {
        let before = requires.len();
        for m in &messages {
            if requires.contains(m.full_name()) {
                continue;
            }
            let holds = m.fields().any(|f| match f.kind() {
                Kind::Message(inner) => requires.contains(inner.full_name()),
                _ => false,
            });
            if holds {
                requires.insert(m.full_name().to_string());
            }
        }
        if requires.len() == before {
            break;
        }
    }
    let mut table = HashMap::with_capacity(messages.len());
    for m in &messages {
        let fields = m
            .descriptor_proto()
            .field
            .iter()
            .filter_map(|f| u32::try_from(f.number()).ok())
            .filter_map(|number| m.get_field(number))
            .map(|field| DeclaredField {
                emits_default: emits_default(&field),
                requires: match field.kind() {
                    Kind::Message(inner) => requires.contains(inner.full_name()),
                    _ => false,
                },
                field,
            })
            .collect();
        table.insert(
            m.full_name().to_string(),
            MessageMeta {
                fields,
                requires: requires.contains(m.full_name()),
            },
        );
    }
    table
}

/// The metadata of one message type.
fn meta_of(descriptor: &MessageDescriptor) -> &'static MessageMeta {
    meta_table()
        .get(descriptor.full_name())
        .expect("every message type in the pool has metadata, built from the same pool")
}

// ---------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------

/// Writes a dynamic message as Mesos JSON into `out`.
pub fn write_message(message: &DynamicMessage, out: &mut String) {
    out.push('{');
    let mut first = true;
    for declared in &meta_of(&message.descriptor()).fields {
        let field = &declared.field;
        let value = if field.is_list() || field.is_map() {
            match &*message.get_field(field) {
                Value::List(items) if items.is_empty() => continue,
                Value::Map(entries) if entries.is_empty() => continue,
                _ => message.get_field(field),
            }
        } else if declared.emits_default || message.has_field(field) {
            message.get_field(field)
        } else {
            continue;
        };
        if !first {
            out.push(',');
        }
        first = false;
        write_string(field.name(), out);
        out.push(':');
        write_value(&field.kind(), &value, out);
    }
    out.push('}');
}

/// Mesos writes an unset optional field when it declares an explicit default
/// and is not deprecated.
fn emits_default(field: &FieldDescriptor) -> bool {
    let proto = field.field_descriptor_proto();
    let deprecated = proto
        .options
        .as_ref()
        .and_then(|o| o.deprecated)
        .unwrap_or(false);
    proto.default_value.is_some() && !deprecated
}

fn write_value(kind: &Kind, value: &Value, out: &mut String) {
    match value {
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::I32(n) => write_display(n, out),
        Value::I64(n) => write_display(n, out),
        Value::U32(n) => write_display(n, out),
        Value::U64(n) => write_display(n, out),
        Value::F32(f) => write_double(f64::from(*f), out),
        Value::F64(f) => write_double(*f, out),
        Value::String(s) => write_string(s, out),
        Value::Bytes(b) => write_string(&base64::engine::general_purpose::STANDARD.encode(b), out),
        Value::EnumNumber(number) => match kind.as_enum().and_then(|e| e.get_value(*number)) {
            Some(v) => write_string(v.name(), out),
            // A number this schema does not know: keep it rather than lie.
            None => write_display(number, out),
        },
        Value::Message(inner) => write_message(inner, out),
        Value::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(kind, item, out);
            }
            out.push(']');
        }
        Value::Map(entries) => {
            let value_kind = match kind {
                Kind::Message(entry) => entry.map_entry_value_field().kind(),
                other => other.clone(),
            };
            let mut sorted: Vec<(&MapKey, &Value)> = entries.iter().collect();
            sorted.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, value)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(&map_key_text(key), out);
                out.push(':');
                write_value(&value_kind, value, out);
            }
            out.push('}');
        }
    }
}

fn map_key_text(key: &MapKey) -> String {
    match key {
        MapKey::Bool(b) => b.to_string(),
        MapKey::I32(n) => n.to_string(),
        MapKey::I64(n) => n.to_string(),
        MapKey::U32(n) => n.to_string(),
        MapKey::U64(n) => n.to_string(),
        MapKey::String(s) => s.clone(),
    }
}

fn write_display(value: impl std::fmt::Display, out: &mut String) {
    // Writing to a String cannot fail.
    let _ = write!(out, "{value}");
}

/// Writes a JSON string with the escapes rapidjson uses: `"` and `\`, the
/// short forms for backspace, form feed, newline, return and tab, and
/// `\u00XX` (upper-case hex) for the other control characters.
pub fn write_string(s: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.reserve(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0C}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let b = c as u32 as usize;
                out.push_str("\\u00");
                out.push(char::from(HEX[b >> 4]));
                out.push(char::from(HEX[b & 0xF]));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Writes a double as rapidjson's `Writer::Double` does: the shortest digits
/// that round-trip, laid out as a decimal with at least one fractional digit
/// (`1.0`, `0.001`) up to 21 integer digits, and in exponent form beyond
/// (`1e21`, `1.5e-7`). rapidjson refuses NaN and the infinities (a Mesos
/// master would abort); we write the strings Mesos's parser understands,
/// `"Infinity"` and `"-Infinity"`, and `"NaN"` for NaN.
pub fn write_double(value: f64, out: &mut String) {
    if value.is_nan() {
        out.push_str("\"NaN\"");
        return;
    }
    if value.is_infinite() {
        out.push_str(if value > 0.0 {
            "\"Infinity\""
        } else {
            "\"-Infinity\""
        });
        return;
    }
    if value == 0.0 {
        out.push_str(if value.is_sign_negative() {
            "-0.0"
        } else {
            "0.0"
        });
        return;
    }
    if value < 0.0 {
        out.push('-');
    }
    let mut buffer = ryu::Buffer::new();
    let (digits, k) = shortest_digits(buffer.format_finite(value.abs()));
    let length = digits.len() as i32;
    let kk = length + k;
    if k >= 0 && kk <= 21 {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', k as usize));
        out.push_str(".0");
    } else if 0 < kk && kk <= 21 {
        let (int, frac) = digits.split_at(kk as usize);
        out.push_str(int);
        out.push('.');
        out.push_str(frac);
    } else if -6 < kk && kk <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-kk) as usize));
        out.push_str(&digits);
    } else {
        let (first, rest) = digits.split_at(1);
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        out.push('e');
        write_display(kk - 1, out);
    }
}

/// Splits ryu's output into significant digits (no leading or trailing
/// zeros) and a decimal exponent `k`, so that the value is `digits × 10^k`.
fn shortest_digits(text: &str) -> (String, i32) {
    let (mantissa, exponent) = match text.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        None => (text, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let mut digits: String = int.chars().chain(frac.chars()).collect();
    let mut k = exponent - frac.len() as i32;
    let trimmed_start = digits.trim_start_matches('0').len();
    digits = digits[digits.len() - trimmed_start..].to_string();
    while digits.ends_with('0') && digits.len() > 1 {
        digits.pop();
        k += 1;
    }
    (digits, k)
}

// ---------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------

fn merge_object(
    message: &mut DynamicMessage,
    object: &serde_json::Map<String, Json>,
    path: &Path<'_>,
) -> Result<(), JsonError> {
    let descriptor = message.descriptor();
    for (name, json) in object {
        // Mesos looks fields up by their proto name and ignores the rest.
        let Some(field) = descriptor.get_field_by_name(name) else {
            continue;
        };
        merge_field(message, &field, json, &Path::Field(path, name))?;
    }
    Ok(())
}

fn merge_field(
    message: &mut DynamicMessage,
    field: &FieldDescriptor,
    json: &Json,
    path: &Path<'_>,
) -> Result<(), JsonError> {
    if json.is_null() {
        return Ok(());
    }
    if field.is_map() {
        let Json::Object(entries) = json else {
            return Err(field_error(path, "expecting a JSON object for a map field"));
        };
        let Kind::Message(entry) = field.kind() else {
            return Err(field_error(path, "map field without an entry type"));
        };
        let key_field = entry.map_entry_key_field();
        let value_field = entry.map_entry_value_field();
        for (key, value) in entries {
            let entry_path = Path::Key(path, key);
            let key = parse_map_key(&key_field.kind(), key)
                .ok_or_else(|| field_error(&entry_path, "invalid map key"))?;
            let Some(value) = parse_single(&value_field, value, &entry_path)? else {
                continue;
            };
            if let Value::Map(map) = message.get_field_mut(field) {
                map.insert(key, value);
            }
        }
        return Ok(());
    }
    if field.is_list() {
        let items: Vec<&Json> = match json {
            Json::Array(items) => items.iter().collect(),
            // Mesos adds a lone value to a repeated field as one element.
            other => vec![other],
        };
        for (i, item) in items.into_iter().enumerate() {
            let item_path = Path::Index(path, i);
            if let Json::Array(_) = item {
                return Err(field_error(&item_path, "nested arrays are not allowed"));
            }
            if let Some(value) = parse_single(field, item, &item_path)? {
                if let Value::List(list) = message.get_field_mut(field) {
                    list.push(value);
                }
            }
        }
        return Ok(());
    }
    if let Json::Array(_) = json {
        return Err(field_error(path, "not expecting a JSON array"));
    }
    if let Some(value) = parse_single(field, json, path)? {
        message.set_field(field, value);
    }
    Ok(())
}

fn field_error(path: &Path<'_>, reason: impl Into<String>) -> JsonError {
    JsonError::Field {
        path: path.render(),
        reason: reason.into(),
    }
}

fn parse_map_key(kind: &Kind, key: &str) -> Option<MapKey> {
    Some(match kind {
        Kind::String => MapKey::String(key.to_string()),
        Kind::Bool => MapKey::Bool(key.parse().ok()?),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => MapKey::I32(key.parse().ok()?),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => MapKey::I64(key.parse().ok()?),
        Kind::Uint32 | Kind::Fixed32 => MapKey::U32(key.parse().ok()?),
        Kind::Uint64 | Kind::Fixed64 => MapKey::U64(key.parse().ok()?),
        _ => return None,
    })
}

/// Parses one (non-repeated) JSON value for `field`. `Ok(None)` means the
/// value is to be dropped, as Mesos drops `null` and unknown enum names of
/// optional fields.
fn parse_single(
    field: &FieldDescriptor,
    json: &Json,
    path: &Path<'_>,
) -> Result<Option<Value>, JsonError> {
    if json.is_null() {
        return Ok(None);
    }
    let kind = field.kind();
    let value = match (&kind, json) {
        (Kind::Message(descriptor), Json::Object(object)) => {
            let mut inner = DynamicMessage::new(descriptor.clone());
            merge_object(&mut inner, object, path)?;
            Value::Message(inner)
        }
        (Kind::Message(_), _) => {
            return Err(field_error(
                path,
                format!("expecting a JSON object, got {}", json_type(json)),
            ))
        }
        (Kind::String, Json::String(s)) => Value::String(s.clone()),
        (Kind::Bytes, Json::String(s)) => {
            let bytes = base64_engine()
                .decode(s.as_bytes())
                .map_err(|e| field_error(path, format!("invalid base64: {e}")))?;
            Value::Bytes(bytes.into())
        }
        (Kind::Enum(descriptor), Json::String(name)) => match descriptor.get_value_by_name(name) {
            Some(v) => Value::EnumNumber(v.number()),
            None if field.cardinality() == Cardinality::Required => {
                return Err(field_error(path, format!("unknown enum value '{name}'")))
            }
            None => return Ok(None),
        },
        (Kind::Bool, Json::Bool(b)) => Value::Bool(*b),
        (Kind::Bool, Json::String(s)) => match s.as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return Err(field_error(path, format!("'{s}' is not a JSON boolean"))),
        },
        (Kind::Double | Kind::Float, _) => {
            let number = json_number(json, true).ok_or_else(|| {
                field_error(path, format!("expecting a number, got {}", json_type(json)))
            })?;
            match kind {
                Kind::Float => Value::F32(number.as_f64() as f32),
                _ => Value::F64(number.as_f64()),
            }
        }
        (
            Kind::Int32
            | Kind::Sint32
            | Kind::Sfixed32
            | Kind::Int64
            | Kind::Sint64
            | Kind::Sfixed64
            | Kind::Uint32
            | Kind::Fixed32
            | Kind::Uint64
            | Kind::Fixed64,
            _,
        ) => {
            let number = json_number(json, false).ok_or_else(|| {
                field_error(
                    path,
                    format!("expecting an integer, got {}", json_type(json)),
                )
            })?;
            integer_value(&kind, &number).ok_or_else(|| {
                field_error(
                    path,
                    format!("{} is out of range or not an integer", number.text()),
                )
            })?
        }
        _ => {
            return Err(field_error(
                path,
                format!("not expecting a JSON {} for this field", json_type(json)),
            ))
        }
    };
    Ok(Some(value))
}

fn base64_engine() -> base64::engine::GeneralPurpose {
    base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    )
}

fn json_type(json: &Json) -> &'static str {
    match json {
        Json::Null => "null",
        Json::Bool(_) => "boolean",
        Json::Number(_) => "number",
        Json::String(_) => "string",
        Json::Array(_) => "array",
        Json::Object(_) => "object",
    }
}

/// A JSON number, or a string holding one (which Mesos accepts).
enum Number {
    Int(i128),
    Float(f64),
}

impl Number {
    fn as_f64(&self) -> f64 {
        match self {
            Number::Int(n) => *n as f64,
            Number::Float(f) => *f,
        }
    }

    fn text(&self) -> String {
        match self {
            Number::Int(n) => n.to_string(),
            Number::Float(f) => f.to_string(),
        }
    }
}

fn json_number(json: &Json, allow_special: bool) -> Option<Number> {
    match json {
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                Some(Number::Int(i128::from(i)))
            } else if let Some(u) = n.as_u64() {
                Some(Number::Int(i128::from(u)))
            } else {
                n.as_f64().map(Number::Float)
            }
        }
        Json::String(s) if allow_special && s == "Infinity" => Some(Number::Float(f64::INFINITY)),
        Json::String(s) if allow_special && s == "-Infinity" => {
            Some(Number::Float(f64::NEG_INFINITY))
        }
        Json::String(s) => match serde_json::from_str::<Json>(s.trim()) {
            Ok(inner @ Json::Number(_)) => json_number(&inner, false),
            _ => None,
        },
        _ => None,
    }
}

fn integer_value(kind: &Kind, number: &Number) -> Option<Value> {
    let whole: i128 = match number {
        Number::Int(n) => *n,
        // 5.0 is an integer; 5.5 is not.
        Number::Float(f) if f.is_finite() && f.fract() == 0.0 && f.abs() < 1.8e19 => *f as i128,
        Number::Float(_) => return None,
    };
    Some(match kind {
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Value::I32(i32::try_from(whole).ok()?),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Value::I64(i64::try_from(whole).ok()?),
        Kind::Uint32 | Kind::Fixed32 => Value::U32(u32::try_from(whole).ok()?),
        Kind::Uint64 | Kind::Fixed64 => Value::U64(u64::try_from(whole).ok()?),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn double(value: f64) -> String {
        let mut out = String::new();
        write_double(value, &mut out);
        out
    }

    #[test]
    fn doubles_print_as_rapidjson_does() {
        for (value, expected) in [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (5.0, "5.0"),
            (0.5, "0.5"),
            (1024.0, "1024.0"),
            (31000.0, "31000.0"),
            (123.456, "123.456"),
            (0.001, "0.001"),
            (0.0000012, "0.0000012"),
            (1.2e-7, "1.2e-7"),
            (1e-7, "1e-7"),
            (1e20, "100000000000000000000.0"),
            (1e21, "1e21"),
            (1.5e300, "1.5e300"),
            (-2.5, "-2.5"),
            (0.0, "0.0"),
            (1479243221.03466, "1479243221.03466"),
            (f64::NAN, "\"NaN\""),
            (f64::NEG_INFINITY, "\"-Infinity\""),
        ] {
            assert_eq!(double(value), expected, "{value:e}");
        }
    }

    #[test]
    fn strings_escape_as_rapidjson_does() {
        let mut out = String::new();
        write_string("a\"b\\c\n\t\u{1}/é", &mut out);
        assert_eq!(out, "\"a\\\"b\\\\c\\n\\t\\u0001/é\"");
    }
}
