//! After the actions, wait like `relwatch wait` until every process they covered has been
//! replaced by one on the current release. Each round is one scan planned again: what is still
//! pending is what the same command would restart again (the old processes, still alive by pid
//! and start time, and new ones that came back on an old release, as the programs of a
//! supervisord that itself runs an old release do). Between scans only the pending processes
//! are polled, by pid and start time.

use super::plan::{self, Action, Covered, State};
use crate::findings::{Kind, Severity};
use crate::layout::DeployRoot;
use crate::scan::{scan, Options};
use crate::settings::Settings;
use crate::snapshot::ProcSource;
use std::time::Instant;

/// What the wait ended with.
#[derive(Debug, Default)]
pub struct Waited {
    /// The processes each acted command would still restart, by the action's index.
    pub pending: Vec<(usize, Vec<Covered>)>,
    /// Findings no restart fixes (a broken current link), as `kind app: message` lines.
    pub unfixable: Vec<String>,
}

/// Wait until nothing the acted commands would restart is left, or `deadline`.
pub fn wait(
    roots: &mut Vec<DeployRoot>,
    source: &mut dyn ProcSource,
    settings: &Settings,
    actions: &[Action],
    kinds: &[Kind],
    deadline: Instant,
    deep: bool,
) -> anyhow::Result<Waited> {
    let acted: Vec<usize> = (0..actions.len())
        .filter(|&i| matches!(actions[i].state, State::Done(_)))
        .collect();
    loop {
        let options = Options {
            deep,
            ..Options::default()
        };
        let result = scan(roots, source, settings, options)?;
        let unfixable = super::unfixable(&result.findings, roots);
        if !unfixable.is_empty() {
            return Ok(Waited {
                pending: Vec::new(),
                unfixable,
            });
        }
        let again = plan::plan(&result, roots, kinds);
        let pending: Vec<(usize, Vec<Covered>)> = acted
            .iter()
            .filter_map(|&i| {
                let acted = &actions[i];
                let left: Vec<Covered> = again
                    .iter()
                    .filter(|a| a.steps == acted.steps && a.via == acted.via)
                    .flat_map(|a| a.covered.iter().copied())
                    .collect();
                (!left.is_empty()).then_some((i, left))
            })
            .collect();
        if pending.is_empty() || Instant::now() >= deadline {
            return Ok(Waited {
                pending,
                unfixable: Vec::new(),
            });
        }
        let watched: Vec<Covered> = pending.iter().flat_map(|(_, c)| c.clone()).collect();
        poll(source, &watched, deadline);
    }
}

/// Until one of `watched` is gone or replaced, a full scan is due, or `deadline`.
fn poll(source: &mut dyn ProcSource, watched: &[Covered], deadline: Instant) {
    use crate::commands::wait::{FULL_SCAN, POLL};
    let next_full = Instant::now() + FULL_SCAN;
    loop {
        std::thread::sleep(POLL);
        let now = Instant::now();
        if now >= next_full || now >= deadline {
            return;
        }
        if watched
            .iter()
            .any(|c| source.stat(c.pid).ok().map(|s| s.start_ticks) != Some(c.start_ticks))
        {
            return;
        }
    }
}

/// Whether the critical findings include one no restart fixes.
pub fn is_unfixable(kind: Kind, severity: Severity) -> bool {
    kind == Kind::BrokenCurrent && severity == Severity::Critical
}
