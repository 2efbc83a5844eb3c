//! Tamper evidence for sessions (DESIGN.md §6; the bytes are in `integrity/FORMAT.md`).
//!
//! - [`chain`]: the BLAKE3 hash chain over a session's units (one per stored row: a
//!   plaintext event, or a sealed chunk as stored — so verifying needs no data key).
//! - [`checkpoint`]: the signed `checkpoint` events the agent writes every N chunks and
//!   after `end`.
//! - [`keys`]: the node's ed25519 key (created on first run) and the trust file of public
//!   keys a verifier accepts.
//! - [`verify`]: recomputes the chain from stored rows and reports complete / gap at seq N
//!   / altered at seq N / bad or unknown signature / never ended.
//!
//! Callers: the agent keeps a [`SessionChain`] while recording; `replay verify` and
//! `replay ls` run [`verify::verify`] over the rows of the store.
#![warn(missing_docs)]

pub mod chain;
pub mod checkpoint;
pub mod keys;
pub mod verify;

pub use chain::{Chain, Hash};
pub use checkpoint::Checkpoint;
pub use keys::{KeyError, NodeKey, PublicKey, TrustSet, add_to_trust_file};
pub use verify::{Expectations, Problem, Report, Unit, unit_of_row, verify};

use schemas::{Event, SessionId};

/// The agent's side: the chain of the session being recorded and the units since the last
/// checkpoint.
pub struct SessionChain {
    session: SessionId,
    chain: Chain,
    tags: Vec<u8>,
    from: u64,
    key: NodeKey,
}

impl SessionChain {
    /// A new session's chain, signed with `key`.
    pub fn new(session: SessionId, key: NodeKey) -> SessionChain {
        SessionChain {
            session,
            chain: Chain::new(session),
            tags: Vec::new(),
            from: 0,
            key,
        }
    }

    fn push(&mut self, unit: &Hash) {
        self.chain.push(unit);
        self.tags.extend_from_slice(&chain::tag(unit));
    }

    /// Adds an event written in the clear (one row per event in the store).
    pub fn add_event(&mut self, e: &Event) {
        self.push(&chain::hash_event(e));
    }

    /// Adds a sealed chunk, as written (one row per chunk in the store).
    pub fn add_sealed_chunk(&mut self, chunk_bytes: &[u8]) {
        self.push(&chain::sealed_unit_hash(chunk_bytes));
    }

    /// The chain hash so far.
    pub fn hash(&self) -> Hash {
        self.chain.hash()
    }

    /// Signs a checkpoint over everything added so far, for a `checkpoint` event at seq
    /// `seq` (the next seq). The caller writes that event and then adds it with
    /// [`SessionChain::add_event`], like any other.
    pub fn checkpoint(&mut self, seq: u64) -> Vec<u8> {
        let cp = Checkpoint::sign(
            &self.key,
            self.session,
            self.from,
            seq,
            &self.chain.hash(),
            &self.tags,
        );
        self.tags.clear();
        self.from = seq;
        cp.to_bytes()
    }

    /// The public key checkpoints are signed with.
    pub fn public_key(&self) -> PublicKey {
        self.key.public()
    }
}
