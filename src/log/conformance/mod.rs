//! Backend-agnostic conformance suite for [`EventLog`].
//!
//! Each check is a `pub async fn` taking a [`LogFactory`]. Checks use fresh stream names and
//! positions relative to the head they find, so a backend whose store is shared between checks
//! (KurrentDB) can run them too. `run_all` runs every check; the `embedded` module at the
//! bottom runs them on the embedded backend in temporary directories.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use uuid::Uuid;

use super::{
    AppendResult, EventLog, ExpectedVersion, LogError, NewEvent, RecordedEvent, SharedLog,
};

/// Opens the log under test. Opening again after `close()` must give the same stored log.
#[async_trait]
pub trait LogFactory: Send + Sync {
    async fn open(&self) -> SharedLog;
}

const WAIT: Duration = Duration::from_secs(20);

mod append;
mod embedded;
mod lifecycle;
mod read;

pub use append::*;
pub use lifecycle::*;
pub use read::*;

pub fn stream_name(prefix: &str) -> String {
    format!("{prefix}-{}", Uuid::new_v4().simple())
}

pub fn event(n: u64) -> NewEvent {
    NewEvent {
        id: Uuid::new_v4(),
        event_type: "MetricsLogged".into(),
        schema_version: 1,
        actor: format!("user:{}", n % 7),
        time_ms: 1_700_000_000_000 + n as i64,
        payload: serde_json::to_vec(&serde_json::json!({ "n": n, "key": "loss" }))
            .expect("serializing a literal"),
    }
}

pub fn events(from: u64, n: u64) -> Vec<NewEvent> {
    (from..from + n).map(event).collect()
}

/// The envelope fields of a recorded event match the appended one.
pub fn assert_same(recorded: &RecordedEvent, appended: &NewEvent) {
    assert_eq!(recorded.id, appended.id);
    assert_eq!(recorded.event_type, appended.event_type);
    assert_eq!(recorded.schema_version, appended.schema_version);
    assert_eq!(recorded.actor, appended.actor);
    assert_eq!(recorded.time_ms, appended.time_ms);
    assert_eq!(recorded.payload.as_ref(), appended.payload.as_slice());
}

/// Events of `stream` from `read_all(from)` until `head`.
async fn read_all_of(log: &dyn EventLog, from: u64, stream: &str) -> Vec<RecordedEvent> {
    let mut out = Vec::new();
    let mut pos = from;
    loop {
        let batch = log.read_all(pos, 1000).await.expect("read_all");
        let Some(last) = batch.last() else {
            return out;
        };
        pos = last.position + 1;
        out.extend(batch.into_iter().filter(|e| e.stream == stream));
    }
}

/// Every check, in order.
pub async fn run_all(f: &dyn LogFactory) {
    append_and_read_round_trip(f).await;
    empty_append_is_rejected(f).await;
    expected_version_conflicts(f).await;
    idempotent_retry(f).await;
    id_conflicts(f).await;
    read_stream_from_version(f).await;
    read_all_in_order(f).await;
    subscribe_catch_up_then_live(f).await;
    concurrent_appends_share_syncs(f).await;
    concurrent_expected_version_one_winner(f).await;
    closed_log_refuses_appends(f).await;
    reopen_keeps_everything(f).await;
}

/// `NoStream` for the first append of a stream, `Exact(i - 1)` for the i-th.
fn expected_for(i: u64) -> ExpectedVersion {
    if i == 0 {
        ExpectedVersion::NoStream
    } else {
        ExpectedVersion::Exact(i - 1)
    }
}
