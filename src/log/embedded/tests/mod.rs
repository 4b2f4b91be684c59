//! Embedded-specific tests: recovery from torn tails and corruption, rotation, locking.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::format;
use super::{EmbeddedConfig, EmbeddedLog};
use crate::log::conformance::{assert_same, event, events, stream_name};
use crate::log::{EventLog, ExpectedVersion, LogError, NewEvent};

fn no_cache() -> EmbeddedConfig {
    EmbeddedConfig {
        cache_max_bytes: 0,
        ..EmbeddedConfig::default()
    }
}

fn small_segments() -> EmbeddedConfig {
    EmbeddedConfig {
        segment_max_bytes: 2048,
        cache_max_bytes: 0,
        ..EmbeddedConfig::default()
    }
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .and_then(format::parse_segment_file_name)
                .is_some()
        })
        .collect();
    out.sort();
    out
}

fn last_segment(dir: &Path) -> PathBuf {
    segments(dir).pop().expect("a segment")
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).expect("metadata").len()
}

fn append_bytes(path: &Path, bytes: &[u8]) {
    let mut f = OpenOptions::new().append(true).open(path).expect("open");
    f.write_all(bytes).expect("write");
}

fn flip_byte(path: &Path, offset: u64) {
    let mut data = std::fs::read(path).expect("read");
    data[offset as usize] ^= 0x5A;
    std::fs::write(path, data).expect("write");
}

fn truncate(path: &Path, len: u64) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open")
        .set_len(len)
        .expect("set_len");
}

/// A log with five single-event appends to one stream, closed. Returns the stream, the events
/// and the segment length after them.
async fn five_appends(dir: &Path) -> (String, Vec<NewEvent>, u64) {
    let log = EmbeddedLog::open_with(dir, no_cache()).await.expect("open");
    let stream = stream_name("run");
    let mut appended = Vec::new();
    for i in 0..5 {
        let ev = event(i);
        log.append(&stream, ExpectedVersion::Any, vec![ev.clone()])
            .await
            .expect("append");
        appended.push(ev);
    }
    log.close().await.expect("close");
    (stream, appended, file_len(&last_segment(dir)))
}

/// Then one append of three events to the same stream; returns the events.
async fn then_three_event_append(dir: &Path, stream: &str) -> Vec<NewEvent> {
    let log = EmbeddedLog::open_with(dir, no_cache()).await.expect("open");
    let batch = events(10, 3);
    log.append(stream, ExpectedVersion::Exact(4), batch.clone())
        .await
        .expect("append");
    log.close().await.expect("close");
    batch
}

/// Opens and checks that exactly the five single-event appends are there, that the segment
/// was cut back to `len`, and that appending continues at position 5 / version 5.
async fn assert_recovered_to_five(dir: &Path, stream: &str, appended: &[NewEvent], len: u64) {
    let log = EmbeddedLog::open_with(dir, no_cache())
        .await
        .expect("reopen");
    assert_eq!(log.head(), 5);
    assert_eq!(log.stream_version(stream), Some(4));
    assert_eq!(
        file_len(&last_segment(dir)),
        len,
        "truncated to the last whole append"
    );
    let read = log.read_all(0, 100).await.expect("read_all");
    assert_eq!(read.len(), 5);
    for (rec, ev) in read.iter().zip(appended) {
        assert_same(rec, ev);
    }
    let r = log
        .append(stream, ExpectedVersion::Exact(4), events(50, 2))
        .await
        .expect("append after recovery");
    assert_eq!((r.first_position, r.last_version), (5, 6));
    log.close().await.expect("close");
    let log = EmbeddedLog::open_with(dir, no_cache())
        .await
        .expect("reopen again");
    assert_eq!(log.head(), 7);
    log.close().await.expect("close");
}

fn assert_corrupt(result: Result<std::sync::Arc<EmbeddedLog>, LogError>, path: &Path, offset: u64) {
    match result {
        Err(LogError::Corrupt {
            file,
            offset: at,
            reason,
        }) => {
            assert_eq!(file, path.display().to_string(), "{reason}");
            assert_eq!(at, offset, "{reason}");
        }
        Err(e) => panic!("expected Corrupt, got {e:?}"),
        Ok(_) => panic!("expected Corrupt, the log opened"),
    }
}

#[tokio::test]
async fn torn_tail_cut_by_a_few_bytes_drops_the_whole_append() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (stream, appended, len) = five_appends(dir.path()).await;
    then_three_event_append(dir.path(), &stream).await;
    let seg = last_segment(dir.path());
    truncate(&seg, file_len(&seg) - 3);
    assert_recovered_to_five(dir.path(), &stream, &appended, len).await;
}

#[tokio::test]
async fn torn_multi_event_append_cut_between_records_is_dropped_entirely() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (stream, appended, len) = five_appends(dir.path()).await;
    let batch = then_three_event_append(dir.path(), &stream).await;
    // Two of the three records are whole on disk; the append is still dropped.
    let two =
        (format::frame_len(&stream, &batch[0]) + format::frame_len(&stream, &batch[1])) as u64;
    truncate(&last_segment(dir.path()), len + two);
    assert_recovered_to_five(dir.path(), &stream, &appended, len).await;
}

#[tokio::test]
async fn torn_header_is_truncated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (stream, appended, len) = five_appends(dir.path()).await;
    then_three_event_append(dir.path(), &stream).await;
    // Cut inside the second record's header.
    let ev = event(10);
    truncate(
        &last_segment(dir.path()),
        len + format::frame_len(&stream, &ev) as u64 + 5,
    );
    assert_recovered_to_five(dir.path(), &stream, &appended, len).await;
}

#[tokio::test]
async fn garbage_tail_is_truncated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (stream, appended, len) = five_appends(dir.path()).await;
    let garbage: Vec<u8> = (0..300u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    append_bytes(&last_segment(dir.path()), &garbage);
    assert_recovered_to_five(dir.path(), &stream, &appended, len).await;
}

#[tokio::test]
async fn short_garbage_tail_is_truncated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (stream, appended, len) = five_appends(dir.path()).await;
    append_bytes(&last_segment(dir.path()), &[0xde, 0xad, 0xbe, 0xef, 0x01]);
    assert_recovered_to_five(dir.path(), &stream, &appended, len).await;
}

#[tokio::test]
async fn zero_tail_is_truncated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (stream, appended, len) = five_appends(dir.path()).await;
    append_bytes(&last_segment(dir.path()), &[0u8; 4096]);
    assert_recovered_to_five(dir.path(), &stream, &appended, len).await;
}

#[tokio::test]
async fn zeroed_final_append_is_truncated() {
    // The filesystem extended the file but the data of the final append never reached it.
    let dir = tempfile::tempdir().expect("tempdir");
    let (stream, appended, len) = five_appends(dir.path()).await;
    then_three_event_append(dir.path(), &stream).await;
    let seg = last_segment(dir.path());
    let total = file_len(&seg);
    truncate(&seg, len);
    append_bytes(&seg, &vec![0u8; (total - len) as usize]);
    assert_recovered_to_five(dir.path(), &stream, &appended, len).await;
}

#[tokio::test]
async fn bad_body_checksum_in_the_final_record_is_a_torn_tail() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (stream, appended, len) = five_appends(dir.path()).await;
    then_three_event_append(dir.path(), &stream).await;
    let seg = last_segment(dir.path());
    flip_byte(&seg, file_len(&seg) - 2);
    assert_recovered_to_five(dir.path(), &stream, &appended, len).await;
}

#[tokio::test]
async fn damage_inside_the_last_write_with_whole_records_after_it_is_torn() {
    // Pages of one write reached the disk out of order: the second record of the final
    // three-event append is zeros, the third is whole. Nothing of that write was acknowledged.
    let dir = tempfile::tempdir().expect("tempdir");
    let (stream, appended, len) = five_appends(dir.path()).await;
    let batch = then_three_event_append(dir.path(), &stream).await;
    let seg = last_segment(dir.path());
    let mut data = std::fs::read(&seg).expect("read");
    let second = len as usize + format::frame_len(&stream, &batch[0]);
    let third = second + format::frame_len(&stream, &batch[1]);
    data[second..third].fill(0);
    std::fs::write(&seg, &data).expect("write");
    assert_recovered_to_five(dir.path(), &stream, &appended, len).await;
}

#[tokio::test]
async fn damage_inside_a_write_followed_by_a_later_write_is_corrupt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (stream, _, len) = five_appends(dir.path()).await;
    let batch = then_three_event_append(dir.path(), &stream).await;
    let log = EmbeddedLog::open_with(dir.path(), no_cache())
        .await
        .expect("open");
    log.append(&stream, ExpectedVersion::Any, events(20, 1))
        .await
        .expect("append");
    log.close().await.expect("close");
    let seg = last_segment(dir.path());
    let second = len + format::frame_len(&stream, &batch[0]) as u64;
    flip_byte(&seg, second + 3);
    assert_corrupt(
        EmbeddedLog::open_with(dir.path(), no_cache()).await,
        &seg,
        second,
    );
}

#[tokio::test]
async fn flipped_body_byte_with_records_after_is_corrupt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (stream, _, _) = five_appends(dir.path()).await;
    let seg = last_segment(dir.path());
    let before = std::fs::read(&seg).expect("read");
    // The third record starts after two frames; damage its payload.
    let first = format::frame_len(&stream, &event(0)) as u64;
    let second = format::frame_len(&stream, &event(1)) as u64;
    let third_start = first + second;
    flip_byte(&seg, third_start + format::FRAME_HEADER_LEN as u64 + 70);
    assert_corrupt(
        EmbeddedLog::open_with(dir.path(), no_cache()).await,
        &seg,
        third_start,
    );
    // Refusing to open changed nothing on disk.
    let after = std::fs::read(&seg).expect("read");
    assert_eq!(after.len(), before.len());
}

#[tokio::test]
async fn flipped_header_byte_with_records_after_is_corrupt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (stream, _, _) = five_appends(dir.path()).await;
    let seg = last_segment(dir.path());
    let second_start = format::frame_len(&stream, &event(0)) as u64;
    flip_byte(&seg, second_start + 1);
    assert_corrupt(
        EmbeddedLog::open_with(dir.path(), no_cache()).await,
        &seg,
        second_start,
    );
}

async fn rotated_log(dir: &Path) -> (String, u64) {
    let log = EmbeddedLog::open_with(dir, small_segments())
        .await
        .expect("open");
    let stream = stream_name("device");
    for i in 0..60 {
        log.append(&stream, ExpectedVersion::Any, events(i * 2, 2))
            .await
            .expect("append");
    }
    let head = log.head();
    log.close().await.expect("close");
    assert!(segments(dir).len() > 3, "rotated");
    (stream, head)
}

#[tokio::test]
async fn damage_in_a_segment_before_the_last_is_corrupt() {
    let dir = tempfile::tempdir().expect("tempdir");
    rotated_log(dir.path()).await;
    let segs = segments(dir.path());
    let victim = &segs[1];
    let original = std::fs::read(victim).expect("read");
    let len = original.len() as u64;
    truncate(victim, len - 3);
    match EmbeddedLog::open_with(dir.path(), small_segments()).await {
        Err(LogError::Corrupt { file, .. }) => assert_eq!(file, victim.display().to_string()),
        other => panic!("expected Corrupt, got {:?}", other.map(|_| ())),
    }
    // Even a zero tail there is corruption: that segment was synced before the next began.
    std::fs::write(victim, &original).expect("restore");
    append_bytes(victim, &[0u8; 64]);
    match EmbeddedLog::open_with(dir.path(), small_segments()).await {
        Err(LogError::Corrupt { file, offset, .. }) => {
            assert_eq!(file, victim.display().to_string());
            assert_eq!(offset, len);
        }
        other => panic!("expected Corrupt, got {:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn missing_segment_is_corrupt() {
    let dir = tempfile::tempdir().expect("tempdir");
    rotated_log(dir.path()).await;
    let segs = segments(dir.path());
    std::fs::remove_file(&segs[1]).expect("remove");
    assert_corrupt(
        EmbeddedLog::open_with(dir.path(), small_segments()).await,
        &segs[2],
        0,
    );
}

#[tokio::test]
async fn torn_tail_after_rotation_only_touches_the_last_segment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (stream, head) = rotated_log(dir.path()).await;
    let seg = last_segment(dir.path());
    // Drop the final two-event append by cutting its last record short.
    truncate(&seg, file_len(&seg) - 1);
    let log = EmbeddedLog::open_with(dir.path(), small_segments())
        .await
        .expect("open");
    assert_eq!(log.head(), head - 2);
    assert_eq!(log.stream_version(&stream), Some(head - 3));
    let all = log.read_all(0, 10_000).await.expect("read_all");
    assert_eq!(all.len() as u64, head - 2);
    assert!(all
        .iter()
        .enumerate()
        .all(|(i, e)| e.position == i as u64 && e.version == i as u64));
    log.close().await.expect("close");
}

#[tokio::test]
async fn empty_last_segment_is_reused() {
    // A crash right after rotation leaves an empty newest segment.
    let dir = tempfile::tempdir().expect("tempdir");
    let (stream, head) = rotated_log(dir.path()).await;
    let empty = dir.path().join(format::segment_file_name(head));
    std::fs::File::create(&empty).expect("create");
    let log = EmbeddedLog::open_with(dir.path(), small_segments())
        .await
        .expect("open");
    assert_eq!(log.head(), head);
    let r = log
        .append(&stream, ExpectedVersion::Exact(head - 1), events(500, 1))
        .await
        .expect("append");
    assert_eq!(r.first_position, head);
    assert!(file_len(&empty) > 0, "written to the empty segment");
    log.close().await.expect("close");
}

mod runtime;
