//! What restarts a process, by its owner, as data: a [`Command`] (program, arguments, whom it
//! runs as), or the fact that nothing would restart it. Always a restart (never a reload: a
//! reload keeps a master's cwd), and once per master, never once per worker.
//!
//! Nothing here is text for people: `report::words` quotes and escapes each argument and
//! phrases the rest. The one read made here is the user name of a user service's uid
//! (`systemctl --user -M NAME@` needs it; without it the command is given to run as the uid).

use super::{is_pm2_god, is_supervisord, Owners, Supervisor};
use crate::attribution::{Attribution, ReleaseState};
use crate::snapshot::Snapshot;
use std::borrow::Cow;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Whom a command runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsWhom {
    /// The operator who reads the report, root for most commands.
    Root,
    Uid(u32),
}

impl AsWhom {
    /// As `uid`: root is the operator.
    pub fn uid(uid: u32) -> AsWhom {
        match uid {
            0 => AsWhom::Root,
            uid => AsWhom::Uid(uid),
        }
    }

    /// As the user process `pid` runs as: a supervisor's commands reach it only as its user
    /// (supervisorctl's socket, PM2's home, runsv's control pipe). Root when it is gone.
    fn of(snap: &Snapshot, pid: i32) -> AsWhom {
        snap.get(pid).map_or(AsWhom::Root, |p| AsWhom::uid(p.uid))
    }
}

/// One command line: data, quoted and escaped only when phrased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub as_whom: AsWhom,
    pub program: &'static str,
    pub args: Box<[Arg]>,
}

/// One argument of a [`Command`]. Every argument is written the same way when phrased (one
/// shell word that reads back as exactly these bytes: [`crate::escape::shell_word`]); the
/// kinds only say where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    /// A fixed word: `restart`, `-TERM`.
    Word(&'static str),
    Pid(i32),
    /// A name or a path as the system gave it (program, unit, service directory, release,
    /// link): any bytes.
    Name(Box<OsStr>),
    /// `NAME@`, a user's service manager for `systemctl -M`.
    UserManager(Box<OsStr>),
}

impl Arg {
    /// A name or path from the system.
    pub fn name(s: impl AsRef<OsStr>) -> Arg {
        Arg::Name(s.as_ref().into())
    }

    /// The argument's bytes, exactly as the program receives them.
    pub fn bytes(&self) -> Cow<'_, [u8]> {
        match self {
            Arg::Word(word) => Cow::Borrowed(word.as_bytes()),
            Arg::Pid(pid) => Cow::Owned(pid.to_string().into_bytes()),
            Arg::Name(name) => Cow::Borrowed(name.as_bytes()),
            Arg::UserManager(user) => Cow::Owned([user.as_bytes(), b"@"].concat()),
        }
    }
}

impl Command {
    /// The program, then each argument: the argv the command runs with.
    pub fn argv(&self) -> impl Iterator<Item = Cow<'_, [u8]>> {
        std::iter::once(Cow::Borrowed(self.program.as_bytes()))
            .chain(self.args.iter().map(Arg::bytes))
    }

    pub fn new(program: &'static str, args: impl Into<Box<[Arg]>>) -> Command {
        Command {
            as_whom: AsWhom::Root,
            program,
            args: args.into(),
        }
    }

    /// `kill -TERM PID`
    pub fn kill(pid: i32) -> Command {
        Command::new("kill", [Arg::Word("-TERM"), Arg::Pid(pid)])
    }

    /// `supervisorctl reread`, `supervisorctl update`: supervisord takes changed programs.
    pub fn supervisord_update(as_whom: AsWhom) -> [Command; 2] {
        ["reread", "update"].map(|verb| Command {
            as_whom,
            ..Command::new("supervisorctl", [Arg::Word(verb)])
        })
    }

    /// `pm2 kill`, `pm2 resurrect`: a new God daemon, from the directory it is run in.
    pub fn pm2_resurrect(as_whom: AsWhom) -> [Command; 2] {
        ["kill", "resurrect"].map(|verb| Command {
            as_whom,
            ..Command::new("pm2", [Arg::Word(verb)])
        })
    }
}

/// What restarts one process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Restart {
    /// Its supervisor, with this command.
    Command(Command),
    /// A supervisord whose program name for it could not be read.
    SupervisordUnnamed,
    /// A PM2 God daemon whose app name for it could not be read.
    Pm2Unnamed,
    /// Nothing would restart it: end it, then start it again from the app's link.
    KillAndStart { pid: i32, because: Unsupervised },
}

/// Why nothing would restart a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unsupervised {
    /// Its owner could not be read.
    OwnerUnread,
    /// It was started by hand in this login session (the unit as systemd shows it).
    ByHand {
        session: Box<str>,
    },
    NoSupervisor,
}

/// What fixes a tree whose top runs from the wrong release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TreeFix {
    /// The top is not in the snapshot any more.
    Vanished { pid: i32 },
    /// The top is supervisord: its programs without `directory=` inherit its cwd. `as_whom`:
    /// its user, for `supervisorctl`.
    SupervisordItself {
        pid: i32,
        restart: Restart,
        as_whom: AsWhom,
    },
    /// The top is a PM2 God daemon, which keeps every app's cwd; `pm2` runs as its user.
    Pm2GodItself { pid: i32, as_whom: AsWhom },
    /// Restart the top; `stale` when its supervisor runs from an old or deleted release too.
    Restart {
        restart: Restart,
        stale: Option<StaleSupervisor>,
    },
}

/// A supervisord or PM2 God daemon above the top, itself on an old or deleted release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaleSupervisor {
    pub pid: i32,
    pub pm2: bool,
    pub state: ReleaseState,
    /// Its user, whom its commands run as.
    pub as_whom: AsWhom,
}

/// What restarts `pid` itself, by its owner.
fn restart(snap: &Snapshot, owners: &Owners, pid: i32) -> Restart {
    let Some(owner) = owners.get(pid) else {
        return Restart::KillAndStart {
            pid,
            because: Unsupervised::OwnerUnread,
        };
    };
    // Through the supervisor, as its user (root, or the worker's own: see `nearest_from`).
    let as_whom = owner
        .supervisor_pid()
        .map_or(AsWhom::Root, |spid| AsWhom::of(snap, spid));
    let command = |program, args: Vec<Arg>| {
        Restart::Command(Command {
            as_whom,
            ..Command::new(program, args)
        })
    };
    match &owner.supervisor {
        Supervisor::Supervisord {
            program: Some(p), ..
        } => command("supervisorctl", vec![Arg::Word("restart"), Arg::name(p)]),
        Supervisor::Supervisord { program: None, .. } => Restart::SupervisordUnnamed,
        Supervisor::Pm2 { name: n, id, .. } => match n.as_ref().or(id.as_ref()) {
            Some(n) => command("pm2", vec![Arg::Word("restart"), Arg::name(n)]),
            None => Restart::Pm2Unnamed,
        },
        Supervisor::Runit { service, .. } => {
            command("sv", vec![Arg::Word("restart"), Arg::name(service)])
        }
        Supervisor::S6 { pid: spid, service } => {
            // s6-supervise runs in its service directory.
            let dir = match snap.get(*spid).and_then(|s| s.cwd.as_ref().ok()) {
                Some(link) => Arg::name(link.path()),
                None => Arg::name(Path::new("/run/service").join(service)),
            };
            command("s6-svc", vec![Arg::Word("-r"), dir])
        }
        Supervisor::Systemd { unit } => Restart::Command(systemctl_restart(&unit.unit, unit.user)),
        Supervisor::Container(c) => Restart::Command(restart_container(c)),
        Supervisor::Session { unit } => Restart::KillAndStart {
            pid,
            because: Unsupervised::ByHand {
                session: unit.display().into(),
            },
        },
        Supervisor::None => Restart::KillAndStart {
            pid,
            because: Unsupervised::NoSupervisor,
        },
    }
}

/// What restarts a container (see [`super::container`]), as root: `docker restart ID`,
/// `podman restart ID`, `crictl stop ID` (the kubelet starts it again),
/// `systemctl restart systemd-nspawn@NAME.service`, `lxc-stop --reboot -n NAME`.
fn restart_container(c: &super::container::Container) -> Command {
    use super::container::Runtime;
    let id = Arg::name(&c.id);
    match c.runtime {
        Runtime::Docker => Command::new("docker", [Arg::Word("restart"), id]),
        Runtime::Podman => Command::new("podman", [Arg::Word("restart"), id]),
        Runtime::Containerd => Command::new("crictl", [Arg::Word("stop"), id]),
        Runtime::Nspawn => systemctl_restart(&format!("systemd-nspawn@{}.service", c.id), None),
        Runtime::Lxc => Command::new("lxc-stop", [Arg::Word("--reboot"), Arg::Word("-n"), id]),
    }
}

/// `systemctl restart UNIT`; for a user service, through the user's manager when the uid has
/// a name, else to be run as the uid.
fn systemctl_restart(unit: &str, user: Option<u32>) -> Command {
    let unit = Arg::name(unit);
    let Some(uid) = user else {
        return Command::new("systemctl", [Arg::Word("restart"), unit]);
    };
    match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
        Ok(Some(u)) => Command::new(
            "systemctl",
            [
                Arg::Word("--user"),
                Arg::Word("-M"),
                Arg::UserManager(OsStr::new(&u.name).into()),
                Arg::Word("restart"),
                unit,
            ],
        ),
        _ => Command {
            as_whom: AsWhom::Uid(uid),
            ..Command::new(
                "systemctl",
                [Arg::Word("--user"), Arg::Word("restart"), unit],
            )
        },
    }
}

/// What fixes the tree whose top is `pid`.
pub fn for_tree(snap: &Snapshot, owners: &Owners, attr: &Attribution, pid: i32) -> TreeFix {
    let Some(p) = snap.get(pid) else {
        return TreeFix::Vanished { pid };
    };
    if is_supervisord(p) {
        return TreeFix::SupervisordItself {
            pid,
            restart: restart(snap, owners, pid),
            as_whom: AsWhom::uid(p.uid),
        };
    }
    if is_pm2_god(p) {
        return TreeFix::Pm2GodItself {
            pid,
            as_whom: AsWhom::uid(p.uid),
        };
    }
    // A supervisor on an old or deleted release hands its directory to what it restarts.
    let stale = owners.get(pid).and_then(|owner| {
        let pm2 = match owner.supervisor {
            Supervisor::Supervisord { .. } => false,
            Supervisor::Pm2 { .. } => true,
            _ => return None,
        };
        let spid = owner.supervisor_pid()?;
        let state = attr.get(spid)?.state;
        matches!(state, ReleaseState::Deleted | ReleaseState::Old).then_some(StaleSupervisor {
            pid: spid,
            pm2,
            state,
            as_whom: AsWhom::of(snap, spid),
        })
    });
    TreeFix::Restart {
        restart: restart(snap, owners, pid),
        stale,
    }
}

impl Restart {
    /// The command this names, if any (`KillAndStart`: the kill; starting again is a person's).
    pub fn command(&self) -> Option<Command> {
        match self {
            Restart::Command(c) => Some(c.clone()),
            Restart::SupervisordUnnamed | Restart::Pm2Unnamed => None,
            Restart::KillAndStart { pid, .. } => Some(Command::kill(*pid)),
        }
    }
}

impl TreeFix {
    /// The commands this fix names, in the order its words give them (`report::words`).
    pub fn commands(&self) -> Vec<Command> {
        match self {
            TreeFix::Vanished { .. } => Vec::new(),
            TreeFix::SupervisordItself {
                restart, as_whom, ..
            } => {
                let mut out: Vec<Command> = restart.command().into_iter().collect();
                out.extend(Command::supervisord_update(*as_whom));
                out
            }
            TreeFix::Pm2GodItself { as_whom, .. } => Command::pm2_resurrect(*as_whom).into(),
            TreeFix::Restart { restart, stale } => {
                let mut out: Vec<Command> = restart.command().into_iter().collect();
                match stale {
                    Some(s) if s.pm2 => out.extend(Command::pm2_resurrect(s.as_whom)),
                    Some(s) => out.extend(Command::supervisord_update(s.as_whom)),
                    None => {}
                }
                out
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::owner::Owner;
    use crate::snapshot::LinkError;
    use crate::testkit::{process, snapshot};

    #[test]
    fn a_container_is_restarted_by_its_runtime_as_root() {
        use crate::owner::container::{Container, Runtime};
        let argv = |runtime, id: &str| {
            let c = restart_container(&Container {
                runtime,
                id: id.into(),
            });
            assert_eq!(c.as_whom, AsWhom::Root);
            c.argv()
                .map(|a| String::from_utf8_lossy(&a).into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(argv(Runtime::Docker, "4f1c"), "docker restart 4f1c");
        assert_eq!(argv(Runtime::Podman, "4f1c"), "podman restart 4f1c");
        assert_eq!(argv(Runtime::Containerd, "4f1c"), "crictl stop 4f1c");
        assert_eq!(
            argv(Runtime::Nspawn, "web"),
            "systemctl restart systemd-nspawn@web.service"
        );
        assert_eq!(argv(Runtime::Lxc, "web"), "lxc-stop --reboot -n web");
    }

    /// A supervisor's commands run as its user: root's need nothing said, a user's own
    /// supervisord (which root's `supervisorctl` would not even reach) is driven as that user.
    #[test]
    fn commands_through_a_supervisor_run_as_its_user() {
        let proc_as = |pid, ppid, uid, args: &[&str]| {
            let mut p = process(pid, ppid, Err(LinkError::Absent), 1.0, args);
            p.uid = uid;
            p
        };
        let snap = snapshot(
            vec![
                proc_as(10, 1, 0, &["supervisord"]),
                proc_as(11, 10, 1000, &["php"]),
                proc_as(20, 1, 1000, &["supervisord"]),
                proc_as(21, 20, 1000, &["php"]),
            ],
            10.0,
        );
        let supervisord = |pid| Owner {
            supervisor: Supervisor::Supervisord {
                pid,
                program: Some("all".into()),
            },
            unit: None,
            supervisor_enabled: true,
        };
        let owners = Owners::from_list(vec![(11, supervisord(10)), (21, supervisord(20))]);
        let as_whom = |pid| match restart(&snap, &owners, pid) {
            Restart::Command(c) => c.as_whom,
            other => panic!("{other:?}"),
        };
        assert_eq!(as_whom(11), AsWhom::Root);
        assert_eq!(as_whom(21), AsWhom::Uid(1000));
        assert_eq!(AsWhom::uid(0), AsWhom::Root);
    }
}
