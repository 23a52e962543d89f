//! Errors about a workflow file, told the way a compiler tells them.
//!
//! Every problem found in a file becomes a [`Diagnostic`]: what is wrong, where (file, line,
//! column and the key path), and a hint when the user can act on it. Loading and checking
//! collect all of them, so one run of `weft validate` shows every error of a file at once.

use std::fmt::{self, Write as _};

use serde::Serialize;

/// The kinds of problems a workflow file can have.
///
/// The kind is part of the JSON output (`weft validate --format json`), so editors and CI can
/// match on it; its names never change within a format version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// The file could not be read: missing, a directory, too large, not UTF-8.
    Read,
    /// The file is not well-formed YAML, or breaks a limit (depth, aliases, documents).
    Syntax,
    /// The file holds no document.
    Empty,
    /// A mapping key that the format does not know.
    UnknownKey,
    /// A required key is absent.
    MissingKey,
    /// A key given twice in one mapping.
    DuplicateKey,
    /// A value of the wrong type or out of range.
    InvalidValue,
    /// A duration that does not parse.
    InvalidDuration,
    /// A `version` this build does not read.
    UnsupportedVersion,
    /// `stages` is absent or empty.
    NoStages,
    /// A stage id that does not match `^[a-z][a-z0-9_]*$`.
    InvalidStageId,
    /// A reference to a stage that does not exist.
    UnknownStage,
    /// A stage that depends on itself.
    SelfDependency,
    /// Stages that depend on each other in a loop.
    Cycle,
    /// An expression that does not parse, or reads a name that does not exist.
    InvalidExpression,
    /// A reference to an input that is not declared.
    UnknownInput,
    /// `output` read on a fan-out stage, `outputs` on a single job, or fan-out keys misused.
    FanOutMisuse,
    /// A stage names a plugin that was not found, or one that two files declare.
    UnknownPlugin,
    /// A stage names a job its plugin does not have.
    UnknownJob,
    /// A plugin's version is outside the range the workflow asks for.
    PluginVersion,
    /// A literal `with` value breaks the job's input schema.
    InvalidJobInput,
}

/// One problem in a workflow file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// The file, as the user named it.
    pub file: String,
    /// 1-based line, when the position is known.
    pub line: Option<u32>,
    /// 1-based column (in characters), when the position is known.
    pub column: Option<u32>,
    /// The key path, such as `stages.count.retry.attempts`; empty for the whole file.
    pub path: String,
    /// What is wrong: a lowercase fragment, identifiers in backticks.
    pub message: String,
    /// What the user can do about it.
    pub hint: Option<String>,
    /// The kind of problem.
    pub kind: Kind,
    /// How many characters the caret under the source line spans.
    #[serde(skip)]
    pub width: u32,
}

impl Diagnostic {
    /// A diagnostic of `kind` about the whole of `file`, without a position yet.
    pub fn new(kind: Kind, file: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            file: file.into(),
            line: None,
            column: None,
            path: String::new(),
            message: message.into(),
            hint: None,
            kind,
            width: 1,
        }
    }

    /// Sets the key path.
    #[must_use]
    pub fn at_path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// Sets the position: 1-based line and column, and the width of the caret.
    #[must_use]
    pub fn at(mut self, line: usize, column: usize, width: usize) -> Self {
        let narrow = |value: usize| u32::try_from(value).unwrap_or(u32::MAX);
        self.line = Some(narrow(line));
        self.column = Some(narrow(column));
        self.width = narrow(width.max(1));
        self
    }

    /// Sets the hint.
    #[must_use]
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Sets the hint when there is one.
    #[must_use]
    pub fn with_hint_opt(mut self, hint: Option<String>) -> Self {
        self.hint = hint.or(self.hint);
        self
    }

    /// The order in which diagnostics of one file are shown: by position, then path.
    pub fn sort_key(&self) -> (u32, u32, &str, &str) {
        (
            self.line.unwrap_or(0),
            self.column.unwrap_or(0),
            &self.path,
            &self.message,
        )
    }

    /// Renders the diagnostic for a terminal, quoting the source line when `source` is given.
    pub fn render(&self, source: Option<&str>) -> String {
        let line = self.line.and_then(|line| {
            let text = source?.lines().nth((line as usize).checked_sub(1)?)?;
            Some(text)
        });
        self.render_line(line)
    }

    /// Renders the diagnostic with `text` as the text of its line.
    fn render_line(&self, text: Option<&str>) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "error: {}", self.message);

        let location = match (self.line, self.column) {
            (Some(line), Some(column)) => format!("{}:{line}:{column}", self.file),
            _ => self.file.clone(),
        };
        let snippet = self
            .line
            .zip(self.column)
            .zip(text)
            .map(|((line, column), text)| (line as usize, column as usize, text));

        let gutter = snippet.map_or(1, |(line, _, _)| line.to_string().len());
        let pad = " ".repeat(gutter);
        let _ = writeln!(out, "{pad} --> {location}");
        if let Some((line, column, text)) = snippet {
            let (text, column) = window(text.trim_end(), column);
            let caret_pad = " ".repeat(column.saturating_sub(1));
            let available = text.chars().count().saturating_sub(column - 1).max(1);
            let carets = "^".repeat((self.width as usize).min(available));
            let _ = writeln!(out, "{pad} |");
            let _ = writeln!(out, "{line} | {text}");
            let _ = writeln!(out, "{pad} | {caret_pad}{carets}");
        }
        if !self.path.is_empty() {
            let _ = writeln!(out, "{pad} = at: {}", self.path);
        }
        if let Some(hint) = &self.hint {
            let _ = writeln!(out, "{pad} = hint: {hint}");
        }
        out
    }
}

/// The widest source line quoted whole; longer ones are cut around the column.
const MAX_QUOTED: usize = 120;

/// Cuts a long line to [`MAX_QUOTED`] characters around `column` (1-based), marking the cuts
/// with `...`; returns the text and the column within it.
fn window(text: &str, column: usize) -> (String, usize) {
    let length = text.chars().count();
    if length <= MAX_QUOTED {
        return (text.to_owned(), column);
    }
    let start = column
        .saturating_sub(1)
        .saturating_sub(MAX_QUOTED / 3)
        .min(length);
    let end = (start + MAX_QUOTED).min(length);
    let mut cut: String = text.chars().skip(start).take(end - start).collect();
    let mut column = column - start;
    if start > 0 {
        cut.insert_str(0, "...");
        column += 3;
    }
    if end < length {
        cut.push_str("...");
    }
    (cut, column)
}

/// Renders many diagnostics of one source, reading the source's lines once.
pub fn render_all(diagnostics: &[Diagnostic], source: Option<&str>) -> String {
    let lines: Vec<&str> = source
        .map(|source| source.lines().collect())
        .unwrap_or_default();
    let mut out = String::new();
    for diagnostic in diagnostics {
        let text = diagnostic
            .line
            .and_then(|line| lines.get((line as usize).checked_sub(1)?).copied());
        out.push_str(&diagnostic.render_line(text));
        out.push('\n');
    }
    out
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(None))
    }
}

impl std::error::Error for Diagnostic {}

/// Sorts diagnostics into the order they are shown, and drops exact repeats.
pub fn sort(diagnostics: &mut Vec<Diagnostic>) {
    diagnostics.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    diagnostics.dedup();
}

/// The candidate closest to `word`, if one is close enough to be a likely typo.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|candidate| (strsim::jaro_winkler(word, candidate), candidate))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| candidate)
}

/// "did you mean `x`?" for the closest candidate, if any.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    closest(word, candidates).map(|candidate| format!("did you mean `{candidate}`?"))
}

/// A list of names for a hint: "`a`, `b` or `c`".
pub fn one_of<S: AsRef<str>>(names: &[S]) -> String {
    let quoted: Vec<String> = names
        .iter()
        .map(|name| format!("`{}`", name.as_ref()))
        .collect();
    match quoted.as_slice() {
        [] => "nothing".to_owned(),
        [only] => only.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_quotes_the_line_and_points_at_the_column() {
        let diagnostic = Diagnostic::new(Kind::UnknownKey, "wf.yaml", "unknown key `neds`")
            .at_path("stages.count.neds")
            .at(3, 5, 4)
            .with_hint("did you mean `needs`?");
        let source = "stages:\n  count:\n    neds: [a]\n";

        let rendered = diagnostic.render(Some(source));

        assert_eq!(
            rendered,
            "error: unknown key `neds`\n  --> wf.yaml:3:5\n  |\n3 |     neds: [a]\n  |     ^^^^\n  = at: stages.count.neds\n  = hint: did you mean `needs`?\n"
        );
    }

    #[test]
    fn render_without_position_names_the_file_alone() {
        let diagnostic = Diagnostic::new(Kind::Empty, "wf.yaml", "the file is empty");

        assert_eq!(
            diagnostic.render(None),
            "error: the file is empty\n  --> wf.yaml\n"
        );
    }

    #[test]
    fn long_lines_are_quoted_around_the_column() {
        let line = format!("{}x{}", "a".repeat(500), "b".repeat(500));
        let diagnostic = Diagnostic::new(Kind::Syntax, "wf.yaml", "bad").at(1, 501, 1);

        let rendered = diagnostic.render(Some(&line));

        let quoted = rendered.lines().nth(3).unwrap();
        let carets = rendered.lines().nth(4).unwrap();
        assert!(quoted.len() < 140, "{quoted}");
        assert_eq!(quoted.find('x'), carets.find('^'));
    }

    #[test]
    fn closest_finds_typos_and_ignores_unrelated_words() {
        assert_eq!(closest("neds", ["job", "needs", "with"]), Some("needs"));
        assert_eq!(closest("zzz", ["job", "needs", "with"]), None);
    }

    #[test]
    fn one_of_joins_names_with_or() {
        assert_eq!(one_of(&["a", "b", "c"]), "`a`, `b` or `c`");
        assert_eq!(one_of(&["a"]), "`a`");
    }
}
