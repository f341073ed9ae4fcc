//! The `ps` view: per app, each release, then each owner, then the process tree (master before
//! its workers), with state, age and what placed each process there. What an operator reads
//! over SSH before deciding what to restart.

use super::{releases_of, words, Report};
use crate::attribution::ReleaseState;
use crate::escape::escape;
use std::collections::{BTreeMap, HashSet};
use std::fmt::Write;

pub fn render(r: &Report) -> String {
    let mut out = String::new();
    for (app, root) in r.roots.iter().enumerate() {
        if app > 0 {
            out.push('\n');
        }
        let _ = writeln!(out, "{}", words::app_header(root, None, false));
        let mut rows = releases_of(r, app);
        // current first, then old, then deleted
        rows.sort_by_key(|row| match row.state {
            ReleaseState::Current => 0,
            ReleaseState::Old | ReleaseState::Unknown => 1,
            ReleaseState::Deleted => 2,
        });
        for row in rows {
            if row.pids.is_empty() && row.state != ReleaseState::Current {
                continue;
            }
            let label = match row.state {
                ReleaseState::Current => " (current)",
                ReleaseState::Deleted => " (deleted)",
                ReleaseState::Old => " (old)",
                ReleaseState::Unknown => "",
            };
            let _ = writeln!(out, "  release {}{label}", escape(row.name));
            if row.pids.is_empty() {
                let _ = writeln!(out, "    (no processes)");
            }
            let mut by_owner: BTreeMap<String, Vec<i32>> = BTreeMap::new();
            for pid in &row.pids {
                let label = r
                    .owners
                    .get(*pid)
                    .map(|o| o.label())
                    .unwrap_or_else(|| "owner unknown".into());
                by_owner.entry(label).or_default().push(*pid);
            }
            for (owner, mut pids) in by_owner {
                pids.sort_unstable();
                let _ = writeln!(out, "    {owner}");
                let set: HashSet<i32> = pids.iter().copied().collect();
                for &pid in &pids {
                    let parent_here = r.snap.get(pid).is_some_and(|p| set.contains(&p.ppid));
                    if !parent_here {
                        branch(&mut out, r, pid, &set, 3, &mut HashSet::new());
                    }
                }
            }
        }
    }
    out
}

fn branch(
    out: &mut String,
    r: &Report,
    pid: i32,
    set: &HashSet<i32>,
    depth: usize,
    seen: &mut HashSet<i32>,
) {
    if !seen.insert(pid) || depth > 40 {
        return;
    }
    let Some(p) = r.snap.get(pid) else { return };
    let age = words::human_duration(r.snap.clock.now - r.snap.clock.start_time(p.start_ticks));
    let why = r
        .attr
        .get(pid)
        .and_then(|pl| pl.evidence.first())
        .map(|e| super::words::evidence(e))
        .unwrap_or_default();
    let zombies = r.snap.zombie_children(pid).len();
    let zombies = if zombies > 0 {
        format!("  [{}]", words::count(zombies, "zombie", "zombies"))
    } else {
        String::new()
    };
    let role = r
        .attr
        .get(pid)
        .and_then(|pl| pl.role.as_ref())
        .map(|role| format!("[{}] ", escape(role)))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "{:indent$}{:<7} {} {:>7} ago  {:<16} {role}{why}{zombies}",
        "",
        pid,
        p.state as char,
        age,
        escape(p.name()),
        indent = depth * 2
    );
    let kids: Vec<i32> = r
        .snap
        .children(pid)
        .map(|c| c.pid)
        .filter(|c| set.contains(c))
        .collect();
    for k in kids {
        branch(out, r, k, set, depth + 1, seen);
    }
}
