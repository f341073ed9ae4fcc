//! `relwatch check`: one scan, one report.

use crate::cli::{CheckArgs, ColorChoice, Format};
use crate::escape::escape;
use crate::exit::ExitCode;
use crate::report::{json, text};
use crate::scan::{scan, Options};
use std::io::Write;

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
    let crate::settings::Plan {
        mut roots,
        settings,
        searched,
    } = crate::settings::plan(
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
    let result = scan(
        &mut roots,
        &mut source,
        &settings,
        Options {
            all_owners,
            history: None,
        },
    )?;
    let report = crate::report::Report::of(&result, &roots, began.elapsed().as_secs_f64());
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
