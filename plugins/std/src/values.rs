//! Jobs on JSON values: `echo`, `concat`, `pick` and `merge`.

use schemars::{Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use weft_plugin::{Job, JobContext, JobError, JsonSchema};

/// Returns its input's value.
#[derive(Debug, Default)]
pub struct Echo;

/// The input of `std.echo`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EchoInput {
    /// Any JSON value, returned as it is.
    value: Value,
}

impl Job for Echo {
    const NAME: &'static str = "echo";
    const DESCRIPTION: &'static str = "Returns `value` as it is.";
    type Input = EchoInput;
    type Output = Value;

    fn run(&self, _: &JobContext<'_>, input: EchoInput) -> Result<Value, JobError> {
        Ok(input.value)
    }
}

/// Joins arrays into one array, or strings into one string.
#[derive(Debug, Default)]
pub struct Concat;

/// The input of `std.concat`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConcatInput {
    /// The arrays, or the strings, to join in order: all arrays or all strings, not a mix.
    /// An empty list gives an empty array.
    #[schemars(schema_with = "arrays_or_strings")]
    values: Vec<Value>,
}

/// The schema of [`ConcatInput::values`]: a list of arrays, or a list of strings.
fn arrays_or_strings(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "anyOf": [
            {"type": "array", "items": {"type": "array"}},
            {"type": "array", "items": {"type": "string"}},
        ]
    })
}

/// The output of `std.concat`.
#[derive(Debug, PartialEq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Concatenated {
    /// The items of every array, in order.
    Array(Vec<Value>),
    /// The strings, one after the other.
    String(String),
}

impl Job for Concat {
    const NAME: &'static str = "concat";
    const DESCRIPTION: &'static str = "Joins `values`, all arrays or all strings, into one.";
    type Input = ConcatInput;
    type Output = Concatenated;

    fn run(&self, _: &JobContext<'_>, input: ConcatInput) -> Result<Concatenated, JobError> {
        let mut values = input.values.into_iter().enumerate();
        let Some((_, first)) = values.next() else {
            return Ok(Concatenated::Array(Vec::new()));
        };

        match first {
            Value::Array(mut joined) => {
                for (index, value) in values {
                    match value {
                        Value::Array(items) => joined.extend(items),
                        other => return Err(mismatch(index, &other, "arrays")),
                    }
                }
                Ok(Concatenated::Array(joined))
            }
            Value::String(mut joined) => {
                for (index, value) in values {
                    match value {
                        Value::String(text) => joined.push_str(&text),
                        other => return Err(mismatch(index, &other, "strings")),
                    }
                }
                Ok(Concatenated::String(joined))
            }
            other => Err(JobError::fatal(format!(
                "`values[0]` is {}: `concat` joins arrays or strings",
                kind(&other)
            ))),
        }
    }
}

/// The error for a value at `index` that is not of the kind of the first.
fn mismatch(index: usize, value: &Value, expected: &str) -> JobError {
    JobError::fatal(format!(
        "`values[{index}]` is {}, but `values[0]` is one of {expected}: `concat` joins all \
         arrays or all strings",
        kind(value)
    ))
}

/// What a JSON value is, with its article, for messages.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Picks a part of a JSON value by its path.
#[derive(Debug, Default)]
pub struct Pick;

/// The input of `std.pick`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PickInput {
    /// The value to pick from.
    value: Value,
    /// Where the part is: keys of objects and indexes (from 0) of arrays, joined by dots, as
    /// in `books.0.title`. The empty path picks the whole value. A key that holds a dot
    /// cannot be reached.
    #[schemars(example = "books.0.title")]
    path: String,
}

impl Job for Pick {
    const NAME: &'static str = "pick";
    const DESCRIPTION: &'static str = "Returns the part of `value` at the dotted `path`.";
    type Input = PickInput;
    type Output = Value;

    fn run(&self, _: &JobContext<'_>, input: PickInput) -> Result<Value, JobError> {
        let mut current = input.value;
        if input.path.is_empty() {
            return Ok(current);
        }

        let mut walked = String::new();
        for segment in input.path.split('.') {
            current = step(current, segment).map_err(|reason| {
                let place = if walked.is_empty() { "value" } else { &walked };
                JobError::fatal(format!(
                    "no `{}` in `value`: `{place}` {reason}",
                    input.path
                ))
            })?;
            if !walked.is_empty() {
                walked.push('.');
            }
            walked.push_str(segment);
        }

        Ok(current)
    }
}

/// Takes one step down `value`, by key or by index; the error completes a sentence whose
/// subject is `value`.
fn step(value: Value, segment: &str) -> Result<Value, String> {
    match value {
        Value::Object(mut map) => map
            .remove(segment)
            .ok_or_else(|| format!("has no key `{segment}`")),
        Value::Array(mut items) => {
            let len = items.len();
            let Ok(index) = segment.parse::<usize>() else {
                return Err(format!("is an array, and `{segment}` is not an index"));
            };
            if index < len {
                Ok(items.swap_remove(index))
            } else {
                Err(format!("is an array of {len}, with no index {index}"))
            }
        }
        other => Err(format!("is {}, with no `{segment}` inside", kind(&other))),
    }
}

/// Merges objects into one; later keys win.
#[derive(Debug, Default)]
pub struct Merge;

/// The input of `std.merge`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeInput {
    /// The objects to merge, in order. A key of a later object replaces the same key of an
    /// earlier one (the merge is shallow: nested objects are not merged); keys keep the
    /// place where they first appeared. An empty list gives an empty object.
    values: Vec<Map<String, Value>>,
}

impl Job for Merge {
    const NAME: &'static str = "merge";
    const DESCRIPTION: &'static str = "Merges the objects in `values` into one; later keys win.";
    type Input = MergeInput;
    type Output = Map<String, Value>;

    fn run(&self, _: &JobContext<'_>, input: MergeInput) -> Result<Map<String, Value>, JobError> {
        let mut merged = Map::new();
        for object in input.values {
            merged.extend(object);
        }
        Ok(merged)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use weft_plugin::testing::TestCall;

    use super::*;

    #[test]
    fn echo_returns_its_value_as_it_is() {
        for value in [
            json!(null),
            json!(1.5),
            json!("x"),
            json!({"a": [1, {"b": null}]}),
        ] {
            let output = TestCall::new()
                .run(&Echo, json!({ "value": value }))
                .unwrap();

            assert_eq!(output, value);
        }
    }

    #[test]
    fn echo_needs_a_value() {
        let error = TestCall::new().run(&Echo, json!({})).unwrap_err();

        assert!(error.message().contains("missing field `value`"), "{error}");
    }

    #[test]
    fn echo_refuses_unknown_fields() {
        let error = TestCall::new()
            .run(&Echo, json!({"value": 1, "valeu": 2}))
            .unwrap_err();

        assert!(error.message().contains("unknown field `valeu`"), "{error}");
    }

    #[test]
    fn concat_joins_arrays_into_one() {
        let output = TestCall::new()
            .run(&Concat, json!({"values": [[1, 2], [], [[3]], ["x"]]}))
            .unwrap();

        assert_eq!(output, json!([1, 2, [3], "x"]));
    }

    #[test]
    fn concat_joins_strings_into_one() {
        let output = TestCall::new()
            .run(&Concat, json!({"values": ["ab", "", "c"]}))
            .unwrap();

        assert_eq!(output, json!("abc"));
    }

    #[test]
    fn concat_of_nothing_is_an_empty_array() {
        let output = TestCall::new().run(&Concat, json!({"values": []})).unwrap();

        assert_eq!(output, json!([]));
    }

    #[test]
    fn concat_names_the_first_value_that_does_not_match() {
        let error = TestCall::new()
            .run(&Concat, json!({"values": ["a", "b", ["c"], 4]}))
            .unwrap_err();

        assert_eq!(
            error.message(),
            "`values[2]` is an array, but `values[0]` is one of strings: `concat` joins all \
             arrays or all strings"
        );
        assert!(!error.is_retryable());
    }

    #[test]
    fn concat_refuses_values_that_are_neither_arrays_nor_strings() {
        let error = TestCall::new()
            .run(&Concat, json!({"values": [{"a": 1}, "b"]}))
            .unwrap_err();

        assert_eq!(
            error.message(),
            "`values[0]` is an object: `concat` joins arrays or strings"
        );
    }

    #[test]
    fn concat_schema_allows_arrays_or_strings() {
        let schema = serde_json::to_value(schemars::schema_for!(ConcatInput)).unwrap();

        let values = &schema["properties"]["values"];
        assert_eq!(values["anyOf"][0]["items"]["type"], "array");
        assert_eq!(values["anyOf"][1]["items"]["type"], "string");
        assert!(
            values["description"]
                .as_str()
                .unwrap()
                .starts_with("The arrays")
        );
    }

    #[test]
    fn pick_follows_keys_and_indexes() {
        let value = json!({"books": [{"title": "Emma"}, {"title": "Persuasion"}]});

        let output = TestCall::new()
            .run(&Pick, json!({"value": value, "path": "books.1.title"}))
            .unwrap();

        assert_eq!(output, json!("Persuasion"));
    }

    #[test]
    fn pick_with_an_empty_path_returns_the_whole_value() {
        let output = TestCall::new()
            .run(&Pick, json!({"value": [1, 2], "path": ""}))
            .unwrap();

        assert_eq!(output, json!([1, 2]));
    }

    #[test]
    fn pick_reads_digit_keys_of_objects_as_keys() {
        let output = TestCall::new()
            .run(&Pick, json!({"value": {"0": "zero"}, "path": "0"}))
            .unwrap();

        assert_eq!(output, json!("zero"));
    }

    #[test]
    fn pick_refuses_a_missing_key() {
        let error = TestCall::new()
            .run(&Pick, json!({"value": {"a": {"b": 1}}, "path": "a.c"}))
            .unwrap_err();

        assert_eq!(error.message(), "no `a.c` in `value`: `a` has no key `c`");
        assert!(!error.is_retryable());
    }

    #[test]
    fn pick_refuses_an_index_past_the_end() {
        let error = TestCall::new()
            .run(&Pick, json!({"value": [1, 2], "path": "2"}))
            .unwrap_err();

        assert_eq!(
            error.message(),
            "no `2` in `value`: `value` is an array of 2, with no index 2"
        );
    }

    #[test]
    fn pick_refuses_a_key_into_an_array_or_a_scalar() {
        let into_array = TestCall::new()
            .run(&Pick, json!({"value": [1], "path": "first"}))
            .unwrap_err();
        let into_number = TestCall::new()
            .run(&Pick, json!({"value": {"a": 1}, "path": "a.b"}))
            .unwrap_err();

        assert_eq!(
            into_array.message(),
            "no `first` in `value`: `value` is an array, and `first` is not an index"
        );
        assert_eq!(
            into_number.message(),
            "no `a.b` in `value`: `a` is a number, with no `b` inside"
        );
    }

    #[test]
    fn merge_lets_later_keys_win() {
        let output = TestCall::new()
            .run(
                &Merge,
                json!({"values": [{"a": 1, "b": {"x": 1}}, {"b": {"y": 2}, "c": 3}, {"a": null}]}),
            )
            .unwrap();

        assert_eq!(output, json!({"a": null, "b": {"y": 2}, "c": 3}));
        let keys: Vec<_> = output.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["a", "b", "c"]);
    }

    #[test]
    fn merge_of_nothing_is_an_empty_object() {
        let output = TestCall::new().run(&Merge, json!({"values": []})).unwrap();

        assert_eq!(output, json!({}));
    }

    #[test]
    fn merge_refuses_values_that_are_not_objects() {
        let error = TestCall::new()
            .run(&Merge, json!({"values": [{"a": 1}, [1]]}))
            .unwrap_err();

        assert!(
            error.message().starts_with("invalid input for `merge`"),
            "{error}"
        );
    }
}
