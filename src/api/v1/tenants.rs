//! `/api/v1/tenants` and `/api/v1/usage`: tenants with their tiers (operators), and what a
//! tenant has used of its tier, counted from the log.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::json_body;
use crate::api::AppState;
use crate::auth::Principal;
use crate::domain::experiment::DEFAULT_EXPERIMENT_NAME;
use crate::domain::{tier, Command};
use crate::events::{TenantInfo, Tier};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    /// Letters, digits, `.`, `_`, `@`, `-`; default: generated.
    pub tenant_id: Option<String>,
    pub name: String,
    /// Default: the server's `[auth] default_tier` (free).
    pub tier: Option<Tier>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TenantView {
    pub tenant_id: String,
    pub name: String,
    pub tier: Tier,
    pub created_ms: i64,
}

fn tenant_view(t: &crate::domain::account::Tenant) -> TenantView {
    TenantView {
        tenant_id: t.info.tenant_id.clone(),
        name: t.info.name.clone(),
        tier: t.info.tier,
        created_ms: t.created_ms,
    }
}

/// `POST /api/v1/tenants` (operators): a tenant with its own `Default` experiment.
#[utoipa::path(
    post,
    path = "/api/v1/tenants",
    tag = "accounts",
    operation_id = "createTenant",
    summary = "Create a tenant with its own Default experiment (operators)",
    request_body(content = NewTenant, example = json!({"tenant_id": "acme", "name": "Acme Robotics", "tier": "pro"})),
    responses(
        (status = 201, description = "The tenant", body = TenantView),
        (status = 400, response = crate::api::openapi::errors::BadRequest),
        (status = 409, response = crate::api::openapi::errors::Conflict),
        crate::api::openapi::errors::NativeAuthErrors,
    )
)]
pub async fn create_tenant(
    st: web::Data<AppState>,
    p: Principal,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let req: NewTenant = json_body(&body)?;
    let tenant_id = req
        .tenant_id
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    st.ledger
        .execute(
            Command::CreateTenant(TenantInfo {
                tenant_id: tenant_id.clone(),
                name: req.name,
                tier: req.tier.unwrap_or(st.auth_config.default_tier),
            }),
            &p.caller,
        )
        .await?;
    // MLflow clients log to experiment "0" by default: each tenant has its own.
    let inside = crate::domain::Caller {
        tenant: tenant_id.clone(),
        ..p.caller.clone()
    };
    st.ledger
        .execute(
            Command::CreateExperiment {
                name: DEFAULT_EXPERIMENT_NAME.into(),
                artifact_location: None,
                tags: vec![],
                tenant: tenant_id.clone(),
            },
            &inside,
        )
        .await?;
    let view = st
        .ledger
        .read(|s| s.tenants.get(&tenant_id).map(tenant_view))
        .ok_or_else(|| ApiError::internal("tenant not applied"))?;
    Ok(HttpResponse::Created().json(view))
}

/// Operators see every tenant; others their own.
#[utoipa::path(
    get,
    path = "/api/v1/tenants",
    tag = "accounts",
    operation_id = "listTenants",
    summary = "Tenants: all for operators, else the caller's",
    responses(
        (status = 200, description = "`{tenants: [TenantView]}`", body = Object),
        crate::api::openapi::errors::NativeAuthErrors,
    )
)]
pub async fn list_tenants(st: web::Data<AppState>, p: Principal) -> HttpResponse {
    let mut tenants: Vec<TenantView> = st.ledger.read(|s| {
        s.tenants
            .values()
            .filter(|t| p.caller.operator || t.info.tenant_id == p.tenant())
            .map(tenant_view)
            .collect()
    });
    tenants.sort_by(|a, b| a.tenant_id.cmp(&b.tenant_id));
    HttpResponse::Ok().json(serde_json::json!({ "tenants": tenants }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetTier {
    pub tier: Tier,
}

#[utoipa::path(
    put,
    path = "/api/v1/tenants/{id}/tier",
    tag = "accounts",
    operation_id = "setTier",
    summary = "Change a tenant's tier (operators)",
    params(("id" = String, Path, description = "The tenant id.")),
    request_body(content = SetTier, example = json!({"tier": "enterprise"})),
    responses(
        (status = 200, description = "The tenant", body = TenantView),
        (status = 400, response = crate::api::openapi::errors::BadRequest),
        (status = 404, response = crate::api::openapi::errors::NotFound),
        crate::api::openapi::errors::NativeAuthErrors,
    )
)]
pub async fn set_tier(
    st: web::Data<AppState>,
    p: Principal,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let req: SetTier = json_body(&body)?;
    let id = id.into_inner();
    st.ledger
        .execute(
            Command::SetTenantTier {
                tenant_id: id.clone(),
                tier: req.tier,
            },
            &p.caller,
        )
        .await?;
    let view = st.ledger.read(|s| s.tenants.get(&id).map(tenant_view));
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Usage {
    pub tenant: String,
    pub tier: Tier,
    pub limits: tier::Limits,
    /// Start of the current period (the UTC calendar month), epoch ms.
    pub period_start_ms: i64,
    pub jobs_this_month: u64,
    /// `None`: unlimited.
    pub jobs_remaining: Option<u64>,
    pub models: u64,
    pub model_bytes: u64,
    pub devices: u64,
}

/// `GET /api/v1/usage`: the tenant's tier, its limits and what it used, counted from the log.
#[utoipa::path(
    get,
    path = "/api/v1/usage",
    tag = "accounts",
    operation_id = "getUsage",
    summary = "The tenant's tier, limits and this month's use",
    responses(
        (status = 200, description = "Counted from the log", body = Usage),
        crate::api::openapi::errors::NativeAuthErrors,
    )
)]
pub async fn usage(st: web::Data<AppState>, p: Principal) -> HttpResponse {
    let now = crate::ledger::now_ms();
    let t = p.tenant();
    let usage = st.ledger.read(|s| {
        let tier = tier::tier_of(s, t);
        let limits = tier::limits(tier);
        let jobs = tier::jobs_this_month(s, t, now);
        let models = s.models.values().filter(|m| m.tenant == t);
        Usage {
            tenant: t.to_string(),
            tier,
            limits,
            period_start_ms: tier::month_start_ms(now),
            jobs_this_month: jobs,
            jobs_remaining: limits.jobs_per_month.map(|l| l.saturating_sub(jobs)),
            models: models.clone().count() as u64,
            model_bytes: models.map(|m| m.size_bytes).sum(),
            devices: s.devices.values().filter(|d| d.tenant == t).count() as u64,
        }
    });
    HttpResponse::Ok().json(usage)
}
