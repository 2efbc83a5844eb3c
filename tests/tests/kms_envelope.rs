//! Issue 6: a session's data key wrapped by AWS KMS (and age), against moto's KMS server.

use auditty_tests::moto::Moto;
use envelope::testsuite::{create_kms_key, new_age_identity};
use envelope::{EnvelopeError, Identities, KmsOptions, open_envelope, wrap_session_key};

const SESSION: &str = "0193a7c2-7b1d-7c3e-9a55-1f0e2d3c4b5a";

#[test]
fn kms_and_age_each_open_a_session_and_another_keys_blob_is_refused() {
    auditty_tests::moto::set_test_credentials();
    let moto = Moto::start();
    let kms = KmsOptions {
        endpoint_url: Some(moto.endpoint()),
        region: Some("us-east-1".to_string()),
    };
    let key_a = create_kms_key(&kms, Some("alias/audit")).expect("create KMS key A");
    create_kms_key(&kms, Some("alias/other")).expect("create KMS key B");

    let dir = tempfile::tempdir().unwrap();
    let (file, recipient) = new_age_identity();
    let id_path = dir.path().join("auditor.key");
    std::fs::write(&id_path, file).unwrap();

    // Sealed for one age recipient and KMS key A (by alias).
    let (key, env) = wrap_session_key(
        SESSION,
        std::slice::from_ref(&recipient),
        Some("alias/audit"),
        &kms,
    )
    .expect("seal with KMS and age");
    assert_eq!(
        env.recipients,
        [recipient.to_string(), "kms:alias/audit".to_string()]
    );
    assert_eq!(env.kms.len(), 1);
    assert_eq!(env.kms[0].key_id, "alias/audit");
    assert_eq!(
        env.kms[0].context.get(envelope::KMS_CONTEXT_SESSION),
        Some(&SESSION.to_string()),
        "the session is bound into the KMS encryption context"
    );
    assert!(env.age.is_some());
    // KMS refuses the blob under another context.
    let mut rebound = env.clone();
    rebound.kms[0].context.insert(
        envelope::KMS_CONTEXT_SESSION.into(),
        "another-session".into(),
    );
    let e = open_envelope(SESSION, &rebound, &Identities::default(), Some(&kms))
        .unwrap_err()
        .to_string();
    assert!(e.contains("KMS Decrypt with alias/audit failed"), "{e}");

    // KMS alone opens it.
    let none = Identities::default();
    assert_eq!(
        open_envelope(SESSION, &env, &none, Some(&kms)).unwrap(),
        key
    );
    // age alone opens it (no KMS call: --kms not given).
    let ids = Identities::load(std::slice::from_ref(&id_path)).unwrap();
    assert_eq!(open_envelope(SESSION, &env, &ids, None).unwrap(), key);
    // Without either, the message says what to give.
    let e = open_envelope(SESSION, &env, &none, None)
        .unwrap_err()
        .to_string();
    assert!(
        e.ends_with(
            "kms:alias/audit; give --identity FILE (or --kms for kms: recipients) to read it"
        ),
        "{e}"
    );

    // A KMS-only session: the data key comes from GenerateDataKey.
    let (key_b, env_b) =
        wrap_session_key(SESSION, &[], Some("alias/other"), &kms).expect("seal with KMS B");
    assert_ne!(key_b, key);
    assert!(env_b.age.is_none());
    assert_eq!(env_b.recipients, ["kms:alias/other"]);
    assert_eq!(
        open_envelope(SESSION, &env_b, &none, Some(&kms)).unwrap(),
        key_b
    );
    let e = open_envelope(SESSION, &env_b, &none, None)
        .unwrap_err()
        .to_string();
    assert!(
        e.ends_with("; give --kms (KMS Decrypt, with credentials from the AWS chain) to read it"),
        "{e}"
    );

    // Key B's blob put under key A's name: KMS refuses it (Decrypt names the expected key),
    // and the one-line error says which session, who it is sealed for and what KMS said.
    let mut forged = env.clone();
    forged.age = None;
    forged.kms[0].ciphertext = env_b.kms[0].ciphertext.clone();
    let e = open_envelope(SESSION, &forged, &ids, Some(&kms)).unwrap_err();
    assert!(matches!(e, EnvelopeError::CannotOpen { .. }), "{e:?}");
    let e = e.to_string();
    assert!(!e.contains('\n'), "{e}");
    assert!(
        e.starts_with(&format!(
            "session {SESSION} is sealed for {recipient}, kms:alias/audit; none of the identities \
             given ({}) can open it (it has no age recipients); KMS Decrypt with alias/audit \
             failed: AccessDeniedException",
            id_path.display()
        )),
        "{e}"
    );

    // The key's id (not only its alias) works as well, and a key that does not exist
    // fails at sealing with KMS's word for it.
    let (key_c, env_c) =
        wrap_session_key(SESSION, &[], Some(&key_a), &kms).expect("seal by key id");
    assert_eq!(
        open_envelope(SESSION, &env_c, &none, Some(&kms)).unwrap(),
        key_c
    );
    let e = wrap_session_key(SESSION, &[], Some("alias/missing"), &kms)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("cannot seal the session's data key with KMS key alias/missing: GenerateDataKey failed: NotFoundException"),
        "{e}"
    );
}
