//! Object names of the store (DESIGN.md §4).
//!
//! ```text
//! events/date=YYYY-MM-DD/<source>-<partition>-<first offset, 20 digits>.parquet
//! sessions/date=YYYY-MM-DD/<same stem>.parquet
//! dead-letter/date=YYYY-MM-DD/<same stem>.<ext>
//! reviews/date=YYYY-MM-DD/<time ns, 20 digits>-<digest, 16 hex>.json
//! access/date=YYYY-MM-DD/<time ns, 20 digits>-<digest, 16 hex>.json
//! events/date=YYYY-MM-DD/compacted-<32 hex>.parquet          (auditty-ingest compact)
//! compaction/date=YYYY-MM-DD/<output stem>.txt                (a merge in progress)
//! holds/<session id>.json                                     (replay hold)
//! tombstones/<session id>.json                                (replay purge, retention)
//! ```
//!
//! `reviews/` and `access/` hold one small JSON object per review and per access event
//! (the `review` crate writes and reads them; `schemas/reviews-and-access.md`). Nothing
//! that reads sessions lists them: readers list `events/`, `sessions/` and `ledger/` only.
//!
//! The ingester's names derive only from (source, partition, first offset) so that
//! re-processing the same offsets after a crash rewrites the same objects instead of
//! adding duplicates. Compaction's `compacted-` names can never be one of those, and its
//! manifests under `compaction/` make a killed merge finish on the next run
//! ([`crate::compact`]).

/// Top-level folder of the `events` table.
pub const EVENTS: &str = "events";
/// Top-level folder of the `sessions` table.
pub const SESSIONS: &str = "sessions";
/// Top-level folder of the nodes' signed ledger heads (JSON Lines, one head per line).
pub const LEDGER: &str = "ledger";
/// Top-level folder of records that could not be decoded, kept as received.
pub const DEAD_LETTER: &str = "dead-letter";
/// Top-level folder of review decisions (one JSON object each; the `review` crate).
pub const REVIEWS: &str = "reviews";
/// Top-level folder of the access log: one JSON object per `replay` read of recordings.
pub const ACCESS: &str = "access";
/// Top-level folder of legal holds: `holds/<session id>.json`, one per held session, which
/// neither retention nor `replay purge` may remove (the `lifecycle` crate).
pub const HOLDS: &str = "holds";
/// Top-level folder of tombstones: `tombstones/<session id>.json`, the signed record of a
/// purged session (who, when, why), so that `replay verify` reports it as purged rather
/// than missing (DESIGN.md §6; the `lifecycle` crate).
pub const TOMBSTONES: &str = "tombstones";

/// Suffix of the Parquet objects.
pub const PARQUET_EXT: &str = "parquet";

/// Digits of the zero-padded offset, so that names sort in offset order (u64::MAX has 20).
const OFFSET_DIGITS: usize = 20;

/// `<source>-<partition>-<first_offset as 20 digits>`.
///
/// `partition` may contain '-' and '.'. Characters that would break the key (anything but
/// ASCII letters, digits, '-', '.', '_' and '=') become '_', as does a leading '.', which
/// keys reserve for temp files. The mapping is a pure function of the inputs, so the name
/// still repeats after a restart.
pub fn object_stem(source: &str, partition: &str, first_offset: u64) -> String {
    format!(
        "{}-{}-{first_offset:0width$}",
        sanitize(source),
        sanitize(partition),
        width = OFFSET_DIGITS
    )
}

fn sanitize(part: &str) -> String {
    let mut out: String = part
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '=') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.starts_with('.') {
        out.replace_range(..1, "_");
    }
    if out.is_empty() {
        out.push('_');
    }
    out
}

/// The first offset written in a stem made by [`object_stem`].
pub fn stem_first_offset(stem: &str) -> Option<u64> {
    let (_, digits) = stem.rsplit_once('-')?;
    if digits.len() != OFFSET_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// `events/date=YYYY-MM-DD/<stem>.parquet`
pub fn events_key(date: &str, stem: &str) -> String {
    format!("{EVENTS}/date={date}/{stem}.{PARQUET_EXT}")
}

/// `sessions/date=YYYY-MM-DD/<stem>.parquet`
pub fn sessions_key(date: &str, stem: &str) -> String {
    format!("{SESSIONS}/date={date}/{stem}.{PARQUET_EXT}")
}

/// `ledger/date=YYYY-MM-DD/<stem>.jsonl`
pub fn ledger_key(date: &str, stem: &str) -> String {
    format!("{LEDGER}/date={date}/{stem}.jsonl")
}

/// `dead-letter/date=YYYY-MM-DD/<stem>.<ext>`
pub fn dead_letter_key(date: &str, stem: &str, ext: &str) -> String {
    format!("{DEAD_LETTER}/date={date}/{stem}.{ext}")
}

/// The date part of a key like `events/date=2026-11-27/...`, if it has one.
pub fn key_date(key: &str) -> Option<&str> {
    let mut parts = key.split('/');
    parts.next_back()?;
    parts
        .find_map(|part| part.strip_prefix("date="))
        .filter(|d| !d.is_empty())
}

/// The file name of a Parquet object's key without `.parquet`; `None` for other keys.
pub fn key_stem(key: &str) -> Option<&str> {
    let name = key.rsplit('/').next()?;
    name.strip_suffix(".parquet").filter(|s| !s.is_empty())
}

/// Whether a key names a Parquet object (readers skip anything else a user put there).
pub fn is_parquet(key: &str) -> bool {
    key_stem(key).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_design() {
        let stem = object_stem("kafka", "auditty.events-3", 42);
        assert_eq!(stem, "kafka-auditty.events-3-00000000000000000042");
        assert_eq!(
            events_key("2026-11-27", &stem),
            "events/date=2026-11-27/kafka-auditty.events-3-00000000000000000042.parquet"
        );
        assert_eq!(
            sessions_key("2026-11-27", &stem),
            "sessions/date=2026-11-27/kafka-auditty.events-3-00000000000000000042.parquet"
        );
        assert_eq!(
            dead_letter_key("2026-11-27", &stem, "bin"),
            "dead-letter/date=2026-11-27/kafka-auditty.events-3-00000000000000000042.bin"
        );
        assert_eq!(stem_first_offset(&stem), Some(42));
        assert_eq!(
            object_stem("spool", "p", u64::MAX),
            "spool-p-18446744073709551615"
        );
        assert_eq!(
            stem_first_offset("spool-p-18446744073709551615"),
            Some(u64::MAX)
        );
        assert_eq!(stem_first_offset("spool-p-42"), None);
    }

    #[test]
    fn stems_never_make_bad_keys() {
        let stem = object_stem(".hidden", "a/b\\c d", 1);
        assert_eq!(stem, "_hidden-a_b_c_d-00000000000000000001");
        crate::validate_key(&events_key("2026-11-27", &stem)).unwrap();
        crate::validate_key(&events_key("2026-11-27", &object_stem("", "", 0))).unwrap();
    }

    #[test]
    fn keys_split_back() {
        let key = "events/date=2026-11-27/kafka-t-0-00000000000000000007.parquet";
        assert_eq!(key_date(key), Some("2026-11-27"));
        assert_eq!(key_stem(key), Some("kafka-t-0-00000000000000000007"));
        assert!(is_parquet(key));
        assert_eq!(key_date("events/x.parquet"), None);
        assert_eq!(key_date("date=2026-11-27"), None);
        assert_eq!(key_stem("dead-letter/date=2026-11-27/x.bin"), None);
        assert_eq!(key_stem("events/date=2026-11-27/.parquet"), None);
    }
}
