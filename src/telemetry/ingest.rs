//! The ingest path: validate each event, drop ids already accepted, append the rest as one
//! `TelemetryIngested` event, acknowledge once durable.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

use super::dedupe::DedupeIndex;
use super::severity::Rule;
use super::validate::{validate, Context, EventError};
use super::wire::{RawEvent, SyntaxError};
use super::TelemetryConfig;
use crate::domain::device::Device;
use crate::events::{device_stream, Event, TelemetryRecord};
use crate::ledger::{now_ms, Ledger, LedgerError};
use crate::log::{Position, RecordedEvent};

/// What to do with a batch in which some events are invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Reject the whole batch; nothing is written.
    #[default]
    AllOrNothing,
    /// Accept the valid events and report the others.
    Partial,
}

/// The acknowledgement of an ingest request.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Accepted {
    /// New events written.
    pub accepted: usize,
    /// Events whose id was already accepted (by this request or an earlier one).
    pub duplicates: usize,
    /// Invalid events left out (only in `partial` mode).
    pub rejected: Vec<EventError>,
    /// Log position of the write, when something was written.
    #[schema(value_type = Option<u64>)]
    pub position: Option<Position>,
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{} of the events are invalid; nothing was written", .0.len())]
    Invalid(Vec<EventError>),
    #[error("{count} events in one request; at most {max} are allowed")]
    TooMany { count: usize, max: usize },
    #[error("the request holds no events")]
    Empty,
    #[error(transparent)]
    Syntax(#[from] SyntaxError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

pub struct Ingestor {
    ledger: Arc<Ledger>,
    dedupe: DedupeIndex,
    queue: Arc<Semaphore>,
    max_events: usize,
    rules: Vec<Rule>,
}

impl Ingestor {
    /// `dedupe` holds the ids already in the log (see [`remember`]).
    pub fn new(ledger: Arc<Ledger>, config: &TelemetryConfig, dedupe: DedupeIndex) -> Ingestor {
        Ingestor {
            ledger,
            dedupe,
            queue: Arc::new(Semaphore::new(config.queue)),
            max_events: config.max_batch_events,
            rules: config.severity_rules.clone(),
        }
    }

    /// A place in the bounded ingest queue, or `None` when it is full (answer 429).
    pub fn enter(&self) -> Option<OwnedSemaphorePermit> {
        self.queue.clone().try_acquire_owned().ok()
    }

    /// The device a raw API key belongs to, if the key is live.
    pub fn device_for_key(&self, key: &str) -> Option<Device> {
        let hash = crate::auth::keys::hash_key(key);
        self.ledger.read(|s| {
            s.device_keys
                .get(&hash)
                .and_then(|id| s.devices.get(id))
                .cloned()
        })
    }

    pub async fn ingest(
        &self,
        device: &Device,
        events: Vec<Result<RawEvent, SyntaxError>>,
        mode: Mode,
    ) -> Result<Accepted, IngestError> {
        if events.is_empty() {
            return Err(IngestError::Empty);
        }
        if events.len() > self.max_events {
            return Err(IngestError::TooMany {
                count: events.len(),
                max: self.max_events,
            });
        }
        let (records, rejected) = self.validate_all(device, events);
        if !rejected.is_empty() && mode == Mode::AllOrNothing {
            return Err(IngestError::Invalid(rejected));
        }
        let ids: Vec<Uuid> = records
            .iter()
            .map(|r| scoped(&device.tenant, r.event_id))
            .collect();
        let fresh = self.dedupe.claim(&ids);
        let duplicates = fresh.iter().filter(|f| !**f).count();
        let new: Vec<TelemetryRecord> = records
            .into_iter()
            .zip(&fresh)
            .filter_map(|(r, f)| f.then_some(r))
            .collect();
        if new.is_empty() {
            return Ok(Accepted {
                accepted: 0,
                duplicates,
                rejected,
                position: None,
            });
        }
        let claimed: Vec<Uuid> = new
            .iter()
            .map(|r| scoped(&device.tenant, r.event_id))
            .collect();
        let accepted = new.len();
        let event = Event::TelemetryIngested {
            device_id: device.id.clone(),
            events: new,
            tenant: device.tenant.clone(),
        };
        let actor = format!("device:{}", device.id);
        match self
            .ledger
            .record(&device_stream(&device.id), vec![event], &actor)
            .await
        {
            Ok(appended) => Ok(Accepted {
                accepted,
                duplicates,
                rejected,
                position: Some(appended.last_position),
            }),
            Err(e) => {
                // Not durable: a retry must be accepted, not counted as a duplicate.
                self.dedupe.release(&claimed);
                Err(e.into())
            }
        }
    }

    fn validate_all(
        &self,
        device: &Device,
        events: Vec<Result<RawEvent, SyntaxError>>,
    ) -> (Vec<TelemetryRecord>, Vec<EventError>) {
        let ctx = Context {
            device_id: &device.id,
            model_name: device.model_name.as_deref(),
            model_version: device.model_version.as_deref(),
            rules: &self.rules,
            now_ms: now_ms(),
        };
        let mut records = Vec::with_capacity(events.len());
        let mut rejected = Vec::new();
        for (index, raw) in events.into_iter().enumerate() {
            let result = match raw {
                Ok(raw) => validate(raw, &ctx),
                Err(e) => Err(vec![EventError {
                    index: 0,
                    field: "(event)".into(),
                    reason: e.to_string(),
                }]),
            };
            match result {
                Ok(r) => records.push(r),
                Err(errs) => rejected.extend(errs.into_iter().map(|e| EventError { index, ..e })),
            }
        }
        (records, rejected)
    }
}

/// An event id as the idempotency index keys it: within its tenant, so one tenant's ids can
/// never make another's events look like duplicates. A hash, so no id can be chosen to collide.
pub fn scoped(tenant: &str, event_id: Uuid) -> Uuid {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(tenant.as_bytes());
    h.update([0]);
    h.update(event_id.as_bytes());
    let digest = h.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    Uuid::from_bytes(bytes)
}

/// Feed the ids of a `TelemetryIngested` record read back from the log (start-up replay) to
/// the idempotency index. Only the ids and the tenant are decoded.
pub fn remember(dedupe: &DedupeIndex, rec: &RecordedEvent) {
    #[derive(Deserialize)]
    struct Ids {
        data: IdsData,
    }
    #[derive(Deserialize)]
    struct IdsData {
        events: Vec<IdOnly>,
        #[serde(default = "crate::events::default_tenant")]
        tenant: String,
    }
    #[derive(Deserialize)]
    struct IdOnly {
        event_id: Uuid,
    }
    match serde_json::from_slice::<Ids>(&rec.payload) {
        Ok(Ids { data }) => data
            .events
            .iter()
            .for_each(|e| dedupe.remember(scoped(&data.tenant, e.event_id))),
        Err(e) => tracing::warn!(position = rec.position, error = %e, "unreadable telemetry ids"),
    }
}
