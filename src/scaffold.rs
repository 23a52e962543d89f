//! `weft plugins new`: a plugin crate that builds as it is, with one example job and a test.

use std::path::{Path, PathBuf};

/// Why a scaffold could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    /// The name cannot name a plugin.
    #[error(
        "invalid plugin name `{0}`\n  = hint: a plugin name is lowercase letters, digits, `_` and `-`, starting with a letter"
    )]
    Name(String),
    /// The folder is taken.
    #[error(
        "`{0}` already exists and is not empty\n  = hint: choose another folder with `--path DIR`"
    )]
    Exists(PathBuf),
    /// Writing failed.
    #[error("cannot write `{path}`: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// Where the SDK crate is in this checkout, when weft runs from one.
const SDK_IN_CHECKOUT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/crates/weft-plugin");

/// Writes the crate for plugin `name` into `folder`; returns the files written.
pub fn write(name: &str, folder: &Path) -> Result<Vec<PathBuf>, ScaffoldError> {
    if !weft_host::is_plugin_name(name) {
        return Err(ScaffoldError::Name(name.to_owned()));
    }
    if folder
        .read_dir()
        .is_ok_and(|mut entries| entries.next().is_some())
    {
        return Err(ScaffoldError::Exists(folder.to_owned()));
    }

    let sdk = if Path::new(SDK_IN_CHECKOUT).join("Cargo.toml").is_file() {
        format!("{{ path = {:?} }}", SDK_IN_CHECKOUT)
    } else {
        format!("\"{}\"", env!("CARGO_PKG_VERSION"))
    };
    let files = [
        ("Cargo.toml", manifest(name, &sdk)),
        ("src/lib.rs", library(name)),
        (".gitignore", "/target\n".to_owned()),
    ];

    let mut written = Vec::new();
    for (relative, text) in files {
        let path = folder.join(relative);
        let write = || {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&path, text)
        };
        write().map_err(|source| ScaffoldError::Write {
            path: path.clone(),
            source,
        })?;
        written.push(path);
    }
    Ok(written)
}

fn manifest(name: &str, sdk: &str) -> String {
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
# A cdylib for weft to load; an rlib so that tests can call the jobs.
crate-type = ["cdylib", "rlib"]

[dependencies]
weft-plugin = {sdk}
schemars = "1"
serde = {{ version = "1", features = ["derive"] }}
serde_json = "1"

# Jobs turn panics into errors; weft refuses plugins built with `panic = "abort"`.
[profile.release]
panic = "unwind"

# A workspace of its own, so that the crate builds outside any other.
[workspace]
"#
    )
}

fn library(name: &str) -> String {
    format!(
        r#"//! The `{name}` plugin for weft.
//!
//! Build it with `cargo build`, then list its jobs with
//! `weft plugins --plugin-path target/debug`, and use them in a workflow as `{name}.greet`.

use schemars::JsonSchema;
use serde::{{Deserialize, Serialize}};
use weft_plugin::{{Job, JobContext, JobError}};

/// Greets someone by name.
#[derive(Default)]
pub struct Greet;

/// The input of `greet`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GreetInput {{
    /// Whom to greet.
    pub name: String,
}}

/// The output of `greet`.
#[derive(Serialize, JsonSchema)]
pub struct GreetOutput {{
    /// The greeting.
    pub greeting: String,
}}

impl Job for Greet {{
    const NAME: &'static str = "greet";
    const DESCRIPTION: &'static str = "Greets someone by name.";
    type Input = GreetInput;
    type Output = GreetOutput;

    fn run(&self, context: &JobContext<'_>, input: GreetInput) -> Result<GreetOutput, JobError> {{
        context.check()?;
        if input.name.is_empty() {{
            return Err(JobError::fatal("`name` is empty"));
        }}
        context.info(&format!("greeting {{}}", input.name));
        Ok(GreetOutput {{
            greeting: format!("hello, {{}}!", input.name),
        }})
    }}
}}

weft_plugin::export_plugin!(name: "{name}", jobs: [Greet]);

#[cfg(test)]
mod tests {{
    use weft_plugin::testing::TestCall;

    use super::*;

    #[test]
    fn greet_says_hello() {{
        let output = TestCall::new()
            .run(&Greet, serde_json::json!({{"name": "Ada"}}))
            .unwrap();
        assert_eq!(output, serde_json::json!({{"greeting": "hello, Ada!"}}));
    }}

    #[test]
    fn greet_refuses_an_empty_name() {{
        let error = TestCall::new()
            .run(&Greet, serde_json::json!({{"name": ""}}))
            .unwrap_err();
        assert!(!error.is_retryable());
    }}
}}
"#
    )
}
