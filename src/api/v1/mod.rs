//! The native API, `/api/v1/...`: devices, telemetry ingest, analytics. Errors use one
//! envelope (see `error`).

pub mod analytics;
pub mod devices;
pub mod error;
pub mod jobs;
pub mod models;
pub mod telemetry;
pub mod tenants;
pub mod tokens;
pub mod users;

use actix_web::web;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use error::ApiError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/v1")
            // Malformed query strings and paths answer the native error envelope too.
            .app_data(web::QueryConfig::default().error_handler(|e, _| {
                ApiError::invalid(format!("invalid query parameters: {e}")).into()
            }))
            .app_data(
                web::PathConfig::default()
                    .error_handler(|e, _| ApiError::invalid(format!("invalid path: {e}")).into()),
            )
            .route("/auth/token", web::post().to(tokens::token))
            .route("/auth/whoami", web::get().to(tokens::whoami))
            .route("/auth/tokens", web::post().to(tokens::issue_token))
            .route("/auth/tokens", web::get().to(tokens::list_tokens))
            .route("/auth/tokens/{id}", web::delete().to(tokens::revoke_token))
            .route("/users", web::post().to(users::create_user))
            .route("/users", web::get().to(users::list_users))
            .route(
                "/users/{username}/password",
                web::put().to(users::set_password),
            )
            .route("/users/{username}/role", web::put().to(users::set_role))
            .route("/tenants", web::post().to(tenants::create_tenant))
            .route("/tenants", web::get().to(tenants::list_tenants))
            .route("/tenants/{id}/tier", web::put().to(tenants::set_tier))
            .route("/usage", web::get().to(tenants::usage))
            .route("/devices", web::post().to(devices::register))
            .route("/devices", web::get().to(devices::list))
            .route("/devices/{id}", web::get().to(devices::get))
            .route("/devices/{id}/keys/rotate", web::post().to(devices::rotate))
            .route("/devices/{id}/keys/revoke", web::post().to(devices::revoke))
            .route(
                "/telemetry",
                web::post().to(telemetry::ingest::<{ telemetry::SINGLE }>),
            )
            .route(
                "/telemetry/batch",
                web::post().to(telemetry::ingest::<{ telemetry::ARRAY }>),
            )
            .route(
                "/telemetry/ndjson",
                web::post().to(telemetry::ingest::<{ telemetry::NDJSON }>),
            )
            .route("/analytics/{name}", web::get().to(analytics::run))
            .route("/models", web::post().to(models::upload))
            .route("/models/{id}", web::get().to(models::get_model))
            .route("/datasets/files", web::post().to(models::upload_file))
            .route("/datasets", web::post().to(models::register_dataset))
            .route("/datasets/{id}", web::get().to(models::get_dataset))
            .route("/jobs", web::post().to(jobs::create))
            .route("/jobs", web::get().to(jobs::list))
            .route("/jobs/{id}", web::get().to(jobs::get))
            .route("/jobs/{id}/cancel", web::post().to(jobs::cancel))
            .route(
                "/jobs/{id}/recommendation",
                web::get().to(jobs::recommendation),
            )
            .route("/jobs/{id}/recommendation", web::post().to(jobs::recompute))
            .route(
                "/jobs/{id}/variants/{technique}/model",
                web::get().to(jobs::download),
            )
            .route(
                "/registered-models/{name}/versions",
                web::post().to(jobs::register_version),
            )
            .route(
                "/registered-models/{name}/versions",
                web::get().to(jobs::list_versions),
            ),
    );
}

/// Writes outside the ledger (uploads) check the role themselves; commands are checked by it.
pub fn writable(p: &crate::auth::Principal) -> Result<(), ApiError> {
    if p.caller.can_write() {
        Ok(())
    } else {
        Err(crate::domain::DomainError::Forbidden(format!(
            "role '{}' is read-only",
            p.caller.role.as_str()
        ))
        .into())
    }
}

/// A JSON body, with a 400 naming what is wrong.
pub fn json_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::invalid(format!("invalid JSON body: {e}")))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct Pagination {
    /// Items per page, 1 to 1,000 (default 100).
    pub limit: Option<u64>,
    /// Items to skip (default 0).
    pub offset: Option<u64>,
}

impl Pagination {
    /// `(limit, offset)`, limit within `1..=max` (default 100).
    pub fn bounds(&self, max: u64) -> Result<(u64, u64), ApiError> {
        let limit = self.limit.unwrap_or(100);
        if limit == 0 || limit > max {
            return Err(ApiError::invalid(format!(
                "Parameter 'limit' must be between 1 and {max}"
            )));
        }
        let offset = self.offset.unwrap_or(0);
        // SQL binds offsets as BIGINT.
        if offset > MAX_OFFSET {
            return Err(ApiError::invalid(format!(
                "Parameter 'offset' must be at most {MAX_OFFSET}"
            )));
        }
        Ok((limit, offset))
    }
}

const MAX_OFFSET: u64 = i64::MAX as u64 / 2;

/// A page of items; `next_offset` is set when more follow.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// `offset` of the next page; null on the last page.
    pub next_offset: Option<u64>,
}

/// Build a page from `limit + 1` fetched items.
pub fn page<T>(mut items: Vec<T>, limit: u64, offset: u64) -> Page<T> {
    let more = items.len() as u64 > limit;
    items.truncate(limit as usize);
    Page {
        items,
        next_offset: more.then_some(offset + limit),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pagination_bounds_are_checked() {
        let p = |limit, offset| Pagination { limit, offset }.bounds(1000);
        assert_eq!(p(None, None).unwrap(), (100, 0));
        assert!(p(Some(0), None).is_err());
        assert!(p(Some(1001), None).is_err());
        // Found by schemathesis: an offset past BIGINT was a 500.
        let e = p(None, Some(1 << 63)).unwrap_err();
        assert!(e.message.contains("'offset'"), "{}", e.message);
    }
}
