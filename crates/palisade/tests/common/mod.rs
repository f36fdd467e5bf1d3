//! Test harness: starts the real `palisade server` process on a fresh data directory and
//! talks to it over HTTP. The server is killed (by PID) when the handle drops.
#![allow(dead_code)]

pub mod lab;

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_palisade");

pub struct Server {
    child: Option<Child>,
    pub url: String,
    pub token: String,
    pub dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    http: reqwest::Client,
}

impl Server {
    /// A server on a fresh temporary data directory.
    pub fn start() -> Server {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_path_buf();
        let mut s = Server::start_in(&dir);
        s._tmp = Some(tmp);
        s
    }

    /// A server on a fresh temporary data directory with extra `palisade server` flags.
    pub fn start_with(args: &[&str]) -> Server {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_path_buf();
        let mut s = Server::launch(&dir, args);
        s._tmp = Some(tmp);
        s
    }

    /// A server on `dir` (kept by the caller), listening on a free port.
    pub fn start_in(dir: &Path) -> Server {
        Server::launch(dir, &[])
    }

    /// A server on a fresh temporary data directory, listening on `listen`.
    pub fn start_on(listen: &str, args: &[&str]) -> Server {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_path_buf();
        let mut s = Server::launch_on(&dir, listen, args);
        s._tmp = Some(tmp);
        s
    }

    fn launch(dir: &Path, extra: &[&str]) -> Server {
        Server::launch_on(dir, "127.0.0.1:0", extra)
    }

    fn launch_on(dir: &Path, listen: &str, extra: &[&str]) -> Server {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("server.log"))
            .or_else(|_| {
                std::fs::create_dir_all(dir)?;
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(dir.join("server.log"))
            })
            .expect("server log");
        let mut child = Command::new(BIN)
            .args(["server", "--listen", listen, "--data-dir"])
            .arg(dir)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn palisade server");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(first)) = lines.next() {
                let _ = tx.send(first);
            }
            // Keep draining so the server never blocks on a full pipe.
            for _ in lines {}
        });
        let first = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| {
                let _ = child.kill();
                let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
                panic!("server did not start in 30 s; log:\n{log}")
            });
        let url = first
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .and_then(|u| u.strip_suffix("/v2.0"))
            .unwrap_or_else(|| panic!("no URL in the server's first line: {first}"))
            .to_string();
        let token = std::fs::read_to_string(dir.join("admin-token"))
            .expect("admin-token")
            .trim()
            .to_string();
        Server {
            child: Some(child),
            url,
            token,
            dir: dir.to_path_buf(),
            _tmp: None,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("http client"),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// SIGKILL, as a crash.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// One request with the admin token; returns status and JSON body (Null if empty).
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call_with(method, path, body, Some(&self.token)).await
    }

    pub async fn call_with(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> (u16, Value) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.http.request(m, format!("{}{}", self.url, path));
        if let Some(t) = token {
            req = req.header("X-Auth-Token", t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.expect("body");
        let v = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                panic!(
                    "{method} {path}: non-JSON body ({e}): {}",
                    String::from_utf8_lossy(&bytes)
                )
            })
        };
        (status, v)
    }

    /// Raw bytes in, status and body text out.
    pub async fn raw(&self, method: &str, path: &str, body: Vec<u8>) -> (u16, String) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let resp = self
            .http
            .request(m, format!("{}{}", self.url, path))
            .header("X-Auth-Token", &self.token)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap_or_default())
    }

    /// The `OS_*` variables of the generated `admin-openrc`.
    pub fn openrc(&self) -> Vec<(String, String)> {
        std::fs::read_to_string(self.dir.join("admin-openrc"))
            .expect("admin-openrc")
            .lines()
            .filter_map(|l| l.strip_prefix("export "))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Logs in with a password; returns the token (or the status on failure).
    pub async fn login(
        &self,
        user: &str,
        password: &str,
        project: Option<&str>,
    ) -> Result<String, (u16, Value)> {
        let mut auth = serde_json::json!({"identity": {"methods": ["password"], "password": {"user": {"name": user, "domain": {"name": "Default"}, "password": password}}}});
        if let Some(p) = project {
            auth["scope"] =
                serde_json::json!({"project": {"name": p, "domain": {"name": "Default"}}});
        }
        let resp = self
            .http
            .post(format!("{}/identity/v3/auth/tokens", self.url))
            .json(&serde_json::json!({ "auth": auth }))
            .send()
            .await
            .expect("login request");
        let status = resp.status().as_u16();
        let token = resp
            .headers()
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        match (status, token) {
            (201, Some(t)) => Ok(t),
            _ => Err((status, body)),
        }
    }

    /// Creates a project and a member user in it (admin API); returns the project id.
    pub async fn project_with_member(
        &self,
        project: &str,
        user: &str,
        password: &str,
        role: &str,
    ) -> String {
        let (st, p) = self
            .call(
                "POST",
                "/identity/v3/projects",
                Some(serde_json::json!({"project": {"name": project, "domain_id": "default"}})),
            )
            .await;
        assert_eq!(st, 201, "create project: {p}");
        let pid = p["project"]["id"].as_str().expect("id").to_string();
        let (st, u) = self.call("POST", "/identity/v3/users", Some(serde_json::json!({"user": {"name": user, "password": password, "domain_id": "default"}}))).await;
        assert_eq!(st, 201, "create user: {u}");
        let uid = u["user"]["id"].as_str().expect("id").to_string();
        let (st, v) = self
            .call(
                "PUT",
                &format!("/identity/v3/projects/{pid}/users/{uid}/roles/{role}"),
                None,
            )
            .await;
        assert_eq!(st, 204, "grant: {v}");
        pid
    }

    /// Runs the `palisade` CLI against this server.
    pub fn cli(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(BIN)
            .args(args)
            .env("PALISADE_URL", &self.url)
            .env("PALISADE_TOKEN", &self.token)
            .output()
            .expect("run palisade");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// The admin project's id (from its default group).
    pub async fn admin_project(&self) -> String {
        let (_, v) = self.call("GET", "/v2.0/palisade/tokens/self", None).await;
        v["token"]["project_id"]
            .as_str()
            .expect("project_id")
            .to_string()
    }

    pub async fn create_sg(&self, name: &str) -> String {
        let (st, v) = self
            .call(
                "POST",
                "/v2.0/security-groups",
                Some(serde_json::json!({"security_group": {"name": name}})),
            )
            .await;
        assert_eq!(st, 201, "create group {name}: {v}");
        v["security_group"]["id"].as_str().expect("id").to_string()
    }

    pub async fn create_network(&self, name: &str) -> String {
        let (st, v) = self
            .call(
                "POST",
                "/v2.0/networks",
                Some(serde_json::json!({"network": {"name": name}})),
            )
            .await;
        assert_eq!(st, 201, "create network: {v}");
        v["network"]["id"].as_str().expect("id").to_string()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `f` until it returns true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Runs `f(0..n)` as `n` tasks released together by a barrier; their results in order.
pub async fn concurrently<F, Fut>(n: usize, f: F) -> Vec<(u16, Value)>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = (u16, Value)> + Send + 'static,
{
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(n));
    let mut tasks = Vec::new();
    for i in 0..n {
        let fut = f(i);
        let b = barrier.clone();
        tasks.push(tokio::spawn(async move {
            b.wait().await;
            fut.await
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("join"));
    }
    out
}

/// A tool from the Python virtualenv `.ci/run` makes (`$OPENSTACK_VENV/bin`, else
/// `<workspace>/.venv/bin`). Without it the caller skips, except under `CI=true`, where a
/// missing tool fails.
pub fn venv_bin(tool: &str) -> Option<PathBuf> {
    let venv = std::env::var_os("OPENSTACK_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv"));
    let p = venv.join("bin").join(tool);
    if p.exists() {
        return Some(p);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "{} is missing: .ci/run installs the Python tools into .venv",
            p.display()
        );
    }
    eprintln!(
        "skipping: {} not installed (run .ci/run or set OPENSTACK_VENV)",
        p.display()
    );
    None
}
