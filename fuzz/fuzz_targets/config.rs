//! The configuration file: any text parses to a configuration or to an error whose message
//! names the file and lets no dangerous character through. Never a panic, never a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use relwatch::config::parse_str;
use relwatch::escape::is_dangerous;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    // `config::load` refuses non-UTF-8 before parsing; the parser sees text.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse_str(text, Path::new("/etc/relwatch/config.yaml")) {
        Ok(config) => {
            for app in &config.apps {
                assert!(!app.name.is_empty());
                assert!(app.root.is_absolute());
            }
            let _ = config.render();
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.starts_with("/etc/relwatch/config.yaml"), "{msg:?}");
            assert!(
                !msg.chars().any(is_dangerous),
                "unescaped character in {msg:?}"
            );
        }
    }
});
