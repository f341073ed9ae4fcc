//! `/proc/PID/status`: a process's state as `Key:\tvalue` lines, for people and for tools.
//!
//! relwatch reads only `CapEff`, its own effective capabilities, as 16 hex digits: with
//! `CAP_SYS_PTRACE` (bit 19) it sees through a /proc mounted with `hidepid=`.

/// `CAP_SYS_PTRACE`, from include/uapi/linux/capability.h.
pub const CAP_SYS_PTRACE: u64 = 1 << 19;

/// The effective capability set in a status file, when it has one that parses.
pub fn effective_caps(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effective_capabilities() {
        let root = "Name:\trelwatch\nCapInh:\t0000000000000000\nCapPrm:\t000001ffffffffff\n\
CapEff:\t000001ffffffffff\nCapBnd:\t000001ffffffffff\n";
        assert_eq!(effective_caps(root), Some(0x1ff_ffff_ffff));
        assert!(effective_caps(root).is_some_and(|c| c & CAP_SYS_PTRACE != 0));
        let plain = "Name:\tsh\nCapEff:\t0000000000000000\n";
        assert_eq!(effective_caps(plain), Some(0));
        assert_eq!(effective_caps("Name:\tsh\n"), None);
        assert_eq!(effective_caps("CapEff:\tnot hex\n"), None);
    }
}
