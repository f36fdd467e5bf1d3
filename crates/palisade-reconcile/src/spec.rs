//! `OpenStackCluster` manifests: the seed's `managedSecurityGroups` struct, its legacy
//! boolean form, and CAPO's shipped spellings, all mapped onto one model. Every error names
//! its YAML path and value.

use palisade_model::convert::Object;
use serde_json::{json, Map, Value};

/// A manifest error: where and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {path}: {message}")]
pub struct SpecError {
    /// file name (and document number when several)
    pub file: String,
    /// YAML path, e.g. `spec.managedSecurityGroups.additionalWorkerSecurityGroupRules[2].portRangeMin`
    pub path: String,
    /// what is wrong, naming the value
    pub message: String,
}

/// A node role a managed group serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// the bastion host
    Bastion,
    /// control-plane nodes
    ControlPlane,
    /// worker nodes
    Worker,
    /// every node (seed 000's all-nodes group)
    AllNodes,
}

impl Role {
    /// The suffix of the group's name and the `remoteManagedGroups` spelling.
    pub fn name(self) -> &'static str {
        match self {
            Role::Bastion => "bastion",
            Role::ControlPlane => "controlplane",
            Role::Worker => "worker",
            Role::AllNodes => "allnodes",
        }
    }
    fn parse(s: &str) -> Option<Role> {
        [
            Role::Bastion,
            Role::ControlPlane,
            Role::Worker,
            Role::AllNodes,
        ]
        .into_iter()
        .find(|r| r.name() == s)
    }
    /// The `role=` tag value machines carry (`control-plane`, `worker`, `bastion`).
    pub fn machine_tag(self) -> &'static str {
        match self {
            Role::ControlPlane => "control-plane",
            Role::Worker => "worker",
            Role::Bastion => "bastion",
            Role::AllNodes => "all",
        }
    }
}

/// A rule as the manifest states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSpec {
    /// merge key only (never sent)
    pub name: Option<String>,
    /// free text
    pub description: String,
    /// the normalised create body (direction, ethertype, protocol, ports, remote prefix or
    /// remote group id), as Neutron would store it
    pub body: Object,
    /// managed groups this rule's remote is (one rule each)
    pub remote_managed: Vec<Role>,
}

/// An additional group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdditionalGroup {
    /// its name (also what machines name in their `sg=` tags)
    pub name: String,
    /// description
    pub description: String,
    /// rules
    pub rules: Vec<RuleSpec>,
}

/// `spec.managedSecurityGroups` in the seed's model.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Managed {
    /// manage at all
    pub enabled: bool,
    /// extra bastion rules
    pub bastion_rules: Vec<RuleSpec>,
    /// extra control-plane rules
    pub control_plane_rules: Vec<RuleSpec>,
    /// extra worker rules
    pub worker_rules: Vec<RuleSpec>,
    /// rules of the all-nodes group
    pub all_nodes_rules: Vec<RuleSpec>,
    /// groups with their own lifecycle
    pub additional_groups: Vec<AdditionalGroup>,
    /// put Calico's BGP and IP-in-IP rules into the all-nodes group
    pub use_legacy_calico_rules: bool,
    /// any protocol between cluster nodes instead of the narrow in-cluster rules
    pub allow_all_in_cluster_traffic: bool,
}

/// One cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    /// metadata.namespace (default `default`)
    pub namespace: String,
    /// metadata.name
    pub name: String,
    /// the managed groups' spec
    pub managed: Managed,
    /// `spec.bastion.enabled`
    pub bastion: bool,
    /// `spec.apiServerLoadBalancer.additionalPorts`
    pub api_additional_ports: Vec<u16>,
    /// IPv4 CIDRs of the cluster's subnets (`spec.managedSubnets[].cidr`,
    /// `status.network.subnets[].cidr`): node ports are open to these
    pub node_cidrs: Vec<String>,
}

impl Cluster {
    /// `<namespace>/<name>`, the value of the machines' `cluster=` tag.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
    /// CAPO's name of a managed group: `k8s-cluster-<namespace>-<name>-secgroup-<role>`.
    pub fn group_name(&self, role: Role) -> String {
        format!(
            "k8s-cluster-{}-{}-secgroup-{}",
            self.namespace,
            self.name,
            role.name()
        )
    }
}

struct Ctx<'a> {
    file: &'a str,
}

impl Ctx<'_> {
    fn err(&self, path: &str, message: impl Into<String>) -> SpecError {
        SpecError {
            file: self.file.to_string(),
            path: path.to_string(),
            message: message.into(),
        }
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

fn obj<'a>(c: &Ctx, v: &'a Value, path: &str) -> Result<&'a Map<String, Value>, SpecError> {
    v.as_object()
        .ok_or_else(|| c.err(path, format!("{} is not a mapping", show(v))))
}

fn known(c: &Ctx, m: &Map<String, Value>, path: &str, keys: &[&str]) -> Result<(), SpecError> {
    for k in m.keys() {
        if !keys.contains(&k.as_str()) {
            return Err(c.err(
                &format!("{path}.{k}"),
                format!("unknown field (expected one of {})", keys.join(", ")),
            ));
        }
    }
    Ok(())
}

fn string(c: &Ctx, v: &Value, path: &str) -> Result<String, SpecError> {
    v.as_str()
        .map(String::from)
        .ok_or_else(|| c.err(path, format!("{} is not a string", show(v))))
}

fn boolean(c: &Ctx, v: &Value, path: &str) -> Result<bool, SpecError> {
    v.as_bool()
        .ok_or_else(|| c.err(path, format!("{} is not true or false", show(v))))
}

fn list<'a>(c: &Ctx, v: &'a Value, path: &str) -> Result<&'a Vec<Value>, SpecError> {
    v.as_array()
        .ok_or_else(|| c.err(path, format!("{} is not a list", show(v))))
}

const RULE_KEYS: &[&str] = &[
    "name",
    "description",
    "direction",
    "ethertype",
    "etherType",
    "portRangeMin",
    "portRangeMax",
    "protocol",
    "remoteIPPrefix",
    "remoteGroupID",
    "remoteManagedGroups",
];

fn port(c: &Ctx, v: &Value, path: &str) -> Result<u32, SpecError> {
    v.as_u64()
        .filter(|n| *n <= 65535)
        .map(|n| n as u32)
        .ok_or_else(|| c.err(path, format!("{} is not a port", show(v))))
}

fn rule(c: &Ctx, v: &Value, path: &str) -> Result<RuleSpec, SpecError> {
    let m = obj(c, v, path)?;
    known(c, m, path, RULE_KEYS)?;
    let mut body = Map::new();
    let direction = m.get("direction").ok_or_else(|| {
        c.err(
            &format!("{path}.direction"),
            "is required (ingress or egress)",
        )
    })?;
    let d = string(c, direction, &format!("{path}.direction"))?;
    if d != "ingress" && d != "egress" {
        return Err(c.err(
            &format!("{path}.direction"),
            format!("{d:?} is not ingress or egress"),
        ));
    }
    body.insert("direction".into(), json!(d));
    for key in ["ethertype", "etherType"] {
        if let Some(e) = m.get(key) {
            let e = string(c, e, &format!("{path}.{key}"))?;
            if e != "IPv4" && e != "IPv6" {
                return Err(c.err(
                    &format!("{path}.{key}"),
                    format!("{e:?} is not IPv4 or IPv6"),
                ));
            }
            body.insert("ethertype".into(), json!(e));
        }
    }
    for (key, field) in [
        ("portRangeMin", "port_range_min"),
        ("portRangeMax", "port_range_max"),
    ] {
        if let Some(p) = m.get(key).filter(|p| !p.is_null()) {
            body.insert(field.into(), json!(port(c, p, &format!("{path}.{key}"))?));
        }
    }
    if let Some(p) = m.get("protocol").filter(|p| !p.is_null()) {
        let p = match p {
            Value::Number(n) => n.to_string(),
            other => string(c, other, &format!("{path}.protocol"))?,
        };
        body.insert("protocol".into(), json!(p));
    }
    let mut remotes = 0;
    if let Some(p) = m.get("remoteIPPrefix").filter(|p| !p.is_null()) {
        body.insert(
            "remote_ip_prefix".into(),
            json!(string(c, p, &format!("{path}.remoteIPPrefix"))?),
        );
        remotes += 1;
    }
    if let Some(g) = m.get("remoteGroupID").filter(|p| !p.is_null()) {
        body.insert(
            "remote_group_id".into(),
            json!(string(c, g, &format!("{path}.remoteGroupID"))?),
        );
        remotes += 1;
    }
    let mut remote_managed = Vec::new();
    if let Some(g) = m.get("remoteManagedGroups").filter(|p| !p.is_null()) {
        for (i, r) in list(c, g, &format!("{path}.remoteManagedGroups"))?
            .iter()
            .enumerate()
        {
            let p = format!("{path}.remoteManagedGroups[{i}]");
            let s = string(c, r, &p)?;
            let role = Role::parse(&s).ok_or_else(|| {
                c.err(
                    &p,
                    format!("{s:?} is not one of bastion, controlplane, worker, allnodes"),
                )
            })?;
            if !remote_managed.contains(&role) {
                remote_managed.push(role);
            }
        }
        remotes += 1;
    }
    if remotes > 1 {
        return Err(c.err(
            path,
            "remoteIPPrefix, remoteGroupID and remoteManagedGroups are mutually exclusive",
        ));
    }
    // Neutron's own checks and normalisation (protocol names, port ranges, ICMP, prefixes),
    // with the error mapped back to the manifest's key.
    let mut check = body.clone();
    check.insert("security_group_id".into(), json!("placeholder"));
    if !remote_managed.is_empty() {
        check.insert("remote_group_id".into(), json!("placeholder"));
    }
    let parsed = palisade_model::parse_rule(&check)
        .and_then(palisade_model::validate_rule)
        .map_err(|e| {
            let msg = e.to_string();
            let key = [
                ("port_range", "portRangeMin"),
                ("protocol", "protocol"),
                ("remote_ip_prefix", "remoteIPPrefix"),
                ("cidr", "remoteIPPrefix"),
                ("ethertype", "ethertype"),
            ]
            .iter()
            .find(|(needle, _)| msg.to_lowercase().contains(needle))
            .map(|(_, k)| format!("{path}.{k}"))
            .unwrap_or_else(|| path.to_string());
            c.err(&key, msg)
        })?;
    // Store what Neutron stores, so the plan compares like with like.
    let mut norm = Map::new();
    norm.insert("direction".into(), json!(parsed.direction.as_str()));
    norm.insert("ethertype".into(), json!(parsed.ethertype.as_str()));
    if let Some(p) = &parsed.protocol {
        norm.insert("protocol".into(), json!(p));
    }
    if let Some(p) = parsed.port_range_min {
        norm.insert("port_range_min".into(), json!(p));
    }
    if let Some(p) = parsed.port_range_max {
        norm.insert("port_range_max".into(), json!(p));
    }
    if let Some(p) = &parsed.remote_ip_prefix {
        norm.insert("remote_ip_prefix".into(), json!(p));
    }
    if remote_managed.is_empty() {
        if let Some(g) = &parsed.remote_group_id {
            norm.insert("remote_group_id".into(), json!(g));
        }
    }
    Ok(RuleSpec {
        name: m.get("name").and_then(Value::as_str).map(String::from),
        description: m
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        body: norm,
        remote_managed,
    })
}

fn rules(
    c: &Ctx,
    m: &Map<String, Value>,
    key: &str,
    base: &str,
) -> Result<Vec<RuleSpec>, SpecError> {
    match m.get(key).filter(|v| !v.is_null()) {
        None => Ok(Vec::new()),
        Some(v) => list(c, v, &format!("{base}.{key}"))?
            .iter()
            .enumerate()
            .map(|(i, r)| rule(c, r, &format!("{base}.{key}[{i}]")))
            .collect(),
    }
}

const MANAGED_KEYS: &[&str] = &[
    "enabled",
    "additionalBastionSecurityGroupRules",
    "additionalControlPlaneSecurityGroupRules",
    "additionalWorkerSecurityGroupRules",
    "allNodesSecurityGroupRules",
    "additionalSecurityGroups",
    "useLegacyCalicoRules",
    // CAPO v1beta1 / v1beta2
    "controlPlaneNodesSecurityGroupRules",
    "workerNodesSecurityGroupRules",
    "clusterNodesSecurityGroupRules",
    "allowAllInClusterTraffic",
];

/// The calico rules of CAPO's API conversion, in the all-nodes group.
pub fn legacy_calico_rules() -> Vec<RuleSpec> {
    let c = Ctx { file: "(built-in)" };
    [
        json!({"name": "BGP (calico)", "description": "Created by cluster-api-provider-openstack API conversion - BGP (calico)",
               "direction": "ingress", "etherType": "IPv4", "protocol": "tcp", "portRangeMin": 179, "portRangeMax": 179,
               "remoteManagedGroups": ["controlplane", "worker"]}),
        json!({"name": "IP-in-IP (calico)", "description": "Created by cluster-api-provider-openstack API conversion - IP-in-IP (calico)",
               "direction": "ingress", "etherType": "IPv4", "protocol": "4", "remoteManagedGroups": ["controlplane", "worker"]}),
    ]
    .iter()
    .filter_map(|v| rule(&c, v, "calico").ok())
    .collect()
}

fn managed(c: &Ctx, spec: &Map<String, Value>) -> Result<Managed, SpecError> {
    let base = "spec.managedSecurityGroups";
    let top_allow_all = match spec.get("allowAllInClusterTraffic") {
        Some(v) => Some(boolean(c, v, "spec.allowAllInClusterTraffic")?),
        None => None,
    };
    let Some(v) = spec.get("managedSecurityGroups").filter(|v| !v.is_null()) else {
        return Ok(Managed::default());
    };
    // The legacy boolean form (v1alpha7 and the seed's "was a boolean"): converted the way
    // CAPO's API conversion does it.
    if let Some(on) = v.as_bool() {
        let allow_all = top_allow_all.unwrap_or(false);
        return Ok(Managed {
            enabled: on,
            allow_all_in_cluster_traffic: allow_all,
            use_legacy_calico_rules: on && !allow_all,
            ..Managed::default()
        });
    }
    if let Some(s) = v.as_str() {
        return Err(c.err(base, format!("{s:?} is neither true/false nor a mapping")));
    }
    let m = obj(c, v, base)?;
    known(c, m, base, MANAGED_KEYS)?;
    let enabled = match m.get("enabled") {
        // CAPO: the struct's presence means enabled.
        None => true,
        Some(v) => boolean(c, v, &format!("{base}.enabled"))?,
    };
    let mut all_nodes = rules(c, m, "allNodesSecurityGroupRules", base)?;
    all_nodes.extend(rules(c, m, "clusterNodesSecurityGroupRules", base)?);
    let mut cp = rules(c, m, "additionalControlPlaneSecurityGroupRules", base)?;
    cp.extend(rules(c, m, "controlPlaneNodesSecurityGroupRules", base)?);
    let mut worker = rules(c, m, "additionalWorkerSecurityGroupRules", base)?;
    worker.extend(rules(c, m, "workerNodesSecurityGroupRules", base)?);
    let mut additional = Vec::new();
    if let Some(v) = m.get("additionalSecurityGroups").filter(|v| !v.is_null()) {
        let p = format!("{base}.additionalSecurityGroups");
        for (i, g) in list(c, v, &p)?.iter().enumerate() {
            let gp = format!("{p}[{i}]");
            let gm = obj(c, g, &gp)?;
            known(c, gm, &gp, &["name", "description", "rules"])?;
            let name = string(
                c,
                gm.get("name")
                    .ok_or_else(|| c.err(&format!("{gp}.name"), "is required"))?,
                &format!("{gp}.name"),
            )?;
            if name.is_empty() || name.len() > 255 {
                return Err(c.err(
                    &format!("{gp}.name"),
                    format!("{name:?} must be 1-255 characters"),
                ));
            }
            if additional.iter().any(|a: &AdditionalGroup| a.name == name) {
                return Err(c.err(&format!("{gp}.name"), format!("{name:?} is named twice")));
            }
            additional.push(AdditionalGroup {
                description: gm
                    .get("description")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                rules: rules(c, gm, "rules", &gp)?,
                name,
            });
        }
    }
    let use_calico = match m.get("useLegacyCalicoRules") {
        Some(v) => boolean(c, v, &format!("{base}.useLegacyCalicoRules"))?,
        None => false,
    };
    let allow_all = match m.get("allowAllInClusterTraffic") {
        Some(v) => boolean(c, v, &format!("{base}.allowAllInClusterTraffic"))?,
        None => top_allow_all.unwrap_or(false),
    };
    Ok(Managed {
        enabled,
        bastion_rules: rules(c, m, "additionalBastionSecurityGroupRules", base)?,
        control_plane_rules: cp,
        worker_rules: worker,
        all_nodes_rules: all_nodes,
        additional_groups: additional,
        use_legacy_calico_rules: use_calico,
        allow_all_in_cluster_traffic: allow_all,
    })
}

fn cluster(c: &Ctx, doc: &Value) -> Result<Option<Cluster>, SpecError> {
    let m = obj(c, doc, "(document)")?;
    if m.get("kind").and_then(Value::as_str) != Some("OpenStackCluster") {
        return Ok(None);
    }
    let md = obj(c, m.get("metadata").unwrap_or(&Value::Null), "metadata")?;
    let name = string(c, md.get("name").unwrap_or(&Value::Null), "metadata.name")?;
    let namespace = match md.get("namespace") {
        Some(v) => string(c, v, "metadata.namespace")?,
        None => "default".to_string(),
    };
    for (p, v) in [("metadata.name", &name), ("metadata.namespace", &namespace)] {
        let ok = !v.is_empty()
            && v.len() <= 63
            && v.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !ok {
            return Err(c.err(
                p,
                format!("{v:?} is not a Kubernetes name (lower-case letters, digits, '-')"),
            ));
        }
    }
    let empty = Map::new();
    let spec = match m.get("spec") {
        Some(v) => obj(c, v, "spec")?,
        None => &empty,
    };
    let managed = managed(c, spec)?;
    let bastion = match spec.get("bastion").filter(|v| !v.is_null()) {
        Some(b) => {
            let bm = obj(c, b, "spec.bastion")?;
            match bm.get("enabled") {
                Some(v) => boolean(c, v, "spec.bastion.enabled")?,
                None => true,
            }
        }
        None => false,
    };
    let mut api_additional_ports = Vec::new();
    if let Some(lb) = spec.get("apiServerLoadBalancer").and_then(Value::as_object) {
        if let Some(ports) = lb.get("additionalPorts") {
            for (i, p) in list(c, ports, "spec.apiServerLoadBalancer.additionalPorts")?
                .iter()
                .enumerate()
            {
                let path = format!("spec.apiServerLoadBalancer.additionalPorts[{i}]");
                let n = port(c, p, &path)?;
                if n == 0 {
                    return Err(c.err(&path, "0 is not a port"));
                }
                api_additional_ports.push(n as u16);
            }
        }
    }
    let mut node_cidrs = Vec::new();
    let subnets = spec
        .get("managedSubnets")
        .map(|v| ("spec.managedSubnets", v))
        .into_iter()
        .chain(
            m.get("status")
                .and_then(|s| s.get("network"))
                .and_then(|n| n.get("subnets"))
                .map(|v| ("status.network.subnets", v)),
        );
    for (p, v) in subnets {
        for (i, s) in list(c, v, p)?.iter().enumerate() {
            if let Some(cidr) = s.get("cidr").and_then(Value::as_str) {
                let (net, _) = palisade_model::rule::parse_prefix(cidr).map_err(|_| {
                    c.err(&format!("{p}[{i}].cidr"), format!("{cidr:?} is not a CIDR"))
                })?;
                if net.addr().is_ipv4() && !node_cidrs.contains(&net.trunc().to_string()) {
                    node_cidrs.push(net.trunc().to_string());
                }
            }
        }
    }
    Ok(Some(Cluster {
        namespace,
        name,
        managed,
        bastion,
        api_additional_ports,
        node_cidrs,
    }))
}

/// Every `OpenStackCluster` of a multi-document YAML text (other kinds are skipped).
pub fn parse(file: &str, text: &str) -> Result<Vec<Cluster>, SpecError> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(text).map_err(|e| SpecError {
        file: file.to_string(),
        path: "(document)".into(),
        message: format!("not valid YAML: {e}"),
    })?;
    let many = docs.len() > 1;
    let mut out = Vec::new();
    for (i, d) in docs.iter().enumerate() {
        if d.is_null() {
            continue;
        }
        let name = if many {
            format!("{file}[document {i}]")
        } else {
            file.to_string()
        };
        if let Some(c) = cluster(&Ctx { file: &name }, d)? {
            out.push(c);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(yaml: &str) -> Result<Cluster, SpecError> {
        let mut v = parse("t.yaml", yaml)?;
        assert_eq!(v.len(), 1);
        Ok(v.remove(0))
    }

    const HEAD: &str = "apiVersion: infrastructure.cluster.x-k8s.io/v1beta1\nkind: OpenStackCluster\nmetadata:\n  name: c1\n  namespace: ns\n";

    #[test]
    fn every_way_the_legacy_boolean_form_appears() {
        // v1alpha7: managed, narrow in-cluster rules → Calico rules kept via the all-nodes group.
        let c = one(&format!("{HEAD}spec:\n  managedSecurityGroups: true\n")).expect("true");
        assert!(
            c.managed.enabled
                && c.managed.use_legacy_calico_rules
                && !c.managed.allow_all_in_cluster_traffic
        );
        // Managed with allow-all: no Calico rules needed.
        let c = one(&format!(
            "{HEAD}spec:\n  managedSecurityGroups: true\n  allowAllInClusterTraffic: true\n"
        ))
        .expect("allow all");
        assert!(
            c.managed.enabled
                && !c.managed.use_legacy_calico_rules
                && c.managed.allow_all_in_cluster_traffic
        );
        // Explicitly not managed.
        let c = one(&format!("{HEAD}spec:\n  managedSecurityGroups: false\n")).expect("false");
        assert!(!c.managed.enabled);
        // Absent: not managed.
        let c = one(&format!("{HEAD}spec: {{}}\n")).expect("absent");
        assert!(!c.managed.enabled);
        // A string is neither form.
        let e =
            one(&format!("{HEAD}spec:\n  managedSecurityGroups: \"yes\"\n")).expect_err("string");
        assert_eq!(e.path, "spec.managedSecurityGroups");
    }

    #[test]
    fn capo_spellings_map_onto_the_seed_model() {
        // v1beta1: the struct's presence enables it; its lists have CAPO's names.
        let c = one(&format!(
            "{HEAD}spec:\n  managedSecurityGroups:\n    allowAllInClusterTraffic: true\n    allNodesSecurityGroupRules:\n      - {{name: a, direction: ingress, protocol: tcp, portRangeMin: 1, portRangeMax: 1}}\n    controlPlaneNodesSecurityGroupRules:\n      - {{name: b, direction: ingress, protocol: udp, portRangeMin: 2, portRangeMax: 2}}\n    workerNodesSecurityGroupRules:\n      - {{name: c, direction: ingress, etherType: IPv6, protocol: tcp, portRangeMin: 3, portRangeMax: 3, remoteManagedGroups: [controlplane, worker]}}\n"
        ))
        .expect("v1beta1");
        let m = &c.managed;
        assert!(m.enabled && m.allow_all_in_cluster_traffic);
        assert_eq!(
            (
                m.all_nodes_rules.len(),
                m.control_plane_rules.len(),
                m.worker_rules.len()
            ),
            (1, 1, 1)
        );
        assert_eq!(
            m.worker_rules[0].remote_managed,
            vec![Role::ControlPlane, Role::Worker]
        );
        assert_eq!(m.worker_rules[0].body["ethertype"], "IPv6");
        // v1beta2 renamed the all-nodes list.
        let c = one(&format!("{HEAD}spec:\n  managedSecurityGroups:\n    clusterNodesSecurityGroupRules:\n      - {{name: x, direction: egress}}\n")).expect("v1beta2");
        assert_eq!(c.managed.all_nodes_rules.len(), 1);
    }

    #[test]
    fn protocols_are_normalised_as_neutron_stores_them() {
        let c = one(&format!(
            "{HEAD}spec:\n  managedSecurityGroups:\n    allNodesSecurityGroupRules:\n      - {{direction: ingress, protocol: TCP, portRangeMin: 80, portRangeMax: 80}}\n      - {{direction: ingress, protocol: 4}}\n      - {{direction: ingress, remoteIPPrefix: 198.18.1.7/24}}\n"
        ))
        .expect("valid");
        let r = &c.managed.all_nodes_rules;
        assert_eq!(r[0].body["protocol"], "tcp");
        assert_eq!(
            r[1].body["protocol"], "4",
            "IP-in-IP stays the number 4 (the name 'ipip' is 94)"
        );
        assert_eq!(r[2].body["remote_ip_prefix"], "198.18.1.7/24");
    }

    #[test]
    fn errors_name_the_yaml_path_and_value() {
        let cases = [
            ("spec:\n  managedSecurityGroups:\n    additionalWorkerSecurityGroupRules:\n      - {direction: ingress, protocol: tcp, portRangeMin: 1, portRangeMax: 1}\n      - {direction: ingress, protocol: tcp, portRangeMin: 1, portRangeMax: 1}\n      - {direction: ingress, protocol: tcp, portRangeMin: 70000, portRangeMax: 70000}\n",
             "spec.managedSecurityGroups.additionalWorkerSecurityGroupRules[2].portRangeMin", "70000 is not a port"),
            ("spec:\n  managedSecurityGroups:\n    allNodesSecurityGroupRules:\n      - {direction: sideways}\n", "allNodesSecurityGroupRules[0].direction", "sideways"),
            ("spec:\n  managedSecurityGroups:\n    allNodesSecurityGroupRules:\n      - {direction: ingress, remoteManagedGroups: [everyone]}\n", "remoteManagedGroups[0]", "everyone"),
            ("spec:\n  managedSecurityGroups:\n    allNodesSecurityGroupRules:\n      - {direction: ingress, remoteIPPrefix: 10.0.0.0/8, remoteGroupID: abc}\n", "allNodesSecurityGroupRules[0]", "mutually exclusive"),
            ("spec:\n  managedSecurityGroups:\n    allNodesSecurityGroupRules:\n      - {direction: ingress, protocol: tcp, portRangeMin: 90, portRangeMax: 80}\n", "allNodesSecurityGroupRules[0]", "90"),
            ("spec:\n  managedSecurityGroups:\n    enabled: true\n    colour: blue\n", "spec.managedSecurityGroups.colour", "unknown field"),
            ("spec:\n  managedSecurityGroups:\n    additionalSecurityGroups:\n      - {name: a}\n      - {name: a}\n", "additionalSecurityGroups[1].name", "twice"),
            ("spec:\n  managedSecurityGroups:\n    allNodesSecurityGroupRules:\n      - {direction: ingress, remoteIPPrefix: 10.0.0.300/8}\n", "allNodesSecurityGroupRules[0].remoteIPPrefix", "10.0.0.300"),
        ];
        for (spec, path, word) in cases {
            let e = one(&format!("{HEAD}{spec}")).expect_err(spec).to_string();
            assert!(
                e.contains(path) && e.contains(word),
                "{spec}\n→ {e}\n(wanted {path}, {word})"
            );
        }
        let e = one("kind: OpenStackCluster\nmetadata:\n  name: Bad_Name\n")
            .expect_err("name")
            .to_string();
        assert!(e.contains("metadata.name") && e.contains("Bad_Name"), "{e}");
    }
}
