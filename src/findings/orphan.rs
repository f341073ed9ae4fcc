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
use crate::owner::Supervisor;
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
        let service = o.unit.as_ref().filter(|u| u.is_service());
        let lost =
            if o.supervisor_enabled && !matches!(o.supervisor, Supervisor::Supervisord { .. }) {
                Lost::SupervisordGone
            } else if let Some(u) = o.unit.as_ref().filter(|u| u.is_session()) {
                Lost::ByHand {
                    session: u.display().into(),
                }
            } else if o
                .unit
                .as_ref()
                .is_none_or(|u| !u.is_service() && !u.unit.ends_with(".scope"))
            {
                Lost::NoService
            } else if let Some((u, (_, main))) = service
                .and_then(|u| Some((u, main_of.get(u.unit.as_str())?)))
                .filter(|(_, (_, main))| *main != p.pid)
            {
                Lost::LeftOver {
                    service: u.display().into(),
                    main: *main,
                }
            } else {
                continue;
            };
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
