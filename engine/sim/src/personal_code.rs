//! Latvian personal codes (personas kods): the format before 1 July 2017, `DDMMYY-CNNNP` (birth
//! date, century digit 0/1/2 for the 19th/20th/21st century, serial, check digit), and the
//! format since, `3XNNNN-NNNNP` (`X` 2–9, no birth date). Both end in the same check digit:
//! `(1101 − Σ wᵢ·dᵢ) mod 11` with weights 1, 6, 3, 7, 9, 10, 5, 8, 4, 2; a remainder of 10 is
//! never issued.
//!
//! A code is the most identifying thing studyflow handles: [`PersonalCode`]'s `Debug` does not
//! show it, so it cannot slip into a log or an error by accident.

use jiff::civil::Date;

use crate::rng::Rng;

pub use studyflow_spec::catalogue::personal_code_check_digit as check_digit;

/// A personal code: eleven digits, written with a hyphen after the sixth.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PersonalCode([u8; 11]);

impl std::fmt::Debug for PersonalCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PersonalCode(******-*****)")
    }
}

impl PersonalCode {
    /// The code as written, `DDMMYY-NNNNN`. Only for the registries and the encrypted vault.
    pub fn expose(&self) -> String {
        let d: String = self.0.iter().map(|d| char::from(b'0' + d)).collect();
        format!("{}-{}", &d[..6], &d[6..])
    }

    pub fn digits(&self) -> &[u8; 11] {
        &self.0
    }

    /// Whether it is in the format without a birth date (since 1 July 2017).
    pub fn is_new_format(&self) -> bool {
        self.0[0] == 3 && self.0[1] >= 2
    }

    /// Parses `DDMMYY-NNNNN` or eleven digits, checking the check digit and, for the old
    /// format, the birth date and century digit.
    pub fn parse(text: &str) -> Option<PersonalCode> {
        let digits: Vec<u8> = text
            .bytes()
            .filter(|b| *b != b'-')
            .map(|b| b.wrapping_sub(b'0'))
            .collect();
        if digits.len() != 11 || digits.iter().any(|d| *d > 9) || text.len() > 12 {
            return None;
        }
        let mut a = [0u8; 11];
        a.copy_from_slice(&digits);
        let mut ten = [0u8; 10];
        ten.copy_from_slice(&a[..10]);
        if check_digit(&ten) != Some(a[10]) {
            return None;
        }
        let code = PersonalCode(a);
        if !code.is_new_format() && code.birth_date().is_none() {
            return None;
        }
        Some(code)
    }

    /// The birth date an old-format code carries.
    pub fn birth_date(&self) -> Option<Date> {
        if self.is_new_format() {
            return None;
        }
        let n = |i: usize| i16::from(self.0[i]) * 10 + i16::from(self.0[i + 1]);
        let century = match self.0[6] {
            0 => 1800,
            1 => 1900,
            2 => 2000,
            _ => return None,
        };
        Date::new(century + n(4), n(2) as i8, n(0) as i8).ok()
    }

    /// An old-format code for someone born on `birth`, with a random serial (retried until the
    /// check digit exists).
    pub fn old_format(birth: Date, rng: &mut Rng) -> PersonalCode {
        let century = match birth.year() {
            ..1900 => 0,
            1900..2000 => 1,
            _ => 2,
        };
        let yy = (birth.year() % 100) as u8;
        loop {
            let serial = rng.below(1000) as u16;
            let ten = [
                birth.day() as u8 / 10,
                birth.day() as u8 % 10,
                birth.month() as u8 / 10,
                birth.month() as u8 % 10,
                yy / 10,
                yy % 10,
                century,
                (serial / 100) as u8,
                (serial / 10 % 10) as u8,
                (serial % 10) as u8,
            ];
            if let Some(c) = check_digit(&ten) {
                let mut a = [0u8; 11];
                a[..10].copy_from_slice(&ten);
                a[10] = c;
                return PersonalCode(a);
            }
        }
    }

    /// A code in the format since 1 July 2017: `32` and random digits.
    pub fn new_format(rng: &mut Rng) -> PersonalCode {
        loop {
            let mut ten = [0u8; 10];
            ten[0] = 3;
            ten[1] = 2;
            for d in &mut ten[2..] {
                *d = rng.below(10) as u8;
            }
            if let Some(c) = check_digit(&ten) {
                let mut a = [0u8; 11];
                a[..10].copy_from_slice(&ten);
                a[10] = c;
                return PersonalCode(a);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn published_examples_check() {
        // Codes published as format examples (one of each format).
        for code in ["325035-11782", "290758-10403"] {
            assert!(PersonalCode::parse(code).is_some(), "{code}");
        }
        assert!(
            PersonalCode::parse("325035-11783").is_none(),
            "a wrong check digit"
        );
        assert!(PersonalCode::parse("320758-1040").is_none(), "too short");
        let old = PersonalCode::parse("290758-10403").unwrap();
        assert_eq!(old.birth_date(), Some(date(1958, 7, 29)));
        assert!(PersonalCode::parse("325035-11782").unwrap().is_new_format());
    }

    #[test]
    fn generated_codes_parse_back_and_never_show_in_debug() {
        let mut rng = Rng::new(42);
        for i in 0..2000 {
            let birth = rng.date(date(1940, 1, 1), date(2010, 12, 31));
            let code = if i % 3 == 0 {
                PersonalCode::new_format(&mut rng)
            } else {
                PersonalCode::old_format(birth, &mut rng)
            };
            let text = code.expose();
            assert_eq!(PersonalCode::parse(&text), Some(code.clone()), "{i}");
            if !code.is_new_format() {
                assert_eq!(code.birth_date(), Some(birth));
            }
            assert!(!format!("{code:?}").contains(&text[..6]));
        }
    }
}
