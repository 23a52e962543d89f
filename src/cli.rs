//! The command line: what `weft` accepts, as clap types.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// A declarative workflow engine: YAML graphs of plugin jobs on one shared worker pool.
#[derive(Debug, Parser)]
#[command(name = "weft", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// More log detail on stderr: `-v` for the run's steps, `-vv` for every job. `RUST_LOG`
    /// overrides it.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

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
    /// Run a workflow; its outputs are printed on stdout as one JSON object.
    #[command(after_help = "\
Examples:
  weft run workflows/wordcount.yaml
  weft run workflows/wordcount.yaml -i dir=some/folder -i glob='*.md'
  weft run workflows/hashing.yaml --workers 4 --events run.jsonl
  weft run workflows/hashing.yaml --trace trace.json    # then open it in ui.perfetto.dev

While it runs, each stage's progress is shown on stderr when stderr is a terminal; a summary
of the stages and failures follows the outputs (neither with `--quiet`).

Inputs: `-i NAME=TEXT` takes TEXT as it is for a string input, and parses it as a YAML flow
value for the other types (`-i n=5`, `-i tags=[a,b]`); `-i NAME=@file.json` reads a file.

Ctrl-C cancels the run: running jobs are told to stop, stages not started do not start, and
`always()` stages still run. A second Ctrl-C exits at once.

Exit codes: 0 the run succeeded; 1 it failed; 2 the workflow or an input is invalid;
130 interrupted (SIGINT); 143 terminated (SIGTERM).")]
    Run(RunArgs),

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
  weft run workflows/fail-fast.yaml --events run.jsonl
  weft graph workflows/fail-fast.yaml --run run.jsonl | dot -Tsvg > run.svg

Solid edges carry data (an expression reads the stage); dashed edges are order only
(`needs`). Fan-out stages are drawn as stacked boxes. With `--run`, each stage is filled with
the colour of its final state in that run: succeeded green, failed red, cancelled grey,
skipped light grey and dashed, running yellow, not run white.

Exit codes: 0 drawn; 2 the workflow or the events file is invalid.")]
    Graph {
        /// The workflow file.
        #[arg(value_name = "FILE")]
        file: PathBuf,

        /// The output language.
        #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
        format: GraphFormat,

        /// An events file of a run of this workflow (`weft run --events FILE`): colour each
        /// stage by its final state in that run.
        #[arg(long, value_name = "EVENTS")]
        run: Option<PathBuf>,
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

/// The options of `weft run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The workflow file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// An input, as NAME=VALUE (repeatable).
    #[arg(short = 'i', long = "input", value_name = "NAME=VALUE")]
    pub inputs: Vec<String>,

    /// Compute threads of the pool (default: the available cores).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub workers: Option<u32>,

    /// The most threads of the waiting lane, for jobs that mostly wait (default: 256).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub wait_workers: Option<u32>,

    /// Write every state change of the run to FILE, one JSON object per line.
    #[arg(long, value_name = "FILE")]
    pub events: Option<PathBuf>,

    /// Write a Chrome trace of the run to FILE: a span per job attempt on its worker thread,
    /// per stage and for the run. Open it in Perfetto (ui.perfetto.dev) or chrome://tracing.
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,

    /// How long cancelled jobs have to stop before they are abandoned (overrides `grace`).
    #[arg(long, value_name = "DURATION")]
    pub grace: Option<weft_spec::Duration>,

    /// Print nothing on stderr but errors and warnings: no progress, no summary.
    #[arg(short, long)]
    pub quiet: bool,
}

/// The actions of `weft plugins`.
#[derive(Debug, Subcommand)]
pub enum PluginsAction {
    /// Print one plugin's jobs with their inputs and outputs: the plugin's manual.
    #[command(after_help = "\
Examples:
  weft plugins show std
  weft plugins show greet --plugin-path plugins/greet/target/debug")]
    Show {
        /// The plugin's name.
        name: String,
    },

    /// Write a new plugin crate that builds with `cargo build` as it is.
    #[command(after_help = "\
Examples:
  weft plugins new greet
  weft plugins new greet --path plugins/greet
  cd plugins/greet && cargo build && weft plugins show greet --plugin-path target/debug")]
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

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::Cli;

    /// Every command and subcommand, with its path of names.
    fn commands(command: &clap::Command, path: &str, out: &mut Vec<(String, clap::Command)>) {
        for sub in command.get_subcommands() {
            let name = format!("{path} {}", sub.get_name());
            out.push((name.clone(), sub.clone()));
            commands(sub, &name, out);
        }
    }

    #[test]
    fn every_command_shows_examples_in_its_help() {
        let mut all = Vec::new();
        commands(&Cli::command(), "weft", &mut all);
        assert!(all.len() >= 7, "{} commands", all.len());

        for (name, mut command) in all {
            if name.ends_with(" help") {
                continue;
            }
            let help = command.render_help().to_string();
            assert!(
                help.contains("Examples:"),
                "`{name} --help` shows no example"
            );
        }
    }
}
