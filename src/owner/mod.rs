//! Owners: who started each process of an app, and so what to restart.
//!
//! Evidence, nearest first: a supervisor process above it (supervisord with the
//! `SUPERVISOR_PROCESS_NAME`/`SUPERVISOR_GROUP_NAME` keys, a PM2 God daemon with `pm_id`/`name`,
//! `runsv NAME`, `s6-supervise NAME`), then the systemd unit from its cgroup (a service, a user
//! service under `user@UID.service`, or a login `session-N.scope`: started by hand), else
//! unsupervised. The nearest supervisor wins because it is what restarts the process: a
//! supervisord program inside `supervisor.service` is restarted with `supervisorctl`, not by
//! restarting every program at once.
//!
//! Only the environment keys in [`crate::snapshot::ENV_KEYS`] are ever read, and `name` only
//! below a PM2 God daemon. The shape: [`collect`] asks the snapshot's reader for the raw
//! cgroup path and those keys ([`crate::snapshot::CgroupAndEnv`], only for processes placed
//! in an app) and decides each owner as its reads arrive; [`unit`](mod@unit) reads systemd's
//! naming in the cgroup path; [`remedy`] says what to run. The deciding itself is pure
//! (tested through `resolve` on hand-made reads).

pub mod container;
pub mod remedy;
pub mod servers;
pub mod unit;

use crate::attribution::Attribution;
use crate::escape::shell_word;
use crate::snapshot::{CgroupAndEnv, ProcSource, Process, Snapshot};
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use unit::{unit_of_cgroup, UnitPath};

/// The process supervisor nearest to a process.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Supervisor {
    /// A supervisord ancestor; `program` is `GROUP:NAME` from the environment.
    Supervisord {
        pid: i32,
        program: Option<String>,
    },
    /// A PM2 God daemon ancestor, with the app's `name`, `pm_id` and `pm_exec_path` (the
    /// script PM2 runs: a fork-mode app's command line is PM2's container, not the script).
    Pm2 {
        god: i32,
        name: Option<OsString>,
        id: Option<OsString>,
        exec_path: Option<OsString>,
    },
    Runit {
        pid: i32,
        service: OsString,
    },
    S6 {
        pid: i32,
        service: OsString,
    },
    /// A systemd service (system, or user service when `unit.user` is set).
    Systemd {
        unit: UnitPath,
    },
    /// A login session scope: started by hand.
    Session {
        unit: UnitPath,
    },
    /// A container, by its cgroup ([`container`]): restarting it is what gives its processes
    /// the current release again (its bind mount of `current` was resolved when it started).
    Container(container::Container),
    None,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Owner {
    pub supervisor: Supervisor,
    /// The systemd unit the process's cgroup names, whatever the supervisor.
    pub unit: Option<UnitPath>,
    /// The process carries `SUPERVISOR_ENABLED` (it was started by a supervisord). Read only
    /// below a supervisord and directly under PID 1 (see [`env_keys`]): false elsewhere.
    pub supervisor_enabled: bool,
}

impl Owner {
    pub fn kind(&self) -> &'static str {
        match self.supervisor {
            Supervisor::Supervisord { .. } => "supervisord",
            Supervisor::Pm2 { .. } => "pm2",
            Supervisor::Runit { .. } => "runit",
            Supervisor::S6 { .. } => "s6",
            Supervisor::Systemd { .. } => "systemd",
            Supervisor::Session { .. } => "session",
            Supervisor::Container(ref c) => c.runtime.as_str(),
            Supervisor::None => "none",
        }
    }

    /// The supervisor's own name for it: program, app, service or unit (not escaped).
    pub fn name(&self) -> Option<String> {
        match &self.supervisor {
            Supervisor::Supervisord { program, .. } => program.clone(),
            Supervisor::Pm2 { name, id, .. } => name
                .as_ref()
                .or(id.as_ref())
                .map(|n| n.to_string_lossy().into_owned()),
            Supervisor::Runit { service, .. } | Supervisor::S6 { service, .. } => {
                Some(service.to_string_lossy().into_owned())
            }
            Supervisor::Systemd { unit } | Supervisor::Session { unit } => Some(unit.unit.clone()),
            Supervisor::Container(c) => Some(c.id.clone()),
            Supervisor::None => None,
        }
    }

    /// The supervisor process, when there is one.
    pub fn supervisor_pid(&self) -> Option<i32> {
        match &self.supervisor {
            Supervisor::Supervisord { pid, .. }
            | Supervisor::Runit { pid, .. }
            | Supervisor::S6 { pid, .. } => Some(*pid),
            Supervisor::Pm2 { god, .. } => Some(*god),
            _ => None,
        }
    }

    /// One phrase for people, each name in it one shell word ([`shell_word`]: quoted, and
    /// escaped for a terminal), since the phrase also goes into remedies.
    pub fn label(&self) -> String {
        match &self.supervisor {
            Supervisor::Supervisord { pid, program } => match program {
                Some(p) => format!(
                    "supervisord program {} (supervisord pid {pid})",
                    shell_word(p)
                ),
                None => format!("supervisord pid {pid}"),
            },
            Supervisor::Pm2 { god, .. } => format!(
                "pm2 app {} (God daemon pid {god})",
                self.name().map(shell_word).unwrap_or_else(|| "?".into())
            ),
            Supervisor::Runit { pid, service } => {
                format!("runit service {} (runsv pid {pid})", shell_word(service))
            }
            Supervisor::S6 { pid, service } => {
                format!(
                    "s6 service {} (s6-supervise pid {pid})",
                    shell_word(service)
                )
            }
            Supervisor::Systemd { unit } => match unit.user {
                Some(uid) => format!(
                    "systemd user unit {} of uid {uid}",
                    shell_word(unit.display())
                ),
                None => format!("systemd unit {}", shell_word(unit.display())),
            },
            Supervisor::Session { unit } => {
                format!(
                    "login session {} (started by hand)",
                    shell_word(unit.display())
                )
            }
            Supervisor::Container(c) => {
                format!("{} container {}", c.runtime.as_str(), shell_word(&c.id))
            }
            Supervisor::None => "unsupervised".to_string(),
        }
    }
}

/// Owners of the placed processes, by pid. The raw reads they came from are not kept, and the
/// processes of one unit or program share one `Owner` (20,000 workers of one service held
/// 20,000 copies of its unit name).
#[derive(Debug, Clone, Default)]
pub struct Owners {
    distinct: Vec<Owner>,
    /// `label()` of each distinct owner, made once and shared by the findings that show it.
    labels: Vec<std::sync::Arc<str>>,
    /// (pid, index into `distinct`), sorted by pid once filled (see [`Owners::finish`]): 8
    /// bytes a process, where a hash map took twice that and more.
    by_pid: Vec<(i32, u32)>,
}

impl Owners {
    pub fn get(&self, pid: i32) -> Option<&Owner> {
        self.distinct.get(self.slot(pid)?)
    }

    /// Where `pid`'s owner is in [`Owners::distinct`] (and its labels).
    pub fn slot(&self, pid: i32) -> Option<usize> {
        let at = self.by_pid.binary_search_by_key(&pid, |e| e.0).ok()?;
        Some(self.by_pid[at].1 as usize)
    }

    /// Every distinct owner once, each in its slot (see [`Owners::slot`]), with its
    /// [`Owner::label`]: a renderer can prepare each owner once, not once per process.
    pub fn distinct(&self) -> impl Iterator<Item = (&Owner, &str)> {
        self.distinct.iter().zip(self.labels.iter().map(|l| &**l))
    }

    /// The owner's [`Owner::label`], shared.
    pub fn label(&self, pid: i32) -> Option<std::sync::Arc<str>> {
        self.labels.get(self.slot(pid)?).cloned()
    }

    /// [`Owners::label`] when a supervisor owns `pid` ("unsupervised" names nobody).
    pub fn supervisor_label(&self, pid: i32) -> Option<std::sync::Arc<str>> {
        self.get(pid)
            .filter(|o| o.supervisor != Supervisor::None)
            .and_then(|_| self.label(pid))
    }

    fn with_capacity(n: usize) -> Owners {
        Owners {
            distinct: Vec::new(),
            labels: Vec::new(),
            by_pid: Vec::with_capacity(n),
        }
    }

    fn insert(&mut self, pid: i32, owner: Owner, seen: &mut HashMap<Owner, u32>) {
        let i = *seen.entry(owner).or_insert_with_key(|o| {
            self.labels.push(o.label().into());
            self.distinct.push(o.clone());
            u32::try_from(self.distinct.len() - 1).unwrap_or(u32::MAX)
        });
        self.by_pid.push((pid, i));
    }

    fn finish(mut self) -> Owners {
        self.by_pid.sort_unstable_by_key(|e| e.0);
        self.by_pid.dedup_by_key(|e| e.0);
        self
    }

    /// Owners given outright, for hand-built fixtures.
    #[cfg(test)]
    pub(crate) fn from_list(list: Vec<(i32, Owner)>) -> Owners {
        let mut owners = Owners::with_capacity(list.len());
        let mut seen = HashMap::new();
        for (pid, owner) in list {
            owners.insert(pid, owner, &mut seen);
        }
        owners.finish()
    }
}

fn basename(arg: &OsStr) -> &[u8] {
    base_bytes(arg.as_bytes())
}

/// What follows the last `/` of `arg` (all of it without one).
pub(crate) fn base_bytes(arg: &[u8]) -> &[u8] {
    match arg.iter().rposition(|&c| c == b'/') {
        Some(i) => &arg[i + 1..],
        None => arg,
    }
}

/// supervisord itself: `supervisord ...` or `python3 /usr/bin/supervisord ...`.
pub fn is_supervisord(p: &Process) -> bool {
    p.cmdline
        .iter()
        .take(2)
        .any(|a| basename(a) == b"supervisord")
        || p.comm == b"supervisord"
}

/// PM2's God daemon sets its title to `PM2 vX.Y.Z: God Daemon (/home/u/.pm2)`.
pub fn is_pm2_god(p: &Process) -> bool {
    p.cmdline.first().is_some_and(|a| {
        let a = a.as_bytes();
        a.starts_with(b"PM2 v") && a.windows(10).any(|w| w == b"God Daemon")
    })
}

/// A process supervisor of any kind relwatch knows: supervisord, PM2's God daemon, `runsv`,
/// `s6-supervise` (and `runsvdir`). What it starts are programs with places of their own, not
/// workers of its release ([`crate::attribution::inherit_from_masters`]).
pub fn is_supervisor(p: &Process) -> bool {
    is_supervisord(p)
        || is_pm2_god(p)
        || supervise_name(p, b"runsv").is_some()
        || supervise_name(p, b"s6-supervise").is_some()
        || p.cmdline
            .first()
            .is_some_and(|a| basename(a) == b"runsvdir")
}

fn supervise_name(p: &Process, program: &[u8]) -> Option<OsString> {
    let mut args = p.cmdline.iter();
    match (args.next(), args.next()) {
        (Some(a0), Some(name)) if basename(a0) == program => Some(name.to_os_string()),
        _ => None,
    }
}

/// The nearest supervisor ancestor of `p` (not `p` itself) that runs as root or as `p`'s uid.
fn nearest_supervisor(snap: &Snapshot, p: &Process) -> Option<(i32, &'static str)> {
    nearest_from(snap, p.ppid, p.uid)
}

/// [`nearest_supervisor`] of every child of one parent, found once: thousands of workers
/// share a parent (and a uid), and each look up the tree parses the ancestors' command lines.
#[derive(Default)]
struct Nearest(HashMap<(i32, u32), Option<(i32, &'static str)>>);

impl Nearest {
    fn of(&mut self, snap: &Snapshot, p: &Process) -> Option<(i32, &'static str)> {
        *self
            .0
            .entry((p.ppid, p.uid))
            .or_insert_with(|| nearest_from(snap, p.ppid, p.uid))
    }
}

/// The nearest supervisor at or above `pid` that the kernel backs for a worker of `uid`: one
/// running as root or as `uid`. Titles are free (any user can call a process `supervisord` or
/// `PM2 v5: God Daemon`); the uid is not. Another user's "supervisor" is passed over.
fn nearest_from(snap: &Snapshot, pid: i32, uid: u32) -> Option<(i32, &'static str)> {
    let mut pid = pid;
    for _ in 0..64 {
        if pid <= 1 {
            return None;
        }
        let a = snap.get(pid)?;
        if a.uid != 0 && a.uid != uid {
            pid = a.ppid;
            continue;
        }
        if is_supervisord(a) {
            return Some((pid, "supervisord"));
        }
        if is_pm2_god(a) {
            return Some((pid, "pm2"));
        }
        if supervise_name(a, b"runsv").is_some() {
            return Some((pid, "runsv"));
        }
        if supervise_name(a, b"s6-supervise").is_some() {
            return Some((pid, "s6"));
        }
        pid = a.ppid;
    }
    None
}

/// Read the cgroup and the named environment keys of the placed processes: all of them when
/// `all` (JSON and `ps` show every owner), else only those that can decide a finding (see
/// [`crate::attribution::second_look_pids`]) and the parents of those (the master of a tree).
pub fn collect(
    snap: &Snapshot,
    attr: &Attribution,
    deciding: &std::collections::HashSet<i32>,
    source: &mut dyn ProcSource,
    all: bool,
) -> Owners {
    let pids: Vec<i32> = if all {
        attr.placements.iter().map(|p| p.pid).collect()
    } else {
        let mut wanted = deciding.clone();
        let parents: Vec<i32> = wanted
            .iter()
            .filter_map(|pid| snap.get(*pid).map(|p| p.ppid))
            .filter(|pp| attr.get(*pp).is_some())
            .collect();
        wanted.extend(parents);
        let mut v: Vec<i32> = wanted.into_iter().collect();
        v.sort_unstable();
        v
    };
    collect_pids(snap, &pids, source)
}

/// Read the cgroup of the given processes, and the environment keys of those that a rule
/// needs them for (see [`env_keys`]), then resolve.
pub fn collect_pids(snap: &Snapshot, pids: &[i32], source: &mut dyn ProcSource) -> Owners {
    let mut decider = Decider::default();
    let nearest = std::cell::RefCell::new(Nearest::default());
    let keys = |pid: i32| -> &'static [&'static str] {
        match snap.get(pid) {
            Some(p) => keys_for(nearest.borrow_mut().of(snap, p), p),
            None => &[],
        }
    };
    let mut owners = Owners::with_capacity(pids.len());
    source.cgroup_and_env(pids, &keys, &mut |pid, reads| {
        decider.add(snap, &mut owners, pid, &reads);
    });
    owners.finish()
}

/// The environment keys a rule needs from `p`: the program's name below a supervisord, the
/// app's name and id below a PM2 God daemon, and `SUPERVISOR_ENABLED` directly under PID 1 (the
/// orphan rule). Any other process's environment is not read at all: it costs a read of the
/// process's memory and holds secrets (docs/SECURITY.md).
pub fn env_keys(snap: &Snapshot, p: &Process) -> &'static [&'static str] {
    keys_for(nearest_supervisor(snap, p), p)
}

fn keys_for(nearest: Option<(i32, &'static str)>, p: &Process) -> &'static [&'static str] {
    const SUPERVISORD: &[&str] = &[
        "SUPERVISOR_ENABLED",
        "SUPERVISOR_PROCESS_NAME",
        "SUPERVISOR_GROUP_NAME",
    ];
    const PM2: &[&str] = &["pm_id", "name", "pm_exec_path"];
    const ORPHAN: &[&str] = &["SUPERVISOR_ENABLED"];
    match nearest {
        Some((_, "supervisord")) => SUPERVISORD,
        Some((_, "pm2")) => PM2,
        _ if p.ppid == 1 => ORPHAN,
        _ => &[],
    }
}

/// Decide every owner from the snapshot and the extra reads. Pure; the tests' way in.
#[cfg(test)]
fn resolve(snap: &Snapshot, reads: HashMap<i32, CgroupAndEnv>) -> Owners {
    let mut owners = Owners::with_capacity(reads.len());
    let mut decider = Decider::default();
    for (pid, reads) in reads {
        decider.add(snap, &mut owners, pid, &reads);
    }
    owners.finish()
}

/// Decides owners one process at a time, so that a process's raw reads (environment values
/// among them) are dropped as soon as its owner is known, and never all held at once (the
/// reads of 20,000 processes were the peak of a scan's memory).
#[derive(Default)]
struct Decider {
    seen: HashMap<Owner, u32>,
    nearest: Nearest,
}

impl Decider {
    fn add(&mut self, snap: &Snapshot, owners: &mut Owners, pid: i32, reads: &CgroupAndEnv) {
        let Some(p) = snap.get(pid) else { return };
        // What could not be read decides as if nothing was there, as before; issue 17 acts on
        // the difference.
        let cgroup = reads.cgroup.as_ref().ok().and_then(Option::as_deref);
        let env = Env(reads.env.as_deref().unwrap_or_default());
        let unit = cgroup.and_then(unit_of_cgroup);
        // A container first: what runs inside it (a supervisord, its own units) is not the
        // host's to restart.
        let supervisor = match cgroup.and_then(container::of_cgroup) {
            Some(c) => Supervisor::Container(c),
            None => self.nearest_supervisor(snap, p, env, &unit),
        };
        let owner = Owner {
            supervisor,
            unit,
            supervisor_enabled: env.get("SUPERVISOR_ENABLED").is_some(),
        };
        owners.insert(pid, owner, &mut self.seen);
    }

    /// The supervisor nearest to `p` (see the module docs), or its systemd unit.
    fn nearest_supervisor(
        &mut self,
        snap: &Snapshot,
        p: &Process,
        env: Env<'_>,
        unit: &Option<UnitPath>,
    ) -> Supervisor {
        match self.nearest.of(snap, p) {
            Some((spid, "supervisord")) => Supervisor::Supervisord {
                pid: spid,
                program: program_name(env),
            },
            Some((god, "pm2")) => Supervisor::Pm2 {
                god,
                name: env.get("name").map(OsStr::to_os_string),
                id: env.get("pm_id").map(OsStr::to_os_string),
                exec_path: env.get("pm_exec_path").map(OsStr::to_os_string),
            },
            Some((spid, kind)) => {
                let a = snap.get(spid);
                let prog: &[u8] = if kind == "runsv" {
                    b"runsv"
                } else {
                    b"s6-supervise"
                };
                let service = a.and_then(|a| supervise_name(a, prog)).unwrap_or_default();
                if kind == "runsv" {
                    Supervisor::Runit { pid: spid, service }
                } else {
                    Supervisor::S6 { pid: spid, service }
                }
            }
            None => match unit {
                Some(u) if u.is_service() && !u.unit.starts_with("user@") => {
                    Supervisor::Systemd { unit: u.clone() }
                }
                Some(u) if u.is_session() => Supervisor::Session { unit: u.clone() },
                _ => Supervisor::None,
            },
        }
    }
}

/// The named environment keys read from one process.
#[derive(Clone, Copy)]
struct Env<'a>(&'a [(&'static str, OsString)]);

impl<'a> Env<'a> {
    fn get(self, key: &str) -> Option<&'a OsStr> {
        self.0
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_os_str())
    }
}

/// `GROUP:NAME`, which `supervisorctl` accepts for grouped and plain programs alike.
fn program_name(env: Env) -> Option<String> {
    let name = env.get("SUPERVISOR_PROCESS_NAME")?;
    let name = String::from_utf8_lossy(name.as_bytes()).into_owned();
    match env.get("SUPERVISOR_GROUP_NAME") {
        Some(g) => Some(format!("{}:{name}", String::from_utf8_lossy(g.as_bytes()))),
        None => Some(name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{Clock, LinkError};

    fn p(pid: i32, ppid: i32, args: &[&str]) -> Process {
        Process {
            pid,
            ppid,
            comm: args
                .first()
                .map(|a| a.as_bytes().to_vec())
                .unwrap_or_default()
                .into(),
            state: b'S',
            start_ticks: 1,
            uid: 1000,
            dir_ino: 0,
            kernel_thread: false,
            cmdline_truncated: false,
            cmdline: args.iter().map(OsString::from).collect(),
            cwd: Err(LinkError::Absent),
            exe: Err(LinkError::Absent),
            reaped: (0, 0),
        }
    }

    fn snap(mut ps: Vec<Process>) -> Snapshot {
        ps.sort_by_key(|p| p.pid);
        Snapshot::new(
            ps,
            Clock {
                ticks_per_second: 100,
                boot_epoch: 0.0,
                now: 0.0,
            },
            0,
            0,
        )
    }

    fn extra(cgroup: &str, env: &[(&'static str, &str)]) -> CgroupAndEnv {
        CgroupAndEnv {
            cgroup: Ok(Some(cgroup.as_bytes().to_vec())),
            env: Ok(env.iter().map(|(k, v)| (*k, OsString::from(v))).collect()),
        }
    }

    fn owner_of(s: &Snapshot, pid: i32, e: CgroupAndEnv) -> Owner {
        resolve(s, HashMap::from([(pid, e)]))
            .get(pid)
            .unwrap()
            .clone()
    }

    #[test]
    fn nearest_supervisor_wins_over_the_systemd_unit() {
        let s = snap(vec![
            p(10, 1, &["/usr/bin/python3", "/usr/bin/supervisord", "-n"]),
            p(11, 10, &["php", "artisan", "queue:work"]),
        ]);
        let o = owner_of(
            &s,
            11,
            extra(
                "/system.slice/supervisor.service",
                &[
                    ("SUPERVISOR_ENABLED", "1"),
                    ("SUPERVISOR_PROCESS_NAME", "queue_00"),
                    ("SUPERVISOR_GROUP_NAME", "queue"),
                ],
            ),
        );
        assert_eq!(o.kind(), "supervisord");
        assert_eq!(o.name().as_deref(), Some("queue:queue_00"));
        assert_eq!(o.supervisor_pid(), Some(10));
        assert_eq!(o.unit.as_ref().unwrap().unit, "supervisor.service");
        assert!(o.supervisor_enabled);
    }

    #[test]
    fn the_environment_is_read_only_where_a_rule_needs_it() {
        let s = snap(vec![
            p(10, 1, &["/usr/bin/python3", "/usr/bin/supervisord", "-n"]),
            p(11, 10, &["php", "artisan", "queue:work"]),
            p(20, 1, &["PM2 v5.3.0: God Daemon (/home/deploy/.pm2)"]),
            p(21, 20, &["node", "server.js"]),
            p(30, 1, &["php", "worker.php"]),
            p(31, 30, &["php", "worker.php"]),
            p(40, 1, &["runsv", "queue"]),
            p(41, 40, &["php", "worker.php"]),
        ]);
        let keys = |pid| env_keys(&s, s.get(pid).unwrap());
        assert!(keys(11).contains(&"SUPERVISOR_PROCESS_NAME"));
        assert_eq!(keys(21), ["pm_id", "name", "pm_exec_path"]);
        assert_eq!(
            keys(30),
            ["SUPERVISOR_ENABLED"],
            "under PID 1: the orphan rule"
        );
        assert!(keys(31).is_empty(), "a worker under a plain master");
        assert!(keys(41).is_empty(), "a runit service");
        for pid in [11, 21, 30, 31, 41] {
            assert!(keys(pid)
                .iter()
                .all(|k| crate::snapshot::ENV_KEYS.contains(k)));
        }
    }

    #[test]
    fn pm2_god_daemon_and_app_name() {
        let s = snap(vec![
            p(20, 1, &["PM2 v5.3.0: God Daemon (/home/deploy/.pm2)"]),
            p(21, 20, &["node /srv/api/current/server.js"]),
        ]);
        let o = owner_of(
            &s,
            21,
            extra(
                "/user.slice/user-1000.slice/session-2.scope",
                &[("pm_id", "0"), ("name", "api")],
            ),
        );
        assert_eq!(o.kind(), "pm2");
        assert_eq!(o.name().as_deref(), Some("api"));
        assert!(is_pm2_god(&s.processes[0]));
        assert!(!is_pm2_god(&p(1, 0, &["PM2 v5 worker"])));
    }

    #[test]
    fn runit_and_s6_services() {
        let s = snap(vec![
            p(30, 1, &["runsvdir", "-P", "/etc/service"]),
            p(31, 30, &["runsv", "queue"]),
            p(32, 31, &["php", "worker.php"]),
            p(40, 1, &["s6-supervise", "api"]),
            p(41, 40, &["node", "server.js"]),
        ]);
        let o = owner_of(&s, 32, CgroupAndEnv::default());
        assert_eq!(o.kind(), "runit");
        assert_eq!(o.name().as_deref(), Some("queue"));
        let o = owner_of(&s, 41, CgroupAndEnv::default());
        assert_eq!(o.kind(), "s6");
        assert_eq!(o.name().as_deref(), Some("api"));
    }

    #[test]
    fn processes_of_one_unit_share_one_owner() {
        let s = snap(vec![
            p(60, 1, &["php", "a"]),
            p(61, 1, &["php", "b"]),
            p(62, 1, &["php", "c"]),
        ]);
        let unit = |u: &str| extra(&format!("/system.slice/{u}"), &[]);
        let owners = resolve(
            &s,
            HashMap::from([
                (60, unit("q.service")),
                (61, unit("q.service")),
                (62, unit("r.service")),
            ]),
        );
        assert_eq!(owners.distinct.len(), 2);
        assert_eq!(owners.get(60), owners.get(61));
        assert_eq!(
            owners.get(62).and_then(Owner::name).as_deref(),
            Some("r.service")
        );
        assert_eq!(owners.get(63), None);
    }

    #[test]
    fn the_user_manager_itself_is_not_a_service_owner() {
        let s = snap(vec![p(50, 1, &["sleep", "1"])]);
        let o = owner_of(
            &s,
            50,
            extra(
                "/user.slice/user-1000.slice/user@1000.service/init.scope",
                &[],
            ),
        );
        assert_eq!(o.kind(), "none");
        let o = owner_of(&s, 50, extra("/", &[]));
        assert_eq!(o.kind(), "none");
    }

    /// Regression: any user's process titled `supervisord` (or `PM2 v5: God Daemon`, or
    /// `runsv X`) above their worker made root's remedy `supervisorctl restart all`. A
    /// supervisor counts only when it runs as root or as the worker's own uid (and then its
    /// commands run as that uid: see `remedy`).
    #[test]
    fn a_supervisor_counts_only_as_root_or_as_the_workers_uid() {
        let as_uid = |mut p: Process, uid| {
            p.uid = uid;
            p
        };
        let s = snap(vec![
            as_uid(p(10, 1, &["supervisord", "-n"]), 1001),
            as_uid(p(11, 10, &["php", "worker.php"]), 1000),
            as_uid(p(20, 1, &["PM2 v5.3.0: God Daemon (/home/u/.pm2)"]), 1001),
            as_uid(p(21, 20, &["node", "server.js"]), 1000),
            as_uid(p(30, 1, &["runsv", "all"]), 1001),
            as_uid(p(31, 30, &["php", "worker.php"]), 1000),
            as_uid(p(40, 1, &["supervisord", "-n"]), 0),
            as_uid(p(41, 40, &["php", "worker.php"]), 1000),
            as_uid(p(50, 1, &["supervisord", "-n"]), 1000),
            as_uid(p(51, 50, &["php", "worker.php"]), 1000),
            // The nearest that counts: a stranger's title between worker and root's.
            as_uid(p(60, 1, &["supervisord", "-n"]), 0),
            as_uid(p(61, 60, &["supervisord", "-n"]), 1001),
            as_uid(p(62, 61, &["php", "worker.php"]), 1000),
        ]);
        let named = || extra("/", &[("SUPERVISOR_PROCESS_NAME", "all"), ("name", "all")]);
        for pid in [11, 21, 31] {
            assert_eq!(owner_of(&s, pid, named()).kind(), "none", "pid {pid}");
            assert!(env_keys(&s, s.get(pid).unwrap()).is_empty(), "pid {pid}");
        }
        for (pid, supervisor) in [(41, 40), (51, 50), (62, 60)] {
            let o = owner_of(&s, pid, named());
            assert_eq!(o.kind(), "supervisord", "pid {pid}");
            assert_eq!(o.supervisor_pid(), Some(supervisor), "pid {pid}");
        }
    }
}
