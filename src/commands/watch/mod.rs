//! `relwatch watch`: the agent. It rescans when the filesystem or a process says something
//! changed, and otherwise sleeps.
//!
//! - `wake`: what wakes it (signals, inotify on the deploy directories, a pidfd for each
//!   process a finding names), all into one `poll`.
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

mod diff;
mod schedule;
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
    let Plan {
        roots, settings, ..
    } = super::plan(&args.roots, args.grace)?;
    if let Some(dir) = &args.textfile {
        if !dir.is_dir() {
            return Err(crate::settings::UsageError(format!(
                "--textfile {}: not a directory (node_exporter's --collector.textfile.directory)",
                escape(dir)
            ))
            .into());
        }
    }
    let wakers = Wakers::start()?;
    let mut agent = Agent {
        roots,
        settings,
        source: super::proc_reader(args.scan.jobs),
        history: History::new(args.restart_limit, args.restart_window),
        known: Known::default(),
        textfile: args.textfile.as_deref(),
        wakers,
        schedule: Schedule::new(args.interval),
        log,
    };
    agent.log.line(None, &watching(&agent.roots, args.interval));
    loop {
        let now = Instant::now();
        if agent.schedule.scan_now(now) {
            agent.scan(now)?;
        }
        match agent.wakers.sleep(agent.schedule.sleep(), &agent.log)? {
            Wake::Stop(sig) => {
                agent.log.line(None, &format!("stopping on {sig}"));
                writeln!(out)?;
                return Ok(ExitCode::Ok);
            }
            Wake::Rescan => agent.schedule.wake(),
            Wake::Nothing => {}
        }
    }
}

/// Everything the agent keeps between scans.
struct Agent<'a> {
    roots: Vec<DeployRoot>,
    settings: Settings,
    source: LinuxProc,
    history: History,
    known: Known,
    textfile: Option<&'a Path>,
    wakers: Wakers,
    schedule: Schedule,
    log: Log,
}

impl Agent<'_> {
    /// One scan, started at `now`, and what follows from it: log lines, the textfile, when to
    /// look again, which processes to watch.
    fn scan(&mut self, now: Instant) -> anyhow::Result<()> {
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
                all_owners: false,
                history: Some(&mut self.history),
            },
        )?;
        self.known.update(&self.roots, &result.findings, &self.log);
        if let Some(dir) = self.textfile {
            self.write_textfile(dir, &result, began);
        }
        let clock_now = result.snap.clock.now;
        self.schedule
            .after_grace(&self.roots, &self.settings, clock_now, now);
        self.wakers.watch_pids(&result);
        Ok(())
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
