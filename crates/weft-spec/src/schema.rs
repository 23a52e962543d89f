//! The JSON Schema of the workflow format, for editors.
//!
//! Generated from the types of [`crate::model`] in draft-07, the draft that
//! yaml-language-server reads. Every mapping that refuses unknown keys also admits keys that
//! start with `x-`, as the loader does.

use schemars::generate::SchemaSettings;
use serde_json::{Map, Value};

use crate::Workflow;

/// The pattern of extension keys, which every mapping of the format admits.
const EXTENSION_PATTERN: &str = "^x-";

/// The JSON Schema (draft-07) of the workflow format.
pub fn schema() -> Value {
    let generator = SchemaSettings::draft07().into_generator();
    let mut schema = generator.into_root_schema_for::<Workflow>().to_value();
    polish(&mut schema);

    // The header keys first, for people who open the file.
    let Value::Object(mut body) = schema else {
        return schema;
    };
    let mut ordered = Map::new();
    for key in ["$schema", "title", "description"] {
        if let Some(value) = body.shift_remove(key) {
            ordered.insert(key.to_owned(), value);
        }
    }
    ordered.extend(body);
    Value::Object(ordered)
}

/// Adds `patternProperties: {"^x-": {}}` to every closed object schema, and unwraps the
/// lines of descriptions, which come from doc comments wrapped at 100 columns.
fn polish(value: &mut Value) {
    match value {
        Value::Object(object) => {
            if object.get("additionalProperties") == Some(&Value::Bool(false)) {
                let patterns = object
                    .entry("patternProperties")
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(patterns) = patterns {
                    patterns.insert(EXTENSION_PATTERN.to_owned(), Value::Object(Map::new()));
                }
            }
            if let Some(Value::String(description)) = object.get_mut("description") {
                *description = unwrap_lines(description);
            }
            object.values_mut().for_each(polish);
        }
        Value::Array(items) => items.iter_mut().for_each(polish),
        _ => {}
    }
}

/// Joins wrapped lines with spaces, keeping blank lines between paragraphs.
fn unwrap_lines(text: &str) -> String {
    text.split("\n\n")
        .map(|paragraph| paragraph.split('\n').collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_is_draft_07() {
        assert_eq!(
            schema()["$schema"],
            "http://json-schema.org/draft-07/schema#"
        );
    }

    #[test]
    fn the_schema_matches_its_snapshot() {
        let text = serde_json::to_string_pretty(&schema()).unwrap();
        insta::assert_snapshot!(text);
    }

    #[test]
    fn descriptions_are_unwrapped() {
        assert_eq!(unwrap_lines("one\ntwo\n\nthree"), "one two\n\nthree");
    }

    #[test]
    fn closed_mappings_admit_extension_keys() {
        let schema = schema();

        assert_eq!(schema["additionalProperties"], false);
        assert_eq!(
            schema["patternProperties"][EXTENSION_PATTERN],
            serde_json::json!({})
        );
        assert_eq!(
            schema["definitions"]["Stage"]["patternProperties"][EXTENSION_PATTERN],
            serde_json::json!({})
        );
    }
}
