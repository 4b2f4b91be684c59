//! The single writer thread and its group commit.
//!
//! Appenders send requests over a channel. The writer takes everything queued (up to
//! `max_group_bytes`), decides each request in arrival order against the durable state plus
//! the earlier requests of the same group, writes the accepted records with one positioned
//! write per segment touched, calls `fdatasync` once, and only then publishes the group to the
//! index, advances the head and answers every request of the group.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};

use bytes::Bytes;
use tokio::sync::{oneshot, watch};
use uuid::Uuid;

use super::format;
use super::group::{plan, Accepted, Chunk, Plan, Tail};
use super::index::{Index, Segment};
use super::recovery::sync_dir;
use super::{EmbeddedConfig, Shared};
use crate::log::{AppendResult, ExpectedVersion, LogError, NewEvent, Position, RecordedEvent};

pub(crate) type Reply = oneshot::Sender<Result<AppendResult, LogError>>;

pub(crate) enum Msg {
    Append(AppendRequest),
    /// Finish what was queued before this message, then stop.
    Close,
}

pub(crate) struct AppendRequest {
    pub stream: String,
    pub expected: ExpectedVersion,
    pub events: Vec<NewEvent>,
    pub reply: Reply,
}

impl AppendRequest {
    fn approx_bytes(&self) -> usize {
        self.events
            .iter()
            .map(|e| e.payload.len() + format::FRAME_HEADER_LEN + format::BODY_FIXED_LEN + 64)
            .sum()
    }
}

pub(crate) struct Writer {
    pub shared: Arc<Shared>,
    pub rx: mpsc::Receiver<Msg>,
    pub head_tx: watch::Sender<Position>,
    pub dir: PathBuf,
    pub config: EmbeddedConfig,
    /// Write handle on the last segment.
    pub file: File,
    pub file_first: Position,
    pub file_len: u64,
    pub head: Position,
    /// Event id -> position, for idempotent appends.
    pub ids: HashMap<Uuid, Position>,
    /// Held for the writer's lifetime: the directory lock.
    pub _lock: File,
}

impl Writer {
    /// Runs until `close()` (or until every handle is dropped, or an I/O error poisons the log).
    pub fn run(mut self) -> Result<(), LogError> {
        tracing::debug!(head = self.head, "event log writer started");
        loop {
            let first = match self.rx.recv() {
                Ok(msg) => msg,
                // Every handle is gone: nothing more can arrive.
                Err(_) => return Ok(()),
            };
            let mut group = Vec::new();
            let mut bytes = 0usize;
            let mut closing = false;
            let mut next = Some(first);
            while let Some(msg) = next.take() {
                match msg {
                    Msg::Close => closing = true,
                    Msg::Append(req) => {
                        bytes += req.approx_bytes();
                        group.push(req);
                    }
                }
                if !closing && bytes < self.config.max_group_bytes {
                    next = self.rx.try_recv().ok();
                }
            }
            if !group.is_empty() {
                if let Err(e) = self.commit_group(group) {
                    tracing::error!(error = %e, "event log writer failed; appends are refused from now on");
                    *self.shared.failure.lock() = Some(e.to_string());
                    self.shared.closed.store(true, Ordering::SeqCst);
                    self.refuse_queued();
                    return Err(e);
                }
            }
            if closing {
                self.shared.closed.store(true, Ordering::SeqCst);
                self.refuse_queued();
                tracing::info!(head = self.head, "event log closed");
                return Ok(());
            }
        }
    }

    /// Answers whatever is still queued once the writer stops. Requests sent later fail when
    /// the receiver is dropped with the writer.
    fn refuse_queued(&self) {
        while let Ok(msg) = self.rx.try_recv() {
            if let Msg::Append(req) = msg {
                let _ = req.reply.send(Err(self.shared.closed_error()));
            }
        }
    }

    fn commit_group(&mut self, mut group: Vec<AppendRequest>) -> Result<(), LogError> {
        let Plan {
            outcomes,
            accepted,
            chunks,
            next,
        } = {
            let index = self.shared.index.read();
            let tail = Tail {
                head: self.head,
                file_first: self.file_first,
                file_len: self.file_len,
            };
            plan(&index, &self.ids, &self.config, tail, &group)
        };

        if accepted.is_empty() {
            // Nothing to write: rejections and replays of durable appends answer at once.
            answer(group, outcomes);
            return Ok(());
        }

        let new_segments = match self.write_and_sync(&chunks) {
            Ok(segments) => segments,
            Err(e) => {
                let failed: HashSet<usize> = accepted.iter().map(|a| a.request).collect();
                let outcomes = outcomes
                    .into_iter()
                    .enumerate()
                    .map(|(i, o)| {
                        if failed.contains(&i) {
                            Err(copy_io_error(&e))
                        } else {
                            o
                        }
                    })
                    .collect();
                answer(group, outcomes);
                return Err(e);
            }
        };

        // Durable: publish to the index, then the head, then answer.
        let mut fresh = Vec::new();
        let mut events_written = 0u64;
        for a in &accepted {
            let req = &mut group[a.request];
            let events = std::mem::take(&mut req.events);
            events_written += a.count;
            for (k, e) in events.into_iter().enumerate() {
                let position = a.first_position + k as u64;
                self.ids.insert(e.id, position);
                if self.config.cache_max_bytes > 0 {
                    fresh.push(RecordedEvent {
                        position,
                        stream: req.stream.clone(),
                        version: a.first_version + k as u64,
                        id: e.id,
                        event_type: e.event_type,
                        schema_version: e.schema_version,
                        actor: e.actor,
                        time_ms: e.time_ms,
                        payload: Bytes::from(e.payload),
                    });
                }
            }
        }
        {
            let mut index = self.shared.index.write();
            publish(
                &mut index,
                &chunks,
                new_segments,
                &accepted,
                &group,
                next,
                fresh,
            );
        }
        self.head = next;
        self.head_tx.send_replace(next);
        let stats = &self.shared.stats;
        stats
            .appends
            .fetch_add(accepted.len() as u64, Ordering::Relaxed);
        stats.events.fetch_add(events_written, Ordering::Relaxed);
        answer(group, outcomes);
        Ok(())
    }

    /// Writes the chunks (rotating segments as they say) and syncs. Returns the new segments.
    fn write_and_sync(&mut self, chunks: &[Chunk]) -> Result<Vec<Segment>, LogError> {
        let stats = &self.shared.stats;
        let mut new_segments = Vec::new();
        let mut dirty = false;
        for chunk in chunks {
            if chunk.new_segment {
                if dirty {
                    // The old segment must be whole before a later one exists: recovery treats
                    // damage in any segment but the last as corruption.
                    self.file.sync_data()?;
                    stats.syncs.fetch_add(1, Ordering::Relaxed);
                }
                let path = self
                    .dir
                    .join(format::segment_file_name(chunk.first_position));
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create_new(true)
                    .open(&path)?;
                sync_dir(&self.dir)?;
                stats.syncs.fetch_add(1, Ordering::Relaxed);
                tracing::info!(path = %path.display(), first_position = chunk.first_position, "event log: new segment");
                new_segments.push(Segment {
                    first_position: chunk.first_position,
                    file: Arc::new(File::open(&path)?),
                    path: Arc::new(path),
                    offsets: Vec::new(),
                    len: 0,
                });
                self.file = file;
                self.file_first = chunk.first_position;
                self.file_len = 0;
            }
            debug_assert_eq!(chunk.start, self.file_len);
            self.file.write_all_at(&chunk.buf, self.file_len)?;
            self.file_len += chunk.buf.len() as u64;
            stats
                .bytes
                .fetch_add(chunk.buf.len() as u64, Ordering::Relaxed);
            dirty = true;
        }
        self.file.sync_data()?;
        stats.syncs.fetch_add(1, Ordering::Relaxed);
        Ok(new_segments)
    }
}

fn publish(
    index: &mut Index,
    chunks: &[Chunk],
    new_segments: Vec<Segment>,
    accepted: &[Accepted],
    group: &[AppendRequest],
    head: Position,
    fresh: Vec<RecordedEvent>,
) {
    let mut new_segments = new_segments.into_iter();
    for chunk in chunks {
        if chunk.new_segment {
            if let Some(segment) = new_segments.next() {
                index.segments.push(segment);
            }
        }
        if let Some(segment) = index.segments.last_mut() {
            segment.offsets.extend_from_slice(&chunk.offsets);
            segment.len += chunk.buf.len() as u64;
        }
    }
    for a in accepted {
        let stream = &group[a.request].stream;
        let positions = a.first_position..a.first_position + a.count;
        match index.streams.get_mut(stream) {
            Some(list) => list.extend(positions),
            None => {
                index.streams.insert(stream.clone(), positions.collect());
            }
        }
    }
    index.head = head;
    index.cache.extend(fresh);
}

fn answer(group: Vec<AppendRequest>, outcomes: Vec<Result<AppendResult, LogError>>) {
    for (req, outcome) in group.into_iter().zip(outcomes) {
        // The appender may have given up waiting (its future was dropped); nothing to do then.
        let _ = req.reply.send(outcome);
    }
}

fn copy_io_error(e: &LogError) -> LogError {
    let kind = match e {
        LogError::Io(io) => io.kind(),
        _ => std::io::ErrorKind::Other,
    };
    LogError::Io(std::io::Error::new(kind, e.to_string()))
}
