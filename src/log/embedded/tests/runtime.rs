//! The open log at work: one opener per directory, group ordering, corruption found while
//! reading, size limits, subscriptions ending on close.

use super::*;

#[tokio::test]
async fn a_directory_is_opened_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = EmbeddedLog::open(dir.path()).await.expect("open");
    match EmbeddedLog::open(dir.path()).await {
        Err(LogError::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock),
        other => panic!("expected a lock error, got {:?}", other.map(|_| ())),
    }
    log.close().await.expect("close");
    let again = EmbeddedLog::open(dir.path())
        .await
        .expect("open after close");
    again.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_to_one_stream_in_one_group_are_checked_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = EmbeddedLog::open(dir.path()).await.expect("open");
    for round in 0..20u64 {
        let stream = stream_name("job");
        let (a, b, c) = tokio::join!(
            log.append(&stream, ExpectedVersion::NoStream, events(round * 10, 1)),
            log.append(
                &stream,
                ExpectedVersion::Exact(0),
                events(round * 10 + 1, 2)
            ),
            log.append(
                &stream,
                ExpectedVersion::Exact(0),
                events(round * 10 + 3, 1)
            ),
        );
        assert_eq!(a.expect("first").last_version, 0);
        assert_eq!(b.expect("second").last_version, 2);
        assert!(matches!(
            c,
            Err(LogError::WrongExpectedVersion {
                actual: Some(2),
                ..
            })
        ));
    }
    log.close().await.expect("close");
}

#[tokio::test]
async fn corruption_found_while_reading_is_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = EmbeddedLog::open_with(dir.path(), no_cache())
        .await
        .expect("open");
    let stream = stream_name("run");
    for i in 0..3 {
        log.append(&stream, ExpectedVersion::Any, events(i, 1))
            .await
            .expect("append");
    }
    let seg = last_segment(dir.path());
    let second = format::frame_len(&stream, &event(0)) as u64;
    flip_byte(&seg, second + 40);
    match log.read_stream(&stream, 1, 1).await {
        Err(LogError::Corrupt { file, offset, .. }) => {
            assert_eq!(file, seg.display().to_string());
            assert_eq!(offset, second);
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert_eq!(log.read_all(0, 1).await.expect("first is fine").len(), 1);
    log.close().await.expect("close");
}

#[tokio::test]
async fn oversized_append_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = EmbeddedConfig {
        max_append_bytes: 1024,
        ..EmbeddedConfig::default()
    };
    let log = EmbeddedLog::open_with(dir.path(), config)
        .await
        .expect("open");
    let mut big = event(0);
    big.payload = vec![b'1'; 2000];
    match log.append("run-x", ExpectedVersion::Any, vec![big]).await {
        Err(LogError::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput),
        other => panic!("expected InvalidInput, got {other:?}"),
    }
    assert_eq!(log.head(), 0);
    log.close().await.expect("close");
}

#[tokio::test]
async fn subscription_ends_after_close() {
    use futures::StreamExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let log = EmbeddedLog::open(dir.path()).await.expect("open");
    log.append("run-1", ExpectedVersion::Any, events(0, 3))
        .await
        .expect("append");
    let sub = log.subscribe_all(1);
    log.close().await.expect("close");
    let got: Vec<_> = sub.collect().await;
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|e| e.is_ok()));
}
