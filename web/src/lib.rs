//! `replay serve`: the web player. Auditors list, search, watch and report on sessions
//! in a browser, and programs call the same over a JSON API, each seeing only the
//! sessions their roles cover.
//!
//! - [`auth`]: the `--auth` TOML file: users (argon2 password hashes), API tokens (their
//!   SHA-256) and roles (globs over hosts and users); [`auth::Caller`] is who is asking.
//! - [`authz`]: [`authz::Authz::visible`], the one authorization rule (default-deny), and
//!   [`authz::Scoped`], the only way handlers reach the store: it filters every listing,
//!   search hit, report input and single-session lookup through `visible`.
//! - [`backend::Backend`]: what the server needs of the store (list, open, search,
//!   report), implemented by `replay` so that sessions open with its identities;
//!   [`cache::CachingBackend`] keeps recently opened sessions under the authorization.
//! - [`segments`]: long sessions cut into asciinema-player's segmented recordings (an
//!   index, and segments with a snapshot of the screen), so playback starts before the
//!   whole session has arrived.
//! - [`sessions`]: browser sessions (random ids in memory, expiring), CSRF tokens,
//!   cookies, and the rate limiter of failed logins.
//! - `server`, `login`, `handlers`, `html`, `report_page`, `assets`, `tls`: the router and
//!   its security headers, the pages and API, the embedded static files and TLS.
//!
//! Callers: `replay serve` (replay/src/cmd/serve.rs) and the end-to-end tests.
#![warn(missing_docs)]

pub mod assets;
pub mod auth;
pub mod authz;
pub mod backend;
pub mod cache;
mod handlers;
pub mod html;
mod login;
mod report_page;
pub mod segments;
pub mod server;
pub mod sessions;
pub mod state;
pub mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;

pub use auth::{AuthConfig, Caller, hash_password};
pub use backend::Backend;

/// How to serve.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// PEM certificate chain and private key: serve HTTPS.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Allow plain HTTP on a non-loopback address.
    pub insecure_http: bool,
    /// The auth file.
    pub auth: PathBuf,
    /// Record reads in the access log.
    pub access_log: bool,
}

/// Why the listen address is refused, if it is: a non-loopback address needs TLS unless
/// `insecure_http`.
pub fn check_listen(config: &ServeConfig) -> Result<(), String> {
    if config.tls.is_none() && !config.insecure_http && !config.listen.ip().is_loopback() {
        return Err(format!(
            "refusing to serve plain HTTP on {}, which is not a loopback address: passwords and session cookies would cross the network in clear; give --tls-cert and --tls-key, or --insecure-http if a TLS proxy in front of it terminates TLS",
            config.listen
        ));
    }
    Ok(())
}

/// Serves until interrupted (SIGINT/SIGTERM). Prints `listening on URL` on stdout once
/// the socket is bound (with the port chosen when the address asked for port 0).
pub fn run(config: &ServeConfig, backend: Arc<dyn Backend>) -> anyhow::Result<()> {
    check_listen(config).map_err(anyhow::Error::msg)?;
    let auth = AuthConfig::load(&config.auth)?;
    let tls = config
        .tls
        .as_ref()
        .map(|(c, k)| tls::load(c, k))
        .transpose()?;
    let backend: Arc<dyn Backend> = Arc::new(cache::CachingBackend::new(backend));
    let state = Arc::new(state::AppState::new(
        backend,
        auth,
        tls.is_some(),
        config.access_log,
    ));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the server's runtime")?;
    rt.block_on(serve(config.listen, tls, state))
}

async fn serve(
    listen: SocketAddr,
    tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    state: state::Shared,
) -> anyhow::Result<()> {
    let tcp = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let local = tcp.local_addr()?;
    let app = server::router(state);
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!("replay serve: listening on {scheme}://{local}/");
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    match tls {
        Some(config) => {
            let listener = tls::TlsListener::new(tcp, config)?;
            let app = app.into_make_service_with_connect_info::<tls::TlsPeer>();
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown())
                .await?;
        }
        None => {
            let app = app.into_make_service_with_connect_info::<SocketAddr>();
            axum::serve(tcp, app)
                .with_graceful_shutdown(shutdown())
                .await?;
        }
    }
    Ok(())
}

async fn shutdown() {
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

/// Reads a password from stdin (without echo when stdin is a terminal, asking twice) and
/// returns its PHC hash, for `replay serve hash-password`.
pub fn hash_password_from_stdin() -> anyhow::Result<String> {
    use std::io::IsTerminal;
    let stdin = std::io::stdin();
    let password = if stdin.is_terminal() {
        let first = read_hidden("Password: ")?;
        let again = read_hidden("Again: ")?;
        if first != again {
            anyhow::bail!("the two passwords differ");
        }
        first
    } else {
        let mut line = String::new();
        stdin.read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    if password.is_empty() {
        anyhow::bail!("the password is empty");
    }
    hash_password(&password)
}

fn read_hidden(prompt: &str) -> anyhow::Result<String> {
    use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
    use std::io::Write as _;
    let stdin = std::io::stdin();
    eprint!("{prompt}");
    std::io::stderr().flush()?;
    let saved = tcgetattr(&stdin).context("cannot read the terminal's settings")?;
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    tcsetattr(&stdin, SetArg::TCSANOW, &quiet).context("cannot turn echo off")?;
    let mut line = String::new();
    let read = stdin.read_line(&mut line);
    let _ = tcsetattr(&stdin, SetArg::TCSANOW, &saved);
    eprintln!();
    read?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(listen: &str, tls: bool, insecure: bool) -> ServeConfig {
        ServeConfig {
            listen: listen.parse().unwrap(),
            tls: tls.then(|| (PathBuf::from("c.pem"), PathBuf::from("k.pem"))),
            insecure_http: insecure,
            auth: PathBuf::from("auth.toml"),
            access_log: true,
        }
    }

    #[test]
    fn plain_http_only_on_loopback_unless_told() {
        assert!(check_listen(&config("127.0.0.1:8080", false, false)).is_ok());
        assert!(check_listen(&config("[::1]:8080", false, false)).is_ok());
        let refused = check_listen(&config("0.0.0.0:8080", false, false)).unwrap_err();
        assert!(refused.contains("--tls-cert"), "{refused}");
        assert!(check_listen(&config("0.0.0.0:8080", true, false)).is_ok());
        assert!(check_listen(&config("0.0.0.0:8080", false, true)).is_ok());
    }
}
