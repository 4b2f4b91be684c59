//! `/api/v1/users`: users of a tenant, their passwords (argon2-hashed before they reach a
//! command) and roles.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::json_body;
use crate::api::AppState;
use crate::auth::{password, Principal};
use crate::domain::Command;
use crate::events::{Role, UserInfo};

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
