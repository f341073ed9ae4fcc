//! Privileges and coverage: what relwatch answers when it cannot see every process.
//!
//! relwatch reads other users' `cwd` and `exe` links, which needs root or `CAP_SYS_PTRACE`
//! (plus `CAP_DAC_READ_SEARCH` for `environ` and `fd/`). Without them it must never answer OK
//! over what it could not see: a process it could not inspect that could run an app's code
//! (one of root, of the releases' owner, of a uid already running the app, or one whose command
//! line names the root) is an `unreadable` finding (UNKNOWN, exit 3) that says how many, as
//! whom, and how to see them, unless it already sees something critical (exit 2). What it did
//! see is still reported: a deploy user checking its own workers still gets them as findings.
//! The two capabilities alone are enough to see root's workers.
//!
//! The tests run the built binary through `setpriv` (see `unprivileged/mod.rs`), so nothing on
//! the host is changed. They need root to switch users; under CI they fail without it.

mod unprivileged;
mod util;

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;
use unprivileged::*;
use util::*;

/// Runs `setpriv SETPRIV... relwatch ARGS...` with a clean environment and its cwd at `/`,
/// killed by pid after [`RUN_DEADLINE`], and checks that nothing panicked.
fn run_as(setpriv: &[String], args: &[&OsStr]) -> Run {
    let mut all: Vec<OsString> = setpriv.iter().map(OsString::from).collect();
    all.push(env!("CARGO_BIN_EXE_relwatch").into());
    all.extend(args.iter().map(|a| a.to_os_string()));
    let run = run_program("setpriv", all);
    assert!(!run.stderr.contains("panicked"), "relwatch panicked\n{run}");
    run
}

/// Runs `setpriv SETPRIV... relwatch check --format json ARGS...` with a clean environment and
/// its cwd at `/`, killed by pid after [`RUN_DEADLINE`]. Checks that the exit code agrees with
/// the document and that nothing panicked.
fn check_as(setpriv: &[String], args: &[&OsStr]) -> (Run, Value) {
    let mut all: Vec<&OsStr> = ["check", "--format", "json"].map(OsStr::new).to_vec();
    all.extend_from_slice(args);
    let run = run_as(setpriv, &all);
    let doc = run.json();
    assert_eq!(
        doc["exit_code"].as_i64(),
        Some(i64::from(run.code)),
        "`exit_code` differs from the exit code\n{run}"
    );
    (run, doc)
}

/// A root-owned process in `dir` whose command line names the deploy root's `current`, like
/// `php /srv/app/current/artisan queue:work` started by root: `sh -c 'sleep 1000; :' PATH`.
fn root_worker_naming(root: &DeployRoot, dir: &Path) -> Child {
    let artisan = root.current().join("artisan");
    let worker = Child::spawn(
        Command::new("sh")
            .arg("-c")
            .arg("sleep 1000; :")
            .arg(&artisan)
            .arg("queue:work")
            .current_dir(dir),
    );
    worker.wait_for_children(1, "sleep");
    worker
}

/// A deploy root with releases 1 and 2, current 2, readable by everyone and owned by `owner`
/// (root when `None`); returns it with the paths of releases 1 and 2.
fn on_release_2(owner: Option<u32>) -> (DeployRoot, PathBuf, PathBuf) {
    let root = DeployRoot::new();
    let old = root.release("1");
    let cur = root.release("2");
    root.switch("2");
    open_up(&root);
    if let Some(uid) = owner {
        chown_tree(root.path(), uid);
    }
    (root, old, cur)
}

fn unreadable_pids(doc: &Value) -> Vec<i64> {
    findings_of(doc, "unreadable")
        .iter()
        .flat_map(|f| pids(f))
        .collect()
}

/// (a) A root-owned worker whose command line names the deploy root, checked by `nobody`:
/// UNKNOWN, with an `unreadable` finding naming it and a remedy naming CAP_SYS_PTRACE.
#[test]
fn unprivileged_run_over_roots_worker_is_unknown() {
    if !can_switch_users("unprivileged_run_over_roots_worker_is_unknown") {
        return;
    }
    let root = DeployRoot::new();
    let rel = root.release("1");
    root.switch("1");
    open_up(&root);
    let worker = root_worker_naming(&root, &rel);

    let (run, doc) = check_as(&drop_to(NOBODY), &[root.path().as_os_str()]);
    assert_eq!(run.code, 3, "a worker it could not inspect: UNKNOWN\n{run}");
    assert_eq!(doc["status"], "unknown", "{run}");
    let unreadable = findings_of(&doc, "unreadable");
    assert_eq!(unreadable.len(), 1, "{run}");
    let f = unreadable[0];
    assert_eq!(f["severity"], "unknown", "{f}");
    assert!(
        pids(f).contains(&i64::from(worker.pid())),
        "the unreadable finding names the worker {}: {f}",
        worker.pid()
    );
    let remedy = f["remedy"].as_str().unwrap_or_default();
    assert!(
        remedy.contains("CAP_SYS_PTRACE"),
        "the remedy says how to see it: {remedy:?}"
    );
    assert!(
        process(&doc, worker.pid()).is_none(),
        "a process it could not read is not placed on a release\n{run}"
    );
}

/// (b) As (a), plus a process of `nobody` itself in a release that was deleted: it can see
/// that one, and a CRITICAL finding outranks UNKNOWN (exit 2). The unreadable finding stays.
#[test]
fn critical_it_can_see_outranks_unknown() {
    if !can_switch_users("critical_it_can_see_outranks_unknown") {
        return;
    }
    let root = DeployRoot::new();
    let old = root.release("1");
    let cur = root.release("2");
    root.switch("1");
    open_up(&root);
    chown_tree(&old, NOBODY);
    let mine = sleep_as(NOBODY, &old);
    root.switch("2");
    root.delete("1");
    wait_after_switch();
    let worker = root_worker_naming(&root, &cur);

    let (run, doc) = check_as(&drop_to(NOBODY), &[root.path().as_os_str()]);
    assert_eq!(run.code, 2, "critical outranks unknown\n{run}");
    let deleted = findings_of(&doc, "deleted-release");
    assert_eq!(deleted.len(), 1, "{run}");
    assert_eq!(pids(deleted[0]), vec![i64::from(mine.pid())], "{run}");
    assert!(bytestr_is(&deleted[0]["release"], "1"), "{run}");
    assert!(
        unreadable_pids(&doc).contains(&i64::from(worker.pid())),
        "what it could not see is still said\n{run}"
    );
}

/// (c) A deploy user checking its own deploy root and workers still gets them as findings:
/// one worker on the old release (an old-release finding with --grace 0s), one placed on
/// current. Root's processes (this test harness, at least) it may not inspect, and root could
/// run the app's code: the answer is UNKNOWN, not the WARNING it gave when it was blind to them.
#[test]
fn deploy_user_sees_its_own_workers() {
    if !can_switch_users("deploy_user_sees_its_own_workers") {
        return;
    }
    let (root, old, cur) = on_release_2(Some(DEPLOY));
    let on_old = sleep_as(DEPLOY, &old);
    let on_cur = sleep_as(DEPLOY, &cur);

    let (run, doc) = check_as(
        &drop_to(DEPLOY),
        &[root.path().as_os_str(), "--grace".as_ref(), "0s".as_ref()],
    );
    assert_eq!(run.code, 3, "root's processes are not seen: UNKNOWN\n{run}");
    let unreadable = findings_of(&doc, "unreadable");
    assert_eq!(unreadable.len(), 1, "{run}");
    let message = unreadable[0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("running as root"), "{message}");
    let old_findings = findings_of(&doc, "old-release");
    assert_eq!(old_findings.len(), 1, "{run}");
    assert_eq!(
        pids(old_findings[0]),
        vec![i64::from(on_old.pid())],
        "{run}"
    );
    let p = process(&doc, on_cur.pid()).unwrap_or_else(|| panic!("current worker missing\n{run}"));
    assert_eq!(p["release_state"], "current", "{p}");
    assert_eq!(p["uid"], DEPLOY, "{p}");
    for own in [on_old.pid(), on_cur.pid()] {
        assert!(
            !unreadable_pids(&doc).contains(&i64::from(own)),
            "its own workers are inspected\n{run}"
        );
    }
}

/// Regression (issue 17): a root-owned deploy whose worker runs as root, checked by `nobody`,
/// answered `relwatch OK` (exit 0, Nagios `unreadable=0`): the rule counted only the releases'
/// owner when not root, and a command line naming the root. A process of root could run any
/// app's code: UNKNOWN in every format, with the count and whose, and the fix.
#[test]
fn roots_worker_on_a_root_owned_release_is_never_ok() {
    if !can_switch_users("roots_worker_on_a_root_owned_release_is_never_ok") {
        return;
    }
    let (root, old, _) = on_release_2(None);
    // Started by root in the old release; its command line names nothing.
    let worker = Child::sleep_in(&old);
    let path = root.path().as_os_str();

    let (run, doc) = check_as(&drop_to(NOBODY), &[path]);
    assert_eq!(run.code, 3, "{run}");
    let unreadable = unreadable_pids(&doc);
    assert!(unreadable.contains(&i64::from(worker.pid())), "{run}");
    let f = findings_of(&doc, "unreadable")[0];
    let message = f["message"].as_str().unwrap_or_default();
    assert!(message.contains("running as root"), "{message}");
    let remedy = f["remedy"].as_str().unwrap_or_default();
    assert!(
        remedy.contains("as root") && remedy.contains("sudo rule"),
        "{remedy}"
    );
    let not_inspected = doc["scan"]["unreadable"].as_u64().unwrap_or_default();
    assert!(not_inspected >= unreadable.len() as u64, "{run}");
    let summary = doc["summary"].as_str().unwrap_or_default();
    assert!(summary.contains("not inspected"), "{summary}");

    let text = run_as(&drop_to(NOBODY), &["check".as_ref(), path]);
    assert_eq!(text.code, 3, "{text}");
    assert!(text.stdout.starts_with("relwatch UNKNOWN"), "{text}");
    assert!(text.stdout.contains("not inspected"), "{text}");
    assert!(text.stdout.contains("running as root"), "{text}");

    let nagios = run_as(
        &drop_to(NOBODY),
        &[
            "check".as_ref(),
            path,
            "--format".as_ref(),
            "nagios".as_ref(),
        ],
    );
    assert_eq!(nagios.code, 3, "{nagios}");
    assert!(nagios.stdout.starts_with("RELWATCH UNKNOWN - "), "{nagios}");
    let counted = |label: &str| -> u64 {
        let perf = nagios
            .stdout
            .lines()
            .next()
            .and_then(|l| l.split(" | ").nth(1));
        perf.and_then(|p| p.split(' ').find_map(|d| d.strip_prefix(label)))
            .and_then(|d| d.split(';').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {label} in {nagios}"))
    };
    assert!(
        counted("unreadable=") >= 1,
        "never unreadable=0 while blind: {nagios}"
    );

    let prom = run_as(
        &drop_to(NOBODY),
        &[
            "check".as_ref(),
            path,
            "--format".as_ref(),
            "prometheus".as_ref(),
        ],
    );
    assert_eq!(prom.code, 3, "{prom}");
    let value = |prefix: &str| -> f64 {
        prom.stdout
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {prefix} in {prom}"))
    };
    assert_eq!(value("relwatch_exit_code "), 3.0, "{prom}");
    assert!(value("relwatch_unreadable_processes ") >= 1.0, "{prom}");
    let series = prom
        .stdout
        .lines()
        .find(|l| l.starts_with("relwatch_findings{") && l.contains("kind=\"unreadable\""))
        .unwrap_or_else(|| panic!("no unreadable series: {prom}"));
    assert!(series.ends_with(" 1"), "{series}");
}

/// As above on a deploy-owned release, checked by the deploy user itself: root's worker in the
/// current release is not inspected, so the answer is UNKNOWN and names it.
#[test]
fn roots_worker_on_a_deploy_owned_release_is_never_ok() {
    if !can_switch_users("roots_worker_on_a_deploy_owned_release_is_never_ok") {
        return;
    }
    let (root, _, cur) = on_release_2(Some(DEPLOY));
    let worker = Child::sleep_in(&cur);

    let (run, doc) = check_as(&drop_to(DEPLOY), &[root.path().as_os_str()]);
    assert_eq!(run.code, 3, "{run}");
    assert!(
        unreadable_pids(&doc).contains(&i64::from(worker.pid())),
        "{run}"
    );
    assert!(process(&doc, worker.pid()).is_none(), "{run}");
}

/// (d) `nobody` with only CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH sees root's workers as root
/// does: the worker naming the root is placed, nothing is unreadable, and a worker of root on a
/// deleted release is CRITICAL.
#[test]
fn two_capabilities_are_enough_to_see_roots_workers() {
    if !can_switch_users("two_capabilities_are_enough_to_see_roots_workers") {
        return;
    }
    let root = DeployRoot::new();
    let old = root.release("1");
    let cur = root.release("2");
    root.switch("1");
    open_up(&root);
    let on_old = Child::sleep_in(&old);
    root.switch("2");
    root.delete("1");
    // Started after the switch, through `current/`: on the current release.
    wait_after_switch();
    let worker = root_worker_naming(&root, &cur);

    let (run, doc) = check_as(&drop_to_with_caps(NOBODY), &[root.path().as_os_str()]);
    assert_eq!(run.code, 2, "root's worker on a deleted release\n{run}");
    assert!(findings_of(&doc, "unreadable").is_empty(), "{run}");
    let deleted = findings_of(&doc, "deleted-release");
    assert_eq!(deleted.len(), 1, "{run}");
    assert_eq!(pids(deleted[0]), vec![i64::from(on_old.pid())], "{run}");
    let p = process(&doc, worker.pid()).unwrap_or_else(|| panic!("root's worker missing\n{run}"));
    assert_eq!(p["release_state"], "current", "{p}");
    assert_eq!(p["uid"], 0, "{p}");

    // The same view as root itself.
    let (root_run, root_doc) = check_json([root.path()]);
    assert_eq!(root_run.code, run.code, "{root_run}");
    let placed = |d: &Value| -> Vec<(i64, String)> {
        let mut v: Vec<(i64, String)> = array(d, "processes")
            .iter()
            .map(|p| {
                (
                    p["pid"].as_i64().unwrap_or_default(),
                    p["release_state"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(placed(&doc), placed(&root_doc), "{run}\n{root_run}");
}

/// Regression: with `/proc` mounted `hidepid=2`, an unprivileged run does not even see other
/// users' processes, so it cannot count them as unreadable, and it answered OK over a root
/// worker on the app. It now says that /proc hides processes: UNKNOWN.
#[test]
fn proc_mounted_with_hidepid_is_unknown_not_ok() {
    if !can_switch_users("proc_mounted_with_hidepid_is_unknown_not_ok") {
        return;
    }
    let root = DeployRoot::new();
    let rel = root.release("1");
    root.switch("1");
    open_up(&root);
    let _worker = root_worker_naming(&root, &rel);
    // A private mount namespace with its own /proc, hidepid=2, then drop to nobody.
    let script = format!(
        "mount -t proc -o hidepid=2 proc /proc && exec setpriv {} {} check --format json {}",
        drop_to(NOBODY).join(" "),
        env!("CARGO_BIN_EXE_relwatch"),
        root.path().display()
    );
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .stdin(Stdio::null())
        .output()
        .expect("unshare");
    let doc: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(out.status.code(), Some(3), "{doc}");
    let f = findings_of(&doc, "unreadable");
    assert_eq!(f.len(), 1, "{doc}");
    assert!(
        f[0]["message"].as_str().unwrap().contains("hidepid"),
        "{doc}"
    );
    assert!(
        f[0]["remedy"].as_str().unwrap().contains("CAP_SYS_PTRACE"),
        "{doc}"
    );
}

/// A worker whose cwd lies deeper in `dir` than the kernel can print (more than a page:
/// `readlink` of its `cwd` fails with ENAMETOOLONG, yet `stat` through it works). perl makes
/// the directories one relative step at a time, since no path of that length can be given.
fn worker_beyond_path_max(dir: &Path) -> Child {
    let script = r#"my $n = "d" x 200; for (1..25) { mkdir $n or die "mkdir: $!"; chdir $n or die "chdir: $!" } exec "sleep", "1000""#;
    let worker = Child::spawn(Command::new("perl").args(["-e", script]).current_dir(dir));
    poll("perl to exec sleep deep in the release", || {
        (comm(worker.pid()).as_deref() == Some("sleep")).then_some(())
    });
    let cwd = std::fs::read_link(format!("/proc/{}/cwd", worker.pid()));
    assert_eq!(
        cwd.map_err(|e| e.raw_os_error()),
        Err(Some(nix::errno::Errno::ENAMETOOLONG as i32)),
        "the test needs a cwd the kernel cannot print"
    );
    worker
}

/// Regression (issue 17): a worker whose cwd path is longer than PATH_MAX was dropped as if it
/// had no cwd, so a master deep in `releases/65/...` was never reported, even after release 65
/// was deleted. It is placed by the directories above its cwd, identity and link count its
/// own: on the old release, then on the deleted one (CRITICAL), and `in-use` names it.
#[test]
fn a_cwd_longer_than_path_max_is_still_placed() {
    if !nix::unistd::geteuid().is_root() {
        cannot_run(
            "a_cwd_longer_than_path_max_is_still_placed",
            "reading the worker's cwd needs the same user or root",
        );
        return;
    }
    let root = DeployRoot::new();
    let old = root.release("65");
    root.release("66");
    root.switch("65");
    let worker = worker_beyond_path_max(&old);
    root.switch("66");

    let in_use = relwatch(["in-use".as_ref(), old.as_os_str()]);
    assert_eq!(in_use.code, 1, "{in_use}");
    assert!(
        in_use.stdout.contains(&format!("pid {}", worker.pid())),
        "{in_use}"
    );

    let (run, doc) = check_json([root.path().as_os_str(), "--grace".as_ref(), "0s".as_ref()]);
    assert_eq!(run.code, 1, "{run}");
    let old_release = findings_of(&doc, "old-release");
    assert_eq!(old_release.len(), 1, "{run}");
    assert_eq!(pids(old_release[0]), [i64::from(worker.pid())], "{run}");

    root.delete("65");
    let (run, doc) = check_json([root.path()]);
    assert_eq!(run.code, 2, "{run}");
    let deleted = findings_of(&doc, "deleted-release");
    assert_eq!(deleted.len(), 1, "{run}");
    assert_eq!(pids(deleted[0]), [i64::from(worker.pid())], "{run}");
    assert!(bytestr_is(&deleted[0]["release"], "65"), "{run}");
}

/// Regression (issue 17): run as the deploy user, as a deploy hook runs it, `in-use` exited 0
/// ("not in use", safe to `rm -rf`) for a release that a root process uses as its cwd: the
/// seed incident again. It cannot see root's processes, so it cannot tell: exit 3, saying why
/// and how to see them, in text and JSON.
#[test]
fn in_use_cannot_tell_over_processes_it_may_not_inspect() {
    if !can_switch_users("in_use_cannot_tell_over_processes_it_may_not_inspect") {
        return;
    }
    let (_root, old, _) = on_release_2(Some(DEPLOY));
    let master = Child::sleep_in(&old);

    let text = run_as(&drop_to(DEPLOY), &["in-use".as_ref(), old.as_os_str()]);
    assert_eq!(
        text.code, 3,
        "a root process it may not read could hold it\n{text}"
    );
    assert!(text.stdout.contains(": cannot tell"), "{text}");
    assert!(!text.stdout.contains("not in use"), "{text}");
    assert!(text.stdout.contains("running as root"), "{text}");
    assert!(text.stdout.contains("sudo rule"), "{text}");

    let json = run_as(
        &drop_to(DEPLOY),
        &[
            "in-use".as_ref(),
            old.as_os_str(),
            "--format".as_ref(),
            "json".as_ref(),
        ],
    );
    assert_eq!(json.code, 3, "{json}");
    let doc = json.json();
    assert_eq!(doc["exit_code"], 3, "{doc}");
    assert_eq!(doc["in_use"], false, "{doc}");
    assert_eq!(doc["cannot_tell"], true, "{doc}");
    assert_eq!(doc["paths"][0]["cannot_tell"], true, "{doc}");
    let not_inspected = &doc["not_inspected"];
    assert!(
        not_inspected["processes"].as_u64().unwrap_or_default() >= 1,
        "{doc}"
    );
    assert!(
        array(not_inspected, "uids").contains(&Value::from(0)),
        "{doc}"
    );
    assert!(
        not_inspected["fix"]
            .as_str()
            .unwrap_or_default()
            .contains("sudo"),
        "{doc}"
    );

    // Root sees the master: in use.
    let as_root = relwatch(["in-use".as_ref(), old.as_os_str()]);
    assert_eq!(as_root.code, 1, "{as_root}");
    assert!(
        as_root.stdout.contains(&format!("pid {}", master.pid())),
        "{as_root}"
    );
}

/// Blind or not, a release it sees in use is in use: the deploy user's own worker makes
/// `in-use` exit 1, naming it.
#[test]
fn in_use_still_names_its_own_holders_when_blind() {
    if !can_switch_users("in_use_still_names_its_own_holders_when_blind") {
        return;
    }
    let (_root, old, _) = on_release_2(Some(DEPLOY));
    let own = sleep_as(DEPLOY, &old);

    let run = run_as(&drop_to(DEPLOY), &["in-use".as_ref(), old.as_os_str()]);
    assert_eq!(run.code, 1, "{run}");
    assert!(run.stdout.contains(&format!("pid {}", own.pid())), "{run}");
}

/// Regression (issue 17): `wait` run as the deploy user did not see root's worker still on
/// the old release and answered "converged" (0). It cannot tell: exit 3 at once, saying why
/// and how to see it (not after the timeout).
#[test]
fn wait_cannot_tell_over_processes_it_may_not_inspect() {
    if !can_switch_users("wait_cannot_tell_over_processes_it_may_not_inspect") {
        return;
    }
    let root = DeployRoot::new();
    let old = root.release("1");
    root.switch("1");
    let laggard = Child::sleep_in(&old);
    root.release("2");
    root.switch("2");
    open_up(&root);
    chown_tree(root.path(), DEPLOY);

    let started = std::time::Instant::now();
    let run = run_as(
        &drop_to(DEPLOY),
        &[
            "wait".as_ref(),
            root.path().as_os_str(),
            "--timeout".as_ref(),
            "50s".as_ref(),
        ],
    );
    assert_eq!(run.code, 3, "{run}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(40),
        "it did not wait: {run}"
    );
    assert!(run.stdout.contains("UNKNOWN, cannot tell"), "{run}");
    assert!(run.stdout.contains("running as root"), "{run}");
    assert!(run.stdout.contains("sudo rule"), "{run}");

    // With the two capabilities it sees the laggard and waits for it: timed out, named.
    let seen = run_as(
        &drop_to_with_caps(DEPLOY),
        &[
            "wait".as_ref(),
            root.path().as_os_str(),
            "--timeout".as_ref(),
            "1s".as_ref(),
        ],
    );
    assert_eq!(seen.code, 1, "{seen}");
    assert!(
        seen.stdout.contains(&format!("pid {}", laggard.pid())),
        "{seen}"
    );
}
