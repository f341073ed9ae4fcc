//! relwatch: find processes that run an old or deleted release of a symlinked deploy.
//!
//! Data flows one way, and every stage but the first and the last is pure:
//!
//! ```text
//!  /proc ──► snapshot ──┐
//!                       ├──► attribution ──► findings ──► report (text | json)
//!  deploy roots ► layout┘      (evidence)      (rules)
//! ```
//!
//! `commands` compose the stages; `cli` is the only place that sees argv.

pub mod attribution;
pub mod cli;
pub mod commands;
pub mod config;
pub mod escape;
pub mod exit;
pub mod findings;
pub mod layout;
pub mod owner;
pub mod report;
pub mod scan;
pub mod settings;
pub mod snapshot;
#[cfg(test)]
mod testkit;

use exit::ExitCode;

/// The man page: the main page, then a section per command with its synopsis, description,
/// options and examples (the commands' own headings become subsections).
pub fn man_page() -> std::io::Result<Vec<u8>> {
    use clap::CommandFactory;
    let cmd = cli::Cli::command();
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut page)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = sub.get_name();
        let man = clap_mangen::Man::new(sub.clone().bin_name(format!("relwatch {name}")));
        let mut part = Vec::new();
        man.render_synopsis_section(&mut part)?;
        man.render_description_section(&mut part)?;
        man.render_options_section(&mut part)?;
        man.render_extra_section(&mut part)?;
        let part = String::from_utf8_lossy(&part).replace(".SH ", ".SS ");
        page.extend_from_slice(format!(".SH \"RELWATCH {}\"\n", name.to_uppercase()).as_bytes());
        page.extend_from_slice(part.as_bytes());
    }
    Ok(page)
}

/// Run the parsed command line and return the exit code. With `--format nagios`, an error is
/// an UNKNOWN status line on stdout: NRPE and most check runners drop stderr.
pub fn run(cli: cli::Cli) -> anyhow::Result<ExitCode> {
    let nagios = matches!(&cli.command, cli::Command::Check(a) if a.format == cli::Format::Nagios);
    match run_command(cli) {
        Err(e) if nagios => {
            use std::io::Write;
            let msg = escape::escape(format!("{e:#}")).replace('|', "\\x7c");
            let _ = writeln!(std::io::stdout(), "RELWATCH UNKNOWN - {msg}");
            Ok(ExitCode::Unknown)
        }
        other => other,
    }
}

fn run_command(cli: cli::Cli) -> anyhow::Result<ExitCode> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match &cli.command {
        cli::Command::Check(args) => commands::check::run(args, &mut out),
        cli::Command::Ps(args) => {
            commands::check::run_view(args, commands::check::View::Tree, &mut out)?;
            Ok(ExitCode::Ok)
        }
        cli::Command::Wait(args) => commands::wait::run(args, &mut out),
        cli::Command::InUse(args) => commands::in_use::run(args, &mut out),
        cli::Command::Watch(args) => commands::watch::run(args, &mut out),
        cli::Command::Demo => commands::demo::run(&mut out),
        cli::Command::DemoProcess { role } => commands::demo::process(role),
        cli::Command::Completions { shell } => {
            use clap::CommandFactory;
            use std::io::Write;
            // clap_complete panics on a write error: generate into memory, then write, so
            // `relwatch completions bash | head` is a clean broken pipe.
            let mut buf = Vec::new();
            clap_complete::generate(*shell, &mut cli::Cli::command(), "relwatch", &mut buf);
            out.write_all(&buf)?;
            Ok(ExitCode::Ok)
        }
        cli::Command::Man => {
            use std::io::Write;
            out.write_all(&man_page()?)?;
            Ok(ExitCode::Ok)
        }
        cli::Command::Config(cli::ConfigCommand::Example) => {
            use std::io::Write;
            write!(out, "{}", config::example())?;
            Ok(ExitCode::Ok)
        }
        cli::Command::Config(cli::ConfigCommand::Check { file }) => {
            use std::io::Write;
            let path = file
                .clone()
                .unwrap_or_else(|| std::path::PathBuf::from(config::DEFAULT_PATH));
            let cfg = settings::load_config(Some(&path))?;
            writeln!(
                out,
                "# {}: valid. The effective configuration:",
                escape::escape(&path)
            )?;
            write!(out, "{}", cfg.render())?;
            Ok(ExitCode::Ok)
        }
    }
}
