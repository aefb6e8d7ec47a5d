//! # studyflow-sim
//!
//! Synthetic registries for tests, benchmarks and the demo (issue #5): a deterministic
//! population of probation clients with Latvian personal codes in both formats
//! ([`personal_code`]), their Service IS records, their criminal proceedings in plausible date
//! order, prison rulings and resocialisation records for a share, and re-offending over later
//! years ([`population`]). Everything is made up; nothing here is anyone's data.

pub mod export;
pub mod personal_code;
pub mod population;
pub mod registry;
pub mod rng;
pub mod scan;

pub use personal_code::PersonalCode;
pub use population::{Client, Config, generate, generate_in_chunks};
pub use scan::IdentifierScan;
