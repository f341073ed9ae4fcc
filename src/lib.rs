//! relwatch: find processes that run an old or deleted release of a symlinked deploy.
//!
//! Data flows one way. The stages that read the host say so; the others are pure:
//!
//! ```text
//!  /proc ──► snapshot ──┐
//!                       ├──► attribution ──► second look ──► findings ──► report
//!  deploy roots ► layout┘    placement,      owners, re-check,  rules,       text, json, nagios,
//!                            pure            zombie confirm:    pure         prometheus, ps, in-use
//!                                            reads the host
//!        settings (flags + config file + defaults, resolved once) feed placement and rules
//! ```
//!
//! [`scan`] runs the stages in that order, for every command. The modules below are listed in
//! the order data flows through them.

/// `eprintln!` that never panics: stderr into a pipe whose reader has gone (EPIPE) must not
/// turn a verdict into a panic's exit 101. What cannot be said is dropped.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

// one pass over /proc into plain data (reads the host)
pub mod snapshot;
// the kernel's process events (fork, exec, exit) the agent listens to (reads the host)
pub mod events;
// each deploy root on disk: its `current` link, releases and switch history
pub mod layout;
// the config file, read, or refused with file, line and key
pub mod config;
// flags, config file and defaults merged once into the roots and each one's settings
pub mod settings;
// each process placed in at most one (app, release), with the evidence; re-check, zombies
pub mod attribution;

/// Mapped and open files, interpreter paths, other mount namespaces: what the cheap pass misses.
pub mod holds;
// who started each process (unit, program, service, session), so what to restart
pub mod owner;
// one rule per finding kind, pure over everything above
pub mod findings;
// the one pipeline: read, place, second look, rules
pub mod scan;
// renderers that only format: text, JSON, Nagios, Prometheus, the ps tree, in-use
pub mod report;
// untrusted text made safe for a terminal, a log line or a monitoring line
pub mod escape;
// the exit code: the monitoring-plugin convention, in one type
pub mod exit;
// the command line: the only place that sees argv
pub mod cli;
// each subcommand: a thin composition of one scan and one renderer
pub mod commands;
#[cfg(test)]
mod testkit;

pub mod watchdog;

use exit::ExitCode;

/// Run the parsed command line and return its exit code. A failed run exits 3 (UNKNOWN) and
/// says why on stderr and, in a machine format, as a document of that format where the report
/// would have gone ([`commands::write_error`]): NRPE and most check runners drop stderr.
pub fn run(cli: cli::Cli) -> ExitCode {
    let to = cli.error_output();
    if let Some(limit) = cli.scan_deadline() {
        watchdog::install(limit, to.clone());
    }
    // A one-shot command is one scan, its roots' reading included; `wait` and `watch` arm each
    // scan (crate::scan::scan).
    let one_shot = matches!(
        cli.command,
        cli::Command::Check(_) | cli::Command::Ps(_) | cli::Command::InUse(_)
    );
    let _whole_run = one_shot.then(watchdog::arm);
    match run_command(cli) {
        Ok(code) => code,
        Err(e) => {
            let message = format!("{e:#}");
            say!("relwatch: error: {message}");
            commands::write_error(&to, &escape::visible(&message));
            ExitCode::Unknown
        }
    }
}

/// What a command line clap refused exits with: `--help` and `--version` 0, anything else 3
/// (UNKNOWN, never clap's 2, which means CRITICAL to a monitor), with clap's message on stderr
/// and the document of the format `argv` asks for ([`cli::ErrorOutput::from_argv`]).
pub fn refused(argv: &[std::ffi::OsString], e: clap::Error) -> ExitCode {
    let _ = e.print();
    if !e.use_stderr() {
        return ExitCode::Ok;
    }
    let to = cli::ErrorOutput::from_argv(argv);
    commands::write_error(&to, &escape::visible(&cli::usage_message(&e)));
    ExitCode::Unknown
}

/// Every command writes to stdout through [`report::output::Stdout`]: a reader that went away
/// ends the output, and the command still returns its verdict.
fn run_command(cli: cli::Cli) -> anyhow::Result<ExitCode> {
    use cli::{Command, ConfigCommand};
    let out = &mut report::output::Stdout::new(std::io::stdout().lock());
    match &cli.command {
        Command::Check(args) => commands::check::run(args, out),
        Command::Ps(args) => commands::check::ps(args, out),
        Command::Wait(args) => commands::wait::run(args, out),
        Command::Restart(args) => commands::restart::run(args, out),
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
