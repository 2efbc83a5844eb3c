//! `replay review`: record who reviewed which session, when, and what they decided;
//! `replay review-key`: make a reviewer's signing key.

use std::path::Path;

use anyhow::Context;
use integrity::NodeKey;
use review::{Decision, Review, SignatureState};
use schemas::text::escape_controls;
use search::CatalogError;

use crate::cli::{ReviewArgs, ReviewDecision, ReviewKeyArgs};
use crate::cmd::Failure;
use crate::open::StoreArgs;

/// Records one review.
pub fn run(store_args: &StoreArgs, args: ReviewArgs) -> anyhow::Result<()> {
    // The key first: a review that was meant to be signed must not go in unsigned.
    let signer = args
        .reviewer_key
        .as_deref()
        .map(load_reviewer_key)
        .transpose()?;
    let (_, store) = store_args.open()?;
    let id = match search::find_session(store.as_ref(), &args.session) {
        Ok(id) => id.to_string(),
        Err(e @ (CatalogError::SessionNotFound { .. } | CatalogError::AmbiguousSession { .. })) => {
            return Err(Failure::NotFound(format!("{e}; nothing was recorded")).into());
        }
        Err(e) => {
            return Err(anyhow::Error::new(e).context(format!(
                "cannot look up session '{}' in {}",
                escape_controls(&args.session),
                store.describe()
            )));
        }
    };
    let decision = match args.decision {
        ReviewDecision::Ok => Decision::Ok,
        ReviewDecision::Escalate => Decision::Escalate,
    };
    let review = Review {
        session_id: id.clone(),
        reviewer: args.reviewer.unwrap_or_else(review::login_user),
        decision,
        comment: args.comment,
        time_ns: schemas::time::now_ns(),
        host: review::host_name(),
        signature: SignatureState::Unsigned,
        key: String::new(),
    };
    crate::access::record(store.as_ref(), "review", &[&id], decision.as_str())?;
    let key = review::record_review(store.as_ref(), &review, signer.as_ref())?;
    let signed = match &signer {
        Some(k) => format!("signed with {}", k.public()),
        None => "unsigned".to_string(),
    };
    println!(
        "{id}: {decision} by {}@{}, {signed}; stored as {key}",
        escape_controls(&review.reviewer),
        escape_controls(&review.host),
    );
    Ok(())
}

/// Loads a reviewer key that must exist.
fn load_reviewer_key(path: &Path) -> anyhow::Result<NodeKey> {
    NodeKey::load(path)
        .with_context(|| format!("cannot use reviewer key {}", path.display()))?
        .with_context(|| {
            format!(
                "there is no reviewer key at {}; create one with `replay review-key --reviewer-key {}`",
                path.display(),
                path.display()
            )
        })
}

/// `replay review-key`: creates the key if missing, prints its trust-file line.
pub fn key(args: ReviewKeyArgs) -> anyhow::Result<()> {
    let path = &args.reviewer_key;
    let (key, created) = NodeKey::load_or_create(path)
        .with_context(|| format!("cannot create or read reviewer key {}", path.display()))?;
    let name = args.reviewer.unwrap_or_else(review::login_user);
    println!("{} {}", key.public(), escape_controls(&name));
    eprintln!(
        "replay: {} reviewer key {}; add the line above to the reviewers' trust file of every auditor\n  \
         who checks reviews (<data dir>/trusted-reviewers, or --reviewer-trust FILE), not to the node trust file",
        if created { "created" } else { "read" },
        path.display()
    );
    Ok(())
}
