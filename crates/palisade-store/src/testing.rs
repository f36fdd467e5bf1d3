//! Real etcd members for tests and benchmarks: a one- or three-member cluster on loopback
//! ports in a temporary directory, members killed and restarted by PID.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One member.
pub struct Member {
    /// its name
    pub name: String,
    /// client URL
    pub client_url: String,
    peer_url: String,
    dir: PathBuf,
    child: Option<Child>,
}

/// A cluster of etcd members started from Debian's `etcd` binary.
pub struct EtcdCluster {
    /// the members
    pub members: Vec<Member>,
    _tmp: tempfile::TempDir,
    initial_cluster: String,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// Whether an `etcd` binary is there.
pub fn etcd_available() -> bool {
    Command::new("etcd")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl EtcdCluster {
    /// Starts `n` members and waits until the cluster answers.
    pub fn start(n: usize) -> std::io::Result<EtcdCluster> {
        let tmp = tempfile::tempdir()?;
        let mut members: Vec<Member> = (0..n)
            .map(|i| Member {
                name: format!("m{i}"),
                client_url: format!("http://127.0.0.1:{}", free_port()),
                peer_url: format!("http://127.0.0.1:{}", free_port()),
                dir: tmp.path().join(format!("m{i}")),
                child: None,
            })
            .collect();
        let initial_cluster = members
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer_url))
            .collect::<Vec<_>>()
            .join(",");
        for m in &mut members {
            m.child = Some(spawn(m, &initial_cluster, "new")?);
        }
        let c = EtcdCluster {
            members,
            _tmp: tmp,
            initial_cluster,
        };
        c.wait_healthy(Duration::from_secs(30))?;
        Ok(c)
    }

    /// Client URLs of every member.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(|m| m.client_url.clone()).collect()
    }

    /// Kills member `i` (SIGKILL, by PID).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.members[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts member `i` again on its data.
    pub fn restart(&mut self, i: usize) -> std::io::Result<()> {
        let state = "existing";
        let child = spawn(&self.members[i], &self.initial_cluster, state)?;
        self.members[i].child = Some(child);
        Ok(())
    }

    fn wait_healthy(&self, limit: Duration) -> std::io::Result<()> {
        let end = Instant::now() + limit;
        loop {
            if self
                .members
                .iter()
                .all(|m| m.child.is_none() || healthy(&m.client_url))
            {
                return Ok(());
            }
            if Instant::now() > end {
                return Err(std::io::Error::other("etcd did not become healthy"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until every running member reports itself healthy (has a leader).
    pub fn wait_until_healthy(&self, limit: Duration) -> std::io::Result<()> {
        self.wait_healthy(limit)
    }
}

/// etcd's `/health` on a client URL says `"health":"true"` (a leader is known).
fn healthy(url: &str) -> bool {
    use std::io::{Read, Write};
    let Some(addr) = url.strip_prefix("http://") else {
        return false;
    };
    let Ok(sock) = addr.parse::<std::net::SocketAddr>() else {
        return false;
    };
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&sock, Duration::from_millis(300)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(format!("GET /health HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .is_err()
    {
        return false;
    }
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    body.contains("\"health\":\"true\"")
}

fn spawn(m: &Member, initial_cluster: &str, state: &str) -> std::io::Result<Child> {
    Command::new("etcd")
        .args(["--name", &m.name, "--data-dir"])
        .arg(&m.dir)
        .args([
            "--listen-client-urls",
            &m.client_url,
            "--advertise-client-urls",
            &m.client_url,
            "--listen-peer-urls",
            &m.peer_url,
            "--initial-advertise-peer-urls",
            &m.peer_url,
            "--initial-cluster",
            initial_cluster,
            "--initial-cluster-state",
            state,
            "--heartbeat-interval",
            "50",
            "--election-timeout",
            "500",
            // Palisade's cascades (a group with its rules) exceed etcd's default of 128.
            "--max-txn-ops",
            "10000",
            "--max-request-bytes",
            "16777216",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}
