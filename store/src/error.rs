//! The one error type of the store.

/// What can go wrong reading or writing the store.
///
/// Each message says what happened and, where the user can act, what to do.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An I/O call on the store's files failed.
    #[error(
        "cannot {op} {key_or_path}: {source} (check that the store exists, is readable and \
         writable by this user, and that its disk is not full)"
    )]
    Io {
        /// The object key or filesystem path concerned.
        key_or_path: String,
        /// What was being done, e.g. "write", "rename", "list".
        op: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// The object does not exist.
    #[error(
        "object {key} is not in the store (it may have been deleted since it was listed, or \
         --store points at the wrong place)"
    )]
    NotFound {
        /// The key asked for.
        key: String,
    },
    /// A request to a remote store (S3) failed for good.
    #[error("cannot {op} {key}: {message} ({hint})")]
    Remote {
        /// What was being done, e.g. "read", "write", "list".
        op: &'static str,
        /// The object (or store) concerned, as a URL.
        key: String,
        /// What the server or the client library said.
        message: String,
        /// What the user can do about it.
        hint: String,
    },
    /// A put found a different object under its (deterministic) name. Never overwritten:
    /// two writers disagree about what a batch holds, which needs a human.
    #[error(
        "refusing to overwrite {key}: it already holds a different object ({existing} bytes, \
         this write has {new}); two ingesters may be writing the same source and partition \
         into this store, or the store holds data of another installation"
    )]
    Conflict {
        /// The object, as a URL.
        key: String,
        /// Size of the object in the store.
        existing: u64,
        /// Size of the rejected write.
        new: u64,
    },
    /// A feature this build does not have yet.
    #[error("{0}")]
    Unsupported(String),
    /// `--store` could not be understood.
    #[error("bad store URL '{url}': {reason}")]
    BadUrl {
        /// The text given.
        url: String,
        /// What is wrong with it and what to write instead.
        reason: String,
    },
    /// A Parquet object could not be read: corrupt, truncated or not written by auditty.
    #[error(
        "cannot read Parquet object {key}: {message} (the object is damaged or was not written \
         by auditty; move it out of the store or restore it from a backup)"
    )]
    Parquet {
        /// The object's key.
        key: String,
        /// What the reader found wrong.
        message: String,
    },
    /// Building Arrow or Parquet data failed while writing; a bug in auditty, not in the data.
    #[error("cannot build Parquet data: {0} (this is a bug in auditty; please report it)")]
    Arrow(String),
    /// An object key that could escape the store or does not name a file.
    #[error(
        "invalid object key '{0}': keys are relative '/'-separated paths whose parts are not \
         empty, '.', '..', and do not start with '.'"
    )]
    InvalidKey(String),
}

impl StoreError {
    pub(crate) fn io(
        key_or_path: impl Into<String>,
        op: &'static str,
        source: std::io::Error,
    ) -> Self {
        StoreError::Io {
            key_or_path: key_or_path.into(),
            op,
            source,
        }
    }

    pub(crate) fn parquet(key: &str, message: impl std::fmt::Display) -> Self {
        StoreError::Parquet {
            key: key.to_string(),
            message: message.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parquet_errors_name_the_key() {
        let msg = StoreError::parquet("events/date=2026-11-27/x.parquet", "bad footer").to_string();
        assert!(msg.contains("events/date=2026-11-27/x.parquet"), "{msg}");
        assert!(msg.contains("bad footer"), "{msg}");
    }
}
