//! Spec → plan: the steps the regulation requires for what the spec asks, in the order it
//! requires them, with their deadlines computed on the working-day calendar.

use std::collections::HashMap;

use jiff::civil::Date;
use petgraph::graph::{DiGraph, NodeIndex};
use studyflow_calendar::{Calendar, Reading};
use studyflow_spec::catalogue::{self, FieldClass, Source};
use studyflow_spec::model::{
    AnchorEvent, Exchange, Keep, OtherSystemOperation, ServiceIsExtraction, Spec, Stage, WAVES,
};

use crate::model::{
    About, Actor, AnchorEdge, DataClass, Deadline, DeadlineKind, Edge, Plan, Registry, Step,
    StepKind, Trigger, WaveRef,
};

/// Working days before publication by which the Prison Administration is told (MK403 p.8).
pub const NOTICE_WORKING_DAYS: u32 = 10;

/// A step under construction: the kind, the actor, the data classes and the points; the rest
/// set by the builder's methods.
fn step(
    id: impl Into<String>,
    kind: StepKind,
    (title, title_lv): (impl Into<String>, impl Into<String>),
    actor: Actor,
    (data_in, data_out): (DataClass, DataClass),
    regulation: &[&'static str],
) -> Step {
    Step {
        id: id.into(),
        kind,
        about: About::Study,
        title: title.into(),
        title_lv: title_lv.into(),
        actor,
        data_in,
        data_out,
        regulation: regulation.to_vec(),
        trigger: Trigger::AfterDependencies,
        per_subject: false,
        stage: None,
        fields: Vec::new(),
        deadline: None,
        human_task: !matches!(
            actor,
            Actor::Engine | Actor::InformationCentre | Actor::PrisonAdministration
        ),
    }
}

impl Step {
    fn about(mut self, about: About) -> Self {
        self.about = about;
        self
    }
    fn stage(mut self, stage: Stage) -> Self {
        self.stage = Some(stage);
        self
    }
    fn fields<I: IntoIterator<Item = S>, S: Into<String>>(mut self, fields: I) -> Self {
        self.fields = fields.into_iter().map(Into::into).collect();
        self
    }
    fn per_subject(mut self) -> Self {
        self.per_subject = true;
        self
    }
    fn trigger(mut self, trigger: Trigger) -> Self {
        self.trigger = trigger;
        self
    }
    /// The step's deadline, its rule in English and Latvian.
    fn deadline(mut self, kind: DeadlineKind, (rule, rule_lv): Words, date: Option<Date>) -> Self {
        self.deadline = Some(Deadline {
            kind,
            rule,
            rule_lv,
            date,
        });
        self
    }
}

use DataClass::{
    Anonymised as ANON, Contact as CONTACT, Identifying as IDENT, None as NONE,
    Pseudonymised as PSEUDO,
};

struct Builder<'a> {
    spec: &'a Spec,
    graph: DiGraph<Step, Edge>,
    /// Latest deadline of the phases covering each stage, with those phases' ids.
    stages: HashMap<Stage, (Date, Vec<&'a str>)>,
    /// Earliest start of the phases covering each stage: its study-level steps wait for it.
    starts: HashMap<Stage, Date>,
}

impl Builder<'_> {
    /// Adds a step that reads what `deps` write.
    fn add(&mut self, step: Step, deps: &[NodeIndex]) -> NodeIndex {
        self.add_after(step, deps, &[])
    }

    /// Adds a step that reads what `data` write and runs only after `order` are done.
    fn add_after(&mut self, mut step: Step, data: &[NodeIndex], order: &[NodeIndex]) -> NodeIndex {
        // A study-level step does not start before its phase does (MK403 p.3.4): the cohort
        // is not extracted before it closes, the analysis not before its phase.
        if !step.per_subject
            && step.trigger == Trigger::AfterDependencies
            && let Some(stage) = step.stage
            && let Some(start) = self.starts.get(&stage)
        {
            step.trigger = Trigger::AtDate { date: *start };
        }
        if step.deadline.is_none()
            && let Some(stage) = step.stage
            && let Some((date, phases)) = self.stages.get(&stage)
        {
            let (rule, rule_lv) = phase_rule(phases, *date);
            step.deadline = Some(Deadline {
                kind: DeadlineKind::PhaseDeadline,
                rule,
                rule_lv,
                date: Some(*date),
            });
        }
        let n = self.graph.add_node(step);
        for d in data {
            self.graph.add_edge(*d, n, Edge::Data);
        }
        for d in order {
            self.graph.add_edge(*d, n, Edge::Order);
        }
        n
    }

    /// The Service's steps that read or write personal data and after which no other such
    /// step follows: when they are done, nothing needs the identifying data any more.
    fn last_holders_of_personal_data(&self) -> Vec<NodeIndex> {
        let holders: Vec<NodeIndex> = self
            .graph
            .node_indices()
            .filter(|n| {
                let s = &self.graph[*n];
                s.actor != Actor::ExternalResearcher && s.handles_personal_data()
            })
            .collect();
        holders
            .iter()
            .copied()
            .filter(|&h| {
                !holders.iter().any(|&o| {
                    o != h && petgraph::algo::has_path_connecting(&self.graph, h, o, None)
                })
            })
            .collect()
    }

    /// Steps nothing depends on yet.
    fn sinks(&self) -> Vec<NodeIndex> {
        self.graph
            .node_indices()
            .filter(|n| {
                self.graph
                    .neighbors_directed(*n, petgraph::Outgoing)
                    .next()
                    .is_none()
            })
            .collect()
    }
}

/// A text in English and in Latvian.
type Words = (String, String);

fn words(en: &str, lv: &str) -> Words {
    (en.to_owned(), lv.to_owned())
}

fn phase_rule(phases: &[&str], date: Date) -> Words {
    let names = phases
        .iter()
        .map(|p| format!("`{p}`"))
        .collect::<Vec<_>>()
        .join(", ");
    (
        format!("by {date}, the deadline of phase {names} (MK403 p.3.4)"),
        format!(
            "līdz {date}, {} {names} izpildes termiņam (MK403 3.4. p.)",
            if phases.len() == 1 { "posma" } else { "posmu" }
        ),
    )
}

/// Compiles a spec into its plan. `source` is the spec file's bytes, which the plan hash
/// covers with the calendar's data version and [`crate::COMPILER_VERSION`]. The diagnostics are
/// the plan-level checks ([`crate::checks`]); `today` enables the ones about dates in the past.
pub fn compile(
    spec: &Spec,
    source: &[u8],
    calendar: &Calendar,
    today: Option<Date>,
) -> (Plan, Vec<studyflow_spec::Diagnostic>) {
    let plan = build(spec, source, calendar);
    let diagnostics = crate::checks::run(&plan, spec, today);
    (plan, diagnostics)
}

/// The follow-up waves a spec asks for (MK403 p.19), in the catalogue's order, each with the
/// window its request asks about: since the previous wave counted from the same edge, or from
/// the edge itself (p.19: each follow-up reports what happened since the last one).
pub fn waves(follow_up: &studyflow_spec::model::FollowUp) -> Vec<WaveRef> {
    asked_waves(follow_up).into_iter().map(|(_, w)| w).collect()
}

/// The catalogue's wave beside the reference its steps carry.
fn asked_waves(
    follow_up: &studyflow_spec::model::FollowUp,
) -> Vec<(&'static studyflow_spec::model::FollowUpWave, WaveRef)> {
    let asked: Vec<&'static studyflow_spec::model::FollowUpWave> = WAVES
        .iter()
        .filter(|w| follow_up.waves.iter().any(|x| x.0 == w.name))
        .collect();
    asked
        .iter()
        .map(|wave| {
            let since_years = asked
                .iter()
                .filter(|w| w.from_end == wave.from_end && w.years < wave.years)
                .map(|w| w.years)
                .max()
                .unwrap_or(0);
            let reference = WaveRef {
                name: wave.name,
                point: wave.point,
                edge: if wave.from_end {
                    AnchorEdge::End
                } else {
                    AnchorEdge::Start
                },
                years: wave.years,
                since_years,
            };
            (*wave, reference)
        })
        .collect()
}

/// The deadline of a stage: the latest deadline of the phases that cover it (MK403 p.3.4).
/// For the follow-ups it is the study's observation cut-off: a wave that would fall due after
/// it is not requested, and its subject is right-censored there.
pub fn stage_deadline(spec: &Spec, stage: Stage) -> Option<Date> {
    spec.phases()
        .iter()
        .filter(|p| p.covers.contains(&stage))
        .filter_map(|p| p.deadline.map(|d| d.0))
        .max()
}

/// The start of a stage: the earliest start of the phases that cover it (MK403 p.3.4). Its
/// study-level steps do not run before it.
pub fn stage_start(spec: &Spec, stage: Stage) -> Option<Date> {
    spec.phases()
        .iter()
        .filter(|p| p.covers.contains(&stage))
        .filter_map(|p| p.start.map(|d| d.0))
        .min()
}

fn build(spec: &Spec, source: &[u8], calendar: &Calendar) -> Plan {
    let mut stages: HashMap<Stage, (Date, Vec<&str>)> = HashMap::new();
    for phase in spec.phases() {
        let Some(studyflow_spec::model::Date(deadline)) = phase.deadline else {
            continue;
        };
        for stage in &phase.covers {
            let entry = stages.entry(*stage).or_insert((deadline, Vec::new()));
            if deadline > entry.0 {
                *entry = (deadline, Vec::new());
            }
            if deadline == entry.0 && !entry.1.contains(&phase.id.as_str()) {
                entry.1.push(&phase.id);
            }
        }
    }
    let starts: HashMap<Stage, Date> = spec
        .phases()
        .iter()
        .flat_map(|p| p.covers.iter().copied())
        .filter_map(|stage| Some((stage, stage_start(spec, stage)?)))
        .collect();
    let mut b = Builder {
        spec,
        graph: DiGraph::new(),
        stages,
        starts,
    };
    let external = spec.external.is_some();
    let analyst = if external {
        Actor::ExternalResearcher
    } else {
        Actor::ServiceResearcher
    };

    let approval = b.add(
        step(
            "approval",
            StepKind::Approval,
            (
                "Approve the study application (plan), pinned to this plan's hash",
                "Apstiprināt pētījuma pieteikumu (plānu), saistot to ar šī plāna jaucējvērtību",
            ),
            Actor::Approver,
            (NONE, NONE),
            &["p.3", "p.30.1"],
        ),
        &[],
    );
    let contract_gate = external.then(|| {
        b.add_after(
            step(
                "contract-gate",
                StepKind::ContractGate,
                ("Record the contract, the non-disclosure declaration of everyone who processes personal data and the security measures", "Reģistrēt līgumu, visu personu, kuras veic personas datu apstrādi, apliecinājumus par ierobežotas pieejamības informācijas neizpaušanu un drošības pasākumus"),
                Actor::Approver,
                (NONE, NONE),
                                &["p.5", "p.29", "p.30.2", "p.33"],
            ),
            &[],
            &[approval],
        )
    });

    let (dataset, cohort) = acquisition_and_linkage(&mut b, approval);

    // Follow-up waves: per subject, requested from the Service IS's own client records, each
    // answer anonymised before anything else and joined by pseudonym (MK403 p.19–20).
    let mut joins = Vec::new();
    // An internal study's analysis dataset reaches its researchers through the study
    // workspace: first the baseline, then a new version after each wave (MK403 p.22.5, p.24).
    let mut releases: Vec<NodeIndex> = Vec::new();
    if let (false, Some(dataset)) = (external, dataset) {
        releases.push(b.add(
            step(
                "release-baseline",
                StepKind::Release,
                ("Release the anonymised analysis dataset to the study workspace of the authorised service researchers", "Nodot anonimizēto analīzes datu kopu pilnvaroto dienesta pētnieku pētījuma darbvietai"),
                Actor::Engine,
                (ANON, ANON),
                &["p.7", "p.22.5", "p.24"],
            )
            .stage(Stage::Anonymisation),
            &[dataset],
        ));
    }
    if let (Some(follow_up), Some(dataset)) = (&spec.follow_up, dataset) {
        let window = spec
            .methodology
            .as_ref()
            .and_then(|m| m.sample.as_ref())
            .and_then(|s| s.period);
        // The p.19 exchange is automated (p.20; SF150 refuses anything else).
        let (request_actor, exchange_points): (Actor, &[&'static str]) =
            (Actor::Engine, &["p.6", "p.11", "p.12", "p.20"]);
        let fields: Vec<&str> = follow_up.fields.iter().map(|f| f.0.as_str()).collect();
        for (wave, reference) in asked_waves(follow_up) {
            let about = About::Wave { wave: reference };
            let slug = wave.name.replace('_', "-");
            let mut points = vec![wave.point];
            points.extend_from_slice(exchange_points);
            let mut rule = format!(
                "{} (per subject, asked in one request per due day)",
                wave.description()
                    .replace("the anchor event", anchor_name(follow_up.anchor_event))
            );
            let mut rule_lv = format!(
                "{} (katram datu subjektam; visus, kuriem termiņš pienāk vienā dienā, pieprasa vienā pieprasījumā)",
                wave.description_lv_of(follow_up.anchor_event)
            );
            if let Some(p) = window {
                let add = |d: Date| d.checked_add(jiff::Span::new().years(wave.years)).ok();
                if let (Some(a), Some(z)) = (add(p.from.0), add(p.to.0)) {
                    let (from, to) = (p.from, p.to);
                    if wave.from_end {
                        rule.push_str(&format!("; for the sample of {from}–{to}, not before {a}"));
                        rule_lv.push_str(&format!("; izlasei {from}–{to} ne agrāk kā {a}"));
                    } else {
                        rule.push_str(&format!(
                            "; for the sample of {from}–{to}, between {a} and {z}"
                        ));
                        rule_lv.push_str(&format!("; izlasei {from}–{to} no {a} līdz {z}"));
                    }
                }
            }
            let cut_off = b.stages.get(&Stage::FollowUp).map(|(date, _)| *date);
            if let Some((date, phases)) = b.stages.get(&Stage::FollowUp) {
                let (phase, phase_lv) = phase_rule(phases, *date);
                rule.push_str(&format!(
                    "; all {phase}; a wave falling due after it is not requested (the subject is right-censored there)"
                ));
                rule_lv.push_str(&format!(
                    "; visus pieprasījumus nosūta {phase_lv}; pārbaudi, kuras termiņš pienāk pēc tā, nepieprasa (datu subjekta novērošana tur beidzas)"
                ));
            }
            let request = b.add(
                step(
                    format!("follow-up-{slug}-request"),
                    StepKind::FollowUpRequest,
                    (
                        format!(
                            "Request the Punishment Register follow-up {} from the Information Centre",
                            wave.description()
                        ),
                        format!(
                            "Pieprasīt Informācijas centram Sodu reģistra informāciju recidīva pārbaudei {}",
                            wave.description_lv()
                        ),
                    ),
                    request_actor,
                    (IDENT, IDENT),
                    &points,
                )
                .stage(Stage::FollowUp)
                .about(about)
                .per_subject()
                .fields(fields.iter().copied())
                .trigger(Trigger::PerSubject {
                    anchor_event: follow_up.anchor_event,
                    edge: reference.edge,
                    years: wave.years,
                })
                .deadline(DeadlineKind::FollowUpWave, (rule, rule_lv), cut_off),
                &[dataset],
            );
            let answer = b.add(
                step(
                    format!("follow-up-{slug}-answer"),
                    StepKind::FollowUpAnswer,
                    (
                        format!("The Information Centre answers the {} follow-up", wave.name),
                        format!(
                            "Informācijas centrs atbild uz pieprasījumu recidīva pārbaudei {}",
                            wave.description_lv()
                        ),
                    ),
                    Actor::InformationCentre,
                    (IDENT, IDENT),
                    &["p.13", wave.point],
                )
                .stage(Stage::FollowUp)
                .about(about)
                .per_subject()
                .fields(fields.iter().copied()),
                &[request],
            );
            let anonymise = b.add(
                step(
                    format!("follow-up-{slug}-anonymise"),
                    StepKind::FollowUpAnonymise,
                    ("Anonymise the follow-up answer on arrival, before any further processing", "Anonimizēt recidīva pārbaudes atbildi tūlīt pēc saņemšanas, pirms turpmākas apstrādes"),
                    Actor::Engine,
                    (IDENT, ANON),
                    &["p.20"],
                )
                .stage(Stage::FollowUp)
                .about(about)
                .per_subject(),
                &[answer],
            );
            let join = b.add(
                step(
                    format!("follow-up-{slug}-join"),
                    StepKind::FollowUpJoin,
                    ("Join the anonymised follow-up to the study dataset by the subject's pseudonym", "Pievienot anonimizēto recidīva pārbaudes atbildi pētījuma datu kopai pēc datu subjekta pseidonīma"),
                    Actor::Engine,
                    (ANON, ANON),
                    &["p.20"],
                )
                .stage(Stage::FollowUp)
                .about(about)
                .per_subject(),
                &[anonymise, dataset],
            );
            joins.push(join);
            // An internal study's researchers analyse as the waves arrive (interim reports):
            // a new version of the analysis dataset once every subject's wave is joined.
            if !external {
                releases.push(b.add(
                    step(
                        format!("follow-up-{slug}-release"),
                        StepKind::Release,
                        (
                            format!(
                                "Release the analysis dataset with the {} follow-up to the study workspace",
                                wave.name
                            ),
                            format!(
                                "Nodot pētījuma darbvietai analīzes datu kopu ar recidīva pārbaudi {}",
                                wave.description_lv()
                            ),
                        ),
                        Actor::Engine,
                        (ANON, ANON),
                        &["p.7", "p.20", "p.22.5", "p.24"],
                    )
                    .stage(Stage::FollowUp)
                    .about(about),
                    &[join],
                ));
            }
        }
    }

    // Direct contact with consenting subjects (MK403 p.31–32).
    let survey = spec.direct_contact.as_ref().map(|contact| {
        let fields: Vec<&str> = contact.fields.iter().map(|f| f.0.as_str()).collect();
        let consent = b.add_after(
            step(
                "consent",
                StepKind::ConsentCollection,
                ("Collect the consent and contact details of the subjects who agree to be contacted", "Savākt piekrišanu un kontaktinformāciju no datu subjektiem, kuri piekrīt saziņai"),
                Actor::ServiceResearcher,
                (IDENT, CONTACT),
                &["p.31", "p.31.1", "p.31.2", "p.31.3"],
            )
                        .stage(Stage::Contact)
            .fields(fields.iter().copied()),
            &[],
            &[approval],
        );
        let (before_survey, surveyor) = match contract_gate {
            Some(gate) => (
                b.add_after(
                    step(
                        "contact-transfer",
                        StepKind::ContactTransfer,
                        ("Transfer the consenting subjects' first name, surname and e-mail or phone by secure electronic means", "Nodot piekritušo datu subjektu vārdu, uzvārdu un e-pasta adresi vai tālruņa numuru drošā elektroniskā veidā"),
                        Actor::Engine,
                        (CONTACT, CONTACT),
                        &["p.30", "p.32"],
                    )
                    .stage(Stage::Contact)
                    .fields(fields.iter().copied()),
                    &[consent],
                    &[gate],
                ),
                Actor::ExternalResearcher,
            ),
            None => (consent, Actor::ServiceResearcher),
        };
        b.add(
            step(
                "survey",
                StepKind::Survey,
                ("Contact the consenting subjects; their answers are recorded without contact details", "Sazināties ar piekritušajiem datu subjektiem; viņu atbildes reģistrē bez kontaktinformācijas"),
                surveyor,
                (CONTACT, ANON),
                &["p.31"],
            )
            .stage(Stage::Contact),
            &[before_survey],
        )
    });

    // Analysis and release: anonymised data only (MK403 p.7, p.22.5–22.7, p.30).
    let mut inputs: Vec<NodeIndex> = if external {
        dataset.into_iter().chain(joins.iter().copied()).collect()
    } else {
        releases
    };
    if let (Some(gate), false) = (contract_gate, inputs.is_empty()) {
        let released = released_fields(spec);
        let transfer = b.add_after(
            step(
                "transfer",
                StepKind::Transfer,
                (
                    "Transfer the anonymised study dataset to the external researcher",
                    "Nodot anonimizēto pētījuma datu kopu pētījuma izstrādātājam",
                ),
                Actor::Engine,
                (ANON, ANON),
                &["p.30", "p.30.1", "p.30.2"],
            )
            .stage(Stage::Transfer)
            .fields(released),
            &inputs,
            &[gate],
        );
        inputs = vec![transfer];
    }
    inputs.extend(survey);
    // Without any data, the analysis still waits for the approval (and the contract).
    let analysis_order: Vec<NodeIndex> = if inputs.is_empty() {
        vec![contract_gate.unwrap_or(approval)]
    } else {
        Vec::new()
    };
    let (analysis_points, report_points, presentation_points): (
        &[&'static str],
        &[&'static str],
        &[&'static str],
    ) = if external {
        (
            &["p.22.5", "p.29"],
            &["p.22.6", "p.29"],
            &["p.22.7", "p.29"],
        )
    } else {
        (&["p.22.5"], &["p.22.6"], &["p.22.7"])
    };
    let analysis = b.add_after(
        step(
            "analysis",
            StepKind::Analysis,
            ("Analyse the anonymised data", "Analizēt anonimizētos datus"),
            analyst,
            (ANON, ANON),
            analysis_points,
        )
        .stage(Stage::Analysis),
        &inputs,
        &analysis_order,
    );
    let report = b.add(
        step(
            "report",
            StepKind::Report,
            (
                "Write the report and recommendations, without personal data",
                "Sagatavot pētījuma ziņojumu un rekomendācijas bez personas datiem",
            ),
            analyst,
            (ANON, ANON),
            report_points,
        )
        .stage(Stage::Report),
        &[analysis],
    );
    b.add(
        step(
            "presentation",
            StepKind::Presentation,
            (
                "Present the results, without personal data",
                "Prezentēt rezultātus bez personas datiem",
            ),
            analyst,
            (ANON, NONE),
            presentation_points,
        )
        .stage(Stage::Presentation),
        &[report],
    );
    let planned = spec.publication.as_ref().and_then(|p| p.planned_date);
    let notice = spec.uses_prison_administration().then(|| {
        let (rule, date) = notice_deadline(calendar, planned.map(|d| d.0));
        b.add(
            step(
                "prison-administration-notice",
                StepKind::PrisonAdministrationNotice,
                (
                    "Inform the Prison Administration of the study's results",
                    "Informēt Ieslodzījuma vietu pārvaldi par pētījuma rezultātiem",
                ),
                Actor::ServiceResearcher,
                (ANON, ANON),
                &["p.8"],
            )
            .deadline(DeadlineKind::PrisonAdministrationNotice, rule, date),
            &[report],
        )
    });
    if let Some(date) = planned {
        let mut points = vec!["p.22.7"];
        if notice.is_some() {
            points.insert(0, "p.8");
        }
        let order: Vec<NodeIndex> = notice.into_iter().collect();
        b.add_after(
            step(
                "publication",
                StepKind::Publication,
                ("Publish the results", "Publicēt rezultātus"),
                analyst,
                (ANON, NONE),
                &points,
            )
            .trigger(Trigger::AtDate { date: date.0 })
            .deadline(
                DeadlineKind::Publication,
                if notice.is_some() {
                    words(
                        "the planned publication date (MK403 p.22.7; the p.8 notice precedes it)",
                        "plānotais publicēšanas datums (MK403 22.7. p.; pirms tā — iepazīstināšana ar rezultātiem, 8. p.)",
                    )
                } else {
                    words(
                        "the planned publication date (MK403 p.22.7)",
                        "plānotais publicēšanas datums (MK403 22.7. p.)",
                    )
                },
                Some(date.0),
            ),
            &[report],
            &order,
        );
    }

    completion(&mut b, cohort);

    Plan {
        study: spec.id.clone(),
        version: spec.version.0,
        hash: crate::plan_hash(source, calendar),
        calendar_version: calendar.version().to_owned(),
        graph: b.graph,
    }
}

fn anchor_name(event: AnchorEvent) -> &'static str {
    match event {
        AnchorEvent::CompulsoryEducationalMeasure => "the compulsory educational measure",
        AnchorEvent::SentenceExecution => "sentence execution",
        AnchorEvent::Mediation => "the mediation",
    }
}

/// Acquisition, linkage, deletion of identifiers, quality check, other systems and
/// anonymisation. Returns the anonymisation step (the anonymised study dataset) and whether
/// any identifying data was acquired.
fn acquisition_and_linkage(b: &mut Builder<'_>, approval: NodeIndex) -> (Option<NodeIndex>, bool) {
    let spec = b.spec;
    let Some(scope) = &spec.data_scope else {
        return (None, false);
    };
    let requested = spec.requested_fields();
    let keys = |source: Source| -> Vec<&str> {
        requested
            .iter()
            .filter(|f| f.source == source)
            .map(|f| f.key)
            .collect()
    };
    let mut sources = Vec::new();
    let service_is = scope.service_is.as_ref().map(|is| {
        let (actor, title, points): (_, _, &[&'static str]) = match is.extraction {
            ServiceIsExtraction::Automated => (
                Actor::Engine,
                (
                    "Extract the sample from the Service IS (automated)",
                    "Atlasīt izlasi no dienesta informācijas sistēmas (automatizēti)",
                ),
                &["p.9", "p.10", "p.17.1"],
            ),
            ServiceIsExtraction::ManualExtraction => (
                Actor::ServiceResearcher,
                (
                    "Extract the sample from the Service IS by hand",
                    "Atlasīt izlasi no dienesta informācijas sistēmas manuāli",
                ),
                &["p.9", "p.21", "p.22.1"],
            ),
        };
        b.add_after(
            step(
                "acquire-service-is",
                StepKind::AcquireServiceIs,
                title,
                actor,
                (IDENT, IDENT),
                points,
            )
            .stage(Stage::Acquisition)
            .fields(keys(Source::ServiceIs)),
            &[],
            &[approval],
        )
    });
    sources.extend(service_is);
    // The Service requests; the institution answers (MK403 p.6, p.11–12).
    // Requests identify subjects by the Service IS's personal codes; without the Service IS
    // (SF105 explains) they wait for the approval only.
    let (request_data, request_order): (Vec<NodeIndex>, Vec<NodeIndex>) = match service_is {
        Some(is) => (vec![is], vec![]),
        None => (vec![], vec![approval]),
    };
    if let Some(ic) = &scope.information_centre {
        let (actor, (mode, mode_lv), points): (_, _, &[&'static str]) = match ic.exchange {
            Exchange::Automated => (
                Actor::Engine,
                ("automated", "automatizēti"),
                &["p.6", "p.10", "p.11", "p.12"],
            ),
            Exchange::SecureElectronic => (
                Actor::ServiceResearcher,
                ("secure electronic", "drošā elektroniskā veidā"),
                &["p.6", "p.10", "p.11", "p.12", "p.12.3"],
            ),
        };
        let fields = keys(Source::InformationCentre);
        let request = b.add_after(
            step(
                "information-centre-request",
                StepKind::Request,
                (
                    format!("Request the Punishment Register information from the Information Centre ({mode}), subjects by personal code and proceeding number"),
                    format!("Pieprasīt Informācijas centram Sodu reģistra informāciju ({mode_lv}), identificējot datu subjektus pēc personas koda un kriminālprocesa numura"),
                ),
                actor,
                (IDENT, IDENT),
                points,
            )
            .stage(Stage::Acquisition)
            .about(About::Registry { registry: Registry::InformationCentre })
            .fields(fields.iter().copied()),
            &request_data,
            &request_order,
        );
        sources.push(
            b.add(
                step(
                    "information-centre-answer",
                    StepKind::Answer,
                    (
                        "The Information Centre answers for each criminal proceeding",
                        "Informācijas centrs atbild par katru kriminālprocesu",
                    ),
                    Actor::InformationCentre,
                    (IDENT, IDENT),
                    &["p.13"],
                )
                .stage(Stage::Acquisition)
                .about(About::Registry {
                    registry: Registry::InformationCentre,
                })
                .fields(fields),
                &[request],
            ),
        );
    }
    if let Some(pa) = scope
        .prison_administration
        .as_ref()
        .filter(|pa| pa.rulings.is_some() || pa.resocialisation.is_some())
    {
        let (actor, (mode, mode_lv), mut points): (_, _, Vec<&'static str>) = match pa.exchange {
            Exchange::Automated => (
                Actor::Engine,
                ("automated", "automatizēti"),
                vec!["p.6", "p.10", "p.11", "p.12", "p.14.1"],
            ),
            Exchange::SecureElectronic => (
                Actor::ServiceResearcher,
                (
                    "secure electronic, as agreed",
                    "drošā elektroniskā veidā, kā vienojušās puses",
                ),
                vec!["p.6", "p.10", "p.11", "p.12", "p.12.3", "p.14.2"],
            ),
        };
        let mut fields = keys(Source::PrisonRulings);
        fields.extend(keys(Source::PrisonResocialisation));
        let request = b.add_after(
            step(
                "prison-administration-request",
                StepKind::Request,
                (
                    format!(
                        "Request the Prisoners' IS information from the Prison Administration ({mode})"
                    ),
                    format!(
                        "Pieprasīt Ieslodzījuma vietu pārvaldei Ieslodzīto informācijas sistēmas informāciju ({mode_lv})"
                    ),
                ),
                actor,
                (IDENT, IDENT),
                &points,
            )
            .stage(Stage::Acquisition)
            .about(About::Registry {
                registry: Registry::PrisonAdministration,
            })
            .fields(fields.iter().copied()),
            &request_data,
            &request_order,
        );
        points.clear();
        if pa.rulings.is_some() {
            points.push("p.15");
        }
        if pa.resocialisation.is_some() {
            points.push("p.16");
        }
        sources.push(
            b.add(
                step(
                    "prison-administration-answer",
                    StepKind::Answer,
                    ("The Prison Administration answers per court ruling and on resocialisation", "Ieslodzījuma vietu pārvalde atbild par katru tiesas nolēmumu un par resocializāciju"),
                    Actor::PrisonAdministration,
                    (IDENT, IDENT),
                    &points,
                )
                .stage(Stage::Acquisition)
                .about(About::Registry {
                    registry: Registry::PrisonAdministration,
                })
                .fields(fields),
                &[request],
            ),
        );
    }
    if sources.is_empty() {
        return (None, false);
    }
    let linked = sources.len() > 1 || service_is.is_none();
    let identifiers: Vec<&str> = {
        let mut v: Vec<&str> = requested
            .iter()
            .filter(|f| {
                catalogue::lookup(f.source, f.key)
                    .is_some_and(|c| c.class == FieldClass::Identifier)
            })
            .map(|f| f.key)
            .collect();
        dedup(&mut v);
        v
    };
    let before_delete = if linked {
        b.add(
            step(
                "merge-link",
                StepKind::MergeLink,
                ("Merge the answers with the Service's information into one study dataset and link each subject's records", "Apvienot atbildes ar dienesta informāciju vienā pētījuma datu kopā un sasaistīt katra datu subjekta ierakstus"),
                Actor::Engine,
                (IDENT, IDENT),
                &["p.17.1", "p.17.2"],
            )
            .stage(Stage::Linkage),
            &sources,
        )
    } else {
        sources[0]
    };
    let delete_points: &[&'static str] = if linked {
        &["p.7", "p.17.3", "p.22.3", "p.22.4"]
    } else {
        &["p.7", "p.22.3", "p.22.4"]
    };
    let delete = b.add(
        step(
            "delete-identifiers",
            StepKind::DeleteIdentifiers,
            if linked {
                (
                    "Irreversibly delete personal codes, proceeding and ruling numbers and case numbers right after linkage",
                    "Neatgriezeniski dzēst personas kodus, kriminālprocesu un nolēmumu numurus un lietu numurus uzreiz pēc sasaistes",
                )
            } else {
                (
                    "Irreversibly delete personal codes and case numbers",
                    "Neatgriezeniski dzēst personas kodus un lietu numurus",
                )
            },
            Actor::Engine,
            (IDENT, PSEUDO),
            delete_points,
        )
        .stage(Stage::Linkage)
        .fields(identifiers),
        &[before_delete],
    );
    let mut last = b.add(
        step(
            "quality-check",
            StepKind::QualityCheck,
            (
                "Check the study dataset's quality and correct it",
                "Pārbaudīt pētījuma datu kopas kvalitāti un to labot",
            ),
            Actor::ServiceResearcher,
            (PSEUDO, PSEUDO),
            &["p.18", "p.22.2"],
        )
        .stage(Stage::QualityCheck),
        &[delete],
    );
    // Identifying processing by service researchers (p.21) comes before any exchange with
    // other institutions' systems: after those, the Service IS anonymises the information
    // before it reaches service researchers (p.24).
    let anonymisation = spec.anonymisation.as_ref();
    if anonymisation.and_then(|a| a.purpose_reachable_with_anonymised_data) == Some(false) {
        last = b.add(
            step(
                "identifiable-processing",
                StepKind::IdentifiableProcessing,
                ("Process the data that the purpose needs before anonymisation (service researchers only)", "Apstrādāt mērķim nepieciešamos datus pirms anonimizēšanas (tikai dienesta pētnieki)"),
                Actor::ServiceResearcher,
                (PSEUDO, PSEUDO),
                &["p.7", "p.21"],
            ),
            &[last],
        );
    }
    let other = &scope.other_systems;
    for (i, system) in other.iter().enumerate() {
        let (what, what_lv, point) = match system.operation {
            OtherSystemOperation::QualityCheck => (
                "Check the study data against",
                "Pārbaudīt pētījuma datus, salīdzinot ar",
                "p.23.1",
            ),
            OtherSystemOperation::Supplement => (
                "Supplement the study data from",
                "Papildināt pētījuma datus no",
                "p.23.2",
            ),
        };
        last = b.add(
            step(
                format!("other-system-{}", i + 1),
                StepKind::OtherSystem,
                (
                    format!("{what} {}", system.system),
                    format!("{what_lv}: {}", system.system),
                ),
                Actor::Engine,
                (PSEUDO, PSEUDO),
                &["p.23", point],
            )
            .stage(Stage::Supplementation),
            &[last],
        );
    }
    let mut points = vec!["p.7"];
    if !other.is_empty() {
        points.push("p.24");
    }
    let k = anonymisation.map_or(0, |a| a.k.0);
    let title = if k > 0 {
        (
            format!(
                "Anonymise the study dataset: random study IDs, dates by the policy, k ≥ {k} over the quasi-identifiers"
            ),
            format!(
                "Anonimizēt pētījuma datu kopu: nejauši pētījuma ID, datumi pēc politikas, k ≥ {k} pēc kvaziidentifikatoriem"
            ),
        )
    } else {
        (
            "Anonymise the study dataset".to_owned(),
            "Anonimizēt pētījuma datu kopu".to_owned(),
        )
    };
    let dataset = b.add(
        step(
            "anonymise",
            StepKind::Anonymise,
            title,
            Actor::Engine,
            (PSEUDO, ANON),
            &points,
        )
        .stage(Stage::Anonymisation),
        &[last],
    );
    (Some(dataset), true)
}

fn dedup(v: &mut Vec<&str>) {
    let mut seen = std::collections::HashSet::new();
    v.retain(|k| seen.insert(*k));
}

/// The columns a release may carry: every requested field that is not an identifier, and
/// the follow-up fields.
fn released_fields(spec: &Spec) -> Vec<String> {
    let mut v: Vec<&str> = spec
        .requested_fields()
        .iter()
        .filter(|f| {
            catalogue::lookup(f.source, f.key).is_some_and(|c| c.class != FieldClass::Identifier)
        })
        .map(|f| f.key)
        .collect();
    if let Some(f) = &spec.follow_up {
        v.extend(f.fields.iter().map(|f| f.0.as_str()));
    }
    dedup(&mut v);
    v.into_iter().map(str::to_owned).collect()
}

/// The day the Prison Administration must have the results by when publication is planned on
/// `planned` (MK403 p.8): the 10th working day before it, the publication day not counted, with
/// the days passed over. The one count of the plan, the editor and the pages.
pub fn prison_notice_day(
    calendar: &Calendar,
    planned: Date,
) -> Result<studyflow_calendar::Deadline, studyflow_calendar::OutOfRange> {
    calendar.deadline_before(planned, NOTICE_WORKING_DAYS, Reading::NthWorkingDayBefore)
}

/// The p.8 notice: the 10th working day before the planned publication, the publication day
/// not counted.
fn notice_deadline(calendar: &Calendar, planned: Option<Date>) -> (Words, Option<Date>) {
    let Some(planned) = planned else {
        return (
            words(
                "no later than the 10th working day before publication (MK403 p.8); no publication date is planned yet",
                "ne vēlāk kā 10. darbdienā pirms publicēšanas (MK403 8. p.); publicēšanas datums vēl nav plānots",
            ),
            None,
        );
    };
    match prison_notice_day(calendar, planned) {
        Ok(d) => {
            let mut rule = format!(
                "no later than the 10th working day before the planned publication on {planned} (MK403 p.8), the publication day not counted"
            );
            let mut rule_lv = format!(
                "ne vēlāk kā 10. darbdienā pirms plānotās publicēšanas dienas {planned} (MK403 8. p.), publicēšanas dienu neskaitot"
            );
            let days_off: Vec<_> = d
                .skipped
                .iter()
                .filter(|(_, day)| !matches!(day, studyflow_calendar::Day::Weekend))
                .collect();
            if !days_off.is_empty() {
                let list = |describe: fn(&studyflow_calendar::Day) -> String| {
                    days_off
                        .iter()
                        .map(|(date, day)| format!("{date} {}", describe(day)))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                rule.push_str(&format!(
                    "; days off passed over: {}",
                    list(studyflow_calendar::Day::describe)
                ));
                rule_lv.push_str(&format!(
                    "; izlaistās brīvdienas: {}",
                    list(studyflow_calendar::Day::describe_lv)
                ));
            }
            ((rule, rule_lv), Some(d.date))
        }
        Err(e) => (
            (
                format!(
                    "no later than the 10th working day before the planned publication on {planned} (MK403 p.8); not computed: {e}"
                ),
                format!(
                    "ne vēlāk kā 10. darbdienā pirms plānotās publicēšanas dienas {planned} (MK403 8. p.); nav aprēķināts: {} ir ārpus kalendāra gadiem (2000–2100)",
                    e.0
                ),
            ),
            None,
        ),
    }
}

/// Destruction of everything identifying and the retention of anonymised data (MK403 p.26,
/// p.27, p.34, p.35). "At completion" is an order edge from every step that ends a branch of
/// the plan, so nothing else of the study is still to run when such a step runs.
fn completion(b: &mut Builder<'_>, acquired: bool) {
    let spec = b.spec;
    let end = spec.study_end().map(|d| d.0);
    let retention = spec.retention.as_ref();
    // Everything of the study before any completion step.
    let sinks = b.sinks();
    if acquired || spec.direct_contact.is_some() {
        // As soon as no step needs personal data any more, and no later than the spec's date
        // or the study's end (p.26: only as long as needed).
        let by = retention
            .and_then(|r| r.identifying_data_deleted_by)
            .map(|d| d.0);
        let (rule, date) = match (by, end) {
            (Some(by), _) => (
                (
                    format!(
                        "by {by}, the date the spec sets, and never after the study ends (MK403 p.26)"
                    ),
                    format!(
                        "līdz {by}, specifikācijā noteiktajam datumam, bet ne vēlāk kā pētījuma beigās (MK403 26. p.)"
                    ),
                ),
                Some(by),
            ),
            (None, Some(end)) => (
                (
                    format!(
                        "once no step needs it, at the latest on the study's last deadline {end} (MK403 p.26)"
                    ),
                    format!(
                        "tiklīdz neviens solis to vairs neizmanto, vēlākais pētījuma pēdējā termiņā {end} (MK403 26. p.)"
                    ),
                ),
                Some(end),
            ),
            (None, None) => (
                words(
                    "once no step needs it, and at completion or termination at the latest (MK403 p.26)",
                    "tiklīdz neviens solis to vairs neizmanto, vēlākais pētījuma pabeigšanas vai pārtraukšanas brīdī (MK403 26. p.)",
                ),
                None,
            ),
        };
        let mut holders = b.last_holders_of_personal_data();
        // And after the follow-up joins: until a subject's wave is joined, its anonymised
        // answer waits under its run pseudonym, which only the vault links to the study ID;
        // the destruction removes what a join never took (a terminated study's).
        holders.extend(
            b.graph
                .node_indices()
                .filter(|n| b.graph[*n].kind == StepKind::FollowUpJoin),
        );
        b.add_after(
            step(
                "destroy-identifying",
                StepKind::DestroyIdentifying,
                ("Destroy everything identifying — remaining identifiers, contact details, the pseudonym vault, the study's keys — once no step needs it, and at once on termination", "Iznīcināt visu identificējošo — atlikušos identifikatorus, kontaktinformāciju, pseidonīmu glabātuvi, pētījuma atslēgas —, tiklīdz neviens solis to vairs neizmanto, un nekavējoties, ja pētījumu pārtrauc"),
                Actor::Engine,
                (IDENT, NONE),
                &["p.26"],
            )
            .deadline(DeadlineKind::IdentifyingDataDeletion, rule, date),
            &[],
            &holders,
        );
    }
    if spec.external.is_some() && spec.direct_contact.is_some() {
        let rule = match end {
            Some(end) => (
                format!(
                    "at completion or termination, at the latest on the study's last deadline {end} (MK403 p.34)"
                ),
                format!(
                    "pētījuma pabeigšanas vai pārtraukšanas brīdī, vēlākais pētījuma pēdējā termiņā {end} (MK403 34. p.)"
                ),
            ),
            None => words(
                "at completion or termination (MK403 p.34)",
                "pētījuma pabeigšanas vai pārtraukšanas brīdī (MK403 34. p.)",
            ),
        };
        b.add_after(
            step(
                "external-destroy-contact",
                StepKind::DestroyIdentifying,
                (
                    "The external researcher deletes the contact details they received",
                    "Pētījuma izstrādātājs dzēš saņemto kontaktinformāciju",
                ),
                Actor::ExternalResearcher,
                (CONTACT, NONE),
                &["p.34"],
            )
            .trigger(Trigger::AtCompletion)
            .deadline(DeadlineKind::IdentifyingDataDeletion, rule, end),
            &[],
            &sinks,
        );
    }
    if spec.external.is_some() {
        let copy = retention.and_then(|r| r.external_researcher_copy.as_ref());
        let term = spec
            .external
            .as_ref()
            .and_then(|e| e.contract.as_ref())
            .and_then(|c| c.term_ends_on)
            .map(|d| d.0);
        let (rule, date) = match copy.map(|c| (c.keep, c.until.map(|d| d.0))) {
            Some((Keep::UntilDate, Some(until))) => (
                (
                    format!("kept until {until} (MK403 p.35)"),
                    format!("glabā līdz {until} (MK403 35. p.)"),
                ),
                Some(until),
            ),
            Some((Keep::UntilDate, None))
            | Some((Keep::Permanent, _))
            | Some((Keep::UntilStudyEnd, _))
            | None => match (end, term) {
                (Some(end), _) => (
                    (
                        format!("kept until the study ends, {end} (MK403 p.35)"),
                        format!("glabā līdz pētījuma beigām, {end} (MK403 35. p.)"),
                    ),
                    Some(end),
                ),
                (None, Some(term)) => (
                    (
                        format!("kept until the contract's term ends, {term} (MK403 p.35)"),
                        format!("glabā līdz līguma termiņa beigām, {term} (MK403 35. p.)"),
                    ),
                    Some(term),
                ),
                (None, None) => (
                    words(
                        "kept until the study ends (MK403 p.35)",
                        "glabā līdz pētījuma beigām (MK403 35. p.)",
                    ),
                    None,
                ),
            },
        };
        let mut s = step(
            "external-copy-deletion",
            StepKind::ExternalCopyDeletion,
            ("The external researcher deletes the anonymised information and what they created from it", "Pētījuma izstrādātājs dzēš anonimizēto informāciju un to, ko no tās radījis"),
            Actor::ExternalResearcher,
            (ANON, NONE),
            &["p.35"],
        )
        .deadline(DeadlineKind::ExternalCopyDeletion, rule, date);
        // Kept until the date: not deleted before it.
        s = match date {
            Some(d) => s.trigger(Trigger::AtDate { date: d }),
            None => s.trigger(Trigger::AtCompletion),
        };
        b.add_after(s, &[], &sinks);
    }
    if acquired {
        let term = retention.and_then(|r| r.anonymised_data.as_ref());
        let (title, trigger, deadline) = match term.map(|t| (t.keep, t.until.map(|d| d.0))) {
            Some((Keep::Permanent, _)) | None => (
                (
                    "Keep the anonymised study dataset permanently",
                    "Glabāt anonimizēto pētījuma datu kopu pastāvīgi",
                ),
                Trigger::AtCompletion,
                None,
            ),
            Some((Keep::UntilStudyEnd, _)) => (
                (
                    "Delete the anonymised study dataset when the study ends",
                    "Dzēst anonimizēto pētījuma datu kopu, kad pētījums beidzas",
                ),
                Trigger::AtCompletion,
                Some((
                    {
                        let on = end.map(|e| format!(", {e}")).unwrap_or_default();
                        (
                            format!("deleted when the study ends{on} (MK403 p.27)"),
                            format!("dzēš, kad pētījums beidzas{on} (MK403 27. p.)"),
                        )
                    },
                    end,
                )),
            ),
            Some((Keep::UntilDate, until)) => (
                (
                    "Delete the anonymised study dataset at the end of its retention period",
                    "Dzēst anonimizēto pētījuma datu kopu tās glabāšanas termiņa beigās",
                ),
                until.map_or(Trigger::AtCompletion, |date| Trigger::AtDate { date }),
                Some((
                    match until {
                        Some(d) => (
                            format!("deleted on {d} (MK403 p.27), not before"),
                            format!("dzēš {d} (MK403 27. p.), ne agrāk"),
                        ),
                        None => words(
                            "deleted on the date the Service sets (MK403 p.27), not before",
                            "dzēš dienesta noteiktajā datumā (MK403 27. p.), ne agrāk",
                        ),
                    },
                    until,
                )),
            ),
        };
        let mut s = step(
            "anonymised-retention",
            StepKind::AnonymisedRetention,
            title,
            Actor::Engine,
            (ANON, NONE),
            &["p.27"],
        )
        .trigger(trigger);
        if let Some((rule, date)) = deadline {
            s = s.deadline(DeadlineKind::AnonymisedDataRetention, rule, date);
        }
        b.add_after(s, &[], &sinks);
    }
}
