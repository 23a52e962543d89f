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
        let mut loaded = workflow::load(file, plugins);
        let diagnostics = std::mem::take(&mut loaded.diagnostics);
        let source = loaded.source.take();
        free_in_background(loaded);

        if diagnostics.is_empty() {
            if format == Format::Text {
                output::stdout(&format!("{}: ok\n", file.display()))?;
            }
            continue;
        }
        failed_files += 1;
        if format == Format::Text {
            let shown = &diagnostics[..diagnostics.len().min(MAX_SHOWN)];
            report.push_str(&render_all(shown, source.as_deref()));
            if diagnostics.len() > MAX_SHOWN {
                report.push_str(&format!(
                    "... and {} more errors in {}\n\n",
                    diagnostics.len() - MAX_SHOWN,
                    file.display()
                ));
            }
        }
        all.extend(diagnostics);
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

/// Frees a checked file on a thread of its own.
///
/// `validate` keeps only the diagnostics and the source of a file. Freeing the rest of a large
/// workflow (its stages, plan and index) takes about a tenth of the time its check took, so it
/// is done beside the next file's check, or beside printing the report. A process that ends
/// first does not wait for it: the memory goes back to the system with the process.
fn free_in_background(loaded: workflow::Loaded) {
    let spawned = std::thread::Builder::new()
        .name("free".to_owned())
        .spawn(move || drop(loaded));
    // Dropping the handle detaches the thread; when no thread could be started, the value
    // went down with the closure already.
    drop(spawned);
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
