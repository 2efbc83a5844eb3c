//! `replay purge`: remove sessions' rows from every object, leaving signed tombstones;
//! `replay operator-key`: make the key that signs them.

use anyhow::Context;
use integrity::NodeKey;
use schemas::SessionId;
use schemas::text::escape_controls;
use search::CatalogError;
use store::ObjectStore;

use crate::cli::{OperatorKeyArgs, PurgeArgs};
use crate::cmd::Failure;
use crate::cmd::search::parse_time;
use crate::open::{StoreArgs, tombstones_matching, trust};

/// Purges the sessions named, or with `--expired-before` those past retention.
pub fn run(store_args: &StoreArgs, args: PurgeArgs) -> anyhow::Result<()> {
    if args.reason.trim().is_empty() {
        anyhow::bail!(
            "--reason is empty: a purge must say why; the reason is signed into each tombstone"
        );
    }
    // The key first: nothing may be removed without a tombstone that can be signed.
    let key = lifecycle::load_operator_key(&args.operator_key)?;
    let (_, store) = store_args.open()?;
    let (_, node_trust) = trust(store_args)?;
    let ids = match &args.expired_before {
        Some(when) => expired(store.as_ref(), when)?,
        None => resolve_all(store.as_ref(), &args.sessions)?,
    };
    if ids.is_empty() {
        eprintln!("replay: no session to purge");
        return Ok(());
    }
    if args.dry_run {
        for id in &ids {
            println!("{id}  would be purged");
        }
        eprintln!(
            "replay: --dry-run: {} session(s) would be purged; nothing was changed",
            ids.len()
        );
        return Ok(());
    }
    let texts: Vec<String> = ids.iter().map(ToString::to_string).collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    // Refuse a held session before the access log records a purge that will not happen.
    let (holds, _) = lifecycle::read_holds(store.as_ref())?;
    if let Some(h) = ids.iter().find_map(|id| holds.get(id)) {
        return Err(lifecycle::Error::Held {
            session: h.session_id,
            when: schemas::time::rfc3339(h.time_ns),
            who: escape_controls(&h.who),
            reason: escape_controls(&h.reason),
        }
        .into());
    }
    crate::access::record(store.as_ref(), "purge", &refs, &args.reason)?;
    let operator = lifecycle::Operator {
        key: &key,
        name: args.operator.unwrap_or_else(review::login_user),
        os_user: review::login_user(),
        host: review::host_name(),
    };
    let report = lifecycle::purge(store.as_ref(), &ids, &args.reason, &operator, &node_trust)?;
    for p in &report.purged {
        if p.resumed && p.rows == 0 {
            println!(
                "{}: already purged, no rows left; its tombstone {} stays as it is",
                p.session, p.tombstone
            );
            continue;
        }
        println!(
            "{}: purged{} ({} rows removed); tombstone {}{}",
            p.session,
            if p.resumed {
                ", finishing an earlier interrupted purge"
            } else {
                ""
            },
            p.rows,
            p.tombstone,
            if p.resumed {
                String::new()
            } else {
                format!(" signed with {}", key.public())
            }
        );
    }
    eprintln!(
        "replay: {} object(s) rewritten without the purged rows; run `replay index` to drop them from the search index",
        report.rewritten.len()
    );
    Ok(())
}

/// The sessions past retention: started before `when`, not on hold.
fn expired(store: &dyn ObjectStore, when: &str) -> anyhow::Result<Vec<SessionId>> {
    let cutoff = parse_time(when, false)?;
    let (holds, _) = lifecycle::read_holds(store)?;
    let (ids, problems) = lifecycle::expired(store, cutoff, &holds)?;
    for p in &problems {
        eprintln!(
            "replay: {}; sessions only it holds are left for the next run",
            escape_controls(&p.to_string())
        );
    }
    Ok(ids)
}

/// Each id or prefix resolved; one whose rows are gone but whose tombstone is there (an
/// interrupted purge, or a purge done) is taken from the tombstone, so that running the
/// same purge again finishes it.
fn resolve_all(store: &dyn ObjectStore, queries: &[String]) -> anyhow::Result<Vec<SessionId>> {
    let mut ids = Vec::new();
    for q in queries {
        let id = match search::find_session(store, q) {
            Ok(id) => id,
            Err(e @ CatalogError::SessionNotFound { .. }) => {
                match tombstones_matching(store, q)?.as_slice() {
                    [t] => t.tombstone.session_id,
                    _ => return Err(Failure::NotFound(format!("{e}; nothing was purged")).into()),
                }
            }
            Err(e @ CatalogError::AmbiguousSession { .. }) => {
                return Err(Failure::NotFound(format!("{e}; nothing was purged")).into());
            }
            Err(e) => {
                return Err(anyhow::Error::new(e).context(format!(
                    "cannot look up session '{}' in {}",
                    escape_controls(q),
                    store.describe()
                )));
            }
        };
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok(ids)
}

/// `replay operator-key`: creates the key if missing, prints its trust-file line.
pub fn key(args: OperatorKeyArgs) -> anyhow::Result<()> {
    let path = &args.operator_key;
    let (key, created) = NodeKey::load_or_create(path)
        .with_context(|| format!("cannot create or read operator key {}", path.display()))?;
    let name = args.operator.unwrap_or_else(review::login_user);
    println!("{} {}", key.public(), escape_controls(&name));
    eprintln!(
        "replay: {} operator key {}; add the line above to the operators' trust file of every auditor\n  \
         who verifies the store (<data dir>/trusted-operators, or --operator-trust FILE), not to the node trust file",
        if created { "created" } else { "read" },
        path.display()
    );
    Ok(())
}
