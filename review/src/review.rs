//! Reviews: who decided what about which session, and when; signed when a key is given.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use integrity::{NodeKey, PublicKey, TrustSet};
use serde::{Deserialize, Serialize};
use store::ObjectStore;

use crate::object::{self, Stored};
use crate::{DecodeError, Error, FORMAT_VERSION, Problem};

/// Domain string at the start of every signed review message.
const DOMAIN: &[u8] = b"auditty-review-v1\0";

/// What the reviewer decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Decision {
    /// Seen; nothing to follow up.
    Ok,
    /// Needs someone else to look at it (an incident, a policy breach).
    Escalate,
}

impl Decision {
    /// `ok` or `escalate`, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Ok => "ok",
            Decision::Escalate => "escalate",
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Decision {
    type Err = String;
    fn from_str(s: &str) -> Result<Decision, String> {
        match s {
            "ok" => Ok(Decision::Ok),
            "escalate" => Ok(Decision::Escalate),
            other => Err(format!(
                "'{}' is not a decision (ok or escalate)",
                schemas::text::escape_controls(&other.chars().take(40).collect::<String>())
            )),
        }
    }
}

/// What a review's signature proves.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SignatureState {
    /// Not signed: anyone with write access to the store could have written it.
    Unsigned,
    /// Signed by `key`, which the reviewers' trust file holds.
    Verified {
        /// The public key, `ed25519:BASE64`.
        key: String,
    },
    /// Signed by `key`, which the trust file does not hold: proves nothing about who.
    Untrusted {
        /// The public key, `ed25519:BASE64`.
        key: String,
    },
    /// The signature does not match the review (changed after signing) or is malformed.
    Bad,
}

impl SignatureState {
    /// Whether the review can be counted as a review at all: anything but [`Self::Bad`].
    pub fn counts(&self) -> bool {
        !matches!(self, SignatureState::Bad)
    }
}

/// One review of one session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Review {
    /// The full session id, hyphenated.
    pub session_id: String,
    /// Who reviewed (login name, or `--reviewer`).
    pub reviewer: String,
    /// What they decided.
    pub decision: Decision,
    /// Their comment, if any.
    pub comment: Option<String>,
    /// When, UTC nanoseconds since the epoch.
    pub time_ns: i64,
    /// The host the review was recorded from.
    pub host: String,
    /// What the signature proves (set by the readers; ignored by [`record_review`]).
    pub signature: SignatureState,
    /// The object's key in the store (set by the readers; ignored by [`record_review`]).
    pub key: String,
}

/// The stored JSON (version 1). Unknown fields are ignored.
#[derive(Serialize, Deserialize)]
struct StoredReview {
    v: u32,
    session_id: String,
    reviewer: String,
    decision: String,
    #[serde(default)]
    comment: Option<String>,
    time_ns: i64,
    host: String,
    #[serde(default)]
    version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sig: Option<String>,
}

/// What a review's signature covers: the domain string, then every field but the
/// signature, each string as u32 BE length ‖ UTF-8 bytes, the comment preceded by one
/// byte (0 none, 1 some), the time as i64 BE and the 32 bytes of the signing key.
#[allow(clippy::too_many_arguments)]
pub fn review_message(
    session_id: &str,
    reviewer: &str,
    decision: Decision,
    comment: Option<&str>,
    time_ns: i64,
    host: &str,
    version: &str,
    key: &PublicKey,
) -> Vec<u8> {
    fn field(m: &mut Vec<u8>, s: &str) {
        let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
        m.extend_from_slice(&len.to_be_bytes());
        m.extend_from_slice(s.as_bytes());
    }
    let mut m = DOMAIN.to_vec();
    field(&mut m, session_id);
    field(&mut m, reviewer);
    field(&mut m, decision.as_str());
    match comment {
        Some(c) => {
            m.push(1);
            field(&mut m, c);
        }
        None => m.push(0),
    }
    m.extend_from_slice(&time_ns.to_be_bytes());
    field(&mut m, host);
    field(&mut m, version);
    m.extend_from_slice(key.as_bytes());
    m
}

fn message_of(s: &StoredReview, decision: Decision, key: &PublicKey) -> Vec<u8> {
    review_message(
        &s.session_id,
        &s.reviewer,
        decision,
        s.comment.as_deref(),
        s.time_ns,
        &s.host,
        &s.version,
        key,
    )
}

/// Writes `review` to `reviews/`, signed with `signer` if given; returns its key.
///
/// `review.signature` and `review.key` are ignored (they are what readers find). The
/// session id must be a full id (it is stored hyphenated, lowercase); the time must not
/// be before 1970; the reviewer must not be empty.
pub fn record_review(
    store: &dyn ObjectStore,
    review: &Review,
    signer: Option<&NodeKey>,
) -> Result<String, Error> {
    let invalid = |reason: String| Error::Invalid {
        what: "review",
        reason,
    };
    let session_id = review
        .session_id
        .parse::<schemas::SessionId>()
        .map_err(|_| {
            invalid(format!(
                "'{}' is not a full session id",
                schemas::text::escape_controls(&review.session_id)
            ))
        })?
        .to_string();
    if review.reviewer.trim().is_empty() {
        return Err(invalid("the reviewer's name is empty".into()));
    }
    let mut stored = StoredReview {
        v: FORMAT_VERSION,
        session_id,
        reviewer: review.reviewer.clone(),
        decision: review.decision.as_str().to_string(),
        comment: review.comment.clone(),
        time_ns: review.time_ns,
        host: review.host.clone(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        key: None,
        sig: None,
    };
    if let Some(signer) = signer {
        let public = signer.public();
        let sig = signer.sign(&message_of(&stored, review.decision, &public));
        stored.key = Some(public.to_string());
        stored.sig = Some(B64.encode(sig));
    }
    let mut bytes = serde_json::to_vec(&stored)
        .map_err(|e| invalid(format!("it does not encode as JSON: {e}")))?;
    bytes.push(b'\n');
    object::put(
        store,
        store::layout::REVIEWS,
        "review",
        review.time_ns,
        &bytes,
    )
}

/// Decodes one stored review and checks its signature against `trust`; `key` is the
/// object's key, kept in [`Review::key`]. Never panics, whatever the bytes.
pub fn decode_review(key: &str, bytes: &[u8], trust: &TrustSet) -> Result<Review, DecodeError> {
    crate::check_version(bytes)?;
    let s: StoredReview =
        serde_json::from_slice(bytes).map_err(|e| DecodeError::Json(e.to_string()))?;
    let decision: Decision = s.decision.parse().map_err(|reason| DecodeError::Field {
        field: "decision",
        reason,
    })?;
    let id: schemas::SessionId = s.session_id.parse().map_err(|_| DecodeError::Field {
        field: "session_id",
        reason: "not a session id".into(),
    })?;
    let signature = match (&s.key, &s.sig) {
        (None, None) => SignatureState::Unsigned,
        (Some(k), Some(sig)) => match (k.parse::<PublicKey>(), B64.decode(sig)) {
            (Ok(public), Ok(sig)) if public.verifies(&message_of(&s, decision, &public), &sig) => {
                if trust.get(&public).is_some() {
                    SignatureState::Verified {
                        key: public.to_string(),
                    }
                } else {
                    SignatureState::Untrusted {
                        key: public.to_string(),
                    }
                }
            }
            _ => SignatureState::Bad,
        },
        // Half a signature: someone removed the other half.
        _ => SignatureState::Bad,
    };
    Ok(Review {
        session_id: id.to_string(),
        reviewer: s.reviewer,
        decision,
        comment: s.comment,
        time_ns: s.time_ns,
        host: s.host,
        signature,
        key: key.to_string(),
    })
}

/// Every review in the store, oldest first, each signature checked against `trust` (the
/// reviewers' trust file). Objects that cannot be read or decoded, and objects that do
/// not match their names (changed or renamed after they were written; such a review is
/// still returned), are problems. Only a store that cannot be listed is an error.
pub fn read_reviews(
    store: &dyn ObjectStore,
    trust: &TrustSet,
) -> Result<(Vec<Review>, Vec<Problem>), Error> {
    let (objects, mut problems) = object::read_all(store, store::layout::REVIEWS, |_| true)?;
    let mut reviews = Vec::new();
    for o in objects {
        collect(&o, trust, &mut reviews, &mut problems);
    }
    reviews.sort_by(|a, b| (a.time_ns, &a.key).cmp(&(b.time_ns, &b.key)));
    Ok((reviews, problems))
}

fn collect(o: &Stored, trust: &TrustSet, reviews: &mut Vec<Review>, problems: &mut Vec<Problem>) {
    match decode_review(&o.key, &o.bytes, trust) {
        Ok(r) => {
            problems.extend(o.mismatch(r.time_ns));
            reviews.push(r);
        }
        Err(e) => problems.push(Problem {
            key: o.key.clone(),
            reason: format!("not a readable review: {e}"),
        }),
    }
}

/// The sessions (of `sessions`: id and end time, UTC ns) whose review is overdue at
/// `now_ns`: more than `max_age` has passed since they ended and no review of them was
/// recorded within `max_age` of their end. A review counts whatever its decision and
/// whether signed or not, unless its signature is bad. Reviews recorded late do not
/// count (the cadence was missed). Ids are compared without regard to case; the result
/// keeps the order of `sessions`, each id once.
pub fn overdue(
    reviews: &[Review],
    sessions: impl IntoIterator<Item = (String, i64)>,
    max_age: Duration,
    now_ns: i64,
) -> Vec<String> {
    let max_age_ns = i64::try_from(max_age.as_nanos()).unwrap_or(i64::MAX);
    let mut out: Vec<String> = Vec::new();
    for (id, end_ns) in sessions {
        let deadline = end_ns.saturating_add(max_age_ns);
        if now_ns <= deadline {
            continue;
        }
        let reviewed = reviews.iter().any(|r| {
            r.signature.counts() && r.session_id.eq_ignore_ascii_case(&id) && r.time_ns <= deadline
        });
        if !reviewed && !out.iter().any(|o| o.eq_ignore_ascii_case(&id)) {
            out.push(id);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use store::LocalStore;

    const ID: &str = "0191c2e4-7b1d-7c3e-9a55-1f0e2d3c4b5a";
    const T0: i64 = 1_795_823_188_000_000_000;

    fn review(decision: Decision, time_ns: i64) -> Review {
        Review {
            session_id: ID.to_uppercase(),
            reviewer: "alice".into(),
            decision,
            comment: Some("looked at the sudo part".into()),
            time_ns,
            host: "bastion-1".into(),
            signature: SignatureState::Unsigned,
            key: String::new(),
        }
    }

    fn trusting(key: &NodeKey) -> TrustSet {
        let mut t = TrustSet::default();
        t.insert(key.public(), "alice");
        t
    }

    #[test]
    fn reviews_round_trip_signed_and_unsigned() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path()).unwrap();
        let alice = NodeKey::from_seed([1; 32]);
        let mallory = NodeKey::from_seed([2; 32]);
        let k1 = record_review(&store, &review(Decision::Ok, T0), None).unwrap();
        let k2 = record_review(&store, &review(Decision::Escalate, T0 + 1), Some(&alice)).unwrap();
        let k3 = record_review(&store, &review(Decision::Ok, T0 + 2), Some(&mallory)).unwrap();
        assert!(
            k1.starts_with("reviews/date=2026-11-27/01795823188000000000-"),
            "{k1}"
        );
        let (reviews, problems) = read_reviews(&store, &trusting(&alice)).unwrap();
        assert_eq!(problems, vec![]);
        let keys: Vec<&str> = reviews.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, vec![k1.as_str(), k2.as_str(), k3.as_str()]);
        assert_eq!(reviews[0].session_id, ID, "stored lowercase");
        assert_eq!(reviews[0].signature, SignatureState::Unsigned);
        assert_eq!(
            reviews[1].signature,
            SignatureState::Verified {
                key: alice.public().to_string()
            }
        );
        assert_eq!(reviews[1].decision, Decision::Escalate);
        assert_eq!(
            reviews[2].signature,
            SignatureState::Untrusted {
                key: mallory.public().to_string()
            }
        );
        let expected = Review {
            session_id: ID.into(),
            signature: reviews[1].signature.clone(),
            key: k2.clone(),
            ..review(Decision::Escalate, T0 + 1)
        };
        assert_eq!(reviews[1], expected);
    }

    #[test]
    fn a_changed_review_has_a_bad_signature_and_does_not_match_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path()).unwrap();
        let alice = NodeKey::from_seed([1; 32]);
        let key = record_review(&store, &review(Decision::Escalate, T0), Some(&alice)).unwrap();
        let text = String::from_utf8(store.get(&key).unwrap()).unwrap();
        store
            .put(&key, text.replace("\"escalate\"", "\"ok\"").as_bytes())
            .unwrap();
        let (reviews, problems) = read_reviews(&store, &trusting(&alice)).unwrap();
        assert_eq!(reviews.len(), 1);
        assert_eq!(reviews[0].signature, SignatureState::Bad);
        assert_eq!(reviews[0].decision, Decision::Ok);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].reason.contains("changed after"), "{problems:?}");
        // Dropping the signature altogether is not an unsigned review either.
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let mut obj = v.as_object().unwrap().clone();
        obj.remove("sig");
        let r = decode_review(
            "k",
            &serde_json::to_vec(&obj).unwrap(),
            &TrustSet::default(),
        );
        assert_eq!(r.unwrap().signature, SignatureState::Bad);
    }

    #[test]
    fn unreadable_and_foreign_objects_are_problems() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path()).unwrap();
        record_review(&store, &review(Decision::Ok, T0), None).unwrap();
        store.put("reviews/notes.txt", b"hello").unwrap();
        let garbage = b"{not json";
        store
            .put(&object::key_for("reviews", T0, garbage), garbage)
            .unwrap();
        let v2 = br#"{"v":2,"session_id":"x"}"#;
        store.put(&object::key_for("reviews", T0, v2), v2).unwrap();
        let (reviews, problems) = read_reviews(&store, &TrustSet::default()).unwrap();
        assert_eq!(reviews.len(), 1);
        assert_eq!(problems.len(), 3, "{problems:#?}");
        assert!(
            problems
                .iter()
                .any(|p| p.reason.contains("format version 2 is not supported"))
        );
    }

    #[test]
    fn records_that_cannot_be_written_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path()).unwrap();
        for bad in [
            Review {
                session_id: "0191c2e4".into(),
                ..review(Decision::Ok, T0)
            },
            Review {
                reviewer: " ".into(),
                ..review(Decision::Ok, T0)
            },
            review(Decision::Ok, -1),
        ] {
            let e = record_review(&store, &bad, None).unwrap_err();
            assert!(matches!(e, Error::Invalid { .. }), "{e}");
        }
        assert!(store.list("").unwrap().is_empty());
    }

    #[test]
    fn overdue_names_sessions_not_reviewed_in_time() {
        let day = 86_400 * 1_000_000_000i64;
        let week = Duration::from_secs(7 * 86_400);
        let a = "0191c2e4-7b1d-7c3e-9a55-00000000000a".to_string();
        let b = "0191c2e4-7b1d-7c3e-9a55-00000000000b".to_string();
        let c = "0191c2e4-7b1d-7c3e-9a55-00000000000c".to_string();
        let d = "0191c2e4-7b1d-7c3e-9a55-00000000000d".to_string();
        let e = "0191c2e4-7b1d-7c3e-9a55-00000000000e".to_string();
        let at = |id: &str, t: i64, signature: SignatureState| Review {
            session_id: id.into(),
            signature,
            ..review(Decision::Ok, t)
        };
        let reviews = vec![
            at(&a, T0 + day, SignatureState::Unsigned),
            at(&b, T0 + 8 * day, SignatureState::Unsigned),
            at(&c, T0 + day, SignatureState::Bad),
        ];
        let sessions = vec![
            (a.clone(), T0),           // reviewed after a day
            (b.clone(), T0),           // reviewed, but after 8 days
            (c.clone(), T0),           // its only review is forged
            (d.clone(), T0),           // never reviewed
            (e.clone(), T0 + 5 * day), // not due yet
            (d.to_uppercase(), T0),    // listed twice
        ];
        let now = T0 + 10 * day;
        assert_eq!(overdue(&reviews, sessions, week, now), vec![b, c, d]);
    }

    proptest! {
        #[test]
        fn decoding_any_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = decode_review("k", &bytes, &TrustSet::default());
        }

        #[test]
        fn decoding_mutated_reviews_never_panics(
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
            cut in any::<usize>(),
        ) {
            let alice = NodeKey::from_seed([1; 32]);
            let dir = tempfile::tempdir().unwrap();
            let store = LocalStore::new(dir.path()).unwrap();
            let key = record_review(&store, &review(Decision::Ok, T0), Some(&alice)).unwrap();
            let mut bytes = store.get(&key).unwrap();
            for (at, b) in flips {
                let n = bytes.len();
                bytes[at % n] = b;
            }
            bytes.truncate(cut % (bytes.len() + 1));
            let trust = trusting(&alice);
            if let Ok(r) = decode_review("k", &bytes, &trust) {
                // Whatever still decodes and verifies is the review as signed.
                if matches!(r.signature, SignatureState::Verified { .. }) {
                    prop_assert_eq!(r.decision, Decision::Ok);
                    prop_assert_eq!(r.time_ns, T0);
                }
            }
        }
    }
}
