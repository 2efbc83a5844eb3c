//! `auditty-ingest`: turns spool entries and Kafka records into durable Parquet
//! objects, and says which input positions are now safe to forget.
//!
//! The flow of one batch: a source ([`spool_source`], [`kafka_source`]) reads entries from its position →
//! [`decode`] turns each chunk into `events`/`sessions` rows or a dead letter →
//! [`output`] writes the objects (names derive only from source, partition and first
//! offset, so a re-run after a crash rewrites the same objects) → only then the source
//! commits its new position.
//!
//! Callers: `main.rs` and the end-to-end tests.

pub mod cli;
pub mod compact;
pub mod decode;
pub mod failpoint;
pub mod kafka_source;
pub mod lag;
pub mod notify;
pub mod output;
pub mod run;
pub mod spool_source;
pub mod telemetry;
