//! What every handler can reach: the use cases and the few ports read directly.

use std::sync::Arc;
use std::time::Duration;

use keys_domain::ports::{AccountStore, Clock, DashboardTokens, SettingsStore};
use keys_domain::random::RandomSource;
use keys_domain::use_cases::{
    Admission, CatalogService, DashboardSessions, Idempotency, KeyAuditTrail, KeyClients,
    KeyService, KeyUsage, LeakReports, SignIn,
};

use crate::auth::failure_limit::AuthFailureLimiter;
use crate::cursor_seal::CursorSeal;
use crate::dashboard_write_limit::DashboardWriteLimiter;
use crate::probe::Probe;
use crate::sign_in_link_limit::SignInLinkLimiter;
use crate::sign_in_queue::SignInQueue;

/// Shared by all workers (behind `web::Data`, an `Arc`).
pub struct AppState {
    /// Every public request: authentication, usage count, rate limit.
    pub admission: Admission,
    pub keys: KeyService,
    /// Keys' audit trails.
    pub audit: KeyAuditTrail,
    pub key_clients: KeyClients,
    /// Secret-scanning reports.
    pub leaks: LeakReports,
    pub catalog: CatalogService,
    /// `Idempotency-Key` records of renders, purchases, key creations and rotations.
    pub idempotency: Idempotency,
    /// Balances are a plain read; no use case adds anything to it.
    pub accounts: Arc<dyn AccountStore>,
    /// The sign-out cut-off of dashboard tokens.
    pub sessions: DashboardSessions,
    /// Sign-in by email link.
    pub sign_in: SignIn,
    /// Link requests, handled in the background after their 202.
    pub sign_in_queue: Arc<SignInQueue>,
    pub sign_in_links: Arc<SignInLinkLimiter>,
    /// Hourly usage for the dashboard chart.
    pub key_usage: KeyUsage,
    pub auth_failures: Arc<AuthFailureLimiter>,
    pub dashboard_writes: Arc<DashboardWriteLimiter>,
    /// How long a request body may take to arrive.
    pub body_timeout: Duration,
    /// Seals the ledger's and the audit trail's cursors.
    pub cursors: Arc<CursorSeal>,
    pub random: Arc<dyn RandomSource>,
    /// Secret-scanning reports read and handled at once.
    pub report_slots: Arc<tokio::sync::Semaphore>,
    pub jwt: Arc<dyn DashboardTokens>,
    pub clock: Arc<dyn Clock>,
    pub readiness: Readiness,
    /// `JT_TOP_UP_URL`: named by a 402 and by the dashboard page.
    pub top_up_url: Arc<str>,
}

/// What `/readyz` inspects.
pub struct Readiness {
    pub database: Arc<dyn SettingsStore>,
    /// `None` when `REDIS_URL` is not set.
    pub redis: Option<Arc<dyn Probe>>,
    pub smtp_configured: bool,
}
