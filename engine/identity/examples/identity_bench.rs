//! How long a sign-in's password check takes (Argon2id at the parameters of
//! `password::PARAMS`), and the TOTP check beside it. Prints numbers; asserts nothing.
//!
//! `cargo run --profile production -p studyflow-identity --example identity_bench`

use std::time::Instant;

fn main() {
    let (m, t, p) = studyflow_identity::password::PARAMS;
    println!("Argon2id m={m} KiB, t={t}, p={p}");
    let hash = studyflow_identity::hash_password("a long enough passphrase").expect("hash");
    let mut times = Vec::new();
    for _ in 0..10 {
        let start = Instant::now();
        assert!(studyflow_identity::verify_password(
            "a long enough passphrase",
            &hash
        ));
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "verify: min {:.0} ms, median {:.0} ms, max {:.0} ms (10 runs)",
        times[0], times[5], times[9]
    );
    let secret = studyflow_identity::totp::new_secret();
    let start = Instant::now();
    let n = 100_000;
    for s in 0..n {
        std::hint::black_box(studyflow_identity::totp::code_at(&secret, s));
    }
    println!(
        "TOTP code: {:.2} µs",
        start.elapsed().as_secs_f64() * 1e6 / f64::from(n as u32)
    );
}
