//! The JSON renderer. The schema is documented in `docs/JSON.md` and tested by deserializing
//! with `deny_unknown_fields` in `tests/`. Paths and arguments are bytes: valid UTF-8 is a
//! JSON string, anything else is `{"bytes": "<base64>"}`, so nothing is lost or mangled.

use super::{words, Report};
use crate::attribution::Evidence;
use crate::owner::remedy::{AsWhom, Command};
use base64::Engine;
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::Serialize;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

pub const VERSION: u32 = 1;

/// A byte string, serialized losslessly.
pub struct Bytes<'a>(pub &'a [u8]);

impl<'a> Bytes<'a> {
    pub fn os(s: &'a OsStr) -> Self {
        Bytes(s.as_bytes())
    }
}

impl Serialize for Bytes<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(self.0) {
            Ok(text) => s.serialize_str(text),
            Err(_) => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry(
                    "bytes",
                    &base64::engine::general_purpose::STANDARD.encode(self.0),
                )?;
                m.end()
            }
        }
    }
}

fn opt(s: &Option<std::sync::Arc<std::ffi::OsStr>>) -> Option<Bytes<'_>> {
    s.as_deref().map(Bytes::os)
}

#[derive(Serialize)]
struct Doc<'a> {
    version: u32,
    status: &'static str,
    exit_code: u8,
    summary: String,
    scanned_at: f64,
    scan: Scan,
    findings: Findings<'a>,
    apps: Vec<AppOut<'a>>,
    processes: Processes<'a>,
}

#[derive(Serialize)]
struct Scan {
    processes: usize,
    vanished: usize,
    unreadable: usize,
    other_mount_ns: usize,
    kernel_threads: usize,
}

#[derive(Serialize)]
struct EvidenceOut<'a> {
    pid: i32,
    how: &'static str,
    path: Option<Bytes<'a>>,
    deleted: bool,
    detail: std::borrow::Cow<'a, str>,
}

fn evidence(e: &[std::sync::Arc<Evidence>]) -> Vec<EvidenceOut<'_>> {
    e.iter()
        .map(|e| EvidenceOut {
            pid: e.pid,
            how: e.how.as_str(),
            path: opt(&e.path),
            deleted: e.deleted,
            detail: super::words::evidence(e),
        })
        .collect()
}

#[derive(Serialize)]
struct FindingOut<'a> {
    kind: &'static str,
    severity: &'static str,
    app: &'a str,
    release: Option<Bytes<'a>>,
    pids: &'a [i32],
    master: Option<i32>,
    owner: Option<&'a str>,
    role: Option<&'a str>,
    message: Text<words::Message<'a>>,
    remedy: Text<words::Fix<'a>>,
    fix: FixOut,
    evidence: Vec<EvidenceOut<'a>>,
}

/// The commands of a remedy: `[{"argv": [bytestr, ...], "as": uid}]` (docs/JSON.md).
struct FixOut(Vec<Command>);

impl Serialize for FixOut {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(CommandOut))
    }
}

/// One command as `{"argv": [bytestr, ...], "as": uid}` (docs/JSON.md); `relwatch restart` writes its
/// actions with it too.
pub struct CommandOut<'a>(pub &'a Command);

impl Serialize for CommandOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("argv", &Argv(self.0))?;
        let uid = match self.0.as_whom {
            AsWhom::Root => 0,
            AsWhom::Uid(uid) => uid,
        };
        m.serialize_entry("as", &uid)?;
        m.end()
    }
}

/// A command's argv, each argument a *bytestr*.
struct Argv<'a>(&'a Command);

impl Serialize for Argv<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(None)?;
        for arg in self.0.argv() {
            seq.serialize_element(&Bytes(&arg))?;
        }
        seq.end()
    }
}

/// Words serialized as a JSON string, written as they are made.
struct Text<T>(T);

impl<T: std::fmt::Display> Serialize for Text<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

#[derive(Serialize)]
struct AppOut<'a> {
    name: &'a str,
    root: Bytes<'a>,
    link: Bytes<'a>,
    releases_dir: Option<Bytes<'a>>,
    current_release: Option<Bytes<'a>>,
    current_state: &'static str,
    switch_time: Option<f64>,
    releases: Vec<ReleaseOut<'a>>,
}

#[derive(Serialize)]
struct ReleaseOut<'a> {
    name: Bytes<'a>,
    state: &'static str,
    exists: bool,
    pids: Vec<i32>,
}

#[derive(Serialize)]
struct ProcessOut<'a> {
    pid: i32,
    ppid: i32,
    name: Bytes<'a>,
    comm: Bytes<'a>,
    cmdline: Vec<Bytes<'a>>,
    cmdline_truncated: bool,
    /// One character, serialized as a string of it.
    state: char,
    start_time: f64,
    uid: u32,
    app: &'a str,
    release: Option<Bytes<'a>>,
    release_state: &'static str,
    role: Option<&'a str>,
    master: bool,
    evidence: Vec<EvidenceOut<'a>>,
    owner: Option<&'a OwnerOut<'a>>,
}

#[derive(Serialize)]
struct OwnerOut<'a> {
    kind: &'static str,
    name: Option<String>,
    unit: Option<&'a str>,
    user: Option<u32>,
    supervisor_pid: Option<i32>,
    label: &'a str,
}

impl<'a> OwnerOut<'a> {
    /// Each distinct owner of the report once, in its slot ([`crate::owner::Owners::slot`]):
    /// thousands of workers of one service share one.
    fn all(owners: &'a crate::owner::Owners) -> Vec<OwnerOut<'a>> {
        owners
            .distinct()
            .map(|(o, label)| OwnerOut {
                kind: o.kind(),
                name: o.name(),
                unit: o.unit.as_ref().map(|u| u.unit.as_str()),
                user: o.unit.as_ref().and_then(|u| u.user),
                supervisor_pid: o.supervisor_pid(),
                label,
            })
            .collect()
    }
}

/// Write the report as one JSON document to `w` (pretty when `pretty`), streaming.
pub fn write(r: &Report, pretty: bool, w: impl std::io::Write) -> serde_json::Result<()> {
    let findings = Findings(r);
    let apps = r
        .roots
        .iter()
        .enumerate()
        .map(|(i, root)| AppOut {
            name: &root.name,
            root: Bytes::os(root.root.as_os_str()),
            link: Bytes::os(root.link.as_os_str()),
            releases_dir: root
                .releases_dir
                .as_deref()
                .map(|d| Bytes::os(d.as_os_str())),
            current_release: root.current_release().map(Bytes::os),
            current_state: root.current.state_name(),
            switch_time: root.switch_time,
            releases: super::releases_of(r, i)
                .into_iter()
                .map(|rel| ReleaseOut {
                    name: Bytes::os(rel.name),
                    state: rel.state.as_str(),
                    exists: rel.exists,
                    pids: rel.pids,
                })
                .collect(),
        })
        .collect();
    let owners = OwnerOut::all(r.owners);
    let processes = Processes(r, &owners);
    let doc = Doc {
        version: VERSION,
        status: r.exit.name(),
        exit_code: r.exit.code(),
        summary: words::summary(r),
        scanned_at: r.snap.clock.now,
        scan: Scan {
            processes: r.snap.processes.len(),
            vanished: r.snap.vanished,
            unreadable: r.attr.not_inspected(),
            other_mount_ns: r.attr.other_mount_ns,
            kernel_threads: r.attr.kernel_threads,
        },
        findings,
        apps,
        processes,
    };
    // serde_json writes a token at a time; through a `&mut dyn Write` (what `check` hands over)
    // each token was a call through a vtable. A buffer of a known type here takes the tokens
    // inline and passes them on 64 KiB at a time.
    let mut w = std::io::BufWriter::with_capacity(64 * 1024, w);
    if pretty {
        doc.serialize(&mut serde_json::Serializer::with_formatter(
            &mut w,
            Pretty::default(),
        ))?;
    } else {
        serde_json::to_writer(&mut w, &doc)?;
    }
    std::io::Write::flush(&mut w).map_err(serde_json::Error::io)
}

/// The document of a run that could not answer (bad arguments or config, a deploy root it
/// cannot read), for `check`, `ps` and `in-use` alike: `{"version", "status": "unknown",
/// "exit_code": 3, "error"}`, pretty, with a final newline. A script tells it from a report by
/// `error` (or by `exit_code`, as always).
pub fn error(message: &str) -> String {
    #[derive(Serialize)]
    struct ErrorDoc<'a> {
        version: u32,
        status: &'static str,
        exit_code: u8,
        error: &'a str,
    }
    let unknown = crate::exit::ExitCode::Unknown;
    let doc = ErrorDoc {
        version: VERSION,
        status: unknown.name(),
        exit_code: unknown.code(),
        error: message,
    };
    // Four fields of plain types: serializing cannot fail.
    let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    format!("{text}\n")
}

/// The layout of `serde_json::to_writer_pretty` (two spaces a level), with each line break
/// and its indentation written in one piece. serde_json's own pretty formatter writes the
/// indentation a level at a time: at 5,000 processes that was over half a million small
/// copies, a twentieth of a JSON scan's user time (callgrind).
#[derive(Default)]
struct Pretty {
    depth: usize,
    /// The array or object being written has a value: its end goes on a line of its own.
    has_value: bool,
}

/// A comma, a line break, and the indentation of up to 64 levels.
const BREAK: [u8; 130] = {
    let mut b = [b' '; 130];
    b[0] = b',';
    b[1] = b'\n';
    b
};

impl Pretty {
    /// A line break (after a comma when `comma`), indented to the current depth.
    fn newline<W: ?Sized + std::io::Write>(&self, w: &mut W, comma: bool) -> std::io::Result<()> {
        let from = usize::from(!comma);
        match BREAK.get(from..2 + 2 * self.depth) {
            Some(bytes) => w.write_all(bytes),
            None => {
                w.write_all(&BREAK[from..2])?;
                (0..self.depth).try_for_each(|_| w.write_all(b"  "))
            }
        }
    }

    fn open<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        bracket: &[u8],
    ) -> std::io::Result<()> {
        self.depth += 1;
        self.has_value = false;
        w.write_all(bracket)
    }

    fn close<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        bracket: &[u8],
    ) -> std::io::Result<()> {
        self.depth = self.depth.saturating_sub(1);
        if self.has_value {
            self.newline(w, false)?;
        }
        w.write_all(bracket)
    }
}

impl serde_json::ser::Formatter for Pretty {
    fn begin_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.open(w, b"[")
    }

    fn end_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.close(w, b"]")
    }

    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.newline(w, !first)
    }

    fn end_array_value<W: ?Sized + std::io::Write>(&mut self, _: &mut W) -> std::io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    fn begin_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.open(w, b"{")
    }

    fn end_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.close(w, b"}")
    }

    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.newline(w, !first)
    }

    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        w.write_all(b": ")
    }

    fn end_object_value<W: ?Sized + std::io::Write>(&mut self, _: &mut W) -> std::io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

/// Render the report as one JSON document in a string (pretty when `pretty`).
pub fn render(r: &Report, pretty: bool) -> serde_json::Result<String> {
    let mut buf = Vec::new();
    write(r, pretty, &mut buf)?;
    // serde_json writes UTF-8 only.
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// The `findings` array, serialized one finding at a time (like [`Processes`]).
struct Findings<'a>(&'a Report<'a>);

impl Serialize for Findings<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = self.0;
        s.collect_seq(r.findings.iter().map(|f| FindingOut {
            kind: f.kind.as_str(),
            severity: words::severity(f.severity).name,
            app: &r.roots[f.app].name,
            release: opt(&f.release),
            pids: &f.pids,
            master: f.master,
            owner: f.owner.as_deref(),
            role: f.role.as_deref(),
            message: Text(words::message(f, &r.roots[f.app])),
            remedy: Text(words::remedy(f, &r.roots[f.app])),
            fix: FixOut(f.remedy.commands()),
            evidence: evidence(&f.evidence),
        }))
    }
}

/// The `processes` array, serialized one process at a time: a scan of 20,000 processes never
/// holds all of them as output structs at once.
struct Processes<'a>(&'a Report<'a>, &'a [OwnerOut<'a>]);

impl Serialize for Processes<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (r, owners) = (self.0, self.1);
        s.collect_seq(
            r.attr
                .placements
                .iter()
                .filter_map(|pl| process_out(r, owners, pl)),
        )
    }
}

fn process_out<'a>(
    r: &'a Report,
    owners: &'a [OwnerOut<'a>],
    pl: &'a crate::attribution::Placement,
) -> Option<ProcessOut<'a>> {
    let p = r.snap.get(pl.pid)?;
    Some(ProcessOut {
        pid: p.pid,
        ppid: p.ppid,
        name: Bytes::os(p.name()),
        comm: Bytes(&p.comm),
        cmdline: p.cmdline.iter().map(Bytes::os).collect(),
        cmdline_truncated: p.cmdline_truncated,
        state: char::from(p.state),
        start_time: r.snap.clock.start_time(p.start_ticks),
        uid: p.uid,
        app: &r.roots[pl.app].name,
        release: opt(&pl.release),
        release_state: pl.state.as_str(),
        role: pl.role.as_deref(),
        master: r.snap.child_count(p.pid) > 0,
        evidence: evidence(&pl.evidence),
        owner: r.owners.slot(p.pid).and_then(|i| owners.get(i)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pretty_is_serde_jsons_pretty_layout() {
        let mut deep = serde_json::json!(["bottom", [], {}]);
        for level in 0..70 {
            deep = serde_json::json!({ "level": level, "inner": deep, "list": [1, [], [{}]] });
        }
        let samples = [
            serde_json::json!([]),
            serde_json::json!({}),
            serde_json::json!("a \"string\"\n"),
            serde_json::json!({"a": [], "b": {}, "c": [[], [1, 2], {"d": null}], "e": 1.5}),
            deep,
        ];
        for v in samples {
            let mut ours = Vec::new();
            v.serialize(&mut serde_json::Serializer::with_formatter(
                &mut ours,
                Pretty::default(),
            ))
            .unwrap();
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                serde_json::to_string_pretty(&v).unwrap()
            );
        }
    }

    #[test]
    fn bytes_are_lossless() {
        assert_eq!(
            serde_json::to_string(&Bytes(b"/srv/a")).unwrap(),
            "\"/srv/a\""
        );
        assert_eq!(
            serde_json::to_string(&Bytes(b"\x1b[31m\n")).unwrap(),
            "\"\\u001b[31m\\n\""
        );
        let v: serde_json::Value =
            serde_json::from_str(&serde_json::to_string(&Bytes(b"r\xff")).unwrap()).unwrap();
        let b64 = v["bytes"].as_str().unwrap();
        assert_eq!(
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap(),
            b"r\xff"
        );
    }
}
