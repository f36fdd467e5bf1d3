//! Acceptance 5: SIGKILL the server while 8 writers run; after restart every write that was
//! acknowledged with 2xx is present, nothing partial exists, and SQLite's integrity check
//! passes.

mod common;
use common::Server;
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_sigkill() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_path_buf();
    let mut s = Server::start_in(&dir);
    let project = s.admin_project().await;
    let (st, _) = s
        .call(
            "PUT",
            &format!("/v2.0/quotas/{project}"),
            Some(json!({"quota": {"security_group": -1, "security_group_rule": -1}})),
        )
        .await;
    assert_eq!(st, 200);

    // group id → acknowledged rule ids in it
    let acked: Arc<Mutex<HashMap<String, Vec<String>>>> = Arc::new(Mutex::new(HashMap::new()));
    let (url, token) = (s.url.clone(), s.token.clone());
    let mut writers = Vec::new();
    for w in 0..8 {
        let (acked, url, token) = (acked.clone(), url.clone(), token.clone());
        writers.push(tokio::spawn(async move {
            let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().expect("client");
            for i in 0..100_000u32 {
                let resp = http
                    .post(format!("{url}/v2.0/security-groups"))
                    .header("X-Auth-Token", &token)
                    .json(&json!({"security_group": {"name": format!("w{w}-{i}")}}))
                    .send()
                    .await;
                let Ok(resp) = resp else { return };
                if resp.status().as_u16() != 201 {
                    return;
                }
                let Ok(v) = resp.json::<serde_json::Value>().await else { return };
                let sg = v["security_group"]["id"].as_str().expect("id").to_string();
                acked.lock().expect("lock").insert(sg.clone(), Vec::new());
                let resp = http
                    .post(format!("{url}/v2.0/security-group-rules"))
                    .header("X-Auth-Token", &token)
                    .json(&json!({"security_group_rule": {"security_group_id": sg, "direction": "ingress", "protocol": "tcp", "port_range_min": 22, "port_range_max": 22}}))
                    .send()
                    .await;
                let Ok(resp) = resp else { return };
                if resp.status().as_u16() != 201 {
                    return;
                }
                let Ok(v) = resp.json::<serde_json::Value>().await else { return };
                let rid = v["security_group_rule"]["id"].as_str().expect("id").to_string();
                acked.lock().expect("lock").entry(sg).or_default().push(rid);
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    s.kill(); // SIGKILL while the writers are mid-flight
    for w in writers {
        let _ = w.await;
    }
    let acked = acked.lock().expect("lock").clone();
    assert!(
        acked.len() > 50,
        "the writers should have made progress before the kill ({} groups)",
        acked.len()
    );

    {
        let db = rusqlite::Connection::open(dir.join("palisade.db")).expect("open db");
        let check: String = db
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .expect("integrity_check");
        assert_eq!(check, "ok");
    }

    let s = Server::start_in(&dir);
    let (_, groups) = s.call("GET", "/v2.0/security-groups", None).await;
    let groups = groups["security_groups"]
        .as_array()
        .expect("groups")
        .clone();
    let present: HashSet<&str> = groups.iter().filter_map(|g| g["id"].as_str()).collect();
    for (sg, rules) in &acked {
        assert!(
            present.contains(sg.as_str()),
            "acknowledged group {sg} lost"
        );
        let g = groups
            .iter()
            .find(|g| g["id"] == sg.as_str())
            .expect("group");
        let ids: Vec<&str> = g["security_group_rules"]
            .as_array()
            .expect("rules")
            .iter()
            .filter_map(|r| r["id"].as_str())
            .collect();
        for r in rules {
            assert!(
                ids.contains(&r.as_str()),
                "acknowledged rule {r} of {sg} lost"
            );
        }
    }
    // Nothing partial: every group has its two template rules; every rule's group exists.
    for g in &groups {
        let rules = g["security_group_rules"].as_array().expect("rules");
        let egress = rules.iter().filter(|r| r["direction"] == "egress").count();
        assert_eq!(egress, 2, "group {} lacks its template rules: {g}", g["id"]);
    }
    let (_, rules) = s.call("GET", "/v2.0/security-group-rules", None).await;
    for r in rules["security_group_rules"].as_array().expect("rules") {
        assert!(
            present.contains(r["security_group_id"].as_str().unwrap_or("")),
            "rule {} without its group",
            r["id"]
        );
    }
    // Usage counters agree with the objects after the crash.
    let (_, d) = s
        .call("GET", &format!("/v2.0/quotas/{project}/details"), None)
        .await;
    assert_eq!(
        d["quota"]["security_group"]["used"].as_u64(),
        Some(
            groups
                .iter()
                .filter(|g| g["project_id"] == project.as_str())
                .count() as u64
        )
    );
    eprintln!("{} acknowledged groups survived SIGKILL", acked.len());
}
