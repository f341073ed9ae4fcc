//! Escaping: no dangerous character survives, and `unescape(escape_bytes(x)) == x`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use relwatch::escape::{escape_bytes, is_dangerous, unescape};

fuzz_target!(|data: &[u8]| {
    let e = escape_bytes(data);
    assert!(!e.chars().any(is_dangerous), "dangerous character in {e:?}");
    assert_eq!(unescape(&e).as_deref(), Some(data));
    // Text escape_bytes never produced: None or bytes, never a panic.
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = unescape(s);
    }
});
