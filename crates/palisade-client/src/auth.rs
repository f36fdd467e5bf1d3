//! Finding credentials the way the `openstack` CLI does (`OS_*` variables, or `--os-cloud`
//! with clouds.yaml on openstacksdk's search path), logging in to Keystone v3 with a
//! password, and caching the token so that repeated commands do not log in again.

use crate::ClientError;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// Password credentials for a Keystone v3 login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// `OS_AUTH_URL`, e.g. `http://127.0.0.1:9696/identity/v3`
    pub auth_url: String,
    /// `OS_USERNAME`
    pub username: String,
    /// `OS_PASSWORD`
    pub password: String,
    /// `OS_PROJECT_NAME` (or `OS_PROJECT_ID` in `project_id`)
    pub project_name: Option<String>,
    /// `OS_PROJECT_ID`
    pub project_id: Option<String>,
    /// `OS_USER_DOMAIN_NAME` (default `Default`)
    pub user_domain_name: String,
    /// `OS_PROJECT_DOMAIN_NAME` (default `Default`)
    pub project_domain_name: String,
    /// `OS_REGION_NAME`, to pick the endpoint
    pub region: Option<String>,
    /// `OS_INTERFACE` (default `public`)
    pub interface: String,
}

impl Credentials {
    /// From `OS_*` variables via `get` (None when `OS_AUTH_URL` is unset).
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, ClientError> {
        let Some(auth_url) = get("OS_AUTH_URL") else {
            return Ok(None);
        };
        let need = |k: &str| {
            get(k).ok_or_else(|| ClientError::Config(format!("{k} is not set (OS_AUTH_URL is)")))
        };
        Ok(Some(Credentials {
            auth_url,
            username: need("OS_USERNAME")?,
            password: need("OS_PASSWORD")?,
            project_name: get("OS_PROJECT_NAME").or_else(|| get("OS_TENANT_NAME")),
            project_id: get("OS_PROJECT_ID").or_else(|| get("OS_TENANT_ID")),
            user_domain_name: get("OS_USER_DOMAIN_NAME").unwrap_or_else(|| "Default".into()),
            project_domain_name: get("OS_PROJECT_DOMAIN_NAME").unwrap_or_else(|| "Default".into()),
            region: get("OS_REGION_NAME"),
            interface: get("OS_INTERFACE").unwrap_or_else(|| "public".into()),
        }))
    }

    /// The cloud `name` from the first clouds.yaml on openstacksdk's search path:
    /// `$OS_CLIENT_CONFIG_FILE`, `./clouds.yaml`, `~/.config/openstack/clouds.yaml`,
    /// `/etc/openstack/clouds.yaml`.
    pub fn from_clouds_yaml(
        name: &str,
        config_file: Option<&Path>,
        home: Option<&Path>,
    ) -> Result<Self, ClientError> {
        let mut candidates: Vec<PathBuf> = Vec::new();
        if let Some(f) = config_file {
            candidates.push(f.to_path_buf());
        }
        candidates.push(PathBuf::from("clouds.yaml"));
        if let Some(h) = home {
            candidates.push(h.join(".config/openstack/clouds.yaml"));
        }
        candidates.push(PathBuf::from("/etc/openstack/clouds.yaml"));
        let path = candidates.iter().find(|p| p.is_file()).ok_or_else(|| {
            ClientError::Config(format!(
                "--os-cloud {name}: no clouds.yaml found (looked at {})",
                candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        let text = std::fs::read_to_string(path)
            .map_err(|e| ClientError::Config(format!("{}: {e}", path.display())))?;
        let doc: Value = serde_saphyr::from_str(&text)
            .map_err(|e| ClientError::Config(format!("{}: not valid YAML: {e}", path.display())))?;
        let cloud = doc.get("clouds").and_then(|c| c.get(name)).ok_or_else(|| {
            ClientError::Config(format!(
                "{}: no cloud named '{name}' under clouds:",
                path.display()
            ))
        })?;
        let auth = cloud.get("auth").ok_or_else(|| {
            ClientError::Config(format!("{}: clouds.{name}.auth is missing", path.display()))
        })?;
        let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(String::from);
        let need = |k: &str| {
            s(auth, k).ok_or_else(|| {
                ClientError::Config(format!(
                    "{}: clouds.{name}.auth.{k} is missing",
                    path.display()
                ))
            })
        };
        Ok(Credentials {
            auth_url: need("auth_url")?,
            username: need("username")?,
            password: need("password")?,
            project_name: s(auth, "project_name"),
            project_id: s(auth, "project_id"),
            user_domain_name: s(auth, "user_domain_name").unwrap_or_else(|| "Default".into()),
            project_domain_name: s(auth, "project_domain_name").unwrap_or_else(|| "Default".into()),
            region: s(cloud, "region_name"),
            interface: s(cloud, "interface").unwrap_or_else(|| "public".into()),
        })
    }

    fn auth_body(&self) -> Value {
        let mut auth = json!({"identity": {"methods": ["password"], "password": {"user": {
            "name": self.username, "domain": {"name": self.user_domain_name}, "password": self.password}}}});
        if let Some(id) = &self.project_id {
            auth["scope"] = json!({"project": {"id": id}});
        } else if let Some(name) = &self.project_name {
            auth["scope"] =
                json!({"project": {"name": name, "domain": {"name": self.project_domain_name}}});
        }
        json!({ "auth": auth })
    }

    fn cache_key(&self) -> String {
        format!(
            "{}|{}|{}|{}",
            self.auth_url,
            self.username,
            self.project_id.as_deref().unwrap_or(""),
            self.project_name.as_deref().unwrap_or("")
        )
    }
}

/// A token and the network endpoint it came with.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Session {
    /// The token.
    pub token: String,
    /// The `network` endpoint of the catalog.
    pub network_url: String,
    /// Unix seconds.
    pub expires_at: i64,
}

fn parse_expiry(s: &str) -> i64 {
    // "2026-12-02T07:00:00.000000Z": seconds precision is enough for the cache.
    let date_time = s.get(..19).unwrap_or("");
    let parts: Vec<i64> = date_time
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|p| p.parse().ok())
        .collect();
    if parts.len() != 6 {
        return 0;
    }
    let (y, m, d, hh, mm, ss) = (parts[0], parts[1], parts[2], parts[3], parts[4], parts[5]);
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    days * 86400 + hh * 3600 + mm * 60 + ss
}

/// Logs in (or reuses a cached token that is valid for another minute).
pub async fn session(creds: &Credentials, cache: Option<&Path>) -> Result<Session, ClientError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let key = creds.cache_key();
    let mut cached: serde_json::Map<String, Value> = cache
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    if let Some(s) = cached
        .get(&key)
        .and_then(|v| serde_json::from_value::<Session>(v.clone()).ok())
    {
        if s.expires_at > now + 60 {
            return Ok(s);
        }
    }
    let url = format!("{}/auth/tokens", creds.auth_url.trim_end_matches('/'));
    let resp = reqwest::Client::new()
        .post(&url)
        .json(&creds.auth_body())
        .send()
        .await
        .map_err(|source| ClientError::Transport {
            url: url.clone(),
            source,
        })?;
    let status = resp.status().as_u16();
    let token = resp
        .headers()
        .get("x-subject-token")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    let Some(token) = token.filter(|_| status == 201) else {
        let message = body["error"]["message"]
            .as_str()
            .unwrap_or("login failed")
            .to_string();
        return Err(ClientError::Api {
            status,
            kind: "Unauthorized".into(),
            message,
        });
    };
    let network_url = body["token"]["catalog"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["type"] == "network")
        .flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default())
        .find(|e| {
            e["interface"] == creds.interface.as_str()
                && creds
                    .region
                    .as_deref()
                    .is_none_or(|r| e["region"] == r || e["region_id"] == r)
        })
        .and_then(|e| e["url"].as_str().map(String::from))
        .ok_or_else(|| ClientError::Decode {
            url: url.clone(),
            detail: "the catalog has no network endpoint for this interface and region".into(),
        })?;
    let expires_at = body["token"]["expires_at"]
        .as_str()
        .map(parse_expiry)
        .unwrap_or(0);
    let s = Session {
        token,
        network_url,
        expires_at,
    };
    if let Some(p) = cache {
        cached.retain(|_, v| v["expires_at"].as_i64().unwrap_or(0) > now);
        cached.insert(key, serde_json::to_value(&s).unwrap_or(Value::Null));
        write_private(p, &Value::Object(cached).to_string());
    }
    Ok(s)
}

/// Writes `text` to `path` with mode 0600 (best effort: a cache, not a record).
fn write_private(path: &Path, text: &str) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let tmp = path.with_extension("tmp");
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(text.as_bytes()));
    if written.is_ok() {
        let _ = std::fs::rename(&tmp, path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keystone_expiry_parses_to_unix_seconds() {
        assert_eq!(parse_expiry("1970-01-01T00:00:00.000000Z"), 0);
        assert_eq!(parse_expiry("2026-12-02T07:00:00.000000Z"), 1_796_194_800);
        assert_eq!(parse_expiry("garbage"), 0);
    }

    #[test]
    fn env_credentials_need_user_and_password() {
        let env = |k: &str| match k {
            "OS_AUTH_URL" => Some("http://h/identity/v3".to_string()),
            "OS_USERNAME" => Some("u".to_string()),
            _ => None,
        };
        assert!(Credentials::from_env(env).is_err());
        assert_eq!(Credentials::from_env(|_| None).ok().flatten(), None);
    }

    #[test]
    fn clouds_yaml_is_read_from_the_given_file() {
        let dir = std::env::temp_dir().join(format!("palisade-clouds-{}", std::process::id()));
        std::fs::create_dir_all(&dir).ok();
        let f = dir.join("clouds.yaml");
        std::fs::write(&f, "clouds:\n  lab:\n    region_name: R1\n    auth:\n      auth_url: http://h/identity/v3\n      username: u\n      password: p\n      project_name: pr\n").ok();
        let c = Credentials::from_clouds_yaml("lab", Some(&f), None).expect("cloud");
        assert_eq!(
            (
                c.username.as_str(),
                c.project_name.as_deref(),
                c.region.as_deref()
            ),
            ("u", Some("pr"), Some("R1"))
        );
        assert!(Credentials::from_clouds_yaml("nope", Some(&f), None).is_err());
        std::fs::remove_dir_all(&dir).ok();
    }
}
