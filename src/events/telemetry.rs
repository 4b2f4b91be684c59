//! Payload types of telemetry events: severity, typed field values, one recorded event.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Severity of a telemetry event, derived by the configured rules.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Default,
    Serialize,
    Deserialize,
    JsonSchema,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    #[default]
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        [Severity::Info, Severity::Warning, Severity::Critical]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// A typed telemetry field value: a JSON boolean, number or string.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema, utoipa::ToSchema)]
#[serde(untagged)]
pub enum FieldValue {
    Bool(bool),
    Number(f64),
    Text(String),
}

/// Decoded by the JSON token's type. A derived untagged decoder tries each variant in turn
/// and formats an error message for every miss, which dominated the projector's profile.
impl<'de> Deserialize<'de> for FieldValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = FieldValue;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a boolean, number or string")
            }
            fn visit_bool<E>(self, v: bool) -> Result<FieldValue, E> {
                Ok(FieldValue::Bool(v))
            }
            fn visit_f64<E>(self, v: f64) -> Result<FieldValue, E> {
                Ok(FieldValue::Number(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<FieldValue, E> {
                Ok(FieldValue::Number(v as f64))
            }
            fn visit_u64<E>(self, v: u64) -> Result<FieldValue, E> {
                Ok(FieldValue::Number(v as f64))
            }
            fn visit_str<E>(self, v: &str) -> Result<FieldValue, E> {
                Ok(FieldValue::Text(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<FieldValue, E> {
                Ok(FieldValue::Text(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// One validated telemetry event as recorded (server time is the envelope's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TelemetryRecord {
    #[schemars(with = "String")]
    pub event_id: Uuid,
    /// Device time, epoch milliseconds.
    pub ts: i64,
    pub kind: String,
    pub model_name: Option<String>,
    pub model_version: Option<String>,
    pub severity: Severity,
    /// Sorted by name; names are snake_case. A JSON object on the wire.
    #[serde(with = "fields_as_map")]
    #[schemars(with = "std::collections::BTreeMap<String, FieldValue>")]
    pub fields: Vec<(String, FieldValue)>,
}

/// Fields are kept as a sorted vector (cheap to build and scan) but written as a JSON object.
mod fields_as_map {
    use super::FieldValue;
    use serde::de::{MapAccess, Visitor};
    use serde::ser::SerializeMap;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[(String, FieldValue)], s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(v.len()))?;
        for (k, val) in v {
            map.serialize_entry(k, val)?;
        }
        map.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Vec<(String, FieldValue)>, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Vec<(String, FieldValue)>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of typed fields")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(m.size_hint().unwrap_or(4));
                while let Some(entry) = m.next_entry::<String, FieldValue>()? {
                    out.push(entry);
                }
                Ok(out)
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use super::FieldValue;

    #[test]
    fn field_values_decode_by_json_type() {
        let v: Vec<FieldValue> = serde_json::from_str(r#"[true, 3, -2, 0.5, "x"]"#).unwrap();
        assert_eq!(
            v,
            [
                FieldValue::Bool(true),
                FieldValue::Number(3.0),
                FieldValue::Number(-2.0),
                FieldValue::Number(0.5),
                FieldValue::Text("x".into())
            ]
        );
        assert!(serde_json::from_str::<FieldValue>("null").is_err());
        assert!(serde_json::from_str::<FieldValue>("[1]").is_err());
    }
}
