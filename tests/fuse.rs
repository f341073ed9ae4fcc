//! A process whose cwd lies on a FUSE file system whose daemon stopped answering must not hang
//! a scan (issue 18, "Hang a root scan"). relwatch asks the kernel for a cwd's identity with
//! `statx` and an empty mask (`AT_STATX_DONT_SYNC`), which FUSE answers from its cache; a plain
//! `stat` sends `GETATTR` to the daemon and waits for it.

mod util;

use std::path::{Path, PathBuf};
use std::process::Command;
use util::*;

/// A FUSE mount (bindfs) made by the test: `umount -l` on drop, after the daemon (a [`Child`]
/// declared after this guard, so dropped before it) is gone.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn mounted(at: &Path) -> bool {
    let Ok(table) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let at = at.to_string_lossy();
    table
        .lines()
        .any(|line| line.split(' ').nth(4) == Some(&*at))
}

fn have_bindfs() -> bool {
    Command::new("bindfs")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn can_mount_fuse() -> bool {
    if !nix::unistd::geteuid().is_root() || !have_bindfs() || !Path::new("/dev/fuse").exists() {
        skip("needs root, /dev/fuse and bindfs (scripts/test-deps installs it)");
        return false;
    }
    true
}

/// Mounts `src` at `at` with bindfs in the foreground (the daemon is our child, ended by its
/// pid) and no attribute cache, so every plain stat has to ask the daemon.
fn bindfs(src: &Path, at: &Path) -> (Mount, Child) {
    std::fs::create_dir_all(at).expect("create the mount point");
    let mount = Mount(at.to_path_buf());
    let daemon = Child::spawn(
        Command::new("bindfs")
            .args(["-f", "-o", "attr_timeout=0,entry_timeout=0"])
            .arg(src)
            .arg(at),
    );
    poll("the bindfs mount to appear", || mounted(at).then_some(()));
    (mount, daemon)
}

/// A process stuck behind a stopped FUSE daemon can sit in uninterruptible sleep, where even
/// SIGKILL waits: a regression would hang the test run, not fail it. The valve continues the
/// daemon after [`VALVE`] (every stuck call then returns) and remembers that it had to, so the
/// test fails instead. A scan that works ends in well under a second.
struct Valve {
    cancel: std::sync::mpsc::Sender<()>,
    opened: std::thread::JoinHandle<bool>,
}

const VALVE: std::time::Duration = std::time::Duration::from_secs(30);

impl Valve {
    fn for_daemon(pid: i32) -> Valve {
        let (cancel, cancelled) = std::sync::mpsc::channel::<()>();
        let opened = std::thread::spawn(move || match cancelled.recv_timeout(VALVE) {
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                signal(pid, nix::sys::signal::Signal::SIGCONT);
                true
            }
            _ => false,
        });
        Valve { cancel, opened }
    }

    /// Whether the valve had to continue the daemon (the scan hung).
    fn close(self) -> bool {
        let _ = self.cancel.send(());
        self.opened.join().unwrap_or(true)
    }
}

fn signal(pid: i32, signal: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal).expect("signal our daemon");
}

#[test]
fn a_stopped_fuse_daemon_under_a_cwd_does_not_hang_the_scan() {
    if !can_mount_fuse() {
        return;
    }
    let root = DeployRoot::new();
    let one = root.release("1");
    root.switch("1");
    let worker = Child::sleep_in(&one);

    let src = root.tmp().join("fuse-src");
    let at = root.tmp().join("fuse-mnt");
    std::fs::create_dir_all(src.join("inside")).expect("create the FUSE source");
    let (_mount, daemon) = bindfs(&src, &at);
    let stuck = Child::sleep_in(at.join("inside"));
    signal(daemon.pid(), nix::sys::signal::Signal::SIGSTOP);
    // A process we can prove is stuck behind the daemon: a plain stat through its cwd waits.
    let probe = Child::spawn(
        Command::new("stat")
            .arg("-L")
            .arg(format!("/proc/{}/cwd", stuck.pid())),
    );
    poll(
        "a plain stat through the cwd to wait for the stopped daemon (request_wait_answer)",
        || {
            std::fs::read_to_string(format!("/proc/{}/wchan", probe.pid()))
                .ok()
                .filter(|w| w.contains("request_wait_answer"))
        },
    );

    let valve = Valve::for_daemon(daemon.pid());
    let run = relwatch(["check".as_ref(), root.path().as_os_str()]);
    assert!(
        !valve.close(),
        "the scan hung on the stopped FUSE daemon: {run}"
    );
    assert_eq!(run.code, 0, "{run}");
    assert!(run.stdout.contains("OK"), "{run}");
    let _ = worker;

    signal(daemon.pid(), nix::sys::signal::Signal::SIGCONT);
    drop(probe);
}

/// The deploy root itself on the stalled mount: reading it waits for the daemon, so the scan
/// deadline ends the run with UNKNOWN, in the asked format, instead of hanging the monitor.
#[test]
fn a_deploy_root_on_a_stalled_mount_ends_in_unknown_at_the_deadline() {
    if !can_mount_fuse() {
        return;
    }
    let backing = DeployRoot::new();
    backing.release("1");
    backing.switch("1");
    let at = backing.tmp().join("fuse-app");
    let (_mount, daemon) = bindfs(backing.path(), &at);
    signal(daemon.pid(), nix::sys::signal::Signal::SIGSTOP);

    let valve = Valve::for_daemon(daemon.pid());
    let run = relwatch([
        "check".as_ref(),
        at.as_os_str(),
        "--deadline".as_ref(),
        "2s".as_ref(),
        "--format".as_ref(),
        "json".as_ref(),
    ]);
    signal(daemon.pid(), nix::sys::signal::Signal::SIGCONT);
    assert!(!valve.close(), "the deadline did not end the run: {run}");
    assert_eq!(run.code, 3, "{run}");
    let doc = run.error_doc();
    assert!(
        doc.error.contains("did not finish within 2s") && doc.error.contains("--deadline"),
        "{run}"
    );
    assert!(run.stderr.contains("did not finish within 2s"), "{run}");
}
