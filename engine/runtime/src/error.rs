//! Why a command of the engine was refused or failed.

use studyflow_spec::Diagnostic;
use studyflow_store::StoreError;

/// Why a command was refused or failed. Messages name studies, steps and users, never data
/// about a subject. A refusal is said in English (the CLI, the API's `detail`, the logs) and in
/// Latvian (the pages of a person who reads Latvian, the API's `detail_lv`).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the spec does not validate ({} error(s)); nothing was stored", .0.iter().filter(|d| d.is_error()).count())]
    Invalid(Vec<Diagnostic>),
    #[error("{0}")]
    NotFound(Said),
    #[error("{0}")]
    Forbidden(Said),
    #[error("{0}")]
    Refused(Said),
    /// The act needs a recent proof of identity (step-up): sign in again, then repeat it.
    #[error("{0}")]
    Reauthenticate(Said),
}

impl EngineError {
    /// What was said, in Latvian, for a refusal that says it in words.
    pub fn latvian(&self) -> Option<&str> {
        match self {
            EngineError::NotFound(s)
            | EngineError::Forbidden(s)
            | EngineError::Refused(s)
            | EngineError::Reauthenticate(s) => Some(&s.lv),
            EngineError::Store(_) | EngineError::Invalid(_) => None,
        }
    }
}

/// One thing said in English and in Latvian (the regulation's words: MK403's official text is
/// Latvian). Shown as the English; [`said!`] makes one from two format strings over the same
/// arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Said {
    pub en: String,
    pub lv: String,
}

impl std::fmt::Display for Said {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.en)
    }
}

impl std::ops::Deref for Said {
    type Target = str;

    /// The English, as the CLI and the logs read it.
    fn deref(&self) -> &str {
        &self.en
    }
}

/// `said!("english {x}", "latviski {x}")`, or with arguments used by both:
/// `said!("{} in English", "{} latviski", n)`.
#[macro_export]
macro_rules! said {
    ($en:literal, $lv:literal $(,)?) => {
        $crate::error::Said {
            en: format!($en),
            lv: format!($lv),
        }
    };
    ($en:literal, $lv:literal, $($arg:expr),+ $(,)?) => {
        $crate::error::Said {
            en: format!($en, $($arg),+),
            lv: format!($lv, $($arg),+),
        }
    };
}

pub type Result<T> = std::result::Result<T, EngineError>;

/// The Latvian name of a state, as the pages name it.
pub(crate) trait Latvian {
    fn lv(&self) -> &'static str;
}

impl Latvian for studyflow_store::StudyState {
    fn lv(&self) -> &'static str {
        use studyflow_store::StudyState::*;
        match self {
            Submitted => "iesniegts",
            Approved => "apstiprināts",
            Contracted => "līgums noslēgts",
            Running => "notiek",
            Completed => "pabeigts",
            Terminated => "pārtraukts",
        }
    }
}

impl Latvian for studyflow_store::VersionState {
    fn lv(&self) -> &'static str {
        use studyflow_store::VersionState::*;
        match self {
            Submitted => "iesniegta",
            Approved => "apstiprināta",
            Superseded => "aizstāta",
            Refused => "neapstiprināta",
        }
    }
}

impl Latvian for studyflow_store::RunState {
    fn lv(&self) -> &'static str {
        use studyflow_store::RunState::*;
        match self {
            Pending => "gaida iepriekšējos soļus",
            Ready => "gatavs",
            Running => "notiek",
            Waiting => "gaida",
            Done => "izpildīts",
            Failed => "neizdevās",
            Cancelled => "atcelts",
        }
    }
}

/// An act that needs a recent proof of identity (MK403 p.25.3: access to what is identifying
/// or handed over is checked), named in the refusal that asks for one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProvenAct {
    Approve,
    Refuse,
    RecordContract,
    Terminate,
    DownloadRelease,
    ReadTaskFiles,
    SupplyTaskFile,
    /// A command line's sign-in through the browser, which gives it a personal token.
    ApproveSignIn,
    /// Giving the key the contact list is encrypted to (MK403 p.32).
    GiveContactKey,
}

impl ProvenAct {
    /// "to …"
    pub fn en(self) -> &'static str {
        match self {
            ProvenAct::Approve => "approve",
            ProvenAct::Refuse => "refuse",
            ProvenAct::RecordContract => "record a contract",
            ProvenAct::Terminate => "terminate a study",
            ProvenAct::DownloadRelease => "download a released dataset",
            ProvenAct::GiveContactKey => "give the key the contact list is encrypted to",
            ProvenAct::ReadTaskFiles => "read what was prepared for the task",
            ProvenAct::SupplyTaskFile => "supply a file for the task",
            ProvenAct::ApproveSignIn => "approve a command line's sign-in",
        }
    }

    /// "lai …"
    pub fn lv(self) -> &'static str {
        match self {
            ProvenAct::Approve => "apstiprinātu",
            ProvenAct::Refuse => "noraidītu",
            ProvenAct::RecordContract => "ierakstītu līgumu",
            ProvenAct::Terminate => "pārtrauktu pētījumu",
            ProvenAct::DownloadRelease => "lejupielādētu nodoto datu kopu",
            ProvenAct::GiveContactKey => "norādītu atslēgu, ar kuru šifrē kontaktu sarakstu",
            ProvenAct::ReadTaskFiles => "lasītu uzdevumam sagatavoto",
            ProvenAct::SupplyTaskFile => "augšupielādētu failu uzdevumam",
            ProvenAct::ApproveSignIn => "atļautu komandrindas pierakstīšanos",
        }
    }
}

#[cfg(test)]
mod tests {
    /// The string literals of `text` from `at` on, in order (their raw text).
    fn literals(text: &str, at: usize) -> impl Iterator<Item = String> + '_ {
        let mut rest = &text[at..];
        std::iter::from_fn(move || {
            let start = rest.find('"')?;
            let mut out = String::new();
            let mut chars = rest[start + 1..].char_indices();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, e)) = chars.next() {
                            out.push(e);
                        }
                    }
                    '"' => {
                        rest = &rest[start + 1 + i + 1..];
                        return Some(out);
                    }
                    _ => out.push(c),
                }
            }
            None
        })
    }

    /// The MK403 points a text cites, whichever way it writes them (`p.30.2`, `30.2. p.`), and
    /// the names in backquotes.
    fn facts(s: &str) -> Vec<String> {
        let mut v = studyflow_spec::regulation::cited_points(s);
        v.extend(s.split('`').skip(1).step_by(2).map(str::to_owned));
        v.sort();
        v
    }

    /// Every refusal the engine says in both languages (`said!` and `Said { en, lv }`) cites
    /// the same MK403 points and names the same things in each, and its Latvian is Latvian.
    #[test]
    fn every_refusal_is_said_in_latvian_too() {
        let sources = [
            ("engine.rs", include_str!("engine.rs")),
            ("people.rs", include_str!("people.rs")),
            ("status.rs", include_str!("status.rs")),
        ];
        let english = [
            " the ", "The ", " and ", " of ", " from ", " with ", " is ", " a ", " not ", " has ",
        ];
        let mut pairs = 0;
        for (file, text) in sources {
            // `said!(en, lv, …)`: its first two texts; `Said { en: …, lv: … }`: the first text
            // after each name.
            let macros = text.match_indices("said!(").map(|(i, _)| (i, i));
            let structs = text.match_indices("Said {").map(|(i, _)| {
                let en = i + text[i..].find("en:").expect("en:");
                (en, en + text[en..].find("lv:").expect("lv:"))
            });
            for (at_en, at_lv) in macros.chain(structs) {
                let mut it = literals(text, at_en);
                let en = it.next();
                let lv = if at_lv == at_en {
                    it.next()
                } else {
                    literals(text, at_lv).next()
                };
                let (Some(en), Some(lv)) = (en, lv) else {
                    panic!("{file}: no two texts after byte {at_en}");
                };
                pairs += 1;
                assert_ne!(en, lv, "{file}: {en}");
                let words: String = lv.split('`').step_by(2).collect();
                for w in english {
                    assert!(!words.contains(w), "{file}: {lv:?} has {w:?}");
                }
                assert_eq!(facts(&en), facts(&lv), "{file}:\n{en}\n{lv}");
            }
        }
        assert!(pairs > 60, "{pairs}");
    }
}
