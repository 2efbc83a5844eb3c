//! The JSON decoders of signed statements and recordings, on any bytes: never a panic.
//!
//! - `integrity::checkpoint::Checkpoint::parse`, then `check_signature` and
//!   `expected_tags` of what parses;
//! - `schemas::ledger::LedgerHead::from_record` / `from_json`, then
//!   `integrity::ledger::check_head` of what parses (and a parsed head survives its own
//!   JSON unchanged);
//! - `schemas::asciicast::parse_v2` on the bytes as text.
#![no_main]

use integrity::TrustSet;
use integrity::checkpoint::Checkpoint;
use libfuzzer_sys::fuzz_target;
use schemas::SessionId;
use schemas::ledger::LedgerHead;

fuzz_target!(|data: &[u8]| {
    if let Ok(cp) = Checkpoint::parse(data) {
        let _ = cp.check_signature(SessionId::new_v7_at(0));
        assert!(cp.expected_tags(&[]).is_empty());
        // Units enough for a few groups of any `g`, so grouping is exercised too.
        let units: Vec<[u8; 32]> = (0..=u8::try_from(data.len() % 200).unwrap_or(0))
            .map(|i| [i; 32])
            .collect();
        let tags = cp.expected_tags(&units);
        assert_eq!(tags.len(), units.len().div_ceil(cp.g as usize));
    }

    let trust = TrustSet::default();
    for head in [LedgerHead::from_record(data), LedgerHead::from_json(data)] {
        let Ok(head) = head else { continue };
        assert_eq!(
            LedgerHead::from_json(&head.to_json()).ok().as_ref(),
            Some(&head)
        );
        assert_eq!(
            LedgerHead::from_record(&head.to_record()).ok().as_ref(),
            Some(&head)
        );
        let _ = integrity::ledger::check_head(&head, &trust);
    }

    let _ = schemas::asciicast::parse_v2(&String::from_utf8_lossy(data));
});
