//! Before acting, each action is confirmed with the supervisor's own view, never with data a
//! process could forge (its title, its environment): `systemctl show -p MainPID -p
//! ControlGroup UNIT`, `supervisorctl pid` and `supervisorctl pid NAME`, `sv status DIR`. The
//! pid the supervisor names must be the one the scan saw (and still be that process, by start
//! time). Asked as the user the action runs as, so a user's own supervisor answers only for
//! that user's processes. Anything that does not confirm is skipped, with what was answered.

use super::exec;
use super::plan::{Action, Via};
use crate::escape::escape_bytes;
use crate::owner::remedy::{Arg, Command};
use crate::snapshot::ProcSource;
use std::time::{Duration, Instant};

/// How long a supervisor has to answer one question.
const ASK: Duration = Duration::from_secs(10);

/// `Ok(what the supervisor said)` when it names the scan's process; else why not.
pub fn confirm(action: &Action, source: &mut dyn ProcSource) -> Result<String, String> {
    let (Some(command), Some(via)) = (action.command(), &action.via) else {
        return Err("nothing to confirm".into());
    };
    let top = action.top;
    match source.stat(top.pid) {
        Ok(s) if s.start_ticks == top.start_ticks => {}
        _ => {
            return Err(format!(
                "pid {} has ended or been replaced since the scan",
                top.pid
            ))
        }
    }
    match via {
        Via::Systemd { unit } => systemd(command, unit, top.pid),
        Via::Supervisord {
            supervisord,
            program,
        } => supervisord_pids(command, *supervisord, program, top.pid),
        Via::Runit { .. } => runit(command, top.pid),
        Via::Pm2 { .. } => super::pm2::confirm(ask_with, command, via, top.pid),
        Via::Signal { pids, .. } => Ok(still_signalled(pids, source)),
    }
}

/// Which of an unsupervised tree's pids are still the processes the scan saw (the first, the
/// master, was checked): those changed are said, and [`super::exec::signal`] skips them.
fn still_signalled(pids: &[super::plan::Covered], source: &mut dyn ProcSource) -> String {
    let (same, changed): (Vec<_>, Vec<_>) = pids.iter().partition(|p| {
        source
            .stat(p.pid)
            .is_ok_and(|s| s.start_ticks == p.start_ticks)
    });
    let list = |ps: &[&super::plan::Covered]| {
        let pids: Vec<String> = ps.iter().map(|p| p.pid.to_string()).collect();
        let noun = crate::report::words::plural(pids.len(), "pid", "pids");
        format!("{noun} {}", pids.join(", "))
    };
    let mut said = if same.len() == 1 {
        format!(
            "{} is still the process the scan saw, and nothing supervises it",
            list(&same)
        )
    } else {
        format!(
            "{} are still the processes the scan saw, and nothing supervises them",
            list(&same)
        )
    };
    if !changed.is_empty() {
        said.push_str(&format!(
            "; {} ended or changed since the scan: not signalled",
            list(&changed)
        ));
    }
    said
}

/// `command` with its verb and what follows replaced: `systemctl --user -M u@ restart X` asks
/// `systemctl --user -M u@ show ...` of the same manager, as the same user.
fn asking(command: &Command, verb: &'static str, rest: Vec<Arg>) -> Command {
    let mut args: Vec<Arg> = command
        .args
        .iter()
        .take_while(|a| **a != Arg::Word("restart"))
        .cloned()
        .collect();
    args.push(Arg::Word(verb));
    args.extend(rest);
    Command {
        as_whom: command.as_whom,
        program: command.program,
        args: args.into(),
    }
}

/// Run a question; its output when it succeeded.
fn ask(c: &Command) -> Result<String, String> {
    ask_with(c, &[])
}

/// [`ask`] with `env` added to the clean environment.
fn ask_with(c: &Command, env: &[(&str, &std::ffi::OsStr)]) -> Result<String, String> {
    let line = crate::report::words::command_line(c);
    let ran = exec::run(c, Instant::now() + ASK, env).map_err(|e| format!("{line}: {e}"))?;
    let out = String::from_utf8_lossy(&ran.output).into_owned();
    if !ran.ok() {
        return Err(format!(
            "{line}: {} ({})",
            ran.how(),
            escape_bytes(out.trim().as_bytes())
        ));
    }
    Ok(out)
}

fn systemd(command: &Command, unit: &str, top: i32) -> Result<String, String> {
    let show = asking(
        command,
        "show",
        vec![
            Arg::Word("-p"),
            Arg::Word("MainPID"),
            Arg::Word("-p"),
            Arg::Word("ControlGroup"),
            Arg::name(unit),
        ],
    );
    let out = ask(&show)?;
    let value = |key: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .unwrap_or("")
            .to_string()
    };
    let main: i32 = value("MainPID").parse().unwrap_or(0);
    let cgroup = value("ControlGroup");
    let said = format!(
        "MainPID={main} ControlGroup={}",
        escape_bytes(cgroup.as_bytes())
    );
    if cgroup.is_empty() {
        return Err(format!("systemd says the unit is not running ({said})"));
    }
    if own_cgroup(std::process::id() as i32).is_some_and(|own| within(&own, &cgroup)) {
        return Err(format!(
            "relwatch itself runs in the unit ({said}): restarting it would end this run"
        ));
    }
    let top_in_unit = own_cgroup(top).is_some_and(|cg| within(&cg, &cgroup));
    if main == top || top_in_unit {
        Ok(said)
    } else {
        Err(format!(
            "systemd does not name pid {top} as the unit's ({said})"
        ))
    }
}

/// The cgroup v2 path of `pid` (the `0::` line), from the kernel.
fn own_cgroup(pid: i32) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(str::to_string)
}

fn within(path: &str, dir: &str) -> bool {
    path == dir
        || path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// supervisord must be the one the scan saw (`supervisorctl pid`), and the program's pid the
/// top of the tree (`supervisorctl pid NAME`).
fn supervisord_pids(
    command: &Command,
    supervisord: i32,
    program: &str,
    top: i32,
) -> Result<String, String> {
    let daemon = ask(&asking(command, "pid", vec![]))?;
    if daemon.trim() != supervisord.to_string() {
        return Err(format!(
            "supervisorctl reaches supervisord pid {}, not pid {supervisord} which the scan saw",
            escape_bytes(daemon.trim().as_bytes())
        ));
    }
    let child = ask(&asking(command, "pid", vec![Arg::name(program)]))?;
    if child.trim() != top.to_string() {
        return Err(format!(
            "supervisorctl pid {} answers {}, not pid {top}",
            crate::escape::shell_word(program),
            escape_bytes(child.trim().as_bytes())
        ));
    }
    Ok(format!("supervisord pid {supervisord} names pid {top}"))
}

/// `sv status DIR`: `run: DIR: (pid N) 12s; ...` must name the top.
fn runit(command: &Command, top: i32) -> Result<String, String> {
    let dir = command.args.last().cloned().unwrap_or(Arg::Word(""));
    let out = ask(&asking(command, "status", vec![dir]))?;
    let pid = out
        .split("(pid ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .and_then(|n| n.parse::<i32>().ok());
    let said = escape_bytes(out.trim().as_bytes());
    if pid == Some(top) {
        Ok(said)
    } else {
        Err(format!("sv does not name pid {top}: {said}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_question_asks_the_same_manager_as_the_same_user() {
        use crate::owner::remedy::AsWhom;
        let restart = Command {
            as_whom: AsWhom::Uid(1000),
            ..Command::new(
                "systemctl",
                [
                    Arg::Word("--user"),
                    Arg::Word("restart"),
                    Arg::name("a.service"),
                ],
            )
        };
        let show = asking(&restart, "show", vec![Arg::name("a.service")]);
        assert_eq!(show.as_whom, AsWhom::Uid(1000));
        assert_eq!(
            crate::report::words::command_line(&show),
            "systemctl --user show a.service"
        );
    }

    #[test]
    fn a_cgroup_within_a_unit() {
        assert!(within("/system.slice/a.service", "/system.slice/a.service"));
        assert!(within(
            "/system.slice/a.service/x",
            "/system.slice/a.service"
        ));
        assert!(!within(
            "/system.slice/a.service2",
            "/system.slice/a.service"
        ));
    }
}
