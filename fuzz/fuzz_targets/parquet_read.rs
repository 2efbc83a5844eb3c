//! The store's Parquet readers on any bytes: `decode_events` (whole object and one
//! session, which reads statistics and bloom filters), `decode_sessions`, `scan_events`
//! and `read_object_meta` must return an error, never panic out of the call.
//!
//! The store runs the Parquet reader inside `catch_unwind` (`parquet_io::guarded`) and
//! turns its panics into errors, by design. libFuzzer's panic hook would abort the process
//! on such a caught panic, so this target replaces it with one that only remembers the
//! message; a panic that escapes a store call is printed and aborts, as a finding. Set
//! `AUDITTY_FUZZ_STRICT_PANICS=1` to keep libFuzzer's hook and so also see what the Parquet
//! crate panics on inside the guard.
#![no_main]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Mutex, Once};

use libfuzzer_sys::fuzz_target;
use store::parquet_io::{decode_events, decode_sessions, read_object_meta, scan_events};
use store::testsuite::sid;

const KEY: &str = "fuzz.parquet";

/// The last panic's message and place.
static LAST_PANIC: Mutex<String> = Mutex::new(String::new());

fn remember_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("AUDITTY_FUZZ_STRICT_PANICS").is_some_and(|v| v == "1") {
            return;
        }
        std::panic::set_hook(Box::new(|info| {
            // This target's own assertions are findings: say so at once.
            if info
                .location()
                .is_some_and(|l| l.file().ends_with("parquet_read.rs"))
            {
                eprintln!("{info}");
            }
            if let Ok(mut last) = LAST_PANIC.lock() {
                *last = info.to_string();
            }
        }));
    });
}

/// Runs one store call; a panic out of it is a finding.
fn call<T>(what: &str, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(_) => {
            let last = LAST_PANIC.lock().map(|s| s.clone()).unwrap_or_default();
            eprintln!("{what} panicked out of the store: {last}");
            std::process::abort();
        }
    }
}

fuzz_target!(|data: &[u8]| {
    remember_panics();
    let all = call("decode_events", || decode_events(KEY, data, None));
    // One session's rows are rows of that session only. (Not necessarily all of them:
    // damaged statistics or bloom filters may exclude a row group that holds some, and
    // nothing in Parquet can tell.)
    let ids: Vec<_> = match &all {
        Ok(rows) => rows.iter().map(|r| r.session_id).take(1).collect(),
        Err(_) => Vec::new(),
    };
    for id in ids.into_iter().chain([sid(1)]) {
        if let Ok(rows) = call("decode_events(id)", || decode_events(KEY, data, Some(id))) {
            assert!(
                rows.iter().all(|r| r.session_id == id),
                "rows of another session"
            );
        }
    }
    let mut n = 0usize;
    let scanned = call("scan_events", || scan_events(KEY, data, None, |_| n += 1));
    if let Ok(rows) = &all {
        assert!(scanned.is_ok());
        assert_eq!(n, rows.len());
    }
    let _ = call("decode_sessions", || decode_sessions(KEY, data));
    let _ = call("read_object_meta", || read_object_meta(KEY, data));
});
