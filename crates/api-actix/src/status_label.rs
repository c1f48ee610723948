//! A response status as a metric label.

use std::sync::LazyLock;

use actix_web::http::StatusCode;

/// `"100"` to `"599"`, so the status label costs no allocation.
static STATUS_LABELS: LazyLock<Vec<String>> =
    LazyLock::new(|| (0..600).map(|s: u16| s.to_string()).collect());

/// The status label of a response.
pub fn status_label(status: StatusCode) -> &'static str {
    STATUS_LABELS
        .get(usize::from(status.as_u16()))
        .map_or("other", String::as_str)
}
