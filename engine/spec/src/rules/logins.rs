//! SF142: every person who acts on the study is bound to one login, and every login to one
//! person (MK403 p.25.1, p.33.1).

use std::collections::HashMap;

use super::{Check, Findings, Rule};
use crate::diagnostic::{Lang, Severity, shown, shown_in};
use crate::model::{Spec, person_key};

pub static RULE: Rule = Rule {
    code: "SF142",
    name: "person-logins",
    severity: Severity::Error,
    points: &["p.25.1", "p.33.1"],
    summary: "Every person who acts on the study has a login, one per person; no login is shared by two persons, or by the Service and the external team.",
    summary_lv: "Katrai personai, kas darbojas pētījumā, ir viens savs lietotājvārds; neviens lietotājvārds nav kopīgs divām personām vai dienestam un pētījuma izstrādātāja komandai.",
    explanation: "Only the authorised persons receive the study's information (p.25.1), those of \
an external researcher designated and agreed with the Service (p.33.1). studyflow lets a person \
act — submit, approve, start, complete a task, download a release — only when signed in as the \
login the spec binds to them, so every authorised person of the Service, and every member of the \
external team who is an authorised person or processes personal data, has a `login`. A login \
names one person: two persons with one login is an error (either could act as the other), and \
so is one person (however the name is written) with two logins. A login is either the \
Service's or the external researcher's: the same login among the Service's authorised persons \
and in the external team is an error (a member of the team would act in a role of the \
Service). A change of binding changes the spec, so it is an amendment, approved like any other.",
    check: Check::Spec(check),
};

/// Every person of the spec who may act: (pointer, name, login, whether a login is needed).
fn persons(spec: &Spec) -> Vec<(String, &str, Option<&str>, bool)> {
    let mut out: Vec<_> = spec
        .authorised_persons
        .iter()
        .enumerate()
        .map(|(i, p)| {
            (
                format!("/authorised_persons/{i}"),
                p.name.as_str(),
                p.login.as_deref(),
                true,
            )
        })
        .collect();
    if let Some(ext) = &spec.external {
        out.extend(ext.team().iter().enumerate().map(|(i, m)| {
            (
                format!("/external/team/{i}"),
                m.name.as_str(),
                m.login.as_deref(),
                m.authorised_person || m.processes_personal_data,
            )
        }));
    }
    out
}

fn check(spec: &Spec, f: &mut Findings) {
    // A login of the Service's people that is also a login of the external team.
    let service: std::collections::HashSet<&str> = spec
        .authorised_persons
        .iter()
        .filter_map(|p| p.login.as_deref())
        .collect();
    if let Some(ext) = &spec.external {
        for (i, m) in ext.team().iter().enumerate() {
            if let Some(login) = m.login.as_deref().filter(|l| service.contains(l)) {
                f.report(
                    &format!("/external/team/{i}/login"),
                    format!("login `{login}` is also an authorised person's of the Service: a login is either the Service's or the external researcher's, or a member of the team would act in a role of the Service (MK403 p.25.1, p.33.1)"),
                )
                .lv(format!("lietotājvārds `{login}` ir arī dienesta pilnvarotās personas lietotājvārds: lietotājvārds ir vai nu dienesta, vai pētījuma izstrādātāja, citādi komandas loceklis darbotos dienesta lomā (MK403 25.1., 33.1. p.)"));
            }
        }
    }
    // login → the person it names first; person → the login first given them.
    let mut by_login: HashMap<&str, (String, &str)> = HashMap::new();
    let mut by_person: HashMap<String, &str> = HashMap::new();
    for (pointer, name, login, needed) in persons(spec) {
        let key = person_key(name);
        if key.is_empty() {
            // A nameless person is SF131's or SF141's finding.
            continue;
        }
        let Some(login) = login else {
            if needed {
                f.report(&pointer, format!("{} has no `login`: a person acts on the study only when signed in as the login the spec binds to them (MK403 p.25.1, p.33.1)", shown(name)))
                    .lv(format!("personai {} nav `login`: persona pētījumā darbojas tikai tad, ja ir pierakstījusies ar lietotājvārdu, ko specifikācija tai piesaista (MK403 25.1., 33.1. p.)", shown_in(name, Lang::Lv)))
                    .help("add `login: <their sign-in name>`, as the identity provider or `studyflow user add` knows it");
            }
            continue;
        };
        match by_login.get(login) {
            Some((other, _)) if *other != key => {
                f.report(
                    &format!("{pointer}/login"),
                    format!("login `{login}` is also given to {}: one login names one person, or either could act as the other (MK403 p.25.1)", shown(by_login[login].1)),
                )
                .lv(format!("lietotājvārds `{login}` piešķirts arī personai {}: viens lietotājvārds apzīmē vienu personu, citādi katra no tām varētu darboties otras vārdā (MK403 25.1. p.)", shown_in(by_login[login].1, Lang::Lv)))
                .points(&["p.25.1"]);
            }
            Some(_) => {}
            None => {
                by_login.insert(login, (key.clone(), name));
            }
        }
        match by_person.get(&key) {
            Some(first) if *first != login => {
                f.report(
                    &format!("{pointer}/login"),
                    format!("{} is bound to login `{first}` already: one person, one login (MK403 p.25.1)", shown(name)),
                )
                .lv(format!("persona {} jau ir piesaistīta lietotājvārdam `{first}`: vienai personai ir viens lietotājvārds (MK403 25.1. p.)", shown_in(name, Lang::Lv)))
                .points(&["p.25.1"]);
            }
            Some(_) => {}
            None => {
                by_person.insert(key, login);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::run_rule;
    use crate::rules::test_support::{base, found, spec_with};
    use serde_json::json;

    #[test]
    fn the_base_binds_its_person() {
        assert!(run_rule(&RULE, &base()).is_empty());
    }

    #[test]
    fn an_authorised_person_without_a_login_cannot_act() {
        let spec = spec_with(|v| {
            v["authorised_persons"][0]
                .as_object_mut()
                .unwrap()
                .remove("login");
        });
        let d = run_rule(&RULE, &spec);
        assert_eq!(found(&d), [("/authorised_persons/0".into(), "error")]);
        assert!(d[0].message.contains("has no `login`"), "{d:?}");
    }

    #[test]
    fn one_login_names_one_person_and_one_person_has_one_login() {
        let spec = spec_with(|v| {
            v["authorised_persons"] = json!([
                {"name": "A. Bērziņa", "login": "a.berzina", "role": "service_researcher", "access": ["service_is"]},
                {"name": "G. Krūmiņš", "login": "a.berzina", "role": "approver", "access": []},
                {"name": "a.  BĒRZIŅA", "login": "ab2", "role": "approver", "access": []},
            ]);
        });
        let d = run_rule(&RULE, &spec);
        assert_eq!(
            found(&d),
            [
                ("/authorised_persons/1/login".into(), "error"),
                ("/authorised_persons/2/login".into(), "error")
            ],
            "{d:?}"
        );
        assert!(d[0].message.contains("also given to"));
        assert!(d[1].message.contains("bound to login `a.berzina`"));
    }

    /// A team member who neither is an authorised person nor processes personal data does
    /// not act in studyflow; the others need a login. A login of the Service's people is not
    /// also one of the team's, even for the same person.
    #[test]
    fn team_members_who_act_need_a_login_of_their_own() {
        let spec = spec_with(|v| {
            v["external"] = json!({"team": [
                {"name": "L. Ozoliņa", "role": "PI", "authorised_person": true},
                {"name": "S. Kļaviņa", "role": "advisor"},
                {"name": "A. Bērziņa", "login": "a.berzina", "role": "liaison"},
            ]});
        });
        let d = run_rule(&RULE, &spec);
        assert_eq!(
            found(&d),
            [
                ("/external/team/2/login".into(), "error"),
                ("/external/team/0".into(), "error")
            ],
            "{d:?}"
        );
    }
}
