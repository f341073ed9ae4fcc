//! The effective configuration as YAML, for `relwatch config check`.
//!
//! Every default is written out (grace as "5m", `singleton: false`, `min: 0`), settings that
//! have no value are shown as comments, and every string is double-quoted with YAML escapes
//! for control and invisible characters. The output is safe on a terminal and is itself a valid
//! configuration that parses back to the same settings.

use super::{is_unsafe_char, shown, Config};
use std::fmt::Write as _;
use std::time::Duration;

pub(super) fn render(config: &Config) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = write_config(&mut out, config);
    out
}

fn write_config(out: &mut String, config: &Config) -> std::fmt::Result {
    writeln!(out, "# relwatch: effective configuration")?;
    match &config.source {
        Some(path) => writeln!(out, "# from: {}", shown(path))?,
        None => writeln!(out, "# from: built-in defaults (no configuration file)")?,
    }
    writeln!(out, "grace: {}", duration(config.grace()))?;
    if config.discover.is_empty() {
        writeln!(out, "discover: []")?;
    } else {
        writeln!(out, "discover:")?;
        for dir in &config.discover {
            writeln!(out, "  - {}", quoted(&dir.to_string_lossy()))?;
        }
    }
    if config.apps.is_empty() {
        writeln!(out, "apps: []")?;
    }
    for (i, app) in config.apps.iter().enumerate() {
        if i == 0 {
            writeln!(out, "apps:")?;
        }
        writeln!(out, "  - name: {}", quoted(&app.name))?;
        writeln!(out, "    root: {}", quoted(&app.root.to_string_lossy()))?;
        match &app.releases {
            Some(releases) => {
                writeln!(out, "    releases: {}", quoted(&releases.to_string_lossy()))?
            }
            None => writeln!(out, "    # releases: not set")?,
        }
        writeln!(out, "    grace: {}", duration(config.grace_for(app)))?;
        writeln!(out, "    orphans: {}", app.orphans.as_str())?;
        match app.user {
            Some(uid) => writeln!(out, "    user: {uid}")?,
            None => writeln!(out, "    # user: not set")?,
        }
        if app.ignore.is_empty() {
            writeln!(out, "    ignore: []")?;
        } else {
            writeln!(out, "    ignore:")?;
            for re in &app.ignore {
                writeln!(out, "      - {}", quoted(re.as_str()))?;
            }
        }
        if app.roles.is_empty() {
            writeln!(out, "    roles: []")?;
        }
        for (j, role) in app.roles.iter().enumerate() {
            if j == 0 {
                writeln!(out, "    roles:")?;
            }
            writeln!(out, "      - name: {}", quoted(&role.name))?;
            writeln!(out, "        match: {}", quoted(role.pattern.as_str()))?;
            writeln!(out, "        singleton: {}", role.singleton)?;
            writeln!(out, "        min: {}", role.min.unwrap_or(0))?;
            match role.max {
                Some(max) => writeln!(out, "        max: {max}")?,
                None => writeln!(out, "        # max: not set (no upper limit)")?,
            }
        }
    }
    Ok(())
}

/// A duration the way the file spells it: "5m", "1h 30m", "0s".
fn duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// A YAML double-quoted scalar: `\` and `"` escaped, control and invisible characters as
/// `\uXXXX` / `\UXXXXXXXX` escapes (which YAML reads back as the same characters).
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if is_unsafe_char(c) => {
                let code = u32::from(c);
                if code <= 0xffff {
                    let _ = write!(out, "\\u{code:04X}");
                } else {
                    let _ = write!(out, "\\U{code:08X}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
