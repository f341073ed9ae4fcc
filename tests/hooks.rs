//! Deploy hooks with real processes: `relwatch wait` after the switch, `relwatch in-use`
//! before the cleanup, and the shell recipe that combines them.

mod util;

use std::ffi::OsStr;
use std::process::Command;
use util::*;

fn args<'a>(list: &[&'a OsStr]) -> Vec<&'a OsStr> {
    list.to_vec()
}

#[test]
fn wait_returns_once_the_last_old_worker_is_replaced() {
    let root = DeployRoot::new();
    let r1 = root.release("1");
    root.switch("1");
    let old = Child::sleep_in(&r1);
    let r2 = root.release("2");
    root.switch("2");
    let mut wait = Background::start(args(&[
        "wait".as_ref(),
        root.path().as_os_str(),
        "--timeout".as_ref(),
        "50s".as_ref(),
    ]));
    // It waits while the old worker lives...
    wait.wait_for_output("waiting for 1 of 1 processes on release 1");
    assert!(
        wait.running(),
        "wait must not return while a worker is on release 1"
    );
    // ...and returns when it is replaced by one on the current release.
    drop(old);
    let _new = Child::sleep_in(&r2);
    let run = wait.finish();
    assert_eq!(run.code, 0, "{run}");
    assert!(
        run.stdout.contains("waiting for 1 of"),
        "one progress line in a pipe: {run}"
    );
    assert!(run.stdout.contains("OK"), "{run}");
    assert!(
        !run.stdout.contains('\x1b'),
        "no escape codes in a pipe: {run}"
    );
}

#[test]
fn wait_times_out_naming_the_stuck_worker() {
    let root = DeployRoot::new();
    let r1 = root.release("1");
    root.switch("1");
    let stuck = Child::sleep_in(&r1);
    root.release("2");
    root.switch("2");
    let run = relwatch([
        "wait".as_ref(),
        root.path().as_os_str(),
        "--timeout".as_ref(),
        "1s".as_ref(),
    ]);
    assert_eq!(run.code, 1, "{run}");
    assert!(
        run.stdout.contains(&format!("pid {}", stuck.pid())),
        "{run}"
    );
    assert!(run.stdout.contains("release 1"), "{run}");
    assert!(run.stdout.contains("fix: kill -TERM"), "{run}");
}

#[test]
fn wait_ends_at_once_when_a_release_under_a_worker_is_deleted() {
    let root = DeployRoot::new();
    let r1 = root.release("1");
    root.switch("1");
    let worker = Child::sleep_in(&r1);
    root.release("2");
    root.switch("2");
    let wait = Background::start(args(&[
        "wait".as_ref(),
        root.path().as_os_str(),
        "--timeout".as_ref(),
        "50s".as_ref(),
    ]));
    wait.wait_for_output("waiting for 1 of");
    root.delete("1");
    let run = wait.finish();
    assert_eq!(run.code, 2, "{run}");
    assert!(run.stdout.contains("deleted-release"), "{run}");
    assert!(run.stdout.contains(&worker.pid().to_string()), "{run}");
}

/// Start a process on `dir` whose pid is `want`, using ns_last_pid (root only).
fn spawn_with_pid(dir: &std::path::Path, want: i32) -> Option<Child> {
    for _ in 0..50 {
        if std::fs::write("/proc/sys/kernel/ns_last_pid", (want - 1).to_string()).is_err() {
            return None;
        }
        let c = Child::sleep_in(dir);
        if c.pid() == want {
            return Some(c);
        }
    }
    None
}

#[test]
fn wait_is_not_fooled_by_a_reused_pid() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: forcing pid reuse needs root (ns_last_pid)");
        return;
    }
    let root = DeployRoot::new();
    let r1 = root.release("1");
    root.switch("1");
    let old = Child::sleep_in(&r1);
    let old_pid = old.pid();
    let r2 = root.release("2");
    root.switch("2");
    let mut wait = Background::start(args(&[
        "wait".as_ref(),
        root.path().as_os_str(),
        "--timeout".as_ref(),
        "50s".as_ref(),
    ]));
    wait.wait_for_output("waiting for 1 of");
    assert!(wait.running());
    drop(old);
    // The same pid comes back, now a worker on the current release.
    let Some(reused) = spawn_with_pid(&r2, old_pid) else {
        eprintln!("skipped: could not get pid {old_pid} again (busy host)");
        return;
    };
    let run = wait.finish();
    assert_eq!(run.code, 0, "the reused pid runs release 2: {run}");
    assert_eq!(reused.pid(), old_pid);
    assert!(
        comm(reused.pid()).is_some(),
        "the new process is still alive"
    );
}

#[test]
fn in_use_reports_cwd_exe_open_and_mapped_files() {
    let root = DeployRoot::new();
    let r1 = root.release("1");
    root.switch("1");
    std::fs::write(r1.join("log"), "x").unwrap();
    std::fs::copy("/lib/x86_64-linux-gnu/libdl.so.2", r1.join("libdl.so.2")).unwrap();
    let by_cwd = Child::sleep_in(&r1);
    let by_exe = Child::exe_copy_in(&r1);
    let by_fd = Child::spawn(
        Command::new("sh")
            .arg("-c")
            .arg(format!(
                "exec 3<'{}'; exec sleep 1000",
                r1.join("log").display()
            ))
            .current_dir("/"),
    );
    // A preloaded library stays mapped with no descriptor open on it.
    let by_map = Child::spawn(
        Command::new("sleep")
            .arg("1000")
            .env("LD_PRELOAD", r1.join("libdl.so.2"))
            .current_dir("/"),
    );
    poll("sleep to map the preloaded library", || {
        std::fs::read_to_string(format!("/proc/{}/maps", by_map.pid()))
            .ok()
            .filter(|m| m.contains("libdl.so.2"))
    });
    poll("the shell to exec sleep with fd 3 open", || {
        (comm(by_fd.pid()).as_deref() == Some("sleep")).then_some(())
    });

    let run = relwatch([
        "in-use".as_ref(),
        r1.as_os_str(),
        "--format".as_ref(),
        "json".as_ref(),
    ]);
    assert_eq!(run.code, 1, "{run}");
    let doc = run.json();
    let procs = doc["paths"][0]["processes"].as_array().expect("processes");
    let hows = |pid: i32| -> Vec<String> {
        procs
            .iter()
            .find(|p| p["pid"].as_i64() == Some(i64::from(pid)))
            .map(|p| {
                p["uses"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|u| u["how"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_else(|| panic!("pid {pid} not reported: {doc}"))
    };
    assert!(hows(by_cwd.pid()).contains(&"cwd".into()));
    assert!(hows(by_exe.pid()).contains(&"exe".into()));
    assert!(hows(by_fd.pid()).contains(&"open-file".into()), "{doc}");
    assert_eq!(hows(by_map.pid()), ["mapped-file"], "{doc}");
    assert_eq!(doc["in_use"], true);
}

#[test]
fn in_use_exits_0_for_an_unused_release_and_3_for_a_missing_one() {
    let root = DeployRoot::new();
    let r1 = root.release("1");
    let r2 = root.release("2");
    root.switch("2");
    let _w = Child::sleep_in(&r2);
    let run = relwatch(["in-use".as_ref(), r1.as_os_str()]);
    assert_eq!(run.code, 0, "{run}");
    assert!(run.stdout.contains("not in use"), "{run}");
    let run = relwatch(["in-use".as_ref(), root.release_path("nope").as_os_str()]);
    assert_eq!(run.code, 3, "{run}");
    assert!(run.stderr.contains("nope"), "{run}");
}

fn recipe() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/shell/relwatch-deploy")
}

/// Set a release's modification time (the shell recipe orders releases by it).
fn age(path: &std::path::Path, secs_ago: u64) {
    let t = std::time::SystemTime::now() - std::time::Duration::from_secs(secs_ago);
    std::fs::File::open(path).unwrap().set_modified(t).unwrap();
}

#[test]
fn shell_recipe_cleanup_keeps_releases_in_use_and_says_so() {
    let root = DeployRoot::new();
    for (name, ago) in [("a", 400), ("b", 300), ("c", 200), ("d", 100)] {
        let p = root.release(name);
        age(&p, ago);
    }
    root.switch("d");
    let _user = Child::sleep_in(root.release_path("a"));
    let out = Command::new("sh")
        .arg(recipe())
        .args(["cleanup".as_ref(), root.path().as_os_str(), "2".as_ref()])
        .env("RELWATCH", env!("CARGO_BIN_EXE_relwatch"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{out:?}");
    assert!(
        !root.release_path("b").exists(),
        "b is old and unused: deleted"
    );
    assert!(root.release_path("a").exists(), "a is old but in use: kept");
    assert!(root.release_path("c").exists() && root.release_path("d").exists());
    assert!(
        stderr.contains("keeping") && stderr.contains("releases/a"),
        "it says why it kept a: {stderr}"
    );
}

#[test]
fn shell_recipe_switch_waits_for_the_workers() {
    let root = DeployRoot::new();
    let r1 = root.release("1");
    root.switch("1");
    let stuck = Child::sleep_in(&r1);
    root.release("2");
    let out = Command::new("sh")
        .arg(recipe())
        .args([
            "switch".as_ref(),
            root.path().as_os_str(),
            "2".as_ref(),
            "1s".as_ref(),
        ])
        .env("RELWATCH", env!("CARGO_BIN_EXE_relwatch"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "timed out on the stuck worker: {out:?}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("pid {}", stuck.pid())));
    assert_eq!(
        std::fs::read_link(root.current()).unwrap(),
        std::path::Path::new("releases/2"),
        "switched atomically to a relative link"
    );
}

#[test]
fn deployer_recipe_is_valid_php() {
    let php = std::path::Path::new("/usr/bin/php");
    assert!(
        php.exists(),
        "php is not installed: apt-get install php-cli (.ci/run does)"
    );
    let recipe =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/deployer/relwatch.php");
    let out = Command::new(php).arg("-l").arg(recipe).output().unwrap();
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn capistrano_recipe_is_valid_ruby() {
    let ruby = std::path::Path::new("/usr/bin/ruby");
    assert!(
        ruby.exists(),
        "ruby is not installed: apt-get install ruby (.ci/run does)"
    );
    let recipe =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/capistrano/relwatch.rake");
    let out = Command::new(ruby).arg("-c").arg(recipe).output().unwrap();
    assert!(out.status.success(), "{out:?}");
}

/// The Ansible tasks are YAML, every task has a name and exactly one module, and the modules
/// are the ones the README promises (wait, in-use, delete, report).
#[test]
fn ansible_tasks_are_well_formed() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/ansible/relwatch.yml");
    let text = std::fs::read_to_string(path).unwrap();
    let tasks: Vec<serde_json::Value> = serde_saphyr::from_str(&text).expect("valid YAML");
    assert_eq!(tasks.len(), 5, "{tasks:?}");
    const NOT_MODULES: &[&str] = &[
        "name",
        "register",
        "loop",
        "loop_control",
        "changed_when",
        "failed_when",
        "vars",
        "when",
    ];
    let mut modules = Vec::new();
    for t in &tasks {
        let map = t.as_object().expect("a task is a mapping");
        assert!(
            map["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("relwatch |")),
            "{t}"
        );
        let m: Vec<&String> = map
            .keys()
            .filter(|k| !NOT_MODULES.contains(&k.as_str()))
            .collect();
        assert_eq!(m.len(), 1, "one module per task: {t}");
        modules.push(m[0].clone());
    }
    assert_eq!(
        modules,
        [
            "ansible.builtin.command",
            "ansible.builtin.shell",
            "ansible.builtin.command",
            "ansible.builtin.file",
            "ansible.builtin.debug"
        ]
    );
    let argv = &tasks[0]["ansible.builtin.command"]["argv"];
    assert_eq!(argv[0], "relwatch");
    assert_eq!(argv[1], "wait");
    assert_eq!(tasks[2]["ansible.builtin.command"]["argv"][1], "in-use");
}
