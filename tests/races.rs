//! Races and hostile layouts: `relwatch check` against a host that changes under it.
//!
//! Every /proc read and every layout read is racy: pids come and go by the thousand, `current`
//! flips mid-scan, a cleanup deletes a release mid-scan, a deploy root disappears. Whatever
//! happens, relwatch must not panic, must not give up (exit 3) over a layout it could read,
//! and must not lie: every finding must be true of one moment's layout, and nothing is
//! reported on an old or deleted release that never was.
//!
//! Loops here are bounded in count and in time; they never assert on time. Every process is
//! started through the harness's [`Child`] guard, which ends it (and its children) by pid.

mod util;

use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use util::*;

/// What every run must satisfy, whatever happened around it: it ended by itself with an exit
/// code of the convention and did not panic.
fn assert_sane(run: &Run) {
    assert!(!run.stderr.contains("panicked"), "relwatch panicked\n{run}");
    assert!(
        (0..=3).contains(&run.code),
        "exit code outside 0..=3\n{run}"
    );
}

/// `relwatch check --format json ROOT ARGS...`, sane, with the document parsed. The exit code
/// and the document's `exit_code`/`status` agree (checked by the harness).
fn check(root: &Path, args: &[&str]) -> (Run, Value) {
    let mut all: Vec<&std::ffi::OsStr> = vec![root.as_os_str()];
    all.extend(args.iter().map(std::ffi::OsStr::new));
    let (run, doc) = check_json(all);
    assert_sane(&run);
    (run, doc)
}

/// The only app of a one-root run.
fn only_app(doc: &Value) -> &Value {
    let apps = array(doc, "apps");
    assert_eq!(apps.len(), 1, "one root, one app: {doc}");
    &apps[0]
}

fn release_of(p: &Value) -> Option<Vec<u8>> {
    bytestr(&p["release"])
}

/// Calls `f` until it says it has seen enough after at least `min` calls, or `max` calls were
/// made. On a loaded host each run of relwatch takes longer: once `budget` has passed, the loop
/// stops after [`FLOOR`] calls even short of `min` (it is bounded in time, never asserted on
/// time). Returns the number of calls.
fn repeat(min: usize, max: usize, budget: Duration, mut f: impl FnMut() -> bool) -> usize {
    let start = Instant::now();
    let mut n = 0;
    while n < max {
        let enough = f();
        n += 1;
        let late = start.elapsed() > budget;
        if (n >= min && (enough || late)) || (late && n >= FLOOR) {
            break;
        }
    }
    n
}

/// The fewest runs any loop makes.
const FLOOR: usize = 5;

// ---------------------------------------------------------------------------------------------
// (a) thousands of short-lived processes
// ---------------------------------------------------------------------------------------------

/// A shell in `dir` that starts 1,000 rounds of three short-lived processes (`/bin/true`
/// twice, and `sh -c :` whose command line goes through `current/`), reaping each round with
/// `wait`, then sleeps. It writes the number of rounds done to `count` every 50 rounds and
/// creates `done` at the end.
fn churn(root: &DeployRoot, dir: &Path) -> (Child, std::path::PathBuf, std::path::PathBuf) {
    let done = root.tmp().join("churn-done");
    let count = root.tmp().join("churn-count");
    let script = format!(
        "i=0\n\
         while [ $i -lt 1000 ]; do\n\
           /bin/true & /bin/true & /bin/sh -c : '{current}/artisan' queue:work\n\
           wait\n\
           i=$((i+1))\n\
           [ $((i % 50)) -eq 0 ] && echo $i > '{count}'\n\
         done\n\
         : > '{done}'\n\
         exec sleep 1000",
        current = root.current().display(),
        count = count.display(),
        done = done.display(),
    );
    let child = Child::spawn(Command::new("sh").arg("-c").arg(script).current_dir(dir));
    (child, done, count)
}

fn rounds(count: &Path) -> usize {
    std::fs::read_to_string(count)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// ~3,000 short-lived processes start and end in the current release while `check` runs
/// again and again. Every one of them runs the current release, so no run may report an old
/// or deleted release, list a process on one, or give up (exit 3).
#[test]
fn thousands_of_short_lived_processes_on_current_are_never_old_or_deleted() {
    let root = DeployRoot::new();
    let rel = root.release("1");
    root.switch("1");
    // Processes that name `current/` are judged by start time: start them clearly after.
    wait_after_switch();
    let (churn, done, count) = churn(&root, &rel);

    let mut during = 0;
    let mut seen_churn = 0;
    let mut other_kinds = std::collections::BTreeMap::new();
    let runs = repeat(20, 400, Duration::from_secs(8), || {
        if !done.exists() {
            during += 1;
        }
        let (run, doc) = check(root.path(), &["--grace", "0s"]);
        assert_ne!(run.code, 3, "gave up over a readable layout\n{run}");
        for f in array(&doc, "findings") {
            assert!(
                f["kind"] != "old-release" && f["kind"] != "deleted-release",
                "every process here runs the current release, yet: {f}\n{run}"
            );
            *other_kinds
                .entry(f["kind"].as_str().unwrap_or("?").to_owned())
                .or_insert(0) += 1;
        }
        for p in array(&doc, "processes") {
            assert_eq!(
                p["release_state"], "current",
                "a process of the current release reported otherwise: {p}\n{run}"
            );
            assert_eq!(release_of(p).as_deref(), Some(&b"1"[..]), "{p}");
        }
        if process(&doc, churn.pid()).is_some() {
            seen_churn += 1;
        }
        done.exists()
    });
    eprintln!(
        "{runs} runs, {during} of them while ~{} processes were started and ended; \
         other findings: {other_kinds:?}",
        3 * rounds(&count)
    );
    assert!(
        during > 0,
        "no run overlapped the churn: the test proved nothing"
    );
    assert!(
        seen_churn > 0,
        "the long-lived shell in the current release was never listed"
    );
}

/// A shell that reaps every child with `wait` leaves each one a zombie for a moment. A scan
/// that catches that moment must not call it "does not reap its children" (a WARNING on a
/// healthy host, at random). Regression: any zombie child of an app process was reported,
/// however briefly it had been one; zombies are now confirmed by a second look.
#[test]
fn children_reaped_at_once_are_not_zombie_findings() {
    let root = DeployRoot::new();
    let rel = root.release("1");
    root.switch("1");
    wait_after_switch();
    let (_churn, done, _count) = churn(&root, &rel);
    repeat(20, 400, Duration::from_secs(8), || {
        let (run, doc) = check(root.path(), &["--grace", "0s"]);
        assert!(
            findings_of(&doc, "zombie").is_empty(),
            "a child reaped at once reported as a zombie\n{run}"
        );
        done.exists()
    });
}

// ---------------------------------------------------------------------------------------------
// (b) `current` flipping during scans
// ---------------------------------------------------------------------------------------------

/// A thread flips `current` between releases `a` and `b` (atomically, relative and absolute
/// targets in turn) as fast as a deploy tool could, while `check` runs again and again, with
/// one worker on each release. A report must be true of one layout: the release it names as
/// current is the one every process on it is "current" for, and the worker on the other one
/// is "old" and has the old-release finding.
#[test]
fn current_flipping_during_scans_gives_one_consistent_layout() {
    let root = DeployRoot::new();
    let dir_a = root.release("a");
    let dir_b = root.release("b");
    root.switch("a");
    let worker_a = Child::sleep_in(&dir_a);
    let worker_b = Child::sleep_in(&dir_b);
    let stop = AtomicBool::new(false);
    let flips = AtomicUsize::new(0);

    thread::scope(|s| {
        let flipper = s.spawn(|| {
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) && i < 1_000_000 {
                let name = if i.is_multiple_of(2) { "b" } else { "a" };
                if i % 4 < 2 {
                    root.switch(name);
                } else {
                    root.switch_absolute(name);
                }
                i += 1;
                flips.store(i, Ordering::Relaxed);
                thread::sleep(Duration::from_micros(300));
            }
        });
        // Stop the flipper even if an assertion fails below.
        struct StopOnDrop<'a>(&'a AtomicBool);
        impl Drop for StopOnDrop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let _stop = StopOnDrop(&stop);

        let mut currents = std::collections::BTreeSet::new();
        repeat(20, 40, Duration::from_secs(10), || {
            let (run, doc) = check(root.path(), &["--grace", "0s"]);
            assert!(
                run.code == 0 || run.code == 1,
                "only an old-release finding (info or warning) is true here\n{run}"
            );
            let app = only_app(&doc);
            assert_eq!(app["current_state"], "ok", "{app}\n{run}");
            let current = bytestr(&app["current_release"]).expect("current_release");
            assert!(
                current == b"a" || current == b"b",
                "current is a or b: {app}"
            );
            currents.insert(current.clone());

            // Every release listed is "current" exactly when it is the current one.
            for r in array(app, "releases") {
                let name = bytestr(&r["name"]).expect("release name");
                let want = if name == current { "current" } else { "old" };
                assert_eq!(r["state"], want, "release {r} with current {app}\n{run}");
            }
            // Every process is "current" exactly when it runs the current release.
            for p in array(&doc, "processes") {
                let rel = release_of(p).expect("a placed process names its release");
                let want = if rel == current { "current" } else { "old" };
                assert_eq!(
                    p["release_state"],
                    want,
                    "process {p} with current {}\n{run}",
                    String::from_utf8_lossy(&current)
                );
            }
            // Both workers are there, on their own release.
            let (on_current, on_other) = if current == b"a" {
                (&worker_a, &worker_b)
            } else {
                (&worker_b, &worker_a)
            };
            let pc = process(&doc, on_current.pid())
                .unwrap_or_else(|| panic!("worker on current missing\n{run}"));
            assert_eq!(pc["release_state"], "current", "{pc}");
            let po = process(&doc, on_other.pid())
                .unwrap_or_else(|| panic!("worker on the old release missing\n{run}"));
            assert_eq!(po["release_state"], "old", "{po}");

            // Findings: only old-release, about the other release and its worker.
            let mut old_pids = Vec::new();
            for f in array(&doc, "findings") {
                assert_eq!(f["kind"], "old-release", "{f}\n{run}");
                let rel = bytestr(&f["release"]).expect("release of an old-release finding");
                assert_ne!(rel, current, "old-release about the current release: {f}");
                old_pids.extend(pids(f));
            }
            assert_eq!(
                old_pids,
                vec![i64::from(on_other.pid())],
                "the worker on the other release, and only it, is old\n{run}"
            );
            currents.len() == 2
        });
        stop.store(true, Ordering::Relaxed);
        flipper.join().expect("flipper thread");
        eprintln!(
            "{} flips; runs saw current = {:?}",
            flips.load(Ordering::Relaxed),
            currents
        );
        assert!(flips.load(Ordering::Relaxed) > 20, "current hardly flipped");
    });
}

// ---------------------------------------------------------------------------------------------
// (c) a release deleted during scans
// ---------------------------------------------------------------------------------------------

/// Release 1 (200 files, a master with two workers in it, and a copy of `sleep` run from it)
/// is deleted by another thread, file by file, while `check` runs again and again. Before and during
/// the deletion its processes are on an old or deleted release; every run that starts after the
/// deletion finished reports them as on deleted release 1, CRITICAL. Never exit 3.
#[test]
fn release_deleted_during_scans_is_reported_deleted_once_gone() {
    let root = DeployRoot::new();
    let old = root.release("1");
    let mut files = Vec::new();
    for d in 0..10 {
        let pkg = old.join(format!("vendor/pkg{d}"));
        std::fs::create_dir_all(&pkg).expect("mkdir vendor/pkg");
        for f in 0..20 {
            let file = pkg.join(format!("file{f}.php"));
            std::fs::write(&file, "<?php\n").expect("write file");
            files.push(file);
        }
    }
    root.release("2");
    root.switch("1");
    let master = Child::master_with_workers(&old, 2);
    let workers = master.wait_for_children(2, "sleep");
    let exe = Child::exe_copy_in(&old);
    root.switch("2");
    let ours: Vec<i32> = [master.pid(), exe.pid()]
        .into_iter()
        .chain(workers.iter().copied())
        .collect();

    let runs_started = AtomicUsize::new(0);
    let deleted = AtomicBool::new(false);
    thread::scope(|s| {
        let deleter = s.spawn(|| {
            poll("two runs to start before the deletion", || {
                (runs_started.load(Ordering::SeqCst) >= 2).then_some(())
            });
            // A cleanup of a big release takes a while: file by file, the directory last.
            for file in &files {
                std::fs::remove_file(file).expect("remove file");
                thread::sleep(Duration::from_millis(1));
            }
            root.delete("1");
            deleted.store(true, Ordering::SeqCst);
        });

        // One run: what it must say, given whether the deletion had finished before it began.
        let one_run = |gone_before_run: bool| {
            let (run, doc) = check(root.path(), &["--grace", "0s"]);
            assert!(
                run.code == 1 || run.code == 2,
                "old (warning) or deleted (critical), never unknown\n{run}"
            );
            for &pid in &ours {
                let p = process(&doc, pid)
                    .unwrap_or_else(|| panic!("pid {pid} of release 1 missing\n{run}"));
                assert_eq!(release_of(p).as_deref(), Some(&b"1"[..]), "{p}");
                let state = p["release_state"].as_str().unwrap_or_default();
                assert!(state == "old" || state == "deleted", "{p}\n{run}");
                if gone_before_run {
                    assert_eq!(state, "deleted", "deletion finished before this run: {p}");
                }
            }
            if gone_before_run {
                assert_eq!(run.code, 2, "a deleted release is CRITICAL\n{run}");
                let found: Vec<i64> = findings_of(&doc, "deleted-release")
                    .iter()
                    .inspect(|f| assert!(bytestr_is(&f["release"], "1"), "{f}"))
                    .flat_map(|f| pids(f))
                    .collect();
                for &pid in &ours {
                    assert!(
                        found.contains(&i64::from(pid)),
                        "pid {pid} not in a deleted-release finding\n{run}"
                    );
                }
                let with_master = findings_of(&doc, "deleted-release")
                    .into_iter()
                    .find(|f| f["master"].as_i64() == Some(i64::from(master.pid())));
                assert!(with_master.is_some(), "the master is named\n{run}");
                let r1 = array(only_app(&doc), "releases")
                    .iter()
                    .find(|r| bytestr_is(&r["name"], "1"))
                    .unwrap_or_else(|| panic!("release 1 not listed\n{run}"));
                assert_eq!(r1["state"], "deleted", "{r1}");
                assert_eq!(r1["exists"], false, "{r1}");
            }
        };

        let mut after = 0;
        repeat(8, 40, Duration::from_secs(10), || {
            let gone_before_run = deleted.load(Ordering::SeqCst);
            runs_started.fetch_add(1, Ordering::SeqCst);
            one_run(gone_before_run);
            after += usize::from(gone_before_run);
            after >= 4
        });
        deleter.join().expect("deleter thread");
        // However slow the host, one run after the deletion finished.
        one_run(true);
    });
}

// ---------------------------------------------------------------------------------------------
// (d) hostile layouts
// ---------------------------------------------------------------------------------------------

/// A root that no longer exists: UNKNOWN with a message naming it, no panic, no document
/// claiming anything.
#[test]
fn vanished_root_is_a_clear_unknown() {
    let root = DeployRoot::new();
    root.release("1");
    root.switch("1");
    let path = root.path().to_path_buf();
    std::fs::remove_dir_all(&path).expect("remove the root");
    for format in ["json", "text"] {
        let run = relwatch([
            "check".as_ref(),
            "--format".as_ref(),
            format.as_ref(),
            path.as_os_str(),
        ]);
        assert_sane(&run);
        assert_eq!(run.code, 3, "a root that is not there is UNKNOWN\n{run}");
        assert!(
            run.stderr.contains(&*path.to_string_lossy()),
            "the message names the root\n{run}"
        );
        assert!(
            !run.stdout.contains("\"status\": \"ok\"") && !run.stdout.contains(" OK"),
            "no OK over a root that is not there\n{run}"
        );
    }
}

/// The whole deploy root is removed and made again while `check` runs, with a worker started
/// in its first incarnation (its cwd is deleted from then on). Whatever moment a run catches:
/// no panic, an answer of the convention, and that worker is never on a current or old release.
#[test]
fn root_disappearing_while_checked() {
    let root = DeployRoot::new();
    let rel = root.release("1");
    root.switch("1");
    let worker = Child::sleep_in(&rel);
    let path = root.path().to_path_buf();
    let stop = AtomicBool::new(false);
    let first_gone = AtomicBool::new(false);

    thread::scope(|s| {
        let churn = s.spawn(|| {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) && i < 100_000 {
                let _ = std::fs::remove_dir_all(&path);
                first_gone.store(true, Ordering::SeqCst);
                thread::sleep(Duration::from_micros(500));
                let _ = std::fs::create_dir_all(path.join("releases/1"));
                atomic_symlink("releases/1", path.join("current"));
                thread::sleep(Duration::from_micros(500));
                i += 1;
            }
        });
        struct StopOnDrop<'a>(&'a AtomicBool);
        impl Drop for StopOnDrop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let _stop = StopOnDrop(&stop);
        poll("the root to be deleted once", || {
            first_gone.load(Ordering::SeqCst).then_some(())
        });

        let mut codes = std::collections::BTreeSet::new();
        repeat(20, 20, Duration::from_secs(10), || {
            let run = relwatch([
                "check".as_ref(),
                "--format".as_ref(),
                "json".as_ref(),
                "--grace".as_ref(),
                "0s".as_ref(),
                path.as_os_str(),
            ]);
            assert_sane(&run);
            codes.insert(run.code);
            if run.code == 3 {
                assert!(
                    run.stderr.contains("relwatch"),
                    "UNKNOWN says why on stderr\n{run}"
                );
                return false;
            }
            let doc = run.json();
            assert_eq!(
                doc["exit_code"].as_i64(),
                Some(i64::from(run.code)),
                "{run}"
            );
            assert!(run.code == 0 || run.code == 2, "{run}");
            if let Some(p) = process(&doc, worker.pid()) {
                assert_eq!(
                    p["release_state"], "deleted",
                    "its release directory was deleted: {p}\n{run}"
                );
            }
            false
        });
        stop.store(true, Ordering::Relaxed);
        churn.join().expect("churn thread");
        eprintln!("exit codes seen: {codes:?}");
    });
}

/// `current -> current2 -> current` and `current -> current`: a broken link, CRITICAL, with a
/// finding and no hang or panic; a process in a release is not on "the current release".
#[test]
fn symlink_loop_as_current_is_broken_current() {
    for two_links in [true, false] {
        let root = DeployRoot::new();
        let rel = root.release("1");
        let worker = Child::sleep_in(&rel);
        if two_links {
            symlink("current2", root.current()).expect("current -> current2");
            symlink("current", root.path().join("current2")).expect("current2 -> current");
        } else {
            symlink("current", root.current()).expect("current -> current");
        }
        let (run, doc) = check(root.path(), &["--grace", "0s"]);
        assert_eq!(run.code, 2, "a looping current is CRITICAL\n{run}");
        let broken = findings_of(&doc, "broken-current");
        assert_eq!(broken.len(), 1, "{run}");
        assert!(
            !broken[0]["message"].as_str().unwrap_or_default().is_empty(),
            "{run}"
        );
        let app = only_app(&doc);
        assert_ne!(app["current_state"], "ok", "{app}");
        assert!(app["current_release"].is_null(), "{app}");
        if let Some(p) = process(&doc, worker.pid()) {
            assert_ne!(p["release_state"], "current", "{p}\n{run}");
        }
        let text = relwatch(["check".as_ref(), root.path().as_os_str()]);
        assert_sane(&text);
        assert_eq!(text.code, 2, "{text}");
    }
}

/// `current` pointing outside the releases: at a sibling directory, at `/`, at the releases
/// directory itself, into a release's subdirectory, and through a symlink planted in
/// `releases/` that leads to `/`. Each is `outside-releases`, CRITICAL; a process whose cwd is
/// the outside directory is never placed on "the current release".
#[test]
fn current_pointing_outside_the_releases() {
    let root = DeployRoot::new();
    let rel = root.release("1");
    std::fs::create_dir_all(rel.join("sub")).expect("mkdir sub");
    let outside = root.tmp().join("elsewhere");
    std::fs::create_dir_all(&outside).expect("mkdir elsewhere");
    symlink("/", root.releases_dir().join("evil")).expect("releases/evil -> /");
    let stranger = Child::sleep_in(&outside);
    let at_slash = Child::sleep_in("/");

    let targets = [
        outside.clone(),
        "/".into(),
        root.releases_dir(),
        rel.join("sub"),
        "releases/evil".into(),
        "releases/1/../../..".into(),
    ];
    for target in targets {
        root.point_current_at(&target);
        let (run, doc) = check(root.path(), &["--grace", "0s"]);
        let what = format!("current -> {}", target.display());
        assert_eq!(run.code, 2, "{what}: CRITICAL\n{run}");
        let app = only_app(&doc);
        assert_eq!(app["current_state"], "outside-releases", "{what}: {app}");
        assert!(app["current_release"].is_null(), "{what}: {app}");
        assert_eq!(
            findings_of(&doc, "broken-current").len(),
            1,
            "{what}\n{run}"
        );
        for p in array(&doc, "processes") {
            assert_ne!(p["release_state"], "current", "{what}: {p}");
        }
        assert!(
            process(&doc, stranger.pid()).is_none(),
            "{what}: a process outside the releases was placed\n{run}"
        );
        assert!(
            process(&doc, at_slash.pid()).is_none(),
            "{what}: a process at / was placed through releases/evil\n{run}"
        );
    }
}

/// A temporary directory on tmpfs when there is one (`/dev/shm`): making and removing 10,000
/// directories on a slow disk takes longer than the scan under test.
fn fast_tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("relwatch-test-")
        .tempdir_in("/dev/shm")
        .unwrap_or_else(|_| tempdir())
}

/// A releases directory with 10,000 releases, plus files and links to `/` among them: one scan
/// names the old worker, the current worker is current, `releases/evil* -> /` are not releases
/// and place nobody.
#[test]
fn ten_thousand_releases() {
    let tmp = fast_tempdir();
    let root = std::fs::canonicalize(tmp.path())
        .expect("canonical temporary directory")
        .join("bigapp");
    let dir = root.join("releases");
    std::fs::create_dir_all(&dir).expect("mkdir releases");
    for i in 0..10_000 {
        std::fs::create_dir(dir.join(format!("{i:05}"))).expect("mkdir release");
    }
    for i in 0..100 {
        std::fs::write(dir.join(format!("file{i}")), "x").expect("write file");
        symlink("/", dir.join(format!("evil{i}"))).expect("symlink to /");
    }
    atomic_symlink("releases/09999", root.join("current"));
    let old = Child::sleep_in(dir.join("05000"));
    let cur = Child::sleep_in(dir.join("09999"));
    let at_slash = Child::sleep_in("/");

    let (run, doc) = check(&root, &["--grace", "0s"]);
    assert_eq!(run.code, 1, "one worker on an old release: WARNING\n{run}");
    let app = only_app(&doc);
    assert!(bytestr_is(&app["current_release"], "09999"), "{app}");
    let old_findings = findings_of(&doc, "old-release");
    assert_eq!(old_findings.len(), 1, "{run}");
    assert!(bytestr_is(&old_findings[0]["release"], "05000"), "{run}");
    assert_eq!(pids(old_findings[0]), vec![i64::from(old.pid())], "{run}");
    let pc = process(&doc, cur.pid()).unwrap_or_else(|| panic!("current worker missing\n{run}"));
    assert_eq!(pc["release_state"], "current", "{pc}");
    assert!(
        process(&doc, at_slash.pid()).is_none(),
        "placed via a link to /\n{run}"
    );
    for r in array(app, "releases") {
        let name = bytestr(&r["name"]).unwrap_or_default();
        assert!(
            !name.starts_with(b"evil") && !name.starts_with(b"file"),
            "not a release: {r}"
        );
    }

    let text = relwatch([
        "check".as_ref(),
        "--grace".as_ref(),
        "0s".as_ref(),
        root.as_os_str(),
    ]);
    assert_sane(&text);
    assert_eq!(text.code, 1, "{text}");
}
