//! `palisade graph`: who may reach whom, as a picture. Groups, the ports in them, and one
//! edge per (source, target) of the rules, labelled with the protocols and ports it allows:
//! remote groups, address groups and prefixes → the group whose ingress rules name them
//! (and, with egress shown, the group → its egress remotes). Rendered as Graphviz DOT or as
//! a self-contained SVG laid out here in three columns (no Graphviz needed).

use crate::state::{Direction, Port, Rule, State};
use crate::svg::{esc, Placer, Svg};
use std::collections::{BTreeMap, BTreeSet};

/// What a node stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum NodeKind {
    /// A remote prefix, an address group, or "anywhere".
    Source,
    /// A security group.
    Group,
    /// A port.
    Port,
}

/// A node: `id` is `sg:<id>`, `port:<id>`, `net:<cidr>`, `ag:<id>` or `any`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Stable id (also the SVG element's `data-id`).
    pub id: String,
    /// What it is.
    pub kind: NodeKind,
    /// First line: the name (or id).
    pub label: String,
    /// Second line: addresses, host, rule count.
    pub detail: String,
}

/// An edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    /// Node id traffic comes from (for membership: the group).
    pub from: String,
    /// Node id traffic goes to (for membership: the port).
    pub to: String,
    /// `None`: the port is in the group; `Some`: what the rules allow (`tcp 3306, icmp 8`).
    pub allows: Option<String>,
}

/// Groups, ports, sources and the edges between them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Graph {
    /// Sources, then groups, then ports, each in state order.
    pub nodes: Vec<Node>,
    /// Allow edges, then membership edges.
    pub edges: Vec<Edge>,
}

/// A rule's service in words: `tcp 80`, `tcp 1000-2000`, `icmp 8/0`, `udp`, `any`.
pub fn service(r: &Rule) -> String {
    let proto = match r.protocol.as_deref() {
        None | Some("any") | Some("") => return "any".into(),
        Some("6") => "tcp",
        Some("17") => "udp",
        Some("1") | Some("58") | Some("icmpv6") | Some("ipv6-icmp") => "icmp",
        Some("132") => "sctp",
        Some(p) => p,
    };
    let is_icmp = proto == "icmp";
    match (r.port_range_min, r.port_range_max) {
        (None, _) => proto.to_string(),
        (Some(t), code) if is_icmp => match code {
            Some(c) => format!("icmp {t}/{c}"),
            None => format!("icmp {t}"),
        },
        (Some(a), Some(b)) if a != b => format!("{proto} {a}-{b}"),
        (Some(a), _) => format!("{proto} {a}"),
    }
}

fn port_label(p: &Port) -> String {
    if p.name.is_empty() {
        p.id.clone()
    } else {
        p.name.clone()
    }
}

fn port_detail(p: &Port) -> String {
    let ips: Vec<String> = p
        .fixed_ips
        .iter()
        .map(|f| f.ip_address.to_string())
        .collect();
    let mut d = ips.join(", ");
    if !p.host.is_empty() {
        d = if d.is_empty() {
            format!("on {}", p.host)
        } else {
            format!("{d} on {}", p.host)
        };
    }
    d
}

/// The graph of `state`; egress edges only when `egress`.
pub fn graph(state: &State, egress: bool) -> Graph {
    let group_ids: BTreeSet<&str> = state
        .security_groups
        .iter()
        .map(|g| g.id.as_str())
        .collect();
    let mut sources: Vec<Node> = Vec::new();
    let mut seen_sources = BTreeSet::new();
    let mut allow: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    let mut order: Vec<(String, String)> = Vec::new();
    for g in &state.security_groups {
        for r in &g.security_group_rules {
            if r.direction == Direction::Egress && !egress {
                continue;
            }
            let remote = if let Some(rg) = &r.remote_group_id {
                format!("sg:{rg}")
            } else if let Some(ag) = &r.remote_address_group_id {
                let id = format!("ag:{ag}");
                if seen_sources.insert(id.clone()) {
                    let addrs = state
                        .address_groups
                        .iter()
                        .find(|a| &a.id == ag)
                        .map(|a| {
                            a.addresses
                                .iter()
                                .map(|n| n.to_string())
                                .collect::<Vec<_>>()
                                .join(", ")
                        })
                        .unwrap_or_default();
                    sources.push(Node {
                        id: id.clone(),
                        kind: NodeKind::Source,
                        label: format!("address group {ag}"),
                        detail: addrs,
                    });
                }
                id
            } else {
                match &r.remote_ip_prefix {
                    Some(n) if n.prefix_len() > 0 => {
                        let id = format!("net:{}", n.trunc());
                        if seen_sources.insert(id.clone()) {
                            sources.push(Node {
                                id: id.clone(),
                                kind: NodeKind::Source,
                                label: n.trunc().to_string(),
                                detail: String::new(),
                            });
                        }
                        id
                    }
                    _ => {
                        if seen_sources.insert("any".into()) {
                            sources.push(Node {
                                id: "any".into(),
                                kind: NodeKind::Source,
                                label: "anywhere".into(),
                                detail: "0.0.0.0/0, ::/0".into(),
                            });
                        }
                        "any".into()
                    }
                }
            };
            // A remote group missing from the state still gets a node (drawn as a source).
            if let Some(rg) = r
                .remote_group_id
                .as_deref()
                .filter(|rg| !group_ids.contains(rg))
            {
                if seen_sources.insert(remote.clone()) {
                    sources.push(Node {
                        id: remote.clone(),
                        kind: NodeKind::Source,
                        label: format!("group {rg}"),
                        detail: "not in the state".into(),
                    });
                }
            }
            let own = format!("sg:{}", g.id);
            let key = match r.direction {
                Direction::Ingress => (remote, own),
                Direction::Egress => (own, remote),
            };
            let entry = allow.entry(key.clone()).or_insert_with(|| {
                order.push(key.clone());
                BTreeSet::new()
            });
            entry.insert(service(r));
        }
    }
    let mut nodes = sources;
    for g in &state.security_groups {
        let n = g.security_group_rules.len();
        nodes.push(Node {
            id: format!("sg:{}", g.id),
            kind: NodeKind::Group,
            label: if g.name.is_empty() {
                g.id.clone()
            } else {
                g.name.clone()
            },
            detail: format!(
                "{n} rule{}{}",
                if n == 1 { "" } else { "s" },
                if g.stateful { "" } else { ", stateless" }
            ),
        });
    }
    let mut edges: Vec<Edge> = order
        .into_iter()
        .map(|k| {
            let services = &allow[&k];
            // "any" says it all.
            let label = if services.contains("any") {
                "any".to_string()
            } else {
                let mut v: Vec<&String> = services.iter().collect();
                v.sort_by_key(|s| service_order(s));
                v.into_iter().cloned().collect::<Vec<_>>().join(", ")
            };
            Edge {
                from: k.0,
                to: k.1,
                allows: Some(label),
            }
        })
        .collect();
    for p in &state.ports {
        nodes.push(Node {
            id: format!("port:{}", p.id),
            kind: NodeKind::Port,
            label: port_label(p),
            detail: port_detail(p),
        });
        for g in &p.security_groups {
            edges.push(Edge {
                from: format!("sg:{g}"),
                to: format!("port:{}", p.id),
                allows: None,
            });
        }
    }
    Graph { nodes, edges }
}

fn dot_quote(s: &str) -> String {
    format!(
        "\"{}\"",
        s.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    )
}

/// Graphviz DOT.
pub fn to_dot(g: &Graph) -> String {
    let mut out = String::from(
        "digraph palisade {\n  rankdir=LR;\n  node [fontname=\"sans-serif\", fontsize=11];\n  edge [fontname=\"sans-serif\", fontsize=10];\n",
    );
    for n in &g.nodes {
        let (shape, fill) = match n.kind {
            NodeKind::Source => ("note", "#e0ecff"),
            NodeKind::Group => ("box", "#ffe9c7"),
            NodeKind::Port => ("ellipse", "#e6f4ea"),
        };
        let label = if n.detail.is_empty() {
            n.label.clone()
        } else {
            format!("{}\n{}", n.label, n.detail)
        };
        out.push_str(&format!(
            "  {} [shape={shape}, style=\"rounded,filled\", fillcolor=\"{fill}\", label={}];\n",
            dot_quote(&n.id),
            dot_quote(&label)
        ));
    }
    for e in &g.edges {
        match &e.allows {
            Some(l) => out.push_str(&format!(
                "  {} -> {} [label={}, color=\"#c2410c\"];\n",
                dot_quote(&e.from),
                dot_quote(&e.to),
                dot_quote(l)
            )),
            None => out.push_str(&format!(
                "  {} -> {} [style=dashed, arrowhead=none, color=\"#9ca3af\"];\n",
                dot_quote(&e.from),
                dot_quote(&e.to)
            )),
        }
    }
    out.push_str("}\n");
    out
}

const COL_X: [f64; 3] = [20.0, 420.0, 800.0];

/// The point at `t` of a cubic Bézier curve.
fn bezier(p: [(f64, f64); 4], t: f64) -> (f64, f64) {
    let u = 1.0 - t;
    let w = [u * u * u, 3.0 * u * u * t, 3.0 * u * t * t, t * t * t];
    (
        p.iter().zip(w).map(|(p, w)| p.0 * w).sum(),
        p.iter().zip(w).map(|(p, w)| p.1 * w).sum(),
    )
}

/// Sort key of a service label: protocol, then the number (so `tcp 80` before `tcp 443`).
fn service_order(s: &str) -> (String, u32, String) {
    let (proto, rest) = s.split_once(' ').unwrap_or((s, ""));
    let n = rest
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|d| d.parse().ok())
        .unwrap_or(0);
    (proto.to_string(), n, s.to_string())
}
const COL_W: [f64; 3] = [190.0, 200.0, 250.0];
const NODE_H: f64 = 44.0;
const ROW: f64 = 64.0;
const TOP: f64 = 70.0;

/// A self-contained SVG: sources on the left, groups in the middle, ports on the right;
/// allow edges in orange with their labels, membership edges dashed grey.
pub fn to_svg(g: &Graph, title: &str) -> String {
    let col = |k: NodeKind| match k {
        NodeKind::Source => 0,
        NodeKind::Group => 1,
        NodeKind::Port => 2,
    };
    // Ports sorted under their first group, so membership lines stay short.
    let group_rank: BTreeMap<&str, usize> = g
        .nodes
        .iter()
        .filter(|n| n.kind == NodeKind::Group)
        .enumerate()
        .map(|(i, n)| (n.id.as_str(), i))
        .collect();
    let first_group: BTreeMap<&str, usize> =
        g.edges
            .iter()
            .filter(|e| e.allows.is_none())
            .fold(BTreeMap::new(), |mut m, e| {
                let r = group_rank
                    .get(e.from.as_str())
                    .copied()
                    .unwrap_or(usize::MAX);
                let v = m.entry(e.to.as_str()).or_insert(r);
                *v = (*v).min(r);
                m
            });
    let mut columns: [Vec<&Node>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    for n in &g.nodes {
        columns[col(n.kind)].push(n);
    }
    columns[2].sort_by_key(|n| {
        first_group
            .get(n.id.as_str())
            .copied()
            .unwrap_or(usize::MAX)
    });
    let rows = columns.iter().map(Vec::len).max().unwrap_or(0).max(1);
    let height = TOP + rows as f64 * ROW + 20.0;
    let mut pos: BTreeMap<&str, (f64, f64, usize)> = BTreeMap::new();
    for (c, nodes) in columns.iter().enumerate() {
        // Centre shorter columns.
        let offset = (rows - nodes.len()) as f64 * ROW / 2.0;
        for (i, n) in nodes.iter().enumerate() {
            pos.insert(&n.id, (COL_X[c], TOP + offset + i as f64 * ROW, c));
        }
    }
    let width = COL_X[2] + COL_W[2] + 20.0;
    let mut svg = Svg::new(width, height);
    svg.raw(&format!(
        "<text x=\"20\" y=\"28\" class=\"title\">{}</text>\n",
        esc(title)
    ));
    for (c, head) in ["sources", "security groups", "ports"].iter().enumerate() {
        svg.raw(&format!(
            "<text x=\"{}\" y=\"54\" class=\"head\">{head}</text>\n",
            COL_X[c]
        ));
    }
    // Edges first, nodes on top; labels kept off the nodes and off each other.
    let mut placer = Placer::default();
    for &(x, y, c) in pos.values() {
        placer.block(x, y, COL_W[c], NODE_H);
    }
    for e in &g.edges {
        let (Some(&(fx, fy, fc)), Some(&(tx, ty, tc))) =
            (pos.get(e.from.as_str()), pos.get(e.to.as_str()))
        else {
            continue;
        };
        let fy = fy + NODE_H / 2.0;
        let ty = ty + NODE_H / 2.0;
        let class = if e.allows.is_some() {
            "allow"
        } else {
            "member"
        };
        let gw = COL_W[1];
        let (path, lx, ly) = if e.from == e.to {
            // A group allowing its own members: a loop on its right.
            let x = fx + gw;
            (
                format!(
                    "M {x} {} C {} {} {} {} {x} {}",
                    fy - 10.0,
                    x + 70.0,
                    fy - 40.0,
                    x + 70.0,
                    fy + 40.0,
                    fy + 10.0
                ),
                x + 56.0,
                fy - 24.0,
            )
        } else if fc == tc {
            // Group to group: an arc on the right of the groups, wider for longer spans.
            let bulge = (60.0 + (ty - fy).abs() * 0.25).min(150.0);
            let x = fx + gw;
            (
                format!(
                    "M {x} {fy} C {} {fy} {} {ty} {x} {ty}",
                    x + bulge,
                    x + bulge
                ),
                x + bulge * 0.75,
                (fy + ty) / 2.0 + 4.0,
            )
        } else {
            // Between columns. Edges from a source run above the middle of both boxes and
            // edges back to it below, so the two directions and their labels stay apart.
            let forward = fc < tc;
            let lane = match (fc.min(tc), forward) {
                (0, true) => -10.0,
                (0, false) => 10.0,
                _ => 0.0,
            };
            let (x1, y1, x2, y2) = if forward {
                (fx + COL_W[fc], fy + lane, tx, ty + lane)
            } else {
                (fx, fy + lane, tx + COL_W[tc], ty + lane)
            };
            let mx = (x1 + x2) / 2.0;
            let (lx, ly) = bezier([(x1, y1), (mx, y1), (mx, y2), (x2, y2)], 0.5);
            (
                format!("M {x1} {y1} C {mx} {y1} {mx} {y2} {x2} {y2}"),
                lx,
                ly + 4.0,
            )
        };
        svg.raw(&format!(
            "<g class=\"edge {class}\" data-from=\"{}\" data-to=\"{}\"><path d=\"{path}\"{}/>",
            esc(&e.from),
            esc(&e.to),
            if e.allows.is_some() {
                " marker-end=\"url(#arrow)\""
            } else {
                ""
            }
        ));
        if let Some(l) = &e.allows {
            let (lx, ly) = placer.place(lx, ly, l);
            svg.label(lx, ly, l);
        }
        svg.raw("</g>\n");
    }
    for (c, nodes) in columns.iter().enumerate() {
        for n in nodes {
            let (x, y, _) = pos[n.id.as_str()];
            let kind = match n.kind {
                NodeKind::Source => "source",
                NodeKind::Group => "group",
                NodeKind::Port => "port",
            };
            let rx = if n.kind == NodeKind::Port { 22.0 } else { 6.0 };
            svg.raw(&format!(
                "<g class=\"node {kind}\" data-id=\"{}\"><rect x=\"{x}\" y=\"{y}\" width=\"{}\" height=\"{NODE_H}\" rx=\"{rx}\"/>",
                esc(&n.id),
                COL_W[c]
            ));
            let cx = x + COL_W[c] / 2.0;
            svg.raw(&format!(
                "<text x=\"{cx}\" y=\"{}\" class=\"name\">{}</text>",
                y + if n.detail.is_empty() { 26.0 } else { 18.0 },
                esc(&n.label)
            ));
            if !n.detail.is_empty() {
                svg.raw(&format!(
                    "<text x=\"{cx}\" y=\"{}\" class=\"detail\">{}</text>",
                    y + 34.0,
                    esc(&crate::svg::clip(&n.detail, (COL_W[c] / 6.0) as usize))
                ));
            }
            svg.raw("</g>\n");
        }
    }
    svg.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATE: &str = r#"
security_groups:
  - id: web
    name: web
    security_group_rules:
      - {id: a, direction: ingress, protocol: tcp, port_range_min: 80, port_range_max: 80, remote_ip_prefix: 0.0.0.0/0}
      - {id: b, direction: ingress, protocol: tcp, port_range_min: 443, port_range_max: 443, remote_ip_prefix: 0.0.0.0/0}
      - {id: c, direction: egress}
  - id: db
    name: database
    security_group_rules:
      - {id: d, direction: ingress, protocol: "6", port_range_min: 3306, port_range_max: 3306, remote_group_id: web}
      - {id: e, direction: ingress, ethertype: IPv6, protocol: tcp, port_range_min: 3306, port_range_max: 3306, remote_group_id: web}
      - {id: f, direction: ingress, protocol: icmp, port_range_min: 8, remote_ip_prefix: 198.18.0.7/16}
ports:
  - {id: p1, name: web-1, mac_address: "fa:16:3e:00:00:01", fixed_ips: [{ip_address: 198.18.1.1}], security_groups: [web], "binding:host_id": hv1}
  - {id: p2, mac_address: "fa:16:3e:00:00:02", fixed_ips: [{ip_address: 198.18.2.1}], security_groups: [db, web]}
"#;

    #[test]
    fn edges_merge_rules_and_name_the_services() {
        let s = State::parse(STATE).expect("state");
        let g = graph(&s, false);
        let allows: Vec<(&str, &str, &str)> = g
            .edges
            .iter()
            .filter_map(|e| Some((e.from.as_str(), e.to.as_str(), e.allows.as_deref()?)))
            .collect();
        assert_eq!(
            allows,
            [
                ("any", "sg:web", "tcp 80, tcp 443"),
                ("sg:web", "sg:db", "tcp 3306"),
                ("net:198.18.0.0/16", "sg:db", "icmp 8"),
            ]
        );
        let members: Vec<(&str, &str)> = g
            .edges
            .iter()
            .filter(|e| e.allows.is_none())
            .map(|e| (e.from.as_str(), e.to.as_str()))
            .collect();
        assert_eq!(
            members,
            [
                ("sg:web", "port:p1"),
                ("sg:db", "port:p2"),
                ("sg:web", "port:p2")
            ]
        );
        let p1 = g.nodes.iter().find(|n| n.id == "port:p1").expect("p1");
        assert_eq!(
            (p1.label.as_str(), p1.detail.as_str()),
            ("web-1", "198.18.1.1 on hv1")
        );
        // Egress shown on request.
        let with_egress = graph(&s, true);
        assert!(with_egress
            .edges
            .iter()
            .any(|e| e.from == "sg:web" && e.to == "any" && e.allows.as_deref() == Some("any")));
    }

    #[test]
    fn dot_and_svg_carry_every_node_and_edge() {
        let s = State::parse(STATE).expect("state");
        let g = graph(&s, false);
        let dot = to_dot(&g);
        assert!(dot.contains("\"sg:web\" -> \"sg:db\" [label=\"tcp 3306\""));
        assert!(dot.contains("\"sg:db\" -> \"port:p2\" [style=dashed"));
        let svg = to_svg(&g, "test <&>");
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("test &lt;&amp;&gt;"));
        assert_eq!(svg.matches("<g class=\"node ").count(), g.nodes.len());
        assert_eq!(svg.matches("<g class=\"edge ").count(), g.edges.len());
    }
}
