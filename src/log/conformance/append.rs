//! Appends: round trips, expected versions, idempotent retries, concurrency.

use super::*;

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
