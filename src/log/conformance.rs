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

pub async fn append_and_read_round_trip(f: &dyn LogFactory) {
    let log = f.open().await;
    let stream = stream_name("run");
    let head = log.head();
    let batch = events(0, 3);
    let r = log
        .append(&stream, ExpectedVersion::NoStream, batch.clone())
        .await
        .expect("append");
    assert_eq!(r.last_position - r.first_position, 2);
    assert_eq!(r.last_version, 2);
    assert!(r.first_position >= head);
    assert!(
        log.head() > r.last_position,
        "head advanced past the append"
    );
    assert_eq!(log.stream_version(&stream), Some(2));

    let read = log.read_stream(&stream, 0, 100).await.expect("read_stream");
    assert_eq!(read.len(), 3);
    for (i, (rec, ev)) in read.iter().zip(&batch).enumerate() {
        assert_same(rec, ev);
        assert_eq!(rec.stream, stream);
        assert_eq!(rec.version, i as u64);
        assert_eq!(rec.position, r.first_position + i as u64);
    }
    let all = log.read_all(r.first_position, 3).await.expect("read_all");
    assert_eq!(all, read);

    let second = log
        .append(&stream, ExpectedVersion::Exact(2), events(3, 1))
        .await
        .expect("second append");
    assert_eq!(second.last_version, 3);
    assert_eq!(second.first_position, second.last_position);
    assert!(second.first_position > r.last_position);
    assert_eq!(log.stream_version(&stream_name("missing")), None);
    assert!(log
        .read_stream(&stream_name("missing"), 0, 10)
        .await
        .expect("read missing")
        .is_empty());
    assert!(log
        .read_all(log.head(), 10)
        .await
        .expect("read at head")
        .is_empty());
    assert!(log
        .read_all(r.first_position, 0)
        .await
        .expect("max 0")
        .is_empty());
    log.close().await.expect("close");
}

pub async fn empty_append_is_rejected(f: &dyn LogFactory) {
    let log = f.open().await;
    let err = log
        .append(&stream_name("run"), ExpectedVersion::Any, Vec::new())
        .await
        .expect_err("empty append");
    assert!(matches!(err, LogError::EmptyAppend), "{err:?}");
    log.close().await.expect("close");
}

pub async fn expected_version_conflicts(f: &dyn LogFactory) {
    let log = f.open().await;
    let stream = stream_name("job");
    let missing = stream_name("job");

    // Exact on a stream that does not exist.
    match log
        .append(&missing, ExpectedVersion::Exact(0), events(0, 1))
        .await
    {
        Err(LogError::WrongExpectedVersion {
            stream: s,
            expected,
            actual,
        }) => {
            assert_eq!(s, missing);
            assert_eq!(expected, ExpectedVersion::Exact(0));
            assert_eq!(actual, None);
        }
        other => panic!("expected WrongExpectedVersion, got {other:?}"),
    }
    log.append(&stream, ExpectedVersion::NoStream, events(0, 2))
        .await
        .expect("create");
    // NoStream on an existing stream.
    match log
        .append(&stream, ExpectedVersion::NoStream, events(2, 1))
        .await
    {
        Err(LogError::WrongExpectedVersion {
            expected, actual, ..
        }) => {
            assert_eq!(expected, ExpectedVersion::NoStream);
            assert_eq!(actual, Some(1));
        }
        other => panic!("expected WrongExpectedVersion, got {other:?}"),
    }
    // Exact with a stale version.
    match log
        .append(&stream, ExpectedVersion::Exact(0), events(3, 1))
        .await
    {
        Err(LogError::WrongExpectedVersion {
            expected, actual, ..
        }) => {
            assert_eq!(expected, ExpectedVersion::Exact(0));
            assert_eq!(actual, Some(1));
        }
        other => panic!("expected WrongExpectedVersion, got {other:?}"),
    }
    // Exact with a version ahead of the stream.
    assert!(matches!(
        log.append(&stream, ExpectedVersion::Exact(5), events(4, 1))
            .await,
        Err(LogError::WrongExpectedVersion { .. })
    ));
    // Nothing of the rejected appends was written.
    assert_eq!(log.stream_version(&stream), Some(1));
    assert_eq!(log.stream_version(&missing), None);
    assert_eq!(
        log.read_stream(&stream, 0, 10).await.expect("read").len(),
        2
    );
    // The right version and Any succeed.
    let r = log
        .append(&stream, ExpectedVersion::Exact(1), events(5, 1))
        .await
        .expect("exact");
    assert_eq!(r.last_version, 2);
    let r = log
        .append(&stream, ExpectedVersion::Any, events(6, 1))
        .await
        .expect("any");
    assert_eq!(r.last_version, 3);
    let r = log
        .append(&stream_name("job"), ExpectedVersion::Any, events(7, 1))
        .await
        .expect("any on a new stream");
    assert_eq!(r.last_version, 0);
    log.close().await.expect("close");
}

pub async fn idempotent_retry(f: &dyn LogFactory) {
    let log = f.open().await;
    let stream = stream_name("run");
    let batch = events(0, 3);
    let first = log
        .append(&stream, ExpectedVersion::NoStream, batch.clone())
        .await
        .expect("append");
    let head = log.head();
    let stats = log.stats();
    // Same ids, same stream: the original result, whatever the expected version says now.
    for expected in [
        ExpectedVersion::NoStream,
        ExpectedVersion::Any,
        ExpectedVersion::Exact(0),
    ] {
        let again = log
            .append(&stream, expected, batch.clone())
            .await
            .expect("retry");
        assert_eq!(again, first);
    }
    assert_eq!(log.head(), head, "a retry writes nothing");
    let after = log.stats();
    assert_eq!(after.events, stats.events);
    assert_eq!(after.bytes, stats.bytes);
    assert_eq!(
        log.read_stream(&stream, 0, 10).await.expect("read").len(),
        3
    );

    // A retry racing the original in flight resolves to the same result.
    let racing = stream_name("run");
    let batch = events(10, 2);
    let (a, b) = tokio::join!(
        log.append(&racing, ExpectedVersion::NoStream, batch.clone()),
        log.append(&racing, ExpectedVersion::NoStream, batch.clone()),
    );
    assert_eq!(a.expect("first of race"), b.expect("second of race"));
    assert_eq!(log.stream_version(&racing), Some(1));
    log.close().await.expect("close");
}

pub async fn id_conflicts(f: &dyn LogFactory) {
    let log = f.open().await;
    let stream = stream_name("run");
    let batch = events(0, 2);
    log.append(&stream, ExpectedVersion::Any, batch.clone())
        .await
        .expect("append");
    let head = log.head();

    // Some ids known, others new.
    let mut mixed = vec![batch[0].clone()];
    mixed.extend(events(2, 1));
    match log.append(&stream, ExpectedVersion::Any, mixed).await {
        Err(LogError::IdConflict { id }) => assert_eq!(id, batch[0].id),
        other => panic!("expected IdConflict, got {other:?}"),
    }
    // Known ids on another stream.
    match log
        .append(&stream_name("run"), ExpectedVersion::Any, batch.clone())
        .await
    {
        Err(LogError::IdConflict { id }) => assert_eq!(id, batch[0].id),
        other => panic!("expected IdConflict, got {other:?}"),
    }
    // The same id twice in one append.
    let twice = event(9);
    match log
        .append(
            &stream_name("run"),
            ExpectedVersion::Any,
            vec![twice.clone(), twice.clone()],
        )
        .await
    {
        Err(LogError::IdConflict { id }) => assert_eq!(id, twice.id),
        other => panic!("expected IdConflict, got {other:?}"),
    }
    assert_eq!(log.head(), head, "conflicting appends write nothing");
    assert_eq!(log.stream_version(&stream), Some(1));
    log.close().await.expect("close");
}

pub async fn read_stream_from_version(f: &dyn LogFactory) {
    let log = f.open().await;
    let a = stream_name("run");
    let b = stream_name("run");
    let mut appended = Vec::new();
    // Interleave two streams so a stream's positions are not contiguous.
    for i in 0..10u64 {
        let ev = event(i);
        log.append(&a, ExpectedVersion::Any, vec![ev.clone()])
            .await
            .expect("append a");
        appended.push(ev);
        log.append(&b, ExpectedVersion::Any, events(100 + i, 2))
            .await
            .expect("append b");
    }
    let read = log.read_stream(&a, 4, 3).await.expect("read");
    assert_eq!(
        read.iter().map(|e| e.version).collect::<Vec<_>>(),
        vec![4, 5, 6]
    );
    for (rec, ev) in read.iter().zip(&appended[4..7]) {
        assert_same(rec, ev);
        assert_eq!(rec.stream, a);
    }
    assert!(read.windows(2).all(|w| w[0].position < w[1].position));
    assert_eq!(log.read_stream(&a, 8, 100).await.expect("tail").len(), 2);
    assert!(log.read_stream(&a, 10, 100).await.expect("end").is_empty());
    assert!(log
        .read_stream(&a, u64::MAX, 100)
        .await
        .expect("far")
        .is_empty());
    assert!(log.read_stream(&a, 0, 0).await.expect("max 0").is_empty());
    let all_b = log.read_stream(&b, 0, 1000).await.expect("b");
    assert_eq!(all_b.len(), 20);
    assert!(all_b
        .iter()
        .enumerate()
        .all(|(i, e)| e.version == i as u64 && e.stream == b));
    log.close().await.expect("close");
}

/// Many appends (enough to rotate segments when the backend is configured small), read back
/// through `read_all` in pages and through `read_stream`.
pub async fn read_all_in_order(f: &dyn LogFactory) {
    let log = f.open().await;
    let start = log.head();
    let streams: Vec<String> = (0..5).map(|_| stream_name("device")).collect();
    let mut appended = Vec::new();
    for i in 0..300u64 {
        let stream = &streams[(i % 5) as usize];
        let batch = events(i * 3, 1 + i % 3);
        let r = log
            .append(stream, ExpectedVersion::Any, batch.clone())
            .await
            .expect("append");
        for (k, ev) in batch.into_iter().enumerate() {
            appended.push((r.first_position + k as u64, stream.clone(), ev));
        }
    }
    let total = appended.len();
    let mut read = Vec::new();
    let mut pos = start;
    loop {
        let page = log.read_all(pos, 37).await.expect("read_all");
        assert!(page.len() <= 37);
        let Some(last) = page.last() else { break };
        pos = last.position + 1;
        read.extend(page.into_iter().filter(|e| streams.contains(&e.stream)));
    }
    assert_eq!(read.len(), total);
    for (rec, (position, stream, ev)) in read.iter().zip(&appended) {
        assert_eq!(rec.position, *position);
        assert_eq!(&rec.stream, stream);
        assert_same(rec, ev);
    }
    assert!(read.windows(2).all(|w| w[0].position < w[1].position));
    for stream in &streams {
        let events = log
            .read_stream(stream, 0, 10_000)
            .await
            .expect("read_stream");
        assert!(events
            .iter()
            .enumerate()
            .all(|(i, e)| e.version == i as u64));
        assert_eq!(
            events.len(),
            appended.iter().filter(|(_, s, _)| s == stream).count()
        );
    }
    log.close().await.expect("close");
}

pub async fn subscribe_catch_up_then_live(f: &dyn LogFactory) {
    let log = f.open().await;
    let stream = stream_name("run");
    let start = log.head();
    let mut appended = Vec::new();
    for i in 0..20u64 {
        let ev = event(i);
        log.append(&stream, ExpectedVersion::Any, vec![ev.clone()])
            .await
            .expect("append");
        appended.push(ev);
    }
    let mut sub = log
        .subscribe_all(start)
        .filter(|e| {
            let keep = e.as_ref().map_or(true, |e| e.stream == stream);
            async move { keep }
        })
        .boxed();
    for ev in &appended {
        let rec = tokio::time::timeout(WAIT, sub.next())
            .await
            .expect("catch-up event in time")
            .expect("stream open")
            .expect("event");
        assert_same(&rec, ev);
    }
    // Live: events appended after the catch-up arrive without polling.
    let writer = {
        let log = log.clone();
        let stream = stream.clone();
        tokio::spawn(async move {
            let mut live = Vec::new();
            for i in 100..110u64 {
                let ev = event(i);
                log.append(&stream, ExpectedVersion::Any, vec![ev.clone()])
                    .await
                    .expect("live append");
                live.push(ev);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            live
        })
    };
    let mut received = Vec::new();
    for _ in 0..10 {
        let rec = tokio::time::timeout(WAIT, sub.next())
            .await
            .expect("live event in time")
            .expect("stream open")
            .expect("event");
        received.push(rec);
    }
    let live = writer.await.expect("writer task");
    for (rec, ev) in received.iter().zip(&live) {
        assert_same(rec, ev);
    }
    let versions: Vec<u64> = received.iter().map(|e| e.version).collect();
    assert_eq!(versions, (20..30).collect::<Vec<_>>());
    log.close().await.expect("close");
}

/// 64 concurrent appenders: all succeed with distinct positions, and group commit makes them
/// share syncs.
pub async fn concurrent_appends_share_syncs(f: &dyn LogFactory) {
    let log = f.open().await;
    let before = log.stats();
    let start = log.head();
    let mut tasks = Vec::new();
    for t in 0..64u64 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let stream = stream_name("telemetry");
            let mut results = Vec::new();
            for i in 0..5u64 {
                let r = log
                    .append(&stream, expected_for(i), events(t * 100 + i, 1))
                    .await
                    .expect("concurrent append");
                assert_eq!(r.last_version, i);
                results.push(r);
            }
            results
        }));
    }
    let mut positions = Vec::new();
    for task in tasks {
        positions.extend(
            task.await
                .expect("task")
                .into_iter()
                .map(|r| r.first_position),
        );
    }
    positions.sort_unstable();
    positions.dedup();
    assert_eq!(positions.len(), 64 * 5, "every append got its own position");
    assert!(log.head() >= start + 64 * 5);
    let after = log.stats();
    let appends = after.appends - before.appends;
    let syncs = after.syncs - before.syncs;
    assert_eq!(appends, 64 * 5);
    assert!(
        syncs < appends,
        "group commit: {syncs} syncs for {appends} appends"
    );
    log.close().await.expect("close");
}

/// Optimistic concurrency under contention: of many appenders expecting the same version,
/// exactly one wins.
pub async fn concurrent_expected_version_one_winner(f: &dyn LogFactory) {
    let log = f.open().await;
    let stream = stream_name("job");
    log.append(&stream, ExpectedVersion::NoStream, events(0, 1))
        .await
        .expect("create");
    let mut tasks = Vec::new();
    for t in 0..16u64 {
        let log = log.clone();
        let stream = stream.clone();
        tasks.push(tokio::spawn(async move {
            log.append(&stream, ExpectedVersion::Exact(0), events(10 + t, 1))
                .await
        }));
    }
    let mut wins = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(r) => {
                wins += 1;
                assert_eq!(r.last_version, 1);
            }
            Err(LogError::WrongExpectedVersion { actual, .. }) => assert_eq!(actual, Some(1)),
            Err(e) => panic!("unexpected error {e:?}"),
        }
    }
    assert_eq!(wins, 1);
    assert_eq!(log.stream_version(&stream), Some(1));
    log.close().await.expect("close");
}

pub async fn closed_log_refuses_appends(f: &dyn LogFactory) {
    let log = f.open().await;
    let stream = stream_name("run");
    log.append(&stream, ExpectedVersion::Any, events(0, 1))
        .await
        .expect("append");
    log.close().await.expect("close");
    log.close().await.expect("close twice");
    let err = log
        .append(&stream, ExpectedVersion::Any, events(1, 1))
        .await
        .expect_err("append after close");
    assert!(matches!(err, LogError::Closed), "{err:?}");
}

pub async fn reopen_keeps_everything(f: &dyn LogFactory) {
    let log = f.open().await;
    let a = stream_name("run");
    let b = stream_name("experiment");
    let start = log.head();
    let mut results: Vec<(String, Vec<NewEvent>, AppendResult)> = Vec::new();
    for i in 0..40u64 {
        let stream = if i % 3 == 0 { &b } else { &a };
        let batch = events(i * 4, 1 + i % 4);
        let r = log
            .append(stream, ExpectedVersion::Any, batch.clone())
            .await
            .expect("append");
        results.push((stream.clone(), batch, r));
    }
    let head = log.head();
    let (va, vb) = (log.stream_version(&a), log.stream_version(&b));
    log.close().await.expect("close");
    drop(log);

    let log = f.open().await;
    assert_eq!(log.head(), head);
    assert_eq!(log.stream_version(&a), va);
    assert_eq!(log.stream_version(&b), vb);
    let read_a = read_all_of(log.as_ref(), start, &a).await;
    let read_b = read_all_of(log.as_ref(), start, &b).await;
    let mut ia = read_a.iter();
    let mut ib = read_b.iter();
    for (stream, batch, r) in &results {
        let it = if *stream == a { &mut ia } else { &mut ib };
        for (k, ev) in batch.iter().enumerate() {
            let rec = it.next().expect("event present after reopen");
            assert_same(rec, ev);
            assert_eq!(rec.position, r.first_position + k as u64);
        }
        let last = r.last_version;
        let from_stream = log.read_stream(stream, last, 1).await.expect("read_stream");
        assert_eq!(from_stream[0].position, r.last_position);
    }
    // Idempotency survives the reopen.
    let (stream, batch, r) = &results[5];
    let again = log
        .append(stream, ExpectedVersion::Any, batch.clone())
        .await
        .expect("retry after reopen");
    assert_eq!(again, *r);
    assert_eq!(log.head(), head);
    // New appends continue the positions and versions.
    let next = log
        .append(
            &a,
            ExpectedVersion::Exact(va.expect("a exists")),
            events(1000, 2),
        )
        .await
        .expect("append after reopen");
    assert_eq!(next.first_position, head);
    assert_eq!(next.last_version, va.expect("a exists") + 2);
    log.close().await.expect("close");
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

/// The suite on the embedded backend.
mod embedded {
    use super::*;
    use crate::log::embedded::{EmbeddedConfig, EmbeddedLog};

    struct Embedded {
        dir: tempfile::TempDir,
        config: EmbeddedConfig,
    }

    impl Embedded {
        fn new(config: EmbeddedConfig) -> Self {
            Embedded {
                dir: tempfile::tempdir().expect("temp dir"),
                config,
            }
        }

        /// Small segments (rotation every few dozen events) and a small cache, so reads hit
        /// the disk and several segments.
        fn small() -> Self {
            Self::new(EmbeddedConfig {
                segment_max_bytes: 4096,
                cache_max_bytes: 2048,
                ..EmbeddedConfig::default()
            })
        }

        fn segment_count(&self) -> usize {
            std::fs::read_dir(self.dir.path())
                .expect("read dir")
                .filter(|e| {
                    e.as_ref()
                        .map(|e| e.file_name().to_string_lossy().starts_with("segment-"))
                        .unwrap_or(false)
                })
                .count()
        }
    }

    #[async_trait]
    impl LogFactory for Embedded {
        async fn open(&self) -> SharedLog {
            let log: Arc<EmbeddedLog> =
                EmbeddedLog::open_with(self.dir.path(), self.config.clone())
                    .await
                    .expect("open embedded log");
            log
        }
    }

    macro_rules! on_embedded {
        ($($check:ident),* $(,)?) => {$(
            mod $check {
                use super::*;

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn default_config() {
                    super::super::$check(&Embedded::new(EmbeddedConfig::default())).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn small_segments_no_cache() {
                    super::super::$check(&Embedded::new(EmbeddedConfig {
                        segment_max_bytes: 4096,
                        cache_max_bytes: 0,
                        ..EmbeddedConfig::default()
                    }))
                    .await;
                }
            }
        )*};
    }

    on_embedded!(
        append_and_read_round_trip,
        empty_append_is_rejected,
        expected_version_conflicts,
        idempotent_retry,
        id_conflicts,
        read_stream_from_version,
        read_all_in_order,
        subscribe_catch_up_then_live,
        concurrent_appends_share_syncs,
        concurrent_expected_version_one_winner,
        closed_log_refuses_appends,
        reopen_keeps_everything,
    );

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn read_all_across_segment_rotation() {
        let f = Embedded::small();
        read_all_in_order(&f).await;
        assert!(
            f.segment_count() > 10,
            "rotated into {} segments",
            f.segment_count()
        );
        // And again after reopening: the rebuilt index spans every segment.
        reopen_keeps_everything(&f).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn whole_suite_on_one_log() {
        run_all(&Embedded::small()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn generic_subscription_helper() {
        let f = Embedded::new(EmbeddedConfig::default());
        let log = f.open().await;
        log.append("run-1", ExpectedVersion::Any, events(0, 5))
            .await
            .expect("append");
        let mut sub = crate::log::subscribe_all_via_read(log.clone(), 2);
        for pos in 2..5 {
            let e = tokio::time::timeout(WAIT, sub.next())
                .await
                .expect("in time")
                .expect("open")
                .expect("event");
            assert_eq!(e.position, pos);
        }
        let live = event(9);
        log.append("run-2", ExpectedVersion::NoStream, vec![live.clone()])
            .await
            .expect("append");
        let e = tokio::time::timeout(WAIT, sub.next())
            .await
            .expect("in time")
            .expect("open")
            .expect("event");
        assert_same(&e, &live);
        assert_eq!(e.position, 5);
        log.close().await.expect("close");
        assert!(sub.next().await.is_none(), "ends once the log is closed");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn whole_suite_on_a_current_thread_runtime() {
        run_all(&Embedded::new(EmbeddedConfig::default())).await;
    }
}
