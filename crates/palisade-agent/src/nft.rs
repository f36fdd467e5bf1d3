//! Applying nft scripts: through libnftables loaded once into the process (one long-lived
//! context: no process start, no cache reload of the whole namespace per change), or by
//! spawning `nft -f -` where the library is missing. Either way one script is one kernel
//! transaction: a failed batch changes nothing.
//!
//! Also the ruleset generation id (netlink `NFT_MSG_GETGEN`), which the kernel bumps on
//! every committed change in the namespace: the cheap test for "did anybody else touch
//! nftables since our last apply".

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::sync::mpsc;

/// Failures applying a script.
#[derive(Debug, Clone, thiserror::Error)]
pub enum NftError {
    /// The kernel or nft refused the batch (nothing changed).
    #[error("nft refused the transaction: {0}")]
    Refused(String),
    /// nft could not be run.
    #[error("cannot run nft: {0}")]
    Unavailable(String),
}

type NewFn = unsafe extern "C" fn(u32) -> *mut c_void;
type CtxFn = unsafe extern "C" fn(*mut c_void) -> c_int;
type GetBufFn = unsafe extern "C" fn(*mut c_void) -> *const c_char;
type RunFn = unsafe extern "C" fn(*mut c_void, *const c_char) -> c_int;

/// libnftables, loaded at run time (Debian's `libnftables1`, which `nft` itself uses).
struct Lib {
    _lib: libloading::Library,
    ctx: *mut c_void,
    run: RunFn,
    err: GetBufFn,
    out: GetBufFn,
}

impl Lib {
    fn load() -> Result<Lib, String> {
        // SAFETY: loading the system's libnftables runs its initialisers, which only set
        // up its own state; the symbols are called with the C signatures of its stable API
        // (nftables/libnftables.h).
        unsafe {
            let lib = libloading::Library::new("libnftables.so.1").map_err(|e| e.to_string())?;
            let new: NewFn = *lib
                .get::<NewFn>(b"nft_ctx_new\0")
                .map_err(|e| e.to_string())?;
            let buffer_out: CtxFn = *lib
                .get::<CtxFn>(b"nft_ctx_buffer_output\0")
                .map_err(|e| e.to_string())?;
            let buffer_err: CtxFn = *lib
                .get::<CtxFn>(b"nft_ctx_buffer_error\0")
                .map_err(|e| e.to_string())?;
            let err: GetBufFn = *lib
                .get::<GetBufFn>(b"nft_ctx_get_error_buffer\0")
                .map_err(|e| e.to_string())?;
            let run: RunFn = *lib
                .get::<RunFn>(b"nft_run_cmd_from_buffer\0")
                .map_err(|e| e.to_string())?;
            let out: GetBufFn = *lib
                .get::<GetBufFn>(b"nft_ctx_get_output_buffer\0")
                .map_err(|e| e.to_string())?;
            let ctx = new(0);
            if ctx.is_null() {
                return Err("nft_ctx_new failed".into());
            }
            buffer_out(ctx);
            buffer_err(ctx);
            Ok(Lib {
                _lib: lib,
                ctx,
                run,
                err,
                out,
            })
        }
    }

    fn apply(&mut self, script: &str) -> Result<(), NftError> {
        self.run(script).map(drop)
    }

    /// Runs `script`; its output on success.
    fn run(&mut self, script: &str) -> Result<String, NftError> {
        let c = CString::new(script)
            .map_err(|_| NftError::Refused("the script contains a NUL byte".into()))?;
        // SAFETY: ctx is a live context owned by this struct and used from one thread; the
        // buffers returned by the library stay valid until the next call on ctx.
        unsafe {
            let rc = (self.run)(self.ctx, c.as_ptr());
            if rc == 0 {
                let o = (self.out)(self.ctx);
                Ok(if o.is_null() {
                    String::new()
                } else {
                    CStr::from_ptr(o).to_string_lossy().into_owned()
                })
            } else {
                let e = (self.err)(self.ctx);
                let msg = if e.is_null() {
                    String::new()
                } else {
                    CStr::from_ptr(e).to_string_lossy().into_owned()
                };
                Err(NftError::Refused(msg.trim().to_string()))
            }
        }
    }
}

fn spawn_apply(script: &str) -> Result<(), NftError> {
    spawn_run(script).map(drop)
}

/// Runs `script` with a spawned `nft -f -`; its output on success.
fn spawn_run(script: &str) -> Result<String, NftError> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| NftError::Unavailable(e.to_string()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(|e| NftError::Unavailable(e.to_string()))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| NftError::Unavailable(e.to_string()))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(NftError::Refused(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ))
    }
}

/// What the applier thread is asked to do.
enum Job {
    /// Apply a script as one transaction.
    Apply(String, mpsc::Sender<Result<(), NftError>>),
    /// List these tables (`family name`), counters stripped; a missing table lists empty.
    List(Vec<String>, mpsc::Sender<Result<String, NftError>>),
}

/// `counter packets N bytes M` → `counter`: traffic is not drift.
fn strip_counters(listing: &str) -> String {
    const PAT: &str = "counter packets ";
    let digits = |s: &str| s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let mut out = String::with_capacity(listing.len());
    let mut rest = listing;
    while let Some(i) = rest.find(PAT) {
        let after = &rest[i + PAT.len()..];
        let n = digits(after);
        let bytes = after[n..].strip_prefix(" bytes ").filter(|_| n > 0);
        match bytes.map(|t| (t, digits(t))) {
            Some((t, m)) if m > 0 => {
                out.push_str(&rest[..i]);
                out.push_str("counter");
                rest = &t[m..];
            }
            _ => {
                out.push_str(&rest[..i + PAT.len()]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The applier: a thread owning the libnftables context (or spawning `nft`), taking one
/// script at a time.
#[derive(Clone)]
pub struct Applier {
    tx: mpsc::Sender<Job>,
    /// `libnftables` or `nft -f` (spawned).
    pub mode: &'static str,
}

impl Applier {
    /// Starts the applier thread; `spawn_only` forces spawning `nft` (for comparison).
    pub fn start(spawn_only: bool) -> Applier {
        let (tx, rx) = mpsc::channel::<Job>();
        let (mode_tx, mode_rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("nft-applier".into())
            .spawn(move || {
                let mut lib = if spawn_only { None } else { Lib::load().ok() };
                let _ = mode_tx.send(if lib.is_some() {
                    "libnftables"
                } else {
                    "nft -f (spawned)"
                });
                for job in rx {
                    match job {
                        Job::Apply(script, reply) => {
                            let r = match lib.as_mut() {
                                Some(l) => l.apply(&script),
                                None => spawn_apply(&script),
                            };
                            let _ = reply.send(r);
                        }
                        Job::List(tables, reply) => {
                            let mut all = String::new();
                            let mut failed = None;
                            for t in &tables {
                                let cmd = format!("list table {t}");
                                let r = match lib.as_mut() {
                                    Some(l) => l.run(&cmd),
                                    None => spawn_run(&cmd),
                                };
                                match r {
                                    Ok(text) => all.push_str(&strip_counters(&text)),
                                    Err(NftError::Refused(e)) if e.contains("No such file") => {}
                                    Err(e) => failed = Some(e),
                                }
                            }
                            let _ = reply.send(match failed {
                                Some(e) => Err(e),
                                None => Ok(all),
                            });
                        }
                    }
                }
                if let Some(l) = lib {
                    // SAFETY: the context is freed once, after its last use.
                    unsafe {
                        if let Ok(free) = l
                            ._lib
                            .get::<unsafe extern "C" fn(*mut c_void)>(b"nft_ctx_free\0")
                        {
                            free(l.ctx);
                        }
                    }
                }
            })
            .ok();
        let mode = mode_rx.recv().unwrap_or("unavailable");
        Applier { tx, mode }
    }

    /// Applies one script as one transaction (blocking; call from a blocking context).
    pub fn apply_blocking(&self, script: &str) -> Result<(), NftError> {
        let (reply, rx) = mpsc::channel();
        self.tx
            .send(Job::Apply(script.to_string(), reply))
            .map_err(|_| NftError::Unavailable("applier thread gone".into()))?;
        rx.recv()
            .map_err(|_| NftError::Unavailable("applier thread gone".into()))?
    }

    /// The listing of `tables` (`inet palisade`, …) without counters: what is in force.
    pub async fn list(&self, tables: Vec<String>) -> Result<String, NftError> {
        let (reply, rx) = mpsc::channel();
        self.tx
            .send(Job::List(tables, reply))
            .map_err(|_| NftError::Unavailable("applier thread gone".into()))?;
        tokio::task::spawn_blocking(move || rx.recv())
            .await
            .map_err(|e| NftError::Unavailable(e.to_string()))?
            .map_err(|_| NftError::Unavailable("applier thread gone".into()))?
    }

    /// Applies one script as one transaction.
    pub async fn apply(&self, script: String) -> Result<(), NftError> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.apply_blocking(&script))
            .await
            .map_err(|e| NftError::Unavailable(e.to_string()))?
    }
}

/// The namespace's nftables ruleset generation (bumped by every committed change).
pub fn ruleset_genid() -> std::io::Result<u32> {
    const NFNL_SUBSYS_NFTABLES: u16 = 10;
    const NFT_MSG_GETGEN: u16 = 16;
    const NFTA_GEN_ID: u16 = 1;
    // SAFETY: plain socket syscalls on a descriptor owned here and closed on every path;
    // buffers are local and their lengths are passed with them.
    unsafe {
        let fd = libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_NETFILTER,
        );
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let close = |r| {
            libc::close(fd);
            r
        };
        let mut msg = [0u8; 20];
        msg[0..4].copy_from_slice(&20u32.to_ne_bytes());
        msg[4..6].copy_from_slice(&((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETGEN).to_ne_bytes());
        msg[6..8].copy_from_slice(&(libc::NLM_F_REQUEST as u16).to_ne_bytes());
        msg[8..12].copy_from_slice(&1u32.to_ne_bytes());
        // nfgenmsg: family AF_UNSPEC, version 0, res_id 0.
        let mut addr: libc::sockaddr_nl = std::mem::zeroed();
        addr.nl_family = libc::AF_NETLINK as u16;
        let sent = libc::sendto(
            fd,
            msg.as_ptr() as *const c_void,
            msg.len(),
            0,
            &addr as *const libc::sockaddr_nl as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_nl>() as u32,
        );
        if sent < 0 {
            return close(Err(std::io::Error::last_os_error()));
        }
        let mut buf = [0u8; 4096];
        let n = libc::recv(fd, buf.as_mut_ptr() as *mut c_void, buf.len(), 0);
        if n < 0 {
            return close(Err(std::io::Error::last_os_error()));
        }
        let n = n as usize;
        libc::close(fd);
        if n < 20 {
            return Err(std::io::Error::other("short netlink answer"));
        }
        let ty = u16::from_ne_bytes([buf[4], buf[5]]);
        if ty == libc::NLMSG_ERROR as u16 {
            let code = i32::from_ne_bytes([buf[16], buf[17], buf[18], buf[19]]);
            return Err(std::io::Error::from_raw_os_error(-code));
        }
        let len = (u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize).min(n);
        let mut off = 20;
        while off + 4 <= len {
            let alen = u16::from_ne_bytes([buf[off], buf[off + 1]]) as usize;
            let aty = u16::from_ne_bytes([buf[off + 2], buf[off + 3]]) & 0x3fff;
            if alen < 4 {
                break;
            }
            if aty == NFTA_GEN_ID && alen >= 8 && off + 8 <= len {
                return Ok(u32::from_be_bytes([
                    buf[off + 4],
                    buf[off + 5],
                    buf[off + 6],
                    buf[off + 7],
                ]));
            }
            off += (alen + 3) & !3;
        }
        Err(std::io::Error::other("no generation id in the answer"))
    }
}

#[cfg(test)]
mod tests {
    use super::strip_counters;

    #[test]
    fn counters_are_not_drift() {
        assert_eq!(
            strip_counters("ip saddr 1.2.3.4 counter packets 12 bytes 3400 accept\ncounter packets 0 bytes 0 comment \"x\"\n"),
            "ip saddr 1.2.3.4 counter accept\ncounter comment \"x\"\n"
        );
        assert_eq!(strip_counters("no counters here"), "no counters here");
    }
}
