//! The semantics of the IR (what each kind of rule and port compiles to), and the
//! incremental host view held to the whole-state compiler: after any sequence of changes
//! its ruleset equals a fresh compile, and its delta equals the delta of the two full
//! rulesets.

use palisade_dataplane::ir::{Family, Remote};
use palisade_dataplane::state::{AddressGroup, Direction, Port, SecurityGroup};
use palisade_dataplane::{compile, delta, render, HostView, Ruleset, State};
use proptest::prelude::*;
use serde_json::{json, Value};

fn state(v: Value) -> State {
    State::parse(&v.to_string()).expect("valid state")
}

fn rules_of(rs: &Ruleset, g: &str, d: Direction) -> Vec<palisade_dataplane::ir::IrRule> {
    rs.chains
        .get(&(g.to_string(), d))
        .map(|c| c.to_vec())
        .unwrap_or_default()
}

fn port(id: &str, host: &str, groups: &[&str], ip: &str) -> Value {
    json!({"id": id, "mac_address": "fa:16:3e:00:00:01", "binding:host_id": host,
           "security_groups": groups, "fixed_ips": [{"ip_address": ip}]})
}

#[test]
fn protocols_ports_icmp_and_remotes_compile_as_neutron_enforces_them() {
    let st = state(json!({
        "security_groups": [{"id": "g", "security_group_rules": [
            {"id": "any-null", "direction": "ingress"},
            {"id": "any-word", "direction": "ingress", "protocol": "any"},
            {"id": "zero", "direction": "ingress", "protocol": "0"},
            {"id": "tcp-name", "direction": "ingress", "protocol": "tcp", "port_range_min": 80, "port_range_max": 81},
            {"id": "udp-num", "direction": "ingress", "protocol": "17", "port_range_min": 53, "port_range_max": 53},
            {"id": "sctp-all", "direction": "ingress", "protocol": "sctp"},
            {"id": "icmp-type", "direction": "ingress", "protocol": "icmp", "port_range_min": 8},
            {"id": "icmp-code", "direction": "ingress", "protocol": "icmp", "port_range_min": 3, "port_range_max": 4},
            {"id": "icmp6-legacy", "direction": "ingress", "ethertype": "IPv6", "protocol": "icmpv6", "port_range_min": 128, "port_range_max": 0},
            {"id": "gre", "direction": "egress", "protocol": "gre"},
            {"id": "host-bits", "direction": "ingress", "remote_ip_prefix": "198.18.7.9/24"},
            {"id": "world", "direction": "ingress", "remote_ip_prefix": "0.0.0.0/0"},
            {"id": "cross-family", "direction": "ingress", "ethertype": "IPv6", "remote_ip_prefix": "198.18.0.0/16"},
            {"id": "rg", "direction": "ingress", "ethertype": "IPv6", "remote_group_id": "g"},
            {"id": "ag", "direction": "egress", "remote_address_group_id": "a"}
        ]}],
        "address_groups": [{"id": "a", "addresses": ["198.18.64.5/18", "fd00::/64"]}],
        "ports": [port("p", "h", &["g"], "198.18.0.1"),
                  {"id": "q", "mac_address": "fa:16:3e:00:00:02", "binding:host_id": "elsewhere",
                   "security_groups": ["g"], "fixed_ips": [{"ip_address": "fd00::7"}],
                   "allowed_address_pairs": [{"ip_address": "fd00:1::/64"}]}]
    }));
    let rs = compile(&st, "h").expect("compile");
    let ing = rules_of(&rs, "g", Direction::Ingress);
    let get = |id: &str| ing.iter().find(|r| r.id == id).cloned();
    for id in ["any-null", "any-word", "zero"] {
        let r = get(id).expect(id);
        assert_eq!((r.proto, r.dports, r.icmp), (None, None, None), "{id}");
    }
    assert_eq!(
        get("tcp-name").map(|r| (r.proto, r.dports)),
        Some((Some(6), Some((80, 81))))
    );
    assert_eq!(
        get("udp-num").map(|r| (r.proto, r.dports)),
        Some((Some(17), Some((53, 53))))
    );
    assert_eq!(
        get("sctp-all").map(|r| (r.proto, r.dports)),
        Some((Some(132), None))
    );
    assert_eq!(get("icmp-type").map(|r| r.icmp), Some(Some((8, None))));
    assert_eq!(get("icmp-code").map(|r| r.icmp), Some(Some((3, Some(4)))));
    let r = get("icmp6-legacy").expect("icmpv6");
    assert_eq!(
        (r.family, r.proto, r.icmp),
        (Family::V6, Some(58), Some((128, Some(0))))
    );
    assert_eq!(
        get("host-bits").map(|r| r.remote),
        Some(Remote::Net("198.18.7.0/24".parse().expect("net"))),
        "the network of the prefix is enforced"
    );
    assert_eq!(get("world").map(|r| r.remote), Some(Remote::Any));
    assert!(
        get("cross-family").is_none(),
        "a prefix of the other family never matches"
    );
    assert_eq!(
        get("rg").map(|r| r.remote),
        Some(Remote::Set("rg-g-v6".into()))
    );
    let members = &rs.sets["rg-g-v6"];
    assert!(
        members.interval,
        "an address pair CIDR makes it an interval set"
    );
    assert_eq!(
        members
            .elements
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>(),
        ["fd00::7/128", "fd00:1::/64"],
        "members on any host, fixed IPs and pairs, of the rule's family"
    );
    let egr = rules_of(&rs, "g", Direction::Egress);
    assert_eq!(
        egr.iter().find(|r| r.id == "gre").map(|r| r.proto),
        Some(Some(47))
    );
    let ag = &rs.sets["ag-a-v4"];
    assert_eq!(
        (
            ag.interval,
            ag.elements
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
        ),
        (true, vec!["198.18.64.0/18".to_string()])
    );
    assert!(
        !rs.sets.contains_key("ag-a-v6"),
        "no IPv6 rule names the address group"
    );
}

#[test]
fn ports_compile_to_their_sources_interfaces_and_statefulness() {
    let st = state(json!({
        "security_groups": [{"id": "a", "security_group_rules": []},
                            {"id": "b", "stateful": false, "security_group_rules": []}],
        "ports": [
            {"id": "0123456789abcdef", "mac_address": "fa:16:3e:00:00:01", "binding:host_id": "h",
             "security_groups": ["a"], "fixed_ips": [{"ip_address": "198.18.0.1"}],
             "allowed_address_pairs": [{"ip_address": "198.18.9.0/24", "mac_address": "fa:16:3e:aa:bb:cc"}]},
            {"id": "mixed", "mac_address": "fa:16:3e:00:00:02", "binding:host_id": "h",
             "binding:profile": {"interface_name": "eth7"}, "security_groups": ["a", "b"]},
            {"id": "open", "mac_address": "fa:16:3e:00:00:03", "binding:host_id": "h",
             "port_security_enabled": false},
            {"id": "dhcp", "mac_address": "fa:16:3e:00:00:04", "binding:host_id": "h",
             "device_owner": "network:dhcp", "security_groups": ["a"]},
            {"id": "remote", "mac_address": "fa:16:3e:00:00:05", "binding:host_id": "other",
             "security_groups": ["a"]}
        ]
    }));
    let rs = compile(&st, "h").expect("compile");
    assert_eq!(
        rs.ports.keys().cloned().collect::<Vec<_>>(),
        ["0123456789abcdef", "mixed"],
        "no port security, network: ports and other hosts' ports are not filtered here"
    );
    let p = &rs.ports["0123456789abcdef"];
    assert_eq!(
        p.ifname, "tap0123456789a",
        "tap + the first 11 characters of the id"
    );
    assert!(p.stateful && p.has_addresses);
    assert_eq!(
        p.macs.iter().cloned().collect::<Vec<_>>(),
        ["fa:16:3e:00:00:01", "fa:16:3e:aa:bb:cc"]
    );
    let v4: Vec<String> = p.sources[&Family::V4]
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(v4, ["198.18.0.1/32", "198.18.9.0/24"]);
    let v6: Vec<String> = p.sources[&Family::V6]
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(
        v6,
        [
            "fe80::f816:3eff:fe00:1/128",
            "fe80::f816:3eff:feaa:bbcc/128"
        ],
        "the link-local address of every MAC it may use"
    );
    let m = &rs.ports["mixed"];
    assert_eq!(m.ifname, "eth7", "binding:profile.interface_name wins");
    assert!(!m.stateful, "one stateless group makes the port stateless");
    assert!(!m.has_addresses);
    assert_eq!(
        rs.chains.len(),
        4,
        "chains of the used groups, both directions"
    );
}

/// A deterministic generator of states and changes (xorshift), so a failing seed replays.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn rule(&mut self, id: String) -> Value {
        let v6 = self.chance(30);
        let mut r = json!({"id": id, "direction": if self.chance(60) {"ingress"} else {"egress"},
                           "ethertype": if v6 {"IPv6"} else {"IPv4"}});
        let protos = [
            Value::Null,
            json!("tcp"),
            json!("udp"),
            json!("icmp"),
            json!("6"),
            json!("132"),
            json!("any"),
        ];
        let proto = protos[self.below(protos.len() as u64) as usize].clone();
        if matches!(proto.as_str(), Some("tcp" | "udp" | "6" | "132")) && self.chance(70) {
            let a = 1 + self.below(1000);
            r["port_range_min"] = json!(a);
            r["port_range_max"] = json!(a + self.below(3));
        }
        if proto.as_str() == Some("icmp") {
            r["protocol"] = json!(if v6 { "ipv6-icmp" } else { "icmp" });
            if self.chance(50) {
                r["port_range_min"] = json!(self.below(20));
            }
        } else {
            r["protocol"] = proto;
        }
        match self.below(4) {
            0 => {}
            1 => {
                r["remote_ip_prefix"] = json!(if v6 {
                    format!("fd00:{:x}::/48", self.below(4))
                } else {
                    format!("198.18.{}.0/24", self.below(4))
                })
            }
            2 => r["remote_group_id"] = json!(format!("g{}", self.below(5))),
            _ => r["remote_address_group_id"] = json!(format!("a{}", self.below(3))),
        }
        r
    }

    fn group(&mut self, i: usize, version: u64) -> SecurityGroup {
        let rules: Vec<Value> = (0..self.below(6))
            .map(|j| self.rule(format!("r{i}-{j}-{version}")))
            .collect();
        let v = json!({"id": format!("g{i}"), "stateful": !self.chance(15), "security_group_rules": rules});
        serde_json::from_value(v).expect("group")
    }

    fn port(&mut self, i: usize) -> Port {
        let groups: Vec<String> = (0..1 + self.below(3))
            .map(|_| format!("g{}", self.below(5)))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut ips = vec![json!({"ip_address": format!("198.18.{}.{}", self.below(4), 1 + i)})];
        if self.chance(50) {
            ips.push(json!({"ip_address": format!("fd00::{:x}", 1 + i)}));
        }
        let pairs: Vec<Value> = if self.chance(20) {
            vec![
                json!({"ip_address": if self.chance(50) { format!("198.18.{}.0/28", 100 + i) } else { format!("198.18.200.{}", 1 + i) }}),
            ]
        } else {
            vec![]
        };
        let v = json!({"id": format!("p{i:02}"), "mac_address": format!("fa:16:3e:00:00:{i:02x}"),
                       "binding:host_id": if self.chance(60) {"hv"} else {"other"},
                       "port_security_enabled": !self.chance(10),
                       "security_groups": groups, "fixed_ips": ips, "allowed_address_pairs": pairs});
        serde_json::from_value(v).expect("port")
    }

    fn address_group(&mut self, i: usize) -> AddressGroup {
        let addrs: Vec<String> = (0..self.below(4))
            .map(|_| {
                if self.chance(70) {
                    format!("198.18.{}.0/{}", 64 + self.below(8), 24 + self.below(8))
                } else {
                    format!("fd00:{:x}::/64", 10 + self.below(8))
                }
            })
            .collect();
        serde_json::from_value(json!({"id": format!("a{i}"), "addresses": addrs})).expect("ag")
    }
}

fn initial(g: &mut Gen) -> State {
    State {
        security_groups: (0..5).map(|i| g.group(i, 0)).collect(),
        ports: (0..8).map(|i| g.port(i)).collect(),
        address_groups: (0..3).map(|i| g.address_group(i)).collect(),
    }
}

/// Applies one random change to both the state and the view.
fn change(g: &mut Gen, st: &mut State, view: &mut HostView, step: u64) {
    match g.below(6) {
        0 | 1 => {
            // a port changes (groups, addresses, host, port security) or appears
            let i = g.below(12) as usize;
            let p = g.port(i);
            match st.ports.iter().position(|q| q.id == p.id) {
                Some(k) => st.ports[k] = p.clone(),
                None => st.ports.push(p.clone()),
            }
            view.upsert_port(p).expect("known groups");
        }
        2 => {
            if !st.ports.is_empty() {
                let k = g.below(st.ports.len() as u64) as usize;
                let p = st.ports.remove(k);
                view.remove_port(&p.id);
            }
        }
        3 => {
            let i = g.below(5) as usize;
            let sg = g.group(i, step);
            st.security_groups[i] = sg.clone();
            view.upsert_group(sg);
        }
        4 => {
            let i = g.below(3) as usize;
            let ag = g.address_group(i);
            match st.address_groups.iter().position(|a| a.id == ag.id) {
                Some(k) => st.address_groups[k] = ag.clone(),
                None => st.address_groups.push(ag.clone()),
            }
            view.upsert_address_group(ag);
        }
        _ => {
            let id = format!("a{}", g.below(3));
            st.address_groups.retain(|a| a.id != id);
            view.remove_address_group(&id);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// After every change the view's ruleset is what a fresh compile of the whole state
    /// gives, and the delta it computes from the touched pieces is exactly the delta of the
    /// two whole rulesets.
    #[test]
    fn the_incremental_view_matches_a_fresh_compile(seed in 1u64..u64::MAX, steps in 1u64..12) {
        let mut g = Gen(seed);
        let mut st = initial(&mut g);
        let mut view = HostView::new(&st, "hv").expect("compile");
        prop_assert_eq!(view.ruleset(), &compile(&st, "hv").expect("compile"));
        let mut applied = view.ruleset().clone();
        for step in 1..=steps {
            for _ in 0..1 + g.below(3) {
                change(&mut g, &mut st, &mut view, step);
            }
            let fresh = compile(&st, "hv").expect("compile");
            prop_assert_eq!(view.ruleset(), &fresh);
            let d = view.take_delta();
            prop_assert_eq!(&d, &delta(&applied, &fresh));
            prop_assert!(view.take_delta().script.is_empty(), "nothing touched since");
            applied = fresh;
        }
    }

    /// The text depends on the state, not on the order objects come in.
    #[test]
    fn the_order_of_the_state_file_does_not_change_the_text(seed in 1u64..u64::MAX) {
        let mut g = Gen(seed);
        let st = initial(&mut g);
        let mut shuffled = st.clone();
        shuffled.ports.reverse();
        shuffled.security_groups.reverse();
        shuffled.address_groups.reverse();
        prop_assert_eq!(
            render(&compile(&st, "hv").expect("compile")),
            render(&compile(&shuffled, "hv").expect("compile"))
        );
    }
}

#[test]
fn a_member_joining_elsewhere_changes_only_set_elements() {
    let st = state(json!({
        "security_groups": [{"id": "web", "security_group_rules": []},
                            {"id": "db", "security_group_rules": [
                                {"id": "r", "direction": "ingress", "protocol": "tcp", "port_range_min": 3306,
                                 "port_range_max": 3306, "remote_group_id": "web"}]}],
        "ports": [port("db1", "hv", &["db"], "198.18.2.1"), port("web1", "other", &["web"], "198.18.1.1")]
    }));
    let mut view = HostView::new(&st, "hv").expect("compile");
    let joiner: Port =
        serde_json::from_value(port("web2", "other", &["web"], "198.18.1.2")).expect("port");
    view.upsert_port(joiner).expect("upsert");
    let d = view.take_delta();
    assert!(d.elements_only, "{}", d.script);
    assert_eq!(
        d.script,
        "add element inet palisade rg-web-v4 { 198.18.1.2 }\n"
    );
    view.remove_port("web1");
    assert_eq!(
        view.take_delta().script,
        "delete element inet palisade rg-web-v4 { 198.18.1.1 }\n"
    );
    let err = view.remove_group("db").expect_err("in use");
    assert!(err.to_string().contains("db1"), "{err}");
    let stray: Port =
        serde_json::from_value(port("x", "hv", &["nope"], "198.18.2.9")).expect("port");
    let err = view.upsert_port(stray).expect_err("unknown group");
    assert!(
        err.to_string().contains("security_groups[0]") && err.to_string().contains("nope"),
        "{err}"
    );
    assert!(
        view.take_delta().script.is_empty(),
        "a refused change changes nothing"
    );
}
