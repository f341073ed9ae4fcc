//! `relwatch completions SHELL` and `relwatch man`: generated from the one clap definition in
//! [`crate::cli`], so they never disagree with `--help`. Both are built in memory and written
//! at once: clap_complete panics on a write error, and `relwatch man | head` must end cleanly.

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

/// The man page: the main page, then a section per command with its synopsis, description,
/// options and examples (the commands' own headings become subsections).
fn man_page() -> std::io::Result<Vec<u8>> {
    let cmd = Cli::command();
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut page)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = sub.get_name();
        let man = clap_mangen::Man::new(sub.clone().bin_name(format!("relwatch {name}")));
        let mut part = Vec::new();
        man.render_synopsis_section(&mut part)?;
        man.render_description_section(&mut part)?;
        man.render_options_section(&mut part)?;
        man.render_extra_section(&mut part)?;
        let part = String::from_utf8_lossy(&part).replace(".SH ", ".SS ");
        page.extend_from_slice(format!(".SH \"RELWATCH {}\"\n", name.to_uppercase()).as_bytes());
        page.extend_from_slice(part.as_bytes());
    }
    Ok(page)
}
