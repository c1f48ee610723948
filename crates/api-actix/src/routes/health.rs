//! `/healthz` (liveness) and `/readyz` (readiness: database, Redis, SMTP).

use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde::Serialize;

use crate::state::AppState;

/// How long `/readyz` waits for the database before calling it down.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// The `/readyz` body, in the contract's order.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Readiness {
    status: &'static str,
    database: &'static str,
    redis: &'static str,
    smtp: &'static str,
}

/// `{"status": "ok"}`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    status: &'static str,
}

/// `GET /healthz`: liveness.
#[utoipa::path(get, path = "/healthz", operation_id = "getHealth", tag = "operations",
    responses((status = 200, description = "The process serves", body = Health)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

#[utoipa::path(get, path = "/readyz", operation_id = "getReadiness", tag = "operations",
    responses(
        (status = 200, description = "The database answers (`degraded` when Redis is configured but down)", body = Readiness),
        (status = 503, description = "The database does not answer, or the instance is draining after a stop signal (`status: draining`)", body = Readiness),
    ))]
/// 200 while the database answers (`degraded` when Redis is configured but down), else 503.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let r = &state.readiness;
    let database_up = matches!(
        tokio::time::timeout(PING_TIMEOUT, r.database.ping()).await,
        Ok(Ok(()))
    );
    let redis = match &r.redis {
        None => "not configured",
        Some(probe) if probe.is_up().await => "up",
        Some(_) => "down",
    };
    let draining = crate::drain::draining();
    let status = match (database_up, redis) {
        _ if draining => "draining",
        (false, _) => "unavailable",
        (true, "down") => "degraded",
        (true, _) => "ok",
    };
    let body = Readiness {
        status,
        database: if database_up { "up" } else { "down" },
        redis,
        smtp: if r.smtp_configured {
            "configured"
        } else {
            "not configured"
        },
    };
    if database_up && !draining {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "1"))
            .json(body)
    }
}
