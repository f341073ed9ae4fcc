//! The agent degrades, never dies (issue 18, item 7): under a low open files limit, with more
//! processes to watch than it may hold pidfds for, with deploy roots deleted and recreated,
//! two roots of one name, constant churn and thousands of roots. Real processes and the built
//! binary; every agent gets an hour between full rescans, so what it reports came from an
//! event, a poll or a wake-up, not from its interval.

mod util;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::PathBuf;
use std::process::Command;
use util::*;

/// `relwatch watch ARGS...` started through `prlimit --nofile=LIMIT:LIMIT` (soft and hard: the
/// agent cannot raise it), its stderr in a file. Ended by its pid when dropped.
struct Agent {
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
    _textfile: Option<tempfile::TempDir>,
}

impl Agent {
    fn start(nofile: Option<u32>, args: &[&std::ffi::OsStr]) -> Agent {
        let dir = tempdir();
        let log = dir.path().join("stderr");
        let mut cmd = Command::new("prlimit");
        if let Some(n) = nofile {
            cmd.arg(format!("--nofile={n}:{n}"));
        }
        cmd.arg("sh")
            .arg("-c")
            .arg("exec \"$@\" 2>\"$LOG\"")
            .arg("sh")
            .arg(env!("CARGO_BIN_EXE_relwatch"))
            .arg("watch")
            .args(args)
            .env("LOG", &log)
            .env("NO_COLOR", "1")
            .current_dir("/");
        let child = Child::spawn(&mut cmd);
        let agent = Agent {
            child,
            log,
            _dir: dir,
            _textfile: None,
        };
        agent.wait_for("full rescan every");
        agent
    }

    /// `watch ROOT --interval 1h EXTRA... --textfile DIR`; the agent and DIR/relwatch.prom.
    fn with_textfile(nofile: Option<u32>, root: &DeployRoot, extra: &[&str]) -> (Agent, PathBuf) {
        let dir = tempdir();
        let mut args: Vec<&std::ffi::OsStr> = vec![os(root.path()), os("--interval"), os("1h")];
        args.extend(extra.iter().map(os));
        args.extend([os("--textfile"), os(dir.path())]);
        let mut agent = Agent::start(nofile, &args);
        let prom = dir.path().join("relwatch.prom");
        agent._textfile = Some(dir);
        (agent, prom)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls the log until it holds `needle`, checking that the agent still runs.
    fn wait_for(&self, needle: &str) -> String {
        let start = std::time::Instant::now();
        loop {
            let log = self.log();
            if log.contains(needle) {
                return log;
            }
            assert!(self.alive(), "the agent exited:\n{log}");
            assert!(
                start.elapsed() < DEADLINE,
                "the agent did not log {needle:?} within {DEADLINE:?}:\n{log}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    fn alive(&self) -> bool {
        std::fs::read_to_string(format!("/proc/{}/stat", self.child.pid())).is_ok_and(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
    }

    /// SIGTERM; the agent must end cleanly.
    fn stop(self) -> String {
        kill(Pid::from_raw(self.child.pid()), Signal::SIGTERM).expect("SIGTERM the agent");
        self.wait_for("stopping on SIGTERM")
    }
}

/// The `relwatch_last_scan_timestamp_seconds` line of a textfile: a new one per scan.
fn last_scan(prom: &std::path::Path) -> Option<String> {
    std::fs::read_to_string(prom).ok().and_then(|t| {
        t.lines()
            .find(|l| l.starts_with("relwatch_last_scan_timestamp_seconds "))
            .map(str::to_string)
    })
}

fn os<S: AsRef<std::ffi::OsStr> + ?Sized>(s: &S) -> &std::ffi::OsStr {
    s.as_ref()
}

fn can_run() -> bool {
    if !nix::unistd::geteuid().is_root() {
        skip("the agent's degrade tests run as root (pidfds and /proc of every process)");
        return false;
    }
    true
}

/// 1,100 processes on an old release and an agent limited to 256 open files: it holds at
/// most 128 pidfds, polls the rest (said once), keeps scanning, reports them all, and sees
/// them end. Before, it opened a pidfd for each, hit the limit and exited on its next scan.
#[test]
fn eleven_hundred_old_processes_under_a_low_open_files_limit() {
    if !can_run() {
        return;
    }
    let root = DeployRoot::new();
    let r1 = root.release("1");
    root.switch("1");
    let master = Child::master_with_workers(&r1, 1100);
    root.release("2");
    root.switch("2");
    let (agent, prom) = Agent::with_textfile(Some(256), &root, &["--grace", "1h"]);
    let log = agent.wait_for("by reading their stat every 1s");
    assert!(log.contains("at most 128 pidfds"), "{log}");
    assert!(log.contains("watching 1101 processes"), "{log}");
    // Something that wakes the agent: a deploy. It scans again, and keeps running.
    root.release("3");
    root.switch("3");
    poll("the textfile to name release 3", || {
        std::fs::read_to_string(&prom)
            .ok()
            .filter(|t| t.contains("release=\"3\"} 1"))
    });
    drop(master);
    // Their exits are seen by the polling (no pidfd for most), not the interval.
    let log = agent.wait_for("cleared old-release");
    assert!(!log.contains("vanished"), "{log}");
    assert_eq!(
        log.matches("by reading their stat").count(),
        1,
        "said once: {log}"
    );
    let log = agent.stop();
    assert!(!log.contains("scan failed"), "{log}");
}

/// The agent's open files limit lowered, while it runs, to what it holds: its next scan cannot
/// read /proc. It says why (UNKNOWN), writes the error textfile (`relwatch_error 1`), keeps
/// running, and once the limit is raised again its next scan works and says so. Never
/// "vanished" processes, never OK while blind.
#[test]
fn out_of_file_descriptors_is_an_error_reported_not_an_exit() {
    if !can_run() {
        return;
    }
    let root = DeployRoot::new();
    let r1 = root.release("1");
    root.switch("1");
    let _worker = Child::sleep_in(&r1);
    root.release("2");
    root.switch("2");
    let (agent, prom) = Agent::with_textfile(None, &root, &[]);
    agent.wait_for("appeared INFO old-release");
    let pid = agent.child.pid().to_string();
    // The soft limit only: raising the hard one again would need CAP_SYS_RESOURCE.
    let limit = |n: usize| {
        let run = run_program(
            "prlimit",
            vec![
                "--pid".into(),
                pid.clone().into(),
                format!("--nofile={n}:").into(),
            ],
        );
        assert_eq!(run.code, 0, "{run}");
    };
    let held = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("the agent's fds")
        .count();
    limit(held);
    root.release("3");
    root.switch("3");
    let log = agent.wait_for("scan failed");
    assert!(
        log.contains("Too many open files") || log.contains("out of file descriptors"),
        "{log}"
    );
    poll("the error textfile", || {
        std::fs::read_to_string(&prom)
            .ok()
            .filter(|t| t.contains("relwatch_error 1") && t.contains("relwatch_exit_code 3"))
    });
    limit(1024);
    root.release("4");
    root.switch("4");
    let log = agent.wait_for("scans work again");
    assert!(!log.contains("vanished"), "{log}");
    poll("the textfile of a scan that worked", || {
        std::fs::read_to_string(&prom)
            .ok()
            .filter(|t| t.contains("relwatch_error 0"))
    });
    agent.stop();
}

/// Two deploy roots of one app name (`shop`), both with a broken `current`: two findings,
/// each logged with its root; fixing one clears that one only. Before, findings were keyed
/// by app name: the second was never logged, and the first's clear hid the other.
#[test]
fn two_roots_of_one_name_are_logged_apart() {
    let a = DeployRoot::named("shop");
    let b = DeployRoot::named("shop");
    for root in [&a, &b] {
        root.release("1");
        root.point_current_at("releases/9");
    }
    let agent = Agent::start(
        None,
        &[os(a.path()), os(b.path()), os("--interval"), os("1h")],
    );
    let appeared = |log: &str, root: &DeployRoot| {
        log.lines().any(|l| {
            l.contains("appeared CRITICAL broken-current app=shop")
                && l.contains(&format!("root={}:", root.path().display()))
        })
    };
    let log = poll("both broken roots logged", || {
        let log = agent.log();
        (appeared(&log, &a) && appeared(&log, &b)).then_some(log)
    });
    assert_eq!(
        log.matches("appeared CRITICAL broken-current").count(),
        2,
        "{log}"
    );
    a.switch("1");
    let log = agent.wait_for("cleared broken-current");
    let cleared: Vec<&str> = log.lines().filter(|l| l.contains("cleared")).collect();
    assert_eq!(
        cleared,
        [format!(
            "relwatch: cleared broken-current app=shop root={}",
            a.path().display()
        )],
        "{log}"
    );
    agent.stop();
}

/// A deploy root deleted, then created again by a rename into place with a process already
/// on its old release: the agent (an hour between full rescans) reports it at once, from the
/// watch on the root's parent. Before, the root's own watches died with it and nothing was
/// seen until the interval.
#[test]
fn a_root_deleted_and_created_again_is_seen_at_once() {
    let root = DeployRoot::new();
    root.release("1");
    root.switch("1");
    let (agent, prom) = Agent::with_textfile(None, &root, &["--grace", "1h"]);
    let last_scan = || last_scan(&prom);
    let before = poll("the first scan's textfile", last_scan);
    std::fs::remove_dir_all(root.path()).expect("delete the root");
    // The agent has scanned the root's absence (and watched what is left) before it comes back.
    poll("a scan after the delete", || {
        last_scan().filter(|l| *l != before)
    });
    // The new root, built beside (the same file system) and renamed into place.
    let staged = DeployRoot::new();
    let r1 = staged.release("1");
    staged.release("2");
    staged.switch("2");
    let worker = Child::sleep_in(&r1);
    std::fs::rename(staged.path(), root.path()).expect("rename the new root into place");
    let log = agent.wait_for("appeared INFO old-release");
    assert!(log.contains(&format!("pid {}", worker.pid())), "{log}");
    agent.stop();
}

/// A user churns a deploy root (a file created and removed 100 times a second, 8 s long): the
/// agent says so once and rescans for it at most every 5 s, not five times a second. Scans are
/// counted from the textfile's scan timestamp, read every 20 ms.
#[test]
fn constant_churn_in_a_root_is_rescanned_at_most_every_few_seconds() {
    let root = DeployRoot::new();
    root.release("1");
    root.switch("1");
    let (agent, prom) = Agent::with_textfile(None, &root, &[]);
    let junk = root.path().join("junk");
    let _churn = Child::spawn(Command::new("python3").arg("-c").arg(format!(
        "import os, time\nwhile True:\n    open({junk:?}, 'w').close()\n    os.unlink({junk:?})\n    time.sleep(0.01)\n"
    )));
    let mut scans = std::collections::BTreeSet::new();
    let start = std::time::Instant::now();
    while start.elapsed() < std::time::Duration::from_secs(8) {
        if let Some(line) = last_scan(&prom) {
            scans.insert(line);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let log = agent.log();
    assert_eq!(
        log.matches("changes constantly").count(),
        1,
        "said once: {log}"
    );
    // The first scan, a few before the churn passes the limit, then one every 5 s.
    assert!(
        scans.len() <= 7,
        "{} scans in 8 s of churn: {log}",
        scans.len()
    );
    eprintln!("{} scans in 8 s of churn", scans.len());
    agent.stop();
}

/// Short-lived processes started on an old release, 20 a second for 8 s (each its own
/// finding: their parent is outside the app): the log summarises them instead of a line per
/// process and stays within its budget of 20 lines per kind and root a minute. Before, each
/// process was an "appeared" line and a "cleared" line.
#[test]
fn churn_on_an_old_release_is_summarised_not_logged_line_by_line() {
    let root = DeployRoot::new();
    let r1 = root.release("1");
    root.release("2");
    root.switch("2");
    let agent = Agent::start(
        None,
        &[
            os(root.path()),
            os("--interval"),
            os("1h"),
            os("--grace"),
            os("0s"),
        ],
    );
    let spawner = Child::spawn(Command::new("python3").current_dir("/").arg("-c").arg(format!(
        "import subprocess, time\nfor i in range(160):\n    subprocess.Popen(['sleep', '0.5'], cwd={r1:?})\n    time.sleep(0.05)\ntime.sleep(1000)\n"
    )));
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_secs(9) {
        assert!(agent.alive(), "{}", agent.log());
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    drop(spawner);
    let log = agent.stop();
    let lines = log.lines().filter(|l| l.contains("old-release")).count();
    // The budget's 20, and at stop the line that says how many it left out.
    assert!(
        lines <= 21,
        "{lines} old-release lines for 160 processes:\n{log}"
    );
    // One restart loop (their parent restarts nothing, but they end young): one line, not
    // one per scan as its pids change.
    assert!(
        log.matches("appeared WARNING restart-loop").count() <= 1,
        "{log}"
    );
    assert!(
        log.contains(" WARNING old-release findings (pids ")
            || log.contains("cleared ") && log.contains(" old-release app=myapp release=1 (pids "),
        "no summary line:\n{log}"
    );
}

/// 750 tiny deploy roots a user made below a discovered place: 600 in six directories and 150
/// in one. Discovery takes at most 100 from one directory and says so; the textfile holds the
/// series of at most 500 of them and says how many it left out; the run still answers.
#[test]
fn thousands_of_tiny_roots_are_capped_in_discovery_and_in_the_textfile() {
    let place = tempdir();
    let make = |dir: &str, n: usize| {
        for i in 0..n {
            let root = place.path().join(format!("{dir}/r{i:03}"));
            std::fs::create_dir_all(root.join("releases/1")).expect("create a tiny root");
            std::os::unix::fs::symlink("releases/1", root.join("current")).expect("current");
        }
    };
    for p in 0..6 {
        make(&format!("p{p}"), 100);
    }
    make("big", 150);
    let run = run_program(
        env!("CARGO_BIN_EXE_relwatch"),
        vec![
            "check".into(),
            "--format".into(),
            "prometheus".into(),
            "--discover".into(),
            place.path().into(),
        ],
    );
    let big = place.path().join("big");
    assert!(
        run.stderr.contains(&format!(
            "relwatch: discovery: {} holds more than 100 deploy roots",
            big.display()
        )),
        "{run}"
    );
    assert!(
        run.stdout
            .contains("# relwatch: 200 of 700 deploy roots left out"),
        "{run}"
    );
    assert!(
        run.stdout.contains("\nrelwatch_roots_left_out 200\n"),
        "{run}"
    );
    // The cap is on roots, whatever each root's series are.
    let roots: std::collections::BTreeSet<&str> = run
        .stdout
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split("root=\"").nth(1)?.split('"').next())
        .collect();
    assert!(
        (2..=500).contains(&roots.len()),
        "{} roots have series",
        roots.len()
    );
    assert!(run.stdout.contains("relwatch_exit_code "), "{run}");
}
