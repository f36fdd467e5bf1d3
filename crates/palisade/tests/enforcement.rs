//! Issue #4, acceptance 2 (first part): the compiled ruleset enforced by the real kernel.
//! A "hypervisor" namespace holds the ruleset and routes between one namespace per port
//! (veth pairs named like Neutron's taps) and an outside client; seed 004's hosts are
//! probed with real TCP connects over IPv4 and IPv6. Addresses: 198.18.0.0/15, fd00::/8.
//!
//! Needs root, `ip` and `nft`: skipped with a message otherwise, failing under CI=true.

mod common;

use common::lab::{can_run, Lab};
use std::process::{Child, Command};

fn state(db_members_in_web: bool) -> String {
    let web1_groups = if db_members_in_web { "[web]" } else { "[]" };
    format!(
        r#"
security_groups:
  - id: web
    security_group_rules:
      - {{id: web-80, direction: ingress, ethertype: IPv4, protocol: tcp, port_range_min: 80, port_range_max: 80, remote_ip_prefix: 0.0.0.0/0}}
      - {{id: web-443, direction: ingress, ethertype: IPv4, protocol: tcp, port_range_min: 443, port_range_max: 443, remote_ip_prefix: 0.0.0.0/0}}
      - {{id: web-80-v6, direction: ingress, ethertype: IPv6, protocol: tcp, port_range_min: 80, port_range_max: 80}}
      - {{id: web-443-v6, direction: ingress, ethertype: IPv6, protocol: tcp, port_range_min: 443, port_range_max: 443}}
      - {{id: web-eg4, direction: egress, ethertype: IPv4}}
      - {{id: web-eg6, direction: egress, ethertype: IPv6}}
  - id: database
    security_group_rules:
      - {{id: db-3306, direction: ingress, ethertype: IPv4, protocol: tcp, port_range_min: 3306, port_range_max: 3306, remote_group_id: web}}
      - {{id: db-3306-v6, direction: ingress, ethertype: IPv6, protocol: tcp, port_range_min: 3306, port_range_max: 3306, remote_group_id: web}}
      - {{id: db-eg4, direction: egress, ethertype: IPv4}}
      - {{id: db-eg6, direction: egress, ethertype: IPv6}}
ports:
  - {{id: web1-000000000, mac_address: "fa:16:3e:00:00:01", fixed_ips: [{{ip_address: 198.18.1.1}}, {{ip_address: "fd00::1:1"}}], security_groups: {web1_groups}, "binding:host_id": hv}}
  - {{id: web2-000000000, mac_address: "fa:16:3e:00:00:02", fixed_ips: [{{ip_address: 198.18.1.2}}, {{ip_address: "fd00::1:2"}}], security_groups: [web], "binding:host_id": hv}}
  - {{id: web3-000000000, mac_address: "fa:16:3e:00:00:03", fixed_ips: [{{ip_address: 198.18.1.3}}, {{ip_address: "fd00::1:3"}}], security_groups: [web], "binding:host_id": hv}}
  - {{id: db1-0000000000, mac_address: "fa:16:3e:00:00:11", fixed_ips: [{{ip_address: 198.18.2.1}}, {{ip_address: "fd00::2:1"}}], security_groups: [database], "binding:host_id": hv}}
  - {{id: db2-0000000000, mac_address: "fa:16:3e:00:00:12", fixed_ips: [{{ip_address: 198.18.2.2}}, {{ip_address: "fd00::2:2"}}], security_groups: [database], "binding:host_id": hv}}
"#
    )
}

fn compiled(text: &str) -> String {
    let st = palisade_dataplane::State::parse(text).expect("state");
    palisade_dataplane::render(&palisade_dataplane::compile(&st, "hv").expect("compile"))
}

#[test]
fn seed_004_matrix_holds_in_the_kernel_over_ipv4_and_ipv6() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new("e");
    lab.add_ns("hv");
    lab.exec(
        "hv",
        &[
            "sysctl",
            "-qw",
            "net.ipv4.ip_forward=1",
            "net.ipv6.conf.all.forwarding=1",
        ],
    );
    let hosts = [
        (
            "web1",
            "tapweb1-000000",
            "fa:16:3e:00:00:01",
            "198.18.1.1",
            "fd00::1:1",
        ),
        (
            "web2",
            "tapweb2-000000",
            "fa:16:3e:00:00:02",
            "198.18.1.2",
            "fd00::1:2",
        ),
        (
            "web3",
            "tapweb3-000000",
            "fa:16:3e:00:00:03",
            "198.18.1.3",
            "fd00::1:3",
        ),
        (
            "db1",
            "tapdb1-0000000",
            "fa:16:3e:00:00:11",
            "198.18.2.1",
            "fd00::2:1",
        ),
        (
            "db2",
            "tapdb2-0000000",
            "fa:16:3e:00:00:12",
            "198.18.2.2",
            "fd00::2:2",
        ),
        (
            "client",
            "client0",
            "02:00:00:00:00:99",
            "198.18.3.1",
            "fd00::3:1",
        ),
    ];
    for (name, tap, mac, v4, v6) in hosts {
        lab.add_host(name, tap, mac, v4, v6);
        lab.serve(name, &[22, 80, 443, 3306, 9999]);
    }
    lab.load(&compiled(&state(true)));

    let web = [
        ("web1", "198.18.1.1", "fd00::1:1"),
        ("web2", "198.18.1.2", "fd00::1:2"),
        ("web3", "198.18.1.3", "fd00::1:3"),
    ];
    let db = [
        ("db1", "198.18.2.1", "fd00::2:1"),
        ("db2", "198.18.2.2", "fd00::2:2"),
    ];
    for (_, v4, v6) in web {
        for addr in [v4, v6] {
            assert!(lab.open("client", addr, 80, None), "client → {addr}:80");
            assert!(lab.open("client", addr, 443, None), "client → {addr}:443");
            assert!(
                !lab.open("client", addr, 22, None),
                "client → {addr}:22 must be dropped"
            );
        }
    }
    for (_, v4, v6) in db {
        for addr in [v4, v6] {
            assert!(
                !lab.open("client", addr, 3306, None),
                "client → {addr}:3306 must be dropped"
            );
            assert!(lab.open("web2", addr, 3306, None), "web2 → {addr}:3306");
            assert!(
                !lab.open("web2", addr, 22, None),
                "web2 → {addr}:22 must be dropped"
            );
        }
    }
    assert!(
        !lab.open("db2", "198.18.2.1", 3306, None),
        "db2 is not in web"
    );
    // Egress is allowed (to the outside client).
    assert!(lab.open("db1", "198.18.3.1", 9999, None));
    assert!(lab.open("web3", "fd00::3:1", 9999, None));
    // A forged source address from web1 is dropped.
    lab.exec(
        "web1",
        &["ip", "addr", "add", "198.18.1.99/32", "dev", "eth0"],
    );
    assert!(
        lab.open("web1", "198.18.3.1", 9999, Some("198.18.1.1")),
        "web1 from its own address"
    );
    assert!(
        !lab.open("web1", "198.18.3.1", 9999, Some("198.18.1.99")),
        "web1 with a forged source must be dropped"
    );
    // web1 leaves the web group: it can no longer reach 3306 (or serve 80).
    assert!(lab.open("web1", "198.18.2.1", 3306, None));
    lab.load(&compiled(&state(false)));
    assert!(
        !lab.open("web1", "198.18.2.1", 3306, None),
        "after leaving web, web1 → db1:3306 must be dropped"
    );
    assert!(!lab.open("web1", "fd00::2:1", 3306, None));
    assert!(
        !lab.open("client", "198.18.1.1", 80, None),
        "web1 has no groups now"
    );
    assert!(lab.open("web2", "198.18.2.1", 3306, None), "web2 still can");
}

/// A small deterministic generator (seeded; no dependency).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

const PORTS: [u16; 5] = [22, 80, 443, 3306, 8080];

/// A planned probe: (receiver index, protocol, IPv6?, destination port).
type Planned = (usize, &'static str, bool, u16);

fn random_rule(rng: &mut Lcg, id: String, groups: &[&str]) -> serde_json::Value {
    let v6 = rng.chance(40);
    let mut r = serde_json::json!({
        "id": id,
        "direction": if rng.chance(55) { "ingress" } else { "egress" },
        "ethertype": if v6 { "IPv6" } else { "IPv4" },
    });
    let icmp = if v6 { "ipv6-icmp" } else { "icmp" };
    let proto = *rng.pick(&["none", "tcp", "6", "udp", "17", "icmp"]);
    match proto {
        "none" => r["protocol"] = serde_json::Value::Null,
        "icmp" => {
            r["protocol"] = serde_json::json!(icmp);
            if rng.chance(60) {
                let echo = if v6 { 128 } else { 8 };
                r["port_range_min"] = serde_json::json!(*rng.pick(&[echo, echo, 0, 13]));
                if rng.chance(50) {
                    r["port_range_max"] = serde_json::json!(*rng.pick(&[0, 1]));
                }
            }
        }
        p => {
            r["protocol"] = serde_json::json!(p);
            match rng.below(3) {
                0 => {}
                1 => {
                    let port = *rng.pick(&PORTS);
                    r["port_range_min"] = serde_json::json!(port);
                    r["port_range_max"] = serde_json::json!(port);
                }
                _ => {
                    let a = *rng.pick(&[20u16, 80, 400, 3000]);
                    r["port_range_min"] = serde_json::json!(a);
                    r["port_range_max"] =
                        serde_json::json!(a + *rng.pick(&[5u16, 100, 3000, 6000]));
                }
            }
        }
    }
    match rng.below(4) {
        0 => {}
        1 => {
            let prefixes: &[&str] = if v6 {
                &[
                    "fd00::1:0/112",
                    "fd00::1:2/128",
                    "fd00::3:1/128",
                    "fd00::/8",
                    "fd99::/16",
                    "::/0",
                ]
            } else {
                &[
                    "198.18.1.0/24",
                    "198.18.1.2/32",
                    "198.18.3.1/32",
                    "198.18.0.0/15",
                    "10.0.0.0/8",
                    "0.0.0.0/0",
                    "198.18.1.4/31",
                ]
            };
            r["remote_ip_prefix"] = serde_json::json!(*rng.pick(prefixes));
        }
        2 => r["remote_group_id"] = serde_json::json!(*rng.pick(groups)),
        _ => r["remote_address_group_id"] = serde_json::json!("ag0"),
    }
    r
}

#[test]
fn explain_agrees_with_the_kernel_on_random_rule_sets() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new("d");
    lab.add_ns("hv");
    lab.exec(
        "hv",
        &[
            "sysctl",
            "-qw",
            "net.ipv4.ip_forward=1",
            "net.ipv6.conf.all.forwarding=1",
        ],
    );
    // (namespace, port id, tap, mac, v4, v6); the client is not a port.
    let hosts: Vec<(String, Option<String>, String, String, String, String)> = (1..=5)
        .map(|i| {
            (
                format!("p{i}"),
                Some(format!("port{i}-0000000")),
                format!("tapport{i}-00000"),
                format!("fa:16:3e:00:01:0{i}"),
                format!("198.18.1.{i}"),
                format!("fd00::1:{i}"),
            )
        })
        .chain(std::iter::once((
            "client".to_string(),
            None,
            "client0".to_string(),
            "02:00:00:00:00:99".to_string(),
            "198.18.3.1".to_string(),
            "fd00::3:1".to_string(),
        )))
        .collect();
    for (name, _, tap, mac, v4, v6) in &hosts {
        lab.add_host(name, tap, mac, v4, v6);
        lab.serve(name, &PORTS);
    }
    let groups = ["g0", "g1", "g2", "g3"];
    let mut rng = Lcg(0x5eed_2026);
    let mut mismatches: Vec<String> = Vec::new();
    let mut total = 0;
    let mut passed = 0;
    for set in 0..20 {
        let sgs: Vec<serde_json::Value> = groups
            .iter()
            .map(|g| {
                let n = rng.below(7);
                let rules: Vec<serde_json::Value> = (0..n)
                    .map(|k| random_rule(&mut rng, format!("s{set}-{g}-r{k}"), &groups))
                    .collect();
                serde_json::json!({"id": g, "stateful": true, "security_group_rules": rules})
            })
            .collect();
        let ports: Vec<serde_json::Value> = hosts
            .iter()
            .filter_map(|(_, id, _, mac, v4, v6)| {
                let id = id.as_ref()?;
                let mut mine: Vec<&str> = vec![*rng.pick(&groups)];
                if rng.chance(40) {
                    let other = *rng.pick(&groups);
                    if !mine.contains(&other) {
                        mine.push(other);
                    }
                }
                Some(serde_json::json!({"id": id, "mac_address": mac, "fixed_ips": [{"ip_address": v4}, {"ip_address": v6}],
                    "security_groups": mine, "port_security_enabled": !rng.chance(10), "binding:host_id": "hv"}))
            })
            .collect();
        let ag = serde_json::json!([{"id": "ag0", "addresses": [*rng.pick(&["198.18.1.0/29", "198.18.3.0/24", "fd00::1:0/120", "198.18.1.3/32"]), *rng.pick(&["fd00::3:0/112", "198.18.1.5/32", "fd00::1:1/128"])]}]);
        let state_text =
            serde_json::json!({"security_groups": sgs, "ports": ports, "address_groups": ag})
                .to_string();
        let st = palisade_dataplane::State::parse(&state_text).expect("state");
        let rs = palisade_dataplane::compile(&st, "hv").expect("compile");
        lab.load(&palisade_dataplane::render(&rs));
        // 25 probes per set, grouped by sender.
        let mut by_sender: std::collections::BTreeMap<usize, Vec<(usize, &str, bool, u16)>> =
            std::collections::BTreeMap::new();
        for _ in 0..25 {
            let from = rng.below(hosts.len());
            let mut to = rng.below(hosts.len());
            if to == from {
                to = (to + 1) % hosts.len();
            }
            let proto = *rng.pick(&["tcp", "tcp", "udp", "icmp"]);
            by_sender
                .entry(from)
                .or_default()
                .push((to, proto, rng.chance(40), *rng.pick(&PORTS)));
        }
        // Every sender's probes run at the same time; then each is compared with explain.
        let running: Vec<(usize, Vec<Planned>, Child)> = by_sender
            .into_iter()
            .map(|(from, probes)| {
                let wire: Vec<(&str, String, u16)> = probes
                    .iter()
                    .map(|(to, proto, v6, port)| {
                        (
                            *proto,
                            if *v6 {
                                hosts[*to].5.clone()
                            } else {
                                hosts[*to].4.clone()
                            },
                            *port,
                        )
                    })
                    .collect();
                let child = lab.batch(&hosts[from].0, &wire);
                (from, probes, child)
            })
            .collect();
        for (from, probes, child) in running {
            let got = Lab::finish(child);
            for ((to, proto, v6, port), kernel) in probes.iter().zip(got) {
                let (src, dst) = (&hosts[from], &hosts[*to]);
                let (src_addr, dst_addr) = if *v6 {
                    (src.5.clone(), dst.5.clone())
                } else {
                    (src.4.clone(), dst.4.clone())
                };
                let (pnum, icmp, dport) = match (*proto, *v6) {
                    ("tcp", _) => (6u8, None, *port),
                    ("udp", _) => (17, None, *port),
                    (_, false) => (1, Some((8u8, 0u8)), 0),
                    (_, true) => (58, Some((128, 0)), 0),
                };
                let verdict = |port_id: &Option<String>, direction, remote: &str, local: &str| {
                    port_id.as_ref().and_then(|id| {
                        palisade_dataplane::explain::explain(
                            &rs,
                            &palisade_dataplane::explain::Probe {
                                port: id.clone(),
                                direction,
                                remote: remote.parse().expect("ip"),
                                local: local.parse().expect("ip"),
                                src_mac: None,
                                proto: pnum,
                                sport: 40000,
                                dport,
                                icmp,
                            },
                        )
                    })
                };
                let out_v = verdict(
                    &src.1,
                    palisade_dataplane::state::Direction::Egress,
                    &dst_addr,
                    &src_addr,
                );
                let in_v = verdict(
                    &dst.1,
                    palisade_dataplane::state::Direction::Ingress,
                    &src_addr,
                    &dst_addr,
                );
                let expected = out_v.as_ref().is_none_or(|v| v.allowed)
                    && in_v.as_ref().is_none_or(|v| v.allowed);
                total += 1;
                if kernel {
                    passed += 1;
                }
                if expected != kernel {
                    mismatches.push(format!(
                        "set {set}: {proto} {} → {} {dst_addr}:{port}: explain {expected} (egress {out_v:?}, ingress {in_v:?}), kernel {kernel}",
                        src.0, dst.0
                    ));
                }
            }
        }
    }
    assert!(total >= 500, "{total} probes");
    // Not vacuous: the sets both allow and drop plenty.
    assert!(
        passed >= 50 && total - passed >= 50,
        "{passed} of {total} probes passed"
    );
    assert!(
        mismatches.is_empty(),
        "{} of {total} probes disagree:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

/// `nft -j list table inet palisade` in `ns`, without handles, with set elements sorted and
/// objects in a canonical order (rules keep their order within a chain).
fn listing(lab: &Lab, ns: &str) -> Vec<serde_json::Value> {
    let n = lab.ns(ns);
    let out = Command::new("ip")
        .args([
            "netns", "exec", &n, "nft", "-j", "list", "table", "inet", "palisade",
        ])
        .output()
        .expect("nft list");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                m.remove("handle");
                if let Some(serde_json::Value::Array(els)) = m.get_mut("elem") {
                    els.sort_by_key(|e| e.to_string());
                }
                m.values_mut().for_each(strip);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut per_chain: std::collections::BTreeMap<String, usize> =
        std::collections::BTreeMap::new();
    let mut keyed: Vec<(String, serde_json::Value)> = Vec::new();
    for mut obj in v["nftables"].as_array().cloned().unwrap_or_default() {
        if obj.get("metainfo").is_some() {
            continue;
        }
        strip(&mut obj);
        let key = if let Some(r) = obj.get("rule") {
            let chain = r["chain"].as_str().unwrap_or("").to_string();
            let i = per_chain.entry(chain.clone()).or_insert(0);
            *i += 1;
            format!("rule/{chain}/{:06}", i)
        } else {
            let (kind, body) = obj
                .as_object()
                .and_then(|m| m.iter().next())
                .map(|(k, b)| (k.clone(), b.clone()))
                .unwrap_or_default();
            format!("{kind}/{}", body["name"].as_str().unwrap_or(""))
        };
        keyed.push((key, obj));
    }
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    keyed.into_iter().map(|(_, v)| v).collect()
}

fn random_state(rng: &mut Lcg, tag: &str, ports: usize) -> String {
    let groups = ["g0", "g1", "g2", "g3"];
    let sgs: Vec<serde_json::Value> = groups
        .iter()
        .map(|g| {
            let n = rng.below(6);
            let rules: Vec<serde_json::Value> = (0..n)
                .map(|k| random_rule(rng, format!("{tag}-{g}-r{k}"), &groups))
                .collect();
            serde_json::json!({"id": g, "stateful": !rng.chance(15), "security_group_rules": rules})
        })
        .collect();
    let ports: Vec<serde_json::Value> = (0..ports)
        .map(|i| {
            let g = *rng.pick(&groups);
            let host = if rng.chance(70) { "hv" } else { "elsewhere" };
            serde_json::json!({"id": format!("port{i}-0000000"), "mac_address": format!("fa:16:3e:00:02:{i:02x}"),
                "fixed_ips": [{"ip_address": format!("198.18.4.{}", i + 1)}, {"ip_address": format!("fd00::4:{}", i + 1)}],
                "allowed_address_pairs": if rng.chance(20) { serde_json::json!([{"ip_address": format!("198.18.{}.0/28", 100 + i)}]) } else { serde_json::json!([]) },
                "security_groups": [g], "binding:host_id": host})
        })
        .collect();
    let ag = serde_json::json!([{"id": "ag0", "addresses": [*rng.pick(&["198.18.1.0/29", "198.18.3.0/24", "fd00::1:0/120"])]}]);
    serde_json::json!({"security_groups": sgs, "ports": ports, "address_groups": ag}).to_string()
}

#[test]
fn a_delta_on_the_first_ruleset_equals_a_full_apply_of_the_second() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new("x");
    lab.add_ns("a");
    lab.add_ns("b");
    let mut rng = Lcg(0xde17a);
    let ruleset = |text: &str| {
        palisade_dataplane::compile(
            &palisade_dataplane::State::parse(text).expect("state"),
            "hv",
        )
        .expect("compile")
    };
    let load = |ns: &str, script: &str| {
        let path = std::env::temp_dir().join(format!("{}-{ns}.nft", lab.prefix));
        std::fs::write(&path, script).expect("write");
        let n = lab.ns(ns);
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &n,
                "nft",
                "-f",
                &path.display().to_string(),
            ])
            .output()
            .expect("nft");
        let _ = std::fs::remove_file(&path);
        assert!(
            out.status.success(),
            "nft -f failed: {}\n{script}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    for pair in 0..15 {
        let old = ruleset(&random_state(&mut rng, &format!("o{pair}"), 6));
        let new = ruleset(&random_state(&mut rng, &format!("n{pair}"), 6));
        load("a", &palisade_dataplane::render(&old));
        let d = palisade_dataplane::delta(&old, &new);
        if !d.script.is_empty() {
            load("a", &d.script);
        }
        load("b", &palisade_dataplane::render(&new));
        let (la, lb) = (listing(&lab, "a"), listing(&lab, "b"));
        assert!(lb.len() > 8, "the listing holds the table's objects");
        assert_eq!(
            la, lb,
            "pair {pair}: delta result differs from a full apply\n{}",
            d.script
        );
    }
    // A membership-only change: a port on another host joins a group that rules here name.
    let base = r#"{"security_groups": [
        {"id": "web", "security_group_rules": [{"id": "w", "direction": "ingress", "ethertype": "IPv4", "protocol": "tcp", "port_range_min": 80, "port_range_max": 80}]},
        {"id": "db", "security_group_rules": [{"id": "d", "direction": "ingress", "ethertype": "IPv4", "protocol": "tcp", "port_range_min": 3306, "port_range_max": 3306, "remote_group_id": "web"}]}],
      "ports": [{"id": "dbport-000000", "mac_address": "fa:16:3e:00:03:01", "fixed_ips": [{"ip_address": "198.18.5.1"}], "security_groups": ["db"], "binding:host_id": "hv"},
                {"id": "webport-00001", "mac_address": "fa:16:3e:00:03:02", "fixed_ips": [{"ip_address": "198.18.5.2"}], "security_groups": ["web"], "binding:host_id": "other"}
                PLUS]}"#;
    let old = ruleset(&base.replace("PLUS", ""));
    let new = ruleset(&base.replace("PLUS", r#", {"id": "webport-00002", "mac_address": "fa:16:3e:00:03:03", "fixed_ips": [{"ip_address": "198.18.5.3"}], "security_groups": ["web"], "binding:host_id": "other"}"#));
    let d = palisade_dataplane::delta(&old, &new);
    assert!(
        d.elements_only,
        "membership change must be element operations only:\n{}",
        d.script
    );
    assert_eq!(
        d.script.trim(),
        "add element inet palisade rg-web-v4 { 198.18.5.3 }"
    );
    load("a", &palisade_dataplane::render(&old));
    load("a", &d.script);
    load("b", &palisade_dataplane::render(&new));
    assert_eq!(listing(&lab, "a"), listing(&lab, "b"));
}

#[test]
fn stateless_groups_need_rules_for_replies() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new("s");
    lab.add_ns("hv");
    lab.exec("hv", &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    lab.add_host(
        "srv",
        "tapsrv-0000000",
        "fa:16:3e:00:05:01",
        "198.18.6.1",
        "fd00::6:1",
    );
    lab.add_host(
        "client",
        "client0",
        "02:00:00:00:00:98",
        "198.18.6.9",
        "fd00::6:9",
    );
    lab.serve("srv", &[80]);
    let state = |stateful: bool, reply_rule: bool| {
        let reply = if reply_rule {
            r#", {"id": "replies", "direction": "egress", "ethertype": "IPv4", "protocol": "tcp"}"#
        } else {
            ""
        };
        let text = format!(
            r#"{{"security_groups": [{{"id": "g", "stateful": {stateful}, "security_group_rules": [
                {{"id": "http", "direction": "ingress", "ethertype": "IPv4", "protocol": "tcp", "port_range_min": 80, "port_range_max": 80}}{reply}]}}],
              "ports": [{{"id": "srv-000000000", "mac_address": "fa:16:3e:00:05:01", "fixed_ips": [{{"ip_address": "198.18.6.1"}}], "security_groups": ["g"], "binding:host_id": "hv"}}]}}"#
        );
        let rs = palisade_dataplane::compile(
            &palisade_dataplane::State::parse(&text).expect("state"),
            "hv",
        )
        .expect("compile");
        palisade_dataplane::render(&rs)
    };
    lab.load(&state(true, false));
    assert!(
        lab.open("client", "198.18.6.1", 80, None),
        "stateful: the reply rides on conntrack"
    );
    lab.load(&state(false, false));
    assert!(
        !lab.open("client", "198.18.6.1", 80, None),
        "stateless without an egress rule: the SYN-ACK is dropped"
    );
    lab.load(&state(false, true));
    assert!(
        lab.open("client", "198.18.6.1", 80, None),
        "stateless with a rule for the replies"
    );
}
