//! Who is running this, and where.

/// The name of the real user running this process, from the password database
/// (`getpwuid`), else `$USER`, else the uid as a number. The database comes first because
/// `$USER` is whatever the caller set: an access log must not take the user's word.
pub fn login_user() -> String {
    let uid = nix::unistd::getuid();
    nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map(|u| u.name)
        .or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| uid.to_string())
}

/// This machine's host name ("" if it has none), as the agent records it.
pub fn host_name() -> String {
    nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default()
}
