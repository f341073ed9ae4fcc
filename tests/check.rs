//! Integration tests of `relwatch check` against real processes and real deploy roots.
//!
//! Every test builds its own deploy root in its own temporary directory and starts its own
//! processes, so the tests are independent and run in parallel: `relwatch check ROOT` reads every
//! process on the host but only reports the ones in ROOT.

mod util;

use std::collections::BTreeSet;

use util::*;

/// A master (`sh`) with two forked workers, all started in release 1. The deploy switches to
/// release 2 and the cleanup deletes release 1: one CRITICAL finding naming the master.
#[test]
fn master_with_workers_on_a_deleted_release() {
    let root = DeployRoot::new();
    let old = root.release("1");
    root.switch("1");
    let master = Child::master_with_workers(&old, 2);
    let workers = master.wait_for_children(2, "sleep");
    root.release("2");
    root.switch("2");
    root.delete("1");

    let (run, doc) = check_json([root.path()]);
    assert_eq!(run.code, 2, "a deleted release is CRITICAL\n{run}");

    let deleted = findings_of(&doc, "deleted-release");
    assert_eq!(
        deleted.len(),
        1,
        "one finding for the master and its workers, not one per process\n{run}"
    );
    let f = deleted[0];
    assert_eq!(f["severity"], "critical", "{f}");
    assert_eq!(f["app"], root.name().as_str(), "{f}");
    assert!(
        bytestr_is(&f["release"], "1"),
        "release should be \"1\": {f}"
    );
    assert_eq!(
        f["master"].as_i64(),
        Some(i64::from(master.pid())),
        "`master` is the master's pid: {f}"
    );
    let pids = pids(f);
    assert_eq!(
        pids.first().copied(),
        Some(i64::from(master.pid())),
        "the master comes first in `pids`: {f}"
    );
    for w in &workers {
        assert!(pids.contains(&i64::from(*w)), "worker {w} missing from {f}");
    }
    let message = f["message"].as_str().unwrap_or_default();
    assert!(
        message.to_lowercase().contains("master"),
        "the message should say it is a master: {message:?}"
    );
    assert!(
        !f["remedy"].as_str().unwrap_or_default().is_empty(),
        "a remedy is given: {f}"
    );
    let hows = evidence_hows(f, master.pid());
    assert!(
        hows.iter().any(|h| h == "cwd"),
        "the master is placed by its cwd: {f}"
    );

    let p = process(&doc, master.pid()).unwrap_or_else(|| panic!("master not in processes\n{run}"));
    assert_eq!(p["master"], true, "{p}");
    assert_eq!(p["release_state"], "deleted", "{p}");
    for w in &workers {
        let p = process(&doc, *w).unwrap_or_else(|| panic!("worker {w} not in processes\n{run}"));
        assert_eq!(p["ppid"].as_i64(), Some(i64::from(master.pid())), "{p}");
        assert_eq!(p["release_state"], "deleted", "{p}");
    }
}

/// A process on an existing release that is no longer current: `info` within the grace period
/// (exit 0), `warning` after it (exit 1).
#[test]
fn old_release_respects_the_grace_period() {
    let root = DeployRoot::new();
    let old = root.release("1");
    root.switch("1");
    let worker = Child::sleep_in(&old);
    root.release("2");
    root.switch("2");

    let (run, doc) = check_json([root.path().as_os_str(), "--grace".as_ref(), "1h".as_ref()]);
    assert_eq!(
        run.code, 0,
        "within the grace period an old release is only info\n{run}"
    );
    let old_findings = findings_of(&doc, "old-release");
    assert_eq!(old_findings.len(), 1, "{run}");
    let f = old_findings[0];
    assert_eq!(f["severity"], "info", "{f}");
    assert!(bytestr_is(&f["release"], "1"), "{f}");
    assert_eq!(pids(f), vec![i64::from(worker.pid())], "{f}");
    assert!(findings_of(&doc, "deleted-release").is_empty(), "{run}");
    // The headline says the count is information, whatever the status word in front says.
    let summary = doc["summary"].as_str().unwrap_or_default();
    assert!(
        summary.starts_with("1 process on an old release (info)"),
        "{summary}"
    );

    let (run, doc) = check_json([root.path().as_os_str(), "--grace".as_ref(), "0s".as_ref()]);
    assert_eq!(
        run.code, 1,
        "after the grace period an old release is a WARNING\n{run}"
    );
    let summary = doc["summary"].as_str().unwrap_or_default();
    assert!(
        summary.starts_with("1 process on an old release (1 app"),
        "{summary}"
    );
    let old_findings = findings_of(&doc, "old-release");
    assert_eq!(old_findings.len(), 1, "{run}");
    let f = old_findings[0];
    assert_eq!(f["severity"], "warning", "{f}");
    assert_eq!(pids(f), vec![i64::from(worker.pid())], "{f}");
    assert!(
        evidence_hows(f, worker.pid()).iter().any(|h| h == "cwd"),
        "evidence is the cwd: {f}"
    );
    let app = app(&doc, &root.name()).unwrap_or_else(|| panic!("app missing\n{run}"));
    assert!(bytestr_is(&app["current_release"], "2"), "{app}");
    let r1 = array(app, "releases")
        .iter()
        .find(|r| bytestr_is(&r["name"], "1"))
        .unwrap_or_else(|| panic!("release 1 not listed: {app}"));
    assert_eq!(r1["state"], "old", "{r1}");
    assert_eq!(r1["exists"], true, "{r1}");
    assert_eq!(pids(r1), vec![i64::from(worker.pid())], "{r1}");
}

/// `sh /ROOT/current/worker.sh` with cwd `/`: the path says nothing about the release, the start
/// time does. Started before the switch: old-release (via-current). Started after: fine.
#[test]
fn via_current_is_judged_by_start_time() {
    let root = DeployRoot::new();
    // `sleep 1000; :` keeps sh alive with its own command line (no exec of the last command).
    root.script("1", "worker.sh", "sleep 1000; :");
    root.switch("1");
    let script = root.current().join("worker.sh");
    // As in a real deploy, release 1 exists well before the worker starts (start times are
    // known to one tick only) and release 2 is built after it.
    wait_after_switch();

    let before = Child::spawn(
        std::process::Command::new("sh")
            .arg(&script)
            .current_dir("/"),
    );
    before.wait_for_children(1, "sleep");
    wait_started_before_now(before.pid());
    root.script("2", "worker.sh", "sleep 1000; :");
    root.switch("2");
    wait_after_switch();
    let after = Child::spawn(
        std::process::Command::new("sh")
            .arg(&script)
            .current_dir("/"),
    );
    after.wait_for_children(1, "sleep");
    assert!(
        after.start_ticks() > before.start_ticks() + MARGIN_TICKS,
        "test setup: the processes should start on either side of the switch"
    );

    let (run, doc) = check_json([root.path().as_os_str(), "--grace".as_ref(), "0s".as_ref()]);
    assert_eq!(
        run.code, 1,
        "the process started before the switch is old\n{run}"
    );

    let old = findings_of(&doc, "old-release");
    let flagged: Vec<&serde_json::Value> = old
        .iter()
        .copied()
        .filter(|f| pids(f).contains(&i64::from(before.pid())))
        .collect();
    assert_eq!(
        flagged.len(),
        1,
        "the process started before the switch should be in one old-release finding\n{run}"
    );
    let f = flagged[0];
    assert_eq!(f["severity"], "warning", "{f}");
    assert!(
        f["release"].is_null() || bytestr_is(&f["release"], "1"),
        "the release it loaded is 1 (or unknown), never the current one: {f}"
    );
    assert!(
        evidence_hows(f, before.pid())
            .iter()
            .any(|h| h == "via-current"),
        "evidence how should be via-current: {f}"
    );
    for f in array(&doc, "findings") {
        assert!(
            !pids(f).contains(&i64::from(after.pid())),
            "the process started after the switch must not be flagged: {f}"
        );
    }

    let p_before =
        process(&doc, before.pid()).unwrap_or_else(|| panic!("`before` not in processes\n{run}"));
    let p_after =
        process(&doc, after.pid()).unwrap_or_else(|| panic!("`after` not in processes\n{run}"));
    assert_eq!(p_before["app"], root.name().as_str(), "{p_before}");
    assert_eq!(p_after["app"], root.name().as_str(), "{p_after}");
    assert_eq!(p_after["release_state"], "current", "{p_after}");
    assert_ne!(p_before["release_state"], "current", "{p_before}");
    assert!(
        evidence_hows(p_before, before.pid())
            .iter()
            .any(|h| h == "via-current"),
        "{p_before}"
    );
    let cmdline: Vec<Vec<u8>> = array(p_after, "cmdline")
        .iter()
        .filter_map(bytestr)
        .collect();
    assert_eq!(
        cmdline,
        vec![b("sh"), path_bytes(&script)],
        "cmdline is kept as given: {p_after}"
    );
}

/// An executable copied into a release, run with its cwd at `/`, after that release is deleted:
/// deleted-release with evidence `exe`.
#[test]
fn exe_inside_a_deleted_release() {
    let root = DeployRoot::new();
    let old = root.release("1");
    root.switch("1");
    let proc_ = Child::exe_copy_in(&old);
    root.release("2");
    root.switch("2");
    root.delete("1");

    let (run, doc) = check_json([root.path()]);
    assert_eq!(run.code, 2, "{run}");
    let deleted = findings_of(&doc, "deleted-release");
    assert_eq!(deleted.len(), 1, "{run}");
    let f = deleted[0];
    assert_eq!(f["severity"], "critical", "{f}");
    assert!(bytestr_is(&f["release"], "1"), "{f}");
    assert_eq!(pids(f), vec![i64::from(proc_.pid())], "{f}");
    let exe_evidence = array(f, "evidence")
        .iter()
        .find(|e| e["how"] == "exe" && e["pid"].as_i64() == Some(i64::from(proc_.pid())))
        .unwrap_or_else(|| panic!("no `exe` evidence: {f}"));
    assert_eq!(exe_evidence["deleted"], true, "{exe_evidence}");
    let path = bytestr(&exe_evidence["path"]).unwrap_or_else(|| panic!("{exe_evidence}"));
    assert!(
        path.starts_with(&path_bytes(&root.release_path("1").join("sleep"))),
        "the evidence path is the executable: {exe_evidence}"
    );
    assert!(
        !evidence_hows(f, proc_.pid()).iter().any(|h| h == "cwd"),
        "the cwd is `/`, not evidence: {f}"
    );
}

/// An executable really named `worker (deleted)`, in an old release that still exists. The
/// reader stats through `exe` only when its text ends in ` (deleted)`; the link count then says
/// it is not deleted: old-release, never deleted-release. A plain executable is not statted.
#[test]
fn executable_literally_named_deleted() {
    use relwatch::snapshot::linux::LinuxProc;
    use relwatch::snapshot::ProcSource;
    let root = DeployRoot::new();
    let old = root.release("1");
    root.switch("1");
    let named = Child::exe_copy_named(&old, "worker (deleted)");
    let plain = Child::exe_copy_in(&old);
    root.release("2");
    root.switch("2");

    let (run, doc) = check_json([root.path().as_os_str(), "--grace".as_ref(), "0s".as_ref()]);
    assert_eq!(run.code, 1, "the suffix alone does not mean deleted\n{run}");
    assert!(findings_of(&doc, "deleted-release").is_empty(), "{run}");
    let old_release = findings_of(&doc, "old-release");
    let mut found: Vec<i64> = old_release.iter().flat_map(|f| pids(f)).collect();
    found.sort_unstable();
    let mut want = vec![i64::from(named.pid()), i64::from(plain.pid())];
    want.sort_unstable();
    assert_eq!(found, want, "{run}");
    let exe = old_release
        .iter()
        .flat_map(|f| array(f, "evidence"))
        .find(|e| e["how"] == "exe" && e["pid"].as_i64() == Some(i64::from(named.pid())))
        .unwrap_or_else(|| panic!("no `exe` evidence: {run}"));
    assert_eq!(exe["deleted"], false, "{exe}");
    assert!(
        bytestr(&exe["path"]).is_some_and(|p| p.ends_with(b"/1/worker (deleted)")),
        "the path keeps the name whole: {exe}"
    );

    let snap = LinuxProc::default().snapshot().expect("read /proc");
    let exe_of = |pid: i32| {
        snap.processes
            .iter()
            .find(|p| p.pid == pid)
            .and_then(|p| p.exe.clone().ok())
            .unwrap_or_else(|| panic!("no exe link for {pid}"))
    };
    let named_exe = exe_of(named.pid());
    assert!(named_exe.identity().is_some(), "statted: {named_exe:?}");
    assert!(!named_exe.is_deleted(), "{named_exe:?}");
    let plain_exe = exe_of(plain.pid());
    assert_eq!(plain_exe.identity(), None, "not statted: {plain_exe:?}");
    assert!(!plain_exe.is_deleted(), "{plain_exe:?}");
}

/// Capistrano: absolute `current`, timestamp release names, `repo/`, `shared/`,
/// `revisions.log`. A clean deploy is OK and only real releases are listed.
#[test]
fn capistrano_layout() {
    let root = DeployRoot::new();
    let names = ["20240101120000", "20240102120000", "20240103120000"];
    for n in names {
        root.release(n);
    }
    root.capistrano_extras(&names);
    root.switch_absolute(names[2]);
    let worker = Child::sleep_in(root.release_path(names[2]));

    let (run, doc) = check_json([root.path()]);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(array(&doc, "findings").len(), 0, "{run}");
    let app = app(&doc, &root.name()).unwrap_or_else(|| panic!("app missing\n{run}"));
    assert_eq!(app["current_state"], "ok", "{app}");
    assert!(bytestr_is(&app["current_release"], names[2]), "{app}");
    assert!(
        bytestr_is(&app["link"], path_bytes(&root.current())),
        "{app}"
    );
    assert!(
        bytestr_is(&app["releases_dir"], path_bytes(&root.releases_dir())),
        "{app}"
    );
    let listed: BTreeSet<Vec<u8>> = release_names(app).into_iter().collect();
    let expected: BTreeSet<Vec<u8>> = names.iter().map(b).collect();
    assert_eq!(listed, expected, "only the releases are listed: {app}");
    for r in array(app, "releases") {
        let state = if bytestr_is(&r["name"], names[2]) {
            "current"
        } else {
            "old"
        };
        assert_eq!(r["state"], state, "{r}");
    }
    let p = process(&doc, worker.pid()).unwrap_or_else(|| panic!("worker not listed\n{run}"));
    assert!(bytestr_is(&p["release"], names[2]), "{p}");
    assert_eq!(p["release_state"], "current", "{p}");
}

/// Deployer: relative `current -> releases/N`, numbered names, `.dep/`, `shared/`.
#[test]
fn deployer_layout() {
    let root = DeployRoot::new();
    let names = ["1", "2", "3"];
    for n in names {
        root.release(n);
    }
    root.deployer_extras(&names);
    root.switch("3");
    let worker = Child::sleep_in(root.release_path("3"));

    let (run, doc) = check_json([root.path()]);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(array(&doc, "findings").len(), 0, "{run}");
    let app = app(&doc, &root.name()).unwrap_or_else(|| panic!("app missing\n{run}"));
    assert_eq!(app["current_state"], "ok", "{app}");
    assert!(bytestr_is(&app["current_release"], "3"), "{app}");
    let listed: BTreeSet<Vec<u8>> = release_names(app).into_iter().collect();
    let expected: BTreeSet<Vec<u8>> = names.iter().map(b).collect();
    assert_eq!(
        listed, expected,
        "`.dep` and `shared` are not releases: {app}"
    );
    let current = array(app, "releases")
        .iter()
        .find(|r| bytestr_is(&r["name"], "3"))
        .unwrap_or_else(|| panic!("{app}"));
    assert_eq!(current["state"], "current", "{current}");
    assert_eq!(pids(current), vec![i64::from(worker.pid())], "{current}");
    let switch_time = app["switch_time"]
        .as_f64()
        .unwrap_or_else(|| panic!("{app}"));
    let scanned_at = doc["scanned_at"]
        .as_f64()
        .unwrap_or_else(|| panic!("{doc}"));
    assert!(
        switch_time <= scanned_at + 1.0 && switch_time > scanned_at - 600.0,
        "switch_time {switch_time} should be just before scanned_at {scanned_at}"
    );
}

/// Deployer's `current_path` elsewhere: ROOT is the link itself (`TMP/html ->
/// TMP/app/releases/7`); the releases next to the target are known.
#[test]
fn root_given_as_the_current_link_itself() {
    let root = DeployRoot::named("app");
    root.release("6");
    root.release("7");
    let old_worker = Child::sleep_in(root.release_path("6"));
    let html = root.tmp().join("html");
    atomic_symlink(root.release_path("7"), &html);
    let worker = Child::sleep_in(root.release_path("7"));

    let (run, doc) = check_json([html.as_os_str(), "--grace".as_ref(), "0s".as_ref()]);
    assert_eq!(run.code, 1, "a process on release 6 is old\n{run}");
    let apps = array(&doc, "apps");
    assert_eq!(apps.len(), 1, "{run}");
    let app = &apps[0];
    assert!(
        app["name"] == "app" || app["name"] == "html",
        "app name: {app}"
    );
    assert_eq!(app["current_state"], "ok", "{app}");
    assert!(bytestr_is(&app["current_release"], "7"), "{app}");
    assert!(bytestr_is(&app["link"], path_bytes(&html)), "{app}");
    assert!(
        bytestr_is(&app["releases_dir"], path_bytes(&root.releases_dir())),
        "{app}"
    );
    let old = findings_of(&doc, "old-release");
    assert_eq!(old.len(), 1, "{run}");
    assert!(bytestr_is(&old[0]["release"], "6"), "{}", old[0]);
    assert_eq!(
        pids(old[0]),
        vec![i64::from(old_worker.pid())],
        "{}",
        old[0]
    );
    let p = process(&doc, worker.pid()).unwrap_or_else(|| panic!("worker not listed\n{run}"));
    assert_eq!(p["release_state"], "current", "{p}");
}

/// `current` pointing outside `releases/`: broken-current, CRITICAL.
#[test]
fn current_outside_the_releases_dir() {
    let root = DeployRoot::new();
    root.release("1");
    let elsewhere = root.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).expect("create elsewhere/");
    root.point_current_at("elsewhere");

    let (run, doc) = check_json([root.path()]);
    assert_eq!(run.code, 2, "{run}");
    let broken = findings_of(&doc, "broken-current");
    assert_eq!(broken.len(), 1, "{run}");
    assert_eq!(broken[0]["severity"], "critical", "{}", broken[0]);
    assert_eq!(broken[0]["app"], root.name().as_str(), "{}", broken[0]);
    let app = app(&doc, &root.name()).unwrap_or_else(|| panic!("app missing\n{run}"));
    assert_eq!(app["current_state"], "outside-releases", "{app}");
    assert!(app["current_release"].is_null(), "{app}");
}

/// `current` whose target does not exist: broken-current, CRITICAL.
#[test]
fn dangling_current() {
    let root = DeployRoot::new();
    root.release("1");
    root.switch("9");

    let (run, doc) = check_json([root.path()]);
    assert_eq!(run.code, 2, "{run}");
    let broken = findings_of(&doc, "broken-current");
    assert_eq!(broken.len(), 1, "{run}");
    assert_eq!(broken[0]["severity"], "critical", "{}", broken[0]);
    let app = app(&doc, &root.name()).unwrap_or_else(|| panic!("app missing\n{run}"));
    assert_eq!(app["current_state"], "dangling", "{app}");
    assert!(app["current_release"].is_null(), "{app}");
}

/// A deploy root given explicitly without any `current`: broken-current (missing), CRITICAL.
#[test]
fn missing_current() {
    let root = DeployRoot::new();
    root.release("1");

    let (run, doc) = check_json([root.path()]);
    assert_eq!(run.code, 2, "{run}");
    let broken = findings_of(&doc, "broken-current");
    assert_eq!(broken.len(), 1, "{run}");
    let app = app(&doc, &root.name()).unwrap_or_else(|| panic!("app missing\n{run}"));
    assert_eq!(app["current_state"], "missing", "{app}");
}

/// A release really named `7 (deleted)`, current, with a live process: not deleted.
#[test]
fn release_literally_named_deleted() {
    let root = DeployRoot::new();
    root.release("6");
    let seven = root.release("7 (deleted)");
    root.switch("7 (deleted)");
    let worker = Child::sleep_in(&seven);

    let (run, doc) = check_json([root.path()]);
    assert_eq!(run.code, 0, "the suffix alone does not mean deleted\n{run}");
    assert!(findings_of(&doc, "deleted-release").is_empty(), "{run}");
    assert!(array(&doc, "findings").is_empty(), "{run}");
    let app = app(&doc, &root.name()).unwrap_or_else(|| panic!("app missing\n{run}"));
    assert!(bytestr_is(&app["current_release"], "7 (deleted)"), "{app}");
    let p = process(&doc, worker.pid()).unwrap_or_else(|| panic!("worker not listed\n{run}"));
    assert!(bytestr_is(&p["release"], "7 (deleted)"), "{p}");
    assert_eq!(p["release_state"], "current", "{p}");
}

/// A release name that is not UTF-8 comes out as `{"bytes": base64}` and decodes losslessly.
#[test]
fn non_utf8_release_name() {
    let raw: &[u8] = b"r\xff";
    let root = DeployRoot::new();
    let old = root.release(os(raw));
    root.switch(os(raw));
    let worker = Child::sleep_in(&old);
    root.release("r2");
    root.switch("r2");

    let (run, doc) = check_json([root.path().as_os_str(), "--grace".as_ref(), "0s".as_ref()]);
    assert_eq!(run.code, 1, "{run}");
    let old_findings = findings_of(&doc, "old-release");
    assert_eq!(old_findings.len(), 1, "{run}");
    let release = &old_findings[0]["release"];
    assert!(
        release.is_object() && release["bytes"].is_string(),
        "a non-UTF-8 name is {{\"bytes\": base64}}: {release}"
    );
    assert_eq!(bytestr(release), Some(b(raw)), "{release}");
    assert_eq!(release["bytes"], "cv8=", "standard base64 with padding");

    let p = process(&doc, worker.pid()).unwrap_or_else(|| panic!("worker not listed\n{run}"));
    assert_eq!(bytestr(&p["release"]), Some(b(raw)), "{p}");
    let cwd_evidence = array(p, "evidence")
        .iter()
        .find(|e| e["how"] == "cwd")
        .unwrap_or_else(|| panic!("no cwd evidence: {p}"));
    assert_eq!(
        bytestr(&cwd_evidence["path"]),
        Some(path_bytes(&old)),
        "the evidence path is lossless: {cwd_evidence}"
    );
    let app = app(&doc, &root.name()).unwrap_or_else(|| panic!("app missing\n{run}"));
    assert!(
        release_names(app).contains(&b(raw)),
        "the release is listed by its raw name: {app}"
    );
    assert!(bytestr_is(&app["current_release"], "r2"), "{app}");
}

/// A clean deploy: OK, no findings, and the document follows docs/JSON.md exactly.
#[test]
fn clean_deploy() {
    let root = DeployRoot::new();
    root.release("1");
    root.release("2");
    root.switch("2");

    let (run, _) = check_json([root.path()]);
    assert_eq!(run.code, 0, "{run}");
    let report = run.report();
    assert_eq!(report.version, 1);
    assert_eq!(report.status, Status::Ok);
    assert_eq!(report.exit_code, 0);
    assert!(report.findings.is_empty(), "{run}");
    assert!(report.processes.is_empty(), "{run}");
    assert!(!report.summary.is_empty(), "{run}");
    assert!(report.scan.processes > 0, "{run}");
    assert_eq!(report.apps.len(), 1, "{run}");
    let app = &report.apps[0];
    assert_eq!(app.name, root.name());
    assert_eq!(app.root.to_bytes(), path_bytes(root.path()));
    assert_eq!(app.link.to_bytes(), path_bytes(&root.current()));
    assert_eq!(app.current_state, CurrentState::Ok);
    assert_eq!(
        app.current_release.as_ref().map(ByteStr::to_bytes),
        Some(b("2"))
    );
    assert!(app.switch_time.is_some());
    let mut names: Vec<(Vec<u8>, ReleaseState, bool)> = app
        .releases
        .iter()
        .map(|r| (r.name.to_bytes(), r.state, r.exists))
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            (b("1"), ReleaseState::Old, true),
            (b("2"), ReleaseState::Current, true)
        ]
    );
}

/// The schema, strictly, on a document with every kind of entry: a deleted release, an old one,
/// a current one, a non-UTF-8 path.
#[test]
fn json_schema_with_findings_and_processes() {
    let root = DeployRoot::new();
    let r1 = root.release("1");
    root.switch("1");
    let on_deleted = Child::sleep_in(&r1);
    let r2 = root.release(os(b"2\xfe"));
    let on_old = Child::sleep_in(&r2);
    let r3 = root.release("3");
    root.switch("3");
    let on_current = Child::sleep_in(&r3);
    root.delete("1");

    let (run, _) = check_json([root.path().as_os_str(), "--grace".as_ref(), "0s".as_ref()]);
    assert_eq!(run.code, 2, "{run}");
    let report = run.report();
    assert_eq!(report.version, 1);
    assert_eq!(report.status, Status::Critical);

    // Worst first.
    let severities: Vec<Severity> = report.findings.iter().map(|f| f.severity).collect();
    let mut sorted = severities.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(severities, sorted, "findings are worst first\n{run}");

    let deleted = report
        .findings
        .iter()
        .find(|f| f.kind == Kind::DeletedRelease)
        .unwrap_or_else(|| panic!("no deleted-release\n{run}"));
    assert_eq!(deleted.pids, vec![on_deleted.pid()]);
    assert_eq!(deleted.master, None, "a lone process is no master\n{run}");
    assert_eq!(
        deleted.release.as_ref().map(ByteStr::to_bytes),
        Some(b("1"))
    );
    assert!(deleted
        .evidence
        .iter()
        .any(|e| e.pid == on_deleted.pid() && e.how == How::Cwd && e.deleted));

    let old = report
        .findings
        .iter()
        .find(|f| f.kind == Kind::OldRelease)
        .unwrap_or_else(|| panic!("no old-release\n{run}"));
    assert_eq!(old.severity, Severity::Warning);
    assert_eq!(old.pids, vec![on_old.pid()]);
    assert_eq!(
        old.release.as_ref().map(ByteStr::to_bytes),
        Some(b(b"2\xfe"))
    );
    assert!(matches!(old.release, Some(ByteStr::Bytes(_))), "{run}");
    assert!(old
        .evidence
        .iter()
        .any(|e| e.pid == on_old.pid() && e.how == How::Cwd && !e.deleted));

    let pids: Vec<i32> = report.processes.iter().map(|p| p.pid).collect();
    let mut expected = vec![on_deleted.pid(), on_old.pid(), on_current.pid()];
    expected.sort_unstable();
    assert_eq!(pids, expected, "processes are listed by pid\n{run}");
    for p in &report.processes {
        assert_eq!(p.app, root.name());
        assert_eq!(p.state.len(), 1, "one-letter state: {p:?}");
        assert_eq!(p.name.to_bytes(), b("sleep"), "{p:?}");
        assert_eq!(p.comm.to_bytes(), b("sleep"), "{p:?}");
        assert_eq!(
            p.cmdline.iter().map(ByteStr::to_bytes).collect::<Vec<_>>(),
            vec![b("sleep"), b("1000")]
        );
        assert!(!p.master, "{p:?}");
        // Children of the test runner, in no systemd unit here: nothing supervises them.
        let owner = p.owner.as_ref().expect("every placed process has an owner");
        assert_eq!(owner.kind, OwnerKind::None, "{p:?}");
        assert_eq!(owner.label, "unsupervised", "{p:?}");
        assert!(p.start_time > 1.0e9 && p.start_time <= report.scanned_at + 1.0);
        let (release, state) = if p.pid == on_deleted.pid() {
            (b("1"), ProcessReleaseState::Deleted)
        } else if p.pid == on_old.pid() {
            (b(b"2\xfe"), ProcessReleaseState::Old)
        } else {
            (b("3"), ProcessReleaseState::Current)
        };
        assert_eq!(p.release.as_ref().map(ByteStr::to_bytes), Some(release));
        assert_eq!(p.release_state, state, "{p:?}");
    }

    let app = &report.apps[0];
    let deleted_release = app
        .releases
        .iter()
        .find(|r| r.name.to_bytes() == b("1"))
        .unwrap_or_else(|| panic!("a deleted release in use is listed\n{run}"));
    assert_eq!(deleted_release.state, ReleaseState::Deleted);
    assert!(!deleted_release.exists);
    assert_eq!(deleted_release.pids, vec![on_deleted.pid()]);
}

/// `--discover DIR` finds the deploy roots under DIR.
#[test]
fn discovery_finds_a_root() {
    let root = DeployRoot::new();
    root.release("1");
    root.switch("1");

    let tmp = root.tmp();
    let (run, doc) = check_json(["--discover".as_ref(), tmp.as_os_str()]);
    assert_eq!(run.code, 0, "{run}");
    let app = app(&doc, &root.name()).unwrap_or_else(|| panic!("the root was not found\n{run}"));
    assert!(bytestr_is(&app["root"], path_bytes(root.path())), "{app}");
    assert!(bytestr_is(&app["current_release"], "1"), "{app}");
    for a in array(&doc, "apps") {
        let r = bytestr(&a["root"]).unwrap_or_default();
        assert!(
            r.starts_with(&path_bytes(&tmp)),
            "only roots under --discover are checked: {a}"
        );
    }
}

/// `--discover` on a directory without deploy roots: OK, with a message saying so.
#[test]
fn discovery_finds_nothing() {
    let empty = tempdir();
    std::fs::create_dir(empty.path().join("not-a-root")).expect("mkdir");
    let run = relwatch([
        "check".as_ref(),
        "--discover".as_ref(),
        empty.path().as_os_str(),
    ]);
    assert_eq!(run.code, 0, "{run}");
    let out = run.output_lower();
    assert!(
        out.contains("no deploy root") || (out.contains("no ") && out.contains("found")),
        "a message should say no deploy roots were found\n{run}"
    );
}

/// A `--discover` directory that does not exist (a typo) is a bad argument: UNKNOWN (3),
/// in every format, never "OK: no deploy roots found" (which an existing empty one still is).
#[test]
fn a_discover_directory_that_does_not_exist_is_unknown() {
    let tmp = tempdir();
    let typo = tmp.path().join("srvv");
    for format in ["text", "nagios", "prometheus", "json"] {
        let run = relwatch([
            "check".as_ref(),
            "--discover".as_ref(),
            typo.as_os_str(),
            "--format".as_ref(),
            format.as_ref(),
        ]);
        assert_eq!(run.code, 3, "{format}: {run}");
        assert!(
            run.stderr
                .contains(&format!("{}: no such directory", typo.display())),
            "{format}: {run}"
        );
        assert!(
            !run.stdout.contains("no deploy roots found"),
            "{format}: {run}"
        );
    }
    let run = relwatch([
        "check".as_ref(),
        "--discover".as_ref(),
        tmp.path().join("*").as_os_str(),
    ]);
    assert_eq!(run.code, 0, "DIR/* of an existing DIR: {run}");
}

/// A ROOT that does not exist is a bad argument: UNKNOWN (3), naming the path.
#[test]
fn nonexistent_root_is_unknown() {
    let tmp = tempdir();
    let missing = tmp.path().join("no-such-root");
    let run = relwatch(["check".as_ref(), missing.as_os_str()]);
    assert_eq!(run.code, 3, "{run}");
    assert!(
        run.stderr.contains(&*missing.to_string_lossy())
            || run.stdout.contains(&*missing.to_string_lossy()),
        "the message should name the path\n{run}"
    );
}

/// A bad `--grace` is a bad argument: UNKNOWN (3), not clap's default 2.
#[test]
fn bad_grace_is_unknown() {
    let root = DeployRoot::new();
    root.release("1");
    root.switch("1");
    let run = relwatch([
        "check".as_ref(),
        root.path().as_os_str(),
        "--grace".as_ref(),
        "xyz".as_ref(),
    ]);
    assert_eq!(run.code, 3, "{run}");
    let out = run.output_lower();
    assert!(
        out.contains("grace") || out.contains("xyz"),
        "the message should name the problem\n{run}"
    );
}

/// The harness itself: a guard kills and reaps its whole process tree, leaving no zombie.
#[test]
fn harness_child_guard_kills_the_tree() {
    let dir = tempdir();
    let master = Child::master_with_workers(dir.path(), 2);
    let mut all = master.children();
    all.push(master.pid());
    drop(master);
    for pid in all {
        assert!(
            comm(pid).is_none(),
            "pid {pid} survived its guard (or is an unreaped zombie)"
        );
    }
}

/// Regression: relwatch's own unit (ProtectSystem=, PrivateTmp=) and many app units give a
/// process a mount namespace of its own that still sees the host's paths. Such processes were
/// dropped as "in another mount namespace", so under its own unit relwatch saw nothing.
#[test]
fn a_private_mount_namespace_with_the_same_root_is_still_inspected() {
    if !nix::unistd::geteuid().is_root() {
        util::skip("unshare -m needs root");
        return;
    }
    let root = DeployRoot::new();
    let r1 = root.release("1");
    root.switch("1");
    // The app process in a namespace of its own (like PrivateTmp=)...
    let worker = Child::spawn(
        std::process::Command::new("unshare")
            .args(["-m", "--propagation", "private", "sleep", "1000"])
            .current_dir(&r1),
    );
    poll("unshare to exec sleep", || {
        (comm(worker.pid()).as_deref() == Some("sleep")).then_some(())
    });
    root.release("2");
    root.switch("2");
    // ...and relwatch in another one (like its own hardened unit).
    let out = std::process::Command::new("unshare")
        .args(["-m", "--propagation", "private"])
        .arg(env!("CARGO_BIN_EXE_relwatch"))
        .args(["check", "--format", "json", "--grace", "0s"])
        .arg(root.path())
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(out.status.code(), Some(1), "{doc}");
    assert_eq!(doc["scan"]["other_mount_ns"], 0, "{doc}");
    assert!(
        process(&doc, worker.pid()).is_some(),
        "the worker is inspected: {doc}"
    );
}

/// A process under another root directory (a container, a chroot) in another mount namespace:
/// its paths are not ours, so a placement that rests on a path it shows (a command-line
/// argument) is dropped and counted; one that rests on identity (its cwd *is* a release
/// directory, by device and inode) holds in any namespace and is reported.
#[test]
fn another_root_drops_path_evidence_but_keeps_identity() {
    if !nix::unistd::geteuid().is_root() {
        util::skip("unshare -m and chroot need root");
        return;
    }
    let root = DeployRoot::new();
    let r1 = root.release("1");
    root.switch("1");
    let jail = root.path().to_path_buf();
    // Python is loaded before it chroots, so the new root needs no binaries.
    const JAILED: &str = "import os, sys, time\n\
        os.chroot(sys.argv[1])\n\
        os.chdir(sys.argv[2])\n\
        time.sleep(1000)\n";
    let jailed = |inside: &str, extra: Option<&std::path::Path>| {
        let mut cmd = std::process::Command::new("unshare");
        cmd.args(["-m", "--propagation", "private", "python3", "-c", JAILED])
            .arg(&jail)
            .arg(inside);
        if let Some(x) = extra {
            cmd.arg(x);
        }
        let child = Child::spawn(&mut cmd);
        let want = jail.join(inside.trim_start_matches('/'));
        let link = |name: &str| std::fs::read_link(format!("/proc/{}/{name}", child.pid())).ok();
        poll("python3 to chroot and chdir", || {
            (link("root") != Some("/".into()) && link("cwd").as_deref() == Some(want.as_path()))
                .then_some(())
        });
        child
    };
    // Its cwd is release 1 itself (identity).
    let by_identity = jailed("/releases/1", None);
    // Its cwd is the jail's root; only its command line names release 1 (a path).
    let by_path = jailed("/", Some(&r1.join("artisan")));
    std::fs::write(r1.join("artisan"), "").unwrap();
    root.release("2");
    root.switch("2");
    let (run, doc) = check_json([root.path().as_os_str(), "--grace".as_ref(), "0s".as_ref()]);
    assert_eq!(run.code, 1, "{run}");
    let old = findings_of(&doc, "old-release");
    assert_eq!(old.len(), 1, "{run}");
    assert_eq!(pids(old[0]), [i64::from(by_identity.pid())], "{run}");
    assert!(process(&doc, by_path.pid()).is_none(), "{run}");
    assert_eq!(doc["scan"]["other_mount_ns"], 1, "{doc}");
}

/// Enough processes for the pass over /proc and the second look to be split between threads
/// (each thread takes at least 256 pids): `--jobs 4` reports exactly what `--jobs 1` reports,
/// every worker in its place, and the reader still hands back each process once, in pid order,
/// with equal link targets sharing one allocation across the threads' shares.
#[test]
fn several_threads_report_what_one_thread_reports() {
    use relwatch::snapshot::linux::LinuxProc;
    use relwatch::snapshot::ProcSource;

    let root = DeployRoot::new();
    let gone = root.release("1");
    root.switch("1");
    let doomed = Child::master_with_workers(&gone, 300);
    let old = root.release("2");
    root.switch("2");
    let stale = Child::master_with_workers(&old, 300);
    root.release("3");
    root.switch("3");
    root.delete("1");
    let ours: BTreeSet<i32> = [doomed.pid(), stale.pid()]
        .into_iter()
        .chain(doomed.children())
        .chain(stale.children())
        .collect();
    assert_eq!(ours.len(), 602);

    let placed = |jobs: &str| {
        let (run, doc) = check_json([
            root.path().as_os_str(),
            "--grace".as_ref(),
            "0s".as_ref(),
            "--jobs".as_ref(),
            jobs.as_ref(),
        ]);
        assert_eq!(run.code, 2, "a deleted release is CRITICAL\n{run}");
        let kinds: BTreeSet<(String, Vec<i64>)> = array(&doc, "findings")
            .iter()
            .map(|f| {
                let mut p = pids(f);
                p.sort_unstable();
                (f["kind"].as_str().unwrap_or("?").to_owned(), p)
            })
            .collect();
        let states: BTreeSet<(i64, String)> = array(&doc, "processes")
            .iter()
            .map(|p| {
                let state = p["release_state"].as_str().unwrap_or("?").to_owned();
                (p["pid"].as_i64().unwrap_or(-1), state)
            })
            .collect();
        (kinds, states)
    };
    let (one_kinds, one_states) = placed("1");
    let (four_kinds, four_states) = placed("4");
    assert_eq!(
        one_states.len(),
        602,
        "every process placed: {one_states:?}"
    );
    let deleted = one_states.iter().filter(|(_, s)| s == "deleted").count();
    let old_ones = one_states.iter().filter(|(_, s)| s == "old").count();
    assert_eq!((deleted, old_ones), (301, 301), "{one_states:?}");
    assert_eq!(
        four_states, one_states,
        "four threads placed the processes otherwise"
    );
    assert_eq!(four_kinds, one_kinds, "four threads found other findings");

    let snap = LinuxProc::default().with_jobs(4).snapshot().unwrap();
    let pids: Vec<i32> = snap.processes.iter().map(|p| p.pid).collect();
    assert!(
        pids.windows(2).all(|w| w[0] < w[1]),
        "not once each in pid order"
    );
    // Which threads read which workers depends on the other processes on the host; with two
    // groups of 300 in a row, the boundary between two threads' shares falls inside one of
    // them on any host with fewer than ~900 other processes.
    for (master, dir) in [(&doomed, &gone), (&stale, &old)] {
        let cwds: Vec<_> = master
            .children()
            .into_iter()
            .map(|w| {
                let p = snap.get(w).unwrap_or_else(|| panic!("worker {w} not read"));
                p.cwd
                    .clone()
                    .unwrap_or_else(|e| panic!("cwd of {w}: {e:?}"))
                    .target
            })
            .collect();
        assert_eq!(cwds.len(), 300);
        assert!(
            cwds.iter().all(|c| std::sync::Arc::ptr_eq(c, &cwds[0])),
            "the equal cwds of the workers in {dir:?} are not one allocation"
        );
        assert!(path_bytes(std::path::Path::new(&cwds[0])).starts_with(&path_bytes(dir)));
    }
}
