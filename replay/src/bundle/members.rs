//! Every member of a bundle but `rows.jsonl` is derived from the rows (and, for a sealed
//! session, its data key) by [`derive`]: the exporter writes what it returns, and the
//! verifier calls it again on the bundled rows and compares.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use integrity::Checkpoint;
use schemas::chunk::seal::DataKey;
use schemas::{EventKind, RowKind};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::facts::{Facts, rfc3339, signer_name};
use super::rows::{BundleRow, encode};
use super::{FORMAT_VERSION, names};
use crate::formats;

/// The members, in the order of the archive: README first, then the manifest (which lists
/// every member but itself), then the rest.
pub fn derive(facts: &Facts<'_>, key: Option<&DataKey>) -> Vec<(&'static str, Vec<u8>)> {
    let mut listed: Vec<(&'static str, Vec<u8>)> = vec![
        (names::README, super::readme::readme(facts)),
        (names::SESSION, session_json(facts)),
    ];
    if facts.contents {
        let view = facts.view();
        listed.push((names::CAST, formats::asciicast(&view, None)));
        listed.push((names::TRANSCRIPT, formats::text(&view)));
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

fn pretty<T: Serialize>(v: &T) -> Vec<u8> {
    // Plain structs of strings and numbers always serialize.
    let mut out = serde_json::to_vec_pretty(v).unwrap_or_default();
    out.push(b'\n');
    out
}
