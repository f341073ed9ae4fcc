//! `orphan` (warning): an app process that lost its supervisor. Three shapes:
//! - its parent is PID 1 while it carries `SUPERVISOR_ENABLED` but no supervisord is above it
//!   (supervisord died or was restarted without ending it);
//! - its parent is PID 1 and it sits in a login session scope or in no unit at all (started by
//!   hand and left, e.g. with nohup or a double fork);
//! - it is an older left-over directly under PID 1 in a service's cgroup, next to that
//!   service's newer main process (a restart with `KillMode=process`). The newest such process
//!   is the unit's main process, and a main process is never an orphan.
//!
//! PID 1 is the only reaper considered: a subreaper (`systemd --user`, a container init) is a
//! supervisor in its own right.

use super::{owner_label, proc_of, Detail, Finding, Input, Lost, Remedy, Severity};
use crate::owner::{Owner, Supervisor};
use std::collections::HashMap;

pub(super) fn check(input: &Input, out: &mut Vec<Finding>) {
    // Newest process directly under PID 1 per service unit: the unit's main process.
    let mut main_of: HashMap<&str, (u64, i32)> = HashMap::new();
    for pl in &input.attr.placements {
        let (Some(p), Some(o)) = (input.snap.get(pl.pid), input.owners.get(pl.pid)) else {
            continue;
        };
        if p.ppid != 1 {
            continue;
        }
        if let Some(u) = o.unit.as_ref().filter(|u| u.is_service()) {
            let e = main_of
                .entry(u.unit.as_str())
                .or_insert((p.start_ticks, p.pid));
            if (p.start_ticks, p.pid) > *e {
                *e = (p.start_ticks, p.pid);
            }
        }
    }
    for pl in &input.attr.placements {
        let (Some(p), Some(o)) = (input.snap.get(pl.pid), input.owners.get(pl.pid)) else {
            continue;
        };
        if p.ppid != 1 || p.is_zombie() {
            continue;
        }
        let Some(lost) = lost(o, p.pid, &main_of) else {
            continue;
        };
        let service = o.unit.as_ref().filter(|u| u.is_service());
        let remedy = Remedy::EndOrphan {
            pid: p.pid,
            service: service.map(|u| u.display().into()),
        };
        out.push(Finding {
            release: pl.release.clone(),
            pids: vec![p.pid],
            owner: owner_label(input, p.pid),
            role: pl.role.clone(),
            evidence: pl.evidence.to_vec(),
            ..Finding::new(
                Severity::Warning,
                pl.app,
                Detail::Orphan {
                    process: proc_of(input.snap, p.pid),
                    lost,
                },
                remedy,
            )
        });
    }
}

/// How a process directly under PID 1 lost its supervisor, if it did. `main_of` holds each
/// service's main process.
fn lost(o: &Owner, pid: i32, main_of: &HashMap<&str, (u64, i32)>) -> Option<Lost> {
    if o.supervisor_enabled && !matches!(o.supervisor, Supervisor::Supervisord { .. }) {
        return Some(Lost::SupervisordGone);
    }
    let Some(unit) = &o.unit else {
        return Some(Lost::NoService);
    };
    if unit.is_session() {
        Some(Lost::ByHand {
            session: unit.display().into(),
        })
    } else if !unit.is_service() && !unit.unit.ends_with(".scope") {
        Some(Lost::NoService)
    } else {
        let &(_, main) = main_of
            .get(unit.unit.as_str())
            .filter(|_| unit.is_service())?;
        (main != pid).then(|| Lost::LeftOver {
            service: unit.display().into(),
            main,
        })
    }
}
