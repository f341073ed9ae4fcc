//! `/proc/PID/environ`: a process's environment as it was at `exec`, NUL-separated
//! `KEY=VALUE` entries.
//!
//! It must never copy a value nobody asked for: environments hold secrets, and the keys
//! relwatch may ask for are listed once, in [`crate::snapshot::ENV_KEYS`].

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

/// The values of the named keys in `/proc/PID/environ`. Every other value is skipped without
/// being copied; a key listed twice keeps its first value.
pub fn environ_keys<'k>(buf: &[u8], keys: &[&'k str]) -> Vec<(&'k str, OsString)> {
    let mut out = Vec::new();
    for entry in buf.split(|&b| b == 0) {
        for &key in keys {
            if let Some(value) = entry
                .strip_prefix(key.as_bytes())
                .and_then(|r| r.strip_prefix(b"="))
            {
                if !out.iter().any(|(k, _)| *k == key) {
                    out.push((key, OsString::from_vec(value.to_vec())));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environ_reads_only_named_keys() {
        let env = b"SECRET_KEY=hunter2\0SUPERVISOR_ENABLED=1\0SUPERVISOR_PROCESS_NAME=queue_00\0\
SUPERVISOR_GROUP_NAME=queue\0SUPERVISOR_ENABLEDX=no\0PWD=/srv/app/current\0";
        let got = environ_keys(
            env,
            &[
                "SUPERVISOR_ENABLED",
                "SUPERVISOR_PROCESS_NAME",
                "SUPERVISOR_GROUP_NAME",
            ],
        );
        assert_eq!(
            got,
            [
                ("SUPERVISOR_ENABLED", OsString::from("1")),
                ("SUPERVISOR_PROCESS_NAME", OsString::from("queue_00")),
                ("SUPERVISOR_GROUP_NAME", OsString::from("queue")),
            ]
        );
        assert!(environ_keys(env, &["HOME"]).is_empty());
        // a key with no '=' and a truncated buffer do not confuse it; first value wins
        assert_eq!(
            environ_keys(b"name\0name=a\0name=b", &["name"]),
            [("name", OsString::from("a"))]
        );
    }
}
