//! Issue 17, part 2: reviews and "audit the auditors". A session recorded through the real
//! agent and ingested; reviewed unsigned, signed by a trusted reviewer key and by an
//! untrusted one, one signed review then changed in the store; and every play, export,
//! search, commands and review run leaves exactly one access event naming the action,
//! the user, the session and the host.

use std::process::Output;

use auditty_tests::{Sandbox, show};

fn hostname() -> String {
    nix::unistd::gethostname()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

fn login() -> String {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .unwrap()
        .unwrap()
        .name
}

/// Stdout of a JSON Lines command, parsed.
fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}\n{}", show(out))))
        .collect()
}

fn access_log(sb: &Sandbox) -> Vec<serde_json::Value> {
    let out = sb.replay(&["access-log", "--json"]);
    // 1 with nothing listed is an empty log; anything else must be a clean listing.
    let empty = out.status.code() == Some(1) && out.stdout.is_empty();
    assert!(
        empty || (out.status.success() && out.stderr.is_empty()),
        "{}",
        show(&out)
    );
    json_lines(&out)
}

/// Runs `args`, which must succeed, and checks it left exactly one new access event, for
/// `action` on `id`, by this user on this host; returns that event.
fn one_access(sb: &Sandbox, args: &[&str], action: &str, id: &str) -> serde_json::Value {
    let before = access_log(sb).len();
    let out = sb.replay(args);
    assert!(out.status.success(), "{args:?}: {}", show(&out));
    let log = access_log(sb);
    assert_eq!(log.len(), before + 1, "{args:?} left one event: {log:#?}");
    let event = log.last().unwrap().clone();
    assert_eq!(event["action"], action, "{event:#}");
    assert_eq!(event["user"], login().as_str(), "{event:#}");
    assert_eq!(event["host"], hostname().as_str(), "{event:#}");
    assert_eq!(event["sessions"], serde_json::json!([id]), "{event:#}");
    let key = event["key"].as_str().unwrap();
    assert!(key.starts_with("access/date="), "{key}");
    event
}

#[test]
fn reviews_are_signed_and_checked_and_every_read_is_logged() {
    let sb = Sandbox::new();
    sb.run(sb.cmd("auditty-agent").args([
        "record",
        "-q",
        "--",
        "sh",
        "-c",
        "echo review-me-$((6*7)); sleep 0.2",
    ]));
    sb.ingest();
    let sessions = sb.sessions();
    assert_eq!(sessions.len(), 1, "{sessions:#?}");
    let id = sessions[0]["id"].as_str().unwrap().to_string();
    let prefix = &id[..8];
    sb.run(sb.cmd("replay").arg("index"));
    // Listing, verifying and indexing are not logged.
    assert_eq!(access_log(&sb), Vec::<serde_json::Value>::new());

    // Each read of the recording leaves one access event.
    one_access(&sb, &["play", prefix, "--speed", "100"], "play", &id);
    let e = one_access(&sb, &["export", prefix, "--format", "text"], "export", &id);
    assert_eq!(e["detail"], "text");
    let e = one_access(&sb, &["search", "review-me-42"], "search", &id);
    assert_eq!(e["detail"], "review-me-42");
    one_access(&sb, &["commands", &id], "commands", &id);

    // Reviews: unsigned, signed by a trusted key, signed by a key nobody trusts.
    let trusted_key = sb.path().join("alice.key");
    let stranger_key = sb.path().join("mallory.key");
    let line = sb.run(sb.cmd("replay").args([
        "review-key",
        "--reviewer-key",
        trusted_key.to_str().unwrap(),
        "--reviewer",
        "alice the auditor",
    ]));
    assert!(line.starts_with("ed25519:"), "{line}");
    assert!(line.trim_end().ends_with(" alice the auditor"), "{line}");
    std::fs::write(sb.data_dir().join("trusted-reviewers"), &line).unwrap();
    sb.run(sb.cmd("replay").args([
        "review-key",
        "--reviewer-key",
        stranger_key.to_str().unwrap(),
    ]));

    let e = one_access(&sb, &["review", prefix, "--decision", "ok"], "review", &id);
    assert_eq!(e["detail"], "ok");
    one_access(
        &sb,
        &[
            "review",
            &id,
            "--decision",
            "escalate",
            "--comment",
            "curl | sh as root",
            "--reviewer-key",
            trusted_key.to_str().unwrap(),
        ],
        "review",
        &id,
    );
    let mut signed_by_stranger = sb.cmd("replay");
    signed_by_stranger
        .args([
            "review",
            prefix,
            "--decision",
            "ok",
            "--reviewer",
            "mallory",
        ])
        .env("AUDITTY_REVIEWER_KEY", &stranger_key);
    sb.run(&mut signed_by_stranger);

    // Unknown sessions are refused, and nothing is recorded for them.
    let before = access_log(&sb).len();
    let out = sb.replay(&["review", "00000000", "--decision", "ok"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("00000000"),
        "{}",
        show(&out)
    );
    assert_eq!(access_log(&sb).len(), before);

    let out = sb.replay(&["reviews", "--json"]);
    assert!(out.status.success(), "{}", show(&out));
    let reviews = json_lines(&out);
    assert_eq!(reviews.len(), 3, "{reviews:#?}");
    for r in &reviews {
        assert_eq!(r["session_id"], id.as_str(), "{r:#}");
        assert_eq!(r["host"], hostname().as_str(), "{r:#}");
    }
    assert_eq!(reviews[0]["reviewer"], login().as_str());
    assert_eq!(reviews[0]["decision"], "ok");
    assert_eq!(reviews[0]["signature"], "unsigned");
    assert_eq!(reviews[1]["decision"], "escalate");
    assert_eq!(reviews[1]["comment"], "curl | sh as root");
    assert_eq!(reviews[1]["signature"], "verified");
    assert_eq!(reviews[1]["signer"], "alice the auditor");
    assert_eq!(
        reviews[1]["signer_key"].as_str(),
        line.split_whitespace().next()
    );
    assert_eq!(reviews[2]["reviewer"], "mallory");
    assert_eq!(reviews[2]["signature"], "untrusted");
    let text = sb.run(sb.cmd("replay").args(["reviews", "--session", prefix]));
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(text.contains("verified (alice the auditor)"), "{text}");
    assert!(text.contains("unsigned"), "{text}");
    assert!(text.contains("untrusted (ed25519:"), "{text}");

    // The reviews and the access log live beside the tables, and nothing that reads
    // sessions trips over them.
    let store = sb.open_store();
    assert_eq!(store.list("reviews/").unwrap().len(), 3);
    assert_eq!(store.list("access/").unwrap().len(), 7);
    sb.run(sb.cmd("replay").args(["verify", "--all"]));
    assert_eq!(sb.sessions().len(), 1);
    let index = sb.output(sb.cmd("replay").arg("index"));
    assert!(index.status.success(), "{}", show(&index));
    let ingest = sb.ingest();
    assert!(ingest.contains("0 dead letters"), "{ingest}");

    // Someone with write access turns the escalation into an ok: the signature says so.
    let key = reviews[1]["key"].as_str().unwrap();
    let stored = String::from_utf8(store.get(key).unwrap()).unwrap();
    assert!(stored.contains("\"escalate\""), "{stored}");
    store
        .put(key, stored.replace("\"escalate\"", "\"ok\"").as_bytes())
        .unwrap();
    let out = sb.replay(&["reviews", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let reviews = json_lines(&out);
    assert_eq!(reviews[1]["signature"], "bad", "{reviews:#?}");
    assert_eq!(reviews[1]["decision"], "ok");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(key) && stderr.contains("changed after it was written"),
        "{stderr}"
    );
    let text = sb.replay(&["reviews"]);
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("BAD SIGNATURE"),
        "{}",
        show(&text)
    );

    // The access log filters by session, user and action.
    let mine =
        sb.run(
            sb.cmd("replay")
                .args(["access-log", "--session", prefix, "--action", "review"]),
        );
    assert_eq!(mine.lines().count(), 3, "{mine}");
    assert!(
        mine.contains(&format!("{}@{}", login(), hostname())),
        "{mine}"
    );
}

#[test]
fn a_read_that_cannot_be_logged_shows_nothing_unless_told_to() {
    let sb = Sandbox::new();
    sb.run(
        sb.cmd("auditty-agent")
            .args(["record", "-q", "--", "sh", "-c", "echo secret-output"]),
    );
    sb.ingest();
    let id = sb.sessions()[0]["id"].as_str().unwrap().to_string();

    // A file where the access/ folder should be: the event cannot be written (this works
    // as root too, unlike a read-only directory).
    std::fs::write(sb.store().join("access"), "in the way").unwrap();
    for args in [
        vec!["export", id.as_str(), "--format", "text"],
        vec!["commands", id.as_str()],
        vec!["play", id.as_str(), "--speed", "100"],
    ] {
        let out = sb.replay(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", show(&out));
        assert!(
            out.stdout.is_empty(),
            "{args:?} showed something: {}",
            show(&out)
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("cannot record this")
                && stderr.contains("access log")
                && stderr.contains("--no-access-log"),
            "{stderr}"
        );
    }
    let out = sb.replay(&["export", &id, "--format", "text", "--no-access-log"]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("secret-output"),
        "{}",
        show(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not recorded in the access log"),
        "{}",
        show(&out)
    );
}
