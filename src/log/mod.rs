//! The event log: the only source of truth. Backends implement [`EventLog`] and pass the
//! same conformance suite (`log::conformance`).

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
use tokio::sync::watch;
use uuid::Uuid;

pub mod embedded;

#[cfg(test)]
mod conformance;

/// Global position of an event in the log: 0 for the first event, dense and increasing.
pub type Position = u64;

/// What the stream must look like for an append to be accepted (optimistic concurrency).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// No check.
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream's last event must have this version (versions start at 0).
    Exact(u64),
}

impl ExpectedVersion {
    /// Whether a stream whose last version is `current` (`None`: no stream) satisfies this
    /// expectation.
    pub fn matches(self, current: Option<u64>) -> bool {
        match self {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => current.is_none(),
            ExpectedVersion::Exact(v) => current == Some(v),
        }
    }
}

/// An event to append. `payload` is the JSON-encoded domain event.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub id: Uuid,
    pub event_type: String,
    pub schema_version: u32,
    pub actor: String,
    pub time_ms: i64,
    pub payload: Vec<u8>,
}

/// An event as stored: the envelope plus its place in the log.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedEvent {
    pub position: Position,
    pub stream: String,
    /// Version within its stream, 0-based.
    pub version: u64,
    pub id: Uuid,
    pub event_type: String,
    pub schema_version: u32,
    pub actor: String,
    pub time_ms: i64,
    pub payload: Bytes,
}

/// Where an acknowledged append landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendResult {
    /// Position of the first appended event.
    pub first_position: Position,
    /// Position of the last appended event.
    pub last_position: Position,
    /// Stream version of the last appended event.
    pub last_version: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error(
        "wrong expected version for stream {stream}: expected {expected:?}, actual {actual:?}"
    )]
    WrongExpectedVersion {
        stream: String,
        expected: ExpectedVersion,
        /// Last version of the stream, `None` when it does not exist.
        actual: Option<u64>,
    },
    #[error("event {id} was already appended with different content or to another stream")]
    IdConflict { id: Uuid },
    #[error("empty append")]
    EmptyAppend,
    #[error("event log corrupt: {file} at offset {offset}: {reason}")]
    Corrupt {
        file: String,
        offset: u64,
        reason: String,
    },
    #[error("event log I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("event log is closed")]
    Closed,
}

/// The event log contract shared by the embedded and KurrentDB backends.
#[async_trait]
pub trait EventLog: Send + Sync + 'static {
    /// Append atomically to one stream. Returns only once the events are durable.
    /// Appending events whose ids were all appended before to the same stream is a no-op that
    /// returns the original result (idempotent retry).
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, LogError>;

    /// Events of one stream from `from_version` on, at most `max`.
    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, LogError>;

    /// Events of all streams from `from` on (inclusive), in position order, at most `max`.
    async fn read_all(&self, from: Position, max: usize) -> Result<Vec<RecordedEvent>, LogError>;

    /// Catch-up subscription: every event from `from` on, then live events as they commit.
    fn subscribe_all(&self, from: Position) -> BoxStream<'static, Result<RecordedEvent, LogError>>;

    /// Position the next appended event will get (= number of durable events).
    fn head(&self) -> Position;

    /// Watch the head as it advances after each durable commit.
    fn watch_head(&self) -> watch::Receiver<Position>;

    /// Last version of a stream, `None` if it does not exist.
    fn stream_version(&self, stream: &str) -> Option<u64>;

    /// Counters for `/metrics`.
    fn stats(&self) -> LogStats;

    /// Stop accepting appends, finish the ones in flight, sync, and release files.
    async fn close(&self) -> Result<(), LogError>;
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogStats {
    pub appends: u64,
    pub events: u64,
    pub syncs: u64,
    pub bytes: u64,
}

pub type SharedLog = Arc<dyn EventLog>;

/// Events fetched per `read_all` call by [`catch_up_subscription`].
pub const SUBSCRIPTION_BATCH: usize = 4096;

/// Builds a catch-up-then-live subscription from a `read_all`-like function and the head watch.
///
/// Reads `read(next, SUBSCRIPTION_BATCH)` while `next` is behind the head, then waits on `head`
/// for the next commit (no polling). The stream ends after a read error (yielded once) or once
/// the head's sender is gone (the log was closed) and every event up to the last head was
/// delivered. Backends use it to implement [`EventLog::subscribe_all`].
pub fn catch_up_subscription<R, Fut>(
    from: Position,
    head: watch::Receiver<Position>,
    read: R,
) -> BoxStream<'static, Result<RecordedEvent, LogError>>
where
    R: FnMut(Position, usize) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Vec<RecordedEvent>, LogError>> + Send + 'static,
{
    struct State<R> {
        next: Position,
        head: watch::Receiver<Position>,
        read: R,
        buffer: VecDeque<RecordedEvent>,
        done: bool,
        closed: bool,
    }
    let state = State {
        next: from,
        head,
        read,
        buffer: VecDeque::new(),
        done: false,
        closed: false,
    };
    futures::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(event) = st.buffer.pop_front() {
                return Some((Ok(event), st));
            }
            if st.done {
                return None;
            }
            let head = *st.head.borrow_and_update();
            if st.next < head {
                match (st.read)(st.next, SUBSCRIPTION_BATCH).await {
                    Ok(events) if !events.is_empty() => {
                        if let Some(last) = events.last() {
                            st.next = last.position + 1;
                        }
                        st.buffer.extend(events);
                        continue;
                    }
                    // The head said there is more but nothing came back: wait for the next
                    // commit rather than spinning (or end if no commit can come any more).
                    Ok(_) if st.closed => return None,
                    Ok(_) => {}
                    Err(e) => {
                        st.done = true;
                        return Some((Err(e), st));
                    }
                }
            } else if st.closed {
                return None;
            }
            if st.head.changed().await.is_err() {
                // The log is closed: deliver what is left up to the final head, then end.
                st.closed = true;
            }
        }
    })
    .boxed()
}

/// [`catch_up_subscription`] over any [`EventLog`]'s `read_all` and `watch_head`.
pub fn subscribe_all_via_read(
    log: SharedLog,
    from: Position,
) -> BoxStream<'static, Result<RecordedEvent, LogError>> {
    let head = log.watch_head();
    catch_up_subscription(from, head, move |pos, max| {
        let log = log.clone();
        async move { log.read_all(pos, max).await }
    })
}
