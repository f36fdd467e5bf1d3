//! Network-namespace test hosts (DESIGN.md): a "hypervisor" namespace holding the ruleset,
//! one namespace per port on a veth pair named like Neutron's taps, routed; small Python
//! servers and clients for real connects. Addresses: 198.18.0.0/15 and fd00::/8 only.
//! Namespaces are removed by name and processes killed by PID on drop.
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};

pub fn sh(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn can_run() -> bool {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    let tools = ["nft", "ip", "python3"].iter().all(|t| {
        Command::new("sh")
            .args(["-c", &format!("command -v {t}")])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if root && tools {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("enforcement tests need root, nft, ip and python3 under CI");
    }
    eprintln!("skipping: enforcement tests need root, nft, ip and python3");
    false
}

/// Namespaces and servers of one test; removed on drop (namespaces by name, processes by PID).
pub struct Lab {
    pub prefix: String,
    pub namespaces: Vec<String>,
    pub servers: Vec<Child>,
}

pub const SERVER: &str = r#"
import socket, select, sys
ports = [int(p) for p in sys.argv[1:]]
tcp, udp = [], []
for p in ports:
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", p)); s.listen(64); tcp.append(s)
    u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    u.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    u.bind(("::", p)); udp.append(u)
print("ready", flush=True)
while True:
    r, _, _ = select.select(tcp + udp, [], [], 120)
    if not r:
        break
    for s in r:
        if s in tcp:
            c, _ = s.accept(); c.close()
        else:
            data, peer = s.recvfrom(2048); s.sendto(data, peer)
"#;

/// Runs probes given as JSON [[proto, addr, port], ...] concurrently; prints JSON booleans.
pub const BATCH: &str = r#"
import json, socket, struct, sys, threading, os
probes = json.loads(sys.argv[1]); out = [None] * len(probes)
def icmp_echo(addr, v6):
    ident = (os.getpid() + threading.get_ident()) & 0xffff
    if v6:
        s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6); t, rt = 128, 129
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP); t, rt = 8, 0
    s.settimeout(0.5)
    hdr = struct.pack("!BBHHH", t, 0, 0, ident, 1) + b"palisade"
    if not v6:
        c = sum(struct.unpack("!%dH" % (len(hdr) // 2), hdr)); c = (c >> 16) + (c & 0xffff); c += c >> 16
        hdr = struct.pack("!BBHHH", t, 0, (~c) & 0xffff, ident, 1) + b"palisade"
    s.sendto(hdr, (addr, 0))
    try:
        while True:
            data, _ = s.recvfrom(2048)
            body = data if v6 else data[(data[0] & 0xf) * 4:]
            if body[0] == rt and struct.unpack("!H", body[4:6])[0] == ident:
                return True
    except Exception:
        return False
def run(i, proto, addr, port):
    v6 = ":" in addr; fam = socket.AF_INET6 if v6 else socket.AF_INET
    try:
        if proto == "tcp":
            s = socket.socket(fam, socket.SOCK_STREAM); s.settimeout(0.5); s.connect((addr, port)); s.close(); out[i] = True
        elif proto == "udp":
            s = socket.socket(fam, socket.SOCK_DGRAM); s.settimeout(0.5); s.sendto(b"x", (addr, port)); s.recvfrom(64); out[i] = True
        else:
            out[i] = icmp_echo(addr, v6)
    except Exception:
        out[i] = False
ts = [threading.Thread(target=run, args=(i, *p)) for i, p in enumerate(probes)]
[t.start() for t in ts]; [t.join() for t in ts]
print(json.dumps(out))
"#;

pub const CLIENT: &str = r#"
import socket, sys
addr, port, src = sys.argv[1], int(sys.argv[2]), sys.argv[3]
fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM); s.settimeout(0.6)
if src != "-":
    s.bind((src, 0))
try:
    s.connect((addr, port)); print("open")
except Exception as e:
    print("closed", type(e).__name__)
"#;

impl Lab {
    pub fn new(prefix: &str) -> Lab {
        let lab = Lab {
            prefix: format!("pal{}-{prefix}", std::process::id() % 10000),
            namespaces: Vec::new(),
            servers: Vec::new(),
        };
        lab
    }
    pub fn ns(&self, name: &str) -> String {
        format!("{}-{name}", self.prefix)
    }
    pub fn exec(&self, ns: &str, args: &[&str]) {
        let n = self.ns(ns);
        let mut full = vec!["ip", "netns", "exec", n.as_str()];
        full.extend_from_slice(args);
        sh(&full);
    }
    pub fn add_ns(&mut self, name: &str) {
        let n = self.ns(name);
        sh(&["ip", "netns", "add", &n]);
        self.namespaces.push(n);
        self.exec(name, &["ip", "link", "set", "lo", "up"]);
        self.exec(
            name,
            &[
                "sysctl",
                "-qw",
                "net.ipv6.conf.all.accept_dad=0",
                "net.ipv6.conf.default.accept_dad=0",
            ],
        );
    }
    /// A host namespace `name` on hypervisor interface `tap` with `mac`, `v4` and `v6`.
    pub fn add_host(&mut self, name: &str, tap: &str, mac: &str, v4: &str, v6: &str) {
        self.add_ns(name);
        let (hv, host) = (self.ns("hv"), self.ns(name));
        sh(&[
            "ip", "link", "add", tap, "netns", &hv, "type", "veth", "peer", "name", "eth0",
            "netns", &host,
        ]);
        self.exec(name, &["ip", "link", "set", "eth0", "address", mac]);
        self.exec(name, &["ip", "link", "set", "eth0", "up"]);
        self.exec(
            name,
            &["ip", "addr", "add", &format!("{v4}/32"), "dev", "eth0"],
        );
        self.exec(
            name,
            &[
                "ip",
                "-6",
                "addr",
                "add",
                &format!("{v6}/128"),
                "dev",
                "eth0",
                "nodad",
            ],
        );
        self.exec(name, &["ip", "route", "add", "198.18.0.1", "dev", "eth0"]);
        self.exec(
            name,
            &["ip", "route", "add", "default", "via", "198.18.0.1"],
        );
        self.exec(
            name,
            &[
                "ip", "-6", "route", "add", "default", "via", "fe80::1", "dev", "eth0",
            ],
        );
        self.exec("hv", &["ip", "link", "set", tap, "up"]);
        self.exec("hv", &["ip", "addr", "add", "198.18.0.1/32", "dev", tap]);
        self.exec(
            "hv",
            &["ip", "-6", "addr", "add", "fe80::1/64", "dev", tap, "nodad"],
        );
        self.exec(
            "hv",
            &["ip", "route", "add", &format!("{v4}/32"), "dev", tap],
        );
        self.exec(
            "hv",
            &["ip", "-6", "route", "add", &format!("{v6}/128"), "dev", tap],
        );
    }
    /// A veth from the test's own namespace (`root_addr`/30) to namespace `name`
    /// (`ns_addr`/30), so processes there reach servers listening on `root_addr`.
    pub fn uplink(&mut self, name: &str, root_addr: &str, ns_addr: &str) {
        let n = self.ns(name);
        let up: String = format!(
            "u{}",
            self.prefix.replace('-', "").trim_start_matches("pal")
        )
        .chars()
        .take(15)
        .collect();
        sh(&[
            "ip", "link", "add", &up, "type", "veth", "peer", "name", "uplink", "netns", &n,
        ]);
        sh(&["ip", "addr", "add", &format!("{root_addr}/30"), "dev", &up]);
        sh(&["ip", "link", "set", &up, "up"]);
        self.exec(
            name,
            &[
                "ip",
                "addr",
                "add",
                &format!("{ns_addr}/30"),
                "dev",
                "uplink",
            ],
        );
        self.exec(name, &["ip", "link", "set", "uplink", "up"]);
    }

    pub fn serve(&mut self, name: &str, ports: &[u16]) {
        let n = self.ns(name);
        let mut args: Vec<String> = vec![
            "netns".into(),
            "exec".into(),
            n,
            "python3".into(),
            "-c".into(),
            SERVER.into(),
        ];
        args.extend(ports.iter().map(|p| p.to_string()));
        let mut child = Command::new("ip")
            .args(&args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("server");
        let mut line = String::new();
        use std::io::BufRead;
        let out = child.stdout.take().expect("stdout");
        std::io::BufReader::new(out)
            .read_line(&mut line)
            .expect("ready line");
        assert_eq!(line.trim(), "ready");
        self.servers.push(child);
    }
    /// Whether a TCP connect from `from` to addr:port succeeds (bounded by 0.6 s).
    pub fn open(&self, from: &str, addr: &str, port: u16, src: Option<&str>) -> bool {
        let n = self.ns(from);
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &n,
                "python3",
                "-c",
                CLIENT,
                addr,
                &port.to_string(),
                src.unwrap_or("-"),
            ])
            .output()
            .expect("client");
        String::from_utf8_lossy(&out.stdout).trim() == "open"
    }
    /// Starts `probes` (proto, address, port) from `from`, all at once; `finish` collects.
    pub fn batch(&self, from: &str, probes: &[(&str, String, u16)]) -> Child {
        let n = self.ns(from);
        let arg = serde_json::to_string(
            &probes
                .iter()
                .map(|(p, a, port)| serde_json::json!([p, a, port]))
                .collect::<Vec<_>>(),
        )
        .expect("json");
        Command::new("ip")
            .args(["netns", "exec", &n, "python3", "-c", BATCH, &arg])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("batch client")
    }

    /// Whether each probe of a batch got through.
    pub fn finish(child: Child) -> Vec<bool> {
        let out = child.wait_with_output().expect("batch client");
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "batch output ({e}): {} {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }

    pub fn load(&self, nft_text: &str) {
        let path = std::env::temp_dir().join(format!("{}.nft", self.prefix));
        std::fs::write(&path, nft_text).expect("write ruleset");
        let p = path.display().to_string();
        self.exec("hv", &["nft", "-f", &p]);
        let _ = std::fs::remove_file(path);
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.servers {
            let _ = c.kill();
            let _ = c.wait();
        }
        for n in &self.namespaces {
            let _ = Command::new("ip").args(["netns", "del", n]).output();
        }
    }
}
