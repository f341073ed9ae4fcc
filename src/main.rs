//! The relwatch binary: parse arguments, run, map the result to an exit status.
//!
//! Every failure is UNKNOWN (3), bad arguments included (never clap's 2, which means CRITICAL
//! to a monitor), and a broken pipe is no failure: the exit code is still the verdict.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let code = match relwatch::cli::Cli::try_parse_from(&argv) {
        Ok(cli) => relwatch::run(cli),
        Err(e) => relwatch::refused(&argv, e),
    };
    code.into()
}
