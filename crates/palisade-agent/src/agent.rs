//! The agent's loop and its one rule-file controller: controllers' data (security groups
//! from a source, the firewall's base rules, policies and services) → one ruleset, applied
//! as the smallest transaction, written to the rule file, checked for drift.

use crate::config::{AgentConfig, SourceKind};
use crate::metrics::AgentMetrics;
use crate::nft::{ruleset_genid, Applier};
use crate::source::{follow, Signed, Update};
use palisade_dataplane::firewall::{render_firewall, FirewallDoc, FirewallSpec};
use palisade_dataplane::state::{AddressGroup, Port, Rule, SecurityGroup};
use palisade_dataplane::{render, HostView, State};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// How the agent runs.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Apply once (after the first snapshot when a server is the source) and exit.
    pub once: bool,
    /// Print the ruleset and each delta instead of touching the kernel or the rule file.
    pub dry_run: bool,
    /// Spawn `nft` for every apply instead of using libnftables in-process.
    pub spawn_nft: bool,
    /// In a dry run, hand each script here (with the time it was ready) instead of printing
    /// it: for benchmarks running many agents in one process.
    pub observer: Option<mpsc::UnboundedSender<(Instant, String)>>,
}

/// Failures that stop the agent.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The static state file cannot be used.
    #[error("sources.static.securityGroups: {0}")]
    StaticState(String),
    /// Something else at start-up.
    #[error("{0}")]
    Start(String),
}

/// What the agent reports (`/status`, `/metrics`, the server's `/v2.0/palisade/agents`).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Status {
    /// agent name
    pub name: String,
    /// the last server revision in force
    pub applied_revision: i64,
    /// SHA-256 of the rule file's content in force
    pub ruleset_hash: String,
    /// rules in the security-group chains
    pub rules: i64,
    /// named sets
    pub sets: i64,
    /// set elements
    pub elements: i64,
    /// the last error (cleared by the next success)
    pub last_error: Option<String>,
    /// seconds the oldest change not yet in force has waited
    pub lag_seconds: f64,
    /// transactions applied
    pub applies: i64,
    /// of which deltas
    pub delta_applies: i64,
    /// tables restored after somebody else changed them
    pub drift_repairs: i64,
    /// failed transactions
    pub apply_failures: i64,
    /// `libnftables` or `nft -f (spawned)`
    pub applier: String,
    /// seconds the last apply took
    pub last_apply_seconds: f64,
    /// unix time of the last successful sync with the source
    pub last_sync_unix: i64,
}

/// Everything the rule-file controller holds: its own model of what is in force.
struct RuleFile {
    cfg: AgentConfig,
    opts: Options,
    applier: Applier,
    view: Option<HostView>,
    rule_group: HashMap<String, String>,
    fw: Option<FirewallSpec>,
    fw_doc: Option<FirewallDoc>,
    fw_applied: Option<String>,
    needs_full: bool,
    pending_since: Option<Instant>,
    revision: i64,
    seen_revision: i64,
    genid: Option<u32>,
    /// SHA-256 of our tables' listing (counters stripped) at `genid`, taken at the first
    /// quiet check after an apply: a foreign commit that leaves it unchanged is not drift.
    baseline: Option<String>,
    status: Arc<Mutex<Status>>,
    metrics: Arc<AgentMetrics>,
    file_tx: Option<std::sync::mpsc::Sender<InForce>>,
}

fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// Writes `text` to `path` atomically: a temp file next to it, fsync, rename, fsync of the
/// directory.
pub fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("rules")
    ));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

impl RuleFile {
    fn lock(&self) -> std::sync::MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn full_text(&self) -> String {
        InForce {
            rs: self.view.as_ref().map(|v| v.ruleset().clone()),
            fw: self.fw.as_ref().map(render_firewall),
        }
        .text()
    }

    fn note_error(&self, e: impl std::fmt::Display) {
        let msg = e.to_string();
        tracing::error!(error = %msg, "refused; the ruleset in force stays");
        self.lock().last_error = Some(msg);
    }

    /// One pass: the smallest transaction from what is in force to what should be.
    async fn apply(&mut self) {
        let fw_text = self.fw.as_ref().map(render_firewall);
        let fw_changed = fw_text != self.fw_applied;
        let (script, is_delta) = if self.needs_full {
            if let Some(v) = self.view.as_mut() {
                v.take_delta();
            }
            (self.full_text(), false)
        } else {
            let mut s = self
                .view
                .as_mut()
                .map(|v| v.take_delta().script)
                .unwrap_or_default();
            if fw_changed {
                s.push_str(fw_text.as_deref().unwrap_or(""));
            }
            (s, true)
        };
        if script.is_empty() {
            self.pending_since = None;
            self.lock().applied_revision = self.seen_revision;
            return;
        }
        if let (true, Some(obs)) = (self.opts.dry_run, &self.opts.observer) {
            let _ = obs.send((Instant::now(), script));
            self.after_success(is_delta, fw_text, Duration::ZERO);
            return;
        }
        if self.opts.dry_run {
            println!(
                "# {} at revision {}",
                if is_delta { "delta" } else { "ruleset" },
                self.seen_revision
            );
            print!("{script}");
            self.after_success(is_delta, fw_text, Duration::ZERO);
            return;
        }
        let t = Instant::now();
        match self.applier.apply(script).await {
            Ok(()) => self.after_success(is_delta, fw_text, t.elapsed()),
            Err(e) => {
                self.needs_full = true;
                self.lock().apply_failures += 1;
                self.metrics.apply_failures.inc();
                self.note_error(e);
            }
        }
    }

    fn after_success(&mut self, is_delta: bool, fw_text: Option<String>, took: Duration) {
        self.needs_full = false;
        self.fw_applied = fw_text;
        self.revision = self.seen_revision;
        self.pending_since = None;
        self.baseline = None;
        self.metrics.applied(is_delta, took.as_secs_f64());
        self.genid = if self.opts.dry_run {
            None
        } else {
            ruleset_genid().ok()
        };
        let (rules, sets, elements) = self
            .view
            .as_ref()
            .map(|v| {
                let rs = v.ruleset();
                (
                    rs.chains.values().map(|c| c.len() as i64).sum(),
                    rs.sets.len() as i64,
                    rs.sets.values().map(|s| s.elements.len() as i64).sum(),
                )
            })
            .unwrap_or((0, 0, 0));
        {
            let mut st = self.lock();
            st.applied_revision = self.revision;
            st.applies += 1;
            st.delta_applies += i64::from(is_delta);
            st.last_error = None;
            st.lag_seconds = 0.0;
            st.rules = rules;
            st.sets = sets;
            st.elements = elements;
            st.last_apply_seconds = took.as_secs_f64();
        }
        let snapshot = InForce {
            rs: self.view.as_ref().map(|v| v.ruleset().clone()),
            fw: self.fw_applied.clone(),
        };
        match &self.file_tx {
            // Rendering the whole file costs as much as a full compile: off the apply path.
            Some(tx) if !self.opts.once => {
                let _ = tx.send(snapshot);
            }
            _ => {
                let text = snapshot.text();
                self.lock().ruleset_hash = sha256_hex(&text);
                if !self.opts.dry_run {
                    // The process ends next: write now, not in the background.
                    if let Err(e) = write_atomically(&self.cfg.rule_file, &text) {
                        self.note_error(format!(
                            "cannot write {}: {e}",
                            self.cfg.rule_file.display()
                        ));
                    }
                }
            }
        }
    }

    /// The tables this agent owns (`inet palisade`, `inet palisade_fw`).
    fn tables(&self) -> Vec<String> {
        let mut t = Vec::new();
        if self.view.is_some() {
            t.push(format!("inet {}", palisade_dataplane::render::TABLE));
        }
        if self.fw.is_some() {
            t.push(format!("inet {}", palisade_dataplane::firewall::FW_TABLE));
        }
        t
    }

    /// Drift: somebody else changed our tables since our last apply. The generation id
    /// says whether anybody committed anything (free to ask); only then are our tables
    /// listed and compared with the baseline, so other software's commits (kube-proxy,
    /// Docker, libvirt) cost a listing, not a full replace.
    async fn check_drift(&mut self) {
        if self.opts.dry_run {
            return;
        }
        let Ok(now) = ruleset_genid() else {
            return;
        };
        if Some(now) == self.genid {
            if self.baseline.is_none() {
                if let Ok(listing) = self.applier.list(self.tables()).await {
                    // Only a listing taken at our own generation is a baseline.
                    if ruleset_genid().ok() == Some(now) {
                        self.baseline = Some(sha256_hex(&listing));
                    }
                }
            }
            return;
        }
        if let Some(base) = &self.baseline {
            if let Ok(listing) = self.applier.list(self.tables()).await {
                if sha256_hex(&listing) == *base {
                    tracing::debug!(
                        generation = now,
                        "nftables changed elsewhere; our tables are intact"
                    );
                    self.genid = Some(now);
                    self.metrics.foreign_commits.inc();
                    return;
                }
            }
        }
        tracing::warn!(expected = ?self.genid, found = now, "nftables changed behind our back: restoring the ruleset");
        self.needs_full = true;
        self.lock().drift_repairs += 1;
        self.metrics.drift_repairs.inc();
        self.apply().await;
    }

    /// The firewall table's spec from its sources: static parts from the config, the
    /// rest from this firewall's document on the server (none there: base rules only, so
    /// the forward path stays closed).
    fn rebuild_fw(&mut self) {
        let cfg = &self.cfg;
        let Some(fw_src) = cfg.firewall else {
            self.fw = None;
            return;
        };
        let doc = self.fw_doc.clone().unwrap_or_default();
        let pick = |src: Option<SourceKind>| src.map(|k| k == SourceKind::Metal);
        self.fw = Some(FirewallSpec {
            base: match fw_src {
                SourceKind::Metal => doc.firewall.clone(),
                SourceKind::Static => cfg.static_.firewall.clone().unwrap_or_default(),
            },
            cwnp: match pick(cfg.cwnp) {
                Some(true) => doc.cwnp.clone(),
                Some(false) => cfg.static_.cwnp.clone().unwrap_or_default(),
                None => Default::default(),
            },
            services: match pick(cfg.service) {
                Some(true) => doc.services.clone(),
                Some(false) => cfg.static_.services.clone().unwrap_or_default(),
                None => Vec::new(),
            },
            log_group: cfg.droptailer.then_some(crate::DROP_LOG_GROUP),
        });
    }

    /// This firewall's document from the server changed (None: deleted).
    fn firewall_doc(&mut self, doc: Option<Value>) {
        match doc.map(FirewallDoc::parse).transpose() {
            Ok(d) => {
                self.fw_doc = d;
                self.rebuild_fw();
                self.pending_since.get_or_insert_with(Instant::now);
            }
            Err(e) => self.note_error(format!("firewall {}: {e}", self.cfg.name)),
        }
    }

    fn load_snapshot(&mut self, revision: i64, text: &str) {
        #[derive(serde::Deserialize)]
        struct Firewalls {
            #[serde(default)]
            firewalls: Vec<Value>,
        }
        if let Ok(f) = serde_json::from_str::<Firewalls>(text) {
            let mine = f
                .firewalls
                .into_iter()
                .find(|d| d["name"] == self.cfg.name.as_str())
                .map(|mut d| {
                    if let Some(m) = d.as_object_mut() {
                        m.remove("name");
                    }
                    d
                });
            self.firewall_doc(mine);
        }
        self.seen_revision = revision;
        if self.cfg.securitygroups != Some(SourceKind::Metal) {
            self.needs_full = true;
            self.pending_since.get_or_insert_with(Instant::now);
            return;
        }
        let state = match State::parse(text) {
            Ok(s) => s,
            Err(e) => return self.note_error(format!("snapshot at revision {revision}: {e}")),
        };
        match HostView::new(&state, &self.cfg.name) {
            Ok(v) => {
                self.rule_group = state
                    .security_groups
                    .iter()
                    .flat_map(|g| {
                        g.security_group_rules
                            .iter()
                            .map(|r| (r.id.clone(), g.id.clone()))
                    })
                    .collect();
                let mut v = v;
                v.set_drop_log(self.cfg.sg_droptailer.then_some(crate::DROP_LOG_GROUP));
                self.view = Some(v);
                self.needs_full = true;
                self.seen_revision = revision;
                self.pending_since.get_or_insert_with(Instant::now);
            }
            Err(e) => self.note_error(format!("snapshot at revision {revision}: {e}")),
        }
    }

    /// One change from the stream, into the view (idempotent: a revision may come twice).
    fn change(&mut self, v: &Value) {
        if let Some(r) = v["revision"].as_i64() {
            self.seen_revision = self.seen_revision.max(r);
        }
        self.lock().last_sync_unix = jiff::Timestamp::now().as_second();
        let (kind, id, put) = (
            v["kind"].as_str().unwrap_or(""),
            v["id"].as_str().unwrap_or(""),
            v["type"] == "put",
        );
        if kind == "firewall" {
            if id == self.cfg.name {
                self.firewall_doc(put.then(|| v["object"].clone()));
            }
            return;
        }
        if self.cfg.securitygroups != Some(SourceKind::Metal) {
            return;
        }
        let Some(view) = self.view.as_mut() else {
            return;
        };
        let obj = &v["object"];
        let result: Result<(), String> = match (kind, put) {
            ("port", true) => serde_json::from_value::<Port>(obj.clone())
                .map_err(|e| format!("port {id}: {e}"))
                .and_then(|p| view.upsert_port(p).map_err(|e| e.to_string())),
            ("port", false) => {
                view.remove_port(id);
                Ok(())
            }
            ("security_group", true) => serde_json::from_value::<SecurityGroup>(obj.clone())
                .map_err(|e| format!("security group {id}: {e}"))
                .map(|mut sg| {
                    sg.security_group_rules = view
                        .group(id)
                        .map(|g| g.security_group_rules.clone())
                        .unwrap_or_default();
                    view.upsert_group(sg);
                }),
            ("security_group", false) => view.remove_group(id).map_err(|e| e.to_string()),
            ("security_group_rule", true) => {
                let sg_id = obj["security_group_id"].as_str().unwrap_or("").to_string();
                match serde_json::from_value::<Rule>(obj.clone()) {
                    Ok(rule) => {
                        let mut sg = view
                            .group(&sg_id)
                            .cloned()
                            .unwrap_or_else(|| SecurityGroup {
                                id: sg_id.clone(),
                                name: String::new(),
                                stateful: true,
                                security_group_rules: Vec::new(),
                            });
                        sg.security_group_rules.retain(|r| r.id != rule.id);
                        sg.security_group_rules.push(rule);
                        view.upsert_group(sg);
                        self.rule_group.insert(id.to_string(), sg_id);
                        Ok(())
                    }
                    Err(e) => Err(format!("rule {id}: {e}")),
                }
            }
            ("security_group_rule", false) => {
                if let Some(sg_id) = self.rule_group.remove(id) {
                    if let Some(mut sg) = view.group(&sg_id).cloned() {
                        sg.security_group_rules.retain(|r| r.id != id);
                        view.upsert_group(sg);
                    }
                }
                Ok(())
            }
            ("address_group", true) => serde_json::from_value::<AddressGroup>(obj.clone())
                .map_err(|e| format!("address group {id}: {e}"))
                .map(|a| view.upsert_address_group(a)),
            ("address_group", false) => {
                view.remove_address_group(id);
                Ok(())
            }
            _ => Ok(()),
        };
        if let Err(e) = result {
            self.note_error(e);
        }
        self.pending_since.get_or_insert_with(Instant::now);
    }
}

fn static_state(path: &Path) -> Result<State, AgentError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| AgentError::StaticState(format!("cannot read {}: {e}", path.display())))?;
    State::parse(&text).map_err(|e| AgentError::StaticState(format!("{}: {e}", path.display())))
}

/// What is in force: the security-group ruleset and the firewall table's text.
struct InForce {
    rs: Option<palisade_dataplane::Ruleset>,
    fw: Option<String>,
}

impl InForce {
    fn text(&self) -> String {
        let mut out = self.rs.as_ref().map(render).unwrap_or_default();
        out.push_str(self.fw.as_deref().unwrap_or(""));
        out
    }
}

/// Renders and writes rule files in the background, latest first (a burst writes once),
/// and records the hash of what is in force.
fn file_writer(path: PathBuf, status: Arc<Mutex<Status>>) -> std::sync::mpsc::Sender<InForce> {
    let (tx, rx) = std::sync::mpsc::channel::<InForce>();
    std::thread::Builder::new()
        .name("rule-file".into())
        .spawn(move || {
            while let Ok(mut latest) = rx.recv() {
                while let Ok(newer) = rx.try_recv() {
                    latest = newer;
                }
                let text = latest.text();
                if let Ok(mut s) = status.lock() {
                    s.ruleset_hash = sha256_hex(&text);
                }
                if let Err(e) = write_atomically(&path, &text) {
                    tracing::error!(path = %path.display(), error = %e, "cannot write the rule file");
                }
            }
        })
        .ok();
    tx
}

async fn serve_metrics(
    addr: std::net::SocketAddr,
    status: Arc<Mutex<Status>>,
    metrics: Arc<AgentMetrics>,
) {
    let st = status.clone();
    let app = axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(move || {
                let s = st.lock().map(|s| s.clone()).unwrap_or_default();
                let text = metrics.render(&s);
                async move {
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        text,
                    )
                }
            }),
        )
        .route(
            "/status",
            axum::routing::get(move || {
                let s = status.lock().map(|s| s.clone()).unwrap_or_default();
                async move { axum::Json(s) }
            }),
        );
    match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => {
            let _ = axum::serve(l, app).await;
        }
        Err(e) => tracing::error!(%addr, error = %e, "cannot serve /metrics"),
    }
}

async fn report(client: &Signed, status: &Status) {
    let body = json!({"agent": {
        "applied_revision": status.applied_revision,
        "ruleset_hash": status.ruleset_hash,
        "rules": status.rules,
        "sets": status.sets,
        "elements": status.elements,
        "last_error": status.last_error,
        "lag_seconds": status.lag_seconds,
        "applies": status.applies,
        "delta_applies": status.delta_applies,
        "drift_repairs": status.drift_repairs,
        "version": env!("CARGO_PKG_VERSION"),
    }});
    let path = format!("/v2.0/palisade/agents/{}", status.name);
    let r = client
        .request(reqwest::Method::PUT, &path, body.to_string().into_bytes())
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    match r {
        Ok(resp) if resp.status().is_success() => {}
        Ok(resp) => tracing::warn!(status = %resp.status(), "status report refused"),
        Err(e) => tracing::debug!(error = %e, "status report failed"),
    }
}

/// Runs the agent until it is stopped (or once).
pub async fn run(cfg: AgentConfig, opts: Options) -> Result<(), AgentError> {
    let status = Arc::new(Mutex::new(Status {
        name: cfg.name.clone(),
        ..Status::default()
    }));
    let metrics = Arc::new(AgentMetrics::new(&cfg.name));
    let applier = Applier::start(opts.spawn_nft);
    status
        .lock()
        .map(|mut s| s.applier = applier.mode.to_string())
        .ok();
    // Before any network call: what was in force last time is in force again.
    if !opts.dry_run {
        if let Ok(text) = std::fs::read_to_string(&cfg.rule_file) {
            match applier.apply(text.clone()).await {
                Ok(()) => {
                    tracing::info!(file = %cfg.rule_file.display(), "last applied rule file restored");
                    if let Ok(mut s) = status.lock() {
                        s.ruleset_hash = sha256_hex(&text);
                    }
                }
                Err(e) => {
                    tracing::error!(file = %cfg.rule_file.display(), error = %e, "cannot restore the last rule file")
                }
            }
        }
    }
    let mut rf = RuleFile {
        file_tx: (!opts.dry_run).then(|| file_writer(cfg.rule_file.clone(), status.clone())),
        cfg: cfg.clone(),
        opts: opts.clone(),
        applier,
        view: None,
        rule_group: HashMap::new(),
        fw: None,
        fw_doc: None,
        fw_applied: None,
        needs_full: true,
        pending_since: None,
        revision: 0,
        seen_revision: 0,
        genid: None,
        baseline: None,
        status: status.clone(),
        metrics: metrics.clone(),
    };
    rf.rebuild_fw();
    if cfg.securitygroups == Some(SourceKind::Static) {
        if let Some(path) = &cfg.static_.security_groups {
            let state = static_state(path)?;
            let mut v = HostView::new(&state, &cfg.name)
                .map_err(|e| AgentError::StaticState(e.to_string()))?;
            v.set_drop_log(cfg.sg_droptailer.then_some(crate::DROP_LOG_GROUP));
            rf.view = Some(v);
        }
    }
    if let Some(addr) = cfg.metrics_addr {
        tokio::spawn(serve_metrics(addr, status.clone(), metrics.clone()));
    }
    if (cfg.droptailer || cfg.sg_droptailer) && !opts.dry_run {
        crate::droplog::start(cfg.drop_log.clone(), crate::DROP_LOG_GROUP, metrics.clone());
    }
    let client = cfg.metal.as_ref().map(|m| Signed::new(m, cfg.key_type));
    let (tx, mut rx) = mpsc::channel::<Update>(1024);
    let follows = [cfg.securitygroups, cfg.firewall, cfg.cwnp, cfg.service]
        .contains(&Some(SourceKind::Metal));
    if let (Some(c), true) = (&client, follows) {
        tokio::spawn(follow(c.clone(), tx.clone()));
    } else {
        // Nothing to wait for: apply what the static sources give.
        rf.apply().await;
        if opts.once {
            return finish(&rf);
        }
    }
    drop(tx);
    let mut tick = tokio::time::interval(cfg.resync);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            u = rx.recv(), if follows => {
                let Some(u) = u else { break };
                let first_snapshot = matches!(u, Update::Snapshot { .. });
                handle(&mut rf, u);
                // Collect the rest of a burst.
                let deadline = tokio::time::Instant::now() + cfg.debounce;
                while let Ok(Some(more)) = tokio::time::timeout_at(deadline, rx.recv()).await {
                    handle(&mut rf, more);
                }
                if rf.pending_since.is_some() || rf.needs_full {
                    rf.apply().await;
                }
                if opts.once && first_snapshot {
                    return finish(&rf);
                }
            }
            _ = tick.tick() => {
                rf.check_drift().await;
                if let Some(since) = rf.pending_since {
                    rf.lock().lag_seconds = since.elapsed().as_secs_f64();
                }
                if rf.needs_full && rf.view.is_some() {
                    rf.apply().await;
                }
                if let Some(c) = &client {
                    let s = rf.lock().clone();
                    report(c, &s).await;
                }
            }
        }
    }
    Ok(())
}

fn handle(rf: &mut RuleFile, u: Update) {
    match u {
        Update::Snapshot { revision, text } => rf.load_snapshot(revision, &text),
        Update::Change(v) => rf.change(&v),
        Update::Down(e) => rf.lock().last_error = Some(format!("source unreachable: {e}")),
    }
}

fn finish(rf: &RuleFile) -> Result<(), AgentError> {
    match rf.lock().last_error.clone() {
        Some(e) => Err(AgentError::Start(e)),
        None => Ok(()),
    }
}
