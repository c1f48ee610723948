//! `GET /openapi.json` and `GET /docs`: the API's own description, and a page that renders it.
//! Every asset of the page is embedded in the binary; its headers are the dashboard's
//! (`Content-Security-Policy` lets it load nothing from elsewhere and be framed by no one; it has
//! no inline script).

use actix_web::HttpResponse;
use actix_web::http::header::ContentType;

use crate::openapi::DOCUMENT;

const PAGE: &str = include_str!("../../assets/docs.html");
const SCRIPT: &str = include_str!("../../assets/docs.js");
const STYLESHEET: &str = include_str!("../../assets/docs.css");

/// The OpenAPI 3.1 document of every route.
#[utoipa::path(get, path = "/openapi.json", operation_id = "getOpenApiDocument", tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document (JSON)", content_type = "application/json")))]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(DOCUMENT.as_str())
}

/// The page that renders `/openapi.json`.
#[utoipa::path(get, path = "/docs", operation_id = "getDocsPage", tag = "operations",
    responses((status = 200, description = "HTML; everything it loads comes from this service", content_type = "text/html")))]
pub async fn page() -> HttpResponse {
    crate::routes::app::page("text/html; charset=utf-8", PAGE)
}

/// The page's script.
#[utoipa::path(get, path = "/docs/docs.js", operation_id = "getDocsScript", tag = "operations",
    responses((status = 200, description = "JavaScript", content_type = "text/javascript")))]
pub async fn script() -> HttpResponse {
    crate::routes::app::page("text/javascript; charset=utf-8", SCRIPT)
}

/// The page's stylesheet.
#[utoipa::path(get, path = "/docs/docs.css", operation_id = "getDocsStylesheet", tag = "operations",
    responses((status = 200, description = "CSS", content_type = "text/css")))]
pub async fn stylesheet() -> HttpResponse {
    crate::routes::app::page("text/css; charset=utf-8", STYLESHEET)
}
