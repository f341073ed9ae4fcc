//! `zombie` (warning): defunct children that an app process does not reap. One finding per
//! parent. Only zombies that were still zombies when looked at again count
//! ([`crate::attribution::confirm_zombies`]): a parent that reaps at once is not reported.
//! A zombie's exit time is not in /proc, so the age given is since the oldest zombie
//! *started*: an upper bound on how long it has waited.

use super::{owner_label, proc_of, tree_fix, Detail, Finding, Input, Remedy, Severity, Tree};
use std::collections::BTreeMap;

pub(super) fn check(input: &Input, out: &mut Vec<Finding>) {
    let mut by_parent: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    for z in input.snap.processes.iter().filter(|p| p.is_zombie()) {
        if input.attr.get(z.ppid).is_some() && input.attr.lasting_zombies.contains(&z.pid) {
            by_parent.entry(z.ppid).or_default().push(z.pid);
        }
    }
    let clock = &input.snap.clock;
    for (parent, zombies) in by_parent {
        let Some(pl) = input.attr.get(parent) else {
            continue;
        };
        let oldest = zombies
            .iter()
            .filter_map(|z| input.snap.get(*z))
            .map(|z| clock.start_time(z.start_ticks))
            .fold(f64::INFINITY, f64::min);
        let tree = Tree {
            top: pl,
            members: Vec::new(),
        };
        let detail = Detail::Zombie {
            parent: proc_of(input.snap, parent),
            oldest_started_ago: clock.now - oldest,
        };
        let remedy = Remedy::ClearZombies {
            parent,
            fix: tree_fix(input, &tree),
        };
        out.push(Finding {
            release: pl.release.clone(),
            pids: std::iter::once(parent).chain(zombies).collect(),
            master: Some(parent),
            owner: owner_label(input, parent),
            role: pl.role.clone(),
            evidence: pl.evidence.to_vec(),
            ..Finding::new(Severity::Warning, pl.app, detail, remedy)
        });
    }
}
