//! Opening the embedded log: scan every segment, verify every frame, rebuild the indexes and cut
//! a torn tail off the last segment.
//!
//! Rules:
//! - Every record must be whole (both checksums), decodable, at the next global position, at
//!   the next version of its stream, with an id not seen before, and appends must be complete.
//! - In the last segment, damage that only the last write can explain is a torn tail: an
//!   incomplete frame header, a body running past the end of the file, a bad body checksum
//!   in the file's final record, a zero-filled tail, or a bad header or body after which no
//!   whole record of a *later* write follows (whole records after the damage whose
//!   `write_start` is at or before it belong to the same, unacknowledged, write: pages of one
//!   write can reach the disk out of order). The file is truncated back to the end of the last
//!   whole append before the damage (an append whose records are not all present is dropped
//!   entirely) and the open continues with a warning.
//! - Damage followed by a whole record of a later write, any damage in a segment that is not
//!   the last, and any record that is checksummed but inconsistent are [`LogError::Corrupt`],
//!   naming the file and byte offset: nothing is skipped silently.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::path::Path;
use std::sync::Arc;

use uuid::Uuid;

use super::format::{self, Frame};
use super::index::Segment;
use crate::log::{LogError, Position};

/// The state rebuilt from disk.
pub(crate) struct Recovered {
    pub segments: Vec<Segment>,
    pub streams: HashMap<String, Vec<Position>>,
    pub ids: HashMap<Uuid, Position>,
    pub head: Position,
    /// Write handle on the last segment, and its length.
    pub tail: File,
    pub tail_len: u64,
}

/// Rebuilds the log state from the segments in `dir`, creating the first segment of a new log.
pub(crate) fn recover(dir: &Path) -> Result<Recovered, LogError> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if let Some(first) = name.to_str().and_then(format::parse_segment_file_name) {
            found.push((first, entry.path()));
        }
    }
    found.sort();

    if found.is_empty() {
        let path = dir.join(format::segment_file_name(0));
        let tail = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        sync_dir(dir)?;
        tracing::info!(path = %path.display(), "created a new event log");
        let segment = Segment {
            first_position: 0,
            path: Arc::new(path.clone()),
            file: Arc::new(File::open(&path)?),
            offsets: Vec::new(),
            len: 0,
        };
        return Ok(Recovered {
            segments: vec![segment],
            streams: HashMap::new(),
            ids: HashMap::new(),
            head: 0,
            tail,
            tail_len: 0,
        });
    }

    let mut b = Builder::default();
    let mut segments = Vec::with_capacity(found.len());
    let count = found.len();
    let mut tail = None;
    for (i, (first, path)) in found.into_iter().enumerate() {
        let is_last = i + 1 == count;
        if first != b.head {
            return Err(corrupt(
                &path,
                0,
                format!(
                    "segment starts at position {first} but the segments before it end at {}",
                    b.head
                ),
            ));
        }
        let data = fs::read(&path)?;
        if u32::try_from(data.len()).is_err() {
            return Err(corrupt(&path, 0, "segment larger than 4 GiB".into()));
        }
        let scan = b.scan(&path, &data, is_last)?;
        if !is_last && scan.offsets.is_empty() {
            return Err(corrupt(
                &path,
                0,
                "empty segment before the last one".into(),
            ));
        }
        let mut len = data.len() as u64;
        if let Some(torn) = &scan.torn {
            // Only the last segment can have a torn tail (scan() errors otherwise).
            tracing::warn!(
                file = %path.display(),
                offset = torn.offset,
                reason = %torn.reason,
                truncated_to = scan.valid_len,
                dropped_bytes = len - scan.valid_len,
                dropped_records = torn.dropped_records,
                "event log: torn tail, truncating to the last whole append"
            );
        }
        if is_last {
            let file = OpenOptions::new().read(true).write(true).open(&path)?;
            if scan.valid_len != len {
                file.set_len(scan.valid_len)?;
                file.sync_data()?;
                len = scan.valid_len;
            }
            tail = Some((file, len));
        }
        segments.push(Segment {
            first_position: first,
            file: Arc::new(File::open(&path)?),
            path: Arc::new(path),
            offsets: scan.offsets,
            len,
        });
    }
    // `count > 0`, so the last iteration set `tail`.
    let (tail, tail_len) = tail.ok_or_else(|| {
        LogError::Io(std::io::Error::other(
            "event log recovery found no last segment",
        ))
    })?;
    tracing::info!(
        segments = segments.len(),
        events = b.head,
        streams = b.streams.len(),
        "event log opened"
    );
    Ok(Recovered {
        segments,
        streams: b.streams,
        ids: b.ids,
        head: b.head,
        tail,
        tail_len,
    })
}

/// fsync a directory so a created (or renamed) file's entry is durable.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The offset of a whole record at or after `from` that was written by a later write than the
/// one damaged at `damage` (its `write_start` is past the damage), if there is one. A whole
/// record that does not decode also counts: it cannot be explained by a torn write.
fn later_write_after(data: &[u8], from: usize, damage: usize) -> Option<usize> {
    let mut at = from;
    while let Some(found) = format::find_whole_frame(data, at) {
        let Frame::Whole { body_start, end } = format::check_frame(data, found) else {
            at = found + 1;
            continue;
        };
        match format::decode_body(&data[body_start..end]) {
            Ok(body) if body.place.write_start <= damage as u64 => at = end,
            _ => return Some(found),
        }
    }
    None
}

fn corrupt(path: &Path, offset: u64, reason: String) -> LogError {
    LogError::Corrupt {
        file: path.display().to_string(),
        offset,
        reason,
    }
}

#[derive(Default)]
struct Builder {
    head: Position,
    streams: HashMap<String, Vec<Position>>,
    ids: HashMap<Uuid, Position>,
}

struct Torn {
    offset: u64,
    reason: String,
    dropped_records: usize,
}

struct Scan {
    offsets: Vec<u32>,
    /// End of the last whole append.
    valid_len: u64,
    torn: Option<Torn>,
}

/// A record of the append being assembled.
struct Pending<'a> {
    offset: usize,
    id: Uuid,
    stream: &'a str,
    count: u32,
}

impl Builder {
    fn scan(&mut self, path: &Path, data: &[u8], is_last: bool) -> Result<Scan, LogError> {
        let mut offsets = Vec::new();
        let mut pending: Vec<Pending<'_>> = Vec::new();
        let mut valid_len = 0usize;
        let mut off = 0usize;
        let torn_reason = loop {
            if off == data.len() {
                if pending.is_empty() {
                    break None;
                }
                break Some(format!(
                    "incomplete append: {} of {} records",
                    pending.len(),
                    pending[0].count
                ));
            }
            let damage = match format::check_frame(data, off) {
                Frame::Whole { body_start, end } => {
                    self.record(path, data, off, body_start, end, &mut pending)?;
                    if let Some(last) = pending.last() {
                        if pending.len() as u32 == last.count {
                            self.commit(&pending, &mut offsets);
                            pending.clear();
                            valid_len = end;
                        }
                    }
                    off = end;
                    continue;
                }
                Frame::IncompleteHeader => "incomplete frame header".to_string(),
                Frame::Truncated { body_len } => {
                    format!("record body of {body_len} bytes runs past the end of the file")
                }
                Frame::BadHeader | Frame::BadLength { .. } => {
                    if data[off..].iter().all(|b| *b == 0) {
                        "zero-filled tail".to_string()
                    } else if let Some(next) = later_write_after(data, off + 1, off) {
                        return Err(corrupt(
                            path,
                            off as u64,
                            format!(
                                "bad frame header, and a record of a later write follows at offset {next}"
                            ),
                        ));
                    } else {
                        "bad frame header in the last write".to_string()
                    }
                }
                Frame::BadBody { end } => {
                    if end == data.len() {
                        "body checksum mismatch in the file's final record".to_string()
                    } else if let Some(next) = later_write_after(data, end, off) {
                        return Err(corrupt(
                            path,
                            off as u64,
                            format!(
                                "body checksum mismatch, and a record of a later write follows at offset {next}"
                            ),
                        ));
                    } else {
                        "body checksum mismatch in the last write".to_string()
                    }
                }
            };
            if !is_last {
                return Err(corrupt(path, off as u64, damage));
            }
            break Some(damage);
        };
        let torn = match torn_reason {
            None => None,
            Some(reason) if is_last => Some(Torn {
                offset: pending.first().map_or(off, |p| p.offset) as u64,
                reason,
                dropped_records: pending.len(),
            }),
            Some(reason) => {
                let at = pending.first().map_or(off, |p| p.offset);
                return Err(corrupt(path, at as u64, reason));
            }
        };
        Ok(Scan {
            offsets,
            valid_len: valid_len as u64,
            torn,
        })
    }

    /// Checks a whole frame and adds it to the pending append.
    fn record<'a>(
        &self,
        path: &Path,
        data: &'a [u8],
        off: usize,
        body_start: usize,
        end: usize,
        pending: &mut Vec<Pending<'a>>,
    ) -> Result<(), LogError> {
        let at = off as u64;
        let body = format::decode_body(&data[body_start..end]).map_err(|e| corrupt(path, at, e))?;
        let place = body.place;
        let index = pending.len() as u32;
        if place.batch_index != index {
            let reason = if place.batch_index == 0 {
                format!(
                    "an append of {} records is cut off after {index} by another append",
                    pending.first().map_or(0, |p| p.count)
                )
            } else {
                format!(
                    "record {} of an append where record {index} was expected",
                    place.batch_index
                )
            };
            return Err(corrupt(path, at, reason));
        }
        if let Some(first) = pending.first() {
            if place.batch_count != first.count || body.stream != first.stream {
                return Err(corrupt(path, at, "records of one append disagree".into()));
            }
        }
        let expected_position = self.head + pending.len() as u64;
        if place.position != expected_position {
            return Err(corrupt(
                path,
                at,
                format!(
                    "record has position {} where {expected_position} was expected",
                    place.position
                ),
            ));
        }
        let stream_len = self.streams.get(body.stream).map_or(0, |p| p.len() as u64);
        let expected_version = stream_len + u64::from(index);
        if place.version != expected_version {
            return Err(corrupt(
                path,
                at,
                format!(
                    "record of stream {} has version {} where {expected_version} was expected",
                    body.stream, place.version
                ),
            ));
        }
        if self.ids.contains_key(&body.id) || pending.iter().any(|p| p.id == body.id) {
            return Err(corrupt(path, at, format!("duplicate event id {}", body.id)));
        }
        pending.push(Pending {
            offset: off,
            id: body.id,
            stream: body.stream,
            count: place.batch_count,
        });
        Ok(())
    }

    /// Adds a whole append to the indexes.
    fn commit(&mut self, pending: &[Pending<'_>], offsets: &mut Vec<u32>) {
        let Some(first) = pending.first() else {
            return;
        };
        if !self.streams.contains_key(first.stream) {
            self.streams.insert(first.stream.to_owned(), Vec::new());
        }
        let Some(positions) = self.streams.get_mut(first.stream) else {
            return;
        };
        for p in pending {
            // The caller checked the segment is below 4 GiB.
            offsets.push(p.offset as u32);
            positions.push(self.head);
            self.ids.insert(p.id, self.head);
            self.head += 1;
        }
    }
}
