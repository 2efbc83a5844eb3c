//! Checking nodes' session ledgers (DESIGN.md §6): which sessions are missing from the
//! store although a signed `start` of another session names or numbers them.
//!
//! Each session's `start` carries its number in its node's sequence (`node_seq`) and the
//! session numbered one less (`prev_session`). Only sessions whose `start` verified under
//! a trusted key count, and a node is that key: whoever holds it numbers its sessions.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer, Verifier, VerifyingKey};
use schemas::SessionId;
use schemas::ledger::{HEAD_VERSION, LedgerHead};

use crate::keys::{NodeKey, PublicKey, TrustSet};

/// What a ledger head's signature covers: a domain string, the key, the number, the
/// session and the time, fixed-width.
fn head_message(key: &PublicKey, node_seq: u64, session: SessionId, time_ns: i64) -> Vec<u8> {
    let mut m = b"auditty-ledger-head-v1\0".to_vec();
    m.extend_from_slice(key.as_bytes());
    m.extend_from_slice(&node_seq.to_be_bytes());
    m.extend_from_slice(session.0.as_bytes());
    m.extend_from_slice(&time_ns.to_be_bytes());
    m
}

/// A head for `session`, number `node_seq` of `key`'s ledger, made at `time_ns`.
pub fn sign_head(key: &NodeKey, node_seq: u64, session: SessionId, time_ns: i64) -> LedgerHead {
    let public = key.public();
    let sig = key
        .signing_key()
        .sign(&head_message(&public, node_seq, session, time_ns));
    LedgerHead {
        v: HEAD_VERSION,
        key: public.to_string(),
        node_seq,
        session: session.to_string(),
        time_ns,
        sig: B64.encode(sig.to_bytes()),
    }
}

/// What a head says, once its signature checks out under a key `trust` holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedHead {
    /// The node, named as [`LedgerEntry::node`] names it.
    pub node: String,
    /// The newest number.
    pub node_seq: u64,
    /// The session it numbers.
    pub session: SessionId,
}

/// Why a head does not count.
#[derive(Debug, thiserror::Error)]
pub enum HeadError {
    /// A field does not parse.
    #[error("malformed ledger head: {0}")]
    Malformed(&'static str),
    /// The signature does not match.
    #[error("ledger head with a bad signature (key {0})")]
    BadSignature(String),
    /// Signed by a key the trust file does not hold: not evidence of anything.
    #[error("ledger head signed by {0}, which is not in the trust file")]
    Untrusted(String),
}

/// Checks a head's signature and that `trust` holds its key.
pub fn check_head(head: &LedgerHead, trust: &TrustSet) -> Result<VerifiedHead, HeadError> {
    let key: PublicKey = head.key.parse().map_err(|_| HeadError::Malformed("key"))?;
    let session: SessionId = head
        .session
        .parse()
        .map_err(|_| HeadError::Malformed("session"))?;
    let sig = B64
        .decode(&head.sig)
        .ok()
        .and_then(|b| <[u8; 64]>::try_from(b).ok())
        .ok_or(HeadError::Malformed("signature"))?;
    let vk = VerifyingKey::from_bytes(key.as_bytes()).map_err(|_| HeadError::Malformed("key"))?;
    vk.verify(
        &head_message(&key, head.node_seq, session, head.time_ns),
        &Signature::from_bytes(&sig),
    )
    .map_err(|_| HeadError::BadSignature(head.key.clone()))?;
    let name = trust
        .get(&key)
        .ok_or_else(|| HeadError::Untrusted(head.key.clone()))?;
    Ok(VerifiedHead {
        node: if name.is_empty() {
            key.to_string()
        } else {
            name.to_string()
        },
        node_seq: head.node_seq,
        session,
    })
}

/// One verified session's place in its node's ledger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerEntry {
    /// The session.
    pub session: SessionId,
    /// The node: the signer the trust file names (its comment, else its key).
    pub node: String,
    /// Its number, from 1.
    pub node_seq: u64,
    /// The session it names as numbered `node_seq - 1`.
    pub prev_session: Option<SessionId>,
}

/// Something a node's ledger says that the store contradicts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LedgerProblem {
    /// Sessions `from..=to` of `node` are not in the store: deleted, or not ingested yet.
    Missing {
        /// The node.
        node: String,
        /// First missing number.
        from: u64,
        /// Last missing number.
        to: u64,
        /// The id of number `to`, when the session after it names it.
        named: Option<SessionId>,
        /// The session after the gap.
        before: SessionId,
    },
    /// The newest sessions `from..=to` of `node`, which a signed ledger head numbers, are
    /// not in the store.
    MissingNewest {
        /// The node.
        node: String,
        /// First missing number.
        from: u64,
        /// Last missing number: the head's.
        to: u64,
        /// The id the head gives number `to`.
        named: SessionId,
    },
    /// Two sessions carry the same number: the ledger was reset or copied to another
    /// machine with the key.
    Duplicate {
        /// The node.
        node: String,
        /// The number.
        node_seq: u64,
        /// The sessions carrying it.
        sessions: Vec<SessionId>,
    },
    /// A session names a predecessor other than the session the store holds under that
    /// number.
    WrongPredecessor {
        /// The node.
        node: String,
        /// The session whose `start` names `named`.
        session: SessionId,
        /// What it names.
        named: Option<SessionId>,
        /// What the store holds under the number before it.
        found: SessionId,
    },
}

impl LedgerProblem {
    /// The session a listing line should carry: the missing one when its id is known,
    /// else the one that gives the problem away.
    pub fn session(&self) -> Option<SessionId> {
        match self {
            LedgerProblem::Missing { named, .. } => *named,
            LedgerProblem::MissingNewest { named, .. } => Some(*named),
            LedgerProblem::Duplicate { sessions, .. } => sessions.first().copied(),
            LedgerProblem::WrongPredecessor { session, .. } => Some(*session),
        }
    }
}

impl fmt::Display for LedgerProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LedgerProblem::Missing {
                node,
                from,
                to,
                named,
                before,
            } => {
                if from == to {
                    write!(f, "missing from the store: session #{from} of node {node}")?;
                } else {
                    write!(
                        f,
                        "missing from the store: sessions #{from} to #{to} of node {node}"
                    )?;
                }
                match named {
                    Some(id) if from == to => write!(f, " ({id}, named by {before})"),
                    Some(id) => write!(f, " (#{to} is {id}, named by {before})"),
                    None => write!(f, " (numbered before {before})"),
                }
            }
            LedgerProblem::MissingNewest {
                node,
                from,
                to,
                named,
            } => {
                if from == to {
                    write!(f, "missing from the store: session #{to} of node {node}")?;
                } else {
                    write!(
                        f,
                        "missing from the store: sessions #{from} to #{to} of node {node}"
                    )?;
                }
                write!(
                    f,
                    " (#{to} is {named}, named by the node's signed ledger head)"
                )
            }
            LedgerProblem::Duplicate {
                node,
                node_seq,
                sessions,
            } => {
                let ids: Vec<String> = sessions.iter().map(ToString::to_string).collect();
                write!(
                    f,
                    "sessions {} of node {node} all carry number #{node_seq}: its ledger was reset or copied",
                    ids.join(", ")
                )
            }
            LedgerProblem::WrongPredecessor {
                node,
                session,
                named,
                found,
            } => {
                let named = named.map_or_else(|| "none".to_string(), |id| id.to_string());
                write!(
                    f,
                    "session {session} of node {node} names {named} as the session before it, but the store holds {found} under that number"
                )
            }
        }
    }
}

/// Every problem in the ledgers of the nodes of `entries`: gaps in each node's numbers
/// (from 1 to the highest a session or a verified head gives), numbers used twice and
/// predecessors that do not match.
pub fn check(entries: &[LedgerEntry], heads: &[VerifiedHead]) -> Vec<LedgerProblem> {
    let mut nodes: BTreeMap<&str, BTreeMap<u64, Vec<&LedgerEntry>>> = BTreeMap::new();
    for e in entries.iter().filter(|e| e.node_seq > 0) {
        nodes
            .entry(&e.node)
            .or_default()
            .entry(e.node_seq)
            .or_default()
            .push(e);
    }
    let mut problems = Vec::new();
    for (node, numbered) in nodes {
        let mut prev: Option<(u64, SessionId)> = None;
        for (&n, here) in &numbered {
            let e = here[0];
            if here.len() > 1 {
                problems.push(LedgerProblem::Duplicate {
                    node: node.to_string(),
                    node_seq: n,
                    sessions: here.iter().map(|e| e.session).collect(),
                });
            }
            let expected_from = prev.map_or(1, |(p, _)| p + 1);
            if n > expected_from {
                problems.push(LedgerProblem::Missing {
                    node: node.to_string(),
                    from: expected_from,
                    to: n - 1,
                    named: e.prev_session,
                    before: e.session,
                });
            } else if let Some((_, found)) = prev
                && e.prev_session != Some(found)
            {
                problems.push(LedgerProblem::WrongPredecessor {
                    node: node.to_string(),
                    session: e.session,
                    named: e.prev_session,
                    found,
                });
            }
            prev = Some((n, e.session));
        }
    }
    problems.extend(missing_newest(entries, heads));
    problems
}

/// Per node, the sessions a head numbers beyond the highest the store holds.
fn missing_newest(entries: &[LedgerEntry], heads: &[VerifiedHead]) -> Vec<LedgerProblem> {
    let mut newest: BTreeMap<&str, &VerifiedHead> = BTreeMap::new();
    for h in heads {
        let slot = newest.entry(&h.node).or_insert(h);
        if h.node_seq > slot.node_seq {
            *slot = h;
        }
    }
    let mut problems = Vec::new();
    for (node, head) in newest {
        let held = entries
            .iter()
            .filter(|e| e.node == node)
            .map(|e| e.node_seq)
            .max()
            .unwrap_or(0);
        if head.node_seq > held {
            problems.push(LedgerProblem::MissingNewest {
                node: node.to_string(),
                from: held + 1,
                to: head.node_seq,
                named: head.session,
            });
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(node: &str, n: u64) -> Vec<LedgerEntry> {
        let ids: Vec<SessionId> = (0..n).map(|_| SessionId::new_v7()).collect();
        ids.iter()
            .enumerate()
            .map(|(i, &session)| LedgerEntry {
                session,
                node: node.into(),
                node_seq: i as u64 + 1,
                prev_session: i.checked_sub(1).map(|p| ids[p]),
            })
            .collect()
    }

    #[test]
    fn whole_ledgers_have_no_problems() {
        let mut all = chain("web-1", 5);
        all.extend(chain("db-1", 3));
        assert!(check(&all, &[]).is_empty());
        assert!(check(&[], &[]).is_empty());
    }

    #[test]
    fn a_deleted_session_is_named_by_its_successor() {
        let mut all = chain("web-1", 5);
        let gone = all.remove(2);
        let problems = check(&all, &[]);
        assert_eq!(
            problems,
            [LedgerProblem::Missing {
                node: "web-1".into(),
                from: 3,
                to: 3,
                named: Some(gone.session),
                before: all[2].session,
            }]
        );
        assert_eq!(problems[0].session(), Some(gone.session));
        let text = problems[0].to_string();
        assert!(text.contains(&gone.session.to_string()), "{text}");
        assert!(text.starts_with("missing from the store: session #3 of node web-1"));
    }

    #[test]
    fn several_deleted_and_the_first_ones_are_counted() {
        let mut all = chain("web-1", 8);
        all.drain(3..6);
        all.remove(0);
        let problems = check(&all, &[]);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(matches!(
            problems[0],
            LedgerProblem::Missing { from: 1, to: 1, .. }
        ));
        assert!(matches!(
            problems[1],
            LedgerProblem::Missing { from: 4, to: 6, .. }
        ));
    }

    #[test]
    fn reused_numbers_and_wrong_predecessors_are_reported() {
        let mut all = chain("web-1", 3);
        let mut copy = all[1].clone();
        copy.session = SessionId::new_v7();
        all.push(copy);
        let problems = check(&all, &[]);
        assert!(
            matches!(problems[0], LedgerProblem::Duplicate { node_seq: 2, .. }),
            "{problems:?}"
        );

        let mut all = chain("web-1", 3);
        all[2].prev_session = Some(SessionId::new_v7());
        let problems = check(&all, &[]);
        assert!(
            matches!(problems[..], [LedgerProblem::WrongPredecessor { .. }]),
            "{problems:?}"
        );
    }

    #[test]
    fn the_newest_session_is_named_by_a_trusted_head() {
        let key = NodeKey::from_seed([3; 32]);
        let mut trust = TrustSet::default();
        trust.insert(key.public(), "web-1");
        let mut all = chain("web-1", 4);
        let newest = all.pop().unwrap();
        let head = sign_head(&key, 4, newest.session, 1_795_823_188_000_000_000);
        let verified = check_head(&head, &trust).unwrap();
        assert_eq!(verified.node, "web-1");
        let problems = check(&all, std::slice::from_ref(&verified));
        assert_eq!(
            problems,
            [LedgerProblem::MissingNewest {
                node: "web-1".into(),
                from: 4,
                to: 4,
                named: newest.session
            }]
        );
        assert!(
            problems[0]
                .to_string()
                .contains(&newest.session.to_string())
        );
        all.push(newest);
        assert!(check(&all, &[verified]).is_empty());

        // A head that does not check out counts for nothing.
        let mut forged = head.clone();
        forged.node_seq = 9;
        assert!(matches!(
            check_head(&forged, &trust),
            Err(HeadError::BadSignature(_))
        ));
        let stranger = sign_head(&NodeKey::from_seed([4; 32]), 9, SessionId::new_v7(), 0);
        assert!(matches!(
            check_head(&stranger, &trust),
            Err(HeadError::Untrusted(_))
        ));
        let mut garbled = head;
        garbled.sig = "!!".into();
        assert!(matches!(
            check_head(&garbled, &trust),
            Err(HeadError::Malformed(_))
        ));
    }

    #[test]
    fn unnumbered_sessions_are_left_out() {
        let mut all = chain("web-1", 2);
        all.push(LedgerEntry {
            session: SessionId::new_v7(),
            node: "web-1".into(),
            node_seq: 0,
            prev_session: None,
        });
        assert!(check(&all, &[]).is_empty());
    }
}
