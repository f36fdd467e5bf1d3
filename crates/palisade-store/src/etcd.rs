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
    /// One client per member, made on first use (a member down at start is tried later).
    clients: std::sync::Arc<tokio::sync::Mutex<Vec<Option<Client>>>>,
    /// The member requests go to first; moves on when it fails.
    current: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    prefix: String,
    cfg: EtcdConfig,
}

/// A request that never reached a member (refused or unreachable connection): safe to send
/// to the next member.
fn not_delivered(e: &etcd_client::Error) -> bool {
    let s = e.to_string();
    s.contains("tcp connect error")
        || s.contains("Connection refused")
        || s.contains("transport error")
}

fn options(cfg: &EtcdConfig) -> ConnectOptions {
    let mut opts = ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(2))
        .with_timeout(if cfg.timeout.is_zero() {
            Duration::from_secs(5)
        } else {
            cfg.timeout
        })
        .with_keep_alive(Duration::from_secs(2), Duration::from_secs(2))
        .with_keep_alive_while_idle(true)
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
    opts
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
        if cfg.endpoints.is_empty() {
            return Err(StoreError::Unavailable("no etcd endpoints given".into()));
        }
        let prefix = if cfg.prefix.is_empty() {
            "/palisade/".to_string()
        } else {
            cfg.prefix.clone()
        };
        let store = EtcdStore {
            clients: std::sync::Arc::new(tokio::sync::Mutex::new(vec![None; cfg.endpoints.len()])),
            current: Default::default(),
            prefix,
            cfg,
        };
        store.revision().await?;
        Ok(store)
    }

    async fn client(&self, i: usize) -> Result<Client, etcd_client::Error> {
        let mut clients = self.clients.lock().await;
        if let Some(c) = &clients[i] {
            return Ok(c.clone());
        }
        let c = Client::connect([self.cfg.endpoints[i].as_str()], Some(options(&self.cfg))).await?;
        clients[i] = Some(c.clone());
        Ok(c)
    }

    /// Runs `f` on the current member; a request that could not be delivered goes to the
    /// next member, any other failure is "unavailable" (and the next request starts at the
    /// next member).
    async fn call<T, F, Fut>(&self, f: F) -> Result<T, StoreError>
    where
        F: Fn(Client) -> Fut,
        Fut: std::future::Future<Output = Result<T, etcd_client::Error>>,
    {
        use std::sync::atomic::Ordering;
        let n = self.cfg.endpoints.len();
        let start = self.current.load(Ordering::Relaxed);
        let limit = if self.cfg.timeout.is_zero() {
            Duration::from_secs(5)
        } else {
            self.cfg.timeout
        };
        let mut last = String::from("no etcd member reachable");
        for attempt in 0..n {
            let i = (start + attempt) % n;
            let client = match self.client(i).await {
                Ok(c) => c,
                Err(e) => {
                    last = format!("{}: {e}", self.cfg.endpoints[i]);
                    continue;
                }
            };
            match tokio::time::timeout(limit, f(client)).await {
                Ok(Ok(v)) => {
                    self.current.store(i, Ordering::Relaxed);
                    return Ok(v);
                }
                Ok(Err(e)) if not_delivered(&e) => {
                    last = format!("{}: {e}", self.cfg.endpoints[i]);
                    self.clients.lock().await[i] = None;
                }
                Ok(Err(e)) => {
                    self.current.store((i + 1) % n, Ordering::Relaxed);
                    return Err(unavailable(e));
                }
                Err(_) => {
                    self.current.store((i + 1) % n, Ordering::Relaxed);
                    return Err(StoreError::Unavailable(format!(
                        "etcd member {} did not answer within {limit:?}",
                        self.cfg.endpoints[i]
                    )));
                }
            }
        }
        Err(StoreError::Unavailable(format!("etcd: {last}")))
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
        let k = self.key(key);
        let resp = self
            .call(|mut c| {
                let k = k.clone();
                async move { c.get(k, None).await }
            })
            .await?;
        Ok(resp.kvs().first().and_then(|kv| self.kv(kv)))
    }

    async fn range(&self, prefix: &str) -> Result<(Vec<KeyValue>, Revision), StoreError> {
        let (k, end) = (self.key(prefix), self.range_end(prefix));
        let resp = self
            .call(|mut c| {
                let (k, end) = (k.clone(), end.clone());
                async move { c.get(k, Some(GetOptions::new().with_range(end))).await }
            })
            .await?;
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
        let etxn = ETxn::new().when(compares).and_then(ops);
        let resp = self
            .call(|mut c| {
                let t = etxn.clone();
                async move { c.txn(t).await }
            })
            .await?;
        Ok(TxnResponse {
            succeeded: resp.succeeded(),
            revision: resp.header().map(|h| h.revision()).unwrap_or(0),
        })
    }

    async fn watch(&self, from: Revision) -> Result<WatchStream, StoreError> {
        let (tx, rx) = tokio::sync::mpsc::channel(1024);
        let prefix = self.prefix.clone();
        let end = self.range_end("");
        let me = EtcdStore {
            clients: self.clients.clone(),
            current: self.current.clone(),
            prefix: prefix.clone(),
            cfg: self.cfg.clone(),
        };
        let cfg = self.cfg.clone();
        // The first revision wanted: 0 = the next one.
        let mut next = if from > 0 {
            from
        } else {
            self.revision().await? + 1
        };
        tokio::spawn(async move {
            // One member at a time, the next one after a failure: a watch never stays on a
            // dead member.
            let mut failures = 0u32;
            let mut member = 0usize;
            loop {
                let endpoint = cfg.endpoints[member % cfg.endpoints.len().max(1)].clone();
                member += 1;
                let started = async {
                    let mut c = Client::connect([endpoint.as_str()], Some(options(&cfg))).await?;
                    let opts = WatchOptions::new()
                        .with_range(end.clone())
                        .with_start_revision(next)
                        .with_progress_notify();
                    c.watch(prefix.clone().into_bytes(), Some(opts)).await
                };
                let mut stream = match tokio::time::timeout(Duration::from_secs(3), started).await {
                    Ok(Ok(s)) => s,
                    other => {
                        failures += 1;
                        let why = match other {
                            Ok(Err(e)) => e.to_string(),
                            Err(_) => "timed out".to_string(),
                            Ok(Ok(_)) => String::new(),
                        };
                        tracing::warn!(endpoint, error = %why, "etcd watch: cannot start; trying the next member");
                        if tx.is_closed() {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(50 * u64::from(failures.min(20))))
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
                    // A progress notification (not the creation answer) says every revision
                    // up to its header's has been sent.
                    if batches.is_empty() && !resp.created() {
                        let rev = resp.header().map(|h| h.revision()).unwrap_or(0);
                        if rev >= next {
                            batches.push(EventBatch {
                                revision: rev,
                                events: Vec::new(),
                            });
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
        self.call(|mut c| async move {
            c.compact(revision, Some(CompactionOptions::new().with_physical()))
                .await
        })
        .await?;
        Ok(())
    }

    async fn revision(&self) -> Result<Revision, StoreError> {
        // A one-key read (of a key that never exists) returns the store's revision.
        let k = self.key("\u{0}revision");
        let resp = self
            .call(|mut c| {
                let k = k.clone();
                async move { c.get(k, None).await }
            })
            .await?;
        Ok(resp.header().map(|h| h.revision()).unwrap_or(0))
    }
}
