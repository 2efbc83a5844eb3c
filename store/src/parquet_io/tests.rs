use super::*;
use crate::LocalStore;
use crate::testsuite::{meta, row, sid, srow};
use parquet::file::reader::{FileReader, SerializedFileReader};
use proptest::prelude::*;
use schemas::{EndReason, SessionEnd, SessionStart};

#[test]
fn event_rows_convert_to_and_from_events() {
    let e = Event {
        seq: 3,
        elapsed_ns: 1_500_000,
        kind: EventKind::Output,
        data: b"hi".to_vec(),
    };
    let r = EventRow::from_event(sid(1), 1_000_000, &e);
    assert_eq!(
        (r.seq, r.seq_last, r.time_ns, r.kind.as_str()),
        (3, 3, 2_000_000, "output")
    );
    assert_eq!(r.to_event(), Some(e.clone()));
    let late = EventRow::from_event(sid(1), i64::MAX - 10, &e);
    assert_eq!(late.time_ns, i64::MAX - i64::MAX.rem_euclid(1_000_000));
    let sealed = EventRow {
        kind: RowKind::Sealed,
        ..r
    };
    assert_eq!(sealed.to_event(), None);
}

#[test]
fn events_round_trip_sorted_with_session_filter_and_footer() {
    let (a, b) = (sid(1), sid(2));
    let mut rows = vec![
        row(b, 1, EventKind::Input, b"ls\r"),
        row(a, 2, EventKind::Output, b"\x1b[1mhello\x1b[0m"),
        row(b, 0, EventKind::Start, b"{}"),
        row(a, 0, EventKind::Start, b"{}"),
        row(a, 1, EventKind::Resize, b"80x24"),
        EventRow {
            kind: RowKind::Sealed,
            seq_last: 9,
            ..row(b, 2, RowKind::Sealed, &[0xff, 0, 1])
        },
    ];
    let bytes = encode_events(&mut rows, &meta()).unwrap();
    let keys: Vec<_> = rows.iter().map(|r| (r.session_id, r.seq)).collect();
    assert_eq!(keys, vec![(a, 0), (a, 1), (a, 2), (b, 0), (b, 1), (b, 2)]);

    let all = decode_events("k", &bytes, None).unwrap();
    assert_eq!(all, rows);
    let only_b = decode_events("k", &bytes, Some(b)).unwrap();
    assert_eq!(only_b, rows[3..].to_vec());
    assert_eq!(only_b[2].seq_last, 9);
    assert!(decode_events("k", &bytes, Some(sid(3))).unwrap().is_empty());
    assert_eq!(read_object_meta("k", &bytes).unwrap(), meta());

    let mut none: Vec<EventRow> = Vec::new();
    let empty = encode_events(&mut none, &meta()).unwrap();
    assert!(decode_events("k", &empty, None).unwrap().is_empty());
    assert!(decode_events("k", &empty, Some(a)).unwrap().is_empty());
}

#[test]
fn events_files_have_zstd_statistics_bloom_filter_and_sort_order() {
    let mut rows: Vec<_> = (0..50u8)
        .flat_map(|s| (0..20).map(move |q| row(sid(s), q, EventKind::Output, b"some output bytes")))
        .collect();
    let bytes = encode_events(&mut rows, &meta()).unwrap();
    let reader = SerializedFileReader::new(Bytes::from(bytes.clone())).unwrap();
    let md = reader.metadata();
    let kv = md.file_metadata().key_value_metadata().unwrap();
    let get = |k: &str| kv.iter().find(|e| e.key == k).and_then(|e| e.value.clone());
    assert_eq!(
        get(META_TABLE_VERSION).as_deref(),
        Some(schemas::arrow::TABLE_VERSION)
    );
    assert_eq!(get(META_END_OFFSET).as_deref(), Some("250"));
    assert!(md.num_row_groups() >= 1);
    for rg in md.row_groups() {
        for col in rg.columns() {
            assert!(matches!(col.compression(), Compression::ZSTD(_)), "{col:?}");
        }
        let session_col = rg.column(0);
        assert_eq!(session_col.column_path().string(), ev::SESSION_ID);
        assert!(session_col.bloom_filter_offset().is_some());
        let stats = session_col.statistics().unwrap();
        assert_eq!(
            stats.min_bytes_opt().unwrap(),
            sid(0).to_string().as_bytes()
        );
        assert_eq!(
            stats.max_bytes_opt().unwrap(),
            sid(49).to_string().as_bytes()
        );
        assert_eq!(rg.sorting_columns().map(Vec::len), Some(2));
    }
    // Page-level statistics live in the column index.
    assert!(md.row_group(0).column(0).column_index_offset().is_some());

    let builder = open("k", &bytes).unwrap();
    let bloom = builder
        .get_row_group_column_bloom_filter(0, 0)
        .unwrap()
        .unwrap();
    for s in 0..50 {
        assert!(bloom.check(sid(s).to_string().as_str()));
    }
}

#[test]
fn statistics_and_bloom_filters_skip_row_groups() {
    let (a, b, c) = (sid(1), sid(2), sid(3));
    let big = MAX_ROW_GROUP_ROWS as u64;
    let mut rows: Vec<_> = (0..big)
        .map(|q| row(a, q, EventKind::Output, b"x"))
        .collect();
    rows.extend((0..10).map(|q| row(c, q, EventKind::Output, b"y")));
    let bytes = encode_events(&mut rows, &meta()).unwrap();
    let builder = open("k", &bytes).unwrap();
    assert_eq!(builder.metadata().num_row_groups(), 2);
    assert_eq!(candidate_row_groups("k", &builder, a).unwrap(), vec![0]);
    assert_eq!(candidate_row_groups("k", &builder, c).unwrap(), vec![1]);
    assert!(
        candidate_row_groups("k", &builder, sid(9))
            .unwrap()
            .is_empty()
    );
    let only_c = decode_events("k", &bytes, Some(c)).unwrap();
    assert_eq!(only_c.len(), 10);
    assert!(only_c.iter().all(|r| r.session_id == c));

    // b lies between a and c, so min/max cannot exclude it; the bloom filter does.
    let mut mixed = vec![
        row(a, 0, EventKind::Output, b"x"),
        row(c, 0, EventKind::Output, b"y"),
    ];
    let bytes = encode_events(&mut mixed, &meta()).unwrap();
    let builder = open("k", &bytes).unwrap();
    assert!(candidate_row_groups("k", &builder, b).unwrap().is_empty());
    assert_eq!(candidate_row_groups("k", &builder, c).unwrap(), vec![0]);
}

fn start_json() -> Vec<u8> {
    SessionStart {
        version: 1,
        start_time_ns: 1_795_823_188_000_000_000,
        user: "alice".into(),
        host: "web-1".into(),
        command: vec!["bash".into(), "-l".into()],
        ..Default::default()
    }
    .to_bytes()
}

fn end_json() -> Vec<u8> {
    SessionEnd {
        version: 1,
        exit_status: Some(3),
        reason: EndReason::Exit,
        event_count: 42,
        ..Default::default()
    }
    .to_bytes()
}

#[test]
fn sessions_round_trip_with_flattened_columns() {
    let (a, b) = (sid(1), sid(2));
    let mut rows = vec![
        srow(b, EventKind::Start, 0, 0, b"not json".to_vec()),
        srow(a, EventKind::End, 41, 9_000, end_json()),
        srow(a, EventKind::Start, 0, 0, start_json()),
    ];
    let bytes = encode_sessions(&mut rows, &meta()).unwrap();
    assert_eq!(rows[0].kind, EventKind::Start);
    assert_eq!(rows[0].session_id, a);
    assert_eq!(decode_sessions("k", &bytes).unwrap(), rows);
    assert_eq!(read_object_meta("k", &bytes).unwrap(), meta());

    let batches: Vec<RecordBatch> = open("k", &bytes)
        .unwrap()
        .build()
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(batches.len(), 1);
    let batch = &batches[0];
    assert_eq!(batch.schema(), schemas::arrow::sessions_schema());
    let text = |name: &str| -> Vec<Option<String>> {
        column::<StringArray>("k", batch, name)
            .unwrap()
            .iter()
            .map(|v| v.map(str::to_string))
            .collect()
    };
    let s = |v: &str| Some(v.to_string());
    assert_eq!(text(ss::USER), vec![s("alice"), None, None]);
    assert_eq!(text(ss::HOST), vec![s("web-1"), None, None]);
    assert_eq!(text(ss::COMMAND), vec![s("bash -l"), None, None]);
    assert_eq!(text(ss::END_REASON), vec![None, s("exit"), None]);
    let exit: Vec<_> = column::<Int32Array>("k", batch, ss::EXIT_STATUS)
        .unwrap()
        .iter()
        .collect();
    assert_eq!(exit, vec![None, Some(3), None]);
    let count: Vec<_> = column::<UInt64Array>("k", batch, ss::EVENT_COUNT)
        .unwrap()
        .iter()
        .collect();
    assert_eq!(count, vec![None, Some(42), None]);
    assert_eq!(text(ss::METADATA)[2], s("not json"));

    let reader = SerializedFileReader::new(Bytes::from(bytes)).unwrap();
    let rg = reader.metadata().row_group(0);
    assert!(rg.column(0).bloom_filter_offset().is_some());
    assert!(matches!(rg.column(0).compression(), Compression::ZSTD(_)));
}

#[test]
fn footer_metadata_reads_from_the_store_without_the_body() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path()).unwrap();
    let mut rows = vec![row(sid(1), 0, EventKind::Output, &[7; 10_000])];
    let bytes = encode_events(&mut rows, &meta()).unwrap();
    store
        .put("events/date=2026-11-27/x.parquet", &bytes)
        .unwrap();
    assert_eq!(
        read_object_meta_at(&store, "events/date=2026-11-27/x.parquet").unwrap(),
        meta()
    );

    store
        .put("events/date=2026-11-27/short.parquet", b"PAR1")
        .unwrap();
    store
        .put("events/date=2026-11-27/junk.parquet", &[0xAB; 64])
        .unwrap();
    let mut lying = bytes.clone();
    let n = lying.len();
    lying[n - 8..n - 4].copy_from_slice(&u32::MAX.to_le_bytes());
    store
        .put("events/date=2026-11-27/lying.parquet", &lying)
        .unwrap();
    for k in ["short", "junk", "lying"] {
        let key = format!("events/date=2026-11-27/{k}.parquet");
        let err = read_object_meta_at(&store, &key).unwrap_err();
        assert!(matches!(err, StoreError::Parquet { .. }), "{err:?}");
        assert!(err.to_string().contains(&key), "{err}");
    }

    let mut no_meta = Vec::new();
    let mut w =
        ArrowWriter::try_new(&mut no_meta, schemas::arrow::events_schema(false), None).unwrap();
    w.write(&RecordBatch::new_empty(schemas::arrow::events_schema(
        false,
    )))
    .unwrap();
    w.close().unwrap();
    let err = read_object_meta("other", &no_meta).unwrap_err();
    assert!(err.to_string().contains("auditty.table_version"), "{err}");
}

#[test]
fn decoders_reject_foreign_schemas() {
    let mut rows = vec![srow(sid(1), EventKind::Start, 0, 0, start_json())];
    let sessions = encode_sessions(&mut rows, &meta()).unwrap();
    let err = decode_events("sessions/x.parquet", &sessions, None).unwrap_err();
    assert!(
        err.to_string().contains("column 'seq_last' is missing"),
        "{err}"
    );
    let mut rows = vec![row(sid(1), 0, EventKind::Output, b"x")];
    let events = encode_events(&mut rows, &meta()).unwrap();
    assert!(matches!(
        decode_sessions("events/x.parquet", &events),
        Err(StoreError::Parquet { .. })
    ));
}

#[test]
fn bad_session_ids_are_parquet_errors() {
    let schema = schemas::arrow::events_schema(false);
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec!["not-a-uuid"])),
        Arc::new(UInt64Array::from(vec![0])),
        Arc::new(UInt64Array::from(vec![0])),
        Arc::new(UInt64Array::from(vec![0])),
        event_time_array([0].into_iter()),
        Arc::new(StringArray::from(vec!["output"])),
        Arc::new(BinaryArray::from_iter_values([b"x"])),
    ];
    let batch = RecordBatch::try_new(schema.clone(), cols).unwrap();
    let mut bytes = Vec::new();
    let mut w = ArrowWriter::try_new(&mut bytes, schema, None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let err = decode_events("events/bad.parquet", &bytes, None).unwrap_err();
    assert!(err.to_string().contains("not-a-uuid"), "{err}");
    assert!(err.to_string().contains("events/bad.parquet"), "{err}");
}

fn sample_events() -> Vec<u8> {
    let mut rows: Vec<_> = (0..3u8)
        .flat_map(|s| {
            (0..40).map(move |q| {
                row(
                    sid(s),
                    q,
                    EventKind::Output,
                    format!("line {q}\r\n").as_bytes(),
                )
            })
        })
        .collect();
    encode_events(&mut rows, &meta()).unwrap()
}

fn sample_sessions() -> Vec<u8> {
    let mut rows = vec![
        srow(sid(1), EventKind::Start, 0, 0, start_json()),
        srow(sid(1), EventKind::End, 9, 100, end_json()),
    ];
    encode_sessions(&mut rows, &meta()).unwrap()
}

/// Runs every decoder; they may succeed or fail, but must return.
fn decode_all(bytes: &[u8]) {
    let key = "events/date=2026-11-27/fuzz.parquet";
    for result in [
        decode_events(key, bytes, None).map(|_| ()),
        decode_events(key, bytes, Some(sid(1))).map(|_| ()),
        decode_sessions(key, bytes).map(|_| ()),
        read_object_meta(key, bytes).map(|_| ()),
    ] {
        if let Err(e) = result {
            assert!(matches!(e, StoreError::Parquet { .. }), "{e:?}");
            assert!(e.to_string().contains(key), "{e}");
        }
    }
}

#[test]
fn garbage_and_truncations_are_errors() {
    decode_all(b"");
    decode_all(b"PAR1");
    decode_all(b"PAR1PAR1");
    decode_all(b"PAR1\0\0\0\0PAR1");
    for sample in [sample_events(), sample_sessions()] {
        for len in 0..sample.len() {
            decode_all(&sample[..len]);
        }
        assert!(decode_events("k", &sample[..sample.len() - 1], None).is_err());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        decode_all(&bytes);
        let mut framed = b"PAR1".to_vec();
        framed.extend_from_slice(&bytes);
        framed.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        framed.extend_from_slice(b"PAR1");
        decode_all(&framed);
    }

    /// A batch re-processed after a crash must rewrite its objects byte for byte (the
    /// store's conditional puts accept only identical bytes): encoding depends on the rows
    /// and the footer metadata alone, not on their order, the time or the process.
    #[test]
    fn encoding_a_batch_again_gives_identical_bytes(
        spec in proptest::collection::vec((0u8..4, 0u64..400, 0u8..5, proptest::collection::vec(any::<u8>(), 0..64)), 1..200),
        shuffle_seed in any::<u64>(),
    ) {
        let kinds = [EventKind::Output, EventKind::Input, EventKind::Resize, EventKind::Marker, EventKind::Start];
        let mut rows: Vec<EventRow> = spec
            .iter()
            .map(|(s, seq, k, data)| row(sid(*s), *seq, kinds[usize::from(*k)], data))
            .collect();
        // Duplicate (session, seq) pairs would make the order among them matter; the
        // ingester never writes those within one batch.
        rows.sort_by_key(|r| (r.session_id, r.seq));
        rows.dedup_by_key(|r| (r.session_id, r.seq));
        let mut again = rows.clone();
        let mut x = shuffle_seed | 1;
        for i in (1..again.len()).rev() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            again.swap(i, (x % (i as u64 + 1)) as usize);
        }
        let first = encode_events(&mut rows, &meta()).unwrap();
        let second = encode_events(&mut again, &meta()).unwrap();
        prop_assert!(first == second, "re-encoding changed the bytes");
        let mut sessions: Vec<SessionRow> = rows
            .iter()
            .filter(|r| r.seq % 7 == 0)
            .map(|r| srow(r.session_id, EventKind::Start, r.seq, r.elapsed_ns, r.data.clone()))
            .collect();
        let mut sessions_again: Vec<SessionRow> = sessions.iter().rev().cloned().collect();
        prop_assert!(
            encode_sessions(&mut sessions, &meta()).unwrap()
                == encode_sessions(&mut sessions_again, &meta()).unwrap()
        );
    }

    #[test]
    fn bit_flips_never_panic(
        flips in proptest::collection::vec((any::<proptest::sample::Index>(), 0u8..8), 1..6),
        sessions in any::<bool>(),
    ) {
        let mut bytes = if sessions { sample_sessions() } else { sample_events() };
        for (at, bit) in flips {
            let i = at.index(bytes.len());
            bytes[i] ^= 1 << bit;
        }
        decode_all(&bytes);
    }
}

#[test]
fn event_times_are_stored_to_the_millisecond_and_version_1_nanoseconds_still_read() {
    assert_eq!(event_time_ns(1_000_000_000, 1_234_567), 1_001_000_000);
    assert_eq!(event_time_ns(-1, 0), -1_000_000);
    let mut rows = vec![
        row(sid(1), 0, EventKind::Output, b"x"),
        row(sid(1), 1, EventKind::Input, b"y"),
    ];
    let bytes = encode_events(&mut rows, &meta()).unwrap();
    assert_eq!(decode_events("e", &bytes, None).unwrap(), rows);

    // An object written by table version 1: `time` in nanoseconds.
    let v1_schema = Arc::new(arrow_schema::Schema::new(
        schemas::arrow::events_schema(true)
            .fields()
            .iter()
            .map(|f| {
                if f.name() == ev::TIME {
                    arrow_schema::Field::new(ev::TIME, time_type_v1(), false)
                } else {
                    f.as_ref().clone()
                }
            })
            .collect::<Vec<_>>(),
    ));
    let r = &rows[0];
    let batch = RecordBatch::try_new(
        v1_schema.clone(),
        vec![
            Arc::new(StringArray::from_iter_values([r.session_id.to_string()])),
            Arc::new(UInt64Array::from_iter_values([r.seq])),
            Arc::new(UInt64Array::from_iter_values([r.seq_last])),
            Arc::new(UInt64Array::from_iter_values([r.elapsed_ns])),
            time_array([r.time_ns + 123].into_iter()),
            Arc::new(StringArray::from_iter_values([r.kind.as_str()])),
            Arc::new(BinaryArray::from_iter_values([r.data.as_slice()])),
        ],
    )
    .unwrap();
    let mut w = ArrowWriter::try_new(Vec::new(), v1_schema, None).unwrap();
    w.write(&batch).unwrap();
    let v1 = w.into_inner().unwrap();
    let back = decode_events("v1", &v1, None).unwrap();
    assert_eq!(back[0].time_ns, r.time_ns + 123);
}

#[test]
fn elapsed_is_stored_in_microseconds_unless_that_would_round() {
    let version = |bytes: &[u8]| {
        let reader = SerializedFileReader::new(Bytes::copy_from_slice(bytes)).unwrap();
        let kv = reader
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .cloned();
        let v = kv
            .unwrap()
            .into_iter()
            .find(|kv| kv.key == META_TABLE_VERSION)
            .and_then(|kv| kv.value);
        let cols: Vec<String> = reader
            .metadata()
            .file_metadata()
            .schema_descr()
            .columns()
            .iter()
            .map(|c| c.name().to_string())
            .collect();
        (v.unwrap(), cols)
    };
    let mut rows = vec![
        row(sid(1), 0, EventKind::Output, b"x"),
        row(sid(1), 1, EventKind::Input, b"y"),
    ];
    rows[1].elapsed_ns = 123_456_000;
    let bytes = encode_events(&mut rows, &meta()).unwrap();
    let (v, cols) = version(&bytes);
    assert_eq!(v, "3");
    assert!(cols.contains(&ev::ELAPSED_US.to_string()), "{cols:?}");
    assert!(!cols.contains(&ev::ELAPSED_NS.to_string()), "{cols:?}");
    assert_eq!(decode_events("e", &bytes, None).unwrap(), rows);

    // One time that is not a whole microsecond (an older agent): the object keeps
    // nanoseconds, so nothing is rounded (an integrity chain covers the exact value).
    rows[1].elapsed_ns = 123_456_789;
    let bytes = encode_events(&mut rows, &meta()).unwrap();
    let (v, cols) = version(&bytes);
    assert_eq!(v, "2");
    assert!(cols.contains(&ev::ELAPSED_NS.to_string()), "{cols:?}");
    assert_eq!(decode_events("e", &bytes, None).unwrap(), rows);
}

fn time_type_v1() -> arrow_schema::DataType {
    arrow_schema::DataType::Timestamp(arrow_schema::TimeUnit::Nanosecond, Some("UTC".into()))
}

#[test]
fn pages_hold_about_a_megabyte_of_small_rows_and_4096_large_ones() {
    // Keystrokes and their echoes: one page per column up to a row group.
    assert_eq!(page_rows(10_000 * 7, 10_000), MAX_ROW_GROUP_ROWS);
    // Rows of 64 bytes on average: pages of 1 MiB of data.
    assert_eq!(page_rows(64 * 100_000, 100_000), 16_384);
    // Bulk output (4 KiB reads): the floor, as before.
    assert_eq!(page_rows(4096 * 1000, 1000), PAGE_ROWS);
    // Degenerate inputs neither divide by zero nor leave the bounds.
    assert_eq!(page_rows(0, 0), MAX_ROW_GROUP_ROWS);
    assert_eq!(page_rows(usize::MAX, 1), PAGE_ROWS);
}

#[test]
fn kinds_are_stored_as_text_and_unknown_ones_read_back_verbatim() {
    let mut rows = vec![
        row(sid(1), 0, EventKind::Start, b"{}"),
        EventRow {
            seq_last: 4,
            ..row(sid(1), 1, RowKind::Sealed, b"chunk")
        },
        row(sid(1), 5, RowKind::Unknown("hologram".into()), b"?"),
    ];
    let bytes = encode_events(&mut rows, &meta()).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(Bytes::copy_from_slice(&bytes))
        .unwrap()
        .build()
        .unwrap();
    let mut texts = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        let kind = required::<StringArray>("k", &batch, ev::KIND).unwrap();
        texts.extend(kind.iter().flatten().map(str::to_string));
    }
    assert_eq!(texts, vec!["start", "sealed", "hologram"]);
    let back = decode_events("k", &bytes, None).unwrap();
    assert_eq!(back, rows);
    assert_eq!(back[2].to_event(), None);
}

/// What fuzzing found in the Parquet crate's Thrift reader (third_party/parquet): an `events`
/// object whose first page header, or whose footer, holds an unknown field that is a list
/// claiming 2^31-1 elements. Unpatched, each took seconds of CPU (the footer one then read as
/// a valid object); patched, the size is refused against the input left.
mod thrift_skip {
    use super::*;

    const FOOTER: &[u8] = include_bytes!(
        "../../../fuzz/regressions/parquet_read/thrift-skip-list-of-bools-in-footer.parquet"
    );
    const PAGE_BOOLS: &[u8] =
        include_bytes!("../../../fuzz/regressions/parquet_read/thrift-skip-list-of-bools.parquet");
    const PAGE_DOUBLES: &[u8] = include_bytes!(
        "../../../fuzz/regressions/parquet_read/thrift-skip-list-of-doubles.parquet"
    );

    const KEY: &str = "events/date=2026-11-30/p0-0-1.parquet";

    fn assert_refused<T: std::fmt::Debug>(what: &str, r: Result<T, StoreError>) {
        match r {
            Err(StoreError::Parquet { key, message }) => {
                assert_eq!(key, KEY, "{what}");
                assert!(message.contains("Unexpected EOF"), "{what}: {message}");
            }
            other => panic!("{what}: expected the list to be refused, got {other:?}"),
        }
    }

    fn assert_rows_refused(bytes: &[u8]) {
        assert_refused("decode_events", decode_events(KEY, bytes, None));
        assert_refused(
            "decode_events (one session)",
            decode_events(KEY, bytes, Some(sid(1))),
        );
        assert_refused("scan_events", scan_events(KEY, bytes, None, |_| ()));
        assert_refused("decode_sessions", decode_sessions(KEY, bytes));
    }

    #[test]
    fn a_huge_list_in_the_footer_is_refused_by_every_reader() {
        assert_rows_refused(FOOTER);
        assert_refused("read_object_meta", read_object_meta(KEY, FOOTER));
    }

    #[test]
    fn a_huge_list_in_a_page_header_is_refused() {
        for bytes in [PAGE_BOOLS, PAGE_DOUBLES] {
            assert_rows_refused(bytes);
            // The footer is intact: the object's metadata still reads.
            assert!(read_object_meta(KEY, bytes).is_ok());
        }
    }
}
