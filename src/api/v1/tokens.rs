//! `/api/v1/auth/...`: log in (a username and password for a JWT), who am I, and personal
//! access tokens. A token is shown only in the response that creates it; only its hash is
//! recorded.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};

use super::error::{ApiError, Code};
use super::json_body;
use crate::api::AppState;
use crate::auth::keys::{generate_personal_token, hash_key};
use crate::auth::{AuthError, Principal};
use crate::domain::Command;
use crate::events::{Role, TokenInfo};

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
        crate::domain::tenancy::readable_user(s, &p.caller, &username)?;
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
        Ok::<_, crate::domain::DomainError>(v)
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
