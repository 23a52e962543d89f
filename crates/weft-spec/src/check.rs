//! The checks that need the whole file: references between stages, inputs and expressions.
//!
//! Every expression is compiled here, and every name it reads is checked against what exists:
//! stages, inputs, the fan-out variables and the functions of `if`. What the expressions read
//! of other stages becomes the data edges of the graph.

use std::collections::{BTreeSet, HashSet};

use indexmap::IndexMap;
use minijinja::Environment;
use serde_json::Value;

use crate::diagnostic::{Diagnostic, Kind, did_you_mean, one_of};
use crate::expr::{self, Piece};
use crate::load::Document;
use crate::model::{Condition, ForEach, SUPPORTED_VERSIONS, Stage, type_name};
use crate::yaml::join;

/// The functions `if` may call.
pub const STATUS_FUNCTIONS: &[&str] = &["success", "failure", "cancelled", "always"];

/// Global functions that MiniJinja itself provides.
const BUILTIN_FUNCTIONS: &[&str] = &["range", "dict", "namespace"];

/// What a stage may read of another.
const STAGE_ATTRIBUTES: &[&str] = &["output", "outputs", "results", "status"];

/// What a checked file adds to its [`Document`].
#[derive(Clone, Debug, Default)]
pub struct Checked {
    /// For each stage (in file order), the stages its expressions read.
    pub reads: IndexMap<String, BTreeSet<String>>,
    /// For each stage, whether its `if` calls one of the status functions; when it does not,
    /// `success()` is implied, as in GitHub Actions.
    pub condition_has_status: IndexMap<String, bool>,
    /// The problems found.
    pub diagnostics: Vec<Diagnostic>,
}

/// Where an expression sits, which decides the names it may read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scope<'a> {
    /// A stage's `with`.
    With { stage: &'a str, fan_out: bool },
    /// A stage's `for_each` or a matrix axis: before any item exists.
    Items { stage: &'a str },
    /// A stage's `if`.
    Condition { stage: &'a str },
    /// The workflow's `outputs`.
    Outputs,
}

impl Scope<'_> {
    fn where_(self) -> &'static str {
        match self {
            Scope::With { .. } => "`with`",
            Scope::Items { .. } => "`for_each` and `matrix`",
            Scope::Condition { .. } => "`if`",
            Scope::Outputs => "`outputs`",
        }
    }

    fn current_stage(self) -> Option<String> {
        match self {
            Scope::With { stage, .. } | Scope::Items { stage } | Scope::Condition { stage } => {
                Some(stage.to_owned())
            }
            Scope::Outputs => None,
        }
    }
}

/// Checks a decoded document: versions, references, expressions and inputs.
pub fn check(document: &Document) -> Checked {
    let mut checker = Checker {
        document,
        stage_ids: document.stage_ids.iter().map(String::as_str).collect(),
        environment: expr::environment(),
        checked: Checked::default(),
    };

    checker.version();
    checker.inputs();
    checker.durations();
    for (id, stage) in &document.workflow.stages {
        checker.stage(id, stage);
    }
    for (name, value) in &document.workflow.outputs {
        let mut reads = BTreeSet::new();
        checker.value(value, || join("outputs", name), Scope::Outputs, &mut reads);
    }
    checker.checked
}

struct Checker<'a> {
    document: &'a Document,
    /// Every stage id of the file, decoded or not.
    stage_ids: HashSet<&'a str>,
    environment: Environment<'static>,
    checked: Checked,
}

impl Checker<'_> {
    /// Reports a problem with the value at `path`.
    fn report(&mut self, kind: Kind, path: &str, message: String, hint: Option<String>) {
        let diagnostic = Diagnostic::new(kind, &self.document.name, message)
            .at_path(path)
            .with_hint_opt(hint);
        let diagnostic = self.document.at_value(diagnostic);
        self.checked.diagnostics.push(diagnostic);
    }

    /// Reports a problem with the key at `path` itself.
    fn report_key(&mut self, kind: Kind, path: &str, message: String, hint: Option<String>) {
        let diagnostic = Diagnostic::new(kind, &self.document.name, message)
            .at_path(path)
            .with_hint_opt(hint);
        let diagnostic = self.document.at_key(diagnostic);
        self.checked.diagnostics.push(diagnostic);
    }

    fn version(&mut self) {
        let version = self.document.workflow.version;
        if !SUPPORTED_VERSIONS.contains(&version) {
            let supported: Vec<String> = SUPPORTED_VERSIONS.iter().map(u64::to_string).collect();
            self.report(
                Kind::UnsupportedVersion,
                "version",
                format!("unsupported format version `{version}`"),
                Some(format!("this weft reads version {}", one_of(&supported))),
            );
        }
    }

    fn inputs(&mut self) {
        for (name, input) in &self.document.workflow.inputs {
            let path = join("inputs", name);
            if !crate::is_identifier(name) {
                self.report(
                    Kind::InvalidValue,
                    &path,
                    format!("invalid input name `{name}`"),
                    Some("an input name is lowercase letters, digits and `_`, starting with a letter".to_owned()),
                );
            }
            if let Some(default) = &input.default {
                if !input.ty.admits(default) {
                    self.report(
                        Kind::InvalidValue,
                        &join(&path, "default"),
                        format!(
                            "the default of input `{name}` is {}, not {}",
                            type_name(default),
                            input.ty.name()
                        ),
                        None,
                    );
                } else if let Some(allowed) = &input.allowed
                    && !allowed.contains(default)
                {
                    self.report(
                        Kind::InvalidValue,
                        &join(&path, "default"),
                        format!("the default of input `{name}` is not one of its `enum` values"),
                        Some(format!("allowed: {}", render_list(allowed))),
                    );
                }
            }
            for (at, value) in input.allowed.iter().flatten().enumerate() {
                if !input.ty.admits(value) {
                    self.report(
                        Kind::InvalidValue,
                        &format!("{path}.enum[{at}]"),
                        format!(
                            "`enum` value {value} of input `{name}` is not {}",
                            input.ty.name()
                        ),
                        None,
                    );
                }
            }
        }
    }

    fn durations(&mut self) {
        let workflow = &self.document.workflow;
        let mut zero = Vec::new();
        if workflow
            .timeout
            .is_some_and(|timeout| timeout.get().is_zero())
        {
            zero.push("timeout".to_owned());
        }
        if let Some(defaults) = &workflow.defaults
            && defaults
                .timeout
                .is_some_and(|timeout| timeout.get().is_zero())
        {
            zero.push("defaults.timeout".to_owned());
        }
        for (id, stage) in &workflow.stages {
            if stage.timeout.is_some_and(|timeout| timeout.get().is_zero()) {
                zero.push(format!("stages.{id}.timeout"));
            }
        }
        for path in zero {
            self.report(
                Kind::InvalidDuration,
                &path,
                "a timeout of zero leaves no time to run".to_owned(),
                Some("give a positive duration, such as `30s`, or remove the key".to_owned()),
            );
        }
    }

    fn stage(&mut self, id: &str, stage: &Stage) {
        let path = join("stages", id);
        let mut reads = BTreeSet::new();

        self.needs(id, stage, &path);

        if stage.for_each.is_some() && stage.matrix.is_some() {
            self.report_key(
                Kind::FanOutMisuse,
                &join(&path, "matrix"),
                format!("stage `{id}` has both `for_each` and `matrix`"),
                Some("a stage fans out one way: keep `for_each` or `matrix`".to_owned()),
            );
        }
        if let Some(for_each) = &stage.for_each {
            self.items(for_each, &join(&path, "for_each"), id, &mut reads);
        }
        if let Some(matrix) = &stage.matrix {
            let matrix_path = join(&path, "matrix");
            if matrix.axes.is_empty() && matrix.include.is_empty() {
                self.report(
                    Kind::FanOutMisuse,
                    &matrix_path,
                    format!("the matrix of stage `{id}` has no axis"),
                    Some("add an axis, such as `size: [1, 2]`, or an `include` list".to_owned()),
                );
            }
            for (axis, values) in &matrix.axes {
                self.items(values, &join(&matrix_path, axis), id, &mut reads);
            }
            for (at, exclude) in matrix.exclude.iter().enumerate() {
                for key in exclude.keys() {
                    if !matrix.axes.contains_key(key) {
                        let axes: Vec<&str> = matrix.axes.keys().map(String::as_str).collect();
                        self.report(
                            Kind::UnknownKey,
                            &format!("{matrix_path}.exclude[{at}].{key}"),
                            format!("`exclude` names `{key}`, which is not an axis of the matrix"),
                            Some(
                                did_you_mean(key, axes.iter().copied())
                                    .unwrap_or_else(|| format!("the axes are {}", one_of(&axes))),
                            ),
                        );
                    }
                }
            }
        }

        if let Some(condition) = &stage.condition {
            self.condition(id, condition, &join(&path, "if"), &mut reads);
        }
        if let Some(with) = &stage.with {
            let scope = Scope::With {
                stage: id,
                fan_out: stage.is_fan_out(),
            };
            self.value(with, || join(&path, "with"), scope, &mut reads);
        }

        self.checked.reads.insert(id.to_owned(), reads);
    }

    fn needs(&mut self, id: &str, stage: &Stage, path: &str) {
        let need_path = |at: usize| format!("{path}.needs[{at}]");
        for (at, need) in stage.needs.iter().enumerate() {
            if need == id {
                self.report(
                    Kind::SelfDependency,
                    &need_path(at),
                    format!("stage `{id}` needs itself"),
                    Some("remove it from its own `needs`".to_owned()),
                );
            } else if !self.stage_exists(need) {
                let hint = self.stage_hint(need);
                self.report(
                    Kind::UnknownStage,
                    &need_path(at),
                    format!("stage `{id}` needs `{need}`, which is not a stage"),
                    Some(hint),
                );
            }
        }
    }

    fn stage_exists(&self, id: &str) -> bool {
        self.stage_ids.contains(id)
    }

    fn stage_hint(&self, id: &str) -> String {
        let known: Vec<&str> = self.document.stage_ids.iter().map(String::as_str).collect();
        did_you_mean(id, known.iter().copied())
            .unwrap_or_else(|| format!("the stages are {}", one_of(&known)))
    }

    /// `for_each` or a matrix axis: a list, or one expression.
    fn items(&mut self, items: &ForEach, path: &str, stage: &str, reads: &mut BTreeSet<String>) {
        match items {
            ForEach::Items(values) => {
                for (at, value) in values.iter().enumerate() {
                    let item_path = || format!("{path}[{at}]");
                    self.value(value, item_path, Scope::Items { stage }, reads);
                }
            }
            ForEach::Expr(text) => match expr::whole(text) {
                Some(source) => self.expression(source, path, Scope::Items { stage }, reads),
                None => self.report(
                    Kind::InvalidValue,
                    path,
                    format!("expected a list or one `${{{{ ... }}}}` expression, found the string `{text}`"),
                    Some(if expr::has_expression(text) {
                        "put the whole value in one expression, such as `${{ stages.list.output.files }}`".to_owned()
                    } else {
                        "write a list, such as `[a, b]`, or an expression, such as `${{ stages.list.output.files }}`".to_owned()
                    }),
                ),
            },
        }
    }

    fn condition(
        &mut self,
        id: &str,
        condition: &Condition,
        path: &str,
        reads: &mut BTreeSet<String>,
    ) {
        let Condition::Expr(text) = condition else {
            return;
        };
        let source = if expr::has_expression(text) {
            match expr::whole(text) {
                Some(source) => source,
                None => {
                    self.report(
                        Kind::InvalidExpression,
                        path,
                        format!("an `if` is one expression, found `{text}`"),
                        Some("put the whole condition inside `${{ ... }}`".to_owned()),
                    );
                    return;
                }
            }
        } else {
            text.as_str()
        };

        let status = match expr::names(&self.environment, source) {
            Ok(names) => names
                .iter()
                .any(|name| name.len() == 1 && STATUS_FUNCTIONS.contains(&name[0].as_str())),
            Err(_) => false,
        };
        self.checked
            .condition_has_status
            .insert(id.to_owned(), status);
        self.expression(source, path, Scope::Condition { stage: id }, reads);
    }

    /// Checks every expression in the strings of a value tree, whose path `path` writes out.
    ///
    /// A tree without any expression, as most `with` values are, is passed over whole,
    /// without writing out the path of each of its values.
    fn value(
        &mut self,
        value: &Value,
        path: impl FnOnce() -> String,
        scope: Scope<'_>,
        reads: &mut BTreeSet<String>,
    ) {
        if contains_expression(value) {
            self.walk(value, &path(), scope, reads);
        }
    }

    /// Checks every expression of a value tree, value by value.
    fn walk(&mut self, value: &Value, path: &str, scope: Scope<'_>, reads: &mut BTreeSet<String>) {
        match value {
            Value::String(text) => self.string(text, path, scope, reads),
            Value::Array(items) => {
                for (at, item) in items.iter().enumerate() {
                    self.walk(item, &format!("{path}[{at}]"), scope, reads);
                }
            }
            Value::Object(map) => {
                for (key, item) in map {
                    self.walk(item, &join(path, key), scope, reads);
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    fn string(&mut self, text: &str, path: &str, scope: Scope<'_>, reads: &mut BTreeSet<String>) {
        if !expr::has_expression(text) {
            return;
        }
        match expr::split(text) {
            Ok(pieces) => {
                for piece in pieces {
                    if let Piece::Expr(source) = piece {
                        self.expression(source, path, scope, reads);
                    }
                }
            }
            Err(error) => self.report(
                Kind::InvalidExpression,
                path,
                format!("invalid expression: {error}"),
                Some("close the expression with `}}`".to_owned()),
            ),
        }
    }

    fn expression(
        &mut self,
        source: &str,
        path: &str,
        scope: Scope<'_>,
        reads: &mut BTreeSet<String>,
    ) {
        if source.is_empty() {
            self.report(
                Kind::InvalidExpression,
                path,
                "empty expression `${{ }}`".to_owned(),
                Some("write an expression inside, such as `${{ inputs.dir }}`".to_owned()),
            );
            return;
        }
        let names = match expr::names(&self.environment, source) {
            Ok(names) => names,
            Err(error) => {
                self.report(
                    Kind::InvalidExpression,
                    path,
                    format!("invalid expression `{source}`: {}", error.detail),
                    None,
                );
                return;
            }
        };
        for name in names {
            self.name(&name, source, path, scope, reads);
        }
    }

    fn name(
        &mut self,
        name: &[String],
        source: &str,
        path: &str,
        scope: Scope<'_>,
        reads: &mut BTreeSet<String>,
    ) {
        let root = name[0].as_str();
        match root {
            "inputs" => self.input_name(name, path),
            "stages" => self.stage_name(name, source, path, scope, reads),
            "item" | "index" => self.item_name(root, path, scope),
            "run" => {
                if let Some(attribute) = name.get(1)
                    && !["id", "name"].contains(&attribute.as_str())
                {
                    self.report(
                        Kind::InvalidExpression,
                        path,
                        format!("unknown name `run.{attribute}`"),
                        Some("`run` has `id` and `name`".to_owned()),
                    );
                }
            }
            "env" => {}
            _ if name.len() == 1 && STATUS_FUNCTIONS.contains(&root) => {
                if !matches!(scope, Scope::Condition { .. }) {
                    self.report(
                        Kind::InvalidExpression,
                        path,
                        format!("`{root}()` is only available in `if`"),
                        Some("test a stage's status in a value with `stages.ID.status`".to_owned()),
                    );
                }
            }
            _ if name.len() == 1 && BUILTIN_FUNCTIONS.contains(&root) => {}
            _ => {
                let mut known = vec!["inputs", "stages", "run", "env"];
                if matches!(scope, Scope::With { fan_out: true, .. }) {
                    known.extend(["item", "index"]);
                }
                if matches!(scope, Scope::Condition { .. }) {
                    known.extend(STATUS_FUNCTIONS);
                }
                let hint = did_you_mean(root, known.iter().copied()).unwrap_or_else(|| {
                    format!("the names in {} are {}", scope.where_(), one_of(&known))
                });
                self.report(
                    Kind::InvalidExpression,
                    path,
                    format!("unknown name `{root}` in `{source}`"),
                    Some(hint),
                );
            }
        }
    }

    fn input_name(&mut self, name: &[String], path: &str) {
        let Some(input) = name.get(1) else {
            return;
        };
        let inputs = &self.document.workflow.inputs;
        if inputs.contains_key(input) {
            return;
        }
        let known: Vec<&str> = inputs.keys().map(String::as_str).collect();
        let hint = did_you_mean(input, known.iter().copied()).unwrap_or_else(|| {
            if known.is_empty() {
                format!("declare it under `inputs:`, such as `{input}: {{type: string}}`")
            } else {
                format!(
                    "the inputs are {}; or declare `{input}` under `inputs:`",
                    one_of(&known)
                )
            }
        });
        self.report(
            Kind::UnknownInput,
            path,
            format!("unknown input `{input}`"),
            Some(hint),
        );
    }

    fn stage_name(
        &mut self,
        name: &[String],
        source: &str,
        path: &str,
        scope: Scope<'_>,
        reads: &mut BTreeSet<String>,
    ) {
        let Some(id) = name.get(1) else {
            self.report(
                Kind::InvalidExpression,
                path,
                format!("dynamic stage reference in `{source}`"),
                Some("name the stage in the expression, such as `stages.count.outputs`, so the graph is known before the run".to_owned()),
            );
            return;
        };

        if scope.current_stage().as_deref() == Some(id.as_str()) {
            self.report(
                Kind::SelfDependency,
                path,
                format!("stage `{id}` reads its own result in `{source}`"),
                Some("a stage can only read the stages before it".to_owned()),
            );
            return;
        }
        if !self.stage_exists(id) {
            let hint = self.stage_hint(id);
            self.report(
                Kind::UnknownStage,
                path,
                format!("unknown stage `{id}` in `{source}`"),
                Some(hint),
            );
            return;
        }
        reads.insert(id.clone());

        let Some(attribute) = name.get(2) else {
            return;
        };
        let Some(stage) = self.document.workflow.stages.get(id) else {
            return;
        };
        match attribute.as_str() {
            "output" if stage.is_fan_out() => self.report(
                Kind::FanOutMisuse,
                path,
                format!("`stages.{id}.output` is read, but `{id}` fans out"),
                Some(format!(
                    "read `stages.{id}.outputs`, the list of its outputs in item order"
                )),
            ),
            "outputs" if !stage.is_fan_out() => self.report(
                Kind::FanOutMisuse,
                path,
                format!("`stages.{id}.outputs` is read, but `{id}` runs a single job"),
                Some(format!("read `stages.{id}.output`")),
            ),
            attribute if !STAGE_ATTRIBUTES.contains(&attribute) => {
                let hint = did_you_mean(attribute, STAGE_ATTRIBUTES.iter().copied())
                    .unwrap_or_else(|| format!("a stage has {}", one_of(STAGE_ATTRIBUTES)));
                self.report(
                    Kind::InvalidExpression,
                    path,
                    format!("unknown name `stages.{id}.{attribute}`"),
                    Some(hint),
                );
            }
            _ => {}
        }
    }

    fn item_name(&mut self, root: &str, path: &str, scope: Scope<'_>) {
        match scope {
            Scope::With { fan_out: true, .. } => {}
            Scope::With {
                stage,
                fan_out: false,
            } => self.report(
                Kind::FanOutMisuse,
                path,
                format!("`{root}` is read, but stage `{stage}` does not fan out"),
                Some("`item` and `index` are set in stages with `for_each` or `matrix`".to_owned()),
            ),
            _ => self.report(
                Kind::InvalidExpression,
                path,
                format!("`{root}` is not available in {}", scope.where_()),
                Some("`item` and `index` are set in the `with` of a fan-out stage".to_owned()),
            ),
        }
    }
}

/// Whether any string of a value tree holds an expression.
fn contains_expression(value: &Value) -> bool {
    match value {
        Value::String(text) => expr::has_expression(text),
        Value::Array(items) => items.iter().any(contains_expression),
        Value::Object(map) => map.values().any(contains_expression),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

fn render_list(values: &[Value]) -> String {
    values
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
