//! Runbook tables of the SQLite store: files, their chunks, and vectors
//! cached by chunk hash (so an unchanged chunk is never embedded twice,
//! whichever file it is in). Vectors are little-endian `f32` blobs.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::StoreError;
use super::records::{ChunkRecord, RunbookChange, RunbookRecord};
use crate::sql::db_err as db;
use ops_model::stamp::now;

fn chunk_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ChunkRecord> {
    Ok(ChunkRecord {
        id: r.get(0)?,
        runbook: r.get(1)?,
        ordinal: r.get(2)?,
        heading: r.get(3)?,
        start_line: r.get(4)?,
        end_line: r.get(5)?,
        body: r.get(6)?,
        hash: r.get(7)?,
        code: r.get::<_, i64>(8)? != 0,
    })
}

const CHUNK_COLUMNS: &str = "id, runbook, ordinal, heading, start_line, end_line, body, hash, code";

fn runbook_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunbookRecord> {
    Ok(RunbookRecord {
        name: r.get(0)?,
        source: r.get(1)?,
        hash: r.get(2)?,
        title: r.get(3)?,
        meta: r.get(4)?,
        added_at: r.get(5)?,
        updated_at: r.get(6)?,
        chunks: r.get::<_, i64>(7)?.max(0) as usize,
    })
}

const RUNBOOK_SELECT: &str = "SELECT name, source, hash, title, meta, added_at, updated_at,
     (SELECT COUNT(*) FROM runbook_chunks c WHERE c.runbook = runbooks.name) FROM runbooks";

pub(crate) fn put(
    conn: &mut Connection,
    loc: &str,
    rb: &RunbookRecord,
    chunks: &[ChunkRecord],
) -> Result<RunbookChange, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db(loc))?;
    let at = now();
    let existing: Option<String> = tx
        .query_row(
            "SELECT hash FROM runbooks WHERE name = ?1",
            params![rb.name],
            |r| r.get(0),
        )
        .optional()
        .map_err(db(loc))?;
    let mut change = RunbookChange {
        created: existing.is_none(),
        ..RunbookChange::default()
    };
    if existing.as_deref() == Some(rb.hash.as_str()) {
        change.unchanged = true;
        change.kept = chunks.len();
        return Ok(change);
    }
    tx.execute(
        "INSERT INTO runbooks (name, source, hash, title, meta, added_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
         ON CONFLICT (name) DO UPDATE SET source = excluded.source, hash = excluded.hash,
         title = excluded.title, meta = excluded.meta, updated_at = excluded.updated_at",
        params![rb.name, rb.source, rb.hash, rb.title, rb.meta, at],
    )
    .map_err(db(loc))?;
    // Old chunks by hash; each may be claimed once by an identical new one.
    let mut old: HashMap<String, Vec<i64>> = HashMap::new();
    {
        let mut stmt = tx
            .prepare("SELECT id, hash FROM runbook_chunks WHERE runbook = ?1 ORDER BY ordinal")
            .map_err(db(loc))?;
        let rows = stmt
            .query_map(params![rb.name], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(db(loc))?;
        for row in rows {
            let (id, hash) = row.map_err(db(loc))?;
            old.entry(hash).or_default().push(id);
        }
    }
    for c in chunks {
        let reuse = old.get_mut(&c.hash).and_then(|ids| {
            if ids.is_empty() {
                None
            } else {
                Some(ids.remove(0))
            }
        });
        match reuse {
            Some(id) => {
                tx.execute(
                    "UPDATE runbook_chunks SET ordinal = ?2, heading = ?3, start_line = ?4, end_line = ?5 WHERE id = ?1",
                    params![id, c.ordinal, c.heading, c.start_line, c.end_line],
                )
                .map_err(db(loc))?;
                change.kept += 1;
            }
            None => {
                tx.execute(
                    "INSERT INTO runbook_chunks (runbook, ordinal, heading, start_line, end_line, body, hash, code)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![rb.name, c.ordinal, c.heading, c.start_line, c.end_line, c.body, c.hash, i64::from(c.code)],
                )
                .map_err(db(loc))?;
                change.added += 1;
            }
        }
    }
    for id in old.into_values().flatten() {
        tx.execute("DELETE FROM runbook_chunks WHERE id = ?1", params![id])
            .map_err(db(loc))?;
        change.removed += 1;
    }
    tx.commit().map_err(db(loc))?;
    Ok(change)
}

pub(crate) fn list(conn: &mut Connection, loc: &str) -> Result<Vec<RunbookRecord>, StoreError> {
    let mut stmt = conn
        .prepare(&format!("{RUNBOOK_SELECT} ORDER BY name"))
        .map_err(db(loc))?;
    let rows = stmt.query_map([], runbook_row).map_err(db(loc))?;
    rows.collect::<Result<Vec<_>, _>>().map_err(db(loc))
}

pub(crate) fn get(
    conn: &mut Connection,
    loc: &str,
    name: &str,
) -> Result<Option<(RunbookRecord, Vec<ChunkRecord>)>, StoreError> {
    let rb = conn
        .query_row(
            &format!("{RUNBOOK_SELECT} WHERE name = ?1"),
            params![name],
            runbook_row,
        )
        .optional()
        .map_err(db(loc))?;
    let Some(rb) = rb else { return Ok(None) };
    let mut stmt = conn
        .prepare(&format!(
            "SELECT {CHUNK_COLUMNS} FROM runbook_chunks WHERE runbook = ?1 ORDER BY ordinal"
        ))
        .map_err(db(loc))?;
    let chunks = stmt
        .query_map(params![name], chunk_row)
        .map_err(db(loc))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(db(loc))?;
    Ok(Some((rb, chunks)))
}

pub(crate) fn delete(conn: &mut Connection, loc: &str, name: &str) -> Result<bool, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db(loc))?;
    tx.execute(
        "DELETE FROM runbook_chunks WHERE runbook = ?1",
        params![name],
    )
    .map_err(db(loc))?;
    let n = tx
        .execute("DELETE FROM runbooks WHERE name = ?1", params![name])
        .map_err(db(loc))?;
    tx.commit().map_err(db(loc))?;
    Ok(n > 0)
}

pub(crate) fn all_chunks(conn: &mut Connection, loc: &str) -> Result<Vec<ChunkRecord>, StoreError> {
    let mut stmt = conn
        .prepare(&format!(
            "SELECT {CHUNK_COLUMNS} FROM runbook_chunks ORDER BY runbook, ordinal"
        ))
        .map_err(db(loc))?;
    let rows = stmt.query_map([], chunk_row).map_err(db(loc))?;
    rows.collect::<Result<Vec<_>, _>>().map_err(db(loc))
}

fn to_blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn from_blob(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

pub(crate) fn get_vectors(
    conn: &mut Connection,
    loc: &str,
    model: &str,
    hashes: &[String],
) -> Result<HashMap<String, Vec<f32>>, StoreError> {
    let mut out = HashMap::with_capacity(hashes.len());
    let mut stmt = conn
        .prepare_cached("SELECT vector FROM embeddings WHERE model = ?1 AND hash = ?2")
        .map_err(db(loc))?;
    for h in hashes {
        let blob: Option<Vec<u8>> = stmt
            .query_row(params![model, h], |r| r.get(0))
            .optional()
            .map_err(db(loc))?;
        if let Some(b) = blob {
            out.insert(h.clone(), from_blob(&b));
        }
    }
    Ok(out)
}

pub(crate) fn put_vectors(
    conn: &mut Connection,
    loc: &str,
    model: &str,
    vectors: &[(String, Vec<f32>)],
) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db(loc))?;
    {
        let mut stmt = tx
            .prepare_cached(
                "INSERT INTO embeddings (model, hash, vector) VALUES (?1, ?2, ?3)
                 ON CONFLICT (model, hash) DO UPDATE SET vector = excluded.vector",
            )
            .map_err(db(loc))?;
        for (h, v) in vectors {
            stmt.execute(params![model, h, to_blob(v)])
                .map_err(db(loc))?;
        }
    }
    tx.commit().map_err(db(loc))?;
    Ok(())
}
