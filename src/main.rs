//! The relwatch binary: parse arguments, run, map the result to an exit status.
//! Usage errors exit 3 (UNKNOWN), not clap's 2, which means CRITICAL to a monitor. A broken
//! pipe is no failure: the commands write through [`relwatch::report::output::Stdout`], so the
//! exit code is still the verdict.

use clap::Parser;
use relwatch::exit::ExitCode;

fn main() -> std::process::ExitCode {
    let cli = match relwatch::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                ExitCode::Unknown
            } else {
                ExitCode::Ok // --help, --version
            };
            let _ = e.print();
            return code.into();
        }
    };
    match relwatch::run(cli) {
        Ok(code) => code.into(),
        Err(e) => {
            eprintln!("relwatch: error: {e:#}");
            ExitCode::Unknown.into()
        }
    }
}
