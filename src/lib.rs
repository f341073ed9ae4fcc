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
pub mod snapshot;

use exit::ExitCode;

/// Run the parsed command line and return the exit code.
pub fn run(cli: cli::Cli) -> anyhow::Result<ExitCode> {
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
            use clap::CommandFactory;
            clap_mangen::Man::new(cli::Cli::command()).render(&mut out)?;
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
            let cfg = commands::plan::load_config(Some(&path))?;
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
