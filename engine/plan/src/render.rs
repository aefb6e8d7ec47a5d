//! The plan as JSON (versioned), a table, Graphviz DOT and Mermaid. Every renderer lists steps
//! in the plan's deterministic topological order, so the same spec gives the same bytes.

use serde_json::{Value, json};

use crate::model::{DataClass, Edge, Plan, Step};

fn ordered(plan: &Plan) -> Vec<&Step> {
    let order = plan
        .topological()
        .unwrap_or_else(|| plan.graph.node_indices().collect());
    order.into_iter().map(|n| &plan.graph[n]).collect()
}

/// The JSON form: `{"format", "study", "version", "plan_hash", "compiler", "calendar",
/// "nodes", "edges", "order_only_edges", "deadlines"}`. `edges` holds every dependency;
/// `order_only_edges` those that carry no data (gates and completion).
pub fn json(plan: &Plan) -> Value {
    let nodes: Vec<Value> = ordered(plan)
        .into_iter()
        .map(|s| {
            json!({
                "id": s.id,
                "kind": s.kind,
                "about": s.about,
                "title": s.title,
                "title_lv": s.title_lv,
                "actor": s.actor,
                "human_task": s.human_task,
                "data_in": s.data_in,
                "data_out": s.data_out,
                "regulation": s.regulation,
                "trigger": s.trigger,
                "per_subject": s.per_subject,
                "stage": s.stage,
                "fields": s.fields,
                "due": s.deadline.as_ref().and_then(|d| d.date),
                "deadline": s
                    .deadline
                    .as_ref()
                    .map(|d| json!({"kind": d.kind, "rule": d.rule, "rule_lv": d.rule_lv})),
            })
        })
        .collect();
    let all = plan.edges();
    let edges: Vec<Value> = all.iter().map(|(a, b, _)| json!([a, b])).collect();
    let order_only: Vec<Value> = all
        .iter()
        .filter(|(_, _, e)| *e == Edge::Order)
        .map(|(a, b, _)| json!([a, b]))
        .collect();
    let deadlines: Vec<Value> = ordered(plan)
        .into_iter()
        .filter_map(|s| {
            s.deadline
                .as_ref()
                .map(|d| json!({"id": s.id, "kind": d.kind, "date": d.date, "rule": d.rule, "rule_lv": d.rule_lv}))
        })
        .collect();
    json!({
        "format": crate::FORMAT,
        "study": plan.study,
        "version": plan.version,
        "plan_hash": plan.hash,
        "compiler": crate::COMPILER_VERSION,
        "calendar": plan.calendar_version,
        "nodes": nodes,
                "edges": edges,
        "order_only_edges": order_only,
        "deadlines": deadlines,
    })
}

/// A table for people: one row per step.
pub fn table(plan: &Plan) -> String {
    let header = [
        "#",
        "step",
        "actor",
        "data in → out",
        "MK403",
        "trigger",
        "due",
    ];
    let rows: Vec<[String; 7]> = ordered(plan)
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            [
                (i + 1).to_string(),
                s.id.clone(),
                s.actor.as_str().replace('_', " "),
                format!("{} → {}", s.data_in.as_str(), s.data_out.as_str()),
                s.regulation.join(" "),
                s.trigger.describe(),
                match &s.deadline {
                    Some(d) => d
                        .date
                        .map_or_else(|| "per subject".to_owned(), |d| d.to_string()),
                    None => String::new(),
                },
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = format!(
        "plan of {} version {}\nplan hash {}\ncalendar {}\ncompiler {}\n\n",
        plan.study,
        plan.version,
        plan.hash,
        plan.calendar_version,
        crate::COMPILER_VERSION
    );
    let line = |cells: &[String]| {
        let mut l = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i > 0 {
                l.push_str("  ");
            }
            l.push_str(cell);
            if i + 1 < cells.len() {
                l.push_str(&" ".repeat(w - cell.chars().count()));
            }
        }
        l.truncate(l.trim_end().len());
        l.push('\n');
        l
    };
    out.push_str(&line(&header.map(str::to_owned)));
    out.push_str(&line(&widths.map(|w| "-".repeat(w))));
    for row in &rows {
        out.push_str(&line(row));
    }
    let deadlines: Vec<&Step> = ordered(plan)
        .into_iter()
        .filter(|s| s.deadline.is_some())
        .collect();
    if !deadlines.is_empty() {
        out.push_str("\ndeadlines\n");
        for s in deadlines {
            if let Some(d) = &s.deadline {
                out.push_str(&format!(
                    "  {:<10}  {}: {}\n",
                    d.date.map_or_else(|| "—".to_owned(), |d| d.to_string()),
                    s.id,
                    d.rule
                ));
            }
        }
    }
    out
}

/// Fill colour of a data class, shared by DOT and Mermaid.
fn colour(c: DataClass) -> &'static str {
    match c {
        DataClass::None => "#eeeeee",
        DataClass::Identifying => "#f4a6a6",
        DataClass::Pseudonymised => "#f9d38c",
        DataClass::Anonymised => "#a8d8a8",
        DataClass::Contact => "#b9c7f0",
    }
}

fn escape_dot(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Graphviz DOT, nodes filled by the class of data they write, with a legend of the colours,
/// the dashed (order-only) edges and the double borders (once per subject).
pub fn dot(plan: &Plan) -> String {
    let steps = ordered(plan);
    let mut out = format!(
        "digraph \"{}\" {{\n  graph [rankdir=TB, label=\"{} v{} · {}\", labelloc=t, fontname=\"Helvetica\"];\n  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\", fontsize=10];\n  edge [color=\"#666666\"];\n",
        escape_dot(&plan.study),
        escape_dot(&plan.study),
        plan.version,
        plan.hash
    );
    for s in &steps {
        let shape = if s.per_subject { ", peripheries=2" } else { "" };
        let due = s
            .deadline
            .as_ref()
            .and_then(|d| d.date)
            .map(|d| format!("\\ndue {d}"))
            .unwrap_or_default();
        out.push_str(&format!(
            "  \"{}\" [label=\"{}\\n{} · {} → {}\\n{}{}\", fillcolor=\"{}\"{shape}];\n",
            escape_dot(&s.id),
            escape_dot(&s.id),
            s.actor.as_str().replace('_', " "),
            s.data_in.as_str(),
            s.data_out.as_str(),
            s.regulation.join(" "),
            due,
            colour(s.data_out)
        ));
    }
    for (a, b, e) in plan.edges() {
        let style = match e {
            Edge::Data => "",
            Edge::Order => " [style=dashed]",
        };
        out.push_str(&format!(
            "  \"{}\" -> \"{}\"{style};\n",
            escape_dot(a),
            escape_dot(b)
        ));
    }
    out.push_str(
        "  subgraph cluster_legend {\n    label=\"legend: the data a step writes\"; fontsize=10;\n",
    );
    for c in DataClass::ALL {
        out.push_str(&format!(
            "    \"legend_{0}\" [label=\"{0}\", fillcolor=\"{1}\"];\n",
            c.as_str(),
            colour(c)
        ));
    }
    out.push_str(concat!(
        "    \"legend_a\" [label=\"step\", fillcolor=\"#ffffff\"];\n",
        "    \"legend_b\" [label=\"step\", fillcolor=\"#ffffff\"];\n",
        "    \"legend_c\" [label=\"step\", fillcolor=\"#ffffff\"];\n",
        "    \"legend_d\" [label=\"once per subject\\n(double border)\", fillcolor=\"#ffffff\", peripheries=2];\n",
        "    \"legend_a\" -> \"legend_b\" [label=\"reads what it wrote\", fontsize=9];\n",
        "    \"legend_c\" -> \"legend_d\" [label=\"only waits for it (dashed)\", fontsize=9, style=dashed];\n",
        "  }\n}\n",
    ));
    out
}

/// Mermaid flowchart, legible as `mmdc` renders it at its defaults: drawn at its natural size
/// (`useMaxWidth: false`, so a wide plan is not shrunk to 800 px and 5 px text), top to bottom,
/// the steps grouped in a box per follow-up wave (its point, edge and years) and per stage of
/// `phases[].covers`, each step with its actor, the data it reads and writes, its points and its
/// due date; the title names the study and the day the p.8 notice is due; a legend explains
/// the colours, the dashed edges and the double-sided boxes.
pub fn mermaid(plan: &Plan) -> String {
    let steps = ordered(plan);
    let index: std::collections::HashMap<&str, usize> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    let notice = plan
        .prison_notice_due()
        .map(|d| format!(" · p.8 notice to the Prison Administration by {d}"))
        .unwrap_or_default();
    let mut out = format!(
        "---\ntitle: \"{} v{}{notice}\"\nconfig:\n  flowchart:\n    useMaxWidth: false\n    htmlLabels: true\n---\nflowchart TB\n",
        plan.study.replace('\\', "/").replace('"', "'"),
        plan.version
    );
    let node = |i: usize, s: &Step| {
        let due = s
            .deadline
            .as_ref()
            .and_then(|d| d.date)
            .map(|d| format!("<br/>due {d}"))
            .unwrap_or_default();
        let label = format!(
            "<b>{}</b><br/>{} · {} → {}<br/>{}{due}",
            s.id,
            s.actor.as_str().replace('_', " "),
            s.data_in.as_str(),
            s.data_out.as_str(),
            s.regulation.join(" ")
        )
        .replace('"', "#quot;");
        // Per subject: the subroutine shape, its sides doubled.
        let (open, close) = if s.per_subject {
            ("[[", "]]")
        } else {
            ("[", "]")
        };
        format!("n{i}{open}\"{label}\"{close}:::{}\n", s.data_out.as_str())
    };
    // Groups in the order their first step comes: a wave, else a stage, else none.
    let mut groups: Vec<(String, String, Vec<usize>)> = Vec::new();
    let mut loose = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        let group = if let Some(w) = s.about.wave() {
            let edge = match w.edge {
                crate::model::AnchorEdge::Start => "start",
                crate::model::AnchorEdge::End => "end",
            };
            Some((
                format!("wave_{}", w.name),
                format!(
                    "follow-up {} year{} after the {edge} of supervision ({})",
                    w.years,
                    if w.years == 1 { "" } else { "s" },
                    w.point
                ),
            ))
        } else {
            s.stage.map(|st| {
                (
                    format!("stage_{}", st.as_str()),
                    format!("stage: {}", st.as_str().replace('_', " ")),
                )
            })
        };
        match group {
            Some((id, title)) => match groups.iter_mut().find(|g| g.0 == id) {
                Some(g) => g.2.push(i),
                None => groups.push((id, title, vec![i])),
            },
            None => loose.push(i),
        }
    }
    for i in loose {
        out.push_str("  ");
        out.push_str(&node(i, steps[i]));
    }
    for (id, title, members) in &groups {
        out.push_str(&format!("  subgraph {id}[\"{title}\"]\n"));
        for &i in members {
            out.push_str("    ");
            out.push_str(&node(i, steps[i]));
        }
        out.push_str("  end\n");
    }
    for (a, b, e) in plan.edges() {
        let arrow = match e {
            Edge::Data => "-->",
            Edge::Order => "-.->",
        };
        out.push_str(&format!("  n{} {arrow} n{}\n", index[a], index[b]));
    }
    out.push_str("  subgraph legend[\"legend: the data a step writes\"]\n    direction LR\n");
    // The classes in one row, held together by invisible links.
    let classes: Vec<String> = DataClass::ALL
        .iter()
        .map(|c| format!("legend_{0}[\"{0}\"]:::{0}", c.as_str()))
        .collect();
    out.push_str(&format!("    {}\n", classes.join(" ~~~ ")));
    out.push_str("    legend_a[\"step\"] -->|\"reads what it wrote\"| legend_b[\"step\"]\n");
    out.push_str(
        "    legend_c[\"step\"] -.->|\"only waits for it\"| legend_d[[\"once per subject\"]]\n",
    );
    out.push_str("  end\n");
    for c in DataClass::ALL {
        out.push_str(&format!(
            "  classDef {} fill:{},stroke:#555555\n",
            c.as_str(),
            colour(c)
        ));
    }
    out
}
