//! `duplicate` (critical): more instances of a role than its `max` allows (`singleton` means
//! one), counted across every release of the app. The incident: a second `celery beat` kept
//! running from the old build after a deploy, and every scheduled task ran twice for days.
//!
//! An instance is a process matching the role whose parent does not match it too, so a master
//! and the workers it forks with the same command line count once.

use super::{Finding, Input, Kind, Severity};
use crate::attribution::{Placement, ReleaseState};
use crate::escape::escape;
use crate::owner::Supervisor;
use crate::report::words::format_time;

/// Instances of `role` in `app`, oldest first.
pub(super) fn instances<'a>(input: &'a Input, app: usize, role: &str) -> Vec<&'a Placement> {
    let matches = |pl: &Placement| pl.app == app && pl.role.as_deref() == Some(role);
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

fn stop(input: &Input, pl: &Placement) -> String {
    match input.owners.get(pl.pid).map(|o| &o.supervisor) {
        Some(Supervisor::Supervisord {
            program: Some(p), ..
        }) => format!(
            "supervisorctl stop {}",
            crate::owner::remedy::shell_quote(p)
        ),
        Some(Supervisor::Systemd { unit }) if unit.user.is_none() => {
            format!(
                "systemctl stop {}",
                crate::owner::remedy::shell_quote(&unit.unit)
            )
        }
        _ => format!("kill -TERM {}", pl.pid),
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
            let described: Vec<String> = found
                .iter()
                .map(|pl| {
                    let started = input
                        .snap
                        .get(pl.pid)
                        .map(|p| format_time(clock.start_time(p.start_ticks)))
                        .unwrap_or_default();
                    let release = pl
                        .release
                        .as_ref()
                        .map(escape)
                        .unwrap_or_else(|| "?".into());
                    format!(
                        "pid {} on release {release} ({}) started {started}",
                        pl.pid,
                        pl.state.as_str()
                    )
                })
                .collect();
            let what = if role.singleton {
                "singleton".to_string()
            } else {
                format!("at most {max} allowed")
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
            let stops: Vec<String> = found
                .iter()
                .filter(|pl| !keep.contains(&pl.pid))
                .map(|pl| stop(input, pl))
                .collect();
            out.push(Finding {
                kind: Kind::Duplicate,
                severity: Severity::Critical,
                app,
                release: None,
                pids: found.iter().map(|pl| pl.pid).collect(),
                master: None,
                owner: None,
                role: Some(role.name.clone()),
                message: format!(
                    "{} instances of role {} ({what}), oldest first: {}",
                    found.len(),
                    escape(&role.name),
                    described.join("; ")
                ),
                remedy: format!(
                    "stop the extra instance{} and keep pid {}: {}",
                    if stops.len() == 1 { "" } else { "s" },
                    keep.iter()
                        .map(|p| p.to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                    stops.join(" && ")
                ),
                evidence: found
                    .iter()
                    .filter_map(|pl| pl.evidence.first().cloned())
                    .collect(),
            });
        }
    }
}
