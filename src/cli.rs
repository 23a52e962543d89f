//! The command line: what `weft` accepts, as clap types.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// A declarative workflow engine: YAML graphs of plugin jobs on one shared worker pool.
#[derive(Debug, Parser)]
#[command(name = "weft", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// A folder to search for plugins (repeatable), before `WEFT_PLUGIN_PATH` and the folder
    /// of the `weft` executable.
    #[arg(long = "plugin-path", value_name = "DIR", global = true)]
    pub plugin_path: Vec<PathBuf>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands of `weft`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check workflow files and print every error at once, or `ok` per file.
    #[command(after_help = "\
Examples:
  weft validate workflows/wordcount.yaml
  weft validate workflows/*.yaml --format json
  weft validate --no-plugins draft.yaml

Each stage's job is checked against the plugins found, and literal `with` values against the
job's input schema; values that hold an expression are checked when the run computes them.

Exit codes: 0 every file is valid; 2 a file is invalid.")]
    Validate {
        /// The workflow files to check.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,

        /// Check the files alone: job names are not looked up in plugins.
        #[arg(long)]
        no_plugins: bool,

        /// How to print errors: text for people, json for editors and CI.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },

    /// Print a workflow's graph, with fan-out stages marked, for Graphviz or Mermaid.
    #[command(after_help = "\
Examples:
  weft graph workflows/wordcount.yaml | dot -Tsvg > wordcount.svg
  weft graph workflows/matrix.yaml --format mermaid

Solid edges carry data (an expression reads the stage); dashed edges are order only
(`needs`). Fan-out stages are drawn as stacked boxes.")]
    Graph {
        /// The workflow file.
        #[arg(value_name = "FILE")]
        file: PathBuf,

        /// The output language.
        #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
        format: GraphFormat,
    },

    /// Print the JSON Schema (draft-07) of the workflow format.
    #[command(after_help = "\
Examples:
  weft schema > schema/workflow.schema.json
  weft schema --plugins > .weft/workflow.schema.json

Editors that use yaml-language-server complete and check a workflow file that starts with:
  # yaml-language-server: $schema=../schema/workflow.schema.json")]
    Schema {
        /// Attach each job's input schema to `with`, so that editors complete job inputs too.
        #[arg(long)]
        plugins: bool,
    },

    /// List the plugins found, show one, or create a new one.
    #[command(after_help = "\
Examples:
  weft plugins
  weft plugins show std
  weft plugins new greet --path plugins/greet
  weft plugins --plugin-path plugins/greet/target/debug")]
    Plugins {
        /// What to do; lists the plugins without one.
        #[command(subcommand)]
        action: Option<PluginsAction>,
    },
}

/// The actions of `weft plugins`.
#[derive(Debug, Subcommand)]
pub enum PluginsAction {
    /// Print one plugin's jobs with their inputs and outputs: the plugin's manual.
    Show {
        /// The plugin's name.
        name: String,
    },

    /// Write a new plugin crate that builds with `cargo build` as it is.
    New {
        /// The plugin's name: lowercase letters, digits, `_` and `-`, starting with a letter.
        name: String,

        /// The folder to create (default: `./NAME`).
        #[arg(long, value_name = "DIR")]
        path: Option<PathBuf>,
    },
}

/// How `validate` prints its findings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Compiler-style messages on stderr, `ok` lines on stdout.
    Text,
    /// One JSON list of errors on stdout: file, line, column, path, message, hint, kind.
    Json,
}

/// The language of `graph`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    /// Graphviz DOT.
    Dot,
    /// A Mermaid flowchart.
    Mermaid,
}
