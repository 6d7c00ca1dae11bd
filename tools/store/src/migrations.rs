//! Schema migrations, applied in order and tracked in `PRAGMA user_version`.
//! Append new entries; never edit a released one.

/// Migration `i` brings the schema from version `i` to `i + 1`.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: objects, runs, steps; tables for approvals, audit and sessions.
    r#"
    CREATE TABLE objects (
        kind        TEXT NOT NULL,
        namespace   TEXT NOT NULL,
        name        TEXT NOT NULL,
        api_version TEXT NOT NULL,
        labels      TEXT NOT NULL DEFAULT '{}',
        body        TEXT NOT NULL,
        generation  INTEGER NOT NULL DEFAULT 1,
        created_at  TEXT NOT NULL,
        updated_at  TEXT NOT NULL,
        PRIMARY KEY (kind, namespace, name)
    ) WITHOUT ROWID;

    CREATE TABLE runs (
        id          TEXT PRIMARY KEY,
        kind        TEXT NOT NULL,
        namespace   TEXT NOT NULL,
        name        TEXT NOT NULL,
        ref_name    TEXT NOT NULL,
        phase       TEXT NOT NULL,
        message     TEXT,
        spec        TEXT NOT NULL,
        parent_id   TEXT,
        created_at  TEXT NOT NULL,
        started_at  TEXT,
        finished_at TEXT
    );
    CREATE INDEX runs_by_created ON runs (created_at);
    CREATE INDEX runs_by_phase ON runs (phase);

    CREATE TABLE run_steps (
        run_id      TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        task        TEXT NOT NULL DEFAULT '',
        target      TEXT NOT NULL,
        step_index  INTEGER NOT NULL,
        name        TEXT NOT NULL,
        phase       TEXT NOT NULL,
        exit_code   INTEGER,
        started_at  TEXT,
        finished_at TEXT,
        stdout      TEXT NOT NULL DEFAULT '',
        stderr      TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (run_id, task, target, step_index)
    );

    CREATE TABLE approvals (
        id          TEXT PRIMARY KEY,
        session_id  TEXT,
        call_hash   TEXT NOT NULL,
        state       TEXT NOT NULL,
        request     TEXT NOT NULL,
        decision    TEXT,
        decided_by  TEXT,
        created_at  TEXT NOT NULL,
        expires_at  TEXT,
        decided_at  TEXT
    );

    CREATE TABLE audit (
        seq         INTEGER PRIMARY KEY AUTOINCREMENT,
        session_id  TEXT,
        at          TEXT NOT NULL,
        kind        TEXT NOT NULL,
        payload     TEXT NOT NULL,
        prev_hash   TEXT NOT NULL,
        hash        TEXT NOT NULL
    );

    CREATE TABLE sessions (
        id          TEXT PRIMARY KEY,
        created_at  TEXT NOT NULL,
        updated_at  TEXT NOT NULL,
        title       TEXT,
        state       TEXT NOT NULL DEFAULT '{}'
    );
    "#,
    // 2: which process runs a run (crash recovery must not touch runs of a
    // live process), and cancellation requested from another process.
    r#"
    ALTER TABLE runs ADD COLUMN owner TEXT;
    ALTER TABLE runs ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0;
    "#,
    // 3: cron schedule marks: when each schedule last fired, so a restart
    // neither re-fires nor forgets.
    r#"
    CREATE TABLE schedules (
        key        TEXT PRIMARY KEY,
        last_fire  TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX runs_by_parent ON runs (parent_id);
    "#,
    // 4: runbooks, their chunks, and vectors cached by chunk hash.
    r#"
    CREATE TABLE runbooks (
        name        TEXT PRIMARY KEY,
        source      TEXT NOT NULL,
        hash        TEXT NOT NULL,
        title       TEXT NOT NULL DEFAULT '',
        meta        TEXT NOT NULL DEFAULT '{}',
        added_at    TEXT NOT NULL,
        updated_at  TEXT NOT NULL
    );
    CREATE TABLE runbook_chunks (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        runbook     TEXT NOT NULL REFERENCES runbooks (name) ON DELETE CASCADE,
        ordinal     INTEGER NOT NULL,
        heading     TEXT NOT NULL,
        start_line  INTEGER NOT NULL,
        end_line    INTEGER NOT NULL,
        body        TEXT NOT NULL,
        hash        TEXT NOT NULL,
        code        INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX runbook_chunks_by_runbook ON runbook_chunks (runbook, ordinal);
    CREATE TABLE embeddings (
        model       TEXT NOT NULL,
        hash        TEXT NOT NULL,
        vector      BLOB NOT NULL,
        PRIMARY KEY (model, hash)
    ) WITHOUT ROWID;
    "#,
    // 5: the embedded event log (CloudEvents by subject, deduplicated by
    // event id).
    r#"
    CREATE TABLE events (
        seq         INTEGER PRIMARY KEY AUTOINCREMENT,
        id          TEXT NOT NULL UNIQUE,
        subject     TEXT NOT NULL,
        time        TEXT NOT NULL,
        body        TEXT NOT NULL
    );
    CREATE INDEX events_by_time ON events (time);
    "#,
    // 6: the event feed's outbox (events waiting for NATS, in order), the
    // embedded hook consumers' positions, and hook delivery records.
    r#"
    CREATE TABLE outbox (
        seq         INTEGER PRIMARY KEY AUTOINCREMENT,
        id          TEXT NOT NULL,
        subject     TEXT NOT NULL,
        time        TEXT NOT NULL,
        body        TEXT NOT NULL
    );
    CREATE TABLE hook_cursors (
        hook        TEXT PRIMARY KEY,
        seq         INTEGER NOT NULL,
        updated_at  TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE hook_deliveries (
        seq         INTEGER PRIMARY KEY AUTOINCREMENT,
        hook        TEXT NOT NULL,
        event_id    TEXT NOT NULL,
        subject     TEXT NOT NULL,
        sink        TEXT NOT NULL,
        status      TEXT NOT NULL,
        attempts    INTEGER NOT NULL,
        code        INTEGER,
        detail      TEXT NOT NULL DEFAULT '',
        at          TEXT NOT NULL
    );
    CREATE INDEX hook_deliveries_by_hook ON hook_deliveries (hook, seq);
    "#,
    // 7: one delivery record per sink request: a batch request's event
    // ids (space-separated, in order; empty for a request of one event).
    r#"
    ALTER TABLE hook_deliveries ADD COLUMN batch TEXT NOT NULL DEFAULT '';
    "#,
    // 8: a run's lease: until when its owner vouches for it (renewed while
    // it runs), so a run whose owner died on any machine is found.
    r#"
    ALTER TABLE runs ADD COLUMN lease_until TEXT;
    "#,
];
