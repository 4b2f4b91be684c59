//! Closing and reopening a log.

use super::*;

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
