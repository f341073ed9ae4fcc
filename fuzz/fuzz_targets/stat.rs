//! `/proc/PID/stat`: any bytes never panic; any bytes as `comm` inside a well-formed line
//! leave the fields after it intact.
#![no_main]

use libfuzzer_sys::fuzz_target;
use relwatch::snapshot::parse::stat::parse_stat;

fuzz_target!(|data: &[u8]| {
    // 1. The raw input as a stat file.
    if let Ok(s) = parse_stat(data) {
        let open = data
            .iter()
            .position(|&b| b == b'(')
            .expect("a '(' was found");
        let close = data
            .iter()
            .rposition(|&b| b == b')')
            .expect("a ')' was found");
        assert_eq!(s.comm, &data[open + 1..close]);
    }

    // 2. The input as a process-chosen `comm` inside a line the kernel would print.
    let mut line = b"4242 (".to_vec();
    line.extend_from_slice(data);
    line.extend_from_slice(
        b") S 17 4242 4242 0 -1 4194560 2551 0 0 0 3 1 0 0 20 0 1 0 123456 230948864 6074 \
18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
    );
    let s = parse_stat(&line).expect("a well-formed line parses whatever its comm");
    assert_eq!(s.pid, 4242);
    assert_eq!(s.comm, data);
    assert_eq!(s.state, b'S');
    assert_eq!(s.ppid, 17);
    assert_eq!(s.flags, 4194560);
    assert_eq!(s.start_ticks, 123456);
});
