//! The suite on the embedded backend.

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
        let log: Arc<EmbeddedLog> = EmbeddedLog::open_with(self.dir.path(), self.config.clone())
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
