//! Real container runtimes (issue 20), each with an image imported from a local tarball (no
//! registry) and a container started with `-v ROOT/current:/app`. The bind mount resolved
//! `current` when it was made, so after a switch the container runs the old release and after
//! the cleanup a deleted one; relwatch names the container from its cgroup and prints its
//! restart, which the test runs as printed: the restart mounts `current` again.
//!
//! Rootful Podman with runc names its container `libpod-ID` under the test's
//! `--cgroup-parent` (Podman's cgroupfs manager), remedy `podman restart ID`. Podman is
//! configured only through its own environment (`CONTAINERS_CONF`, `CONTAINERS_STORAGE_CONF`),
//! so the printed remedy needs no extra flag: a private store in a temporary directory (driver
//! vfs), the cgroupfs manager, runc (crun cannot run on a hybrid cgroup host), a file event
//! log, and rlimits the runtime may set here.
//!
//! Docker (Debian's docker.io) runs as a private daemon: its data, exec root, pid file and
//! socket in a temporary directory, its own containerd namespace, no bridge, no iptables rule,
//! and `--cgroup-parent /relwatch-test-…/docker`, so its containers' cgroups end in
//! `docker/ID`, remedy `docker restart ID`; the printed remedy reaches that daemon through
//! `DOCKER_HOST`, as an operator's shell would.
//!
//! The same four steps with a machine that `systemd-nspawn --register=yes` registered with
//! systemd-machined (`machine.slice/machine-NAME.scope`), inside a container booted with a
//! real systemd (tests/util/systemd.rs), and its remedy `machinectl reboot NAME`.

mod util;

use std::ffi::{OsStr, OsString};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

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

/// How long a runtime may take to end its containers, helpers and daemons when the test ends.
const CLEANUP: Duration = Duration::from_secs(20);

/// A container runtime's command line (`podman`, `docker`) with the environment that points it
/// at the test's private store or daemon: the environment the printed remedy runs with too.
struct Cli {
    program: &'static str,
    env: Vec<(&'static str, OsString)>,
}

impl Cli {
    /// `PROGRAM ARGS` in this environment; panics with its output when it fails.
    fn run(&self, args: &[&OsStr]) -> String {
        let out = self.output(args);
        assert!(
            out.status.success(),
            "{} {args:?}: {}\n{}",
            self.program,
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn output(&self, args: &[&OsStr]) -> Output {
        Command::new(self.program)
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir("/")
            .output()
            .unwrap_or_else(|e| panic!("run {} {args:?}: {e}", self.program))
    }

    /// Imports [`rootfs`], built in `dir`, as [`IMAGE`].
    fn import_image(&self, dir: &Path) {
        let rootfs = rootfs(dir);
        let tar = dir.join("image.tar");
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

    /// Starts a container of [`IMAGE`] with `options` and `source` bind-mounted at `/app`; its
    /// id.
    fn start(&self, options: &[&OsStr], source: &Path) -> String {
        let mut volume = source.as_os_str().to_owned();
        volume.push(":/app");
        let o = OsStr::new;
        let mut args = vec![o("run"), o("-d"), o("--network"), o("none")];
        args.extend(options);
        args.extend([o("-v"), &volume, o(IMAGE), o("/bin/hold")]);
        self.run(&args)
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
}

/// The canonical path of `dir` and its name (`relwatch-test-…`, from [`tempdir`]): the name of
/// the test's cgroups.
fn named(dir: &tempfile::TempDir) -> (PathBuf, String) {
    let base = std::fs::canonicalize(dir.path()).expect("canonicalize the temporary dir");
    let name = base
        .file_name()
        .expect("a temporary directory has a name")
        .to_string_lossy()
        .into_owned();
    (base, name)
}

/// A private Podman: its store, run and temporary directories and its configuration live in a
/// temporary directory, its containers' cgroups under `/relwatch-test-*` in every hierarchy.
/// Dropping it removes every container (`podman rm -f -t 0`), every cgroup it made and the
/// store, whether the test passed or not.
struct Podman {
    dir: tempfile::TempDir,
    /// `relwatch-test-…`: the `--cgroup-parent` of every container.
    parent: String,
    cli: Cli,
}

impl Podman {
    /// `None` (after [`skip`]) when podman or runc is missing or we are not root.
    fn new() -> Option<Podman> {
        if !nix::unistd::geteuid().is_root() {
            skip("running rootful podman needs root");
            return None;
        }
        if !(util::runs("podman", "--version") && util::runs("runc", "--version")) {
            return None;
        }
        let dir = tempdir();
        let (base, parent) = named(&dir);
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
        let cli = Cli {
            program: "podman",
            env,
        };
        Some(Podman { dir, parent, cli })
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        // Every container of this private store is the test's own.
        let out = self.cli.output(&[
            "rm".as_ref(),
            "-f".as_ref(),
            "-t".as_ref(),
            "0".as_ref(),
            "-a".as_ref(),
        ]);
        if !out.status.success() {
            eprintln!("podman rm -f -a: {}", String::from_utf8_lossy(&out.stderr));
        }
        remove_cgroups(&self.parent);
    }
}

/// A private Docker daemon (`dockerd`, Debian's docker.io): its data root, exec root, pid file,
/// socket and configuration in a temporary directory, its own containerd namespace, no bridge
/// and no iptables rule, the cgroupfs driver, and its containers' cgroups under
/// `/relwatch-test-…/docker` in every hierarchy (a bare `PARENT/ID` names no container:
/// Kubernetes' cgroupfs paths look the same). Dropping it removes every container, stops the
/// daemon and the containerd it started, removes every cgroup they made and the data, whether
/// the test passed or not.
struct Docker {
    dir: tempfile::TempDir,
    base: PathBuf,
    /// `relwatch-test-…`: the top of the daemon's `--cgroup-parent` and its containerd namespace.
    parent: String,
    daemon: Child,
    cli: Cli,
}

impl Docker {
    /// Starts the daemon and waits until it answers; `None` (after [`skip`]) when dockerd or
    /// docker is missing or we are not root.
    fn start() -> Option<Docker> {
        if !nix::unistd::geteuid().is_root() {
            skip("running dockerd needs root");
            return None;
        }
        if !(util::runs("dockerd", "--version") && util::runs("docker", "--version")) {
            return None;
        }
        let dir = tempdir();
        let (base, parent) = named(&dir);
        // Not the machine's /etc/docker/daemon.json.
        std::fs::write(base.join("daemon.json"), "{}\n").expect("write daemon.json");
        let log = std::fs::File::create(base.join("dockerd.log")).expect("create dockerd.log");
        let mut host = OsString::from("unix://");
        host.push(base.join("sock"));
        let daemon = Command::new("dockerd")
            .arg("--config-file")
            .arg(base.join("daemon.json"))
            .arg("--data-root")
            .arg(base.join("data"))
            .arg("--exec-root")
            .arg(base.join("exec"))
            .arg("--pidfile")
            .arg(base.join("pid"))
            .arg("-H")
            .arg(&host)
            .args(["--iptables=false", "--ip6tables=false", "--bridge=none"])
            .args(["--storage-driver", "vfs"])
            .args(["--exec-opt", "native.cgroupdriver=cgroupfs"])
            .args(["--containerd-namespace", &parent])
            .args([
                "--containerd-plugins-namespace",
                &format!("{parent}-plugins"),
            ])
            .args(["--cgroup-parent", &format!("/{parent}/docker")])
            .env_remove("DOCKER_HOST")
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the dockerd.log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start dockerd: {e}"));
        let cli = Cli {
            program: "docker",
            env: vec![("DOCKER_HOST", host)],
        };
        let mut docker = Docker {
            dir,
            base,
            parent,
            daemon,
            cli,
        };
        docker.wait_ready();
        Some(docker)
    }

    /// Polls until `docker info` answers on the daemon's socket; panics with its log when the
    /// daemon exits or [`DEADLINE`] passes first.
    fn wait_ready(&mut self) {
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.daemon.try_wait() {
                panic!(
                    "dockerd exited ({status}) before it answered\n{}",
                    self.log()
                );
            }
            if self.base.join("sock").exists()
                && self.cli.output(&["info".as_ref()]).status.success()
            {
                return;
            }
            if start.elapsed() > DEADLINE {
                panic!("dockerd did not answer within {DEADLINE:?}\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.base.join("dockerd.log")).unwrap_or_default()
    }

    /// `docker rm -f` every container of this daemon: all are the test's own.
    fn remove_containers(&self) {
        let out = self
            .cli
            .output(&["ps".as_ref(), "-aq".as_ref(), "--no-trunc".as_ref()]);
        let list = String::from_utf8_lossy(&out.stdout).into_owned();
        let ids: Vec<&OsStr> = list.split_whitespace().map(OsStr::new).collect();
        if !out.status.success() || ids.is_empty() {
            return;
        }
        let mut args: Vec<&OsStr> = vec!["rm".as_ref(), "-f".as_ref()];
        args.extend(ids);
        let out = self.cli.output(&args);
        if !out.status.success() {
            eprintln!("docker rm -f: {}", String::from_utf8_lossy(&out.stderr));
        }
    }

    /// Stops the daemon the test started (SIGTERM to its pid, which its pid file must name too)
    /// and waits for it and the containerd it started (by containerd's pid file, if that
    /// daemon is its parent) to end; SIGKILL to both after [`CLEANUP`]. The daemon is signalled
    /// only while it is not reaped, so its pid cannot be another's.
    fn stop_daemon(&mut self) {
        let ours = self.daemon.id() as i32;
        let named = pid_file(&self.base.join("pid"));
        if named.is_some_and(|p| p != ours) {
            eprintln!(
                "dockerd's pid file names {named:?}, not the daemon the test started ({ours})"
            );
        }
        let containerd = pid_file(&self.base.join("exec/containerd/containerd.pid"))
            .filter(|c| children_of(ours).contains(c));
        if let Ok(None) = self.daemon.try_wait() {
            let _ = kill(Pid::from_raw(ours), Signal::SIGTERM);
        }
        if self.ended(containerd, CLEANUP) {
            return;
        }
        eprintln!(
            "dockerd did not stop within {CLEANUP:?}: SIGKILL\n{}",
            self.log()
        );
        if let Some(c) = containerd.filter(|&c| !gone(c)) {
            let _ = kill(Pid::from_raw(c), Signal::SIGKILL);
        }
        let _ = self.daemon.kill();
        self.ended(containerd, CLEANUP);
    }

    /// Polls until the daemon (reaped) and `containerd` have ended, at most `within`.
    fn ended(&mut self, containerd: Option<i32>, within: Duration) -> bool {
        let start = Instant::now();
        loop {
            let daemon_gone = !matches!(self.daemon.try_wait(), Ok(None));
            if daemon_gone && containerd.is_none_or(gone) {
                return true;
            }
            if start.elapsed() > within {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Detaches whatever the daemon left mounted in its directory (its data root is a mount of
    /// its own while it runs), deepest first, so that removing the directory stays inside it.
    fn unmount_left(&self) {
        let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
            return;
        };
        let mut points: Vec<&str> = info
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|p| Path::new(p).starts_with(&self.base))
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in points {
            let out = Command::new("umount").args(["-l", p]).output();
            if !out.is_ok_and(|o| o.status.success()) {
                eprintln!("umount -l {p} failed");
            }
        }
    }
}

impl Drop for Docker {
    fn drop(&mut self) {
        self.remove_containers();
        self.stop_daemon();
        remove_cgroups(&self.parent);
        self.unmount_left();
        // Then `dir`, dropped, removes the data (the vfs layers) with everything else.
    }
}

/// The pid a daemon wrote in `path`.
fn pid_file(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Whether `pid` has ended (no longer in /proc, or a zombie).
fn gone(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| {
        s.rsplit_once(')')
            .is_none_or(|(_, rest)| rest.trim_start().starts_with('Z'))
    })
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

/// Removes the cgroup `/NAME` (a `relwatch-test-*` name) and everything below it in every
/// hierarchy (each directory under /sys/fs/cgroup, or /sys/fs/cgroup itself on a unified-only
/// host), children first, polling for at most [`CLEANUP`]: a runtime's helpers (conmon, a
/// containerd shim) leave their cgroups a moment after the container ends.
fn remove_cgroups(name: &str) {
    if !name.starts_with("relwatch-test-") {
        eprintln!("not removing the cgroups {name:?}: not the test's");
        return;
    }
    let start = Instant::now();
    loop {
        let mut found = Vec::new();
        let top = Path::new("/sys/fs/cgroup");
        let hierarchies = std::fs::read_dir(top).into_iter().flatten().flatten();
        for h in hierarchies.map(|h| h.path()).chain([top.to_path_buf()]) {
            collect_dirs(&h.join(name), &mut found);
        }
        let left: Vec<PathBuf> = found
            .into_iter()
            .filter(|d| std::fs::remove_dir(d).is_err())
            .collect();
        if left.is_empty() {
            return;
        }
        if start.elapsed() > CLEANUP {
            eprintln!("cgroups left behind: {left:?}");
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
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

/// The four steps with a container of `cli` (image built in `dir`, started with `options`) on
/// a bind of `current`: `old-release` after the switch and `deleted-release` after the cleanup,
/// both naming the container and `PROGRAM restart ID`; `in-use` lists its process; the printed
/// remedy, run as printed in the runtime's environment, mounts the current release again (the
/// new process's cwd is release 2's directory) and the next check is OK.
fn restarted_by_its_remedy(cli: &Cli, dir: &Path, options: &[&OsStr]) {
    cli.import_image(dir);
    let root = DeployRoot::new();
    let r1 = root.release("1");
    root.switch("1");
    let id = cli.start(options, &root.current());
    let pid = cli.pid(&id);
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
    let r2 = root.release("2");
    root.switch("2");
    let (run, doc) = check_now(&root);
    assert_eq!(run.code, 1, "an old release is a warning\n{run}");
    let remedy = [cli.program, "restart", id.as_str()];
    let owner = (cli.program, id.as_str());
    names_the_container((&doc, &run), "old-release", pid, owner, &remedy);

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
    names_the_container((&doc, &run), "deleted-release", pid, owner, &remedy);

    let ran = run_fixes_with(&doc, &[cli.program], &cli.env);
    assert_eq!(ran, [remedy.map(str::to_owned).to_vec()]);
    let doc = until_ok(&root);
    let again = cli.pid(&id);
    assert_ne!(again, pid, "{} restart started a new process", cli.program);
    let cwd = std::fs::metadata(format!("/proc/{again}/cwd")).expect("the new process's cwd");
    let release = std::fs::metadata(&r2).expect("release 2");
    assert_eq!(
        (cwd.dev(), cwd.ino()),
        (release.dev(), release.ino()),
        "the restart mounted release 2 at /app"
    );
    assert!(
        process(&doc, again)
            .is_some_and(|p| p["release_state"] == "current" && p["release"].as_str() == Some("2")),
        "the restarted container's pid {again} is on release 2\n{doc:#}"
    );
}

/// A Podman container with a bind mount of `current`, named `libpod-ID` under the test's
/// `--cgroup-parent` and restarted by `podman restart ID` (see [`restarted_by_its_remedy`]).
#[test]
fn a_podman_container_on_a_bind_of_current_is_restarted_by_its_remedy() {
    let Some(podman) = Podman::new() else {
        return;
    };
    let parent = format!("/{}", podman.parent);
    let options = ["--cgroup-parent".as_ref(), parent.as_ref()];
    restarted_by_its_remedy(&podman.cli, podman.dir.path(), &options);
}

/// A Docker container (a private dockerd) with a bind mount of `current`, its cgroup
/// `/relwatch-test-…/docker/ID`, restarted by `docker restart ID` run with the daemon's
/// `DOCKER_HOST` (see [`restarted_by_its_remedy`]).
#[test]
fn a_docker_container_on_a_bind_of_current_is_restarted_by_its_remedy() {
    let Some(docker) = Docker::start() else {
        return;
    };
    restarted_by_its_remedy(&docker.cli, docker.dir.path(), &[]);
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
