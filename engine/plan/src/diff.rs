//! What an amendment changes (MK403 p.3: a changed plan needs its own approval): the plans'
//! steps added, removed and changed — data classes, deadlines, MK403 points, catalogue fields,
//! who acts — and the spec text line by line, in hunks with context. Used by the approval page
//! and the editor alike.

use serde::Serialize;

use crate::{Plan, Step};

// (`find` is a fn: a closure cannot name the steps' lifetime.)

/// One step's difference between two plans.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Changed {
    pub id: String,
    pub changes: Vec<Change>,
}

/// What of a step changed; serialised as the key a page names it by in its language
/// (`diff.data_in`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum What {
    Title,
    DataIn,
    DataOut,
    Deadline,
    Regulation,
    Fields,
    Actor,
}

impl What {
    pub const ALL: [What; 7] = [
        What::Title,
        What::DataIn,
        What::DataOut,
        What::Deadline,
        What::Regulation,
        What::Fields,
        What::Actor,
    ];

    /// The key, as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            What::Title => "title",
            What::DataIn => "data_in",
            What::DataOut => "data_out",
            What::Deadline => "deadline",
            What::Regulation => "regulation",
            What::Fields => "fields",
            What::Actor => "actor",
        }
    }

    /// In English words.
    pub fn en(self) -> &'static str {
        match self {
            What::DataIn => "data in",
            What::DataOut => "data out",
            What::Regulation => "MK403 points",
            What::Actor => "who acts",
            other => other.as_str(),
        }
    }
}

/// One respect in which a step differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub what: What,
    /// Before and after in English; for `data_in`, `data_out` and `actor` the key of the data
    /// class or actor (`identifying`, `service_researcher`), which the reader names.
    pub before: String,
    pub after: String,
    /// Before and after in Latvian: the title's and the deadline's Latvian words, the same
    /// as in English for the rest.
    pub before_lv: String,
    pub after_lv: String,
}

/// A step only one of the plans has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Listed {
    pub id: String,
    pub title: String,
    pub title_lv: String,
    pub data_in: &'static str,
    pub data_out: &'static str,
}

impl Listed {
    fn of(s: &Step) -> Self {
        Listed {
            id: s.id.clone(),
            title: s.title.clone(),
            title_lv: s.title_lv.clone(),
            data_in: s.data_in.as_str(),
            data_out: s.data_out.as_str(),
        }
    }
}

/// The difference between two plans, by step id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PlanDiff {
    /// Steps only in the new plan.
    pub added: Vec<Listed>,
    /// Steps only in the old plan.
    pub removed: Vec<Listed>,
    pub changed: Vec<Changed>,
}

impl PlanDiff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

fn steps(p: &Plan) -> Vec<&Step> {
    match p.topological() {
        Some(order) => order.into_iter().map(|n| &p.graph[n]).collect(),
        None => p.graph.node_weights().collect(),
    }
}

/// A step's deadline in words: (English, Latvian).
fn deadline(s: &Step) -> (String, String) {
    match &s.deadline {
        Some(d) => match d.date {
            Some(date) => (
                format!("{date} ({})", d.rule),
                format!("{date} ({})", d.rule_lv),
            ),
            None => (d.rule.clone(), d.rule_lv.clone()),
        },
        None => ("—".into(), "—".into()),
    }
}

/// What differs between `old` and `new`, steps in the new plan's order (removed ones in the
/// old plan's).
pub fn plans(old: &Plan, new: &Plan) -> PlanDiff {
    let before = steps(old);
    let after = steps(new);
    fn find<'p>(list: &[&'p Step], id: &str) -> Option<&'p Step> {
        list.iter().find(|s| s.id == id).copied()
    }
    let mut out = PlanDiff::default();
    for s in &after {
        let Some(o) = find(&before, &s.id) else {
            out.added.push(Listed::of(s));
            continue;
        };
        let mut changes = Vec::new();
        // (English, Latvian) before and after; a change in either language is a change.
        let mut note = |what: What, a: (String, String), b: (String, String)| {
            if a != b {
                changes.push(Change {
                    what,
                    before: a.0,
                    after: b.0,
                    before_lv: a.1,
                    after_lv: b.1,
                });
            }
        };
        let same = |x: String| (x.clone(), x);
        note(
            What::Title,
            (o.title.clone(), o.title_lv.clone()),
            (s.title.clone(), s.title_lv.clone()),
        );
        note(
            What::DataIn,
            same(o.data_in.as_str().into()),
            same(s.data_in.as_str().into()),
        );
        note(
            What::DataOut,
            same(o.data_out.as_str().into()),
            same(s.data_out.as_str().into()),
        );
        note(What::Deadline, deadline(o), deadline(s));
        note(
            What::Regulation,
            same(o.regulation.join(", ")),
            same(s.regulation.join(", ")),
        );
        note(
            What::Fields,
            same(o.fields.join(", ")),
            same(s.fields.join(", ")),
        );
        note(
            What::Actor,
            same(o.actor.as_str().into()),
            same(s.actor.as_str().into()),
        );
        if !changes.is_empty() {
            out.changed.push(Changed {
                id: s.id.clone(),
                changes,
            });
        }
    }
    for o in &before {
        if find(&after, &o.id).is_none() {
            out.removed.push(Listed::of(o));
        }
    }
    out
}

/// What differs between `old` and `new`, as Markdown for an editor's preview: the plans'
/// hashes, then the steps added, removed and changed (each change with before and after).
pub fn markdown(old: &Plan, new: &Plan) -> String {
    let d = plans(old, new);
    let mut out = format!(
        "# {}: the plan's changes since v{}\n\nv{} `{}` → v{} `{}`\n\n",
        new.study, old.version, old.version, old.hash, new.version, new.hash
    );
    if d.is_empty() {
        out.push_str("The steps are the same as the approved version's.\n");
        return out;
    }
    let list = |out: &mut String, title: &str, steps: &[Listed]| {
        if !steps.is_empty() {
            out.push_str(&format!("## {title}\n\n"));
            for s in steps {
                out.push_str(&format!(
                    "- `{}` — {} ({} → {})\n",
                    s.id, s.title, s.data_in, s.data_out
                ));
            }
            out.push('\n');
        }
    };
    list(&mut out, "Added steps", &d.added);
    list(&mut out, "Removed steps", &d.removed);
    if !d.changed.is_empty() {
        out.push_str("## Changed steps\n\n");
        for c in &d.changed {
            out.push_str(&format!("- `{}`\n", c.id));
            for ch in &c.changes {
                out.push_str(&format!(
                    "  - {}: {} → {}\n",
                    ch.what.en(),
                    ch.before,
                    ch.after
                ));
            }
        }
    }
    out
}

/// A line of a text diff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mark {
    Same,
    Added,
    Removed,
    /// Unchanged lines left out between hunks.
    Gap,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Line {
    pub mark: Mark,
    /// Its number in the old text (removed, same) and in the new (added, same).
    pub old: Option<usize>,
    pub new: Option<usize>,
    pub text: String,
}

/// Lines longer than this many on both sides are compared by a cheaper, coarser rule (common
/// head and tail, the middle replaced): a spec is a few hundred lines.
const MAX_CELLS: usize = 4_000_000;

/// `old` and `new` line by line (a longest common subsequence), changed lines with `context`
/// unchanged ones around them and [`Mark::Gap`] for what is left out.
pub fn lines(old: &str, new: &str, context: usize) -> Vec<Line> {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    // Common head and tail first: most amendments touch a few lines.
    let head = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let tail = a[head..]
        .iter()
        .rev()
        .zip(b[head..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (am, bm) = (&a[head..a.len() - tail], &b[head..b.len() - tail]);
    let mut all: Vec<Line> = (0..head)
        .map(|i| Line {
            mark: Mark::Same,
            old: Some(i + 1),
            new: Some(i + 1),
            text: a[i].to_owned(),
        })
        .collect();
    if am.len().saturating_mul(bm.len()) <= MAX_CELLS {
        // lcs[i][j]: the common subsequence of am[i..] and bm[j..].
        let (n, m) = (am.len(), bm.len());
        let mut lcs = vec![vec![0u32; m + 1]; n + 1];
        for i in (0..n).rev() {
            for j in (0..m).rev() {
                lcs[i][j] = if am[i] == bm[j] {
                    lcs[i + 1][j + 1] + 1
                } else {
                    lcs[i + 1][j].max(lcs[i][j + 1])
                };
            }
        }
        let (mut i, mut j) = (0, 0);
        while i < n || j < m {
            if i < n && j < m && am[i] == bm[j] {
                all.push(Line {
                    mark: Mark::Same,
                    old: Some(head + i + 1),
                    new: Some(head + j + 1),
                    text: am[i].to_owned(),
                });
                i += 1;
                j += 1;
            } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
                // A removal before the addition that replaces it.
                all.push(Line {
                    mark: Mark::Removed,
                    old: Some(head + i + 1),
                    new: None,
                    text: am[i].to_owned(),
                });
                i += 1;
            } else {
                all.push(Line {
                    mark: Mark::Added,
                    old: None,
                    new: Some(head + j + 1),
                    text: bm[j].to_owned(),
                });
                j += 1;
            }
        }
    } else {
        all.extend(am.iter().enumerate().map(|(i, t)| Line {
            mark: Mark::Removed,
            old: Some(head + i + 1),
            new: None,
            text: (*t).to_owned(),
        }));
        all.extend(bm.iter().enumerate().map(|(j, t)| Line {
            mark: Mark::Added,
            old: None,
            new: Some(head + j + 1),
            text: (*t).to_owned(),
        }));
    }
    all.extend((0..tail).map(|k| Line {
        mark: Mark::Same,
        old: Some(a.len() - tail + k + 1),
        new: Some(b.len() - tail + k + 1),
        text: a[a.len() - tail + k].to_owned(),
    }));
    // Keep the changes and `context` lines around each.
    let changed: Vec<usize> = all
        .iter()
        .enumerate()
        .filter(|(_, l)| l.mark != Mark::Same)
        .map(|(i, _)| i)
        .collect();
    let near = |i: usize| changed.iter().any(|&c| c.abs_diff(i) <= context);
    let mut out = Vec::new();
    let mut gap = false;
    for (i, l) in all.into_iter().enumerate() {
        if l.mark != Mark::Same || near(i) {
            out.push(l);
            gap = false;
        } else if !gap {
            out.push(Line {
                mark: Mark::Gap,
                old: None,
                new: None,
                text: String::new(),
            });
            gap = true;
        }
    }
    // No change at all: nothing to show.
    if out.iter().all(|l| l.mark == Mark::Gap) {
        out.clear();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(d: &[Line]) -> String {
        d.iter()
            .map(|l| match l.mark {
                Mark::Same => format!(" {}", l.text),
                Mark::Added => format!("+{}", l.text),
                Mark::Removed => format!("-{}", l.text),
                Mark::Gap => "…".into(),
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn a_text_diff_shows_the_changes_with_their_context() {
        let old = "a\nb\nc\nd\ne\nf\ng\nh\n";
        let new = "a\nb\nc\nD\ne\nf\ng\nh\ni\n";
        assert_eq!(shown(&lines(old, new, 1)), "…\n c\n-d\n+D\n e\n…\n h\n+i");
        let d = lines(old, new, 1);
        let added = d.iter().find(|l| l.text == "D").unwrap();
        assert_eq!((added.old, added.new), (None, Some(4)));
        let removed = d.iter().find(|l| l.text == "d").unwrap();
        assert_eq!((removed.old, removed.new), (Some(4), None));
        assert!(lines(old, old, 3).is_empty());
        assert_eq!(shown(&lines("", "x\n", 3)), "+x");
        assert_eq!(shown(&lines("x\ny\n", "y\n", 3)), "-x\n y");
    }

    #[test]
    fn a_plan_diff_names_steps_added_removed_and_changed() {
        let calendar = studyflow_calendar::Calendar::latvia();
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../specs/recidivism-2026-cohort.yaml"
        ))
        .unwrap();
        let old = crate::check(text.as_bytes(), &calendar, None).plan.unwrap();
        assert!(plans(&old, &old).is_empty());
        // Without the planned publication, its notice step goes.
        let planned = text
            .lines()
            .find(|l| l.trim_start().starts_with("planned_date:"))
            .expect("the spec plans its publication");
        let later = text.replacen(planned, &planned.replace("2033", "2034"), 1);
        let new = crate::check(later.as_bytes(), &calendar, None)
            .plan
            .unwrap();
        let d = plans(&old, &new);
        assert!(
            d.changed
                .iter()
                .any(|c| c.changes.iter().any(|ch| ch.what == What::Deadline
                    && ch.after.contains("2034")
                    && ch
                        .after_lv
                        .starts_with("2034-12-15 (plānotais publicēšanas datums"))),
            "{d:?}"
        );
        assert!(d.added.is_empty() && d.removed.is_empty(), "{d:?}");
        let d = plans(&new, &{
            let mut fewer = new.clone();
            let last = fewer.graph.node_indices().next_back().unwrap();
            fewer.graph.remove_node(last);
            fewer
        });
        assert_eq!(d.removed.len(), 1, "{d:?}");
    }
}
