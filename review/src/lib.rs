//! Reviews of sessions and the access log: "audit the auditors" (issue 17, part 2).
//!
//! Two folders of the store, each one small JSON object per record
//! (`schemas/reviews-and-access.md`):
//!
//! - `reviews/date=YYYY-MM-DD/<time ns>-<digest>.json`: a [`Review`], who decided what
//!   ([`Decision`]) about which session and when, signed with the reviewer's ed25519 key
//!   when one is configured. [`record_review`] writes one; [`read_reviews`] reads them all
//!   and checks each signature against a trust file ([`SignatureState`]); [`overdue`]
//!   names the sessions not reviewed within a maximum age of their end.
//! - `access/date=YYYY-MM-DD/<time ns>-<digest>.json`: an [`Access`], one `replay` run
//!   that showed recordings (play, export, search, commands, report, review): who, what,
//!   when, from which host. [`record_access`] writes one; [`read_access`] reads a period.
//!
//! Object names sort by time and never collide: the time in nanoseconds (20 digits) and
//! the first 16 hex digits of the BLAKE3 digest of the object's bytes. The digest also
//! tells a reader when an object was changed after it was written (reported as a
//! [`Problem`]); for reviews, the signature is the real check.
//!
//! Readers never panic on what they read: an object that cannot be read or decoded is a
//! [`Problem`] naming its key, returned beside what could be read.
//!
//! Callers: `replay review`, `replay reviews`, `replay access-log` and every `replay`
//! command that shows recordings (through `replay::access`); the report generator reads
//! reviews and access events for its review and access sections.
#![warn(missing_docs)]

mod access;
mod object;
mod review;
mod who;

pub use access::{Access, decode_access, read_access, record_access};
pub use review::{
    Decision, Review, SignatureState, decode_review, overdue, read_reviews, record_review,
    review_message,
};
pub use who::{host_name, login_user};

/// Version of the JSON objects written (`"v"`); readers refuse other versions.
pub const FORMAT_VERSION: u32 = 1;

/// What went wrong while writing records or listing the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store could not be listed.
    #[error("cannot list {folder}/ in {store}: {source}")]
    List {
        /// The folder.
        folder: &'static str,
        /// The store, as a URL.
        store: String,
        /// Why (boxed: a store error is large).
        source: Box<store::StoreError>,
    },
    /// An object could not be written.
    #[error("cannot write {key} to {store}: {source}")]
    Put {
        /// The object's key.
        key: String,
        /// The store, as a URL.
        store: String,
        /// Why (boxed: a store error is large).
        source: Box<store::StoreError>,
    },
    /// The record cannot be written as it is.
    #[error("cannot record this {what}: {reason}")]
    Invalid {
        /// "review" or "access event".
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// An object that could not be read or decoded, reported beside what could be read (the
/// store's, shared with the other readers of small JSON objects).
pub use store::Problem;

/// The format version of a stored object, checked before its fields are, so that an
/// object of another version is reported as such rather than as missing fields.
pub(crate) fn check_version(bytes: &[u8]) -> Result<(), DecodeError> {
    #[derive(serde::Deserialize)]
    struct Versioned {
        v: u32,
    }
    let found = serde_json::from_slice::<Versioned>(bytes)
        .map_err(|e| DecodeError::Json(e.to_string()))?
        .v;
    if found == FORMAT_VERSION {
        Ok(())
    } else {
        Err(DecodeError::UnsupportedVersion {
            found,
            supported: FORMAT_VERSION,
        })
    }
}

/// Why stored bytes do not decode as a review or an access event.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not JSON, or not the fields expected.
    #[error("not a valid object: {0}")]
    Json(String),
    /// Written by a newer (or unknown) format version.
    #[error("format version {found} is not supported (this build reads version {supported})")]
    UnsupportedVersion {
        /// The version found.
        found: u32,
        /// The one this build reads.
        supported: u32,
    },
    /// A field holds a value it cannot hold.
    #[error("field {field}: {reason}")]
    Field {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
}
