//! What free text a person types may hold: no control characters (but
//! tab and newline where text runs over lines) and no characters that
//! show nothing (zero-width, bidi controls, tags), which would let two
//! strings that look the same differ, or hide what a string says.

/// Whether `c` is drawn as nothing: Unicode's default-ignorable code
/// points (zero-width spaces and joiners, bidi controls, invisible
/// operators, variation selectors, tags, fillers).
pub fn invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFF8}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

/// The first character of `text` that a one-line identity field (an
/// e-mail address, a name) must not hold: a control or invisible one.
pub fn hidden_in_line(text: &str) -> Option<char> {
    text.chars().find(|&c| c.is_control() || invisible(c))
}

/// The first character of `text` that stored free text (a description, a
/// reason) must not hold: a control character other than tab, newline
/// and carriage return, or an invisible one.
pub fn hidden_in_text(text: &str) -> Option<char> {
    text.chars()
        .find(|&c| (c.is_control() && !matches!(c, '\t' | '\n' | '\r')) || invisible(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_invisibles_are_found_and_plain_text_passes() {
        for plain in ["Ada Lovelace", "café", "日本語", "a-b_c.d@example.com"] {
            assert_eq!(hidden_in_line(plain), None, "{plain}");
        }
        for (text, hidden) in [
            ("ad\u{200B}a", '\u{200B}'),
            ("ada\u{202E}moc", '\u{202E}'),
            ("nul\0", '\0'),
            ("tag\u{E0041}", '\u{E0041}'),
            ("bom\u{FEFF}", '\u{FEFF}'),
        ] {
            assert_eq!(hidden_in_line(text), Some(hidden), "{text:?}");
            assert_eq!(hidden_in_text(text), Some(hidden), "{text:?}");
        }
        assert_eq!(hidden_in_line("two\nlines"), Some('\n'));
        assert_eq!(hidden_in_text("two\nlines\tand a tab\r\n"), None);
        assert_eq!(hidden_in_text("bell\u{7}"), Some('\u{7}'));
    }
}
