//! The committed OpenAPI document, the `openapi` command and the served spec and docs agree.

use std::process::Command;

use crate::support::{bin, spawn_app_in, App};

const REGENERATE: &str = "cargo run --release -- openapi --out openapi/openapi.json";

fn committed() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi/openapi.json");
    std::fs::read_to_string(&path).unwrap_or_default()
}

#[test]
fn committed_spec_is_current() {
    let current = runledger::api::openapi::spec_json();
    assert!(
        committed() == current,
        "openapi/openapi.json is stale or missing: run `{REGENERATE}`"
    );
}

#[test]
fn the_openapi_command_prints_and_writes_the_spec() {
    let current = runledger::api::openapi::spec_json();
    let out = Command::new(bin()).arg("openapi").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap(), current);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/openapi.json");
    let out = Command::new(bin())
        .args(["openapi", "--out"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), current);
}

#[test]
fn the_server_serves_the_spec_and_offline_docs() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_in(dir.path());
    let client = App::client();
    let r = client
        .get(format!("{}/openapi.json", app.url))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().unwrap(), runledger::api::openapi::spec_json());

    // `/docs` redirects to the embedded Swagger UI, whose page and assets are local.
    let r = client.get(format!("{}/docs", app.url)).send().unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.url().path().ends_with("/docs/"), "{}", r.url());
    let html = r.text().unwrap();
    assert!(
        html.contains("<html") && html.contains("swagger-ui"),
        "{html}"
    );
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "{html}"
    );
    for asset in [
        "swagger-ui.css",
        "swagger-ui-bundle.js",
        "swagger-initializer.js",
    ] {
        let r = client
            .get(format!("{}/docs/{asset}", app.url))
            .send()
            .unwrap();
        assert_eq!(r.status(), 200, "{asset}");
    }
    let init = client
        .get(format!("{}/docs/swagger-initializer.js", app.url))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(init.contains("\"/openapi.json\""), "{init}");

    // Every documented route is served (not the 404 of an unknown endpoint), here with the
    // real state behind it.
    let spec: serde_json::Value =
        serde_json::from_str(&runledger::api::openapi::spec_json()).unwrap();
    let param = regex::Regex::new(r"\{[^}]+\}").unwrap();
    for (path, item) in spec["paths"].as_object().unwrap() {
        let concrete = param.replace_all(path, "x1").into_owned();
        for method in item.as_object().unwrap().keys() {
            let m: reqwest::Method = method.to_uppercase().parse().unwrap();
            let r = client
                .request(m, format!("{}{concrete}", app.url))
                .send()
                .unwrap();
            let status = r.status().as_u16();
            let body = r.text().unwrap_or_default();
            let unknown = serde_json::from_str::<serde_json::Value>(&body)
                .is_ok_and(|v| v["error_code"] == "ENDPOINT_NOT_FOUND");
            assert!(
                status != 405 && !unknown,
                "{method} {path}: {status} {body}"
            );
        }
    }
}
