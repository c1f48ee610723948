//! The pure domain of the JobTactics key service.
//!
//! Everything here is plain Rust: no runtime, no database, no network. Adapters implement the
//! traits in [`ports`]; the use cases in [`use_cases`] drive those ports. See
//! `docs/architecture.md` for the hexagon.

pub mod alert_email;
pub mod allowed_networks;
pub mod api_key;
pub mod base62;
pub mod charge_batch;
pub mod credits;
pub mod email;
pub mod event_cursor;
pub mod expiry_reminder;
pub mod hourly_usage;
pub mod idempotency_key;
pub mod ids;
pub mod key_client;
pub mod key_controls;
pub mod key_event;
pub mod key_hash;
pub mod key_name;
pub mod key_preview;
pub mod key_secret;
pub mod key_signal;
pub mod key_state;
pub mod key_tag;
pub mod leak_email;
pub mod ledger_cursor;
pub mod monthly_spend;
pub mod page;
pub mod ports;
pub mod random;
pub mod rate_limit;
pub mod report_digest;
pub mod revocation_reason;
pub mod scope;
pub mod sealed_response;
pub mod sign_in_link;
pub mod signal_email;
pub mod template;
pub mod timestamp;
pub mod usage;
pub mod use_cases;

pub use api_key::{ApiKey, NewApiKey};
pub use credits::{Credits, GrantAmount, LedgerEntry};
pub use email::Email;
pub use event_cursor::EventCursor;
pub use ids::{AlertId, DocumentId, KeyId, SignInLinkId, TemplateId, UserId};
pub use key_event::{Actor, EventDetail, KeyEvent, KeyEventKind, PositionedEvent};
pub use key_hash::KeyHash;
pub use key_name::KeyName;
pub use key_preview::KeyPreview;
pub use key_secret::{ApiKeySecret, MalformedKey};
pub use key_state::{KeyState, KeyStatus};
pub use key_tag::KeyTag;
pub use ledger_cursor::{LedgerCursor, PositionedEntry};
pub use page::{ListError, Page, PageLimit, PageRequest};
pub use revocation_reason::RevocationReason;
pub use timestamp::Timestamp;
