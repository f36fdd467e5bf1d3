//! The firewall table: what a metal-stack style firewall enforces on its forward path.
//! Base rules (conntrack, ICMP), cluster-wide network policies (CWNP: allowed CIDRs and
//! ports, ingress from outside and egress from the cluster's networks) and exposed
//! services, in `table inet palisade_fw` with a forward chain whose policy is drop.
//!
//! The spec's shape follows metal-stack's `ClusterwideNetworkPolicy` (`ingress[].from[]`,
//! `egress[].to[]`, IPBlock `cidr` + `except`, ports `protocol` TCP|UDP, `port`, `endPort`)
//! and its `Firewall.spec.internalPrefixes`; every error names its key path.

use ipnet::IpNet;
use serde::Deserialize;
use std::fmt::Write as _;
use std::net::IpAddr;

/// The firewall's own table.
pub const FW_TABLE: &str = "palisade_fw";

/// An IPBlock: a CIDR and the parts of it that are excluded.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpBlock {
    /// the allowed network
    #[serde(deserialize_with = "crate::state::net")]
    pub cidr: IpNet,
    /// networks inside `cidr` that are not allowed
    #[serde(default, deserialize_with = "crate::state::nets")]
    pub except: Vec<IpNet>,
}

/// Transport protocol of a policy port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum Protocol {
    /// TCP (the default)
    #[default]
    TCP,
    /// UDP
    UDP,
}

/// A port or port range.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PolicyPort {
    /// TCP or UDP (default TCP)
    #[serde(default)]
    pub protocol: Protocol,
    /// first port, 1–65535
    pub port: u16,
    /// last port of a range (≥ port)
    #[serde(default)]
    pub end_port: Option<u16>,
}

/// An ingress rule: traffic from these blocks to these ports.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngressRule {
    /// sources
    #[serde(default)]
    pub from: Vec<IpBlock>,
    /// destination ports (none: every port)
    #[serde(default)]
    pub ports: Vec<PolicyPort>,
}

/// An egress rule: traffic from the cluster's networks to these blocks and ports.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EgressRule {
    /// destinations
    #[serde(default)]
    pub to: Vec<IpBlock>,
    /// destination ports (none: every port)
    #[serde(default)]
    pub ports: Vec<PolicyPort>,
}

/// Cluster-wide network policies (the union of every CWNP's spec).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cwnp {
    /// ingress rules
    #[serde(default)]
    pub ingress: Vec<IngressRule>,
    /// egress rules
    #[serde(default)]
    pub egress: Vec<EgressRule>,
}

/// An exposed service (a load balancer address and port, reachable from `sources`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Service {
    /// name (in the rule's comment)
    pub name: String,
    /// the service's address
    #[serde(deserialize_with = "crate::state::ip")]
    pub address: IpAddr,
    /// TCP or UDP (default TCP)
    #[serde(default)]
    pub protocol: Protocol,
    /// port
    pub port: u16,
    /// last port of a range
    #[serde(default)]
    pub end_port: Option<u16>,
    /// allowed sources (none: anywhere)
    #[serde(default, deserialize_with = "crate::state::nets")]
    pub sources: Vec<IpNet>,
}

/// The firewall's base settings.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FirewallBase {
    /// where self-update fetches the binary (accepted; self-update is not built yet)
    #[serde(default, rename = "controllerURL")]
    pub controller_url: Option<String>,
    /// the cluster's own networks: egress rules allow traffic from these
    #[serde(default, deserialize_with = "crate::state::nets")]
    pub internal_prefixes: Vec<IpNet>,
    /// echo requests per second let through (the rest dropped; metal-stack's 10)
    #[serde(default = "ten")]
    pub icmp_rate: u32,
}

fn ten() -> u32 {
    10
}

/// Everything the firewall table is rendered from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FirewallSpec {
    /// base settings (from the `firewall` controller)
    pub base: FirewallBase,
    /// policies (from the `cwnp` controller)
    pub cwnp: Cwnp,
    /// services (from the `service` controller)
    pub services: Vec<Service>,
    /// log drops to NFLOG group (the droptailer), rate-limited
    pub log_group: Option<u16>,
}

/// A semantic error in a spec that parsed: (key path, message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct SpecError {
    /// e.g. `cwnp.ingress[0].ports[1].endPort`
    pub path: String,
    /// what is wrong, naming the value
    pub message: String,
}

fn check_ports(ports: &[PolicyPort], path: &str) -> Result<(), SpecError> {
    for (i, p) in ports.iter().enumerate() {
        if p.port == 0 {
            return Err(SpecError {
                path: format!("{path}[{i}].port"),
                message: "0 is not a port (1–65535)".into(),
            });
        }
        if let Some(e) = p.end_port.filter(|e| *e < p.port) {
            return Err(SpecError {
                path: format!("{path}[{i}].endPort"),
                message: format!("{e} is below port {}", p.port),
            });
        }
    }
    Ok(())
}

fn check_blocks(blocks: &[IpBlock], path: &str) -> Result<(), SpecError> {
    for (i, b) in blocks.iter().enumerate() {
        for (j, e) in b.except.iter().enumerate() {
            if !b.cidr.trunc().contains(e) {
                return Err(SpecError {
                    path: format!("{path}[{i}].except[{j}]"),
                    message: format!("\"{e}\" is not inside cidr \"{}\"", b.cidr),
                });
            }
        }
    }
    Ok(())
}

impl Cwnp {
    /// Checks what types cannot: ports in range, excepts inside their CIDR.
    pub fn validate(&self, prefix: &str) -> Result<(), SpecError> {
        for (i, r) in self.ingress.iter().enumerate() {
            check_blocks(&r.from, &format!("{prefix}ingress[{i}].from"))?;
            check_ports(&r.ports, &format!("{prefix}ingress[{i}].ports"))?;
        }
        for (i, r) in self.egress.iter().enumerate() {
            check_blocks(&r.to, &format!("{prefix}egress[{i}].to"))?;
            check_ports(&r.ports, &format!("{prefix}egress[{i}].ports"))?;
        }
        Ok(())
    }
}

/// Checks services: ports in range.
pub fn validate_services(services: &[Service], prefix: &str) -> Result<(), SpecError> {
    for (i, s) in services.iter().enumerate() {
        let p = PolicyPort {
            protocol: s.protocol,
            port: s.port,
            end_port: s.end_port,
        };
        check_ports(std::slice::from_ref(&p), &format!("{prefix}[{i}]")).map_err(|e| {
            SpecError {
                path: e
                    .path
                    .replace(&format!("{prefix}[{i}][0]"), &format!("{prefix}[{i}]")),
                message: e.message,
            }
        })?;
    }
    Ok(())
}

fn proto_kw(p: Protocol) -> &'static str {
    match p {
        Protocol::TCP => "tcp",
        Protocol::UDP => "udp",
    }
}

fn port_text(p: &PolicyPort) -> String {
    match p.end_port {
        Some(e) if e != p.port => format!("{}-{e}", p.port),
        _ => p.port.to_string(),
    }
}

/// `ip`/`ip6` and the blocks of one family.
fn by_family(blocks: &[IpBlock]) -> Vec<(&'static str, Vec<&IpBlock>)> {
    let mut out = Vec::new();
    for (kw, v4) in [("ip", true), ("ip6", false)] {
        let fam: Vec<&IpBlock> = blocks
            .iter()
            .filter(|b| b.cidr.addr().is_ipv4() == v4)
            .collect();
        if !fam.is_empty() {
            out.push((kw, fam));
        }
    }
    out
}

fn addr_match(kw: &str, dir: &str, blocks: &[&IpBlock]) -> String {
    let mut out = String::new();
    let except: Vec<String> = blocks
        .iter()
        .flat_map(|b| b.except.iter())
        .map(|n| n.trunc().to_string())
        .collect();
    if !except.is_empty() {
        let _ = write!(out, "{kw} {dir} != {{ {} }} ", except.join(", "));
    }
    let any = blocks.iter().any(|b| b.cidr.prefix_len() == 0);
    if !any {
        let cidrs: Vec<String> = blocks.iter().map(|b| b.cidr.trunc().to_string()).collect();
        let _ = write!(out, "{kw} {dir} {{ {} }} ", cidrs.join(", "));
    } else if except.is_empty() {
        // Anywhere of this family.
        let _ = write!(
            out,
            "meta nfproto {} ",
            if kw == "ip" { "ipv4" } else { "ipv6" }
        );
    }
    out
}

/// Ports grouped by protocol: `tcp dport { 80, 443 }`; no ports: one rule for any protocol.
fn port_matches(ports: &[PolicyPort]) -> Vec<(String, String)> {
    if ports.is_empty() {
        return vec![(String::new(), "any".into())];
    }
    let mut out = Vec::new();
    for proto in [Protocol::TCP, Protocol::UDP] {
        let list: Vec<String> = ports
            .iter()
            .filter(|p| p.protocol == proto)
            .map(port_text)
            .collect();
        if !list.is_empty() {
            out.push((
                format!("{} dport {{ {} }} ", proto_kw(proto), list.join(", ")),
                proto_kw(proto).to_string(),
            ));
        }
    }
    out
}

/// The lines of the forward chain, after its header.
pub fn forward_rules(spec: &FirewallSpec) -> Vec<String> {
    let mut l = vec![
        "ct state established,related accept".to_string(),
        "ct state invalid drop".to_string(),
        format!(
            "icmp type echo-request limit rate over {}/second burst 4 packets drop",
            spec.base.icmp_rate.max(1)
        ),
        "icmp type { echo-request, echo-reply, destination-unreachable, time-exceeded, parameter-problem } accept".into(),
        "icmpv6 type { echo-request, echo-reply, destination-unreachable, packet-too-big, time-exceeded, parameter-problem, nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit, nd-router-advert } accept".into(),
    ];
    for (i, r) in spec.cwnp.ingress.iter().enumerate() {
        let fams = if r.from.is_empty() {
            vec![("ip", vec![]), ("ip6", vec![])]
        } else {
            by_family(&r.from)
        };
        for (kw, blocks) in &fams {
            let src = if blocks.is_empty() {
                format!(
                    "meta nfproto {} ",
                    if *kw == "ip" { "ipv4" } else { "ipv6" }
                )
            } else {
                addr_match(kw, "saddr", blocks)
            };
            for (ports, proto) in port_matches(&r.ports) {
                l.push(format!(
                    "{src}{ports}counter accept comment \"cwnp ingress[{i}] {proto}\""
                ));
            }
        }
    }
    for (i, r) in spec.cwnp.egress.iter().enumerate() {
        let fams = if r.to.is_empty() {
            vec![("ip", vec![]), ("ip6", vec![])]
        } else {
            by_family(&r.to)
        };
        for (kw, blocks) in &fams {
            let internal: Vec<String> = spec
                .base
                .internal_prefixes
                .iter()
                .filter(|n| n.addr().is_ipv4() == (*kw == "ip"))
                .map(|n| n.trunc().to_string())
                .collect();
            // Egress is traffic from the cluster's own networks: none of this family, no rule.
            if internal.is_empty() {
                continue;
            }
            let dst = if blocks.is_empty() {
                String::new()
            } else {
                addr_match(kw, "daddr", blocks)
            };
            for (ports, proto) in port_matches(&r.ports) {
                l.push(format!(
                    "{kw} saddr {{ {} }} {dst}{ports}counter accept comment \"cwnp egress[{i}] {proto}\"",
                    internal.join(", ")
                ));
            }
        }
    }
    for s in &spec.services {
        let kw = if s.address.is_ipv4() { "ip" } else { "ip6" };
        let srcs: Vec<String> = s
            .sources
            .iter()
            .filter(|n| n.addr().is_ipv4() == s.address.is_ipv4())
            .map(|n| n.trunc().to_string())
            .collect();
        if !s.sources.is_empty() && srcs.is_empty() {
            continue;
        }
        let src = if srcs.is_empty() {
            String::new()
        } else {
            format!("{kw} saddr {{ {} }} ", srcs.join(", "))
        };
        let p = PolicyPort {
            protocol: s.protocol,
            port: s.port,
            end_port: s.end_port,
        };
        l.push(format!(
            "{src}{kw} daddr {} {} dport {} counter accept comment \"service {}\"",
            s.address,
            proto_kw(s.protocol),
            port_text(&p),
            s.name.replace('"', "'")
        ));
    }
    if let Some(g) = spec.log_group {
        l.push(format!(
            "limit rate 10/second burst 20 packets log group {g} prefix \"palisade-fw:forward:drop\""
        ));
    }
    l.push("counter comment \"firewall drop\"".into());
    l
}

/// The firewall table as one `nft -f` script that replaces any previous one atomically.
pub fn render_firewall(spec: &FirewallSpec) -> String {
    let mut out =
        format!("table inet {FW_TABLE}\ndelete table inet {FW_TABLE}\ntable inet {FW_TABLE} {{\n");
    out.push_str("\tchain forward {\n\t\ttype filter hook forward priority 1; policy drop;\n");
    for r in forward_rules(spec) {
        let _ = writeln!(out, "\t\t{r}");
    }
    out.push_str("\t}\n}\n");
    out
}

/// The script that removes the firewall table (when the controller is switched off).
pub fn remove_firewall() -> String {
    format!("table inet {FW_TABLE}\ndelete table inet {FW_TABLE}\n")
}

/// A firewall's document on the server (`PUT /v2.0/palisade/firewalls/<name>`): the same
/// keys as the agent's static source.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirewallDoc {
    /// base settings
    #[serde(default)]
    pub firewall: FirewallBase,
    /// policies
    #[serde(default)]
    pub cwnp: Cwnp,
    /// exposed services
    #[serde(default)]
    pub services: Vec<Service>,
}

impl FirewallDoc {
    /// Parses and checks a document; errors name the key path and the value.
    pub fn parse(v: serde_json::Value) -> Result<FirewallDoc, SpecError> {
        let doc: FirewallDoc = serde_path_to_error::deserialize(v).map_err(|e| SpecError {
            path: e.path().to_string(),
            message: e.inner().to_string(),
        })?;
        doc.cwnp.validate("cwnp.")?;
        validate_services(&doc.services, "services")?;
        Ok(doc)
    }
}
