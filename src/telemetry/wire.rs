//! Request bodies as devices send them: one JSON event, a JSON array, or NDJSON. Each event is
//! read into raw key/value pairs without judging them, so one bad event can be reported by
//! index while its neighbours are still accepted.

use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// A JSON value as far as telemetry cares: scalars, or the kind of a nested value.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Null,
    Bool(bool),
    Number(f64),
    Text(String),
    /// An object or array, which no telemetry field may hold.
    Nested(&'static str),
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_bool<E>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar::Number(v as f64))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar::Number(v as f64))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar::Number(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar::Text(v.to_string()))
            }
            fn visit_string<E>(self, v: String) -> Result<Scalar, E> {
                Ok(Scalar::Text(v))
            }
            fn visit_unit<E>(self) -> Result<Scalar, E> {
                Ok(Scalar::Null)
            }
            fn visit_none<E>(self) -> Result<Scalar, E> {
                Ok(Scalar::Null)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Scalar, A::Error> {
                while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Scalar::Nested("an object"))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Scalar, A::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Scalar::Nested("an array"))
            }
        }
        d.deserialize_any(V)
    }
}

/// One event as sent: its top-level keys in order. A nested `fields` object is flattened
/// into the same list, so `{"fields": {"x": 1}}` and `{"x": 1}` mean the same.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RawEvent {
    pub entries: Vec<(String, Scalar)>,
    /// Set when the element was not a JSON object at all.
    pub not_an_object: Option<&'static str>,
}

impl<'de> Deserialize<'de> for RawEvent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawEvent;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a telemetry event object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<RawEvent, A::Error> {
                let mut entries = Vec::with_capacity(12);
                while let Some(key) = m.next_key::<String>()? {
                    if key == "fields" {
                        match m.next_value::<FieldsObject>()? {
                            FieldsObject::Map(inner) => entries.extend(inner),
                            FieldsObject::Other(s) => entries.push((key, s)),
                        }
                    } else {
                        entries.push((key, m.next_value::<Scalar>()?));
                    }
                }
                Ok(RawEvent {
                    entries,
                    not_an_object: None,
                })
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<RawEvent, A::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(not_object("an array"))
            }
            fn visit_bool<E>(self, _: bool) -> Result<RawEvent, E> {
                Ok(not_object("a boolean"))
            }
            fn visit_i64<E>(self, _: i64) -> Result<RawEvent, E> {
                Ok(not_object("a number"))
            }
            fn visit_u64<E>(self, _: u64) -> Result<RawEvent, E> {
                Ok(not_object("a number"))
            }
            fn visit_f64<E>(self, _: f64) -> Result<RawEvent, E> {
                Ok(not_object("a number"))
            }
            fn visit_str<E>(self, _: &str) -> Result<RawEvent, E> {
                Ok(not_object("a string"))
            }
            fn visit_unit<E>(self) -> Result<RawEvent, E> {
                Ok(not_object("null"))
            }
        }
        d.deserialize_any(V)
    }
}

fn not_object(kind: &'static str) -> RawEvent {
    RawEvent {
        entries: vec![],
        not_an_object: Some(kind),
    }
}

/// The value of a `fields` key: an object of fields, or something else (reported later).
enum FieldsObject {
    Map(Vec<(String, Scalar)>),
    Other(Scalar),
}

impl<'de> Deserialize<'de> for FieldsObject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = FieldsObject;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of fields")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<FieldsObject, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = m.next_entry::<String, Scalar>()? {
                    out.push(entry);
                }
                Ok(FieldsObject::Map(out))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<FieldsObject, A::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(FieldsObject::Other(Scalar::Nested("an array")))
            }
            fn visit_bool<E>(self, v: bool) -> Result<FieldsObject, E> {
                Ok(FieldsObject::Other(Scalar::Bool(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<FieldsObject, E> {
                Ok(FieldsObject::Other(Scalar::Number(v as f64)))
            }
            fn visit_u64<E>(self, v: u64) -> Result<FieldsObject, E> {
                Ok(FieldsObject::Other(Scalar::Number(v as f64)))
            }
            fn visit_f64<E>(self, v: f64) -> Result<FieldsObject, E> {
                Ok(FieldsObject::Other(Scalar::Number(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<FieldsObject, E> {
                Ok(FieldsObject::Other(Scalar::Text(v.to_string())))
            }
            fn visit_unit<E>(self) -> Result<FieldsObject, E> {
                Ok(FieldsObject::Map(vec![]))
            }
        }
        d.deserialize_any(V)
    }
}

/// A body that is not JSON at all (or a JSON array with a syntax error).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("body is not valid JSON: {0}")]
pub struct SyntaxError(pub String);

/// One event: `{...}`.
pub fn parse_single(body: &[u8]) -> Result<RawEvent, SyntaxError> {
    serde_json::from_slice(body).map_err(|e| SyntaxError(e.to_string()))
}

/// A batch: `[{...}, ...]`.
pub fn parse_array(body: &[u8]) -> Result<Vec<RawEvent>, SyntaxError> {
    serde_json::from_slice(body).map_err(|e| SyntaxError(e.to_string()))
}

/// NDJSON: one event per non-empty line. A line that is not JSON becomes an `Err` at its
/// index, so it is reported like any other invalid event.
pub fn parse_ndjson(body: &[u8]) -> Vec<Result<RawEvent, SyntaxError>> {
    body.split(|b| *b == b'\n')
        .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
        .map(|line| serde_json::from_slice(line).map_err(|e| SyntaxError(e.to_string())))
        .collect()
}

/// The JSON Schema of one event as devices send it (documentation and client generation;
/// the parser above is what enforces it, with per-field errors).
#[derive(schemars::JsonSchema)]
#[schemars(title = "TelemetryEvent")]
#[allow(dead_code)]
struct EventSchema {
    /// Client-made UUID; an id already accepted is counted once.
    #[schemars(with = "String")]
    event_id: uuid::Uuid,
    /// Device time: RFC 3339, or epoch milliseconds.
    ts: TimeSchema,
    /// What happened: lowercase a-z, 0-9, `_ . -`, e.g. `detection`, `inference`, `heartbeat`.
    kind: String,
    /// Defaults to the device's registered model.
    model_name: Option<String>,
    model_version: Option<String>,
    /// A floor: the server's rules may raise it.
    severity: Option<crate::events::Severity>,
    /// Typed fields may also be given here instead of at the top level.
    fields: Option<std::collections::BTreeMap<String, crate::events::FieldValue>>,
    /// Any other key is a typed field: snake_case name, a number, boolean or string.
    #[serde(flatten)]
    extra: std::collections::BTreeMap<String, crate::events::FieldValue>,
}

#[derive(schemars::JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum TimeSchema {
    Rfc3339(String),
    EpochMillis(i64),
}

pub const SCHEMA_FILE: &str = "telemetry-event.schema.json";

pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(EventSchema)).unwrap_or_default()
}

/// Write the telemetry event schema into `dir`; returns the file written.
pub fn write_schema(dir: &std::path::Path) -> std::io::Result<std::path::PathBuf> {
    crate::events::write_schema_file(dir, SCHEMA_FILE, &json_schema())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run `runledger schemas` when this fails.
    #[test]
    fn committed_schema_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("schemas")
            .join(SCHEMA_FILE);
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        let current = crate::events::schema_text(&json_schema());
        assert!(
            committed == current,
            "schemas/ is stale: run `runledger schemas`"
        );
    }

    #[test]
    fn flat_and_nested_fields_read_the_same() {
        let a = parse_single(br#"{"kind":"x","ear_value":0.2}"#).unwrap();
        let b = parse_single(br#"{"kind":"x","fields":{"ear_value":0.2}}"#).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.entries[1], ("ear_value".into(), Scalar::Number(0.2)));
    }

    #[test]
    fn nested_values_and_non_objects_are_kept_for_reporting() {
        let batch = parse_array(br#"[{"a":{"b":1},"c":[1]}, 5, "s"]"#).unwrap();
        assert_eq!(batch[0].entries[0].1, Scalar::Nested("an object"));
        assert_eq!(batch[0].entries[1].1, Scalar::Nested("an array"));
        assert_eq!(batch[1].not_an_object, Some("a number"));
        assert_eq!(batch[2].not_an_object, Some("a string"));
    }

    #[test]
    fn syntax_errors() {
        assert!(parse_array(b"[{").is_err());
        let lines = parse_ndjson(b"{\"a\":1}\n\n{oops\n{\"b\":true}\n");
        assert_eq!(lines.len(), 3);
        assert!(lines[1].is_err());
        assert_eq!(
            lines[2].as_ref().unwrap().entries[0],
            ("b".into(), Scalar::Bool(true))
        );
    }
}
