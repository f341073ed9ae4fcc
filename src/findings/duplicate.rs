//! `duplicate` (critical): more instances of a role than its `max` allows (`singleton` means
//! one), counted across every release of the app. The incident: a second `celery beat` kept
//! running from the old build after a deploy, and every scheduled task ran twice for days.
//!
//! An instance is a process matching the role whose parent does not match it too, so a master
//! and the workers it forks with the same command line count once.

use super::{Allowed, Detail, Finding, Input, Instance, Remedy, Severity};
use crate::attribution::{How, Placement, ReleaseState};
use crate::owner::remedy::{Arg, AsWhom, Command};
use crate::owner::Supervisor;

/// Whether a placed process can be an instance of a role: its cwd or exe is placed in the
/// app (a command line alone is text anyone can write), and it runs as the releases' owner,
/// root, or the uid the app's `user:` names. Another user's look-alike never counts.
fn has_identity(input: &Input, pl: &Placement) -> bool {
    let held = pl
        .evidence
        .iter()
        .any(|e| matches!(e.how, How::Cwd | How::Exe));
    let Some(uid) = input.snap.get(pl.pid).map(|p| p.uid) else {
        return false;
    };
    let owner = input.roots.get(pl.app).and_then(|r| r.owner_uid);
    let user = input.settings.apps.get(pl.app).and_then(|a| a.user);
    held && (uid == 0 || Some(uid) == owner || Some(uid) == user)
}

/// Instances of `role` in `app`, oldest first: processes with identity ([`has_identity`]).
pub(super) fn instances<'a>(input: &'a Input, app: usize, role: &str) -> Vec<&'a Placement> {
    let matches = |pl: &Placement| {
        pl.app == app && pl.role.as_deref() == Some(role) && has_identity(input, pl)
    };
    let mut out: Vec<&Placement> = input
        .attr
        .placements
        .iter()
        .filter(|pl| matches(pl))
        .filter(|pl| {
            let parent = input.snap.get(pl.pid).map(|p| p.ppid);
            !parent
                .and_then(|pp| input.attr.get(pp))
                .is_some_and(&matches)
        })
        .collect();
    out.sort_by_key(|pl| {
        (
            input.snap.get(pl.pid).map(|p| p.start_ticks).unwrap_or(0),
            pl.pid,
        )
    });
    out
}

/// What stops one extra instance: its supervisor, when it has its own name for it (as the
/// supervisor's user), else `kill`.
fn stop(input: &Input, pl: &Placement) -> Command {
    match input.owners.get(pl.pid).map(|o| &o.supervisor) {
        Some(Supervisor::Supervisord {
            pid,
            program: Some(p),
        }) => Command {
            as_whom: input
                .snap
                .get(*pid)
                .map_or(AsWhom::Root, |s| AsWhom::uid(s.uid)),
            ..Command::new("supervisorctl", [Arg::Word("stop"), Arg::name(p)])
        },
        Some(Supervisor::Systemd { unit }) if unit.user.is_none() => {
            Command::new("systemctl", [Arg::Word("stop"), Arg::name(&unit.unit)])
        }
        _ => Command::kill(pl.pid),
    }
}

pub(super) fn check(input: &Input, out: &mut Vec<Finding>) {
    for (app, settings) in input.settings.apps.iter().enumerate() {
        for role in &settings.roles {
            let Some(max) = role.max else { continue };
            let found = instances(input, app, &role.name);
            if found.len() <= max {
                continue;
            }
            let clock = &input.snap.clock;
            let instances = found
                .iter()
                .map(|pl| Instance {
                    pid: pl.pid,
                    release: pl.release.clone(),
                    state: pl.state,
                    started: input
                        .snap
                        .get(pl.pid)
                        .map(|p| clock.start_time(p.start_ticks)),
                })
                .collect();
            let allowed = if role.singleton {
                Allowed::Singleton
            } else {
                Allowed::AtMost(max)
            };
            // Keep the newest instances on the current release; stop the rest.
            let mut keep: Vec<i32> = found
                .iter()
                .rev()
                .filter(|pl| pl.state == ReleaseState::Current)
                .take(max)
                .map(|pl| pl.pid)
                .collect();
            if keep.is_empty() {
                keep = found.iter().rev().take(max).map(|pl| pl.pid).collect();
            }
            let stops = found
                .iter()
                .filter(|pl| !keep.contains(&pl.pid))
                .map(|pl| stop(input, pl))
                .collect();
            out.push(Finding {
                pids: found.iter().map(|pl| pl.pid).collect(),
                role: Some(role.name.clone()),
                evidence: found
                    .iter()
                    .filter_map(|pl| pl.evidence.first().cloned())
                    .collect(),
                ..Finding::new(
                    Severity::Critical,
                    app,
                    Detail::Duplicate { allowed, instances },
                    Remedy::StopExtras {
                        keep: keep.into(),
                        stops,
                    },
                )
            });
        }
    }
}
