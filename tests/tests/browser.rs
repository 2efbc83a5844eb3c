//! Issue 18: the web player in a real browser. Headless Chromium, driven through
//! chromedriver by a small W3C WebDriver client (HTTP JSON on loopback, below).
//!
//! - `serve_login_search_play_next_command_report`: `replay serve` over a store of real
//!   recorded bash sessions (agent on a PTY, ingested, indexed): log in through the form,
//!   search for a command, open the hit; the player starts at the hit's offset, the
//!   command list and the current command are right (screenshot kept); "next command"
//!   moves to the next command's offset and the current command follows playback; the
//!   report page shows the numbers `replay report` gives. No page breaks its
//!   Content-Security-Policy.
//! - `player_script_seeks_and_follows_commands_under_the_csp`: `web/assets/app.js` and
//!   the vendored asciinema-player on a fixed page and cast (known offsets), served with a
//!   strict policy by a static server in this file: start time, command links, next
//!   command, aria-current following playback, the address bar, the speed control, and
//!   the terminal drawn.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use auditty_tests::Sandbox;
use serde_json::{Value, json};
use terminal::pty::WinSize;

const T: Duration = Duration::from_secs(30);
/// How far the player's clock may be from an offset it was sent to: the test reads it
/// while it plays on, a moment after the seek.
const NEAR: f64 = 1.0;

/// A minimal W3C WebDriver client: one chromedriver process, one browser session.
mod webdriver {
    use super::*;

    /// The key under which WebDriver returns an element reference.
    const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

    /// An element reference in the current session.
    #[derive(Clone, Debug)]
    pub struct Element(pub String);

    /// chromedriver on a free loopback port; killed on drop.
    pub struct Driver {
        child: Child,
        base: String,
        log: PathBuf,
    }

    impl Driver {
        /// Starts chromedriver, logging to `dir/chromedriver.log`, and waits until it is
        /// ready.
        pub fn start(dir: &Path) -> Driver {
            let port = free_port();
            let log = dir.join("chromedriver.log");
            let child = Command::new("chromedriver")
                .arg(format!("--port={port}"))
                .arg(format!("--log-path={}", log.display()))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("cannot start chromedriver ({e}): run scripts/install-test-deps (Debian package chromium-driver)")
                });
            let d = Driver {
                child,
                base: format!("http://127.0.0.1:{port}"),
                log,
            };
            let deadline = Instant::now() + T;
            loop {
                if let Ok(v) = request(&d.base, "GET", "/status", None)
                    && v["value"]["ready"] == true
                {
                    return d;
                }
                assert!(
                    Instant::now() < deadline,
                    "chromedriver never became ready; its log:\n{}",
                    std::fs::read_to_string(&d.log).unwrap_or_default()
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    impl Drop for Driver {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    /// One headless Chromium, with a profile of its own; the session is deleted (and the
    /// browser closed) on drop.
    pub struct Browser<'d> {
        driver: &'d Driver,
        session: String,
        _profile: tempfile::TempDir,
    }

    impl<'d> Browser<'d> {
        /// A new session: headless Chromium in a 1280×900 window, browser logs kept.
        pub fn new(driver: &'d Driver) -> Browser<'d> {
            let profile = tempfile::tempdir().expect("profile dir");
            let mut options = json!({
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--no-first-run",
                    "--window-size=1280,900",
                    "--autoplay-policy=no-user-gesture-required",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            });
            if let Some(bin) = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
                .into_iter()
                .find(|p| Path::new(p).exists())
            {
                options["binary"] = json!(bin);
            }
            let caps = json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": options,
                "goog:loggingPrefs": {"browser": "ALL"},
                "timeouts": {"script": 30_000, "pageLoad": 30_000, "implicit": 0},
            }}});
            let v = request(&driver.base, "POST", "/session", Some(&caps)).unwrap_or_else(|e| {
                panic!(
                    "chromedriver could not start Chromium: {e}\nits log:\n{}",
                    std::fs::read_to_string(&driver.log).unwrap_or_default()
                )
            });
            let session = v["value"]["sessionId"]
                .as_str()
                .unwrap_or_else(|| panic!("no session id in {v}"))
                .to_string();
            Browser {
                driver,
                session,
                _profile: profile,
            }
        }

        /// A command of this session; its `value`, or a panic naming the WebDriver error.
        pub fn cmd(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
            let path = format!("/session/{}{path}", self.session);
            match request(&self.driver.base, method, &path, body) {
                Ok(mut v) => v["value"].take(),
                Err(e) => panic!("WebDriver {method} {path}: {e}"),
            }
        }

        /// Opens `url` and waits for the document to load.
        pub fn goto(&self, url: &str) {
            self.cmd("POST", "/url", Some(&json!({ "url": url })));
        }

        /// The address bar.
        pub fn url(&self) -> String {
            self.cmd("GET", "/url", None)
                .as_str()
                .expect("url")
                .to_string()
        }

        /// Every element matching a CSS selector, in document order.
        pub fn find_all(&self, css: &str) -> Vec<Element> {
            let v = self.cmd(
                "POST",
                "/elements",
                Some(&json!({"using": "css selector", "value": css})),
            );
            v.as_array()
                .expect("element list")
                .iter()
                .map(|e| {
                    Element(
                        e[ELEMENT]
                            .as_str()
                            .unwrap_or_else(|| panic!("not an element: {e}"))
                            .to_string(),
                    )
                })
                .collect()
        }

        /// The one element matching `css`, waiting up to [`T`] for it; the page's text
        /// in the panic when it never comes.
        pub fn find(&self, css: &str) -> Element {
            let deadline = Instant::now() + T;
            loop {
                if let Some(e) = self.find_all(css).into_iter().next() {
                    return e;
                }
                assert!(
                    Instant::now() < deadline,
                    "no element {css:?} on {}; the page:\n{}",
                    self.url(),
                    self.page_text()
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }

        /// An element's rendered text.
        pub fn text(&self, e: &Element) -> String {
            self.cmd("GET", &format!("/element/{}/text", e.0), None)
                .as_str()
                .unwrap_or_default()
                .to_string()
        }

        /// An element's attribute, if it has it.
        pub fn attr(&self, e: &Element, name: &str) -> Option<String> {
            self.cmd("GET", &format!("/element/{}/attribute/{name}", e.0), None)
                .as_str()
                .map(str::to_string)
        }

        /// Clicks an element, as a user would (scrolled into view first).
        pub fn click(&self, e: &Element) {
            self.cmd("POST", &format!("/element/{}/click", e.0), Some(&json!({})));
        }

        /// Types into an element.
        pub fn send_keys(&self, e: &Element, text: &str) {
            self.cmd(
                "POST",
                &format!("/element/{}/value", e.0),
                Some(&json!({ "text": text })),
            );
        }

        /// Runs a function body in the page (`arguments` holds `args`); its return value.
        pub fn exec(&self, script: &str, args: Value) -> Value {
            self.cmd(
                "POST",
                "/execute/sync",
                Some(&json!({"script": script, "args": args})),
            )
        }

        /// The page's visible text (for failure messages).
        pub fn page_text(&self) -> String {
            self.exec(
                "return document.body ? document.body.innerText : ''",
                json!([]),
            )
            .as_str()
            .unwrap_or_default()
            .to_string()
        }

        /// A PNG of the window.
        pub fn screenshot(&self) -> Vec<u8> {
            let b64 = self.cmd("GET", "/screenshot", None);
            base64::Engine::decode(
                &base64::engine::general_purpose::STANDARD,
                b64.as_str().expect("base64 screenshot"),
            )
            .expect("screenshot decodes")
        }

        /// The browser's console since the last call (chromedriver's log endpoint).
        pub fn console(&self) -> Vec<String> {
            self.cmd("POST", "/se/log", Some(&json!({"type": "browser"})))
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|e| {
                            format!(
                                "{} {}",
                                e["level"].as_str().unwrap_or(""),
                                e["message"].as_str().unwrap_or("")
                            )
                        })
                        .collect()
                })
                .unwrap_or_default()
        }

        /// Waits until `f` returns `Some`, up to [`T`]; panics naming `what` and the page.
        pub fn wait_for<R>(&self, what: &str, mut f: impl FnMut(&Self) -> Option<R>) -> R {
            let deadline = Instant::now() + T;
            loop {
                if let Some(r) = f(self) {
                    return r;
                }
                assert!(
                    Instant::now() < deadline,
                    "timed out waiting for {what} on {}; console:\n{}\npage:\n{}",
                    self.url(),
                    self.console().join("\n"),
                    self.page_text()
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    impl Drop for Browser<'_> {
        fn drop(&mut self) {
            let _ = request(
                &self.driver.base,
                "DELETE",
                &format!("/session/{}", self.session),
                None,
            );
        }
    }

    /// One WebDriver request; the parsed answer, or the WebDriver error as text.
    fn request(
        base: &str,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, String> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .into();
        let url = format!("{base}{path}");
        let res = match (method, body) {
            ("GET", _) => agent.get(&url).call(),
            ("DELETE", _) => agent.delete(&url).call(),
            (_, body) => agent
                .post(&url)
                .header("Content-Type", "application/json")
                .send(body.unwrap_or(&json!({})).to_string()),
        };
        let mut res = res.map_err(|e| e.to_string())?;
        let status = res.status().as_u16();
        let text = res.body_mut().read_to_string().map_err(|e| e.to_string())?;
        let v: Value = serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"))?;
        if status >= 400 {
            return Err(format!(
                "{status} {}: {}",
                v["value"]["error"].as_str().unwrap_or("?"),
                v["value"]["message"].as_str().unwrap_or(&text)
            ));
        }
        Ok(v)
    }
}

use webdriver::{Browser, Driver};

/// A port free on loopback at the time of asking.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a loopback port")
        .port()
}

/// Where screenshots are kept after the test.
fn artefact_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser-artefacts");
    std::fs::create_dir_all(&dir).expect("artefact dir");
    dir
}

fn keep_screenshot(b: &Browser, name: &str) -> PathBuf {
    let png = b.screenshot();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "screenshot of {} bytes",
        png.len()
    );
    let path = artefact_dir().join(name);
    std::fs::write(&path, &png).expect("write screenshot");
    eprintln!("screenshot: {}", path.display());
    path
}

/// The player's clock, once it has loaded the recording and reports one.
fn player_time(b: &Browser) -> Option<f64> {
    b.exec(
        "const p = window.auditty && window.auditty.player; \
         if (!p) return null; \
         const t = p.getCurrentTime(); \
         return (typeof t === 'number' && isFinite(t) && p.getDuration() !== undefined) ? t : null;",
        json!([]),
    )
    .as_f64()
}

/// Waits until the player's clock is within [`NEAR`] after `t` (it plays on from there).
fn wait_player_at(b: &Browser, t: f64, what: &str) -> f64 {
    let mut last = None;
    let deadline = Instant::now() + T;
    loop {
        if let Some(now) = player_time(b) {
            last = Some(now);
            if now >= t - 0.05 && now <= t + NEAR {
                return now;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{what}: the player's time never came within {NEAR}s after {t}; last read {last:?}; console:\n{}",
            b.console().join("\n")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The `.command` links of the player page: (text, data-offset, aria-current).
fn command_links(b: &Browser) -> Vec<(String, f64, bool)> {
    let v = b.exec(
        "return Array.from(document.querySelectorAll('#commands a.command')).map(a => \
           [a.textContent.trim(), Number(a.dataset.offset), a.getAttribute('aria-current') === 'true']);",
        json!([]),
    );
    v.as_array()
        .expect("command list")
        .iter()
        .map(|c| {
            (
                c[0].as_str().unwrap_or_default().to_string(),
                c[1].as_f64().unwrap_or(f64::NAN),
                c[2].as_bool().unwrap_or(false),
            )
        })
        .collect()
}

fn current_command(b: &Browser) -> Vec<usize> {
    command_links(b)
        .iter()
        .enumerate()
        .filter(|(_, c)| c.2)
        .map(|(i, _)| i)
        .collect()
}

/// Lines of the console that say a Content-Security-Policy refused something.
fn csp_violations(console: &[String]) -> Vec<&String> {
    console
        .iter()
        .filter(|l| l.contains("Content Security Policy") || l.contains("Refused to"))
        .collect()
}

// ---- the fixture: app.js and the vendored player on a static page --------------------

const ASSETS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../web/assets");

/// The policy the fixture server sends: `replay serve`'s (web/src/server.rs) with the one
/// thing the player needs on top, `'wasm-unsafe-eval'` (it compiles its terminal emulator
/// from WebAssembly; without it Chromium refuses with a CompileError and nothing plays).
const FIXTURE_CSP: &str = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Commands of the fixture cast, at these offsets (seconds).
const FIXTURE_COMMANDS: &[(f64, &str)] = &[
    (1.0, "echo one"),
    (4.0, "echo two"),
    (8.0, "echo three"),
    (12.0, "echo four"),
];

/// An asciicast v2 whose commands run at [`FIXTURE_COMMANDS`]' offsets; each prints
/// `out-N` right after its Enter. Then idles until 20 s.
fn fixture_cast() -> String {
    let mut lines = vec![json!({"version": 2, "width": 80, "height": 24}).to_string()];
    lines.push(json!([0.1, "o", "$ "]).to_string());
    for (i, (t, cmd)) in FIXTURE_COMMANDS.iter().enumerate() {
        lines.push(json!([t - 0.5, "o", cmd]).to_string());
        lines.push(json!([t, "o", "\r\n"]).to_string());
        lines.push(json!([t + 0.1, "o", format!("out-{}\r\n$ ", i + 1)]).to_string());
    }
    lines.push(json!([20.0, "o", "exit\r\n"]).to_string());
    lines.join("\n") + "\n"
}

/// A player page shaped like the ones `replay serve` renders (web/src/html.rs).
fn fixture_page(start: f64) -> String {
    let mut items = String::new();
    for (t, cmd) in FIXTURE_COMMANDS {
        items.push_str(&format!(
            "<li><a class=\"command\" href=\"/sessions/fixture?t={t}\" data-offset=\"{t}\">{cmd}</a></li>"
        ));
    }
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>fixture</title>\
         <link rel=\"stylesheet\" href=\"/static/app.css\"><link rel=\"stylesheet\" href=\"/static/asciinema-player.css\">\
         </head><body><header id=\"top\"><nav><a href=\"/\">Sessions</a> <a href=\"/report\">Report</a></nav>\
         <form id=\"search\" action=\"/search\" method=\"get\"><input type=\"search\" name=\"q\"><button type=\"submit\">Search</button></form>\
         <span id=\"whoami\">fixture</span></header><main>\
         <h1>Session <code id=\"session-id\">fixture</code></h1><p id=\"meta\">alice@web-1</p>\
         <div id=\"layout\"><div id=\"player\" data-cast=\"/api/sessions/fixture/cast\" data-start=\"{start}\"></div>\
         <aside><h2>Commands</h2><ol id=\"commands\">{items}</ol><button id=\"next-command\" type=\"button\">Next command</button></aside></div>\
         </main><script src=\"/static/asciinema-player.min.js\"></script><script src=\"/static/app.js\"></script></body></html>"
    )
}

/// A static HTTP server on loopback for the fixture: `/sessions/fixture` (the page, any
/// query), `/api/sessions/fixture/cast`, and `/static/NAME` from `web/assets/`; every
/// answer with [`FIXTURE_CSP`]. One thread per connection; lives as long as the test.
fn fixture_server(start: f64) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || serve_fixture(stream, start));
        }
    });
    port
}

fn serve_fixture(stream: TcpStream, start: f64) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
    let mut stream = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut content_length = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            if h == "\r\n" || h == "\n" {
                break;
            }
            if let Some((k, v)) = h.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                content_length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; content_length];
        let _ = reader.read_exact(&mut body);
        let target = request_line.split_whitespace().nth(1).unwrap_or("/");
        let path = target.split('?').next().unwrap_or("/");
        let (status, ctype, bytes): (&str, &str, Vec<u8>) = if path == "/sessions/fixture" {
            (
                "200 OK",
                "text/html; charset=utf-8",
                fixture_page(start).into_bytes(),
            )
        } else if path == "/api/sessions/fixture/cast" {
            (
                "200 OK",
                "application/x-asciicast",
                fixture_cast().into_bytes(),
            )
        } else if let Some(name) = path.strip_prefix("/static/")
            && !name.contains('/')
            && !name.starts_with('.')
            && let Ok(b) = std::fs::read(Path::new(ASSETS).join(name))
        {
            let ctype = match name.rsplit('.').next() {
                Some("js") => "text/javascript; charset=utf-8",
                Some("css") => "text/css; charset=utf-8",
                _ => "text/plain; charset=utf-8",
            };
            ("200 OK", ctype, b)
        } else {
            ("404 Not Found", "text/plain", b"not found".to_vec())
        };
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nContent-Security-Policy: {FIXTURE_CSP}\r\nX-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\n\r\n",
            bytes.len()
        );
        if stream.write_all(head.as_bytes()).is_err() || stream.write_all(&bytes).is_err() {
            return;
        }
    }
}

#[test]
fn player_script_seeks_and_follows_commands_under_the_csp() {
    let start = 4.0;
    let port = fixture_server(start);
    let dir = tempfile::tempdir().expect("temp dir");
    let driver = Driver::start(dir.path());
    let b = Browser::new(&driver);
    let page = format!("http://127.0.0.1:{port}/sessions/fixture?t={start}");
    b.goto(&page);

    // The player starts at data-start and marks the command at that offset.
    wait_player_at(&b, start, "start");
    let links = command_links(&b);
    let texts: Vec<&str> = links.iter().map(|c| c.0.as_str()).collect();
    let want: Vec<&str> = FIXTURE_COMMANDS.iter().map(|c| c.1).collect();
    assert_eq!(texts, want);
    assert_eq!(current_command(&b), vec![1], "{links:?}");
    // The terminal was drawn (the emulator runs): the output of the command at 1 s.
    b.wait_for("the terminal to show out-1", |b| {
        b.exec(
            "return document.getElementById('player').innerText",
            json!([]),
        )
        .as_str()
        .filter(|t| t.contains("out-1"))
        .map(|_| ())
    });
    keep_screenshot(&b, "fixture-player.png");

    // "Next command" from wherever playback is now (between 4 and 8): the one at 8.
    b.exec("return window.auditty.player.pause()", json!([]));
    let now = player_time(&b).expect("time");
    assert!((start..8.0).contains(&now), "{now}");
    b.click(&b.find("#next-command"));
    wait_player_at(&b, 8.0, "next command");
    b.wait_for("aria-current on command 3", |b| {
        (current_command(b) == vec![2]).then_some(())
    });
    assert!(b.url().ends_with("/sessions/fixture?t=8"), "{}", b.url());

    // A command link seeks instead of loading the page: the page's own state survives.
    b.exec("window.__same_page = 42; return null", json!([]));
    let links = b.find_all("#commands a.command");
    b.click(&links[0]);
    wait_player_at(&b, 1.0, "command link");
    assert_eq!(
        b.exec("return window.__same_page", json!([])),
        json!(42),
        "the link reloaded the page"
    );
    assert!(b.url().ends_with("/sessions/fixture?t=1"), "{}", b.url());
    assert_eq!(
        b.exec(
            "return document.querySelectorAll('#commands [aria-current]').length",
            json!([])
        ),
        json!(1)
    );

    // Playback itself moves the mark: from command 1 it passes command 2 at 4 s.
    b.wait_for("aria-current to follow playback to command 2", |b| {
        (current_command(b) == vec![1]).then_some(())
    });

    // Speed: the player is built anew at the same moment (paused, so the moment is
    // exact), only one of it, and "next command" drives the new one.
    b.exec("return window.auditty.player.pause()", json!([]));
    let before = player_time(&b).expect("time");
    b.click(&b.find("#speed option[value='2']"));
    b.wait_for("the player rebuilt at speed 2", |b| {
        (b.exec("return window.auditty.speed", json!([])) == json!(2)).then_some(())
    });
    let after = b.wait_for("the new player's time", player_time);
    assert!((after - before).abs() < 0.05, "{before} → {after}");
    assert_eq!(
        b.exec(
            "return document.querySelectorAll('#player .ap-player').length",
            json!([])
        ),
        json!(1),
        "one player"
    );
    b.click(&b.find("#next-command"));
    wait_player_at(&b, 8.0, "next command at speed 2");

    // At the last command there is no next one.
    b.click(&links[3]);
    wait_player_at(&b, 12.0, "last command");
    b.wait_for("#next-command disabled", |b| {
        b.exec(
            "return document.getElementById('next-command').disabled",
            json!([]),
        )
        .as_bool()
        .filter(|d| *d)
    });

    let console = b.console();
    assert!(
        csp_violations(&console).is_empty(),
        "the policy refused something:\n{}",
        console.join("\n")
    );
}

// ---- the real thing: `replay serve` over recorded sessions ---------------------------

const SIZE: WinSize = WinSize {
    cols: 120,
    rows: 30,
};
/// Pause before each command, so that commands are seconds apart in the recording and
/// "the next command" is told apart from "still on this one" by the player's clock.
const GAP: Duration = Duration::from_millis(2200);
const USER: &str = "auditor";
const PASSWORD: &str = "correct horse battery staple 18";
/// The word the test searches for; only this command holds it (its output does not).
const NEEDLE: &str = "zebraneedle";

/// Records one bash session through the agent: each (command, text its output shows),
/// typed after [`GAP`], then `exit`.
fn record(sb: &Sandbox, commands: &[(&str, &str)]) {
    let mut s = sb.record_bash(&[], &[], SIZE);
    for (c, shows) in commands {
        std::thread::sleep(GAP);
        s.type_line(c);
        s.wait_for(shows, T);
    }
    std::thread::sleep(GAP);
    s.type_line("exit");
    let status = s.wait(T);
    assert!(status.success(), "{status}: {}", s.rows().join("\n"));
}

/// `replay commands ID --json`: (command, offset in seconds).
fn commands_of(sb: &Sandbox, id: &str) -> Vec<(String, f64)> {
    sb.run(sb.cmd("replay").args(["commands", id, "--json"]))
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}"));
            (
                v["command"].as_str().expect("command").to_string(),
                v["offset_ns"].as_u64().expect("offset_ns") as f64 / 1e9,
            )
        })
        .collect()
}

/// An auth file with one user, [`USER`], who may see everything.
fn auth_file(sb: &Sandbox) -> PathBuf {
    let auth = sb.path().join("auth.toml");
    std::fs::write(
        &auth,
        format!(
            "[[user]]\nname = \"{USER}\"\npassword_hash = \"{}\"\nroles = [\"everything\"]\n\n\
             [[role]]\nname = \"everything\"\nhosts = [\"*\"]\nusers = [\"*\"]\n",
            sb.hash_password(PASSWORD)
        ),
    )
    .expect("auth file");
    auth
}

/// `replay serve` on a free loopback port; killed on drop, its log shown if the test
/// failed.
struct Server {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Server {
    fn start(sb: &Sandbox, auth: &Path) -> Server {
        let port = free_port();
        let mut cmd = sb.cmd("replay");
        cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--auth"])
            .arg(auth);
        let child = sb.spawn_logged(cmd, "serve.log");
        let mut server = Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log: sb.path().join("serve.log"),
        };
        let deadline = Instant::now() + T;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("replay serve exited with {status}:\n{}", server.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "replay serve never listened on {port}:\n{}",
                server.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- replay serve log ---\n{}", self.log_text());
        }
    }
}

/// `?t=SECONDS` of a link.
fn t_of(href: &str) -> f64 {
    href.split_once("?t=")
        .and_then(|(_, t)| t.split('&').next())
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("no ?t= in {href:?}"))
}

#[test]
fn serve_login_search_play_next_command_report() {
    let sb = Sandbox::new();
    record(
        &sb,
        &[
            ("echo first-$((6*7))", "first-42"),
            (&format!("true {NEEDLE}; echo second-$((6*8))"), "second-48"),
            ("echo third-$((6*9))", "third-54"),
            ("echo fourth-$((7*9))", "fourth-63"),
        ],
    );
    record(
        &sb,
        &[
            ("echo other-$((5*5))", "other-25"),
            ("echo another-$((5*6))", "another-30"),
        ],
    );
    sb.ingest();
    sb.run(sb.cmd("replay").arg("index"));
    let ids: Vec<String> = sb
        .sessions()
        .iter()
        .map(|s| s["id"].as_str().expect("id").to_string())
        .collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    let by_id: BTreeMap<String, Vec<(String, f64)>> = ids
        .iter()
        .map(|id| (id.clone(), commands_of(&sb, id)))
        .collect();
    let (id, commands) = by_id
        .iter()
        .find(|(_, c)| c.iter().any(|(c, _)| c.contains(NEEDLE)))
        .expect("the session with the needle");
    let hit = commands
        .iter()
        .position(|(c, _)| c.contains(NEEDLE))
        .expect("needle command");
    assert!(
        hit + 2 < commands.len(),
        "two commands after the hit: {commands:?}"
    );
    // What `replay report` says over the same store, for the report page.
    let report: Value =
        serde_json::from_str(&sb.run(sb.cmd("replay").args(["report", "--format", "json"])))
            .expect("the JSON report parses");

    let server = Server::start(&sb, &auth_file(&sb));
    let driver = Driver::start(sb.path());
    let b = Browser::new(&driver);
    let mut console = Vec::new();

    // Not logged in: the login page.
    b.goto(&format!("{}/", server.base));
    let form = b.find("form#login");
    assert_eq!(b.attr(&form, "action").as_deref(), Some("/login"));
    assert!(
        !b.find_all("form#login input[type=hidden][name=csrf]")
            .is_empty(),
        "no CSRF field in the login form"
    );
    b.send_keys(&b.find("form#login input[name=user]"), USER);
    b.send_keys(&b.find("form#login input[name=password]"), PASSWORD);
    keep_screenshot(&b, "serve-login.png");
    b.click(&b.find("form#login [type=submit]"));
    b.wait_for("the session list after logging in", |b| {
        (b.url() == format!("{}/", server.base) && !b.find_all("form#search").is_empty())
            .then_some(())
    });
    console.extend(b.console());

    // Search for the command; one hit, at the offset `replay commands` gives it.
    let q = b.find("form#search input[name=q]");
    b.send_keys(&q, &format!("cmd:{NEEDLE}\u{E007}"));
    b.wait_for("search hits", |b| {
        (!b.find_all("a.hit").is_empty()).then_some(())
    });
    assert!(b.url().contains("/search?"), "{}", b.url());
    let hits = b.find_all("a.hit");
    assert_eq!(hits.len(), 1, "hits:\n{}", b.page_text());
    let href = b.attr(&hits[0], "href").expect("href");
    assert!(
        href.starts_with(&format!("/sessions/{id}?t=")),
        "{href} is not a link into {id}"
    );
    keep_screenshot(&b, "serve-search.png");
    let t = t_of(&href);
    assert!(
        (t - commands[hit].1).abs() < 0.001,
        "hit at {t}s, the command at {}s",
        commands[hit].1
    );
    console.extend(b.console());

    // Open it: the player starts at the hit's moment, beside the session's commands.
    b.click(&hits[0]);
    let player = b.find("#player");
    assert_eq!(
        b.attr(&player, "data-cast").as_deref(),
        Some(format!("/api/sessions/{id}/cast").as_str())
    );
    let start: f64 = b
        .attr(&player, "data-start")
        .expect("data-start")
        .parse()
        .expect("data-start is a number");
    assert!((start - t).abs() < 0.001, "data-start {start}, hit {t}");
    let now = wait_player_at(&b, t, "the player's start");
    eprintln!("hit at {t:.3}s; the player at {now:.3}s");
    // The hit's output drawn (the terminal emulator runs), then paused there, so that
    // playback cannot pass the next command while the page is checked.
    b.wait_for("the terminal to show the hit's output", |b| {
        b.exec(
            "return document.getElementById('player').innerText",
            json!([]),
        )
        .as_str()
        .filter(|s| s.contains("second-48"))
        .map(|_| ())
    });
    b.exec("return window.auditty.player.pause()", json!([]));
    let links = command_links(&b);
    assert_eq!(
        links.iter().map(|l| l.0.as_str()).collect::<Vec<_>>(),
        commands.iter().map(|c| c.0.as_str()).collect::<Vec<_>>(),
        "the command list"
    );
    for (l, c) in links.iter().zip(commands) {
        assert!((l.1 - c.1).abs() < 0.001, "{:?} at {} vs {}", l.0, l.1, c.1);
    }
    b.wait_for("aria-current on the hit's command", |b| {
        (current_command(b) == vec![hit]).then_some(())
    });
    keep_screenshot(&b, "serve-player.png");

    // Next command: the first after where playback was paused.
    let paused = player_time(&b).expect("the player's time");
    let next = commands[hit + 1].1;
    assert!(paused < next, "paused at {paused}, next command at {next}");
    b.click(&b.find("#next-command"));
    wait_player_at(&b, next, "next command");
    b.wait_for("aria-current on the next command", |b| {
        (current_command(b) == vec![hit + 1]).then_some(())
    });
    assert!(
        (t_of(&b.url()) - next).abs() < 0.001,
        "the address bar: {}",
        b.url()
    );
    // And it plays on: the mark follows playback to the command after.
    b.wait_for("aria-current to follow playback", |b| {
        (current_command(b) == vec![hit + 2]).then_some(())
    });
    keep_screenshot(&b, "serve-player-next.png");
    console.extend(b.console());

    // The report: the numbers `replay report` gives.
    b.goto(&format!("{}/report", server.base));
    b.find("#n-sessions");
    let h = &report["header"];
    let not_complete =
        h["sessions"].as_u64().expect("sessions") - h["verdicts"]["complete"].as_u64().unwrap_or(0);
    for (card, want) in [
        ("n-sessions", h["sessions"].as_u64()),
        ("n-commands", h["commands"].as_u64()),
        ("n-findings", h["findings"].as_u64()),
        ("n-not-complete", Some(not_complete)),
        ("n-sealed", h["sealed_sessions"].as_u64()),
    ] {
        let want = want.unwrap_or_else(|| panic!("{card}: not in the JSON report"));
        assert_eq!(
            b.text(&b.find(&format!("#{card}"))).trim(),
            want.to_string(),
            "#{card}"
        );
    }
    assert_eq!(h["sessions"], 2);
    assert_eq!(
        h["commands"].as_u64(),
        Some(by_id.values().map(|c| c.len() as u64).sum()),
        "{h:#}"
    );
    keep_screenshot(&b, "serve-report.png");
    console.extend(b.console());

    assert!(
        csp_violations(&console).is_empty(),
        "the page's Content-Security-Policy refused something:\n{}",
        console.join("\n")
    );
    drop(b);
    drop(server);
}

/// Issue 18: a long session starts playing before it has arrived. An hour-long session
/// of 1.6 MB (over `web::segments::SEGMENTED_ABOVE_BYTES`) plays as a segmented
/// recording: opened at 50 minutes, the player fetches the index and the segments at
/// the playhead, shows the screen as it was there (drawn from the segment's snapshot),
/// and not the 49 minutes before; a seek back to the start then fetches the first one.
#[test]
fn a_long_session_plays_segmented_from_where_it_is_opened() {
    let sb = Sandbox::new();
    let mut cast =
        json!({"version": 2, "width": 100, "height": 30, "timestamp": 1_795_000_000}).to_string();
    cast.push('\n');
    let pad = "·".repeat(200);
    for i in 0..3600 {
        cast.push_str(&json!([f64::from(i), "o", format!("line-{i} {pad}\r\n")]).to_string());
        cast.push('\n');
    }
    assert!(cast.len() > 1 << 20, "{}", cast.len());
    let path = sb.path().join("long.cast");
    std::fs::write(&path, &cast).expect("write the cast");
    let out = sb.run(
        sb.cmd("replay")
            .args(["import", "--user", "alice", "--host", "web-1"])
            .arg(&path),
    );
    let id = out.split_whitespace().next().expect("the id").to_string();
    sb.run(sb.cmd("replay").arg("index"));

    let server = Server::start(&sb, &auth_file(&sb));
    let driver = Driver::start(sb.path());
    let b = Browser::new(&driver);
    b.goto(&format!("{}/login", server.base));
    b.send_keys(&b.find("form#login input[name=user]"), USER);
    b.send_keys(&b.find("form#login input[name=password]"), PASSWORD);
    b.click(&b.find("form#login [type=submit]"));
    b.wait_for("the session list after logging in", |b| {
        (!b.find_all("form#search").is_empty()).then_some(())
    });

    b.goto(&format!("{}/sessions/{id}?t=3000", server.base));
    let player = b.find("#player");
    assert_eq!(
        b.attr(&player, "data-segments").as_deref(),
        Some(format!("/api/sessions/{id}/cast/segments").as_str())
    );
    wait_player_at(&b, 3000.0, "opened at 50 minutes");
    b.exec("return window.auditty.player.pause()", json!([]));
    b.wait_for("the screen at 50 minutes", |b| {
        b.exec(
            "return document.getElementById('player').innerText",
            json!([]),
        )
        .as_str()
        .filter(|t| t.contains("line-2999") && !t.contains("line-2900 "))
        .map(|_| ())
    });
    keep_screenshot(&b, "segmented-player.png");
    let fetched = |b: &Browser| -> Vec<String> {
        b.exec(
            "return performance.getEntriesByType('resource').map(e => e.name)",
            json!([]),
        )
        .as_array()
        .expect("resource names")
        .iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .filter(|u| u.contains("/api/sessions/"))
        .collect()
    };
    let segment_numbers = |urls: &[String]| -> Vec<usize> {
        urls.iter()
            .filter_map(|u| u.rsplit_once("/cast/segments/"))
            .filter_map(|(_, n)| n.parse().ok())
            .collect()
    };
    let urls = fetched(&b);
    assert!(
        urls.iter().any(|u| u.ends_with("/cast/segments")),
        "the index: {urls:?}"
    );
    assert!(
        !urls.iter().any(|u| u.ends_with("/cast")),
        "the whole cast was fetched: {urls:?}"
    );
    let first = segment_numbers(&urls);
    // 3,600 s in segments of at most 120 s: 30 or more; 50 minutes is past the 24th.
    assert!(
        !first.is_empty() && first.iter().all(|n| *n >= 24) && first.len() <= 3,
        "segments fetched for 50 minutes: {first:?}"
    );

    b.exec("return window.auditty.player.seek(5)", json!([]));
    wait_player_at(&b, 5.0, "back to the start");
    b.wait_for("the screen at 5 s", |b| {
        b.exec(
            "return document.getElementById('player').innerText",
            json!([]),
        )
        .as_str()
        .filter(|t| t.contains("line-5 ") && !t.contains("line-2999"))
        .map(|_| ())
    });
    assert!(segment_numbers(&fetched(&b)).contains(&0));
    let console = b.console();
    assert!(
        csp_violations(&console).is_empty(),
        "the policy refused something:\n{}",
        console.join("\n")
    );
    drop(server);
}
