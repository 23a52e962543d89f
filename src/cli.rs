//! The command line: what `weft` accepts, as clap types.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// A declarative workflow engine: YAML graphs of plugin jobs on one shared worker pool.
#[derive(Debug, Parser)]
#[command(name = "weft", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
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

Exit codes: 0 every file is valid; 2 a file is invalid.")]
    Validate {
        /// The workflow files to check.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,

        /// Check the files alone, without loading plugins.
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

Editors that use yaml-language-server complete and check a workflow file that starts with:
  # yaml-language-server: $schema=../schema/workflow.schema.json")]
    Schema,
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
