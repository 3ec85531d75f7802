//! The agent's `--resources` and `--attributes` syntaxes, read as Mesos
//! reads them.
//!
//! `--resources` takes either a JSON array of Mesos `Resource` objects, or
//! text: entries `name(role):value` separated by `;`, where `(role)` is
//! optional and makes a static reservation. A value is
//!
//! * a scalar: `cpus:4`, `mem:1024.5`, `disk:1e4`;
//! * ranges: `ports:[31000-32000,33000-33100]` (coalesced, so overlapping
//!   intervals are fine here);
//! * a set: `zones:{a,b}`.
//!
//! Spaces inside a value are ignored, and so are blank entries (`cpus:1; `,
//! which Mesos would reject). Whatever parses is then validated as
//! Mesos validates flag resources: valid roles, no value that rounds to
//! zero, no duplicate set items, and one type per resource name.
//!
//! `--attributes` uses the same values without roles, plus text
//! (`rack:r1`); Mesos does not support sets there.
//!
//! Data flows text → `TextValue` (Mesos's `values::parse`) → domain
//! [`Value`] → validated [`Resource`] → [`Resources`].

use std::collections::BTreeMap;

use pando_proto::mesos::v1 as pb;

use crate::error::{ResourcesError, Result};
use crate::ranges::Ranges;
use crate::resource::{Reservation, Resource, Value};
use crate::resources::Resources;
use crate::role;
use crate::scalar::Scalar;
use crate::set::Set;

/// A value in Mesos's text syntax, before it becomes a resource or an
/// attribute.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TextValue {
    /// A finite, non-negative number, kept as written for attributes.
    Scalar(f64),
    /// Intervals in the order written; not yet checked for inversion.
    Ranges(Vec<(u64, u64)>),
    /// Items in the order written, repeats included.
    Set(Vec<String>),
    /// Anything else.
    Text(String),
}

/// Parses one value the way Mesos's `values::parse` does: spaces removed,
/// brackets balanced, `[...]` ranges, `{...}` a set, a number a scalar,
/// anything else text. The error is a reason, without the input.
pub(crate) fn parse_value(text: &str) -> std::result::Result<TextValue, String> {
    let text: String = text.chars().filter(|c| *c != ' ').collect();
    if text.is_empty() {
        return Err("expecting a non-empty value".into());
    }
    for (open, close) in [('{', '}'), ('[', ']'), ('(', ')')] {
        if !brackets_match(&text, open, close) {
            return Err("mismatched brackets".into());
        }
    }
    match (text.find('['), text.find('{')) {
        (Some(0), _) => parse_ranges(&text).map(TextValue::Ranges),
        (Some(_), _) => Err("unexpected '[' found".into()),
        (None, Some(0)) => Ok(TextValue::Set(
            text.split(['{', '}', ',', '\n'])
                .filter(|t| !t.is_empty())
                .map(str::to_string)
                .collect(),
        )),
        (None, Some(_)) => Err("unexpected '{' found".into()),
        (None, None) => match text.parse::<f64>() {
            Ok(number) => check_input_scalar(number).map(|()| TextValue::Scalar(number)),
            Err(_) => Ok(TextValue::Text(text)),
        },
    }
}

/// Mesos's `validateInputScalarValue`: numbers typed by a person must be
/// finite, normal (or zero) and non-negative.
fn check_input_scalar(number: f64) -> std::result::Result<(), String> {
    if number.is_nan() {
        Err("NaN is not supported".into())
    } else if number.is_infinite() {
        Err("infinite values are not supported".into())
    } else if number.is_subnormal() {
        Err("subnormal values are not supported".into())
    } else if number < 0.0 {
        Err("negative values are not supported".into())
    } else {
        Ok(())
    }
}

fn brackets_match(text: &str, open: char, close: char) -> bool {
    let mut depth: i64 = 0;
    for c in text.chars() {
        if c == open {
            depth += 1;
        } else if c == close {
            depth -= 1;
        }
        if depth < 0 {
            return false;
        }
    }
    depth == 0
}

/// Ranges as Mesos tokenizes them: every `[`, `]`, `-`, `,` separates
/// numbers, which pair up into intervals.
fn parse_ranges(text: &str) -> std::result::Result<Vec<(u64, u64)>, String> {
    let numbers: Vec<&str> = text
        .split(['[', ']', '-', ',', '\n'])
        .filter(|t| !t.is_empty())
        .collect();
    let pairs = numbers.chunks_exact(2);
    if !pairs.remainder().is_empty() {
        return Err(format!(
            "ranges '{text}' must be pairs of numbers such as [1-10,20-30]"
        ));
    }
    let number = |token: &str| {
        parse_u64(token)
            .ok_or_else(|| format!("expecting non-negative integers in ranges, found '{token}'"))
    };
    pairs
        .map(|pair| Ok((number(pair[0])?, number(pair[1])?)))
        .collect()
}

/// A decimal or `0x` hexadecimal integer.
fn parse_u64(token: &str) -> Option<u64> {
    match token
        .strip_prefix("0x")
        .or_else(|| token.strip_prefix("0X"))
    {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => token.parse().ok(),
    }
}

fn parse_error(input: &str, reason: impl Into<String>) -> ResourcesError {
    ResourcesError::Parse {
        input: input.to_string(),
        reason: reason.into(),
    }
}

impl Resources {
    /// Parses an agent's `--resources`: a JSON array of `Resource` objects,
    /// or Mesos text syntax. Unreserved entries stay unreserved.
    pub fn parse(input: &str) -> Result<Resources> {
        Resources::parse_with_default_role(input, role::UNRESERVED)
    }

    /// Parses `--resources` as Mesos does with a `--default_role`: entries
    /// that name no role are statically reserved for `default_role`
    /// (unless it is `*`). Errors name the bad entry.
    pub fn parse_with_default_role(input: &str, default_role: &str) -> Result<Resources> {
        let resources = match serde_json::from_str::<serde_json::Value>(input) {
            Ok(serde_json::Value::Array(items)) => parse_json_items(&items, default_role)?,
            _ => parse_text(input, default_role)?,
        };
        let mut all = Resources::new();
        let mut types: BTreeMap<String, &'static str> = BTreeMap::new();
        for (input, resource) in resources {
            check_command_line(&input, &resource, &mut types)?;
            all.add(resource);
        }
        Ok(all)
    }

    /// Parses a JSON array of Mesos `Resource` objects, as `--resources`
    /// accepts it.
    pub fn parse_json(input: &str) -> Result<Resources> {
        match serde_json::from_str::<serde_json::Value>(input) {
            Ok(serde_json::Value::Array(_)) => Resources::parse(input),
            Ok(_) => Err(parse_error(input, "expecting a JSON array of resources")),
            Err(e) => Err(parse_error(input, format!("malformed JSON: {e}"))),
        }
    }
}

/// Mesos's `validateCommandLineResources`: flags cannot declare persistent
/// volumes, revocable resources or dynamic reservations, and a name keeps
/// one type.
fn check_command_line(
    input: &str,
    resource: &Resource,
    types: &mut BTreeMap<String, &'static str>,
) -> Result<()> {
    if resource.is_persistent_volume() {
        return Err(parse_error(
            input,
            "persistent volumes cannot be specified at the command line",
        ));
    }
    if resource.revocable {
        return Err(parse_error(
            input,
            "revocable resources cannot be specified at the command line",
        ));
    }
    if resource.is_dynamically_reserved() {
        return Err(parse_error(
            input,
            "dynamic reservations cannot be specified at the command line",
        ));
    }
    let kind = resource.value.type_name();
    match types.get(&resource.name) {
        Some(known) if *known != kind => Err(parse_error(
            input,
            format!(
                "resources with the same name ('{}') but different types ({known} and {kind}) \
                 are not allowed",
                resource.name
            ),
        )),
        Some(_) => Ok(()),
        None => {
            types.insert(resource.name.clone(), kind);
            Ok(())
        }
    }
}

fn parse_json_items(
    items: &[serde_json::Value],
    default_role: &str,
) -> Result<Vec<(String, Resource)>> {
    let mut resources = Vec::with_capacity(items.len());
    for item in items {
        let input = item.to_string();
        let mut proto: pb::Resource = pando_proto::json::from_json_value(item)
            .map_err(|e| parse_error(&input, format!("not a valid Resource: {e}")))?;
        #[allow(deprecated)]
        if proto.role.is_none() && proto.reservations.is_empty() {
            proto.role = Some(default_role.to_string());
        }
        let resource =
            Resource::from_proto(&proto).map_err(|e| parse_error(&input, e.to_string()))?;
        resources.push((input, resource));
    }
    Ok(resources)
}

fn parse_text(input: &str, default_role: &str) -> Result<Vec<(String, Resource)>> {
    let mut resources = Vec::new();
    for token in input.split(';').filter(|t| !t.trim().is_empty()) {
        let resource = parse_entry(token, default_role)?;
        resources.push((token.trim().to_string(), resource));
    }
    Ok(resources)
}

/// One `name(role):value` entry.
fn parse_entry(token: &str, default_role: &str) -> Result<Resource> {
    let shown = token.trim();
    let parts: Vec<&str> = token.split(':').filter(|p| !p.is_empty()).collect();
    let [head, value] = parts.as_slice() else {
        return Err(parse_error(shown, "missing or extra ':'"));
    };
    let (name, role) = match head.find('(') {
        None => (head.trim(), default_role),
        Some(open) => {
            let close = head
                .find(')')
                .filter(|close| *close > open)
                .ok_or_else(|| parse_error(shown, "mismatched parentheses"))?;
            (head[..open].trim(), head[open + 1..close].trim())
        }
    };
    if name.is_empty() {
        return Err(parse_error(shown, "empty resource name"));
    }
    let value = match parse_value(value).map_err(|reason| parse_error(shown, reason))? {
        TextValue::Scalar(number) => {
            let amount = Scalar::from_f64(number).map_err(|e| parse_error(shown, e.to_string()))?;
            if amount.is_zero() && number != 0.0 {
                return Err(parse_error(
                    shown,
                    format!("scalar {number} is below the 0.001 resolution of resources"),
                ));
            }
            Value::Scalar(amount)
        }
        TextValue::Ranges(intervals) => Value::Ranges(
            Ranges::from_intervals(intervals).map_err(|e| parse_error(shown, e.to_string()))?,
        ),
        TextValue::Set(items) => Value::Set(
            Set::from_items_strict(items).map_err(|e| parse_error(shown, e.to_string()))?,
        ),
        TextValue::Text(text) => {
            return Err(parse_error(
                shown,
                format!("value '{text}' is not a number, ranges or a set"),
            ))
        }
    };
    let mut resource = Resource::new(name, value);
    if role != role::UNRESERVED {
        resource
            .push_reservation(Reservation::static_for(role))
            .map_err(|e| parse_error(shown, e.to_string()))?;
    }
    Ok(resource)
}

/// Parses an agent's `--attributes`, e.g. `rack:r1;zone:a;level:5`, into
/// Mesos attributes of type TEXT, SCALAR or RANGES, as Mesos's
/// `Attributes::parse` does: entries are separated by `;` or newlines, the
/// name is everything before the first `:` (kept as written), and spaces in
/// the value are dropped. Sets are rejected, as Mesos does not support them
/// in attributes.
pub fn parse_attributes(input: &str) -> Result<Vec<pb::Attribute>> {
    use pb::value::Type;
    let mut attributes = Vec::new();
    for token in input.split([';', '\n']).filter(|t| !t.is_empty()) {
        let error = |reason: String| ResourcesError::ParseAttribute {
            input: token.to_string(),
            reason,
        };
        let Some((name, value)) = token.split_once(':') else {
            return Err(error("expecting 'name:value'".into()));
        };
        if name.is_empty() {
            return Err(error("empty attribute name".into()));
        }
        if value.is_empty() {
            return Err(error("empty attribute value".into()));
        }
        let mut attribute = pb::Attribute {
            name: name.to_string(),
            ..Default::default()
        };
        match parse_value(value).map_err(error)? {
            TextValue::Scalar(number) => {
                attribute.r#type = Type::Scalar as i32;
                attribute.scalar = Some(pb::value::Scalar { value: number });
            }
            TextValue::Ranges(intervals) => {
                let ranges = Ranges::from_intervals(intervals).map_err(|e| error(e.to_string()))?;
                attribute.r#type = Type::Ranges as i32;
                attribute.ranges = Some(pb::value::Ranges {
                    range: ranges
                        .iter()
                        .map(|(begin, end)| pb::value::Range { begin, end })
                        .collect(),
                });
            }
            TextValue::Set(_) => {
                return Err(error("attributes cannot be sets".into()));
            }
            TextValue::Text(text) => {
                attribute.r#type = Type::Text as i32;
                attribute.text = Some(pb::value::Text { value: text });
            }
        }
        attributes.push(attribute);
    }
    Ok(attributes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::DiskInfo;

    fn parse(text: &str) -> Resources {
        Resources::parse(text).unwrap()
    }

    #[test]
    fn parses_the_mesos_text_form() {
        let r = parse("cpus:4;mem:8192;ports:[31000-32000];cpus(role):2;zones:{a, b}");
        assert_eq!(r.cpus(), Scalar::from_units(6));
        assert_eq!(r.reserved(Some("role")).cpus(), Scalar::from_units(2));
        assert_eq!(r.ports().count(), 1001);
        assert_eq!(r.len(), 5);
        assert_eq!(parse("cpus(*):1"), parse("cpus:1"));
        assert_eq!(parse(" cpus : 1 ; mem:2;"), parse("cpus:1;mem:2"));
        assert!(parse("").is_empty());
        assert!(
            parse("cpus:0;zones:{}").is_empty(),
            "empty values are dropped"
        );
    }

    #[test]
    fn values_parse_like_mesos() {
        assert_eq!(parse_value("1e3"), Ok(TextValue::Scalar(1000.0)));
        assert_eq!(parse_value(" 1 . 5 "), Ok(TextValue::Scalar(1.5)));
        assert_eq!(
            parse_value("[1-2, 0x10-0x11]"),
            Ok(TextValue::Ranges(vec![(1, 2), (16, 17)]))
        );
        assert_eq!(
            parse_value("[1,2]"),
            Ok(TextValue::Ranges(vec![(1, 2)])),
            "Mesos separates range numbers by any of '-' and ','"
        );
        assert_eq!(parse_value("[]"), Ok(TextValue::Ranges(vec![])));
        assert_eq!(
            parse_value("{b,a}"),
            Ok(TextValue::Set(vec!["b".into(), "a".into()]))
        );
        assert_eq!(parse_value("r 1"), Ok(TextValue::Text("r1".into())));
        for bad in [
            "", "[1-2", "{a", "a[1]", "a{b}", "[1-2-3]", "[a-b]", "-1", "inf", "nan", "1e-320",
        ] {
            assert!(parse_value(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn text_ranges_are_coalesced() {
        let r = parse("ports:[1-5,3-9,10-10]");
        assert_eq!(r.ports().intervals(), &[(1, 10)]);
    }

    #[test]
    fn default_role_reserves_unnamed_entries() {
        let r = Resources::parse_with_default_role("cpus:1;mem(*):2;disk(ops):3", "eng").unwrap();
        assert_eq!(r.reserved(Some("eng")).cpus(), Scalar::from_units(1));
        assert_eq!(r.unreserved().mem(), Scalar::from_units(2));
        assert_eq!(r.reserved(Some("ops")).disk(), Scalar::from_units(3));
    }

    #[test]
    fn parses_the_json_form() {
        let json = r#"[{"name":"cpus","type":"SCALAR","scalar":{"value":4}},
                       {"name":"ports","type":"RANGES","ranges":{"range":[{"begin":1,"end":9}]},"role":"eng"},
                       {"name":"mem","type":"SCALAR","scalar":{"value":"64"},
                        "reservations":[{"type":"STATIC","role":"eng"}]}]"#;
        let r = parse(json);
        assert_eq!(r.cpus(), Scalar::from_units(4));
        assert_eq!(r.reserved(Some("eng")).ports().count(), 9);
        assert_eq!(r.len(), 3);
        assert!(parse("[]").is_empty());
        let reserved = Resources::parse_with_default_role(
            r#"[{"name":"cpus","type":"SCALAR","scalar":{"value":1}}]"#,
            "eng",
        )
        .unwrap();
        assert_eq!(reserved.reserved(Some("eng")).cpus(), Scalar::from_units(1));
        assert!(Resources::parse_json("{}").is_err());
    }

    #[test]
    fn flags_cannot_declare_what_only_operations_create() {
        let dynamic = r#"[{"name":"cpus","type":"SCALAR","scalar":{"value":1},
                          "reservations":[{"type":"DYNAMIC","role":"eng"}]}]"#;
        assert!(Resources::parse(dynamic)
            .unwrap_err()
            .to_string()
            .contains("dynamic"));
        let refined = r#"[{"name":"cpus","type":"SCALAR","scalar":{"value":1},
                          "reservations":[{"type":"STATIC","role":"eng"},
                                          {"type":"DYNAMIC","role":"eng/a"}]}]"#;
        assert!(Resources::parse(refined)
            .unwrap_err()
            .to_string()
            .contains("dynamic"));
        let revocable = r#"[{"name":"cpus","type":"SCALAR","scalar":{"value":1},"revocable":{}}]"#;
        assert!(Resources::parse(revocable)
            .unwrap_err()
            .to_string()
            .contains("revocable"));
        let volume = r#"[{"name":"disk","type":"SCALAR","scalar":{"value":1},"role":"eng",
                         "disk":{"persistence":{"id":"v"}}}]"#;
        assert!(Resources::parse(volume)
            .unwrap_err()
            .to_string()
            .contains("persistent"));
        let mount = r#"[{"name":"disk","type":"SCALAR","scalar":{"value":100},
                        "disk":{"source":{"type":"MOUNT","mount":{"root":"/mnt/1"}}}}]"#;
        let disks = parse(mount);
        let disk: Option<&DiskInfo> = disks.iter().next().and_then(|r| r.disk.as_ref());
        assert!(disk.is_some());
    }

    #[test]
    fn errors_name_the_bad_part() {
        for (input, needles) in [
            (
                "cpus:abc",
                &["'cpus:abc'", "value 'abc' is not a number"][..],
            ),
            ("cpus:1;mem", &["'mem'", "missing or extra ':'"]),
            ("cpus:1:2", &["extra ':'"]),
            ("cpus:-1", &["'cpus:-1'", "negative"]),
            ("cpus:0.0001", &["resolution"]),
            ("ports:[5-1]", &["'ports:[5-1]'", "begin is after end"]),
            ("ports:[1-x]", &["non-negative integers", "'x'"]),
            ("zones:{a,a}", &["duplicate item 'a'"]),
            ("cpus(a b):1", &["'a b'"]),
            ("cpus():1", &["empty string"]),
            ("cpus(eng:1", &["parentheses"]),
            ("(eng):1", &["empty resource name"]),
            ("cpus:1;cpus:[1-2]", &["different types"]),
            ("[{\"name\":\"cpus\"}]", &["{\"name\":\"cpus\"}", "type"]),
            (
                "[{\"name\":\"cpus\",\"type\":\"SCALAR\",\"scalar\":{\"value\":-1}}]",
                &["negative"],
            ),
        ] {
            let error = Resources::parse(input).unwrap_err().to_string();
            for needle in needles {
                assert!(error.contains(needle), "{input}: {error}");
            }
        }
    }

    #[test]
    fn parses_attributes_by_value_shape() {
        use pb::value::Type;
        let attrs = parse_attributes("rack:r1;level:5;ports:[1-2]\nurl:http://x").unwrap();
        let types: Vec<i32> = attrs.iter().map(|a| a.r#type).collect();
        assert_eq!(
            types,
            vec![
                Type::Text as i32,
                Type::Scalar as i32,
                Type::Ranges as i32,
                Type::Text as i32
            ]
        );
        assert_eq!(attrs[1].scalar, Some(pb::value::Scalar { value: 5.0 }));
        assert_eq!(
            attrs[3].text,
            Some(pb::value::Text {
                value: "http://x".into()
            })
        );
        let spaced = parse_attributes("rack: r 1").unwrap();
        assert_eq!(
            spaced[0].text.as_ref().map(|t| t.value.as_str()),
            Some("r1")
        );
        for bad in ["rack", ":r1", "rack:", "zones:{a,b}", "level:-1", "p:[2-1]"] {
            let error = parse_attributes(bad).unwrap_err().to_string();
            assert!(error.starts_with("invalid attribute"), "{bad}: {error}");
        }
        assert!(parse_attributes("").unwrap().is_empty());
    }
}
