//! Golden output of the compiler (reviewed by hand once; `PALISADE_UPDATE_GOLDEN=1` rewrites
//! it), explain's verdicts on the same view, and state-file errors that name path and value.

use palisade_dataplane::explain::{explain, Probe};
use palisade_dataplane::state::Direction;
use palisade_dataplane::{compile, render, State};
use std::path::PathBuf;

fn golden(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

fn seed() -> State {
    State::parse(&std::fs::read_to_string(golden("seed004.state.yaml")).expect("state"))
        .expect("valid state")
}

#[test]
fn compiled_text_matches_the_reviewed_golden_file() {
    let text = render(&compile(&seed(), "hv1").expect("compile"));
    let path = golden("seed004.hv1.nft");
    if std::env::var("PALISADE_UPDATE_GOLDEN").is_ok() {
        std::fs::write(&path, &text).expect("write golden");
    }
    let want = std::fs::read_to_string(&path)
        .expect("golden file (run with PALISADE_UPDATE_GOLDEN=1 once)");
    assert_eq!(
        text, want,
        "compiler output changed; review the diff and update the golden file"
    );
    assert_eq!(
        render(&compile(&seed(), "hv1").expect("compile")),
        text,
        "deterministic"
    );
    for rule in [
        "r-web-80",
        "r-web-443",
        "r-db-3306",
        "r-db-3306-v6",
        "r-db-icmp",
    ] {
        assert!(
            text.contains(&format!("comment \"{rule}\"")),
            "every rule carries its id: {rule}"
        );
    }
    assert!(
        !text.contains("p-web-2"),
        "a port bound to another host is not compiled here"
    );
    assert!(
        text.contains("198.18.1.2"),
        "…but its addresses are members of the web group's set"
    );
}

fn probe(
    port: &str,
    direction: Direction,
    remote: &str,
    local: &str,
    proto: u8,
    dport: u16,
) -> Probe {
    Probe {
        port: port.into(),
        direction,
        remote: remote.parse().expect("ip"),
        local: local.parse().expect("ip"),
        src_mac: None,
        proto,
        sport: 40000,
        dport,
        icmp: None,
    }
}

#[test]
fn explain_names_the_deciding_rule_or_the_reason() {
    let rs = compile(&seed(), "hv1").expect("compile");
    let v = explain(
        &rs,
        &probe(
            "p-web-1",
            Direction::Ingress,
            "203.0.113.9",
            "198.18.1.1",
            6,
            443,
        ),
    )
    .expect("filtered");
    assert!(v.allowed);
    assert_eq!(
        (v.group.as_deref(), v.rule.as_deref()),
        (Some("web"), Some("r-web-443"))
    );
    let v = explain(
        &rs,
        &probe(
            "p-web-1",
            Direction::Ingress,
            "203.0.113.9",
            "198.18.1.1",
            6,
            22,
        ),
    )
    .expect("filtered");
    assert_eq!((v.allowed, v.reason.as_str()), (false, "default drop"));
    let v = explain(
        &rs,
        &probe(
            "p-db-1",
            Direction::Ingress,
            "198.18.1.2",
            "198.18.2.1",
            6,
            3306,
        ),
    )
    .expect("filtered");
    assert_eq!(
        v.rule.as_deref(),
        Some("r-db-3306"),
        "a member on another host is in the remote group"
    );
    let v = explain(
        &rs,
        &probe(
            "p-db-1",
            Direction::Ingress,
            "198.18.3.3",
            "198.18.2.1",
            6,
            3306,
        ),
    )
    .expect("filtered");
    assert!(!v.allowed);
    let v = explain(
        &rs,
        &probe(
            "p-db-1",
            Direction::Egress,
            "198.18.3.3",
            "198.18.9.7",
            6,
            80,
        ),
    )
    .expect("filtered");
    assert!(
        v.allowed,
        "an allowed address pair is a valid source: {v:?}"
    );
    let v = explain(
        &rs,
        &probe(
            "p-db-1",
            Direction::Egress,
            "198.18.3.3",
            "198.18.7.7",
            6,
            80,
        ),
    )
    .expect("filtered");
    assert_eq!(v.reason, "spoofed source address");
    let mut icmp = probe(
        "p-db-1",
        Direction::Ingress,
        "198.18.3.3",
        "198.18.2.1",
        1,
        0,
    );
    icmp.icmp = Some((8, 0));
    assert_eq!(
        explain(&rs, &icmp).expect("filtered").rule.as_deref(),
        Some("r-db-icmp")
    );
    icmp.icmp = Some((13, 0));
    assert!(
        !explain(&rs, &icmp).expect("filtered").allowed,
        "only echo request is allowed"
    );
    assert!(
        explain(
            &rs,
            &probe(
                "p-web-2",
                Direction::Ingress,
                "198.18.3.3",
                "198.18.1.2",
                6,
                80
            )
        )
        .is_none(),
        "not on this host"
    );
}

#[test]
fn bad_state_files_name_the_path_and_the_value() {
    let cases = [
        (r#"{"ports": [{"id": "a", "mac_address": "fa:16:3e:00:00:01"}, {"id": "b", "mac_address": "fa:16:3e:00:00:02", "fixed_ips": [{"ip_address": "198.18.0.300"}]}]}"#, "ports[1].fixed_ips[0].ip_address", "\"198.18.0.300\" is not an IP address"),
        (r#"{"ports": [{"id": "a", "mac_address": "zz"}]}"#, "ports[0].mac_address", "\"zz\" is not a MAC address"),
        (r#"{"security_groups": [{"id": "g", "security_group_rules": [{"id": "r", "direction": "sideways"}]}]}"#, "security_groups[0].security_group_rules[0].direction", "sideways"),
        (r#"{"address_groups": [{"id": "a", "addresses": ["10.0.0.0/8", "nope"]}]}"#, "address_groups[0].addresses", "\"nope\""),
        ("ports:\n  - id: a\n    mac_address: fa:16:3e:00:00:01\n    allowed_address_pairs:\n      - ip_address: 1.2.3.4/99\n", "ports[0].allowed_address_pairs[0].ip_address", "\"1.2.3.4/99\""),
    ];
    for (text, path, value) in cases {
        let err = State::parse(text).expect_err("invalid state").to_string();
        assert!(
            err.contains(path) && err.contains(value),
            "error {err:?} must name {path} and {value}"
        );
    }
    assert!(State::parse("{{{").is_err());
    let st = State::parse(r#"{"ports": [{"id": "p", "mac_address": "fa:16:3e:00:00:01", "security_groups": ["missing"], "binding:host_id": "h"}]}"#).expect("parses");
    let err = compile(&st, "h").expect_err("unknown group").to_string();
    assert!(err.contains("ports[0]") && err.contains("missing"), "{err}");
}
