//! Why a file could not be imported.

/// Why a file could not be imported: where (a line, a byte offset, a part of a
/// multi-file recording) and what was wrong there.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A text format was malformed at this line.
    #[error("line {line}: {message}")]
    Line {
        /// 1-based line number (blank lines count).
        line: usize,
        /// What is wrong there.
        message: String,
    },
    /// A binary format (or a byte count) was wrong at this offset.
    #[error("byte offset {offset}: {message}")]
    Offset {
        /// 0-based byte offset into the file.
        offset: u64,
        /// What is wrong there.
        message: String,
    },
    /// A problem in one file of a multi-file recording (a sudo I/O log directory, a
    /// script timing file and its typescript).
    #[error("{part}: {source}")]
    Part {
        /// The file, as named in the recording (`timing`, `ttyout`, the typescript's path).
        part: String,
        /// What is wrong in it.
        #[source]
        source: Box<ImportError>,
    },
    /// The content is none of the formats we import.
    #[error("{0}")]
    Unrecognized(String),
    /// Reading failed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl ImportError {
    /// An error at 1-based `line`.
    pub fn line(line: usize, message: impl Into<String>) -> ImportError {
        ImportError::Line {
            line,
            message: message.into(),
        }
    }

    /// An error at byte `offset`.
    pub fn offset(offset: u64, message: impl Into<String>) -> ImportError {
        ImportError::Offset {
            offset,
            message: message.into(),
        }
    }

    /// This error, inside the named part of a multi-file recording.
    pub fn in_part(self, part: impl Into<String>) -> ImportError {
        ImportError::Part {
            part: part.into(),
            source: Box::new(self),
        }
    }

    /// A read error on `path`.
    pub fn io(path: &std::path::Path, source: std::io::Error) -> ImportError {
        ImportError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}
