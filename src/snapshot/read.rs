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

/// Open `name` relative to `dir` and read it whole into `buf` (see [`read_fd`]).
pub(super) fn read_at(
    buf: &mut Vec<u8>,
    dir: impl AsFd,
    name: &str,
    until: ReadUntil,
) -> nix::Result<()> {
    let fd = openat(dir, name, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())?;
    read_fd(buf, &fd, until)
}

/// Read a whole file into `buf` with plain `read` calls (to end of file, or to the first read
/// that leaves room for [`ReadUntil::ShortRead`]). Not `File::read_to_end`: it asks `statx`
/// and `lseek` for a size hint that /proc files never have, two wasted system calls per file.
/// The kernel writes straight into the spare capacity (rustix's `spare_capacity`), so nothing
/// is zeroed first (zeroing 4 KiB per file was a tenth of a scan's user time).
fn read_fd(buf: &mut Vec<u8>, fd: &OwnedFd, until: ReadUntil) -> nix::Result<()> {
    let short_is_whole = until == ReadUntil::ShortRead;
    buf.clear();
    loop {
        if buf.capacity() - buf.len() < 512 {
            buf.reserve(4096);
        }
        let spare = buf.capacity() - buf.len();
        match rustix::io::read(fd, rustix::buffer::spare_capacity(buf)) {
            Ok(0) => return Ok(()),
            Ok(n) if short_is_whole && n < spare => return Ok(()),
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(Errno::from_raw(e.raw_os_error())),
        }
    }
}
