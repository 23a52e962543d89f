//! Drawing a [`Plan`] as a Graphviz DOT graph or as a Mermaid flowchart.
//!
//! Both drawings list the stages in input order, then the edges sorted by the input order of
//! the dependent and then of the dependency, so they are stable from run to run. Data edges
//! are solid and order-only edges dashed; fan-out stages get their own shape and a
//! ` [fan-out]` suffix on their label.

use std::collections::HashMap;
use std::fmt::{self, Display, Formatter, Write};

use crate::{EdgeKind, Plan, PlannedStage};

/// Words Mermaid reads as keywords at the start of a flowchart line, compared in lowercase.
const MERMAID_KEYWORDS: &[&str] = &[
    "accdescr",
    "acctitle",
    "call",
    "class",
    "classdef",
    "click",
    "default",
    "direction",
    "end",
    "flowchart",
    "graph",
    "href",
    "interpolate",
    "linkstyle",
    "style",
    "subgraph",
];

impl Plan {
    /// The plan as a Graphviz DOT digraph, laid out left to right, titled `title`.
    ///
    /// Each stage is a box labelled with its id and job; fan-out stages are drawn as 3D
    /// boxes. Data edges are solid, order-only edges dashed.
    pub fn to_dot(&self, title: &str) -> String {
        Dot { plan: self, title }.to_string()
    }

    /// The plan as a Mermaid flowchart, laid out left to right, with `title` in its front
    /// matter.
    ///
    /// Node ids are the stage ids reduced to ASCII letters, digits and underscores, made
    /// unique and kept clear of Mermaid keywords; labels carry the real id and the job.
    /// Fan-out stages use the subroutine shape. Data edges are `-->`, order-only edges `-.->`.
    pub fn to_mermaid(&self, title: &str) -> String {
        Mermaid { plan: self, title }.to_string()
    }
}

/// The label of a stage in either drawing, before escaping.
fn label(stage: &PlannedStage) -> String {
    let suffix = if stage.fan_out { " [fan-out]" } else { "" };
    format!("{}\n{}{suffix}", stage.id, stage.job)
}

/// A plan drawn as DOT.
struct Dot<'a> {
    plan: &'a Plan,
    title: &'a str,
}

impl Display for Dot<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let title = DotString(self.title);
        writeln!(f, "digraph {title} {{")?;
        writeln!(f, "    rankdir=LR;")?;
        writeln!(f, "    label={title};")?;
        writeln!(f, "    labelloc=t;")?;
        writeln!(f, "    node [shape=box];")?;

        for stage in self.plan.stages() {
            let id = DotString(&stage.id);
            let label = label(stage);
            let shape = if stage.fan_out { ", shape=box3d" } else { "" };
            writeln!(f, "    {id} [label={}{shape}];", DotString(&label))?;
        }

        for (dependency, dependent, kind) in self.plan.edges() {
            let dependency = DotString(self.plan.id(dependency));
            let dependent = DotString(self.plan.id(dependent));
            let style = match kind {
                EdgeKind::Data => "",
                EdgeKind::Order => " [style=dashed]",
            };
            writeln!(f, "    {dependency} -> {dependent}{style};")?;
        }

        writeln!(f, "}}")
    }
}

/// A DOT double-quoted string.
///
/// Backslashes are doubled so a label shows them as typed, and line feeds become `\n`, a
/// centred line break in a label.
struct DotString<'a>(&'a str);

impl Display for DotString<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_char('"')?;
        for c in self.0.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                '\n' => f.write_str("\\n")?,
                '\r' => {}
                c => f.write_char(c)?,
            }
        }
        f.write_char('"')
    }
}

/// A plan drawn as a Mermaid flowchart.
struct Mermaid<'a> {
    plan: &'a Plan,
    title: &'a str,
}

impl Display for Mermaid<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        writeln!(f, "---")?;
        writeln!(f, "title: {}", YamlString(self.title))?;
        writeln!(f, "---")?;
        writeln!(f, "flowchart LR")?;

        let ids = mermaid_ids(self.plan.stages().map(|stage| stage.id.as_str()));
        for (stage, id) in self.plan.stages().zip(&ids) {
            let label = MermaidLabel(&label(stage));
            if stage.fan_out {
                writeln!(f, "    {id}[[{label}]]")?;
            } else {
                writeln!(f, "    {id}[{label}]")?;
            }
        }

        for (dependency, dependent, kind) in self.plan.edges() {
            let arrow = match kind {
                EdgeKind::Data => "-->",
                EdgeKind::Order => "-.->",
            };
            let dependency = &ids[dependency.index()];
            let dependent = &ids[dependent.index()];
            writeln!(f, "    {dependency} {arrow} {dependent}")?;
        }

        Ok(())
    }
}

/// One Mermaid node id per stage id, in the same order: ASCII letters, digits and
/// underscores, kept clear of keywords, and unique (a repeat gets `_2`, `_3`, ...).
fn mermaid_ids<'a>(stage_ids: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut next_suffix: HashMap<String, usize> = HashMap::new();
    let mut ids = Vec::new();

    for stage_id in stage_ids {
        let base = mermaid_base(stage_id);
        let mut id = base.clone();
        while next_suffix.contains_key(&id) {
            let suffix = next_suffix.get_mut(&base).expect("the base id is taken");
            *suffix += 1;
            id = format!("{base}_{suffix}");
        }
        next_suffix.insert(id.clone(), 1);
        ids.push(id);
    }

    ids
}

/// A stage id reduced to a safe Mermaid node id, before making it unique.
fn mermaid_base(stage_id: &str) -> String {
    let mut id: String = stage_id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();

    let keyword = MERMAID_KEYWORDS.contains(&id.to_ascii_lowercase().as_str());
    if id.is_empty() || keyword {
        id.insert_str(0, "s_");
    }
    id
}

/// A Mermaid double-quoted label, with entity codes for the characters Mermaid would read as
/// markup and `<br/>` for line breaks.
struct MermaidLabel<'a>(&'a str);

impl Display for MermaidLabel<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_char('"')?;
        for c in self.0.chars() {
            match c {
                '"' => f.write_str("#quot;")?,
                '#' => f.write_str("#35;")?,
                '&' => f.write_str("#amp;")?,
                '<' => f.write_str("#lt;")?,
                '>' => f.write_str("#gt;")?,
                '`' => f.write_str("#96;")?,
                '\n' => f.write_str("<br/>")?,
                '\r' => {}
                c => f.write_char(c)?,
            }
        }
        f.write_char('"')
    }
}

/// A YAML double-quoted scalar, for the Mermaid front matter.
struct YamlString<'a>(&'a str);

impl Display for YamlString<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_char('"')?;
        for c in self.0.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                c if c.is_control() => write!(f, "\\u{:04x}", u32::from(c))?,
                c => f.write_char(c)?,
            }
        }
        f.write_char('"')
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StageNode;
    use crate::plan::tests::stage;

    /// `list` feeds a fan-out `count`, which also waits for `setup`; `report` reads and needs
    /// `count`.
    fn small_plan() -> Plan {
        let count = StageNode {
            job: "jq.length".to_owned(),
            fan_out: true,
            ..stage("count", &["list"], &["setup"])
        };
        let list = StageNode {
            job: "http.get".to_owned(),
            ..stage("list", &[], &[])
        };
        let setup = StageNode {
            job: "shell.run".to_owned(),
            ..stage("setup", &[], &[])
        };
        let report = StageNode {
            job: "file.write".to_owned(),
            ..stage("report", &["count"], &["count", "setup"])
        };

        Plan::build(vec![setup, list, count, report]).expect("the test graph is acyclic")
    }

    #[test]
    fn dot_draws_fan_out_stages_as_3d_boxes_and_order_edges_dashed() {
        insta::assert_snapshot!(small_plan().to_dot("daily report"));
    }

    #[test]
    fn mermaid_draws_fan_out_stages_as_subroutines_and_order_edges_dotted() {
        insta::assert_snapshot!(small_plan().to_mermaid("daily report"));
    }

    #[test]
    fn dot_escapes_quotes_backslashes_and_line_breaks() {
        let odd = StageNode {
            job: "a\\b".to_owned(),
            ..stage("say \"hi\"", &[], &[])
        };
        let plan = Plan::build(vec![odd]).expect("the test graph is acyclic");

        let dot = plan.to_dot("two\nlines");

        assert!(dot.starts_with("digraph \"two\\nlines\" {\n"));
        assert!(dot.contains(r#"    "say \"hi\"" [label="say \"hi\"\na\\b"];"#));
    }

    #[test]
    fn mermaid_escapes_labels_and_the_title() {
        let odd = StageNode {
            job: "x<y>&#`".to_owned(),
            ..stage("say \"hi\"", &[], &[])
        };
        let plan = Plan::build(vec![odd]).expect("the test graph is acyclic");

        let mermaid = plan.to_mermaid("a \"b\" \\ c");

        assert!(mermaid.starts_with("---\ntitle: \"a \\\"b\\\" \\\\ c\"\n---\n"));
        assert!(
            mermaid.contains("    say__hi_[\"say #quot;hi#quot;<br/>x#lt;y#gt;#amp;#35;#96;\"]")
        );
    }

    #[test]
    fn mermaid_ids_are_safe_and_unique() {
        let ids = mermaid_ids(
            [
                "fetch-data",
                "fetch_data",
                "fetch_data_2",
                "end",
                "Graph",
                "",
                "é",
                "ok",
            ]
            .into_iter(),
        );

        assert_eq!(
            ids,
            [
                "fetch_data",
                "fetch_data_2",
                "fetch_data_2_2",
                "s_end",
                "s_Graph",
                "s_",
                "_",
                "ok"
            ]
        );
    }
}
