//! A fresh install's first administrator: user `admin` of the default tenant, an operator of
//! the installation, with a personal access token that is printed once. Its password is
//! `RUNLEDGER_ADMIN_PASSWORD` when set (for scripted installs), else unset until the admin
//! sets one.

use super::keys::{generate_personal_token, hash_key};
use super::password;
use crate::domain::{Caller, Command};
use crate::events::{Role, TokenInfo, UserInfo, DEFAULT_TENANT};
use crate::ledger::{Ledger, LedgerError};

pub const ADMIN_USERNAME: &str = "admin";

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("RUNLEDGER_ADMIN_PASSWORD: {0}")]
    Password(#[from] password::PasswordError),
}

/// Create the first administrator when there is no user yet; returns its one-time token.
pub async fn first_admin(
    ledger: &Ledger,
    password: Option<&str>,
) -> Result<Option<String>, BootstrapError> {
    if ledger.read(|s| !s.users.is_empty()) {
        return Ok(None);
    }
    let password_hash = password.map(password::hash).transpose()?;
    let caller = Caller::bootstrap();
    ledger
        .execute(
            Command::CreateUser(UserInfo {
                username: ADMIN_USERNAME.into(),
                tenant_id: DEFAULT_TENANT.into(),
                role: Role::Admin,
                operator: true,
                password_hash,
            }),
            &caller,
        )
        .await?;
    let token = generate_personal_token();
    ledger
        .execute(
            Command::IssueToken(TokenInfo {
                token_id: uuid::Uuid::new_v4().simple().to_string(),
                username: ADMIN_USERNAME.into(),
                name: "first start".into(),
                token_hash: hash_key(&token),
                expires_ms: None,
            }),
            &caller,
        )
        .await?;
    Ok(Some(token))
}
