//! IR → nftables text: one `inet palisade` table, deterministic (same IR, same bytes).
//!
//! Layout: named sets for remote groups and address groups; one chain per group and
//! direction, shared by every port in the group; one chain per port and direction
//! (anti-spoofing, Neutron's DHCP/ND allowances, conntrack shortcuts, jumps to its groups,
//! default drop); interface-keyed verdict maps dispatching to the port chains. Egress and
//! ingress are checked by two base chains at different priorities on the same hook, so a
//! packet between two local ports passes the sender's egress and the receiver's ingress.

use crate::ir::{chain_name, Family, IrRule, PortProgram, Remote, Ruleset};
use crate::state::Direction;
use std::fmt::Write;

/// The table's name.
pub const TABLE: &str = "palisade";

fn addr_kw(f: Family) -> &'static str {
    match f {
        Family::V4 => "ip",
        Family::V6 => "ip6",
    }
}

fn nfproto(f: Family) -> &'static str {
    match f {
        Family::V4 => "ipv4",
        Family::V6 => "ipv6",
    }
}

/// One group rule as nft text (without indentation).
pub fn rule_text(r: &IrRule, d: Direction) -> String {
    let mut parts: Vec<String> = Vec::new();
    let dir = match d {
        Direction::Ingress => "saddr",
        Direction::Egress => "daddr",
    };
    match &r.remote {
        Remote::Any => parts.push(format!("meta nfproto {}", nfproto(r.family))),
        Remote::Net(n) => parts.push(format!("{} {dir} {n}", addr_kw(r.family))),
        Remote::Set(s) => parts.push(format!("{} {dir} @{s}", addr_kw(r.family))),
    }
    match (r.icmp, r.proto, r.dports) {
        (Some((t, code)), _, _) => {
            let kw = if r.family == Family::V4 {
                "icmp"
            } else {
                "icmpv6"
            };
            parts.push(format!("{kw} type {t}"));
            if let Some(c) = code {
                parts.push(format!("{kw} code {c}"));
            }
        }
        (None, Some(p), Some((a, b))) => {
            parts.push(format!("meta l4proto {p}"));
            parts.push(if a == b {
                format!("th dport {a}")
            } else {
                format!("th dport {a}-{b}")
            });
        }
        (None, Some(p), None) => parts.push(format!("meta l4proto {p}")),
        (None, None, _) => {}
    }
    parts.push(format!("accept comment \"{}\"", r.id));
    parts.join(" ")
}

fn port_chain(out: &mut String, p: &PortProgram, d: Direction) {
    let name = match d {
        Direction::Ingress => format!("port-{}-in", p.id),
        Direction::Egress => format!("port-{}-out", p.id),
    };
    let _ = writeln!(out, "\tchain {name} {{");
    let mut line = |s: String| {
        let _ = writeln!(out, "\t\t{s}");
    };
    match d {
        Direction::Egress => {
            // Neutron's fixed egress head: DHCP discover and DAD/MLD before addresses exist.
            line("ip saddr 0.0.0.0 ip daddr 255.255.255.255 udp sport 68 udp dport 67 accept comment \"dhcp discover\"".into());
            line(
                "ip6 saddr :: icmpv6 type { 131, 135, 143 } accept comment \"ipv6 dad and mld\""
                    .into(),
            );
            let macs: Vec<&str> = p.macs.iter().map(String::as_str).collect();
            line(format!(
                "ether saddr != {{ {} }} drop comment \"spoofed source mac\"",
                macs.join(", ")
            ));
            if p.has_addresses || p.sources.values().any(|s| !s.is_empty()) {
                for f in [Family::V4, Family::V6] {
                    match p.sources.get(&f).filter(|s| !s.is_empty()) {
                        Some(srcs) if p.has_addresses || f == Family::V6 => {
                            let list: Vec<String> = srcs.iter().map(|n| n.to_string()).collect();
                            line(format!("meta nfproto {} {} saddr != {{ {} }} drop comment \"spoofed source address\"", nfproto(f), addr_kw(f), list.join(", ")));
                        }
                        _ if p.has_addresses => line(format!(
                            "meta nfproto {} drop comment \"spoofed source address\"",
                            nfproto(f)
                        )),
                        _ => {}
                    }
                }
            }
            line("udp sport { 67, 547 } drop comment \"dhcp server on a port\"".into());
            line("icmpv6 type 134 drop comment \"router advertisement from a port\"".into());
            line("meta l4proto 58 accept comment \"icmpv6 from a port\"".into());
            line("udp sport 68 udp dport 67 accept comment \"dhcp client\"".into());
            line("udp sport 546 udp dport 547 accept comment \"dhcpv6 client\"".into());
        }
        Direction::Ingress => {
            line(
                "icmpv6 type { 130, 134, 135, 136 } accept comment \"ipv6 neighbour discovery\""
                    .into(),
            );
            line("udp sport 67 udp dport 68 accept comment \"dhcp\"".into());
            line("udp sport 547 udp dport 546 accept comment \"dhcpv6\"".into());
        }
    }
    if p.stateful {
        line("ct state established,related accept".into());
        line("ct state invalid drop".into());
    }
    for g in &p.groups {
        line(format!("jump {}", chain_name(g, d)));
    }
    line("drop comment \"default drop\"".into());
    let _ = writeln!(out, "\t}}");
}

/// The table as one `nft -f` script that replaces any previous one atomically.
pub fn render(rs: &Ruleset) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "table inet {TABLE}");
    let _ = writeln!(out, "delete table inet {TABLE}");
    let _ = writeln!(out, "table inet {TABLE} {{");
    for (name, set) in &rs.sets {
        let ty = match set.family {
            Family::V4 => "ipv4_addr",
            Family::V6 => "ipv6_addr",
        };
        let _ = write!(out, "\tset {name} {{ type {ty};");
        if set.interval {
            let _ = write!(out, " flags interval; auto-merge;");
        }
        if !set.elements.is_empty() {
            let els: Vec<String> = set
                .elements
                .iter()
                .map(|n| {
                    if !set.interval || n.prefix_len() == n.max_prefix_len() {
                        n.addr().to_string()
                    } else {
                        n.to_string()
                    }
                })
                .collect();
            let _ = write!(out, " elements = {{ {} }};", els.join(", "));
        }
        let _ = writeln!(out, " }}");
    }
    for ((sg, d), rules) in &rs.chains {
        let _ = writeln!(out, "\tchain {} {{", chain_name(sg, *d));
        for r in rules {
            let _ = writeln!(out, "\t\t{}", rule_text(r, *d));
        }
        let _ = writeln!(out, "\t}}");
    }
    for p in rs.ports.values() {
        port_chain(&mut out, p, Direction::Egress);
        port_chain(&mut out, p, Direction::Ingress);
    }
    for (map, d) in [
        ("egress_ports", Direction::Egress),
        ("ingress_ports", Direction::Ingress),
    ] {
        let _ = write!(out, "\tmap {map} {{ type ifname : verdict;");
        if !rs.ports.is_empty() {
            let els: Vec<String> = rs
                .ports
                .values()
                .map(|p| {
                    let chain = match d {
                        Direction::Egress => format!("port-{}-out", p.id),
                        Direction::Ingress => format!("port-{}-in", p.id),
                    };
                    format!("\"{}\" : jump {chain}", p.ifname)
                })
                .collect();
            let _ = write!(out, " elements = {{ {} }};", els.join(", "));
        }
        let _ = writeln!(out, " }}");
    }
    // Egress first (the sender's rules), then ingress (the receiver's), on each path.
    for (chain, hook, prio, expr) in [
        (
            "forward_egress",
            "forward",
            "filter",
            "iifname vmap @egress_ports",
        ),
        (
            "forward_ingress",
            "forward",
            "filter + 10",
            "oifname vmap @ingress_ports",
        ),
        (
            "input_egress",
            "input",
            "filter",
            "iifname vmap @egress_ports",
        ),
        (
            "output_ingress",
            "output",
            "filter",
            "oifname vmap @ingress_ports",
        ),
    ] {
        let _ = writeln!(out, "\tchain {chain} {{\n\t\ttype filter hook {hook} priority {prio}; policy accept;\n\t\t{expr}\n\t}}");
    }
    let _ = writeln!(out, "}}");
    out
}
