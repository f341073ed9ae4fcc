//! `/proc/PID/cmdline`: a process's arguments, each followed by a NUL.
//!
//! The non-obvious fact: a process may rewrite its arguments (setproctitle), leaving one
//! space-separated title padded with NULs, or no NUL at all; and any argument may be empty or
//! hold any byte but NUL.

use std::ffi::OsString;

/// A process's arguments in one buffer, each followed by a NUL, as the kernel keeps them: one
/// allocation per process where a `Vec<OsString>` made one per argument (a tenth of a scan's
/// memory). Read with [`Cmdline::iter`]; made by [`Cmdline::parse`] or from strings.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Cmdline(Box<[u8]>);

impl Cmdline {
    /// Split `/proc/PID/cmdline`. Arguments are NUL-terminated; a process that rewrote its
    /// title (setproctitle) may leave one space-separated string, or trailing NULs, which
    /// would read as empty trailing arguments: they are dropped.
    pub fn parse(buf: &[u8]) -> Cmdline {
        let end = buf.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        if end == 0 {
            return Cmdline::default();
        }
        let mut v = Vec::with_capacity(end + 1);
        v.extend_from_slice(&buf[..end]);
        v.push(0);
        Cmdline(v.into_boxed_slice())
    }

    /// The arguments, in order.
    pub fn iter(&self) -> impl Iterator<Item = &std::ffi::OsStr> + Clone {
        use std::os::unix::ffi::OsStrExt;
        self.0
            .strip_suffix(b"\0")
            .into_iter()
            .flat_map(|b| b.split(|&c| c == 0))
            .map(std::ffi::OsStr::from_bytes)
    }

    pub fn first(&self) -> Option<&std::ffi::OsStr> {
        self.iter().next()
    }

    pub fn len(&self) -> usize {
        self.0.iter().filter(|&&b| b == 0).count()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Cmdline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<S: AsRef<std::ffi::OsStr>> FromIterator<S> for Cmdline {
    fn from_iter<I: IntoIterator<Item = S>>(args: I) -> Self {
        use std::os::unix::ffi::OsStrExt;
        let mut v = Vec::new();
        for a in args {
            v.extend_from_slice(a.as_ref().as_bytes());
            v.push(0);
        }
        Cmdline(v.into_boxed_slice())
    }
}

impl From<Vec<OsString>> for Cmdline {
    fn from(args: Vec<OsString>) -> Self {
        args.into_iter().collect()
    }
}

/// Split `/proc/PID/cmdline` into arguments (see [`Cmdline::parse`], which the reader uses
/// and which keeps them in one buffer).
pub fn split_cmdline(buf: &[u8]) -> Vec<OsString> {
    Cmdline::parse(buf)
        .iter()
        .map(std::ffi::OsStr::to_os_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    fn args(c: &Cmdline) -> Vec<&OsStr> {
        c.iter().collect()
    }

    #[test]
    fn one_buffer_keeps_every_argument() {
        let c = Cmdline::parse(b"php\0artisan\0\0queue:work\0");
        assert_eq!(args(&c), ["php", "artisan", "", "queue:work"]);
        assert_eq!(c.len(), 4);
        assert_eq!(c.first(), Some(OsStr::new("php")));
        assert_eq!(format!("{c:?}"), r#"["php", "artisan", "", "queue:work"]"#);
    }

    #[test]
    fn titles_and_padding() {
        let c = Cmdline::parse(b"gunicorn: master [app]\0\0\0\0");
        assert_eq!(args(&c), ["gunicorn: master [app]"]);
        assert_eq!(args(&Cmdline::parse(b"no-nul")), ["no-nul"]);
        for empty in [&b""[..], b"\0", b"\0\0\0"] {
            let c = Cmdline::parse(empty);
            assert!(
                c.is_empty() && c.iter().count() == 0 && c.first().is_none(),
                "{empty:?}"
            );
        }
    }

    #[test]
    fn built_from_strings_it_can_hold_an_empty_argument() {
        let c: Cmdline = ["", "x"].into_iter().collect();
        assert_eq!(args(&c), ["", "x"]);
        let one_empty: Cmdline = [""].into_iter().collect();
        assert_eq!(args(&one_empty), [""]);
        assert!(!one_empty.is_empty());
        assert_eq!(
            Cmdline::from(vec!["a".into(), "b".into()]),
            ["a", "b"].into_iter().collect()
        );
    }

    #[test]
    fn cmdline_split() {
        assert_eq!(
            split_cmdline(b"php\0/srv/app/current/artisan\0queue:work\0"),
            ["php", "/srv/app/current/artisan", "queue:work"]
        );
        assert!(split_cmdline(b"").is_empty());
        assert!(split_cmdline(b"\0").is_empty());
        // setproctitle: one string padded with NULs
        assert_eq!(
            split_cmdline(b"gunicorn: master [shop]\0\0\0\0"),
            ["gunicorn: master [shop]"]
        );
        // an empty argument in the middle is kept
        assert_eq!(split_cmdline(b"a\0\0b\0"), ["a", "", "b"]);
        // non-UTF-8 survives
        let args = split_cmdline(b"/srv/r/\xff\xfe/run\0");
        use std::os::unix::ffi::OsStrExt;
        assert_eq!(args[0].as_bytes(), b"/srv/r/\xff\xfe/run");
    }
}
