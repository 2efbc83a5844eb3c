//! The end of a recording's life: legal holds, purge with signed tombstones, and the
//! retention selection (DESIGN.md §6 and §10; issue 19, item 6).
//!
//! Three folders of the store, one small JSON object per session each:
//!
//! - `holds/<session id>.json`: a [`Hold`], who put it, when and why. A held session is
//!   exempt from retention ([`expired`] leaves it out) and [`purge`] refuses it.
//!   [`place_hold`], [`release_hold`], [`read_holds`].
//! - `tombstones/<session id>.json`: a [`Tombstone`], the signed record that a session was
//!   purged: who (operator key and name, OS user, host), when, why, the objects that held
//!   its rows, its time range, and its place in its node's ledger (node key, `node_seq`,
//!   previous session) taken from its signed `start` row, so that the ledger check still
//!   counts it. [`check_tombstone`] judges a tombstone against the operators' trust file
//!   ([`TombstoneState`]); only a trusted one turns "missing" into "purged".
//! - `events/` and `sessions/`: [`purge`] rewrites every object that holds rows of the
//!   sessions it purges, without those rows, keeping every other row and the footer
//!   metadata (the ingester's cut offsets), under the same key.
//!
//! Order, for crash safety: the tombstone first (it says "purge requested"), then the
//! objects. A crash in between leaves a tombstoned session that still has rows; `replay
//! verify` reports it as "purge incomplete" and a second [`purge`] finishes the job (it
//! keeps the first tombstone, which holds the ledger facts read before any row was gone).
//!
//! The retention API for compaction: [`expired`] (sessions started before a cutoff and not
//! held) and [`purge`] with many sessions, which rewrites each object once.
//!
//! Callers: `replay hold`, `replay holds`, `replay purge` and `replay verify` (tombstones);
//! `replay index` and the commands that open a session (to say "purged" instead of "not
//! found"); `auditty-ingest compact` for retention.
#![warn(missing_docs)]

mod hold;
mod json;
mod purge;
mod tombstone;

pub use hold::{Hold, place_hold, read_holds, release_hold};
pub use purge::{Operator, PurgeReport, Purged, expired, purge};
pub use tombstone::{
    CheckedTombstone, LedgerPlace, TOMBSTONE_DOMAIN, Tombstone, TombstoneState, check_tombstone,
    read_tombstone, read_tombstones,
};

/// Version of the JSON objects written (`"v"`); readers refuse other versions.
pub const FORMAT_VERSION: u32 = 1;

/// Failpoint variable, as in `auditty-ingest`: `AUDITTY_FAILPOINT=purge-after-first-rewrite`
/// kills the process (SIGKILL) in [`purge`] right after the first object was rewritten, so that a test can leave a
/// purge half done exactly where a crash would.
pub const FAILPOINT_ENV: &str = "AUDITTY_FAILPOINT";
/// The failpoint [`purge`] knows.
pub const FAILPOINT_AFTER_FIRST_REWRITE: &str = "purge-after-first-rewrite";

/// The key of a session's hold: `holds/<id>.json`.
pub fn hold_key(id: schemas::SessionId) -> String {
    format!("{}/{id}.json", store::layout::HOLDS)
}

/// The key of a session's tombstone: `tombstones/<id>.json`.
pub fn tombstone_key(id: schemas::SessionId) -> String {
    format!("{}/{id}.json", store::layout::TOMBSTONES)
}

/// The session a `holds/` or `tombstones/` key names.
pub(crate) fn id_of_key(key: &str) -> Option<schemas::SessionId> {
    key.rsplit('/').next()?.strip_suffix(".json")?.parse().ok()
}

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store failed (listing, reading or writing `key`).
    #[error("cannot {op} {key} in {store}: {source}")]
    Store {
        /// What was being done: "list", "read", "write", "delete".
        op: &'static str,
        /// The object or folder.
        key: String,
        /// The store, as a URL.
        store: String,
        /// Why (boxed: a store error is large).
        source: Box<store::StoreError>,
    },
    /// A session is on legal hold: nothing was purged.
    #[error(
        "session {session} is on legal hold (placed {when} by {who}: {reason}); nothing was purged\n  \
         try: `replay hold --release {session} --reason TEXT` once the hold no longer applies"
    )]
    Held {
        /// The session.
        session: schemas::SessionId,
        /// When the hold was placed (RFC 3339).
        when: String,
        /// Who placed it.
        who: String,
        /// Why.
        reason: String,
    },
    /// The request cannot be carried out as given.
    #[error("{0}")]
    Invalid(String),
    /// The operator key cannot be read.
    #[error("cannot use operator key {path}: {source}")]
    OperatorKey {
        /// The key file.
        path: std::path::PathBuf,
        /// Why.
        source: integrity::KeyError,
    },
    /// There is no operator key where one was named.
    #[error(
        "there is no operator key at {0}; nothing was purged\n  \
         try: `replay operator-key --operator-key {0}` and add the line it prints to the operators' trust file"
    )]
    NoOperatorKey(std::path::PathBuf),
    /// An object holding rows to purge cannot be read or rewritten: the purge stopped
    /// there. Its tombstone is written, so `replay verify` says the purge is incomplete.
    #[error(
        "cannot purge rows from {key}: {reason}\n  \
         the tombstone(s) are written; run the same purge again once the object can be read and written"
    )]
    Rewrite {
        /// The object.
        key: String,
        /// Why.
        reason: String,
    },
}

impl Error {
    pub(crate) fn store(
        op: &'static str,
        key: &str,
        store: &dyn store::ObjectStore,
        source: store::StoreError,
    ) -> Error {
        Error::Store {
            op,
            key: key.to_string(),
            store: store.describe(),
            source: Box::new(source),
        }
    }
}

/// The operator key at `path`, which signs tombstones (`replay purge`, and retention in
/// `auditty-ingest compact`): it must exist, since a purge without a tombstone would look
/// like a lost session to every verifier.
pub fn load_operator_key(path: &std::path::Path) -> Result<integrity::NodeKey, Error> {
    integrity::NodeKey::load(path)
        .map_err(|source| Error::OperatorKey {
            path: path.to_path_buf(),
            source,
        })?
        .ok_or_else(|| Error::NoOperatorKey(path.to_path_buf()))
}

/// An object that could not be read or decoded, reported beside what could be read (the
/// store's, shared with the other readers of small JSON objects).
pub use store::Problem;
