//! The service layer: every API operation as a function of (caller, request) that reads the
//! index, decides, and commits one store transaction whose compares guard everything it
//! read. A lost race is retried against the newer index, so each invariant holds however
//! many server replicas share the store. Handlers never enforce invariants themselves.

mod address_groups;
pub mod identity;
mod networks;
mod ports;
mod quotas;
mod rules;
mod security_groups;
mod tags;
mod tokens;

pub use quotas::{QuotaLimits, RESOURCES};
pub use tags::Tagged;

use crate::index::{Cache, Index};
use crate::keys;
use palisade_model::Error;
use palisade_store::{Compare, Op, Revision, Store, StoreError, Txn};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    /// The project the caller's token is scoped to.
    pub project_id: String,
    /// Role names.
    pub roles: Vec<String>,
    /// The user (for logs).
    pub user: String,
    /// The user's id (empty for tokens not issued to a user).
    pub user_id: String,
}

impl Context {
    /// Cloud admin: sees and changes every project.
    pub fn is_admin(&self) -> bool {
        self.roles.iter().any(|r| r == "admin")
    }
    /// Reads every project: admin, or an agent's `Metal-View` key (`system_reader`).
    pub fn reads_all(&self) -> bool {
        self.is_admin() || self.roles.iter().any(|r| r == "system_reader")
    }
    /// May write in its own project (`member` or `admin`).
    pub fn can_write(&self) -> bool {
        self.is_admin() || self.roles.iter().any(|r| r == "member")
    }
    /// Owns `project`, or is admin.
    pub fn sees(&self, project: &str) -> bool {
        self.reads_all() || self.project_id == project
    }
    /// 403 unless the caller may write; `action` names the policy rule.
    pub fn require_write(&self, action: &str) -> Result<(), Error> {
        if self.can_write() {
            Ok(())
        } else {
            Err(Error::PolicyNotAuthorized(action.to_string()))
        }
    }
    /// The owner for a new object: the body's project (admins only may name another).
    pub fn owner(&self, requested: Option<String>) -> Result<String, Error> {
        match requested {
            Some(p) if p != self.project_id && !self.is_admin() => Err(Error::BadRequest(format!(
                "Specifying 'project_id' other than the authenticated project in request is not allowed for the current user (project_id: '{p}')."
            ))),
            Some(p) => Ok(p),
            None => Ok(self.project_id.clone()),
        }
    }
}

/// Server settings the service needs.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Limits for projects without their own quota.
    pub default_quota: QuotaLimits,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            default_quota: QuotaLimits::neutron_defaults(),
        }
    }
}

/// The service: a store, the index that follows it, and settings.
pub struct Service {
    store: Arc<dyn Store>,
    cache: Arc<Cache>,
    config: ServiceConfig,
    metrics: Arc<crate::metrics::Metrics>,
}

/// Attempts before a write gives up under contention.
const MAX_ATTEMPTS: usize = 200;

/// The writes of one operation, with the compares that guard what it read.
#[derive(Default)]
pub(crate) struct Plan {
    compares: Vec<Compare>,
    ops: Vec<Op>,
    /// Index of each key's op in `ops`.
    positions: std::collections::HashMap<String, usize>,
    /// (project, resource) → change in usage.
    charges: BTreeMap<(String, &'static str), i64>,
}

impl Plan {
    pub(crate) fn guard(&mut self, c: Compare) {
        self.compares.push(c);
    }
    pub(crate) fn put(&mut self, key: String, value: impl serde::Serialize) -> Result<(), Error> {
        let bytes = serde_json::to_vec(&value).map_err(|e| Error::Internal(e.to_string()))?;
        self.push(Op::put(key, bytes));
        Ok(())
    }
    pub(crate) fn put_raw(&mut self, key: String, value: impl Into<Vec<u8>>) {
        self.push(Op::put(key, value));
    }
    pub(crate) fn delete(&mut self, key: String) {
        self.push(Op::delete(key));
    }
    /// Adds an op; a later op on the same key replaces the earlier one (etcd refuses a
    /// transaction that names a key twice).
    fn push(&mut self, op: Op) {
        let key = match &op {
            Op::Put { key, .. } | Op::Delete { key } => key.clone(),
        };
        match self.positions.get(&key) {
            Some(&i) => self.ops[i] = op,
            None => {
                self.positions.insert(key, self.ops.len());
                self.ops.push(op);
            }
        }
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Records a usage change; with `enforce`, fails now with OverQuota if it would exceed
    /// the project's limit (Neutron checks quota before policy).
    pub(crate) fn charge(
        &mut self,
        idx: &Index,
        cfg: &ServiceConfig,
        project: &str,
        resource: &'static str,
        delta: i64,
        enforce: bool,
    ) -> Result<(), Error> {
        let total = {
            let e = self
                .charges
                .entry((project.to_string(), resource))
                .or_insert(0);
            *e += delta;
            *e
        };
        if enforce && delta > 0 {
            let limit = quotas::limit(idx, cfg, project, resource);
            if limit >= 0 && quotas::used(idx, project, resource) + total > limit {
                return Err(Error::OverQuota(vec![resource.to_string()]));
            }
        }
        Ok(())
    }

    /// Turns the recorded charges into guarded counter writes and returns the transaction.
    fn into_txn(mut self, idx: &Index, cfg: &ServiceConfig) -> Txn {
        let charges = std::mem::take(&mut self.charges);
        let mut guarded_quota: Vec<String> = Vec::new();
        for ((project, resource), delta) in charges {
            if delta == 0 {
                continue;
            }
            let qkey = keys::quota(&project);
            if !guarded_quota.contains(&qkey) {
                self.compares
                    .push(Compare::unchanged(qkey.clone(), idx.revs(&qkey).1));
                guarded_quota.push(qkey);
            }
            if quotas::limit(idx, cfg, &project, resource) < 0 {
                // Unlimited: no counter (so creates do not contend); mark the change so a
                // later switch to a finite limit knows its count is stale.
                self.ops
                    .push(Op::put(keys::epoch(&project, resource), Vec::new()));
            } else {
                let ukey = keys::usage(&project, resource);
                let used = quotas::used(idx, &project, resource);
                self.compares
                    .push(Compare::unchanged(ukey.clone(), idx.revs(&ukey).1));
                self.ops
                    .push(Op::put(ukey, (used + delta).max(0).to_string()));
            }
        }
        Txn {
            compares: self.compares,
            ops: self.ops,
        }
    }
}

pub(crate) fn store_error(e: StoreError) -> Error {
    match e {
        StoreError::Unavailable(m) => Error::ServiceUnavailable(m),
        other => Error::Internal(other.to_string()),
    }
}

/// Now, in Neutron's timestamp format.
pub(crate) fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// A fresh resource id.
pub(crate) fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Parses `If-Match: revision_number=N`.
pub fn parse_if_match(header: &str) -> Result<u64, Error> {
    header
        .trim()
        .trim_matches('"')
        .strip_prefix("revision_number=")
        .and_then(|n| n.trim().parse::<u64>().ok())
        .ok_or_else(|| {
            Error::BadRequest(format!(
                "Invalid If-Match header '{header}': expected 'revision_number=<integer>'."
            ))
        })
}

pub(crate) fn check_if_match(expected: Option<u64>, current: u64) -> Result<(), Error> {
    match expected {
        Some(e) if e != current => Err(Error::PreconditionFailed {
            expected: e,
            current,
        }),
        _ => Ok(()),
    }
}

impl Service {
    /// A service over `store`, with its index loaded.
    pub async fn new(store: Arc<dyn Store>, config: ServiceConfig) -> Result<Self, StoreError> {
        let cache = Cache::start(store.clone()).await?;
        Ok(Service {
            store,
            cache,
            config,
            metrics: Default::default(),
        })
    }

    /// The index (for reads).
    pub fn cache(&self) -> &Arc<Cache> {
        &self.cache
    }

    /// The metrics.
    pub fn metrics(&self) -> &Arc<crate::metrics::Metrics> {
        &self.metrics
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Writes one key (a document with no invariants beyond its own shape).
    pub(crate) async fn put_raw(
        &self,
        key: String,
        value: &serde_json::Value,
    ) -> Result<Revision, Error> {
        let bytes = serde_json::to_vec(value).map_err(|e| Error::Internal(e.to_string()))?;
        let (_, rev) = self
            .write(|_, _| {
                let mut plan = Plan::default();
                plan.put_raw(key.clone(), bytes.clone());
                Ok((plan, ()))
            })
            .await?;
        Ok(rev)
    }

    /// Deletes one key.
    pub(crate) async fn delete_raw(&self, key: String) -> Result<Revision, Error> {
        let (_, rev) = self
            .write(|_, _| {
                let mut plan = Plan::default();
                plan.delete(key.clone());
                Ok((plan, ()))
            })
            .await?;
        Ok(rev)
    }

    /// Plans with `f` against the current index and commits; on a lost race, plans again.
    pub(crate) async fn write<T>(
        &self,
        mut f: impl FnMut(&Index, &ServiceConfig) -> Result<(Plan, T), Error>,
    ) -> Result<(T, Revision), Error> {
        for attempt in 0..MAX_ATTEMPTS {
            let txn = {
                let idx = self.cache.read();
                let (plan, out) = f(&idx, &self.config)?;
                if plan.is_empty() {
                    return Ok((out, idx.revision));
                }
                (plan.into_txn(&idx, &self.config), out)
            };
            let (txn, out) = txn;
            let started = std::time::Instant::now();
            let resp = self.store.txn(txn).await.map_err(store_error)?;
            self.metrics
                .txn_seconds
                .observe(started.elapsed().as_secs_f64());
            if resp.succeeded {
                self.cache.wait_for(resp.revision).await?;
                return Ok((out, resp.revision));
            }
            self.metrics.txn_conflicts.inc();
            // Lost a race: plan again once the index has seen the winner. On a shared etcd
            // the answer's revision may belong to another prefix and never reach the index,
            // so the wait is bounded; a stale plan just fails its compares again.
            let _ = tokio::time::timeout(
                Duration::from_millis(500),
                self.cache.wait_for(resp.revision),
            )
            .await;
            if attempt > 8 {
                tokio::time::sleep(Duration::from_millis((attempt as u64).min(20))).await;
            }
        }
        Err(Error::ServiceUnavailable(
            "too much contention on the objects this request changes; try again".into(),
        ))
    }
}
