//! What the tests of this crate and of the crates built on it share (the `testing` feature;
//! never in a release build).

/// What is wrong with a finding's Latvian, if anything: it is missing, blank or the
/// English; it cites other MK403 points than the English, or leaves out a spec key or
/// value the English names (in backquotes); or it has common English words outside
/// backquotes. (A YAML syntax error and a value serde refuses carry their parser's
/// English detail; the Latvian of a value of the wrong form names the pattern, which the
/// English leaves to its help, shown on no Latvian page.)
pub fn latvian_problems(d: &crate::Diagnostic) -> Vec<String> {
    let mut wrong = Vec::new();
    let Some(lv) = d.message_lv.as_deref() else {
        return vec!["no Latvian".to_owned()];
    };
    if lv.trim().is_empty() || lv == d.message {
        wrong.push(format!("Latvian blank or the English: {lv:?}"));
    }
    let points = crate::regulation::cited_points;
    if points(&d.message) != points(lv) {
        wrong.push(format!(
            "cites {:?}, the English {:?}: {lv}",
            points(lv),
            points(&d.message)
        ));
    }
    let named = |s: &str| {
        let mut v: Vec<String> = s.split('`').skip(1).step_by(2).map(str::to_owned).collect();
        v.sort();
        v
    };
    let mut left = named(lv);
    for name in named(&d.message) {
        match left.iter().position(|n| *n == name) {
            Some(i) => {
                left.remove(i);
            }
            None => wrong.push(format!("`{name}` not named: {lv}")),
        }
    }
    let parser_detail = d.code == "SF001" || lv.starts_with("nederīga vērtība: ");
    let words: String = lv.split('`').step_by(2).collect();
    for w in [
        " the ", "The ", " and ", " of ", " from ", " with ", " is ", " a ", " not ", " has ",
    ] {
        if !parser_detail && words.contains(w) {
            wrong.push(format!("English {w:?} in {lv:?}"));
        }
    }
    wrong
}
