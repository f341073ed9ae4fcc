//! Deploy hooks with real processes: `relwatch wait` after the switch, `relwatch in-use`
//! before the cleanup, and the recipes that combine them (shell, Deployer, Capistrano,
//! Ansible), run as root and, through `setpriv`, as a deploy user with and without the sudo
//! rule of `packaging/sudoers/relwatch`.

mod unprivileged;
mod util;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use unprivileged::*;
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

/// The old worker exits and a new process on the current release gets its pid, all while
/// `wait` is stopped (SIGSTOP), so that its next poll of the laggard by pid finds the pid alive
/// again: only the start time tells the two apart. Without the stop, `wait` could see the pid
/// gone in the gap before the reuse, and the test would prove nothing about reuse.
#[test]
fn wait_is_not_fooled_by_a_reused_pid() {
    if !nix::unistd::geteuid().is_root() {
        util::skip("forcing pid reuse needs root (ns_last_pid)");
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
    use nix::sys::signal::{kill, Signal};
    let wait_pid = nix::unistd::Pid::from_raw(wait.pid());
    kill(wait_pid, Signal::SIGSTOP).expect("stop wait");
    drop(old);
    // The same pid comes back, now a worker on the current release.
    let reused = spawn_with_pid(&r2, old_pid);
    kill(wait_pid, Signal::SIGCONT).expect("continue wait");
    let Some(reused) = reused else {
        util::skip(&format!("could not get pid {old_pid} again (busy host)"));
        return;
    };
    let run = wait.finish();
    assert_eq!(run.code, 0, "the reused pid runs release 2: {run}");
    assert!(run.stdout.contains("OK: all"), "{run}");
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
/// are the ones the README promises (probe the sudo rule, wait, in-use, delete, report); wait
/// and in-use go through sudo when the probe finds the rule, and in-use's 3 keeps a release.
#[test]
fn ansible_tasks_are_well_formed() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/ansible/relwatch.yml");
    let text = std::fs::read_to_string(path).unwrap();
    let tasks: Vec<serde_json::Value> = serde_saphyr::from_str(&text).expect("valid YAML");
    assert_eq!(tasks.len(), 6, "{tasks:?}");
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
            "ansible.builtin.shell",
            "ansible.builtin.command",
            "ansible.builtin.shell",
            "ansible.builtin.command",
            "ansible.builtin.file",
            "ansible.builtin.debug"
        ]
    );
    let probe = tasks[0]["ansible.builtin.shell"]
        .as_str()
        .unwrap_or_default();
    assert!(probe.contains("sudo -n -l relwatch in-use"), "{probe}");
    assert_eq!(tasks[0]["register"], "relwatch_sudo");
    for (task, command) in [(1, "'wait'"), (3, "'in-use'")] {
        let argv = tasks[task]["ansible.builtin.command"]["argv"]
            .as_str()
            .unwrap_or_default();
        assert!(
            argv.contains("['sudo', '-n'] if relwatch_sudo.rc == 0")
                && argv.contains(&format!("'relwatch', {command}")),
            "{argv}"
        );
    }
    let failed_when = tasks[3]["failed_when"].as_str().unwrap_or_default();
    assert!(
        failed_when.contains("[0, 1, 3]"),
        "3 keeps a release: {failed_when}"
    );
    let deleted = tasks[4]["loop"].as_str().unwrap_or_default();
    assert!(
        deleted.contains("'rc', 'equalto', 0"),
        "only 0 deletes: {deleted}"
    );
}

// ---------------------------------------------------------------------------------------------
// The recipes as the deploy user: what relwatch cannot see keeps a release
// ---------------------------------------------------------------------------------------------

/// Whether the deploy user runs with the sudo rule installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sudo {
    Without,
    WithRule,
}

/// `packaging/sudoers/relwatch` made for uid [`DEPLOY`] (named `relwatch-test-deploy`) and the
/// built binary, in `dir/sudoers.d/relwatch`, and a copy of /etc/passwd naming that user in
/// `dir/passwd` (sudo wants a name). Checked with `visudo -cf` as it is installed.
fn sudo_files(dir: &Path) -> (PathBuf, PathBuf) {
    let shipped = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/sudoers/relwatch"),
    )
    .expect("read packaging/sudoers/relwatch");
    let rule = shipped
        .replace("/usr/bin/relwatch", env!("CARGO_BIN_EXE_relwatch"))
        .replace("\ndeploy ALL", "\nrelwatch-test-deploy ALL");
    assert_ne!(rule, shipped, "the rule names deploy and /usr/bin/relwatch");
    let sudoers = dir.join("sudoers.d");
    std::fs::create_dir_all(&sudoers).expect("mkdir sudoers.d");
    let file = sudoers.join("relwatch");
    std::fs::write(&file, rule).expect("write the sudo rule");
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o440))
        .expect("chmod 0440");
    let visudo = Command::new("visudo").arg("-cf").arg(&file).output();
    assert!(
        visudo.as_ref().is_ok_and(|o| o.status.success()),
        "visudo -cf {}: {visudo:?}",
        file.display()
    );
    let passwd: String = std::fs::read_to_string("/etc/passwd")
        .expect("read /etc/passwd")
        .lines()
        .filter(|l| l.split(':').nth(2) != Some(&DEPLOY.to_string()))
        .map(|l| format!("{l}\n"))
        .collect();
    let passwd_copy = dir.join("passwd");
    std::fs::write(
        &passwd_copy,
        format!(
            "{passwd}relwatch-test-deploy:*:{DEPLOY}:{DEPLOY}::/nonexistent:/usr/sbin/nologin\n"
        ),
    )
    .expect("write passwd");
    (sudoers, passwd_copy)
}

/// Runs `program ARGS...` as the deploy user ([`DEPLOY`], through `setpriv`) with `env` and
/// `RELWATCH` set to the built binary. With the rule, in a private mount namespace whose
/// /etc/sudoers.d and /etc/passwd are [`sudo_files`]: the host's are never touched.
fn as_deploy(
    root: &DeployRoot,
    sudo: Sudo,
    program: &str,
    args: &[&OsStr],
    env: &[(&str, &OsStr)],
) -> std::process::Output {
    let mut cmd = match sudo {
        Sudo::Without => Command::new("setpriv"),
        Sudo::WithRule => {
            let (sudoers, passwd) = sudo_files(&root.tmp().join("sudo"));
            let mut cmd = Command::new("unshare");
            cmd.args(["-m", "--propagation", "private", "sh", "-c"])
                .arg(r#"mount --bind "$1" /etc/sudoers.d && mount --bind "$2" /etc/passwd && shift 2 && exec setpriv "$@""#)
                .arg("sh")
                .arg(sudoers)
                .arg(passwd);
            cmd
        }
    };
    cmd.args(drop_to(DEPLOY))
        .arg(program)
        .args(args)
        .env("RELWATCH", env!("CARGO_BIN_EXE_relwatch"))
        .envs(env.iter().copied())
        .current_dir("/");
    cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"))
}

/// Whether a recipe test can run as the deploy user `sudo` asks: users switch, and for the
/// rule, sudo and visudo are installed.
fn can_run_as_deploy(test: &str, sudo: Sudo) -> bool {
    if !can_switch_users(test) {
        return false;
    }
    if sudo == Sudo::WithRule
        && !(Path::new("/usr/bin/sudo").exists() && Path::new("/usr/sbin/visudo").exists())
    {
        return cannot_run(
            test,
            "sudo is not installed: apt-get install sudo (scripts/test-deps does)",
        );
    }
    true
}

/// A deploy root owned by the deploy user with releases a, b, c, d (oldest first, d current)
/// and a worker of root in `a`: with 2 to keep, `a` and `b` are the candidates to delete.
fn cleanup_case() -> (DeployRoot, Child) {
    let root = DeployRoot::new();
    for (name, ago) in [("a", 400), ("b", 300), ("c", 200), ("d", 100)] {
        let p = root.release(name);
        age(&p, ago);
    }
    root.switch("d");
    open_up(&root);
    chown_tree(root.path(), DEPLOY);
    let worker = Child::sleep_in(root.release_path("a"));
    (root, worker)
}

/// What a cleanup must have done: without the rule it cannot tell, so it kept both candidates
/// and said why; with it, it kept `a` (root's worker uses it) and deleted `b`.
fn assert_cleanup(root: &DeployRoot, sudo: Sudo, out: &std::process::Output) {
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(root.release_path("a").exists(), "a is in use: kept\n{said}");
    assert!(
        root.release_path("c").exists() && root.release_path("d").exists(),
        "{said}"
    );
    match sudo {
        Sudo::Without => {
            assert!(
                root.release_path("b").exists(),
                "b: cannot tell, kept\n{said}"
            );
            assert!(
                said.contains("cannot tell") && said.contains("sudo rule"),
                "{said}"
            );
        }
        Sudo::WithRule => {
            assert!(
                !root.release_path("b").exists(),
                "b is unused: deleted\n{said}"
            );
            assert!(said.contains("still uses"), "{said}");
        }
    }
}

/// Regression (issue 17): the shell recipe, run as the deploy user against a root-run worker,
/// deleted its release (`in-use` said 0 over what it could not see). It keeps every candidate
/// it cannot tell about and says why; with the sudo rule it sees, keeps `a` and deletes `b`.
#[test]
fn shell_recipe_as_the_deploy_user_keeps_what_it_cannot_see() {
    for sudo in [Sudo::Without, Sudo::WithRule] {
        if !can_run_as_deploy(
            "shell_recipe_as_the_deploy_user_keeps_what_it_cannot_see",
            sudo,
        ) {
            return;
        }
        let (root, _worker) = cleanup_case();
        let recipe = recipe();
        let out = as_deploy(
            &root,
            sudo,
            "sh",
            &[
                recipe.as_os_str(),
                "cleanup".as_ref(),
                root.path().as_os_str(),
                "2".as_ref(),
            ],
            &[],
        );
        assert!(out.status.success(), "{sudo:?}: {out:?}");
        assert_cleanup(&root, sudo, &out);
    }
}

/// The shell recipe's switch as the deploy user: `wait` cannot see root's worker on the old
/// release, so it answers 3 (not 0) and the recipe says why; with the sudo rule it sees the
/// worker and times out on it (1), naming it.
#[test]
fn shell_recipe_switch_as_the_deploy_user_cannot_tell_without_the_rule() {
    for sudo in [Sudo::Without, Sudo::WithRule] {
        let test = "shell_recipe_switch_as_the_deploy_user_cannot_tell_without_the_rule";
        if !can_run_as_deploy(test, sudo) {
            return;
        }
        let root = DeployRoot::new();
        let r1 = root.release("1");
        root.release("2");
        root.switch("1");
        open_up(&root);
        chown_tree(root.path(), DEPLOY);
        let stuck = Child::sleep_in(&r1);
        let recipe = recipe();
        let out = as_deploy(
            &root,
            sudo,
            "sh",
            &[
                recipe.as_os_str(),
                "switch".as_ref(),
                root.path().as_os_str(),
                "2".as_ref(),
                "1s".as_ref(),
            ],
            &[],
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        match sudo {
            Sudo::Without => {
                assert_eq!(out.status.code(), Some(3), "{out:?}");
                assert!(
                    stderr.contains("cannot tell") && stderr.contains("sudo rule"),
                    "{stderr}"
                );
            }
            Sudo::WithRule => {
                assert_eq!(out.status.code(), Some(1), "{out:?}");
                assert!(stdout.contains(&format!("pid {}", stuck.pid())), "{stdout}");
            }
        }
        assert_eq!(
            std::fs::read_link(root.current()).ok(),
            Some(PathBuf::from("releases/2")),
            "switched"
        );
    }
}

/// Just enough of Deployer's functions to run the recipe's tasks on this host: `run` and
/// `test` run a command locally (`run` throws on failure, as Deployer's does), `{{name}}`
/// is replaced from the configuration, and the task named by `TASK` is called.
const DEPLOYER_STUB: &str = r#"<?php
namespace Deployer;
$GLOBALS['cfg'] = [
    'deploy_path' => getenv('ROOT'),
    'current_path' => getenv('ROOT') . '/current',
    'releases_list' => ['d', 'c', 'b', 'a'],
    'keep_releases' => 2,
    'relwatch_bin' => getenv('RELWATCH'),
];
$GLOBALS['tasks'] = [];
function set($name, $value) { $GLOBALS['cfg'][$name] ??= $value; }
function get($name) { return $GLOBALS['cfg'][$name]; }
function parse($s) { return preg_replace_callback('/\{\{(\w+)\}\}/', fn($m) => get($m[1]), $s); }
function desc($d) {}
function after($a, $b) {}
function task($name, $body) { $GLOBALS['tasks'][$name] = $body; }
function run($command) {
    exec(parse($command), $out, $status);
    if ($status !== 0) { throw new \RuntimeException("failed ($status): $command"); }
    return implode("\n", $out);
}
function test($command) { exec(parse($command), $out, $status); return $status === 0; }
function warning($message) { fwrite(STDERR, 'warning ' . parse($message) . "\n"); }
function writeln($message) { echo parse($message), "\n"; }
function error($message) { return new \RuntimeException(parse($message)); }
require getenv('RECIPE');
$GLOBALS['tasks'][getenv('TASK')]();
"#;

/// Just enough of Capistrano and SSHKit to run the recipe's tasks on this host: `on` runs the
/// block on a local backend whose `capture`, `test` and `execute` run commands here, and the
/// task named by `TASK` is invoked.
const CAPISTRANO_STUB: &str = r##"
require "pathname"
require "shellwords"
CFG = { relwatch_bin: ENV.fetch("RELWATCH"), keep_releases: 2 }
TASKS = {}
def fetch(name, default = nil) = CFG.fetch(name, default)
def desc(_) = nil
def after(*) = nil
def namespace(name)
  @ns = name
  yield
ensure
  @ns = nil
end
def task(name, &body) = TASKS["#{@ns}:#{name}"] = body
def invoke(name) = TASKS.fetch(name).call
module Rake
  class Task
    def self.[](_) = new
    def clear_actions = nil
  end
end
def deploy_to = ENV.fetch("ROOT")
def releases_path = Pathname(deploy_to).join("releases")
def current_path = Pathname(deploy_to).join("current")
def release_roles(*) = ["localhost"]
class Backend
  def line(args) = args.size == 1 ? args[0].to_s : args.map { |a| a.to_s.shellescape }.join(" ")
  def capture(*args)
    out = `#{line(args)}`
    raise "failed: #{line(args)}" unless $?.success?
    out.strip
  end
  def test(*args) = system(line(args))
  def execute(*args) = system(line(args)) || raise("failed: #{line(args)}")
  def info(message) = puts(message)
end
def on(hosts, &block) = hosts.each { |host| Backend.new.instance_exec(host, &block) }
load ENV.fetch("RECIPE")
invoke ENV.fetch("TASK")
"##;

/// Runs a recipe's cleanup through its stub (`interpreter STUB`) as the deploy user.
fn stub_cleanup(
    sudo: Sudo,
    interpreter: &str,
    stub: &str,
    recipe: &str,
    task: &str,
) -> (DeployRoot, std::process::Output) {
    let (root, worker) = cleanup_case();
    let stub_file = root.tmp().join("stub");
    std::fs::write(&stub_file, stub).expect("write the stub");
    let recipe = Path::new(env!("CARGO_MANIFEST_DIR")).join(recipe);
    let out = as_deploy(
        &root,
        sudo,
        interpreter,
        &[stub_file.as_os_str()],
        &[
            ("ROOT", root.path().as_os_str()),
            ("RECIPE", recipe.as_os_str()),
            ("TASK", task.as_ref()),
        ],
    );
    drop(worker);
    (root, out)
}

/// A recipe's `deploy:cleanup` run through its stub as the deploy user against a root-run
/// worker, without the sudo rule and with it (see [`assert_cleanup`]).
fn stub_cleanup_keeps_what_it_cannot_see(test: &str, interpreter: &str, stub: &str, recipe: &str) {
    for sudo in [Sudo::Without, Sudo::WithRule] {
        if !can_run_as_deploy(test, sudo) {
            return;
        }
        let (root, out) = stub_cleanup(sudo, interpreter, stub, recipe, "deploy:cleanup");
        assert!(out.status.success(), "{sudo:?}: {out:?}");
        assert_cleanup(&root, sudo, &out);
    }
}

/// The Deployer recipe's `deploy:cleanup` as the deploy user: kept what it cannot tell about
/// and warned why; with the sudo rule, kept `a` and deleted `b`.
#[test]
fn deployer_recipe_as_the_deploy_user_keeps_what_it_cannot_see() {
    stub_cleanup_keeps_what_it_cannot_see(
        "deployer_recipe_as_the_deploy_user_keeps_what_it_cannot_see",
        "php",
        DEPLOYER_STUB,
        "packaging/deployer/relwatch.php",
    );
}

/// The Capistrano recipe's `deploy:cleanup` likewise.
#[test]
fn capistrano_recipe_as_the_deploy_user_keeps_what_it_cannot_see() {
    stub_cleanup_keeps_what_it_cannot_see(
        "capistrano_recipe_as_the_deploy_user_keeps_what_it_cannot_see",
        "ruby",
        CAPISTRANO_STUB,
        "packaging/capistrano/relwatch.rake",
    );
}

/// The shipped sudo rule, installed for a deploy user (in a private mount namespace), lets it
/// run `in-use` and `wait` as root and nothing else: not `check`, and not `wait` with a config
/// file or discovery, which root would read and could quote back in an error.
#[test]
fn the_sudo_rule_allows_in_use_and_wait_only() {
    if !can_run_as_deploy("the_sudo_rule_allows_in_use_and_wait_only", Sudo::WithRule) {
        return;
    }
    let root = DeployRoot::new();
    root.release("1");
    root.switch("1");
    open_up(&root);
    let bin = env!("CARGO_BIN_EXE_relwatch");
    let path = root.path().to_str().expect("a UTF-8 temp path");
    let cases: &[(&[&str], bool)] = &[
        (&["in-use", path], true),
        (&["in-use", "--format", "json", path], true),
        (&["wait", path, "--timeout", "2m"], true),
        (&["wait", path, "--config", "/etc/shadow"], false),
        (&["wait", path, "--config=/etc/shadow"], false),
        (&["wait", "-c/etc/shadow", path], false),
        (&["wait", path, "-c", "/etc/shadow"], false),
        (&["wait", "--discover", "/root"], false),
        (&["check", path], false),
        (&["watch", path], false),
    ];
    for (args, allowed) in cases {
        let mut argv: Vec<&OsStr> = vec!["-n".as_ref(), "-l".as_ref(), bin.as_ref()];
        argv.extend(args.iter().map(OsStr::new));
        let out = as_deploy(&root, Sudo::WithRule, "sudo", &argv, &[]);
        assert_eq!(out.status.success(), *allowed, "sudo -l {args:?}: {out:?}");
    }
}
