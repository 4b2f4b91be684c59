//! Credentials and limits: who a request comes from (JWTs, personal access tokens, basic auth,
//! device API keys), the first administrator of a fresh install, and request rate limits.

pub mod authenticate;
pub mod bootstrap;
pub mod jwt;
pub mod keys;
pub mod password;
pub mod rate_limit;

use std::path::PathBuf;

use serde::Deserialize;

use crate::domain::Caller;
use crate::events::Tier;

pub use authenticate::{AuthError, Authenticator};

/// `enabled` (default) or `disabled` (local single-user use, loopback only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    Enabled,
    Disabled,
}

/// `[auth]` in the config file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub mode: AuthMode,
    /// `HS256` (shared secret), `RS256` or `EdDSA` (key pair).
    pub algorithm: String,
    /// HS256 secret (at least 32 bytes). Default: `RUNLEDGER_JWT_SECRET`, else a random secret
    /// kept in `<data-dir>/auth/jwt-secret`.
    pub secret: Option<String>,
    /// PEM files for RS256 / EdDSA.
    pub private_key: Option<PathBuf>,
    pub public_key: Option<PathBuf>,
    pub issuer: String,
    pub audience: String,
    /// Lifetime of tokens from `POST /api/v1/auth/token`.
    pub token_ttl_seconds: u64,
    /// Requests per second (and burst) per token or user.
    pub token_rate: u32,
    pub token_burst: u32,
    /// Requests per second (and burst) per client IP, authenticated or not.
    pub ip_rate: u32,
    pub ip_burst: u32,
    /// Tier of tenants created without one.
    pub default_tier: Tier,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            mode: AuthMode::Enabled,
            algorithm: "HS256".into(),
            secret: None,
            private_key: None,
            public_key: None,
            issuer: "runledger".into(),
            audience: "runledger".into(),
            token_ttl_seconds: 3600,
            // A training loop logging one metric per request reaches thousands of requests a
            // second (the MLflow benchmark runs at ~2,500/s): limits are for abuse, not for it.
            token_rate: 5_000,
            token_burst: 10_000,
            ip_rate: 10_000,
            ip_burst: 20_000,
            default_tier: Tier::Free,
        }
    }
}

/// An authenticated request's issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub caller: Caller,
    /// What its rate limit is counted against (token id, JWT id or username). None with
    /// authentication disabled: every request is then the same local user, and one budget
    /// for them all would cap the whole server; the per-IP limit still holds.
    pub rate_key: Option<String>,
}

impl Principal {
    pub fn tenant(&self) -> &str {
        &self.caller.tenant
    }
}
