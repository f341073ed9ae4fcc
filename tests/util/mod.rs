//! Hermetic harness for the `relwatch` integration tests.
//!
//! * [`DeployRoot`]: a deploy root (`releases/`, `current`) inside its own temporary directory,
//!   switched atomically the way deploy tools do it.
//! * [`Child`]: a real process whose whole tree is killed by pid and reaped on drop, also when
//!   the test panics.
//! * [`relwatch`]: runs the built binary with a clean environment and returns its exit code and
//!   output; [`Run::json`] and [`Run::report`] parse the JSON document (the latter into structs
//!   that follow `docs/JSON.md` and refuse unknown fields).
//! * Clock helpers that poll (never sleep blindly) until a process start time is clearly before
//!   or after a switch.

// Each test binary uses a different subset of the helpers.
#![allow(dead_code)]

pub mod fixes;
pub mod pm2;
pub mod promtool;
pub mod systemd;

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{self, Read};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::time::{clock_gettime, ClockId};
use nix::unistd::{sysconf, Pid, SysconfVar};
use serde::Deserialize;
use serde_json::Value;

/// How long any poll may take before the test gives up.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// How long one run of the binary may take.
pub const RUN_DEADLINE: Duration = Duration::from_secs(60);

/// Margin, in clock ticks, between a process start and a switch (start times have one-tick
/// resolution).
pub const MARGIN_TICKS: u64 = 3;

/// Polls `f` until it returns `Some`, panicking with `what` after [`DEADLINE`].
pub fn poll<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        if start.elapsed() > DEADLINE {
            panic!("timed out after {DEADLINE:?} waiting for {what}");
        }
        thread::sleep(Duration::from_millis(2));
    }
}

// ---------------------------------------------------------------------------------------------
// Deploy roots
// ---------------------------------------------------------------------------------------------

/// A test that cannot run here. Under CI (`CI` set, and not to `false`) it fails: a machine that
/// lost root or a package must not pass by skipping. Elsewhere it says so on stderr, and the
/// caller returns.
pub fn skip(reason: &str) {
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false") {
        panic!("cannot run this test here, and CI is set: {reason}");
    }
    eprintln!("skipped: {reason}");
}

/// Whether `program arg` (`--version`, say) runs here; a missing program is [`skip`]ped, so
/// under CI it fails the test.
pub fn runs(program: &str, arg: &str) -> bool {
    let ok = std::process::Command::new(program)
        .arg(arg)
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        skip(&format!(
            "{program} is not installed (scripts/test-deps installs it)"
        ));
    }
    ok
}

/// `dir/supervisord.conf` for a supervisord of a test's own: in the foreground, its log in
/// `dir/supervisord.log`, its control socket `dir/supervisor.sock` (so `supervisorctl -c` of
/// that file reaches it, never the machine's), then `programs` (`[program:NAME]` sections).
pub fn supervisord_conf(dir: &Path, programs: &str) -> PathBuf {
    let conf = dir.join("supervisord.conf");
    fs::write(
        &conf,
        format!(
            "[supervisord]\nnodaemon=true\nlogfile={t}/supervisord.log\npidfile={t}/supervisord.pid\nchildlogdir={t}\n\
[unix_http_server]\nfile={t}/supervisor.sock\n\
[rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\
[supervisorctl]\nserverurl=unix://{t}/supervisor.sock\n{programs}",
            t = dir.display()
        ),
    )
    .expect("write supervisord.conf");
    conf
}

/// A new temporary directory with a name that is not hidden (so discovery does not skip it).
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("relwatch-test-")
        .tempdir()
        .expect("create temporary directory")
}

/// Replaces (or creates) the symlink `link` with one to `target`, atomically, the way Deployer
/// and Capistrano do (`ln -s target link.tmp-XXX && mv -T link.tmp-XXX link`).
pub fn atomic_symlink(target: impl AsRef<Path>, link: impl AsRef<Path>) {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let link = link.as_ref();
    let mut tmp_name = link
        .file_name()
        .expect("link has a file name")
        .to_os_string();
    tmp_name.push(format!(
        ".tmp-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let tmp = link.with_file_name(tmp_name);
    symlink(target.as_ref(), &tmp).unwrap_or_else(|e| panic!("symlink {}: {e}", tmp.display()));
    fs::rename(&tmp, link).unwrap_or_else(|e| panic!("rename over {}: {e}", link.display()));
}

/// A deploy root `TMP/NAME` with `releases/` and a `current` link, removed on drop.
pub struct DeployRoot {
    tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Default for DeployRoot {
    fn default() -> Self {
        Self::new()
    }
}

impl DeployRoot {
    /// A deploy root named `myapp` (the app name) with an empty `releases/`.
    pub fn new() -> Self {
        Self::named("myapp")
    }

    /// A deploy root named `name` with an empty `releases/`.
    pub fn named(name: &str) -> Self {
        let tmp = tempdir();
        // Canonical so that the paths the processes show in /proc are the ones we build.
        let base = fs::canonicalize(tmp.path()).expect("canonicalize temporary directory");
        let root = base.join(name);
        fs::create_dir_all(root.join("releases")).expect("create releases/");
        DeployRoot { tmp, root }
    }

    /// The deploy root.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// The temporary directory that holds the deploy root (canonical).
    pub fn tmp(&self) -> PathBuf {
        self.root.parent().expect("root has a parent").to_path_buf()
    }

    /// The app name relwatch should report (the root's directory name).
    pub fn name(&self) -> String {
        self.root
            .file_name()
            .expect("root has a name")
            .to_string_lossy()
            .into_owned()
    }

    pub fn releases_dir(&self) -> PathBuf {
        self.root.join("releases")
    }

    pub fn current(&self) -> PathBuf {
        self.root.join("current")
    }

    /// The path of release `name` (which may not exist).
    pub fn release_path(&self, name: impl AsRef<OsStr>) -> PathBuf {
        self.releases_dir().join(name.as_ref())
    }

    /// Creates `releases/NAME` (any bytes but `/` and NUL) and returns its path.
    pub fn release(&self, name: impl AsRef<OsStr>) -> PathBuf {
        let dir = self.release_path(name);
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        dir
    }

    /// Writes `contents` to `rel` under the root (creating parent directories).
    pub fn write(&self, rel: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.root.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("create parent directory");
        }
        fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }

    /// Writes an executable shell script `releases/RELEASE/NAME`.
    pub fn script(&self, release: impl AsRef<OsStr>, name: &str, body: &str) -> PathBuf {
        let path = self.release(release).join(name);
        fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod script");
        path
    }

    /// Atomically points `current` at `releases/NAME` with a relative target (Deployer).
    pub fn switch(&self, name: impl AsRef<OsStr>) {
        atomic_symlink(Path::new("releases").join(name.as_ref()), self.current());
    }

    /// Atomically points `current` at the absolute path of `releases/NAME` (Capistrano).
    pub fn switch_absolute(&self, name: impl AsRef<OsStr>) {
        atomic_symlink(self.release_path(name), self.current());
    }

    /// Atomically points `current` at an arbitrary target (outside, dangling, ...).
    pub fn point_current_at(&self, target: impl AsRef<Path>) {
        atomic_symlink(target, self.current());
    }

    /// Deletes `releases/NAME` the way the cleanup step does (`rm -rf`).
    pub fn delete(&self, name: impl AsRef<OsStr>) {
        let dir = self.release_path(name);
        fs::remove_dir_all(&dir).unwrap_or_else(|e| panic!("remove {}: {e}", dir.display()));
    }

    /// The rest of a Capistrano layout: `repo/` (a bare mirror), `shared/` and `revisions.log`
    /// naming every release in `releases`.
    pub fn capistrano_extras(&self, releases: &[&str]) {
        fs::create_dir_all(self.root.join("repo/objects")).expect("create repo/");
        self.write("repo/HEAD", "ref: refs/heads/main\n");
        fs::create_dir_all(self.root.join("shared/log")).expect("create shared/");
        fs::create_dir_all(self.root.join("shared/tmp/pids")).expect("create shared/");
        let log: String = releases
            .iter()
            .map(|r| format!("Branch main (at 0123abc) deployed as release {r} by deploy\n"))
            .collect();
        self.write("revisions.log", log);
    }

    /// The rest of a Deployer layout: `.dep/latest_release`, `.dep/releases_log` and `shared/`.
    pub fn deployer_extras(&self, releases: &[&str]) {
        let latest = releases.last().copied().unwrap_or_default();
        self.write(".dep/latest_release", latest);
        let log: String = releases
            .iter()
            .map(|r| {
                format!(
                    "{{\"created_at\":\"2024-01-01T12:00:00+0000\",\"release_name\":\"{r}\",\"user\":\"deploy\",\"target\":\"HEAD\"}}\n"
                )
            })
            .collect();
        self.write(".dep/releases_log", log);
        fs::create_dir_all(self.root.join("shared/storage")).expect("create shared/");
        self.write("shared/.env", "APP_ENV=production\n");
    }

    /// Keeps the temporary directory alive as long as the root.
    pub fn tempdir(&self) -> &tempfile::TempDir {
        &self.tmp
    }
}

// ---------------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------------

/// The fields of `/proc/PID/stat` after the `(comm)` field: index 0 is field 3 (state).
fn stat_fields(pid: i32) -> Option<(String, Vec<String>)> {
    let bytes = fs::read(format!("/proc/{pid}/stat")).ok()?;
    let open = bytes.iter().position(|&b| b == b'(')?;
    let close = bytes.iter().rposition(|&b| b == b')')?;
    let comm = String::from_utf8_lossy(&bytes[open + 1..close]).into_owned();
    let rest = String::from_utf8_lossy(&bytes[close + 1..]);
    Some((comm, rest.split_whitespace().map(str::to_owned).collect()))
}

/// Field `n` (1-based, as in proc(5)) of `/proc/PID/stat`, for `n >= 3`.
fn stat_field(pid: i32, n: usize) -> Option<String> {
    stat_fields(pid).and_then(|(_, f)| f.get(n - 3).cloned())
}

/// The kernel `comm` of `pid`.
pub fn comm(pid: i32) -> Option<String> {
    stat_fields(pid).map(|(c, _)| c)
}

/// The start time of `pid` in clock ticks since boot (field 22 of `/proc/PID/stat`).
pub fn start_ticks(pid: i32) -> u64 {
    stat_field(pid, 22)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("cannot read the start time of pid {pid}"))
}

/// Clock ticks per second (`USER_HZ`).
pub fn clk_tck() -> u64 {
    sysconf(SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .and_then(|t| u64::try_from(t).ok())
        .unwrap_or(100)
}

/// `CLOCK_BOOTTIME` in clock ticks, the clock of process start times.
pub fn boottime_ticks() -> u64 {
    let ts = clock_gettime(ClockId::CLOCK_BOOTTIME).expect("clock_gettime(CLOCK_BOOTTIME)");
    let tck = clk_tck();
    let secs = u64::try_from(ts.tv_sec()).expect("non-negative boot time");
    let nsec = u64::try_from(ts.tv_nsec()).expect("non-negative nanoseconds");
    secs * tck + nsec * tck / 1_000_000_000
}

/// Polls the clock until it is at least [`MARGIN_TICKS`] past `ticks`.
pub fn wait_ticks_past(ticks: u64) {
    poll("the boot clock to move past a process start", || {
        (boottime_ticks() >= ticks + MARGIN_TICKS).then_some(())
    });
}

/// Waits until `pid` started clearly (by [`MARGIN_TICKS`]) before now: call before a switch so
/// that the process counts as started before it.
pub fn wait_started_before_now(pid: i32) {
    wait_ticks_past(start_ticks(pid));
}

/// Waits [`MARGIN_TICKS`] from now: call after a switch, before spawning a process that must
/// count as started after it.
pub fn wait_after_switch() {
    wait_ticks_past(boottime_ticks());
}

/// Every live pid whose parent is `ppid` (scanning `/proc/*/stat`).
pub fn children_of(ppid: i32) -> Vec<i32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out: Vec<i32> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| stat_field(pid, 4).and_then(|p| p.parse::<i32>().ok()) == Some(ppid))
        .collect();
    out.sort_unstable();
    out
}

/// Every descendant of `pid`, deepest first, from one scan of `/proc` (a scan per child made
/// ending a master with hundreds of workers take seconds).
fn descendants_deepest_first(pid: i32) -> Vec<i32> {
    let mut children: std::collections::HashMap<i32, Vec<i32>> = Default::default();
    if let Ok(dir) = fs::read_dir("/proc") {
        for child in dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok()) {
            if let Some(parent) = stat_field(child, 4).and_then(|p| p.parse::<i32>().ok()) {
                children.entry(parent).or_default().push(child);
            }
        }
    }
    // `seen`: a pid reused during the scan could make the parent links loop.
    fn walk(
        pid: i32,
        children: &std::collections::HashMap<i32, Vec<i32>>,
        seen: &mut std::collections::HashSet<i32>,
        out: &mut Vec<i32>,
    ) {
        for &child in children.get(&pid).map(Vec::as_slice).unwrap_or_default() {
            if seen.insert(child) {
                walk(child, children, seen, out);
                out.push(child);
            }
        }
    }
    let mut out = Vec::new();
    walk(pid, &children, &mut [pid].into(), &mut out);
    out
}

/// A spawned process tree: on drop, every descendant and then the process itself are killed
/// with SIGKILL by pid, and the process is reaped.
pub struct Child {
    inner: std::process::Child,
    pid: i32,
}

impl Child {
    /// Spawns `cmd` with null stdio (so it never holds the harness' pipes).
    pub fn spawn(cmd: &mut Command) -> Child {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let inner = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        let pid = i32::try_from(inner.id()).expect("pid fits in i32");
        Child { inner, pid }
    }

    /// `sleep 1000` with its cwd in `dir`.
    pub fn sleep_in(dir: impl AsRef<Path>) -> Child {
        Child::spawn(Command::new("sleep").arg("1000").current_dir(dir))
    }

    /// A master (`sh`) with `workers` forked `sleep 1000` workers, all with their cwd in `dir`.
    /// Returns once every worker runs `sleep`.
    pub fn master_with_workers(dir: impl AsRef<Path>, workers: usize) -> Child {
        let script = format!("{}wait", "sleep 1000 & ".repeat(workers));
        let master = Child::spawn(Command::new("sh").arg("-c").arg(script).current_dir(dir));
        master.wait_for_children(workers, "sleep");
        master
    }

    /// Copies `/bin/sleep` into `dir` and runs that copy (`DIR/sleep 1000`) with its cwd at `/`,
    /// so that only the executable is inside `dir`.
    pub fn exe_copy_in(dir: impl AsRef<Path>) -> Child {
        Child::exe_copy_named(dir, "sleep")
    }

    /// Like [`Child::exe_copy_in`], with the copy named `name`.
    pub fn exe_copy_named(dir: impl AsRef<Path>, name: &str) -> Child {
        let exe = dir.as_ref().join(name);
        fs::copy("/bin/sleep", &exe).expect("copy /bin/sleep");
        fs::set_permissions(&exe, fs::Permissions::from_mode(0o755)).expect("chmod sleep copy");
        // Another test thread may fork while our write descriptor of the copy is open, and its
        // child holds that descriptor until it execs: exec then fails with ETXTBSY for a moment.
        poll("the copied executable to stop being busy", || {
            let mut cmd = Command::new(&exe);
            cmd.arg("1000")
                .current_dir("/")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            match cmd.spawn() {
                Ok(inner) => {
                    let pid = i32::try_from(inner.id()).expect("pid fits in i32");
                    Some(Child { inner, pid })
                }
                Err(e) if e.raw_os_error() == Some(nix::errno::Errno::ETXTBSY as i32) => None,
                Err(e) => panic!("spawn {}: {e}", exe.display()),
            }
        })
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The live children of this process.
    pub fn children(&self) -> Vec<i32> {
        children_of(self.pid)
    }

    /// Waits until this process has `n` children whose comm is `comm` (so they have exec'd),
    /// and returns their pids.
    pub fn wait_for_children(&self, n: usize, comm_is: &str) -> Vec<i32> {
        poll(
            &format!("{n} `{comm_is}` children of pid {}", self.pid),
            || {
                let kids: Vec<i32> = self
                    .children()
                    .into_iter()
                    .filter(|&k| comm(k).as_deref() == Some(comm_is))
                    .collect();
                (kids.len() == n).then_some(kids)
            },
        )
    }

    /// Start time in clock ticks since boot.
    pub fn start_ticks(&self) -> u64 {
        start_ticks(self.pid)
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        // Children first: once the parent is gone they would be reparented and hard to find.
        let descendants = descendants_deepest_first(self.pid);
        for &pid in &descendants {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        // Give their parents (a shell in `wait`) a moment to reap them: an orphaned zombie is
        // reparented to pid 1, which may never reap it.
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(2)
            && descendants
                .iter()
                .any(|pid| Path::new(&format!("/proc/{pid}")).exists())
        {
            thread::sleep(Duration::from_millis(2));
        }
        let _ = kill(Pid::from_raw(self.pid), Signal::SIGKILL);
        let _ = self.inner.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// Running the binary
// ---------------------------------------------------------------------------------------------

/// The outcome of one run of `relwatch`.
#[derive(Debug)]
pub struct Run {
    pub args: Vec<OsString>,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the built `relwatch` with `args`, a clean environment (`PATH` and `NO_COLOR=1` only) and
/// its cwd at `/`.
pub fn relwatch<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<OsString> = args
        .into_iter()
        .map(|a| a.as_ref().to_os_string())
        .collect();
    run_program(env!("CARGO_BIN_EXE_relwatch"), args)
}

/// Runs `program ARGS...` the way [`relwatch`] runs the binary: a clean environment (`PATH` and
/// `NO_COLOR=1` only), cwd `/`, no stdin, killed by pid after [`RUN_DEADLINE`]. For wrappers
/// such as `setpriv relwatch ...`.
pub fn run_program(program: impl AsRef<OsStr>, args: Vec<OsString>) -> Run {
    let mut cmd = Command::new(program);
    cmd.args(&args)
        .env_clear()
        .env(
            "PATH",
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
        )
        .env("NO_COLOR", "1")
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn relwatch");
    let mut out = child.stdout.take().expect("stdout pipe");
    let mut err = child.stderr.take().expect("stderr pipe");
    let out_reader = thread::spawn(move || {
        let mut buf = Vec::new();
        out.read_to_end(&mut buf).map(|_| buf)
    });
    let err_reader = thread::spawn(move || {
        let mut buf = Vec::new();
        err.read_to_end(&mut buf).map(|_| buf)
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for relwatch") {
            break status;
        }
        if start.elapsed() > RUN_DEADLINE {
            let _ = kill(
                Pid::from_raw(i32::try_from(child.id()).expect("pid fits in i32")),
                Signal::SIGKILL,
            );
            let _ = child.wait();
            panic!("relwatch {args:?} did not finish within {RUN_DEADLINE:?}");
        }
        thread::sleep(Duration::from_millis(5));
    };
    let stdout: io::Result<Vec<u8>> = out_reader.join().expect("stdout reader");
    let stderr: io::Result<Vec<u8>> = err_reader.join().expect("stderr reader");
    let stdout = String::from_utf8(stdout.expect("read stdout"))
        .unwrap_or_else(|e| panic!("relwatch {args:?}: stdout is not UTF-8: {e}"));
    let stderr = String::from_utf8_lossy(&stderr.expect("read stderr")).into_owned();
    let code = status.code().unwrap_or_else(|| {
        panic!("relwatch {args:?} was killed by a signal: {status:?}\n{stderr}")
    });
    Run {
        args,
        code,
        stdout,
        stderr,
    }
}

/// Runs `relwatch check --format json ARGS...`, checks that the exit code agrees with the
/// document's `exit_code` and `status`, and returns both.
pub fn check_json<I, S>(args: I) -> (Run, Value)
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut all: Vec<OsString> = vec!["check".into(), "--format".into(), "json".into()];
    all.extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
    let run = relwatch(all);
    let json = run.json();
    assert_eq!(
        json["exit_code"].as_i64(),
        Some(i64::from(run.code)),
        "`exit_code` differs from the exit code\n{run}"
    );
    let status = match run.code {
        0 => "ok",
        1 => "warning",
        2 => "critical",
        _ => "unknown",
    };
    assert_eq!(json["status"], status, "`status` vs exit code\n{run}");
    (run, json)
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "relwatch {:?} exited {}", self.args, self.code)?;
        writeln!(f, "--- stdout ---\n{}", self.stdout)?;
        write!(f, "--- stderr ---\n{}", self.stderr)
    }
}

impl Run {
    /// stdout parsed as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON: {e}\n{self}"))
    }

    /// stdout parsed into the documented schema, refusing unknown and missing fields.
    pub fn report(&self) -> Report {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout does not follow docs/JSON.md: {e}\n{self}"))
    }

    /// stdout parsed as the error document, refusing unknown and missing fields.
    pub fn error_doc(&self) -> ErrorDoc {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not the error document: {e}\n{self}"))
    }

    /// stdout and stderr together, lowercased.
    pub fn output_lower(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr).to_lowercase()
    }
}

// ---------------------------------------------------------------------------------------------
// JSON helpers on serde_json::Value
// ---------------------------------------------------------------------------------------------

/// The raw bytes of a *bytestr* value: a string, or `{"bytes": base64}`.
pub fn bytestr(v: &Value) -> Option<Vec<u8>> {
    use base64::Engine as _;
    match v {
        Value::String(s) => Some(s.as_bytes().to_vec()),
        Value::Object(m) if m.len() == 1 => {
            let b64 = m.get("bytes")?.as_str()?;
            Some(
                base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .unwrap_or_else(|e| panic!("bad base64 in {v}: {e}")),
            )
        }
        _ => None,
    }
}

/// A bytestr value equals `expected`.
pub fn bytestr_is(v: &Value, expected: impl AsRef<[u8]>) -> bool {
    bytestr(v).as_deref() == Some(expected.as_ref())
}

/// The bytes of a path.
pub fn path_bytes(p: &Path) -> Vec<u8> {
    p.as_os_str().as_bytes().to_vec()
}

/// `doc[key]` as an array (empty when absent).
pub fn array<'a>(doc: &'a Value, key: &str) -> &'a [Value] {
    doc[key].as_array().map(Vec::as_slice).unwrap_or_default()
}

/// The findings of `kind`.
pub fn findings_of<'a>(doc: &'a Value, kind: &str) -> Vec<&'a Value> {
    array(doc, "findings")
        .iter()
        .filter(|f| f["kind"] == kind)
        .collect()
}

/// The pids of a finding or a release.
pub fn pids(v: &Value) -> Vec<i64> {
    v["pids"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default()
}

/// The entry of `processes[]` with `pid`.
pub fn process(doc: &Value, pid: i32) -> Option<&Value> {
    array(doc, "processes")
        .iter()
        .find(|p| p["pid"].as_i64() == Some(i64::from(pid)))
}

/// The `how` values of the evidence about `pid` in `v["evidence"]`.
pub fn evidence_hows(v: &Value, pid: i32) -> Vec<String> {
    array(v, "evidence")
        .iter()
        .filter(|e| e["pid"].as_i64() == Some(i64::from(pid)))
        .filter_map(|e| e["how"].as_str().map(str::to_owned))
        .collect()
}

/// The app named `name` in `apps[]`.
pub fn app<'a>(doc: &'a Value, name: &str) -> Option<&'a Value> {
    array(doc, "apps").iter().find(|a| a["name"] == name)
}

/// The release names listed for an app, as bytes.
pub fn release_names(app: &Value) -> Vec<Vec<u8>> {
    array(app, "releases")
        .iter()
        .map(|r| bytestr(&r["name"]).unwrap_or_else(|| panic!("release name not a bytestr: {r}")))
        .collect()
}

/// Bytes of a `&str` or `&[u8]`, for comparisons.
pub fn b(s: impl AsRef<[u8]>) -> Vec<u8> {
    s.as_ref().to_vec()
}

/// An `OsString` from raw bytes.
pub fn os(bytes: &[u8]) -> OsString {
    OsString::from_vec(bytes.to_vec())
}

// ---------------------------------------------------------------------------------------------
// The documented schema (docs/JSON.md, version 1), strict: unknown fields are refused and every
// documented field must be present (nullable ones as `null`).
// ---------------------------------------------------------------------------------------------

/// A *bytestr*: a JSON string, or `{"bytes": base64}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum ByteStr {
    Utf8(String),
    Bytes(B64),
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct B64 {
    pub bytes: String,
}

impl ByteStr {
    /// The raw bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        use base64::Engine as _;
        match self {
            ByteStr::Utf8(s) => s.as_bytes().to_vec(),
            ByteStr::Bytes(B64 { bytes }) => base64::engine::general_purpose::STANDARD
                .decode(bytes)
                .unwrap_or_else(|e| panic!("bad base64 {bytes:?}: {e}")),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warning,
    Critical,
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Critical,
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    DeletedRelease,
    OldRelease,
    BrokenCurrent,
    Unreadable,
    Duplicate,
    Missing,
    Zombie,
    Orphan,
    RestartLoop,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum How {
    Cwd,
    Exe,
    Script,
    ViaCurrent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CurrentState {
    Ok,
    Missing,
    Dangling,
    OutsideReleases,
    NotALink,
    NotADirectory,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReleaseState {
    Current,
    Old,
    Deleted,
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProcessReleaseState {
    Current,
    Old,
    Deleted,
    Unknown,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    pub version: u32,
    pub status: Status,
    pub exit_code: i32,
    pub summary: String,
    pub scanned_at: f64,
    pub scan: Scan,
    pub findings: Vec<Finding>,
    pub apps: Vec<App>,
    pub processes: Vec<Process>,
}

/// The document of a run that failed (docs/JSON.md, "Errors"): the same for `check`, `ps` and
/// `in-use`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorDoc {
    pub version: u32,
    pub status: Status,
    pub exit_code: i32,
    pub error: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scan {
    pub processes: u64,
    pub vanished: u64,
    pub unreadable: u64,
    pub other_mount_ns: u64,
    pub kernel_threads: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Finding {
    pub kind: Kind,
    pub severity: Severity,
    pub app: String,
    // `deserialize_with` makes a nullable field required: it must be present, maybe as null.
    #[serde(deserialize_with = "Option::deserialize")]
    pub release: Option<ByteStr>,
    pub pids: Vec<i32>,
    #[serde(deserialize_with = "Option::deserialize")]
    pub master: Option<i32>,
    #[serde(deserialize_with = "Option::deserialize")]
    pub owner: Option<String>,
    #[serde(deserialize_with = "Option::deserialize")]
    pub role: Option<String>,
    pub message: String,
    pub remedy: String,
    pub fix: Vec<FixCommand>,
    pub evidence: Vec<Evidence>,
}

/// One command of a finding's remedy: its argv (the program first) and the uid it runs as.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixCommand {
    pub argv: Vec<ByteStr>,
    #[serde(rename = "as")]
    pub as_uid: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    pub pid: i32,
    pub how: How,
    #[serde(deserialize_with = "Option::deserialize")]
    pub path: Option<ByteStr>,
    pub deleted: bool,
    pub detail: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct App {
    pub name: String,
    pub root: ByteStr,
    pub link: ByteStr,
    #[serde(deserialize_with = "Option::deserialize")]
    pub releases_dir: Option<ByteStr>,
    #[serde(deserialize_with = "Option::deserialize")]
    pub current_release: Option<ByteStr>,
    pub current_state: CurrentState,
    #[serde(deserialize_with = "Option::deserialize")]
    pub switch_time: Option<f64>,
    pub releases: Vec<Release>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Release {
    pub name: ByteStr,
    pub state: ReleaseState,
    pub exists: bool,
    pub pids: Vec<i32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Process {
    pub pid: i32,
    pub ppid: i32,
    pub name: ByteStr,
    pub comm: ByteStr,
    pub cmdline: Vec<ByteStr>,
    pub cmdline_truncated: bool,
    pub state: String,
    pub start_time: f64,
    pub uid: u32,
    pub app: String,
    #[serde(deserialize_with = "Option::deserialize")]
    pub release: Option<ByteStr>,
    pub release_state: ProcessReleaseState,
    #[serde(deserialize_with = "Option::deserialize")]
    pub role: Option<String>,
    pub master: bool,
    pub evidence: Vec<Evidence>,
    #[serde(deserialize_with = "Option::deserialize")]
    pub owner: Option<Owner>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Owner {
    pub kind: OwnerKind,
    #[serde(deserialize_with = "Option::deserialize")]
    pub name: Option<String>,
    #[serde(deserialize_with = "Option::deserialize")]
    pub unit: Option<String>,
    #[serde(deserialize_with = "Option::deserialize")]
    pub user: Option<u32>,
    #[serde(deserialize_with = "Option::deserialize")]
    pub supervisor_pid: Option<i32>,
    pub label: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OwnerKind {
    Systemd,
    Supervisord,
    Pm2,
    Runit,
    S6,
    Session,
    None,
}

/// Serializes the tests that create cgroups: they may create and remove a shared parent
/// (`system.slice`) that does not exist on hosts without systemd.
pub fn cgroup_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A cgroup made for a test under a mounted hierarchy (cgroup v2 `unified`, or the v1
/// `name=systemd` one). It removes every directory it created, deepest first, when dropped;
/// drop the processes in it first.
pub struct Cgroup {
    pub base: PathBuf,
    created: Vec<PathBuf>,
    pub leaf: PathBuf,
}

impl Cgroup {
    /// Where the two hierarchies are mounted on this machine, by filesystem type.
    pub fn mount_of(v2: bool) -> Option<PathBuf> {
        let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
        mounts.lines().find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let hit = if v2 {
                f.get(2) == Some(&"cgroup2")
            } else {
                f.get(2) == Some(&"cgroup") && f.get(3).is_some_and(|o| o.contains("name=systemd"))
            };
            hit.then(|| PathBuf::from(f[1]))
        })
    }

    /// Create `rel` (e.g. `system.slice/relwatch-test-x.service`) under the v2 or v1 systemd
    /// hierarchy. `None`, with a message, when not root or the hierarchy is absent.
    pub fn create(v2: bool, rel: &str) -> Option<Cgroup> {
        if !nix::unistd::geteuid().is_root() {
            skip("creating cgroups needs root");
            return None;
        }
        let Some(base) = Self::mount_of(v2) else {
            skip(&format!(
                "no {} hierarchy mounted",
                if v2 { "cgroup2" } else { "name=systemd" }
            ));
            return None;
        };
        let mut created = Vec::new();
        let mut dir = base.clone();
        for comp in rel.split('/') {
            dir.push(comp);
            match std::fs::create_dir(&dir) {
                Ok(()) => created.push(dir.clone()),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => panic!("cannot create cgroup {}: {e}", dir.display()),
            }
        }
        Some(Cgroup {
            base,
            created,
            leaf: dir,
        })
    }

    /// A deploy root whose worker started on release 1, was moved into this cgroup, and is
    /// left behind by a switch to 2; with `check --format json --grace 0s` over it. The root
    /// and the worker are returned so that they live as long as the caller needs them.
    pub fn old_worker(&self) -> (DeployRoot, Child, Run, Value) {
        let root = DeployRoot::new();
        let r1 = root.release("1");
        root.switch("1");
        let worker = Child::sleep_in(&r1);
        self.add(worker.pid());
        root.release("2");
        root.switch("2");
        let (run, doc) = check_json([root.path().as_os_str(), "--grace".as_ref(), "0s".as_ref()]);
        (root, worker, run, doc)
    }

    /// Move a process into the leaf cgroup.
    pub fn add(&self, pid: i32) {
        std::fs::write(self.leaf.join("cgroup.procs"), pid.to_string())
            .unwrap_or_else(|e| panic!("moving {pid} into {}: {e}", self.leaf.display()));
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        // Anything still inside goes back to the root so the directories can go.
        if let Ok(procs) = std::fs::read_to_string(self.leaf.join("cgroup.procs")) {
            for pid in procs.split_whitespace() {
                let _ = std::fs::write(self.base.join("cgroup.procs"), pid);
            }
        }
        for dir in self.created.iter().rev() {
            let deadline = Instant::now() + Duration::from_secs(5);
            while std::fs::remove_dir(dir).is_err() && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

/// A process that is not our child any more (double-forked, reparented to PID 1): found by a
/// predicate and killed by pid when dropped.
pub struct Stray(pub i32);

impl Stray {
    /// `sleep 1000` double-forked with its cwd in `dir` (started by hand and left: its parent
    /// is PID 1).
    pub fn start_in(dir: &Path) -> Stray {
        let status = Command::new("sh")
            .args(["-c", "(sleep 1000 &) ; :"])
            .current_dir(dir)
            .status()
            .expect("run sh");
        assert!(status.success(), "sh failed: {status}");
        Stray::find_in(dir)
    }

    /// Wait for a process whose cwd is `dir` and whose parent is PID 1.
    pub fn find_in(dir: &Path) -> Stray {
        let dir = dir.to_path_buf();
        Stray(poll("a double-forked process reparented to PID 1", || {
            std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
                let pid: i32 = e.file_name().to_str()?.parse().ok()?;
                let cwd = std::fs::read_link(e.path().join("cwd")).ok()?;
                let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
                let ppid: i32 = stat
                    .rsplit(')')
                    .next()?
                    .split_whitespace()
                    .nth(1)?
                    .parse()
                    .ok()?;
                (cwd == dir && ppid == 1).then_some(pid)
            })
        }))
    }
}

impl Drop for Stray {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// `relwatch` running in the background (for `wait`): its stdout is collected as it comes,
/// and it is killed by pid if the test ends first.
pub struct Background {
    child: Option<std::process::Child>,
    args: Vec<OsString>,
    stdout: std::sync::Arc<std::sync::Mutex<String>>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
    readers: Vec<thread::JoinHandle<()>>,
}

/// Collect a pipe into a shared string as it comes.
fn collect(
    mut pipe: impl Read + Send + 'static,
    sink: std::sync::Arc<std::sync::Mutex<String>>,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            if let Ok(mut s) = sink.lock() {
                s.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        }
    })
}

impl Background {
    pub fn start<I, S>(args: I) -> Background
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let mut child = Command::new(env!("CARGO_BIN_EXE_relwatch"))
            .args(&args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("NO_COLOR", "1")
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start relwatch");
        let stdout = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let readers = vec![
            collect(child.stdout.take().expect("piped stdout"), stdout.clone()),
            collect(child.stderr.take().expect("piped stderr"), stderr.clone()),
        ];
        Background {
            child: Some(child),
            args,
            stdout,
            stderr,
            readers,
        }
    }

    /// Still running?
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Poll until its stdout so far contains `needle`.
    pub fn wait_for_output(&self, needle: &str) {
        poll(&format!("relwatch to print {needle:?}"), || {
            self.stdout
                .lock()
                .ok()
                .filter(|s| s.contains(needle))
                .map(|_| ())
        });
    }

    /// Poll until its stderr so far contains `needle`; returns all of stderr.
    pub fn wait_for_stderr(&self, needle: &str) -> String {
        poll(&format!("relwatch to log {needle:?}"), || {
            self.stderr
                .lock()
                .ok()
                .filter(|s| s.contains(needle))
                .map(|s| s.clone())
        })
    }

    /// Its pid.
    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }

    /// Wait (polling, 60 s at most) for it to exit and collect its output.
    pub fn finish(mut self) -> Run {
        let mut child = self.child.take().expect("finished once");
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(s) = child.try_wait().expect("try_wait") {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("relwatch {:?} did not exit within 60 s", self.args);
            }
            thread::sleep(Duration::from_millis(10));
        };
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        let stdout = self.stdout.lock().map(|s| s.clone()).unwrap_or_default();
        let stderr = self.stderr.lock().map(|s| s.clone()).unwrap_or_default();
        Run {
            args: std::mem::take(&mut self.args),
            code: status.code().unwrap_or(-1),
            stdout,
            stderr,
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
