//! Experiment search: `search_experiments` filters and ordering compiled to SQL, on the shared
//! helpers of the run compiler in `sql.rs`.

use super::parse::{parse_filter, parse_order_by, Clause, Literal, Op};
use super::sql::*;
use super::{check_max_results, CompiledQuery, SearchError, SqlValue, ViewType};

const EXPERIMENT_ATTRS: &str = "name, creation_time, last_update_time, experiment_id";

fn experiment_entity(prefix: Option<&str>) -> Result<Entity, String> {
    match prefix {
        None | Some("attribute") => Ok(Entity::Attribute),
        Some("tag" | "tags") => Ok(Entity::Tag),
        Some(other) => Err(format!(
            "invalid entity type '{other}'; valid types are attribute, tag, tags"
        )),
    }
}

fn experiment_id_value(filter: &str, clause: &Clause, s: &str) -> Result<SqlValue, SearchError> {
    s.trim().parse::<i64>().map(SqlValue::Int).map_err(|_| {
        filter_err(
            filter,
            clause,
            &format!("experiment_id must be an integer, found '{s}'"),
        )
    })
}

fn experiment_filter(filter: &str, clause: &Clause) -> Result<Frag, SearchError> {
    let entity = experiment_entity(clause.ident.prefix.as_deref())
        .map_err(|detail| filter_err(filter, clause, &detail))?;
    let key = clause.ident.key.as_str();
    if entity == Entity::Tag {
        expect_string_value(filter, clause, "tag", &KV_CMP, KV_OPS)?;
        return Ok(key_value_filter(
            "experiment_tags",
            "t",
            "t.experiment_id = e.experiment_id",
            key,
            clause.op,
            &clause.value,
        ));
    }
    match key {
        "name" => {
            expect_string_value(filter, clause, "attribute 'name'", &STRING_CMP, STRING_OPS)?;
            Ok(string_cmp("e.name", clause.op, &clause.value))
        }
        "creation_time" | "last_update_time" => {
            let (text, value) =
                expect_numeric_value(filter, clause, &format!("numeric attribute '{key}'"))?;
            Ok(numeric_cmp(&format!("e.{key}"), clause.op, text, value))
        }
        "experiment_id" => {
            let op = clause.op;
            if !matches!(op, Op::Eq | Op::Ne | Op::In | Op::NotIn) {
                return Err(filter_err(
                    filter,
                    clause,
                    &format!(
                        "invalid comparator '{}' for attribute 'experiment_id'; expected one of \
                         =, !=, IN, NOT IN",
                        op.as_str()
                    ),
                ));
            }
            match &clause.value {
                Literal::Str(s) => Ok((
                    format!("e.experiment_id {} ?", op_sql(op)),
                    vec![experiment_id_value(filter, clause, s)?],
                )),
                Literal::Num { text, .. } => Ok((
                    format!("e.experiment_id {} ?", op_sql(op)),
                    vec![experiment_id_value(filter, clause, text)?],
                )),
                Literal::List(items) => Ok((
                    format!(
                        "e.experiment_id {} ({})",
                        op_sql(op),
                        placeholders(items.len())
                    ),
                    items
                        .iter()
                        .map(|s| experiment_id_value(filter, clause, s))
                        .collect::<Result<_, _>>()?,
                )),
                other => Err(filter_err(
                    filter,
                    clause,
                    &format!(
                        "expected a quoted experiment id for attribute 'experiment_id', found {}",
                        other.describe()
                    ),
                )),
            }
        }
        _ => Err(filter_err(
            filter,
            clause,
            &format!("invalid attribute key '{key}'; valid keys are {EXPERIMENT_ATTRS}"),
        )),
    }
}

/// SQL selecting `experiment_id` of the matching experiments, in order,
/// `LIMIT max_results + 1 OFFSET offset`. The caller validates `max_results` against its own
/// limit ([`super::validate_max_results`]); here it only has to be at least 1.
/// Only the experiments of `tenant` are ever searched.
pub fn compile_experiment_search(
    tenant: &str,
    filter: &str,
    view: ViewType,
    order_by: &[String],
    max_results: u64,
    offset: u64,
) -> Result<CompiledQuery, SearchError> {
    let limit = check_max_results(max_results, i64::MAX as u64 - 1)?;
    let clauses = parse_filter(filter)?;
    let mut conds: Vec<Frag> = Vec::with_capacity(clauses.len() + 2);
    conds.push((
        "e.tenant_id = ?".to_string(),
        vec![SqlValue::Text(tenant.to_string())],
    ));
    if let Some(stage) = view.stage_literal() {
        conds.push((format!("e.lifecycle_stage = {stage}"), Vec::new()));
    }
    for clause in &clauses {
        conds.push(experiment_filter(filter, clause)?);
    }
    let mut terms = Vec::new();
    let mut has_id = false;
    let defaults = [
        "creation_time DESC".to_string(),
        "experiment_id ASC".to_string(),
    ];
    let entries = if order_by.is_empty() {
        &defaults[..]
    } else {
        order_by
    };
    for entry in entries {
        let (ident, ascending) = parse_order_by(entry)?;
        match experiment_entity(ident.prefix.as_deref()).map_err(|d| order_err(entry, &d))? {
            Entity::Attribute => {}
            other => {
                return Err(order_err(
                    entry,
                    &format!(
                        "invalid order_by entity '{}'; only attributes can be ordered by",
                        other.name()
                    ),
                ))
            }
        }
        let key = ident.key.as_str();
        if !matches!(
            key,
            "name" | "experiment_id" | "creation_time" | "last_update_time"
        ) {
            return Err(order_err(
                entry,
                &format!(
                    "invalid attribute key '{key}'; valid keys are name, experiment_id, \
                     creation_time, last_update_time"
                ),
            ));
        }
        has_id |= key == "experiment_id";
        terms.push(format!(
            "e.{key} {}",
            if ascending { "ASC" } else { "DESC" }
        ));
    }
    if !has_id {
        // MLflow's tie-breaker: `(SqlExperiment.experiment_id, False)`, i.e. descending.
        terms.push("e.experiment_id DESC".to_string());
    }
    assemble(
        "SELECT e.experiment_id FROM experiments e",
        Vec::new(),
        conds,
        &terms,
        limit,
        offset,
    )
}
