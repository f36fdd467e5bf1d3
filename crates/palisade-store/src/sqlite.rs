//! The embedded backend: one SQLite file in WAL mode with `synchronous=FULL`, so a
//! transaction acknowledged to a caller survives a crash or power loss.
//!
//! One writer thread owns the write connection and commits queued transactions in groups
//! (group commit): each transaction's compares see the writes of the ones before it in the
//! group, every transaction gets its own revision, and one fsync covers the group. Readers
//! use a small pool of read connections; WAL gives each read a consistent snapshot.

use crate::{
    prefix_end, Compare, Event, EventBatch, EventKind, KeyValue, Op, Revision, Store, StoreError,
    Txn, TxnResponse, WatchStream,
};
use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use tokio::sync::{oneshot, watch};

/// Most transactions committed by one fsync.
const MAX_GROUP: usize = 256;
/// Events read per query by a watcher.
const WATCH_PAGE: i64 = 2048;
/// Read connections kept open.
const READERS: usize = 4;
/// Committed batches kept for live watchers; a watcher further behind reads the log.
const LIVE_BUFFER: usize = 4096;

type Reply = oneshot::Sender<Result<TxnResponse, StoreError>>;

enum Request {
    Txn(Txn, Reply),
    Compact(Revision, oneshot::Sender<Result<(), StoreError>>),
}

/// The SQLite store. Cheap to clone.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<mpsc::Sender<Request>>,
    readers: Mutex<Vec<Connection>>,
    /// The last committed revision, published after each group commit.
    committed: watch::Receiver<Revision>,
    /// Committed changes, pushed by the writer so live watchers need no read of the log.
    live: tokio::sync::broadcast::Sender<Arc<EventBatch>>,
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn open(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).map_err(backend)?;
    // WAL + synchronous=FULL: a COMMIT returns only after the WAL is fsynced.
    conn.execute_batch(
        "PRAGMA journal_mode=WAL;
         PRAGMA synchronous=FULL;
         PRAGMA busy_timeout=10000;
         PRAGMA foreign_keys=ON;",
    )
    .map_err(backend)?;
    Ok(conn)
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS kv (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL,
    create_rev INTEGER NOT NULL,
    mod_rev INTEGER NOT NULL,
    version INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS log (
    rev INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    key TEXT NOT NULL,
    deleted INTEGER NOT NULL,
    value BLOB NOT NULL,
    create_rev INTEGER NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (rev, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT OR IGNORE INTO meta (name, value) VALUES ('revision', 0), ('compacted', 0);
";

impl SqliteStore {
    /// Sends every logged batch from `next` on; false when the watcher is gone or failed.
    async fn catch_up(
        &self,
        next: &mut Revision,
        tx: &tokio::sync::mpsc::Sender<Result<EventBatch, StoreError>>,
    ) -> bool {
        loop {
            let from = *next;
            let read = self
                .read(move |c| {
                    let t = c.transaction().map_err(backend)?;
                    let compacted = meta(&t, "compacted")?;
                    if from < compacted {
                        return Err(StoreError::Compacted {
                            requested: from,
                            compacted,
                        });
                    }
                    read_log(&t, from)
                })
                .await;
            match read {
                Ok(batches) if batches.is_empty() => return true,
                Ok(batches) => {
                    for b in batches {
                        *next = b.revision + 1;
                        if tx.send(Ok(b)).await.is_err() {
                            return false;
                        }
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return false;
                }
            }
        }
    }

    /// Opens (creating if needed) the store file at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let conn = open(&path)?;
        conn.execute_batch(SCHEMA).map_err(backend)?;
        let rev = meta(&conn, "revision")?;
        let (rev_tx, rev_rx) = watch::channel(rev);
        let (live, _) = tokio::sync::broadcast::channel(LIVE_BUFFER);
        let (tx, rx) = mpsc::channel::<Request>();
        let live_tx = live.clone();
        std::thread::Builder::new()
            .name("palisade-sqlite-writer".into())
            .spawn(move || writer_loop(conn, rx, rev_tx, live_tx, rev))
            .map_err(backend)?;
        let mut readers = Vec::new();
        for _ in 0..READERS {
            readers.push(open(&path)?);
        }
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path,
                writer: Mutex::new(tx),
                readers: Mutex::new(readers),
                committed: rev_rx,
                live,
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` on a read connection in the blocking pool.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let conn = inner.readers.lock().map_err(backend)?.pop();
            let mut conn = match conn {
                Some(c) => c,
                None => open(&inner.path)?,
            };
            let out = f(&mut conn);
            if let Ok(mut pool) = inner.readers.lock() {
                if pool.len() < READERS {
                    pool.push(conn);
                }
            }
            out
        })
        .await
        .map_err(backend)?
    }

    fn send(&self, req: Request) -> Result<(), StoreError> {
        self.inner
            .writer
            .lock()
            .map_err(backend)?
            .send(req)
            .map_err(|_| StoreError::Unavailable("the SQLite writer has stopped".into()))
    }
}

fn meta(conn: &Connection, name: &str) -> Result<Revision, StoreError> {
    conn.query_row("SELECT value FROM meta WHERE name = ?1", [name], |r| {
        r.get(0)
    })
    .map_err(backend)
}

fn row_kv(r: &rusqlite::Row<'_>) -> rusqlite::Result<KeyValue> {
    Ok(KeyValue {
        key: r.get(0)?,
        value: r.get(1)?,
        create_revision: r.get(2)?,
        mod_revision: r.get(3)?,
        version: r.get(4)?,
    })
}

fn get_kv(conn: &Connection, key: &str) -> rusqlite::Result<Option<KeyValue>> {
    conn.prepare_cached("SELECT key, value, create_rev, mod_rev, version FROM kv WHERE key = ?1")?
        .query_row([key], row_kv)
        .optional()
}

fn range_kv(conn: &Connection, prefix: &str) -> rusqlite::Result<Vec<KeyValue>> {
    let end = prefix_end(prefix);
    let mut out = Vec::new();
    match end {
        Some(end) => {
            let mut st = conn.prepare_cached(
                "SELECT key, value, create_rev, mod_rev, version FROM kv
                 WHERE key >= ?1 AND key < ?2 ORDER BY key",
            )?;
            for kv in st.query_map(params![prefix, end], row_kv)? {
                out.push(kv?);
            }
        }
        None => {
            let mut st = conn.prepare_cached(
                "SELECT key, value, create_rev, mod_rev, version FROM kv
                 WHERE key >= ?1 ORDER BY key",
            )?;
            for kv in st.query_map(params![prefix], row_kv)? {
                out.push(kv?);
            }
        }
    }
    out.retain(|kv| kv.key.starts_with(prefix));
    Ok(out)
}

fn compare_holds(conn: &Connection, c: &Compare) -> rusqlite::Result<bool> {
    if c.prefix {
        let kvs = range_kv(conn, &c.key)?;
        if kvs.is_empty() {
            return Ok(c.matches(None));
        }
        Ok(kvs.iter().all(|kv| c.matches(Some(kv))))
    } else {
        Ok(c.matches(get_kv(conn, &c.key)?.as_ref()))
    }
}

/// Applies one transaction inside the open SQLite transaction: `None` when a compare
/// failed, else the changes it made (empty: nothing changed, no new revision).
fn apply(conn: &Connection, txn: &Txn, rev: Revision) -> rusqlite::Result<Option<Vec<Event>>> {
    for c in &txn.compares {
        if !compare_holds(conn, c)? {
            return Ok(None);
        }
    }
    let mut events = Vec::new();
    for (seq, op) in txn.ops.iter().enumerate() {
        match op {
            Op::Put { key, value } => {
                let prev = get_kv(conn, key)?;
                let (create, version) = match prev {
                    Some(p) => (p.create_revision, p.version + 1),
                    None => (rev, 1),
                };
                conn.prepare_cached(
                    "INSERT INTO kv (key, value, create_rev, mod_rev, version) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT(key) DO UPDATE SET value = ?2, create_rev = ?3, mod_rev = ?4, version = ?5",
                )?
                .execute(params![key, value, create, rev, version])?;
                conn.prepare_cached(
                    "INSERT OR REPLACE INTO log (rev, seq, key, deleted, value, create_rev, version)
                     VALUES (?1, ?2, ?3, 0, ?4, ?5, ?6)",
                )?
                .execute(params![rev, seq as i64, key, value, create, version])?;
                events.push(Event {
                    kind: EventKind::Put,
                    kv: KeyValue {
                        key: key.clone(),
                        value: value.clone(),
                        create_revision: create,
                        mod_revision: rev,
                        version,
                    },
                });
            }
            Op::Delete { key } => {
                let n = conn
                    .prepare_cached("DELETE FROM kv WHERE key = ?1")?
                    .execute([key])?;
                if n > 0 {
                    conn.prepare_cached(
                        "INSERT OR REPLACE INTO log (rev, seq, key, deleted, value, create_rev, version)
                         VALUES (?1, ?2, ?3, 1, x'', 0, 0)",
                    )?
                    .execute(params![rev, seq as i64, key])?;
                    events.push(Event {
                        kind: EventKind::Delete,
                        kv: KeyValue {
                            key: key.clone(),
                            value: Vec::new(),
                            create_revision: 0,
                            mod_revision: rev,
                            version: 0,
                        },
                    });
                }
            }
        }
    }
    Ok(Some(events))
}

fn writer_loop(
    mut conn: Connection,
    rx: mpsc::Receiver<Request>,
    published: watch::Sender<Revision>,
    live: tokio::sync::broadcast::Sender<Arc<EventBatch>>,
    mut rev: Revision,
) {
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(r) => group.push(r),
                Err(_) => break,
            }
        }
        let start_rev = rev;
        let mut results: Vec<Result<TxnResponse, StoreError>> = Vec::with_capacity(group.len());
        let mut batches: Vec<EventBatch> = Vec::new();
        let outcome = (|| -> rusqlite::Result<()> {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            for req in &group {
                match req {
                    Request::Txn(txn, _) => {
                        let outcome = apply(&tx, txn, rev + 1)?;
                        let succeeded = outcome.is_some();
                        if let Some(events) = outcome.filter(|e| !e.is_empty()) {
                            rev += 1;
                            batches.push(EventBatch {
                                revision: rev,
                                events,
                            });
                        }
                        results.push(Ok(TxnResponse {
                            succeeded,
                            revision: rev,
                        }));
                    }
                    Request::Compact(upto, _) => {
                        let upto = (*upto).min(rev);
                        tx.prepare_cached("DELETE FROM log WHERE rev < ?1")?
                            .execute([upto])?;
                        tx.prepare_cached(
                            "UPDATE meta SET value = max(value, ?1) WHERE name = 'compacted'",
                        )?
                        .execute([upto])?;
                        results.push(Ok(TxnResponse {
                            succeeded: true,
                            revision: rev,
                        }));
                    }
                }
            }
            tx.prepare_cached("UPDATE meta SET value = ?1 WHERE name = 'revision'")?
                .execute([rev])?;
            tx.commit()
        })();
        if let Err(e) = outcome {
            tracing::error!(error = %e, "SQLite group commit failed; no transaction of the group was applied");
            rev = start_rev;
            batches.clear();
            results = group
                .iter()
                .map(|_| Err(StoreError::Backend(e.to_string())))
                .collect();
        }
        for b in batches {
            // No receiver is fine: watchers catch up from the log.
            let _ = live.send(Arc::new(b));
        }
        published.send_replace(rev);
        for (req, res) in group.into_iter().zip(results) {
            match req {
                Request::Txn(_, reply) => {
                    let _ = reply.send(res);
                }
                Request::Compact(_, reply) => {
                    let _ = reply.send(res.map(|_| ()));
                }
            }
        }
    }
}

fn log_rows(
    conn: &Connection,
    sql: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<(Revision, Event)>, StoreError> {
    let mut st = conn.prepare_cached(sql).map_err(backend)?;
    let rows = st
        .query_map(args, |r| {
            let rev: Revision = r.get(0)?;
            let deleted: i64 = r.get(2)?;
            Ok((
                rev,
                Event {
                    kind: if deleted == 1 {
                        EventKind::Delete
                    } else {
                        EventKind::Put
                    },
                    kv: KeyValue {
                        key: r.get(1)?,
                        value: r.get(3)?,
                        create_revision: r.get(4)?,
                        mod_revision: rev,
                        version: r.get(5)?,
                    },
                },
            ))
        })
        .map_err(backend)?;
    rows.map(|r| r.map_err(backend)).collect()
}

/// Whole revisions from `from` on, about a page of events; never part of a revision.
fn read_log(conn: &Connection, from: Revision) -> Result<Vec<EventBatch>, StoreError> {
    let mut rows = log_rows(
        conn,
        "SELECT rev, key, deleted, value, create_rev, version FROM log
         WHERE rev >= ?1 ORDER BY rev, seq LIMIT ?2",
        params![from, WATCH_PAGE],
    )?;
    if rows.len() as i64 >= WATCH_PAGE {
        // The page may end inside its last revision: read that revision whole.
        if let Some(last) = rows.last().map(|(rev, _)| *rev) {
            rows.retain(|(rev, _)| *rev != last);
            rows.extend(log_rows(
                conn,
                "SELECT rev, key, deleted, value, create_rev, version FROM log
                 WHERE rev = ?1 ORDER BY seq",
                params![last],
            )?);
        }
    }
    let mut batches: Vec<EventBatch> = Vec::new();
    for (rev, ev) in rows {
        match batches.last_mut() {
            Some(b) if b.revision == rev => b.events.push(ev),
            _ => batches.push(EventBatch {
                revision: rev,
                events: vec![ev],
            }),
        }
    }
    Ok(batches)
}

#[async_trait]
impl Store for SqliteStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let key = key.to_string();
        self.read(move |c| get_kv(c, &key).map_err(backend)).await
    }

    async fn range(&self, prefix: &str) -> Result<(Vec<KeyValue>, Revision), StoreError> {
        let prefix = prefix.to_string();
        self.read(move |c| {
            let tx = c.transaction().map_err(backend)?;
            let rev = meta(&tx, "revision")?;
            let kvs = range_kv(&tx, &prefix).map_err(backend)?;
            Ok((kvs, rev))
        })
        .await
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResponse, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.send(Request::Txn(txn, tx))?;
        rx.await
            .map_err(|_| StoreError::Unavailable("the SQLite writer has stopped".into()))?
    }

    async fn watch(&self, from: Revision) -> Result<WatchStream, StoreError> {
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        let store = self.clone();
        // Subscribe before reading history, so nothing committed in between is missed.
        let mut live = self.inner.live.subscribe();
        let committed = self.inner.committed.clone();
        let mut next = if from <= 0 {
            *committed.borrow() + 1
        } else {
            from
        };
        tokio::spawn(async move {
            if !store.catch_up(&mut next, &tx).await {
                return;
            }
            loop {
                let batch = tokio::select! {
                    b = live.recv() => b,
                    _ = tx.closed() => return,
                };
                match batch {
                    Ok(b) if b.revision < next => continue,
                    Ok(b) if b.revision == next => {
                        next += 1;
                        if tx.send(Ok((*b).clone())).await.is_err() {
                            return;
                        }
                    }
                    // A gap (or a lag): the log has everything; read it, then go on live.
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        if !store.catch_up(&mut next, &tx).await {
                            return;
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        Ok(rx)
    }

    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        self.send(Request::Compact(revision, tx))?;
        rx.await
            .map_err(|_| StoreError::Unavailable("the SQLite writer has stopped".into()))?
    }

    async fn revision(&self) -> Result<Revision, StoreError> {
        Ok(*self.inner.committed.borrow())
    }
}
