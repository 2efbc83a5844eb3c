//! [`Identities`]: the private keys `replay` tries on a session's envelope, loaded from age
//! identity files and unencrypted OpenSSH / PEM private keys.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::error::EnvelopeError;
use crate::read_key_file;

/// Largest identity file read (age's own limit is 16 MiB; real ones are tiny).
const MAX_IDENTITY_FILE: u64 = 1 << 20;

const PASSPHRASE_HINT: &str = "auditty never prompts for passphrases. Make an age identity for \
     auditing instead (`age-keygen -o auditor.key`, and seal sessions for the public key that \
     `age-keygen -y auditor.key` prints), or use an unencrypted copy of the SSH key kept where \
     only you can read it (`ssh-keygen -p -N '' -f COPY`)";

/// The private keys given with `--identity`, each remembered with the file it came from.
/// Holds secrets: its `Debug` shows only the files.
#[derive(Default)]
pub struct Identities {
    keys: Vec<Box<dyn age::Identity + Send + Sync>>,
    paths: Vec<PathBuf>,
}

impl Identities {
    /// Loads every file. Each is either an age identity file (`AGE-SECRET-KEY-1…` lines,
    /// `#` comments, blank lines) or an SSH private key (OpenSSH ed25519 or RSA, or a PEM
    /// RSA key) without a passphrase. Errors name the file and what was expected; no
    /// content of a key file ever appears in a message.
    pub fn load(paths: &[PathBuf]) -> Result<Identities, EnvelopeError> {
        let mut out = Identities::default();
        for path in paths {
            let bytes = read_key_file(path, MAX_IDENTITY_FILE).map_err(|reason| {
                EnvelopeError::IdentityFile {
                    path: path.clone(),
                    reason,
                }
            })?;
            let keys = parse_identity_file(&bytes, path).map_err(|reason| {
                EnvelopeError::IdentityFile {
                    path: path.clone(),
                    reason,
                }
            })?;
            out.keys.extend(keys);
            out.paths.push(path.clone());
        }
        Ok(out)
    }

    /// Identities not read from a file (tests).
    #[cfg(test)]
    pub(crate) fn from_keys(keys: Vec<Box<dyn age::Identity + Send + Sync>>) -> Identities {
        Identities {
            keys,
            paths: vec![PathBuf::from("(test)")],
        }
    }

    /// No identity was given.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The files the identities came from, in the order given.
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }

    /// The keys, for age's decryptor.
    pub(crate) fn age_identities(&self) -> impl Iterator<Item = &dyn age::Identity> {
        self.keys.iter().map(|k| k.as_ref() as &dyn age::Identity)
    }
}

impl fmt::Debug for Identities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identities")
            .field("keys", &self.keys.len())
            .field("paths", &self.paths)
            .finish()
    }
}

/// The identities in one file's bytes; `Err` says what is wrong, in words fit to follow
/// "identity file PATH: ". Never panics, whatever the bytes.
pub(crate) fn parse_identity_file(
    bytes: &[u8],
    path: &Path,
) -> Result<Vec<Box<dyn age::Identity + Send + Sync>>, String> {
    if bytes.starts_with(b"age-encryption.org/") {
        return Err(format!(
            "is an age-encrypted file (a passphrase-protected identity?), which is not \
             supported: {PASSPHRASE_HINT}"
        ));
    }
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Err(format!("is not text; {EXPECTED}"));
    };
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .unwrap_or("");
    if first.starts_with("-----BEGIN") {
        return parse_pem(text, first, path);
    }
    if first.starts_with("age1") {
        return Err(
            "holds an age recipient (a public key), not an identity; give the \
                    identity file it came from (the one age-keygen wrote)"
                .to_string(),
        );
    }
    if first.starts_with("ssh-") || first.starts_with("ecdsa-") || first.starts_with("sk-") {
        return Err(
            "holds an SSH public key; give the private key instead (the file without .pub)"
                .to_string(),
        );
    }
    parse_age_identities(text)
}

const EXPECTED: &str = "expected an age identity file (AGE-SECRET-KEY-1… lines, as written by \
                        age-keygen) or an SSH private key (OpenSSH ed25519 or RSA)";

fn parse_pem(
    text: &str,
    first: &str,
    path: &Path,
) -> Result<Vec<Box<dyn age::Identity + Send + Sync>>, String> {
    if first.starts_with("-----BEGIN AGE ENCRYPTED FILE") {
        return Err(format!(
            "is an armored age-encrypted file (a passphrase-protected identity?), which is \
             not supported: {PASSPHRASE_HINT}"
        ));
    }
    if !(first.starts_with("-----BEGIN OPENSSH PRIVATE KEY")
        || first.starts_with("-----BEGIN RSA PRIVATE KEY"))
    {
        return Err(format!(
            "is a PEM file of a kind that is not supported ({}); {EXPECTED}",
            first.trim_matches('-').trim()
        ));
    }
    // age reads from the key's first line; skip any comments before it.
    let start = text.find("-----BEGIN").unwrap_or(0);
    let identity = age::ssh::Identity::from_buffer(
        &text.as_bytes()[start..],
        Some(path.display().to_string()),
    )
    .map_err(|_| format!("is not a valid SSH private key; {EXPECTED}"))?;
    use age::ssh::{Identity as S, UnsupportedKey as U};
    match identity {
        S::Unencrypted(_) => Ok(vec![Box::new(identity)]),
        S::Encrypted(_) | S::Unsupported(U::EncryptedPem | U::EncryptedSsh(_)) => Err(format!(
            "is a passphrase-protected SSH key, which is not supported: {PASSPHRASE_HINT}"
        )),
        S::Unsupported(U::Hardware(t)) => Err(format!(
            "is a hardware security key ({t}), which cannot be used to decrypt; {EXPECTED}"
        )),
        S::Unsupported(U::Type(t)) => Err(format!(
            "is an SSH key of type {t}, which age cannot decrypt with; {EXPECTED}"
        )),
    }
}

fn parse_age_identities(text: &str) -> Result<Vec<Box<dyn age::Identity + Send + Sync>>, String> {
    let mut keys: Vec<Box<dyn age::Identity + Send + Sync>> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let n = i + 1;
        // Messages never quote the line: it may be a secret.
        if line.starts_with("AGE-PLUGIN-") {
            return Err(format!(
                "line {n} is an age plugin identity, which is not supported; {EXPECTED}"
            ));
        }
        if !line.starts_with("AGE-SECRET-KEY-1") {
            return Err(format!("line {n} is not an age identity; {EXPECTED}"));
        }
        match age::x25519::Identity::from_str(line) {
            Ok(k) => keys.push(Box::new(k)),
            Err(_) => {
                return Err(format!(
                    "line {n} is not a valid age identity (damaged or cut short?)"
                ));
            }
        }
    }
    if keys.is_empty() {
        return Err(format!(
            "holds no identity (only blank lines and # comments); {EXPECTED}"
        ));
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn age_identity_files_with_comments_load() {
        use age::secrecy::ExposeSecret;
        let a = age::x25519::Identity::generate();
        let b = age::x25519::Identity::generate();
        let text = format!(
            "# created: today\n# public key: {}\n{}\n\n{}\r\n",
            a.to_public(),
            a.to_string().expose_secret(),
            b.to_string().expose_secret()
        );
        let keys = parse_identity_file(text.as_bytes(), Path::new("k")).unwrap();
        assert_eq!(keys.len(), 2);
    }

    fn error_of(bytes: &[u8]) -> String {
        match parse_identity_file(bytes, Path::new("k")) {
            Ok(keys) => panic!("{} identities parsed from {bytes:?}", keys.len()),
            Err(e) => e,
        }
    }

    #[test]
    fn wrong_files_say_what_was_expected_without_quoting_secrets() {
        use age::secrecy::ExposeSecret;
        let secret = age::x25519::Identity::generate().to_string();
        let broken = format!("{}\n", &secret.expose_secret()[..40]);
        let e = error_of(broken.as_bytes());
        assert!(e.contains("line 1 is not a valid age identity"), "{e}");
        assert!(!e.contains(&secret.expose_secret()[16..40]), "{e}");

        let e = error_of(b"hello\n");
        assert!(e.contains("line 1 is not an age identity; expected"), "{e}");
        let e = error_of(b"# nothing\n");
        assert!(e.contains("holds no identity"), "{e}");
        let e = error_of(b"\xff\xfe\x00");
        assert!(e.contains("is not text"), "{e}");
        let e = error_of(b"ssh-ed25519 AAAA me@host\n");
        assert!(e.contains("SSH public key"), "{e}");
        let e = error_of(b"-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n");
        assert!(e.contains("is not a valid SSH private key"), "{e}");
        let e = error_of(b"-----BEGIN PRIVATE KEY-----\nAAAA\n");
        assert!(e.contains("not supported (BEGIN PRIVATE KEY)"), "{e}");
        let e = error_of(b"age-encryption.org/v1\n-> scrypt");
        assert!(e.contains("age-keygen -o"), "{e}");
    }
}
