//! The etcd v3 backend: every key lives under a prefix (default `/palisade/`), each
//! [`Txn`](crate::Txn) is one etcd transaction (compares on version, create and mod
//! revisions, value, ranged over a prefix where asked), and watches follow etcd's watch
//! from a revision, grouped by revision, resumed across member failures.

use crate::{
    CmpOp, Compare, Event, EventBatch, EventKind, KeyValue, Op, Revision, Store, StoreError,
    Target, Txn, TxnResponse, WatchStream,
};
use async_trait::async_trait;
use etcd_client::{
    Client, CompactionOptions, Compare as ECompare, CompareOp as EOp, ConnectOptions, EventType,
    GetOptions, TlsOptions, Txn as ETxn, TxnOp, WatchOptions,
};
use std::time::Duration;

/// How to reach etcd.
#[derive(Debug, Clone, Default)]
pub struct EtcdConfig {
    /// `http(s)://host:port` of every member.
    pub endpoints: Vec<String>,
    /// Key prefix of this Palisade (default `/palisade/`).
    pub prefix: String,
    /// PEM CA certificate for TLS to etcd.
    pub ca_cert: Option<Vec<u8>>,
    /// PEM client certificate and key for TLS client authentication.
    pub client_cert: Option<(Vec<u8>, Vec<u8>)>,
    /// How long one request may take before the store counts as unavailable.
    pub timeout: Duration,
}

/// The etcd backend.
pub struct EtcdStore {
    client: Client,
    prefix: String,
}

fn unavailable(e: etcd_client::Error) -> StoreError {
    match &e {
        etcd_client::Error::GRpcStatus(st) if format!("{:?}", st.code()) == "InvalidArgument" => StoreError::Backend(format!(
            "etcd refused the request: {} (Palisade needs etcd started with --max-txn-ops=10000 and --max-request-bytes=16777216 or more)",
            st.message()
        )),
        _ => StoreError::Unavailable(format!("etcd: {e}")),
    }
}

impl EtcdStore {
    /// Connects (fails fast when no member answers).
    pub async fn connect(cfg: EtcdConfig) -> Result<EtcdStore, StoreError> {
        let mut opts = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(3))
            .with_timeout(if cfg.timeout.is_zero() {
                Duration::from_secs(5)
            } else {
                cfg.timeout
            })
            .with_keep_alive(Duration::from_secs(5), Duration::from_secs(3))
            .with_require_leader(true);
        if cfg.ca_cert.is_some() || cfg.client_cert.is_some() {
            let mut tls = TlsOptions::new();
            if let Some(ca) = &cfg.ca_cert {
                tls = tls.ca_certificate(etcd_client::Certificate::from_pem(ca));
            }
            if let Some((cert, key)) = &cfg.client_cert {
                tls = tls.identity(etcd_client::Identity::from_pem(cert, key));
            }
            opts = opts.with_tls(tls);
        }
        let client = Client::connect(&cfg.endpoints, Some(opts))
            .await
            .map_err(unavailable)?;
        let prefix = if cfg.prefix.is_empty() {
            "/palisade/".to_string()
        } else {
            cfg.prefix.clone()
        };
        let store = EtcdStore { client, prefix };
        store.revision().await?;
        Ok(store)
    }

    fn key(&self, k: &str) -> Vec<u8> {
        format!("{}{k}", self.prefix).into_bytes()
    }

    fn range_end(&self, prefix: &str) -> Vec<u8> {
        let full = format!("{}{prefix}", self.prefix).into_bytes();
        let mut end = full;
        while let Some(last) = end.pop() {
            if last < 0xff {
                end.push(last + 1);
                return end;
            }
        }
        vec![0]
    }

    fn kv(&self, kv: &etcd_client::KeyValue) -> Option<KeyValue> {
        let key = std::str::from_utf8(kv.key())
            .ok()?
            .strip_prefix(&self.prefix)?
            .to_string();
        Some(KeyValue {
            key,
            value: kv.value().to_vec(),
            create_revision: kv.create_revision(),
            mod_revision: kv.mod_revision(),
            version: kv.version(),
        })
    }

    fn compare(&self, c: &Compare) -> ECompare {
        let op = match c.op {
            CmpOp::Equal => EOp::Equal,
            CmpOp::NotEqual => EOp::NotEqual,
            CmpOp::Greater => EOp::Greater,
            CmpOp::Less => EOp::Less,
        };
        let key = self.key(&c.key);
        let e = match &c.target {
            Target::Version(v) => ECompare::version(key, op, *v),
            Target::CreateRevision(v) => ECompare::create_revision(key, op, *v),
            Target::ModRevision(v) => ECompare::mod_revision(key, op, *v),
            Target::Value(v) => ECompare::value(key, op, v.clone()),
        };
        if c.prefix {
            e.with_range(self.range_end(&c.key))
        } else {
            e
        }
    }
}

#[async_trait]
impl Store for EtcdStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let resp = self
            .client
            .clone()
            .get(self.key(key), None)
            .await
            .map_err(unavailable)?;
        Ok(resp.kvs().first().and_then(|kv| self.kv(kv)))
    }

    async fn range(&self, prefix: &str) -> Result<(Vec<KeyValue>, Revision), StoreError> {
        let resp = self
            .client
            .clone()
            .get(
                self.key(prefix),
                Some(GetOptions::new().with_range(self.range_end(prefix))),
            )
            .await
            .map_err(unavailable)?;
        let rev = resp.header().map(|h| h.revision()).unwrap_or(0);
        Ok((
            resp.kvs().iter().filter_map(|kv| self.kv(kv)).collect(),
            rev,
        ))
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResponse, StoreError> {
        let compares: Vec<ECompare> = txn.compares.iter().map(|c| self.compare(c)).collect();
        let ops: Vec<TxnOp> = txn
            .ops
            .iter()
            .map(|op| match op {
                Op::Put { key, value } => TxnOp::put(self.key(key), value.clone(), None),
                Op::Delete { key } => TxnOp::delete(self.key(key), None),
            })
            .collect();
        let resp = self
            .client
            .clone()
            .txn(ETxn::new().when(compares).and_then(ops))
            .await
            .map_err(unavailable)?;
        Ok(TxnResponse {
            succeeded: resp.succeeded(),
            revision: resp.header().map(|h| h.revision()).unwrap_or(0),
        })
    }

    async fn watch(&self, from: Revision) -> Result<WatchStream, StoreError> {
        let (tx, rx) = tokio::sync::mpsc::channel(1024);
        let client = self.client.clone();
        let prefix = self.prefix.clone();
        let end = self.range_end("");
        let me = EtcdStore {
            client: client.clone(),
            prefix: prefix.clone(),
        };
        // The first revision wanted: 0 = the next one.
        let mut next = if from > 0 {
            from
        } else {
            self.revision().await? + 1
        };
        tokio::spawn(async move {
            let mut failures = 0u32;
            loop {
                let opts = WatchOptions::new()
                    .with_range(end.clone())
                    .with_start_revision(next)
                    .with_progress_notify();
                let mut stream = match client
                    .clone()
                    .watch(prefix.clone().into_bytes(), Some(opts))
                    .await
                {
                    Ok(s) => s,
                    Err(e) => {
                        failures += 1;
                        tracing::warn!(error = %e, "etcd watch: cannot start; retrying");
                        if tx.is_closed() {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(
                            100 * u64::from(failures.min(20)),
                        ))
                        .await;
                        continue;
                    }
                };
                loop {
                    let msg = tokio::select! {
                        m = stream.message() => m,
                        _ = tx.closed() => return,
                    };
                    let resp = match msg {
                        Ok(Some(r)) => r,
                        Ok(None) => break,
                        Err(e) => {
                            tracing::warn!(error = %e, "etcd watch broke; resuming from revision {next}");
                            break;
                        }
                    };
                    failures = 0;
                    if resp.compact_revision() > 0 && resp.compact_revision() > next {
                        let _ = tx
                            .send(Err(StoreError::Compacted {
                                requested: next,
                                compacted: resp.compact_revision(),
                            }))
                            .await;
                        return;
                    }
                    if resp.canceled() {
                        break;
                    }
                    let mut batches: Vec<EventBatch> = Vec::new();
                    for ev in resp.events() {
                        let Some(kv) = ev.kv().and_then(|kv| me.kv(kv)) else {
                            continue;
                        };
                        let kind = match ev.event_type() {
                            EventType::Put => EventKind::Put,
                            EventType::Delete => EventKind::Delete,
                        };
                        let rev = kv.mod_revision;
                        match batches.last_mut() {
                            Some(b) if b.revision == rev => b.events.push(Event { kind, kv }),
                            _ => batches.push(EventBatch {
                                revision: rev,
                                events: vec![Event { kind, kv }],
                            }),
                        }
                    }
                    for b in batches {
                        if b.revision < next {
                            continue; // already delivered before a resume
                        }
                        next = b.revision + 1;
                        if tx.send(Ok(b)).await.is_err() {
                            return;
                        }
                    }
                }
                if tx.is_closed() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Ok(rx)
    }

    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        self.client
            .clone()
            .compact(revision, Some(CompactionOptions::new().with_physical()))
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn revision(&self) -> Result<Revision, StoreError> {
        // A one-key read (of a key that never exists) returns the store's revision.
        let resp = self
            .client
            .clone()
            .get(self.key("\u{0}revision"), None)
            .await
            .map_err(unavailable)?;
        Ok(resp.header().map(|h| h.revision()).unwrap_or(0))
    }
}
