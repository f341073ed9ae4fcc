//! Reading a whole `/proc` file into a reused buffer: the one primitive both readers (the
//! pass over `/proc` in [`super::linux`] and the cgroup walk in [`super::cgroupfs`]) share.
//!
//! It must never ask for a size (/proc files have none) nor allocate per file: the caller's
//! buffer is reused, grown only when a file is larger than any before. The non-obvious fact it
//! relies on is in [`ReadUntil::ShortRead`].

use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::Mode;
use std::os::fd::{AsFd, OwnedFd};

/// How a read knows it has the whole /proc file.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum ReadUntil {
    /// `stat`, `cmdline`, `cgroup`: the kernel writes all it has in one `read` when the buffer
    /// has room (a single-record seq_file, or a loop over the argument pages), so a read that
    /// leaves room is the whole file and the `read` that would return 0 is saved: one system
    /// call per file per process on the hot path.
    ShortRead,
    /// Anything else: read until `read` returns 0.
    Eof,
}

/// The most bytes of a process's `cmdline` or `environ` read and kept: a user can give 200
/// processes 2 MiB of arguments each for the price of one (children share them copy-on-write),
/// and root must not pay 400 MiB for it. What is cut is marked, never silently dropped.
pub(super) const ARGS_CAP: usize = 64 * 1024;

/// The most bytes of a command line kept when it names no deploy root (see
/// [`super::ArgsWorthKeeping`]): cut at the end of the last argument within them. Nearly every
/// command line is shorter and kept whole; 10,000 processes of 64 KiB each cost 40 MiB, not
/// 640 MiB.
pub(super) const ARGS_SHORT: usize = 4 * 1024;

/// The most bytes of command lines longer than [`ARGS_SHORT`] that one pass keeps, however
/// many processes name a deploy root (anyone can write its path into their arguments): 256
/// of 64 KiB. Past it, those too are cut to [`ARGS_SHORT`].
pub(super) const LONG_ARGS_BUDGET: usize = 16 * 1024 * 1024;

/// How much of a file a read took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Got {
    Whole,
    /// The first `cap` bytes: the file is longer.
    Truncated,
}

/// Open `name` relative to `dir` and read it whole into `buf` (see [`read_fd`]).
pub(super) fn read_at(
    buf: &mut Vec<u8>,
    dir: impl AsFd,
    name: &str,
    until: ReadUntil,
) -> nix::Result<()> {
    let fd = openat(dir, name, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())?;
    read_fd(buf, &fd, until, usize::MAX).map(|_| ())
}

/// Open `name` relative to `dir` and read at most its first `cap` bytes into `buf`: the buffer
/// grows to about `cap` and no further, however long the file.
pub(super) fn read_capped_at(
    buf: &mut Vec<u8>,
    dir: impl AsFd,
    name: &str,
    until: ReadUntil,
    cap: usize,
) -> nix::Result<Got> {
    let fd = openat(dir, name, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())?;
    read_fd(buf, &fd, until, cap)
}

/// Read a file into `buf` with plain `read` calls (to end of file, or to the first read that
/// leaves room for [`ReadUntil::ShortRead`]), keeping at most `cap` bytes: one byte more is
/// read to tell a file of exactly `cap` bytes from a longer one. Not `File::read_to_end`: it
/// asks `statx` and `lseek` for a size hint that /proc files never have, two wasted system
/// calls per file. The kernel writes straight into the spare capacity (rustix's
/// `spare_capacity`), so nothing is zeroed first (zeroing 4 KiB per file was a tenth of a
/// scan's user time).
fn read_fd(buf: &mut Vec<u8>, fd: &OwnedFd, until: ReadUntil, cap: usize) -> nix::Result<Got> {
    let short_is_whole = until == ReadUntil::ShortRead;
    buf.clear();
    loop {
        if buf.len() > cap {
            buf.truncate(cap);
            return Ok(Got::Truncated);
        }
        if buf.capacity() - buf.len() < 512 {
            let want = 4096.min(cap.saturating_add(1) - buf.len());
            if cap == usize::MAX {
                buf.reserve(want);
            } else {
                // Not the doubling of `reserve`: never far beyond the cap, whatever the file.
                buf.reserve_exact(want);
            }
        }
        let spare = buf.capacity() - buf.len();
        match rustix::io::read(fd, rustix::buffer::spare_capacity(buf)) {
            Ok(0) => return Ok(Got::Whole),
            Ok(n) if short_is_whole && n < spare && buf.len() <= cap => return Ok(Got::Whole),
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(Errno::from_raw(e.raw_os_error())),
        }
    }
}

/// Open `name` relative to `dir` and hand each of its lines (without the newline) to `each`,
/// reading through `buf` a window at a time: memory stays at `window` bytes (or `buf`'s
/// capacity, if larger) however long the file (`maps` of a process can be hundreds of MiB).
/// A line longer than the window is skipped; the answer says how many were.
pub(super) fn stream_lines_at(
    buf: &mut Vec<u8>,
    dir: impl AsFd,
    name: &str,
    window: usize,
    each: &mut dyn FnMut(&[u8]),
) -> nix::Result<usize> {
    let fd = openat(dir, name, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())?;
    buf.clear();
    buf.reserve(window);
    let (mut skipping, mut skipped) = (false, 0);
    loop {
        match rustix::io::read(&fd, rustix::buffer::spare_capacity(buf)) {
            Ok(0) => break,
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(Errno::from_raw(e.raw_os_error())),
        }
        let mut start = 0;
        while let Some(end) = memchr::memchr(b'\n', &buf[start..]) {
            if !std::mem::take(&mut skipping) {
                each(&buf[start..start + end]);
            }
            start += end + 1;
        }
        buf.drain(..start);
        if buf.len() == buf.capacity() {
            // One line fills the window: drop what we have of it, and the rest up to its end.
            skipped += usize::from(!skipping);
            skipping = true;
            buf.clear();
        }
    }
    if !buf.is_empty() && !skipping {
        each(buf);
    }
    Ok(skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file in a fresh directory, opened as a directory to read relative to.
    fn file(contents: &[u8]) -> (tempfile::TempDir, OwnedFd) {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("f"), contents).unwrap();
        let dir = nix::fcntl::open(
            tmp.path(),
            OFlag::O_RDONLY | OFlag::O_DIRECTORY,
            Mode::empty(),
        )
        .unwrap();
        (tmp, dir)
    }

    #[test]
    fn a_capped_read_keeps_the_cap_and_says_it_cut() {
        for until in [ReadUntil::ShortRead, ReadUntil::Eof] {
            let mut buf = Vec::new();
            let (_tmp, dir) = file(&[b'a'; 10_000]);
            assert_eq!(
                read_capped_at(&mut buf, &dir, "f", until, 100),
                Ok(Got::Truncated)
            );
            assert_eq!(buf, [b'a'; 100]);
            assert_eq!(
                read_capped_at(&mut buf, &dir, "f", until, 10_000),
                Ok(Got::Whole)
            );
            assert_eq!(buf.len(), 10_000);
            assert_eq!(
                read_capped_at(&mut buf, &dir, "f", until, 9_999),
                Ok(Got::Truncated)
            );
            assert_eq!(buf.len(), 9_999);
        }
        let mut buf = Vec::new();
        let (_tmp, dir) = file(&vec![b'x'; 1 << 20]);
        read_capped_at(&mut buf, &dir, "f", ReadUntil::Eof, ARGS_CAP).unwrap();
        assert!(buf.capacity() <= 2 * ARGS_CAP, "{}", buf.capacity());
    }

    #[test]
    fn streamed_lines_come_whole_and_overlong_ones_are_skipped() {
        let mut text = Vec::new();
        for i in 0..5000 {
            text.extend_from_slice(format!("line {i}\n").as_bytes());
        }
        text.extend_from_slice(&[b'L'; 300]);
        text.extend_from_slice(b"\nafter\nlast");
        let (_tmp, dir) = file(&text);
        let mut buf = Vec::with_capacity(64);
        let mut lines = Vec::new();
        let skipped =
            stream_lines_at(&mut buf, &dir, "f", 64, &mut |l| lines.push(l.to_vec())).unwrap();
        assert_eq!(skipped, 1);
        assert_eq!(lines.len(), 5002);
        assert_eq!(lines[4999], b"line 4999");
        assert_eq!(lines[5000..], [b"after".to_vec(), b"last".to_vec()]);
        assert!(buf.capacity() < 256, "{}", buf.capacity());
    }
}
