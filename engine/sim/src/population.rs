//! The synthetic population: probation clients as the Service IS holds them, their criminal
//! proceedings as the Punishment Register holds them, and prison rulings and resocialisation
//! records as the Prison Administration holds them. Deterministic for a seed; every value is
//! made up. Each record answers by catalogue key (`docs/catalogue.md`), so a registry returns
//! exactly the fields asked for.

use jiff::civil::{Date, date};
use serde_json::Value;
use studyflow_spec::catalogue;

use crate::personal_code::PersonalCode;
use crate::rng::Rng;

/// What to generate.
#[derive(Debug, Clone)]
pub struct Config {
    pub seed: u64,
    pub clients: usize,
    /// Supervision starts fall in this period.
    pub supervision_from: Date,
    pub supervision_to: Date,
    /// Re-offending is generated up to this day.
    pub observed_until: Date,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            seed: 2026,
            clients: 10_000,
            supervision_from: date(2026, 1, 1),
            supervision_to: date(2026, 12, 31),
            observed_until: date(2033, 6, 30),
        }
    }
}

/// A closed period of dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: Date,
    pub end: Date,
}

/// A client of the Service.
#[derive(Debug, Clone)]
pub struct Client {
    pub personal_code: PersonalCode,
    /// The code before a change (p.12.1), e.g. to the format without a birth date.
    pub previous_personal_code: Option<PersonalCode>,
    pub first_name: &'static str,
    pub last_name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub sex: &'static str,
    pub birth: Date,
    pub region: &'static str,
    pub case_number: String,
    pub case_section_number: String,
    pub sanction_type: &'static str,
    pub risk_needs_level: &'static str,
    pub probation_programmes: Vec<&'static str>,
    pub supervision: Span,
    pub educational_measure: Option<Span>,
    pub mediation: Option<Span>,
    /// The proceeding whose sentence the Service executes.
    pub proceeding_number: String,
    pub court_ruling_number: Option<String>,
    pub proceedings: Vec<Proceeding>,
    pub rulings: Vec<PrisonRuling>,
    pub resocialisation: Option<Resocialisation>,
}

/// A criminal proceeding in the Punishment Register (p.13).
#[derive(Debug, Clone)]
pub struct Proceeding {
    pub number: String,
    pub offence_date: Date,
    pub start_date: Date,
    pub detention_date: Option<Date>,
    pub suspect_date: Date,
    pub prosecution_date: Date,
    pub judgment_date: Option<Date>,
    pub judgment_effective_date: Option<Date>,
    pub end_date: Option<Date>,
    pub end_grounds: &'static str,
    pub qualification: &'static str,
    pub initiating_authority: &'static str,
    pub sentence: Option<&'static str>,
    pub execution_type: Option<&'static str>,
    /// Committed after the start of the supervision: re-offending.
    pub new_offence: bool,
}

/// A court ruling that applied detention or imprisonment (p.15).
#[derive(Debug, Clone)]
pub struct PrisonRuling {
    pub number: String,
    pub admission_date: Date,
    pub admission_status: &'static str,
    pub progressive_move: Option<Date>,
    pub release_date: Date,
    pub release_regime: &'static str,
    pub release_grounds: &'static str,
}

/// Resocialisation in prison (p.16).
#[derive(Debug, Clone)]
pub struct Resocialisation {
    pub risk_needs_assessment: &'static str,
    pub programmes: Vec<&'static str>,
    pub addiction_programme: bool,
    pub education: &'static str,
    pub employment: bool,
    pub disciplinary_penalties: u8,
    pub incentives: u8,
}

const MALE: &[&str] = &[
    "Jānis",
    "Andris",
    "Edgars",
    "Mārtiņš",
    "Kristaps",
    "Artūrs",
    "Raivis",
    "Gatis",
    "Rihards",
    "Oskars",
    "Dmitrijs",
    "Sergejs",
];
const FEMALE: &[&str] = &[
    "Anna",
    "Inese",
    "Dace",
    "Ilze",
    "Kristīne",
    "Laura",
    "Līga",
    "Zane",
    "Jeļena",
    "Olga",
    "Santa",
    "Baiba",
];
const SURNAME_STEMS: &[(&str, &str)] = &[
    ("Bērziņš", "Bērziņa"),
    ("Kalniņš", "Kalniņa"),
    ("Ozols", "Ozola"),
    ("Jansons", "Jansone"),
    ("Liepiņš", "Liepiņa"),
    ("Krūmiņš", "Krūmiņa"),
    ("Balodis", "Balode"),
    ("Zariņš", "Zariņa"),
    ("Petrovs", "Petrova"),
    ("Ivanovs", "Ivanova"),
    ("Vītols", "Vītola"),
    ("Kļaviņš", "Kļaviņa"),
];
// The categorical values come from the catalogue's domains, so that what the synthetic
// registries answer is exactly what an import accepts (issue #10).
const REGIONS: &[&str] = catalogue::REGIONS;
const SANCTIONS: &[&str] = catalogue::SANCTION_TYPES;
const RISK: &[&str] = catalogue::RISK_LEVELS;
const PROGRAMMES: &[&str] = catalogue::PROBATION_PROGRAMMES;
const QUALIFICATIONS: &[&str] = &[
    "CL 175(1) theft",
    "CL 180(1) misappropriation",
    "CL 125(1) bodily injury",
    "CL 253(1) drugs",
    "CL 262 driving while intoxicated",
    "CL 185(1) property damage",
    "CL 231(1) hooliganism",
];
const AUTHORITIES: &[&str] = &[
    "State Police",
    "Prosecutor's Office",
    "State Revenue Service",
    "Municipal Police",
];
const SENTENCES: &[&str] = &[
    "probation supervision",
    "community service",
    "fine",
    "deprivation of liberty, conditional",
    "deprivation of liberty",
];
const EXECUTION: &[&str] = catalogue::SENTENCE_EXECUTION_TYPES;
/// The grounds of a proceeding that ended without a conviction.
const TERMINATIONS: &[&str] = &[
    catalogue::PROCEEDING_END_GROUNDS[1],
    catalogue::PROCEEDING_END_GROUNDS[2],
];

fn years(d: Date, n: i16) -> Date {
    d.checked_add(jiff::Span::new().years(n)).unwrap_or(d)
}

/// A criminal proceeding number: three digits of the institution, two of the year, six of a
/// serial (eleven digits, as the Punishment Register writes them).
fn proceeding_number(
    rng: &mut Rng,
    year: i16,
    used: &mut std::collections::HashSet<String>,
) -> String {
    loop {
        let n = format!(
            "{}{:02}{:06}",
            rng.pick(&[111u16, 118, 112, 113, 121, 114]),
            year % 100,
            rng.below(1_000_000)
        );
        if used.insert(n.clone()) {
            return n;
        }
    }
}

fn proceeding(
    rng: &mut Rng,
    offence: Date,
    cap: Date,
    new_offence: bool,
    used: &mut std::collections::HashSet<String>,
) -> Proceeding {
    let start = rng.after(offence, 0, 60, cap);
    let detention = rng.chance(0.2).then(|| rng.after(start, 0, 10, cap));
    let suspect = rng.after(start, 0, 90, cap);
    let prosecution = rng.after(suspect, 10, 200, cap);
    let convicted = rng.chance(0.8);
    let judgment = convicted.then(|| rng.after(prosecution, 30, 300, cap));
    let effective = judgment.map(|j| rng.after(j, 10, 40, cap));
    let end = effective.or_else(|| Some(rng.after(prosecution, 20, 200, cap)));
    Proceeding {
        number: proceeding_number(rng, offence.year(), used),
        offence_date: offence,
        start_date: start,
        detention_date: detention,
        suspect_date: suspect,
        prosecution_date: prosecution,
        judgment_date: judgment,
        judgment_effective_date: effective,
        end_date: end,
        end_grounds: if convicted {
            "conviction"
        } else {
            rng.pick(TERMINATIONS)
        },
        qualification: rng.pick(QUALIFICATIONS),
        initiating_authority: rng.pick(AUTHORITIES),
        sentence: convicted.then(|| rng.pick(SENTENCES)),
        execution_type: convicted.then(|| rng.pick(EXECUTION)),
        new_offence,
    }
}

/// Generates the population.
pub fn generate(config: &Config) -> Vec<Client> {
    let mut all = Vec::with_capacity(config.clients);
    generate_in_chunks(config, config.clients.max(1), |chunk| {
        all.extend_from_slice(chunk)
    });
    all
}

/// The population of [`generate`], handed over `chunk` clients at a time so that a large one
/// (a million clients for the bulk benchmark) never sits in memory whole; codes and numbers
/// stay unique across the chunks, and the clients are the ones `generate` makes.
pub fn generate_in_chunks(config: &Config, chunk: usize, mut each: impl FnMut(&[Client])) {
    let mut rng = Rng::new(config.seed);
    let mut codes = std::collections::HashSet::new();
    let mut numbers = std::collections::HashSet::new();
    let cap = config.observed_until;
    let mut out = Vec::with_capacity(chunk.min(config.clients));
    for i in 0..config.clients {
        let male = rng.chance(0.82);
        let start = rng.date(config.supervision_from, config.supervision_to);
        let birth = rng.date(years(start, -70), years(start, -14));
        let new_format = rng.chance(0.04);
        let mut code = |rng: &mut Rng, new: bool| loop {
            let c = if new {
                PersonalCode::new_format(rng)
            } else {
                PersonalCode::old_format(birth, rng)
            };
            if codes.insert(c.clone()) {
                return c;
            }
        };
        let personal_code = code(&mut rng, new_format);
        // Some changed their code to the format without a birth date (p.12.1).
        let (personal_code, previous_personal_code) = if !new_format && rng.chance(0.03) {
            (code(&mut rng, true), Some(personal_code))
        } else {
            (personal_code, None)
        };
        let (first, surname) = {
            let (m, f) = rng.pick(SURNAME_STEMS);
            if male {
                (rng.pick(MALE), m.to_owned())
            } else {
                (rng.pick(FEMALE), f.to_owned())
            }
        };
        let region = rng.pick(REGIONS);
        let sanction = rng.pick(SANCTIONS);
        let risk = rng.pick(RISK);
        let length = match sanction {
            "community_service" => rng.range(90, 365),
            _ => rng.range(180, 1095),
        };
        let end = start
            .checked_add(jiff::Span::new().days(length))
            .unwrap_or(start);
        let programmes: Vec<&str> = PROGRAMMES
            .iter()
            .copied()
            .filter(|_| rng.chance(0.2))
            .collect();
        let juvenile = (start - birth).get_days() < 18 * 365;
        let educational_measure = (juvenile && rng.chance(0.5)).then(|| Span {
            start,
            end: rng.after(start, 180, 720, cap),
        });
        let mediation_start = rng.after(years(start, -1), 0, 200, start);
        let mediation = rng.chance(0.1).then(|| Span {
            start: mediation_start,
            end: rng.after(mediation_start, 14, 120, start),
        });
        // The proceeding under supervision: judged before the start.
        let offence = rng.after(years(start, -2), 0, 300, start);
        let mut current = proceeding(&mut rng, offence, start, false, &mut numbers);
        if current.judgment_date.is_none()
            || current.judgment_effective_date.is_some_and(|e| e > start)
        {
            let j = rng.after(current.prosecution_date, 1, 30, start);
            current.judgment_date = Some(j);
            current.judgment_effective_date = Some(rng.after(j, 0, 10, start));
            current.end_date = current.judgment_effective_date;
            current.end_grounds = "conviction";
            current.sentence = Some(match sanction {
                "community_service" => "community service",
                "conditional_release" => "deprivation of liberty",
                _ => "probation supervision",
            });
            current.execution_type = Some("non-custodial");
        }
        let proceeding_number = current.number.clone();
        let mut proceedings = Vec::new();
        for _ in 0..rng.range(0, 3) {
            let o = rng.date(years(start, -12), years(start, -2));
            proceedings.push(proceeding(
                &mut rng,
                o,
                years(start, -1),
                false,
                &mut numbers,
            ));
        }
        proceedings.push(current);
        // Re-offending: likelier with a higher assessed risk, over the following years.
        let p = match risk {
            "high" => 0.55,
            "medium" => 0.35,
            _ => 0.15,
        };
        if rng.chance(p) {
            for _ in 0..rng.range(1, 3) {
                let earliest = rng.after(start, 30, 200, cap);
                let o = rng.date(earliest, cap);
                proceedings.push(proceeding(&mut rng, o, cap, true, &mut numbers));
            }
        }
        let mut rulings = Vec::new();
        if sanction == "conditional_release" || rng.chance(0.1) {
            let release = rng.after(years(start, -1), 0, 360, start);
            let admission = rng.after(years(release, -4), 0, 900, release);
            rulings.push(PrisonRuling {
                number: format!(
                    "K{}-{:05}-{:02}",
                    rng.range(10, 40),
                    rng.below(100_000),
                    admission.year() % 100
                ),
                admission_date: admission,
                // p.15.2: remand prisoner (then convicted) or convict at admission.
                admission_status: rng.pick(catalogue::ADMISSION_STATUSES),
                progressive_move: rng
                    .chance(0.6)
                    .then(|| rng.after(admission, 90, 700, release)),
                release_date: release,
                release_regime: rng.pick(catalogue::RELEASE_REGIMES),
                release_grounds: if sanction == "conditional_release" {
                    "conditional early release"
                } else {
                    rng.pick(catalogue::RELEASE_GROUNDS)
                },
            });
        }
        let resocialisation = (!rulings.is_empty()).then(|| Resocialisation {
            risk_needs_assessment: rng.pick(RISK),
            programmes: PROGRAMMES
                .iter()
                .copied()
                .filter(|_| rng.chance(0.3))
                .collect(),
            addiction_programme: rng.chance(0.3),
            education: rng.pick(catalogue::PRISON_EDUCATION),
            employment: rng.chance(0.4),
            disciplinary_penalties: rng.range(0, 4) as u8,
            incentives: rng.range(0, 5) as u8,
        });
        let email = rng
            .chance(0.6)
            .then(|| format!("{}.{}{}@example.lv", ascii(first), ascii(&surname), i % 97));
        let phone = rng
            .chance(0.8)
            .then(|| format!("+371 2{:07}", rng.below(10_000_000)));
        out.push(Client {
            court_ruling_number: rulings.first().map(|r| r.number.clone()),
            personal_code,
            previous_personal_code,
            first_name: first,
            last_name: surname,
            email,
            phone,
            sex: if male { "male" } else { "female" },
            birth,
            region,
            case_number: format!("{}-{}-{:05}", &region[..1].to_uppercase(), start.year(), i),
            case_section_number: format!(
                "{}-{}-{:05}/{}",
                &region[..1].to_uppercase(),
                start.year(),
                i,
                rng.range(1, 2)
            ),
            sanction_type: sanction,
            risk_needs_level: risk,
            probation_programmes: programmes,
            supervision: Span { start, end },
            educational_measure,
            mediation,
            proceeding_number,
            proceedings,
            rulings,
            resocialisation,
        });
        if out.len() == chunk {
            each(&out);
            out.clear();
        }
    }
    if !out.is_empty() {
        each(&out);
    }
}

/// Latvian letters to ASCII, lower case, for made-up e-mail addresses.
fn ascii(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'ā' | 'Ā' => 'a',
            'č' | 'Č' => 'c',
            'ē' | 'Ē' => 'e',
            'ģ' | 'Ģ' => 'g',
            'ī' | 'Ī' => 'i',
            'ķ' | 'Ķ' => 'k',
            'ļ' | 'Ļ' => 'l',
            'ņ' | 'Ņ' => 'n',
            'š' | 'Š' => 's',
            'ū' | 'Ū' => 'u',
            'ž' | 'Ž' => 'z',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

fn day(d: Option<Date>) -> Value {
    d.map_or(Value::Null, |d| Value::String(d.to_string()))
}

impl Client {
    /// The Service IS record of the client for these catalogue keys (those it holds).
    pub fn record(&self, keys: &[&str]) -> std::collections::BTreeMap<String, Value> {
        keys.iter()
            .filter_map(|k| Some(((*k).to_owned(), self.value(k)?)))
            .collect()
    }

    /// The Service IS value of a catalogue key (`None` for a key the Service IS does not hold).
    pub fn value(&self, key: &str) -> Option<Value> {
        Some(match key {
            "personal_code" => self.personal_code.expose().into(),
            "previous_personal_code" => self
                .previous_personal_code
                .as_ref()
                .map_or(Value::Null, |c| c.expose().into()),
            "case_number" => self.case_number.clone().into(),
            "case_section_number" => self.case_section_number.clone().into(),
            "proceeding_number" => self.proceeding_number.clone().into(),
            "court_ruling_number" => self
                .court_ruling_number
                .clone()
                .map_or(Value::Null, Value::String),
            "prosecutor_decision_number" => Value::Null,
            "first_name" => self.first_name.into(),
            "last_name" => self.last_name.clone().into(),
            "email" => self.email.clone().map_or(Value::Null, Value::String),
            "phone" => self.phone.clone().map_or(Value::Null, Value::String),
            "supervision_start_date" => day(Some(self.supervision.start)),
            "supervision_end_date" => day(Some(self.supervision.end)),
            "educational_measure_start_date" => day(self.educational_measure.map(|s| s.start)),
            "educational_measure_end_date" => day(self.educational_measure.map(|s| s.end)),
            "mediation_start_date" => day(self.mediation.map(|s| s.start)),
            "mediation_end_date" => day(self.mediation.map(|s| s.end)),
            "sex" => self.sex.into(),
            "birth_year" => i64::from(self.birth.year()).into(),
            "region" => self.region.into(),
            "sanction_type" => self.sanction_type.into(),
            "risk_needs_level" => self.risk_needs_level.into(),
            "probation_programmes" => self.probation_programmes.clone().into(),
            _ => return None,
        })
    }
}

impl Proceeding {
    /// Whether the Punishment Register knows of the proceeding on `day`: it has begun. (The
    /// population holds the whole synthetic future; a registry answering on a day of the
    /// study's clock answers with what had happened by then.)
    pub fn known_on(&self, day: Date) -> bool {
        self.start_date <= day
    }

    /// The value of a p.13 key as the Punishment Register holds it on `day`: a date after
    /// `day`, and what a later judgment or end brings (the sentence, its execution, the end's
    /// grounds), is not there yet.
    pub fn value_on(&self, key: &str, day: Date) -> Option<Value> {
        let value = self.value(key)?;
        let later = |d: Option<Date>| d.is_none_or(|d| d > day);
        let not_yet = match key {
            "detention_date" => self.detention_date.is_some_and(|d| d > day),
            "suspect_date" => self.suspect_date > day,
            "prosecution_date" => self.prosecution_date > day,
            "judgment_date" | "sentence" | "sentence_execution_type" => later(self.judgment_date),
            "judgment_effective_date" => later(self.judgment_effective_date),
            "proceeding_end_date" | "proceeding_end_grounds" => later(self.end_date),
            _ => false,
        };
        Some(if not_yet { Value::Null } else { value })
    }

    /// The Punishment Register value of a p.13 catalogue key.
    pub fn value(&self, key: &str) -> Option<Value> {
        Some(match key {
            "proceeding_number" => self.number.clone().into(),
            "proceeding_start_date" => day(Some(self.start_date)),
            "offence_date" => day(Some(self.offence_date)),
            "detention_date" => day(self.detention_date),
            "suspect_date" => day(Some(self.suspect_date)),
            "prosecution_date" => day(Some(self.prosecution_date)),
            "related_proceedings" | "merged_split_proceeding_number" | "merge_split_date" => {
                Value::Null
            }
            "offence_qualification" => self.qualification.into(),
            "initiating_authority" => self.initiating_authority.into(),
            "sentence" => self.sentence.map_or(Value::Null, Value::from),
            "sentence_execution_type" => self.execution_type.map_or(Value::Null, Value::from),
            "credited_custody"
            | "unserved_part_decision"
            | "prison_release_date"
            | "prison_release_grounds"
            | "sentence_substitution"
            | "educational_measure" => Value::Null,
            "judgment_date" => day(self.judgment_date),
            "judgment_effective_date" => day(self.judgment_effective_date),
            "proceeding_end_date" => day(self.end_date),
            "proceeding_end_grounds" => self.end_grounds.into(),
            _ => return None,
        })
    }
}

impl PrisonRuling {
    /// The Prison Administration value of a p.15 catalogue key.
    pub fn value(&self, key: &str) -> Option<Value> {
        Some(match key {
            "prison_admission_date" => day(Some(self.admission_date)),
            "admission_status" => self.admission_status.into(),
            "progressive_system_moves" => day(self.progressive_move),
            "prison_release_date" => day(Some(self.release_date)),
            "release_regime" => self.release_regime.into(),
            "release_grounds" => self.release_grounds.into(),
            _ => return None,
        })
    }
}

impl Resocialisation {
    /// The Prison Administration value of a p.16 catalogue key.
    pub fn value(&self, key: &str) -> Option<Value> {
        Some(match key {
            "risk_needs_assessment" => self.risk_needs_assessment.into(),
            "resocialisation_planned" | "resocialisation_applied" | "behaviour_programmes" => {
                self.programmes.clone().into()
            }
            "addiction_programme" | "addiction_measures" => self.addiction_programme.into(),
            "education" => self.education.into(),
            "prison_employment" => self.employment.into(),
            "psychological_care" | "social_work" | "leisure" => Value::Null,
            "incentives" => i64::from(self.incentives).into(),
            "disciplinary_penalties" => i64::from(self.disciplinary_penalties).into(),
            "substance_use_incidents" => Value::Null,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use studyflow_spec::catalogue::{Source, keys, lookup};

    /// What the synthetic Service IS and registries produce lies in the catalogue's domains,
    /// so that a clean synthetic run imports and checks clean (issue #10).
    #[test]
    fn every_generated_value_lies_in_its_catalogue_domain() {
        let clients = generate(&Config {
            seed: 5,
            clients: 2000,
            ..Config::default()
        });
        let mut checked = 0;
        let mut check = |source: Source, key: &str, v: Option<Value>| {
            if let (Some(domain), Some(v)) = (lookup(source, key).and_then(|f| f.domain()), v) {
                assert!(domain.admits(&v), "{key} = {v} is outside {domain:?}");
                checked += 1;
            }
        };
        for c in &clients {
            for key in keys(Source::ServiceIs) {
                check(Source::ServiceIs, key, c.value(key));
            }
            for p in &c.proceedings {
                for key in keys(Source::InformationCentre) {
                    check(Source::InformationCentre, key, p.value(key));
                }
            }
            for r in &c.rulings {
                for key in keys(Source::PrisonRulings) {
                    check(Source::PrisonRulings, key, r.value(key));
                }
            }
            if let Some(x) = &c.resocialisation {
                for key in keys(Source::PrisonResocialisation) {
                    check(Source::PrisonResocialisation, key, x.value(key));
                }
            }
        }
        assert!(checked > 10_000, "{checked}");
    }
}
