//! Snapshot: one pass over `/proc`, turned into plain data, and the later reads about single
//! processes.
//!
//! It owns the process model every later stage reads, and must never decide anything about
//! releases or owners: it records what the kernel said (link text, identity, link count, the
//! raw cgroup path) and leaves the judging to `attribution`, `owner` and `findings`. The
//! shape, procfs-style: [`parse`] holds one pure parser per `/proc` file, tested on bytes;
//! [`linux`] is the reader (the only IO, through [`ProcSource`]), with [`cgroupfs`] walking
//! the cgroup tree for it and `read` reading a whole file for both. Every read about one
//! process returns a [`ReadError`] that tells *denied* from *gone*.

pub mod cgroupfs;
pub mod linux;
pub mod parse;
mod read;

pub use parse::cmdline::Cmdline;

use std::ffi::{OsStr, OsString};

/// What `readlink` and `stat` said about one of a process's magic links (`cwd`, `exe`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The link text as the kernel gave it, bytes and all, including a `" (deleted)"` suffix
    /// (or, for a path too long for the kernel to print, what [`Link::BELOW`] says). Shared by every process with the same text (the workers of a release share their cwd
    /// and exe): one allocation per distinct target, not two per process.
    pub target: std::sync::Arc<std::ffi::OsStr>,
    /// Identity of the object behind the link (`stat` through the link). Both are 0 when it
    /// was not taken (see [`Link::identity`]). The device number is 32 bits wide in the kernel
    /// (`new_encode_dev`), as is the link count (`i_nlink`); `struct stat` widens both to 64.
    /// Kept at the kernel's width, a process takes 16 bytes less (320 KB at 20,000).
    pub dev: u32,
    pub ino: u64,
    /// Link count of the object behind the link: 0 means it was deleted. The Linux reader
    /// stats through `exe` only when its text ends in [`Link::DELETED`] (the kernel adds it
    /// exactly when the file is unlinked); otherwise it leaves 1 here and 0 in `dev`/`ino`.
    pub nlink: u32,
}

impl Link {
    /// What the kernel appends to the text of a link whose target was unlinked.
    pub const DELETED: &'static [u8] = b" (deleted)";

    /// What ends the text of a link the kernel could not print (its path is longer than a
    /// page): the text before it is the nearest directory above whose path prints, and the
    /// link leads somewhere below that. Its identity and link count are its own.
    pub const BELOW: &'static str = "/\u{2026}";

    /// `(st_dev, st_ino)` of the object behind the link, when the reader took it.
    pub fn identity(&self) -> Option<(u64, u64)> {
        (self.ino != 0).then_some((u64::from(self.dev), self.ino))
    }

    /// The object behind the link has been removed from the filesystem. Decided by the link
    /// count, never by the `" (deleted)"` suffix (a directory may be named `x (deleted)`).
    pub fn is_deleted(&self) -> bool {
        self.nlink == 0
    }

    /// The path the object had, with the kernel's `" (deleted)"` suffix removed only when the
    /// object really is deleted.
    pub fn path(&self) -> std::sync::Arc<std::ffi::OsStr> {
        use std::os::unix::ffi::OsStrExt;
        let bytes = self.target.as_bytes();
        if self.is_deleted() && bytes.ends_with(Self::DELETED) {
            std::ffi::OsStr::from_bytes(&bytes[..bytes.len() - Self::DELETED.len()]).into()
        } else {
            self.target.clone()
        }
    }
}

/// A process's `comm`, inline when it fits (it nearly always does: the kernel keeps 15
/// bytes): one allocation fewer per process than a `Vec<u8>`, in the same 24 bytes.
#[derive(Clone)]
pub enum Comm {
    Inline { len: u8, bytes: [u8; 22] },
    Heap(Box<[u8]>),
}

impl Default for Comm {
    fn default() -> Self {
        Comm::from(&b""[..])
    }
}

impl std::ops::Deref for Comm {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Comm::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Comm::Heap(b) => b,
        }
    }
}

impl From<&[u8]> for Comm {
    fn from(s: &[u8]) -> Self {
        let mut bytes = [0u8; 22];
        match (bytes.get_mut(..s.len()), u8::try_from(s.len())) {
            (Some(head), Ok(len)) => {
                head.copy_from_slice(s);
                Comm::Inline { len, bytes }
            }
            _ => Comm::Heap(s.into()),
        }
    }
}

impl From<Vec<u8>> for Comm {
    fn from(v: Vec<u8>) -> Self {
        Comm::from(v.as_slice())
    }
}

impl<T: AsRef<[u8]> + ?Sized> PartialEq<T> for Comm {
    fn eq(&self, other: &T) -> bool {
        **self == *other.as_ref()
    }
}

impl AsRef<[u8]> for Comm {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl Eq for Comm {}

impl std::fmt::Debug for Comm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self))
    }
}

/// Why a link could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkError {
    /// Permission denied: we lack root or `CAP_SYS_PTRACE`.
    Denied,
    /// The link does not exist for this process (kernel thread, zombie, a process that
    /// exited mid-read).
    Absent,
    /// The link exists but what it leads to could not be known: the `stat` through it failed
    /// (a FUSE or network mount that no longer answers: `ENOTCONN`, `EIO`, `ESTALE`), or its
    /// text could not be read for a reason other than the two above. Never folded into
    /// [`LinkError::Absent`]: the process may run anything, and a verdict must count it.
    Failed,
}

/// One process as read from `/proc/PID`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    pub pid: i32,
    pub ppid: i32,
    /// `comm` from `/proc/PID/stat` (at most 15 bytes, any bytes; longer for some kernel
    /// threads).
    pub comm: Comm,
    /// One-letter state from `/proc/PID/stat` (`R`, `S`, `Z`, ...).
    pub state: u8,
    /// Field 22 of `/proc/PID/stat`: start time in clock ticks since boot.
    pub start_ticks: u64,
    /// Owner of `/proc/PID` (the real uid of the process).
    pub uid: u32,
    /// The inode number of the `/proc/PID` directory this pass read, or 0 when it is not known
    /// (a /proc that is not procfs, as in tests). See [`ProcessSeen::dir_ino`].
    pub dir_ino: u64,
    /// A kernel thread (no exe, no cmdline of its own).
    pub kernel_thread: bool,
    /// Arguments, as bytes: at most the first 64 KiB of them (`read::ARGS_CAP`), and of a
    /// command line longer than 4 KiB that names no deploy root (nor does its `cwd` or `exe`),
    /// only the arguments within its first 4 KiB (`read::ARGS_SHORT`, see
    /// [`ArgsWorthKeeping`]).
    pub cmdline: Cmdline,
    /// `cmdline` holds only the start of the arguments (cut at 64 KiB, where the last argument
    /// kept may be cut short, or at an argument's end within 4 KiB): shown in JSON, so nothing
    /// is silently wrong.
    pub cmdline_truncated: bool,
    pub cwd: Result<Link, LinkError>,
    pub exe: Result<Link, LinkError>,
    /// What reaped children had left in its counters when this pass read `stat`: `cminflt`
    /// and `cutime` + `cstime` (see [`PidStat::reaped_faults`]). (0, 0): none reaped yet.
    pub reaped: (u64, u64),
}

impl Process {
    pub fn is_zombie(&self) -> bool {
        self.state == b'Z'
    }

    /// A name for people: the first argument's file name when there is one, else comm.
    pub fn name(&self) -> &OsStr {
        use std::os::unix::ffi::OsStrExt;
        if let Some(arg0) = self.cmdline.first() {
            let b = arg0.as_bytes();
            // setproctitle-style titles ("gunicorn: master [app]") have spaces: keep them whole.
            if !b.is_empty() && !b.contains(&b' ') {
                if let Some(name) = std::path::Path::new(arg0).file_name() {
                    return name;
                }
            }
        }
        OsStr::from_bytes(&self.comm)
    }

    /// Either link could not be read for lack of privilege.
    pub fn denied(&self) -> bool {
        matches!(self.cwd, Err(LinkError::Denied)) || matches!(self.exe, Err(LinkError::Denied))
    }

    /// Either link could not be read or followed, for lack of privilege or because its
    /// filesystem did not answer ([`LinkError::Failed`]): the process was not inspected.
    pub fn blind(&self) -> bool {
        let blind = |l: &Result<Link, LinkError>| {
            matches!(l, Err(LinkError::Denied) | Err(LinkError::Failed))
        };
        blind(&self.cwd) || blind(&self.exe)
    }
}

/// Clock facts needed to turn `start_ticks` into wall-clock time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Clock {
    /// Clock ticks per second (`sysconf(_SC_CLK_TCK)`, 100 on every Linux we know).
    pub ticks_per_second: u64,
    /// Wall-clock time of boot in seconds since the epoch, taken as REALTIME - BOOTTIME (which
    /// is more precise than `btime` in `/proc/stat`, whole seconds only).
    pub boot_epoch: f64,
    /// Wall-clock time at which the scan started.
    pub now: f64,
}

impl Clock {
    /// Start of a process, in seconds since the epoch. Precise to one clock tick.
    pub fn start_time(&self, start_ticks: u64) -> f64 {
        self.boot_epoch + start_ticks as f64 / self.ticks_per_second as f64
    }

    /// Length of one clock tick in seconds.
    pub fn tick(&self) -> f64 {
        1.0 / self.ticks_per_second as f64
    }
}

/// Everything one scan saw.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Sorted by pid.
    pub processes: Vec<Process>,
    pub clock: Clock,
    /// Our own pid: never reported.
    pub own_pid: i32,
    /// Processes that vanished between listing `/proc` and reading them (not an error).
    pub vanished: usize,
    /// `/proc` is mounted with `hidepid=` (or `subset=pid`) and we lack root and
    /// `CAP_SYS_PTRACE`: other users' processes are not even listed.
    pub hidden_pids: bool,
    /// We hold `CAP_SYS_PTRACE` (root does): only a security policy can keep a process's
    /// links from us (see [`Snapshot::shielded`]).
    pub ptrace: bool,
    /// Live (non-zombie) children of each pid, built once: asking a process for its children
    /// must not scan every process (that made a scan quadratic).
    children: std::collections::HashMap<i32, Vec<i32>>,
    /// Zombie children of each pid.
    zombies: std::collections::HashMap<i32, Vec<i32>>,
}

impl Snapshot {
    /// A snapshot of `processes` (any order): sorts them and indexes their children.
    pub fn new(mut processes: Vec<Process>, clock: Clock, own_pid: i32, vanished: usize) -> Self {
        processes.sort_unstable_by_key(|p| p.pid);
        let mut children: std::collections::HashMap<i32, Vec<i32>> =
            std::collections::HashMap::new();
        let mut zombies: std::collections::HashMap<i32, Vec<i32>> =
            std::collections::HashMap::new();
        for p in &processes {
            let index = if p.is_zombie() {
                &mut zombies
            } else {
                &mut children
            };
            index.entry(p.ppid).or_default().push(p.pid);
        }
        Snapshot {
            processes,
            clock,
            own_pid,
            vanished,
            hidden_pids: false,
            ptrace: false,
            children,
            zombies,
        }
    }

    /// `p` is the init of our pid namespace (pid 1, no parent) and refuses us although we hold
    /// `CAP_SYS_PTRACE`: a sandbox's or VM's init agent that the kernel's policy keeps from
    /// every other process. No privilege relwatch could be given would show it, and it is the
    /// host's init, not an app's process: it is counted as not inspected, but is no reason to
    /// answer UNKNOWN. (An unprivileged run, which lacks the capability, counts it as any
    /// other process of root.)
    pub fn shielded(&self, p: &Process) -> bool {
        self.ptrace && p.pid == 1 && p.ppid == 0
    }

    pub fn get(&self, pid: i32) -> Option<&Process> {
        self.processes
            .binary_search_by_key(&pid, |p| p.pid)
            .ok()
            .map(|i| &self.processes[i])
    }

    /// Live (non-zombie) children of `pid`, by pid.
    pub fn children(&self, pid: i32) -> impl Iterator<Item = &Process> {
        self.children
            .get(&pid)
            .into_iter()
            .flatten()
            .filter_map(|c| self.get(*c))
    }

    /// The zombie children of `pid`, by pid.
    pub fn zombie_children(&self, pid: i32) -> &[i32] {
        self.zombies.get(&pid).map_or(&[], Vec::as_slice)
    }

    /// How many live children `pid` has.
    pub fn child_count(&self, pid: i32) -> usize {
        self.children.get(&pid).map_or(0, Vec::len)
    }
}

/// Why a read of `/proc` failed. "Could not look" ([`ReadError::Denied`]) is never folded
/// into "nothing there" ([`ReadError::Gone`]) here: a caller that answers "not in use" or "no
/// owner" must know which it was, and folds them itself, where it can say why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// Permission denied (`EACCES`, `EPERM`): we lack root or `CAP_SYS_PTRACE`.
    #[error("permission denied")]
    Denied,
    /// The process is gone (`ENOENT`, `ESRCH`): it exited, or its pid was never there.
    #[error("no such process")]
    Gone,
    /// The kernel gave a file that does not parse (proc(5) promises the format of a live
    /// process's files).
    #[error("malformed /proc file")]
    Malformed,
    /// Any other error, as the kernel reported it.
    #[error("{0}")]
    Other(nix::errno::Errno),
}

impl From<nix::errno::Errno> for ReadError {
    fn from(e: nix::errno::Errno) -> Self {
        use nix::errno::Errno;
        match e {
            Errno::EACCES | Errno::EPERM => ReadError::Denied,
            Errno::ENOENT | Errno::ESRCH => ReadError::Gone,
            e => ReadError::Other(e),
        }
    }
}

/// What a second read of `/proc/PID/stat` says (see [`ProcSource::stat`]): enough to tell
/// the same process (its start time) and a zombie (its state).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PidStat {
    /// One-letter state (`R`, `S`, `Z`, ...).
    pub state: u8,
    /// Start time in clock ticks since boot.
    pub start_ticks: u64,
    /// What its reaped children left in its counters (`cminflt`; `cutime` + `cstime`): they
    /// grow between two reads when children died and were reaped in between.
    pub reaped_faults: u64,
    pub reaped_ticks: u64,
}

/// What is read only for processes placed in an app: the systemd cgroup path and the few
/// environment keys a rule names (never any other value: environments hold secrets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupAndEnv {
    /// The raw systemd cgroup path (see [`parse::cgroup::systemd_cgroup`]), `None` when the
    /// process is in no systemd hierarchy; read by `owner`, which knows systemd's naming.
    pub cgroup: Result<Option<Vec<u8>>, ReadError>,
    /// Named environment keys and their values; empty when none was asked for (then the
    /// environment is not read at all).
    pub env: Result<Vec<(&'static str, OsString)>, ReadError>,
}

impl Default for CgroupAndEnv {
    /// Read, and nothing found.
    fn default() -> Self {
        CgroupAndEnv {
            cgroup: Ok(None),
            env: Ok(Vec::new()),
        }
    }
}

/// The environment keys relwatch ever reads. Adding one here is a security decision: see
/// docs/SECURITY.md.
pub const ENV_KEYS: &[&str] = &[
    "SUPERVISOR_ENABLED",
    "SUPERVISOR_PROCESS_NAME",
    "SUPERVISOR_GROUP_NAME",
    "pm_id",
    "name",
    "pm_exec_path",
    // Interpreter module paths, read only for interpreter processes (see `crate::holds`) and
    // only compared with the deploy roots: a value is never shown beyond the release it names.
    "PYTHONPATH",
    "RUBYLIB",
    "PERL5LIB",
    "NODE_PATH",
    "BUNDLE_GEMFILE",
];

/// A process as the snapshot saw it, to be looked at again before it decides a finding (see
/// [`ProcSource::look_again`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessSeen {
    pub pid: i32,
    /// The start time the snapshot read: another one means the pid was reused.
    pub start_ticks: u64,
    /// Whether its paths matter (it was placed by a path read as text), so that a process
    /// under another root directory must be told apart.
    pub paths: bool,
    /// [`Process::dir_ino`]: when `/proc/PID` still has this inode number, it is the same
    /// process, and its start time need not be read again. procfs makes a new inode, with a
    /// new number, whenever it looks a pid up anew, and it must once the process has exited
    /// (a dead process's directory fails revalidation). A changed number proves nothing (the
    /// kernel may have dropped the cached directory of a live process): the start time
    /// decides then, as it does when the number is 0.
    pub dir_ino: u64,
}

/// What a second look at a [`ProcessSeen`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeenAgain {
    /// The same process, in our mount namespace or one with our root.
    Same,
    /// It exited, or its pid now belongs to another process.
    Gone,
    /// It lives under another root directory (a container, a chroot): its paths are not ours.
    Foreign,
    /// It lives in another mount namespace under our root directory (a systemd sandbox, or a
    /// user's `unshare -m`): a path it shows may be a mount of its own over ours, so its paths
    /// count only where the identity of its `cwd` or `exe` backs them.
    Elsewhere,
}

/// Which long command lines a pass over `/proc` keeps (up to 64 KiB) rather than cut to their
/// first 4 KiB: those that could matter to a verdict, because the process's `cwd` or `exe`
/// text, or its arguments, hold one of the paths named here (the deploy roots' spellings, or
/// the paths `in-use` asks about). The reader judges nothing: it only looks for the bytes.
#[derive(Clone, Default)]
pub struct ArgsWorthKeeping(Option<aho_corasick::AhoCorasick>);

impl ArgsWorthKeeping {
    /// Keep the command lines that name any of `paths` (`/` and empty paths name nothing: they
    /// would keep every command line).
    pub fn naming<P: AsRef<OsStr>>(paths: impl IntoIterator<Item = P>) -> Self {
        use std::os::unix::ffi::OsStrExt;
        let mut needles: Vec<Vec<u8>> = paths
            .into_iter()
            .map(|p| p.as_ref().as_bytes().to_vec())
            .filter(|p| p.len() > 1)
            .collect();
        needles.sort_unstable();
        needles.dedup();
        let finder = aho_corasick::AhoCorasick::builder()
            .match_kind(aho_corasick::MatchKind::LeftmostFirst)
            .build(&needles)
            .ok();
        ArgsWorthKeeping(finder.filter(|_| !needles.is_empty()))
    }

    /// Whether `bytes` hold one of the paths.
    pub fn named_in(&self, bytes: &[u8]) -> bool {
        self.0.as_ref().is_some_and(|f| f.is_match(bytes))
    }
}

/// A source of snapshots and of the later reads about single processes: the Linux reader in
/// production. Every read about one process says why it failed ([`ReadError`]).
pub trait ProcSource {
    fn snapshot(&mut self) -> std::io::Result<Snapshot>;
    /// Which long command lines the next [`ProcSource::snapshot`] keeps whole (see
    /// [`ArgsWorthKeeping`]); until told, it keeps none beyond their first 4 KiB. A source
    /// that was given its processes keeps them as they are.
    fn keep_args_naming(&mut self, _keep: ArgsWorthKeeping) {}
    /// Read `/proc/PID/stat` again: is it the same process (start time), still a zombie?
    fn stat(&mut self, pid: i32) -> Result<PidStat, ReadError>;
    /// Whether `pid` lives under another root directory than ours (its paths are not ours).
    fn foreign_mount_ns(&mut self, pid: i32) -> Result<bool, ReadError>;
    /// The second look at a process about to decide a finding: is it still the process the
    /// snapshot saw, and (when its `paths` matter) are its paths ours? One open of
    /// `/proc/PID` for both. A process that exited is an answer ([`SeenAgain::Gone`]), not
    /// an error; a mount namespace it may not read is one (denied), never taken for ours.
    fn look_again(&mut self, seen: ProcessSeen) -> Result<SeenAgain, ReadError>;
    /// [`ProcSource::look_again`] for many processes, answered in the order asked. The Linux
    /// reader looks at them on several threads.
    fn look_again_all(&mut self, seen: &[ProcessSeen]) -> Vec<Result<SeenAgain, ReadError>> {
        seen.iter().map(|&s| self.look_again(s)).collect()
    }
    /// Read the systemd cgroup of each pid, and the environment keys `keys` names for it
    /// (none: the environment is not read at all), handing each to `each` as soon as it is
    /// read.
    fn cgroup_and_env(
        &mut self,
        pids: &[i32],
        keys: &dyn Fn(i32) -> &'static [&'static str],
        each: &mut dyn FnMut(i32, CgroupAndEnv),
    );
    /// Targets of the open file descriptors of `pid` (`in-use` only).
    fn open_files(&mut self, pid: i32) -> Result<Vec<OsString>, ReadError>;
    /// Paths of the files mapped into `pid` that `wanted` accepts (`in-use` only): the
    /// others are never kept, however many there are.
    fn mapped_files(
        &mut self,
        pid: i32,
        wanted: &dyn Fn(&[u8]) -> bool,
    ) -> Result<Vec<OsString>, ReadError>;
    /// [`ProcSource::held_files`] of each of `pids`, in their order: on the reader's threads
    /// where it has them.
    fn held_files_all(
        &mut self,
        pids: &[i32],
        wanted: &(dyn Fn(&[u8]) -> bool + Sync),
    ) -> Vec<Result<HeldFiles, ReadError>> {
        pids.iter()
            .map(|pid| self.held_files(*pid, wanted))
            .collect()
    }
    /// The mapped and open files of `pid` that `wanted` accepts, with their identity where the
    /// kernel gives it (a maps line carries device and inode; an open file is `stat`ed through
    /// its descriptor, which also gives its link count). Others are never kept. The default
    /// asks [`ProcSource::mapped_files`] and [`ProcSource::open_files`] and knows no identity.
    fn held_files(
        &mut self,
        pid: i32,
        wanted: &dyn Fn(&[u8]) -> bool,
    ) -> Result<HeldFiles, ReadError> {
        let plain = |path: OsString| HeldFile {
            path,
            identity: None,
        };
        Ok(HeldFiles {
            mapped: self
                .mapped_files(pid, wanted)?
                .into_iter()
                .map(plain)
                .collect(),
            open: self
                .open_files(pid)?
                .into_iter()
                .filter(|f| wanted(std::os::unix::ffi::OsStrExt::as_bytes(f.as_os_str())))
                .map(plain)
                .collect(),
        })
    }
    /// The mounts `pid` sees (`/proc/PID/mountinfo`, its first [`MOUNTINFO_CAP`] bytes, whole
    /// lines only), or `None` when it lives in our mount namespace (then nothing is read).
    /// The default: every process lives in ours.
    fn mounts_of(&mut self, pid: i32) -> Result<Option<Vec<u8>>, ReadError> {
        let _ = pid;
        Ok(None)
    }
    /// The mounts we see (`/proc/self/mountinfo`, capped like [`ProcSource::mounts_of`]).
    fn own_mounts(&mut self) -> Result<Vec<u8>, ReadError> {
        Ok(Vec::new())
    }
}

/// A file a process maps or holds open (see [`ProcSource::held_files`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldFile {
    /// As the kernel printed it, with its ` (deleted)` suffix.
    pub path: OsString,
    /// `(st_dev, st_ino, link count)`; the link count of a mapped file is not known (`None`).
    pub identity: Option<(u64, u64, Option<u32>)>,
}

/// What [`ProcSource::held_files`] read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeldFiles {
    pub mapped: Vec<HeldFile>,
    pub open: Vec<HeldFile>,
}

/// The most of a `mountinfo` file read: a host with a thousand mounts has about 150 KiB.
pub const MOUNTINFO_CAP: usize = 1024 * 1024;

#[cfg(test)]
mod comm_tests {
    use super::Comm;

    #[test]
    fn short_names_stay_inline_and_long_ones_are_kept_whole() {
        let short = Comm::from(&b"queue-worker"[..]);
        assert!(matches!(short, Comm::Inline { .. }));
        assert_eq!(short, b"queue-worker");
        let edge = Comm::from(&[b'x'; 22][..]);
        assert!(matches!(edge, Comm::Inline { .. }));
        assert_eq!(&*edge, &[b'x'; 22][..]);
        let long = Comm::from(&b"kworker/u8:3-events_unbound_long_name"[..]);
        assert!(matches!(long, Comm::Heap(_)));
        assert_eq!(long, b"kworker/u8:3-events_unbound_long_name");
        assert_eq!(Comm::default(), b"");
        assert_eq!(std::mem::size_of::<Comm>(), std::mem::size_of::<Vec<u8>>());
        assert_eq!(format!("{:?}", Comm::from(&b"a\xff"[..])), "\"a\u{fffd}\"");
    }
}
