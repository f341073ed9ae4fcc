//! `relwatch in-use PATH...`: is any process still using these release directories? What a
//! cleanup step calls before `rm -rf`.
//!
//! It looks deeper than `check`: besides cwd, exe and command-line paths it reads every open
//! file descriptor and every memory-mapped file. Those reads are paid only by the processes
//! that could hold one: user-space processes in our mount namespace (kernel threads, zombies
//! and containers' processes, whose paths are not ours, are skipped and counted).
//!
//! Exit codes: 0 nobody uses them, 1 some process does, 3 a bad argument.

use super::UsageError;
use crate::cli::{InUseArgs, InUseFormat as Format};
use crate::escape::escape;
use crate::exit::ExitCode;
use crate::report::json::Bytes;
use crate::snapshot::linux::LinuxProc;
use crate::snapshot::{Link, ProcSource, Snapshot};
use serde::Serialize;
use std::ffi::OsString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

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

struct Target {
    given: PathBuf,
    canonical: PathBuf,
    dev: u64,
    ino: u64,
}

struct Hit {
    target: usize,
    pid: i32,
    how: Use,
    path: OsString,
}

/// `path` is `prefix` or lies below it. The kernel's ` (deleted)` suffix on the last component
/// does not matter for this test.
fn under(path: &[u8], prefix: &[u8]) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(b"/") || rest == Link::DELETED)
}

fn link_hit(link: &Link, t: &Target) -> bool {
    link.identity() == Some((t.dev, t.ino))
        || under(link.target.as_bytes(), t.canonical.as_os_str().as_bytes())
}

pub fn run(args: &InUseArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let mut targets = Vec::new();
    for given in &args.paths {
        let canonical = std::fs::canonicalize(given).map_err(|e| {
            UsageError(format!(
                "{}: {e} (give the release directories a cleanup is about to delete)",
                escape(given)
            ))
        })?;
        let meta = std::fs::metadata(&canonical)
            .map_err(|e| UsageError(format!("{}: {e}", escape(given))))?;
        targets.push(Target {
            given: given.clone(),
            canonical,
            dev: meta.dev(),
            ino: meta.ino(),
        });
    }
    let mut source = LinuxProc::default();
    let snap = source
        .snapshot()
        .map_err(|e| anyhow::anyhow!("cannot list /proc: {e} (is procfs mounted?)"))?;
    let (hits, skipped) = find_uses(&snap, &targets, &mut source);
    let pids: Vec<i32> = {
        let mut p: Vec<i32> = hits.iter().map(|h| h.pid).collect();
        p.sort_unstable();
        p.dedup();
        p
    };
    let owners = crate::owner::collect_pids(&snap, &pids, &mut source);
    let owner_of = |pid: i32| {
        owners
            .get(pid)
            .map(|o| o.label())
            .unwrap_or_else(|| "owner unknown".into())
    };
    let code = if hits.is_empty() {
        ExitCode::Ok
    } else {
        ExitCode::Warning
    };
    match args.format {
        Format::Json => {
            #[derive(Serialize)]
            struct UseOut<'a> {
                how: Use,
                path: Bytes<'a>,
            }
            #[derive(Serialize)]
            struct ProcOut<'a> {
                pid: i32,
                name: String,
                owner: String,
                uses: Vec<UseOut<'a>>,
            }
            #[derive(Serialize)]
            struct PathOut<'a> {
                path: Bytes<'a>,
                in_use: bool,
                processes: Vec<ProcOut<'a>>,
            }
            #[derive(Serialize)]
            struct Doc<'a> {
                version: u32,
                in_use: bool,
                exit_code: u8,
                other_mount_ns: usize,
                paths: Vec<PathOut<'a>>,
            }
            let paths = targets
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    let mut procs: Vec<ProcOut> = Vec::new();
                    for h in hits.iter().filter(|h| h.target == i) {
                        let u = UseOut {
                            how: h.how,
                            path: Bytes::os(&h.path),
                        };
                        match procs.iter_mut().find(|p| p.pid == h.pid) {
                            Some(p) => p.uses.push(u),
                            None => procs.push(ProcOut {
                                pid: h.pid,
                                name: snap
                                    .get(h.pid)
                                    .map(|p| p.name().to_string_lossy().into_owned())
                                    .unwrap_or_default(),
                                owner: owner_of(h.pid),
                                uses: vec![u],
                            }),
                        }
                    }
                    PathOut {
                        path: Bytes::os(t.given.as_os_str()),
                        in_use: !procs.is_empty(),
                        processes: procs,
                    }
                })
                .collect();
            let doc = Doc {
                version: crate::report::json::VERSION,
                in_use: !hits.is_empty(),
                exit_code: code.code(),
                other_mount_ns: skipped,
                paths,
            };
            writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
        }
        Format::Text => {
            for (i, t) in targets.iter().enumerate() {
                let mine: Vec<&Hit> = hits.iter().filter(|h| h.target == i).collect();
                if mine.is_empty() {
                    writeln!(out, "{}: not in use", escape(&t.given))?;
                    continue;
                }
                let mut pids: Vec<i32> = mine.iter().map(|h| h.pid).collect();
                pids.dedup();
                writeln!(
                    out,
                    "{}: in use by {} process{}",
                    escape(&t.given),
                    pids.len(),
                    if pids.len() == 1 { "" } else { "es" }
                )?;
                for pid in pids {
                    let name = snap.get(pid).map(|p| escape(p.name())).unwrap_or_default();
                    writeln!(out, "  pid {pid:<7} {name:<16} {}", owner_of(pid))?;
                    for h in mine.iter().filter(|h| h.pid == pid) {
                        writeln!(out, "    {:<11} {}", h.how.as_str(), escape(&h.path))?;
                    }
                }
            }
            if skipped > 0 {
                writeln!(
                    out,
                    "note: {skipped} process{} in other mount namespaces (containers) not inspected",
                    if skipped == 1 { "" } else { "es" }
                )?;
            }
        }
    }
    Ok(code)
}

/// Every use of every target, in pid order, and how many processes were skipped for living in
/// another mount namespace.
fn find_uses(
    snap: &Snapshot,
    targets: &[Target],
    source: &mut dyn ProcSource,
) -> (Vec<Hit>, usize) {
    let mut hits = Vec::new();
    let mut skipped = 0;
    for p in &snap.processes {
        if p.pid == snap.own_pid || p.kernel_thread || p.is_zombie() {
            continue;
        }
        // Unreadable counts as ours, as before; issue 17 acts on the difference.
        if source.foreign_mount_ns(p.pid).unwrap_or(false) {
            skipped += 1;
            continue;
        }
        let before = hits.len();
        for (i, t) in targets.iter().enumerate() {
            let prefix = t.canonical.as_os_str().as_bytes();
            let mut hit = |how, path: OsString| {
                hits.push(Hit {
                    target: i,
                    pid: p.pid,
                    how,
                    path,
                })
            };
            if let Ok(cwd) = &p.cwd {
                if link_hit(cwd, t) {
                    hit(Use::Cwd, cwd.path().to_os_string());
                }
            }
            if let Ok(exe) = &p.exe {
                if link_hit(exe, t) {
                    hit(Use::Exe, exe.path().to_os_string());
                }
            }
            for arg in p.cmdline.iter() {
                if under(arg.as_bytes(), prefix) {
                    hit(Use::Script, arg.to_os_string());
                }
            }
        }
        // Unreadable reads as none, as before; issue 17 acts on the difference.
        let fds = source.open_files(p.pid).unwrap_or_default();
        let maps = source.mapped_files(p.pid).unwrap_or_default();
        for (i, t) in targets.iter().enumerate() {
            let prefix = t.canonical.as_os_str().as_bytes();
            for f in fds.iter().filter(|f| under(f.as_bytes(), prefix)) {
                hits.push(Hit {
                    target: i,
                    pid: p.pid,
                    how: Use::OpenFile,
                    path: f.clone(),
                });
            }
            for m in maps.iter().filter(|m| under(m.as_bytes(), prefix)) {
                if !hits[before..]
                    .iter()
                    .any(|h| h.target == i && h.path == *m && h.how == Use::MappedFile)
                {
                    hits.push(Hit {
                        target: i,
                        pid: p.pid,
                        how: Use::MappedFile,
                        path: m.clone(),
                    });
                }
            }
        }
        // A use seen only once the process was gone (pid reused) is dropped.
        // Unreadable counts as gone, as before; issue 17 acts on the difference.
        if hits.len() > before
            && source.stat(p.pid).ok().map(|s| s.start_ticks) != Some(p.start_ticks)
        {
            hits.truncate(before);
        }
    }
    (hits, skipped)
}
