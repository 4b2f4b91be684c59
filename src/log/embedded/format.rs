//! On-disk format of the embedded log: segment file names and record frames.
//!
//! A segment is a plain concatenation of frames (no file header):
//!
//! ```text
//! frame  = body_len u32 LE | body_crc u32 LE | header_crc u32 LE | body (body_len bytes)
//!          header_crc = crc32c(first 8 bytes), body_crc = crc32c(body)
//! body   = format u8 (= 1)
//!          batch_index u32 | batch_count u32        -- record i of the n records of one append
//!          write_start u64                           -- segment offset where this record's write began
//!          position u64 | version u64 | id [16]      -- global position, stream version, event id
//!          schema_version u32 | time_ms i64
//!          stream_len u32 | event_type_len u32 | actor_len u32
//!          stream | event_type | actor (UTF-8) | payload (raw JSON bytes, the rest of the body)
//! ```
//!
//! All integers are little-endian. The records of one append are written contiguously, in one
//! write, into one segment; an append is whole once its record with `batch_index ==
//! batch_count - 1` is present. `write_start` lets recovery tell damage inside the last,
//! possibly torn, write (every whole record after the damage began at or before it) from damage
//! to an earlier write (a later write's record follows it).

use uuid::Uuid;

use crate::log::NewEvent;

/// Bytes of the frame header: body length, body CRC, header CRC.
pub(crate) const FRAME_HEADER_LEN: usize = 12;
/// Bytes of the fixed part of a body (everything but the strings and the payload).
pub(crate) const BODY_FIXED_LEN: usize = 1 + 4 + 4 + 8 + 8 + 8 + 16 + 4 + 8 + 4 + 4 + 4;
/// The only body format written so far.
pub(crate) const FORMAT_V1: u8 = 1;
/// Largest body accepted on read (a frame header claiming more is corrupt). Matches the largest
/// append the writer accepts, so no valid record is ever larger.
pub(crate) const MAX_BODY_LEN: usize = 1 << 30;

const SEGMENT_PREFIX: &str = "segment-";
const SEGMENT_SUFFIX: &str = ".log";

/// `segment-00000000000000000042.log` for a segment whose first record has position 42.
pub(crate) fn segment_file_name(first_position: u64) -> String {
    format!("{SEGMENT_PREFIX}{first_position:020}{SEGMENT_SUFFIX}")
}

/// The first position encoded in a segment file name, `None` if `name` is not a segment.
pub(crate) fn parse_segment_file_name(name: &str) -> Option<u64> {
    let digits = name
        .strip_prefix(SEGMENT_PREFIX)?
        .strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Size of the frame (header and body) that [`encode_record`] writes for this event.
pub(crate) fn frame_len(stream: &str, event: &NewEvent) -> usize {
    FRAME_HEADER_LEN + body_len(stream, event)
}

fn body_len(stream: &str, event: &NewEvent) -> usize {
    BODY_FIXED_LEN + stream.len() + event.event_type.len() + event.actor.len() + event.payload.len()
}

/// Where a record sits: its global position, stream version and place in its append.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RecordPlace {
    pub position: u64,
    pub version: u64,
    pub batch_index: u32,
    pub batch_count: u32,
    /// Offset in the segment of the first byte of the write that carries this record.
    pub write_start: u64,
}

/// Appends one frame to `buf`. The caller has checked that the body fits [`MAX_BODY_LEN`]
/// (and therefore every length fits a `u32`).
pub(crate) fn encode_record(buf: &mut Vec<u8>, place: RecordPlace, stream: &str, event: &NewEvent) {
    let start = buf.len();
    let len = body_len(stream, event);
    buf.reserve(FRAME_HEADER_LEN + len);
    buf.extend_from_slice(&[0u8; FRAME_HEADER_LEN]);
    let body_start = buf.len();
    buf.push(FORMAT_V1);
    buf.extend_from_slice(&place.batch_index.to_le_bytes());
    buf.extend_from_slice(&place.batch_count.to_le_bytes());
    buf.extend_from_slice(&place.write_start.to_le_bytes());
    buf.extend_from_slice(&place.position.to_le_bytes());
    buf.extend_from_slice(&place.version.to_le_bytes());
    buf.extend_from_slice(event.id.as_bytes());
    buf.extend_from_slice(&event.schema_version.to_le_bytes());
    buf.extend_from_slice(&event.time_ms.to_le_bytes());
    buf.extend_from_slice(&len_u32(stream.len()).to_le_bytes());
    buf.extend_from_slice(&len_u32(event.event_type.len()).to_le_bytes());
    buf.extend_from_slice(&len_u32(event.actor.len()).to_le_bytes());
    buf.extend_from_slice(stream.as_bytes());
    buf.extend_from_slice(event.event_type.as_bytes());
    buf.extend_from_slice(event.actor.as_bytes());
    buf.extend_from_slice(&event.payload);
    let body_crc = crc32c::crc32c(&buf[body_start..]);
    let mut header = [0u8; FRAME_HEADER_LEN];
    header[0..4].copy_from_slice(&len_u32(len).to_le_bytes());
    header[4..8].copy_from_slice(&body_crc.to_le_bytes());
    let header_crc = crc32c::crc32c(&header[0..8]);
    header[8..12].copy_from_slice(&header_crc.to_le_bytes());
    buf[start..body_start].copy_from_slice(&header);
}

fn len_u32(len: usize) -> u32 {
    // Callers bound every body by MAX_BODY_LEN (< u32::MAX), so this never saturates.
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// A checked frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Header {
    /// Fewer than [`FRAME_HEADER_LEN`] bytes are available.
    Incomplete,
    /// The header checksum does not match.
    BadCrc,
    /// The header checksum matches.
    Valid { body_len: usize, body_crc: u32 },
}

/// Checks the frame header at the start of `bytes`.
pub(crate) fn read_header(bytes: &[u8]) -> Header {
    let Some(h) = bytes.get(..FRAME_HEADER_LEN) else {
        return Header::Incomplete;
    };
    let word = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
    if crc32c::crc32c(&h[0..8]) != word(8) {
        return Header::BadCrc;
    }
    Header::Valid {
        body_len: word(0) as usize,
        body_crc: word(4),
    }
}

/// A decoded body borrowing its strings from the buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Body<'a> {
    pub place: RecordPlace,
    pub id: Uuid,
    pub schema_version: u32,
    pub time_ms: i64,
    pub stream: &'a str,
    pub event_type: &'a str,
    pub actor: &'a str,
    /// Offset of the payload within the body; the payload runs to the body's end.
    pub payload_offset: usize,
}

/// Decodes a body whose checksum was verified. Errors describe what is malformed.
pub(crate) fn decode_body(body: &[u8]) -> Result<Body<'_>, String> {
    if body.len() < BODY_FIXED_LEN {
        return Err(format!("record body too short ({} bytes)", body.len()));
    }
    if body[0] != FORMAT_V1 {
        return Err(format!("unknown record format {}", body[0]));
    }
    let mut r = Reader { bytes: body, at: 1 };
    let batch_index = r.u32();
    let batch_count = r.u32();
    let write_start = r.u64();
    let position = r.u64();
    let version = r.u64();
    let id = Uuid::from_bytes(r.array16());
    let schema_version = r.u32();
    let time_ms = r.u64() as i64;
    let stream_len = r.u32() as usize;
    let type_len = r.u32() as usize;
    let actor_len = r.u32() as usize;
    let strings = stream_len
        .checked_add(type_len)
        .and_then(|n| n.checked_add(actor_len))
        .filter(|n| *n <= body.len() - BODY_FIXED_LEN)
        .ok_or_else(|| "record string lengths exceed the body".to_string())?;
    let text = |from: usize, len: usize, what: &str| {
        std::str::from_utf8(&body[from..from + len])
            .map_err(|_| format!("record {what} is not UTF-8"))
    };
    let stream = text(BODY_FIXED_LEN, stream_len, "stream")?;
    let event_type = text(BODY_FIXED_LEN + stream_len, type_len, "event type")?;
    let actor = text(BODY_FIXED_LEN + stream_len + type_len, actor_len, "actor")?;
    if batch_count == 0 || batch_index >= batch_count {
        return Err(format!(
            "record is {batch_index} of a batch of {batch_count}"
        ));
    }
    Ok(Body {
        place: RecordPlace {
            position,
            version,
            batch_index,
            batch_count,
            write_start,
        },
        id,
        schema_version,
        time_ms,
        stream,
        event_type,
        actor,
        payload_offset: BODY_FIXED_LEN + strings,
    })
}

/// Fixed-layout reader over a slice already known to hold `BODY_FIXED_LEN` bytes.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        out.copy_from_slice(&self.bytes[self.at..self.at + N]);
        self.at += N;
        out
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take())
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take())
    }
    fn array16(&mut self) -> [u8; 16] {
        self.take()
    }
}

/// The outcome of checking one frame at a given offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Frame {
    /// Not enough bytes for a header.
    IncompleteHeader,
    /// Header checksum mismatch.
    BadHeader,
    /// The header is valid but claims an impossible body length.
    BadLength { body_len: usize },
    /// The body runs past the end of the data.
    Truncated { body_len: usize },
    /// Body checksum mismatch; the frame would end at `end`.
    BadBody { end: usize },
    /// A whole, checksummed frame whose body is `data[body_start..end]`.
    Whole { body_start: usize, end: usize },
}

/// Checks the frame starting at `data[off..]`.
pub(crate) fn check_frame(data: &[u8], off: usize) -> Frame {
    let rest = &data[off.min(data.len())..];
    match read_header(rest) {
        Header::Incomplete => Frame::IncompleteHeader,
        Header::BadCrc => Frame::BadHeader,
        Header::Valid { body_len, body_crc } => {
            if !(BODY_FIXED_LEN..=MAX_BODY_LEN).contains(&body_len) {
                return Frame::BadLength { body_len };
            }
            let body_start = off + FRAME_HEADER_LEN;
            let end = body_start + body_len;
            if end > data.len() {
                return Frame::Truncated { body_len };
            }
            if crc32c::crc32c(&data[body_start..end]) != body_crc {
                return Frame::BadBody { end };
            }
            Frame::Whole { body_start, end }
        }
    }
}

/// The offset of the first whole, checksummed frame starting at or after `from`, if any.
/// Used to tell a torn tail (nothing valid after the damage) from corruption in the middle.
pub(crate) fn find_whole_frame(data: &[u8], from: usize) -> Option<usize> {
    (from..data.len().saturating_sub(FRAME_HEADER_LEN - 1))
        .find(|&off| matches!(check_frame(data, off), Frame::Whole { .. }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(payload: &str) -> NewEvent {
        NewEvent {
            id: Uuid::new_v4(),
            event_type: "RunCreated".into(),
            schema_version: 3,
            actor: "user:ann".into(),
            time_ms: -5,
            payload: payload.as_bytes().to_vec(),
        }
    }

    #[test]
    fn round_trip() {
        let ev = event(r#"{"a":1}"#);
        let mut buf = Vec::new();
        let place = RecordPlace {
            position: 7,
            version: 2,
            batch_index: 1,
            batch_count: 2,
            write_start: 99,
        };
        encode_record(&mut buf, place, "run-1", &ev);
        assert_eq!(buf.len(), frame_len("run-1", &ev));
        let Frame::Whole { body_start, end } = check_frame(&buf, 0) else {
            panic!("frame not whole");
        };
        assert_eq!(end, buf.len());
        let body = decode_body(&buf[body_start..end]).unwrap();
        assert_eq!(body.place.position, 7);
        assert_eq!(body.place.version, 2);
        assert_eq!(body.place.batch_index, 1);
        assert_eq!(body.place.batch_count, 2);
        assert_eq!(body.place.write_start, 99);
        assert_eq!(body.id, ev.id);
        assert_eq!(body.schema_version, 3);
        assert_eq!(body.time_ms, -5);
        assert_eq!(body.stream, "run-1");
        assert_eq!(body.event_type, "RunCreated");
        assert_eq!(body.actor, "user:ann");
        assert_eq!(
            &buf[body_start + body.payload_offset..end],
            ev.payload.as_slice()
        );
    }

    #[test]
    fn damage_is_detected() {
        let ev = event("{}");
        let mut buf = Vec::new();
        let place = RecordPlace {
            position: 0,
            version: 0,
            batch_index: 0,
            batch_count: 1,
            write_start: 0,
        };
        encode_record(&mut buf, place, "s", &ev);
        let mut bad_header = buf.clone();
        bad_header[1] ^= 1;
        assert_eq!(check_frame(&bad_header, 0), Frame::BadHeader);
        let mut bad_body = buf.clone();
        let last = bad_body.len() - 1;
        bad_body[last] ^= 0x40;
        assert_eq!(check_frame(&bad_body, 0), Frame::BadBody { end: buf.len() });
        assert!(matches!(
            check_frame(&buf[..buf.len() - 1], 0),
            Frame::Truncated { .. }
        ));
        assert_eq!(check_frame(&buf[..5], 0), Frame::IncompleteHeader);
        assert_eq!(check_frame(&[0u8; 64], 0), Frame::BadHeader);
        let mut garbage_then_frame = vec![0xAB; 13];
        garbage_then_frame.extend_from_slice(&buf);
        assert_eq!(find_whole_frame(&garbage_then_frame, 0), Some(13));
        assert_eq!(find_whole_frame(&bad_body, 0), None);
    }

    #[test]
    fn segment_names() {
        assert_eq!(segment_file_name(42), "segment-00000000000000000042.log");
        assert_eq!(
            parse_segment_file_name("segment-00000000000000000042.log"),
            Some(42)
        );
        assert_eq!(parse_segment_file_name("segment-42.log"), None);
        assert_eq!(parse_segment_file_name("LOCK"), None);
    }
}
