//! `relwatch completions SHELL` and `relwatch man`: generated from the one clap definition in
//! [`crate::cli`], so they never disagree with `--help`. Both are built in memory and written
//! at once: clap_complete panics on a write error, and `relwatch man | head` must end cleanly.
//!
//! The man page is one page (`relwatch(1)`, the only one the packages ship): clap_mangen's
//! name, synopsis, description and options, then the commands, EXIT STATUS, ENVIRONMENT, FILES
//! and SEE ALSO written here, then a section per command. Help text after the options
//! (`after_help`: examples, exit codes) is laid out by [`after_help`]: examples and tables in
//! no-fill mode (`.nf`), so groff never joins two example lines into one.

use crate::cli::Cli;
use crate::exit::ExitCode;
use clap::CommandFactory;
use std::io::Write;

/// Print the completion script for `shell`.
pub fn completions(shell: clap_complete::Shell, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "relwatch", &mut buf);
    out.write_all(&buf)?;
    Ok(ExitCode::Ok)
}

/// Print the man page.
pub fn man(out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    out.write_all(&man_page()?)?;
    Ok(ExitCode::Ok)
}

/// What relwatch reads from its environment, for ENVIRONMENT.
const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "NO_COLOR",
        "When set and not empty, text output has no color, even on a terminal (as --color never).",
    ),
    ("TERM", "dumb: no color."),
    (
        "RELWATCH_NO_PROC_EVENTS",
        "When set and not 0, watch does not listen to the kernel's process events and infers \
         restarts from its scans.",
    ),
    (
        "JOURNAL_STREAM",
        "Set by systemd when stderr is the journal: watch prefixes its log lines with syslog \
         priorities.",
    ),
];

/// The files relwatch reads or writes, and those the packages install, for FILES.
const FILES: &[(&str, &str)] = &[
    (
        "/etc/relwatch/config.yaml",
        "The config file, read when it exists (or --config FILE). Must not be writable by group, \
         others or a non-root owner.",
    ),
    (
        "/var/lib/prometheus/node-exporter/relwatch.prom",
        "What relwatch.service (check --output) and relwatch-agent.service (watch --textfile) \
         write for node_exporter's textfile collector.",
    ),
    (
        "/usr/lib/systemd/system/relwatch.service, relwatch.timer",
        "A check every 5 minutes, enabled by the packages (relwatch.timer).",
    ),
    (
        "/usr/lib/systemd/system/relwatch-agent.service",
        "The agent (relwatch watch), the alternative to the timer; shipped disabled.",
    ),
    (
        "/usr/bin/relwatch-deploy",
        "switch ROOT RELEASE [TIMEOUT] and cleanup ROOT KEEP for a plain deploy script.",
    ),
    (
        "/usr/share/relwatch/sudoers",
        "A sudo rule that lets a deploy user run relwatch in-use and relwatch wait as root; \
         installed by hand into /etc/sudoers.d/.",
    ),
    (
        "/usr/share/doc/relwatch/",
        "README.md, the docs (JSON schema, monitoring, security, ...) and examples: a config \
         file, alert rules, a Nagios command, deploy recipes.",
    ),
];

/// Existing pages only: the packages ship no page per command.
const SEE_ALSO: &str = "systemctl(1), systemd.timer(5), systemd.exec(5), sudoers(5), proc(5)";

/// The man page: the main page, then a section per command with its synopsis, description,
/// options and examples (the commands' own headings become subsections).
fn man_page() -> std::io::Result<Vec<u8>> {
    let cmd = Cli::command();
    let top = clap_mangen::Man::new(cmd.clone());
    let mut page = Vec::new();
    top.render_title(&mut page)?;
    top.render_name_section(&mut page)?;
    top.render_synopsis_section(&mut page)?;
    top.render_description_section(&mut page)?;
    top.render_options_section(&mut page)?;
    let mut text = String::from_utf8_lossy(&page).into_owned();
    text.push_str(&commands_section(&cmd, ".SH COMMANDS\n"));
    text.push_str(&after_help(&cmd, ".SH"));
    text.push_str(&tagged(".SH ENVIRONMENT\n", ENVIRONMENT));
    text.push_str(&tagged(".SH FILES\n", FILES));
    text.push_str(&format!(".SH \"SEE ALSO\"\n{SEE_ALSO}\n"));
    for sub in visible(&cmd) {
        text.push_str(&command_section(sub)?);
    }
    Ok(text.into_bytes())
}

/// The subcommands a user may call (not `help`, not hidden ones).
fn visible(cmd: &clap::Command) -> impl Iterator<Item = &clap::Command> {
    cmd.get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
}

/// One command's section: `.SH "RELWATCH NAME"` with its synopsis, description and options as
/// subsections, its own commands (config), then its examples and exit codes.
fn command_section(sub: &clap::Command) -> std::io::Result<String> {
    let name = sub.get_name();
    let full = sub.clone().bin_name(format!("relwatch {name}"));
    let man = clap_mangen::Man::new(full.clone());
    let mut part = Vec::new();
    man.render_synopsis_section(&mut part)?;
    man.render_description_section(&mut part)?;
    man.render_options_section(&mut part)?;
    let mut text = format!(".SH \"RELWATCH {}\"\n", name.to_uppercase());
    text.push_str(&String::from_utf8_lossy(&part).replace(".SH ", ".SS "));
    if visible(sub).next().is_some() {
        text.push_str(&commands_section(&full, ".SS COMMANDS\n"));
    }
    text.push_str(&after_help(sub, ".SS"));
    Ok(text)
}

/// A list of `cmd`'s commands, each with its one-line help; the sections below (or `NAME
/// --help`) say more. No `relwatch-check(1)` references: those pages do not exist.
fn commands_section(cmd: &clap::Command, heading: &str) -> String {
    let prefix = cmd.get_bin_name().unwrap_or(cmd.get_name()).to_string();
    let mut text = heading.to_string();
    for sub in visible(cmd) {
        let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
        text.push_str(&format!(
            ".TP\n\\fB{}\\fR\n{}\n",
            roff(&format!("{prefix} {}", sub.get_name())),
            roff(&about)
        ));
    }
    text
}

/// `cmd`'s `after_help`, one heading per paragraph: "Examples:" becomes EXAMPLES, "Exit
/// codes:" EXIT STATUS. A label on a line of its own is followed by lines laid out as written
/// (no fill); a paragraph that goes on after its label is a sentence, filled. An exit-code
/// table (`  0  OK  what it means`) becomes one `.TP` per code.
fn after_help(cmd: &clap::Command, level: &str) -> String {
    let Some(help) = cmd.get_after_help().map(|h| h.to_string()) else {
        return String::new();
    };
    let mut text = String::new();
    for para in help.split("\n\n").filter(|p| !p.trim().is_empty()) {
        let (label, rest) = para.split_once(':').unwrap_or(("", para));
        let heading = match label.trim() {
            "Examples" | "Example" => "EXAMPLES",
            l if l.starts_with("Exit codes") => "EXIT STATUS",
            _ => "NOTES",
        };
        let (label, rest) = if heading == "NOTES" {
            ("", para)
        } else {
            (label, rest)
        };
        text.push_str(&format!("{level} \"{heading}\"\n"));
        let qualifier = label.split_once('(').map(|(_, q)| q.trim_end_matches(')'));
        if let Some(q) = qualifier {
            text.push_str(&format!("{}.\n", roff(&capitalize(q))));
        }
        text.push_str(&lines_or_sentence(rest, heading == "EXIT STATUS"));
    }
    text
}

/// The body of an `after_help` paragraph after its label: a sentence (filled), a table of exit
/// codes (`.TP` per code) or lines as written (`.nf`).
fn lines_or_sentence(rest: &str, exit_codes: bool) -> String {
    let Some(lines) = rest.strip_prefix('\n') else {
        return format!(".PP\n{}\n", roff(rest.trim()));
    };
    if exit_codes {
        if let Some(table) = exit_table(lines) {
            return table;
        }
    }
    let body: Vec<String> = lines
        .lines()
        .map(|l| roff(l.strip_prefix("  ").unwrap_or(l)))
        .collect();
    format!(".PP\n.nf\n.RS 4\n{}\n.RE\n.fi\n", body.join("\n"))
}

/// `  0  OK  what it means` lines (continuations indented further) as `.TP` entries; None
/// when a line fits neither.
fn exit_table(lines: &str) -> Option<String> {
    let mut entries: Vec<(String, String)> = Vec::new();
    for line in lines.lines() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let starts_code = trimmed.chars().next().is_some_and(|c| c.is_ascii_digit());
        match entries.last_mut() {
            Some((_, text)) if indent > 4 || !starts_code => {
                text.push(' ');
                text.push_str(trimmed.trim());
            }
            _ if starts_code => {
                let (code, text) = trimmed.split_once(char::is_whitespace)?;
                entries.push((code.to_string(), squeeze(text)));
            }
            _ => return None,
        }
    }
    Some(
        entries
            .iter()
            .map(|(code, text)| format!(".TP\n\\fB{code}\\fR\n{}\n", roff(text)))
            .collect(),
    )
}

/// `heading` and a `.TP` entry per (tag, text).
fn tagged(heading: &str, entries: &[(&str, &str)]) -> String {
    let mut text = heading.to_string();
    for (tag, what) in entries {
        text.push_str(&format!(".TP\n\\fB{}\\fR\n{}\n", roff(tag), roff(what)));
    }
    text
}

/// Runs of spaces (a table's alignment) as one.
fn squeeze(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// Text for a roff text line: backslashes and minus signs escaped, quotes as the typewriter
/// apostrophe, and a leading `.` or `'` made literal so it is never read as a request.
fn roff(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\e")
        .replace('-', "\\-")
        .replace('\'', "\\(aq");
    if escaped.starts_with('.') || escaped.starts_with("\\(aq") {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roff_escapes_what_groff_would_read_as_requests() {
        assert_eq!(
            roff(".hidden -x \\n 'a'"),
            "\\&.hidden \\-x \\en \\(aqa\\(aq"
        );
    }

    #[test]
    fn exit_codes_become_one_entry_each() {
        let table = exit_table("  0  OK   fine\n  2  BAD  one\n           two\n").unwrap();
        assert_eq!(
            table,
            ".TP\n\\fB0\\fR\nOK fine\n.TP\n\\fB2\\fR\nBAD one two\n"
        );
        assert!(exit_table("  not a table\n").is_none());
    }
}
