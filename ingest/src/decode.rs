//! Record bytes → rows, or the reason they are a dead letter.

use schemas::chunk::seal::SealedChunk;
use schemas::ledger::{self, LedgerHead};
use schemas::{Chunk, DecodeErrorKind, EventKind, RowKind, SessionId};
use store::{EventRow, SessionRow};

/// Why a record is a dead letter. Its text is the one-line reason stored with it.
#[derive(Debug, thiserror::Error)]
pub enum DecodeChunkError {
    /// The bytes are not a chunk (or sealed chunk) this build can read; the error keeps
    /// the byte offset and what was wrong there.
    #[error(transparent)]
    Chunk(#[from] schemas::DecodeError),
    /// A record marked as a ledger head that is not one.
    #[error("{0}")]
    LedgerHead(#[from] schemas::ledger::LedgerHeadError),
    /// A ledger head whose JSON spans lines, which the `ledger/` objects cannot hold.
    #[error("ledger head JSON holds a line break")]
    MultilineHead,
    /// The session id is not a UUIDv7, so no event of the chunk can be dated.
    #[error("session id {session_id} is not a UUIDv7, so its events cannot be dated")]
    UndatedSession {
        /// The id the chunk carries.
        session_id: SessionId,
    },
}

/// The rows of one chunk.
#[derive(Debug, Default)]
pub struct Rows {
    /// One per event.
    pub events: Vec<EventRow>,
    /// One per `start` and `end` event.
    pub sessions: Vec<SessionRow>,
    /// Ledger heads: their time and their JSON, as received.
    pub ledger: Vec<(i64, Vec<u8>)>,
}

/// Decodes a chunk into rows; on error `into` is left as it was.
///
/// A sealed chunk becomes one `sealed` row holding the chunk exactly as received: the
/// ingester never holds a key, and a verifier hashes those bytes (`integrity/FORMAT.md`).
pub fn decode_chunk(bytes: &[u8], into: &mut Rows) -> Result<(), DecodeChunkError> {
    if LedgerHead::is_head(bytes) {
        // Kept verbatim (its signature is checked by `replay verify`, which holds the trust
        // file; the ingester holds no keys), once it is known to parse.
        let head = LedgerHead::from_record(bytes)?;
        let json = &bytes[ledger::MAGIC.len()..];
        if json.contains(&b'\n') {
            return Err(DecodeChunkError::MultilineHead);
        }
        into.ledger.push((head.time_ns, json.to_vec()));
        return Ok(());
    }
    let chunk = match Chunk::decode(bytes) {
        Ok(chunk) => chunk,
        Err(e) if e.kind == DecodeErrorKind::Sealed => return sealed_row(bytes, into),
        Err(e) => return Err(e.into()),
    };
    let start = start_time(chunk.session_id)?;
    for e in &chunk.events {
        let row = EventRow::from_event(chunk.session_id, start, e);
        if matches!(e.kind, EventKind::Start | EventKind::End) {
            into.sessions.push(SessionRow {
                session_id: chunk.session_id,
                kind: e.kind,
                seq: e.seq,
                time_ns: row.time_ns,
                elapsed_ns: e.elapsed_ns,
                metadata: e.data.clone(),
            });
        }
        into.events.push(row);
    }
    Ok(())
}

fn sealed_row(bytes: &[u8], into: &mut Rows) -> Result<(), DecodeChunkError> {
    let sealed = SealedChunk::parse(bytes)?;
    let session_id = sealed.header.session_id;
    let start = start_time(session_id)?;
    into.events.push(EventRow {
        session_id,
        seq: sealed.header.first_seq,
        seq_last: sealed.last_seq(),
        elapsed_ns: sealed.first_elapsed_ns,
        time_ns: store::parquet_io::event_time_ns(start, sealed.first_elapsed_ns),
        kind: RowKind::Sealed,
        data: bytes.to_vec(),
    });
    Ok(())
}

/// Event times are session start + elapsed; the start is the id's UUIDv7 timestamp, so no
/// state is needed to place a chunk that arrives long after its session's `start`.
fn start_time(id: SessionId) -> Result<i64, DecodeChunkError> {
    id.start_time_ns()
        .ok_or(DecodeChunkError::UndatedSession { session_id: id })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ledger_heads_are_kept_verbatim_and_bad_ones_are_dead_letters() {
        let head = LedgerHead {
            v: ledger::HEAD_VERSION,
            key: "ed25519:AAAA".into(),
            node_seq: 7,
            session: SessionId::new_v7().to_string(),
            time_ns: 1_795_823_188_000_000_000,
            sig: "c2ln".into(),
        };
        let mut rows = Rows::default();
        decode_chunk(&head.to_record(), &mut rows).unwrap();
        assert_eq!(rows.ledger, vec![(head.time_ns, head.to_json())]);
        assert!(rows.events.is_empty() && rows.sessions.is_empty());

        let mut rows = Rows::default();
        let err = decode_chunk(b"ATYL{\"v\":1", &mut rows).unwrap_err();
        assert!(matches!(err, DecodeChunkError::LedgerHead(_)), "{err}");
        let mut spread = ledger::MAGIC.to_vec();
        spread.extend_from_slice(&head.to_json());
        spread.insert(ledger::MAGIC.len() + 1, b'\n');
        let err = decode_chunk(&spread, &mut rows).unwrap_err();
        assert!(matches!(err, DecodeChunkError::MultilineHead), "{err}");
        assert!(rows.ledger.is_empty());
    }

    #[test]
    fn a_dead_letter_keeps_where_and_what_went_wrong() {
        let mut rows = Rows::default();
        let err = decode_chunk(b"garbage!", &mut rows).unwrap_err();
        let DecodeChunkError::Chunk(inner) = &err else {
            panic!("{err:?}");
        };
        assert_eq!(inner.offset, 0);
        assert!(matches!(inner.kind, DecodeErrorKind::BadMagic { .. }));
        assert_eq!(err.to_string(), inner.to_string());
        assert!(rows.events.is_empty() && rows.sessions.is_empty());
    }
}
