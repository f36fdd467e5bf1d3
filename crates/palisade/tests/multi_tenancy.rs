//! Issue #3, acceptance 3 and 4: two projects (alice, bob) logged in with passwords; every
//! cross-project path is a 404 or an omission; admin sees and acts on both; bad credentials
//! get Keystone's/Neutron's statuses; secrets never reach the log.

mod common;
use common::Server;
use serde_json::{json, Value};

fn ids(v: &Value, coll: &str) -> Vec<String> {
    v[coll]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o["id"].as_str().map(String::from))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projects_cannot_see_or_touch_each_others_objects() {
    let s = Server::start();
    let pa = s
        .project_with_member("alice-project", "alice", "alice-secret-pw", "member")
        .await;
    let pb = s
        .project_with_member("bob-project", "bob", "bob-secret-pw", "member")
        .await;
    let alice = s
        .login("alice", "alice-secret-pw", Some("alice-project"))
        .await
        .expect("alice logs in");
    let bob = s
        .login("bob", "bob-secret-pw", Some("bob-project"))
        .await
        .expect("bob logs in");
    let a = |m: &'static str, p: String, b: Option<Value>| {
        let (s, t) = (&s, alice.clone());
        async move { s.call_with(m, &p, b, Some(&t)).await }
    };
    let b = |m: &'static str, p: String, body: Option<Value>| {
        let (s, t) = (&s, bob.clone());
        async move { s.call_with(m, &p, body, Some(&t)).await }
    };

    // Alice's objects.
    let (st, v) = a(
        "POST",
        "/v2.0/security-groups".into(),
        Some(json!({"security_group": {"name": "alice-web"}})),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["security_group"]["project_id"], pa.as_str());
    let asg = v["security_group"]["id"].as_str().expect("id").to_string();
    let (_, v) = a("POST", "/v2.0/security-group-rules".into(), Some(json!({"security_group_rule": {"security_group_id": asg, "direction": "ingress", "protocol": "tcp", "port_range_min": 22, "port_range_max": 22}}))).await;
    let arule = v["security_group_rule"]["id"]
        .as_str()
        .expect("rule")
        .to_string();
    let (_, v) = a(
        "POST",
        "/v2.0/networks".into(),
        Some(json!({"network": {"name": "alice-net"}})),
    )
    .await;
    let anet = v["network"]["id"].as_str().expect("net").to_string();
    let (_, v) = a(
        "POST",
        "/v2.0/ports".into(),
        Some(json!({"port": {"network_id": anet, "security_groups": [asg]}})),
    )
    .await;
    let aport = v["port"]["id"].as_str().expect("port").to_string();
    let (_, v) = a(
        "POST",
        "/v2.0/address-groups".into(),
        Some(json!({"address_group": {"name": "alice-ag", "addresses": ["198.18.0.0/24"]}})),
    )
    .await;
    let aag = v["address_group"]["id"].as_str().expect("ag").to_string();
    assert_eq!(
        a(
            "PUT",
            format!("/v2.0/security-groups/{asg}/tags/secret"),
            None
        )
        .await
        .0,
        201
    );
    // Bob's own group for references.
    let (_, v) = b(
        "POST",
        "/v2.0/security-groups".into(),
        Some(json!({"security_group": {"name": "bob-db"}})),
    )
    .await;
    let bsg = v["security_group"]["id"].as_str().expect("id").to_string();

    // Show, update, delete: 404.
    for (m, p, body) in [
        ("GET", format!("/v2.0/security-groups/{asg}"), None),
        (
            "PUT",
            format!("/v2.0/security-groups/{asg}"),
            Some(json!({"security_group": {"name": "pwned"}})),
        ),
        ("DELETE", format!("/v2.0/security-groups/{asg}"), None),
        ("GET", format!("/v2.0/security-group-rules/{arule}"), None),
        (
            "DELETE",
            format!("/v2.0/security-group-rules/{arule}"),
            None,
        ),
        ("GET", format!("/v2.0/ports/{aport}"), None),
        (
            "PUT",
            format!("/v2.0/ports/{aport}"),
            Some(json!({"port": {"name": "x"}})),
        ),
        ("DELETE", format!("/v2.0/ports/{aport}"), None),
        ("GET", format!("/v2.0/networks/{anet}"), None),
        ("DELETE", format!("/v2.0/networks/{anet}"), None),
        ("GET", format!("/v2.0/address-groups/{aag}"), None),
        ("DELETE", format!("/v2.0/address-groups/{aag}"), None),
        ("GET", format!("/v2.0/security-groups/{asg}/tags"), None),
        (
            "GET",
            format!("/v2.0/security-groups/{asg}/tags/secret"),
            None,
        ),
        (
            "PUT",
            format!("/v2.0/security-groups/{asg}/tags"),
            Some(json!({"tags": ["x"]})),
        ),
        ("DELETE", format!("/v2.0/security-groups/{asg}/tags"), None),
        // Creating a rule in, or pointing at, another project's group.
        (
            "POST",
            "/v2.0/security-group-rules".into(),
            Some(
                json!({"security_group_rule": {"security_group_id": asg, "direction": "ingress"}}),
            ),
        ),
        (
            "POST",
            "/v2.0/security-group-rules".into(),
            Some(
                json!({"security_group_rule": {"security_group_id": bsg, "direction": "ingress", "remote_group_id": asg}}),
            ),
        ),
        (
            "POST",
            "/v2.0/security-group-rules".into(),
            Some(
                json!({"security_group_rule": {"security_group_id": bsg, "direction": "ingress", "remote_address_group_id": aag}}),
            ),
        ),
        // A port with another project's group, or on another project's network.
        (
            "POST",
            "/v2.0/ports".into(),
            Some(json!({"port": {"network_id": anet}})),
        ),
    ] {
        let (st, v) = b(m, p.clone(), body).await;
        assert_eq!(st, 404, "bob {m} {p}: {v}");
        let msg = v["NeutronError"]["message"].as_str().unwrap_or("");
        assert!(
            !msg.contains("alice") && !msg.contains(&pa),
            "404 leaks: {msg}"
        );
    }
    let (_, v) = b(
        "POST",
        "/v2.0/networks".into(),
        Some(json!({"network": {"name": "bob-net"}})),
    )
    .await;
    let bnet = v["network"]["id"].as_str().expect("net").to_string();
    let (st, v) = b(
        "POST",
        "/v2.0/ports".into(),
        Some(json!({"port": {"network_id": bnet, "security_groups": [asg]}})),
    )
    .await;
    assert_eq!(
        (st, v["NeutronError"]["type"].as_str()),
        (404, Some("SecurityGroupNotFound"))
    );
    // Alice's objects are untouched.
    let (_, v) = a("GET", format!("/v2.0/security-groups/{asg}"), None).await;
    assert_eq!(v["security_group"]["name"], "alice-web");

    // Lists never show them, with or without filters.
    for (p, coll) in [
        ("/v2.0/security-groups".to_string(), "security_groups"),
        (format!("/v2.0/security-groups?id={asg}"), "security_groups"),
        (
            format!("/v2.0/security-groups?project_id={pa}"),
            "security_groups",
        ),
        (
            format!("/v2.0/security-groups?tenant_id={pa}"),
            "security_groups",
        ),
        (
            "/v2.0/security-groups?name=alice-web".into(),
            "security_groups",
        ),
        (
            "/v2.0/security-groups?tags=secret".into(),
            "security_groups",
        ),
        ("/v2.0/security-group-rules".into(), "security_group_rules"),
        (
            format!("/v2.0/security-group-rules?security_group_id={asg}"),
            "security_group_rules",
        ),
        (
            format!("/v2.0/security-group-rules?id={arule}"),
            "security_group_rules",
        ),
        ("/v2.0/ports".into(), "ports"),
        (format!("/v2.0/ports?security_groups={asg}"), "ports"),
        (format!("/v2.0/ports?network_id={anet}"), "ports"),
        ("/v2.0/networks".into(), "networks"),
        ("/v2.0/address-groups".into(), "address_groups"),
    ] {
        let (st, v) = b("GET", p.clone(), None).await;
        assert_eq!(st, 200, "{p}: {v}");
        let found = ids(&v, coll);
        for theirs in [&asg, &arule, &aport, &anet, &aag] {
            assert!(!found.contains(theirs), "bob's {p} shows alice's {theirs}");
        }
        assert!(
            !v.to_string().contains(&pa),
            "bob's {p} mentions alice's project"
        );
    }
    // Bob's list of groups holds only bob's (his default and bob-db).
    let (_, v) = b("GET", "/v2.0/security-groups".into(), None).await;
    assert!(v["security_groups"]
        .as_array()
        .expect("list")
        .iter()
        .all(|g| g["project_id"] == pb.as_str()));
    // A member may not name another project in a body.
    let (st, _) = b(
        "POST",
        "/v2.0/security-groups".into(),
        Some(json!({"security_group": {"name": "x", "project_id": pa}})),
    )
    .await;
    assert_eq!(st, 400);
    // Palisade's admin-only extensions are closed to members.
    assert_eq!(
        b("GET", "/v2.0/palisade/snapshot".into(), None).await.0,
        403
    );

    // Admin sees and acts on both.
    let (_, v) = s.call("GET", "/v2.0/security-groups", None).await;
    let all = ids(&v, "security_groups");
    assert!(all.contains(&asg) && all.contains(&bsg));
    let (_, v) = s
        .call(
            "GET",
            &format!("/v2.0/security-groups?project_id={pb}"),
            None,
        )
        .await;
    assert!(v["security_groups"]
        .as_array()
        .expect("list")
        .iter()
        .all(|g| g["project_id"] == pb.as_str()));
    assert_eq!(
        s.call(
            "DELETE",
            &format!("/v2.0/security-group-rules/{arule}"),
            None
        )
        .await
        .0,
        204
    );
    let (st, v) = s
        .call(
            "POST",
            "/v2.0/security-groups",
            Some(json!({"security_group": {"name": "for-bob", "project_id": pb}})),
        )
        .await;
    assert_eq!(
        (st, v["security_group"]["project_id"].as_str()),
        (201, Some(pb.as_str()))
    );
    let (_, v) = b("GET", "/v2.0/security-groups?name=for-bob".into(), None).await;
    assert_eq!(
        v["security_groups"].as_array().map(Vec::len),
        Some(1),
        "bob sees what admin made for his project"
    );

    // A reader may read, not write.
    let pr = s
        .project_with_member("reader-project", "rita", "rita-secret-pw", "reader")
        .await;
    let rita = s
        .login("rita", "rita-secret-pw", Some("reader-project"))
        .await
        .expect("rita logs in");
    assert_eq!(
        s.call_with("GET", "/v2.0/security-groups", None, Some(&rita))
            .await
            .0,
        200
    );
    let (st, v) = s
        .call_with(
            "POST",
            "/v2.0/security-groups",
            Some(json!({"security_group": {"name": "nope"}})),
            Some(&rita),
        )
        .await;
    assert_eq!(
        (st, v["NeutronError"]["type"].as_str()),
        (403, Some("PolicyNotAuthorized"))
    );
    let _ = pr;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_get_clear_refusals_and_secrets_stay_out_of_the_log() {
    let s = Server::start_with(&["--token-ttl", "2"]);
    s.project_with_member("alice-project", "alice", "alice-secret-pw", "member")
        .await;
    s.project_with_member("bob-project", "bob", "bob-secret-pw", "member")
        .await;
    let keystone_error = |r: Result<String, (u16, Value)>| match r {
        Err((st, v)) => (st, v["error"]["message"].as_str().unwrap_or("").to_string()),
        Ok(_) => (201, String::new()),
    };
    let (st, msg) = keystone_error(
        s.login("alice", "wrong-password", Some("alice-project"))
            .await,
    );
    assert_eq!(st, 401);
    assert!(msg.contains("requires authentication"), "{msg}");
    let (st2, msg2) = keystone_error(s.login("mallory", "whatever", Some("alice-project")).await);
    assert_eq!(
        (st2, msg2),
        (st, msg),
        "an unknown user is indistinguishable from a wrong password"
    );
    assert_eq!(
        keystone_error(
            s.login("alice", "alice-secret-pw", Some("bob-project"))
                .await
        )
        .0,
        401,
        "no role there"
    );

    let alice = s
        .login("alice", "alice-secret-pw", Some("alice-project"))
        .await
        .expect("login");
    let bob = s
        .login("bob", "bob-secret-pw", Some("bob-project"))
        .await
        .expect("login");
    // Validation through Keystone's API.
    let v = reqwest::Client::new()
        .get(format!("{}/identity/v3/auth/tokens", s.url))
        .header("X-Auth-Token", &alice)
        .header("X-Subject-Token", &alice)
        .send()
        .await
        .expect("validate");
    assert_eq!(v.status().as_u16(), 200);
    let body: Value = v.json().await.expect("json");
    assert_eq!(body["token"]["project"]["name"], "alice-project");
    assert!(body["token"]["catalog"]
        .as_array()
        .expect("catalog")
        .iter()
        .any(|e| e["type"] == "network"));
    // Alice's token with bob's ids: 404.
    let (_, v) = s
        .call_with(
            "POST",
            "/v2.0/security-groups",
            Some(json!({"security_group": {"name": "bobs"}})),
            Some(&bob),
        )
        .await;
    let bsg = v["security_group"]["id"].as_str().expect("id").to_string();
    assert_eq!(
        s.call_with(
            "GET",
            &format!("/v2.0/security-groups/{bsg}"),
            None,
            Some(&alice)
        )
        .await
        .0,
        404
    );
    // Missing and garbage tokens: 401.
    let (st, v) = s
        .call_with("GET", "/v2.0/security-groups", None, None)
        .await;
    assert_eq!(
        (st, v["NeutronError"]["type"].as_str()),
        (401, Some("NotAuthenticated"))
    );
    assert_eq!(
        s.call_with("GET", "/v2.0/security-groups", None, Some("pal-0000"))
            .await
            .0,
        401
    );
    // Revocation: the token stops working at once.
    let victim = s
        .login("alice", "alice-secret-pw", Some("alice-project"))
        .await
        .expect("login");
    assert_eq!(
        s.call_with("GET", "/v2.0/security-groups", None, Some(&victim))
            .await
            .0,
        200
    );
    let r = reqwest::Client::new()
        .delete(format!("{}/identity/v3/auth/tokens", s.url))
        .header("X-Auth-Token", &victim)
        .header("X-Subject-Token", &victim)
        .send()
        .await
        .expect("revoke");
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(
        s.call_with("GET", "/v2.0/security-groups", None, Some(&victim))
            .await
            .0,
        401,
        "revoked"
    );
    // Expiry (this server issues 2-second tokens).
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let (st, _) = s
        .call_with("GET", "/v2.0/security-groups", None, Some(&alice))
        .await;
    assert_eq!(st, 401, "expired");
    // The static admin token keeps working.
    assert_eq!(s.call("GET", "/v2.0/security-groups", None).await.0, 200);

    let log = s.log();
    for secret in [
        "alice-secret-pw",
        "bob-secret-pw",
        "wrong-password",
        &alice,
        &bob,
        &victim,
        &s.token,
    ] {
        assert!(!log.contains(secret), "a secret reached the server log");
    }
    assert!(
        log.contains("token issued"),
        "logins are logged (by audit id)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_survive_a_restart() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut s = Server::start_in(tmp.path());
    s.project_with_member("alice-project", "alice", "alice-secret-pw", "member")
        .await;
    let alice = s
        .login("alice", "alice-secret-pw", Some("alice-project"))
        .await
        .expect("login");
    s.kill();
    let s = Server::start_in(tmp.path());
    assert_eq!(
        s.call_with("GET", "/v2.0/security-groups", None, Some(&alice))
            .await
            .0,
        200,
        "the token outlives the process"
    );
    let openrc = std::fs::read_to_string(tmp.path().join("admin-openrc")).expect("openrc");
    assert!(
        openrc.contains(&format!("OS_AUTH_URL={}/identity/v3", s.url)),
        "admin-openrc follows the new address"
    );
}
