//! The finding kinds and severities, and one row per kind with everything the rest of relwatch
//! does differently by kind: its name, the severities it takes, how the summary line and the
//! Nagios perfdata count and name it, which Prometheus series are always written, whether it
//! ends a `wait`, how `watch` tells one finding from the next. Renderers and commands read the
//! row and never list kinds themselves: a new kind is a rule file, a row here, and the facts
//! its rule hands over (a [`Detail`]) with their words in `report::words`.
//!
//! Names, labels and series are a contract (JSON, metrics, alert rules, docs): each is spelled
//! once, here. The summary and the perfdata list kinds in orders older than this table, so each
//! row carries its place in them.

use super::Detail;

/// What a finding is about. Declaration order is report order within one severity: a broken
/// link first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    BrokenCurrent,
    DeletedRelease,
    Duplicate,
    Missing,
    OldRelease,
    Zombie,
    Orphan,
    RestartLoop,
    Unreadable,
}

/// Ordered by how much it decides the exit code: a critical finding outranks an unknown one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Info,
    Warning,
    Unknown,
    Critical,
}

/// How the summary line and the perfdata count the findings of a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// One per finding (a link, a role, a loop).
    Finding,
    /// The processes a finding names (a finding without pids counts once).
    Process,
    /// The processes a finding names but its first (a zombie finding names the parent first).
    Child,
    /// The processes the findings of the kind name, each once however many findings name it
    /// (a process of root that could not be inspected could run every app's code, and each
    /// app's finding names it); findings that name none count once in all.
    Distinct,
}

/// A kind's Nagios performance datum: `label=value;warn;crit;0;`.
#[derive(Debug)]
pub struct Perfdata {
    pub label: &'static str,
    pub warn: &'static str,
    pub crit: &'static str,
    /// Its place among the perfdata.
    pub place: u8,
}

/// Everything about one kind.
#[derive(Debug)]
pub struct About {
    pub kind: Kind,
    /// The name in every output and in the alert rules.
    pub name: &'static str,
    /// The severities its rule gives. With `always_in_series`, each is written to Prometheus
    /// for every app, 0 when absent, so an alert on it clears instead of going stale.
    pub severities: &'static [Severity],
    pub always_in_series: bool,
    /// The summary's nouns for one and for many, what it counts, and its place in the line.
    pub one: &'static str,
    pub many: &'static str,
    pub count: Count,
    pub summary_place: u8,
    pub perfdata: Option<Perfdata>,
    /// A critical finding of this kind ends `relwatch wait` at once: no restart of workers
    /// fixes it.
    pub ends_wait: bool,
    /// `watch` tells its findings apart by their first pid too. Off for a role's findings
    /// (`duplicate`, `missing`), whose pids change while the finding stays the same.
    pub keyed_by_pid: bool,
}

impl Kind {
    /// Every kind's row, in report order.
    pub fn table() -> &'static [About] {
        &KINDS
    }

    pub fn as_str(self) -> &'static str {
        self.about().name
    }

    pub fn about(self) -> &'static About {
        &KINDS[self as usize]
    }

    /// The kinds that have a `place` (the summary's, the perfdata's), in its order.
    pub fn ordered_by(place: impl Fn(&About) -> Option<u8>) -> Vec<&'static About> {
        let mut rows: Vec<&About> = KINDS.iter().filter(|a| place(a).is_some()).collect();
        rows.sort_by_key(|a| place(a));
        rows
    }
}

const fn perf(
    label: &'static str,
    warn: &'static str,
    crit: &'static str,
    place: u8,
) -> Option<Perfdata> {
    Some(Perfdata {
        label,
        warn,
        crit,
        place,
    })
}

use Severity::{Critical, Info, Unknown, Warning};

/// One row per kind, in declaration order ([`Kind::about`] indexes it by the discriminant).
static KINDS: [About; 9] = [
    About {
        kind: Kind::BrokenCurrent,
        name: "broken-current",
        severities: &[Critical],
        always_in_series: true,
        one: "broken current link",
        many: "broken current links",
        count: Count::Finding,
        summary_place: 0,
        perfdata: perf("broken", "", "0", 2),
        ends_wait: true,
        keyed_by_pid: true,
    },
    About {
        kind: Kind::DeletedRelease,
        name: "deleted-release",
        severities: &[Critical],
        always_in_series: true,
        one: "process on a deleted release",
        many: "processes on deleted releases",
        count: Count::Process,
        summary_place: 3,
        // Critical as soon as there is one: the range 0..0.
        perfdata: perf("deleted", "", "0", 0),
        ends_wait: true,
        keyed_by_pid: true,
    },
    About {
        kind: Kind::Duplicate,
        name: "duplicate",
        severities: &[Critical],
        always_in_series: true,
        one: "role with more instances than allowed (duplicate)",
        many: "roles with more instances than allowed (duplicate)",
        count: Count::Finding,
        summary_place: 1,
        perfdata: perf("duplicate", "", "0", 3),
        ends_wait: true,
        keyed_by_pid: false,
    },
    About {
        kind: Kind::Missing,
        name: "missing",
        severities: &[Critical],
        always_in_series: true,
        one: "role with too few instances on the current release (missing)",
        many: "roles with too few instances on the current release (missing)",
        count: Count::Finding,
        summary_place: 2,
        perfdata: perf("missing", "", "0", 4),
        ends_wait: false,
        keyed_by_pid: false,
    },
    About {
        kind: Kind::OldRelease,
        name: "old-release",
        // Information during the grace period after a switch, a warning after it.
        severities: &[Warning, Info],
        always_in_series: true,
        one: "process on an old release",
        many: "processes on old releases",
        count: Count::Process,
        summary_place: 4,
        // A warning only after the grace period, so no fixed threshold.
        perfdata: perf("old", "", "", 1),
        ends_wait: false,
        keyed_by_pid: true,
    },
    About {
        kind: Kind::Zombie,
        name: "zombie",
        severities: &[Warning],
        always_in_series: true,
        one: "zombie",
        many: "zombies",
        count: Count::Child,
        summary_place: 5,
        perfdata: perf("zombies", "0", "", 5),
        ends_wait: false,
        keyed_by_pid: true,
    },
    About {
        kind: Kind::Orphan,
        name: "orphan",
        // information where the app's `orphans: info` says so
        severities: &[Warning, Info],
        always_in_series: true,
        one: "orphan",
        many: "orphans",
        count: Count::Process,
        summary_place: 6,
        perfdata: perf("orphans", "0", "", 6),
        ends_wait: false,
        keyed_by_pid: true,
    },
    // The agent alone finds loops: a `check` never has the series.
    About {
        kind: Kind::RestartLoop,
        name: "restart-loop",
        // critical: workers forked by a master on a deleted or old release die at once
        severities: &[Warning, Critical],
        always_in_series: false,
        one: "restart loop",
        many: "restart loops",
        count: Count::Finding,
        summary_place: 7,
        perfdata: None,
        ends_wait: false,
        // One per role (or app): its pids are whichever live now, which change every restart.
        keyed_by_pid: false,
    },
    About {
        kind: Kind::Unreadable,
        name: "unreadable",
        severities: &[Unknown],
        always_in_series: true,
        one: "process that could run an app's code but could not be inspected",
        many: "processes that could run an app's code but could not be inspected",
        count: Count::Distinct,
        summary_place: 8,
        // UNKNOWN has no threshold field.
        perfdata: perf("unreadable", "", "", 7),
        ends_wait: false,
        keyed_by_pid: true,
    },
];

impl About {
    /// This kind's count among `findings`, as the summary and the perfdata give it.
    pub fn tally(&self, findings: &[super::Finding]) -> usize {
        let mine = findings.iter().filter(|f| f.kind == self.kind);
        if self.count != Count::Distinct {
            return mine.map(|f| self.count.of(&f.pids)).sum();
        }
        let mut pids: Vec<i32> = Vec::new();
        let mut without = false;
        for f in mine {
            pids.extend_from_slice(&f.pids);
            without |= f.pids.is_empty();
        }
        pids.sort_unstable();
        pids.dedup();
        pids.len() + usize::from(without)
    }
}

impl Detail {
    /// The kind of finding these facts make.
    pub fn kind(&self) -> Kind {
        match self {
            Detail::BrokenCurrent => Kind::BrokenCurrent,
            Detail::DeletedRelease { .. } => Kind::DeletedRelease,
            Detail::OldRelease { .. } => Kind::OldRelease,
            Detail::Duplicate { .. } => Kind::Duplicate,
            Detail::Missing { .. } => Kind::Missing,
            Detail::Zombie { .. } => Kind::Zombie,
            Detail::Orphan { .. } => Kind::Orphan,
            Detail::RestartLoop { .. } => Kind::RestartLoop,
            Detail::Unreadable { .. } => Kind::Unreadable,
        }
    }
}

impl Count {
    /// What one finding adds to its kind's count.
    pub fn of(self, pids: &[i32]) -> usize {
        match self {
            Count::Finding => 1,
            Count::Process | Count::Distinct => pids.len().max(1),
            Count::Child => pids.len().saturating_sub(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_labels_and_places_are_distinct() {
        let distinct = |v: Vec<String>| {
            let n = v.len();
            let mut s = v;
            s.sort();
            s.dedup();
            s.len() == n
        };
        let all = || Kind::table().iter();
        assert!(distinct(all().map(|a| a.name.to_string()).collect()));
        assert!(distinct(
            all().map(|a| a.summary_place.to_string()).collect()
        ));
        let perf = || all().filter_map(|a| a.perfdata.as_ref());
        assert!(distinct(perf().map(|p| p.label.to_string()).collect()));
        assert!(distinct(perf().map(|p| p.place.to_string()).collect()));
        // Each row sits at its kind's discriminant, so `about` finds it.
        for (i, row) in KINDS.iter().enumerate() {
            assert_eq!(row.kind as usize, i, "{}", row.name);
        }
    }
}
