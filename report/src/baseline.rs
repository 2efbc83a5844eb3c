//! Baseline deviations: sessions unlike the user's earlier ones in the store: a first
//! session on a host, a new source address, a start outside the user's usual hours.
//! Heuristics like the rules: leads for a reviewer.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

/// Earlier sessions a user needs before their hours count as usual.
pub const MIN_SESSIONS_FOR_HOURS: usize = 10;

/// One session of the whole store, for baselines: who logged in where, from where, when.
#[derive(Clone, Debug)]
pub struct HistoryEntry {
    /// Session id.
    pub id: String,
    /// User.
    pub user: String,
    /// Host.
    pub host: String,
    /// Client address.
    pub source: Option<String>,
    /// Start, UTC ns.
    pub start_ns: i64,
}

/// What is unusual about a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeviationKind {
    /// No earlier session of the user on this host.
    FirstSessionOnHost,
    /// The user has earlier sessions, none from this address.
    NewSourceAddress,
    /// None of the user's (at least [`MIN_SESSIONS_FOR_HOURS`]) earlier sessions started
    /// within an hour of this one's time of day (UTC).
    UnusualHours,
}

impl DeviationKind {
    /// The kebab-case name every form of the report uses.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviationKind::FirstSessionOnHost => "first-session-on-host",
            DeviationKind::NewSourceAddress => "new-source-address",
            DeviationKind::UnusualHours => "unusual-hours",
        }
    }
}

/// One deviation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Deviation {
    /// The session.
    pub session_id: String,
    /// What kind.
    pub kind: DeviationKind,
    /// In words.
    pub detail: String,
}

fn hour(start_ns: i64) -> usize {
    // rem_euclid keeps it within 0..24 for any time, before 1970 too.
    usize::try_from(start_ns.div_euclid(3_600_000_000_000).rem_euclid(24)).unwrap_or(0)
}

/// The deviations of `sessions` (those in the report) against `history` (every session of
/// the store, `sessions` among them), in the order of `sessions`. "Earlier" is by start
/// time, then id.
pub fn deviations(
    sessions: impl IntoIterator<Item = HistoryEntry>,
    history: &[HistoryEntry],
) -> Vec<Deviation> {
    let wanted: Vec<HistoryEntry> = sessions.into_iter().collect();
    let wanted_ids: HashSet<&str> = wanted.iter().map(|s| s.id.as_str()).collect();
    let mut by_user: HashMap<&str, Vec<&HistoryEntry>> = HashMap::new();
    for h in history.iter().chain(wanted.iter()) {
        by_user.entry(h.user.as_str()).or_default().push(h);
    }
    let mut found: HashMap<&str, Vec<Deviation>> = HashMap::new();
    for (user, mut list) in by_user {
        list.sort_by(|a, b| (a.start_ns, &a.id).cmp(&(b.start_ns, &b.id)));
        list.dedup_by(|a, b| a.id == b.id);
        let mut hosts = HashSet::new();
        let mut sources = HashSet::new();
        let mut hours = [0usize; 24];
        for (earlier, s) in list.iter().enumerate() {
            if wanted_ids.contains(s.id.as_str()) {
                let out = found.entry(s.id.as_str()).or_default();
                if !hosts.contains(s.host.as_str()) {
                    out.push(Deviation {
                        session_id: s.id.clone(),
                        kind: DeviationKind::FirstSessionOnHost,
                        detail: format!(
                            "no earlier session of {user} on {} in the store ({earlier} elsewhere)",
                            s.host
                        ),
                    });
                }
                if let Some(addr) = &s.source
                    && earlier > 0
                    && !sources.contains(addr.as_str())
                {
                    out.push(Deviation {
                        session_id: s.id.clone(),
                        kind: DeviationKind::NewSourceAddress,
                        detail: format!(
                            "{user} never came from {addr} before ({earlier} earlier sessions)"
                        ),
                    });
                }
                let h = hour(s.start_ns);
                let near = hours[(h + 23) % 24] + hours[h] + hours[(h + 1) % 24];
                if earlier >= MIN_SESSIONS_FOR_HOURS && near == 0 {
                    let usual: Vec<String> = (0..24)
                        .filter(|&i| hours[i] > 0)
                        .map(|i| format!("{i:02}"))
                        .collect();
                    out.push(Deviation {
                        session_id: s.id.clone(),
                        kind: DeviationKind::UnusualHours,
                        detail: format!(
                            "started at {h:02}h UTC; {user}'s {earlier} earlier sessions started in the hours {} UTC",
                            usual.join(", ")
                        ),
                    });
                }
            }
            hosts.insert(s.host.as_str());
            if let Some(a) = &s.source {
                sources.insert(a.as_str());
            }
            hours[hour(s.start_ns)] += 1;
        }
    }
    wanted
        .iter()
        .flat_map(|s| found.remove(s.id.as_str()).unwrap_or_default())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000_000_000;

    fn s(id: &str, user: &str, host: &str, source: Option<&str>, start_ns: i64) -> HistoryEntry {
        HistoryEntry {
            id: id.into(),
            user: user.into(),
            host: host.into(),
            source: source.map(Into::into),
            start_ns,
        }
    }

    fn kinds(d: &[Deviation], id: &str) -> Vec<DeviationKind> {
        d.iter()
            .filter(|d| d.session_id == id)
            .map(|d| d.kind)
            .collect()
    }

    #[test]
    fn first_host_new_source_and_odd_hours_are_found_against_earlier_sessions_only() {
        // alice: twelve sessions on web1 from 10.0.0.1, at 09h..11h over twelve days.
        let mut history: Vec<HistoryEntry> = (0..12)
            .map(|d| {
                s(
                    &format!("a{d:02}"),
                    "alice",
                    "web1",
                    Some("10.0.0.1"),
                    d * 24 * H + (9 + d % 3) * H,
                )
            })
            .collect();
        history.push(s(
            "new-host",
            "alice",
            "db1",
            Some("10.0.0.1"),
            20 * 24 * H + 10 * H,
        ));
        history.push(s(
            "new-addr",
            "alice",
            "web1",
            Some("192.0.2.7"),
            21 * 24 * H + 10 * H,
        ));
        history.push(s(
            "night",
            "alice",
            "web1",
            Some("10.0.0.1"),
            22 * 24 * H + 3 * H,
        ));
        history.push(s(
            "usual",
            "alice",
            "web1",
            Some("10.0.0.1"),
            23 * 24 * H + 12 * H,
        ));
        history.push(s("b1", "bob", "web1", None, 23 * 24 * H + 3 * H));
        let wanted: Vec<HistoryEntry> = history[12..].to_vec();
        let d = deviations(wanted, &history);
        assert_eq!(kinds(&d, "new-host"), [DeviationKind::FirstSessionOnHost]);
        assert_eq!(kinds(&d, "new-addr"), [DeviationKind::NewSourceAddress]);
        assert_eq!(kinds(&d, "night"), [DeviationKind::UnusualHours]);
        assert!(d.iter().any(|x| x.detail
            == "started at 03h UTC; alice's 14 earlier sessions started in the hours 09, 10, 11 UTC"));
        // 12h is within an hour of 11h.
        assert_eq!(kinds(&d, "usual"), []);
        // bob's first session anywhere: first on the host, no source, too few for hours.
        assert_eq!(kinds(&d, "b1"), [DeviationKind::FirstSessionOnHost]);
    }

    #[test]
    fn kind_names_are_the_json_names() {
        for k in [
            DeviationKind::FirstSessionOnHost,
            DeviationKind::NewSourceAddress,
            DeviationKind::UnusualHours,
        ] {
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
    }

    #[test]
    fn the_first_sessions_of_a_store_are_first_on_their_host_and_nothing_else() {
        let history = vec![
            s("x", "u", "h", Some("1.2.3.4"), 0),
            s("y", "u", "h", Some("1.2.3.4"), H),
        ];
        let d = deviations(history.clone(), &history);
        assert_eq!(kinds(&d, "x"), [DeviationKind::FirstSessionOnHost]);
        assert_eq!(kinds(&d, "y"), []);
    }
}
