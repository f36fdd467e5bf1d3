//! A revisioned key-value store with multi-key transactions, watch and compaction: the
//! `Store` trait (etcd v3's model), its embedded SQLite backend and its etcd backend.
//!
//! Every invariant of Palisade is enforced by the server inside one [`Txn`] whose compares
//! guard what it read, so that it holds with several server replicas on one store. This
//! crate knows nothing about security groups.

pub mod conformance;
mod etcd;
mod sqlite;
pub mod testing;

pub use etcd::{EtcdConfig, EtcdStore};
pub use sqlite::SqliteStore;

use async_trait::async_trait;

/// A store-wide revision: +1 per committed transaction that changed something.
pub type Revision = i64;

/// One key with its value and revisions (etcd's `mvccpb.KeyValue`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The key.
    pub key: String,
    /// The value (empty for a delete event).
    pub value: Vec<u8>,
    /// Revision of the transaction that created the key (0 for a delete event).
    pub create_revision: Revision,
    /// Revision of the last transaction that modified (or, in events, deleted) the key.
    pub mod_revision: Revision,
    /// Number of modifications since creation (0 for a delete event).
    pub version: i64,
}

/// What a [`Compare`] looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `version` (0 when the key is absent).
    Version(i64),
    /// `create_revision` (0 when absent).
    CreateRevision(Revision),
    /// `mod_revision` (0 when absent).
    ModRevision(Revision),
    /// The value bytes (a compare on an absent key's value is false).
    Value(Vec<u8>),
}

/// Comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// ==
    Equal,
    /// !=
    NotEqual,
    /// >
    Greater,
    /// <
    Less,
}

/// A guard of a transaction. With `prefix`, every key under `key` must satisfy it (an empty
/// range compares as one absent key), exactly as etcd's ranged compares do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compare {
    /// The key, or the prefix when `prefix` is set.
    pub key: String,
    /// Compare every key starting with `key`.
    pub prefix: bool,
    /// What to look at and the operand.
    pub target: Target,
    /// The operator.
    pub op: CmpOp,
}

impl Compare {
    /// The key does not exist.
    pub fn absent(key: impl Into<String>) -> Self {
        Compare {
            key: key.into(),
            prefix: false,
            target: Target::Version(0),
            op: CmpOp::Equal,
        }
    }
    /// The key was last modified at `rev` (0 = absent): it is unchanged since it was read.
    pub fn unchanged(key: impl Into<String>, rev: Revision) -> Self {
        Compare {
            key: key.into(),
            prefix: false,
            target: Target::ModRevision(rev),
            op: CmpOp::Equal,
        }
    }
    /// The key exists and is the incarnation created at `rev`.
    pub fn created_at(key: impl Into<String>, rev: Revision) -> Self {
        Compare {
            key: key.into(),
            prefix: false,
            target: Target::CreateRevision(rev),
            op: CmpOp::Equal,
        }
    }
    /// No key starts with `prefix`.
    pub fn prefix_empty(prefix: impl Into<String>) -> Self {
        Compare {
            key: prefix.into(),
            prefix: true,
            target: Target::Version(0),
            op: CmpOp::Equal,
        }
    }
    /// No key under `prefix` was created or modified after `rev`.
    pub fn prefix_unchanged_since(prefix: impl Into<String>, rev: Revision) -> Self {
        Compare {
            key: prefix.into(),
            prefix: true,
            target: Target::ModRevision(rev + 1),
            op: CmpOp::Less,
        }
    }

    /// Evaluates this compare against one key's state (`None` = absent).
    pub fn matches(&self, kv: Option<&KeyValue>) -> bool {
        use std::cmp::Ordering;
        let ord = match (&self.target, kv) {
            (Target::Value(_), None) => return false,
            (Target::Value(v), Some(kv)) => kv.value.as_slice().cmp(v.as_slice()),
            (Target::Version(v), kv) => kv.map_or(0, |k| k.version).cmp(v),
            (Target::CreateRevision(v), kv) => kv.map_or(0, |k| k.create_revision).cmp(v),
            (Target::ModRevision(v), kv) => kv.map_or(0, |k| k.mod_revision).cmp(v),
        };
        match self.op {
            CmpOp::Equal => ord == Ordering::Equal,
            CmpOp::NotEqual => ord != Ordering::Equal,
            CmpOp::Greater => ord == Ordering::Greater,
            CmpOp::Less => ord == Ordering::Less,
        }
    }
}

/// A write inside a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Create or replace a key.
    Put {
        /// key
        key: String,
        /// value
        value: Vec<u8>,
    },
    /// Delete a key (no-op when absent).
    Delete {
        /// key
        key: String,
    },
}

impl Op {
    /// A put.
    pub fn put(key: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        Op::Put {
            key: key.into(),
            value: value.into(),
        }
    }
    /// A delete.
    pub fn delete(key: impl Into<String>) -> Self {
        Op::Delete { key: key.into() }
    }
}

/// If every compare holds, apply every op, atomically.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Txn {
    /// Guards.
    pub compares: Vec<Compare>,
    /// Writes applied when all guards hold.
    pub ops: Vec<Op>,
}

/// Outcome of a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnResponse {
    /// Whether every compare held and the ops were applied.
    pub succeeded: bool,
    /// The store's revision after the transaction (its own revision when it wrote).
    pub revision: Revision,
}

/// Kind of a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Key created or replaced.
    Put,
    /// Key deleted.
    Delete,
}

/// One change of one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Put or delete.
    pub kind: EventKind,
    /// The key's new state; for a delete, the key with `mod_revision` = the deleting revision.
    pub kv: KeyValue,
}

/// The changes of one revision (one transaction), in the order its ops ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventBatch {
    /// The revision.
    pub revision: Revision,
    /// The changes.
    pub events: Vec<Event>,
}

/// Failures of a store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// A watch asked for history that compaction removed; re-read a snapshot.
    #[error("revision {requested} has been compacted (compacted up to {compacted})")]
    Compacted {
        /// the asked-for revision
        requested: Revision,
        /// the store's compaction point
        compacted: Revision,
    },
    /// A revision beyond the store's current one.
    #[error("revision {requested} is in the future (current revision {current})")]
    FutureRevision {
        /// the asked-for revision
        requested: Revision,
        /// the store's revision
        current: Revision,
    },
    /// The store cannot be reached or cannot take writes.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The backend failed (disk, corruption).
    #[error("store backend failure: {0}")]
    Backend(String),
}

/// A stream of committed changes, batch by batch in revision order, without gaps.
pub type WatchStream = tokio::sync::mpsc::Receiver<Result<EventBatch, StoreError>>;

/// A revisioned key-value store (etcd v3's data model).
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// One key.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError>;
    /// Every key starting with `prefix` (in key order) and the revision of that snapshot.
    async fn range(&self, prefix: &str) -> Result<(Vec<KeyValue>, Revision), StoreError>;
    /// Runs a transaction atomically and durably.
    async fn txn(&self, txn: Txn) -> Result<TxnResponse, StoreError>;
    /// Every change from revision `from` on (inclusive), then live changes. `from` ≤ the
    /// compaction point fails with [`StoreError::Compacted`] (in the stream).
    async fn watch(&self, from: Revision) -> Result<WatchStream, StoreError>;
    /// Drops history before `revision`; watches from earlier revisions then fail.
    async fn compact(&self, revision: Revision) -> Result<(), StoreError>;
    /// The current revision.
    async fn revision(&self) -> Result<Revision, StoreError>;
}

/// The first key after every key that starts with `prefix` (etcd's `range_end`).
pub fn prefix_end(prefix: &str) -> Option<String> {
    let mut bytes = prefix.as_bytes().to_vec();
    while let Some(last) = bytes.pop() {
        if last < 0x7f {
            bytes.push(last + 1);
            return String::from_utf8(bytes).ok();
        }
    }
    None
}
