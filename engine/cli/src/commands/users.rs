//! `studyflow user`: the operator's commands on local accounts, run on the database itself
//! (not through the server). Each is audited with the operator's system account.

use studyflow_identity::{Accounts, Policy, totp};
use studyflow_runtime::clock::micros;
use studyflow_store::Store;

use super::Context;
use super::client::password;
use super::setup::operator;
use crate::cli::UserCommand;
use crate::{EXIT_FINDINGS, EXIT_OK};

/// The accounts on the database, signing the audit when a key is given; only `user add` may
/// create the database (a new file, or an empty database; another application's is refused
/// untouched).
async fn accounts(engine: &crate::cli::EngineArgs, create: bool) -> anyhow::Result<Accounts> {
    let store = if create {
        Store::open(&engine.database).await?
    } else {
        Store::open_existing(&engine.database).await?
    };
    Ok(Accounts::new(
        super::setup::signing(engine, store)?,
        Policy::default(),
    ))
}

/// Now on the CLI's clock (the machine's; a test build's fixed one), as the server reads it.
fn now() -> anyhow::Result<i64> {
    Ok(micros(super::setup::clock()?.now()))
}

/// The second factor's secret, for the operator to give the person.
fn secret_said(login: &str, secret: &[u8]) -> String {
    format!(
        "second factor of {login}: give the person, once and privately, the secret\n  {}\nor this URI for an authenticator app (as a QR code):\n  {}\n",
        totp::base32(secret),
        totp::uri(secret, login, totp::ISSUER)
    )
}

/// The enrolment code, for the operator to give the person, and where and until when it works.
fn enrolment_said(login: &str, enrolment: &studyflow_identity::Enrolment) -> String {
    let until =
        studyflow_runtime::clock::riga_time(studyflow_runtime::clock::from_micros(enrolment.until));
    format!(
        "enrolment of {login}: give the person, once and privately, the code\n  {}\ngood until {until} (Europe/Riga); they choose their password and second factor on the server's /enrol page\n",
        enrolment.code.expose()
    )
}

fn new_password(file: Option<&std::path::Path>) -> anyhow::Result<String> {
    let first = password(file, "password for the account: ")?;
    if file.is_none() {
        let again = password(None, "again: ")?;
        anyhow::ensure!(
            first == again,
            "the two passwords differ; nothing was changed"
        );
    }
    Ok(first)
}

async fn set_disabled(
    engine: &crate::cli::EngineArgs,
    login: &str,
    disable: bool,
) -> anyhow::Result<Result<String, studyflow_identity::IdentityError>> {
    let accounts = accounts(engine, false).await?;
    Ok(accounts
        .set_disabled(login, disable, &operator(), now()?)
        .await
        .map(|()| {
            format!(
                "{} {login}{}\n",
                if disable { "disabled" } else { "enabled" },
                if disable {
                    "; its sessions and tokens are revoked"
                } else {
                    ""
                }
            )
        }))
}

pub async fn run(command: UserCommand, ctx: &mut Context<'_>) -> anyhow::Result<u8> {
    // What was done, said once it stands; a failure to say it (a closed output) is the
    // command's error, not lost.
    let outcome: Result<String, studyflow_identity::IdentityError> = match command {
        UserCommand::Add {
            engine,
            login,
            name,
            password_file,
            external,
            oidc_subject,
            enrol,
        } => {
            // The first account may create the installation's database (a new file, or an
            // empty database; another application's is refused untouched).
            let accounts = accounts(&engine, true).await?;
            match oidc_subject {
                None if enrol => accounts
                    .add_enrolling(&login, &name, external, &operator(), now()?)
                    .await
                    .map(|e| {
                        format!(
                            "added account {login} ({})\n{}",
                            name.trim(),
                            enrolment_said(&login, &e)
                        )
                    }),
                Some(subject) => accounts
                    .add_oidc(&login, &name, &subject, external, &operator(), now()?)
                    .await
                    .map(|()| {
                        format!(
                            "added account {login} ({name}), who signs in at the identity provider as subject {subject}\n"
                        )
                    }),
                None => {
                    let pw = new_password(password_file.as_deref())?;
                    accounts
                        .add(&login, &name, &pw, external, &operator(), now()?)
                        .await
                        .map(|a| {
                            format!(
                                "added account {login} ({})\n{}",
                                a.display_name,
                                secret_said(&login, &a.totp_secret)
                            )
                        })
                }
            }
        }
        UserCommand::List { engine } => {
            let accounts = accounts(&engine, false).await?;
            let now = now()?;
            accounts.list().await.map(|list| {
                if list.is_empty() {
                    return "no local accounts\n".to_owned();
                }
                let mut said = String::new();
                for a in list {
                    let enrolling = match a.enrolling_until {
                        0 => String::new(),
                        t if t > now => format!(
                            ", not enrolled yet (the code is good until {})",
                            studyflow_runtime::clock::riga_time(
                                studyflow_runtime::clock::from_micros(t)
                            )
                        ),
                        _ => ", not enrolled, the code ran out (user reset --enrol)".to_owned(),
                    };
                    said.push_str(&format!(
                        "{:<32} {:<32} {}{}{}{enrolling}\n",
                        a.login,
                        a.display_name,
                        if a.disabled { "disabled" } else { "enabled" },
                        if a.external {
                            ", outside the Service"
                        } else {
                            ""
                        },
                        if a.locked_until > now {
                            ", locked after failed sign-ins"
                        } else {
                            ""
                        }
                    ));
                }
                said
            })
        }
        UserCommand::Unlock { engine, login } => {
            let accounts = accounts(&engine, false).await?;
            accounts
                .unlock(&login, &operator(), now()?)
                .await
                .map(|()| format!("unlocked {login}\n"))
        }
        UserCommand::Disable { engine, login } => set_disabled(&engine, &login, true).await?,
        UserCommand::Enable { engine, login } => set_disabled(&engine, &login, false).await?,
        UserCommand::Reset {
            engine,
            login,
            enrol: true,
            ..
        } => {
            let accounts = accounts(&engine, false).await?;
            accounts
                .reset_enrolling(&login, &operator(), now()?)
                .await
                .map(|e| {
                    format!(
                        "reset {login}: enabled, its password and second factor gone, its sessions and tokens revoked\n{}",
                        enrolment_said(&login, &e)
                    )
                })
        }
        UserCommand::Reset {
            engine,
            login,
            password_file,
            enrol: false,
        } => {
            let pw = new_password(password_file.as_deref())?;
            let accounts = accounts(&engine, false).await?;
            accounts
                .reset(&login, &pw, &operator(), now()?)
                .await
                .map(|secret| {
                    format!(
                        "reset {login}: enabled, with a new password and second factor; its sessions and tokens revoked\n{}",
                        secret_said(&login, &secret)
                    )
                })
        }
    };
    match outcome {
        Ok(said) => {
            ctx.out.write_all(said.as_bytes())?;
            ctx.out.flush()?;
            Ok(EXIT_OK)
        }
        Err(e) => {
            writeln!(ctx.err, "studyflow: refused: {e}")?;
            Ok(EXIT_FINDINGS)
        }
    }
}
