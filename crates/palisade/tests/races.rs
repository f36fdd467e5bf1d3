//! Acceptance 4: races. Concurrent duplicate rules, quota races and attach-vs-delete races
//! against the real server; every invariant must hold.

mod common;
use common::{concurrently, Server};
use serde_json::{json, Value};
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_clients_creating_the_same_rule_get_one_201_and_seven_409s() {
    let s = Arc::new(Server::start());
    let sg = s.create_sg("race").await;
    for round in 0..10u32 {
        let body = json!({"security_group_rule": {"security_group_id": sg, "direction": "ingress", "protocol": "tcp", "port_range_min": 1000 + round, "port_range_max": 1000 + round}});
        let results = concurrently(8, |_| {
            let (s, body) = (s.clone(), body.clone());
            async move {
                s.call("POST", "/v2.0/security-group-rules", Some(body))
                    .await
            }
        })
        .await;
        let created: Vec<&Value> = results
            .iter()
            .filter(|(st, _)| *st == 201)
            .map(|(_, v)| v)
            .collect();
        assert_eq!(
            created.len(),
            1,
            "round {round}: exactly one create wins: {results:?}"
        );
        let id = created[0]["security_group_rule"]["id"]
            .as_str()
            .expect("id");
        for (st, v) in results.iter().filter(|(st, _)| *st != 201) {
            assert_eq!(*st, 409, "round {round}: {v}");
            assert_eq!(v["NeutronError"]["type"], "SecurityGroupRuleExists");
            assert!(
                v["NeutronError"]["message"]
                    .as_str()
                    .unwrap_or("")
                    .contains(id),
                "the 409 names the winner: {v}"
            );
        }
    }
    let (_, v) = s
        .call(
            "GET",
            &format!("/v2.0/security-group-rules?security_group_id={sg}&protocol=tcp"),
            None,
        )
        .await;
    assert_eq!(
        v["security_group_rules"].as_array().expect("rules").len(),
        10,
        "one rule per round"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_clients_racing_past_a_quota_never_exceed_it() {
    let s = Arc::new(Server::start());
    let project = s.admin_project().await;
    // Groups: the default group is already there (1 used); allow 6 in all.
    let (st, v) = s
        .call(
            "PUT",
            &format!("/v2.0/quotas/{project}"),
            Some(json!({"quota": {"security_group": 6, "security_group_rule": -1}})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let results = concurrently(8, |i| {
        let s = s.clone();
        async move {
            let mut last = (0, Value::Null);
            for j in 0..3 {
                last = s
                    .call(
                        "POST",
                        "/v2.0/security-groups",
                        Some(json!({"security_group": {"name": format!("q-{i}-{j}")}})),
                    )
                    .await;
                assert!(
                    last.0 == 201
                        || (last.0 == 409 && last.1["NeutronError"]["type"] == "OverQuota"),
                    "{last:?}"
                );
            }
            last
        }
    })
    .await;
    assert_eq!(results.len(), 8);
    let (_, v) = s
        .call(
            "GET",
            &format!("/v2.0/security-groups?project_id={project}"),
            None,
        )
        .await;
    assert_eq!(
        v["security_groups"].as_array().expect("groups").len(),
        6,
        "exactly the quota: never more, and free slots were used"
    );
    let (_, d) = s
        .call("GET", &format!("/v2.0/quotas/{project}/details"), None)
        .await;
    assert_eq!(d["quota"]["security_group"]["used"], 6);

    // Rules: 8 clients × 5 distinct rules against a limit of used + 12.
    let sg = s
        .call(
            "GET",
            &format!("/v2.0/security-groups?project_id={project}&name=q-0-0"),
            None,
        )
        .await
        .1["security_groups"][0]["id"]
        .as_str()
        .map(String::from)
        .or(None);
    let sg = match sg {
        Some(sg) => sg,
        None => v["security_groups"]
            .as_array()
            .expect("groups")
            .iter()
            .find(|g| g["name"] != "default")
            .expect("a group")["id"]
            .as_str()
            .expect("id")
            .to_string(),
    };
    let used = d["quota"]["security_group_rule"]["used"]
        .as_i64()
        .expect("used");
    let (st, _) = s
        .call(
            "PUT",
            &format!("/v2.0/quotas/{project}"),
            Some(json!({"quota": {"security_group_rule": used + 12}})),
        )
        .await;
    assert_eq!(st, 200);
    concurrently(8, |i| {
        let (s, sg) = (s.clone(), sg.clone());
        async move {
            let mut last = (0, Value::Null);
            for j in 0..5u32 {
                let port = 2000 + (i as u32) * 10 + j;
                last = s
                    .call("POST", "/v2.0/security-group-rules", Some(json!({"security_group_rule": {"security_group_id": sg, "direction": "ingress", "protocol": "udp", "port_range_min": port, "port_range_max": port}})))
                    .await;
                assert!(last.0 == 201 || (last.0 == 409 && last.1["NeutronError"]["type"] == "OverQuota"), "{last:?}");
            }
            last
        }
    })
    .await;
    let (_, v) = s
        .call(
            "GET",
            &format!("/v2.0/security-group-rules?project_id={project}"),
            None,
        )
        .await;
    assert_eq!(
        v["security_group_rules"].as_array().expect("rules").len() as i64,
        used + 12,
        "rule quota reached exactly, never passed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_port_attached_while_its_group_is_deleted_never_points_at_a_missing_group() {
    let s = Arc::new(Server::start());
    let project = s.admin_project().await;
    let (st, _) = s
        .call(
            "PUT",
            &format!("/v2.0/quotas/{project}"),
            Some(json!({"quota": {"security_group": -1}})),
        )
        .await;
    assert_eq!(st, 200);
    let net = s.create_network("n").await;
    let mut deleted = 0;
    let mut attached = 0;
    for round in 0..25 {
        let sg = s.create_sg(&format!("doomed-{round}")).await;
        let results = concurrently(2, |i| {
            let (s, sg, net) = (s.clone(), sg.clone(), net.clone());
            async move {
                if i == 0 {
                    s.call(
                        "POST",
                        "/v2.0/ports",
                        Some(json!({"port": {"network_id": net, "security_groups": [sg]}})),
                    )
                    .await
                } else {
                    s.call("DELETE", &format!("/v2.0/security-groups/{sg}"), None)
                        .await
                }
            }
        })
        .await;
        let (port_st, port_v) = &results[0];
        let (del_st, del_v) = &results[1];
        match (port_st, del_st) {
            (201, 409) => {
                attached += 1;
                assert_eq!(del_v["NeutronError"]["type"], "SecurityGroupInUse");
            }
            (404, 204) => {
                deleted += 1;
                assert_eq!(port_v["NeutronError"]["type"], "SecurityGroupNotFound");
            }
            other => panic!("round {round}: impossible outcome {other:?}: {port_v} / {del_v}"),
        }
    }
    // The invariant: no port names a group that does not exist.
    let (_, ports) = s.call("GET", "/v2.0/ports", None).await;
    let (_, groups) = s.call("GET", "/v2.0/security-groups", None).await;
    let ids: Vec<&str> = groups["security_groups"]
        .as_array()
        .expect("groups")
        .iter()
        .filter_map(|g| g["id"].as_str())
        .collect();
    for p in ports["ports"].as_array().expect("ports") {
        for g in p["security_groups"].as_array().expect("groups") {
            assert!(
                ids.contains(&g.as_str().unwrap_or("")),
                "port {} points at missing group {g}",
                p["id"]
            );
        }
    }
    assert_eq!(attached + deleted, 25);
    eprintln!("attach won {attached} times, delete won {deleted} times");
}
