//! [`EnvelopeError`], the one error type of the crate.

use std::path::PathBuf;

/// What can go wrong wrapping or unwrapping a session's data key.
///
/// Every message is one line that names the object concerned (recipient, file and line,
/// KMS key, session) and, where the user can act, what to do.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    /// A recipient given on the command line or in a file does not parse.
    #[error("'{input}' is not a recipient: {reason}")]
    BadRecipient {
        /// What was given (shortened if long).
        input: String,
        /// Why it was refused and what is expected instead.
        reason: String,
    },
    /// A recipients file cannot be read or holds something that is not a recipient.
    #[error("recipients file {}{}: {reason}", path.display(), line.map(|l| format!(" line {l}")).unwrap_or_default())]
    RecipientsFile {
        /// The file.
        path: PathBuf,
        /// 1-based line number, when the problem is on one line.
        line: Option<usize>,
        /// What is wrong with it.
        reason: String,
    },
    /// An identity file cannot be read or is not a key this crate can use.
    #[error("identity file {}: {reason}", path.display())]
    IdentityFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it and what was expected.
        reason: String,
    },
    /// Wrapping the key was asked for without anyone to wrap it for.
    #[error("nothing to seal the session for: give --recipient, --recipients-file or --kms-key-id")]
    NoRecipients,
    /// The data key could not be made or wrapped (no randomness, age failure).
    #[error("cannot seal the session's data key: {0}")]
    Wrap(String),
    /// A KMS call failed while wrapping the key.
    #[error("cannot seal the session's data key with KMS key {key_id}: {message}")]
    Kms {
        /// The key id, ARN or alias given.
        key_id: String,
        /// What KMS or the SDK said, on one line, with a hint where there is one.
        message: String,
    },
    /// The session's envelope could not be opened with what was given.
    #[error(
        "session {session} is sealed for {}; {detail}",
        sealed_for_text(sealed_for)
    )]
    CannotOpen {
        /// The session, as given for messages.
        session: String,
        /// Who it was sealed for, as shown to users (SSH keys by fingerprint).
        sealed_for: Vec<String>,
        /// Why it did not open and what to try.
        detail: String,
    },
    /// The envelope was written by a newer or unknown version of auditty.
    #[error(
        "session {session} is sealed with envelope version {version} and aead '{aead}', but this \
         build reads only version {supported_version} with '{supported_aead}': {}",
        if version > supported_version {
            "use a newer replay"
        } else {
            "the envelope is damaged or was not written by auditty"
        }
    )]
    Unsupported {
        /// The session, as given for messages.
        session: String,
        /// `Envelope.version` found.
        version: u32,
        /// `Envelope.aead` found.
        aead: String,
        /// The version this build reads.
        supported_version: u32,
        /// The AEAD this build reads.
        supported_aead: &'static str,
    },
}

fn sealed_for_text(sealed_for: &[String]) -> String {
    if sealed_for.is_empty() {
        "no recipient it names".to_string()
    } else {
        sealed_for.join(", ")
    }
}

/// `s` cut to about `max` characters (on a char boundary) with `…`, for echoing input.
pub(crate) fn shorten(s: &str, max: usize) -> String {
    let s = s.trim();
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max).collect();
    out.push('…');
    out
}

/// Text on one line: newlines and runs of whitespace become single spaces.
pub(crate) fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
