//! `relwatch check`: one scan, one report.

use crate::attribution::{attribute, verify, Attribution};
use crate::cli::{CheckArgs, ColorChoice, Format};
use crate::escape::escape;
use crate::exit::ExitCode;
use crate::findings::{evaluate, worst, Finding, Input, Settings};
use crate::layout::DeployRoot;
use crate::report::{json, text, Report};
use crate::snapshot::{ProcSource, Snapshot};
use std::io::Write;

/// One full pass: snapshot, attribution, findings.
pub struct Scan {
    pub snap: Snapshot,
    pub attr: Attribution,
    pub owners: crate::owner::Owners,
    pub findings: Vec<Finding>,
}

impl Scan {
    /// The report of this scan over `roots`, its exit code from the worst finding.
    pub fn report<'a>(&'a self, roots: &'a [DeployRoot], scan_seconds: f64) -> Report<'a> {
        Report {
            roots,
            snap: &self.snap,
            attr: &self.attr,
            owners: &self.owners,
            findings: &self.findings,
            exit: ExitCode::from_worst(worst(&self.findings)),
            scan_seconds,
        }
    }
}

/// Scan against `roots`. When a `current` link changes during the scan, the layout is read
/// again and the scan repeated once, so findings never mix two layouts.
pub fn scan(
    roots: &mut Vec<DeployRoot>,
    source: &mut dyn ProcSource,
    settings: &Settings,
    all_owners: bool,
) -> anyhow::Result<Scan> {
    let mut retried = false;
    loop {
        let snap = source
            .snapshot()
            .map_err(|e| anyhow::anyhow!("cannot list /proc: {e} (is procfs mounted?)"))?;
        let mut attr = attribute(roots, &snap);
        crate::attribution::apply_settings(&mut attr, &snap, settings);
        // Owners read cgroup and environ: before verify, so a pid reused during those reads
        // is caught by the start-time check.
        let deciding = crate::attribution::deciders(&attr, &snap);
        let owners = crate::owner::collect(&snap, &attr, &deciding, source, all_owners);
        verify(&mut attr, &snap, &deciding, source);
        crate::attribution::confirm_zombies(&mut attr, &snap, source);
        let reloaded: Vec<DeployRoot> = roots
            .iter()
            .map(|r| r.reload().unwrap_or_else(|_| r.clone()))
            .collect();
        let flipped = reloaded
            .iter()
            .zip(roots.iter())
            .any(|(a, b)| a.current != b.current || a.switch_time != b.switch_time);
        if flipped && !retried {
            retried = true;
            *roots = reloaded;
            continue;
        }
        let findings = evaluate(&Input {
            roots,
            snap: &snap,
            attr: &attr,
            owners: &owners,
            settings,
        });
        return Ok(Scan {
            snap,
            attr,
            owners,
            findings,
        });
    }
}

/// What `check` and `ps` print: one document per run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Check,
    Tree,
}

pub fn run(args: &CheckArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    run_view(args, View::Check, out)
}

pub fn run_view(args: &CheckArgs, view: View, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let super::plan::Plan {
        mut roots,
        settings,
        searched,
    } = super::plan::plan(
        &args.roots,
        &args.discover,
        args.config.as_deref(),
        args.grace,
    )?;
    if roots.is_empty() {
        let places: Vec<String> = searched.iter().flatten().map(escape).collect();
        let msg = format!(
            "no deploy roots found under {} (name one: relwatch check /srv/app)",
            places.join(", ")
        );
        if args.format == Format::Text && view == View::Check && args.output.is_none() {
            writeln!(out, "relwatch OK: {msg}")?;
            return Ok(ExitCode::Ok);
        }
        // Machine formats still get a whole, valid document (with no apps).
        eprintln!("relwatch: {msg}");
    }
    if let Some(places) = searched.as_ref().filter(|_| !roots.is_empty()) {
        let found: Vec<String> = roots.iter().map(|r| escape(&r.root)).collect();
        eprintln!(
            "relwatch: found {} deploy root{} under {}: {}",
            roots.len(),
            if roots.len() == 1 { "" } else { "s" },
            places.iter().map(escape).collect::<Vec<_>>().join(", "),
            found.join(", ")
        );
    }
    let mut source = args.scan.source();
    let began = std::time::Instant::now();
    // JSON and the ps tree show every process's owner; the other outputs only those in findings.
    let all_owners = args.format == Format::Json || view == View::Tree;
    let result = scan(&mut roots, &mut source, &settings, all_owners)?;
    let report = result.report(&roots, began.elapsed().as_secs_f64());
    let exit = report.exit;
    let color = args.output.is_none()
        && match args.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => color_auto(),
        };
    // JSON and text are streamed: a scan of 20,000 processes never holds its report in memory.
    let emit = |w: &mut dyn Write| -> std::io::Result<()> {
        match args.format {
            Format::Json => {
                json::write(&report, true, &mut *w).map_err(|e| match e.io_error_kind() {
                    // keep a broken pipe a broken pipe: `check --format json | head` is clean
                    Some(kind) => std::io::Error::from(kind),
                    None => std::io::Error::other(e),
                })?;
                writeln!(w)
            }
            Format::Nagios => w.write_all(crate::report::nagios::render(&report).as_bytes()),
            Format::Prometheus => {
                w.write_all(crate::report::prometheus::render(&report).as_bytes())
            }
            Format::Text if view == View::Tree => {
                w.write_all(crate::report::tree::render(&report).as_bytes())
            }
            Format::Text => text::write(&report, text::Style { color }, &mut *w),
        }
    };
    match &args.output {
        Some(path) => crate::report::output::write_atomic_with(path, emit).map_err(|e| {
            anyhow::anyhow!(
                "cannot write {}: {e} (does the directory exist and is it writable?)",
                escape(path)
            )
        })?,
        None => {
            let mut w = std::io::BufWriter::with_capacity(64 * 1024, &mut *out);
            emit(&mut w)?;
            w.flush()?;
        }
    }
    Ok(exit)
}

/// Color when stdout is a terminal, `NO_COLOR` is unset or empty, and `TERM` is not `dumb`.
fn color_auto() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
}
