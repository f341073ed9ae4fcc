//! `relwatch check` and `relwatch ps`: one scan, one report. `check` is the verdict (its exit
//! code is the worst finding's); `ps` is the same scan drawn as a tree (or the same JSON) and
//! exits 0 unless it failed, so the monitoring formats are `check`'s alone.
//!
//! JSON and text are streamed to the writer: a scan of 20,000 processes never holds its report
//! in memory as a string.

use crate::cli::{CheckArgs, ColorChoice, Format};
use crate::escape::escape;
use crate::exit::ExitCode;
use crate::layout::DeployRoot;
use crate::report::{json, text, Report};
use crate::scan::{scan, Options};
use crate::settings::Plan;
use std::io::Write;
use std::path::PathBuf;

/// What `check` and `ps` print from the same scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum View {
    Check,
    Tree,
}

/// `relwatch check`.
pub fn run(args: &CheckArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    run_view(args, View::Check, out)
}

/// `relwatch ps`: exits 0 whatever it shows (`check` is for alerting). So it speaks text and
/// JSON only (the command line refuses the rest): a Nagios line or a textfile saying WARNING
/// with exit 0 would be read as OK by whatever polls it.
pub fn ps(args: &CheckArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    if matches!(args.format, Format::Nagios | Format::Prometheus) {
        return Err(crate::settings::UsageError(
            "relwatch ps speaks text and json; monitor with relwatch check".into(),
        )
        .into());
    }
    run_view(args, View::Tree, out)?;
    Ok(ExitCode::Ok)
}

fn run_view(args: &CheckArgs, view: View, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let Plan {
        mut roots,
        settings,
        searched,
    } = super::plan(&args.roots, args.grace)?;
    if roots.is_empty() {
        let msg = nothing_found(searched.as_deref().unwrap_or_default());
        if args.format == Format::Text && view == View::Check && args.output.is_none() {
            writeln!(out, "relwatch OK: {msg}")?;
            return Ok(ExitCode::Ok);
        }
        // Machine formats still get a whole, valid document (with no apps).
        say!("relwatch: {msg}");
    } else if let Some(places) = &searched {
        say!("relwatch: {}", discovered(&roots, places));
    }
    let mut source = super::proc_reader(args.scan.jobs);
    let began = std::time::Instant::now();
    // JSON and the ps tree show every process's owner; the other outputs only those in findings.
    let all_owners = args.format == Format::Json || view == View::Tree;
    let result = scan(
        &mut roots,
        &mut source,
        &settings,
        Options {
            all_owners,
            history: None,
            deep: args.scan.deep,
        },
    )?;
    let report = Report::of(&result, &roots, began.elapsed().as_secs_f64());
    let color = args.output.is_none()
        && match args.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => color_auto(),
        };
    let emit = |w: &mut dyn Write| write_report(&report, args.format, view, color, w);
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
    Ok(report.exit)
}

/// "no deploy roots found under /srv, /opt (name one: relwatch check /srv/app)"
fn nothing_found(searched: &[PathBuf]) -> String {
    let places: Vec<String> = searched.iter().map(escape).collect();
    format!(
        "no deploy roots found under {} (name one: relwatch check /srv/app)",
        places.join(", ")
    )
}

/// "found 2 deploy roots under /srv: /srv/shop, /srv/blog"
fn discovered(roots: &[DeployRoot], places: &[PathBuf]) -> String {
    let found: Vec<String> = roots.iter().map(|r| escape(&r.root)).collect();
    format!(
        "found {} deploy root{} under {}: {}",
        roots.len(),
        if roots.len() == 1 { "" } else { "s" },
        places.iter().map(escape).collect::<Vec<_>>().join(", "),
        found.join(", ")
    )
}

/// The report in the format asked for.
fn write_report(
    report: &Report,
    format: Format,
    view: View,
    color: bool,
    w: &mut dyn Write,
) -> std::io::Result<()> {
    match format {
        Format::Json => {
            json::write(report, true, &mut *w).map_err(|e| match e.io_error_kind() {
                // keep a broken pipe a broken pipe: `check --format json | head` is clean
                Some(kind) => std::io::Error::from(kind),
                None => std::io::Error::other(e),
            })?;
            writeln!(w)
        }
        Format::Nagios => w.write_all(crate::report::nagios::render(report).as_bytes()),
        Format::Prometheus => w.write_all(crate::report::prometheus::render(report).as_bytes()),
        Format::Text if view == View::Tree => {
            w.write_all(crate::report::tree::render(report).as_bytes())
        }
        Format::Text => text::write(report, text::Style { color }, &mut *w),
    }
}

/// Color when stdout is a terminal, `NO_COLOR` is unset or empty, and `TERM` is not `dumb`.
fn color_auto() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
}
