//! Issue 18: `replay serve`, the web player, from the outside: authentication, the one
//! authorization rule (a token of `hosts = ["web-*"]` sees nothing of db-1 by any route),
//! the security headers, the login rate limit, the refusal of plain HTTP off loopback,
//! and the access events every read records.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use std::time::Duration;

use auditty_tests::{Sandbox, show, ssh_key};
use terminal::pty::WinSize;

const CSP: &str = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// An asciicast of a shell session running `commands`, each with one line of output.
fn cast(start: i64, commands: &[(&str, &str)]) -> String {
    let mut out = format!(
        "{{\"version\": 2, \"width\": 80, \"height\": 24, \"timestamp\": {start}}}\n[0.5, \"o\", \"$ \"]\n"
    );
    for (i, (cmd, output)) in commands.iter().enumerate() {
        let t = 1.0 + i as f64;
        out.push_str(&format!("[{:.1}, \"i\", \"{cmd}\"]\n", t - 0.1));
        out.push_str(&format!("[{t:.1}, \"o\", \"{cmd}\"]\n"));
        out.push_str(&format!("[{:.1}, \"i\", \"\\r\"]\n", t + 0.1));
        out.push_str(&format!(
            "[{:.1}, \"o\", \"\\r\\n{output}\\r\\n$ \"]\n",
            t + 0.2
        ));
    }
    out
}

/// Imports a session of `user` on `host`; returns its id.
fn import(sb: &Sandbox, name: &str, user: &str, host: &str, text: &str) -> String {
    let path = sb.path().join(name);
    std::fs::write(&path, text).unwrap();
    let out = sb.run(
        sb.cmd("replay")
            .args(["import", "--user", user, "--host", host])
            .arg(&path),
    );
    out.split_whitespace().next().unwrap().to_string()
}

fn sha256_hex(text: &str) -> String {
    let out = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(text.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

fn auth_file(sb: &Sandbox) -> std::path::PathBuf {
    let path = sb.path().join("auth.toml");
    let text = format!(
        r#"
[[role]]
name = "web"
hosts = ["web-*"]
users = ["*"]

[[role]]
name = "all"
hosts = ["*"]
users = ["*"]

[[user]]
name = "alice"
password_hash = "{alice}"
roles = ["web"]

[[token]]
name = "ci"
sha256 = "{ci}"
roles = ["web"]

[[token]]
name = "admin"
sha256 = "{admin}"
roles = ["all"]
"#,
        alice = sb.hash_password("alice-password"),
        ci = sha256_hex("ci-token"),
        admin = sha256_hex("admin-token"),
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// The server, killed when dropped.
struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(sb: &Sandbox, auth: &Path) -> Server {
    start_with(sb, auth, &[])
}

fn start_with(sb: &Sandbox, auth: &Path, extra: &[&str]) -> Server {
    start_on(sb, "127.0.0.1:0", auth, extra)
}

/// `replay serve` on `listen`; `base` is the URL it says it listens on.
fn start_on(sb: &Sandbox, listen: &str, auth: &Path, extra: &[&str]) -> Server {
    let mut child = sb
        .cmd("replay")
        .args(["serve", "--listen", listen, "--auth"])
        .arg(auth)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(sb.path().join("serve.log")).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("replay serve: listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .trim_end_matches('/')
        .to_string();
    Server { child, base }
}

struct Reply {
    status: u16,
    headers: ureq::http::HeaderMap,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    }

    fn cookies(&self) -> Vec<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect()
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .build()
        .into()
}

fn reply(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
    let mut r = r.unwrap();
    Reply {
        status: r.status().as_u16(),
        headers: r.headers().clone(),
        body: r.body_mut().read_to_string().unwrap_or_default(),
    }
}

/// GET with optional headers (name, value).
fn get(s: &Server, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut req = agent().get(format!("{}{path}", s.base));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    reply(req.call())
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_string()
}

/// The value of `name="…"` after `marker` in `html`.
fn attr(html: &str, marker: &str, name: &str) -> String {
    let from = &html[html
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker} in {html}"))..];
    let key = format!("{name}=\"");
    let at = from.find(&key).unwrap() + key.len();
    from[at..at + from[at..].find('"').unwrap()].to_string()
}

/// One login attempt with a fresh form: (reply, session cookie if any).
fn login(s: &Server, user: &str, password: &str) -> (Reply, Option<String>) {
    let form = get(s, "/login", &[]);
    assert_eq!(form.status, 200);
    let csrf = attr(&form.body, "name=\"csrf\"", "value");
    let login_cookie = cookie_pair(&form.cookies()[0]);
    let r = reply(
        agent()
            .post(format!("{}/login", s.base))
            .header("Cookie", &login_cookie)
            .send_form([
                ("user", user),
                ("password", password),
                ("csrf", csrf.as_str()),
                ("next", "/"),
            ]),
    );
    let session = r
        .cookies()
        .into_iter()
        .find(|c| c.starts_with("auditty="))
        .map(|c| cookie_pair(&c));
    (r, session)
}

struct Corpus {
    web1: String,
    web2: String,
    db1: String,
}

fn corpus(sb: &Sandbox) -> Corpus {
    let web1 = import(
        sb,
        "web1.cast",
        "alice",
        "web-1",
        &cast(
            1_795_800_000,
            &[("echo webmarker", "webmarker"), ("ls /srv", "site")],
        ),
    );
    let web2 = import(
        sb,
        "web2.cast",
        "carol",
        "web-2",
        &cast(
            1_795_800_100,
            &[("echo hello", "hello"), ("history -c", "")],
        ),
    );
    let db1 = import(
        sb,
        "db1.cast",
        "bob",
        "db-1",
        &cast(
            1_795_800_200,
            &[
                ("echo dbsecret", "zebrastripe"),
                ("psql -c 'drop table x'", "DROP"),
            ],
        ),
    );
    sb.run(sb.cmd("replay").arg("index"));
    Corpus { web1, web2, db1 }
}

/// Nothing of db-1 in `text`.
fn assert_no_db(c: &Corpus, text: &str, what: &str) {
    for secret in [
        c.db1.as_str(),
        &c.db1[..8],
        "db-1",
        "bob",
        "zebrastripe",
        "dbsecret",
    ] {
        assert!(!text.contains(secret), "{what} shows {secret:?}:\n{text}");
    }
}

#[test]
fn web_player_authenticates_authorizes_and_audits() {
    let sb = Sandbox::new();
    let c = corpus(&sb);
    let auth = auth_file(&sb);
    let s = start(&sb, &auth);

    nothing_without_login(&s, &c);
    let session = browser_login_and_pages(&s, &c);
    token_sees_nothing_of_db(&s, &c);
    headers_everywhere(&s, &c, &session);
    the_admin_token_sees_db(&s, &c);
    flagged_filter(&s, &c);
    access_events_recorded(&sb, &c);
    wrong_passwords_are_rate_limited(&s);
    plain_http_refused_off_loopback(&sb, &auth);
}

fn nothing_without_login(s: &Server, c: &Corpus) {
    let id = &c.web1;
    for path in [
        "/".to_string(),
        "/search?q=webmarker".into(),
        format!("/sessions/{id}"),
        "/report".into(),
        "/nonexistent".into(),
    ] {
        let r = get(s, &path, &[]);
        assert_eq!(r.status, 303, "{path}: {}", r.body);
        assert!(r.header("location").starts_with("/login?next="), "{path}");
        assert!(!r.body.contains("webmarker"), "{path}");
    }
    for path in [
        "/api/sessions".to_string(),
        format!("/api/sessions/{id}"),
        format!("/api/sessions/{id}/cast"),
        format!("/api/sessions/{id}/commands"),
        "/api/search?q=webmarker".into(),
        "/api/nonexistent".into(),
    ] {
        let r = get(s, &path, &[]);
        assert_eq!(r.status, 401, "{path}: {}", r.body);
        assert!(!r.body.contains(id.as_str()) && !r.body.contains("webmarker"));
        let wrong = get(s, &path, &[("Authorization", "Bearer not-a-token")]);
        assert_eq!(wrong.status, 401, "{path} with a wrong token");
    }
    let form = get(s, "/login", &[]);
    assert_eq!(form.status, 200);
    for needle in [
        "<form id=\"login\" method=\"post\" action=\"/login\">",
        "name=\"user\"",
        "name=\"password\"",
        "name=\"csrf\"",
    ] {
        assert!(form.body.contains(needle), "login form lacks {needle}");
    }
    let css = get(s, "/static/app.css", &[]);
    assert_eq!(css.status, 200);
    assert!(css.header("content-type").starts_with("text/css"));
}

fn browser_login_and_pages(s: &Server, c: &Corpus) -> String {
    // A forged CSRF token is refused.
    let form = get(s, "/login", &[]);
    let login_cookie = cookie_pair(&form.cookies()[0]);
    let forged = reply(
        agent()
            .post(format!("{}/login", s.base))
            .header("Cookie", &login_cookie)
            .send_form([
                ("user", "alice"),
                ("password", "alice-password"),
                ("csrf", "0000"),
            ]),
    );
    assert_eq!(forged.status, 403);
    assert!(!forged.cookies().iter().any(|c| c.starts_with("auditty=")));

    let (ok, session) = login(s, "alice", "alice-password");
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert_eq!(ok.header("location"), "/");
    let set = ok
        .cookies()
        .into_iter()
        .find(|c| c.starts_with("auditty="))
        .unwrap();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    assert!(!set.contains("Secure"), "plain HTTP on loopback: {set}");
    let session = session.unwrap();
    assert_eq!(
        session.len(),
        "auditty=".len() + 64,
        "256-bit id: {session}"
    );
    let cookie = [("Cookie", session.as_str())];

    let list = get(s, "/", &cookie);
    assert_eq!(list.status, 200);
    assert!(
        list.body
            .contains(&format!("href=\"/sessions/{}\"", c.web1))
    );
    assert!(
        list.body
            .contains(&format!("href=\"/sessions/{}\"", c.web2))
    );
    assert!(list.body.contains("<form id=\"search\" action=\"/search\""));
    assert_no_db(c, &list.body, "the list page");

    let hits = get(s, "/search?q=echo", &cookie);
    assert_eq!(hits.status, 200);
    assert!(
        hits.body.contains(&format!(
            "<a class=\"hit\" href=\"/sessions/{}?t=1.1\">",
            c.web1
        )),
        "{}",
        hits.body
    );
    assert_no_db(c, &hits.body, "the search page");

    let player = get(s, &format!("/sessions/{}?t=1.5", c.web1), &cookie);
    assert_eq!(player.status, 200);
    for needle in [
        format!(
            "<div id=\"player\" data-cast=\"/api/sessions/{}/cast\" data-start=\"1.5\"></div>",
            c.web1
        ),
        "<ol id=\"commands\">".to_string(),
        format!(
            "<li><a class=\"command\" href=\"/sessions/{}?t=1.1\" data-offset=\"1.1\">echo webmarker</a></li>",
            c.web1
        ),
        "<button id=\"next-command\" type=\"button\">Next command</button>".into(),
        "<script src=\"/static/asciinema-player.min.js\"></script>".into(),
        "<script src=\"/static/app.js\"></script>".into(),
        "<link rel=\"stylesheet\" href=\"/static/asciinema-player.css\">".into(),
        "<link rel=\"stylesheet\" href=\"/static/app.css\">".into(),
    ] {
        assert!(
            player.body.contains(&needle),
            "player page lacks {needle}:\n{}",
            player.body
        );
    }
    assert!(!player.body.contains(" style=") && !player.body.contains("<script>"));

    // The browser session reads the API too.
    let cast = get(s, &format!("/api/sessions/{}/cast", c.web1), &cookie);
    assert_eq!(cast.status, 200);
    assert!(
        cast.body.starts_with("{\"version\":2") || cast.body.starts_with("{\"version\": 2"),
        "{}",
        cast.body
    );
    assert!(cast.body.contains("webmarker"));

    // Logging out needs the CSRF token.
    let csrf = attr(&list.body, "<form id=\"logout\"", "value");
    let no_csrf = reply(
        agent()
            .post(format!("{}/logout", s.base))
            .header("Cookie", &session)
            .send_form([("csrf", "wrong")]),
    );
    assert_eq!(no_csrf.status, 403);
    assert_eq!(get(s, "/", &cookie).status, 200, "still logged in");
    let (_, second) = login(s, "alice", "alice-password");
    let second = second.unwrap();
    let second_list = get(s, "/", &[("Cookie", second.as_str())]);
    let second_csrf = attr(&second_list.body, "<form id=\"logout\"", "value");
    assert_ne!(second_csrf, csrf, "CSRF tokens are per session");
    let out = reply(
        agent()
            .post(format!("{}/logout", s.base))
            .header("Cookie", &second)
            .send_form([("csrf", second_csrf.as_str())]),
    );
    assert_eq!(out.status, 303);
    assert_eq!(
        get(s, "/", &[("Cookie", second.as_str())]).status,
        303,
        "logged out"
    );
    session
}

fn token_sees_nothing_of_db(s: &Server, c: &Corpus) {
    let auth = bearer("ci-token");
    let h = [("Authorization", auth.as_str())];
    let missing = "01a21e05-6600-7000-8000-000000000000";
    let web = &c.web1;
    let db = &c.db1;

    let list = get(s, "/api/sessions", &h);
    assert_eq!(list.status, 200);
    let v: serde_json::Value = serde_json::from_str(&list.body).unwrap();
    let ids: Vec<&str> = v["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&web.as_str()) && ids.contains(&c.web2.as_str()),
        "{ids:?}"
    );
    assert_no_db(c, &list.body, "GET /api/sessions");
    for q in [
        "host=db-1",
        "user=bob",
        "sealed=no&host=db-1",
        "per_page=1&page=3",
    ] {
        let r = get(s, &format!("/api/sessions?{q}"), &h);
        assert_eq!(r.status, 200, "{q}");
        assert_no_db(c, &r.body, q);
    }

    // The same 404 for a session that is not there and one that is not ours, by every
    // route, and for prefixes (never resolved) and path tricks.
    let api_404 = get(s, &format!("/api/sessions/{missing}"), &h);
    assert_eq!(api_404.status, 404);
    let page_404 = get(s, &format!("/sessions/{missing}"), &h);
    assert_eq!(page_404.status, 404);
    for suffix in ["", "/cast", "/commands", "/cast?download=1"] {
        let r = get(s, &format!("/api/sessions/{db}{suffix}"), &h);
        let m = get(s, &format!("/api/sessions/{missing}{suffix}"), &h);
        assert_eq!(
            (r.status, &r.body),
            (404, &m.body),
            "/api/sessions/DB{suffix}"
        );
        assert_eq!(r.body, api_404.body);
    }
    let r = get(s, &format!("/sessions/{db}?t=1"), &h);
    assert_eq!((r.status, &r.body), (404, &page_404.body));
    for path in [
        format!("/api/sessions/{}", &db[..8]),
        format!("/api/sessions/{}/cast", &db[..8]),
        format!("/api/sessions/{}", &web[..8]),
        format!("/sessions/{}", &db[..8]),
        format!("/api/sessions/{}", db.to_uppercase().replace('-', "")),
        format!("/api/sessions/%2e%2e/sessions/{db}/cast"),
        format!("/api/sessions/{web}/%2e%2e/{db}/cast"),
        format!("/api/sessions/{web}%2f..%2f{db}/cast"),
        format!("/static/%2e%2e/%2e%2e/api/sessions/{db}/cast"),
        "/static/%2e%2e/Cargo.toml".to_string(),
        format!("/api/search?q=id:{db}"),
    ] {
        let r = get(s, &path, &h);
        assert!(
            r.status != 200 || path.contains("search"),
            "{path}: {}",
            r.status
        );
        assert_no_db(c, &r.body, &path);
        assert!(!r.body.contains("[package]"), "{path}");
    }

    // Search: hits and snippets of db-1 are gone, even for words only it has.
    for q in [
        "echo",
        "zebrastripe",
        "zebra*",
        "dbsecret",
        "host:db-1",
        "user:bob",
        "drop",
    ] {
        let r = get(s, &format!("/api/search?q={q}"), &h);
        assert_eq!(r.status, 200, "{q}");
        let page = get(s, &format!("/search?q={q}"), &h);
        for (what, body) in [("/api/search", &r.body), ("/search", &page.body)] {
            let shown = body.replace(q, "");
            for secret in [
                c.db1.as_str(),
                &c.db1[..8],
                "zebrastripe",
                "dbsecret",
                "\"db-1",
                ">db-1",
                "@db-1",
            ] {
                assert!(
                    !shown.contains(secret),
                    "{what}?q={q} shows {secret}:\n{body}"
                );
            }
        }
    }
    let bad = get(s, "/api/search?q=cmd:(", &h);
    assert_eq!(bad.status, 400, "a bad query says so: {}", bad.body);
    let commands: serde_json::Value =
        serde_json::from_str(&get(s, &format!("/api/sessions/{web}/commands"), &h).body).unwrap();
    assert_eq!(commands["commands"][1]["command"], "ls /srv", "{commands}");
    assert_eq!(commands["commands"][1]["offset"], 2.1, "{commands}");
    let echo: serde_json::Value =
        serde_json::from_str(&get(s, "/api/search?q=echo", &h).body).unwrap();
    assert_eq!(echo["hits"].as_array().unwrap().len(), 2, "{echo}");

    // The report: rows of web sessions only.
    for q in ["", "?host=db-1", "?user=bob", "?since=2026-01-01"] {
        let r = get(s, &format!("/report{q}"), &h);
        assert_eq!(r.status, 200, "/report{q}");
        if q.contains("db-1") || q.contains("bob") {
            // The filter itself is shown back; nothing of the session is.
            for secret in [c.db1.as_str(), &c.db1[..8], "zebrastripe", "dbsecret"] {
                assert!(!r.body.contains(secret), "/report{q} shows {secret}");
            }
        } else {
            assert_no_db(c, &r.body, &format!("/report{q}"));
        }
        if q.is_empty() {
            assert!(r.body.contains(web.as_str()), "the report lacks web-1");
        }
        let csp = r.header("content-security-policy");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
    }
}

fn headers_everywhere(s: &Server, c: &Corpus, session: &str) {
    let auth = bearer("ci-token");
    let paths = [
        "/".to_string(),
        "/search?q=echo".into(),
        format!("/sessions/{}", c.web1),
        "/api/sessions".into(),
        format!("/api/sessions/{}", c.web1),
        format!("/api/sessions/{}/cast", c.web1),
        "/api/search?q=echo".into(),
        format!("/api/sessions/{}", c.db1),
    ];
    for path in &paths {
        for h in [("Authorization", auth.as_str()), ("Cookie", session)] {
            let r = get(s, path, &[h]);
            assert_eq!(r.header("content-security-policy"), CSP, "{path}");
            assert_eq!(r.header("x-content-type-options"), "nosniff", "{path}");
            assert_eq!(r.header("referrer-policy"), "same-origin", "{path}");
            assert_eq!(r.header("cache-control"), "no-store", "{path}");
        }
    }
    let login = get(s, "/login", &[]);
    assert_eq!(login.header("content-security-policy"), CSP);
    assert_eq!(login.header("cache-control"), "no-store");
    let js = get(s, "/static/app.js", &[]);
    assert_eq!(js.status, 200);
    assert!(js.header("content-type").starts_with("text/javascript"));
    assert_eq!(js.header("x-content-type-options"), "nosniff");
    assert_ne!(js.header("cache-control"), "no-store");
}

fn the_admin_token_sees_db(s: &Server, c: &Corpus) {
    let auth = bearer("admin-token");
    let h = [("Authorization", auth.as_str())];
    let cast = get(s, &format!("/api/sessions/{}/cast", c.db1), &h);
    assert_eq!(cast.status, 200, "the 404s above are the roles' doing");
    assert!(cast.body.contains("zebrastripe"));
    let one: serde_json::Value =
        serde_json::from_str(&get(s, &format!("/api/sessions/{}", c.db1), &h).body).unwrap();
    assert_eq!(one["session"]["host"], "db-1");
    assert_eq!(one["commands"][0]["command"], "echo dbsecret");
    assert_eq!(one["commands"][0]["offset"], 1.1);
    let hits: serde_json::Value =
        serde_json::from_str(&get(s, "/api/search?q=echo", &h).body).unwrap();
    assert_eq!(hits["hits"].as_array().unwrap().len(), 3, "{hits}");
}

/// `flagged`: the sessions whose commands a built-in rule flags (web-2's `history -c`),
/// as `replay index` stored them; within the caller's roles like every other filter.
fn flagged_filter(s: &Server, c: &Corpus) {
    let ids = |path: &str, token: &str| {
        let r = get(s, path, &[("Authorization", &bearer(token))]);
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        let mut ids: Vec<String> = v["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        (ids, v)
    };
    let (flagged, v) = ids("/api/sessions?flagged=yes", "admin-token");
    assert_eq!(flagged, vec![c.web2.clone()], "{v:#}");
    assert_eq!(
        v["sessions"][0]["findings"],
        serde_json::json!(["history-tampering"])
    );
    let (clean, _) = ids("/api/sessions?flagged=no", "admin-token");
    let mut expected = vec![c.web1.clone(), c.db1.clone()];
    expected.sort();
    assert_eq!(clean, expected);
    let (web_only, _) = ids("/api/sessions?flagged=no", "ci-token");
    assert_eq!(web_only, vec![c.web1.clone()]);
    let bad = get(
        s,
        "/api/sessions?flagged=maybe",
        &[("Authorization", &bearer("admin-token"))],
    );
    assert_eq!(bad.status, 400, "{}", bad.body);
    let page = get(
        s,
        "/?flagged=yes",
        &[("Authorization", &bearer("ci-token"))],
    );
    assert_eq!(page.status, 200);
    assert!(page.body.contains(&c.web2) && !page.body.contains(&c.web1));
    assert!(page.body.contains("history-tampering"), "{}", page.body);
}

fn access_events_recorded(sb: &Sandbox, c: &Corpus) {
    let out = sb.run(sb.cmd("replay").args(["access-log", "--json"]));
    let events: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let by = |user: &str, action: &str| {
        events
            .iter()
            .filter(|e| e["user"] == user && e["action"] == action)
            .collect::<Vec<_>>()
    };
    for (user, action) in [
        ("token:ci", "list"),
        ("token:ci", "search"),
        ("token:ci", "report"),
        ("alice", "list"),
        ("alice", "search"),
        ("alice", "commands"),
        ("alice", "play"),
        ("token:admin", "play"),
    ] {
        let found = by(user, action);
        assert!(!found.is_empty(), "no {action} by {user} in {out}");
        assert!(
            found[0]["detail"]
                .as_str()
                .unwrap()
                .starts_with("web from 127.0.0.1:"),
            "{}",
            found[0]
        );
    }
    let played = by("alice", "play");
    assert_eq!(played[0]["sessions"][0], c.web1.as_str());
    let admin = by("token:admin", "play");
    assert_eq!(admin[0]["sessions"][0], c.db1.as_str());
    // Nothing of db-1 was ever shown to token:ci, so no event of it names db-1.
    for e in by("token:ci", "list")
        .into_iter()
        .chain(by("token:ci", "search"))
        .chain(by("token:ci", "report"))
    {
        assert!(!e["sessions"].to_string().contains(c.db1.as_str()), "{e}");
    }
}

fn wrong_passwords_are_rate_limited(s: &Server) {
    for i in 0..5 {
        let (r, session) = login(s, "alice", "wrong");
        assert_eq!(r.status, 401, "attempt {i}");
        assert!(session.is_none());
    }
    let (r, session) = login(s, "alice", "alice-password");
    assert_eq!(r.status, 429, "even the right password, now");
    assert!(session.is_none());
    let wait: u64 = r.header("retry-after").parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    // Per address too: another user from the same address.
    let (other, _) = login(s, "mallory", "x");
    assert_eq!(other.status, 429);
}

fn plain_http_refused_off_loopback(sb: &Sandbox, auth: &Path) {
    let out = sb.output(
        sb.cmd("replay")
            .args(["serve", "--listen", "0.0.0.0:0", "--auth"])
            .arg(auth),
    );
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--tls-cert") && err.contains("--insecure-http"),
        "{err}"
    );
    let unknown = sb.output(sb.cmd("replay").args(["serve", "--listen", "127.0.0.1:0"]));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("--auth"));
}

#[test]
fn sealed_sessions_play_only_with_an_identity() {
    let sb = Sandbox::new();
    let (key, public) = ssh_key(&sb.path().join("keys"), "auditor");
    let mut pty = sb.record_bash(
        &["--recipient", &public],
        &[],
        WinSize { cols: 80, rows: 24 },
    );
    pty.type_line("echo sealed-$((40+2))");
    pty.wait_for("sealed-42", Duration::from_secs(30));
    pty.type_line("exit");
    assert!(pty.wait(Duration::from_secs(30)).success());
    sb.ingest();
    let id = sb.sessions()[0]["id"].as_str().unwrap().to_string();
    let auth = auth_file(&sb);
    let h = bearer("admin-token");
    let h = [("Authorization", h.as_str())];

    let closed = start(&sb, &auth);
    let page = get(&closed, &format!("/sessions/{id}"), &h);
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<p id=\"sealed\">"), "{}", page.body);
    assert!(
        page.body.contains("auditor@auditty-test"),
        "names the recipient: {}",
        page.body
    );
    assert!(!page.body.contains("id=\"player\"") && !page.body.contains("sealed-42"));
    let cast = get(&closed, &format!("/api/sessions/{id}/cast"), &h);
    assert_eq!(cast.status, 403, "{}", cast.body);
    assert!(!cast.body.contains("sealed-42"));
    drop(closed);

    let open = start_with(&sb, &auth, &["--identity", key.to_str().unwrap()]);
    let page = get(&open, &format!("/sessions/{id}"), &h);
    assert!(page.body.contains("id=\"player\""), "{}", page.body);
    assert!(page.body.contains("echo sealed-$((40+2))"), "{}", page.body);
    let cast = get(&open, &format!("/api/sessions/{id}/cast"), &h);
    assert_eq!(cast.status, 200);
    assert!(cast.body.contains("sealed-42"));
}

/// `--tls-cert`/`--tls-key`: served over HTTPS on a non-loopback address (which plain HTTP
/// is refused), the login cookie is `__Host-` and Secure, a bearer token works, and a
/// plain-HTTP request to the TLS port gets no page. curl checks the certificate against
/// the test's own CA file, as a browser would.
#[test]
fn tls_serves_https_with_secure_cookies_off_loopback() {
    let sb = Sandbox::new();
    let c = corpus(&sb);
    let auth = auth_file(&sb);
    let (cert, key) = (sb.path().join("cert.pem"), sb.path().join("key.pem"));
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=auditty-test",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(out.status.success(), "{}", show(&out));

    let (cert_arg, key_arg) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let server = start_on(
        &sb,
        "0.0.0.0:0",
        &auth,
        &["--tls-cert", cert_arg, "--tls-key", key_arg],
    );
    let port = server
        .base
        .strip_prefix("https://0.0.0.0:")
        .unwrap_or_else(|| panic!("not served over TLS on 0.0.0.0: {}", server.base))
        .to_string();
    let https = format!("https://127.0.0.1:{port}");
    let curl = |args: &[&str]| {
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "10", "--cacert"])
            .arg(&cert)
            .args(args)
            .output()
            .expect("curl");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };

    // The login form, then the login, through one cookie jar as a browser keeps it.
    let jar = sb.path().join("cookies.txt");
    let jar = jar.to_str().unwrap();
    let (ok, form) = curl(&["-c", jar, &format!("{https}/login")]);
    assert!(ok, "{form}");
    let csrf = attr(&form, "name=\"csrf\"", "value");
    let (ok, head) = curl(&[
        "-b",
        jar,
        "-c",
        jar,
        "-D",
        "-",
        "-o",
        "/dev/null",
        "--data-urlencode",
        "user=alice",
        "--data-urlencode",
        "password=alice-password",
        "--data-urlencode",
        &format!("csrf={csrf}"),
        "--data-urlencode",
        "next=/",
        &format!("{https}/login"),
    ]);
    assert!(ok, "{head}");
    let cookie = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie: __host-"))
        .unwrap_or_else(|| panic!("no __Host- session cookie: {head}"));
    for part in ["; Secure", "HttpOnly", "SameSite", "Path=/"] {
        assert!(cookie.contains(part), "{part} missing: {cookie}");
    }
    let (ok, page) = curl(&["-b", jar, &format!("{https}/")]);
    assert!(ok, "{page}");
    assert!(
        page.contains(&c.web1[..8]),
        "alice sees web-1 over TLS: {page}"
    );
    assert!(!page.contains(&c.db1[..8]), "but nothing of db-1: {page}");

    let (ok, body) = curl(&[
        "-H",
        &format!("Authorization: {}", bearer("admin-token")),
        &format!("{https}/api/sessions"),
    ]);
    assert!(ok, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["sessions"].as_array().map(Vec::len), Some(3), "{v:#}");
    assert!(body.contains(&c.db1), "{body}");

    // The same port without TLS: no page, whatever the client makes of the answer.
    let plain = Command::new("curl")
        .args([
            "-s",
            "--max-time",
            "5",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .arg(format!("http://127.0.0.1:{port}/login"))
        .output()
        .expect("curl");
    assert_ne!(String::from_utf8_lossy(&plain.stdout), "200");
    drop(server);
}
