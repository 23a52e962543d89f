//! `weft schema`: the JSON Schema of the workflow format.

use std::io;

use crate::{exit, output};

/// The schema as `schema/workflow.schema.json` holds it: pretty JSON, one trailing newline.
pub fn text() -> String {
    let schema = weft_spec::schema();
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

/// Prints the schema. Returns the exit code.
pub fn run() -> io::Result<u8> {
    output::stdout(&text())?;
    Ok(exit::SUCCESS)
}
