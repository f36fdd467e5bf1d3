//! `palisade matrix`: which port can open which service on which other port. Every cell is
//! two `explain` verdicts over the compiled host views, the same IR the agents apply: the
//! first packet leaving the source port (its egress rules and anti-spoofing) and arriving at
//! the destination port (its ingress rules). Ports that no host filters (port security off,
//! `network:` owners) let everything through, as the hosts do.

use crate::explain::{explain, Probe, Verdict};
use crate::state::{Direction, Port, State};
use crate::svg::{clip, esc, Svg};
use crate::{CompileError, HostView, Ruleset};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// A service to probe: `ssh` = TCP 22, `ping` = ICMP echo, …
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// Short name shown in cells.
    pub name: String,
    /// IP protocol number (1 for ICMP; 58 is used for IPv6 pairs automatically).
    pub proto: u8,
    /// Destination port (TCP/UDP).
    pub port: u16,
    /// ICMP type and code.
    pub icmp: Option<(u8, u8)>,
}

/// A bad `--services` entry.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("service {0:?}: expected NAME, PROTO/PORT (tcp/8080, udp/53) or icmp/TYPE[/CODE]")]
pub struct BadService(pub String);

/// The common service ports: ssh, http, https, dns, mysql, postgres, ping.
pub fn common_services() -> Vec<Service> {
    ["ssh", "http", "https", "dns", "mysql", "postgres", "ping"]
        .iter()
        .filter_map(|n| parse_service(n).ok())
        .collect()
}

/// `ssh`, `http`, `https`, `dns`, `mysql`, `postgres`, `redis`, `k8s-api`, `ping`, or
/// `tcp/PORT`, `udp/PORT`, `sctp/PORT`, `icmp/TYPE[/CODE]`.
pub fn parse_service(s: &str) -> Result<Service, BadService> {
    let named = |name: &str, proto: u8, port: u16| Service {
        name: name.into(),
        proto,
        port,
        icmp: None,
    };
    let bad = || BadService(s.to_string());
    Ok(match s {
        "ssh" => named("ssh", 6, 22),
        "http" => named("http", 6, 80),
        "https" => named("https", 6, 443),
        "dns" => named("dns", 17, 53),
        "mysql" => named("mysql", 6, 3306),
        "postgres" => named("postgres", 6, 5432),
        "redis" => named("redis", 6, 6379),
        "k8s-api" => named("k8s-api", 6, 6443),
        "ping" => Service {
            name: "ping".into(),
            proto: 1,
            port: 0,
            icmp: Some((8, 0)),
        },
        _ => {
            let mut parts = s.split('/');
            let proto = parts.next().ok_or_else(bad)?;
            let a: u16 = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
            let b: Option<u8> = match parts.next() {
                None => None,
                Some(c) => Some(c.parse().map_err(|_| bad())?),
            };
            if parts.next().is_some() {
                return Err(bad());
            }
            match (proto, b) {
                ("tcp", None) => named(s, 6, a),
                ("udp", None) => named(s, 17, a),
                ("sctp", None) => named(s, 132, a),
                ("icmp", code) => Service {
                    name: s.into(),
                    proto: 1,
                    port: 0,
                    icmp: Some((u8::try_from(a).map_err(|_| bad())?, code.unwrap_or(0))),
                },
                _ => return Err(bad()),
            }
        }
    })
}

/// One cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    /// The port itself.
    Itself,
    /// The two ports share no address family.
    NoAddress,
    /// The services that pass both ends (possibly none).
    Open(Vec<String>),
}

/// The matrix: `cells[from][to]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matrix {
    /// Port ids and their labels (name, else id), in state order.
    pub ports: Vec<(String, String)>,
    /// The services probed, by name.
    pub services: Vec<String>,
    /// `cells[i][j]`: from `ports[i]` to `ports[j]`.
    pub cells: Vec<Vec<Cell>>,
}

fn first_ip(p: &Port, v4: bool) -> Option<IpAddr> {
    p.fixed_ips
        .iter()
        .map(|f| f.ip_address)
        .find(|ip| ip.is_ipv4() == v4)
}

fn passes(rs: &Ruleset, probe: &Probe) -> bool {
    explain(rs, probe).is_none_or(|v: Verdict| v.allowed)
}

/// Computes the matrix of `state` for `services`.
pub fn matrix(state: &State, services: &[Service]) -> Result<Matrix, CompileError> {
    let mut views: BTreeMap<&str, HostView> = BTreeMap::new();
    for p in &state.ports {
        if !views.contains_key(p.host.as_str()) {
            views.insert(&p.host, HostView::new(state, &p.host)?);
        }
    }
    let ports: Vec<(String, String)> = state
        .ports
        .iter()
        .map(|p| {
            (
                p.id.clone(),
                if p.name.is_empty() {
                    p.id.clone()
                } else {
                    p.name.clone()
                },
            )
        })
        .collect();
    let mut cells = Vec::with_capacity(state.ports.len());
    for a in &state.ports {
        let mut row = Vec::with_capacity(state.ports.len());
        for b in &state.ports {
            if a.id == b.id {
                row.push(Cell::Itself);
                continue;
            }
            let pair = [true, false]
                .into_iter()
                .find_map(|v4| Some((first_ip(a, v4)?, first_ip(b, v4)?)));
            let Some((from, to)) = pair else {
                row.push(Cell::NoAddress);
                continue;
            };
            let (rs_a, rs_b) = (
                views[a.host.as_str()].ruleset(),
                views[b.host.as_str()].ruleset(),
            );
            let open = services
                .iter()
                .filter(|s| {
                    let proto = if s.proto == 1 && to.is_ipv6() {
                        58
                    } else {
                        s.proto
                    };
                    let icmp = s.icmp.map(|(t, c)| {
                        if to.is_ipv6() && t == 8 {
                            (128, c)
                        } else {
                            (t, c)
                        }
                    });
                    let probe = |port: &str, direction, remote, local| Probe {
                        port: port.to_string(),
                        direction,
                        remote,
                        local,
                        src_mac: None,
                        proto,
                        sport: 40000,
                        dport: s.port,
                        icmp,
                    };
                    passes(rs_a, &probe(&a.id, Direction::Egress, to, from))
                        && passes(rs_b, &probe(&b.id, Direction::Ingress, from, to))
                })
                .map(|s| s.name.clone())
                .collect();
            row.push(Cell::Open(open));
        }
        cells.push(row);
    }
    Ok(Matrix {
        ports,
        services: services.iter().map(|s| s.name.clone()).collect(),
        cells,
    })
}

fn cell_text(c: &Cell) -> String {
    match c {
        Cell::Itself => "·".into(),
        Cell::NoAddress => "no common family".into(),
        Cell::Open(v) if v.is_empty() => "-".into(),
        Cell::Open(v) => v.join(","),
    }
}

/// A text table: rows are sources, columns destinations.
pub fn to_text(m: &Matrix) -> String {
    let corner = "from \\ to";
    let mut widths: Vec<usize> = m
        .ports
        .iter()
        .enumerate()
        .map(|(j, (_, l))| {
            m.cells
                .iter()
                .map(|row| cell_text(&row[j]).chars().count())
                .chain([l.chars().count()])
                .max()
                .unwrap_or(1)
        })
        .collect();
    let first = m
        .ports
        .iter()
        .map(|(_, l)| l.chars().count())
        .chain([corner.len()])
        .max()
        .unwrap_or(1);
    widths.insert(0, first);
    let line = |cols: Vec<String>| {
        cols.iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
            + "\n"
    };
    let mut out = line(
        std::iter::once(corner.to_string())
            .chain(m.ports.iter().map(|(_, l)| l.clone()))
            .collect(),
    );
    for (i, (_, l)) in m.ports.iter().enumerate() {
        out.push_str(&line(
            std::iter::once(l.clone())
                .chain(m.cells[i].iter().map(cell_text))
                .collect(),
        ));
    }
    out.push_str(&format!(
        "\nservices probed: {} (\"-\": none passes both ends)\n",
        m.services.join(", ")
    ));
    out
}

const CELL_W: f64 = 120.0;
const CELL_H: f64 = 40.0;
const LEFT: f64 = 150.0;
const TOP: f64 = 90.0;

fn class(c: &Cell) -> &'static str {
    match c {
        Cell::Itself => "self",
        Cell::NoAddress => "unknown",
        Cell::Open(v) if v.is_empty() => "closed",
        Cell::Open(_) => "open",
    }
}

/// The matrix as an SVG grid: green where something passes, grey where nothing does.
pub fn to_svg(m: &Matrix, title: &str) -> String {
    let n = m.ports.len() as f64;
    let width = LEFT + n * CELL_W + 20.0;
    let height = TOP + n * CELL_H + 20.0;
    let mut svg = Svg::new(width, height);
    svg.raw(&format!(
        "<text x=\"20\" y=\"28\" class=\"title\">{}</text>\n<text x=\"20\" y=\"50\" class=\"head\">rows: from · columns: to · services: {}</text>\n",
        esc(title),
        esc(&m.services.join(", "))
    ));
    for (j, (id, l)) in m.ports.iter().enumerate() {
        svg.raw(&format!(
            "<text x=\"{}\" y=\"{}\" class=\"axis\" text-anchor=\"middle\" data-port=\"{}\">{}</text>\n",
            LEFT + j as f64 * CELL_W + CELL_W / 2.0,
            TOP - 10.0,
            esc(id),
            esc(&clip(l, 18))
        ));
    }
    for (i, (id, l)) in m.ports.iter().enumerate() {
        let y = TOP + i as f64 * CELL_H;
        svg.raw(&format!(
            "<text x=\"{}\" y=\"{}\" class=\"axis\" text-anchor=\"end\" data-port=\"{}\">{}</text>\n",
            LEFT - 10.0,
            y + CELL_H / 2.0 + 4.0,
            esc(id),
            esc(&clip(l, 22))
        ));
        for (j, c) in m.cells[i].iter().enumerate() {
            let x = LEFT + j as f64 * CELL_W;
            svg.raw(&format!(
                "<g class=\"cell {}\" data-from=\"{}\" data-to=\"{}\"><rect x=\"{x}\" y=\"{y}\" width=\"{CELL_W}\" height=\"{CELL_H}\"/><text x=\"{}\" y=\"{}\">{}</text></g>\n",
                class(c),
                esc(id),
                esc(&m.ports[j].0),
                x + CELL_W / 2.0,
                y + CELL_H / 2.0 + 4.0,
                esc(&clip(&cell_text(c), 20))
            ));
        }
    }
    svg.finish()
}

/// A self-contained HTML page: the same table, with every cell's full list.
pub fn to_html(m: &Matrix, title: &str) -> String {
    let mut out = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title><style>\nbody {{ font-family: sans-serif; margin: 2em; }}\ntable {{ border-collapse: collapse; }}\nth, td {{ border: 1px solid #e5e7eb; padding: 6px 10px; font-size: 13px; }}\ntd.open {{ background: #bbf7d0; }} td.closed {{ background: #f3f4f6; color: #6b7280; }}\ntd.self {{ background: #d1d5db; }} td.unknown {{ background: #fde68a; }}\n</style></head><body>\n<h1>{t}</h1>\n<p>Rows: from · columns: to · services probed: {s}. Each cell lists the services whose first packet passes the source port's egress and the destination port's ingress.</p>\n<table>\n<tr><th>from \\ to</th>",
        t = esc(title),
        s = esc(&m.services.join(", "))
    );
    for (_, l) in &m.ports {
        out.push_str(&format!("<th>{}</th>", esc(l)));
    }
    out.push_str("</tr>\n");
    for (i, (_, l)) in m.ports.iter().enumerate() {
        out.push_str(&format!("<tr><th>{}</th>", esc(l)));
        for c in &m.cells[i] {
            out.push_str(&format!(
                "<td class=\"{}\">{}</td>",
                class(c),
                esc(&cell_text(c))
            ));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n</body></html>\n");
    out
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
      - {id: c, direction: egress}
  - id: db
    name: database
    security_group_rules:
      - {id: d, direction: ingress, protocol: tcp, port_range_min: 3306, port_range_max: 3306, remote_group_id: web}
ports:
  - {id: w1, name: web-1, mac_address: "fa:16:3e:00:00:01", fixed_ips: [{ip_address: 198.18.1.1}], security_groups: [web], "binding:host_id": hv1}
  - {id: w2, name: web-2, mac_address: "fa:16:3e:00:00:02", fixed_ips: [{ip_address: 198.18.1.2}], security_groups: [web], "binding:host_id": hv2}
  - {id: d1, name: db-1, mac_address: "fa:16:3e:00:00:11", fixed_ips: [{ip_address: 198.18.2.1}], security_groups: [db], "binding:host_id": hv1}
  - {id: v6, name: v6-only, mac_address: "fa:16:3e:00:00:21", fixed_ips: [{ip_address: "fd00::21"}], security_groups: [web], "binding:host_id": hv2}
"#;

    fn open(c: &Cell) -> Vec<&str> {
        match c {
            Cell::Open(v) => v.iter().map(String::as_str).collect(),
            other => panic!("not a verdict: {other:?}"),
        }
    }

    #[test]
    fn cells_need_both_ends() {
        let s = State::parse(STATE).expect("state");
        let m = matrix(&s, &common_services()).expect("matrix");
        // web → web: http (ingress 80 from anywhere, egress any).
        assert_eq!(open(&m.cells[0][1]), ["http"]);
        // web → db: mysql by the remote-group rule.
        assert_eq!(open(&m.cells[0][2]), ["mysql"]);
        // db → web: db has no egress rule, so nothing leaves it.
        assert!(open(&m.cells[2][0]).is_empty());
        assert_eq!(m.cells[1][1], Cell::Itself);
        assert_eq!(m.cells[0][3], Cell::NoAddress);
        let text = to_text(&m);
        assert!(text.lines().nth(1).is_some_and(|l| l.starts_with("web-1")));
    }

    #[test]
    fn services_parse_or_say_why_not() {
        assert_eq!(
            parse_service("tcp/8080").map(|s| (s.proto, s.port)),
            Ok((6, 8080))
        );
        assert_eq!(parse_service("icmp/3/4").map(|s| s.icmp), Ok(Some((3, 4))));
        for bad in ["tcp", "tcp/x", "gre/1", "icmp/300", "udp/1/2"] {
            assert!(parse_service(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn svg_and_html_have_one_cell_per_pair() {
        let s = State::parse(STATE).expect("state");
        let m = matrix(&s, &common_services()).expect("matrix");
        let svg = to_svg(&m, "t");
        assert_eq!(svg.matches("<g class=\"cell ").count(), 16);
        let html = to_html(&m, "t");
        assert_eq!(html.matches("<td class=").count(), 16);
    }
}
