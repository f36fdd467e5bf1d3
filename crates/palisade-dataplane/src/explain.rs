//! `explain`: why is this packet allowed or dropped, and by which rule. It evaluates the
//! same IR the renderer writes, step by step in the order of the rendered chains, so its
//! verdict is what the kernel does (the differential test holds it to that).

use crate::ir::{chain_name, Family, IrRule, Remote, Ruleset};
use crate::state::Direction;
use std::net::IpAddr;

/// A new connection's first packet, seen from one port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// The port.
    pub port: String,
    /// `Ingress`: to the port; `Egress`: from it.
    pub direction: Direction,
    /// The other end (source for ingress, destination for egress).
    pub remote: IpAddr,
    /// The port's own address in the packet (destination for ingress, source for egress).
    pub local: IpAddr,
    /// Source MAC for egress (None = the port's own).
    pub src_mac: Option<String>,
    /// IP protocol number.
    pub proto: u8,
    /// Source port (TCP/UDP/…).
    pub sport: u16,
    /// Destination port (TCP/UDP/…).
    pub dport: u16,
    /// ICMP type/code (ICMP, ICMPv6).
    pub icmp: Option<(u8, u8)>,
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Allowed or dropped.
    pub allowed: bool,
    /// The group whose rule decided (None for built-in steps).
    pub group: Option<String>,
    /// The rule id that decided (None for built-in steps).
    pub rule: Option<String>,
    /// Why, in words ("default drop", "spoofed source address", "rule …").
    pub reason: String,
}

fn builtin(allowed: bool, reason: &str) -> Verdict {
    Verdict {
        allowed,
        group: None,
        rule: None,
        reason: reason.to_string(),
    }
}

const PORT_PROTOS: [u8; 5] = [6, 17, 33, 132, 136];

fn rule_matches(rs: &Ruleset, r: &IrRule, p: &Probe) -> bool {
    if Family::of(&p.remote) != r.family {
        return false;
    }
    let remote_ok = match &r.remote {
        Remote::Any => true,
        Remote::Net(n) => n.contains(&p.remote),
        Remote::Set(s) => rs
            .sets
            .get(s)
            .is_some_and(|set| set.elements.iter().any(|n| n.contains(&p.remote))),
    };
    if !remote_ok {
        return false;
    }
    if let Some((t, code)) = r.icmp {
        let want = if r.family == Family::V4 { 1 } else { 58 };
        return p.proto == want
            && p.icmp
                .is_some_and(|(pt, pc)| pt == t && code.is_none_or(|c| c == pc));
    }
    match (r.proto, r.dports) {
        (None, _) => true,
        (Some(proto), Some((a, b))) => {
            proto == p.proto && PORT_PROTOS.contains(&p.proto) && (a..=b).contains(&p.dport)
        }
        (Some(proto), None) => proto == p.proto,
    }
}

/// Evaluates `probe` on `rs`. `None` when the port is not filtered on this host (no port
/// security, a `network:` port, or not bound here): the host lets such traffic through.
pub fn explain(rs: &Ruleset, probe: &Probe) -> Option<Verdict> {
    let port = rs.ports.get(&probe.port)?;
    let fam = Family::of(&probe.remote);
    let udp = probe.proto == 17;
    let icmp6_type = if probe.proto == 58 {
        probe.icmp.map(|(t, _)| t)
    } else {
        None
    };
    match probe.direction {
        Direction::Egress => {
            let mac = probe
                .src_mac
                .clone()
                .unwrap_or_else(|| port.macs.iter().next().cloned().unwrap_or_default());
            if !port.macs.contains(&mac.to_ascii_lowercase()) {
                return Some(builtin(false, "spoofed source mac"));
            }
            if port.has_addresses || port.sources.values().any(|s| !s.is_empty()) {
                let srcs = port.sources.get(&fam).filter(|s| !s.is_empty());
                let spoofed = match srcs {
                    Some(s) if port.has_addresses || fam == Family::V6 => {
                        !s.iter().any(|n| n.contains(&probe.local))
                    }
                    _ => port.has_addresses,
                };
                if spoofed {
                    return Some(builtin(false, "spoofed source address"));
                }
            }
            if udp && (probe.sport == 67 || probe.sport == 547) {
                return Some(builtin(false, "dhcp server on a port"));
            }
            if icmp6_type == Some(134) {
                return Some(builtin(false, "router advertisement from a port"));
            }
            if probe.proto == 58 {
                return Some(builtin(true, "icmpv6 from a port"));
            }
            if udp
                && ((probe.sport, probe.dport) == (68, 67)
                    || (probe.sport, probe.dport) == (546, 547))
            {
                return Some(builtin(true, "dhcp client"));
            }
        }
        Direction::Ingress => {
            if icmp6_type.is_some_and(|t| [130, 134, 135, 136].contains(&t)) {
                return Some(builtin(true, "ipv6 neighbour discovery"));
            }
            if udp
                && ((probe.sport, probe.dport) == (67, 68)
                    || (probe.sport, probe.dport) == (547, 546))
            {
                return Some(builtin(true, "dhcp"));
            }
        }
    }
    for g in &port.groups {
        let Some(rules) = rs.chains.get(&(g.clone(), probe.direction)) else {
            continue;
        };
        if let Some(r) = rules.iter().find(|r| rule_matches(rs, r, probe)) {
            return Some(Verdict {
                allowed: true,
                group: Some(g.clone()),
                rule: Some(r.id.clone()),
                reason: format!("rule {} in chain {}", r.id, chain_name(g, probe.direction)),
            });
        }
    }
    Some(builtin(false, "default drop"))
}
