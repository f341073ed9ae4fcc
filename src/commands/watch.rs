//! `relwatch watch`: the agent. It rescans when the filesystem or a process says something
//! changed, and otherwise sleeps.
//!
//! - inotify (notify) on each deploy root's directory and its releases directory,
//!   non-recursive: `current` is replaced by rename, so the directory is watched, not the link.
//!   Any change means a rescan now; after a switch a second rescan is scheduled for when the
//!   grace period ends. Access events are dropped where they arrive: notify always asks inotify
//!   for `IN_OPEN`, and our own scan opens these directories, which would wake us forever.
//!   Bursts (a deploy renames, creates and deletes many entries) are coalesced by the main loop,
//!   which scans at most once per [`MIN_GAP`]: that is the debounce.
//! - a pidfd for each process a finding names: when one exits, rescan, so the finding clears.
//! - a full rescan every `--interval` for what nothing announces (zombies, duplicates, orphans,
//!   restart loops).
//!
//! All of these wake one `poll` in the main thread; between them it uses no CPU. SIGTERM,
//! SIGINT and SIGHUP are taken by a thread blocked in `sigwait` and end the loop cleanly. Every
//! change of findings is logged to stderr (one line per finding that appeared, changed or
//! cleared, with a syslog priority prefix under the journal), and `--textfile DIR` gets
//! `relwatch.prom` rewritten atomically after every scan.

use crate::cli::WatchArgs;
use crate::escape::escape;
use crate::exit::ExitCode;
use crate::findings::restart_loop::History;
use crate::findings::{Finding, Kind, Severity};
use crate::scan::{scan, Options, Scan};
use crate::settings::{plan, Plan};
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use notify::{RecursiveMode, Watcher};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Never rescan more often than this, whatever wakes us: bursts of events become one scan.
const MIN_GAP: Duration = Duration::from_millis(200);

enum Msg {
    Fs(Result<notify::Event, notify::Error>),
    Signal(Signal),
}

/// Identity of a finding across scans.
type Key = (Kind, String, Option<Vec<u8>>, Option<String>, Option<i32>);

fn key(roots: &[crate::layout::DeployRoot], f: &Finding) -> Key {
    use std::os::unix::ffi::OsStrExt;
    (
        f.kind,
        roots.get(f.app).map(|r| r.name.clone()).unwrap_or_default(),
        f.release.as_ref().map(|r| r.as_bytes().to_vec()),
        f.role.clone(),
        f.pids
            .first()
            .copied()
            .filter(|_| f.kind.about().keyed_by_pid),
    )
}

/// Log lines go to stderr; under the journal (JOURNAL_STREAM set: our own environment, not a
/// process's) they carry a syslog priority prefix that journald understands.
struct Log {
    journal: bool,
}

impl Log {
    fn line(&self, severity: Option<Severity>, text: &str) {
        let prefix = match (self.journal, severity) {
            (false, _) => "",
            (true, Some(Severity::Critical)) => "<2>",
            (true, Some(Severity::Warning | Severity::Unknown)) => "<4>",
            (true, Some(Severity::Info)) => "<6>",
            (true, None) => "<5>",
        };
        let _ = writeln!(std::io::stderr().lock(), "{prefix}relwatch: {text}");
    }
}

fn describe(roots: &[crate::layout::DeployRoot], f: &Finding) -> String {
    let release = f
        .release
        .as_ref()
        .map(|r| format!(" release={}", escape(r)))
        .unwrap_or_default();
    let role = f
        .role
        .as_ref()
        .map(|r| format!(" role={}", escape(r)))
        .unwrap_or_default();
    format!(
        "{} app={}{release}{role}: {}",
        f.kind.as_str(),
        escape(roots.get(f.app).map(|r| r.name.as_str()).unwrap_or("?")),
        roots
            .get(f.app)
            .map(|root| crate::report::words::message(f, root).to_string())
            .unwrap_or_default()
    )
}

/// The directories to watch: each root's directory (holding `current`) and releases directory.
fn watch_dirs(roots: &[crate::layout::DeployRoot]) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    for r in roots {
        let candidates = [
            r.link.parent().map(Path::to_path_buf),
            r.releases_dir.clone(),
        ];
        for d in candidates.into_iter().flatten() {
            if !dirs.contains(&d) {
                dirs.push(d);
            }
        }
    }
    dirs
}

fn identity(p: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()))
}

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

pub fn run(args: &WatchArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let log = Log {
        journal: std::env::var_os("JOURNAL_STREAM").is_some(),
    };
    let Plan {
        mut roots,
        settings,
        ..
    } = plan(
        &args.roots,
        &args.discover,
        args.config.as_deref(),
        args.grace,
    )?;
    if let Some(dir) = &args.textfile {
        if !dir.is_dir() {
            return Err(super::UsageError(format!(
                "--textfile {}: not a directory (node_exporter's --collector.textfile.directory)",
                escape(dir)
            ))
            .into());
        }
    }

    // Signals are taken by one thread in sigwait: block them before any thread starts.
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
    let wake = |w: &Arc<OwnedFd>| {
        let _ = nix::unistd::write(w.as_fd(), &[1u8]);
    };
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
    let mut watcher = {
        let tx = tx.clone();
        let w = wake_w.clone();
        notify::recommended_watcher(move |res: Result<notify::Event, notify::Error>| {
            if let Ok(ev) = &res {
                if matches!(ev.kind, notify::EventKind::Access(_)) {
                    return;
                }
            }
            let _ = tx.send(Msg::Fs(res));
            wake(&w);
        })
        .map_err(|e| watch_error(e, Path::new("/")))?
    };

    let mut watched: HashMap<PathBuf, (u64, u64)> = HashMap::new();
    let mut source = args.scan.source();
    let mut history = History::new(args.restart_limit, args.restart_window);
    let mut known: BTreeMap<Key, Severity> = BTreeMap::new();
    let mut pidfds: Vec<(i32, OwnedFd)> = Vec::new();
    let mut next_full = Instant::now();
    let mut due: Vec<Instant> = Vec::new();
    let mut last_scan: Option<Instant> = None;
    let mut rescan = true;

    log.line(
        None,
        &format!(
            "watching {} deploy root{} ({}), full rescan every {}",
            roots.len(),
            if roots.len() == 1 { "" } else { "s" },
            roots
                .iter()
                .map(|r| escape(&r.root))
                .collect::<Vec<_>>()
                .join(", "),
            crate::attribution::human_duration(args.interval.as_secs_f64())
        ),
    );

    loop {
        let now = Instant::now();
        if now >= next_full || due.iter().any(|d| *d <= now) {
            rescan = true;
        }
        if rescan && last_scan.is_none_or(|t| now.duration_since(t) >= MIN_GAP) {
            rescan = false;
            due.retain(|d| *d > now);
            last_scan = Some(now);
            next_full = now + args.interval;
            // The layout may have changed: read every root again.
            for r in roots.iter_mut() {
                if let Ok(again) = r.reload() {
                    *r = again;
                }
            }
            // (Re)watch: new directories, and directories replaced since (new inode).
            for dir in watch_dirs(&roots) {
                let id = identity(&dir);
                if id.is_some() && watched.get(&dir) != id.as_ref() {
                    let _ = watcher.unwatch(&dir);
                    watcher
                        .watch(&dir, RecursiveMode::NonRecursive)
                        .map_err(|e| watch_error(e, &dir))?;
                    if let Some(id) = id {
                        watched.insert(dir, id);
                    }
                }
            }
            let began = Instant::now();
            let result = scan(
                &mut roots,
                &mut source,
                &settings,
                Options {
                    all_owners: false,
                    history: Some(&mut history),
                },
            )?;
            let Scan { snap, findings, .. } = &result;

            // Log what appeared, changed or cleared.
            let mut now_known: BTreeMap<Key, Severity> = BTreeMap::new();
            for f in findings {
                let k = key(&roots, f);
                match known.get(&k) {
                    None => log.line(
                        Some(f.severity),
                        &format!(
                            "appeared {} {} | fix: {}",
                            crate::report::words::severity(f.severity).upper,
                            describe(&roots, f),
                            crate::report::words::remedy(f, &roots[f.app])
                        ),
                    ),
                    Some(s) if *s != f.severity => log.line(
                        Some(f.severity),
                        &format!(
                            "now {} {}",
                            crate::report::words::severity(f.severity).upper,
                            describe(&roots, f)
                        ),
                    ),
                    Some(_) => {}
                }
                now_known.insert(k, f.severity);
            }
            for k in known.keys().filter(|k| !now_known.contains_key(*k)) {
                let release =
                    k.2.as_ref()
                        .map(|r| format!(" release={}", crate::escape::escape_bytes(r)))
                        .unwrap_or_default();
                let pid = k.4.map(|p| format!(" pid={p}")).unwrap_or_default();
                log.line(
                    None,
                    &format!(
                        "cleared {} app={}{release}{pid}",
                        k.0.as_str(),
                        escape(&k.1)
                    ),
                );
            }
            known = now_known;

            if let Some(dir) = &args.textfile {
                let report =
                    crate::report::Report::of(&result, &roots, began.elapsed().as_secs_f64());
                let text = crate::report::textfile(&report);
                if let Err(e) =
                    crate::report::output::write_atomic(&dir.join("relwatch.prom"), text.as_bytes())
                {
                    log.line(
                        Some(Severity::Warning),
                        &format!("cannot write {}: {e}", escape(dir.join("relwatch.prom"))),
                    );
                }
            }

            // After a switch, look again when the grace period ends.
            for (i, r) in roots.iter().enumerate() {
                if let Some(switch) = r.switch_time {
                    let ends = switch + settings.grace(i).as_secs_f64() - snap.clock.now;
                    if ends > 0.0 {
                        let at = now + Duration::from_secs_f64(ends) + MIN_GAP;
                        let close = |d: &Instant| {
                            d.saturating_duration_since(at)
                                .max(at.saturating_duration_since(*d))
                                < Duration::from_millis(50)
                        };
                        if !due.iter().any(close) {
                            due.push(at);
                        }
                    }
                }
            }

            // Watch the processes that findings name: their exit clears a finding.
            let wanted: Vec<i32> = {
                let mut p: Vec<i32> = findings
                    .iter()
                    .flat_map(|f| f.pids.iter().copied())
                    .filter(|pid| snap.get(*pid).is_some_and(|p| !p.is_zombie()))
                    .collect();
                p.sort_unstable();
                p.dedup();
                p
            };
            pidfds.retain(|(pid, _)| wanted.binary_search(pid).is_ok());
            for pid in wanted {
                if pidfds.iter().any(|(p, _)| *p == pid) {
                    continue;
                }
                let Some(rpid) = rustix::process::Pid::from_raw(pid) else {
                    continue;
                };
                if let Ok(fd) =
                    rustix::process::pidfd_open(rpid, rustix::process::PidfdFlags::empty())
                {
                    pidfds.push((pid, fd));
                }
            }
        }

        // Sleep until something happens or a scan is due.
        let until = due
            .iter()
            .copied()
            .chain(std::iter::once(next_full))
            .min()
            .unwrap_or(next_full);
        let wait = if rescan {
            MIN_GAP
        } else {
            until.saturating_duration_since(Instant::now())
        };
        let ms = i32::try_from(wait.as_millis()).unwrap_or(i32::MAX);
        let mut fds: Vec<PollFd> = Vec::with_capacity(pidfds.len() + 1);
        fds.push(PollFd::new(wake_r.as_fd(), PollFlags::POLLIN));
        for (_, fd) in &pidfds {
            fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
        }
        match nix::poll::poll(
            &mut fds,
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
        let exited = fds
            .iter()
            .skip(1)
            .any(|f| f.revents().is_some_and(|r| !r.is_empty()));
        drop(fds);
        if exited {
            rescan = true;
        }
        let mut buf = [0u8; 64];
        while matches!(nix::unistd::read(&wake_r, &mut buf), Ok(n) if n > 0) {}
        while let Ok(msg) = rx.try_recv() {
            match msg {
                Msg::Signal(sig) => {
                    log.line(None, &format!("stopping on {sig}"));
                    writeln!(out)?;
                    return Ok(ExitCode::Ok);
                }
                Msg::Fs(Ok(ev)) => {
                    if ev.need_rescan() {
                        // The kernel's queue overflowed: events were lost.
                        watched.clear();
                    }
                    rescan = true;
                }
                Msg::Fs(Err(e)) => {
                    // An overflowed queue or a vanished directory: look at everything again.
                    log.line(Some(Severity::Warning), &format!("watch: {e}; rescanning"));
                    watched.clear();
                    rescan = true;
                }
            }
        }
    }
}
