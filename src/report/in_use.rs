//! The `in-use` answer, for people (one block per path) and for scripts (one JSON document,
//! schema in docs/JSON.md). It only formats: which processes hold a path, and how, and which
//! could not be inspected, was found by `relwatch in-use` itself. Names and paths arrive raw
//! and are escaped here, never before. A path nobody was seen using is "not in use" only when
//! every process could be seen; else it is "cannot tell", with why and the fix.

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
    /// An interpreter's module path (`PYTHONPATH`, ...) names the path: shown as the path
    /// asked about, never as the value.
    InterpreterPath,
}

impl Use {
    fn as_str(self) -> &'static str {
        match self {
            Use::Cwd => "cwd",
            Use::Exe => "exe",
            Use::Script => "script",
            Use::OpenFile => "open file",
            Use::MappedFile => "mapped file",
            Use::InterpreterPath => "module path",
        }
    }
}

/// The whole answer: every path asked about, in the order given.
pub struct InUse<'a> {
    pub paths: Vec<PathUse<'a>>,
    /// Processes not inspected because they live in another mount namespace.
    pub other_mount_ns: usize,
    /// What could not be seen.
    pub blind: Blind,
    pub exit: ExitCode,
}

/// The processes that could hold a path but could not be inspected.
#[derive(Debug, Default)]
pub struct Blind {
    /// How many: their cwd, exe, open files, memory maps or mount namespace could not be read.
    pub processes: usize,
    /// As whom they run (ascending).
    pub uids: Vec<u32>,
    /// `/proc` hides other users' processes from us (`hidepid=`): they cannot even be counted.
    pub hidden_pids: bool,
    /// PID 1 could not be inspected although relwatch holds `CAP_SYS_PTRACE` (a sandbox's init
    /// agent): said, but not counted in `processes`, and no reason to answer "cannot tell".
    pub shielded: bool,
}

impl Blind {
    /// Something that could hold a path was not seen.
    pub fn is_blind(&self) -> bool {
        self.processes > 0 || self.hidden_pids
    }
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

    /// Nothing was seen using these paths, and not everything could be seen.
    fn cannot_tell(&self) -> bool {
        self.exit == ExitCode::Unknown
    }
}

/// One block per path, then why it cannot tell (when it cannot), then a note when processes in
/// containers were not inspected.
pub fn write_text(doc: &InUse, out: &mut dyn Write) -> std::io::Result<()> {
    for p in &doc.paths {
        if p.holders.is_empty() && doc.blind.is_blind() {
            writeln!(out, "{}: cannot tell", escape(p.given))?;
            continue;
        }
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
    if doc.blind.is_blind() {
        writeln!(out, "{}", blindness(&doc.blind))?;
        writeln!(out, "fix: {FIX}")?;
    }
    if doc.blind.shielded {
        writeln!(out, "note: {SHIELDED}")?;
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

/// How to see every process: what `cannot tell` asks for.
const FIX: &str = "run it as root (sudo relwatch in-use PATH...); a deploy user can be allowed exactly this, and `relwatch wait`, by the sudo rule in /usr/share/relwatch/sudoers (see docs/SECURITY.md); or grant relwatch CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH";

/// What a shielded PID 1 is (see [`Blind::shielded`]).
const SHIELDED: &str = "pid 1 could not be inspected even with CAP_SYS_PTRACE: the host's policy shields its init from every process, and no privilege would show it";

/// Why it cannot tell, in one sentence.
fn blindness(blind: &Blind) -> String {
    let mut s = String::from("cannot tell: ");
    if blind.hidden_pids {
        s.push_str("/proc is mounted with hidepid= (or subset=pid), so other users' processes are not even listed");
        if blind.processes > 0 {
            s.push_str("; and ");
        }
    }
    if blind.processes > 0 {
        let n = blind.processes;
        s.push_str(&format!(
            "{n} process{} could not be inspected (their cwd, exe, open files, memory maps or mount namespace could not be read: permission denied), running as {}",
            super::words::plural(n, "", "es"),
            super::words::whose(&blind.uids)
        ));
    }
    s.push_str("; any of them may hold these paths");
    s
}

/// The JSON document, pretty-printed, with a final newline.
pub fn write_json(doc: &InUse, out: &mut dyn Write) -> anyhow::Result<()> {
    let cannot_tell = doc.cannot_tell();
    let wire = Doc {
        version: super::json::VERSION,
        in_use: doc.in_use(),
        cannot_tell,
        exit_code: doc.exit.code(),
        other_mount_ns: doc.other_mount_ns,
        not_inspected: NotInspected {
            processes: doc.blind.processes,
            uids: &doc.blind.uids,
            hidden_pids: doc.blind.hidden_pids,
            shielded_init: doc.blind.shielded.then_some(SHIELDED),
            why: doc.blind.is_blind().then(|| blindness(&doc.blind)),
            fix: doc.blind.is_blind().then_some(FIX),
        },
        paths: doc
            .paths
            .iter()
            .map(|p| PathOut::of(p, doc.blind.is_blind()))
            .collect(),
    };
    writeln!(out, "{}", serde_json::to_string_pretty(&wire)?)?;
    Ok(())
}

#[derive(Serialize)]
struct Doc<'a> {
    version: u32,
    /// Some process was seen using a path.
    in_use: bool,
    /// No process was seen using a path, and not every process could be seen.
    cannot_tell: bool,
    exit_code: u8,
    other_mount_ns: usize,
    not_inspected: NotInspected<'a>,
    paths: Vec<PathOut<'a>>,
}

#[derive(Serialize)]
struct NotInspected<'a> {
    processes: usize,
    uids: &'a [u32],
    hidden_pids: bool,
    shielded_init: Option<&'static str>,
    why: Option<String>,
    fix: Option<&'static str>,
}

#[derive(Serialize)]
struct PathOut<'a> {
    path: Bytes<'a>,
    in_use: bool,
    cannot_tell: bool,
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
    /// `blind`: not every process could be seen.
    fn of(p: &'a PathUse, blind: bool) -> Self {
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
            cannot_tell: blind && p.holders.is_empty(),
            processes: processes.collect(),
        }
    }
}
