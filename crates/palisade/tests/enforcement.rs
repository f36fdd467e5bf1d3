//! Issue #4, acceptance 2 (first part): the compiled ruleset enforced by the real kernel.
//! A "hypervisor" namespace holds the ruleset and routes between one namespace per port
//! (veth pairs named like Neutron's taps) and an outside client; seed 004's hosts are
//! probed with real TCP connects over IPv4 and IPv6. Addresses: 198.18.0.0/15, fd00::/8.
//!
//! Needs root, `ip` and `nft`: skipped with a message otherwise, failing under CI=true.

use std::process::{Child, Command, Stdio};

fn sh(args: &[&str]) {
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

fn can_run() -> bool {
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
struct Lab {
    prefix: String,
    namespaces: Vec<String>,
    servers: Vec<Child>,
}

const SERVER: &str = r#"
import socket, select, sys
ports = [int(p) for p in sys.argv[1:]]
socks = []
for p in ports:
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", p)); s.listen(64); socks.append(s)
print("ready", flush=True)
while True:
    r, _, _ = select.select(socks, [], [], 60)
    if not r:
        break
    for s in r:
        c, _ = s.accept(); c.close()
"#;

const CLIENT: &str = r#"
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
    fn new(prefix: &str) -> Lab {
        let lab = Lab {
            prefix: format!("pal{}-{prefix}", std::process::id() % 10000),
            namespaces: Vec::new(),
            servers: Vec::new(),
        };
        lab
    }
    fn ns(&self, name: &str) -> String {
        format!("{}-{name}", self.prefix)
    }
    fn exec(&self, ns: &str, args: &[&str]) {
        let n = self.ns(ns);
        let mut full = vec!["ip", "netns", "exec", n.as_str()];
        full.extend_from_slice(args);
        sh(&full);
    }
    fn add_ns(&mut self, name: &str) {
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
    fn add_host(&mut self, name: &str, tap: &str, mac: &str, v4: &str, v6: &str) {
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
    fn serve(&mut self, name: &str, ports: &[u16]) {
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
    fn open(&self, from: &str, addr: &str, port: u16, src: Option<&str>) -> bool {
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
    fn load(&self, nft_text: &str) {
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

fn state(db_members_in_web: bool) -> String {
    let web1_groups = if db_members_in_web { "[web]" } else { "[]" };
    format!(
        r#"
security_groups:
  - id: web
    security_group_rules:
      - {{id: web-80, direction: ingress, ethertype: IPv4, protocol: tcp, port_range_min: 80, port_range_max: 80, remote_ip_prefix: 0.0.0.0/0}}
      - {{id: web-443, direction: ingress, ethertype: IPv4, protocol: tcp, port_range_min: 443, port_range_max: 443, remote_ip_prefix: 0.0.0.0/0}}
      - {{id: web-80-v6, direction: ingress, ethertype: IPv6, protocol: tcp, port_range_min: 80, port_range_max: 80}}
      - {{id: web-443-v6, direction: ingress, ethertype: IPv6, protocol: tcp, port_range_min: 443, port_range_max: 443}}
      - {{id: web-eg4, direction: egress, ethertype: IPv4}}
      - {{id: web-eg6, direction: egress, ethertype: IPv6}}
  - id: database
    security_group_rules:
      - {{id: db-3306, direction: ingress, ethertype: IPv4, protocol: tcp, port_range_min: 3306, port_range_max: 3306, remote_group_id: web}}
      - {{id: db-3306-v6, direction: ingress, ethertype: IPv6, protocol: tcp, port_range_min: 3306, port_range_max: 3306, remote_group_id: web}}
      - {{id: db-eg4, direction: egress, ethertype: IPv4}}
      - {{id: db-eg6, direction: egress, ethertype: IPv6}}
ports:
  - {{id: web1-000000000, mac_address: "fa:16:3e:00:00:01", fixed_ips: [{{ip_address: 198.18.1.1}}, {{ip_address: "fd00::1:1"}}], security_groups: {web1_groups}, "binding:host_id": hv}}
  - {{id: web2-000000000, mac_address: "fa:16:3e:00:00:02", fixed_ips: [{{ip_address: 198.18.1.2}}, {{ip_address: "fd00::1:2"}}], security_groups: [web], "binding:host_id": hv}}
  - {{id: web3-000000000, mac_address: "fa:16:3e:00:00:03", fixed_ips: [{{ip_address: 198.18.1.3}}, {{ip_address: "fd00::1:3"}}], security_groups: [web], "binding:host_id": hv}}
  - {{id: db1-0000000000, mac_address: "fa:16:3e:00:00:11", fixed_ips: [{{ip_address: 198.18.2.1}}, {{ip_address: "fd00::2:1"}}], security_groups: [database], "binding:host_id": hv}}
  - {{id: db2-0000000000, mac_address: "fa:16:3e:00:00:12", fixed_ips: [{{ip_address: 198.18.2.2}}, {{ip_address: "fd00::2:2"}}], security_groups: [database], "binding:host_id": hv}}
"#
    )
}

fn compiled(text: &str) -> String {
    let st = palisade_dataplane::State::parse(text).expect("state");
    palisade_dataplane::render(&palisade_dataplane::compile(&st, "hv").expect("compile"))
}

#[test]
fn seed_004_matrix_holds_in_the_kernel_over_ipv4_and_ipv6() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new("e");
    lab.add_ns("hv");
    lab.exec(
        "hv",
        &[
            "sysctl",
            "-qw",
            "net.ipv4.ip_forward=1",
            "net.ipv6.conf.all.forwarding=1",
        ],
    );
    let hosts = [
        (
            "web1",
            "tapweb1-000000",
            "fa:16:3e:00:00:01",
            "198.18.1.1",
            "fd00::1:1",
        ),
        (
            "web2",
            "tapweb2-000000",
            "fa:16:3e:00:00:02",
            "198.18.1.2",
            "fd00::1:2",
        ),
        (
            "web3",
            "tapweb3-000000",
            "fa:16:3e:00:00:03",
            "198.18.1.3",
            "fd00::1:3",
        ),
        (
            "db1",
            "tapdb1-0000000",
            "fa:16:3e:00:00:11",
            "198.18.2.1",
            "fd00::2:1",
        ),
        (
            "db2",
            "tapdb2-0000000",
            "fa:16:3e:00:00:12",
            "198.18.2.2",
            "fd00::2:2",
        ),
        (
            "client",
            "client0",
            "02:00:00:00:00:99",
            "198.18.3.1",
            "fd00::3:1",
        ),
    ];
    for (name, tap, mac, v4, v6) in hosts {
        lab.add_host(name, tap, mac, v4, v6);
        lab.serve(name, &[22, 80, 443, 3306, 9999]);
    }
    lab.load(&compiled(&state(true)));

    let web = [
        ("web1", "198.18.1.1", "fd00::1:1"),
        ("web2", "198.18.1.2", "fd00::1:2"),
        ("web3", "198.18.1.3", "fd00::1:3"),
    ];
    let db = [
        ("db1", "198.18.2.1", "fd00::2:1"),
        ("db2", "198.18.2.2", "fd00::2:2"),
    ];
    for (_, v4, v6) in web {
        for addr in [v4, v6] {
            assert!(lab.open("client", addr, 80, None), "client → {addr}:80");
            assert!(lab.open("client", addr, 443, None), "client → {addr}:443");
            assert!(
                !lab.open("client", addr, 22, None),
                "client → {addr}:22 must be dropped"
            );
        }
    }
    for (_, v4, v6) in db {
        for addr in [v4, v6] {
            assert!(
                !lab.open("client", addr, 3306, None),
                "client → {addr}:3306 must be dropped"
            );
            assert!(lab.open("web2", addr, 3306, None), "web2 → {addr}:3306");
            assert!(
                !lab.open("web2", addr, 22, None),
                "web2 → {addr}:22 must be dropped"
            );
        }
    }
    assert!(
        !lab.open("db2", "198.18.2.1", 3306, None),
        "db2 is not in web"
    );
    // Egress is allowed (to the outside client).
    assert!(lab.open("db1", "198.18.3.1", 9999, None));
    assert!(lab.open("web3", "fd00::3:1", 9999, None));
    // A forged source address from web1 is dropped.
    lab.exec(
        "web1",
        &["ip", "addr", "add", "198.18.1.99/32", "dev", "eth0"],
    );
    assert!(
        lab.open("web1", "198.18.3.1", 9999, Some("198.18.1.1")),
        "web1 from its own address"
    );
    assert!(
        !lab.open("web1", "198.18.3.1", 9999, Some("198.18.1.99")),
        "web1 with a forged source must be dropped"
    );
    // web1 leaves the web group: it can no longer reach 3306 (or serve 80).
    assert!(lab.open("web1", "198.18.2.1", 3306, None));
    lab.load(&compiled(&state(false)));
    assert!(
        !lab.open("web1", "198.18.2.1", 3306, None),
        "after leaving web, web1 → db1:3306 must be dropped"
    );
    assert!(!lab.open("web1", "fd00::2:1", 3306, None));
    assert!(
        !lab.open("client", "198.18.1.1", 80, None),
        "web1 has no groups now"
    );
    assert!(lab.open("web2", "198.18.2.1", 3306, None), "web2 still can");
}
