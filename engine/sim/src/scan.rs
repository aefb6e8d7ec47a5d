//! The identifier scan: every identifier the generator made — personal codes with and without
//! the hyphen, previous codes, case numbers, proceeding numbers, e-mail addresses and phone
//! numbers — looked up in every window of
//! some bytes (a database file, a release, an output).

use std::collections::HashSet;

use crate::population::Client;

impl Client {
    /// Every identifier of this client as it could be written down.
    pub fn identifiers(&self) -> Vec<String> {
        let code = self.personal_code.expose();
        let mut out = vec![code.replace('-', ""), code];
        out.extend(self.previous_personal_code.iter().map(|p| p.expose()));
        out.push(self.case_number.clone());
        out.extend(self.proceedings.iter().map(|p| p.number.clone()));
        // Contact details identify as surely as a code (MK403 p.32 lets them out only
        // encrypted to the researcher).
        out.extend(self.email.iter().cloned());
        out.extend(self.phone.iter().cloned());
        out
    }
}

/// The identifiers of a population, ready to be looked for: one Aho-Corasick automaton over
/// all of them, so a scan reads each byte once however many identifiers there are.
pub struct IdentifierScan {
    count: usize,
    automaton: aho_corasick::AhoCorasick,
}

impl IdentifierScan {
    pub fn of<'a>(clients: impl IntoIterator<Item = &'a Client>) -> IdentifierScan {
        let needles: HashSet<Vec<u8>> = clients
            .into_iter()
            .flat_map(Client::identifiers)
            .map(String::into_bytes)
            .collect();
        let automaton = aho_corasick::AhoCorasick::builder()
            .match_kind(aho_corasick::MatchKind::Standard)
            .build(&needles)
            .expect("an automaton over the identifiers");
        IdentifierScan {
            count: needles.len(),
            automaton,
        }
    }

    /// How many identifiers are looked for.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// How many times any identifier occurs in `bytes`, at any position (overlapping
    /// occurrences each count).
    pub fn count_in(&self, bytes: &[u8]) -> usize {
        self.automaton.find_overlapping_iter(bytes).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::population::{Config, generate};

    #[test]
    fn finds_identifiers_anywhere_and_nothing_else() {
        let clients = generate(&Config {
            seed: 3,
            clients: 20,
            ..Config::default()
        });
        let scan = IdentifierScan::of(&clients);
        let code = clients[4].personal_code.expose();
        let text = format!("x,{code};{},y", clients[7].proceedings[0].number);
        assert_eq!(scan.count_in(text.as_bytes()), 2);
        assert_eq!(scan.count_in(b"nothing to see 2026-01-01"), 0);
        assert!(scan.len() > 20 * 3);
    }
}
