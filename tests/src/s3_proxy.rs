//! [`S3Proxy`]: a small HTTP/1.1 proxy between the AWS SDK and moto that records every
//! request (method, path, headers, response status and size) and injects faults: error
//! answers (500, 503) and stalls, so the tests can see what the store sends and how it
//! rides out a failing S3.
//!
//! One thread per client connection; each request is forwarded on a fresh connection to
//! the upstream and answered with `Connection: close`, which keeps the framing trivial
//! (the client opens a new connection for the next request).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the proxy saw of one request.
#[derive(Clone, Debug)]
pub struct Logged {
    /// `GET`, `PUT`, …
    pub method: String,
    /// Path and query as sent.
    pub target: String,
    /// Request headers, names lowercase.
    pub headers: Vec<(String, String)>,
    /// Status answered (by the upstream or injected); 0 for a stall that dropped it.
    pub status: u16,
    /// Bytes of the response sent back to the client (headers included).
    pub response_bytes: u64,
    /// Bytes of the request body.
    pub request_body_bytes: u64,
    /// The upstream answered but the answer was dropped ([`Fault::LoseResponse`]).
    pub lost: bool,
}

impl Logged {
    /// A request header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A fault for the next matching request.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer with this status and an S3-style error body, without forwarding.
    Status(u16),
    /// Hold the request this long without answering, then drop the connection.
    Stall(Duration),
    /// Forward the request (the write lands), then drop the connection without the
    /// answer: the client cannot tell whether its write happened.
    LoseResponse,
}

#[derive(Default)]
struct Shared {
    log: Vec<Logged>,
    /// Faults in order, each for one request whose method is in the filter.
    faults: VecDeque<Fault>,
    fault_methods: Vec<String>,
}

/// A running proxy; stops accepting on drop.
pub struct S3Proxy {
    port: u16,
    shared: Arc<Mutex<Shared>>,
    stop: Arc<AtomicBool>,
}

impl S3Proxy {
    /// Listens on a free 127.0.0.1 port and forwards to `upstream_port` on 127.0.0.1.
    pub fn start(upstream_port: u16) -> S3Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("proxy binds");
        let port = listener.local_addr().expect("proxy address").port();
        let shared = Arc::new(Mutex::new(Shared::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (Arc::clone(&shared), Arc::clone(&stop));
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let s = Arc::clone(&s);
                std::thread::spawn(move || {
                    let _ = serve(conn, upstream_port, &s);
                });
            }
        });
        S3Proxy { port, shared, stop }
    }

    /// `http://127.0.0.1:PORT`, for `--s3-endpoint`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Everything seen so far.
    pub fn log(&self) -> Vec<Logged> {
        self.shared.lock().expect("proxy state").log.clone()
    }

    /// Forgets the log (to count the requests of one command).
    pub fn clear_log(&self) {
        self.shared.lock().expect("proxy state").log.clear();
    }

    /// Applies `faults`, in order, to the next requests whose method is in `methods`
    /// (all requests when empty).
    pub fn inject(&self, methods: &[&str], faults: Vec<Fault>) {
        let mut s = self.shared.lock().expect("proxy state");
        s.faults = faults.into();
        s.fault_methods = methods.iter().map(|m| m.to_string()).collect();
    }

    /// Faults not yet used.
    pub fn faults_left(&self) -> usize {
        self.shared.lock().expect("proxy state").faults.len()
    }
}

impl Drop for S3Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Reads one request: the head lines and the body (Content-Length or chunked, kept raw).
fn read_request(r: &mut BufReader<TcpStream>) -> std::io::Result<Option<(Vec<String>, Vec<u8>)>> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let line = line.trim_end_matches(['\r', '\n']).to_string();
        if line.is_empty() {
            break;
        }
        lines.push(line);
    }
    let header = |name: &str| {
        lines.iter().skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    };
    let mut body = Vec::new();
    if let Some(len) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body.resize(len, 0);
        r.read_exact(&mut body)?;
    } else if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        // Keep the chunked encoding as is; forwarded verbatim.
        loop {
            let mut size_line = String::new();
            r.read_line(&mut size_line)?;
            body.extend_from_slice(size_line.as_bytes());
            let size = usize::from_str_radix(size_line.trim().split(';').next().unwrap_or("0"), 16)
                .unwrap_or(0);
            if size == 0 {
                // Trailers until an empty line.
                loop {
                    let mut t = String::new();
                    r.read_line(&mut t)?;
                    body.extend_from_slice(t.as_bytes());
                    if t.trim().is_empty() {
                        break;
                    }
                }
                break;
            }
            let mut chunk = vec![0; size + 2];
            r.read_exact(&mut chunk)?;
            body.extend_from_slice(&chunk);
        }
    }
    Ok(Some((lines, body)))
}

fn serve(conn: TcpStream, upstream: u16, shared: &Mutex<Shared>) -> std::io::Result<()> {
    let mut client = conn.try_clone()?;
    let mut reader = BufReader::new(conn);
    let Some((lines, body)) = read_request(&mut reader)? else {
        return Ok(());
    };
    let mut parts = lines[0].split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    let headers: Vec<(String, String)> = lines[1..]
        .iter()
        .filter_map(|l| {
            let (n, v) = l.split_once(':')?;
            Some((n.trim().to_ascii_lowercase(), v.trim().to_string()))
        })
        .collect();
    let fault = {
        let mut s = shared.lock().expect("proxy state");
        let applies = s.fault_methods.is_empty() || s.fault_methods.contains(&method);
        if applies { s.faults.pop_front() } else { None }
    };
    let mut entry = Logged {
        method,
        target,
        headers,
        status: 0,
        response_bytes: 0,
        request_body_bytes: body.len() as u64,
        lost: false,
    };
    let response = match fault {
        Some(Fault::LoseResponse) => {
            let resp = forward(upstream, &lines, &body)?;
            entry.status = status_of(&resp);
            entry.lost = true;
            shared.lock().expect("proxy state").log.push(entry);
            let _ = client.shutdown(std::net::Shutdown::Both);
            return Ok(());
        }
        Some(Fault::Stall(d)) => {
            std::thread::sleep(d);
            None
        }
        Some(Fault::Status(code)) => {
            let (name, reason) = match code {
                503 => ("SlowDown", "Service Unavailable"),
                403 => ("AccessDenied", "Forbidden"),
                _ => ("InternalError", "Internal Server Error"),
            };
            let body = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{name}</Code><Message>injected by the test proxy</Message></Error>"
            );
            Some(
                format!(
                    "HTTP/1.1 {code} {reason}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
                .into_bytes(),
            )
        }
        None => Some(forward(upstream, &lines, &body)?),
    };
    if let Some(resp) = &response {
        entry.status = status_of(resp);
        entry.response_bytes = resp.len() as u64;
    }
    shared.lock().expect("proxy state").log.push(entry);
    if let Some(resp) = response {
        client.write_all(&resp)?;
    }
    client.flush()?;
    let _ = client.shutdown(std::net::Shutdown::Both);
    Ok(())
}

/// The status code of an HTTP response; 0 if it has none.
fn status_of(resp: &[u8]) -> u16 {
    std::str::from_utf8(&resp[..resp.len().min(16)])
        .ok()
        .and_then(|t| t.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// Sends the request upstream with `Connection: close` and returns its whole response,
/// with `Connection: close` too.
fn forward(upstream: u16, lines: &[String], body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut up = TcpStream::connect(("127.0.0.1", upstream))?;
    let mut head = String::new();
    for l in lines {
        if l.to_ascii_lowercase().starts_with("connection:") {
            continue;
        }
        head.push_str(l);
        head.push_str("\r\n");
    }
    head.push_str("Connection: close\r\n\r\n");
    up.write_all(head.as_bytes())?;
    up.write_all(body)?;
    let mut resp = Vec::new();
    up.read_to_end(&mut resp)?;
    // Make sure the client does not reuse the connection.
    let Some(end) = resp.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(resp);
    };
    let head = String::from_utf8_lossy(&resp[..end]).to_string();
    let mut out = String::new();
    for l in head.split("\r\n") {
        if l.to_ascii_lowercase().starts_with("connection:") {
            continue;
        }
        out.push_str(l);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&resp[end + 4..]);
    Ok(bytes)
}
