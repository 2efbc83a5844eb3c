//! Finding the store and the session the auditor asked for.

use std::path::{Path, PathBuf};

use anyhow::Context;
use schemas::chunk::seal::DataKey;
use schemas::data_dir::DataDir;
use schemas::{Event, RowKind, SessionId};
use search::{CatalogError, SessionInfo};
use store::parquet_io::EventRef;
use store::{ObjectStore, StoreError, StoreUrl};

use crate::cmd::Failure;

/// The global options that choose the store.
#[derive(Clone, Debug, Default)]
pub struct StoreArgs {
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--store`.
    pub store: Option<String>,
    /// `--s3-*`, `--sse*`.
    pub s3: store::S3Args,
    /// `--trust`.
    pub trust: Option<PathBuf>,
    /// `--identity`, `--kms*`: how to open sealed sessions.
    pub keys: envelope::IdentityArgs,
    /// `--operator-trust`.
    pub operator_trust: Option<PathBuf>,
}

impl StoreArgs {
    /// The index directory: `flag` (a command's `--index`), else `<data dir>/index`.
    pub fn index_dir(&self, flag: Option<&Path>) -> anyhow::Result<PathBuf> {
        Ok(match flag {
            Some(p) => p.to_path_buf(),
            None => DataDir::resolve(self.data_dir.as_deref())?.index(),
        })
    }

    /// The store URL: `--store`, else `<data dir>/store`.
    pub fn url(&self) -> anyhow::Result<StoreUrl> {
        Ok(match &self.store {
            Some(s) => self.s3.store_url(s)?,
            None => StoreUrl::Local(DataDir::resolve(self.data_dir.as_deref())?.store()),
        })
    }

    /// Opens the store.
    pub fn open(&self) -> anyhow::Result<(StoreUrl, Box<dyn ObjectStore>)> {
        let url = self.url()?;
        let store = url.open().map_err(|e| match e {
            // It names the store and the action already.
            e @ store::StoreError::Remote { .. } => anyhow::Error::new(e),
            e => anyhow::Error::new(e).context(format!("cannot open store {url}")),
        })?;
        Ok((url, store))
    }
}

/// The trust file's keys: `--trust` (must exist), else `<data dir>/trusted-keys` (empty
/// if missing). Returns the path too, for messages.
pub fn trust(args: &StoreArgs) -> anyhow::Result<(PathBuf, integrity::TrustSet)> {
    trust_file(args.trust.as_deref(), || {
        Ok(DataDir::resolve(args.data_dir.as_deref())?.trusted_keys())
    })
}

/// A trust file: `given` (which must exist), else the default path (no key trusted if it
/// is missing).
fn trust_file(
    given: Option<&Path>,
    default: impl FnOnce() -> anyhow::Result<PathBuf>,
) -> anyhow::Result<(PathBuf, integrity::TrustSet)> {
    if let Some(path) = given {
        let set = integrity::TrustSet::load(path)?;
        return Ok((path.to_path_buf(), set));
    }
    let path = default()?;
    match integrity::TrustSet::load(&path) {
        Ok(set) => Ok((path, set)),
        Err(integrity::KeyError::Io { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            Ok((path, integrity::TrustSet::default()))
        }
        Err(e) => Err(e.into()),
    }
}

/// File name of the operators' trust file in the data directory.
pub const TRUSTED_OPERATORS: &str = "trusted-operators";

/// The operators' trust file (tombstones): `--operator-trust` (must exist), else
/// `<data dir>/trusted-operators` (no key trusted if missing). Kept apart from the node
/// trust file, so that an operator's key never vouches for a recording, nor a node's key
/// for the erasure of one.
pub fn operator_trust(args: &StoreArgs) -> anyhow::Result<(PathBuf, integrity::TrustSet)> {
    trust_file(args.operator_trust.as_deref(), || {
        Ok(DataDir::resolve(args.data_dir.as_deref())?
            .0
            .join(TRUSTED_OPERATORS))
    })
}

/// Every session in the store, and the objects that could not be read (reported on
/// stderr and skipped). `observe` sees every `events` row read, in the same pass.
pub fn sessions(
    store: &dyn ObjectStore,
    observe: impl FnMut(&EventRef<'_>),
) -> anyhow::Result<(Vec<SessionInfo>, Vec<StoreError>)> {
    let (sessions, problems) = search::list_sessions_observing(store, observe)
        .with_context(|| format!("cannot list the sessions in {}", store.describe()))?;
    for p in &problems {
        eprintln!("replay: skipped an unreadable object: {p}");
    }
    Ok((sessions, problems))
}

/// A session's metadata and its events in order.
pub struct OpenSession {
    /// What the catalog knows.
    pub info: SessionInfo,
    /// Every stored event, by seq, without duplicates.
    pub events: Vec<Event>,
}

/// Resolves an id or unique prefix and reads the session's events.
///
/// This does not list the store: it reads only the objects and row groups that can hold
/// the session (footers and ranged reads), so that one export from a large S3 store costs
/// a handful of requests.
///
/// A sealed session's chunks are opened with the `--identity` keys (or KMS with `--kms`);
/// without a key that opens it, this fails with one line naming the session and who it
/// was sealed for.
pub fn open_session(
    store: &dyn ObjectStore,
    query: &str,
    keys: &envelope::IdentityArgs,
) -> anyhow::Result<OpenSession> {
    let opened = find(store, query, |_| {})?;
    let events = if opened.info.sealed {
        unseal(&opened.info, &opened.rows, keys)?
    } else {
        opened.rows.iter().filter_map(|r| r.to_event()).collect()
    };
    Ok(OpenSession {
        info: opened.info,
        events,
    })
}

/// Resolves an id or unique prefix and reads the session's rows, showing each to
/// `observe`; unreadable objects are reported on stderr and skipped. A session that is not
/// there (or a prefix that is ambiguous) is [`Failure::NotFound`].
pub fn find(
    store: &dyn ObjectStore,
    query: &str,
    observe: impl FnMut(&EventRef<'_>),
) -> anyhow::Result<search::OpenedSession> {
    match search::find_and_open_session_observing(store, query, observe) {
        Ok(opened) => {
            for p in &opened.warnings {
                eprintln!("replay: skipped an unreadable object: {p}");
            }
            Ok(opened)
        }
        Err(e @ CatalogError::SessionNotFound { .. }) => match purged_note(store, query) {
            Some(note) => Err(Failure::NotFound(note).into()),
            None => Err(Failure::NotFound(e.to_string()).into()),
        },
        Err(e @ CatalogError::AmbiguousSession { .. }) => {
            Err(Failure::NotFound(e.to_string()).into())
        }
        Err(e) => Err(anyhow::Error::new(e).context(format!(
            "cannot read session '{query}' from {}",
            store.describe()
        ))),
    }
}

/// The tombstones whose session id starts with what the user typed (hyphenated or not,
/// any case), read without judging their signatures.
pub fn tombstones_matching(
    store: &dyn ObjectStore,
    query: &str,
) -> anyhow::Result<Vec<lifecycle::CheckedTombstone>> {
    let q = query.trim().to_ascii_lowercase().replace('-', "");
    if q.is_empty() {
        return Ok(Vec::new());
    }
    let (all, _) = lifecycle::read_tombstones(store, &integrity::TrustSet::default())?;
    Ok(all
        .into_iter()
        .filter(|t| {
            t.tombstone
                .session_id
                .0
                .simple()
                .to_string()
                .starts_with(&q)
        })
        .collect())
}

/// "session … was purged on … by …: …" when a tombstone names the session `query` asks
/// for. Its signature is not judged here (no operator trust file at hand), so the text
/// says where to check it.
fn purged_note(store: &dyn ObjectStore, query: &str) -> Option<String> {
    let found = tombstones_matching(store, query).ok()?;
    let [t] = found.as_slice() else {
        return None;
    };
    Some(format!(
        "{}; run `replay verify {}` to check the tombstone's signature",
        purged_line(&t.tombstone),
        t.tombstone.session_id
    ))
}

/// "session ID was purged on TIME by WHO (OS user U on HOST): REASON", escaped.
pub fn purged_line(t: &lifecycle::Tombstone) -> String {
    schemas::text::escape_controls(&format!(
        "session {} was purged on {} by {} (OS user {} on {}): {}",
        t.session_id,
        schemas::time::rfc3339(t.time_ns),
        t.purged_by,
        t.os_user,
        t.host,
        t.reason
    ))
}

/// The events of a session with sealed rows, in seq order.
pub fn unseal(
    info: &SessionInfo,
    rows: &[store::EventRow],
    keys: &envelope::IdentityArgs,
) -> anyhow::Result<Vec<Event>> {
    let key = session_key(info, keys)?;
    let id = info.id;
    let (events, unopened) = open_rows(id, rows.iter().map(Row::from), &key);
    for u in unopened {
        // Shown as a gap rather than refusing the whole session; `replay verify` says
        // exactly what happened.
        eprintln!(
            "replay: session {id}: the sealed chunk at seq {}..{} does not open ({}); skipped, run `replay verify {id}`",
            u.seq, u.seq_last, u.reason
        );
    }
    Ok(events)
}

/// The data key of a sealed session, unwrapped with the `--identity` keys (or KMS).
pub fn session_key(info: &SessionInfo, keys: &envelope::IdentityArgs) -> anyhow::Result<DataKey> {
    let id = info.id;
    let Some(envelope) = info.start.as_ref().and_then(|s| s.envelope.as_ref()) else {
        anyhow::bail!(
            "session {id} has sealed rows but no readable start event carrying its envelope, so its key cannot be unwrapped"
        );
    };
    let identities = keys.identities()?;
    Ok(envelope::open_envelope(
        &id.to_string(),
        envelope,
        &identities,
        keys.kms_options().as_ref(),
    )?)
}

/// What [`open_rows`] needs of a stored row.
#[derive(Clone, Copy, Debug)]
pub struct Row<'a> {
    /// First seq.
    pub seq: u64,
    /// Last seq (sealed chunks).
    pub seq_last: u64,
    /// Nanoseconds since the start.
    pub elapsed_ns: u64,
    /// What it holds.
    pub kind: &'a RowKind,
    /// Its bytes.
    pub data: &'a [u8],
}

impl<'a> From<&'a store::EventRow> for Row<'a> {
    fn from(r: &'a store::EventRow) -> Row<'a> {
        Row {
            seq: r.seq,
            seq_last: r.seq_last,
            elapsed_ns: r.elapsed_ns,
            kind: &r.kind,
            data: &r.data,
        }
    }
}

/// A sealed row that [`open_rows`] could not open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unopened {
    /// First seq of the chunk.
    pub seq: u64,
    /// Last seq of the chunk.
    pub seq_last: u64,
    /// Why.
    pub reason: String,
}

/// The events of a session's rows (any order), sealed chunks opened with `key`, in seq
/// order without duplicates; and the sealed rows that did not open (or belong to another
/// session). Plaintext rows of kinds this build does not know are left out.
pub fn open_rows<'a>(
    id: SessionId,
    rows: impl IntoIterator<Item = Row<'a>>,
    key: &DataKey,
) -> (Vec<Event>, Vec<Unopened>) {
    let mut events = Vec::new();
    let mut unopened = Vec::new();
    for row in rows {
        if *row.kind != RowKind::Sealed {
            events.extend(row.kind.event().map(|kind| Event {
                seq: row.seq,
                elapsed_ns: row.elapsed_ns,
                kind,
                data: row.data.to_vec(),
            }));
            continue;
        }
        let opened = schemas::chunk::seal::SealedChunk::parse(row.data)
            .and_then(|c| c.open(key))
            .map_err(|e| e.to_string())
            .and_then(|c| {
                if c.session_id == id {
                    Ok(c.events)
                } else {
                    Err(format!("it belongs to session {}", c.session_id))
                }
            });
        match opened {
            Ok(evs) => events.extend(evs),
            Err(reason) => unopened.push(Unopened {
                seq: row.seq,
                seq_last: row.seq_last,
                reason,
            }),
        }
    }
    events.sort_by_key(|e| e.seq);
    events.dedup_by_key(|e| e.seq);
    (events, unopened)
}
