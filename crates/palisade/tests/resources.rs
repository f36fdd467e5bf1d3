//! Neutron behaviours of groups, tags, ports, networks and address groups beyond rules:
//! the default group, bulk create, tags, If-Match, port security, pagination.

mod common;
use common::Server;
use serde_json::{json, Value};

fn kind(v: &Value) -> &str {
    v["NeutronError"]["type"].as_str().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_group_bulk_create_tags_and_if_match() {
    let s = Server::start();
    let (st, v) = s.call("GET", "/v2.0/security-groups", None).await;
    assert_eq!(st, 200);
    let default = v["security_groups"]
        .as_array()
        .expect("list")
        .iter()
        .find(|g| g["name"] == "default")
        .expect("default group on first list")
        .clone();
    let rules = default["security_group_rules"].as_array().expect("rules");
    assert_eq!(rules.len(), 4, "egress v4/v6 and ingress from itself v4/v6");
    assert!(rules
        .iter()
        .filter(|r| r["direction"] == "ingress")
        .all(|r| r["remote_group_id"] == default["id"] && r["belongs_to_default_sg"] == true));
    let did = default["id"].as_str().expect("id");
    let (st, v) = s
        .call(
            "PUT",
            &format!("/v2.0/security-groups/{did}"),
            Some(json!({"security_group": {"name": "x"}})),
        )
        .await;
    assert_eq!(
        (st, kind(&v)),
        (409, "SecurityGroupCannotUpdateDefault"),
        "renaming the default group"
    );
    let (st, v) = s
        .call(
            "PUT",
            &format!("/v2.0/security-groups/{did}"),
            Some(json!({"security_group": {"name": "default"}})),
        )
        .await;
    assert_eq!((st, kind(&v)), (409, "SecurityGroupDefaultAlreadyExists"));
    let (st, v) = s
        .call(
            "PUT",
            &format!("/v2.0/security-groups/{did}"),
            Some(json!({"security_group": {"description": "mine"}})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let (st, v) = s
        .call(
            "POST",
            "/v2.0/security-groups",
            Some(json!({"security_group": {"name": "DEFAULT"}})),
        )
        .await;
    assert_eq!((st, kind(&v)), (409, "SecurityGroupDefaultAlreadyExists"));

    // Bulk create: all or nothing, in request order.
    let (st, v) = s
        .call(
            "POST",
            "/v2.0/security-groups",
            Some(json!({"security_groups": [{"name": "a"}, {"name": "b"}]})),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let names: Vec<&str> = v["security_groups"]
        .as_array()
        .expect("bulk")
        .iter()
        .filter_map(|g| g["name"].as_str())
        .collect();
    assert_eq!(names, ["a", "b"]);
    let (st, _) = s
        .call(
            "POST",
            "/v2.0/security-groups",
            Some(json!({"security_groups": [{"name": "c"}, {"name": "default"}]})),
        )
        .await;
    assert_eq!(st, 409);
    let (_, v) = s.call("GET", "/v2.0/security-groups?name=c", None).await;
    assert_eq!(
        v["security_groups"].as_array().map(Vec::len),
        Some(0),
        "a failed bulk create leaves nothing"
    );

    // Tags.
    let a = s.create_sg("tagged").await;
    let base = format!("/v2.0/security-groups/{a}");
    let (st, v) = s
        .call(
            "PUT",
            &format!("{base}/tags"),
            Some(json!({"tags": ["red", "blue"]})),
        )
        .await;
    assert_eq!((st, v["tags"].clone()), (200, json!(["red", "blue"])));
    let (st, v) = s
        .call(
            "POST",
            &format!("{base}/tags"),
            Some(json!({"tags": ["green", "red"]})),
        )
        .await;
    assert_eq!(
        (st, v["tags"].clone()),
        (200, json!(["red", "blue", "green"]))
    );
    assert_eq!(
        s.call("GET", &format!("{base}/tags/blue"), None).await.0,
        204
    );
    let (st, v) = s.call("GET", &format!("{base}/tags/nope"), None).await;
    assert_eq!((st, kind(&v)), (404, "TagNotFound"));
    assert_eq!(
        s.call("PUT", &format!("{base}/tags/new"), None).await.0,
        201
    );
    assert_eq!(
        s.call("DELETE", &format!("{base}/tags/red"), None).await.0,
        204
    );
    let (_, v) = s
        .call("GET", "/v2.0/security-groups?tags=blue,new", None)
        .await;
    assert_eq!(v["security_groups"].as_array().map(Vec::len), Some(1));
    let (_, v) = s
        .call("GET", "/v2.0/security-groups?not-tags-any=green", None)
        .await;
    assert!(v["security_groups"]
        .as_array()
        .expect("list")
        .iter()
        .all(|g| g["id"] != a.as_str()));
    let (st, v) = s
        .call(
            "PUT",
            &format!("{base}/tags"),
            Some(json!({"tags": (0..51).map(|i| i.to_string()).collect::<Vec<_>>()})),
        )
        .await;
    assert_eq!(st, 400, "more than 50 tags: {v}");
    assert_eq!(s.call("DELETE", &format!("{base}/tags"), None).await.0, 204);
    assert_eq!(
        s.call("GET", &format!("{base}/tags"), None).await.1["tags"],
        json!([])
    );

    // If-Match on revision_number.
    let (_, g) = s.call("GET", &base, None).await;
    let rev = g["security_group"]["revision_number"]
        .as_u64()
        .expect("rev");
    let put = |r: u64| {
        reqwest::Client::new()
            .put(format!("{}{base}", s.url))
            .header("X-Auth-Token", &s.token)
            .header("If-Match", format!("revision_number={r}"))
            .json(&json!({"security_group": {"description": format!("r{r}")}}))
            .send()
    };
    assert_eq!(put(rev + 5).await.expect("send").status().as_u16(), 412);
    assert_eq!(put(rev).await.expect("send").status().as_u16(), 200);
    let (_, g2) = s.call("GET", &base, None).await;
    assert_eq!(
        g2["security_group"]["revision_number"].as_u64(),
        Some(rev + 1),
        "each update bumps the revision"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ports_follow_neutrons_port_security_rules() {
    let s = Server::start();
    let net = s.create_network("n").await;
    let web = s.create_sg("web").await;
    let (_, v) = s
        .call("GET", "/v2.0/security-groups?name=default", None)
        .await;
    let default = v["security_groups"][0]["id"]
        .as_str()
        .expect("default")
        .to_string();
    let port = |body: Value| {
        let mut b = body;
        b["network_id"] = json!(net);
        json!({ "port": b })
    };
    let (st, v) = s
        .call(
            "POST",
            "/v2.0/ports",
            Some(port(json!({"fixed_ips": [{"ip_address": "198.18.1.1"}]}))),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(
        v["port"]["security_groups"],
        json!([default]),
        "no security_groups → the default group"
    );
    assert!(v["port"]["mac_address"]
        .as_str()
        .unwrap_or("")
        .starts_with("fa:16:3e:"));
    let p1 = v["port"]["id"].as_str().expect("id").to_string();
    let (_, v) = s
        .call(
            "POST",
            "/v2.0/ports",
            Some(port(json!({"security_groups": []}))),
        )
        .await;
    assert_eq!(v["port"]["security_groups"], json!([]));
    let (_, v) = s
        .call(
            "POST",
            "/v2.0/ports",
            Some(port(json!({"security_groups": null}))),
        )
        .await;
    assert_eq!(v["port"]["security_groups"], json!([]), "null means none");
    let (_, v) = s
        .call(
            "POST",
            "/v2.0/ports",
            Some(port(
                json!({"device_owner": "network:dhcp", "security_groups": [web]}),
            )),
        )
        .await;
    assert_eq!(
        v["port"]["security_groups"],
        json!([]),
        "network:* ports are never filtered"
    );
    let (st, v) = s
        .call(
            "POST",
            "/v2.0/ports",
            Some(port(
                json!({"port_security_enabled": false, "security_groups": [web]}),
            )),
        )
        .await;
    assert_eq!(
        (st, kind(&v)),
        (400, "PortSecurityAndIPRequiredForSecurityGroups")
    );
    let (st, v) = s.call("POST", "/v2.0/ports", Some(port(json!({"port_security_enabled": false, "allowed_address_pairs": [{"ip_address": "198.18.9.9"}]})))).await;
    assert_eq!((st, kind(&v)), (409, "AddressPairAndPortSecurityRequired"));
    let (st, v) = s
        .call(
            "POST",
            "/v2.0/ports",
            Some(port(json!({"security_groups": [web, web]}))),
        )
        .await;
    assert_eq!(st, 400, "duplicate groups: {v}");
    let (st, v) = s
        .call(
            "POST",
            "/v2.0/ports",
            Some(port(
                json!({"security_groups": ["4a4a43f6-38d2-4fd3-a0c9-fe0dd3e9a5e1"]}),
            )),
        )
        .await;
    assert_eq!((st, kind(&v)), (404, "SecurityGroupNotFound"));
    let (st, v) = s
        .call(
            "POST",
            "/v2.0/security-groups",
            Some(json!({"security_group": {"name": "sl", "stateful": false}})),
        )
        .await;
    assert_eq!(st, 201);
    let stateless = v["security_group"]["id"].as_str().expect("id").to_string();
    let (st, v) = s
        .call(
            "POST",
            "/v2.0/ports",
            Some(port(json!({"security_groups": [web, stateless]}))),
        )
        .await;
    assert_eq!((st, kind(&v)), (409, "SecurityGroupConflict"));

    // Updates.
    let path = format!("/v2.0/ports/{p1}");
    let (st, v) = s
        .call(
            "PUT",
            &path,
            Some(json!({"port": {"port_security_enabled": false}})),
        )
        .await;
    assert_eq!((st, kind(&v)), (409, "PortSecurityPortHasSecurityGroup"));
    let (st, v) = s
        .call(
            "PUT",
            &path,
            Some(json!({"port": {"port_security_enabled": false, "security_groups": []}})),
        )
        .await;
    assert_eq!(st, 200, "clearing groups and disabling in one PUT: {v}");
    let (st, v) = s
        .call(
            "PUT",
            &path,
            Some(json!({"port": {"port_security_enabled": true, "security_groups": [web]}})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let (_, v) = s
        .call("GET", &format!("/v2.0/ports?security_groups={web}"), None)
        .await;
    assert_eq!(v["ports"].as_array().map(Vec::len), Some(1));
    let (st, v) = s
        .call(
            "PUT",
            &format!("/v2.0/security-groups/{web}"),
            Some(json!({"security_group": {"stateful": false}})),
        )
        .await;
    assert_eq!(
        (st, kind(&v)),
        (409, "SecurityGroupInUse"),
        "statefulness cannot flip while ports use the group"
    );
    let (st, v) = s
        .call("DELETE", &format!("/v2.0/networks/{net}"), None)
        .await;
    assert_eq!((st, kind(&v)), (409, "NetworkInUse"));
    let (_, v) = s
        .call("GET", "/v2.0/ports?fixed_ips=ip_address%3D198.18.1.1", None)
        .await;
    assert_eq!(
        v["ports"].as_array().map(Vec::len),
        Some(1),
        "fixed_ips filter"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn address_groups_and_pagination() {
    let s = Server::start();
    let (st, v) = s.call("POST", "/v2.0/address-groups", Some(json!({"address_group": {"name": "ag", "addresses": ["198.18.0.5", "198.18.1.0/24"]}}))).await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(
        v["address_group"]["addresses"],
        json!(["198.18.0.5/32", "198.18.1.0/24"])
    );
    let ag = v["address_group"]["id"].as_str().expect("id").to_string();
    let (_, v) = s
        .call(
            "PUT",
            &format!("/v2.0/address-groups/{ag}/add_addresses"),
            Some(json!({"addresses": ["fd00::/64"]})),
        )
        .await;
    assert_eq!(
        v["address_group"]["addresses"].as_array().map(Vec::len),
        Some(3)
    );
    let (_, v) = s
        .call(
            "PUT",
            &format!("/v2.0/address-groups/{ag}/remove_addresses"),
            Some(json!({"addresses": ["198.18.0.5/32"]})),
        )
        .await;
    assert_eq!(
        v["address_group"]["addresses"],
        json!(["198.18.1.0/24", "fd00::/64"])
    );
    let sg = s.create_sg("g").await;
    let (st, _) = s.call("POST", "/v2.0/security-group-rules", Some(json!({"security_group_rule": {"security_group_id": sg, "direction": "ingress", "remote_address_group_id": ag}}))).await;
    assert_eq!(st, 201);
    let (st, v) = s
        .call("DELETE", &format!("/v2.0/address-groups/{ag}"), None)
        .await;
    assert_eq!((st, kind(&v)), (409, "AddressGroupInUse"));

    for i in 0..5 {
        s.create_sg(&format!("page-{i}")).await;
    }
    let (_, v) = s
        .call(
            "GET",
            "/v2.0/security-groups?limit=2&sort_key=name&sort_dir=asc",
            None,
        )
        .await;
    assert_eq!(v["security_groups"].as_array().map(Vec::len), Some(2));
    let next = v["security_groups_links"]
        .as_array()
        .expect("links")
        .iter()
        .find(|l| l["rel"] == "next")
        .expect("next link")["href"]
        .as_str()
        .expect("href")
        .to_string();
    assert!(next.contains("marker=") && next.contains("limit=2"));
    let path = next
        .split_once("/v2.0")
        .map(|(_, p)| format!("/v2.0{p}"))
        .expect("path");
    let (st, v) = s.call("GET", &path, None).await;
    assert_eq!(st, 200);
    assert_eq!(v["security_groups"].as_array().map(Vec::len), Some(2));
    let (_, v) = s.call("GET", "/v2.0/security-groups?limit=0", None).await;
    assert_eq!(
        v["security_groups"].as_array().map(Vec::len),
        Some(7),
        "limit=0 returns everything (default, g, 5 pages)"
    );
    let (_, v) = s
        .call("GET", "/v2.0/security-groups?fields=id&fields=name", None)
        .await;
    let keys: Vec<&String> = v["security_groups"][0]
        .as_object()
        .expect("obj")
        .keys()
        .collect();
    assert_eq!(keys.len(), 2);
    let (_, v) = s
        .call(
            "GET",
            &format!("/v2.0/security-groups/{sg}?fields=security_group_rules"),
            None,
        )
        .await;
    assert_eq!(
        v["security_group"]["security_group_rules"]
            .as_array()
            .map(Vec::len),
        Some(3),
        "fields can ask for the embedded rules"
    );
}

/// Every request is logged once (JSON with --log-format json) with the request id the
/// caller sent (or a new one, returned in X-Openstack-Request-Id), and no secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_logged_with_their_id_and_without_secrets() {
    let s = common::Server::start_with(&["--log-format", "json"]);
    let http = reqwest::Client::new();
    let r = http
        .get(format!("{}/v2.0/security-groups", s.url))
        .header("x-auth-token", &s.token)
        .header("x-openstack-request-id", "req-trace-me-1")
        .send()
        .await
        .expect("request");
    assert_eq!(r.headers()["x-openstack-request-id"], "req-trace-me-1");
    let r = http
        .get(format!("{}/v2.0/ports", s.url))
        .header("x-auth-token", &s.token)
        .send()
        .await
        .expect("request");
    let generated = r.headers()["x-openstack-request-id"]
        .to_str()
        .expect("id")
        .to_string();
    assert!(generated.starts_with("req-"), "{generated}");
    std::thread::sleep(std::time::Duration::from_millis(200));
    let log = s.log();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let find = |id: &str| {
        lines
            .iter()
            .find(|v| v["fields"]["request_id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("no log line for {id}:\n{log}"))
    };
    let v = find("req-trace-me-1");
    assert_eq!(v["fields"]["path"], "/v2.0/security-groups");
    assert_eq!(v["fields"]["status"], 200);
    assert_eq!(find(&generated)["fields"]["path"], "/v2.0/ports");
    assert!(!log.contains(&s.token), "the token never reaches the log");
}

/// The value of the first sample of `name` whose labels contain every one of `labels`.
fn sample(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .find(|l| labels.iter().all(|x| l.contains(x)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// `/metrics` after a scripted workload: request counters, object gauges, transaction
/// latency and open watch streams move by exactly what the workload did.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_the_workload() {
    let s = common::Server::start();
    let http = reqwest::Client::new();
    let scrape = || async {
        http.get(format!("{}/metrics", s.url))
            .send()
            .await
            .expect("scrape")
            .text()
            .await
            .expect("text")
    };
    let project = s.admin_project().await;
    let (st, _) = s
        .call(
            "PUT",
            &format!("/v2.0/quotas/{project}"),
            Some(json!({"quota": {"security_group": -1, "security_group_rule": -1}})),
        )
        .await;
    assert_eq!(st, 200);
    let before = scrape().await;
    for i in 0..3 {
        s.create_sg(&format!("m{i}")).await;
    }
    let (st, _) = s
        .call(
            "GET",
            "/v2.0/security-groups/00000000-0000-0000-0000-000000000000",
            None,
        )
        .await;
    assert_eq!(st, 404);
    let after = scrape().await;
    let created = |t: &str| {
        sample(
            t,
            "palisade_http_requests_total",
            &[
                "route=\"/v2.0/security-groups\"",
                "method=\"POST\"",
                "status=\"201\"",
            ],
        )
    };
    assert_eq!(created(&after) - created(&before), 3.0, "{after}");
    let missing = |t: &str| {
        sample(
            t,
            "palisade_http_requests_total",
            &[
                "route=\"/v2.0/security-groups/{id}\"",
                "method=\"GET\"",
                "status=\"404\"",
            ],
        )
    };
    assert_eq!(missing(&after) - missing(&before), 1.0);
    let groups = |t: &str| sample(t, "palisade_objects", &["kind=\"security_group\""]);
    assert!(
        groups(&after) - groups(&before) >= 3.0,
        "3 groups (and the project's default) appeared"
    );
    let txns = |t: &str| sample(t, "palisade_store_txn_duration_seconds_count", &[]);
    assert!(
        txns(&after) - txns(&before) >= 3.0,
        "three transactions at least"
    );
    assert!(
        sample(
            &after,
            "palisade_http_request_duration_seconds_count",
            &["route=\"/v2.0/security-groups\"", "method=\"POST\""]
        ) >= 3.0
    );
    // A watch stream open is counted, and uncounted when it closes.
    let resp = http
        .get(format!("{}/v2.0/palisade/watch", s.url))
        .header("x-auth-token", &s.token)
        .send()
        .await
        .expect("watch");
    assert_eq!(resp.status(), 200);
    assert_eq!(sample(&scrape().await, "palisade_watch_clients", &[]), 1.0);
    // A change reaches the stream: one more batch in the lag histogram.
    let lag_before = sample(&scrape().await, "palisade_watch_lag_revisions_count", &[]);
    s.create_sg("seen").await;
    let mut resp = resp;
    let mut got = String::new();
    while !got.contains("\"seen\"") {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(5), resp.chunk())
            .await
            .expect("the change within 5 s")
            .expect("chunk")
            .expect("stream open");
        got.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(sample(&scrape().await, "palisade_watch_lag_revisions_count", &[]) > lag_before);
    drop(resp);
    let mut closed = false;
    for _ in 0..50 {
        // The server notices the closed stream when it next writes to it.
        s.create_sg("poke").await;
        if sample(&scrape().await, "palisade_watch_clients", &[]) == 0.0 {
            closed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(closed, "a closed watch stream is no longer counted");
}
