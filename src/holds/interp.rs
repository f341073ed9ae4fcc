//! Interpreter paths: a Python, Ruby, Perl, Node or PHP process that imports from a release
//! through `PYTHONPATH`, `RUBYLIB`, `PERL5LIB`, `NODE_PATH` or `BUNDLE_GEMFILE` keeps that
//! release: its next lazy import reads it.
//!
//! Environments hold secrets (docs/SECURITY.md): these keys are read only for interpreter
//! processes, each value is only compared with the deploy roots' releases directories, and
//! what is kept of it is the release directory it names (`/srv/app/releases/1`), never the
//! rest of the value.

use crate::attribution::{Held, How};
use crate::layout::{DeployRoot, NOT_RELEASES};
use crate::snapshot::{Link, ProcSource, Process};
use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;

/// The module path keys read, each a list of directories (`BUNDLE_GEMFILE` one file).
pub const KEYS: &[&str] = &[
    "PYTHONPATH",
    "RUBYLIB",
    "PERL5LIB",
    "NODE_PATH",
    "BUNDLE_GEMFILE",
];

/// The `comm` prefixes of the interpreters whose module paths are read.
const INTERPRETERS: &[&[u8]] = &[b"python", b"ruby", b"perl", b"node", b"php"];

/// `p` runs an interpreter (by its `comm`, which the kernel takes from the executable's name).
pub fn is_interpreter(p: &Process) -> bool {
    INTERPRETERS.iter().any(|i| p.comm.starts_with(i))
}

/// The releases the module paths of `pids` name, by pid.
pub fn paths(
    roots: &[DeployRoot],
    pids: &[i32],
    source: &mut dyn ProcSource,
) -> HashMap<i32, Vec<Held>> {
    let mut out = HashMap::new();
    if pids.is_empty() {
        return out;
    }
    source.cgroup_and_env(pids, &|_| KEYS, &mut |pid, read| {
        // issue 17: an environment we could not read names nothing; the process is placed or
        // not by what else it holds.
        let env = read.env.unwrap_or_default();
        let mut held = Vec::new();
        for (key, value) in &env {
            for dir in dirs(value) {
                if let Some(release) = release_dir(roots, dir) {
                    if !held.iter().any(|h: &Held| *h.link.target == *release) {
                        held.push(named(key, &release));
                    }
                }
            }
        }
        if !held.is_empty() {
            out.insert(pid, held);
        }
    });
    out
}

/// The absolute directories of a module path value (`:`-separated); one with `.` or `..`
/// components is not followed.
pub fn dirs(value: &std::ffi::OsStr) -> impl Iterator<Item = &[u8]> {
    value.as_bytes().split(|&b| b == b':').filter(|dir| {
        dir.starts_with(b"/") && !dir.split(|&b| b == b'/').any(|c| c == b"." || c == b"..")
    })
}

/// The release directory (`<releases dir>/<name>`, in the spelling the value used) that the
/// absolute path `dir` lies in, if any.
fn release_dir(roots: &[DeployRoot], dir: &[u8]) -> Option<std::ffi::OsString> {
    for spelling in roots.iter().flat_map(|r| &r.releases_spellings) {
        let d = spelling.as_os_str().as_bytes();
        let Some(rest) = dir.strip_prefix(d).and_then(|r| r.strip_prefix(b"/")) else {
            continue;
        };
        let name = rest.split(|&b| b == b'/').next().unwrap_or_default();
        if name.is_empty() || NOT_RELEASES.iter().any(|n| n.as_bytes() == name) {
            return None;
        }
        let mut out = d.to_vec();
        out.push(b'/');
        out.extend_from_slice(name);
        return Some(std::ffi::OsString::from(std::ffi::OsStr::from_bytes(&out)));
    }
    None
}

fn named(key: &'static str, release: &std::ffi::OsStr) -> Held {
    Held {
        how: How::InterpreterPath,
        link: Link {
            target: release.into(),
            dev: 0,
            ino: 0,
            nlink: 1,
        },
        key: Some(key),
        through_mounts: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{current, root};

    #[test]
    fn a_value_is_cut_to_the_release_it_names() {
        let roots = [root("app", b"/srv/app", current(b"1"), &[(b"1", 1)])];
        let dir = |v: &[u8]| {
            let v = std::ffi::OsStr::from_bytes(v);
            dirs(v)
                .next()
                .and_then(|d| release_dir(&roots, d))
                .map(|d| d.into_encoded_bytes())
        };
        assert_eq!(
            dir(b"/srv/app/releases/1/lib/secret-token"),
            Some(b"/srv/app/releases/1".to_vec())
        );
        assert_eq!(
            dir(b"/srv/app/releases/1"),
            Some(b"/srv/app/releases/1".to_vec())
        );
        assert_eq!(dir(b"/srv/app/current/lib"), None);
        assert_eq!(dir(b"/srv/app/releases/1/../../x"), None);
        assert_eq!(dir(b"lib"), None);
        assert_eq!(dir(b"/srv/app/releases/"), None);
    }

    #[test]
    fn keys_are_ones_relwatch_may_read() {
        for k in KEYS {
            assert!(crate::snapshot::ENV_KEYS.contains(k), "{k}");
        }
    }
}
