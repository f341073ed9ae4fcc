//! Escaping of untrusted text before it reaches a terminal, a log line or a monitoring line.
//!
//! Process names, command lines, paths and release names are chosen by whoever runs the
//! process or names the directory. Printed raw, an ESC sequence can repaint the operator's
//! terminal, a CR can overwrite a line, a bidi override can make `rm` read as `mr`. Every
//! printer goes through [`escape`]; nothing else writes untrusted bytes.
//!
//! The escape is reversible: backslash itself is doubled, so `\x1b` in the output always
//! means the byte 0x1b and `\\x1b` means the four characters.

use std::ffi::OsStr;
use std::fmt::Write;
use std::os::unix::ffi::OsStrExt;

/// True for characters that must not reach a terminal raw: C0 and C1 controls, DEL, bidi
/// controls, zero-width and other invisible or blank formatting characters (soft hyphen,
/// Hangul fillers, variation selectors). The one list: the config module's messages use it
/// too.
pub fn is_dangerous(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}'
        | '\u{ad}'                 // soft hyphen
        | '\u{34f}'                // combining grapheme joiner
        | '\u{61c}'                // arabic letter mark
        | '\u{115f}' | '\u{1160}'  // Hangul choseong and jungseong fillers
        | '\u{17b4}' | '\u{17b5}'  // Khmer inherent vowels
        | '\u{180e}'               // Mongolian vowel separator
        | '\u{200b}'..='\u{200f}'   // zero-width space/joiners, LRM, RLM
        | '\u{2028}'..='\u{202e}'   // line and paragraph separators, bidi embeddings, overrides
        | '\u{2060}'..='\u{206f}'   // word joiner, invisible operators, bidi isolates, deprecated
        | '\u{3164}'               // Hangul filler
        | '\u{fe00}'..='\u{fe0f}'   // variation selectors
        | '\u{feff}'               // zero-width no-break space / BOM
        | '\u{ffa0}'               // halfwidth Hangul filler
        | '\u{fff9}'..='\u{fffb}'   // interlinear annotation
        | '\u{e0000}'..='\u{e007f}' // tags
    )
}

/// Escape bytes for display: valid UTF-8 stays readable, invalid bytes become `\xNN`,
/// dangerous characters become `\n`, `\t`, `\r`, `\xNN` (below 0x80) or `\u{NNNN}`.
pub fn escape_bytes(bytes: &[u8]) -> String {
    // Printable ASCII but the backslash, which most paths and names are throughout, is copied
    // as it is; the rest goes character by character.
    let plain = bytes
        .iter()
        .position(|&b| !matches!(b, b' '..=b'~') || b == b'\\')
        .unwrap_or(bytes.len());
    let mut out = String::with_capacity(bytes.len());
    // ASCII is UTF-8: the fallback is never taken.
    out.push_str(std::str::from_utf8(&bytes[..plain]).unwrap_or_default());
    for chunk in bytes[plain..].utf8_chunks() {
        for c in chunk.valid().chars() {
            push_char(&mut out, c);
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

fn push_char(out: &mut String, c: char) {
    match c {
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\t' => out.push_str("\\t"),
        '\r' => out.push_str("\\r"),
        c if is_dangerous(c) && (c as u32) < 0x80 => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c if is_dangerous(c) => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
        c => out.push(c),
    }
}

/// Text that is already escaped (or is relwatch's own words around escaped parts) made safe to
/// print: a dangerous character that slipped through becomes its escape, and backslashes are
/// left alone, so an escape already in the text keeps its meaning. One line out, always.
pub fn visible(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if is_dangerous(c) {
            push_char(&mut out, c);
        } else {
            out.push(c);
        }
    }
    out
}

/// Escape an OS string (path, argument) for display.
pub fn escape(s: impl AsRef<OsStr>) -> String {
    escape_bytes(s.as_ref().as_bytes())
}

/// One shell word that reads back as exactly `s`, and that a terminal may show: what every
/// argument of a remedy and every name in a remedy's sentence is written as, because an
/// operator pastes remedies into a root shell.
///
/// - Only `A-Za-z0-9` and `@%+:,./_-` (no `=`, which zsh expands at the start of a word, no
///   `~`, nothing else a shell reads): as it is, so `systemctl restart shop-queue.service`
///   reads as usual.
/// - Else, when every character may reach a terminal: in single quotes, a `'` written `'\''`.
///   Nothing expands inside single quotes, in any shell.
/// - Else (a control or invisible character, invalid UTF-8): ANSI-C quoting `$'...'`, with
///   every such byte, `'` and `!` written `\xNN`, newline, tab and CR as `\n`, `\t`, `\r`,
///   the backslash as `\\` (bash, zsh, ksh, busybox sh and POSIX.1-2024 read it back
///   exactly). The body holds no `'`, so a shell without `$'...'` (dash) reads one word `$...`
///   and runs nothing.
///
/// NUL cannot be in an argument; it is written `\x00` like any control byte.
pub fn shell_word(s: impl AsRef<OsStr>) -> String {
    let bytes = s.as_ref().as_bytes();
    let plain = |b: &u8| b.is_ascii_alphanumeric() || b"@%+:,./_-".contains(b);
    if !bytes.is_empty() && bytes.iter().all(plain) {
        // ASCII is UTF-8: the fallback is never taken.
        return std::str::from_utf8(bytes).unwrap_or_default().to_string();
    }
    match std::str::from_utf8(bytes) {
        Ok(text) if !text.chars().any(is_dangerous) => {
            format!("'{}'", text.replace('\'', r"'\''"))
        }
        _ => ansi_c_quoted(bytes),
    }
}

/// `$'...'`: see [`shell_word`].
fn ansi_c_quoted(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 3);
    out.push_str("$'");
    let hex = |out: &mut String, raw: &[u8]| {
        for b in raw {
            let _ = write!(out, "\\x{b:02x}");
        }
    };
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                '\'' | '!' => hex(&mut out, &[c as u8]),
                c if is_dangerous(c) => hex(&mut out, c.encode_utf8(&mut [0; 4]).as_bytes()),
                c => out.push(c),
            }
        }
        hex(&mut out, chunk.invalid());
    }
    out.push('\'');
    out
}

/// Escape a command line: arguments joined by spaces, each escaped.
pub fn escape_cmdline(args: &[std::ffi::OsString]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&escape(a));
    }
    out
}

/// The backslash escapes relwatch reads back, each where it is written. One decoder
/// ([`unescape_with`]) serves them all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escapes {
    /// What [`escape_bytes`] writes: `\\`, `\n`, `\t`, `\r`, `\xNN`, `\u{N..}`.
    Relwatch,
    /// systemd unit names: `\xNN`, exactly two hex digits (`systemd-escape`).
    Systemd,
    /// `/proc/PID/mountinfo` paths: `\NNN`, three octal digits (space, tab, newline, `\`).
    Octal,
}

impl Escapes {
    /// Decode the escape that starts right after a backslash: push what it stands for onto
    /// `out` and say how many bytes of `after` it used, or `None` when the backslash starts
    /// no escape of this kind (then nothing is pushed).
    fn decode(self, after: &[u8], out: &mut Vec<u8>) -> Option<usize> {
        let hex = |digits: &[u8]| {
            std::str::from_utf8(digits)
                .ok()
                .and_then(|h| u32::from_str_radix(h, 16).ok())
        };
        match (self, after.first()?) {
            (Escapes::Relwatch, b'\\') => out.push(b'\\'),
            (Escapes::Relwatch, b'n') => out.push(b'\n'),
            (Escapes::Relwatch, b't') => out.push(b'\t'),
            (Escapes::Relwatch, b'r') => out.push(b'\r'),
            (Escapes::Relwatch, b'x') => {
                // Up to two digits: at the very end, one is taken.
                let digits = after.get(1..3).unwrap_or(&after[1..]);
                out.push(u8::try_from(hex(digits)?).ok()?);
                return Some(1 + digits.len());
            }
            (Escapes::Relwatch, b'u') => {
                let body = after[1..].strip_prefix(b"{")?;
                // To the closing brace, or to the end when there is none.
                let (digits, used) = match memchr::memchr(b'}', body) {
                    Some(close) => (&body[..close], close + 1),
                    None => (body, body.len()),
                };
                let c = char::from_u32(hex(digits)?)?;
                out.extend_from_slice(c.encode_utf8(&mut [0u8; 4]).as_bytes());
                return Some(2 + used);
            }
            (Escapes::Systemd, b'x') => {
                out.push(u8::try_from(hex(after.get(1..3)?)?).ok()?);
                return Some(3);
            }
            (Escapes::Octal, _) => {
                let digits = after.get(..3)?;
                if !digits.iter().all(|c| (b'0'..=b'7').contains(c)) {
                    return None;
                }
                let value = digits
                    .iter()
                    .fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
                out.push(u8::try_from(value).ok()?);
                return Some(3);
            }
            _ => return None,
        }
        Some(1)
    }
}

/// Undo `escapes` in `s`. A backslash that starts no escape is kept as it is; the flag says
/// whether every backslash started one.
fn unescape_with(s: &[u8], escapes: Escapes) -> (Vec<u8>, bool) {
    let mut out = Vec::with_capacity(s.len());
    let mut rest = s;
    let mut all_known = true;
    while let Some(at) = memchr::memchr(b'\\', rest) {
        out.extend_from_slice(&rest[..at]);
        let after = &rest[at + 1..];
        match escapes.decode(after, &mut out) {
            Some(used) => rest = &after[used..],
            None => {
                all_known = false;
                out.push(b'\\');
                rest = after;
            }
        }
    }
    out.extend_from_slice(rest);
    (out, all_known)
}

/// Reverse [`escape_bytes`]. Returns `None` on text that `escape_bytes` cannot produce.
pub fn unescape(s: &str) -> Option<Vec<u8>> {
    match unescape_with(s.as_bytes(), Escapes::Relwatch) {
        (bytes, true) => Some(bytes),
        (_, false) => None,
    }
}

/// Decode systemd's `\xNN` escapes in a unit name (`systemd-escape --unescape`); a backslash
/// that starts no such escape is kept.
pub fn unescape_systemd(name: &[u8]) -> Vec<u8> {
    unescape_with(name, Escapes::Systemd).0
}

/// Undo the `\NNN` octal escapes of a path in `/proc/PID/mountinfo`; a backslash that starts
/// no such escape is kept.
pub fn unescape_octal(path: &[u8]) -> Vec<u8> {
    unescape_with(path, Escapes::Octal).0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_unchanged() {
        assert_eq!(
            escape_bytes(b"/srv/app/releases/65"),
            "/srv/app/releases/65"
        );
        assert_eq!(
            escape_bytes("café ünïcode 日本".as_bytes()),
            "café ünïcode 日本"
        );
        assert_eq!(escape_bytes(b"7 (deleted)"), "7 (deleted)");
    }

    #[test]
    fn terminal_attacks_are_neutralised() {
        assert_eq!(
            escape_bytes(b"\x1b[2J\x1b]0;pwned\x07"),
            "\\x1b[2J\\x1b]0;pwned\\x07"
        );
        assert_eq!(escape_bytes(b"ok\rFAKE\n"), "ok\\rFAKE\\n");
        assert_eq!(escape_bytes(b"\x7f"), "\\x7f");
        assert_eq!(escape("\u{9b}31m"), "\\u{9b}31m"); // C1 CSI
        assert_eq!(escape("evil\u{202e}gpj.exe"), "evil\\u{202e}gpj.exe");
        assert_eq!(
            escape("a\u{200b}b\u{feff}c\u{2066}"),
            "a\\u{200b}b\\u{feff}c\\u{2066}"
        );
        // Invisible or blank in most fonts: a name could hide a character or look like another.
        for c in [
            '\u{ad}', '\u{34f}', '\u{115f}', '\u{180e}', '\u{206a}', '\u{206f}', '\u{3164}',
            '\u{fe0f}', '\u{ffa0}',
        ] {
            assert_eq!(
                escape(format!("a{c}b")),
                format!("a\\u{{{:x}}}b", u32::from(c))
            );
        }
    }

    #[test]
    fn the_plain_prefix_is_escaped_like_the_rest() {
        // Character by character only, as before the plain prefix was copied whole.
        let slow = |bytes: &[u8]| {
            let mut out = String::new();
            for chunk in bytes.utf8_chunks() {
                chunk.valid().chars().for_each(|c| push_char(&mut out, c));
                for b in chunk.invalid() {
                    let _ = write!(out, "\\x{b:02x}");
                }
            }
            out
        };
        let mut samples: Vec<Vec<u8>> = vec![b"/srv/app/releases/65 (deleted)".to_vec()];
        for tail in [
            &b"\\"[..],
            b"\x1b[31m",
            b"\xff",
            b"\n",
            b"~\x7f",
            "\u{202e}é".as_bytes(),
        ] {
            for head in [&b""[..], b"/srv/app", b" ~!"] {
                samples.push([head, tail, head].concat());
            }
        }
        for s in &samples {
            assert_eq!(escape_bytes(s), slow(s), "{s:?}");
        }
    }

    #[test]
    fn invalid_utf8_becomes_hex() {
        assert_eq!(escape_bytes(b"r\xff\xfe"), "r\\xff\\xfe");
        assert_eq!(escape_bytes(b"\xe2\x82"), "\\xe2\\x82"); // truncated sequence
    }

    #[test]
    fn backslash_keeps_it_reversible() {
        let nasty: &[&[u8]] = &[
            b"\\x1b",
            b"a\\nb\n",
            b"\xff\\xff",
            "\u{202e}\\u{202e}".as_bytes(),
            b"",
            b"\\",
        ];
        for n in nasty {
            let e = escape_bytes(n);
            assert!(!e.chars().any(is_dangerous), "{e:?}");
            assert_eq!(unescape(&e).as_deref(), Some(*n), "{e:?}");
        }
    }

    #[test]
    fn every_byte_round_trips() {
        let all: Vec<u8> = (0..=255u8).collect();
        let e = escape_bytes(&all);
        assert!(!e.chars().any(is_dangerous));
        assert_eq!(unescape(&e).unwrap(), all);
    }

    #[test]
    fn systemd_and_octal_escapes_decode_and_bad_ones_are_kept() {
        let systemd: [(&[u8], &[u8]); 4] = [
            (br"a\x2db", b"a-b"),
            (br"a\xzz\x", br"a\xzz\x"),
            (br"\x2", br"\x2"),
            (br"\n\\", br"\n\\"),
        ];
        for (escaped, raw) in systemd {
            assert_eq!(unescape_systemd(escaped), raw, "{escaped:?}");
        }
        let octal: [(&[u8], &[u8]); 4] = [
            (br"/mnt/my\040cgroups", b"/mnt/my cgroups"),
            (br"a\0", br"a\0"),
            (br"\777x", br"\777x"),
            (br"\134", br"\"),
        ];
        for (escaped, raw) in octal {
            assert_eq!(unescape_octal(escaped), raw, "{escaped:?}");
        }
    }

    #[test]
    fn relwatch_escapes_refuse_what_escape_bytes_never_writes() {
        for bad in ["\\", "\\q", "\\xzz", "\\u41", "\\u{110000}", "\\u{zz}"] {
            assert_eq!(unescape(bad), None, "{bad:?}");
        }
        // Lenient where the reverse always was: one digit at the end, no closing brace.
        assert_eq!(unescape("\\xa").as_deref(), Some(&b"\n"[..]));
        assert_eq!(unescape("\\u{41").as_deref(), Some(&b"A"[..]));
    }
}
