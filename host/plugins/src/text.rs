//! Text that comes from a plugin (log lines, stdout/stderr, error messages,
//! names, versions, descriptions) made safe for a terminal and a log file:
//! control characters (C0, DEL, C1, so also `\n`, `\r` and ANSI escapes)
//! and the Unicode bidirectional overrides are shown escaped, so a plugin
//! can neither forge a log line nor repaint the user's screen; overlong
//! text is cut.

use std::borrow::Cow;

/// Longest plugin text kept in one message, in bytes.
pub const MAX_TEXT: usize = 8 * 1024;

fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every control or bidi character escaped (`\n`, `\u{1b}`)
/// and cut to [`MAX_TEXT`] bytes (marked with `…`).
pub fn escape(text: &str) -> Cow<'_, str> {
    if text.len() <= MAX_TEXT && !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len().min(MAX_TEXT) + 16);
    for c in text.chars() {
        if out.len() >= MAX_TEXT {
            out.push('…');
            break;
        }
        if needs_escape(c) {
            match c {
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\0' => out.push_str("\\0"),
                c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Longest name (file name, key, path) quoted whole in a message.
pub const MAX_QUOTED: usize = 160;

/// [`escape`]d and cut to [`MAX_QUOTED`] bytes, marked with how long it
/// was: for a name quoted inside a message, so a hostile or broken value
/// of a megabyte still gives a readable line.
pub fn quote(text: &str) -> String {
    let escaped = escape(text);
    if escaped.len() <= MAX_QUOTED {
        return escaped.into_owned();
    }
    let mut end = MAX_QUOTED;
    while !escaped.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &escaped[..end], text.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_quoted_names_are_cut_with_their_length() {
        assert_eq!(quote("short\n"), "short\\n");
        let long = "é".repeat(500_000);
        let quoted = quote(&long);
        assert!(quoted.len() < MAX_QUOTED + 32, "{}", quoted.len());
        assert!(quoted.ends_with("… (1000000 bytes)"), "{quoted}");
    }

    #[test]
    fn controls_and_bidi_are_escaped() {
        assert_eq!(escape("plain text ü"), "plain text ü");
        assert_eq!(escape("a\nb\rc"), "a\\nb\\rc");
        assert_eq!(escape("\u{1b}[2J"), "\\u{1b}[2J");
        assert_eq!(escape("x\u{9b}y"), "x\\u{9b}y");
        assert_eq!(escape("x\u{202e}y"), "x\\u{202e}y");
        assert_eq!(escape("t\tx\0"), "t\\tx\\0");
        for s in ["a\nb", "\u{1b}[31m", "\u{85}", "\u{2066}", "\u{7f}"] {
            assert!(!escape(s).chars().any(needs_escape), "{s:?}");
        }
    }

    #[test]
    fn long_text_is_cut() {
        let long = "x".repeat(MAX_TEXT * 4);
        let cut = escape(&long);
        assert!(cut.len() <= MAX_TEXT + 4);
        assert!(cut.ends_with('…'));
        let controls = "\n".repeat(MAX_TEXT);
        assert!(escape(&controls).len() <= MAX_TEXT + 8);
    }
}
