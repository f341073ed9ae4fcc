//! `/proc/PID/stat`: the pid, `comm`, state, parent, kernel flags and start time.
//!
//! The non-obvious fact: field 2 is `(comm)`, and `comm` is chosen by the process
//! (`prctl(PR_SET_NAME)`): it may hold spaces, parentheses and any byte but NUL. The only safe
//! way is to take the text between the first `(` and the *last* `)`.

/// The fields of `/proc/PID/stat` that relwatch uses; `comm` borrows the line read (most
/// reads of `stat` only want the start time: nothing is copied for them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat<'a> {
    pub pid: i32,
    pub comm: &'a [u8],
    pub state: u8,
    pub ppid: i32,
    /// Kernel `PF_*` flags (field 9).
    pub flags: u64,
    /// Start time in clock ticks since boot (field 22).
    pub start_ticks: u64,
    /// Minor faults of its reaped children (field 11, `cminflt`): grows each time it reaps one.
    pub reaped_faults: u64,
    /// CPU ticks of its reaped children (fields 16 and 17, `cutime` + `cstime`).
    pub reaped_ticks: u64,
}

/// `PF_KTHREAD` from include/linux/sched.h.
pub const PF_KTHREAD: u64 = 0x0020_0000;

impl Stat<'_> {
    pub fn kernel_thread(&self) -> bool {
        self.flags & PF_KTHREAD != 0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed /proc/PID/stat: {0}")]
pub struct StatError(&'static str);

/// Parse the contents of `/proc/PID/stat`.
pub fn parse_stat(buf: &[u8]) -> Result<Stat<'_>, StatError> {
    let open = memchr::memchr(b'(', buf).ok_or(StatError("no '(' before comm"))?;
    let close = memchr::memrchr(b')', buf).ok_or(StatError("no ')' after comm"))?;
    if close < open {
        return Err(StatError("')' before '('"));
    }
    let pid = std::str::from_utf8(&buf[..open])
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
        .ok_or(StatError("pid is not a number"))?;
    let comm = &buf[open + 1..close];
    // Fields 3.. separated by single spaces; field 3 is index 0 here.
    let mut fields = Fields(&buf[close + 1..]);
    let mut nth = |skip: usize| fields.nth(skip);
    let state = match nth(0) {
        Some([s]) => *s,
        _ => return Err(StatError("state is not one letter")),
    };
    let ppid = number(nth(0), "ppid")? as i32;
    // fields 5,6,7,8 then 9 (flags)
    let flags = number(nth(4), "flags")?;
    // field 10, then 11 (cminflt)
    let reaped_faults = number(nth(1), "cminflt")?;
    // fields 12..15, then 16 and 17 (cutime, cstime)
    let reaped_ticks = number(nth(4), "cutime")?.saturating_add(number(nth(0), "cstime")?);
    // fields 18..21 then 22 (starttime)
    let start_ticks = number(nth(4), "starttime")?;
    Ok(Stat {
        pid,
        comm,
        state,
        ppid,
        flags,
        start_ticks,
        reaped_faults,
        reaped_ticks,
    })
}

/// The fields after `(comm)`: runs of bytes between spaces and newlines (empty ones skipped).
struct Fields<'a>(&'a [u8]);

impl<'a> Iterator for Fields<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let start = self.0.iter().position(|&b| b != b' ' && b != b'\n')?;
        let rest = &self.0[start..];
        let end = memchr::memchr2(b' ', b'\n', rest).unwrap_or(rest.len());
        self.0 = &rest[end..];
        Some(&rest[..end])
    }
}

fn number(field: Option<&[u8]>, what: &'static str) -> Result<u64, StatError> {
    let f = field.ok_or(StatError(what))?;
    // What the kernel prints: decimal digits. Up to 19 of them cannot overflow a u64 (the
    // i64 parse below refuses those above i64::MAX; no field relwatch reads gets there).
    if !f.is_empty() && f.len() < 20 && f.iter().all(u8::is_ascii_digit) {
        return Ok(f.iter().fold(0, |n, &d| n * 10 + u64::from(d - b'0')));
    }
    // Anything else as before: ppid may be 0 but is never negative; parse as i64 to be
    // lenient, then refuse negatives.
    std::str::from_utf8(f)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .and_then(|n| u64::try_from(n).ok())
        .ok_or(StatError(what))
}

#[cfg(test)]
mod tests {
    use super::*;

    const REAL: &[u8] = b"1234 (php) S 1 1234 1234 0 -1 4194560 2551 0 0 0 3 1 0 0 20 0 1 0 \
123456 230948864 6074 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n";

    #[test]
    fn real_line() {
        let s = parse_stat(REAL).unwrap();
        assert_eq!(s.pid, 1234);
        assert_eq!(s.comm, b"php");
        assert_eq!(s.state, b'S');
        assert_eq!(s.ppid, 1);
        assert_eq!(s.flags, 4194560);
        assert_eq!(s.start_ticks, 123456);
        assert_eq!((s.reaped_faults, s.reaped_ticks), (0, 0));
        assert!(!s.kernel_thread());
        // A master that has reaped children: cminflt 8841, cutime 12, cstime 30.
        let reaped =
            b"83 (php) S 1 83 83 0 -1 4194560 2551 8841 0 0 3 1 12 30 20 0 1 0 777 1 1 1\n";
        let s = parse_stat(reaped).unwrap();
        assert_eq!(
            (s.reaped_faults, s.reaped_ticks, s.start_ticks),
            (8841, 42, 777)
        );
    }

    #[test]
    fn kernel_thread_flag() {
        let line = b"2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0 \
18446744073709551615 0 0 0 0 0 0 0 2147483647 0 0 0 0 0 1 0 0 0 0 0 0 0 0 0 0 0 0 0";
        let s = parse_stat(line).unwrap();
        assert!(s.kernel_thread());
        assert_eq!(s.ppid, 0);
        assert_eq!(s.start_ticks, 5);
    }

    #[test]
    fn comm_with_parens_spaces_and_fake_fields() {
        // A process can name itself ") S 1 2 3 (" to fool a parser that splits on spaces.
        let line = b"77 (a) S 1 2 (b) R 99 77 77 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 4242 0 0";
        let s = parse_stat(line).unwrap();
        assert_eq!(s.comm, b"a) S 1 2 (b");
        assert_eq!(s.state, b'R');
        assert_eq!(s.ppid, 99);
        assert_eq!(s.start_ticks, 4242);
    }

    #[test]
    fn comm_with_newline_and_invalid_utf8() {
        let line = b"8 (x\n\xff\x1b[31m) Z 7 0 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 9 0 0";
        let s = parse_stat(line).unwrap();
        assert_eq!(s.comm, b"x\n\xff\x1b[31m");
        assert_eq!(s.state, b'Z');
        assert_eq!(s.start_ticks, 9);
    }

    #[test]
    fn numbers_take_digits_fast_and_anything_else_as_before() {
        for (field, want) in [
            (&b"0"[..], Some(0)),
            (b"007", Some(7)),
            (b"4242", Some(4242)),
            (b"9223372036854775807", Some(i64::MAX as u64)),
            // Not what the kernel prints, taken as i64's parser always took it:
            (b"+5", Some(5)),
            (b"-0", Some(0)),
            (b"-5", None),
            (b"18446744073709551615", None),
            (b"99999999999999999999", None),
            (b"", None),
            (b"1a", None),
            (b"\xff", None),
        ] {
            assert_eq!(
                number(Some(field), "x").ok(),
                want,
                "{:?}",
                String::from_utf8_lossy(field)
            );
        }
        assert!(number(None, "x").is_err());
    }

    #[test]
    fn truncated_and_garbage_are_errors_not_panics() {
        for bad in [
            &b""[..],
            b"12",
            b"12 (x",
            b"12 x) S",
            b") (",
            b"12 (x) S",
            b"12 (x) S 1 2 3",
            b"12 (x) SS 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20",
            b"abc (x) S 1 0 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 9",
            b"12 (x) S -5 0 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 9",
        ] {
            assert!(
                parse_stat(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
