//! Issue #6: `palisade reconcile` against a real server: CAPO's groups and rules, empty
//! second plans, status that matches the server, minimal plans for spec changes, safe
//! removal of groups in use, the Calico migration order, and bad manifests that change
//! nothing.

mod common;

use common::Server;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::Path;

const FULL: &str = r#"
apiVersion: infrastructure.cluster.x-k8s.io/v1beta1
kind: OpenStackCluster
metadata:
  name: c1
  namespace: prod
spec:
  bastion:
    enabled: true
  apiServerLoadBalancer:
    additionalPorts: [8443]
  managedSubnets:
    - cidr: 198.18.10.0/24
  managedSecurityGroups:
    enabled: true
    additionalBastionSecurityGroupRules:
      - {direction: ingress, ethertype: IPv4, protocol: tcp, portRangeMin: 2222, portRangeMax: 2222, remoteIPPrefix: 198.18.99.0/24}
    additionalControlPlaneSecurityGroupRules:
      - {direction: ingress, ethertype: IPv4, protocol: tcp, portRangeMin: 9100, portRangeMax: 9100, remoteManagedGroups: [worker]}
    additionalWorkerSecurityGroupRules:
      - {direction: ingress, ethertype: IPv4, protocol: tcp, portRangeMin: 8080, portRangeMax: 8080}
      - {direction: ingress, ethertype: IPv4, protocol: tcp, portRangeMin: 9090, portRangeMax: 9090, description: metrics}
    allNodesSecurityGroupRules:
      - {direction: ingress, ethertype: IPv4, protocol: udp, portRangeMin: 4789, portRangeMax: 4789, remoteManagedGroups: [controlplane, worker]}
    additionalSecurityGroups:
      - name: extra
        description: extra group
        rules:
          - {direction: ingress, ethertype: IPv6, protocol: tcp, portRangeMin: 443, portRangeMax: 443}
    useLegacyCalicoRules: true
"#;

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write manifest");
    p.display().to_string()
}

async fn groups(s: &Server) -> Vec<Value> {
    let (_, v) = s.call("GET", "/v2.0/security-groups", None).await;
    v["security_groups"].as_array().cloned().unwrap_or_default()
}

fn by_name<'a>(gs: &'a [Value], name: &str) -> &'a Value {
    gs.iter()
        .find(|g| g["name"] == name)
        .unwrap_or_else(|| panic!("no group {name}"))
}

/// (protocol, min, max, remote) of every ingress rule.
fn ingress(g: &Value, gs: &[Value]) -> BTreeSet<String> {
    g["security_group_rules"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["direction"] == "ingress")
        .map(|r| {
            let remote = r["remote_group_id"]
                .as_str()
                .and_then(|id| gs.iter().find(|g| g["id"] == id))
                .and_then(|g| g["name"].as_str())
                .map(|n| n.rsplit('-').next().unwrap_or(n).to_string())
                .or_else(|| r["remote_ip_prefix"].as_str().map(String::from))
                .unwrap_or_else(|| "any".into());
            format!(
                "{} {} {} {} {}",
                r["ethertype"].as_str().unwrap_or(""),
                r["protocol"].as_str().unwrap_or("any"),
                r["port_range_min"],
                r["port_range_max"],
                remote
            )
        })
        .collect()
}

async fn machine(s: &Server, net: &str, name: &str, tags: &[&str]) -> String {
    let (st, v) = s
        .call(
            "POST",
            "/v2.0/ports",
            Some(json!({"port": {"network_id": net, "name": name}})),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let id = v["port"]["id"].as_str().expect("id").to_string();
    let (st, v) = s
        .call(
            "PUT",
            &format!("/v2.0/ports/{id}/tags"),
            Some(json!({"tags": tags})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    id
}

async fn port_groups(s: &Server, id: &str) -> Vec<String> {
    let (_, v) = s.call("GET", &format!("/v2.0/ports/{id}"), None).await;
    v["port"]["security_groups"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|g| g.as_str().map(String::from))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_creates_capos_groups_and_a_second_plan_is_empty() {
    let s = Server::start();
    let tmp = tempfile::tempdir().expect("tmp");
    let net = s.create_network("n").await;
    let cp = machine(&s, &net, "cp-0", &["cluster=prod/c1", "role=control-plane"]).await;
    let wk = machine(
        &s,
        &net,
        "wk-0",
        &["cluster=prod/c1", "role=worker", "sg=extra"],
    )
    .await;
    let f = write(tmp.path(), "c1.yaml", FULL);
    let (code, out, err) = s.cli(&["reconcile", "plan", "-f", &f]);
    assert_eq!(code, 2, "a plan with changes exits 2: {out}{err}");
    assert!(
        out.contains("+ group k8s-cluster-prod-c1-secgroup-controlplane"),
        "{out}"
    );
    let status_file = tmp.path().join("status.yaml");
    let (code, out, err) = s.cli(&[
        "reconcile",
        "apply",
        "-f",
        &f,
        "--status-out",
        &status_file.display().to_string(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let gs = groups(&s).await;
    let n = |role: &str| format!("k8s-cluster-prod-c1-secgroup-{role}");
    let cpg = by_name(&gs, &n("controlplane"));
    let wkg = by_name(&gs, &n("worker"));
    let allg = by_name(&gs, &n("allnodes"));
    let bg = by_name(&gs, &n("bastion"));
    let xg = by_name(&gs, "extra");
    let set = |v: &[&str]| {
        v.iter()
            .map(|s| s.to_string())
            .collect::<BTreeSet<String>>()
    };
    assert_eq!(
        ingress(cpg, &gs),
        set(&[
            "IPv4 tcp 6443 6443 any",
            "IPv4 tcp 2379 2380 controlplane",
            "IPv4 tcp 10250 10250 controlplane",
            "IPv4 tcp 10250 10250 worker",
            "IPv4 tcp 8443 8443 any",
            "IPv4 tcp 22 22 bastion",
            "IPv4 tcp 9100 9100 worker"
        ])
    );
    assert_eq!(
        ingress(wkg, &gs),
        set(&[
            "IPv4 tcp 30000 32767 198.18.10.0/24",
            "IPv4 udp 30000 32767 198.18.10.0/24",
            "IPv4 tcp 30000 32767 worker",
            "IPv4 udp 30000 32767 worker",
            "IPv4 tcp 30000 32767 controlplane",
            "IPv4 udp 30000 32767 controlplane",
            "IPv4 tcp 10250 10250 worker",
            "IPv4 tcp 10250 10250 controlplane",
            "IPv4 tcp 22 22 bastion",
            "IPv4 tcp 8080 8080 any",
            "IPv4 tcp 9090 9090 any"
        ])
    );
    assert_eq!(
        ingress(allg, &gs),
        set(&[
            "IPv4 udp 4789 4789 controlplane",
            "IPv4 udp 4789 4789 worker",
            "IPv4 tcp 179 179 controlplane",
            "IPv4 tcp 179 179 worker",
            "IPv4 4 null null controlplane",
            "IPv4 4 null null worker"
        ])
    );
    assert_eq!(
        ingress(bg, &gs),
        set(&["IPv4 tcp 22 22 any", "IPv4 tcp 2222 2222 198.18.99.0/24"])
    );
    assert_eq!(ingress(xg, &gs), set(&["IPv6 tcp 443 443 any"]));
    for g in [cpg, wkg, allg, bg, xg] {
        let egress = g["security_group_rules"]
            .as_array()
            .expect("rules")
            .iter()
            .filter(|r| r["direction"] == "egress")
            .count();
        assert_eq!(egress, 2, "Full open, IPv4 and IPv6, in {}", g["name"]);
        assert!(g["tags"]
            .as_array()
            .expect("tags")
            .contains(&json!("cluster=prod/c1")));
    }
    // Machines got their groups (and keep the project's default group they were made with).
    let id = |g: &Value| g["id"].as_str().expect("id").to_string();
    let default = by_name(&gs, "default");
    assert_eq!(
        port_groups(&s, &cp)
            .await
            .into_iter()
            .collect::<BTreeSet<_>>(),
        [id(cpg), id(allg), id(default)].into_iter().collect()
    );
    assert_eq!(
        port_groups(&s, &wk)
            .await
            .into_iter()
            .collect::<BTreeSet<_>>(),
        [id(wkg), id(allg), id(xg), id(default)]
            .into_iter()
            .collect()
    );
    // The second plan is empty.
    let (code, out, err) = s.cli(&["reconcile", "plan", "-f", &f]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("no changes"), "{out}");
    // The status file matches the server.
    let text = std::fs::read_to_string(&status_file).expect("status");
    let st: Value = serde_saphyr::from_str(&text).expect("status yaml");
    let m = &st["status"]["managedSecurityGroups"];
    for (key, g) in [
        ("controlPlaneSecurityGroup", cpg),
        ("workerSecurityGroup", wkg),
        ("allNodesSecurityGroup", allg),
        ("bastionSecurityGroup", bg),
    ] {
        assert_eq!(m[key]["id"], g["id"], "{key}");
        assert_eq!(m[key]["name"], g["name"], "{key}");
        let ids = |rules: &Value| {
            rules
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| r["id"].as_str().unwrap_or("").to_string())
                .collect::<BTreeSet<_>>()
        };
        assert_eq!(
            ids(&m[key]["rules"]),
            ids(&g["security_group_rules"]),
            "{key}: rules with ids"
        );
    }
    assert_eq!(st["status"]["additionalSecurityGroups"][0]["id"], xg["id"]);
    assert_eq!(st["status"]["conditions"][0]["status"], "True", "{st}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spec_changes_make_minimal_plans_and_groups_in_use_wait() {
    let s = Server::start();
    let tmp = tempfile::tempdir().expect("tmp");
    let net = s.create_network("n").await;
    machine(
        &s,
        &net,
        "wk-0",
        &["cluster=prod/c1", "role=worker", "sg=extra"],
    )
    .await;
    let f = write(tmp.path(), "c1.yaml", FULL);
    let (code, out, err) = s.cli(&["reconcile", "apply", "-f", &f]);
    assert_eq!(code, 0, "{out}{err}");
    // A port outside the cluster uses the additional group.
    let extra = by_name(&groups(&s).await, "extra")["id"]
        .as_str()
        .expect("id")
        .to_string();
    let (st, v) = s.call("POST", "/v2.0/ports", Some(json!({"port": {"network_id": net, "name": "outsider", "security_groups": [extra]}}))).await;
    assert_eq!(st, 201, "{v}");
    let outsider = v["port"]["id"].as_str().expect("id").to_string();
    // One rule less, one rule more, the additional group gone.
    let changed = FULL
        .replace("      - {direction: ingress, ethertype: IPv4, protocol: tcp, portRangeMin: 8080, portRangeMax: 8080}\n", "")
        .replace("portRangeMin: 9100, portRangeMax: 9100", "portRangeMin: 9101, portRangeMax: 9101")
        .replace("    additionalSecurityGroups:\n      - name: extra\n        description: extra group\n        rules:\n          - {direction: ingress, ethertype: IPv6, protocol: tcp, portRangeMin: 443, portRangeMax: 443}\n", "");
    assert_ne!(changed, FULL);
    write(tmp.path(), "c1.yaml", &changed);
    let (code, out, _) = s.cli(&["reconcile", "plan", "-f", &f]);
    assert_eq!(code, 2);
    let lines: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("  +") || l.starts_with("  -"))
        .collect();
    assert_eq!(
        lines.len(),
        5,
        "minimal: +9101, -9100, -8080, detach extra, delete extra:\n{out}"
    );
    assert!(
        out.contains("9101")
            && out.contains("- detach extra from port wk-0")
            && out.contains("- group extra"),
        "{out}"
    );
    let (code, out, err) = s.cli(&["reconcile", "apply", "-f", &f]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("extra: waiting: in use by 1 ports"), "{out}");
    assert!(
        groups(&s).await.iter().any(|g| g["name"] == "extra"),
        "still in use: kept"
    );
    // The outsider lets go; the next run deletes it.
    let (st, _) = s
        .call(
            "PUT",
            &format!("/v2.0/ports/{outsider}"),
            Some(json!({"port": {"security_groups": []}})),
        )
        .await;
    assert_eq!(st, 200);
    let (code, out, err) = s.cli(&["reconcile", "apply", "-f", &f]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        !groups(&s).await.iter().any(|g| g["name"] == "extra"),
        "{out}"
    );
    let (code, out, _) = s.cli(&["reconcile", "plan", "-f", &f]);
    assert_eq!(code, 0, "{out}");
    // Management off: every managed group detached and deleted.
    write(
        tmp.path(),
        "c1.yaml",
        &changed.replace("    enabled: true\n", "    enabled: false\n"),
    );
    let (code, out, err) = s.cli(&["reconcile", "apply", "-f", &f]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        !groups(&s).await.iter().any(|g| g["name"]
            .as_str()
            .unwrap_or("")
            .starts_with("k8s-cluster-prod-c1")),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calico_rules_move_to_all_nodes_before_they_leave_the_node_groups() {
    let s = Server::start();
    let net = s.create_network("n").await;
    let cp = machine(&s, &net, "cp-0", &["cluster=prod/c2", "role=control-plane"]).await;
    machine(&s, &net, "wk-0", &["cluster=prod/c2", "role=worker"]).await;
    let head = "kind: OpenStackCluster\nmetadata: {name: c2, namespace: prod}\nspec:\n  managedSecurityGroups:\n";
    let calico = "      - {direction: ingress, ethertype: IPv4, protocol: tcp, portRangeMin: 179, portRangeMax: 179, remoteManagedGroups: [controlplane, worker]}\n      - {direction: ingress, ethertype: IPv4, protocol: \"4\", remoteManagedGroups: [controlplane, worker]}\n";
    // The old world: Calico rules in the control-plane and worker groups; machines without
    // the all-nodes group yet.
    let old = format!("{head}    controlPlaneNodesSecurityGroupRules:\n{calico}    workerNodesSecurityGroupRules:\n{calico}");
    let old_cluster = palisade_reconcile::spec::parse("old", &old)
        .expect("old")
        .remove(0);
    let client = palisade_client::Client::new(&s.url, &s.token).expect("client");
    palisade_reconcile::apply::reconcile(&client, &old_cluster, false, false)
        .await
        .expect("old apply");
    let allnodes = by_name(&groups(&s).await, "k8s-cluster-prod-c2-secgroup-allnodes")["id"]
        .as_str()
        .expect("id")
        .to_string();
    let (st, _) = s.call("PUT", &format!("/v2.0/ports/{cp}"), Some(json!({"port": {"security_groups": port_groups(&s, &cp).await.into_iter().filter(|g| *g != allnodes).collect::<Vec<_>>()}}))).await;
    assert_eq!(st, 200);
    // The new world: useLegacyCalicoRules moves them to the all-nodes group.
    let new = format!("{head}    useLegacyCalicoRules: true\n");
    let new_cluster = palisade_reconcile::spec::parse("new", &new)
        .expect("new")
        .remove(0);
    let (plan, _, calls) =
        palisade_reconcile::apply::reconcile(&client, &new_cluster, false, false)
            .await
            .expect("apply");
    assert!(!plan.is_empty());
    let attach = calls
        .iter()
        .position(|c| c == &format!("PUT /v2.0/ports/{cp}"))
        .expect("the control-plane machine gets the all-nodes group");
    let first_delete = calls
        .iter()
        .position(|c| c.starts_with("DELETE /v2.0/security-group-rules/"))
        .expect("calico rules leave the node groups");
    let add = calls
        .iter()
        .position(|c| c == "POST /v2.0/security-group-rules")
        .expect("calico rules added to all-nodes");
    assert!(
        add < attach && attach < first_delete,
        "add, then attach, then delete: {calls:#?}"
    );
    assert_eq!(
        calls
            .iter()
            .filter(|c| c.starts_with("DELETE /v2.0/security-group-rules/"))
            .count(),
        8,
        "4 calico rules from each node group: {calls:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_document_changes_nothing() {
    let s = Server::start();
    let tmp = tempfile::tempdir().expect("tmp");
    let before = groups(&s).await.len();
    let good = "kind: OpenStackCluster\nmetadata: {name: ok, namespace: ns}\nspec:\n  managedSecurityGroups: {}\n";
    let bad = "kind: OpenStackCluster\nmetadata: {name: bad, namespace: ns}\nspec:\n  managedSecurityGroups:\n    additionalWorkerSecurityGroupRules:\n      - {direction: ingress, protocol: tcp, portRangeMin: 1, portRangeMax: 1}\n      - {direction: ingress, protocol: tcp, portRangeMin: 2, portRangeMax: 2}\n      - {direction: ingress, protocol: tcp, portRangeMin: 70000, portRangeMax: 70000}\n";
    let a = write(tmp.path(), "a.yaml", good);
    let b = write(tmp.path(), "b.yaml", &format!("{good}---\n{bad}"));
    let (code, out, err) = s.cli(&["reconcile", "apply", "-f", &a, "-f", &b]);
    assert_eq!(code, 1, "{out}");
    assert!(
        err.contains(
            "spec.managedSecurityGroups.additionalWorkerSecurityGroupRules[2].portRangeMin"
        ) && err.contains("70000 is not a port"),
        "{err}"
    );
    assert_eq!(groups(&s).await.len(), before, "nothing changed: {out}");
    let (code, _, err) = s.cli(&["reconcile", "apply", "-f", &a, "-f", &a]);
    assert_eq!(code, 1);
    assert!(err.contains("defined twice"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_undoes_drift_and_prune_removes_rules_added_by_hand() {
    let s = Server::start();
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("manifests");
    std::fs::create_dir_all(&dir).expect("dir");
    write(&dir, "c1.yaml", FULL);
    let mut run = std::process::Command::new(common::BIN)
        .args(["reconcile", "run", "-f"])
        .arg(&dir)
        .args(["--interval", "1"])
        .env("PALISADE_URL", &s.url)
        .env("PALISADE_TOKEN", &s.token)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("reconcile run");
    let found = |gs: &[Value]| {
        gs.iter()
            .any(|g| g["name"] == "k8s-cluster-prod-c1-secgroup-worker")
    };
    let mut ok = false;
    for _ in 0..100 {
        if found(&groups(&s).await) {
            ok = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(ok, "run applied the files");
    // A managed rule deleted by hand comes back.
    let gs = groups(&s).await;
    let wk = by_name(&gs, "k8s-cluster-prod-c1-secgroup-worker").clone();
    let rule = wk["security_group_rules"]
        .as_array()
        .expect("rules")
        .iter()
        .find(|r| r["port_range_min"] == 8080)
        .expect("8080")
        .clone();
    let (st, _) = s
        .call(
            "DELETE",
            &format!(
                "/v2.0/security-group-rules/{}",
                rule["id"].as_str().expect("id")
            ),
            None,
        )
        .await;
    assert_eq!(st, 204);
    let mut back = false;
    for _ in 0..60 {
        let gs = groups(&s).await;
        if by_name(&gs, "k8s-cluster-prod-c1-secgroup-worker")["security_group_rules"]
            .as_array()
            .expect("rules")
            .iter()
            .any(|r| r["port_range_min"] == 8080)
        {
            back = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let _ = run.kill();
    let _ = run.wait();
    assert!(back, "the deleted managed rule came back");
    // A rule added by hand is reported, kept, and removed only with --prune.
    let (st, v) = s
        .call("POST", "/v2.0/security-group-rules", Some(json!({"security_group_rule": {"security_group_id": wk["id"], "direction": "ingress", "protocol": "tcp", "port_range_min": 5555, "port_range_max": 5555}})))
        .await;
    assert_eq!(st, 201, "{v}");
    let f = dir.join("c1.yaml").display().to_string();
    let (code, out, _) = s.cli(&["reconcile", "plan", "-f", &f]);
    assert_eq!(code, 0, "kept without --prune: {out}");
    assert!(
        out.contains("added by hand") && out.contains("5555"),
        "{out}"
    );
    let (code, out, _) = s.cli(&["reconcile", "plan", "-f", &f, "--prune"]);
    assert_eq!(code, 2, "{out}");
    let (code, out, err) = s.cli(&["reconcile", "apply", "-f", &f, "--prune"]);
    assert_eq!(code, 0, "{out}{err}");
    let gs = groups(&s).await;
    assert!(
        !by_name(&gs, "k8s-cluster-prod-c1-secgroup-worker")["security_group_rules"]
            .as_array()
            .expect("rules")
            .iter()
            .any(|r| r["port_range_min"] == 5555)
    );
}
