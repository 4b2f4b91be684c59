//! MLflow's server-side validation limits (`mlflow/utils/validation.py`), as pure functions.

use super::DomainError;

pub const MAX_KEY_LEN: usize = 250;
pub const MAX_PARAM_VALUE_LEN: usize = 6000;
pub const MAX_TAG_VALUE_LEN: usize = 8000;
pub const MAX_EXPERIMENT_NAME_LEN: usize = 500;
pub const MAX_EXPERIMENT_TAG_VALUE_LEN: usize = 20000;
pub const MAX_BATCH_METRICS: usize = 1000;
pub const MAX_BATCH_PARAMS: usize = 100;
pub const MAX_BATCH_TAGS: usize = 100;
pub const MAX_BATCH_ENTITIES: usize = 1000;
pub const MAX_DATASET_NAME_LEN: usize = 500;
pub const MAX_DATASET_DIGEST_LEN: usize = 36;
pub const MAX_DATASET_SOURCE_LEN: usize = 65535;
pub const MAX_DATASET_SCHEMA_LEN: usize = 1 << 20;
pub const MAX_DATASET_PROFILE_LEN: usize = 16 << 20;
pub const MAX_INPUT_TAG_KEY_LEN: usize = 255;
pub const MAX_INPUT_TAG_VALUE_LEN: usize = 500;

/// What a key names, for error messages ("Invalid metric name: ...").
#[derive(Debug, Clone, Copy)]
pub enum KeyKind {
    Metric,
    Param,
    Tag,
}

impl KeyKind {
    fn noun(self) -> &'static str {
        match self {
            KeyKind::Metric => "metric",
            KeyKind::Param => "param",
            KeyKind::Tag => "tag",
        }
    }
}

/// Keys: ≤ 250 chars of `[/\w.\- :]`, a normalised relative path (no `..`, no leading `/`, not `.`).
pub fn validate_key(kind: KeyKind, key: &str) -> Result<(), DomainError> {
    let noun = kind.noun();
    if key.is_empty() {
        return Err(DomainError::invalid(format!(
            "Invalid {noun} name: ''. Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), colon(:) and slashes (/)."
        )));
    }
    let chars_ok = key
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '_' | '/' | '.' | '-' | ' ' | ':'));
    if !chars_ok {
        return Err(DomainError::invalid(format!(
            "Invalid {noun} name: '{key}'. Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), colon(:) and slashes (/)."
        )));
    }
    if key.chars().count() > MAX_KEY_LEN {
        return Err(DomainError::invalid(format!(
            "{noun} '{}...' had length {}, which exceeded length limit of {MAX_KEY_LEN}",
            key.chars().take(20).collect::<String>(),
            key.chars().count()
        )));
    }
    let not_normalised = key.starts_with('/')
        || key == "."
        || key.split('/').any(|seg| seg == ".." || seg == ".")
        || key.contains("//")
        || key.ends_with('/');
    if not_normalised {
        return Err(DomainError::invalid(format!(
            "Invalid {noun} name: '{key}'. Names cannot be a path that escapes or is not normalized."
        )));
    }
    Ok(())
}

/// Truncate a value to `max` characters, as MLflow does with MLFLOW_TRUNCATE_LONG_VALUES.
pub fn truncate(value: &str, max: usize) -> String {
    match value.char_indices().nth(max) {
        Some((idx, _)) => value[..idx].to_string(),
        None => value.to_string(),
    }
}

pub fn validate_experiment_name(name: &str) -> Result<(), DomainError> {
    if name.trim().is_empty() {
        return Err(DomainError::invalid(
            "Invalid experiment name: ''. Experiment name must be a non-empty string",
        ));
    }
    if name.chars().count() > MAX_EXPERIMENT_NAME_LEN {
        return Err(DomainError::invalid(format!(
            "Experiment name exceeds the maximum length of {MAX_EXPERIMENT_NAME_LEN} characters"
        )));
    }
    Ok(())
}

pub fn check_len(field: &str, value: &str, max: usize) -> Result<(), DomainError> {
    let n = value.chars().count();
    if n > max {
        return Err(DomainError::invalid(format!(
            "'{field}' had length {n}, which exceeded length limit of {max}"
        )));
    }
    Ok(())
}

pub fn validate_timestamp(field: &str, ts: i64) -> Result<(), DomainError> {
    if ts < 0 {
        return Err(DomainError::invalid(format!(
            "Invalid value {ts} for parameter '{field}' supplied: must be a non-negative integer"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        for ok in ["loss", "a/b", "x.y-z_1", "with space", "m:1", "ü"] {
            assert!(validate_key(KeyKind::Metric, ok).is_ok(), "{ok}");
        }
        for bad in ["", "a..b/../c", "../x", "/abs", ".", "a//b", "bad$", "a\nb"] {
            assert!(validate_key(KeyKind::Param, bad).is_err(), "{bad}");
        }
        assert!(validate_key(KeyKind::Tag, &"k".repeat(250)).is_ok());
        assert!(validate_key(KeyKind::Tag, &"k".repeat(251)).is_err());
    }

    #[test]
    fn truncation_counts_characters() {
        assert_eq!(truncate("héllo", 2), "hé");
        assert_eq!(truncate("ab", 5), "ab");
        assert_eq!(truncate(&"x".repeat(7000), 6000).len(), 6000);
    }
}
