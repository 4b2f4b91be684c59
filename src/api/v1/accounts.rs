//! `/api/v1/auth/...`, `/api/v1/users`, `/api/v1/tenants` and `/api/v1/usage`: log in, personal
//! access tokens, users and roles, tenants and tiers, and what the tenant has used of its tier.
//! Secrets are hashed before they reach a command, and shown only in the response that creates
//! them.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};

use super::error::{ApiError, Code};
use super::json_body;
use crate::api::AppState;
use crate::auth::keys::{generate_personal_token, hash_key};
use crate::auth::{password, AuthError, Principal};
use crate::domain::experiment::DEFAULT_EXPERIMENT_NAME;
use crate::domain::{tier, Command};
use crate::events::{Role, TenantInfo, Tier, TokenInfo, UserInfo};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AccessToken {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until it expires.
    pub expires_in: u64,
    pub tenant: String,
    pub role: Role,
}

/// `POST /api/v1/auth/token`: a username and password for a signed, short-lived JWT.
#[utoipa::path(
    post,
    path = "/api/v1/auth/token",
    tag = "accounts",
    operation_id = "login",
    summary = "Exchange a username and password for a JWT",
    request_body(content = Login, example = json!({"username": "ada", "password": "correct horse battery"})),
    security(()),
    responses(
        (status = 200, description = "A signed, short-lived access token", body = AccessToken),
        (status = 400, response = crate::api::openapi::errors::BadRequest),
        (status = 401, response = crate::api::openapi::errors::Unauthenticated),
        (status = 429, response = crate::api::openapi::errors::RateLimited),
    )
)]
pub async fn token(st: web::Data<AppState>, body: web::Bytes) -> Result<HttpResponse, ApiError> {
    let req: Login = json_body(&body)?;
    let auth = st.auth.clone();
    // argon2 is deliberately slow: keep it off the async workers.
    let (token, claims) =
        tokio::task::spawn_blocking(move || auth.login(&req.username, &req.password))
            .await
            .map_err(ApiError::internal)?
            .map_err(|e| {
                let msg = match e {
                    AuthError::Invalid(m) => m,
                    other => other.to_string(),
                };
                ApiError::new(Code::Unauthenticated, msg)
            })?;
    Ok(HttpResponse::Ok().json(AccessToken {
        access_token: token,
        token_type: "Bearer",
        expires_in: claims.exp.saturating_sub(claims.iat),
        tenant: claims.tenant,
        role: claims.role,
    }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WhoAmI {
    pub username: Option<String>,
    pub tenant: String,
    pub role: Role,
    pub operator: bool,
}

#[utoipa::path(
    get,
    path = "/api/v1/auth/whoami",
    tag = "accounts",
    operation_id = "whoAmI",
    summary = "The caller: user, tenant, role",
    responses(
        (status = 200, description = "The authenticated caller", body = WhoAmI),
        crate::api::openapi::errors::NativeAuthErrors,
    )
)]
pub async fn whoami(p: Principal) -> HttpResponse {
    HttpResponse::Ok().json(WhoAmI {
        username: p.caller.username.clone(),
        tenant: p.caller.tenant.clone(),
        role: p.caller.role,
        operator: p.caller.operator,
    })
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// A label, e.g. `ci` or `laptop`.
    pub name: String,
    /// Days until it expires; none: never.
    pub expires_in_days: Option<u32>,
    /// An admin may issue a token for another user of the tenant.
    pub username: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenView {
    pub token_id: String,
    pub username: String,
    pub name: String,
    pub created_ms: i64,
    pub expires_ms: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IssuedToken {
    #[serde(flatten)]
    pub info: TokenView,
    /// Shown once: only its hash is stored.
    pub token: String,
}

fn me(p: &Principal) -> Result<String, ApiError> {
    p.caller
        .username
        .clone()
        .ok_or_else(|| ApiError::invalid("this caller is not a user; name one with 'username'"))
}

/// `POST /api/v1/auth/tokens`: a personal access token (for the mlflow client, CI, scripts).
#[utoipa::path(
    post,
    path = "/api/v1/auth/tokens",
    tag = "accounts",
    operation_id = "issueToken",
    summary = "Issue a personal access token",
    request_body(content = NewToken, example = json!({"name": "ci", "expires_in_days": 90})),
    responses(
        (status = 201, description = "The token, shown once (only its hash is stored)", body = IssuedToken),
        (status = 400, response = crate::api::openapi::errors::BadRequest),
        (status = 404, response = crate::api::openapi::errors::NotFound),
        crate::api::openapi::errors::NativeAuthErrors,
    )
)]
pub async fn issue_token(
    st: web::Data<AppState>,
    p: Principal,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let req: NewToken = json_body(&body)?;
    let username = match req.username {
        Some(u) => u,
        None => me(&p)?,
    };
    let token = generate_personal_token();
    let token_id = uuid::Uuid::new_v4().simple().to_string();
    let expires_ms = req
        .expires_in_days
        .map(|d| crate::ledger::now_ms() + i64::from(d) * 86_400_000);
    st.ledger
        .execute(
            Command::IssueToken(TokenInfo {
                token_id: token_id.clone(),
                username: username.clone(),
                name: req.name.clone(),
                token_hash: hash_key(&token),
                expires_ms,
            }),
            &p.caller,
        )
        .await?;
    Ok(HttpResponse::Created().json(IssuedToken {
        info: TokenView {
            token_id,
            username,
            name: req.name,
            created_ms: crate::ledger::now_ms(),
            expires_ms,
        },
        token,
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TokensOf {
    /// Another user's tokens (admins).
    pub username: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/v1/auth/tokens",
    tag = "accounts",
    operation_id = "listTokens",
    summary = "A user's personal access tokens (never the tokens themselves)",
    params(TokensOf),
    responses(
        (status = 200, description = "`{tokens: [TokenView]}`", body = Object),
        (status = 400, response = crate::api::openapi::errors::BadRequest),
        (status = 404, response = crate::api::openapi::errors::NotFound),
        crate::api::openapi::errors::NativeAuthErrors,
    )
)]
pub async fn list_tokens(
    st: web::Data<AppState>,
    p: Principal,
    q: web::Query<TokensOf>,
) -> Result<HttpResponse, ApiError> {
    let username = match q.into_inner().username {
        Some(u) => u,
        None => me(&p)?,
    };
    let tokens = st.ledger.read(|s| {
        let visible = s.users.get(&username).is_some_and(|u| {
            u.info.tenant_id == p.tenant()
                && (p.caller.username.as_deref() == Some(username.as_str())
                    || p.caller.role == Role::Admin)
        }) || p.caller.operator;
        if !visible {
            return Err(crate::domain::account::user_not_found(&username));
        }
        let mut v: Vec<TokenView> = s
            .tokens
            .values()
            .filter(|t| t.info.username == username)
            .map(|t| TokenView {
                token_id: t.info.token_id.clone(),
                username: t.info.username.clone(),
                name: t.info.name.clone(),
                created_ms: t.created_ms,
                expires_ms: t.info.expires_ms,
            })
            .collect();
        v.sort_by_key(|t| (t.created_ms, t.token_id.clone()));
        Ok(v)
    })?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "tokens": tokens })))
}

/// `DELETE /api/v1/auth/tokens/{id}`: revoke a token; it stops working at once.
#[utoipa::path(
    delete,
    path = "/api/v1/auth/tokens/{id}",
    tag = "accounts",
    operation_id = "revokeToken",
    summary = "Revoke a personal access token; it stops working at once",
    params(("id" = String, Path, description = "The token id."), TokensOf),
    responses(
        (status = 204, description = "Revoked"),
        (status = 400, response = crate::api::openapi::errors::BadRequest),
        (status = 404, response = crate::api::openapi::errors::NotFound),
        crate::api::openapi::errors::NativeAuthErrors,
    )
)]
pub async fn revoke_token(
    st: web::Data<AppState>,
    p: Principal,
    id: web::Path<String>,
    q: web::Query<TokensOf>,
) -> Result<HttpResponse, ApiError> {
    let username = match q.into_inner().username {
        Some(u) => u,
        None => me(&p)?,
    };
    st.ledger
        .execute(
            Command::RevokeToken {
                username,
                token_id: id.into_inner(),
            },
            &p.caller,
        )
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub username: String,
    /// At least 8 characters; none: the user can only use tokens until one is set.
    pub password: Option<String>,
    /// `admin`, `member` (default) or `viewer`.
    pub role: Option<Role>,
    /// Operators may create users in any tenant; default: the caller's.
    pub tenant_id: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserView {
    pub username: String,
    pub tenant_id: String,
    pub role: Role,
    pub operator: bool,
    pub has_password: bool,
    pub created_ms: i64,
}

fn user_view(u: &crate::domain::account::User) -> UserView {
    UserView {
        username: u.info.username.clone(),
        tenant_id: u.info.tenant_id.clone(),
        role: u.info.role,
        operator: u.info.operator,
        has_password: u.info.password_hash.is_some(),
        created_ms: u.created_ms,
    }
}

async fn hash_password(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || password::hash(&password))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| match e {
            password::PasswordError::Length => ApiError::invalid(e.to_string())
                .with_details(serde_json::json!({ "field": "password" })),
            other => ApiError::internal(other),
        })
}

#[utoipa::path(
    post,
    path = "/api/v1/users",
    tag = "accounts",
    operation_id = "createUser",
    summary = "Create a user (tenant admins; operators in any tenant)",
    request_body(content = NewUser, example = json!({"username": "ada", "password": "correct horse battery", "role": "member"})),
    responses(
        (status = 201, description = "The user", body = UserView),
        (status = 400, response = crate::api::openapi::errors::BadRequest),
        (status = 404, response = crate::api::openapi::errors::NotFound),
        (status = 409, response = crate::api::openapi::errors::Conflict),
        crate::api::openapi::errors::NativeAuthErrors,
    )
)]
pub async fn create_user(
    st: web::Data<AppState>,
    p: Principal,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let req: NewUser = json_body(&body)?;
    let password_hash = match req.password {
        Some(pw) => Some(hash_password(pw).await?),
        None => None,
    };
    let username = req.username.clone();
    st.ledger
        .execute(
            Command::CreateUser(UserInfo {
                username: req.username,
                tenant_id: req.tenant_id.unwrap_or_else(|| p.tenant().to_string()),
                role: req.role.unwrap_or(Role::Member),
                operator: false,
                password_hash,
            }),
            &p.caller,
        )
        .await?;
    let view = st
        .ledger
        .read(|s| s.users.get(&username).map(user_view))
        .ok_or_else(|| ApiError::internal("user not applied"))?;
    Ok(HttpResponse::Created().json(view))
}

#[utoipa::path(
    get,
    path = "/api/v1/users",
    tag = "accounts",
    operation_id = "listUsers",
    summary = "The users of the caller's tenant",
    responses(
        (status = 200, description = "`{users: [UserView]}`", body = Object),
        crate::api::openapi::errors::NativeAuthErrors,
    )
)]
pub async fn list_users(st: web::Data<AppState>, p: Principal) -> HttpResponse {
    let mut users: Vec<UserView> = st.ledger.read(|s| {
        s.users
            .values()
            .filter(|u| u.info.tenant_id == p.tenant())
            .map(user_view)
            .collect()
    });
    users.sort_by(|a, b| a.username.cmp(&b.username));
    HttpResponse::Ok().json(serde_json::json!({ "users": users }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPassword {
    pub password: String,
}

#[utoipa::path(
    put,
    path = "/api/v1/users/{username}/password",
    tag = "accounts",
    operation_id = "setPassword",
    summary = "Set a user's password (the user, or an admin)",
    params(("username" = String, Path, description = "The user.")),
    request_body(content = SetPassword, example = json!({"password": "correct horse battery"})),
    responses(
        (status = 204, description = "Set"),
        (status = 400, response = crate::api::openapi::errors::BadRequest),
        (status = 404, response = crate::api::openapi::errors::NotFound),
        crate::api::openapi::errors::NativeAuthErrors,
    )
)]
pub async fn set_password(
    st: web::Data<AppState>,
    p: Principal,
    username: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let req: SetPassword = json_body(&body)?;
    let password_hash = hash_password(req.password).await?;
    st.ledger
        .execute(
            Command::SetPassword {
                username: username.into_inner(),
                password_hash,
            },
            &p.caller,
        )
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRole {
    pub role: Role,
}

#[utoipa::path(
    put,
    path = "/api/v1/users/{username}/role",
    tag = "accounts",
    operation_id = "setRole",
    summary = "Change a user's role (admins)",
    params(("username" = String, Path, description = "The user.")),
    request_body(content = SetRole, example = json!({"role": "viewer"})),
    responses(
        (status = 200, description = "The user", body = UserView),
        (status = 400, response = crate::api::openapi::errors::BadRequest),
        (status = 404, response = crate::api::openapi::errors::NotFound),
        crate::api::openapi::errors::NativeAuthErrors,
    )
)]
pub async fn set_role(
    st: web::Data<AppState>,
    p: Principal,
    username: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let req: SetRole = json_body(&body)?;
    let username = username.into_inner();
    st.ledger
        .execute(
            Command::SetRole {
                username: username.clone(),
                role: req.role,
            },
            &p.caller,
        )
        .await?;
    let view = st.ledger.read(|s| s.users.get(&username).map(user_view));
    Ok(HttpResponse::Ok().json(view))
}

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
