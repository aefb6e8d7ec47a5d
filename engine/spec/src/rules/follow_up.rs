//! SF150: recidivism follow-ups as MK403 p.19–20 define them.

use std::collections::HashSet;

use super::{Check, Findings, Rule};
use crate::catalogue::{self, Source};
use crate::diagnostic::{Lang, Severity, points_lv, shown, shown_in};
use crate::model::{Exchange, FollowUpWave, Spec, StudyDesign, WAVES};

pub static RULE: Rule = Rule {
    code: "SF150",
    name: "follow-up",
    severity: Severity::Error,
    points: &["p.19", "p.20"],
    summary: "Follow-ups use only the six waves of p.19, only Punishment Register fields, automated exchange, in a longitudinal study that lasts until they fall due.",
    summary_lv: "Recidīva pārbaudēm izmanto tikai sešus 19. p. termiņus, tikai Sodu reģistra laukus un automatizētu apmaiņu, garengriezuma pētījumā, kas ilgst, līdz tie pienāk.",
    explanation: "For recidivism studies the Service requests the p.13 information 1, 3 and 5 years \
after the start and after the end of a compulsory educational measure, sentence execution in the \
Service, or a mediation (p.19.1–19.6): six waves per subject. Waves must be among \
`1y_after_start` (19.1), `1y_after_end` (19.2), `3y_after_start` (19.3), `3y_after_end` (19.4), \
`5y_after_start` (19.5), `5y_after_end` (19.6), each at most once, and at least one. Fields must \
be Information Centre (p.13) fields; a field of another source is reported with its source. The \
exchange is automated (p.20). Only a study that follows subjects over time \
(`methodology.design: longitudinal`) requests follow-ups, and the Service IS must supply the \
anchor event's start date (for `…after_start` waves) and end date (for `…after_end` waves), or \
the waves cannot be scheduled. A wave that falls due, even for the sample's earliest subjects \
(the sample period's first day plus the wave's years), after the last phase deadline cannot be \
collected within the study, whose identifying data is deleted at its end (p.26), nor after \
`retention.identifying_data_deleted_by`, since the request identifies subjects by personal code \
(p.12.1): an error; a wave that falls due after either for the latest subjects (the period's \
last day plus the years) is a warning. A follow-up in a study whose purpose needs identifying data is a warning: \
the Punishment Register's answers are anonymised before anything else all the same (p.20).",
    check: Check::Spec(check),
};

fn check(spec: &Spec, f: &mut Findings) {
    let Some(fu) = &spec.follow_up else { return };
    let design = spec.methodology.as_ref().map(|m| m.design);
    if design != Some(StudyDesign::Longitudinal) {
        f.report("/follow_up", "recidivism follow-ups are only for a study that follows subjects over time (MK403 p.3.2, p.19)")
            .lv("recidīva pārbaudes pieprasa tikai pētījumā, kurā datu subjektus novēro laika gaitā (MK403 3.2., 19. p.)")
            .points(&["p.19", "p.3.2"])
            .help("set `methodology.design: longitudinal`, or remove `follow_up`");
    }
    if fu.waves.is_empty() {
        f.report(
            "/follow_up/waves",
            "request at least one of the six follow-ups (MK403 p.19)",
        )
        .lv("pieprasiet vismaz vienu no sešām recidīva pārbaudēm (MK403 19. p.)")
        .points(&["p.19"]);
    }
    let mut seen = HashSet::new();
    let mut known_waves = Vec::new();
    for (i, w) in fu.waves.iter().enumerate() {
        let pointer = format!("/follow_up/waves/{i}");
        match WAVES.iter().find(|wave| wave.name == w.0) {
            None => {
                let names: Vec<&str> = WAVES.iter().map(|wave| wave.name).collect();
                let d = f
                    .report(&pointer, format!("{} is not one of the six follow-ups of MK403 p.19 (1, 3 and 5 years after the start and after the end)", shown(&w.0)))
                    .lv(format!("{} nav neviena no sešām MK403 19. p. noteiktajām recidīva pārbaudēm (vienu, trīs un piecus gadus pēc uzsākšanas un pēc pabeigšanas)", shown_in(&w.0, Lang::Lv)))
                    .points(&["p.19"]);
                // A wave the spec lists already is not what it meant.
                let unlisted = names
                    .iter()
                    .copied()
                    .filter(|n| !fu.waves.iter().any(|listed| listed.0 == *n));
                match crate::suggest::closest(&w.0, unlisted) {
                    Some(s) => d
                        .help(format!("did you mean `{s}`?"))
                        .fix(crate::diagnostic::Fix::Replace(s.to_owned())),
                    None => d.help(format!(
                        "use one of {}",
                        names
                            .iter()
                            .map(|k| format!("`{k}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                };
            }
            Some(wave) if !seen.insert(wave.name) => {
                f.report(&pointer, format!("wave `{}` is requested twice", wave.name))
                    .lv(format!(
                        "recidīva pārbaude `{}` pieprasīta divreiz",
                        wave.name
                    ))
                    .points(&[wave.point]);
            }
            Some(wave) => known_waves.push((i, wave)),
        }
    }
    for (i, field) in fu.fields.iter().enumerate() {
        if catalogue::lookup(Source::InformationCentre, &field.0).is_some() {
            continue;
        }
        let pointer = format!("/follow_up/fields/{i}");
        let elsewhere: Vec<String> = catalogue::sources_of(&field.0)
            .map(|e| e.source.title().to_owned())
            .collect();
        let elsewhere_lv: Vec<&str> = catalogue::sources_of(&field.0)
            .map(|e| e.source.title_lv())
            .collect();
        let (msg, msg_lv) = if elsewhere.is_empty() {
            (
                format!(
                    "{} is not a Punishment Register field; follow-ups request only the p.13 information (MK403 p.19)",
                    shown(&field.0)
                ),
                format!(
                    "{} nav Sodu reģistra lauks; recidīva pārbaudēs pieprasa tikai 13. p. minēto informāciju (MK403 19. p.)",
                    shown_in(&field.0, Lang::Lv)
                ),
            )
        } else {
            (
                format!(
                    "`{}` comes from {}, but follow-ups request only the Punishment Register's p.13 information (MK403 p.19)",
                    field.0,
                    elsewhere.join(" and ")
                ),
                format!(
                    "lauku `{}` sniedz {}, bet recidīva pārbaudēs pieprasa tikai 13. p. minēto Sodu reģistra informāciju (MK403 19. p.)",
                    field.0,
                    elsewhere_lv.join(" un ")
                ),
            )
        };
        // The points the message names (the sources' own among them), and no other; read
        // from the catalogue's titles and the fixed text, never from the spec's own words
        // (a field named `p.99` cites nothing).
        let points = crate::diagnostic::points_in(&format!("{} p.13 p.19", elsewhere.join(" ")));
        let points: Vec<&str> = points.iter().map(String::as_str).collect();
        f.report(&pointer, msg).lv(msg_lv).points(&points);
    }
    if fu.exchange != Exchange::Automated {
        f.report(
            "/follow_up/exchange",
            "follow-up exchange with the Information Centre is automated (MK403 p.20)",
        )
        .lv("recidīva pārbaužu informācijas apmaiņu ar Informācijas centru veic automatizēti (MK403 20. p.)")
        .points(&["p.20"]);
    }
    let [start, end] = fu.anchor_event.date_fields();
    let is_fields = spec
        .data_scope
        .as_ref()
        .and_then(|d| d.service_is.as_ref())
        .map(|s| &s.fields.0);
    let has = |k: &str| is_fields.is_some_and(|m| m.contains_key(k));
    for (from_end, key) in [(false, start), (true, end)] {
        if known_waves.iter().any(|(_, w)| w.from_end == from_end) && !has(key) {
            let (which, which_lv) = if from_end {
                ("end", "beigām")
            } else {
                ("start", "sākuma")
            };
            f.report(
                "/follow_up/anchor_event",
                format!(
                    "waves counted from the anchor event's {which} need `{key}` from the Service IS"
                ),
            )
            .lv(format!(
                "recidīva pārbaudēm, kuru termiņu skaita no atskaites notikuma {which_lv}, vajadzīgs `{key}` no dienesta informācijas sistēmas"
            ))
            .points(&["p.19"])
            .help(format!(
                "request `{key}` under `data_scope.service_is.fields`"
            ));
        }
    }
    timing(spec, &known_waves, f);
    if spec
        .anonymisation
        .as_ref()
        .is_some_and(|a| a.purpose_reachable_with_anonymised_data == Some(false))
    {
        f.warn("/follow_up", "the follow-up answers are anonymised before any further processing, whatever the study's purpose needs (MK403 p.20)")
            .lv("recidīva pārbaužu atbildes anonimizē pirms turpmākas apstrādes neatkarīgi no tā, kas vajadzīgs pētījuma mērķim (MK403 20. p.)")
            .points(&["p.20"]);
    }
}

/// Whether each wave can fall due before the study ends and before the identifying data that
/// its request needs is deleted (MK403 p.19, p.12.1, p.26).
fn timing(spec: &Spec, waves: &[(usize, &FollowUpWave)], f: &mut Findings) {
    let Some(period) = spec
        .methodology
        .as_ref()
        .and_then(|m| m.sample.as_ref())
        .and_then(|s| s.period)
    else {
        return;
    };
    let deleted_by = spec
        .retention
        .as_ref()
        .and_then(|r| r.identifying_data_deleted_by);
    for (i, wave) in waves {
        let FollowUpWave {
            name, point, years, ..
        } = **wave;
        let add = |d: jiff::civil::Date| d.checked_add(jiff::Span::new().years(years)).ok();
        // A date past the calendar's end (year 9999) is after any study's end.
        let earliest = add(period.from.0).unwrap_or(jiff::civil::Date::MAX);
        let latest = add(period.to.0).unwrap_or(jiff::civil::Date::MAX);
        let pointer = format!("/follow_up/waves/{i}");
        // (the limit, what happens then and what sets it, in English and in Latvian, its point)
        let limits = [
            (
                spec.study_end(),
                ("the study ends", "pētījums beidzas"),
                ("the last phase deadline", "pēdējā posma izpildes termiņš"),
                "p.26",
            ),
            (
                deleted_by,
                ("identifying data is deleted", "identificējošos datus dzēš"),
                (
                    "`retention.identifying_data_deleted_by`; the request identifies subjects by personal code",
                    "`retention.identifying_data_deleted_by`; pieprasījumā datu subjektus identificē pēc personas koda",
                ),
                "p.12.1",
            ),
        ];
        for (limit, (what, what_lv), (source, source_lv), other) in limits {
            let Some(limit) = limit else { continue };
            if earliest > limit.0 {
                f.report(&pointer, format!("wave `{name}` falls due on {earliest} at the earliest, after {what} ({limit}, {source}); it cannot be collected (MK403 {point}, {other})"))
                    .lv(format!("recidīva pārbaudes `{name}` termiņš pienāk ne agrāk kā {earliest}, pēc tam, kad {what_lv} ({limit}, {source_lv}); to nevar veikt (MK403 {})", points_lv(&[point, other])))
                    .points(&[point, other])
                    .help("extend the study to cover the follow-ups, or drop the wave");
                break;
            } else if latest > limit.0 {
                f.warn(&pointer, format!("wave `{name}` falls due as late as {latest} for the sample's latest subjects, after {what} ({limit}); their follow-up would be lost (MK403 {point}, {other})"))
                    .lv(format!("izlases vēlākajiem datu subjektiem recidīva pārbaudes `{name}` termiņš pienāk tikai {latest}, pēc tam, kad {what_lv} ({limit}); viņu recidīva pārbaude netiktu veikta (MK403 {})", points_lv(&[point, other])))
                    .points(&[point, other]);
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::run_rule;
    use crate::rules::test_support::spec_with;
    use serde_json::json;

    fn with_follow_up(fu: serde_json::Value) -> Spec {
        spec_with(|v| v["follow_up"] = fu)
    }

    #[test]
    fn waves_must_fall_due_within_the_study() {
        // Sample 2026; study ends 2027-09-30: a 1-year wave can be due in 2027, a 3-year one cannot.
        let spec = with_follow_up(
            json!({"anchor_event": "sentence_execution", "waves": ["1y_after_start", "3y_after_end"], "fields": ["offence_date"]}),
        );
        let d = run_rule(&RULE, &spec);
        let got: Vec<(&str, &str)> = d
            .iter()
            .map(|d| (d.pointer.as_str(), d.severity.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("/follow_up/waves/0", "warning"),
                ("/follow_up/waves/1", "error")
            ]
        );
        assert_eq!(d[1].regulation, ["p.19.4", "p.26"]);
        assert!(d[1].message.contains("2029-01-01"), "{}", d[1].message);
    }

    #[test]
    fn waves_need_the_identifying_link_until_they_fall_due() {
        let spec = spec_with(|v| {
            v["follow_up"] = json!({"anchor_event": "sentence_execution", "waves": ["3y_after_start"], "fields": ["offence_date"]});
            v["phases"][1]["deadline"] = json!("2032-06-30");
            v["publication"]["planned_date"] = json!("2032-12-01");
            v["retention"]["identifying_data_deleted_by"] = json!("2028-06-30");
        });
        let d = run_rule(&RULE, &spec);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].regulation, ["p.19.3", "p.12.1"]);
        assert!(d[0].message.contains("identifying data is deleted"));
    }

    #[test]
    fn valid_follow_up_passes() {
        let spec = spec_with(|v| {
            v["follow_up"] = json!({"anchor_event": "sentence_execution", "waves": ["1y_after_start", "5y_after_end"], "fields": ["offence_date"]});
            v["phases"][1]["deadline"] = json!("2032-06-30");
            v["publication"]["planned_date"] = json!("2032-12-01");
        });
        let d = run_rule(&RULE, &spec);
        assert!(d.is_empty(), "{d:?}");
    }

    #[test]
    fn waves_fields_exchange_and_anchor() {
        let spec = with_follow_up(json!({
            "anchor_event": "mediation",
            "waves": ["2y_after_start", "1y_after_end", "1y_after_end"],
            "fields": ["release_regime", "offence_date"],
            "exchange": "secure_electronic"
        }));
        let d = run_rule(&RULE, &spec);
        let pointers: Vec<&str> = d.iter().map(|d| d.pointer.as_str()).collect();
        assert_eq!(
            pointers,
            [
                "/follow_up/waves/0",
                "/follow_up/waves/2",
                "/follow_up/fields/0",
                "/follow_up/exchange",
                "/follow_up/anchor_event",
                "/follow_up/waves/1"
            ]
        );
        assert_eq!(d[0].help.as_deref(), Some("did you mean `1y_after_start`?"));
        assert!(d[2].message.contains("Prison Administration rulings"));
    }

    #[test]
    fn only_longitudinal_studies_follow_up() {
        let spec = spec_with(|v| {
            v["methodology"]["design"] = json!("cross_sectional");
            v["follow_up"] = json!({"anchor_event": "sentence_execution", "waves": ["1y_after_start"], "fields": ["offence_date"]});
        });
        assert_eq!(run_rule(&RULE, &spec)[0].pointer, "/follow_up");
    }
}
