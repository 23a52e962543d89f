//! `weft graph`: the DAG of a valid workflow, for Graphviz or Mermaid.

use std::io;
use std::path::Path;

use crate::cli::GraphFormat;
use crate::{exit, output, workflow};

/// Prints the graph of `file`, or its errors. Returns the exit code.
pub fn run(file: &Path, format: GraphFormat) -> io::Result<u8> {
    let loaded = workflow::load(file);
    let (Some(plan), Some(document)) = (&loaded.plan, &loaded.document) else {
        let mut report = String::new();
        for diagnostic in &loaded.diagnostics {
            report.push_str(&diagnostic.render(loaded.source.as_deref()));
            report.push('\n');
        }
        output::stderr(&report);
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
