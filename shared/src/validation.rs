//! Input that is well-formed but breaks a rule: reported with the field it concerns.

/// A rule broken by one field of a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    /// The request field at fault, as the client spelled it.
    pub field: &'static str,
    /// A stable snake_case code such as `invalid_email`.
    pub code: &'static str,
    /// A sentence a person can act on.
    pub message: String,
}

impl ValidationError {
    /// A broken rule on `field`.
    pub fn new(field: &'static str, code: &'static str, message: impl Into<String>) -> Self {
        Self { field, code, message: message.into() }
    }
}

/// [`refuse_control_chars`] on a single line, as the ECMA-262 pattern the OpenAPI document states.
pub const LINE_PATTERN: &str = "^[^\\x00-\\x1F\\x7F-\\x9F]*$";

/// [`refuse_control_chars`] on `multiline` text, as an ECMA-262 pattern.
pub const MULTILINE_PATTERN: &str = "^[^\\x00-\\x08\\x0B\\x0C\\x0E-\\x1F\\x7F-\\x9F]*$";

/// Multiline text that is not blank (`talk::text`): some character that is neither whitespace
/// nor a control character, as an ECMA-262 pattern.
pub const WRITTEN_TEXT_PATTERN: &str = "^[^\\x00-\\x08\\x0B\\x0C\\x0E-\\x1F\\x7F-\\x9F]*[^\\x00-\\x20\\x7F-\\xA0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000][^\\x00-\\x08\\x0B\\x0C\\x0E-\\x1F\\x7F-\\x9F]*$";

/// Refuses control characters (PostgreSQL cannot store NUL, and the rest have no business in names,
/// titles or searches); `multiline` text may keep tabs and line breaks.
pub fn refuse_control_chars(field: &'static str, text: &str, multiline: bool) -> Result<(), ValidationError> {
    let allowed = |c: char| multiline && matches!(c, '\n' | '\r' | '\t');
    match text.chars().any(|c| c.is_control() && !allowed(c)) {
        true => Err(ValidationError::new(
            field,
            "control_character",
            format!("{field} must not contain control characters"),
        )),
        false => Ok(()),
    }
}

/// Characters that take no visible space: zero-width spaces and joiners, bidirectional marks,
/// embeddings, overrides and isolates, the byte-order mark, the soft hyphen.
pub fn is_invisible(c: char) -> bool {
    matches!(c, '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// Bidirectional embeddings, overrides and isolates, which can make text read differently from
/// what it says (`\u{202E}` turns "txt.exe" around).
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_refused_naming_the_field() {
        let err = refuse_control_chars("title", "a\0b", false).unwrap_err();
        assert_eq!((err.field, err.code), ("title", "control_character"));
        assert!(refuse_control_chars("title", "line\nbreak", false).is_err());
        assert!(refuse_control_chars("description", "line\nbreak\ttab", true).is_ok());
        assert!(refuse_control_chars("description", "bell\u{7}", true).is_err());
        assert!(refuse_control_chars("q", "자전거 bike", false).is_ok());
    }

    #[test]
    fn the_documented_patterns_are_the_rules() {
        let [line, multiline, written] =
            [LINE_PATTERN, MULTILINE_PATTERN, WRITTEN_TEXT_PATTERN].map(|p| regex::Regex::new(p).unwrap());
        let samples =
            ["", " ", "word", "a\tb", "two\nlines", "\r\n", "\0", "bell\u{7}", "\u{85}", "\u{a0}x", "\u{3000}"];
        for text in samples {
            assert_eq!(refuse_control_chars("f", text, false).is_ok(), line.is_match(text), "line {text:?}");
            assert_eq!(refuse_control_chars("f", text, true).is_ok(), multiline.is_match(text), "multiline {text:?}");
            let written_ok = crate::talk::text("f", text, 100).is_ok();
            assert_eq!(written_ok, written.is_match(text), "written {text:?}");
        }
    }

    #[test]
    fn invisible_and_bidi_characters_are_recognised() {
        assert!("\u{200B}\u{202E}\u{FEFF}".chars().all(is_invisible));
        assert!(!"a 가".chars().any(is_invisible));
        assert!(is_bidi_control('\u{202E}') && !is_bidi_control('a'));
    }
}
