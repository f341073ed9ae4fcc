//! Findings: one rule per finding kind (a file each), each a pure function of (layout,
//! snapshot, attribution, owners, settings). A rule decides; it never writes a sentence, a
//! shell command or an escape. It hands over facts ([`Finding`]: a [`Detail`] per kind and a
//! [`Remedy`] whose commands are data), and `report::words` phrases them for every output.
//!
//! Everything done differently by kind (names, summary words, perfdata, series, `wait`,
//! `watch`) is one row per kind in `kind.rs`: a new kind is a rule file, a row, a [`Detail`]
//! and its words. Kind names and severities are a contract (JSON, metrics, alert rules and
//! docs/JSON.md), spelled once there.

mod broken_current;
mod deleted_release;
mod duplicate;
mod finding;
mod kind;
mod missing;
mod old_release;
mod orphan;
pub mod restart_loop;
mod unreadable;
mod zombie;

pub use finding::{Allowed, Detail, Finding, Instance, Lost, Proc, Remedy, Switched};
pub use kind::{About, Count, Kind, Perfdata, Severity};

use crate::attribution::{Attribution, Evidence, Placement, ReleaseState};
use crate::layout::DeployRoot;
use crate::settings::Settings;
use crate::snapshot::Snapshot;

/// Everything a rule may look at.
pub struct Input<'a> {
    pub roots: &'a [DeployRoot],
    pub snap: &'a Snapshot,
    pub attr: &'a Attribution,
    pub owners: &'a crate::owner::Owners,
    pub settings: &'a Settings,
    /// The agent's restart history, when an agent keeps one.
    pub history: Option<&'a restart_loop::History>,
}

/// Run every rule. Findings come out worst first, then by app and pid.
pub fn evaluate(input: &Input) -> Vec<Finding> {
    let mut out = Vec::new();
    broken_current::check(input, &mut out);
    deleted_release::check(input, &mut out);
    duplicate::check(input, &mut out);
    missing::check(input, &mut out);
    old_release::check(input, &mut out);
    zombie::check(input, &mut out);
    orphan::check(input, &mut out);
    unreadable::check(input, &mut out);
    one_remedy_per_pid(&mut out);
    sort_in_place(&mut out, |a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.app.cmp(&b.app))
            .then(a.kind.cmp(&b.kind))
            .then(a.pids.first().cmp(&b.pids.first()))
    });
    // Restart loops come after the rest, as the agent has always logged them.
    if let Some(history) = input.history {
        out.extend(history.findings(input.roots, input.attr, input.owners));
    }
    out
}

/// One pid, one remedy: a left-over of a service (`KillMode=process` left it next to the unit's
/// newer main process) is ended by its pid, and restarting the unit, which another rule would
/// say for the release it runs, ends only the new main process and leaves the left-over running.
fn one_remedy_per_pid(out: &mut [Finding]) {
    let left_overs: std::collections::HashMap<i32, Remedy> = out
        .iter()
        .filter_map(|f| match (&f.detail, &f.remedy) {
            (
                Detail::Orphan {
                    lost: Lost::LeftOver { .. },
                    ..
                },
                r @ Remedy::EndOrphan { pid, .. },
            ) => Some((*pid, r.clone())),
            _ => None,
        })
        .collect();
    if left_overs.is_empty() {
        return;
    }
    for f in out.iter_mut() {
        let top = f.pids.first().and_then(|pid| left_overs.get(pid));
        if let (Some(end), Remedy::Restart(_)) = (top, &f.remedy) {
            f.remedy = end.clone();
        }
    }
}

/// A stable sort that does not copy the elements: `slice::sort_by` keeps a scratch copy of
/// half of them (a megabyte of findings at 20,000 processes, at the scan's memory peak). Sorts
/// their positions (4 bytes each) and then moves each element once, cycle by cycle.
fn sort_in_place<T>(v: &mut [T], cmp: impl Fn(&T, &T) -> std::cmp::Ordering) {
    let mut order: Vec<usize> = (0..v.len()).collect();
    order.sort_by(|&i, &j| cmp(&v[i], &v[j]));
    // Now the element for position i is at order[i]. Follow each cycle once, marking every
    // position done by pointing it at itself.
    for start in 0..v.len() {
        let mut cur = start;
        while order[cur] != cur {
            let next = order[cur];
            order[cur] = cur;
            if next == start {
                break;
            }
            v.swap(cur, next);
            cur = next;
        }
    }
}

/// The worst severity among findings.
pub fn worst(findings: &[Finding]) -> Option<Severity> {
    findings.iter().map(|f| f.severity).max()
}

/// A tree of affected processes: the top one (a master when it has children) and the rest.
pub(crate) struct Tree<'a> {
    pub top: &'a Placement,
    pub members: Vec<&'a Placement>,
}

/// Group placements in `state` into trees: a process whose parent is also affected, in the
/// same app and release, goes under its parent's tree. One finding per tree means one remedy
/// per master, not one per worker.
pub(crate) fn trees<'a>(
    attr: &'a Attribution,
    snap: &Snapshot,
    state: ReleaseState,
) -> Vec<Tree<'a>> {
    use std::collections::HashMap;
    let affected: HashMap<i32, &Placement> = attr
        .placements
        .iter()
        .filter(|p| p.state == state)
        .map(|p| (p.pid, p))
        .collect();
    let mut order: Vec<&Placement> = affected.values().copied().collect();
    order.sort_by_key(|p| p.pid);
    let mut index: HashMap<i32, usize> = HashMap::new();
    let mut trees: Vec<Tree> = Vec::new();
    for pl in order {
        let mut top = pl;
        // Bounded walk: a ppid cycle cannot happen in a consistent snapshot, but a racy one
        // must not hang us.
        for _ in 0..64 {
            let Some(parent) = snap
                .get(top.pid)
                .and_then(|p| affected.get(&p.ppid))
                .copied()
            else {
                break;
            };
            if parent.app != pl.app || parent.release != pl.release || parent.pid == top.pid {
                break;
            }
            top = parent;
        }
        let i = *index.entry(top.pid).or_insert_with(|| {
            trees.push(Tree {
                top,
                members: Vec::new(),
            });
            trees.len() - 1
        });
        if pl.pid != top.pid {
            trees[i].members.push(pl);
        }
    }
    trees
}

/// A process for a finding to name: its pid and name.
pub(crate) fn proc_of(snap: &Snapshot, pid: i32) -> Proc {
    Proc {
        pid,
        name: snap.get(pid).map(|p| p.name().into()),
    }
}

/// Live children of a pid.
pub(crate) fn live_children(snap: &Snapshot, pid: i32) -> u32 {
    u32::try_from(snap.child_count(pid)).unwrap_or(u32::MAX)
}

/// The workers of a tree's master: every process of the tree below it (grandchildren too),
/// so that the count is its pids' but one.
pub(crate) fn workers(t: &Tree) -> u32 {
    u32::try_from(t.members.len()).unwrap_or(u32::MAX)
}

/// Evidence of a tree, top first.
pub(crate) fn tree_evidence(t: &Tree) -> Vec<std::sync::Arc<Evidence>> {
    std::iter::once(t.top)
        .chain(t.members.iter().copied())
        .flat_map(|p| p.evidence.iter().cloned())
        .collect()
}

pub(crate) fn tree_pids(t: &Tree) -> Vec<i32> {
    std::iter::once(t.top.pid)
        .chain(t.members.iter().map(|p| p.pid))
        .collect()
}

/// What fixes a tree: restart its top once, through whatever owns it.
pub(crate) fn tree_fix(input: &Input, t: &Tree) -> crate::owner::remedy::TreeFix {
    crate::owner::remedy::for_tree(
        input.snap,
        input.owners,
        input.attr,
        input.roots.get(t.top.app),
        &tree_pids(t),
    )
}

/// The finding for a whole tree: its pids master first, its evidence, its owner, its role and
/// the one remedy that restarts its top.
pub(crate) fn tree_finding(input: &Input, t: &Tree, severity: Severity, detail: Detail) -> Finding {
    let pid = t.top.pid;
    Finding {
        release: t.top.release.clone(),
        pids: tree_pids(t),
        master: (!t.members.is_empty()
            || live_children(input.snap, pid) > 0
            || input.attr.reaping.contains(&pid))
        .then_some(pid),
        owner: owner_label(input, pid),
        role: t.top.role.clone(),
        evidence: tree_evidence(t),
        ..Finding::new(
            severity,
            t.top.app,
            detail,
            Remedy::Restart(tree_fix(input, t)),
        )
    }
}

/// The owner label of a process, when known.
pub(crate) fn owner_label(input: &Input, pid: i32) -> Option<std::sync::Arc<str>> {
    input.owners.label(pid)
}

#[cfg(test)]
mod tests;
