//! Playback timing as iterator adapters over `(time, event)` pairs.
//!
//! `play` and `export` open a session as one event stream and add what they need, so a
//! timing bug is fixed once.

use std::time::Duration;

use schemas::Event;

/// An event with the time at which it should be shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timed {
    /// When to show it, from the start of playback.
    pub at: Duration,
    /// The event.
    pub event: Event,
}

/// The events at their recorded times.
pub fn timed(events: impl IntoIterator<Item = Event>) -> impl Iterator<Item = Timed> {
    events.into_iter().map(|event| Timed {
        at: Duration::from_nanos(event.elapsed_ns),
        event,
    })
}

/// Shortens every pause longer than `limit` to `limit`.
pub fn cap_idle(
    events: impl Iterator<Item = Timed>,
    limit: Duration,
) -> impl Iterator<Item = Timed> {
    let mut last_in = Duration::ZERO;
    let mut last_out = Duration::ZERO;
    events.map(move |mut t| {
        let gap = t.at.saturating_sub(last_in).min(limit);
        last_in = last_in.max(t.at);
        last_out += gap;
        t.at = last_out;
        t
    })
}

/// Plays `factor` times faster.
pub fn speed(events: impl Iterator<Item = Timed>, factor: f64) -> impl Iterator<Item = Timed> {
    events.map(move |mut t| {
        // A tiny factor can take a time past what a Duration holds: such an event never
        // comes, which is what the auditor asked for.
        t.at = Duration::try_from_secs_f64(t.at.as_secs_f64() / factor).unwrap_or(Duration::MAX);
        t
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use schemas::EventKind;

    fn ev(ms: u64) -> Event {
        Event {
            seq: 0,
            elapsed_ns: ms * 1_000_000,
            kind: EventKind::Output,
            data: vec![],
        }
    }

    fn times(it: impl Iterator<Item = Timed>) -> Vec<u64> {
        it.map(|t| t.at.as_millis() as u64).collect()
    }

    #[test]
    fn idle_pauses_are_capped_and_order_kept() {
        let events = vec![ev(0), ev(100), ev(5100), ev(5200)];
        assert_eq!(
            times(cap_idle(timed(events), Duration::from_secs(1))),
            vec![0, 100, 1100, 1200]
        );
    }

    #[test]
    fn speed_divides_times() {
        assert_eq!(
            times(speed(timed(vec![ev(0), ev(1000)]), 4.0)),
            vec![0, 250]
        );
    }
}
