//! `palisade bench agent`: latency from the API's 2xx to the rule in force in the kernel.
//! A server in this namespace, an agent in a fresh namespace reaching it over a veth
//! (198.19.254.8/30), and `nft monitor` in that namespace reporting each commit as the
//! kernel makes it. Needs root.

use anyhow::Context as _;
use clap::Args;
use std::io::{BufRead, BufReader};
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
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
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
    let mut server = Command::new(&exe)
        .args([
            "server",
            "--listen",
            "198.19.254.9:0",
            "--hmac-view-key",
            key,
            "--data-dir",
        ])
        .arg(dir.join("data"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut first = String::new();
    let mut lines = BufReader::new(server.stdout.take().context("server stdout")?);
    lines.read_line(&mut first)?;
    // Keep reading: the server must never write into a closed pipe.
    std::thread::spawn(move || for _ in lines.lines() {});
    cl.children.push(server);
    let url = first
        .split_whitespace()
        .find_map(|w| w.strip_suffix("/v2.0"))
        .context("server URL")?
        .to_string();
    let token = std::fs::read_to_string(dir.join("data/admin-token"))?
        .trim()
        .to_string();
    let http = reqwest::Client::new();
    let post = |path: &str, body: serde_json::Value| {
        http.post(format!("{url}{path}"))
            .header("x-auth-token", &token)
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
    let r = post(
        "/v2.0/ports",
        serde_json::json!({"port": {"network_id": net["network"]["id"], "security_groups": [sg_id],
            "fixed_ips": [{"ip_address": "198.18.2.1"}], "binding:host_id": "bench-hv",
            "binding:profile": {"interface_name": "tapbench"}}}),
    )
    .await?;
    anyhow::ensure!(r.status().is_success(), "port: {}", r.text().await?);
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
