//! `weft schema`: the JSON Schema of the workflow format, optionally with each job's input
//! schema attached to `with`.

use std::io;
use std::path::PathBuf;

use serde_json::{Value, json};
use weft_host::{Catalog, SearchPath};

use crate::{exit, output};

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

/// Adds to the stage schema one `if job is X then with is X's input` rule per job.
fn attach_jobs(schema: &mut Value, catalog: &Catalog) {
    let rules: Vec<Value> = catalog
        .plugins
        .values()
        .flat_map(|plugin| {
            plugin.jobs.values().map(move |job| {
                let mut input = job.input_schema.clone();
                if let Value::Object(input) = &mut input {
                    input.remove("$schema");
                }
                json!({
                    "if": {
                        "properties": { "job": { "const": format!("{}.{}", plugin.name, job.name) } },
                        "required": ["job"]
                    },
                    "then": { "properties": { "with": input } }
                })
            })
        })
        .collect();

    let names: Vec<Value> = catalog
        .plugins
        .values()
        .flat_map(|plugin| {
            plugin
                .jobs
                .values()
                .map(move |job| Value::String(format!("{}.{}", plugin.name, job.name)))
        })
        .collect();

    if let Some(stage) = schema.pointer_mut("/definitions/Stage") {
        stage["allOf"] = Value::Array(rules);
    }
    if let Some(job) = schema.pointer_mut("/definitions/JobRef") {
        job["examples"] = Value::Array(names);
    }
}
