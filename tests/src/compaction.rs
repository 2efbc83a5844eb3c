//! What the compaction test (`tests/tests/compact.rs`) and its measurement harness
//! (`examples/compaction_figures.rs`, the figures of bench/README.md) share: where a store
//! is, and running `replay` and `auditty-ingest compact` on it.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use store::ObjectStore;
use terminal::pty::WinSize;

use crate::moto::s3_env;
use crate::s3_proxy::S3Proxy;
use crate::{PtySession, Sandbox};

const T: Duration = Duration::from_secs(60);

/// `--store` and friends for one store: a directory, or the S3 bucket behind an endpoint.
#[derive(Clone)]
pub enum At {
    /// A directory.
    Dir(PathBuf),
    /// The bucket [`BUCKET`]/[`PREFIX`] behind this endpoint.
    S3(String),
}

/// The bucket of [`At::S3`].
pub const BUCKET: &str = "audit";
/// The key prefix of [`At::S3`].
pub const PREFIX: &str = "fleet";

impl At {
    /// `--store` and, for S3, `--s3-endpoint`.
    pub fn args(&self) -> Vec<String> {
        match self {
            At::Dir(p) => vec!["--store".into(), p.display().to_string()],
            At::S3(endpoint) => vec![
                "--store".into(),
                format!("s3://{BUCKET}/{PREFIX}"),
                "--s3-endpoint".into(),
                endpoint.clone(),
            ],
        }
    }
}

/// One of our binaries with the sandbox's environment and moto's credentials. The store
/// flags go after the subcommand (`At::args`): they are the ingester's subcommand's own.
pub fn cmd(sb: &Sandbox, name: &str) -> Command {
    let mut c = sb.cmd(name);
    c.envs(s3_env());
    c
}

/// `replay --no-access-log ARGS --store …` (the access log would add objects and
/// requests of its own to what the tests count).
pub fn replay(sb: &Sandbox, at: &At, args: &[&str]) -> std::process::Output {
    let mut c = cmd(sb, "replay");
    c.arg("--no-access-log").args(args).args(at.args());
    sb.output(&mut c)
}

/// `auditty-ingest compact --min-age 0 EXTRA`, with `failpoint` armed if given.
pub fn compact(
    sb: &Sandbox,
    at: &At,
    extra: &[&str],
    failpoint: Option<&str>,
) -> std::process::Output {
    let mut c = cmd(sb, "auditty-ingest");
    c.args(["compact", "--min-age", "0"])
        .args(at.args())
        .args(extra);
    if let Some(fp) = failpoint {
        c.env("AUDITTY_FAILPOINT", fp);
    }
    sb.output(&mut c)
}

/// Parquet objects of `events/` and `sessions/` and their bytes.
pub fn table_objects(store: &dyn ObjectStore) -> (usize, u64) {
    let mut n = 0;
    let mut bytes = 0;
    for table in ["events/", "sessions/"] {
        for o in store.list_info(table).expect("list") {
            if o.key.ends_with(".parquet") {
                n += 1;
                bytes += o.size;
            }
        }
    }
    (n, bytes)
}

/// Requests `replay play` of `id` makes (through the proxy), and its screen.
pub fn play_requests(sb: &Sandbox, proxy: &S3Proxy, id: &str) -> (usize, Vec<String>) {
    let mut env = sb.env();
    env.extend(s3_env());
    proxy.clear_log();
    let endpoint = proxy.endpoint();
    let store = format!("s3://{BUCKET}/{PREFIX}");
    let mut p = PtySession::spawn(
        crate::bin("replay"),
        [
            "--no-access-log",
            "--store",
            store.as_str(),
            "--s3-endpoint",
            endpoint.as_str(),
            "play",
            id,
            "--speed",
            "100",
        ],
        &env,
        WinSize { cols: 80, rows: 24 },
    );
    let status = p.wait(T);
    assert!(status.success(), "play {id}: {status}: {:?}", p.rows());
    (proxy.log().len(), p.rows())
}
