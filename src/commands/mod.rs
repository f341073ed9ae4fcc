//! Commands: each one a thin composition of the one scan pipeline ([`crate::scan`]) and a
//! renderer ([`crate::report`]). A command takes its parsed arguments, returns an exit code, and
//! holds no logic a rule or a renderer should own; the argv side stays in [`crate::cli`].
//!
//! This is also where the Linux /proc reader is built: the one place that picks the real host.

pub mod check;
pub mod config;
pub mod demo;
pub mod docs;
pub mod in_use;
pub mod wait;
pub mod watch;

use crate::cli::RootsArgs;
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
