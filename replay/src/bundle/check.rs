//! `replay verify --bundle`: is a bundle what `replay export` wrote, signed by a trusted
//! key? Reads nothing but the bundle's bytes (and the caller's trust file).
//!
//! The order of the checks decides whom a difference is blamed on:
//! 1. the archive must read ([`super::tar::read`]): damage to a header, to padding or to
//!    the end of the archive is named with the member beside it;
//! 2. every member must be one a bundle holds, once, inside `auditty-<id>/`;
//! 3. `rows.jsonl` must read back canonically and its chain must verify with the keys its
//!    checkpoints name: otherwise the rows are to blame, and the other members are held
//!    only to their manifest digests (they were derived from other rows);
//! 4. with the rows intact, every other member must equal what [`super::members::derive`]
//!    makes of them, the manifest included: each one that differs is to blame;
//! 5. the archive must be byte for byte what [`super::tar::write`] makes of the members;
//! 6. each signing key is looked up in the caller's trust file.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use integrity::{PublicKey, TrustSet};
use schemas::SessionId;
use schemas::chunk::seal::DataKey;

use super::facts::Facts;
use super::members::{derive, sha256_hex};
use super::rows::decode;
use super::{directory, names, tar};

/// One thing wrong with a bundle, and the member it is in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The member (its name inside the bundle's directory), or `the archive`.
    pub member: String,
    /// What is wrong.
    pub problem: String,
}

/// Whether the caller trusts a signing key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trust {
    /// In the trust file, with this comment.
    Trusted(String),
    /// Not in the trust file.
    Untrusted,
    /// There is no trust file to look in.
    NoTrustFile,
}

/// A key that signed the bundled rows, and whether the caller trusts it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyTrust {
    /// The key.
    pub key: PublicKey,
    /// Its standing.
    pub trust: Trust,
}

/// The outcome of [`check`].
#[derive(Clone, Debug, Default)]
pub struct Verdict {
    /// The session, when the bundle names one.
    pub session: Option<SessionId>,
    /// Everything found wrong; empty = the bundle is what `replay export` wrote.
    pub findings: Vec<Finding>,
    /// The chain's verdict, with the keys the checkpoints name.
    pub report: Option<integrity::Report>,
    /// The keys that signed the rows, and the caller's trust in each.
    pub keys: Vec<KeyTrust>,
    /// Members read.
    pub members: usize,
    /// The session was sealed.
    pub sealed: bool,
    /// The bundle holds its contents (asciicast, transcript).
    pub contents: bool,
}

impl Verdict {
    /// Nothing was changed.
    pub fn intact(&self) -> bool {
        self.findings.is_empty() && self.report.is_some()
    }

    /// Signed, and every signing key is in the trust file.
    pub fn trusted(&self) -> bool {
        !self.keys.is_empty()
            && self
                .keys
                .iter()
                .all(|k| matches!(k.trust, Trust::Trusted(_)))
    }

    /// Intact and trusted: exit status 0.
    pub fn ok(&self) -> bool {
        self.intact() && self.trusted()
    }

    /// The members named by findings, once each, in order.
    pub fn blamed(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for f in &self.findings {
            if !out.contains(&f.member.as_str()) {
                out.push(&f.member);
            }
        }
        out
    }

    fn find(&mut self, member: &str, problem: impl Into<String>) {
        self.findings.push(Finding {
            member: member.to_string(),
            problem: problem.into(),
        });
    }
}

/// The name of a member inside the bundle's directory (`auditty-<id>/NAME` → `NAME`).
fn short(path: &str) -> &str {
    match path.split_once('/') {
        Some((dir, rest)) if dir.starts_with("auditty-") => rest,
        _ => path,
    }
}

/// Members a bundle may hold, in the order of the archive.
const ORDER: [&str; 10] = [
    names::README,
    names::MANIFEST,
    names::SESSION,
    names::CAST,
    names::TRANSCRIPT,
    names::ROWS,
    names::DATA_KEY,
    names::CHECKPOINTS,
    names::KEYS,
    names::CHAIN,
];

/// Checks a bundle's bytes; `trust` is the caller's trust file, if there is one.
pub fn check(bytes: &[u8], trust: Option<&TrustSet>) -> Verdict {
    let mut v = Verdict::default();
    let entries = match tar::read(bytes) {
        Ok(e) => e,
        Err(e) => {
            let member = e.member.as_deref().map_or("the archive", short).to_string();
            v.find(
                &member,
                format!("the archive is damaged at byte {}: {}", e.offset, e.reason),
            );
            return v;
        }
    };
    v.members = entries.len();
    let Some((id, members)) = sort_members(&entries, &mut v) else {
        return v;
    };
    v.session = Some(id);
    let Some(rows_bytes) = members.get(names::ROWS).copied() else {
        v.find(names::ROWS, "missing: the bundle holds no rows");
        return v;
    };
    let key = data_key(&members, &mut v);
    let rows = match decode(rows_bytes) {
        Ok(rows) => rows,
        Err(e) => {
            v.find(names::ROWS, format!("does not read: {e}"));
            held_to_manifest(&members, &mut v);
            return v;
        }
    };
    let facts = Facts::new(id, &rows, key.as_ref());
    v.sealed = facts.sealed;
    v.contents = facts.contents;
    v.report = Some(facts.report.clone());
    v.keys = facts
        .keys
        .iter()
        .map(|k| KeyTrust {
            key: *k,
            trust: match trust {
                None => Trust::NoTrustFile,
                Some(t) => t
                    .get(k)
                    .map_or(Trust::Untrusted, |c| Trust::Trusted(c.to_string())),
            },
        })
        .collect();
    let key_opens = key_opens_something(&facts, key.as_ref(), &mut v);
    compare_derived(&facts, key.as_ref(), key_opens, &members, &mut v);
    if v.findings.is_empty() {
        compare_archive(id, &entries, bytes, &mut v);
    }
    v
}

/// The members by their name in the bundle's directory, and the session id that
/// directory names; each member outside it, unknown or repeated is a finding.
fn sort_members<'a>(
    entries: &[tar::Entry<'a>],
    v: &mut Verdict,
) -> Option<(SessionId, BTreeMap<&'static str, &'a [u8]>)> {
    let first = &entries.first()?.name;
    let id = first
        .strip_prefix("auditty-")
        .and_then(|rest| rest.split_once('/'))
        .and_then(|(id, _)| id.parse::<SessionId>().ok());
    let Some(id) = id else {
        v.find(
            &schemas::text::escape_controls(first),
            "is not inside a directory auditty-<session id>/, as every member of a bundle is",
        );
        return None;
    };
    let dir = directory(id);
    let mut members = BTreeMap::new();
    for e in entries {
        let shown = schemas::text::escape_controls(&e.name);
        let Some(name) = e.name.strip_prefix(&dir) else {
            v.find(&shown, format!("lies outside the bundle's directory {dir}"));
            continue;
        };
        let Some(known) = ORDER.iter().find(|n| **n == name) else {
            v.find(short(&shown), "unknown member: no bundle holds it");
            continue;
        };
        if members.insert(*known, e.data).is_some() {
            v.find(known, "the archive holds it twice");
        }
    }
    Some((id, members))
}

/// A sealed session's data key, if the bundle holds one.
fn data_key(members: &BTreeMap<&'static str, &[u8]>, v: &mut Verdict) -> Option<DataKey> {
    let bytes = members.get(names::DATA_KEY)?;
    let key = std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.strip_suffix('\n'))
        .and_then(|s| B64.decode(s).ok())
        .and_then(|b| DataKey::from_slice(&b));
    if key.is_none() {
        v.find(
            names::DATA_KEY,
            "is not a data key (one line of base64 of 32 bytes)",
        );
    }
    key
}

/// Whether `key` opens at least one of the sealed chunks, when there are any: a key that
/// opens none is not this session's (a finding).
fn key_opens_something(facts: &Facts<'_>, key: Option<&DataKey>, v: &mut Verdict) -> bool {
    let sealed = facts
        .rows
        .iter()
        .filter(|r| r.kind == schemas::RowKind::Sealed)
        .count();
    if key.is_none() || sealed == 0 || facts.unopened.len() < sealed {
        return true;
    }
    v.find(
        names::DATA_KEY,
        format!("opens none of the session's {sealed} sealed chunks: it is not this session's key"),
    );
    false
}

/// Members that cannot be derived (the rows are not intact) are held to the manifest
/// alone.
fn held_to_manifest(members: &BTreeMap<&'static str, &[u8]>, v: &mut Verdict) {
    let Some(manifest) = members.get(names::MANIFEST) else {
        v.find(names::MANIFEST, "missing");
        return;
    };
    let listed = parse_manifest(manifest, v);
    for (name, data) in members {
        if *name == names::MANIFEST || *name == names::ROWS || v.blamed().contains(name) {
            continue;
        }
        match listed.get(*name) {
            None => v.find(name, "is not listed in the manifest"),
            Some(digest) if *digest != sha256_hex(data) => {
                v.find(name, "does not match its SHA-256 in the manifest")
            }
            Some(_) => {}
        }
    }
}

/// The manifest's lines, `HEX  NAME`; a line of another shape is a finding.
fn parse_manifest(bytes: &[u8], v: &mut Verdict) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let text = String::from_utf8_lossy(bytes);
    for (i, line) in text.lines().enumerate() {
        match line.split_once("  ") {
            Some((hex, name)) if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
                out.insert(name.to_string(), hex.to_ascii_lowercase());
            }
            _ => v.find(
                names::MANIFEST,
                format!("line {} is not `SHA256  NAME`", i + 1),
            ),
        }
    }
    out
}

/// Steps 3 and 4 of the module's list: the rows' own verdict, then every derived member
/// against what the rows give.
fn compare_derived(
    facts: &Facts<'_>,
    key: Option<&DataKey>,
    key_opens: bool,
    members: &BTreeMap<&'static str, &[u8]>,
    v: &mut Verdict,
) {
    let expected = derive(facts, key);
    let differing: Vec<&'static str> = expected
        .iter()
        .filter(|(name, data)| {
            *name != names::ROWS && members.get(name).is_some_and(|b| *b != data.as_slice())
        })
        .map(|(name, _)| *name)
        .collect();
    for (name, _) in &expected {
        if !members.contains_key(name) {
            v.find(name, "missing");
        }
    }
    for name in members.keys() {
        if !expected.iter().any(|(n, _)| n == name) {
            v.find(name, unexpected(name, facts));
        }
    }
    if !facts.report.is_complete() {
        let as_bundled = if differing.is_empty() {
            " (the other members agree with these rows as they are)".to_string()
        } else {
            String::new()
        };
        v.find(
            names::ROWS,
            format!(
                "the rows do not verify as signed: {}{as_bundled}",
                crate::verdict::describe(&facts.report)
            ),
        );
        held_to_manifest(members, v);
        return;
    }
    // With a key that opens nothing, what depends on the contents is held to the
    // manifest instead.
    let contents_members = [
        names::CAST,
        names::TRANSCRIPT,
        names::SESSION,
        names::README,
        names::MANIFEST,
    ];
    if !key_opens {
        held_to_manifest(members, v);
    }
    for (name, data) in &expected {
        if !differing.contains(name) || (!key_opens && contents_members.contains(name)) {
            continue;
        }
        let bundled = members.get(name).copied().unwrap_or_default();
        let what = if *name == names::MANIFEST {
            "differs from the digests of the members it lists"
        } else {
            "differs from what the rows give"
        };
        v.find(
            name,
            format!("{what} ({})", first_difference(bundled, data)),
        );
    }
}

fn unexpected(name: &str, facts: &Facts<'_>) -> String {
    match name {
        names::DATA_KEY if !facts.sealed => {
            "should not be here: the session is not sealed".to_string()
        }
        names::CAST | names::TRANSCRIPT => format!(
            "should not be here: the session is sealed and the bundle holds no {}",
            names::DATA_KEY
        ),
        _ => "should not be here".to_string(),
    }
}

/// Where two byte strings first differ, as `line L, byte B` (both 1-based).
fn first_difference(bundled: &[u8], expected: &[u8]) -> String {
    let at = bundled
        .iter()
        .zip(expected)
        .position(|(a, b)| a != b)
        .unwrap_or(bundled.len().min(expected.len()));
    let line = bundled[..at].iter().filter(|&&b| b == b'\n').count() + 1;
    if at == bundled.len() && at < expected.len() {
        format!("it ends early, at line {line}, byte {}", at + 1)
    } else if at == expected.len() && at < bundled.len() {
        format!("it runs on past the end, at line {line}, byte {}", at + 1)
    } else {
        format!("first difference at line {line}, byte {}", at + 1)
    }
}

/// Step 5: the archive is exactly what `tar::write` makes of its members.
fn compare_archive(id: SessionId, entries: &[tar::Entry<'_>], bytes: &[u8], v: &mut Verdict) {
    let dir = directory(id);
    let in_order: Vec<(String, &[u8])> = ORDER
        .iter()
        .filter_map(|name| {
            let path = format!("{dir}{name}");
            let e = entries.iter().find(|e| e.name == path)?;
            Some((path, e.data))
        })
        .collect();
    let read_order: Vec<&str> = entries.iter().map(|e| short(&e.name)).collect();
    let write_order: Vec<&str> = in_order.iter().map(|(n, _)| short(n)).collect();
    if read_order != write_order {
        v.find(
            "the archive",
            format!(
                "its members are not in the order replay writes them ({})",
                write_order.join(", ")
            ),
        );
        return;
    }
    let (written, layout) = tar::write(&in_order, super::mtime(id));
    if written == bytes {
        return;
    }
    let at = written
        .iter()
        .zip(bytes)
        .position(|(a, b)| a != b)
        .unwrap_or(written.len().min(bytes.len()));
    let region = layout.place(at);
    let member = match &region {
        tar::Region::Header(m) | tar::Region::Data(m) | tar::Region::Padding(m) => short(m),
        tar::Region::End | tar::Region::Trailing => "the archive",
    };
    v.find(
        member,
        format!("{region} differs from what replay writes, at byte {at}"),
    );
}

#[cfg(test)]
mod tests;
