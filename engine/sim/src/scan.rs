//! The identifier scan: every identifier the generator made — personal codes with and without
//! the hyphen, previous codes, case numbers, proceeding numbers, e-mail addresses and phone
//! numbers — looked up in every window of
//! some bytes (a database file, a release, an output).
//!
//! An identifier that is digits alone (a personal code without its hyphen, a proceeding
//! number) does not count strictly inside a digest: a run of 64 or more hexadecimal characters
//! with a letter among them (a SHA-256 of the audit chain or a manifest), with more of the run
//! on both sides of it. Such a run holds digits at random, and eleven of them equal to one of a
//! cohort's hundreds of thousands of codes turn up in a few demo runs out of a hundred — a
//! finding no one leaked. Everywhere else it counts: in text or binary, in a run of digits
//! alone (codes stored side by side), and at either end of a digest (a code stored beside its
//! hash).

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
    /// occurrences each count); one of digits alone not inside a digest (see the module).
    pub fn count_in(&self, bytes: &[u8]) -> usize {
        self.automaton
            .find_overlapping_iter(bytes)
            .filter(|m| {
                let digits = bytes[m.range()].iter().all(u8::is_ascii_digit);
                !digits || !in_digest(bytes, m.start(), m.end())
            })
            .count()
    }
}

/// Whether `bytes[start..end]` lies strictly inside a digest (see the module).
fn in_digest(bytes: &[u8], start: usize, end: usize) -> bool {
    let before = bytes[..start]
        .iter()
        .rev()
        .take_while(|b| b.is_ascii_hexdigit())
        .count();
    let after = bytes[end..]
        .iter()
        .take_while(|b| b.is_ascii_hexdigit())
        .count();
    let run = &bytes[start - before..end + after];
    before > 0 && after > 0 && run.len() >= 64 && run.iter().any(u8::is_ascii_alphabetic)
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
        // Digits alone count anywhere but inside a digest.
        let digits = code.replace('-', "");
        assert_eq!(scan.count_in(format!("\"{digits}\"").as_bytes()), 1);
        assert_eq!(scan.count_in(format!("x\0a{digits}bc").as_bytes()), 1);
        let digest = format!("ac727aa942ce7fc3536bcdf90dd{digits}3026d942bd68f98353ee2931011d");
        assert_eq!(
            scan.count_in(digest.as_bytes()),
            0,
            "inside a SHA-256 in hex"
        );
        // Codes stored side by side (a run of digits alone), a code beside a hash: counted.
        let other = clients[5].personal_code.expose().replace('-', "");
        let side = format!("{digits}{other}{digits}");
        assert_eq!(scan.count_in(side.as_bytes()), 3);
        let hash = "ac727aa942ce7fc3536bcdf90dddd56bfe13a4f3026d942bd68f98353ee2931011";
        assert_eq!(scan.count_in(format!("{hash}{digits}").as_bytes()), 1);
        assert_eq!(scan.count_in(format!("{digits}{hash}").as_bytes()), 1);
        assert_eq!(
            scan.count_in(format!("ab{code}cd").as_bytes()),
            1,
            "hyphenated: anywhere"
        );
        assert!(scan.len() > 20 * 3);
    }
}
