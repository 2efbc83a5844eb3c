//! Compliance reports over recorded sessions: who did what, when, where and from where,
//! what rules flagged, whether the records are intact, who reviewed and who watched them.
//!
//! - [`model`]: the [`Inputs`] a report is built from (gathered from the store by
//!   `replay report`) and the [`Report`] itself, whose JSON form is
//!   `schemas/report.schema.json`; [`build`] turns one into the other.
//! - [`rules`]: named regular expressions over commands and their output; the built-in
//!   set is `rules/default.toml`.
//! - [`baseline`]: sessions unlike the user's earlier ones.
//! - [`html`] and [`csv_out`]: the other two forms of a report.
#![warn(missing_docs)]

pub mod baseline;
pub mod csv_out;
pub mod html;
pub mod model;
pub mod rules;

pub use baseline::HistoryEntry;
pub use model::{
    AccessInput, CommandInput, Filters, Inputs, MissingSession, ObjectsRead, Report, ReviewInput,
    SessionInput, Verdict, build,
};
pub use rules::{Rule, RuleSet, RulesError, Severity};
