//! The spec describes exactly the routes the server registers, and is well formed.

use std::collections::BTreeSet;

use actix_web::test as web_test;
use actix_web::App;
use serde_json::Value;

use super::{spec, spec_json};

/// Every route the server answers, as `(method, OpenAPI path)`: the one list of what must be
/// documented. (The MLflow routes are also mounted under `/ajax-api/2.0/mlflow`; Swagger UI's
/// assets under `/docs/`.)
const ROUTES: &[(&str, &str)] = &[
    ("post", "/api/v1/auth/token"),
    ("get", "/api/v1/auth/whoami"),
    ("post", "/api/v1/auth/tokens"),
    ("get", "/api/v1/auth/tokens"),
    ("delete", "/api/v1/auth/tokens/{id}"),
    ("post", "/api/v1/users"),
    ("get", "/api/v1/users"),
    ("put", "/api/v1/users/{username}/password"),
    ("put", "/api/v1/users/{username}/role"),
    ("post", "/api/v1/tenants"),
    ("get", "/api/v1/tenants"),
    ("put", "/api/v1/tenants/{id}/tier"),
    ("get", "/api/v1/usage"),
    ("post", "/api/2.0/mlflow/experiments/create"),
    ("get", "/api/2.0/mlflow/experiments/get"),
    ("get", "/api/2.0/mlflow/experiments/get-by-name"),
    ("post", "/api/2.0/mlflow/experiments/search"),
    ("get", "/api/2.0/mlflow/experiments/search"),
    ("post", "/api/2.0/mlflow/experiments/delete"),
    ("post", "/api/2.0/mlflow/experiments/restore"),
    ("post", "/api/2.0/mlflow/experiments/update"),
    ("post", "/api/2.0/mlflow/experiments/set-experiment-tag"),
    ("post", "/api/2.0/mlflow/experiments/delete-experiment-tag"),
    ("post", "/api/2.0/mlflow/runs/create"),
    ("post", "/api/2.0/mlflow/runs/update"),
    ("get", "/api/2.0/mlflow/runs/get"),
    ("post", "/api/2.0/mlflow/runs/search"),
    ("post", "/api/2.0/mlflow/runs/delete"),
    ("post", "/api/2.0/mlflow/runs/restore"),
    ("post", "/api/2.0/mlflow/runs/log-metric"),
    ("post", "/api/2.0/mlflow/runs/log-parameter"),
    ("post", "/api/2.0/mlflow/runs/set-tag"),
    ("post", "/api/2.0/mlflow/runs/delete-tag"),
    ("post", "/api/2.0/mlflow/runs/log-batch"),
    ("post", "/api/2.0/mlflow/runs/log-inputs"),
    ("get", "/api/2.0/mlflow/metrics/get-history"),
    ("get", "/api/2.0/mlflow/artifacts/list"),
    ("post", "/api/2.0/mlflow/logged-models/search"),
    ("get", "/api/2.0/mlflow-artifacts/artifacts"),
    ("put", "/api/2.0/mlflow-artifacts/artifacts/{path}"),
    ("get", "/api/2.0/mlflow-artifacts/artifacts/{path}"),
    ("delete", "/api/2.0/mlflow-artifacts/artifacts/{path}"),
    ("get", "/api/3.0/mlflow/server-info"),
    ("get", "/version"),
    ("post", "/api/v1/devices"),
    ("get", "/api/v1/devices"),
    ("get", "/api/v1/devices/{id}"),
    ("post", "/api/v1/devices/{id}/keys/rotate"),
    ("post", "/api/v1/devices/{id}/keys/revoke"),
    ("post", "/api/v1/telemetry"),
    ("post", "/api/v1/telemetry/batch"),
    ("post", "/api/v1/telemetry/ndjson"),
    ("get", "/api/v1/analytics/{name}"),
    ("post", "/api/v1/models"),
    ("get", "/api/v1/models/{id}"),
    ("post", "/api/v1/datasets/files"),
    ("post", "/api/v1/datasets"),
    ("get", "/api/v1/datasets/{id}"),
    ("post", "/api/v1/jobs"),
    ("get", "/api/v1/jobs"),
    ("get", "/api/v1/jobs/{id}"),
    ("post", "/api/v1/jobs/{id}/cancel"),
    ("get", "/api/v1/jobs/{id}/recommendation"),
    ("post", "/api/v1/jobs/{id}/recommendation"),
    ("get", "/api/v1/jobs/{id}/variants/{technique}/model"),
    ("post", "/api/v1/registered-models/{name}/versions"),
    ("get", "/api/v1/registered-models/{name}/versions"),
    ("get", "/ws/telemetry"),
    ("get", "/ws/jobs/{id}"),
    ("get", "/health"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
    ("get", "/docs"),
];

/// Operations that need no credentials.
const PUBLIC: &[&str] = &[
    "/health",
    "/version",
    "/openapi.json",
    "/docs",
    "/api/v1/auth/token",
];

const TAGS: &[&str] = &[
    "mlflow",
    "accounts",
    "devices",
    "telemetry",
    "analytics",
    "models",
    "jobs",
    "registry",
    "ops",
];

const METHODS: &[&str] = &["get", "put", "post", "delete", "patch", "head", "options"];

fn doc() -> Value {
    serde_json::from_str(&spec_json()).expect("the spec is JSON")
}

/// `(method, path, operation)` of every documented operation.
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            if METHODS.contains(&method.as_str()) {
                out.push((method.clone(), path.clone(), op.clone()));
            }
        }
    }
    out
}

#[test]
fn documents_exactly_the_registered_routes() {
    let expected: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(expected.len(), ROUTES.len(), "ROUTES lists a route twice");
    let documented: BTreeSet<(String, String)> = operations(&doc())
        .into_iter()
        .map(|(m, p, _)| (m, p))
        .collect();
    let missing: Vec<_> = expected.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "undocumented routes: {missing:?}; documented but not in ROUTES: {extra:?}"
    );
}

/// A concrete request path for an OpenAPI path: each `{param}` becomes `x1`.
fn concrete(path: &str) -> String {
    let re = regex::Regex::new(r"\{[^}]+\}").unwrap();
    re.replace_all(path, "x1").into_owned()
}

/// The route pattern actix matched, in OpenAPI form (`{path:.*}` → `{path}`).
fn openapi_form(pattern: &str) -> String {
    let re = regex::Regex::new(r"\{([A-Za-z_]+):[^}]*\}").unwrap();
    re.replace_all(pattern, "{$1}").into_owned()
}

/// Each route of `ROUTES` reaches a handler of `api::configure` under that very pattern and
/// method (with no application state the handlers fail, but not with 404 or 405), also under
/// `/ajax-api` for MLflow.
#[actix_web::test]
async fn every_listed_route_is_registered() {
    let app = web_test::init_service(App::new().configure(crate::api::configure)).await;
    let mut probes: Vec<(&str, String, String)> = Vec::new();
    for (method, path) in ROUTES {
        probes.push((method, concrete(path), path.to_string()));
        if let Some(rest) = path.strip_prefix("/api/2.0/mlflow/") {
            let ajax = format!("/ajax-api/2.0/mlflow/{rest}");
            probes.push((method, concrete(&ajax), ajax));
        }
    }
    for (method, uri, pattern) in probes {
        let req = web_test::TestRequest::default()
            .method(method.to_uppercase().parse().unwrap())
            .uri(&uri)
            .to_request();
        let res = web_test::call_service(&app, req).await;
        let matched = res
            .request()
            .match_pattern()
            .map(|p| openapi_form(p.as_ref()));
        assert_eq!(
            matched.as_deref(),
            Some(pattern.as_str()),
            "{method} {uri}: no route"
        );
        let status = res.status().as_u16();
        assert!(
            status != 404 && status != 405,
            "{method} {uri} answered {status}"
        );
    }
}

/// Every `.route("...", web::<method>()` and `web::resource("...")` in the routing code is in
/// `ROUTES`: a route added without documentation fails here.
#[test]
fn route_registrations_in_the_source_are_listed() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api");
    let route = regex::Regex::new(r#"\.route\(\s*"([^"]+)",\s*web::(\w+)\(\)"#).unwrap();
    let resource = regex::Regex::new(
        r#"web::resource\(\s*"([^"]+)"\s*\)((?:\s*\.route\(\s*web::\w+\(\)\.to\([^)]*\)\s*\))+)"#,
    )
    .unwrap();
    let method = regex::Regex::new(r"web::(\w+)\(\)").unwrap();
    let listed: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    let mut found = Vec::new();
    let mut files = vec![root.join("mod.rs"), root.join("openapi.rs")];
    for dir in ["mlflow", "v1"] {
        files.push(root.join(dir).join("mod.rs"));
    }
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for c in route.captures_iter(&text) {
            found.push((c[2].to_string(), c[1].to_string()));
        }
        for c in resource.captures_iter(&text) {
            for m in method.captures_iter(&c[2]) {
                found.push((m[1].to_string(), c[1].to_string()));
            }
        }
    }
    assert!(
        found.len() > 40,
        "the scan found only {} routes",
        found.len()
    );
    for (m, p) in found {
        let p = openapi_form(&p);
        let candidates = [
            p.clone(),
            format!("/api/2.0/mlflow{p}"),
            format!("/api/v1{p}"),
        ];
        assert!(
            candidates
                .iter()
                .any(|c| listed.contains(&(m.clone(), c.clone()))),
            "route {m} {p} is registered but neither listed in ROUTES nor documented"
        );
    }
}

#[test]
fn spec_is_deterministic_and_references_resolve() {
    let a = spec_json();
    assert_eq!(a, spec_json());
    assert!(a.ends_with("}\n"));
    let doc = doc();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(doc["info"]["title"], "RunLedger");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    for r in refs {
        let parts: Vec<&str> = r.split('/').collect();
        assert!(
            parts.len() == 4
                && parts[0] == "#"
                && doc["components"][parts[2]].get(parts[3]).is_some(),
            "dangling reference {r}"
        );
    }
    assert_eq!(
        spec().paths.paths.len(),
        doc["paths"].as_object().unwrap().len()
    );
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("$ref", Value::String(s)) => out.push(s.clone()),
                    _ => collect_refs(v, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

#[test]
fn operations_are_tagged_named_secured_and_answer_errors() {
    let doc = doc();
    assert_eq!(
        doc["security"],
        serde_json::json!([{"bearer": []}, {"basic": []}])
    );
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    for name in ["bearer", "basic", "device_key"] {
        assert!(schemes.contains_key(name), "security scheme {name}");
    }
    let mut ids = BTreeSet::new();
    for (method, path, op) in operations(&doc) {
        let what = format!("{method} {path}");
        let id = op["operationId"].as_str().unwrap_or_default().to_string();
        assert!(
            !id.is_empty() && ids.insert(id.clone()),
            "{what}: operationId {id:?}"
        );
        let tags = op["tags"].as_array().unwrap();
        assert!(
            tags.len() == 1 && TAGS.contains(&tags[0].as_str().unwrap()),
            "{what}: tags {tags:?}"
        );
        assert!(op["summary"].is_string(), "{what}: no summary");
        let responses = op["responses"].as_object().unwrap();
        assert!(
            responses
                .keys()
                .any(|s| s.starts_with('2') || s == "101" || s == "308"),
            "{what}: no success response"
        );
        if PUBLIC.contains(&path.as_str()) {
            assert_eq!(op["security"], serde_json::json!([]), "{what}: not public");
            continue;
        }
        if path.starts_with("/api/v1/telemetry") {
            assert_eq!(
                op["security"],
                serde_json::json!([{"device_key": []}]),
                "{what}"
            );
        } else {
            assert!(op.get("security").is_none(), "{what}: overrides security");
        }
        for status in ["401", "403"] {
            assert!(responses.contains_key(status), "{what}: no {status}");
        }
        if path.starts_with("/api/v1") && method == "post" {
            assert!(
                responses.contains_key("400") || responses.contains_key("404"),
                "{what}"
            );
        }
        let retry = &doc["components"]["responses"];
        if let Some(r) = responses.get("429") {
            let name = r["$ref"].as_str().unwrap().rsplit('/').next().unwrap();
            assert!(
                retry[name]["headers"].get("Retry-After").is_some(),
                "{what}"
            );
        }
    }
}

#[test]
fn json_request_bodies_have_examples() {
    let doc = doc();
    for (method, path, op) in operations(&doc) {
        let Some(json) = op["requestBody"]["content"].get("application/json") else {
            continue;
        };
        let schema_example = json["schema"]["$ref"]
            .as_str()
            .and_then(|r| r.rsplit('/').next())
            .map(|name| doc["components"]["schemas"][name].get("example").is_some());
        assert!(
            json.get("example").is_some() || schema_example == Some(true),
            "{method} {path}: request body without an example"
        );
    }
}

/// The error schemas are the bodies the server sends.
#[actix_web::test]
async fn error_schemas_match_the_bodies_sent() {
    use actix_web::ResponseError;

    use super::errors::{ApiErrorBody, ApiErrorDetail};
    use crate::api::v1::error::{ApiError, Code};

    let details = serde_json::json!({"field": "body"});
    let e = ApiError::new(Code::NotFound, "gone").with_details(details.clone());
    let body = actix_web::body::to_bytes(e.error_response().into_body())
        .await
        .unwrap();
    let sent: Value = serde_json::from_slice(&body).unwrap();
    let documented = serde_json::to_value(ApiErrorBody {
        error: ApiErrorDetail {
            code: Code::NotFound,
            message: "gone".into(),
            details: Some(details),
        },
    })
    .unwrap();
    assert_eq!(sent, documented);

    let e = crate::api::error::MlflowError::not_found("gone");
    let body = actix_web::body::to_bytes(e.error_response().into_body())
        .await
        .unwrap();
    let sent: Value = serde_json::from_slice(&body).unwrap();
    let doc = doc();
    let schema = &doc["components"]["schemas"]["MlflowError"]["properties"];
    let mut keys: Vec<&String> = sent.as_object().unwrap().keys().collect();
    keys.sort();
    let mut documented: Vec<&String> = schema.as_object().unwrap().keys().collect();
    documented.sort();
    assert_eq!(keys, documented);
}

/// `/docs` leads to the embedded Swagger UI, which loads `/openapi.json` and nothing remote.
#[actix_web::test]
async fn docs_are_served_offline() {
    let app = web_test::init_service(App::new().configure(super::configure)).await;
    let res =
        web_test::call_service(&app, web_test::TestRequest::get().uri("/docs").to_request()).await;
    assert_eq!(res.status().as_u16(), 308);
    assert_eq!(res.headers().get("location").unwrap(), "/docs/");
    for (uri, needle) in [
        ("/docs/", "swagger-ui"),
        ("/docs/swagger-initializer.js", "/openapi.json"),
    ] {
        let res =
            web_test::call_service(&app, web_test::TestRequest::get().uri(uri).to_request()).await;
        assert!(res.status().is_success(), "{uri}: {}", res.status());
        let text = String::from_utf8(web_test::read_body(res).await.to_vec()).unwrap();
        assert!(text.contains(needle), "{uri}: {text}");
        assert!(
            !text.contains("http://") && !text.contains("https://"),
            "{uri} references a remote URL: {text}"
        );
    }
    let res = web_test::call_service(
        &app,
        web_test::TestRequest::get()
            .uri("/openapi.json")
            .to_request(),
    )
    .await;
    assert_eq!(
        res.headers().get("content-type").unwrap(),
        "application/json"
    );
    assert_eq!(web_test::read_body(res).await, spec_json().as_bytes());
}
