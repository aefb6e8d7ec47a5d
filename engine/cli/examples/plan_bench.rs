//! Benchmark: compiles the validation benchmark's corpus of ~200-line study specs into plans
//! on one thread and prints plans per second — from the typed spec (the compiler and the plan
//! checks alone) and from the bytes (`studyflow validate`'s whole pipeline with the plan) —
//! then the calendar's figures.
//!
//! ```sh
//! cargo run --profile production -p studyflow-cli --example plan_bench -- [--specs N]
//! ```

use std::time::Instant;

use studyflow_calendar::Calendar;

#[path = "common/corpus.rs"]
mod corpus;
// Its `main` is the calendar crate's example entry point; here only `run` is called.
#[allow(dead_code)]
#[path = "../../calendar/examples/calendar_bench.rs"]
mod calendar_bench;

/// The same allocator as the `studyflow` binary, so the figures are the CLI's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let n = corpus::specs_arg(10_000);
    let corpus: Vec<String> = (0..n).map(corpus::generate).collect();
    let lines = corpus.iter().map(|s| s.lines().count()).sum::<usize>() as f64 / n as f64;
    let calendar = Calendar::latvia();
    let today = jiff::civil::date(2026, 11, 28);
    let typed: Vec<_> = corpus
        .iter()
        .map(|s| {
            let c = studyflow_plan::check(s.as_bytes(), &calendar, Some(today));
            assert_eq!(c.checked.errors(), 0, "{:#?}", c.checked.diagnostics);
            assert!(c.checked.warnings() == 0, "{:#?}", c.checked.diagnostics);
            c.checked.spec.expect("typed")
        })
        .collect();
    let steps = studyflow_plan::compile(&typed[0], corpus[0].as_bytes(), &calendar, Some(today))
        .0
        .graph
        .node_count();
    println!("corpus: {n} specs, {lines:.0} lines each on average, {steps} steps per plan");

    let rounds = 5;
    let mut compile_rates = Vec::new();
    let mut whole_rates = Vec::new();
    let mut sink = 0usize;
    for _ in 0..rounds {
        let start = Instant::now();
        for (spec, src) in typed.iter().zip(&corpus) {
            let (plan, findings) =
                studyflow_plan::compile(spec, src.as_bytes(), &calendar, Some(today));
            sink += plan.graph.edge_count() + findings.len();
        }
        compile_rates.push(n as f64 / start.elapsed().as_secs_f64());
        let start = Instant::now();
        for src in &corpus {
            let c = studyflow_plan::check(src.as_bytes(), &calendar, Some(today));
            sink += c.checked.diagnostics.len() + usize::from(c.plan.is_some());
        }
        whole_rates.push(n as f64 / start.elapsed().as_secs_f64());
    }
    for rates in [&mut compile_rates, &mut whole_rates] {
        rates.sort_by(f64::total_cmp);
    }
    println!(
        "studyflow_plan::compile (typed spec → plan + checks), 1 thread, {rounds} rounds: median {:.0} plans/s ({:.1} µs/plan), best {:.0}",
        compile_rates[rounds / 2],
        1e6 / compile_rates[rounds / 2],
        compile_rates[rounds - 1]
    );
    println!(
        "studyflow_plan::check (bytes → YAML, schema, rules, plan, checks), 1 thread: median {:.0} plans/s ({:.1} µs/plan), best {:.0}",
        whole_rates[rounds / 2],
        1e6 / whole_rates[rounds / 2],
        whole_rates[rounds - 1]
    );
    println!(
        "memory: peak {} KiB (VmHWM) [{sink}]",
        corpus::memory("VmHWM:")
    );
    println!("calendar:");
    calendar_bench::run();
}
