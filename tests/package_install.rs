//! The .deb as an operator meets it: built by cargo-deb from the binary under test (the same
//! metadata, maintainer scripts and units a release build packages), checked by lintian, and
//! installed with `dpkg -i` in a container booted with a real systemd (tests/util/systemd.rs:
//! a writable layer over the host's `/usr`, a copy of its dpkg database). It proves that
//! relwatch.timer is enabled and active right after the install, that the hardened
//! relwatch.service writes a complete textfile naming a finding, that relwatch-agent.service
//! logs a finding to the journal right after a delete, that `dpkg --purge` leaves nothing
//! behind, and that with the host's `policy-rc.d` (which forbids starting services during
//! package installs, as Docker images do) the install still succeeds and says nothing wrong.
//!
//! Needs root, the packages of scripts/test-deps (systemd-container, dbus, lintian) and
//! cargo-deb (`cargo install cargo-deb --locked`, which .ci/run does).

mod util;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;
use util::skip;
use util::systemd::Container;

/// Where the .deb is built (under the cargo target directory).
fn out_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("package-install")
}

/// The .deb of the binary under test, built once per run of this file: packaging/build-assets,
/// then `cargo deb --no-build --strip` with a target directory of its own whose
/// `release/relwatch` is a copy of the binary under test (the tests never build --release).
/// `Err` says why it could not be built.
fn deb() -> &'static Result<PathBuf, String> {
    static DEB: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    DEB.get_or_init(|| {
        let version = Command::new("cargo").args(["deb", "--version"]).output();
        if !version.is_ok_and(|o| o.status.success()) {
            return Err("cargo-deb is not installed: cargo install cargo-deb --locked".into());
        }
        let out = out_dir();
        let _ = std::fs::remove_dir_all(&out);
        let release = out.join("target/release");
        std::fs::create_dir_all(&release).expect("create the package's target directory");
        std::fs::copy(env!("CARGO_BIN_EXE_relwatch"), release.join("relwatch"))
            .expect("copy the binary under test");
        let bin = env!("CARGO_BIN_EXE_relwatch");
        succeed(Command::new("sh").args(["packaging/build-assets", bin]));
        succeed(
            Command::new("cargo")
                .args(["deb", "--no-build", "--strip", "-o"])
                .arg(format!("{}/", out.display()))
                .env("CARGO_TARGET_DIR", out.join("target")),
        );
        let found = std::fs::read_dir(&out)
            .expect("read the package directory")
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "deb"));
        Ok(found.expect("cargo deb wrote a .deb"))
    })
}

/// Runs `cmd` in the project directory and panics with its output unless it exits 0.
fn succeed(cmd: &mut Command) {
    let run = cmd
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        run.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
}

/// The built .deb, or `None` after [`skip`] (which fails under CI).
fn built() -> Option<&'static Path> {
    match deb() {
        Ok(path) => Some(path),
        Err(why) => {
            skip(why);
            None
        }
    }
}

/// lintian reports no error and no warning on the .deb (overrides, if any, are in the package
/// and say why).
#[test]
fn lintian_finds_no_error_or_warning() {
    let Some(deb) = built() else { return };
    let run = Command::new("lintian")
        .args(["--fail-on", "error,warning", "--display-level", ">=warning"])
        .arg(deb)
        .output();
    let run = match run {
        Ok(run) => run,
        Err(e) => {
            return skip(&format!(
                "lintian cannot run ({e}): apt-get install lintian"
            ))
        }
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        run.status.success()
            && !text
                .lines()
                .any(|l| l.starts_with("E:") || l.starts_with("W:")),
        "lintian {}:\n{text}",
        deb.display()
    );
}

/// Every path below the directories a package may touch, without what changes on its own
/// (logs, caches, the dpkg database's backups and locks).
fn files(c: &Container) -> BTreeSet<String> {
    let out = c.ok([
        "find",
        "/etc",
        "/usr",
        "/var",
        "-xdev",
        "-not",
        "-path",
        "/var/log/*",
        "-not",
        "-path",
        "/var/cache/*",
        "-not",
        "-path",
        "/var/tmp/*",
        "-not",
        "-name",
        "*-old",
        "-not",
        "-name",
        "lock*",
        "-not",
        "-path",
        "/var/lib/dpkg/updates/*",
    ]);
    out.lines().map(str::to_string).collect()
}

/// What `systemctl VERB relwatch.timer` says in `c` (`is-enabled`, `is-active`).
fn timer(c: &Container, verb: &str) -> String {
    c.run(["systemctl", verb, "relwatch.timer"])
        .stdout
        .trim()
        .to_string()
}

/// Installs the .deb in `c` with `dpkg -i`, asserting it succeeded; returns what it printed.
fn install(c: &Container) -> String {
    let run = c.run(["dpkg", "-i", "/opt/pkg/relwatch.deb"]);
    assert_eq!(run.code, 0, "dpkg -i failed\n{run}\n{}", c.console());
    format!("{}{}", run.stdout, run.stderr)
}

/// A scratch directory holding the .deb as `relwatch.deb`, bound at /opt/pkg.
fn package_dir(deb: &Path) -> tempfile::TempDir {
    let dir = util::tempdir();
    std::fs::copy(deb, dir.path().join("relwatch.deb")).expect("copy the .deb");
    dir
}

#[test]
fn the_deb_installs_enables_the_timer_and_purges_clean() {
    let Some(deb) = built() else { return };
    let pkg = package_dir(deb);
    let Some(mut c) = Container::boot_for_packages(&[(pkg.path(), "/opt/pkg")]) else {
        return;
    };
    // A real host has no policy-rc.d: remove the image's from the container's /usr layer.
    c.remove("/usr/sbin/policy-rc.d");
    // The copied dpkg database says the host's packages are installed, but the container's
    // /var is empty: give it the directories of theirs that the package's scripts look at, as
    // a host with them has (prometheus, a test dependency, owns /var/lib/prometheus).
    for dir in ["/var/lib/prometheus"] {
        if c.run(["dpkg-query", "-S", dir]).code == 0 {
            c.ok(["mkdir", "-p", dir]);
        }
    }
    let before = files(&c);
    let said = install(&c);

    // The timer is enabled and active right after the install, with a next run.
    assert_eq!(timer(&c, "is-enabled"), "enabled", "{said}");
    assert_eq!(timer(&c, "is-active"), "active", "{said}");
    let timers = c.ok(["systemctl", "list-timers", "--all", "relwatch.timer"]);
    let line = timers
        .lines()
        .find(|l| l.contains("relwatch.timer"))
        .unwrap_or_else(|| panic!("{timers}"));
    assert!(
        !line.trim_start().starts_with("n/a") && !line.trim_start().starts_with('-'),
        "relwatch.timer has a next run: {timers}"
    );

    // A worker on a release a cleanup deleted, then the hardened unit's scan.
    let pid = deleted_worker(&mut c, "shop", "1");
    c.ok(["systemctl", "start", "relwatch.service"]);
    let prom =
        std::fs::read_to_string(c.host_path("/var/lib/prometheus/node-exporter/relwatch.prom"))
            .expect("relwatch.service wrote its textfile");
    assert!(
        prom.ends_with('\n') && prom.contains("relwatch_last_scan_timestamp_seconds"),
        "a complete textfile:\n{prom}"
    );
    assert!(
        prom.lines().any(|l| l.starts_with("relwatch_findings{")
            && l.contains("app=\"shop\"")
            && l.contains("kind=\"deleted-release\"")
            && l.ends_with(" 1")),
        "the textfile names the finding about pid {pid}:\n{prom}"
    );
    util::promtool::check_metrics(&prom);

    agent_logs_a_delete(&mut c);

    let run = c.run(["dpkg", "--purge", "relwatch"]);
    assert_eq!(run.code, 0, "dpkg --purge\n{run}");
    let after = files(&c);
    let left: Vec<&String> = after
        .difference(&before)
        .filter(|p| !p.starts_with("/srv"))
        .collect();
    let gone: Vec<&String> = before.difference(&after).collect();
    assert!(
        left.is_empty() && gone.is_empty(),
        "dpkg --purge left {left:#?} and took {gone:#?}"
    );
}

/// Makes /srv/APP with releases 1..=3 (current 3), starts a sleeper in release `release` as a
/// transient unit, deletes that release and returns the sleeper's pid (inside the container).
fn deleted_worker(c: &mut Container, app: &str, release: &str) -> i32 {
    let unit = old_worker(c, app, release);
    c.ok(["rm", "-rf", &format!("/srv/{app}/releases/{release}")]);
    c.main_pid(&["systemctl"], &unit)
}

/// /srv/APP with releases 1, 2 and 3, current -> 3, and a sleeper whose cwd is release
/// `release`, run as the transient unit APP-RELEASE.service, which is returned.
fn old_worker(c: &mut Container, app: &str, release: &str) -> String {
    for r in ["1", "2", "3"] {
        c.ok(["mkdir", "-p", &format!("/srv/{app}/releases/{r}")]);
    }
    c.ok(["ln", "-sfn", "releases/3", &format!("/srv/{app}/current")]);
    let unit = format!("{app}-{release}.service");
    c.ok([
        "systemd-run",
        "--unit",
        &unit,
        "-p",
        &format!("WorkingDirectory=/srv/{app}/releases/{release}"),
        "/usr/bin/sleep",
        "1000",
    ]);
    c.poll("the worker to start", |c| {
        (c.main_pid(&["systemctl"], &unit) > 0).then_some(())
    });
    unit
}

/// What relwatch-agent.service wrote to the journal so far, one message a line.
fn agent_log(c: &Container) -> String {
    c.ok([
        "journalctl",
        "-u",
        "relwatch-agent.service",
        "-o",
        "cat",
        "--no-pager",
    ])
}

/// relwatch-agent.service started; a release under a worker deleted: the agent's line about it
/// appears in the journal. The time from the delete to the line is measured and printed (0.16 s
/// on a loaded two-core machine); the bound is a generous 10 s, so that a loaded CI machine
/// does not fail on speed.
fn agent_logs_a_delete(c: &mut Container) {
    let unit = old_worker(c, "api", "2");
    c.ok(["systemctl", "start", "relwatch-agent.service"]);
    c.poll("the agent to report api's old release", |c| {
        let log = agent_log(c);
        log.contains("old-release app=api").then_some(())
    });
    let pid = c.main_pid(&["systemctl"], &unit);
    let deleted = Instant::now();
    c.ok(["rm", "-rf", "/srv/api/releases/2"]);
    let line = c.poll("the agent to log the deleted release", |c| {
        let log = agent_log(c);
        log.lines()
            .find(|l| l.contains("appeared CRITICAL deleted-release app=api"))
            .map(str::to_string)
    });
    let took = deleted.elapsed();
    eprintln!("relwatch-agent.service logged the delete {took:?} after it: {line}");
    assert!(
        line.contains(&pid.to_string()),
        "the line names pid {pid}: {line}"
    );
    // Within a second on an idle machine (inotify wakes it at once; this run's figure is in
    // the message); bounded only by a generous 10 s, so a loaded CI machine does not fail.
    assert!(
        took.as_secs() < 10,
        "the agent logs a delete within about a second; this time it took {took:?}: {line}"
    );
}

/// With the image's policy-rc.d (exit 101: start nothing during package installs), the install
/// succeeds and prints nothing that looks like a failure; the timer is enabled, to start at the
/// next boot, and not started.
#[test]
fn with_policy_rc_d_the_install_succeeds_quietly() {
    let Some(deb) = built() else { return };
    let pkg = package_dir(deb);
    let Some(c) = Container::boot_for_packages(&[(pkg.path(), "/opt/pkg")]) else {
        return;
    };
    // The image's policy-rc.d, also where the host has none (written in the /usr layer).
    c.write("/usr/sbin/policy-rc.d", "#!/bin/sh\nexit 101\n");
    c.ok(["chmod", "755", "/usr/sbin/policy-rc.d"]);
    let said = install(&c);
    for alarming in ["warning", "error", "fail", "denied", "101", "not running"] {
        assert!(
            !said.to_lowercase().contains(alarming),
            "dpkg -i printed {alarming:?}:\n{said}"
        );
    }
    assert_eq!(timer(&c, "is-enabled"), "enabled", "{said}");
    assert_eq!(
        timer(&c, "is-active"),
        "inactive",
        "policy-rc.d forbade the start:\n{said}"
    );
}
