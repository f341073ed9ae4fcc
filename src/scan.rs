//! The scan: the one pipeline every command runs, in the order the data flows.
//!
//! ```text
//!  read /proc ─► place (pure) ─► second look ─► rules (pure)
//!   Snapshot      Attribution     owners,         Findings
//!                                 re-verify,
//!                                 zombie confirm
//! ```
//!
//! 1. **read**: one pass over `/proc` ([`ProcSource::snapshot`]).
//! 2. **place**: each process gets at most one (app, release) and the evidence for it, then
//!    each app's `ignore` and `roles` apply ([`crate::attribution`]). Pure. Then the processes
//!    it could not place that could run an app's code (every process with `--deep`) have their
//!    mapped and open files, interpreter paths and other mount namespace read, and so do the
//!    placed ones whose cwd or exe was deleted on a releases' device (its mount namespace);
//!    they are placed by what they hold ([`crate::holds`]).
//! 3. **second look**: only for the processes that can decide a finding: their owners (cgroup
//!    and the few named environment keys), a re-check that each is still the process that was
//!    read and lives in our mount namespace, and a second look at zombies after
//!    [`crate::attribution::ZOMBIE_CONFIRM`], and a second look at the counters of a
//!    process on an old release that had reaped children when the snapshot read it
//!    ([`crate::attribution::watch_reaping`]: its workers keep dying). It reads the host.
//! 4. **rules**: one per finding kind, over everything above and the agent's restart history
//!    ([`crate::findings::evaluate`]). Pure.
//!
//! When a `current` link moves during the scan, the layout is read again and the scan repeated
//! once, so findings never mix two layouts. Commands call [`scan`] and render its [`Scan`];
//! none of them runs a stage of its own.

use crate::attribution::{self, Attribution};
use crate::findings::restart_loop::History;
use crate::findings::{self, Finding, Input};
use crate::layout::DeployRoot;
use crate::owner::{self, Owners};
use crate::settings::Settings;
use crate::snapshot::{ArgsWorthKeeping, ProcSource, Snapshot};

/// What one scan found, stage by stage.
pub struct Scan {
    pub snap: Snapshot,
    pub attr: Attribution,
    pub owners: Owners,
    pub findings: Vec<Finding>,
}

/// What a caller asks of a scan beyond the roots and settings.
#[derive(Default)]
pub struct Options<'a> {
    /// Read the owner of every placed process (JSON and `ps` show them all), not only of those
    /// a finding may name.
    pub all_owners: bool,
    /// The agent's restart history: this scan is recorded in it, and the `restart-loop` rule
    /// runs over it.
    pub history: Option<&'a mut History>,
    /// `--deep`: read the mapped and open files of every process, not only of those the cheap
    /// pass could not place that could run an app's code (see [`crate::holds`]).
    pub deep: bool,
}

/// Scan against `roots`, reading them again (and once more) if a `current` link moved.
pub fn scan(
    roots: &mut Vec<DeployRoot>,
    source: &mut dyn ProcSource,
    settings: &Settings,
    options: Options,
) -> anyhow::Result<Scan> {
    let _deadline = crate::watchdog::arm();
    let mut retried = false;
    loop {
        // One releases directory, one root: a root inside another's releases has none.
        crate::layout::contain::exclusive(roots);
        let snap = read(source, args_worth_keeping(roots))?;
        let mut attr = place(roots, &snap, settings);
        crate::holds::look(roots, &snap, &mut attr, source, settings, options.deep);
        let owners = second_look(&snap, &mut attr, source, options.all_owners);
        match layout_moved(roots) {
            Some(reloaded) if !retried => {
                retried = true;
                *roots = reloaded;
                continue;
            }
            _ => {}
        }
        let history = options.history.map(|h| {
            h.observe(&snap, &attr);
            &*h
        });
        let findings = findings::evaluate(&Input {
            roots,
            snap: &snap,
            attr: &attr,
            owners: &owners,
            settings,
            history,
        });
        return Ok(Scan {
            snap,
            attr,
            owners,
            findings,
        });
    }
}

/// Stage 1: one pass over `/proc`, keeping the long command lines that `keep` names whole
/// (the others are cut to their first 4 KiB, see [`ArgsWorthKeeping`]).
pub fn read(source: &mut dyn ProcSource, keep: ArgsWorthKeeping) -> anyhow::Result<Snapshot> {
    source.keep_args_naming(keep);
    source.snapshot().map_err(|e| {
        let why = if crate::layout::contain::out_of_fds(&e) {
            " (out of file descriptors): raise the open files limit (`ulimit -n`, or LimitNOFILE= in the unit)"
        } else if e.kind() == std::io::ErrorKind::NotFound {
            " (is procfs mounted on /proc?)"
        } else {
            ""
        };
        anyhow::anyhow!("cannot read /proc: {e}{why}")
    })
}

/// The command lines a scan of `roots` must keep whole: those that name a root, its releases
/// or its `current` link in any spelling placement compares (or whose `cwd` or `exe` does).
pub fn args_worth_keeping(roots: &[DeployRoot]) -> ArgsWorthKeeping {
    ArgsWorthKeeping::naming(roots.iter().flat_map(|r| {
        std::iter::once(&r.root)
            .chain(&r.releases_spellings)
            .chain(&r.link_spellings)
    }))
}

/// Stage 2 (pure): place each process in at most one app and release, give a master's tree
/// its release (what nothing of its own places runs for its master), then apply each app's
/// `ignore` and `roles`.
pub fn place(roots: &[DeployRoot], snap: &Snapshot, settings: &Settings) -> Attribution {
    let mut attr = attribution::attribute(roots, snap);
    attribution::inherit_from_masters(&mut attr, snap, &owner::is_supervisor);
    attribution::apply_settings(&mut attr, snap, settings);
    attr
}

/// Stage 3: the reads that only the processes which can decide a finding pay for. Owners read
/// cgroup and environ before the re-check, so a pid reused during those reads is caught by it.
pub fn second_look(
    snap: &Snapshot,
    attr: &mut Attribution,
    source: &mut dyn ProcSource,
    all_owners: bool,
) -> Owners {
    let deciding = attribution::second_look_pids(attr, snap);
    let owners = owner::collect(snap, attr, &deciding, source, all_owners);
    attribution::verify(attr, snap, &deciding, source);
    attribution::confirm_zombies(attr, snap, source);
    attribution::watch_reaping(attr, snap, source);
    owners
}

/// The roots read again, when a `current` link moved (or was replaced) since they were read.
fn layout_moved(roots: &[DeployRoot]) -> Option<Vec<DeployRoot>> {
    // The common case costs an lstat per root, not a reading of every root again.
    if !roots.iter().any(DeployRoot::may_have_moved) {
        return None;
    }
    let mut reloaded: Vec<DeployRoot> = roots
        .iter()
        .map(|r| r.reload().unwrap_or_else(|_| r.clone()))
        .collect();
    // As the scan had them: a root that lost its releases to another is not "moved".
    crate::layout::contain::exclusive(&mut reloaded);
    let moved = reloaded
        .iter()
        .zip(roots)
        .any(|(a, b)| a.current != b.current || a.switch_time != b.switch_time);
    moved.then_some(reloaded)
}
