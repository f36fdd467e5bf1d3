//! `palisade bench api`: the API benchmark of the first issue, against any
//! Neutron-compatible URL. Phases: create groups, create rules in each, list all rules,
//! list rules filtered by group, delete everything. Prints requests/s and p50/p99 per phase.

use anyhow::bail;
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Subcommand, Debug)]
pub enum BenchCmd {
    /// Benchmark the security-group API.
    Api(ApiBench),
    /// Benchmark Keystone logins and token validation.
    Auth(AuthBench),
    /// Benchmark the dataplane compiler on a synthetic host view.
    Compile(CompileBench),
    /// Per-packet cost: new TCP connections/s through the ruleset (root; namespaces).
    Packet(PacketBench),
    /// Latency from the API's 2xx to the rule in force in the kernel (root; namespaces).
    Agent(crate::bench_agent::AgentBench),
    /// One change fanned out to many agents watching one server (dry-run agents in this
    /// process).
    Fanout(crate::bench_agent::FanoutBench),
    /// The API phases on the embedded store, on etcd with one replica and with three.
    Etcd(crate::bench_agent::EtcdBench),
    /// Plan and apply of a large cluster spec with `palisade reconcile`'s engine.
    Reconcile(crate::bench_agent::ReconcileBench),
    /// (internal) accept-and-close server for `bench packet`.
    #[command(hide = true)]
    CrrServer {
        /// Port.
        #[arg(long)]
        port: u16,
        /// Seconds to live.
        #[arg(long)]
        seconds: u64,
    },
    /// (internal) connect-and-close loop for `bench packet`; prints connects per second.
    #[command(hide = true)]
    CrrClient {
        /// Server address.
        #[arg(long)]
        addr: std::net::IpAddr,
        /// Port.
        #[arg(long)]
        port: u16,
        /// Seconds to run.
        #[arg(long)]
        seconds: f64,
    },
}

#[derive(Args, Debug, Clone)]
pub struct PacketBench {
    /// Rules in the server port's group (none match the probe but the last).
    #[arg(long, default_value_t = 10_000)]
    rules: usize,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Rounds (configurations are interleaved round-robin).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

#[derive(Args, Debug, Clone)]
pub struct CompileBench {
    /// Ports on the host.
    #[arg(long, default_value_t = 10_000)]
    ports: usize,
    /// Security groups.
    #[arg(long, default_value_t = 1_000)]
    groups: usize,
    /// Rules in all.
    #[arg(long, default_value_t = 100_000)]
    rules: usize,
    /// Members of the largest remote groups.
    #[arg(long, default_value_t = 1_000)]
    members: usize,
    /// Also load the result with `nft -f` in a fresh network namespace (needs root).
    #[arg(long)]
    nft: bool,
}

#[derive(Args, Debug, Clone)]
pub struct AuthBench {
    /// Server URL.
    #[arg(long, env = "PALISADE_URL", default_value = "http://127.0.0.1:9696")]
    url: String,
    /// User to log in as.
    #[arg(long, default_value = "admin")]
    user: String,
    /// Its password (e.g. OS_PASSWORD from admin-openrc).
    #[arg(long, env = "OS_PASSWORD", hide_env_values = true)]
    password: String,
    /// Project to scope to.
    #[arg(long, default_value = "admin")]
    project: String,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Logins.
    #[arg(long, default_value_t = 100)]
    logins: usize,
    /// Authenticated requests (GET /v2.0/palisade/tokens/self) and unauthenticated ones (GET /).
    #[arg(long, default_value_t = 5000)]
    requests: usize,
}

#[derive(Args, Debug, Clone)]
pub struct ApiBench {
    /// Server URL; several, comma-separated, spread the requests over replicas.
    #[arg(long, env = "PALISADE_URL", default_value = "http://127.0.0.1:9696")]
    pub(crate) url: String,
    /// Token (admin, so the benchmark can lift its project's quotas).
    #[arg(long, env = "PALISADE_TOKEN", hide_env_values = true)]
    pub(crate) token: String,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 8)]
    pub(crate) concurrency: usize,
    /// Groups to create.
    #[arg(long, default_value_t = 200)]
    pub(crate) groups: usize,
    /// Rules to create in each group.
    #[arg(long, default_value_t = 10)]
    pub(crate) rules_per_group: usize,
    /// Full rule lists.
    #[arg(long, default_value_t = 50)]
    pub(crate) lists: usize,
    /// Rule lists filtered by security_group_id.
    #[arg(long, default_value_t = 500)]
    pub(crate) filtered_lists: usize,
}

/// Figures of one phase.
pub(crate) struct PhaseResult {
    name: &'static str,
    requests: usize,
    errors: usize,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
}

struct Http {
    client: reqwest::Client,
    /// Servers, used in turn.
    urls: Vec<String>,
    next: std::sync::atomic::AtomicUsize,
    token: String,
}

impl Http {
    fn pick(&self) -> &str {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        &self.urls[n % self.urls.len()]
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(u16, bytes::Bytes)> {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.pick(), path))
            .header("X-Auth-Token", &self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        Ok((status, resp.bytes().await?))
    }
}

/// Runs `n` requests with `concurrency` workers; `make(i)` performs request i and says
/// whether it succeeded.
async fn phase<F, Fut>(name: &'static str, n: usize, concurrency: usize, make: F) -> PhaseResult
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let make = Arc::new(make);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency.max(1) {
        let make = make.clone();
        let next = next.clone();
        workers.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let t = Instant::now();
                if !make(i).await {
                    errors += 1;
                }
                lat.push(t.elapsed());
            }
            (lat, errors)
        }));
    }
    let mut all = Vec::with_capacity(n);
    let mut errors = 0;
    for w in workers {
        if let Ok((lat, e)) = w.await {
            all.extend(lat);
            errors += e;
        }
    }
    let elapsed = start.elapsed();
    all.sort();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or_default()
    };
    PhaseResult {
        name,
        requests: all.len(),
        errors,
        elapsed,
        p50: pct(0.50),
        p99: pct(0.99),
    }
}

pub async fn run(cmd: BenchCmd) -> anyhow::Result<()> {
    let results = match cmd {
        BenchCmd::Api(a) => api(a).await?,
        BenchCmd::Auth(a) => auth(a).await?,
        BenchCmd::Compile(c) => return compile_bench(c),
        BenchCmd::Packet(p) => return packet_bench(p),
        BenchCmd::Agent(a) => return crate::bench_agent::run(a).await,
        BenchCmd::Fanout(f) => return crate::bench_agent::fanout(f).await,
        BenchCmd::Reconcile(r) => return crate::bench_agent::reconcile_bench(r).await,
        BenchCmd::Etcd(e) => return crate::bench_agent::etcd_bench(e).await,
        BenchCmd::CrrServer { port, seconds } => return crr_server(port, seconds),
        BenchCmd::CrrClient {
            addr,
            port,
            seconds,
        } => return crr_client(addr, port, seconds),
    };
    print_phases(&results);
    if results.iter().any(|r| r.errors > 0) {
        bail!("some requests failed");
    }
    Ok(())
}

/// The phases as a Markdown table.
pub(crate) fn print_phases(results: &[PhaseResult]) {
    println!("| phase | requests | errors | seconds | requests/s | p50 ms | p99 ms |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for r in results {
        println!(
            "| {} | {} | {} | {:.2} | {:.0} | {:.2} | {:.2} |",
            r.name,
            r.requests,
            r.errors,
            r.elapsed.as_secs_f64(),
            r.requests as f64 / r.elapsed.as_secs_f64().max(1e-9),
            r.p50.as_secs_f64() * 1000.0,
            r.p99.as_secs_f64() * 1000.0
        );
    }
}

pub(crate) async fn api(a: ApiBench) -> anyhow::Result<Vec<PhaseResult>> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(a.concurrency * 2)
        .build()?;
    let http = Arc::new(Http {
        client,
        urls: a
            .url
            .split(',')
            .map(|u| u.trim().trim_end_matches('/').to_string())
            .collect(),
        next: Default::default(),
        token: a.token.clone(),
    });
    // Lift the quotas of the token's project (Palisade says which project a token is for;
    // on other servers the benchmark runs within whatever quota the project has).
    let (status, body) = http
        .call(Method::GET, "/v2.0/palisade/tokens/self", None)
        .await?;
    let project = (status == 200)
        .then(|| serde_json::from_slice::<Value>(&body).ok())
        .flatten()
        .and_then(|v| v["token"]["project_id"].as_str().map(String::from));
    match project {
        Some(project) => {
            let (status, body) = http
                .call(
                    Method::PUT,
                    &format!("/v2.0/quotas/{project}"),
                    Some(json!({"quota": {"security_group": -1, "security_group_rule": -1}})),
                )
                .await?;
            if status != 200 {
                eprintln!(
                    "warning: could not lift quotas ({status}): {}",
                    String::from_utf8_lossy(&body)
                );
            }
        }
        None => eprintln!(
            "warning: cannot tell the token's project ({status}); quotas left as they are"
        ),
    }
    let ids: Arc<std::sync::Mutex<Vec<Option<String>>>> =
        Arc::new(std::sync::Mutex::new(vec![None; a.groups]));
    let mut out = Vec::new();

    let (h, ids2) = (http.clone(), ids.clone());
    out.push(
        phase("create groups", a.groups, a.concurrency, move |i| {
            let (h, ids) = (h.clone(), ids2.clone());
            async move {
                let body = json!({"security_group": {"name": format!("bench-{i}"), "description": "palisade bench"}});
                match h.call(Method::POST, "/v2.0/security-groups", Some(body)).await {
                    Ok((201, b)) => {
                        let id = serde_json::from_slice::<Value>(&b).ok().and_then(|v| v["security_group"]["id"].as_str().map(String::from));
                        if let Ok(mut ids) = ids.lock() {
                            ids[i] = id;
                        }
                        true
                    }
                    _ => false,
                }
            }
        })
        .await,
    );
    let groups: Arc<Vec<String>> = Arc::new(
        ids.lock()
            .map(|v| v.iter().flatten().cloned().collect())
            .unwrap_or_default(),
    );
    if groups.is_empty() {
        bail!("no group was created");
    }
    let ng = groups.len();
    // With several replicas, let every replica's index see the groups first (writes are
    // read-your-writes on the replica that made them, and milliseconds behind elsewhere).
    if http.urls.len() > 1 {
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Task k goes to group k % ng, so concurrent requests hit different groups.
    let (h, g) = (http.clone(), groups.clone());
    out.push(
        phase("create rules", ng * a.rules_per_group, a.concurrency, move |k| {
            let (h, g) = (h.clone(), g.clone());
            async move {
                let (gi, j) = (k % ng, k / ng);
                let port = 1000 + j as u32;
                let body = json!({"security_group_rule": {"security_group_id": g[gi], "direction": "ingress", "protocol": "tcp", "port_range_min": port, "port_range_max": port, "remote_ip_prefix": "198.18.0.0/15"}});
                matches!(h.call(Method::POST, "/v2.0/security-group-rules", Some(body)).await, Ok((201, _)))
            }
        })
        .await,
    );
    let h = http.clone();
    out.push(
        phase("list all rules", a.lists, a.concurrency, move |_| {
            let h = h.clone();
            async move {
                matches!(
                    h.call(Method::GET, "/v2.0/security-group-rules", None)
                        .await,
                    Ok((200, _))
                )
            }
        })
        .await,
    );
    let (h, g) = (http.clone(), groups.clone());
    out.push(
        phase(
            "list rules by group",
            a.filtered_lists,
            a.concurrency,
            move |i| {
                let (h, g) = (h.clone(), g.clone());
                async move {
                    let path =
                        format!("/v2.0/security-group-rules?security_group_id={}", g[i % ng]);
                    matches!(h.call(Method::GET, &path, None).await, Ok((200, _)))
                }
            },
        )
        .await,
    );
    let (h, g) = (http.clone(), groups.clone());
    out.push(
        phase("delete groups", ng, a.concurrency, move |i| {
            let (h, g) = (h.clone(), g.clone());
            async move {
                matches!(
                    h.call(
                        Method::DELETE,
                        &format!("/v2.0/security-groups/{}", g[i]),
                        None
                    )
                    .await,
                    Ok((204, _))
                )
            }
        })
        .await,
    );
    Ok(out)
}

async fn auth(a: AuthBench) -> anyhow::Result<Vec<PhaseResult>> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(a.concurrency * 2)
        .build()?;
    let url = a.url.trim_end_matches('/').to_string();
    let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": a.user, "domain": {"name": "Default"}, "password": a.password}}},
                               "scope": {"project": {"name": a.project, "domain": {"name": "Default"}}}}});
    let token: Arc<std::sync::Mutex<Option<String>>> = Arc::new(std::sync::Mutex::new(None));
    let mut out = Vec::new();
    let (c, u, b, t) = (client.clone(), url.clone(), body.clone(), token.clone());
    out.push(
        phase("password logins", a.logins, a.concurrency, move |_| {
            let (c, u, b, t) = (c.clone(), u.clone(), b.clone(), t.clone());
            async move {
                match c
                    .post(format!("{u}/identity/v3/auth/tokens?nocatalog"))
                    .json(&b)
                    .send()
                    .await
                {
                    Ok(r) if r.status().as_u16() == 201 => {
                        if let (Some(tok), Ok(mut slot)) = (
                            r.headers()
                                .get("x-subject-token")
                                .and_then(|v| v.to_str().ok()),
                            t.lock(),
                        ) {
                            *slot = Some(tok.to_string());
                        }
                        true
                    }
                    _ => false,
                }
            }
        })
        .await,
    );
    let tok = token
        .lock()
        .ok()
        .and_then(|t| t.clone())
        .ok_or_else(|| anyhow::anyhow!("no login succeeded"))?;
    let (c, u, t) = (client.clone(), url.clone(), tok.clone());
    out.push(
        phase("authenticated requests", a.requests, a.concurrency, move |_| {
            let (c, u, t) = (c.clone(), u.clone(), t.clone());
            async move { matches!(c.get(format!("{u}/v2.0/palisade/tokens/self")).header("X-Auth-Token", t).send().await, Ok(r) if r.status().as_u16() == 200) }
        })
        .await,
    );
    let (c, u) = (client.clone(), url.clone());
    out.push(
        phase("unauthenticated requests", a.requests, a.concurrency, move |_| {
            let (c, u) = (c.clone(), u.clone());
            async move { matches!(c.get(format!("{u}/")).send().await, Ok(r) if r.status().as_u16() == 200) }
        })
        .await,
    );
    // The validation itself, in process: hash the token and look it up among 100,000.
    let mut idx = palisade_server::index::Index::default();
    for i in 0..100_000u32 {
        let info = palisade_server::index::TokenInfo {
            project_id: format!("p{i}"),
            roles: vec!["member".into()],
            user: "u".into(),
            expires_at: Some(i64::MAX),
            ..Default::default()
        };
        idx.tokens.insert(
            palisade_server::http::token_hash(&format!("pal-{i:064}")),
            info,
        );
    }
    let n = 200_000;
    let start = Instant::now();
    let mut hits = 0;
    for i in 0..n {
        if palisade_server::service::identity::valid_token(
            &idx,
            &format!("pal-{:064}", i % 100_000),
        )
        .is_some()
        {
            hits += 1;
        }
    }
    let per = start.elapsed() / n;
    eprintln!("token validation in process: {:.2} µs per request ({hits} of {n} valid, 100,000 tokens in the index)", per.as_secs_f64() * 1e6);
    out.push(PhaseResult {
        name: "validation (in process)",
        requests: n as usize,
        errors: (n - hits) as usize,
        elapsed: per * n,
        p50: per,
        p99: per,
    });
    Ok(out)
}

/// Synthesises a host view, then times compile + render (one core) and, with `--nft`, the
/// kernel's load of the result.
fn compile_bench(c: CompileBench) -> anyhow::Result<()> {
    let mut seed = 0x2026u64;
    let mut next = move |n: usize| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((seed >> 33) % n.max(1) as u64) as usize
    };
    let per_group = c.rules / c.groups.max(1);
    let mut groups = Vec::with_capacity(c.groups);
    for g in 0..c.groups {
        let mut rules = Vec::with_capacity(per_group);
        for r in 0..per_group {
            let port = 1 + next(60000) as u32;
            let mut rule = json!({"id": format!("r{g}-{r}"), "direction": if next(3) == 0 { "egress" } else { "ingress" },
                "ethertype": "IPv4", "protocol": if next(4) == 0 { "udp" } else { "tcp" }, "port_range_min": port, "port_range_max": port});
            match next(10) {
                0..=3 => {
                    rule["remote_ip_prefix"] =
                        json!(format!("198.{}.{}.0/24", 18 + next(2), next(256)))
                }
                4..=6 => rule["remote_group_id"] = json!(format!("g{}", next(c.groups))),
                7 => rule["remote_address_group_id"] = json!("ag0"),
                _ => {}
            }
            rules.push(rule);
        }
        groups.push(json!({"id": format!("g{g}"), "security_group_rules": rules}));
    }
    let mut ports = Vec::with_capacity(c.ports);
    for p in 0..c.ports {
        // The first `members` ports share g0..g9: remote groups of up to `members` members.
        let mut sgs = vec![if p < c.members {
            format!("g{}", p % 10)
        } else {
            format!("g{}", next(c.groups))
        }];
        if next(2) == 0 {
            sgs.push(format!("g{}", next(c.groups)));
            sgs.dedup();
        }
        ports.push(json!({"id": format!("{p:08x}-0000-0000-0000-000000000000"), "mac_address": format!("fa:16:3e:{:02x}:{:02x}:{:02x}", p >> 16 & 0xff, p >> 8 & 0xff, p & 0xff),
            "fixed_ips": [{"ip_address": format!("10.{}.{}.{}", p >> 16 & 0xff, p >> 8 & 0xff, p & 0xff)}], "security_groups": sgs, "binding:host_id": "hv"}));
    }
    let ag = json!([{"id": "ag0", "addresses": (0..50).map(|i| format!("198.19.{i}.0/24")).collect::<Vec<_>>()}]);
    let rules_bytes: usize = groups
        .iter()
        .map(|g| {
            serde_json::to_vec(&g["security_group_rules"])
                .map(|v| v.len())
                .unwrap_or(0)
        })
        .sum();
    let text = json!({"security_groups": groups, "ports": ports, "address_groups": ag}).to_string();
    let t = Instant::now();
    let state = palisade_dataplane::State::parse(&text)?;
    let parse = t.elapsed();
    let t = Instant::now();
    let rs = palisade_dataplane::compile(&state, "hv")?;
    let compiled = t.elapsed();
    let t = Instant::now();
    let out = palisade_dataplane::render(&rs);
    let rendered = t.elapsed();
    println!(
        "| host view | {} ports, {} groups, {} rules, remote groups up to {} members |",
        c.ports,
        c.groups,
        per_group * c.groups,
        c.members
    );
    println!(
        "| parse state file ({:.1} MB JSON) | {:.0} ms |",
        text.len() as f64 / 1e6,
        parse.as_secs_f64() * 1e3
    );
    println!("| compile (IR) | {:.0} ms |", compiled.as_secs_f64() * 1e3);
    println!(
        "| render (nft text) | {:.0} ms |",
        rendered.as_secs_f64() * 1e3
    );
    println!(
        "| compile + render | **{:.0} ms** |",
        (compiled + rendered).as_secs_f64() * 1e3
    );
    println!(
        "| output size | {:.1} MB = {:.2}× the input rules' {:.1} MB of JSON |",
        out.len() as f64 / 1e6,
        out.len() as f64 / rules_bytes.max(1) as f64,
        rules_bytes as f64 / 1e6
    );
    // Membership change: a port on another host joins g0, which rules of many groups name.
    // The agent's path: the host view takes the port event and computes the delta from the
    // pieces it touched. Five joins, each timed from the event to the finished script.
    let mut view = palisade_dataplane::HostView::new(&state, "hv")?;
    let joiner = |k: usize| -> anyhow::Result<palisade_dataplane::state::Port> {
        let mut p = state.ports[0].clone();
        p.id = format!("ffffffff-0000-0000-0000-{k:012}");
        p.host = "elsewhere".into();
        p.security_groups = vec!["g0".into()];
        p.fixed_ips = vec![palisade_dataplane::state::FixedIp {
            ip_address: format!("10.255.255.{}", 250 - k).parse()?,
        }];
        Ok(p)
    };
    let mut times = Vec::new();
    let mut d = palisade_dataplane::Delta {
        script: String::new(),
        elements_only: true,
    };
    for k in 0..5 {
        let p = joiner(k)?;
        let t = Instant::now();
        view.upsert_port(p)?;
        let dk = view.take_delta();
        times.push(t.elapsed());
        anyhow::ensure!(dk.elements_only, "a membership change touched chains");
        if k == 0 {
            d = dk;
        }
    }
    times.sort();
    println!(
        "| delta for one port joining g0 (host view: event → script) | median {:.3} ms, max {:.3} ms over 5 joins; {} (`{}`) |",
        times[2].as_secs_f64() * 1e3,
        times[4].as_secs_f64() * 1e3,
        if d.elements_only {
            "element operations only"
        } else {
            "touches chains"
        },
        d.script.trim()
    );
    // For comparison: the same change found by comparing two whole compiled rulesets.
    let mut state2 = state.clone();
    state2.ports.push(joiner(0)?);
    let rs2 = palisade_dataplane::compile(&state2, "hv")?;
    let t = Instant::now();
    let whole = palisade_dataplane::delta(&rs, &rs2);
    println!(
        "| the same delta by comparing two whole rulesets | {:.1} ms (same script: {}) |",
        t.elapsed().as_secs_f64() * 1e3,
        whole == d
    );
    if c.nft {
        let ns = format!("palbench{}", std::process::id());
        let path = std::env::temp_dir().join(format!("{ns}.nft"));
        std::fs::write(&path, &out)?;
        let ok = std::process::Command::new("ip")
            .args(["netns", "add", &ns])
            .status()?
            .success();
        anyhow::ensure!(ok, "cannot create network namespace {ns} (root needed)");
        let t = Instant::now();
        let res = std::process::Command::new("ip")
            .args(["netns", "exec", &ns, "nft", "-f"])
            .arg(&path)
            .output();
        let load = t.elapsed();
        let dpath = std::env::temp_dir().join(format!("{ns}-delta.nft"));
        std::fs::write(&dpath, &d.script)?;
        let t = Instant::now();
        let dres = std::process::Command::new("ip")
            .args(["netns", "exec", &ns, "nft", "-f"])
            .arg(&dpath)
            .output();
        let delta_load = t.elapsed();
        let _ = std::fs::remove_file(&dpath);
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &ns])
            .status();
        let dres = dres?;
        anyhow::ensure!(
            dres.status.success(),
            "delta failed: {}",
            String::from_utf8_lossy(&dres.stderr)
        );
        println!(
            "| kernel applies the delta (`nft -f`, spawned) | {:.1} ms |",
            delta_load.as_secs_f64() * 1e3
        );
        let _ = std::fs::remove_file(&path);
        let res = res?;
        anyhow::ensure!(
            res.status.success(),
            "nft -f failed: {}",
            String::from_utf8_lossy(&res.stderr)
        );
        println!(
            "| kernel load (`nft -f` in a fresh namespace) | {:.0} ms |",
            load.as_secs_f64() * 1e3
        );
    }
    Ok(())
}

fn crr_server(port: u16, seconds: u64) -> anyhow::Result<()> {
    let l = std::net::TcpListener::bind(("0.0.0.0", port))?;
    l.set_nonblocking(true)?;
    let end = Instant::now() + Duration::from_secs(seconds);
    println!("ready");
    while Instant::now() < end {
        match l.accept() {
            Ok((s, _)) => drop(s),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_micros(50))
            }
            Err(_) => {}
        }
    }
    Ok(())
}

fn crr_client(addr: std::net::IpAddr, port: u16, seconds: f64) -> anyhow::Result<()> {
    // Only test addresses: this loop never leaves the benchmark's namespaces.
    let ok = match addr {
        std::net::IpAddr::V4(a) => a.octets()[0] == 198 && (a.octets()[1] & 0xfe) == 18,
        std::net::IpAddr::V6(a) => a.segments()[0] & 0xff00 == 0xfd00,
    };
    anyhow::ensure!(ok, "{addr} is outside 198.18.0.0/15 and fd00::/8");
    let end = Instant::now() + Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let mut n = 0u64;
    while Instant::now() < end && n < 10_000_000 {
        let mut s = std::net::TcpStream::connect_timeout(
            &std::net::SocketAddr::new(addr, port),
            Duration::from_millis(500),
        )?;
        // Wait for the server's close, so TIME_WAIT stays on its side and the client's
        // ephemeral ports do not run out.
        s.set_read_timeout(Some(Duration::from_millis(500)))?;
        let mut buf = [0u8; 1];
        let _ = std::io::Read::read(&mut s, &mut buf);
        drop(s);
        n += 1;
    }
    println!("{:.0}", n as f64 / start.elapsed().as_secs_f64());
    Ok(())
}

/// New connections/s from a client namespace to a server port through (a) no ruleset,
/// (b) Palisade's ruleset with `rules` rules in the port's group, (c) the same rules as a
/// linear chain.
fn packet_bench(p: PacketBench) -> anyhow::Result<()> {
    use std::process::{Command, Stdio};
    let me = std::env::current_exe()?;
    let tag = format!("palpkt{}", std::process::id() % 100000);
    let (hv, srv, cli) = (
        format!("{tag}-hv"),
        format!("{tag}-srv"),
        format!("{tag}-cli"),
    );
    let sh = |args: &[&str]| -> anyhow::Result<()> {
        let out = Command::new(args[0]).args(&args[1..]).output()?;
        anyhow::ensure!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    };
    let cleanup = || {
        for n in [&hv, &srv, &cli] {
            let _ = Command::new("ip").args(["netns", "del", n]).output();
        }
    };
    // `ip netns exec NS <words of cmd>`: one line per step of the set-up.
    let in_ns = |ns: &str, cmd: &str| -> anyhow::Result<()> {
        let mut args = vec!["ip", "netns", "exec", ns];
        args.extend(cmd.split_whitespace());
        sh(&args)
    };
    let result = (|| -> anyhow::Result<()> {
        for n in [&hv, &srv, &cli] {
            sh(&["ip", "netns", "add", n])?;
            in_ns(n, "ip link set lo up")?;
        }
        in_ns(&hv, "sysctl -qw net.ipv4.ip_forward=1")?;
        // Interfaces named as Neutron names them: "tap" + the first 11 characters of the port id.
        for (ns, tap, mac, addr) in [
            (&srv, "tapsrv-0000000", "fa:16:3e:00:09:01", "198.18.7.1"),
            (&cli, "tapcli-0000000", "fa:16:3e:00:09:02", "198.18.7.2"),
        ] {
            sh(&[
                "ip", "link", "add", tap, "netns", &hv, "type", "veth", "peer", "name", "eth0",
                "netns", ns,
            ])?;
            in_ns(ns, &format!("ip link set eth0 address {mac}"))?;
            in_ns(ns, "ip link set eth0 up")?;
            in_ns(ns, &format!("ip addr add {addr}/32 dev eth0"))?;
            in_ns(ns, "ip route add 198.18.0.1 dev eth0")?;
            in_ns(ns, "ip route add default via 198.18.0.1")?;
            in_ns(&hv, &format!("ip link set {tap} up"))?;
            in_ns(&hv, &format!("ip addr add 198.18.0.1/32 dev {tap}"))?;
            in_ns(&hv, &format!("ip route add {addr}/32 dev {tap}"))?;
            // Best effort: short close/time-wait timeouts keep conntrack small.
            in_ns(ns, "sysctl -qw net.netfilter.nf_conntrack_tcp_timeout_close=1 net.netfilter.nf_conntrack_tcp_timeout_time_wait=1").ok();
        }
        // The server port's group: `rules` rules that never match the probe, then one that does.
        let mut rules: Vec<Value> = (0..p.rules)
            .map(|i| json!({"id": format!("r{i}"), "direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
                "port_range_min": 10000 + (i % 50000) as u32, "port_range_max": 10000 + (i % 50000) as u32,
                "remote_ip_prefix": format!("198.19.{}.{}/32", (i / 256) % 256, i % 256)}))
            .collect();
        rules.push(json!({"id": "probe", "direction": "ingress", "ethertype": "IPv4", "protocol": "tcp", "port_range_min": 5001, "port_range_max": 5001}));
        let state = json!({"security_groups": [
                {"id": "srv", "security_group_rules": rules},
                {"id": "cli", "security_group_rules": [{"id": "eg", "direction": "egress", "ethertype": "IPv4"}]}],
            "ports": [
                {"id": "srv-000000000", "mac_address": "fa:16:3e:00:09:01", "fixed_ips": [{"ip_address": "198.18.7.1"}], "security_groups": ["srv"], "binding:host_id": "hv"},
                {"id": "cli-000000000", "mac_address": "fa:16:3e:00:09:02", "fixed_ips": [{"ip_address": "198.18.7.2"}], "security_groups": ["cli"], "binding:host_id": "hv"}]});
        let rs = palisade_dataplane::compile(
            &palisade_dataplane::State::parse(&state.to_string())?,
            "hv",
        )?;
        anyhow::ensure!(
            rs.ports
                .values()
                .all(|p| p.ifname == "tapsrv-0000000" || p.ifname == "tapcli-0000000"),
            "the benchmark's interfaces must be the ports' interfaces"
        );
        let merged = palisade_dataplane::render(&rs);
        // The same ruleset with the group's rules as a linear chain, one rule each.
        let mut linear = merged.clone();
        if let Some(rules) = rs.chains.get(&(
            "srv".to_string(),
            palisade_dataplane::state::Direction::Ingress,
        )) {
            let lines: Vec<String> = rules
                .iter()
                .map(|r| {
                    format!(
                        "\t\t{}",
                        palisade_dataplane::render::rule_text(
                            r,
                            palisade_dataplane::state::Direction::Ingress
                        )
                    )
                })
                .collect();
            let start = linear
                .find("\tchain sg-srv-in {\n")
                .ok_or_else(|| anyhow::anyhow!("no sg-srv-in chain"))?;
            let body_start = start + "\tchain sg-srv-in {\n".len();
            let end = body_start
                + linear[body_start..]
                    .find("\t}\n")
                    .ok_or_else(|| anyhow::anyhow!("unterminated chain"))?;
            linear.replace_range(body_start..end, &(lines.join("\n") + "\n"));
        }
        let secs = (p.seconds * p.rounds as f64 * 3.0 + 30.0) as u64;
        let mut server = Command::new("ip")
            .args(["netns", "exec", &srv])
            .arg(&me)
            .args([
                "bench",
                "crr-server",
                "--port",
                "5001",
                "--seconds",
                &secs.to_string(),
            ])
            .stdout(Stdio::piped())
            .spawn()?;
        let mut line = String::new();
        use std::io::BufRead;
        std::io::BufReader::new(
            server
                .stdout
                .take()
                .ok_or_else(|| anyhow::anyhow!("no stdout"))?,
        )
        .read_line(&mut line)?;
        let configs: [(&str, Option<&String>); 3] = [
            ("no ruleset", None),
            ("palisade (merged sets)", Some(&merged)),
            ("same rules, linear chain", Some(&linear)),
        ];
        let mut rates: Vec<Vec<f64>> = vec![Vec::new(); configs.len()];
        for _ in 0..p.rounds {
            for (i, (_, text)) in configs.iter().enumerate() {
                let path = std::env::temp_dir().join(format!("{tag}.nft"));
                match text {
                    Some(t) => {
                        std::fs::write(&path, t)?;
                        sh(&[
                            "ip",
                            "netns",
                            "exec",
                            &hv,
                            "nft",
                            "-f",
                            &path.display().to_string(),
                        ])?;
                    }
                    None => {
                        let _ = Command::new("ip")
                            .args([
                                "netns", "exec", &hv, "nft", "delete", "table", "inet", "palisade",
                            ])
                            .output();
                    }
                }
                let out = Command::new("ip")
                    .args(["netns", "exec", &cli])
                    .arg(&me)
                    .args([
                        "bench",
                        "crr-client",
                        "--addr",
                        "198.18.7.1",
                        "--port",
                        "5001",
                        "--seconds",
                        &p.seconds.to_string(),
                    ])
                    .output()?;
                anyhow::ensure!(
                    out.status.success(),
                    "client: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                rates[i].push(String::from_utf8_lossy(&out.stdout).trim().parse::<f64>()?);
                let _ = std::fs::remove_file(&path);
            }
        }
        let _ = server.kill();
        let _ = server.wait();
        let median = |v: &mut Vec<f64>| {
            v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
            v[v.len() / 2]
        };
        let base = median(&mut rates[0].clone());
        println!("| configuration ({} rules in the port's group) | new connections/s (median of {}) | vs no ruleset |", p.rules, p.rounds);
        println!("| --- | ---: | ---: |");
        for (i, (name, _)) in configs.iter().enumerate() {
            let m = median(&mut rates[i]);
            println!("| {name} | {m:.0} | {:+.1}% |", (m / base - 1.0) * 100.0);
        }
        Ok(())
    })();
    cleanup();
    result
}
