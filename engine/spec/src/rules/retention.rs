//! SF170: retention of anonymised and identifying data (MK403 p.26, p.27, p.34, p.35).

use super::{Check, Findings, Rule};
use crate::diagnostic::{Severity, points_lv};
use crate::model::{Keep, RetentionTerm, Spec};

pub static RULE: Rule = Rule {
    code: "SF170",
    name: "retention",
    severity: Severity::Error,
    points: &["p.26", "p.27", "p.34", "p.35"],
    summary: "Anonymised data is kept permanently or for a set period; nothing identifying outlives the study; an external copy ends with the study or the contract.",
    summary_lv: "Anonimizētu informāciju glabā pastāvīgi vai noteiktu termiņu; nekas identificējošs nepaliek pēc pētījuma beigām; pētījuma izstrādātājs savu kopiju glabā ne ilgāk kā līdz pētījuma beigām vai līgumā noteiktajam termiņam.",
    explanation: "Anonymised information is kept permanently or for a period the Service sets \
(p.27): `retention.anonymised_data` is `permanent`, `until_study_end`, or `until_date` with `until`. Personal data \
and identifying information are kept no later than the study's completion or termination \
(p.26, p.34): `identifying_data_deleted_by`, when given, must not be after the last phase \
deadline. An external researcher keeps anonymised information and what they created until the \
end of the study or the term in the contract (p.35): a study with an `external` section needs \
`external_researcher_copy`, never `permanent`, and a date not after the contract's \
`term_ends_on`. `until` without `keep: until_date` is a warning (it is ignored).",
    check: Check::Spec(check),
};

fn term(f: &mut Findings, pointer: &str, t: &RetentionTerm, point: &'static str) {
    if t.keep == Keep::UntilDate && t.until.is_none() {
        f.report(
            &format!("{pointer}/until"),
            format!("`keep: until_date` needs the date in `until` (MK403 {point})"),
        )
        .lv(format!(
            "`keep: until_date` prasa datumu laukā `until` (MK403 {})",
            points_lv(&[point])
        ))
        .points(&[point]);
    }
    if t.keep != Keep::UntilDate && t.until.is_some() {
        f.warn(
            &format!("{pointer}/until"),
            "`until` is ignored unless `keep` is `until_date`",
        )
        .lv("`until` netiek ņemts vērā, ja `keep` nav `until_date`")
        .points(&[point]);
    }
}

fn check(spec: &Spec, f: &mut Findings) {
    let Some(r) = &spec.retention else { return };
    let end = spec.study_end();
    match &r.anonymised_data {
        None => {
            f.report("/retention/anonymised_data", "state how long the anonymised data is kept: permanently, until the study ends, or until a date (MK403 p.27)")
                .lv("norādiet, cik ilgi glabā anonimizēto informāciju: pastāvīgi, līdz pētījuma beigām vai līdz noteiktam datumam (MK403 27. p.)")
                .points(&["p.27"]);
        }
        Some(t) => {
            term(f, "/retention/anonymised_data", t, "p.27");
            if let (Keep::UntilDate, Some(until), Some(end)) = (t.keep, t.until, end)
                && until < end
            {
                f.warn(
                    "/retention/anonymised_data/until",
                    format!(
                        "anonymised data would be deleted ({until}) before the study ends ({end})"
                    ),
                )
                .lv(format!(
                    "anonimizētā informācija tiktu dzēsta ({until}) pirms pētījuma beigām ({end})"
                ))
                .points(&["p.27"]);
            }
        }
    }
    if let (Some(by), Some(end)) = (r.identifying_data_deleted_by, end)
        && by > end
    {
        f.report("/retention/identifying_data_deleted_by", format!("identifying data may be kept no later than the study's completion ({end}, the last phase deadline), not until {by} (MK403 p.26, p.34)"))
            .lv(format!("identificējošos datus drīkst glabāt ne ilgāk kā līdz pētījuma pabeigšanai ({end}, pēdējā posma izpildes termiņš), nevis līdz {by} (MK403 26., 34. p.)"))
            .points(&["p.26", "p.34"]);
    }
    if spec.external.is_none() {
        if r.external_researcher_copy.is_some() {
            f.warn(
                "/retention/external_researcher_copy",
                "a Service study has no external researcher's copy",
            )
            .lv("dienesta pētījumā nav pētījuma izstrādātāja kopijas")
            .points(&["p.35"]);
        }
        return;
    }
    match &r.external_researcher_copy {
        None => {
            f.report("/retention/external_researcher_copy", "state how long the external researcher keeps the anonymised data: until the study ends or the contract's term (MK403 p.35)")
                .lv("norādiet, cik ilgi pētījuma izstrādātājs glabā anonimizēto informāciju: līdz pētījuma īstenošanas beigām vai līdz līgumā noteiktajam termiņam (MK403 35. p.)")
                .points(&["p.35"]);
        }
        Some(t) => {
            term(f, "/retention/external_researcher_copy", t, "p.35");
            if t.keep == Keep::Permanent {
                f.report("/retention/external_researcher_copy/keep", "an external researcher keeps the data only until the study ends or the contract's term, never permanently (MK403 p.35)")
                    .lv("pētījuma izstrādātājs informāciju glabā tikai līdz pētījuma īstenošanas beigām vai līdz līgumā noteiktajam termiņam, nekad pastāvīgi (MK403 35. p.)")
                    .points(&["p.35"]);
            }
            let term_end = spec
                .external
                .as_ref()
                .and_then(|e| e.contract.as_ref())
                .and_then(|c| c.term_ends_on);
            if let (Keep::UntilDate, Some(until), Some(term_end)) = (t.keep, t.until, term_end)
                && until > term_end
            {
                f.report("/retention/external_researcher_copy/until", format!("the external copy is kept ({until}) past the contract's term ({term_end}) (MK403 p.35)"))
                    .lv(format!("pētījuma izstrādātāja kopiju glabā ({until}) ilgāk par līgumā noteikto termiņu ({term_end}) (MK403 35. p.)"))
                    .points(&["p.35"]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::run_rule;
    use crate::rules::test_support::{base, spec_with};
    use serde_json::json;

    #[test]
    fn retention_terms() {
        assert!(run_rule(&RULE, &base()).is_empty());
        let spec = spec_with(|v| {
            v["retention"] = json!({"anonymised_data": {"keep": "until_date"}, "identifying_data_deleted_by": "2030-01-01"});
        });
        let d = run_rule(&RULE, &spec);
        let pointers: Vec<&str> = d.iter().map(|d| d.pointer.as_str()).collect();
        assert_eq!(
            pointers,
            [
                "/retention/anonymised_data/until",
                "/retention/identifying_data_deleted_by"
            ]
        );
    }

    #[test]
    fn external_copy() {
        let spec = spec_with(|v| {
            v["initiator"]["kind"] = json!("external_legal_person");
            v["external"] =
                json!({"contract": {"status": "planned", "term_ends_on": "2028-01-01"}});
            v["retention"]["external_researcher_copy"] =
                json!({"keep": "until_date", "until": "2029-01-01"});
        });
        let d = run_rule(&RULE, &spec);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].pointer, "/retention/external_researcher_copy/until");
        let permanent = spec_with(|v| {
            v["initiator"]["kind"] = json!("external_legal_person");
            v["external"] = json!({});
            v["retention"]["external_researcher_copy"] = json!({"keep": "permanent"});
        });
        assert_eq!(
            run_rule(&RULE, &permanent)[0].pointer,
            "/retention/external_researcher_copy/keep"
        );
    }
}
