//! The event model: one thing that happened in a session.

use std::fmt;
use std::str::FromStr;

/// A session's identity: a UUIDv7, so ids sort by start time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionId(pub uuid::Uuid);

impl SessionId {
    /// A fresh, time-ordered id for a new session.
    pub fn new_v7() -> Self {
        SessionId(uuid::Uuid::now_v7())
    }

    /// A UUIDv7 whose timestamp is `unix_ns` truncated to milliseconds. The agent makes the
    /// session's recorded start time exactly [`SessionId::start_time_ns`], so every part can
    /// tell an event's wall-clock time (start + elapsed) from the chunk alone.
    pub fn new_v7_at(unix_ns: i64) -> Self {
        let ms = u64::try_from(unix_ns.max(0) / 1_000_000).unwrap_or(0);
        let ts = uuid::Timestamp::from_unix(
            uuid::NoContext,
            ms / 1000,
            ((ms % 1000) * 1_000_000) as u32,
        );
        SessionId(uuid::Uuid::new_v7(ts))
    }

    /// A UUIDv7 whose timestamp is `unix_ns` truncated to milliseconds, like
    /// [`SessionId::new_v7_at`], and whose other 74 bits come from `seed` (e.g. a digest of
    /// an imported file) instead of randomness: the same seed and time give the same id.
    pub fn derived_v7(unix_ns: i64, seed: &[u8; 32]) -> Self {
        let ms = u64::try_from(unix_ns.max(0) / 1_000_000).unwrap_or(0);
        let mut rand = [0u8; 10];
        rand.copy_from_slice(&seed[..10]);
        SessionId(uuid::Builder::from_unix_timestamp_millis(ms, &rand).into_uuid())
    }

    /// The session's start time in nanoseconds since the epoch (millisecond precision), if
    /// this is a UUIDv7.
    pub fn start_time_ns(&self) -> Option<i64> {
        if self.0.get_version_num() != 7 {
            return None;
        }
        let (secs, nanos) = self.0.get_timestamp()?.to_unix();
        i64::try_from(secs)
            .ok()?
            .checked_mul(1_000_000_000)?
            .checked_add(i64::from(nanos))
    }

    /// The 16 raw bytes, as carried in chunk headers.
    pub fn as_bytes(&self) -> &[u8; 16] {
        self.0.as_bytes()
    }

    /// Builds an id from the 16 raw bytes of a chunk header.
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        SessionId(uuid::Uuid::from_bytes(bytes))
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for SessionId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        uuid::Uuid::parse_str(s).map(SessionId)
    }
}

/// What an event records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum EventKind {
    /// Session metadata ([`crate::SessionStart`] as JSON); always seq 0.
    Start = 0,
    /// Bytes typed by the user (what the terminal sent to the program).
    Input = 1,
    /// Bytes the program wrote to the terminal.
    Output = 2,
    /// The window size changed; data is `COLSxROWS`.
    Resize = 3,
    /// A label added with `auditty-agent mark`.
    Marker = 4,
    /// Session end metadata ([`crate::SessionEnd`] as JSON); followed only by the final
    /// checkpoint.
    End = 5,
    /// A signed integrity checkpoint over the events before it (the `integrity` crate's
    /// JSON); never sealed, so a verifier needs no key.
    Checkpoint = 6,
    /// Input typed while the terminal had echo off (a password prompt) was left out; data
    /// is the number of bytes, in ASCII decimal.
    Redacted = 7,
}

impl EventKind {
    /// All kinds, in wire order.
    pub const ALL: [EventKind; 8] = [
        EventKind::Start,
        EventKind::Input,
        EventKind::Output,
        EventKind::Resize,
        EventKind::Marker,
        EventKind::End,
        EventKind::Checkpoint,
        EventKind::Redacted,
    ];

    /// The wire byte of this kind.
    pub fn to_byte(self) -> u8 {
        self as u8
    }

    /// The kind for a wire byte, if it is one we know.
    pub fn from_byte(b: u8) -> Option<Self> {
        Self::ALL.get(usize::from(b)).copied()
    }

    /// The name used in the Parquet `kind` column and in JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Start => "start",
            EventKind::Input => "input",
            EventKind::Output => "output",
            EventKind::Resize => "resize",
            EventKind::Marker => "marker",
            EventKind::End => "end",
            EventKind::Checkpoint => "checkpoint",
            EventKind::Redacted => "redacted",
        }
    }

    /// The kind named by [`EventKind::as_str`].
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one row of the `events` table holds (DESIGN.md §4): one plaintext event, or one
/// sealed chunk covering `seq..=seq_last`.
///
/// The Parquet `kind` column stores it as text ([`RowKind::as_str`], read back with
/// [`RowKind::from_name`]); everything past that boundary works with this type.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RowKind {
    /// A plaintext event of this kind.
    Event(EventKind),
    /// A sealed chunk, stored as received (`kind = "sealed"`).
    Sealed,
    /// A `kind` this build does not know (a newer writer, or damage), kept verbatim so
    /// that readers can skip it, count it, or hash it as stored rather than fail.
    Unknown(String),
}

impl RowKind {
    /// The `kind` text of a sealed row.
    pub const SEALED: &'static str = "sealed";

    /// The row kind named by the `kind` column; never fails, see [`RowKind::Unknown`].
    pub fn from_name(name: &str) -> RowKind {
        match EventKind::from_name(name) {
            Some(k) => RowKind::Event(k),
            None if name == Self::SEALED => RowKind::Sealed,
            None => RowKind::Unknown(name.to_string()),
        }
    }

    /// The text stored in the `kind` column.
    pub fn as_str(&self) -> &str {
        match self {
            RowKind::Event(k) => k.as_str(),
            RowKind::Sealed => Self::SEALED,
            RowKind::Unknown(name) => name,
        }
    }

    /// The event kind of a plaintext row; `None` for sealed and unknown rows.
    pub fn event(&self) -> Option<EventKind> {
        match self {
            RowKind::Event(k) => Some(*k),
            RowKind::Sealed | RowKind::Unknown(_) => None,
        }
    }
}

impl From<EventKind> for RowKind {
    fn from(k: EventKind) -> RowKind {
        RowKind::Event(k)
    }
}

impl fmt::Display for RowKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One event of a session. The session id lives in the chunk that carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// 0, 1, 2, … per session with no gaps; a gap means loss.
    pub seq: u64,
    /// Monotonic nanoseconds since the session started; drives playback.
    pub elapsed_ns: u64,
    /// What happened.
    pub kind: EventKind,
    /// Raw terminal bytes, `COLSxROWS`, a label or JSON metadata, by kind.
    pub data: Vec<u8>,
}

/// Parses the `COLSxROWS` data of a resize event.
pub fn parse_size(data: &[u8]) -> Option<(u16, u16)> {
    let s = std::str::from_utf8(data).ok()?;
    let (c, r) = s.split_once('x')?;
    let cols: u16 = c.parse().ok()?;
    let rows: u16 = r.parse().ok()?;
    (cols > 0 && rows > 0).then_some((cols, rows))
}

/// Formats a window size as the data of a resize event.
pub fn format_size(cols: u16, rows: u16) -> Vec<u8> {
    format!("{cols}x{rows}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_bytes_and_names() {
        for k in EventKind::ALL {
            assert_eq!(EventKind::from_byte(k.to_byte()), Some(k));
            assert_eq!(EventKind::from_name(k.as_str()), Some(k));
        }
        assert_eq!(EventKind::from_byte(8), None);
    }

    #[test]
    fn row_kinds_round_trip_through_names() {
        for k in EventKind::ALL {
            assert_eq!(RowKind::from_name(k.as_str()), RowKind::Event(k));
            assert_eq!(RowKind::Event(k).as_str(), k.as_str());
        }
        assert_eq!(RowKind::from_name("sealed"), RowKind::Sealed);
        assert_eq!(RowKind::Sealed.as_str(), "sealed");
        let odd = RowKind::from_name("hologram");
        assert_eq!(odd, RowKind::Unknown("hologram".into()));
        assert_eq!(odd.as_str(), "hologram");
        assert_eq!(odd.event(), None);
    }

    #[test]
    fn v7_ids_carry_their_start_time() {
        let t = 1_795_823_188_123_456_789;
        let id = SessionId::new_v7_at(t);
        assert_eq!(id.start_time_ns(), Some(1_795_823_188_123_000_000));
        assert_eq!(SessionId::from_bytes([0; 16]).start_time_ns(), None);
        let a = SessionId::derived_v7(t, &[7; 32]);
        assert_eq!(a, SessionId::derived_v7(t, &[7; 32]));
        assert_ne!(a, SessionId::derived_v7(t, &[8; 32]));
        assert_eq!(a.start_time_ns(), Some(1_795_823_188_123_000_000));
        assert_eq!(a.0.get_version_num(), 7);
    }

    #[test]
    fn sizes_parse_and_reject_nonsense() {
        assert_eq!(parse_size(b"120x40"), Some((120, 40)));
        assert_eq!(parse_size(&format_size(80, 24)), Some((80, 24)));
        assert_eq!(parse_size(b"0x40"), None);
        assert_eq!(parse_size(b"-1x0"), None);
        assert_eq!(parse_size(b"80"), None);
    }
}
