//! When the agent scans: at start, every `--interval`, when each root's grace period after a
//! switch ends, and soon after anything wakes it, but never twice within [`MIN_GAP`]. That gap
//! is the debounce: a deploy renames, creates and deletes many entries in a burst, and the
//! burst becomes one scan. This module only keeps time; it reads nothing.

use crate::layout::DeployRoot;
use crate::settings::Settings;
use std::time::{Duration, Instant};

/// Never rescan more often than this, whatever wakes us: bursts of events become one scan.
pub(super) const MIN_GAP: Duration = Duration::from_millis(200);

/// Two grace ends closer than this are one scan.
const SAME_MOMENT: Duration = Duration::from_millis(50);

pub(super) struct Schedule {
    interval: Duration,
    next_full: Instant,
    /// Scans asked for at a moment: the end of a grace period after a switch.
    due: Vec<Instant>,
    last_scan: Option<Instant>,
    /// Something woke us: scan as soon as [`MIN_GAP`] allows.
    pending: bool,
    /// When the restart loops clear (see [`Schedule::loops_clear`]).
    loops_clear: Option<Instant>,
}

impl Schedule {
    /// A schedule whose first scan is now.
    pub(super) fn new(interval: Duration) -> Self {
        Schedule {
            interval,
            next_full: Instant::now(),
            due: Vec::new(),
            last_scan: None,
            pending: true,
            loops_clear: None,
        }
    }

    /// Whether to scan at `now`. When it says yes, the scan counts as done: the next full
    /// rescan is an interval later.
    pub(super) fn scan_now(&mut self, now: Instant) -> bool {
        if now >= self.next_full
            || self.due.iter().any(|d| *d <= now)
            || self.loops_clear.is_some_and(|d| d <= now)
        {
            self.pending = true;
        }
        if !self.pending
            || self
                .last_scan
                .is_some_and(|t| now.duration_since(t) < MIN_GAP)
        {
            return false;
        }
        self.pending = false;
        self.due.retain(|d| *d > now);
        self.loops_clear = self.loops_clear.filter(|d| *d > now);
        self.last_scan = Some(now);
        self.next_full = now + self.interval;
        true
    }

    /// Scan at `at`, when the restart loops would clear if no process ends young before then
    /// (replaces the last such moment), or never.
    pub(super) fn loops_clear(&mut self, at: Option<Instant>) {
        self.loops_clear = at;
    }

    /// Scan at `at` (a churning root's next turn); moments already asked for are kept once.
    pub(super) fn at(&mut self, at: Instant) {
        if !self.due.contains(&at) {
            self.due.push(at);
        }
    }

    /// Scan at `at` at the latest (after a failed scan).
    pub(super) fn retry_at(&mut self, at: Instant) {
        self.next_full = self.next_full.min(at);
    }

    /// Something changed: scan as soon as the gap allows.
    pub(super) fn wake(&mut self) {
        self.pending = true;
    }

    /// After a switch, look again when the grace period ends. `clock_now` is the scan's own
    /// wall clock (seconds, as switch times are), `now` the moment the scan was started.
    pub(super) fn after_grace(
        &mut self,
        roots: &[DeployRoot],
        settings: &Settings,
        clock_now: f64,
        now: Instant,
    ) {
        for (i, r) in roots.iter().enumerate() {
            let Some(switch) = r.switch_time else {
                continue;
            };
            let ends = switch + settings.grace(i).as_secs_f64() - clock_now;
            if ends > 0.0 {
                let at = now + Duration::from_secs_f64(ends) + MIN_GAP;
                let close = |d: &Instant| {
                    d.saturating_duration_since(at)
                        .max(at.saturating_duration_since(*d))
                        < SAME_MOMENT
                };
                if !self.due.iter().any(close) {
                    self.due.push(at);
                }
            }
        }
    }

    /// How long to sleep unless woken: until the next scan due, or the gap when one is pending.
    pub(super) fn sleep(&self) -> Duration {
        if self.pending {
            return MIN_GAP;
        }
        let until = self
            .due
            .iter()
            .copied()
            .chain(self.loops_clear)
            .chain(std::iter::once(self.next_full))
            .min()
            .unwrap_or(self.next_full);
        until.saturating_duration_since(Instant::now())
    }
}
