//! Errors that point into the file: `path:line:column: message`.

use std::fmt;
use std::ops::Range;

/// One problem in a configuration file. `line` and `column` are 1-based;
/// the column counts characters, as editors do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.path, self.line, self.column, self.message
        )
    }
}

impl std::error::Error for ConfigError {}

/// The 1-based line and column of byte offset `at` in `text`.
pub fn line_col(text: &str, at: usize) -> (usize, usize) {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = text[line_start..at].chars().count() + 1;
    (line, column)
}

/// Collects errors for one file.
pub(crate) struct Errors<'a> {
    text: &'a str,
    path: &'a str,
    pub(crate) list: Vec<ConfigError>,
}

impl<'a> Errors<'a> {
    pub(crate) fn new(text: &'a str, path: &'a str) -> Errors<'a> {
        Errors {
            text,
            path,
            list: Vec::new(),
        }
    }

    pub(crate) fn at(&mut self, span: &Range<usize>, message: impl Into<String>) {
        let (line, column) = line_col(self.text, span.start);
        self.list.push(ConfigError {
            path: self.path.to_string(),
            line,
            column,
            message: message.into(),
        });
    }

    /// The line a span starts on (for "first declared at line N").
    pub(crate) fn line_of(&self, span: &Range<usize>) -> usize {
        line_col(self.text, span.start).0
    }

    /// The errors in file order, each position reported once per message.
    pub(crate) fn finish(mut self) -> Vec<ConfigError> {
        self.list.sort_by_key(|e| (e.line, e.column));
        self.list.dedup();
        self.list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_columns_are_one_based_and_count_characters() {
        let t = "ab\ncdé\nx";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 1), (1, 2));
        assert_eq!(line_col(t, 3), (2, 1));
        // 'é' is two bytes: the 'x' after the newline is still column 1,
        // and the newline itself is column 4 of line 2.
        assert_eq!(line_col(t, 7), (2, 4));
        assert_eq!(line_col(t, 8), (3, 1));
        assert_eq!(line_col(t, 100), (3, 2));
    }

    #[test]
    fn display_is_path_line_column_message() {
        let e = ConfigError {
            path: "rvs.toml".into(),
            line: 12,
            column: 7,
            message: "weight must be 0..=2147483647".into(),
        };
        assert_eq!(
            e.to_string(),
            "rvs.toml:12:7: weight must be 0..=2147483647"
        );
    }
}
