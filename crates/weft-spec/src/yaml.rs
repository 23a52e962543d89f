//! Reading YAML: the one place in weft that parses it.
//!
//! A file goes through three steps here:
//!
//! 1. [`read`] reads it with a size limit and checks it is UTF-8.
//! 2. [`parse`] walks the events of saphyr's parser and builds a `serde_yaml::Value` tree,
//!    and beside it a [`SourceIndex`] from key paths to positions, which serde_yaml's own
//!    values do not keep. On the way it refuses keys given twice in a mapping, nesting past
//!    [`MAX_DEPTH`], aliases that would expand past [`MAX_ALIAS_NODES`] values, and files of
//!    more than one document, so that no input can make the engine hang or blow up memory.
//! 3. [`decode`] turns a subtree into a typed value with serde, and turns serde's error into
//!    a [`Diagnostic`] at the right line, with the key path and a hint.
//!
//! Scalars are resolved with the YAML 1.2 core schema: `true`, `false`, `null`, `~`,
//! integers (decimal, `0x`, `0o`) and floats (`.inf`, `.nan` included) are typed; anything
//! else, and anything quoted, is a string. `yes` and `no` are strings.

mod index;

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Read as _;
use std::path::Path;

use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, Span as YamlSpan};
use serde::de::DeserializeOwned;
use serde_yaml::{Mapping, Number, Value};

use crate::diagnostic::{Diagnostic, Kind, did_you_mean, one_of};

use index::Resolved;
pub use index::SourceIndex;

/// Largest workflow file read, in bytes.
pub const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;

/// Deepest nesting of mappings and sequences.
pub const MAX_DEPTH: usize = 64;

/// Most values that aliases may add to the document by expansion.
pub const MAX_ALIAS_NODES: usize = 100_000;

/// Separates a message from its hint inside serde's error text, so that deserializers deep in
/// the model can give hints too.
pub(crate) const HINT_SEPARATOR: &str = "\u{1e}";

/// A position in the source: 1-based line and column, and the width of the token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// Characters the token spans on its first line.
    pub width: usize,
}

impl Position {
    fn from_span(span: YamlSpan) -> Self {
        let width = if span.end.line() == span.start.line() {
            span.end.col().saturating_sub(span.start.col())
        } else {
            1
        };
        Self {
            line: span.start.line(),
            column: span.start.col() + 1,
            width: width.max(1),
        }
    }
}

/// Joins a key path and a key.
pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        return key.to_owned();
    }
    // Written out rather than formatted: every stage of a large file passes here.
    let mut joined = String::with_capacity(path.len() + 1 + key.len());
    joined.push_str(path);
    joined.push('.');
    joined.push_str(key);
    joined
}

/// Reads a workflow file as UTF-8 text, refusing directories, huge files and other encodings.
pub fn read(path: &Path, name: &str) -> Result<String, Diagnostic> {
    let error = |message: String| Diagnostic::new(Kind::Read, name, message);

    let metadata = std::fs::metadata(path)
        .map_err(|cause| error(format!("cannot read `{name}`: {}", io_reason(&cause))))?;
    if metadata.is_dir() {
        return Err(
            error(format!("`{name}` is a directory, not a workflow file"))
                .with_hint("name a YAML file, such as `workflows/wordcount.yaml`"),
        );
    }
    if metadata.len() > MAX_FILE_BYTES {
        return Err(too_large(name, metadata.len()));
    }

    // Sized from the metadata: the limit hides the file's size from `read_to_end`, which would
    // otherwise grow the buffer step by step.
    let mut bytes = Vec::with_capacity(metadata.len() as usize + 1);
    std::fs::File::open(path)
        .and_then(|file| file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|cause| error(format!("cannot read `{name}`: {}", io_reason(&cause))))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_large(name, bytes.len() as u64));
    }

    String::from_utf8(bytes).map_err(|cause| not_utf8(name, &cause))
}

fn io_reason(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_owned(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => error.to_string().to_lowercase(),
    }
}

fn too_large(name: &str, bytes: u64) -> Diagnostic {
    Diagnostic::new(
        Kind::Read,
        name,
        format!(
            "`{name}` is {:.1} MiB; a workflow file may be at most {} MiB",
            bytes as f64 / (1024.0 * 1024.0),
            MAX_FILE_BYTES / (1024 * 1024)
        ),
    )
    .with_hint("keep data out of the workflow: read it from a file with a job such as `text.read`")
}

fn not_utf8(name: &str, error: &std::string::FromUtf8Error) -> Diagnostic {
    let bytes = error.as_bytes();
    let offset = error.utf8_error().valid_up_to();
    let before = &bytes[..offset];
    let line = before.iter().filter(|&&byte| byte == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&byte| byte == b'\n')
        .map_or(0, |at| at + 1);
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;

    Diagnostic::new(
        Kind::Read,
        name,
        format!(
            "the file is not UTF-8: invalid byte `0x{:02x}`",
            bytes[offset]
        ),
    )
    .at(line, column, 1)
    .with_hint("save the file as UTF-8")
}

/// Parses one YAML document into a value and the index of its positions.
///
/// Reports every duplicate key it finds; any other problem stops the parse. See
/// [`parse_tree`] to go on past keys given twice.
pub fn parse(source: &str, name: &str) -> Result<(Value, SourceIndex), Vec<Diagnostic>> {
    let parsed = parse_tree(source, name)?;
    if parsed.duplicates.is_empty() {
        Ok((parsed.value, parsed.index))
    } else {
        Err(parsed.duplicates)
    }
}

/// A parsed document.
#[derive(Debug)]
pub struct Parsed {
    /// The document's value. Of a key given twice in one mapping, the first value is kept.
    pub value: Value,
    /// Where each key and value is.
    pub index: SourceIndex,
    /// One error for each key given twice, so that they can be reported with the other
    /// problems of the file rather than alone.
    pub duplicates: Vec<Diagnostic>,
}

/// Parses one YAML document into a value and the index of its positions, keeping the first
/// value of a key given twice and reporting the others in [`Parsed::duplicates`]. Any other
/// problem stops the parse, with every duplicate found before it.
pub fn parse_tree(source: &str, name: &str) -> Result<Parsed, Vec<Diagnostic>> {
    let mut builder = Builder::new(name);
    let fed = builder.feed(source);
    if let Err(diagnostic) = fed {
        builder.errors.push(diagnostic);
        return Err(builder.errors);
    }

    let mut value = builder.root.unwrap_or(Value::Null);
    if let Err(error) = value.apply_merge() {
        builder.errors.push(
            Diagnostic::new(
                Kind::Syntax,
                name,
                format!("invalid merge key `<<`: {error}"),
            )
            .with_hint("`<<` takes a mapping, or a list of mappings, usually an alias"),
        );
        return Err(builder.errors);
    }
    Ok(Parsed {
        value,
        index: builder.index,
        duplicates: builder.errors,
    })
}

fn too_deep(name: &str, at: Position) -> Diagnostic {
    Diagnostic::new(Kind::Syntax, name, "values are nested too deeply")
        .at(at.line, at.column, at.width)
        .with_hint(format!(
            "flatten the structure: a workflow may nest values at most {MAX_DEPTH} levels deep"
        ))
}

/// A container being built.
enum Frame {
    Sequence {
        /// The node of its path in the index.
        node: usize,
        items: Vec<Value>,
        anchor: usize,
        size: usize,
    },
    Mapping {
        /// The node of its path in the index.
        node: usize,
        entries: Mapping,
        /// The key read and waiting for its value, with its node in the index and whether it
        /// repeats an earlier key (its value is then dropped: the first one stays).
        key: Option<(Value, usize, bool)>,
        anchor: usize,
        size: usize,
    },
}

struct Builder<'a> {
    name: &'a str,
    stack: Vec<Frame>,
    root: Option<Value>,
    documents: usize,
    /// Finished anchored values, with how many values each holds.
    anchors: HashMap<usize, (Value, usize)>,
    alias_nodes: usize,
    index: SourceIndex,
    /// The paths of the index so far, brought up to date when a duplicate key needs them.
    resolved: Resolved,
    errors: Vec<Diagnostic>,
}

impl<'a> Builder<'a> {
    fn new(name: &'a str) -> Self {
        Self {
            name,
            stack: Vec::new(),
            root: None,
            documents: 0,
            anchors: HashMap::new(),
            alias_nodes: 0,
            index: SourceIndex::default(),
            resolved: Resolved::default(),
            errors: Vec::new(),
        }
    }

    /// Builds from the events of `source` until they end or one is an error.
    fn feed(&mut self, source: &str) -> Result<(), Diagnostic> {
        for event in Parser::new_from_str(source) {
            match event {
                Ok((event, span)) => self.event(event, span)?,
                Err(error) => return Err(self.scan_error(&error)),
            }
        }
        Ok(())
    }

    fn scan_error(&self, error: &ScanError) -> Diagnostic {
        let marker = error.marker();
        let at = Position {
            line: marker.line(),
            column: marker.col() + 1,
            width: 1,
        };
        if error.info().contains("recursion limit") {
            too_deep(self.name, at)
        } else {
            let message = format!("invalid YAML: {}", error.info());
            Diagnostic::new(Kind::Syntax, self.name, message)
                .at(at.line, at.column, 1)
                .with_hint(
                    "check the indentation, and the brackets and quotes opened before this point",
                )
        }
    }

    fn event(&mut self, event: Event<'_>, span: YamlSpan) -> Result<(), Diagnostic> {
        let position = Position::from_span(span);
        match event {
            Event::DocumentStart(_) => {
                self.documents += 1;
                if self.documents > 1 {
                    return Err(self
                        .error(Kind::Syntax, "the file holds more than one YAML document", position)
                        .with_hint("a workflow is one document: remove the `---` separators after the first"));
                }
            }
            Event::Scalar(text, style, anchor, tag) => {
                let tag = tag.map(|tag| format!("{}{}", tag.handle, tag.suffix));
                let value = self.scalar(text, style, tag.as_deref(), position)?;
                self.node(value, 1, anchor, position)?;
            }
            Event::Alias(anchor) => {
                let Some((value, size)) = self.anchors.get(&anchor).cloned() else {
                    return Err(self.error(Kind::Syntax, "alias to an unknown anchor", position));
                };
                self.alias_nodes += size;
                if self.alias_nodes > MAX_ALIAS_NODES {
                    return Err(self
                        .error(
                            Kind::Syntax,
                            format!("aliases expand to more than {MAX_ALIAS_NODES} values"),
                            position,
                        )
                        .with_hint("a workflow this large is likely an alias bomb; write the values out, or use fewer nested aliases"));
                }
                self.node(value, size, 0, position)?;
            }
            Event::SequenceStart(anchor, _) => {
                let node = self.open(position)?;
                self.stack.push(Frame::Sequence {
                    node,
                    items: Vec::new(),
                    anchor,
                    size: 1,
                });
            }
            Event::MappingStart(anchor, _) => {
                let node = self.open(position)?;
                self.stack.push(Frame::Mapping {
                    node,
                    entries: Mapping::new(),
                    key: None,
                    anchor,
                    size: 1,
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (value, anchor, size) = match self.stack.pop() {
                    Some(Frame::Sequence {
                        items,
                        anchor,
                        size,
                        ..
                    }) => (Value::Sequence(items), anchor, size),
                    Some(Frame::Mapping {
                        entries,
                        anchor,
                        size,
                        ..
                    }) => (Value::Mapping(entries), anchor, size),
                    None => return Ok(()),
                };
                self.finish(value, size, anchor, position)?;
            }
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
        }
        Ok(())
    }

    fn error(&self, kind: Kind, message: impl Into<String>, at: Position) -> Diagnostic {
        Diagnostic::new(kind, self.name, message).at(at.line, at.column, at.width)
    }

    /// Starts a container: records its position and returns the node of its path. A
    /// container that is a mapping key takes the root's path, as its keys are indexed from
    /// the top.
    fn open(&mut self, position: Position) -> Result<usize, Diagnostic> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(too_deep(self.name, position));
        }
        let node = self.child_node();
        if let Some(node) = node {
            self.index.set_value(node, position);
        }
        Ok(node.unwrap_or(SourceIndex::ROOT))
    }

    /// The node of the path of the next value inside the innermost container, or `None` for
    /// a key.
    fn child_node(&mut self) -> Option<usize> {
        match self.stack.last() {
            None => Some(SourceIndex::ROOT),
            Some(Frame::Sequence { node, items, .. }) => {
                Some(self.index.add_item(*node, items.len()))
            }
            Some(Frame::Mapping {
                key: Some((_, node, _)),
                ..
            }) => Some(*node),
            Some(Frame::Mapping { key: None, .. }) => None,
        }
    }

    /// A scalar or alias: a whole node.
    fn node(
        &mut self,
        value: Value,
        size: usize,
        anchor: usize,
        position: Position,
    ) -> Result<(), Diagnostic> {
        if let Some(node) = self.child_node() {
            self.index.set_value(node, position);
        }
        self.finish(value, size, anchor, position)
    }

    /// Places a finished node in its parent.
    fn finish(
        &mut self,
        value: Value,
        size: usize,
        anchor: usize,
        position: Position,
    ) -> Result<(), Diagnostic> {
        if anchor != 0 {
            self.anchors.insert(anchor, (value.clone(), size));
        }

        let name = self.name;
        match self.stack.last_mut() {
            None => self.root = Some(value),
            Some(Frame::Sequence {
                items, size: total, ..
            }) => {
                items.push(value);
                *total += size;
            }
            Some(Frame::Mapping {
                node: parent,
                entries,
                key,
                size: total,
                ..
            }) => {
                *total += size;
                match key.take() {
                    Some((key, _, duplicate)) => {
                        if !duplicate {
                            entries.insert(key, value);
                        }
                    }
                    None => {
                        let duplicate = entries.contains_key(&value);
                        let node = self.index.add_key(*parent, |names| {
                            write_key_text(names, &value);
                            if duplicate {
                                // Index the repeated value under a path no one looks up.
                                names.push('\u{0}');
                            }
                        });
                        if duplicate {
                            self.resolved.catch_up(&self.index);
                            let diagnostic =
                                duplicate_key(name, &self.resolved, *parent, &value, position);
                            self.errors.push(diagnostic);
                        } else {
                            self.index.set_key(node, position);
                        }
                        *key = Some((value, node, duplicate));
                    }
                }
            }
        }
        Ok(())
    }

    fn scalar(
        &self,
        text: Cow<'_, str>,
        style: ScalarStyle,
        tag: Option<&str>,
        position: Position,
    ) -> Result<Value, Diagnostic> {
        match tag {
            None => Ok(if style == ScalarStyle::Plain {
                resolve_plain(text)
            } else {
                Value::String(text.into_owned())
            }),
            Some("tag:yaml.org,2002:str") => Ok(Value::String(text.into_owned())),
            Some(
                "tag:yaml.org,2002:int"
                | "tag:yaml.org,2002:float"
                | "tag:yaml.org,2002:bool"
                | "tag:yaml.org,2002:null",
            ) => Ok(resolve_plain(text)),
            Some(other) => Err(self
                .error(
                    Kind::Syntax,
                    format!("unsupported YAML tag `{other}`"),
                    position,
                )
                .with_hint("remove the tag; a workflow uses plain YAML values")),
        }
    }
}

/// The error for a key given twice, with the line of its first occurrence when the index
/// knows it.
fn duplicate_key(
    name: &str,
    resolved: &Resolved,
    parent: usize,
    key: &Value,
    at: Position,
) -> Diagnostic {
    let text = key_text(key);
    let key_path = join(resolved.path(parent), &text);
    let diagnostic = Diagnostic::new(Kind::DuplicateKey, name, format!("duplicate key `{text}`"))
        .at(at.line, at.column, at.width);
    let diagnostic = match resolved.key(&key_path) {
        Some(first) => diagnostic.with_hint(format!(
            "the key is first given on line {}; remove one of them",
            first.line
        )),
        None => diagnostic,
    };
    diagnostic.at_path(key_path)
}

/// The text of a mapping key, for paths and messages.
fn key_text(key: &Value) -> String {
    let mut text = String::new();
    write_key_text(&mut text, key);
    text
}

/// Writes the text of a mapping key to `out`.
fn write_key_text(out: &mut String, key: &Value) {
    match key {
        Value::String(text) => out.push_str(text),
        Value::Null => out.push_str("null"),
        Value::Bool(flag) => {
            let _ = write!(out, "{flag}");
        }
        Value::Number(number) => {
            let _ = write!(out, "{number}");
        }
        _ => out.push('?'),
    }
}

/// Resolves a plain scalar with the YAML 1.2 core schema.
fn resolve_plain(text: Cow<'_, str>) -> Value {
    match &*text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Value::Number(f64::INFINITY.into());
        }
        "-.inf" | "-.Inf" | "-.INF" => return Value::Number(f64::NEG_INFINITY.into()),
        ".nan" | ".NaN" | ".NAN" => return Value::Number(f64::NAN.into()),
        _ => {}
    }

    let integer = if let Some(hex) = text.strip_prefix("0x") {
        u64::from_str_radix(hex, 16).ok().map(Number::from)
    } else if let Some(octal) = text.strip_prefix("0o") {
        u64::from_str_radix(octal, 8).ok().map(Number::from)
    } else if is_decimal_integer(&text) {
        text.parse::<u64>()
            .map(Number::from)
            .or_else(|_| text.parse::<i64>().map(Number::from))
            .ok()
    } else {
        None
    };
    if let Some(number) = integer {
        return Value::Number(number);
    }
    if is_float(&text)
        && let Ok(float) = text.parse::<f64>()
    {
        return Value::Number(float.into());
    }
    Value::String(text.into_owned())
}

fn is_decimal_integer(text: &str) -> bool {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|byte| byte.is_ascii_digit())
}

/// `[-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?`, the core schema's float.
fn is_float(text: &str) -> bool {
    let body = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(at) => (&body[..at], Some(&body[at + 1..])),
        None => (body, None),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
    let mantissa_ok =
        digits(whole) && digits(fraction) && !(whole.is_empty() && fraction.is_empty());
    let exponent_ok = exponent.is_none_or(|exponent| {
        let exponent = exponent.strip_prefix(['-', '+']).unwrap_or(exponent);
        !exponent.is_empty() && digits(exponent)
    });
    mantissa_ok && exponent_ok
}

/// Parses one YAML value given on its own, such as `5`, `[a, b]`, `{x: 1}`, `true` or
/// `"quoted"`, into JSON: the values of `weft run -i NAME=VALUE`.
///
/// It goes through [`parse`], so the same scalar rules and limits apply. Keys that are
/// numbers or booleans become their text; a float that JSON cannot hold (`.inf`, `.nan`) and
/// a key that is a list or a mapping are errors. Errors are lowercase messages.
pub fn parse_flow_value(text: &str) -> Result<serde_json::Value, String> {
    let (value, _) = parse(text, "value").map_err(|diagnostics| {
        let Some(first) = diagnostics.first() else {
            return "invalid YAML value".to_owned();
        };
        match (first.line, first.column) {
            (Some(1), Some(column)) => format!("{} at column {column}", first.message),
            (Some(line), Some(column)) => {
                format!("{} at line {line}, column {column}", first.message)
            }
            _ => first.message.clone(),
        }
    })?;
    to_json(value)
}

/// Converts a parsed YAML value to JSON.
fn to_json(value: Value) -> Result<serde_json::Value, String> {
    Ok(match value {
        Value::Null => serde_json::Value::Null,
        Value::Bool(flag) => serde_json::Value::Bool(flag),
        Value::Number(number) => {
            if let Some(unsigned) = number.as_u64() {
                unsigned.into()
            } else if let Some(signed) = number.as_i64() {
                signed.into()
            } else {
                let float = number.as_f64().unwrap_or(f64::NAN);
                serde_json::Number::from_f64(float)
                    .map(serde_json::Value::Number)
                    .ok_or_else(|| format!("`{number}` has no JSON form"))?
            }
        }
        Value::String(text) => serde_json::Value::String(text),
        Value::Sequence(items) => serde_json::Value::Array(
            items
                .into_iter()
                .map(to_json)
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Value::Mapping(entries) => {
            let mut map = serde_json::Map::with_capacity(entries.len());
            for (key, value) in entries {
                let key = match key {
                    Value::String(text) => text,
                    Value::Null | Value::Bool(_) | Value::Number(_) => key_text(&key),
                    _ => {
                        return Err(
                            "a mapping key must be a scalar, not a list or a mapping".to_owned()
                        );
                    }
                };
                map.insert(key, to_json(value)?);
            }
            serde_json::Value::Object(map)
        }
        Value::Tagged(tagged) => to_json(tagged.value)?,
    })
}

/// Decodes `value`, found at `path` in the file, into `T`, turning serde's error into a
/// diagnostic at the right place.
///
/// Most values decode: they are read once, without tracking where the decoder is. Only a
/// value that fails is read again, through `serde_path_to_error`, to learn the path of the
/// error; so the error is the one that tracked decoding alone would give.
pub fn decode<T: DeserializeOwned>(
    value: Value,
    path: &str,
    name: &str,
    index: &SourceIndex,
) -> Result<T, Diagnostic> {
    if let Ok(decoded) = T::deserialize(&value) {
        return Ok(decoded);
    }
    serde_path_to_error::deserialize(value).map_err(|error| {
        let inner = error_path(error.path());
        let full = match (path.is_empty(), inner.is_empty()) {
            (_, true) => path.to_owned(),
            (true, false) => inner,
            (false, false) if inner.starts_with('[') => format!("{path}{inner}"),
            (false, false) => format!("{path}.{inner}"),
        };
        describe(&error.into_inner().to_string(), &full, name, index)
    })
}

fn error_path(path: &serde_path_to_error::Path) -> String {
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            serde_path_to_error::Segment::Seq { index } => {
                let _ = write!(out, "[{index}]");
            }
            serde_path_to_error::Segment::Map { key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            serde_path_to_error::Segment::Enum { .. } | serde_path_to_error::Segment::Unknown => {}
        }
    }
    out
}

/// Builds the diagnostic for serde's message about the value at `path`.
fn describe(message: &str, path: &str, name: &str, index: &SourceIndex) -> Diagnostic {
    let (message, hint) = match message.split_once(HINT_SEPARATOR) {
        Some((message, hint)) => (message, Some(hint.to_owned())),
        None => (message, None),
    };

    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (key, expected) = split_backticked(rest);
        // serde_path_to_error stops at the map that holds the key; the key is one level down.
        let key_path = if path.ends_with(key) {
            path.to_owned()
        } else {
            join(path, key)
        };
        let hint = did_you_mean(key, expected.iter().map(String::as_str)).or_else(|| {
            (!expected.is_empty()).then(|| format!("the keys here are {}", one_of(&expected)))
        });
        return located(
            Kind::UnknownKey,
            format!("unknown key `{key}`"),
            &key_path,
            name,
            index,
            true,
        )
        .with_hint_opt(hint);
    }
    if let Some(rest) = message.strip_prefix("unknown variant `") {
        let (value, expected) = split_backticked(rest);
        let hint = did_you_mean(value, expected.iter().map(String::as_str))
            .or_else(|| Some(format!("expected {}", one_of(&expected))));
        return located(
            Kind::InvalidValue,
            format!("unknown value `{value}`"),
            path,
            name,
            index,
            false,
        )
        .with_hint_opt(hint);
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        let key = rest.trim_end_matches('`');
        let hint = match key {
            "job" => "every stage names the job it runs, such as `job: std.echo`".to_owned(),
            "type" => "give the input a type: `string`, `integer`, `number`, `boolean`, `array` or `object`".to_owned(),
            "attempts" => "give the number of retries after the first attempt, such as `attempts: 3`".to_owned(),
            _ => format!("add `{key}`"),
        };
        let message = format!("missing key `{key}`");
        return located(Kind::MissingKey, message, path, name, index, true).with_hint(hint);
    }

    let kind = if message.starts_with("invalid duration") {
        Kind::InvalidDuration
    } else {
        Kind::InvalidValue
    };
    let message = message
        .replace("invalid type: ", "wrong type: found ")
        .replace("invalid value: ", "invalid value: found ");
    located(kind, message, path, name, index, false).with_hint_opt(hint)
}

fn located(
    kind: Kind,
    message: String,
    path: &str,
    name: &str,
    index: &SourceIndex,
    at_key: bool,
) -> Diagnostic {
    let diagnostic = Diagnostic::new(kind, name, message).at_path(path);
    let position = if at_key {
        index.key(path)
    } else {
        index.value(path)
    };
    match position {
        Some(position) => diagnostic.at(position.line, position.column, position.width),
        None => diagnostic,
    }
}

/// Splits "x`, expected one of `a`, `b`" into `x` and the expected names.
fn split_backticked(rest: &str) -> (&str, Vec<String>) {
    let (first, tail) = rest.split_once('`').unwrap_or((rest, ""));
    let expected = tail
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect();
    (first, expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(source: &str) -> (Value, SourceIndex) {
        parse(source, "test.yaml").unwrap_or_else(|errors| panic!("{errors:?}"))
    }

    fn parse_err(source: &str) -> Vec<Diagnostic> {
        parse(source, "test.yaml").expect_err("the source should be refused")
    }

    #[test]
    fn plain_scalars_follow_the_core_schema() {
        let (value, _) = parse_ok("[1, -2, 0x1f, 1.5, .inf, true, null, ~, yes, '1', 1e3, 1_000]");
        let Value::Sequence(items) = value else {
            panic!()
        };
        assert_eq!(items[0], Value::Number(1.into()));
        assert_eq!(items[1], Value::Number((-2).into()));
        assert_eq!(items[2], Value::Number(31.into()));
        assert_eq!(items[3], Value::Number(1.5.into()));
        assert!(matches!(&items[4], Value::Number(n) if n.as_f64() == Some(f64::INFINITY)));
        assert_eq!(items[5], Value::Bool(true));
        assert_eq!(items[6], Value::Null);
        assert_eq!(items[7], Value::Null);
        assert_eq!(items[8], Value::String("yes".into()));
        assert_eq!(items[9], Value::String("1".into()));
        assert_eq!(items[10], Value::Number(1000.0.into()));
        assert_eq!(items[11], Value::String("1_000".into()));
    }

    #[test]
    fn the_index_knows_keys_values_and_list_items() {
        let (_, index) = parse_ok("stages:\n  count:\n    needs: [a, b]\n");

        assert_eq!(
            index.key("stages.count").map(|p| (p.line, p.column)),
            Some((2, 3))
        );
        assert_eq!(
            index
                .key("stages.count.needs")
                .map(|p| (p.line, p.column, p.width)),
            Some((3, 5, 5))
        );
        assert_eq!(
            index
                .value("stages.count.needs[1]")
                .map(|p| (p.line, p.column)),
            Some((3, 16))
        );
        assert_eq!(
            index.key("stages.count.retry").map(|p| p.line),
            Some(2),
            "falls back to the parent"
        );
    }

    #[test]
    fn duplicate_keys_are_all_reported_with_the_first_line() {
        let errors = parse_err("a: 1\nb: 2\na: 3\nb: 4\n");

        assert_eq!(errors.len(), 2);
        assert_eq!(errors[0].message, "duplicate key `a`");
        assert_eq!((errors[0].line, errors[0].column), (Some(3), Some(1)));
        assert_eq!(
            errors[0].hint.as_deref(),
            Some("the key is first given on line 1; remove one of them")
        );
    }

    #[test]
    fn merge_keys_fill_in_what_the_mapping_lacks() {
        let (value, _) = parse_ok("base: &b {x: 1, y: 2}\nuse:\n  <<: *b\n  y: 3\n");

        assert_eq!(value["use"]["x"], Value::Number(1.into()));
        assert_eq!(value["use"]["y"], Value::Number(3.into()));
    }

    #[test]
    fn an_alias_bomb_is_refused_quickly() {
        let mut source = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for level in 1..12 {
            let previous = level - 1;
            let _ = writeln!(
                source,
                "a{level}: &a{level} [*a{previous}, *a{previous}, *a{previous}, *a{previous}, *a{previous}, *a{previous}, *a{previous}, *a{previous}, *a{previous}, *a{previous}]"
            );
        }

        let errors = parse_err(&source);

        assert!(
            errors[0].message.starts_with("aliases expand to more than"),
            "{errors:?}"
        );
    }

    #[test]
    fn deep_nesting_is_refused_in_flow_and_block_style() {
        let flow = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let block: String = (0..100)
            .map(|depth| format!("{}k{depth}:\n", "  ".repeat(depth)))
            .collect();

        for source in [flow, block] {
            let errors = parse_err(&source);
            assert_eq!(errors[0].message, "values are nested too deeply");
        }
    }

    #[test]
    fn syntax_errors_carry_their_position() {
        let errors = parse_err("a: [1, 2\nb: 3\n");

        assert_eq!(errors[0].kind, Kind::Syntax);
        assert!(errors[0].line.is_some());
    }

    #[test]
    fn a_second_document_is_refused() {
        let errors = parse_err("a: 1\n---\nb: 2\n");

        assert!(errors[0].message.contains("more than one YAML document"));
    }

    #[test]
    fn custom_tags_are_refused_and_core_tags_kept() {
        assert_eq!(parse_ok("a: !!str 12").0["a"], Value::String("12".into()));
        assert!(
            parse_err("a: !secret x")[0]
                .message
                .contains("unsupported YAML tag")
        );
    }

    #[test]
    fn flow_values_become_json() {
        assert_eq!(parse_flow_value("5"), Ok(serde_json::json!(5)));
        assert_eq!(parse_flow_value("-3"), Ok(serde_json::json!(-3)));
        assert_eq!(parse_flow_value("1.5"), Ok(serde_json::json!(1.5)));
        assert_eq!(parse_flow_value("true"), Ok(serde_json::json!(true)));
        assert_eq!(parse_flow_value("~"), Ok(serde_json::Value::Null));
        assert_eq!(parse_flow_value("[a, 2]"), Ok(serde_json::json!(["a", 2])));
        assert_eq!(
            parse_flow_value("{x: 1, 2: [b]}"),
            Ok(serde_json::json!({"x": 1, "2": ["b"]}))
        );
        assert_eq!(parse_flow_value("\"5\""), Ok(serde_json::json!("5")));
        assert_eq!(parse_flow_value("ten"), Ok(serde_json::json!("ten")));
    }

    #[test]
    fn flow_values_keep_key_order() {
        let value = parse_flow_value("{zeta: 1, alpha: 2}").unwrap();

        let keys: Vec<&String> = value.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["zeta", "alpha"]);
    }

    #[test]
    fn bad_flow_values_are_lowercase_errors_with_a_column() {
        let error = parse_flow_value("[a, b").unwrap_err();

        assert!(error.starts_with("invalid YAML: "), "{error}");
        assert!(error.contains("column"), "{error}");
        assert_eq!(
            parse_flow_value("{a: 1, a: 2}").unwrap_err(),
            "duplicate key `a` at column 8"
        );
        assert_eq!(
            parse_flow_value(".inf").unwrap_err(),
            "`.inf` has no JSON form"
        );
        assert!(parse_flow_value("{[a]: 1}").is_err());
    }
}
