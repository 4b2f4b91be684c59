//! API keys: random, shown once, stored only as a SHA-256 hash. Keys carry 256 random bits,
//! so a fast hash is enough (a slow password hash would only cost time on every request).

use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Prefixes that make a leaked key recognisable by secret scanners (and tell the two apart).
pub const DEVICE_KEY_PREFIX: &str = "rlk_";
pub const PERSONAL_TOKEN_PREFIX: &str = "rlp_";

fn random_key(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// A new device key.
pub fn generate_device_key() -> String {
    random_key(DEVICE_KEY_PREFIX)
}

/// A new personal access token.
pub fn generate_personal_token() -> String {
    random_key(PERSONAL_TOKEN_PREFIX)
}

/// The stored form of a key.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// `(username, password)` of an `Authorization: Basic <base64>` header.
pub fn basic(header: Option<&str>) -> Option<(String, String)> {
    let (scheme, value) = header?.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer(header: Option<&str>) -> Option<&str> {
    let h = header?.trim();
    let (scheme, token) = h.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique_and_hashes_stable() {
        let a = generate_device_key();
        let b = generate_device_key();
        assert_ne!(a, b);
        assert!(a.starts_with(DEVICE_KEY_PREFIX) && a.len() == 4 + 43);
        assert_eq!(hash_key(&a), hash_key(&a));
        assert_ne!(hash_key(&a), hash_key(&b));
    }

    #[test]
    fn bearer_header() {
        assert_eq!(bearer(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer(Some("bearer  abc ")), Some("abc"));
        assert_eq!(bearer(Some("Basic abc")), None);
        assert_eq!(bearer(Some("Bearer ")), None);
        assert_eq!(bearer(None), None);
    }

    #[test]
    fn basic_header() {
        // "ada:pa:ss" — the password may contain a colon.
        assert_eq!(
            basic(Some("Basic YWRhOnBhOnNz")),
            Some(("ada".into(), "pa:ss".into()))
        );
        assert_eq!(basic(Some("Bearer YWRhOnBhOnNz")), None);
        assert_eq!(basic(Some("Basic !!")), None);
        assert!(generate_personal_token().starts_with(PERSONAL_TOKEN_PREFIX));
    }
}
