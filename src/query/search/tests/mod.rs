use super::parse::{parse_filter, parse_order_by, Clause, Literal, Op};
use super::*;

use SqlValue::{Float, Int, Text};

fn clauses(filter: &str) -> Vec<Clause> {
    parse_filter(filter).unwrap_or_else(|e| panic!("{filter:?} should parse: {e}"))
}

fn one(filter: &str) -> Clause {
    let mut c = clauses(filter);
    assert_eq!(c.len(), 1, "{filter:?}");
    c.remove(0)
}

fn s(v: &str) -> Literal {
    Literal::Str(v.to_string())
}

fn num(c: &Clause) -> f64 {
    match &c.value {
        Literal::Num { value, .. } => *value,
        other => panic!("not a number: {other:?}"),
    }
}

fn runs(filter: &str) -> Result<CompiledQuery, SearchError> {
    compile_run_search(&[1], filter, ViewType::ActiveOnly, &[], 100, 0)
}

fn runs_ok(filter: &str) -> CompiledQuery {
    runs(filter).unwrap_or_else(|e| panic!("{filter:?} should compile: {e}"))
}

fn runs_ordered(order_by: &[&str]) -> Result<CompiledQuery, SearchError> {
    let order: Vec<String> = order_by.iter().map(|s| s.to_string()).collect();
    compile_run_search(&[1], "", ViewType::ActiveOnly, &order, 100, 0)
}

fn exps(filter: &str, order_by: &[&str]) -> Result<CompiledQuery, SearchError> {
    let order: Vec<String> = order_by.iter().map(|s| s.to_string()).collect();
    compile_experiment_search("default", filter, ViewType::ActiveOnly, &order, 100, 0)
}

/// The error message, asserting the variant is `InvalidFilter`.
fn filter_error(filter: &str) -> String {
    match runs(filter) {
        Err(SearchError::InvalidFilter(m)) => m,
        other => panic!("{filter:?}: expected InvalidFilter, got {other:?}"),
    }
}

fn assert_filter_error(filter: &str, needle: &str) {
    let m = filter_error(filter);
    assert!(
        m.contains(needle),
        "{filter:?}: message {m:?} lacks {needle:?}"
    );
}

fn exp_filter_error(filter: &str, needle: &str) {
    match exps(filter, &[]) {
        Err(SearchError::InvalidFilter(m)) => {
            assert!(
                m.contains(needle),
                "{filter:?}: message {m:?} lacks {needle:?}"
            )
        }
        other => panic!("{filter:?}: expected InvalidFilter, got {other:?}"),
    }
}

fn order_error(order_by: &[&str], needle: &str) {
    match runs_ordered(order_by) {
        Err(SearchError::InvalidOrderBy(m)) => {
            assert!(
                m.contains(needle),
                "{order_by:?}: message {m:?} lacks {needle:?}"
            )
        }
        other => panic!("{order_by:?}: expected InvalidOrderBy, got {other:?}"),
    }
}

const PREFIX: &str =
    "SELECT r.run_id, r.run_name, r.experiment_id, r.user_id, r.status, r.start_time, r.end_time, \
         r.artifact_uri, r.lifecycle_stage FROM runs r WHERE r.experiment_id IN (?) \
                      AND r.lifecycle_stage = 'active'";
const SUFFIX: &str = " ORDER BY r.start_time DESC, r.run_id ASC LIMIT ? OFFSET ?";

/// Asserts a single-clause run query: the WHERE addition and its params.
fn assert_run_clause(filter: &str, cond: &str, params: Vec<SqlValue>) {
    let q = runs_ok(filter);
    assert_eq!(q.sql, format!("{PREFIX} AND {cond}{SUFFIX}"), "{filter:?}");
    let mut expected = vec![Int(1)];
    expected.extend(params);
    expected.extend([Int(101), Int(0)]);
    assert_eq!(q.params, expected, "{filter:?}");
}

mod experiments_sql;
mod parse;
mod runs_sql;

// ---------------------------------------------------------------------------------------------
// Page tokens, max_results, view types, errors
// ---------------------------------------------------------------------------------------------

#[test]
fn page_token_matches_mlflow_and_round_trips() {
    // Python: base64.b64encode(json.dumps({"offset": 1000}).encode())
    assert_eq!(encode_page_token(1000), "eyJvZmZzZXQiOiAxMDAwfQ==");
    for n in [0, 1, 999, 50_000, 1 << 40, i64::MAX as u64] {
        assert_eq!(decode_page_token(Some(&encode_page_token(n))), Ok(n));
    }
    assert_eq!(decode_page_token(None), Ok(0));
    assert_eq!(decode_page_token(Some("")), Ok(0));
}

#[test]
fn page_token_lenient_forms() {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    assert_eq!(decode_page_token(Some(&b64("{\"offset\":\"25\"}"))), Ok(25));
    assert_eq!(
        decode_page_token(Some(&b64("{\"offset\": 7, \"x\": 1}"))),
        Ok(7)
    );
    // Unpadded and URL-safe alphabets.
    assert_eq!(decode_page_token(Some("eyJvZmZzZXQiOiAxMDAwfQ")), Ok(1000));
    let url = base64::engine::general_purpose::URL_SAFE.encode("{\"offset\": 62}>>>");
    assert!(decode_page_token(Some(&url)).is_err()); // decodes, but trailing garbage isn't JSON
    let url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("{\"offset\":63}");
    assert_eq!(decode_page_token(Some(&url)), Ok(63));
}

#[test]
fn bad_page_tokens() {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    for (token, needle) in [
        ("!!!not base64!!!".to_string(), "could not base64-decode"),
        (b64("not json"), "not JSON"),
        (b64("[1, 2]"), "expected a JSON object"),
        (b64("{}"), "missing 'offset'"),
        (b64("{\"offset\": -1}"), "non-negative integer"),
        (b64("{\"offset\": 1.5}"), "non-negative integer"),
        (b64("{\"offset\": \"abc\"}"), "non-negative integer"),
        (b64("{\"offset\": true}"), "non-negative integer"),
        (b64("{\"offset\": null}"), "non-negative integer"),
        (b64("{\"offset\": 9223372036854775808}"), "too large"),
    ] {
        match decode_page_token(Some(&token)) {
            Err(e @ SearchError::InvalidPageToken(_)) => {
                let m = e.to_string();
                assert!(m.contains(needle) && m.contains(&token), "{m}");
                assert_eq!(e.error_code(), "INVALID_PARAMETER_VALUE");
                assert_eq!(e.http_status(), 400);
            }
            other => panic!("{token}: {other:?}"),
        }
    }
    // Very long tokens are shortened in the message.
    let long = "@".repeat(1000);
    let m = decode_page_token(Some(&long)).unwrap_err().to_string();
    assert!(m.len() < 300, "{m}");
}

#[test]
fn max_results_validation() {
    assert_eq!(validate_max_results(1, 50_000), Ok(1));
    assert_eq!(validate_max_results(50_000, 50_000), Ok(50_000));
    assert_eq!(validate_max_results(1000, 1000), Ok(1000));
    for (n, limit) in [(0, 50_000), (-5, 50_000), (50_001, 50_000), (1001, 1000)] {
        match validate_max_results(n, limit) {
            Err(SearchError::InvalidMaxResults(m)) => {
                assert!(
                    m.contains(&n.to_string()) && m.contains(&limit.to_string()),
                    "{m}"
                )
            }
            other => panic!("{n}: {other:?}"),
        }
    }
}

#[test]
fn view_type_parsing() {
    use std::str::FromStr;
    for (text, v) in [
        ("ACTIVE_ONLY", ViewType::ActiveOnly),
        ("active_only", ViewType::ActiveOnly),
        ("DELETED_ONLY", ViewType::DeletedOnly),
        ("ALL", ViewType::All),
        ("all", ViewType::All),
        ("1", ViewType::ActiveOnly),
        ("2", ViewType::DeletedOnly),
        ("3", ViewType::All),
        ("", ViewType::ActiveOnly),
    ] {
        assert_eq!(ViewType::from_str(text), Ok(v), "{text}");
    }
    assert_eq!(ViewType::default(), ViewType::ActiveOnly);
    assert_eq!(ViewType::parse(None), Ok(ViewType::ActiveOnly));
    assert_eq!(ViewType::parse(Some("")), Ok(ViewType::ActiveOnly));
    assert_eq!(
        ViewType::parse(Some("DELETED_ONLY")),
        Ok(ViewType::DeletedOnly)
    );
    assert_eq!(ViewType::parse(Some("3")), Ok(ViewType::All));
    assert!(matches!(
        ViewType::parse(Some("x")),
        Err(SearchError::InvalidViewType(_))
    ));
    assert_eq!(ViewType::from_number(3), Ok(ViewType::All));
    assert_eq!(ViewType::All.as_str(), "ALL");
    for bad in ["0", "4", "-1", "ACTIVE", "everything"] {
        match ViewType::from_str(bad) {
            Err(SearchError::InvalidViewType(m)) => assert!(m.contains(bad), "{m}"),
            other => panic!("{bad}: {other:?}"),
        }
    }
}

#[test]
fn errors_display_their_message() {
    let e = runs("metrics.a > 'x'").unwrap_err();
    assert_eq!(e.to_string(), e.message());
    assert_eq!(e.error_code(), "INVALID_PARAMETER_VALUE");
    assert!(
        e.message()
            .starts_with("Invalid filter 'metrics.a > 'x'': "),
        "{e}"
    );
    assert!(
        e.message().ends_with("(in clause 'metrics.a > 'x'')"),
        "{e}"
    );
}
