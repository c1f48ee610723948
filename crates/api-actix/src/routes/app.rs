//! The dashboard page at `/app`: a few static files embedded in the binary (docs/dashboard.md).
//! Nothing is fetched from anywhere else, and the policy says so to the browser.

use actix_web::body::MessageBody;
use actix_web::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, HeaderValue, REFERRER_POLICY,
    X_FRAME_OPTIONS,
};
use actix_web::{HttpResponse, web};

use crate::error::ApiError;
use crate::state::AppState;

/// Only this origin's files; no inline script or style (neither is allowed by `default-src`
/// without `'unsafe-inline'`); no framing; forms and `<base>` pinned.
pub const CSP: &str =
    "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const INDEX: &str = include_str!("../../assets/index.html");
/// Where the page names the top-up address (`JT_TOP_UP_URL`): its "Buy more credits" link, which
/// the scripts also read for the 402 sentence.
const TOP_UP_URL_SLOT: &str = "{{top_up_url}}";

/// `(name, content type, body)` of every asset under `/app/assets/`.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/app.js"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/api.js"),
    ),
    (
        "errors.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/errors.js"),
    ),
    (
        "chart.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/chart.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("../../assets/app.css"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_str!("../../assets/favicon.svg"),
    ),
];

/// An embedded file with the pages' header set: loads nothing from elsewhere, framed by no one,
/// no referrer (`nosniff` is on every answer, see `telemetry::observe`). `/docs` uses it too.
pub(crate) fn page(content_type: &'static str, body: impl MessageBody + 'static) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, HeaderValue::from_static(content_type)))
        .insert_header((CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP)))
        .insert_header((REFERRER_POLICY, HeaderValue::from_static("no-referrer")))
        .insert_header((X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        // Revalidated on each load, so a new binary's page is never mixed with old modules.
        .insert_header((CACHE_CONTROL, HeaderValue::from_static("no-cache")))
        .body(body)
}

/// The views of the page, each its own address (`/app/{view}`).
const VIEWS: &[&str] = &["sign-in", "keys", "credits"];

/// `GET /app`: the one HTML page; its script shows the view the path names.
#[utoipa::path(get, path = "/app", operation_id = "getDashboardPage", tag = "dashboard page",
    responses((status = 200, description = "The dashboard (HTML); everything it loads comes from this service", content_type = "text/html")))]
pub async fn index(state: web::Data<AppState>) -> HttpResponse {
    page(
        "text/html; charset=utf-8",
        INDEX.replace(TOP_UP_URL_SLOT, &html_attribute(&state.top_up_url)),
    )
}

/// `value` inside a double-quoted HTML attribute.
fn html_attribute(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            _ => out.push(c),
        }
    }
    out
}

/// `GET /app/sign-in`, `/app/keys`, `/app/credits`: the same page, opened on that view.
///
/// # Errors
/// 404 `not_found` for any other view.
#[utoipa::path(get, path = "/app/{view}", operation_id = "getDashboardView", tag = "dashboard page",
    params(("view" = String, Path, description = "`sign-in`, `keys` or `credits`")),
    responses(
        (status = 200, description = "The dashboard (HTML), opened on that view", content_type = "text/html"),
        (status = 404, description = "`not_found`: no such view", body = crate::openapi::ErrorBody),
    ))]
pub async fn view(
    state: web::Data<AppState>,
    view: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    if VIEWS.contains(&view.as_str()) {
        Ok(index(state).await)
    } else {
        Err(ApiError::NotFound("no such page".into()))
    }
}

/// `GET /app/assets/{name}`.
#[utoipa::path(get, path = "/app/assets/{name}", operation_id = "getDashboardAsset", tag = "dashboard page",
    params(("name" = String, Path, description = "e.g. `app.js`, `app.css`")),
    responses(
        (status = 200, description = "A script, stylesheet or image of the page"),
        (status = 404, description = "`not_found`: no such file", body = crate::openapi::ErrorBody),
    ))]
///
/// # Errors
/// 404 `not_found` for a name that is not embedded.
pub async fn asset(name: web::Path<String>) -> Result<HttpResponse, ApiError> {
    ASSETS
        .iter()
        .find(|(n, _, _)| *n == name.as_str())
        .map(|(_, content_type, body)| page(content_type, *body))
        .ok_or_else(|| ApiError::NotFound("no such file".into()))
}
