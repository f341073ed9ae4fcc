//! `/proc/PID/environ`: only the keys asked for come back, each once, and their values are
//! exactly what follows `KEY=` in one entry.
#![no_main]

use libfuzzer_sys::fuzz_target;
use relwatch::snapshot::parse::environ::environ_keys;
use relwatch::snapshot::ENV_KEYS;
use std::os::unix::ffi::OsStrExt;

fuzz_target!(|data: &[u8]| {
    let got = environ_keys(data, ENV_KEYS);
    let mut seen: Vec<&str> = Vec::new();
    for (k, v) in &got {
        assert!(ENV_KEYS.contains(k), "key {k:?} was not asked for");
        assert!(!seen.contains(k), "key {k:?} returned twice");
        seen.push(k);
        let mut entry = k.as_bytes().to_vec();
        entry.push(b'=');
        entry.extend_from_slice(v.as_bytes());
        assert!(
            data.split(|&b| b == 0).any(|e| e == entry.as_slice()),
            "value of {k:?} is not an entry of the input"
        );
    }
});
