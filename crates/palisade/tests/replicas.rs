//! Issue #7: several server replicas on a three-member etcd cluster (real etcd processes on
//! loopback ports). Every invariant holds across replicas; faults lose no acknowledged
//! write; losing the etcd majority fails fast with 503 and recovers; a watch client follows
//! through a replica failure. Skipped without `etcd` (required under CI=true).

mod common;

use common::{concurrently, Server};
use palisade_store::testing::{etcd_available, EtcdCluster};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn can_run() -> bool {
    if etcd_available() {
        return true;
    }
    assert!(
        std::env::var("CI").map_or(true, |v| v != "true"),
        "CI needs etcd"
    );
    eprintln!("skipping: no etcd binary");
    false
}

fn replica(etcd: &EtcdCluster, prefix: &str) -> Server {
    Server::start_with(&[
        "--store",
        "etcd",
        "--etcd-endpoints",
        &etcd.endpoints().join(","),
        "--etcd-prefix",
        prefix,
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_keep_every_invariant() {
    if !can_run() {
        return;
    }
    let etcd = EtcdCluster::start(3).expect("etcd");
    let rs: Vec<Arc<Server>> = (0..3).map(|_| Arc::new(replica(&etcd, "/inv/"))).collect();
    // The same rule from 8 clients over 3 replicas: one 201, seven 409s.
    let sg = rs[0].create_sg("race").await;
    for round in 0..5u32 {
        let body = json!({"security_group_rule": {"security_group_id": sg, "direction": "ingress", "protocol": "tcp", "port_range_min": 1000 + round, "port_range_max": 1000 + round}});
        let results = concurrently(8, |i| {
            let (s, body) = (rs[i % 3].clone(), body.clone());
            async move {
                s.call("POST", "/v2.0/security-group-rules", Some(body))
                    .await
            }
        })
        .await;
        let wins = results.iter().filter(|(st, _)| *st == 201).count();
        assert_eq!(wins, 1, "round {round}: {results:?}");
        assert!(
            results.iter().all(|(st, v)| *st == 201
                || (*st == 409 && v["NeutronError"]["type"] == "SecurityGroupRuleExists")),
            "{results:?}"
        );
    }
    // A quota raced from every replica lands exactly on the limit.
    let project = rs[0].admin_project().await;
    let (st, v) = rs[0]
        .call(
            "PUT",
            &format!("/v2.0/quotas/{project}"),
            Some(json!({"quota": {"security_group": 6}})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    concurrently(8, |i| {
        let s = rs[i % 3].clone();
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
    let (_, v) = rs[1]
        .call(
            "GET",
            &format!("/v2.0/security-groups?project_id={project}"),
            None,
        )
        .await;
    assert_eq!(
        v["security_groups"].as_array().expect("groups").len(),
        6,
        "exactly the quota"
    );
    let (st, _) = rs[0]
        .call(
            "PUT",
            &format!("/v2.0/quotas/{project}"),
            Some(json!({"quota": {"security_group": -1}})),
        )
        .await;
    assert_eq!(st, 200);
    // Attach on one replica while another deletes the group: never a dangling port.
    let net = rs[0].create_network("n").await;
    for round in 0..10 {
        let g = rs[0].create_sg(&format!("inuse-{round}")).await;
        let results = concurrently(2, |i| {
            let (s, g, net) = (rs[i + 1].clone(), g.clone(), net.clone());
            async move {
                if i == 0 {
                    s.call(
                        "POST",
                        "/v2.0/ports",
                        Some(json!({"port": {"network_id": net, "security_groups": [g]}})),
                    )
                    .await
                } else {
                    s.call("DELETE", &format!("/v2.0/security-groups/{g}"), None)
                        .await
                }
            }
        })
        .await;
        let (port, del) = (&results[0], &results[1]);
        assert!(
            !(port.0 == 201 && del.0 == 204),
            "round {round}: both won: {results:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (_, ports) = rs[2]
            .call("GET", &format!("/v2.0/ports?security_groups={g}"), None)
            .await;
        let (gst, _) = rs[2]
            .call("GET", &format!("/v2.0/security-groups/{g}"), None)
            .await;
        let n = ports["ports"].as_array().map(Vec::len).unwrap_or(0);
        assert!(
            !(n > 0 && gst == 404),
            "round {round}: a port points at a deleted group"
        );
    }
}

/// Faults under load: one etcd member and one replica die while writers run; then the etcd
/// majority dies (writes fail fast with 503) and comes back. A watch client on the dead
/// replica moves to the other and ends with exactly the store's state.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn faults_lose_no_acknowledged_write_and_recover() {
    if !can_run() {
        return;
    }
    let mut etcd = EtcdCluster::start(3).expect("etcd");
    let mut r0 = replica(&etcd, "/faults/");
    let mut r1 = replica(&etcd, "/faults/");
    let (url0, url1, token) = (r0.url.clone(), r1.url.clone(), r0.token.clone());
    let project = r0.admin_project().await;
    let (st, _) = r0
        .call(
            "PUT",
            &format!("/v2.0/quotas/{project}"),
            Some(json!({"quota": {"security_group": -1, "security_group_rule": -1}})),
        )
        .await;
    assert_eq!(st, 200);
    // A watch client: snapshot and stream through replica 1, moving to replica 0 when it dies.
    let http = reqwest::Client::new();
    let snap: Value = http
        .get(format!("{url1}/v2.0/palisade/snapshot"))
        .header("x-auth-token", &token)
        .send()
        .await
        .expect("snapshot")
        .json()
        .await
        .expect("json");
    let mut groups: BTreeSet<String> = snap["security_groups"]
        .as_array()
        .expect("groups")
        .iter()
        .filter_map(|g| g["id"].as_str().map(String::from))
        .collect();
    let mut since = snap["revision"].as_i64().expect("revision");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (http, token, stop) = (http.clone(), token.clone(), stop.clone());
        let urls = [url1.clone(), url0.clone()];
        tokio::spawn(async move {
            use futures_util::StreamExt;
            let mut which = 0;
            let mut switches = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let resp = http
                    .get(format!("{}/v2.0/palisade/watch?since={since}", urls[which]))
                    .header("x-auth-token", &token)
                    .send()
                    .await;
                let Ok(resp) = resp.and_then(|r| r.error_for_status()) else {
                    which = 1;
                    switches += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                };
                let mut body = resp.bytes_stream();
                let mut buf = Vec::new();
                loop {
                    let next = tokio::time::timeout(Duration::from_millis(200), body.next()).await;
                    let chunk = match next {
                        Ok(Some(Ok(c))) => c,
                        Ok(_) => break,
                        Err(_) if stop.load(std::sync::atomic::Ordering::SeqCst) => {
                            return (groups, switches)
                        }
                        Err(_) => continue,
                    };
                    buf.extend_from_slice(&chunk);
                    while let Some(nl) = buf.iter().position(|b| *b == b'\n') {
                        let line: Vec<u8> = buf.drain(..=nl).collect();
                        let Ok(v) = serde_json::from_slice::<Value>(&line) else {
                            continue;
                        };
                        if v["kind"] == "security_group" {
                            let id = v["id"].as_str().unwrap_or("").to_string();
                            if v["type"] == "put" {
                                groups.insert(id);
                            } else {
                                groups.remove(&id);
                            }
                        }
                        if let Some(r) = v["revision"].as_i64() {
                            since = since.max(r);
                        }
                    }
                }
                which = 1;
                switches += 1;
            }
            (groups, switches)
        })
    };
    // Writers: 4 tasks creating groups, each through either replica, falling back to the
    // other on a connection failure.
    let acked = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let failures = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let writing = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let mut writers = Vec::new();
    for w in 0..4 {
        let (http, token, acked, writing) =
            (http.clone(), token.clone(), acked.clone(), writing.clone());
        let urls = [url0.clone(), url1.clone()];
        let failures = failures.clone();
        writers.push(tokio::spawn(async move {
            let mut n = 0;
            while writing.load(std::sync::atomic::Ordering::SeqCst) && n < 400 {
                n += 1;
                let url = &urls[(w + n) % 2];
                let r = http
                    .post(format!("{url}/v2.0/security-groups"))
                    .header("x-auth-token", &token)
                    .json(&json!({"security_group": {"name": format!("w{w}-{n}")}}))
                    .timeout(Duration::from_secs(10))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status().as_u16() == 201 => {
                        let v: Value = r.json().await.unwrap_or_default();
                        if let Some(id) = v["security_group"]["id"].as_str() {
                            acked.lock().expect("lock").push(id.to_string());
                        }
                    }
                    Ok(r) => {
                        let st = r.status().as_u16();
                        let body = r.text().await.unwrap_or_default();
                        failures.lock().expect("lock").push(format!(
                            "{st} {}",
                            body.chars().take(160).collect::<String>()
                        ));
                    }
                    Err(e) => failures.lock().expect("lock").push(format!("{url}: {e}")),
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let before_faults = acked.lock().expect("lock").len();
    etcd.kill(2);
    r1.kill();
    tokio::time::sleep(Duration::from_millis(4000)).await;
    writing.store(false, std::sync::atomic::Ordering::SeqCst);
    for w in writers {
        w.await.expect("writer");
    }
    let acked: Vec<String> = acked.lock().expect("lock").clone();
    assert!(
        before_faults > 10 && acked.len() > before_faults + 10,
        "writes went on through the faults: {before_faults} before, {} in all\n{:?}\n{}",
        acked.len(),
        failures
            .lock()
            .expect("lock")
            .iter()
            .rev()
            .take(8)
            .collect::<Vec<_>>(),
        r0.log()
            .lines()
            .rev()
            .take(15)
            .collect::<Vec<_>>()
            .join("\n")
    );
    let (_, v) = r0
        .call("GET", "/v2.0/security-groups?fields=id", None)
        .await;
    let present: BTreeSet<String> = v["security_groups"]
        .as_array()
        .expect("groups")
        .iter()
        .filter_map(|g| g["id"].as_str().map(String::from))
        .collect();
    let lost: Vec<&String> = acked.iter().filter(|id| !present.contains(*id)).collect();
    assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
    // The watch client moved to replica 0 and holds exactly the store's groups.
    tokio::time::sleep(Duration::from_millis(800)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (seen, switches) = watcher.await.expect("watcher");
    assert!(switches >= 1, "the watch client had to move");
    assert_eq!(
        seen, present,
        "the watch client ends with the store's state"
    );
    // The etcd majority dies: writes fail fast with 503 and a clear error.
    etcd.kill(1);
    let t = Instant::now();
    let (st, v) = r0
        .call(
            "POST",
            "/v2.0/security-groups",
            Some(json!({"security_group": {"name": "no-quorum"}})),
        )
        .await;
    let took = t.elapsed();
    assert_eq!(st, 503, "{v}");
    assert!(took < Duration::from_secs(12), "no hang: {took:?}");
    assert!(
        v["NeutronError"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("etcd"),
        "{v}"
    );
    // Members come back: service recovers.
    etcd.restart(1).expect("restart");
    etcd.restart(2).expect("restart");
    etcd.wait_until_healthy(Duration::from_secs(30))
        .expect("healthy");
    let mut ok = false;
    for _ in 0..100 {
        let (st, _) = r0
            .call(
                "POST",
                "/v2.0/security-groups",
                Some(json!({"security_group": {"name": "back"}})),
            )
            .await;
        if st == 201 {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "writes recover when the members return");
    r0.kill();
}
