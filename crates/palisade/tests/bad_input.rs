//! Acceptance 3: bad input never produces a 5xx or a crash. Malformed JSON, wrong types,
//! unknown fields, out-of-range numbers, oversized bodies (413), unknown paths (404 with a
//! JSON body); then a property test sends thousands of generated bodies to every endpoint.

mod common;
use common::Server;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Value};

fn neutron_error(v: &Value) -> (&str, &str) {
    let e = &v["NeutronError"];
    (
        e["type"]
            .as_str()
            .unwrap_or_else(|| panic!("no NeutronError.type in {v}")),
        e["message"]
            .as_str()
            .unwrap_or_else(|| panic!("no message in {v}")),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_clear_json_errors() {
    let s = Server::start();
    let sg = s.create_sg("x").await;
    // Malformed JSON names where it broke.
    let (st, body) = s
        .raw(
            "POST",
            "/v2.0/security-groups",
            b"{\"security_group\": {\"name\": ".to_vec(),
        )
        .await;
    assert_eq!(st, 400, "{body}");
    let v: Value = serde_json::from_str(&body).expect("JSON error body");
    let (t, m) = neutron_error(&v);
    assert_eq!(t, "HTTPBadRequest");
    assert!(
        m.contains("Body contains invalid data") && m.contains("line 1 column"),
        "{m}"
    );
    for (body, needle) in [
        (&b""[..], "Resource body required"),
        (b"[]", "expected a JSON object"),
        (
            b"{\"nope\": {}}",
            "Unable to find 'security_group' in request body",
        ),
        (
            b"{\"security_group\": 5}",
            "Object 'security_group' contains invalid data",
        ),
        (b"{\"security_groups\": []}", "Resources required"),
        (
            b"{\"security_group\": {}, \"extra\": 1}",
            "Unrecognized attribute(s) 'extra'",
        ),
    ] {
        let (st, text) = s.raw("POST", "/v2.0/security-groups", body.to_vec()).await;
        assert_eq!(st, 400, "{text}");
        assert!(text.contains(needle), "{needle} not in {text}");
    }
    // Wrong types and out-of-range values name the field and the value.
    let cases: Vec<(&str, String, Value, &[&str])> = vec![
        (
            "POST",
            "/v2.0/security-groups".into(),
            json!({"security_group": {"name": 123}}),
            &["name", "123"],
        ),
        (
            "POST",
            "/v2.0/security-groups".into(),
            json!({"security_group": {"name": true}}),
            &["name", "True"],
        ),
        (
            "POST",
            "/v2.0/security-groups".into(),
            json!({"security_group": {"name": "n".repeat(256)}}),
            &["name", "exceeds maximum length of 255"],
        ),
        (
            "POST",
            "/v2.0/security-groups".into(),
            json!({"security_group": {"stateful": "maybe"}}),
            &["stateful", "'maybe'"],
        ),
        (
            "POST",
            "/v2.0/security-groups".into(),
            json!({"security_group": {"bogus": 1}}),
            &["bogus"],
        ),
        (
            "PUT",
            format!("/v2.0/security-groups/{sg}"),
            json!({"security_group": {"description": ["x"]}}),
            &["description", "[\"x\"]"],
        ),
        (
            "PUT",
            format!("/v2.0/security-groups/{sg}"),
            json!({"security_group": {"id": "x"}}),
            &["id"],
        ),
        (
            "POST",
            "/v2.0/security-group-rules".into(),
            json!({"security_group_rule": {"security_group_id": sg, "direction": "ingress", "protocol": "tcp", "port_range_min": 70000, "port_range_max": 70000}}),
            &["port_range_min", "70000"],
        ),
        (
            "POST",
            "/v2.0/security-group-rules".into(),
            json!({"security_group_rule": {"security_group_id": sg, "direction": "ingress", "protocol": "tcp", "port_range_min": "abc", "port_range_max": 1}}),
            &["port_range_min", "abc"],
        ),
        (
            "POST",
            "/v2.0/security-group-rules".into(),
            json!({"security_group_rule": {"security_group_id": sg, "direction": 7}}),
            &["direction", "7"],
        ),
        (
            "POST",
            "/v2.0/security-group-rules".into(),
            json!({"security_group_rule": {"security_group_id": sg, "direction": "ingress", "protocol": 99999}}),
            &["protocol", "99999"],
        ),
        (
            "POST",
            "/v2.0/security-group-rules".into(),
            json!({"security_group_rule": {"security_group_id": sg, "direction": "ingress", "remote_ip_prefix": 12}}),
            &["remote_ip_prefix", "12"],
        ),
        (
            "POST",
            "/v2.0/ports".into(),
            json!({"port": {"network_id": "n", "security_groups": "abc"}}),
            &["security_groups", "'abc'"],
        ),
        (
            "POST",
            "/v2.0/ports".into(),
            json!({"port": {"network_id": "n", "mac_address": "zz:zz"}}),
            &["mac_address", "'zz:zz'"],
        ),
        (
            "POST",
            "/v2.0/ports".into(),
            json!({"port": {"network_id": "n", "fixed_ips": [{"ip_address": "300.1.1.1"}]}}),
            &["fixed_ips.ip_address", "'300.1.1.1'"],
        ),
        (
            "POST",
            "/v2.0/ports".into(),
            json!({"port": {"network_id": "n", "allowed_address_pairs": [{"ip_address": "224.0.0.1"}]}}),
            &["allowed_address_pairs.ip_address", "'224.0.0.1'"],
        ),
        (
            "POST",
            "/v2.0/networks".into(),
            json!({"network": {"admin_state_up": "sometimes"}}),
            &["admin_state_up", "'sometimes'"],
        ),
        (
            "POST",
            "/v2.0/address-groups".into(),
            json!({"address_group": {"addresses": ["nope"]}}),
            &["addresses", "'nope'"],
        ),
        (
            "PUT",
            format!("/v2.0/security-groups/{sg}/tags"),
            json!({"tags": [1]}),
            &["tags", "1"],
        ),
        (
            "PUT",
            "/v2.0/quotas/p1".into(),
            json!({"quota": {"security_group": -2}}),
            &["security_group", "-2"],
        ),
        (
            "PUT",
            "/v2.0/quotas/p1".into(),
            json!({"quota": {"security_group": 2147483648u64}}),
            &["security_group", "2147483648"],
        ),
        (
            "PUT",
            "/v2.0/quotas/p1".into(),
            json!({"quota": {"security_group": "value"}}),
            &["security_group", "'value'"],
        ),
    ];
    for (method, path, body, needles) in cases {
        let (st, v) = s.call(method, &path, Some(body.clone())).await;
        assert_eq!(st, 400, "{method} {path} {body}: {v}");
        let (_, m) = neutron_error(&v);
        for n in needles {
            assert!(
                m.contains(n),
                "{method} {path} {body}: message {m:?} lacks {n:?}"
            );
        }
    }
    // Bad queries.
    for (q, needle) in [
        ("foo=1", "['foo'] is invalid attribute for filtering"),
        (
            "sort_key=name",
            "The number of sort_keys and sort_dirs must be same",
        ),
        (
            "sort_key=description&sort_dir=asc",
            "['description'] is invalid attribute for sort_keys",
        ),
        (
            "sort_key=name&sort_dir=up",
            "'up' is not in ['asc', 'desc']",
        ),
        (
            "limit=x",
            "Limit must be an integer 0 or greater and not 'x'",
        ),
        (
            "stateful=perhaps",
            "'perhaps' cannot be converted to boolean",
        ),
    ] {
        let (st, v) = s
            .call("GET", &format!("/v2.0/security-groups?{q}"), None)
            .await;
        assert_eq!(st, 400, "{q}: {v}");
        assert!(neutron_error(&v).1.contains(needle), "{q}: {v}");
    }
    // Oversized bodies are 413 with a JSON body, declared or streamed.
    let big = format!(
        "{{\"security_group\": {{\"name\": \"{}\"}}}}",
        "a".repeat(200_000)
    );
    let (st, text) = s
        .raw("POST", "/v2.0/security-groups", big.into_bytes())
        .await;
    assert_eq!(st, 413, "{text}");
    let v: Value = serde_json::from_str(&text).expect("JSON 413 body");
    assert_eq!(neutron_error(&v).0, "HTTPRequestEntityTooLarge");
    // Unknown paths: JSON 404. Unsupported methods: JSON 405. No token: JSON 401.
    for path in ["/v2.0/nope", "/v3/whatever", "/v2.0/security-groups/x/y/z"] {
        let (st, v) = s.call("GET", path, None).await;
        assert_eq!(st, 404, "{path}");
        assert_eq!(neutron_error(&v).0, "HTTPNotFound");
    }
    let (st, v) = s
        .call("PATCH", &format!("/v2.0/security-groups/{sg}"), None)
        .await;
    assert_eq!(st, 405);
    assert_eq!(neutron_error(&v).0, "HTTPMethodNotAllowed");
    let (st, v) = s
        .call("PUT", "/v2.0/security-group-rules/abc", Some(json!({})))
        .await;
    assert_eq!(st, 405, "rules have no update: {v}");
    let (st, v) = s
        .call_with("GET", "/v2.0/security-groups", None, None)
        .await;
    assert_eq!(st, 401);
    assert_eq!(neutron_error(&v).0, "NotAuthenticated");
    let (st, _) = s
        .call_with("GET", "/v2.0/security-groups", None, Some("wrong"))
        .await;
    assert_eq!(st, 401);
    // DELETE with a body, If-Match garbage and mismatch.
    let (st, v) = s
        .call(
            "DELETE",
            &format!("/v2.0/security-groups/{sg}"),
            Some(json!({"x": 1})),
        )
        .await;
    assert_eq!(
        (st, neutron_error(&v).1),
        (400, "Request body is not supported in DELETE.")
    );
    let resp = reqwest::Client::new()
        .put(format!("{}/v2.0/security-groups/{sg}", s.url))
        .header("X-Auth-Token", &s.token)
        .header("If-Match", "revision_number=999")
        .json(&json!({"security_group": {"description": "d"}}))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 412);
    let resp = reqwest::Client::new()
        .delete(format!("{}/v2.0/security-groups/{sg}", s.url))
        .header("X-Auth-Token", &s.token)
        .header("If-Match", "rev=1")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 400);
    assert!(!s.log().contains("panicked"), "server log shows a panic");
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        (-70000i64..70000).prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("tcp"),
            Just("icmp"),
            Just("ipv6-icmp"),
            Just("any"),
            Just("6"),
            Just("IPv4"),
            Just("IPv6"),
            Just("ingress"),
            Just("egress"),
            Just("10.0.0.0/8"),
            Just("::/0"),
            Just("198.18.0.1"),
            Just("default"),
            Just("fa:16:3e:00:00:01"),
            Just("true"),
            Just("-1"),
            Just(""),
            Just("1.2.3.4/33"),
            Just("\u{0}\u{ffff}")
        ]
        .prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(".{0,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

const FIELDS: &[&str] = &[
    "name",
    "description",
    "stateful",
    "project_id",
    "tenant_id",
    "id",
    "security_group_id",
    "direction",
    "ethertype",
    "protocol",
    "port_range_min",
    "port_range_max",
    "remote_ip_prefix",
    "remote_group_id",
    "remote_address_group_id",
    "network_id",
    "fixed_ips",
    "allowed_address_pairs",
    "security_groups",
    "port_security_enabled",
    "mac_address",
    "binding:host_id",
    "binding:profile",
    "device_owner",
    "admin_state_up",
    "shared",
    "addresses",
    "tags",
    "security_group",
    "security_group_rule",
    "port",
    "network",
    "quota",
    "force",
    "roles",
    "user",
    "revision_number",
];

/// Attributes a request may lack that a 400 then names.
const REQUIRED: &[&str] = &[
    "direction",
    "security_group_id",
    "network_id",
    "addresses",
    "tags",
    "project_id",
];

/// Every object key in `v`, down to `depth` levels (arrays included).
fn keys(v: &Value, depth: usize) -> Vec<String> {
    if depth == 0 {
        return Vec::new();
    }
    match v {
        Value::Object(m) => m
            .iter()
            .flat_map(|(k, v)| std::iter::once(k.clone()).chain(keys(v, depth - 1)))
            .collect(),
        Value::Array(a) => a.iter().flat_map(|v| keys(v, depth)).collect(),
        _ => Vec::new(),
    }
}

fn arb_object() -> impl Strategy<Value = Value> {
    let key =
        prop_oneof![4 => prop::sample::select(FIELDS).prop_map(String::from), 1 => "[a-z_]{1,8}"];
    prop::collection::btree_map(key, arb_json(), 0..6)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
}

#[derive(Debug, Clone)]
enum Body {
    Json(Value),
    Bytes(Vec<u8>),
}

fn arb_body(wrapper: &'static str) -> impl Strategy<Value = Body> {
    prop_oneof![
        6 => arb_object().prop_map(move |o| Body::Json(json!({ wrapper: o }))),
        1 => prop::collection::vec(arb_object(), 0..3).prop_map(move |v| Body::Json(json!({ format!("{wrapper}s"): v }))),
        1 => arb_json().prop_map(Body::Json),
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(Body::Bytes),
    ]
}

#[test]
fn thousands_of_generated_bodies_never_get_a_5xx() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let s = Server::start();
    let (sg, net, port, ag) = rt.block_on(async {
        let sg = s.create_sg("target").await;
        let net = s.create_network("n").await;
        let (_, p) = s
            .call(
                "POST",
                "/v2.0/ports",
                Some(json!({"port": {"network_id": net}})),
            )
            .await;
        let (_, a) = s
            .call(
                "POST",
                "/v2.0/address-groups",
                Some(json!({"address_group": {"name": "a"}})),
            )
            .await;
        (
            sg,
            net,
            p["port"]["id"].as_str().expect("port").to_string(),
            a["address_group"]["id"].as_str().expect("ag").to_string(),
        )
    });
    let endpoints: Vec<(&str, String, &'static str)> = vec![
        ("POST", "/v2.0/security-groups".into(), "security_group"),
        (
            "PUT",
            format!("/v2.0/security-groups/{sg}"),
            "security_group",
        ),
        (
            "POST",
            "/v2.0/security-group-rules".into(),
            "security_group_rule",
        ),
        ("POST", "/v2.0/ports".into(), "port"),
        ("PUT", format!("/v2.0/ports/{port}"), "port"),
        ("POST", "/v2.0/networks".into(), "network"),
        ("PUT", format!("/v2.0/networks/{net}"), "network"),
        ("POST", "/v2.0/address-groups".into(), "address_group"),
        ("PUT", format!("/v2.0/address-groups/{ag}"), "address_group"),
        (
            "PUT",
            format!("/v2.0/address-groups/{ag}/add_addresses"),
            "address",
        ),
        ("PUT", format!("/v2.0/security-groups/{sg}/tags"), "tag"),
        ("POST", format!("/v2.0/ports/{port}/tags"), "tag"),
        ("PUT", "/v2.0/quotas/generated-project".into(), "quota"),
        ("POST", "/v2.0/palisade/tokens".into(), "token"),
    ];
    let mut total = 0usize;
    for (method, path, wrapper) in &endpoints {
        let mut runner = TestRunner::new(Config {
            cases: 250,
            failure_persistence: None,
            ..Config::default()
        });
        let strategy = (arb_body(wrapper), prop::bool::ANY);
        runner
            .run(&strategy, |(body, use_sg)| {
                // Rule bodies often point at a real group so deeper checks run too.
                let body = match (body, *wrapper == "security_group_rule" && use_sg) {
                    (Body::Json(Value::Object(mut top)), true) => {
                        if let Some(Value::Object(o)) = top.get_mut("security_group_rule") {
                            o.insert("security_group_id".into(), json!(sg));
                        }
                        Body::Json(Value::Object(top))
                    }
                    (b, _) => b,
                };
                let bytes = match &body {
                    Body::Json(v) => serde_json::to_vec(v).expect("serialise"),
                    Body::Bytes(b) => b.clone(),
                };
                let (st, text) = rt.block_on(s.raw(method, path, bytes));
                prop_assert!(st < 500, "{method} {path} {body:?} → {st} {text}");
                if st >= 400 {
                    let v: Value = serde_json::from_str(&text).map_err(|e| {
                        TestCaseError::fail(format!("{st} non-JSON error body ({e}): {text}"))
                    })?;
                    let msg = v["NeutronError"]["message"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    prop_assert!(
                        !msg.is_empty(),
                        "{st} without a NeutronError message: {text}"
                    );
                    if st == 400 {
                        // A 400 names what is wrong: a field of the request, the envelope,
                        // or (for unparseable bodies) where parsing failed.
                        let names_something = msg.contains("line ")
                            || msg.contains("Resource body required")
                            || msg.contains("expected a JSON object")
                            || msg.contains(wrapper)
                            || REQUIRED.iter().any(|f| msg.contains(f))
                            || match &body {
                                Body::Json(v) => keys(v, 3).iter().any(|k| {
                                    (!k.is_empty() && msg.contains(k.as_str()))
                                        || msg.contains(&format!("'{k}'"))
                                }),
                                _ => false,
                            };
                        prop_assert!(
                            names_something,
                            "400 that names no field: {method} {path} {body:?} → {msg}"
                        );
                    }
                }
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{e}"));
        total += 250;
    }
    // Lists with generated query strings.
    let mut runner = TestRunner::new(Config {
        cases: 500,
        failure_persistence: None,
        ..Config::default()
    });
    let coll = prop::sample::select(vec![
        "security-groups",
        "security-group-rules",
        "ports",
        "networks",
        "address-groups",
    ]);
    let pair = (
        prop::sample::select(
            FIELDS
                .iter()
                .copied()
                .chain([
                    "limit",
                    "marker",
                    "sort_key",
                    "sort_dir",
                    "fields",
                    "page_reverse",
                    "tags-any",
                ])
                .collect::<Vec<_>>(),
        ),
        ".{0,10}",
    );
    runner
        .run(
            &(coll, prop::collection::vec(pair, 0..4)),
            |(coll, pairs)| {
                let q = url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str())))
                    .finish();
                let (st, v) = rt.block_on(s.call("GET", &format!("/v2.0/{coll}?{q}"), None));
                prop_assert!(st == 200 || st == 400, "GET /v2.0/{coll}?{q} → {st} {v}");
                Ok(())
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
    total += 500;
    assert!(total >= 3500);
    let (st, _) = rt.block_on(s.call("GET", "/", None));
    assert_eq!(
        st, 200,
        "the server still serves after {total} generated requests"
    );
    assert!(!s.log().contains("panicked"), "server log shows a panic");
}
