//! The embedded store: one SQLite file (WAL mode, mode 0600).
//!
//! Several `opscli` processes may use one file at once: every write runs in
//! a `BEGIN IMMEDIATE` transaction (the write lock is taken up front, so
//! two writers queue on `busy_timeout` instead of failing on a lock
//! upgrade), and WAL lets readers proceed during a write.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::migrations::MIGRATIONS;
use super::seal::{AuditSeal, KEYED};
use super::{
    AUDIT_GENESIS, ApplyOutcome, ApprovalRecord, AuditCheck, AuditRecord, ChunkRecord,
    DeliveryRecord, EventRecord, RunFilter, RunRecord, RunbookChange, RunbookRecord, StepRecord,
    Store, StoreError, StoredObject, audit_hash, feed, runbooks,
};
use ops_model::{Kind, LabelSelector, Object, ObjectKey, RunPhase};

/// How long a writer waits for another process's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The SQLite-backed [`Store`].
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// The one connection. An async lock, taken before a blocking thread
    /// is asked for: callers wait their turn as tasks, not as threads (50
    /// targets finishing at once used to park 50 blocking-pool threads on
    /// a std mutex, each with its own allocator heap).
    conn: Arc<tokio::sync::Mutex<Connection>>,
    location: Arc<str>,
    /// The audit log's key and head file, when sealed.
    seal: Option<Arc<AuditSeal>>,
    /// The database file (`None` in memory), watched for [`Store::changes`].
    file: Option<PathBuf>,
    /// The change signal: bumped by this process's decisions at once, and
    /// by the file watcher (any process's writes) once it runs.
    changed: Arc<tokio::sync::watch::Sender<u64>>,
    /// Whether the file watcher was started (by the first `changes`).
    watching: Arc<std::sync::OnceLock<bool>>,
}

/// Watches the directory of the database file with inotify: SQLite writes
/// the WAL (and the main file at checkpoints) on every commit, so any
/// process's write wakes the watchers. One thread per watched store; it
/// ends when the directory goes away or nobody listens.
fn watch_file(file: &Path, tx: Arc<tokio::sync::watch::Sender<u64>>) -> bool {
    use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
    let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return false;
    };
    let dir = dir.to_owned();
    let Ok(inotify) = Inotify::init(InitFlags::IN_CLOEXEC) else {
        return false;
    };
    let watched = inotify.add_watch(
        &dir,
        AddWatchFlags::IN_MODIFY
            | AddWatchFlags::IN_CLOSE_WRITE
            | AddWatchFlags::IN_MOVED_TO
            | AddWatchFlags::IN_CREATE,
    );
    if watched.is_err() {
        return false;
    }
    std::thread::Builder::new()
        .name("ops-store-watch".into())
        .spawn(move || {
            loop {
                match inotify.read_events() {
                    Ok(events) => {
                        let gone = events
                            .iter()
                            .any(|e| e.mask.contains(AddWatchFlags::IN_IGNORED))
                            || !dir.exists();
                        // The store was dropped: nobody can listen again.
                        if gone || Arc::strong_count(&tx) == 1 {
                            return;
                        }
                        tx.send_modify(|n| *n += 1);
                    }
                    Err(nix::errno::Errno::EINTR) => {}
                    Err(_) => return,
                }
            }
        })
        .is_ok()
}

pub(crate) use ops_model::stamp::now;

#[cfg(unix)]
fn restrict(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn restrict(_path: &Path, _mode: u32) -> std::io::Result<()> {
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if needed) the store at `path`. The parent directory
    /// is created with mode 0700 and the file with mode 0600.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let shown = path.display().to_string();
        let io = |source| StoreError::Io {
            path: shown.clone(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.exists() {
                std::fs::create_dir_all(dir).map_err(io)?;
                restrict(dir, 0o700).map_err(io)?;
            }
        }
        // Create a missing file with mode 0600. An existing one is never
        // opened outside SQLite: closing any descriptor of a file drops
        // every POSIX lock this process holds on it, so a second store on
        // the same file in one process would silently lose the first
        // one's locks (another process could then checkpoint and delete
        // the WAL under it, and it would stop seeing new writes).
        {
            let mut opts = std::fs::OpenOptions::new();
            opts.create_new(true).write(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            match opts.open(path) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io(e)),
            }
        }
        restrict(path, 0o600).map_err(io)?;
        let conn = Connection::open(path).map_err(|source| StoreError::Database {
            path: shown.clone(),
            source: Box::new(source),
        })?;
        let mut store = Self::init(conn, shown.clone())?;
        store.file = Some(path.to_owned());
        for suffix in ["-wal", "-shm"] {
            let mut side = PathBuf::from(path).into_os_string();
            side.push(suffix);
            let side = PathBuf::from(side);
            if side.exists() {
                restrict(&side, 0o600).map_err(io)?;
            }
        }
        Ok(store)
    }

    /// Seals the audit log with `seal`: records from now on are keyed and
    /// every append writes the head file (see [`super::seal`]).
    pub fn with_audit_seal(mut self, seal: AuditSeal) -> Self {
        self.seal = Some(Arc::new(seal));
        self
    }

    /// A private in-memory store (tests, dry runs).
    pub fn open_in_memory() -> Result<Self, StoreError> {
        let conn = Connection::open_in_memory().map_err(|source| StoreError::Database {
            path: ":memory:".into(),
            source: Box::new(source),
        })?;
        Self::init(conn, ":memory:".into())
    }

    fn init(mut conn: Connection, location: String) -> Result<Self, StoreError> {
        let db = |source| StoreError::Database {
            path: location.clone(),
            source: Box::new(source),
        };
        conn.busy_timeout(BUSY_TIMEOUT).map_err(db)?;
        // WAL is refused for in-memory databases; that is fine. Switching
        // to WAL needs an exclusive lock and SQLite answers BUSY at once,
        // without its busy handler, while another process opening the same
        // fresh file holds one: retry within the busy timeout (two opscli
        // processes starting together on a new store hit this).
        let started = std::time::Instant::now();
        loop {
            match conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0)) {
                Ok(_) => break,
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == rusqlite::ErrorCode::DatabaseBusy
                        && started.elapsed() < BUSY_TIMEOUT =>
                {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => return Err(db(e)),
            }
        }
        conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
            .map_err(db)?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db)?;
        let version: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(db)?;
        let supported = MIGRATIONS.len() as i64;
        if version > supported {
            return Err(StoreError::NewerSchema {
                path: location,
                found: version,
                supported,
            });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            tx.execute_batch(sql).map_err(db)?;
            tx.pragma_update(None, "user_version", i as i64 + 1)
                .map_err(db)?;
        }
        tx.commit().map_err(db)?;
        Ok(SqliteStore {
            conn: Arc::new(tokio::sync::Mutex::new(conn)),
            location: location.into(),
            seal: None,
            file: None,
            changed: Arc::new(tokio::sync::watch::channel(0u64).0),
            watching: Arc::new(std::sync::OnceLock::new()),
        })
    }

    /// Where the store lives (a path, or `:memory:`).
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Runs `f` with the connection on a blocking thread.
    async fn with<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &str) -> Result<T, StoreError> + Send + 'static,
    {
        let mut guard = Arc::clone(&self.conn).lock_owned().await;
        let location = Arc::clone(&self.location);
        tokio::task::spawn_blocking(move || f(&mut guard, &location))
            .await
            .map_err(|e| StoreError::Worker(e.to_string()))?
    }

    /// Runs `PRAGMA integrity_check`; `Ok(())` when the file is sound.
    pub async fn integrity_check(&self) -> Result<(), StoreError> {
        self.with(|conn, loc| {
            let result: String = conn
                .query_row("PRAGMA integrity_check", [], |r| r.get(0))
                .map_err(|source| StoreError::Database {
                    path: loc.into(),
                    source: Box::new(source),
                })?;
            if result == "ok" {
                Ok(())
            } else {
                Err(StoreError::Corrupt {
                    path: loc.into(),
                    what: "database".into(),
                    detail: result,
                })
            }
        })
        .await
    }
}

pub(crate) use crate::sql::db_err;

fn corrupt(loc: &str, what: impl Into<String>, detail: impl ToString) -> StoreError {
    StoreError::Corrupt {
        path: loc.to_owned(),
        what: what.into(),
        detail: detail.to_string(),
    }
}

fn phase(loc: &str, s: &str) -> Result<RunPhase, StoreError> {
    s.parse::<RunPhase>()
        .map_err(|e| corrupt(loc, "run phase", e))
}

type ObjectRow = (String, String, String, String, i64, String, String);

fn stored_from_row(loc: &str, row: ObjectRow) -> Result<StoredObject, StoreError> {
    let (kind, namespace, name, body, generation, created_at, updated_at) = row;
    let what = || format!("{kind}/{namespace}/{name}");
    let kind_v = Kind::from_yaml_kind(&kind).ok_or_else(|| corrupt(loc, what(), "unknown kind"))?;
    let json: serde_json::Value =
        serde_json::from_str(&body).map_err(|e| corrupt(loc, what(), e))?;
    let object = Object::from_json(kind_v, json).map_err(|e| corrupt(loc, what(), e))?;
    Ok(StoredObject {
        object,
        key: ObjectKey {
            kind: kind_v,
            namespace,
            name,
        },
        generation,
        created_at,
        updated_at,
    })
}

const RUN_COLUMNS: &str = "id, kind, namespace, name, ref_name, phase, message, spec, parent_id, created_at, started_at, finished_at, owner, cancel_requested";

fn run_from_row(loc: &str, r: &rusqlite::Row<'_>) -> Result<RunRecord, StoreError> {
    let get = |e| db_err(loc)(e);
    let id: String = r.get(0).map_err(get)?;
    let phase_text: String = r.get(5).map_err(get)?;
    let spec_text: String = r.get(7).map_err(get)?;
    Ok(RunRecord {
        kind: r.get(1).map_err(get)?,
        namespace: r.get(2).map_err(get)?,
        name: r.get(3).map_err(get)?,
        ref_name: r.get(4).map_err(get)?,
        phase: phase(loc, &phase_text)?,
        message: r.get(6).map_err(get)?,
        spec: serde_json::from_str(&spec_text).map_err(|e| corrupt(loc, format!("run {id}"), e))?,
        parent_id: r.get(8).map_err(get)?,
        created_at: r.get(9).map_err(get)?,
        started_at: r.get(10).map_err(get)?,
        finished_at: r.get(11).map_err(get)?,
        owner: r.get(12).map_err(get)?,
        cancel_requested: r.get::<_, i64>(13).map_err(get)? != 0,
        steps: Vec::new(),
        id,
    })
}

#[async_trait]
impl Store for SqliteStore {
    async fn apply(
        &self,
        objects: Vec<Object>,
        default_namespace: &str,
    ) -> Result<Vec<ApplyOutcome>, StoreError> {
        let default_namespace = default_namespace.to_owned();
        self.with(move |conn, loc| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_err(loc))?;
            let mut outcomes = Vec::with_capacity(objects.len());
            let at = now();
            for mut object in objects {
                if object.namespace().is_none() {
                    object.metadata_mut().namespace = Some(default_namespace.clone());
                }
                let key = object.key(&default_namespace);
                let encode = |e: serde_json::Error| StoreError::Encode {
                    key: key.to_string(),
                    detail: e.to_string(),
                };
                let body = serde_json::to_string(&object.to_json().map_err(encode)?).map_err(encode)?;
                let labels = serde_json::to_string(&object.labels()).map_err(encode)?;
                let existing: Option<String> = tx
                    .query_row(
                        "SELECT body FROM objects WHERE kind = ?1 AND namespace = ?2 AND name = ?3",
                        params![key.kind.as_str(), key.namespace, key.name],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(db_err(loc))?;
                let outcome = match existing {
                    None => {
                        tx.execute(
                            "INSERT INTO objects (kind, namespace, name, api_version, labels, body, generation, created_at, updated_at)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, ?7, ?7)",
                            params![key.kind.as_str(), key.namespace, key.name, object.api_version(), labels, body, at],
                        )
                        .map_err(db_err(loc))?;
                        ApplyOutcome::Created
                    }
                    Some(old) if old == body => ApplyOutcome::Unchanged,
                    Some(_) => {
                        tx.execute(
                            "UPDATE objects SET api_version = ?4, labels = ?5, body = ?6, generation = generation + 1, updated_at = ?7
                             WHERE kind = ?1 AND namespace = ?2 AND name = ?3",
                            params![key.kind.as_str(), key.namespace, key.name, object.api_version(), labels, body, at],
                        )
                        .map_err(db_err(loc))?;
                        ApplyOutcome::Configured
                    }
                };
                outcomes.push(outcome);
            }
            tx.commit().map_err(db_err(loc))?;
            Ok(outcomes)
        })
        .await
    }

    async fn get(&self, key: &ObjectKey) -> Result<Option<StoredObject>, StoreError> {
        let key = key.clone();
        self.with(move |conn, loc| {
            let row: Option<ObjectRow> = conn
                .query_row(
                    "SELECT kind, namespace, name, body, generation, created_at, updated_at
                     FROM objects WHERE kind = ?1 AND namespace = ?2 AND name = ?3",
                    params![key.kind.as_str(), key.namespace, key.name],
                    |r| {
                        Ok((
                            r.get(0)?,
                            r.get(1)?,
                            r.get(2)?,
                            r.get(3)?,
                            r.get(4)?,
                            r.get(5)?,
                            r.get(6)?,
                        ))
                    },
                )
                .optional()
                .map_err(db_err(loc))?;
            row.map(|r| stored_from_row(loc, r)).transpose()
        })
        .await
    }

    async fn list(
        &self,
        kind: Kind,
        namespace: Option<&str>,
        selector: &LabelSelector,
    ) -> Result<Vec<StoredObject>, StoreError> {
        let namespace = namespace.map(str::to_owned);
        let selector = selector.clone();
        self.with(move |conn, loc| {
            let mut stmt = conn
                .prepare(
                    "SELECT kind, namespace, name, body, generation, created_at, updated_at, labels
                     FROM objects WHERE kind = ?1 AND (?2 IS NULL OR namespace = ?2)
                     ORDER BY namespace, name",
                )
                .map_err(db_err(loc))?;
            let rows = stmt
                .query_map(params![kind.as_str(), namespace], |r| {
                    Ok((
                        (
                            r.get(0)?,
                            r.get(1)?,
                            r.get(2)?,
                            r.get(3)?,
                            r.get(4)?,
                            r.get(5)?,
                            r.get(6)?,
                        ),
                        r.get::<_, String>(7)?,
                    ))
                })
                .map_err(db_err(loc))?;
            let mut out = Vec::new();
            for row in rows {
                let (row, labels): (ObjectRow, String) = row.map_err(db_err(loc))?;
                if !selector.is_empty() {
                    let labels: BTreeMap<String, String> = serde_json::from_str(&labels)
                        .map_err(|e| corrupt(loc, format!("labels of {}", row.2), e))?;
                    if !selector.matches(&labels) {
                        continue;
                    }
                }
                out.push(stored_from_row(loc, row)?);
            }
            Ok(out)
        })
        .await
    }

    async fn delete(&self, keys: &[ObjectKey]) -> Result<Vec<bool>, StoreError> {
        let keys = keys.to_vec();
        self.with(move |conn, loc| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_err(loc))?;
            let mut out = Vec::with_capacity(keys.len());
            for key in &keys {
                let n = tx
                    .execute(
                        "DELETE FROM objects WHERE kind = ?1 AND namespace = ?2 AND name = ?3",
                        params![key.kind.as_str(), key.namespace, key.name],
                    )
                    .map_err(db_err(loc))?;
                out.push(n > 0);
            }
            tx.commit().map_err(db_err(loc))?;
            Ok(out)
        })
        .await
    }

    async fn create_run(&self, run: &RunRecord) -> Result<(), StoreError> {
        let run = run.clone();
        self.with(move |conn, loc| {
            let spec = serde_json::to_string(&run.spec).map_err(|e| StoreError::Encode {
                key: format!("run {}", run.id),
                detail: e.to_string(),
            })?;
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_err(loc))?;
            tx.execute(
                &format!("INSERT INTO runs ({RUN_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"),
                params![
                    run.id,
                    run.kind,
                    run.namespace,
                    run.name,
                    run.ref_name,
                    run.phase.as_str(),
                    run.message,
                    spec,
                    run.parent_id,
                    run.created_at,
                    run.started_at,
                    run.finished_at,
                    run.owner,
                    run.cancel_requested as i64
                ],
            )
            .map_err(db_err(loc))?;
            tx.commit().map_err(db_err(loc))?;
            Ok(())
        })
        .await
    }

    async fn set_run_phase(
        &self,
        id: &str,
        phase: RunPhase,
        message: Option<&str>,
    ) -> Result<(), StoreError> {
        let id = id.to_owned();
        let message = message.map(str::to_owned);
        self.with(move |conn, loc| {
            let at = now();
            let started = (phase == RunPhase::Running).then(|| at.clone());
            let finished = phase.is_terminal().then(|| at.clone());
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_err(loc))?;
            let n = tx
                .execute(
                    "UPDATE runs SET phase = ?2,
                        message = COALESCE(?3, message),
                        started_at = COALESCE(started_at, ?4),
                        finished_at = COALESCE(?5, finished_at)
                     WHERE id = ?1",
                    params![id, phase.as_str(), message, started, finished],
                )
                .map_err(db_err(loc))?;
            if n == 0 {
                return Err(StoreError::RunNotFound(id));
            }
            tx.commit().map_err(db_err(loc))?;
            Ok(())
        })
        .await
    }

    async fn record_step(&self, step: &StepRecord) -> Result<(), StoreError> {
        let s = step.clone();
        self.with(move |conn, loc| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_err(loc))?;
            let exists: bool = tx
                .query_row("SELECT 1 FROM runs WHERE id = ?1", params![s.run_id], |_| Ok(true))
                .optional()
                .map_err(db_err(loc))?
                .unwrap_or(false);
            if !exists {
                return Err(StoreError::RunNotFound(s.run_id));
            }
            tx.execute(
                "INSERT OR REPLACE INTO run_steps
                 (run_id, task, target, step_index, name, phase, exit_code, started_at, finished_at, stdout, stderr)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    s.run_id,
                    s.task,
                    s.target,
                    s.index,
                    s.name,
                    s.phase.as_str(),
                    s.exit_code,
                    s.started_at,
                    s.finished_at,
                    s.stdout,
                    s.stderr
                ],
            )
            .map_err(db_err(loc))?;
            tx.commit().map_err(db_err(loc))?;
            Ok(())
        })
        .await
    }

    async fn get_run(&self, id: &str) -> Result<Option<RunRecord>, StoreError> {
        let id = id.to_owned();
        self.with(move |conn, loc| {
            let mut stmt = conn
                .prepare(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"))
                .map_err(db_err(loc))?;
            let mut rows = stmt.query(params![id]).map_err(db_err(loc))?;
            let Some(row) = rows.next().map_err(db_err(loc))? else {
                return Ok(None);
            };
            let mut run = run_from_row(loc, row)?;
            let mut stmt = conn
                .prepare(
                    "SELECT run_id, task, target, step_index, name, phase, exit_code, started_at, finished_at, stdout, stderr
                     FROM run_steps WHERE run_id = ?1 ORDER BY task, target, step_index",
                )
                .map_err(db_err(loc))?;
            let mut rows = stmt.query(params![id]).map_err(db_err(loc))?;
            while let Some(r) = rows.next().map_err(db_err(loc))? {
                let get = |e| db_err(loc)(e);
                let phase_text: String = r.get(5).map_err(get)?;
                run.steps.push(StepRecord {
                    run_id: r.get(0).map_err(get)?,
                    task: r.get(1).map_err(get)?,
                    target: r.get(2).map_err(get)?,
                    index: r.get(3).map_err(get)?,
                    name: r.get(4).map_err(get)?,
                    phase: phase(loc, &phase_text)?,
                    exit_code: r.get(6).map_err(get)?,
                    started_at: r.get(7).map_err(get)?,
                    finished_at: r.get(8).map_err(get)?,
                    stdout: r.get(9).map_err(get)?,
                    stderr: r.get(10).map_err(get)?,
                });
            }
            Ok(Some(run))
        })
        .await
    }

    async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<RunRecord>, StoreError> {
        let f = filter.clone();
        self.with(move |conn, loc| {
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {RUN_COLUMNS} FROM runs
                     WHERE (?1 IS NULL OR namespace = ?1) AND (?2 IS NULL OR ref_name = ?2) AND (?3 IS NULL OR phase = ?3)
                       AND (?5 IS NULL OR parent_id = ?5)
                     ORDER BY created_at DESC, id DESC LIMIT ?4"
                ))
                .map_err(db_err(loc))?;
            let limit = f.limit.unwrap_or(100) as i64;
            let mut rows = stmt
                .query(params![f.namespace, f.ref_name, f.phase.map(RunPhase::as_str), limit, f.parent_id])
                .map_err(db_err(loc))?;
            let mut out = Vec::new();
            while let Some(r) = rows.next().map_err(db_err(loc))? {
                out.push(run_from_row(loc, r)?);
            }
            Ok(out)
        })
        .await
    }

    async fn renew_lease(&self, id: &str, until: &str) -> Result<(), StoreError> {
        let (id, until) = (id.to_owned(), until.to_owned());
        self.with(move |conn, loc| {
            conn.execute(
                "UPDATE runs SET lease_until = ?2 WHERE id = ?1 AND phase IN ('Running', 'Pending')",
                params![id, until],
            )
            .map_err(db_err(loc))?;
            Ok(())
        })
        .await
    }

    async fn mark_interrupted(
        &self,
        alive: &(dyn for<'o> Fn(&'o str) -> bool + Sync),
    ) -> Result<usize, StoreError> {
        type Active = (String, Option<String>, Option<String>);
        let active: Vec<Active> = self
            .with(|conn, loc| {
                let mut stmt = conn
                    .prepare(
                        "SELECT id, owner, lease_until FROM runs WHERE phase IN ('Running', 'Pending')",
                    )
                    .map_err(db_err(loc))?;
                let rows = stmt
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .map_err(db_err(loc))?;
                rows.collect::<Result<Vec<_>, _>>().map_err(db_err(loc))
            })
            .await?;
        // Stamps sort as text.
        let at = now();
        let dead: Vec<String> = active
            .into_iter()
            .filter(|(_, owner, lease)| {
                !owner.as_deref().is_some_and(alive)
                    || lease.as_deref().is_some_and(|l| l < at.as_str())
            })
            .map(|(id, _, _)| id)
            .collect();
        if dead.is_empty() {
            return Ok(0);
        }
        self.with(move |conn, loc| {
            let at = now();
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_err(loc))?;
            let mut n = 0;
            for id in &dead {
                tx.execute(
                    "UPDATE run_steps SET phase = 'Interrupted', finished_at = COALESCE(finished_at, ?2)
                     WHERE run_id = ?1 AND phase IN ('Running', 'Pending')",
                    params![id, at],
                )
                .map_err(db_err(loc))?;
                n += tx
                    .execute(
                        "UPDATE runs SET phase = 'Interrupted', finished_at = COALESCE(finished_at, ?2),
                            message = COALESCE(message, 'interrupted: the process running it stopped')
                         WHERE id = ?1 AND phase IN ('Running', 'Pending')",
                        params![id, at],
                    )
                    .map_err(db_err(loc))?;
            }
            tx.commit().map_err(db_err(loc))?;
            Ok(n)
        })
        .await
    }

    async fn request_cancel(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.with(move |conn, loc| {
            let exists: bool = conn
                .query_row("SELECT 1 FROM runs WHERE id = ?1", params![id], |_| Ok(true))
                .optional()
                .map_err(db_err(loc))?
                .unwrap_or(false);
            if !exists {
                return Err(StoreError::RunNotFound(id));
            }
            let n = conn
                .execute(
                    "UPDATE runs SET cancel_requested = 1 WHERE id = ?1 AND phase IN ('Running', 'Pending')",
                    params![id],
                )
                .map_err(db_err(loc))?;
            Ok(n > 0)
        })
        .await
    }

    async fn schedule_mark(&self, key: &str) -> Result<Option<String>, StoreError> {
        let key = key.to_owned();
        self.with(move |conn, loc| {
            conn.query_row(
                "SELECT last_fire FROM schedules WHERE key = ?1",
                params![key],
                |r| r.get(0),
            )
            .optional()
            .map_err(db_err(loc))
        })
        .await
    }

    async fn set_schedule_mark(&self, key: &str, at: &str) -> Result<(), StoreError> {
        let (key, at) = (key.to_owned(), at.to_owned());
        self.with(move |conn, loc| {
            conn.execute(
                "INSERT INTO schedules (key, last_fire, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (key) DO UPDATE SET last_fire = excluded.last_fire, updated_at = excluded.updated_at",
                params![key, at, now()],
            )
            .map_err(db_err(loc))?;
            Ok(())
        })
        .await
    }

    async fn append_audit(
        &self,
        session_id: Option<&str>,
        kind: &str,
        payload: &str,
    ) -> Result<AuditRecord, StoreError> {
        let (session_id, kind, payload) = (
            session_id.map(str::to_owned),
            kind.to_owned(),
            payload.to_owned(),
        );
        let seal = self.seal.clone();
        self.with(move |conn, loc| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_err(loc))?;
            let last: Option<(i64, String)> = tx
                .query_row(
                    "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(db_err(loc))?;
            let (seq, prev_hash) = match last {
                Some((s, h)) => (s + 1, h),
                None => (1, AUDIT_GENESIS.to_owned()),
            };
            let at = now();
            let hash = record_hash(
                seal.as_deref(),
                &prev_hash,
                seq,
                &at,
                session_id.as_deref(),
                &kind,
                &payload,
            );
            tx.execute(
                "INSERT INTO audit (seq, session_id, at, kind, payload, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![seq, session_id, at, kind, payload, prev_hash, hash],
            )
            .map_err(db_err(loc))?;
            if let Some(seal) = &seal {
                // The head is written while this transaction holds the
                // write lock, so heads follow the log's order; a record
                // that cannot be sealed is not committed.
                let keyed_from = match seal.read_head() {
                    Ok(Some(h)) => h.keyed_from,
                    Ok(None) => first_keyed(&tx, loc)?.unwrap_or(seq),
                    Err(detail) => {
                        return Err(StoreError::Corrupt {
                            path: loc.to_owned(),
                            what: "audit head".into(),
                            detail,
                        });
                    }
                };
                seal.write_head(seq, &hash, keyed_from)?;
            }
            tx.commit().map_err(db_err(loc))?;
            Ok(AuditRecord {
                seq,
                session_id,
                at,
                kind,
                payload,
                prev_hash,
                hash,
            })
        })
        .await
    }

    async fn list_audit(
        &self,
        session_id: Option<&str>,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let session_id = session_id.map(str::to_owned);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with(move |conn, loc| {
            let mut stmt = conn
                .prepare(
                    "SELECT seq, session_id, at, kind, payload, prev_hash, hash FROM audit
                     WHERE seq > ?1 AND (?2 IS NULL OR session_id = ?2) ORDER BY seq LIMIT ?3",
                )
                .map_err(db_err(loc))?;
            let rows = stmt
                .query_map(params![after_seq, session_id, limit], audit_row)
                .map_err(db_err(loc))?;
            rows.collect::<Result<Vec<_>, _>>().map_err(db_err(loc))
        })
        .await
    }

    async fn verify_audit(&self) -> Result<AuditCheck, StoreError> {
        let seal = self.seal.clone();
        self.with(move |conn, loc| {
            let broken = |seq: i64, reason: String| Ok(AuditCheck::Broken { seq, reason });
            let head = match seal.as_ref().map(|s| s.read_head()).transpose() {
                Ok(h) => h.flatten(),
                Err(reason) => return broken(0, reason),
            };
            let first_keyed = first_keyed(conn, loc)?;
            let keyed_from = match (&head, first_keyed) {
                (Some(h), _) => h.keyed_from,
                (None, Some(k)) if seal.is_some() => {
                    return broken(
                        k,
                        "the audit head file is missing, though the log is sealed (it was deleted)"
                            .into(),
                    );
                }
                (None, Some(k)) => k,
                (None, None) => i64::MAX,
            };
            let mut stmt = conn
                .prepare(
                    "SELECT seq, session_id, at, kind, payload, prev_hash, hash FROM audit ORDER BY seq",
                )
                .map_err(db_err(loc))?;
            let rows = stmt.query_map([], audit_row).map_err(db_err(loc))?;
            let mut expected_prev = AUDIT_GENESIS.to_owned();
            let mut last = 0i64;
            for (expected_seq, row) in (1i64..).zip(rows) {
                let r = row.map_err(db_err(loc))?;
                if r.seq != expected_seq {
                    return broken(
                        r.seq,
                        format!(
                            "expected record {expected_seq} next, found {} (records removed or renumbered)",
                            r.seq
                        ),
                    );
                }
                if r.prev_hash != expected_prev {
                    return broken(
                        r.seq,
                        "its link to the previous record does not match (a record before it was changed or removed)".into(),
                    );
                }
                let keyed = r.seq >= keyed_from;
                if keyed != r.hash.starts_with(KEYED) {
                    return broken(
                        r.seq,
                        if keyed {
                            "its hash is not keyed, though the log is sealed from record {keyed_from} on (the chain was recomputed without the key)".replace("{keyed_from}", &keyed_from.to_string())
                        } else {
                            "its hash is keyed where the log is not sealed".into()
                        },
                    );
                }
                if keyed && seal.is_none() {
                    return broken(
                        r.seq,
                        "the record is sealed with a key this check was not given".into(),
                    );
                }
                let h = record_hash(
                    seal.as_deref().filter(|_| keyed),
                    &r.prev_hash,
                    r.seq,
                    &r.at,
                    r.session_id.as_deref(),
                    &r.kind,
                    &r.payload,
                );
                if h != r.hash {
                    return broken(
                        r.seq,
                        if keyed {
                            "its content does not match its keyed hash (the record was edited or forged without the key)".into()
                        } else {
                            "its content does not match its hash (the record was edited)".into()
                        },
                    );
                }
                expected_prev = r.hash;
                last = r.seq;
            }
            if let Some(h) = &head {
                if h.seq > last {
                    return broken(
                        last + 1,
                        if last == 0 {
                            format!("all {} records were removed (the head file names record {})", h.seq, h.seq)
                        } else {
                            format!(
                                "records {}..={} were removed from the end (the head file names record {})",
                                last + 1,
                                h.seq,
                                h.seq
                            )
                        },
                    );
                }
                if h.seq < last {
                    return broken(
                        h.seq + 1,
                        format!("the head file names record {}, older than the log's last ({last}): it was replaced", h.seq),
                    );
                }
                if h.seq > 0 && h.hash != expected_prev {
                    return broken(
                        last,
                        "the last record is not the one the head file names (the tail was rewritten)"
                            .into(),
                    );
                }
            }
            Ok(AuditCheck::Intact {
                records: u64::try_from(last).unwrap_or(0),
                head: expected_prev,
            })
        })
        .await
    }

    async fn put_session(&self, id: &str, title: &str, state: &str) -> Result<(), StoreError> {
        let (id, title, state) = (id.to_owned(), title.to_owned(), state.to_owned());
        self.with(move |conn, loc| {
            let at = now();
            conn.execute(
                "INSERT INTO sessions (id, created_at, updated_at, title, state) VALUES (?1, ?2, ?2, ?3, ?4)
                 ON CONFLICT (id) DO UPDATE SET updated_at = excluded.updated_at, state = excluded.state,
                 title = COALESCE(sessions.title, excluded.title)",
                params![id, at, title, state],
            )
            .map_err(db_err(loc))?;
            Ok(())
        })
        .await
    }

    async fn get_session(&self, id: &str) -> Result<Option<(String, String)>, StoreError> {
        let id = id.to_owned();
        self.with(move |conn, loc| {
            conn.query_row(
                "SELECT COALESCE(title, ''), state FROM sessions WHERE id = ?1",
                params![id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(db_err(loc))
        })
        .await
    }

    async fn create_approval(&self, a: &ApprovalRecord) -> Result<(), StoreError> {
        let a = a.clone();
        self.with(move |conn, loc| {
            conn.execute(
                "INSERT INTO approvals (id, session_id, call_hash, state, request, decision, decided_by, created_at, expires_at, decided_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![a.id, a.session_id, a.call_hash, a.state, a.request, a.reason, a.decided_by, a.created_at, a.expires_at, a.decided_at],
            )
            .map_err(db_err(loc))?;
            Ok(())
        })
        .await
    }

    fn changes(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        if let Some(file) = &self.file {
            self.watching
                .get_or_init(|| watch_file(file, Arc::clone(&self.changed)));
        }
        Some(self.changed.subscribe())
    }

    async fn get_approval(&self, id: &str) -> Result<Option<ApprovalRecord>, StoreError> {
        let id = id.to_owned();
        self.with(move |conn, loc| {
            conn.query_row(
                &format!("SELECT {APPROVAL_COLUMNS} FROM approvals WHERE id = ?1"),
                params![id],
                approval_row,
            )
            .optional()
            .map_err(db_err(loc))
        })
        .await
    }

    async fn decide_approval(
        &self,
        id: &str,
        state: &str,
        by: &str,
        reason: Option<&str>,
    ) -> Result<Option<ApprovalRecord>, StoreError> {
        let (id, state, by, reason) = (
            id.to_owned(),
            state.to_owned(),
            by.to_owned(),
            reason.map(str::to_owned),
        );
        let decided = self.with(move |conn, loc| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_err(loc))?;
            let at = now();
            // Lapsed requests expire first; then only a pending one is decided.
            tx.execute(
                "UPDATE approvals SET state = 'expired', decided_at = ?2
                 WHERE id = ?1 AND state = 'pending' AND expires_at IS NOT NULL AND expires_at <= ?2",
                params![id, at],
            )
            .map_err(db_err(loc))?;
            tx.execute(
                "UPDATE approvals SET state = ?2, decided_by = ?3, decision = ?4, decided_at = ?5
                 WHERE id = ?1 AND state = 'pending'",
                params![id, state, by, reason, at],
            )
            .map_err(db_err(loc))?;
            let rec = tx
                .query_row(
                    &format!("SELECT {APPROVAL_COLUMNS} FROM approvals WHERE id = ?1"),
                    params![id],
                    approval_row,
                )
                .optional()
                .map_err(db_err(loc))?;
            tx.commit().map_err(db_err(loc))?;
            Ok(rec)
        })
        .await;
        // Waiters in this process hear it at once.
        self.changed.send_modify(|n| *n += 1);
        decided
    }

    async fn consume_approval(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.with(move |conn, loc| {
            let n = conn
                .execute(
                    "UPDATE approvals SET state = 'used' WHERE id = ?1 AND state = 'approved'",
                    params![id],
                )
                .map_err(db_err(loc))?;
            Ok(n == 1)
        })
        .await
    }

    async fn session_approval(
        &self,
        session_id: &str,
        call_hash: &str,
    ) -> Result<Option<ApprovalRecord>, StoreError> {
        let (session_id, call_hash) = (session_id.to_owned(), call_hash.to_owned());
        self.with(move |conn, loc| {
            conn.query_row(
                &format!(
                    "SELECT {APPROVAL_COLUMNS} FROM approvals
                     WHERE session_id = ?1 AND call_hash = ?2 AND state = 'approved_for_session'
                     ORDER BY created_at DESC LIMIT 1"
                ),
                params![session_id, call_hash],
                approval_row,
            )
            .optional()
            .map_err(db_err(loc))
        })
        .await
    }

    async fn list_approvals(
        &self,
        session_id: Option<&str>,
        pending_only: bool,
    ) -> Result<Vec<ApprovalRecord>, StoreError> {
        let session_id = session_id.map(str::to_owned);
        self.with(move |conn, loc| {
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {APPROVAL_COLUMNS} FROM approvals
                     WHERE (?1 IS NULL OR session_id = ?1) AND (?2 = 0 OR state = 'pending')
                     ORDER BY created_at DESC, id"
                ))
                .map_err(db_err(loc))?;
            let rows = stmt
                .query_map(params![session_id, i64::from(pending_only)], approval_row)
                .map_err(db_err(loc))?;
            rows.collect::<Result<Vec<_>, _>>().map_err(db_err(loc))
        })
        .await
    }

    async fn put_runbook(
        &self,
        runbook: &RunbookRecord,
        chunks: &[ChunkRecord],
    ) -> Result<RunbookChange, StoreError> {
        let (rb, chunks) = (runbook.clone(), chunks.to_vec());
        self.with(move |conn, loc| runbooks::put(conn, loc, &rb, &chunks))
            .await
    }

    async fn list_runbooks(&self) -> Result<Vec<RunbookRecord>, StoreError> {
        self.with(runbooks::list).await
    }

    async fn get_runbook(
        &self,
        name: &str,
    ) -> Result<Option<(RunbookRecord, Vec<ChunkRecord>)>, StoreError> {
        let name = name.to_owned();
        self.with(move |conn, loc| runbooks::get(conn, loc, &name))
            .await
    }

    async fn delete_runbook(&self, name: &str) -> Result<bool, StoreError> {
        let name = name.to_owned();
        self.with(move |conn, loc| runbooks::delete(conn, loc, &name))
            .await
    }

    async fn runbook_chunks(&self) -> Result<Vec<ChunkRecord>, StoreError> {
        self.with(runbooks::all_chunks).await
    }

    async fn get_embeddings(
        &self,
        model: &str,
        hashes: &[String],
    ) -> Result<std::collections::HashMap<String, Vec<f32>>, StoreError> {
        let (model, hashes) = (model.to_owned(), hashes.to_vec());
        self.with(move |conn, loc| runbooks::get_vectors(conn, loc, &model, &hashes))
            .await
    }

    async fn put_embeddings(
        &self,
        model: &str,
        vectors: &[(String, Vec<f32>)],
    ) -> Result<(), StoreError> {
        let (model, vectors) = (model.to_owned(), vectors.to_vec());
        self.with(move |conn, loc| runbooks::put_vectors(conn, loc, &model, &vectors))
            .await
    }

    async fn append_event(&self, e: &EventRecord) -> Result<bool, StoreError> {
        let e = e.clone();
        self.with(move |conn, loc| {
            let n = conn
                .execute(
                    "INSERT OR IGNORE INTO events (id, subject, time, body) VALUES (?1, ?2, ?3, ?4)",
                    params![e.id, e.subject, e.time, e.body],
                )
                .map_err(db_err(loc))?;
            Ok(n > 0)
        })
        .await
    }

    async fn list_events(
        &self,
        after_seq: i64,
        since: Option<&str>,
        limit: usize,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let since = since.map(str::to_owned);
        self.with(move |conn, loc| {
            let mut stmt = conn
                .prepare(
                    "SELECT seq, id, subject, time, body FROM events
                     WHERE seq > ?1 AND (?2 IS NULL OR time >= ?2) ORDER BY seq LIMIT ?3",
                )
                .map_err(db_err(loc))?;
            let rows = stmt
                .query_map(params![after_seq, since, limit as i64], feed::event_row)
                .map_err(db_err(loc))?;
            rows.collect::<Result<Vec<_>, _>>().map_err(db_err(loc))
        })
        .await
    }

    async fn outbox_push(&self, events: &[EventRecord], max: usize) -> Result<usize, StoreError> {
        let events = events.to_vec();
        self.with(move |conn, loc| feed::outbox_push(conn, loc, &events, max))
            .await
    }

    async fn outbox_peek(&self, limit: usize) -> Result<Vec<EventRecord>, StoreError> {
        self.with(move |conn, loc| feed::outbox_peek(conn, loc, limit))
            .await
    }

    async fn outbox_remove(&self, upto_seq: i64) -> Result<(), StoreError> {
        self.with(move |conn, loc| feed::outbox_remove(conn, loc, upto_seq))
            .await
    }

    async fn outbox_len(&self) -> Result<usize, StoreError> {
        self.with(feed::outbox_len).await
    }

    async fn hook_cursor(&self, hook: &str) -> Result<Option<i64>, StoreError> {
        let hook = hook.to_owned();
        self.with(move |conn, loc| feed::hook_cursor(conn, loc, &hook))
            .await
    }

    async fn set_hook_cursor(&self, hook: &str, seq: i64) -> Result<(), StoreError> {
        let hook = hook.to_owned();
        self.with(move |conn, loc| feed::set_hook_cursor(conn, loc, &hook, seq))
            .await
    }

    async fn record_deliveries(
        &self,
        d: Vec<DeliveryRecord>,
        cursor: Option<(String, i64)>,
    ) -> Result<(), StoreError> {
        self.with(move |conn, loc| feed::record_deliveries(conn, loc, &d, cursor))
            .await
    }

    async fn set_status(
        &self,
        key: &ObjectKey,
        status: &serde_json::Value,
    ) -> Result<bool, StoreError> {
        let key = key.clone();
        let status = status.to_string();
        self.with(move |conn, loc| {
            let n = conn
                .execute(
                    "UPDATE objects SET body = json_set(body, '$.status', json(?4)), updated_at = ?5
                     WHERE kind = ?1 AND namespace = ?2 AND name = ?3",
                    params![key.kind.as_str(), key.namespace, key.name, status, now()],
                )
                .map_err(db_err(loc))?;
            Ok(n > 0)
        })
        .await
    }

    async fn prune_events(&self, before: &str) -> Result<(usize, usize), StoreError> {
        let before = before.to_owned();
        self.with(move |conn, loc| feed::prune(conn, loc, &before))
            .await
    }

    async fn last_event_seq(&self) -> Result<i64, StoreError> {
        self.with(feed::last_event_seq).await
    }

    async fn list_deliveries(
        &self,
        hook: Option<&str>,
        event: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let hook = hook.map(str::to_owned);
        let event = event.map(str::to_owned);
        self.with(move |conn, loc| {
            feed::list_deliveries(conn, loc, hook.as_deref(), event.as_deref(), limit)
        })
        .await
    }
}

/// A record's hash: keyed under `seal`, else the plain chain.
fn record_hash(
    seal: Option<&AuditSeal>,
    prev_hash: &str,
    seq: i64,
    at: &str,
    session_id: Option<&str>,
    kind: &str,
    payload: &str,
) -> String {
    match seal {
        Some(s) => s.record_hash(prev_hash, seq, at, session_id, kind, payload),
        None => audit_hash(prev_hash, seq, at, session_id, kind, payload),
    }
}

/// The first audit record whose hash is keyed, if any.
fn first_keyed(conn: &Connection, loc: &str) -> Result<Option<i64>, StoreError> {
    conn.query_row(
        "SELECT MIN(seq) FROM audit WHERE hash LIKE 'hmac-sha256:%'",
        [],
        |r| r.get::<_, Option<i64>>(0),
    )
    .map_err(db_err(loc))
}

fn audit_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuditRecord> {
    Ok(AuditRecord {
        seq: r.get(0)?,
        session_id: r.get(1)?,
        at: r.get(2)?,
        kind: r.get(3)?,
        payload: r.get(4)?,
        prev_hash: r.get(5)?,
        hash: r.get(6)?,
    })
}

const APPROVAL_COLUMNS: &str = "id, session_id, call_hash, state, request, decision, decided_by, created_at, expires_at, decided_at";

fn approval_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ApprovalRecord> {
    Ok(ApprovalRecord {
        id: r.get(0)?,
        session_id: r.get(1)?,
        call_hash: r.get(2)?,
        state: r.get(3)?,
        request: r.get(4)?,
        reason: r.get(5)?,
        decided_by: r.get(6)?,
        created_at: r.get(7)?,
        expires_at: r.get(8)?,
        decided_at: r.get(9)?,
    })
}
