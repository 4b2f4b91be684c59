//! From an `Authorization` header to a [`Principal`]: a JWT, a personal access token (bearer,
//! or as the password of basic auth) or a username and password (basic auth). The user's
//! current record decides tenant and role, so a demotion takes effect at once.

use std::path::Path;
use std::sync::Arc;

use super::jwt::{parse_algorithm, Claims, JwtError, JwtKeys, KeySource};
use super::keys::{basic, bearer, hash_key, PERSONAL_TOKEN_PREFIX};
use super::password::VerifiedCache;
use super::{AuthConfig, AuthMode, Principal};
use crate::domain::account::User;
use crate::domain::Caller;
use crate::ledger::Ledger;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("authentication required: send 'Authorization: Bearer <token>' or basic auth")]
    Missing,
    /// Safe to show: never contains the credential.
    #[error("{0}")]
    Invalid(String),
}

static DUMMY_HASH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    super::password::hash("no user has this password").unwrap_or_default()
});

pub struct Authenticator {
    mode: AuthMode,
    keys: JwtKeys,
    ttl_seconds: u64,
    cache: VerifiedCache,
    ledger: Arc<Ledger>,
}

/// The HS256 secret: configured, from the environment, or generated once and kept (owner-only)
/// in the data directory so tokens survive restarts.
fn hs256_secret(config: &AuthConfig, data_dir: &Path) -> anyhow::Result<Vec<u8>> {
    if let Some(s) = &config.secret {
        return Ok(s.as_bytes().to_vec());
    }
    if let Some(s) = std::env::var("RUNLEDGER_JWT_SECRET")
        .ok()
        .filter(|s| !s.is_empty())
    {
        return Ok(s.into_bytes());
    }
    let path = data_dir.join("auth").join("jwt-secret");
    if let Ok(s) = std::fs::read(&path) {
        return Ok(s);
    }
    std::fs::create_dir_all(path.parent().unwrap_or(data_dir))?;
    let secret = super::keys::generate_personal_token().into_bytes();
    let tmp = path.with_extension("tmp");
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&secret)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &path)?;
    Ok(secret)
}

impl Authenticator {
    pub fn new(
        config: &AuthConfig,
        data_dir: &Path,
        ledger: Arc<Ledger>,
    ) -> anyhow::Result<Authenticator> {
        let algorithm = parse_algorithm(&config.algorithm)?;
        let secret;
        let source = match algorithm {
            jsonwebtoken::Algorithm::HS256 => {
                secret = hs256_secret(config, data_dir)?;
                KeySource::Secret(&secret)
            }
            _ => match (&config.private_key, &config.public_key) {
                (Some(private), Some(public)) => KeySource::Pem { private, public },
                _ => {
                    return Err(JwtError::Config(format!(
                        "[auth] algorithm = \"{}\" needs private_key and public_key",
                        config.algorithm
                    ))
                    .into())
                }
            },
        };
        Ok(Authenticator {
            mode: config.mode,
            keys: JwtKeys::new(algorithm, source, &config.issuer, &config.audience)?,
            ttl_seconds: config.token_ttl_seconds,
            cache: VerifiedCache::default(),
            ledger,
        })
    }

    pub fn mode(&self) -> AuthMode {
        self.mode
    }

    /// Who sent a request with this `Authorization` header.
    pub fn authenticate(&self, header: Option<&str>) -> Result<Principal, AuthError> {
        if self.mode == AuthMode::Disabled {
            return Ok(Principal {
                caller: Caller {
                    actor: "user:local".into(),
                    ..Caller::bootstrap()
                },
                rate_key: None,
            });
        }
        if let Some(token) = bearer(header) {
            return if token.starts_with(PERSONAL_TOKEN_PREFIX) {
                self.personal_token(token)
            } else {
                self.jwt(token)
            };
        }
        if let Some((username, password)) = basic(header) {
            // The mlflow client can only send a password: a personal token works as one.
            if password.starts_with(PERSONAL_TOKEN_PREFIX) {
                let p = self.personal_token(&password)?;
                return if p.caller.username.as_deref() == Some(username.as_str()) {
                    Ok(p)
                } else {
                    Err(AuthError::Invalid("invalid username or password".into()))
                };
            }
            return self.password(&username, &password);
        }
        match header {
            None => Err(AuthError::Missing),
            Some(_) => Err(AuthError::Invalid(
                "unsupported Authorization scheme: use Bearer or Basic".into(),
            )),
        }
    }

    /// Exchange a username and password for a signed JWT: `(token, claims)`.
    pub fn login(&self, username: &str, password: &str) -> Result<(String, Claims), AuthError> {
        let p = self.password(username, password)?;
        let now = jsonwebtoken::get_current_timestamp();
        let claims = self.keys.claims(
            username,
            &p.caller.tenant,
            p.caller.role,
            now,
            self.ttl_seconds,
        );
        let token = self
            .keys
            .sign(&claims)
            .map_err(|e| AuthError::Invalid(e.to_string()))?;
        Ok((token, claims))
    }

    fn user(&self, username: &str) -> Option<User> {
        self.ledger.read(|s| s.users.get(username).cloned())
    }

    fn principal(user: &User, rate_key: String) -> Principal {
        Principal {
            caller: Caller {
                actor: format!("user:{}", user.info.username),
                username: Some(user.info.username.clone()),
                tenant: user.info.tenant_id.clone(),
                role: user.info.role,
                operator: user.info.operator,
            },
            rate_key: Some(rate_key),
        }
    }

    fn jwt(&self, token: &str) -> Result<Principal, AuthError> {
        let claims = self
            .keys
            .verify(token)
            .map_err(|e| AuthError::Invalid(e.to_string()))?;
        match self.user(&claims.sub) {
            Some(u) if u.info.tenant_id == claims.tenant => {
                Ok(Self::principal(&u, format!("jwt:{}", claims.jti)))
            }
            _ => Err(AuthError::Invalid("invalid token: unknown user".into())),
        }
    }

    fn personal_token(&self, token: &str) -> Result<Principal, AuthError> {
        let hash = hash_key(token);
        let found = self.ledger.read(|s| {
            s.tokens
                .get(&hash)
                .map(|t| t.info.clone())
                .and_then(|t| s.users.get(&t.username).cloned().map(|u| (t, u)))
        });
        let Some((info, user)) = found else {
            return Err(AuthError::Invalid(
                "invalid token: unknown or revoked personal access token".into(),
            ));
        };
        if info
            .expires_ms
            .is_some_and(|exp| exp <= chrono::Utc::now().timestamp_millis())
        {
            return Err(AuthError::Invalid(
                "invalid token: personal access token expired".into(),
            ));
        }
        Ok(Self::principal(&user, format!("pat:{}", info.token_id)))
    }

    fn password(&self, username: &str, password: &str) -> Result<Principal, AuthError> {
        let refused = || AuthError::Invalid("invalid username or password".into());
        let user = self.user(username);
        let Some((user, stored)) = user.and_then(|u| u.info.password_hash.clone().map(|h| (u, h)))
        else {
            // Spend the same time as a real check, so timing does not tell which users exist.
            super::password::verify(password, &DUMMY_HASH);
            return Err(refused());
        };
        if !self.cache.verify(username, password, &stored) {
            return Err(refused());
        }
        Ok(Self::principal(&user, format!("user:{username}")))
    }
}
