//! [`S3Args`]: the `--s3-*` and `--sse` flags, shared by every binary that takes `--store`.

use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::{S3Options, Sse, StoreError, StoreUrl};

/// `--sse` values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum SseMode {
    /// The bucket's default encryption.
    #[default]
    None,
    /// SSE-S3 (AES256, keys managed by S3).
    S3,
    /// SSE-KMS, with --sse-kms-key-id or the account's default key.
    Kms,
}

/// How to reach an `s3://` store. Credentials come from the standard AWS chain:
/// AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE and ~/.aws, SSO, instance roles.
#[derive(Args, Clone, Debug, Default)]
pub struct S3Args {
    /// S3-compatible endpoint (MinIO, R2, Ceph), e.g. http://minio:9000. Default: AWS.
    #[arg(long, global = true, env = "AUDITTY_S3_ENDPOINT", value_name = "URL")]
    pub s3_endpoint: Option<String>,

    /// Region of the bucket. Default: AWS_REGION or the profile's, else us-east-1.
    #[arg(long, global = true, value_name = "REGION")]
    pub s3_region: Option<String>,

    /// Path-style addressing (http://host/bucket/key). Default: on with --s3-endpoint,
    /// off for AWS.
    #[arg(long, global = true, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub s3_path_style: Option<bool>,

    /// Server-side encryption of written objects.
    #[arg(long, global = true, value_enum, default_value_t = SseMode::None)]
    pub sse: SseMode,

    /// KMS key (id, ARN or alias/NAME) for --sse kms. Default: the account's S3 key.
    #[arg(long, global = true, value_name = "ID")]
    pub sse_kms_key_id: Option<String>,

    /// Abandon and retry an S3 request attempt after this many seconds.
    #[arg(long, global = true, default_value_t = 30, value_name = "SECS")]
    pub s3_timeout: u64,

    /// Report an S3 operation as failed after retrying it for this many seconds.
    #[arg(long, global = true, default_value_t = 300, value_name = "SECS")]
    pub s3_give_up_after: u64,
}

impl S3Args {
    /// The options these flags describe.
    pub fn options(&self) -> Result<S3Options, StoreError> {
        let sse = match (self.sse, &self.sse_kms_key_id) {
            (SseMode::Kms, key_id) => Sse::Kms {
                key_id: key_id.clone(),
            },
            (_, Some(_)) => {
                return Err(StoreError::BadUrl {
                    url: "--sse-kms-key-id".to_string(),
                    reason: "a KMS key only applies with --sse kms".to_string(),
                });
            }
            (SseMode::S3, None) => Sse::S3,
            (SseMode::None, None) => Sse::None,
        };
        Ok(S3Options {
            endpoint: self.s3_endpoint.clone(),
            region: self.s3_region.clone(),
            force_path_style: self.s3_path_style.unwrap_or(self.s3_endpoint.is_some()),
            sse,
            attempt_timeout: Duration::from_secs(self.s3_timeout.max(1)),
            give_up_after: Duration::from_secs(self.s3_give_up_after),
        })
    }

    /// Parses `--store` and applies these flags to an `s3://` URL.
    pub fn store_url(&self, store: &str) -> Result<StoreUrl, StoreError> {
        Ok(StoreUrl::parse(store)?.with_s3_options(self.options()?))
    }
}
