//! Commands: each one a thin composition of the one scan pipeline ([`crate::scan`]) and a
//! renderer ([`crate::report`]). A command takes its parsed arguments, returns an exit code, and
//! holds no logic a rule or a renderer should own; the argv side stays in [`crate::cli`].
//!
//! This is also where the Linux /proc reader is built: the one place that picks the real host,
//! and where a failed command leaves its error document ([`write_error`]).

pub mod check;
pub mod config;
pub mod demo;
pub mod docs;
pub mod in_use;
pub mod restart;
pub mod wait;
pub mod watch;

use crate::cli::{ErrorOutput, Format, RootsArgs};
use crate::report::output;
use crate::settings::Plan;
use crate::snapshot::linux::LinuxProc;
use std::time::Duration;

/// The /proc reader of this host, with `--jobs` threads when given.
fn proc_reader(jobs: Option<u16>) -> LinuxProc {
    let proc = LinuxProc::default();
    match jobs {
        Some(jobs) => proc.with_jobs(usize::from(jobs)),
        None => proc,
    }
}

/// The deploy roots and settings that `args` name, with `grace` (when given) over the config
/// file's.
fn plan(args: &RootsArgs, grace: Option<Duration>) -> anyhow::Result<Plan> {
    crate::settings::plan(&args.roots, &args.discover, args.config.as_deref(), grace)
}

/// The document a failed run leaves in `format`, or `None` for text (whose message goes to
/// stderr alone). `message` is one line with nothing invisible left in it
/// ([`crate::escape::visible`]).
pub fn error_document(format: Format, message: &str) -> Option<String> {
    match format {
        Format::Text => None,
        Format::Json => Some(crate::report::json::error(message)),
        Format::Nagios => Some(crate::report::nagios::error(message)),
        Format::Prometheus => Some(crate::report::prometheus::error(message)),
    }
}

/// [`write_error`] from a thread that must not wait for stdout's lock (the watchdog: the scan
/// it gives up on holds that lock for the whole run). It writes to a duplicate of fd 1.
pub fn write_error_unlocked(to: &ErrorOutput, message: &str) {
    use std::os::fd::AsFd;
    if to.file.is_some() {
        return write_error(to, message);
    }
    let Some(doc) = error_document(to.format, message) else {
        return;
    };
    let written = std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .and_then(|fd| std::io::Write::write_all(&mut std::fs::File::from(fd), doc.as_bytes()));
    if let Err(e) = written {
        say!("relwatch: error: cannot write the error document to stdout: {e}");
    }
}

/// Write the document of a failed run where the report would have gone: the `--output` file
/// (atomically, like a report) or stdout. A file that cannot be written is said on stderr: the
/// document never lands elsewhere, where nobody reads it.
pub fn write_error(to: &ErrorOutput, message: &str) {
    let Some(doc) = error_document(to.format, message) else {
        return;
    };
    match &to.file {
        Some(path) => {
            if let Err(e) = output::write_atomic(path, doc.as_bytes()) {
                say!(
                    "relwatch: error: cannot write the error document to {}: {e}",
                    crate::escape::escape(path)
                );
            }
        }
        None => {
            let mut out = output::Stdout::new(std::io::stdout().lock());
            if let Err(e) = std::io::Write::write_all(&mut out, doc.as_bytes())
                .and_then(|()| std::io::Write::flush(&mut out))
            {
                say!("relwatch: error: cannot write the error document to stdout: {e}");
            }
        }
    }
}
