//! Reading what the API shows for a cluster (a handful of batched requests), carrying a plan
//! out in make-before-break order, and the status CAPO records.

use crate::plan::{
    desired, plan, summary, GroupKey, Machine, Observed, ObservedGroup, Plan, Step, MARK,
};
use crate::spec::Cluster;
use palisade_client::{Client, ClientError};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Failures talking to the server.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// A call failed.
    #[error("{call}: {source}")]
    Call {
        /// method and path
        call: String,
        /// cause
        source: ClientError,
    },
    /// The server answered something unexpected.
    #[error("{0}")]
    Unexpected(String),
}

/// A client that records every call it makes (method and path), so the order of an apply
/// can be shown and tested.
pub struct Recorder<'a> {
    client: &'a Client,
    /// the calls, in order
    pub calls: Vec<String>,
}

fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl<'a> Recorder<'a> {
    /// Records calls made through `client`.
    pub fn new(client: &'a Client) -> Self {
        Recorder {
            client,
            calls: Vec::new(),
        }
    }

    async fn call(
        &mut self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ReconcileError> {
        let call = format!("{method} {path}");
        self.calls.push(call.clone());
        self.client
            .request(method, path, body)
            .await
            .map(|(_, v)| v)
            .map_err(|source| ReconcileError::Call { call, source })
    }
}

fn rules_of(g: &Value) -> Vec<(String, Map<String, Value>, String)> {
    g["security_group_rules"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| {
            let m = r.as_object()?.clone();
            let id = m.get("id")?.as_str()?.to_string();
            let desc = m
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let body: Map<String, Value> = m
                .into_iter()
                .filter(|(k, _)| {
                    matches!(
                        k.as_str(),
                        "direction"
                            | "ethertype"
                            | "protocol"
                            | "port_range_min"
                            | "port_range_max"
                            | "remote_ip_prefix"
                            | "remote_group_id"
                            | "remote_address_group_id"
                    )
                })
                .collect();
            Some((id, body, desc))
        })
        .collect()
}

fn group_of(g: &Value) -> Option<ObservedGroup> {
    Some(ObservedGroup {
        id: g["id"].as_str()?.to_string(),
        name: g["name"].as_str().unwrap_or("").to_string(),
        tags: strings(&g["tags"]),
        rules: rules_of(g),
    })
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t.as_str().map(String::from))
        .collect()
}

/// Reads a cluster's groups (by tag, and by name for groups not tagged yet) with their
/// rules, and its machines: two or three requests whatever the number of rules.
pub async fn observe(
    rec: &mut Recorder<'_>,
    cluster: &Cluster,
) -> Result<Observed, ReconcileError> {
    let tag = enc(&format!("cluster={}", cluster.key()));
    let v = rec
        .call(
            reqwest::Method::GET,
            &format!("/v2.0/security-groups?tags={tag}"),
            None,
        )
        .await?;
    let mut groups: Vec<ObservedGroup> = v["security_groups"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(group_of)
        .collect();
    let missing: Vec<String> = desired(cluster)
        .into_iter()
        .map(|g| g.name)
        .filter(|n| !groups.iter().any(|g| &g.name == n))
        .collect();
    if !missing.is_empty() {
        let q: Vec<String> = missing.iter().map(|n| format!("name={}", enc(n))).collect();
        let v = rec
            .call(
                reqwest::Method::GET,
                &format!("/v2.0/security-groups?{}", q.join("&")),
                None,
            )
            .await?;
        groups.extend(
            v["security_groups"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(group_of),
        );
    }
    let v = rec
        .call(
            reqwest::Method::GET,
            &format!("/v2.0/ports?tags={tag}"),
            None,
        )
        .await?;
    let machines = v["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| {
            Some(Machine {
                id: p["id"].as_str()?.to_string(),
                name: p["name"].as_str().unwrap_or("").to_string(),
                tags: strings(&p["tags"]),
                security_groups: strings(&p["security_groups"]),
                port_security_enabled: p["port_security_enabled"].as_bool().unwrap_or(true),
            })
        })
        .collect();
    Ok(Observed { groups, machines })
}

/// What an apply did.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    /// groups that could not be deleted yet: (name, ports using it)
    pub waiting: Vec<(String, usize)>,
    /// group ids by key
    pub ids: BTreeMap<GroupKey, String>,
}

/// Carries `plan` out: groups created and tagged, rules added (one bulk request), groups
/// attached to machines, then rules removed, groups detached, and groups deleted when no
/// port uses them (otherwise reported as waiting).
pub async fn apply(
    rec: &mut Recorder<'_>,
    cluster: &Cluster,
    observed: &Observed,
    plan: &Plan,
) -> Result<Applied, ReconcileError> {
    let ctag = enc(&format!("cluster={}", cluster.key()));
    let mut out = Applied::default();
    let want = desired(cluster);
    for g in &want {
        if let Some(o) = observed.groups.iter().find(|o| o.name == g.name) {
            out.ids.insert(g.key.clone(), o.id.clone());
        }
    }
    // 1. groups
    for s in &plan.steps {
        match s {
            Step::CreateGroup {
                key,
                name,
                description,
            } => {
                let v = rec
                    .call(
                        reqwest::Method::POST,
                        "/v2.0/security-groups",
                        Some(
                            &json!({"security_group": {"name": name, "description": description}}),
                        ),
                    )
                    .await?;
                let id = v["security_group"]["id"]
                    .as_str()
                    .ok_or_else(|| {
                        ReconcileError::Unexpected(format!("no id for the new group {name}"))
                    })?
                    .to_string();
                rec.call(
                    reqwest::Method::PUT,
                    &format!("/v2.0/security-groups/{id}/tags/{ctag}"),
                    None,
                )
                .await?;
                out.ids.insert(key.clone(), id);
            }
            Step::AdoptGroup { id, .. } => {
                rec.call(
                    reqwest::Method::PUT,
                    &format!("/v2.0/security-groups/{id}/tags/{ctag}"),
                    None,
                )
                .await?;
            }
            _ => {}
        }
    }
    // 2. rules, one request per group (Neutron takes bulk rules of one group at a time)
    let mut bodies: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for s in &plan.steps {
        if let Step::AddRule { group, rule } = s {
            let mut b = rule.body.clone();
            let gid = out
                .ids
                .get(group)
                .ok_or_else(|| ReconcileError::Unexpected(format!("no id for group {group:?}")))?;
            b.insert("security_group_id".into(), json!(gid));
            if let Some(r) = &rule.remote {
                let rid = out
                    .ids
                    .get(r)
                    .ok_or_else(|| ReconcileError::Unexpected(format!("no id for group {r:?}")))?;
                b.insert("remote_group_id".into(), json!(rid));
            }
            b.insert(
                "description".into(),
                json!(format!("{}{MARK}", rule.description)),
            );
            bodies
                .entry(gid.clone())
                .or_default()
                .push(Value::Object(b));
        }
    }
    for group_rules in bodies.values() {
        rec.call(
            reqwest::Method::POST,
            "/v2.0/security-group-rules",
            Some(&json!({"security_group_rules": group_rules})),
        )
        .await?;
    }
    // 3. attach (each machine keeps what it has until its new groups are on)
    let mut ports: BTreeMap<&str, Vec<String>> = observed
        .machines
        .iter()
        .map(|m| (m.id.as_str(), m.security_groups.clone()))
        .collect();
    let mut attach_to: BTreeSet<&str> = BTreeSet::new();
    for s in &plan.steps {
        if let Step::Attach { port, group, .. } = s {
            let gid =
                out.ids.get(group).cloned().ok_or_else(|| {
                    ReconcileError::Unexpected(format!("no id for group {group:?}"))
                })?;
            if let Some(list) = ports.get_mut(port.as_str()) {
                if !list.contains(&gid) {
                    list.push(gid);
                }
                attach_to.insert(port.as_str());
            }
        }
    }
    for port in &attach_to {
        let groups = &ports[port];
        rec.call(
            reqwest::Method::PUT,
            &format!("/v2.0/ports/{port}"),
            Some(&json!({"port": {"security_groups": groups}})),
        )
        .await?;
    }
    // 4. rules go
    for s in &plan.steps {
        if let Step::RemoveRule { id, .. } = s {
            match rec
                .call(
                    reqwest::Method::DELETE,
                    &format!("/v2.0/security-group-rules/{id}"),
                    None,
                )
                .await
            {
                Ok(_) => {}
                Err(ReconcileError::Call { source, .. }) if source.status() == Some(404) => {}
                Err(e) => return Err(e),
            }
        }
    }
    // 5. detach
    let mut detach_from: BTreeSet<&str> = BTreeSet::new();
    for s in &plan.steps {
        if let Step::Detach { port, group_id, .. } = s {
            if let Some(list) = ports.get_mut(port.as_str()) {
                list.retain(|g| g != group_id);
                detach_from.insert(port.as_str());
            }
        }
    }
    for port in &detach_from {
        let groups = &ports[port];
        rec.call(
            reqwest::Method::PUT,
            &format!("/v2.0/ports/{port}"),
            Some(&json!({"port": {"security_groups": groups}})),
        )
        .await?;
    }
    // 6. groups go, when nobody uses them
    for s in &plan.steps {
        if let Step::DeleteGroup { id, name } = s {
            match rec
                .call(
                    reqwest::Method::DELETE,
                    &format!("/v2.0/security-groups/{id}"),
                    None,
                )
                .await
            {
                Ok(_) => {}
                Err(ReconcileError::Call { source, .. }) if source.status() == Some(409) => {
                    let v = rec
                        .call(
                            reqwest::Method::GET,
                            &format!("/v2.0/ports?security_groups={id}&fields=id"),
                            None,
                        )
                        .await?;
                    let n = v["ports"].as_array().map(Vec::len).unwrap_or(0);
                    out.waiting.push((name.clone(), n));
                }
                Err(ReconcileError::Call { source, .. }) if source.status() == Some(404) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(out)
}

/// The status CAPO records, from what the API shows after an apply: per managed group its
/// id, name and rules with ids; the additional groups; groups waiting to be deleted; and a
/// `Ready` condition.
pub fn status(
    cluster: &Cluster,
    observed: &Observed,
    waiting: &[(String, usize)],
    plan_left: &Plan,
) -> Value {
    let group_json = |name: &str| -> Value {
        match observed.groups.iter().find(|g| g.name == name) {
            Some(g) => {
                let rules: Vec<Value> = g
                    .rules
                    .iter()
                    .map(|(id, body, desc)| {
                        let mut m = body.clone();
                        m.insert("id".into(), json!(id));
                        m.insert("description".into(), json!(desc.trim_end_matches(MARK)));
                        let remote = body
                            .get("remote_group_id")
                            .and_then(Value::as_str)
                            .and_then(|rid| observed.groups.iter().find(|g| g.id == rid))
                            .map(|g| g.name.clone())
                            .unwrap_or_default();
                        m.insert("summary".into(), json!(summary(body, &remote)));
                        Value::Object(m)
                    })
                    .collect();
                json!({"id": g.id, "name": g.name, "rules": rules})
            }
            None => Value::Null,
        }
    };
    let mut managed = Map::new();
    let mut additional = Vec::new();
    for g in desired(cluster) {
        match &g.key {
            GroupKey::Managed(role) => {
                managed.insert(
                    format!(
                        "{}SecurityGroup",
                        match role {
                            crate::spec::Role::ControlPlane => "controlPlane",
                            crate::spec::Role::Worker => "worker",
                            crate::spec::Role::Bastion => "bastion",
                            crate::spec::Role::AllNodes => "allNodes",
                        }
                    ),
                    group_json(&g.name),
                );
            }
            GroupKey::Additional(_) => additional.push(group_json(&g.name)),
        }
    }
    let waiting_json: Vec<Value> = waiting
        .iter()
        .map(|(n, c)| json!({"name": n, "message": format!("waiting: in use by {c} ports")}))
        .collect();
    let ready = plan_left
        .steps
        .iter()
        .all(|s| matches!(s, Step::DeleteGroup { .. }))
        && plan_left.steps.len() == waiting.len();
    let (status, reason, message) = if ready && waiting.is_empty() {
        (
            "True",
            "Reconciled",
            "security groups match the spec".to_string(),
        )
    } else if ready {
        (
            "False",
            "WaitingForPorts",
            format!("{} group(s) still in use", waiting.len()),
        )
    } else {
        (
            "False",
            "Pending",
            format!("{} change(s) left", plan_left.steps.len()),
        )
    };
    json!({
        "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1",
        "kind": "OpenStackCluster",
        "metadata": {"name": cluster.name, "namespace": cluster.namespace},
        "status": {
            "managedSecurityGroups": Value::Object(managed),
            "additionalSecurityGroups": additional,
            "waitingSecurityGroups": waiting_json,
            "conditions": [{"type": "SecurityGroupsReady", "status": status, "reason": reason, "message": message}],
        }
    })
}

/// Observe, plan, (apply, observe again): one cluster's reconcile.
pub async fn reconcile(
    client: &Client,
    cluster: &Cluster,
    prune: bool,
    dry_run: bool,
) -> Result<(Plan, Option<Value>, Vec<String>), ReconcileError> {
    let mut rec = Recorder::new(client);
    let observed = observe(&mut rec, cluster).await?;
    let p = plan(cluster, &observed, prune);
    if dry_run {
        return Ok((p, None, rec.calls));
    }
    if p.is_empty() {
        // Nothing to do: what was read is the state; two requests in all.
        let st = status(cluster, &observed, &[], &p);
        return Ok((p, Some(st), rec.calls));
    }
    let applied = apply(&mut rec, cluster, &observed, &p).await?;
    let after = observe(&mut rec, cluster).await?;
    let left = plan(cluster, &after, prune);
    let st = status(cluster, &after, &applied.waiting, &left);
    Ok((p, Some(st), rec.calls))
}
