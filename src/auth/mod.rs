//! Credentials and limits: device API keys and request rate limits.

pub mod keys;
pub mod rate_limit;
