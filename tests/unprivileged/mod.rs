//! Running relwatch as another user, for the tests of what it answers when it cannot see
//! everything (`tests/privilege.rs`, `tests/hooks.rs`).
//!
//! Users are dropped with `setpriv` to uid 65534 (nobody) or 65533 (a deploy user without a
//! passwd entry: setpriv needs none), so nothing on the host is changed. Switching users needs
//! root: a test that cannot do it says why and is skipped, except under CI (`CI=true`), where
//! it fails.

// Each test binary uses a different subset of the helpers.
#![allow(dead_code)]

use std::os::unix::fs::{lchown, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};

use crate::util::{comm, poll, Child, DeployRoot};

pub const NOBODY: u32 = 65534;
pub const DEPLOY: u32 = 65533;

/// `setpriv` arguments that drop to `uid` (and the same gid) with no supplementary groups.
pub fn drop_to(uid: u32) -> Vec<String> {
    vec![
        format!("--reuid={uid}"),
        format!("--regid={uid}"),
        "--clear-groups".to_string(),
    ]
}

/// `setpriv` arguments that drop to `uid` but keep CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH
/// (ambient, so they survive the exec of relwatch).
pub fn drop_to_with_caps(uid: u32) -> Vec<String> {
    let mut a = drop_to(uid);
    a.push("--inh-caps=+sys_ptrace,+dac_read_search".to_string());
    a.push("--ambient-caps=+sys_ptrace,+dac_read_search".to_string());
    a
}

/// Say why `test` cannot run and return false; under CI (`CI=true`) fail instead.
pub fn cannot_run(test: &str, why: &str) -> bool {
    if std::env::var_os("CI").is_some_and(|v| v == "true") {
        panic!("{test} cannot run under CI: {why}");
    }
    eprintln!("skipped {test}: {why}");
    false
}

/// Whether this test can run: root, `setpriv` present, and the binary executable by `nobody`.
pub fn can_switch_users(test: &str) -> bool {
    if !nix::unistd::geteuid().is_root() {
        return cannot_run(test, "switching users needs root");
    }
    let probe = Command::new("setpriv")
        .args(drop_to(NOBODY))
        .arg(env!("CARGO_BIN_EXE_relwatch"))
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    match probe {
        Ok(s) if s.success() => true,
        Ok(s) => cannot_run(
            test,
            &format!(
                "uid {NOBODY} cannot run {} ({s}): is a directory above it private?",
                env!("CARGO_BIN_EXE_relwatch")
            ),
        ),
        Err(e) => cannot_run(test, &format!("cannot run setpriv: {e}")),
    }
}

/// Makes the deploy root readable and traversable by everyone, up to and including the
/// temporary directory (tempfile creates it 0700), so an unprivileged run can read the layout.
pub fn open_up(root: &DeployRoot) {
    for dir in [root.tmp(), root.path().to_path_buf(), root.releases_dir()] {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
            .unwrap_or_else(|e| panic!("chmod {}: {e}", dir.display()));
    }
}

/// `chown -hR uid:uid` (links themselves, never followed).
pub fn chown_tree(path: &Path, uid: u32) {
    lchown(path, Some(uid), Some(uid)).unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
    let meta = std::fs::symlink_metadata(path).expect("lstat");
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).expect("read_dir") {
            chown_tree(&entry.expect("dir entry").path(), uid);
        }
    }
}

/// `sleep 1000` in `dir`, running as `uid` (setpriv execs sleep: the pid stays the same).
pub fn sleep_as(uid: u32, dir: &Path) -> Child {
    let child = Child::spawn(
        Command::new("setpriv")
            .args(drop_to(uid))
            .args(["sleep", "1000"])
            .current_dir(dir),
    );
    poll("the unprivileged sleep to exec", || {
        (comm(child.pid()).as_deref() == Some("sleep")).then_some(())
    });
    child
}
