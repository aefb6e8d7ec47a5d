//! The recidivism follow-ups in the analysis dataset (MK403 p.19–20), as pure stage functions:
//! the observation window a wave asks for, the check that an answer keeps to it, the anonymised
//! wave answer joined by study ID, and the tables a survival analysis reads.
//!
//! Every day count here is relative to the start of the subject's anchor event (the start of
//! sentence execution for the recidivism study): the released tables never hold a calendar
//! date of a subject.

use crate::values::Values;
use std::collections::{BTreeMap, BTreeSet};

use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use studyflow_plan::WaveRef;
use studyflow_plan::model::AnchorEdge;

use crate::anonymise::AnonRecord;

/// A column the follow-up tables add to a release: derived by the engine from the waves, not
/// a field of any source, and saying nothing that identifies (day counts from the anchor,
/// counts, names of the waves).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Derived {
    pub key: &'static str,
    pub meaning: &'static str,
}

/// The columns of the follow-up tables, with their meaning for the codebook.
pub const DERIVED: &[Derived] = &[
    Derived {
        key: "wave",
        meaning: "the follow-up of MK403 p.19: 1y/3y/5y after the start or end of the anchor event. The waves counted from the start and those counted from the end overlap in time, so an offence can appear once in each family: analyse one family at a time (waves ending in _after_start, or in _after_end)",
    },
    Derived {
        key: "wave_point",
        meaning: "the sub-point of MK403 p.19 of the wave",
    },
    Derived {
        key: "due",
        meaning: "when the wave fell due, counted from the start of the anchor event (the unit: days, or calendar months under the `month` date policy)",
    },
    Derived {
        key: "window_from",
        meaning: "the first day of the wave's observation window, counted from the start of the anchor event (days, or calendar months under the `month` date policy)",
    },
    Derived {
        key: "window_to",
        meaning: "the last day of the wave's observation window, counted from the start of the anchor event (days, or calendar months under the `month` date policy)",
    },
    Derived {
        key: "late_registration",
        meaning: "1: an offence of an earlier window whose proceeding the register opened only after the earlier wave was asked, reported by this wave; 0: an offence of this wave's window",
    },
    Derived {
        key: "events",
        meaning: "number of Punishment Register records in the wave's window",
    },
    Derived {
        key: "observed_until",
        meaning: "the subject is observed without a gap from the start of the anchor event to this point (days, or calendar months under the `month` date policy); empty: no wave has arrived",
    },
    Derived {
        key: "reoffended",
        meaning: "1 when a new offence falls within the observed days, else 0 (the event indicator of a survival analysis)",
    },
    Derived {
        key: "first_offence",
        meaning: "the first new offence within the observed time, counted from the start of the anchor event (days, or calendar months under the `month` date policy); empty: none",
    },
    Derived {
        key: "waves_arrived",
        meaning: "number of follow-up waves joined so far",
    },
    Derived {
        key: "censoring",
        meaning: "why observation ends: follow_up_complete, follow_up_in_progress (interim release) end_not_known (the end of the anchor event is not known, its waves cannot run) cut_off (waves after the study's follow-up cut-off are not requested) or anchor_not_known (no start date, no wave)",
    },
];

/// The derived column `key`, if it is one.
pub fn derived(key: &str) -> Option<&'static Derived> {
    DERIVED.iter().find(|d| d.key == key)
}

/// A subject's anchor dates (MK403 p.19), kept sealed under the study's keys with the other
/// pseudonymised data and destroyed with them (p.26).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    pub start: Date,
    /// Not known while the subject is still supervised.
    pub end: Option<Date>,
}

/// The period a request asks about, and the day it is asked on: a registry answers as of that
/// day (nothing that has not happened yet) and within the period (MK403 p.3.3, p.12, p.19).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    /// First day of the period, inclusive.
    pub from: Date,
    /// Last day of the period, inclusive.
    pub to: Date,
    /// The day the request is made.
    pub as_of: Date,
}

/// The observation window of `wave` for a subject: from the previous wave of the same edge (or
/// the edge itself) up to the day before the wave falls due, so consecutive windows neither
/// overlap nor leave a gap. `None` when the edge is not known (an end not reached yet).
pub fn window(wave: &WaveRef, anchor: &Anchor) -> Option<(Date, Date)> {
    let edge = match wave.edge {
        AnchorEdge::Start => anchor.start,
        AnchorEdge::End => anchor.end?,
    };
    let years = |y: i16| edge.checked_add(jiff::Span::new().years(y)).ok();
    let from = years(wave.since_years)?;
    let to = years(wave.years)?.yesterday().ok()?;
    Some((from, to))
}

/// The edge of the anchor event a wave counts from, if known.
pub fn edge_of(wave: &WaveRef, anchor: &Anchor) -> Option<Date> {
    match wave.edge {
        AnchorEdge::Start => Some(anchor.start),
        AnchorEdge::End => anchor.end,
    }
}

/// The period a wave's request asks about, as of `as_of`: from the edge of the anchor event to
/// the end of the wave's window. It reaches back past the window so that an offence of an
/// earlier window the register opened only after the earlier wave was asked is not lost
/// ([`reported_by`] says which wave reports what).
pub fn request_period(wave: &WaveRef, anchor: &Anchor, as_of: Date) -> Option<Period> {
    let (_, to) = window(wave, anchor)?;
    Some(Period {
        from: edge_of(wave, anchor)?,
        to,
        as_of,
    })
}

/// Whether a register row belongs to this wave, and whether it is a late registration: an
/// offence inside the wave's window, or an offence of an earlier window of the same edge whose
/// proceeding was opened after the earlier wave was asked (on its due day) — the earlier
/// answer could not hold it, and no other wave reports it. `None`: another wave's, or before
/// the edge (criminal history, not recidivism).
pub fn reported_by(
    wave: &WaveRef,
    anchor: &Anchor,
    offence: Option<Date>,
    opened: Option<Date>,
) -> Option<bool> {
    let (from, to) = window(wave, anchor)?;
    let edge = edge_of(wave, anchor)?;
    let o = offence?;
    if from <= o && o <= to {
        return Some(false);
    }
    let late = wave.since_years > 0 && edge <= o && o < from && opened.is_some_and(|s| s > from);
    late.then_some(true)
}

/// The day the wave falls due (the request is made on it or later).
pub fn due(wave: &WaveRef, anchor: &Anchor) -> Option<Date> {
    let edge = match wave.edge {
        AnchorEdge::Start => anchor.start,
        AnchorEdge::End => anchor.end?,
    };
    edge.checked_add(jiff::Span::new().years(wave.years)).ok()
}

/// The date fields of a Punishment Register row in the order that says when the event
/// happened: the offence, else the opening of the proceeding, else the judgment (p.13).
const EVENT_DATES: [&str; 3] = ["offence_date", "proceeding_start_date", "judgment_date"];

fn date_of(v: Option<&Value>) -> Option<Date> {
    crate::table::parse_day(v?.as_str()?).and_then(crate::table::date)
}

/// When a row's event happened, if it says.
pub fn event_date(values: &Values) -> Option<Date> {
    EVENT_DATES.iter().find_map(|k| date_of(values.get(k)))
}

/// An answer that does not keep to its request's period.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeriodError {
    #[error(
        "row {row}: `{field}` falls outside the requested period {from} – {to}; the answer is refused whole (MK403 p.3.3, p.12)"
    )]
    Outside {
        row: usize,
        field: &'static str,
        from: Date,
        to: Date,
    },
    #[error(
        "row {row}: `{field}` is after the day of the request ({as_of}): a registry cannot know what has not happened yet; the answer is refused whole"
    )]
    Future {
        row: usize,
        field: String,
        as_of: Date,
    },
}

impl PeriodError {
    /// The row (from 1) that does not keep to the period.
    pub fn row(&self) -> usize {
        match self {
            PeriodError::Outside { row, .. } | PeriodError::Future { row, .. } => *row,
        }
    }
}

/// Checks that every row of an answer keeps to `period`: its event within the period, and no
/// date after the day of the request. Rows are counted from 1; no value is echoed.
pub fn check_period<'a>(
    rows: impl IntoIterator<Item = &'a Values>,
    period: &Period,
) -> Result<(), PeriodError> {
    for (i, values) in rows.into_iter().enumerate() {
        let row = i + 1;
        if let Some(field) = EVENT_DATES
            .iter()
            .find(|k| date_of(values.get(k)).is_some())
            && let Some(d) = date_of(values.get(field))
            && (d < period.from || d > period.to)
        {
            return Err(PeriodError::Outside {
                row,
                field,
                from: period.from,
                to: period.to,
            });
        }
        for (field, v) in values {
            if is_date_field(field)
                && let Some(d) = date_of(Some(v))
                && d > period.as_of
            {
                return Err(PeriodError::Future {
                    row,
                    field: field.to_owned(),
                    as_of: period.as_of,
                });
            }
        }
    }
    Ok(())
}

fn is_date_field(key: &str) -> bool {
    studyflow_spec::catalogue::sources_of(key)
        .any(|f| f.class == studyflow_spec::catalogue::FieldClass::Date)
}

/// One subject's anonymised answer to one wave, under its study ID (MK403 p.20). Days are
/// counted from the start of the subject's anchor event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaveAnswer {
    pub study_id: String,
    /// The spec's name of the wave (`1y_after_start`).
    pub wave: String,
    /// Its point of MK403 p.19.
    pub point: String,
    /// The day the wave fell due.
    pub due_day: i64,
    /// The observation window, first and last day.
    pub window_from_day: i64,
    pub window_to_day: i64,
    /// The day of the first new offence in the window, if any.
    pub first_offence_day: Option<i64>,
    /// The same four in calendar months from the anchor's month, for the `month` date policy:
    /// what the coarsened released dates already tell, nothing finer (MK403 p.7).
    #[serde(default)]
    pub due_month: i64,
    #[serde(default)]
    pub window_from_month: i64,
    #[serde(default)]
    pub window_to_month: i64,
    #[serde(default)]
    pub first_offence_month: Option<i64>,
    /// The events the register recorded in the window, anonymised by the spec's policy.
    pub events: Vec<Values>,
}

impl WaveAnswer {
    /// The wave answer of a subject from its window and its raw rows' event dates (the
    /// anonymised event values come separately, already anonymised).
    pub fn new(
        study_id: &str,
        wave: &WaveRef,
        anchor: &Anchor,
        raw_event_dates: impl IntoIterator<Item = Option<Date>>,
        events: Vec<Values>,
    ) -> Option<WaveAnswer> {
        let (from, to) = window(wave, anchor)?;
        let due = due(wave, anchor)?;
        let day = |d: Date| (d - anchor.start).get_days() as i64;
        let month = |d: Date| months(anchor.start, d);
        let first = raw_event_dates.into_iter().flatten().min();
        Some(WaveAnswer {
            study_id: study_id.to_owned(),
            wave: wave.name.to_owned(),
            point: wave.point.to_owned(),
            due_day: day(due),
            window_from_day: day(from),
            window_to_day: day(to),
            first_offence_day: first.map(day),
            due_month: month(due),
            window_from_month: month(from),
            window_to_month: month(to),
            first_offence_month: first.map(month),
            events,
        })
    }
}

/// A subject of a follow-up batch: what its request and the anonymisation of its answer need,
/// kept sealed under the run that asks for it (p.19, p.26).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Member {
    /// The released study ID the answer is kept under.
    pub study_id: String,
    pub anchor: Anchor,
    /// The personal code and the previous one the request names it by (p.12.1), if the study
    /// kept them.
    pub codes: Option<(String, Option<String>)>,
}

/// A batch's register answer anonymised on arrival (p.20), one wave answer per member: each
/// member's rows (by the code or the previous code it was asked by) that the wave reports —
/// its window and the late registrations of earlier windows — with identifiers dropped and
/// dates by the spec's policy counted from the start of the anchor event, under the study
/// ID. A row naming no member of the batch is no one's answer and goes. `None`: a member's
/// anchor date for the wave is not known.
pub fn anonymise_batch(
    wave: &WaveRef,
    policy: &crate::anonymise::Policy,
    members: &[Member],
    rows: Vec<crate::linkage::AnswerRow>,
) -> Option<Vec<WaveAnswer>> {
    let mut by_code: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (i, m) in members.iter().enumerate() {
        if let Some((code, previous)) = &m.codes {
            by_code.insert(code, i);
            if let Some(p) = previous {
                by_code.insert(p, i);
            }
        }
    }
    let mut rows_of: Vec<Vec<Values>> = vec![Vec::new(); members.len()];
    for r in rows {
        if let Some(&i) = by_code.get(r.personal_code.as_str()) {
            rows_of[i].push(r.values);
        }
    }
    members
        .iter()
        .zip(rows_of)
        .map(|(m, rows)| {
            let mine: Vec<(Values, bool)> = rows
                .into_iter()
                .filter_map(|r| {
                    let offence = event_date(&r);
                    let opened = date_of(r.get("proceeding_start_date"));
                    reported_by(wave, &m.anchor, offence, opened).map(|late| (r, late))
                })
                .collect();
            let dates: Vec<Option<Date>> = mine.iter().map(|(r, _)| event_date(r)).collect();
            let late: Vec<bool> = mine.iter().map(|(_, l)| *l).collect();
            let mut events = crate::anonymise::anonymise_rows(
                mine.into_iter().map(|(r, _)| r),
                policy,
                Some(m.anchor.start),
            );
            for (e, l) in events.iter_mut().zip(late) {
                e.insert("late_registration", Value::from(u8::from(l)));
            }
            WaveAnswer::new(&m.study_id, wave, &m.anchor, dates, events)
        })
        .collect()
}

/// Calendar months from `from`'s month to `to`'s month (negative before).
pub fn months(from: Date, to: Date) -> i64 {
    let index = |d: Date| i64::from(d.year()) * 12 + i64::from(d.month());
    index(to) - index(from)
}

/// Why a subject's observation ends where it does (right-censoring for a survival analysis).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Censoring {
    /// Every wave the spec asks for has arrived.
    FollowUpComplete,
    /// Waves are still due (an interim release).
    FollowUpInProgress,
    /// The end of supervision is not known, so the waves counted from it cannot run.
    EndNotKnown,
    /// Some waves would fall due after the study's follow-up cut-off (the deadline of the
    /// follow-up phases) and are not requested.
    CutOff,
    /// The subject's anchor date is not known: no wave can be counted from it.
    AnchorNotKnown,
}

impl Censoring {
    pub fn as_str(self) -> &'static str {
        match self {
            Censoring::FollowUpComplete => "follow_up_complete",
            Censoring::FollowUpInProgress => "follow_up_in_progress",
            Censoring::EndNotKnown => "end_not_known",
            Censoring::CutOff => "cut_off",
            Censoring::AnchorNotKnown => "anchor_not_known",
        }
    }
}

/// How many of the waves `(counted from the end?, years)` a subject will have, and why any will
/// not: the end of its anchor event is not known, or the wave falls due after the study's
/// follow-up `cut_off` (it is not requested; the subject is right-censored there).
pub fn expected_waves(
    waves: impl IntoIterator<Item = (bool, i16)>,
    anchor: &Anchor,
    cut_off: Option<Date>,
) -> (usize, Option<Censoring>) {
    let mut n = 0;
    let mut short = None;
    for (from_end, years) in waves {
        let edge = if from_end {
            anchor.end
        } else {
            Some(anchor.start)
        };
        match edge.and_then(|e| e.checked_add(jiff::Span::new().years(years)).ok()) {
            None => short = Some(Censoring::EndNotKnown),
            Some(due) if cut_off.is_some_and(|c| due > c) => {
                short = short.or(Some(Censoring::CutOff));
            }
            Some(_) => n += 1,
        }
    }
    (n, short)
}

/// The unit the follow-up tables count time from the anchor in: days, or — under the spec's
/// `month` date policy (MK403 p.7) — whole months, so that exact day counts do not undo the
/// coarsening of the released dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Days,
    Months,
}

impl Unit {
    /// The unit of a spec's date policy.
    pub fn of(policy: studyflow_spec::model::DatePolicy) -> Unit {
        match policy {
            studyflow_spec::model::DatePolicy::Month => Unit::Months,
            _ => Unit::Days,
        }
    }

    /// The count in this unit, of a point known in both.
    pub fn pick(self, days: i64, months: i64) -> i64 {
        match self {
            Unit::Days => days,
            Unit::Months => months,
        }
    }

    pub fn words(self) -> &'static str {
        match self {
            Unit::Days => "days from the start of the anchor event",
            Unit::Months => {
                "calendar months from the month of the start of the anchor event (0: the same month)"
            }
        }
    }
}

/// The follow-up tables of a release.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FollowUpTables {
    /// One row per subject and arrived wave: the wave, its due day, its window, its event count.
    pub waves: Vec<AnonRecord>,
    /// One row per event: the wave it arrived with and the register's fields.
    pub events: Vec<AnonRecord>,
    /// One row per released subject: how far it is observed without a gap from day 0, whether
    /// and when it reoffended within that, how many waves arrived, and why observation ends.
    pub observation: Vec<AnonRecord>,
}

impl FollowUpTables {
    /// Events per wave, for people (`1y_after_start → 212`).
    pub fn events_per_wave(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for r in &self.waves {
            let wave = r
                .values
                .get("wave")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let n = r.values.get("events").and_then(Value::as_u64).unwrap_or(0) as usize;
            *out.entry(wave).or_insert(0) += n;
        }
        out
    }
}

/// Builds the follow-up tables from the waves that have arrived. Only subjects in `released`
/// (the subjects table after the k-anonymity check) appear: a row under a study ID the
/// subjects' table does not show would single it out. `expected` gives, per study ID, how many
/// waves the subject will have and whether some cannot run (its end is not known).
pub fn tables(
    mut answers: Vec<WaveAnswer>,
    released: &BTreeSet<&str>,
    expected: &dyn Fn(&str) -> (usize, Option<Censoring>),
    unit: Unit,
) -> FollowUpTables {
    // The answers are consumed as the tables grow: a subject's events move into the events
    // table instead of being copied (a cohort of 80,000 has half a million subject-waves).
    answers.retain(|a| released.contains(a.study_id.as_str()));
    answers.sort_by(|a, b| {
        (a.study_id.as_str(), a.window_from_day, a.wave.as_str()).cmp(&(
            b.study_id.as_str(),
            b.window_from_day,
            b.wave.as_str(),
        ))
    });
    let mut out = FollowUpTables::default();
    let mut rest = answers.into_iter().peekable();
    while let Some(first) = rest.next() {
        let id = first.study_id.clone();
        let mut waves = vec![first];
        while let Some(w) = rest.next_if(|w| w.study_id == id) {
            waves.push(w);
        }
        let refs: Vec<&WaveAnswer> = waves.iter().collect();
        out.observation
            .push(observation(&id, &refs, expected(&id), unit));
        for w in waves {
            out.waves.push(AnonRecord {
                study_id: id.clone(),
                values: Values::from_iter([
                    ("wave", Value::from(w.wave.as_str())),
                    ("wave_point", Value::from(w.point.as_str())),
                    ("due", Value::from(unit.pick(w.due_day, w.due_month))),
                    (
                        "window_from",
                        Value::from(unit.pick(w.window_from_day, w.window_from_month)),
                    ),
                    (
                        "window_to",
                        Value::from(unit.pick(w.window_to_day, w.window_to_month)),
                    ),
                    ("events", Value::from(w.events.len())),
                ]),
            });
            for mut values in w.events {
                values.insert("wave", Value::from(w.wave.as_str()));
                out.events.push(AnonRecord {
                    study_id: id.clone(),
                    values,
                });
            }
        }
    }
    // Released subjects none of whose waves has arrived yet are observed from day 0 only.
    let observed: BTreeSet<String> = out.observation.iter().map(|r| r.study_id.clone()).collect();
    for id in released {
        if !observed.contains(*id) {
            out.observation
                .push(observation(id, &[], expected(id), unit));
        }
    }
    out.observation.sort_by(|a, b| a.study_id.cmp(&b.study_id));
    out
}

fn observation(
    id: &str,
    waves: &[&WaveAnswer],
    (expected, short): (usize, Option<Censoring>),
    unit: Unit,
) -> AnonRecord {
    // Observed without a gap from day 0: windows merged in order while they touch. Each
    // point is kept in days and in calendar months; the unit chooses which is released.
    let mut until: Option<(i64, i64)> = None;
    let mut windows: Vec<(i64, (i64, i64))> = waves
        .iter()
        .map(|w| (w.window_from_day, (w.window_to_day, w.window_to_month)))
        .collect();
    windows.sort();
    for (from, to) in windows {
        let reach = until.map_or(0, |u| u.0 + 1);
        if from > reach {
            break;
        }
        until = Some(until.map_or(to, |u| u.max(to)));
    }
    let first = waves
        .iter()
        .filter_map(|w| Some((w.first_offence_day?, w.first_offence_month.unwrap_or(0))))
        .filter(|d| d.0 >= 0 && until.is_some_and(|u| d.0 <= u.0))
        .min();
    let censoring = match short {
        _ if waves.len() < expected => Censoring::FollowUpInProgress,
        Some(why) => why,
        None => Censoring::FollowUpComplete,
    };

    AnonRecord {
        study_id: id.to_owned(),
        values: Values::from_iter([
            (
                "observed_until".to_owned(),
                until.map_or(Value::Null, |(d, m)| Value::from(unit.pick(d, m))),
            ),
            (
                "reoffended".to_owned(),
                Value::from(u8::from(first.is_some())),
            ),
            (
                "first_offence".to_owned(),
                first.map_or(Value::Null, |(d, m)| Value::from(unit.pick(d, m))),
            ),
            ("waves_arrived".to_owned(), Value::from(waves.len())),
            ("censoring".to_owned(), Value::from(censoring.as_str())),
        ]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn d(s: &str) -> Date {
        s.parse().unwrap()
    }

    fn wave(name: &'static str, edge: AnchorEdge, years: i16, since: i16) -> WaveRef {
        WaveRef {
            name,
            point: "p.19.1",
            edge,
            years,
            since_years: since,
        }
    }

    /// One request for a batch (p.19), one answer per member: each row goes to the member
    /// asked by its code or previous code (p.12.1) and only if its wave reports it; a row of
    /// no member goes; no code reaches the anonymised answer.
    #[test]
    fn a_batch_answer_is_split_by_member_and_kept_to_each_window() {
        let w1 = wave("1y_after_start", AnchorEdge::Start, 1, 0);
        let anchor = Anchor {
            start: d("2026-03-10"),
            end: None,
        };
        let members = vec![
            Member {
                study_id: "S-a".to_owned(),
                anchor,
                codes: Some(("010190-10001".to_owned(), None)),
            },
            Member {
                study_id: "S-b".to_owned(),
                anchor,
                codes: Some(("320000-00002".to_owned(), Some("020285-10002".to_owned()))),
            },
        ];
        let row = |code: &str, offence: &str| crate::linkage::AnswerRow {
            source: studyflow_spec::catalogue::Source::InformationCentre,
            personal_code: code.to_owned(),
            values: [
                ("personal_code".to_owned(), json!(code)),
                ("offence_date".to_owned(), json!(offence)),
                ("criminal_law_article".to_owned(), json!("180")),
            ]
            .into_iter()
            .collect(),
        };
        let rows = vec![
            row("010190-10001", "2026-05-01"),
            row("010190-10001", "2025-12-01"), // before the edge: history, not recidivism
            row("020285-10002", "2027-03-09"), // by the previous code, the window's last day
            row("999999-99999", "2026-06-01"), // asked about no one
        ];
        let policy = crate::anonymise::Policy {
            date_policy: studyflow_spec::model::DatePolicy::RelativeToAnchor,
            anchor_field: None,
            quasi_identifiers: Vec::new(),
            k: 1,
            suppression_allowed: false,
            bands: BTreeMap::new(),
        };
        let answers = anonymise_batch(&w1, &policy, &members, rows).unwrap();
        assert_eq!(answers.len(), 2);
        assert_eq!(answers[0].study_id, "S-a");
        assert_eq!(answers[0].events.len(), 1);
        assert_eq!(answers[0].first_offence_day, Some(52));
        assert_eq!(answers[1].study_id, "S-b");
        assert_eq!(answers[1].events.len(), 1);
        assert_eq!(answers[1].first_offence_day, Some(364));
        let text = serde_json::to_string(&answers).unwrap();
        for code in ["010190-10001", "020285-10002", "999999-99999"] {
            assert!(!text.contains(code), "{text}");
        }
    }

    #[test]
    fn windows_follow_each_other_without_gap_or_overlap() {
        let a = Anchor {
            start: d("2026-03-10"),
            end: Some(d("2027-01-20")),
        };
        let w1 = wave("1y_after_start", AnchorEdge::Start, 1, 0);
        let w3 = wave("3y_after_start", AnchorEdge::Start, 3, 1);
        assert_eq!(window(&w1, &a), Some((d("2026-03-10"), d("2027-03-09"))));
        assert_eq!(window(&w3, &a), Some((d("2027-03-10"), d("2029-03-09"))));
        let e1 = wave("1y_after_end", AnchorEdge::End, 1, 0);
        assert_eq!(window(&e1, &a), Some((d("2027-01-20"), d("2028-01-19"))));
        assert_eq!(due(&e1, &a), Some(d("2028-01-20")));
        let open = Anchor { end: None, ..a };
        assert_eq!(window(&e1, &open), None);
    }

    #[test]
    fn waves_after_the_cut_off_or_from_an_unknown_end_are_not_expected() {
        let a = Anchor {
            start: d("2026-03-10"),
            end: Some(d("2028-05-01")),
        };
        let all = [
            (false, 1),
            (false, 3),
            (false, 5),
            (true, 1),
            (true, 3),
            (true, 5),
        ];
        assert_eq!(expected_waves(all, &a, None), (6, None));
        // 5 years after the end is 2033-05-01: after a cut-off on 2033-04-30.
        assert_eq!(
            expected_waves(all, &a, Some(d("2033-04-30"))),
            (5, Some(Censoring::CutOff))
        );
        assert_eq!(expected_waves(all, &a, Some(d("2033-05-01"))), (6, None));
        let open = Anchor { end: None, ..a };
        assert_eq!(
            expected_waves(all, &open, Some(d("2033-04-30"))),
            (3, Some(Censoring::EndNotKnown))
        );
    }

    #[test]
    fn a_late_registration_is_reported_once_by_the_next_wave() {
        let a = Anchor {
            start: d("2026-03-10"),
            end: None,
        };
        let w1 = wave("1y_after_start", AnchorEdge::Start, 1, 0);
        let w3 = wave("3y_after_start", AnchorEdge::Start, 3, 1);
        // In the first window, opened before the first wave was asked: the first wave's.
        let o = Some(d("2026-12-01"));
        assert_eq!(reported_by(&w1, &a, o, Some(d("2027-01-15"))), Some(false));
        assert_eq!(reported_by(&w3, &a, o, Some(d("2027-01-15"))), None);
        // In the first window, opened after the first wave was asked (2027-03-10): the third
        // year's wave reports it, marked late.
        assert_eq!(reported_by(&w3, &a, o, Some(d("2027-04-20"))), Some(true));
        // Before the start: criminal history, no wave's.
        assert_eq!(
            reported_by(&w3, &a, Some(d("2026-01-01")), Some(d("2027-04-20"))),
            None
        );
        assert_eq!(
            request_period(&w3, &a, d("2029-03-10")).map(|p| (p.from, p.to)),
            Some((d("2026-03-10"), d("2029-03-09")))
        );
    }

    #[test]
    fn a_row_outside_the_period_or_from_the_future_is_refused() {
        let p = Period {
            from: d("2026-03-10"),
            to: d("2027-03-09"),
            as_of: d("2027-03-10"),
        };
        let row = |v: serde_json::Value| -> Values { serde_json::from_value(v).unwrap() };
        let inside = row(json!({"offence_date": "2026-05-01", "judgment_date": "2027-02-01"}));
        assert_eq!(check_period([&inside], &p), Ok(()));
        let before = row(json!({"offence_date": "2026-03-09"}));
        let err = check_period([&inside, &before], &p).unwrap_err();
        assert!(matches!(
            err,
            PeriodError::Outside {
                row: 2,
                field: "offence_date",
                ..
            }
        ));
        assert!(
            !err.to_string().contains("2026-03-09"),
            "no value echoed: {err}"
        );
        let future = row(json!({"offence_date": "2026-05-01", "judgment_date": "2027-04-01"}));
        assert!(matches!(
            check_period([&future], &p),
            Err(PeriodError::Future { row: 1, .. })
        ));
        // The boundaries belong to the period.
        let first = row(json!({"offence_date": "2026-03-10"}));
        let last = row(json!({"proceeding_start_date": "2027-03-09"}));
        assert_eq!(check_period([&first, &last], &p), Ok(()));
    }

    fn answer(
        id: &str,
        name: &str,
        from: i64,
        to: i64,
        first: Option<i64>,
        n: usize,
    ) -> WaveAnswer {
        WaveAnswer {
            study_id: id.into(),
            wave: name.into(),
            point: "p.19".into(),
            due_day: to + 1,
            window_from_day: from,
            window_to_day: to,
            first_offence_day: first,
            due_month: (to + 1) / 30,
            window_from_month: from / 30,
            window_to_month: to / 30,
            first_offence_month: first.map(|f| f / 30),
            events: (0..n)
                .map(|i| Values::from_iter([("offence_date", Value::from(i as i64))]))
                .collect(),
        }
    }

    #[test]
    fn the_tables_censor_at_the_first_gap_and_leave_out_suppressed_subjects() {
        let answers = vec![
            answer("A", "1y_after_start", 0, 364, Some(200), 2),
            // After the end: a gap from day 365 to 499, so observation stops at 364.
            answer("A", "1y_after_end", 500, 864, Some(600), 1),
            answer("B", "1y_after_start", 0, 364, None, 0),
            answer("B", "3y_after_start", 365, 1095, Some(900), 1),
            answer("S", "1y_after_start", 0, 364, Some(10), 1),
        ];
        let released: BTreeSet<&str> = ["A", "B", "C"].into();
        let t = tables(
            answers.clone(),
            &released,
            &|id| match id {
                "B" => (2, Some(Censoring::CutOff)),
                _ => (6, None),
            },
            Unit::Days,
        );
        assert!(
            t.waves.iter().all(|r| r.study_id != "S"),
            "suppressed subject left out"
        );
        assert!(t.events.iter().all(|r| r.study_id != "S"));
        assert_eq!(t.events.len(), 4);
        let obs = |id: &str| {
            t.observation
                .iter()
                .find(|r| r.study_id == id)
                .unwrap()
                .values
                .clone()
        };
        assert_eq!(obs("A")["observed_until"], json!(364));
        assert_eq!(obs("A")["first_offence"], json!(200));
        assert_eq!(obs("A")["censoring"], json!("follow_up_in_progress"));
        assert_eq!(obs("B")["observed_until"], json!(1095));
        assert_eq!(obs("B")["reoffended"], json!(1));
        assert_eq!(obs("B")["censoring"], json!("cut_off"));
        // C: released, nothing arrived yet.
        assert_eq!(obs("C")["observed_until"], Value::Null);
        assert_eq!(obs("C")["reoffended"], json!(0));
        assert_eq!(t.observation.len(), 3);
        assert_eq!(t.events_per_wave()["1y_after_start"], 2);
        // Under the month date policy the counts are whole months, not days.
        let m = tables(answers, &released, &|_| (6, None), Unit::Months);
        let a = m.observation.iter().find(|r| r.study_id == "A").unwrap();
        assert_eq!(
            a.values["observed_until"],
            json!(12),
            "the window's last month"
        );
        assert_eq!(a.values["first_offence"], json!(6), "the offence's month");
        // Calendar months of the dates, as the coarsened released dates tell them.
        assert_eq!(months(d("2027-01-31"), d("2027-03-01")), 2);
        assert_eq!(months(d("2027-01-31"), d("2027-01-01")), 0);
        assert_eq!(months(d("2027-01-01"), d("2026-12-31")), -1);
    }
}
