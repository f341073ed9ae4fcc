//! `relwatch config example` and `relwatch config check [FILE]`: the config file's own
//! commands. `check` goes through the same loader as every scan ([`crate::settings`]), so a
//! file it accepts is a file the agent accepts; a refusal is a usage error (exit 3).

use crate::escape::escape;
use crate::exit::ExitCode;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Print the commented example file.
pub fn example(out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    write!(out, "{}", crate::config::example())?;
    Ok(ExitCode::Ok)
}

/// Validate `file` (default: the standard path) and print the effective configuration.
pub fn check(file: Option<&Path>, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let path = file
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(crate::config::DEFAULT_PATH));
    let cfg = crate::settings::load_config(Some(&path))?;
    writeln!(
        out,
        "# {}: valid. The effective configuration:",
        escape(&path)
    )?;
    write!(out, "{}", cfg.render())?;
    Ok(ExitCode::Ok)
}
