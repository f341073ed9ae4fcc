//! End to end: each incident relwatch exists for (see the README) reproduced with the real
//! package (gunicorn, supervisord, celery beat and worker, php, runit), then `relwatch check`
//! on the deploy root. Run with `cargo test --test e2e`.
//!
//! A missing package fails the test with the package to install (`.ci/run` installs them all):
//! the suite never passes by skipping. Every process a test starts is ended by pid, also when
//! the test fails: masters and supervisors that respawn what they lose are stopped with their
//! own shutdown signal first (so they reap their children and start nothing new), then the
//! harness' [`Child`] guard kills whatever is left, deepest first. Each test checks at its end
//! that its temporary directory is gone.
//!
//! The programs run with a clean environment and a system `PATH` ([`SYSTEM_PATH`]): Debian's
//! `/usr/bin/celery` runs whatever `python3` comes first on `PATH`, and it must be Debian's
//! (not a pyenv shim). No `PWD` is set, as under systemd: gunicorn's HUP then keeps its cwd.

mod util;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use util::fixes::{run_fixes, until_ok};
use util::*;

/// `PATH` for the programs under test: Debian's, nothing from a developer's home.
const SYSTEM_PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

/// How long a master or supervisor may take to shut down on its own signal before its tree is
/// killed with SIGKILL.
const STOP_DEADLINE: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// Helpers of this suite
// ---------------------------------------------------------------------------------------------

/// The absolute path of a program from a Debian package; fails (never skips) naming the
/// package when it is missing.
fn need(program: &str, package: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/sbin", "/bin", "/sbin"] {
        let p = Path::new(dir).join(program);
        if p.exists() {
            return p;
        }
    }
    panic!("`{program}` is not installed: apt-get install {package} (.ci/run installs it)");
}

/// A command with a clean environment (only [`SYSTEM_PATH`]) and its cwd in `dir`.
fn clean(program: impl AsRef<std::ffi::OsStr>, dir: impl AsRef<Path>) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear().env("PATH", SYSTEM_PATH).current_dir(dir);
    cmd
}

/// `(ppid, state, start ticks, comm)` of `pid` from `/proc/PID/stat`; `None` once it is gone.
fn stat_of(pid: i32) -> Option<(i32, char, u64, String)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_string();
    let f: Vec<&str> = stat.get(close + 1..)?.split_whitespace().collect();
    let state = f.first()?.chars().next()?;
    Some((
        f.get(1)?.parse().ok()?,
        state,
        f.get(19)?.parse().ok()?,
        comm,
    ))
}

/// Alive and not a zombie.
fn alive(pid: i32) -> bool {
    stat_of(pid).is_some_and(|(_, s, _, _)| s != 'Z')
}

/// `pid` is a live child of `parent` that has exec'd `comm_is`. One read of one stat file:
/// cheap enough to poll, unlike a pass over all of /proc.
fn child_runs(parent: i32, pid: i32, comm_is: &str) -> bool {
    stat_of(pid).is_some_and(|(ppid, s, _, c)| ppid == parent && s != 'Z' && c == comm_is)
}

/// `pid`, which was a child of `parent` started at `ticks`, has been reaped.
fn reaped(parent: i32, pid: i32, ticks: u64) -> bool {
    stat_of(pid).is_none_or(|(ppid, _, t, _)| ppid != parent || t != ticks)
}

/// One pass over /proc: `(pid, ppid, state, start ticks)` of every process.
fn proc_table() -> Vec<(i32, i32, char, u64)> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let pid: i32 = e.ok()?.file_name().to_str()?.parse().ok()?;
        let (ppid, state, ticks, _) = stat_of(pid)?;
        Some((pid, ppid, state, ticks))
    })
    .collect()
}

/// Children of `pid` that are alive (not zombies waiting to be reaped), sorted.
fn live_children(pid: i32) -> Vec<i32> {
    let mut out: Vec<i32> = proc_table()
        .into_iter()
        .filter(|&(_, ppid, state, _)| ppid == pid && state != 'Z')
        .map(|(p, ..)| p)
        .collect();
    out.sort_unstable();
    out
}

/// Every descendant of `pid` with its start time (so a reused pid is never killed), from one
/// pass over /proc.
fn descendants(pid: i32) -> Vec<(i32, u64)> {
    let table = proc_table();
    let mut out: Vec<(i32, u64)> = Vec::new();
    let mut parents = vec![pid];
    while let Some(parent) = parents.pop() {
        for &(p, ppid, _, ticks) in &table {
            if ppid == parent && !out.iter().any(|&(q, _)| q == p) {
                out.push((p, ticks));
                parents.push(p);
            }
        }
    }
    out
}

/// The numbers that follow `marker` on the lines of a log file, in order.
fn logged_pids(path: &Path, marker: &str) -> Vec<i32> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let rest = &l[l.find(marker)? + marker.len()..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .collect()
}

/// The contents of a log file, for failure messages.
fn log(path: &Path) -> String {
    match fs::read_to_string(path) {
        Ok(s) => format!("--- {} ---\n{s}", path.display()),
        Err(e) => format!("--- {}: {e} ---", path.display()),
    }
}

/// A master or supervisor that replaces the children it loses (gunicorn, celery, supervisord,
/// runsv). Dropped, it gets its own shutdown signal and a moment to stop its children and
/// exit; then the harness' guard kills what is left of the tree and reaps it, and any
/// descendant that was reparented meanwhile is killed by pid (and start time).
struct Daemon {
    child: Option<Child>,
    stop: Signal,
}

impl Daemon {
    fn spawn(cmd: &mut Command, stop: Signal) -> Daemon {
        Daemon {
            child: Some(Child::spawn(cmd)),
            stop,
        }
    }

    fn pid(&self) -> i32 {
        self.child.as_ref().expect("running").pid()
    }

    /// Polls until `ready` holds, failing at once (with `logs`) if the daemon exits.
    fn wait_until<T>(&self, what: &str, logs: &[&Path], mut ready: impl FnMut() -> Option<T>) -> T {
        let pid = self.pid();
        poll(what, || {
            if !alive(pid) {
                let logs: Vec<String> = logs.iter().map(|l| log(l)).collect();
                panic!(
                    "pid {pid} exited while waiting for {what}\n{}",
                    logs.join("\n")
                );
            }
            ready()
        })
    }

    /// Waits until its live children are exactly `n` processes that have exec'd `comm_is`,
    /// and returns them (sorted).
    fn wait_for_children(&self, n: usize, comm_is: &str, logs: &[&Path]) -> Vec<i32> {
        let pid = self.pid();
        self.wait_until(
            &format!("{n} `{comm_is}` children of pid {pid}"),
            logs,
            || {
                let kids = live_children(pid);
                (kids.len() == n && kids.iter().all(|&k| child_runs(pid, k, comm_is)))
                    .then_some(kids)
            },
        )
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let Some(child) = self.child.take() else {
            return;
        };
        let pid = child.pid();
        let tree = descendants(pid);
        let _ = kill(Pid::from_raw(pid), self.stop);
        let deadline = Instant::now() + STOP_DEADLINE;
        while Instant::now() < deadline && alive(pid) {
            thread::sleep(Duration::from_millis(5));
        }
        drop(child);
        for (p, t) in tree {
            if stat_of(p).is_some_and(|(_, _, ticks, _)| ticks == t) {
                let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
            }
        }
    }
}

/// Drops the deploy root and checks that its temporary directory is gone.
fn remove(root: DeployRoot) {
    let tmp = root.tmp();
    drop(root);
    assert!(
        !tmp.exists(),
        "the temporary directory {} was left behind",
        tmp.display()
    );
}

/// Writes the relwatch config file `TMP/relwatch.yaml`, mode 0644 (relwatch refuses a file
/// others can write).
fn write_config(root: &DeployRoot, body: &str) -> PathBuf {
    let path = root.tmp().join("relwatch.yaml");
    fs::write(&path, body).expect("write the config file");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod the config");
    path
}

/// Does `text` name `pid` as a number of its own (not as part of a longer number)?
fn mentions_pid(text: &str, pid: i32) -> bool {
    let pid = pid.to_string();
    text.split(|c: char| !c.is_ascii_digit()).any(|w| w == pid)
}

/// The finding restarts `master` once, through whatever owns it, and names no worker.
fn assert_restarts_master(doc: &Value, f: &Value, master: i32, workers: &[i32]) {
    let remedy = f["remedy"].as_str().expect("remedy is a string");
    let p = process(doc, master).unwrap_or_else(|| panic!("master {master} not listed: {doc}"));
    match p["owner"]["kind"].as_str() {
        // Started by the test: nothing supervises it (or the session the tests run in).
        Some("none") | Some("session") => assert!(
            // `kill -TERM MASTER (gunicorn stops gracefully on TERM), then start it again`
            f["fix"][0]["argv"] == serde_json::json!(["kill", "-TERM", master.to_string()]),
            "the remedy restarts the master {master}: {f}"
        ),
        // The tests run inside a service (a CI runner): restarting it is the fix.
        Some("systemd") => assert!(
            remedy.starts_with("systemctl ") && remedy.contains(" restart "),
            "{f}"
        ),
        other => panic!("unexpected owner {other:?} of the master: {p}"),
    }
    for &w in workers {
        assert!(
            !mentions_pid(remedy, w),
            "the remedy restarts the master, never a worker ({w}): {f}"
        );
    }
}

/// The pids of a finding, master first, with the rest compared as a set.
fn assert_tree(f: &Value, master: i32, workers: &[i32]) {
    let got = pids(f);
    assert_eq!(
        got.first(),
        Some(&i64::from(master)),
        "the master comes first: {f}"
    );
    let mut rest: Vec<i64> = got[1..].to_vec();
    rest.sort_unstable();
    let mut want: Vec<i64> = workers.iter().map(|&w| i64::from(w)).collect();
    want.sort_unstable();
    assert_eq!(rest, want, "the workers are in the finding: {f}");
    assert_eq!(
        f["master"].as_i64(),
        Some(i64::from(master)),
        "`master` names the master: {f}"
    );
}

/// Each of `pids_` has evidence `how` on `path` in the finding, with `deleted` as given.
fn assert_evidence(f: &Value, pids_: &[i32], how: &str, path: &Path, deleted: bool) {
    for &pid in pids_ {
        let ev: Vec<&Value> = array(f, "evidence")
            .iter()
            .filter(|e| e["pid"].as_i64() == Some(i64::from(pid)))
            .collect();
        assert!(
            ev.iter().any(|e| e["how"] == how
                && bytestr_is(&e["path"], path_bytes(path))
                && e["deleted"] == deleted),
            "pid {pid}: expected evidence {how} {} (deleted: {deleted}) in {f}",
            path.display()
        );
    }
}

/// The only finding of `kind`; fails when there are none or several.
fn only<'a>(doc: &'a Value, kind: &str, run: &Run) -> &'a Value {
    let f = findings_of(doc, kind);
    assert_eq!(f.len(), 1, "exactly one {kind} finding\n{run}");
    f[0]
}

/// `relwatch check --format json ROOT --grace 0s`, schema-checked.
fn check_root(root: &DeployRoot) -> (Run, Value) {
    let (run, doc) = check_json([root.path().as_os_str(), "--grace".as_ref(), "0s".as_ref()]);
    // The document follows docs/JSON.md (unknown or missing fields are refused).
    let _ = run.report();
    (run, doc)
}

// ---------------------------------------------------------------------------------------------
// gunicorn: HUP keeps the master's cwd when it was started without PWD
// ---------------------------------------------------------------------------------------------

const WSGI_APP: &str = "def application(environ, start_response):\n    start_response(\"200 OK\", [(\"Content-Type\", \"text/plain\")])\n    return [b\"ok\\n\"]\n";

/// The 2 workers of a gunicorn master that its log says booted and that run now, once every
/// worker in `old` (pid, start ticks) has been reaped. Reading the log and a few stat files is
/// cheap to poll, unlike a pass over all of /proc.
fn gunicorn_workers(master: &Daemon, glog: &Path, old: &[(i32, u64)]) -> Vec<(i32, u64)> {
    let m = master.pid();
    master.wait_until(
        "2 gunicorn workers booted (and the old ones reaped)",
        &[glog],
        || {
            let mut booted: Vec<(i32, u64)> = logged_pids(glog, "Booting worker with pid: ")
                .into_iter()
                .filter(|&p| child_runs(m, p, "gunicorn"))
                .filter_map(|p| stat_of(p).map(|(_, _, t, _)| (p, t)))
                .filter(|w| !old.contains(w))
                .collect();
            booted.sort_unstable();
            booted.dedup();
            (booted.len() == 2 && old.iter().all(|&(o, t)| reaped(m, o, t))).then_some(booted)
        },
    )
}

/// `cmd` (gunicorn and its first arguments) with 2 sync workers on a socket in `tmp`, serving
/// `app:application`, its log in `glog`.
fn gunicorn_master(cmd: &mut Command, tmp: &Path, glog: &Path) -> Daemon {
    Daemon::spawn(
        cmd.args(["--workers", "2", "--bind"])
            .arg(format!("unix:{}", tmp.join("gunicorn.sock").display()))
            .arg("--error-logfile")
            .arg(glog)
            .arg("app:application"),
        Signal::SIGTERM,
    )
}

/// A gunicorn master with 2 sync workers, started from `current/` without `PWD`, gets HUP after
/// the switch: its new workers are forked from the old release. relwatch names the master, not
/// the workers, then calls it critical once the old release is deleted.
#[test]
fn gunicorn_master_hupped_after_the_switch_stays_on_the_old_release() {
    let gunicorn = need("gunicorn", "gunicorn");
    let root = DeployRoot::new();
    root.write("releases/1/app.py", WSGI_APP);
    root.switch("1");
    let r1 = root.release_path("1");
    let tmp = root.tmp();
    let glog = tmp.join("gunicorn.log");
    let master = gunicorn_master(&mut clean(&gunicorn, root.current()), &tmp, &glog);
    let first = gunicorn_workers(&master, &glog, &[]);

    root.write("releases/2/app.py", WSGI_APP);
    root.switch("2");
    kill(Pid::from_raw(master.pid()), Signal::SIGHUP).expect("send HUP to the gunicorn master");
    // HUP forks new workers and stops the old ones; without PWD the master does not re-chdir.
    let workers: Vec<i32> = gunicorn_workers(&master, &glog, &first)
        .into_iter()
        .map(|(pid, _)| pid)
        .collect();
    assert_eq!(
        live_children(master.pid()),
        workers,
        "after HUP only the new workers are left\n{}",
        log(&glog)
    );

    let (run, doc) = check_root(&root);
    assert_eq!(
        run.code, 1,
        "an old release after the grace is a warning\n{run}"
    );
    let f = only(&doc, "old-release", &run);
    assert_eq!(f["severity"], "warning", "{f}");
    assert!(bytestr_is(&f["release"], "1"), "{f}");
    assert_tree(f, master.pid(), &workers);
    let mut all = vec![master.pid()];
    all.extend(&workers);
    assert_evidence(f, &all, "cwd", &r1, false);
    assert_restarts_master(&doc, f, master.pid(), &workers);
    assert!(findings_of(&doc, "deleted-release").is_empty(), "{run}");
    let p = process(&doc, master.pid()).expect("the master is listed");
    assert_eq!(p["master"], true, "{p}");
    assert_eq!(p["release_state"], "old", "{p}");

    // The deploy hook would have stopped the cleanup.
    let inuse = relwatch([
        "in-use".as_ref(),
        "--format".as_ref(),
        "json".as_ref(),
        r1.as_os_str(),
    ]);
    assert_eq!(inuse.code, 1, "release 1 is in use\n{inuse}");
    let users = inuse.json()["paths"][0]["processes"].clone();
    for pid in &all {
        assert!(
            users
                .as_array()
                .is_some_and(|u| u.iter().any(|u| u["pid"].as_i64() == Some(i64::from(*pid)))),
            "in-use lists pid {pid}\n{inuse}"
        );
    }

    root.delete("1");
    let (run, doc) = check_root(&root);
    assert_eq!(run.code, 2, "a deleted release is critical\n{run}");
    let f = only(&doc, "deleted-release", &run);
    assert_eq!(f["severity"], "critical", "{f}");
    assert!(bytestr_is(&f["release"], "1"), "{f}");
    assert_tree(f, master.pid(), &workers);
    assert_evidence(f, &all, "cwd", &r1, true);
    assert_restarts_master(&doc, f, master.pid(), &workers);
    assert!(findings_of(&doc, "old-release").is_empty(), "{run}");
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains(&format!("master pid {}", master.pid())),
        "{f}"
    );

    drop(master);
    remove(root);
}

/// A gunicorn master started with `--chdir ROOT/current` re-chdirs on HUP: after the switch and
/// the reload its cwd is the new release and its workers serve it. What it holds now (its cwd)
/// beats its start time before the switch: relwatch says OK, also once the cleanup has deleted
/// the release that was current when it started.
#[test]
fn gunicorn_chdir_current_hupped_after_the_switch_is_on_the_current_release() {
    let gunicorn = need("gunicorn", "gunicorn");
    let root = DeployRoot::new();
    root.write("releases/1/app.py", WSGI_APP);
    root.switch("1");
    let tmp = root.tmp();
    let glog = tmp.join("gunicorn.log");
    let master = gunicorn_master(
        clean(&gunicorn, &tmp).arg("--chdir").arg(root.current()),
        &tmp,
        &glog,
    );
    let first = gunicorn_workers(&master, &glog, &[]);

    root.write("releases/2/app.py", WSGI_APP);
    root.switch("2");
    kill(Pid::from_raw(master.pid()), Signal::SIGHUP).expect("send HUP to the gunicorn master");
    let workers = gunicorn_workers(&master, &glog, &first);
    let r2 = fs::canonicalize(root.release_path("2")).expect("release 2 exists");
    let cwd = |pid: i32| fs::read_link(format!("/proc/{pid}/cwd")).ok();
    assert_eq!(
        cwd(master.pid()).as_deref(),
        Some(r2.as_path()),
        "HUP re-chdirs the master into the new release\n{}",
        log(&glog)
    );

    for cleanup in [false, true] {
        if cleanup {
            root.delete("1");
        }
        let (run, doc) = check_root(&root);
        assert_eq!(
            run.code, 0,
            "a master reloaded into the current release is OK (cleanup done: {cleanup})\n{run}"
        );
        assert!(array(&doc, "findings").is_empty(), "{run}");
        let p = process(&doc, master.pid()).expect("the master is listed");
        assert_eq!(p["release_state"], "current", "{p}");
        for (w, _) in &workers {
            let p = process(&doc, *w).expect("each worker is listed");
            assert_eq!(p["release_state"], "current", "{p}");
        }
    }

    drop(master);
    remove(root);
}

// ---------------------------------------------------------------------------------------------
// supervisord: programs without directory= inherit supervisord's cwd
// ---------------------------------------------------------------------------------------------

/// The programs `queue_00` and `queue_01` of a supervisord, by name, from the `spawned:` lines of
/// its log, once both run `sleep` and neither is one of `old`.
fn supervisord_programs(sd: &Daemon, sdlog: &Path, old: &[i32]) -> Vec<(String, i32)> {
    let pid = sd.pid();
    sd.wait_until(
        "supervisord to spawn queue_00 and queue_01",
        &[sdlog],
        || {
            let text = fs::read_to_string(sdlog).unwrap_or_default();
            let programs: Vec<(String, i32)> = ["queue_00", "queue_01"]
                .iter()
                .filter_map(|name| {
                    let marker = format!("spawned: '{name}' with pid ");
                    let latest = text
                        .lines()
                        .filter_map(|l| {
                            let rest = &l[l.find(&marker)? + marker.len()..];
                            rest.trim().parse::<i32>().ok()
                        })
                        .next_back()?;
                    (!old.contains(&latest) && child_runs(pid, latest, "sleep"))
                        .then(|| (name.to_string(), latest))
                })
                .collect();
            (programs.len() == 2).then_some(programs)
        },
    )
}

/// supervisord started from `current/` with a `numprocs=2` program group and no `directory=`:
/// switch, delete the old release, `supervisorctl restart` the group. The new programs are
/// started in supervisord's deleted cwd; relwatch reports supervisord as the master and says
/// to set `directory=`, restart supervisord, then reread and update.
#[test]
fn supervisord_group_restarted_after_the_delete_lands_on_the_deleted_release() {
    let supervisord = need("supervisord", "supervisor");
    let supervisorctl = need("supervisorctl", "supervisor");
    let root = DeployRoot::new();
    let r1 = root.release("1");
    root.switch("1");
    let tmp = root.tmp();
    let conf = supervisord_conf(
        &tmp,
        "[program:queue]\ncommand=sleep 1000\nnumprocs=2\nprocess_name=%(program_name)s_%(process_num)02d\nautostart=true\nstartsecs=0\nstopsignal=KILL\n",
    );
    let sdlog = tmp.join("supervisord.log");
    let sd = Daemon::spawn(
        clean(&supervisord, root.current())
            .args(["-n", "-c"])
            .arg(&conf),
        Signal::SIGTERM,
    );
    let first = supervisord_programs(&sd, &sdlog, &[]);
    let first_pids: Vec<i32> = first.iter().map(|(_, pid)| *pid).collect();

    root.release("2");
    root.switch("2");
    let (run, doc) = check_root(&root);
    assert_eq!(run.code, 1, "{run}");
    let f = only(&doc, "old-release", &run);
    assert_tree(f, sd.pid(), &first_pids);
    let remedy = f["remedy"].as_str().unwrap();
    assert!(
        remedy.contains("supervisorctl reread && supervisorctl update"),
        "{remedy}"
    );

    root.delete("1");
    let ctl = clean(&supervisorctl, "/")
        .arg("-c")
        .arg(&conf)
        .args(["restart", "queue:*"])
        .output()
        .expect("run supervisorctl");
    assert!(
        ctl.status.success(),
        "supervisorctl restart queue:*: {ctl:?}\n{}",
        log(&sdlog)
    );
    let second = supervisord_programs(&sd, &sdlog, &first_pids);
    let second_pids: Vec<i32> = second.iter().map(|(_, pid)| *pid).collect();

    let (run, doc) = check_root(&root);
    assert_eq!(run.code, 2, "{run}");
    let f = only(&doc, "deleted-release", &run);
    assert!(
        findings_of(&doc, "old-release").is_empty(),
        "supervisord and its programs are one tree, all on the deleted release: {run}"
    );
    assert_tree(f, sd.pid(), &second_pids);
    let mut all = vec![sd.pid()];
    all.extend(&second_pids);
    assert_evidence(f, &all, "cwd", &r1, true);
    let remedy = f["remedy"].as_str().unwrap();
    assert!(remedy.contains("supervisord"), "{remedy}");
    assert!(remedy.contains("directory="), "{remedy}");
    assert!(
        remedy.contains("supervisorctl reread && supervisorctl update"),
        "{remedy}"
    );
    for (name, pid) in &second {
        let p = process(&doc, *pid).unwrap_or_else(|| panic!("program {pid} not listed\n{run}"));
        assert_eq!(p["owner"]["kind"], "supervisord", "{p}");
        assert_eq!(
            p["owner"]["name"],
            format!("queue:{name}").as_str(),
            "GROUP:NAME, as supervisorctl takes it: {p}"
        );
        assert_eq!(
            p["owner"]["supervisor_pid"].as_i64(),
            Some(i64::from(sd.pid())),
            "{p}"
        );
        assert_eq!(p["release_state"], "deleted", "{p}");
    }

    drop(sd);
    remove(root);
}

// ---------------------------------------------------------------------------------------------
// celery beat: a second scheduler left on the old release
// ---------------------------------------------------------------------------------------------

const CELERY_APP: &str = "from celery import Celery\n\napp = Celery(\"t\", broker=\"memory://\")\n";

/// `celery -A tasks beat` in the release `current` points at, with its schedule and log in the
/// temporary directory; returns once it says it started.
fn celery_beat(root: &DeployRoot, tag: &str) -> Child {
    let celery = need("celery", "celery python3-celery");
    let tmp = root.tmp();
    let blog = tmp.join(format!("beat-{tag}.log"));
    let beat = Child::spawn(
        clean(&celery, root.current())
            .args(["-A", "tasks", "beat", "-s"])
            .arg(tmp.join(format!("beat-{tag}")))
            .arg("--pidfile=")
            .args(["-l", "info", "--logfile"])
            .arg(&blog),
    );
    let pid = beat.pid();
    poll(&format!("celery beat {tag} to start"), || {
        assert!(alive(pid), "celery beat {tag} exited\n{}", log(&blog));
        fs::read_to_string(&blog)
            .ok()
            .filter(|l| l.contains("beat: Starting"))
            .map(|_| ())
    });
    beat
}

/// One `celery beat` per release of the same app, with `scheduler` a singleton role: a
/// critical `duplicate` naming both, oldest (release 1) first, and the old one also on an old
/// release.
#[test]
fn two_celery_beats_one_per_release_are_a_duplicate_singleton() {
    let root = DeployRoot::new();
    root.write("releases/1/tasks.py", CELERY_APP);
    root.switch("1");
    let old = celery_beat(&root, "1");
    wait_started_before_now(old.pid());
    root.write("releases/2/tasks.py", CELERY_APP);
    root.switch("2");
    let new = celery_beat(&root, "2");
    let cfg = write_config(
        &root,
        &format!(
            "apps:\n  - name: {}\n    root: {}\n    roles:\n      - name: scheduler\n        match: \"celery.*beat\"\n        singleton: true\n",
            root.name(),
            root.path().display()
        ),
    );

    let (run, doc) = check_json([
        "--config".as_ref(),
        cfg.as_os_str(),
        "--grace".as_ref(),
        "0s".as_ref(),
    ]);
    let _ = run.report();
    assert_eq!(run.code, 2, "a duplicate singleton is critical\n{run}");
    let f = only(&doc, "duplicate", &run);
    assert_eq!(f["severity"], "critical", "{f}");
    assert_eq!(f["app"], root.name().as_str(), "{f}");
    assert_eq!(f["role"], "scheduler", "{f}");
    assert_eq!(
        pids(f),
        [i64::from(old.pid()), i64::from(new.pid())],
        "both schedulers, oldest first: {f}"
    );
    let msg = f["message"].as_str().unwrap();
    assert!(
        msg.contains("release 1 (old)") && msg.contains("release 2 (current)"),
        "{msg}"
    );
    let remedy = f["remedy"].as_str().unwrap();
    assert!(
        mentions_pid(remedy, old.pid()) && remedy.contains(&format!("keep pid {}", new.pid())),
        "stop the old one, keep the one on the current release: {remedy}"
    );
    let p_old = process(&doc, old.pid()).expect("the old beat is listed");
    assert!(bytestr_is(&p_old["release"], "1"), "{p_old}");
    assert_eq!(p_old["release_state"], "old", "{p_old}");
    assert_eq!(p_old["role"], "scheduler", "{p_old}");
    let p_new = process(&doc, new.pid()).expect("the new beat is listed");
    assert!(bytestr_is(&p_new["release"], "2"), "{p_new}");
    assert_eq!(p_new["release_state"], "current", "{p_new}");
    assert_eq!(p_new["role"], "scheduler", "{p_new}");
    // It runs old code, too.
    let o = only(&doc, "old-release", &run);
    assert_eq!(pids(o), [i64::from(old.pid())], "{o}");
    assert_eq!(o["role"], "scheduler", "{o}");

    drop(old);
    drop(new);
    remove(root);
}

/// The one-line summary says why the status is critical. Two schedulers on the current release
/// are a critical `duplicate`, so the summary must not claim that all is well.
#[test]
fn the_summary_names_a_duplicate_singleton() {
    let root = DeployRoot::new();
    root.write("releases/1/tasks.py", CELERY_APP);
    root.switch("1");
    let a = celery_beat(&root, "a");
    let b = celery_beat(&root, "b");
    let cfg = write_config(
        &root,
        &format!(
            "apps:\n  - name: {}\n    root: {}\n    roles:\n      - name: scheduler\n        match: \"celery.*beat\"\n        singleton: true\n",
            root.name(),
            root.path().display()
        ),
    );
    let (run, doc) = check_json(["--config".as_ref(), cfg.as_os_str()]);
    assert_eq!(run.code, 2, "{run}");
    assert_eq!(only(&doc, "duplicate", &run)["role"], "scheduler");
    let summary = doc["summary"].as_str().unwrap();
    assert!(
        !summary.contains("every process runs the current release"),
        "a critical status with an all-clear summary: {summary}"
    );
    assert!(
        summary.contains("scheduler") || summary.contains("duplicate"),
        "the summary names the duplicate role: {summary}"
    );
    drop(a);
    drop(b);
    remove(root);
}

// ---------------------------------------------------------------------------------------------
// php: a path through current/ is judged by start time
// ---------------------------------------------------------------------------------------------

const PHP_WORKER: &str = "<?php\nwhile (true) {\n    sleep(1000);\n}\n";

/// `php /ROOT/current/worker.php` with its cwd at `/`.
fn php_worker(root: &DeployRoot) -> Child {
    let php = need("php", "php-cli");
    let worker = Child::spawn(clean(&php, "/").arg(root.current().join("worker.php")));
    let pid = worker.pid();
    poll("php to run worker.php", || {
        assert!(alive(pid), "php {pid} exited");
        (comm(pid).as_deref() == Some("php")).then_some(())
    });
    worker
}

/// A php worker loop started through `current/` before the switch runs the old release
/// (`via-current`, found by its start time); one started after the switch is fine.
#[test]
fn php_worker_started_through_current_before_the_switch_is_old() {
    let root = DeployRoot::new();
    root.write("releases/1/worker.php", PHP_WORKER);
    root.switch("1");
    // Release 1 exists well before the worker starts; release 2 is built after it.
    wait_after_switch();
    let before = php_worker(&root);
    wait_started_before_now(before.pid());
    root.write("releases/2/worker.php", PHP_WORKER);
    root.switch("2");
    wait_after_switch();
    let after = php_worker(&root);

    let (run, doc) = check_root(&root);
    assert_eq!(run.code, 1, "{run}");
    let f = only(&doc, "old-release", &run);
    assert_eq!(pids(f), [i64::from(before.pid())], "{f}");
    assert!(f["master"].is_null(), "a lone worker is no master: {f}");
    assert!(
        bytestr_is(&f["release"], "1"),
        "release 1 was the newest when it started: {f}"
    );
    assert_evidence(
        f,
        &[before.pid()],
        "via-current",
        &root.current().join("worker.php"),
        false,
    );
    assert_restarts_master(&doc, f, before.pid(), &[]);
    for f in array(&doc, "findings") {
        assert!(
            !pids(f).contains(&i64::from(after.pid())),
            "the worker started after the switch is not reported: {f}"
        );
    }
    let p = process(&doc, after.pid()).expect("the new worker is listed");
    assert_eq!(p["release_state"], "current", "{p}");
    assert!(bytestr_is(&p["release"], "2"), "{p}");
    assert!(
        evidence_hows(p, after.pid()).contains(&"via-current".to_string()),
        "{p}"
    );

    drop(before);
    drop(after);
    remove(root);
}

// ---------------------------------------------------------------------------------------------
// runit: `sv restart NAME`
// ---------------------------------------------------------------------------------------------

/// The service process of a `runsv`, from the pid file runsv keeps (`supervise/pid`), once it
/// runs `sleep` and is not `old`.
fn runit_service(runsv: &Daemon, pidfile: &Path, old: Option<i32>) -> i32 {
    let pid = runsv.pid();
    runsv.wait_until("the runit service to run sleep", &[], || {
        let service: i32 = fs::read_to_string(pidfile).ok()?.trim().parse().ok()?;
        (Some(service) != old && child_runs(pid, service, "sleep")).then_some(service)
    })
}

/// A runit service whose `run` does `cd ROOT/current && exec sleep 1000`, supervised by
/// `runsv NAME` (as runsvdir starts it). After a switch it is on the old release, after the
/// delete on a deleted one; the remedy is `sv restart NAME`, and following it fixes the host.
#[test]
fn runit_service_on_a_deleted_release_is_fixed_with_sv_restart() {
    let runsv = need("runsv", "runit");
    let sv = need("sv", "runit");
    let root = DeployRoot::new();
    let r1 = root.release("1");
    root.switch("1");
    let svdir = root.tmp().join("service");
    let name = "relwatch-e2e-queue";
    let run_script = svdir.join(name).join("run");
    fs::create_dir_all(svdir.join(name)).expect("create the service directory");
    fs::write(
        &run_script,
        format!(
            "#!/bin/sh\ncd {} && exec sleep 1000\n",
            root.current().display()
        ),
    )
    .expect("write run");
    fs::set_permissions(&run_script, fs::Permissions::from_mode(0o755)).expect("chmod run");
    // runsv TERM: stop the service, then exit.
    let supervise = Daemon::spawn(clean(&runsv, &svdir).arg(name), Signal::SIGTERM);
    let pidfile = svdir.join(name).join("supervise/pid");
    let first = runit_service(&supervise, &pidfile, None);

    root.release("2");
    root.switch("2");
    let (run, doc) = check_root(&root);
    assert_eq!(run.code, 1, "{run}");
    let f = only(&doc, "old-release", &run);
    assert_eq!(pids(f), [i64::from(first)], "{f}");
    assert_eq!(f["remedy"], format!("sv restart {name}"), "{f}");

    root.delete("1");
    let (run, doc) = check_root(&root);
    assert_eq!(run.code, 2, "{run}");
    let f = only(&doc, "deleted-release", &run);
    assert_eq!(
        pids(f),
        [i64::from(first)],
        "runsv is not on the release: {f}"
    );
    assert_evidence(f, &[first], "cwd", &r1, true);
    assert_eq!(f["remedy"], format!("sv restart {name}"), "{f}");
    assert!(
        f["owner"].as_str().unwrap_or_default().contains(name),
        "{f}"
    );
    let p = process(&doc, first).expect("the service is listed");
    assert_eq!(p["owner"]["kind"], "runit", "{p}");
    assert_eq!(p["owner"]["name"], name, "{p}");
    assert_eq!(
        p["owner"]["supervisor_pid"].as_i64(),
        Some(i64::from(supervise.pid())),
        "{p}"
    );

    // Do what the remedy says.
    let out = clean(&sv, "/")
        .env("SVDIR", &svdir)
        .args(["-w", "15", "restart", name])
        .output()
        .expect("run sv");
    assert!(out.status.success(), "sv restart {name}: {out:?}");
    let second = runit_service(&supervise, &pidfile, Some(first));
    let (run, doc) = check_root(&root);
    assert_eq!(run.code, 0, "after sv restart all is well\n{run}");
    assert!(array(&doc, "findings").is_empty(), "{run}");
    let p = process(&doc, second).expect("the restarted service is listed");
    assert_eq!(p["release_state"], "current", "{p}");

    drop(supervise);
    remove(root);
}

// ---------------------------------------------------------------------------------------------
// celery worker: a prefork master on a deleted release
// ---------------------------------------------------------------------------------------------

/// A celery worker (prefork, 2 pool processes) on a release that is then deleted: one
/// `deleted-release` finding whose master is the MainProcess, with its children.
#[test]
fn celery_prefork_worker_on_a_deleted_release_is_one_finding_naming_the_master() {
    let celery = need("celery", "celery python3-celery");
    let root = DeployRoot::new();
    root.write("releases/1/tasks.py", CELERY_APP);
    root.switch("1");
    let r1 = root.release_path("1");
    let wlog = root.tmp().join("worker.log");
    // SIGQUIT: cold shutdown (TERM would wait for tasks, warm).
    let worker = Daemon::spawn(
        clean(&celery, root.current())
            .args(["-A", "tasks", "-b", "memory://", "worker"])
            .args(["--pool=prefork", "--concurrency=2"])
            .args([
                "--without-mingle",
                "--without-gossip",
                "--without-heartbeat",
            ])
            .args(["-l", "info", "--logfile"])
            .arg(&wlog),
        Signal::SIGQUIT,
    );
    // The log first (cheap to poll), then one look at the pool processes.
    worker.wait_until("the celery worker to be ready", &[&wlog], || {
        fs::read_to_string(&wlog)
            .ok()
            .filter(|l| l.contains(" ready."))
            .map(|_| ())
    });
    let pool = worker.wait_for_children(2, "python3", &[&wlog]);

    root.write("releases/2/tasks.py", CELERY_APP);
    root.switch("2");
    root.delete("1");
    let (run, doc) = check_root(&root);
    assert_eq!(run.code, 2, "{run}");
    let f = only(&doc, "deleted-release", &run);
    assert_eq!(f["severity"], "critical", "{f}");
    assert!(bytestr_is(&f["release"], "1"), "{f}");
    assert_tree(f, worker.pid(), &pool);
    let mut all = vec![worker.pid()];
    all.extend(&pool);
    assert_evidence(f, &all, "cwd", &r1, true);
    assert_restarts_master(&doc, f, worker.pid(), &pool);
    assert!(findings_of(&doc, "old-release").is_empty(), "{run}");
    let p = process(&doc, worker.pid()).expect("the MainProcess is listed");
    assert_eq!(p["master"], true, "{p}");
    assert_eq!(p["release_state"], "deleted", "{p}");

    drop(worker);
    remove(root);
}

// ---------------------------------------------------------------------------------------------
// orphans: a worker started by hand
// ---------------------------------------------------------------------------------------------

/// A worker started by hand (double-forked, under PID 1) on the current release is how some
/// hosts run: no finding. Left on an old release after a deploy it is an orphan, a warning;
/// the app's `orphans: info` makes it information, `orphans: off` nothing.
#[test]
fn a_hand_started_worker_is_an_orphan_only_when_left_on_an_old_release() {
    let root = DeployRoot::new();
    let r1 = root.release("1");
    root.switch("1");
    let stray = Stray::start_in(&r1);
    let (run, doc) = check_json([root.path()]);
    assert_eq!(
        run.code, 0,
        "a hand-started worker on current is fine\n{run}"
    );
    assert!(findings_of(&doc, "orphan").is_empty(), "{run}");

    wait_started_before_now(stray.0);
    root.release("2");
    root.switch("2");
    // Within the default grace the old release itself is only information.
    let (run, doc) = check_json([root.path()]);
    assert_eq!(run.code, 1, "left on the old release: an orphan\n{run}");
    let f = only(&doc, "orphan", &run);
    assert_eq!(pids(f), [i64::from(stray.0)], "{f}");
    assert_eq!(f["severity"], "warning", "{f}");

    for (level, orphans) in [("info", 1), ("off", 0)] {
        let cfg = write_config(
            &root,
            &format!(
                "apps:\n  - name: myapp\n    root: {}\n    orphans: {level}\n",
                root.path().display()
            ),
        );
        let (run, doc) = check_json(["--config".as_ref(), cfg.as_os_str()]);
        assert_eq!(run.code, 0, "orphans: {level}\n{run}");
        let f = findings_of(&doc, "orphan");
        assert_eq!(f.len(), orphans, "orphans: {level}\n{run}");
        assert!(f.iter().all(|f| f["severity"] == "info"), "{run}");
    }
    drop(stray);
    remove(root);
}

/// supervisord started with `-c CONF` (its socket is that file's): the printed fix of a
/// program left on an old release is `supervisorctl -c CONF restart GROUP:NAME`, the command
/// `relwatch restart` confirms and runs. Without `-c`, supervisorctl reaches the default socket:
/// another supervisord's program of the same name, or none. Run as printed, it fixes it.
#[test]
fn a_program_of_a_supervisord_with_its_own_config_gets_a_fix_that_reaches_it() {
    let supervisord = need("supervisord", "supervisor");
    need("supervisorctl", "supervisor");
    let root = DeployRoot::new();
    root.release("1");
    root.switch("1");
    let tmp = root.tmp();
    let conf = supervisord_conf(
        &tmp,
        &format!(
            "[program:queue]\ncommand=sleep 1000\ndirectory={}\nnumprocs=2\nprocess_name=%(program_name)s_%(process_num)02d\nautostart=true\nstartsecs=0\nstopsignal=KILL\n",
            root.current().display()
        ),
    );
    let sdlog = tmp.join("supervisord.log");
    let sd = Daemon::spawn(
        clean(&supervisord, "/").args(["-n", "-c"]).arg(&conf),
        Signal::SIGTERM,
    );
    let first = supervisord_programs(&sd, &sdlog, &[]);
    let first_pids: Vec<i32> = first.iter().map(|(_, pid)| *pid).collect();
    root.release("2");
    root.switch("2");
    let (run, doc) = check_root(&root);
    assert_eq!(run.code, 1, "{run}");
    let conf_text = conf.to_string_lossy().into_owned();
    for f in findings_of(&doc, "old-release") {
        let argv: Vec<&str> = f["fix"][0]["argv"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        assert_eq!(
            argv[..3],
            ["supervisorctl", "-c", conf_text.as_str()],
            "{f:#}"
        );
        assert_eq!(argv[3], "restart", "{f:#}");
    }
    run_fixes(&doc, &["supervisorctl"]);
    supervisord_programs(&sd, &sdlog, &first_pids);
    until_ok(&root);
}
