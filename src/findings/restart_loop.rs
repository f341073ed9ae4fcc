//! `restart-loop` (warning, agent only): a role's (or, without roles, an app's) processes keep
//! being replaced. The incident: workers exited 0 on a fatal error and were restarted in a
//! storm every night, and nothing noticed.
//!
//! The agent keeps a [`History`] across scans. A *young replacement* is a process that was
//! alive at one scan, is gone at the next, and had started within the window: a worker that
//! lived a long time and was replaced by a deploy is not young, and a deploy replaces its
//! workers in one go. So a loop is declared when a group had more than `limit` young
//! replacements within the window, seen in at least [`MIN_SCANS`] different scans. Two deploys
//! in a row do not trip it; a worker that dies every few seconds does, once a few scans saw it.
//! Detection depends on scans: a loop faster than the scan interval is seen once per scan.

use super::{Detail, Finding, Remedy, Severity};
use crate::attribution::Attribution;
use crate::owner::Owners;
use crate::snapshot::Snapshot;
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

/// A loop must show in this many different scans.
pub const MIN_SCANS: usize = 3;

/// Defaults: more than 5 young replacements within 30 minutes.
pub const DEFAULT_LIMIT: usize = 5;
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(30 * 60);

type Group = (usize, Option<String>);

#[derive(Debug, Clone)]
pub struct History {
    window: f64,
    limit: usize,
    scan_no: u64,
    /// Identities (pid, start ticks) seen at the last scan, with their group and start time.
    prev: HashMap<(i32, u64), (Group, f64)>,
    /// Young replacements: (when noticed, scan number, group).
    events: VecDeque<(f64, u64, Group)>,
}

impl History {
    pub fn new(limit: usize, window: Duration) -> Self {
        History {
            window: window.as_secs_f64(),
            limit,
            scan_no: 0,
            prev: HashMap::new(),
            events: VecDeque::new(),
        }
    }

    /// Record one scan.
    pub fn observe(&mut self, snap: &Snapshot, attr: &Attribution) {
        let now = snap.clock.now;
        self.scan_no += 1;
        let mut current = HashMap::with_capacity(attr.placements.len());
        for pl in &attr.placements {
            let Some(p) = snap.get(pl.pid) else { continue };
            let start = snap.clock.start_time(p.start_ticks);
            current.insert((p.pid, p.start_ticks), ((pl.app, pl.role.clone()), start));
        }
        for (id, (group, start)) in &self.prev {
            if !current.contains_key(id) && now - start <= self.window {
                self.events.push_back((now, self.scan_no, group.clone()));
            }
        }
        while self
            .events
            .front()
            .is_some_and(|(t, _, _)| now - t > self.window)
        {
            self.events.pop_front();
        }
        self.prev = current;
    }

    /// Findings for the groups in a loop now.
    pub fn findings(
        &self,
        roots: &[crate::layout::DeployRoot],
        attr: &Attribution,
        owners: &Owners,
    ) -> Vec<Finding> {
        let mut by_group: HashMap<&Group, (usize, Vec<u64>)> = HashMap::new();
        for (_, scan, group) in &self.events {
            let e = by_group.entry(group).or_default();
            e.0 += 1;
            if !e.1.contains(scan) {
                e.1.push(*scan);
            }
        }
        let mut out = Vec::new();
        for ((app, role), (count, scans)) in by_group {
            if count <= self.limit || scans.len() < MIN_SCANS || *app >= roots.len() {
                continue;
            }
            let live: Vec<i32> = attr
                .placements
                .iter()
                .filter(|pl| pl.app == *app && pl.role == *role)
                .map(|pl| pl.pid)
                .collect();
            let detail = Detail::RestartLoop {
                ended: count,
                window_secs: self.window,
                scans: scans.len(),
            };
            out.push(Finding {
                owner: live.iter().find_map(|p| owners.label(*p)),
                pids: live,
                role: role.clone(),
                ..Finding::new(Severity::Warning, *app, detail, Remedy::ReadLogs)
            });
        }
        out.sort_by(|a, b| a.app.cmp(&b.app).then(a.role.cmp(&b.role)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attribution::{Placement, ReleaseState};
    use crate::snapshot::LinkError;
    use crate::testkit::{process, root, snapshot};

    /// A scan at `at` of these (pid, start time) processes, each placed in app 0.
    fn scan(at: f64, procs: &[(i32, f64)]) -> (Snapshot, Attribution) {
        let processes = procs
            .iter()
            .map(|&(pid, started)| process(pid, 1, Err(LinkError::Absent), started, &["w"]))
            .collect();
        let placements = procs
            .iter()
            .map(|&(pid, _)| Placement {
                pid,
                app: 0,
                release: None,
                state: ReleaseState::Current,
                evidence: Default::default(),
                role: None,
            })
            .collect();
        let attr = Attribution {
            placements,
            ..Default::default()
        };
        (snapshot(processes, at), attr)
    }

    fn roots() -> Vec<crate::layout::DeployRoot> {
        vec![root(
            "app",
            b"/srv/app",
            crate::layout::Current::Missing,
            &[],
        )]
    }

    fn loops(h: &History, attr: &Attribution) -> usize {
        h.findings(&roots(), attr, &Owners::default()).len()
    }

    #[test]
    fn deploys_are_not_loops() {
        let mut h = History::new(DEFAULT_LIMIT, DEFAULT_WINDOW);
        // 12 long-lived workers, then three deploys 5 minutes apart, scanned every minute.
        let mut t = 10_000.0;
        let mut gen: Vec<(i32, f64)> = (1..=12).map(|p| (p, 100.0)).collect();
        let mut last = scan(t, &gen).1;
        for deploy in 0..3 {
            for _ in 0..5 {
                t += 60.0;
                let (s, a) = scan(t, &gen);
                h.observe(&s, &a);
                last = a;
            }
            gen = (1..=12).map(|p| (100 * (deploy + 1) + p, t)).collect();
        }
        assert_eq!(loops(&h, &last), 0);
    }

    #[test]
    fn a_worker_replaced_at_every_scan_is_a_loop() {
        let mut h = History::new(DEFAULT_LIMIT, DEFAULT_WINDOW);
        let mut t = 10_000.0;
        let mut last = Attribution::default();
        for i in 0..8 {
            t += 60.0;
            // eleven stable workers and one that is new at every scan
            let mut procs: Vec<(i32, f64)> = (1..=11).map(|p| (p, 100.0)).collect();
            procs.push((1000 + i, t - 5.0));
            let (s, a) = scan(t, &procs);
            h.observe(&s, &a);
            last = a;
        }
        assert_eq!(loops(&h, &last), 1);
    }
}
