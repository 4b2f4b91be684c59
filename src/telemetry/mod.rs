//! Edge telemetry: request bodies (`wire`), per-event validation and severity rules,
//! idempotency (`dedupe`), and the ingest path with its bounded queue (`ingest`).

pub mod dedupe;
pub mod ingest;
pub mod severity;
pub mod validate;
pub mod wire;

use serde::Deserialize;

pub use dedupe::DedupeIndex;
pub use ingest::{Accepted, IngestError, Ingestor, Mode, RecentTelemetry};

/// `[telemetry]` in `runledger.toml`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// Events per request at most.
    pub max_batch_events: usize,
    /// Request body bytes at most (after gzip decoding too).
    pub max_body_bytes: usize,
    /// Ingest requests being processed at once; more answer 429.
    pub queue: usize,
    /// Accepted event ids remembered for idempotency (about 25 bytes each).
    pub dedupe_window: usize,
    /// Requests per second per device key, and the burst allowed above it.
    pub device_rate: u32,
    pub device_burst: u32,
    /// Requests per second per client IP address, and the burst allowed above it.
    pub ip_rate: u32,
    pub ip_burst: u32,
    pub severity_rules: Vec<severity::Rule>,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            max_batch_events: 10_000,
            max_body_bytes: 10 << 20,
            queue: 64,
            dedupe_window: 4_000_000,
            device_rate: 100,
            device_burst: 200,
            ip_rate: 1000,
            ip_burst: 2000,
            severity_rules: severity::default_rules(),
        }
    }
}
