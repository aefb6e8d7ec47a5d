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
