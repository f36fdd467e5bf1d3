//! `palisade`: the one binary. `server` runs the API; `security group …`, `port …`,
//! `network …` and `quota …` speak the openstack CLI's grammar against it; `bench api`
//! measures any Neutron-compatible endpoint.

mod agent;
mod bench;
mod bench_agent;
mod commands;
mod dataplane;
mod output;
mod reconcile;
mod server;

use clap::{Args, Parser, Subcommand};
use output::{Format, Output};

/// Palisade: security groups with Neutron's API, enforced by nftables.
#[derive(Parser, Debug)]
#[command(name = "palisade", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    conn: Conn,
}

/// How client commands reach the server: a token (`--token`/`PALISADE_TOKEN`) with
/// `--url`, or the openstack CLI's credentials (`--os-cloud`/`OS_CLOUD` with clouds.yaml, or
/// `OS_AUTH_URL`, `OS_USERNAME`, `OS_PASSWORD`, `OS_PROJECT_NAME`, …) logged in through
/// Keystone, the server URL then coming from the catalog.
#[derive(Args, Debug, Clone)]
pub struct Conn {
    /// Server URL (default: the catalog's network endpoint, or http://127.0.0.1:9696).
    #[arg(long, env = "PALISADE_URL", global = true)]
    pub url: Option<String>,
    /// API token (the server writes the admin token to <data-dir>/admin-token).
    #[arg(long, env = "PALISADE_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// A cloud of clouds.yaml ($OS_CLIENT_CONFIG_FILE, ./clouds.yaml, ~/.config/openstack/clouds.yaml, /etc/openstack/clouds.yaml).
    #[arg(long = "os-cloud", env = "OS_CLOUD", global = true)]
    pub os_cloud: Option<String>,
    /// Output format.
    #[arg(short = 'f', long = "format", value_enum, default_value_t = Format::Table, global = true)]
    pub format: Format,
    /// Show only this column (repeatable).
    #[arg(short = 'c', long = "column", global = true)]
    pub columns: Vec<String>,
}

/// Where logged-in tokens are cached (`PALISADE_TOKEN_CACHE`; empty disables).
fn token_cache() -> Option<std::path::PathBuf> {
    match std::env::var("PALISADE_TOKEN_CACHE") {
        Ok(p) if p.is_empty() => None,
        Ok(p) => Some(p.into()),
        Err(_) => std::env::var_os("XDG_CACHE_HOME")
            .map(std::path::PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cache"))
            })
            .map(|d| d.join("palisade/tokens.json")),
    }
}

impl Conn {
    async fn client(&self) -> anyhow::Result<palisade_client::Client> {
        use palisade_client::auth::{session, Credentials};
        if let Some(token) = &self.token {
            let url = self.url.as_deref().unwrap_or("http://127.0.0.1:9696");
            return Ok(palisade_client::Client::new(url, token)?);
        }
        let creds = match &self.os_cloud {
            Some(cloud) => {
                let file = std::env::var_os("OS_CLIENT_CONFIG_FILE").map(std::path::PathBuf::from);
                let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
                Credentials::from_clouds_yaml(cloud, file.as_deref(), home.as_deref())?
            }
            None => Credentials::from_env(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))?.ok_or_else(|| {
                anyhow::anyhow!(
                    "no credentials: pass --token (or PALISADE_TOKEN; the server wrote the admin token to <data-dir>/admin-token), --os-cloud NAME, or source an openrc (OS_AUTH_URL, OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME)"
                )
            })?,
        };
        let s = session(&creds, token_cache().as_deref()).await?;
        let url = self.url.clone().unwrap_or(s.network_url);
        Ok(palisade_client::Client::new(&url, &s.token)?)
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
    /// Run the host/firewall agent (config in the metal-stack MEP-16 format).
    Agent(agent::AgentArgs),
    /// Security groups and their rules (`palisade security group …`).
    Security {
        #[command(subcommand)]
        what: commands::SecurityCmd,
    },
    /// Ports.
    Port {
        #[command(subcommand)]
        cmd: commands::PortCmd,
    },
    /// Networks.
    Network {
        #[command(subcommand)]
        cmd: commands::NetworkCmd,
    },
    /// Identity administration: projects, users, roles (admin).
    Admin {
        #[command(subcommand)]
        cmd: commands::AdminCmd,
    },
    /// Quotas.
    Quota {
        #[command(subcommand)]
        cmd: commands::QuotaCmd,
    },
    /// Managed security groups of Kubernetes clusters from OpenStackCluster manifests.
    Reconcile {
        #[command(subcommand)]
        cmd: reconcile::ReconcileCmd,
    },
    /// Compile a host's view of a state file to nftables text (no server needed).
    Compile(dataplane::CompileArgs),
    /// Explain the verdict for a packet to or from a port of a state file.
    Explain(dataplane::ExplainArgs),
    /// Lint a state file: duplicate and shadowed rules, rules that never match, unused groups,
    /// administrative ports open to the world (exit 1 when there are findings).
    Lint(dataplane::LintArgs),
    /// Draw the security groups, their ports and who may reach whom (SVG by default; `-f dot`
    /// for Graphviz, `-f json`), from a state file or the server.
    Graph(dataplane::GraphArgs),
    /// Which port can open which common service on which other port, computed with
    /// `explain` (text table by default; `-f svg`, `-f html`, `-f json`).
    Matrix(dataplane::MatrixArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Write man pages (palisade.1 and one per subcommand) into a directory.
    Man {
        /// Where to write them.
        #[arg(long, default_value = ".")]
        out: std::path::PathBuf,
    },
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        cmd: bench::BenchCmd,
    },
}

fn main() -> std::process::ExitCode {
    // `palisade reconcile … -f FILE` takes files as kubectl does, while everywhere else
    // `-f` is the output format (as in the openstack CLI): spell it out for clap.
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args
        .iter()
        .skip(1)
        .find(|a| !a.to_string_lossy().starts_with('-'))
        .is_some_and(|a| a == "reconcile")
    {
        for a in args.iter_mut().skip(1) {
            if a == "-f" {
                *a = "--filename".into();
            }
        }
    }
    let cli = Cli::parse_from(args);
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
    let conn = cli.conn;
    let result = rt.block_on(async move {
        match cli.command {
            Command::Server(args) => server::run(args).await,
            Command::Agent(args) => agent::run(args).await,
            Command::Security { what } => commands::security(what, &conn).await,
            Command::Port { cmd } => commands::port(cmd, &conn).await,
            Command::Network { cmd } => commands::network(cmd, &conn).await,
            Command::Quota { cmd } => commands::quota(cmd, &conn).await,
            Command::Admin { cmd } => commands::admin(cmd, &conn).await,
            Command::Bench { cmd } => bench::run(cmd).await,
            Command::Completions { shell } => {
                let mut cmd = <Cli as clap::CommandFactory>::command();
                let mut buf = Vec::new();
                clap_complete::generate(shell, &mut cmd, "palisade", &mut buf);
                use std::io::Write as _;
                match std::io::stdout().write_all(&buf) {
                    Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
                    _ => Ok(()),
                }
            }
            Command::Man { out } => man_pages(&out),
            Command::Reconcile { cmd } => match conn.client().await {
                Ok(client) => reconcile::run(cmd, client).await,
                Err(e) => Err(e),
            },
            Command::Compile(args) => dataplane::run_compile(args, conn.format),
            Command::Explain(args) => dataplane::run_explain(args),
            Command::Lint(args) => dataplane::run_lint(args, &conn.output()),
            Command::Graph(args) => dataplane::run_graph(args, &conn).await,
            Command::Matrix(args) => dataplane::run_matrix(args, &conn).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<reconcile::PlanHasChanges>().is_some() => {
            std::process::ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("Error: {e:#}");
            // A config the agent refuses exits with EX_CONFIG (78), so a service manager
            // can stop restarting it (systemd: RestartPreventExitStatus=78).
            if e.downcast_ref::<palisade_agent::config::ConfigError>()
                .is_some()
            {
                return std::process::ExitCode::from(78);
            }
            std::process::ExitCode::FAILURE
        }
    }
}

/// Man pages from the CLI definition: `palisade.1` and `palisade-<sub>.1` for each
/// subcommand (nested ones joined with `-`).
fn man_pages(out: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(out)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", out.display()))?;
    fn write(cmd: &clap::Command, name: &str, out: &std::path::Path) -> anyhow::Result<usize> {
        let cmd = cmd.clone().name(name.to_string());
        let mut buf = Vec::new();
        clap_mangen::Man::new(cmd.clone()).render(&mut buf)?;
        let path = out.join(format!("{name}.1"));
        std::fs::write(&path, buf)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
        let mut n = 1;
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            n += write(sub, &format!("{name}-{}", sub.get_name()), out)?;
        }
        Ok(n)
    }
    let root = <Cli as clap::CommandFactory>::command();
    let n = write(&root, "palisade", out)?;
    println!("wrote {n} man pages to {}", out.display());
    Ok(())
}

/// Logs to stderr, `text` or `json`, filtered by `RUST_LOG` (default `info`): the server and
/// the agent log the same way.
pub(crate) fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}
