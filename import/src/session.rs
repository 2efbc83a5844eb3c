//! A decoded [`Recording`] as the events of an ordinary auditty session.
//!
//! The session looks like one the agent recorded: `start` (seq 0) with the metadata,
//! the recording's frames, `end` with the counts and exit status. It carries no
//! checkpoints — nothing signed it at capture — and its `start` says where it came from
//! ([`schemas::ImportSource`]: format, SHA-256 and size of what was imported), which is how
//! `replay verify` and `ls` tell it apart from a session whose signatures were removed.
//!
//! Its id is a UUIDv7 of the recording's start (to the millisecond, so that it dates the
//! session's rows as the agent's ids do) whose remaining bits derive from the digest, so
//! the same file always becomes the same session.

use std::collections::BTreeMap;

use schemas::session::METADATA_VERSION;
use schemas::{EndReason, Event, EventKind, ImportSource, SessionEnd, SessionId, SessionStart};
use sha2::{Digest as _, Sha256};

use crate::Recording;

/// SHA-256 of what was imported, with its size.
///
/// For one file, the SHA-256 of its bytes (what `sha256sum FILE` prints). For a
/// recording of several files (a `script` timing file and its typescripts, a sudo I/O log
/// directory), the SHA-256 of the files in a fixed order, each framed as its role or
/// name, a NUL byte, its length as 8 little-endian bytes, then its bytes as stored
/// (compressed files as compressed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    /// The SHA-256.
    pub sha256: [u8; 32],
    /// Bytes digested (file contents only).
    pub bytes: u64,
}

impl Digest {
    /// The digest of one file's bytes.
    pub fn of_file(bytes: &[u8]) -> Digest {
        Digest {
            sha256: Sha256::digest(bytes).into(),
            bytes: bytes.len() as u64,
        }
    }

    /// The digest of several named files, in the order given (see [`Digest`]).
    pub fn of_parts<'a>(parts: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Digest {
        let mut h = Sha256::new();
        let mut bytes = 0u64;
        for (name, data) in parts {
            h.update(name.as_bytes());
            h.update([0]);
            h.update((data.len() as u64).to_le_bytes());
            h.update(data);
            bytes += data.len() as u64;
        }
        Digest {
            sha256: h.finalize().into(),
            bytes,
        }
    }

    /// Lowercase hex.
    pub fn hex(&self) -> String {
        self.sha256.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// What the importer fills in where a recording does not say.
#[derive(Clone, Debug)]
pub struct Defaults {
    /// The user (`replay import --user`).
    pub user: String,
    /// The host (`--host`).
    pub host: String,
    /// The start, UTC nanoseconds (`--start`, else the file's modification time less the
    /// recording's duration).
    pub start_time_ns: i64,
    /// The terminal size (`--size`).
    pub size: (u16, u16),
}

/// A recording as a session: its id, metadata and every event, `start` to `end`.
#[derive(Clone, Debug)]
pub struct ImportedSession {
    /// Derived from the digest and the start (see the module doc).
    pub id: SessionId,
    /// The `start` metadata.
    pub start: SessionStart,
    /// The `end` metadata.
    pub end: SessionEnd,
    /// seq 0 (`start`) … the last (`end`).
    pub events: Vec<Event>,
}

impl Recording {
    /// The duration: the later of what the file states and its last frame.
    pub fn duration(&self) -> u64 {
        let last = self.frames.last().map_or(0, |f| f.elapsed_ns);
        self.duration_ns.unwrap_or(0).max(last)
    }

    /// The session this recording becomes. `index` numbers the recordings of one file
    /// (tlog files may hold several) so that each gets its own id.
    pub fn to_session(&self, digest: &Digest, index: u32, defaults: &Defaults) -> ImportedSession {
        let start_ns = self.start_time_ns.unwrap_or(defaults.start_time_ns);
        // The id's timestamp is the start to the millisecond, and the agent's rule is
        // that the recorded start equals it (DESIGN.md §3).
        let start_ns = start_ns - start_ns.rem_euclid(1_000_000);
        let mut seed = Sha256::new();
        seed.update(b"auditty-import\0");
        seed.update(digest.sha256);
        seed.update(index.to_le_bytes());
        let id = SessionId::derived_v7(start_ns, &seed.finalize().into());
        let (cols, rows) = self.size.unwrap_or(defaults.size);
        let mut details: BTreeMap<String, String> = self.details.clone();
        if self.user.is_none() {
            details.insert("user".into(), "not in the recording".into());
        }
        let start = SessionStart {
            version: METADATA_VERSION,
            start_time_ns: start_ns,
            user: self.user.clone().unwrap_or_else(|| defaults.user.clone()),
            uid: 0,
            host: self.host.clone().unwrap_or_else(|| defaults.host.clone()),
            machine_id: None,
            remote_addr: None,
            command: self.command.clone(),
            term: self.term.clone(),
            cols,
            rows,
            agent_version: format!("replay import {}", env!("CARGO_PKG_VERSION")),
            redacts_hidden_input: false,
            envelope: None,
            node_seq: 0,
            prev_session: None,
            import: Some(ImportSource {
                format: self.format.as_str().to_string(),
                sha256: digest.hex(),
                bytes: digest.bytes,
                details,
            }),
        };
        let mut events = Vec::with_capacity(self.frames.len() + 2);
        events.push(Event {
            seq: 0,
            elapsed_ns: 0,
            kind: EventKind::Start,
            data: start.to_bytes(),
        });
        let (mut input_bytes, mut output_bytes) = (0u64, 0u64);
        for f in &self.frames {
            match f.kind {
                EventKind::Input => input_bytes += f.data.len() as u64,
                EventKind::Output => output_bytes += f.data.len() as u64,
                _ => {}
            }
            events.push(Event {
                seq: events.len() as u64,
                elapsed_ns: f.elapsed_ns,
                kind: f.kind,
                data: f.data.clone(),
            });
        }
        let end = SessionEnd {
            version: METADATA_VERSION,
            exit_status: self.exit_status,
            signal: None,
            reason: EndReason::Exit,
            event_count: events.len() as u64 + 1,
            input_bytes,
            output_bytes,
            chain_hash: None,
            detail: Some(format!(
                "imported from a {} recording (sha256 {})",
                self.format,
                digest.hex()
            )),
        };
        events.push(Event {
            seq: events.len() as u64,
            elapsed_ns: self.duration(),
            kind: EventKind::End,
            data: end.to_bytes(),
        });
        ImportedSession {
            id,
            start,
            end,
            events,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Format;

    #[test]
    fn sessions_are_numbered_dated_and_derived_from_the_digest() {
        let mut rec = Recording::new(Format::Ttyrec);
        rec.start_time_ns = Some(1_700_000_000_123_456_789);
        rec.push(5, EventKind::Output, b"hi".to_vec());
        rec.push(9, EventKind::Input, b"x".to_vec());
        let d = Digest::of_file(b"file");
        let defaults = Defaults {
            user: "unknown".into(),
            host: "unknown".into(),
            start_time_ns: 0,
            size: (80, 24),
        };
        let s = rec.to_session(&d, 0, &defaults);
        assert_eq!(s.id, rec.to_session(&d, 0, &defaults).id);
        assert_ne!(s.id, rec.to_session(&d, 1, &defaults).id);
        assert_eq!(s.id.start_time_ns(), Some(s.start.start_time_ns));
        assert_eq!(s.start.start_time_ns, 1_700_000_000_123_000_000);
        let seqs: Vec<u64> = s.events.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [0, 1, 2, 3]);
        assert_eq!(s.end.event_count, 4);
        assert_eq!((s.end.input_bytes, s.end.output_bytes), (1, 2));
        assert_eq!(s.events[3].elapsed_ns, 9);
        let import = s.start.import.as_ref().unwrap();
        assert_eq!(import.format, "ttyrec");
        assert_eq!(import.sha256, d.hex());
        assert_eq!(s.start.user, "unknown");
        // `sha256sum` of the word "file".
        assert!(d.hex().starts_with("3b9c358f"), "{}", d.hex());
    }
}
