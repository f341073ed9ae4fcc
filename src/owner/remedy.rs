//! Remedies: the exact command that fixes a finding, picked by owner and by the process's role
//! in its tree. Always a restart (never a reload: a reload keeps a master's cwd), and once per
//! master, never once per worker.
//!
//! Names in a remedy come from process data (program names, unit names), so each is
//! shell-quoted and then escaped: an operator may paste the line into a root shell.

use super::{is_pm2_god, is_supervisord, Owners, Supervisor};
use crate::attribution::{Attribution, ReleaseState};
use crate::escape::escape;
use crate::layout::DeployRoot;
use crate::snapshot::Snapshot;

/// Quote for a POSIX shell, only when needed.
pub fn shell_quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"@%+=:,./_-".contains(&b));
    if safe {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Shell-quoted, and escaped only when the name holds a character that must not reach a
/// terminal: the usual remedy stays exactly pasteable (`'app@x\x2dy.service'` keeps its one
/// backslash), a hostile one becomes visibly escaped and will not run as given.
fn q(s: &str) -> String {
    let quoted = shell_quote(s);
    if quoted.chars().any(crate::escape::is_dangerous) {
        escape(quoted)
    } else {
        quoted
    }
}

/// What restarts `pid` itself, by its owner.
fn restart(snap: &Snapshot, owners: &Owners, root: &DeployRoot, pid: i32) -> String {
    let link = escape(&root.link);
    let Some(owner) = owners.get(pid) else {
        return format!(
            "kill -TERM {pid}, then start it again from {link} (its supervisor could not be read)"
        );
    };
    match &owner.supervisor {
        Supervisor::Supervisord { program: Some(p), .. } => format!("supervisorctl restart {}", q(p)),
        Supervisor::Supervisord { program: None, .. } => {
            "supervisorctl restart <program> (its program name could not be read: see supervisorctl status)".to_string()
        }
        Supervisor::Pm2 { name, id, .. } => match name.as_ref().or(id.as_ref()) {
            Some(n) => format!("pm2 restart {}", q(&n.to_string_lossy())),
            None => "pm2 restart <app> (see pm2 list)".to_string(),
        },
        Supervisor::Runit { service, .. } => format!("sv restart {}", q(&service.to_string_lossy())),
        Supervisor::S6 { pid: spid, service } => {
            // s6-supervise runs in its service directory.
            let dir = snap
                .get(*spid)
                .and_then(|s| s.cwd.as_ref().ok())
                .map(|l| l.path().to_string_lossy().into_owned())
                .unwrap_or_else(|| format!("/run/service/{}", service.to_string_lossy()));
            format!("s6-svc -r {}", q(&dir))
        }
        Supervisor::Systemd { unit } => match unit.user {
            Some(uid) => match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
                Ok(Some(u)) => format!(
                    "systemctl --user -M {}@ restart {}",
                    q(&u.name),
                    q(&unit.unit)
                ),
                _ => format!("as uid {uid}: systemctl --user restart {}", q(&unit.unit)),
            },
            None => format!("systemctl restart {}", q(&unit.unit)),
        },
        Supervisor::Session { unit } => format!(
            "kill -TERM {pid}, then start it again from {link}: nothing will restart it (it was started by hand in {})",
            escape(unit.display())
        ),
        Supervisor::None => format!(
            "kill -TERM {pid}, then start it again from {link}: nothing will restart it (no supervisor found)"
        ),
    }
}

/// The remedy for a tree whose top is `pid` (a master when `master`).
pub fn for_tree(
    snap: &Snapshot,
    owners: &Owners,
    attr: &Attribution,
    root: &DeployRoot,
    pid: i32,
) -> String {
    let link = escape(&root.link);
    let Some(p) = snap.get(pid) else {
        return format!("restart pid {pid}");
    };
    if is_supervisord(p) {
        return format!(
            "supervisord (pid {pid}) itself runs from this release, and every program it starts without directory= inherits it: set directory={link} in its programs, restart supervisord ({}), then supervisorctl reread && supervisorctl update",
            restart(snap, owners, root, pid)
        );
    }
    if is_pm2_god(p) {
        return format!(
            "the PM2 God daemon (pid {pid}) itself runs from this release and keeps every app's cwd: pm2 kill && pm2 resurrect, as uid {}, from {link}",
            p.uid
        );
    }
    let mut fix = restart(snap, owners, root, pid);
    // A supervisor on an old or deleted release hands its directory to what it restarts.
    if let Some(owner) = owners.get(pid) {
        if let (
            Supervisor::Supervisord { pid: spid, .. } | Supervisor::Pm2 { god: spid, .. },
            Some(sp),
        ) = (
            &owner.supervisor,
            owner.supervisor_pid().and_then(|s| attr.get(s)),
        ) {
            if matches!(sp.state, ReleaseState::Deleted | ReleaseState::Old) {
                let also = if matches!(owner.supervisor, Supervisor::Pm2 { .. }) {
                    format!("; the PM2 God daemon (pid {spid}) runs from a {} release too, so restarted apps keep it: pm2 kill && pm2 resurrect", sp.state.as_str())
                } else {
                    format!("; supervisord (pid {spid}) runs from a {} release too, and programs without directory= inherit its cwd: set directory={link}, restart supervisord, then supervisorctl reread && supervisorctl update", sp.state.as_str())
                };
                fix.push_str(&also);
            }
        }
    }
    fix
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("queue:queue_00"), "queue:queue_00");
        assert_eq!(shell_quote("shop-queue.service"), "shop-queue.service");
        assert_eq!(
            shell_quote(r"app@srv-shop\x2dnew.service"),
            r"'app@srv-shop\x2dnew.service'"
        );
        assert_eq!(shell_quote("a'; rm -rf / #"), r"'a'\''; rm -rf / #'");
        assert_eq!(shell_quote("$(reboot)"), "'$(reboot)'");
        assert_eq!(shell_quote(""), "''");
    }
}
