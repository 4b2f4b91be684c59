//! Severity rules: configuration decides which events are warnings or critical. An event's
//! severity is the highest of the matching rules' (and of the one the device sent, if any).

use serde::Deserialize;

use crate::events::{FieldValue, Severity};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Op {
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = "==")]
    Eq,
    #[serde(rename = "!=")]
    Ne,
}

/// `[[telemetry.severity_rules]]` in `runledger.toml`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Only events of this kind; any kind when absent.
    #[serde(default)]
    pub kind: Option<String>,
    pub field: String,
    pub op: Op,
    pub value: FieldValue,
    pub severity: Severity,
}

impl Rule {
    fn new(kind: Option<&str>, field: &str, op: Op, value: FieldValue, s: Severity) -> Rule {
        Rule {
            kind: kind.map(str::to_string),
            field: field.to_string(),
            op,
            value,
            severity: s,
        }
    }

    fn matches(&self, kind: &str, fields: &[(String, FieldValue)]) -> bool {
        if self.kind.as_deref().is_some_and(|k| k != kind) {
            return false;
        }
        let Ok(i) = fields.binary_search_by(|(k, _)| k.as_str().cmp(&self.field)) else {
            return false;
        };
        let ord = match (&fields[i].1, &self.value) {
            (FieldValue::Number(a), FieldValue::Number(b)) => a.partial_cmp(b),
            (FieldValue::Bool(a), FieldValue::Bool(b)) => Some(a.cmp(b)),
            (FieldValue::Text(a), FieldValue::Text(b)) => Some(a.cmp(b)),
            _ => None,
        };
        let Some(ord) = ord else { return false };
        match self.op {
            Op::Gt => ord.is_gt(),
            Op::Ge => ord.is_ge(),
            Op::Lt => ord.is_lt(),
            Op::Le => ord.is_le(),
            Op::Eq => ord.is_eq(),
            Op::Ne => ord.is_ne(),
        }
    }
}

/// The defaults cover the drowsiness detector: a drowsy detection is a warning, eyes closed
/// for two seconds or more is critical; a low battery or a slow inference is a warning.
pub fn default_rules() -> Vec<Rule> {
    use FieldValue::{Bool, Number};
    vec![
        Rule::new(
            Some("detection"),
            "is_drowsy",
            Op::Eq,
            Bool(true),
            Severity::Warning,
        ),
        Rule::new(
            Some("detection"),
            "duration_ms",
            Op::Ge,
            Number(2000.0),
            Severity::Critical,
        ),
        Rule::new(None, "battery", Op::Le, Number(10.0), Severity::Warning),
        Rule::new(
            None,
            "latency_ms",
            Op::Ge,
            Number(1000.0),
            Severity::Warning,
        ),
    ]
}

/// Severity of an event with these (sorted) fields.
pub fn derive(
    rules: &[Rule],
    kind: &str,
    fields: &[(String, FieldValue)],
    floor: Severity,
) -> Severity {
    rules
        .iter()
        .filter(|r| r.matches(kind, fields))
        .map(|r| r.severity)
        .fold(floor, Severity::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(v: &[(&str, FieldValue)]) -> Vec<(String, FieldValue)> {
        let mut f: Vec<_> = v.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        f.sort_by(|a, b| a.0.cmp(&b.0));
        f
    }

    #[test]
    fn long_closed_eyes_are_critical() {
        let rules = default_rules();
        let f = fields(&[
            ("duration_ms", FieldValue::Number(2500.0)),
            ("is_drowsy", FieldValue::Bool(true)),
        ]);
        assert_eq!(
            derive(&rules, "detection", &f, Severity::Info),
            Severity::Critical
        );
        let f = fields(&[
            ("duration_ms", FieldValue::Number(800.0)),
            ("is_drowsy", FieldValue::Bool(true)),
        ]);
        assert_eq!(
            derive(&rules, "detection", &f, Severity::Info),
            Severity::Warning
        );
        // The same fields on another kind match only the kind-free rules.
        assert_eq!(
            derive(&rules, "inference", &f, Severity::Info),
            Severity::Info
        );
    }

    #[test]
    fn device_severity_is_a_floor_and_types_must_match() {
        let rules = default_rules();
        let f = fields(&[("battery", FieldValue::Text("low".into()))]);
        assert_eq!(
            derive(&rules, "heartbeat", &f, Severity::Info),
            Severity::Info
        );
        assert_eq!(
            derive(&rules, "heartbeat", &f, Severity::Critical),
            Severity::Critical
        );
    }

    #[test]
    fn rules_parse_from_toml() {
        #[derive(Deserialize)]
        struct T {
            severity_rules: Vec<Rule>,
        }
        let t: T = toml::from_str(
            "[[severity_rules]]\nfield = \"temp_c\"\nop = \">\"\nvalue = 80\nseverity = \"critical\"\n",
        )
        .unwrap();
        assert_eq!(t.severity_rules[0].op, Op::Gt);
        assert_eq!(t.severity_rules[0].value, FieldValue::Number(80.0));
    }
}
