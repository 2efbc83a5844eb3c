//! Failpoints for fault tests, as tantivy and Vector use them: `AUDITTY_FAILPOINT=NAME`
//! (or `NAME@N`, the N-th time the point is reached) kills the process with SIGKILL at
//! that point, so a test can crash it exactly where a crash is hardest to survive instead
//! of at a random moment. Unset, a point costs one comparison.
//!
//! Points: `after-write-before-commit` (every object of a batch is durable, its position
//! not yet committed) in both sources; in `compact`, the steps of a merge
//! (`store::compact::step`: `compact-after-manifest`, `compact-after-output`,
//! `compact-after-delete` (after each deleted input), `compact-before-manifest-delete`).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The environment variable naming the point.
pub const ENV: &str = "AUDITTY_FAILPOINT";

/// The point a batch reaches once its objects are durable and before its position is
/// committed.
pub const AFTER_WRITE_BEFORE_COMMIT: &str = "after-write-before-commit";

struct Armed {
    name: String,
    at: u64,
    seen: AtomicU64,
}

fn armed() -> Option<&'static Armed> {
    static ARMED: OnceLock<Option<Armed>> = OnceLock::new();
    ARMED
        .get_or_init(|| {
            let spec = std::env::var(ENV).ok().filter(|s| !s.is_empty())?;
            let (name, at) = match spec.split_once('@') {
                Some((name, n)) => (name.to_string(), n.parse().unwrap_or(1)),
                None => (spec, 1),
            };
            Some(Armed {
                name,
                at,
                seen: AtomicU64::new(0),
            })
        })
        .as_ref()
}

/// Dies here with SIGKILL if [`ENV`] names this point (and this is the N-th time).
pub fn hit(name: &str) {
    let Some(a) = armed().filter(|a| a.name == name) else {
        return;
    };
    if a.seen.fetch_add(1, Ordering::SeqCst) + 1 == a.at {
        eprintln!("auditty-ingest: failpoint {name}: killing the process");
        // SAFETY: raising a signal at ourselves.
        unsafe { libc::raise(libc::SIGKILL) };
        std::process::abort();
    }
}
