//! Rows and object metadata for tests of code that reads the store (`store`'s own and the
//! catalog's in `search`), with the `testsuite` feature.

use schemas::{EventKind, RowKind, SessionId};

use crate::{EventRow, ObjectMeta, SessionRow};

/// Wall time of elapsed 0 in the rows below (a day in 2026).
pub const T0: i64 = 1_795_823_188_000_000_000;

/// A session id whose first byte is `n`, shaped like a UUIDv7.
pub fn sid(n: u8) -> SessionId {
    let mut b = [0u8; 16];
    b[0] = n;
    b[6] = 0x70; // version 7, so the ids look like real ones
    b[8] = 0x80;
    SessionId::from_bytes(b)
}

/// Footer metadata of a batch from a Kafka partition.
pub fn meta() -> ObjectMeta {
    ObjectMeta {
        source: "kafka".into(),
        partition: "auditty.events-3".into(),
        first_offset: 100,
        end_offset: 250,
    }
}

/// An `events` row: event `seq` at `seq` µs (wall time `seq` ms after [`T0`]).
pub fn row(id: SessionId, seq: u64, kind: impl Into<RowKind>, data: &[u8]) -> EventRow {
    EventRow {
        session_id: id,
        seq,
        seq_last: seq,
        elapsed_ns: seq * 1_000,
        time_ns: T0 + (seq * 1_000_000) as i64,
        kind: kind.into(),
        data: data.to_vec(),
    }
}

/// A `sessions` row.
pub fn srow(
    id: SessionId,
    kind: EventKind,
    seq: u64,
    elapsed_ns: u64,
    metadata: Vec<u8>,
) -> SessionRow {
    SessionRow {
        session_id: id,
        kind,
        seq,
        time_ns: T0 + elapsed_ns as i64,
        elapsed_ns,
        metadata,
    }
}
