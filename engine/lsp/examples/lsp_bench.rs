//! How long `studyflow lsp` takes to check a spec after a change (issue #14's target: under
//! 50 ms for a 200-line spec): every layer's findings of each of the three specs (240–286
//! lines) and of one with a finding, as the server computes them. Prints the numbers.
//!
//!   cargo run --profile production -p studyflow-lsp --example lsp_bench

use std::time::Instant;

fn main() {
    let calendar = studyflow_calendar::Calendar::latvia();
    let today = jiff::Zoned::now().date();
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../specs/");
    let mut texts: Vec<(String, String)> = [
        "recidivism-2026-cohort",
        "probation-client-survey",
        "resocialisation-programmes-university",
    ]
    .iter()
    .map(|n| {
        (
            (*n).to_owned(),
            std::fs::read_to_string(format!("{root}{n}.yaml")).unwrap(),
        )
    })
    .collect();
    let broken = texts[0].1.replacen("purpose:", "purpose_of_it:", 1);
    texts.push(("recidivism with a finding".into(), broken));
    for (name, text) in &texts {
        // Warm up once (the schema and rules are compiled on first use).
        let n = studyflow_lsp::findings(text, &calendar, today).len();
        let mut times: Vec<f64> = (0..200)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(studyflow_lsp::findings(text, &calendar, today));
                t.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        times.sort_by(f64::total_cmp);
        println!(
            "{name:<40} {:>4} lines {n:>3} findings  p50 {:>6.2} ms  p99 {:>6.2} ms  max {:>6.2} ms",
            text.lines().count(),
            times[times.len() / 2],
            times[times.len() * 99 / 100],
            times[times.len() - 1]
        );
    }
}
