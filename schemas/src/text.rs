//! Showing untrusted text (user names, host names, command lines) safely.

/// Escapes control characters so that a listing cannot be used to drive the auditor's
/// terminal: `\e`, `\n`, `\t` and `\u{..}` forms replace them.
pub fn escape_controls(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x1b' => out.push_str("\\e"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_terminal_controls() {
        assert_eq!(
            super::escape_controls("a\x1b[2Jb\n\u{9b}"),
            "a\\e[2Jb\\n\\u{9b}"
        );
        assert_eq!(super::escape_controls("żółć 🦀"), "żółć 🦀");
    }
}
