//! [`wrap_session_key`] makes a session's data key and wraps it for the session's
//! recipients; [`open_envelope`] unwraps it with the identities (or KMS access) of whoever
//! reads the session. (Sealing, the encryption of chunks under that key, is
//! `schemas::chunk::seal`.)

use std::io::{Read, Write};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use schemas::chunk::seal::{AEAD_NAME, DataKey, KEY_LEN};
use schemas::session::{ENVELOPE_VERSION, Envelope, KmsWrappedKey};
use zeroize::Zeroize;

use crate::error::{EnvelopeError, shorten};
use crate::identity::Identities;
use crate::kms::{Kms, KmsOptions};
use crate::recipient::{Recipient, dedup, describe};

/// The prefix of a KMS key in `Envelope.recipients`.
pub const KMS_PREFIX: &str = "kms:";
/// The KMS encryption context key that binds a wrapped key to its session.
pub const KMS_CONTEXT_SESSION: &str = "auditty:session";

/// Makes a session's data key and its envelope.
///
/// With `kms_key_id`, KMS `GenerateDataKey` (AES_256) makes the key and its
/// `CiphertextBlob` goes into `envelope.kms`; otherwise the key comes from the operating
/// system. The key is then encrypted once, as one binary age file, to all of `recipients`
/// (`envelope.age`). `envelope.recipients` lists each recipient's text and `kms:KEY-ID`.
/// Needs at least one recipient or a KMS key. Blocks (for the KMS call). `session` (the
/// session id) goes into the KMS encryption context, so CloudTrail names the session on
/// every `Decrypt`.
pub fn wrap_session_key(
    session: &str,
    recipients: &[Recipient],
    kms_key_id: Option<&str>,
    kms: &KmsOptions,
) -> Result<(DataKey, Envelope), EnvelopeError> {
    let recipients = dedup(recipients);
    let kms_key_id = kms_key_id.map(str::trim).filter(|k| !k.is_empty());
    if recipients.is_empty() && kms_key_id.is_none() {
        return Err(EnvelopeError::NoRecipients);
    }
    let mut envelope = Envelope {
        version: ENVELOPE_VERSION,
        aead: AEAD_NAME.to_string(),
        recipients: recipients.iter().map(|r| r.to_string()).collect(),
        age: None,
        kms: Vec::new(),
    };
    let key = match kms_key_id {
        Some(key_id) => {
            let context =
                crate::kms::Context::from([(KMS_CONTEXT_SESSION.to_string(), session.to_string())]);
            let kms_err = |message: String| EnvelopeError::Kms {
                key_id: key_id.to_string(),
                message,
            };
            let (key, blob) = Kms::connect(kms)
                .and_then(|k| k.generate_data_key(key_id, &context))
                .map_err(kms_err)?;
            envelope.recipients.push(format!("{KMS_PREFIX}{key_id}"));
            envelope.kms.push(KmsWrappedKey {
                key_id: key_id.to_string(),
                ciphertext: STANDARD.encode(blob),
                context,
            });
            key
        }
        None => DataKey::generate()
            .map_err(|e| EnvelopeError::Wrap(format!("no randomness from the OS: {e}")))?,
    };
    if !recipients.is_empty() {
        let file = age_encrypt(&key, &recipients)
            .map_err(|e| EnvelopeError::Wrap(format!("age encryption failed: {e}")))?;
        envelope.age = Some(STANDARD.encode(file));
    }
    Ok((key, envelope))
}

fn age_encrypt(key: &DataKey, recipients: &[&Recipient]) -> Result<Vec<u8>, String> {
    let encryptor = age::Encryptor::with_recipients(recipients.iter().map(|r| r.as_age()))
        .map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(200 + 300 * recipients.len());
    let mut w = encryptor.wrap_output(&mut out).map_err(|e| e.to_string())?;
    w.write_all(key.as_bytes()).map_err(|e| e.to_string())?;
    w.finish().map_err(|e| e.to_string())?;
    Ok(out)
}

/// Unwraps a session's data key.
///
/// Tries `identities` on the age part first; if that is not possible or fails, and `kms`
/// is given and the envelope has KMS-wrapped keys, asks KMS to `Decrypt` each (checking
/// that the result is a 32-byte key). On failure the error is one line naming `session`,
/// the recipients it was sealed for, what was tried and what to give instead. Blocks (for
/// the KMS calls).
pub fn open_envelope(
    session: &str,
    envelope: &Envelope,
    identities: &Identities,
    kms: Option<&KmsOptions>,
) -> Result<DataKey, EnvelopeError> {
    if envelope.version != ENVELOPE_VERSION || envelope.aead != AEAD_NAME {
        return Err(EnvelopeError::Unsupported {
            session: session.to_string(),
            version: envelope.version,
            aead: shorten(&envelope.aead, 40),
            supported_version: ENVELOPE_VERSION,
            supported_aead: AEAD_NAME,
        });
    }
    let age_outcome = match (&envelope.age, identities.is_empty()) {
        (None, _) => AgeOutcome::NoAgePart,
        (Some(_), true) => AgeOutcome::NoIdentities,
        (Some(b64), false) => match age_decrypt(b64, identities) {
            Ok(key) => return Ok(key),
            Err(outcome) => outcome,
        },
    };
    let identities_given = !identities.is_empty();
    let tried_ids = format!(
        "none of the identities given ({}) can open it",
        identities
            .paths()
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut clauses: Vec<String> = Vec::new();
    match &age_outcome {
        AgeOutcome::Damaged(why) => clauses.push(format!("its age-wrapped key is damaged ({why})")),
        AgeOutcome::NoMatch => clauses.push(tried_ids),
        AgeOutcome::NoAgePart if identities_given => {
            clauses.push(format!("{tried_ids} (it has no age recipients)"))
        }
        AgeOutcome::NoAgePart | AgeOutcome::NoIdentities => {}
    }
    match (kms, envelope.kms.is_empty()) {
        (Some(options), false) => match kms_decrypt(&envelope.kms, options) {
            Ok(key) => return Ok(key),
            Err(why) => clauses.push(why),
        },
        (Some(_), true) => {
            clauses.push("it has no kms: recipients, so --kms cannot open it".to_string());
            if !identities_given {
                clauses.push("give --identity FILE with a key for one of those".to_string());
            }
        }
        (None, false) if clauses.is_empty() => clauses.push(if envelope.age.is_some() {
            "give --identity FILE (or --kms for kms: recipients) to read it".to_string()
        } else {
            "give --kms (KMS Decrypt, with credentials from the AWS chain) to read it".to_string()
        }),
        (None, false) => clauses.push("add --kms to unwrap its key with KMS".to_string()),
        (None, true) if clauses.is_empty() => {
            clauses.push("give --identity FILE with a key for one of those to read it".to_string())
        }
        (None, true) => {}
    }
    Err(EnvelopeError::CannotOpen {
        session: session.to_string(),
        sealed_for: envelope.recipients.iter().map(|r| describe(r)).collect(),
        detail: clauses.join("; "),
    })
}

enum AgeOutcome {
    /// The envelope has no age part.
    NoAgePart,
    /// No identities were given.
    NoIdentities,
    /// None of the identities is a recipient.
    NoMatch,
    /// The age part does not decode or decrypt (a recipient matched, or the bytes are bad).
    Damaged(String),
}

fn age_decrypt(b64: &str, identities: &Identities) -> Result<DataKey, AgeOutcome> {
    let bytes = STANDARD
        .decode(b64.trim())
        .map_err(|e| AgeOutcome::Damaged(format!("not base64: {e}")))?;
    let decryptor = age::Decryptor::new_buffered(&bytes[..])
        .map_err(|e| AgeOutcome::Damaged(shorten(&e.to_string(), 120)))?;
    let mut reader = match decryptor.decrypt(identities.age_identities()) {
        Ok(r) => r,
        Err(age::DecryptError::NoMatchingKeys) => return Err(AgeOutcome::NoMatch),
        Err(e) => return Err(AgeOutcome::Damaged(shorten(&e.to_string(), 120))),
    };
    // A fixed buffer (one byte more than a key, to notice longer contents) that is wiped
    // whatever happens; a growing Vec could leave copies of the key behind.
    let mut buf = [0u8; KEY_LEN + 1];
    let mut n = 0;
    let result = loop {
        match reader.read(&mut buf[n..]) {
            Ok(0) => break Ok(()),
            Ok(k) => {
                n += k;
                if n == buf.len() {
                    break Ok(());
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => break Err(e),
        }
    };
    let key = DataKey::from_slice(&buf[..n]);
    buf.zeroize();
    if let Err(e) = result {
        return Err(AgeOutcome::Damaged(shorten(&e.to_string(), 120)));
    }
    key.ok_or_else(|| {
        let size = if n > KEY_LEN {
            "more than 32 bytes".to_string()
        } else {
            format!("{n} bytes")
        };
        AgeOutcome::Damaged(format!("it holds {size}, not a 32-byte key"))
    })
}

/// Tries each KMS-wrapped key; the first that decrypts wins. On failure, one clause saying
/// what KMS answered for each.
fn kms_decrypt(wrapped: &[KmsWrappedKey], options: &KmsOptions) -> Result<DataKey, String> {
    let kms = Kms::connect(options).map_err(|e| format!("KMS cannot be used: {e}"))?;
    let mut failures = Vec::new();
    for w in wrapped {
        let result = STANDARD
            .decode(w.ciphertext.trim())
            .map_err(|e| format!("its CiphertextBlob is not base64 ({e})"))
            .and_then(|blob| kms.decrypt(&w.key_id, blob, &w.context));
        match result {
            Ok(key) => return Ok(key),
            Err(e) => failures.push(format!(
                "KMS Decrypt with {} failed: {e}",
                shorten(&w.key_id, 120)
            )),
        }
    }
    Err(failures.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};
    use std::process::Command;

    fn age_identity(dir: &Path, name: &str) -> (PathBuf, Recipient) {
        use age::secrecy::ExposeSecret;
        let id = age::x25519::Identity::generate();
        let path = dir.join(name);
        std::fs::write(
            &path,
            format!(
                "# public key: {}\n{}\n",
                id.to_public(),
                id.to_string().expose_secret()
            ),
        )
        .unwrap();
        (path, Recipient::parse(&id.to_public().to_string()).unwrap())
    }

    /// `ssh-keygen -t KIND -N PASSPHRASE -f DIR/NAME`; the private key's path and the
    /// public key as a recipient.
    fn ssh_key(dir: &Path, name: &str, kind: &str, passphrase: &str) -> (PathBuf, Recipient) {
        let path = dir.join(name);
        let mut cmd = Command::new("ssh-keygen");
        cmd.args([
            "-q",
            "-t",
            kind,
            "-N",
            passphrase,
            "-C",
            "auditor@test",
            "-f",
        ])
        .arg(&path);
        if kind == "rsa" {
            cmd.args(["-b", "2048"]);
        }
        let out = cmd
            .output()
            .expect("ssh-keygen runs (is openssh-client installed?)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let public = std::fs::read_to_string(path.with_extension("pub")).unwrap();
        (path, Recipient::parse(&public).unwrap())
    }

    fn load(paths: &[&PathBuf]) -> Identities {
        Identities::load(&paths.iter().map(|p| (*p).clone()).collect::<Vec<_>>()).unwrap()
    }

    const SESSION: &str = "0193a7c2-0000-7000-8000-000000000001";

    #[test]
    fn two_age_recipients_each_open_the_session_alone() {
        let dir = tempfile::tempdir().unwrap();
        let (pa, ra) = age_identity(dir.path(), "a.key");
        let (pb, rb) = age_identity(dir.path(), "b.key");
        let (key, env) = wrap_session_key(
            "0193-test",
            &[ra.clone(), rb.clone()],
            None,
            &KmsOptions::default(),
        )
        .unwrap();
        assert_eq!(env.version, ENVELOPE_VERSION);
        assert_eq!(env.aead, AEAD_NAME);
        assert_eq!(env.recipients, [ra.to_string(), rb.to_string()]);
        assert!(env.kms.is_empty());
        let file = STANDARD.decode(env.age.as_ref().unwrap()).unwrap();
        assert!(
            file.starts_with(b"age-encryption.org/v1\n"),
            "binary, not armored"
        );
        for p in [&pa, &pb] {
            let got = open_envelope(SESSION, &env, &load(&[p]), None).unwrap();
            assert_eq!(got, key);
        }
        // Survives the trip through JSON in the start event.
        let json = serde_json::to_string(&env).unwrap();
        let back: Envelope = serde_json::from_str(&json).unwrap();
        assert_eq!(
            open_envelope(SESSION, &back, &load(&[&pa]), None).unwrap(),
            key
        );
    }

    #[test]
    fn ssh_ed25519_and_rsa_keys_open_what_was_sealed_for_them() {
        let dir = tempfile::tempdir().unwrap();
        let (pe, re) = ssh_key(dir.path(), "id_ed25519", "ed25519", "");
        let (pr, rr) = ssh_key(dir.path(), "id_rsa", "rsa", "");
        assert!(re.to_string().ends_with(" auditor@test"), "{re}");
        // Shown in messages by the fingerprint ssh-keygen -l prints.
        let fp = Command::new("ssh-keygen")
            .arg("-lf")
            .arg(pe.with_extension("pub"))
            .output()
            .unwrap();
        let fp = String::from_utf8(fp.stdout).unwrap();
        let fp = fp.split_whitespace().nth(1).unwrap();
        assert_eq!(
            describe(&re.to_string()),
            format!("ssh-ed25519 {fp} (auditor@test)")
        );
        let (key, env) =
            wrap_session_key("0193-test", &[re, rr], None, &KmsOptions::default()).unwrap();
        assert_eq!(
            open_envelope(SESSION, &env, &load(&[&pe]), None).unwrap(),
            key
        );
        assert_eq!(
            open_envelope(SESSION, &env, &load(&[&pr]), None).unwrap(),
            key
        );
        // Mixed with an age recipient, in one age file.
        let (pa, ra) = age_identity(dir.path(), "a.key");
        let (_, re) = ssh_key(dir.path(), "id2", "ed25519", "");
        let (key, env) =
            wrap_session_key("0193-test", &[ra, re], None, &KmsOptions::default()).unwrap();
        assert_eq!(
            open_envelope(SESSION, &env, &load(&[&pa]), None).unwrap(),
            key
        );
    }

    #[test]
    fn a_wrong_identity_gives_one_line_naming_session_and_recipients() {
        let dir = tempfile::tempdir().unwrap();
        let (_, ra) = age_identity(dir.path(), "a.key");
        let (_, rs) = ssh_key(dir.path(), "id_ed25519", "ed25519", "");
        let (pw, _) = age_identity(dir.path(), "wrong.key");
        let (_, env) =
            wrap_session_key("0193-test", &[ra.clone(), rs], None, &KmsOptions::default()).unwrap();
        let e = open_envelope(SESSION, &env, &load(&[&pw]), None)
            .unwrap_err()
            .to_string();
        assert!(!e.contains('\n'), "{e}");
        assert!(
            e.starts_with(&format!(
                "session {SESSION} is sealed for {ra}, ssh-ed25519 SHA256:"
            )),
            "{e}"
        );
        assert!(e.contains("(auditor@test)"), "{e}");
        assert!(
            e.ends_with(&format!(
                "; none of the identities given ({}) can open it",
                pw.display()
            )),
            "{e}"
        );

        let e = open_envelope(SESSION, &env, &Identities::default(), None)
            .unwrap_err()
            .to_string();
        assert!(
            e.ends_with("; give --identity FILE with a key for one of those to read it"),
            "{e}"
        );

        // A KMS-sealed envelope (no KMS call: the entry is written by hand).
        let mut env2 = env.clone();
        env2.kms.push(KmsWrappedKey {
            key_id: "alias/audit".into(),
            ciphertext: "AAAA".into(),
            ..Default::default()
        });
        env2.recipients.push("kms:alias/audit".into());
        let e = open_envelope(SESSION, &env2, &Identities::default(), None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(
                ", kms:alias/audit; give --identity FILE (or --kms for kms: recipients) to read it"
            ),
            "{e}"
        );
        let e = open_envelope(SESSION, &env2, &load(&[&pw]), None)
            .unwrap_err()
            .to_string();
        assert!(
            e.ends_with("can open it; add --kms to unwrap its key with KMS"),
            "{e}"
        );
    }

    #[test]
    fn damaged_and_unknown_envelopes_are_named_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let (pa, ra) = age_identity(dir.path(), "a.key");
        let (_, env) = wrap_session_key("0193-test", &[ra], None, &KmsOptions::default()).unwrap();
        let mut bad = env.clone();
        bad.age = Some("!!!".into());
        let e = open_envelope(SESSION, &bad, &load(&[&pa]), None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("its age-wrapped key is damaged (not base64"),
            "{e}"
        );
        let mut newer = env.clone();
        newer.version = 2;
        let e = open_envelope(SESSION, &newer, &load(&[&pa]), None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("envelope version 2") && e.contains("use a newer replay"),
            "{e}"
        );
    }

    #[test]
    fn nothing_to_wrap_the_key_for_is_an_error() {
        let e = wrap_session_key("0193-test", &[], None, &KmsOptions::default()).unwrap_err();
        assert!(matches!(e, EnvelopeError::NoRecipients));
    }

    #[test]
    fn passphrase_protected_ssh_keys_are_refused_with_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let (p, _) = ssh_key(dir.path(), "id_locked", "ed25519", "secret words");
        let e = Identities::load(std::slice::from_ref(&p))
            .unwrap_err()
            .to_string();
        assert!(!e.contains('\n'), "{e}");
        assert!(
            e.starts_with(&format!(
                "identity file {}: is a passphrase-protected SSH key",
                p.display()
            )),
            "{e}"
        );
        assert!(e.contains("age-keygen -o"), "{e}");
        let (p, _) = ssh_key(dir.path(), "id_locked_rsa", "rsa", "secret words");
        let e = Identities::load(&[p]).unwrap_err().to_string();
        assert!(e.contains("passphrase-protected SSH key"), "{e}");
    }

    #[test]
    fn missing_identity_files_are_named() {
        let e = Identities::load(&[PathBuf::from("/nonexistent/auditor.key")])
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("identity file /nonexistent/auditor.key: cannot read it"),
            "{e}"
        );
    }
}
