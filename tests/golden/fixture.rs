// The scan behind the golden tests of src/report/nagios.rs and src/report/prometheus.rs,
// included into their test modules with `include!` (it is not a test target of its own).
//
// Three apps, every name hostile:
// - app `shop`: a master and two workers on deleted release `65|x"\`, two processes on old
//   release `66\xff` (invalid UTF-8), a singleton role `beat|sched` running twice, a role
//   `worker` with one of three instances, and a zombie;
// - an app whose name holds `"`, `|`, a newline, ESC and a backslash, under a root path with
//   ESC and `|`, with a dangling `current` link and a process it may not read;
// - app `nl` whose current release is named with a newline, a bidi override and `|`.
//
// Regenerate the golden files after an intended change with
// `RELWATCH_BLESS=1 cargo test report::` and review the diff.

struct Fixture {
    roots: Vec<crate::layout::DeployRoot>,
    snap: crate::snapshot::Snapshot,
    attr: crate::attribution::Attribution,
    owners: crate::owner::Owners,
    findings: Vec<crate::findings::Finding>,
    exit: crate::exit::ExitCode,
}

const SWITCH: f64 = 1_000_000_000.0;

fn fx_os(b: &[u8]) -> std::ffi::OsString {
    use std::os::unix::ffi::OsStringExt;
    std::ffi::OsString::from_vec(b.to_vec())
}

fn fx_root(
    name: &str,
    root: &[u8],
    current: crate::layout::Current,
    releases: &[(&[u8], u64)],
    owner_uid: Option<u32>,
    switch_time: f64,
) -> crate::layout::DeployRoot {
    let root = std::path::PathBuf::from(fx_os(root));
    let dir = root.join("releases");
    let mut releases: Vec<crate::layout::Release> = releases
        .iter()
        .map(|(n, ino)| crate::layout::Release {
            name: fx_os(n),
            path: dir.join(fx_os(n)),
            dev: 1,
            ino: *ino,
            created: Some(*ino as f64),
        })
        .collect();
    releases.sort_by(|a, b| {
        use std::os::unix::ffi::OsStrExt;
        a.name.as_bytes().cmp(b.name.as_bytes())
    });
    crate::layout::DeployRoot {
        name: name.into(),
        link: root.join("current"),
        releases_dir: Some(dir.clone()),
        current,
        switch_time: Some(switch_time),
        releases,
        truncated: false,
        owner_uid,
        releases_spellings: vec![dir],
        link_spellings: vec![root.join("current")],
        releases_rel: None,
        root,
    }
}

fn fx_link(
    target: &[u8],
    ino: u64,
    nlink: u32,
) -> Result<crate::snapshot::Link, crate::snapshot::LinkError> {
    Ok(crate::snapshot::Link {
        target: fx_os(target).into(),
        dev: 1,
        ino,
        nlink,
    })
}

fn fx_proc(
    pid: i32,
    ppid: i32,
    cwd: Result<crate::snapshot::Link, crate::snapshot::LinkError>,
    started: f64,
    cmdline: &[&str],
) -> crate::snapshot::Process {
    crate::snapshot::Process {
        pid,
        ppid,
        comm: cmdline[0].as_bytes().to_vec().into(),
        state: b'S',
        start_ticks: (started * 100.0) as u64,
        uid: 1000,
        dir_ino: 0,
        kernel_thread: false,
        cmdline: cmdline.iter().collect(),
        cwd,
        exe: fx_link(b"/usr/bin/php8.2", 99, 1),
    }
}

impl Fixture {
    fn new() -> Self {
        Self::with_owners(Vec::new())
    }

    /// The fixture with these owners (pid, owner): the remedies and labels of each kind of
    /// supervisor.
    #[allow(dead_code)]
    fn with_owners(owners: Vec<(i32, crate::owner::Owner)>) -> Self {
        Self::with(owners, |_| {})
    }

    /// The fixture with these owners, after `edit` has changed its processes.
    fn with(
        owners: Vec<(i32, crate::owner::Owner)>,
        edit: impl FnOnce(&mut Vec<crate::snapshot::Process>),
    ) -> Self {
        use crate::layout::Current;
        use crate::snapshot::LinkError;
        let roots = vec![
            fx_root(
                "shop",
                b"/srv/shop",
                Current::Ok {
                    release: "67".into(),
                },
                &[(b"66\xff", 66), (b"67", 67)],
                None,
                SWITCH,
            ),
            fx_root(
                "evil\"|app\n\x1b[31m\\",
                b"/srv/evil\x1b[2J|\"",
                Current::Dangling {
                    target: "releases/9".into(),
                },
                &[(b"8", 8)],
                Some(1001),
                SWITCH - 86_400.0,
            ),
            fx_root(
                "nl",
                b"/srv/nl",
                Current::Ok {
                    release: fx_os("7\n\u{202e}|x".as_bytes()),
                },
                &[("7\n\u{202e}|x".as_bytes(), 7)],
                None,
                SWITCH - 7_200.0,
            ),
        ];
        let gone = || fx_link(b"/srv/shop/releases/65|x\"\\ (deleted)", 65, 0);
        let old = || fx_link(b"/srv/shop/releases/66\xff", 66, 2);
        let cur = || fx_link(b"/srv/shop/releases/67", 67, 2);
        let before = SWITCH - 90_000.0;
        let after = SWITCH + 10.0;
        let mut zombie = fx_proc(302, 300, Err(LinkError::Absent), after + 5.0, &["php"]);
        zombie.state = b'Z';
        zombie.exe = Err(LinkError::Absent);
        zombie.cmdline = Default::default();
        let mut denied = fx_proc(400, 1, Err(LinkError::Denied), before, &["secret"]);
        denied.uid = 1001;
        denied.exe = Err(LinkError::Denied);
        let mut denied_elsewhere = fx_proc(401, 1, Err(LinkError::Denied), before, &["sshd"]);
        denied_elsewhere.uid = 0;
        denied_elsewhere.exe = Err(LinkError::Denied);
        let mut processes = vec![
            fx_proc(1, 0, fx_link(b"/", 2, 20), 0.0, &["/sbin/init"]),
            fx_proc(100, 1, gone(), before, &["queue-master", "--pid=7"]),
            fx_proc(101, 100, gone(), before + 1.0, &["queue-worker"]),
            fx_proc(102, 100, gone(), before + 2.0, &["queue-worker"]),
            fx_proc(200, 1, old(), before + 3.0, &["php", "worker.php"]),
            fx_proc(201, 1, old(), before + 4.0, &["celery", "beat"]),
            fx_proc(300, 1, cur(), after, &["php", "artisan", "queue:work"]),
            fx_proc(301, 1, cur(), after + 1.0, &["celery", "beat"]),
            zombie,
            denied,
            denied_elsewhere,
            fx_proc(
                500,
                1,
                fx_link("/srv/nl/releases/7\n\u{202e}|x".as_bytes(), 7, 2),
                SWITCH,
                &["node", "server.js"],
            ),
        ];
        edit(&mut processes);
        processes.sort_by_key(|p| p.pid);
        let snap = crate::snapshot::Snapshot::new(
            processes,
            crate::snapshot::Clock {
                ticks_per_second: 100,
                boot_epoch: 0.0,
                now: SWITCH + 3_600.5,
            },
            9999,
            0,
        );
        let role = |name: &str, pattern: &str, min, max, singleton| crate::config::Role {
            name: name.into(),
            pattern: regex::Regex::new(pattern).unwrap(),
            min,
            max,
            singleton,
        };
        let grace = std::time::Duration::ZERO;
        let mut shop = crate::settings::AppSettings::with_grace(grace);
        shop.roles = vec![
            role("beat|sched", "celery beat", None, Some(1), true),
            role("worker", "queue:work", Some(3), None, false),
        ];
        let settings = crate::settings::Settings {
            apps: vec![
                shop,
                crate::settings::AppSettings::with_grace(grace),
                crate::settings::AppSettings::with_grace(grace),
            ],
        };
        let mut attr = crate::attribution::attribute(&roots, &snap);
        crate::attribution::apply_settings(&mut attr, &snap, &settings);
        // Every zombie of the fixture is taken as confirmed by a second look.
        attr.lasting_zombies = snap
            .processes
            .iter()
            .filter(|p| p.is_zombie())
            .map(|p| p.pid)
            .collect();
        let owners = crate::owner::Owners::from_list(owners);
        let findings = crate::findings::evaluate(&crate::findings::Input {
            roots: &roots,
            snap: &snap,
            attr: &attr,
            owners: &owners,
            settings: &settings,
            history: None,
        });
        let exit = crate::exit::ExitCode::from_worst(crate::findings::worst(&findings));
        Fixture {
            roots,
            snap,
            attr,
            owners,
            findings,
            exit,
        }
    }

    /// Nothing to watch: no deploy root, one process.
    fn empty() -> Self {
        let snap = crate::snapshot::Snapshot::new(
            vec![fx_proc(1, 0, fx_link(b"/", 2, 20), 0.0, &["/sbin/init"])],
            crate::snapshot::Clock {
                ticks_per_second: 100,
                boot_epoch: 0.0,
                now: SWITCH,
            },
            9999,
            0,
        );
        Fixture {
            roots: Vec::new(),
            attr: crate::attribution::attribute(&[], &snap),
            snap,
            owners: crate::owner::Owners::default(),
            findings: Vec::new(),
            exit: crate::exit::ExitCode::Ok,
        }
    }

    fn report(&self) -> crate::report::Report<'_> {
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

/// Compare with a golden file, or rewrite it when `RELWATCH_BLESS` is set.
fn bless_or_compare(file: &str, golden: &str, out: &str) {
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
