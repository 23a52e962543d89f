//! Expressions: `${{ ... }}` inside strings, in MiniJinja's expression language.
//!
//! Only `${{ ... }}` is special: a plain `{{` in a string (a shell argument, say) stays as it
//! is, so strings are split here rather than rendered as MiniJinja templates. A string that is
//! one expression and nothing else keeps the expression's JSON type when it is evaluated;
//! inside a longer string the value is rendered as text.

use std::collections::BTreeSet;

use minijinja::{Environment, UndefinedBehavior};

/// One piece of a string: literal text or the source of an expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    /// Text kept as it is.
    Text(&'a str),
    /// The source between `${{` and `}}`, trimmed.
    Expr(&'a str),
}

/// A `${{` without its closing `}}`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`${{{{` at byte {offset} is never closed with `}}}}`")]
pub struct UnclosedExpression {
    /// Byte offset of the `${{` in the string.
    pub offset: usize,
}

/// Splits a string into text and expressions.
///
/// The closing `}}` is the first one outside a quoted string literal, so `${{ "}}" }}` is one
/// expression.
pub fn split(text: &str) -> Result<Vec<Piece<'_>>, UnclosedExpression> {
    let mut pieces = Vec::new();
    let mut rest = text;
    let mut consumed = 0;

    while let Some(start) = rest.find("${{") {
        if start > 0 {
            pieces.push(Piece::Text(&rest[..start]));
        }
        let body_start = start + 3;
        let Some(length) = closing(&rest[body_start..]) else {
            return Err(UnclosedExpression {
                offset: consumed + start,
            });
        };
        pieces.push(Piece::Expr(rest[body_start..body_start + length].trim()));
        let next = body_start + length + 2;
        consumed += next;
        rest = &rest[next..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest));
    }
    Ok(pieces)
}

/// The length of an expression body up to its closing `}}`.
fn closing(body: &str) -> Option<usize> {
    let bytes = body.as_bytes();
    let mut quote = None;
    let mut at = 0;
    while at < bytes.len() {
        let byte = bytes[at];
        match quote {
            Some(_) if byte == b'\\' => at += 1,
            Some(open) if byte == open => quote = None,
            Some(_) => {}
            None if byte == b'"' || byte == b'\'' => quote = Some(byte),
            None if byte == b'}' && bytes.get(at + 1) == Some(&b'}') => return Some(at),
            None => {}
        }
        at += 1;
    }
    None
}

/// Whether the string holds `${{` at all.
pub fn has_expression(text: &str) -> bool {
    text.contains("${{")
}

/// The expression of a string that is exactly one `${{ ... }}` (spaces around allowed).
pub fn whole(text: &str) -> Option<&str> {
    match split(text.trim()) {
        Ok(pieces) => match pieces.as_slice() {
            [Piece::Expr(source)] => Some(source),
            _ => None,
        },
        Err(_) => None,
    }
}

/// The MiniJinja environment expressions are checked and evaluated in: undefined names are
/// errors, never silent empty values.
pub fn environment() -> Environment<'static> {
    let mut environment = Environment::new();
    environment.set_undefined_behavior(UndefinedBehavior::Strict);
    environment
}

/// A compiled expression's problem.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct SyntaxError {
    /// What the parser said, lowercase.
    pub detail: String,
}

/// The names an expression reads, each as its chain of attributes:
/// `stages.count.outputs | length` reads `["stages", "count", "outputs"]`.
///
/// A subscript ends the chain (`stages['count']` reads `["stages"]`), which is how dynamic
/// stage references are found.
pub fn names(
    environment: &Environment<'_>,
    source: &str,
) -> Result<BTreeSet<Vec<String>>, SyntaxError> {
    let expression = environment
        .compile_expression(source)
        .map_err(|error| SyntaxError {
            detail: error
                .detail()
                .map_or_else(|| error.to_string(), str::to_owned),
        })?;
    Ok(expression
        .undeclared_variables(true)
        .into_iter()
        .map(|name| name.split('.').map(str::to_owned).collect())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_keeps_text_and_expressions_in_order() {
        let pieces = split("counted ${{ a | length }} files in ${{b}}").unwrap();

        assert_eq!(
            pieces,
            vec![
                Piece::Text("counted "),
                Piece::Expr("a | length"),
                Piece::Text(" files in "),
                Piece::Expr("b"),
            ]
        );
    }

    #[test]
    fn plain_double_braces_stay_literal() {
        assert_eq!(
            split("awk '{{print}}'").unwrap(),
            vec![Piece::Text("awk '{{print}}'")]
        );
        assert!(!has_expression("{{ not.one }}"));
    }

    #[test]
    fn closing_braces_inside_a_string_literal_do_not_end_the_expression() {
        assert_eq!(
            split(r#"${{ "}}" ~ x }}"#).unwrap(),
            vec![Piece::Expr(r#""}}" ~ x"#)]
        );
    }

    #[test]
    fn an_unclosed_expression_is_an_error_with_its_offset() {
        assert_eq!(
            split("ab ${{ x").unwrap_err(),
            UnclosedExpression { offset: 3 }
        );
    }

    #[test]
    fn whole_recognises_a_lone_expression() {
        assert_eq!(whole("  ${{ inputs.dir }} "), Some("inputs.dir"));
        assert_eq!(whole("dir: ${{ inputs.dir }}"), None);
    }

    #[test]
    fn names_follow_attribute_chains_and_stop_at_subscripts() {
        let environment = environment();

        let found = names(
            &environment,
            "stages.a.outputs | map(attribute='x') | sum + stages['b'].output",
        )
        .unwrap();

        let found: Vec<String> = found.iter().map(|name| name.join(".")).collect();
        assert_eq!(found, vec!["stages", "stages.a.outputs"]);
    }

    #[test]
    fn names_reports_syntax_errors() {
        let error = names(&environment(), "1 +").unwrap_err();
        assert_eq!(error.detail, "unexpected end of input, expected expression");
    }
}
