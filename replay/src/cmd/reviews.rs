//! `replay reviews`: the reviews in the store and what their signatures prove.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use integrity::{PublicKey, TrustSet};
use review::{Review, SignatureState};
use schemas::data_dir::DataDir;
use schemas::text::escape_controls;
use schemas::time::rfc3339;
use serde_json::json;

use crate::cli::ReviewsArgs;
use crate::cmd::Failure;
use crate::open::StoreArgs;

/// File name of the reviewers' trust file in the data directory.
pub const TRUSTED_REVIEWERS: &str = "trusted-reviewers";

/// The reviewers' trust file: `flag` (must exist), else `<data dir>/trusted-reviewers`
/// (no key trusted if missing). Kept apart from the node trust file, so that a reviewer's
/// key never vouches for a recording and a node's key never for a review.
pub fn reviewer_trust(
    store_args: &StoreArgs,
    flag: Option<&Path>,
) -> anyhow::Result<(PathBuf, TrustSet)> {
    if let Some(path) = flag {
        return Ok((path.to_path_buf(), TrustSet::load(path)?));
    }
    let path = DataDir::resolve(store_args.data_dir.as_deref())?
        .0
        .join(TRUSTED_REVIEWERS);
    match TrustSet::load(&path) {
        Ok(set) => Ok((path, set)),
        Err(integrity::KeyError::Io { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            Ok((path, TrustSet::default()))
        }
        Err(e) => Err(e.into()),
    }
}

/// Lists reviews.
pub fn run(store_args: &StoreArgs, args: ReviewsArgs) -> anyhow::Result<()> {
    let (_, trust) = reviewer_trust(store_args, args.reviewer_trust.as_deref())?;
    let (_, store) = store_args.open()?;
    let (reviews, problems) = review::read_reviews(store.as_ref(), &trust)
        .with_context(|| format!("cannot read the reviews in {}", store.describe()))?;
    let prefix = args
        .session
        .as_deref()
        .map(|s| s.trim().to_ascii_lowercase());
    let shown: Vec<&Review> = reviews
        .iter()
        .filter(|r| {
            prefix
                .as_deref()
                .is_none_or(|p| r.session_id.starts_with(p))
        })
        .collect();
    let mut out = std::io::stdout().lock();
    for r in &shown {
        if args.json {
            serde_json::to_writer(&mut out, &to_json(r, &trust))?;
            writeln!(out)?;
        } else {
            writeln!(out, "{}", text_line(r, &trust))?;
        }
    }
    out.flush()?;
    for p in &problems {
        eprintln!("replay: {}", escape_controls(&p.to_string()));
    }
    let bad = shown
        .iter()
        .filter(|r| r.signature == SignatureState::Bad)
        .count();
    if bad > 0 || !problems.is_empty() {
        return Err(Failure::NotVerified(format!(
            "{bad} reviews with a bad signature (changed after they were signed), {} objects unreadable or changed",
            problems.len()
        ))
        .into());
    }
    if shown.is_empty() {
        return Err(Failure::NotFound(match &args.session {
            Some(s) => format!("no reviews of session {}", escape_controls(s)),
            None => format!("no reviews in {}", store.describe()),
        })
        .into());
    }
    Ok(())
}

/// The name the trust file gives a key (its comment), else the key.
fn signer_name(key: &str, trust: &TrustSet) -> String {
    key.parse::<PublicKey>()
        .ok()
        .and_then(|k| trust.get(&k).filter(|c| !c.is_empty()).map(str::to_string))
        .unwrap_or_else(|| key.to_string())
}

/// `verified (NAME)`, `untrusted (KEY)`, `unsigned` or `BAD SIGNATURE`.
pub fn signature_text(state: &SignatureState, trust: &TrustSet) -> String {
    match state {
        SignatureState::Unsigned => "unsigned".into(),
        SignatureState::Verified { key } => {
            format!("verified ({})", escape_controls(&signer_name(key, trust)))
        }
        SignatureState::Untrusted { key } => format!("untrusted ({key})"),
        SignatureState::Bad => "BAD SIGNATURE".into(),
    }
}

fn text_line(r: &Review, trust: &TrustSet) -> String {
    format!(
        "{}  {}  {:<8}  {}@{}  {}  {}",
        rfc3339(r.time_ns),
        r.session_id,
        r.decision,
        escape_controls(&r.reviewer),
        escape_controls(&r.host),
        signature_text(&r.signature, trust),
        escape_controls(r.comment.as_deref().unwrap_or("")),
    )
}

fn to_json(r: &Review, trust: &TrustSet) -> serde_json::Value {
    let (state, key) = match &r.signature {
        SignatureState::Unsigned => ("unsigned", None),
        SignatureState::Verified { key } => ("verified", Some(key)),
        SignatureState::Untrusted { key } => ("untrusted", Some(key)),
        SignatureState::Bad => ("bad", None),
    };
    json!({
        "session_id": r.session_id,
        "reviewer": r.reviewer,
        "decision": r.decision.as_str(),
        "comment": r.comment,
        "time": rfc3339(r.time_ns),
        "time_ns": r.time_ns,
        "host": r.host,
        "signature": state,
        "signer_key": key,
        "signer": match state {
            "verified" => key.map(|k| signer_name(k, trust)),
            _ => None,
        },
        "key": r.key,
    })
}
