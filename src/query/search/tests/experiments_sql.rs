//! Experiment search compiled to SQL.

use super::*;

// ---------------------------------------------------------------------------------------------
// Experiment search SQL
// ---------------------------------------------------------------------------------------------

// Every search is confined to the caller's tenant, bound as the first parameter.
const EXP_PREFIX: &str =
    "SELECT e.experiment_id FROM experiments e WHERE e.tenant_id = ? AND e.lifecycle_stage = 'active'";
const EXP_SUFFIX: &str = " ORDER BY e.creation_time DESC, e.experiment_id ASC LIMIT ? OFFSET ?";

fn assert_exp_clause(filter: &str, cond: &str, params: Vec<SqlValue>) {
    let q = exps(filter, &[]).unwrap_or_else(|e| panic!("{filter:?}: {e}"));
    assert_eq!(
        q.sql,
        format!("{EXP_PREFIX} AND {cond}{EXP_SUFFIX}"),
        "{filter:?}"
    );
    let mut expected = vec![Text("default".into())];
    expected.extend(params);
    expected.extend([Int(101), Int(0)]);
    assert_eq!(q.params, expected, "{filter:?}");
}

#[test]
fn default_experiment_query_shape() {
    let q = exps("", &[]).unwrap();
    assert_eq!(q.sql, format!("{EXP_PREFIX}{EXP_SUFFIX}"));
    assert_eq!(q.params, vec![Text("default".into()), Int(101), Int(0)]);
    let q = compile_experiment_search("default", "", ViewType::All, &[], 5, 10).unwrap();
    assert_eq!(
        q.sql,
        "SELECT e.experiment_id FROM experiments e WHERE e.tenant_id = ? \
         ORDER BY e.creation_time DESC, e.experiment_id ASC LIMIT ? OFFSET ?"
    );
    assert_eq!(q.params, vec![Text("default".into()), Int(6), Int(10)]);
    let q = compile_experiment_search("default", "", ViewType::DeletedOnly, &[], 5, 0).unwrap();
    assert!(q.sql.contains("AND e.lifecycle_stage = 'deleted' ORDER BY"));
    assert!(matches!(
        compile_experiment_search("default", "", ViewType::All, &[], 0, 0),
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
            Text("default".into()),
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
