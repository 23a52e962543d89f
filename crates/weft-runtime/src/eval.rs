//! Expressions at run time: compiled once per stage, evaluated once per item, cheaply.
//!
//! Four pieces work together:
//!
//! - One MiniJinja [`Environment`] for the whole process, [`shared_environment`] (built by
//!   [`environment`] on first use). It is the spec's environment (undefined names are errors)
//!   plus the status functions of `if`. Those functions keep no state of their own: they read
//!   the flags of the [`Scope`] they are evaluated in through a hidden context variable, which
//!   no expression can name (it is not an identifier). So the environment never changes once
//!   built, one serves every run, and compiling a stage never rebuilds it. Because it lives for
//!   the whole process, compiled templates borrow nothing shorter-lived and can move into any
//!   task.
//! - A [`Scope`]: the names a stage's expressions see (`inputs`, `run`, `env`, `stages`), built
//!   once when the stage starts. `env` reads the process environment on demand; each stage
//!   in `stages` converts its `output`, `outputs` and `results` to MiniJinja values the first
//!   time an expression reads them, and at most once per scope.
//! - A [`Template`]: a stage's `with` compiled once. Rendering it for one item builds a small
//!   context object (`item`, `index`, then the scope's names) rather than copying the scope.
//! - Lookups: an expression that only names `stages.ID.output`, `stages.ID.outputs` or
//!   `inputs.NAME` is read straight from the records, and a job's input is written as JSON
//!   text ([`Template::render_text`]) with the outputs copied as the jobs wrote them. A fan-in
//!   of a million outputs is then a copy of bytes, not two conversions of a million values.
//! - Free functions for the rest of a stage: [`for_each_items`], [`matrix_items`],
//!   [`condition`] and [`outputs`], which compile and evaluate in [`shared_environment`].
//!
//! Values cross between JSON and MiniJinja by hand in both directions: integers stay
//! integers and floats stay floats, objects keep their key order, and an undefined value
//! anywhere in a result is an error rather than a silent `null`. Inside a longer string, a
//! string value is inserted as it is and any other value as its JSON text.
//!
//! Errors are formatted here from MiniJinja's error kind and detail, never with MiniJinja's
//! own `Display`, which may print the whole context (huge for a fan-out of a million items).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, OnceLock};

use indexmap::IndexMap;
use minijinja::value::{Enumerator, Object, ObjectExt, ObjectRepr, Value, ValueKind};
use minijinja::{Environment, ErrorKind, Expression, State};
use serde_json::Value as Json;
use weft_host::JsonText;
use weft_spec::expr::{self, Piece};
use weft_spec::{Condition, ForEach, Matrix, type_name};

use crate::state::{Item, Items, Output, StageRecord, StatusFlags, parse};

/// The context variable the status functions read the scope's flags from. It is not an
/// identifier, so no expression can name it.
const STATUS_KEY: &str = "$status";

/// The names at the top of every scope, without the fan-out variables.
const SCOPE_NAMES: &[&str] = &["inputs", "run", "env", "stages"];

/// The names at the top of a fan-out item's scope.
const ITEM_SCOPE_NAMES: &[&str] = &["inputs", "run", "env", "stages", "item", "index"];

/// What an expression may read of a stage.
const STAGE_ATTRIBUTES: &[&str] = &["output", "outputs", "results", "status"];

/// The longest MiniJinja error detail kept in a message, in characters.
const MAX_DETAIL: usize = 300;

/// A problem found while evaluating a stage's expressions.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    /// An expression that does not parse.
    #[error("invalid expression `{expression}`: {detail}")]
    Syntax {
        /// The expression's source.
        expression: String,
        /// What the parser said.
        detail: String,
    },

    /// A `${{` that is never closed.
    #[error("invalid expression in `{text}`: {error}")]
    Unclosed {
        /// The string that holds it.
        text: String,
        /// Where the `${{` is.
        error: expr::UnclosedExpression,
    },

    /// A value that must be one expression (`for_each`, a matrix axis, `if`) holds more.
    #[error("{what} must be one `${{{{ ... }}}}` expression, found `{text}`")]
    NotOneExpression {
        /// The key, such as "`for_each`".
        what: String,
        /// The string found.
        text: String,
    },

    /// Evaluating an expression failed.
    #[error("cannot evaluate `{expression}`: {detail}")]
    Eval {
        /// The expression's source.
        expression: String,
        /// MiniJinja's error kind and detail.
        detail: String,
    },

    /// An expression gave an undefined value, or a value with an undefined part.
    #[error("`{expression}` gave an undefined value")]
    Undefined {
        /// The expression's source.
        expression: String,
    },

    /// An expression gave a value that JSON cannot hold, such as a function.
    #[error("`{expression}` gave {found}, which has no JSON form")]
    NotJson {
        /// The expression's source.
        expression: String,
        /// What it gave, such as "a function".
        found: String,
    },

    /// `for_each` or a matrix axis gave something other than a list.
    #[error("{what} gave {found}, not a list")]
    NotAList {
        /// The key, such as "`for_each`" or "matrix axis `os`".
        what: String,
        /// The JSON type it gave, with its article: "an object", "null".
        found: String,
    },
}

impl EvalError {
    /// What the user can do about the error, when there is something to say.
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::NotAList { found, .. } if found == "null" => Some(
                "a stage's `output` is `null` unless the stage succeeded; `stages.ID.status` tells why"
                    .to_owned(),
            ),
            Self::NotAList { found, .. } if found == "an object" => Some(
                "pick the list inside the object, such as `stages.list.output.files`".to_owned(),
            ),
            Self::NotAList { found, .. } if found == "a string" => {
                Some("split the text into a list, such as `${{ text | split(',') }}`".to_owned())
            }
            Self::NotOneExpression { .. } => {
                Some("put the whole value inside one `${{ ... }}`".to_owned())
            }
            Self::Undefined { .. } => Some(
                "every name must exist when the expression runs; give a fallback with `| default(...)`"
                    .to_owned(),
            ),
            _ => None,
        }
    }
}

/// Builds the environment expressions run in: the spec's (undefined names are errors) plus
/// `success()`, `failure()`, `cancelled()` and `always()`.
///
/// The environment holds no per-run state (the status functions read their flags from the
/// [`Scope`] they are evaluated in), so the engine uses one for the whole process:
/// [`shared_environment`]. Build another only to add filters of your own, and leak it to get
/// the `&'static` that [`Template::compile`] takes.
pub fn environment() -> Environment<'static> {
    let mut environment = expr::environment();
    environment.add_function("success", success);
    environment.add_function("failure", failure);
    environment.add_function("cancelled", cancelled);
    environment.add_function("always", always);
    environment
}

/// The [`environment`] of the whole process, built on first use; the free functions of this
/// module evaluate in it.
pub fn shared_environment() -> &'static Environment<'static> {
    static SHARED: OnceLock<Environment<'static>> = OnceLock::new();
    SHARED.get_or_init(environment)
}

fn success(state: &State<'_, '_>) -> Result<bool, minijinja::Error> {
    read_status(state, "success", |flags| flags.success)
}

fn failure(state: &State<'_, '_>) -> Result<bool, minijinja::Error> {
    read_status(state, "failure", |flags| flags.failure)
}

fn cancelled(state: &State<'_, '_>) -> Result<bool, minijinja::Error> {
    read_status(state, "cancelled", |flags| flags.cancelled)
}

fn always() -> bool {
    true
}

/// Reads one flag of the scope the expression is evaluated in.
fn read_status(
    state: &State<'_, '_>,
    name: &str,
    flag: fn(StatusFlags) -> bool,
) -> Result<bool, minijinja::Error> {
    state
        .lookup(STATUS_KEY)
        .and_then(|value| {
            value
                .downcast_object_ref::<Status>()
                .map(|status| flag(status.0))
        })
        .ok_or_else(|| {
            minijinja::Error::new(
                ErrorKind::InvalidOperation,
                format!("`{name}()` is only available in `if`"),
            )
        })
}

/// The flags of a scope, as the status functions find them.
#[derive(Debug)]
struct Status(StatusFlags);

impl Object for Status {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }
}

/// A stage record that a [`Scope`] can hold: a borrowed record is cloned once when the scope
/// is built; a shared one is not copied at all.
pub trait ShareRecord {
    /// The record, shared.
    fn share(self) -> Arc<StageRecord>;
}

impl ShareRecord for &StageRecord {
    fn share(self) -> Arc<StageRecord> {
        Arc::new(self.clone())
    }
}

impl ShareRecord for Arc<StageRecord> {
    fn share(self) -> Arc<StageRecord> {
        self
    }
}

impl ShareRecord for &Arc<StageRecord> {
    fn share(self) -> Arc<StageRecord> {
        Arc::clone(self)
    }
}

/// The names every expression of a stage sees, built once when the stage starts.
///
/// Cloning a scope is cheap: its values are shared.
#[derive(Clone, Debug)]
pub struct Scope {
    root: Arc<Root>,
    status: StatusFlags,
}

impl Scope {
    /// Builds the scope of a stage.
    ///
    /// `inputs` are the run's resolved inputs (a JSON object), converted once here. `reads`
    /// are the stages the stage's expressions read (`weft_spec::Checked::reads`), each with
    /// its record: their `output`, `outputs` and `results` are converted the first time an
    /// expression reads them, and only then. `env` reads the process environment when a
    /// variable is asked for. `status` is what `success()`, `failure()` and `cancelled()`
    /// answer.
    pub fn new<'a, R: ShareRecord>(
        inputs: &Json,
        run_id: &str,
        run_name: &str,
        reads: impl IntoIterator<Item = (&'a str, R)>,
        status: StatusFlags,
    ) -> Scope {
        let records: BTreeMap<String, Arc<StageRecord>> = reads
            .into_iter()
            .map(|(id, record)| (id.to_owned(), record.share()))
            .collect();
        let stages: BTreeMap<String, Value> = records
            .iter()
            .map(|(id, record)| {
                let stage = StageObject::new(record.clone());
                (id.clone(), Value::from_object(stage))
            })
            .collect();
        let run = JsonMap(IndexMap::from([
            ("id".to_owned(), Value::from(run_id)),
            ("name".to_owned(), Value::from(run_name)),
        ]));

        let root = Root {
            inputs: to_minijinja(inputs),
            inputs_json: inputs.clone(),
            records,
            run: Value::from_object(run),
            env: Value::from_object(ProcessEnv),
            stages: Value::from(stages),
            status: Value::from_object(Status(status)),
        };
        Scope {
            root: Arc::new(root),
            status,
        }
    }

    /// The flags the status functions answer with.
    pub fn status(&self) -> StatusFlags {
        self.status
    }

    /// Reads what a [`Lookup`] names; `None` when the name is not in the scope.
    fn find(&self, lookup: &Lookup) -> Option<Found<'_>> {
        let root = &*self.root;
        Some(match lookup {
            Lookup::Input(name) => Found::Json(root.inputs_json.get(name)?),
            Lookup::Output(stage) => Found::Text(root.records.get(stage)?.output_text()),
            Lookup::Outputs(stage) => Found::Outputs(&root.records.get(stage)?.outputs),
        })
    }

    /// The context of one evaluation: the scope's names, plus `item` and `index` when given.
    fn context(&self, item: Option<(Item<'_>, usize)>) -> Value {
        let convert = |item: Item<'_>| match item {
            Item::Value(value) => to_minijinja(value),
            Item::Text(_) => to_minijinja(&item.to_json()),
        };
        Value::from_object(Context {
            item: item.map(|(item, index)| (convert(item), Value::from(index))),
            root: Arc::clone(&self.root),
        })
    }
}

/// The names of a scope.
#[derive(Debug)]
struct Root {
    inputs: Value,
    /// The inputs and the records again, as they are, for [`Lookup`]s.
    inputs_json: Json,
    records: BTreeMap<String, Arc<StageRecord>>,
    run: Value,
    env: Value,
    stages: Value,
    status: Value,
}

impl Root {
    fn lookup(&self, name: &str) -> Option<Value> {
        match name {
            "inputs" => Some(self.inputs.clone()),
            "run" => Some(self.run.clone()),
            "env" => Some(self.env.clone()),
            "stages" => Some(self.stages.clone()),
            STATUS_KEY => Some(self.status.clone()),
            _ => None,
        }
    }
}

/// The context of one evaluation: a fan-out item over the scope's names.
#[derive(Debug)]
struct Context {
    /// `item` and `index`.
    item: Option<(Value, Value)>,
    root: Arc<Root>,
}

impl Object for Context {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.get_value_by_str(key.as_str()?)
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<Value> {
        match (key, &self.item) {
            ("item", Some((item, _))) => Some(item.clone()),
            ("index", Some((_, index))) => Some(index.clone()),
            _ => self.root.lookup(key),
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(if self.item.is_some() {
            ITEM_SCOPE_NAMES
        } else {
            SCOPE_NAMES
        })
    }
}

/// `env`: the process environment, read a variable at a time when an expression asks.
#[derive(Debug)]
struct ProcessEnv;

impl Object for ProcessEnv {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.get_value_by_str(key.as_str()?)
    }

    fn get_value_by_str(self: &Arc<Self>, name: &str) -> Option<Value> {
        if name.is_empty() || name.contains(['=', '\0']) {
            return None;
        }
        std::env::var(name).ok().map(Value::from)
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        let names = std::env::vars_os()
            .filter_map(|(name, _)| name.into_string().ok())
            .map(Value::from)
            .collect();
        Enumerator::Values(names)
    }
}

/// `stages.ID`: a stage's record, converted to MiniJinja values attribute by attribute, the
/// first time each is read.
#[derive(Debug)]
struct StageObject {
    record: Arc<StageRecord>,
    output: OnceLock<Value>,
    outputs: OnceLock<Value>,
    results: OnceLock<Value>,
    /// How many attributes were converted, so tests can see that nothing is converted twice.
    #[cfg(test)]
    conversions: std::sync::atomic::AtomicUsize,
}

impl StageObject {
    fn new(record: Arc<StageRecord>) -> Self {
        Self {
            record,
            output: OnceLock::new(),
            outputs: OnceLock::new(),
            results: OnceLock::new(),
            #[cfg(test)]
            conversions: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    fn cached(&self, cell: &OnceLock<Value>, convert: impl FnOnce(&StageRecord) -> Value) -> Value {
        cell.get_or_init(|| {
            #[cfg(test)]
            self.conversions
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            convert(&self.record)
        })
        .clone()
    }
}

impl Object for StageObject {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.get_value_by_str(key.as_str()?)
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<Value> {
        match key {
            "status" => Some(Value::from(self.record.status.as_str())),
            "output" => Some(self.cached(&self.output, |record| to_minijinja(&record.output()))),
            "outputs" => Some(self.cached(&self.outputs, |record| {
                Value::from(
                    (0..record.outputs.len())
                        .map(|index| to_minijinja(&record.output_of(index)))
                        .collect::<Vec<_>>(),
                )
            })),
            "results" => Some(self.cached(&self.results, |record| {
                Value::from(
                    record
                        .results()
                        .iter()
                        .map(to_minijinja)
                        .collect::<Vec<_>>(),
                )
            })),
            _ => None,
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(STAGE_ATTRIBUTES)
    }
}

/// A JSON object as MiniJinja sees it: its keys in their JSON order.
#[derive(Debug)]
struct JsonMap(IndexMap<String, Value>);

impl Object for JsonMap {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.get_value_by_str(key.as_str()?)
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<Value> {
        self.0.get(key).cloned()
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        self.mapped_key_value_enumerator(|this| {
            Box::new(
                this.0
                    .iter()
                    .map(|(key, value)| (Value::from(key.as_str()), value.clone())),
            )
        })
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(self.0.len())
    }
}

/// Converts JSON to a MiniJinja value: integers stay integers, objects keep their key order.
fn to_minijinja(value: &Json) -> Value {
    match value {
        Json::Null => Value::from(()),
        Json::Bool(flag) => Value::from(*flag),
        Json::Number(number) => {
            if let Some(unsigned) = number.as_u64() {
                Value::from(unsigned)
            } else if let Some(signed) = number.as_i64() {
                Value::from(signed)
            } else {
                Value::from(number.as_f64().unwrap_or(f64::NAN))
            }
        }
        Json::String(text) => Value::from(text.as_str()),
        Json::Array(items) => Value::from(items.iter().map(to_minijinja).collect::<Vec<_>>()),
        Json::Object(map) => Value::from_object(JsonMap(
            map.iter()
                .map(|(key, value)| (key.clone(), to_minijinja(value)))
                .collect(),
        )),
    }
}

/// Converts a MiniJinja value to JSON; `expression` names the source in errors.
fn to_json(value: &Value, expression: &str) -> Result<Json, EvalError> {
    let eval_error = |error: minijinja::Error| EvalError::Eval {
        expression: expression.to_owned(),
        detail: describe(&error),
    };

    match value.kind() {
        ValueKind::Undefined => Err(EvalError::Undefined {
            expression: expression.to_owned(),
        }),
        ValueKind::None => Ok(Json::Null),
        ValueKind::Bool => Ok(Json::Bool(value.is_true())),
        ValueKind::String => Ok(Json::String(value.as_str().unwrap_or_default().to_owned())),
        ValueKind::Number | ValueKind::Bytes => {
            serde_json::to_value(value).map_err(|_| EvalError::NotJson {
                expression: expression.to_owned(),
                found: format!("the number `{value}`, outside JSON's range"),
            })
        }
        ValueKind::Seq | ValueKind::Iterable => {
            let items = value.try_iter().map_err(eval_error)?;
            items
                .map(|item| to_json(&item, expression))
                .collect::<Result<Vec<_>, _>>()
                .map(Json::Array)
        }
        ValueKind::Map => {
            let mut map = serde_json::Map::new();
            let keys = value.try_iter().map_err(eval_error)?;
            for key in keys {
                let item = value.get_item(&key).map_err(eval_error)?;
                let key = match key.as_str() {
                    Some(text) => text.to_owned(),
                    None => key.to_string(),
                };
                map.insert(key, to_json(&item, expression)?);
            }
            Ok(Json::Object(map))
        }
        ValueKind::Plain => Err(EvalError::NotJson {
            expression: expression.to_owned(),
            found: if value.as_object().is_some() {
                "an object without JSON form, such as a function".to_owned()
            } else {
                "a plain value".to_owned()
            },
        }),
        _ => Err(EvalError::NotJson {
            expression: expression.to_owned(),
            found: format!("a value of kind `{}`", value.kind()),
        }),
    }
}

/// MiniJinja's error kind and detail, and those of its causes, cut to [`MAX_DETAIL`]
/// characters; never its `Display`, which may print the whole context.
fn describe(error: &minijinja::Error) -> String {
    let mut text = kind_and_detail(error);
    let mut cause = std::error::Error::source(error);
    while let Some(inner) = cause {
        text.push_str(": ");
        match inner.downcast_ref::<minijinja::Error>() {
            Some(inner) => text.push_str(&kind_and_detail(inner)),
            None => text.push_str(&inner.to_string()),
        }
        cause = inner.source();
    }
    truncate(text, MAX_DETAIL)
}

fn kind_and_detail(error: &minijinja::Error) -> String {
    match error.detail() {
        Some(detail) => format!("{}: {detail}", error.kind()),
        None => error.kind().to_string(),
    }
}

fn truncate(mut text: String, limit: usize) -> String {
    if let Some((cut, _)) = text.char_indices().nth(limit) {
        text.truncate(cut);
        text.push_str("...");
    }
    text
}

/// The type of a JSON value with its article, for messages: "an object", "null".
fn with_article(value: &Json) -> String {
    match type_name(value) {
        "null" => "null".to_owned(),
        name @ ("integer" | "array" | "object") => format!("an {name}"),
        name => format!("a {name}"),
    }
}

/// An expression that only names a value: `stages.ID.output`, `stages.ID.outputs` or
/// `inputs.NAME`. These are the usual `for_each` of a fan-out and input of a fan-in, and they
/// are read straight from the records, as JSON text where the record keeps text, so that a
/// million outputs reach a fan-in without being converted to MiniJinja values and back.
///
/// When the name is not found, the expression is evaluated by MiniJinja as any other, so
/// errors read the same.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Lookup {
    Output(String),
    Outputs(String),
    Input(String),
}

impl Lookup {
    fn parse(source: &str) -> Option<Self> {
        let mut names = source.trim().split('.');
        let lookup = match (names.next()?, names.next()?, names.next()) {
            ("stages", stage, Some("output")) => Self::Output(stage.to_owned()),
            ("stages", stage, Some("outputs")) => Self::Outputs(stage.to_owned()),
            ("inputs", name, None) => Self::Input(name.to_owned()),
            _ => return None,
        };
        let name = match &lookup {
            Self::Output(name) | Self::Outputs(name) | Self::Input(name) => name,
        };
        (names.next().is_none() && is_identifier(name)).then_some(lookup)
    }
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|rest| rest.is_ascii_alphanumeric() || rest == '_')
}

/// What a [`Lookup`] found.
enum Found<'a> {
    Json(&'a Json),
    /// One output, `None` being `null`.
    Text(Option<&'a JsonText>),
    Outputs(&'a [Option<Output>]),
}

impl Found<'_> {
    fn to_json(&self) -> Json {
        match self {
            Found::Json(value) => (*value).clone(),
            Found::Text(text) => parse(*text),
            Found::Outputs(outputs) => Json::Array(
                outputs
                    .iter()
                    .map(|output| parse(output.as_ref()))
                    .collect(),
            ),
        }
    }

    /// Writes the value as JSON text, copying outputs as they are.
    fn write(&self, out: &mut Vec<u8>) {
        fn text(out: &mut Vec<u8>, output: Option<&JsonText>) {
            out.extend_from_slice(output.map_or("null", JsonText::get).as_bytes());
        }
        match self {
            Found::Json(value) => write_json(out, value),
            Found::Text(output) => text(out, *output),
            Found::Outputs(outputs) => {
                out.push(b'[');
                for (position, output) in outputs.iter().enumerate() {
                    if position > 0 {
                        out.push(b',');
                    }
                    text(out, output.as_ref());
                }
                out.push(b']');
            }
        }
    }
}

/// Appends `value` as JSON text.
fn write_json(out: &mut Vec<u8>, value: &(impl serde::Serialize + ?Sized)) {
    // Writing a JSON value into memory cannot fail: its keys are strings and its numbers are
    // finite.
    let _ = serde_json::to_writer(out, value);
}

/// One expression, compiled.
struct Compiled {
    source: String,
    expression: Expression<'static, 'static>,
    /// Set when the expression only names a value that can be read without MiniJinja.
    lookup: Option<Lookup>,
}

impl fmt::Debug for Compiled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Compiled").field(&self.source).finish()
    }
}

impl Compiled {
    fn new(environment: &'static Environment<'static>, source: &str) -> Result<Self, EvalError> {
        let expression = environment
            .compile_expression_owned(source.to_owned())
            .map_err(|error| EvalError::Syntax {
                expression: source.to_owned(),
                detail: match error.detail() {
                    Some(detail) => truncate(detail.to_owned(), MAX_DETAIL),
                    None => describe(&error),
                },
            })?;
        Ok(Self {
            source: source.to_owned(),
            expression,
            lookup: Lookup::parse(source),
        })
    }

    /// Evaluates the expression; an undefined result is an error.
    fn eval(&self, context: &Value) -> Result<Value, EvalError> {
        let value = self
            .expression
            .eval(context.clone())
            .map_err(|error| EvalError::Eval {
                expression: self.source.clone(),
                detail: describe(&error),
            })?;
        if value.is_undefined() {
            return Err(EvalError::Undefined {
                expression: self.source.clone(),
            });
        }
        Ok(value)
    }

    fn json(&self, context: &Value) -> Result<Json, EvalError> {
        to_json(&self.eval(context)?, &self.source)
    }

    /// Appends the value as text: a string as it is, anything else as JSON.
    fn text(&self, context: &Value, out: &mut String) -> Result<(), EvalError> {
        match self.json(context)? {
            Json::String(text) => out.push_str(&text),
            other => out.push_str(&other.to_string()),
        }
        Ok(())
    }
}

/// A stage's `with` (or any JSON value whose strings may hold expressions), compiled.
///
/// It is a tree shaped like the JSON value, where each string is literal text, one whole
/// expression (whose value keeps its JSON type), or text with expressions inside (rendered as
/// a string: strings as they are, other values as JSON). Parts without any expression are kept
/// as JSON and cloned when rendered. Only `${{ ... }}` is special; a plain `{{` stays as it is.
/// Object keys are literal.
#[derive(Debug)]
pub struct Template {
    root: Node,
}

#[derive(Debug)]
enum Node {
    /// A part without expressions.
    Literal(Json),
    /// A string that is exactly one expression.
    Whole(Compiled),
    /// `${{ item }}`, the most common input of a fan-out: copied, never evaluated.
    Item,
    /// `${{ index }}`: the item's position.
    Index,
    /// A string with expressions inside text.
    Text(Vec<Part>),
    Array(Vec<Node>),
    Object(Vec<(String, Node)>),
}

#[derive(Debug)]
enum Part {
    Text(String),
    Expr(Compiled),
}

impl Template {
    /// Compiles every expression in the strings of `value`.
    ///
    /// Compile once per stage, usually against [`shared_environment`]; the environment must
    /// live as long as the process so that the template can go anywhere (it is `Send`, `Sync`
    /// and `'static`).
    pub fn compile(
        environment: &'static Environment<'static>,
        value: &Json,
    ) -> Result<Template, EvalError> {
        Ok(Template {
            root: Node::compile(environment, value)?,
        })
    }

    /// Renders the value for one evaluation: `item` and `index` are set when `item` is given.
    ///
    /// Each call builds one small context object over the scope; nothing of the scope is
    /// copied or converted again.
    pub fn render(&self, scope: &Scope, item: Option<(&Json, usize)>) -> Result<Json, EvalError> {
        let item = item.map(|(item, index)| (Item::Value(item), index));
        if let Node::Literal(value) = &self.root {
            return Ok(value.clone());
        }
        let mut context = RenderContext::lazy(scope, item);
        self.root.render(&mut context)
    }

    /// Renders the value as JSON text, the form a job's input takes: the same value as
    /// [`Template::render`], without building it as a tree first.
    pub fn render_text(
        &self,
        scope: &Scope,
        item: Option<(Item<'_>, usize)>,
    ) -> Result<Vec<u8>, EvalError> {
        let mut out = Vec::with_capacity(64);
        let mut context = RenderContext::lazy(scope, item);
        self.root.write(&mut context, &mut out)?;
        Ok(out)
    }

    /// Whether the template holds no expression at all: then [`Template::render`] returns a
    /// clone of the literal value, the same for every item.
    pub fn is_literal(&self) -> bool {
        matches!(self.root, Node::Literal(_))
    }
}

impl Node {
    fn compile(
        environment: &'static Environment<'static>,
        value: &Json,
    ) -> Result<Self, EvalError> {
        match value {
            Json::String(text) if expr::has_expression(text) => Self::string(environment, text),
            Json::Array(items) => {
                let nodes = items
                    .iter()
                    .map(|item| Self::compile(environment, item))
                    .collect::<Result<Vec<_>, _>>()?;
                if nodes.iter().all(|node| matches!(node, Node::Literal(_))) {
                    Ok(Node::Literal(Json::Array(
                        nodes.into_iter().filter_map(Node::into_literal).collect(),
                    )))
                } else {
                    Ok(Node::Array(nodes))
                }
            }
            Json::Object(map) => {
                let entries = map
                    .iter()
                    .map(|(key, item)| Ok((key.clone(), Self::compile(environment, item)?)))
                    .collect::<Result<Vec<_>, EvalError>>()?;
                if entries
                    .iter()
                    .all(|(_, node)| matches!(node, Node::Literal(_)))
                {
                    Ok(Node::Literal(Json::Object(
                        entries
                            .into_iter()
                            .filter_map(|(key, node)| Some((key, node.into_literal()?)))
                            .collect(),
                    )))
                } else {
                    Ok(Node::Object(entries))
                }
            }
            other => Ok(Node::Literal(other.clone())),
        }
    }

    fn string(environment: &'static Environment<'static>, text: &str) -> Result<Self, EvalError> {
        if let Some(source) = expr::whole(text) {
            return Ok(match source {
                "item" => Node::Item,
                "index" => Node::Index,
                _ => Node::Whole(Compiled::new(environment, source)?),
            });
        }

        let pieces = expr::split(text).map_err(|error| EvalError::Unclosed {
            text: text.to_owned(),
            error,
        })?;
        let parts = pieces
            .into_iter()
            .map(|piece| match piece {
                Piece::Text(text) => Ok(Part::Text(text.to_owned())),
                Piece::Expr(source) => Compiled::new(environment, source).map(Part::Expr),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Node::Text(parts))
    }

    fn into_literal(self) -> Option<Json> {
        match self {
            Node::Literal(value) => Some(value),
            _ => None,
        }
    }

    fn render(&self, context: &mut RenderContext<'_>) -> Result<Json, EvalError> {
        match self {
            Node::Literal(value) => Ok(value.clone()),
            Node::Item => context
                .item
                .map(|(item, _)| item.to_json())
                .ok_or_else(|| undefined("item")),
            Node::Index => context
                .item
                .map(|(_, index)| Json::from(index))
                .ok_or_else(|| undefined("index")),
            Node::Whole(compiled) => context.whole(compiled),
            Node::Text(parts) => {
                let mut out = String::new();
                for part in parts {
                    match part {
                        Part::Text(text) => out.push_str(text),
                        Part::Expr(compiled) => compiled.text(context.value(), &mut out)?,
                    }
                }
                Ok(Json::String(out))
            }
            Node::Array(nodes) => nodes
                .iter()
                .map(|node| node.render(context))
                .collect::<Result<Vec<_>, _>>()
                .map(Json::Array),
            Node::Object(entries) => entries
                .iter()
                .map(|(key, node)| Ok((key.clone(), node.render(context)?)))
                .collect::<Result<serde_json::Map<_, _>, EvalError>>()
                .map(Json::Object),
        }
    }
}

impl Node {
    /// Renders straight to JSON text, with no JSON tree built for lookups and items.
    fn write(&self, context: &mut RenderContext<'_>, out: &mut Vec<u8>) -> Result<(), EvalError> {
        match self {
            Node::Literal(value) => write_json(out, value),
            Node::Item => match context.item.ok_or_else(|| undefined("item"))? {
                (Item::Value(value), _) => write_json(out, value),
                (Item::Text(text), _) => out.extend_from_slice(text.as_bytes()),
            },
            Node::Index => {
                let (_, index) = context.item.ok_or_else(|| undefined("index"))?;
                write_json(out, &index);
            }
            Node::Whole(compiled) => match context.found(compiled) {
                Some(found) => found.write(out),
                None => write_json(out, &compiled.json(context.value())?),
            },
            Node::Text(_) => write_json(out, &self.render(context)?),
            Node::Array(nodes) => {
                out.push(b'[');
                for (position, node) in nodes.iter().enumerate() {
                    if position > 0 {
                        out.push(b',');
                    }
                    node.write(context, out)?;
                }
                out.push(b']');
            }
            Node::Object(entries) => {
                out.push(b'{');
                for (position, (key, node)) in entries.iter().enumerate() {
                    if position > 0 {
                        out.push(b',');
                    }
                    write_json(out, key.as_str());
                    out.push(b':');
                    node.write(context, out)?;
                }
                out.push(b'}');
            }
        }
        Ok(())
    }
}

fn undefined(name: &str) -> EvalError {
    EvalError::Undefined {
        expression: name.to_owned(),
    }
}

/// The context of one render, built only when an expression needs MiniJinja: a template whose
/// expressions are all `${{ item }}` or `${{ index }}` never builds one.
struct RenderContext<'a> {
    scope: &'a Scope,
    item: Option<(Item<'a>, usize)>,
    value: Option<Value>,
}

impl<'a> RenderContext<'a> {
    fn lazy(scope: &'a Scope, item: Option<(Item<'a>, usize)>) -> Self {
        Self {
            scope,
            item,
            value: None,
        }
    }

    fn value(&mut self) -> &Value {
        let (scope, item) = (self.scope, self.item);
        self.value.get_or_insert_with(|| scope.context(item))
    }

    /// The value of a whole expression: looked up when it only names a value in the scope,
    /// evaluated otherwise.
    fn whole(&mut self, compiled: &Compiled) -> Result<Json, EvalError> {
        match self.found(compiled) {
            Some(found) => Ok(found.to_json()),
            None => compiled.json(self.value()),
        }
    }

    fn found(&self, compiled: &Compiled) -> Option<Found<'a>> {
        compiled
            .lookup
            .as_ref()
            .and_then(|lookup| self.scope.find(lookup))
    }
}

/// The items of a `for_each`: a literal list (whose strings may hold expressions, evaluated
/// here), or one expression that gives a list.
///
/// Anything else is an error naming the type it got (`null` and objects included): "`for_each`
/// gave an object, not a list".
pub fn for_each_items(items: &ForEach, scope: &Scope) -> Result<Items, EvalError> {
    if let ForEach::Expr(text) = items
        && let Some(lookup) = expr::whole(text).and_then(Lookup::parse)
        && let Some(Found::Text(Some(output))) = scope.find(&lookup)
    {
        // Another stage's output, read as it was written.
        return Items::from_text(output).ok_or_else(|| EvalError::NotAList {
            what: "`for_each`".to_owned(),
            found: with_article(&parse(Some(output))),
        });
    }
    list(items, scope, "`for_each`").map(Items::Values)
}

/// The items of a matrix: one object `{axis: value, ...}` per combination of the axes.
///
/// Combinations are ordered with the axes in file order, the first outermost. An `exclude`
/// object removes every combination that has all of its keys with the same values (an empty
/// `exclude` object removes nothing); `include` objects are added at the end, as they are. An
/// axis that is an empty list gives no combination, and a matrix of `include` alone gives its
/// objects. An axis written as an expression must give a list.
pub fn matrix_items(matrix: &Matrix, scope: &Scope) -> Result<Vec<Json>, EvalError> {
    let mut axes = Vec::with_capacity(matrix.axes.len());
    for (name, values) in &matrix.axes {
        let what = format!("matrix axis `{name}`");
        axes.push((name.as_str(), list(values, scope, &what)?));
    }

    let mut items = Vec::new();
    let any_empty = axes.iter().any(|(_, values)| values.is_empty());
    if !axes.is_empty() && !any_empty {
        let mut at = vec![0; axes.len()];
        loop {
            let combination: serde_json::Map<String, Json> = axes
                .iter()
                .zip(&at)
                .map(|((name, values), &index)| ((*name).to_owned(), values[index].clone()))
                .collect();
            if !excluded(&combination, &matrix.exclude) {
                items.push(Json::Object(combination));
            }
            if !advance(&mut at, &axes) {
                break;
            }
        }
    }

    items.extend(matrix.include.iter().cloned().map(Json::Object));
    Ok(items)
}

/// Moves to the next combination, the last axis fastest; false after the last one.
fn advance(at: &mut [usize], axes: &[(&str, Vec<Json>)]) -> bool {
    for position in (0..at.len()).rev() {
        at[position] += 1;
        if at[position] < axes[position].1.len() {
            return true;
        }
        at[position] = 0;
    }
    false
}

fn excluded(
    combination: &serde_json::Map<String, Json>,
    exclude: &[serde_json::Map<String, Json>],
) -> bool {
    exclude.iter().any(|rule| {
        !rule.is_empty()
            && rule
                .iter()
                .all(|(key, value)| combination.get(key) == Some(value))
    })
}

/// The list of a `for_each` or a matrix axis; `what` names it in errors.
fn list(items: &ForEach, scope: &Scope, what: &str) -> Result<Vec<Json>, EvalError> {
    match items {
        ForEach::Items(values) => {
            let mut context = RenderContext::lazy(scope, None);
            values
                .iter()
                .map(|value| match Node::compile(shared_environment(), value)? {
                    Node::Literal(value) => Ok(value),
                    node => node.render(&mut context),
                })
                .collect()
        }
        ForEach::Expr(text) => {
            let source = expr::whole(text).ok_or_else(|| EvalError::NotOneExpression {
                what: what.to_owned(),
                text: text.clone(),
            })?;
            let compiled = Compiled::new(shared_environment(), source)?;
            match RenderContext::lazy(scope, None).whole(&compiled)? {
                Json::Array(items) => Ok(items),
                other => Err(EvalError::NotAList {
                    what: what.to_owned(),
                    found: with_article(&other),
                }),
            }
        }
    }
}

/// Whether a stage runs, by its `if`.
///
/// No `if`, or `if: true`, means `success()`; `if: false` never runs. An expression that
/// calls none of `success()`, `failure()`, `cancelled()` and `always()` (`has_status_call`,
/// from `weft_spec::Checked::condition_has_status`) means `success() and (expression)`, as in
/// GitHub Actions, and is not evaluated at all when `success()` is false. The value is tested
/// with MiniJinja's truthiness; `${{ }}` around the expression is optional.
pub fn condition(
    condition: Option<&Condition>,
    has_status_call: bool,
    scope: &Scope,
) -> Result<bool, EvalError> {
    let success = scope.status.success;
    let text = match condition {
        None | Some(Condition::Bool(true)) => return Ok(success),
        Some(Condition::Bool(false)) => return Ok(false),
        Some(Condition::Expr(text)) => text,
    };
    if !has_status_call && !success {
        return Ok(false);
    }

    let source = if expr::has_expression(text) {
        expr::whole(text).ok_or_else(|| EvalError::NotOneExpression {
            what: "`if`".to_owned(),
            text: text.clone(),
        })?
    } else {
        text.trim()
    };
    let value = Compiled::new(shared_environment(), source)?.eval(&scope.context(None))?;
    Ok(value.is_true())
}

/// Evaluates the workflow's `outputs`, each like a [`Template`] without an item.
///
/// An output that fails to compile or evaluate becomes `null`; its error is returned beside
/// the values, for a warning.
pub fn outputs(
    outputs: &IndexMap<String, Json>,
    scope: &Scope,
) -> (serde_json::Map<String, Json>, Vec<(String, EvalError)>) {
    let mut values = serde_json::Map::new();
    let mut errors = Vec::new();
    for (name, value) in outputs {
        let rendered = Template::compile(shared_environment(), value)
            .and_then(|template| template.render(scope, None));
        match rendered {
            Ok(value) => {
                values.insert(name.clone(), value);
            }
            Err(error) => {
                values.insert(name.clone(), Json::Null);
                errors.push((name.clone(), error));
            }
        }
    }
    (values, errors)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use serde_json::json;

    use super::*;
    use crate::state::{JobStatus, StageStatus};

    const OK: StatusFlags = StatusFlags {
        success: true,
        failure: false,
        cancelled: false,
    };

    fn succeeded(outputs: Vec<Json>) -> StageRecord {
        let mut record = StageRecord::pending(true);
        record.status = StageStatus::Succeeded;
        record.items = Arc::new(Items::Values(
            (0..outputs.len()).map(|index| json!(index)).collect(),
        ));
        record.jobs = vec![JobStatus::Succeeded; outputs.len()];
        record.outputs = outputs.iter().map(raw).collect();
        record
    }

    fn raw(value: &Json) -> Option<crate::state::Output> {
        Some(JsonText::new(value.to_string()).unwrap())
    }

    fn single(status: StageStatus, output: Json) -> StageRecord {
        let mut record = StageRecord::pending(false);
        record.status = status;
        record.outputs = vec![raw(&output)];
        record.jobs = vec![if status == StageStatus::Succeeded {
            JobStatus::Succeeded
        } else {
            JobStatus::Failed
        }];
        record
    }

    fn scope_with(stages: &[(&str, &StageRecord)], status: StatusFlags) -> Scope {
        let inputs = json!({"dir": "books", "count": 3, "ratio": 0.5, "tags": ["a", "b"]});
        Scope::new(
            &inputs,
            "run-1",
            "wordcount",
            stages.iter().copied(),
            status,
        )
    }

    fn scope() -> Scope {
        scope_with(&[], OK)
    }

    fn render(value: Json, scope: &Scope, item: Option<(&Json, usize)>) -> Result<Json, EvalError> {
        Template::compile(shared_environment(), &value)?.render(scope, item)
    }

    fn stage_object(scope: &Scope, id: &str) -> Arc<StageObject> {
        scope
            .root
            .stages
            .get_attr(id)
            .unwrap()
            .downcast_object::<StageObject>()
            .unwrap()
    }

    #[test]
    fn a_whole_expression_keeps_its_json_type() {
        let scope = scope();

        let rendered = render(
            json!({
                "tags": "${{ inputs.tags }}",
                "count": "${{ inputs.count }}",
                "ratio": "${{ inputs.ratio }}",
                "all": " ${{ inputs }} ",
                "sum": "${{ inputs.count + 2 }}",
            }),
            &scope,
            None,
        )
        .unwrap();

        assert_eq!(rendered["tags"], json!(["a", "b"]));
        assert_eq!(rendered["count"], json!(3));
        assert!(rendered["count"].is_u64());
        assert!(rendered["ratio"].is_f64());
        assert!(rendered["sum"].is_i64() || rendered["sum"].is_u64());
        assert_eq!(rendered["sum"], json!(5));
        assert_eq!(
            rendered["all"],
            json!({"dir": "books", "count": 3, "ratio": 0.5, "tags": ["a", "b"]})
        );
    }

    #[test]
    fn objects_keep_their_key_order_through_an_expression() {
        let inputs = json!({"config": {"zeta": 1, "alpha": 2, "mid": 3}});
        let scope = Scope::new(&inputs, "r", "n", Vec::<(&str, &StageRecord)>::new(), OK);

        let rendered = render(json!("${{ inputs.config }}"), &scope, None).unwrap();

        let keys: Vec<&String> = rendered.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["zeta", "alpha", "mid"]);
    }

    #[test]
    fn interpolation_renders_text() {
        let rendered = render(
            json!("dir=${{ inputs.dir }} n=${{ inputs.count }} tags=${{ inputs.tags }}"),
            &scope(),
            None,
        )
        .unwrap();

        assert_eq!(rendered, json!(r#"dir=books n=3 tags=["a","b"]"#));
    }

    #[test]
    fn a_plain_double_brace_stays_literal() {
        let template =
            Template::compile(shared_environment(), &json!({"cmd": "awk '{{print $1}}'"})).unwrap();

        assert!(template.is_literal());
        assert_eq!(
            template.render(&scope(), None).unwrap(),
            json!({"cmd": "awk '{{print $1}}'"})
        );
    }

    #[test]
    fn item_and_index_are_set_per_item() {
        let template = Template::compile(
            shared_environment(),
            &json!({"path": "${{ item.path }}", "at": "${{ index }}", "line": "#${{ index }}: ${{ item.path }}"}),
        )
        .unwrap();
        let scope = scope();

        let first = template
            .render(&scope, Some((&json!({"path": "a.txt"}), 0)))
            .unwrap();
        let second = template
            .render(&scope, Some((&json!({"path": "b.txt"}), 1)))
            .unwrap();

        assert!(!template.is_literal());
        assert_eq!(
            first,
            json!({"path": "a.txt", "at": 0, "line": "#0: a.txt"})
        );
        assert_eq!(
            second,
            json!({"path": "b.txt", "at": 1, "line": "#1: b.txt"})
        );
    }

    #[test]
    fn item_is_undefined_outside_a_fan_out() {
        let error = render(json!("${{ item }}"), &scope(), None).unwrap_err();

        assert_eq!(error.to_string(), "`item` gave an undefined value");
    }

    #[test]
    fn fan_in_reads_the_outputs_of_a_fan_out() {
        let count = succeeded(vec![json!({"words": 3}), json!({"words": 4}), Json::Null]);
        let scope = scope_with(&[("count", &count)], OK);

        let rendered = render(
            json!({
                "total": "${{ stages.count.outputs | select | map(attribute='words') | sum }}",
                "files": "${{ stages.count.outputs | length }}",
            }),
            &scope,
            None,
        )
        .unwrap();

        assert_eq!(rendered, json!({"total": 7, "files": 3}));
    }

    #[test]
    fn map_attribute_sum_adds_the_outputs() {
        let count = succeeded(vec![json!({"words": 3}), json!({"words": 4})]);
        let scope = scope_with(&[("count", &count)], OK);

        let rendered = render(
            json!("${{ stages.count.outputs | map(attribute=\"words\") | sum }}"),
            &scope,
            None,
        )
        .unwrap();

        assert_eq!(rendered, json!(7));
    }

    #[test]
    fn output_is_null_when_the_stage_failed() {
        let failed = single(StageStatus::Failed, json!({"files": ["a"]}));
        let ok = single(StageStatus::Succeeded, json!({"files": ["a"]}));
        let scope = scope_with(&[("failed", &failed), ("ok", &ok)], OK);

        let rendered = render(
            json!([
                "${{ stages.failed.output }}",
                "${{ stages.failed.status }}",
                "${{ stages.ok.output.files }}"
            ]),
            &scope,
            None,
        )
        .unwrap();

        assert_eq!(rendered, json!([null, "failed", ["a"]]));
    }

    #[test]
    fn lookups_of_outputs_and_inputs_skip_minijinja() {
        let parsed = |source: &str| Lookup::parse(source);

        assert_eq!(
            parsed(" stages.count.outputs "),
            Some(Lookup::Outputs("count".into()))
        );
        assert_eq!(
            parsed("stages.count.output"),
            Some(Lookup::Output("count".into()))
        );
        assert_eq!(parsed("inputs.dir"), Some(Lookup::Input("dir".into())));
        for other in [
            "stages.count.output.files",
            "stages.count.results",
            "stages.count",
            "inputs.dir | upper",
            "inputs.a-b",
            "inputs",
            "item",
        ] {
            assert_eq!(parsed(other), None, "{other}");
        }
    }

    #[test]
    fn rendering_as_text_gives_the_same_value_as_rendering_a_tree() {
        let count = succeeded(vec![json!({"words": 3}), Json::Null, json!([1.5, "é"])]);
        let failed = single(StageStatus::Failed, json!({"files": ["a"]}));
        let scope = scope_with(&[("count", &count), ("failed", &failed)], OK);
        let item = json!({"name": "a.txt"});

        for template in [
            json!({"values": "${{ stages.count.outputs }}", "n": "${{ inputs.count }}"}),
            json!([
                "${{ stages.failed.output }}",
                "${{ stages.count.outputs | length }}"
            ]),
            json!({"path": "${{ inputs.dir }}/${{ item.name }}", "at": "${{ index }}"}),
            json!({"item": "${{ item }}", "tags": "${{ inputs.tags }}", "fixed": [1, {"k": null}]}),
        ] {
            let compiled = Template::compile(shared_environment(), &template).unwrap();
            let tree = compiled.render(&scope, Some((&item, 2))).unwrap();
            let text = compiled
                .render_text(&scope, Some((Item::Value(&item), 2)))
                .unwrap();

            let reread: Json = serde_json::from_slice(&text).unwrap();
            assert_eq!(reread, tree, "{template}");
        }
    }

    #[test]
    fn outputs_reach_a_fan_in_as_the_jobs_wrote_them() {
        let mut count = succeeded(vec![Json::Null, Json::Null]);
        count.outputs = vec![
            Some(JsonText::new(r#"{"b":1,"a":2}"#.to_owned()).unwrap()),
            None,
        ];
        let scope = scope_with(&[("count", &count)], OK);
        let template = Template::compile(
            shared_environment(),
            &json!({"v": "${{ stages.count.outputs }}"}),
        )
        .unwrap();

        let text = template.render_text(&scope, None).unwrap();

        assert_eq!(text, br#"{"v":[{"b":1,"a":2},null]}"#);
    }

    #[test]
    fn a_lookup_of_a_name_outside_the_scope_fails_as_minijinja_does() {
        let scope = scope();

        let error = render(json!("${{ stages.missing.outputs }}"), &scope, None).unwrap_err();

        assert_eq!(
            error,
            EvalError::Eval {
                expression: "stages.missing.outputs".into(),
                detail: "undefined value".into()
            }
        );
        assert_eq!(
            render(json!("${{ inputs.nothing }}"), &scope, None).unwrap_err(),
            EvalError::Undefined {
                expression: "inputs.nothing".into()
            }
        );
    }

    #[test]
    fn results_are_built_only_when_read() {
        let mut count = succeeded(vec![json!(1), Json::Null]);
        count.jobs[1] = JobStatus::Failed;
        count
            .errors
            .insert(1, crate::state::ErrorInfo::fatal("no such file"));
        let scope = scope_with(&[("count", &count)], OK);
        let stage = stage_object(&scope, "count");

        render(json!("${{ stages.count.status }}"), &scope, None).unwrap();
        assert!(stage.results.get().is_none());
        assert!(stage.outputs.get().is_none());

        let results = render(json!("${{ stages.count.results }}"), &scope, None).unwrap();

        assert!(stage.results.get().is_some());
        assert!(stage.outputs.get().is_none());
        assert_eq!(results[0]["status"], json!("succeeded"));
        assert_eq!(results[1]["error"]["message"], json!("no such file"));
        assert_eq!(results[1]["item"], json!(1));
    }

    #[test]
    fn a_shared_record_is_read_without_copying() {
        let record = Arc::new(succeeded(vec![json!(5)]));
        let scope = Scope::new(&json!({}), "r", "n", [("count", &record)], OK);

        assert!(Arc::ptr_eq(&stage_object(&scope, "count").record, &record));
        assert_eq!(
            render(json!("${{ stages.count.outputs }}"), &scope, None).unwrap(),
            json!([5])
        );
    }

    #[test]
    fn for_each_takes_a_literal_list_with_expressions_inside() {
        let items = ForEach::Items(vec![json!("a"), json!("${{ inputs.dir }}"), json!(3)]);

        let list = for_each_items(&items, &scope()).unwrap();

        assert_eq!(list.to_values(), vec![json!("a"), json!("books"), json!(3)]);
    }

    #[test]
    fn for_each_over_an_output_keeps_each_element_as_its_text() {
        let mut numbers = single(StageStatus::Succeeded, Json::Null);
        let text = r#"[1, {"a": [2, "x,y"]}, "z\"]", null]"#;
        numbers.outputs = vec![Some(JsonText::new(text.to_owned()).unwrap())];
        let scope = scope_with(&[("numbers", &numbers)], OK);
        let items = ForEach::Expr("${{ stages.numbers.output }}".to_owned());

        let list = for_each_items(&items, &scope).unwrap();

        assert!(matches!(list, Items::Text { .. }));
        assert_eq!(
            list.to_values(),
            vec![
                json!(1),
                json!({"a": [2, "x,y"]}),
                json!("z\"]"),
                Json::Null
            ]
        );
        let template =
            Template::compile(shared_environment(), &json!({"v": "${{ item }}"})).unwrap();
        let input = template
            .render_text(&scope, Some((list.get(1).unwrap(), 1)))
            .unwrap();
        assert_eq!(input, br#"{"v":{"a": [2, "x,y"]}}"#);
    }

    #[test]
    fn for_each_over_an_output_that_is_not_a_list_names_its_type() {
        let numbers = single(StageStatus::Succeeded, json!({"n": 1}));
        let scope = scope_with(&[("numbers", &numbers)], OK);
        let items = ForEach::Expr("${{ stages.numbers.output }}".to_owned());

        let error = for_each_items(&items, &scope).unwrap_err();

        assert_eq!(
            error,
            EvalError::NotAList {
                what: "`for_each`".into(),
                found: "an object".into()
            }
        );
    }

    #[test]
    fn for_each_takes_an_expression_giving_a_list() {
        let list_stage = single(StageStatus::Succeeded, json!({"files": ["a", "b"]}));
        let scope = scope_with(&[("list", &list_stage)], OK);
        let items = ForEach::Expr("${{ stages.list.output.files }}".to_owned());

        let list = for_each_items(&items, &scope).unwrap();

        assert_eq!(list.to_values(), vec![json!("a"), json!("b")]);
    }

    #[test]
    fn for_each_that_is_not_a_list_names_the_type_it_got() {
        let failed = single(StageStatus::Failed, json!(["a"]));
        let scope = scope_with(&[("list", &failed)], OK);
        let cases = [
            (
                "${{ stages.list.output }}",
                "`for_each` gave null, not a list",
            ),
            ("${{ inputs }}", "`for_each` gave an object, not a list"),
            ("${{ inputs.dir }}", "`for_each` gave a string, not a list"),
            (
                "${{ inputs.count }}",
                "`for_each` gave an integer, not a list",
            ),
        ];

        for (source, message) in cases {
            let items = ForEach::Expr(source.to_owned());

            let error = for_each_items(&items, &scope).unwrap_err();

            assert_eq!(error.to_string(), message);
            assert!(matches!(error, EvalError::NotAList { .. }));
        }
    }

    #[test]
    fn for_each_of_text_around_an_expression_is_an_error() {
        let items = ForEach::Expr("files: ${{ inputs.tags }}".to_owned());

        let error = for_each_items(&items, &scope()).unwrap_err();

        assert!(matches!(error, EvalError::NotOneExpression { .. }));
        assert!(error.hint().is_some());
    }

    fn matrix(axes: &[(&str, ForEach)]) -> Matrix {
        Matrix {
            axes: axes
                .iter()
                .map(|(name, values)| ((*name).to_owned(), values.clone()))
                .collect(),
            include: Vec::new(),
            exclude: Vec::new(),
        }
    }

    fn object(value: Json) -> serde_json::Map<String, Json> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn matrix_items_put_the_first_key_outermost() {
        let matrix = matrix(&[
            ("os", ForEach::Items(vec![json!("linux"), json!("mac")])),
            ("size", ForEach::Items(vec![json!(1), json!(2)])),
        ]);

        let items = matrix_items(&matrix, &scope()).unwrap();

        assert_eq!(
            items,
            vec![
                json!({"os": "linux", "size": 1}),
                json!({"os": "linux", "size": 2}),
                json!({"os": "mac", "size": 1}),
                json!({"os": "mac", "size": 2}),
            ]
        );
    }

    #[test]
    fn matrix_exclude_removes_matches_and_include_appends() {
        let mut matrix = matrix(&[
            ("os", ForEach::Items(vec![json!("linux"), json!("mac")])),
            ("size", ForEach::Items(vec![json!(1), json!(2)])),
        ]);
        matrix.exclude = vec![object(json!({"os": "mac", "size": 1})), object(json!({}))];
        matrix.include = vec![object(json!({"os": "windows", "size": 9, "extra": true}))];

        let items = matrix_items(&matrix, &scope()).unwrap();

        assert_eq!(
            items,
            vec![
                json!({"os": "linux", "size": 1}),
                json!({"os": "linux", "size": 2}),
                json!({"os": "mac", "size": 2}),
                json!({"os": "windows", "size": 9, "extra": true}),
            ]
        );
    }

    #[test]
    fn matrix_exclude_on_one_key_removes_every_combination_with_it() {
        let mut matrix = matrix(&[
            ("os", ForEach::Items(vec![json!("linux"), json!("mac")])),
            ("size", ForEach::Items(vec![json!(1), json!(2)])),
        ]);
        matrix.exclude = vec![object(json!({"os": "linux"}))];

        let items = matrix_items(&matrix, &scope()).unwrap();

        assert_eq!(
            items,
            vec![
                json!({"os": "mac", "size": 1}),
                json!({"os": "mac", "size": 2})
            ]
        );
    }

    #[test]
    fn a_matrix_of_include_alone_gives_its_objects() {
        let mut matrix = matrix(&[]);
        matrix.include = vec![object(json!({"a": 1})), object(json!({"a": 2}))];

        let items = matrix_items(&matrix, &scope()).unwrap();

        assert_eq!(items, vec![json!({"a": 1}), json!({"a": 2})]);
    }

    #[test]
    fn an_empty_axis_gives_no_combination_but_includes_still_apply() {
        let mut matrix = matrix(&[
            ("os", ForEach::Items(vec![json!("linux")])),
            ("size", ForEach::Items(vec![])),
        ]);

        assert!(matrix_items(&matrix, &scope()).unwrap().is_empty());

        matrix.include = vec![object(json!({"os": "bsd"}))];
        let items = matrix_items(&matrix, &scope()).unwrap();

        assert_eq!(items, vec![json!({"os": "bsd"})]);
    }

    #[test]
    fn a_matrix_axis_may_come_from_an_expression() {
        let matrix = matrix(&[
            ("tag", ForEach::Expr("${{ inputs.tags }}".to_owned())),
            ("n", ForEach::Items(vec![json!("${{ inputs.count }}")])),
        ]);

        let items = matrix_items(&matrix, &scope()).unwrap();

        assert_eq!(
            items,
            vec![json!({"tag": "a", "n": 3}), json!({"tag": "b", "n": 3})]
        );
    }

    #[test]
    fn a_matrix_axis_that_is_not_a_list_names_the_axis_and_the_type() {
        let matrix = matrix(&[("os", ForEach::Expr("${{ inputs.dir }}".to_owned()))]);

        let error = matrix_items(&matrix, &scope()).unwrap_err();

        assert_eq!(
            error.to_string(),
            "matrix axis `os` gave a string, not a list"
        );
    }

    fn decide(condition_: Option<Condition>, has_status: bool, flags: StatusFlags) -> bool {
        let scope = scope_with(&[], flags);
        condition(condition_.as_ref(), has_status, &scope).unwrap()
    }

    fn expr(text: &str) -> Option<Condition> {
        Some(Condition::Expr(text.to_owned()))
    }

    const FAILED: StatusFlags = StatusFlags {
        success: false,
        failure: true,
        cancelled: false,
    };

    const CANCELLED: StatusFlags = StatusFlags {
        success: false,
        failure: false,
        cancelled: true,
    };

    #[test]
    fn no_condition_means_success() {
        assert!(decide(None, false, OK));
        assert!(!decide(None, false, FAILED));
        assert!(decide(Some(Condition::Bool(true)), false, OK));
        assert!(!decide(Some(Condition::Bool(true)), false, FAILED));
        assert!(!decide(Some(Condition::Bool(false)), false, OK));
    }

    #[test]
    fn always_holds_even_after_a_failure_or_a_cancellation() {
        assert!(decide(expr("${{ always() }}"), true, FAILED));
        assert!(decide(expr("always()"), true, CANCELLED));
        assert!(decide(expr("always()"), true, OK));
    }

    #[test]
    fn failure_and_cancelled_read_the_scope_flags() {
        assert!(decide(expr("${{ failure() }}"), true, FAILED));
        assert!(!decide(expr("${{ failure() }}"), true, OK));
        assert!(decide(expr("cancelled()"), true, CANCELLED));
        assert!(!decide(expr("cancelled()"), true, FAILED));
        assert!(decide(expr("success() or failure()"), true, FAILED));
    }

    #[test]
    fn an_expression_without_a_status_call_also_needs_success() {
        assert!(decide(expr("${{ inputs.count > 2 }}"), false, OK));
        assert!(!decide(expr("${{ inputs.count > 5 }}"), false, OK));
        assert!(!decide(expr("${{ inputs.count > 2 }}"), false, FAILED));
        // Not evaluated at all when success() is false: the undefined name is no error.
        assert!(!decide(expr("${{ inputs.nope.deeper }}"), false, FAILED));
    }

    #[test]
    fn a_condition_that_does_not_evaluate_is_an_error() {
        let error = condition(expr("inputs.nope").as_ref(), false, &scope()).unwrap_err();

        assert_eq!(error.to_string(), "`inputs.nope` gave an undefined value");
    }

    #[test]
    fn status_functions_outside_a_scope_are_an_error() {
        let environment = environment();
        let expression = environment.compile_expression("success()").unwrap();

        let error = expression.eval(()).unwrap_err();

        assert_eq!(
            error.detail(),
            Some("`success()` is only available in `if`")
        );
    }

    #[test]
    fn an_output_that_fails_is_null_with_its_error() {
        let outputs: IndexMap<String, Json> = [
            ("dir".to_owned(), json!("${{ inputs.dir }}")),
            ("bad".to_owned(), json!("${{ inputs.missing }}")),
            ("worse".to_owned(), json!("${{ 1 + }}")),
        ]
        .into_iter()
        .collect();

        let (values, errors) = outputs_of(&outputs);

        assert_eq!(
            values,
            object(json!({"dir": "books", "bad": null, "worse": null}))
        );
        let names: Vec<&str> = errors.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["bad", "worse"]);
        assert!(matches!(errors[1].1, EvalError::Syntax { .. }));
    }

    fn outputs_of(
        declared: &IndexMap<String, Json>,
    ) -> (serde_json::Map<String, Json>, Vec<(String, EvalError)>) {
        outputs(declared, &scope())
    }

    #[test]
    fn an_undefined_name_is_an_error_in_strict_mode() {
        let scope = scope();

        let whole = render(json!("${{ inputs.nope }}"), &scope, None).unwrap_err();
        let deeper = render(json!("${{ inputs.nope.deeper }}"), &scope, None).unwrap_err();
        let inside = render(json!("a ${{ nope }} b"), &scope, None).unwrap_err();
        let nested = render(json!("${{ [1, inputs.nope] }}"), &scope, None).unwrap_err();

        assert_eq!(whole.to_string(), "`inputs.nope` gave an undefined value");
        assert_eq!(
            deeper.to_string(),
            "cannot evaluate `inputs.nope.deeper`: undefined value"
        );
        assert!(matches!(inside, EvalError::Undefined { .. }));
        assert!(matches!(nested, EvalError::Undefined { .. }));
    }

    #[test]
    fn errors_never_print_the_context() {
        let big = succeeded((0..10_000).map(|n| json!({"secret": n})).collect());
        let scope = scope_with(&[("big", &big)], OK);

        let error = render(json!("${{ stages.big.outputs + 1 }}"), &scope, None).unwrap_err();

        let message = error.to_string();
        assert!(message.starts_with("cannot evaluate `stages.big.outputs + 1`: "));
        assert!(!message.contains("secret"), "{message}");
        assert!(message.len() < 400, "{message}");
    }

    #[test]
    fn env_reads_process_variables() {
        let (name, value) = std::env::vars()
            .find(|(name, _)| name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
            .expect("the test process should have an environment variable");

        let rendered = render(
            json!([
                format!("${{{{ env.{name} }}}}"),
                format!("${{{{ env['{name}'] }}}}")
            ]),
            &scope(),
            None,
        )
        .unwrap();

        assert_eq!(rendered, json!([value, value]));
        assert!(render(json!("${{ env.WEFT_SURELY_NOT_SET_42 }}"), &scope(), None).is_err());
    }

    #[test]
    fn run_names_the_run() {
        let rendered = render(json!("${{ run.id }}/${{ run.name }}"), &scope(), None).unwrap();

        assert_eq!(rendered, json!("run-1/wordcount"));
    }

    #[test]
    fn tojson_renders_json_text() {
        let rendered = render(json!("${{ inputs | tojson }}"), &scope(), None).unwrap();

        let text = rendered.as_str().expect("`tojson` should give a string");
        let parsed: Json = serde_json::from_str(text).unwrap();
        assert_eq!(
            parsed,
            json!({"dir": "books", "count": 3, "ratio": 0.5, "tags": ["a", "b"]})
        );
        let keys: Vec<&String> = parsed.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["dir", "count", "ratio", "tags"]);
    }

    #[test]
    fn a_syntax_error_names_the_expression() {
        let error = Template::compile(shared_environment(), &json!("${{ 1 + }}")).unwrap_err();

        assert_eq!(
            error.to_string(),
            "invalid expression `1 +`: unexpected end of input, expected expression"
        );
    }

    #[test]
    fn an_unclosed_expression_is_an_error() {
        let error = Template::compile(shared_environment(), &json!("a ${{ b")).unwrap_err();

        assert!(matches!(error, EvalError::Unclosed { .. }));
    }

    #[test]
    fn templates_and_scopes_can_cross_threads() {
        fn send_sync<T: Send + Sync>() {}

        send_sync::<Template>();
        send_sync::<Scope>();
        send_sync::<EvalError>();
    }

    #[test]
    fn a_large_fan_in_is_converted_once_however_many_items_render() {
        const ITEMS: usize = 100_000;
        let big = succeeded((0..ITEMS).map(|n| json!({"words": n})).collect());
        let scope = scope_with(&[("count", &big)], OK);
        let template = Template::compile(
            shared_environment(),
            &json!({"words": "${{ stages.count.outputs[index].words }}", "of": "${{ stages.count.outputs | length }}"}),
        )
        .unwrap();
        let stage = stage_object(&scope, "count");
        assert_eq!(stage.conversions.load(Ordering::Relaxed), 0);

        let item = json!(null);
        for index in 0..ITEMS {
            let rendered = template.render(&scope, Some((&item, index))).unwrap();
            assert_eq!(rendered["words"], json!(index));
        }

        assert_eq!(stage.conversions.load(Ordering::Relaxed), 1);
    }
}
