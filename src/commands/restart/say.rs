//! What `restart` says: one line per plan item, action and outcome on stderr (the journal, when
//! a unit runs it), a verdict line on stdout, or with `--format json` one document on stdout
//! (docs/JSON.md). Every name and output in them is escaped where it is made.

use super::plan::{Action, State};
use crate::escape::escape;
use crate::exit::ExitCode;
use crate::findings::Finding;
use crate::layout::DeployRoot;
use crate::report::words;
use serde::Serialize;
use std::io::Write;

const PREFIX: &str = "relwatch restart:";

pub struct Report {
    json: bool,
    dry_run: bool,
    /// The lines said besides items (refusals, findings), for the document.
    notes: Vec<String>,
}

impl Report {
    pub fn new(json: bool, dry_run: bool) -> Report {
        Report {
            json,
            dry_run,
            notes: Vec::new(),
        }
    }

    pub fn line(&mut self, line: &str) {
        say!("{PREFIX} {line}");
        self.notes.push(line.to_string());
    }

    /// One line per plan item: who, what it covers, the command, and whether it confirmed.
    pub fn plan(&mut self, roots: &[DeployRoot], actions: &[Action]) {
        let n = actions.len();
        if n == 0 {
            say!("{PREFIX} plan: nothing to restart");
        }
        for (i, a) in actions.iter().enumerate() {
            let kinds: Vec<&str> = a.kinds.iter().map(|k| k.as_str()).collect();
            say!(
                "{PREFIX} plan [{}/{n}] {} of app {}, {} ({}): {}: {}",
                i + 1,
                a.owner,
                escape(&roots[a.app].name),
                words::count(a.covered.len(), "process", "processes"),
                kinds.join(", "),
                command(a),
                state(&a.state)
            );
        }
    }

    pub fn action(&mut self, i: usize, n: usize, a: &Action) {
        say!(
            "{PREFIX} action [{}/{n}] {}: {}",
            i + 1,
            command(a),
            state(&a.state)
        );
    }

    pub fn outcomes(&mut self, actions: &[Action]) {
        let n = actions.len();
        for (i, a) in actions.iter().enumerate() {
            say!(
                "{PREFIX} outcome [{}/{n}] {}: {}",
                i + 1,
                a.owner,
                state(&a.state)
            );
        }
    }

    /// The verdict line on stdout, or the document; returns `code`.
    pub fn finish(
        &self,
        code: ExitCode,
        roots: &[DeployRoot],
        actions: &[Action],
        out: &mut dyn Write,
    ) -> anyhow::Result<ExitCode> {
        if self.json {
            let doc = Document {
                version: 1,
                status: code.name(),
                exit_code: code.code(),
                dry_run: self.dry_run,
                notes: &self.notes,
                actions: actions.iter().map(|a| ActionOut::of(a, roots)).collect(),
            };
            serde_json::to_writer_pretty(&mut *out, &doc)?;
            writeln!(out)?;
            return Ok(code);
        }
        let bad = actions.iter().filter(|a| a.state.is_bad()).count();
        let items = words::count(actions.len(), "item", "items");
        let what = if self.dry_run && bad > 0 {
            format!("dry run: {items} planned, {bad} of them would be skipped (see the plan above), nothing changed")
        } else if self.dry_run {
            format!("dry run: {items} planned, nothing changed")
        } else if actions.is_empty() {
            "nothing to restart".to_string()
        } else if actions.iter().all(|a| a.state.name() == "confirmed") {
            format!("not restarted: {items} planned")
        } else if bad == 0 {
            let n = actions.iter().map(|a| a.covered.len()).sum();
            format!(
                "{items} converged: {} replaced by processes on the current release",
                words::count(n, "process", "processes")
            )
        } else {
            format!("{bad} of {items} did not converge (see the outcomes above)")
        };
        writeln!(out, "{PREFIX} {}: {what}", code.label())?;
        Ok(code)
    }
}

/// "kind app: message; fix: remedy"
pub fn finding(f: &Finding, root: &DeployRoot) -> String {
    format!(
        "{} {}: {}; fix: {}",
        f.kind.as_str(),
        escape(&root.name),
        words::message(f, root),
        words::remedy(f, root)
    )
}

/// The action's command, or its steps joined by `&&` (each runs only if the one before it
/// succeeded), with whom they run as.
fn command(a: &Action) -> String {
    let Some(c) = a.steps.first() else {
        return "no single command".into();
    };
    let line: Vec<String> = a.steps.iter().map(words::command_line).collect();
    let line = line.join(" && ");
    match c.as_whom {
        crate::owner::remedy::AsWhom::Uid(uid) => format!("as uid {uid}: {line}"),
        crate::owner::remedy::AsWhom::Root => line,
    }
}

fn state(s: &State) -> String {
    match s.detail() {
        "" => s.name().to_string(),
        detail => format!("{} ({detail})", s.name()),
    }
}

#[derive(Serialize)]
struct Document<'a> {
    version: u32,
    status: &'static str,
    exit_code: u8,
    dry_run: bool,
    notes: &'a [String],
    actions: Vec<ActionOut<'a>>,
}

#[derive(Serialize)]
struct ActionOut<'a> {
    owner: &'a str,
    app: String,
    kinds: Vec<&'static str>,
    pids: Vec<i32>,
    command: Option<crate::report::json::CommandOut<'a>>,
    steps: Vec<crate::report::json::CommandOut<'a>>,
    state: &'static str,
    detail: &'a str,
}

impl<'a> ActionOut<'a> {
    fn of(a: &'a Action, roots: &[DeployRoot]) -> ActionOut<'a> {
        ActionOut {
            owner: &a.owner,
            app: escape(&roots[a.app].name),
            kinds: a.kinds.iter().map(|k| k.as_str()).collect(),
            pids: a.covered.iter().map(|c| c.pid).collect(),
            command: a.command().map(crate::report::json::CommandOut),
            steps: a
                .steps
                .iter()
                .map(crate::report::json::CommandOut)
                .collect(),
            state: a.state.name(),
            detail: a.state.detail(),
        }
    }
}
