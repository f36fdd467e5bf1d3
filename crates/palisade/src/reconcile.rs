//! `palisade reconcile plan|apply|run`: the cluster's managed security groups from
//! `OpenStackCluster` manifests (seed 000 / CAPO), against the server.

use clap::{Args, Subcommand};
use palisade_reconcile::spec::{self, Cluster};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// `plan` found changes: exit status 2.
#[derive(Debug, thiserror::Error)]
#[error("the plan has changes")]
pub struct PlanHasChanges;

/// Files and options shared by the subcommands.
#[derive(Args, Debug, Clone)]
pub struct Files {
    /// Manifest files or directories (every *.yaml / *.yml in them); repeatable. `-f` works
    /// too (after `reconcile`, it means files, as in kubectl).
    #[arg(long = "filename", required = true)]
    files: Vec<PathBuf>,
    /// Also remove rules added by hand to managed groups (they are reported otherwise).
    #[arg(long)]
    prune: bool,
}

/// `palisade reconcile …`.
#[derive(Subcommand, Debug)]
pub enum ReconcileCmd {
    /// Print what apply would change (exit 0: nothing, 2: changes, 1: errors).
    Plan(Files),
    /// Print the plan and carry it out.
    Apply {
        #[command(flatten)]
        files: Files,
        /// Write the status CAPO records (YAML, one document per cluster) here.
        #[arg(long)]
        status_out: Option<PathBuf>,
    },
    /// Apply whenever the files change and every interval, undoing drift.
    Run {
        #[command(flatten)]
        files: Files,
        /// Re-apply at least this often, in seconds.
        #[arg(long, default_value_t = 30)]
        interval: u64,
        /// Write the status here after each pass.
        #[arg(long)]
        status_out: Option<PathBuf>,
    },
}

fn expand(files: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for f in files {
        if f.is_dir() {
            let mut in_dir: Vec<PathBuf> = std::fs::read_dir(f)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", f.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
                .collect();
            in_dir.sort();
            out.extend(in_dir);
        } else {
            out.push(f.clone());
        }
    }
    Ok(out)
}

/// Every cluster of every file; nothing when any document is invalid.
fn load(files: &[PathBuf]) -> anyhow::Result<Vec<Cluster>> {
    let mut clusters = Vec::new();
    for f in expand(files)? {
        let text = std::fs::read_to_string(&f)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", f.display()))?;
        clusters.extend(spec::parse(&f.display().to_string(), &text)?);
    }
    let mut seen = std::collections::BTreeSet::new();
    for c in &clusters {
        anyhow::ensure!(seen.insert(c.key()), "cluster {} is defined twice", c.key());
    }
    Ok(clusters)
}

fn write_status(path: &Path, docs: &[serde_json::Value]) -> anyhow::Result<()> {
    let text = docs
        .iter()
        .map(|d| serde_saphyr::to_string(d).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("---\n");
    std::fs::write(path, text).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))
}

async fn pass(
    client: &palisade_client::Client,
    files: &Files,
    dry_run: bool,
    status_out: Option<&Path>,
) -> anyhow::Result<bool> {
    let clusters = load(&files.files)?;
    let mut changes = false;
    let mut statuses = Vec::new();
    for c in &clusters {
        let (plan, st, _) =
            palisade_reconcile::apply::reconcile(client, c, files.prune, dry_run).await?;
        print!("{plan}");
        changes |= !plan.is_empty();
        if let Some(st) = st {
            for w in st["status"]["waitingSecurityGroups"]
                .as_array()
                .into_iter()
                .flatten()
            {
                println!(
                    "  … {}: {}",
                    w["name"].as_str().unwrap_or(""),
                    w["message"].as_str().unwrap_or("")
                );
            }
            statuses.push(st);
        }
    }
    if let Some(p) = status_out {
        write_status(p, &statuses)?;
    }
    Ok(changes)
}

fn mtimes(files: &[PathBuf]) -> Vec<(PathBuf, Option<SystemTime>)> {
    expand(files)
        .unwrap_or_default()
        .into_iter()
        .map(|p| {
            let m = std::fs::metadata(&p).and_then(|m| m.modified()).ok();
            (p, m)
        })
        .collect()
}

pub async fn run(cmd: ReconcileCmd, client: palisade_client::Client) -> anyhow::Result<()> {
    match cmd {
        ReconcileCmd::Plan(files) => {
            if pass(&client, &files, true, None).await? {
                return Err(PlanHasChanges.into());
            }
            Ok(())
        }
        ReconcileCmd::Apply { files, status_out } => {
            pass(&client, &files, false, status_out.as_deref()).await?;
            Ok(())
        }
        ReconcileCmd::Run {
            files,
            interval,
            status_out,
        } => {
            let interval = Duration::from_secs(interval.max(1));
            let mut last = Vec::new();
            let mut next = tokio::time::Instant::now();
            loop {
                let now = mtimes(&files.files);
                if now != last || tokio::time::Instant::now() >= next {
                    if let Err(e) = pass(&client, &files, false, status_out.as_deref()).await {
                        eprintln!("Error: {e:#} (retrying)");
                    }
                    last = now;
                    next = tokio::time::Instant::now() + interval;
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = tokio::signal::ctrl_c() => return Ok(()),
                }
            }
        }
    }
}
