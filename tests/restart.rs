//! `relwatch restart`: real processes on an old or deleted release, restarted through their
//! real supervisor (supervisord, systemd in a container), confirmed with the supervisor's own
//! view, and the next `check` OK; an unsupervised gunicorn ended with its graceful signal and
//! said to need starting again; a forged supervisor refused; `--dry-run` and a missing
//! terminal change nothing. Tests that need root or a package fail under CI=true without them.

mod util;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use util::systemd::Container;
use util::*;

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Whether `pid` is still the process that started at `ticks` (and not a zombie).
fn alive(pid: i32, ticks: u64) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
        return false;
    };
    let fields: Vec<&str> = rest.split(' ').collect();
    fields.first() != Some(&"Z") && fields.get(19).and_then(|t| t.parse().ok()) == Some(ticks)
}

/// A sleeper started in release 1 of a fresh root, with current then switched to 2.
fn sleeper_on_old_release() -> (DeployRoot, Child) {
    let root = DeployRoot::new();
    root.release("1");
    root.switch("1");
    let child = Child::sleep_in(root.current());
    wait_started_before_now(child.pid());
    root.release("2");
    root.switch("2");
    (root, child)
}

#[test]
fn dry_run_prints_the_plan_and_changes_nothing() {
    let (root, child) = sleeper_on_old_release();
    let ticks = child.start_ticks();
    let run = relwatch_restart(&root, &["--dry-run"]);
    assert_eq!(run.code, 0, "{run}");
    assert!(run.stdout.contains("dry run"), "{run}");
    let plan = format!("kill -TERM {}: confirmed", child.pid());
    assert!(
        run.stderr.contains(&plan),
        "the plan names the action\n{run}"
    );
    assert!(
        alive(child.pid(), ticks),
        "a dry run ended the process\n{run}"
    );
}

/// `relwatch restart ROOT ARGS...`
fn relwatch_restart(root: &DeployRoot, args: &[&str]) -> Run {
    let mut argv: Vec<std::ffi::OsString> = vec!["restart".into(), root.path().into()];
    argv.extend(args.iter().map(Into::into));
    relwatch(argv)
}

#[test]
fn without_a_terminal_and_without_yes_it_refuses() {
    let (root, child) = sleeper_on_old_release();
    let ticks = child.start_ticks();
    let run = relwatch_restart(&root, &[]);
    assert_eq!(run.code, 3, "{run}");
    assert!(run.stderr.contains("pass --yes"), "{run}");
    assert!(alive(child.pid(), ticks), "{run}");
    let json = relwatch_restart(&root, &["--format", "json"]);
    assert_eq!(json.code, 3, "{json}");
    let doc = json.json();
    assert_eq!(doc["status"], "unknown", "{json}");
    assert_eq!(doc["actions"][0]["state"], "confirmed", "{json}");
    assert_eq!(doc["actions"][0]["pids"][0], child.pid(), "{json}");
}

/// gunicorn's master and workers, started from current (release 1), unsupervised; current then
/// moves to 2. Nothing would start the master again, so `restart --yes` ends it with the
/// remedy's signal, says so, and exits 1.
#[test]
fn an_unsupervised_gunicorn_is_ended_and_said_to_need_starting() {
    if !std::path::Path::new("/usr/bin/gunicorn").exists() {
        skip("gunicorn is not installed: apt-get install gunicorn (scripts/test-deps)");
        return;
    }
    let root = DeployRoot::new();
    root.write(
        "releases/1/app.py",
        "def app(environ, start_response):\n    start_response('200 OK', [])\n    return [b'1']\n",
    );
    root.switch("1");
    let sock = root.tmp().join("g.sock");
    let master = Child::spawn(
        Command::new("/usr/bin/gunicorn")
            .args(["--workers", "2", "--bind"])
            .arg(format!("unix:{}", sock.display()))
            .arg("app:app")
            .env_remove("PWD")
            .current_dir(root.current()),
    );
    let workers = master.wait_for_children(2, "gunicorn");
    let ticks = master.start_ticks();
    wait_started_before_now(master.pid());
    root.release("2");
    root.switch("2");
    let run = one_master_ended(&root, master.pid(), &workers);
    assert!(!alive(master.pid(), ticks), "the master was ended\n{run}");
    assert!(run.stderr.contains("outcome [1/1]"), "{run}");
}

/// `restart --yes` of an unsupervised master and its `workers`: one action covering them all,
/// ended, saying to start it again from current, exit 1.
fn one_master_ended(root: &DeployRoot, master: i32, workers: &[i32]) -> Run {
    let run = relwatch_restart(root, &["--yes", "--timeout", "30s", "--format", "json"]);
    assert_eq!(run.code, 1, "ended, not restarted: not converged\n{run}");
    let doc = run.json();
    let actions = array(&doc, "actions");
    assert_eq!(
        actions.len(),
        1,
        "one action for the master, none per worker\n{run}"
    );
    assert_eq!(actions[0]["state"], "ended", "{run}");
    let start_again = format!(
        "nothing starts it again: start it from {}",
        root.current().display()
    );
    assert!(
        actions[0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains(&start_again)),
        "{run}"
    );
    let covered = pids(&actions[0]);
    for p in workers.iter().chain([&master]) {
        assert!(covered.contains(&i64::from(*p)), "pid {p} covered\n{run}");
    }
    run
}

/// Debian's supervisor; the suite fails rather than skips without it.
fn worker_conf(tmp: &std::path::Path, current: &std::path::Path) -> std::path::PathBuf {
    assert!(
        std::path::Path::new("/usr/bin/supervisord").exists(),
        "supervisord is not installed: apt-get install supervisor"
    );
    supervisord_conf(
        tmp,
        &format!(
            "[program:worker]\ncommand=sleep 1000\ndirectory={}\nautostart=true\nstartsecs=0\nstopsignal=KILL\n",
            current.display()
        ),
    )
}

/// A real supervisord (`-c CONF`, started from `/`) whose program `worker` runs `sleep` from
/// `current` (release 1): the program's first process and its start time.
struct Supervised {
    root: DeployRoot,
    conf: std::path::PathBuf,
    first: i32,
    ticks: u64,
    _sd: Child,
}

fn supervised() -> Supervised {
    let root = DeployRoot::new();
    root.release("1");
    root.switch("1");
    let conf = worker_conf(&root.tmp(), &root.current());
    let sd = Child::spawn(
        Command::new("/usr/bin/supervisord")
            .args(["-n", "-c"])
            .arg(&conf)
            .current_dir("/"),
    );
    let first = sd.wait_for_children(1, "sleep")[0];
    Supervised {
        ticks: start_ticks(first),
        root,
        conf,
        first,
        _sd: sd,
    }
}

#[test]
fn a_supervisord_program_is_restarted_through_supervisorctl() {
    let Supervised {
        root,
        conf,
        first,
        ticks,
        _sd,
    } = supervised();
    root.release("2");
    root.switch("2");
    let run = relwatch_restart(&root, &["--yes", "--timeout", "30s"]);
    assert_eq!(run.code, 0, "{run}");
    let line = format!("supervisorctl -c {} restart worker:worker", conf.display());
    assert!(run.stderr.contains(&line), "{run}");
    assert!(run.stderr.contains("replaced"), "{run}");
    assert!(!alive(first, ticks), "{run}");
    let check = relwatch(["check".as_ref(), root.path().as_os_str()]);
    assert_eq!(check.code, 0, "the next check is OK\n{check}");
}

/// A uid with no passwd entry, for the "local user" of a forgery.
const USER: u32 = 4_242_422;

/// A local user's (uid [`USER`]) process titled `title`, with `env`, above their `sleep` worker
/// started in release 1; current then moves to 2. `restart --yes` must skip its one action
/// (run as the user) and touch nothing: the action's JSON is returned.
fn forged_owner_is_skipped(title: &str, env: &[(&str, std::ffi::OsString)]) -> serde_json::Value {
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
            .args(["bash", "-c"])
            .arg(r#"exec -a "$1" bash -c '(cd "$0" && exec sleep 1001) & wait' "$0""#)
            .arg(&r1)
            .arg(title.replace("RELEASE", &r1.display().to_string()))
            .envs(env.iter().map(|(k, v)| {
                let v = v
                    .to_string_lossy()
                    .replace("RELEASE", &r1.display().to_string());
                (*k, v)
            }))
            .current_dir("/"),
    );
    let worker = fake.wait_for_children(1, "sleep")[0];
    let ticks = start_ticks(worker);
    wait_started_before_now(worker);
    root.release("2");
    root.switch("2");
    // A dry run says the real run would skip it: never "OK" over a plan that restarts nothing.
    let dry = relwatch_restart(&root, &["--dry-run"]);
    assert_eq!(
        dry.code, 1,
        "a skipped item is not OK, dry run or not\n{dry}"
    );
    assert!(
        dry.stdout
            .contains("dry run: 1 item planned, 1 of them would be skipped"),
        "{dry}"
    );
    let run = relwatch_restart(&root, &["--yes", "--timeout", "10s", "--format", "json"]);
    assert_eq!(run.code, 1, "skipped: not converged\n{run}");
    let doc = run.json();
    let actions = array(&doc, "actions");
    assert_eq!(actions.len(), 1, "{run}");
    assert_eq!(actions[0]["state"], "skipped", "{run}");
    assert_eq!(actions[0]["command"]["as"], USER, "{run}");
    assert!(alive(worker, ticks), "the worker was not touched\n{run}");
    assert!(alive(fake.pid(), fake.start_ticks()), "{run}");
    actions[0].clone()
}

/// A user's own process titled `supervisord`, with `SUPERVISOR_PROCESS_NAME=all`, above their
/// worker on an old release: the remedy says `supervisorctl restart all` as that user, but no
/// supervisord answers for that pid, so the action is skipped and nothing is restarted.
#[test]
fn a_forged_supervisor_is_refused() {
    if !is_root() {
        skip("a forged owner needs root (to run processes as another uid)");
        return;
    }
    forged_owner_is_skipped(
        "supervisord",
        &[
            ("SUPERVISOR_ENABLED", "1".into()),
            ("SUPERVISOR_PROCESS_NAME", "all".into()),
        ],
    );
}

/// The seed incident under a real systemd: a unit's master and two workers on a release that
/// a cleanup deleted. `restart --yes` restarts the unit (confirmed by `systemctl show`), waits
/// for the new master, and the next check is OK.
#[test]
fn a_systemd_unit_on_a_deleted_release_is_restarted() {
    let root = DeployRoot::named("app");
    root.release("1");
    root.switch("1");
    let Some(mut container) = Container::boot(&[(&root.tmp(), "/srv")]) else {
        return;
    };
    let unit = "shop-queue.service";
    container.start_unit(
        unit,
        "[Service]\nWorkingDirectory=/srv/app/current\n\
         ExecStart=/bin/sh -c 'sleep 1000 & sleep 1000 & wait'\n",
    );
    let first = container.poll("the unit's master and two workers", |c| {
        let main = c.main_pid(&["systemctl"], unit);
        (main > 0 && c.children(main).len() == 2).then_some(main)
    });
    root.release("2");
    root.switch("2");
    root.delete("1");
    let dry = container.relwatch(["restart", "/srv/app", "--dry-run"]);
    assert_eq!(dry.code, 0, "{dry}");
    assert!(
        dry.stderr
            .contains("systemctl restart shop-queue.service: confirmed"),
        "{dry}"
    );
    assert_eq!(container.main_pid(&["systemctl"], unit), first, "{dry}");
    let run = container.relwatch(["restart", "/srv/app", "--yes", "--timeout", "60s"]);
    assert_eq!(run.code, 0, "{run}");
    assert!(run.stderr.contains("deleted-release"), "{run}");
    assert!(run.stderr.contains("replaced"), "{run}");
    let main = container.main_pid(&["systemctl"], unit);
    assert!(main > 0 && main != first, "a new master\n{run}");
    let check = container.relwatch(["check", "/srv/app", "--grace", "0s"]);
    assert_eq!(check.code, 0, "the next check is OK\n{check}");
}

/// A runit service (`runsv DIR`, its `run` script starting a worker from current): `restart
/// --yes` confirms it with `sv status DIR` and restarts it with `sv restart DIR`.
#[test]
fn a_runit_service_is_restarted_through_sv() {
    if !std::path::Path::new("/usr/bin/runsv").exists() {
        skip("runit is not installed: apt-get install runit (scripts/test-deps)");
        return;
    }
    let root = DeployRoot::new();
    root.release("1");
    root.switch("1");
    let svc = root.tmp().join("worker");
    std::fs::create_dir(&svc).unwrap();
    let run_script = svc.join("run");
    std::fs::write(
        &run_script,
        format!(
            "#!/bin/sh\ncd '{}' && exec sleep 1000\n",
            root.current().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&run_script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let runsv = Child::spawn(Command::new("/usr/bin/runsv").arg(&svc).current_dir("/"));
    let first = runsv.wait_for_children(1, "sleep")[0];
    let ticks = start_ticks(first);
    root.release("2");
    root.switch("2");
    let run = relwatch_restart(&root, &["--yes", "--timeout", "30s"]);
    assert_eq!(run.code, 0, "{run}");
    let line = format!("sv restart {}: done", svc.display());
    assert!(run.stderr.contains(&line), "{run}");
    assert!(!alive(first, ticks), "{run}");
    let check = relwatch(["check".as_ref(), root.path().as_os_str()]);
    assert_eq!(check.code, 0, "the next check is OK\n{check}");
}

/// `wait --restart`, as a deploy recipe that opts in runs it after the switch: the supervisord
/// program is restarted and the wait ends converged.
#[test]
fn wait_with_restart_restarts_and_converges() {
    let Supervised {
        root,
        first,
        ticks,
        _sd,
        ..
    } = supervised();
    root.release("2");
    root.switch("2");
    let plain = relwatch([
        "wait".as_ref(),
        root.path().as_os_str(),
        "--timeout".as_ref(),
        "1s".as_ref(),
    ]);
    assert_eq!(
        plain.code, 1,
        "plain wait restarts nothing: it times out\n{plain}"
    );
    assert!(alive(first, ticks), "{plain}");
    let run = relwatch([
        "wait".as_ref(),
        root.path().as_os_str(),
        "--restart".as_ref(),
        "--timeout".as_ref(),
        "30s".as_ref(),
    ]);
    assert_eq!(run.code, 0, "{run}");
    assert!(!alive(first, ticks), "{run}");
}

/// The shell recipe's opt-in: `RELWATCH_RESTART=1 relwatch-deploy switch` switches, restarts
/// the supervisord program left on the old release, and exits 0; without it, the default is
/// unchanged (the wait only waits, and times out).
#[test]
fn the_shell_recipe_restarts_only_when_asked() {
    let Supervised {
        root,
        first,
        ticks,
        _sd,
        ..
    } = supervised();
    root.release("2");
    root.release("3");
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/shell/relwatch-deploy");
    let recipe = |release: &str, timeout: &str, restart: bool| {
        let mut args: Vec<std::ffi::OsString> =
            vec![script.clone().into(), "switch".into(), root.path().into()];
        args.extend([release.into(), timeout.into()]);
        let mut env = vec![format!("RELWATCH={}", env!("CARGO_BIN_EXE_relwatch"))];
        if restart {
            env.push("RELWATCH_RESTART=1".into());
        }
        let mut argv: Vec<std::ffi::OsString> = env.into_iter().map(Into::into).collect();
        argv.push("sh".into());
        argv.extend(args);
        run_program("env", argv)
    };
    let plain = recipe("2", "1s", false);
    assert_eq!(plain.code, 1, "the default only waits\n{plain}");
    assert!(alive(first, ticks), "{plain}");
    let run = recipe("3", "30s", true);
    assert_eq!(run.code, 0, "{run}");
    assert!(run.stderr.contains("supervisorctl -c"), "{run}");
    assert!(!alive(first, ticks), "{run}");
}

/// On a terminal it asks once for the whole plan: "n" changes nothing (exit 3), "y" acts.
/// `script` (util-linux) gives it a pseudo-terminal and types the answer.
#[test]
fn on_a_terminal_it_asks_once() {
    let (root, child) = sleeper_on_old_release();
    let ticks = child.start_ticks();
    let ask = |answer: &str| {
        let line = format!(
            "{} restart {}",
            env!("CARGO_BIN_EXE_relwatch"),
            root.path().display()
        );
        // `timeout` ends it (by its own pid) should it ever wait for an answer that never comes.
        let mut script = std::process::Command::new("timeout")
            .args(["60", "script", "-q", "-e", "-c", &line, "/dev/null"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("script (util-linux)");
        use std::io::Write;
        let mut stdin = script.stdin.take().expect("stdin");
        stdin.write_all(answer.as_bytes()).expect("type the answer");
        drop(stdin);
        let out = script.wait_with_output().expect("script ends");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, out) = ask("n\n");
    assert_eq!(code, Some(3), "{out}");
    assert!(out.contains("[y/N]") && out.contains("declined"), "{out}");
    assert!(alive(child.pid(), ticks), "{out}");
    let (code, out) = ask("y\n");
    assert_eq!(code, Some(1), "ended, nothing starts it again\n{out}");
    assert!(!alive(child.pid(), ticks), "{out}");
}

// ---------------------------------------------------------------------------------------------
// PM2
// ---------------------------------------------------------------------------------------------

/// A node app that says when it has loaded (a file `loaded` in its cwd), then idles.
const APP_JS: &str = "require('fs').writeFileSync('loaded', '');\nsetInterval(() => {}, 1000);\n";

/// The `pm2` relwatch runs: the one on the system's PATH (scripts/test-deps installs it with
/// `npm install -g pm2@5`), since actions run with a clean PATH.
fn system_pm2() -> Option<std::path::PathBuf> {
    if !is_root() {
        skip("relwatch must read every process and drive root's PM2: run the tests as root");
        return None;
    }
    let found = ["/usr/local/bin/pm2", "/usr/bin/pm2"]
        .into_iter()
        .map(std::path::PathBuf::from)
        .find(|p| p.exists());
    if found.is_none() {
        skip("pm2 is not on the system PATH: scripts/test-deps installs it (npm install -g pm2@5)");
    }
    found
}

/// A node app under a real PM2, started the usual way from `current` (release 1), then a
/// deploy (atomic rename): while release 2 lacks the script, the action is skipped and the app
/// left running; with it, after a cleanup that deletes release 1, `--dry-run` changes nothing
/// and `restart --yes` confirms it with `pm2 jlist` (with the PM2_HOME of the rpc.sock the
/// kernel shows the God daemon holding), registers it again from current in one action of
/// three steps, converges, exit 0; the next check is OK and PM2 runs the app from current.
#[test]
fn a_pm2_app_on_a_deleted_release_is_registered_again() {
    pm2_app_registered_again(None);
}

/// The same with the God daemon and the app of a local user (uid [`USER`]): every `pm2` runs
/// as that uid, with the daemon's PM2_HOME.
#[test]
fn a_users_pm2_app_is_registered_again_as_that_user() {
    pm2_app_registered_again(Some(USER));
}

fn pm2_app_registered_again(user: Option<u32>) {
    let Some(pm2) = system_pm2() else {
        return;
    };
    let root = DeployRoot::new();
    root.write("releases/1/server.js", APP_JS);
    root.release("2");
    root.switch("1");
    let home = root.tmp().join("pm2home");
    std::fs::create_dir(&home).unwrap();
    let mut pm2 = util::pm2::Pm2Home::new(pm2, home, std::env::var_os("PATH").unwrap_or_default());
    if let Some(uid) = user {
        // The user's daemon writes its home, and the app `loaded` in its release.
        std::fs::set_permissions(root.tmp(), std::fs::Permissions::from_mode(0o755)).unwrap();
        for dir in [
            pm2.home.clone(),
            root.release_path("1"),
            root.release_path("2"),
        ] {
            std::os::unix::fs::chown(&dir, Some(uid), Some(uid)).unwrap();
        }
        pm2 = pm2.with_uid(uid);
    }
    pm2.start_from("server.js", "api", &root.current());
    let god = pm2.god().expect("the God daemon's pid file");
    let old = poll("the app running release 1", || {
        children_of(god).into_iter().find(|&p| {
            std::fs::read_link(format!("/proc/{p}/cwd"))
                .is_ok_and(|cwd| cwd == root.release_path("1"))
        })
    });
    // Once the app has written `loaded`, node has read server.js: the cleanup cannot fail it.
    poll("node to load the app", || {
        root.release_path("1").join("loaded").exists().then_some(())
    });
    let ticks = start_ticks(old);
    // A release without the script: `pm2 delete` would take the app down and `pm2 start` fail,
    // so nothing runs.
    root.write("releases/2/README", "");
    root.switch("2");
    let missing = relwatch_restart(&root, &["--yes", "--timeout", "10s"]);
    assert_eq!(missing.code, 1, "{missing}");
    assert!(
        missing
            .stderr
            .contains("server.js is no file, so pm2 start would fail"),
        "{missing}"
    );
    assert!(alive(old, ticks), "the app was left alone\n{missing}");
    root.write("releases/2/server.js", APP_JS);
    root.delete("1");
    let dry = relwatch_restart(&root, &["--dry-run"]);
    assert_eq!(dry.code, 0, "{dry}");
    assert!(dry.stderr.contains("pm2 save: confirmed"), "{dry}");
    assert!(alive(old, ticks), "a dry run changes nothing\n{dry}");
    let run = relwatch_restart(&root, &["--yes", "--timeout", "60s", "--format", "json"]);
    assert_eq!(run.code, 0, "{run}");
    let doc = run.json();
    let actions = array(&doc, "actions");
    assert_eq!(actions.len(), 1, "one action for the app\n{run}");
    assert_eq!(actions[0]["state"], "replaced", "{run}");
    assert_eq!(array(&actions[0], "steps").len(), 3, "{run}");
    assert_eq!(actions[0]["command"]["as"], user.unwrap_or(0), "{run}");
    let current = root.current().display().to_string();
    let start = format!("pm2 start {current}/server.js --name api --cwd {current}");
    assert!(run.stderr.contains("pm2 delete api && "), "{run}");
    assert!(run.stderr.contains(&start), "{run}");
    assert!(
        run.stderr
            .contains(" && pm2 save: confirmed (God daemon pid"),
        "{run}"
    );
    assert!(!alive(old, ticks), "the old app ended\n{run}");
    let check = relwatch(["check".as_ref(), root.path().as_os_str()]);
    assert_eq!(check.code, 0, "the next check is OK\n{check}");
    let new = children_of(god);
    assert!(
        new.iter()
            .any(|p| std::fs::read_link(format!("/proc/{p}/cwd"))
                .is_ok_and(|cwd| cwd == root.release_path("2"))),
        "PM2 runs the app from current (release 2) again: {new:?}\n{run}"
    );
}

/// A local user's process titled like a PM2 God daemon (`PM2 v5.4.3: God Daemon (HOME)`) above
/// their worker with PM2's `name`, `pm_id` and `pm_exec_path`, on an old release: the remedy
/// registers the app again as that user, but the "daemon" holds no rpc.sock, so its PM2_HOME
/// cannot be known safely (its title does not count) and the action is skipped before anything
/// runs; nothing ends.
#[test]
fn a_forged_pm2_is_refused() {
    if !is_root() {
        skip("a forged owner needs root (to run processes as another uid)");
        return;
    }
    let action = forged_owner_is_skipped(
        "PM2 v5.4.3: God Daemon (/tmp)",
        &[
            ("name", "api".into()),
            ("pm_id", "0".into()),
            ("pm_exec_path", "RELEASE/server.js".into()),
        ],
    );
    assert_eq!(array(&action, "steps").len(), 3, "{action:#}");
    assert!(
        action["detail"]
            .as_str()
            .is_some_and(|d| d.contains("cannot be known safely")),
        "{action:#}"
    );
}

// ---------------------------------------------------------------------------------------------
// uWSGI, unsupervised
// ---------------------------------------------------------------------------------------------

/// An unsupervised uWSGI master and two workers started from current (release 1), then a
/// deploy and a cleanup: one action, INT to the master (uWSGI's graceful stop; TERM would
/// reload it onto the deleted directory), never TERM; the whole tree ends; the outcome says to
/// start it again from current; exit 1; and the next check finds nothing on the deleted release.
#[test]
fn an_unsupervised_uwsgi_is_ended_with_int() {
    if !std::path::Path::new("/usr/bin/uwsgi").exists() {
        skip("uWSGI is not installed: apt-get install uwsgi-core uwsgi-plugin-python3 (scripts/test-deps)");
        return;
    }
    let root = DeployRoot::new();
    root.write(
        "releases/1/app.py",
        "def application(environ, start_response):\n    start_response('200 OK', [])\n    return [b'1']\n",
    );
    root.switch("1");
    let master = Child::spawn(
        Command::new("/usr/bin/uwsgi")
            .args(["--plugin", "python3", "--master", "--processes", "2"])
            .args(["--wsgi-file", "app.py", "--socket"])
            .arg(root.tmp().join("uwsgi.sock"))
            .args(["--worker-reload-mercy", "5", "--logto"])
            .arg(root.tmp().join("uwsgi.log"))
            .env_remove("PWD")
            .current_dir(root.current()),
    );
    let workers = master.wait_for_children(2, "uwsgi");
    let ticks = master.start_ticks();
    let worker_ticks: Vec<u64> = workers.iter().map(|&w| start_ticks(w)).collect();
    wait_started_before_now(master.pid());
    root.write("releases/2/app.py", "");
    root.switch("2");
    root.delete("1");
    let run = one_master_ended(&root, master.pid(), &workers);
    let argv = format!("kill -INT {}", master.pid());
    assert!(run.stderr.contains(&format!("{argv}: confirmed")), "{run}");
    assert!(!run.stderr.contains("-TERM"), "never TERM to uWSGI\n{run}");
    assert!(!alive(master.pid(), ticks), "the master ended\n{run}");
    poll("uWSGI's workers to end with their master", || {
        (!workers
            .iter()
            .zip(&worker_ticks)
            .any(|(&w, &t)| alive(w, t)))
        .then_some(())
    });
    let (check, report) = check_json([root.path()]);
    assert!(
        findings_of(&report, "deleted-release").is_empty(),
        "nothing on the deleted release\n{check}"
    );
}

// ---------------------------------------------------------------------------------------------
// A home-grown master whose workers outlive it
// ---------------------------------------------------------------------------------------------

/// A `sh` master with two forked `sleep` workers, started in release 1, then a deploy and a
/// cleanup. `sh` does not end its workers, so the remedy signals the whole tree: one action,
/// `kill -TERM MASTER W1 W2`.
fn home_grown_on_a_deleted_release() -> (DeployRoot, Child, Vec<(i32, u64)>) {
    let root = DeployRoot::new();
    root.release("1");
    root.switch("1");
    let master = Child::master_with_workers(root.current(), 2);
    let tree: Vec<(i32, u64)> = std::iter::once(master.pid())
        .chain(master.wait_for_children(2, "sleep"))
        .map(|p| (p, start_ticks(p)))
        .collect();
    wait_started_before_now(master.pid());
    root.release("2");
    root.switch("2");
    root.delete("1");
    (root, master, tree)
}

/// `kill -TERM MASTER W1 W2`: master first, then the workers.
fn kill_line(tree: &[(i32, u64)]) -> String {
    let pids: Vec<String> = tree.iter().map(|(p, _)| p.to_string()).collect();
    format!("kill -TERM {}", pids.join(" "))
}

#[test]
fn a_master_whose_workers_outlive_it_is_one_action_over_its_tree() {
    let (root, master, tree) = home_grown_on_a_deleted_release();
    let kill = kill_line(&tree);
    let dry = relwatch_restart(&root, &["--dry-run", "--format", "json"]);
    assert_eq!(dry.code, 0, "{dry}");
    let actions = array(&dry.json(), "actions").to_vec();
    assert_eq!(actions.len(), 1, "one action for the tree\n{dry}");
    assert_eq!(actions[0]["state"], "confirmed", "{dry}");
    assert!(dry.stderr.contains(&format!("{kill}: confirmed")), "{dry}");
    for &(pid, ticks) in &tree {
        assert!(alive(pid, ticks), "a dry run ended pid {pid}\n{dry}");
    }
    let run = one_master_ended(
        &root,
        master.pid(),
        &tree[1..].iter().map(|t| t.0).collect::<Vec<_>>(),
    );
    assert!(run.stderr.contains(&format!("{kill}: done")), "{run}");
    for &(pid, ticks) in &tree {
        poll(&format!("pid {pid} to end"), || {
            (!alive(pid, ticks)).then_some(())
        });
    }
    let (check, report) = check_json([root.path()]);
    for &(pid, _) in &tree {
        assert!(
            !array(&report, "findings")
                .iter()
                .any(|f| pids(f).contains(&i64::from(pid))),
            "no finding for pid {pid}\n{check}"
        );
    }
}

/// A worker that ends between the scan and the action (while the run asks on a terminal) is
/// not signalled, and the action says so; the master and the other worker are. (A pid reused
/// in that window is the same check, a start time that differs: the unit tests of
/// `signal_each` cover it, since no test can make the kernel reuse a pid on demand.)
#[test]
fn a_worker_gone_before_the_action_is_not_signalled() {
    use std::io::{Read, Write};
    let (root, _master, tree) = home_grown_on_a_deleted_release();
    let line = format!(
        "{} restart {} --timeout 30s",
        env!("CARGO_BIN_EXE_relwatch"),
        root.path().display()
    );
    // `timeout` ends it (by its own pid) should it ever wait for an answer that never comes.
    let mut script = Command::new("timeout")
        .args(["60", "script", "-q", "-e", "-c", &line, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("script (util-linux)");
    let mut stdout = script.stdout.take().expect("stdout");
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&out).contains("[y/N]") {
        let n = stdout.read(&mut buf).expect("read the plan");
        assert!(n > 0, "no question\n{}", String::from_utf8_lossy(&out));
        out.extend_from_slice(&buf[..n]);
    }
    let (gone, _) = tree[2];
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(gone),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("end the second worker");
    poll("the shell to reap its worker", || {
        (!std::path::Path::new(&format!("/proc/{gone}")).exists()).then_some(())
    });
    let mut stdin = script.stdin.take().expect("stdin");
    stdin.write_all(b"y\n").expect("type the answer");
    drop(stdin);
    stdout.read_to_end(&mut out).expect("read the run");
    let status = script.wait().expect("script ends");
    let out = String::from_utf8_lossy(&out).into_owned();
    assert_eq!(status.code(), Some(1), "{out}");
    let sent = format!("signal sent to pids {}, {}", tree[0].0, tree[1].0);
    assert!(out.contains(&sent), "{out}");
    assert!(
        out.contains(&format!("not signalled: pid {gone} is gone")),
        "{out}"
    );
    for &(pid, ticks) in &tree[..2] {
        poll(&format!("pid {pid} to end"), || {
            (!alive(pid, ticks)).then_some(())
        });
    }
}

/// `--deep` reaches restart's own scan: a process of a uid that runs nothing of the app, whose
/// only hold on release 1 is an open file, is read (and planned) only with it.
#[test]
fn restart_honours_deep() {
    let root = DeployRoot::new();
    std::fs::set_permissions(root.tmp(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let r1 = root.release("1");
    let log = r1.join("app.log");
    std::fs::write(&log, "").unwrap();
    root.switch("1");
    let holder = Child::spawn(
        Command::new("setpriv")
            .args([
                format!("--reuid={USER}"),
                format!("--regid={USER}"),
                "--clear-groups".into(),
            ])
            .args(["bash", "-c", r#"exec 3<"$0"; exec sleep 1000"#])
            .arg(&log)
            .current_dir("/"),
    );
    poll("the holder to open the log", || {
        let fds = std::fs::read_dir(format!("/proc/{}/fd", holder.pid())).ok()?;
        fds.flatten()
            .any(|e| std::fs::read_link(e.path()).is_ok_and(|t| t == log))
            .then_some(())
    });
    root.release("2");
    root.switch("2");
    let pids = |args: &[&str]| -> Vec<i64> {
        let run = relwatch_restart(&root, args);
        array(&run.json(), "actions")
            .iter()
            .flat_map(|a| {
                array(a, "pids")
                    .iter()
                    .filter_map(|p| p.as_i64())
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    assert!(pids(&["--dry-run", "--format", "json"]).is_empty());
    assert_eq!(
        pids(&["--dry-run", "--deep", "--format", "json"]),
        [i64::from(holder.pid())]
    );
}
