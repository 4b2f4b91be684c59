//! The ledger executes commands: lock the target stream, decide against in-memory state,
//! append durably, then apply. State is rebuilt from the log on open.
//!
//! Commands on different streams run concurrently (so their appends share group-commit
//! syncs); commands on one stream are serialised by a striped lock, so the expected stream
//! version read from the log is exact. Commands touching experiment names also take a
//! global lock, since names are unique across streams.

use std::sync::Arc;

use parking_lot::RwLock;
use tokio::sync::Mutex;

use crate::domain::{self, Caller, Command, DomainError, State};
use crate::events::{self, decode, Event};
use crate::log::{AppendResult, ExpectedVersion, LogError, Position, SharedLog};

mod handoff;

pub use handoff::Handoff;

const LOCK_STRIPES: usize = 1024;
const REPLAY_CHUNK: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error(transparent)]
    Log(#[from] LogError),
    #[error(transparent)]
    Decode(#[from] events::DecodeError),
}

/// What a command did: the events it appended and where.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub events: Vec<Arc<Event>>,
    /// `None` when the command was a no-op (nothing appended).
    pub appended: Option<AppendResult>,
}

impl Outcome {
    /// The log position a reader must wait for to see this command's effect.
    pub fn position(&self) -> Option<Position> {
        self.appended.map(|a| a.last_position)
    }
}

pub struct Ledger {
    log: SharedLog,
    state: RwLock<State>,
    stripes: Vec<Mutex<()>>,
    names: Mutex<()>,
    /// Appended events, passed to the projector so it need not decode them again.
    handoff: Arc<Handoff>,
}

impl Ledger {
    /// Rebuild state from the whole log, then make sure the default experiment exists.
    pub async fn open(log: SharedLog) -> Result<Arc<Ledger>, LedgerError> {
        Self::open_with(log, |_| {}).await
    }

    /// Like [`open`](Self::open), handing each `TelemetryIngested` record (which the command
    /// side does not keep) to `telemetry`, e.g. to find, in the same pass over the log, the
    /// records the idempotency index must be refilled from.
    pub async fn open_with(
        log: SharedLog,
        mut telemetry: impl FnMut(&crate::log::RecordedEvent),
    ) -> Result<Arc<Ledger>, LedgerError> {
        let mut state = State::default();
        let mut from = 0;
        loop {
            let batch = log.read_all(from, REPLAY_CHUNK).await?;
            let Some(last) = batch.last() else { break };
            from = last.position + 1;
            for rec in &batch {
                // Metric values and telemetry are not part of the command-side state: skip
                // decoding them.
                match rec.event_type.as_str() {
                    "MetricsLogged" => continue,
                    "TelemetryIngested" => {
                        telemetry(rec);
                        continue;
                    }
                    _ => {}
                }
                domain::apply(&mut state, &decode(rec)?, rec.time_ms);
            }
        }
        let ledger = Arc::new(Ledger {
            log,
            state: RwLock::new(state),
            stripes: (0..LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
            names: Mutex::new(()),
            handoff: Arc::default(),
        });
        ledger.ensure_default_tenant().await?;
        ledger.ensure_default_experiment().await?;
        Ok(ledger)
    }

    /// The tenant of a fresh install (and of everything recorded before tenancy existed). It
    /// belongs to the installation's owner, so it has every feature.
    async fn ensure_default_tenant(&self) -> Result<(), LedgerError> {
        use crate::events::{TenantInfo, Tier, DEFAULT_TENANT};
        if self.read(|s| s.tenants.contains_key(DEFAULT_TENANT)) {
            return Ok(());
        }
        let command = Command::CreateTenant(TenantInfo {
            tenant_id: DEFAULT_TENANT.to_string(),
            name: "Default".to_string(),
            tier: Tier::Enterprise,
        });
        match self.execute(command, &Caller::bootstrap()).await {
            // Another node created it first; it arrives through replay.
            Ok(_) | Err(LedgerError::Log(LogError::WrongExpectedVersion { .. })) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn ensure_default_experiment(&self) -> Result<(), LedgerError> {
        use crate::domain::experiment::{
            default_artifact_location, DEFAULT_EXPERIMENT_ID, DEFAULT_EXPERIMENT_NAME,
        };
        if self
            .state
            .read()
            .experiment(DEFAULT_EXPERIMENT_ID)
            .is_some()
        {
            return Ok(());
        }
        let event = Event::ExperimentCreated {
            experiment_id: DEFAULT_EXPERIMENT_ID,
            name: DEFAULT_EXPERIMENT_NAME.to_string(),
            artifact_location: default_artifact_location(DEFAULT_EXPERIMENT_ID),
            tags: vec![],
            tenant: crate::events::DEFAULT_TENANT.to_string(),
        };
        let stream = events::experiment_stream(DEFAULT_EXPERIMENT_ID);
        let time = now_ms();
        match self
            .log
            .append(
                &stream,
                ExpectedVersion::NoStream,
                vec![event.to_new("system", time)],
            )
            .await
        {
            Ok(_) => {
                domain::apply(&mut self.state.write(), &event, time);
                Ok(())
            }
            // Another node created it first; it will arrive through replay.
            Err(LogError::WrongExpectedVersion { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    pub fn log(&self) -> &SharedLog {
        &self.log
    }

    /// What the projector takes appended events from.
    pub fn handoff(&self) -> Arc<Handoff> {
        self.handoff.clone()
    }

    /// Read access to the command-side state (e.g. to build a response from it).
    pub fn read<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        f(&self.state.read())
    }

    /// Authorize, decide, append durably, apply. Returns once the events are durable.
    pub async fn execute(&self, command: Command, caller: &Caller) -> Result<Outcome, LedgerError> {
        let _names = if command.needs_global_order() {
            Some(self.names.lock().await)
        } else {
            None
        };
        let stream = self.read(|s| command.stream(s));
        let _stream_lock = self.stripes[stripe(&stream)].lock().await;

        let events: Vec<Arc<Event>> = self
            .read(|s| {
                domain::authorize(s, caller, &command)?;
                domain::decide(s, &command)
            })?
            .into_iter()
            .map(Arc::new)
            .collect();
        if events.is_empty() {
            return Ok(Outcome {
                events,
                appended: None,
            });
        }
        let expected = match self.log.stream_version(&stream) {
            Some(v) => ExpectedVersion::Exact(v),
            None => ExpectedVersion::NoStream,
        };
        let time = now_ms();
        let new = events
            .iter()
            .map(|e| e.to_new(&caller.actor, time))
            .collect();
        let appended = self.log.append(&stream, expected, new).await?;
        self.handoff.offer(appended.first_position, &events);
        {
            let mut state = self.state.write();
            for e in &events {
                domain::apply(&mut state, e, time);
            }
        }
        Ok(Outcome {
            events,
            appended: Some(appended),
        })
    }

    /// Append events that need no validation against state (artifact records).
    pub async fn record(
        &self,
        stream: &str,
        events: Vec<Event>,
        actor: &str,
    ) -> Result<AppendResult, LedgerError> {
        let time = now_ms();
        let new = events.iter().map(|e| e.to_new(actor, time)).collect();
        let appended = self.log.append(stream, ExpectedVersion::Any, new).await?;
        let events: Vec<Arc<Event>> = events.into_iter().map(Arc::new).collect();
        self.handoff.offer(appended.first_position, &events);
        Ok(appended)
    }
}

fn stripe(stream: &str) -> usize {
    // FNV-1a: cheap and stable; only needs to spread streams over the stripes.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in stream.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    (h % LOCK_STRIPES as u64) as usize
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
