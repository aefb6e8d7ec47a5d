//! The benchmarks' corpus: generated ~200-line external-study specs, all valid, so the
//! whole pipeline runs (YAML → schema → typed spec → rules → plan).

/// A `/proc/self/status` figure in KiB (0 where there is no procfs).
pub fn memory(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with(field)).and_then(|l| {
                l[field.len()..]
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse()
                    .ok()
            })
        })
        .unwrap_or(0)
}

/// The number after `--specs` on the command line, or `default`.
pub fn specs_arg(default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--specs")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// The `i`-th spec of the corpus: a realistic external study of about 200 lines; `i` varies
/// ids, dates and sizes.
pub fn generate(i: usize) -> String {
    let year = 2027 + (i % 4);
    let size = 400 + (i * 37) % 2000;
    let team: String = (0..6)
        .map(|t| {
            format!(
                "    - name: Pētnieks {i}-{t}\n      login: p{i}-{t}\n      role: {}\n      authorised_person: {}\n",
                [
                    "principal investigator",
                    "statistician",
                    "data manager",
                    "criminologist",
                    "research assistant",
                    "ethics officer"
                ][t],
                t < 3
            )
        })
        .collect();
    let ndas: String = (0..3)
        .map(|t| {
            format!(
                "    - signatory: Pētnieks {i}-{t}\n      signed_on: {}-01-20\n",
                year
            )
        })
        .collect();
    format!(
        r#"# yaml-language-server: $schema=../schemas/study-spec.schema.json
spec_version: 1
id: generated-study-{i}
title: Resocialisation programme outcomes, cohort {i}
version: {v}
initiator:
  kind: external_legal_person
  name: Latvijas Universitāte, Sociālo zinātņu fakultāte
purpose: >
  To assess whether participation in social-behaviour correction and addiction-reduction
  programmes during imprisonment is associated with lower re-offending after release,
  and which programme volumes matter for whom.
methodology:
  design: cross_sectional
  description: >
    Retrospective register study. Programme participation and volume are compared across
    released prisoners, adjusting for risk-and-needs level, sentence length and age group;
    multilevel logistic regression with prisons as clusters.
  sample:
    population: Persons released from prison in {py} who were supervised by the Service
    inclusion_criteria:
      - Released from a prison of the Prison Administration in {py}
      - Supervised by the State Probation Service after release
    exclusion_criteria:
      - Died or left Latvia within the observation period
      - Released from a prison hospital or on health grounds
      - Transferred to serve the sentence abroad
      - Supervision ended within one month of release
      - Subject of an open procedure to change the sentence
    period: {{from: {py}-01-01, to: {py}-12-31}}
    expected_size: {size}
  acquisition:
    methods: >
      Automated extraction from the Service IS; secure electronic request to the Prison
      Administration under the agreement of MK403 p.14.2; linkage by the Service on the
      personal code and the court ruling number, then anonymisation before any transfer.
    procedures: >
      The Service extracts the cohort, requests p.15 and p.16 information by personal code,
      links and anonymises it, and transfers an anonymised dataset under the contract.
data_scope:
  service_is:
    extraction: automated
    volume: {{period: {{from: {py}-01-01, to: {py}-12-31}}, expected_records: {size}}}
    fields:
      personal_code: to request Prison Administration data about each subject (p.12.1)
      previous_personal_code: to match subjects whose personal code changed (p.12.1)
      court_ruling_number: to identify the rulings the request is about (p.12.2)
      supervision_start_date: start of supervision after release
      supervision_end_date: end of supervision after release
      sex: covariate in the models
      birth_year: covariate in the models, coarsened to age group
      region: random effect for the Service's territorial unit
      sanction_type: covariate, the type of sanction executed
      risk_needs_level: main confounder of programme assignment
      probation_programmes: programmes attended during probation
  prison_administration:
    exchange: secure_electronic
    automation_not_possible_because: The integration with the Prisoners' IS does not cover resocialisation records.
    agreement:
      agreed_on: {y}-01-10
      volume: About {size} subjects, one file of rulings and one of resocialisation records
      availability: The Prison Administration prepares the files within its planned capacity
      delivery_deadlines: Within 30 days of the request
      resources_assessed: true
    rulings:
      volume: {{period: {{from: {p0}-01-01, to: {py}-12-31}}, expected_records: {rulings}}}
      fields:
        prison_admission_date: length of the prison term
        admission_status: remand or convict at admission
        progressive_system_moves: regime changes as a measure of progress
        prison_release_date: start of the observation after release
        release_regime: regime at release
        release_grounds: conditional or full release
    resocialisation:
      volume: {{period: {{from: {p0}-01-01, to: {py}-12-31}}, expected_records: {size}}}
      fields:
        risk_needs_assessment: baseline risk and needs
        resocialisation_planned: planned measures, to compare with those applied
        resocialisation_applied: applied measures and their volume, the exposure
        behaviour_programmes: programme volume and results, the main exposure
        addiction_programme: participation in an addiction-reduction programme
        addiction_measures: involvement in addiction-reduction measures
        education: education as a competing explanation
        prison_employment: employment as a competing explanation
        disciplinary_penalties: behaviour in prison as an outcome proxy
personal_data_types:
  - personal_code
  - proceeding_identifiers
  - demographics
  - probation_records
  - imprisonment
  - resocialisation
  - health
phases:
  - id: approval
    title: Approval of the application and the contract
    start: {y}-01-04
    deadline: {y}-02-15
  - id: acquisition
    title: Extraction, requests and linkage by the Service
    start: {y}-02-16
    deadline: {y}-05-31
    covers: [acquisition, linkage, quality_check]
  - id: anonymisation
    title: Anonymisation and k-anonymity check
    start: {y}-06-01
    deadline: {y}-06-30
    covers: [anonymisation, transfer]
  - id: analysis
    title: Analysis by the university team
    start: {y}-07-01
    deadline: {y}-10-31
    covers: [analysis]
  - id: report
    title: Report and recommendations
    start: {y}-11-01
    deadline: {y}-12-15
    covers: [report, presentation]
  - id: notice
    title: Presentation of the results to the Prison Administration (MK403 p.8)
    start: {y}-12-16
    deadline: {y1}-01-29
publication:
  planned_date: {y1}-02-15
  form: Report to the Service and an article in a peer-reviewed journal
anonymisation:
  purpose_reachable_with_anonymised_data: true
  date_policy: relative_to_anchor
  anchor_field: supervision_start_date
  quasi_identifiers: [sex, birth_year, region, release_regime]
  k: 5
  suppression_allowed: true
external:
  justification: >
    The Service lacks evidence on which prison programmes reduce re-offending among the
    clients it supervises after release.
  expected_benefit: >
    Better referral of released prisoners to probation programmes, and evidence for the
    Prison Administration's programme planning.
  team:
{team}  state_research_programme:
    programme: Valsts pētījumu programma "Sabiedrības drošība"
    project: Resocializācijas programmu efektivitāte
    registration_number: VPP-IEM-{i}
  ethics_review:
    committee: LU Humanitāro un sociālo zinātņu pētījumu ētikas komiteja
    permission: Approved without conditions
    permission_number: 71067/{i}
    granted_on: {p1}-11-20
  contract:
    status: concluded
    number: VPD/{y}/{i}
    concluded_on: {y}-01-20
    term_ends_on: {y2}-12-31
  non_disclosure_declarations:
{ndas}  security_measures:
    device_protection: multi_factor
    antivirus_up_to_date: true
    network_security: University firewall, VPN and encrypted disks
authorised_persons:
  - name: Anna Bērziņa
    login: anna.berzina
    role: service_researcher
    access: [service_is, identifying_data, anonymised_data]
    designated_on: {p1}-12-01
  - name: Jānis Ozols
    login: janis.ozols
    role: supervisor
    access: [anonymised_data]
  - name: Līga Kalniņa
    login: liga.kalnina
    role: service_researcher
    access: [service_is, identifying_data]
    designated_on: {p1}-12-01
  - name: Edgars Liepiņš
    login: edgars.liepins
    role: approver
    access: [anonymised_data]
retention:
  anonymised_data: {{keep: permanent}}
  identifying_data_deleted_by: {y}-06-30
  external_researcher_copy: {{keep: until_date, until: {y2}-12-31}}
"#,
        v = 1 + i % 3,
        y = year,
        y1 = year + 1,
        y2 = year + 2,
        py = year - 2,
        p0 = year - 7,
        p1 = year - 1,
        rulings = size * 2,
    )
}
