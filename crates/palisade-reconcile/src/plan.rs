//! Desired groups from a cluster's spec (CAPO's default rules plus the spec's), the
//! observed state from the API, and the plan between them: pure, ordered make-before-break
//! (groups and rules are added and attached before anything is removed, detached or
//! deleted), compared on Neutron's own duplicate key.

use crate::spec::{legacy_calico_rules, Cluster, Role, RuleSpec};
use palisade_model::convert::Object;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// Suffix of the description of every rule the reconciler creates: how it tells its own
/// rules (removed when the spec drops them) from rules added by hand (reported; removed
/// only with `--prune`).
pub const MARK: &str = " [palisade-managed]";

/// Which group: a managed role or an additional group by name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GroupKey {
    /// a managed role's group
    Managed(Role),
    /// an additional group
    Additional(String),
}

/// A desired rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredRule {
    /// description (without the mark)
    pub description: String,
    /// normalised body without `security_group_id` / `remote_group_id` of managed groups
    pub body: Object,
    /// a managed group as the remote
    pub remote: Option<GroupKey>,
}

/// A desired group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredGroup {
    /// which
    pub key: GroupKey,
    /// its name
    pub name: String,
    /// its description
    pub description: String,
    /// its rules
    pub rules: Vec<DesiredRule>,
}

fn r(desc: &str, body: Value, remote: Option<GroupKey>) -> DesiredRule {
    DesiredRule {
        description: desc.to_string(),
        body: body.as_object().cloned().unwrap_or_default(),
        remote,
    }
}

fn full_open() -> Vec<DesiredRule> {
    vec![
        r(
            "Full open",
            json!({"direction": "egress", "ethertype": "IPv4"}),
            None,
        ),
        r(
            "Full open",
            json!({"direction": "egress", "ethertype": "IPv6"}),
            None,
        ),
    ]
}

fn from_spec(rules: &[RuleSpec]) -> Vec<DesiredRule> {
    let mut out = Vec::new();
    for s in rules {
        if s.remote_managed.is_empty() {
            out.push(DesiredRule {
                description: s.description.clone(),
                body: s.body.clone(),
                remote: None,
            });
        }
        for role in &s.remote_managed {
            out.push(DesiredRule {
                description: s.description.clone(),
                body: s.body.clone(),
                remote: Some(GroupKey::Managed(*role)),
            });
        }
    }
    out
}

/// The groups a cluster should have (none when management is off).
pub fn desired(c: &Cluster) -> Vec<DesiredGroup> {
    let m = &c.managed;
    if !m.enabled {
        return Vec::new();
    }
    let (cp, wk, bastion, all) = (
        GroupKey::Managed(Role::ControlPlane),
        GroupKey::Managed(Role::Worker),
        GroupKey::Managed(Role::Bastion),
        GroupKey::Managed(Role::AllNodes),
    );
    let tcp = |min: u32, max: u32| json!({"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp", "port_range_min": min, "port_range_max": max});
    let udp = |min: u32, max: u32| json!({"direction": "ingress", "ethertype": "IPv4", "protocol": "udp", "port_range_min": min, "port_range_max": max});
    let any_in = json!({"direction": "ingress", "ethertype": "IPv4"});
    let with_prefix = |mut v: Value, cidr: &str| {
        v["remote_ip_prefix"] = json!(cidr);
        v
    };
    // Control plane.
    let mut cpr = full_open();
    cpr.push(r("Kubernetes API", tcp(6443, 6443), None));
    if m.allow_all_in_cluster_traffic {
        cpr.push(r("In-cluster Ingress", any_in.clone(), Some(cp.clone())));
        cpr.push(r("In-cluster Ingress", any_in.clone(), Some(wk.clone())));
    } else {
        cpr.push(r("Etcd", tcp(2379, 2380), Some(cp.clone())));
        cpr.push(r("Kubelet API", tcp(10250, 10250), Some(cp.clone())));
        cpr.push(r("Kubelet API", tcp(10250, 10250), Some(wk.clone())));
    }
    for p in &c.api_additional_ports {
        cpr.push(r(
            "Additional port",
            tcp(u32::from(*p), u32::from(*p)),
            None,
        ));
    }
    if c.bastion {
        cpr.push(r("SSH", tcp(22, 22), Some(bastion.clone())));
    }
    cpr.extend(from_spec(&m.control_plane_rules));
    // Workers.
    let mut wr = full_open();
    for cidr in &c.node_cidrs {
        wr.push(r(
            "Node Port Services",
            with_prefix(tcp(30000, 32767), cidr),
            None,
        ));
        wr.push(r(
            "Node Port Services",
            with_prefix(udp(30000, 32767), cidr),
            None,
        ));
    }
    for g in [&wk, &cp] {
        wr.push(r("Node Port Services", tcp(30000, 32767), Some(g.clone())));
        wr.push(r("Node Port Services", udp(30000, 32767), Some(g.clone())));
    }
    if m.allow_all_in_cluster_traffic {
        wr.push(r("In-cluster Ingress", any_in.clone(), Some(wk.clone())));
        wr.push(r("In-cluster Ingress", any_in, Some(cp.clone())));
    } else {
        wr.push(r("Kubelet API", tcp(10250, 10250), Some(wk.clone())));
        wr.push(r("Kubelet API", tcp(10250, 10250), Some(cp.clone())));
    }
    if c.bastion {
        wr.push(r("SSH", tcp(22, 22), Some(bastion.clone())));
    }
    wr.extend(from_spec(&m.worker_rules));
    // All nodes.
    let mut ar = full_open();
    ar.extend(from_spec(&m.all_nodes_rules));
    if m.use_legacy_calico_rules {
        ar.extend(from_spec(&legacy_calico_rules()));
    }
    let mut out = vec![
        DesiredGroup {
            key: cp.clone(),
            name: c.group_name(Role::ControlPlane),
            description: "Cluster API managed group".into(),
            rules: cpr,
        },
        DesiredGroup {
            key: wk.clone(),
            name: c.group_name(Role::Worker),
            description: "Cluster API managed group".into(),
            rules: wr,
        },
        DesiredGroup {
            key: all.clone(),
            name: c.group_name(Role::AllNodes),
            description: "Cluster API managed group".into(),
            rules: ar,
        },
    ];
    if c.bastion {
        let mut br = full_open();
        br.push(r("SSH", tcp(22, 22), None));
        br.extend(from_spec(&m.bastion_rules));
        out.push(DesiredGroup {
            key: bastion,
            name: c.group_name(Role::Bastion),
            description: "Cluster API managed group".into(),
            rules: br,
        });
    }
    for a in &m.additional_groups {
        let key = GroupKey::Additional(a.name.clone());
        let mut rules = full_open();
        rules.extend(from_spec(&a.rules));
        out.push(DesiredGroup {
            key,
            name: a.name.clone(),
            description: a.description.clone(),
            rules,
        });
    }
    // A rule naming a managed group the cluster does not have cannot be made.
    out
}

/// A group as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedGroup {
    /// id
    pub id: String,
    /// name
    pub name: String,
    /// tags
    pub tags: Vec<String>,
    /// rules: (id, body as returned, description)
    pub rules: Vec<(String, Object, String)>,
}

/// A machine: a port tagged `cluster=<namespace>/<name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    /// port id
    pub id: String,
    /// port name
    pub name: String,
    /// tags (`role=…`, `sg=<additional group>`)
    pub tags: Vec<String>,
    /// its groups
    pub security_groups: Vec<String>,
    /// port security on
    pub port_security_enabled: bool,
}

/// What the API shows for one cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// groups tagged with the cluster, and untagged ones carrying a desired name
    pub groups: Vec<ObservedGroup>,
    /// the cluster's machines
    pub machines: Vec<Machine>,
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// create a group (Neutron gives it the two egress rules)
    CreateGroup {
        /// which
        key: GroupKey,
        /// name
        name: String,
        /// description
        description: String,
    },
    /// tag an existing untagged group with the cluster (adoption by name)
    AdoptGroup {
        /// which
        key: GroupKey,
        /// its id
        id: String,
    },
    /// add a rule
    AddRule {
        /// to which group
        group: GroupKey,
        /// the rule
        rule: DesiredRule,
    },
    /// attach a group to a machine
    Attach {
        /// port id
        port: String,
        /// port name
        port_name: String,
        /// the group
        group: GroupKey,
    },
    /// remove a rule
    RemoveRule {
        /// from which group (its name)
        group: String,
        /// rule id
        id: String,
        /// what it was
        summary: String,
        /// added by hand (only with --prune)
        foreign: bool,
    },
    /// detach a group from a machine
    Detach {
        /// port id
        port: String,
        /// port name
        port_name: String,
        /// group id
        group_id: String,
        /// group name
        group_name: String,
    },
    /// delete a group no longer wanted (waits while ports use it)
    DeleteGroup {
        /// id
        id: String,
        /// name
        name: String,
    },
}

/// A plan: steps in the order they run, and findings that need no change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// the cluster (`namespace/name`)
    pub cluster: String,
    /// steps, make-before-break
    pub steps: Vec<Step>,
    /// rules added by hand to managed groups (kept without `--prune`)
    pub foreign: Vec<String>,
    /// problems that stop nothing (a machine naming an unknown group, …)
    pub warnings: Vec<String>,
}

impl Plan {
    /// Nothing to change.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

fn key_name(k: &GroupKey) -> String {
    match k {
        GroupKey::Managed(r) => r.name().to_string(),
        GroupKey::Additional(n) => n.clone(),
    }
}

/// A short text of a rule (for plans and status).
pub fn summary(body: &Object, remote: &str) -> String {
    let s = |k: &str| {
        body.get(k).and_then(|v| {
            v.as_str()
                .map(String::from)
                .or_else(|| v.as_u64().map(|n| n.to_string()))
        })
    };
    let ports = match (s("port_range_min"), s("port_range_max")) {
        (Some(a), Some(b)) if a == b => format!(" {a}"),
        (Some(a), Some(b)) => format!(" {a}-{b}"),
        (Some(a), None) => format!(" {a}"),
        _ => String::new(),
    };
    let from = if !remote.is_empty() {
        format!(" group {remote}")
    } else {
        s("remote_ip_prefix")
            .map(|p| format!(" {p}"))
            .unwrap_or_else(|| " any".into())
    };
    format!(
        "{} {} {}{}{}",
        s("direction").unwrap_or_default(),
        s("ethertype").unwrap_or_else(|| "IPv4".into()),
        s("protocol").unwrap_or_else(|| "any".into()),
        ports,
        from
    )
}

/// Neutron's duplicate key of a rule body with its remote group given as `remote`.
pub fn rule_key(body: &Object, remote: Option<&str>) -> String {
    let mut o = body.clone();
    o.insert("security_group_id".into(), json!("g"));
    o.remove("remote_group_id");
    if let Some(r) = remote {
        o.insert("remote_group_id".into(), json!(r));
    }
    for k in [
        "id",
        "description",
        "project_id",
        "tenant_id",
        "normalized_cidr",
        "belongs_to_default_sg",
        "created_at",
        "updated_at",
        "revision_number",
        "security_group_id",
    ] {
        if k != "security_group_id" {
            o.remove(k);
        }
    }
    o.retain(|_, v| !v.is_null());
    match palisade_model::parse_rule(&o).and_then(palisade_model::validate_rule) {
        Ok(n) => palisade_model::fingerprint(&n),
        Err(_) => format!("unparsable:{}", Value::Object(o)),
    }
}

fn tag_value<'a>(tags: &'a [String], key: &str) -> impl Iterator<Item = &'a str> {
    let prefix = format!("{key}=");
    tags.iter().filter_map(move |t| t.strip_prefix(&prefix))
}

/// The plan that makes `observed` what `cluster` wants.
pub fn plan(cluster: &Cluster, observed: &Observed, prune: bool) -> Plan {
    let want = desired(cluster);
    let mut p = Plan {
        cluster: cluster.key(),
        ..Plan::default()
    };
    let ctag = format!("cluster={}", cluster.key());
    // Groups: found by tag, else adopted by name.
    let mut ids: BTreeMap<GroupKey, String> = BTreeMap::new();
    let mut found: BTreeMap<GroupKey, &ObservedGroup> = BTreeMap::new();
    for g in &want {
        let tagged = observed
            .groups
            .iter()
            .find(|o| o.name == g.name && o.tags.contains(&ctag));
        let by_name = || observed.groups.iter().find(|o| o.name == g.name);
        match tagged.or_else(by_name) {
            Some(o) => {
                if !o.tags.contains(&ctag) {
                    p.steps.push(Step::AdoptGroup {
                        key: g.key.clone(),
                        id: o.id.clone(),
                    });
                }
                ids.insert(g.key.clone(), o.id.clone());
                found.insert(g.key.clone(), o);
            }
            None => p.steps.push(Step::CreateGroup {
                key: g.key.clone(),
                name: g.name.clone(),
                description: g.description.clone(),
            }),
        }
    }
    let wanted_keys: BTreeSet<&GroupKey> = want.iter().map(|g| &g.key).collect();
    for g in &want {
        for rule in &g.rules {
            if let Some(k) = &rule.remote {
                if !wanted_keys.contains(k) {
                    p.warnings.push(format!(
                        "{}: a rule names the {} group, which this cluster does not have: skipped",
                        g.name,
                        key_name(k)
                    ));
                }
            }
        }
    }
    // The remote of an observed rule as a key placeholder when it is one of ours.
    let placeholder = |id: &str| -> String {
        ids.iter()
            .find(|(_, v)| v.as_str() == id)
            .map(|(k, _)| format!("@{}", key_name(k)))
            .unwrap_or_else(|| id.to_string())
    };
    let mut removes = Vec::new();
    for g in &want {
        let observed_rules: Vec<(String, String, Object, String)> = match found.get(&g.key) {
            Some(o) => o
                .rules
                .iter()
                .map(|(id, body, desc)| {
                    let remote = body
                        .get("remote_group_id")
                        .and_then(Value::as_str)
                        .map(&placeholder);
                    (
                        rule_key(body, remote.as_deref()),
                        id.clone(),
                        body.clone(),
                        desc.clone(),
                    )
                })
                .collect(),
            // A new group: Neutron's two egress rules.
            None => full_open()
                .into_iter()
                .map(|d| {
                    (
                        rule_key(&d.body, None),
                        String::new(),
                        d.body,
                        String::new(),
                    )
                })
                .collect(),
        };
        let mut wanted: BTreeSet<String> = BTreeSet::new();
        for rule in &g.rules {
            if rule
                .remote
                .as_ref()
                .is_some_and(|k| !wanted_keys.contains(k))
            {
                continue;
            }
            let remote = rule.remote.as_ref().map(|k| format!("@{}", key_name(k)));
            let key = rule_key(&rule.body, remote.as_deref());
            if !wanted.insert(key.clone()) {
                continue; // the same rule twice in the spec: once in Neutron
            }
            if !observed_rules.iter().any(|(k, ..)| *k == key) {
                p.steps.push(Step::AddRule {
                    group: g.key.clone(),
                    rule: rule.clone(),
                });
            }
        }
        for (key, id, body, desc) in &observed_rules {
            if id.is_empty() || wanted.contains(key) {
                continue;
            }
            let remote = body
                .get("remote_group_id")
                .and_then(Value::as_str)
                .map(&placeholder)
                .unwrap_or_default();
            let summary = summary(body, &remote);
            let ours = desc.ends_with(MARK);
            if !ours {
                p.foreign.push(format!("{}: {summary} ({id})", g.name));
            }
            if ours || prune {
                removes.push(Step::RemoveRule {
                    group: g.name.clone(),
                    id: id.clone(),
                    summary,
                    foreign: !ours,
                });
            }
        }
    }
    // Machines.
    let managed_ids: BTreeMap<&str, &str> = observed
        .groups
        .iter()
        .filter(|g| g.tags.contains(&ctag))
        .map(|g| (g.id.as_str(), g.name.as_str()))
        .collect();
    let mut detaches = Vec::new();
    for m in &observed.machines {
        if !m.port_security_enabled {
            continue;
        }
        let role = tag_value(&m.tags, "role").next();
        let mut should: Vec<GroupKey> = Vec::new();
        match role {
            Some("control-plane") => should.push(GroupKey::Managed(Role::ControlPlane)),
            Some("worker") => should.push(GroupKey::Managed(Role::Worker)),
            Some("bastion") => should.push(GroupKey::Managed(Role::Bastion)),
            Some(other) => p.warnings.push(format!(
                "port {} ({}): role={other} is not control-plane, worker or bastion",
                m.name, m.id
            )),
            None => p
                .warnings
                .push(format!("port {} ({}): no role= tag", m.name, m.id)),
        }
        if matches!(role, Some("control-plane" | "worker")) {
            should.push(GroupKey::Managed(Role::AllNodes));
        }
        for name in tag_value(&m.tags, "sg") {
            let k = GroupKey::Additional(name.to_string());
            if wanted_keys.contains(&k) {
                should.push(k);
            } else {
                p.warnings.push(format!(
                    "port {} ({}): sg={name} is not an additional group of the cluster",
                    m.name, m.id
                ));
            }
        }
        should.retain(|k| wanted_keys.contains(k));
        for k in &should {
            let has = ids.get(k).is_some_and(|id| m.security_groups.contains(id));
            if !has {
                p.steps.push(Step::Attach {
                    port: m.id.clone(),
                    port_name: m.name.clone(),
                    group: k.clone(),
                });
            }
        }
        let should_ids: BTreeSet<&str> = should
            .iter()
            .filter_map(|k| ids.get(k).map(String::as_str))
            .collect();
        for g in &m.security_groups {
            if let Some(name) = managed_ids.get(g.as_str()) {
                if !should_ids.contains(g.as_str()) {
                    detaches.push(Step::Detach {
                        port: m.id.clone(),
                        port_name: m.name.clone(),
                        group_id: g.clone(),
                        group_name: name.to_string(),
                    });
                }
            }
        }
    }
    p.steps.extend(removes);
    p.steps.extend(detaches);
    // Groups the spec no longer has.
    let wanted_names: BTreeSet<&str> = want.iter().map(|g| g.name.as_str()).collect();
    for g in observed
        .groups
        .iter()
        .filter(|g| g.tags.contains(&ctag) && !wanted_names.contains(g.name.as_str()))
    {
        p.steps.push(Step::DeleteGroup {
            id: g.id.clone(),
            name: g.name.clone(),
        });
    }
    p
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.steps.is_empty() {
            writeln!(f, "cluster {}: no changes", self.cluster)?;
        } else {
            writeln!(
                f,
                "cluster {}: {} change(s)",
                self.cluster,
                self.steps.len()
            )?;
        }
        for s in &self.steps {
            match s {
                Step::CreateGroup { name, .. } => writeln!(f, "  + group {name}")?,
                Step::AdoptGroup { key, id } => writeln!(
                    f,
                    "  ~ group {} ({id}): adopt (tag with the cluster)",
                    key_name(key)
                )?,
                Step::AddRule { group, rule } => {
                    let remote = rule.remote.as_ref().map(key_name).unwrap_or_default();
                    writeln!(
                        f,
                        "  + rule  {}: {} ({})",
                        key_name(group),
                        summary(&rule.body, &remote),
                        rule.description
                    )?
                }
                Step::Attach {
                    port_name,
                    port,
                    group,
                } => writeln!(
                    f,
                    "  + attach {} to port {} ({port})",
                    key_name(group),
                    port_name
                )?,
                Step::RemoveRule {
                    group,
                    id,
                    summary,
                    foreign,
                } => writeln!(
                    f,
                    "  - rule  {group}: {summary} ({id}){}",
                    if *foreign {
                        " [added by hand; --prune]"
                    } else {
                        ""
                    }
                )?,
                Step::Detach {
                    port_name,
                    port,
                    group_name,
                    ..
                } => writeln!(f, "  - detach {group_name} from port {port_name} ({port})")?,
                Step::DeleteGroup { name, id } => writeln!(f, "  - group {name} ({id})")?,
            }
        }
        for x in &self.foreign {
            writeln!(f, "  ! added by hand (kept; --prune removes it): {x}")?;
        }
        for w in &self.warnings {
            writeln!(f, "  ! {w}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::parse;
    use proptest::prelude::*;

    /// Carries a plan out on a model of the server (what `apply` does over HTTP).
    fn simulate(cluster: &Cluster, mut o: Observed, p: &Plan, next_id: &mut u32) -> Observed {
        let ctag = format!("cluster={}", cluster.key());
        let mut ids: BTreeMap<GroupKey, String> = BTreeMap::new();
        for g in desired(cluster) {
            if let Some(x) = o.groups.iter().find(|x| x.name == g.name) {
                ids.insert(g.key.clone(), x.id.clone());
            }
        }
        let mut fresh = || {
            *next_id += 1;
            format!("id{next_id}")
        };
        for s in &p.steps {
            match s {
                Step::CreateGroup { key, name, .. } => {
                    let id = fresh();
                    let rules = full_open()
                        .into_iter()
                        .map(|d| (fresh(), d.body, String::new()))
                        .collect();
                    o.groups.push(ObservedGroup {
                        id: id.clone(),
                        name: name.clone(),
                        tags: vec![ctag.clone()],
                        rules,
                    });
                    ids.insert(key.clone(), id);
                }
                Step::AdoptGroup { id, .. } => {
                    if let Some(g) = o.groups.iter_mut().find(|g| &g.id == id) {
                        g.tags.push(ctag.clone());
                    }
                }
                _ => {}
            }
        }
        for s in &p.steps {
            match s {
                Step::AddRule { group, rule } => {
                    let mut b = rule.body.clone();
                    if let Some(r) = &rule.remote {
                        b.insert("remote_group_id".into(), json!(ids[r]));
                    }
                    let rid = fresh();
                    let gid = ids[group].clone();
                    if let Some(g) = o.groups.iter_mut().find(|g| g.id == gid) {
                        g.rules
                            .push((rid, b, format!("{}{MARK}", rule.description)));
                    }
                }
                Step::Attach { port, group, .. } => {
                    if let Some(m) = o.machines.iter_mut().find(|m| &m.id == port) {
                        m.security_groups.push(ids[group].clone());
                    }
                }
                Step::RemoveRule { id, .. } => {
                    for g in &mut o.groups {
                        g.rules.retain(|(r, ..)| r != id);
                    }
                }
                Step::Detach { port, group_id, .. } => {
                    if let Some(m) = o.machines.iter_mut().find(|m| &m.id == port) {
                        m.security_groups.retain(|g| g != group_id);
                    }
                }
                Step::DeleteGroup { id, .. } => o.groups.retain(|g| &g.id != id),
                _ => {}
            }
        }
        o
    }

    fn rank(s: &Step) -> u8 {
        match s {
            Step::CreateGroup { .. } | Step::AdoptGroup { .. } => 0,
            Step::AddRule { .. } => 1,
            Step::Attach { .. } => 2,
            Step::RemoveRule { .. } => 3,
            Step::Detach { .. } => 4,
            Step::DeleteGroup { .. } => 5,
        }
    }

    fn manifest(seed: u64) -> String {
        let mut x = seed | 1;
        let mut next = move |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let rule = |next: &mut dyn FnMut(u64) -> u64| -> String {
            let proto = ["tcp", "udp", "\"6\"", "icmp", "\"4\""][next(5) as usize];
            let ports = if matches!(proto, "tcp" | "udp" | "\"6\"") {
                let p = 1 + next(3000);
                format!(", portRangeMin: {p}, portRangeMax: {}", p + next(3))
            } else {
                String::new()
            };
            let remote = match next(4) {
                0 => String::new(),
                1 => format!(", remoteIPPrefix: 198.18.{}.0/24", next(4)),
                2 => ", remoteManagedGroups: [controlplane, worker]".to_string(),
                _ => ", remoteManagedGroups: [allnodes]".to_string(),
            };
            let dir = if next(4) == 0 { "egress" } else { "ingress" };
            format!("      - {{direction: {dir}, protocol: {proto}{ports}{remote}, description: d{}}}\n", next(3))
        };
        let mut m =
            String::from("kind: OpenStackCluster\nmetadata: {name: c, namespace: ns}\nspec:\n");
        if next(2) == 0 {
            m.push_str("  bastion: {enabled: true}\n");
        }
        m.push_str("  managedSubnets: [{cidr: 198.18.40.0/24}]\n  managedSecurityGroups:\n");
        m.push_str(&format!(
            "    allowAllInClusterTraffic: {}\n    useLegacyCalicoRules: {}\n",
            next(2) == 0,
            next(2) == 0
        ));
        for list in [
            "additionalControlPlaneSecurityGroupRules",
            "additionalWorkerSecurityGroupRules",
            "allNodesSecurityGroupRules",
        ] {
            let n = next(4);
            if n > 0 {
                m.push_str(&format!("    {list}:\n"));
                for _ in 0..n {
                    m.push_str(&rule(&mut next));
                }
            }
        }
        let groups = next(3);
        if groups > 0 {
            m.push_str("    additionalSecurityGroups:\n");
            for g in 0..groups {
                m.push_str(&format!("      - name: extra{g}\n        rules:\n"));
                for _ in 0..1 + next(3) {
                    m.push_str(&rule(&mut next).replacen("      - ", "          - ", 1));
                }
            }
        }
        m
    }

    fn machines(n: usize) -> Vec<Machine> {
        (0..n)
            .map(|i| Machine {
                id: format!("p{i}"),
                name: format!("m{i}"),
                tags: vec![
                    "cluster=ns/c".into(),
                    ["role=control-plane", "role=worker", "role=bastion"][i % 3].into(),
                    format!("sg=extra{}", i % 2),
                ],
                security_groups: vec!["default".into()],
                port_security_enabled: true,
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Applying a plan reaches the spec (the next plan is empty), from scratch and from
        /// any earlier spec; every plan adds before it removes; the project's other groups
        /// stay on the machines.
        #[test]
        fn applied_plans_converge_and_make_before_break(a in any::<u64>(), b in any::<u64>()) {
            let ca = parse("a", &manifest(a)).expect("a").remove(0);
            let cb = parse("b", &manifest(b)).expect("b").remove(0);
            let mut ids = 0;
            let o0 = Observed { groups: Vec::new(), machines: machines(5) };
            let p1 = plan(&ca, &o0, false);
            prop_assert!(p1.steps.windows(2).all(|w| rank(&w[0]) <= rank(&w[1])), "{}", p1);
            let o1 = simulate(&ca, o0, &p1, &mut ids);
            let again = plan(&ca, &o1, false);
            prop_assert!(again.is_empty(), "second plan not empty:\n{}\n{}", manifest(a), again);
            let p2 = plan(&cb, &o1, false);
            prop_assert!(p2.steps.windows(2).all(|w| rank(&w[0]) <= rank(&w[1])), "{}", p2);
            let o2 = simulate(&cb, o1, &p2, &mut ids);
            let again = plan(&cb, &o2, false);
            prop_assert!(again.is_empty(), "after a change, not empty:\n{}\n{}", manifest(b), again);
            prop_assert!(o2.machines.iter().all(|m| m.security_groups.contains(&"default".to_string())));
        }
    }
}
