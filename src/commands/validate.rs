//! `weft validate`: every error of every file, at once.

use std::io;
use std::path::PathBuf;

use weft_spec::Diagnostic;

use crate::cli::Format;
use crate::{exit, output, workflow};

/// Checks each file; prints its errors, or `ok`. Returns the exit code.
pub fn run(files: &[PathBuf], format: Format) -> io::Result<u8> {
    let mut all = Vec::new();
    let mut report = String::new();
    let mut failed_files = 0;

    for file in files {
        let loaded = workflow::load(file);
        if loaded.diagnostics.is_empty() {
            if format == Format::Text {
                output::stdout(&format!("{}: ok\n", file.display()))?;
            }
            continue;
        }
        failed_files += 1;
        for diagnostic in &loaded.diagnostics {
            report.push_str(&diagnostic.render(loaded.source.as_deref()));
            report.push('\n');
        }
        all.extend(loaded.diagnostics);
    }

    match format {
        Format::Text => {
            if !all.is_empty() {
                report.push_str(&summary(&all, failed_files));
                output::stderr(&report);
            }
        }
        Format::Json => {
            let json = serde_json::to_string_pretty(&all).map_err(io::Error::other)?;
            output::stdout(&format!("{json}\n"))?;
        }
    }

    Ok(if all.is_empty() {
        exit::SUCCESS
    } else {
        exit::INVALID
    })
}

fn summary(diagnostics: &[Diagnostic], failed_files: usize) -> String {
    let errors = diagnostics.len();
    let plural = |count: usize, word: &str| {
        if count == 1 {
            format!("{count} {word}")
        } else {
            format!("{count} {word}s")
        }
    };
    format!(
        "error: {} in {}\n",
        plural(errors, "error"),
        plural(failed_files, "file")
    )
}
