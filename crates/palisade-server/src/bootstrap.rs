//! First start: the admin project and the admin API token.
//!
//! The token is written to `<data-dir>/admin-token` (mode 0600) before it is registered in
//! the store, so a crash in between leaves a token file that the next start registers; the
//! store keeps only the token's SHA-256.

use crate::http::token_hash;
use crate::index::TokenInfo;
use crate::keys;
use palisade_store::{Compare, Op, Store, StoreError, Txn};
use serde_json::json;
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

/// Ensures the admin project and token exist; creates them on first start.
pub async fn ensure_admin(store: &dyn Store, data_dir: &Path) -> Result<Admin, BootstrapError> {
    let token_file = data_dir.join("admin-token");
    let (token, created) = match std::fs::read_to_string(&token_file) {
        Ok(t) if !t.trim().is_empty() => (t.trim().to_string(), false),
        Ok(_) | Err(_) => {
            let mut bytes = [0u8; 32];
            rand::fill(&mut bytes);
            let token = format!("pal-{}", hex::encode(bytes));
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
                ops: vec![
                    Op::put(project_key, id.clone()),
                    Op::put(
                        keys::project(&id),
                        json!({"id": id, "name": "admin"}).to_string(),
                    ),
                ],
            };
            store.txn(txn).await?;
            match store.get(project_key).await? {
                Some(kv) => String::from_utf8_lossy(&kv.value).into_owned(),
                None => id,
            }
        }
    };
    let tkey = keys::token(&token_hash(&token));
    if store.get(&tkey).await?.is_none() {
        let info = TokenInfo {
            project_id: project_id.clone(),
            roles: vec!["admin".into(), "member".into(), "reader".into()],
            user: "admin".into(),
        };
        let value = serde_json::to_vec(&info).map_err(|e| StoreError::Backend(e.to_string()))?;
        store
            .txn(Txn {
                compares: vec![],
                ops: vec![Op::put(tkey, value)],
            })
            .await?;
    }
    Ok(Admin {
        project_id,
        token,
        token_file,
        created,
    })
}
