//! Benchmark: a million deadline computations ("the 10th working day before", as for the
//! MK403 p.8 notice) and a million working-day lookups, on one thread.
//!
//! ```sh
//! cargo run --profile production -p studyflow-calendar --example calendar_bench
//! ```

use std::time::Instant;

use jiff::civil::date;
use studyflow_calendar::Calendar;

fn main() {
    run();
}

/// Prints the calendar's figures (also called by the plan benchmark).
pub fn run() {
    let start = Instant::now();
    let cal = Calendar::latvia();
    println!(
        "built 2000–2100 in {:.1} ms",
        start.elapsed().as_secs_f64() * 1e3
    );
    let events: Vec<_> = (0..1_000_000u32)
        .map(|i| {
            date(2010, 1, 1)
                .checked_add(jiff::Span::new().days(i64::from(i % 30_000)))
                .unwrap_or(date(2010, 1, 1))
        })
        .collect();
    let start = Instant::now();
    let mut checksum = 0i64;
    for e in &events {
        if let Ok(d) = cal.nth_working_day_before(*e, 10) {
            checksum += i64::from(d.day());
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "1,000,000 deadlines (10th working day before): {:.0} ms ({:.0} ns each), checksum {checksum}",
        secs * 1e3,
        secs * 1e9 / 1e6
    );
    let start = Instant::now();
    let working = events
        .iter()
        .filter(|e| cal.is_working_day(**e).unwrap_or(false))
        .count();
    let secs = start.elapsed().as_secs_f64();
    println!(
        "1,000,000 working-day lookups: {:.0} ms, {working} working",
        secs * 1e3
    );
}
