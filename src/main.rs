//! The relwatch binary: parse arguments, run, map the result to an exit status.
//! Usage errors exit 3 (UNKNOWN), not clap's 2, which means CRITICAL to a monitor.

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
        Err(e) if is_broken_pipe(&e) => ExitCode::Ok.into(),
        Err(e) => {
            eprintln!("relwatch: error: {e:#}");
            ExitCode::Unknown.into()
        }
    }
}

/// `relwatch check | head` closes the pipe early: that is not an error.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
