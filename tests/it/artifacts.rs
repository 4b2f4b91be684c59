//! Artifact path safety: nothing is written outside the artifact root.

use std::io::{Read, Write};

use crate::support::*;

/// PUT with the request line written verbatim. Returns (status, body).
fn raw_put(app: &App, path: &str, body: &str) -> (u16, String) {
    let addr = app.url.trim_start_matches("http://");
    let token = app.token.as_deref().unwrap_or_default();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "PUT {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, resp)
}

#[test]
fn path_traversal_is_rejected_and_writes_nothing_outside() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_in(dir.path());
    let exp = app.create_experiment("artifacts");
    let client = app.authed();
    let base = format!("{}/api/2.0/mlflow-artifacts/artifacts", app.url);
    for evil in [
        "..%2F..%2Fescape.txt",
        "%2e%2e/%2e%2e/escape.txt",
        "1/../../escape.txt",
        "%2Fetc%2Fescape.txt",
        "a/%2e%2e/%2e%2e/%2e%2e/escape.txt",
    ] {
        // Raw HTTP: an HTTP client library would normalise the dot segments away.
        let (status, body) = raw_put(
            &app,
            &format!("/api/2.0/mlflow-artifacts/artifacts/{evil}"),
            "x",
        );
        assert_eq!(status, 400, "{evil}: {body}");
        assert!(body.contains("INVALID_PARAMETER_VALUE"), "{body}");
    }
    // A symlink inside the root pointing outside is not followed.
    let outside = tempfile::tempdir().unwrap();
    let exp_dir = dir.path().join("artifacts").join(&exp);
    std::fs::create_dir_all(&exp_dir).unwrap();
    std::os::unix::fs::symlink(outside.path(), exp_dir.join("link")).unwrap();
    let r = client
        .put(format!("{base}/{exp}/link/x.txt"))
        .body("x")
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    assert!(!dir.path().join("escape.txt").exists());
    assert!(!dir.path().parent().unwrap().join("escape.txt").exists());

    // A normal upload round-trips.
    let r = client
        .put(format!("{base}/{exp}/ok/a.txt"))
        .body("hello")
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let got = client
        .get(format!("{base}/{exp}/ok/a.txt"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(got, "hello");
    let list: serde_json::Value = client
        .get(&base)
        .query(&[("path", format!("{exp}/ok"))])
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(list["files"][0]["path"], "a.txt");
    assert_eq!(list["files"][0]["file_size"], 5);
    app.stop();
}
