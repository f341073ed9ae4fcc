//! What wakes the agent, all into one `poll` in the main thread, so between events it uses no
//! CPU:
//!
//! - signals: SIGTERM, SIGINT and SIGHUP are blocked before any thread starts and taken by one
//!   thread in `sigwait`; they end the agent cleanly.
//! - inotify (notify) on each deploy root's directory and its releases directory,
//!   non-recursive: `current` is replaced by rename, so the directory is watched, not the link.
//!   And on each root's parent, so a root deleted and created again (or renamed into place) is
//!   seen at once; there only events naming a root count, the parent's other entries do not.
//!   A directory replaced since it was watched (new inode) is watched again. Access events are
//!   dropped where they arrive: notify always asks inotify for `IN_OPEN`, and our own scan opens
//!   these directories, which would wake us forever.
//! - a pidfd for each live process a finding names: its exit clears the finding. At most
//!   [`Wakers::pidfd_cap`] of them (half the open files limit, at most [`MAX_PIDFDS`]): past
//!   that, or when the kernel refuses one (`EMFILE`), the rest are polled every
//!   [`POLL_PIDS_EVERY`] (their `stat` read again), said once in the log. The agent never
//!   spends its file descriptors on them and fails its next scan.
//! - the kernel's process events socket ([`crate::events::Connector`]), when it opened: its
//!   events are read as they come and handed to the agent ([`Wakers::take_events`]).
//!
//! The signal thread and notify's thread send their news on a channel and write a byte to a
//! pipe whose read end is in the poll set. Nothing here scans; it only says what happened.

use super::diff::Log;
use crate::escape::escape;
use crate::findings::Severity;
use crate::layout::DeployRoot;
use crate::scan::Scan;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use notify::{RecursiveMode, Watcher};
use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

enum Msg {
    Fs(Result<notify::Event, notify::Error>),
    Signal(Signal),
}

/// What a sleep ended with.
pub(super) enum Wake {
    /// A signal: stop.
    Stop(Signal),
    /// Something changed: scan again. `all`: a watched process exited or events were lost
    /// (everything may have changed); `roots`: the deploy roots whose directories changed,
    /// with how many inotify events each.
    Rescan {
        all: bool,
        roots: HashMap<PathBuf, usize>,
    },
    /// The time asked for passed.
    Nothing,
}

/// The wake-up sources: the pipe the threads write to, their messages, the inotify watches
/// and the pidfds.
pub(super) struct Wakers {
    wake_r: OwnedFd,
    rx: mpsc::Receiver<Msg>,
    watcher: notify::RecommendedWatcher,
    /// Each watched directory with its (device, inode) when it was watched.
    watched: HashMap<PathBuf, (u64, u64)>,
    /// The directories watched only as a root's parent, with the roots in them: an event
    /// there counts only when it names one of those roots.
    parents: HashMap<PathBuf, Vec<PathBuf>>,
    /// The root each of its own directories belongs to.
    owners: HashMap<PathBuf, PathBuf>,
    pidfds: Vec<(i32, OwnedFd)>,
    /// At most this many pidfds.
    pidfd_cap: usize,
    /// The processes past the cap, with their start time: polled (see [`POLL_PIDS_EVERY`]).
    polled: Vec<(i32, u64)>,
    /// The log said once that some processes are polled.
    said_polled: bool,
    /// When they were last looked at: at most once per [`POLL_PIDS_EVERY`], however often
    /// events wake the agent.
    polled_at: std::time::Instant,
    /// The process events feed, when the kernel gave us one.
    connector: Option<crate::events::Connector>,
    /// Events read since the agent last took them, and whether some were lost.
    events: Vec<crate::events::Event>,
    lost: bool,
}

impl Wakers {
    /// Block the signals (before any thread starts, so only `sigwait` takes them), then start
    /// the signal thread and the inotify watcher. Nothing is watched yet.
    pub(super) fn start() -> anyhow::Result<Self> {
        let mut signals = SigSet::empty();
        for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
            signals.add(s);
        }
        signals.thread_block()?;

        let (wake_r, wake_w) = nix::unistd::pipe()?;
        nix::fcntl::fcntl(
            &wake_r,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        )?;
        let wake_w = Arc::new(wake_w);
        let (tx, rx) = mpsc::channel::<Msg>();
        {
            let tx = tx.clone();
            let w = wake_w.clone();
            std::thread::Builder::new()
                .name("relwatch-signals".into())
                .spawn(move || {
                    if let Ok(sig) = signals.wait() {
                        let _ = tx.send(Msg::Signal(sig));
                        wake(&w);
                    }
                })?;
        }
        let watcher =
            notify::recommended_watcher(move |res: Result<notify::Event, notify::Error>| {
                if let Ok(ev) = &res {
                    if matches!(ev.kind, notify::EventKind::Access(_)) {
                        return;
                    }
                }
                let _ = tx.send(Msg::Fs(res));
                wake(&wake_w);
            })
            .map_err(|e| watch_error(e, Path::new("/")))?;
        Ok(Wakers {
            wake_r,
            rx,
            watcher,
            watched: HashMap::new(),
            parents: HashMap::new(),
            owners: HashMap::new(),
            pidfds: Vec::new(),
            pidfd_cap: MAX_PIDFDS,
            polled: Vec::new(),
            said_polled: false,
            polled_at: std::time::Instant::now(),
            connector: None,
            events: Vec::new(),
            lost: false,
        })
    }

    /// Listen to the kernel's process events. The error says why they are unavailable.
    pub(super) fn listen(&mut self) -> Result<(), String> {
        self.connector = Some(crate::events::Connector::open()?);
        Ok(())
    }

    pub(super) fn listening(&self) -> bool {
        self.connector.is_some()
    }

    /// The process events read since the last call, and whether the kernel dropped some.
    pub(super) fn take_events(&mut self) -> (Vec<crate::events::Event>, bool) {
        let lost = std::mem::take(&mut self.lost);
        (std::mem::take(&mut self.events), lost)
    }

    /// (Re)watch each root's directories: new ones, and ones replaced since (new inode).
    pub(super) fn watch_dirs(&mut self, roots: &[DeployRoot]) -> anyhow::Result<()> {
        let (dirs, parents) = watch_dirs(roots);
        self.parents = parents;
        self.owners = dirs.iter().cloned().collect();
        let parent_dirs: Vec<PathBuf> = self.parents.keys().cloned().collect();
        for dir in dirs.into_iter().map(|(d, _)| d).chain(parent_dirs) {
            let id = identity(&dir);
            if id.is_some() && self.watched.get(&dir) != id.as_ref() {
                let _ = self.watcher.unwatch(&dir);
                self.watcher
                    .watch(&dir, RecursiveMode::NonRecursive)
                    .map_err(|e| watch_error(e, &dir))?;
                if let Some(id) = id {
                    self.watched.insert(dir, id);
                }
            }
        }
        Ok(())
    }

    /// At most `cap` pidfds (see the module's doc).
    pub(super) fn cap_pidfds(&mut self, cap: usize) {
        self.pidfd_cap = cap.min(MAX_PIDFDS);
    }

    /// Hold a pidfd for each live process the scan's findings name, and only for those; past
    /// the cap, or when the kernel refuses one, poll the rest.
    pub(super) fn watch_pids(&mut self, scan: &Scan, log: &Log) {
        let Scan { snap, findings, .. } = scan;
        let wanted: Vec<(i32, u64)> = {
            let mut p: Vec<(i32, u64)> = findings
                .iter()
                .flat_map(|f| f.pids.iter().copied())
                .filter_map(|pid| snap.get(pid).filter(|p| !p.is_zombie()))
                .map(|p| (p.pid, p.start_ticks))
                .collect();
            p.sort_unstable();
            p.dedup();
            p
        };
        let is_wanted = |pid: i32| wanted.binary_search_by_key(&pid, |w| w.0).is_ok();
        self.pidfds.retain(|(pid, _)| is_wanted(*pid));
        self.polled.clear();
        let mut refused = None;
        for (pid, start) in wanted {
            if self.pidfds.iter().any(|(p, _)| *p == pid) {
                continue;
            }
            if self.pidfds.len() >= self.pidfd_cap || refused.is_some() {
                self.polled.push((pid, start));
                continue;
            }
            let Some(rpid) = rustix::process::Pid::from_raw(pid) else {
                continue;
            };
            match rustix::process::pidfd_open(rpid, rustix::process::PidfdFlags::empty()) {
                Ok(fd) => self.pidfds.push((pid, fd)),
                Err(e @ (rustix::io::Errno::MFILE | rustix::io::Errno::NFILE)) => {
                    refused = Some(e);
                    self.polled.push((pid, start));
                }
                Err(_) => {}
            }
        }
        if !self.polled.is_empty() && !self.said_polled {
            self.said_polled = true;
            let why = match refused {
                Some(e) => format!("the kernel refused another pidfd: {e}"),
                None => format!("at most {} pidfds", self.pidfd_cap),
            };
            log.line(
                Some(Severity::Warning),
                &format!(
                    "watching {} processes for their exit: {} by pidfd, {} by reading their stat every {}s ({why}; said once)",
                    self.pidfds.len() + self.polled.len(),
                    self.pidfds.len(),
                    self.polled.len(),
                    POLL_PIDS_EVERY.as_secs()
                ),
            );
        }
    }

    /// Close every pidfd (after a scan ran out of file descriptors: the agent's own come
    /// first). Until the next scan that works, those exits do not wake it; that scan is near.
    pub(super) fn release_pidfds(&mut self) {
        self.pidfds.clear();
        self.polled.clear();
    }

    /// Whether a polled process ended (gone, a zombie, or its pid reused); looked at most
    /// once per [`POLL_PIDS_EVERY`].
    fn polled_ended(&mut self) -> bool {
        if self.polled.is_empty() || self.polled_at.elapsed() < POLL_PIDS_EVERY {
            return false;
        }
        self.polled_at = std::time::Instant::now();
        let mut buf = Vec::new();
        self.polled.iter().any(|&(pid, start)| {
            buf.clear();
            let read = std::fs::File::open(format!("/proc/{pid}/stat")).and_then(|f| {
                std::io::Read::read_to_end(&mut std::io::Read::take(f, 4096), &mut buf)
            });
            match read
                .ok()
                .and(crate::snapshot::parse::stat::parse_stat(&buf).ok())
            {
                Some(st) => st.state == b'Z' || st.start_ticks != start,
                None => true,
            }
        })
    }

    /// Sleep until something happens or `wait` passes. A lost or failed inotify event forgets
    /// every watch, so the next scan watches everything again.
    pub(super) fn sleep(&mut self, wait: Duration, log: &Log) -> anyhow::Result<Wake> {
        let wait = if self.polled.is_empty() {
            wait
        } else {
            wait.min(POLL_PIDS_EVERY.saturating_sub(self.polled_at.elapsed()))
        };
        let mut all = self.poll(wait)? || self.polled_ended();
        let mut roots: HashMap<PathBuf, usize> = HashMap::new();
        self.read_events(log);
        let mut buf = [0u8; 64];
        while matches!(nix::unistd::read(&self.wake_r, &mut buf), Ok(n) if n > 0) {}
        while let Ok(msg) = self.rx.try_recv() {
            match msg {
                Msg::Signal(sig) => return Ok(Wake::Stop(sig)),
                Msg::Fs(Ok(ev)) => {
                    if ev.need_rescan() {
                        // The kernel's queue overflowed: events were lost.
                        self.watched.clear();
                        all = true;
                    }
                    match self.root_of(&ev) {
                        Some(Some(root)) => *roots.entry(root).or_default() += 1,
                        Some(None) => all = true,
                        None => {}
                    }
                }
                Msg::Fs(Err(e)) => {
                    // An overflowed queue or a vanished directory: look at everything again.
                    log.line(Some(Severity::Warning), &format!("watch: {e}; rescanning"));
                    self.watched.clear();
                    all = true;
                }
            }
        }
        Ok(if all || !roots.is_empty() {
            Wake::Rescan { all, roots }
        } else {
            Wake::Nothing
        })
    }

    /// Which watched root an inotify event is about: `None` when none (another entry of a
    /// root's parent), `Some(None)` when it cannot tell (no path: look at everything).
    fn root_of(&self, ev: &notify::Event) -> Option<Option<PathBuf>> {
        if ev.paths.is_empty() {
            return Some(None);
        }
        ev.paths.iter().find_map(|p| {
            let dir = p.parent()?;
            if let Some(roots) = self.parents.get(dir) {
                return roots.iter().find(|r| *r == p).map(|r| Some(r.clone()));
            }
            // The directory itself (deleted, moved) or an entry in it.
            let owner = self.owners.get(p).or_else(|| self.owners.get(dir));
            Some(owner.cloned())
        })
    }

    /// Drain the events socket (it never blocks). A read error other than lost events ends
    /// the feed: the agent goes back to its scans.
    fn read_events(&mut self, log: &Log) {
        let Some(c) = &mut self.connector else { return };
        match c.recv(&mut self.events) {
            Ok(crate::events::Recv::Events) => {}
            Ok(crate::events::Recv::Lost) => self.lost = true,
            Err(e) => {
                log.line(
                    Some(Severity::Warning),
                    &format!("process events: {e}; falling back to full rescans"),
                );
                self.connector = None;
                self.lost = true;
            }
        }
    }

    /// One `poll` over the pipe, the events socket and the pidfds; true when a watched
    /// process exited.
    fn poll(&self, wait: Duration) -> anyhow::Result<bool> {
        let ms = i32::try_from(wait.as_millis()).unwrap_or(i32::MAX);
        let mut fds: Vec<PollFd> = Vec::with_capacity(self.pidfds.len() + 2);
        fds.push(PollFd::new(self.wake_r.as_fd(), PollFlags::POLLIN));
        let skip = match &self.connector {
            Some(c) => {
                fds.push(PollFd::new(c.as_fd(), PollFlags::POLLIN));
                2
            }
            None => 1,
        };
        for (_, fd) in &self.pidfds {
            fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
        }
        match nix::poll::poll(
            &mut fds,
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
        Ok(fds
            .iter()
            .skip(skip)
            .any(|f| f.revents().is_some_and(|r| !r.is_empty())))
    }
}

/// At most this many pidfds, whatever the open files limit.
pub(super) const MAX_PIDFDS: usize = 4096;

/// How often the processes past the pidfd cap are looked at.
const POLL_PIDS_EVERY: Duration = Duration::from_secs(1);

fn wake(w: &Arc<OwnedFd>) {
    let _ = nix::unistd::write(w.as_fd(), &[1u8]);
}

/// The directories to watch: each root's directory (holding `current`) and releases
/// directory, with the root they belong to; and apart, the parents of the roots that are not
/// watched already, each with the roots in it.
type Dirs = (Vec<(PathBuf, PathBuf)>, HashMap<PathBuf, Vec<PathBuf>>);
fn watch_dirs(roots: &[DeployRoot]) -> Dirs {
    let mut dirs: Vec<(PathBuf, PathBuf)> = Vec::new();
    for r in roots {
        let candidates = [
            r.link.parent().map(Path::to_path_buf),
            r.releases_dir.clone(),
        ];
        for d in candidates.into_iter().flatten() {
            if !dirs.iter().any(|(known, _)| *known == d) {
                dirs.push((d, r.root.clone()));
            }
        }
    }
    let mut parents: HashMap<PathBuf, Vec<PathBuf>> = HashMap::new();
    for r in roots {
        if let Some(parent) = r
            .root
            .parent()
            .filter(|p| !dirs.iter().any(|(d, _)| d == p))
        {
            parents
                .entry(parent.to_path_buf())
                .or_default()
                .push(r.root.clone());
        }
    }
    (dirs, parents)
}

fn identity(p: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()))
}

/// An error that names the sysctl to raise when inotify runs out of watches or instances.
fn watch_error(e: notify::Error, dir: &Path) -> anyhow::Error {
    if matches!(e.kind, notify::ErrorKind::MaxFilesWatch) {
        return anyhow::anyhow!(
            "out of inotify watches while watching {}: raise the limit, e.g. `sysctl -w fs.inotify.max_user_watches=524288` (and persist it in /etc/sysctl.d/)",
            escape(dir)
        );
    }
    if let notify::ErrorKind::Io(io) = &e.kind {
        if io.raw_os_error() == Some(nix::errno::Errno::EMFILE as i32) {
            return anyhow::anyhow!(
                "out of inotify instances: raise `sysctl -w fs.inotify.max_user_instances=1024`"
            );
        }
    }
    anyhow::anyhow!("cannot watch {}: {e}", escape(dir))
}
