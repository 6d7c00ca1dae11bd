//! Event feed tables of the SQLite store: the outbox (events waiting for
//! NATS, in publish order), embedded hook consumers' positions, and hook
//! delivery records.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::StoreError;
use super::records::{DeliveryRecord, EventRecord};
use crate::sql::db_err as db;
use ops_model::stamp::now;

/// An `EventRecord` from `seq, id, subject, time, body` (the event log's
/// and the outbox's columns).
pub(crate) fn event_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<EventRecord> {
    Ok(EventRecord {
        seq: r.get(0)?,
        id: r.get(1)?,
        subject: r.get(2)?,
        time: r.get(3)?,
        body: r.get(4)?,
    })
}

pub(crate) fn outbox_push(
    conn: &mut Connection,
    loc: &str,
    events: &[EventRecord],
    max: usize,
) -> Result<usize, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db(loc))?;
    let held: i64 = tx
        .query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get(0))
        .map_err(db(loc))?;
    let room = max.saturating_sub(held.max(0) as usize);
    let take = events.len().min(room);
    {
        let mut stmt = tx
            .prepare_cached("INSERT INTO outbox (id, subject, time, body) VALUES (?1, ?2, ?3, ?4)")
            .map_err(db(loc))?;
        for e in &events[..take] {
            stmt.execute(params![e.id, e.subject, e.time, e.body])
                .map_err(db(loc))?;
        }
    }
    tx.commit().map_err(db(loc))?;
    Ok(take)
}

pub(crate) fn outbox_peek(
    conn: &mut Connection,
    loc: &str,
    limit: usize,
) -> Result<Vec<EventRecord>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT seq, id, subject, time, body FROM outbox ORDER BY seq LIMIT ?1")
        .map_err(db(loc))?;
    let rows = stmt
        .query_map(params![limit as i64], event_row)
        .map_err(db(loc))?;
    rows.collect::<Result<Vec<_>, _>>().map_err(db(loc))
}

pub(crate) fn outbox_remove(conn: &mut Connection, loc: &str, upto: i64) -> Result<(), StoreError> {
    conn.execute("DELETE FROM outbox WHERE seq <= ?1", params![upto])
        .map_err(db(loc))?;
    Ok(())
}

pub(crate) fn outbox_len(conn: &mut Connection, loc: &str) -> Result<usize, StoreError> {
    let n: i64 = conn
        .query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get(0))
        .map_err(db(loc))?;
    Ok(n.max(0) as usize)
}

pub(crate) fn hook_cursor(
    conn: &mut Connection,
    loc: &str,
    hook: &str,
) -> Result<Option<i64>, StoreError> {
    conn.query_row(
        "SELECT seq FROM hook_cursors WHERE hook = ?1",
        params![hook],
        |r| r.get(0),
    )
    .optional()
    .map_err(db(loc))
}

pub(crate) fn set_hook_cursor(
    conn: &Connection,
    loc: &str,
    hook: &str,
    seq: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO hook_cursors (hook, seq, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (hook) DO UPDATE SET seq = excluded.seq, updated_at = excluded.updated_at",
    )
    .and_then(|mut stmt| stmt.execute(params![hook, seq, now()]))
    .map_err(db(loc))?;
    Ok(())
}

pub(crate) fn record_deliveries(
    conn: &mut Connection,
    loc: &str,
    ds: &[DeliveryRecord],
    cursor: Option<(String, i64)>,
) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db(loc))?;
    {
        let mut stmt = tx
            .prepare_cached(
                "INSERT INTO hook_deliveries (hook, event_id, subject, sink, status, attempts, code, detail, at, batch)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )
            .map_err(db(loc))?;
        let stamp = now();
        for d in ds {
            stmt.execute(params![
                d.hook,
                d.event_id,
                d.subject,
                d.sink,
                d.status,
                d.attempts,
                d.code,
                d.detail,
                if d.at.is_empty() { &stamp } else { &d.at },
                d.batch.join(" ")
            ])
            .map_err(db(loc))?;
        }
    }
    if let Some((hook, seq)) = cursor {
        set_hook_cursor(&tx, loc, &hook, seq)?;
    }
    tx.commit().map_err(db(loc))?;
    Ok(())
}

pub(crate) fn last_event_seq(conn: &mut Connection, loc: &str) -> Result<i64, StoreError> {
    conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |r| r.get(0))
        .map_err(db(loc))
}

pub(crate) fn list_deliveries(
    conn: &mut Connection,
    loc: &str,
    hook: Option<&str>,
    event: Option<&str>,
    limit: usize,
) -> Result<Vec<DeliveryRecord>, StoreError> {
    // A batch's ids are space-separated: padded with spaces, ` ID ` is
    // found only as a whole id.
    let mut stmt = conn
        .prepare_cached(
            "SELECT seq, hook, event_id, subject, sink, status, attempts, code, detail, at, batch
             FROM hook_deliveries
             WHERE (?1 IS NULL OR hook = ?1)
               AND (?3 IS NULL OR event_id = ?3 OR instr(' ' || batch || ' ', ' ' || ?3 || ' ') > 0)
             ORDER BY seq DESC LIMIT ?2",
        )
        .map_err(db(loc))?;
    let rows = stmt
        .query_map(params![hook, limit as i64, event], |r| {
            let batch: String = r.get(10)?;
            Ok(DeliveryRecord {
                seq: r.get(0)?,
                hook: r.get(1)?,
                event_id: r.get(2)?,
                subject: r.get(3)?,
                batch: batch.split_whitespace().map(str::to_owned).collect(),
                sink: r.get(4)?,
                status: r.get(5)?,
                attempts: r.get(6)?,
                code: r.get(7)?,
                detail: r.get(8)?,
                at: r.get(9)?,
            })
        })
        .map_err(db(loc))?;
    let mut out = rows.collect::<Result<Vec<_>, _>>().map_err(db(loc))?;
    out.reverse();
    Ok(out)
}

pub(crate) fn prune(
    conn: &mut Connection,
    loc: &str,
    before: &str,
) -> Result<(usize, usize), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db(loc))?;
    let events = tx
        .execute("DELETE FROM events WHERE time < ?1", params![before])
        .map_err(db(loc))?;
    let deliveries = tx
        .execute("DELETE FROM hook_deliveries WHERE at < ?1", params![before])
        .map_err(db(loc))?;
    tx.commit().map_err(db(loc))?;
    Ok((events, deliveries))
}
