//! Holds relwatch's /proc reader against sysinfo's independent view of the same live
//! processes: pid, parent, cwd (deleted too), command line (non-UTF-8 too) and state.

use relwatch::snapshot::linux::LinuxProc;
use relwatch::snapshot::{LinkError, ProcSource};
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// Kills and reaps its child by pid, also when the test fails.
struct Guard(Child);
impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn reader_agrees_with_sysinfo_on_live_processes() {
    let tmp = tempfile::tempdir().unwrap();
    let kept = tmp.path().join("kept");
    let gone = tmp.path().join("gone");
    std::fs::create_dir(&kept).unwrap();
    std::fs::create_dir(&gone).unwrap();

    // A plain sleeper, one with a non-UTF-8 argument, one whose cwd is then deleted, and one
    // that leaves a zombie child behind (exec replaces sh, so nothing reaps `true`).
    let plain = Guard(
        Command::new("sleep")
            .arg("1001")
            .current_dir(&kept)
            .spawn()
            .unwrap(),
    );
    let odd = Guard(
        Command::new("sleep")
            .arg0(OsString::from_vec(b"sl\xffeep \x1b[31m".to_vec()))
            .arg("1002")
            .current_dir(&kept)
            .spawn()
            .unwrap(),
    );
    let deleted = Guard(
        Command::new("sleep")
            .arg("1003")
            .current_dir(&gone)
            .spawn()
            .unwrap(),
    );
    let reaper = Guard(
        Command::new("sh")
            .args(["-c", "true & exec sleep 1004"])
            .current_dir(&kept)
            .spawn()
            .unwrap(),
    );
    std::fs::remove_dir(&gone).unwrap();
    let pids: Vec<i32> = [&plain, &odd, &deleted, &reaper]
        .iter()
        .map(|g| g.0.id() as i32)
        .collect();
    wait_for("sh to exec sleep and leave a zombie", || {
        let cmd = std::fs::read(format!("/proc/{}/cmdline", pids[3])).unwrap_or_default();
        let has_zombie = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", pids[3]))
            .unwrap_or_default()
            .split_whitespace()
            .any(|c| {
                std::fs::read_to_string(format!("/proc/{c}/stat")).is_ok_and(|s| {
                    s.rsplit(')')
                        .next()
                        .is_some_and(|r| r.trim_start().starts_with('Z'))
                })
            });
        cmd.starts_with(b"sleep\x001004") && has_zombie
    });

    let snap = LinuxProc::default().snapshot().unwrap();
    let mut sys = sysinfo::System::new().unwrap();
    sys.refresh_processes_specifics(
        sysinfo::ProcessesToUpdate::All,
        true,
        sysinfo::ProcessRefreshKind::nothing()
            .with_cmd(sysinfo::UpdateKind::Always)
            .with_cwd(sysinfo::UpdateKind::Always),
    );

    let zombie = snap
        .processes
        .iter()
        .find(|p| p.ppid == pids[3] && p.is_zombie())
        .expect("our reader sees the zombie child");
    let mut checked = pids.clone();
    checked.push(zombie.pid);
    for pid in checked {
        let ours = snap
            .get(pid)
            .unwrap_or_else(|| panic!("pid {pid} missing from our snapshot"));
        let theirs = sys
            .process(sysinfo::Pid::from_u32(pid as u32))
            .unwrap_or_else(|| panic!("pid {pid} missing from sysinfo"));
        assert_eq!(
            Some(ours.ppid as u32),
            theirs.parent().map(|p| p.as_u32()),
            "parent of {pid}"
        );
        assert_eq!(
            ours.cmdline.iter().collect::<Vec<_>>(),
            theirs
                .cmd()
                .iter()
                .map(OsString::as_os_str)
                .collect::<Vec<_>>(),
            "cmdline of {pid}"
        );
        let status = format!("{:?}", theirs.status());
        let expected = match ours.state {
            b'S' => "Sleep",
            b'R' => "Run",
            b'Z' => "Zombie",
            b'D' => "UninterruptibleDiskSleep",
            b'T' => "Stop",
            other => panic!("unexpected state {}", other as char),
        };
        assert_eq!(status, expected, "state of {pid}");
        match (&ours.cwd, theirs.cwd()) {
            (Ok(link), Some(cwd)) => assert_eq!(&*link.target, cwd.as_os_str(), "cwd of {pid}"),
            (Err(LinkError::Absent), None) => assert!(ours.is_zombie(), "only zombies lack a cwd"),
            (o, t) => panic!("cwd of {pid} differs: ours {o:?}, sysinfo {t:?}"),
        }
    }

    // The deleted cwd: sysinfo shows the kernel's suffix; ours knows by the link count.
    let d = snap.get(pids[2]).unwrap().cwd.as_ref().unwrap();
    assert!(d.is_deleted());
    assert_eq!(&*d.path(), gone.as_os_str());
    let k = snap.get(pids[0]).unwrap().cwd.as_ref().unwrap();
    assert!(!k.is_deleted());
    assert_eq!(&*k.path(), kept.as_os_str());
}

/// Processes with the same cwd share one copy of its text (the snapshot interns link
/// targets).
#[test]
fn equal_link_targets_share_one_allocation() {
    let tmp = tempfile::tempdir().unwrap();
    let a = Guard(
        Command::new("sleep")
            .arg("1011")
            .current_dir(tmp.path())
            .spawn()
            .unwrap(),
    );
    let b = Guard(
        Command::new("sleep")
            .arg("1012")
            .current_dir(tmp.path())
            .spawn()
            .unwrap(),
    );
    let (pa, pb) = (a.0.id() as i32, b.0.id() as i32);
    let mut snap = LinuxProc::default().snapshot().unwrap();
    wait_for("both sleepers to exec", || {
        snap = LinuxProc::default().snapshot().unwrap();
        [pa, pb].iter().all(|&pid| {
            snap.get(pid)
                .is_some_and(|p| p.cmdline.first() == Some("sleep".as_ref()))
        })
    });
    let cwd = |pid| snap.get(pid).unwrap().cwd.clone().unwrap();
    let (ca, cb) = (cwd(pa), cwd(pb));
    assert_eq!(&*ca.target, tmp.path().as_os_str());
    assert!(
        std::sync::Arc::ptr_eq(&ca.target, &cb.target),
        "one allocation for one target"
    );
}
