//! The audit trail: events written inside the transactions of the changes they record, and
//! [`KeyEventLog`] to read them a page at a time.

use async_trait::async_trait;
use diesel::prelude::*;
use keys_domain::ports::{KeyEventLog, StoreError};
use keys_domain::{
    Actor, EventCursor, EventDetail, KeyEvent, KeyEventKind, KeyId, ListError, Page, PageRequest,
    PositionedEvent, RevocationReason, Timestamp,
};
use serde_json::{Value, json};

use crate::connection::{AnyConnection, MultiBackend};
use crate::key_change_feed::hold_feed_for_write;
use crate::schema::key_events;
use crate::store::DbStore;

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = key_events)]
struct EventRow {
    seq: i64,
    key_id: String,
    kind: String,
    actor: String,
    at: i64,
    detail: String,
}

/// Appends `events`, in order, on the caller's transaction, which holds the change feed's
/// write lock from here to its end (see `key_change_feed.rs`).
pub(crate) fn write_events(conn: &mut AnyConnection, events: &[KeyEvent]) -> QueryResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    hold_feed_for_write(conn)?;
    for e in events {
        diesel::insert_into(key_events::table)
            .values((
                key_events::key_id.eq(e.key_id.as_str()),
                key_events::kind.eq(e.kind().as_str()),
                key_events::actor.eq(e.actor.as_str()),
                key_events::at.eq(e.at.as_millis()),
                key_events::detail.eq(encode(&e.detail).to_string()),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// The `detail` column: a JSON object, times in unix milliseconds.
fn encode(detail: &EventDetail) -> Value {
    match detail {
        EventDetail::Created { name, rotated_from } => json!({
            "name": name,
            "rotated_from": rotated_from.as_ref().map(KeyId::as_str),
        }),
        EventDetail::Rotated { replaced_by } => json!({ "replaced_by": replaced_by.as_str() }),
        EventDetail::RevocationScheduled { revokes_at } => {
            json!({ "revokes_at": revokes_at.as_millis() })
        }
        EventDetail::Revoked { reason } => json!({ "reason": reason.as_str() }),
        EventDetail::HighUsageAlert { count, threshold } => {
            json!({ "count": count, "threshold": threshold })
        }
        EventDetail::LeakReported { url, source } => json!({ "url": url, "source": source }),
        // `changed` keeps the order; the values are keyed by field.
        EventDetail::Updated { changes } => json!({
            "changed": changes.iter().map(|(f, _)| f.as_str()).collect::<Vec<_>>(),
            "values": changes
                .iter()
                .map(|(f, v)| (f.clone(), v.clone().map_or(Value::Null, Value::from)))
                .collect::<serde_json::Map<_, _>>(),
        }),
        EventDetail::ExpiryReminder {
            expires_at,
            days_before,
        } => json!({ "expires_at": expires_at.as_millis(), "days_before": days_before }),
        EventDetail::NewNetwork {
            network,
            user_agent,
            networks,
        } => json!({ "network": network, "user_agent": user_agent, "networks": networks }),
        EventDetail::BrowserUse {
            network,
            user_agent,
            requests,
        } => json!({ "network": network, "user_agent": user_agent, "requests": requests }),
        EventDetail::UsageSpike { count, busiest } => {
            json!({ "count": count, "busiest": busiest })
        }
    }
}

fn decode(kind: KeyEventKind, detail: &str) -> Option<EventDetail> {
    let v: Value = serde_json::from_str(detail).ok()?;
    let text = |name: &str| v.get(name).and_then(Value::as_str).map(str::to_owned);
    let number = |name: &str| v.get(name).and_then(Value::as_u64);
    Some(match kind {
        KeyEventKind::Created => EventDetail::Created {
            name: text("name")?,
            rotated_from: text("rotated_from").map(KeyId::new),
        },
        KeyEventKind::Rotated => EventDetail::Rotated {
            replaced_by: KeyId::new(text("replaced_by")?),
        },
        KeyEventKind::RevocationScheduled => EventDetail::RevocationScheduled {
            revokes_at: Timestamp::from_millis(v.get("revokes_at")?.as_i64()?),
        },
        KeyEventKind::Revoked => EventDetail::Revoked {
            reason: RevocationReason::parse(&text("reason")?)?,
        },
        KeyEventKind::HighUsageAlert => EventDetail::HighUsageAlert {
            count: number("count")?,
            threshold: number("threshold")?,
        },
        KeyEventKind::LeakReported => EventDetail::LeakReported {
            url: text("url")?,
            source: text("source")?,
        },
        KeyEventKind::Updated => {
            let values = v.get("values")?.as_object()?;
            EventDetail::Updated {
                changes: v
                    .get("changed")?
                    .as_array()?
                    .iter()
                    .map(|f| {
                        let f = f.as_str()?;
                        Some((f.to_owned(), values.get(f)?.as_str().map(str::to_owned)))
                    })
                    .collect::<Option<_>>()?,
            }
        }
        KeyEventKind::NewNetwork => EventDetail::NewNetwork {
            network: text("network")?,
            user_agent: text("user_agent")?,
            networks: number("networks")?,
        },
        KeyEventKind::BrowserUse => EventDetail::BrowserUse {
            network: text("network")?,
            user_agent: text("user_agent")?,
            requests: number("requests")?,
        },
        KeyEventKind::UsageSpike => EventDetail::UsageSpike {
            count: number("count")?,
            busiest: number("busiest")?,
        },
        KeyEventKind::ExpiryReminder => EventDetail::ExpiryReminder {
            expires_at: Timestamp::from_millis(v.get("expires_at")?.as_i64()?),
            days_before: u32::try_from(number("days_before")?).ok()?,
        },
    })
}

impl EventRow {
    fn into_event(self) -> Result<PositionedEvent, StoreError> {
        let corrupt = || StoreError::Internal(format!("key event {} is corrupt", self.seq));
        let kind = KeyEventKind::parse(&self.kind).ok_or_else(corrupt)?;
        let actor = Actor::parse(&self.actor).ok_or_else(corrupt)?;
        let detail = decode(kind, &self.detail).ok_or_else(corrupt)?;
        Ok(PositionedEvent {
            cursor: EventCursor::from_stored(self.seq),
            event: KeyEvent {
                key_id: KeyId::new(self.key_id),
                actor,
                at: Timestamp::from_millis(self.at),
                detail,
            },
        })
    }
}

#[async_trait]
impl KeyEventLog for DbStore {
    async fn events(
        &self,
        key: &KeyId,
        page: &PageRequest<EventCursor>,
    ) -> Result<Page<PositionedEvent>, ListError> {
        let (key, page) = (key.clone(), page.clone());
        self.run(move |conn| {
            // Newest first on the (key_id, seq) index; a cursor is a position, never an offset.
            let mut rows = key_events::table
                .filter(key_events::key_id.eq(key.as_str()))
                .into_boxed::<MultiBackend>();
            if let Some(after) = page.after {
                rows = rows.filter(key_events::seq.lt(after.as_stored()));
            }
            let rows = rows
                .order(key_events::seq.desc())
                .limit(page.limit.fetch())
                .select(EventRow::as_select())
                .load(conn)?;
            Ok(Page::from_overfetch(rows, page.limit).try_map(EventRow::into_event)?)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_detail_survives_the_column() {
        let details = [
            EventDetail::Created {
                name: "ci".into(),
                rotated_from: Some(KeyId::new("key_1")),
            },
            EventDetail::Created {
                name: "ci".into(),
                rotated_from: None,
            },
            EventDetail::Rotated {
                replaced_by: KeyId::new("key_2"),
            },
            EventDetail::RevocationScheduled {
                revokes_at: Timestamp::from_millis(1_700_000_000_123),
            },
            EventDetail::Revoked {
                reason: RevocationReason::Leaked,
            },
            EventDetail::HighUsageAlert {
                count: 10_001,
                threshold: 10_000,
            },
            EventDetail::leak_reported("https://github.com/o/r", "content"),
        ];
        for d in details {
            let text = encode(&d).to_string();
            assert_eq!(decode(d.kind(), &text), Some(d));
        }
        assert_eq!(decode(KeyEventKind::Revoked, r#"{"reason":"nope"}"#), None);
    }
}
