//! Passwords: argon2id hashes (PHC strings), and a short-lived cache of successful checks so
//! a client sending HTTP basic auth on every request does not pay argon2's deliberate cost
//! each time.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use argon2::password_hash::SaltString;
use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use parking_lot::Mutex;
use rand::RngCore;
use sha2::{Digest, Sha256};

pub const MIN_PASSWORD_LEN: usize = 8;
pub const MAX_PASSWORD_LEN: usize = 1024;

/// How long a verified (username, password) pair is trusted without re-hashing.
const CACHE_TTL: Duration = Duration::from_secs(300);
const CACHE_MAX: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("Field 'password' must be {MIN_PASSWORD_LEN} to {MAX_PASSWORD_LEN} characters")]
    Length,
    #[error("cannot hash the password: {0}")]
    Hash(String),
}

pub fn hash(password: &str) -> Result<String, PasswordError> {
    if password.chars().count() < MIN_PASSWORD_LEN || password.len() > MAX_PASSWORD_LEN {
        return Err(PasswordError::Length);
    }
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| PasswordError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Does `password` match the stored PHC string? A malformed stored hash never matches.
pub fn verify(password: &str, stored: &str) -> bool {
    if password.len() > MAX_PASSWORD_LEN {
        return false;
    }
    PasswordHash::new(stored).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// Recently verified credentials, keyed by a hash of (username, password, stored hash): a
/// changed password misses the cache, and no password is kept in memory.
#[derive(Default)]
pub struct VerifiedCache {
    entries: Mutex<HashMap<[u8; 32], Instant>>,
}

fn cache_key(username: &str, password: &str, stored: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    for part in [username, password, stored] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    h.finalize().into()
}

impl VerifiedCache {
    /// `verify`, answered from the cache when the same pair passed recently.
    pub fn verify(&self, username: &str, password: &str, stored: &str) -> bool {
        let key = cache_key(username, password, stored);
        if let Some(at) = self.entries.lock().get(&key) {
            if at.elapsed() < CACHE_TTL {
                return true;
            }
        }
        if !verify(password, stored) {
            return false;
        }
        let mut entries = self.entries.lock();
        if entries.len() >= CACHE_MAX {
            entries.retain(|_, at| at.elapsed() < CACHE_TTL);
            if entries.len() >= CACHE_MAX {
                entries.clear();
            }
        }
        entries.insert(key, Instant::now());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ_by_salt() {
        let a = hash("correct horse").unwrap();
        let b = hash("correct horse").unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("$argon2id$"));
        assert!(verify("correct horse", &a));
        assert!(!verify("wrong horse", &a));
        assert!(!verify("correct horse", "not a hash"));
        assert!(matches!(hash("short"), Err(PasswordError::Length)));
    }

    #[test]
    fn the_cache_never_accepts_a_wrong_password() {
        let stored = hash("correct horse").unwrap();
        let cache = VerifiedCache::default();
        assert!(cache.verify("ada", "correct horse", &stored));
        assert!(cache.verify("ada", "correct horse", &stored));
        assert!(!cache.verify("ada", "wrong horse", &stored));
        assert!(!cache.verify("bob", "correct horse", "other"));
    }
}
