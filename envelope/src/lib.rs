//! Wrapping and unwrapping a session's data key (DESIGN.md §5): the `envelope` in a
//! session's `start` event.
//!
//! - [`Recipient`] (an age `age1…` key or an SSH public key) and [`read_recipients_file`]
//!   say who may read a session; [`wrap_session_key`] draws the session's
//!   [`DataKey`](schemas::chunk::seal::DataKey) (from the OS, or from KMS `GenerateDataKey` when a
//!   KMS key is given), encrypts it once as one age file to all recipients and returns it
//!   with the [`Envelope`](schemas::Envelope) to put in the `start` event.
//! - [`Identities`] loads the private keys of a reader (age identity files, unencrypted
//!   SSH keys) and [`open_envelope`] unwraps the key with them, or with KMS `Decrypt` when
//!   allowed ([`KmsOptions`]). A failure is one line that names the session and who it
//!   was sealed for.
//! - With the `clap` feature, [`RecipientArgs`] (`auditty-agent record`) and
//!   [`IdentityArgs`] (`replay`) are the command-line flags for both.
//!
//! Callers: the agent wraps the key at session start (and then seals chunks under it);
//! `replay` opens. Both are synchronous, so
//! the KMS calls block on a small runtime of their own. Every failure is an
//! [`EnvelopeError`].
#![warn(missing_docs)]

#[cfg(feature = "clap")]
mod args;
mod error;
mod identity;
mod kms;
mod recipient;
mod wrap;

#[cfg(feature = "clap")]
pub use args::{IdentityArgs, RecipientArgs};
pub use error::EnvelopeError;
pub use identity::Identities;
pub use kms::KmsOptions;
pub use recipient::{Recipient, read_recipients_file};
pub use wrap::{KMS_CONTEXT_SESSION, KMS_PREFIX, open_envelope, wrap_session_key};

/// Helpers for tests against a KMS-compatible server (moto); not for production use.
#[cfg(feature = "testsuite")]
pub mod testsuite {
    use crate::KmsOptions;

    /// Creates a symmetric KMS key (and the alias `alias/NAME`, if given) through the same
    /// client builder as wrapping and opening; returns the key id.
    pub fn create_kms_key(options: &KmsOptions, alias: Option<&str>) -> Result<String, String> {
        crate::kms::Kms::connect(options)?.create_key(alias)
    }

    /// A new age X25519 identity: the text of an identity file holding it, and its
    /// recipient.
    pub fn new_age_identity() -> (String, crate::Recipient) {
        use age::secrecy::ExposeSecret;
        let id = age::x25519::Identity::generate();
        let public = id.to_public().to_string();
        let file = format!(
            "# public key: {public}\n{}\n",
            id.to_string().expose_secret()
        );
        let recipient = crate::Recipient::parse(&public).expect("age's own recipient parses");
        (file, recipient)
    }
}

use std::io::Read;
use std::path::Path;

/// A small key or recipients file, at most `max` bytes; `Err` in words fit to follow the
/// file's name.
pub(crate) fn read_key_file(path: &Path, max: u64) -> Result<Vec<u8>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read it: {e}"))?;
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read it: {e}"))?;
    if bytes.len() as u64 > max {
        return Err(format!(
            "is larger than {max} bytes, too large to be a key or recipients file"
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod proptests {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use proptest::prelude::*;
    use std::path::Path;
    use std::sync::OnceLock;

    /// Real unencrypted OpenSSH keys (ed25519, RSA 2048), made once by ssh-keygen.
    fn real_ssh_keys() -> &'static [String] {
        static KEYS: OnceLock<Vec<String>> = OnceLock::new();
        KEYS.get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            ["ed25519", "rsa"]
                .iter()
                .map(|kind| {
                    let path = dir.path().join(kind);
                    let out = std::process::Command::new("ssh-keygen")
                        .args(["-q", "-t", kind, "-N", "", "-f"])
                        .arg(&path)
                        .output()
                        .expect("ssh-keygen runs");
                    assert!(out.status.success());
                    std::fs::read_to_string(&path).unwrap()
                })
                .collect()
        })
    }

    /// A PEM file with its base64 body decoded, changed by `flips` and cut at `cut`.
    fn mutate_pem(pem: &str, flips: &[(usize, u8)], cut: usize) -> String {
        let lines: Vec<&str> = pem.lines().collect();
        let (begin, end) = (lines[0], lines[lines.len() - 1]);
        let mut body = STANDARD.decode(lines[1..lines.len() - 1].concat()).unwrap();
        for &(i, b) in flips {
            let n = body.len();
            body[i % n] = b;
        }
        body.truncate(cut % (body.len() + 1));
        let b64 = STANDARD.encode(&body);
        let wrapped: Vec<&str> = b64
            .as_bytes()
            .chunks(70)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!("{begin}\n{}\n{end}\n", wrapped.join("\n"))
    }

    proptest! {
        #[test]
        fn key_file_parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = crate::identity::parse_identity_file(&bytes, Path::new("k"));
            if let Ok(text) = std::str::from_utf8(&bytes) {
                let _ = crate::recipient::parse_recipients(text);
            }
        }

        #[test]
        fn key_file_parsers_never_panic_on_near_misses(
            prefix in prop_oneof![
                Just("-----BEGIN OPENSSH PRIVATE KEY-----\n"),
                Just("-----BEGIN RSA PRIVATE KEY-----\n"),
                Just("AGE-SECRET-KEY-1"),
                Just("age1"),
                Just("ssh-ed25519 "),
                Just("ssh-rsa "),
            ],
            body in "[A-Za-z0-9+/=\n -]{0,600}",
        ) {
            let text = format!("{prefix}{body}");
            let _ = crate::identity::parse_identity_file(text.as_bytes(), Path::new("k"));
            let _ = crate::recipient::parse_recipients(&text);
            let _ = crate::Recipient::parse(&text);
        }

        #[test]
        fn damaged_ssh_keys_never_panic(
            which in 0usize..2,
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
            cut in any::<usize>(),
        ) {
            let text = mutate_pem(&real_ssh_keys()[which], &flips, cut);
            if let Ok(keys) = crate::identity::parse_identity_file(text.as_bytes(), Path::new("k")) {
                // A key that still parses must also be safe to use on an envelope.
                let ids = crate::Identities::from_keys(keys);
                let r = age::x25519::Identity::generate().to_public().to_string();
                let r = crate::Recipient::parse(&r).unwrap();
                let (_, env) = crate::wrap_session_key("0193-test", &[r], None, &crate::KmsOptions::default()).unwrap();
                let _ = crate::open_envelope("s", &env, &ids, None);
            }
        }

        #[test]
        fn damaged_envelopes_never_panic(
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
            cut in any::<usize>(),
        ) {
            use age::secrecy::ExposeSecret;
            let id = age::x25519::Identity::generate();
            let r = crate::Recipient::parse(&id.to_public().to_string()).unwrap();
            let (_, mut env) = crate::wrap_session_key("0193-test", &[r], None, &crate::KmsOptions::default()).unwrap();
            let mut bytes = STANDARD.decode(env.age.as_ref().unwrap()).unwrap();
            for (i, b) in flips {
                let n = bytes.len();
                bytes[i % n] = b;
            }
            bytes.truncate(cut % (bytes.len() + 1));
            env.age = Some(STANDARD.encode(&bytes));
            let file = format!("{}\n", id.to_string().expose_secret());
            let keys = crate::identity::parse_identity_file(file.as_bytes(), Path::new("k")).unwrap();
            let _ = crate::open_envelope("s", &env, &crate::Identities::from_keys(keys), None);
        }
    }
}
