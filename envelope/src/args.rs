//! [`RecipientArgs`] (`auditty-agent record`) and [`IdentityArgs`] (`replay`): the
//! command-line flags for sealing and opening sessions.

use std::path::PathBuf;

use clap::Args;
use schemas::Envelope;
use schemas::chunk::seal::DataKey;

use crate::{
    EnvelopeError, Identities, KmsOptions, Recipient, read_recipients_file, wrap_session_key,
};

/// Who a recorded session is sealed for. With none of these the session is recorded in
/// plaintext.
#[derive(Args, Clone, Debug, Default)]
pub struct RecipientArgs {
    /// Seal the session for this age public key (age1…) or SSH public key ("ssh-ed25519
    /// AAAA… comment", "ssh-rsa AAAA…"). Repeatable; any one recipient can read it.
    #[arg(long = "recipient", value_name = "RECIPIENT", value_parser = Recipient::parse,
          long_help = "Seal the session for this recipient: an age public key (age1…, from \
          `age-keygen -y KEY`) or an SSH public key line (\"ssh-ed25519 AAAA… comment\" or \
          \"ssh-rsa AAAA…\", as in ~/.ssh/id_ed25519.pub). Repeatable: the session's key is \
          wrapped once for all of them, and any one of them can read the session with \
          `replay --identity`. Without --recipient, --recipients-file or --kms-key-id the \
          session is recorded unsealed.")]
    pub recipients: Vec<Recipient>,

    /// Seal the session for every recipient in FILE (one per line, # comments; age's
    /// recipients-file format). Repeatable.
    #[arg(long = "recipients-file", value_name = "FILE")]
    pub recipients_files: Vec<PathBuf>,

    /// Also wrap the session's key with this AWS KMS key (id, ARN or alias/NAME), via
    /// GenerateDataKey. Readers then need kms:Decrypt on it (`replay --kms`).
    #[arg(
        long,
        value_name = "ID",
        long_help = "Also wrap the session's key with this AWS KMS key (key id, ARN or \
          alias/NAME): KMS GenerateDataKey makes the key at session start, so the agent needs \
          kms:GenerateDataKey on it, and readers need kms:Decrypt (`replay --kms`). \
          Credentials come from the standard AWS chain (AWS_ACCESS_KEY_ID/\
          AWS_SECRET_ACCESS_KEY, AWS_PROFILE and ~/.aws, SSO, the instance's role). If KMS \
          cannot be reached, the session does not start."
    )]
    pub kms_key_id: Option<String>,

    /// KMS-compatible endpoint (LocalStack, moto, a VPC endpoint). Default: AWS.
    #[arg(long, env = "AUDITTY_KMS_ENDPOINT_URL", value_name = "URL")]
    pub kms_endpoint_url: Option<String>,

    /// Region of the KMS key. Default: the region in the key's ARN, else AWS_REGION or the
    /// profile's.
    #[arg(long, value_name = "REGION")]
    pub kms_region: Option<String>,
}

impl RecipientArgs {
    /// Every recipient: those given with `--recipient`, then those of each
    /// `--recipients-file`.
    pub fn recipients(&self) -> Result<Vec<Recipient>, EnvelopeError> {
        let mut out = self.recipients.clone();
        for file in &self.recipients_files {
            out.extend(read_recipients_file(file)?);
        }
        Ok(out)
    }

    /// The KMS endpoint and region flags.
    pub fn kms_options(&self) -> KmsOptions {
        KmsOptions {
            endpoint_url: self.kms_endpoint_url.clone(),
            region: self.kms_region.clone(),
        }
    }

    /// The session's data key and envelope, or `None` when no recipient and no KMS key
    /// was given (the session is then recorded unsealed). Blocks for KMS.
    /// `session` is the session id, bound into the KMS encryption context.
    pub fn wrap_session_key(
        &self,
        session: &str,
    ) -> Result<Option<(DataKey, Envelope)>, EnvelopeError> {
        let recipients = self.recipients()?;
        if recipients.is_empty() && self.kms_key_id.is_none() {
            return Ok(None);
        }
        wrap_session_key(
            session,
            &recipients,
            self.kms_key_id.as_deref(),
            &self.kms_options(),
        )
        .map(Some)
    }
}

/// What `replay` may use to open sealed sessions. Plaintext sessions need none of it.
#[derive(Args, Clone, Debug, Default)]
pub struct IdentityArgs {
    /// Private key to open sealed sessions with: an age identity file (age-keygen) or an
    /// SSH private key without passphrase. Repeatable.
    #[arg(
        long = "identity",
        global = true,
        env = "AUDITTY_IDENTITY",
        value_name = "FILE",
        long_help = "Private key to open sealed sessions with: an age identity file \
          (AGE-SECRET-KEY-1… lines, as written by `age-keygen -o FILE`) or an SSH private key \
          (OpenSSH ed25519 or RSA, e.g. ~/.ssh/id_ed25519) that has no passphrase; replay \
          never prompts, so for a protected SSH key make an age identity instead. Repeatable: \
          each is tried. AUDITTY_IDENTITY names one file."
    )]
    pub identities: Vec<PathBuf>,

    /// Allow AWS KMS Decrypt for sessions sealed for a kms: recipient (credentials from
    /// the standard AWS chain).
    #[arg(
        long,
        global = true,
        long_help = "Allow AWS KMS Decrypt for sessions sealed for a kms: recipient (tried \
          after the --identity keys). Credentials come from the standard AWS chain \
          (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE and ~/.aws, SSO, the \
          instance's role) and need kms:Decrypt on the session's key. Off by default, so \
          that reading a session never calls AWS unless asked to."
    )]
    pub kms: bool,

    /// KMS-compatible endpoint for --kms (LocalStack, moto, a VPC endpoint). Default: AWS.
    #[arg(
        long,
        global = true,
        env = "AUDITTY_KMS_ENDPOINT_URL",
        value_name = "URL"
    )]
    pub kms_endpoint_url: Option<String>,

    /// Region for --kms. Default: the region in the key's ARN, else AWS_REGION or the
    /// profile's.
    #[arg(long, global = true, value_name = "REGION")]
    pub kms_region: Option<String>,
}

impl IdentityArgs {
    /// Loads the `--identity` files (none given: empty).
    pub fn identities(&self) -> Result<Identities, EnvelopeError> {
        Identities::load(&self.identities)
    }

    /// KMS options when `--kms` was given, for [`open_envelope`](crate::open_envelope).
    pub fn kms_options(&self) -> Option<KmsOptions> {
        self.kms.then(|| KmsOptions {
            endpoint_url: self.kms_endpoint_url.clone(),
            region: self.kms_region.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Parser, Subcommand};

    #[derive(Parser)]
    struct Agent {
        #[command(flatten)]
        recipients: RecipientArgs,
    }

    #[derive(Parser)]
    struct Replay {
        #[command(flatten)]
        open: IdentityArgs,
        #[command(subcommand)]
        cmd: Cmd,
    }

    #[derive(Subcommand)]
    enum Cmd {
        Play { id: String },
    }

    #[test]
    fn recipient_flags_wrap_the_key_or_leave_plaintext() {
        let none = Agent::try_parse_from(["agent"]).unwrap();
        assert!(none.recipients.wrap_session_key("s").unwrap().is_none());

        let a = age::x25519::Identity::generate().to_public().to_string();
        let b = age::x25519::Identity::generate().to_public().to_string();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("r.txt");
        std::fs::write(&file, format!("# team\n{b}\n")).unwrap();
        let args = Agent::try_parse_from([
            "agent",
            "--recipient",
            &a,
            "--recipients-file",
            file.to_str().unwrap(),
        ])
        .unwrap();
        let (_, env) = args.recipients.wrap_session_key("s").unwrap().unwrap();
        assert_eq!(env.recipients, [a, b]);

        let e = Agent::try_parse_from(["agent", "--recipient", "bogus"])
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("expected an age recipient"), "{e}");
    }

    #[test]
    fn identity_flags_work_after_the_subcommand() {
        let r = Replay::try_parse_from([
            "replay",
            "play",
            "01a2",
            "--identity",
            "/a",
            "--identity",
            "/b",
            "--kms",
            "--kms-region",
            "eu-west-1",
        ])
        .unwrap();
        let Cmd::Play { id } = &r.cmd;
        assert_eq!(id, "01a2");
        assert_eq!(
            r.open.identities,
            [PathBuf::from("/a"), PathBuf::from("/b")]
        );
        assert_eq!(
            r.open.kms_options().unwrap().region.as_deref(),
            Some("eu-west-1")
        );
        let r = Replay::try_parse_from(["replay", "play", "01a2"]).unwrap();
        assert!(r.open.kms_options().is_none());
    }
}
