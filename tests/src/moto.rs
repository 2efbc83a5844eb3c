//! [`Moto`]: moto's S3 server (from PyPI) on a free 127.0.0.1 port, one per test.
//!
//! `scripts/install-test-deps` installs it into a venv, `$AUDITTY_VENV` or
//! `~/.cache/auditty/venv`; the tests fail (never skip) when it is missing.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The venv holding moto_server, pyarrow and duckdb.
pub fn venv() -> PathBuf {
    if let Some(v) = std::env::var_os("AUDITTY_VENV") {
        return PathBuf::from(v);
    }
    let home = std::env::var_os("HOME").expect("HOME is set");
    PathBuf::from(home).join(".cache/auditty/venv")
}

/// A program of the venv; panics with what to run when it is missing.
pub fn venv_bin(name: &str) -> PathBuf {
    let p = venv().join("bin").join(name);
    assert!(
        p.exists(),
        "{} is missing: run scripts/install-test-deps (it pip-installs moto[server], pyarrow \
         and duckdb into {}), or set AUDITTY_VENV to a venv that has them",
        p.display(),
        venv().display()
    );
    p
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A running moto S3 server, stopped on drop.
pub struct Moto {
    child: Child,
    port: u16,
}

impl Moto {
    /// Starts moto_server and waits until it answers.
    pub fn start() -> Moto {
        let bin = venv_bin("moto_server");
        let port = free_port();
        let child = Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server starts");
        let moto = Moto { child, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok((200, _)) = moto.raw("GET", "/", &[]) {
                return moto;
            }
            assert!(
                Instant::now() < deadline,
                "moto_server did not answer on port {port} within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Creates a bucket (moto takes unsigned requests).
    pub fn create_bucket(&self, name: &str) {
        let (status, body) = self
            .raw("PUT", &format!("/{name}"), &[])
            .expect("moto answers");
        assert_eq!(
            status,
            200,
            "create bucket {name}: {}",
            String::from_utf8_lossy(&body)
        );
    }

    /// One unsigned HTTP/1.1 request; the status and body.
    pub fn raw(&self, method: &str, path: &str, body: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.port,
            body.len()
        )?;
        s.write_all(body)?;
        let mut out = Vec::new();
        s.read_to_end(&mut out)?;
        let text = String::from_utf8_lossy(&out);
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = out
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|i| out[i + 4..].to_vec())
            .unwrap_or_default();
        Ok((status, body))
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Environment for our binaries (and the SDK) to use a moto store: dummy credentials and
/// a region, since the SDK signs every request.
pub fn s3_env() -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID", "test".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_string()),
        ("AWS_REGION", "us-east-1".to_string()),
        // No ~/.aws of the developer's may leak into the tests.
        ("AWS_CONFIG_FILE", "/dev/null".to_string()),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".to_string()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
    ]
}

/// Puts [`s3_env`] into this process's environment, once: the SDK inside a test process
/// (a test that opens the store itself) needs credentials and a region (moto takes any).
pub fn set_test_credentials() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        for (k, v) in s3_env() {
            // SAFETY: set once, before any thread of this process reads them.
            unsafe { std::env::set_var(k, v) };
        }
    });
}

/// The store `s3://BUCKET/PREFIX` behind `endpoint` (moto, or a proxy in front of it),
/// path-style, as the test process sees it.
pub fn open_s3_store(endpoint: &str, bucket: &str, prefix: &str) -> Box<dyn store::ObjectStore> {
    set_test_credentials();
    store::StoreUrl::S3 {
        bucket: bucket.into(),
        prefix: prefix.into(),
        options: store::S3Options {
            endpoint: Some(endpoint.to_string()),
            force_path_style: true,
            ..store::S3Options::default()
        },
    }
    .open()
    .expect("open the S3 store")
}
