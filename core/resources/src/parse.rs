//! The agent's `--resources` and `--attributes` syntaxes.
//!
//! Resources come in Mesos's text form, `name(role):value` separated by
//! `;`, where a value is a number (`cpus:4`), ranges (`ports:[31000-32000]`)
//! or a set (`zones:{a,b}`), and `(role)` makes a static reservation; or as a
//! JSON array of Mesos `Resource` objects. Attributes use the same text form
//! without roles, and a value that is neither number, ranges nor set is text.

use std::collections::BTreeSet;

use pando_proto::mesos::v1 as pb;

use crate::error::{ResourcesError, Result};
use crate::ranges::Ranges;
use crate::resource::{Reservation, Resource, Value};
use crate::resources::Resources;
use crate::role;
use crate::scalar::Scalar;

fn parse_error(input: &str, reason: impl Into<String>) -> ResourcesError {
    ResourcesError::Parse {
        input: input.to_string(),
        reason: reason.into(),
    }
}

/// A value in the text syntax.
enum TextValue {
    Scalar(f64),
    Ranges(Vec<(u64, u64)>),
    Set(Vec<String>),
    Text(String),
}

fn parse_value(token: &str, text: &str) -> Result<TextValue> {
    let text = text.trim();
    if let Some(inner) = text.strip_prefix('[') {
        let inner = inner
            .strip_suffix(']')
            .ok_or_else(|| parse_error(token, "ranges must end with ']'"))?;
        let mut ranges = Vec::new();
        for part in inner.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (begin, end) = part
                .split_once('-')
                .ok_or_else(|| parse_error(token, format!("range '{part}' is not 'begin-end'")))?;
            let number = |s: &str| {
                s.trim().parse::<u64>().map_err(|_| {
                    parse_error(token, format!("'{s}' in range '{part}' is not a number"))
                })
            };
            ranges.push((number(begin)?, number(end)?));
        }
        return Ok(TextValue::Ranges(ranges));
    }
    if let Some(inner) = text.strip_prefix('{') {
        let inner = inner
            .strip_suffix('}')
            .ok_or_else(|| parse_error(token, "sets must end with '}'"))?;
        let items = inner
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        return Ok(TextValue::Set(items));
    }
    match text.parse::<f64>() {
        Ok(n)
            if text
                .chars()
                .all(|c| c.is_ascii_digit() || c == '.' || c == '-') =>
        {
            Ok(TextValue::Scalar(n))
        }
        _ => Ok(TextValue::Text(text.to_string())),
    }
}

impl Resources {
    /// Parses an agent's `--resources`: Mesos text syntax, or a JSON array of
    /// `Resource` objects. Errors name the bad part.
    pub fn parse(input: &str) -> Result<Resources> {
        let trimmed = input.trim();
        if trimmed.starts_with('[') && trimmed.contains('{') && trimmed.contains('"') {
            return Resources::parse_json(trimmed);
        }
        let mut all = Resources::new();
        for token in trimmed.split(';').map(str::trim).filter(|t| !t.is_empty()) {
            all.add(parse_resource(token)?);
        }
        Ok(all)
    }

    /// Parses a JSON array of Mesos `Resource` objects.
    pub fn parse_json(input: &str) -> Result<Resources> {
        let json: serde_json::Value = serde_json::from_str(input)
            .map_err(|e| parse_error(input, format!("bad JSON: {e}")))?;
        let items = json
            .as_array()
            .ok_or_else(|| parse_error(input, "expecting a JSON array of resources"))?;
        let mut all = Resources::new();
        for (i, item) in items.iter().enumerate() {
            let proto: pb::Resource = pando_proto::json::from_json_value(item)
                .map_err(|e| parse_error(&format!("resource #{i}"), e.to_string()))?;
            all.add(Resource::from_proto(&proto)?);
        }
        Ok(all)
    }
}

fn parse_resource(token: &str) -> Result<Resource> {
    let (head, value) = token
        .split_once(':')
        .ok_or_else(|| parse_error(token, "missing ':' between name and value"))?;
    if value.contains(':') {
        return Err(parse_error(token, "extra ':'"));
    }
    let (name, role) = match head.find('(') {
        None => (head.trim(), None),
        Some(open) => {
            let close = head
                .find(')')
                .filter(|close| *close > open)
                .ok_or_else(|| parse_error(token, "mismatched parentheses"))?;
            (head[..open].trim(), Some(head[open + 1..close].trim()))
        }
    };
    if name.is_empty() {
        return Err(parse_error(token, "empty resource name"));
    }
    let value = match parse_value(token, value)? {
        TextValue::Scalar(n) => {
            Value::Scalar(Scalar::from_f64(n).map_err(|e| parse_error(token, e.to_string()))?)
        }
        TextValue::Ranges(r) => Value::Ranges(
            Ranges::from_intervals_strict(r).map_err(|e| parse_error(token, e.to_string()))?,
        ),
        TextValue::Set(items) => Value::Set(items.into_iter().collect::<BTreeSet<_>>()),
        TextValue::Text(t) => {
            return Err(parse_error(
                token,
                format!("value '{t}' is not a number, ranges or a set"),
            ))
        }
    };
    let mut resource = Resource::new(name, value);
    if let Some(role) = role.filter(|r| *r != role::UNRESERVED) {
        role::validate(role).map_err(|e| parse_error(token, e.to_string()))?;
        resource.reservations.push(Reservation::static_for(role));
    }
    Ok(resource)
}

/// Parses an agent's `--attributes`, e.g. `rack:r1;zone:a;level:5`, into
/// Mesos attributes of type TEXT, SCALAR, RANGES or SET.
pub fn parse_attributes(input: &str) -> Result<Vec<pb::Attribute>> {
    use pb::value::Type;
    let mut attributes = Vec::new();
    for token in input.split(';').map(str::trim).filter(|t| !t.is_empty()) {
        let (name, value) = token
            .split_once(':')
            .ok_or_else(|| parse_error(token, "missing ':' between name and value"))?;
        let name = name.trim();
        if name.is_empty() {
            return Err(parse_error(token, "empty attribute name"));
        }
        let mut attribute = pb::Attribute {
            name: name.to_string(),
            ..Default::default()
        };
        match parse_value(token, value)? {
            TextValue::Scalar(n) => {
                Scalar::from_f64(n).map_err(|e| parse_error(token, e.to_string()))?;
                attribute.r#type = Type::Scalar as i32;
                attribute.scalar = Some(pb::value::Scalar { value: n });
            }
            TextValue::Ranges(r) => {
                let ranges = Ranges::from_intervals_strict(r)
                    .map_err(|e| parse_error(token, e.to_string()))?;
                attribute.r#type = Type::Ranges as i32;
                attribute.ranges = Some(crate::proto::ranges_to_proto(&ranges));
            }
            TextValue::Set(items) => {
                attribute.r#type = Type::Set as i32;
                attribute.set = Some(pb::value::Set { item: items });
            }
            TextValue::Text(text) => {
                if text.is_empty() {
                    return Err(parse_error(token, "empty attribute value"));
                }
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

    #[test]
    fn parses_the_mesos_text_form() {
        let r = Resources::parse("cpus:4;mem:8192;ports:[31000-32000];cpus(role):2;zones:{a, b}")
            .unwrap();
        assert_eq!(r.cpus(), Scalar::from_millis(6000));
        assert_eq!(r.reserved(Some("role")).cpus(), Scalar::from_millis(2000));
        assert_eq!(r.ports().count(), 1001);
        assert_eq!(r.len(), 5);
        assert_eq!(
            Resources::parse("cpus(*):1").unwrap(),
            Resources::parse("cpus:1").unwrap()
        );
    }

    #[test]
    fn parses_the_json_form() {
        let json = r#"[{"name":"cpus","type":"SCALAR","scalar":{"value":4}},
                       {"name":"ports","type":"RANGES","ranges":{"range":[{"begin":1,"end":9}]},"role":"eng"}]"#;
        let r = Resources::parse(json).unwrap();
        assert_eq!(r.cpus(), Scalar::from_millis(4000));
        assert_eq!(r.reserved(Some("eng")).ports().count(), 9);
    }

    #[test]
    fn errors_name_the_bad_part() {
        for (input, needle) in [
            ("cpus:abc", "cpus:abc"),
            ("cpus:1;mem", "mem"),
            ("cpus:-1", "cpus:-1"),
            ("ports:[5-1]", "ports:[5-1]"),
            ("ports:[1-5,3-9]", "overlapping"),
            ("cpus(a b):1", "a b"),
            ("cpus(eng:1", "parentheses"),
            ("[{\"name\":\"cpus\"}]", "resource #0"),
        ] {
            let error = Resources::parse(input).unwrap_err().to_string();
            assert!(error.contains(needle), "{input}: {error}");
        }
    }

    #[test]
    fn parses_attributes_by_value_shape() {
        let attrs = parse_attributes("rack:r1;level:5;ports:[1-2];zones:{a,b}").unwrap();
        let types: Vec<i32> = attrs.iter().map(|a| a.r#type).collect();
        use pb::value::Type;
        assert_eq!(
            types,
            vec![
                Type::Text as i32,
                Type::Scalar as i32,
                Type::Ranges as i32,
                Type::Set as i32
            ]
        );
        assert!(parse_attributes("rack").is_err());
    }
}
