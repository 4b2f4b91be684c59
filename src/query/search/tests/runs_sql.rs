//! Run search compiled to SQL and run against DuckDB.

use super::*;

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
        "SELECT r.run_id, r.run_name, r.experiment_id, r.user_id, r.status, r.start_time, r.end_time, \
         r.artifact_uri, r.lifecycle_stage FROM runs r WHERE r.experiment_id IN (?, ?, ?) \
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
        "SELECT r.run_id, r.run_name, r.experiment_id, r.user_id, r.status, r.start_time, r.end_time, \
         r.artifact_uri, r.lifecycle_stage FROM runs r WHERE r.experiment_id IN (?) \
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
        "SELECT r.run_id, r.run_name, r.experiment_id, r.user_id, r.status, r.start_time, r.end_time, \
         r.artifact_uri, r.lifecycle_stage FROM runs r \
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
