//! Evidence bundles: one session in one file, for a recipient with no auditty tools but
//! `replay`, checked offline by `replay verify --bundle`.
//!
//! A bundle is an uncompressed ustar archive ([`tar`]) of a directory `auditty-<id>/`:
//!
//! | member | what |
//! |---|---|
//! | `README.txt` | what each member is and how to check it, by `replay` and by hand |
//! | `MANIFEST.sha256` | SHA-256 of every other member, `sha256sum -c` format |
//! | `session.json` | the metadata, from the signed `start`/`end` rows |
//! | `session.cast` | asciicast v2 (absent for a sealed session exported without a key) |
//! | `transcript.txt` | what the screen showed (likewise) |
//! | `rows.jsonl` | the stored rows, lossless ([`rows`]) |
//! | `data-key.txt` | a sealed session's data key, when the exporter opened it |
//! | `proof/checkpoints.jsonl` | the signed checkpoints |
//! | `proof/keys.txt` | the keys that signed them, as trust-file lines |
//! | `proof/chain.json` | the chain head after the last row |
//!
//! Only `rows.jsonl` (and a sealed session's key) is an input: [`members::derive`] makes
//! every other member from it, for [`build`] and again for [`check`], which compares
//! each member and the archive's own bytes with what it derives. So nothing in a bundle
//! is unauthenticated: the rows are covered by the signed chain, everything else must
//! equal what they give. The cost: the derivation (asciicast encoder, terminal emulator,
//! wording) is part of the format, pinned by [`FORMAT_VERSION`].
//!
//! Reading is bounded ([`MAX_BUNDLE_BYTES`], [`tar::MAX_ENTRIES`]) and never panics.

pub mod check;
pub mod facts;
pub mod members;
pub mod readme;
pub mod rows;
pub mod tar;

use anyhow::Context;
use schemas::SessionId;
use schemas::chunk::seal::DataKey;
use store::ObjectStore;

pub use check::{Finding, KeyTrust, Trust, Verdict, check};
pub use rows::BundleRow;

/// The layout version of bundles written by this build.
pub const FORMAT_VERSION: u32 = 1;

/// The largest bundle `replay verify --bundle` reads (it holds it in memory).
pub const MAX_BUNDLE_BYTES: u64 = 4 << 30;

/// Member names, relative to the bundle's directory.
pub mod names {
    /// The README.
    pub const README: &str = "README.txt";
    /// The manifest.
    pub const MANIFEST: &str = "MANIFEST.sha256";
    /// The metadata.
    pub const SESSION: &str = "session.json";
    /// asciicast v2.
    pub const CAST: &str = "session.cast";
    /// The transcript.
    pub const TRANSCRIPT: &str = "transcript.txt";
    /// The stored rows.
    pub const ROWS: &str = "rows.jsonl";
    /// A sealed session's data key.
    pub const DATA_KEY: &str = "data-key.txt";
    /// The checkpoints.
    pub const CHECKPOINTS: &str = "proof/checkpoints.jsonl";
    /// The signing keys.
    pub const KEYS: &str = "proof/keys.txt";
    /// The chain head.
    pub const CHAIN: &str = "proof/chain.json";
}

/// Why a bundle could not be written or read at all (as opposed to what a check finds:
/// [`Finding`]s).
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// The session has no rows to bundle.
    #[error("session {0} has no stored rows to bundle")]
    NoRows(SessionId),
    /// The file is larger than a bundle may be.
    #[error("{path} is {size} bytes, more than the {limit} a bundle may hold")]
    TooLarge {
        /// The file.
        path: String,
        /// Its size.
        size: u64,
        /// [`MAX_BUNDLE_BYTES`].
        limit: u64,
    },
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// The directory all members of the bundle of `id` live in.
pub fn directory(id: SessionId) -> String {
    format!("auditty-{id}/")
}

/// The modification time of every member: the session's start, in seconds.
fn mtime(id: SessionId) -> u64 {
    id.start_time_ns().map_or(0, |ns| {
        u64::try_from(ns.div_euclid(1_000_000_000)).unwrap_or(0)
    })
}

/// The bundle of session `id` from its stored `rows` (in seq order, one per seq), with
/// `key` (a sealed session's data key) to include its contents.
pub fn build(
    id: SessionId,
    rows: &[BundleRow],
    key: Option<&DataKey>,
) -> Result<Vec<u8>, BundleError> {
    if rows.is_empty() {
        return Err(BundleError::NoRows(id));
    }
    let facts = facts::Facts::new(id, rows, key);
    let members = members::derive(&facts, key);
    let dir = directory(id);
    let entries: Vec<(String, &[u8])> = members
        .iter()
        .map(|(name, data)| (format!("{dir}{name}"), data.as_slice()))
        .collect();
    Ok(tar::write(&entries, mtime(id)).0)
}

/// `replay export --format bundle`: the bundle of the session `query` names. A sealed
/// session is opened with `keys` when any are given (and must open); without keys its
/// bundle holds the sealed rows and their proof, and no contents.
pub fn export(
    store: &dyn ObjectStore,
    query: &str,
    keys: &envelope::IdentityArgs,
) -> anyhow::Result<Vec<u8>> {
    let opened = crate::open::find(store, query, |_| {})?;
    let id = opened.info.id;
    let rows: Vec<BundleRow> = opened.rows.iter().map(BundleRow::from).collect();
    let key = if opened.info.sealed && (!keys.identities.is_empty() || keys.kms) {
        Some(crate::open::session_key(&opened.info, keys)?)
    } else {
        if opened.info.sealed {
            eprintln!(
                "replay: session {id} is sealed and no --identity (or --kms) was given: the bundle holds its sealed rows and their proof, without asciicast or transcript"
            );
        }
        None
    };
    let facts = facts::Facts::new(id, &rows, key.as_ref());
    if !facts.report.is_complete() {
        eprintln!(
            "replay: session {id} does not verify as signed ({}); the bundle holds it as stored, and `replay verify --bundle` will say so",
            crate::verdict::describe(&facts.report)
        );
    }
    for u in &facts.unopened {
        eprintln!(
            "replay: session {id}: the sealed chunk at seq {}..{} does not open ({}); the bundle's contents leave it out",
            u.seq, u.seq_last, u.reason
        );
    }
    build(id, &rows, key.as_ref()).with_context(|| format!("cannot bundle session {id}"))
}

/// Reads a bundle file, refusing one larger than [`MAX_BUNDLE_BYTES`].
pub fn read_file(path: &std::path::Path) -> Result<Vec<u8>, BundleError> {
    use std::io::Read;
    let io = |source| BundleError::Io {
        path: path.display().to_string(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    file.take(MAX_BUNDLE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    if size > MAX_BUNDLE_BYTES {
        return Err(BundleError::TooLarge {
            path: path.display().to_string(),
            size: std::fs::metadata(path).map_or(size, |m| m.len()),
            limit: MAX_BUNDLE_BYTES,
        });
    }
    Ok(bytes)
}
