//! Per-root back-off: a deploy root whose directories change constantly (a user creating
//! entries in a loop, a release directory with a million entries being filled) must not make
//! the agent rescan five times a second. More than [`LIMIT`] inotify events of one root within
//! [`WINDOW`] make it *churning*: its events then ask for a scan at most every [`GAP`] (other
//! roots' events, process exits and the interval are not slowed). It starts when the burst
//! does and ends when a window passes below the limit; each start is said once in the log.
//! This module only counts and decides; it reads nothing.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// More than this many events of one root within [`WINDOW`] is churn. A deploy (a release
/// created, `current` renamed, old releases removed) makes a few dozen at most.
pub(super) const LIMIT: usize = 50;

pub(super) const WINDOW: Duration = Duration::from_secs(10);

/// A churning root's events ask for a scan at most this often.
pub(super) const GAP: Duration = Duration::from_secs(5);

/// What to do about one root's events.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Scan as soon as the usual gap allows.
    Now,
    /// Churning: scan at this moment (at most every [`GAP`]); `started` on the first verdict
    /// of an episode, to say so once.
    At { at: Instant, started: bool },
}

#[derive(Default)]
struct Root {
    /// When its events came, with how many, within the last [`WINDOW`].
    recent: VecDeque<(Instant, usize)>,
    churning: bool,
    /// The scan its churn last asked for.
    next: Option<Instant>,
}

#[derive(Default)]
pub(super) struct Churn(HashMap<PathBuf, Root>);

impl Churn {
    /// `n` events of `root` at `now`: when to scan for them.
    pub(super) fn note(&mut self, root: &Path, n: usize, now: Instant) -> Verdict {
        let r = self.0.entry(root.to_path_buf()).or_default();
        r.recent.push_back((now, n));
        while r
            .recent
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > WINDOW)
        {
            r.recent.pop_front();
        }
        let count: usize = r.recent.iter().map(|(_, n)| n).sum();
        if count <= LIMIT {
            r.churning = false;
            r.next = None;
            return Verdict::Now;
        }
        let started = !r.churning;
        r.churning = true;
        let at = match r.next {
            Some(at) if at > now => at,
            _ => now + GAP,
        };
        r.next = Some(at);
        Verdict::At { at, started }
    }

    /// How many events `root` had within the last window (for the log line).
    pub(super) fn recent(&self, root: &Path) -> usize {
        self.0
            .get(root)
            .map_or(0, |r| r.recent.iter().map(|(_, n)| n).sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deploy_is_scanned_at_once_and_constant_churn_every_gap_said_once() {
        let mut churn = Churn::default();
        let root = Path::new("/srv/shop");
        let t0 = Instant::now();
        // A deploy: a burst of a dozen events.
        assert_eq!(churn.note(root, 12, t0), Verdict::Now);
        // Then 20 events every 200 ms: past the limit within the window.
        let mut verdicts = Vec::new();
        for i in 1..=40u32 {
            verdicts.push(churn.note(root, 20, t0 + Duration::from_millis(200) * i));
        }
        let starts = verdicts
            .iter()
            .filter(|v| matches!(v, Verdict::At { started: true, .. }))
            .count();
        assert_eq!(starts, 1, "{verdicts:?}");
        let mut ats: Vec<Instant> = verdicts
            .iter()
            .filter_map(|v| match v {
                Verdict::At { at, .. } => Some(*at),
                Verdict::Now => None,
            })
            .collect();
        ats.dedup();
        // 8 s of churn: scans at most every 5 s (two moments), not 40.
        assert!(ats.len() <= 2, "{ats:?}");
        for w in ats.windows(2) {
            assert!(w[1].duration_since(w[0]) >= GAP);
        }
        // Quiet for a window: the next event is scanned at once again.
        let later = t0 + Duration::from_secs(30);
        assert_eq!(churn.note(root, 1, later), Verdict::Now);
        // Another root was never slowed.
        assert_eq!(churn.note(Path::new("/srv/blog"), 3, later), Verdict::Now);
    }
}
