//! Record bytes → rows, or the reason they are a dead letter.

use schemas::seal::SealedChunk;
use schemas::{Chunk, DecodeErrorKind, EventKind, RowKind, SessionId};
use store::{EventRow, SessionRow};

/// The rows of one chunk.
#[derive(Debug, Default)]
pub struct Rows {
    /// One per event.
    pub events: Vec<EventRow>,
    /// One per `start` and `end` event.
    pub sessions: Vec<SessionRow>,
}

/// Decodes a chunk into rows. The error is the one-line reason for the dead letter.
///
/// A sealed chunk becomes one `sealed` row holding the chunk exactly as received: the
/// ingester never holds a key, and a verifier hashes those bytes (`integrity/FORMAT.md`).
pub fn decode_chunk(bytes: &[u8], into: &mut Rows) -> Result<(), String> {
    let chunk = match Chunk::decode(bytes) {
        Ok(chunk) => chunk,
        Err(e) if e.kind == DecodeErrorKind::Sealed => return sealed_row(bytes, into),
        Err(e) => return Err(e.to_string()),
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

fn sealed_row(bytes: &[u8], into: &mut Rows) -> Result<(), String> {
    let sealed = SealedChunk::parse(bytes).map_err(|e| e.to_string())?;
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
fn start_time(id: SessionId) -> Result<i64, String> {
    id.start_time_ns()
        .ok_or_else(|| format!("session id {id} is not a UUIDv7, so its events cannot be dated"))
}
