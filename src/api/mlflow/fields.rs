//! Reading MLflow request messages: JSON bodies for POST, query strings for GET, with
//! proto-JSON leniency (int64 as number or string, doubles as "NaN"/"Infinity") and errors
//! that name the field.

use actix_web::http::header::CONTENT_TYPE;
use actix_web::HttpRequest;
use serde_json::{Map, Value};

use crate::api::error::MlflowError;
use crate::events::KeyValue;

pub struct Fields(Map<String, Value>);

fn missing(name: &str) -> MlflowError {
    MlflowError::invalid(format!(
        "Missing value for required parameter '{name}'. See the API docs for more information about request parameters."
    ))
}

fn bad_type(name: &str, want: &str, got: &Value) -> MlflowError {
    MlflowError::invalid(format!(
        "Invalid value {got} for parameter '{name}' supplied: expected {want}"
    ))
}

impl Fields {
    /// A POST body; MLflow requires `Content-Type: application/json`.
    pub fn from_body(req: &HttpRequest, body: &[u8]) -> Result<Fields, MlflowError> {
        let ct = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !ct.to_ascii_lowercase().starts_with("application/json") {
            return Err(MlflowError::invalid(
                "Content-Type must be one of ['application/json']",
            ));
        }
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Fields(Map::new()));
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(m)) => Ok(Fields(m)),
            Ok(_) => Err(MlflowError::invalid("Request body must be a JSON object")),
            Err(e) => Err(MlflowError::invalid(format!(
                "Malformed JSON request body: {e}"
            ))),
        }
    }

    /// A GET query string; repeated keys become arrays.
    pub fn from_query(req: &HttpRequest) -> Result<Fields, MlflowError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(req.query_string())
            .map_err(|e| MlflowError::invalid(format!("Malformed query string: {e}")))?;
        let mut m = Map::new();
        for (k, v) in pairs {
            match m.get_mut(&k) {
                Some(Value::Array(a)) => a.push(Value::String(v)),
                Some(prev) => {
                    let first = prev.take();
                    *prev = Value::Array(vec![first, Value::String(v)]);
                }
                None => {
                    m.insert(k, Value::String(v));
                }
            }
        }
        Ok(Fields(m))
    }

    fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }

    pub fn opt_str(&self, name: &str) -> Result<Option<String>, MlflowError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v @ (Value::Number(_) | Value::Bool(_))) => Ok(Some(v.to_string())),
            Some(v) => Err(bad_type(name, "a string", v)),
        }
    }

    /// A required string; empty counts as missing, like MLflow's `_assert_required`.
    pub fn str(&self, name: &str) -> Result<String, MlflowError> {
        self.opt_str(name)?
            .filter(|s| !s.is_empty())
            .ok_or_else(|| missing(name))
    }

    /// A required string that may be empty (e.g. a tag value).
    pub fn str_allow_empty(&self, name: &str) -> Result<String, MlflowError> {
        self.opt_str(name)?.ok_or_else(|| missing(name))
    }

    pub fn opt_i64(&self, name: &str) -> Result<Option<i64>, MlflowError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
                .map(Some)
                .ok_or_else(|| bad_type(name, "an integer", &Value::Number(n.clone()))),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(v @ Value::String(s)) => s
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| bad_type(name, "an integer", v)),
            Some(v) => Err(bad_type(name, "an integer", v)),
        }
    }

    pub fn i64(&self, name: &str) -> Result<i64, MlflowError> {
        self.opt_i64(name)?.ok_or_else(|| missing(name))
    }

    /// A double as MLflow sends it: a number or "NaN"/"Infinity"/"-Infinity".
    pub fn f64(&self, name: &str) -> Result<f64, MlflowError> {
        parse_double(name, self.get(name).ok_or_else(|| missing(name))?)
    }

    pub fn str_list(&self, name: &str) -> Result<Vec<String>, MlflowError> {
        match self.get(name) {
            None => Ok(vec![]),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    Value::Number(n) => Ok(n.to_string()),
                    other => Err(bad_type(name, "a list of strings", other)),
                })
                .collect(),
            Some(Value::String(s)) => Ok(vec![s.clone()]),
            Some(v) => Err(bad_type(name, "a list of strings", v)),
        }
    }

    pub fn objects(&self, name: &str) -> Result<Vec<Fields>, MlflowError> {
        match self.get(name) {
            None => Ok(vec![]),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| match v {
                    Value::Object(m) => Ok(Fields(m.clone())),
                    other => Err(bad_type(name, "a list of objects", other)),
                })
                .collect(),
            Some(v) => Err(bad_type(name, "a list of objects", v)),
        }
    }

    pub fn object(&self, name: &str) -> Result<Fields, MlflowError> {
        match self.get(name) {
            Some(Value::Object(m)) => Ok(Fields(m.clone())),
            Some(v) => Err(bad_type(name, "an object", v)),
            None => Err(missing(name)),
        }
    }

    /// `[{key, value}]` lists (tags, params).
    pub fn key_values(&self, name: &str) -> Result<Vec<KeyValue>, MlflowError> {
        self.objects(name)?
            .into_iter()
            .map(|f| {
                Ok(KeyValue {
                    key: f.str("key")?,
                    value: f.str_allow_empty("value")?,
                })
            })
            .collect()
    }

    /// One `key`/`value` pair of a param or tag call; a missing value is empty.
    pub fn key_value(&self) -> Result<KeyValue, MlflowError> {
        Ok(KeyValue {
            key: self.str("key")?,
            value: self.opt_str("value")?.unwrap_or_default(),
        })
    }

    /// `run_id`, or the deprecated `run_uuid` that older clients send.
    pub fn run_id(&self) -> Result<String, MlflowError> {
        match self.opt_str("run_id")?.filter(|s| !s.is_empty()) {
            Some(id) => Ok(id),
            None => self.str("run_uuid").map_err(|_| missing("run_id")),
        }
    }

    /// Experiment ids are strings holding integers.
    pub fn experiment_id(&self) -> Result<i64, MlflowError> {
        let raw = self.str("experiment_id")?;
        raw.trim()
            .parse()
            .map_err(|_| MlflowError::not_found(format!("No Experiment with id={raw} exists")))
    }
}

/// Doubles: numbers or "NaN"/"Infinity"; infinities clamp to ±f64::MAX as MLflow's SQL store does.
pub fn parse_double(name: &str, v: &Value) -> Result<f64, MlflowError> {
    let x = match v {
        Value::Number(n) => n.as_f64().ok_or_else(|| bad_type(name, "a number", v))?,
        Value::String(s) => match s.trim() {
            "NaN" | "nan" => f64::NAN,
            "Infinity" | "inf" | "+Infinity" => f64::INFINITY,
            "-Infinity" | "-inf" => f64::NEG_INFINITY,
            other => other.parse().map_err(|_| bad_type(name, "a number", v))?,
        },
        _ => return Err(bad_type(name, "a number", v)),
    };
    Ok(if x.is_infinite() {
        f64::MAX.copysign(x)
    } else {
        x
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(v: Value) -> Fields {
        match v {
            Value::Object(m) => Fields(m),
            _ => unreachable!(),
        }
    }

    #[test]
    fn integers_accept_numbers_and_strings() {
        let f = fields(json!({"a": 5, "b": "7", "c": "x", "d": 1.5}));
        assert_eq!(f.i64("a").unwrap(), 5);
        assert_eq!(f.i64("b").unwrap(), 7);
        assert!(f.i64("c").is_err());
        assert!(f.i64("d").is_err());
        assert!(f.i64("missing").unwrap_err().message.contains("'missing'"));
    }

    #[test]
    fn doubles_accept_mlflow_special_values() {
        assert!(parse_double("v", &json!("NaN")).unwrap().is_nan());
        assert_eq!(parse_double("v", &json!("Infinity")).unwrap(), f64::MAX);
        assert_eq!(parse_double("v", &json!("-Infinity")).unwrap(), -f64::MAX);
        assert_eq!(parse_double("v", &json!(0.5)).unwrap(), 0.5);
        assert!(parse_double("v", &json!("abc")).is_err());
        assert!(parse_double("v", &json!(true)).is_err());
    }
}
