//! Browser sessions (random 256-bit ids held in memory, with expiry), their CSRF tokens,
//! the login form's pre-session CSRF tokens, the cookie that carries a session id, and the
//! rate limiter of failed logins.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::auth::Caller;

/// The cookie's name. `__Host-` when served over TLS: the browser then insists on Secure,
/// Path=/ and no Domain.
pub fn cookie_name(tls: bool) -> &'static str {
    if tls { "__Host-auditty" } else { "auditty" }
}

/// The `Set-Cookie` value that carries session `id`.
pub fn session_cookie(id: &str, tls: bool, max_age: Duration) -> String {
    format!(
        "{}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        cookie_name(tls),
        max_age.as_secs(),
        if tls { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie(tls: bool) -> String {
    format!(
        "{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
        cookie_name(tls),
        if tls { "; Secure" } else { "" }
    )
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|part| {
        let (k, v) = part.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

/// 32 random bytes as 64 hex digits.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system gives no randomness");
    hex(&bytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares two strings in time independent of where they differ.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// One logged-in browser.
#[derive(Clone, Debug)]
pub struct Session {
    /// Who.
    pub caller: Caller,
    /// The CSRF token every POST of this session must carry.
    pub csrf: String,
    expires: Instant,
}

/// The logged-in sessions, by the SHA-256 of their id (so a memory dump holds no usable
/// cookie), and the CSRF tokens handed out with login forms.
pub struct SessionStore {
    ttl: Duration,
    sessions: Mutex<HashMap<String, Session>>,
    login_forms: Mutex<HashMap<String, Instant>>,
}

/// How long a login form's CSRF token is good for.
const LOGIN_FORM_TTL: Duration = Duration::from_secs(3600);
/// Most login forms outstanding; the oldest are dropped beyond it.
const MAX_LOGIN_FORMS: usize = 100_000;

impl SessionStore {
    /// An empty store whose sessions last `ttl` from login.
    pub fn new(ttl: Duration) -> SessionStore {
        SessionStore {
            ttl,
            sessions: Mutex::default(),
            login_forms: Mutex::default(),
        }
    }

    /// How long a session lasts.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Starts a session for `caller`; returns its id (the cookie value).
    pub fn create(&self, caller: Caller) -> String {
        let id = random_token();
        let session = Session {
            caller,
            csrf: random_token(),
            expires: Instant::now() + self.ttl,
        };
        let mut map = self.sessions.lock().expect("session store poisoned");
        let now = Instant::now();
        map.retain(|_, s| s.expires > now);
        map.insert(digest(&id), session);
        id
    }

    /// The live session of cookie value `id`.
    pub fn get(&self, id: &str) -> Option<Session> {
        let mut map = self.sessions.lock().expect("session store poisoned");
        let key = digest(id);
        match map.get(&key) {
            Some(s) if s.expires > Instant::now() => Some(s.clone()),
            Some(_) => {
                map.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Ends the session of cookie value `id`.
    pub fn remove(&self, id: &str) {
        self.sessions
            .lock()
            .expect("session store poisoned")
            .remove(&digest(id));
    }

    /// A new CSRF token for a login form.
    pub fn login_form_token(&self) -> String {
        let token = random_token();
        let mut forms = self.login_forms.lock().expect("session store poisoned");
        let now = Instant::now();
        forms.retain(|_, t| now.duration_since(*t) < LOGIN_FORM_TTL);
        if forms.len() >= MAX_LOGIN_FORMS {
            forms.clear();
        }
        forms.insert(token.clone(), now);
        token
    }

    /// Whether `token` was handed out with a login form and is still good, leaving it so.
    pub fn login_form_token_live(&self, token: &str) -> bool {
        let forms = self.login_forms.lock().expect("session store poisoned");
        forms
            .get(token)
            .is_some_and(|t| t.elapsed() < LOGIN_FORM_TTL)
    }

    /// Whether `token` was handed out with a login form and is still good; it is used up.
    pub fn take_login_form_token(&self, token: &str) -> bool {
        let mut forms = self.login_forms.lock().expect("session store poisoned");
        forms
            .remove(token)
            .is_some_and(|t| t.elapsed() < LOGIN_FORM_TTL)
    }
}

fn digest(id: &str) -> String {
    hex(&Sha256::digest(id.as_bytes()))
}

/// Failed logins per user name and per client address: after `max` failures within
/// `window`, further attempts are refused until the oldest failure leaves the window.
pub struct RateLimiter {
    max: usize,
    window: Duration,
    failures: Mutex<HashMap<String, Vec<Instant>>>,
}

impl RateLimiter {
    /// `max` failures per `window`, per user and per address.
    pub fn new(max: usize, window: Duration) -> RateLimiter {
        RateLimiter {
            max,
            window,
            failures: Mutex::default(),
        }
    }

    fn keys(user: &str, addr: IpAddr) -> [String; 2] {
        [format!("user:{user}"), format!("addr:{addr}")]
    }

    /// `Some(wait)` when a login of `user` from `addr` must be refused now.
    pub fn blocked(&self, user: &str, addr: IpAddr) -> Option<Duration> {
        let mut map = self.failures.lock().expect("rate limiter poisoned");
        let now = Instant::now();
        let mut wait: Option<Duration> = None;
        for key in RateLimiter::keys(user, addr) {
            if let Some(times) = map.get_mut(&key) {
                times.retain(|t| now.duration_since(*t) < self.window);
                if times.len() >= self.max {
                    let free_at = times[times.len() - self.max] + self.window;
                    let w = free_at
                        .saturating_duration_since(now)
                        .max(Duration::from_secs(1));
                    wait = Some(wait.map_or(w, |old| old.max(w)));
                }
            }
        }
        wait
    }

    /// Counts a failed login of `user` from `addr`.
    pub fn fail(&self, user: &str, addr: IpAddr) {
        let mut map = self.failures.lock().expect("rate limiter poisoned");
        let now = Instant::now();
        if map.len() > 100_000 {
            map.retain(|_, v| {
                v.last()
                    .is_some_and(|t| now.duration_since(*t) < self.window)
            });
        }
        for key in RateLimiter::keys(user, addr) {
            map.entry(key).or_default().push(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller() -> Caller {
        Caller {
            name: "alice".into(),
            roles: vec![],
        }
    }

    #[test]
    fn cookies_are_httponly_strict_and_secure_with_tls() {
        let plain = session_cookie("abc", false, Duration::from_secs(60));
        assert_eq!(
            plain,
            "auditty=abc; Path=/; HttpOnly; SameSite=Strict; Max-Age=60"
        );
        let tls = session_cookie("abc", true, Duration::from_secs(60));
        assert!(tls.starts_with("__Host-auditty=abc;"), "{tls}");
        assert!(tls.ends_with("; Secure"), "{tls}");
        assert!(clear_cookie(true).contains("Max-Age=0"));
        assert_eq!(
            cookie_value("a=1; auditty=xyz; b=2", "auditty"),
            Some("xyz")
        );
        assert_eq!(cookie_value("xauditty=1", "auditty"), None);
    }

    #[test]
    fn sessions_have_random_ids_csrf_tokens_and_expire() {
        let store = SessionStore::new(Duration::from_millis(50));
        let a = store.create(caller());
        let b = store.create(caller());
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        let s = store.get(&a).unwrap();
        assert_eq!(s.csrf.len(), 64);
        assert_ne!(s.csrf, store.get(&b).unwrap().csrf);
        assert!(store.get("nope").is_none());
        store.remove(&b);
        assert!(store.get(&b).is_none());
        std::thread::sleep(Duration::from_millis(80));
        assert!(store.get(&a).is_none());
    }

    #[test]
    fn login_form_tokens_are_single_use() {
        let store = SessionStore::new(Duration::from_secs(60));
        let t = store.login_form_token();
        assert!(store.take_login_form_token(&t));
        assert!(!store.take_login_form_token(&t));
        assert!(!store.take_login_form_token("forged"));
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
    }

    #[test]
    fn failed_logins_are_limited_per_user_and_per_address() {
        let limiter = RateLimiter::new(3, Duration::from_secs(60));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..3 {
            assert!(limiter.blocked("alice", a).is_none());
            limiter.fail("alice", a);
        }
        let wait = limiter.blocked("alice", a).unwrap();
        assert!(wait <= Duration::from_secs(60) && wait >= Duration::from_secs(1));
        // The same user from another address, and another user from the same address.
        assert!(limiter.blocked("alice", b).is_some());
        assert!(limiter.blocked("bob", a).is_some());
        assert!(limiter.blocked("bob", b).is_none());
        let short = RateLimiter::new(1, Duration::from_millis(30));
        short.fail("x", a);
        assert!(short.blocked("x", a).is_some());
        std::thread::sleep(Duration::from_millis(50));
        assert!(short.blocked("x", a).is_none());
    }
}
