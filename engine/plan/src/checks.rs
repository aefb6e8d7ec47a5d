//! Plan-level checks (SF2xx): the data-class flow through the DAG and the p.8 notice date.
//!
//! The flow checks verify any [`Plan`], not only what the compiler meant to build: they are the
//! second line after the compiler, like a type checker after code generation, and the tests
//! break plans on purpose to show each one fires. What a step *receives* is what its
//! dependencies emit; a step emits its own output plus, unless it transforms its input
//! (anonymisation, deletion of identifiers, a survey recorded without contact details), what it
//! received.

use jiff::civil::Date;
use petgraph::Direction::{Incoming, Outgoing};
use petgraph::graph::NodeIndex;
use studyflow_spec::model::{Spec, Stage};
use studyflow_spec::rules::RuleDoc;
use studyflow_spec::{Diagnostic, Severity};

use petgraph::visit::EdgeRef;

use crate::model::{Actor, DataClass, Edge, Plan, StepKind};

/// A plan-level rule: its entry in the reference and SARIF, the same as a spec rule's.
pub type PlanRule = RuleDoc<'static>;

/// Findings of a plan rule, each said in English and in Latvian (the Latvian pages show the
/// latter): no finding can be made without its Latvian.
trait Report {
    fn finding(&self, pointer: &str, message: String, message_lv: String) -> Diagnostic;

    /// A finding citing only the points its message names (a rule of several points).
    fn finding_of(
        &self,
        points: &[&'static str],
        pointer: &str,
        message: String,
        message_lv: String,
    ) -> Diagnostic;
}

impl Report for PlanRule {
    /// A finding about a spec node, or (empty pointer) about the plan as a whole, shown at the
    /// start of the file.
    fn finding(&self, pointer: &str, message: String, message_lv: String) -> Diagnostic {
        let d = Diagnostic::new(self.code, self.name, self.severity, message)
            .with_latvian(message_lv)
            .citing(self.points.iter().copied())
            .at(pointer);
        if pointer.is_empty() {
            d.with_span(studyflow_spec::Span::START)
        } else {
            d
        }
    }

    fn finding_of(
        &self,
        points: &[&'static str],
        pointer: &str,
        message: String,
        message_lv: String,
    ) -> Diagnostic {
        Diagnostic::new(self.code, self.name, self.severity, message)
            .with_latvian(message_lv)
            .citing(points.iter().copied())
            .at(pointer)
    }
}

pub static STRUCTURE: PlanRule = RuleDoc {
    code: "SF201",
    name: "plan-structure",
    severity: Severity::Error,
    points: &["p.3", "p.3.4"],
    summary: "The plan is acyclic, has one start (the approval) from which every step is reached, and step ids are unique.",
    summary_lv: "Plānā nav cikla, tam ir viens sākums (apstiprināšana), no kura sasniedzams katrs solis, un soļu identifikatori ir unikāli.",
    explanation: "The engine runs the approved plan (p.3) step by step in the order of its phases \
(p.3.4): a cycle would never finish, a second start would run without approval, and a duplicate \
id would make two steps one in the engine's records. A finding here is a defect of the \
compiler, reported rather than run.",
};

pub static EXTERNAL_DATA: PlanRule = RuleDoc {
    code: "SF202",
    name: "external-researcher-data",
    severity: Severity::Error,
    points: &["p.21", "p.30", "p.32"],
    summary: "No identifying, pseudonymised or contact data reaches a step of the external researcher, except contact details through the consented contact transfer.",
    summary_lv: "Identificējoši, pseidonimizēti vai kontaktinformācijas dati nenonāk ne pie viena pētījuma izstrādātāja soļa, izņemot kontaktinformāciju, ko nodod ar piekrišanu.",
    explanation: "Identifying information is processed by service researchers only (p.21); the \
external researcher receives anonymised information after the p.30 gates, and the contact details \
of consenting subjects — first name, surname, e-mail or phone — through the consented contact \
transfer (p.32), nothing else. The check follows every path into a step performed by the \
external researcher.",
};

pub static ANONYMISE_FIRST: PlanRule = RuleDoc {
    code: "SF203",
    name: "anonymise-before-analysis",
    severity: Severity::Error,
    points: &["p.7", "p.20", "p.22.5", "p.22.6", "p.22.7", "p.24"],
    summary: "Analysis, report, presentation, the p.8 notice, publication and transfer receive anonymised data only; a follow-up answer goes to anonymisation first.",
    summary_lv: "Analīze, ziņojums, prezentācija, iepazīstināšana ar rezultātiem (8. p.), publicēšana un nodošana saņem tikai anonimizētus datus; recidīva pārbaudes atbilde vispirms nonāk anonimizēšanā.",
    explanation: "Analysis, the report and recommendations and their presentation are done without \
personal data (p.22.5–22.7); the Service anonymises after verification and linkage (p.7) and \
after exchanges with other systems (p.24); follow-up answers are anonymised before any further \
processing (p.20). Each of these steps must have an anonymisation before it, no personal data \
may reach it, and a follow-up answer's only successor is its anonymisation. While the spec \
has no `anonymisation` section — a spec being written — the schema reports the missing \
section (SF011) and this check waits for it.",
};

pub static DELETE_AFTER_LINKAGE: PlanRule = RuleDoc {
    code: "SF204",
    name: "delete-after-linkage",
    severity: Severity::Error,
    points: &["p.17.3", "p.22.3", "p.22.4"],
    summary: "Personal codes and proceeding/ruling numbers are deleted right after linkage: every answer is linked, and linkage is followed by the deletion and nothing else.",
    summary_lv: "Personas kodus un kriminālprocesu un nolēmumu numurus dzēš tūlīt pēc savienošanas: katru atbildi savieno, un savienošanai seko dzēšana un nekas cits.",
    explanation: "After automated linkage the Service IS irreversibly deletes the p.12.1 and p.12.2 \
data (p.17.3). Every answer from the Information Centre or the Prison Administration must flow \
into the merge and linkage, whose only successor is the deletion of identifiers; data acquired \
without linkage goes to the deletion directly (p.22.3–22.4).",
};

pub static TRANSFER_GATE: PlanRule = RuleDoc {
    code: "SF205",
    name: "transfer-gate",
    severity: Severity::Error,
    points: &["p.5", "p.30.1", "p.30.2"],
    summary: "Data reaches the external researcher only through a transfer step that follows the approval and the contract-and-NDA gate.",
    summary_lv: "Dati nonāk pie pētījuma izstrādātāja tikai ar nodošanas soli, kas seko apstiprināšanai un līguma un neizpaušanas apliecinājumu pārbaudei.",
    explanation: "The Service transfers information only after the application is approved (p.30.1) \
and the contract is concluded with the non-disclosure declarations signed (p.5, p.30.2). Every \
edge that carries data into a step of the external researcher must start at a transfer step, and \
every transfer step must come after the approval and the contract gate.",
};

pub static DESTRUCTION: PlanRule = RuleDoc {
    code: "SF206",
    name: "destruction",
    severity: Severity::Error,
    points: &["p.26", "p.34"],
    summary: "Everything identifying, pseudonymised or contact-bearing is destroyed by a destruction step at completion or termination.",
    summary_lv: "Visus identificējošos, pseidonimizētos vai kontaktinformācijas datus iznīcina iznīcināšanas solis pētījuma pabeigšanas vai pārtraukšanas brīdī.",
    explanation: "Personal data and identifying information are kept no longer than the study's \
completion or termination (p.26, p.34). Every step that produces such data must lead to a \
destruction step.",
};

pub static NOTICE_DATE: PlanRule = RuleDoc {
    code: "SF207",
    name: "prison-notice-date",
    severity: Severity::Warning,
    points: &["p.8"],
    summary: "The p.8 notice date is known and not in the past, and a phase covering the analysis says when the results exist.",
    summary_lv: "Iepazīstināšanas ar rezultātiem (8. p.) datums ir zināms un nav pagātnē, un posms, kas aptver analīzi, nosaka, kad rezultāti ir gatavi.",
    explanation: "When Prison Administration information is used, the Service informs the Prison \
Administration of the results no later than the 10th working day before publication (p.8), \
counted on the Latvian working-day calendar (the publication day not counted; days off passed \
over). A warning when the date has passed (relative to `--today`), when no phase covers `analysis` \
so that the results cannot be checked to exist by then (SF210 is the error when they would \
not), or when the date cannot be computed.",
};

pub static PREREQUISITE_DATES: PlanRule = RuleDoc {
    code: "SF208",
    name: "prerequisite-dates",
    severity: Severity::Error,
    points: &["p.4.4", "p.5", "p.14.2", "p.21", "p.25.2", "p.29", "p.30.2"],
    summary: "A dated prerequisite comes on or before the first step it gates: the ethics committee's permission no later than today and the plan's first dated step, the contract and the non-disclosure declarations before the first hand-over to the external researcher, the contract's term not ending before it is concluded or before the last hand-over, the Prison Administration agreement before the acquisition, each service researcher's designation before identifying data is first processed.",
    summary_lv: "Datēts priekšnosacījums ir izpildīts ne vēlāk kā pirmajā solī, ko tas atļauj: pētījumu ētikas komisijas atļauja ne vēlāk kā šodien un plāna pirmajā datētajā solī, līgums un neizpaušanas apliecinājumi pirms pirmās nodošanas pētījuma izstrādātājam, līguma termiņš nebeidzas pirms tā noslēgšanas vai pēdējās nodošanas, Ieslodzījuma vietu pārvaldes vienošanās pirms informācijas iegūšanas, katra dienesta pētnieka norīkojums pirms pirmās identificējošu datu apstrādes.",
    explanation: "The Service hands information over to the external researcher only once the \
contract is concluded and the non-disclosure declarations are signed (p.30.2), and the \
researcher processes it under that contract (p.29): both dates lie on or before the start of the \
first hand-over (the transfer, the consented contact transfer), and the contract's term does not \
end before it is concluded or before the last hand-over starts. The Prison Administration sends \
information by secure electronic means having first agreed its volume, availability and \
deadlines (p.14.2): the agreement lies on or before the start of the acquisition. Identifying \
information is processed by the service researchers the Service has designated (p.21, p.25.2): \
a service researcher's designation lies on or before the first step that processes identifying \
data. The application states the permission of a research ethics committee that has reviewed \
the proposal (p.4.4): its date is not after the day the spec is checked (`--today`; the day of \
submission in the engine), and, being a permission to conduct the study, not after the start of \
the plan's first dated step. A step \
starts when the earliest phase covering its stage starts (p.3.4); a step whose stage no phase \
covers has no date and is not checked. The same day is allowed.",
};

pub static CALENDAR_RANGE: PlanRule = RuleDoc {
    code: "SF209",
    name: "calendar-range",
    severity: Severity::Error,
    points: &["p.3.4", "p.8"],
    summary: "Every date of the spec lies within the years the Latvian calendar knows (2000–2100).",
    summary_lv: "Katrs specifikācijas datums ir gados, ko zina Latvijas kalendārs (2000–2100).",
    explanation: "The plan counts deadlines on the Latvian working-day calendar (the p.8 notice, \
the phases' deadlines, p.3.4), which studyflow holds for 2000–2100. A date outside those years \
could not be counted: a study with such a date would validate and then wait for ever at a gate \
it can never pass. Each such date is an error at its place in the spec.",
};

pub static NOTICE_AFTER_RESULTS: PlanRule = RuleDoc {
    code: "SF210",
    name: "notice-needs-results",
    severity: Severity::Error,
    points: &["p.8"],
    summary: "The analysis that produces the results ends on or before the p.8 notice day.",
    summary_lv: "Analīze, kurā top rezultāti, beidzas ne vēlāk kā iepazīstināšanas ar rezultātiem (8. p.) dienā.",
    explanation: "The Service informs the Prison Administration of the results no later than the \
10th working day before publication (p.8). When the phases covering `analysis` end after that \
day, the spec's own dates make the notice impossible: the results would not exist when they \
must be given. An analysis ending on the notice day itself is allowed.",
};

pub static ANONYMISED_AFTER_OTHER_SYSTEMS: PlanRule = RuleDoc {
    code: "SF211",
    name: "anonymised-after-other-systems",
    severity: Severity::Error,
    points: &["p.21", "p.23", "p.24"],
    summary: "After an exchange with another institution's system, no step of a service researcher receives identifying or pseudonymised data.",
    summary_lv: "Pēc apmaiņas ar citas iestādes informācijas sistēmu neviens dienesta pētnieka solis nesaņem identificējošus vai pseidonimizētus datus.",
    explanation: "When the Service IS checks or supplements the study data through other institutions' systems (p.23.1, p.23.2), it anonymises the information before handing it to the service researchers and the study's authors, deleting the personal data and the identifiers the other systems assign (p.24). Identifying processing by service researchers (p.21) therefore comes before those exchanges, never after them: a step performed by a service researcher that follows an exchange with another system receives anonymised data only.",
};

/// The plan-level rules, in code order.
pub static RULES: &[&PlanRule] = &[
    &STRUCTURE,
    &EXTERNAL_DATA,
    &ANONYMISE_FIRST,
    &DELETE_AFTER_LINKAGE,
    &TRANSFER_GATE,
    &DESTRUCTION,
    &NOTICE_DATE,
    &PREREQUISITE_DATES,
    &CALENDAR_RANGE,
    &NOTICE_AFTER_RESULTS,
    &ANONYMISED_AFTER_OTHER_SYSTEMS,
];

/// Classes as a bit set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Classes(u8);

impl Classes {
    fn of(c: DataClass) -> Classes {
        Classes(1 << (c as u8))
    }
    fn union(self, other: Classes) -> Classes {
        Classes(self.0 | other.0)
    }
    fn contains(self, c: DataClass) -> bool {
        self.0 & Classes::of(c).0 != 0
    }
    /// The personal classes in the set, in a fixed order.
    pub fn personal(self) -> Vec<DataClass> {
        DataClass::ALL
            .into_iter()
            .filter(|c| c.is_personal() && self.contains(*c))
            .collect()
    }
}

/// What each step receives and emits, by node index; `None` when the graph has a cycle.
pub fn flow(plan: &Plan) -> Option<(Vec<Classes>, Vec<Classes>)> {
    let g = &plan.graph;
    let order = plan.topological()?;
    let mut received = vec![Classes::default(); g.node_count()];
    let mut emitted = vec![Classes::default(); g.node_count()];
    for n in order {
        let r = g
            .edges_directed(n, Incoming)
            .filter(|e| *e.weight() == Edge::Data)
            .fold(Classes::default(), |acc, e| {
                acc.union(emitted[e.source().index()])
            });
        received[n.index()] = r;
        let step = &g[n];
        let own = Classes::of(step.data_out);
        emitted[n.index()] = if step.kind.transforms() {
            own
        } else {
            own.union(r)
        };
    }
    Some((received, emitted))
}

fn names(classes: &[DataClass]) -> String {
    let v: Vec<&str> = classes.iter().map(|c| c.as_str()).collect();
    v.join(" and ")
}

/// [`names`] in Latvian, as the adjectives before "dati" (`identificējoši un
/// pseidonimizēti dati`), or with `definite` before "dati" of a known step (`identificējošie
/// dati`).
fn names_lv(classes: &[DataClass], definite: bool) -> String {
    let v: Vec<&str> = classes
        .iter()
        .map(|c| match (c, definite) {
            (DataClass::None, _) => "bez personas datiem",
            (DataClass::Identifying, false) => "identificējoši",
            (DataClass::Identifying, true) => "identificējošie",
            (DataClass::Pseudonymised, false) => "pseidonimizēti",
            (DataClass::Pseudonymised, true) => "pseidonimizētie",
            (DataClass::Anonymised, false) => "anonimizēti",
            (DataClass::Anonymised, true) => "anonimizētie",
            (DataClass::Contact, _) => "kontaktinformācijas",
        })
        .collect();
    v.join(" un ")
}

/// Who performs a step, in Latvian.
fn actor_lv(actor: Actor) -> &'static str {
    match actor {
        Actor::Engine => "studyflow",
        Actor::ServiceResearcher => "dienesta pētnieks",
        Actor::Approver => "apstiprinātājs",
        Actor::ExternalResearcher => "pētījuma izstrādātājs",
        Actor::InformationCentre => "Informācijas centrs",
        Actor::PrisonAdministration => "Ieslodzījuma vietu pārvalde",
    }
}

/// Whether `to` is reachable from `from` (following edges forwards).
fn reaches(plan: &Plan, from: NodeIndex, to: impl Fn(NodeIndex) -> bool) -> bool {
    let mut dfs = petgraph::visit::Dfs::new(&plan.graph, from);
    while let Some(n) = dfs.next(&plan.graph) {
        if n != from && to(n) {
            return true;
        }
    }
    false
}

/// The ancestors of `n` (not `n` itself).
fn has_ancestor(plan: &Plan, n: NodeIndex, pred: impl Fn(NodeIndex) -> bool) -> bool {
    let reversed = petgraph::visit::Reversed(&plan.graph);
    let mut dfs = petgraph::visit::Dfs::new(reversed, n);
    while let Some(m) = dfs.next(reversed) {
        if m != n && pred(m) {
            return true;
        }
    }
    false
}

/// The flow and structure checks (SF201–SF206, SF211), on any plan.
pub fn verify(plan: &Plan) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let g = &plan.graph;
    let id = |n: NodeIndex| g[n].id.as_str();

    // SF201
    let mut seen = std::collections::HashSet::new();
    for s in g.node_weights() {
        if !seen.insert(s.id.as_str()) {
            out.push(STRUCTURE.finding(
                "",
                format!("step id `{}` is used twice", s.id),
                format!("soļa identifikators `{}` ir izmantots divreiz", s.id),
            ));
        }
    }
    let starts: Vec<NodeIndex> = g
        .node_indices()
        .filter(|n| g.neighbors_directed(*n, Incoming).next().is_none())
        .collect();
    match starts.as_slice() {
        [start] if g[*start].kind == StepKind::Approval => {
            let mut dfs = petgraph::visit::Dfs::new(g, *start);
            let mut reached = 0;
            while dfs.next(g).is_some() {
                reached += 1;
            }
            if reached < g.node_count() {
                out.push(STRUCTURE.finding(
                    "",
                    format!(
                        "{} step(s) cannot be reached from the approval",
                        g.node_count() - reached
                    ),
                    format!(
                        "no apstiprināšanas nav sasniedzami soļi: {}",
                        g.node_count() - reached
                    ),
                ));
            }
        }
        [start] => out.push(STRUCTURE.finding(
            "",
            format!(
                "the plan starts at `{}`, not at the approval of the application",
                id(*start)
            ),
            format!(
                "plāns sākas ar `{}`, nevis ar pētījuma pieteikuma apstiprināšanu",
                id(*start)
            ),
        )),
        _ => {
            let ids: Vec<&str> = starts.iter().map(|n| id(*n)).collect();
            out.push(STRUCTURE.finding(
                "",
                format!(
                    "the plan must have one start, the approval; it has {}: {}",
                    ids.len(),
                    ids.join(", ")
                ),
                format!(
                    "plānam jābūt vienam sākumam — apstiprināšanai —, bet sākumu skaits ir {}: {}",
                    ids.len(),
                    ids.join(", ")
                ),
            ));
        }
    }
    let Some((received, emitted)) = flow(plan) else {
        out.push(STRUCTURE.finding(
            "",
            "the plan has a cycle, so its steps cannot be ordered".into(),
            "plānā ir cikls, tāpēc tā soļus nevar sakārtot secībā".into(),
        ));
        return out;
    };

    for e in g.edge_indices() {
        let Some((u, v)) = g.edge_endpoints(e) else {
            continue;
        };
        if g[e] == Edge::Order {
            continue;
        }
        if g[v].actor != Actor::ExternalResearcher || g[u].actor == Actor::ExternalResearcher {
            continue;
        }
        // SF202: what crosses into the external researcher's hands.
        let mut bad = emitted[u.index()].personal();
        if g[u].kind == StepKind::ContactTransfer {
            bad.retain(|c| *c != DataClass::Contact);
        }
        if !bad.is_empty() {
            out.push(EXTERNAL_DATA.finding(
                "",
                format!(
                    "{} data reaches `{}` ({}) from `{}`",
                    names(&bad),
                    id(v),
                    g[v].actor.as_str().replace('_', " "),
                    id(u)
                ),
                format!(
                    "{} dati nonāk pie `{}` ({}) no `{}`",
                    names_lv(&bad, false),
                    id(v),
                    actor_lv(g[v].actor),
                    id(u)
                ),
            ));
        }
        // SF205: only through a transfer step.
        let carries = emitted[u.index()].0 & !Classes::of(DataClass::None).0 != 0;
        if carries && !g[u].kind.is_transfer() {
            out.push(TRANSFER_GATE.finding(
                "",
                format!(
                    "data reaches `{}` (external researcher) from `{}`, which is not a transfer step",
                    id(v),
                    id(u)
                ),
                format!(
                    "dati nonāk pie `{}` (pētījuma izstrādātājs) no `{}`, kas nav nodošanas solis",
                    id(v),
                    id(u)
                ),
            ));
        }
    }
    for n in g.node_indices() {
        let step = &g[n];
        if step.kind.is_transfer() {
            // (what must come before, in English and in Latvian's dative after "seko")
            for (kind, what, what_lv) in [
                (StepKind::Approval, "the approval", "apstiprināšanai"),
                (
                    StepKind::ContractGate,
                    "the contract and non-disclosure gate",
                    "līguma un neizpaušanas apliecinājumu pārbaudei",
                ),
            ] {
                if !has_ancestor(plan, n, |m| g[m].kind == kind) {
                    out.push(TRANSFER_GATE.finding(
                        "",
                        format!("transfer step `{}` does not come after {what}", step.id),
                        format!("nodošanas solis `{}` neseko {what_lv}", step.id),
                    ));
                }
            }
        }
        // SF203
        if step.kind.uses_results() {
            let bad = received[n.index()].personal();
            if !bad.is_empty() {
                out.push(ANONYMISE_FIRST.finding(
                    "",
                    format!(
                        "{} data reaches `{}` before anonymisation",
                        names(&bad),
                        step.id
                    ),
                    format!(
                        "{} dati nonāk pie `{}` pirms anonimizēšanas",
                        names_lv(&bad, false),
                        step.id
                    ),
                ));
            }
            if !has_ancestor(plan, n, |m| {
                matches!(
                    g[m].kind,
                    StepKind::Anonymise | StepKind::FollowUpAnonymise | StepKind::Survey
                )
            }) {
                out.push(ANONYMISE_FIRST.finding(
                    "",
                    format!("`{}` has no anonymisation before it", step.id),
                    format!("pirms `{}` nav anonimizēšanas", step.id),
                ));
            }
        }
        if step.kind == StepKind::FollowUpAnswer {
            for m in g.neighbors_directed(n, Outgoing) {
                if g[m].kind != StepKind::FollowUpAnonymise {
                    out.push(ANONYMISE_FIRST.finding(
                        "",
                        format!(
                            "follow-up answer `{}` goes to `{}` before it is anonymised",
                            step.id,
                            id(m)
                        ),
                        format!(
                            "recidīva pārbaudes atbilde `{}` nonāk pie `{}`, pirms tā anonimizēta",
                            step.id,
                            id(m)
                        ),
                    ));
                }
            }
        }
        // SF204
        if step.kind == StepKind::Answer && !reaches(plan, n, |m| g[m].kind == StepKind::MergeLink)
        {
            out.push(DELETE_AFTER_LINKAGE.finding(
                "",
                format!("answer `{}` is never merged and linked", step.id),
                format!(
                    "atbildi `{}` neapvieno ar pārējo informāciju un nesavieno",
                    step.id
                ),
            ));
        }
        if step.kind == StepKind::MergeLink {
            let next: Vec<NodeIndex> = g.neighbors_directed(n, Outgoing).collect();
            if next.is_empty() {
                out.push(DELETE_AFTER_LINKAGE.finding(
                    "",
                    format!("nothing deletes the identifiers after `{}`", step.id),
                    format!("pēc `{}` identifikatorus nedzēš neviens solis", step.id),
                ));
            }
            for m in next {
                if g[m].kind != StepKind::DeleteIdentifiers {
                    out.push(DELETE_AFTER_LINKAGE.finding(
                        "",
                        format!(
                            "`{}` follows the linkage `{}` before the identifiers are deleted",
                            id(m),
                            step.id
                        ),
                        format!(
                            "`{}` seko savienošanai `{}`, pirms identifikatori dzēsti",
                            id(m),
                            step.id
                        ),
                    ));
                }
            }
        }
        if matches!(step.kind, StepKind::AcquireServiceIs | StepKind::Answer)
            && !reaches(plan, n, |m| g[m].kind == StepKind::DeleteIdentifiers)
        {
            out.push(DELETE_AFTER_LINKAGE.finding(
                "",
                format!(
                    "the identifiers acquired by `{}` are never deleted",
                    step.id
                ),
                format!("`{}` iegūtos identifikatorus nekad nedzēš", step.id),
            ));
        }
        // SF211
        if step.actor == Actor::ServiceResearcher {
            let bad = received[n.index()].personal();
            if !bad.is_empty() && has_ancestor(plan, n, |m| g[m].kind == StepKind::OtherSystem) {
                out.push(ANONYMISED_AFTER_OTHER_SYSTEMS.finding(
                    "",
                    format!(
                        "{} data reaches the service researchers' `{}` after an exchange with another institution's system (MK403 p.23): the Service IS anonymises before the data reaches them (p.24), so identifying processing (p.21) comes before such exchanges",
                        names(&bad),
                        step.id
                    ),
                    format!(
                        "{} dati nonāk pie dienesta pētnieku soļa `{}` pēc informācijas apmaiņas ar citas iestādes informācijas sistēmu (MK403 23. p.): dienesta informācijas sistēma informāciju anonimizē, pirms tā nonāk pie dienesta pētniekiem (24. p.), tāpēc identificējošu datu apstrāde (21. p.) notiek pirms šādas apmaiņas",
                        names_lv(&bad, false),
                        step.id
                    ),
                ));
            }
        }
        // SF206
        // The Service's data is destroyed by the Service; the external researcher's (contact
        // details) by the external researcher (p.34).
        let produces = Classes::of(step.data_out).personal();
        let external = step.actor == Actor::ExternalResearcher;
        if !produces.is_empty()
            && !reaches(plan, n, |m| {
                g[m].kind == StepKind::DestroyIdentifying
                    && (external || g[m].actor != Actor::ExternalResearcher)
            })
        {
            out.push(DESTRUCTION.finding(
                "",
                format!(
                    "the {} data of `{}` is never destroyed",
                    names(&produces),
                    step.id
                ),
                format!(
                    "soļa `{}` {} dati netiek iznīcināti",
                    step.id,
                    names_lv(&produces, true)
                ),
            ));
        }
    }
    out
}

/// The p.8 notice date (SF207).
pub fn notice_date(plan: &Plan, spec: &Spec, today: Option<Date>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let Some((_, notice)) = plan.steps_of(StepKind::PrisonAdministrationNotice).next() else {
        return out;
    };
    let Some(planned) = spec.publication.as_ref().and_then(|p| p.planned_date) else {
        // SF121 already asks for the date.
        return out;
    };
    let pointer = "/publication/planned_date";
    let Some(due) = plan.prison_notice_due() else {
        let (rule, rule_lv) = notice
            .deadline
            .as_ref()
            .map_or(("", ""), |d| (d.rule.as_str(), d.rule_lv.as_str()));
        out.push(NOTICE_DATE.finding(
            pointer,
            format!(
                "the p.8 notice date cannot be computed for the publication on {planned}: {rule}"
            ),
            format!(
                "iepazīstināšanas ar rezultātiem (8. p.) datumu nevar aprēķināt publicēšanai, kas plānota {planned}: {rule_lv}"
            ),
        ));
        return out;
    };
    if let Some(today) = today
        && due < today
    {
        out.push(
            NOTICE_DATE
                .finding(
                    pointer,
                    format!("the Prison Administration notice was due by {due}, the 10th working day before the publication on {planned}, which is before today ({today})"),
                    format!("Ieslodzījuma vietu pārvalde ar rezultātiem bija jāiepazīstina līdz {due} (10. darbdienā pirms publicēšanas dienas {planned}), un šis termiņš ir pirms šodienas ({today})"),
                )
                .with_help("move the publication date by an amendment, or record that the notice was sent"),
        );
    }
    let analysis_end = spec
        .phases()
        .iter()
        .filter(|p| p.covers.contains(&Stage::Analysis))
        .filter_map(|p| p.deadline.map(|d| (d.0, p.id.as_str())))
        .max();
    match analysis_end {
        // Ending on the notice day itself, the results exist that day (p.8 asks for them no
        // later than it).
        Some((end, phase)) if due < end => out.push(
            NOTICE_AFTER_RESULTS
                .finding(
                    pointer,
                    format!("the Prison Administration notice is due by {due}, but the analysis (phase `{phase}`) is due to end only on {end}: the spec's own dates make the notice impossible, the results would not exist yet (MK403 p.8)"),
                    format!("Ieslodzījuma vietu pārvalde ar rezultātiem jāiepazīstina līdz {due}, bet analīzes (posms `{phase}`) izpildes termiņš ir tikai {end}: specifikācijas datumi padara iepazīstināšanu neiespējamu, jo rezultātu vēl nebūtu (MK403 8. p.)"),
                )
                .with_help("end the analysis by the notice day or publish later: the notice needs the results, 10 working days before publication"),
        ),
        Some(_) => {}
        None => out.push(
            NOTICE_DATE
                .finding(
                    "/phases",
                    format!("no phase covers `analysis`, so it cannot be checked that the results exist when the Prison Administration notice is due ({due})"),
                    format!("neviens posms neaptver `analysis`, tāpēc nevar pārbaudīt, vai rezultāti būs gatavi, kad Ieslodzījuma vietu pārvalde jāiepazīstina ar tiem ({due})"),
                )
                .with_help("add `covers: [analysis]` to the phase in which the analysis ends"),
        ),
    }
    out
}

/// Every plan-level check.
pub fn run(plan: &Plan, spec: &Spec, today: Option<Date>) -> Vec<Diagnostic> {
    let mut out = verify(plan);
    // A spec whose `anonymisation` section is not written (yet) compiles without the step; the
    // schema reports the missing section (SF011), and SF203 would only say the same of every
    // step that needs the anonymised data — findings of a half-written spec the author has not
    // made. It is checked once the section is there.
    if spec.anonymisation.is_none() {
        out.retain(|d| d.code != ANONYMISE_FIRST.code);
    }
    out.extend(notice_date(plan, spec, today));
    out.extend(prerequisite_dates(plan, spec, today));
    out.extend(calendar_range(spec));
    out
}

/// SF209: every date of the spec within the calendar's years, found wherever the spec holds
/// one (the spec as the parser read it, walked with its pointers).
pub fn calendar_range(spec: &Spec) -> Vec<Diagnostic> {
    fn walk(v: &serde_json::Value, pointer: &mut String, out: &mut Vec<Diagnostic>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    let len = pointer.len();
                    pointer.push('/');
                    pointer.push_str(&k.replace('~', "~0").replace('/', "~1"));
                    walk(v, pointer, out);
                    pointer.truncate(len);
                }
            }
            serde_json::Value::Array(a) => {
                for (i, v) in a.iter().enumerate() {
                    let len = pointer.len();
                    pointer.push_str(&format!("/{i}"));
                    walk(v, pointer, out);
                    pointer.truncate(len);
                }
            }
            serde_json::Value::String(s) => {
                if let Ok(d) = s.parse::<Date>()
                    && s.len() == 10
                    && !(studyflow_calendar::FIRST_YEAR..=studyflow_calendar::LAST_YEAR)
                        .contains(&d.year())
                {
                    out.push(CALENDAR_RANGE.finding(
                        pointer,
                        format!(
                            "{d} lies outside the years the Latvian calendar knows ({}–{}): no deadline could be counted from it (MK403 p.3.4, p.8)",
                            studyflow_calendar::FIRST_YEAR,
                            studyflow_calendar::LAST_YEAR
                        ),
                        format!(
                            "{d} ir ārpus gadiem, ko zina Latvijas kalendārs ({}–{}): no tā nevarētu aprēķināt nevienu termiņu (MK403 3.4., 8. p.)",
                            studyflow_calendar::FIRST_YEAR,
                            studyflow_calendar::LAST_YEAR
                        ),
                    ));
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Ok(v) = serde_json::to_value(spec) {
        walk(&v, &mut String::new(), &mut out);
    }
    out
}

/// When a step may start: the earliest start of the phases covering its stage (p.3.4), with
/// that phase's id.
fn step_start<'a>(spec: &'a Spec, step: &crate::model::Step) -> Option<(Date, &'a str)> {
    let stage = step.stage?;
    spec.phases()
        .iter()
        .filter(|p| p.covers.contains(&stage))
        .filter_map(|p| p.start.map(|d| (d.0, p.id.as_str())))
        .min()
}

/// SF208: each dated prerequisite the spec records against the start of the steps it gates.
pub fn prerequisite_dates(plan: &Plan, spec: &Spec, today: Option<Date>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let starts = |pick: &dyn Fn(&crate::model::Step) -> bool| -> Vec<(Date, &str, String)> {
        let mut v: Vec<(Date, &str, String)> = plan
            .graph
            .node_weights()
            .filter(|s| pick(s))
            .filter_map(|s| step_start(spec, s).map(|(d, phase)| (d, phase, s.id.clone())))
            .collect();
        v.sort();
        v
    };
    // p.30.2, p.29: the contract and the declarations before the first hand-over.
    if let Some(external) = &spec.external {
        let handovers =
            starts(&|s| matches!(s.kind, StepKind::Transfer | StepKind::ContactTransfer));
        if let (Some(first), Some(last)) = (handovers.first(), handovers.last()) {
            // (what happens on the date and once what, in English; in Latvian, whose date it is
            // and once what)
            let late = |what: &str, what_lv: &str, on: Date, once: &str, once_lv: &str| {
                (
                    format!(
                        "{what} on {on}, after `{}` may start on {} (phase `{}`): the Service hands information over only once {once} (MK403 p.30.2)",
                        first.2, first.0, first.1
                    ),
                    format!(
                        "{what_lv} ir {on}, bet `{}` var sākties jau {} (posms `{}`): dienests nodod informāciju tikai pēc tam, kad {once_lv} (MK403 30.2. p.)",
                        first.2, first.0, first.1
                    ),
                )
            };
            if let Some(c) = &external.contract {
                if let Some(on) = c.concluded_on.map(|d| d.0)
                    && on > first.0
                {
                    let (en, lv) = late(
                        "the contract is concluded",
                        "līguma noslēgšanas datums",
                        on,
                        "the contract is concluded",
                        "ir noslēgts līgums",
                    );
                    out.push(PREREQUISITE_DATES.finding_of(
                        &["p.30.2"],
                        "/external/contract/concluded_on",
                        en,
                        lv,
                    ));
                }
                if let Some(ends) = c.term_ends_on.map(|d| d.0) {
                    if let Some(on) = c.concluded_on.map(|d| d.0)
                        && ends < on
                    {
                        out.push(PREREQUISITE_DATES.finding_of(
                            &["p.5", "p.29"],
                            "/external/contract/term_ends_on",
                            format!(
                                "the contract's term ends on {ends}, before it is concluded on {on} (MK403 p.5, p.29)"
                            ),
                            format!(
                                "līguma termiņš beidzas {ends}, pirms līgums noslēgts {on} (MK403 5., 29. p.)"
                            ),
                        ));
                    } else if ends < last.0 {
                        out.push(PREREQUISITE_DATES.finding_of(
                            &["p.5", "p.29"],
                            "/external/contract/term_ends_on",
                            format!(
                                "the contract's term ends on {ends}, before `{}` may start on {} (phase `{}`): the researcher processes the information under the contract (MK403 p.5, p.29)",
                                last.2, last.0, last.1
                            ),
                            format!(
                                "līguma termiņš beidzas {ends}, pirms `{}` var sākties {} (posms `{}`): pētījuma izstrādātājs informāciju apstrādā saskaņā ar līgumu (MK403 5., 29. p.)",
                                last.2, last.0, last.1
                            ),
                        ));
                    }
                }
            }
            for (i, d) in external.non_disclosure_declarations.iter().enumerate() {
                if let Some(on) = d.signed_on.map(|d| d.0)
                    && on > first.0
                {
                    let (en, lv) = late(
                        &format!("{}'s non-disclosure declaration is signed", d.signatory),
                        &format!(
                            "personas {} neizpaušanas apliecinājuma parakstīšanas datums",
                            d.signatory
                        ),
                        on,
                        "the non-disclosure declarations are signed",
                        "ir parakstīti neizpaušanas apliecinājumi",
                    );
                    out.push(PREREQUISITE_DATES.finding_of(
                        &["p.30.2"],
                        &format!("/external/non_disclosure_declarations/{i}/signed_on"),
                        en,
                        lv,
                    ));
                }
            }
        }
    }
    // p.4.4: the application states the permission of a committee that has reviewed the
    // proposal ("ja pētījuma priekšlikums ir skatīts"): it exists on the day the application
    // is checked, never later; and it is one "to conduct the study" (atļauju veikt pētījumu):
    // on or before the start of the plan's first dated step (a phase that covers no stage, an
    // application or ethics-review phase say, dates no step and does not count).
    if let Some(on) = spec
        .external
        .as_ref()
        .and_then(|e| e.ethics_review.as_ref())
        .and_then(|r| r.granted_on)
        .map(|d| d.0)
    {
        let at = "/external/ethics_review/granted_on";
        if let Some(today) = today
            && on > today
        {
            out.push(PREREQUISITE_DATES.finding_of(
                &["p.4.4"],
                at,
                format!(
                    "the research ethics committee's permission is dated {on}, after today ({today}): the application states a permission the committee has already given (MK403 p.4.4)"
                ),
                format!(
                    "pētījumu ētikas komisijas atļaujas datums ir {on}, pēc šodienas ({today}): pieteikumā norāda atļauju, ko komisija jau ir devusi (MK403 4.4. p.)"
                ),
            ));
        }
        if let Some(first) = starts(&|_| true).first()
            && on > first.0
        {
            out.push(PREREQUISITE_DATES.finding_of(
                &["p.4.4"],
                at,
                format!(
                    "the research ethics committee's permission is dated {on}, after `{}` may start on {} (phase `{}`): the study is conducted under the permission to conduct it (MK403 p.4.4)",
                    first.2, first.0, first.1
                ),
                format!(
                    "pētījumu ētikas komisijas atļaujas datums ir {on}, bet `{}` var sākties jau {} (posms `{}`): pētījumu veic ar komisijas atļauju to veikt (MK403 4.4. p.)",
                    first.2, first.0, first.1
                ),
            ));
        }
    }
    // p.14.2: the agreement before the acquisition from the Prison Administration.
    if let Some(on) = spec
        .data_scope
        .as_ref()
        .and_then(|d| d.prison_administration.as_ref())
        .and_then(|p| p.agreement.as_ref())
        .and_then(|a| a.agreed_on)
        .map(|d| d.0)
    {
        let acquisition = starts(&|s| {
            s.kind == StepKind::Request
                && s.about
                    == crate::model::About::Registry {
                        registry: crate::model::Registry::PrisonAdministration,
                    }
        });
        if let Some(first) = acquisition.first()
            && on > first.0
        {
            out.push(PREREQUISITE_DATES.finding_of(
                &["p.14.2"],
                "/data_scope/prison_administration/agreement/agreed_on",
                format!(
                    "the agreement with the Prison Administration is dated {on}, after `{}` may start on {} (phase `{}`): it sends the information having first agreed its volume, availability and deadlines (MK403 p.14.2)",
                    first.2, first.0, first.1
                ),
                format!(
                    "vienošanās ar Ieslodzījuma vietu pārvaldi datēta ar {on}, bet `{}` var sākties jau {} (posms `{}`): Ieslodzījuma vietu pārvalde informāciju nosūta, pirms tam vienojoties par datu apjomu, pieejamību un iesniegšanas termiņiem (MK403 14.2. p.)",
                    first.2, first.0, first.1
                ),
            ));
        }
    }
    // p.21, p.25.2: a service researcher designated before identifying data is processed.
    let identifying =
        starts(&|s| s.data_in == DataClass::Identifying || s.data_out == DataClass::Identifying);
    if let Some(first) = identifying.first() {
        for (i, p) in spec.authorised_persons.iter().enumerate() {
            if p.role != studyflow_spec::model::ServiceRole::ServiceResearcher {
                continue;
            }
            if let Some(on) = p.designated_on.map(|d| d.0)
                && on > first.0
            {
                out.push(PREREQUISITE_DATES.finding_of(
                    &["p.21", "p.25.2"],
                    &format!("/authorised_persons/{i}/designated_on"),
                    format!(
                        "{} is designated on {on}, after `{}` may start processing identifying data on {} (phase `{}`): identifying information is processed by the service researchers the Service has designated (MK403 p.21, p.25.2)",
                        p.name, first.2, first.0, first.1
                    ),
                    format!(
                        "dienesta pētnieka {} norīkojuma datums ir {on}, bet `{}` identificējošu datu apstrādi var sākt jau {} (posms `{}`): identificējošu informāciju apstrādā dienesta noteiktie dienesta pētnieki (MK403 21., 25.2. p.)",
                        p.name, first.2, first.0, first.1
                    ),
                ));
            }
        }
    }
    out
}
