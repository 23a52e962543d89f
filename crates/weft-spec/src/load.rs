//! From a file to a [`Workflow`]: each top-level key and each stage decoded on its own, so
//! that one bad stage does not hide the errors of the others.

use std::path::Path;

use serde_yaml::Value;

use crate::diagnostic::{Diagnostic, Kind, did_you_mean};
use crate::model::{WORKFLOW_KEYS, Workflow};
use crate::yaml::{self, SourceIndex, join};

/// A workflow file, read and decoded as far as it could be.
#[derive(Clone, Debug)]
pub struct Document {
    /// The file's name as the user gave it; diagnostics carry it.
    pub name: String,
    /// The file's text.
    pub source: String,
    /// What was decoded. Stages that did not decode are absent, and named in
    /// [`Document::broken_stages`].
    pub workflow: Workflow,
    /// Where each key of the file is.
    pub index: SourceIndex,
    /// Every stage id of the file, in file order, whether it decoded or not.
    pub stage_ids: Vec<String>,
    /// Stages that exist in the file but did not decode.
    pub broken_stages: Vec<String>,
    /// The problems found while decoding.
    pub diagnostics: Vec<Diagnostic>,
}

/// Reads and decodes the workflow file at `path`; `name` is how messages call it.
///
/// `Err` means nothing could be decoded (the file is unreadable, not YAML, empty or not a
/// mapping); otherwise decoding problems are in [`Document::diagnostics`].
pub fn load(path: &Path, name: &str) -> Result<Document, Vec<Diagnostic>> {
    let source = yaml::read(path, name).map_err(|diagnostic| vec![diagnostic])?;
    let stem = path
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned());
    load_str(source, name, stem)
}

/// Decodes workflow text; `stem` names the workflow when it has no `name`.
pub fn load_str(
    source: String,
    name: &str,
    stem: Option<String>,
) -> Result<Document, Vec<Diagnostic>> {
    let yaml::Parsed {
        value,
        index,
        duplicates,
    } = yaml::parse_tree(&source, name)?;

    let mapping = match value {
        Value::Mapping(mapping) => mapping,
        Value::Null => {
            return Err(vec![
                Diagnostic::new(Kind::Empty, name, "the file holds no workflow")
                    .with_hint("a workflow needs at least `version: 1` and `stages:`"),
            ]);
        }
        other => {
            let at = index.value("");
            let mut diagnostic = Diagnostic::new(
                Kind::InvalidValue,
                name,
                format!("a workflow is a mapping, not {}", describe_kind(&other)),
            )
            .with_hint("start with `version: 1` and `stages:`");
            if let Some(at) = at {
                diagnostic = diagnostic.at(at.line, at.column, at.width);
            }
            return Err(vec![diagnostic]);
        }
    };

    let mut document = Document {
        name: name.to_owned(),
        source: String::new(),
        workflow: Workflow::default(),
        index,
        stage_ids: Vec::new(),
        broken_stages: Vec::new(),
        diagnostics: duplicates,
    };
    document.decode_top(mapping);
    if document.workflow.name.is_none() {
        document.workflow.name = stem;
    }
    document.source = source;
    Ok(document)
}

fn describe_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

/// Whether a key is an extension key (`x-...`), which the format ignores.
fn is_extension(key: &Value) -> bool {
    matches!(key, Value::String(text) if text.starts_with("x-"))
}

/// Removes `x-` keys from `value` and, `depth - 1` levels down, from the mappings it holds.
fn strip_extensions(value: &mut Value, depth: usize) {
    if depth == 0 {
        return;
    }
    if let Value::Mapping(mapping) = value {
        mapping.retain(|key, _| !is_extension(key));
        for nested in mapping.values_mut() {
            strip_extensions(nested, depth - 1);
        }
    }
}

/// Removes `x-` keys from a stage and from its `retry` and `matrix`, leaving `with` alone:
/// job inputs may have keys of any name.
fn strip_stage_extensions(stage: &mut Value) {
    strip_extensions(stage, 1);
    if let Value::Mapping(mapping) = stage {
        for key in ["retry", "matrix"] {
            if let Some(nested) = mapping.get_mut(key) {
                strip_extensions(nested, 1);
            }
        }
    }
}

impl Document {
    fn decode_top(&mut self, mapping: serde_yaml::Mapping) {
        let mut workflow = Workflow {
            version: 1,
            ..Workflow::default()
        };
        let mut saw_stages = false;

        for (key, mut value) in mapping {
            if is_extension(&key) {
                continue;
            }
            let Some(key) = self.string_key(&key, "") else {
                continue;
            };

            macro_rules! set {
                ($field:expr) => {
                    if let Some(decoded) = self.field(value, &key) {
                        $field = decoded;
                    }
                };
            }

            match key.as_str() {
                "version" => set!(workflow.version),
                "name" => set!(workflow.name),
                "description" => set!(workflow.description),
                "inputs" => {
                    strip_extensions(&mut value, 2);
                    set!(workflow.inputs)
                }
                "plugins" => {
                    strip_extensions(&mut value, 2);
                    set!(workflow.plugins)
                }
                "defaults" => {
                    strip_extensions(&mut value, 2);
                    set!(workflow.defaults)
                }
                "max_parallel" => set!(workflow.max_parallel),
                "timeout" => set!(workflow.timeout),
                "on_error" => set!(workflow.on_error),
                "grace" => set!(workflow.grace),
                "outputs" => {
                    strip_extensions(&mut value, 1);
                    set!(workflow.outputs)
                }
                "stages" => {
                    saw_stages = true;
                    self.decode_stages(value, &mut workflow);
                }
                _ => self.unknown_key(&key, "", WORKFLOW_KEYS),
            }
        }

        if !saw_stages {
            self.diagnostics.push(
                Diagnostic::new(Kind::NoStages, &self.name, "missing key `stages`")
                    .with_hint("a workflow needs at least one stage, such as `stages: {hello: {job: std.echo, with: {value: hi}}}`"),
            );
        }
        self.workflow = workflow;
    }

    fn decode_stages(&mut self, value: Value, workflow: &mut Workflow) {
        let mapping = match value {
            Value::Mapping(mapping) => mapping,
            Value::Null => serde_yaml::Mapping::new(),
            other => {
                let diagnostic = self.at_value(
                    Diagnostic::new(
                        Kind::InvalidValue,
                        &self.name,
                        format!(
                            "`stages` is {}, not a mapping of stage ids to stages",
                            describe_kind(&other)
                        ),
                    )
                    .at_path("stages"),
                );
                self.diagnostics.push(diagnostic);
                return;
            }
        };

        workflow.stages.reserve(mapping.len());
        self.stage_ids.reserve(mapping.len());
        for (key, mut value) in mapping {
            if is_extension(&key) {
                continue;
            }
            let Some(id) = self.string_key(&key, "stages") else {
                continue;
            };
            let path = join("stages", &id);
            self.stage_ids.push(id.clone());
            if !crate::is_identifier(&id) {
                self.invalid_stage_id(&id, &path);
            }

            strip_stage_extensions(&mut value);
            match yaml::decode(value, &path, &self.name, &self.index) {
                Ok(stage) => {
                    workflow.stages.insert(id, stage);
                }
                Err(diagnostic) => {
                    self.diagnostics.push(diagnostic);
                    self.broken_stages.push(id);
                }
            }
        }

        if workflow.stages.is_empty() && self.broken_stages.is_empty() {
            let diagnostic = self.at_key(
                Diagnostic::new(Kind::NoStages, &self.name, "`stages` is empty")
                    .at_path("stages")
                    .with_hint("add a stage, such as `hello: {job: std.echo, with: {value: hi}}`"),
            );
            self.diagnostics.push(diagnostic);
        }
    }

    fn invalid_stage_id(&mut self, id: &str, path: &str) {
        let suggestion: String = id
            .trim_start_matches(|c: char| !c.is_ascii_alphabetic())
            .chars()
            .map(|c| match c {
                'A'..='Z' => c.to_ascii_lowercase(),
                'a'..='z' | '0'..='9' | '_' => c,
                _ => '_',
            })
            .collect();
        let mut hint =
            "a stage id is lowercase letters, digits and `_`, starting with a letter".to_owned();
        if crate::is_identifier(&suggestion) {
            hint.push_str(&format!(", such as `{suggestion}`"));
        }
        let diagnostic = self.at_key(
            Diagnostic::new(
                Kind::InvalidStageId,
                &self.name,
                format!("invalid stage id `{id}`"),
            )
            .at_path(path)
            .with_hint(hint),
        );
        self.diagnostics.push(diagnostic);
    }

    /// Decodes one top-level value, recording its error.
    fn field<T: serde::de::DeserializeOwned>(&mut self, value: Value, path: &str) -> Option<T> {
        yaml::decode(value, path, &self.name, &self.index)
            .map_err(|diagnostic| self.diagnostics.push(diagnostic))
            .ok()
    }

    fn string_key(&mut self, key: &Value, parent: &str) -> Option<String> {
        if let Value::String(text) = key {
            return Some(text.clone());
        }
        let text = match key {
            Value::Number(number) => number.to_string(),
            Value::Bool(flag) => flag.to_string(),
            Value::Null => "null".to_owned(),
            _ => "?".to_owned(),
        };
        let path = join(parent, &text);
        let diagnostic = self.at_key(
            Diagnostic::new(
                Kind::InvalidValue,
                &self.name,
                format!("key `{text}` is {}, not a name", describe_kind(key)),
            )
            .at_path(path)
            .with_hint("quote the key to make it a string"),
        );
        self.diagnostics.push(diagnostic);
        None
    }

    fn unknown_key(&mut self, key: &str, parent: &str, known: &[&str]) {
        let hint = did_you_mean(key, known.iter().copied()).unwrap_or_else(|| {
            format!(
                "the keys here are {}; keys that start with `x-` are ignored",
                crate::diagnostic::one_of(known)
            )
        });
        let diagnostic = self.at_key(
            Diagnostic::new(Kind::UnknownKey, &self.name, format!("unknown key `{key}`"))
                .at_path(join(parent, key))
                .with_hint(hint),
        );
        self.diagnostics.push(diagnostic);
    }

    /// Places a diagnostic at the key of its path.
    pub(crate) fn at_key(&self, diagnostic: Diagnostic) -> Diagnostic {
        match self.index.key(&diagnostic.path) {
            Some(at) => diagnostic.at(at.line, at.column, at.width),
            None => diagnostic,
        }
    }

    /// Places a diagnostic at the value of its path.
    pub(crate) fn at_value(&self, diagnostic: Diagnostic) -> Diagnostic {
        match self.index.value(&diagnostic.path) {
            Some(at) => diagnostic.at(at.line, at.column, at.width),
            None => diagnostic,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::STAGE_KEYS;

    fn load(source: &str) -> Document {
        load_str(source.to_owned(), "wf.yaml", Some("wf".to_owned()))
            .unwrap_or_else(|errors| panic!("{errors:?}"))
    }

    fn messages(document: &Document) -> Vec<String> {
        document
            .diagnostics
            .iter()
            .map(|d| {
                format!(
                    "{}:{} {} [{}]",
                    d.line.unwrap_or(0),
                    d.column.unwrap_or(0),
                    d.message,
                    d.hint.clone().unwrap_or_default()
                )
            })
            .collect()
    }

    #[test]
    fn a_minimal_workflow_decodes_with_defaults() {
        let document = load("stages:\n  hello:\n    job: std.echo\n    with: {value: hi}\n");

        assert!(
            document.diagnostics.is_empty(),
            "{:?}",
            document.diagnostics
        );
        assert_eq!(document.workflow.version, 1);
        assert_eq!(document.workflow.name.as_deref(), Some("wf"));
        assert_eq!(
            document.workflow.stages["hello"].job.to_string(),
            "std.echo"
        );
    }

    #[test]
    fn errors_of_several_stages_are_all_reported() {
        let document = load(
            "stages:\n  a:\n    job: std.echo\n    neds: [b]\n  b:\n    job: std.echo\n    max_parallel: 0\n",
        );

        assert_eq!(
            messages(&document),
            vec![
                "4:5 unknown key `neds` [did you mean `needs`?]",
                "7:19 invalid value: found integer `0`, expected an integer of at least 1 []",
            ]
        );
        assert_eq!(document.broken_stages, vec!["a", "b"]);
    }

    #[test]
    fn unknown_top_level_keys_get_a_suggestion() {
        let document = load("stage:\n  a: {job: std.echo}\n");

        assert_eq!(
            messages(&document),
            vec![
                "1:1 unknown key `stage` [did you mean `stages`?]",
                "0:0 missing key `stages` [a workflow needs at least one stage, such as `stages: {hello: {job: std.echo, with: {value: hi}}}`]",
            ]
        );
    }

    #[test]
    fn extension_keys_are_ignored_outside_job_inputs() {
        let document = load(
            "x-common: &common {timeout: 5s}\nstages:\n  x-template: {}\n  a:\n    <<: *common\n    job: std.echo\n    x-note: hi\n    retry: {attempts: 2, x-why: flaky}\n    with: {x-api-key: k}\noutputs:\n  x-draft: ${{ stages.a.output }}\n  kept: ${{ stages.a.output }}\n",
        );

        assert!(
            document.diagnostics.is_empty(),
            "{:?}",
            document.diagnostics
        );
        let stage = &document.workflow.stages["a"];
        assert_eq!(stage.timeout, Some(crate::Duration::from_secs(5)));
        assert_eq!(stage.with.as_ref().unwrap()["x-api-key"], "k");
        assert_eq!(document.workflow.stages.len(), 1);
        let outputs: Vec<&String> = document.workflow.outputs.keys().collect();
        assert_eq!(outputs, ["kept"]);
    }

    #[test]
    fn a_bad_duration_names_the_path_and_gives_the_syntax() {
        let document = load("stages:\n  a:\n    job: std.echo\n    timeout: soon\n");

        let diagnostic = &document.diagnostics[0];
        assert_eq!(diagnostic.kind, Kind::InvalidDuration);
        assert_eq!(diagnostic.path, "stages.a.timeout");
        assert_eq!((diagnostic.line, diagnostic.column), (Some(4), Some(14)));
        assert!(diagnostic.hint.as_deref().unwrap().contains("`30s`"));
    }

    #[test]
    fn a_typo_inside_retry_names_the_bad_key() {
        let document = load("stages:\n  a:\n    job: std.echo\n    retry: {attempt: 3}\n");

        let diagnostic = &document.diagnostics[0];
        assert_eq!(diagnostic.message, "unknown key `attempt`");
        assert_eq!(diagnostic.path, "stages.a.retry.attempt");
        assert_eq!(diagnostic.hint.as_deref(), Some("did you mean `attempts`?"));
    }

    #[test]
    fn a_key_given_twice_is_reported_beside_the_other_errors() {
        let document = load(
            "stages:\n  a:\n    job: std.echo\n    neds: b\n  b:\n    job: std.echo\n    with: {value: 1}\n    with: {value: 2}\n",
        );

        let messages: Vec<&str> = document
            .diagnostics
            .iter()
            .map(|diagnostic| diagnostic.message.as_str())
            .collect();
        assert_eq!(messages.len(), 2, "{messages:?}");
        assert!(
            messages.iter().any(|message| message.contains("`with`")),
            "{messages:?}"
        );
        assert!(messages.contains(&"unknown key `neds`"), "{messages:?}");
        // The first value of the repeated key is the one kept.
        let with = document.workflow.stages["b"].with.as_ref().unwrap();
        assert_eq!(with["value"], 1);
    }

    #[test]
    fn a_condition_that_is_neither_text_nor_a_boolean_says_what_it_takes() {
        let document = load("stages:\n  a:\n    job: std.echo\n    if: 5\n");

        let diagnostic = &document.diagnostics[0];
        assert_eq!(diagnostic.path, "stages.a.if");
        assert!(
            diagnostic
                .message
                .contains("an expression or `true`/`false`"),
            "{diagnostic:?}"
        );
        assert!(!diagnostic.message.contains("untagged"), "{diagnostic:?}");
        assert!(diagnostic.hint.as_deref().unwrap().contains("success()"));
    }

    #[test]
    fn a_retry_factor_under_one_or_not_a_number_is_refused() {
        for factor in ["0.5", "-3", ".nan", ".inf"] {
            let document = load(&format!(
                "stages:\n  a:\n    job: std.echo\n    retry: {{attempts: 2, factor: {factor}}}\n"
            ));

            let diagnostic = &document.diagnostics[0];
            assert!(
                diagnostic.message.starts_with("invalid retry factor"),
                "{factor}: {diagnostic:?}"
            );
            assert_eq!(diagnostic.path, "stages.a.retry.factor", "{factor}");
            assert_eq!(diagnostic.line, Some(4), "{factor}");
            assert!(diagnostic.hint.as_deref().unwrap().contains("at least 1"));
        }
        let document =
            load("stages:\n  a:\n    job: std.echo\n    retry: {attempts: 2, factor: 1}\n");
        assert!(
            document.diagnostics.is_empty(),
            "{:?}",
            document.diagnostics
        );
    }

    #[test]
    fn bad_stage_ids_are_reported_with_a_fixed_spelling() {
        let document = load("stages:\n  Count-Words: {job: std.echo}\n");

        assert_eq!(document.diagnostics[0].kind, Kind::InvalidStageId);
        assert!(
            document.diagnostics[0]
                .hint
                .as_deref()
                .unwrap()
                .ends_with("such as `count_words`")
        );
    }

    #[test]
    fn an_empty_file_is_refused() {
        let errors = load_str(String::new(), "wf.yaml", None).unwrap_err();
        assert_eq!(errors[0].kind, Kind::Empty);
    }

    #[test]
    fn a_list_at_the_top_is_refused() {
        let errors = load_str("- a\n".to_owned(), "wf.yaml", None).unwrap_err();
        assert_eq!(errors[0].message, "a workflow is a mapping, not a list");
    }

    #[test]
    fn stage_keys_match_the_schema() {
        let schema = serde_json::to_value(crate::schema()).unwrap();
        let stage = &schema["definitions"]["Stage"]["properties"];
        let keys: Vec<&str> = stage
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, STAGE_KEYS);
        let top: Vec<&str> = schema["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(top, WORKFLOW_KEYS);
    }
}
