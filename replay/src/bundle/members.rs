//! Every member of a bundle but `rows.jsonl` is derived from the rows (and, for a sealed
//! session, its data key) by [`derive`]: the exporter writes what it returns, and the
//! verifier calls it again on the bundled rows and compares.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use integrity::{Checkpoint, PublicKey, TrustSet};
use schemas::chunk::seal::DataKey;
use schemas::{EventKind, RowKind, SessionEnd, SessionId, SessionStart};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::rows::{BundleRow, encode};
use super::{FORMAT_VERSION, names};
use crate::cmd::export::{self, View};

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

    fn view(&self) -> View<'_> {
        View {
            id: self.id,
            start: self.start.as_ref(),
            start_time_ns: self.start_time_ns,
            events: &self.events,
        }
    }
}

/// How the signing keys are named in `proof/keys.txt`: the host of the signed `start`.
fn signer_name(start: Option<&SessionStart>) -> String {
    start
        .map(|s| schemas::text::escape_controls(&s.host).replace(char::is_whitespace, "_"))
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".into())
}

/// The members, in the order of the archive: README first, then the manifest (which lists
/// every member but itself), then the rest.
pub fn derive(facts: &Facts<'_>, key: Option<&DataKey>) -> Vec<(&'static str, Vec<u8>)> {
    let mut listed: Vec<(&'static str, Vec<u8>)> = vec![
        (names::README, super::readme::readme(facts)),
        (names::SESSION, session_json(facts)),
    ];
    if facts.contents {
        let view = facts.view();
        listed.push((names::CAST, export::asciicast(&view, None)));
        listed.push((names::TRANSCRIPT, export::text(&view)));
    }
    listed.push((names::ROWS, encode(facts.rows)));
    if let (true, Some(key)) = (facts.sealed, key) {
        listed.push((
            names::DATA_KEY,
            format!("{}\n", B64.encode(key.as_bytes())).into_bytes(),
        ));
    }
    listed.push((names::CHECKPOINTS, checkpoints(facts.rows)));
    listed.push((names::KEYS, keys(facts)));
    listed.push((names::CHAIN, chain_json(facts)));
    let manifest = (names::MANIFEST, manifest(&listed));
    listed.insert(1, manifest);
    listed
}

/// `sha256sum` lines (`HEX  NAME`) for `members`, in order.
pub fn manifest(members: &[(&'static str, Vec<u8>)]) -> Vec<u8> {
    members
        .iter()
        .map(|(name, data)| format!("{}  {name}\n", sha256_hex(data)))
        .collect::<String>()
        .into_bytes()
}

/// SHA-256 in lowercase hex.
pub fn sha256_hex(data: &[u8]) -> String {
    integrity::chain::hex(&Sha256::digest(data))
}

/// `proof/checkpoints.jsonl`: `{"seq":N,"checkpoint":…}` per checkpoint row, the
/// checkpoint's JSON as stored (or `checkpoint_base64` when it is not one line of JSON).
fn checkpoints(rows: &[BundleRow]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in rows
        .iter()
        .filter(|r| r.kind == RowKind::Event(EventKind::Checkpoint))
    {
        let verbatim = !r.data.contains(&b'\n')
            && serde_json::from_slice::<serde::de::IgnoredAny>(&r.data).is_ok();
        if verbatim {
            out.extend(format!("{{\"seq\":{},\"checkpoint\":", r.seq).into_bytes());
            out.extend(&r.data);
            out.extend(b"}\n");
        } else {
            out.extend(
                format!(
                    "{{\"seq\":{},\"checkpoint_base64\":\"{}\"}}\n",
                    r.seq,
                    B64.encode(&r.data)
                )
                .into_bytes(),
            );
        }
    }
    out
}

/// `proof/keys.txt`: the signing keys as trust-file lines, named by the signed host.
fn keys(facts: &Facts<'_>) -> Vec<u8> {
    let host = signer_name(facts.start.as_ref());
    let mut out = String::from(
        "# The keys that signed this session's checkpoints, as trust-file lines (ed25519:BASE64 host).\n# Trust them only after comparing them with the node's own key (`auditty-agent node-key` on it).\n",
    );
    for k in &facts.keys {
        out.push_str(&format!("{k} {host}\n"));
    }
    out.into_bytes()
}

#[derive(Serialize)]
struct LastCheckpoint {
    seq: u64,
    chain: String,
}

#[derive(Serialize)]
struct ChainJson {
    session: String,
    algorithm: &'static str,
    rows: usize,
    last_seq: u64,
    head: String,
    last_checkpoint: Option<LastCheckpoint>,
}

/// `proof/chain.json`: the chain head after every row, and what the last checkpoint
/// signed.
fn chain_json(facts: &Facts<'_>) -> Vec<u8> {
    let last_checkpoint = facts
        .rows
        .iter()
        .rev()
        .filter(|r| r.kind == RowKind::Event(EventKind::Checkpoint))
        .find_map(|r| {
            let cp = Checkpoint::parse(&r.data).ok()?;
            Some(LastCheckpoint {
                seq: r.seq,
                chain: integrity::chain::hex(&cp.chain),
            })
        });
    pretty(&ChainJson {
        session: facts.id.to_string(),
        algorithm: "auditty-chain-v1: BLAKE3 over the rows in seq order (README.txt, integrity/FORMAT.md)",
        rows: facts.rows.len(),
        last_seq: facts.rows.last().map_or(0, |r| r.seq_last),
        head: integrity::chain::hex(&facts.head),
        last_checkpoint,
    })
}

#[derive(Serialize)]
struct SeqRange {
    seq: u64,
    seq_last: u64,
}

#[derive(Serialize)]
struct IntegrityJson {
    state: &'static str,
    problems: Vec<String>,
    checkpoints: usize,
    signing_keys: Vec<String>,
    chain_head: String,
}

#[derive(Serialize)]
struct SessionJson {
    bundle_format: u32,
    session: String,
    metadata_from: &'static str,
    user: Option<String>,
    uid: Option<u32>,
    host: Option<String>,
    remote_addr: Option<String>,
    command: Option<Vec<String>>,
    term: Option<String>,
    cols: Option<u16>,
    rows: Option<u16>,
    agent_version: Option<String>,
    start_time: String,
    start_time_ns: i64,
    ended: bool,
    end_time: Option<String>,
    duration_ns: u64,
    exit_status: Option<i32>,
    signal: Option<i32>,
    end_reason: Option<&'static str>,
    sealed: bool,
    sealed_for: Vec<String>,
    contents_included: bool,
    unopened_chunks: Vec<SeqRange>,
    stored_rows: usize,
    events: u64,
    integrity: IntegrityJson,
}

/// `session.json`: the metadata, from the signed `start` and `end` rows.
fn session_json(f: &Facts<'_>) -> Vec<u8> {
    let s = f.start.as_ref();
    let e = f.end.as_ref();
    pretty(&SessionJson {
        bundle_format: FORMAT_VERSION,
        session: f.id.to_string(),
        metadata_from: "the signed start and end rows in rows.jsonl",
        user: s.map(|s| s.user.clone()),
        uid: s.map(|s| s.uid),
        host: s.map(|s| s.host.clone()),
        remote_addr: s.and_then(|s| s.remote_addr.clone()),
        command: s.map(|s| s.command.clone()),
        term: s.and_then(|s| s.term.clone()),
        cols: s.map(|s| s.cols),
        rows: s.map(|s| s.rows),
        agent_version: s.map(|s| s.agent_version.clone()),
        start_time: rfc3339(f.start_time_ns),
        start_time_ns: f.start_time_ns,
        ended: e.is_some(),
        end_time: e.map(|_| rfc3339(f.start_time_ns.saturating_add_unsigned(f.duration_ns))),
        duration_ns: f.duration_ns,
        exit_status: e.and_then(|e| e.exit_status),
        signal: e.and_then(|e| e.signal),
        end_reason: e.map(|e| e.reason.as_str()),
        sealed: f.sealed,
        sealed_for: s
            .and_then(|s| s.envelope.as_ref())
            .map(|env| env.recipients.clone())
            .unwrap_or_default(),
        contents_included: f.contents,
        unopened_chunks: f
            .unopened
            .iter()
            .map(|u| SeqRange {
                seq: u.seq,
                seq_last: u.seq_last,
            })
            .collect(),
        stored_rows: f.rows.len(),
        events: f.rows.last().map_or(0, |r| r.seq_last.saturating_add(1)),
        integrity: IntegrityJson {
            state: f.report.state(),
            problems: f.report.problems.iter().map(ToString::to_string).collect(),
            checkpoints: f.checkpoints,
            signing_keys: f.keys.iter().map(ToString::to_string).collect(),
            chain_head: integrity::chain::hex(&f.head),
        },
    })
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

fn pretty<T: Serialize>(v: &T) -> Vec<u8> {
    // Plain structs of strings and numbers always serialize.
    let mut out = serde_json::to_vec_pretty(v).unwrap_or_default();
    out.push(b'\n');
    out
}
