//! Benchmark: validates a corpus of generated ~200-line study specs on one thread and prints
//! specs per second and peak memory. With `--compare`, also writes the corpus to a temporary
//! folder and times `check-jsonschema` (schema only, no legal rules) and the `studyflow`
//! binary on the same files.
//!
//! ```sh
//! cargo build --profile production -p studyflow-cli
//! cargo run --profile production -p studyflow-cli --example validate_bench -- [--specs N] [--compare]
//! ```

use std::time::Instant;

#[path = "common/corpus.rs"]
mod corpus;
use corpus::{generate, memory};

/// The same allocator as the `studyflow` binary, so the figures are the CLI's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n = corpus::specs_arg(20_000);
    let compare = args.iter().any(|a| a == "--compare");

    let corpus: Vec<String> = (0..n).map(generate).collect();
    let lines = corpus.iter().map(|s| s.lines().count()).sum::<usize>() as f64 / n as f64;
    let bytes = corpus.iter().map(String::len).sum::<usize>();

    // Sanity: the corpus is realistic, i.e. clean; a benchmark of error paths would flatter us.
    for (i, spec) in corpus.iter().take(50).enumerate() {
        let c = studyflow_spec::check(spec.as_bytes());
        assert_eq!(
            c.errors(),
            0,
            "generated spec {i} is invalid: {:#?}",
            c.diagnostics
        );
    }

    // Warm-up compiles the schema once, as every run of the CLI does.
    let _ = studyflow_spec::check(corpus[0].as_bytes());
    let before = memory("VmRSS:");
    // Several rounds over the whole corpus: on a shared machine one round can be slowed by a
    // neighbour, so the median and the best are both printed.
    let rounds = 5;
    let mut rates = Vec::with_capacity(rounds);
    let mut findings = 0usize;
    for _ in 0..rounds {
        let start = Instant::now();
        findings = 0;
        for spec in &corpus {
            findings += studyflow_spec::check(spec.as_bytes()).diagnostics.len();
        }
        rates.push(n as f64 / start.elapsed().as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    let median = rates[rounds / 2];
    let best = rates[rounds - 1];
    println!(
        "corpus: {n} specs, {lines:.0} lines and {:.1} KiB each on average",
        bytes as f64 / n as f64 / 1024.0
    );
    println!(
        "studyflow_spec::check, 1 thread, {rounds} rounds: median {median:.0} specs/s ({:.1} µs/spec, {:.1} MiB/s), best {best:.0} specs/s, {findings} findings per round",
        1e6 / median,
        median * bytes as f64 / n as f64 / 1024.0 / 1024.0
    );
    println!(
        "memory: peak {} KiB (VmHWM), of which {before} KiB were the corpus and the compiled schema before validating",
        memory("VmHWM:")
    );

    if compare {
        compare_tools(&corpus);
    }
}

fn compare_tools(corpus: &[String]) {
    let files = corpus.len().min(2_000);
    let dir = std::env::temp_dir().join(format!("studyflow-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut paths = Vec::new();
    for (i, spec) in corpus.iter().take(files).enumerate() {
        let p = dir.join(format!("spec-{i:05}.yaml"));
        std::fs::write(&p, spec).expect("write spec");
        paths.push(p);
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let schema = root.join("schemas/study-spec.schema.json");
    let exe = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent()?.parent().map(|d| d.join("studyflow")));

    if let Some(exe) = exe.filter(|e| e.exists()) {
        let t = Instant::now();
        let status = std::process::Command::new(&exe)
            .arg("validate")
            .arg("--format")
            .arg("json")
            .arg(&dir)
            .stdout(std::process::Stdio::null())
            .status();
        let secs = t.elapsed().as_secs_f64();
        match status {
            Ok(s) => println!(
                "studyflow validate (process, {files} files, schema + rules): {:.0} specs/s, exit {}",
                files as f64 / secs,
                s.code().unwrap_or(-1)
            ),
            Err(e) => println!("studyflow validate: could not run {}: {e}", exe.display()),
        }
    } else {
        println!(
            "studyflow binary not found next to the example; run `cargo build --profile production -p studyflow-cli` first"
        );
    }

    let t = Instant::now();
    let status = std::process::Command::new("check-jsonschema")
        .arg("--schemafile")
        .arg(&schema)
        .args(&paths)
        .stdout(std::process::Stdio::null())
        .status();
    let secs = t.elapsed().as_secs_f64();
    match status {
        Ok(s) => println!(
            "check-jsonschema (process, {files} files, schema only): {:.0} specs/s, exit {}",
            files as f64 / secs,
            s.code().unwrap_or(-1)
        ),
        Err(e) => println!("check-jsonschema: not available ({e}); `pip install check-jsonschema`"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}
