//! `restart-loop` (warning, agent only): a role's (or, without roles, an app's) processes keep
//! being replaced. The incident: workers exited 0 on a fatal error and were restarted in a
//! storm every night, and nothing noticed.
//!
//! The agent keeps a [`History`]. It learns two ways:
//!
//! - **from process events** (the agent's connector, [`crate::events`]): each scan tells it
//!   which processes are placed in an app and who their parents are (a master, a supervisord);
//!   a fork of one of those, or an exec whose cwd is a release, is *tracked*, and its exit is
//!   recorded with how long it lived and its exit status. A *young end* is a tracked process
//!   that ended within [`YOUNG`] of starting and whose parent then forked again: a restart.
//!   (A worker's `sleep` that ends before the worker does is no restart.) A group (role, else app) is in a loop while it
//!   had more than `limit` young ends within the window and the last one is recent: within
//!   [`QUIET`] or three times the mean gap between them, whichever is longer. So a storm shows
//!   after `limit + 1` deaths, seconds after it starts, and clears soon after it stops.
//! - **from scans** (fallback, when the connector is unavailable): a *young replacement* is a
//!   process that was alive at one scan, is gone at the next, and had started within the
//!   window. A loop is declared when a group had more than `limit` of them within the window,
//!   seen in at least [`MIN_SCANS`] scans, so two deploys in a row do not trip it. A loop
//!   faster than the scan interval is seen once per scan.

use super::{Detail, Finding, Remedy, Severity};
use crate::attribution::{Attribution, Placement, ReleaseState};
use crate::events::Ended;
use crate::owner::Owners;
use crate::snapshot::Snapshot;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

/// A loop must show in this many different scans (scan-based detection).
pub const MIN_SCANS: usize = 3;

/// A process that ended within this many seconds of starting ended young (event-based).
pub const YOUNG: f64 = 10.0;

/// Workers that die within this many seconds of being forked by a master on a deleted or old
/// release are the dying-workers signature: the master cannot start them any more.
pub const DYING: f64 = 1.0;

/// A loop clears after at least this long without a young end (event-based).
pub const QUIET: f64 = 10.0;

/// Past this many tracked processes the tracker starts over (a runaway fork bomb must not
/// grow the agent without bound); the next scan learns the groups again.
const MAX_TRACKED: usize = 65_536;

/// At most this many restarts are remembered (about 1 MiB): a storm of 100 a second over a
/// 30-minute window would otherwise hold 180,000. Counts saturate there, the oldest go first.
const MAX_ENDS: usize = 16_384;

/// Defaults: more than 3 young ends within 30 minutes. Four workers of one group dying within
/// seconds of starting is worth a look; a deploy ends long-lived processes, which never count.
pub const DEFAULT_LIMIT: usize = 3;
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(30 * 60);

/// (app index, role).
pub type Group = (usize, Option<String>);

/// Who a tracked process belongs to: its group and the owner that names it in a finding.
#[derive(Debug, Clone)]
pub struct Belongs {
    pub group: Group,
    pub label: Option<Arc<str>>,
}

#[derive(Debug, Clone)]
struct Tracked {
    belongs: Belongs,
    /// Its parent, whose next fork confirms its end as a restart.
    parent: i32,
    /// When it started: the fork event's kernel time, or the wall clock when first seen.
    born_ns: Option<u64>,
    born: f64,
}

#[derive(Debug, Clone)]
struct YoungEnd {
    at: f64,
    /// The process that forked it, and how long it lived.
    parent: i32,
    lived: f64,
    belongs: Belongs,
    ended: Ended,
}

#[derive(Debug, Clone)]
pub struct History {
    window: f64,
    limit: usize,
    scan_no: u64,
    /// The wall clock of the last scan or event.
    now: f64,
    /// Identities (pid, start ticks) seen at the last scan, with their group and start time.
    prev: HashMap<(i32, u64), (Group, f64)>,
    /// Young replacements: (when noticed, scan number, group).
    events: VecDeque<(f64, u64, Group)>,
    /// The process events feed is on: scans no longer infer replacements.
    live: bool,
    tracked: HashMap<i32, Tracked>,
    /// Processes whose forks are tracked: the placed ones and their parents.
    parents: HashMap<i32, Belongs>,
    /// The last label a scan learned for each group from an owner with a name (a supervisord
    /// program, a unit): a loop is named by it when its live processes were caught between
    /// fork and exec.
    named: HashMap<Group, Arc<str>>,
    /// Young ends awaiting their parent's next fork, by parent.
    pending: HashMap<i32, Vec<YoungEnd>>,
    ends: VecDeque<YoungEnd>,
}

impl History {
    pub fn new(limit: usize, window: Duration) -> Self {
        History {
            window: window.as_secs_f64(),
            limit,
            scan_no: 0,
            now: 0.0,
            prev: HashMap::new(),
            events: VecDeque::new(),
            live: false,
            tracked: HashMap::new(),
            parents: HashMap::new(),
            named: HashMap::new(),
            pending: HashMap::new(),
            ends: VecDeque::new(),
        }
    }

    /// The process events feed is on (true) or lost for good (false).
    pub fn set_live(&mut self, live: bool) {
        self.live = live;
    }

    /// Record one scan.
    pub fn observe(&mut self, snap: &Snapshot, attr: &Attribution) {
        let now = snap.clock.now;
        self.now = now;
        self.scan_no += 1;
        let mut current = HashMap::with_capacity(attr.placements.len());
        for pl in &attr.placements {
            let Some(p) = snap.get(pl.pid) else { continue };
            let start = snap.clock.start_time(p.start_ticks);
            current.insert((p.pid, p.start_ticks), ((pl.app, pl.role.clone()), start));
        }
        if !self.live {
            for (id, (group, start)) in &self.prev {
                if !current.contains_key(id) && now - start <= self.window {
                    self.events.push_back((now, self.scan_no, group.clone()));
                }
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

    /// After a scan: track every placed process, and the forks of each and of its parent (a
    /// master, a supervisord): a master whose workers die before any scan sees one included.
    pub fn learn(&mut self, snap: &Snapshot, attr: &Attribution, owners: &Owners) {
        self.parents.clear();
        for pl in &attr.placements {
            let Some(p) = snap.get(pl.pid) else { continue };
            let belongs = Belongs {
                group: (pl.app, pl.role.clone()),
                label: owners.supervisor_label(pl.pid),
            };
            if let Some(label) = belongs.label.as_ref().filter(|_| has_name(owners, pl.pid)) {
                self.named.insert(belongs.group.clone(), label.clone());
            }
            // Without events nothing would ever untrack it.
            if self.live {
                self.tracked.entry(pl.pid).or_insert_with(|| Tracked {
                    belongs: belongs.clone(),
                    parent: p.ppid,
                    born_ns: None,
                    born: snap.clock.start_time(p.start_ticks),
                });
            }
            if p.ppid > 1 {
                self.parents.insert(p.ppid, belongs.clone());
            }
            self.parents.entry(pl.pid).or_insert(belongs);
        }
    }

    /// The group a fork of `parent` would belong to, if it restarts tracked processes.
    pub fn of_parent(&self, parent: i32) -> Option<&Belongs> {
        self.parents.get(&parent)
    }

    /// Who names a group's loop: the owner a scan or an exec learned for it.
    fn label_of(&self, group: &Group) -> Option<Arc<str>> {
        self.parents
            .values()
            .find(|b| b.group == *group && b.label.is_some())
            .and_then(|b| b.label.clone())
    }

    pub fn is_tracked(&self, pid: i32) -> bool {
        self.tracked.contains_key(&pid)
    }

    /// Track `pid`, just started by `parent` (`at_ns`: its fork's kernel time, when known).
    /// True when this start confirmed young ends of `parent`'s as restarts.
    pub fn track(
        &mut self,
        pid: i32,
        parent: i32,
        belongs: Belongs,
        at_ns: Option<u64>,
        now: f64,
    ) -> bool {
        if self.tracked.len() >= MAX_TRACKED {
            self.tracked.clear();
            self.pending.clear();
        }
        self.tracked.insert(
            pid,
            Tracked {
                belongs,
                parent,
                born_ns: at_ns,
                born: now,
            },
        );
        let Some(confirmed) = self.pending.remove(&parent) else {
            return false;
        };
        // Without a supervisor's name, the master that restarts them names them.
        let master: Arc<str> = format!("master pid {parent}").into();
        self.ends.extend(confirmed.into_iter().map(|mut e| {
            e.belongs.label.get_or_insert_with(|| master.clone());
            e
        }));
        while self.ends.front().is_some_and(|e| now - e.at > self.window)
            || self.ends.len() > MAX_ENDS
        {
            self.ends.pop_front();
        }
        true
    }

    /// Forks of `parent` belong to `belongs` (learned from an exec, before any scan saw one).
    pub fn adopt_parent(&mut self, parent: i32, belongs: Belongs) {
        if parent > 1 {
            self.parents.entry(parent).or_insert(belongs);
        }
    }

    /// A process ended. A tracked one that lived less than [`YOUNG`] waits for its parent's
    /// next fork to count (see [`History::track`]); a parent's own end drops its waiting ones.
    pub fn exited(&mut self, pid: i32, status: u32, at_ns: u64, now: f64) {
        self.parents.remove(&pid);
        self.pending.remove(&pid);
        self.now = now;
        let Some(t) = self.tracked.remove(&pid) else {
            return;
        };
        let lived = match t.born_ns {
            Some(b) => at_ns.saturating_sub(b) as f64 / 1e9,
            None => now - t.born,
        };
        if lived > YOUNG {
            return;
        }
        let waiting = self.pending.entry(t.parent).or_default();
        if waiting.len() < MAX_TRACKED {
            waiting.push(YoungEnd {
                at: now,
                parent: t.parent,
                lived,
                belongs: t.belongs,
                ended: Ended::of(status),
            });
        }
    }

    /// The groups in an event-based loop at `now`, and when the earliest of them clears.
    pub fn looping(&self, now: f64) -> (Vec<&Group>, Option<f64>) {
        let mut groups = Vec::new();
        let mut clears: Option<f64> = None;
        for (group, ends) in self.by_group(now) {
            if let Some(until) = self.loop_until(&ends) {
                if until >= now {
                    groups.push(group);
                    clears = Some(clears.map_or(until, |c: f64| c.min(until)));
                }
            }
        }
        groups.sort();
        (groups, clears)
    }

    /// Young ends within the window, by group, oldest first.
    fn by_group(&self, now: f64) -> HashMap<&Group, Vec<&YoungEnd>> {
        let mut by: HashMap<&Group, Vec<&YoungEnd>> = HashMap::new();
        for e in self.ends.iter().filter(|e| now - e.at <= self.window) {
            by.entry(&e.belongs.group).or_default().push(e);
        }
        by
    }

    /// Until when these ends make a loop: None when they are not enough.
    fn loop_until(&self, ends: &[&YoungEnd]) -> Option<f64> {
        let (first, last) = (ends.first()?, ends.last()?);
        if ends.len() <= self.limit {
            return None;
        }
        let mean_gap = (last.at - first.at) / (ends.len() - 1) as f64;
        Some(last.at + QUIET.max(3.0 * mean_gap))
    }

    /// Findings for the groups in a loop now.
    pub fn findings(
        &self,
        roots: &[crate::layout::DeployRoot],
        attr: &Attribution,
        owners: &Owners,
    ) -> Vec<Finding> {
        let mut out = if self.live {
            self.event_findings(roots, attr, owners)
        } else {
            self.scan_findings(roots, attr, owners)
        };
        out.sort_by(|a, b| a.app.cmp(&b.app).then(a.role.cmp(&b.role)));
        out
    }

    fn event_findings(
        &self,
        roots: &[crate::layout::DeployRoot],
        attr: &Attribution,
        owners: &Owners,
    ) -> Vec<Finding> {
        let mut out = Vec::new();
        for ((app, role), ends) in self.by_group(self.now) {
            if *app >= roots.len() || self.loop_until(&ends).is_none_or(|u| u < self.now) {
                continue;
            }
            let mut exits: Vec<(Ended, usize)> = Vec::new();
            for e in &ends {
                match exits.iter_mut().find(|(x, _)| *x == e.ended) {
                    Some((_, n)) => *n += 1,
                    None => exits.push((e.ended, 1)),
                }
            }
            exits.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            let live = live_pids(attr, *app, role);
            let label = ends.iter().rev().find_map(|e| e.belongs.label.clone());
            let master = dying_master(attr, &ends);
            let severity = match master {
                Some(_) => Severity::Critical,
                None => Severity::Warning,
            };
            out.push(Finding {
                owner: label
                    .or_else(|| live.iter().find_map(|p| owners.supervisor_label(*p)))
                    .or_else(|| self.label_of(&(*app, role.clone()))),
                pids: live,
                role: role.clone(),
                release: master.and_then(|m| m.release.clone()),
                ..Finding::new(
                    severity,
                    *app,
                    Detail::RestartLoop {
                        ended: ends.len(),
                        window_secs: self.window,
                        scans: 0,
                        exits: exits.into_boxed_slice(),
                        master: master.map(|m| (m.pid, m.state)),
                    },
                    Remedy::ReadLogs,
                )
            });
        }
        out
    }

    fn scan_findings(
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
            let live = live_pids(attr, *app, role);
            let detail = Detail::RestartLoop {
                ended: count,
                window_secs: self.window,
                scans: scans.len(),
                exits: Box::new([]),
                master: None,
            };
            // A process caught between its fork and its exec still has its supervisor's
            // environment, so its owner has no program name: a named one is preferred.
            let group = (*app, role.clone());
            let named_live = live
                .iter()
                .filter(|p| has_name(owners, **p))
                .find_map(|p| owners.label(*p));
            out.push(Finding {
                owner: named_live
                    .or_else(|| self.named.get(&group).cloned())
                    .or_else(|| live.iter().find_map(|p| owners.label(*p)))
                    .or_else(|| self.label_of(&group)),
                pids: live,
                role: role.clone(),
                ..Finding::new(Severity::Warning, *app, detail, Remedy::ReadLogs)
            });
        }
        out
    }
}

/// The dying-workers signature: every one of these ends lived less than [`DYING`] and was
/// forked by one master that runs a deleted or old release.
fn dying_master<'a>(attr: &'a Attribution, ends: &[&YoungEnd]) -> Option<&'a Placement> {
    let parent = ends.first()?.parent;
    if ends.iter().any(|e| e.parent != parent || e.lived >= DYING) {
        return None;
    }
    attr.placements
        .iter()
        .find(|pl| pl.pid == parent)
        .filter(|pl| matches!(pl.state, ReleaseState::Deleted | ReleaseState::Old))
}

/// `pid`'s owner has a name of its own (a supervisord program, a unit), not only a pid.
fn has_name(owners: &Owners, pid: i32) -> bool {
    owners.get(pid).is_some_and(|o| o.name().is_some())
}

fn live_pids(attr: &Attribution, app: usize, role: &Option<String>) -> Vec<i32> {
    attr.placements
        .iter()
        .filter(|pl| pl.app == app && pl.role == *role)
        .map(|pl| pl.pid)
        .collect()
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
    /// Scans only (no process events): the storm's processes under one supervisord, the
    /// first caught between its fork and its exec (its environment still supervisord's, so
    /// no program name). The loop is named by the program, not by "supervisord pid".
    #[test]
    fn a_loop_seen_by_scans_is_named_by_a_process_whose_program_is_known() {
        use crate::owner::Supervisor;
        let mut h = History::new(DEFAULT_LIMIT, DEFAULT_WINDOW);
        let mut t = 10_000.0;
        let mut last = Attribution::default();
        for i in 0..8 {
            t += 60.0;
            let (s, a) = scan(t, &[(1000 + 2 * i, t - 5.0), (1001 + 2 * i, t - 5.0)]);
            h.observe(&s, &a);
            last = a;
        }
        let sd = |program: Option<&str>| {
            crate::testkit::owner(
                Supervisor::Supervisord {
                    pid: 7,
                    program: program.map(str::to_owned),
                },
                None,
            )
        };
        let owners = Owners::from_list(vec![(1014, sd(None)), (1015, sd(Some("storm")))]);
        let found = h.findings(&roots(), &last, &owners);
        let [f] = &found[..] else {
            panic!("one loop: {found:?}")
        };
        let storm = Some("supervisord program storm (supervisord pid 7)");
        assert_eq!(f.owner.as_deref(), storm);
        // Every live one caught before its exec: the name an earlier scan learned.
        let (s, a) = scan(t, &[(1014, t - 5.0), (1015, t - 5.0)]);
        h.learn(&s, &a, &owners);
        let unnamed = Owners::from_list(vec![(1014, sd(None)), (1015, sd(None))]);
        let found = h.findings(&roots(), &last, &unnamed);
        assert_eq!(found.first().and_then(|f| f.owner.as_deref()), storm);
    }

    fn worker(app: usize) -> Belongs {
        Belongs {
            group: (app, None),
            label: Some("supervisord program w".into()),
        }
    }

    /// `n` workers forked by pid 1000 at `t, t+gap, ...`, each ending `life` s later with
    /// `status` and replaced at once (the last one too).
    fn storm(h: &mut History, t: f64, n: i32, gap: f64, life: f64, status: u32) -> f64 {
        let mut now = t;
        for i in 0..n {
            now = t + f64::from(i) * gap;
            h.track(2000 + i, 1000, worker(0), Some((now * 1e9) as u64), now);
            now += life;
            h.exited(2000 + i, status, (now * 1e9) as u64, now);
        }
        h.track(3000, 1000, worker(0), Some((now * 1e9) as u64), now);
        now
    }

    #[test]
    fn events_a_storm_is_a_loop_after_limit_plus_one_ends_and_clears_when_quiet() {
        let mut h = History::new(DEFAULT_LIMIT, DEFAULT_WINDOW);
        h.set_live(true);
        let last = storm(&mut h, 1000.0, DEFAULT_LIMIT as i32, 1.0, 0.05, 0);
        assert!(
            h.looping(last).0.is_empty(),
            "{DEFAULT_LIMIT} ends are not yet a loop"
        );
        let last = storm(&mut h, last, 1, 1.0, 0.05, 0);
        let (loops, clears) = h.looping(last);
        assert_eq!(loops, [&(0, None)]);
        let clears = clears.unwrap();
        assert!((clears - (last + QUIET)).abs() < 1e-6, "{clears}");
        h.now = last;
        let f = h.findings(&roots(), &Attribution::default(), &Owners::default());
        assert_eq!(f.len(), 1);
        match &f[0].detail {
            Detail::RestartLoop {
                ended,
                exits,
                scans,
                ..
            } => {
                assert_eq!((*ended, *scans), (DEFAULT_LIMIT + 1, 0));
                assert_eq!(&exits[..], [(Ended::Code(0), DEFAULT_LIMIT + 1)]);
            }
            d => panic!("{d:?}"),
        }
        assert_eq!(f[0].owner.as_deref(), Some("supervisord program w"));
        assert!(h.looping(clears + 0.1).0.is_empty(), "quiet: cleared");
    }

    #[test]
    fn events_a_child_that_ends_before_its_parent_is_no_restart() {
        let mut h = History::new(DEFAULT_LIMIT, DEFAULT_WINDOW);
        h.set_live(true);
        // ten shells each run one `sleep` and end: the sleeps end young, but no parent
        // started another after them
        for i in 0..10 {
            let t = 1000.0 + f64::from(i);
            h.track(100 + i, 1000, worker(0), None, t);
            h.track(200 + i, 100 + i, worker(0), None, t);
            h.exited(200 + i, 0, 0, t + 0.5);
            h.exited(100 + i, 0, 0, t + 20.0);
        }
        assert!(h.looping(1015.0).0.is_empty());
    }

    #[test]
    fn events_long_lived_processes_never_count() {
        let mut h = History::new(DEFAULT_LIMIT, DEFAULT_WINDOW);
        h.set_live(true);
        // a deploy: twelve workers that lived an hour end at once
        let last = storm(&mut h, 1000.0, 12, 0.0, 3600.0, 0);
        assert!(h.looping(last).0.is_empty());
    }

    #[test]
    fn events_exit_codes_are_counted_most_common_first() {
        let mut h = History::new(DEFAULT_LIMIT, DEFAULT_WINDOW);
        h.set_live(true);
        let t = storm(&mut h, 1000.0, 5, 0.5, 0.1, 255 << 8);
        let t = storm(&mut h, t, 2, 0.5, 0.1, 9);
        h.now = t;
        let f = h.findings(&roots(), &Attribution::default(), &Owners::default());
        match &f[0].detail {
            Detail::RestartLoop { exits, .. } => {
                assert_eq!(&exits[..], [(Ended::Code(255), 5), (Ended::Signal(9), 2)]);
            }
            d => panic!("{d:?}"),
        }
    }
    #[test]
    fn events_workers_dying_at_once_under_a_master_on_a_deleted_release_are_critical() {
        let attr_with = |state| Attribution {
            placements: vec![Placement {
                pid: 1000,
                app: 0,
                release: Some(std::ffi::OsStr::new("1").into()),
                state,
                evidence: Default::default(),
                role: None,
            }],
            ..Default::default()
        };
        let mut h = History::new(DEFAULT_LIMIT, DEFAULT_WINDOW);
        h.set_live(true);
        h.now = storm(&mut h, 1000.0, 8, 0.2, 0.05, 255 << 8);
        let f = h.findings(
            &roots(),
            &attr_with(ReleaseState::Deleted),
            &Owners::default(),
        );
        assert_eq!(f[0].severity, Severity::Critical);
        assert!(matches!(
            f[0].detail,
            Detail::RestartLoop {
                master: Some((1000, ReleaseState::Deleted)),
                ..
            }
        ));
        // the same storm under a master on the current release is a plain loop
        let f = h.findings(
            &roots(),
            &attr_with(ReleaseState::Current),
            &Owners::default(),
        );
        assert_eq!(f[0].severity, Severity::Warning);
        // workers that lived 2 s are no dying-workers signature
        let mut h = History::new(DEFAULT_LIMIT, DEFAULT_WINDOW);
        h.set_live(true);
        h.now = storm(&mut h, 1000.0, 8, 3.0, 2.0, 255 << 8);
        let f = h.findings(
            &roots(),
            &attr_with(ReleaseState::Deleted),
            &Owners::default(),
        );
        assert_eq!(f[0].severity, Severity::Warning);
    }
}
