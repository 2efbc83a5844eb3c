//! Turning sessions into text: what the user saw, rendered through a terminal emulator.
//!
//! - [`render::Screen`]: feeds output and resize events to a `vt100` emulator and reads
//!   back the screen, or the whole transcript (scrollback + screen).
//!
//! Callers: `replay export --format text` and the end-to-end tests (which compare the
//! rendered screen of a replay with the screen of the live session). The catalog and
//! full-text index (tantivy) will live here too.
#![warn(missing_docs)]

pub mod render;
