//! Test builders: deploy roots, processes and snapshots made by hand, a /proc that answers as
//! told ([`Told`]), and the hostile [`Fixture`] behind the golden outputs in `tests/golden/`. Pure data: no /proc, no
//! filesystem (but [`bless_or_compare`], which rewrites a golden file when asked to).
//!
//! Clocks tick 100 times a second from a boot at the epoch, so a start time in seconds is
//! its ticks over 100.

use crate::attribution::Attribution;
use crate::exit::ExitCode;
use crate::findings::Finding;
use crate::layout::{Current, DeployRoot, Release};
use crate::owner::{Owner, Owners};
use crate::snapshot::{Clock, Link, LinkError, Process, Snapshot};
use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

pub(crate) fn os(b: &[u8]) -> OsString {
    OsString::from_vec(b.to_vec())
}

/// `current -> releases/NAME`.
pub(crate) fn current(release: &[u8]) -> Current {
    Current::Ok {
        release: os(release),
    }
}

/// App `name` deployed at `root`, with `releases/` holding `(name, inode)`, each created at
/// its inode number in seconds; no switch time and no owner.
pub(crate) fn root(
    name: &str,
    root: &[u8],
    current: Current,
    releases: &[(&[u8], u64)],
) -> DeployRoot {
    let root = PathBuf::from(os(root));
    let dir = root.join("releases");
    let mut releases: Vec<Release> = releases
        .iter()
        .map(|(n, ino)| Release {
            name: os(n),
            path: dir.join(os(n)),
            dev: 1,
            ino: *ino,
            created: Some(*ino as f64),
        })
        .collect();
    releases.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    DeployRoot {
        name: name.into(),
        link: root.join("current"),
        releases_dir: Some(dir.clone()),
        current,
        switch_time: None,
        releases,
        truncated: false,
        owner_uid: None,
        releases_spellings: vec![dir],
        link_spellings: vec![root.join("current")],
        releases_rel: None,
        log: None,
        seen: Vec::new(),
        root,
    }
}

/// A link read from /proc (cwd, exe): its target, the inode it names, and that inode's link
/// count (0: deleted).
pub(crate) fn link(target: &[u8], ino: u64, nlink: u32) -> Result<Link, LinkError> {
    Ok(Link {
        target: os(target).into(),
        dev: 1,
        ino,
        nlink,
    })
}

/// A sleeping process of uid 1000 started `started` seconds after boot, running
/// `/usr/bin/php8.2`, its comm the first word of `cmdline`.
pub(crate) fn process(
    pid: i32,
    ppid: i32,
    cwd: Result<Link, LinkError>,
    started: f64,
    cmdline: &[&str],
) -> Process {
    Process {
        pid,
        ppid,
        comm: cmdline[0].as_bytes().to_vec().into(),
        state: b'S',
        start_ticks: (started * 100.0).round() as u64,
        uid: 1000,
        dir_ino: 0,
        kernel_thread: false,
        cmdline_truncated: false,
        cmdline: cmdline.iter().collect(),
        cwd,
        exe: link(b"/usr/bin/php8.2", 99, 1),
        reaped: (0, 0),
    }
}

/// A snapshot of `processes` taken at `now` (seconds since the epoch) by pid 9999.
pub(crate) fn snapshot(mut processes: Vec<Process>, now: f64) -> Snapshot {
    processes.sort_by_key(|p| p.pid);
    let clock = Clock {
        ticks_per_second: 100,
        boot_epoch: 0.0,
        now,
    };
    Snapshot::new(processes, clock, 9999, 0)
}

/// Compare with a golden file, or rewrite it when `RELWATCH_BLESS` is set.
pub(crate) fn bless_or_compare(file: &str, golden: &str, out: &str) {
    if std::env::var_os("RELWATCH_BLESS").is_some() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/golden")
            .join(file);
        std::fs::write(&path, out).unwrap();
        return;
    }
    if golden != out {
        for (i, (g, o)) in golden.lines().zip(out.lines()).enumerate() {
            if g != o {
                panic!(
                    "tests/golden/{file} differs at line {}:\n  golden: {g}\n  output: {o}\n\n(RELWATCH_BLESS=1 cargo test report:: rewrites it)",
                    i + 1
                );
            }
        }
        panic!(
            "tests/golden/{file} differs in length: golden {} lines, output {} lines\n{out}",
            golden.lines().count(),
            out.lines().count()
        );
    }
}

/// The scan behind the golden outputs of every renderer. Three apps, every name hostile:
/// - app `shop`: a master and two workers on deleted release `65|x"\`, two processes on old
///   release `66\xff` (invalid UTF-8), a singleton role `beat|sched` running twice, a role
///   `worker` with one of three instances, and a zombie;
/// - an app whose name holds `"`, `|`, a newline, ESC and a backslash, under a root path with
///   ESC and `|`, with a dangling `current` link and a process it may not read;
/// - app `nl` whose current release is named with a newline, a bidi override and `|`.
///
/// Regenerate the golden files after an intended change with
/// `RELWATCH_BLESS=1 cargo test report::` and review the diff.
pub(crate) struct Fixture {
    pub roots: Vec<DeployRoot>,
    pub snap: Snapshot,
    pub attr: Attribution,
    pub owners: Owners,
    pub findings: Vec<Finding>,
    pub exit: ExitCode,
}

/// When `shop`'s current link was switched.
const SWITCH: f64 = 1_000_000_000.0;

impl Fixture {
    pub fn new() -> Self {
        Self::with_owners(Vec::new())
    }

    /// The fixture with these owners (pid, owner): the remedies and labels of each kind of
    /// supervisor.
    pub fn with_owners(owners: Vec<(i32, Owner)>) -> Self {
        Self::with(owners, |_| {})
    }

    /// The fixture with these owners, after `edit` has changed its processes.
    pub fn with(owners: Vec<(i32, Owner)>, edit: impl FnOnce(&mut Vec<Process>)) -> Self {
        let roots = vec![
            DeployRoot {
                switch_time: Some(SWITCH),
                // The deploy user: its processes (uid 1000) can fill the roles.
                owner_uid: Some(1000),
                ..root(
                    "shop",
                    b"/srv/shop",
                    current(b"67"),
                    &[(b"66\xff", 66), (b"67", 67)],
                )
            },
            DeployRoot {
                switch_time: Some(SWITCH - 86_400.0),
                owner_uid: Some(1001),
                ..root(
                    "evil\"|app\n\x1b[31m\\",
                    b"/srv/evil\x1b[2J|\"",
                    Current::Dangling {
                        target: "releases/9".into(),
                    },
                    &[(b"8", 8)],
                )
            },
            DeployRoot {
                switch_time: Some(SWITCH - 7_200.0),
                ..root(
                    "nl",
                    b"/srv/nl",
                    current("7\n\u{202e}|x".as_bytes()),
                    &[("7\n\u{202e}|x".as_bytes(), 7)],
                )
            },
        ];
        let mut processes = Self::processes();
        edit(&mut processes);
        let snap = snapshot(processes, SWITCH + 3_600.5);
        let settings = Self::settings();
        let mut attr = crate::attribution::attribute(&roots, &snap);
        crate::attribution::apply_settings(&mut attr, &snap, &settings);
        // Every zombie of the fixture is taken as confirmed by a second look.
        attr.lasting_zombies = snap
            .processes
            .iter()
            .filter(|p| p.is_zombie())
            .map(|p| p.pid)
            .collect();
        let owners = Owners::from_list(owners);
        let findings = crate::findings::evaluate(&crate::findings::Input {
            roots: &roots,
            snap: &snap,
            attr: &attr,
            owners: &owners,
            settings: &settings,
            history: None,
        });
        let exit = ExitCode::from_worst(crate::findings::worst(&findings));
        Fixture {
            roots,
            snap,
            attr,
            owners,
            findings,
            exit,
        }
    }

    fn processes() -> Vec<Process> {
        let gone = || link(b"/srv/shop/releases/65|x\"\\ (deleted)", 65, 0);
        let old = || link(b"/srv/shop/releases/66\xff", 66, 2);
        let cur = || link(b"/srv/shop/releases/67", 67, 2);
        let before = SWITCH - 90_000.0;
        let after = SWITCH + 10.0;
        let zombie = Process {
            state: b'Z',
            exe: Err(LinkError::Absent),
            cmdline: Default::default(),
            ..process(302, 300, Err(LinkError::Absent), after + 5.0, &["php"])
        };
        let denied = |pid, uid, name| Process {
            uid,
            exe: Err(LinkError::Denied),
            ..process(pid, 1, Err(LinkError::Denied), before, &[name])
        };
        vec![
            process(1, 0, link(b"/", 2, 20), 0.0, &["/sbin/init"]),
            process(100, 1, gone(), before, &["queue-master", "--pid=7"]),
            process(101, 100, gone(), before + 1.0, &["queue-worker"]),
            process(102, 100, gone(), before + 2.0, &["queue-worker"]),
            process(200, 1, old(), before + 3.0, &["php", "worker.php"]),
            process(201, 1, old(), before + 4.0, &["celery", "beat"]),
            process(300, 1, cur(), after, &["php", "artisan", "queue:work"]),
            process(301, 1, cur(), after + 1.0, &["celery", "beat"]),
            zombie,
            denied(400, 1001, "secret"),
            denied(401, 0, "sshd"),
            process(
                500,
                1,
                link("/srv/nl/releases/7\n\u{202e}|x".as_bytes(), 7, 2),
                SWITCH,
                &["node", "server.js"],
            ),
        ]
    }

    /// No grace anywhere; `shop` has a singleton `beat|sched` and wants three `worker`s.
    fn settings() -> crate::settings::Settings {
        let role = |name: &str, pattern: &str, min, max, singleton| crate::config::Role {
            name: name.into(),
            pattern: regex::Regex::new(pattern).unwrap(),
            min,
            max,
            singleton,
        };
        let none = || crate::settings::AppSettings::with_grace(std::time::Duration::ZERO);
        let mut shop = none();
        shop.roles = vec![
            role("beat|sched", "celery beat", None, Some(1), true),
            role("worker", "queue:work", Some(3), None, false),
        ];
        crate::settings::Settings {
            apps: vec![shop, none(), none()],
        }
    }

    /// Nothing to watch: no deploy root, one process.
    pub fn empty() -> Self {
        let snap = snapshot(
            vec![process(1, 0, link(b"/", 2, 20), 0.0, &["/sbin/init"])],
            SWITCH,
        );
        Fixture {
            roots: Vec::new(),
            attr: crate::attribution::attribute(&[], &snap),
            snap,
            owners: Owners::default(),
            findings: Vec::new(),
            exit: ExitCode::Ok,
        }
    }

    pub fn report(&self) -> crate::report::Report<'_> {
        crate::report::Report {
            roots: &self.roots,
            snap: &self.snap,
            attr: &self.attr,
            owners: &self.owners,
            findings: &self.findings,
            exit: self.exit,
            scan_seconds: 0.0425,
        }
    }
}

/// An owner: `supervisor`, in the systemd unit `unit` (a system unit) when given.
pub(crate) fn owner(supervisor: crate::owner::Supervisor, unit: Option<&str>) -> Owner {
    Owner {
        supervisor,
        unit: unit.map(|u| system_unit(u, None)),
        supervisor_enabled: false,
    }
}

/// A systemd unit; of the user manager of `user` when given.
pub(crate) fn system_unit(name: &str, user: Option<u32>) -> crate::owner::unit::UnitPath {
    crate::owner::unit::UnitPath {
        unit: name.into(),
        user,
    }
}

/// An edit for [`Fixture::with`]: process `pid` runs with the command line `title`.
pub(crate) fn retitle(pid: i32, title: &str) -> impl FnOnce(&mut Vec<Process>) + '_ {
    move |procs| {
        for p in procs.iter_mut().filter(|p| p.pid == pid) {
            p.cmdline = [title].into_iter().collect();
        }
    }
}

/// A /proc whose reads about single processes answer as told: `fds` (open files) and `looks`
/// (second looks) per pid, and by default what a /proc of `snap` would say (every process
/// there and the same, ours, with no files open).
pub(crate) struct Told {
    pub snap: Snapshot,
    pub fds: Vec<(i32, Result<Vec<OsString>, crate::snapshot::ReadError>)>,
    pub looks: Vec<(
        i32,
        Result<crate::snapshot::SeenAgain, crate::snapshot::ReadError>,
    )>,
    /// Pids whose reaped children's counters have grown by one since the snapshot.
    pub reaping: Vec<i32>,
    /// The pids `stat` was asked about, in order.
    pub stats: Vec<i32>,
}

impl Told {
    pub fn new(snap: &Snapshot) -> Told {
        Told {
            snap: snap.clone(),
            fds: Vec::new(),
            looks: Vec::new(),
            reaping: Vec::new(),
            stats: Vec::new(),
        }
    }
}

impl crate::snapshot::ProcSource for Told {
    fn snapshot(&mut self) -> std::io::Result<Snapshot> {
        Ok(self.snap.clone())
    }
    fn stat(&mut self, pid: i32) -> Result<crate::snapshot::PidStat, crate::snapshot::ReadError> {
        self.stats.push(pid);
        let p = self.snap.get(pid).ok_or(crate::snapshot::ReadError::Gone)?;
        let grown = u64::from(self.reaping.contains(&pid));
        Ok(crate::snapshot::PidStat {
            state: p.state,
            start_ticks: p.start_ticks,
            reaped_faults: p.reaped.0 + grown,
            reaped_ticks: p.reaped.1,
        })
    }
    fn foreign_mount_ns(&mut self, _: i32) -> Result<bool, crate::snapshot::ReadError> {
        Ok(false)
    }
    fn look_again(
        &mut self,
        seen: crate::snapshot::ProcessSeen,
    ) -> Result<crate::snapshot::SeenAgain, crate::snapshot::ReadError> {
        let told = self.looks.iter().find(|(p, _)| *p == seen.pid);
        told.map_or(Ok(crate::snapshot::SeenAgain::Same), |(_, r)| *r)
    }
    fn cgroup_and_env(
        &mut self,
        _: &[i32],
        _: &dyn Fn(i32) -> &'static [&'static str],
        _: &mut dyn FnMut(i32, crate::snapshot::CgroupAndEnv),
    ) {
    }
    fn open_files(&mut self, pid: i32) -> Result<Vec<OsString>, crate::snapshot::ReadError> {
        let told = self.fds.iter().find(|(p, _)| *p == pid);
        told.map_or(Ok(Vec::new()), |(_, r)| r.clone())
    }
    fn mapped_files(
        &mut self,
        _: i32,
        _: &dyn Fn(&[u8]) -> bool,
    ) -> Result<Vec<OsString>, crate::snapshot::ReadError> {
        Ok(Vec::new())
    }
}
