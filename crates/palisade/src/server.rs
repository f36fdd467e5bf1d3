//! `palisade server`: the API on the embedded SQLite store.

use clap::Args;
use palisade_server::http::{serve, AppState};
use palisade_server::{Service, ServiceConfig};
use palisade_store::SqliteStore;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// Options of `palisade server`.
#[derive(Args, Debug)]
pub struct ServerArgs {
    /// Address to listen on.
    #[arg(long, env = "PALISADE_LISTEN", default_value = "127.0.0.1:9696")]
    listen: SocketAddr,
    /// Directory for the store (palisade.db) and the admin token; created if missing.
    #[arg(long, env = "PALISADE_DATA_DIR", default_value = "./palisade-data")]
    data_dir: PathBuf,
    /// Base URL clients should use (service catalog, links); default: http://<listen address>.
    #[arg(long, env = "PALISADE_PUBLIC_URL")]
    public_url: Option<String>,
    /// Lifetime of tokens issued by password login, in seconds.
    #[arg(long, env = "PALISADE_TOKEN_TTL", default_value_t = 3600)]
    token_ttl: i64,
    /// Revisions of change history kept for watchers to resume from.
    #[arg(long, env = "PALISADE_HISTORY", default_value_t = 100_000, value_parser = clap::value_parser!(i64).range(1000..))]
    history: i64,
    /// Shared key for agents signing as `Metal-View` (read everything, report status).
    #[arg(long, env = "PALISADE_HMAC_VIEW_KEY", hide_env_values = true)]
    hmac_view_key: Option<String>,
    /// Shared key for agents signing as `Metal-Edit` (cloud admin on the networking API).
    #[arg(long, env = "PALISADE_HMAC_EDIT_KEY", hide_env_values = true)]
    hmac_edit_key: Option<String>,
    /// Shared key for agents signing as `Metal-Admin` (everything an admin token may do).
    #[arg(long, env = "PALISADE_HMAC_ADMIN_KEY", hide_env_values = true)]
    hmac_admin_key: Option<String>,
    /// Store: `sqlite` (embedded, in --data-dir) or `etcd` (several replicas can share it).
    #[arg(long = "store", env = "PALISADE_STORE", value_parser = ["sqlite", "etcd"], default_value = "sqlite")]
    store_kind: String,
    /// etcd client URLs, comma-separated (with --store etcd).
    #[arg(long, env = "PALISADE_ETCD_ENDPOINTS", value_delimiter = ',')]
    etcd_endpoints: Vec<String>,
    /// Key prefix of this Palisade in etcd.
    #[arg(long, env = "PALISADE_ETCD_PREFIX", default_value = "/palisade/")]
    etcd_prefix: String,
    /// PEM CA certificate for TLS to etcd.
    #[arg(long, env = "PALISADE_ETCD_CA_FILE")]
    etcd_ca_file: Option<PathBuf>,
    /// PEM client certificate for TLS to etcd (with --etcd-key-file).
    #[arg(long, env = "PALISADE_ETCD_CERT_FILE", requires = "etcd_key_file")]
    etcd_cert_file: Option<PathBuf>,
    /// PEM client key for TLS to etcd.
    #[arg(long, env = "PALISADE_ETCD_KEY_FILE", requires = "etcd_cert_file")]
    etcd_key_file: Option<PathBuf>,
    /// Log format.
    #[arg(long, value_parser = ["text", "json"], default_value = "text")]
    log_format: String,
}

pub async fn run(args: ServerArgs) -> anyhow::Result<()> {
    crate::init_logging(&args.log_format);
    if args.token_ttl < 1 {
        anyhow::bail!(
            "--token-ttl: {} is not a positive number of seconds",
            args.token_ttl
        );
    }
    std::fs::create_dir_all(&args.data_dir).map_err(|e| {
        anyhow::anyhow!(
            "cannot create data directory {}: {e}",
            args.data_dir.display()
        )
    })?;
    let db = args.data_dir.join("palisade.db");
    let (store, store_name): (Arc<dyn palisade_store::Store>, String) =
        match args.store_kind.as_str() {
            "etcd" => {
                anyhow::ensure!(
                    !args.etcd_endpoints.is_empty(),
                    "--store etcd needs --etcd-endpoints URL[,URL…]"
                );
                let read = |p: &Option<PathBuf>, flag: &str| -> anyhow::Result<Option<Vec<u8>>> {
                    p.as_ref()
                        .map(|p| {
                            std::fs::read(p)
                                .map_err(|e| anyhow::anyhow!("{flag} {}: {e}", p.display()))
                        })
                        .transpose()
                };
                let cfg = palisade_store::EtcdConfig {
                    endpoints: args.etcd_endpoints.clone(),
                    prefix: args.etcd_prefix.clone(),
                    ca_cert: read(&args.etcd_ca_file, "--etcd-ca-file")?,
                    client_cert: match (
                        read(&args.etcd_cert_file, "--etcd-cert-file")?,
                        read(&args.etcd_key_file, "--etcd-key-file")?,
                    ) {
                        (Some(c), Some(k)) => Some((c, k)),
                        _ => None,
                    },
                    timeout: std::time::Duration::from_secs(2),
                };
                let store = palisade_store::EtcdStore::connect(cfg).await.map_err(|e| {
                    anyhow::anyhow!(
                        "cannot reach etcd at {}: {e}",
                        args.etcd_endpoints.join(",")
                    )
                })?;
                (
                    Arc::new(store),
                    format!(
                        "etcd {} prefix {}",
                        args.etcd_endpoints.join(","),
                        args.etcd_prefix
                    ),
                )
            }
            _ => {
                let store = SqliteStore::open(&db)
                    .map_err(|e| anyhow::anyhow!("cannot open store {}: {e}", db.display()))?;
                (Arc::new(store), db.display().to_string())
            }
        };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.listen))?;
    let local = listener.local_addr()?;
    let url = args
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{local}"))
        .trim_end_matches('/')
        .to_string();
    let admin =
        palisade_server::bootstrap::ensure_admin(store.as_ref(), &args.data_dir, &url).await?;
    let service = Service::new(store, ServiceConfig::default()).await?;
    println!("Palisade is serving the Neutron v2.0 API at {url}/v2.0 and Keystone v3 at {url}/identity/v3");
    if admin.created || admin.password.is_some() {
        println!(
            "Created the admin project {} with user 'admin' and an admin token. Credentials (mode 0600):",
            admin.project_id
        );
        println!("  {}   openstack CLI: source it", admin.openrc.display());
        println!("  {}    openstack CLI: --os-cloud palisade (with OS_CLIENT_CONFIG_FILE pointing at it)", admin.clouds.display());
        println!(
            "  {}    static token for X-Auth-Token / PALISADE_TOKEN",
            admin.token_file.display()
        );
        println!("Try:");
        println!(
            "  source {} && openstack security group list",
            admin.openrc.display()
        );
        println!(
            "  PALISADE_URL={url} PALISADE_TOKEN=$(cat {}) palisade security group list",
            admin.token_file.display()
        );
    } else {
        println!(
            "Credentials: {}, {}, {}",
            admin.openrc.display(),
            admin.clouds.display(),
            admin.token_file.display()
        );
    }
    tracing::info!(listen = %local, store = %store_name, "serving");
    let service = Arc::new(service);
    tokio::spawn(maintenance(service.clone(), args.history));
    let state = AppState {
        service,
        public_url: Some(url),
        lists: Default::default(),
        token_ttl_secs: args.token_ttl,
        hmac: Arc::new(palisade_server::agents::HmacKeys {
            view: hmac_key(args.hmac_view_key.as_deref(), "--hmac-view-key")?,
            edit: hmac_key(args.hmac_edit_key.as_deref(), "--hmac-edit-key")?,
            admin: hmac_key(args.hmac_admin_key.as_deref(), "--hmac-admin-key")?,
        }),
        agents: Default::default(),
        watch_batches: Default::default(),
    };
    serve(listener, state, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// A configured HMAC key: at least 16 bytes, so a typo cannot leave a guessable key.
fn hmac_key(key: Option<&str>, flag: &str) -> anyhow::Result<Option<Vec<u8>>> {
    match key {
        None | Some("") => Ok(None),
        Some(k) if k.len() < 16 => {
            anyhow::bail!(
                "{flag}: a key must have at least 16 characters (got {})",
                k.len()
            )
        }
        Some(k) => Ok(Some(k.as_bytes().to_vec())),
    }
}

/// Every minute: drop expired tokens, and compact the store's change history to the last
/// `history` revisions (watchers further behind get 410 and read a new snapshot).
async fn maintenance(service: Arc<Service>, history: i64) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        tick.tick().await;
        match service.sweep_expired_tokens().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(tokens = n, "expired tokens removed"),
            Err(e) => tracing::warn!(error = %e, "token sweep failed"),
        }
        if let Ok(rev) = service.store().revision().await {
            if rev > history {
                if let Err(e) = service.store().compact(rev - history).await {
                    tracing::warn!(error = %e, "history compaction failed");
                }
            }
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
