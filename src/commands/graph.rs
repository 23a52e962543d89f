//! `weft graph`: the DAG of a valid workflow, for Graphviz or Mermaid.

use std::io;
use std::path::Path;

use weft_spec::diagnostic::render_all;

use crate::cli::GraphFormat;
use crate::workflow::Plugins;
use crate::{exit, output, workflow};

/// Prints the graph of `file`, or its errors. Returns the exit code.
pub fn run(file: &Path, format: GraphFormat) -> io::Result<u8> {
    let loaded = workflow::load(file, Plugins::Skip);
    let (Some(plan), Some(document)) = (&loaded.plan, &loaded.document) else {
        output::stderr(&render_all(&loaded.diagnostics, loaded.source.as_deref()));
        return Ok(exit::INVALID);
    };

    let title = document.workflow.name.as_deref().unwrap_or("workflow");
    let text = match format {
        GraphFormat::Dot => plan.to_dot(title),
        GraphFormat::Mermaid => plan.to_mermaid(title),
    };
    output::stdout(&text)?;
    Ok(exit::SUCCESS)
}
