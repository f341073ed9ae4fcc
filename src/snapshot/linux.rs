//! The Linux reader: one pass over `/proc`, every read relative to an open `/proc/PID`
//! directory so that a pid reused mid-read cannot mix two processes' files.
//!
//! For every pid it reads exactly `stat`, `cmdline`, and the `cwd` and `exe` links (text via
//! `readlinkat`; identity and link count via `statx` through the link (see `identity_of`): always for `cwd`, for
//! `exe` only when the text ends in ` (deleted)`, see [`Identity`]). Nothing else is read for
//! every process: reads that few processes need are done later, on demand, by pid, and say
//! why they failed ([`ReadError`]). It parses nothing itself (see [`super::parse`]) and never
//! follows a path taken from a process except through the kernel's magic links. See proc(5).
//!
//! A link it could not read or follow is never taken for one that is not there: only
//! `ENOENT`/`ESRCH` mean absent (a kernel thread, a zombie, a process gone), `EACCES` means
//! denied, and anything else (a `stat` through the link on a FUSE or network mount that does
//! not answer) leaves the process not inspected ([`LinkError::Failed`]), for the verdict to
//! count. A `cwd` too long for the kernel to print is placed by the directories above it
//! ([`long_link`]).

use super::cgroupfs::{Answer, Walked};
use super::parse::cgroup::{hierarchies, systemd_cgroup};
use super::parse::environ::environ_keys;
use super::parse::maps::{maps_entry, maps_path};
use super::parse::mountinfo::{cgroup_mounts, proc_hides_pids};
use super::parse::stat::{parse_stat, Stat};
use super::parse::status::{effective_caps, CAP_SYS_PTRACE};
use super::read::{
    read_at, read_capped_at, stream_lines_at, Got, ReadUntil, ARGS_CAP, ARGS_SHORT,
    LONG_ARGS_BUDGET,
};
use super::{
    ArgsWorthKeeping, CgroupAndEnv, Clock, Cmdline, Comm, HeldFile, HeldFiles, Link, LinkError,
    PidStat, ProcSource, Process, ProcessSeen, ReadError, SeenAgain, Snapshot,
};
use nix::errno::Errno;
use nix::fcntl::{openat, readlinkat, AtFlags, OFlag};
use nix::sys::stat::{fstat, fstatat, Mode};
use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Below this many processes wanting their cgroup, read `/proc/PID/cgroup` one by one rather
/// than walk the cgroup tree.
const WALK_MIN: usize = 16;

/// The fewest pids worth a thread of their own: below this, starting a thread costs more than
/// it saves (a pid costs a few microseconds, a thread about fifty).
const PIDS_PER_JOB: usize = 256;

/// The fewest processes a thread reads the maps and descriptors of (see
/// [`ProcSource::held_files_all`]): each costs tens of times a `stat` read, so a thread pays
/// for itself sooner.
const HELD_PER_JOB: usize = 16;

/// The most threads the default takes, however many CPUs the host has: the pass is system
/// calls into procfs, and a monitoring tool should not take over a big host for its scan.
const MAX_DEFAULT_JOBS: usize = 4;

/// How many threads read /proc when nobody says: the CPUs this process may use, at most
/// [`MAX_DEFAULT_JOBS`].
pub fn default_jobs() -> usize {
    std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1)
        .clamp(1, MAX_DEFAULT_JOBS)
}

/// Reads the live `/proc` (or another procfs mount, for tests).
pub struct LinuxProc {
    root: PathBuf,
    /// `root` opened once: each `/proc/PID` is opened relative to it.
    root_dir: Option<OwnedFd>,
    buf: Vec<u8>,
    own_mnt_ns: Option<OsString>,
    /// How many cgroups the last [`ProcSource::cgroup_and_env`] took from a walk of the cgroup
    /// tree.
    walked: usize,
    /// How many threads the pass over /proc may use (1: the calling thread only).
    jobs: usize,
    /// `root` is a procfs mount, whose pid directories' inode numbers tell processes apart
    /// (see [`ProcessSeen::dir_ino`]); a tree of plain files standing in for it in tests is
    /// not.
    procfs: bool,
    /// Which command lines longer than [`ARGS_SHORT`] the next pass keeps.
    keep: ArgsWorthKeeping,
}

impl Default for LinuxProc {
    fn default() -> Self {
        Self::new("/proc")
    }
}

impl LinuxProc {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        let own_mnt_ns = std::fs::read_link(root.join("self/ns/mnt"))
            .ok()
            .map(|p| p.into_os_string());
        let root_dir = nix::fcntl::open(
            &root,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .ok();
        let procfs = root_dir.as_ref().is_some_and(|dir| {
            nix::sys::statfs::fstatfs(dir)
                .is_ok_and(|fs| fs.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC)
        });
        LinuxProc {
            root,
            root_dir,
            buf: Vec::with_capacity(4096),
            own_mnt_ns,
            walked: 0,
            jobs: default_jobs(),
            procfs,
            keep: ArgsWorthKeeping::default(),
        }
    }

    /// Read /proc with up to `jobs` threads (at least one: the caller's). Each takes a
    /// contiguous run of pids, so the processes come back in pid order whatever the number.
    pub fn with_jobs(mut self, jobs: usize) -> Self {
        self.jobs = jobs.max(1);
        self
    }

    /// Do we hold `CAP_SYS_PTRACE` (bit 19 of our CapEff; root has it)? Then the kernel's
    /// ownership rules let us read every process's links, and only a security policy can
    /// refuse one (see [`Snapshot::shielded`]).
    fn holds_ptrace(&self) -> bool {
        std::fs::read_to_string(self.root.join("self/status"))
            .ok()
            .and_then(|status| effective_caps(&status))
            .is_some_and(|caps| caps & CAP_SYS_PTRACE != 0)
    }

    /// Does this /proc hide other users' processes from us? Only when it is mounted with
    /// `hidepid=`/`subset=pid` and we are neither root nor hold CAP_SYS_PTRACE (`ptrace`),
    /// which see through it.
    fn hides_pids(&self, ptrace: bool) -> bool {
        if nix::unistd::geteuid().is_root() || ptrace {
            return false;
        }
        std::fs::read(self.root.join("self/mountinfo")).is_ok_and(|m| proc_hides_pids(&m))
    }

    /// How many cgroups the last [`ProcSource::cgroup_and_env`] call took from one walk of the
    /// cgroup tree instead of `/proc/PID/cgroup` (for tests).
    pub fn cgroups_walked(&self) -> usize {
        self.walked
    }

    /// What readers of this /proc on any thread share.
    fn proc_root(&self) -> ProcRoot<'_> {
        ProcRoot::of(&self.root, &self.root_dir, &self.own_mnt_ns, self.procfs)
    }

    fn open_pid(&self, pid: i32) -> nix::Result<OwnedFd> {
        self.proc_root().open_pid(pid)
    }

    /// [`LinuxProc::proc_root`] beside the buffer of the calling thread.
    fn proc_root_and_buf(&mut self) -> (ProcRoot<'_>, &mut Vec<u8>) {
        let root = ProcRoot::of(&self.root, &self.root_dir, &self.own_mnt_ns, self.procfs);
        (root, &mut self.buf)
    }

    /// One walk of the cgroup tree for the wanted pids, when it is cheaper than reading each
    /// `/proc/PID/cgroup` and gives the same answers (see [`super::cgroupfs`]).
    fn walk_cgroups(&mut self, wanted: &[i32]) -> Option<Walked> {
        if wanted.len() < WALK_MIN {
            return None;
        }
        let root = self.root_dir.as_ref()?;
        read_at(&mut self.buf, root, "self/cgroup", ReadUntil::Eof).ok()?;
        let uses = hierarchies(&self.buf);
        read_at(&mut self.buf, root, "self/mountinfo", ReadUntil::Eof).ok()?;
        let mounts = cgroup_mounts(&self.buf);
        // A directory costs about 8 system calls, a process's own cgroup file about 5.
        let budget = wanted.len() * 5 / 8;
        Walked::new(&mounts, uses, wanted, budget, &mut self.buf)
    }

    /// The cgroup (unless the walk already knew it: `walked`) and the environment keys `keys`
    /// of one process, read through one open of `/proc/PID`.
    fn read_cgroup_and_env(
        &mut self,
        pid: i32,
        walked: Option<Option<Vec<u8>>>,
        keys: &[&'static str],
    ) -> CgroupAndEnv {
        if walked.is_some() && keys.is_empty() {
            // Nothing left to read: `/proc/PID` is not even opened.
            return CgroupAndEnv {
                cgroup: Ok(walked.flatten()),
                env: Ok(Vec::new()),
            };
        }
        let dir = self.open_pid(pid).map_err(ReadError::from);
        let cgroup = match (walked, &dir) {
            (Some(cgroup), _) => Ok(cgroup),
            (None, Err(e)) => Err(*e),
            (None, Ok(dir)) => read_at(&mut self.buf, dir, "cgroup", ReadUntil::ShortRead)
                .map(|()| systemd_cgroup(&self.buf).map(<[u8]>::to_vec))
                .map_err(ReadError::from),
        };
        let env = match (keys, &dir) {
            ([], _) => Ok(Vec::new()),
            (_, Err(e)) => Err(*e),
            (_, Ok(dir)) => {
                // The first 64 KiB: a key beyond them reads as absent (a name "could not be
                // read"), and an entry cut by the cap is not taken at all.
                let env = read_capped_at(&mut self.buf, dir, "environ", ReadUntil::Eof, ARGS_CAP)
                    .map(|got| {
                        let whole = match got {
                            Got::Whole => &self.buf[..],
                            Got::Truncated => match memchr::memrchr(0, &self.buf) {
                                Some(end) => &self.buf[..end],
                                None => &[],
                            },
                        };
                        environ_keys(whole, keys)
                    })
                    .map_err(ReadError::from);
                // The buffer held every value of the environment: do not keep it around.
                self.buf.iter_mut().for_each(|b| *b = 0);
                self.buf.clear();
                env
            }
        };
        CgroupAndEnv { cgroup, env }
    }
}

/// An open `/proc` and what every reader of it shares, on whichever thread: where it is, and
/// our own mount namespace.
#[derive(Clone, Copy)]
struct ProcRoot<'a> {
    root: &'a Path,
    /// `root` opened once: each `/proc/PID` is opened relative to it.
    root_dir: Option<&'a OwnedFd>,
    own_mnt_ns: Option<&'a OsStr>,
    /// See [`LinuxProc::procfs`].
    procfs: bool,
}

impl<'a> ProcRoot<'a> {
    /// From [`LinuxProc`]'s fields, not the whole reader, so that
    /// [`LinuxProc::proc_root_and_buf`] can lend its buffer beside it.
    fn of(
        root: &'a Path,
        root_dir: &'a Option<OwnedFd>,
        own_mnt_ns: &'a Option<OsString>,
        procfs: bool,
    ) -> Self {
        ProcRoot {
            root,
            root_dir: root_dir.as_ref(),
            own_mnt_ns: own_mnt_ns.as_deref(),
            procfs,
        }
    }

    /// See [`ProcSource::held_files`]: on any thread, with its own buffer.
    fn held_files(
        self,
        buf: &mut Vec<u8>,
        pid: i32,
        wanted: &dyn Fn(&[u8]) -> bool,
    ) -> Result<HeldFiles, ReadError> {
        use std::os::unix::ffi::OsStrExt;
        let dir = self.open_pid(pid)?;
        let mut out = HeldFiles::default();
        // Streamed like `mapped_files`: only the wanted paths are kept.
        stream_lines_at(buf, &dir, "maps", ARGS_CAP, &mut |line| {
            if let Some((path, dev, ino)) = maps_entry(line) {
                let last = out.mapped.last().map(|l| l.path.as_bytes());
                if wanted(path) && last != Some(path) {
                    out.mapped.push(HeldFile {
                        path: OsStr::from_bytes(path).to_os_string(),
                        identity: Some((dev, ino, None)),
                    });
                }
            }
        })?;
        let (entries, names) = descriptors(&dir)?;
        for n in &names {
            // A descriptor closed since the listing is not there; a target we may not read
            // leaves the process as its cwd and exe placed it.
            let Ok(target) = readlinkat(&entries, n.as_c_str()) else {
                continue;
            };
            if !wanted(target.as_bytes()) {
                continue;
            }
            // As a cwd's: the kernel's cached numbers, no round trip to a FUSE daemon.
            let identity = identity_of(&entries, n.as_c_str())
                .ok()
                .map(|(dev, ino, nlink)| (u64::from(dev), ino, Some(nlink)));
            out.open.push(HeldFile {
                path: target,
                identity,
            });
        }
        Ok(out)
    }

    /// `/proc/PID` as a directory, relative to the open `/proc` when there is one.
    fn open_pid(self, pid: i32) -> nix::Result<OwnedFd> {
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        match self.root_dir {
            Some(dir) => openat(dir, pid.to_string().as_str(), flags, Mode::empty()),
            None => nix::fcntl::open(&self.root.join(pid.to_string()), flags, Mode::empty()),
        }
    }

    /// `/proc/PID/stat` in one open (`PID/stat` relative to the open `/proc`), for looks that
    /// need nothing else from the process (two system calls fewer than opening the directory
    /// first).
    fn stat_of(self, buf: &mut Vec<u8>, pid: i32) -> Result<Stat<'_>, ReadError> {
        match self.root_dir {
            Some(root) => {
                let name = format!("{pid}/stat");
                read_at(buf, root, &name, ReadUntil::ShortRead)?;
            }
            None => {
                let dir = self.open_pid(pid)?;
                read_at(buf, &dir, "stat", ReadUntil::ShortRead)?;
            }
        }
        parse_stat(buf).map_err(|_| ReadError::Malformed)
    }

    /// Another mount namespace with another root directory, seen through an open `/proc/PID`.
    /// A systemd service with PrivateTmp= or ProtectSystem= (relwatch's own unit, or the
    /// app's) has its own mount namespace yet sees the same paths: only a different root
    /// directory (a container, a chroot) means its paths are not ours. An error only when
    /// its namespace cannot be read (another user's process, without privilege).
    fn foreign_at(self, dir: &OwnedFd) -> Result<bool, ReadError> {
        Ok(self.namespace_at(dir)? == SeenAgain::Foreign)
    }

    /// Which mount namespace the process behind `dir` lives in: ours ([`SeenAgain::Same`]),
    /// another under our root ([`SeenAgain::Elsewhere`]) or another root
    /// ([`SeenAgain::Foreign`]).
    fn namespace_at(self, dir: &OwnedFd) -> Result<SeenAgain, ReadError> {
        let Some(own) = self.own_mnt_ns else {
            return Ok(SeenAgain::Same);
        };
        let theirs = readlinkat(dir, "ns/mnt")?;
        if theirs.as_os_str() == own {
            return Ok(SeenAgain::Same);
        }
        let ours = nix::sys::stat::stat(&self.root.join("self/root"))
            .ok()
            .map(|s| (s.st_dev, s.st_ino));
        let theirs = identity_of(dir, c"root")
            .ok()
            .map(|(dev, ino, _)| (u64::from(dev), ino));
        Ok(match (ours, theirs) {
            (Some(ours), Some(theirs)) if ours == theirs => SeenAgain::Elsewhere,
            // Another namespace whose root cannot be compared with ours: not ours.
            _ => SeenAgain::Foreign,
        })
    }

    /// The second look at one process (see [`ProcSource::look_again`]): a process that is
    /// gone is an answer, not an error.
    fn look_again(self, buf: &mut Vec<u8>, seen: ProcessSeen) -> Result<SeenAgain, ReadError> {
        match self.look_again_or_gone(buf, seen) {
            Err(ReadError::Gone) => Ok(SeenAgain::Gone),
            answer => answer,
        }
    }

    /// The pid directory's inode number answers "the same process?" with one `fstatat`, where
    /// reading `stat` again costs an open, a read and a close, and the kernel's formatting of
    /// `stat` (about four times as long on the reference machine, docs/BENCHMARKS.md); the
    /// start time decides when the number changed or is not known.
    fn look_again_or_gone(
        self,
        buf: &mut Vec<u8>,
        seen: ProcessSeen,
    ) -> Result<SeenAgain, ReadError> {
        let known = |st: nix::Result<nix::sys::stat::FileStat>| {
            seen.dir_ino != 0 && st.is_ok_and(|st| st.st_ino == seen.dir_ino)
        };
        if !seen.paths {
            // No directory to keep open: only "the same process?" is asked.
            if let Some(root) = self.root_dir.filter(|_| seen.dir_ino != 0) {
                let name = seen.pid.to_string();
                if known(fstatat(root, name.as_str(), AtFlags::AT_SYMLINK_NOFOLLOW)) {
                    return Ok(SeenAgain::Same);
                }
            }
            let stat = self.stat_of(buf, seen.pid)?;
            return Ok(if stat.start_ticks == seen.start_ticks {
                SeenAgain::Same
            } else {
                SeenAgain::Gone
            });
        }
        let dir = self.open_pid(seen.pid)?;
        if !known(fstat(&dir)) {
            read_at(buf, &dir, "stat", ReadUntil::ShortRead)?;
            let stat = parse_stat(buf).map_err(|_| ReadError::Malformed)?;
            if stat.start_ticks != seen.start_ticks {
                return Ok(SeenAgain::Gone);
            }
        }
        // Read through the same directory: the process whose start time we just checked. A
        // namespace we may not read is an error, never "ours": whether its paths mean what
        // they say is not known, and the caller counts the process as not inspected.
        self.namespace_at(&dir)
    }
}

/// Run `work` over `items` split into up to `jobs` contiguous chunks of at least
/// [`PIDS_PER_JOB`], each on a thread of its own but the first, which the caller's thread
/// takes. The results come back in the order of the chunks. A thread that cannot be started
/// (a process limit) leaves its chunk to the caller's thread: slower, never wrong.
fn split_over_threads<T: Sync, S: Send>(
    items: &[T],
    jobs: usize,
    work: impl Fn(&[T]) -> S + Sync,
) -> Vec<S> {
    split_at_least(items, jobs, PIDS_PER_JOB, work)
}

/// [`split_over_threads`] with chunks of at least `per_job` items: fewer for work that costs
/// more an item (a process's maps and descriptors).
fn split_at_least<T: Sync, S: Send>(
    items: &[T],
    jobs: usize,
    per_job: usize,
    work: impl Fn(&[T]) -> S + Sync,
) -> Vec<S> {
    let jobs = jobs.min(items.len() / per_job.max(1)).max(1);
    if jobs == 1 {
        return vec![work(items)];
    }
    let work = &work;
    let mut chunks = items.chunks(items.len().div_ceil(jobs));
    let first = chunks.next().unwrap_or_default();
    std::thread::scope(|scope| {
        let started: Vec<_> = chunks
            .map(|chunk| {
                let thread = std::thread::Builder::new()
                    .name("relwatch-proc".into())
                    // The deepest frame is a link read with its 4 KiB buffer.
                    .stack_size(128 * 1024)
                    .spawn_scoped(scope, move || work(chunk));
                (chunk, thread)
            })
            .collect();
        let mut results = Vec::with_capacity(started.len() + 1);
        results.push(work(first));
        for (chunk, thread) in started {
            results.push(match thread {
                Ok(handle) => handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                Err(_) => work(chunk),
            });
        }
        results
    })
}

/// Reads one chunk of the pids on one thread (see [`split_over_threads`]): its own read buffer
/// and its own set of link targets, so that threads share nothing while they read.
struct ChunkReader<'a> {
    proc_root: ProcRoot<'a>,
    /// Which long command lines are kept, and the bytes of them all threads may still keep.
    keep: &'a ArgsWorthKeeping,
    budget: &'a AtomicUsize,
    buf: Vec<u8>,
    /// Link targets seen by this reader, so that equal ones share one allocation.
    targets: HashSet<Arc<OsStr>>,
    processes: Vec<Process>,
    vanished: usize,
    /// Out of file descriptors (`EMFILE`, `ENFILE`): the scan is an error, not vanished pids.
    exhausted: Option<Errno>,
}

impl<'a> ChunkReader<'a> {
    fn new(
        proc_root: ProcRoot<'a>,
        (keep, budget): (&'a ArgsWorthKeeping, &'a AtomicUsize),
        pids: usize,
    ) -> Self {
        ChunkReader {
            proc_root,
            keep,
            budget,
            buf: Vec::with_capacity(4096),
            targets: HashSet::new(),
            processes: Vec::with_capacity(pids),
            vanished: 0,
            exhausted: None,
        }
    }

    fn run(mut self, pids: &[i32]) -> Self {
        for &pid in pids {
            match self.process(pid) {
                Some(p) => self.processes.push(p),
                None => self.vanished += 1,
            }
        }
        self
    }

    /// One process, or `None` when it vanished (or cannot be known at all).
    fn process(&mut self, pid: i32) -> Option<Process> {
        let dir = match self.proc_root.open_pid(pid) {
            Ok(dir) => dir,
            Err(e @ (Errno::EMFILE | Errno::ENFILE)) => {
                self.exhausted = Some(e);
                return None;
            }
            Err(_) => return None,
        };
        // A stat line we cannot parse is treated like a vanished process: we cannot know
        // anything about it, and proc(5) guarantees the format for live processes.
        if let Err(e) = read_at(&mut self.buf, &dir, "stat", ReadUntil::ShortRead) {
            if matches!(e, Errno::EMFILE | Errno::ENFILE) {
                self.exhausted = Some(e);
            }
            return None;
        }
        let stat = parse_stat(&self.buf).ok()?;
        let (ppid, kernel_thread, state, start_ticks) = (
            stat.ppid,
            stat.kernel_thread(),
            stat.state,
            stat.start_ticks,
        );
        let reaped = (stat.reaped_faults, stat.reaped_ticks);
        let comm = Comm::from(stat.comm);
        let (uid, dir_ino) = match fstat(&dir) {
            Ok(st) => (st.st_uid, if self.proc_root.procfs { st.st_ino } else { 0 }),
            Err(_) => (u32::MAX, 0),
        };
        let args = read_capped_at(
            &mut self.buf,
            &dir,
            "cmdline",
            ReadUntil::ShortRead,
            ARGS_CAP,
        );
        let proc = self.proc_root.root;
        let cwd = read_link(proc, &dir, c"cwd", &mut self.targets, Identity::Always);
        let exe = read_link(proc, &dir, c"exe", &mut self.targets, Identity::WhenDeleted);
        // Unreadable arguments read as none, as they always have (a kernel thread has none).
        let (cmdline, cmdline_truncated) = match args {
            Ok(got) => self.kept_args(got, [&cwd, &exe]),
            Err(_) => (Cmdline::default(), false),
        };
        Some(Process {
            pid,
            ppid,
            kernel_thread,
            cmdline_truncated,
            comm,
            state,
            start_ticks,
            uid,
            dir_ino,
            cmdline,
            cwd,
            exe,
            reaped,
        })
    }

    /// The arguments in the buffer, as kept: whole up to [`ARGS_SHORT`]; up to the cap when the
    /// process's arguments, `cwd` or `exe` name a path worth keeping them for and the pass's
    /// budget has room; otherwise the arguments that end within [`ARGS_SHORT`] (or the first
    /// one's start, when it alone is longer), marked cut. What decides a verdict is never cut
    /// here: a path of a deploy root, in the arguments or the links.
    fn kept_args(&self, got: Got, links: [&Result<Link, LinkError>; 2]) -> (Cmdline, bool) {
        // A retitled process pads with NULs: they are no arguments (see `Cmdline::parse`).
        let used = self.buf.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        let args = &self.buf[..used];
        let cut = got == Got::Truncated;
        if args.len() <= ARGS_SHORT {
            return (Cmdline::parse(args), cut);
        }
        let named = |l: &&Result<Link, LinkError>| {
            l.as_ref().is_ok_and(|l| {
                self.keep
                    .named_in(std::os::unix::ffi::OsStrExt::as_bytes(&*l.target))
            })
        };
        let matters = self.keep.named_in(args) || links.iter().any(named);
        let afforded = || {
            self.budget
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                    left.checked_sub(args.len())
                })
                .is_ok()
        };
        if matters && afforded() {
            return (Cmdline::parse(args), cut);
        }
        let short = &args[..ARGS_SHORT];
        let end = memchr::memrchr(0, short).unwrap_or(ARGS_SHORT);
        (Cmdline::parse(&short[..end]), true)
    }

    /// Take in the processes of a reader that read the next chunk of pids. Its link targets
    /// are swapped for equal ones this reader already holds, so equal targets still share one
    /// allocation however many threads read them.
    fn append(&mut self, mut other: ChunkReader<'_>) {
        for p in &mut other.processes {
            for link in [&mut p.cwd, &mut p.exe].into_iter().flatten() {
                match self.targets.get(&link.target) {
                    Some(shared) => link.target = shared.clone(),
                    None => {
                        self.targets.insert(link.target.clone());
                    }
                }
            }
        }
        self.processes.append(&mut other.processes);
        self.vanished += other.vanished;
        self.exhausted = self.exhausted.or(other.exhausted);
    }
}

/// Read every pid in `pids` (sorted) with up to `jobs` threads, in pid order. Running out of
/// file descriptors is an error that says so, never pids counted as vanished.
fn read_all(
    proc_root: ProcRoot<'_>,
    keep: &ArgsWorthKeeping,
    pids: &[i32],
    jobs: usize,
) -> std::io::Result<(Vec<Process>, usize)> {
    let budget = AtomicUsize::new(LONG_ARGS_BUDGET);
    let mut readers = split_over_threads(pids, jobs, |chunk| {
        ChunkReader::new(proc_root, (keep, &budget), chunk.len()).run(chunk)
    })
    .into_iter();
    let Some(mut all) = readers.next() else {
        return Ok((Vec::new(), 0));
    };
    for reader in readers {
        all.append(reader);
    }
    if let Some(e) = all.exhausted {
        // The caller says what it means for the run and how to fix it.
        return Err(std::io::Error::from_raw_os_error(e as i32));
    }
    // The processes hold the targets now; the set would only keep them alive.
    all.targets = HashSet::new();
    Ok((all.processes, all.vanished))
}

/// When [`read_link`] stats through a link for the identity and link count of its target.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Identity {
    /// Always: `cwd`, whose identity places a process at a release's top directory however
    /// the path is spelled (the attribution stage relies on it).
    Always,
    /// Only when the text ends in ` (deleted)`: `exe`. Its identity places nothing (releases
    /// are directories) and only its link count matters. The kernel adds the suffix exactly
    /// when the file is unlinked (`d_unlinked` in `d_path`), so a text without it is a file
    /// that still exists, and a text with it is confirmed by the link count, never taken on
    /// its word (a file may be named `x (deleted)`). One `fstatat` fewer per process: through a
    /// magic link it costs about half a `readlinkat` (docs/BENCHMARKS.md).
    WhenDeleted,
}

/// Read a magic link's text and, as `identity` says, what it leads to. The text is read into a
/// buffer on the stack and copied only when no process before had the same (nix's
/// `readlinkat` allocated 4 KiB per call and shrank it). A text the kernel cannot print (a
/// path longer than a page) is [`long_link`]'s.
fn read_link(
    proc: &Path,
    dir: impl AsFd + Copy,
    name: &std::ffi::CStr,
    targets: &mut HashSet<Arc<OsStr>>,
    identity: Identity,
) -> Result<Link, LinkError> {
    use std::os::unix::ffi::OsStrExt;
    // Not zeroed: the kernel writes the bytes that are read back (4 KiB of memset per link
    // showed in the profile).
    let mut scratch = [std::mem::MaybeUninit::<u8>::uninit(); 4097];
    let long;
    let text = match rustix::fs::readlinkat_raw(dir, name, &mut scratch[..]) {
        Ok((read, rest)) if !rest.is_empty() => OsStr::from_bytes(read),
        // Longer than any path the kernel prints, but a link may say anything: read it whole.
        Ok(_) => match readlinkat(dir, name) {
            Ok(text) => {
                long = text;
                long.as_os_str()
            }
            Err(Errno::ENAMETOOLONG) => return long_link(proc, dir, name, targets),
            Err(e) => return Err(link_error(e)),
        },
        Err(rustix::io::Errno::NAMETOOLONG) => return long_link(proc, dir, name, targets),
        Err(e) => return Err(link_error(Errno::from_raw(e.raw_os_error()))),
    };
    let (dev, ino, nlink) =
        if identity == Identity::Always || text.as_bytes().ends_with(Link::DELETED) {
            identity_of(dir, name)?
        } else {
            (0, 0, 1)
        };
    Ok(Link {
        target: shared(targets, text),
        dev,
        ino,
        nlink,
    })
}

/// `(dev, ino, nlink)` of what the magic link `dir/name` leads to, as [`Link`] keeps them.
///
/// Asked with `statx` and an empty mask plus `AT_STATX_DONT_SYNC`: the numbers the kernel holds
/// for the inode, never a fresh round trip to the file system. A plain `stat` through a cwd on
/// FUSE asks the FUSE daemon (`GETATTR`); a user whose daemon stops answering would hang the
/// scan, and a FUSE mount without `allow_other` answers root with `EACCES`. With an empty mask
/// FUSE fills the reply from its cache and asks nobody, and NFS does not revalidate; local file
/// systems answer exactly as `stat` does (tests/hostile_users.rs, the FUSE test).
///
/// Both numbers fit in 32 bits (see `Link::dev`); were one ever wider, the identity is not
/// taken and the link counts as not deleted, as when it was not statted.
fn identity_of(dir: impl AsFd, name: &std::ffi::CStr) -> Result<(u32, u64, u32), LinkError> {
    use rustix::fs::{statx, AtFlags as At, StatxFlags};
    let st = statx(dir, name, At::STATX_DONT_SYNC, StatxFlags::empty())
        .map_err(|e| link_error(Errno::from_raw(e.raw_os_error())))?;
    let dev = rustix::fs::makedev(st.stx_dev_major, st.stx_dev_minor);
    Ok(match u32::try_from(dev) {
        Ok(dev) => (dev, st.stx_ino, st.stx_nlink),
        Err(_) => (0, 0, 1),
    })
}

/// The shared copy of a link text (see [`Link::target`]).
fn shared(targets: &mut HashSet<Arc<OsStr>>, text: &OsStr) -> Arc<OsStr> {
    match targets.get(text) {
        Some(shared) => shared.clone(),
        None => {
            let new: Arc<OsStr> = text.into();
            targets.insert(new.clone());
            new
        }
    }
}

/// The most directories [`printable_ancestor`] climbs. A path the kernel cannot print is
/// longer than a page; climbing this many levels drops it below one unless its names average
/// under a few bytes, which only a hostile tree does: that process is then counted as not
/// inspected ([`LinkError::Failed`]), never dropped.
const MAX_CLIMB: usize = 512;

/// A link whose text the kernel cannot print: its path is longer than a page (`d_path` gives
/// `ENAMETOOLONG`), yet `stat` through it works. Its identity and link count come from that
/// `stat`, and its text is the nearest directory above it whose path prints, followed by
/// [`Link::BELOW`]: a worker deep in `releases/65/node_modules/...` is still placed on release
/// 65, and is still known deleted. Only a directory can be climbed: a `cwd`, never an `exe`,
/// whose text stays unknown ([`LinkError::Failed`]).
fn long_link(
    proc: &Path,
    dir: impl AsFd + Copy,
    name: &std::ffi::CStr,
    targets: &mut HashSet<Arc<OsStr>>,
) -> Result<Link, LinkError> {
    use std::os::unix::ffi::OsStrExt;
    let (dev, ino, nlink) = identity_of(dir, name)?;
    let mut text = printable_ancestor(proc, dir, name).ok_or(LinkError::Failed)?;
    text.extend_from_slice(Link::BELOW.as_bytes());
    Ok(Link {
        target: shared(targets, OsStr::from_bytes(&text)),
        dev,
        ino,
        nlink,
    })
}

/// The path of the nearest directory above the directory `dir/name` leads to whose path the
/// kernel can print (through `/proc/self/fd`), climbing `..` by open descriptors (`O_PATH`),
/// at most [`MAX_CLIMB`] levels. A deleted directory's ` (deleted)` suffix is dropped when its
/// link count confirms it.
fn printable_ancestor(proc: &Path, dir: impl AsFd, name: &std::ffi::CStr) -> Option<Vec<u8>> {
    use std::os::fd::AsRawFd;
    use std::os::unix::ffi::OsStringExt;
    let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let mut at = openat(dir, name, flags, Mode::empty()).ok()?;
    for _ in 0..MAX_CLIMB {
        let up = openat(&at, "..", flags, Mode::empty()).ok()?;
        let fd_link = proc.join(format!("self/fd/{}", up.as_raw_fd()));
        match nix::fcntl::readlink(&fd_link) {
            Ok(text) => {
                let mut text = text.into_vec();
                if fstat(&up).is_ok_and(|st| st.st_nlink == 0) && text.ends_with(Link::DELETED) {
                    text.truncate(text.len() - Link::DELETED.len());
                }
                return Some(text);
            }
            Err(Errno::ENAMETOOLONG) => at = up,
            Err(_) => return None,
        }
    }
    None
}

/// Why a link could not be read: denied, gone (the process or its link: a kernel thread has
/// no `exe`, a zombie no `cwd`), or anything else, which leaves the process not inspected.
fn link_error(e: Errno) -> LinkError {
    match e {
        Errno::EACCES | Errno::EPERM => LinkError::Denied,
        Errno::ENOENT | Errno::ESRCH => LinkError::Absent,
        _ => LinkError::Failed,
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
    fn keep_args_naming(&mut self, keep: ArgsWorthKeeping) {
        self.keep = keep;
    }

    fn snapshot(&mut self) -> std::io::Result<Snapshot> {
        let clock = clock_now();
        let mut pids: Vec<i32> = std::fs::read_dir(&self.root)?
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()))
            .collect();
        pids.sort_unstable();
        let (processes, vanished) = read_all(self.proc_root(), &self.keep, &pids, self.jobs)?;
        let mut snap = Snapshot::new(processes, clock, std::process::id() as i32, vanished);
        snap.ptrace = self.holds_ptrace();
        snap.hidden_pids = self.hides_pids(snap.ptrace);
        Ok(snap)
    }

    fn stat(&mut self, pid: i32) -> Result<PidStat, ReadError> {
        let (proc_root, buf) = self.proc_root_and_buf();
        let stat = proc_root.stat_of(buf, pid)?;
        Ok(PidStat {
            state: stat.state,
            start_ticks: stat.start_ticks,
            reaped_faults: stat.reaped_faults,
            reaped_ticks: stat.reaped_ticks,
        })
    }

    fn look_again(&mut self, seen: ProcessSeen) -> Result<SeenAgain, ReadError> {
        let (proc_root, buf) = self.proc_root_and_buf();
        proc_root.look_again(buf, seen)
    }

    fn look_again_all(&mut self, seen: &[ProcessSeen]) -> Vec<Result<SeenAgain, ReadError>> {
        let proc_root = self.proc_root();
        // A look at a process placed by a path reads its namespace too, about twice the cost,
        // and such processes come in runs of pids (the workers one master forked). Dealt out
        // in turn rather than cut in chunks, every thread gets its share of both kinds.
        let ways = self.jobs.max(1);
        let dealt: Vec<(usize, ProcessSeen)> = (0..ways)
            .flat_map(|way| seen.iter().copied().enumerate().skip(way).step_by(ways))
            .collect();
        let mut answers: Vec<(usize, Result<SeenAgain, ReadError>)> =
            split_over_threads(&dealt, self.jobs, |chunk| {
                let mut buf = Vec::with_capacity(1024);
                chunk
                    .iter()
                    .map(|&(i, seen)| (i, proc_root.look_again(&mut buf, seen)))
                    .collect::<Vec<_>>()
            })
            .into_iter()
            .flatten()
            .collect();
        answers.sort_unstable_by_key(|&(i, _)| i);
        answers.into_iter().map(|(_, answer)| answer).collect()
    }

    fn cgroup_and_env(
        &mut self,
        pids: &[i32],
        keys: &dyn Fn(i32) -> &'static [&'static str],
        each: &mut dyn FnMut(i32, CgroupAndEnv),
    ) {
        let sorted;
        let wanted: &[i32] = if pids.is_sorted() {
            pids
        } else {
            let mut v = pids.to_vec();
            v.sort_unstable();
            sorted = v;
            &sorted
        };
        let walk = self.walk_cgroups(wanted);
        self.walked = 0;
        for &pid in pids {
            let at = wanted.binary_search(&pid).unwrap_or(usize::MAX);
            let walked = match walk.as_ref().map(|w| w.get(at)) {
                Some(Answer::Path(path)) => {
                    self.walked += 1;
                    Some(path.map(<[u8]>::to_vec))
                }
                Some(Answer::Unknown) | None => None,
            };
            let reads = self.read_cgroup_and_env(pid, walked, keys(pid));
            each(pid, reads);
        }
    }

    fn open_files(&mut self, pid: i32) -> Result<Vec<OsString>, ReadError> {
        let dir = self.open_pid(pid)?;
        let (entries, names) = descriptors(&dir)?;
        // A descriptor closed since the listing is simply not there; one whose target could
        // not be read (denied, or a path too long to print) leaves the process not inspected.
        let mut targets = Vec::with_capacity(names.len());
        for n in &names {
            match readlinkat(&entries, n.as_c_str()) {
                Ok(target) => targets.push(target),
                Err(Errno::ENOENT) => {}
                Err(e) => return Err(ReadError::from(e)),
            }
        }
        Ok(targets)
    }

    fn mapped_files(
        &mut self,
        pid: i32,
        wanted: &dyn Fn(&[u8]) -> bool,
    ) -> Result<Vec<OsString>, ReadError> {
        use std::os::unix::ffi::OsStrExt;
        let dir = self.open_pid(pid)?;
        let mut out: Vec<OsString> = Vec::new();
        // Streamed: a process with 65,530 mappings of 4 KiB paths has a 256 MiB `maps`, and
        // only the few paths asked about are kept. A line is at most a path (4 KiB, escaped at
        // most four times over) and the fields before it: one never fills the window.
        stream_lines_at(
            &mut self.buf,
            &dir,
            "maps",
            ARGS_CAP,
            &mut |line| match maps_path(line) {
                Some(p) if wanted(p) && out.last().map(|l| l.as_bytes()) != Some(p) => {
                    out.push(OsStr::from_bytes(p).to_os_string())
                }
                _ => {}
            },
        )?;
        Ok(out)
    }

    fn foreign_mount_ns(&mut self, pid: i32) -> Result<bool, ReadError> {
        let dir = self.open_pid(pid)?;
        self.proc_root().foreign_at(&dir)
    }

    fn held_files(
        &mut self,
        pid: i32,
        wanted: &dyn Fn(&[u8]) -> bool,
    ) -> Result<HeldFiles, ReadError> {
        let (proc_root, buf) = self.proc_root_and_buf();
        proc_root.held_files(buf, pid, wanted)
    }

    fn held_files_all(
        &mut self,
        pids: &[i32],
        wanted: &(dyn Fn(&[u8]) -> bool + Sync),
    ) -> Vec<Result<HeldFiles, ReadError>> {
        let proc_root = self.proc_root();
        split_at_least(pids, self.jobs, HELD_PER_JOB, |chunk| {
            let mut buf = Vec::with_capacity(4096);
            chunk
                .iter()
                .map(|pid| proc_root.held_files(&mut buf, *pid, wanted))
                .collect::<Vec<_>>()
        })
        .into_iter()
        .flatten()
        .collect()
    }

    fn mounts_of(&mut self, pid: i32) -> Result<Option<Vec<u8>>, ReadError> {
        let dir = self.open_pid(pid)?;
        if self.proc_root().namespace_at(&dir)? == SeenAgain::Same {
            return Ok(None);
        }
        read_mountinfo(&mut self.buf, &dir).map(Some)
    }

    fn own_mounts(&mut self) -> Result<Vec<u8>, ReadError> {
        let dir = self.open_pid(std::process::id() as i32)?;
        read_mountinfo(&mut self.buf, &dir)
    }
}

/// The `fd/` directory under an open `/proc/PID`, and the names of its descriptors.
fn descriptors(dir: &OwnedFd) -> nix::Result<(nix::dir::Dir, Vec<std::ffi::CString>)> {
    let fd_dir = openat(
        dir,
        "fd",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let mut entries = nix::dir::Dir::from_fd(fd_dir)?;
    let names = entries
        .iter()
        .flatten()
        .map(|e| e.file_name().to_owned())
        .filter(|n| n.as_bytes().first().is_some_and(u8::is_ascii_digit))
        .collect();
    Ok((entries, names))
}

/// `mountinfo` under an open `/proc/PID`: at most [`super::MOUNTINFO_CAP`] bytes, whole lines.
fn read_mountinfo(buf: &mut Vec<u8>, dir: &OwnedFd) -> Result<Vec<u8>, ReadError> {
    let got = read_capped_at(buf, dir, "mountinfo", ReadUntil::Eof, super::MOUNTINFO_CAP)?;
    let mut out = std::mem::take(buf);
    if got == Got::Truncated {
        let end = memchr::memrchr(b'\n', &out).map_or(0, |i| i + 1);
        out.truncate(end);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_come_back_in_order_and_cover_every_item() {
        let items: Vec<i32> = (0..1000).collect();
        let threads = std::sync::Mutex::new(HashSet::new());
        let runs = split_over_threads(&items, 3, |run| {
            threads
                .lock()
                .map(|mut t| t.insert(std::thread::current().id()))
                .ok();
            run.to_vec()
        });
        assert_eq!(runs.len(), 3);
        assert!(runs.iter().all(|r| r.len() >= PIDS_PER_JOB));
        assert_eq!(runs.concat(), items);
        assert_eq!(threads.lock().map(|t| t.len()).unwrap_or(0), 3);
    }

    #[test]
    fn few_items_stay_on_the_calling_thread() {
        let caller = std::thread::current().id();
        for (n, jobs) in [
            (0, 4),
            (1, 4),
            (2 * PIDS_PER_JOB - 1, 4),
            (5000, 1),
            (5000, 0),
        ] {
            let items: Vec<usize> = (0..n).collect();
            let runs = split_over_threads(&items, jobs, |run| {
                assert_eq!(std::thread::current().id(), caller);
                run.len()
            });
            assert_eq!(runs, [n], "{n} items, {jobs} jobs");
        }
    }

    #[test]
    fn second_looks_on_several_threads_answer_in_the_order_asked() {
        let mut proc_ = LinuxProc::default().with_jobs(4);
        let me = std::process::id() as i32;
        let Ok(started) = proc_.stat(me).map(|s| s.start_ticks) else {
            panic!("no start time for our own pid {me}");
        };
        // Above the largest pid_max Linux allows: never a process.
        let nobody = 4_194_305;
        let looks: Vec<ProcessSeen> = (0..5 * PIDS_PER_JOB)
            .map(|i| ProcessSeen {
                pid: if i % 3 == 0 { nobody } else { me },
                start_ticks: if i % 5 == 0 { started + 1 } else { started },
                paths: i % 2 == 0,
                // Unknown: the start time decides, so a wrong one is caught.
                dir_ino: 0,
            })
            .collect();
        let answers = proc_.look_again_all(&looks);
        assert_eq!(answers.len(), looks.len());
        for (i, (look, answer)) in looks.iter().zip(&answers).enumerate() {
            let same = look.pid == me && look.start_ticks == started;
            let want = if same {
                Ok(SeenAgain::Same)
            } else {
                Ok(SeenAgain::Gone)
            };
            assert_eq!(*answer, want, "look {i}: {look:?}");
        }
    }

    #[test]
    fn held_files_on_several_threads_answer_in_the_order_asked() {
        let mut proc_ = LinuxProc::default().with_jobs(4);
        let me = std::process::id() as i32;
        let nobody = 4_194_305;
        // Our own maps name the test binary: wanted, so every answer about us has it.
        let exe = std::fs::read_link("/proc/self/exe").unwrap_or_default();
        let exe = std::os::unix::ffi::OsStrExt::as_bytes(exe.as_os_str()).to_vec();
        let wanted = |path: &[u8]| path == exe.as_slice();
        let pids: Vec<i32> = (0..5 * HELD_PER_JOB)
            .map(|i| if i % 3 == 0 { nobody } else { me })
            .collect();
        let answers = proc_.held_files_all(&pids, &wanted);
        assert_eq!(answers.len(), pids.len());
        for (i, (pid, answer)) in pids.iter().zip(&answers).enumerate() {
            match answer {
                Ok(held) => {
                    assert_eq!(*pid, me, "answer {i} is about pid {pid}");
                    assert!(!held.mapped.is_empty(), "answer {i}: {held:?}");
                }
                Err(e) => assert_eq!((*pid, e), (nobody, &ReadError::Gone), "answer {i}"),
            }
        }
    }

    /// A child of a test, killed and reaped by its pid when dropped, even when an assertion
    /// failed first.
    struct Kid(std::process::Child);

    impl Drop for Kid {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    #[test]
    fn an_unchanged_pid_directory_is_the_same_process_without_reading_stat() {
        let mut proc_ = LinuxProc::default().with_jobs(1);
        let mut kid = match std::process::Command::new("sleep").arg("600").spawn() {
            Ok(child) => Kid(child),
            Err(e) => panic!("cannot start sleep: {e}"),
        };
        let pid = kid.0.id() as i32;
        let snap = match proc_.snapshot() {
            Ok(snap) => snap,
            Err(e) => panic!("cannot read /proc: {e}"),
        };
        let Some(p) = snap.get(pid).cloned() else {
            panic!("our child {pid} is not in the snapshot");
        };
        assert_ne!(p.dir_ino, 0, "the inode number of /proc/{pid} is kept");
        let look = |start_ticks, dir_ino, paths| ProcessSeen {
            pid,
            start_ticks,
            paths,
            dir_ino,
        };
        let (ticks, ino) = (p.start_ticks, p.dir_ino);
        for paths in [false, true] {
            assert_eq!(
                proc_.look_again(look(ticks, ino, paths)),
                Ok(SeenAgain::Same)
            );
            // The number decides and `stat` is not read: a start time off by one goes unseen.
            assert_eq!(
                proc_.look_again(look(ticks + 1, ino, paths)),
                Ok(SeenAgain::Same)
            );
            // Another or no number: the start time decides.
            assert_eq!(
                proc_.look_again(look(ticks, ino + 1, paths)),
                Ok(SeenAgain::Same)
            );
            assert_eq!(
                proc_.look_again(look(ticks + 1, ino + 1, paths)),
                Ok(SeenAgain::Gone)
            );
            assert_eq!(
                proc_.look_again(look(ticks + 1, 0, paths)),
                Ok(SeenAgain::Gone)
            );
        }
        let _ = kid.0.kill();
        let _ = kid.0.wait();
        for paths in [false, true] {
            // Exited and reaped: the number it had answers nothing.
            assert_eq!(
                proc_.look_again(look(ticks, ino, paths)),
                Ok(SeenAgain::Gone),
                "{paths}"
            );
        }
    }

    #[test]
    fn a_tree_that_is_not_procfs_is_judged_by_start_time() {
        let Ok(tmp) = tempfile::tempdir() else {
            panic!("no temp dir");
        };
        let root = tmp.path().join("proc");
        let dir = root.join("4242");
        let stat = |start: u64| {
            format!("4242 (worker) S 1 4242 4242 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 {start} 0 0\n")
        };
        let made = std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(dir.join("stat"), stat(700)))
            .and_then(|()| std::fs::write(dir.join("cmdline"), b"worker\0"))
            .and_then(|()| std::os::unix::fs::symlink(tmp.path(), dir.join("cwd")))
            .and_then(|()| std::os::unix::fs::symlink("/bin/sh", dir.join("exe")));
        if let Err(e) = made {
            panic!("cannot build a fake /proc in {}: {e}", root.display());
        }
        let mut proc_ = LinuxProc::new(&root).with_jobs(1);
        let snap = match proc_.snapshot() {
            Ok(snap) => snap,
            Err(e) => panic!("cannot read the fake /proc: {e}"),
        };
        let Some(p) = snap.get(4242) else {
            panic!("pid 4242 was not read from {}", root.display());
        };
        assert_eq!((p.start_ticks, p.dir_ino), (700, 0));
        let look = ProcessSeen {
            pid: 4242,
            start_ticks: p.start_ticks,
            paths: false,
            dir_ino: p.dir_ino,
        };
        assert_eq!(proc_.look_again(look), Ok(SeenAgain::Same));
        // The same directory with another process's start time: a plain directory keeps its
        // inode, so only the start time can tell.
        if let Err(e) = std::fs::write(dir.join("stat"), stat(701)) {
            panic!("cannot rewrite the fake stat: {e}");
        }
        assert_eq!(proc_.look_again(look), Ok(SeenAgain::Gone));
        assert_eq!(
            proc_.look_again(ProcessSeen {
                paths: true,
                ..look
            }),
            Ok(SeenAgain::Gone)
        );
    }

    /// A fake `/proc` of pids 1 to 4, each with 10 KB of arguments (`worker`, then 100-byte
    /// arguments) and the given cwd: a scan naming an app keeps the command line of a
    /// process whose cwd or arguments name it, and cuts the others at the end of the last
    /// argument within 4 KiB, marked.
    #[test]
    fn long_command_lines_are_kept_only_when_they_name_a_root() {
        let Ok(tmp) = tempfile::tempdir() else {
            panic!("no temp dir");
        };
        let root = tmp.path().join("proc");
        let app = tmp.path().join("app");
        let release = app.join("releases/1");
        if let Err(e) = std::fs::create_dir_all(&release) {
            panic!("cannot make {}: {e}", release.display());
        }
        let app = app.display().to_string();
        let long = |last: &str| {
            let mut args = b"worker\0".to_vec();
            for _ in 0..100 {
                args.extend(std::iter::repeat_n(b'a', 100));
                args.push(0);
            }
            args.extend_from_slice(last.as_bytes());
            args.push(0);
            args
        };
        let home = tmp.path().display().to_string();
        for (pid, cwd, last) in [
            (1, release.display().to_string(), "x".to_string()),
            (2, home.clone(), format!("{app}/current/artisan")),
            (3, home.clone(), format!("{app}lication")),
            (4, home.clone(), "/srv/other/current/artisan".to_string()),
        ] {
            let dir = root.join(pid.to_string());
            let stat = format!("{pid} (worker) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 700 0 0\n");
            let made = std::fs::create_dir_all(&dir)
                .and_then(|()| std::fs::write(dir.join("stat"), stat))
                .and_then(|()| std::fs::write(dir.join("cmdline"), long(&last)))
                .and_then(|()| std::os::unix::fs::symlink(&cwd, dir.join("cwd")))
                .and_then(|()| std::os::unix::fs::symlink("/bin/sh", dir.join("exe")));
            if let Err(e) = made {
                panic!("cannot build a fake /proc in {}: {e}", root.display());
            }
        }
        let mut proc_ = LinuxProc::new(&root).with_jobs(1);
        proc_.keep_args_naming(ArgsWorthKeeping::naming([app.as_str(), "/"]));
        let Ok(snap) = proc_.snapshot() else {
            panic!("cannot read the fake /proc");
        };
        let kept = |pid| {
            snap.get(pid)
                .map(|p| (p.cmdline.len(), p.cmdline_truncated))
        };
        // Its cwd (the link's text decides), its arguments, and an
        // argument the root's path begins (more kept than needed, never less).
        assert_eq!(kept(1), Some((102, false)));
        assert_eq!(kept(2), Some((102, false)));
        assert_eq!(kept(3), Some((102, false)));
        // `worker` and 40 whole arguments of 101 bytes end within 4 KiB; the 41st does not.
        assert_eq!(kept(4), Some((41, true)));
    }

    /// A fake `/proc/4242` whose `cmdline` and `environ` are 1 MiB and whose `maps` is 8 MiB:
    /// a scan keeps 64 KiB of the arguments and says so, takes only whole environment entries
    /// within 64 KiB, and streams `maps` through a buffer that does not grow with it.
    #[test]
    fn long_proc_files_are_read_with_a_cap() {
        let Ok(tmp) = tempfile::tempdir() else {
            panic!("no temp dir");
        };
        let root = tmp.path().join("proc");
        let dir = root.join("4242");
        let stat = "4242 (worker) S 1 4242 4242 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 700 0 0\n";
        let mut cmdline = b"worker\0".to_vec();
        cmdline.extend(std::iter::repeat_n(b'a', 1 << 20));
        let mut environ = b"name=api\0".to_vec();
        environ.extend(std::iter::repeat_n(b'x', ARGS_CAP - 20));
        // Cut by the cap: a prefix of its value must not be taken for the value.
        environ.extend_from_slice(b"\0pm_id=123456789\0");
        environ.extend(std::iter::repeat_n(b'y', 1 << 20));
        let wanted_line = b"7f00-7f01 r--p 00000000 fd:01 9 /srv/app/releases/7/lib.so\n";
        let other_line =
            |i: usize| format!("7f{i:x}-7f{i:x} r--p 00000000 fd:01 9 /usr/lib/{i}.so\n");
        let mut maps: Vec<u8> = (0..200_000)
            .flat_map(|i| other_line(i).into_bytes())
            .collect();
        maps.extend_from_slice(wanted_line);
        let made = std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(dir.join("stat"), stat))
            .and_then(|()| std::fs::write(dir.join("cmdline"), &cmdline))
            .and_then(|()| std::fs::write(dir.join("environ"), &environ))
            .and_then(|()| std::fs::write(dir.join("maps"), &maps))
            .and_then(|()| std::os::unix::fs::symlink(tmp.path(), dir.join("cwd")))
            .and_then(|()| std::os::unix::fs::symlink("/bin/sh", dir.join("exe")));
        if let Err(e) = made {
            panic!("cannot build a fake /proc in {}: {e}", root.display());
        }
        let mut proc_ = LinuxProc::new(&root).with_jobs(1);
        // Its cwd names the path a scan is about: the arguments are kept up to the cap.
        proc_.keep_args_naming(ArgsWorthKeeping::naming([tmp.path()]));
        let Ok(snap) = proc_.snapshot() else {
            panic!("cannot read the fake /proc");
        };
        let Some(p) = snap.get(4242) else {
            panic!("pid 4242 was not read");
        };
        assert!(p.cmdline_truncated);
        let args: Vec<&OsStr> = p.cmdline.iter().collect();
        assert_eq!(args[0], "worker");
        assert_eq!(
            args[1].len(),
            ARGS_CAP - 7,
            "the last argument is cut at the cap"
        );
        let mut env = None;
        proc_.cgroup_and_env(&[4242], &|_| &["name", "pm_id"], &mut |_, reads| {
            env = Some(reads.env)
        });
        assert_eq!(env, Some(Ok(vec![("name", OsString::from("api"))])));
        let buf_before = proc_.buf.capacity();
        let Ok(mapped) = proc_.mapped_files(4242, &|p| p.starts_with(b"/srv/app/")) else {
            panic!("maps not read");
        };
        assert_eq!(mapped, [OsString::from("/srv/app/releases/7/lib.so")]);
        assert!(
            proc_.buf.capacity() <= buf_before.max(2 * ARGS_CAP),
            "{} for a {} byte maps",
            proc_.buf.capacity(),
            maps.len()
        );
    }

    fn process(pid: i32, cwd: &str) -> Process {
        let link = |text: &str| Link {
            target: Arc::from(OsStr::new(text)),
            dev: 1,
            ino: 2,
            nlink: 3,
        };
        Process {
            pid,
            ppid: 1,
            comm: Comm::from(&b"php"[..]),
            state: b'S',
            start_ticks: 7,
            uid: 0,
            dir_ino: 0,
            kernel_thread: false,
            cmdline_truncated: false,
            cmdline: Cmdline::default(),
            cwd: Ok(link(cwd)),
            exe: Err(LinkError::Denied),
            reaped: (0, 0),
        }
    }

    #[test]
    fn shares_of_several_threads_keep_one_allocation_per_target() {
        let proc_root = ProcRoot {
            root: Path::new("/nonexistent"),
            root_dir: None,
            own_mnt_ns: None,
            procfs: false,
        };
        let (keep, budget) = (ArgsWorthKeeping::default(), AtomicUsize::new(0));
        let mut first = ChunkReader::new(proc_root, (&keep, &budget), 2);
        let mut second = ChunkReader::new(proc_root, (&keep, &budget), 2);
        for (reader, pid) in [(&mut first, 10), (&mut second, 20)] {
            let p = process(pid, "/srv/app/releases/2");
            let Ok(cwd) = &p.cwd else { unreachable!() };
            reader.targets.insert(cwd.target.clone());
            reader.processes.push(p);
        }
        second.processes.push(process(21, "/srv/app/releases/3"));
        second.vanished = 4;
        first.append(second);
        let cwds: Vec<Arc<OsStr>> = first
            .processes
            .iter()
            .filter_map(|p| p.cwd.as_ref().ok().map(|l| l.target.clone()))
            .collect();
        assert_eq!(
            first.processes.iter().map(|p| p.pid).collect::<Vec<_>>(),
            [10, 20, 21]
        );
        assert!(Arc::ptr_eq(&cwds[0], &cwds[1]));
        assert_eq!(&*cwds[2], OsStr::new("/srv/app/releases/3"));
        assert_eq!(first.vanished, 4);
        assert_eq!(first.targets.len(), 2);
    }
}
