//! The workflow format as Rust types.
//!
//! These types are the single source of the format: serde decodes files into them, and
//! schemars turns them, with their doc comments, into `schema/workflow.schema.json`. Every
//! mapping refuses keys it does not know; keys that start with `x-` are removed before
//! decoding (see [`crate::yaml`]), so that YAML anchors have a home.

use std::borrow::Cow;
use std::fmt;
use std::path::PathBuf;

use indexmap::IndexMap;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::Duration;
use crate::yaml::HINT_SEPARATOR;

/// The format versions this build reads.
pub const SUPPORTED_VERSIONS: &[u64] = &[1];

/// A workflow: typed inputs, a graph of stages, and the outputs it reports.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "weft workflow")]
pub struct Workflow {
    /// Format version. This build reads version 1.
    #[serde(default = "default_version")]
    #[schemars(range(min = 1, max = 1))]
    pub version: u64,

    /// Name shown in logs and reports; the file's stem when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,

    /// Free text about what the workflow does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,

    /// Typed parameters of a run; `weft run -i NAME=VALUE` overrides their defaults.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    #[schemars(with = "IndexMap<String, Input>")]
    pub inputs: IndexMap<String, Input>,

    /// Where plugins are found and which versions they must have.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub plugins: IndexMap<String, PluginSource>,

    /// Settings applied to every stage that does not set them itself (replaced whole, never
    /// merged field by field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defaults: Option<Defaults>,

    /// At most this many jobs of the run in flight at once; the pool's size when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_parallel: Option<Parallelism>,

    /// Deadline of the whole run; when it is reached the run is cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,

    /// What a failed stage does to the rest of the run.
    #[serde(default)]
    pub on_error: OnError,

    /// How long cancelled jobs have to stop before they are reported abandoned (10s when
    /// absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace: Option<Duration>,

    /// The stages of the graph, by id (`^[a-z][a-z0-9_]*$`).
    #[schemars(schema_with = "stages_schema")]
    pub stages: IndexMap<String, Stage>,

    /// Values reported as one JSON object when the run ends; strings may hold expressions.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub outputs: IndexMap<String, Value>,
}

fn default_version() -> u64 {
    1
}

impl Workflow {
    /// How long cancelled jobs have to stop.
    pub fn grace(&self) -> Duration {
        self.grace.unwrap_or(Duration::from_secs(10))
    }
}

/// The top-level keys of a workflow, in the order the format lists them.
pub const WORKFLOW_KEYS: &[&str] = &[
    "version",
    "name",
    "description",
    "inputs",
    "plugins",
    "defaults",
    "max_parallel",
    "timeout",
    "on_error",
    "grace",
    "stages",
    "outputs",
];

fn stages_schema(generator: &mut SchemaGenerator) -> Schema {
    let stage = generator.subschema_for::<Stage>();
    json_schema!({
        "type": "object",
        "minProperties": 1,
        "patternProperties": {
            crate::STAGE_ID_PATTERN: stage,
        },
        "additionalProperties": false
    })
}

/// A typed parameter of the workflow. An input without a default is required.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// The type the value must have.
    #[serde(rename = "type")]
    pub ty: InputType,

    /// The value when the run does not give one; the input is required without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,

    /// What the input is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,

    /// The only values allowed.
    #[serde(default, rename = "enum", skip_serializing_if = "Option::is_none")]
    pub allowed: Option<Vec<Value>>,
}

/// The type of an input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum InputType {
    /// Text, taken as it is from `-i NAME=TEXT`.
    String,
    /// A whole number.
    Integer,
    /// Any number.
    Number,
    /// `true` or `false`.
    Boolean,
    /// A list.
    Array,
    /// A mapping.
    Object,
}

impl InputType {
    /// Whether `value` has this type.
    pub fn admits(self, value: &Value) -> bool {
        match self {
            Self::String => value.is_string(),
            Self::Integer => value.is_i64() || value.is_u64(),
            Self::Number => value.is_number(),
            Self::Boolean => value.is_boolean(),
            Self::Array => value.is_array(),
            Self::Object => value.is_object(),
        }
    }

    /// The type's name as the format writes it.
    pub fn name(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Integer => "integer",
            Self::Number => "number",
            Self::Boolean => "boolean",
            Self::Array => "array",
            Self::Object => "object",
        }
    }
}

/// The JSON type name of a value, for messages.
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(number) if number.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Where a plugin comes from.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PluginSource {
    /// The plugin's library file, or a folder holding it; relative to the workflow file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,

    /// The semver range the plugin's version must satisfy, such as `>=0.2, <0.4`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "version_req"
    )]
    #[schemars(with = "Option<String>")]
    pub version: Option<semver::VersionReq>,
}

fn version_req<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<semver::VersionReq>, D::Error> {
    let text = String::deserialize(deserializer)?;
    text.parse().map(Some).map_err(|error| {
        de::Error::custom(format!(
            "invalid version range `{text}`: {error}{HINT_SEPARATOR}write a semver range such as `>=0.2, <0.4` or `^1.2`"
        ))
    })
}

/// Settings that apply to every stage that does not set its own.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    /// Limit of one attempt of one job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,

    /// Retries after the first attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<Retry>,

    /// At most this many jobs of one stage in flight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_parallel: Option<Parallelism>,
}

/// One stage of the graph: a job, run once or once per item of a fan-out.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    /// The job that runs, as `plugin.job`.
    pub job: JobRef,

    /// The job's input. Strings may hold `${{ ... }}` expressions anywhere in the tree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub with: Option<Value>,

    /// Stages that must be final before this one starts (order only), on top of those its
    /// expressions read.
    #[serde(default, skip_serializing_if = "Needs::is_empty")]
    pub needs: Needs,

    /// Fan-out: one job per item of this list (or of the list the expression gives); `item`
    /// and `index` name the current one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_each: Option<ForEach>,

    /// Fan-out over the cartesian product of lists, as in GitHub Actions; `item` is an
    /// object with one key per axis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matrix: Option<Matrix>,

    /// At most this many of this stage's jobs in flight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_parallel: Option<Parallelism>,

    /// Runs the stage only when this holds; `${{ success() }}` when absent.
    #[serde(default, rename = "if", skip_serializing_if = "Option::is_none")]
    pub condition: Option<Condition>,

    /// Limit of one attempt of one job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,

    /// Retries after the first attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<Retry>,

    /// What this stage's failure does to the rest of the run (overrides the workflow's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_error: Option<OnError>,

    /// Failed jobs allowed before the stage fails: a count, or `"N%"` of the jobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerate: Option<Tolerate>,
}

/// The keys of a stage, in the order the format lists them.
pub const STAGE_KEYS: &[&str] = &[
    "job",
    "with",
    "needs",
    "for_each",
    "matrix",
    "max_parallel",
    "if",
    "timeout",
    "retry",
    "on_error",
    "tolerate",
];

impl Stage {
    /// Whether the stage fans out (`for_each` or `matrix`).
    pub fn is_fan_out(&self) -> bool {
        self.for_each.is_some() || self.matrix.is_some()
    }
}

/// A job named as `plugin.job`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct JobRef {
    /// The plugin that provides the job.
    pub plugin: String,
    /// The job's name within the plugin.
    pub job: String,
}

impl fmt::Display for JobRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.plugin, self.job)
    }
}

impl std::str::FromStr for JobRef {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let valid_plugin = |name: &str| {
            name.starts_with(|c: char| c.is_ascii_lowercase())
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        };
        let valid_job = |name: &str| crate::is_identifier(name);

        match text.split_once('.') {
            Some((plugin, job)) if valid_plugin(plugin) && valid_job(job) => Ok(Self {
                plugin: plugin.to_owned(),
                job: job.to_owned(),
            }),
            _ => Err(format!(
                "invalid job `{text}`{HINT_SEPARATOR}name a job as `plugin.job`, such as `std.echo`"
            )),
        }
    }
}

impl Serialize for JobRef {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for JobRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(de::Error::custom)
    }
}

impl JsonSchema for JobRef {
    fn schema_name() -> Cow<'static, str> {
        "JobRef".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "A job, as `plugin.job`.",
            "pattern": "^[a-z][a-z0-9_-]*\\.[a-z][a-z0-9_]*$",
            "examples": ["std.echo", "text.count_words", "shell.run"]
        })
    }
}

/// A limit on jobs in flight: an integer of at least 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, JsonSchema)]
#[schemars(transparent)]
pub struct Parallelism(#[schemars(range(min = 1))] pub u32);

impl<'de> Deserialize<'de> for Parallelism {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ParallelismVisitor;

        impl Visitor<'_> for ParallelismVisitor {
            type Value = Parallelism;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer of at least 1")
            }

            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Parallelism, E> {
                match u32::try_from(value) {
                    Ok(value) if value >= 1 => Ok(Parallelism(value)),
                    _ => Err(E::invalid_value(de::Unexpected::Unsigned(value), &self)),
                }
            }

            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Parallelism, E> {
                match u64::try_from(value) {
                    Ok(value) => self.visit_u64(value),
                    Err(_) => Err(E::invalid_value(de::Unexpected::Signed(value), &self)),
                }
            }
        }

        deserializer.deserialize_u64(ParallelismVisitor)
    }
}

/// What a failed stage does to the rest of the run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// Cancel the run at once: running jobs are told to stop, stages not started never start.
    #[default]
    FailFast,
    /// Start nothing new; let running jobs finish; the run fails.
    Finish,
    /// Skip the stages that depend on the failed one; other branches go on; the run fails.
    Continue,
}

/// `needs`: one stage id, or a list of them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Needs(pub Vec<String>);

impl Needs {
    /// Whether no stage is named.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The stage ids named.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl<'de> Deserialize<'de> for Needs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NeedsVisitor;

        impl<'de> Visitor<'de> for NeedsVisitor {
            type Value = Needs;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a stage id or a list of stage ids")
            }

            fn visit_str<E: de::Error>(self, id: &str) -> Result<Needs, E> {
                Ok(Needs(vec![id.to_owned()]))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Needs, A::Error> {
                Vec::deserialize(SeqAccessDeserializer::new(seq)).map(Needs)
            }
        }

        deserializer.deserialize_any(NeedsVisitor)
    }
}

impl JsonSchema for Needs {
    fn schema_name() -> Cow<'static, str> {
        "Needs".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A stage id, or a list of stage ids.",
            "anyOf": [
                { "type": "string", "pattern": crate::STAGE_ID_PATTERN },
                {
                    "type": "array",
                    "items": { "type": "string", "pattern": crate::STAGE_ID_PATTERN }
                }
            ]
        })
    }
}

/// The items of a fan-out: a literal list, or an expression that gives one.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum ForEach {
    /// The items, written in the file.
    Items(Vec<Value>),
    /// A `${{ ... }}` expression giving the list when the stage starts.
    Expr(#[schemars(pattern(r"^\s*\$\{\{[\s\S]*\}\}\s*$"))] String),
}

impl<'de> Deserialize<'de> for ForEach {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ForEachVisitor;

        impl<'de> Visitor<'de> for ForEachVisitor {
            type Value = ForEach;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list, or an expression `${{ ... }}` that gives a list")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<ForEach, E> {
                Ok(ForEach::Expr(text.to_owned()))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<ForEach, A::Error> {
                Vec::deserialize(SeqAccessDeserializer::new(seq)).map(ForEach::Items)
            }
        }

        deserializer.deserialize_any(ForEachVisitor)
    }
}

/// A matrix fan-out: axes of values, plus combinations to add or remove.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Matrix {
    /// The axes, in file order; the first is outermost.
    #[serde(flatten)]
    pub axes: IndexMap<String, ForEach>,
    /// Objects added at the end of the combinations.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<serde_json::Map<String, Value>>,
    /// Combinations removed: each object removes those it matches.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<serde_json::Map<String, Value>>,
}

impl<'de> Deserialize<'de> for Matrix {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MatrixVisitor;

        impl<'de> Visitor<'de> for MatrixVisitor {
            type Value = Matrix;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a mapping of axis names to lists, with optional `include` and `exclude`",
                )
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Matrix, A::Error> {
                let mut matrix = Matrix::default();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "include" => matrix.include = map.next_value()?,
                        "exclude" => matrix.exclude = map.next_value()?,
                        _ => {
                            let axis = map.next_value()?;
                            matrix.axes.insert(key, axis);
                        }
                    }
                }
                Ok(matrix)
            }
        }

        deserializer.deserialize_map(MatrixVisitor)
    }
}

impl JsonSchema for Matrix {
    fn schema_name() -> Cow<'static, str> {
        "Matrix".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let axis = generator.subschema_for::<ForEach>();
        json_schema!({
            "description": "Fan-out over the cartesian product of the axes (the first key outermost); `exclude` removes the combinations it matches; `include` adds its objects at the end.",
            "type": "object",
            "properties": {
                "include": {
                    "description": "Objects added at the end of the combinations.",
                    "type": "array",
                    "items": { "type": "object" }
                },
                "exclude": {
                    "description": "Each object removes the combinations it matches.",
                    "type": "array",
                    "items": { "type": "object" }
                }
            },
            "additionalProperties": axis
        })
    }
}

/// `if`: an expression, or a literal boolean.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Condition {
    /// `true` is the same as no condition; `false` skips the stage.
    Bool(bool),
    /// An expression, with or without `${{ }}` around it.
    Expr(String),
}

impl<'de> Deserialize<'de> for Condition {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ConditionVisitor;

        impl Visitor<'_> for ConditionVisitor {
            type Value = Condition;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(
                    f,
                    "an expression or `true`/`false`{HINT_SEPARATOR}write a condition such as `${{{{ success() }}}}` or `${{{{ inputs.deploy }}}}`, or quote a literal to compare it in an expression"
                )
            }

            fn visit_bool<E: de::Error>(self, value: bool) -> Result<Condition, E> {
                Ok(Condition::Bool(value))
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<Condition, E> {
                Ok(Condition::Expr(value.to_owned()))
            }

            fn visit_string<E: de::Error>(self, value: String) -> Result<Condition, E> {
                Ok(Condition::Expr(value))
            }
        }

        deserializer.deserialize_any(ConditionVisitor)
    }
}

/// Retries after the first attempt: a count, or a full policy.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Retry {
    /// This many retries with the default backoff (100ms, doubled each time, at most 30s).
    Count(#[schemars(range(min = 0))] u32),
    /// Retries with a backoff of their own.
    Policy(RetryPolicy),
}

impl Retry {
    /// The policy this stands for, defaults filled in.
    pub fn policy(&self) -> RetryPolicy {
        match self {
            Self::Count(attempts) => RetryPolicy {
                attempts: *attempts,
                ..RetryPolicy::default()
            },
            Self::Policy(policy) => policy.clone(),
        }
    }
}

impl<'de> Deserialize<'de> for Retry {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RetryVisitor;

        impl<'de> Visitor<'de> for RetryVisitor {
            type Value = Retry;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a number of retries, or a mapping {attempts, delay, factor, max_delay}",
                )
            }

            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Retry, E> {
                u32::try_from(value)
                    .map(Retry::Count)
                    .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(value), &self))
            }

            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Retry, E> {
                match u64::try_from(value) {
                    Ok(value) => self.visit_u64(value),
                    Err(_) => Err(E::invalid_value(de::Unexpected::Signed(value), &self)),
                }
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Retry, A::Error> {
                RetryPolicy::deserialize(MapAccessDeserializer::new(map)).map(Retry::Policy)
            }
        }

        deserializer.deserialize_any(RetryVisitor)
    }
}

/// How often and how patiently a failed job is tried again.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub attempts: u32,
    /// Wait before the first retry (100ms when absent).
    #[serde(default = "default_delay")]
    pub delay: Duration,
    /// Each wait is the previous one times this (2 when absent).
    #[serde(default = "default_factor", deserialize_with = "factor")]
    #[schemars(range(min = 1.0))]
    pub factor: f64,
    /// The longest wait (30s when absent). Waits are drawn with full jitter below this.
    #[serde(default = "default_max_delay")]
    pub max_delay: Duration,
}

fn default_delay() -> Duration {
    Duration::from_millis(100)
}

fn default_factor() -> f64 {
    2.0
}

/// A backoff factor: a finite number of at least 1, so that waits never shrink.
fn factor<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    let factor = f64::deserialize(deserializer)?;
    if factor.is_finite() && factor >= 1.0 {
        Ok(factor)
    } else {
        Err(de::Error::custom(format!(
            "invalid retry factor `{factor}`{HINT_SEPARATOR}the factor multiplies each wait: write a number of at least 1, such as 2 (1 keeps every wait at `delay`)"
        )))
    }
}

fn default_max_delay() -> Duration {
    Duration::from_secs(30)
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 0,
            delay: default_delay(),
            factor: default_factor(),
            max_delay: default_max_delay(),
        }
    }
}

/// Failed jobs allowed before a stage fails.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub enum Tolerate {
    /// At most this many failed jobs.
    Count(u32),
    /// At most floor(this percentage of the jobs).
    Percent(f64),
}

impl Tolerate {
    /// How many failed jobs are allowed among `jobs`.
    pub fn allowed(self, jobs: usize) -> usize {
        match self {
            Self::Count(count) => count as usize,
            Self::Percent(percent) => (jobs as f64 * percent / 100.0).floor() as usize,
        }
    }
}

impl<'de> Deserialize<'de> for Tolerate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TolerateVisitor;

        impl Visitor<'_> for TolerateVisitor {
            type Value = Tolerate;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number of jobs, or a percentage such as \"10%\"")
            }

            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Tolerate, E> {
                u32::try_from(value)
                    .map(Tolerate::Count)
                    .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(value), &self))
            }

            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Tolerate, E> {
                match u64::try_from(value) {
                    Ok(value) => self.visit_u64(value),
                    Err(_) => Err(E::invalid_value(de::Unexpected::Signed(value), &self)),
                }
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<Tolerate, E> {
                let percent = text
                    .trim()
                    .strip_suffix('%')
                    .and_then(|number| number.trim().parse::<f64>().ok())
                    .filter(|percent| (0.0..=100.0).contains(percent));
                percent.map(Tolerate::Percent).ok_or_else(|| {
                    E::custom(format!(
                        "invalid tolerance `{text}`{HINT_SEPARATOR}write a number of jobs, such as `2`, or a percentage from 0% to 100%, such as \"10%\""
                    ))
                })
            }
        }

        deserializer.deserialize_any(TolerateVisitor)
    }
}

impl JsonSchema for Tolerate {
    fn schema_name() -> Cow<'static, str> {
        "Tolerate".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Failed jobs allowed before the stage fails: a count, or \"N%\" of the jobs (rounded down). On a single job, `1` lets the stage succeed with `output: null`.",
            "anyOf": [
                { "type": "integer", "minimum": 0 },
                { "type": "string", "pattern": r"^\s*(100|[0-9]{1,2})(\.[0-9]+)?\s*%$" }
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerate_percent_rounds_down() {
        assert_eq!(Tolerate::Percent(10.0).allowed(25), 2);
        assert_eq!(Tolerate::Count(3).allowed(1), 3);
    }

    #[test]
    fn job_ref_needs_plugin_and_job() {
        let job: JobRef = "text.count_words".parse().unwrap();
        assert_eq!(
            (job.plugin.as_str(), job.job.as_str()),
            ("text", "count_words")
        );
        assert!("count_words".parse::<JobRef>().is_err());
        assert!("a.b.c".parse::<JobRef>().is_err());
        assert!("Std.echo".parse::<JobRef>().is_err());
    }

    #[test]
    fn retry_count_uses_default_backoff() {
        let policy = Retry::Count(3).policy();
        assert_eq!(policy.attempts, 3);
        assert_eq!(policy.delay, Duration::from_millis(100));
        assert_eq!(policy.max_delay, Duration::from_secs(30));
    }
}
