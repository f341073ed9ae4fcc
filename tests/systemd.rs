//! The seed incident under a real systemd: a unit whose `WorkingDirectory=` goes through
//! `current`, a queue master that restarts only its workers on a signal, six deploys with a
//! keep-5 cleanup. systemd 252 runs as PID 1 of a `systemd-nspawn` container (see
//! tests/util/systemd.rs); relwatch runs inside it. Needs root and `systemd-container` + `dbus`
//! (scripts/test-deps); under CI a host that cannot boot the container fails these tests.

mod util;

use std::collections::BTreeSet;

use util::systemd::Container;
use util::*;

const UNIT: &str = "shop-queue.service";

/// `systemctl` for the system's service manager.
const SYSTEM: &[&str] = &["systemctl"];

/// `systemctl` for the service manager of the user `deploy`, as root.
const DEPLOY_USER: &[&str] = &["systemctl", "--user", "-M", "deploy@"];

/// A queue master: forks two workers, and on SIGUSR2 or SIGHUP ends them and forks new ones
/// (which inherit its working directory: the release it was started in). It never re-executes
/// itself, like many queue masters.
const QUEUE: &str = r#"import os, signal, time

restart = False

def on_signal(signum, frame):
    global restart
    restart = True

def worker():
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGUSR2, signal.SIG_DFL)
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
        while True:
            time.sleep(1000)
    return pid

signal.signal(signal.SIGUSR2, on_signal)
signal.signal(signal.SIGHUP, on_signal)
workers = [worker(), worker()]
while True:
    signal.pause()
    if restart:
        restart = False
        for pid in workers:
            os.kill(pid, signal.SIGTERM)
            os.waitpid(pid, 0)
        workers = [worker(), worker()]
"#;

/// The deploy root `/srv/app` of the container (a temporary directory of the host bound at
/// `/srv`) and the container, with release 1 current and `shop-queue.service` started in it.
fn shop(service: &str) -> Option<(DeployRoot, Container)> {
    let root = DeployRoot::named("app");
    deploy(&root, 1);
    let container = Container::boot(&[(&root.tmp(), "/srv")])?;
    container.start_unit(
        UNIT,
        &format!(
            "[Unit]\nDescription=shop queue\n\n[Service]\nWorkingDirectory=/srv/app/current\n\
             ExecStart=/usr/bin/python3 -u queue.py\nExecReload=/bin/kill -HUP $MAINPID\n{service}"
        ),
    );
    Some((root, container))
}

/// Deploy `n`: a new release directory, `current` switched to it by rename, then the cleanup
/// that keeps the five newest releases.
fn deploy(root: &DeployRoot, n: u32) {
    root.write(format!("releases/{n}/queue.py"), QUEUE);
    root.switch(n.to_string());
    let mut releases: Vec<u32> = std::fs::read_dir(root.releases_dir())
        .expect("list releases/")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    releases.sort_unstable();
    while releases.len() > 5 {
        root.delete(releases.remove(0).to_string());
    }
}

/// Polls until the master of [`UNIT`] of the service manager `systemctl` talks to has two
/// workers, none of them in `old`; returns the master and its workers (container pids).
fn workers(
    systemctl: &[&str],
    container: &mut Container,
    old: &BTreeSet<i32>,
) -> (i32, BTreeSet<i32>) {
    container.poll("the queue master and two new workers", |c| {
        let master = c.main_pid(systemctl, UNIT);
        let workers: BTreeSet<i32> = c.children(master).into_iter().collect();
        (master > 0 && workers.len() == 2 && workers.is_disjoint(old)).then_some((master, workers))
    })
}

/// Six deploys, each signalling the master to restart its workers (`systemctl kill` of its
/// main process): they come back in the master's working directory, release 1, which the
/// fifth deploy's cleanup deletes. Returns the master and its workers.
fn six_deploys(
    systemctl: &[&str],
    root: &DeployRoot,
    container: &mut Container,
) -> (i32, BTreeSet<i32>) {
    let (master, mut current) = workers(systemctl, container, &BTreeSet::new());
    for n in 2..=7 {
        deploy(root, n);
        let mut kill = systemctl.to_vec();
        kill.extend(["kill", "--kill-who=main", "--signal=USR2", UNIT]);
        container.ok(kill);
        (_, current) = workers(systemctl, container, &current);
    }
    assert!(!root.release_path("1").exists() && !root.release_path("2").exists());
    (master, current)
}

/// `relwatch check --format json --grace 0s /srv/app` inside the container, parsed, with the
/// exit code checked against the document; never a `reload` anywhere in it.
fn check(container: &Container) -> (Run, Report) {
    let run = container.relwatch(["check", "--format", "json", "--grace", "0s", "/srv/app"]);
    let report = run.report();
    assert_eq!(report.exit_code, run.code, "exit code vs document\n{run}");
    assert!(
        !run.stdout.contains("reload"),
        "relwatch suggested a reload, which does not move a master off its release\n{run}"
    );
    (run, report)
}

/// The one finding: `deleted-release` CRITICAL for the master and `workers`, owned by `owner`,
/// whose remedy says `fix` and whose one fix command is `fix`, as root. Returns the fix's argv.
fn assert_seed_incident(
    (run, report): (&Run, &Report),
    master: i32,
    workers: &BTreeSet<i32>,
    owner: &str,
    fix: &[&str],
) -> Vec<Vec<u8>> {
    assert_eq!(report.status, Status::Critical, "{run}");
    assert_eq!(report.findings.len(), 1, "one finding\n{run}");
    let f = &report.findings[0];
    assert_eq!(f.kind, Kind::DeletedRelease, "{run}");
    assert_eq!(f.severity, Severity::Critical, "{run}");
    assert_eq!(f.master, Some(master), "the master is named\n{run}");
    let pids: BTreeSet<i32> = f.pids.iter().copied().collect();
    let expected: BTreeSet<i32> = workers.iter().copied().chain([master]).collect();
    assert_eq!(pids, expected, "the master and its workers\n{run}");
    assert_eq!(f.owner.as_deref(), Some(owner), "{run}");
    assert!(f.remedy.contains(&fix.join(" ")), "{run}");
    assert_eq!(f.fix.len(), 1, "one command\n{run}");
    assert_eq!(f.fix[0].as_uid, 0, "as root\n{run}");
    let argv: Vec<Vec<u8>> = f.fix[0].argv.iter().map(|a| a.to_bytes()).collect();
    let expected: Vec<Vec<u8>> = fix.iter().map(b).collect();
    assert_eq!(argv, expected, "{run}");
    argv
}

#[test]
fn seed_incident_under_a_real_unit_is_named_and_fixed_by_its_restart() {
    let Some((root, mut container)) = shop("") else {
        return;
    };
    let (first_master, mut current) = six_deploys(SYSTEM, &root, &mut container);
    let owner = "systemd unit shop-queue.service";
    let restart = ["systemctl", "restart", UNIT];
    let (run, report) = check(&container);
    let fix = assert_seed_incident((&run, &report), first_master, &current, owner, &restart);
    let text = container.relwatch(["check", "--grace", "0s", "/srv/app"]);
    assert_eq!(text.code, 2, "{text}");
    assert!(
        text.stdout
            .contains("owner: systemd unit shop-queue.service"),
        "{text}"
    );
    assert!(
        text.stdout
            .contains("fix: systemctl restart shop-queue.service"),
        "{text}"
    );

    // A reload (ExecReload= sends HUP) restarts the workers only: still the deleted release.
    container.ok(["systemctl", "reload", UNIT]);
    (_, current) = workers(SYSTEM, &mut container, &current);
    let (run, report) = check(&container);
    assert_seed_incident((&run, &report), first_master, &current, owner, &restart);

    // Exactly the printed fix, as its argv (no shell): the next check is OK.
    let argv: Vec<std::ffi::OsString> = fix.iter().map(|a| os(a)).collect();
    container.ok(argv);
    let (master, _) = workers(SYSTEM, &mut container, &current);
    assert_ne!(master, first_master, "the restart started a new master");
    let (run, report) = check(&container);
    assert_eq!((run.code, report.status), (0, Status::Ok), "{run}");
    assert!(report.findings.is_empty(), "{run}");
}

/// `shop-queue.service` with `KillMode=process`, restarted after a deploy to release 2: systemd
/// ends the master only, and its two workers stay behind on release 1. Returns the deploy root,
/// the container and the left-over workers (container pids).
fn left_over_workers() -> Option<(DeployRoot, Container, BTreeSet<i32>)> {
    let (root, mut container) = shop("KillMode=process\n")?;
    let (first_master, old) = workers(SYSTEM, &mut container, &BTreeSet::new());
    deploy(&root, 2);
    container.ok(["systemctl", "restart", UNIT]);
    let (master, _) = workers(SYSTEM, &mut container, &old);
    assert_ne!(master, first_master, "the restart started a new master");
    for &pid in &old {
        let alive = container.run(["kill", "-0", &pid.to_string()]);
        assert_eq!(
            alive.code, 0,
            "worker {pid} of the old master survived\n{alive}"
        );
    }
    Some((root, container, old))
}

/// The findings about `pid`.
fn findings_about(report: &Report, pid: i32) -> Vec<&Finding> {
    report
        .findings
        .iter()
        .filter(|f| f.pids.contains(&pid))
        .collect()
}

#[test]
fn kill_mode_process_left_overs_are_reported_and_their_kill_fix_clears_them() {
    let Some((_root, mut container, old)) = left_over_workers() else {
        return;
    };
    let (run, report) = check(&container);
    assert_eq!(report.status, Status::Warning, "{run}");
    let mut fixes = Vec::new();
    for &pid in &old {
        let about = findings_about(&report, pid);
        let kinds: BTreeSet<String> = about.iter().map(|f| format!("{:?}", f.kind)).collect();
        assert!(
            kinds.contains("OldRelease") && kinds.contains("Orphan"),
            "{pid}: {kinds:?}\n{run}"
        );
        for f in &about {
            assert_eq!(
                f.owner.as_deref(),
                Some("systemd unit shop-queue.service"),
                "{run}"
            );
            assert!(
                f.release.as_ref().is_some_and(|r| r.to_bytes() == b("1")),
                "{run}"
            );
        }
        let orphan = about
            .iter()
            .find(|f| f.kind == Kind::Orphan)
            .expect("an orphan finding");
        assert_eq!(orphan.fix.len(), 1, "{run}");
        let argv: Vec<Vec<u8>> = orphan.fix[0].argv.iter().map(|a| a.to_bytes()).collect();
        assert_eq!(argv, [b("kill"), b("-TERM"), b(pid.to_string())], "{run}");
        fixes.push(argv);
    }
    for argv in fixes {
        container.ok(argv.iter().map(|a| os(a)));
    }
    container.poll("the left-over workers to exit", |c| {
        old.iter()
            .all(|pid| c.run(["kill", "-0", &pid.to_string()]).code != 0)
            .then_some(())
    });
    let (run, report) = check(&container);
    assert_eq!((run.code, report.status), (0, Status::Ok), "{run}");
}

#[test]
fn kill_mode_process_left_overs_old_release_fix_clears_them() {
    let Some((_root, container, old)) = left_over_workers() else {
        return;
    };
    let (run, report) = check(&container);
    for &pid in &old {
        let about = findings_about(&report, pid);
        let f = about
            .iter()
            .find(|f| f.kind == Kind::OldRelease)
            .unwrap_or_else(|| panic!("no old-release finding for {pid}\n{run}"));
        for cmd in &f.fix {
            container.ok(cmd.argv.iter().map(|a| os(&a.to_bytes())));
        }
    }
    let (run, report) = check(&container);
    assert!(
        old.iter()
            .all(|&pid| findings_about(&report, pid).is_empty()),
        "running the old-release fix left the left-overs in place\n{run}"
    );
}

/// A deploy user `deploy` in the container, lingering (its `user@UID.service` runs), running
/// `shop-queue.service` as a user unit on release 1 of `/srv/app`. Returns the root, the
/// container and the user's uid.
fn shop_of_deploy_user() -> Option<(DeployRoot, Container, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let root = DeployRoot::named("app");
    deploy(&root, 1);
    // The deploy user reads its code through the bound temporary directory.
    std::fs::set_permissions(root.tmp(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod the temporary directory");
    let mut container = Container::boot(&[(&root.tmp(), "/srv")])?;
    container.ok(["useradd", "--create-home", "--shell", "/bin/sh", "deploy"]);
    let uid: u32 = container
        .ok(["id", "-u", "deploy"])
        .trim()
        .parse()
        .expect("a uid from id -u");
    container.write(
        "/etc/systemd/user/shop-queue.service",
        "[Unit]\nDescription=shop queue\n\n[Service]\nWorkingDirectory=/srv/app/current\n\
         ExecStart=/usr/bin/python3 -u queue.py\n",
    );
    container.ok(["loginctl", "enable-linger", "deploy"]);
    let manager = format!("user@{uid}.service");
    container.poll("the deploy user's service manager", |c| {
        let run = c.run(["systemctl", "is-active", &manager]);
        match run.stdout.trim() {
            "active" => Some(()),
            "failed" => panic!("{manager} failed\n{run}\n{}", c.console()),
            _ => None,
        }
    });
    let mut start = DEPLOY_USER.to_vec();
    start.extend(["start", UNIT]);
    container.ok(start);
    Some((root, container, uid))
}

#[test]
fn seed_incident_under_a_user_unit_names_it_and_its_remedy_restarts_it() {
    let Some((root, mut container, uid)) = shop_of_deploy_user() else {
        return;
    };
    let (master, current) = six_deploys(DEPLOY_USER, &root, &mut container);
    let (run, report) = check(&container);
    let owner = format!("systemd user unit shop-queue.service of uid {uid}");
    let restart = [DEPLOY_USER, &["restart", UNIT]].concat();
    let fix = assert_seed_incident((&run, &report), master, &current, &owner, &restart);

    container.ok(fix.iter().map(|a| os(a)));
    let (new_master, _) = workers(DEPLOY_USER, &mut container, &current);
    assert_ne!(new_master, master, "the restart started a new master");
    let (run, report) = check(&container);
    assert_eq!((run.code, report.status), (0, Status::Ok), "{run}");
}

/// The agent as the package ships it (systemd/relwatch-agent.service, hardening and all), run
/// by a real systemd: it may open the kernel's process events (which need CAP_NET_ADMIN,
/// AF_NETLINK and the host's network namespace; only the container's pid namespace stops
/// them here) and writes the textfile naming the seed incident.
#[test]
fn the_shipped_agent_unit_may_open_process_events_and_writes_the_textfile() {
    let Some((root, mut container)) = shop("") else {
        return;
    };
    six_deploys(SYSTEM, &root, &mut container);
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/systemd/relwatch-agent.service"
    ))
    .unwrap()
    .replace("/usr/bin/relwatch", util::systemd::RELWATCH);
    container.ok(["mkdir", "-p", "/var/lib/prometheus/node-exporter"]);
    container.start_unit("relwatch-agent.service", &unit);
    let journal = |c: &mut Container| {
        c.run([
            "journalctl",
            "-u",
            "relwatch-agent.service",
            "--no-pager",
            "-o",
            "cat",
        ])
        .stdout
    };
    let heard = container.poll("the agent to say whether it hears process events", |c| {
        let log = journal(c);
        (log.contains("listening to process events") || log.contains("process events unavailable"))
            .then_some(log)
    });
    // In the container's own pid namespace the kernel takes no subscription (on a host it
    // does): the socket opened, joined the group and subscribed, so the unit grants what the
    // events need, and the agent says the namespace, not a capability, stops them.
    assert!(
        heard.contains("process events unavailable (in a pid namespace other than the host's"),
        "the shipped agent unit is refused process events for another reason:\n{heard}"
    );
    let textfile = "/var/lib/prometheus/node-exporter/relwatch.prom";
    let prom = container.poll("the agent's textfile to name the deleted release", |c| {
        std::fs::read_to_string(c.host_path(textfile))
            .ok()
            .filter(|t| {
                t.lines().any(|l| {
                    l.starts_with("relwatch_findings{")
                        && l.contains("kind=\"deleted-release\"")
                        && l.ends_with(" 1")
                })
            })
    });
    assert!(prom.contains("relwatch_exit_code 2"), "{prom}");
    // The unit's ceilings hold for the running agent.
    let agent = container.main_pid(SYSTEM, "relwatch-agent.service");
    let limits = std::fs::read_to_string(container.host_path(&format!("/proc/{agent}/limits")))
        .expect("the agent's limits");
    let files = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .unwrap_or_default();
    assert_eq!(files.get(3..5), Some(&["8192", "8192"][..]), "{limits}");
    let show = container.ok([
        "systemctl",
        "show",
        "--property=MemoryMax,TasksMax",
        "relwatch-agent.service",
    ]);
    assert!(
        show.contains("MemoryMax=268435456") && show.contains("TasksMax=64"),
        "{show}"
    );
}

/// The seed master: one worker that needs its release's code (`queue.py`) and exits 255 when it
/// cannot open it; on SIGUSR2 the worker is ended; whenever it ends, the master forks another
/// 0.1 s later. Once its release is deleted, every worker dies within milliseconds of its fork.
const DYING: &str = r#"import os, signal, time

def worker():
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGUSR2, signal.SIG_DFL)
        try:
            open("queue.py").close()
        except OSError:
            os._exit(255)
        while True:
            time.sleep(1000)
    return pid

w = worker()

def on_usr2(signum, frame):
    os.kill(w, signal.SIGTERM)

signal.signal(signal.SIGUSR2, on_usr2)
while True:
    os.waitpid(w, 0)
    time.sleep(0.1)
    w = worker()
"#;

/// `relwatch watch /srv/app --interval 1h` as it runs on a host whose PID 1 is the container's
/// systemd: in the container's mount, cgroup and root, but in the host's pid namespace (the
/// kernel sends process events only there, numbered as it numbers them) with a /proc of that
/// namespace mounted in a private copy of the container's mounts. Its log goes to `log`, a path
/// inside the container. Ended, by its pid, when the returned guard drops.
fn agent_as_on_the_host(container: &Container, log: &str) -> Child {
    let script = format!(
        "mount -t proc proc /proc && exec {} watch /srv/app --interval 1h 2>{log}",
        util::systemd::RELWATCH
    );
    let init = container.init_pid().to_string();
    Child::spawn(std::process::Command::new("nsenter").args([
        "-t",
        &init,
        "-m",
        "-C",
        "-r",
        "-w",
        "unshare",
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        &script,
    ]))
}

/// The seed incident as it happens: the master of a real unit stays on release 1, which a
/// deploy deletes; the next worker restart makes every worker die at its fork. `relwatch watch`
/// (an hour between full rescans, so what it says comes from process events) names the master,
/// its unit, the release and the exit code within a few dozen deaths (10 a second: about 5 s).
#[test]
fn the_seed_masters_dying_workers_are_named_by_watch_with_their_unit() {
    let root = DeployRoot::named("app");
    root.write("releases/1/queue.py", DYING);
    root.switch("1");
    let Some(mut container) = Container::boot(&[(&root.tmp(), "/srv")]) else {
        return;
    };
    container.start_unit(
        UNIT,
        "[Unit]\nDescription=shop queue\n\n[Service]\nWorkingDirectory=/srv/app/current\n\
         ExecStart=/usr/bin/python3 -u queue.py\n",
    );
    container.poll("the master and its worker", |c| {
        let master = c.main_pid(SYSTEM, UNIT);
        (master > 0 && c.children(master).len() == 1).then_some(())
    });
    let _agent = agent_as_on_the_host(&container, "/srv/watch.log");
    let journal = root.tmp().join("watch.log");
    let read = || std::fs::read_to_string(&journal).unwrap_or_default();
    let heard = container.poll("the agent to start", |_| {
        Some(read()).filter(|l| l.contains("process events"))
    });
    assert!(heard.contains("listening to process events"), "{heard}");
    root.write("releases/2/queue.py", DYING);
    root.switch("2");
    root.delete("1");
    container.ok([
        "systemctl",
        "kill",
        "--kill-who=main",
        "--signal=USR2",
        UNIT,
    ]);
    let storm = std::time::Instant::now();
    // Past 30 s the log is returned as it is: the assertions below show what it said.
    let log = container.poll("the dying workers to be named", |_| {
        Some(read())
            .filter(|l| l.contains("CRITICAL restart-loop") || storm.elapsed().as_secs() > 30)
    });
    let took = storm.elapsed();
    let line = log
        .lines()
        .find(|l| l.contains("CRITICAL restart-loop"))
        .unwrap_or_default();
    assert!(
        line.contains("on deleted release 1 under systemd unit shop-queue.service"),
        "{log}"
    );
    // "all with exit 255", or with the first worker, killed young by the signal, beside them.
    assert!(line.contains("exit 255"), "{log}");
    let died: usize = line
        .split(" workers forked and died")
        .next()
        .and_then(|before| before.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count of dead workers: {log}"));
    // 10 deaths a second: 50 is 5 s of storm; the clock is only reported, load slows both.
    assert!(died <= 50, "named after {died} deaths ({took:?}): {log}");
    eprintln!("named after {died} deaths, {took:?}: {line}");
}
