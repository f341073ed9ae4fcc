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

use exit::ExitCode;

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
    use cli::{Command, ConfigCommand};
    let stdout = std::io::stdout();
    let out = &mut stdout.lock();
    match &cli.command {
        Command::Check(args) => commands::check::run(args, out),
        Command::Ps(args) => commands::check::ps(args, out),
        Command::Wait(args) => commands::wait::run(args, out),
        Command::InUse(args) => commands::in_use::run(args, out),
        Command::Watch(args) => commands::watch::run(args, out),
        Command::Demo => commands::demo::run(out),
        Command::DemoProcess { role } => commands::demo::process(role),
        Command::Completions { shell } => commands::docs::completions(*shell, out),
        Command::Man => commands::docs::man(out),
        Command::Config(ConfigCommand::Example) => commands::config::example(out),
        Command::Config(ConfigCommand::Check { file }) => {
            commands::config::check(file.as_deref(), out)
        }
    }
}
