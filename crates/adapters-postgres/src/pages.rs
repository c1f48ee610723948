//! The list queries: one page per call, read from an index in list order.
//!
//! Each reads `limit + 1` rows (the extra one only says whether there is more; see
//! [`Page::from_overfetch`]). A cursor becomes a position in the index, never an offset:
//! `(created_at, id)` for keys, `seq` for the ledger and documents. The redundant
//! `created_at <= cursor` term lets both planners start the index scan at the cursor instead of
//! filtering every newer row (see `docs/storage.md`).

use diesel::prelude::*;
use keys_domain::credits::LedgerReason;
use keys_domain::ports::KeyListQuery;
use keys_domain::template::DocumentSummary;
use keys_domain::{
    DocumentId, KeyStatus, LedgerCursor, ListError, Page, PageRequest, TemplateId, Timestamp,
    UserId,
};

use crate::connection::{AnyConnection, MultiBackend};
use crate::failure::Failure;
use crate::key_row::KeyRow;
use crate::schema::{api_keys, credit_ledger, documents};

/// A document row as a list shows it: no content.
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = documents)]
struct DocumentSummaryRow {
    id: String,
    template_id: String,
    created_at: i64,
}

/// A ledger row with its position.
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = credit_ledger)]
pub(crate) struct PositionedLedgerRow {
    pub seq: i64,
    pub user_id: String,
    pub delta: i64,
    pub balance_after: i64,
    pub reason: String,
    pub created_at: i64,
}

/// Where the user's key `id` sits in the list; `UnknownCursor` when it is not the user's.
fn key_position(
    conn: &mut AnyConnection,
    user: &str,
    id: &str,
) -> Result<(i64, String), Failure<ListError>> {
    api_keys::table
        .filter(api_keys::user_id.eq(user))
        .filter(api_keys::id.eq(id))
        .select((api_keys::created_at, api_keys::id))
        .first(conn)
        .optional()?
        .ok_or(Failure::Port(ListError::UnknownCursor))
}

/// One page of the user's keys as rows of `R`.
pub(crate) fn key_page(
    conn: &mut AnyConnection,
    user: &UserId,
    query: &KeyListQuery,
    now: Timestamp,
) -> Result<Page<KeyRow>, Failure<ListError>> {
    let user = user.as_str();
    let mut rows = api_keys::table
        .filter(api_keys::user_id.eq(user))
        .into_boxed::<MultiBackend>();
    if let Some(after) = &query.page.after {
        let (at, id) = key_position(conn, user, after.as_str())?;
        rows = rows
            .filter(api_keys::created_at.le(at))
            .filter(api_keys::created_at.lt(at).or(api_keys::id.lt(id)));
    }
    let now = now.as_millis();
    // A key past its `expires_at` reads `expired` unless it is revoked.
    let not_expired = api_keys::expires_at
        .is_null()
        .or(api_keys::expires_at.gt(now));
    rows = match query.status {
        None => rows,
        // Equality on status: the (user_id, status, created_at, id) index serves it in order.
        Some(KeyStatus::Active) => rows
            .filter(api_keys::status.eq(KeyStatus::Active.as_str()))
            .filter(not_expired),
        Some(KeyStatus::Expiring) => rows
            .filter(api_keys::status.eq(KeyStatus::Expiring.as_str()))
            .filter(api_keys::revokes_at.gt(now))
            .filter(not_expired),
        // An expiring key past its revokes_at is revoked. Scanning the (user_id, created_at, id)
        // index skips only the user's live keys, at most the live-key limit of them.
        Some(KeyStatus::Revoked) => rows.filter(
            api_keys::status
                .eq(KeyStatus::Revoked.as_str())
                .or(api_keys::status
                    .eq(KeyStatus::Expiring.as_str())
                    .and(api_keys::revokes_at.le(now))),
        ),
        Some(KeyStatus::Expired) => rows.filter(api_keys::expires_at.le(now)).filter(
            api_keys::status
                .eq(KeyStatus::Active.as_str())
                .or(api_keys::status
                    .eq(KeyStatus::Expiring.as_str())
                    .and(api_keys::revokes_at.gt(now))),
        ),
    };
    let limit = query.page.limit;
    let rows = rows
        .order((api_keys::created_at.desc(), api_keys::id.desc()))
        .limit(limit.fetch())
        .select(KeyRow::as_select())
        .load(conn)?;
    Ok(Page::from_overfetch(rows, limit))
}

/// One page of the user's documents, without content, newest first: read through their ledger
/// rows on the ledger's `(user_id, seq)` index (every render is charged, and its row's reason
/// names the document), so that a render writes one per-user index entry, not two. The cursor
/// document's row is found by its reason (`credit_ledger_reason`).
pub(crate) fn document_page(
    conn: &mut AnyConnection,
    user: &UserId,
    page: &PageRequest<DocumentId>,
) -> Result<Page<DocumentSummary>, Failure<ListError>> {
    let user = user.as_str();
    let prefix = LedgerReason::DOCUMENT_RENDER_PREFIX;
    let mut rows = credit_ledger::table
        .inner_join(
            documents::table
                .on(documents::id.eq(substr(credit_ledger::reason, document_id_start(prefix)))),
        )
        .filter(credit_ledger::user_id.eq(user))
        .filter(credit_ledger::reason.like(format!("{prefix}%")))
        .into_boxed::<MultiBackend>();
    if let Some(after) = &page.after {
        let reason = LedgerReason::DocumentRender(after.as_str().to_owned()).to_stored();
        let seq: i64 = credit_ledger::table
            .filter(credit_ledger::reason.eq(reason))
            .filter(credit_ledger::user_id.eq(user))
            .select(credit_ledger::seq)
            .first(conn)
            .optional()?
            .ok_or(Failure::Port(ListError::UnknownCursor))?;
        rows = rows.filter(credit_ledger::seq.lt(seq));
    }
    let rows = rows
        .order(credit_ledger::seq.desc())
        .limit(page.limit.fetch())
        .select(DocumentSummaryRow::as_select())
        .load(conn)?;
    let summaries = rows
        .into_iter()
        .map(|r| DocumentSummary {
            id: DocumentId::new(r.id),
            template_id: TemplateId::new(r.template_id),
            created_at: Timestamp::from_millis(r.created_at),
        })
        .collect();
    Ok(Page::from_overfetch(summaries, page.limit))
}

diesel::define_sql_function! {
    /// `substr(text, start)`: the rest of `text` from the 1-based `start`, on both backends.
    fn substr(
        text: diesel::sql_types::Text,
        start: diesel::sql_types::Integer,
    ) -> diesel::sql_types::Text;
}

/// Where the document's id begins in a render's reason (SQL counts from 1).
fn document_id_start(prefix: &str) -> i32 {
    i32::try_from(prefix.len()).map_or(i32::MAX, |len| len + 1)
}

/// One page of the user's ledger, newest first, on the (user_id, seq) index.
pub(crate) fn ledger_page(
    conn: &mut AnyConnection,
    user: &UserId,
    page: &PageRequest<LedgerCursor>,
) -> QueryResult<Page<PositionedLedgerRow>> {
    let mut rows = credit_ledger::table
        .filter(credit_ledger::user_id.eq(user.as_str()))
        .into_boxed::<MultiBackend>();
    if let Some(after) = page.after {
        rows = rows.filter(credit_ledger::seq.lt(after.as_stored()));
    }
    let rows = rows
        .order(credit_ledger::seq.desc())
        .limit(page.limit.fetch())
        .select(PositionedLedgerRow::as_select())
        .load(conn)?;
    Ok(Page::from_overfetch(rows, page.limit))
}
