//! MLflow search grammar (`search_runs` / `search_experiments`) compiled to DuckDB SQL.
//!
//! Pure: no DuckDB dependency and no I/O. A filter / `order_by` list is parsed by a small
//! hand-written recursive-descent parser ([`parse`]) and compiled ([`sql`]) into SQL text with
//! positional `?` placeholders plus the bound values, in placeholder order. Every user-supplied
//! value (keys included) is a bound parameter; the only literals in the SQL are our own constants.
//!
//! # Public API
//!
//! * [`ViewType`] — `ACTIVE_ONLY` (default) / `DELETED_ONLY` / `ALL`; parsed from the enum name
//!   (any case) or its number `1`/`2`/`3` ([`ViewType::parse`] for an optional request field,
//!   [`std::str::FromStr`], [`ViewType::from_number`]).
//! * [`SqlValue`] — a bound parameter: `Text`, `Int`, `Float`.
//! * [`CompiledQuery`] — `sql` + `params`.
//! * [`SearchError`] — `InvalidFilter`, `InvalidOrderBy`, `InvalidPageToken`, `InvalidMaxResults`,
//!   `InvalidViewType`; each carries a complete message naming the offending token. All map to
//!   HTTP 400 `INVALID_PARAMETER_VALUE` ([`SearchError::error_code`], [`SearchError::http_status`]).
//! * [`decode_page_token`] / [`encode_page_token`] — base64 of JSON `{"offset": N}` (byte-identical
//!   to MLflow's `create_page_token`); `None`/`""` decode to offset 0.
//! * [`validate_max_results`] — `1..=limit` check for a raw request value;
//!   [`SEARCH_MAX_RESULTS_THRESHOLD`] is the runs limit (50000).
//! * [`compile_run_search`] — `SELECT <RUN_COLUMNS> ... LIMIT max_results+1 OFFSET offset`; the caller
//!   returns a `next_page_token` (offset + max_results) only if the extra row came back.
//! * [`compile_experiment_search`] — the same for experiments, selecting `e.experiment_id`.
//!
//! # Semantics (MLflow 3.x `SearchUtils` + SQL store) and deliberate decisions
//!
//! * Filter = `clause [AND clause]*`; `AND` and all operator keywords are case-insensitive;
//!   `OR`, parentheses, `;` and anything else → `InvalidFilter`. Entity prefixes and attribute
//!   names are case-sensitive, as in MLflow (`METRICS.x` is an error).
//! * Identifier = `[<type>.]<key>`; the first `.` separates the type, so `params.model.lr` is
//!   param `model.lr`. Keys may be quoted with backticks, double or single quotes (the type and
//!   an unprefixed attribute name with backticks or double quotes);
//!   unquoted keys may contain letters, digits, `_` and `.` only. Inside any quoted string or key a
//!   doubled quote character stands for one quote (`'it''s'`); backslashes are literal. (MLflow
//!   keeps the doubled quote verbatim — a bug we do not copy.)
//! * Metrics compare the latest value (`latest_metrics`) with a numeric literal (`-1`, `.5`,
//!   `1e-3`). **NaN**: DuckDB orders NaN above every number and treats `NaN = NaN` as true, so
//!   the SQL uses `is_nan` explicitly with IEEE semantics: a NaN metric satisfies only `!=`.
//!   (MLflow's SQL store stores NaN as 0 and would match `= 0`; we do not copy that.)
//! * Params/tags: `= != LIKE ILIKE` against a quoted string, plus `IS NULL` / `IS NOT NULL`
//!   (`IS NULL` matches runs without the key). A run without the key never matches a comparison,
//!   `!=` included.
//! * Run attributes: `run_id run_name status user_id artifact_uri` (strings, `= != LIKE ILIKE`,
//!   `IN`/`NOT IN` only for `run_id`), `start_time end_time` (numeric; alias `created`/`Created`
//!   = `start_time`; `run name`/`Run name`/`Run Name` = `run_name`). A NULL `end_time` never
//!   matches. `run_name` reads `runs.run_name` (MLflow reads the `mlflow.runName` tag, which our
//!   projection keeps equal to the column). MLflow's silent dropping of non-lowercase ids from
//!   `run_id IN (...)` is not copied (DuckDB `IN` is case-sensitive anyway).
//! * Datasets: `dataset(s).name|digest|context` with `= != LIKE ILIKE IN NOT IN`; a run matches if
//!   any of its inputs matches; a NULL context never matches.
//! * LIKE is case-sensitive, ILIKE case-insensitive; patterns are passed through untouched
//!   (`%`, `_` wildcards; DuckDB has no default escape character).
//! * Run `order_by`: `<identifier> [ASC|DESC]`, metric/param/tag/attribute (`run name` is not an
//!   order_by key in MLflow; `created` is). Runs missing the key sort last in both directions;
//!   metric NaN sorts after numbers, before missing. Duplicate keys → error. Tie-breakers:
//!   `start_time DESC` unless start_time was ordered, then `run_id ASC` unless run_id was ordered.
//! * Experiments: filter prefixes `attribute`, `tag`, `tags` (or none), attributes `name`
//!   (`= != LIKE ILIKE`), `creation_time`, `last_update_time` (numeric), and `experiment_id`
//!   (`= != IN NOT IN`, integer given as a quoted string or a number — a reference extension:
//!   stock MLflow rejects it); `tags.<key>` with `= != LIKE ILIKE IS NULL IS NOT NULL`.
//!   `order_by` keys `name experiment_id creation_time last_update_time`; default
//!   `creation_time DESC, experiment_id ASC`. When `experiment_id` is not ordered explicitly the
//!   tie-breaker is **`experiment_id DESC`**, exactly as MLflow's SQL and file stores do
//!   (`order_by_clauses.append((SqlExperiment.experiment_id, False))`).
//! * Page tokens: `{"offset": N}` where N is a non-negative integer (or a string holding one, as
//!   Python's `int()` accepts); standard or URL-safe base64, padded or not. Offset 0 is accepted.

mod experiments;
mod order;
mod parse;
mod scan;
mod sql;

#[cfg(test)]
mod tests;

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;

pub use experiments::compile_experiment_search;
pub use sql::{compile_run_search, RUN_COLUMNS};

/// Server-side maximum of `max_results` for `runs/search` (MLflow `SEARCH_MAX_RESULTS_THRESHOLD`).
pub const SEARCH_MAX_RESULTS_THRESHOLD: u64 = 50_000;

/// Which lifecycle stages a search returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ViewType {
    /// `ACTIVE_ONLY` (1): `lifecycle_stage = 'active'`.
    #[default]
    ActiveOnly,
    /// `DELETED_ONLY` (2): `lifecycle_stage = 'deleted'`.
    DeletedOnly,
    /// `ALL` (3): no lifecycle filter.
    All,
}

impl ViewType {
    /// From an optional request field: `None` or `""` → `ACTIVE_ONLY`, otherwise as
    /// [`std::str::FromStr`] (name in any case, or `"1"`/`"2"`/`"3"`).
    pub fn parse(value: Option<&str>) -> Result<Self, SearchError> {
        value.map_or(Ok(Self::default()), str::parse)
    }

    /// From the proto enum number (`1`, `2`, `3`).
    pub fn from_number(n: i64) -> Result<Self, SearchError> {
        match n {
            1 => Ok(Self::ActiveOnly),
            2 => Ok(Self::DeletedOnly),
            3 => Ok(Self::All),
            _ => Err(SearchError::InvalidViewType(format!(
                "Invalid view type {n}: expected ACTIVE_ONLY (1), DELETED_ONLY (2) or ALL (3)"
            ))),
        }
    }

    /// The proto enum name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ActiveOnly => "ACTIVE_ONLY",
            Self::DeletedOnly => "DELETED_ONLY",
            Self::All => "ALL",
        }
    }

    /// SQL literal of the single lifecycle stage selected, `None` for [`ViewType::All`].
    pub(crate) fn stage_literal(self) -> Option<&'static str> {
        match self {
            Self::ActiveOnly => Some("'active'"),
            Self::DeletedOnly => Some("'deleted'"),
            Self::All => None,
        }
    }
}

impl std::str::FromStr for ViewType {
    type Err = SearchError;

    /// Accepts the enum name in any case or its number as a string; `""` → `ACTIVE_ONLY`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if t.is_empty() {
            return Ok(Self::default());
        }
        if let Ok(n) = t.parse::<i64>() {
            return Self::from_number(n);
        }
        match t.to_ascii_uppercase().as_str() {
            "ACTIVE_ONLY" => Ok(Self::ActiveOnly),
            "DELETED_ONLY" => Ok(Self::DeletedOnly),
            "ALL" => Ok(Self::All),
            _ => Err(SearchError::InvalidViewType(format!(
                "Invalid view type '{s}': expected ACTIVE_ONLY, DELETED_ONLY or ALL"
            ))),
        }
    }
}

/// A value bound to one `?` placeholder.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Text(String),
    Int(i64),
    Float(f64),
}

/// SQL text plus its bound values, in placeholder order.
#[derive(Debug, Clone, PartialEq)]
pub struct CompiledQuery {
    pub sql: String,
    pub params: Vec<SqlValue>,
}

/// A rejected search request. Every variant is a client error: HTTP 400
/// `INVALID_PARAMETER_VALUE`; the payload is the complete, user-facing message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SearchError {
    #[error("{0}")]
    InvalidFilter(String),
    #[error("{0}")]
    InvalidOrderBy(String),
    #[error("{0}")]
    InvalidPageToken(String),
    #[error("{0}")]
    InvalidMaxResults(String),
    #[error("{0}")]
    InvalidViewType(String),
}

impl SearchError {
    /// MLflow error code for every variant.
    pub fn error_code(&self) -> &'static str {
        "INVALID_PARAMETER_VALUE"
    }

    /// HTTP status for every variant.
    pub fn http_status(&self) -> u16 {
        400
    }

    /// The message (same as `to_string()`).
    pub fn message(&self) -> &str {
        match self {
            Self::InvalidFilter(m)
            | Self::InvalidOrderBy(m)
            | Self::InvalidPageToken(m)
            | Self::InvalidMaxResults(m)
            | Self::InvalidViewType(m) => m,
        }
    }
}

/// Checks a raw `max_results` request value against `1..=limit`.
pub fn validate_max_results(max_results: i64, limit: u64) -> Result<u64, SearchError> {
    match u64::try_from(max_results) {
        Ok(n) if n >= 1 && n <= limit => Ok(n),
        _ => Err(max_results_error(&max_results.to_string(), limit)),
    }
}

pub(crate) fn check_max_results(max_results: u64, limit: u64) -> Result<i64, SearchError> {
    if max_results == 0 || max_results > limit {
        return Err(max_results_error(&max_results.to_string(), limit));
    }
    // `+ 1` for the look-ahead row; cannot overflow given the bound check below.
    i64::try_from(max_results)
        .ok()
        .and_then(|n| n.checked_add(1))
        .ok_or_else(|| max_results_error(&max_results.to_string(), limit))
}

fn max_results_error(shown: &str, limit: u64) -> SearchError {
    SearchError::InvalidMaxResults(format!(
        "Invalid value {shown} for parameter 'max_results' supplied: \
         it must be a positive integer at most {limit}"
    ))
}

/// Encodes a page token exactly like MLflow: base64(`{"offset": N}`).
pub fn encode_page_token(offset: u64) -> String {
    STANDARD.encode(format!("{{\"offset\": {offset}}}"))
}

/// Decodes a page token; `None` or `""` means the first page (offset 0).
pub fn decode_page_token(token: Option<&str>) -> Result<u64, SearchError> {
    let token = match token {
        None | Some("") => return Ok(0),
        Some(t) => t,
    };
    let bad = |detail: &str| {
        SearchError::InvalidPageToken(format!(
            "Invalid page token '{}': {detail}",
            shorten(token, 100)
        ))
    };
    let trimmed = token.trim();
    let bytes = [STANDARD, URL_SAFE, STANDARD_NO_PAD, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(trimmed).ok())
        .ok_or_else(|| bad("could not base64-decode"))?;
    let json: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|_| bad("decoded value is not JSON"))?;
    let offset = json
        .as_object()
        .ok_or_else(|| bad("expected a JSON object with an 'offset'"))?
        .get("offset")
        .ok_or_else(|| bad("missing 'offset'"))?;
    let n = match offset {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    }
    .ok_or_else(|| bad("'offset' must be a non-negative integer"))?;
    if i64::try_from(n).is_err() {
        return Err(bad("'offset' is too large"));
    }
    Ok(n)
}

/// At most `max` characters of `s`, with an ellipsis when cut (for echoing user input).
pub(crate) fn shorten(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}
