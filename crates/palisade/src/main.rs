//! `palisade`: the one binary. `server` runs the API; `security group …`, `port …`,
//! `network …` and `quota …` speak the openstack CLI's grammar against it; `bench api`
//! measures any Neutron-compatible endpoint.

mod bench;
mod commands;
mod output;
mod server;

use clap::{Args, Parser, Subcommand};
use output::{Format, Output};

/// Palisade: security groups with Neutron's API, enforced by nftables.
#[derive(Parser, Debug)]
#[command(name = "palisade", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// How client commands reach the server.
#[derive(Args, Debug, Clone)]
pub struct Conn {
    /// Server URL.
    #[arg(
        long,
        env = "PALISADE_URL",
        default_value = "http://127.0.0.1:9696",
        global = true
    )]
    pub url: String,
    /// API token (the server writes the admin token to <data-dir>/admin-token).
    #[arg(long, env = "PALISADE_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// Output format.
    #[arg(short = 'f', long = "format", value_enum, default_value_t = Format::Table, global = true)]
    pub format: Format,
    /// Show only this column (repeatable).
    #[arg(short = 'c', long = "column", global = true)]
    pub columns: Vec<String>,
}

impl Conn {
    fn client(&self) -> anyhow::Result<palisade_client::Client> {
        let token = self.token.as_deref().ok_or_else(|| {
            anyhow::anyhow!("no token: pass --token or set PALISADE_TOKEN (the server wrote the admin token to <data-dir>/admin-token)")
        })?;
        Ok(palisade_client::Client::new(&self.url, token)?)
    }
    fn output(&self) -> Output {
        Output {
            format: self.format,
            columns: self.columns.clone(),
        }
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the API server.
    Server(server::ServerArgs),
    /// Security groups and their rules (`palisade security group …`).
    Security {
        #[command(subcommand)]
        what: commands::SecurityCmd,
        #[command(flatten)]
        conn: Conn,
    },
    /// Ports.
    Port {
        #[command(subcommand)]
        cmd: commands::PortCmd,
        #[command(flatten)]
        conn: Conn,
    },
    /// Networks.
    Network {
        #[command(subcommand)]
        cmd: commands::NetworkCmd,
        #[command(flatten)]
        conn: Conn,
    },
    /// Quotas.
    Quota {
        #[command(subcommand)]
        cmd: commands::QuotaCmd,
        #[command(flatten)]
        conn: Conn,
    },
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        cmd: bench::BenchCmd,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async move {
        match cli.command {
            Command::Server(args) => server::run(args).await,
            Command::Security { what, conn } => commands::security(what, &conn).await,
            Command::Port { cmd, conn } => commands::port(cmd, &conn).await,
            Command::Network { cmd, conn } => commands::network(cmd, &conn).await,
            Command::Quota { cmd, conn } => commands::quota(cmd, &conn).await,
            Command::Bench { cmd } => bench::run(cmd).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
