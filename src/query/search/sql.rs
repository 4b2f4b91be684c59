//! Semantic checks (entity types, keys, operator/value compatibility) and SQL generation.
//!
//! Filters become `EXISTS (...)` semi-joins against the key/value tables (DuckDB decorrelates
//! them into hash semi-joins); each non-attribute order key becomes one aliased `LEFT JOIN`
//! (`o0`, `o1`, ...). Placeholders are collected per SQL section and concatenated in text order.

use super::order::run_order;
use super::parse::{parse_filter, Clause, Literal, Op};
use super::SEARCH_MAX_RESULTS_THRESHOLD;
use super::{check_max_results, CompiledQuery, SearchError, SqlValue, ViewType};

/// A SQL fragment with its bound values.
pub(super) type Frag = (String, Vec<SqlValue>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Entity {
    Metric,
    Param,
    Tag,
    Attribute,
    Dataset,
}

impl Entity {
    pub(super) fn name(self) -> &'static str {
        match self {
            Entity::Metric => "metric",
            Entity::Param => "param",
            Entity::Tag => "tag",
            Entity::Attribute => "attribute",
            Entity::Dataset => "dataset",
        }
    }
}

const RUN_ENTITY_TYPES: &str =
    "metric(s), param(s), parameter(s), tag(s), attribute(s), attr, run, dataset(s)";
pub(super) const RUN_STRING_ATTRS: [&str; 5] =
    ["run_id", "run_name", "status", "user_id", "artifact_uri"];
pub(super) const RUN_NUMERIC_ATTRS: [&str; 2] = ["start_time", "end_time"];
const DATASET_KEYS: [&str; 3] = ["name", "digest", "context"];
pub(super) const STRING_OPS: &str = "=, !=, LIKE, ILIKE";
pub(super) const NUMERIC_OPS: &str = "=, !=, <, <=, >, >=";
pub(super) const KV_OPS: &str = "=, !=, LIKE, ILIKE, IS NULL, IS NOT NULL";

pub(super) fn run_entity(prefix: Option<&str>) -> Result<Entity, String> {
    match prefix {
        None => Ok(Entity::Attribute),
        Some("metric" | "metrics") => Ok(Entity::Metric),
        Some("param" | "params" | "parameter" | "parameters") => Ok(Entity::Param),
        Some("tag" | "tags") => Ok(Entity::Tag),
        Some("attribute" | "attributes" | "attr" | "run") => Ok(Entity::Attribute),
        Some("dataset" | "datasets") => Ok(Entity::Dataset),
        Some(other) => Err(format!(
            "invalid entity type '{other}'; valid types are {RUN_ENTITY_TYPES}"
        )),
    }
}

fn translate_alias(key: &str) -> &str {
    match key {
        "created" | "Created" => "start_time",
        "run name" | "Run name" | "Run Name" => "run_name",
        other => other,
    }
}

pub(super) fn filter_err(filter: &str, clause: &Clause, detail: &str) -> SearchError {
    SearchError::InvalidFilter(format!(
        "Invalid filter '{filter}': {detail} (in clause '{}')",
        clause.text
    ))
}

pub(super) fn order_err(entry: &str, detail: &str) -> SearchError {
    SearchError::InvalidOrderBy(format!("Invalid order_by clause '{entry}': {detail}"))
}

pub(super) fn op_sql(op: Op) -> &'static str {
    match op {
        Op::Ne => "<>",
        other => other.as_str(),
    }
}

pub(super) fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

pub(super) fn text_params(items: &[String]) -> Vec<SqlValue> {
    items.iter().cloned().map(SqlValue::Text).collect()
}

/// `<col> <op> ?` for a numeric column; integers bind as `Int`, other numbers as DOUBLE.
pub(super) fn numeric_cmp(col: &str, op: Op, text: &str, value: f64) -> Frag {
    match text.parse::<i64>() {
        Ok(i) => (format!("{col} {} ?", op_sql(op)), vec![SqlValue::Int(i)]),
        Err(_) => (
            format!("{col} {} CAST(? AS DOUBLE)", op_sql(op)),
            vec![SqlValue::Float(value)],
        ),
    }
}

/// Compiles `col <op> value` for a string-valued column, the value already validated.
pub(super) fn string_cmp(col: &str, op: Op, value: &Literal) -> Frag {
    match value {
        Literal::List(items) => (
            format!("{col} {} ({})", op_sql(op), placeholders(items.len())),
            text_params(items),
        ),
        Literal::Str(s) => (
            format!("{col} {} ?", op_sql(op)),
            vec![SqlValue::Text(s.clone())],
        ),
        // Unreachable: callers validate the value first (the parser only produces lists after
        // IN / NOT IN, and no value only after IS [NOT] NULL, which is handled separately).
        _ => ("FALSE".to_string(), Vec::new()),
    }
}

/// Checks that `op` is one of `allowed` and the value fits a string comparison.
pub(super) fn expect_string_value(
    filter: &str,
    clause: &Clause,
    what: &str,
    allowed: &[Op],
    allowed_text: &str,
) -> Result<(), SearchError> {
    if !allowed.contains(&clause.op) {
        return Err(filter_err(
            filter,
            clause,
            &format!(
                "invalid comparator '{}' for {what}; expected one of {allowed_text}",
                clause.op.as_str()
            ),
        ));
    }
    match &clause.value {
        Literal::Str(_) | Literal::List(_) | Literal::Nothing => Ok(()),
        other => Err(filter_err(
            filter,
            clause,
            &format!(
                "expected a quoted string value for {what} (e.g. 'my-value'), found {}",
                other.describe()
            ),
        )),
    }
}

pub(super) fn expect_numeric_value<'c>(
    filter: &str,
    clause: &'c Clause,
    what: &str,
) -> Result<(&'c str, f64), SearchError> {
    const NUMERIC: [Op; 6] = [Op::Eq, Op::Ne, Op::Lt, Op::Le, Op::Gt, Op::Ge];
    if !NUMERIC.contains(&clause.op) {
        return Err(filter_err(
            filter,
            clause,
            &format!(
                "invalid comparator '{}' for {what}; expected one of {NUMERIC_OPS}",
                clause.op.as_str()
            ),
        ));
    }
    match &clause.value {
        Literal::Num { text, value } => Ok((text, *value)),
        other => Err(filter_err(
            filter,
            clause,
            &format!(
                "expected a numeric value for {what}, found {}",
                other.describe()
            ),
        )),
    }
}

pub(super) const STRING_CMP: [Op; 4] = [Op::Eq, Op::Ne, Op::Like, Op::ILike];
pub(super) const KV_CMP: [Op; 6] = [
    Op::Eq,
    Op::Ne,
    Op::Like,
    Op::ILike,
    Op::IsNull,
    Op::IsNotNull,
];
const LIST_CMP: [Op; 6] = [Op::Eq, Op::Ne, Op::Like, Op::ILike, Op::In, Op::NotIn];

/// `[NOT] EXISTS (SELECT 1 FROM <table> <a> WHERE <a>.<fk> = <outer> AND <a>.key = ? [AND ...])`
/// for a key/value table (params, tags, experiment tags).
pub(super) fn key_value_filter(
    table: &str,
    alias: &str,
    correlation: &str,
    key: &str,
    op: Op,
    value: &Literal,
) -> Frag {
    let head = format!("SELECT 1 FROM {table} {alias} WHERE {correlation} AND {alias}.key = ?");
    let mut params = vec![SqlValue::Text(key.to_string())];
    match op {
        Op::IsNull => (format!("NOT EXISTS ({head})"), params),
        Op::IsNotNull => (format!("EXISTS ({head})"), params),
        _ => {
            let (cmp, p) = string_cmp(&format!("{alias}.value"), op, value);
            params.extend(p);
            (format!("EXISTS ({head} AND {cmp})"), params)
        }
    }
}

fn run_filter(filter: &str, clause: &Clause) -> Result<Frag, SearchError> {
    let entity = run_entity(clause.ident.prefix.as_deref())
        .map_err(|detail| filter_err(filter, clause, &detail))?;
    let key = clause.ident.key.as_str();
    match entity {
        Entity::Metric => {
            // The column is DOUBLE, so integers are bound as floats too.
            let (_, value) = expect_numeric_value(filter, clause, "metric")?;
            let cond = if clause.op == Op::Ne {
                "(m.is_nan OR m.value <> ?)".to_string()
            } else {
                format!("NOT m.is_nan AND m.value {} ?", op_sql(clause.op))
            };
            Ok((
                format!(
                    "EXISTS (SELECT 1 FROM latest_metrics m WHERE m.run_id = r.run_id \
                     AND m.key = ? AND {cond})"
                ),
                vec![SqlValue::Text(key.to_string()), SqlValue::Float(value)],
            ))
        }
        Entity::Param | Entity::Tag => {
            let what = entity.name();
            expect_string_value(filter, clause, what, &KV_CMP, KV_OPS)?;
            let (table, alias) = if entity == Entity::Param {
                ("run_params", "p")
            } else {
                ("run_tags", "t")
            };
            let correlation = format!("{alias}.run_id = r.run_id");
            Ok(key_value_filter(
                table,
                alias,
                &correlation,
                key,
                clause.op,
                &clause.value,
            ))
        }
        Entity::Dataset => {
            if !DATASET_KEYS.contains(&key) {
                return Err(filter_err(
                    filter,
                    clause,
                    &format!("invalid dataset key '{key}'; valid keys are name, digest, context"),
                ));
            }
            expect_string_value(
                filter,
                clause,
                "dataset attributes",
                &LIST_CMP,
                "=, !=, LIKE, ILIKE, IN, NOT IN",
            )?;
            let (cmp, p) = string_cmp(&format!("d.{key}"), clause.op, &clause.value);
            Ok((
                format!("EXISTS (SELECT 1 FROM run_inputs d WHERE d.run_id = r.run_id AND {cmp})"),
                p,
            ))
        }
        Entity::Attribute => {
            let attr = translate_alias(key);
            if RUN_NUMERIC_ATTRS.contains(&attr) {
                let (text, value) =
                    expect_numeric_value(filter, clause, &format!("numeric attribute '{key}'"))?;
                Ok(numeric_cmp(&format!("r.{attr}"), clause.op, text, value))
            } else if RUN_STRING_ATTRS.contains(&attr) {
                let what = format!("attribute '{key}'");
                if attr == "run_id" {
                    expect_string_value(
                        filter,
                        clause,
                        &what,
                        &LIST_CMP,
                        "=, !=, LIKE, ILIKE, IN, NOT IN",
                    )?;
                } else if matches!(clause.op, Op::In | Op::NotIn) {
                    return Err(filter_err(
                        filter,
                        clause,
                        "only the 'run_id' attribute supports comparison with a list of quoted \
                         string values",
                    ));
                } else {
                    expect_string_value(filter, clause, &what, &STRING_CMP, STRING_OPS)?;
                }
                Ok(string_cmp(&format!("r.{attr}"), clause.op, &clause.value))
            } else {
                Err(filter_err(
                    filter,
                    clause,
                    &format!(
                        "invalid attribute key '{key}'; valid keys are run_id, run_name \
                         ('run name'), status, user_id, artifact_uri, start_time ('created'), \
                         end_time"
                    ),
                ))
            }
        }
    }
}

/// Assembles `SELECT <col> FROM <from> <joins> WHERE ... ORDER BY ... LIMIT ? OFFSET ?`.
pub(super) fn assemble(
    head: &str,
    joins: Vec<Frag>,
    conds: Vec<Frag>,
    terms: &[String],
    limit: i64,
    offset: u64,
) -> Result<CompiledQuery, SearchError> {
    let offset = i64::try_from(offset).map_err(|_| {
        SearchError::InvalidPageToken(format!("Invalid page token: offset {offset} is too large"))
    })?;
    let mut sql = head.to_string();
    let mut params = Vec::new();
    for (text, p) in joins {
        sql.push(' ');
        sql.push_str(&text);
        params.extend(p);
    }
    let mut where_terms = Vec::with_capacity(conds.len());
    for (text, p) in conds {
        where_terms.push(text);
        params.extend(p);
    }
    if !where_terms.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&where_terms.join(" AND "));
    }
    sql.push_str(" ORDER BY ");
    sql.push_str(&terms.join(", "));
    sql.push_str(" LIMIT ? OFFSET ?");
    params.push(SqlValue::Int(limit));
    params.push(SqlValue::Int(offset));
    Ok(CompiledQuery { sql, params })
}

/// SQL selecting `run_id` of the matching runs, in order, `LIMIT max_results + 1 OFFSET offset`.
///
/// `max_results` must be in `1..=50000`. An empty `experiment_ids` matches nothing.
/// The run columns a search selects (and `runs::get` reads), in `RunInfo` order: the page's
/// runs come back whole from the search itself, not from a second lookup by id.
pub const RUN_COLUMNS: &str = "r.run_id, r.run_name, r.experiment_id, r.user_id, r.status, \
     r.start_time, r.end_time, r.artifact_uri, r.lifecycle_stage";

pub fn compile_run_search(
    experiment_ids: &[i64],
    filter: &str,
    view: ViewType,
    order_by: &[String],
    max_results: u64,
    offset: u64,
) -> Result<CompiledQuery, SearchError> {
    let limit = check_max_results(max_results, SEARCH_MAX_RESULTS_THRESHOLD)?;
    let clauses = parse_filter(filter)?;
    let mut conds: Vec<Frag> = Vec::with_capacity(clauses.len() + 2);
    if experiment_ids.is_empty() {
        conds.push(("FALSE".to_string(), Vec::new()));
    } else {
        conds.push((
            format!(
                "r.experiment_id IN ({})",
                placeholders(experiment_ids.len())
            ),
            experiment_ids.iter().map(|&id| SqlValue::Int(id)).collect(),
        ));
    }
    if let Some(stage) = view.stage_literal() {
        conds.push((format!("r.lifecycle_stage = {stage}"), Vec::new()));
    }
    for clause in &clauses {
        conds.push(run_filter(filter, clause)?);
    }
    let order = run_order(order_by)?;
    let mut terms = order.terms;
    if !order.has_start_time {
        terms.push("r.start_time DESC".to_string());
    }
    if !order.has_run_id {
        terms.push("r.run_id ASC".to_string());
    }
    assemble(
        &format!("SELECT {RUN_COLUMNS} FROM runs r"),
        order.joins,
        conds,
        &terms,
        limit,
        offset,
    )
}
