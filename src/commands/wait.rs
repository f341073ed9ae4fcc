//! `relwatch wait`: after a switch, block until every process of the app runs the current
//! release, and every role of the config has its `min` processes there (a `missing` finding
//! is waited for like a laggard, and listed when the wait times out).
//!
//! Each round is one scan and its `Verdict`: converged, failed, timed out, or still waiting
//! for some laggards. A full scan runs about once a second; between scans only the laggards are
//! polled, by pid *and* start time, every 50 ms, so the wait ends within a fraction of a second
//! of the last one being replaced and a reused pid is never taken for the old process. A
//! deleted release, a broken current link or a duplicate singleton ends the wait at once:
//! waiting cannot fix them. So does blindness: a process that could run an app's code but
//! could not be inspected (another user's, without root) may be on any release, so the wait
//! answers "cannot tell" (3) with why and how to see it, never "converged" over it. It
//! reports; it restarts nothing, unless asked with `--restart` (then it is `relwatch restart
//! --yes`: [`super::restart`]).

use crate::attribution::{Attribution, ReleaseState};
use crate::cli::WaitArgs;
use crate::escape::escape;
use crate::exit::ExitCode;
use crate::findings::{Finding, Kind, Severity};
use crate::layout::DeployRoot;
use crate::report::words;
use crate::scan::{scan, Options, Scan};
use crate::settings::Plan;
use crate::snapshot::{ProcSource, Snapshot};
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// How often the laggards are polled between scans (`restart` polls what it waits for too).
pub(crate) const POLL: Duration = Duration::from_millis(50);
/// How often a full scan runs while waiting.
pub(crate) const FULL_SCAN: Duration = Duration::from_secs(1);
const REDRAW: Duration = Duration::from_millis(250);

/// A process still on an old release.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Laggard {
    pid: i32,
    start_ticks: u64,
    label: String,
    release: String,
    app: usize,
}

/// What one scan says about the wait.
enum Verdict<'a> {
    /// Every process runs the current release.
    Converged { after: Duration },
    /// Something waiting will not fix (a deleted release, a broken link, a duplicate).
    Failed(Vec<&'a Finding>),
    /// Processes that could run an app's code could not be inspected: these `unreadable`
    /// findings.
    CannotTell(Vec<&'a Finding>),
    /// Past the deadline with these still on an old release, and these `missing` findings (a
    /// role of the config with too few processes on the current release).
    TimedOut {
        laggards: Vec<Laggard>,
        short: Vec<&'a Finding>,
    },
    /// These are still on an old release, or these roles are short.
    Waiting {
        laggards: Vec<Laggard>,
        short: Vec<&'a Finding>,
        elapsed: Duration,
    },
}

/// When the wait began and when it gives up.
struct Clock {
    started: Instant,
    timeout: Duration,
    deadline: Instant,
}

pub fn run(args: &WaitArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    if args.restart {
        return super::restart::after_wait(args, out);
    }
    // Grace does not apply: wait is for every process, now.
    let Plan {
        mut roots,
        settings,
        ..
    } = super::plan(&args.roots, Some(Duration::ZERO))?;
    if roots.is_empty() {
        writeln!(
            out,
            "relwatch wait: no deploy roots found: nothing to wait for"
        )?;
        return Ok(ExitCode::Ok);
    }
    let started = Instant::now();
    let clock = Clock {
        started,
        timeout: args.timeout,
        deadline: started + args.timeout,
    };
    let mut screen = Screen::new(std::io::stdout().is_terminal());
    let mut source = super::proc_reader(args.scan.jobs);
    loop {
        let result = scan(
            &mut roots,
            &mut source,
            &settings,
            Options {
                deep: args.scan.deep,
                ..Options::default()
            },
        )?;
        let total = result.attr.placements.len();
        let laggards = match verdict(&result, &clock) {
            Verdict::Failed(fatal) => {
                screen.end(out)?;
                say_failed(&roots, &fatal, out)?;
                return Ok(ExitCode::Critical);
            }
            Verdict::CannotTell(blind) => {
                screen.end(out)?;
                say_cannot_tell(&roots, &blind, out)?;
                return Ok(ExitCode::Unknown);
            }
            Verdict::Converged { after } => {
                screen.end(out)?;
                say_converged(&roots, total, after, out)?;
                return Ok(ExitCode::Ok);
            }
            Verdict::TimedOut { laggards, short } => {
                screen.end(out)?;
                if !laggards.is_empty() {
                    say_timed_out(&roots, &result, &laggards, clock.timeout, out)?;
                }
                say_short(&roots, &short, laggards.is_empty(), clock.timeout, out)?;
                return Ok(ExitCode::Warning);
            }
            Verdict::Waiting {
                laggards,
                short,
                elapsed,
            } => {
                let shortfall = shortfall(&roots, &short);
                let line = progress(&roots, &laggards, &shortfall, total, elapsed, clock.timeout);
                screen.show(&line, &laggards, out)?;
                (laggards, shortfall)
            }
        };
        let (laggards, shortfall) = laggards;
        let redraw =
            |elapsed| progress(&roots, &laggards, &shortfall, total, elapsed, clock.timeout);
        poll_laggards(&mut source, &laggards, &clock, &mut screen, redraw, out)?;
    }
}

/// Judge one scan: a problem waiting cannot fix first, then the laggards against the clock.
fn verdict<'a>(result: &'a Scan, clock: &Clock) -> Verdict<'a> {
    let fatal = fatal(&result.findings);
    if !fatal.is_empty() {
        return Verdict::Failed(fatal);
    }
    let blind: Vec<&Finding> = result
        .findings
        .iter()
        .filter(|f| f.kind == Kind::Unreadable)
        .collect();
    if !blind.is_empty() {
        return Verdict::CannotTell(blind);
    }
    let laggards = laggards(&result.snap, &result.attr);
    // A role of the config still short of its `min` on the current release: its workers may
    // be starting, so it is waited for like a laggard, never converged over.
    let short: Vec<&Finding> = result
        .findings
        .iter()
        .filter(|f| f.kind == Kind::Missing)
        .collect();
    let elapsed = clock.started.elapsed();
    if laggards.is_empty() && short.is_empty() {
        Verdict::Converged { after: elapsed }
    } else if Instant::now() >= clock.deadline {
        Verdict::TimedOut { laggards, short }
    } else {
        Verdict::Waiting {
            laggards,
            short,
            elapsed,
        }
    }
}

/// The findings that end the wait at once.
fn fatal(findings: &[Finding]) -> Vec<&Finding> {
    findings
        .iter()
        .filter(|f| f.severity == Severity::Critical && f.kind.about().ends_wait)
        .collect()
}

/// The processes placed on an old release, in pid order.
fn laggards(snap: &Snapshot, attr: &Attribution) -> Vec<Laggard> {
    let mut laggards: Vec<Laggard> = attr
        .placements
        .iter()
        .filter(|p| p.state == ReleaseState::Old)
        .filter_map(|pl| {
            let p = snap.get(pl.pid)?;
            Some(Laggard {
                pid: pl.pid,
                start_ticks: p.start_ticks,
                label: pl.role.clone().unwrap_or_else(|| escape(p.name())),
                release: pl
                    .release
                    .as_ref()
                    .map(escape)
                    .unwrap_or_else(|| "?".into()),
                app: pl.app,
            })
        })
        .collect();
    laggards.sort();
    laggards
}

/// Between full scans, poll the laggards by pid and start time until one is gone, a full scan
/// is due, or time is up; on a terminal, redraw the progress line meanwhile.
fn poll_laggards(
    source: &mut dyn ProcSource,
    laggards: &[Laggard],
    clock: &Clock,
    screen: &mut Screen,
    redraw: impl Fn(Duration) -> String,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let next_full = Instant::now() + FULL_SCAN;
    let mut next_draw = Instant::now() + REDRAW;
    loop {
        std::thread::sleep(POLL);
        let now = Instant::now();
        if now >= next_full || now >= clock.deadline {
            return Ok(());
        }
        // A laggard replaced, gone, or that cannot be read again: the full scan decides
        // (it sees a process it may not read and answers "cannot tell"), never this poll.
        if laggards
            .iter()
            .any(|l| source.stat(l.pid).ok().map(|s| s.start_ticks) != Some(l.start_ticks))
        {
            return Ok(());
        }
        if screen.live && now >= next_draw {
            screen.redraw(&redraw(clock.started.elapsed()), out)?;
            next_draw = now + REDRAW;
        }
    }
}

/// The progress line: redrawn in place on a terminal, else printed when the laggards change.
struct Screen {
    live: bool,
    /// A line is drawn in place: end it before the final message.
    drawn: bool,
    /// The laggards (pid, start time) of the last line shown.
    last: Option<Vec<(i32, u64)>>,
}

impl Screen {
    fn new(live: bool) -> Self {
        Screen {
            live,
            drawn: false,
            last: None,
        }
    }

    fn show(
        &mut self,
        line: &str,
        laggards: &[Laggard],
        out: &mut dyn Write,
    ) -> std::io::Result<()> {
        let key: Vec<(i32, u64)> = laggards.iter().map(|l| (l.pid, l.start_ticks)).collect();
        if self.live {
            self.redraw(line, out)?;
            self.drawn = true;
        } else if self.last.as_ref() != Some(&key) {
            writeln!(out, "{line}")?;
        }
        self.last = Some(key);
        Ok(())
    }

    fn redraw(&self, line: &str, out: &mut dyn Write) -> std::io::Result<()> {
        write!(out, "\r\x1b[K{line}")?;
        out.flush()
    }

    fn end(&self, out: &mut dyn Write) -> std::io::Result<()> {
        if self.drawn {
            writeln!(out)?;
        }
        Ok(())
    }
}

fn say_failed(
    roots: &[DeployRoot],
    fatal: &[&Finding],
    out: &mut dyn Write,
) -> std::io::Result<()> {
    writeln!(
        out,
        "relwatch wait: CRITICAL, not waiting: {} problem{} that waiting will not fix (each needs its fix below)",
        fatal.len(),
        if fatal.len() == 1 { "" } else { "s" }
    )?;
    say_findings(roots, fatal, out)
}

/// Why it cannot tell: each `unreadable` finding, with its fix (root, or the sudo rule).
fn say_cannot_tell(
    roots: &[DeployRoot],
    blind: &[&Finding],
    out: &mut dyn Write,
) -> std::io::Result<()> {
    writeln!(
        out,
        "relwatch wait: UNKNOWN, cannot tell whether every process runs the current release: processes that could run its code could not be inspected"
    )?;
    say_findings(roots, blind, out)
}

/// Each finding on two lines: kind, app and message, then its fix.
fn say_findings(
    roots: &[DeployRoot],
    findings: &[&Finding],
    out: &mut dyn Write,
) -> std::io::Result<()> {
    for f in findings {
        let root = &roots[f.app];
        writeln!(
            out,
            "  {} {}: {}",
            f.kind.as_str(),
            escape(&root.name),
            words::message(f, root)
        )?;
        writeln!(out, "    fix: {}", words::remedy(f, root))?;
    }
    Ok(())
}

fn say_converged(
    roots: &[DeployRoot],
    total: usize,
    after: Duration,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let currents: Vec<String> = roots
        .iter()
        .map(|r| {
            format!(
                "{} on {}",
                escape(&r.name),
                r.current_release()
                    .map(escape)
                    .unwrap_or_else(|| "?".into())
            )
        })
        .collect();
    writeln!(
        out,
        "relwatch wait: OK: all {total} process{} run the current release ({}), after {}",
        if total == 1 { "" } else { "es" },
        currents.join(", "),
        crate::report::words::human_duration(after.as_secs_f64())
    )
}

/// Each laggard with its owner and the fix its old-release finding names.
fn say_timed_out(
    roots: &[DeployRoot],
    result: &Scan,
    laggards: &[Laggard],
    timeout: Duration,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let Scan {
        attr,
        owners,
        findings,
        ..
    } = result;
    let total = attr.placements.len();
    writeln!(
        out,
        "relwatch wait: WARNING: timed out after {}: {} of {total} process{} still on an old release",
        crate::report::words::human_duration(timeout.as_secs_f64()),
        laggards.len(),
        if total == 1 { "" } else { "es" }
    )?;
    for l in laggards {
        let owner = owners
            .get(l.pid)
            .map(|o| o.label())
            .unwrap_or_else(|| "owner unknown".into());
        let fix = findings
            .iter()
            .find(|f| f.kind == Kind::OldRelease && f.pids.contains(&l.pid))
            .map(|f| words::remedy(f, &roots[f.app]).to_string())
            .unwrap_or_default();
        writeln!(
            out,
            "  pid {:<7} {:<16} release {:<10} {owner}\n    fix: {fix}",
            l.pid, l.label, l.release
        )?;
    }
    Ok(())
}

/// The roles still short, for the progress line: "shop: role queue has 0 instances on current
/// release 7 (min 2) ...", joined by "; ".
fn shortfall(roots: &[DeployRoot], short: &[&Finding]) -> String {
    short
        .iter()
        .map(|f| {
            let root = &roots[f.app];
            format!("{}: {}", escape(&root.name), words::message(f, root))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The roles still short when the wait timed out, with their fix; a headline of their own when
/// no process was left on an old release (`alone`).
fn say_short(
    roots: &[DeployRoot],
    short: &[&Finding],
    alone: bool,
    timeout: Duration,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    if short.is_empty() {
        return Ok(());
    }
    if alone {
        writeln!(
            out,
            "relwatch wait: WARNING: timed out after {}: {} with too few processes on the current release",
            crate::report::words::human_duration(timeout.as_secs_f64()),
            words::count(short.len(), "role", "roles")
        )?;
    }
    say_findings(roots, short, out)
}

/// "waiting for 3 of 12 processes on release 64 of shop: php ×2, sleep ×1 — 14s / 2m"
/// With roles short (`shortfall`, see [`shortfall`]) it is added, or alone without laggards:
/// "waiting for shop: role queue has 0 instances ... — 3s / 2m".
fn progress(
    roots: &[DeployRoot],
    laggards: &[Laggard],
    shortfall: &str,
    total: usize,
    elapsed: Duration,
    timeout: Duration,
) -> String {
    let clock = format!(
        "{} / {}",
        crate::report::words::human_duration(elapsed.as_secs_f64()),
        crate::report::words::human_duration(timeout.as_secs_f64())
    );
    if laggards.is_empty() {
        return format!("waiting for {shortfall} \u{2014} {clock}");
    }
    let and = if shortfall.is_empty() {
        String::new()
    } else {
        format!("; and for {shortfall}")
    };
    let mut releases: Vec<String> = Vec::new();
    let mut by_label: BTreeMap<&str, usize> = BTreeMap::new();
    for l in laggards {
        let r = format!("{} of {}", l.release, escape(&roots[l.app].name));
        if !releases.contains(&r) {
            releases.push(r);
        }
        *by_label.entry(&l.label).or_default() += 1;
    }
    let labels: Vec<String> = by_label
        .iter()
        .map(|(l, n)| format!("{l} \u{d7}{n}"))
        .collect();
    format!(
        "waiting for {} of {total} processes on release {}: {}{and} \u{2014} {clock}",
        laggards.len(),
        releases.join(", "),
        labels.join(", "),
    )
}
