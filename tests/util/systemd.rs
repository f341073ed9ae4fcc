//! A real systemd for the tests: [`Container`] boots systemd as PID 1 of a `systemd-nspawn`
//! container over the host's own `/usr` (a throwaway tmpfs root, `--volatile=yes`), started in
//! cgroups of the test's own so that its `payload` cgroups land below them and two containers
//! never collide. Commands run inside through `nsenter`; dropping the guard halts the container
//! (SIGTERM to nspawn, by pid), waits for it and removes the cgroups, also when the test panics.
//! Needs root and the packages `systemd-container` and `dbus` (scripts/test-deps installs them).

use std::ffi::{OsStr, OsString};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::{children_of, comm, run_program, skip, tempdir, Cgroup, Run, DEADLINE};

/// Where the built `relwatch` binary is inside every container.
pub const RELWATCH: &str = "/opt/relw/relwatch";

/// Where [`Container::boot_for_packages`] binds the host's dpkg database (read-only).
const HOST_DPKG: &str = "/opt/host-dpkg";

/// How long the container may take to halt after SIGTERM before it is killed.
const HALT_DEADLINE: Duration = Duration::from_secs(30);

/// A booted container: systemd is PID 1 inside, and the built `relwatch` is at [`RELWATCH`].
pub struct Container {
    nspawn: std::process::Child,
    /// The container's systemd, as a pid of the host (and of the test).
    init: i32,
    /// One cgroup per mounted hierarchy (`name=systemd` v1 when mounted, and v2); dropped after
    /// the container is gone and the cgroups nspawn made below them are removed.
    cgroups: Vec<Cgroup>,
    /// nspawn's console (stdout and stderr), for messages when something goes wrong.
    log: PathBuf,
    _logdir: tempfile::TempDir,
}

impl Container {
    /// Boots a container with each `(host, inside)` directory of `binds` bound writable, and
    /// waits (polling, with a deadline) until systemd inside has finished booting. `None`, with
    /// a message, when this host cannot run one (not root, `systemd-nspawn` missing); under CI
    /// that fails the test instead (see [`skip`]).
    pub fn boot(binds: &[(&Path, &str)]) -> Option<Container> {
        Self::boot_with(binds, &[])
    }

    /// A container in which packages install: a writable layer over the host's `/usr`
    /// (`--overlay=/usr::/usr`, thrown away with the container: the host is untouched) and a
    /// copy of the host's dpkg database in `/var/lib/dpkg`, so `dpkg -i` knows what is installed.
    /// The copy's `statoverride` is emptied: it names groups the container's `/etc` lacks.
    /// The host's `/usr/sbin/policy-rc.d`, if any, is still there: see [`Self::remove`].
    pub fn boot_for_packages(binds: &[(&Path, &str)]) -> Option<Container> {
        let host_dpkg = format!("--bind-ro=/var/lib/dpkg:{HOST_DPKG}");
        let container = Self::boot_with(binds, &["--overlay=/usr::/usr", &host_dpkg])?;
        container.ok([
            "mkdir",
            "-p",
            "/var/lib/dpkg",
            "/var/log",
            "/var/cache/debconf",
        ]);
        container.ok(["cp", "-a", &format!("{HOST_DPKG}/."), "/var/lib/dpkg/"]);
        container.ok(["truncate", "-s", "0", "/var/lib/dpkg/statoverride"]);
        // runit (a test dependency) processes its file trigger on /usr/bin and
        // /lib/systemd/system with its /etc/sv and users, which the container's /etc lacks:
        // in the copy, it takes no interest in what a test installs.
        container.ok(["sed", "-i", "/ runit\\//d", "/var/lib/dpkg/triggers/File"]);
        Some(container)
    }

    /// Removes `path` inside the container (in the `/usr` overlay for a path under `/usr`).
    pub fn remove(&self, path: &str) {
        self.ok(["rm", "-f", path]);
    }

    /// [`Self::boot`] with more arguments for systemd-nspawn.
    fn boot_with(binds: &[(&Path, &str)], extra: &[&str]) -> Option<Container> {
        if !nix::unistd::geteuid().is_root() {
            skip("booting a systemd container needs root");
            return None;
        }
        if !Path::new("/usr/bin/systemd-nspawn").exists()
            || !Path::new("/usr/bin/dbus-daemon").exists()
        {
            skip("systemd-nspawn or dbus-daemon missing: run scripts/test-deps (packages systemd-container, dbus)");
            return None;
        }
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "relwatch-test-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let cgroups = Self::cgroups(&name)?;
        let logdir = tempdir();
        let log = logdir.path().join("console");
        let nspawn = Self::spawn(&name, &cgroups, binds, extra, &log);
        let nspawn_pid = i32::try_from(nspawn.id()).expect("pid fits in i32");
        let mut container = Container {
            nspawn,
            init: 0,
            cgroups,
            log,
            _logdir: logdir,
        };
        container.init = container.poll("the container's systemd to start", |_| {
            children_of(nspawn_pid)
                .into_iter()
                .find(|&pid| comm(pid).as_deref() == Some("systemd"))
        });
        container.wait_booted();
        Some(container)
    }

    /// A cgroup named `name` under each mounted systemd hierarchy.
    fn cgroups(name: &str) -> Option<Vec<Cgroup>> {
        let mut out = vec![Cgroup::create(true, name)?];
        if Cgroup::mount_of(false).is_some() {
            out.push(Cgroup::create(false, name)?);
        }
        Some(out)
    }

    /// Starts nspawn through a shell that first moves itself into `cgroups` (so nothing runs
    /// in the test's own process between fork and exec).
    fn spawn(
        name: &str,
        cgroups: &[Cgroup],
        binds: &[(&Path, &str)],
        extra: &[&str],
        log: &Path,
    ) -> std::process::Child {
        let mut script = String::new();
        for (i, _) in cgroups.iter().enumerate() {
            script.push_str(&format!("echo $$ > \"$CGROUP{i}/cgroup.procs\" && "));
        }
        script.push_str("exec systemd-nspawn \"$@\"");
        let mut args: Vec<OsString> = [
            "--register=no",
            "--keep-unit",
            "-D",
            "/",
            "--volatile=yes",
            "-M",
            name,
            "--console=pipe",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        let mut bind = OsString::from("--bind-ro=");
        bind.push(env!("CARGO_BIN_EXE_relwatch"));
        bind.push(format!(":{RELWATCH}"));
        args.push(bind);
        // The tmpfs /etc has no PAM configuration: user@UID.service (`systemctl --user`) needs it.
        for dir in ["/etc/pam.d", "/etc/security"] {
            if Path::new(dir).is_dir() {
                args.push(format!("--bind-ro={dir}").into());
            }
        }
        for (host, inside) in binds {
            let mut bind = OsString::from("--bind=");
            bind.push(host.as_os_str());
            bind.push(format!(":{inside}"));
            args.push(bind);
        }
        args.extend(extra.iter().map(OsString::from));
        args.push("-b".into());
        let console = fs::File::create(log).expect("create the container's console log");
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(script).arg("sh").args(&args);
        for (i, cg) in cgroups.iter().enumerate() {
            cmd.env(format!("CGROUP{i}"), &cg.leaf);
        }
        cmd.stdin(Stdio::null())
            .stdout(console.try_clone().expect("duplicate the log descriptor"))
            .stderr(console)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn systemd-nspawn {args:?}: {e}"))
    }

    /// Polls until `systemctl is-system-running --wait` inside answers that boot is over
    /// (`running`, or `degraded` when a unit of the host's packages fails in the bare container).
    fn wait_booted(&mut self) {
        self.poll("systemd in the container to finish booting", |c| {
            let run = c.run(["systemctl", "is-system-running", "--wait"]);
            match run.stdout.trim() {
                "running" | "degraded" => Some(()),
                "initializing" | "starting" | "" | "offline" | "unknown" => None,
                other => panic!(
                    "systemd in the container is {other}\n{run}\n{}",
                    c.console()
                ),
            }
        });
    }

    /// Polls `f` until it returns `Some` (also checking that nspawn is still alive), panicking
    /// with `what` and the container's console after [`DEADLINE`].
    pub fn poll<T>(&mut self, what: &str, mut f: impl FnMut(&mut Self) -> Option<T>) -> T {
        let start = Instant::now();
        loop {
            if let Some(v) = f(self) {
                return v;
            }
            if let Ok(Some(status)) = self.nspawn.try_wait() {
                panic!(
                    "systemd-nspawn exited ({status}) while waiting for {what}\n{}",
                    self.console()
                );
            }
            if start.elapsed() > DEADLINE {
                panic!(
                    "timed out after {DEADLINE:?} waiting for {what}\n{}",
                    self.console()
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The container's systemd as a host pid.
    pub fn init_pid(&self) -> i32 {
        self.init
    }

    /// Runs `argv` inside the container (every namespace of its PID 1), without a shell, with
    /// a deadline; returns its exit code and output.
    pub fn run<I, S>(&self, argv: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut args: Vec<OsString> = vec!["-t".into(), self.init.to_string().into(), "-a".into()];
        args.extend(argv.into_iter().map(|a| a.as_ref().to_os_string()));
        run_program("nsenter", args)
    }

    /// Runs `argv` inside and panics, with its output, unless it exits 0; returns its stdout.
    pub fn ok<I, S>(&self, argv: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let run = self.run(argv);
        assert_eq!(run.code, 0, "a command in the container failed\n{run}");
        run.stdout
    }

    /// Runs the built `relwatch ARGS...` inside the container.
    pub fn relwatch<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut argv: Vec<OsString> = vec![RELWATCH.into()];
        argv.extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self.run(argv)
    }

    /// Writes `contents` to `path` (absolute, inside the container), through the container's
    /// root as the host sees it (`/proc/PID/root`), creating parent directories.
    pub fn write(&self, path: &str, contents: impl AsRef<[u8]>) {
        let host = self.host_path(path);
        if let Some(parent) = host.parent() {
            fs::create_dir_all(parent)
                .unwrap_or_else(|e| panic!("create {} in the container: {e}", parent.display()));
        }
        fs::write(&host, contents).unwrap_or_else(|e| panic!("write {path} in the container: {e}"));
    }

    /// `path` inside the container, as the host reaches it.
    pub fn host_path(&self, path: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root{path}", self.init))
    }

    /// Installs `/etc/systemd/system/NAME` with `text`, reloads systemd and starts the unit.
    pub fn start_unit(&self, name: &str, text: &str) {
        self.write(&format!("/etc/systemd/system/{name}"), text);
        self.ok(["systemctl", "daemon-reload"]);
        self.ok(["systemctl", "start", name]);
    }

    /// The main pid of `unit` of the service manager `systemctl` talks to (e.g. `["systemctl"]`
    /// or `["systemctl", "--user", "-M", "deploy@"]`), as the container numbers it (`0` when it
    /// has none).
    pub fn main_pid(&self, systemctl: &[&str], unit: &str) -> i32 {
        let mut argv = systemctl.to_vec();
        argv.extend(["show", "--property=MainPID", "--value", unit]);
        let out = self.ok(argv);
        out.trim()
            .parse()
            .unwrap_or_else(|e| panic!("MainPID of {unit} is not a number ({out:?}): {e}"))
    }

    /// The children of `pid` (a container pid), as the container numbers them.
    pub fn children(&self, pid: i32) -> Vec<i32> {
        let run = self.run(["pgrep", "-P", &pid.to_string()]);
        let mut out: Vec<i32> = run
            .stdout
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        out.sort_unstable();
        out
    }

    /// The last lines nspawn and the container's console printed.
    pub fn console(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        format!("--- container console (last lines) ---\n{tail}")
    }

    /// Halts the container: SIGTERM to nspawn (systemd inside shuts down), then waits; after
    /// [`HALT_DEADLINE`], SIGKILL to the container's PID 1 (which ends every process of its pid
    /// namespace) and to nspawn.
    fn halt(&mut self) {
        let nspawn = Pid::from_raw(i32::try_from(self.nspawn.id()).expect("pid fits in i32"));
        let _ = kill(nspawn, Signal::SIGTERM);
        let start = Instant::now();
        while start.elapsed() < HALT_DEADLINE {
            if !matches!(self.nspawn.try_wait(), Ok(None)) {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        eprintln!("the container did not halt within {HALT_DEADLINE:?}: killing it");
        if self.init > 0 {
            let _ = kill(Pid::from_raw(self.init), Signal::SIGKILL);
        }
        let _ = kill(nspawn, Signal::SIGKILL);
        let _ = self.nspawn.wait();
    }
}

/// Removes every cgroup directory below `dir` (not `dir` itself), deepest first, retrying for a
/// moment while the last processes leave.
fn remove_below(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for sub in entries.flatten().filter(|e| e.path().is_dir()) {
        let sub = sub.path();
        remove_below(&sub);
        let deadline = Instant::now() + Duration::from_secs(5);
        while fs::remove_dir(&sub).is_err() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        self.halt();
        for cg in &self.cgroups {
            remove_below(&cg.leaf);
        }
        // The `cgroups` field drops next: it removes the cgroups themselves.
    }
}
