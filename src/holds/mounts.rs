//! Other mount namespaces: a container started with `-v /srv/app/current:/app`, or a process
//! in `unshare --mount` with a bind mount of `current`, resolved `current` when the mount was
//! made and keeps that release; after the cleanup every file it opens is gone. Its cwd reads
//! `/app/web`, which means nothing in our namespace.
//!
//! Its paths are translated to ours through the mounts: the mount its cwd (or exe) lies under
//! in *its* `mountinfo` gives the filesystem and the directory on it (`ROOT`, which the kernel
//! prints as `/srv/app/releases/1//deleted` once that directory is removed), and a mount of the
//! same filesystem in *our* `mountinfo` gives our path for that directory. The translation is
//! believed only by identity (issue 18, "mount namespaces need identity"): a live cwd must be,
//! in our namespace, the very object the process holds (device and inode); a deleted one must
//! lie on the filesystem that mount names, which must be the releases' device. Path text from
//! another namespace alone never places a process.

use crate::attribution::{Attribution, Held, How};
use crate::escape::unescape_octal;
use crate::layout::DeployRoot;
use crate::snapshot::parse::mountinfo::{mounts, parse_dev};
use crate::snapshot::{Link, LinkError, ProcSource, Process, Snapshot};
use std::collections::{BTreeMap, HashSet};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;

/// What the kernel appends to a mount root whose directory was removed.
const DELETED_ROOT: &[u8] = b"//deleted";

/// One mount: its device, the directory of that filesystem it shows, and where (unescaped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountAt {
    pub dev: u64,
    pub root: Vec<u8>,
    pub point: Vec<u8>,
}

/// The mounts of a mountinfo file, roots and points unescaped, a removed root's suffix cut.
pub fn parse(info: &[u8]) -> Vec<MountAt> {
    mounts(info)
        .filter_map(|m| {
            let mut root = unescape_octal(m.root);
            if root.ends_with(DELETED_ROOT) {
                root.truncate(root.len() - DELETED_ROOT.len());
            }
            Some(MountAt {
                dev: parse_dev(m.dev)?,
                root,
                point: unescape_octal(m.point),
            })
        })
        .collect()
}

/// Translate what the processes in other mount namespaces hold to our paths (see the module
/// docs), into `held` by pid. Looked at: the `picked` candidates, and any process whose cwd
/// or exe was deleted on a releases' device. A process in our namespace costs one
/// `readlink`; one in another has its cwd and exe translated, and (when picked) every file it
/// maps or holds open, since their paths are its own. Answers the pids found in another mount
/// namespace.
pub fn look(
    roots: &[DeployRoot],
    snap: &Snapshot,
    attr: &Attribution,
    picked: &[&Process],
    held: &mut BTreeMap<i32, Vec<Held>>,
    source: &mut dyn ProcSource,
) -> HashSet<i32> {
    let devs: Vec<u64> = attr.releases_devs.iter().flatten().copied().collect();
    let deleted_on_releases = |l: &Result<Link, LinkError>| {
        l.as_ref()
            .ok()
            .is_some_and(|l| l.is_deleted() && l.identity().is_some_and(|(d, _)| devs.contains(&d)))
    };
    let picked_pids: HashSet<i32> = picked.iter().map(|p| p.pid).collect();
    let mut pids: Vec<i32> = picked_pids.iter().copied().collect();
    pids.extend(
        snap.processes
            .iter()
            .filter(|p| p.pid != snap.own_pid && !p.kernel_thread && !p.is_zombie())
            .filter(|p| deleted_on_releases(&p.cwd) || deleted_on_releases(&p.exe))
            .map(|p| p.pid),
    );
    pids.sort_unstable();
    pids.dedup();
    let mut ours: Option<Vec<MountAt>> = None;
    let mut elsewhere = HashSet::new();
    for pid in pids {
        // issue 17: a namespace we cannot read leaves the process as the cheap pass saw it
        // (and the second look counts it as not inspected).
        let Ok(Some(info)) = source.mounts_of(pid) else {
            continue;
        };
        let Some(p) = snap.get(pid) else { continue };
        elsewhere.insert(pid);
        let ours = ours.get_or_insert_with(|| parse(&source.own_mounts().unwrap_or_default()));
        let through = Through {
            roots,
            theirs: parse(&info),
            ours,
        };
        let mut found: Vec<Held> = [(How::Cwd, &p.cwd), (How::Exe, &p.exe)]
            .into_iter()
            .filter_map(|(how, link)| through.held(how, link.as_ref().ok()?))
            .collect();
        // What was read as text is replaced by its translation; only module paths stay (an
        // interpreter's environment names paths of its own namespace: never placed by them).
        let mut before = held.remove(&pid).unwrap_or_default();
        before.retain(|h| h.key.is_some());
        found.append(&mut before);
        if picked_pids.contains(&pid) {
            // issue 17: maps or fd/ we could not read add nothing.
            let files = source.held_files(pid, &|_| true).unwrap_or_default();
            let mapped = files.mapped.iter().map(|f| (How::MappedFile, f));
            for (how, f) in mapped.chain(files.open.iter().map(|f| (How::OpenFile, f))) {
                found.extend(through.held(how, &super::file_link(f)));
            }
        }
        if !found.is_empty() {
            held.insert(pid, found);
        }
    }
    elsewhere
}

/// One process's mounts and ours, to translate what it holds.
struct Through<'a> {
    roots: &'a [DeployRoot],
    theirs: Vec<MountAt>,
    ours: &'a [MountAt],
}

impl Through<'_> {
    /// `link`, held as `how`, translated to our path inside a release and checked there.
    fn held(&self, how: How, link: &Link) -> Option<Held> {
        let wanted = |p: &[u8]| super::in_releases(self.roots, p);
        let path = translate(&wanted, link, &self.theirs, self.ours)?;
        Some(Held {
            how,
            link: Link {
                target: std::ffi::OsStr::from_bytes(&path).into(),
                ..link.clone()
            },
            key: None,
            through_mounts: true,
        })
    }
}

/// `path` is `prefix` or below it, by whole components: what follows it there.
fn below<'p>(path: &'p [u8], prefix: &[u8]) -> Option<&'p [u8]> {
    if prefix == b"/" {
        return Some(path);
    }
    let rest = path.strip_prefix(prefix)?;
    (rest.is_empty() || rest.starts_with(b"/")).then_some(rest)
}

fn join(dir: &[u8], rest: &[u8]) -> Vec<u8> {
    let mut out = dir.strip_suffix(b"/").unwrap_or(dir).to_vec();
    out.extend_from_slice(rest);
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

/// Our path for what `link` (read in another namespace that sees `theirs`) leads to, when it
/// is one `wanted` accepts (inside a release) and identity backs it (see the module docs).
pub fn translate(
    wanted: &dyn Fn(&[u8]) -> bool,
    link: &Link,
    theirs: &[MountAt],
    ours: &[MountAt],
) -> Option<Vec<u8>> {
    let (dev, ino) = link.identity()?;
    let text = link.path();
    let text = text.as_bytes();
    // The mount it lies under in its namespace: the longest mount point above it, of the
    // filesystem it is on.
    let (mount, rest) = theirs
        .iter()
        .filter(|m| m.dev == dev)
        .filter_map(|m| Some((m, below(text, &m.point)?)))
        .max_by_key(|(m, _)| m.point.len())?;
    let on_fs = join(&mount.root, rest);
    ours.iter()
        .filter(|m| m.dev == dev)
        .filter_map(|m| Some(join(&m.point, below(&on_fs, &m.root)?)))
        .find(|path| {
            wanted(path)
                && if link.is_deleted() {
                    // A removed directory cannot be looked at: the releases' device and the
                    // mount's own filesystem path, inside a release, back it.
                    true
                } else {
                    std::fs::metadata(std::ffi::OsStr::from_bytes(path))
                        .is_ok_and(|m| (m.dev(), m.ino()) == (dev, ino))
                }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_removed_mount_root_loses_the_kernels_suffix() {
        let info = b"\
1 0 8:1 / / rw - ext4 /dev/sda1 rw
612 1 8:1 /srv/app/releases/1//deleted /app rw,relatime - ext4 /dev/sda1 rw
613 1 0:52 / /my\\040tmp rw - tmpfs tmpfs rw
";
        let m = parse(info);
        assert_eq!(m.len(), 3);
        assert_eq!(m[1].root, b"/srv/app/releases/1");
        assert_eq!(m[1].point, b"/app");
        assert_eq!(m[1].dev, nix::libc::makedev(8, 1));
        assert_eq!(m[2].point, b"/my tmp");
    }

    #[test]
    fn paths_join_and_nest_by_whole_components() {
        assert_eq!(below(b"/app/web", b"/app"), Some(&b"/web"[..]));
        assert_eq!(below(b"/app", b"/app"), Some(&b""[..]));
        assert_eq!(below(b"/apple", b"/app"), None);
        assert_eq!(below(b"/x", b"/"), Some(&b"/x"[..]));
        assert_eq!(
            join(b"/srv/app/releases/1", b"/web"),
            b"/srv/app/releases/1/web"
        );
        assert_eq!(join(b"/", b"/srv"), b"/srv");
        assert_eq!(join(b"/", b""), b"/");
    }
}
