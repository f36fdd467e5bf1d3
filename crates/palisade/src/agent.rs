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
    /// Check the config file and exit: 0 and a summary when it is valid, 78 (EX_CONFIG) and
    /// the offending key when not. Touches nothing and calls no server.
    #[arg(long, conflicts_with_all = ["once", "dry_run"])]
    check: bool,
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
    if args.check {
        let source = |s: Option<palisade_agent::config::SourceKind>| {
            s.map_or("off".to_string(), |k| format!("{k:?}").to_lowercase())
        };
        println!(
            "{}: valid. name {}, security groups from {}, firewall from {}, rule file {}, resync every {:?}",
            args.config.display(),
            cfg.name,
            source(cfg.securitygroups),
            source(cfg.firewall),
            cfg.rule_file.display(),
            cfg.resync,
        );
        return Ok(());
    }
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
