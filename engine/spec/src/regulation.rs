//! The regulation's own words for an editor's hover: each point of the official Latvian text
//! (`docs/regulation/MK403-2025.lv.txt`, from likumi.lv), and the English working digest of its
//! top-level point (`docs/regulation/digest.md`, a copy of the team's `../shared/regulation/
//! digest.md`). Where the two differ, the Latvian text wins; the digest is a reading aid.

use std::collections::HashMap;
use std::sync::OnceLock;

/// The official Latvian text, as likumi.lv publishes it.
pub const LATVIAN: &str = include_str!("../../../docs/regulation/MK403-2025.lv.txt");
/// The English working digest.
pub const DIGEST: &str = include_str!("../../../docs/regulation/digest.md");

/// `p.13.3` or `13.3` → `13.3`.
fn number(point: &str) -> &str {
    point.strip_prefix("p.").unwrap_or(point)
}

/// Each numbered point of the Latvian text (`7`, `12.2`, `16.2.2`) and its words, whitespace
/// collapsed (likumi.lv puts a no-break space after the number). A point's text runs to the
/// next point's number, so a point with sub-points holds their text too.
pub fn latvian_points() -> &'static HashMap<String, String> {
    static POINTS: OnceLock<HashMap<String, String>> = OnceLock::new();
    POINTS.get_or_init(|| {
        let mut out = HashMap::new();
        let mut current: Option<(String, String)> = None;
        for line in LATVIAN.lines() {
            let number: String = line
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            let starts_point = number.ends_with('.')
                && number.len() > 1
                && line[number.len()..].starts_with([' ', '\u{a0}']);
            // The annexes and the signatures end the points.
            if line.starts_with("Ministru prezident") || line.starts_with("Pielikums") {
                break;
            }
            if starts_point {
                if let Some((n, t)) = current.take() {
                    out.insert(n, t);
                }
                current = Some((number.trim_end_matches('.').to_owned(), String::new()));
            }
            if let Some((_, t)) = &mut current {
                let words = line.replace('\u{a0}', " ");
                let words = words.split_whitespace().collect::<Vec<_>>().join(" ");
                if !words.is_empty() {
                    if !t.is_empty() {
                        t.push(' ');
                    }
                    t.push_str(&words);
                }
            }
        }
        if let Some((n, t)) = current {
            out.insert(n, t);
        }
        out
    })
}

/// The Latvian words of `point` (`p.13.3`), its number first.
pub fn latvian(point: &str) -> Option<&'static str> {
    latvian_points().get(number(point)).map(String::as_str)
}

/// The digest's English of the top-level point of `point` (`p.13.3` → what the digest says of
/// p.13), markdown emphasis removed.
pub fn digest(point: &str) -> Option<&'static str> {
    static POINTS: OnceLock<HashMap<String, String>> = OnceLock::new();
    let points = POINTS.get_or_init(|| {
        let mut out = HashMap::new();
        let mut current: Option<(String, String)> = None;
        for line in DIGEST.lines() {
            let head = line
                .strip_prefix("- **p.")
                .and_then(|rest| rest.split_once("**"));
            if let Some((n, text)) = head {
                if let Some((k, t)) = current.take() {
                    out.insert(k, t);
                }
                current = Some((n.to_owned(), text.trim().to_owned()));
            } else if let Some((_, t)) = &mut current {
                // A bullet's text goes on in the lines indented under it.
                if line.starts_with("  ") && !line.trim().is_empty() {
                    t.push(' ');
                    t.push_str(line.trim());
                } else if let Some((k, t)) = current.take() {
                    out.insert(k, t);
                }
            }
        }
        if let Some((k, t)) = current {
            out.insert(k, t);
        }
        out.into_iter()
            .map(|(k, t)| (k, t.replace("**", "").replace('*', "")))
            .collect()
    });
    let top = number(point).split('.').next()?;
    points.get(top).map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_point_has_its_latvian_words_and_its_digest() {
        // All 35 points, and the sub-points the rules cite.
        for n in 1..=35 {
            let p = format!("p.{n}");
            let lv = latvian(&p).unwrap_or_else(|| panic!("{p} not in the Latvian text"));
            assert!(lv.starts_with(&format!("{n}. ")), "{p}: {lv}");
            assert!(
                digest(&p).is_some_and(|d| d.len() > 20),
                "{p} not in the digest"
            );
        }
        assert!(
            latvian("p.8").unwrap().contains("10 darbdienas"),
            "{:?}",
            latvian("p.8")
        );
        assert!(latvian("p.13.3").unwrap().starts_with("13.3. "));
        assert!(latvian("12.1").unwrap().contains("personas kod"));
        assert!(digest("p.8").unwrap().contains("10 working days"));
        assert_eq!(digest("p.13.3"), digest("p.13"));
        assert!(latvian("p.99").is_none() && digest("p.99").is_none());
    }
}

/// The points a text cites, whichever way it writes them: in English `p.30.2`, `p.19–20`
/// (a range), and in Latvian `30.2. p.`, `3., 4. p.`, `33.3.–33.5. p.`. Each as its number
/// (`30.2`) or range (`19–20`), sorted: so a text and its translation can be held to cite the
/// same points.
pub fn cited_points(text: &str) -> Vec<String> {
    let b = text.as_bytes();
    // A number `19` or `19.1` at `i` (not the end of a longer one), and where it ends.
    let number_at = |i: usize| -> Option<usize> {
        if i >= b.len() || !b[i].is_ascii_digit() {
            return None;
        }
        let mut j = i;
        while j < b.len()
            && (b[j].is_ascii_digit()
                || (b[j] == b'.' && b.get(j + 1).is_some_and(u8::is_ascii_digit)))
        {
            j += 1;
        }
        Some(j)
    };
    let dash = "–".as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let fresh = i == 0 || !(b[i - 1].is_ascii_digit() || b[i - 1] == b'.');
        // English: `p.N` or `p.N–M`.
        if b[i..].starts_with(b"p.")
            && (i == 0 || !b[i - 1].is_ascii_alphabetic())
            && let Some(end) = number_at(i + 2)
        {
            let first = &text[i + 2..end];
            match b[end..]
                .starts_with(dash)
                .then(|| number_at(end + dash.len()))
                .flatten()
            {
                Some(to) => {
                    out.push(format!("{first}–{}", &text[end + dash.len()..to]));
                    i = to;
                }
                None => {
                    out.push(first.to_owned());
                    i = end;
                }
            }
            continue;
        }
        // Latvian: `N. p.`, `N., M. p.`, `N.–M. p.`.
        if fresh && let Some(end) = number_at(i) {
            let mut items: Vec<String> = Vec::new();
            let mut at = i;
            let mut stop = end;
            let mut range_from: Option<String> = None;
            let mut found = false;
            while let Some(end) = number_at(at) {
                if b.get(end) != Some(&b'.') {
                    break;
                }
                let n = text[at..end].to_owned();
                match range_from.take() {
                    Some(from) => items.push(format!("{from}–{n}")),
                    None => items.push(n),
                }
                let after = end + 1;
                stop = after;
                if b[after..].starts_with(b" p.") {
                    found = true;
                    stop = after + 3;
                    break;
                }
                if b[after..].starts_with(b", ") {
                    at = after + 2;
                } else if b[after..].starts_with(dash) {
                    range_from = items.pop();
                    at = after + dash.len();
                } else {
                    break;
                }
            }
            if found {
                out.extend(items);
                i = stop;
                continue;
            }
            i = end.max(i + 1);
            continue;
        }
        i += 1;
    }
    out.sort();
    out
}

#[cfg(test)]
mod cited_tests {
    use super::cited_points;

    #[test]
    fn points_are_read_in_either_language() {
        let en = "to start (MK403 p.21, p.22; p.19–20, p.33.3–33.5), not p.8 before 2026-11-28 or 10 days";
        let lv = "lai sāktu (MK403 21., 22. p.; 19.–20., 33.3.–33.5. p.), ne 8. p. pirms 2026-11-28 vai 10. darbdienā";
        assert_eq!(cited_points(en), ["19–20", "21", "22", "33.3–33.5", "8"]);
        assert_eq!(cited_points(en), cited_points(lv));
        assert_eq!(cited_points("help.30 and 3.5 and p."), Vec::<String>::new());
    }
}
