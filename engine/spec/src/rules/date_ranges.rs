//! SF104: every period runs forwards (MK403 p.3.2, p.3.3).

use super::{Check, Findings, Rule};
use crate::diagnostic::Severity;
use crate::model::{Period, Spec};

pub static RULE: Rule = Rule {
    code: "SF104",
    name: "date-ranges",
    severity: Severity::Error,
    points: &["p.3.2", "p.3.3"],
    summary: "Every period's `from` is on or before its `to`.",
    summary_lv: "Katra perioda `from` nav vēlāks par tā `to`.",
    explanation: "The sample period (p.3.2) and the period each source's volume covers (p.3.3) \
must run forwards.",
    check: Check::Spec(check),
};

fn check(spec: &Spec, f: &mut Findings) {
    let mut periods: Vec<(String, Period)> = Vec::new();
    if let Some(p) = spec
        .methodology
        .as_ref()
        .and_then(|m| m.sample.as_ref())
        .and_then(|s| s.period)
    {
        periods.push(("/methodology/sample/period".into(), p));
    }
    if let Some(scope) = &spec.data_scope {
        if let Some(s) = &scope.service_is {
            periods.push((
                "/data_scope/service_is/volume/period".into(),
                s.volume.period,
            ));
        }
        if let Some(s) = &scope.information_centre {
            periods.push((
                "/data_scope/information_centre/volume/period".into(),
                s.volume.period,
            ));
        }
        if let Some(pa) = &scope.prison_administration {
            if let Some(r) = &pa.rulings {
                periods.push((
                    "/data_scope/prison_administration/rulings/volume/period".into(),
                    r.volume.period,
                ));
            }
            if let Some(r) = &pa.resocialisation {
                periods.push((
                    "/data_scope/prison_administration/resocialisation/volume/period".into(),
                    r.volume.period,
                ));
            }
        }
    }
    for (pointer, p) in periods {
        if p.from > p.to {
            f.report(
                &format!("{pointer}/to"),
                format!("the period ends ({}) before it starts ({})", p.to, p.from),
            )
            .lv(format!(
                "periods beidzas ({}) pirms tā sākuma ({})",
                p.to, p.from
            ));
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
    fn backwards_period_is_reported() {
        assert!(run_rule(&RULE, &base()).is_empty());
        let spec = spec_with(|v| v["methodology"]["sample"]["period"]["to"] = json!("2025-01-01"));
        let d = run_rule(&RULE, &spec);
        assert_eq!(d[0].pointer, "/methodology/sample/period/to");
    }
}
