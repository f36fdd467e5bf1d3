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
    /// Base URL clients should use (links, version document); default: from the Host header.
    #[arg(long, env = "PALISADE_PUBLIC_URL")]
    public_url: Option<String>,
    /// Log format.
    #[arg(long, value_parser = ["text", "json"], default_value = "text")]
    log_format: String,
}

pub async fn run(args: ServerArgs) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if args.log_format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
    std::fs::create_dir_all(&args.data_dir).map_err(|e| {
        anyhow::anyhow!(
            "cannot create data directory {}: {e}",
            args.data_dir.display()
        )
    })?;
    let db = args.data_dir.join("palisade.db");
    let store = SqliteStore::open(&db)
        .map_err(|e| anyhow::anyhow!("cannot open store {}: {e}", db.display()))?;
    let store: Arc<dyn palisade_store::Store> = Arc::new(store);
    let admin = palisade_server::bootstrap::ensure_admin(store.as_ref(), &args.data_dir).await?;
    let service = Service::new(store, ServiceConfig::default()).await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.listen))?;
    let local = listener.local_addr()?;
    let url = args
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{local}"));
    if admin.created {
        println!("Palisade is serving the Neutron v2.0 API at {url}/v2.0");
        println!(
            "Created the admin project {} and an admin token, saved in {} (mode 0600).",
            admin.project_id,
            admin.token_file.display()
        );
        println!("Use it with:");
        println!("  export PALISADE_URL={url}");
        println!(
            "  export PALISADE_TOKEN=$(cat {})",
            admin.token_file.display()
        );
        println!("  palisade security group list");
        println!("  curl -H \"X-Auth-Token: $PALISADE_TOKEN\" {url}/v2.0/security-groups");
    } else {
        println!(
            "Palisade is serving the Neutron v2.0 API at {url}/v2.0 (admin token in {})",
            admin.token_file.display()
        );
    }
    tracing::info!(listen = %local, store = %db.display(), "serving");
    let state = AppState {
        service: Arc::new(service),
        public_url: args.public_url,
        lists: Default::default(),
    };
    serve(listener, state, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
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
