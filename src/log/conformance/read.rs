//! Reads: one stream from a version, all streams in order, catch-up subscriptions.

use super::*;

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
