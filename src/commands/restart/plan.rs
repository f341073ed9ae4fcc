//! The plan: one action per owner, built from the findings' remedies (their commands are data:
//! [`crate::owner::remedy::Command`]), never once per worker. A remedy of one command whose
//! program is its owner's own tool (`systemctl` for a unit, `supervisorctl` for a supervisord
//! program, `sv` for a runit service, `kill` for an unsupervised process) becomes an action;
//! identical commands are one action covering every process they restart. A PM2 app's
//! registration again (three `pm2` steps, [`super::pm2`]) is one action too. Anything else (no
//! command, several steps, a step only a person can take) is planned as skipped, with the
//! remedy's words, so nothing is guessed.

use crate::escape::escape;
use crate::findings::{Finding, Kind, Remedy};
use crate::layout::DeployRoot;
use crate::owner::remedy::{Arg, Command};
use crate::owner::{Owners, Supervisor};
use crate::report::words;
use crate::scan::Scan;
use crate::snapshot::Snapshot;
use std::path::PathBuf;

/// A process the plan covers, by pid and start time (a reused pid is another process).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Covered {
    pub pid: i32,
    pub start_ticks: u64,
}

/// How an action is confirmed with its supervisor, and what it drives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    Systemd {
        unit: String,
    },
    /// `program` is the name supervisorctl takes; `supervisord` the pid it must report.
    Supervisord {
        supervisord: i32,
        program: String,
    },
    /// The service directory (runsv's cwd).
    Runit {
        dir: PathBuf,
    },
    /// A PM2 app, registered again through the God daemon `god`, whose `PM2_HOME` its title
    /// names (confirmed with the kernel before use: [`super::pm2`]).
    Pm2 {
        god: i32,
        name: Box<std::ffi::OsStr>,
        home: PathBuf,
        /// `LINK/SCRIPT`, which must be a file before `pm2 delete` runs.
        start: PathBuf,
    },
    /// An unsupervised process: the signal goes through a pidfd to each of `pids` (the master
    /// first, then the workers that would outlive it, as the remedy orders them), each once its
    /// start time matches the scan's.
    Signal {
        signal: rustix::process::Signal,
        pids: Vec<Covered>,
    },
}

/// Where an action stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Planned,
    /// Not acted on, and why (escaped).
    Skipped(String),
    /// The supervisor's own view agrees (what it said, escaped).
    Confirmed(String),
    /// The command ran and exited 0 (or the signal was sent); its output.
    Done(String),
    /// The command failed: exit status or signal, and output (escaped).
    Failed(String),
    TimedOut(String),
    /// Every process it covered was replaced by one on the current release.
    Replaced(String),
    /// Some were still on an old or deleted release at the deadline.
    NotReplaced(String),
    /// An unsupervised process ended, and nothing starts it again.
    Ended(String),
}

impl State {
    /// The run did not get what this item was for.
    pub fn is_bad(&self) -> bool {
        matches!(
            self,
            State::Skipped(_)
                | State::Failed(_)
                | State::TimedOut(_)
                | State::NotReplaced(_)
                | State::Ended(_)
        )
    }

    /// `confirmed`, `skipped`, ...: the state's name in lines and JSON.
    pub fn name(&self) -> &'static str {
        match self {
            State::Planned => "planned",
            State::Skipped(_) => "skipped",
            State::Confirmed(_) => "confirmed",
            State::Done(_) => "done",
            State::Failed(_) => "failed",
            State::TimedOut(_) => "timed-out",
            State::Replaced(_) => "replaced",
            State::NotReplaced(_) => "not-replaced",
            State::Ended(_) => "ended",
        }
    }

    /// What goes with the state (escaped), if anything.
    pub fn detail(&self) -> &str {
        match self {
            State::Planned => "",
            State::Skipped(s)
            | State::Confirmed(s)
            | State::Done(s)
            | State::Failed(s)
            | State::TimedOut(s)
            | State::Replaced(s)
            | State::NotReplaced(s)
            | State::Ended(s) => s,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Action {
    /// Every command the action runs, in order, stopping at the first that fails: one, or a
    /// PM2 app's three steps; none for a skipped item that names no single command.
    pub steps: Vec<Command>,
    pub via: Option<Via>,
    /// The process the supervisor must name as its own: the top of the first tree.
    pub top: Covered,
    pub covered: Vec<Covered>,
    pub app: usize,
    pub kinds: Vec<Kind>,
    /// Who owns the processes, for people (escaped).
    pub owner: String,
    pub state: State,
}

impl Action {
    /// What runs (`None`: a skipped item that names no single command): the first step.
    pub fn command(&self) -> Option<&Command> {
        self.steps.first()
    }
}

/// The actions for the findings of `kinds` in `scan`, in the order the findings come.
pub fn plan(scan: &Scan, roots: &[DeployRoot], kinds: &[Kind]) -> Vec<Action> {
    let mut actions: Vec<Action> = Vec::new();
    for f in scan.findings.iter().filter(|f| kinds.contains(&f.kind)) {
        let Some(top) = f.pids.first().and_then(|&pid| covered(&scan.snap, pid)) else {
            continue;
        };
        // A zombie's parent is what restarts; the zombies themselves go with it.
        let pids: &[i32] = if f.kind == Kind::Zombie {
            &f.pids[..1]
        } else {
            &f.pids
        };
        let procs: Vec<Covered> = pids
            .iter()
            .filter_map(|&p| covered(&scan.snap, p))
            .collect();
        let (steps, via, skip) = steps_of(scan, f, top.pid);
        if let Some(same) = actions
            .iter_mut()
            .find(|a| a.via.is_some() && a.via == via && a.steps == steps)
        {
            merge(same, f.kind, &procs);
            continue;
        }
        let state = match (refused(scan, &via, top.pid), skip) {
            (Some(why), _) => State::Skipped(why),
            (None, Some(why)) => {
                State::Skipped(format!("{}: {}", why, words::remedy(f, &roots[f.app])))
            }
            (None, None) if via.is_none() => State::Skipped(why_not(roots, f)),
            (None, None) => State::Planned,
        };
        actions.push(Action {
            steps,
            via,
            top,
            covered: procs,
            app: f.app,
            kinds: vec![f.kind],
            owner: owner_words(&scan.owners, &scan.snap, top.pid),
            state,
        });
    }
    actions
}

/// The commands an action for `f` runs, how to confirm them (`None`: no action), and why it
/// is skipped when the plan already knows.
fn steps_of(scan: &Scan, f: &Finding, top: i32) -> (Vec<Command>, Option<Via>, Option<String>) {
    match super::pm2::of(scan, f, top) {
        Some(Ok((steps, via))) => (steps, Some(via), None),
        Some(Err(skip)) => (skip.steps, None, Some(skip.why)),
        None => match action_of(scan, f, top) {
            Some((command, via)) => (vec![command], Some(via), None),
            None => (single(&f.remedy).into_iter().collect(), None, None),
        },
    }
}

fn covered(snap: &Snapshot, pid: i32) -> Option<Covered> {
    snap.get(pid).map(|p| Covered {
        pid,
        start_ticks: p.start_ticks,
    })
}

fn merge(into: &mut Action, kind: Kind, procs: &[Covered]) {
    if !into.kinds.contains(&kind) {
        into.kinds.push(kind);
    }
    for p in procs {
        if !into.covered.contains(p) {
            into.covered.push(*p);
        }
    }
}

/// The remedy's command when it names exactly one.
fn single(remedy: &Remedy) -> Option<Command> {
    match remedy.commands().as_slice() {
        [c] => Some(c.clone()),
        _ => None,
    }
}

/// Why a finding gets no action: what its remedy says a person must do.
fn why_not(roots: &[DeployRoot], f: &Finding) -> String {
    let n = f.remedy.commands().len();
    let what = if n == 0 {
        "no command restarts it"
    } else if single(&f.remedy).is_some() {
        "relwatch restart does not drive this supervisor"
    } else {
        "it takes several steps and a person's judgement"
    };
    format!("{what}: {}", words::remedy(f, &roots[f.app]))
}

/// The command that restarts `top`, and how to confirm it with its owner: only when the
/// remedy names one command whose program is the owner's own tool.
fn action_of(scan: &Scan, f: &Finding, top: i32) -> Option<(Command, Via)> {
    let c = single(&f.remedy)?;
    let owner = scan.owners.get(top);
    let supervisor = owner.map(|o| &o.supervisor);
    match (c.program, supervisor) {
        ("systemctl", Some(Supervisor::Systemd { unit })) => Some((
            c,
            Via::Systemd {
                unit: unit.unit.clone(),
            },
        )),
        (
            "supervisorctl",
            Some(Supervisor::Supervisord {
                pid,
                program: Some(program),
            }),
        ) => Some((
            // The remedy carries `-c CONF` already (`owner::remedy::config_arg`).
            c,
            Via::Supervisord {
                supervisord: *pid,
                program: program.to_string(),
            },
        )),
        ("sv", Some(Supervisor::Runit { pid, .. })) => {
            let dir = scan.snap.get(*pid).and_then(|p| p.cwd.as_ref().ok())?;
            let dir = PathBuf::from(&*dir.path());
            let command = Command {
                args: vec![Arg::Word("restart"), Arg::name(&dir)].into(),
                ..c
            };
            Some((command, Via::Runit { dir }))
        }
        ("kill", _) => kill(scan, f, c, top),
        _ => None,
    }
}

/// `kill -SIGNAL MASTER [WORKER...]`: the master first, then only processes of its finding
/// (the workers that would outlive it), each as the scan saw it.
fn kill(scan: &Scan, f: &Finding, c: Command, top: i32) -> Option<(Command, Via)> {
    let (signal, pids) = match c.args.split_first()? {
        (Arg::Word(sig), pids) => (signal_named(sig.as_bytes())?, pids),
        _ => return None,
    };
    let pids: Vec<i32> = pids
        .iter()
        .map(|a| match a {
            Arg::Pid(p) => Some(*p),
            _ => None,
        })
        .collect::<Option<_>>()?;
    if pids.first() != Some(&top) || pids.iter().any(|p| !f.pids.contains(p)) {
        return None;
    }
    let pids = pids
        .iter()
        .map(|&p| covered(&scan.snap, p))
        .collect::<Option<Vec<_>>>()?;
    Some((c, Via::Signal { signal, pids }))
}

/// `-TERM` and friends: the signals a remedy may name.
fn signal_named(word: &[u8]) -> Option<rustix::process::Signal> {
    use rustix::process::Signal;
    Some(match word.strip_prefix(b"-")? {
        b"TERM" => Signal::TERM,
        b"INT" => Signal::INT,
        b"QUIT" => Signal::QUIT,
        b"HUP" => Signal::HUP,
        b"USR1" => Signal::USR1,
        b"USR2" => Signal::USR2,
        b"WINCH" => Signal::WINCH,
        _ => return None,
    })
}

/// What relwatch never restarts: PID 1, kernel threads, itself or what it runs under, and its
/// own units; nor signals any of those among a tree's pids.
fn refused(scan: &Scan, via: &Option<Via>, top: i32) -> Option<String> {
    let signalled = match via {
        Some(Via::Signal { pids, .. }) => pids.as_slice(),
        _ => &[],
    };
    let pid_refused = std::iter::once(top)
        .chain(signalled.iter().map(|p| p.pid))
        .find_map(|pid| refused_pid(scan, pid));
    if pid_refused.is_some() {
        return pid_refused;
    }
    match via {
        Some(Via::Systemd { unit }) if is_own_unit(unit) => Some(format!(
            "{} is relwatch's own unit or the system's",
            crate::escape::shell_word(unit)
        )),
        _ => None,
    }
}

/// Why `top` is never restarted or signalled: PID 1, a kernel thread, relwatch or what it
/// runs under.
fn refused_pid(scan: &Scan, top: i32) -> Option<String> {
    if top == 1 {
        return Some("it is PID 1".into());
    }
    if scan.snap.get(top).is_some_and(|p| p.kernel_thread) {
        return Some(format!("pid {top} is a kernel thread"));
    }
    if ancestors_of_self(&scan.snap).contains(&top) {
        return Some(format!(
            "pid {top} is relwatch itself or runs it: restarting it would end this run"
        ));
    }
    None
}

/// relwatch's units (relwatch.service, relwatch-agent.service, ...) and PID 1's own scope.
pub fn is_own_unit(unit: &str) -> bool {
    unit.starts_with("relwatch") || unit == "init.scope" || unit.starts_with("user@")
}

/// This process and its ancestors in the snapshot.
fn ancestors_of_self(snap: &Snapshot) -> Vec<i32> {
    let mut out = Vec::new();
    let mut pid = i32::try_from(std::process::id()).unwrap_or(0);
    while pid > 1 && !out.contains(&pid) {
        out.push(pid);
        match snap.get(pid) {
            Some(p) => pid = p.ppid,
            None => break,
        }
    }
    out
}

/// "systemd unit 'shop.service'", "unsupervised gunicorn (pid 12)"
fn owner_words(owners: &Owners, snap: &Snapshot, pid: i32) -> String {
    match owners.get(pid) {
        Some(o) if !matches!(o.supervisor, Supervisor::None) => o.label(),
        _ => {
            let name = snap.get(pid).map(|p| escape(p.name())).unwrap_or_default();
            format!("unsupervised {name} (pid {pid})")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::owner::remedy::config_arg;

    #[test]
    fn the_config_file_of_a_supervisord_command_line() {
        let cl = |a: &'static [&'static str]| a.iter().map(std::ffi::OsStr::new);
        assert_eq!(
            config_arg(cl(&["supervisord", "-n", "-c", "/etc/s.conf"])),
            Some(PathBuf::from("/etc/s.conf"))
        );
        assert_eq!(
            config_arg(cl(&[
                "python3",
                "/usr/bin/supervisord",
                "--configuration=/x.conf"
            ])),
            Some(PathBuf::from("/x.conf"))
        );
        assert_eq!(
            config_arg(cl(&["supervisord", "-c/y.conf"])),
            Some(PathBuf::from("/y.conf"))
        );
        assert_eq!(config_arg(cl(&["supervisord", "-c", "rel.conf"])), None);
        assert_eq!(config_arg(cl(&["supervisord", "-n"])), None);
    }

    #[test]
    fn relwatch_never_restarts_its_own_units_or_a_user_manager() {
        assert!(is_own_unit("relwatch.service"));
        assert!(is_own_unit("relwatch-agent.service"));
        assert!(is_own_unit("init.scope"));
        assert!(is_own_unit("user@1000.service"));
        assert!(!is_own_unit("shop-queue.service"));
    }

    #[test]
    fn signals_a_remedy_may_name() {
        assert_eq!(signal_named(b"-TERM"), Some(rustix::process::Signal::TERM));
        assert_eq!(signal_named(b"-QUIT"), Some(rustix::process::Signal::QUIT));
        assert_eq!(signal_named(b"-KILL"), None);
        assert_eq!(signal_named(b"TERM"), None);
    }
}
