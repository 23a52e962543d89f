//! `weft plugins`: what plugins were found, one plugin's manual, and a new plugin crate.

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::Value;
use weft_host::{Catalog, Plugin, SearchPath};

use crate::cli::PluginsAction;
use crate::{exit, output, scaffold};

/// Runs `weft plugins` with its action. Returns the exit code.
pub fn run(action: Option<PluginsAction>, folders: &[PathBuf]) -> io::Result<u8> {
    match action {
        None => list(folders),
        Some(PluginsAction::Show { name }) => show(&name, folders),
        Some(PluginsAction::New { name, path }) => new(&name, path),
    }
}

fn list(folders: &[PathBuf]) -> io::Result<u8> {
    let catalog = Catalog::discover(&SearchPath::standard(folders));
    let mut out = String::new();

    if catalog.plugins.is_empty() {
        out.push_str("no plugins found\n");
    }
    for plugin in catalog.plugins.values() {
        let _ = writeln!(out, "{}", heading(plugin));
        let width = plugin.jobs.keys().map(String::len).max().unwrap_or(0);
        for job in plugin.jobs.values() {
            let _ = writeln!(out, "  {:width$}  {}", job.name, job.description);
        }
        out.push('\n');
    }
    if !catalog.conflicts.is_empty() {
        out.push_str("conflicts (the first file is used):\n");
        for conflict in &catalog.conflicts {
            let _ = writeln!(
                out,
                "  `{}` is declared by `{}` and `{}`",
                conflict.name,
                conflict.first.display(),
                conflict.second.display()
            );
        }
        out.push('\n');
    }
    if !catalog.rejected.is_empty() {
        out.push_str("not usable as plugins:\n");
        for rejected in &catalog.rejected {
            let _ = writeln!(out, "  {}", rejected.error);
        }
        out.push('\n');
    }
    out.push_str("searched:\n");
    for folder in &catalog.searched {
        let _ = writeln!(out, "  {}", folder.display());
    }

    output::stdout(&out)?;
    Ok(exit::SUCCESS)
}

fn heading(plugin: &Plugin) -> String {
    format!(
        "{} {} (ABI {}.{}, SDK {}) {}",
        plugin.name,
        plugin.version,
        plugin.abi.0,
        plugin.abi.1,
        plugin.sdk_version,
        plugin.path.display()
    )
}

fn show(name: &str, folders: &[PathBuf]) -> io::Result<u8> {
    let catalog = Catalog::discover(&SearchPath::standard(folders));
    let Some(plugin) = catalog.plugins.get(name) else {
        let known: Vec<&str> = catalog.plugins.keys().map(String::as_str).collect();
        let hint =
            weft_spec::diagnostic::did_you_mean(name, known.iter().copied()).unwrap_or_else(|| {
                format!(
                    "the plugins found are {}",
                    weft_spec::diagnostic::one_of(&known)
                )
            });
        output::stderr(&format!("error: no plugin `{name}`\n  = hint: {hint}\n"));
        return Ok(exit::INVALID);
    };

    let mut out = String::new();
    let _ = writeln!(out, "{}\n", heading(plugin));
    for job in plugin.jobs.values() {
        let _ = writeln!(out, "{}.{}", plugin.name, job.name);
        let _ = writeln!(out, "  {}", job.description);
        if job.waits {
            out.push_str("  Runs on the waiting lane: it mostly waits rather than computes.\n");
        }
        out.push_str("  input:\n");
        describe(&mut out, &job.input_schema);
        out.push_str("  output:\n");
        describe(&mut out, &job.output_schema);
        out.push('\n');
    }
    output::stdout(&out)?;
    Ok(exit::SUCCESS)
}

/// Writes a schema as a list of fields (for objects) or a type line, indented.
fn describe(out: &mut String, schema: &Value) {
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();

    match schema["properties"].as_object() {
        Some(properties) if !properties.is_empty() => {
            for (name, property) in properties {
                let mut line = format!("    {name}: {}", type_of(property));
                if required.contains(&name.as_str()) {
                    line.push_str(", required");
                } else if let Some(default) = property.get("default") {
                    let _ = write!(line, ", default {default}");
                }
                if let Some(description) = property["description"].as_str() {
                    let _ = write!(line, " — {}", first_line(description));
                }
                out.push_str(&line);
                out.push('\n');
            }
        }
        _ => {
            let mut line = format!("    {}", type_of(schema));
            if let Some(description) = schema["description"].as_str() {
                let _ = write!(line, " — {}", first_line(description));
            }
            out.push_str(&line);
            out.push('\n');
        }
    }
}

/// A description on one line: doc comments arrive wrapped.
fn first_line(text: &str) -> String {
    text.split("\n\n")
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// A short type for a schema: `string`, `[integer]`, `"info" | "warn"`, `any`.
fn type_of(schema: &Value) -> String {
    if let Some(value) = schema.get("const") {
        return value.to_string();
    }
    if let Some(values) = schema["enum"].as_array() {
        return values
            .iter()
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join(" | ");
    }
    if let Some(options) = schema["anyOf"].as_array().or(schema["oneOf"].as_array()) {
        return options.iter().map(type_of).collect::<Vec<_>>().join(" | ");
    }
    match &schema["type"] {
        Value::String(kind) if kind == "array" => format!("[{}]", type_of(&schema["items"])),
        Value::String(kind) => kind.clone(),
        Value::Array(kinds) => kinds
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" | "),
        _ => "any".to_owned(),
    }
}

fn new(name: &str, path: Option<PathBuf>) -> io::Result<u8> {
    let folder = path.unwrap_or_else(|| Path::new(name).to_owned());
    match scaffold::write(name, &folder) {
        Ok(files) => {
            let mut out = format!("created the plugin `{name}` in {}:\n", folder.display());
            for file in files {
                let _ = writeln!(out, "  {}", file.display());
            }
            let _ = writeln!(
                out,
                "\nbuild it and list its jobs:\n  cd {} && cargo build\n  weft plugins --plugin-path {}",
                folder.display(),
                folder.join("target/debug").display()
            );
            output::stdout(&out)?;
            Ok(exit::SUCCESS)
        }
        Err(error) => {
            output::stderr(&format!("error: {error}\n"));
            Ok(exit::INVALID)
        }
    }
}
