//! Access tokens as JWTs: HS256 with a shared secret, or RS256 / EdDSA with a key pair. Only the
//! configured algorithm is accepted (so `none` and algorithm confusion fail), and issuer,
//! audience, expiry and not-before are always checked.

use std::path::Path;

use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::events::Role;

/// Seconds of clock skew tolerated on `exp` and `nbf`.
const LEEWAY_SECONDS: u64 = 30;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    /// The username.
    pub sub: String,
    pub tenant: String,
    pub role: Role,
    pub iss: String,
    pub aud: String,
    pub exp: u64,
    pub nbf: u64,
    pub iat: u64,
    /// Token id, the rate-limit key of this token.
    pub jti: String,
}

#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    #[error("cannot read JWT key {path}: {source}")]
    KeyFile {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid JWT key: {0}")]
    Key(jsonwebtoken::errors::Error),
    #[error("unsupported JWT algorithm '{0}' (use HS256, RS256 or EdDSA)")]
    Algorithm(String),
    #[error("{0}")]
    Config(String),
    /// The reason a presented token was refused (safe to show: no token material).
    #[error("invalid token: {0}")]
    Invalid(String),
}

/// Signing and verification keys of the configured algorithm.
pub struct JwtKeys {
    algorithm: Algorithm,
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
}

/// Where the keys come from.
pub enum KeySource<'a> {
    Secret(&'a [u8]),
    /// PEM files: private key (to sign) and public key (to verify).
    Pem {
        private: &'a Path,
        public: &'a Path,
    },
}

pub fn parse_algorithm(name: &str) -> Result<Algorithm, JwtError> {
    match name {
        "HS256" => Ok(Algorithm::HS256),
        "RS256" => Ok(Algorithm::RS256),
        "EdDSA" => Ok(Algorithm::EdDSA),
        other => Err(JwtError::Algorithm(other.to_string())),
    }
}

fn read(path: &Path) -> Result<Vec<u8>, JwtError> {
    std::fs::read(path).map_err(|source| JwtError::KeyFile {
        path: path.display().to_string(),
        source,
    })
}

impl JwtKeys {
    pub fn new(
        algorithm: Algorithm,
        source: KeySource<'_>,
        issuer: &str,
        audience: &str,
    ) -> Result<JwtKeys, JwtError> {
        let (encoding, decoding) = match (algorithm, source) {
            (Algorithm::HS256, KeySource::Secret(secret)) => {
                if secret.len() < 32 {
                    return Err(JwtError::Config(
                        "the HS256 secret must be at least 32 bytes".into(),
                    ));
                }
                (
                    EncodingKey::from_secret(secret),
                    DecodingKey::from_secret(secret),
                )
            }
            (Algorithm::RS256, KeySource::Pem { private, public }) => (
                EncodingKey::from_rsa_pem(&read(private)?).map_err(JwtError::Key)?,
                DecodingKey::from_rsa_pem(&read(public)?).map_err(JwtError::Key)?,
            ),
            (Algorithm::EdDSA, KeySource::Pem { private, public }) => (
                EncodingKey::from_ed_pem(&read(private)?).map_err(JwtError::Key)?,
                DecodingKey::from_ed_pem(&read(public)?).map_err(JwtError::Key)?,
            ),
            (a, _) => {
                return Err(JwtError::Config(format!(
                    "{a:?} needs {}",
                    if a == Algorithm::HS256 {
                        "a secret"
                    } else {
                        "private_key and public_key PEM files"
                    }
                )))
            }
        };
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECONDS;
        Ok(JwtKeys {
            algorithm,
            encoding,
            decoding,
            validation,
            issuer: issuer.to_string(),
            audience: audience.to_string(),
        })
    }

    /// Claims for `username` valid from `now` (epoch seconds) for `ttl` seconds.
    pub fn claims(&self, username: &str, tenant: &str, role: Role, now: u64, ttl: u64) -> Claims {
        Claims {
            sub: username.to_string(),
            tenant: tenant.to_string(),
            role,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            exp: now + ttl,
            nbf: now,
            iat: now,
            jti: uuid::Uuid::new_v4().simple().to_string(),
        }
    }

    pub fn sign(&self, claims: &Claims) -> Result<String, JwtError> {
        encode(&Header::new(self.algorithm), claims, &self.encoding).map_err(JwtError::Key)
    }

    pub fn verify(&self, token: &str) -> Result<Claims, JwtError> {
        use jsonwebtoken::errors::ErrorKind;
        decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|d| d.claims)
            .map_err(|e| {
                let why = match e.kind() {
                    ErrorKind::ExpiredSignature => "expired",
                    ErrorKind::ImmatureSignature => "not valid yet (nbf)",
                    ErrorKind::InvalidAudience => "wrong audience",
                    ErrorKind::InvalidIssuer => "wrong issuer",
                    ErrorKind::InvalidSignature => "bad signature",
                    ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                        "algorithm not accepted"
                    }
                    ErrorKind::MissingRequiredClaim(_) => "a required claim is missing",
                    _ => "malformed",
                };
                JwtError::Invalid(why.to_string())
            })
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;

    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn now() -> u64 {
        jsonwebtoken::get_current_timestamp()
    }

    fn hs() -> JwtKeys {
        JwtKeys::new(
            Algorithm::HS256,
            KeySource::Secret(SECRET),
            "runledger",
            "runledger",
        )
        .unwrap()
    }

    fn b64(v: &serde_json::Value) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    }

    #[test]
    fn a_signed_token_round_trips() {
        let k = hs();
        let c = k.claims("ada", "t1", Role::Member, now(), 60);
        assert_eq!(k.verify(&k.sign(&c).unwrap()).unwrap(), c);
    }

    #[test]
    fn expired_future_and_foreign_tokens_are_refused() {
        let k = hs();
        let expired = k.claims("ada", "t1", Role::Member, now() - 7200, 60);
        let err = k.verify(&k.sign(&expired).unwrap()).unwrap_err();
        assert_eq!(err.to_string(), "invalid token: expired");

        let future = k.claims("ada", "t1", Role::Member, now() + 3600, 60);
        let err = k.verify(&k.sign(&future).unwrap()).unwrap_err();
        assert_eq!(err.to_string(), "invalid token: not valid yet (nbf)");

        let other_aud = JwtKeys::new(
            Algorithm::HS256,
            KeySource::Secret(SECRET),
            "runledger",
            "x",
        )
        .unwrap();
        let c = other_aud.claims("ada", "t1", Role::Member, now(), 60);
        let err = k.verify(&other_aud.sign(&c).unwrap()).unwrap_err();
        assert_eq!(err.to_string(), "invalid token: wrong audience");

        let other_key = JwtKeys::new(
            Algorithm::HS256,
            KeySource::Secret(b"another secret of at least 32 bytes!"),
            "runledger",
            "runledger",
        )
        .unwrap();
        let c = other_key.claims("ada", "t1", Role::Admin, now(), 60);
        let err = k.verify(&other_key.sign(&c).unwrap()).unwrap_err();
        assert_eq!(err.to_string(), "invalid token: bad signature");
    }

    #[test]
    fn tampered_and_unsigned_tokens_are_refused() {
        let k = hs();
        let c = k.claims("ada", "t1", Role::Viewer, now(), 60);
        let token = k.sign(&c).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        let mut admin = serde_json::to_value(&c).unwrap();
        admin["role"] = "admin".into();
        let tampered = format!("{}.{}.{}", parts[0], b64(&admin), parts[2]);
        assert!(k.verify(&tampered).is_err());

        let none = format!(
            "{}.{}.",
            b64(&serde_json::json!({"alg": "none", "typ": "JWT"})),
            parts[1]
        );
        assert!(k.verify(&none).is_err());
        assert!(k.verify("not a token").is_err());
    }

    #[test]
    fn a_short_secret_is_refused() {
        assert!(JwtKeys::new(Algorithm::HS256, KeySource::Secret(b"short"), "a", "b").is_err());
    }
}
