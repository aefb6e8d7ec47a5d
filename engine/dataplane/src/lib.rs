//! # studyflow-dataplane
//!
//! The data plane: what moves a study's data, behind the control plane's `DataPlane` trait
//! (`studyflow-runtime`). Its stages, each a module: the Service IS extraction
//! ([`csv_import`], the SQL source in the store), the registries' answers checked whole
//! ([`answers`]) over the automated exchange ([`connector`]) or the secure electronic one
//! ([`exchange`]), linkage and the deletion of identifiers ([`linkage`]), the quality report
//! ([`quality`]), anonymisation and k-anonymity ([`anonymise`]), the follow-ups joined by study
//! ID ([`followup`]), releases with their data package ([`release`], [`datapackage`]), the
//! consented contact transfer ([`contact`]), letters ([`letters`]), the study's keys
//! ([`vault`]), one CSV reader and writer ([`csvio`]); [`registry_plane`] is the adapter per step
//! kind.
//!
//! From linkage to release a study's data is one representation, the columnar tables of
//! [`table`], and one set of stage functions on them — for ten subjects in the engine and for a
//! million clients read from files (`examples/bulk_bench.rs`) alike.
//!
//! Identifying data leaves this crate in plaintext only through a step the plan allows (a
//! request to a registry); contact details leave only encrypted to the researcher.

pub mod anonymise;
pub mod answers;
pub mod connector;
pub mod contact;
pub mod csv_import;
pub mod csvio;
pub mod datapackage;
pub mod exchange;
pub mod files;
pub mod followup;
pub mod letters;
pub mod linkage;
pub mod quality;
pub mod registry_plane;
pub mod release;
pub mod supply;
pub mod table;
pub mod values;
pub mod vault;
