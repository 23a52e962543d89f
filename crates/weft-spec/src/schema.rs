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
    admit_extensions(&mut schema);
    schema
}

/// Adds `patternProperties: {"^x-": {}}` to every closed object schema.
fn admit_extensions(value: &mut Value) {
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
            object.values_mut().for_each(admit_extensions);
        }
        Value::Array(items) => items.iter_mut().for_each(admit_extensions),
        _ => {}
    }
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
