//! Attacks by a local user on root's relwatch, run against the built binary: each test builds
//! what the user controls (a release name, a process title, an environment value), runs
//! relwatch, and asserts the safe outcome. docs/SECURITY.md ("Attacks and the tests that hold
//! them") lists them with the promise each one holds.

mod util;

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use util::*;

/// A release a user named so that an unquoted path runs their command.
const EVIL_RELEASE: &str = "2;id>PWNED;#";

/// The commands of a `fix:` line of the text report, after `prefix`.
fn fix_line<'a>(run: &'a Run, prefix: &str) -> &'a str {
    run.stdout
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("fix: "))
        .and_then(|fix| fix.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no `fix: {prefix}...` line\n{run}"))
}

/// Runs `line` with `shell -c` in `dir`, and says whether it succeeded.
fn paste(shell: &str, line: &str, dir: &Path) -> bool {
    let out = Command::new(shell)
        .arg("-c")
        .arg(line)
        .current_dir(dir)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap_or_else(|e| panic!("run {shell}: {e}"));
    out.status.success()
}

/// Regression: a release named `2;id>PWNED;#` with a broken `current` gave `fix: ln -sfn
/// .../releases/2;id>PWNED;# ...`, which ran `id` when pasted into a root shell. The fix is
/// quoted: pasted into `sh` and `bash` it runs exactly `ln` and `mv` (which really repoint
/// the link) and creates no file; JSON carries the same argv.
#[test]
fn a_pasted_link_fix_runs_nothing_a_release_name_holds() {
    for shell in ["sh", "bash"] {
        let root = DeployRoot::new();
        root.release("1");
        let evil = root.release(EVIL_RELEASE);
        root.point_current_at("releases/9");
        let run = relwatch(["check".as_ref(), root.path().as_os_str()]);
        assert_eq!(run.code, 2, "a dangling current is critical\n{run}");
        let fix = fix_line(&run, "point it at a release atomically, e.g. the newest: ");
        let pasted_in = tempdir();
        assert!(paste(shell, fix, pasted_in.path()), "{shell} -c {fix:?}");
        for dir in [pasted_in.path(), root.path(), &root.tmp()] {
            assert!(
                !dir.join("PWNED").exists(),
                "{shell} ran a command from the release name: {}\n{fix}",
                dir.display()
            );
        }
        assert_eq!(
            std::fs::canonicalize(root.current()).unwrap(),
            std::fs::canonicalize(&evil).unwrap(),
            "the pasted fix points current at the release, by its exact name"
        );
    }
}

#[test]
fn json_fix_carries_the_argv_of_the_link_fix() {
    let root = DeployRoot::new();
    let evil = root.release(EVIL_RELEASE);
    root.point_current_at("releases/9");
    let (run, _) = check_json([root.path()]);
    let report = run.report();
    let f = report
        .findings
        .iter()
        .find(|f| f.remedy.contains("atomically"))
        .unwrap_or_else(|| panic!("no broken-current finding\n{run}"));
    let mut new = root.current().into_os_string();
    new.push(".new");
    let argv: Vec<Vec<Vec<u8>>> = f
        .fix
        .iter()
        .map(|c| c.argv.iter().map(ByteStr::to_bytes).collect())
        .collect();
    let bytes = |s: &OsStr| path_bytes(Path::new(s));
    assert_eq!(
        argv,
        [
            vec![b("ln"), b("-sfn"), path_bytes(&evil), bytes(&new)],
            vec![b("mv"), b("-T"), bytes(&new), path_bytes(&root.current())],
        ],
        "{run}"
    );
    assert!(f.fix.iter().all(|c| c.as_uid == 0), "{run}");
}

/// Regression: a supervisord program name (`SUPERVISOR_PROCESS_NAME`) with ESC, BEL and a
/// newline reached the text report and the JSON `remedy` raw, through the `duplicate` stop
/// command: it could retitle the operator's terminal and forge report lines. It is one
/// quoted, escaped shell word now, and JSON's `fix` argv keeps the exact bytes.
#[test]
fn a_supervisord_program_name_cannot_reach_the_terminal_raw() {
    let root = DeployRoot::new();
    let r1 = root.release("1");
    root.switch("1");
    let name = "q\x1b]0;pwned\x07\nCRITICAL forged line";
    // A supervisord (by its title) whose child carries the program name, on release 1.
    let old = Child::spawn(
        Command::new("sh")
            .arg0("supervisord")
            .args(["-c", "sleep 1001 & wait"])
            .env("SUPERVISOR_ENABLED", "1")
            .env("SUPERVISOR_PROCESS_NAME", name)
            .current_dir(&r1),
    );
    let old_sleep = old.wait_for_children(1, "sleep")[0];
    wait_started_before_now(old_sleep);
    let r2 = root.release("2");
    root.switch("2");
    let _new = Child::spawn(Command::new("sleep").arg("1001").current_dir(&r2));
    let cfg = root.tmp().join("relwatch.yaml");
    std::fs::write(
        &cfg,
        format!(
            "apps:\n  - name: shop\n    root: {}\n    roles:\n      - name: scheduler\n        match: \"^sleep 1001$\"\n        singleton: true\n",
            root.path().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (run, _) = check_json(["--config".as_ref(), cfg.as_os_str()]);
    let report = run.report();
    let dup = report
        .findings
        .iter()
        .find(|f| f.role.as_deref() == Some("scheduler") && !f.fix.is_empty())
        .unwrap_or_else(|| panic!("no duplicate finding\n{run}"));
    let expected = r"supervisorctl stop $'q\x1b]0;pwned\x07\nCRITICAL forged line'";
    assert!(dup.remedy.ends_with(expected), "{}", dup.remedy);
    let argv: Vec<Vec<u8>> = dup.fix[0].argv.iter().map(ByteStr::to_bytes).collect();
    assert_eq!(argv, [b("supervisorctl"), b("stop"), b(name)], "{run}");
    let text = relwatch(["check".as_ref(), "--config".as_ref(), cfg.as_os_str()]);
    assert!(
        !text.stdout.contains('\x1b') && !text.stdout.contains('\x07'),
        "{text}"
    );
    assert!(
        !text
            .stdout
            .lines()
            .any(|l| l.starts_with("CRITICAL forged")),
        "{text}"
    );
    assert!(text.stdout.contains(expected), "{text}");
}

/// The largest peak resident size (KiB) of any child this test binary has waited for.
fn children_peak_rss_kib() -> i64 {
    use nix::sys::resource::{getrusage, UsageWho};
    getrusage(UsageWho::RUSAGE_CHILDREN)
        .expect("getrusage(RUSAGE_CHILDREN)")
        .max_rss()
}

/// `relwatch check ROOT`, and the peak resident memory (KiB) of this binary's children once it
/// ended: RUSAGE_CHILDREN is the peak of every child this binary waited for, so another
/// test's child at `bound_kib` or above before it would make the measurement say nothing (it
/// fails rather than passes).
fn check_with_peak(root: &Path, bound_kib: i64) -> (Run, i64) {
    let before = children_peak_rss_kib();
    assert!(
        before < bound_kib,
        "another child of this test binary already peaked at {before} KiB"
    );
    let run = relwatch(["check".as_ref(), root.as_os_str()]);
    let peak = children_peak_rss_kib();
    eprintln!("a scan of them peaked at {peak} KiB");
    (run, peak)
}

/// Regression: `cmdline` was read whole and kept for every process. 201 processes with 6 MiB
/// of arguments (children share them copy-on-write, so each costs the user ~100 KB) took a
/// scan to 1.22 GB. Now each is read up to 64 KiB and marked `cmdline_truncated`: 200
/// processes with 2 MiB each keep a scan under 32 MiB.
#[test]
fn two_hundred_processes_with_2_mib_of_arguments_do_not_exhaust_the_scan() {
    let root = DeployRoot::new();
    let r1 = root.release("1");
    root.switch("1");
    let fifo = root.tmp().join("block");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
    // One argument may hold at most 128 KiB, and all of them a quarter of the stack limit: sh
    // makes 32 of 64 KiB under a 64 MiB stack limit and runs again with them, then forks 199
    // subshells that share them, each blocked opening a FIFO nobody writes.
    let inner =
        r#"i=0; while [ $i -lt 199 ]; do (read x < "$0") & i=$((i+1)); done; read x < "$0""#;
    let outer = format!(
        r#"a=$(printf %065535d 0); set --; i=0; while [ $i -lt 32 ]; do set -- "$@" "$a"; i=$((i+1)); done; exec sh -c '{inner}' "$0" "$@""#
    );
    let holder = Child::spawn(
        Command::new("prlimit")
            .args(["--stack=67108864", "sh", "-c", &outer])
            .arg(&fifo)
            .current_dir(&r1),
    );
    let big =
        |pid: i32| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.len() > 2 << 20);
    poll("sh and its 199 subshells with 2 MiB of arguments", || {
        let kids = holder.children();
        (big(holder.pid()) && kids.len() == 199 && kids.iter().all(|&k| big(k))).then_some(())
    });
    let (run, peak) = check_with_peak(root.path(), 32 * 1024);
    assert_eq!(run.code, 0, "{run}");
    assert!(
        run.stdout.contains("release 1 (current): 200 processes"),
        "{run}"
    );
    assert!(
        peak < 32 * 1024,
        "the scan peaked at {peak} KiB (at most 32 MiB)"
    );
    let (run, doc) = check_json([root.path()]);
    let truncated = array(&doc, "processes")
        .iter()
        .filter(|p| p["cmdline_truncated"] == true)
        .count();
    assert_eq!(
        truncated, 200,
        "every long command line is marked\n{}",
        run.stderr
    );
    assert!(
        children_peak_rss_kib() < 32 * 1024,
        "JSON of them peaked higher"
    );
}

/// Regression: command lines were kept up to 64 KiB for every process, so 10,000 processes of
/// one user with 64 KiB of arguments made a root scan hold 640 MiB. Now a command line longer
/// than 4 KiB is kept only when it could matter (it, or the process's cwd or exe, names a
/// deploy root), within a budget of 16 MiB a scan; the rest keep the arguments within their
/// first 4 KiB. A user's 2,000 processes outside any root with 60 KiB of arguments each (half
/// of them naming the root, to spend the budget) keep the scan under 48 MiB (the uncut
/// command lines alone are 117 MiB), and the report is unchanged.
#[test]
fn two_thousand_processes_outside_the_roots_keep_short_command_lines() {
    let test = "two_thousand_processes_outside_the_roots_keep_short_command_lines";
    if !can_run(test, is_root(), "root (to run processes as another uid)") {
        return;
    }
    let root = DeployRoot::new();
    let r1 = root.release("1");
    root.switch("1");
    let worker = Child::sleep_in(&r1);
    let fifos = tempdir();
    std::fs::set_permissions(fifos.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let fifo = fifos.path().join("block");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o666)).expect("mkfifo");
    std::fs::set_permissions(&fifo, std::fs::Permissions::from_mode(0o666)).unwrap();
    let user = USER.to_string();
    // sh takes 60 KB of arguments (ending with `tail`) and runs again with them, then forks 999
    // subshells that share them, each blocked opening a FIFO nobody writes.
    let inner =
        r#"i=0; while [ $i -lt 999 ]; do (read x < "$0") & i=$((i+1)); done; read x < "$0""#;
    let holder = |tail: &OsStr| {
        let outer = format!(r#"a=$(printf %060000d 0); exec sh -c '{inner}' "$0" "$a$1""#);
        Child::spawn(
            Command::new("setpriv")
                .args([
                    format!("--reuid={user}"),
                    format!("--regid={user}"),
                    "--clear-groups".into(),
                ])
                .args(["sh", "-c", &outer])
                .arg(&fifo)
                .arg(tail)
                .current_dir("/"),
        )
    };
    let holders = [holder("".as_ref()), holder(root.path().as_os_str())];
    let big =
        |pid: i32| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.len() > 60_000);
    poll(
        "two sh and their 1,998 subshells with 60 KB of arguments",
        || {
            holders
                .iter()
                .all(|h| {
                    let kids = h.children();
                    big(h.pid()) && kids.len() == 999 && kids.iter().all(|&k| big(k))
                })
                .then_some(())
        },
    );
    let (run, peak) = check_with_peak(root.path(), 48 * 1024);
    assert_eq!(run.code, 0, "{run}");
    assert!(
        run.stdout.contains("release 1 (current): 1 process"),
        "{run}"
    );
    assert!(
        peak < 48 * 1024,
        "the scan peaked at {peak} KiB (at most 48 MiB)"
    );
    drop(worker);
}

/// Regression: a duration too long to add to a clock (`wait --timeout 18446744073709551615s`,
/// `watch --grace` as long) panicked with an overflow. Every duration flag has a bound
/// (`--grace` 30 days as in the config file, the others a year), and one beyond is a usage
/// error: exit 3, the flag and the bound named.
#[test]
fn absurd_durations_are_usage_errors() {
    let root = DeployRoot::new();
    root.release("1");
    root.switch("1");
    let huge = "18446744073709551615s";
    for (args, bound) in [
        (vec!["wait", "--timeout", huge], "365d"),
        (vec!["check", "--grace", huge], "30d"),
        (vec!["check", "--grace", "31d"], "30d"),
        (vec!["watch", "--grace", huge], "30d"),
        (vec!["watch", "--interval", "366d"], "365d"),
        (vec!["watch", "--restart-window", huge], "365d"),
    ] {
        let mut all: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        all.push(root.path().as_os_str());
        let run = relwatch(&all);
        assert_eq!(run.code, 3, "{run}");
        assert!(
            run.stderr
                .contains(&format!("longest allowed here, {bound}"))
                && !run.stderr.contains("panicked"),
            "{run}"
        );
    }
    let run = relwatch([
        "check".as_ref(),
        "--grace".as_ref(),
        "30d".as_ref(),
        root.path().as_os_str(),
    ]);
    assert_eq!(run.code, 0, "30 days is allowed\n{run}");
}

/// Regression: `--config` naming a file that is not a relwatch configuration (here one laid
/// out like /etc/shadow, which root may read) printed its first line, a password hash, as an
/// unknown key. It is refused with exit 3, and nothing of it is shown.
#[test]
fn a_config_error_never_quotes_a_file_that_is_not_a_config() {
    let root = DeployRoot::new();
    let shadow = root.tmp().join("shadow");
    std::fs::write(
        &shadow,
        "root:$y$j9T$SECRETSALT$SECRETHASH:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n",
    )
    .unwrap();
    std::fs::set_permissions(&shadow, std::fs::Permissions::from_mode(0o640)).unwrap();
    let run = relwatch(["check".as_ref(), "--config".as_ref(), shadow.as_os_str()]);
    assert_eq!(run.code, 3, "{run}");
    assert!(!run.output_lower().contains("secret"), "{run}");
    assert!(run.stderr.contains("not a relwatch configuration"), "{run}");
}

/// Whether a test that needs `what` (root, a mounted hierarchy, ...) can run. When it cannot,
/// it says why and is skipped; with `CI=true` it fails instead, so a CI run never passes a
/// test that did not run.
fn can_run(test: &str, ok: bool, what: &str) -> bool {
    if ok {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test} cannot run: it needs {what}"
    );
    eprintln!("skipped {test}: it needs {what}");
    false
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// A uid with no passwd entry, for processes a test runs as "a local user".
const USER: u32 = 4_242_421;

/// Regression: a user's own cgroup under their manager named `user@x.service/
/// systemd-reboot.service` reset the unit parser to system scope, and root was told
/// `systemctl restart systemd-reboot.service`. Everything below `user@UID.service` is UID's.
#[test]
fn a_cgroup_below_a_user_manager_stays_that_users() {
    let test = "a_cgroup_below_a_user_manager_stays_that_users";
    if !can_run(test, is_root(), "root (to create cgroups)") {
        return;
    }
    let Some(_) = Cgroup::mount_of(true) else {
        can_run(test, false, "a mounted cgroup2 hierarchy");
        return;
    };
    let _lock = cgroup_lock();
    let rel = format!(
        "relwatch-test-hostile-{}.slice/user@{USER}.service/app.slice/evil/user@x.service/systemd-reboot.service",
        std::process::id()
    );
    let Some(cg) = Cgroup::create(true, &rel) else {
        panic!("cannot create {rel}");
    };
    let (_root, worker, run, doc) = cg.old_worker();
    let f = findings_of(&doc, "old-release");
    assert_eq!(f.len(), 1, "{run}");
    assert_eq!(
        f[0]["remedy"],
        format!("as uid {USER}: systemctl --user restart systemd-reboot.service"),
        "{run}"
    );
    assert_eq!(f[0]["fix"][0]["as"], USER, "{run}");
    assert_eq!(process(&doc, worker.pid()).unwrap()["owner"]["user"], USER);
    drop(worker);
    drop(cg);
}

/// Regression: a user's own process titled `supervisord` above their worker, with
/// `SUPERVISOR_PROCESS_NAME=all`, made root's remedy `supervisorctl restart all` (root's
/// real supervisord would restart everything). A supervisor counts only as root or as the
/// worker's uid, and its commands are said to run as its user.
#[test]
fn a_users_own_supervisor_is_driven_as_that_user() {
    let test = "a_users_own_supervisor_is_driven_as_that_user";
    if !can_run(test, is_root(), "root (to run processes as another uid)") {
        return;
    }
    let root = DeployRoot::new();
    std::fs::set_permissions(root.tmp(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let r1 = root.release("1");
    root.switch("1");
    let user = USER.to_string();
    let fake = Child::spawn(
        Command::new("setpriv")
            .args([
                format!("--reuid={user}"),
                format!("--regid={user}"),
                "--clear-groups".into(),
            ])
            .args([
                "bash",
                "-c",
                r#"exec -a supervisord bash -c '(cd "$0" && exec sleep 1001) & wait' "$0""#,
            ])
            .arg(&r1)
            .env("SUPERVISOR_ENABLED", "1")
            .env("SUPERVISOR_PROCESS_NAME", "all")
            .current_dir("/"),
    );
    let worker = fake.wait_for_children(1, "sleep")[0];
    wait_started_before_now(worker);
    root.release("2");
    root.switch("2");
    let (run, doc) = check_json([root.path().as_os_str(), "--grace".as_ref(), "0s".as_ref()]);
    let f = findings_of(&doc, "old-release");
    assert_eq!(f.len(), 1, "{run}");
    assert_eq!(pids(f[0]), [i64::from(worker)], "{run}");
    assert_eq!(
        f[0]["remedy"],
        format!("as uid {USER}: supervisorctl restart all"),
        "{run}"
    );
    assert_eq!(f[0]["fix"][0]["as"], USER, "{run}");
}
