//! `weft validate`: every error of every file, at once.

use std::io;
use std::path::PathBuf;

use weft_spec::Diagnostic;
use weft_spec::diagnostic::render_all;

use crate::cli::Format;
use crate::workflow::Plugins;
use crate::{exit, output, workflow};

/// The most errors of one file printed as text; `--format json` gives them all.
const MAX_SHOWN: usize = 200;

/// Checks each file; prints its errors, or `ok`. Returns the exit code.
pub fn run(files: &[PathBuf], format: Format, plugins: Plugins<'_>) -> io::Result<u8> {
    let mut all = Vec::new();
    let mut report = String::new();
    let mut failed_files = 0;

    for file in files {
        let loaded = workflow::load(file, plugins);
        if loaded.diagnostics.is_empty() {
            if format == Format::Text {
                output::stdout(&format!("{}: ok\n", file.display()))?;
            }
            continue;
        }
        failed_files += 1;
        if format == Format::Text {
            let shown = &loaded.diagnostics[..loaded.diagnostics.len().min(MAX_SHOWN)];
            report.push_str(&render_all(shown, loaded.source.as_deref()));
            if loaded.diagnostics.len() > MAX_SHOWN {
                report.push_str(&format!(
                    "... and {} more errors in {}\n\n",
                    loaded.diagnostics.len() - MAX_SHOWN,
                    file.display()
                ));
            }
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
