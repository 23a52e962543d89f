//! `weft schema`: the JSON Schema of the workflow format, optionally with each job's input
//! schema attached to `with`.
//!
//! A job's input schema describes literal values, but in a workflow any value of `with`, and
//! `with` itself, may be a string holding a `${{ ... }}` expression, known only at run time.
//! So before it is attached, each input schema is made to accept such a string wherever it
//! accepts a value, and to check literals as before: see [`Embedding`].

use std::io;
use std::path::PathBuf;

use serde_json::{Map, Value, json};
use weft_host::{Catalog, SearchPath};

use crate::{exit, output};

/// The name, among the workflow schema's definitions, of a string holding an expression.
const EXPRESSION: &str = "Expression";

/// Keywords that describe a value without constraining it: on a wrapped value schema they
/// move to the wrapper, where editors look for them.
const ANNOTATIONS: [&str; 8] = [
    "title",
    "description",
    "default",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
    "$comment",
];

/// The schema as `schema/workflow.schema.json` holds it: pretty JSON, one trailing newline.
pub fn text(schema: &Value) -> String {
    let mut text = serde_json::to_string_pretty(schema).unwrap_or_default();
    text.push('\n');
    text
}

/// Prints the schema; with `plugin_folders`, with the jobs of the plugins found. Returns the
/// exit code.
pub fn run(plugin_folders: Option<&[PathBuf]>) -> io::Result<u8> {
    let mut schema = weft_spec::schema();
    if let Some(folders) = plugin_folders {
        let catalog = Catalog::discover(&SearchPath::standard(folders));
        attach_jobs(&mut schema, &catalog);
    }
    output::stdout(&text(&schema))?;
    Ok(exit::SUCCESS)
}

/// Adds to the stage schema one `if job is X (and with is no expression) then with is X's
/// input` rule per job. The definitions of the input schemas join the workflow schema's, as
/// `X.NAME`.
fn attach_jobs(schema: &mut Value, catalog: &Catalog) {
    let jobs: Vec<(String, &Value)> = catalog
        .plugins
        .values()
        .flat_map(|plugin| {
            plugin
                .jobs
                .values()
                .map(move |job| (format!("{}.{}", plugin.name, job.name), &job.input_schema))
        })
        .collect();

    let mut definitions = Map::new();
    definitions.insert(EXPRESSION.to_owned(), expression());
    let rules: Vec<Value> = jobs
        .iter()
        .enumerate()
        .map(|(at, (name, input))| {
            let embedding = Embedding {
                prefix: format!("{name}."),
                base: format!("/definitions/Stage/allOf/{at}/then/properties/with"),
            };
            json!({
                "if": {
                    "properties": {
                        "job": { "const": name },
                        "with": { "not": expression_ref() }
                    },
                    "required": ["job"]
                },
                "then": { "properties": { "with": embedding.embed(input, &mut definitions) } }
            })
        })
        .collect();
    let names: Vec<Value> = jobs
        .into_iter()
        .map(|(name, _)| Value::String(name))
        .collect();

    if let Some(Value::Object(existing)) = schema.pointer_mut("/definitions") {
        existing.extend(definitions);
    }
    if let Some(stage) = schema.pointer_mut("/definitions/Stage") {
        stage["allOf"] = Value::Array(rules);
    }
    if let Some(job) = schema.pointer_mut("/definitions/JobRef") {
        job["examples"] = Value::Array(names);
    }
}

/// The schema of a string holding an expression: any string with `${{` in it, as `weft validate`
/// tells one.
fn expression() -> Value {
    json!({
        "type": "string",
        "pattern": r"\$\{\{",
        "description": "A string holding a `${{ ... }}` expression: its value is known, and checked against the job's input, when the run computes it."
    })
}

/// A reference to [`expression`] among the workflow schema's definitions.
fn expression_ref() -> Value {
    json!({ "$ref": format!("#/definitions/{EXPRESSION}") })
}

/// How one job's input schema goes into the workflow schema.
///
/// Wherever the input schema gives the schema of a value (each property, pattern property,
/// additional property, item, additional item, `contains`), that schema becomes
/// `{"anyOf": [schema, expression]}`, its annotations moved to the wrapper; the schemas that
/// apply to the same value (`allOf`, `anyOf`, `oneOf`, `then`, `else`, `dependencies`,
/// definitions) are walked into without being wrapped, since the value they constrain is
/// wrapped already (wrapping a `oneOf` branch would make an expression match every branch).
/// The top of `with` is left to the rule's `if`, which does not apply to an expression.
/// Boolean schemas stay as they are: `true` accepts expressions already, and `false` must go
/// on refusing the value (an unknown key, say).
///
/// Under `not` and `if`, values stay literal: accepting more under `not` would refuse more,
/// and under `if` would change which of `then` and `else` applies. Only their `$ref`s are
/// rewritten (the definitions they reach are the wrapped ones, shared with the rest of the
/// schema). `propertyNames` stays literal too: keys never hold expressions.
///
/// The input schema's own definitions (`definitions` or `$defs`, at its top) move to the
/// workflow schema's definitions, each name behind `prefix`, and every local `$ref` is
/// rewritten: to those, or else under `base`, where the input schema now sits. Other
/// references are left as they are.
struct Embedding {
    /// What the names of the input schema's definitions start with: `plugin.job.`.
    prefix: String,
    /// The JSON pointer of the input schema in the workflow schema.
    base: String,
}

/// Whether a value inside a schema may be written as an expression.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Values {
    /// Yes: value schemas are wrapped.
    Lenient,
    /// No, as under `not` and `if`: only references are rewritten.
    Literal,
}

impl Embedding {
    /// The input schema to attach to `with`; its definitions go to `definitions`.
    fn embed(&self, input: &Value, definitions: &mut Map<String, Value>) -> Value {
        let mut input = input.clone();
        if let Value::Object(object) = &mut input {
            object.shift_remove("$schema");
            for keyword in ["definitions", "$defs"] {
                let Some(Value::Object(own)) = object.shift_remove(keyword) else {
                    continue;
                };
                for (name, mut definition) in own {
                    self.same_value(&mut definition, Values::Lenient);
                    definitions
                        .entry(format!("{}{name}", self.prefix))
                        .or_insert(definition);
                }
            }
        }
        self.same_value(&mut input, Values::Lenient);
        input
    }

    /// Walks a schema that applies to a value some other schema gives the place of: it is
    /// wrapped when values are lenient.
    fn value(&self, schema: &mut Value, values: Values) {
        self.same_value(schema, values);
        if values == Values::Lenient {
            or_expression(schema);
        }
    }

    /// Walks a schema that applies to the same value as its parent: rewrites its `$ref` and
    /// walks into its subschemas, keyword by keyword (never into `const`, `enum`, `default`
    /// or `examples`, which hold values, not schemas).
    fn same_value(&self, schema: &mut Value, values: Values) {
        let Value::Object(object) = schema else {
            return;
        };
        if let Some(Value::String(reference)) = object.get_mut("$ref")
            && let Some(rewritten) = self.reference(reference)
        {
            *reference = rewritten;
        }
        for (keyword, subschema) in object.iter_mut() {
            match (keyword.as_str(), subschema) {
                ("properties" | "patternProperties", Value::Object(map)) => {
                    for property in map.values_mut() {
                        self.value(property, values);
                    }
                }
                ("items", Value::Array(items)) => {
                    for item in items {
                        self.value(item, values);
                    }
                }
                ("additionalProperties" | "items" | "additionalItems" | "contains", subschema) => {
                    self.value(subschema, values);
                }
                ("allOf" | "anyOf" | "oneOf", Value::Array(branches)) => {
                    for branch in branches {
                        self.same_value(branch, values);
                    }
                }
                ("then" | "else", subschema) => self.same_value(subschema, values),
                ("not" | "if" | "propertyNames", subschema) => {
                    self.same_value(subschema, Values::Literal);
                }
                ("dependencies" | "definitions" | "$defs", Value::Object(map)) => {
                    // The arrays of `dependencies` name keys; they are no schemas.
                    for dependency in map.values_mut() {
                        self.same_value(dependency, values);
                    }
                }
                _ => {}
            }
        }
    }

    /// The rewritten form of a local reference; `None` for a reference to another document.
    fn reference(&self, reference: &str) -> Option<String> {
        let pointer = reference.strip_prefix('#')?;
        for keyword in ["/definitions/", "/$defs/"] {
            if let Some(rest) = pointer.strip_prefix(keyword) {
                let prefix = fragment(&self.prefix);
                return Some(format!("#/definitions/{prefix}{rest}"));
            }
        }
        Some(format!("#{}{pointer}", self.base))
    }
}

/// Makes a value schema accept a string holding an expression too. Boolean schemas, and
/// schemas that accept any value, stay as they are.
fn or_expression(schema: &mut Value) {
    let Value::Object(object) = schema else {
        return;
    };
    if object.keys().all(|key| ANNOTATIONS.contains(&key.as_str())) {
        return;
    }
    let mut wrapper = Map::new();
    for keyword in ANNOTATIONS {
        if let Some(annotation) = object.shift_remove(keyword) {
            wrapper.insert(keyword.to_owned(), annotation);
        }
    }
    let literal = Value::Object(std::mem::take(object));
    wrapper.insert("anyOf".to_owned(), json!([literal, expression_ref()]));
    *object = wrapper;
}

/// A name as one segment of a JSON pointer in a URI fragment.
fn fragment(name: &str) -> String {
    let mut escaped = String::new();
    for byte in name.replace('~', "~0").replace('/', "~1").bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&byte) {
            escaped.push(char::from(byte));
        } else {
            escaped.push_str(&format!("%{byte:02X}"));
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A workflow-like root holding `input` embedded at `/properties/with`, with its
    /// definitions beside the expression's.
    fn embedded(input: &Value) -> Value {
        let embedding = Embedding {
            prefix: "t.job.".to_owned(),
            base: "/properties/with".to_owned(),
        };
        let mut definitions = Map::new();
        definitions.insert(EXPRESSION.to_owned(), expression());
        let with = embedding.embed(input, &mut definitions);
        json!({ "definitions": definitions, "properties": { "with": with } })
    }

    fn valid(schema: &Value, with: Value) -> bool {
        jsonschema::draft7::new(schema)
            .expect("the embedded schema compiles")
            .is_valid(&json!({ "with": with }))
    }

    #[test]
    fn definitions_move_to_the_root_and_references_follow_them() {
        // As schemars writes a recursive type in draft-07 and in 2020-12, with a reference to
        // the top of the input schema as well.
        let input = json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "properties": {
                "tree": { "$ref": "#/definitions/Tree" },
                "leaf": { "$ref": "#/$defs/Leaf" },
                "again": { "anyOf": [{ "$ref": "#" }, { "type": "null" }] }
            },
            "additionalProperties": false,
            "definitions": {
                "Tree": {
                    "type": "object",
                    "properties": {
                        "name": { "type": "string" },
                        "children": { "type": "array", "items": { "$ref": "#/definitions/Tree" } }
                    },
                    "additionalProperties": false
                }
            },
            "$defs": { "Leaf": { "type": "integer" } }
        });
        let schema = embedded(&input);

        assert_eq!(schema["properties"]["with"].get("definitions"), None);
        assert_eq!(schema["properties"]["with"].get("$defs"), None);
        assert_eq!(schema["properties"]["with"].get("$schema"), None);
        assert_eq!(
            schema["definitions"]["t.job.Tree"]["properties"]["children"]["anyOf"][0]["items"]["anyOf"]
                [0],
            json!({ "$ref": "#/definitions/t.job.Tree" })
        );
        assert_eq!(
            schema["properties"]["with"]["properties"]["again"]["anyOf"][0]["anyOf"][0],
            json!({ "$ref": "#/properties/with" })
        );

        let tree = json!({"name": "a", "children": [{"name": "${{ x }}", "children": "${{ y }}"}]});
        assert!(valid(&schema, json!({ "tree": tree, "leaf": 1 })));
        assert!(valid(
            &schema,
            json!({ "tree": "${{ x }}", "leaf": "${{ y }}" })
        ));
        assert!(valid(
            &schema,
            json!({ "again": { "again": { "leaf": "${{ z }}" } } })
        ));
        assert!(!valid(
            &schema,
            json!({ "tree": { "children": [{ "name": 1 }] } })
        ));
        assert!(!valid(
            &schema,
            json!({ "tree": { "children": [{ "nmae": "b" }] } })
        ));
        assert!(!valid(&schema, json!({ "leaf": "one" })));
        assert!(!valid(&schema, json!({ "again": { "leaf": 1.5 } })));
    }

    #[test]
    fn boolean_schemas_stay_as_they_are() {
        let input = json!({
            "type": "object",
            "properties": { "any": true, "never": false, "list": { "type": "array", "items": false } },
            "additionalProperties": false
        });
        let schema = embedded(&input);
        let with = &schema["properties"]["with"];

        assert_eq!(with["properties"]["any"], json!(true));
        assert_eq!(with["properties"]["never"], json!(false));
        assert_eq!(with["additionalProperties"], json!(false));
        assert_eq!(
            with["properties"]["list"]["anyOf"][0]["items"],
            json!(false)
        );
        assert!(valid(&schema, json!({ "any": [1], "list": "${{ x }}" })));
        assert!(!valid(&schema, json!({ "never": "${{ x }}" })));
        assert!(!valid(&schema, json!({ "other": "${{ x }}" })));
        assert!(!valid(&schema, json!({ "list": ["${{ x }}"] })));
    }

    #[test]
    fn annotations_move_to_the_wrapper_and_values_that_take_anything_stay_unwrapped() {
        let input = json!({
            "type": "object",
            "properties": {
                "n": { "description": "A count.", "type": "integer", "default": 1 },
                "value": { "description": "Anything." }
            }
        });
        let schema = embedded(&input);

        assert_eq!(
            schema["properties"]["with"]["properties"]["n"],
            json!({
                "description": "A count.",
                "default": 1,
                "anyOf": [{ "type": "integer" }, { "$ref": "#/definitions/Expression" }]
            })
        );
        assert_eq!(
            schema["properties"]["with"]["properties"]["value"],
            json!({ "description": "Anything." })
        );
    }

    #[test]
    fn one_of_branches_and_conditions_are_not_wrapped() {
        let input = json!({
            "type": "object",
            "properties": {
                "level": { "oneOf": [{ "const": "info" }, { "const": "warn" }] }
            },
            "oneOf": [{ "required": ["a"] }, { "required": ["b"] }],
            // Wrapped, `a` would match an expression here, and `with` be refused.
            "not": { "properties": { "a": { "const": 0 } }, "required": ["a"] }
        });
        let schema = embedded(&input);

        assert!(valid(&schema, json!({ "a": 1, "level": "${{ x }}" })));
        assert!(valid(&schema, json!({ "a": 1, "level": "warn" })));
        assert!(!valid(&schema, json!({ "a": 1, "level": "loud" })));
        assert!(!valid(&schema, json!({ "a": 1, "b": "${{ x }}" })));
        assert!(valid(&schema, json!({ "a": "${{ x }}" })));
        assert!(!valid(&schema, json!({ "a": 0 })));
    }

    #[test]
    fn names_are_escaped_in_references() {
        assert_eq!(fragment("std.range."), "std.range.");
        assert_eq!(fragment("a/b~c d"), "a~1b~0c%20d");
    }
}
