//! Where a report goes: stdout, or a file replaced atomically.
//!
//! - [`Stdout`]: a reader that went away (`relwatch check | head -0`) ends the output, never the
//!   command. Every command writes through it, so the exit code is still the verdict: a broken
//!   pipe must never turn CRITICAL into 0, nor into an error.
//! - [`write_atomic`]: a temp file in the same directory, written, flushed and given mode 0644,
//!   then renamed over the target. A reader (node_exporter's textfile collector, a Nagios
//!   poller) sees the old file or the new one, never half of one. The temp file has no name
//!   while it is written (`O_TMPFILE`), so a run killed meanwhile (SIGKILL, the OOM killer, a
//!   timer's stop) leaves nothing behind; it gets a name only for the rename.
//!
//! What a failed run leaves there is the commands' business (`commands::write_error`).

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

pub fn write_atomic(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    write_atomic_with(path, |w| w.write_all(contents))
}

/// Like [`write_atomic`], with the contents written by `fill` straight into the temp file.
pub fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the output path names no file",
        )
    })?;
    match write_unnamed(dir, name, path, fill) {
        Written::Done(result) => result,
        Written::NoTmpfile(fill) => write_named(dir, name, path, fill),
    }
}

/// The outcome of [`write_unnamed`]: `NoTmpfile` when the directory's file system has no
/// `O_TMPFILE` (the filler is handed back, unused).
enum Written<F> {
    Done(std::io::Result<()>),
    NoTmpfile(F),
}

/// Write into an `O_TMPFILE` in `dir`, then link it as `.NAME.PID.tmp` and rename that over
/// `path`: between the link and the rename is the only moment it has a name.
fn write_unnamed<F>(dir: &Path, name: &std::ffi::OsStr, path: &Path, fill: F) -> Written<F>
where
    F: FnOnce(&mut dyn Write) -> std::io::Result<()>,
{
    use rustix::fs::{openat, Mode, OFlags, CWD};
    let flags = OFlags::TMPFILE | OFlags::WRONLY | OFlags::CLOEXEC;
    let fd = match openat(CWD, dir, flags, Mode::from_raw_mode(0o644)) {
        Ok(fd) => fd,
        // EOPNOTSUPP: a file system without it; EISDIR/EINVAL: a kernel or libc without it.
        Err(e)
            if [
                rustix::io::Errno::OPNOTSUPP,
                rustix::io::Errno::ISDIR,
                rustix::io::Errno::INVAL,
            ]
            .contains(&e) =>
        {
            return Written::NoTmpfile(fill)
        }
        Err(e) => return Written::Done(Err(e.into())),
    };
    Written::Done(fill_and_link(
        std::fs::File::from(fd),
        dir,
        name,
        path,
        fill,
    ))
}

fn fill_and_link(
    mut file: std::fs::File,
    dir: &Path,
    name: &std::ffi::OsStr,
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    {
        let mut w = std::io::BufWriter::new(&mut file);
        fill(&mut w)?;
        w.flush()?;
    }
    file.sync_all()?;
    file.set_permissions(std::fs::Permissions::from_mode(0o644))?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(format!(".{}.tmp", std::process::id()));
    let temp = dir.join(temp_name);
    let link = || {
        rustix::fs::linkat(
            rustix::fs::CWD,
            format!("/proc/self/fd/{}", file.as_raw_fd()),
            rustix::fs::CWD,
            &temp,
            rustix::fs::AtFlags::SYMLINK_FOLLOW,
        )
    };
    match link() {
        // Left by an earlier run with our pid that died between link and rename.
        Err(rustix::io::Errno::EXIST) => {
            std::fs::remove_file(&temp)?;
            link()?;
        }
        linked => linked?,
    }
    std::fs::rename(&temp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&temp);
    })
}

/// The fallback of a file system without `O_TMPFILE`: a named temp file (the `tempfile`
/// crate's), removed on error, renamed over `path` when complete.
fn write_named(
    dir: &Path,
    name: &std::ffi::OsStr,
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{}.", name.to_string_lossy()))
        .suffix(".tmp")
        .tempfile_in(dir)?;
    {
        let mut w = std::io::BufWriter::new(tmp.as_file_mut());
        fill(&mut w)?;
        w.flush()?;
    }
    tmp.as_file().sync_all()?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// A writer around stdout that turns a broken pipe into "stop writing": once the reader has
/// gone, every later write is dropped and reported as done, so the command runs to its end and
/// returns its verdict. Any other error is passed on.
pub struct Stdout<W> {
    inner: W,
    closed: bool,
}

impl<W: Write> Stdout<W> {
    pub fn new(inner: W) -> Self {
        Stdout {
            inner,
            closed: false,
        }
    }

    /// The reader went away: `write` returned EPIPE.
    fn gone(&mut self, e: &std::io::Error) -> bool {
        self.closed |= e.kind() == std::io::ErrorKind::BrokenPipe;
        self.closed
    }
}

impl<W: Write> Write for Stdout<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.closed {
            return Ok(buf.len());
        }
        match self.inner.write(buf) {
            Err(e) if self.gone(&e) => Ok(buf.len()),
            other => other,
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.closed {
            return Ok(());
        }
        match self.inner.flush() {
            Err(e) if self.gone(&e) => Ok(()),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    /// While the report is written, the directory shows nothing new: a run killed at that
    /// moment leaves no temp file behind (it had one, named `.NAME.XXXXXX.tmp`, before).
    #[test]
    fn the_file_being_written_has_no_name_until_it_is_complete() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("relwatch.prom");
        std::fs::write(&path, b"old\n").expect("write the old report");
        let names = || {
            let mut names: Vec<_> = std::fs::read_dir(dir.path())
                .expect("list")
                .map(|e| e.expect("entry").file_name())
                .collect();
            names.sort();
            names
        };
        let before = names();
        write_atomic_with(&path, |w| {
            w.write_all(b"new\n")?;
            assert_eq!(names(), before, "a half-written report has a name");
            Ok(())
        })
        .expect("write");
        assert_eq!(names(), before);
        assert_eq!(std::fs::read(&path).expect("read"), b"new\n");
        let mode = std::fs::metadata(&path).expect("stat").mode() & 0o777;
        assert_eq!(mode, 0o644);
    }

    /// A writer whose reader has gone after `room` bytes.
    struct Pipe {
        taken: Vec<u8>,
        room: usize,
        calls: usize,
    }

    impl Write for Pipe {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.calls += 1;
            if self.taken.len() >= self.room {
                return Err(std::io::ErrorKind::BrokenPipe.into());
            }
            let n = buf.len().min(self.room - self.taken.len());
            self.taken.extend_from_slice(&buf[..n]);
            Ok(n)
        }

        fn flush(&mut self) -> std::io::Result<()> {
            if self.taken.len() >= self.room {
                return Err(std::io::ErrorKind::BrokenPipe.into());
            }
            Ok(())
        }
    }

    #[test]
    fn a_broken_pipe_ends_the_output_not_the_writer() {
        let mut out = Stdout::new(Pipe {
            taken: Vec::new(),
            room: 5,
            calls: 0,
        });
        out.write_all(b"relwatch CRITICAL\n").unwrap();
        writeln!(out, "more after the reader left").unwrap();
        out.flush().unwrap();
        assert_eq!(out.inner.taken, b"relwa");
        // Once gone, the pipe is not tried again.
        assert_eq!(out.inner.calls, 2);
    }

    #[test]
    fn other_errors_are_still_errors() {
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::Error::from_raw_os_error(28)) // ENOSPC
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut out = Stdout::new(Full);
        assert!(out.write_all(b"x").is_err());
        assert!(out.write_all(b"x").is_err(), "not taken for a closed pipe");
    }

    #[test]
    fn replaces_whole_and_world_readable() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("relwatch.prom");
        write_atomic(&target, b"a 1\n").unwrap();
        write_atomic(&target, b"a 2\n").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"a 2\n");
        assert_eq!(std::fs::metadata(&target).unwrap().mode() & 0o777, 0o644);
        // no temp file is left behind
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
