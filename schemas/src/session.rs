//! Metadata of the `start` and `end` events, carried as JSON in their data.
//!
//! The JSON Schema of both lives in `schemas/session-metadata.schema.json`. Unknown fields
//! are ignored so that older readers accept metadata from newer agents.

use serde::{Deserialize, Serialize};

/// Version of the metadata layout written by this build.
pub const METADATA_VERSION: u32 = 1;

/// What the `start` event records about a session.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionStart {
    /// Layout version of this metadata.
    pub version: u32,
    /// Wall-clock start, nanoseconds since the Unix epoch (UTC).
    pub start_time_ns: i64,
    /// Login name of the recorded user.
    pub user: String,
    /// Numeric user id.
    pub uid: u32,
    /// Host name of the machine.
    pub host: String,
    /// `/etc/machine-id`, when the machine has one.
    pub machine_id: Option<String>,
    /// Client address from `SSH_CONNECTION`, when the session came in over SSH.
    pub remote_addr: Option<String>,
    /// The program and its arguments that ran in the session.
    pub command: Vec<String>,
    /// `TERM` of the user's terminal.
    pub term: Option<String>,
    /// Initial width in columns.
    pub cols: u16,
    /// Initial height in rows.
    pub rows: u16,
    /// Version of the agent that recorded the session.
    pub agent_version: String,
    /// Input typed at password prompts (echo off, canonical mode) is left out and counted
    /// in `redacted` events.
    pub redacts_hidden_input: bool,
    /// Encryption envelope (wrapped data keys); `None` for plaintext sessions.
    pub envelope: Option<Envelope>,
    /// The session's number in its node's ledger (the sessions signed by its node key),
    /// from 1; 0 when it was not numbered (agents before the ledger). DESIGN.md §6.
    #[serde(skip_serializing_if = "is_zero")]
    pub node_seq: u64,
    /// The node's session numbered `node_seq - 1`, as text; `None` for the first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prev_session: Option<String>,
    /// Set when the session was recorded by another tool and brought in with `replay
    /// import`: it was never signed at capture (DESIGN.md §6).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub import: Option<ImportSource>,
}

/// Where an imported session came from: the other recorder's format and the digest of
/// what was imported, so that an auditor can hold the store against the original file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImportSource {
    /// The format read: `asciicast-v1`, `asciicast-v2`, `asciicast-v3`, `ttyrec`,
    /// `script`, `sudo-iolog` or `tlog`.
    pub format: String,
    /// SHA-256 of the imported bytes, lowercase hex: of the file itself for a one-file
    /// format (what `sha256sum FILE` prints); for a `script` pair or a sudo I/O log
    /// directory, the digest defined by the `import` crate over its files.
    pub sha256: String,
    /// Bytes read.
    pub bytes: u64,
    /// What the original recording said that the start metadata has no field for (sudo's
    /// run-as user and working directory, tlog's recording id, the terminal's name…).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub details: std::collections::BTreeMap<String, String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Version of the [`Envelope`] layout written by this build.
pub const ENVELOPE_VERSION: u32 = 1;

/// The session's data key, wrapped for each recipient; carried in the `start` event's
/// `envelope` field. The `envelope` crate builds and opens it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Envelope {
    /// Layout version ([`ENVELOPE_VERSION`]).
    pub version: u32,
    /// The AEAD sealing the chunks ([`AEAD_NAME`](crate::chunk::seal::AEAD_NAME)).
    pub aead: String,
    /// Who can open the session, for messages: `age1…`, `ssh-ed25519 AAAA… comment`,
    /// `kms:KEY-ID`.
    pub recipients: Vec<String>,
    /// The data key as one binary age file for all age and SSH recipients, base64.
    pub age: Option<String>,
    /// The data key wrapped by AWS KMS, once per KMS key.
    pub kms: Vec<KmsWrappedKey>,
}

/// A data key wrapped by AWS KMS (`GenerateDataKey` / `Encrypt`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct KmsWrappedKey {
    /// The key id or ARN given to the agent.
    pub key_id: String,
    /// `CiphertextBlob`, base64.
    pub ciphertext: String,
    /// The KMS encryption context the key was generated under (`auditty:session` = the
    /// session id): KMS refuses to decrypt without it, and CloudTrail logs it with every
    /// `Decrypt`, so the audit log says which session each read was for.
    pub context: std::collections::BTreeMap<String, String>,
}

/// Why a session ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// The program exited.
    #[default]
    Exit,
    /// The program was killed by a signal.
    Signal,
    /// The session was idle for too long.
    IdleTimeout,
    /// The agent was asked to stop (SIGTERM, SIGHUP).
    AgentShutdown,
    /// Recording could not go on (spool full, disk error); the session was ended.
    RecordingFailed,
}

impl EndReason {
    /// The name used in listings and Parquet.
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Exit => "exit",
            EndReason::Signal => "signal",
            EndReason::IdleTimeout => "idle_timeout",
            EndReason::AgentShutdown => "agent_shutdown",
            EndReason::RecordingFailed => "recording_failed",
        }
    }
}

/// What the `end` event records.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionEnd {
    /// Layout version of this metadata.
    pub version: u32,
    /// Exit status of the program, when it exited normally.
    pub exit_status: Option<i32>,
    /// Signal that killed the program, when it was killed.
    pub signal: Option<i32>,
    /// Why the session ended.
    pub reason: EndReason,
    /// Number of events in the session, this `end` event included.
    pub event_count: u64,
    /// Bytes of input recorded.
    pub input_bytes: u64,
    /// Bytes of output recorded.
    pub output_bytes: u64,
    /// Final hash of the integrity chain (DESIGN.md §6), when the agent keeps one.
    pub chain_hash: Option<String>,
    /// Human-readable detail, e.g. why recording failed.
    pub detail: Option<String>,
}

impl SessionStart {
    /// The metadata as the bytes of a `start` event.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("plain struct serializes")
    }

    /// Parses the data of a `start` event.
    pub fn from_bytes(data: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(data)
    }

    /// The command as one shell-like line, for listings.
    pub fn command_line(&self) -> String {
        self.command.join(" ")
    }
}

impl SessionEnd {
    /// The metadata as the bytes of an `end` event.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("plain struct serializes")
    }

    /// Parses the data of an `end` event.
    pub fn from_bytes(data: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_round_trips_and_tolerates_unknown_fields() {
        let s = SessionStart {
            version: METADATA_VERSION,
            user: "alice".into(),
            command: vec!["bash".into(), "-l".into()],
            cols: 80,
            rows: 24,
            ..Default::default()
        };
        assert_eq!(SessionStart::from_bytes(&s.to_bytes()).unwrap(), s);
        let newer = br#"{"version":2,"user":"bob","future_field":[1,2]}"#;
        assert_eq!(SessionStart::from_bytes(newer).unwrap().user, "bob");
        let e = SessionEnd {
            exit_status: Some(3),
            reason: EndReason::Exit,
            event_count: 10,
            ..Default::default()
        };
        assert_eq!(SessionEnd::from_bytes(&e.to_bytes()).unwrap(), e);
    }
}
