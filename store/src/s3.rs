//! [`S3Store`]: the store in an S3 bucket (AWS S3, MinIO, R2, Ceph, moto), the fleet
//! store of DESIGN.md §4.
//!
//! The [`ObjectStore`] trait is synchronous (the ingester and `replay` are plain threads),
//! so the store owns a small current-thread tokio runtime and blocks on each SDK call.
//!
//! Failure handling, in two layers:
//! - the SDK's standard retry policy (more attempts than its default) retries 5xx,
//!   throttling and connection errors with jittered exponential backoff;
//! - [`S3Store::call`] wraps every operation and retries what the SDK gave up on or does
//!   not retry itself (attempt timeouts, a stalled body, a stretch of 5xx longer than the
//!   SDK's attempts), with backoff, until [`S3Options::give_up_after`] has passed. Callers
//!   never loop themselves.
//!
//! Puts are conditional (`If-None-Match: *`): object names are deterministic, so a put
//! that finds the object already there (a retry whose first response was lost, or a
//! restarted ingester rewriting a batch) succeeds if the bytes are identical and fails
//! loudly otherwise. It never clobbers a different object. Servers that ignore the header
//! just overwrite with identical content, which is equally safe.

use std::future::Future;
use std::ops::Range;
use std::time::{Duration, Instant};

use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, ServerSideEncryption};

use crate::{ObjectStore, StoreError, validate_key};

/// Objects larger than this go up in parts: one PUT of a huge body is retried whole and
/// S3 caps single PUTs at 5 GiB.
pub const MULTIPART_THRESHOLD: usize = 16 << 20;
/// Size of each part of a multipart upload (S3's minimum is 5 MiB, except the last).
const PART_SIZE: usize = 8 << 20;
/// Attempts the SDK makes per call before [`S3Store::call`] sees an error.
const SDK_MAX_ATTEMPTS: u32 = 5;
/// Longest pause between two rounds of [`S3Store::call`].
const MAX_OUTER_BACKOFF: Duration = Duration::from_secs(8);

/// Server-side encryption asked of S3 for every object written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Sse {
    /// Whatever the bucket's default is.
    #[default]
    None,
    /// SSE-S3 (`AES256`, keys managed by S3).
    S3,
    /// SSE-KMS with this key (id, ARN or alias), or the account's default KMS key.
    Kms {
        /// `--sse-kms-key-id`.
        key_id: Option<String>,
    },
}

impl Sse {
    /// The `x-amz-server-side-encryption` and `…-aws-kms-key-id` values of a write; both
    /// `None` leaves the bucket's default.
    fn headers(&self) -> (Option<ServerSideEncryption>, Option<String>) {
        match self {
            Sse::None => (None, None),
            Sse::S3 => (Some(ServerSideEncryption::Aes256), None),
            Sse::Kms { key_id } => (Some(ServerSideEncryption::AwsKms), key_id.clone()),
        }
    }
}

/// How to reach an S3 store; everything but the bucket and prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Options {
    /// Endpoint URL for S3-compatible servers (MinIO, R2, Ceph, moto); `None` for AWS.
    pub endpoint: Option<String>,
    /// Region; `None` takes the standard chain (AWS_REGION, profile), else `us-east-1`.
    pub region: Option<String>,
    /// Path-style addressing (`http://host/bucket/key`), which most non-AWS servers need.
    pub force_path_style: bool,
    /// Encryption of written objects.
    pub sse: Sse,
    /// Longest a single attempt of a request may take before it is abandoned and retried
    /// (a stalled connection must not hang the ingester).
    pub attempt_timeout: Duration,
    /// How long [`S3Store`] keeps retrying one operation before reporting the failure.
    pub give_up_after: Duration,
}

impl Default for S3Options {
    fn default() -> Self {
        S3Options {
            endpoint: None,
            region: None,
            force_path_style: false,
            sse: Sse::None,
            attempt_timeout: Duration::from_secs(30),
            give_up_after: Duration::from_secs(300),
        }
    }
}

/// An [`ObjectStore`] in an S3 bucket under a key prefix.
pub struct S3Store {
    runtime: tokio::runtime::Runtime,
    client: Client,
    bucket: String,
    /// `""` or `"some/prefix/"`.
    prefix: String,
    options: S3Options,
    url: String,
}

/// What one attempt of [`S3Store::call`] can end in besides success, sorted by whether
/// another attempt may help.
enum AttemptError {
    /// Worth trying again (timeouts, 5xx, throttling, connection trouble).
    Transient(String),
    /// Retrying will not help; report this.
    Permanent(StoreError),
}

impl S3Store {
    /// Connects to `bucket` and checks that it is there and readable, so that a wrong
    /// bucket, missing credentials or an unreachable endpoint are reported at start-up
    /// with what to do rather than at the first write.
    pub fn open(bucket: &str, prefix: &str, options: S3Options) -> Result<S3Store, StoreError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StoreError::io("the S3 client runtime", "start", e))?;
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(region) = &options.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        let sdk = runtime.block_on(loader.load());
        let mut config = aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(options.force_path_style)
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(SDK_MAX_ATTEMPTS)
                    .with_initial_backoff(Duration::from_millis(200))
                    .with_max_backoff(Duration::from_secs(5)),
            )
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5).min(options.attempt_timeout))
                    .operation_attempt_timeout(options.attempt_timeout)
                    .build(),
            );
        if sdk.region().is_none() {
            // S3-compatible servers rarely care; AWS answers a wrong region with a
            // redirect error that names the right one.
            config = config.region(aws_config::Region::new("us-east-1"));
        }
        if let Some(endpoint) = &options.endpoint {
            config = config.endpoint_url(endpoint);
        }
        let client = Client::from_conf(config.build());
        let prefix = prefix.trim_matches('/');
        let store = S3Store {
            runtime,
            client,
            bucket: bucket.to_string(),
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
            url: if prefix.is_empty() {
                format!("s3://{bucket}")
            } else {
                format!("s3://{bucket}/{prefix}")
            },
            options,
        };
        store.call("open", "", || async {
            store
                .client
                .head_bucket()
                .bucket(&store.bucket)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| store.classify("open", "", e))
        })?;
        Ok(store)
    }

    fn full_key(&self, key: &str) -> Result<String, StoreError> {
        validate_key(key)?;
        Ok(format!("{}{key}", self.prefix))
    }

    /// Runs one S3 operation to completion on the store's runtime, retrying transient
    /// failures with exponential backoff until [`S3Options::give_up_after`].
    fn call<T, F, Fut>(&self, op: &'static str, key: &str, mut attempt: F) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, AttemptError>>,
    {
        let started = Instant::now();
        let mut pause = Duration::from_millis(500);
        let mut round = 0u32;
        loop {
            round += 1;
            match self.runtime.block_on(attempt()) {
                Ok(v) => return Ok(v),
                Err(AttemptError::Permanent(e)) => return Err(e),
                Err(AttemptError::Transient(message)) => {
                    if started.elapsed() + pause > self.options.give_up_after {
                        return Err(StoreError::Remote {
                            op,
                            key: self.describe_key(key),
                            message: format!(
                                "{message} (still failing after {round} rounds of retries \
                                 over {:.0}s)",
                                started.elapsed().as_secs_f64()
                            ),
                            hint: "the S3 endpoint keeps failing or timing out; check that \
                                   it is up and reachable (--s3-endpoint), then run again"
                                .to_string(),
                        });
                    }
                    tracing::warn!(op, key, round, error = %message, "S3 request failed; retrying");
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(MAX_OUTER_BACKOFF);
                }
            }
        }
    }

    fn describe_key(&self, key: &str) -> String {
        if key.is_empty() {
            self.url.clone()
        } else {
            format!("{}/{key}", self.url)
        }
    }

    /// Sorts an SDK error into transient or permanent, with a hint for the user.
    fn classify<E>(
        &self,
        op: &'static str,
        key: &str,
        err: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    ) -> AttemptError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let status = err.raw_response().map(|r| r.status().as_u16());
        let code = err.code().map(str::to_string);
        // The whole chain, for sorting the error; what is shown is one line of it.
        let message = DisplayErrorContext(&err).to_string();
        let shown = short_message(&err, status, &message);
        let transient = match &err {
            SdkError::TimeoutError(_) | SdkError::ResponseError(_) => true,
            SdkError::DispatchFailure(d) => {
                // Missing credentials also surface here and never heal by retrying.
                !(d.is_user() || message.contains("credentials"))
            }
            SdkError::ServiceError(_) => {
                status.is_some_and(|s| s >= 500 || s == 429)
                    || matches!(
                        code.as_deref(),
                        Some("SlowDown" | "Throttling" | "RequestTimeout" | "InternalError")
                    )
            }
            _ => false,
        };
        if transient {
            return AttemptError::Transient(shown);
        }
        let hint = if message.contains("credentials") || message.contains("Credentials") {
            "no usable AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or \
             AWS_PROFILE (~/.aws/credentials), or run where an instance role is available"
                .to_string()
        } else if code.as_deref() == Some("NoSuchBucket") || (op == "open" && status == Some(404)) {
            format!(
                "bucket '{}' does not exist at this endpoint: create it, or fix the bucket in \
                 --store",
                self.bucket
            )
        } else if matches!(status, Some(401 | 403)) {
            "access denied: check the credentials and that they may list, read and write \
             this bucket and prefix (and use the KMS key, with --sse kms)"
                .to_string()
        } else if matches!(status, Some(301 | 307 | 400)) && op == "open" {
            "the server refused the request: check --s3-region (AWS names the bucket's region \
             in the error) and --s3-path-style"
                .to_string()
        } else if matches!(err, SdkError::DispatchFailure(_)) {
            "cannot send the request: check --s3-endpoint and the network".to_string()
        } else {
            "see the message".to_string()
        };
        AttemptError::Permanent(StoreError::Remote {
            op,
            key: self.describe_key(key),
            message: shown,
            hint,
        })
    }

    fn is_not_found<E: ProvideErrorMetadata>(
        err: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    ) -> bool {
        err.raw_response()
            .is_some_and(|r| r.status().as_u16() == 404)
            || matches!(err.code(), Some("NoSuchKey" | "NotFound"))
    }

    fn is_precondition_failed<E: ProvideErrorMetadata>(
        err: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    ) -> bool {
        err.raw_response()
            .is_some_and(|r| r.status().as_u16() == 412)
            || err.code() == Some("PreconditionFailed")
    }

    /// A put that found an object under the key: fine if it holds the same bytes.
    fn existing_must_match(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let existing = self.get(key)?;
        if existing == bytes {
            tracing::debug!(key, "object already stored with identical content");
            Ok(())
        } else {
            Err(StoreError::Conflict {
                key: self.describe_key(key),
                existing: existing.len() as u64,
                new: bytes.len() as u64,
            })
        }
    }

    /// One HEAD of the object (its size and time); a missing one is
    /// [`StoreError::NotFound`].
    fn head(
        &self,
        key: &str,
    ) -> Result<aws_sdk_s3::operation::head_object::HeadObjectOutput, StoreError> {
        let full = self.full_key(key)?;
        self.call("look up", key, || async {
            match self
                .client
                .head_object()
                .bucket(&self.bucket)
                .key(&full)
                .send()
                .await
            {
                Ok(out) => Ok(out),
                Err(e) if Self::is_not_found(&e) => {
                    Err(AttemptError::Permanent(StoreError::NotFound {
                        key: key.to_string(),
                    }))
                }
                Err(e) => Err(self.classify("look up", key, e)),
            }
        })
    }

    /// Writes the object in one PUT or in parts; false if `If-None-Match: *` found one
    /// there (never with `replace`, which drops the guard: see [`ObjectStore::replace`]).
    fn write(&self, key: &str, bytes: &[u8], replace: bool) -> Result<bool, StoreError> {
        let full = self.full_key(key)?;
        if bytes.len() > MULTIPART_THRESHOLD {
            self.put_multipart(key, &full, bytes, replace)
        } else {
            self.put_single(key, &full, bytes, replace)
        }
    }

    /// One PUT; `replace` drops the `If-None-Match: *` guard (see [`ObjectStore::replace`]).
    fn put_single(
        &self,
        key: &str,
        full: &str,
        bytes: &[u8],
        replace: bool,
    ) -> Result<bool, StoreError> {
        self.call("write", key, || async {
            let mut req = self
                .client
                .put_object()
                .bucket(&self.bucket)
                .key(full)
                .set_if_none_match((!replace).then(|| "*".to_string()))
                .body(ByteStream::from(bytes.to_vec()));
            let (sse, kms_key_id) = self.options.sse.headers();
            req = req
                .set_server_side_encryption(sse)
                .set_ssekms_key_id(kms_key_id);
            match req.send().await {
                Ok(_) => Ok(true),
                Err(e) if Self::is_precondition_failed(&e) => Ok(false),
                Err(e) => Err(self.classify("write", key, e)),
            }
        })
    }

    fn put_multipart(
        &self,
        key: &str,
        full: &str,
        bytes: &[u8],
        replace: bool,
    ) -> Result<bool, StoreError> {
        let upload_id = self.call("start a multipart upload of", key, || async {
            let mut req = self
                .client
                .create_multipart_upload()
                .bucket(&self.bucket)
                .key(full);
            let (sse, kms_key_id) = self.options.sse.headers();
            req = req
                .set_server_side_encryption(sse)
                .set_ssekms_key_id(kms_key_id);
            let out = req
                .send()
                .await
                .map_err(|e| self.classify("start a multipart upload of", key, e))?;
            out.upload_id().map(str::to_string).ok_or_else(|| {
                AttemptError::Permanent(StoreError::Remote {
                    op: "start a multipart upload of",
                    key: self.describe_key(key),
                    message: "the server returned no upload id".to_string(),
                    hint: "the endpoint does not behave like S3".to_string(),
                })
            })
        })?;
        let result = self.upload_parts(key, full, &upload_id, bytes, replace);
        if !matches!(result, Ok(true)) {
            // Parts of an abandoned upload are billed until aborted; best effort.
            let _ = self.runtime.block_on(
                self.client
                    .abort_multipart_upload()
                    .bucket(&self.bucket)
                    .key(full)
                    .upload_id(&upload_id)
                    .send(),
            );
        }
        result
    }

    fn upload_parts(
        &self,
        key: &str,
        full: &str,
        upload_id: &str,
        bytes: &[u8],
        replace: bool,
    ) -> Result<bool, StoreError> {
        let mut parts = Vec::new();
        for (i, part) in bytes.chunks(PART_SIZE).enumerate() {
            let number = i32::try_from(i + 1).map_err(|_| StoreError::Remote {
                op: "write",
                key: self.describe_key(key),
                message: "too many parts".to_string(),
                hint: "the object is too large".to_string(),
            })?;
            let etag = self.call("upload a part of", key, || async {
                let out = self
                    .client
                    .upload_part()
                    .bucket(&self.bucket)
                    .key(full)
                    .upload_id(upload_id)
                    .part_number(number)
                    .body(ByteStream::from(part.to_vec()))
                    .send()
                    .await
                    .map_err(|e| self.classify("upload a part of", key, e))?;
                Ok(out.e_tag().map(str::to_string))
            })?;
            parts.push(
                CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(etag)
                    .build(),
            );
        }
        let upload = CompletedMultipartUpload::builder()
            .set_parts(Some(parts))
            .build();
        self.call("complete the multipart upload of", key, || async {
            match self
                .client
                .complete_multipart_upload()
                .bucket(&self.bucket)
                .key(full)
                .upload_id(upload_id)
                .set_if_none_match((!replace).then(|| "*".to_string()))
                .multipart_upload(upload.clone())
                .send()
                .await
            {
                Ok(_) => Ok(true),
                Err(e) if Self::is_precondition_failed(&e) => Ok(false),
                Err(e) => Err(self.classify("complete the multipart upload of", key, e)),
            }
        })
    }

    /// Last `n` bytes of an object and its total size, in one request (`Range: bytes=-n`).
    /// One GET, whole or ranged: the body and the Content-Range header, or `None` when
    /// the server answers 416 (range not satisfiable). Retrying is the caller's `call`.
    async fn fetch(
        &self,
        key: &str,
        full: &str,
        range: Option<String>,
    ) -> Result<Option<(Vec<u8>, Option<String>)>, AttemptError> {
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(full)
            .set_range(range)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if Self::is_not_found(&e) => {
                return Err(AttemptError::Permanent(StoreError::NotFound {
                    key: key.to_string(),
                }));
            }
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 416) => {
                return Ok(None);
            }
            Err(e) => return Err(self.classify("read", key, e)),
        };
        let content_range = out.content_range().map(str::to_string);
        let body = out
            .body
            .collect()
            .await
            .map_err(|e| AttemptError::Transient(format!("reading the response body: {e}")))?
            .to_vec();
        Ok(Some((body, content_range)))
    }

    /// A 416 where the range asked for must exist.
    fn unsatisfiable(&self, key: &str) -> AttemptError {
        AttemptError::Permanent(StoreError::Remote {
            op: "read",
            key: self.describe_key(key),
            message: "the server answered 416: the range is not satisfiable".to_string(),
            hint:
                "the object is shorter than its footer says; it may have been replaced or truncated"
                    .to_string(),
        })
    }

    fn suffix(&self, key: &str, n: u64) -> Result<(Vec<u8>, u64), StoreError> {
        let full = self.full_key(key)?;
        self.call("read", key, || async {
            // An empty object has no suffix to serve (416).
            let Some((body, content_range)) =
                self.fetch(key, &full, Some(format!("bytes=-{n}"))).await?
            else {
                return Ok((Vec::new(), 0));
            };
            // "bytes 100-199/200" gives the total; a server that ignored the range sent it all.
            let total = content_range
                .as_deref()
                .and_then(|r| r.rsplit_once('/'))
                .and_then(|(_, t)| t.parse::<u64>().ok());
            let total = total.unwrap_or(body.len() as u64);
            let keep = body
                .len()
                .saturating_sub(usize::try_from(n).unwrap_or(usize::MAX));
            Ok((body[keep..].to_vec(), total))
        })
    }
}

impl ObjectStore for S3Store {
    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        if self.write(key, bytes, false)? {
            Ok(())
        } else {
            self.existing_must_match(key, bytes)
        }
    }

    fn replace(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.write(key, bytes, true).map(|_| ())
    }

    fn get(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        let full = self.full_key(key)?;
        self.call("read", key, || async {
            match self.fetch(key, &full, None).await? {
                Some((body, _)) => Ok(body),
                None => Err(self.unsatisfiable(key)),
            }
        })
    }

    fn get_range(&self, key: &str, range: Range<u64>) -> Result<Vec<u8>, StoreError> {
        let full = self.full_key(key)?;
        if range.start >= range.end {
            // HTTP cannot express an empty range; check the object exists, as a read would.
            return if range.start == range.end && self.exists(key)? {
                Ok(Vec::new())
            } else if range.start > range.end {
                Err(StoreError::Remote {
                    op: "read",
                    key: self.describe_key(key),
                    message: format!("inverted range {}..{}", range.start, range.end),
                    hint: "this is a bug in auditty; please report it".to_string(),
                })
            } else {
                Err(StoreError::NotFound {
                    key: key.to_string(),
                })
            };
        }
        let want = range.end - range.start;
        self.call("read", key, || async {
            let range_header = format!("bytes={}-{}", range.start, range.end - 1);
            let Some((body, _)) = self.fetch(key, &full, Some(range_header)).await? else {
                return Err(self.unsatisfiable(key));
            };
            if body.len() as u64 != want {
                return Err(AttemptError::Permanent(StoreError::Remote {
                    op: "read",
                    key: self.describe_key(key),
                    message: format!(
                        "asked for bytes {}..{} and got {} bytes",
                        range.start,
                        range.end,
                        body.len()
                    ),
                    hint: "the range is past the end of the object, or the server ignored \
                           the Range header"
                        .to_string(),
                }));
            }
            Ok(body)
        })
    }

    fn get_suffix(&self, key: &str, n: u64) -> Result<(Vec<u8>, u64), StoreError> {
        self.suffix(key, n)
    }

    fn size(&self, key: &str) -> Result<u64, StoreError> {
        let head = self.head(key)?;
        Ok(head
            .content_length()
            .and_then(|n| u64::try_from(n).ok())
            .unwrap_or(0))
    }

    fn exists(&self, key: &str) -> Result<bool, StoreError> {
        match self.size(key) {
            Ok(_) => Ok(true),
            Err(StoreError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        Ok(self.list_info(prefix)?.into_iter().map(|o| o.key).collect())
    }

    fn modified(&self, key: &str) -> Result<Option<std::time::SystemTime>, StoreError> {
        Ok(self.head(key)?.last_modified().and_then(system_time))
    }

    /// One LIST request per 1000 keys: the listing carries size and time already.
    fn list_info(&self, prefix: &str) -> Result<Vec<crate::Listed>, StoreError> {
        let full_prefix = format!("{}{prefix}", self.prefix);
        let mut objects = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let (page, next) = self.call("list", prefix, || async {
                let out = self
                    .client
                    .list_objects_v2()
                    .bucket(&self.bucket)
                    .prefix(&full_prefix)
                    .set_continuation_token(token.clone())
                    .send()
                    .await
                    .map_err(|e| self.classify("list", prefix, e))?;
                let page: Vec<crate::Listed> = out
                    .contents()
                    .iter()
                    .filter_map(|o| {
                        let key = o.key()?.strip_prefix(&self.prefix)?;
                        // Foreign or hidden names are not objects of ours (as with LocalStore).
                        validate_key(key).ok()?;
                        Some(crate::Listed {
                            key: key.to_string(),
                            size: o.size().and_then(|n| u64::try_from(n).ok()).unwrap_or(0),
                            modified: o.last_modified().and_then(system_time),
                        })
                    })
                    .collect();
                let next = if out.is_truncated() == Some(true) {
                    out.next_continuation_token().map(str::to_string)
                } else {
                    None
                };
                Ok((page, next))
            })?;
            objects.extend(page);
            match next {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(objects)
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        let full = self.full_key(key)?;
        self.call("delete", key, || async {
            self.client
                .delete_object()
                .bucket(&self.bucket)
                .key(&full)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| self.classify("delete", key, e))
        })
    }

    fn describe(&self) -> String {
        self.url.clone()
    }
}

/// One line saying what S3 (or the SDK) answered: `HTTP 404 NoSuchBucket: message` for
/// an answer, the innermost cause for a request that never got one. The SDK's own
/// rendering (`full`) is the whole chain with Debug structures, screens long.
fn short_message<E: ProvideErrorMetadata + std::error::Error + 'static>(
    err: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    status: Option<u16>,
    full: &str,
) -> String {
    let http = status.map(|s| format!("HTTP {s}"));
    match (err.code(), err.message(), http) {
        (Some(code), Some(m), h) => format!("{} {code}: {m}", h.unwrap_or_default())
            .trim()
            .to_string(),
        (Some(code), None, h) => format!("{} {code}", h.unwrap_or_default())
            .trim()
            .to_string(),
        (None, _, Some(h)) => h,
        (None, _, None) if full.contains("credentials") => "no AWS credentials found".to_string(),
        (None, _, None) => {
            let mut cause = err.to_string();
            let mut source = std::error::Error::source(err);
            while let Some(s) = source {
                cause = s.to_string();
                source = s.source();
            }
            let line = cause.lines().next().unwrap_or_default();
            line.chars().take(200).collect()
        }
    }
}

/// An S3 timestamp as a [`std::time::SystemTime`] (`None` before 1970, which S3 never says).
fn system_time(t: &aws_sdk_s3::primitives::DateTime) -> Option<std::time::SystemTime> {
    let secs = u64::try_from(t.secs()).ok()?;
    Some(
        std::time::UNIX_EPOCH
            + std::time::Duration::from_secs(secs)
            + std::time::Duration::from_nanos(u64::from(t.subsec_nanos())),
    )
}
