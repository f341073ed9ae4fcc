//! What restarts a process, by its owner, as data: a [`Command`] (program, arguments, whom it
//! runs as), or the fact that nothing would restart it. Always a restart (never a reload: a
//! reload keeps a master's cwd), and once per master, never once per worker.
//!
//! Nothing here is text for people: `report::words` quotes and escapes each argument and
//! phrases the rest. The one read made here is the user name of a user service's uid
//! (`systemctl --user -M NAME@` needs it; without it the command is given to run as the uid).

use super::servers::{self, Server};
use super::{is_pm2_god, is_supervisord, Owners, Supervisor};
use crate::attribution::{Attribution, ReleaseState};
use crate::layout::DeployRoot;
use crate::snapshot::{Process, Snapshot};
use std::borrow::Cow;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

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
    /// A PM2 app, registered again from the app's link: `pm2 restart` keeps the cwd PM2 saved
    /// for it (the old release), and once that release is deleted takes the app down.
    Pm2Again(Box<Pm2Again>),
    /// A worker whose master starts its workers again on a signal (php-fpm's USR2: each
    /// worker chdirs into the pool's `chdir` anew): `kill SIGNAL MASTER`, one remedy for every
    /// worker of that master. Ending the worker would only have the master replace it where it
    /// was.
    ReloadMaster {
        master: i32,
        server: &'static Server,
    },
    /// Nothing would restart it: end it (`stop`), then start it again from the app's link.
    KillAndStart {
        because: Unsupervised,
        /// Boxed: a finding stays small (`findings::tests::a_finding_stays_small`).
        stop: Box<Stop>,
    },
}

/// `pm2 delete NAME && pm2 start LINK/SCRIPT --name NAME --cwd LINK && pm2 save`, as the God
/// daemon's user. `script`: the app's script relative to its release, when its command line
/// names it there; without it the start is a person's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pm2Again {
    pub name: Box<OsStr>,
    pub script: Option<Box<OsStr>>,
    pub link: Box<OsStr>,
    pub as_whom: AsWhom,
}

/// How a process that nothing restarts is ended: its app server's graceful stop signal
/// ([`super::servers`]) sent to `pids`: the master alone when it ends its workers, else every
/// process of its tree, master first. Never PID 1, relwatch itself or a kernel thread: `pids`
/// is empty when nothing may be signalled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stop {
    /// The process nothing restarts (the top of its tree).
    pub pid: i32,
    pub server: &'static Server,
    pub pids: Box<[i32]>,
}

impl Stop {
    /// How to end the tree `tree` (its top first) of the process `p`.
    fn of(snap: &Snapshot, tree: &[i32]) -> Stop {
        let server = tree
            .first()
            .and_then(|pid| snap.get(*pid))
            .map_or(servers::unknown(), servers::of);
        let whom = if server.ends_workers {
            &tree[..tree.len().min(1)]
        } else {
            tree
        };
        Stop {
            pid: tree.first().copied().unwrap_or(0),
            server,
            pids: whom
                .iter()
                .copied()
                .filter(|&pid| may_signal(snap, pid))
                .collect(),
        }
    }

    /// `kill -SIGNAL PID...`, when there is a pid to signal.
    pub fn command(&self) -> Option<Command> {
        if self.pids.is_empty() {
            return None;
        }
        let args = std::iter::once(Arg::Word(self.server.stop))
            .chain(self.pids.iter().map(|&p| Arg::Pid(p)));
        Some(Command::new("kill", args.collect::<Vec<_>>()))
    }
}

/// Whether a remedy may signal `pid`: never PID 1 (or 0 and below: a process group), never
/// relwatch itself, never a kernel thread or a process not in the snapshot.
pub fn may_signal(snap: &Snapshot, pid: i32) -> bool {
    pid > 1 && pid != snap.own_pid && snap.get(pid).is_some_and(|p| !p.kernel_thread)
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

/// The absolute `-c FILE` / `--configuration FILE` of a supervisord command line.
pub fn config_arg<'a>(cmdline: impl Iterator<Item = &'a std::ffi::OsStr>) -> Option<PathBuf> {
    let mut args = cmdline.map(|a| a.as_bytes());
    while let Some(a) = args.next() {
        let value = match a {
            b"-c" | b"--configuration" => args.next(),
            _ => a
                .strip_prefix(b"--configuration=")
                .or_else(|| a.strip_prefix(b"-c").filter(|v| !v.is_empty())),
        };
        if let Some(v) = value.filter(|v| v.starts_with(b"/")) {
            return Some(PathBuf::from(std::ffi::OsStr::from_bytes(v)));
        }
    }
    None
}

/// What restarts the top of `tree` (top first; a lone process is a tree of one), by its owner.
fn restart(snap: &Snapshot, owners: &Owners, root: Option<&DeployRoot>, tree: &[i32]) -> Restart {
    let pid = tree.first().copied().unwrap_or(0);
    let kill = |because| {
        reload_master(snap, pid).unwrap_or_else(|| Restart::KillAndStart {
            because,
            stop: Box::new(Stop::of(snap, tree)),
        })
    };
    let Some(owner) = owners.get(pid) else {
        return kill(Unsupervised::OwnerUnread);
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
            pid: supervisord,
            program: Some(p),
        } => {
            // The control socket is the one of the file supervisord was started with: without
            // `-c`, supervisorctl would reach the default one (another supervisord, or none).
            let conf = snap
                .get(*supervisord)
                .and_then(|s| config_arg(s.cmdline.iter()));
            let mut args = Vec::new();
            if let Some(conf) = conf {
                args.extend([Arg::Word("-c"), Arg::name(conf)]);
            }
            args.extend([Arg::Word("restart"), Arg::name(p)]);
            command("supervisorctl", args)
        }
        Supervisor::Supervisord { program: None, .. } => Restart::SupervisordUnnamed,
        Supervisor::Pm2 {
            name: n,
            id,
            exec_path,
            ..
        } => match (n.as_ref().or(id.as_ref()), root) {
            (Some(n), Some(root)) => Restart::Pm2Again(Box::new(Pm2Again {
                name: n.as_os_str().into(),
                script: exec_path
                    .as_deref()
                    .and_then(|path| in_release(Path::new(path), root))
                    .or_else(|| snap.get(pid).and_then(|p| pm2_script(p, root))),
                link: root.link.as_os_str().into(),
                as_whom,
            })),
            (Some(n), None) => command("pm2", vec![Arg::Word("restart"), Arg::name(n)]),
            (None, _) => Restart::Pm2Unnamed,
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
        Supervisor::Session { unit } => kill(Unsupervised::ByHand {
            session: unit.display().into(),
        }),
        Supervisor::None => kill(Unsupervised::NoSupervisor),
    }
}

/// [`Restart::ReloadMaster`] for `pid` when it is a worker of a master of the same server whose
/// row says a signal starts its workers again, and that master may be signalled.
fn reload_master(snap: &Snapshot, pid: i32) -> Option<Restart> {
    let worker = snap.get(pid)?;
    let master = snap.get(worker.ppid)?;
    let server = servers::of(master);
    (server.respawn.is_some()
        && std::ptr::eq(servers::of(worker), server)
        && may_signal(snap, master.pid))
    .then_some(Restart::ReloadMaster {
        master: master.pid,
        server,
    })
}

/// What restarts a container (see [`super::container`]), as root: `docker restart ID`,
/// `podman restart ID`, `crictl stop ID` (the kubelet starts it again),
/// `systemctl restart systemd-nspawn@NAME.service`, `machinectl reboot NAME` (nspawn starts a
/// registered machine again, its bind mounts made anew), `lxc-stop --reboot -n NAME`.
fn restart_container(c: &super::container::Container) -> Command {
    use super::container::Runtime;
    let id = Arg::name(&c.id);
    match c.runtime {
        Runtime::Docker => Command::new("docker", [Arg::Word("restart"), id]),
        Runtime::Podman => Command::new("podman", [Arg::Word("restart"), id]),
        Runtime::Containerd => Command::new("crictl", [Arg::Word("stop"), id]),
        Runtime::Nspawn => systemctl_restart(&format!("systemd-nspawn@{}.service", c.id), None),
        Runtime::NspawnMachine => Command::new("machinectl", [Arg::Word("reboot"), id]),
        Runtime::Lxc => Command::new("lxc-stop", [Arg::Word("--reboot"), Arg::Word("-n"), id]),
    }
}

/// The script a PM2 app runs, relative to its release: the first argument after the
/// interpreter that is no option, when it lies inside a release (or the link) or is relative
/// (PM2 starts it from its cwd, the release).
fn pm2_script(p: &Process, root: &DeployRoot) -> Option<Box<OsStr>> {
    // PM2 sets the title of a fork-mode app to `node /srv/api/releases/3/server.js` in its
    // first argument, the rest of the argument area NULs: split that title at spaces.
    let args: Vec<&[u8]> = p
        .cmdline
        .iter()
        .map(|a| a.as_bytes())
        .filter(|a| !a.is_empty())
        .collect();
    let words: Vec<&[u8]> = match args[..] {
        [title] => title
            .split(|&c| c == b' ')
            .filter(|w| !w.is_empty())
            .collect(),
        _ => args,
    };
    let arg = OsStr::from_bytes(words.iter().skip(1).find(|a| !a.starts_with(b"-"))?);
    let path = Path::new(arg);
    if path.is_relative() {
        return (!arg.as_bytes().starts_with(b"..")).then(|| Box::from(OsStr::new(arg)));
    }
    in_release(path, root)
}

/// An absolute path inside the app's link or one of its releases, relative to it.
fn in_release(path: &Path, root: &DeployRoot) -> Option<Box<OsStr>> {
    if let Ok(rest) = path.strip_prefix(&root.link) {
        return Some(rest.as_os_str().into());
    }
    let rest = path.strip_prefix(root.releases_dir.as_deref()?).ok()?;
    let mut parts = rest.components();
    parts.next()?;
    let script = parts.as_path();
    (!script.as_os_str().is_empty()).then(|| script.as_os_str().into())
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

/// What fixes `tree` (its pids, top first) of the app `root`.
pub fn for_tree(
    snap: &Snapshot,
    owners: &Owners,
    attr: &Attribution,
    root: Option<&DeployRoot>,
    tree: &[i32],
) -> TreeFix {
    let pid = tree.first().copied().unwrap_or(0);
    let Some(p) = snap.get(pid) else {
        return TreeFix::Vanished { pid };
    };
    if is_supervisord(p) {
        return TreeFix::SupervisordItself {
            pid,
            restart: restart(snap, owners, None, &[pid]),
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
        restart: restart(snap, owners, root, tree),
        stale,
    }
}

impl Restart {
    /// The commands this names, in order (`KillAndStart`: the kill; starting again is a
    /// person's; a PM2 app whose script is not known: none, its start is a person's).
    pub fn commands(&self) -> Vec<Command> {
        match self {
            Restart::Command(c) => vec![c.clone()],
            Restart::SupervisordUnnamed | Restart::Pm2Unnamed => Vec::new(),
            Restart::Pm2Again(again) => again.commands(),
            Restart::ReloadMaster { master, server } => server
                .respawn
                .map(|sig| Command::new("kill", [Arg::Word(sig), Arg::Pid(*master)]))
                .into_iter()
                .collect(),
            Restart::KillAndStart { stop, .. } => stop.command().into_iter().collect(),
        }
    }
}

impl Pm2Again {
    /// `pm2 delete NAME`, `pm2 start LINK/SCRIPT --name NAME --cwd LINK`, `pm2 save`; none
    /// without the script.
    pub fn commands(&self) -> Vec<Command> {
        let Some(script) = &self.script else {
            return Vec::new();
        };
        let pm2 = |args: Vec<Arg>| Command {
            as_whom: self.as_whom,
            ..Command::new("pm2", args)
        };
        let name = || Arg::Name(self.name.clone());
        let link = || Arg::Name(self.link.clone());
        vec![
            pm2(vec![Arg::Word("delete"), name()]),
            pm2(vec![
                Arg::Word("start"),
                Arg::name(Path::new(&self.link).join(&**script)),
                Arg::Word("--name"),
                name(),
                Arg::Word("--cwd"),
                link(),
            ]),
            pm2(vec![Arg::Word("save")]),
        ]
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
                let mut out = restart.commands();
                out.extend(Command::supervisord_update(*as_whom));
                out
            }
            TreeFix::Pm2GodItself { as_whom, .. } => Command::pm2_resurrect(*as_whom).into(),
            TreeFix::Restart { restart, stale } => {
                let mut out = restart.commands();
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
        assert_eq!(argv(Runtime::NspawnMachine, "web"), "machinectl reboot web");
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
        let as_whom = |pid| match restart(&snap, &owners, None, &[pid]) {
            Restart::Command(c) => c.as_whom,
            other => panic!("{other:?}"),
        };
        assert_eq!(as_whom(11), AsWhom::Root);
        assert_eq!(as_whom(21), AsWhom::Uid(1000));
        assert_eq!(AsWhom::uid(0), AsWhom::Root);
    }

    /// An unsupervised tree is ended by its server's graceful signal: uWSGI's master alone
    /// with INT (TERM reloads it), a home-grown master with every pid of its tree (its workers
    /// outlive it); never PID 1 or a kernel thread.
    #[test]
    fn an_unsupervised_tree_is_ended_by_its_servers_signal() {
        let mut kthread = process(5, 2, Err(LinkError::Absent), 1.0, &["kworker"]);
        kthread.kernel_thread = true;
        let snap = snapshot(
            vec![
                process(1, 0, Err(LinkError::Absent), 1.0, &["php", "master.php"]),
                kthread,
                process(
                    10,
                    1,
                    Err(LinkError::Absent),
                    1.0,
                    &["uwsgi", "--ini", "a.ini"],
                ),
                process(
                    11,
                    10,
                    Err(LinkError::Absent),
                    1.0,
                    &["uwsgi", "--ini", "a.ini"],
                ),
                process(20, 1, Err(LinkError::Absent), 1.0, &["php", "master.php"]),
                process(21, 20, Err(LinkError::Absent), 1.0, &["php", "master.php"]),
                process(
                    30,
                    1,
                    Err(LinkError::Absent),
                    1.0,
                    &["php-fpm: master process"],
                ),
                process(31, 30, Err(LinkError::Absent), 1.0, &["php-fpm: pool app"]),
                process(41, 1, Err(LinkError::Absent), 1.0, &["php-fpm: pool app"]),
            ],
            10.0,
        );
        let argv = |tree: &[i32]| -> Vec<String> {
            let owners = Owners::default();
            restart(&snap, &owners, None, tree)
                .commands()
                .iter()
                .flat_map(|c| {
                    c.argv()
                        .map(|a| String::from_utf8_lossy(&a).into_owned())
                        .collect::<Vec<_>>()
                })
                .collect()
        };
        assert_eq!(argv(&[10, 11]), ["kill", "-INT", "10"]);
        assert_eq!(argv(&[20, 21]), ["kill", "-TERM", "20", "21"]);
        assert_eq!(argv(&[1, 20, 5]), ["kill", "-TERM", "20"]);
        assert!(argv(&[1]).is_empty(), "PID 1 is never signalled");
        // A php-fpm worker alone: its master starts every worker again (USR2).
        assert_eq!(argv(&[31]), ["kill", "-USR2", "30"]);
        assert_eq!(argv(&[30, 31]), ["kill", "-QUIT", "30"]);
        // Its parent no php-fpm master (PID 1 at that): the worker itself.
        assert_eq!(argv(&[41]), ["kill", "-QUIT", "41"]);
    }

    #[test]
    fn a_pm2_app_is_registered_again_from_the_link() {
        let root = crate::testkit::root(
            "api",
            b"/srv/api",
            crate::testkit::current(b"2"),
            &[(b"1", 1), (b"2", 2)],
        );
        let script = |args: &[&str]| {
            let p = process(10, 1, Err(LinkError::Absent), 1.0, args);
            pm2_script(&p, &root).map(|s| s.to_string_lossy().into_owned())
        };
        assert_eq!(
            script(&["node", "/srv/api/releases/1/bin/server.js"]).as_deref(),
            Some("bin/server.js")
        );
        assert_eq!(
            script(&[
                "node",
                "--max-old-space-size=512",
                "/srv/api/current/server.js"
            ])
            .as_deref(),
            Some("server.js")
        );
        assert_eq!(script(&["node", "server.js"]).as_deref(), Some("server.js"));
        assert_eq!(script(&["node", "/opt/other/server.js"]), None);
        // PM2's fork-mode title: one argument, then NULs.
        assert_eq!(
            script(&["node /srv/api/releases/1/server.js", "", ""]).as_deref(),
            Some("server.js")
        );
        let again = Pm2Again {
            name: OsStr::new("api").into(),
            script: Some(OsStr::new("server.js").into()),
            link: OsStr::new("/srv/api/current").into(),
            as_whom: AsWhom::Uid(1000),
        };
        let lines: Vec<String> = again
            .commands()
            .iter()
            .map(crate::report::words::command_line)
            .collect();
        assert_eq!(
            lines,
            [
                "pm2 delete api",
                "pm2 start /srv/api/current/server.js --name api --cwd /srv/api/current",
                "pm2 save"
            ]
        );
    }
}
