use super::*;
use schemas::{EventKind, RowKind, SessionStart};
use store::LocalStore;
use store::layout::{events_key, object_stem, sessions_key};
use store::parquet_io::{EventRow, SessionRow, encode_events, encode_sessions};
use store::testsuite::{T0, meta, row, srow};

const DAY_NS: i64 = 86_400 * 1_000_000_000;

/// A UUIDv7 id whose timestamp is `start_ns`.
fn id_at(start_ns: i64, n: u8) -> SessionId {
    let ms = (start_ns / 1_000_000) as u64;
    let mut b = [0u8; 16];
    b[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    b[6] = 0x70;
    b[8] = 0x80;
    b[15] = n;
    SessionId::from_bytes(b)
}

fn put(store: &LocalStore, table: &str, offset: u64, day_ns: i64, bytes: &[u8]) {
    let day = schemas::time::date(day_ns);
    let stem = object_stem("kafka", "t-0", offset);
    let key = if table == "events" {
        events_key(&day, &stem)
    } else {
        sessions_key(&day, &stem)
    };
    store.put(&key, bytes).unwrap();
}

/// Writes the `start` row of a session by `user` on `host` starting at `start_ns`.
fn put_start(store: &LocalStore, offset: u64, id: SessionId, start_ns: i64, user: &str) {
    let meta_bytes = SessionStart {
        user: user.into(),
        host: format!("{user}-host"),
        start_time_ns: start_ns,
        cols: 80,
        rows: 24,
        ..Default::default()
    }
    .to_bytes();
    let mut r: SessionRow = srow(id, EventKind::Start, 0, 0, meta_bytes);
    r.time_ns = start_ns;
    let mut rows = vec![r];
    put(
        store,
        "sessions",
        offset,
        start_ns,
        &encode_sessions(&mut rows, &meta()).unwrap(),
    );
}

/// Writes rows where the shell prints a prompt and the user runs `line`, which prints
/// `printed`; seqs from `seq`.
fn put_command(
    store: &LocalStore,
    offset: u64,
    id: SessionId,
    start_ns: i64,
    seq: u64,
    line: &str,
    printed: &str,
) {
    let mut rows: Vec<EventRow> = vec![
        row(id, seq, EventKind::Output, b"$ "),
        row(
            id,
            seq + 1,
            EventKind::Input,
            format!("{line}\r").as_bytes(),
        ),
        row(
            id,
            seq + 2,
            EventKind::Output,
            format!("{line}\r\n{printed}\r\n").as_bytes(),
        ),
    ];
    let session_start = id.start_time_ns().unwrap();
    for r in &mut rows {
        r.time_ns = r.time_ns - T0 + start_ns;
        r.elapsed_ns = (r.time_ns - session_start) as u64;
    }
    put(
        store,
        "events",
        offset,
        start_ns,
        &encode_events(&mut rows, &meta()).unwrap(),
    );
}

fn no_unseal(_: &OpenedSession) -> Option<Vec<Event>> {
    None
}

fn run(store: &LocalStore, dir: &Path, rebuild: bool) -> UpdateReport {
    let mut unseal = no_unseal;
    let hooks = Hooks {
        unseal: &mut unseal,
        observe: &mut |_| {},
        listing: &mut |i, _| Some(format!("{{\"id\":\"{}\"}}", i.id)),
        progress: &mut |_, _| {},
    };
    update(store, dir, rebuild, hooks).unwrap()
}

fn q(text: &str) -> SearchQuery {
    SearchQuery {
        text: text.into(),
        limit: 20,
        ..Default::default()
    }
}

struct Fixture {
    _tmp: tempfile::TempDir,
    store: LocalStore,
    dir: PathBuf,
    a: SessionId,
    b: SessionId,
}

/// Alice's session on T0's day runs `printf haystack-unique123`; Bob's, two days later,
/// runs `ls /etc`.
fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let store = LocalStore::new(tmp.path().join("store")).unwrap();
    let dir = tmp.path().join("index");
    let (a, b) = (id_at(T0, 1), id_at(T0 + 2 * DAY_NS, 2));
    put_start(&store, 0, a, T0, "alice");
    put_start(&store, 1, b, T0 + 2 * DAY_NS, "bob");
    put_command(
        &store,
        10,
        a,
        T0,
        1,
        "printf 'haystack-%s\\n' unique123",
        "haystack-unique123",
    );
    put_command(
        &store,
        20,
        b,
        T0 + 2 * DAY_NS,
        1,
        "ls /etc",
        "passwd  hosts",
    );
    Fixture {
        _tmp: tmp,
        store,
        dir,
        a,
        b,
    }
}

#[test]
fn commands_are_found_by_command_output_prefix_and_field() {
    let f = fixture();
    let report = run(&f.store, &f.dir, false);
    assert_eq!(
        (report.new_objects, report.sessions, report.commands),
        (4, 2, 2)
    );
    assert!(f.dir.join("date=2026-11-27").is_dir(), "{:?}", report.days);

    let hits = search(&f.dir, &q("cmd:printf")).unwrap();
    assert_eq!(hits.len(), 1);
    let h = &hits[0];
    assert_eq!(h.session, f.a.to_string());
    assert_eq!((h.user.as_str(), h.host.as_str()), ("alice", "alice-host"));
    assert_eq!(h.command, "printf 'haystack-%s\\n' unique123");
    assert_eq!((h.index, h.offset_ns), (Some(0), 2_000_000));
    assert_eq!(h.time_ns, T0 + 2_000_000);

    let hits = search(&f.dir, &q("unique123")).unwrap();
    assert_eq!(hits.len(), 1);
    let h = &hits[0];
    assert!(!h.highlighted.is_empty(), "{h:?}");
    assert!(
        h.snippet[h.highlighted[0].clone()].contains("unique123"),
        "{h:?}"
    );

    // A prefix's match is marked too: the words it stood for.
    let hits = search(&f.dir, &q("passw*")).unwrap();
    assert_eq!(hits[0].session, f.b.to_string());
    let h = &hits[0];
    assert!(!h.highlighted.is_empty(), "{h:?}");
    assert_eq!(&h.snippet[h.highlighted[0].clone()], "passwd", "{h:?}");
    let h = &search(&f.dir, &q("cmd:prin*")).unwrap()[0];
    assert!(
        h.highlighted
            .iter()
            .any(|r| h.snippet[r.clone()].starts_with("printf")),
        "{h:?}"
    );
    assert_eq!(
        search(&f.dir, &q("output:\"passwd hosts\"")).unwrap().len(),
        1
    );
    assert_eq!(search(&f.dir, &q("user:bob cmd:ls")).unwrap().len(), 1);
    assert!(search(&f.dir, &q("user:alice cmd:ls")).unwrap().is_empty());
    let mut by_host = q("");
    by_host.host = Some("bob-host".into());
    assert_eq!(search(&f.dir, &by_host).unwrap().len(), 1);
    // Newest first.
    let all = search(&f.dir, &q("")).unwrap();
    assert_eq!(
        all.iter().map(|h| h.session.clone()).collect::<Vec<_>>(),
        vec![f.b.to_string(), f.a.to_string()]
    );
    assert!(matches!(
        search(&f.dir, &q("cmd:(")),
        Err(IndexError::Query(_))
    ));
}

#[test]
fn a_second_run_without_new_objects_changes_nothing() {
    let f = fixture();
    run(&f.store, &f.dir, false);
    let manifest = std::fs::read(f.dir.join(MANIFEST_FILE)).unwrap();
    let report = run(&f.store, &f.dir, false);
    assert_eq!(report, UpdateReport::default());
    assert_eq!(std::fs::read(f.dir.join(MANIFEST_FILE)).unwrap(), manifest);
    assert_eq!(stale_objects(&f.store, &f.dir).unwrap(), 0);
}

#[test]
fn a_new_object_reindexes_only_the_sessions_it_touches() {
    let f = fixture();
    run(&f.store, &f.dir, false);
    put_command(&f.store, 30, f.b, T0 + 2 * DAY_NS, 4, "uname -a", "Linux");
    assert_eq!(stale_objects(&f.store, &f.dir).unwrap(), 1);
    let report = run(&f.store, &f.dir, false);
    assert_eq!((report.new_objects, report.sessions), (1, 1));
    assert_eq!(report.days, vec![schemas::time::date(T0 + 2 * DAY_NS)]);
    let mut bob = q("");
    bob.user = Some("bob".into());
    let hits = search(&f.dir, &bob).unwrap();
    let lines: Vec<&str> = hits.iter().map(|h| h.command.as_str()).collect();
    assert_eq!(lines, vec!["uname -a", "ls /etc"]);
    assert_eq!(search(&f.dir, &q("cmd:printf")).unwrap().len(), 1);
}

#[test]
fn a_crash_between_the_commits_and_the_manifest_leaves_no_duplicates() {
    let f = fixture();
    run(&f.store, &f.dir, false);
    put_command(&f.store, 30, f.a, T0, 4, "uname -a", "Linux");
    let mut unseal = no_unseal;
    let hooks = Hooks {
        unseal: &mut unseal,
        observe: &mut |_| {},
        listing: &mut |i, _| Some(format!("{{\"id\":\"{}\"}}", i.id)),
        progress: &mut |_, _| {},
    };
    let crash = update_inner(&f.store, &f.dir, false, hooks, &mut |_| {
        Err(IndexError::Query("crash".into()))
    });
    assert!(crash.is_err());
    // The day was committed, the manifest was not written: the object is still new.
    assert_eq!(stale_objects(&f.store, &f.dir).unwrap(), 1);
    assert_eq!(search(&f.dir, &q("cmd:uname")).unwrap().len(), 1);
    let report = run(&f.store, &f.dir, false);
    assert_eq!(report.sessions, 1);
    assert_eq!(search(&f.dir, &q("cmd:uname")).unwrap().len(), 1);
    assert_eq!(search(&f.dir, &q("cmd:printf")).unwrap().len(), 1);
    let mut alice = q("");
    alice.user = Some("alice".into());
    assert_eq!(search(&f.dir, &alice).unwrap().len(), 2);
}

#[test]
fn a_time_bounded_query_opens_only_the_days_that_can_match() {
    let f = fixture();
    run(&f.store, &f.dir, false);
    let (day_a, day_b) = (
        schemas::time::date(T0),
        schemas::time::date(T0 + 2 * DAY_NS),
    );
    assert_eq!(
        days_to_open(&f.dir, None, None).unwrap(),
        vec![day_a.clone(), day_b.clone()]
    );
    assert_eq!(
        days_to_open(&f.dir, Some(T0 + DAY_NS), None).unwrap(),
        vec![day_b.clone()]
    );
    assert_eq!(
        days_to_open(&f.dir, None, Some(T0 + DAY_NS)).unwrap(),
        vec![day_a.clone()]
    );
    // A session that runs past midnight keeps its day open for a later `--since`.
    put_command(&f.store, 30, f.a, T0 + DAY_NS, 4, "uname -a", "Linux");
    run(&f.store, &f.dir, false);
    assert_eq!(
        days_to_open(&f.dir, Some(T0 + DAY_NS / 2), None).unwrap(),
        vec![day_a, day_b]
    );
    let mut since = q("");
    since.since_ns = Some(T0 + DAY_NS / 2);
    let lines: Vec<String> = search(&f.dir, &since)
        .unwrap()
        .into_iter()
        .map(|h| h.command)
        .collect();
    assert_eq!(lines, vec!["ls /etc", "uname -a"]);
}

#[test]
fn a_missing_index_says_so_and_rebuild_gives_the_same_answers() {
    let f = fixture();
    assert!(matches!(
        search(&f.dir, &q("x")),
        Err(IndexError::Missing { .. })
    ));
    run(&f.store, &f.dir, false);
    let before = search(&f.dir, &q("")).unwrap();
    let report = run(&f.store, &f.dir, true);
    assert_eq!(report.sessions, 2);
    assert_eq!(search(&f.dir, &q("")).unwrap(), before);
}

#[test]
fn a_sealed_session_is_indexed_by_its_metadata_only() {
    let f = fixture();
    let c = id_at(T0, 3);
    put_start(&f.store, 40, c, T0, "carol");
    let mut rows = vec![row(c, 1, RowKind::Sealed, b"ciphertext printf")];
    put(
        &f.store,
        "events",
        50,
        T0,
        &encode_events(&mut rows, &meta()).unwrap(),
    );
    let report = run(&f.store, &f.dir, false);
    assert_eq!((report.sessions, report.commands), (3, 2));
    let mut carol = q("");
    carol.user = Some("carol".into());
    assert!(search(&f.dir, &carol).unwrap().is_empty());
}

fn listed(dir: &Path, q: ListQuery) -> Vec<String> {
    list_sessions(dir, &q)
        .unwrap()
        .into_iter()
        .map(|l| l.session)
        .collect()
}

#[test]
fn sessions_are_listed_from_their_documents_with_filters() {
    let f = fixture();
    run(&f.store, &f.dir, false);
    let all = list_sessions(&f.dir, &ListQuery::default()).unwrap();
    // Oldest first, each with the listing the hook gave and its start.
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].session, f.a.to_string());
    assert_eq!(all[0].start_ns, T0);
    assert_eq!(all[0].listing, format!("{{\"id\":\"{}\"}}", f.a));
    assert_eq!(all[1].session, f.b.to_string());
    let user = |u: &str| ListQuery {
        user: Some(u.into()),
        ..Default::default()
    };
    assert_eq!(listed(&f.dir, user("bob")), vec![f.b.to_string()]);
    assert!(listed(&f.dir, user("nobody")).is_empty());
    let host = ListQuery {
        host: Some("alice-host".into()),
        ..Default::default()
    };
    assert_eq!(listed(&f.dir, host), vec![f.a.to_string()]);
    // A limit keeps the latest, still oldest first.
    let one = ListQuery {
        limit: Some(1),
        ..Default::default()
    };
    assert_eq!(listed(&f.dir, one), vec![f.b.to_string()]);
    // Re-indexing leaves one session document per session.
    run(&f.store, &f.dir, true);
    assert_eq!(listed(&f.dir, ListQuery::default()).len(), 2);
}

#[test]
fn a_time_bounded_listing_opens_only_the_days_that_can_hold_it() {
    let f = fixture();
    run(&f.store, &f.dir, false);
    let since = |t: i64| ListQuery {
        since_ns: Some(t),
        ..Default::default()
    };
    assert_eq!(listed(&f.dir, since(T0 + DAY_NS)), vec![f.b.to_string()]);
    assert!(listed(&f.dir, since(T0 + 3 * DAY_NS)).is_empty());
    let until = ListQuery {
        until_ns: Some(T0 + DAY_NS),
        ..Default::default()
    };
    assert_eq!(listed(&f.dir, until), vec![f.a.to_string()]);
    // Bob's day is not opened for a range that ends before it: removing it changes
    // nothing.
    std::fs::remove_dir_all(day_dir(&f.dir, &schemas::time::date(T0 + 2 * DAY_NS))).unwrap();
    let until = ListQuery {
        until_ns: Some(T0 + DAY_NS),
        ..Default::default()
    };
    assert_eq!(listed(&f.dir, until), vec![f.a.to_string()]);
}

#[test]
fn an_index_of_an_older_format_is_refused_then_rebuilt() {
    let f = fixture();
    run(&f.store, &f.dir, false);
    let mut m = Manifest::load(&f.dir).unwrap().unwrap();
    m.version = 1;
    m.store(&f.dir).unwrap();
    assert!(matches!(
        list_sessions(&f.dir, &ListQuery::default()),
        Err(IndexError::Outdated { .. })
    ));
    let r = run(&f.store, &f.dir, false);
    assert_eq!(r.sessions, 2);
    assert_eq!(listed(&f.dir, ListQuery::default()).len(), 2);
}
