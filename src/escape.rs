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
/// controls, zero-width and other invisible formatting characters.
pub fn is_dangerous(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}'
        | '\u{200b}'..='\u{200f}'   // zero-width space/joiners, LRM, RLM
        | '\u{2028}' | '\u{2029}'   // line and paragraph separators
        | '\u{202a}'..='\u{202e}'   // bidi embeddings and overrides
        | '\u{2060}'..='\u{2064}'   // word joiner, invisible operators
        | '\u{2066}'..='\u{2069}'   // bidi isolates
        | '\u{061c}'                // arabic letter mark
        | '\u{feff}'                // zero-width no-break space / BOM
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

/// Escape an OS string (path, argument) for display.
pub fn escape(s: impl AsRef<OsStr>) -> String {
    escape_bytes(s.as_ref().as_bytes())
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

/// Reverse [`escape_bytes`]. Returns `None` on text that `escape_bytes` cannot produce.
pub fn unescape(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        match chars.next()? {
            '\\' => out.push(b'\\'),
            'n' => out.push(b'\n'),
            't' => out.push(b'\t'),
            'r' => out.push(b'\r'),
            'x' => {
                let hex: String = chars.by_ref().take(2).collect();
                out.push(u8::from_str_radix(&hex, 16).ok()?);
            }
            'u' => {
                if chars.next()? != '{' {
                    return None;
                }
                let hex: String = chars.by_ref().take_while(|&c| c != '}').collect();
                let c = char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
            _ => return None,
        }
    }
    Some(out)
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
}
