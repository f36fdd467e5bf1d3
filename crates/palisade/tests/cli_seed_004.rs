//! Acceptance 1: the worked example of seed 004 through the `palisade` CLI, with Neutron's
//! results and error cases.

mod common;
use common::Server;
use serde_json::Value;

fn json(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_004_worked_example_gives_neutrons_results() {
    let s = Server::start();
    let ok = |args: &[&str]| {
        let (code, out, err) = s.cli(args);
        assert_eq!(code, 0, "palisade {args:?} failed: {err}");
        out
    };

    let web = json(&ok(&[
        "security",
        "group",
        "create",
        "--description",
        "Allows Web traffic anywhere on the Internet.",
        "web",
        "-f",
        "json",
    ]));
    assert_eq!(web["name"], "web");
    assert_eq!(
        web["description"],
        "Allows Web traffic anywhere on the Internet."
    );
    assert_eq!(web["stateful"], true);
    let rules = web["rules"].as_array().expect("rules");
    assert_eq!(
        rules.len(),
        2,
        "a new group has the two egress template rules"
    );
    assert!(rules.iter().all(|r| r["direction"] == "egress"));
    let mut ethertypes: Vec<&str> = rules
        .iter()
        .map(|r| r["ethertype"].as_str().unwrap_or(""))
        .collect();
    ethertypes.sort();
    assert_eq!(ethertypes, ["IPv4", "IPv6"]);
    assert!(web["revision_number"].as_u64().unwrap_or(0) >= 1);
    let web_id = web["id"].as_str().expect("id").to_string();

    let r80 = json(&ok(&[
        "security",
        "group",
        "rule",
        "create",
        "--protocol",
        "tcp",
        "--dst-port",
        "80:80",
        "--remote-ip",
        "0.0.0.0/0",
        "web",
        "-f",
        "json",
    ]));
    for (k, v) in [
        ("direction", "ingress"),
        ("ethertype", "IPv4"),
        ("protocol", "tcp"),
        ("remote_ip_prefix", "0.0.0.0/0"),
        ("description", ""),
    ] {
        assert_eq!(r80[k], v, "{k}");
    }
    assert_eq!(r80["port_range_min"], 80);
    assert_eq!(r80["port_range_max"], 80);
    assert_eq!(r80["remote_group_id"], Value::Null);
    assert_eq!(r80["security_group_id"], web_id.as_str());
    let r443 = json(&ok(&[
        "security",
        "group",
        "rule",
        "create",
        "--protocol",
        "tcp",
        "--dst-port",
        "443:443",
        "--remote-ip",
        "0.0.0.0/0",
        "web",
        "-f",
        "json",
    ]));
    assert_eq!(r443["port_range_min"], 443);

    let db = json(&ok(&[
        "security", "group", "create", "database", "-f", "json",
    ]));
    assert_eq!(
        db["description"], "database",
        "description defaults to the name, as the openstack CLI does"
    );
    let r3306 = json(&ok(&[
        "security",
        "group",
        "rule",
        "create",
        "--protocol",
        "tcp",
        "--dst-port",
        "3306",
        "--remote-group",
        "web",
        "database",
        "-f",
        "json",
    ]));
    assert_eq!(r3306["remote_group_id"], web_id.as_str());
    assert_eq!(r3306["remote_ip_prefix"], Value::Null);
    assert_eq!(
        (
            r3306["port_range_min"].as_u64(),
            r3306["port_range_max"].as_u64()
        ),
        (Some(3306), Some(3306))
    );

    let list = json(&ok(&["security", "group", "list", "-f", "json"]));
    let mut names: Vec<&str> = list
        .as_array()
        .expect("list")
        .iter()
        .map(|g| g["Name"].as_str().unwrap_or(""))
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["database", "default", "web"],
        "the default group appears on first use"
    );

    let web_rules = json(&ok(&[
        "security", "group", "rule", "list", "web", "-f", "json",
    ]));
    let web_rules = web_rules.as_array().expect("rules");
    assert_eq!(web_rules.len(), 4);
    let mut ranges: Vec<&str> = web_rules
        .iter()
        .map(|r| r["Port Range"].as_str().unwrap_or(""))
        .filter(|r| !r.is_empty())
        .collect();
    ranges.sort();
    assert_eq!(ranges, ["443:443", "80:80"]);
    assert!(web_rules
        .iter()
        .filter(|r| r["IP Protocol"] == "tcp")
        .all(|r| r["IP Range"] == "0.0.0.0/0"));

    let shown = json(&ok(&[
        "security",
        "group",
        "rule",
        "show",
        r80["id"].as_str().expect("id"),
        "-f",
        "json",
    ]));
    assert_eq!(shown, r80, "show returns what create returned");

    // Error cases.
    let (code, _, err) = s.cli(&[
        "security",
        "group",
        "rule",
        "create",
        "--protocol",
        "tcp",
        "--dst-port",
        "80:80",
        "--remote-ip",
        "0.0.0.0/0",
        "web",
    ]);
    assert_ne!(code, 0);
    assert!(
        err.contains("409")
            && err.contains("SecurityGroupRuleExists")
            && err.contains(r80["id"].as_str().expect("id")),
        "duplicate rule: {err}"
    );

    let net = json(&ok(&["network", "create", "net1", "-f", "json"]));
    let port = json(&ok(&[
        "port",
        "create",
        "--network",
        "net1",
        "--fixed-ip",
        "ip-address=198.18.0.10",
        "--security-group",
        "web",
        "p1",
        "-f",
        "json",
    ]));
    assert_eq!(port["network_id"], net["id"]);
    assert_eq!(port["security_group_ids"], serde_json::json!([web_id]));
    let (code, _, err) = s.cli(&["security", "group", "delete", "web"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("409") && err.contains("SecurityGroupInUse"),
        "group in use: {err}"
    );
    let (code, _, err) = s.cli(&["security", "group", "delete", "default"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("409") && err.contains("SecurityGroupCannotRemoveDefault"),
        "default group: {err}"
    );

    // Delete a rule, then a group (after the port leaves it).
    ok(&[
        "security",
        "group",
        "rule",
        "delete",
        r443["id"].as_str().expect("id"),
    ]);
    let (code, _, err) = s.cli(&[
        "security",
        "group",
        "rule",
        "show",
        r443["id"].as_str().expect("id"),
    ]);
    assert!(
        code != 0 && err.contains("404"),
        "deleted rule must be gone: {err}"
    );
    ok(&["port", "set", "--no-security-group", "p1"]);
    ok(&["security", "group", "delete", "database"]);
    ok(&["security", "group", "delete", "web"]);
    let list = json(&ok(&["security", "group", "list", "-f", "json"]));
    let names: Vec<&str> = list
        .as_array()
        .expect("list")
        .iter()
        .map(|g| g["Name"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(names, ["default"]);
    // Deleting web also deleted database's rule naming it? database is gone too; check none dangle.
    let all = json(&ok(&["security", "group", "rule", "list", "-f", "json"]));
    assert!(all
        .as_array()
        .expect("rules")
        .iter()
        .all(|r| r["Remote Security Group"] != web_id.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_reports_missing_token_and_unknown_group_clearly() {
    let s = Server::start();
    let out = std::process::Command::new(common::BIN)
        .args(["security", "group", "list"])
        .env("PALISADE_URL", &s.url)
        .env_remove("PALISADE_TOKEN")
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no credentials"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (code, _, err) = s.cli(&["security", "group", "show", "nope"]);
    assert_ne!(code, 0);
    assert!(err.contains("No SecurityGroup found for nope"), "{err}");
    let (code, out, _) = s.cli(&["security", "group", "list", "-f", "value", "-c", "Name"]);
    assert_eq!(code, 0);
    assert_eq!(out.trim(), "default");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_logs_in_with_openrc_or_clouds_yaml_and_caches_the_token() {
    let s = Server::start();
    let cache = s.dir.join("token-cache.json");
    let run = |envs: Vec<(String, String)>, args: &[&str]| {
        let out = std::process::Command::new(common::BIN)
            .args(args)
            .env_remove("PALISADE_TOKEN")
            .env_remove("PALISADE_URL")
            .env_remove("OS_CLOUD")
            .env("PALISADE_TOKEN_CACHE", &cache)
            .envs(envs)
            .output()
            .expect("run palisade");
        assert!(
            out.status.success(),
            "palisade {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // OS_* variables from the generated admin-openrc; the URL comes from the catalog.
    let out = run(
        s.openrc(),
        &["security", "group", "list", "-f", "value", "-c", "Name"],
    );
    assert_eq!(out.trim(), "default");
    run(s.openrc(), &["security", "group", "create", "web"]);
    let logins = s.log().matches("token issued").count();
    assert_eq!(logins, 1, "the second command reused the cached token");
    let cached = std::fs::read_to_string(&cache).expect("cache");
    assert!(!cached.contains("OS_PASSWORD") && cached.contains("expires_at"));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&cache)
            .expect("meta")
            .permissions()
            .mode()
            & 0o777,
        0o600
    );

    // --os-cloud with the generated clouds.yaml, and identity administration.
    let clouds = vec![(
        "OS_CLIENT_CONFIG_FILE".to_string(),
        s.dir.join("clouds.yaml").display().to_string(),
    )];
    run(
        clouds.clone(),
        &[
            "--os-cloud",
            "palisade",
            "admin",
            "project",
            "create",
            "team",
        ],
    );
    run(
        clouds.clone(),
        &[
            "--os-cloud",
            "palisade",
            "admin",
            "user",
            "create",
            "carol",
            "--password",
            "carol-pw-123",
            "--project",
            "team",
            "--role",
            "member",
        ],
    );
    let assignments = run(
        clouds.clone(),
        &[
            "--os-cloud",
            "palisade",
            "admin",
            "role",
            "list",
            "-f",
            "json",
        ],
    );
    assert!(assignments.contains("member"), "{assignments}");
    let carol: Vec<(String, String)> = s
        .openrc()
        .into_iter()
        .map(|(k, v)| match k.as_str() {
            "OS_USERNAME" => (k, "carol".to_string()),
            "OS_PASSWORD" => (k, "carol-pw-123".to_string()),
            "OS_PROJECT_NAME" => (k, "team".to_string()),
            _ => (k, v),
        })
        .collect();
    let out = run(
        carol,
        &["security", "group", "list", "-f", "value", "-c", "Name"],
    );
    assert_eq!(
        out.trim(),
        "default",
        "carol sees only her project's default group, not the admin's web"
    );
}
