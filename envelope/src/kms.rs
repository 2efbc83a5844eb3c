//! AWS KMS: [`KmsOptions`] and the one place that builds a KMS client from them
//! ([`Kms::connect`]), used by `GenerateDataKey` when wrapping and `Decrypt` when opening.
//!
//! Callers are synchronous (the agent, `replay`), so [`Kms`] owns a small current-thread
//! tokio runtime and blocks on each call, like `store`'s S3 client.

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use schemas::chunk::seal::DataKey;
use zeroize::Zeroize;

use crate::error::one_line;

/// How to reach AWS KMS. Credentials come from the standard AWS chain
/// (`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, `AWS_PROFILE` and `~/.aws`, SSO, the
/// instance's role).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KmsOptions {
    /// Endpoint override (a KMS-compatible server such as moto or LocalStack, or a VPC
    /// endpoint). Default: AWS's endpoint for the region.
    pub endpoint_url: Option<String>,
    /// Region. Default: the region in the key's ARN, else `AWS_REGION` or the profile's.
    pub region: Option<String>,
}

/// A connected KMS client and the runtime its calls run on.
pub(crate) struct Kms {
    runtime: tokio::runtime::Runtime,
    sdk: aws_config::SdkConfig,
    options: KmsOptions,
}

impl Kms {
    /// Starts the runtime and loads the AWS configuration (region, credentials provider).
    pub(crate) fn connect(options: &KmsOptions) -> Result<Kms, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the KMS client's runtime: {e}"))?;
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(region) = &options.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        let sdk = runtime.block_on(loader.load());
        Ok(Kms {
            runtime,
            sdk,
            options: options.clone(),
        })
    }

    /// A client for `key_id`'s region: `--kms-region`, else the region named in the key's
    /// ARN, else the AWS chain's, else (only with an endpoint override) us-east-1.
    fn client(&self, key_id: &str) -> Result<aws_sdk_kms::Client, String> {
        let mut config = aws_sdk_kms::config::Builder::from(&self.sdk).timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(Duration::from_secs(20))
                .operation_timeout(Duration::from_secs(60))
                .build(),
        );
        let region = match (&self.options.region, arn_region(key_id)) {
            (Some(r), _) => Some(r.clone()),
            (None, Some(r)) => Some(r.to_string()),
            (None, None) if self.sdk.region().is_some() => None,
            (None, None) if self.options.endpoint_url.is_some() => Some("us-east-1".to_string()),
            (None, None) => {
                return Err(
                    "no AWS region is configured: give --kms-region REGION, set AWS_REGION, \
                     or use the key's full ARN"
                        .to_string(),
                );
            }
        };
        if let Some(region) = region {
            config = config.region(aws_config::Region::new(region));
        }
        if let Some(endpoint) = &self.options.endpoint_url {
            config = config.endpoint_url(endpoint);
        }
        Ok(aws_sdk_kms::Client::from_conf(config.build()))
    }

    /// `GenerateDataKey` (AES_256): the data key and its `CiphertextBlob`.
    pub(crate) fn generate_data_key(
        &self,
        key_id: &str,
        context: &Context,
    ) -> Result<(DataKey, Vec<u8>), String> {
        let client = self.client(key_id)?;
        let out = self
            .runtime
            .block_on(
                client
                    .generate_data_key()
                    .key_id(key_id)
                    .set_encryption_context(Some(context.clone().into_iter().collect()))
                    .key_spec(DataKeySpec::Aes256)
                    .send(),
            )
            .map_err(|e| format!("GenerateDataKey failed: {}", describe_sdk_error(e)))?;
        let ciphertext = out
            .ciphertext_blob
            .map(Blob::into_inner)
            .ok_or("KMS returned no CiphertextBlob")?;
        let key = data_key(out.plaintext)
            .map_err(|len| format!("KMS returned a {len}-byte key, not 32 bytes"))?;
        Ok((key, ciphertext))
    }

    /// `Decrypt` of a `CiphertextBlob` made under `key_id` (passed to KMS, so a blob of
    /// another key is refused rather than decrypted).
    pub(crate) fn decrypt(
        &self,
        key_id: &str,
        ciphertext: Vec<u8>,
        context: &Context,
    ) -> Result<DataKey, String> {
        let client = self.client(key_id)?;
        let out = self
            .runtime
            .block_on(
                client
                    .decrypt()
                    .key_id(key_id)
                    .set_encryption_context(
                        (!context.is_empty()).then(|| context.clone().into_iter().collect()),
                    )
                    .ciphertext_blob(Blob::new(ciphertext))
                    .send(),
            )
            .map_err(describe_sdk_error)?;
        data_key(out.plaintext).map_err(|len| {
            format!("it returned {len} bytes, not a 32-byte data key (not an auditty key?)")
        })
    }
    /// `CreateKey` (symmetric, for tests against moto) and, with `alias`, `CreateAlias`;
    /// the new key's id.
    #[cfg(feature = "testsuite")]
    pub(crate) fn create_key(&self, alias: Option<&str>) -> Result<String, String> {
        let client = self.client("")?;
        let out = self
            .runtime
            .block_on(client.create_key().description("auditty test key").send())
            .map_err(|e| format!("CreateKey failed: {}", describe_sdk_error(e)))?;
        let key_id = out
            .key_metadata
            .map(|m| m.key_id)
            .ok_or("KMS returned no KeyMetadata")?;
        if let Some(alias) = alias {
            self.runtime
                .block_on(
                    client
                        .create_alias()
                        .alias_name(alias)
                        .target_key_id(&key_id)
                        .send(),
                )
                .map_err(|e| format!("CreateAlias failed: {}", describe_sdk_error(e)))?;
        }
        Ok(key_id)
    }
}

/// The region field of `arn:aws:kms:REGION:ACCOUNT:key/…` or `…:alias/…`.
fn arn_region(key_id: &str) -> Option<&str> {
    let mut parts = key_id.split(':');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("arn"), Some(_), Some("kms"), Some(region)) if !region.is_empty() => Some(region),
        _ => None,
    }
}

/// One line: the service's error code and message, or the SDK's chain of causes, plus a
/// hint for the usual mistakes.
fn describe_sdk_error<E, R>(e: SdkError<E, R>) -> String
where
    E: std::error::Error + ProvideErrorMetadata + 'static,
    R: std::fmt::Debug + 'static,
{
    if let SdkError::ServiceError(_) = &e {
        let code = e.code().unwrap_or("error");
        let msg = e.message().map(|m| format!(": {m}")).unwrap_or_default();
        let hint = match code {
            "AccessDeniedException" => {
                " (check that these AWS credentials may use this key, and that it is the key the \
                 session was sealed with)"
            }
            "NotFoundException" => " (check the key id and --kms-region)",
            "UnrecognizedClientException" | "InvalidSignatureException" => {
                " (check the AWS credentials)"
            }
            _ => "",
        };
        return one_line(&format!("{code}{msg}{hint}"));
    }
    // The Display of each cause, without repeats (wrappers often repeat their source).
    let mut parts: Vec<String> = Vec::new();
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(c) = cause {
        let text = c.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cause = c.source();
    }
    let text = parts.join(": ");
    let hint = if text.contains("credential") {
        " (are AWS credentials configured? AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, \
         AWS_PROFILE and ~/.aws, SSO or an instance role)"
    } else {
        " (is KMS reachable? check --kms-endpoint-url, --kms-region and the network)"
    };
    one_line(&format!("{text}{hint}"))
}

/// A KMS encryption context.
pub(crate) type Context = std::collections::BTreeMap<String, String>;

/// The data key in a KMS `Plaintext`, wiping the buffer; `Err(length)` unless 32 bytes
/// (0 when KMS returned none).
fn data_key(plaintext: Option<Blob>) -> Result<DataKey, usize> {
    let Some(mut plaintext) = plaintext.map(Blob::into_inner) else {
        return Err(0);
    };
    let key = DataKey::from_slice(&plaintext);
    let len = plaintext.len();
    plaintext.zeroize();
    key.ok_or(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_come_from_arns() {
        assert_eq!(
            arn_region("arn:aws:kms:eu-west-1:123456789012:key/4f1e"),
            Some("eu-west-1")
        );
        assert_eq!(arn_region("alias/audit"), None);
        assert_eq!(arn_region("4f1e-1234"), None);
        assert_eq!(arn_region("arn:aws:kms::1:key/x"), None);
    }
}
