//! What a bundle's rows say about the session ([`Facts`]), worked out once and read by
//! every derived member: the JSON proofs ([`super::members`]) and the README
//! ([`super::readme`]).

use integrity::{Checkpoint, PublicKey, TrustSet};
use schemas::chunk::seal::DataKey;
use schemas::{EventKind, RowKind, SessionEnd, SessionId, SessionStart};

use super::rows::BundleRow;
use crate::formats::View;

/// What the rows say about the session, once.
pub struct Facts<'a> {
    /// The session.
    pub id: SessionId,
    /// The rows.
    pub rows: &'a [BundleRow],
    /// Its signed `start`, if it parses.
    pub start: Option<SessionStart>,
    /// Its signed `end`, if it has one that parses.
    pub end: Option<SessionEnd>,
    /// End row's elapsed time, else the largest.
    pub duration_ns: u64,
    /// Wall-clock start: the id's timestamp (DESIGN.md §3), else the start's.
    pub start_time_ns: i64,
    /// Some rows are sealed chunks.
    pub sealed: bool,
    /// The asciicast and transcript are in the bundle: plaintext, or sealed with a key.
    pub contents: bool,
    /// Sealed chunks the key did not open.
    pub unopened: Vec<crate::open::Unopened>,
    /// The events (opened, with a key).
    pub events: Vec<schemas::Event>,
    /// The signing keys of the checkpoints that parse, in order of first appearance.
    pub keys: Vec<PublicKey>,
    /// Checkpoint rows.
    pub checkpoints: usize,
    /// The chain's verdict with [`Facts::keys`] taken as trusted: does the bundle hold
    /// together as signed, whoever signed it.
    pub report: integrity::Report,
    /// The chain hash after every row.
    pub head: integrity::Hash,
}

impl<'a> Facts<'a> {
    /// Reads the facts off `rows` (in seq order), opening sealed chunks with `key`.
    pub fn new(id: SessionId, rows: &'a [BundleRow], key: Option<&DataKey>) -> Facts<'a> {
        let row_of = |k: EventKind| rows.iter().find(|r| r.kind == RowKind::Event(k));
        let start = row_of(EventKind::Start).and_then(|r| SessionStart::from_bytes(&r.data).ok());
        let end_row = row_of(EventKind::End);
        let end = end_row.and_then(|r| SessionEnd::from_bytes(&r.data).ok());
        let sealed = rows.iter().any(|r| r.kind == RowKind::Sealed);
        let (events, unopened) = match key.filter(|_| sealed) {
            Some(key) => crate::open::open_rows(id, rows.iter().map(BundleRow::as_row), key),
            None => (
                rows.iter()
                    .filter_map(|r| {
                        Some(schemas::Event {
                            seq: r.seq,
                            elapsed_ns: r.elapsed_ns,
                            kind: r.kind.event()?,
                            data: r.data.clone(),
                        })
                    })
                    .collect(),
                Vec::new(),
            ),
        };
        let mut keys = Vec::new();
        let mut checkpoints = 0;
        for r in rows
            .iter()
            .filter(|r| r.kind == RowKind::Event(EventKind::Checkpoint))
        {
            checkpoints += 1;
            if let Ok(cp) = Checkpoint::parse(&r.data)
                && !keys.contains(&cp.key)
            {
                keys.push(cp.key);
            }
        }
        let host = signer_name(start.as_ref());
        let mut trust = TrustSet::default();
        for k in &keys {
            trust.insert(*k, &host);
        }
        let units: Vec<integrity::Unit> = rows.iter().map(BundleRow::unit).collect();
        let mut chain = integrity::Chain::new(id);
        for u in &units {
            chain.push(&u.hash);
        }
        let report = integrity::verify(id, units, &trust, integrity::Expectations::default());
        Facts {
            id,
            rows,
            duration_ns: end_row
                .or(rows.iter().max_by_key(|r| r.elapsed_ns))
                .map_or(0, |r| r.elapsed_ns),
            start_time_ns: id
                .start_time_ns()
                .or(start.as_ref().map(|s| s.start_time_ns))
                .unwrap_or(0),
            start,
            end,
            sealed,
            contents: !sealed || key.is_some(),
            unopened,
            events,
            keys,
            checkpoints,
            report,
            head: chain.hash(),
        }
    }

    pub(super) fn view(&self) -> View<'_> {
        View {
            id: self.id,
            start: self.start.as_ref(),
            start_time_ns: self.start_time_ns,
            events: &self.events,
        }
    }
}

/// How the signing keys are named in `proof/keys.txt`: the host of the signed `start`.
pub(super) fn signer_name(start: Option<&SessionStart>) -> String {
    start
        .map(|s| schemas::text::escape_controls(&s.host).replace(char::is_whitespace, "_"))
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".into())
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn rfc3339(ns: i64) -> String {
    let secs = schemas::time::rfc3339(ns);
    format!(
        "{}.{:03}Z",
        secs.trim_end_matches('Z'),
        ns.rem_euclid(1_000_000_000) / 1_000_000
    )
}
