//! Payloads of the account events: tenants (workspaces) with their subscription tier, users
//! with their role, and personal access tokens. Secrets are never recorded: passwords as
//! argon2 hashes, tokens as SHA-256 hashes.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The tenant every entity recorded before tenancy existed belongs to, and the one a fresh
/// install's administrator works in.
pub const DEFAULT_TENANT: &str = "default";

/// Serde default of the `tenant` field of events written before tenancy existed.
pub fn default_tenant() -> String {
    DEFAULT_TENANT.to_string()
}

/// A tenant's subscription tier; its limits live in `domain::tier`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Free,
    Basic,
    Pro,
    Enterprise,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Free => "free",
            Tier::Basic => "basic",
            Tier::Pro => "pro",
            Tier::Enterprise => "enterprise",
        }
    }
}

/// What a user may do inside their tenant.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, including users and tokens of the tenant.
    Admin,
    /// Read and write tracking data, devices, models and jobs.
    Member,
    /// Read only.
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Member => "member",
            Role::Viewer => "viewer",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TenantInfo {
    pub tenant_id: String,
    pub name: String,
    pub tier: Tier,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct UserInfo {
    pub username: String,
    pub tenant_id: String,
    pub role: Role,
    /// Installation operator: may create tenants and change tiers.
    #[serde(default)]
    pub operator: bool,
    /// argon2 PHC string; `None` until a password is set (token-only users).
    pub password_hash: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TokenInfo {
    pub token_id: String,
    pub username: String,
    /// The owner's label ("ci", "laptop").
    pub name: String,
    /// SHA-256 of the token; the token itself is shown once.
    pub token_hash: String,
    /// Epoch ms; `None` never expires.
    pub expires_ms: Option<i64>,
}

pub fn tenant_stream(id: &str) -> String {
    format!("tenant-{id}")
}

pub fn user_stream(username: &str) -> String {
    format!("user-{username}")
}
