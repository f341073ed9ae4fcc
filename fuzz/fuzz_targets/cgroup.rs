//! `/proc/PID/cgroup` and unit names: `systemd_cgroup` returns one line's path, and
//! `unit_of_cgroup` / `unescape_systemd` never panic on it or on the raw input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use relwatch::escape::unescape_systemd;
use relwatch::owner::unit::unit_of_cgroup;
use relwatch::snapshot::parse::cgroup::systemd_cgroup;

fn check_unit(path: &[u8]) {
    if let Some(u) = unit_of_cgroup(path) {
        assert!(u.is_service() || u.unit.ends_with(".scope"));
        assert!(!u.unit.contains('/'));
        let _ = u.is_session();
        let _ = u.display();
    }
}

fuzz_target!(|data: &[u8]| {
    if let Some(path) = systemd_cgroup(data) {
        assert!(!path.contains(&b'\n'));
        let lo = data.as_ptr() as usize;
        let p = path.as_ptr() as usize;
        assert!(p >= lo && p + path.len() <= lo + data.len());
        check_unit(path);
    }
    check_unit(data);
    let out = unescape_systemd(data);
    assert!(out.len() <= data.len());
});
