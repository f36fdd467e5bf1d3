//! `palisade compile` and `palisade explain`: the dataplane compiler without a server,
//! from a state file (a dump of the API: `security_groups`, `ports`, `address_groups`).

use crate::output::Format;
use anyhow::Context as _;
use clap::Args;
use palisade_dataplane::explain::{explain, Probe};
use palisade_dataplane::state::Direction;
use palisade_dataplane::{compile, render, State};
use std::net::IpAddr;
use std::path::PathBuf;

/// Options of `palisade compile`.
#[derive(Args, Debug)]
pub struct CompileArgs {
    /// State file (JSON or YAML).
    #[arg(long)]
    state: PathBuf,
    /// Host whose ports (binding:host_id) to compile for.
    #[arg(long)]
    host: String,
}

/// Options of `palisade explain`.
#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// State file (JSON or YAML).
    #[arg(long)]
    state: PathBuf,
    /// Port id.
    #[arg(long)]
    port: String,
    /// ingress (to the port) or egress (from it).
    #[arg(long, value_parser = ["ingress", "egress"])]
    direction: String,
    /// The other end's address.
    #[arg(long)]
    remote: IpAddr,
    /// The port's own address in the packet (default: its first fixed IP of that family).
    #[arg(long)]
    local: Option<IpAddr>,
    /// Protocol name or number.
    #[arg(long, default_value = "tcp")]
    protocol: String,
    /// Destination port.
    #[arg(long, default_value_t = 0)]
    dst_port: u16,
    /// Source port.
    #[arg(long, default_value_t = 40000)]
    src_port: u16,
    /// ICMP type.
    #[arg(long)]
    icmp_type: Option<u8>,
    /// ICMP code.
    #[arg(long, default_value_t = 0)]
    icmp_code: u8,
}

fn load(path: &PathBuf) -> anyhow::Result<State> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    State::parse(&text).with_context(|| format!("{}", path.display()))
}

/// The host of a port in the state file.
fn host_of(state: &State, port: &str) -> anyhow::Result<String> {
    state
        .ports
        .iter()
        .find(|p| p.id == port)
        .map(|p| p.host.clone())
        .ok_or_else(|| anyhow::anyhow!("--port: {port} is not in the state file"))
}

/// Prints the nft script (default, `-f nft`/`table`) or the IR (`-f json`/`yaml`).
pub fn run_compile(args: CompileArgs, format: crate::output::Format) -> anyhow::Result<()> {
    use crate::output::Format;
    let state = load(&args.state)?;
    let rs = compile(&state, &args.host)?;
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&rs.to_json())?),
        Format::Yaml => print!("{}", serde_saphyr::to_string(&rs.to_json())?),
        _ => print!("{}", render(&rs)),
    }
    Ok(())
}

pub fn run_explain(args: ExplainArgs) -> anyhow::Result<()> {
    let state = load(&args.state)?;
    let host = host_of(&state, &args.port)?;
    let rs = compile(&state, &host)?;
    let proto =
        palisade_model::rule::stored_protocol_number(Some(&args.protocol.to_ascii_lowercase()))
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "--protocol: '{}' is not a protocol name or number",
                    args.protocol
                )
            })?;
    let port = state
        .ports
        .iter()
        .find(|p| p.id == args.port)
        .ok_or_else(|| anyhow::anyhow!("--port: {} is not in the state file", args.port))?;
    let local = match args.local {
        Some(l) => l,
        None => port
            .fixed_ips
            .iter()
            .map(|f| f.ip_address)
            .find(|a| a.is_ipv4() == args.remote.is_ipv4())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "--local: port {} has no address of the remote's family; give one",
                    args.port
                )
            })?,
    };
    let probe = Probe {
        port: args.port.clone(),
        direction: if args.direction == "ingress" {
            Direction::Ingress
        } else {
            Direction::Egress
        },
        remote: args.remote,
        local,
        src_mac: None,
        proto,
        sport: args.src_port,
        dport: args.dst_port,
        icmp: args.icmp_type.map(|t| (t, args.icmp_code)),
    };
    match explain(&rs, &probe) {
        None => println!(
            "allowed: port {} is not filtered (port security off, a network: port, or unbound)",
            args.port
        ),
        Some(v) => {
            let word = if v.allowed { "allowed" } else { "dropped" };
            match (&v.group, &v.rule) {
                (Some(g), Some(r)) => {
                    println!("{word}: security group {g}, rule {r} ({})", v.reason)
                }
                _ => println!("{word}: {}", v.reason),
            }
        }
    }
    Ok(())
}

/// Options of `palisade lint`.
#[derive(Args, Debug)]
pub struct LintArgs {
    /// State file (JSON or YAML).
    #[arg(long)]
    state: PathBuf,
}

/// Prints the findings; fails (exit 1) when there are any, so CI can gate on it.
pub fn run_lint(args: LintArgs, out: &crate::output::Output) -> anyhow::Result<()> {
    let state = load(&args.state)?;
    let findings = palisade_dataplane::lint::lint(&state);
    let rows: Vec<Vec<serde_json::Value>> = findings
        .iter()
        .map(|f| {
            vec![
                serde_json::json!(f.kind),
                serde_json::json!(f.group),
                serde_json::json!(f.rule),
                serde_json::json!(f.message),
            ]
        })
        .collect();
    if findings.is_empty() {
        println!("no findings");
        return Ok(());
    }
    println!(
        "{}",
        out.list(&["Kind", "Group", "Rule", "Finding"], &rows)?
    );
    if findings.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("{} finding(s)", findings.len())
    }
}

/// Options of `palisade graph`.
#[derive(Args, Debug)]
pub struct GraphArgs {
    /// State file (JSON or YAML); without it the graph is read from the server (`--url`
    /// with `--token`, or the openstack credentials).
    #[arg(long)]
    state: Option<PathBuf>,
    /// Also draw egress rules (group → where its ports may connect).
    #[arg(long)]
    egress: bool,
    /// Write here instead of to standard output.
    #[arg(short = 'o', long = "out")]
    out: Option<PathBuf>,
    /// Title drawn on the picture (default: the state file's name, or the server URL).
    #[arg(long)]
    title: Option<String>,
}

/// Options of `palisade matrix`.
#[derive(Args, Debug)]
pub struct MatrixArgs {
    /// State file (JSON or YAML); without it the ports and groups are read from the server.
    #[arg(long)]
    state: Option<PathBuf>,
    /// Services to probe, comma-separated: names (ssh, http, https, dns, mysql, postgres,
    /// redis, k8s-api, ping), PROTO/PORT (tcp/8080, udp/53) or icmp/TYPE[/CODE].
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "ssh,http,https,dns,mysql,postgres,ping"
    )]
    services: Vec<String>,
    /// Write here instead of to standard output.
    #[arg(short = 'o', long = "out")]
    out: Option<PathBuf>,
    /// Title drawn on the picture (default: the state file's name, or the server URL).
    #[arg(long)]
    title: Option<String>,
}

/// The state from a file, or read from the server as a dump of its lists.
async fn state_from(file: &Option<PathBuf>, conn: &crate::Conn) -> anyhow::Result<(State, String)> {
    if let Some(path) = file {
        return Ok((load(path)?, path.display().to_string()));
    }
    let client = conn.client().await?;
    let mut dump = serde_json::Map::new();
    for (path, key) in [
        ("/v2.0/security-groups", "security_groups"),
        ("/v2.0/ports", "ports"),
        ("/v2.0/address-groups", "address_groups"),
    ] {
        let v = client.get_json(path).await?;
        dump.insert(key.into(), v.get(key).cloned().unwrap_or_default());
    }
    let state =
        State::parse(&serde_json::Value::Object(dump).to_string()).context("the server's lists")?;
    Ok((state, client.base().to_string()))
}

fn emit(out: &Option<PathBuf>, text: &str) -> anyhow::Result<()> {
    match out {
        Some(p) => std::fs::write(p, text).with_context(|| format!("cannot write {}", p.display())),
        None => {
            use std::io::Write as _;
            let mut stdout = std::io::stdout().lock();
            match stdout.write_all(text.as_bytes()) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
                _ => Ok(()),
            }
        }
    }
}

/// `palisade graph`: SVG (default, `-f svg`), DOT (`-f dot`) or JSON (`-f json`).
pub async fn run_graph(args: GraphArgs, conn: &crate::Conn) -> anyhow::Result<()> {
    use palisade_dataplane::graph::{graph, to_dot, to_svg};
    let (state, source) = state_from(&args.state, conn).await?;
    let g = graph(&state, args.egress);
    let title = args
        .title
        .unwrap_or_else(|| format!("Security groups: {source}"));
    let text = match conn.format {
        Format::Dot => to_dot(&g),
        Format::Json => {
            serde_json::to_string_pretty(&serde_json::json!({
                "nodes": g.nodes.iter().map(|n| serde_json::json!({
                    "id": n.id, "kind": format!("{:?}", n.kind).to_lowercase(), "label": n.label, "detail": n.detail,
                })).collect::<Vec<_>>(),
                "edges": g.edges.iter().map(|e| serde_json::json!({
                    "from": e.from, "to": e.to, "allows": e.allows,
                })).collect::<Vec<_>>(),
            }))? + "\n"
        }
        Format::Svg | Format::Table => to_svg(&g, &title),
        other => anyhow::bail!("-f {other:?}: palisade graph writes svg, dot or json"),
    };
    emit(&args.out, &text)
}

/// `palisade matrix`: a text table (default), SVG (`-f svg`), HTML (`-f html`) or JSON.
pub async fn run_matrix(args: MatrixArgs, conn: &crate::Conn) -> anyhow::Result<()> {
    use palisade_dataplane::matrix::{matrix, parse_service, to_html, to_svg, to_text, Cell};
    let services = args
        .services
        .iter()
        .map(|s| parse_service(s.trim()))
        .collect::<Result<Vec<_>, _>>()
        .context("--services")?;
    let (state, source) = state_from(&args.state, conn).await?;
    let m = matrix(&state, &services)?;
    let title = args
        .title
        .unwrap_or_else(|| format!("Reachability: {source}"));
    let text = match conn.format {
        Format::Table => to_text(&m),
        Format::Svg => to_svg(&m, &title),
        Format::Html => to_html(&m, &title),
        Format::Json => {
            let mut rows = Vec::new();
            for (i, (from, _)) in m.ports.iter().enumerate() {
                for (j, (to, _)) in m.ports.iter().enumerate() {
                    if let Cell::Open(open) = &m.cells[i][j] {
                        rows.push(serde_json::json!({"from": from, "to": to, "open": open}));
                    }
                }
            }
            serde_json::to_string_pretty(&rows)? + "\n"
        }
        other => anyhow::bail!("-f {other:?}: palisade matrix writes table, svg, html or json"),
    };
    emit(&args.out, &text)
}
