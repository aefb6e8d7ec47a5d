//! Who may act (MK403 p.3, p.21, p.25, p.26, p.28, p.30.2, p.33.1): every act of a person on a
//! study — submitting, amending, starting, ending it, completing a task — is given to the persons
//! the spec names for it, compared as one person however their name is written
//! ([`studyflow_spec::model::same_person`]). The engine asks here before it acts; nothing else
//! decides.

use studyflow_plan::Step;
use studyflow_spec::Spec;
use studyflow_spec::model::{Access, ServiceRole, same_person};

use crate::error::{EngineError, Result};

/// A study-level act of a person, each given to the persons the spec names for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StudyAct {
    /// Submitting the application: its service researcher, or a member of the external
    /// researcher's team (MK403 p.3, p.4).
    Submit,
    /// Submitting an amendment: as `Submit`, named by the version in force.
    Amend,
    /// Starting the approved study: its service researcher, who processes the data in the
    /// Service (MK403 p.21, p.22).
    Start,
    /// Ending the study before its time, which destroys its identifying data at once
    /// (MK403 p.26): the Service's decision, taken by the approver of the study, or for an
    /// external study by its supervisor (p.25.5, p.28). The text names no person for it: this
    /// is studyflow's policy (docs/regulation-coverage.md, "Policy beyond the text").
    Terminate,
}

/// Whether `user` may do `act` on the study of `spec`. A blank name is no one.
pub fn authorise_act(spec: &Spec, act: StudyAct, user: &str) -> Result<()> {
    if user.trim().is_empty() {
        return Err(EngineError::Forbidden(
            "a person must be named: every act on a study is someone's".into(),
        ));
    }
    let has = |role: ServiceRole| {
        spec.authorised_persons
            .iter()
            .any(|p| same_person(&p.name, user) && p.role == role)
    };
    let in_team = spec
        .external
        .as_ref()
        .and_then(|e| e.team.as_ref())
        .is_some_and(|t| t.iter().any(|m| same_person(&m.name, user)));
    match act {
        StudyAct::Submit | StudyAct::Amend => (has(ServiceRole::ServiceResearcher) || in_team)
            .then_some(())
            .ok_or_else(|| {
                EngineError::Forbidden(format!(
                    "`{user}` is neither a service researcher nor a member of the external researcher's team named in the spec: only they submit its application (MK403 p.3, p.4)"
                ))
            }),
        StudyAct::Start => has(ServiceRole::ServiceResearcher)
            .then_some(())
            .ok_or_else(|| {
                EngineError::Forbidden(format!(
                    "`{user}` is not a service researcher named in the spec: the Service's researchers start its processing (MK403 p.21, p.22)"
                ))
            }),
        StudyAct::Terminate => (has(ServiceRole::Approver)
            || (spec.external.is_some() && has(ServiceRole::Supervisor)))
            .then_some(())
            .ok_or_else(|| {
                EngineError::Forbidden(format!(
                    "`{user}` is not an approver{} named in the spec: ending a study early destroys its identifying data (MK403 p.26), a decision of the Service (MK403 p.3, p.28)",
                    if spec.external.is_some() { " or supervisor" } else { "" }
                ))
            }),
    }
}

/// Whether `user` may complete a task of `step` (MK403 p.21, p.25.2, p.30.2, p.33.1).
pub fn authorise(spec: &Spec, step: &Step, user: &str) -> Result<()> {
    use studyflow_plan::Actor;
    let personal = step.handles_personal_data();
    match step.actor {
        Actor::ServiceResearcher => {
            let person = spec
                .authorised_persons
                .iter()
                .find(|p| same_person(&p.name, user) && p.role == ServiceRole::ServiceResearcher)
                .ok_or_else(|| {
                    EngineError::Forbidden(format!(
                        "`{user}` is not a service researcher named in the spec (MK403 p.25.1)"
                    ))
                })?;
            if personal && !person.access.contains(&Access::IdentifyingData) {
                return Err(EngineError::Forbidden(format!(
                    "step `{}` touches personal data; `{user}` has no access to identifying data (MK403 p.21, p.25.2)",
                    step.id
                )));
            }
            Ok(())
        }
        Actor::Approver => spec
            .authorised_persons
            .iter()
            .any(|p| same_person(&p.name, user) && p.role == ServiceRole::Approver)
            .then_some(())
            .ok_or_else(|| {
                EngineError::Forbidden(format!("`{user}` is not an approver named in the spec"))
            }),
        Actor::ExternalResearcher => {
            let member = spec
                .external
                .as_ref()
                .and_then(|e| e.team().iter().find(|m| same_person(&m.name, user)))
                .ok_or_else(|| {
                    EngineError::Forbidden(format!(
                        "`{user}` is not in the external research team (MK403 p.4.2)"
                    ))
                })?;
            if personal && !member.processes_personal_data {
                return Err(EngineError::Forbidden(format!(
                    "step `{}` touches contact data; `{user}` is not named as processing personal data (MK403 p.30.2, p.33.1)",
                    step.id
                )));
            }
            Ok(())
        }
        _ => Err(EngineError::Forbidden(format!(
            "step `{}` is performed by {}, not by a person",
            step.id,
            step.actor.as_str()
        ))),
    }
}
