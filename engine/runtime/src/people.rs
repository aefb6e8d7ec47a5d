//! Who may act (MK403 p.3, p.21, p.25, p.26, p.28, p.30.2, p.33.1): every act of a person on a
//! study — submitting, amending, approving, contracting, starting, ending it, completing a
//! task — is given to the persons the spec names for it, and done by an authenticated
//! [`Identity`] whose login the spec binds to that person (rule SF142). A name proves nothing:
//! only the login is compared. The engine asks here before it acts; nothing else decides.

use studyflow_identity::Identity;
use studyflow_plan::Step;
use studyflow_spec::Spec;
use studyflow_spec::model::{Access, AuthorisedPerson, ServiceRole, TeamMember};

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

/// The authorised persons of the Service the spec binds to `who`'s login.
pub fn service_persons<'s>(
    spec: &'s Spec,
    who: &Identity,
) -> impl Iterator<Item = &'s AuthorisedPerson> {
    // A person outside the Service never acts in a role of the Service, whatever login an
    // applicant wrote into the spec (MK403 p.3, p.25.1).
    let login = who.is_service().then(|| who.login().to_owned());
    spec.authorised_persons
        .iter()
        .filter(move |p| login.is_some() && p.login.as_deref() == login.as_deref())
}

/// The member of the external team the spec binds to `who`'s login, if any.
pub fn team_member<'s>(spec: &'s Spec, who: &Identity) -> Option<&'s TeamMember> {
    spec.external
        .as_ref()?
        .team()
        .iter()
        .find(|m| m.login.as_deref() == Some(who.login()))
}

/// Whether the spec binds `who` to a Service person of `role`.
pub fn has_role(spec: &Spec, who: &Identity, role: ServiceRole) -> bool {
    service_persons(spec, who).any(|p| p.role == role)
}

/// Whether `who` may do `act` on the study of `spec`.
pub fn authorise_act(spec: &Spec, act: StudyAct, who: &Identity) -> Result<()> {
    let user = who.login();
    let has = |role: ServiceRole| has_role(spec, who, role);
    let in_team = team_member(spec, who).is_some();
    match act {
        StudyAct::Submit | StudyAct::Amend => (has(ServiceRole::ServiceResearcher) || in_team)
            .then_some(())
            .ok_or_else(|| {
                EngineError::Forbidden(crate::said!(
                    "`{user}` is bound to neither a service researcher nor a member of the external researcher's team in the spec: only they submit its application (MK403 p.3, p.4)",
                    "`{user}` specifikācijā nav ne dienesta pētnieks, ne pētījuma izstrādātāja komandas loceklis: pētījuma pieteikumu iesniedz tikai viņi (MK403 3., 4. p.)"
                ))
            }),
        StudyAct::Start => has(ServiceRole::ServiceResearcher)
            .then_some(())
            .ok_or_else(|| {
                EngineError::Forbidden(crate::said!(
                    "`{user}` is not bound to a service researcher of the spec: the Service's researchers start its processing (MK403 p.21, p.22)",
                    "`{user}` specifikācijā nav dienesta pētnieks: informācijas apstrādi sāk dienesta pētnieki (MK403 21., 22. p.)"
                ))
            }),
        StudyAct::Terminate => (has(ServiceRole::Approver)
            || (spec.external.is_some() && has(ServiceRole::Supervisor)))
            .then_some(())
            .ok_or_else(|| {
                if spec.external.is_some() {
                    EngineError::Forbidden(crate::said!(
                        "`{user}` is not bound to an approver or supervisor of the spec: ending a study early destroys its identifying data (MK403 p.26), a decision of the Service (MK403 p.3, p.28)",
                        "`{user}` specifikācijā nav ne apstiprinātājs, ne uzraugs: pētījuma pārtraukšana neatgriezeniski iznīcina tā identificējošos datus (MK403 26. p.), un par to lemj dienests (MK403 3., 28. p.)"
                    ))
                } else {
                    EngineError::Forbidden(crate::said!(
                        "`{user}` is not bound to an approver of the spec: ending a study early destroys its identifying data (MK403 p.26), a decision of the Service (MK403 p.3)",
                        "`{user}` specifikācijā nav apstiprinātājs: pētījuma pārtraukšana neatgriezeniski iznīcina tā identificējošos datus (MK403 26. p.), un par to lemj dienests (MK403 3. p.)"
                    ))
                }
            }),
    }
}

/// Whether `who` may receive the study's anonymised dataset: an external study's goes to the
/// authorised persons its external researcher designated, after the contract and their
/// declarations (MK403 p.30, p.30.2, p.33.1); an internal study's to the Service's researchers
/// with access to anonymised data, in the study workspace (p.22.5, p.24, p.25.1).
pub fn authorise_download(spec: &Spec, who: &Identity) -> Result<()> {
    if spec.external.is_some() {
        transfer_recipient(spec, who).map(|_| ())
    } else {
        workspace_reader(spec, who)
    }
}

/// The member of the external team, an authorised person, whom `who` is: a transfer's
/// recipient (MK403 p.30, p.30.2, p.33.1).
pub fn transfer_recipient<'s>(spec: &'s Spec, who: &Identity) -> Result<&'s TeamMember> {
    team_member(spec, who)
        .filter(|m| m.authorised_person)
        .ok_or_else(|| {
            EngineError::Forbidden(crate::said!(
                "`{}` is not bound to an authorised person of the external researcher: only they receive the anonymised data (MK403 p.30, p.30.2, p.33.1)",
                "`{}` nav pētījuma izstrādātāja pilnvarotā persona: anonimizēto informāciju saņem tikai tās (MK403 30., 30.2., 33.1. p.)",
                who.login()
            ))
        })
}

/// The member of the external team whom `who` is, who receives the consenting data subjects'
/// contact details (MK403 p.32): an authorised person (p.30, p.33.1) who processes personal
/// data (p.4.2).
pub fn contact_recipient<'s>(spec: &'s Spec, who: &Identity) -> Result<&'s TeamMember> {
    contact_recipient_named(spec, who.login()).ok_or_else(|| {
            EngineError::Forbidden(crate::said!(
                "`{}` is not bound to an authorised person of the external researcher who processes personal data: only they receive the contact list (MK403 p.32, p.33.1)",
                "`{}` nav pētījuma izstrādātāja pilnvarotā persona, kas apstrādā personas datus: kontaktu sarakstu saņem tikai tās (MK403 32., 33.1. p.)",
                who.login()
            ))
        })
}

/// The member of the external team bound to `login` who receives the contact list
/// ([`contact_recipient`]): what the transfer holds each key given to.
pub fn contact_recipient_named<'s>(spec: &'s Spec, login: &str) -> Option<&'s TeamMember> {
    spec.external
        .as_ref()?
        .team()
        .iter()
        .find(|m| m.login.as_deref() == Some(login))
        .filter(|m| m.authorised_person && m.processes_personal_data)
}

/// Whether `who` is a service researcher with access to anonymised data, who reads the study
/// workspace (MK403 p.22.5, p.24, p.25.1).
pub fn workspace_reader(spec: &Spec, who: &Identity) -> Result<()> {
    service_persons(spec, who)
        .any(|p| p.role == ServiceRole::ServiceResearcher && p.access.contains(&Access::AnonymisedData))
        .then_some(())
        .ok_or_else(|| {
            EngineError::Forbidden(crate::said!(
                "`{}` is not bound to a service researcher with access to anonymised data: only they receive the analysis dataset (MK403 p.22.5, p.24, p.25.1)",
                "`{}` nav dienesta pētnieks ar piekļuvi anonimizētai informācijai: analīzes datu kopu saņem tikai viņi (MK403 22.5., 24., 25.1. p.)",
                who.login()
            ))
        })
}

/// Whether `who` may complete a task of `step` (MK403 p.21, p.25.2, p.30.2, p.33.1).
pub fn authorise(spec: &Spec, step: &Step, who: &Identity) -> Result<()> {
    use studyflow_plan::Actor;
    let user = who.login();
    let personal = step.handles_personal_data();
    match step.actor {
        Actor::ServiceResearcher => {
            let person = service_persons(spec, who)
                .find(|p| p.role == ServiceRole::ServiceResearcher)
                .ok_or_else(|| {
                    EngineError::Forbidden(crate::said!(
                        "`{user}` is not bound to a service researcher of the spec (MK403 p.25.1)",
                        "`{user}` specifikācijā nav dienesta pētnieks (MK403 25.1. p.)"
                    ))
                })?;
            if personal && !person.access.contains(&Access::IdentifyingData) {
                return Err(EngineError::Forbidden(crate::said!(
                    "step `{}` touches personal data; `{user}` has no access to identifying data (MK403 p.21, p.25.2)",
                    "solis `{}` apstrādā personas datus, bet `{user}` nav piekļuves identificējošai informācijai (MK403 21., 25.2. p.)",
                    step.id
                )));
            }
            Ok(())
        }
        Actor::Approver => has_role(spec, who, ServiceRole::Approver)
            .then_some(())
            .ok_or_else(|| {
                EngineError::Forbidden(crate::said!(
                    "`{user}` is not bound to an approver of the spec (MK403 p.3, p.30.1)",
                    "`{user}` specifikācijā nav apstiprinātājs (MK403 3., 30.1. p.)"
                ))
            }),
        Actor::ExternalResearcher => {
            let member = team_member(spec, who).ok_or_else(|| {
                EngineError::Forbidden(crate::said!(
                    "`{user}` is not bound to a member of the external research team (MK403 p.4.2)",
                    "`{user}` nav pētījuma izstrādātāja komandas loceklis (MK403 4.2. p.)"
                ))
            })?;
            if personal && !member.processes_personal_data {
                return Err(EngineError::Forbidden(crate::said!(
                    "step `{}` touches contact data; `{user}` is not named as processing personal data (MK403 p.30.2, p.33.1)",
                    "solis `{}` apstrādā kontaktinformāciju, bet `{user}` nav norādīts kā persona, kas apstrādā personas datus (MK403 30.2., 33.1. p.)",
                    step.id
                )));
            }
            Ok(())
        }
        _ => Err(EngineError::Forbidden(crate::said!(
            "step `{}` is performed by `{}`, not by a person",
            "soli `{}` izpilda nevis persona, bet sistēma vai iestāde (`{}`)",
            step.id,
            step.actor.as_str()
        ))),
    }
}
