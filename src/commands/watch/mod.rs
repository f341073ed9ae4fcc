//! `relwatch watch`: the agent. It rescans when the filesystem or a process says something
//! changed, and otherwise sleeps.
//!
//! - `wake`: what wakes it (signals, inotify on the deploy directories, a pidfd for each
//!   process a finding names, the kernel's process events), all into one `poll`.
//! - `track`: which process events matter (forks of placed processes and of their parents,
//!   execs into a release, exits of those), fed to the restart history: a restart storm shows
//!   seconds after it starts, with its count and exit codes, and clears when it stops. Where
//!   the events are unavailable (not root, no `CONFIG_PROC_EVENTS`, `RELWATCH_NO_PROC_EVENTS`
//!   set) the agent says so once and infers restarts from its scans, as before; lost events
//!   (`ENOBUFS`) mean a full rescan, said in the log.
//! - `schedule`: when to scan (at once after a wake-up but at most once per gap, when a grace
//!   period ends, every `--interval` for what nothing announces: zombies, duplicates, orphans,
//!   restart loops).
//! - `diff`: what to say: one log line on stderr per finding that appeared, changed or
//!   cleared, with a syslog priority prefix under the journal.
//!
//! Each scan is the one pipeline ([`crate::scan::scan`]) with the agent's restart history;
//! `--textfile DIR` gets `relwatch.prom` rewritten atomically after every scan. The layout is
//! read again before each scan: a deploy may have switched or deleted a release since. Like
//! every command it only reports: it never restarts or ends a process.

mod churn;
mod diff;
mod discovery;
mod schedule;
mod track;
mod wake;

use crate::cli::WatchArgs;
use crate::escape::escape;
use crate::exit::ExitCode;
use crate::findings::restart_loop::History;
use crate::findings::Severity;
use crate::layout::DeployRoot;
use crate::scan::{scan, Options, Scan};
use crate::settings::{Plan, Settings};
use crate::snapshot::linux::LinuxProc;
use diff::{Known, Log};
use schedule::Schedule;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};
use wake::{Wake, Wakers};

pub fn run(args: &WatchArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let log = Log::from_env();
    let plan = super::plan(&args.roots, args.grace)?;
    let rediscover = discovery::Rediscover::of(&plan, &args.roots, args.grace, args.interval);
    let Plan {
        roots, settings, ..
    } = plan;
    if let Some(dir) = &args.textfile {
        if !dir.is_dir() {
            return Err(crate::settings::UsageError(format!(
                "--textfile {}: not a directory (node_exporter's --collector.textfile.directory)",
                escape(dir)
            ))
            .into());
        }
    }
    let files = raise_open_files_limit();
    let mut wakers = Wakers::start()?;
    wakers.cap_pidfds(usize::try_from(files / 2).unwrap_or(usize::MAX));
    let listening = if args.no_proc_events {
        Err("--no-proc-events".to_string())
    } else {
        wakers.listen()
    };
    let mut history = History::new(args.restart_limit, args.restart_window);
    history.set_live(listening.is_ok());
    let mut agent = Agent {
        roots,
        settings,
        source: super::proc_reader(args.scan.jobs),
        history,
        releases: track::Releases::default(),
        loops: Vec::new(),
        tally: track::Tally::default(),
        summarised: Instant::now(),
        known: Known::default(),
        churn: churn::Churn::default(),
        failing: None,
        textfile: args.textfile.as_deref(),
        wakers,
        schedule: Schedule::new(args.interval),
        log,
        deep: args.scan.deep,
        rediscover,
    };
    agent.log.line(None, &watching(&agent.roots, args.interval));
    match listening {
        Ok(()) => agent.log.line(None, "listening to process events (fork, exec, exit)"),
        Err(why) => agent.log.line(
            Some(Severity::Warning),
            &format!("process events unavailable ({why}): restarts are inferred from scans, which sees fewer and later"),
        ),
    }
    loop {
        let now = Instant::now();
        if agent.schedule.scan_now(now) {
            match agent.scan(now) {
                Ok(()) => agent.scan_worked(),
                Err(e) => agent.scan_failed(now, &e),
            }
        }
        match agent.wakers.sleep(agent.schedule.sleep(), &agent.log)? {
            Wake::Stop(sig) => {
                agent.take_events();
                agent.summarise(Instant::now(), true);
                agent.known.flush(&agent.log);
                agent.log.line(None, &format!("stopping on {sig}"));
                writeln!(out)?;
                return Ok(ExitCode::Ok);
            }
            Wake::Rescan { all, roots } => agent.woken(all, &roots, Instant::now()),
            Wake::Nothing => {}
        }
        if agent.take_events() {
            // Let events gather: one wake-up per batch, not one per fork (a build or a storm
            // sends hundreds a second). A restart loop is still seen within a second.
            std::thread::sleep(EVENT_BATCH);
        }
    }
}

/// After a failed scan, the next one comes this soon (whatever the interval).
const RETRY: Duration = Duration::from_secs(10);

/// At most one line per this long counts the tracked processes that started and ended.
const SUMMARY_EVERY: Duration = Duration::from_secs(60);

/// How long the agent lets process events gather after reading some.
const EVENT_BATCH: Duration = Duration::from_millis(50);

/// Everything the agent keeps between scans.
struct Agent<'a> {
    roots: Vec<DeployRoot>,
    settings: Settings,
    source: LinuxProc,
    history: History,
    /// The release directories of the roots, for execs (see `track`).
    releases: track::Releases,
    /// The groups in a restart loop after the last scan or event.
    loops: Vec<crate::findings::restart_loop::Group>,
    /// Tracked processes started and ended since the last summary line, and when that was.
    tally: track::Tally,
    summarised: Instant,
    known: Known,
    /// Which roots change constantly (their events are rescanned at most every few seconds).
    churn: churn::Churn,
    /// The error of the last scan, when it failed (said once until it changes or heals).
    failing: Option<String>,
    textfile: Option<&'a Path>,
    wakers: Wakers,
    schedule: Schedule,
    log: Log,
    /// `--deep` (see [`crate::scan::Options::deep`]).
    deep: bool,
    /// When the roots came from discovery: search again for new ones.
    rediscover: Option<discovery::Rediscover<'a>>,
}

impl Agent<'_> {
    /// One scan, started at `now`, and what follows from it: log lines, the textfile, when to
    /// look again, which processes to watch.
    fn scan(&mut self, now: Instant) -> anyhow::Result<()> {
        self.add_new_roots(now);
        // The layout may have changed: read every root again.
        for r in self.roots.iter_mut() {
            if let Ok(again) = r.reload() {
                *r = again;
            }
        }
        self.wakers.watch_dirs(&self.roots)?;
        let began = Instant::now();
        let result = scan(
            &mut self.roots,
            &mut self.source,
            &self.settings,
            Options {
                // The restart history names a loop by the owner of its workers.
                all_owners: true,
                history: Some(&mut self.history),
                deep: self.deep,
            },
        )?;
        self.history
            .learn(&result.snap, &result.attr, &result.owners);
        self.releases = track::Releases::of(&self.roots);
        self.loops_changed(now);
        self.known
            .update(&self.roots, &result.findings, &self.log, now);
        if let Some(dir) = self.textfile {
            self.write_textfile(dir, &result, began);
        }
        let clock_now = result.snap.clock.now;
        self.schedule
            .after_grace(&self.roots, &self.settings, clock_now, now);
        self.wakers.watch_pids(&result, &self.log);
        self.summarise(now, false);
        Ok(())
    }

    /// Deploy roots discovered since the last search (see [`discovery`]), added and said.
    fn add_new_roots(&mut self, now: Instant) {
        let Some(rediscover) = self.rediscover.as_mut() else {
            return;
        };
        let log = &self.log;
        let found = rediscover.new_roots(&self.roots, now, &mut |line| log.line(None, &line));
        if found.is_empty() {
            return;
        }
        for (root, app) in found {
            self.roots.push(root);
            self.settings.apps.push(app);
        }
        let roots: Vec<String> = self.roots.iter().map(|r| escape(&r.root)).collect();
        self.log.line(
            None,
            &format!(
                "now watching {} deploy root{} ({})",
                roots.len(),
                if roots.len() == 1 { "" } else { "s" },
                roots.join(", ")
            ),
        );
    }

    /// Something woke the agent: `all` (a watched process exited, events were lost) scans as
    /// soon as the gap allows; so do the events of a root, unless it churns (see [`churn`]).
    fn woken(
        &mut self,
        all: bool,
        roots: &std::collections::HashMap<std::path::PathBuf, usize>,
        now: Instant,
    ) {
        if all {
            self.schedule.wake();
        }
        for (root, &n) in roots {
            match self.churn.note(root, n, now) {
                churn::Verdict::Now => self.schedule.wake(),
                churn::Verdict::At { at, started } => {
                    if started {
                        self.log.line(
                            Some(Severity::Warning),
                            &format!(
                                "{} changes constantly ({} inotify events in {}s): rescanned for it at most every {}s while it lasts",
                                escape(root),
                                self.churn.recent(root),
                                churn::WINDOW.as_secs(),
                                churn::GAP.as_secs()
                            ),
                        );
                    }
                    self.schedule.at(at);
                }
            }
        }
    }

    /// A scan failed (out of file descriptors, /proc unreadable, out of inotify watches): the
    /// agent closes its pidfds (its own descriptors come first), says why (once until the
    /// error changes), writes the error textfile (UNKNOWN, `relwatch_error 1`) and tries again
    /// within [`RETRY`]. It never exits for it.
    fn scan_failed(&mut self, now: Instant, e: &anyhow::Error) {
        self.wakers.release_pidfds();
        let message = crate::escape::visible(&format!("{e:#}"));
        if self.failing.as_deref() != Some(message.as_str()) {
            self.log.line(
                Some(Severity::Unknown),
                &format!(
                    "scan failed, UNKNOWN until one works (next try within {}s): {message}",
                    RETRY.as_secs()
                ),
            );
            if let Some(dir) = self.textfile {
                let path = dir.join("relwatch.prom");
                let text = crate::report::prometheus::error(&message);
                if let Err(e) = crate::report::output::write_atomic(&path, text.as_bytes()) {
                    self.log.line(
                        Some(Severity::Warning),
                        &format!("cannot write {}: {e}", escape(&path)),
                    );
                }
            }
            self.failing = Some(message);
        }
        self.schedule.retry_at(now + RETRY);
    }

    /// A scan worked: say so when the last one had failed.
    fn scan_worked(&mut self) {
        if self.failing.take().is_some() {
            self.log.line(None, "scans work again");
        }
    }

    /// Hand the process events read since the last call to the restart history; scan when a
    /// loop appears, or when events were lost. True when there were events.
    fn take_events(&mut self) -> bool {
        let (events, lost) = self.wakers.take_events();
        if lost {
            self.log.line(
                Some(Severity::Warning),
                "process events were lost (the kernel's queue overflowed): full rescan",
            );
            self.schedule.wake();
            if !self.wakers.listening() {
                self.history.set_live(false);
            }
        }
        if !events.is_empty()
            && track::apply(
                &mut self.history,
                &self.releases,
                &events,
                wall_now(),
                &mut self.tally,
            )
            && self.loops_changed(Instant::now())
        {
            self.schedule.wake();
        }
        self.summarise(Instant::now(), false);
        !events.is_empty()
    }

    /// At most once per [`SUMMARY_EVERY`], and only when there was any: how many tracked
    /// processes started and ended since the last such line. A storm is one line a minute,
    /// not one per fork.
    /// `last`: the agent is stopping, say it whenever it was.
    fn summarise(&mut self, now: Instant, last: bool) {
        if self.tally.is_empty() || (!last && now.duration_since(self.summarised) < SUMMARY_EVERY) {
            return;
        }
        let track::Tally { started, ended } = std::mem::take(&mut self.tally);
        let since = crate::report::words::human_duration(
            now.duration_since(self.summarised).as_secs_f64().round(),
        );
        self.log.line(
            None,
            &format!(
                "process events: {started} tracked process{} started, {ended} ended in the last {since}",
                if started == 1 { "" } else { "es" }
            ),
        );
        self.summarised = now;
    }

    /// Whether the groups in a loop changed since last asked; and a scan when the earliest
    /// loop would clear.
    fn loops_changed(&mut self, now: Instant) -> bool {
        let wall = wall_now();
        let (loops, clears) = self.history.looping(wall);
        let loops: Vec<_> = loops.into_iter().cloned().collect();
        self.schedule.loops_clear(
            clears.map(|c| now + Duration::from_secs_f64((c - wall).max(0.0)) + schedule::MIN_GAP),
        );
        let changed = loops != self.loops;
        self.loops = loops;
        changed
    }

    /// Rewrite DIR/relwatch.prom; a failure is logged, and the agent goes on.
    fn write_textfile(&self, dir: &Path, result: &Scan, began: Instant) {
        let report = crate::report::Report::of(result, &self.roots, began.elapsed().as_secs_f64());
        let text = crate::report::textfile(&report);
        let path = dir.join("relwatch.prom");
        if let Err(e) = crate::report::output::write_atomic(&path, text.as_bytes()) {
            self.log.line(
                Some(Severity::Warning),
                &format!("cannot write {}: {e}", escape(&path)),
            );
        }
    }
}

/// Raise the soft limit on open files to the hard one (the agent holds pidfds, inotify watches
/// and a descriptor per /proc directory it reads); the limit it now has.
fn raise_open_files_limit() -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        limit.current = limit.maximum;
        // Best effort: on failure the soft limit stays, and the caps follow it.
        let _ = setrlimit(Resource::Nofile, limit);
    }
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

fn wall_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// "watching 2 deploy roots (/srv/shop, /srv/blog), full rescan every 5m"
fn watching(roots: &[DeployRoot], interval: Duration) -> String {
    format!(
        "watching {} deploy root{} ({}), full rescan every {}",
        roots.len(),
        if roots.len() == 1 { "" } else { "s" },
        roots
            .iter()
            .map(|r| escape(&r.root))
            .collect::<Vec<_>>()
            .join(", "),
        crate::report::words::human_duration(interval.as_secs_f64())
    )
}
