//! Tamper evidence for sessions (DESIGN.md §6; the bytes are in `integrity/FORMAT.md`).
//!
//! - [`chain`]: the BLAKE3 hash chain over a session's units (one per stored row: a
//!   plaintext event, or a sealed chunk as stored — so verifying needs no data key).
//! - [`checkpoint`]: the signed `checkpoint` events the agent writes every N chunks and
//!   after `end`.
//! - [`keys`]: the node's ed25519 key (created on first run) and the trust file of public
//!   keys a verifier accepts.
//! - [`ledger`]: each node numbers its sessions; which numbered sessions the store lacks.
//! - [`verify`]: recomputes the chain from stored rows and reports complete / gap at seq N
//!   / altered at seq N (or between seq A and B, for a group of rows sharing a tag) / bad
//!   or unknown signature / never ended.
//!
//! Callers: the agent keeps a [`SessionChain`] while recording; `replay verify` and
//! `replay ls` run [`verify::verify`] over the rows of the store.
#![warn(missing_docs)]

pub mod chain;
pub mod checkpoint;
pub mod keys;
pub mod ledger;
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
    /// The unit hashes of `from..`, for the next checkpoint's group tags.
    units: Vec<Hash>,
    /// The data bytes of those units (event data, or sealed chunks as written), which set
    /// the tag budget ([`checkpoint::choose_group`]).
    interval_bytes: u64,
    from: u64,
    key: NodeKey,
}

impl SessionChain {
    /// A new session's chain, signed with `key`.
    pub fn new(session: SessionId, key: NodeKey) -> SessionChain {
        SessionChain {
            session,
            chain: Chain::new(session),
            units: Vec::new(),
            interval_bytes: 0,
            from: 0,
            key,
        }
    }

    fn push(&mut self, unit: Hash, data_len: usize) {
        self.chain.push(&unit);
        self.units.push(unit);
        self.interval_bytes = self
            .interval_bytes
            .saturating_add(u64::try_from(data_len).unwrap_or(u64::MAX));
    }

    /// Adds an event written in the clear (one row per event in the store).
    pub fn add_event(&mut self, e: &Event) {
        self.push(chain::hash_event(e), e.data.len());
    }

    /// Adds a sealed chunk, as written (one row per chunk in the store).
    pub fn add_sealed_chunk(&mut self, chunk_bytes: &[u8]) {
        self.push(chain::sealed_unit_hash(chunk_bytes), chunk_bytes.len());
    }

    /// The chain hash so far.
    pub fn hash(&self) -> Hash {
        self.chain.hash()
    }

    /// Signs a checkpoint over everything added so far, for a `checkpoint` event at seq
    /// `seq` (the next seq). The caller writes that event and then adds it with
    /// [`SessionChain::add_event`], like any other.
    ///
    /// Its tags cover groups of `g` units, `g` chosen by [`checkpoint::choose_group`]
    /// from the interval's units and bytes: exact rows where tags are cheap, groups of up
    /// to 64 keystroke-sized events where they would cost more than the events.
    pub fn checkpoint(&mut self, seq: u64) -> Vec<u8> {
        let g = checkpoint::choose_group(self.units.len(), self.interval_bytes);
        let tags: Vec<u8> = chain::group_tags(&self.units, g).concat();
        let cp = Checkpoint::sign(
            &self.key,
            self.session,
            self.from,
            seq,
            g,
            &self.chain.hash(),
            &tags,
        );
        self.units.clear();
        self.interval_bytes = 0;
        self.from = seq;
        cp.to_bytes()
    }

    /// The public key checkpoints are signed with.
    pub fn public_key(&self) -> PublicKey {
        self.key.public()
    }
}
