//! `order_by` of run searches: attribute keys as columns, metrics, params and tags as one
//! aliased `LEFT JOIN` each (`o0`, `o1`, ...).

use super::parse::{parse_order_by, Ident};
use super::sql::*;
use super::{shorten, SearchError, SqlValue};

/// Joins, ORDER BY terms and whether start_time / run_id were ordered explicitly.
pub(super) struct RunOrder {
    pub(super) joins: Vec<Frag>,
    pub(super) terms: Vec<String>,
    pub(super) has_start_time: bool,
    pub(super) has_run_id: bool,
}

pub(super) fn run_order(order_by: &[String]) -> Result<RunOrder, SearchError> {
    let mut out = RunOrder {
        joins: Vec::new(),
        terms: Vec::new(),
        has_start_time: false,
        has_run_id: false,
    };
    let mut seen: Vec<(Entity, String)> = Vec::new();
    for entry in order_by {
        let (ident, ascending) = parse_order_by(entry)?;
        let entity = run_entity(ident.prefix.as_deref()).map_err(|d| order_err(entry, &d))?;
        let dir = if ascending { "ASC" } else { "DESC" };
        let key =
            match entity {
                Entity::Attribute => translate_alias_order(&ident, entry)?,
                Entity::Dataset => return Err(order_err(
                    entry,
                    "invalid order_by entity 'dataset'; order by a metric, param, tag or attribute",
                )),
                _ => ident.key.clone(),
            };
        if seen.contains(&(entity, key.clone())) {
            return Err(order_err(
                entry,
                &format!(
                    "order_by contains duplicate fields: {}",
                    shorten(&order_by.join(", "), 300)
                ),
            ));
        }
        seen.push((entity, key.clone()));
        let alias = format!("o{}", out.joins.len());
        match entity {
            Entity::Attribute => {
                out.has_start_time |= key == "start_time";
                out.has_run_id |= key == "run_id";
                if key == "end_time" {
                    out.terms.push("(r.end_time IS NULL)".to_string());
                }
                out.terms.push(format!("r.{key} {dir}"));
            }
            Entity::Metric => {
                out.joins.push((
                    format!(
                        "LEFT JOIN latest_metrics {alias} ON {alias}.run_id = r.run_id \
                         AND {alias}.key = ?"
                    ),
                    vec![SqlValue::Text(key)],
                ));
                out.terms.push(format!("({alias}.run_id IS NULL)"));
                out.terms.push(format!("{alias}.is_nan"));
                out.terms.push(format!("{alias}.value {dir}"));
            }
            Entity::Param | Entity::Tag => {
                let table = if entity == Entity::Param {
                    "run_params"
                } else {
                    "run_tags"
                };
                out.joins.push((
                    format!(
                        "LEFT JOIN {table} {alias} ON {alias}.run_id = r.run_id AND {alias}.key = ?"
                    ),
                    vec![SqlValue::Text(key)],
                ));
                out.terms.push(format!("({alias}.run_id IS NULL)"));
                out.terms.push(format!("{alias}.value {dir}"));
            }
            Entity::Dataset => {}
        }
    }
    Ok(out)
}

/// Resolves an attribute order key (MLflow's orderable attributes plus `created`).
fn translate_alias_order(ident: &Ident, entry: &str) -> Result<String, SearchError> {
    let key = match ident.key.as_str() {
        "created" | "Created" => "start_time",
        other => other,
    };
    if RUN_STRING_ATTRS.contains(&key) || RUN_NUMERIC_ATTRS.contains(&key) {
        Ok(key.to_string())
    } else {
        Err(order_err(
            entry,
            &format!(
                "invalid attribute key '{}'; valid keys are run_id, run_name, status, user_id, \
                 artifact_uri, start_time ('created'), end_time",
                ident.key
            ),
        ))
    }
}
