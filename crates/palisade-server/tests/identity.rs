//! The identity service against a real SQLite store, in process: password login, role
//! inference, expiry and the sweep of expired tokens.

use palisade_server::service::identity::{effective_roles, valid_token};
use palisade_server::{Context, Service, ServiceConfig};
use palisade_store::SqliteStore;
use serde_json::json;
use std::sync::Arc;

fn admin() -> Context {
    Context {
        project_id: "p-admin".into(),
        roles: vec!["admin".into()],
        user: "admin".into(),
        user_id: String::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_scopes_roles_expires_and_sweeps() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(SqliteStore::open(dir.path().join("s.db")).expect("store"));
    let svc = Service::new(store, ServiceConfig::default())
        .await
        .expect("service");
    let ctx = admin();
    let p = svc
        .create_project(&ctx, json!({"name": "team"}).as_object().expect("obj"))
        .await
        .expect("project");
    let u = svc
        .create_user(
            &ctx,
            json!({"name": "dana", "password": "pw-dana-1"})
                .as_object()
                .expect("obj"),
        )
        .await
        .expect("user");
    assert!(
        u.password_hash.starts_with("$argon2id$"),
        "passwords are stored as Argon2id hashes"
    );
    let body = |pw: &str| json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "dana", "domain": {"id": "default"}, "password": pw}}}, "scope": {"project": {"id": p.id}}}});
    assert!(
        svc.login(&body("pw-dana-1"), None, 3600).await.is_err(),
        "no role on the project yet"
    );
    svc.assign_role(&ctx, &p.id, &u.id, "member", true)
        .await
        .expect("grant");
    assert!(svc.login(&body("wrong"), None, 3600).await.is_err());
    let t = svc.login(&body("pw-dana-1"), None, 1).await.expect("login");
    assert_eq!(t.info.roles, ["member", "reader"], "member implies reader");
    assert_eq!(
        effective_roles(&["admin".to_string()]),
        ["admin", "member", "reader"]
    );
    assert!(valid_token(&svc.cache().read(), &t.token).is_some());
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert!(
        valid_token(&svc.cache().read(), &t.token).is_none(),
        "expired"
    );
    assert_eq!(svc.sweep_expired_tokens().await.expect("sweep"), 1);
    assert!(
        svc.cache().read().tokens.is_empty(),
        "the expired token is gone from the store"
    );
    // A new password ends the user's tokens.
    let t2 = svc
        .login(&body("pw-dana-1"), None, 3600)
        .await
        .expect("login");
    svc.update_user(
        &ctx,
        &u.id,
        json!({"password": "pw-dana-2"}).as_object().expect("obj"),
    )
    .await
    .expect("update");
    assert!(
        valid_token(&svc.cache().read(), &t2.token).is_none(),
        "password change revokes tokens"
    );
    assert!(svc.login(&body("pw-dana-2"), None, 3600).await.is_ok());
    // Unscoped: proves who, grants nothing on the Neutron API; rescoping with it works.
    let unscoped = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"id": u.id, "password": "pw-dana-2"}}}, "scope": "unscoped"}});
    let t3 = svc
        .login(&unscoped, None, 3600)
        .await
        .expect("unscoped login");
    assert!(t3.info.project_id.is_empty() && t3.info.roles.is_empty());
    let rescope = json!({"auth": {"identity": {"methods": ["token"], "token": {"id": t3.token}}, "scope": {"project": {"name": "team", "domain": {"name": "Default"}}}}});
    let t4 = svc.login(&rescope, None, 3600).await.expect("rescoped");
    assert_eq!(t4.info.project_id, p.id);
}
