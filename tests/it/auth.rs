//! Authentication against the real server: bad tokens of every kind are refused, passwords
//! and personal tokens work, viewers cannot write, rate limits answer 429, `--auth disabled`
//! is refused off loopback, and no secret reaches the log or an error body.

use std::path::Path;
use std::process::Command;

use runledger::auth::jwt::{parse_algorithm, JwtKeys, KeySource};
use runledger::events::Role;
use serde_json::{json, Value};

use crate::support::{bin, spawn_app_with, App};

const SECRET: &str = "an HS256 secret for tests, 32+ bytes long";

fn keys_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/keys")
}

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

fn hs(secret: &str, audience: &str) -> JwtKeys {
    JwtKeys::new(
        parse_algorithm("HS256").unwrap(),
        KeySource::Secret(secret.as_bytes()),
        "runledger",
        audience,
    )
    .unwrap()
}

fn pem(alg: &str, name: &str) -> JwtKeys {
    let dir = keys_dir();
    JwtKeys::new(
        parse_algorithm(alg).unwrap(),
        KeySource::Pem {
            private: &dir.join(format!("{name}-private.pem")),
            public: &dir.join(format!("{name}-public.pem")),
        },
        "runledger",
        "runledger",
    )
    .unwrap()
}

/// `(status, body)` of a request with `Authorization: <header>`.
fn call(
    app: &App,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let c = App::client();
    let url = format!("{}{path}", app.url);
    let mut r = match method {
        "GET" => c.get(url),
        "PUT" => c.put(url),
        "DELETE" => c.delete(url),
        _ => c.post(url),
    };
    if let Some(a) = auth {
        r = r.header("Authorization", a);
    }
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().unwrap_or(Value::Null))
}

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

fn b64(v: &Value) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

#[test]
fn bad_tokens_of_every_kind_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_with(dir.path(), &format!("[auth]\nsecret = {SECRET:?}\n"));
    let good = hs(SECRET, "runledger");
    let me = |t: &str| call(&app, "GET", "/api/v1/auth/whoami", Some(&bearer(t)), None);

    let valid = good
        .sign(&good.claims("admin", "default", Role::Admin, now(), 60))
        .unwrap();
    let (s, v) = me(&valid);
    assert_eq!((s, v["username"].as_str()), (200, Some("admin")), "{v}");

    let expired = good
        .sign(&good.claims("admin", "default", Role::Admin, now() - 7200, 60))
        .unwrap();
    let wrong_key = hs("another secret that is long enough!!", "runledger");
    let wrong_key = wrong_key
        .sign(&wrong_key.claims("admin", "default", Role::Admin, now(), 60))
        .unwrap();
    let wrong_aud = hs(SECRET, "someone-else");
    let wrong_aud = wrong_aud
        .sign(&wrong_aud.claims("admin", "default", Role::Admin, now(), 60))
        .unwrap();
    let parts: Vec<&str> = valid.split('.').collect();
    let mut claims: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, parts[1])
            .unwrap(),
    )
    .unwrap();
    claims["sub"] = json!("someone");
    let tampered = format!("{}.{}.{}", parts[0], b64(&claims), parts[2]);
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        parts[1]
    );
    let unknown_user = good
        .sign(&good.claims("ghost", "default", Role::Admin, now(), 60))
        .unwrap();
    for (what, token) in [
        ("expired", expired.as_str()),
        ("wrong key", &wrong_key),
        ("wrong audience", &wrong_aud),
        ("tampered", &tampered),
        ("alg none", &none),
        ("unknown user", &unknown_user),
        ("garbage", "not-a-token"),
        ("revoked-looking PAT", "rlp_nope"),
    ] {
        let (s, v) = me(token);
        assert_eq!(s, 401, "{what}: {v}");
        assert_eq!(v["error"]["code"], "UNAUTHENTICATED", "{what}: {v}");
        // The refusal never echoes the credential.
        assert!(!v.to_string().contains(token), "{what}: {v}");
    }
    // MLflow routes refuse in MLflow's format.
    let (s, v) = call(
        &app,
        "GET",
        "/api/2.0/mlflow/experiments/get?experiment_id=0",
        None,
        None,
    );
    assert_eq!(
        (s, v["error_code"].as_str()),
        (401, Some("UNAUTHENTICATED")),
        "{v}"
    );
    // Public routes stay public.
    assert_eq!(call(&app, "GET", "/health", None, None).0, 200);
    app.stop();
}

#[test]
fn rs256_and_eddsa_keys_verify_and_algorithm_confusion_fails() {
    for (alg, name) in [("RS256", "rsa"), ("EdDSA", "ed25519")] {
        let dir = tempfile::tempdir().unwrap();
        let k = keys_dir();
        let config = format!(
            "[auth]\nalgorithm = {alg:?}\nprivate_key = {:?}\npublic_key = {:?}\n",
            k.join(format!("{name}-private.pem")),
            k.join(format!("{name}-public.pem"))
        );
        let app = spawn_app_with(dir.path(), &config);
        let keys = pem(alg, name);
        let token = keys
            .sign(&keys.claims("admin", "default", Role::Admin, now(), 60))
            .unwrap();
        let (s, v) = call(
            &app,
            "GET",
            "/api/v1/auth/whoami",
            Some(&bearer(&token)),
            None,
        );
        assert_eq!(s, 200, "{alg}: {v}");
        // The classic confusion: HS256 "signed" with the public key as the HMAC secret.
        let public = std::fs::read_to_string(k.join(format!("{name}-public.pem"))).unwrap();
        let forged = hs(&public, "runledger");
        let forged = forged
            .sign(&forged.claims("admin", "default", Role::Admin, now(), 60))
            .unwrap();
        let (s, v) = call(
            &app,
            "GET",
            "/api/v1/auth/whoami",
            Some(&bearer(&forged)),
            None,
        );
        assert_eq!(s, 401, "{alg} confusion: {v}");
        // Login issues tokens with the configured algorithm.
        let (s, _) = call(
            &app,
            "PUT",
            "/api/v1/users/admin/password",
            Some(&bearer(&token)),
            Some(json!({"password": "correct horse battery"})),
        );
        assert_eq!(s, 204);
        let (s, v) = call(
            &app,
            "POST",
            "/api/v1/auth/token",
            None,
            Some(json!({"username": "admin", "password": "correct horse battery"})),
        );
        assert_eq!(s, 200, "{v}");
        let issued = v["access_token"].as_str().unwrap();
        assert!(keys.verify(issued).is_ok(), "{alg}");
        app.stop();
    }
}

#[test]
fn passwords_tokens_and_roles() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_with(dir.path(), "");
    let admin = bearer(app.token.as_deref().unwrap());
    let (s, v) = call(
        &app,
        "POST",
        "/api/v1/users",
        Some(&admin),
        Some(json!({"username": "vera", "password": "viewer-password", "role": "viewer"})),
    );
    assert_eq!(s, 201, "{v}");
    // Too short a password names the field and stores nothing.
    let (s, v) = call(
        &app,
        "POST",
        "/api/v1/users",
        Some(&admin),
        Some(json!({"username": "shorty", "password": "short"})),
    );
    assert_eq!(
        (s, v["error"]["details"]["field"].as_str()),
        (400, Some("password")),
        "{v}"
    );

    let login = |u: &str, p: &str| {
        call(
            &app,
            "POST",
            "/api/v1/auth/token",
            None,
            Some(json!({"username": u, "password": p})),
        )
    };
    let (s, v) = login("vera", "wrong-password");
    assert_eq!(s, 401);
    assert!(!v.to_string().contains("wrong-password"), "{v}");
    let (s, v) = login("vera", "viewer-password");
    assert_eq!((s, v["role"].as_str()), (200, Some("viewer")), "{v}");
    let viewer = bearer(v["access_token"].as_str().unwrap());

    // A viewer reads but cannot write, on either surface.
    let (s, _) = call(
        &app,
        "GET",
        "/api/2.0/mlflow/experiments/get?experiment_id=0",
        Some(&viewer),
        None,
    );
    assert_eq!(s, 200);
    let (s, v) = call(
        &app,
        "POST",
        "/api/2.0/mlflow/experiments/create",
        Some(&viewer),
        Some(json!({"name": "nope"})),
    );
    assert_eq!(
        (s, v["error_code"].as_str()),
        (403, Some("PERMISSION_DENIED")),
        "{v}"
    );
    let (s, v) = call(
        &app,
        "POST",
        "/api/v1/devices",
        Some(&viewer),
        Some(json!({"name": "d"})),
    );
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (403, Some("FORBIDDEN")),
        "{v}"
    );
    let (s, v) = call(&app, "POST", "/api/v1/models?name=m", Some(&viewer), None);
    assert_eq!(s, 403, "{v}");

    // Basic auth with the password, and with a personal token as the password.
    let basic = |u: &str, p: &str| {
        use base64::Engine;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
        )
    };
    let (s, _) = call(
        &app,
        "GET",
        "/api/v1/auth/whoami",
        Some(&basic("vera", "viewer-password")),
        None,
    );
    assert_eq!(s, 200);
    let (s, _) = call(
        &app,
        "GET",
        "/api/v1/auth/whoami",
        Some(&basic("vera", "nope-nope")),
        None,
    );
    assert_eq!(s, 401);
    let (s, v) = call(
        &app,
        "POST",
        "/api/v1/auth/tokens",
        Some(&viewer),
        Some(json!({"name": "laptop"})),
    );
    assert_eq!(s, 201, "{v}");
    let pat = v["token"].as_str().unwrap().to_string();
    let id = v["token_id"].as_str().unwrap().to_string();
    assert_eq!(
        call(
            &app,
            "GET",
            "/api/v1/auth/whoami",
            Some(&basic("vera", &pat)),
            None
        )
        .0,
        200
    );
    assert_eq!(
        call(
            &app,
            "GET",
            "/api/v1/auth/whoami",
            Some(&basic("admin", &pat)),
            None
        )
        .0,
        401
    );
    let (_, v) = call(
        &app,
        "GET",
        "/api/v1/auth/tokens",
        Some(&bearer(&pat)),
        None,
    );
    assert_eq!(v["tokens"][0]["name"], "laptop", "{v}");
    assert!(
        !v.to_string().contains(&pat),
        "listing never shows the token"
    );
    // Revoked: it stops working at once.
    let (s, _) = call(
        &app,
        "DELETE",
        &format!("/api/v1/auth/tokens/{id}"),
        Some(&bearer(&pat)),
        None,
    );
    assert_eq!(s, 204);
    assert_eq!(
        call(
            &app,
            "GET",
            "/api/v1/auth/whoami",
            Some(&bearer(&pat)),
            None
        )
        .0,
        401
    );

    // A member may not create users or tenants.
    let (s, _) = call(
        &app,
        "PUT",
        "/api/v1/users/vera/role",
        Some(&admin),
        Some(json!({"role": "member"})),
    );
    assert_eq!(s, 200);
    let (s, _) = call(
        &app,
        "POST",
        "/api/v1/users",
        Some(&viewer),
        Some(json!({"username": "x1"})),
    );
    assert_eq!(s, 403);
    let (s, _) = call(
        &app,
        "POST",
        "/api/v1/tenants",
        Some(&viewer),
        Some(json!({"name": "t"})),
    );
    assert_eq!(s, 403);

    // No secret in the server's log.
    let log = app.stop();
    for secret in ["viewer-password", "wrong-password", pat.as_str()] {
        assert!(!log.contains(secret), "the log contains a secret: {secret}");
    }
    assert!(!log.contains(admin.trim_start_matches("Bearer ")));
}

#[test]
fn bursts_get_429_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_with(dir.path(), "[auth]\ntoken_rate = 1\ntoken_burst = 5\n");
    let c = app.authed();
    let statuses: Vec<(u16, Option<String>)> = (0..20)
        .map(|_| {
            let r = c
                .get(format!("{}/api/v1/auth/whoami", app.url))
                .send()
                .unwrap();
            let retry = r
                .headers()
                .get("Retry-After")
                .map(|h| h.to_str().unwrap().to_string());
            (r.status().as_u16(), retry)
        })
        .collect();
    assert!(
        statuses.iter().take(5).all(|(s, _)| *s == 200),
        "{statuses:?}"
    );
    let limited: Vec<_> = statuses.iter().filter(|(s, _)| *s == 429).collect();
    assert!(!limited.is_empty(), "{statuses:?}");
    assert!(
        limited.iter().all(|(_, r)| r.as_deref() == Some("1")),
        "{statuses:?}"
    );
    app.stop();
}

/// With authentication off every request is the same local user; a per-caller budget would
/// cap the whole server, so only the per-IP limit applies.
#[test]
fn auth_disabled_has_no_per_caller_budget() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_with(
        dir.path(),
        "[auth]\nmode = \"disabled\"\ntoken_rate = 1\ntoken_burst = 5\n",
    );
    let c = App::client();
    let url = format!(
        "{}/api/2.0/mlflow/experiments/search?max_results=1",
        app.url
    );
    let statuses: Vec<u16> = (0..20)
        .map(|_| c.get(&url).send().unwrap().status().as_u16())
        .collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    app.stop();
}

#[test]
fn auth_disabled_is_refused_off_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(bin())
        .args([
            "serve",
            "--auth",
            "disabled",
            "--bind",
            "0.0.0.0:0",
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("loopback"), "{err}");
}

#[test]
fn auth_disabled_on_loopback_says_so_and_needs_no_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_with(dir.path(), "[auth]\nmode = \"disabled\"\n");
    assert!(
        app.token.is_none(),
        "no administrator is created with auth disabled"
    );
    let (s, v) = call(&app, "GET", "/api/v1/auth/whoami", None, None);
    assert_eq!((s, v["role"].as_str()), (200, Some("admin")), "{v}");
    let log = app.stop();
    assert!(log.contains("AUTHENTICATION IS DISABLED"), "{log}");
}
