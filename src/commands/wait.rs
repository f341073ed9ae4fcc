//! `relwatch wait`: after a switch, block until every process of the app runs the current
//! release.
//!
//! A full scan runs about once a second; between scans only the laggards are polled, by pid
//! *and* start time, every 50 ms, so the wait ends within a fraction of a second of the last
//! one being replaced and a reused pid is never taken for the old process. A deleted release,
//! a broken current link or a duplicate singleton ends the wait at once: waiting cannot fix
//! them.

use crate::attribution::ReleaseState;
use crate::cli::WaitArgs;
use crate::escape::escape;
use crate::exit::ExitCode;
use crate::findings::{Kind, Severity};
use crate::scan::{scan, Options, Scan};
use crate::snapshot::ProcSource;
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

const POLL: Duration = Duration::from_millis(50);
const FULL_SCAN: Duration = Duration::from_secs(1);
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

pub fn run(args: &WaitArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    // Grace does not apply: wait is for every process, now.
    let crate::settings::Plan {
        mut roots,
        settings,
        ..
    } = crate::settings::plan(
        &args.roots,
        &args.discover,
        args.config.as_deref(),
        Some(Duration::ZERO),
    )?;
    if roots.is_empty() {
        writeln!(
            out,
            "relwatch wait: no deploy roots found: nothing to wait for"
        )?;
        return Ok(ExitCode::Ok);
    }
    let live = std::io::stdout().is_terminal();
    let started = Instant::now();
    let deadline = started + args.timeout;
    let mut source = args.scan.source();
    let mut last: Option<Vec<(i32, u64)>> = None;
    let mut drawn = false;
    loop {
        let Scan {
            snap,
            attr,
            owners,
            findings,
        } = scan(&mut roots, &mut source, &settings, Options::default())?;
        let fatal: Vec<_> = findings
            .iter()
            .filter(|f| f.severity == Severity::Critical && f.kind.about().ends_wait)
            .collect();
        if !fatal.is_empty() {
            if drawn {
                writeln!(out)?;
            }
            writeln!(
                out,
                "relwatch wait: CRITICAL, not waiting: {} problem{} that no restart of workers will fix",
                fatal.len(),
                if fatal.len() == 1 { "" } else { "s" }
            )?;
            for f in fatal {
                writeln!(
                    out,
                    "  {} {}: {}",
                    f.kind.as_str(),
                    roots[f.app].name,
                    crate::report::words::message(f, &roots[f.app])
                )?;
                writeln!(
                    out,
                    "    fix: {}",
                    crate::report::words::remedy(f, &roots[f.app])
                )?;
            }
            return Ok(ExitCode::Critical);
        }
        let total = attr.placements.len();
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
        let elapsed = started.elapsed();
        if laggards.is_empty() {
            if drawn {
                writeln!(out)?;
            }
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
                crate::attribution::human_duration(elapsed.as_secs_f64())
            )?;
            return Ok(ExitCode::Ok);
        }
        if Instant::now() >= deadline {
            if drawn {
                writeln!(out)?;
            }
            writeln!(
                out,
                "relwatch wait: WARNING: timed out after {}: {} of {total} process{} still on an old release",
                crate::attribution::human_duration(args.timeout.as_secs_f64()),
                laggards.len(),
                if total == 1 { "" } else { "es" }
            )?;
            for l in &laggards {
                let owner = owners
                    .get(l.pid)
                    .map(|o| o.label())
                    .unwrap_or_else(|| "owner unknown".into());
                let fix = findings
                    .iter()
                    .find(|f| f.kind == Kind::OldRelease && f.pids.contains(&l.pid))
                    .map(|f| crate::report::words::remedy(f, &roots[f.app]).to_string())
                    .unwrap_or_default();
                writeln!(
                    out,
                    "  pid {:<7} {:<16} release {:<10} {owner}\n    fix: {fix}",
                    l.pid, l.label, l.release
                )?;
            }
            return Ok(ExitCode::Warning);
        }
        let key: Vec<(i32, u64)> = laggards.iter().map(|l| (l.pid, l.start_ticks)).collect();
        let line = progress(&roots, &laggards, total, elapsed, args.timeout);
        if live {
            write!(out, "\r\x1b[K{line}")?;
            out.flush()?;
            drawn = true;
        } else if last.as_ref() != Some(&key) {
            writeln!(out, "{line}")?;
        }
        last = Some(key);

        // Cheap polling of the laggards until one is gone, a full scan is due, or time is up.
        let next_full = Instant::now() + FULL_SCAN;
        let mut next_draw = Instant::now() + REDRAW;
        loop {
            std::thread::sleep(POLL);
            let now = Instant::now();
            if now >= next_full || now >= deadline {
                break;
            }
            if laggards
                .iter()
                .any(|l| source.start_ticks(l.pid) != Some(l.start_ticks))
            {
                break;
            }
            if live && now >= next_draw {
                let line = progress(&roots, &laggards, total, started.elapsed(), args.timeout);
                write!(out, "\r\x1b[K{line}")?;
                out.flush()?;
                next_draw = now + REDRAW;
            }
        }
    }
}

/// "waiting for 3 of 12 processes on release 64 of shop: php ×2, sleep ×1 — 14s / 2m"
fn progress(
    roots: &[crate::layout::DeployRoot],
    laggards: &[Laggard],
    total: usize,
    elapsed: Duration,
    timeout: Duration,
) -> String {
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
        "waiting for {} of {total} processes on release {}: {} \u{2014} {} / {}",
        laggards.len(),
        releases.join(", "),
        labels.join(", "),
        crate::attribution::human_duration(elapsed.as_secs_f64()),
        crate::attribution::human_duration(timeout.as_secs_f64())
    )
}
