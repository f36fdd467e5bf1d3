//! The in-memory index of the whole store, fed by its watch (the Kubernetes watch-cache
//! model): every read is served from here, every write goes through a store transaction and
//! then waits until the index has caught up with its revision (read-your-writes).
//!
//! Each resource keeps its wire form pre-rendered (a JSON map for filtering and its bytes
//! for responses), so a list costs a lookup and a copy, not a serialisation per object.

use palisade_model::{AddressGroup, Network, Port, SecurityGroup, SecurityGroupRule};
use palisade_store::{EventBatch, EventKind, KeyValue, Revision, Store, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::Duration;
use tokio::sync::watch;

/// One cached resource with its revisions and pre-rendered wire form.
#[derive(Debug, Clone)]
pub struct Entry<T> {
    /// The stored value.
    pub value: Arc<T>,
    /// Its wire form.
    pub json: Arc<Map<String, Value>>,
    /// Its wire form, serialised.
    pub bytes: Arc<Vec<u8>>,
    /// Store revision that created the key.
    pub create_rev: Revision,
    /// Store revision that last changed the key.
    pub mod_rev: Revision,
}

/// An object's wire form: the map (for filters; a group's map lacks its embedded rules)
/// and the complete serialised object.
#[derive(Debug, Clone)]
pub struct View {
    /// Wire form for filtering and sorting.
    pub json: Arc<Map<String, Value>>,
    /// Complete wire form, serialised.
    pub bytes: Arc<Vec<u8>>,
}

/// The wire forms of `ids` (those that exist), in the order given.
pub fn views<T>(map: &BTreeMap<String, Entry<T>>, ids: &[String]) -> Vec<View> {
    ids.iter()
        .filter_map(|id| map.get(id).map(Entry::view))
        .collect()
}

impl<T> Entry<T> {
    /// The wire form.
    pub fn view(&self) -> View {
        View {
            json: self.json.clone(),
            bytes: self.bytes.clone(),
        }
    }

    fn new(value: T, json: Map<String, Value>, kv: &KeyValue) -> Self {
        let bytes = serde_json::to_vec(&json).unwrap_or_default();
        Entry {
            value: Arc::new(value),
            json: Arc::new(json),
            bytes: Arc::new(bytes),
            create_rev: kv.create_revision,
            mod_rev: kv.mod_revision,
        }
    }
}

/// What an API token grants.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    /// The project the token is scoped to ("" for an unscoped token).
    pub project_id: String,
    /// Role names (`admin`, `member`, `reader`).
    pub roles: Vec<String>,
    /// Who it was issued to (user name).
    pub user: String,
    /// The user's id (empty for tokens issued by `POST /v2.0/palisade/tokens`).
    #[serde(default)]
    pub user_id: String,
    /// Unix seconds after which the token is refused; `None` never expires.
    #[serde(default)]
    pub expires_at: Option<i64>,
    /// Unix seconds when it was issued.
    #[serde(default)]
    pub issued_at: i64,
    /// Keystone's audit id (names the token in logs without revealing it).
    #[serde(default)]
    pub audit_id: String,
}

/// A raw key's state.
#[derive(Debug, Clone)]
pub struct Raw {
    /// Value bytes.
    pub value: Vec<u8>,
    /// create revision
    pub create_rev: Revision,
    /// mod revision
    pub mod_rev: Revision,
}

/// The store's content at one revision, with the secondary indexes reads need.
#[derive(Debug, Default)]
pub struct Index {
    /// The revision this index reflects.
    pub revision: Revision,
    /// Every key.
    pub raw: HashMap<String, Raw>,
    /// Security groups by id.
    pub sgs: BTreeMap<String, Entry<SecurityGroup>>,
    /// Rules by id.
    pub rules: BTreeMap<String, Entry<SecurityGroupRule>>,
    /// Ports by id.
    pub ports: BTreeMap<String, Entry<Port>>,
    /// Networks by id.
    pub networks: BTreeMap<String, Entry<Network>>,
    /// Address groups by id.
    pub address_groups: BTreeMap<String, Entry<AddressGroup>>,
    /// Rule ids per group.
    pub rules_by_sg: HashMap<String, BTreeSet<String>>,
    /// Port ids per group.
    pub ports_by_sg: HashMap<String, BTreeSet<String>>,
    /// Rule ids per remote group.
    pub rules_by_remote: HashMap<String, BTreeSet<String>>,
    /// Rule ids per address group.
    pub rules_by_ag: HashMap<String, BTreeSet<String>>,
    /// Port ids per network.
    pub ports_by_net: HashMap<String, BTreeSet<String>>,
    /// Tokens by hash.
    pub tokens: HashMap<String, TokenInfo>,
}

fn link(map: &mut HashMap<String, BTreeSet<String>>, k: &str, v: &str) {
    map.entry(k.to_string()).or_default().insert(v.to_string());
}
fn unlink(map: &mut HashMap<String, BTreeSet<String>>, k: &str, v: &str) {
    if let Some(set) = map.get_mut(k) {
        set.remove(v);
        if set.is_empty() {
            map.remove(k);
        }
    }
}

impl Index {
    /// A raw key's (create, mod) revisions; (0, 0) when absent.
    pub fn revs(&self, key: &str) -> (Revision, Revision) {
        self.raw
            .get(key)
            .map_or((0, 0), |r| (r.create_rev, r.mod_rev))
    }

    /// A raw key's value as a string.
    pub fn text(&self, key: &str) -> Option<String> {
        self.raw
            .get(key)
            .map(|r| String::from_utf8_lossy(&r.value).into_owned())
    }

    /// The rules of a group, in id order.
    pub fn rules_of<'a>(
        &'a self,
        sg: &str,
    ) -> impl Iterator<Item = &'a Entry<SecurityGroupRule>> + 'a {
        self.rules_by_sg
            .get(sg)
            .into_iter()
            .flatten()
            .filter_map(|id| self.rules.get(id))
    }

    fn apply(&mut self, batch: &EventBatch) {
        let mut dirty: HashSet<String> = HashSet::new();
        for ev in &batch.events {
            let key = ev.kv.key.as_str();
            self.remove_typed(key, &mut dirty);
            match ev.kind {
                EventKind::Put => {
                    self.raw.insert(
                        key.to_string(),
                        Raw {
                            value: ev.kv.value.clone(),
                            create_rev: ev.kv.create_revision,
                            mod_rev: ev.kv.mod_revision,
                        },
                    );
                    self.insert_typed(&ev.kv, &mut dirty);
                }
                EventKind::Delete => {
                    self.raw.remove(key);
                }
            }
        }
        self.revision = batch.revision;
        self.render_groups(dirty);
    }

    /// Re-renders groups whose rules changed. The embedded rules are spliced in from their
    /// own pre-rendered bytes, so a change costs a copy, not a serialisation per rule; the
    /// filter map of a group leaves the rules out (no filter looks at them).
    fn render_groups(&mut self, dirty: HashSet<String>) {
        for id in dirty {
            let Some(e) = self.sgs.get(&id) else { continue };
            let mut json = e.value.to_json(std::iter::empty());
            json.remove("security_group_rules");
            let mut bytes = serde_json::to_vec(&json).unwrap_or_default();
            bytes.pop(); // the closing brace
            bytes.extend_from_slice(b",\"security_group_rules\":[");
            for (n, r) in self.rules_of(&id).enumerate() {
                if n > 0 {
                    bytes.push(b',');
                }
                bytes.extend_from_slice(&r.bytes);
            }
            bytes.extend_from_slice(b"]}");
            if let Some(e) = self.sgs.get_mut(&id) {
                e.json = Arc::new(json);
                e.bytes = Arc::new(bytes);
            }
        }
    }

    fn remove_typed(&mut self, key: &str, dirty: &mut HashSet<String>) {
        if let Some(id) = key.strip_prefix("sg/") {
            self.sgs.remove(id);
        } else if let Some(id) = key.strip_prefix("rule/") {
            if let Some(r) = self.rules.remove(id) {
                let r = &r.value;
                unlink(&mut self.rules_by_sg, &r.security_group_id, id);
                if let Some(rg) = &r.remote_group_id {
                    unlink(&mut self.rules_by_remote, rg, id);
                }
                if let Some(ag) = &r.remote_address_group_id {
                    unlink(&mut self.rules_by_ag, ag, id);
                }
                dirty.insert(r.security_group_id.clone());
            }
        } else if let Some(id) = key.strip_prefix("port/") {
            if let Some(p) = self.ports.remove(id) {
                for sg in &p.value.security_groups {
                    unlink(&mut self.ports_by_sg, sg, id);
                }
                unlink(&mut self.ports_by_net, &p.value.network_id, id);
            }
        } else if let Some(id) = key.strip_prefix("network/") {
            self.networks.remove(id);
        } else if let Some(id) = key.strip_prefix("addrgroup/") {
            self.address_groups.remove(id);
        } else if let Some(h) = key.strip_prefix("token/") {
            self.tokens.remove(h);
        }
    }

    fn insert_typed(&mut self, kv: &KeyValue, dirty: &mut HashSet<String>) {
        let key = kv.key.as_str();
        let res: Result<(), serde_json::Error> = (|| {
            if let Some(id) = key.strip_prefix("sg/") {
                let sg: SecurityGroup = serde_json::from_slice(&kv.value)?;
                let json = Map::new();
                self.sgs.insert(id.to_string(), Entry::new(sg, json, kv));
                dirty.insert(id.to_string());
            } else if let Some(id) = key.strip_prefix("rule/") {
                let r: SecurityGroupRule = serde_json::from_slice(&kv.value)?;
                link(&mut self.rules_by_sg, &r.security_group_id, id);
                if let Some(rg) = &r.remote_group_id {
                    link(&mut self.rules_by_remote, rg, id);
                }
                if let Some(ag) = &r.remote_address_group_id {
                    link(&mut self.rules_by_ag, ag, id);
                }
                dirty.insert(r.security_group_id.clone());
                let json = r.to_json();
                self.rules.insert(id.to_string(), Entry::new(r, json, kv));
            } else if let Some(id) = key.strip_prefix("port/") {
                let p: Port = serde_json::from_slice(&kv.value)?;
                for sg in &p.security_groups {
                    link(&mut self.ports_by_sg, sg, id);
                }
                link(&mut self.ports_by_net, &p.network_id, id);
                let json = p.to_json();
                self.ports.insert(id.to_string(), Entry::new(p, json, kv));
            } else if let Some(id) = key.strip_prefix("network/") {
                let n: Network = serde_json::from_slice(&kv.value)?;
                let json = n.to_json();
                self.networks
                    .insert(id.to_string(), Entry::new(n, json, kv));
            } else if let Some(id) = key.strip_prefix("addrgroup/") {
                let a: AddressGroup = serde_json::from_slice(&kv.value)?;
                let json = a.to_json();
                self.address_groups
                    .insert(id.to_string(), Entry::new(a, json, kv));
            } else if let Some(h) = key.strip_prefix("token/") {
                let t: TokenInfo = serde_json::from_slice(&kv.value)?;
                self.tokens.insert(h.to_string(), t);
            }
            Ok(())
        })();
        if let Err(e) = res {
            tracing::error!(key, error = %e, "undecodable value in the store; ignored by the index");
        }
    }

    fn from_snapshot(kvs: Vec<KeyValue>, revision: Revision) -> Self {
        let mut idx = Index::default();
        let events = kvs
            .into_iter()
            .map(|kv| palisade_store::Event {
                kind: EventKind::Put,
                kv,
            })
            .collect();
        idx.apply(&EventBatch { revision, events });
        idx
    }
}

/// The live index and the revision it has applied.
pub struct Cache {
    index: RwLock<Index>,
    applied: watch::Sender<Revision>,
}

impl Cache {
    /// Loads a snapshot of the store and follows its watch from there.
    pub async fn start(store: Arc<dyn Store>) -> Result<Arc<Cache>, StoreError> {
        let (kvs, rev) = store.range("").await?;
        let (applied, _) = watch::channel(rev);
        let cache = Arc::new(Cache {
            index: RwLock::new(Index::from_snapshot(kvs, rev)),
            applied,
        });
        let weak = Arc::downgrade(&cache);
        tokio::spawn(async move {
            let mut next = rev + 1;
            loop {
                let mut stream = match store.watch(next).await {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "index watch failed to start; retrying");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                };
                while let Some(item) = stream.recv().await {
                    let Some(cache) = weak.upgrade() else { return };
                    match item {
                        Ok(batch) => {
                            next = batch.revision + 1;
                            cache.apply(&batch);
                        }
                        Err(StoreError::Compacted { .. }) => {
                            // Fell behind compaction: start again from a fresh snapshot.
                            match store.range("").await {
                                Ok((kvs, rev)) => {
                                    next = rev + 1;
                                    cache.replace(Index::from_snapshot(kvs, rev));
                                }
                                Err(e) => tracing::warn!(error = %e, "index resnapshot failed"),
                            }
                            break;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "index watch failed; resuming");
                            break;
                        }
                    }
                }
                if weak.strong_count() == 0 {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        Ok(cache)
    }

    fn apply(&self, batch: &EventBatch) {
        if let Ok(mut idx) = self.index.write() {
            if batch.revision <= idx.revision {
                return;
            }
            idx.apply(batch);
        }
        self.applied.send_replace(batch.revision);
    }

    fn replace(&self, new: Index) {
        let rev = new.revision;
        if let Ok(mut idx) = self.index.write() {
            *idx = new;
        }
        self.applied.send_replace(rev);
    }

    /// A read view of the index. Never hold it across an await.
    pub fn read(&self) -> RwLockReadGuard<'_, Index> {
        match self.index.read() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The revision applied so far.
    pub fn revision(&self) -> Revision {
        *self.applied.borrow()
    }

    /// Waits until the index reflects `rev` (bounded: a stuck watch is an outage, not a hang).
    pub async fn wait_for(&self, rev: Revision) -> Result<(), palisade_model::Error> {
        if *self.applied.borrow() >= rev {
            return Ok(());
        }
        let mut rx = self.applied.subscribe();
        let reached = tokio::time::timeout(Duration::from_secs(10), async {
            rx.wait_for(|applied| *applied >= rev).await.is_ok()
        })
        .await;
        match reached {
            Ok(true) => Ok(()),
            _ => Err(palisade_model::Error::ServiceUnavailable(format!(
                "the read index has not caught up with revision {rev}"
            ))),
        }
    }
}
