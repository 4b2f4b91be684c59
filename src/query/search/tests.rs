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
    compile_experiment_search(filter, ViewType::ActiveOnly, &order, 100, 0)
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

const PREFIX: &str = "SELECT r.run_id FROM runs r WHERE r.experiment_id IN (?) \
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

// ---------------------------------------------------------------------------------------------
// Parser
// ---------------------------------------------------------------------------------------------

#[test]
fn empty_and_blank_filters_have_no_clauses() {
    assert!(clauses("").is_empty());
    assert!(clauses("   \t\n ").is_empty());
}

#[test]
fn parses_every_symbolic_operator() {
    for (text, op) in [
        ("=", Op::Eq),
        ("!=", Op::Ne),
        ("<", Op::Lt),
        ("<=", Op::Le),
        (">", Op::Gt),
        (">=", Op::Ge),
    ] {
        let c = one(&format!("metrics.acc {text} 0.5"));
        assert_eq!(c.op, op, "{text}");
        assert_eq!(c.ident.prefix.as_deref(), Some("metrics"));
        assert_eq!(c.ident.key, "acc");
        assert_eq!(num(&c), 0.5);
        // No whitespace at all.
        assert_eq!(
            one(&format!("metrics.acc{text}0.5")).op,
            op,
            "{text} unspaced"
        );
    }
}

#[test]
fn parses_keyword_operators_case_insensitively() {
    for (text, op) in [
        ("LIKE", Op::Like),
        ("like", Op::Like),
        ("Like", Op::Like),
        ("ILIKE", Op::ILike),
        ("ilike", Op::ILike),
        ("iLiKe", Op::ILike),
    ] {
        let c = one(&format!("params.model {text} 'a%'"));
        assert_eq!((c.op, c.value), (op, s("a%")), "{text}");
    }
    for (text, op) in [
        ("IN", Op::In),
        ("in", Op::In),
        ("NOT IN", Op::NotIn),
        ("not  in", Op::NotIn),
        ("Not In", Op::NotIn),
    ] {
        let c = one(&format!("run_id {text} ('a', \"b\")"));
        assert_eq!(c.op, op, "{text}");
        assert_eq!(c.value, Literal::List(vec!["a".into(), "b".into()]));
    }
    for (text, op) in [
        ("IS NULL", Op::IsNull),
        ("is null", Op::IsNull),
        ("IS NOT NULL", Op::IsNotNull),
        ("is  Not\tnull", Op::IsNotNull),
    ] {
        let c = one(&format!("tags.x {text}"));
        assert_eq!((c.op, c.value), (op, Literal::Nothing), "{text}");
    }
}

#[test]
fn and_is_case_insensitive_and_whitespace_tolerant() {
    let c =
        clauses("metrics.a > 1 and params.b = 'x' AnD tags.c != \"y\"\n\tAND  status = 'RUNNING'");
    assert_eq!(c.len(), 4);
    assert_eq!(c[1].ident.prefix.as_deref(), Some("params"));
    assert_eq!(c[2].value, s("y"));
    assert_eq!(c[3].ident.prefix, None);
    assert_eq!(c[3].ident.key, "status");
    assert_eq!(c[3].text, "status = 'RUNNING'");
    // AND directly after a quoted value.
    assert_eq!(clauses("params.a='x'AND params.b='y'").len(), 2);
    // Leading and trailing whitespace.
    assert_eq!(clauses("  metrics.a > 1  ").len(), 1);
}

#[test]
fn key_quoting_styles() {
    let c = one("tags.`mlflow.runName` = 'r'");
    assert_eq!(
        (c.ident.prefix.as_deref(), c.ident.key.as_str()),
        (Some("tags"), "mlflow.runName")
    );
    let c = one("metrics.\"my metric\" > 1");
    assert_eq!(c.ident.key, "my metric");
    let c = one("params.'lr/x:y-z' = '1'");
    assert_eq!(c.ident.key, "lr/x:y-z");
    let c = one("`metrics`.`a b` < 2");
    assert_eq!(
        (c.ident.prefix.as_deref(), c.ident.key.as_str()),
        (Some("metrics"), "a b")
    );
    let c = one("tags.`a``b` = 'x'");
    assert_eq!(c.ident.key, "a`b");
    // `and`/`or` are fine as keys and entity-like words only when followed by a dot.
    assert_eq!(one("params.and = 'x'").ident.key, "and");
    let c = one("\"run name\" = 'x'");
    assert_eq!((c.ident.prefix, c.ident.key.as_str()), (None, "run name"));
}

#[test]
fn unquoted_keys_may_contain_dots_digits_and_unicode() {
    let c = one("params.model.lr = '0.1'");
    assert_eq!(
        (c.ident.prefix.as_deref(), c.ident.key.as_str()),
        (Some("params"), "model.lr")
    );
    assert_eq!(one("tags.mlflow.runName = 'x'").ident.key, "mlflow.runName");
    assert_eq!(one("metrics.1st_epoch > 1").ident.key, "1st_epoch");
    assert_eq!(one("metrics.précision > 1").ident.key, "précision");
}

#[test]
fn string_literals() {
    assert_eq!(one("params.a = 'it''s'").value, s("it's"));
    assert_eq!(one("params.a = \"say \"\"hi\"\"\"").value, s("say \"hi\""));
    assert_eq!(one("params.a = \"it's\"").value, s("it's"));
    assert_eq!(one("params.a = ''").value, s(""));
    assert_eq!(one("params.a = 'a\\b'").value, s("a\\b"));
    assert_eq!(one("params.a = 'x AND y OR z'").value, s("x AND y OR z"));
    assert_eq!(one("params.a = 'ünï ✓'").value, s("ünï ✓"));
}

#[test]
fn numeric_literals() {
    for (text, value) in [
        ("1", 1.0),
        ("-1", -1.0),
        ("0.25", 0.25),
        (".5", 0.5),
        ("-.5", -0.5),
        ("1.", 1.0),
        ("1e3", 1000.0),
        ("1E-3", 0.001),
        ("2.5e+2", 250.0),
        ("123456789012", 123_456_789_012.0),
    ] {
        let c = one(&format!("metrics.m = {text}"));
        assert_eq!(num(&c), value, "{text}");
        match &c.value {
            Literal::Num { text: t, .. } => assert_eq!(t, text),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(one("metrics.m = abc").value, Literal::Bare("abc".into()));
}

#[test]
fn parse_errors_name_the_offending_part() {
    for (filter, needle) in [
        ("metrics.a > 1 OR metrics.b > 1", "'OR' is not supported"),
        ("metrics.a > 1 or metrics.b > 1", "'OR' is not supported"),
        ("(metrics.a > 1)", "parentheses are not supported"),
        (
            "metrics.a > 1 AND (metrics.b > 1)",
            "parentheses are not supported",
        ),
        ("metrics.a > 1 AND", "ends with AND"),
        ("metrics.a > 1 AND  ", "ends with AND"),
        (
            "AND metrics.a > 1",
            "unexpected 'AND' where a clause was expected",
        ),
        (
            "metrics.a > 1 AND and metrics.b > 1",
            "unexpected 'and' where a clause",
        ),
        ("metrics.a > 1 AND OR", "unexpected 'OR' where a clause"),
        ("'status' = 'x'", "expected an identifier"),
        ("metrics.a > 1 metrics.b > 2", "unexpected 'metrics.b > 2'"),
        ("metrics.a > 1;", "unexpected ';'"),
        (
            "metrics.a > 1 ANDmetrics.b > 2",
            "unexpected 'ANDmetrics.b > 2'",
        ),
        ("params.a = 'x", "unterminated '-quoted string"),
        ("params.\"a = 'x'", "unterminated \"-quoted string"),
        (
            "metrics.a >",
            "expected a value after 'metrics.a >', found 'end of input'",
        ),
        (
            "metrics.a",
            "expected a comparison operator after 'metrics.a'",
        ),
        (
            "metrics.a-b > 1",
            "expected a comparison operator after 'metrics.a', found '-b > 1'",
        ),
        ("metrics.a == 1", "invalid comparator '=='"),
        ("metrics.a <> 1", "invalid comparator '<>'"),
        ("params.a NOT LIKE 'x'", "invalid comparator 'NOT LIKE'"),
        ("params.a CONTAINS 'x'", "invalid comparator 'CONTAINS'"),
        ("tags.a IS 'x'", "expected IS NULL or IS NOT NULL"),
        ("tags.a IS NOT 'x'", "expected IS NOT NULL"),
        ("run_id IN ()", "non-empty list"),
        (
            "run_id IN ('a', 1)",
            "expected a quoted string in the list, found '1)'",
        ),
        ("run_id IN ('a' 'b')", "expected ',' or ')'"),
        ("run_id IN ('a',", "expected a quoted string in the list"),
        ("run_id IN 'a'", "IN requires a parenthesised list"),
        ("run_id NOT IN 'a'", "NOT IN requires a parenthesised list"),
        ("run_id = ('a')", "only allowed after IN or NOT IN"),
        ("metrics. > 1", "missing key after 'metrics.'"),
        ("tags.`` = 'x'", "empty key"),
        ("1 = 1", "expected an identifier"),
        ("= 'x'", "expected an identifier"),
        ("metrics.a > 1abc", "invalid number '1abc'"),
        ("metrics.a > 1.2.3", "invalid number '1.2.3'"),
        ("metrics.a > -", "expected a value"),
        ("params.a = 'x' 'y'", "unexpected ''y''"),
    ] {
        assert_filter_error(filter, needle);
    }
}

#[test]
fn parse_errors_report_position_and_filter() {
    let m = filter_error("metrics.a > 1 OR b");
    assert!(
        m.starts_with("Invalid filter 'metrics.a > 1 OR b': "),
        "{m}"
    );
    assert!(m.ends_with("(at character 15)"), "{m}");
}

#[test]
fn order_by_entries_parse() {
    let (i, asc) = parse_order_by("metrics.acc").unwrap();
    assert_eq!(
        (i.prefix.as_deref(), i.key.as_str(), asc),
        (Some("metrics"), "acc", true)
    );
    for (entry, expected) in [
        ("metrics.acc DESC", false),
        ("metrics.acc desc", false),
        ("metrics.acc Desc", false),
        ("metrics.acc ASC", true),
        ("metrics.acc asc", true),
        ("  metrics.acc   DESC  ", false),
    ] {
        assert_eq!(parse_order_by(entry).unwrap().1, expected, "{entry}");
    }
    let (i, asc) = parse_order_by("metrics.`my metric` DESC").unwrap();
    assert_eq!((i.key.as_str(), asc), ("my metric", false));
    let (i, _) = parse_order_by("params.\"a.b\"").unwrap();
    assert_eq!(i.key, "a.b");
    let (i, _) = parse_order_by("start_time").unwrap();
    assert_eq!((i.prefix, i.key.as_str()), (None, "start_time"));
}

// ---------------------------------------------------------------------------------------------
// Run search SQL
// ---------------------------------------------------------------------------------------------

#[test]
fn default_run_query_shape() {
    let q = runs_ok("");
    assert_eq!(q.sql, format!("{PREFIX}{SUFFIX}"));
    assert_eq!(q.params, vec![Int(1), Int(101), Int(0)]);
}

#[test]
fn run_view_types_experiments_and_paging() {
    let q = compile_run_search(&[3, 4, 5], "", ViewType::DeletedOnly, &[], 50_000, 700).unwrap();
    assert_eq!(
        q.sql,
        "SELECT r.run_id FROM runs r WHERE r.experiment_id IN (?, ?, ?) \
         AND r.lifecycle_stage = 'deleted' ORDER BY r.start_time DESC, r.run_id ASC \
         LIMIT ? OFFSET ?"
    );
    assert_eq!(
        q.params,
        vec![Int(3), Int(4), Int(5), Int(50_001), Int(700)]
    );

    let q = compile_run_search(&[0], "", ViewType::All, &[], 1, 0).unwrap();
    assert_eq!(
        q.sql,
        "SELECT r.run_id FROM runs r WHERE r.experiment_id IN (?) \
         ORDER BY r.start_time DESC, r.run_id ASC LIMIT ? OFFSET ?"
    );
    assert_eq!(q.params, vec![Int(0), Int(2), Int(0)]);

    let q = compile_run_search(&[], "", ViewType::All, &[], 10, 0).unwrap();
    assert!(q.sql.contains(" WHERE FALSE ORDER BY"), "{}", q.sql);
    assert_eq!(q.params, vec![Int(11), Int(0)]);
}

#[test]
fn run_max_results_limits() {
    for bad in [0, 50_001, u64::MAX] {
        match compile_run_search(&[1], "", ViewType::All, &[], bad, 0) {
            Err(SearchError::InvalidMaxResults(m)) => {
                assert!(m.contains(&bad.to_string()) && m.contains("50000"), "{m}")
            }
            other => panic!("{bad}: {other:?}"),
        }
    }
    assert!(compile_run_search(&[1], "", ViewType::All, &[], 50_000, 0).is_ok());
    assert!(matches!(
        compile_run_search(&[1], "", ViewType::All, &[], 10, u64::MAX),
        Err(SearchError::InvalidPageToken(_))
    ));
}

#[test]
fn metric_filters() {
    let head = "EXISTS (SELECT 1 FROM latest_metrics m WHERE m.run_id = r.run_id AND m.key = ? AND";
    for (op, sql) in [
        ("=", "="),
        ("<", "<"),
        ("<=", "<="),
        (">", ">"),
        (">=", ">="),
    ] {
        assert_run_clause(
            &format!("metrics.acc {op} 0.9"),
            &format!("{head} NOT m.is_nan AND m.value {sql} ?)"),
            vec![Text("acc".into()), Float(0.9)],
        );
    }
    // NaN satisfies only `!=`.
    assert_run_clause(
        "metric.acc != 1",
        &format!("{head} (m.is_nan OR m.value <> ?))"),
        vec![Text("acc".into()), Float(1.0)],
    );
    assert_run_clause(
        "metrics.`val loss` > -1e-3",
        &format!("{head} NOT m.is_nan AND m.value > ?)"),
        vec![Text("val loss".into()), Float(-0.001)],
    );
}

#[test]
fn metric_filter_errors() {
    assert_filter_error(
        "metrics.acc > '0.9'",
        "expected a numeric value for metric, found quoted string '0.9'",
    );
    assert_filter_error(
        "metrics.acc > \"0.9\"",
        "expected a numeric value for metric",
    );
    assert_filter_error("metrics.acc > high", "found unquoted value high");
    assert_filter_error(
        "metrics.acc LIKE '1%'",
        "invalid comparator 'LIKE' for metric",
    );
    assert_filter_error(
        "metrics.acc IS NULL",
        "invalid comparator 'IS NULL' for metric",
    );
    assert_filter_error("metrics.acc IN ('1')", "invalid comparator 'IN' for metric");
}

#[test]
fn param_and_tag_filters() {
    for (prefix, table, a) in [
        ("params", "run_params", "p"),
        ("param", "run_params", "p"),
        ("parameter", "run_params", "p"),
        ("parameters", "run_params", "p"),
        ("tags", "run_tags", "t"),
        ("tag", "run_tags", "t"),
    ] {
        let head = format!("SELECT 1 FROM {table} {a} WHERE {a}.run_id = r.run_id AND {a}.key = ?");
        for (op, sql) in [
            ("=", "="),
            ("!=", "<>"),
            ("LIKE", "LIKE"),
            ("ilike", "ILIKE"),
        ] {
            assert_run_clause(
                &format!("{prefix}.model.type {op} 'cnn%'"),
                &format!("EXISTS ({head} AND {a}.value {sql} ?)"),
                vec![Text("model.type".into()), Text("cnn%".into())],
            );
        }
        assert_run_clause(
            &format!("{prefix}.x IS NULL"),
            &format!("NOT EXISTS ({head})"),
            vec![Text("x".into())],
        );
        assert_run_clause(
            &format!("{prefix}.x is not null"),
            &format!("EXISTS ({head})"),
            vec![Text("x".into())],
        );
    }
}

#[test]
fn param_and_tag_filter_errors() {
    assert_filter_error(
        "params.lr = 0.1",
        "expected a quoted string value for param (e.g. 'my-value'), found number 0.1",
    );
    assert_filter_error("params.lr = abc", "found unquoted value abc");
    assert_filter_error("tags.x = NULL", "expected a quoted string value for tag");
    assert_filter_error("params.lr > '1'", "invalid comparator '>' for param");
    assert_filter_error("tags.x IN ('a')", "invalid comparator 'IN' for tag");
    assert_filter_error("tags.x NOT IN ('a')", "invalid comparator 'NOT IN' for tag");
}

#[test]
fn string_attribute_filters() {
    for (filter, col, value) in [
        ("status = 'FINISHED'", "status", "FINISHED"),
        ("attributes.status = 'FINISHED'", "status", "FINISHED"),
        ("attribute.user_id = 'bob'", "user_id", "bob"),
        ("attr.artifact_uri = 's3://x'", "artifact_uri", "s3://x"),
        ("run.run_id = 'abc'", "run_id", "abc"),
        ("run_name = 'r1'", "run_name", "r1"),
        ("attributes.run_name = 'r1'", "run_name", "r1"),
        ("\"run name\" = 'r1'", "run_name", "r1"),
        ("`Run Name` = 'r1'", "run_name", "r1"),
        ("attributes.`Run name` = 'r1'", "run_name", "r1"),
    ] {
        assert_run_clause(filter, &format!("r.{col} = ?"), vec![Text(value.into())]);
    }
    assert_run_clause("status != 'X'", "r.status <> ?", vec![Text("X".into())]);
    assert_run_clause(
        "user_id LIKE 'a%'",
        "r.user_id LIKE ?",
        vec![Text("a%".into())],
    );
    assert_run_clause(
        "run_name ILIKE '%A%'",
        "r.run_name ILIKE ?",
        vec![Text("%A%".into())],
    );
    assert_run_clause(
        "run_id IN ('a', 'b')",
        "r.run_id IN (?, ?)",
        vec![Text("a".into()), Text("b".into())],
    );
    assert_run_clause(
        "attributes.run_id NOT IN ('a')",
        "r.run_id NOT IN (?)",
        vec![Text("a".into())],
    );
}

#[test]
fn numeric_attribute_filters() {
    assert_run_clause("start_time > 100", "r.start_time > ?", vec![Int(100)]);
    assert_run_clause("attributes.created >= 5", "r.start_time >= ?", vec![Int(5)]);
    assert_run_clause("Created < 5", "r.start_time < ?", vec![Int(5)]);
    assert_run_clause("end_time != 7", "r.end_time <> ?", vec![Int(7)]);
    assert_run_clause("end_time <= -1", "r.end_time <= ?", vec![Int(-1)]);
    assert_run_clause(
        "start_time = 1.5",
        "r.start_time = CAST(? AS DOUBLE)",
        vec![Float(1.5)],
    );
    assert_run_clause(
        "start_time < 1e3",
        "r.start_time < CAST(? AS DOUBLE)",
        vec![Float(1000.0)],
    );
}

#[test]
fn attribute_filter_errors() {
    for (filter, needle) in [
        (
            "status IN ('A')",
            "only the 'run_id' attribute supports comparison with a list",
        ),
        (
            "run_name NOT IN ('A')",
            "only the 'run_id' attribute supports",
        ),
        (
            "status = 1",
            "expected a quoted string value for attribute 'status' (e.g. 'my-value'), found number 1",
        ),
        ("status = RUNNING", "found unquoted value RUNNING"),
        (
            "status > 'A'",
            "invalid comparator '>' for attribute 'status'",
        ),
        (
            "status IS NULL",
            "invalid comparator 'IS NULL' for attribute 'status'",
        ),
        (
            "start_time = '1'",
            "expected a numeric value for numeric attribute 'start_time'",
        ),
        (
            "created LIKE '1'",
            "invalid comparator 'LIKE' for numeric attribute 'created'",
        ),
        (
            "end_time IN ('1')",
            "invalid comparator 'IN' for numeric attribute 'end_time'",
        ),
        ("end_time IS NULL", "invalid comparator 'IS NULL'"),
        ("foo = 'x'", "invalid attribute key 'foo'"),
        (
            "lifecycle_stage = 'active'",
            "invalid attribute key 'lifecycle_stage'",
        ),
        (
            "experiment_id = '1'",
            "invalid attribute key 'experiment_id'",
        ),
        ("Status = 'x'", "invalid attribute key 'Status'"),
        (
            "attributes.run_uuid = 'x'",
            "invalid attribute key 'run_uuid'",
        ),
    ] {
        assert_filter_error(filter, needle);
    }
}

#[test]
fn entity_type_errors() {
    assert_filter_error("metricz.a > 1", "invalid entity type 'metricz'");
    assert_filter_error("METRICS.a > 1", "invalid entity type 'METRICS'");
    assert_filter_error(
        "foo.bar = 'x'",
        "invalid entity type 'foo'; valid types are metric(s)",
    );
}

#[test]
fn dataset_filters() {
    let head = "EXISTS (SELECT 1 FROM run_inputs d WHERE d.run_id = r.run_id AND";
    assert_run_clause(
        "dataset.name = 'train'",
        &format!("{head} d.name = ?)"),
        vec![Text("train".into())],
    );
    assert_run_clause(
        "datasets.digest IN ('a', 'b')",
        &format!("{head} d.digest IN (?, ?))"),
        vec![Text("a".into()), Text("b".into())],
    );
    assert_run_clause(
        "dataset.context NOT IN ('eval')",
        &format!("{head} d.context NOT IN (?))"),
        vec![Text("eval".into())],
    );
    assert_run_clause(
        "dataset.name LIKE 'tr%'",
        &format!("{head} d.name LIKE ?)"),
        vec![Text("tr%".into())],
    );
    assert_run_clause(
        "dataset.name ILIKE 'TR%'",
        &format!("{head} d.name ILIKE ?)"),
        vec![Text("TR%".into())],
    );
    assert_run_clause(
        "dataset.context != 'x'",
        &format!("{head} d.context <> ?)"),
        vec![Text("x".into())],
    );

    assert_filter_error("dataset.source = 'x'", "invalid dataset key 'source'");
    assert_filter_error(
        "dataset.name IS NULL",
        "invalid comparator 'IS NULL' for dataset",
    );
    assert_filter_error("dataset.name > 'a'", "invalid comparator '>' for dataset");
    assert_filter_error(
        "dataset.name = 1",
        "expected a quoted string value for dataset",
    );
}

#[test]
fn multiple_clauses_keep_param_order() {
    let q = compile_run_search(
        &[7],
        "metrics.acc > 0.5 and params.lr = '0.1' AND tags.`mlflow.runName` LIKE 'x%' AND status = 'FINISHED'",
        ViewType::All,
        &["params.lr DESC".to_string(), "metrics.acc".to_string()],
        10,
        20,
    )
    .unwrap();
    assert_eq!(
        q.sql,
        "SELECT r.run_id FROM runs r \
         LEFT JOIN run_params o0 ON o0.run_id = r.run_id AND o0.key = ? \
         LEFT JOIN latest_metrics o1 ON o1.run_id = r.run_id AND o1.key = ? \
         WHERE r.experiment_id IN (?) \
         AND EXISTS (SELECT 1 FROM latest_metrics m WHERE m.run_id = r.run_id AND m.key = ? AND NOT m.is_nan AND m.value > ?) \
         AND EXISTS (SELECT 1 FROM run_params p WHERE p.run_id = r.run_id AND p.key = ? AND p.value = ?) \
         AND EXISTS (SELECT 1 FROM run_tags t WHERE t.run_id = r.run_id AND t.key = ? AND t.value LIKE ?) \
         AND r.status = ? \
         ORDER BY (o0.run_id IS NULL), o0.value DESC, (o1.run_id IS NULL), o1.is_nan, o1.value ASC, \
         r.start_time DESC, r.run_id ASC LIMIT ? OFFSET ?"
    );
    assert_eq!(
        q.params,
        vec![
            Text("lr".into()),
            Text("acc".into()),
            Int(7),
            Text("acc".into()),
            Float(0.5),
            Text("lr".into()),
            Text("0.1".into()),
            Text("mlflow.runName".into()),
            Text("x%".into()),
            Text("FINISHED".into()),
            Int(11),
            Int(20),
        ]
    );
    assert_eq!(q.sql.matches('?').count(), q.params.len());
}

#[test]
fn user_values_never_reach_the_sql_text() {
    let evil = "x'; DROP TABLE runs; --";
    let filter = format!(
        "params.`{k}` = \"{v}\" AND tags.\"{k2}\" LIKE '{v2}' AND run_id IN ('{v2}')",
        k = "k'\"",
        k2 = "k'\"\"",
        v = evil.replace('"', "\"\""),
        v2 = evil.replace('\'', "''"),
    );
    let q = compile_run_search(
        &[1],
        &filter,
        ViewType::All,
        &["tags.`o'; --` DESC".to_string()],
        5,
        0,
    )
    .unwrap();
    assert!(!q.sql.contains("DROP"), "{}", q.sql);
    assert!(!q.sql.contains("--"), "{}", q.sql);
    assert_eq!(q.sql.matches('\'').count(), 0, "{}", q.sql);
    assert!(q.params.contains(&Text(evil.into())));
    assert!(q.params.contains(&Text("k'\"".into())));
    assert!(q.params.contains(&Text("o'; --".into())));
    assert_eq!(q.sql.matches('?').count(), q.params.len());
}

#[test]
fn run_order_by_shapes() {
    let order = |entries: &[&str]| {
        let q = runs_ordered(entries).unwrap();
        let (_, tail) = q.sql.split_once(" ORDER BY ").unwrap();
        (
            q.sql.clone(),
            tail.trim_end_matches(" LIMIT ? OFFSET ?").to_string(),
            q.params,
        )
    };
    let (sql, tail, params) = order(&["metrics.acc DESC"]);
    assert!(sql.contains(
        "FROM runs r LEFT JOIN latest_metrics o0 ON o0.run_id = r.run_id AND o0.key = ? WHERE"
    ));
    assert_eq!(
        tail,
        "(o0.run_id IS NULL), o0.is_nan, o0.value DESC, r.start_time DESC, r.run_id ASC"
    );
    assert_eq!(params, vec![Text("acc".into()), Int(1), Int(101), Int(0)]);

    let (sql, tail, _) = order(&["params.lr", "tags.`a b` desc"]);
    assert!(sql.contains("LEFT JOIN run_params o0 ON o0.run_id = r.run_id AND o0.key = ?"));
    assert!(sql.contains("LEFT JOIN run_tags o1 ON o1.run_id = r.run_id AND o1.key = ?"));
    assert_eq!(
        tail,
        "(o0.run_id IS NULL), o0.value ASC, (o1.run_id IS NULL), o1.value DESC, \
         r.start_time DESC, r.run_id ASC"
    );

    // Explicit start_time replaces the implicit tie-breaker; `created` is its alias.
    assert_eq!(
        order(&["start_time ASC"]).1,
        "r.start_time ASC, r.run_id ASC"
    );
    assert_eq!(
        order(&["attributes.created"]).1,
        "r.start_time ASC, r.run_id ASC"
    );
    assert_eq!(
        order(&["Created DESC"]).1,
        "r.start_time DESC, r.run_id ASC"
    );
    // Explicit run_id: no second run_id term.
    assert_eq!(
        order(&["run_id DESC"]).1,
        "r.run_id DESC, r.start_time DESC"
    );
    // end_time is nullable: missing sorts last.
    assert_eq!(
        order(&["end_time DESC"]).1,
        "(r.end_time IS NULL), r.end_time DESC, r.start_time DESC, r.run_id ASC"
    );
    for attr in ["run_name", "status", "user_id", "artifact_uri"] {
        assert_eq!(
            order(&[&format!("attr.{attr}")]).1,
            format!("r.{attr} ASC, r.start_time DESC, r.run_id ASC")
        );
    }
}

#[test]
fn run_order_by_errors() {
    order_error(&["start_time", "created DESC"], "duplicate fields");
    order_error(&["metrics.a", "metric.a DESC"], "duplicate fields");
    order_error(&["dataset.name"], "invalid order_by entity 'dataset'");
    order_error(&["`run name`"], "invalid attribute key 'run name'");
    order_error(
        &["lifecycle_stage"],
        "invalid attribute key 'lifecycle_stage'",
    );
    order_error(&["foo.bar"], "invalid entity type 'foo'");
    order_error(&["metrics.a UP"], "invalid ordering key 'UP'");
    order_error(&["metrics.a DESC ASC"], "unexpected 'ASC'");
    order_error(&["metrics.a, metrics.b"], "unexpected ', metrics.b'");
    order_error(&[""], "empty");
    order_error(&["   "], "empty");
    order_error(&["metrics.`a DESC"], "unterminated `-quoted string");
    order_error(&["(metrics.a)"], "parentheses");
    // Still an error when preceded by a valid entry.
    order_error(&["metrics.a", "metrics."], "missing key");
    // Distinct entities with the same key are not duplicates.
    assert!(runs_ordered(&["metrics.a", "params.a", "tags.a"]).is_ok());
}

// ---------------------------------------------------------------------------------------------
// Experiment search SQL
// ---------------------------------------------------------------------------------------------

const EXP_PREFIX: &str =
    "SELECT e.experiment_id FROM experiments e WHERE e.lifecycle_stage = 'active'";
const EXP_SUFFIX: &str = " ORDER BY e.creation_time DESC, e.experiment_id ASC LIMIT ? OFFSET ?";

fn assert_exp_clause(filter: &str, cond: &str, params: Vec<SqlValue>) {
    let q = exps(filter, &[]).unwrap_or_else(|e| panic!("{filter:?}: {e}"));
    assert_eq!(
        q.sql,
        format!("{EXP_PREFIX} AND {cond}{EXP_SUFFIX}"),
        "{filter:?}"
    );
    let mut expected = params;
    expected.extend([Int(101), Int(0)]);
    assert_eq!(q.params, expected, "{filter:?}");
}

#[test]
fn default_experiment_query_shape() {
    let q = exps("", &[]).unwrap();
    assert_eq!(q.sql, format!("{EXP_PREFIX}{EXP_SUFFIX}"));
    assert_eq!(q.params, vec![Int(101), Int(0)]);
    let q = compile_experiment_search("", ViewType::All, &[], 5, 10).unwrap();
    assert_eq!(
        q.sql,
        "SELECT e.experiment_id FROM experiments e \
         ORDER BY e.creation_time DESC, e.experiment_id ASC LIMIT ? OFFSET ?"
    );
    assert_eq!(q.params, vec![Int(6), Int(10)]);
    let q = compile_experiment_search("", ViewType::DeletedOnly, &[], 5, 0).unwrap();
    assert!(q
        .sql
        .contains("WHERE e.lifecycle_stage = 'deleted' ORDER BY"));
    assert!(matches!(
        compile_experiment_search("", ViewType::All, &[], 0, 0),
        Err(SearchError::InvalidMaxResults(_))
    ));
}

#[test]
fn experiment_filters() {
    assert_exp_clause(
        "name = 'Default'",
        "e.name = ?",
        vec![Text("Default".into())],
    );
    assert_exp_clause(
        "attribute.name != 'x'",
        "e.name <> ?",
        vec![Text("x".into())],
    );
    assert_exp_clause(
        "name LIKE 'exp%'",
        "e.name LIKE ?",
        vec![Text("exp%".into())],
    );
    assert_exp_clause(
        "name ilike '%EXP%'",
        "e.name ILIKE ?",
        vec![Text("%EXP%".into())],
    );
    assert_exp_clause("creation_time > 5", "e.creation_time > ?", vec![Int(5)]);
    assert_exp_clause(
        "last_update_time <= 5",
        "e.last_update_time <= ?",
        vec![Int(5)],
    );
    assert_exp_clause(
        "last_update_time >= 5.5",
        "e.last_update_time >= CAST(? AS DOUBLE)",
        vec![Float(5.5)],
    );
    assert_exp_clause("experiment_id = '3'", "e.experiment_id = ?", vec![Int(3)]);
    assert_exp_clause("experiment_id != 3", "e.experiment_id <> ?", vec![Int(3)]);
    assert_exp_clause(
        "experiment_id IN ('1', '2')",
        "e.experiment_id IN (?, ?)",
        vec![Int(1), Int(2)],
    );
    assert_exp_clause(
        "experiment_id NOT IN ('0')",
        "e.experiment_id NOT IN (?)",
        vec![Int(0)],
    );
    let head =
        "SELECT 1 FROM experiment_tags t WHERE t.experiment_id = e.experiment_id AND t.key = ?";
    for prefix in ["tags", "tag"] {
        assert_exp_clause(
            &format!("{prefix}.`team.name` = 'ml'"),
            &format!("EXISTS ({head} AND t.value = ?)"),
            vec![Text("team.name".into()), Text("ml".into())],
        );
    }
    assert_exp_clause(
        "tags.a ILIKE '%x'",
        &format!("EXISTS ({head} AND t.value ILIKE ?)"),
        vec![Text("a".into()), Text("%x".into())],
    );
    assert_exp_clause(
        "tags.a IS NULL",
        &format!("NOT EXISTS ({head})"),
        vec![Text("a".into())],
    );
    assert_exp_clause(
        "tags.a IS NOT NULL",
        &format!("EXISTS ({head})"),
        vec![Text("a".into())],
    );
    let q = exps("name LIKE 'a%' AND tags.t = 'v'", &[]).unwrap();
    assert_eq!(
        q.params,
        vec![
            Text("a%".into()),
            Text("t".into()),
            Text("v".into()),
            Int(101),
            Int(0)
        ]
    );
}

#[test]
fn experiment_filter_errors() {
    for (filter, needle) in [
        (
            "name IN ('a')",
            "invalid comparator 'IN' for attribute 'name'",
        ),
        ("name > 'a'", "invalid comparator '>' for attribute 'name'"),
        (
            "name = a",
            "expected a quoted string value for attribute 'name'",
        ),
        ("name IS NULL", "invalid comparator 'IS NULL'"),
        (
            "creation_time = '5'",
            "expected a numeric value for numeric attribute 'creation_time'",
        ),
        ("creation_time LIKE '5'", "invalid comparator 'LIKE'"),
        (
            "experiment_id = 'abc'",
            "experiment_id must be an integer, found 'abc'",
        ),
        ("experiment_id IN ('1', 'x')", "found 'x'"),
        (
            "experiment_id > 1",
            "invalid comparator '>' for attribute 'experiment_id'",
        ),
        ("experiment_id = 1.5", "found '1.5'"),
        ("experiment_id = abc", "found unquoted value abc"),
        ("tags.a > 'x'", "invalid comparator '>' for tag"),
        ("tags.a = 1", "expected a quoted string value for tag"),
        (
            "metrics.a > 1",
            "invalid entity type 'metrics'; valid types are attribute, tag, tags",
        ),
        ("attributes.name = 'x'", "invalid entity type 'attributes'"),
        (
            "artifact_location = 'x'",
            "invalid attribute key 'artifact_location'",
        ),
        (
            "lifecycle_stage = 'active'",
            "invalid attribute key 'lifecycle_stage'",
        ),
        ("name = 'a' OR name = 'b'", "'OR' is not supported"),
    ] {
        exp_filter_error(filter, needle);
    }
}

#[test]
fn experiment_order_by() {
    let tail = |entries: &[&str]| {
        let q = exps("", entries).unwrap_or_else(|e| panic!("{entries:?}: {e}"));
        let (_, t) = q.sql.split_once(" ORDER BY ").unwrap();
        t.trim_end_matches(" LIMIT ? OFFSET ?").to_string()
    };
    // MLflow's tie-breaker is experiment_id DESC.
    assert_eq!(tail(&["name"]), "e.name ASC, e.experiment_id DESC");
    assert_eq!(
        tail(&["creation_time ASC"]),
        "e.creation_time ASC, e.experiment_id DESC"
    );
    assert_eq!(
        tail(&["attribute.last_update_time desc"]),
        "e.last_update_time DESC, e.experiment_id DESC"
    );
    assert_eq!(tail(&["experiment_id"]), "e.experiment_id ASC");
    assert_eq!(
        tail(&["name DESC", "experiment_id DESC"]),
        "e.name DESC, e.experiment_id DESC"
    );

    for (entry, needle) in [
        ("tags.a", "invalid order_by entity 'tag'"),
        ("metrics.a", "invalid entity type 'metrics'"),
        (
            "artifact_location",
            "invalid attribute key 'artifact_location'",
        ),
        ("name SIDEWAYS", "invalid ordering key 'SIDEWAYS'"),
    ] {
        match exps("", &[entry]) {
            Err(SearchError::InvalidOrderBy(m)) => assert!(m.contains(needle), "{m}"),
            other => panic!("{entry}: {other:?}"),
        }
    }
}

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
