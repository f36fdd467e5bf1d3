//! The ruleset IR: what a host enforces, independent of how it is written down. The
//! renderer turns it into nftables text; `explain` evaluates packets against it.

use crate::state::{AddressGroup, Direction, EtherType, Port, SecurityGroup, State};
use ipnet::IpNet;
use palisade_model::rule::stored_protocol_number;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;

/// IP family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// IPv4
    V4,
    /// IPv6
    V6,
}

impl Family {
    /// The family of an address.
    pub fn of(a: &IpAddr) -> Family {
        if a.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        }
    }
    /// The family of a prefix.
    pub fn of_net(n: &IpNet) -> Family {
        Family::of(&n.addr())
    }
    /// `v4` / `v6` in names.
    pub fn suffix(self) -> &'static str {
        match self {
            Family::V4 => "v4",
            Family::V6 => "v6",
        }
    }
}

/// What a rule's remote end must be.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Remote {
    /// anywhere
    Any,
    /// one prefix (the network form of remote_ip_prefix)
    Net(IpNet),
    /// a named set (remote group or address group members)
    Set(String),
}

/// One allow rule of a group chain.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct IrRule {
    /// The API rule id (every rendered rule carries it as a comment).
    pub id: String,
    /// Family (the rule's ethertype).
    pub family: Family,
    /// IP protocol number; None = any.
    pub proto: Option<u8>,
    /// Destination port range (port protocols).
    pub dports: Option<(u16, u16)>,
    /// ICMP type and optional code (ICMP/ICMPv6).
    pub icmp: Option<(u8, Option<u8>)>,
    /// Source (ingress) or destination (egress).
    pub remote: Remote,
}

/// A named address set.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct IrSet {
    /// Its family.
    pub family: Family,
    /// Holds prefixes, not only hosts (an interval set).
    pub interval: bool,
    /// Members.
    pub elements: BTreeSet<IpNet>,
}

/// What one port gets.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PortProgram {
    /// Port id.
    pub id: String,
    /// Interface on this host.
    pub ifname: String,
    /// Stateful (all its groups are).
    pub stateful: bool,
    /// Its groups, in the order given.
    pub groups: Vec<String>,
    /// MACs it may send from.
    pub macs: BTreeSet<String>,
    /// Source addresses it may send from, by family (fixed IPs, pairs, IPv6 link-local).
    pub sources: BTreeMap<Family, BTreeSet<IpNet>>,
    /// Any fixed IP at all (without one, only the MAC is checked, as Neutron does).
    pub has_addresses: bool,
    /// Log its drops to this NFLOG group (rate-limited), for the droptailer.
    pub log_group: Option<u16>,
}

/// A group chain's key: (group id, direction).
pub type ChainKey = (String, Direction);

/// The whole program for one host. Its pieces are shared (`Arc`): a [`crate::HostView`]
/// replaces only the pieces a change touches, and comparing two rulesets that share a piece
/// costs a pointer comparison.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ruleset {
    /// Named sets.
    pub sets: BTreeMap<String, Arc<IrSet>>,
    /// Group chains: (group id, direction) → rules.
    pub chains: BTreeMap<ChainKey, Arc<Vec<IrRule>>>,
    /// Filtered ports on this host, by id.
    pub ports: BTreeMap<String, Arc<PortProgram>>,
}

/// Name of a group's chain.
pub fn chain_name(sg: &str, d: Direction) -> String {
    match d {
        Direction::Ingress => format!("sg-{sg}-in"),
        Direction::Egress => format!("sg-{sg}-out"),
    }
}

/// Failures of compilation.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CompileError {
    /// A port names a group that is not known.
    #[error("{path}: security group {group} of port {port} is not in the state")]
    UnknownGroup {
        /// where: `ports[3].security_groups[1]` in a state file
        path: String,
        /// port id
        port: String,
        /// missing group
        group: String,
    },
    /// Two ports on the host share an interface name.
    #[error("ports {a} and {b} both use interface {ifname} on this host")]
    DuplicateInterface {
        /// interface
        ifname: String,
        /// first port
        a: String,
        /// second port
        b: String,
    },
    /// A port's interface name is not one Linux (and nft) accepts.
    #[error(
        "port {port}: interface name {ifname:?} is not 1–15 letters, digits, '-', '_', '.' or '@'"
    )]
    BadInterface {
        /// port id
        port: String,
        /// the name
        ifname: String,
    },
    /// A group still used by ports of this host cannot go.
    #[error("security group {group} is still used by port {port} on this host")]
    GroupInUse {
        /// the group
        group: String,
        /// one port using it
        port: String,
    },
}

/// The EUI-64 link-local address of a MAC.
pub fn link_local(mac: &str) -> Option<Ipv6Addr> {
    let b: Vec<u8> = mac
        .split(':')
        .filter_map(|p| u8::from_str_radix(p, 16).ok())
        .collect();
    if b.len() != 6 {
        return None;
    }
    Some(Ipv6Addr::new(
        0xfe80,
        0,
        0,
        0,
        u16::from_be_bytes([b[0] ^ 0x02, b[1]]),
        u16::from_be_bytes([b[2], 0xff]),
        u16::from_be_bytes([0xfe, b[3]]),
        u16::from_be_bytes([b[4], b[5]]),
    ))
}

/// Whether a port is filtered at all (port security on, not a `network:` port).
pub fn filtered(p: &Port) -> bool {
    p.port_security_enabled && !p.device_owner.starts_with("network:")
}

/// Compiles the view of `host`: its filtered ports, their groups' rules, and the members of
/// every group and address group those rules name (members on any host).
pub fn compile(state: &State, host: &str) -> Result<Ruleset, CompileError> {
    crate::view::HostView::new(state, host).map(crate::view::HostView::into_ruleset)
}

/// What one port gets; `stateful` is whether all its groups are.
pub fn port_program(p: &Port, stateful: bool) -> PortProgram {
    let mut macs: BTreeSet<String> = BTreeSet::from([p.mac_address.clone()]);
    let mut sources: BTreeMap<Family, BTreeSet<IpNet>> = BTreeMap::new();
    for f in &p.fixed_ips {
        sources
            .entry(Family::of(&f.ip_address))
            .or_default()
            .insert(IpNet::from(f.ip_address));
    }
    for pair in &p.allowed_address_pairs {
        sources
            .entry(Family::of_net(&pair.ip_address))
            .or_default()
            .insert(pair.ip_address.trunc());
        if let Some(m) = &pair.mac_address {
            macs.insert(m.clone());
        }
    }
    for m in &macs {
        if let Some(ll) = link_local(m) {
            sources
                .entry(Family::V6)
                .or_default()
                .insert(IpNet::from(IpAddr::V6(ll)));
        }
    }
    PortProgram {
        id: p.id.clone(),
        ifname: p.ifname(),
        stateful,
        groups: p.security_groups.clone(),
        macs,
        sources,
        has_addresses: !p.fixed_ips.is_empty(),
        log_group: None,
    }
}

/// Where a named member set takes its elements from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetSource {
    /// `rg-<id>-v4|v6`: the members of a security group
    Group(String, Family),
    /// `ag-<id>-v4|v6`: the addresses of an address group
    AddressGroup(String, Family),
}

impl SetSource {
    /// The set's name.
    pub fn name(&self) -> String {
        match self {
            SetSource::Group(id, f) => format!("rg-{id}-{}", f.suffix()),
            SetSource::AddressGroup(id, f) => format!("ag-{id}-{}", f.suffix()),
        }
    }
    /// The source a set name stands for.
    pub fn of_name(name: &str) -> Option<SetSource> {
        let (rest, family) = if let Some(r) = name.strip_suffix("-v4") {
            (r, Family::V4)
        } else {
            (name.strip_suffix("-v6")?, Family::V6)
        };
        if let Some(id) = rest.strip_prefix("rg-") {
            Some(SetSource::Group(id.to_string(), family))
        } else {
            rest.strip_prefix("ag-")
                .map(|id| SetSource::AddressGroup(id.to_string(), family))
        }
    }
}

/// A group's chains: (ingress rules, egress rules). Sets are named, not filled, here.
pub fn group_rules(sg: &SecurityGroup) -> (Vec<IrRule>, Vec<IrRule>) {
    let (mut ingress, mut egress) = (Vec::new(), Vec::new());
    for r in &sg.security_group_rules {
        let family = match r.ethertype {
            EtherType::IPv4 => Family::V4,
            EtherType::IPv6 => Family::V6,
        };
        let proto = stored_protocol_number(r.protocol.as_deref()).filter(|p| *p != 0);
        let is_icmp = matches!(
            (family, proto),
            (Family::V4, Some(1)) | (Family::V6, Some(58))
        );
        let is_port_proto = matches!(proto, Some(6 | 17 | 33 | 132 | 136));
        let (dports, icmp) = match (r.port_range_min, r.port_range_max) {
            (Some(a), Some(b)) if is_port_proto => (Some((a as u16, b as u16)), None),
            (Some(t), code) if is_icmp => (None, Some((t as u8, code.map(|c| c as u8)))),
            _ => (None, None),
        };
        let remote = if let Some(net) = r.remote_ip_prefix {
            if net.prefix_len() == 0 {
                Remote::Any
            } else {
                Remote::Net(net.trunc())
            }
        } else if let Some(rg) = &r.remote_group_id {
            Remote::Set(SetSource::Group(rg.clone(), family).name())
        } else if let Some(ag) = &r.remote_address_group_id {
            Remote::Set(SetSource::AddressGroup(ag.clone(), family).name())
        } else {
            Remote::Any
        };
        // A prefix of the other family can never match: Neutron refuses it at the API.
        if matches!(&remote, Remote::Net(n) if Family::of_net(n) != family) {
            continue;
        }
        let rule = IrRule {
            id: r.id.clone(),
            family,
            proto,
            dports,
            icmp,
            remote,
        };
        match r.direction {
            Direction::Ingress => ingress.push(rule),
            Direction::Egress => egress.push(rule),
        }
    }
    (ingress, egress)
}

/// Members of a remote group: fixed IPs and allowed address pairs of the given ports (the
/// group's ports on any host: Neutron's `sg_member_ips`).
pub fn member_set<'a>(ports: impl Iterator<Item = &'a Port>, family: Family) -> IrSet {
    let mut elements = BTreeSet::new();
    for p in ports {
        for f in &p.fixed_ips {
            if Family::of(&f.ip_address) == family {
                elements.insert(IpNet::from(f.ip_address));
            }
        }
        for pair in &p.allowed_address_pairs {
            if Family::of_net(&pair.ip_address) == family {
                elements.insert(pair.ip_address.trunc());
            }
        }
    }
    let interval = elements
        .iter()
        .any(|n: &IpNet| n.prefix_len() < n.max_prefix_len());
    IrSet {
        family,
        interval,
        elements,
    }
}

/// An address group's addresses of one family (always an interval set: they are CIDRs).
pub fn address_set(ag: Option<&AddressGroup>, family: Family) -> IrSet {
    IrSet {
        family,
        interval: true,
        elements: ag
            .into_iter()
            .flat_map(|a| a.addresses.iter())
            .filter(|n| Family::of_net(n) == family)
            .map(IpNet::trunc)
            .collect(),
    }
}

impl Ruleset {
    /// The IR as JSON (`palisade compile --format json`): sets, group chains keyed
    /// `sg-<id>-in|out`, and port programs.
    pub fn to_json(&self) -> serde_json::Value {
        let chains: serde_json::Map<String, serde_json::Value> = self
            .chains
            .iter()
            .map(|((sg, d), rules)| {
                (
                    chain_name(sg, *d),
                    serde_json::to_value(&**rules).unwrap_or_default(),
                )
            })
            .collect();
        serde_json::json!({"sets": self.sets, "chains": chains, "ports": self.ports})
    }
}
