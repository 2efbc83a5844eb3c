//! [`Recipient`]: who a session is sealed for (an age X25519 key or an SSH public key), and
//! [`read_recipients_file`] for age's recipients-file format.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use sha2::{Digest, Sha256};

use crate::error::{EnvelopeError, one_line, shorten};
use crate::read_key_file;

/// Largest recipients file read; a real one is a few KiB.
const MAX_RECIPIENTS_FILE: u64 = 1 << 20;

/// A recipient of a session's data key: an age X25519 public key (`age1…`) or an SSH
/// public key (`ssh-ed25519 …`, `ssh-rsa …`, as in `~/.ssh/id_*.pub` or
/// `authorized_keys`). Its [`Display`](fmt::Display) is the canonical text recorded in
/// `Envelope.recipients`: the key, plus the SSH key's comment when it has one.
#[derive(Clone)]
pub struct Recipient {
    key: RecipientKey,
    text: String,
}

#[derive(Clone)]
enum RecipientKey {
    X25519(age::x25519::Recipient),
    Ssh(age::ssh::Recipient),
}

impl Recipient {
    /// Parses `age1…` or an SSH public key line (`TYPE BASE64 [COMMENT]`).
    pub fn parse(input: &str) -> Result<Recipient, EnvelopeError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(bad(s, EXPECTED.to_string()));
        }
        if let Some(e) = refuse_private_key(s) {
            return Err(e);
        }
        if s.starts_with("age1") {
            return parse_age(s);
        }
        if s.starts_with("age") && !s.contains(char::is_whitespace) {
            return Err(bad(
                s,
                "only X25519 age recipients (age1…) are supported, not plugin or \
                 post-quantum ones"
                    .to_string(),
            ));
        }
        parse_ssh(s)
    }

    /// The age recipient, for encrypting.
    pub(crate) fn as_age(&self) -> &dyn age::Recipient {
        match &self.key {
            RecipientKey::X25519(r) => r,
            RecipientKey::Ssh(r) => r,
        }
    }

    /// The key alone (no comment): two recipients with the same key are the same.
    fn key_text(&self) -> String {
        match &self.key {
            RecipientKey::X25519(r) => r.to_string(),
            RecipientKey::Ssh(r) => r.to_string(),
        }
    }
}

/// The error for `s`, echoed shortened.
fn bad(s: &str, reason: String) -> EnvelopeError {
    EnvelopeError::BadRecipient {
        input: shorten(s, 80),
        reason,
    }
}

/// An error if `s` is a secret key rather than a recipient. Never echoes a secret key.
fn refuse_private_key(s: &str) -> Option<EnvelopeError> {
    if s.starts_with("AGE-SECRET-KEY-") {
        return Some(EnvelopeError::BadRecipient {
            input: "AGE-SECRET-KEY-…".to_string(),
            reason: "this is an age identity (a secret key), not a recipient; give its \
                     public key, which `age-keygen -y FILE` prints"
                .to_string(),
        });
    }
    if s.starts_with("-----BEGIN") {
        return Some(EnvelopeError::BadRecipient {
            input: shorten(s, 40),
            reason: "this looks like a private key; give the public key (the .pub file, \
                     or `ssh-keygen -y -f FILE`)"
                .to_string(),
        });
    }
    None
}

/// An `age1…` recipient.
fn parse_age(s: &str) -> Result<Recipient, EnvelopeError> {
    if s.contains(char::is_whitespace) {
        return Err(bad(s, "an age recipient is one word (age1…)".to_string()));
    }
    match age::x25519::Recipient::from_str(s) {
        Ok(r) => Ok(Recipient {
            text: r.to_string(),
            key: RecipientKey::X25519(r),
        }),
        Err(e) => Err(bad(s, format!("not a valid age X25519 recipient ({e})"))),
    }
}

/// An SSH public key line, `TYPE BASE64 [COMMENT]`.
fn parse_ssh(s: &str) -> Result<Recipient, EnvelopeError> {
    let mut words = s.split_whitespace();
    let (Some(kind), Some(blob)) = (words.next(), words.next()) else {
        return Err(bad(s, EXPECTED.to_string()));
    };
    let comment = words.collect::<Vec<_>>().join(" ");
    match age::ssh::Recipient::from_str(&format!("{kind} {blob}")) {
        Ok(r) => {
            let mut text = r.to_string();
            if !comment.is_empty() {
                text.push(' ');
                text.push_str(&comment);
            }
            Ok(Recipient {
                key: RecipientKey::Ssh(r),
                text,
            })
        }
        Err(e) => {
            use age::ssh::ParseRecipientKeyError as P;
            Err(bad(
                s,
                match e {
                    P::RsaModulusTooSmall => {
                        "this RSA key is shorter than 2048 bits, which age refuses".to_string()
                    }
                    P::RsaModulusTooLarge => {
                        "this RSA key is longer than age supports (16384 bits)".to_string()
                    }
                    P::Unsupported(t) if t.starts_with("sk-") => format!(
                        "{t} is a hardware security key, which cannot decrypt; use an \
                         ssh-ed25519 or ssh-rsa key, or an age key (age-keygen)"
                    ),
                    P::Unsupported(t) => format!(
                        "SSH key type {t} cannot be a recipient; use ssh-ed25519 or ssh-rsa, \
                         or an age key (age-keygen)"
                    ),
                    _ => EXPECTED.to_string(),
                },
            ))
        }
    }
}

const EXPECTED: &str = "expected an age recipient (age1…) or an SSH public key \
                        (ssh-ed25519 AAAA… or ssh-rsa AAAA…, as in a .pub file)";

impl FromStr for Recipient {
    type Err = EnvelopeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Recipient::parse(s)
    }
}

impl fmt::Display for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Recipient({})", self.text)
    }
}

impl PartialEq for Recipient {
    fn eq(&self, other: &Self) -> bool {
        self.key_text() == other.key_text()
    }
}

impl Eq for Recipient {}

/// `recipients` without repeats of the same key (the first one wins).
pub(crate) fn dedup(recipients: &[Recipient]) -> Vec<&Recipient> {
    let mut out: Vec<&Recipient> = Vec::with_capacity(recipients.len());
    for r in recipients {
        if !out.contains(&r) {
            out.push(r);
        }
    }
    out
}

/// Reads an age recipients file: one recipient per line (`age1…` or an SSH public key),
/// `#` comments and blank lines ignored. Errors name the file and the line. A file with
/// no recipient is an error too: an empty file would otherwise silently leave out the
/// people it was meant to list.
pub fn read_recipients_file(path: &Path) -> Result<Vec<Recipient>, EnvelopeError> {
    let file_err = |line: Option<usize>, reason: String| EnvelopeError::RecipientsFile {
        path: path.to_path_buf(),
        line,
        reason,
    };
    let bytes = read_key_file(path, MAX_RECIPIENTS_FILE).map_err(|e| file_err(None, e))?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| file_err(None, "is not text (expected one recipient per line)".into()))?;
    let recipients = parse_recipients(text).map_err(|(line, e)| {
        let reason = match e {
            EnvelopeError::BadRecipient { input, reason } => format!("'{input}': {reason}"),
            other => other.to_string(),
        };
        file_err(Some(line), reason)
    })?;
    if recipients.is_empty() {
        return Err(file_err(
            None,
            "holds no recipient (only blank lines and # comments)".into(),
        ));
    }
    Ok(recipients)
}

/// The recipients of a recipients file's text; on error the 1-based line number.
pub(crate) fn parse_recipients(text: &str) -> Result<Vec<Recipient>, (usize, EnvelopeError)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        out.push(Recipient::parse(line).map_err(|e| (i + 1, e))?);
    }
    Ok(out)
}

/// A recipient's text as shown in messages: SSH keys by their OpenSSH fingerprint
/// (`ssh-ed25519 SHA256:… comment`, what `ssh-keygen -l -f KEY` prints), the rest as is.
pub(crate) fn describe(text: &str) -> String {
    let text = one_line(text);
    let mut words = text.split(' ');
    if let (Some(kind), Some(blob)) = (words.next(), words.next())
        && kind.starts_with("ssh-")
        && let Ok(raw) = STANDARD.decode(blob)
    {
        let fp = STANDARD_NO_PAD.encode(Sha256::digest(&raw));
        let comment = words.collect::<Vec<_>>().join(" ");
        let mut out = format!("{kind} SHA256:{fp}");
        if !comment.is_empty() {
            out.push_str(&format!(" ({})", shorten(&comment, 60)));
        }
        return out;
    }
    shorten(&text, 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn age_recipients_parse_and_print_canonically() {
        let id = age::x25519::Identity::generate();
        let text = id.to_public().to_string();
        let r = Recipient::parse(&format!("  {text}\n")).unwrap();
        assert_eq!(r.to_string(), text);
        let e = Recipient::parse("age1notakey").unwrap_err().to_string();
        assert!(e.contains("not a valid age X25519 recipient"), "{e}");
    }

    #[test]
    fn secret_keys_are_refused_without_being_echoed() {
        use age::secrecy::ExposeSecret;
        let id = age::x25519::Identity::generate();
        let secret = id.to_string();
        let e = Recipient::parse(secret.expose_secret())
            .unwrap_err()
            .to_string();
        assert!(e.contains("age-keygen -y"), "{e}");
        assert!(!e.contains(&secret.expose_secret()[16..]), "{e}");
    }

    #[test]
    fn ssh_keys_keep_their_comment_and_are_shown_by_fingerprint() {
        let line = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHsKLqeplhpW+uObz5dvMgjz1OxfM/XXUB+VHtZ6isGN  alice@rust";
        let r = Recipient::parse(line).unwrap();
        assert_eq!(
            r.to_string(),
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHsKLqeplhpW+uObz5dvMgjz1OxfM/XXUB+VHtZ6isGN alice@rust"
        );
        let shown = describe(&r.to_string());
        assert!(shown.starts_with("ssh-ed25519 SHA256:"), "{shown}");
        assert!(shown.ends_with("(alice@rust)"), "{shown}");
        let e = Recipient::parse("ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBHFliOyIZs1gxGF3fmDxFykQhE88wy6AKDGFBfn0R6ZuvRmENABZQa9+pj9hMki+LX0qDJbmHTiWDbYv/cmFt/Q=")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("ecdsa-sha2-nistp256 cannot be a recipient"),
            "{e}"
        );
    }

    #[test]
    fn recipients_files_skip_comments_and_name_the_bad_line() {
        let a = age::x25519::Identity::generate().to_public().to_string();
        let b = age::x25519::Identity::generate().to_public().to_string();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("recipients.txt");
        std::fs::write(&path, format!("# auditors\n{a}\n\n   # bob\n{b}\n")).unwrap();
        let rs = read_recipients_file(&path).unwrap();
        assert_eq!(
            rs.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
            [a.clone(), b]
        );

        std::fs::write(&path, format!("# auditors\n{a}\n\nhello world\n")).unwrap();
        let e = read_recipients_file(&path).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!(
                "recipients file {} line 4: 'hello world'",
                path.display()
            )),
            "{e}"
        );

        std::fs::write(&path, "# nobody yet\n\n").unwrap();
        let e = read_recipients_file(&path).unwrap_err().to_string();
        assert!(e.contains("holds no recipient"), "{e}");

        let e = read_recipients_file(&dir.path().join("missing"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing") && e.contains("cannot read"), "{e}");
    }

    #[test]
    fn the_same_key_twice_counts_once() {
        let a = age::x25519::Identity::generate().to_public().to_string();
        let rs = vec![Recipient::parse(&a).unwrap(), Recipient::parse(&a).unwrap()];
        assert_eq!(dedup(&rs).len(), 1);
    }
}
