//! Deciding a group: each request of the group, in arrival order, is checked (idempotency,
//! expected version, size) against the durable state plus the group's earlier requests, and
//! the accepted ones are encoded into the bytes the writer will write.

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

use super::format::{self, RecordPlace};
use super::index::Index;
use super::writer::AppendRequest;
use super::EmbeddedConfig;
use crate::log::{AppendResult, LogError, NewEvent, Position};

/// Records of consecutive appends that go into one segment with one write.
pub(crate) struct Chunk {
    /// This chunk starts a new segment whose first record has `first_position`.
    pub new_segment: bool,
    pub first_position: Position,
    /// Offset in the segment where the chunk's write starts.
    pub start: u64,
    pub buf: Vec<u8>,
    /// Offsets of the chunk's records within their segment.
    pub offsets: Vec<u32>,
}

/// An accepted request of the group.
pub(crate) struct Accepted {
    pub request: usize,
    pub first_position: Position,
    pub first_version: u64,
    pub count: u64,
}

/// Where an already appended event id sits.
struct Seen {
    same_stream: bool,
    position: Position,
    version: u64,
}

/// Where the log's tail stands when the group starts.
pub(crate) struct Tail {
    pub head: Position,
    /// First position and length of the last segment.
    pub file_first: Position,
    pub file_len: u64,
}

/// What to do with a group.
pub(crate) struct Plan {
    /// One answer per request (an accepted request's answer holds once the group is durable).
    pub outcomes: Vec<Result<AppendResult, LogError>>,
    pub accepted: Vec<Accepted>,
    /// The bytes to write, one chunk per segment touched.
    pub chunks: Vec<Chunk>,
    /// The head once the group is durable.
    pub next: Position,
}

/// Decides every request of `group` and encodes the accepted ones.
pub(crate) fn plan(
    index: &Index,
    ids: &HashMap<Uuid, Position>,
    config: &EmbeddedConfig,
    tail: Tail,
    group: &[AppendRequest],
) -> Plan {
    let mut outcomes: Vec<Result<AppendResult, LogError>> = Vec::with_capacity(group.len());
    let mut accepted: Vec<Accepted> = Vec::new();
    let mut chunks: Vec<Chunk> = Vec::new();
    let mut next = tail.head;
    let mut versions: HashMap<&str, u64> = HashMap::new();
    let mut pending_ids: HashMap<Uuid, (&str, Position, u64)> = HashMap::new();
    let mut seg_len = tail.file_len;
    for (i, req) in group.iter().enumerate() {
        let stream = req.stream.as_str();
        let seen = |id: &Uuid| -> Option<Seen> {
            if let Some(&(s, position, version)) = pending_ids.get(id) {
                return Some(Seen {
                    same_stream: s == stream,
                    position,
                    version,
                });
            }
            let position = *ids.get(id)?;
            let version = index
                .streams
                .get(stream)
                .and_then(|ps| ps.binary_search(&position).ok());
            Some(Seen {
                same_stream: version.is_some(),
                position,
                version: version.unwrap_or(0) as u64,
            })
        };
        match check_ids(&req.events, seen) {
            Err(e) => {
                outcomes.push(Err(e));
                continue;
            }
            Ok(Some(original)) => {
                outcomes.push(Ok(original));
                continue;
            }
            Ok(None) => {}
        }
        let current = versions
            .get(stream)
            .copied()
            .or_else(|| index.stream_last_version(stream));
        if !req.expected.matches(current) {
            outcomes.push(Err(LogError::WrongExpectedVersion {
                stream: req.stream.clone(),
                expected: req.expected,
                actual: current,
            }));
            continue;
        }
        let size: usize = req
            .events
            .iter()
            .map(|e| format::frame_len(stream, e))
            .sum();
        if size > config.max_append_bytes {
            outcomes.push(Err(LogError::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "append of {size} bytes exceeds the limit of {} bytes",
                    config.max_append_bytes
                ),
            ))));
            continue;
        }
        // An append never spans segments: rotate first if it would overflow this one.
        if seg_len > 0 && seg_len + size as u64 > config.segment_max_bytes {
            chunks.push(Chunk {
                new_segment: true,
                first_position: next,
                start: 0,
                buf: Vec::new(),
                offsets: Vec::new(),
            });
            seg_len = 0;
        } else if chunks.is_empty() {
            chunks.push(Chunk {
                new_segment: false,
                first_position: tail.file_first,
                start: seg_len,
                buf: Vec::with_capacity(size),
                offsets: Vec::new(),
            });
        }
        let Some(chunk) = chunks.last_mut() else {
            // Unreachable: a chunk was pushed just above if there was none.
            continue;
        };
        let first_version = current.map_or(0, |v| v + 1);
        let count = req.events.len() as u64;
        for (k, event) in req.events.iter().enumerate() {
            let place = RecordPlace {
                position: next + k as u64,
                version: first_version + k as u64,
                batch_index: k as u32,
                batch_count: count as u32,
                write_start: chunk.start,
            };
            // seg_len < 3 GiB: segment_max_bytes <= 2 GiB plus one append <= 1 GiB.
            chunk.offsets.push(seg_len as u32);
            let before = chunk.buf.len();
            format::encode_record(&mut chunk.buf, place, stream, event);
            seg_len += (chunk.buf.len() - before) as u64;
            pending_ids.insert(event.id, (stream, place.position, place.version));
        }
        versions.insert(stream, first_version + count - 1);
        outcomes.push(Ok(AppendResult {
            first_position: next,
            last_position: next + count - 1,
            last_version: first_version + count - 1,
        }));
        accepted.push(Accepted {
            request: i,
            first_position: next,
            first_version,
            count,
        });
        next += count;
    }

    Plan {
        outcomes,
        accepted,
        chunks,
        next,
    }
}

/// Idempotency: `Ok(None)` when no id was appended before, `Ok(Some(original))` when all
/// were, to this stream; otherwise `IdConflict`.
fn check_ids(
    events: &[NewEvent],
    seen: impl Fn(&Uuid) -> Option<Seen>,
) -> Result<Option<AppendResult>, LogError> {
    let mut found: Option<(Uuid, Position, Position, u64)> = None; // first id, min, max, version at max
    let mut found_count = 0usize;
    let mut unique = HashSet::with_capacity(if events.len() > 1 { events.len() } else { 0 });
    for e in events {
        if events.len() > 1 && !unique.insert(e.id) {
            return Err(LogError::IdConflict { id: e.id });
        }
        let Some(s) = seen(&e.id) else {
            continue;
        };
        if !s.same_stream {
            return Err(LogError::IdConflict { id: e.id });
        }
        found_count += 1;
        found = Some(match found {
            None => (e.id, s.position, s.position, s.version),
            Some((id, lo, hi, v)) => {
                if s.position > hi {
                    (id, lo, s.position, s.version)
                } else {
                    (id, lo.min(s.position), hi, v)
                }
            }
        });
    }
    match found {
        None => Ok(None),
        Some((id, _, _, _)) if found_count < events.len() => Err(LogError::IdConflict { id }),
        Some((_, lo, hi, v)) => Ok(Some(AppendResult {
            first_position: lo,
            last_position: hi,
            last_version: v,
        })),
    }
}
