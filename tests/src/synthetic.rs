//! Synthetic sessions for load and pipeline tests: real chunks, made without a terminal.

use schemas::{Chunk, Event, EventKind, SessionEnd, SessionId, SessionStart};

/// The events of a session of `n` events (`n` ≥ 2): `start`, outputs made by `line`,
/// `end`, `step_ns` apart.
pub fn session_events(n: u64, step_ns: u64, line: impl Fn(u64) -> Vec<u8>) -> Vec<Event> {
    let start = SessionStart {
        version: 1,
        user: "loadgen".into(),
        host: "bench".into(),
        command: vec!["yes".into()],
        cols: 80,
        rows: 24,
        ..Default::default()
    };
    let end = SessionEnd {
        version: 1,
        exit_status: Some(0),
        event_count: n,
        ..Default::default()
    };
    (0..n)
        .map(|seq| {
            let (kind, data) = match seq {
                0 => (EventKind::Start, start.to_bytes()),
                s if s == n - 1 => (EventKind::End, end.to_bytes()),
                s => (EventKind::Output, line(s)),
            };
            Event {
                seq,
                elapsed_ns: seq * step_ns,
                kind,
                data,
            }
        })
        .collect()
}

/// Encodes events as compressed chunks of `per_chunk` events.
pub fn chunks(id: SessionId, events: &[Event], per_chunk: usize) -> Vec<Vec<u8>> {
    events
        .chunks(per_chunk.max(1))
        .map(|c| {
            Chunk {
                session_id: id,
                events: c.to_vec(),
            }
            .encode(true)
        })
        .collect()
}

/// A new session of `n` events as chunks of `per_chunk` events.
pub fn session_chunks(n: u64, per_chunk: usize) -> (SessionId, Vec<Vec<u8>>) {
    let id = SessionId::new_v7_at(schemas::time::now_ns());
    let events = session_events(n, 1_000_000, |seq| {
        format!("line {seq} of {id}\r\n").into_bytes()
    });
    (id, chunks(id, &events, per_chunk))
}

/// Kafka records for chunks: key = session id, as the shipper sends them.
pub fn keyed(id: SessionId, chunks: Vec<Vec<u8>>) -> Vec<(Vec<u8>, Vec<u8>)> {
    chunks
        .into_iter()
        .map(|c| (id.to_string().into_bytes(), c))
        .collect()
}
