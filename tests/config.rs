//! The config file with real processes: roles find duplicate singletons and missing workers,
//! flags beat the file, ignore patterns hide processes, and a bad or unsafe file is refused
//! with exit 3 and its location.

mod util;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use util::*;

fn write_config(root: &DeployRoot, body: &str) -> std::path::PathBuf {
    let path = root.tmp().join("relwatch.yaml");
    std::fs::write(&path, body).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    path
}

/// A process whose command line is `sleep SECONDS`, in `dir`.
fn sleep_arg(dir: &std::path::Path, secs: &str) -> Child {
    Child::spawn(Command::new("sleep").arg(secs).current_dir(dir))
}

#[test]
fn two_schedulers_one_per_release_are_a_duplicate() {
    let root = DeployRoot::new();
    let r1 = root.release("1");
    root.switch("1");
    let old = sleep_arg(&r1, "1001");
    wait_started_before_now(old.pid());
    let r2 = root.release("2");
    root.switch("2");
    let new = sleep_arg(&r2, "1001");
    let cfg = write_config(
        &root,
        &format!(
            "apps:\n  - name: shop\n    root: {}\n    roles:\n      - name: scheduler\n        match: \"^sleep 1001$\"\n        singleton: true\n",
            root.path().display()
        ),
    );
    let (run, doc) = check_json(["--config".as_ref(), cfg.as_os_str()]);
    assert_eq!(run.code, 2, "a duplicate singleton is critical\n{run}");
    let f = findings_of(&doc, "duplicate");
    assert_eq!(f.len(), 1, "{run}");
    assert_eq!(f[0]["app"], "shop", "the app takes its configured name");
    assert_eq!(f[0]["role"], "scheduler");
    assert_eq!(
        pids(f[0]),
        [i64::from(old.pid()), i64::from(new.pid())],
        "oldest first"
    );
    let msg = f[0]["message"].as_str().unwrap();
    assert!(
        msg.contains("release 1 (old)") && msg.contains("release 2 (current)"),
        "{msg}"
    );
    let remedy = f[0]["remedy"].as_str().unwrap();
    assert!(
        remedy.contains(&format!("kill -TERM {}", old.pid()))
            && remedy.contains(&format!("keep pid {}", new.pid())),
        "stop the old one, keep the current one: {remedy}"
    );
    for p in [old.pid(), new.pid()] {
        assert_eq!(process(&doc, p).unwrap()["role"], "scheduler");
    }
    // the text output names the role too
    let text = relwatch(["check".as_ref(), "--config".as_ref(), cfg.as_os_str()]);
    assert!(text.stdout.contains("role scheduler"), "{text}");
}

#[test]
fn a_forked_master_and_its_workers_count_as_one_instance() {
    let root = DeployRoot::new();
    let r1 = root.release("1");
    root.switch("1");
    let master = Child::master_with_workers(&r1, 2);
    master.wait_for_children(2, "sleep");
    let cfg = write_config(
        &root,
        &format!(
            "apps:\n  - name: shop\n    root: {}\n    roles:\n      - name: sleepers\n        match: \"sleep\"\n        max: 1\n",
            root.path().display()
        ),
    );
    let (run, doc) = check_json(["--config".as_ref(), cfg.as_os_str()]);
    // The master's command line is `sh -c ...sleep...`: it matches, and its workers do too.
    assert!(findings_of(&doc, "duplicate").is_empty(), "{run}");
}

#[test]
fn fewer_workers_than_min_on_the_current_release_is_missing() {
    let root = DeployRoot::new();
    let r1 = root.release("1");
    root.switch("1");
    let old = sleep_arg(&r1, "2002");
    let r2 = root.release("2");
    root.switch("2");
    let one = sleep_arg(&r2, "2002");
    let cfg = write_config(
        &root,
        &format!(
            "grace: 1h\napps:\n  - name: shop\n    root: {}\n    roles:\n      - name: queue\n        match: \"^sleep 2002$\"\n        min: 2\n",
            root.path().display()
        ),
    );
    let (run, doc) = check_json(["--config".as_ref(), cfg.as_os_str()]);
    assert_eq!(run.code, 2, "{run}");
    let f = findings_of(&doc, "missing");
    assert_eq!(f.len(), 1, "{run}");
    assert_eq!(pids(f[0]), [i64::from(one.pid())]);
    let msg = f[0]["message"].as_str().unwrap();
    assert!(
        msg.contains("1 instance on current release 2") && msg.contains("at least 2"),
        "{msg}"
    );
    assert!(msg.contains("1 on other releases"), "{msg}");
    drop(old);
}

#[test]
fn the_grace_flag_beats_the_file() {
    let root = DeployRoot::new();
    let r1 = root.release("1");
    root.switch("1");
    let _w = Child::sleep_in(&r1);
    root.release("2");
    root.switch("2");
    let cfg = write_config(
        &root,
        &format!(
            "grace: 1h\napps:\n  - name: shop\n    root: {}\n",
            root.path().display()
        ),
    );
    let (run, doc) = check_json(["--config".as_ref(), cfg.as_os_str()]);
    assert_eq!(run.code, 0, "within the file's grace: information\n{run}");
    assert_eq!(findings_of(&doc, "old-release")[0]["severity"], "info");
    let (run, _) = check_json([
        "--config".as_ref(),
        cfg.as_os_str(),
        "--grace".as_ref(),
        "0s".as_ref(),
    ]);
    assert_eq!(run.code, 1, "the flag wins\n{run}");
}

#[test]
fn ignored_processes_are_left_out() {
    let root = DeployRoot::new();
    let r1 = root.release("1");
    root.switch("1");
    let _w = sleep_arg(&r1, "3003");
    root.release("2");
    root.switch("2");
    let cfg = write_config(
        &root,
        &format!(
            "apps:\n  - name: shop\n    root: {}\n    ignore: [\"^sleep 3003$\"]\n",
            root.path().display()
        ),
    );
    let (run, doc) = check_json([
        root.path().as_os_str(),
        "--config".as_ref(),
        cfg.as_os_str(),
        "--grace".as_ref(),
        "0s".as_ref(),
    ]);
    assert_eq!(run.code, 0, "{run}");
    assert!(array(&doc, "processes").is_empty(), "{run}");
}

#[test]
fn a_bad_file_is_refused_with_its_line_and_exit_3() {
    let root = DeployRoot::new();
    root.release("1");
    root.switch("1");
    let cfg = write_config(
        &root,
        &format!(
            "apps:\n  - name: shop\n    root: {}\n    naem: typo\n",
            root.path().display()
        ),
    );
    let run = relwatch(["check".as_ref(), "--config".as_ref(), cfg.as_os_str()]);
    assert_eq!(run.code, 3, "{run}");
    let where_ = format!("{}:4:", cfg.display());
    assert!(
        run.stderr.contains(&where_) && run.stderr.contains("naem"),
        "{run}"
    );

    let cfg = write_config(&root, "grace: soon\n");
    let run = relwatch(["config".as_ref(), "check".as_ref(), cfg.as_os_str()]);
    assert_eq!(run.code, 3, "{run}");
    assert!(
        run.stderr.contains(":1:") && run.stderr.contains("grace"),
        "{run}"
    );
}

#[test]
fn a_file_others_can_write_is_refused() {
    let root = DeployRoot::new();
    let cfg = write_config(&root, "grace: 5m\n");
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o664)).unwrap();
    let run = relwatch(["config".as_ref(), "check".as_ref(), cfg.as_os_str()]);
    assert_eq!(run.code, 3, "{run}");
    assert!(
        run.stderr.contains("chmod go-w"),
        "it says how to fix it: {run}"
    );
}

#[test]
fn config_check_prints_the_effective_configuration_and_example_is_valid() {
    let root = DeployRoot::new();
    let example = relwatch(["config", "example"]);
    assert_eq!(example.code, 0, "{example}");
    let cfg = write_config(&root, &example.stdout);
    let run = relwatch(["config".as_ref(), "check".as_ref(), cfg.as_os_str()]);
    assert_eq!(run.code, 0, "the shipped example is valid: {run}");
    assert!(run.stdout.contains("valid"), "{run}");
    assert!(
        run.stdout.contains("scheduler") && run.stdout.contains("singleton: true"),
        "{run}"
    );

    let cfg = write_config(&root, "apps: []\n");
    let run = relwatch(["config".as_ref(), "check".as_ref(), cfg.as_os_str()]);
    assert_eq!(run.code, 0, "{run}");
    assert!(
        run.stdout.contains("grace: 5m"),
        "defaults are filled in: {run}"
    );
}

/// A role short of its `min` on the current release (a queue whose workers have not come
/// back) is waited for like a worker on an old release: `wait` never says OK over it. It
/// times out with 1 naming the role, and returns 0 once the role is whole.
#[test]
fn wait_waits_for_a_role_short_of_its_min() {
    let root = DeployRoot::new();
    let r2 = root.release("2");
    root.switch("2");
    let _one = sleep_arg(&r2, "2002");
    let cfg = write_config(
        &root,
        &format!(
            "apps:\n  - name: shop\n    root: {}\n    roles:\n      - name: queue\n        match: \"^sleep 2002$\"\n        min: 2\n",
            root.path().display()
        ),
    );
    let wait = |timeout: &str| {
        [
            "wait".as_ref(),
            root.path().as_os_str(),
            "--config".as_ref(),
            cfg.as_os_str(),
            "--timeout".as_ref(),
            std::ffi::OsStr::new(timeout),
        ]
        .map(std::ffi::OsStr::to_os_string)
    };
    let run = relwatch(wait("1s"));
    assert_eq!(run.code, 1, "{run}");
    assert!(
        run.stdout
            .contains("1 role with too few processes on the current release"),
        "{run}"
    );
    assert!(run.stdout.contains("missing shop:"), "{run}");
    assert!(run.stdout.contains("queue"), "{run}");
    assert!(!run.stdout.contains("OK"), "{run}");

    let mut waiting = Background::start(wait("50s"));
    waiting.wait_for_output("waiting for shop: role queue");
    assert!(
        waiting.running(),
        "wait must not return while queue is short"
    );
    let _two = sleep_arg(&r2, "2002");
    let run = waiting.finish();
    assert_eq!(run.code, 0, "{run}");
    assert!(run.stdout.contains("OK: all 2 processes"), "{run}");
}
