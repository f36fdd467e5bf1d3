//! `palisade compile`, `explain` and `lint` on a state file, as an operator runs them.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_palisade");

fn state() -> String {
    format!(
        "{}/../palisade-dataplane/tests/golden/seed004.state.yaml",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN).args(args).output().expect("run palisade");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn compile_explain_and_lint_from_a_state_file() {
    let (ok, out, err) = run(&["compile", "--state", &state(), "--host", "hv1"]);
    assert!(ok, "{err}");
    assert!(
        out.starts_with("table inet palisade\ndelete table inet palisade\n"),
        "an atomic replace script"
    );
    assert!(out.contains("comment \"r-db-3306\""));
    let (ok, out, err) = run(&[
        "compile",
        "--state",
        &state(),
        "--host",
        "hv1",
        "--format",
        "json",
    ]);
    assert!(ok, "{err}");
    let ir: serde_json::Value = serde_json::from_str(&out).expect("the IR as JSON");
    assert_eq!(ir["chains"]["sg-db-in"][0]["id"], "r-db-3306");
    assert_eq!(
        ir["sets"]["rg-web-v4"]["elements"],
        serde_json::json!(["198.18.1.1/32", "198.18.1.2/32"])
    );

    let (ok, out, _) = run(&[
        "explain",
        "--state",
        &state(),
        "--port",
        "p-db-1",
        "--direction",
        "ingress",
        "--remote",
        "198.18.1.2",
        "--protocol",
        "tcp",
        "--dst-port",
        "3306",
    ]);
    assert!(ok);
    assert_eq!(
        out.trim(),
        "allowed: security group db, rule r-db-3306 (rule r-db-3306 in chain sg-db-in)"
    );
    let (_, out, _) = run(&[
        "explain",
        "--state",
        &state(),
        "--port",
        "p-db-1",
        "--direction",
        "ingress",
        "--remote",
        "203.0.113.7",
        "--dst-port",
        "3306",
    ]);
    assert_eq!(out.trim(), "dropped: default drop");
    let (ok, _, err) = run(&[
        "explain",
        "--state",
        &state(),
        "--port",
        "nope",
        "--direction",
        "ingress",
        "--remote",
        "198.18.1.2",
    ]);
    assert!(
        !ok && err.contains("nope is not in the state file"),
        "{err}"
    );

    let (ok, out, _) = run(&["lint", "--state", &state()]);
    assert!(ok, "the seed state is clean: {out}");
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "security_groups:\n  - id: g\n    security_group_rules:\n      - {id: ssh, direction: ingress, protocol: tcp, port_range_min: 22, port_range_max: 22}\n",
    )
    .expect("write");
    let (ok, out, err) = run(&["lint", "--state", &bad.display().to_string(), "-f", "json"]);
    assert!(!ok && err.contains("finding"), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    let kinds: Vec<&str> = v
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|f| f["Kind"].as_str())
        .collect();
    assert!(
        kinds.contains(&"world-open") && kinds.contains(&"unused-group"),
        "{out}"
    );

    std::fs::write(&bad, "ports:\n  - {id: p, mac_address: \"fa:16:3e:00:00:01\", fixed_ips: [{ip_address: 198.18.0.300}]}\n").expect("write");
    let (ok, _, err) = run(&[
        "compile",
        "--state",
        &bad.display().to_string(),
        "--host",
        "h",
    ]);
    assert!(
        !ok && err.contains("ports[0].fixed_ips[0].ip_address") && err.contains("198.18.0.300"),
        "{err}"
    );
}

/// `palisade completions SHELL` prints a script each shell accepts; `palisade man` writes a
/// page per command that man can render.
#[test]
fn completions_and_man_pages() {
    for (shell, check) in [("bash", "bash"), ("zsh", "zsh"), ("fish", "fish")] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_palisade"))
            .args(["completions", shell])
            .output()
            .expect("completions");
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("reconcile") && text.contains("agent"),
            "{shell}: subcommands in the script"
        );
        let have = std::process::Command::new("sh")
            .args(["-c", &format!("command -v {check}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if shell == "bash" && have {
            let script = tempfile::NamedTempFile::new().expect("tmp");
            std::fs::write(script.path(), text.as_bytes()).expect("write");
            let ok = std::process::Command::new("bash")
                .arg("-n")
                .arg(script.path())
                .status()
                .expect("bash -n");
            assert!(ok.success(), "bash parses the completion script");
        }
    }
    let dir = tempfile::tempdir().expect("tmp");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(["man", "--out"])
        .arg(dir.path())
        .output()
        .expect("man");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for page in [
        "palisade.1",
        "palisade-server.1",
        "palisade-agent.1",
        "palisade-reconcile-apply.1",
    ] {
        let text = std::fs::read_to_string(dir.path().join(page))
            .unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(
            text.contains(".TH") && text.contains(".SH NAME"),
            "{page} is a man page"
        );
    }
    let agent = std::fs::read_to_string(dir.path().join("palisade-agent.1")).expect("agent page");
    assert!(agent.contains("config"), "options are documented");
}
