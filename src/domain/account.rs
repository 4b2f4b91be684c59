//! Tenants, users and personal access tokens. Hashes are computed by the caller (argon2 for
//! passwords, SHA-256 for tokens), so `decide` stays pure and never sees a secret.

use super::{DomainError, State};
use crate::events::{Event, Role, TenantInfo, Tier, TokenInfo, UserInfo};

const MAX_NAME_LEN: usize = 128;

#[derive(Debug, Clone, PartialEq)]
pub struct Tenant {
    pub info: TenantInfo,
    pub created_ms: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub info: UserInfo,
    pub created_ms: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub info: TokenInfo,
    pub created_ms: i64,
}

/// Ids and usernames: 1 to 64 of `[A-Za-z0-9._@-]`, so they are safe in stream names and logs.
fn check_ident(field: &str, v: &str) -> Result<(), DomainError> {
    let ok = !v.is_empty()
        && v.len() <= 64
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-'));
    if ok {
        Ok(())
    } else {
        Err(DomainError::invalid(format!(
            "Field '{field}' must be 1 to 64 letters, digits or . _ @ -"
        )))
    }
}

fn check_name(field: &str, v: &str) -> Result<(), DomainError> {
    if v.trim().is_empty() || v.len() > MAX_NAME_LEN {
        return Err(DomainError::invalid(format!(
            "Field '{field}' must be 1 to {MAX_NAME_LEN} characters"
        )));
    }
    Ok(())
}

pub fn tenant_not_found(id: &str) -> DomainError {
    DomainError::NotFound(format!("No tenant with id '{id}'"))
}

pub fn user_not_found(username: &str) -> DomainError {
    DomainError::NotFound(format!("No user '{username}'"))
}

pub(super) fn create_tenant(state: &State, t: &TenantInfo) -> Result<Vec<Event>, DomainError> {
    check_ident("tenant_id", &t.tenant_id)?;
    check_name("name", &t.name)?;
    if state.tenants.contains_key(&t.tenant_id) {
        return Err(DomainError::AlreadyExists(format!(
            "Tenant '{}' already exists",
            t.tenant_id
        )));
    }
    Ok(vec![Event::TenantCreated(t.clone())])
}

pub(super) fn set_tier(
    state: &State,
    tenant_id: &str,
    tier: Tier,
) -> Result<Vec<Event>, DomainError> {
    let t = state
        .tenants
        .get(tenant_id)
        .ok_or_else(|| tenant_not_found(tenant_id))?;
    if t.info.tier == tier {
        return Ok(vec![]);
    }
    Ok(vec![Event::TenantTierChanged {
        tenant_id: tenant_id.to_string(),
        tier,
    }])
}

pub(super) fn create_user(state: &State, u: &UserInfo) -> Result<Vec<Event>, DomainError> {
    check_ident("username", &u.username)?;
    if !state.tenants.contains_key(&u.tenant_id) {
        return Err(DomainError::invalid(format!(
            "Field 'tenant_id': no tenant '{}'",
            u.tenant_id
        )));
    }
    if state.users.contains_key(&u.username) {
        return Err(DomainError::AlreadyExists(format!(
            "User '{}' already exists",
            u.username
        )));
    }
    Ok(vec![Event::UserCreated(u.clone())])
}

fn user<'a>(state: &'a State, username: &str) -> Result<&'a User, DomainError> {
    state
        .users
        .get(username)
        .ok_or_else(|| user_not_found(username))
}

pub(super) fn set_password(
    state: &State,
    username: &str,
    password_hash: &str,
) -> Result<Vec<Event>, DomainError> {
    user(state, username)?;
    Ok(vec![Event::UserPasswordChanged {
        username: username.to_string(),
        password_hash: password_hash.to_string(),
    }])
}

pub(super) fn set_role(
    state: &State,
    username: &str,
    role: Role,
) -> Result<Vec<Event>, DomainError> {
    let u = user(state, username)?;
    if u.info.role == role {
        return Ok(vec![]);
    }
    Ok(vec![Event::UserRoleChanged {
        username: username.to_string(),
        role,
    }])
}

pub(super) fn issue_token(state: &State, t: &TokenInfo) -> Result<Vec<Event>, DomainError> {
    user(state, &t.username)?;
    check_name("name", &t.name)?;
    if state.tokens.contains_key(&t.token_hash) {
        return Err(DomainError::AlreadyExists("Token already exists".into()));
    }
    Ok(vec![Event::TokenIssued(t.clone())])
}

pub(super) fn revoke_token(
    state: &State,
    username: &str,
    token_id: &str,
) -> Result<Vec<Event>, DomainError> {
    user(state, username)?;
    if !state
        .tokens
        .values()
        .any(|t| t.info.token_id == token_id && t.info.username == username)
    {
        return Err(DomainError::NotFound(format!(
            "No token '{token_id}' of user '{username}'"
        )));
    }
    Ok(vec![Event::TokenRevoked {
        username: username.to_string(),
        token_id: token_id.to_string(),
    }])
}

pub(super) fn apply(state: &mut State, event: &Event, time_ms: i64) {
    match event {
        Event::TenantCreated(info) => {
            state.tenants.insert(
                info.tenant_id.clone(),
                Tenant {
                    info: info.clone(),
                    created_ms: time_ms,
                },
            );
        }
        Event::TenantTierChanged { tenant_id, tier } => {
            if let Some(t) = state.tenants.get_mut(tenant_id) {
                t.info.tier = *tier;
            }
        }
        Event::UserCreated(info) => {
            state.users.insert(
                info.username.clone(),
                User {
                    info: info.clone(),
                    created_ms: time_ms,
                },
            );
        }
        Event::UserPasswordChanged {
            username,
            password_hash,
        } => {
            if let Some(u) = state.users.get_mut(username) {
                u.info.password_hash = Some(password_hash.clone());
            }
        }
        Event::UserRoleChanged { username, role } => {
            if let Some(u) = state.users.get_mut(username) {
                u.info.role = *role;
            }
        }
        Event::TokenIssued(info) => {
            state.tokens.insert(
                info.token_hash.clone(),
                Token {
                    info: info.clone(),
                    created_ms: time_ms,
                },
            );
        }
        Event::TokenRevoked { username, token_id } => {
            state
                .tokens
                .retain(|_, t| !(t.info.token_id == *token_id && t.info.username == *username));
        }
        _ => {}
    }
}
