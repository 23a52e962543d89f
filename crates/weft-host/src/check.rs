//! Checking a workflow against the plugins found: every stage's job exists, plugin versions
//! satisfy the workflow's ranges, and literal `with` values match each job's input schema.
//! Values that hold an expression are only known at run time, and are checked then.

use std::path::{Path, PathBuf};

use serde_json::Value;
use weft_spec::diagnostic::{closest, did_you_mean, one_of};
use weft_spec::{Diagnostic, Document, Kind, expr};

use crate::discover::{Catalog, SearchPath};
use crate::plugin::InputProblem;

/// The search for a workflow: its `plugins:` paths (relative to the workflow's folder) first,
/// then the standard places.
pub fn search_for(
    document: &Document,
    workflow_file: &Path,
    flag_folders: &[PathBuf],
) -> SearchPath {
    let mut search = SearchPath::standard(flag_folders);
    let base = workflow_file.parent().unwrap_or(Path::new("."));
    for (name, source) in &document.workflow.plugins {
        if let Some(path) = &source.path {
            search.pin(name, base.join(path));
        }
    }
    search
}

/// Checks every stage's job and literal input against `catalog`.
pub fn check(document: &Document, catalog: &Catalog) -> Vec<Diagnostic> {
    let mut diagnostics = Vec::new();
    let report = |kind: Kind, path: String, message: String, hint: Option<String>| {
        let diagnostic = Diagnostic::new(kind, &document.name, message)
            .at_path(path.clone())
            .with_hint_opt(hint);
        match document.index.value(&path) {
            Some(at) => diagnostic.at(at.line, at.column, at.width),
            None => diagnostic,
        }
    };

    let report_key = |kind: Kind, path: String, message: String, hint: Option<String>| {
        let diagnostic = Diagnostic::new(kind, &document.name, message)
            .at_path(path.clone())
            .with_hint_opt(hint);
        match document.index.key(&path) {
            Some(at) => diagnostic.at(at.line, at.column, at.width),
            None => diagnostic,
        }
    };

    for misplaced in &catalog.misplaced {
        diagnostics.push(report(
            Kind::UnknownPlugin,
            format!("plugins.{}.path", misplaced.name),
            format!(
                "plugin `{}` is not where `path` says: {}",
                misplaced.name, misplaced.problem
            ),
            Some(
                "point `path` at the plugin's library file, or at the folder that holds it; a relative path starts from the workflow's folder"
                    .to_owned(),
            ),
        ));
    }

    for (name, source) in &document.workflow.plugins {
        let (Some(range), Some(plugin)) = (&source.version, catalog.plugins.get(name)) else {
            continue;
        };
        if !range.matches(&plugin.version) {
            diagnostics.push(report(
                Kind::PluginVersion,
                format!("plugins.{name}.version"),
                format!(
                    "plugin `{name}` is version {}, outside the range `{range}`",
                    plugin.version
                ),
                Some(format!("the plugin found is `{}`", plugin.path.display())),
            ));
        }
    }

    let no_input = Value::Object(Default::default());
    for (id, stage) in &document.workflow.stages {
        let job_path = || format!("stages.{id}.job");
        let plugin_name = stage.job.plugin.as_str();

        if let Some(conflict) = catalog.conflict(plugin_name) {
            diagnostics.push(report(
                Kind::UnknownPlugin,
                job_path(),
                format!("two files declare the plugin `{plugin_name}`"),
                Some(format!(
                    "keep one of `{}` and `{}`",
                    conflict.first.display(),
                    conflict.second.display()
                )),
            ));
            continue;
        }
        let Some(plugin) = catalog.plugins.get(plugin_name) else {
            diagnostics.push(report(
                Kind::UnknownPlugin,
                job_path(),
                format!("unknown plugin `{plugin_name}` in job `{}`", stage.job),
                Some(missing_plugin_hint(plugin_name, catalog)),
            ));
            continue;
        };
        let Some(job) = plugin.jobs.get(&stage.job.job) else {
            let jobs: Vec<&str> = plugin.jobs.keys().map(String::as_str).collect();
            let hint = match closest(&stage.job.job, jobs.iter().copied()) {
                Some(job) => format!("did you mean `{plugin_name}.{job}`?"),
                None => format!("the jobs of `{plugin_name}` are {}", one_of(&jobs)),
            };
            diagnostics.push(report(
                Kind::UnknownJob,
                job_path(),
                format!("plugin `{plugin_name}` has no job `{}`", stage.job.job),
                Some(hint),
            ));
            continue;
        };

        let with = stage.with.as_ref().unwrap_or(&no_input);
        if is_expression(with) {
            continue;
        }
        let problems = job.check_input(with);
        if problems.is_empty() {
            continue;
        }
        let job_name = stage.job.to_string();
        let hint = format!("`weft plugins show {plugin_name}` describes the inputs of its jobs");
        for problem in problems {
            let (pointer, diagnostic) = match problem {
                InputProblem::UnknownKey { pointer, key } => {
                    let keys = if pointer.is_empty() {
                        job.input_keys()
                    } else {
                        Vec::new()
                    };
                    let path = format!("stages.{id}.with{}.{key}", pointer_to_path(&pointer));
                    let hint = did_you_mean(&key, keys.iter().copied()).unwrap_or(hint.clone());
                    let diagnostic = report_key(
                        Kind::InvalidJobInput,
                        path,
                        format!("unknown key `{key}` in the input of `{job_name}`"),
                        Some(hint),
                    );
                    (pointer, diagnostic)
                }
                InputProblem::MissingKey { pointer, key } => {
                    let path = format!("stages.{id}.with{}", pointer_to_path(&pointer));
                    let diagnostic = report_key(
                        Kind::InvalidJobInput,
                        path,
                        format!("missing key `{key}` in the input of `{job_name}`"),
                        Some(hint.clone()),
                    );
                    (pointer, diagnostic)
                }
                InputProblem::Invalid { pointer, message } => {
                    let path = format!("stages.{id}.with{}", pointer_to_path(&pointer));
                    let diagnostic = report(
                        Kind::InvalidJobInput,
                        path,
                        format!("invalid input for `{job_name}`: {message}"),
                        Some(hint.clone()),
                    );
                    (pointer, diagnostic)
                }
            };
            if !crosses_expression(with, &pointer) {
                diagnostics.push(diagnostic);
            }
        }
    }
    diagnostics
}

fn missing_plugin_hint(name: &str, catalog: &Catalog) -> String {
    let near: Vec<String> = catalog
        .rejected
        .iter()
        .filter(|rejected| {
            rejected
                .path
                .file_stem()
                .is_some_and(|stem| stem.to_string_lossy().contains(name))
        })
        .map(|rejected| rejected.error.to_string())
        .collect();
    if let Some(reason) = near.first() {
        return format!("a file that may be it is not usable: {reason}");
    }
    let known: Vec<&str> = catalog.plugins.keys().map(String::as_str).collect();
    if let Some(suggestion) = did_you_mean(name, known.iter().copied()) {
        return suggestion;
    }
    let searched: Vec<String> = catalog
        .searched
        .iter()
        .map(|folder| folder.display().to_string())
        .collect();
    format!(
        "searched {}; add a folder with `--plugin-path DIR` or `WEFT_PLUGIN_PATH`",
        if searched.is_empty() {
            "nothing".to_owned()
        } else {
            one_of(&searched)
        }
    )
}

/// Whether a value is a string holding an expression.
fn is_expression(value: &Value) -> bool {
    matches!(value, Value::String(text) if expr::has_expression(text))
}

/// Whether the JSON pointer reaches into (or onto) a string that holds an expression.
fn crosses_expression(value: &Value, pointer: &str) -> bool {
    let mut current = value;
    if is_expression(current) {
        return true;
    }
    for token in pointer.split('/').skip(1) {
        let token = token.replace("~1", "/").replace("~0", "~");
        let next = match current {
            Value::Object(map) => map.get(&token),
            Value::Array(items) => token.parse::<usize>().ok().and_then(|at| items.get(at)),
            _ => None,
        };
        let Some(next) = next else {
            return false;
        };
        if is_expression(next) {
            return true;
        }
        current = next;
    }
    false
}

/// `/a/0/b` as a key path suffix: `.a[0].b`.
fn pointer_to_path(pointer: &str) -> String {
    let mut path = String::new();
    for token in pointer.split('/').skip(1) {
        let token = token.replace("~1", "/").replace("~0", "~");
        if token.parse::<usize>().is_ok() {
            path.push_str(&format!("[{token}]"));
        } else {
            path.push('.');
            path.push_str(&token);
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_become_key_paths() {
        assert_eq!(pointer_to_path(""), "");
        assert_eq!(pointer_to_path("/values/2/name"), ".values[2].name");
        assert_eq!(pointer_to_path("/a~1b"), ".a/b");
    }

    #[test]
    fn errors_at_or_below_an_expression_are_left_to_run_time() {
        let with = serde_json::json!({"values": "${{ stages.a.outputs }}", "n": [1, "${{ x }}"]});

        assert!(crosses_expression(&with, "/values"));
        assert!(crosses_expression(&with, "/n/1"));
        assert!(!crosses_expression(&with, "/n/0"));
        assert!(!crosses_expression(&with, ""));
    }
}
