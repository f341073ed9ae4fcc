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

use super::{owner_label, pname, Finding, Input, Kind, Severity};
use crate::escape::escape;
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
        let reason = if o.supervisor_enabled
            && !matches!(o.supervisor, Supervisor::Supervisord { .. })
        {
            "it carries SUPERVISOR_ENABLED but no supervisord is above it: its supervisord died or was restarted without it".to_string()
        } else if let Some(u) = o.unit.as_ref().filter(|u| u.is_session()) {
            format!(
                "its parent is PID 1 and it sits in login session {}: started by hand and left behind",
                escape(u.display())
            )
        } else if o
            .unit
            .as_ref()
            .is_none_or(|u| !u.is_service() && !u.unit.ends_with(".scope"))
        {
            "its parent is PID 1 and it runs in no service: started by hand and left behind"
                .to_string()
        } else if let Some((_, main)) = o
            .unit
            .as_ref()
            .filter(|u| u.is_service())
            .and_then(|u| main_of.get(u.unit.as_str()))
            .filter(|(_, main)| *main != p.pid)
        {
            format!(
                "an older left-over in {} next to its newer main process {main}",
                escape(o.unit.as_ref().map(|u| u.display()).unwrap_or_default())
            )
        } else {
            continue;
        };
        let stop = match o.unit.as_ref().filter(|u| u.is_service()) {
            Some(u) => format!(
                "kill -TERM {} (it is not the main process of {}; restarting the unit with KillMode=control-group also ends it)",
                p.pid,
                escape(u.display())
            ),
            None => format!(
                "kill -TERM {}; if it should run, start it again under a supervisor from {}",
                p.pid,
                escape(&input.roots[pl.app].link)
            ),
        };
        out.push(Finding {
            kind: Kind::Orphan,
            severity: Severity::Warning,
            app: pl.app,
            release: pl.release.clone(),
            pids: vec![p.pid],
            master: None,
            owner: owner_label(input, p.pid),
            role: pl.role.clone(),
            message: format!(
                "pid {} ({}) lost its supervisor: {reason}",
                p.pid,
                pname(input.snap, p.pid)
            ),
            remedy: stop,
            evidence: pl.evidence.to_vec(),
        });
    }
}
