//! A real container runtime (issue 20): rootful Podman with runc, an image imported from a
//! local tarball (no registry), and a container started with `-v ROOT/current:/app`. The bind
//! mount resolved `current` when it was made, so after a switch the container runs the old
//! release and after the cleanup a deleted one; relwatch names the container from its cgroup
//! (`libpod-ID` under the test's `--cgroup-parent`, Podman's cgroupfs manager) and prints
//! `podman restart ID`, which the test runs as printed: the restart mounts `current` again.
//!
//! Podman is configured only through its own environment (`CONTAINERS_CONF`,
//! `CONTAINERS_STORAGE_CONF`), so the printed remedy needs no extra flag: a private store in
//! a temporary directory (driver vfs), the cgroupfs manager, runc (crun cannot run on a
//! hybrid cgroup host), a file event log, and rlimits the runtime may set here.
//!
//! The same four steps with a machine that `systemd-nspawn --register=yes` registered with
//! systemd-machined (`machine.slice/machine-NAME.scope`), inside a container booted with a
//! real systemd (tests/util/systemd.rs), and its remedy `machinectl reboot NAME`.

mod util;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use util::fixes::{run_fixes_with, until_ok};
use util::systemd::Container;
use util::*;

/// The test's image: a static program that changes into `/app` and waits (ending at once on
/// SIGTERM, which it gets as the container's PID 1).
const HOLD_C: &str = "#include <signal.h>\n#include <unistd.h>\n\
    static void bye(int s) { (void)s; _exit(0); }\n\
    int main(void) {\n signal(SIGTERM, bye);\n if (chdir(\"/app\")) return 1;\n\
    for (;;) pause();\n}\n";

const IMAGE: &str = "localhost/relwatch-test-hold:1";

/// A private Podman: its store, run and temporary directories and its configuration live in a
/// temporary directory, its containers' cgroups under `/relwatch-test-*` in every hierarchy.
/// Dropping it removes every container (`podman rm -f -t 0`), every cgroup it made and the
/// store, whether the test passed or not.
struct Podman {
    dir: tempfile::TempDir,
    /// `relwatch-test-…`: the `--cgroup-parent` of every container.
    parent: String,
    env: Vec<(&'static str, OsString)>,
}

impl Podman {
    /// `None` (after [`skip`]) when podman, runc or gcc is missing or we are not root.
    fn new() -> Option<Podman> {
        if !nix::unistd::geteuid().is_root() {
            skip("running rootful podman needs root");
            return None;
        }
        if !(util::runs("podman", "--version") && util::runs("runc", "--version")) {
            return None;
        }
        let dir = tempdir();
        let base = std::fs::canonicalize(dir.path()).expect("canonicalize the podman dir");
        let parent = base
            .file_name()
            .expect("a temporary directory has a name")
            .to_string_lossy()
            .into_owned();
        let conf = base.join("containers.conf");
        std::fs::write(
            &conf,
            format!(
                "[containers]\n\
                 default_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]\n\
                 [engine]\n\
                 cgroup_manager = \"cgroupfs\"\n\
                 events_logger = \"file\"\n\
                 runtime = \"runc\"\n\
                 tmp_dir = \"{}\"\n",
                base.join("tmp").display()
            ),
        )
        .expect("write containers.conf");
        let storage = base.join("storage.conf");
        std::fs::write(
            &storage,
            format!(
                "[storage]\ndriver = \"vfs\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
                base.join("store").display(),
                base.join("run").display()
            ),
        )
        .expect("write storage.conf");
        let env = vec![
            ("CONTAINERS_CONF", conf.into_os_string()),
            ("CONTAINERS_STORAGE_CONF", storage.into_os_string()),
        ];
        Some(Podman { dir, parent, env })
    }

    /// `podman ARGS` in this configuration; panics with its output when it fails.
    fn run(&self, args: &[&std::ffi::OsStr]) -> String {
        let out = self.output(args);
        assert!(
            out.status.success(),
            "podman {args:?}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn output(&self, args: &[&std::ffi::OsStr]) -> Output {
        Command::new("podman")
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir("/")
            .output()
            .unwrap_or_else(|e| panic!("run podman {args:?}: {e}"))
    }

    /// Imports [`rootfs`] as [`IMAGE`].
    fn import_image(&self) {
        let base = self.dir.path();
        let rootfs = rootfs(base);
        let tar = base.join("image.tar");
        let out = Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .output()
            .unwrap_or_else(|e| panic!("tar: {e}"));
        assert!(out.status.success(), "tar the image: {out:?}");
        self.run(&["import".as_ref(), tar.as_os_str(), IMAGE.as_ref()]);
    }

    /// Starts a container of [`IMAGE`] with `source` bind-mounted at `/app`; its id.
    fn start(&self, source: &Path) -> String {
        let mut volume = source.as_os_str().to_owned();
        volume.push(":/app");
        let parent = format!("/{}", self.parent);
        self.run(&[
            "run".as_ref(),
            "-d".as_ref(),
            "--network".as_ref(),
            "none".as_ref(),
            "--cgroup-parent".as_ref(),
            parent.as_ref(),
            "-v".as_ref(),
            &volume,
            IMAGE.as_ref(),
            "/bin/hold".as_ref(),
        ])
    }

    /// The host pid of the container's process, once it is in `/app`.
    fn pid(&self, id: &str) -> i32 {
        poll("the container's process to change into /app", || {
            let pid: i32 = self
                .run(&[
                    "inspect".as_ref(),
                    "--format".as_ref(),
                    "{{.State.Pid}}".as_ref(),
                    id.as_ref(),
                ])
                .parse()
                .ok()?;
            let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).ok()?;
            (pid > 0 && cwd == Path::new("/app")).then_some(pid)
        })
    }

    /// Every directory named after [`Self::parent`] in any cgroup hierarchy, deepest first.
    fn cgroups(&self) -> Vec<PathBuf> {
        let mut found = Vec::new();
        let hierarchies = std::fs::read_dir("/sys/fs/cgroup").into_iter().flatten();
        for h in hierarchies.flatten() {
            collect_dirs(&h.path().join(&self.parent), &mut found);
        }
        found
    }
}

/// `DIR/rootfs`: `/app`, the static [`HOLD_C`] program built as `/bin/hold`, and an empty
/// `/usr` (systemd-nspawn refuses a directory without one).
fn rootfs(dir: &Path) -> PathBuf {
    let rootfs = dir.join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).expect("create rootfs/bin");
    std::fs::create_dir_all(rootfs.join("app")).expect("create rootfs/app");
    std::fs::create_dir_all(rootfs.join("usr")).expect("create rootfs/usr");
    let src = dir.join("hold.c");
    std::fs::write(&src, HOLD_C).expect("write hold.c");
    let out = Command::new("gcc")
        .args(["-static", "-O2", "-o"])
        .arg(rootfs.join("bin/hold"))
        .arg(&src)
        .output()
        .unwrap_or_else(|e| panic!("gcc: {e}"));
    assert!(out.status.success(), "gcc -static hold.c: {out:?}");
    rootfs
}

/// `dir` and every directory below it, children before their parent.
fn collect_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            collect_dirs(&e.path(), out);
        }
    }
    out.push(dir.to_path_buf());
}

impl Drop for Podman {
    fn drop(&mut self) {
        // Every container of this private store is the test's own.
        let out = self.output(&[
            "rm".as_ref(),
            "-f".as_ref(),
            "-t".as_ref(),
            "0".as_ref(),
            "-a".as_ref(),
        ]);
        if !out.status.success() {
            eprintln!("podman rm -f -a: {}", String::from_utf8_lossy(&out.stderr));
        }
        // conmon leaves its cgroup a moment after the container ends.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let left: Vec<PathBuf> = self
                .cgroups()
                .into_iter()
                .filter(|d| std::fs::remove_dir(d).is_err())
                .collect();
            if left.is_empty() {
                break;
            }
            if std::time::Instant::now() > deadline {
                eprintln!("cgroups left behind: {left:?}");
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

/// `relwatch check --format json ROOT --grace 0s`.
fn check_now(root: &DeployRoot) -> (Run, serde_json::Value) {
    check_json([root.path().as_os_str(), "--grace".as_ref(), "0s".as_ref()])
}

/// The one finding of `kind`, which must name `pid` only, the container `(runtime, name)` as
/// its owner and `argv` as its remedy.
fn names_the_container(
    (doc, run): (&serde_json::Value, &Run),
    kind: &str,
    pid: i32,
    (runtime, name): (&str, &str),
    argv: &[&str],
) {
    let found = findings_of(doc, kind);
    assert_eq!(found.len(), 1, "one {kind} finding\n{run}");
    assert_eq!(pids(found[0]), [i64::from(pid)], "{run}");
    assert_eq!(
        found[0]["remedy"].as_str(),
        Some(argv.join(" ").as_str()),
        "the remedy restarts the container\n{run}"
    );
    assert_eq!(found[0]["fix"][0]["argv"], serde_json::json!(argv), "{run}");
    let p = process(doc, pid).expect("the container's process is listed");
    assert_eq!(p["owner"]["kind"], runtime, "{p}");
    assert_eq!(p["owner"]["name"], name, "{p}");
}

/// `in-use --format json` (run by `relwatch`) lists `pid` for the path it was given.
fn in_use_lists(inuse: &Run, pid: i32) {
    assert_eq!(inuse.code, 1, "release 1 is in use\n{inuse}");
    let users = &inuse.json()["paths"][0]["processes"];
    assert!(
        users
            .as_array()
            .is_some_and(|u| u.iter().any(|u| u["pid"].as_i64() == Some(i64::from(pid)))),
        "in-use lists the container's pid {pid}\n{inuse}"
    );
}

/// A Podman container with a bind mount of `current`: `old-release` after the switch and
/// `deleted-release` after the cleanup, both naming the container and `podman restart ID`;
/// `in-use` lists its process; the printed remedy, run as printed, mounts the current release
/// again and the next check is OK.
#[test]
fn a_podman_container_on_a_bind_of_current_is_restarted_by_its_remedy() {
    let Some(podman) = Podman::new() else {
        return;
    };
    podman.import_image();
    let root = DeployRoot::new();
    let r1 = root.release("1");
    root.switch("1");
    let id = podman.start(&root.current());
    let pid = podman.pid(&id);
    let (run, doc) = check_now(&root);
    assert_eq!(
        run.code, 0,
        "on the current release nothing is reported\n{run}"
    );
    assert!(
        process(&doc, pid).is_some_and(|p| p["release_state"] == "current"),
        "the container's pid {pid} is placed on the current release\n{run}"
    );

    wait_started_before_now(pid);
    root.release("2");
    root.switch("2");
    let (run, doc) = check_now(&root);
    assert_eq!(run.code, 1, "an old release is a warning\n{run}");
    let remedy = ["podman", "restart", id.as_str()];
    names_the_container((&doc, &run), "old-release", pid, ("podman", &id), &remedy);

    let inuse = relwatch([
        "in-use".as_ref(),
        "--format".as_ref(),
        "json".as_ref(),
        r1.as_os_str(),
    ]);
    in_use_lists(&inuse, pid);

    root.delete("1");
    let (run, doc) = check_now(&root);
    assert_eq!(run.code, 2, "a deleted release is critical\n{run}");
    names_the_container(
        (&doc, &run),
        "deleted-release",
        pid,
        ("podman", &id),
        &remedy,
    );

    let ran = run_fixes_with(&doc, &["podman"], &podman.env);
    assert_eq!(
        ran,
        [vec!["podman".to_owned(), "restart".into(), id.clone()]]
    );
    let doc = until_ok(&root);
    let again = podman.pid(&id);
    assert_ne!(again, pid, "podman restart started a new process");
    assert!(
        process(&doc, again)
            .is_some_and(|p| p["release_state"] == "current" && p["release"].as_str() == Some("2")),
        "the restarted container's pid {again} is on release 2\n{doc:#}"
    );
}

/// The fix of every finding in `doc`, all the same `argv`, run inside `container` as printed.
fn run_fix_inside(container: &Container, doc: &serde_json::Value, argv: &[&str]) {
    for f in array(doc, "findings") {
        assert_eq!(f["fix"][0]["argv"], serde_json::json!(argv), "{f:#}");
    }
    container.ok(argv);
}

/// The pid (in `container`'s pid namespace) of the one `hold` process there once it is in
/// `/app`, other than `not`.
fn hold_pid(container: &mut Container, not: Option<i32>) -> i32 {
    container.poll("the machine's hold to change into /app", |c| {
        let run = c.run(["pgrep", "-x", "hold"]);
        let pid = run
            .stdout
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok())
            .find(|&p| Some(p) != not)?;
        let cwd = c.run(["readlink", &format!("/proc/{pid}/cwd")]);
        (cwd.stdout.trim() == "/app").then_some(pid)
    })
}

/// `relwatch check --format json ROOT --grace 0s` inside `container`.
fn check_inside(container: &Container, root: &str) -> (Run, serde_json::Value) {
    let run = container.relwatch(["check", "--format", "json", "--grace", "0s", root]);
    let doc = run.json();
    (run, doc)
}

/// A machine that `systemd-nspawn --register=yes` registered with systemd-machined
/// (`machine.slice/machine-NAME.scope`, no unit of its own), inside a container booted with a
/// real systemd 252, with `--bind=ROOT/current:/app`: named as the machine with
/// `machinectl reboot NAME` after the switch and after the cleanup; `in-use` lists it; the
/// printed reboot, run as printed, makes nspawn start it again with the bind made anew.
#[test]
fn a_registered_nspawn_machine_on_a_bind_of_current_is_rebooted_by_its_remedy() {
    let root = DeployRoot::new();
    root.release("1");
    root.switch("1");
    rootfs(&root.tmp());
    let Some(mut container) = Container::boot(&[(&root.tmp(), "/srv")]) else {
        return;
    };
    let app = format!("/srv/{}", root.name());
    container.ok([
        "systemd-run",
        "--unit=relwatch-test-machine",
        "systemd-nspawn",
        "--register=yes",
        "--machine=holdbox",
        "--directory=/srv/rootfs",
        &format!("--bind={app}/current:/app"),
        "--as-pid2",
        "/bin/hold",
    ]);
    let pid = hold_pid(&mut container, None);
    let (run, doc) = check_inside(&container, &app);
    assert_eq!(
        run.code, 0,
        "on the current release nothing is reported\n{run}"
    );
    assert!(
        process(&doc, pid).is_some_and(|p| p["release_state"] == "current"),
        "the machine's pid {pid} is placed on the current release\n{run}"
    );

    // The machine's process must count as started before the switch.
    wait_after_switch();
    root.release("2");
    root.switch("2");
    let (run, doc_old) = check_inside(&container, &app);
    assert_eq!(run.code, 1, "an old release is a warning\n{run}");
    let remedy = ["machinectl", "reboot", "holdbox"];
    let owner = ("systemd-nspawn", "holdbox");
    names_the_container((&doc_old, &run), "old-release", pid, owner, &remedy);
    let r1 = format!("{app}/releases/1");
    in_use_lists(
        &container.relwatch(["in-use", "--format", "json", &r1]),
        pid,
    );

    root.delete("1");
    let (run, doc) = check_inside(&container, &app);
    assert_eq!(run.code, 2, "a deleted release is critical\n{run}");
    names_the_container((&doc, &run), "deleted-release", pid, owner, &remedy);

    run_fix_inside(&container, &doc, &remedy);
    let again = hold_pid(&mut container, Some(pid));
    let (run, doc) = container.poll("relwatch check to say OK", |c| {
        let (run, doc) = check_inside(c, &app);
        (run.code == 0 && array(&doc, "findings").is_empty()).then_some((run, doc))
    });
    assert!(
        process(&doc, again)
            .is_some_and(|p| p["release_state"] == "current" && p["release"].as_str() == Some("2")),
        "the rebooted machine's pid {again} is on release 2\n{run}"
    );
}
