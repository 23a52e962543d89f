//! Resolving a run's inputs: the `-i NAME=VALUE` flags of `weft run`, checked against the
//! inputs the workflow declares, with defaults for the rest.
//!
//! A `string` input takes VALUE as it is; any other type parses VALUE as a YAML flow value
//! (`-i n=5`, `-i tags=[a,b]`, `-i opts={x: 1}`). For every type, `@path` reads the file at
//! `path` as JSON, and `@@text` stands for the literal text `@text`. The same NAME given
//! twice keeps the last value, as most command-line tools do.
//!
//! Every problem is reported at once: unknown names, values of the wrong type, values outside
//! `enum`, and required inputs not given.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde_json::{Map, Value};

use crate::diagnostic::{did_you_mean, one_of};
use crate::model::{Input, InputType, type_name};
use crate::yaml;

/// The longest value quoted whole in a message, in characters.
const MAX_QUOTED: usize = 60;

/// A problem with the inputs given to a run.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum InputError {
    /// A NAME the workflow does not declare.
    #[error("unknown input `{name}`")]
    Unknown {
        /// The name given.
        name: String,
        /// The inputs the workflow declares, in file order.
        known: Vec<String>,
    },

    /// A VALUE that does not parse as YAML.
    #[error("input `{name}` has an invalid value: {detail}")]
    Syntax {
        /// The input.
        name: String,
        /// What the parser said.
        detail: String,
    },

    /// An `@path` whose file cannot be read.
    #[error("cannot read `{}` for input `{name}`: {reason}", path.display())]
    Read {
        /// The input.
        name: String,
        /// The file.
        path: PathBuf,
        /// Why it cannot be read.
        reason: String,
    },

    /// An `@path` whose file is not JSON.
    #[error("the file `{}` for input `{name}` is not JSON: {detail}", path.display())]
    NotJson {
        /// The input.
        name: String,
        /// The file.
        path: PathBuf,
        /// What the JSON parser said.
        detail: String,
    },

    /// A value of the wrong type.
    #[error("input `{name}` must be {}, got {}", article(.expected.name()), describe(.found))]
    WrongType {
        /// The input.
        name: String,
        /// The declared type.
        expected: InputType,
        /// The value given.
        found: Value,
    },

    /// A value outside the input's `enum`.
    #[error("input `{name}` must be {}, got `{}`", allowed_list(.allowed), quote(.found))]
    NotAllowed {
        /// The input.
        name: String,
        /// The value given.
        found: Value,
        /// The values allowed.
        allowed: Vec<Value>,
    },

    /// A required input (one without a default) that was not given.
    #[error("missing required input `{name}`")]
    Missing {
        /// The input.
        name: String,
        /// Its declared type.
        ty: InputType,
    },
}

impl InputError {
    /// What the user can do about the error, when there is something to say.
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::Unknown { name, known } => Some(
                did_you_mean(name, known.iter().map(String::as_str)).unwrap_or_else(|| {
                    if known.is_empty() {
                        "the workflow declares no inputs".to_owned()
                    } else {
                        format!("the inputs are {}", one_of(known))
                    }
                }),
            ),
            Self::Syntax { name, .. } => Some(format!(
                "write a YAML value, such as `-i {name}=5`, `-i {name}=[a,b]` or `-i {name}='{{x: 1}}'`"
            )),
            Self::NotJson { .. } => {
                Some("a file given with `@path` holds one JSON value".to_owned())
            }
            Self::WrongType {
                name,
                expected,
                found,
            } => Some(type_hint(name, *expected, found)),
            Self::NotAllowed { found, allowed, .. } => {
                let allowed: Vec<&str> = allowed.iter().filter_map(Value::as_str).collect();
                found
                    .as_str()
                    .and_then(|found| did_you_mean(found, allowed))
            }
            Self::Missing { name, ty } => Some(format!(
                "give it with `-i {name}=VALUE` (a {} value)",
                ty.name()
            )),
            Self::Read { .. } => None,
        }
    }

    /// The input the error is about.
    pub fn name(&self) -> &str {
        match self {
            Self::Unknown { name, .. }
            | Self::Syntax { name, .. }
            | Self::Read { name, .. }
            | Self::NotJson { name, .. }
            | Self::WrongType { name, .. }
            | Self::NotAllowed { name, .. }
            | Self::Missing { name, .. } => name,
        }
    }
}

fn type_hint(name: &str, expected: InputType, found: &Value) -> String {
    match (expected, found) {
        (InputType::Integer, Value::Number(_)) => "give a whole number, such as `3`".to_owned(),
        (InputType::Array, _) => format!("write a list, such as `-i {name}=[a,b]`"),
        (InputType::Object, _) => format!("write a mapping, such as `-i {name}='{{x: 1}}'`"),
        (InputType::Boolean, _) => "write `true` or `false`".to_owned(),
        (InputType::String, _) => "a file given with `@path` must hold a JSON string".to_owned(),
        _ => format!(
            "give {} value, such as `-i {name}=3`",
            article(expected.name())
        ),
    }
}

/// "an integer", "a string".
fn article(name: &str) -> String {
    if name.starts_with(['a', 'e', 'i', 'o', 'u']) {
        format!("an {name}")
    } else {
        format!("a {name}")
    }
}

/// "the string `ten`", "the number `1.5`", "null", "an array".
fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Array(_) | Value::Object(_) => article(type_name(value)),
        _ => format!("the {} `{}`", type_name(value), quote(value)),
    }
}

/// A value as a message quotes it: a string without its JSON quotes, anything else as JSON,
/// cut when long.
fn quote(value: &Value) -> String {
    let text = match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    match text.char_indices().nth(MAX_QUOTED) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    }
}

fn allowed_list(allowed: &[Value]) -> String {
    let quoted: Vec<String> = allowed.iter().map(quote).collect();
    one_of(&quoted)
}

/// Splits a `-i` argument into its NAME and VALUE at the first `=`.
pub fn parse_assignment(arg: &str) -> Result<(String, String), String> {
    match arg.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_owned(), value.to_owned()))
        }
        _ => Err(format!("expected NAME=VALUE, found `{arg}`")),
    }
}

/// Resolves a run's inputs: the values `given` (raw `-i NAME=VALUE` pairs, in order) checked
/// against the inputs `declared`, and the defaults of the rest.
///
/// The result holds every declared input that is given or has a default, in declared order.
/// The same NAME given twice keeps the last value. All problems are returned together, in the
/// order of the flags, then missing inputs in declared order.
pub fn resolve(
    declared: &IndexMap<String, Input>,
    given: &[(String, String)],
) -> Result<Map<String, Value>, Vec<InputError>> {
    let mut errors = Vec::new();

    let mut last: IndexMap<&str, &str> = IndexMap::new();
    for (name, text) in given {
        last.insert(name, text);
    }

    let mut values: IndexMap<&str, Value> = IndexMap::new();
    for (name, text) in last {
        let Some(input) = declared.get(name) else {
            errors.push(InputError::Unknown {
                name: name.to_owned(),
                known: declared.keys().cloned().collect(),
            });
            continue;
        };
        match value(name, input, text).and_then(|value| check(name, input, value)) {
            Ok(value) => {
                values.insert(name, value);
            }
            Err(error) => errors.push(error),
        }
    }

    let mut resolved = Map::new();
    for (name, input) in declared {
        if let Some(value) = values.swap_remove(name.as_str()) {
            resolved.insert(name.clone(), value);
        } else if let Some(default) = &input.default {
            resolved.insert(name.clone(), default.clone());
        } else if !given.iter().any(|(given, _)| given == name) {
            errors.push(InputError::Missing {
                name: name.clone(),
                ty: input.ty,
            });
        }
    }

    if errors.is_empty() {
        Ok(resolved)
    } else {
        Err(errors)
    }
}

/// The value of one flag, before its checks.
fn value(name: &str, input: &Input, text: &str) -> Result<Value, InputError> {
    if let Some(literal) = text.strip_prefix("@@") {
        let literal = format!("@{literal}");
        return match input.ty {
            InputType::String => Ok(Value::String(literal)),
            _ => parse(name, &literal),
        };
    }
    if let Some(path) = text.strip_prefix('@') {
        return read_file(name, input, Path::new(path));
    }
    match input.ty {
        InputType::String => Ok(Value::String(text.to_owned())),
        _ => parse(name, text),
    }
}

fn parse(name: &str, text: &str) -> Result<Value, InputError> {
    yaml::parse_flow_value(text).map_err(|detail| InputError::Syntax {
        name: name.to_owned(),
        detail,
    })
}

/// The value of `@path`: the file's JSON; for a `string` input, a file holding one JSON
/// string gives that string, and any other file its text as it is, so that a text file can be
/// passed whole.
fn read_file(name: &str, input: &Input, path: &Path) -> Result<Value, InputError> {
    let text = std::fs::read_to_string(path).map_err(|error| InputError::Read {
        name: name.to_owned(),
        path: path.to_owned(),
        reason: match error.kind() {
            std::io::ErrorKind::NotFound => "no such file".to_owned(),
            std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
            std::io::ErrorKind::InvalidData => "the file is not UTF-8".to_owned(),
            _ => error.to_string().to_lowercase(),
        },
    })?;
    if input.ty == InputType::String {
        return Ok(match serde_json::from_str(&text) {
            Ok(Value::String(parsed)) => Value::String(parsed),
            _ => Value::String(text),
        });
    }
    serde_json::from_str(&text).map_err(|error| InputError::NotJson {
        name: name.to_owned(),
        path: path.to_owned(),
        detail: error.to_string(),
    })
}

/// Checks a value against the input's type and `enum`.
fn check(name: &str, input: &Input, value: Value) -> Result<Value, InputError> {
    if !input.ty.admits(&value) {
        return Err(InputError::WrongType {
            name: name.to_owned(),
            expected: input.ty,
            found: value,
        });
    }
    if let Some(allowed) = &input.allowed
        && !allowed.contains(&value)
    {
        return Err(InputError::NotAllowed {
            name: name.to_owned(),
            found: value,
            allowed: allowed.clone(),
        });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn input(ty: InputType, default: Option<Value>) -> Input {
        Input {
            ty,
            default,
            description: None,
            allowed: None,
        }
    }

    fn declared() -> IndexMap<String, Input> {
        let mut mode = input(InputType::String, Some(json!("fast")));
        mode.allowed = Some(vec![json!("fast"), json!("slow")]);
        IndexMap::from([
            ("dir".to_owned(), input(InputType::String, None)),
            (
                "count".to_owned(),
                input(InputType::Integer, Some(json!(1))),
            ),
            (
                "ratio".to_owned(),
                input(InputType::Number, Some(json!(0.5))),
            ),
            ("tags".to_owned(), input(InputType::Array, Some(json!([])))),
            ("opts".to_owned(), input(InputType::Object, Some(json!({})))),
            (
                "dry".to_owned(),
                input(InputType::Boolean, Some(json!(false))),
            ),
            ("mode".to_owned(), mode),
        ])
    }

    fn given(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect()
    }

    fn resolve_ok(pairs: &[(&str, &str)]) -> Map<String, Value> {
        resolve(&declared(), &given(pairs)).unwrap_or_else(|errors| panic!("{errors:?}"))
    }

    fn resolve_err(pairs: &[(&str, &str)]) -> Vec<InputError> {
        resolve(&declared(), &given(pairs)).expect_err("the inputs should be refused")
    }

    #[test]
    fn parse_assignment_splits_at_the_first_equals_sign() {
        assert_eq!(
            parse_assignment("expr=a=b"),
            Ok(("expr".to_owned(), "a=b".to_owned()))
        );
        assert_eq!(
            parse_assignment("empty="),
            Ok(("empty".to_owned(), String::new()))
        );
    }

    #[test]
    fn parse_assignment_refuses_a_missing_name_or_equals_sign() {
        assert_eq!(
            parse_assignment("count"),
            Err("expected NAME=VALUE, found `count`".to_owned())
        );
        assert!(parse_assignment("=5").is_err());
    }

    #[test]
    fn values_are_typed_and_defaults_fill_the_rest_in_declared_order() {
        let resolved = resolve_ok(&[
            ("tags", "[a, b]"),
            ("dir", "books"),
            ("count", "5"),
            ("opts", "{x: 1}"),
            ("dry", "true"),
        ]);

        assert_eq!(
            Value::Object(resolved.clone()),
            json!({
                "dir": "books",
                "count": 5,
                "ratio": 0.5,
                "tags": ["a", "b"],
                "opts": {"x": 1},
                "dry": true,
                "mode": "fast",
            })
        );
        let keys: Vec<&String> = resolved.keys().collect();
        assert_eq!(
            keys,
            ["dir", "count", "ratio", "tags", "opts", "dry", "mode"]
        );
    }

    #[test]
    fn a_string_input_takes_the_text_as_it_is() {
        let resolved = resolve_ok(&[("dir", "[not, a, list]")]);

        assert_eq!(resolved["dir"], json!("[not, a, list]"));
    }

    #[test]
    fn an_integer_is_also_a_number() {
        let resolved = resolve_ok(&[("dir", "d"), ("ratio", "2")]);

        assert_eq!(resolved["ratio"], json!(2));
    }

    #[test]
    fn the_last_of_two_values_wins() {
        let resolved = resolve_ok(&[("dir", "a"), ("count", "2"), ("dir", "b")]);

        assert_eq!(resolved["dir"], json!("b"));
    }

    #[test]
    fn an_unknown_name_suggests_the_closest_input() {
        let errors = resolve_err(&[("dir", "d"), ("cuont", "2")]);

        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].to_string(), "unknown input `cuont`");
        assert_eq!(errors[0].hint().as_deref(), Some("did you mean `count`?"));
    }

    #[test]
    fn an_unknown_name_far_from_any_lists_the_inputs() {
        let errors = resolve_err(&[("dir", "d"), ("zzz", "2")]);

        assert_eq!(
            errors[0].hint().as_deref(),
            Some("the inputs are `dir`, `count`, `ratio`, `tags`, `opts`, `dry` or `mode`")
        );

        let none = resolve(&IndexMap::new(), &given(&[("x", "1")])).unwrap_err();
        assert_eq!(
            none[0].hint().as_deref(),
            Some("the workflow declares no inputs")
        );
    }

    #[test]
    fn a_value_of_the_wrong_type_names_both_types() {
        let errors = resolve_err(&[
            ("dir", "d"),
            ("count", "ten"),
            ("ratio", "[1]"),
            ("dry", "yes"),
            ("tags", "1.5"),
        ]);

        let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            messages,
            [
                "input `count` must be an integer, got the string `ten`",
                "input `ratio` must be a number, got an array",
                "input `dry` must be a boolean, got the string `yes`",
                "input `tags` must be an array, got the number `1.5`",
            ]
        );
        assert_eq!(errors[2].hint().as_deref(), Some("write `true` or `false`"));
    }

    #[test]
    fn an_empty_value_is_null_for_a_typed_input() {
        let errors = resolve_err(&[("dir", "d"), ("count", "")]);

        assert_eq!(
            errors[0].to_string(),
            "input `count` must be an integer, got null"
        );
    }

    #[test]
    fn a_value_outside_enum_lists_the_allowed_values() {
        let errors = resolve_err(&[("dir", "d"), ("mode", "slwo")]);

        assert_eq!(
            errors[0].to_string(),
            "input `mode` must be `fast` or `slow`, got `slwo`"
        );
        assert_eq!(errors[0].hint().as_deref(), Some("did you mean `slow`?"));
    }

    #[test]
    fn a_required_input_not_given_is_an_error() {
        let errors = resolve_err(&[]);

        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].to_string(), "missing required input `dir`");
        assert_eq!(
            errors[0].hint().as_deref(),
            Some("give it with `-i dir=VALUE` (a string value)")
        );
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let errors = resolve_err(&[("count", "x"), ("nope", "1"), ("tags", "[a")]);

        let names: Vec<&str> = errors.iter().map(InputError::name).collect();
        assert_eq!(names, ["count", "nope", "tags", "dir"]);
        assert!(matches!(errors[2], InputError::Syntax { .. }));
        assert!(
            errors[2]
                .to_string()
                .starts_with("input `tags` has an invalid value: invalid YAML"),
            "{}",
            errors[2]
        );
    }

    #[test]
    fn a_given_required_input_with_a_bad_value_is_not_also_missing() {
        let errors = resolve_err(&[("dir", "@/nonexistent/weft/file.json")]);

        assert_eq!(errors.len(), 1);
        assert_eq!(
            errors[0].to_string(),
            "cannot read `/nonexistent/weft/file.json` for input `dir`: no such file"
        );
    }

    #[test]
    fn an_at_path_reads_the_file_as_json() {
        let folder = std::env::temp_dir().join(format!("weft-inputs-{}", std::process::id()));
        std::fs::create_dir_all(&folder).unwrap();
        let good = folder.join("opts.json");
        let bad = folder.join("bad.json");
        std::fs::write(&good, r#"{"b": [1, 2], "a": "x"}"#).unwrap();
        std::fs::write(&bad, "{not json").unwrap();

        let resolved = resolve(
            &declared(),
            &given(&[("dir", "d"), ("opts", &format!("@{}", good.display()))]),
        );
        let errors = resolve(
            &declared(),
            &given(&[("dir", "d"), ("opts", &format!("@{}", bad.display()))]),
        );
        std::fs::remove_dir_all(&folder).unwrap();

        assert_eq!(resolved.unwrap()["opts"], json!({"b": [1, 2], "a": "x"}));
        let errors = errors.unwrap_err();
        assert!(matches!(errors[0], InputError::NotJson { .. }));
        assert!(errors[0].hint().is_some());
    }

    #[test]
    fn an_at_path_gives_a_string_input_the_files_text_or_its_json_string() {
        let folder = std::env::temp_dir().join(format!("weft-inputs-text-{}", std::process::id()));
        std::fs::create_dir_all(&folder).unwrap();
        let text = folder.join("notes.txt");
        let quoted = folder.join("name.json");
        std::fs::write(&text, "two words\nand a line\n").unwrap();
        std::fs::write(&quoted, "\"books\"\n").unwrap();

        let from_text = resolve_ok(&[("dir", &format!("@{}", text.display()))]);
        let from_json = resolve_ok(&[("dir", &format!("@{}", quoted.display()))]);
        std::fs::remove_dir_all(&folder).unwrap();

        assert_eq!(from_text["dir"], json!("two words\nand a line\n"));
        assert_eq!(from_json["dir"], json!("books"));
    }

    #[test]
    fn a_double_at_sign_is_literal_text() {
        let resolved = resolve_ok(&[("dir", "@@home")]);

        assert_eq!(resolved["dir"], json!("@home"));
    }

    #[test]
    fn long_values_are_cut_in_messages() {
        let long = "x".repeat(500);

        let errors = resolve_err(&[("dir", "d"), ("count", &long)]);

        assert!(errors[0].to_string().len() < 140, "{}", errors[0]);
    }
}
