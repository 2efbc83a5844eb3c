//! A minimal blocking HTTP/1.1 client over `std::net`, just enough to time a cast fetch
//! from `replay serve` as a player receives it: one request per connection, the body read
//! as it arrives (Content-Length, chunked, or until the server closes), the moment of its
//! first byte and of its first asciicast `"o"` event line noted.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// One GET, timed from just before the connection was opened.
pub struct Fetch {
    pub status: u16,
    /// The first byte of the body arrived.
    pub first_byte: Option<Duration>,
    /// The first asciicast event line with code `"o"` had arrived whole.
    pub first_frame: Option<Duration>,
    /// The whole body arrived.
    pub total: Duration,
    /// Body bytes (after chunked decoding).
    pub bytes: u64,
    /// The body's first KB, to say what went wrong when the status is not 200.
    pub head: Vec<u8>,
}

/// How the body's end is known.
enum Framing {
    Length(u64),
    Chunked,
    Close,
}

/// `GET path` on `addr` with `Authorization: Bearer token`.
pub fn get(addr: SocketAddr, path: &str, token: &str, timeout: Duration) -> anyhow::Result<Fetch> {
    let started = Instant::now();
    let mut s = TcpStream::connect_timeout(&addr, timeout)
        .with_context(|| format!("cannot connect to {addr}"))?;
    s.set_read_timeout(Some(timeout))?;
    s.set_nodelay(true)?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Accept: */*\r\nConnection: close\r\n\r\n"
    )?;
    let (status, framing, rest) = read_head(&mut s)?;
    let mut body = Body::new(started, framing, status);
    body.feed(&rest)?;
    let mut buf = vec![0u8; 64 * 1024];
    while !body.done {
        let n = s.read(&mut buf).context("reading the body")?;
        if n == 0 {
            if !matches!(body.framing, Framing::Close) {
                bail!("the server closed the connection before the end of the body");
            }
            break;
        }
        body.feed(&buf[..n])?;
    }
    body.fetch.total = started.elapsed();
    Ok(body.fetch)
}

/// Reads up to the end of the headers: the status, the body's framing, and what of the
/// body came with them.
fn read_head(s: &mut TcpStream) -> anyhow::Result<(u16, Framing, Vec<u8>)> {
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    let end = loop {
        if let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if got.len() > 64 * 1024 {
            bail!("response headers longer than 64 KiB");
        }
        let n = s.read(&mut buf).context("reading the response headers")?;
        if n == 0 {
            bail!("the server closed the connection before its headers ended");
        }
        got.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&got[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .with_context(|| format!("no status line in {head:?}"))?;
    let mut framing = Framing::Close;
    for l in lines {
        let Some((name, value)) = l.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
        if name == "content-length" {
            framing = Framing::Length(value.parse().context("Content-Length")?);
        } else if name == "transfer-encoding" && value.eq_ignore_ascii_case("chunked") {
            framing = Framing::Chunked;
            break;
        }
    }
    Ok((status, framing, got[end + 4..].to_vec()))
}

/// The body as it arrives: de-chunked, counted, split into lines until the first frame.
struct Body {
    started: Instant,
    framing: Framing,
    fetch: Fetch,
    /// Chunked framing not yet decoded.
    raw: Vec<u8>,
    /// The line being received (until the first frame is seen).
    line: Vec<u8>,
    /// Lines received whole (the first is the asciicast header).
    lines: usize,
    done: bool,
}

impl Body {
    fn new(started: Instant, framing: Framing, status: u16) -> Body {
        Body {
            started,
            framing,
            fetch: Fetch {
                status,
                first_byte: None,
                first_frame: None,
                total: Duration::ZERO,
                bytes: 0,
                head: Vec::new(),
            },
            raw: Vec::new(),
            line: Vec::new(),
            lines: 0,
            done: false,
        }
    }

    fn feed(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        match self.framing {
            Framing::Length(left) => {
                let take = bytes.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                self.data(&bytes[..take]);
                self.framing = Framing::Length(left - take as u64);
                self.done = left == take as u64;
            }
            Framing::Close => self.data(bytes),
            Framing::Chunked => {
                self.raw.extend_from_slice(bytes);
                self.dechunk()?;
            }
        }
        Ok(())
    }

    /// Decodes the whole chunks in `raw` (a chunk's data is passed on as it arrives).
    fn dechunk(&mut self) -> anyhow::Result<()> {
        loop {
            let Some(eol) = self.raw.windows(2).position(|w| w == b"\r\n") else {
                return Ok(());
            };
            let size_text = String::from_utf8_lossy(&self.raw[..eol]).into_owned();
            let hex = size_text.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(hex, 16)
                .with_context(|| format!("bad chunk size {size_text:?}"))?;
            if size == 0 {
                self.done = true;
                return Ok(());
            }
            let start = eol + 2;
            if self.raw.len() < start + size + 2 {
                return Ok(());
            }
            let chunk = self.raw[start..start + size].to_vec();
            self.raw.drain(..start + size + 2);
            self.data(&chunk);
        }
    }

    fn data(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let now = self.started.elapsed();
        self.fetch.first_byte.get_or_insert(now);
        self.fetch.bytes += bytes.len() as u64;
        if self.fetch.head.len() < 1024 {
            let room = 1024 - self.fetch.head.len();
            self.fetch
                .head
                .extend_from_slice(&bytes[..bytes.len().min(room)]);
        }
        if self.fetch.first_frame.is_some() {
            return;
        }
        for &b in bytes {
            if b != b'\n' {
                self.line.push(b);
                continue;
            }
            let line = std::mem::take(&mut self.line);
            self.lines += 1;
            if self.lines > 1 && is_output_event(&line) {
                self.fetch.first_frame = Some(now);
                return;
            }
        }
    }
}

/// Whether an asciicast v2 line is an event `[time, "o", data]`.
fn is_output_event(line: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(line)
        .is_ok_and(|v| v.get(1).and_then(|c| c.as_str()) == Some("o"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(framing: Framing) -> Body {
        Body::new(Instant::now(), framing, 200)
    }

    const CAST: &[u8] = b"{\"version\":2}\n[0.1, \"i\", \"l\"]\n[0.2, \"o\", \"l\"]\n";

    #[test]
    fn first_frame_is_the_first_output_event_after_the_header() {
        let mut b = body(Framing::Length(CAST.len() as u64));
        b.feed(&CAST[..40]).unwrap();
        assert!(b.fetch.first_byte.is_some() && b.fetch.first_frame.is_none());
        b.feed(&CAST[40..]).unwrap();
        assert!(b.fetch.first_frame.is_some() && b.done);
        assert_eq!(b.fetch.bytes, CAST.len() as u64);
    }

    #[test]
    fn chunked_bodies_are_decoded_across_reads() {
        let mut wire = Vec::new();
        for part in CAST.chunks(7) {
            wire.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
            wire.extend_from_slice(part);
            wire.extend_from_slice(b"\r\n");
        }
        wire.extend_from_slice(b"0\r\n\r\n");
        let mut b = body(Framing::Chunked);
        for piece in wire.chunks(5) {
            b.feed(piece).unwrap();
        }
        assert!(b.done && b.fetch.first_frame.is_some());
        assert_eq!(b.fetch.head, CAST);
    }
}
