//! In-memory indexes of the embedded log (rebuilt on open) and the read path.
//!
//! Only durable events are ever in the index: the writer adds a group after its `fdatasync`,
//! so nothing read through it can be beyond the durable head.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;

use super::format::{self, Frame};
use crate::log::{LogError, Position, RecordedEvent};

/// Most bytes one `read_all` call reads from disk; it returns fewer events than asked rather
/// than reading more (the trait allows "at most `max`").
const MAX_DISK_READ: u64 = 32 << 20;

/// One segment file as the readers see it.
#[derive(Debug)]
pub(crate) struct Segment {
    /// Position of the segment's first record (also in its file name).
    pub first_position: Position,
    pub path: Arc<PathBuf>,
    /// A read-only handle for positioned reads.
    pub file: Arc<File>,
    /// Byte offset of each durable record: `offsets[p - first_position]`. Segments stay below
    /// 4 GiB (see `EmbeddedConfig`), so `u32` suffices.
    pub offsets: Vec<u32>,
    /// Durable length of the segment in bytes.
    pub len: u64,
}

impl Segment {
    /// Byte range of the records `[from, to)` (positions within this segment).
    fn byte_range(&self, from: Position, to: Position) -> (u64, u64) {
        let i = (from - self.first_position) as usize;
        let j = (to - self.first_position) as usize;
        let start = u64::from(self.offsets[i]);
        let end = self.offsets.get(j).map_or(self.len, |o| u64::from(*o));
        (start, end)
    }

    fn end_position(&self) -> Position {
        self.first_position + self.offsets.len() as u64
    }
}

/// Recently committed events kept in memory so tailing readers (the projector) do not touch
/// the disk for fresh events.
#[derive(Debug)]
pub(crate) struct Cache {
    /// Position of `events[0]`.
    base: Position,
    events: VecDeque<Arc<RecordedEvent>>,
    bytes: usize,
    max_bytes: usize,
}

impl Cache {
    pub fn new(base: Position, max_bytes: usize) -> Self {
        Cache {
            base,
            events: VecDeque::new(),
            bytes: 0,
            max_bytes,
        }
    }

    pub fn enabled(&self) -> bool {
        self.max_bytes > 0
    }

    fn cost(e: &RecordedEvent) -> usize {
        e.payload.len() + e.stream.len() + e.event_type.len() + e.actor.len() + 128
    }

    /// Adds events that follow the cached ones (positions must be contiguous).
    pub fn extend(&mut self, events: Vec<RecordedEvent>) {
        if !self.enabled() {
            return;
        }
        for e in events {
            if e.position != self.base + self.events.len() as u64 {
                // Not contiguous (cannot happen: the writer commits in order); restart the cache.
                self.events.clear();
                self.bytes = 0;
                self.base = e.position;
            }
            self.bytes += Self::cost(&e);
            self.events.push_back(Arc::new(e));
        }
        while self.bytes > self.max_bytes {
            match self.events.pop_front() {
                Some(e) => {
                    self.bytes -= Self::cost(&e);
                    self.base += 1;
                }
                None => break,
            }
        }
    }

    fn get(&self, pos: Position) -> Option<&Arc<RecordedEvent>> {
        pos.checked_sub(self.base)
            .and_then(|i| self.events.get(i as usize))
    }
}

/// The readers' view of the log.
#[derive(Debug)]
pub(crate) struct Index {
    /// Number of durable events (position of the next one).
    pub head: Position,
    pub segments: Vec<Segment>,
    /// Positions of each stream's events; the version is the index in the list.
    pub streams: HashMap<String, Vec<Position>>,
    pub cache: Cache,
}

/// Part of a read: events already in memory, or a contiguous byte range of one segment.
pub(crate) enum Piece {
    /// Shared with the cache: cloned into owned events after the index lock is released.
    Cached(Vec<Arc<RecordedEvent>>),
    Disk(DiskRange),
}

pub(crate) struct DiskRange {
    file: Arc<File>,
    path: Arc<PathBuf>,
    first_position: Position,
    count: usize,
    start: u64,
    end: u64,
}

impl Index {
    pub fn stream_last_version(&self, stream: &str) -> Option<u64> {
        self.streams
            .get(stream)
            .and_then(|p| (p.len() as u64).checked_sub(1))
    }

    fn segment_index(&self, pos: Position) -> Option<usize> {
        let i = self
            .segments
            .partition_point(|s| s.first_position <= pos)
            .checked_sub(1)?;
        (pos < self.segments[i].end_position()).then_some(i)
    }

    /// What to read for `read_all(from, max)`.
    pub fn plan_read_all(&self, from: Position, max: usize) -> Vec<Piece> {
        let end = self.head.min(from.saturating_add(max as u64));
        let mut pieces = Vec::new();
        let mut pos = from;
        let mut disk_bytes = 0u64;
        while pos < end {
            if self.cache.get(pos).is_some() {
                let start = (pos - self.cache.base) as usize;
                let stop = (start + (end - pos) as usize).min(self.cache.events.len());
                pieces.push(Piece::Cached(
                    self.cache.events.range(start..stop).cloned().collect(),
                ));
                break;
            }
            if disk_bytes >= MAX_DISK_READ {
                break;
            }
            let Some(si) = self.segment_index(pos) else {
                break;
            };
            let seg = &self.segments[si];
            // Stop at the cache, the segment end, the requested end, or the byte budget.
            let mut to = end.min(seg.end_position());
            if self.cache.enabled() && self.cache.base > pos && !self.cache.events.is_empty() {
                to = to.min(self.cache.base);
            }
            let (start, mut stop) = seg.byte_range(pos, to);
            if stop - start > MAX_DISK_READ - disk_bytes {
                // Take whole records up to the budget, at least one.
                let budget_end = start + (MAX_DISK_READ - disk_bytes);
                let first = (pos - seg.first_position) as usize;
                let last = (to - seg.first_position) as usize;
                let k =
                    seg.offsets[first + 1..last].partition_point(|o| u64::from(*o) <= budget_end);
                to = pos + 1 + k as u64;
                stop = seg.byte_range(pos, to).1;
            }
            disk_bytes += stop - start;
            pieces.push(Piece::Disk(DiskRange {
                file: seg.file.clone(),
                path: seg.path.clone(),
                first_position: pos,
                count: (to - pos) as usize,
                start,
                end: stop,
            }));
            pos = to;
        }
        pieces
    }

    /// What to read for `read_stream(stream, from_version, max)`.
    pub fn plan_read_stream(&self, stream: &str, from_version: u64, max: usize) -> Vec<Piece> {
        let Some(positions) = self.streams.get(stream) else {
            return Vec::new();
        };
        let from = usize::try_from(from_version)
            .unwrap_or(usize::MAX)
            .min(positions.len());
        let to = from.saturating_add(max).min(positions.len());
        let mut pieces: Vec<Piece> = Vec::new();
        for &pos in &positions[from..to] {
            if let Some(e) = self.cache.get(pos) {
                if let Some(Piece::Cached(v)) = pieces.last_mut() {
                    v.push(e.clone());
                } else {
                    pieces.push(Piece::Cached(vec![e.clone()]));
                }
                continue;
            }
            let Some(si) = self.segment_index(pos) else {
                continue;
            };
            let seg = &self.segments[si];
            // Extend the previous range when this record directly follows it.
            if let Some(Piece::Disk(r)) = pieces.last_mut() {
                if Arc::ptr_eq(&r.file, &seg.file) && r.first_position + r.count as u64 == pos {
                    r.count += 1;
                    r.end = seg.byte_range(pos, pos + 1).1;
                    continue;
                }
            }
            let (start, end) = seg.byte_range(pos, pos + 1);
            pieces.push(Piece::Disk(DiskRange {
                file: seg.file.clone(),
                path: seg.path.clone(),
                first_position: pos,
                count: 1,
                start,
                end,
            }));
        }
        pieces
    }
}

/// Whether executing these pieces needs disk I/O.
pub(crate) fn needs_disk(pieces: &[Piece]) -> bool {
    pieces.iter().any(|p| matches!(p, Piece::Disk(_)))
}

/// Executes a plan (blocking when it has disk pieces).
pub(crate) fn execute(pieces: Vec<Piece>) -> Result<Vec<RecordedEvent>, LogError> {
    let mut out = Vec::new();
    for piece in pieces {
        match piece {
            Piece::Cached(events) => out.extend(events.iter().map(|e| RecordedEvent::clone(e))),
            Piece::Disk(range) => read_range(&range, &mut out)?,
        }
    }
    Ok(out)
}

fn read_range(r: &DiskRange, out: &mut Vec<RecordedEvent>) -> Result<(), LogError> {
    let corrupt = |offset: u64, reason: String| LogError::Corrupt {
        file: r.path.display().to_string(),
        offset,
        reason,
    };
    let mut buf = vec![0u8; (r.end - r.start) as usize];
    r.file.read_exact_at(&mut buf, r.start)?;
    let data = Bytes::from(buf);
    let mut off = 0usize;
    for i in 0..r.count {
        let at = r.start + off as u64;
        let (body_start, end) = match format::check_frame(&data, off) {
            Frame::Whole { body_start, end } => (body_start, end),
            other => return Err(corrupt(at, format!("unreadable record on read: {other:?}"))),
        };
        let body = format::decode_body(&data[body_start..end]).map_err(|e| corrupt(at, e))?;
        let expected = r.first_position + i as u64;
        if body.place.position != expected {
            return Err(corrupt(
                at,
                format!(
                    "record has position {} where {expected} was indexed",
                    body.place.position
                ),
            ));
        }
        out.push(RecordedEvent {
            position: body.place.position,
            stream: body.stream.to_owned(),
            version: body.place.version,
            id: body.id,
            event_type: body.event_type.to_owned(),
            schema_version: body.schema_version,
            actor: body.actor.to_owned(),
            time_ms: body.time_ms,
            payload: data.slice(body_start + body.payload_offset..end),
        });
        off = end;
    }
    Ok(())
}
