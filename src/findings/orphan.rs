//! `orphan` (warning): an app process that lost its supervisor. Three shapes:
//! - its parent is PID 1 while it carries `SUPERVISOR_ENABLED` but no supervisord is above it
//!   (supervisord died or was restarted without ending it);
//! - its parent is PID 1 and it sits in a login session scope or in no unit at all (started by
//!   hand and left, e.g. with nohup or a double fork);
//! - it is an older left-over directly under PID 1 in a service's cgroup, next to that
//!   service's newer main process (a restart with `KillMode=process`). The newest such process
//!   is the unit's main process, and a main process is never an orphan.
//!
//! A process started by hand (the second shape) is an orphan only when it is left over on a
//! release that is no longer current: a hand-started worker on the current release is how
//! some hosts run, not a finding (`ps` still shows it as unsupervised). Each app's
//! `orphans:` setting makes the finding a warning (default), information, or nothing.
//!
//! PID 1 is the only reaper considered: a subreaper (`systemd --user`, a container init) is a
//! supervisor in its own right. PM2's God daemon, which always runs under PID 1, is never an
//! orphan.

use super::{owner_label, proc_of, Detail, Finding, Input, Lost, Remedy, Severity};
use crate::attribution::ReleaseState;
use crate::config::Orphans;
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
        let severity = match input.settings.apps.get(pl.app).map(|a| a.orphans) {
            Some(Orphans::Off) => continue,
            Some(Orphans::Info) => Severity::Info,
            Some(Orphans::Warning) | None => Severity::Warning,
        };
        let (Some(p), Some(o)) = (input.snap.get(pl.pid), input.owners.get(pl.pid)) else {
            continue;
        };
        // PM2's God daemon always runs under PID 1: a supervisor, not a lost worker.
        if p.ppid != 1 || p.is_zombie() || crate::owner::is_pm2_god(p) {
            continue;
        }
        let Some(lost) = lost(o, p.pid, &main_of) else {
            continue;
        };
        // Started by hand and still on the current release: nothing was lost.
        let by_hand = matches!(lost, Lost::ByHand { .. } | Lost::NoService);
        if by_hand && pl.state == ReleaseState::Current {
            continue;
        }
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
                severity,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::owner::Owners;
    use crate::settings::{AppSettings, Settings};
    use crate::testkit::{current, link, process, root, snapshot};

    /// Pid 10 on the current release 67 and pid 11 on the old release 66, both started by
    /// hand and left under PID 1 with no unit; the app's `orphans:` is `level`.
    fn orphans(level: Orphans) -> Vec<Finding> {
        let roots = [crate::layout::DeployRoot {
            switch_time: Some(1_000.0),
            ..root(
                "app",
                b"/srv/app",
                current(b"67"),
                &[(b"66", 66), (b"67", 67)],
            )
        }];
        let snap = snapshot(
            vec![
                process(10, 1, link(b"/srv/app/releases/67", 67, 2), 2_000.0, &["w"]),
                process(11, 1, link(b"/srv/app/releases/66", 66, 2), 500.0, &["w"]),
                process(
                    12,
                    1,
                    link(b"/srv/app/releases/66", 66, 2),
                    500.0,
                    &["PM2 v5.3.0: God Daemon (/root/.pm2)"],
                ),
            ],
            3_000.0,
        );
        let attr = crate::attribution::attribute(&roots, &snap);
        let by_hand = || Owner {
            supervisor: Supervisor::None,
            unit: None,
            supervisor_enabled: false,
        };
        let owners = Owners::from_list(vec![(10, by_hand()), (11, by_hand()), (12, by_hand())]);
        let settings = Settings {
            apps: vec![AppSettings {
                orphans: level,
                ..AppSettings::with_grace(std::time::Duration::ZERO)
            }],
        };
        let mut out = Vec::new();
        check(
            &Input {
                roots: &roots,
                snap: &snap,
                attr: &attr,
                owners: &owners,
                settings: &settings,
                history: None,
            },
            &mut out,
        );
        out
    }

    #[test]
    fn a_hand_started_process_is_an_orphan_only_when_left_on_an_old_release() {
        // and PM2's God daemon (pid 12), under PID 1 on the old release, never is.
        let f = orphans(Orphans::Warning);
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(f[0].pids, [11]);
        assert_eq!(f[0].severity, Severity::Warning);
    }

    #[test]
    fn the_app_setting_turns_orphans_down_or_off() {
        let f = orphans(Orphans::Info);
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(f[0].severity, Severity::Info);
        assert!(orphans(Orphans::Off).is_empty());
    }
}
