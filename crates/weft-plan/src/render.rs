//! Drawing a [`Plan`] as a Graphviz DOT graph or as a Mermaid flowchart.
//!
//! Both drawings list the stages in input order, then the edges sorted by the input order of
//! the dependent and then of the dependency, so they are stable from run to run. Data edges
//! are solid and order-only edges dashed; fan-out stages get their own shape and a
//! ` [fan-out]` suffix on their label.
//!
//! [`Plan::to_dot_with`] and [`Plan::to_mermaid_with`] draw the same graph with each stage
//! filled with the colour of the state a run left it in, and that state on a third line of its
//! label, so that the drawing reads without colour too.

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
        Dot {
            plan: self,
            title,
            states: None,
        }
        .to_string()
    }

    /// The plan as a Mermaid flowchart, laid out left to right, with `title` in its front
    /// matter.
    ///
    /// Node ids are the stage ids reduced to ASCII letters, digits and underscores, made
    /// unique and kept clear of Mermaid keywords; labels carry the real id and the job.
    /// Fan-out stages use the subroutine shape. Data edges are `-->`, order-only edges `-.->`.
    pub fn to_mermaid(&self, title: &str) -> String {
        Mermaid {
            plan: self,
            title,
            states: None,
        }
        .to_string()
    }

    /// [`Plan::to_dot`] with each stage filled by its state in a run: `states` by stage id,
    /// and [`StageState::NotRun`] for a stage it does not name. Skipped stages are dashed.
    pub fn to_dot_with(&self, title: &str, states: &HashMap<String, StageState>) -> String {
        Dot {
            plan: self,
            title,
            states: Some(states),
        }
        .to_string()
    }

    /// [`Plan::to_mermaid`] with each stage in a class named after its state in a run
    /// (`succeeded`, `failed`, `cancelled`, `skipped`, `running`, `not_run`), each class
    /// defined with its colours: `states` by stage id, and [`StageState::NotRun`] for a stage
    /// it does not name.
    pub fn to_mermaid_with(&self, title: &str, states: &HashMap<String, StageState>) -> String {
        Mermaid {
            plan: self,
            title,
            states: Some(states),
        }
        .to_string()
    }
}

/// The state a run left a stage in, for the drawings coloured by a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StageState {
    /// It succeeded: green.
    Succeeded,
    /// It failed: red.
    Failed,
    /// It was cancelled: grey.
    Cancelled,
    /// It was skipped: light grey, dashed.
    Skipped,
    /// It started and had not ended when the run's record stops: yellow.
    Running,
    /// It did not run: white.
    NotRun,
}

impl StageState {
    /// Every state, in the order drawings list them.
    pub const ALL: [Self; 6] = [
        Self::Succeeded,
        Self::Failed,
        Self::Cancelled,
        Self::Skipped,
        Self::Running,
        Self::NotRun,
    ];

    /// The state in words, as labels show it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Skipped => "skipped",
            Self::Running => "running",
            Self::NotRun => "not run",
        }
    }

    /// The state's Mermaid class name.
    fn class(self) -> &'static str {
        match self {
            Self::NotRun => "not_run",
            state => state.as_str(),
        }
    }

    /// The fill and the border colour.
    fn colours(self) -> (&'static str, &'static str) {
        match self {
            Self::Succeeded => ("#a5d6a7", "#2e7d32"),
            Self::Failed => ("#ef9a9a", "#c62828"),
            Self::Cancelled => ("#bdbdbd", "#616161"),
            Self::Skipped => ("#eeeeee", "#9e9e9e"),
            Self::Running => ("#fff59d", "#f9a825"),
            Self::NotRun => ("#ffffff", "#9e9e9e"),
        }
    }
}

/// The state of `stage` in `states`: not run when it is not there.
fn state_of(states: &HashMap<String, StageState>, stage: &str) -> StageState {
    states.get(stage).copied().unwrap_or(StageState::NotRun)
}

/// The label of a stage in either drawing, before escaping.
fn label(stage: &PlannedStage) -> String {
    let suffix = if stage.fan_out { " [fan-out]" } else { "" };
    format!("{}\n{}{suffix}", stage.id, stage.job)
}

/// A plan drawn as DOT, coloured by a run's states when there are some.
struct Dot<'a> {
    plan: &'a Plan,
    title: &'a str,
    states: Option<&'a HashMap<String, StageState>>,
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
            let mut label = label(stage);
            let shape = if stage.fan_out { ", shape=box3d" } else { "" };
            let Some(states) = self.states else {
                writeln!(f, "    {id} [label={}{shape}];", DotString(&label))?;
                continue;
            };

            let state = state_of(states, &stage.id);
            let (fill, border) = state.colours();
            let style = match state {
                StageState::Skipped => "\"filled,dashed\"",
                _ => "filled",
            };
            label.push('\n');
            label.push_str(state.as_str());
            writeln!(
                f,
                "    {id} [label={}{shape}, style={style}, fillcolor=\"{fill}\", color=\"{border}\"];",
                DotString(&label)
            )?;
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

/// A plan drawn as a Mermaid flowchart, coloured by a run's states when there are some.
struct Mermaid<'a> {
    plan: &'a Plan,
    title: &'a str,
    states: Option<&'a HashMap<String, StageState>>,
}

impl Display for Mermaid<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        writeln!(f, "---")?;
        writeln!(f, "title: {}", YamlString(self.title))?;
        writeln!(f, "---")?;
        writeln!(f, "flowchart LR")?;

        let ids = mermaid_ids(self.plan.stages().map(|stage| stage.id.as_str()));
        for (stage, id) in self.plan.stages().zip(&ids) {
            let mut label = label(stage);
            if let Some(states) = self.states {
                label.push('\n');
                label.push_str(state_of(states, &stage.id).as_str());
            }
            let label = MermaidLabel(&label);
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

        if let Some(states) = self.states {
            self.classes(f, &ids, states)?;
        }
        Ok(())
    }
}

impl Mermaid<'_> {
    /// One `classDef` per state in use, then one `class` line per state listing its nodes.
    fn classes(
        &self,
        f: &mut Formatter<'_>,
        ids: &[String],
        states: &HashMap<String, StageState>,
    ) -> fmt::Result {
        let mut members: Vec<(StageState, Vec<&str>)> = Vec::new();
        for state in StageState::ALL {
            let nodes: Vec<&str> = self
                .plan
                .stages()
                .zip(ids)
                .filter(|(stage, _)| state_of(states, &stage.id) == state)
                .map(|(_, id)| id.as_str())
                .collect();
            if !nodes.is_empty() {
                members.push((state, nodes));
            }
        }

        for (state, _) in &members {
            let (fill, border) = state.colours();
            let dashes = match state {
                StageState::Skipped => ",stroke-dasharray:5 5",
                _ => "",
            };
            writeln!(
                f,
                "    classDef {} fill:{fill},stroke:{border},color:#000000{dashes}",
                state.class()
            )?;
        }
        for (state, nodes) in &members {
            writeln!(f, "    class {} {}", nodes.join(","), state.class())?;
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

    /// `setup` and `list` succeeded, `count` failed, `report` was skipped.
    fn states() -> HashMap<String, StageState> {
        [
            ("setup", StageState::Succeeded),
            ("list", StageState::Succeeded),
            ("count", StageState::Failed),
            ("report", StageState::Skipped),
        ]
        .into_iter()
        .map(|(id, state)| (id.to_owned(), state))
        .collect()
    }

    #[test]
    fn dot_with_states_fills_each_stage_with_its_state_and_dashes_skipped_ones() {
        insta::assert_snapshot!(small_plan().to_dot_with("daily report", &states()));
    }

    #[test]
    fn mermaid_with_states_puts_each_stage_in_the_class_of_its_state() {
        insta::assert_snapshot!(small_plan().to_mermaid_with("daily report", &states()));
    }

    #[test]
    fn stages_a_run_does_not_name_are_drawn_as_not_run() {
        let mut states = states();
        states.remove("report");

        let dot = small_plan().to_dot_with("daily report", &states);
        let mermaid = small_plan().to_mermaid_with("daily report", &states);

        assert!(
            dot.contains(r##""report" [label="report\nfile.write\nnot run", style=filled, fillcolor="#ffffff""##),
            "{dot}"
        );
        assert!(mermaid.contains("    class report not_run\n"), "{mermaid}");
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
