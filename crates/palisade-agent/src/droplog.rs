//! The droptailer: packets the ruleset drops are logged by the kernel to an NFLOG group
//! (rate-limited in the rule itself), read here over nfnetlink and written as JSON lines
//! naming the port, direction, addresses, ports, protocol and reason. The rule's log prefix
//! carries `palisade:<port or chain>:<direction>:<reason>`.

use std::io::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;

const NFNL_SUBSYS_ULOG: u16 = 4;
const NFULNL_MSG_PACKET: u16 = 0;
const NFULNL_MSG_CONFIG: u16 = 1;
const NFULA_CFG_CMD: u16 = 1;
const NFULA_CFG_MODE: u16 = 2;
const NFULNL_CFG_CMD_BIND: u8 = 1;
const NFULNL_COPY_PACKET: u8 = 2;
const NFULA_PAYLOAD: u16 = 9;
const NFULA_PREFIX: u16 = 10;

/// Lines written per second at most (the kernel's limit comes first; this guards the disk).
const MAX_LINES_PER_SEC: u32 = 200;

/// The drop log is rotated (to `<path>.1`, replacing the previous one) at this size, so it
/// never holds more than twice this on disk.
pub const ROTATE_BYTES: u64 = 64 << 20;

fn nl_msg(ty: u16, flags: u16, group: u16, attrs: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut m = vec![0u8; 16];
    m.extend_from_slice(&[libc::AF_UNSPEC as u8, 0]);
    m.extend_from_slice(&group.to_be_bytes());
    for (t, v) in attrs {
        let len = 4 + v.len();
        m.extend_from_slice(&(len as u16).to_ne_bytes());
        m.extend_from_slice(&t.to_ne_bytes());
        m.extend_from_slice(v);
        while !m.len().is_multiple_of(4) {
            m.push(0);
        }
    }
    let len = m.len() as u32;
    m[0..4].copy_from_slice(&len.to_ne_bytes());
    m[4..6].copy_from_slice(&ty.to_ne_bytes());
    m[6..8].copy_from_slice(&flags.to_ne_bytes());
    m
}

/// A bound NFLOG socket.
pub struct NflogSocket(i32);

impl Drop for NflogSocket {
    fn drop(&mut self) {
        // SAFETY: the descriptor is owned by this value and closed once.
        unsafe {
            libc::close(self.0);
        }
    }
}

impl NflogSocket {
    /// Binds to NFLOG `group` in the current network namespace.
    pub fn bind(group: u16) -> std::io::Result<NflogSocket> {
        // SAFETY: socket syscalls on a descriptor owned by the returned value; buffers are
        // local with their lengths passed along.
        unsafe {
            let fd = libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_NETFILTER,
            );
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let s = NflogSocket(fd);
            let mut addr: libc::sockaddr_nl = std::mem::zeroed();
            addr.nl_family = libc::AF_NETLINK as u16;
            if libc::bind(
                fd,
                &addr as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_nl>() as u32,
            ) < 0
            {
                return Err(std::io::Error::last_os_error());
            }
            let ty = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG;
            let flags = (libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16;
            let mut mode = 256u32.to_be_bytes().to_vec();
            mode.extend_from_slice(&[NFULNL_COPY_PACKET, 0]);
            for msg in [
                nl_msg(
                    ty,
                    flags,
                    group,
                    &[(NFULA_CFG_CMD, vec![NFULNL_CFG_CMD_BIND])],
                ),
                nl_msg(ty, flags, group, &[(NFULA_CFG_MODE, mode)]),
            ] {
                if libc::send(fd, msg.as_ptr() as *const libc::c_void, msg.len(), 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let mut buf = [0u8; 1024];
                let n = libc::recv(fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len(), 0);
                if n >= 20 && u16::from_ne_bytes([buf[4], buf[5]]) == libc::NLMSG_ERROR as u16 {
                    let code = i32::from_ne_bytes([buf[16], buf[17], buf[18], buf[19]]);
                    if code != 0 {
                        return Err(std::io::Error::from_raw_os_error(-code));
                    }
                }
            }
            Ok(s)
        }
    }

    /// Blocks for the next batch of logged packets: (prefix, payload).
    pub fn recv(&self) -> std::io::Result<Vec<(String, Vec<u8>)>> {
        let mut buf = vec![0u8; 65536];
        // SAFETY: recv into a local buffer of the given length.
        let n = unsafe { libc::recv(self.0, buf.as_mut_ptr() as *mut libc::c_void, buf.len(), 0) };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let n = n as usize;
        let mut out = Vec::new();
        let mut off = 0;
        while off + 16 <= n {
            let len =
                u32::from_ne_bytes([buf[off], buf[off + 1], buf[off + 2], buf[off + 3]]) as usize;
            let ty = u16::from_ne_bytes([buf[off + 4], buf[off + 5]]);
            if len < 16 || off + len > n {
                break;
            }
            if ty == (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET {
                let (mut prefix, mut payload) = (String::new(), Vec::new());
                let mut a = off + 20;
                while a + 4 <= off + len {
                    let alen = u16::from_ne_bytes([buf[a], buf[a + 1]]) as usize;
                    let aty = u16::from_ne_bytes([buf[a + 2], buf[a + 3]]) & 0x3fff;
                    if alen < 4 || a + alen > off + len {
                        break;
                    }
                    let v = &buf[a + 4..a + alen];
                    match aty {
                        NFULA_PREFIX => {
                            prefix = String::from_utf8_lossy(v)
                                .trim_end_matches('\0')
                                .to_string()
                        }
                        NFULA_PAYLOAD => payload = v.to_vec(),
                        _ => {}
                    }
                    a += (alen + 3) & !3;
                }
                out.push((prefix, payload));
            }
            off += (len + 3) & !3;
        }
        Ok(out)
    }
}

/// One dropped packet, as logged.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DroppedPacket {
    /// the port (or the firewall's chain)
    pub port: String,
    /// ingress / egress / forward
    pub direction: String,
    /// default drop, spoofed source address, cwnp, …
    pub reason: String,
    /// source address
    pub src: Option<IpAddr>,
    /// destination address
    pub dst: Option<IpAddr>,
    /// protocol number
    pub proto: Option<u8>,
    /// source port
    pub sport: Option<u16>,
    /// destination port
    pub dport: Option<u16>,
}

/// Decodes a logged packet (IPv4 or IPv6 header, then TCP/UDP ports).
pub fn decode(prefix: &str, payload: &[u8]) -> DroppedPacket {
    let mut parts = prefix.splitn(4, ':');
    let _ = parts.next();
    let port = parts.next().unwrap_or("").to_string();
    let direction = parts.next().unwrap_or("").to_string();
    let reason = parts.next().unwrap_or("").to_string();
    let (mut src, mut dst, mut proto, mut l4) = (None, None, None, None);
    match payload.first().map(|b| b >> 4) {
        Some(4) if payload.len() >= 20 => {
            let ihl = ((payload[0] & 0x0f) as usize) * 4;
            proto = Some(payload[9]);
            src = Some(IpAddr::from([
                payload[12],
                payload[13],
                payload[14],
                payload[15],
            ]));
            dst = Some(IpAddr::from([
                payload[16],
                payload[17],
                payload[18],
                payload[19],
            ]));
            l4 = payload.get(ihl..);
        }
        Some(6) if payload.len() >= 40 => {
            proto = Some(payload[6]);
            let a: [u8; 16] = payload[8..24].try_into().unwrap_or([0; 16]);
            let b: [u8; 16] = payload[24..40].try_into().unwrap_or([0; 16]);
            src = Some(IpAddr::from(a));
            dst = Some(IpAddr::from(b));
            l4 = payload.get(40..);
        }
        _ => {}
    }
    let (sport, dport) = match (proto, l4) {
        (Some(6 | 17 | 132 | 136), Some(h)) if h.len() >= 4 => (
            Some(u16::from_be_bytes([h[0], h[1]])),
            Some(u16::from_be_bytes([h[2], h[3]])),
        ),
        _ => (None, None),
    };
    DroppedPacket {
        port,
        direction,
        reason,
        src,
        dst,
        proto,
        sport,
        dport,
    }
}

/// Starts the reader thread: NFLOG `group` → JSON lines appended to `path`.
pub fn start(path: PathBuf, group: u16, metrics: std::sync::Arc<crate::metrics::AgentMetrics>) {
    let sock = match NflogSocket::bind(group) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(group, error = %e, "droptailer: cannot bind the NFLOG group");
            return;
        }
    };
    std::thread::Builder::new()
        .name("droptailer".into())
        .spawn(move || {
            if let Some(dir) = path.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            let mut file = match std::fs::OpenOptions::new().create(true).append(true).open(&path) {
                Ok(f) => f,
                Err(e) => {
                    tracing::error!(path = %path.display(), error = %e, "droptailer: cannot open the drop log");
                    return;
                }
            };
            let (mut second, mut written) = (0i64, 0u32);
            let mut size = file.metadata().map(|m| m.len()).unwrap_or(0);
            loop {
                let batch = match sock.recv() {
                    Ok(b) => b,
                    Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => continue,
                    Err(e) => {
                        tracing::error!(error = %e, "droptailer: NFLOG read failed");
                        return;
                    }
                };
                for (prefix, payload) in batch {
                    let now = jiff::Timestamp::now();
                    if now.as_second() != second {
                        second = now.as_second();
                        written = 0;
                    }
                    let d = decode(&prefix, &payload);
                    metrics.dropped(&d.reason, &d.direction);
                    if written >= MAX_LINES_PER_SEC {
                        metrics.drop_lines_suppressed.inc();
                        continue;
                    }
                    written += 1;
                    let mut v = serde_json::to_value(&d).unwrap_or_default();
                    v["time"] = serde_json::json!(now.to_string());
                    let line = format!("{v}\n");
                    size += line.len() as u64;
                    let _ = file.write_all(line.as_bytes());
                    if size >= ROTATE_BYTES {
                        let _ = file.flush();
                        let mut old = path.clone().into_os_string();
                        old.push(".1");
                        let _ = std::fs::rename(&path, &old);
                        match std::fs::OpenOptions::new().create(true).append(true).open(&path) {
                            Ok(f) => {
                                file = f;
                                size = 0;
                            }
                            Err(e) => {
                                tracing::error!(path = %path.display(), error = %e, "droptailer: cannot reopen the drop log");
                                return;
                            }
                        }
                    }
                }
                let _ = file.flush();
            }
        })
        .ok();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_prefix_addresses_and_ports() {
        let mut p = vec![
            0x45, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0, 198, 18, 0, 1, 198, 18, 1, 2,
        ];
        p.extend_from_slice(&[0x9c, 0x40, 0x0c, 0xea, 0, 0, 0, 0]);
        let d = decode("palisade:p-web-1:ingress:default drop", &p);
        assert_eq!(
            (d.port.as_str(), d.direction.as_str(), d.reason.as_str()),
            ("p-web-1", "ingress", "default drop")
        );
        assert_eq!(
            (d.src, d.dst),
            (
                Some("198.18.0.1".parse().expect("ip")),
                Some("198.18.1.2".parse().expect("ip"))
            )
        );
        assert_eq!(
            (d.proto, d.sport, d.dport),
            (Some(6), Some(40000), Some(3306))
        );
        let d = decode("junk", &[1, 2]);
        assert_eq!(
            (d.src, d.dport),
            (None, None),
            "short packets decode to nothing, not a panic"
        );
    }
}
