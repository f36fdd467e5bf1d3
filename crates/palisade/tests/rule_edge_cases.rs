//! Acceptance 2: every edge case of spec §4.8 (POST /security-group-rules) with Neutron's
//! exact outcome: status, error type, and the normalised fields.

mod common;
use common::Server;
use serde_json::{json, Map, Value};

struct Ctx {
    s: Server,
    sg: String,
    other_sg: String,
}

impl Ctx {
    async fn post_as(&self, token: &str, sg: &str, patch: Value) -> (u16, Value) {
        let mut body = Map::new();
        body.insert("security_group_id".into(), json!(sg));
        body.insert("direction".into(), json!("ingress"));
        for (k, v) in patch.as_object().expect("patch object") {
            if v == &json!("<absent>") {
                body.remove(k);
            } else {
                body.insert(k.clone(), v.clone());
            }
        }
        self.s
            .call_with(
                "POST",
                "/v2.0/security-group-rules",
                Some(json!({"security_group_rule": body})),
                Some(token),
            )
            .await
    }

    async fn post(&self, patch: Value) -> (u16, Value) {
        self.post_as(&self.s.token.clone(), &self.sg, patch).await
    }

    /// Expects 201 with `fields`, deletes the rule unless `keep`, returns its id.
    async fn ok(&self, case: &str, patch: Value, fields: Value, keep: bool) -> String {
        let (st, v) = self.post(patch).await;
        assert_eq!(st, 201, "case {case}: {v}");
        let r = &v["security_group_rule"];
        for (k, want) in fields.as_object().expect("fields") {
            assert_eq!(&r[k], want, "case {case}: field {k} in {r}");
        }
        let id = r["id"].as_str().expect("id").to_string();
        // show returns exactly what create returned
        let (_, shown) = self
            .s
            .call("GET", &format!("/v2.0/security-group-rules/{id}"), None)
            .await;
        assert_eq!(
            &shown["security_group_rule"], r,
            "case {case}: show differs from create"
        );
        if !keep {
            self.delete(&id).await;
        }
        id
    }

    async fn delete(&self, id: &str) {
        let (st, _) = self
            .s
            .call("DELETE", &format!("/v2.0/security-group-rules/{id}"), None)
            .await;
        assert_eq!(st, 204);
    }

    async fn err(&self, case: &str, patch: Value, status: u16, kind: &str, contains: &[&str]) {
        let (st, v) = self.post(patch).await;
        check_err(case, st, &v, status, kind, contains);
    }
}

fn check_err(case: &str, st: u16, v: &Value, status: u16, kind: &str, contains: &[&str]) {
    assert_eq!(st, status, "case {case}: {v}");
    let e = &v["NeutronError"];
    assert_eq!(e["type"], kind, "case {case}: {v}");
    assert_eq!(e["detail"], "", "case {case}");
    let msg = e["message"].as_str().unwrap_or("");
    for c in contains {
        assert!(msg.contains(c), "case {case}: message {msg:?} lacks {c:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_edge_case_of_spec_section_4_has_neutrons_outcome() {
    let s = Server::start();
    let sg = s.create_sg("edge").await;
    let other_sg = s.create_sg("other").await;
    let c = Ctx { s, sg, other_sg };
    let null = Value::Null;

    // 1–6: protocols by name and number, kept as given.
    c.ok(
        "1",
        json!({"protocol": "tcp", "port_range_min": 22, "port_range_max": 22}),
        json!({"protocol": "tcp", "port_range_min": 22, "port_range_max": 22}),
        false,
    )
    .await;
    let six = c
        .ok(
            "2",
            json!({"protocol": 6, "port_range_min": 22, "port_range_max": 22}),
            json!({"protocol": "6"}),
            true,
        )
        .await;
    c.err(
        "2 (dup by name)",
        json!({"protocol": "tcp", "port_range_min": 22, "port_range_max": 22}),
        409,
        "SecurityGroupRuleExists",
        &[&six],
    )
    .await;
    c.delete(&six).await;
    c.ok(
        "3",
        json!({"protocol": "TCP", "ethertype": "ipV4"}),
        json!({"protocol": "tcp", "ethertype": "IPv4"}),
        false,
    )
    .await;
    c.ok(
        "4",
        json!({"protocol": "any"}),
        json!({"protocol": null}),
        false,
    )
    .await;
    c.ok("5", json!({"protocol": 0}), json!({"protocol": "0"}), false)
        .await;
    c.ok("6", json!({"protocol": 2}), json!({"protocol": "2"}), false)
        .await;
    c.err(
        "7",
        json!({"protocol": "tcp/ip"}),
        400,
        "SecurityGroupRuleInvalidProtocol",
        &["tcp/ip"],
    )
    .await;
    for bad in [json!(256), json!(-1), json!("bad")] {
        c.err(
            "8",
            json!({"protocol": bad}),
            400,
            "SecurityGroupRuleInvalidProtocol",
            &[],
        )
        .await;
    }
    // 9–16: port ranges.
    let all = c
        .ok(
            "9",
            json!({"protocol": "tcp", "port_range_min": 1, "port_range_max": 65535}),
            json!({"port_range_min": null, "port_range_max": null}),
            true,
        )
        .await;
    c.err(
        "9 (dup of no ports)",
        json!({"protocol": "tcp"}),
        409,
        "SecurityGroupRuleExists",
        &[&all],
    )
    .await;
    c.delete(&all).await;
    c.ok(
        "10",
        json!({"port_range_min": 1, "port_range_max": 65535}),
        json!({"protocol": null, "port_range_min": null}),
        false,
    )
    .await;
    c.err(
        "11",
        json!({"port_range_min": 22, "port_range_max": 22}),
        400,
        "SecurityGroupProtocolRequiredWithPorts",
        &["port_range_min"],
    )
    .await;
    c.err(
        "12a",
        json!({"protocol": "tcp", "port_range_min": 70}),
        400,
        "SecurityGroupInvalidPortRange",
        &["port_range_min must be <= port_range_max"],
    )
    .await;
    c.err(
        "12b",
        json!({"protocol": "tcp", "port_range_max": 70}),
        400,
        "SecurityGroupInvalidPortRange",
        &[],
    )
    .await;
    for p in [json!("tcp"), json!("udp"), json!(6), json!(17)] {
        c.err(
            "13",
            json!({"protocol": p, "port_range_min": 50, "port_range_max": 22}),
            400,
            "SecurityGroupInvalidPortRange",
            &["50", "22"],
        )
        .await;
    }
    c.err(
        "14",
        json!({"protocol": "tcp", "port_range_min": 0, "port_range_max": 80}),
        400,
        "SecurityGroupInvalidPortValue",
        &["port 0", "port_range_min"],
    )
    .await;
    c.err(
        "15a",
        json!({"protocol": "tcp", "port_range_min": -16, "port_range_max": 80}),
        400,
        "SecurityGroupInvalidPortValue",
        &["Invalid value for port -16"],
    )
    .await;
    c.err(
        "15b",
        json!({"protocol": "tcp", "port_range_min": 80, "port_range_max": 65536}),
        400,
        "SecurityGroupInvalidPortValue",
        &["Invalid value for port 65536", "port_range_max"],
    )
    .await;
    for p in [json!(111), json!("gre")] {
        c.err(
            "16",
            json!({"protocol": p, "port_range_min": 70, "port_range_max": 70}),
            400,
            "SecurityGroupInvalidProtocolForPort",
            &[],
        )
        .await;
    }
    // 17–22: ICMP type/code.
    c.ok(
        "17",
        json!({"protocol": "icmp", "port_range_min": 8, "port_range_max": 5}),
        json!({"port_range_min": 8, "port_range_max": 5}),
        false,
    )
    .await;
    for (t, code) in [
        (json!(8), null.clone()),
        (json!(3), json!(0)),
        (json!(0), json!(0)),
        (json!(11), null.clone()),
    ] {
        c.ok(
            "18",
            json!({"protocol": "icmp", "port_range_min": t, "port_range_max": code}),
            json!({"port_range_min": t, "port_range_max": code}),
            false,
        )
        .await;
    }
    for code in [2, 0] {
        c.err(
            "19",
            json!({"protocol": "icmp", "port_range_max": code}),
            400,
            "SecurityGroupMissingIcmpType",
            &["ICMP type (port-range-min) is missing"],
        )
        .await;
    }
    c.err(
        "20a",
        json!({"protocol": "icmp", "port_range_min": 256}),
        400,
        "SecurityGroupInvalidIcmpValue",
        &["ICMP type", "256"],
    )
    .await;
    c.err(
        "20b",
        json!({"protocol": "icmp", "port_range_min": 1, "port_range_max": 256}),
        400,
        "SecurityGroupInvalidIcmpValue",
        &["Invalid value for ICMP code", "256"],
    )
    .await;
    c.err(
        "20c",
        json!({"protocol": "icmp", "port_range_min": 300, "port_range_max": 1}),
        400,
        "SecurityGroupInvalidIcmpValue",
        &["Invalid value for ICMP type", "300"],
    )
    .await;
    c.err(
        "21",
        json!({"protocol": "icmp", "port_range_min": -1, "port_range_max": 25}),
        400,
        "SecurityGroupInvalidPortValue",
        &["Invalid value for port -1"],
    )
    .await;
    c.ok(
        "22",
        json!({"protocol": "icmp", "port_range_min": 1, "port_range_max": 65535}),
        json!({"port_range_min": null, "port_range_max": null}),
        false,
    )
    .await;
    // 23–26: IPv6 ICMP spellings and IPv6-only protocols.
    for p in ["icmp", "icmpv6"] {
        c.ok(
            "23",
            json!({"ethertype": "IPv6", "protocol": p}),
            json!({"protocol": "ipv6-icmp", "ethertype": "IPv6"}),
            false,
        )
        .await;
    }
    c.ok(
        "24",
        json!({"ethertype": "IPv6", "protocol": 1}),
        json!({"protocol": "58"}),
        false,
    )
    .await;
    c.ok(
        "25",
        json!({"ethertype": "IPv6", "protocol": "ipv6-icmp", "port_range_min": 134}),
        json!({"port_range_min": 134, "port_range_max": null}),
        false,
    )
    .await;
    for p in [
        json!("ipv6-encap"),
        json!("ipv6-frag"),
        json!("ipv6-icmp"),
        json!("ipv6-nonxt"),
        json!("ipv6-opts"),
        json!("ipv6-route"),
        json!(41),
        json!(43),
        json!(44),
        json!(58),
        json!(59),
        json!(60),
        json!("icmpv6"),
    ] {
        c.err(
            "26",
            json!({"ethertype": "IPv4", "protocol": p}),
            400,
            "SecurityGroupEthertypeConflictWithProtocol",
            &["Invalid ethertype IPv4 for protocol"],
        )
        .await;
    }
    // 27–32: prefixes.
    c.err(
        "27a",
        json!({"ethertype": "IPv4", "remote_ip_prefix": "2001:db8:1234::/48"}),
        400,
        "SecurityGroupRuleParameterConflict",
        &["Conflicting value ethertype IPv4", "2001:db8:1234::/48"],
    )
    .await;
    c.err(
        "27b",
        json!({"ethertype": "IPv6", "remote_ip_prefix": "192.168.1.1/24"}),
        400,
        "SecurityGroupRuleParameterConflict",
        &["Conflicting value ethertype IPv6"],
    )
    .await;
    for e in [json!("IPv5"), json!("ip4"), json!(""), json!(2)] {
        c.err(
            "28",
            json!({"ethertype": e}),
            400,
            "SecurityGroupRuleInvalidEtherType",
            &["ethertype"],
        )
        .await;
    }
    c.ok(
        "29a",
        json!({"remote_ip_prefix": "10.1.2.3"}),
        json!({"remote_ip_prefix": "10.1.2.3/32", "normalized_cidr": "10.1.2.3/32"}),
        false,
    )
    .await;
    c.ok(
        "29b",
        json!({"ethertype": "IPv6", "remote_ip_prefix": "fe80::2677:3ff:fe7d:4c"}),
        json!({"remote_ip_prefix": "fe80::2677:3ff:fe7d:4c/128"}),
        false,
    )
    .await;
    c.ok(
        "30",
        json!({"remote_ip_prefix": "10.0.0.34/24"}),
        json!({"remote_ip_prefix": "10.0.0.34/24", "normalized_cidr": "10.0.0.0/24"}),
        false,
    )
    .await;
    for bad in ["bad_ip", "256", "172.30./24", "192.168.1.1/33"] {
        c.err(
            "31",
            json!({"remote_ip_prefix": bad}),
            400,
            "InvalidCIDR",
            &[bad, "remote_ip_prefix"],
        )
        .await;
    }
    c.err(
        "31 (v6)",
        json!({"ethertype": "IPv6", "remote_ip_prefix": "2001:db8:a::123/129"}),
        400,
        "InvalidCIDR",
        &[],
    )
    .await;
    let any = c
        .ok(
            "32",
            json!({"protocol": "udp", "remote_ip_prefix": "0.0.0.0/0"}),
            json!({"remote_ip_prefix": "0.0.0.0/0"}),
            true,
        )
        .await;
    c.err(
        "32 (dup of null prefix)",
        json!({"protocol": "udp"}),
        409,
        "SecurityGroupRuleExists",
        &[&any],
    )
    .await;
    c.delete(&any).await;
    // 33–38: remotes and parent.
    let (st, ag) =
        c.s.call(
            "POST",
            "/v2.0/address-groups",
            Some(json!({"address_group": {"name": "ag", "addresses": ["198.18.0.0/24"]}})),
        )
        .await;
    assert_eq!(st, 201, "{ag}");
    let ag = ag["address_group"]["id"].as_str().expect("id").to_string();
    for patch in [
        json!({"remote_ip_prefix": "10.0.0.0/8", "remote_group_id": c.other_sg}),
        json!({"remote_ip_prefix": "10.0.0.0/8", "remote_address_group_id": ag}),
        json!({"remote_group_id": c.other_sg, "remote_address_group_id": ag}),
        json!({"remote_ip_prefix": "0.0.0.0/0", "remote_group_id": c.other_sg, "remote_address_group_id": ag}),
    ] {
        c.err(
            "33",
            patch,
            400,
            "SecurityGroupMultipleRemoteEntites",
            &["remote_ip_prefix or remote_group_id or remote_address_group_id"],
        )
        .await;
    }
    for bad in ["4a4a43f6-38d2-4fd3-a0c9-fe0dd3e9a5e1", "bad_group_id"] {
        c.err(
            "34",
            json!({"remote_group_id": bad}),
            404,
            "SecurityGroupNotFound",
            &[bad],
        )
        .await;
    }
    c.err(
        "36",
        json!({"remote_address_group_id": "4a4a43f6-38d2-4fd3-a0c9-fe0dd3e9a5e1"}),
        404,
        "AddressGroupNotFound",
        &[],
    )
    .await;
    c.ok(
        "remote group ok",
        json!({"remote_group_id": c.other_sg}),
        json!({"remote_group_id": c.other_sg, "remote_ip_prefix": null, "normalized_cidr": null}),
        false,
    )
    .await;
    c.ok(
        "remote address group ok",
        json!({"remote_address_group_id": ag}),
        json!({"remote_address_group_id": ag}),
        false,
    )
    .await;
    c.err(
        "37",
        json!({"security_group_id": "4a4a43f6-38d2-4fd3-a0c9-fe0dd3e9a5e1"}),
        404,
        "SecurityGroupNotFound",
        &[],
    )
    .await;
    c.err(
        "38",
        json!({"security_group_id": 0}),
        400,
        "HTTPBadRequest",
        &["security_group_id"],
    )
    .await;

    // 35, 39, 41: another project.
    let (st, t) = c.s.call("POST", "/v2.0/palisade/tokens", Some(json!({"token": {"project_id": "bob-project", "roles": ["member", "reader"], "user": "bob"}}))).await;
    assert_eq!(st, 201, "{t}");
    let bob = t["token"]["id"].as_str().expect("token").to_string();
    let (st, v) =
        c.s.call_with(
            "POST",
            "/v2.0/security-groups",
            Some(json!({"security_group": {"name": "bobs"}})),
            Some(&bob),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let bob_sg = v["security_group"]["id"].as_str().expect("id").to_string();
    let (st, v) = c
        .post_as(&bob, &bob_sg, json!({"remote_group_id": c.sg}))
        .await;
    check_err("35", st, &v, 404, "SecurityGroupNotFound", &[]);
    let (st, v) = c.post_as(&bob, &c.sg, json!({"protocol": "tcp"})).await;
    // Neutron says 403 here; issue #3 ("another project's object is 404, never 403")
    // overrides it, so that no answer confirms another project's group exists.
    check_err("39", st, &v, 404, "SecurityGroupNotFound", &[]);
    let admin_project = c.s.admin_project().await;
    let (st, v) = c
        .post_as(
            &c.s.token.clone(),
            &bob_sg,
            json!({"protocol": "udp", "project_id": admin_project}),
        )
        .await;
    assert_eq!(st, 201, "case 41: {v}");
    let rid = v["security_group_rule"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    assert_eq!(
        v["security_group_rule"]["project_id"],
        admin_project.as_str()
    );
    let (_, shown) =
        c.s.call_with(
            "GET",
            &format!("/v2.0/security-groups/{bob_sg}"),
            None,
            Some(&bob),
        )
        .await;
    assert!(
        shown["security_group"]["security_group_rules"]
            .as_array()
            .expect("rules")
            .iter()
            .any(|r| r["id"] == rid.as_str()),
        "41: bob's group shows the admin's rule"
    );
    let (_, listed) =
        c.s.call_with("GET", "/v2.0/security-group-rules", None, Some(&bob))
            .await;
    let ids: Vec<&str> = listed["security_group_rules"]
        .as_array()
        .expect("rules")
        .iter()
        .filter_map(|r| r["id"].as_str())
        .collect();
    assert!(
        ids.contains(&rid.as_str()),
        "41: bob's rule list has the admin's rule in bob's group"
    );
    assert!(
        listed["security_group_rules"]
            .as_array()
            .expect("rules")
            .iter()
            .all(|r| r["security_group_id"] == bob_sg.as_str()
                || r["security_group_id"] != c.sg.as_str()),
        "41: bob never sees rules of the admin's groups"
    );

    // 42–47.
    let first = c.ok("42", json!({"protocol": "tcp", "port_range_min": 99, "port_range_max": 99, "description": "one"}), json!({"description": "one"}), true).await;
    c.err("42", json!({"protocol": "tcp", "port_range_min": 99, "port_range_max": 99, "description": "two"}), 409, "SecurityGroupRuleExists", &[&format!("Rule id is {first}")]).await;
    let udp = c
        .ok(
            "43",
            json!({"protocol": 17, "port_range_min": 50, "port_range_max": 100}),
            json!({"protocol": "17"}),
            true,
        )
        .await;
    c.err(
        "43",
        json!({"protocol": "udp", "port_range_min": 50, "port_range_max": 100}),
        409,
        "SecurityGroupRuleExists",
        &[&udp],
    )
    .await;
    c.err(
        "44a",
        json!({"direction": "<absent>"}),
        400,
        "HTTPBadRequest",
        &["Required attribute 'direction' not specified"],
    )
    .await;
    c.err(
        "44b",
        json!({"direction": "INGRESS"}),
        400,
        "HTTPBadRequest",
        &["direction", "'INGRESS'", "is not in ['ingress', 'egress']"],
    )
    .await;
    c.err(
        "45a",
        json!({"foo": 1}),
        400,
        "HTTPBadRequest",
        &["Unrecognized attribute(s) 'foo'"],
    )
    .await;
    c.err(
        "45b",
        json!({"id": "x"}),
        400,
        "HTTPBadRequest",
        &["Attribute 'id' not allowed in POST"],
    )
    .await;
    c.err(
        "45c",
        json!({"normalized_cidr": "10.0.0.0/8"}),
        400,
        "HTTPBadRequest",
        &["Attribute 'normalized_cidr' not allowed in POST"],
    )
    .await;
    c.ok(
        "46",
        json!({"protocol": "tcp", "port_range_min": "22", "port_range_max": "23"}),
        json!({"port_range_min": 22, "port_range_max": 23}),
        false,
    )
    .await;

    // 47: quota before policy and semantic checks.
    let (_, d) =
        c.s.call(
            "GET",
            &format!("/v2.0/quotas/{admin_project}/details"),
            None,
        )
        .await;
    let used = d["quota"]["security_group_rule"]["used"]
        .as_i64()
        .expect("used");
    let (st, v) =
        c.s.call(
            "PUT",
            &format!("/v2.0/quotas/{admin_project}"),
            Some(json!({"quota": {"security_group_rule": used}})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    c.err(
        "47",
        json!({"protocol": "tcp", "port_range_min": 50, "port_range_max": 22}),
        409,
        "OverQuota",
        &["security_group_rule"],
    )
    .await;
    c.err(
        "47 (before policy)",
        json!({"security_group_id": bob_sg, "protocol": "tcp"}),
        409,
        "OverQuota",
        &[],
    )
    .await;
}
