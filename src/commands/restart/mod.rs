//! `relwatch restart` (and `relwatch wait --restart`): fix what a scan found, through the
//! supervisor of each process, and prove it converged.
//!
//! ```text
//!  one scan ─► plan ─► confirm ─► consent ─► act ─► wait ─► outcomes
//!              (one     (the        (--yes,    (argv,   (like     (exit 0/1/2/3)
//!              action   supervisor  or ask     as whom, `wait`)
//!              per      says the    once on a  timeout)
//!              owner)   same pid)   terminal)
//! ```
//!
//! The plan comes from the findings' remedies (commands as data, [`plan`]); each action is
//! confirmed with the supervisor's own view ([`confirm`], and [`pm2`] for a PM2 app's three
//! steps and its daemon's `PM2_HOME`); programs run with argv arrays, as
//! the user the command names, with a deadline ([`exec`]); then [`converge`] waits. The plan,
//! each action and each outcome are one line each on stderr; `--format json` adds a document
//! on stdout (docs/JSON.md). Exit: 0 converged, 1 an action failed, timed out, was skipped or
//! ended what nothing starts again, 2 a finding no restart fixes (broken current), 3 could
//! not plan (blind, refused, declined).

mod confirm;
mod converge;
mod exec;
mod plan;
mod pm2;
mod say;

use crate::cli::{RestartArgs, RestartFormat, RestartKind, WaitArgs};
use crate::exit::ExitCode;
use crate::findings::{Finding, Kind};
use crate::layout::DeployRoot;
use crate::owner::remedy::Command;
use crate::scan::{scan, Options};
use crate::settings::Plan;
use crate::snapshot::ProcSource;
use plan::{Action, State, Via};
use std::io::Write;
use std::time::{Duration, Instant};

/// What a run is asked to do, from `restart` or from `wait --restart`.
struct Opts {
    kinds: Vec<Kind>,
    dry_run: bool,
    yes: bool,
    timeout: Duration,
    parallel: usize,
    json: bool,
    jobs: Option<u16>,
    /// `--deep`: every process's maps and open files are read (see `crate::holds`).
    deep: bool,
}

/// `relwatch restart`.
pub fn run(args: &RestartArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let opts = Opts {
        kinds: args.kinds.iter().filter_map(|k| kind_named(*k)).collect(),
        dry_run: args.dry_run,
        yes: args.yes,
        timeout: args.timeout,
        parallel: usize::from(args.parallel),
        json: args.format == RestartFormat::Json,
        jobs: args.scan.jobs,
        deep: args.scan.deep,
    };
    restart(&args.roots, &opts, out)
}

/// `relwatch wait --restart`: the deploy recipes' opt-in. Acts without asking (the flag is
/// the consent) on the processes of deleted and old releases, within the wait's timeout.
pub fn after_wait(args: &WaitArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let opts = Opts {
        kinds: [RestartKind::DeletedRelease, RestartKind::OldRelease]
            .into_iter()
            .filter_map(kind_named)
            .collect(),
        dry_run: false,
        yes: true,
        timeout: args.timeout,
        parallel: 1,
        json: false,
        jobs: args.scan.jobs,
        deep: args.scan.deep,
    };
    restart(&args.roots, &opts, out)
}

/// The finding kind a `--kinds` value names (the same name as in every output).
fn kind_named(k: RestartKind) -> Option<Kind> {
    use clap::ValueEnum;
    let value = k.to_possible_value()?;
    Kind::table()
        .iter()
        .find(|a| a.name == value.get_name())
        .map(|a| a.kind)
}

fn restart(
    roots_args: &crate::cli::RootsArgs,
    opts: &Opts,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let deadline = Instant::now() + opts.timeout;
    let Plan {
        mut roots,
        settings,
        ..
    } = super::plan(roots_args, Some(Duration::ZERO))?;
    let mut source = super::proc_reader(opts.jobs);
    let deep = Options {
        deep: opts.deep,
        ..Options::default()
    };
    let result = scan(&mut roots, &mut source, &settings, deep)?;
    let mut report = say::Report::new(opts.json, opts.dry_run);
    if let Some(code) = cannot_plan(&result.findings, &roots, &mut report) {
        return report.finish(code, &roots, &[], out);
    }
    let mut actions = plan::plan(&result, &roots, &opts.kinds);
    drop(result);
    for a in actions.iter_mut().filter(|a| a.state == State::Planned) {
        a.state = match confirm::confirm(a, &mut source) {
            Ok(said) => State::Confirmed(said),
            Err(why) => State::Skipped(why),
        };
    }
    report.plan(&roots, &actions);
    let confirmed = actions
        .iter()
        .any(|a| matches!(a.state, State::Confirmed(_)));
    if opts.dry_run || !confirmed {
        let code = verdict(&actions);
        return report.finish(code, &roots, &actions, out);
    }
    if let Err(why) = consent(opts.yes, actions.len()) {
        report.line(&why);
        return report.finish(ExitCode::Unknown, &roots, &actions, out);
    }
    if !opts.yes {
        // An answer may take minutes: ask the supervisors again before acting.
        for a in actions.iter_mut() {
            if matches!(a.state, State::Confirmed(_)) {
                if let Err(why) = confirm::confirm(a, &mut source) {
                    a.state = State::Skipped(format!("no longer confirmed: {why}"));
                }
            }
        }
    }
    act(
        &mut actions,
        opts.parallel,
        deadline,
        &mut source,
        &mut report,
    );
    let waited = converge::wait(
        &mut roots,
        &mut source,
        &settings,
        &actions,
        &opts.kinds,
        deadline,
        opts.deep,
    )?;
    outcomes(&mut actions, &waited, &mut source, &roots);
    report.outcomes(&actions);
    if !waited.unfixable.is_empty() {
        for l in &waited.unfixable {
            report.line(l);
        }
        return report.finish(ExitCode::Critical, &roots, &actions, out);
    }
    report.finish(verdict(&actions), &roots, &actions, out)
}

/// Blind (3) or a broken current link (2): nothing is planned.
fn cannot_plan(
    findings: &[Finding],
    roots: &[DeployRoot],
    report: &mut say::Report,
) -> Option<ExitCode> {
    let unfixable = unfixable(findings, roots);
    if !unfixable.is_empty() {
        report.line("CRITICAL, not restarting: current is broken, so a restart would start nothing on the current release");
        for l in &unfixable {
            report.line(l);
        }
        return Some(ExitCode::Critical);
    }
    let blind: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.kind == Kind::Unreadable)
        .collect();
    if blind.is_empty() {
        return None;
    }
    report.line("UNKNOWN, not restarting: processes that could run an app's code could not be inspected, so the plan could miss them");
    for f in blind {
        report.line(&say::finding(f, &roots[f.app]));
    }
    Some(ExitCode::Unknown)
}

/// The findings no restart fixes, one line each.
fn unfixable(findings: &[Finding], roots: &[DeployRoot]) -> Vec<String> {
    findings
        .iter()
        .filter(|f| converge::is_unfixable(f.kind, f.severity))
        .map(|f| say::finding(f, &roots[f.app]))
        .collect()
}

/// `--yes`, or a "y" on a terminal; else why not.
fn consent(yes: bool, n: usize) -> Result<(), String> {
    use std::io::IsTerminal;
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err("not restarting: no terminal to ask on; pass --yes to act on this plan (or --dry-run to only see it)".into());
    }
    eprint!(
        "relwatch restart: act on the {n} item{} above? [y/N] ",
        if n == 1 { "" } else { "s" }
    );
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|e| format!("not restarting: cannot read the answer: {e}"))?;
    match answer.trim() {
        "y" | "Y" | "yes" => Ok(()),
        _ => Err("not restarting: declined".into()),
    }
}

/// Run the confirmed actions, `parallel` at a time; each line said as it ends.
fn act(
    actions: &mut [Action],
    parallel: usize,
    deadline: Instant,
    source: &mut dyn ProcSource,
    report: &mut say::Report,
) {
    let n = actions.len();
    // Signals first, here (they need the reader); commands then on threads.
    for (i, a) in actions.iter_mut().enumerate() {
        if let (State::Confirmed(_), Some(Via::Signal { signal, pids })) = (&a.state, &a.via) {
            a.state = signal_each(pids, *signal, source);
            report.action(i, n, a);
        }
    }
    let todo: Vec<usize> = (0..n)
        .filter(|&i| matches!(actions[i].state, State::Confirmed(_)))
        .collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let (tx, rx) = std::sync::mpsc::channel();
    let work: Vec<(usize, Vec<Command>, Env)> = todo
        .iter()
        .map(|&i| {
            let env = actions[i].via.as_ref().map(pm2::env).unwrap_or_default();
            (i, actions[i].steps.clone(), env)
        })
        .collect();
    std::thread::scope(|s| {
        for _ in 0..parallel.min(work.len()) {
            let (tx, next, work) = (tx.clone(), &next, &work);
            s.spawn(move || loop {
                let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some((i, steps, env)) = work.get(k) else {
                    break;
                };
                let _ = tx.send((*i, run_steps(steps, env, deadline)));
            });
        }
        drop(tx);
        for (i, state) in rx {
            actions[i].state = state;
            report.action(i, n, &actions[i]);
        }
    });
}

/// Signal an unsupervised tree's `pids` in order, each through a pidfd once its start time
/// matches the scan's. The master (the first) changed: nothing is signalled. A worker
/// changed: it alone is skipped, and said.
fn signal_each(
    pids: &[plan::Covered],
    signal: rustix::process::Signal,
    source: &mut dyn ProcSource,
) -> State {
    let Some((master, workers)) = pids.split_first() else {
        return State::Failed("no pid to signal".into());
    };
    if let Err(why) = exec::signal(master.pid, master.start_ticks, signal, source) {
        return State::Failed(why);
    }
    let mut sent = vec![master.pid.to_string()];
    let mut skipped = Vec::new();
    for w in workers {
        match exec::signal(w.pid, w.start_ticks, signal, source) {
            Ok(()) => sent.push(w.pid.to_string()),
            Err(why) => skipped.push(why),
        }
    }
    let mut said = if sent.len() == 1 {
        "signal sent".to_string()
    } else {
        format!("signal sent to pids {}", sent.join(", "))
    };
    for why in skipped {
        said.push_str(&format!("; not signalled: {why}"));
    }
    State::Done(said)
}

/// What a command's clean environment gets besides (a PM2 daemon's `PM2_HOME`).
type Env = Vec<(&'static str, std::ffi::OsString)>;

/// Run an action's steps in order until the deadline, stopping at the first that fails. One
/// step's state is its output; several say which step said what.
fn run_steps(steps: &[Command], env: &Env, deadline: Instant) -> State {
    if steps.is_empty() {
        return State::Skipped("no command".into());
    }
    let env: Vec<(&str, &std::ffi::OsStr)> = env.iter().map(|(k, v)| (*k, v.as_os_str())).collect();
    let several = steps.len() > 1;
    let mut said = Vec::new();
    for c in steps {
        let state = run_one(c, deadline, &env);
        let detail = match (several, state.detail()) {
            (false, d) => d.to_string(),
            (true, d) => format!("{}: {d}", crate::report::words::command_line(c)),
        };
        said.push(detail);
        if !matches!(state, State::Done(_)) {
            let all = said.join("; ");
            return match state {
                State::TimedOut(_) => State::TimedOut(all),
                _ => State::Failed(all),
            };
        }
    }
    State::Done(said.join("; "))
}

/// Run one command until the deadline.
fn run_one(c: &Command, deadline: Instant, env: &[(&str, &std::ffi::OsStr)]) -> State {
    match exec::run(c, deadline, env) {
        Err(e) => State::Failed(format!("cannot run {}: {e}", c.program)),
        Ok(ran) => {
            let output =
                crate::escape::escape_bytes(String::from_utf8_lossy(&ran.output).trim().as_bytes());
            if ran.ok() {
                State::Done(output)
            } else if ran.status.is_none() {
                State::TimedOut(output)
            } else {
                State::Failed(format!("{}: {output}", ran.how()))
            }
        }
    }
}

/// What became of each action that ran, from the wait.
fn outcomes(
    actions: &mut [Action],
    waited: &converge::Waited,
    source: &mut dyn ProcSource,
    roots: &[DeployRoot],
) {
    for (i, a) in actions.iter_mut().enumerate() {
        if !matches!(a.state, State::Done(_)) {
            continue;
        }
        if let Some((_, left)) = waited.pending.iter().find(|(k, _)| *k == i) {
            let pids: Vec<String> = left.iter().map(|c| c.pid.to_string()).collect();
            a.state = State::NotReplaced(format!(
                "still on an old or deleted release when the time was up: pid {}",
                pids.join(", ")
            ));
            continue;
        }
        // A zombie has ended: only its parent has not reaped it yet.
        let alive = source
            .stat(a.top.pid)
            .is_ok_and(|s| s.start_ticks == a.top.start_ticks && s.state != b'Z');
        a.state = match (&a.via, alive) {
            (Some(Via::Signal { pids, .. }), false) => State::Ended(format!(
                "{} ended, and nothing starts it again: start it from {}",
                ended(pids, source),
                crate::escape::shell_word(&roots[a.app].link)
            )),
            _ => State::Replaced(format!(
                "{} replaced on the current release",
                crate::report::words::count(a.covered.len(), "process", "processes")
            )),
        };
    }
}

/// "pid 12", "pids 12, 13, 14": the signalled processes no longer alive as the scan saw them.
fn ended(pids: &[plan::Covered], source: &mut dyn ProcSource) -> String {
    let gone: Vec<String> = pids
        .iter()
        .filter(|p| {
            !source
                .stat(p.pid)
                .is_ok_and(|s| s.start_ticks == p.start_ticks && s.state != b'Z')
        })
        .map(|p| p.pid.to_string())
        .collect();
    let noun = crate::report::words::plural(gone.len(), "pid", "pids");
    format!("{noun} {}", gone.join(", "))
}

/// 0 when every action converged (for a dry run: when every one was confirmed); 1 when any
/// did not (a dry run's skipped item would be skipped by the real run too).
fn verdict(actions: &[Action]) -> ExitCode {
    if !actions.iter().any(|a| a.state.is_bad()) {
        ExitCode::Ok
    } else {
        ExitCode::Warning
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Steps run in order and stop at the first that fails; the state names each step's output.
    #[test]
    fn steps_stop_at_the_first_failure() {
        use crate::owner::remedy::Arg;
        let echo = |word| Command::new("echo", [Arg::Word(word)]);
        let deadline = Instant::now() + Duration::from_secs(30);
        let steps = [echo("one"), Command::new("false", []), echo("three")];
        let state = run_steps(&steps, &Vec::new(), deadline);
        assert_eq!(
            state,
            State::Failed("echo one: one; false: exit 1: ".into())
        );
        let state = run_steps(&[echo("one"), echo("two")], &Vec::new(), deadline);
        assert_eq!(state, State::Done("echo one: one; echo two: two".into()));
        let one = run_steps(&[echo("one")], &Vec::new(), deadline);
        assert_eq!(one, State::Done("one".into()));
    }

    /// Real `sleep`s, ended by pid (SIGKILL) and reaped even when the test fails.
    struct Sleeps(Vec<std::process::Child>);

    impl Drop for Sleeps {
        fn drop(&mut self) {
            for c in &mut self.0 {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }

    /// The signal that ended each sleep, within 2 s (`None`: still running; the guard ends it).
    fn signals(sleeps: &mut Sleeps) -> Vec<Option<i32>> {
        use std::os::unix::process::ExitStatusExt;
        sleeps
            .0
            .iter_mut()
            .map(|c| {
                let deadline = Instant::now() + Duration::from_secs(2);
                loop {
                    match c.try_wait() {
                        Ok(Some(s)) => return s.signal(),
                        _ if Instant::now() >= deadline => return None,
                        _ => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
            .collect()
    }

    /// The scan saw `sleeps`, but with `changed` another process (another start time) under
    /// the same pid: a pid reused since the scan.
    fn seen(sleeps: &Sleeps, changed: usize) -> Vec<plan::Covered> {
        let mut proc = crate::commands::LinuxProc::default();
        sleeps
            .0
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let pid = c.id() as i32;
                let ticks = proc.stat(pid).map(|s| s.start_ticks).unwrap_or(0);
                plan::Covered {
                    pid,
                    start_ticks: if i == changed { ticks + 1 } else { ticks },
                }
            })
            .collect()
    }

    fn sleeps() -> Sleeps {
        Sleeps(
            (0..3)
                .map(|_| {
                    std::process::Command::new("sleep")
                        .arg("1000")
                        .spawn()
                        .expect("sleep")
                })
                .collect(),
        )
    }

    /// A worker whose pid now names another process is not signalled, and is said; the
    /// master and the other worker are.
    #[test]
    fn a_worker_replaced_since_the_scan_is_not_signalled() {
        let mut tree = sleeps();
        let seen = seen(&tree, 1);
        let mut proc = crate::commands::LinuxProc::default();
        let state = signal_each(&seen, rustix::process::Signal::TERM, &mut proc);
        let said = format!(
            "signal sent to pids {}, {}; not signalled: pid {} is no longer the process the scan saw",
            seen[0].pid, seen[2].pid, seen[1].pid
        );
        assert_eq!(state, State::Done(said));
        assert_eq!(signals(&mut tree), [Some(15), None, Some(15)]);
    }

    /// A master whose pid now names another process: nothing of its tree is signalled.
    #[test]
    fn a_master_replaced_since_the_scan_skips_the_whole_tree() {
        let mut tree = sleeps();
        let seen = seen(&tree, 0);
        let mut proc = crate::commands::LinuxProc::default();
        let state = signal_each(&seen, rustix::process::Signal::TERM, &mut proc);
        assert!(matches!(state, State::Failed(_)), "{state:?}");
        assert_eq!(signals(&mut tree), [None, None, None]);
    }

    #[test]
    fn every_kinds_value_names_a_finding_kind() {
        use clap::ValueEnum;
        for k in RestartKind::value_variants() {
            let kind = kind_named(*k).expect("a kind of that name");
            let value = k.to_possible_value().expect("a value");
            assert_eq!(kind.as_str(), value.get_name());
        }
    }
}
