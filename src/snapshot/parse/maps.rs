//! `/proc/PID/maps`: the memory mappings of a process, one per line.
//!
//! The non-obvious fact: the path is the sixth field and runs to the end of the line, so it
//! may hold spaces, and the kernel appends ` (deleted)` to a file that was unlinked.

/// The file paths in `/proc/PID/maps`, each run of one file once. Anonymous mappings and
/// pseudo-paths (`[heap]`, `[stack]`, `[vdso]`) are skipped.
pub fn maps_paths(buf: &[u8]) -> Vec<&[u8]> {
    let mut out: Vec<&[u8]> = Vec::new();
    for path in buf.split(|&b| b == b'\n').filter_map(maps_path) {
        if out.last() != Some(&path) {
            out.push(path);
        }
    }
    out
}

/// The file path of one line of `/proc/PID/maps` (without its newline), if it maps a file.
pub fn maps_path(line: &[u8]) -> Option<&[u8]> {
    // address perms offset dev inode, then spaces, then the path
    let mut rest = line;
    for _ in 0..5 {
        let i = rest.iter().position(|&b| b == b' ')?;
        rest = &rest[i + 1..];
    }
    let path = rest.trim_ascii_start();
    (path.first() == Some(&b'/')).then_some(path)
}

/// The file path of one line of `/proc/PID/maps` with the file's device (`MAJ:MIN` in hex,
/// as `makedev` gives `st_dev`) and inode, if it maps a file.
pub fn maps_entry(line: &[u8]) -> Option<(&[u8], u64, u64)> {
    let path = maps_path(line)?;
    let mut fields = line.split(|&b| b == b' ').filter(|f| !f.is_empty());
    let dev = fields.nth(3)?;
    let ino = fields.next()?;
    let (major, minor) = std::str::from_utf8(dev).ok()?.split_once(':')?;
    let dev = nix::libc::makedev(
        u32::from_str_radix(major, 16).ok()?,
        u32::from_str_radix(minor, 16).ok()?,
    );
    let ino = std::str::from_utf8(ino).ok()?.parse().ok()?;
    Some((path, dev, ino))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_lines() {
        let maps = b"55d0c8a00000-55d0c8a02000 r--p 00000000 fd:01 1311 /srv/app/releases/65/bin/worker\n\
55d0c8a02000-55d0c8a06000 r-xp 00002000 fd:01 1311 /srv/app/releases/65/bin/worker\n\
7f0000000000-7f0000001000 r--s 00000000 fd:01 99 /srv/app/releases/7 (deleted)/vendor/my lib.so (deleted)\n\
7ffd1000-7ffd2000 rw-p 00000000 00:00 0                          [stack]\n\
7f1000000000-7f1000001000 rw-p 00000000 00:00 0 \n\
garbage\n";
        assert_eq!(
            maps_paths(maps),
            [
                &b"/srv/app/releases/65/bin/worker"[..],
                b"/srv/app/releases/7 (deleted)/vendor/my lib.so (deleted)"
            ]
        );
        assert!(maps_paths(b"").is_empty());
    }

    #[test]
    fn maps_entries_carry_device_and_inode() {
        let line = b"7f0000000000-7f0000001000 r-xp 00000000 fd:01 1311 /srv/app/releases/1/ext.so";
        assert_eq!(
            maps_entry(line),
            Some((
                &b"/srv/app/releases/1/ext.so"[..],
                nix::libc::makedev(0xfd, 1),
                1311
            ))
        );
        assert_eq!(
            maps_entry(b"7ffd1000-7ffd2000 rw-p 00000000 00:00 0 [stack]"),
            None
        );
        assert_eq!(maps_entry(b"a-b r--p 0 zz:01 1 /x"), None);
    }
}
