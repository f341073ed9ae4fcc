//! The Linux reader: one pass over `/proc`, every read relative to an open `/proc/PID`
//! directory so that a pid reused mid-read cannot mix two processes' files.
//!
//! For every pid it reads exactly `stat`, `cmdline`, and the `cwd` and `exe` links (text via
//! `readlinkat`, identity and link count via `fstatat` through the link). Nothing else is read
//! for every process: reads that few processes need are done later, on demand, by pid.
//! It never follows a path taken from a process except through the kernel's magic links.
//! See proc(5).

use super::parse::{environ_keys, maps_paths, parse_stat, split_cmdline, systemd_cgroup};
use super::{Clock, Extra, Link, LinkError, ProcSource, Process, Snapshot};
use nix::errno::Errno;
use nix::fcntl::{openat, readlinkat, OFlag};
use nix::sys::stat::{fstat, fstatat, Mode};
use std::ffi::OsString;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

/// Reads the live `/proc` (or another procfs mount, for tests).
pub struct LinuxProc {
    root: PathBuf,
    buf: Vec<u8>,
    own_mnt_ns: Option<OsString>,
}

impl Default for LinuxProc {
    fn default() -> Self {
        Self::new("/proc")
    }
}

enum ReadOutcome {
    Read(Box<Process>),
    Vanished,
}

impl LinuxProc {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        let own_mnt_ns = std::fs::read_link(root.join("self/ns/mnt"))
            .ok()
            .map(|p| p.into_os_string());
        LinuxProc {
            root,
            buf: Vec::with_capacity(4096),
            own_mnt_ns,
        }
    }

    /// Does this /proc hide other users' processes from us? Only when it is mounted with
    /// `hidepid=`/`subset=pid` and we are neither root nor hold CAP_SYS_PTRACE (bit 19 of
    /// CapEff), which see through it.
    fn hides_pids(&self) -> bool {
        if nix::unistd::geteuid().is_root() {
            return false;
        }
        let ptrace = std::fs::read_to_string(self.root.join("self/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("CapEff:"))
                    .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            })
            .is_some_and(|caps| caps & (1 << 19) != 0);
        !ptrace
            && std::fs::read(self.root.join("self/mountinfo"))
                .is_ok_and(|m| super::parse::proc_hides_pids(&m))
    }

    fn open_pid(&self, pid: i32) -> nix::Result<OwnedFd> {
        let dir = self.root.join(pid.to_string());
        nix::fcntl::open(
            &dir,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
    }

    /// Read a whole /proc file into `buf` with plain `read` calls. Not `File::read_to_end`:
    /// it asks `statx` and `lseek` for a size hint that /proc files never have, two wasted
    /// system calls per file on the hot path.
    fn read_at(buf: &mut Vec<u8>, dir: impl AsFd, name: &str) -> nix::Result<()> {
        let fd = openat(dir, name, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())?;
        buf.clear();
        loop {
            if buf.capacity() - buf.len() < 512 {
                buf.reserve(4096);
            }
            let len = buf.len();
            let spare = buf.capacity() - len;
            buf.resize(len + spare, 0);
            match nix::unistd::read(&fd, &mut buf[len..]) {
                Ok(0) => {
                    buf.truncate(len);
                    return Ok(());
                }
                Ok(n) => buf.truncate(len + n),
                Err(Errno::EINTR) => buf.truncate(len),
                Err(e) => {
                    buf.truncate(len);
                    return Err(e);
                }
            }
        }
    }

    fn read_process(&mut self, pid: i32) -> ReadOutcome {
        let Ok(dir) = self.open_pid(pid) else {
            return ReadOutcome::Vanished;
        };
        if Self::read_at(&mut self.buf, &dir, "stat").is_err() {
            return ReadOutcome::Vanished;
        }
        let Ok(stat) = parse_stat(&self.buf) else {
            // A stat line we cannot parse is treated like a vanished process: we cannot know
            // anything about it, and proc(5) guarantees the format for live processes.
            return ReadOutcome::Vanished;
        };
        let uid = fstat(&dir).map(|s| s.st_uid).unwrap_or(u32::MAX);
        let cmdline = match Self::read_at(&mut self.buf, &dir, "cmdline") {
            Ok(()) => split_cmdline(&self.buf),
            Err(_) => Vec::new(),
        };
        let cwd = read_link(&dir, "cwd");
        let exe = read_link(&dir, "exe");
        ReadOutcome::Read(Box::new(Process {
            pid,
            ppid: stat.ppid,
            kernel_thread: stat.kernel_thread(),
            comm: stat.comm,
            state: stat.state,
            start_ticks: stat.start_ticks,
            uid,
            cmdline,
            cwd,
            exe,
        }))
    }
}

fn read_link(dir: impl AsFd + Copy, name: &str) -> Result<Link, LinkError> {
    let target = readlinkat(dir, name).map_err(link_error)?;
    let st = fstatat(dir, name, nix::fcntl::AtFlags::empty()).map_err(link_error)?;
    Ok(Link {
        target,
        dev: st.st_dev,
        ino: st.st_ino,
        nlink: st.st_nlink,
    })
}

fn link_error(e: Errno) -> LinkError {
    match e {
        Errno::EACCES | Errno::EPERM => LinkError::Denied,
        _ => LinkError::Absent,
    }
}

/// Clock facts for this boot. REALTIME - BOOTTIME gives the boot instant to the nanosecond.
pub fn clock_now() -> Clock {
    use nix::time::{clock_gettime, ClockId};
    let secs = |id| {
        clock_gettime(id)
            .map(|t| t.tv_sec() as f64 + t.tv_nsec() as f64 / 1e9)
            .unwrap_or(0.0)
    };
    let real = secs(ClockId::CLOCK_REALTIME);
    let boot = secs(ClockId::CLOCK_BOOTTIME);
    let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .and_then(|t| u64::try_from(t).ok())
        .filter(|&t| t > 0)
        .unwrap_or(100);
    Clock {
        ticks_per_second: ticks,
        boot_epoch: real - boot,
        now: real,
    }
}

impl ProcSource for LinuxProc {
    fn snapshot(&mut self) -> std::io::Result<Snapshot> {
        let clock = clock_now();
        let mut pids: Vec<i32> = std::fs::read_dir(&self.root)?
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()))
            .collect();
        pids.sort_unstable();
        let mut processes = Vec::with_capacity(pids.len());
        let mut vanished = 0;
        for pid in pids {
            match self.read_process(pid) {
                ReadOutcome::Read(p) => processes.push(*p),
                ReadOutcome::Vanished => vanished += 1,
            }
        }
        let mut snap = Snapshot::new(processes, clock, std::process::id() as i32, vanished);
        snap.hidden_pids = self.hides_pids();
        Ok(snap)
    }

    fn still_zombie(&mut self, pid: i32, start_ticks: u64) -> bool {
        let Ok(dir) = self.open_pid(pid) else {
            return false;
        };
        Self::read_at(&mut self.buf, &dir, "stat").is_ok()
            && parse_stat(&self.buf).is_ok_and(|s| s.state == b'Z' && s.start_ticks == start_ticks)
    }

    fn start_ticks(&mut self, pid: i32) -> Option<u64> {
        let dir = self.open_pid(pid).ok()?;
        Self::read_at(&mut self.buf, &dir, "stat").ok()?;
        parse_stat(&self.buf).ok().map(|s| s.start_ticks)
    }

    fn extra(&mut self, pid: i32, keys: &[&'static str]) -> Extra {
        let mut extra = Extra::default();
        let Ok(dir) = self.open_pid(pid) else {
            return extra;
        };
        if Self::read_at(&mut self.buf, &dir, "cgroup").is_ok() {
            extra.cgroup = systemd_cgroup(&self.buf).map(<[u8]>::to_vec);
        }
        if !keys.is_empty() {
            match Self::read_at(&mut self.buf, &dir, "environ") {
                Ok(()) => extra.env = environ_keys(&self.buf, keys),
                Err(Errno::EACCES | Errno::EPERM) => extra.env_denied = true,
                Err(_) => {}
            }
            // The buffer held every value of the environment: do not keep it around.
            self.buf.iter_mut().for_each(|b| *b = 0);
            self.buf.clear();
        }
        extra
    }

    fn open_files(&mut self, pid: i32) -> Vec<OsString> {
        let Ok(dir) = self.open_pid(pid) else {
            return Vec::new();
        };
        let Ok(fd_dir) = openat(
            &dir,
            "fd",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) else {
            return Vec::new();
        };
        let Ok(mut entries) = nix::dir::Dir::from_fd(fd_dir) else {
            return Vec::new();
        };
        let names: Vec<std::ffi::CString> = entries
            .iter()
            .flatten()
            .map(|e| e.file_name().to_owned())
            .filter(|n| n.as_bytes().first().is_some_and(u8::is_ascii_digit))
            .collect();
        names
            .iter()
            .filter_map(|n| readlinkat(&entries, n.as_c_str()).ok())
            .collect()
    }

    fn mapped_files(&mut self, pid: i32) -> Vec<OsString> {
        let Ok(dir) = self.open_pid(pid) else {
            return Vec::new();
        };
        if Self::read_at(&mut self.buf, &dir, "maps").is_err() {
            return Vec::new();
        }
        use std::os::unix::ffi::OsStrExt;
        maps_paths(&self.buf)
            .into_iter()
            .map(|p| std::ffi::OsStr::from_bytes(p).to_os_string())
            .collect()
    }

    fn foreign_mount_ns(&mut self, pid: i32) -> bool {
        let Some(own) = &self.own_mnt_ns else {
            return false;
        };
        match std::fs::read_link(self.root.join(pid.to_string()).join("ns/mnt")) {
            Ok(theirs) if theirs.as_os_str() == own.as_os_str() => false,
            Ok(_) => {
                // Another mount namespace. A systemd service with PrivateTmp= or
                // ProtectSystem= (relwatch's own unit, or the app's) has one too, yet sees
                // the same paths: only a different root directory (a container, a chroot)
                // means its paths are not ours.
                use std::os::unix::fs::MetadataExt;
                let id = |p: PathBuf| std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()));
                match (
                    id(self.root.join("self/root")),
                    id(self.root.join(pid.to_string()).join("root")),
                ) {
                    (Some(ours), Some(theirs)) => ours != theirs,
                    _ => true,
                }
            }
            Err(_) => false,
        }
    }
}
