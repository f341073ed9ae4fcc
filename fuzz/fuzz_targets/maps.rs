//! `/proc/PID/maps`: the paths found are absolute, come from one line each, and never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use relwatch::snapshot::parse::maps::maps_paths;

fuzz_target!(|data: &[u8]| {
    let lo = data.as_ptr() as usize;
    for path in maps_paths(data) {
        assert_eq!(path.first(), Some(&b'/'));
        assert!(!path.contains(&b'\n'));
        let p = path.as_ptr() as usize;
        assert!(p >= lo && p + path.len() <= lo + data.len());
    }
});
