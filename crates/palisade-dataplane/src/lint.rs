//! `lint`: findings an operator wants before applying a state — duplicate and shadowed rules,
//! rules that can never match, groups no port uses, administrative ports open to the world.

use crate::state::{Direction, EtherType, Rule, State};
use ipnet::IpNet;
use palisade_model::rule::stored_protocol_number;
use std::collections::BTreeSet;

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    /// `duplicate`, `shadowed`, `never-matches`, `unused-group`, `world-open`
    pub kind: &'static str,
    /// The group.
    pub group: String,
    /// The rule, when the finding is about one.
    pub rule: Option<String>,
    /// What is wrong, in words.
    pub message: String,
}

/// Administrative ports that should not be open to everyone.
const ADMIN_PORTS: [(u16, &str); 4] = [
    (22, "ssh"),
    (3389, "rdp"),
    (6443, "kubernetes api"),
    (2379, "etcd"),
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Remote {
    Any,
    Net(IpNet),
    Group(String),
    AddressGroup(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Norm {
    direction: Direction,
    ethertype: EtherType,
    proto: Option<u8>,
    ports: Option<(u32, u32)>,
    icmp: Option<(u32, Option<u32>)>,
    remote: Remote,
}

fn norm(r: &Rule) -> Norm {
    let proto = stored_protocol_number(r.protocol.as_deref()).filter(|p| *p != 0);
    let icmp_proto = matches!(proto, Some(1 | 58));
    let (ports, icmp) = match (r.port_range_min, r.port_range_max) {
        (Some(a), Some(b)) if !(icmp_proto || (a == 1 && b == 65535)) => (Some((a, b)), None),
        (Some(t), c) if icmp_proto => (None, Some((t, c))),
        _ => (None, None),
    };
    let remote = match (
        &r.remote_ip_prefix,
        &r.remote_group_id,
        &r.remote_address_group_id,
    ) {
        (Some(n), _, _) if n.prefix_len() > 0 => Remote::Net(n.trunc()),
        (_, Some(g), _) => Remote::Group(g.clone()),
        (_, _, Some(a)) => Remote::AddressGroup(a.clone()),
        _ => Remote::Any,
    };
    Norm {
        direction: r.direction,
        ethertype: r.ethertype,
        proto,
        ports,
        icmp,
        remote,
    }
}

/// Whether every packet `b` matches is matched by `a`.
fn covers(a: &Norm, b: &Norm) -> bool {
    if a.direction != b.direction || a.ethertype != b.ethertype {
        return false;
    }
    let remote = match (&a.remote, &b.remote) {
        (Remote::Any, _) => true,
        (Remote::Net(x), Remote::Net(y)) => x.contains(y),
        (x, y) => x == y,
    };
    let proto = a.proto.is_none() || a.proto == b.proto;
    let ports = match (a.ports, b.ports) {
        (None, _) => {
            a.icmp.is_none()
                || a.icmp == b.icmp
                || (a
                    .icmp
                    .is_some_and(|(t, c)| c.is_none() && b.icmp.is_some_and(|(bt, _)| bt == t)))
        }
        (Some(_), None) => false,
        (Some((lo, hi)), Some((blo, bhi))) => lo <= blo && bhi <= hi,
    };
    remote && proto && ports
}

/// All findings for a state, sorted.
pub fn lint(state: &State) -> Vec<Finding> {
    let mut out = Vec::new();
    let used: BTreeSet<&str> = state
        .ports
        .iter()
        .flat_map(|p| p.security_groups.iter().map(String::as_str))
        .collect();
    for g in &state.security_groups {
        if !used.contains(g.id.as_str()) {
            out.push(Finding {
                kind: "unused-group",
                group: g.id.clone(),
                rule: None,
                message: format!("no port uses group {} ({})", g.id, g.name),
            });
        }
        let rules: Vec<(&Rule, Norm)> = g
            .security_group_rules
            .iter()
            .map(|r| (r, norm(r)))
            .collect();
        for (i, (r, n)) in rules.iter().enumerate() {
            // Duplicates and shadowing: compared with the rules before it (and, for
            // shadowing, any other rule of the group).
            if let Some((first, _)) = rules[..i].iter().find(|(_, m)| m == n) {
                out.push(Finding {
                    kind: "duplicate",
                    group: g.id.clone(),
                    rule: Some(r.id.clone()),
                    message: format!("rule {} duplicates rule {}", r.id, first.id),
                });
            } else if let Some((wider, _)) = rules
                .iter()
                .enumerate()
                .find(|(j, (_, m))| *j != i && m != n && covers(m, n))
                .map(|(_, x)| x)
            {
                out.push(Finding {
                    kind: "shadowed",
                    group: g.id.clone(),
                    rule: Some(r.id.clone()),
                    message: format!("rule {} is shadowed by the wider rule {}", r.id, wider.id),
                });
            }
            // Never matches.
            let v6 = n.ethertype == EtherType::IPv6;
            let family_ok = |a: &IpNet| matches!(a, IpNet::V6(_)) == v6;
            match &n.remote {
                Remote::Group(rg) => {
                    let members = state
                        .ports
                        .iter()
                        .filter(|p| p.security_groups.contains(rg))
                        .flat_map(|p| {
                            p.fixed_ips
                                .iter()
                                .map(|f| IpNet::from(f.ip_address))
                                .chain(p.allowed_address_pairs.iter().map(|a| a.ip_address))
                        });
                    if !members.into_iter().any(|a| family_ok(&a)) {
                        out.push(Finding {
                            kind: "never-matches",
                            group: g.id.clone(),
                            rule: Some(r.id.clone()),
                            message: format!(
                                "rule {}: remote group {rg} has no {} members",
                                r.id,
                                if v6 { "IPv6" } else { "IPv4" }
                            ),
                        });
                    }
                }
                Remote::AddressGroup(ag) => {
                    let any = state
                        .address_groups
                        .iter()
                        .filter(|a| &a.id == ag)
                        .flat_map(|a| a.addresses.iter())
                        .any(family_ok);
                    if !any {
                        out.push(Finding {
                            kind: "never-matches",
                            group: g.id.clone(),
                            rule: Some(r.id.clone()),
                            message: format!(
                                "rule {}: address group {ag} has no {} addresses",
                                r.id,
                                if v6 { "IPv6" } else { "IPv4" }
                            ),
                        });
                    }
                }
                Remote::Net(net) if !family_ok(net) => {
                    out.push(Finding {
                        kind: "never-matches",
                        group: g.id.clone(),
                        rule: Some(r.id.clone()),
                        message: format!(
                            "rule {}: prefix {net} is not {}",
                            r.id,
                            if v6 { "IPv6" } else { "IPv4" }
                        ),
                    });
                }
                _ => {}
            }
            // World-open administrative ports.
            if n.direction == Direction::Ingress
                && n.remote == Remote::Any
                && matches!(n.proto, None | Some(6))
                && n.icmp.is_none()
            {
                for (port, what) in ADMIN_PORTS {
                    if n.ports
                        .is_none_or(|(lo, hi)| lo <= port as u32 && port as u32 <= hi)
                    {
                        out.push(Finding {
                            kind: "world-open",
                            group: g.id.clone(),
                            rule: Some(r.id.clone()),
                            message: format!(
                                "rule {} opens tcp/{port} ({what}) to the world",
                                r.id
                            ),
                        });
                    }
                }
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(rules: &str, ports: &str) -> State {
        State::parse(&format!(r#"{{"security_groups": [{{"id": "g", "name": "g", "security_group_rules": [{rules}]}}, {{"id": "other", "security_group_rules": []}}], "ports": [{ports}]}}"#)).expect("state")
    }

    fn kinds(f: &[Finding]) -> Vec<(&str, Option<&str>)> {
        f.iter().map(|x| (x.kind, x.rule.as_deref())).collect()
    }

    #[test]
    fn finds_duplicates_shadowing_dead_rules_unused_groups_and_open_admin_ports() {
        let p = r#"{"id": "p", "mac_address": "fa:16:3e:00:00:01", "fixed_ips": [{"ip_address": "198.18.0.1"}], "security_groups": ["g"]}"#;
        let s = state(
            r#"{"id": "a", "direction": "ingress", "protocol": "tcp", "port_range_min": 80, "port_range_max": 90, "remote_ip_prefix": "198.18.0.0/16"},
               {"id": "b", "direction": "ingress", "protocol": "6", "port_range_min": 80, "port_range_max": 90, "remote_ip_prefix": "198.18.5.9/16"},
               {"id": "c", "direction": "ingress", "protocol": "tcp", "port_range_min": 85, "port_range_max": 85, "remote_ip_prefix": "198.18.1.0/24"},
               {"id": "d", "direction": "ingress", "ethertype": "IPv6", "protocol": "tcp", "remote_group_id": "g"},
               {"id": "e", "direction": "ingress", "protocol": "tcp", "port_range_min": 22, "port_range_max": 22, "remote_ip_prefix": "0.0.0.0/0"}"#,
            p,
        );
        let f = lint(&s);
        let k = kinds(&f);
        assert!(k.contains(&("duplicate", Some("b"))), "{f:#?}");
        assert!(k.contains(&("shadowed", Some("c"))), "{f:#?}");
        assert!(k.contains(&("never-matches", Some("d"))), "{f:#?}");
        assert!(k.contains(&("world-open", Some("e"))), "{f:#?}");
        assert!(k.contains(&("unused-group", None)), "{f:#?}");
        assert!(
            !k.contains(&("shadowed", Some("a"))),
            "the wider rule itself is fine: {f:#?}"
        );
        assert!(f.iter().any(|x| x.message.contains("tcp/22 (ssh)")));
    }

    #[test]
    fn a_clean_state_has_no_findings() {
        let p = r#"{"id": "p", "mac_address": "fa:16:3e:00:00:01", "fixed_ips": [{"ip_address": "198.18.0.1"}], "security_groups": ["g", "other"]}"#;
        let s = state(
            r#"{"id": "a", "direction": "ingress", "protocol": "tcp", "port_range_min": 443, "port_range_max": 443}"#,
            p,
        );
        assert_eq!(lint(&s), Vec::<Finding>::new());
    }
}
