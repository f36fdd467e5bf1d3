//! `palisade agent`: the host/firewall agent.

use clap::Args;
use std::path::PathBuf;

/// Options of `palisade agent`.
#[derive(Args, Debug)]
pub struct AgentArgs {
    /// The config file (metal-stack MEP-16 format; see docs/examples/).
    #[arg(long, env = "PALISADE_AGENT_CONFIG")]
    config: PathBuf,
    /// Apply once (after the first snapshot when a server is the source) and exit.
    #[arg(long)]
    once: bool,
    /// Print the ruleset and every delta instead of touching the kernel or the rule file.
    #[arg(long)]
    dry_run: bool,
    /// Spawn `nft -f` for every apply instead of using libnftables in-process.
    #[arg(long)]
    spawn_nft: bool,
    /// Log format.
    #[arg(long, value_parser = ["text", "json"], default_value = "text")]
    log_format: String,
}

pub async fn run(args: AgentArgs) -> anyhow::Result<()> {
    crate::init_logging(&args.log_format);
    let cfg = palisade_agent::config::Config::load(&args.config)?;
    tracing::info!(name = %cfg.name, rule_file = %cfg.rule_file.display(), "agent starting");
    let opts = palisade_agent::agent::Options {
        once: args.once,
        dry_run: args.dry_run,
        spawn_nft: args.spawn_nft,
        observer: None,
    };
    tokio::select! {
        r = palisade_agent::agent::run(cfg, opts) => r?,
        _ = shutdown() => tracing::info!("stopped; the ruleset in force stays"),
    }
    Ok(())
}

async fn shutdown() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}
