//! One module per subcommand.

pub mod access_log;
pub mod commands;
pub mod export;
pub mod hold;
pub mod import;
pub mod index;
pub mod ls;
pub mod play;
pub mod purge;
pub mod report;
pub mod review;
pub mod reviews;
pub mod search;
pub mod serve;
pub mod verify;

/// Outcomes that are not errors of the tool but still mean "no": exit status 1.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The session asked for is not in the store (or the prefix is ambiguous).
    #[error("{0}")]
    NotFound(String),
    /// Some session did not verify as complete.
    #[error("{0}")]
    NotVerified(String),
}
