//! First start: the admin project and the admin API token.
//!
//! The token is written to `<data-dir>/admin-token` (mode 0600) before it is registered in
//! the store, so a crash in between leaves a token file that the next start registers; the
//! store keeps only the token's SHA-256.

use crate::http::token_hash;
use crate::index::TokenInfo;
use crate::keys;
use crate::service::identity::{hash_password, Project, User, DEFAULT_DOMAIN};
use palisade_store::{Compare, Op, Store, StoreError, Txn};
use std::io::Write;
use std::path::{Path, PathBuf};

/// What the operator needs to talk to a server.
#[derive(Debug, Clone)]
pub struct Admin {
    /// The admin project's id.
    pub project_id: String,
    /// The admin token.
    pub token: String,
    /// Where the token is written.
    pub token_file: PathBuf,
    /// True on the start that created them.
    pub created: bool,
    /// The admin user's password, on the start that created it.
    pub password: Option<String>,
    /// `<data-dir>/admin-openrc`
    pub openrc: PathBuf,
    /// `<data-dir>/clouds.yaml`
    pub clouds: PathBuf,
}

/// Failures of bootstrap.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// File system.
    #[error("{path}: {source}")]
    Io {
        /// file
        path: PathBuf,
        /// cause
        source: std::io::Error,
    },
    /// Store.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BootstrapError + '_ {
    move |source| BootstrapError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `contents` to `path` atomically with mode 0600.
pub fn write_secret(path: &Path, contents: &str) -> Result<(), BootstrapError> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io(&tmp))?;
    f.write_all(contents.as_bytes()).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))?;
    if let Some(dir) = path.parent() {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// Ensures the admin project, the admin user and the admin token exist; creates them on
/// first start and (re)writes `clouds.yaml` and `admin-openrc` for `public_url`.
pub async fn ensure_admin(
    store: &dyn Store,
    data_dir: &Path,
    public_url: &str,
) -> Result<Admin, BootstrapError> {
    let token_file = data_dir.join("admin-token");
    let (token, created) = match std::fs::read_to_string(&token_file) {
        Ok(t) if !t.trim().is_empty() => (t.trim().to_string(), false),
        Ok(_) | Err(_) => {
            let token = format!("pal-{}", random_hex(32));
            write_secret(&token_file, &format!("{token}\n"))?;
            (token, true)
        }
    };
    let project_key = "meta/admin-project";
    let project_id = match store.get(project_key).await? {
        Some(kv) => String::from_utf8_lossy(&kv.value).into_owned(),
        None => {
            let id = uuid::Uuid::new_v4().simple().to_string();
            let txn = Txn {
                compares: vec![Compare::absent(project_key)],
                ops: vec![Op::put(project_key, id.clone())],
            };
            store.txn(txn).await?;
            match store.get(project_key).await? {
                Some(kv) => String::from_utf8_lossy(&kv.value).into_owned(),
                None => id,
            }
        }
    };
    // The admin project's record and name (also upgrades a data directory from before
    // identity existed).
    let pname = keys::project_name(DEFAULT_DOMAIN, "admin");
    if store.get(&pname).await?.is_none() {
        let p = Project {
            id: project_id.clone(),
            name: "admin".into(),
            domain_id: DEFAULT_DOMAIN.into(),
            description: "Bootstrap project for the cloud admin".into(),
            enabled: true,
        };
        let value = serde_json::to_vec(&p).map_err(|e| StoreError::Backend(e.to_string()))?;
        store
            .txn(Txn {
                compares: vec![Compare::absent(pname.clone())],
                ops: vec![
                    Op::put(pname, project_id.clone()),
                    Op::put(keys::project(&project_id), value),
                ],
            })
            .await?;
    }
    let tkey = keys::token(&token_hash(&token));
    if store.get(&tkey).await?.is_none() {
        let info = TokenInfo {
            project_id: project_id.clone(),
            roles: vec!["admin".into(), "member".into(), "reader".into()],
            user: "admin".into(),
            ..Default::default()
        };
        let value = serde_json::to_vec(&info).map_err(|e| StoreError::Backend(e.to_string()))?;
        store
            .txn(Txn {
                compares: vec![],
                ops: vec![Op::put(tkey, value)],
            })
            .await?;
    }
    // The admin user, with a generated password written only to the two client files.
    let uname = keys::user_name(DEFAULT_DOMAIN, "admin");
    let openrc = data_dir.join("admin-openrc");
    let clouds = data_dir.join("clouds.yaml");
    let auth_url = format!("{}/identity/v3", public_url.trim_end_matches('/'));
    let mut password = None;
    if store.get(&uname).await?.is_none() {
        let pw = random_hex(16);
        write_secret(&openrc, &openrc_text(&auth_url, &pw))?;
        write_secret(&clouds, &clouds_text(&auth_url, &pw))?;
        let pw2 = pw.clone();
        let hash = tokio::task::spawn_blocking(move || hash_password(&pw2))
            .await
            .map_err(|e| StoreError::Backend(e.to_string()))?
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        let u = User {
            id: uuid::Uuid::new_v4().simple().to_string(),
            name: "admin".into(),
            domain_id: DEFAULT_DOMAIN.into(),
            password_hash: hash,
            enabled: true,
            default_project_id: Some(project_id.clone()),
        };
        let value = serde_json::to_vec(&u).map_err(|e| StoreError::Backend(e.to_string()))?;
        store
            .txn(Txn {
                compares: vec![Compare::absent(uname.clone())],
                ops: vec![
                    Op::put(uname, u.id.clone()),
                    Op::put(keys::user(&u.id), value),
                    Op::put(keys::assignment(&project_id, &u.id, "admin"), Vec::new()),
                ],
            })
            .await?;
        password = Some(pw);
    } else {
        // Keep the files pointing at where this server is reachable now.
        for f in [&openrc, &clouds] {
            if let Ok(text) = std::fs::read_to_string(f) {
                let updated: Vec<String> = text
                    .lines()
                    .map(|l| {
                        if l.starts_with("export OS_AUTH_URL=") {
                            format!("export OS_AUTH_URL={auth_url}")
                        } else if l.trim_start().starts_with("auth_url:") {
                            format!(
                                "{}auth_url: {auth_url}",
                                &l[..l.len() - l.trim_start().len()]
                            )
                        } else {
                            l.to_string()
                        }
                    })
                    .collect();
                write_secret(f, &(updated.join("\n") + "\n"))?;
            }
        }
    }
    Ok(Admin {
        project_id,
        token,
        token_file,
        created,
        password,
        openrc,
        clouds,
    })
}

fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::fill(&mut bytes[..]);
    hex::encode(bytes)
}

fn openrc_text(auth_url: &str, password: &str) -> String {
    format!(
        "# Palisade admin credentials for the openstack CLI: source this file.\n\
         export OS_AUTH_URL={auth_url}\n\
         export OS_USERNAME=admin\n\
         export OS_PASSWORD={password}\n\
         export OS_PROJECT_NAME=admin\n\
         export OS_USER_DOMAIN_NAME=Default\n\
         export OS_PROJECT_DOMAIN_NAME=Default\n\
         export OS_IDENTITY_API_VERSION=3\n\
         export OS_REGION_NAME=RegionOne\n\
         export OS_INTERFACE=public\n"
    )
}

fn clouds_text(auth_url: &str, password: &str) -> String {
    format!(
        "# Palisade admin credentials: use with `--os-cloud palisade` (or OS_CLOUD=palisade).\n\
         clouds:\n  palisade:\n    auth:\n      auth_url: {auth_url}\n      username: admin\n      password: {password}\n      \
         project_name: admin\n      user_domain_name: Default\n      project_domain_name: Default\n    \
         region_name: RegionOne\n    interface: public\n    identity_api_version: 3\n"
    )
}
