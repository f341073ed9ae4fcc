//! The `in-use` answer, for people (one block per path) and for scripts (one JSON document,
//! schema in docs/JSON.md). It only formats: which processes hold a path, and how, was found by
//! `relwatch in-use` itself. Names and paths arrive raw and are escaped here, never before.

use super::json::Bytes;
use crate::escape::escape;
use crate::exit::ExitCode;
use serde::Serialize;
use std::ffi::OsStr;
use std::io::Write;
use std::path::Path;

/// How a process uses a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Use {
    Cwd,
    Exe,
    Script,
    OpenFile,
    MappedFile,
}

impl Use {
    fn as_str(self) -> &'static str {
        match self {
            Use::Cwd => "cwd",
            Use::Exe => "exe",
            Use::Script => "script",
            Use::OpenFile => "open file",
            Use::MappedFile => "mapped file",
        }
    }
}

/// The whole answer: every path asked about, in the order given.
pub struct InUse<'a> {
    pub paths: Vec<PathUse<'a>>,
    /// Processes not inspected because they live in another mount namespace.
    pub other_mount_ns: usize,
    pub exit: ExitCode,
}

/// One path asked about, as the user spelled it, and the processes that use it.
pub struct PathUse<'a> {
    pub given: &'a Path,
    pub holders: Vec<Holder<'a>>,
}

/// A process that uses a path, with each use in the order found.
pub struct Holder<'a> {
    pub pid: i32,
    pub name: Option<&'a OsStr>,
    /// The owner's label ("owner unknown" when none was found).
    pub owner: String,
    pub uses: Vec<(Use, &'a OsStr)>,
}

impl InUse<'_> {
    fn in_use(&self) -> bool {
        self.paths.iter().any(|p| !p.holders.is_empty())
    }
}

/// One block per path, then a note when processes in containers were not inspected.
pub fn write_text(doc: &InUse, out: &mut dyn Write) -> std::io::Result<()> {
    for p in &doc.paths {
        if p.holders.is_empty() {
            writeln!(out, "{}: not in use", escape(p.given))?;
            continue;
        }
        let n = p.holders.len();
        writeln!(
            out,
            "{}: in use by {n} process{}",
            escape(p.given),
            if n == 1 { "" } else { "es" }
        )?;
        for h in &p.holders {
            let name = h.name.map(escape).unwrap_or_default();
            writeln!(out, "  pid {:<7} {name:<16} {}", h.pid, h.owner)?;
            for (how, path) in &h.uses {
                writeln!(out, "    {:<11} {}", how.as_str(), escape(path))?;
            }
        }
    }
    let skipped = doc.other_mount_ns;
    if skipped > 0 {
        writeln!(
            out,
            "note: {skipped} process{} in other mount namespaces (containers) not inspected",
            if skipped == 1 { "" } else { "es" }
        )?;
    }
    Ok(())
}

/// The JSON document, pretty-printed, with a final newline.
pub fn write_json(doc: &InUse, out: &mut dyn Write) -> anyhow::Result<()> {
    let wire = Doc {
        version: super::json::VERSION,
        in_use: doc.in_use(),
        exit_code: doc.exit.code(),
        other_mount_ns: doc.other_mount_ns,
        paths: doc.paths.iter().map(PathOut::of).collect(),
    };
    writeln!(out, "{}", serde_json::to_string_pretty(&wire)?)?;
    Ok(())
}

#[derive(Serialize)]
struct Doc<'a> {
    version: u32,
    in_use: bool,
    exit_code: u8,
    other_mount_ns: usize,
    paths: Vec<PathOut<'a>>,
}

#[derive(Serialize)]
struct PathOut<'a> {
    path: Bytes<'a>,
    in_use: bool,
    processes: Vec<ProcOut<'a>>,
}

#[derive(Serialize)]
struct ProcOut<'a> {
    pid: i32,
    name: String,
    owner: &'a str,
    uses: Vec<UseOut<'a>>,
}

#[derive(Serialize)]
struct UseOut<'a> {
    how: Use,
    path: Bytes<'a>,
}

impl<'a> PathOut<'a> {
    fn of(p: &'a PathUse) -> Self {
        let processes = p.holders.iter().map(|h| ProcOut {
            pid: h.pid,
            name: h
                .name
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            owner: &h.owner,
            uses: h
                .uses
                .iter()
                .map(|(how, path)| UseOut {
                    how: *how,
                    path: Bytes::os(path),
                })
                .collect(),
        });
        PathOut {
            path: Bytes::os(p.given.as_os_str()),
            in_use: !p.holders.is_empty(),
            processes: processes.collect(),
        }
    }
}
