//! The error of a catalog lookup.

use store::StoreError;

/// Most candidates an [`CatalogError::AmbiguousSession`] message shows; more would bury
/// the hint.
const MAX_CANDIDATES_SHOWN: usize = 10;

/// Why a session named by the user could not be found.
///
/// Each message says what happened and, where the user can act, what to do.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// Reading the store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No session id starts with what the user typed.
    #[error("no session matches '{query}'; `replay ls` lists them")]
    SessionNotFound {
        /// What the user typed.
        query: String,
    },
    /// More than one session id starts with what the user typed.
    #[error("{}", ambiguous_message(query, candidates))]
    AmbiguousSession {
        /// What the user typed.
        query: String,
        /// Every matching id, hyphenated text form, sorted.
        candidates: Vec<String>,
    },
}

fn ambiguous_message(query: &str, candidates: &[String]) -> String {
    let mut shown = candidates
        .iter()
        .take(MAX_CANDIDATES_SHOWN)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if candidates.len() > MAX_CANDIDATES_SHOWN {
        shown.push_str(&format!(
            " and {} more",
            candidates.len() - MAX_CANDIDATES_SHOWN
        ));
    }
    format!(
        "'{query}' matches {} sessions: {shown}; type more characters of the id",
        candidates.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ambiguous_message_caps_the_list() {
        let candidates: Vec<String> = (0..12).map(|i| format!("id{i}")).collect();
        let msg = CatalogError::AmbiguousSession {
            query: "id".into(),
            candidates,
        }
        .to_string();
        assert!(msg.contains("matches 12 sessions"), "{msg}");
        assert!(msg.contains("id9"), "{msg}");
        assert!(!msg.contains("id10"), "{msg}");
        assert!(msg.contains("and 2 more"), "{msg}");
    }
}
