//! Privileges: what `relwatch check` answers when it runs without root.
//!
//! relwatch reads other users' `cwd` and `exe` links, which needs root or `CAP_SYS_PTRACE`
//! (plus `CAP_DAC_READ_SEARCH` for `environ` and `fd/`). Without them it must never answer OK
//! over what it could not see: a process that may belong to the app but cannot be inspected is
//! an `unreadable` finding (UNKNOWN, exit 3) whose remedy names the capability, unless it
//! already sees something critical (exit 2). A deploy user checking its own workers gets a
//! full answer, and the two capabilities alone are enough to see root's workers.
//!
//! The tests run the built binary through `setpriv` as uid 65534 (nobody) or 65533 (a deploy
//! user without a passwd entry: setpriv needs none), so nothing on the host is changed. They
//! need root to switch users and skip with a message otherwise.

mod util;

use std::ffi::{OsStr, OsString};
use std::os::unix::fs::{lchown, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;
use util::*;

const NOBODY: u32 = 65534;
const DEPLOY: u32 = 65533;

/// `setpriv` arguments that drop to `uid` (and the same gid) with no supplementary groups.
fn drop_to(uid: u32) -> Vec<String> {
    vec![
        format!("--reuid={uid}"),
        format!("--regid={uid}"),
        "--clear-groups".to_string(),
    ]
}

/// `setpriv` arguments that drop to `uid` but keep CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH
/// (ambient, so they survive the exec of relwatch).
fn drop_to_with_caps(uid: u32) -> Vec<String> {
    let mut a = drop_to(uid);
    a.push("--inh-caps=+sys_ptrace,+dac_read_search".to_string());
    a.push("--ambient-caps=+sys_ptrace,+dac_read_search".to_string());
    a
}

/// Whether this test can run: root, `setpriv` present, and the binary executable by `nobody`.
fn can_switch_users(test: &str) -> bool {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped {test}: switching users needs root");
        return false;
    }
    let probe = Command::new("setpriv")
        .args(drop_to(NOBODY))
        .arg(env!("CARGO_BIN_EXE_relwatch"))
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    match probe {
        Ok(s) if s.success() => true,
        Ok(s) => {
            eprintln!(
                "skipped {test}: uid {NOBODY} cannot run {} ({s}): is a directory above it private?",
                env!("CARGO_BIN_EXE_relwatch")
            );
            false
        }
        Err(e) => {
            eprintln!("skipped {test}: cannot run setpriv: {e}");
            false
        }
    }
}

/// Runs `setpriv SETPRIV... relwatch check --format json ARGS...` with a clean environment and
/// its cwd at `/`, killed by pid after [`RUN_DEADLINE`]. Checks that the exit code agrees with
/// the document and that nothing panicked.
fn check_as(setpriv: &[String], args: &[&OsStr]) -> (Run, Value) {
    let mut all: Vec<OsString> = setpriv.iter().map(OsString::from).collect();
    all.push(env!("CARGO_BIN_EXE_relwatch").into());
    all.extend(["check", "--format", "json"].map(OsString::from));
    all.extend(args.iter().map(|a| a.to_os_string()));
    let run = run_program("setpriv", all);
    assert!(!run.stderr.contains("panicked"), "relwatch panicked\n{run}");
    let doc = run.json();
    assert_eq!(
        doc["exit_code"].as_i64(),
        Some(i64::from(run.code)),
        "`exit_code` differs from the exit code\n{run}"
    );
    (run, doc)
}

/// Makes the deploy root readable and traversable by everyone, up to and including the
/// temporary directory (tempfile creates it 0700), so an unprivileged run can read the layout.
fn open_up(root: &DeployRoot) {
    for dir in [root.tmp(), root.path().to_path_buf(), root.releases_dir()] {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
            .unwrap_or_else(|e| panic!("chmod {}: {e}", dir.display()));
    }
}

/// `chown -hR uid:uid` (links themselves, never followed).
fn chown_tree(path: &Path, uid: u32) {
    lchown(path, Some(uid), Some(uid)).unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
    let meta = std::fs::symlink_metadata(path).expect("lstat");
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).expect("read_dir") {
            chown_tree(&entry.expect("dir entry").path(), uid);
        }
    }
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

/// `sleep 1000` in `dir`, running as `uid` (setpriv execs sleep: the pid stays the same).
fn sleep_as(uid: u32, dir: &Path) -> Child {
    let child = Child::spawn(
        Command::new("setpriv")
            .args(drop_to(uid))
            .args(["sleep", "1000"])
            .current_dir(dir),
    );
    poll("the unprivileged sleep to exec", || {
        (comm(child.pid()).as_deref() == Some("sleep")).then_some(())
    });
    child
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

/// (c) A deploy user checking its own deploy root and workers: a full answer, nothing
/// unreadable. One worker on the old release (WARNING with --grace 0s), one on current.
#[test]
fn deploy_user_sees_its_own_workers() {
    if !can_switch_users("deploy_user_sees_its_own_workers") {
        return;
    }
    let root = DeployRoot::new();
    let old = root.release("1");
    let cur = root.release("2");
    root.switch("2");
    open_up(&root);
    chown_tree(root.path(), DEPLOY);
    let on_old = sleep_as(DEPLOY, &old);
    let on_cur = sleep_as(DEPLOY, &cur);

    let (run, doc) = check_as(
        &drop_to(DEPLOY),
        &[root.path().as_os_str(), "--grace".as_ref(), "0s".as_ref()],
    );
    assert_eq!(run.code, 1, "one worker on the old release\n{run}");
    assert!(findings_of(&doc, "unreadable").is_empty(), "{run}");
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
