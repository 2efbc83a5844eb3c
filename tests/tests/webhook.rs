//! Issue 19, "Notifications": `auditty-ingest run --notify-webhook URL` posts each session
//! start and end, signed with HMAC-SHA256, retried with backoff while the receiver fails,
//! and ingestion never waits for it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use auditty_tests::Sandbox;
use auditty_tests::prometheus::scrape;
use hmac::{Hmac, Mac};
use sha2::Sha256;

const T: Duration = Duration::from_secs(60);

/// One post the receiver got, and the status it answered.
#[derive(Clone, Debug)]
struct Post {
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    status: u16,
}

impl Post {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A webhook receiver on loopback: answers 500 until `accept` is set, then 200.
struct Receiver {
    addr: String,
    accept: Arc<AtomicBool>,
    posts: Arc<Mutex<Vec<Post>>>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let accept = Arc::new(AtomicBool::new(false));
        let posts = Arc::new(Mutex::new(Vec::new()));
        let (accept2, posts2) = (Arc::clone(&accept), Arc::clone(&posts));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                let mut headers = Vec::new();
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                    if let Some((k, v)) = h.trim_end().split_once(':') {
                        headers.push((k.trim().to_string(), v.trim().to_string()));
                    }
                }
                let len: usize = headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                    .and_then(|(_, v)| v.parse().ok())
                    .expect("the webhook sends Content-Length");
                let mut body = vec![0; len];
                reader.read_exact(&mut body).expect("body");
                let status = if accept2.load(Ordering::SeqCst) {
                    200
                } else {
                    500
                };
                let mut out = stream;
                let _ = write!(
                    out,
                    "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                posts2.lock().expect("posts").push(Post {
                    path,
                    headers,
                    body,
                    status,
                });
            }
        });
        Receiver {
            addr,
            accept,
            posts,
        }
    }

    fn posts(&self) -> Vec<Post> {
        self.posts.lock().expect("posts").clone()
    }
}

fn wait_for(what: &str, sb: &Sandbox, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + T;
    while !ok() {
        assert!(
            Instant::now() < deadline,
            "{what}: not within {T:?}; ingester log:\n{}",
            std::fs::read_to_string(sb.path().join("ingest.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn notifications_are_signed_retried_and_never_hold_up_ingestion() {
    let sb = Sandbox::new();
    for text in ["one", "two"] {
        let out = sb.record_sh(&format!("echo {text}; exit 3"));
        assert_eq!(out.status.code(), Some(3), "{}", auditty_tests::show(&out));
    }
    let receiver = Receiver::start();
    let secret = "0123456789abcdef-test-secret";
    let secret_file = sb.path().join("webhook.secret");
    std::fs::write(&secret_file, format!("{secret}\n")).expect("secret");
    let metrics_addr = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").to_string()
    };
    let mut cmd = sb.cmd("auditty-ingest");
    cmd.args(["run", "--poll-interval-ms", "200"])
        .args([
            "--notify-webhook",
            &format!("http://{}/hooks/auditty", receiver.addr),
        ])
        .arg("--notify-webhook-secret-file")
        .arg(&secret_file)
        .args(["--notify-webhook-attempts", "30"])
        .args(["--metrics-listen", &metrics_addr]);
    let mut ingester = sb.spawn_logged(cmd, "ingest.log");

    // The receiver is failing: ingestion completes anyway, and the webhook keeps trying.
    wait_for("both sessions stored", &sb, || {
        sb.store().exists() && sb.sessions().len() == 2
    });
    wait_for("two failed attempts", &sb, || {
        receiver.posts().iter().filter(|p| p.status == 500).count() >= 2
    });
    assert!(
        receiver.posts().iter().all(|p| p.status == 500),
        "nothing was accepted yet"
    );
    let stored: Vec<String> = sb
        .sessions()
        .iter()
        .map(|s| s["id"].as_str().expect("id").to_string())
        .collect();

    // The receiver comes back: every start and end arrives.
    receiver.accept.store(true, Ordering::SeqCst);
    wait_for("four notifications accepted", &sb, || {
        receiver.posts().iter().filter(|p| p.status == 200).count() >= 4
    });
    let posts = receiver.posts();
    let accepted: Vec<&Post> = posts.iter().filter(|p| p.status == 200).collect();
    assert_eq!(accepted.len(), 4, "{posts:#?}");
    let mut seen = Vec::new();
    for p in &accepted {
        assert_eq!(p.path, "/hooks/auditty");
        assert_eq!(p.header("Content-Type"), Some("application/json"));
        // The signature: HMAC-SHA256 over "<timestamp>.<body>", as README documents.
        let ts = p.header("X-Auditty-Timestamp").expect("timestamp header");
        let ts_secs: i64 = ts.parse().expect("timestamp is Unix seconds");
        let now = schemas::time::now_ns() / 1_000_000_000;
        assert!(
            (now - ts_secs).abs() < 600,
            "timestamp {ts_secs}, now {now}"
        );
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("hmac key");
        mac.update(format!("{ts}.").as_bytes());
        mac.update(&p.body);
        let expected: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            p.header("X-Auditty-Signature"),
            Some(format!("sha256={expected}").as_str()),
            "the signature verifies with the secret"
        );
        let body: serde_json::Value = serde_json::from_slice(&p.body).expect("JSON body");
        let id = body["session_id"].as_str().expect("session_id").to_string();
        let event = body["event"].as_str().expect("event").to_string();
        assert!(stored.contains(&id), "{id} is not a stored session");
        assert_eq!(p.header("X-Auditty-Event"), Some(event.as_str()));
        assert_eq!(
            p.header("X-Auditty-Delivery"),
            Some(format!("{id}:{event}").as_str())
        );
        if event == "session_end" {
            assert_eq!(body["exit_status"], 3, "{body}");
        } else {
            assert_eq!(event, "session_start");
            assert!(body["user"].is_string(), "{body}");
        }
        assert!(
            body["objects"].as_array().is_some_and(|o| o
                .iter()
                .any(|k| k.as_str().is_some_and(|k| k.starts_with("sessions/")))),
            "{body}"
        );
        seen.push((id, event));
    }
    seen.sort();
    let mut want: Vec<(String, String)> = stored
        .iter()
        .flat_map(|id| {
            [
                (id.clone(), "session_end".to_string()),
                (id.clone(), "session_start".to_string()),
            ]
        })
        .collect();
    want.sort();
    assert_eq!(seen, want, "one start and one end per session");
    // A failed attempt was the same notification, tried again.
    let failed = posts.iter().filter(|p| p.status == 500).count();
    for p in posts.iter().filter(|p| p.status == 500) {
        let id = p.header("X-Auditty-Delivery").expect("delivery id");
        assert!(
            accepted
                .iter()
                .any(|a| a.header("X-Auditty-Delivery") == Some(id)),
            "{id} was tried and never delivered"
        );
    }

    let m = scrape(&metrics_addr);
    assert_eq!(m.value("auditty_notify_webhook_delivered_total"), 4.0);
    assert_eq!(
        m.value("auditty_notify_webhook_retries_total"),
        failed as f64,
        "every failed post was retried"
    );
    assert_eq!(m.value("auditty_notify_webhook_failed_total"), 0.0);
    assert_eq!(m.value("auditty_notify_webhook_dropped_total"), 0.0);
    assert_eq!(m.value("auditty_ingest_session_rows_written_total"), 4.0);

    // SAFETY: signal to our own child.
    unsafe { libc::kill(ingester.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + T;
    let status = loop {
        if let Some(s) = ingester.try_wait().expect("wait") {
            break s;
        }
        assert!(Instant::now() < deadline, "the ingester did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "ingester exited with {status}");
}

/// Runs `openssl` with `args` in `dir`; panics with its output on failure.
fn openssl(dir: &std::path::Path, args: &[&str]) {
    let out = std::process::Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        auditty_tests::show(&out)
    );
}

/// An https receiver (Python's ssl module, a certificate from a test CA): with the CA in
/// SSL_CERT_FILE the posts arrive over TLS; without it the receiver's certificate is
/// refused, the failure is counted, and ingestion completes all the same.
#[test]
fn https_receivers_are_checked_against_the_trusted_roots() {
    let sb = Sandbox::new();
    let dir = sb.path().join("tls");
    std::fs::create_dir_all(&dir).expect("tls dir");
    openssl(
        &dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "1",
            "-subj",
            "/CN=auditty test CA",
        ],
    );
    openssl(
        &dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "key.pem",
            "-out",
            "leaf.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .expect("ext");
    openssl(
        &dir,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "cert.pem",
            "-days",
            "1",
            "-extfile",
            "ext.cnf",
        ],
    );
    let server = r#"
import http.server, ssl, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with open("posts.log", "a") as f:
            f.write(self.headers["X-Auditty-Event"] + "\n")
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain("cert.pem", "key.pem")
s.socket = ctx.wrap_socket(s.socket, server_side=True)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;
    let mut child = std::process::Command::new("python3")
        .current_dir(&dir)
        .args(["-c", server])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the https receiver");
    let mut port = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut port)
        .expect("port");
    let url = format!("https://127.0.0.1:{}/hook", port.trim());

    let ingest = |ca: Option<&std::path::Path>, text: &str| -> String {
        let out = sb.record_sh(&format!("echo {text}"));
        assert!(out.status.success(), "{}", auditty_tests::show(&out));
        let mut cmd = sb.cmd("auditty-ingest");
        cmd.args([
            "run",
            "--once",
            "--notify-webhook",
            &url,
            "--notify-webhook-attempts",
            "1",
        ]);
        cmd.env_remove("SSL_CERT_FILE").env_remove("SSL_CERT_DIR");
        if let Some(ca) = ca {
            cmd.env("SSL_CERT_FILE", ca);
        }
        let out = sb.output(&mut cmd);
        assert!(
            out.status.success(),
            "ingestion completes whatever the webhook does: {}",
            auditty_tests::show(&out)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let posts = || std::fs::read_to_string(dir.join("posts.log")).unwrap_or_default();

    let trusted = ingest(Some(&dir.join("ca.pem")), "trusted");
    assert_eq!(
        posts().lines().collect::<Vec<_>>(),
        ["session_start", "session_end"],
        "{trusted}"
    );

    let untrusted = ingest(None, "untrusted");
    assert!(
        untrusted.contains("Giving up on a webhook notification"),
        "{untrusted}"
    );
    assert!(
        untrusted.to_lowercase().contains("certificate"),
        "{untrusted}"
    );
    assert_eq!(
        posts().lines().count(),
        2,
        "nothing reached a receiver whose certificate is not trusted"
    );
    assert_eq!(sb.sessions().len(), 2, "both sessions are stored");

    let _ = child.kill();
    let _ = child.wait();
}
