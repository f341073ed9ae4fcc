//! Switch history and rollback, with real processes: current goes 1 -> 2 -> 3 and back to 2. A
//! worker started through `current/` while 2 was current runs 2, the current release again;
//! one started while 3 was current runs 3, an old one. Decided by Deployer's
//! `.dep/releases_log`, by Capistrano's `revisions.log`, or, with neither, by the releases'
//! birth times; the evidence names the source. Run with `cargo test --test history`.

mod util;

use std::ffi::OsString;
use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;
use util::*;

/// The worker: a loop that never touches its release again.
const WORKER: &str = "import time\nwhile True:\n    time.sleep(1000)\n";

#[derive(Clone, Copy, PartialEq)]
enum Tool {
    /// Releases 1, 2, 3 with a relative link and no log: birth times decide.
    Births,
    /// Deployer: releases 1, 2, 3, a relative link and `.dep/releases_log`; `dep rollback`
    /// logs nothing.
    Deployer,
    /// Capistrano: releases named by their UTC time, an absolute link and `revisions.log`,
    /// rollbacks logged.
    Capistrano,
}

/// A deploy root and what its deploy tool has written so far.
struct Deploys {
    root: DeployRoot,
    tool: Tool,
    count: usize,
    log: String,
}

/// Seconds since the epoch, now.
fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs()
}

/// `(days since the epoch) -> (year, month, day)` (Howard Hinnant's `civil_from_days`).
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `(Y, M, D, h, m, s)` of `secs` since the epoch, UTC.
fn utc(secs: u64) -> (i64, i64, i64, u64, u64, u64) {
    let days = i64::try_from(secs / 86_400).expect("a date in range");
    let (y, m, d) = civil(days);
    let rest = secs % 86_400;
    (y, m, d, rest / 3_600, rest % 3_600 / 60, rest % 60)
}

/// Waits until the wall clock shows a whole second later than `after` (log times are whole
/// seconds: what happens next must not share one with what happened before).
fn next_second(after: u64) {
    poll("the next whole second", || (now() > after).then_some(()));
}

impl Deploys {
    fn new(tool: Tool) -> Deploys {
        Deploys {
            root: DeployRoot::new(),
            tool,
            count: 0,
            log: String::new(),
        }
    }

    /// A new release with `worker.py`, logged the way the tool logs it, and `current` switched
    /// to it. Returns its name.
    fn deploy(&mut self) -> String {
        self.count += 1;
        let t = now();
        let (y, mo, d, h, mi, s) = utc(t);
        let name = match self.tool {
            Tool::Capistrano => format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}"),
            _ => self.count.to_string(),
        };
        match self.tool {
            Tool::Births => {}
            Tool::Deployer => {
                self.log += &format!(
                    "{{\"created_at\":\"{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}+0000\",\"release_name\":\"{name}\",\"user\":\"deploy\",\"target\":\"HEAD\"}}\n"
                );
                self.root.write(".dep/releases_log", &self.log);
            }
            Tool::Capistrano => {
                self.log +=
                    &format!("Branch main (at 0123abc) deployed as release {name} by deploy\n");
                self.root.write("revisions.log", &self.log);
            }
        }
        self.root
            .write(Path::new("releases").join(&name).join("worker.py"), WORKER);
        self.switch(&name);
        // The next release gets another name (Capistrano's are whole seconds) and another
        // logged time.
        next_second(t);
        name
    }

    fn switch(&self, name: &str) {
        match self.tool {
            Tool::Capistrano => self.root.switch_absolute(name),
            _ => self.root.switch(name),
        }
    }

    /// `current` back to `name`, logged the way the tool logs it.
    fn rollback(&mut self, name: &str) {
        self.switch(name);
        if self.tool == Tool::Capistrano {
            self.log += &format!("deploy rolled back to release {name}\n");
            self.root.write("revisions.log", &self.log);
        }
    }

    /// `python3 ROOT/current/worker.py` with its cwd at `/`, started now and clearly before
    /// whatever happens next.
    fn worker(&self) -> Child {
        wait_after_switch();
        let w = Child::spawn(
            Command::new("/usr/bin/python3")
                .arg(self.root.current().join("worker.py"))
                .current_dir("/"),
        );
        let pid = w.pid();
        poll("python3 to run worker.py", || {
            (comm(pid).as_deref() == Some("python3")).then_some(())
        });
        wait_started_before_now(pid);
        next_second(now());
        w
    }
}

/// `relwatch check --format json ROOT --grace 0s`.
fn check(root: &DeployRoot) -> (Run, Value) {
    check_json([root.path().as_os_str(), "--grace".as_ref(), "0s".as_ref()])
}

/// The entry of `processes[]` for `pid`, with its release and state.
fn placed<'a>(doc: &'a Value, pid: i32, run: &Run) -> &'a Value {
    process(doc, pid).unwrap_or_else(|| panic!("pid {pid} is listed\n{run}"))
}

/// The `detail` of the via-current evidence about `pid`.
fn via_current_detail(p: &Value) -> String {
    array(p, "evidence")
        .iter()
        .find(|e| e["how"] == "via-current")
        .and_then(|e| e["detail"].as_str())
        .unwrap_or_else(|| panic!("via-current evidence in {p}"))
        .to_owned()
}

/// 1 -> 2 -> 3 -> back to 2, a worker started under each, then the cleanup deletes 1.
fn rollback_through(tool: Tool, says: &str) {
    if tool == Tool::Births {
        let probe = tempdir();
        let born = std::fs::metadata(probe.path()).and_then(|m| m.created());
        if let Err(e) = born {
            skip(&format!("this filesystem records no birth times ({e})"));
            return;
        }
    }
    if !Path::new("/usr/bin/python3").exists() {
        skip("/usr/bin/python3 is missing: apt-get install python3");
        return;
    }
    let mut d = Deploys::new(tool);
    let r1 = d.deploy();
    let w1 = d.worker();
    let r2 = d.deploy();
    let w2 = d.worker();
    let r3 = d.deploy();
    let w3 = d.worker();
    d.rollback(&r2);

    let (run, doc) = check(&d.root);
    assert_eq!(run.code, 1, "releases 1 and 3 are old\n{run}");
    let p2 = placed(&doc, w2.pid(), &run);
    assert_eq!(p2["release_state"], "current", "{p2}\n{run}");
    assert!(bytestr_is(&p2["release"], &r2), "{p2}");
    let detail = via_current_detail(p2);
    assert!(
        detail.contains(&format!("{says} {r2} was current from"))
            && detail.ends_with(", the current release again"),
        "{detail}"
    );
    for f in array(&doc, "findings") {
        assert!(!pids(f).contains(&i64::from(w2.pid())), "{f}\n{run}");
    }
    for (w, r) in [(&w1, &r1), (&w3, &r3)] {
        let p = placed(&doc, w.pid(), &run);
        assert_eq!(p["release_state"], "old", "{p}");
        assert!(bytestr_is(&p["release"], r), "{p}");
        assert!(
            via_current_detail(p).contains(&format!("{says} {r} was current from")),
            "{p}"
        );
    }

    d.root.delete(&r1);
    let (run, doc) = check(&d.root);
    assert_eq!(run.code, 2, "release 1 is deleted\n{run}");
    let p1 = placed(&doc, w1.pid(), &run);
    assert_eq!(p1["release_state"], "deleted", "{p1}");
    if tool != Tool::Births {
        // The log names the release that is gone; birth times cannot.
        assert!(bytestr_is(&p1["release"], &r1), "{p1}");
    }
    assert_eq!(
        placed(&doc, w2.pid(), &run)["release_state"],
        "current",
        "{run}"
    );

    drop((w1, w2, w3));
    let tmp = d.root.tmp();
    drop(d);
    assert!(!tmp.exists(), "{} was left behind", tmp.display());
}

#[test]
fn a_rollback_decided_by_birth_times() {
    rollback_through(Tool::Births, "the releases' birth times say");
}

#[test]
fn a_rollback_decided_by_deployers_releases_log() {
    rollback_through(Tool::Deployer, ".dep/releases_log says");
}

#[test]
fn a_rollback_decided_by_capistranos_revisions_log() {
    rollback_through(Tool::Capistrano, "revisions.log says");
}

/// The agent's own record of the switches it saw decides what birth times cannot. Release 2
/// is built well before `current` moves to it, and a worker started through `current/` in
/// between runs release 1. Once release 3 is current, birth times say 2 was current since its
/// creation (so the worker would run 2, and after the cleanup deletes 1, an old release: a
/// warning); the agent saw the switch to 2 happen after the worker started, so it names the
/// worker on release 1, deleted: critical.
#[test]
fn the_agents_own_record_of_the_switches_beats_birth_times() {
    if !Path::new("/usr/bin/python3").exists() {
        skip("/usr/bin/python3 is missing: apt-get install python3");
        return;
    }
    let mut d = Deploys::new(Tool::Births);
    let r1 = d.deploy();
    // The next release is built now and switched to later.
    d.root.write("releases/2/worker.py", WORKER);
    // Process start times are known to about a second (boot time in whole seconds): the worker
    // starts clearly after release 2 was born.
    let born = now();
    next_second(born + 1);
    let w = d.worker();
    let agent = Background::start([
        OsString::from("watch"),
        d.root.path().into(),
        "--interval".into(),
        "1h".into(),
        "--grace".into(),
        "0s".into(),
    ]);
    agent.wait_for_stderr("watching 1 deploy root");
    d.switch("2");
    agent.wait_for_stderr(&format!("old-release app=myapp release={r1}"));
    d.deploy();
    d.root.delete(&r1);
    let pid = format!("pid {} (python3)", w.pid());
    let log = agent.wait_for_stderr("deleted-release");
    let line = log
        .lines()
        .find(|l| l.contains("deleted-release") && l.contains(&pid))
        .unwrap_or_default()
        .to_owned();
    let (run, _) = check(&d.root);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(agent.pid()),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("stop the agent");
    let stop = agent.finish();
    assert!(
        line.contains("CRITICAL deleted-release") && line.contains(&format!("release={r1}")),
        "the agent names the worker on deleted release {r1} from its own record: {line:?}\n{stop}\n(check, by birth times: {run})"
    );
}

/// Configuration management that sets ownership on the link (`chown -h`, Ansible `file:
/// recurse`) after a deploy moves only the link's ctime: the grace period after the switch
/// must not start again, nor the switch time move.
#[test]
fn a_chown_of_current_after_the_switch_does_not_restart_the_grace_period() {
    use std::os::unix::fs::MetadataExt;
    let root = DeployRoot::new();
    let r1 = root.release("1");
    root.switch("1");
    let worker = Child::sleep_in(&r1);
    root.release("2");
    root.switch("2");
    let args = [root.path().as_os_str(), "--grace".as_ref(), "1s".as_ref()];
    // Past the grace period (a warning), and the switch well over a second old: a chown
    // within a second of it is within the file system's timestamp slack.
    let switched = poll("the grace period to end", || {
        let (run, doc) = check_json(args);
        let at = doc["apps"][0]["switch_time"].as_f64()?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .ok()?
            .as_secs_f64();
        (run.code == 1 && now - at > 2.0).then_some(Some(at))
    });
    let link = root.path().join("current");
    let meta = std::fs::symlink_metadata(&link).expect("lstat current");
    std::os::unix::fs::lchown(&link, Some(meta.uid()), Some(meta.gid())).expect("chown -h");
    let (run, doc) = check_json(args);
    assert_eq!(
        run.code, 1,
        "still past the grace period after the chown: {run}"
    );
    assert_eq!(doc["apps"][0]["switch_time"].as_f64(), switched, "{run}");
    assert!(
        run.stdout.contains(&worker.pid().to_string()),
        "the worker is still named: {run}"
    );
}
