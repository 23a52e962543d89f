//! One workflow file, loaded, checked and planned: what `validate`, `graph` and `run` start
//! from.

use std::path::{Path, PathBuf};

use weft_host::Catalog;
use weft_plan::Plan;
use weft_spec::{Checked, Diagnostic, Document, Kind};

/// A workflow file after every check, with all its problems.
pub struct Loaded {
    /// The file's text, when it could be read, for quoting in messages.
    pub source: Option<String>,
    /// The decoded file, when it parsed.
    pub document: Option<Document>,
    /// The graph, when the file has no error at all.
    pub plan: Option<Plan>,
    /// What the checks found out about the expressions.
    pub checked: Option<Checked>,
    /// The plugins found, when they were looked for.
    pub catalog: Option<Catalog>,
    /// Every problem found, sorted.
    pub diagnostics: Vec<Diagnostic>,
}

/// Which plugins a workflow is checked against.
#[derive(Clone, Copy, Debug)]
pub enum Plugins<'a> {
    /// None: the file is checked alone.
    Skip,
    /// Those found in the standard places, after these folders.
    Search(&'a [PathBuf]),
}

/// Loads, checks and plans the workflow at `path`.
pub fn load(path: &Path, plugins: Plugins<'_>) -> Loaded {
    let mut warm = match plugins {
        Plugins::Skip => None,
        Plugins::Search(folders) => warm_up(folders),
    };
    let loaded = load_with(path, plugins, &mut warm);
    if let Some(warm) = warm {
        let _ = warm.join();
    }
    loaded
}

/// Loads the plugins of the standard folders on a thread of its own, while the file is read
/// and checked.
///
/// Those folders do not depend on the file, and loading a library (mapping it, resolving its
/// symbols, reading its descriptor) is most of the plugin search. The search that counts still
/// runs after the file is read, in its own order and with the file's own `plugins:` entries;
/// it finds these libraries in the host's cache. `None` when no thread could be started: the
/// search then loads them itself.
fn warm_up(folders: &[PathBuf]) -> Option<std::thread::JoinHandle<()>> {
    let search = weft_host::SearchPath::standard(folders);
    std::thread::Builder::new()
        .name("plugins".to_owned())
        .spawn(move || drop(Catalog::discover(&search)))
        .ok()
}

fn load_with(
    path: &Path,
    plugins: Plugins<'_>,
    warm: &mut Option<std::thread::JoinHandle<()>>,
) -> Loaded {
    let name = path.display().to_string();
    let document = match weft_spec::load(path, &name) {
        Ok(document) => document,
        Err(mut diagnostics) => {
            weft_spec::diagnostic::sort(&mut diagnostics);
            // The text to quote, even when it is not UTF-8; never a file too large to check.
            let readable = std::fs::metadata(path).is_ok_and(|metadata| {
                metadata.is_file() && metadata.len() <= weft_spec::yaml::MAX_FILE_BYTES
            });
            let source = readable
                .then(|| std::fs::read(path).ok())
                .flatten()
                .map(|bytes| String::from_utf8_lossy(&bytes).into_owned());
            return Loaded {
                source,
                document: None,
                plan: None,
                checked: None,
                catalog: None,
                diagnostics,
            };
        }
    };

    let checked = weft_spec::check(&document);
    let mut diagnostics = document.diagnostics.clone();
    diagnostics.extend(checked.diagnostics.iter().cloned());

    let plan = match Plan::build(weft_runtime::stage_nodes(&document.workflow, &checked)) {
        Ok(plan) => Some(plan),
        Err(cycles) => {
            diagnostics.extend(
                cycles
                    .iter()
                    .filter(|cycle| cycle.path.len() > 2)
                    .map(|cycle| cycle_diagnostic(&document, cycle)),
            );
            None
        }
    };

    let catalog = match plugins {
        Plugins::Skip => None,
        Plugins::Search(folders) => {
            let search = weft_host::search_for(&document, path, folders);
            if let Some(warm) = warm.take() {
                let _ = warm.join();
            }
            let catalog = Catalog::discover(&search);
            diagnostics.extend(weft_host::check(&document, &catalog));
            Some(catalog)
        }
    };

    weft_spec::diagnostic::sort(&mut diagnostics);
    Loaded {
        source: Some(document.source.clone()),
        plan: plan.filter(|_| diagnostics.is_empty()),
        checked: Some(checked),
        catalog,
        document: Some(document),
        diagnostics,
    }
}

fn cycle_diagnostic(document: &Document, cycle: &weft_plan::Cycle) -> Diagnostic {
    let first = &cycle.path[0];
    let path = format!("stages.{first}");
    let diagnostic = Diagnostic::new(
        Kind::Cycle,
        &document.name,
        format!("stages depend on each other in a cycle: {cycle}"),
    )
    .at_path(path.clone())
    .with_hint("a workflow is a graph without cycles: remove one of the `needs` or stage references on the cycle");

    match document.index.key(&path) {
        Some(at) => diagnostic.at(at.line, at.column, at.width),
        None => diagnostic,
    }
}
