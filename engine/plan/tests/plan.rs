//! The compiler on the real specs, the checks on plans broken on purpose, the dates, the hash.

use jiff::civil::{Date, date};
use petgraph::graph::NodeIndex;
use studyflow_calendar::Calendar;
use studyflow_plan::model::Edge;
use studyflow_plan::{Actor, DataClass, Plan, StepKind, checks, compile};
use studyflow_spec::Spec;

const SPECS: [&str; 3] = [
    "recidivism-2026-cohort",
    "resocialisation-programmes-university",
    "probation-client-survey",
];

fn source(name: &str) -> Vec<u8> {
    let path = format!("{}/../../specs/{name}.yaml", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn typed(bytes: &[u8]) -> Spec {
    let checked = studyflow_spec::check(bytes);
    assert_eq!(checked.errors(), 0, "{:?}", checked.diagnostics);
    checked.spec.expect("typed spec")
}

fn plan_of(name: &str) -> Plan {
    let bytes = source(name);
    let (plan, findings) = compile(&typed(&bytes), &bytes, &Calendar::latvia(), None);
    assert!(findings.is_empty(), "{name}: {findings:#?}");
    plan
}

/// Compiles a spec edited as YAML text.
fn plan_with(
    name: &str,
    edit: impl Fn(String) -> String,
    today: Option<Date>,
) -> (Plan, Vec<studyflow_spec::Diagnostic>) {
    let text = edit(String::from_utf8(source(name)).unwrap());
    assert_ne!(
        text.as_bytes(),
        source(name).as_slice(),
        "the edit changed nothing"
    );
    let bytes = text.into_bytes();
    let (plan, findings) = compile(&typed(&bytes), &bytes, &Calendar::latvia(), today);
    said_in_latvian(&findings);
    (plan, findings)
}

/// The flow and structure checks on a plan, each finding said in Latvian too.
fn verify(plan: &Plan) -> Vec<studyflow_spec::Diagnostic> {
    let found = checks::verify(plan);
    said_in_latvian(&found);
    found
}

fn said_in_latvian(findings: &[studyflow_spec::Diagnostic]) {
    let wrong: Vec<String> = findings
        .iter()
        .flat_map(|d| {
            studyflow_spec::testing::latvian_problems(d)
                .into_iter()
                .map(move |w| format!("{}: {}\n    {w}", d.code, d.message))
        })
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

fn node(plan: &Plan, id: &str) -> NodeIndex {
    plan.graph
        .node_indices()
        .find(|n| plan.graph[*n].id == id)
        .unwrap_or_else(|| panic!("no step {id}"))
}

fn codes(findings: &[studyflow_spec::Diagnostic]) -> Vec<&'static str> {
    said_in_latvian(findings);
    let mut c: Vec<&str> = findings.iter().map(|d| d.code).collect();
    c.sort();
    c.dedup();
    c
}

fn ids(plan: &Plan) -> Vec<String> {
    plan.topological()
        .expect("acyclic")
        .into_iter()
        .map(|n| plan.graph[n].id.clone())
        .collect()
}

#[test]
fn every_spec_compiles_to_a_plan_that_passes_every_check() {
    for name in SPECS {
        let plan = plan_of(name);
        assert!(verify(&plan).is_empty());
        // Topological: every edge goes forwards in the printed order.
        let order = ids(&plan);
        for (a, b, _) in plan.edges() {
            let pos = |x: &str| order.iter().position(|i| i == x).unwrap();
            assert!(pos(a) < pos(b), "{name}: {a} -> {b}");
        }
        assert_eq!(order[0], "approval");
    }
}

#[test]
fn recidivism_plan_has_the_linkage_chain_and_six_waves() {
    let plan = plan_of("recidivism-2026-cohort");
    let order = ids(&plan);
    let chain = [
        "acquire-service-is",
        "information-centre-request",
        "information-centre-answer",
        "merge-link",
        "delete-identifiers",
        "quality-check",
        "anonymise",
    ];
    let positions: Vec<usize> = chain
        .iter()
        .map(|id| order.iter().position(|o| o == id).unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{order:?}");
    // Deletion right after linkage, and nothing else after linkage (p.17.3).
    let link = node(&plan, "merge-link");
    let next: Vec<&str> = plan
        .graph
        .neighbors(link)
        .map(|n| plan.graph[n].id.as_str())
        .collect();
    assert_eq!(next, ["delete-identifiers"]);
    let delete = plan.step("delete-identifiers").unwrap();
    for key in [
        "personal_code",
        "previous_personal_code",
        "proceeding_number",
        "case_number",
        "case_section_number",
    ] {
        assert!(delete.fields.iter().any(|f| f == key), "{key} not deleted");
    }
    assert!(!delete.fields.iter().any(|f| f == "sex"));
    // The six waves, per subject, each answer anonymised on arrival (p.19–20).
    let requests: Vec<_> = plan.steps_of(StepKind::FollowUpRequest).collect();
    assert_eq!(requests.len(), 6);
    for (n, s) in &requests {
        assert!(s.per_subject);
        assert_eq!(s.actor, Actor::Engine);
        let answer = plan.graph.neighbors(*n).next().unwrap();
        assert_eq!(plan.graph[answer].kind, StepKind::FollowUpAnswer);
        let after: Vec<StepKind> = plan
            .graph
            .neighbors(answer)
            .map(|m| plan.graph[m].kind)
            .collect();
        assert_eq!(after, [StepKind::FollowUpAnonymise]);
    }
    let w = plan.step("follow-up-3y-after-end-request").unwrap();
    assert_eq!(w.regulation[0], "p.19.4");
    assert!(matches!(
        w.trigger,
        studyflow_plan::Trigger::PerSubject { years: 3, .. }
    ));
    // No Prison Administration data: no notice.
    assert!(plan.prison_notice_due().is_none());
    // Phase deadlines through `covers`.
    assert_eq!(
        plan.step("anonymise")
            .unwrap()
            .deadline
            .as_ref()
            .unwrap()
            .date,
        Some(date(2027, 4, 30))
    );
    assert_eq!(
        plan.step("analysis")
            .unwrap()
            .deadline
            .as_ref()
            .unwrap()
            .date,
        Some(date(2033, 10, 31))
    );
    // Identifying data goes once the last follow-up answer is anonymised and joined, by the
    // spec's date.
    let destroy = plan.step("destroy-identifying").unwrap();
    assert_eq!(
        destroy.deadline.as_ref().unwrap().date,
        Some(date(2033, 7, 29))
    );
    let before: Vec<StepKind> = plan
        .graph
        .neighbors_directed(node(&plan, "destroy-identifying"), petgraph::Incoming)
        .map(|n| plan.graph[n].kind)
        .collect();
    // After the last follow-up answer is anonymised and joined: an unjoined answer waits
    // under its run pseudonym, which only the vault links to the study ID.
    let count = |k: StepKind| before.iter().filter(|b| **b == k).count();
    assert_eq!(count(StepKind::FollowUpAnonymise), 6);
    assert_eq!(count(StepKind::FollowUpJoin), 6);
    assert_eq!(before.len(), 12);
}

#[test]
fn external_study_transfers_only_after_the_gates_and_notifies_the_prison_administration() {
    let plan = plan_of("resocialisation-programmes-university");
    let transfer = node(&plan, "transfer");
    let into: Vec<(&str, Edge)> = plan
        .graph
        .edges_directed(transfer, petgraph::Incoming)
        .map(|e| {
            use petgraph::visit::EdgeRef;
            (plan.graph[e.source()].id.as_str(), *e.weight())
        })
        .collect();
    assert!(into.contains(&("contract-gate", Edge::Order)));
    assert!(into.contains(&("anonymise", Edge::Data)));
    assert_eq!(
        plan.step("analysis").unwrap().actor,
        Actor::ExternalResearcher
    );
    // Publication Wednesday 15 March 2028: the 10th working day before is 1 March (p.8).
    assert_eq!(plan.prison_notice_due(), Some(date(2028, 3, 1)));
    let notice = plan.step("prison-administration-notice").unwrap();
    assert_eq!(notice.actor, Actor::ServiceResearcher);
    assert_eq!(notice.regulation, ["p.8"]);
    // The Service requests; the Prison Administration answers (p.6).
    assert_eq!(
        plan.step("prison-administration-request").unwrap().actor,
        Actor::ServiceResearcher
    );
    assert_eq!(
        plan.step("prison-administration-answer").unwrap().actor,
        Actor::PrisonAdministration
    );
    assert!(
        plan.step("prison-administration-request")
            .unwrap()
            .regulation
            .contains(&"p.14.2")
    );
    let copy = plan.step("external-copy-deletion").unwrap();
    assert_eq!(
        copy.deadline.as_ref().unwrap().date,
        Some(date(2028, 12, 29))
    );
}

#[test]
fn the_notice_counts_working_days_over_holidays() {
    // Publication Thursday 29 June 2028: Līgo (Friday 23 June) is passed over; Jāņi falls on
    // the Saturday and is not moved.
    let (plan, findings) = plan_with(
        "resocialisation-programmes-university",
        |t| t.replace("planned_date: 2028-03-15", "planned_date: 2028-06-29"),
        None,
    );
    // 2028: 23 and 24 June are Friday and Saturday; 22 June (Thursday) is a working day.
    assert_eq!(plan.prison_notice_due(), Some(date(2028, 6, 14)));
    assert!(findings.is_empty(), "{findings:#?}");
    let rule = &plan
        .step("prison-administration-notice")
        .unwrap()
        .deadline
        .as_ref()
        .unwrap()
        .rule;
    assert!(rule.contains("2028-06-23"), "{rule}");
}

#[test]
fn contact_transfer_is_the_only_way_contact_details_leave() {
    let plan = plan_of("probation-client-survey");
    let survey = plan.step("survey").unwrap();
    assert_eq!(survey.actor, Actor::ExternalResearcher);
    assert_eq!(survey.data_in, DataClass::Contact);
    let ct = plan.step("contact-transfer").unwrap();
    assert_eq!(ct.regulation, ["p.30", "p.32"]);
    assert!(plan.step("external-destroy-contact").is_some());
    // Made into an ordinary transfer, the same edge is a leak of contact data.
    let mut broken = plan.clone();
    let n = node(&broken, "contact-transfer");
    broken.graph[n].kind = StepKind::Transfer;
    let found = verify(&broken);
    assert!(
        found
            .iter()
            .any(|d| d.code == "SF202" && d.message.contains("contact data reaches `survey`")),
        "{found:#?}"
    );
}

#[test]
fn sf201_cycles_second_starts_and_duplicate_ids() {
    let mut plan = plan_of("recidivism-2026-cohort");
    let (a, b) = (node(&plan, "analysis"), node(&plan, "quality-check"));
    plan.graph.add_edge(a, b, Edge::Order);
    let found = verify(&plan);
    assert_eq!(codes(&found), ["SF201"]);
    assert!(found[0].message.contains("cycle"));

    let mut plan = plan_of("recidivism-2026-cohort");
    let mut stray = plan.step("analysis").unwrap().clone();
    stray.id = "stray".into();
    plan.graph.add_node(stray);
    let found = verify(&plan);
    assert!(
        found
            .iter()
            .any(|d| d.code == "SF201" && d.message.contains("one start")),
        "{found:#?}"
    );

    let mut plan = plan_of("recidivism-2026-cohort");
    let n = node(&plan, "report");
    plan.graph[n].id = "analysis".into();
    let found = verify(&plan);
    assert!(
        found
            .iter()
            .any(|d| d.code == "SF201" && d.message.contains("used twice"))
    );
}

#[test]
fn sf202_sf203_sf205_pseudonymised_data_straight_to_the_external_researcher() {
    let mut plan = plan_of("resocialisation-programmes-university");
    let (qc, analysis) = (node(&plan, "quality-check"), node(&plan, "analysis"));
    plan.graph.add_edge(qc, analysis, Edge::Data);
    let found = verify(&plan);
    assert_eq!(codes(&found), ["SF202", "SF203", "SF205"], "{found:#?}");
    assert!(
        found
            .iter()
            .all(|d| d.span == Some(studyflow_spec::Span::START))
    );
    // An order-only edge carries nothing.
    let mut plan = plan_of("resocialisation-programmes-university");
    let (qc, analysis) = (node(&plan, "quality-check"), node(&plan, "analysis"));
    plan.graph.add_edge(qc, analysis, Edge::Order);
    assert!(verify(&plan).is_empty());
}

#[test]
fn sf203_identifying_data_to_analysis_and_unanonymised_follow_ups() {
    let mut plan = plan_of("recidivism-2026-cohort");
    let (link, analysis) = (node(&plan, "merge-link"), node(&plan, "analysis"));
    plan.graph.add_edge(link, analysis, Edge::Data);
    let found = verify(&plan);
    assert!(
        found
            .iter()
            .any(|d| d.code == "SF203"
                && d.message.starts_with("identifying data reaches `analysis`")),
        "{found:#?}"
    );
    // SF204 too: linkage followed by something other than the deletion.
    assert!(found.iter().any(|d| d.code == "SF204"));

    let mut plan = plan_of("recidivism-2026-cohort");
    let (answer, join) = (
        node(&plan, "follow-up-1y-after-start-answer"),
        node(&plan, "follow-up-1y-after-start-join"),
    );
    plan.graph.add_edge(answer, join, Edge::Data);
    let found = verify(&plan);
    assert!(
        found
            .iter()
            .any(|d| d.code == "SF203" && d.message.contains("before it is anonymised")),
        "{found:#?}"
    );
}

#[test]
fn sf204_answers_must_be_linked_and_identifiers_deleted() {
    let mut plan = plan_of("recidivism-2026-cohort");
    let e = plan
        .graph
        .find_edge(node(&plan, "merge-link"), node(&plan, "delete-identifiers"))
        .unwrap();
    plan.graph.remove_edge(e);
    let (link, qc) = (node(&plan, "merge-link"), node(&plan, "quality-check"));
    plan.graph.add_edge(link, qc, Edge::Data);
    let found = verify(&plan);
    assert!(
        found
            .iter()
            .any(|d| d.code == "SF204" && d.message.contains("before the identifiers are deleted")),
        "{found:#?}"
    );
    assert!(
        found
            .iter()
            .any(|d| d.code == "SF204" && d.message.contains("never deleted")),
        "{found:#?}"
    );
}

#[test]
fn sf205_transfer_without_the_contract_gate() {
    let mut plan = plan_of("resocialisation-programmes-university");
    let e = plan
        .graph
        .find_edge(node(&plan, "contract-gate"), node(&plan, "transfer"))
        .unwrap();
    plan.graph.remove_edge(e);
    // Keep the gate reachable so only the transfer rule speaks.
    let (gate, publication) = (node(&plan, "contract-gate"), node(&plan, "publication"));
    plan.graph.add_edge(gate, publication, Edge::Order);
    let found = verify(&plan);
    assert_eq!(codes(&found), ["SF205"], "{found:#?}");
    assert!(
        found[0]
            .message
            .contains("contract and non-disclosure gate")
    );
}

#[test]
fn sf206_identifying_data_that_is_never_destroyed() {
    let mut plan = plan_of("probation-client-survey");
    let destroy = node(&plan, "destroy-identifying");
    let incoming: Vec<_> = plan
        .graph
        .edges_directed(destroy, petgraph::Incoming)
        .map(|e| {
            use petgraph::visit::EdgeRef;
            e.id()
        })
        .collect();
    for e in incoming.into_iter().rev() {
        plan.graph.remove_edge(e);
    }
    let (approval, destroy) = (node(&plan, "approval"), node(&plan, "destroy-identifying"));
    plan.graph.add_edge(approval, destroy, Edge::Order);
    let found = verify(&plan);
    assert_eq!(codes(&found), ["SF206"], "{found:#?}");
    assert!(found.iter().any(|d| d.message.contains("`consent`")));
}

#[test]
fn sf207_notice_in_the_past_before_the_analysis_or_unchecked() {
    let name = "resocialisation-programmes-university";
    let bytes = source(name);
    let spec = typed(&bytes);
    let cal = Calendar::latvia();
    let (_, ok) = compile(&spec, &bytes, &cal, Some(date(2028, 3, 1)));
    assert!(ok.is_empty(), "{ok:#?}");
    let (_, late) = compile(&spec, &bytes, &cal, Some(date(2028, 3, 2)));
    assert_eq!(codes(&late), ["SF207"]);
    assert!(
        late[0].message.contains("was due by 2028-03-01"),
        "{}",
        late[0].message
    );
    assert_eq!(late[0].pointer, "/publication/planned_date");
    assert_eq!(late[0].severity, studyflow_spec::Severity::Warning);

    let (_, early) = plan_with(
        name,
        |t| {
            t.replace(
                "deadline: 2028-02-25",
                "deadline: 2028-03-10\n    covers: [analysis]",
            )
        },
        None,
    );
    assert!(
        early.iter().any(|d| d.code == "SF210"
            && d.severity == studyflow_spec::Severity::Error
            && d.message.contains("the results would not exist yet")),
        "{early:#?}"
    );
    // The analysis ending on the notice day itself (2028-03-01): the results exist that day.
    for (deadline, late) in [("2028-03-01", false), ("2028-03-02", true)] {
        let (_, found) = plan_with(
            name,
            |t| {
                t.replace(
                    "deadline: 2028-02-25",
                    &format!("deadline: {deadline}\n    covers: [analysis]"),
                )
            },
            None,
        );
        assert_eq!(
            found.iter().any(|d| d.code == "SF210"),
            late,
            "{deadline}: {found:#?}"
        );
    }

    let (_, unchecked) = plan_with(name, |t| t.replace("    covers: [analysis]\n", ""), None);
    assert!(
        unchecked
            .iter()
            .any(|d| d.code == "SF207" && d.pointer == "/phases"),
        "{unchecked:#?}"
    );

    // Beyond the calendar's years the date cannot be computed, and the user is told.
    let (plan, far) = plan_with(
        name,
        |t| t.replace("planned_date: 2028-03-15", "planned_date: 2101-03-15"),
        None,
    );
    assert!(plan.prison_notice_due().is_none());
    assert!(
        far.iter()
            .any(|d| d.code == "SF207" && d.message.contains("cannot be computed")),
        "{far:#?}"
    );
}

#[test]
fn the_hash_covers_spec_bytes_calendar_and_compiler() {
    let bytes = source("recidivism-2026-cohort");
    let cal = Calendar::latvia();
    let h = studyflow_plan::plan_hash(&bytes, &cal);
    assert_eq!(h, studyflow_plan::plan_hash(&bytes, &cal));
    assert_eq!(h.len(), "sha256:".len() + 64);
    let mut commented = bytes.clone();
    commented.extend_from_slice(b"# a comment\n");
    assert_ne!(h, studyflow_plan::plan_hash(&commented, &cal));
    let other = Calendar::with_overrides(&[(
        "order.txt",
        "one-off 2033-06-30 A day off by a future law (Brīvdiena ar nākotnes likumu)\n",
    )])
    .unwrap();
    assert_ne!(cal.version(), other.version());
    assert_ne!(h, studyflow_plan::plan_hash(&bytes, &other));
    assert!(studyflow_plan::COMPILER_VERSION.starts_with("studyflow-plan "));
}

#[test]
fn json_is_versioned_and_deterministic() {
    for name in SPECS {
        let a = studyflow_plan::render::json(&plan_of(name));
        let b = studyflow_plan::render::json(&plan_of(name));
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            serde_json::to_string(&b).unwrap()
        );
        assert_eq!(a["format"], "studyflow-plan/1");
        assert_eq!(a["study"], name);
        for node in a["nodes"].as_array().unwrap() {
            for key in [
                "id",
                "kind",
                "actor",
                "data_in",
                "data_out",
                "regulation",
                "due",
            ] {
                assert!(node.get(key).is_some(), "{name}: node without {key}");
            }
        }
        assert!(
            a["edges"]
                .as_array()
                .unwrap()
                .iter()
                .all(|e| e.as_array().unwrap().len() == 2)
        );
    }
    let json = studyflow_plan::render::json(&plan_of("resocialisation-programmes-university"));
    let notice: Vec<_> = json["deadlines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["kind"] == "prison_administration_notice")
        .collect();
    assert_eq!(notice.len(), 1);
    assert_eq!(notice[0]["date"], "2028-03-01");
}

#[test]
fn follow_up_waves_follow_the_spec() {
    let (plan, _) = plan_with(
        "recidivism-2026-cohort",
        |t| {
            t.replace("    - 3y_after_start\n", "")
                .replace("    - 5y_after_start\n", "")
        },
        None,
    );
    let waves: Vec<&str> = plan
        .steps_of(StepKind::FollowUpRequest)
        .map(|(_, s)| s.id.as_str())
        .collect();
    assert_eq!(
        waves,
        [
            "follow-up-1y-after-start-request",
            "follow-up-1y-after-end-request",
            "follow-up-3y-after-end-request",
            "follow-up-5y-after-end-request"
        ]
    );
    let r = plan.step("follow-up-1y-after-start-request").unwrap();
    assert_eq!(r.actor, Actor::Engine);
    let rule = &r.deadline.as_ref().unwrap().rule;
    assert!(rule.contains("between 2027-01-01 and 2027-12-31"), "{rule}");
}

#[test]
fn purpose_needing_identifiable_data_keeps_service_researchers_on_it_before_anonymisation() {
    let (plan, findings) = plan_with(
        "recidivism-2026-cohort",
        |t| {
            t.replace(
                "  purpose_reachable_with_anonymised_data: true\n",
                "  purpose_reachable_with_anonymised_data: false\n  why_identifying_data_is_needed: The supervision case files are read by hand to code the risk factors.\n",
            )
        },
        None,
    );
    assert!(findings.is_empty(), "{findings:#?}");
    let order = ids(&plan);
    let pos = |x: &str| order.iter().position(|i| i == x).unwrap();
    assert!(pos("quality-check") < pos("identifiable-processing"));
    assert!(pos("identifiable-processing") < pos("anonymise"));
    assert_eq!(
        plan.step("identifiable-processing").unwrap().actor,
        Actor::ServiceResearcher
    );
}

#[test]
fn other_systems_come_between_the_quality_check_and_anonymisation() {
    let (plan, findings) = plan_with(
        "recidivism-2026-cohort",
        |t| {
            t.replace(
                "\n# MK403 p.3.5 — personal-data types",
                "  other_systems:\n    - system: Office of Citizenship and Migration Affairs, Population Register\n      operation: quality_check\n      description: Confirms that each subject's birth year and sex match the register.\n    - system: State Employment Agency\n      operation: supplement\n      description: Adds registered unemployment at the start of supervision.\n\n# MK403 p.3.5 — personal-data types",
            )
        },
        None,
    );
    assert!(findings.is_empty(), "{findings:#?}");
    let order = ids(&plan);
    let pos = |x: &str| order.iter().position(|i| i == x).unwrap();
    assert!(pos("quality-check") < pos("other-system-1"));
    assert!(pos("other-system-1") < pos("other-system-2"));
    assert!(pos("other-system-2") < pos("anonymise"));
    assert_eq!(
        plan.step("other-system-1").unwrap().regulation,
        ["p.23", "p.23.1"]
    );
    assert_eq!(
        plan.step("other-system-2").unwrap().regulation,
        ["p.23", "p.23.2"]
    );
    assert_eq!(plan.step("anonymise").unwrap().regulation, ["p.7", "p.24"]);
}

#[test]
fn a_service_is_only_study_deletes_without_linkage() {
    let plan = plan_of("probation-client-survey");
    assert!(plan.step("merge-link").is_none());
    let delete = plan.step("delete-identifiers").unwrap();
    assert_eq!(delete.regulation, ["p.7", "p.22.3", "p.22.4"]);
    assert_eq!(
        plan.step("acquire-service-is").unwrap().actor,
        Actor::ServiceResearcher
    );
}

/// SF209: the calendar's years bound every date of a spec, at both ends, to the day.
#[test]
fn dates_beyond_the_calendar_are_errors_at_their_place() {
    let bytes = String::from_utf8(source("recidivism-2026-cohort")).unwrap();
    let planned = bytes
        .lines()
        .find_map(|l| l.trim().strip_prefix("planned_date: "))
        .expect("a planned publication date")
        .to_owned();
    for (date, errors) in [("2100-12-31", 0), ("2101-01-01", 1), ("1999-12-31", 1)] {
        let moved = bytes.replace(
            &format!("planned_date: {planned}"),
            &format!("planned_date: {date}"),
        );
        let spec = studyflow_spec::check(moved.as_bytes())
            .spec
            .expect("typed spec");
        let found = checks::calendar_range(&spec);
        said_in_latvian(&found);
        assert_eq!(found.len(), errors, "{date}: {found:?}");
        if errors > 0 {
            assert_eq!(found[0].pointer, "/publication/planned_date");
            assert_eq!(found[0].code, "SF209");
        }
    }
}

/// A study that needs identifying processing (p.21) and exchanges with another system (p.23):
/// the compiler puts the service researchers' processing before the exchange, since the
/// Service IS anonymises after it (p.24); a plan where pseudonymised data from the exchange
/// reaches them is refused.
#[test]
fn sf211_identifying_processing_comes_before_other_systems() {
    let (plan, findings) = plan_with(
        "recidivism-2026-cohort",
        |t| {
            t.replace(
                "  information_centre:\n    exchange: automated\n",
                "  other_systems:\n    - system: Office of Citizenship and Migration Affairs, Population Register\n      operation: supplement\n      description: Adds the date of any emigration, to censor the follow-up.\n  information_centre:\n    exchange: automated\n",
            )
            .replace(
                "  purpose_reachable_with_anonymised_data: true\n",
                "  purpose_reachable_with_anonymised_data: false\n  why_identifying_data_is_needed: The case files are read by name.\n",
            )
            .replace(
                "covers: [acquisition, linkage, quality_check, anonymisation]",
                "covers: [acquisition, linkage, quality_check, supplementation, anonymisation]",
            )
        },
        None,
    );
    assert!(findings.is_empty(), "{findings:#?}");
    let g = &plan.graph;
    let (ident, other, anon) = (
        node(&plan, "identifiable-processing"),
        node(&plan, "other-system-1"),
        node(&plan, "anonymise"),
    );
    let successors = |n| {
        g.neighbors_directed(n, petgraph::Direction::Outgoing)
            .map(|m| g[m].id.as_str())
            .collect::<Vec<_>>()
    };
    assert_eq!(successors(ident), ["other-system-1"]);
    assert_eq!(successors(other), ["anonymise"]);
    assert!(plan.step("anonymise").unwrap().regulation.contains(&"p.24"));
    assert!(verify(&plan).is_empty());

    // The old order: the exchange first, the service researchers' processing after it.
    let mut broken = plan.clone();
    for (a, b) in [
        ("quality-check", "identifiable-processing"),
        ("identifiable-processing", "other-system-1"),
        ("other-system-1", "anonymise"),
    ] {
        let e = broken
            .graph
            .find_edge(node(&broken, a), node(&broken, b))
            .unwrap();
        broken.graph.remove_edge(e);
    }
    broken
        .graph
        .add_edge(node(&plan, "quality-check"), other, Edge::Data);
    broken.graph.add_edge(other, ident, Edge::Data);
    broken.graph.add_edge(ident, anon, Edge::Data);
    let found = verify(&broken);
    assert_eq!(codes(&found), ["SF211"], "{found:#?}");
    assert!(
        found[0].message.starts_with(
            "pseudonymised data reaches the service researchers' `identifiable-processing` after an exchange"
        ),
        "{found:#?}"
    );
    assert_eq!(found[0].regulation, ["p.21", "p.23", "p.24"]);
}

/// Issue #13: every finding of every layer, the plan's among them, on every spec of the corpus
/// (`tests/specs`) and the studies in `specs/` is said in Latvian too — SF208–SF210 there;
/// the flow checks (SF201–SF206, SF211) on the plans broken on purpose above.
#[test]
fn every_finding_of_the_corpus_is_said_in_latvian_too() {
    let root = format!("{}/../..", env!("CARGO_MANIFEST_DIR"));
    let calendar = Calendar::latvia();
    // The day the corpus is checked on (the tests' clock, tests/support.rs).
    let today = date(2026, 11, 28);
    let mut files = Vec::new();
    for dir in [
        "tests/specs/invalid",
        "tests/specs/warnings",
        "tests/specs/valid",
        "specs",
    ] {
        for entry in std::fs::read_dir(format!("{root}/{dir}"))
            .unwrap()
            .flatten()
        {
            let path = entry.path();
            if path.is_file() {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut codes = std::collections::BTreeSet::new();
    for path in &files {
        let bytes = std::fs::read(path).unwrap();
        let checked = studyflow_plan::check(&bytes, &calendar, Some(today));
        for d in &checked.checked.diagnostics {
            codes.insert(d.code);
            let wrong = studyflow_spec::testing::latvian_problems(d);
            // (The YAML parser's and serde's own detail stays in English; the schema's
            // Latvian names a pattern its English leaves to the help.)
            let wrong: Vec<_> = wrong
                .into_iter()
                .filter(|w| {
                    !(d.code.starts_with("SF0")
                        && (w.starts_with("English") || w.starts_with("names")))
                })
                .collect();
            assert!(
                wrong.is_empty(),
                "{}: {}: {}\n{wrong:#?}",
                path.display(),
                d.code,
                d.message
            );
        }
    }
    for code in ["SF208", "SF209", "SF210"] {
        assert!(codes.contains(code), "{code}: {codes:?}");
    }
    assert!(files.len() > 100, "{}", files.len());
}
