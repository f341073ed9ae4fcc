//! Running an action's fixed program: an argv array (never a shell), a clean environment, as
//! the user the command names, with a deadline; and a signal to an unsupervised process
//! through a pidfd, so a pid reused since the scan is never signalled.

use crate::owner::remedy::{AsWhom, Command};
use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The most output kept of one command (the rest is cut, and said so).
const OUTPUT_CAP: usize = 8 * 1024;
const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How a command ended.
#[derive(Debug)]
pub struct Ran {
    /// `None`: killed at the deadline.
    pub status: Option<std::process::ExitStatus>,
    /// Stdout then stderr, at most [`OUTPUT_CAP`] bytes of each.
    pub output: Vec<u8>,
}

impl Ran {
    pub fn ok(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// "exit 1", "killed by signal 9", "timed out"
    pub fn how(&self) -> String {
        match self.status {
            None => "timed out".into(),
            Some(s) => match (s.code(), s.signal()) {
                (Some(c), _) => format!("exit {c}"),
                (None, Some(sig)) => format!("killed by signal {sig}"),
                _ => "ended".into(),
            },
        }
    }
}

/// Run `c` until it exits or `deadline`, when it is killed; `env` is added to the clean
/// environment (a PM2 daemon's `PM2_HOME`).
pub fn run(c: &Command, deadline: Instant, env: &[(&str, &OsStr)]) -> std::io::Result<Ran> {
    let mut argv = c.argv();
    let program = argv.next().map(|p| p.into_owned()).unwrap_or_default();
    let mut cmd = std::process::Command::new(OsStr::from_bytes(&program));
    for a in argv {
        cmd.arg(OsStr::from_bytes(&a));
    }
    cmd.env_clear()
        .env("PATH", PATH)
        .env("LC_ALL", "C")
        .envs(env.iter().copied())
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let AsWhom::Uid(uid) = c.as_whom {
        as_user(&mut cmd, uid);
    }
    let mut child = cmd.spawn()?;
    let readers = [
        child.stdout.take().map(reader),
        child.stderr.take().map(reader),
    ];
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if Instant::now() >= deadline {
            // The child is ours: end it, and reap it.
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut output = Vec::new();
    for r in readers.into_iter().flatten() {
        // A grandchild may hold the pipe open: take what came within a second.
        if let Ok(bytes) = r.recv_timeout(Duration::from_secs(1)) {
            output.extend(bytes);
        }
    }
    Ok(Ran { status, output })
}

/// Read a pipe to its end (at most [`OUTPUT_CAP`] bytes kept) on a thread of its own.
fn reader(mut pipe: impl Read + Send + 'static) -> std::sync::mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut buf = [0u8; 4096];
        let mut cut = false;
        loop {
            match pipe.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let room = OUTPUT_CAP.saturating_sub(kept.len());
                    cut |= n > room;
                    kept.extend_from_slice(&buf[..n.min(room)]);
                }
            }
        }
        if cut {
            kept.extend_from_slice(b"\n[output cut]");
        }
        let _ = tx.send(kept);
    });
    rx
}

/// Run as `uid`, with its primary group (the uid when it has no passwd entry) and no
/// supplementary groups (std drops them when root sets a uid), its home, and the runtime
/// directory its systemd user manager listens in.
fn as_user(cmd: &mut std::process::Command, uid: u32) {
    let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten();
    let gid = user.as_ref().map_or(uid, |u| u.gid.as_raw());
    let home = user
        .as_ref()
        .map_or_else(|| std::path::PathBuf::from("/"), |u| u.dir.clone());
    cmd.uid(uid)
        .gid(gid)
        .env("HOME", home)
        .env("XDG_RUNTIME_DIR", format!("/run/user/{uid}"));
    if let Some(u) = user {
        cmd.env("USER", &u.name).env("LOGNAME", &u.name);
    }
}

/// Send `signal` to `pid` only if it is still the process that started at `start_ticks`: the
/// pidfd pins the process, and its start time is read after it is pinned.
pub fn signal(
    pid: i32,
    start_ticks: u64,
    signal: rustix::process::Signal,
    source: &mut dyn crate::snapshot::ProcSource,
) -> Result<(), String> {
    let rpid = rustix::process::Pid::from_raw(pid).ok_or_else(|| format!("bad pid {pid}"))?;
    let fd = rustix::process::pidfd_open(rpid, rustix::process::PidfdFlags::empty())
        .map_err(|e| format!("pid {pid} is gone ({e})"))?;
    match source.stat(pid) {
        Ok(s) if s.start_ticks == start_ticks => {}
        _ => return Err(format!("pid {pid} is no longer the process the scan saw")),
    }
    rustix::process::pidfd_send_signal(&fd, signal)
        .map_err(|e| format!("cannot signal pid {pid}: {e}"))
}
