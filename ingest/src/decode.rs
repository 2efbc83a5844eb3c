//! Record bytes → rows, or the reason they are a dead letter.

use schemas::{Chunk, EventKind, SessionId};
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
pub fn decode_chunk(bytes: &[u8], into: &mut Rows) -> Result<(), String> {
    let chunk = Chunk::decode(bytes).map_err(|e| e.to_string())?;
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

/// Event times are session start + elapsed; the start is the id's UUIDv7 timestamp, so no
/// state is needed to place a chunk that arrives long after its session's `start`.
fn start_time(id: SessionId) -> Result<i64, String> {
    id.start_time_ns()
        .ok_or_else(|| format!("session id {id} is not a UUIDv7, so its events cannot be dated"))
}
