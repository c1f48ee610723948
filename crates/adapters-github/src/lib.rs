//! GitHub's secret-scanning partner program: [`GithubReportVerifier`] checks that a report was
//! signed by GitHub (ECDSA P-256 with SHA-256 over the raw body, a base64 DER signature) with one
//! of the public keys GitHub publishes, read from its URL or from a `file://` copy.

mod github_report_verifier;
mod key_list;
#[cfg(feature = "testing")]
pub mod testing;

pub use github_report_verifier::{GithubReportVerifier, KeyListSource};
pub use key_list::DEFAULT_KEYS_URL;
