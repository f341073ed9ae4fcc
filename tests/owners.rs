//! Who owns each process, and what to restart: real cgroups (v2 and the v1 `name=systemd`
//! hierarchy), a real supervisord, zombies and orphans. Tests that need root or a package say
//! why they skip or fail.

mod util;

use std::process::Command;
use util::*;

fn unique(tag: &str) -> String {
    format!("relwatch-test-{tag}-{}", std::process::id())
}

/// A worker on an old release inside `rel` of the given hierarchy; returns the finding.
fn old_worker_in_cgroup(v2: bool, rel: &str) -> Option<(serde_json::Value, serde_json::Value)> {
    let _lock = cgroup_lock();
    let cg = Cgroup::create(v2, rel)?;
    let (_root, worker, run, doc) = cg.old_worker();
    assert_eq!(
        run.code, 1,
        "an old release after grace is a warning\n{run}"
    );
    let f = findings_of(&doc, "old-release");
    assert_eq!(f.len(), 1, "{run}");
    let finding = f[0].clone();
    let proc_ = process(&doc, worker.pid()).expect("worker listed").clone();
    drop(worker);
    drop(cg);
    Some((finding, proc_))
}

#[test]
fn systemd_service_on_cgroup_v2_is_restarted_with_systemctl() {
    let unit = format!("{}.service", unique("v2"));
    let Some((f, p)) = old_worker_in_cgroup(true, &format!("system.slice/{unit}")) else {
        return;
    };
    assert_eq!(p["owner"]["kind"], "systemd", "{p}");
    assert_eq!(p["owner"]["unit"], unit.as_str(), "{p}");
    assert_eq!(
        f["remedy"].as_str().unwrap(),
        format!("systemctl restart {unit}"),
        "restart, never reload: {f}"
    );
    assert!(f["owner"].as_str().unwrap().contains(&unit), "{f}");
}

#[test]
fn systemd_service_on_the_v1_name_systemd_hierarchy() {
    let unit = format!("{}.service", unique("v1"));
    let Some((f, p)) = old_worker_in_cgroup(false, &format!("system.slice/{unit}")) else {
        return;
    };
    assert_eq!(p["owner"]["unit"], unit.as_str(), "{p}");
    assert_eq!(
        f["remedy"].as_str().unwrap(),
        format!("systemctl restart {unit}")
    );
}

/// Many owners at once come from one walk of the cgroup tree (`cgroup.procs` of each
/// directory) instead of a read of every `/proc/PID/cgroup`, and say exactly what those say.
#[test]
fn many_owners_come_from_one_walk_of_the_cgroup_tree() {
    use relwatch::snapshot::linux::LinuxProc;
    use relwatch::snapshot::parse::cgroup::systemd_cgroup;
    use relwatch::snapshot::ProcSource;
    let _lock = cgroup_lock();
    let unit = format!("{}.service", unique("walk"));
    let rel = format!("system.slice/{unit}");
    let Some(v2) = Cgroup::create(true, &rel) else {
        return;
    };
    let v1 = Cgroup::create(false, &rel);
    let root = DeployRoot::new();
    let r1 = root.release("1");
    root.switch("1");
    let workers: Vec<Child> = (0..24).map(|_| Child::sleep_in(&r1)).collect();
    for w in &workers[..12] {
        v2.add(w.pid());
        if let Some(v1) = &v1 {
            v1.add(w.pid());
        }
    }
    root.release("2");
    root.switch("2");

    let mut source = LinuxProc::default();
    let pids: Vec<i32> = workers.iter().map(Child::pid).collect();
    let mut reads = std::collections::HashMap::new();
    source.cgroup_and_env(&pids, &|_| &[], &mut |pid, read| {
        reads.insert(pid, read);
    });
    assert_eq!(
        source.cgroups_walked(),
        workers.len(),
        "every cgroup should come from the walk"
    );
    for w in &workers {
        let own = std::fs::read(format!("/proc/{}/cgroup", w.pid())).unwrap();
        assert_eq!(
            reads[&w.pid()].cgroup.as_ref().map(Option::as_deref),
            Ok(systemd_cgroup(&own)),
            "pid {}: the walk and /proc/PID/cgroup disagree",
            w.pid()
        );
    }

    let (run, doc) = check_json([root.path().as_os_str(), "--grace".as_ref(), "0s".as_ref()]);
    for (i, w) in workers.iter().enumerate() {
        let p = process(&doc, w.pid()).expect("worker listed");
        let in_unit = p["owner"]["unit"] == unit.as_str();
        assert_eq!(in_unit, i < 12, "pid {}: {p}\n{run}", w.pid());
    }
    drop(workers);
    drop(v1);
    drop(v2);
}

#[test]
fn user_service_names_the_user_manager() {
    let unit = format!("{}.service", unique("user"));
    let rel = format!("{}.slice/user@0.service/app.slice/{unit}", unique("users"));
    let Some((f, p)) = old_worker_in_cgroup(true, &rel) else {
        return;
    };
    assert_eq!(p["owner"]["user"], 0, "{p}");
    assert_eq!(
        f["remedy"].as_str().unwrap(),
        format!("systemctl --user -M root@ restart {unit}"),
        "{f}"
    );
}

#[test]
fn login_session_scope_means_started_by_hand() {
    let rel = format!("{}.slice/session-4242.scope", unique("session"));
    let Some((f, p)) = old_worker_in_cgroup(true, &rel) else {
        return;
    };
    assert_eq!(p["owner"]["kind"], "session", "{p}");
    let remedy = f["remedy"].as_str().unwrap();
    assert!(
        remedy.starts_with(&format!("kill -TERM {}", p["pid"]))
            && remedy.contains("nothing will restart it"),
        "{remedy}"
    );
}

#[test]
fn an_escaped_template_unit_is_quoted_for_the_shell() {
    let unit = format!(r"{}@srv-shop\x2dnew.service", unique("tpl"));
    let Some((f, p)) = old_worker_in_cgroup(true, &format!("system.slice/{unit}")) else {
        return;
    };
    assert_eq!(
        p["owner"]["unit"],
        unit.as_str(),
        "systemctl takes the escaped name: {p}"
    );
    assert!(
        p["owner"]["label"]
            .as_str()
            .unwrap()
            .contains("@srv-shop-new.service"),
        "people read it unescaped: {p}"
    );
    assert_eq!(
        f["remedy"].as_str().unwrap(),
        format!("systemctl restart '{unit}'")
    );
}

/// Debian's supervisor; the suite fails rather than skips without it (.ci/run installs it).
fn supervisord() -> &'static str {
    assert!(
        std::path::Path::new("/usr/bin/supervisord").exists(),
        "supervisord is not installed: apt-get install supervisor"
    );
    "/usr/bin/supervisord"
}

#[test]
fn supervisord_started_from_current_keeps_a_deleted_release() {
    let root = DeployRoot::new();
    root.release("1");
    root.switch("1");
    let tmp = root.tmp();
    let conf = supervisord_conf(
        &tmp,
        "[program:worker]\ncommand=sleep 1000\nautostart=true\nstartsecs=0\nstopsignal=KILL\n",
    );
    // Started the way a deploy would: from current/, without directory= for the program.
    let sd = Child::spawn(
        Command::new(supervisord())
            .args(["-n", "-c"])
            .arg(&conf)
            .current_dir(root.current()),
    );
    let first = sd.wait_for_children(1, "sleep")[0];

    root.release("2");
    root.switch("2");
    root.delete("1");
    let ctl = Command::new("supervisorctl")
        .arg("-c")
        .arg(&conf)
        .args(["restart", "worker"])
        .output()
        .unwrap();
    assert!(ctl.status.success(), "supervisorctl restart: {ctl:?}");
    let second = poll("the restarted program", || {
        sd.children()
            .into_iter()
            .find(|&c| c != first && comm(c).as_deref() == Some("sleep"))
    });

    let (run, doc) = check_json([root.path()]);
    assert_eq!(run.code, 2, "{run}");
    let f = findings_of(&doc, "deleted-release");
    assert_eq!(
        f.len(),
        1,
        "supervisord and its program are one tree: {run}"
    );
    assert_eq!(
        f[0]["master"].as_i64(),
        Some(i64::from(sd.pid())),
        "{}",
        f[0]
    );
    assert!(pids(f[0]).contains(&i64::from(second)), "{}", f[0]);
    let remedy = f[0]["remedy"].as_str().unwrap();
    assert!(remedy.contains("supervisord"), "{remedy}");
    assert!(remedy.contains("directory="), "{remedy}");
    assert!(
        remedy.contains("supervisorctl reread && supervisorctl update"),
        "{remedy}"
    );
    let child = process(&doc, second).expect("the program is listed");
    assert_eq!(child["owner"]["kind"], "supervisord", "{child}");
    assert_eq!(child["owner"]["name"], "worker:worker", "{child}");
    assert_eq!(
        child["owner"]["supervisor_pid"].as_i64(),
        Some(i64::from(sd.pid()))
    );
    assert!(
        evidence_hows(child, second).contains(&"cwd".to_string()),
        "the program inherited the deleted cwd: {child}"
    );
}

#[test]
fn a_parent_that_never_reaps_has_zombies() {
    let root = DeployRoot::new();
    let r1 = root.release("1");
    root.switch("1");
    // `true` exits at once; exec replaces sh with sleep, which never waits for it.
    let parent = Child::spawn(
        Command::new("sh")
            .args(["-c", "true & true & exec sleep 1000"])
            .current_dir(&r1),
    );
    let zombies = poll("two zombie children", || {
        let z: Vec<i32> = parent
            .children()
            .into_iter()
            .filter(|c| {
                std::fs::read_to_string(format!("/proc/{c}/stat")).is_ok_and(|s| {
                    s.rsplit(')')
                        .next()
                        .is_some_and(|r| r.trim_start().starts_with('Z'))
                })
            })
            .collect();
        (z.len() == 2 && comm(parent.pid()).as_deref() == Some("sleep")).then_some(z)
    });
    let (run, doc) = check_json([root.path()]);
    assert_eq!(run.code, 1, "zombies are a warning\n{run}");
    let f = findings_of(&doc, "zombie");
    assert_eq!(f.len(), 1, "one finding per parent: {run}");
    assert_eq!(f[0]["master"].as_i64(), Some(i64::from(parent.pid())));
    for z in zombies {
        assert!(pids(f[0]).contains(&i64::from(z)), "{}", f[0]);
    }
    assert!(
        f[0]["message"].as_str().unwrap().contains("2 zombies"),
        "{}",
        f[0]
    );
}

/// Left on release 1 after the switch to 2 (on the current release it is no finding: see
/// tests/e2e.rs).
#[test]
fn a_double_forked_worker_is_an_orphan() {
    let root = DeployRoot::new();
    let r1 = root.release("1");
    root.switch("1");
    let stray = Stray::start_in(&r1);
    root.release("2");
    root.switch("2");
    let (run, doc) = check_json([root.path()]);
    assert_eq!(run.code, 1, "{run}");
    let f = findings_of(&doc, "orphan");
    assert_eq!(f.len(), 1, "{run}");
    assert_eq!(pids(f[0]), [i64::from(stray.0)]);
    assert!(
        f[0]["message"]
            .as_str()
            .unwrap()
            .contains("started by hand"),
        "{}",
        f[0]
    );
    assert!(f[0]["remedy"]
        .as_str()
        .unwrap()
        .starts_with(&format!("kill -TERM {}", stray.0)));
}

#[test]
fn supervisor_enabled_without_a_supervisord_is_an_orphan() {
    let root = DeployRoot::new();
    let r1 = root.release("1");
    root.switch("1");
    let status = Command::new("sh")
        .args(["-c", "(sleep 1000 &) ; :"])
        .env("SUPERVISOR_ENABLED", "1")
        .env("SUPERVISOR_PROCESS_NAME", "worker")
        .current_dir(&r1)
        .status()
        .unwrap();
    assert!(status.success());
    let stray = Stray::find_in(&r1);
    let (run, doc) = check_json([root.path()]);
    let f = findings_of(&doc, "orphan");
    assert_eq!(f.len(), 1, "{run}");
    assert!(
        f[0]["message"]
            .as_str()
            .unwrap()
            .contains("SUPERVISOR_ENABLED"),
        "{}",
        f[0]
    );
    assert_eq!(pids(f[0]), [i64::from(stray.0)]);
}

#[test]
fn an_older_left_over_in_a_service_is_an_orphan_but_its_main_process_is_not() {
    let _lock = cgroup_lock();
    let unit = format!("{}.service", unique("leftover"));
    let Some(cg) = Cgroup::create(true, &format!("system.slice/{unit}")) else {
        return;
    };
    let root = DeployRoot::new();
    let r1 = root.release("1");
    let r2 = root.release("2");
    root.switch("1");
    let spawn_detached = |dir: &std::path::Path| {
        let ok = Command::new("sh")
            .args(["-c", "(sleep 1000 &) ; :"])
            .current_dir(dir)
            .status()
            .unwrap();
        assert!(ok.success());
        Stray::find_in(dir)
    };
    let old = spawn_detached(&r1);
    cg.add(old.0);
    wait_started_before_now(old.0);
    root.switch("2");
    let main = spawn_detached(&r2);
    cg.add(main.0);
    let (run, doc) = check_json([root.path()]);
    let f = findings_of(&doc, "orphan");
    assert_eq!(f.len(), 1, "only the older one: {run}");
    assert_eq!(pids(f[0]), [i64::from(old.0)]);
    assert!(
        f[0]["message"].as_str().unwrap().contains("left-over"),
        "{}",
        f[0]
    );
    drop(old);
    drop(main);
    drop(cg);
}

#[test]
fn ps_shows_release_owner_and_tree() {
    let root = DeployRoot::new();
    let r1 = root.release("1");
    root.switch("1");
    let master = Child::master_with_workers(&r1, 2);
    let workers = master.wait_for_children(2, "sleep");
    let run = relwatch(["ps".as_ref(), root.path().as_os_str()]);
    assert_eq!(run.code, 0, "{run}");
    let out = &run.stdout;
    assert!(out.contains("release 1 (current)"), "{run}");
    assert!(out.contains("unsupervised"), "{run}");
    let line = |pid: i32| {
        out.lines()
            .find(|l| l.trim_start().starts_with(&pid.to_string()))
            .unwrap_or_else(|| panic!("pid {pid} not shown\n{run}"))
            .to_string()
    };
    let indent = |l: &str| l.len() - l.trim_start().len();
    let m = line(master.pid());
    for w in workers {
        assert!(
            indent(&line(w)) > indent(&m),
            "workers sit under the master\n{run}"
        );
    }
}
