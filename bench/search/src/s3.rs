//! The generated store copied to an S3 endpoint (moto in practice), so that `replay play`
//! can be timed reading it over S3 as an auditor's workstation would.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use store::{LocalStore, ObjectStore, S3Options, StoreUrl};

/// Credentials and region for the SDK in `replay` (moto accepts any), and nothing of the
/// developer's `~/.aws`.
pub fn env() -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID", "bench".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "bench".to_string()),
        ("AWS_REGION", "us-east-1".to_string()),
        ("AWS_CONFIG_FILE", "/dev/null".to_string()),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".to_string()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
    ]
}

/// Creates `bucket` at `endpoint` and copies every object of the local store at `root`
/// into it; returns how many objects were copied.
pub fn copy_store(root: &Path, endpoint: &str, bucket: &str) -> anyhow::Result<usize> {
    create_bucket(endpoint, bucket)?;
    for (k, v) in env() {
        // SAFETY: single-threaded here; the S3 client reads these when it is built below.
        unsafe { std::env::set_var(k, v) };
    }
    let local = LocalStore::new(root)?;
    let options = S3Options {
        endpoint: Some(endpoint.to_string()),
        force_path_style: true,
        ..S3Options::default()
    };
    let s3 = StoreUrl::parse(&format!("s3://{bucket}"))?
        .with_s3_options(options)
        .open()?;
    let keys = local.list("")?;
    for key in &keys {
        let bytes = local.get(key)?;
        s3.put(key, &bytes)
            .with_context(|| format!("cannot copy {key} to {endpoint}"))?;
    }
    Ok(keys.len())
}

/// `PUT /bucket`, unsigned: moto takes it, and the bench needs no S3 client of its own.
fn create_bucket(endpoint: &str, bucket: &str) -> anyhow::Result<()> {
    let host = endpoint
        .strip_prefix("http://")
        .context("--s3-endpoint must be an http:// URL (a local moto server)")?
        .trim_end_matches('/');
    let mut s = TcpStream::connect(host).with_context(|| format!("cannot connect to {host}"))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        s,
        "PUT /{bucket} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = String::new();
    s.read_to_string(&mut answer)?;
    let status = answer.split_whitespace().nth(1).unwrap_or_default();
    if status != "200" {
        bail!("creating bucket {bucket} at {endpoint} answered: {answer}");
    }
    Ok(())
}
