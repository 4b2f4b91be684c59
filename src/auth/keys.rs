//! API keys: random, shown once, stored only as a SHA-256 hash. Keys carry 256 random bits,
//! so a fast hash is enough (a slow password hash would only cost time on every request).

use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Prefix that makes a leaked key recognisable by secret scanners.
pub const DEVICE_KEY_PREFIX: &str = "rlk_";

/// A new device key.
pub fn generate_device_key() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!(
        "{DEVICE_KEY_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// The stored form of a key.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
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
}
