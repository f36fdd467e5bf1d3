//! `palisade bench agent`: latency from the API's 2xx to the rule in force in the kernel.
//! A server in this namespace, an agent in a fresh namespace reaching it over a veth
//! (198.19.254.8/30), and `nft monitor` in that namespace reporting each commit as the
//! kernel makes it. Needs root.

use anyhow::Context as _;
use clap::Args;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Options of `palisade bench agent`.
#[derive(Args, Debug, Clone)]
pub struct AgentBench {
    /// Rule changes to time (each a new rule, then its delete).
    #[arg(long, default_value_t = 100)]
    changes: usize,
    /// Spawn `nft` per apply in the agent instead of libnftables.
    #[arg(long)]
    spawn_nft: bool,
}

struct Cleanup {
    ns: String,
    children: Vec<Child>,
    dir: std::path::PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        if !self.ns.is_empty() {
            let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn sh(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new(args[0]).args(&args[1..]).output()?;
    anyhow::ensure!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// A `palisade server` child on `listen` with the HMAC view key, its data in `dir`:
/// (process, base URL, admin token).
fn start_server(
    exe: &Path,
    listen: &str,
    key: &str,
    dir: &Path,
) -> anyhow::Result<(Child, String, String)> {
    start_server_with(exe, listen, key, dir, &[])
}

fn start_server_with(
    exe: &Path,
    listen: &str,
    key: &str,
    dir: &Path,
    extra: &[&str],
) -> anyhow::Result<(Child, String, String)> {
    let mut server = Command::new(exe)
        .args([
            "server",
            "--listen",
            listen,
            "--hmac-view-key",
            key,
            "--data-dir",
        ])
        .arg(dir.join("data"))
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut first = String::new();
    let mut lines = BufReader::new(server.stdout.take().context("server stdout")?);
    lines.read_line(&mut first)?;
    // Keep reading: the server must never write into a closed pipe.
    std::thread::spawn(move || for _ in lines.lines() {});
    let url = first
        .split_whitespace()
        .find_map(|w| w.strip_suffix("/v2.0"))
        .context("server URL")?
        .to_string();
    let token = std::fs::read_to_string(dir.join("data/admin-token"))?
        .trim()
        .to_string();
    Ok((server, url, token))
}

/// A network, a group `db` and a port in it bound to `host` (198.18.2.1): what the agent
/// benchmarks change rules of. Returns the group's id.
async fn group_with_port(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    host: &str,
    ifname: Option<&str>,
) -> anyhow::Result<String> {
    let post = |path: &str, body: serde_json::Value| {
        http.post(format!("{url}{path}"))
            .header("x-auth-token", token)
            .json(&body)
            .send()
    };
    let net: serde_json::Value = post(
        "/v2.0/networks",
        serde_json::json!({"network": {"name": "n"}}),
    )
    .await?
    .json()
    .await?;
    let sg: serde_json::Value = post(
        "/v2.0/security-groups",
        serde_json::json!({"security_group": {"name": "db"}}),
    )
    .await?
    .json()
    .await?;
    let sg_id = sg["security_group"]["id"]
        .as_str()
        .context("group id")?
        .to_string();
    let mut port = serde_json::json!({"network_id": net["network"]["id"], "security_groups": [sg_id],
        "fixed_ips": [{"ip_address": "198.18.2.1"}], "binding:host_id": host});
    if let Some(i) = ifname {
        port["binding:profile"] = serde_json::json!({"interface_name": i});
    }
    let r = post("/v2.0/ports", serde_json::json!({ "port": port })).await?;
    anyhow::ensure!(r.status().is_success(), "port: {}", r.text().await?);
    Ok(sg_id)
}

fn pct(v: &[f64], p: f64) -> f64 {
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v.get(i).copied().unwrap_or(f64::NAN)
}

pub async fn run(b: AgentBench) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let ns = format!("palagent{}", std::process::id());
    let dir = std::env::temp_dir().join(&ns);
    std::fs::create_dir_all(&dir)?;
    let mut cl = Cleanup {
        ns: ns.clone(),
        children: Vec::new(),
        dir: dir.clone(),
    };
    sh(&["ip", "netns", "add", &ns]).context("creating a namespace needs root")?;
    let up = format!("pb{}", std::process::id() % 100_000);
    sh(&[
        "ip", "link", "add", &up, "type", "veth", "peer", "name", "uplink", "netns", &ns,
    ])?;
    sh(&["ip", "addr", "add", "198.19.254.9/30", "dev", &up])?;
    sh(&["ip", "link", "set", &up, "up"])?;
    for cmd in [
        "ip link set lo up",
        "ip addr add 198.19.254.10/30 dev uplink",
        "ip link set uplink up",
    ] {
        let mut a = vec!["ip", "netns", "exec", &ns];
        a.extend(cmd.split(' '));
        sh(&a)?;
    }
    let key = "bench-agent-key-0123456789";
    let (server, url, token) = start_server(&exe, "198.19.254.9:0", key, &dir)?;
    cl.children.push(server);
    let http = reqwest::Client::new();
    let post = |path: &str, body: serde_json::Value| {
        http.post(format!("{url}{path}"))
            .header("x-auth-token", &token)
            .json(&body)
            .send()
    };
    let sg_id = group_with_port(&http, &url, &token, "bench-hv", Some("tapbench")).await?;
    let config = dir.join("agent.yaml");
    std::fs::write(
        &config,
        format!(
            "name: bench-hv\nsources:\n  metal:\n    url: {url}\n    hmac: {key}\ncontrollers:\n  securitygroups:\n    source: metal\nruleFile: {}\n",
            dir.join("firewall.v4").display()
        ),
    )?;
    let mut monitor = Command::new("ip")
        .args(["netns", "exec", &ns, "nft", "monitor", "rules"])
        .stdout(Stdio::piped())
        .spawn()?;
    let mon_out = monitor.stdout.take().context("monitor stdout")?;
    cl.children.push(monitor);
    let (tx, rx) = std::sync::mpsc::channel::<(Instant, String)>();
    std::thread::spawn(move || {
        for line in BufReader::new(mon_out).lines().map_while(Result::ok) {
            if tx.send((Instant::now(), line)).is_err() {
                return;
            }
        }
    });
    let mut agent_args: Vec<String> = vec![
        "netns".into(),
        "exec".into(),
        ns.clone(),
        exe.display().to_string(),
        "agent".into(),
        "--config".into(),
        config.display().to_string(),
    ];
    if b.spawn_nft {
        agent_args.push("--spawn-nft".into());
    }
    let agent = Command::new("ip")
        .args(&agent_args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    cl.children.push(agent);
    // Wait for the first full apply.
    let start = Instant::now();
    loop {
        let out = Command::new("ip")
            .args([
                "netns", "exec", &ns, "nft", "list", "table", "inet", "palisade",
            ])
            .output()?;
        if out.status.success() {
            break;
        }
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(20),
            "the agent did not install its table"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(200));
    while rx.try_recv().is_ok() {}
    let mut add = Vec::new();
    let mut del = Vec::new();
    for i in 0..b.changes {
        let port = 20000 + i as u16;
        let word = port.to_string();
        let r = post(
            "/v2.0/security-group-rules",
            serde_json::json!({"security_group_rule": {"security_group_id": sg_id, "direction": "ingress",
                "protocol": "tcp", "port_range_min": port, "port_range_max": port}}),
        )
        .await?;
        let t0 = Instant::now();
        anyhow::ensure!(r.status().is_success(), "rule: {}", r.text().await?);
        let rule: serde_json::Value = r.json().await?;
        let id = rule["security_group_rule"]["id"]
            .as_str()
            .context("rule id")?
            .to_string();
        let seen = loop {
            let (t, line) = rx
                .recv_timeout(Duration::from_secs(5))
                .context("the rule never reached the kernel")?;
            if line.split(|c: char| !c.is_ascii_digit()).any(|w| w == word) {
                break t;
            }
        };
        add.push(seen.saturating_duration_since(t0).as_secs_f64() * 1e3);
        while rx.try_recv().is_ok() {}
        let r = http
            .delete(format!("{url}/v2.0/security-group-rules/{id}"))
            .header("x-auth-token", &token)
            .send()
            .await?;
        let t0 = Instant::now();
        anyhow::ensure!(r.status().is_success(), "delete: {}", r.text().await?);
        let seen = loop {
            let (t, line) = rx
                .recv_timeout(Duration::from_secs(5))
                .context("the delete never reached the kernel")?;
            if line.starts_with("add rule")
                || line.starts_with("delete rule")
                || line.contains("flush")
            {
                break t;
            }
        };
        del.push(seen.saturating_duration_since(t0).as_secs_f64() * 1e3);
        std::thread::sleep(Duration::from_millis(20));
        while rx.try_recv().is_ok() {}
    }
    for v in [&mut add, &mut del] {
        v.sort_by(f64::total_cmp);
    }
    println!("| change (API 2xx → committed in the kernel, `nft monitor`) | n | p50 ms | p99 ms | max ms |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for (name, v) in [("rule create", &add), ("rule delete", &del)] {
        println!(
            "| {name} ({}) | {} | {:.1} | {:.1} | {:.1} |",
            if b.spawn_nft {
                "nft spawned"
            } else {
                "libnftables"
            },
            v.len(),
            pct(v, 0.5),
            pct(v, 0.99),
            v.last().copied().unwrap_or(f64::NAN)
        );
    }
    Ok(())
}

/// Options of `palisade bench fanout`.
#[derive(Args, Debug, Clone)]
pub struct FanoutBench {
    /// Agents (dry-run agents in this process, each with its own watch connection).
    #[arg(long, default_value_t = 200)]
    agents: usize,
    /// Changes to time.
    #[arg(long, default_value_t = 20)]
    changes: usize,
}

/// Resident memory (kB) and CPU seconds (user + system) of a process.
fn usage(pid: u32) -> (u64, f64) {
    let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0);
    let ticks = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = s.rsplit(')').next()?.to_string();
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?)
        })
        .unwrap_or(0.0);
    (rss, ticks / 100.0)
}

pub async fn fanout(b: FanoutBench) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let dir = std::env::temp_dir().join(format!("palfanout{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let key = "bench-fanout-key-0123456789";
    let (server, url, token) = start_server(&exe, "127.0.0.1:0", key, &dir)?;
    let pid = server.id();
    let mut cl = Cleanup {
        ns: String::new(),
        children: vec![server],
        dir: dir.clone(),
    };
    fanout_on(&[url], &token, key, &[pid], b.agents, b.changes).await?;
    cl.children.iter_mut().for_each(|c| {
        let _ = c.kill();
    });
    Ok(())
}

/// `agents` dry-run agents spread over the servers at `urls` (one store), `changes` rule
/// creates through the first: delivery latency, and the servers' memory and CPU.
async fn fanout_on(
    urls: &[String],
    token: &str,
    key: &str,
    pids: &[u32],
    agents: usize,
    changes: usize,
) -> anyhow::Result<()> {
    let url = urls[0].clone();
    let b = FanoutBench { agents, changes };
    let usage_all = || {
        pids.iter().fold((0u64, 0f64), |(r, c), p| {
            let (r2, c2) = usage(*p);
            (r + r2, c + c2)
        })
    };
    let http = reqwest::Client::new();
    let post = |path: &str, body: serde_json::Value| {
        http.post(format!("{url}{path}"))
            .header("x-auth-token", token)
            .json(&body)
            .send()
    };
    let sg_id = group_with_port(&http, &url, token, "fan", None).await?;
    let (rss0, _) = usage_all();
    let mut cfgs = Vec::new();
    for u in urls {
        let yaml = format!(
            "name: fan\nsources:\n  metal:\n    url: {u}\n    hmac: {key}\ncontrollers:\n  securitygroups:\n    source: metal\n"
        );
        cfgs.push(
            palisade_agent::config::Config::parse(&yaml, std::path::Path::new("fanout.yaml"))?
                .check()?,
        );
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, Instant, String)>();
    for i in 0..b.agents {
        let (otx, mut orx) = tokio::sync::mpsc::unbounded_channel();
        let opts = palisade_agent::agent::Options {
            dry_run: true,
            observer: Some(otx),
            ..Default::default()
        };
        tokio::spawn(palisade_agent::agent::run(
            cfgs[i % cfgs.len()].clone(),
            opts,
        ));
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some((t, script)) = orx.recv().await {
                if tx.send((i, t, script)).is_err() {
                    return;
                }
            }
        });
    }
    // Every agent has its first ruleset.
    let mut ready = std::collections::HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while ready.len() < b.agents {
        let left = deadline.saturating_duration_since(Instant::now());
        let (i, _, _) = tokio::time::timeout(left, rx.recv())
            .await
            .context("agents did not all start in 60 s")?
            .context("agents gone")?;
        ready.insert(i);
    }
    let (rss1, cpu1) = usage_all();
    let mut lat = Vec::new();
    let mut all = Vec::new();
    for c in 0..b.changes {
        let word = (30000 + c).to_string();
        let r = post(
            "/v2.0/security-group-rules",
            serde_json::json!({"security_group_rule": {"security_group_id": sg_id, "direction": "ingress",
                "protocol": "tcp", "port_range_min": 30000 + c, "port_range_max": 30000 + c}}),
        )
        .await?;
        let t0 = Instant::now();
        anyhow::ensure!(r.status().is_success(), "rule: {}", r.text().await?);
        let mut got = std::collections::HashSet::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut last = 0.0;
        while got.len() < b.agents {
            let left = deadline.saturating_duration_since(Instant::now());
            let (i, t, script) = tokio::time::timeout(left, rx.recv())
                .await
                .context("a change did not reach every agent in 30 s")?
                .context("agents gone")?;
            if script
                .split(|ch: char| !ch.is_ascii_digit())
                .any(|w| w == word)
                && got.insert(i)
            {
                let ms = t.saturating_duration_since(t0).as_secs_f64() * 1e3;
                lat.push(ms);
                last = f64::max(last, ms);
            }
        }
        all.push(last);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (rss2, cpu2) = usage_all();
    lat.sort_by(f64::total_cmp);
    all.sort_by(f64::total_cmp);
    println!("| {} agents, {} changes | figure |", b.agents, b.changes);
    println!("| --- | --- |");
    println!("| delivery to one agent (API 2xx → its delta computed), p50 / p99 / max | {:.1} / **{:.1}** / {:.1} ms |", pct(&lat, 0.5), pct(&lat, 0.99), lat.last().copied().unwrap_or(f64::NAN));
    println!(
        "| until the last of the {} agents has it, p50 / max | {:.1} / {:.1} ms |",
        b.agents,
        pct(&all, 0.5),
        all.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "| server RSS: before agents / with {} watchers / after the changes | {} / {} / {} MB |",
        b.agents,
        rss0 / 1024,
        rss1 / 1024,
        rss2 / 1024
    );
    println!(
        "| server CPU for the {} changes (user + system) | {:.2} s |",
        b.changes,
        cpu2 - cpu1
    );
    Ok(())
}

/// Options of `palisade bench reconcile`.
#[derive(Args, Debug, Clone)]
pub struct ReconcileBench {
    /// Additional groups in the cluster's spec.
    #[arg(long, default_value_t = 50)]
    groups: usize,
    /// Rules per additional group.
    #[arg(long, default_value_t = 20)]
    rules: usize,
    /// Machines (ports tagged with the cluster).
    #[arg(long, default_value_t = 20)]
    machines: usize,
}

pub async fn reconcile_bench(b: ReconcileBench) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let dir = std::env::temp_dir().join(format!("palreconcile{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (server, url, token) = start_server(&exe, "127.0.0.1:0", "bench-reconcile-key-0123", &dir)?;
    let _cl = Cleanup {
        ns: String::new(),
        children: vec![server],
        dir: dir.clone(),
    };
    let client = palisade_client::Client::new(&url, &token)?;
    // Room for the cluster: quotas off for the admin project.
    let (_, me) = client
        .request(reqwest::Method::GET, "/v2.0/palisade/tokens/self", None)
        .await?;
    let project = me["token"]["project_id"]
        .as_str()
        .context("project")?
        .to_string();
    client
        .request(
            reqwest::Method::PUT,
            &format!("/v2.0/quotas/{project}"),
            Some(&serde_json::json!({"quota": {"security_group": -1, "security_group_rule": -1, "port": -1}})),
        )
        .await?;
    let (_, net) = client
        .request(
            reqwest::Method::POST,
            "/v2.0/networks",
            Some(&serde_json::json!({"network": {"name": "n"}})),
        )
        .await?;
    let net_id = net["network"]["id"]
        .as_str()
        .context("network")?
        .to_string();
    for i in 0..b.machines {
        let (_, p) = client
            .request(
                reqwest::Method::POST,
                "/v2.0/ports",
                Some(&serde_json::json!({"port": {"network_id": net_id, "name": format!("m{i}")}})),
            )
            .await?;
        let id = p["port"]["id"].as_str().context("port")?;
        let role = if i % 4 == 0 {
            "control-plane"
        } else {
            "worker"
        };
        let mut tags = vec!["cluster=bench/c".to_string(), format!("role={role}")];
        tags.push(format!("sg=g{}", i % b.groups.max(1)));
        client
            .request(
                reqwest::Method::PUT,
                &format!("/v2.0/ports/{id}/tags"),
                Some(&serde_json::json!({"tags": tags})),
            )
            .await?;
    }
    let mut yaml = String::from("kind: OpenStackCluster\nmetadata: {name: c, namespace: bench}\nspec:\n  managedSubnets: [{cidr: 198.18.0.0/16}]\n  managedSecurityGroups:\n    allNodesSecurityGroupRules:\n      - {direction: ingress, protocol: udp, portRangeMin: 4789, portRangeMax: 4789, remoteManagedGroups: [controlplane, worker]}\n    additionalSecurityGroups:\n");
    for g in 0..b.groups {
        yaml.push_str(&format!("      - name: g{g}\n        rules:\n"));
        for r in 0..b.rules {
            yaml.push_str(&format!("          - {{direction: ingress, protocol: tcp, portRangeMin: {p}, portRangeMax: {p}, remoteIPPrefix: 198.18.{g}.0/24}}\n", p = 1000 + r));
        }
    }
    let cluster = palisade_reconcile::spec::parse("bench.yaml", &yaml)?.remove(0);
    let t = Instant::now();
    let (plan, _, plan_calls) =
        palisade_reconcile::apply::reconcile(&client, &cluster, false, true).await?;
    let plan_time = t.elapsed();
    let t = Instant::now();
    let (_, _, apply_calls) =
        palisade_reconcile::apply::reconcile(&client, &cluster, false, false).await?;
    let apply_time = t.elapsed();
    let t = Instant::now();
    let (noop, _, noop_calls) =
        palisade_reconcile::apply::reconcile(&client, &cluster, false, false).await?;
    let noop_time = t.elapsed();
    anyhow::ensure!(
        noop.is_empty(),
        "the second reconcile was not empty:\n{noop}"
    );
    let count = |calls: &[String], p: &str| calls.iter().filter(|c| c.starts_with(p)).count();
    println!(
        "| {} additional groups × {} rules, {} machines | time | API requests |",
        b.groups, b.rules, b.machines
    );
    println!("| --- | ---: | --- |");
    println!(
        "| plan from scratch ({} steps) | {:.0} ms | {} (all reads) |",
        plan.steps.len(),
        plan_time.as_secs_f64() * 1e3,
        plan_calls.len()
    );
    println!(
        "| apply from scratch (plan, apply, read back) | {:.0} ms | {} ({} GET, {} POST, {} PUT, {} DELETE) |",
        apply_time.as_secs_f64() * 1e3,
        apply_calls.len(),
        count(&apply_calls, "GET"),
        count(&apply_calls, "POST"),
        count(&apply_calls, "PUT"),
        count(&apply_calls, "DELETE")
    );
    println!(
        "| no-op reconcile | {:.0} ms | {} |",
        noop_time.as_secs_f64() * 1e3,
        noop_calls.len()
    );
    Ok(())
}

/// Options of `palisade bench etcd`.
#[derive(Args, Debug, Clone)]
pub struct EtcdBench {
    /// Requests in flight at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Groups to create.
    #[arg(long, default_value_t = 200)]
    groups: usize,
    /// Rules per group.
    #[arg(long, default_value_t = 10)]
    rules_per_group: usize,
    /// Watchers for the fan-out (dry-run agents, spread over the replicas).
    #[arg(long, default_value_t = 1000)]
    watchers: usize,
    /// Changes fanned out.
    #[arg(long, default_value_t = 10)]
    changes: usize,
}

pub async fn etcd_bench(b: EtcdBench) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let dir = std::env::temp_dir().join(format!("paletcd{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let key = "bench-etcd-key-0123456789";
    let api = |url: String, token: String| crate::bench::ApiBench {
        url,
        token,
        concurrency: b.concurrency,
        groups: b.groups,
        rules_per_group: b.rules_per_group,
        lists: 50,
        filtered_lists: 500,
    };
    // The embedded store.
    {
        let (server, url, token) = start_server(&exe, "127.0.0.1:0", key, &dir.join("sqlite"))?;
        let _cl = Cleanup {
            ns: String::new(),
            children: vec![server],
            dir: dir.join("sqlite"),
        };
        println!("\n### embedded store (SQLite), one server\n");
        crate::bench::print_phases(&crate::bench::api(api(url, token)).await?);
    }
    let etcd = palisade_store::testing::EtcdCluster::start(3)?;
    let endpoints = etcd.endpoints().join(",");
    let mut servers = Vec::new();
    let mut urls = Vec::new();
    let mut pids = Vec::new();
    let mut token = String::new();
    for i in 0..3 {
        let (s, u, t) = start_server_with(
            &exe,
            "127.0.0.1:0",
            key,
            &dir.join(format!("r{i}")),
            &["--store", "etcd", "--etcd-endpoints", &endpoints],
        )?;
        pids.push(s.id());
        servers.push(s);
        urls.push(u);
        token = t;
    }
    let _cl = Cleanup {
        ns: String::new(),
        children: servers,
        dir: dir.clone(),
    };
    println!("\n### etcd (3 members), one replica\n");
    crate::bench::print_phases(&crate::bench::api(api(urls[0].clone(), token.clone())).await?);
    println!("\n### etcd (3 members), three replicas (requests spread round-robin)\n");
    crate::bench::print_phases(&crate::bench::api(api(urls.join(","), token.clone())).await?);
    println!(
        "\n### one change fanned out to {} watchers over three replicas on etcd\n",
        b.watchers
    );
    fanout_on(&urls, &token, key, &pids, b.watchers, b.changes).await?;
    drop(etcd);
    Ok(())
}
