//! The ingest path: validate each event, drop ids already accepted, append the rest as one
//! `TelemetryIngested` event, acknowledge once durable.

use std::collections::VecDeque;
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
use crate::log::{LogError, Position, RecordedEvent, SharedLog};

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
        let (new, claimed): (Vec<TelemetryRecord>, Vec<Uuid>) = records
            .into_iter()
            .zip(ids)
            .zip(&fresh)
            .filter_map(|(r, f)| f.then_some(r))
            .unzip();
        if new.is_empty() {
            return Ok(Accepted {
                accepted: 0,
                duplicates,
                rejected,
                position: None,
            });
        }
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

/// The newest `TelemetryIngested` records seen during the start-up replay: just enough of
/// them to hold `window` event ids. Older ids would be evicted from the idempotency index
/// anyway, so only these records are decoded (see [`refill`](Self::refill)).
pub struct RecentTelemetry {
    window: usize,
    /// (position, ids in the record), oldest first.
    records: VecDeque<(Position, usize)>,
    ids: usize,
}

impl RecentTelemetry {
    pub fn new(window: usize) -> RecentTelemetry {
        RecentTelemetry {
            window,
            records: VecDeque::new(),
            ids: 0,
        }
    }

    /// Note a `TelemetryIngested` record. Its ids are counted, not decoded: `"event_id"` with
    /// its quotes appears once per event (inside a JSON string the quotes would be escaped).
    pub fn note(&mut self, rec: &RecordedEvent) {
        let n = memchr::memmem::find_iter(&rec.payload, b"\"event_id\"").count();
        self.records.push_back((rec.position, n));
        self.ids += n;
        while let Some(&(_, oldest)) = self.records.front() {
            if self.ids - oldest < self.window {
                break;
            }
            self.records.pop_front();
            self.ids -= oldest;
        }
    }

    /// Read the noted records back from the log and put their ids in `dedupe`, oldest first.
    pub async fn refill(self, log: &SharedLog, dedupe: &DedupeIndex) -> Result<(), LogError> {
        let Some(&(mut from, _)) = self.records.front() else {
            return Ok(());
        };
        let end = self.records.back().map_or(from, |r| r.0);
        while from <= end {
            let batch = log.read_all(from, REFILL_CHUNK).await?;
            let Some(last) = batch.last() else { break };
            from = last.position + 1;
            batch
                .iter()
                .filter(|r| r.position <= end && r.event_type == "TelemetryIngested")
                .for_each(|r| remember(dedupe, r));
        }
        Ok(())
    }
}

/// Records read per call while refilling the idempotency index.
const REFILL_CHUNK: usize = 1024;

/// Feed the ids of a `TelemetryIngested` record read back from the log (start-up replay) to
/// the idempotency index. Only the ids and the tenant are decoded.
fn remember(dedupe: &DedupeIndex, rec: &RecordedEvent) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn record(position: Position, ids: usize) -> RecordedEvent {
        let events: Vec<_> = (0..ids)
            .map(|_| serde_json::json!({"event_id": Uuid::new_v4(), "s_note": "\"event_id\""}))
            .collect();
        RecordedEvent {
            position,
            stream: "device-d".into(),
            version: position,
            id: Uuid::new_v4(),
            event_type: "TelemetryIngested".into(),
            schema_version: 1,
            actor: "d".into(),
            time_ms: 0,
            payload: serde_json::to_vec(&serde_json::json!({"data": {"events": events}}))
                .unwrap()
                .into(),
        }
    }

    #[test]
    fn recent_telemetry_keeps_the_fewest_newest_records_that_hold_the_window() {
        let mut recent = RecentTelemetry::new(10);
        for (position, ids) in [(0, 4), (3, 4), (7, 4), (9, 3)] {
            recent.note(&record(position, ids));
        }
        // 4 + 3 = 7 ids are fewer than 10, so the record at 3 is still needed; the one at 0
        // is not. An `"event_id"` inside a string value is not counted.
        assert_eq!(recent.ids, 11);
        assert_eq!(recent.records.front(), Some(&(3, 4)));
    }
}
