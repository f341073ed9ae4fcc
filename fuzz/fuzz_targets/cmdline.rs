//! `/proc/PID/cmdline`: the split is lossless (joined with NUL it gives back the input
//! without trailing NULs) and never holds a NUL or a trailing empty argument.
#![no_main]

use libfuzzer_sys::fuzz_target;
use relwatch::snapshot::parse::cmdline::split_cmdline;
use std::os::unix::ffi::OsStrExt;

fuzz_target!(|data: &[u8]| {
    let args = split_cmdline(data);
    assert!(args.last().is_none_or(|a| !a.is_empty()));
    let mut joined = Vec::with_capacity(data.len());
    for (i, a) in args.iter().enumerate() {
        assert!(!a.as_bytes().contains(&0));
        if i > 0 {
            joined.push(0);
        }
        joined.extend_from_slice(a.as_bytes());
    }
    let mut trimmed = data;
    while let Some(rest) = trimmed.strip_suffix(b"\0") {
        trimmed = rest;
    }
    assert_eq!(joined, trimmed);
});
