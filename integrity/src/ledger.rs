//! Checking nodes' session ledgers (DESIGN.md §6): which sessions are missing from the
//! store although a signed `start` of another session names or numbers them.
//!
//! Each session's `start` carries its number in its node's sequence (`node_seq`) and the
//! session numbered one less (`prev_session`). Only sessions whose `start` verified under
//! a trusted key count, and a node is that key: whoever holds it numbers its sessions.

use std::collections::BTreeMap;
use std::fmt;

use schemas::SessionId;

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
/// (from 1 to its highest), numbers used twice and predecessors that do not match.
pub fn check(entries: &[LedgerEntry]) -> Vec<LedgerProblem> {
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
        assert!(check(&all).is_empty());
        assert!(check(&[]).is_empty());
    }

    #[test]
    fn a_deleted_session_is_named_by_its_successor() {
        let mut all = chain("web-1", 5);
        let gone = all.remove(2);
        let problems = check(&all);
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
        let problems = check(&all);
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
        let problems = check(&all);
        assert!(
            matches!(problems[0], LedgerProblem::Duplicate { node_seq: 2, .. }),
            "{problems:?}"
        );

        let mut all = chain("web-1", 3);
        all[2].prev_session = Some(SessionId::new_v7());
        let problems = check(&all);
        assert!(
            matches!(problems[..], [LedgerProblem::WrongPredecessor { .. }]),
            "{problems:?}"
        );
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
        assert!(check(&all).is_empty());
    }
}
