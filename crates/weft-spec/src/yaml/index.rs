//! The [`SourceIndex`]: where each key and value of a document is.
//!
//! The parser records positions as it meets them, each against a node of a tree of path
//! segments, without writing out a single path. The map from whole paths (`stages.a.needs[0]`)
//! to positions is built the first time it is asked for: only files with problems ask, so a
//! valid file never pays for it.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::ops::Range;
use std::sync::OnceLock;

use super::Position;

/// A node of the path tree: the path of its parent, extended by one segment.
#[derive(Clone, Debug)]
struct Node {
    parent: usize,
    segment: Segment,
}

/// How a node's path extends its parent's.
#[derive(Clone, Debug)]
enum Segment {
    /// The document itself: the empty path.
    Root,
    /// A mapping key, `.key`; its text is this range of [`SourceIndex::names`].
    Key(Range<usize>),
    /// A list item, `[n]`.
    Item(usize),
}

/// Which position of a path a mark sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    Key,
    Value,
}

/// A position found by the parser, in the order it was found.
#[derive(Clone, Copy, Debug)]
struct Mark {
    node: usize,
    slot: Slot,
    position: Position,
}

/// The positions of one path.
#[derive(Clone, Copy, Debug, Default)]
struct Entry {
    key: Option<Position>,
    value: Option<Position>,
}

/// Where each key and value of a document is, by key path (`stages.count.retry`,
/// `stages.a.needs[0]`).
///
/// # Invariants
///
/// - Node 0 is the root, and every node's parent comes before it.
/// - When two nodes have the same path (a key that holds a dot, `"a.b"`, beside a key `a`
///   holding `b`), the mark found last wins, as if each mark were written to one map of paths
///   in turn.
#[derive(Clone, Debug)]
pub struct SourceIndex {
    nodes: Vec<Node>,
    marks: Vec<Mark>,
    /// The text of every key segment, one after another.
    names: String,
    /// Whole paths to positions, built on the first look-up.
    resolved: OnceLock<Resolved>,
}

impl Default for SourceIndex {
    fn default() -> Self {
        Self {
            nodes: vec![Node {
                parent: 0,
                segment: Segment::Root,
            }],
            marks: Vec::new(),
            names: String::new(),
            resolved: OnceLock::new(),
        }
    }
}

impl SourceIndex {
    /// The node of the empty path, where the document's value is.
    pub(super) const ROOT: usize = 0;

    /// The position of the key at `path`, or of the value when it has no key (a list item);
    /// the nearest enclosing key when the path itself is not in the file (a merged value, a
    /// missing key).
    pub fn key(&self, path: &str) -> Option<Position> {
        self.resolved().key(path)
    }

    /// The position of the value at `path`, with the same fallback as [`SourceIndex::key`].
    pub fn value(&self, path: &str) -> Option<Position> {
        self.resolved().value(path)
    }

    fn resolved(&self) -> &Resolved {
        self.resolved.get_or_init(|| {
            let mut resolved = Resolved::default();
            resolved.catch_up(self);
            resolved
        })
    }

    /// Adds the node of the key `text` under `parent`. `text` is written out by `write`, so
    /// that keys which are not strings need no text of their own.
    pub(super) fn add_key(&mut self, parent: usize, write: impl FnOnce(&mut String)) -> usize {
        let start = self.names.len();
        write(&mut self.names);
        self.add(parent, Segment::Key(start..self.names.len()))
    }

    /// Adds the node of item `at` of the list at `parent`.
    pub(super) fn add_item(&mut self, parent: usize, at: usize) -> usize {
        self.add(parent, Segment::Item(at))
    }

    fn add(&mut self, parent: usize, segment: Segment) -> usize {
        self.nodes.push(Node { parent, segment });
        self.nodes.len() - 1
    }

    /// Records where the key of `node` is.
    pub(super) fn set_key(&mut self, node: usize, position: Position) {
        self.mark(node, Slot::Key, position);
    }

    /// Records where the value of `node` is.
    pub(super) fn set_value(&mut self, node: usize, position: Position) {
        self.mark(node, Slot::Value, position);
    }

    fn mark(&mut self, node: usize, slot: Slot, position: Position) {
        self.marks.push(Mark {
            node,
            slot,
            position,
        });
    }
}

/// Whole paths to positions, for the marks of a [`SourceIndex`] up to some point.
///
/// The parser keeps one of these to place duplicate keys, bringing it up to date only when it
/// meets one; a finished index builds its own on the first look-up.
#[derive(Clone, Debug, Default)]
pub(super) struct Resolved {
    /// The path of each node seen so far.
    paths: Vec<String>,
    entries: HashMap<String, Entry>,
    /// How many marks are in `entries`.
    applied: usize,
}

impl Resolved {
    /// Takes in the nodes and marks `index` gained since the last call.
    pub(super) fn catch_up(&mut self, index: &SourceIndex) {
        for node in &index.nodes[self.paths.len()..] {
            let path = match &node.segment {
                Segment::Root => String::new(),
                Segment::Key(range) => {
                    super::join(&self.paths[node.parent], &index.names[range.clone()])
                }
                Segment::Item(at) => {
                    let mut path = self.paths[node.parent].clone();
                    let _ = write!(path, "[{at}]");
                    path
                }
            };
            self.paths.push(path);
        }

        for mark in &index.marks[self.applied..] {
            let path = &self.paths[mark.node];
            let entry = match self.entries.get_mut(path) {
                Some(entry) => entry,
                None => self.entries.entry(path.clone()).or_default(),
            };
            match mark.slot {
                Slot::Key => entry.key = Some(mark.position),
                Slot::Value => entry.value = Some(mark.position),
            }
        }
        self.applied = index.marks.len();
    }

    /// The path of `node`, which must have been taken in by [`Resolved::catch_up`].
    pub(super) fn path(&self, node: usize) -> &str {
        &self.paths[node]
    }

    /// As [`SourceIndex::key`].
    pub(super) fn key(&self, path: &str) -> Option<Position> {
        self.find(path, |entry| entry.key.or(entry.value))
    }

    /// As [`SourceIndex::value`].
    fn value(&self, path: &str) -> Option<Position> {
        self.find(path, |entry| entry.value.or(entry.key))
    }

    fn find(&self, mut path: &str, pick: impl Fn(&Entry) -> Option<Position>) -> Option<Position> {
        loop {
            if let Some(position) = self.entries.get(path).and_then(&pick) {
                return Some(position);
            }
            path = parent(path)?;
        }
    }
}

/// The path that encloses `path`: `a.b` for `a.b.c` and for `a.b[2]`; `None` at the top.
pub(super) fn parent(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    let cut = path.rfind(['.', '[']).unwrap_or(0);
    Some(&path[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(line: usize) -> Position {
        Position {
            line,
            column: 1,
            width: 1,
        }
    }

    fn add_key(index: &mut SourceIndex, parent: usize, text: &str) -> usize {
        index.add_key(parent, |names| names.push_str(text))
    }

    #[test]
    fn parent_paths_climb_keys_and_indexes() {
        assert_eq!(parent("a.b.c"), Some("a.b"));
        assert_eq!(parent("a.b[2]"), Some("a.b"));
        assert_eq!(parent("a"), Some(""));
        assert_eq!(parent(""), None);
    }

    #[test]
    fn paths_join_keys_and_items() {
        let mut index = SourceIndex::default();
        let stages = add_key(&mut index, SourceIndex::ROOT, "stages");
        let needs = add_key(&mut index, stages, "needs");
        let first = index.add_item(needs, 0);
        index.set_key(stages, at(1));
        index.set_value(first, at(2));

        assert_eq!(index.key("stages").map(|p| p.line), Some(1));
        assert_eq!(index.value("stages.needs[0]").map(|p| p.line), Some(2));
        assert_eq!(index.value("stages.needs[1]").map(|p| p.line), Some(1));
    }

    #[test]
    fn the_mark_found_last_wins_when_two_nodes_share_a_path() {
        let mut index = SourceIndex::default();
        let dotted = add_key(&mut index, SourceIndex::ROOT, "a.b");
        let a = add_key(&mut index, SourceIndex::ROOT, "a");
        let b = add_key(&mut index, a, "b");
        index.set_key(b, at(2));
        index.set_key(dotted, at(3));

        assert_eq!(index.key("a.b").map(|p| p.line), Some(3));
    }

    #[test]
    fn a_resolved_index_catches_up_with_later_marks() {
        let mut index = SourceIndex::default();
        let mut resolved = Resolved::default();
        let a = add_key(&mut index, SourceIndex::ROOT, "a");
        index.set_key(a, at(1));
        resolved.catch_up(&index);
        let b = add_key(&mut index, SourceIndex::ROOT, "b");
        index.set_key(b, at(2));

        assert_eq!(resolved.key("b"), None);
        resolved.catch_up(&index);
        assert_eq!(resolved.key("b").map(|p| p.line), Some(2));
        assert_eq!(resolved.path(b), "b");
    }
}
