//! The plan as an SVG drawing for the pages: steps in layers from the first to the last (each
//! step one layer below the latest of the steps it waits for), ordered within a layer by where
//! the steps they wait for stand, each a box filled by the class of data it gives and naming it
//! in words (colour is never the only carrier), edges as curves with arrows (dashed: order
//! only). Presentation attributes only — no `style` — so a CSP without inline styles shows it.
//! Legible at its natural size (a box per step, 13 px text); wide plans scroll.

use std::collections::HashMap;
use std::fmt::Write as _;

use petgraph::Direction;
use petgraph::graph::NodeIndex;

use crate::model::{DataClass, Edge, Plan};

/// A box is at least this wide, and wider for a long step id, up to [`BOX_W_MAX`].
const BOX_W: f64 = 230.0;
const BOX_W_MAX: f64 = 420.0;
/// About what a character of a 13 px semibold step id takes, and the box's padding.
const ID_CHAR_W: f64 = 7.6;
const ID_PAD: f64 = 16.0;
const BOX_H: f64 = 46.0;
const GAP_X: f64 = 26.0;
const GAP_Y: f64 = 54.0;
const MARGIN: f64 = 16.0;

/// The fill and the text colour of a class (light fills, dark text: contrast above 7:1).
pub fn colours(class: DataClass) -> (&'static str, &'static str) {
    match class {
        DataClass::None => ("#f3f5f7", "#1b1f24"),
        DataClass::Identifying => ("#fbe3e5", "#6e0b12"),
        DataClass::Pseudonymised => ("#fff0d6", "#5c3100"),
        DataClass::Anonymised => ("#e2f4e7", "#144523"),
        DataClass::Contact => ("#efe6f8", "#44206a"),
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Each step's layer (longest path from a first step) and place in it.
fn layout(plan: &Plan) -> HashMap<NodeIndex, (usize, usize)> {
    let g = &plan.graph;
    let order = plan
        .topological()
        .unwrap_or_else(|| g.node_indices().collect());
    let mut layer: HashMap<NodeIndex, usize> = HashMap::new();
    for &n in &order {
        let l = g
            .neighbors_directed(n, Direction::Incoming)
            .filter_map(|p| layer.get(&p))
            .map(|l| l + 1)
            .max()
            .unwrap_or(0);
        layer.insert(n, l);
    }
    let depth = layer.values().copied().max().map_or(0, |d| d + 1);
    let mut rows: Vec<Vec<NodeIndex>> = vec![Vec::new(); depth];
    for &n in &order {
        rows[layer[&n]].push(n);
    }
    // Within a layer, by the mean place of what each waits for (the plan's order breaks ties).
    let mut place: HashMap<NodeIndex, usize> = HashMap::new();
    for row in &mut rows {
        let key = |n: &NodeIndex| {
            let ps: Vec<f64> = g
                .neighbors_directed(*n, Direction::Incoming)
                .filter_map(|p| place.get(&p).map(|&x| x as f64))
                .collect();
            if ps.is_empty() {
                f64::MAX
            } else {
                ps.iter().sum::<f64>() / ps.len() as f64
            }
        };
        let mut keyed: Vec<(f64, usize, NodeIndex)> = row
            .iter()
            .enumerate()
            .map(|(i, n)| (key(n), i, *n))
            .collect();
        keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        *row = keyed.into_iter().map(|(_, _, n)| n).collect();
        for (i, n) in row.iter().enumerate() {
            place.insert(*n, i);
        }
    }
    rows.iter()
        .enumerate()
        .flat_map(|(l, row)| row.iter().enumerate().map(move |(i, n)| (*n, (l, i))))
        .collect()
}

/// The words of a drawing, in the page's language.
pub struct Words<'a> {
    /// Names the drawing (its accessible name).
    pub title: &'a str,
    /// Heads the legend.
    pub legend: &'a str,
    /// Marks a person's task.
    pub task: &'a str,
    /// A data class.
    pub class: &'a dyn Fn(DataClass) -> String,
    /// Whether the steps' titles are given in Latvian ([`crate::Step::title_lv`]).
    pub latvian: bool,
}

/// The SVG of `plan` in `words`.
pub fn svg(plan: &Plan, words: &Words<'_>) -> String {
    let (title, legend, class_name) = (words.title, words.legend, words.class);
    let g = &plan.graph;
    let at = layout(plan);
    let widest = at.values().map(|(_, i)| i + 1).max().unwrap_or(1);
    let depth = at.values().map(|(l, _)| l + 1).max().unwrap_or(1);
    let row_w = |l: usize| at.values().filter(|(x, _)| *x == l).count();
    // Every box as wide as the longest step id needs (the follow-up waves' ids are 30-odd
    // characters), so no id is cut short; past the widest box, an id is (its tooltip whole).
    let longest = g
        .node_weights()
        .map(|s| s.id.chars().count())
        .max()
        .unwrap_or(0);
    let box_w = (ID_PAD + ID_CHAR_W * longest as f64).clamp(BOX_W, BOX_W_MAX);
    let id_chars = ((box_w - ID_PAD) / ID_CHAR_W) as usize;
    let graph_w = widest as f64 * (box_w + GAP_X) - GAP_X;
    // Each layer centred under the widest.
    let pos = |n: NodeIndex| -> (f64, f64) {
        let (l, i) = at[&n];
        let offset = (graph_w - (row_w(l) as f64 * (box_w + GAP_X) - GAP_X)) / 2.0;
        (
            MARGIN + offset + i as f64 * (box_w + GAP_X),
            MARGIN + 40.0 + l as f64 * (BOX_H + GAP_Y),
        )
    };
    let legend_h = 40.0;
    let width = graph_w + 2.0 * MARGIN;
    let height = MARGIN * 2.0 + 40.0 + depth as f64 * (BOX_H + GAP_Y) - GAP_Y + legend_h;
    let mut s = String::new();
    let _ = write!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" class="plan-graph" role="img" aria-labelledby="plan-graph-title" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="system-ui, sans-serif">"##
    );
    let _ = write!(
        s,
        r##"<title id="plan-graph-title">{}</title><defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#4a5560"/></marker></defs>"##,
        escape(title)
    );
    // The legend: every class, a swatch and its name.
    let _ = write!(
        s,
        r##"<text x="{MARGIN}" y="{:.0}" font-size="13" font-weight="600" fill="#1b1f24">{}</text>"##,
        MARGIN + 14.0,
        escape(legend)
    );
    let mut x = MARGIN + 8.0 * legend.chars().count() as f64 + 24.0;
    for class in DataClass::ALL {
        let (fill, ink) = colours(class);
        let name = class_name(class);
        let _ = write!(
            s,
            r##"<rect x="{x:.0}" y="{:.0}" width="18" height="18" rx="3" fill="{fill}" stroke="{ink}"/><text x="{:.0}" y="{:.0}" font-size="13" fill="#1b1f24">{}</text>"##,
            MARGIN,
            x + 24.0,
            MARGIN + 14.0,
            escape(&name)
        );
        x += 24.0 + 7.5 * name.chars().count() as f64 + 22.0;
    }
    // Edges first, boxes over them.
    for e in g.edge_indices() {
        let (a, b) = g.edge_endpoints(e).expect("an edge has ends");
        let ((ax, ay), (bx, by)) = (pos(a), pos(b));
        let (x1, y1) = (ax + box_w / 2.0, ay + BOX_H);
        let (x2, y2) = (bx + box_w / 2.0, by);
        let bend = (y2 - y1).max(GAP_Y) / 2.0;
        let dash = if g[e] == Edge::Order {
            r#" stroke-dasharray="5 4""#
        } else {
            ""
        };
        let _ = write!(
            s,
            r##"<path d="M {x1:.1} {y1:.1} C {x1:.1} {:.1}, {x2:.1} {:.1}, {x2:.1} {y2:.1}" fill="none" stroke="#6b7580" stroke-width="1.3"{dash} marker-end="url(#arrow)"/>"##,
            y1 + bend,
            y2 - bend
        );
    }
    for n in g.node_indices() {
        let step = &g[n];
        let (x, y) = pos(n);
        let (fill, ink) = colours(step.data_out);
        let id: String = if step.id.chars().count() > id_chars {
            step.id.chars().take(id_chars - 1).collect::<String>() + "…"
        } else {
            step.id.clone()
        };
        let _ = write!(
            s,
            r##"<g><title>{}: {} ({} → {})</title><rect x="{x:.1}" y="{y:.1}" width="{box_w:.1}" height="{BOX_H}" rx="5" fill="{fill}" stroke="{ink}" stroke-width="{}"/><text x="{:.1}" y="{:.1}" font-size="13" font-weight="600" fill="{ink}">{}</text><text x="{:.1}" y="{:.1}" font-size="12" fill="{ink}">{}{}</text></g>"##,
            escape(&step.id),
            escape(if words.latvian {
                &step.title_lv
            } else {
                &step.title
            }),
            escape(&class_name(step.data_in)),
            escape(&class_name(step.data_out)),
            if step.human_task { "2.2" } else { "1" },
            x + 8.0,
            y + 19.0,
            escape(&id),
            x + 8.0,
            y + 36.0,
            escape(&class_name(step.data_out)),
            if step.human_task {
                format!(" · {}", escape(words.task))
            } else {
                String::new()
            },
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_step_is_drawn_once_below_what_it_waits_for() {
        let calendar = studyflow_calendar::Calendar::latvia();
        for name in [
            "recidivism-2026-cohort",
            "probation-client-survey",
            "resocialisation-programmes-university",
        ] {
            let text = std::fs::read(format!(
                "{}/../../specs/{name}.yaml",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap();
            let plan = crate::check(&text, &calendar, None).plan.unwrap();
            let out = svg(
                &plan,
                &Words {
                    title: "plan",
                    legend: "Data out:",
                    task: "a person's task",
                    class: &|c| c.as_str().to_owned(),
                    latvian: false,
                },
            );
            assert!(out.starts_with("<svg") && out.ends_with("</svg>"));
            assert!(!out.contains("style="), "no inline style: a CSP forbids it");
            let boxes = out.matches("<g><title>").count();
            assert_eq!(boxes, plan.graph.node_count(), "{name}");
            let drawing = out.split("</defs>").nth(1).unwrap();
            assert_eq!(
                drawing.matches("<path d=\"M ").count(),
                plan.graph.edge_count()
            );
            let at = layout(&plan);
            for e in plan.graph.edge_indices() {
                let (a, b) = plan.graph.edge_endpoints(e).unwrap();
                assert!(at[&a].0 < at[&b].0, "{name}: an edge runs down");
            }
            // No two boxes in one place.
            let mut places: Vec<_> = at.values().collect();
            places.sort();
            places.dedup();
            assert_eq!(places.len(), plan.graph.node_count());
            // Every step's id is written whole in its box (the waves' ids are long).
            for s in plan.graph.node_weights() {
                assert!(
                    out.contains(&format!(">{}</text>", s.id)),
                    "{name}: {} cut",
                    s.id
                );
            }
        }
    }
}
