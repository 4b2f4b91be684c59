//! The proxied artifact API (`/api/2.0/mlflow-artifacts/artifacts`) and `artifacts/list`.

use std::sync::Arc;

use actix_web::body::SizedStream;
use actix_web::{web, HttpRequest, HttpResponse};
use futures::StreamExt;
use serde_json::json;

use super::{ok, ok_empty, Fields, Scope};
use crate::api::error::{ErrorCode, MlflowError};
use crate::api::AppState;
use crate::artifacts::{ArtifactPath, ArtifactStore};
use crate::auth::Principal;
use crate::events::Event;
use crate::query::artifacts::{self, FileInfo};
use crate::query::runs;

const PREFIX: &str = "/api/2.0/mlflow-artifacts/artifacts/";
/// All artifact events go to one stream: they need no validation against other state.
use crate::artifacts::ARTIFACT_STREAM;

/// The artifact path from the raw URI, percent-decoded once and validated.
fn path_of(req: &HttpRequest) -> Result<ArtifactPath, MlflowError> {
    let raw = req.uri().path().strip_prefix(PREFIX).unwrap_or_default();
    let decoded = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| MlflowError::invalid(format!("Invalid path: {raw}")))?;
    Ok(ArtifactPath::parse(&decoded)?)
}

/// Is `segment` (an artifact path's first) an experiment of the caller's tenant?
fn own_experiment(st: &AppState, p: &Principal, segment: &str) -> bool {
    segment.parse::<i64>().is_ok_and(|id| {
        st.ledger
            .read(|s| s.experiment(id).is_some_and(|e| e.tenant == p.tenant()))
    })
}

/// Artifacts live under `<experiment id>/...`: a path outside the caller's experiments is
/// refused, with one message whether the experiment is missing or another tenant's.
fn check_path(st: &AppState, p: &Principal, path: &str) -> Result<(), MlflowError> {
    let first = path.split('/').next().unwrap_or_default();
    if own_experiment(st, p, first) {
        Ok(())
    } else {
        Err(MlflowError::new(
            ErrorCode::PermissionDenied,
            format!("Artifact path '{path}' is not under an experiment of your tenant"),
        ))
    }
}

fn writable(p: &Principal) -> Result<(), MlflowError> {
    if p.caller.can_write() {
        Ok(())
    } else {
        Err(MlflowError::new(
            ErrorCode::PermissionDenied,
            format!("role '{}' is read-only", p.caller.role.as_str()),
        ))
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, MlflowError> + Send + 'static,
) -> Result<T, MlflowError> {
    web::block(f).await.map_err(|e| {
        MlflowError::new(super::super::error::ErrorCode::InternalError, e.to_string())
    })?
}

#[utoipa::path(
    put, path = "/api/2.0/mlflow-artifacts/artifacts/{path}",
    tag = "mlflow", operation_id = "uploadArtifact",
    summary = "Upload an artifact",
    description = "Streams the body to the artifact store and records it once durable. Paths with `..` or absolute paths answer 400.",
    params(("path" = String, Path, description = "Artifact path, e.g. `1/<run_id>/artifacts/model/model.onnx`; percent-encoded once.")),
    request_body(content = crate::api::openapi::schemas::Binary, content_type = "application/octet-stream", description = "The file's bytes (any content type)."),
    responses(
        (status = 200, description = "Stored (empty body)"),
        (status = 400, response = super::schema::MlflowBadRequest),
        super::schema::MlflowAuthErrors,
    )
)]
pub async fn upload(
    st: web::Data<AppState>,
    req: HttpRequest,
    p: Principal,
    mut body: web::Payload,
) -> Result<HttpResponse, MlflowError> {
    writable(&p)?;
    let path = path_of(&req)?;
    check_path(&st, &p, path.as_str())?;
    let store: Arc<ArtifactStore> = st.artifacts.clone();
    let at = path.clone();
    let mut pending = blocking(move || Ok(store.create(&at)?)).await?;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| MlflowError::invalid(format!("upload interrupted: {e}")))?;
        // Small chunks: a write to the page cache is cheap; the sync happens once at commit.
        pending.write(&chunk)?;
    }
    let (size, crc32c) = blocking(move || Ok(pending.commit()?)).await?;
    let event = Event::ArtifactStored {
        run_id: path.run_id(),
        path: path.as_str().to_string(),
        size,
        crc32c,
    };
    st.ledger
        .record(ARTIFACT_STREAM, vec![event], &p.caller.actor)
        .await?;
    Ok(HttpResponse::Ok().finish())
}

#[utoipa::path(
    get, path = "/api/2.0/mlflow-artifacts/artifacts/{path}",
    tag = "mlflow", operation_id = "downloadArtifact",
    summary = "Download an artifact",
    params(("path" = String, Path, description = "Artifact path; percent-encoded once.")),
    responses(
        (status = 200, description = "The file, with a content type guessed from its name", content_type = "application/octet-stream", body = crate::api::openapi::schemas::Binary),
        (status = 400, response = super::schema::MlflowBadRequest),
        (status = 404, response = super::schema::MlflowNotFound),
        super::schema::MlflowAuthErrors,
    )
)]
pub async fn download(
    st: web::Data<AppState>,
    req: HttpRequest,
    p: Principal,
) -> Result<HttpResponse, MlflowError> {
    let path = path_of(&req)?;
    check_path(&st, &p, path.as_str())?;
    let store = st.artifacts.clone();
    let at = path.clone();
    let (file, size) = blocking(move || Ok(store.open_file(&at)?)).await?;
    let stream = tokio_util::io::ReaderStream::new(tokio::fs::File::from_std(file));
    let mime = mime_guess::from_path(path.as_str()).first_or_octet_stream();
    Ok(HttpResponse::Ok()
        .content_type(mime.essence_str())
        .body(SizedStream::new(size, stream)))
}

#[utoipa::path(
    delete, path = "/api/2.0/mlflow-artifacts/artifacts/{path}",
    tag = "mlflow", operation_id = "deleteArtifact",
    summary = "Delete an artifact",
    params(("path" = String, Path, description = "Artifact path; percent-encoded once.")),
    responses(
        (status = 200, description = "Deleted", body = super::schema::Empty),
        (status = 400, response = super::schema::MlflowBadRequest),
        (status = 404, response = super::schema::MlflowNotFound),
        super::schema::MlflowAuthErrors,
    )
)]
pub async fn delete(
    st: web::Data<AppState>,
    req: HttpRequest,
    p: Principal,
) -> Result<HttpResponse, MlflowError> {
    writable(&p)?;
    let path = path_of(&req)?;
    check_path(&st, &p, path.as_str())?;
    let store = st.artifacts.clone();
    let at = path.clone();
    blocking(move || Ok(store.delete(&at)?)).await?;
    let event = Event::ArtifactDeleted {
        run_id: path.run_id(),
        path: path.as_str().to_string(),
    };
    st.ledger
        .record(ARTIFACT_STREAM, vec![event], &p.caller.actor)
        .await?;
    ok_empty()
}

fn files_json(files: Vec<FileInfo>) -> Result<HttpResponse, MlflowError> {
    if files.is_empty() {
        ok_empty()
    } else {
        ok(json!({ "files": files }))
    }
}

#[utoipa::path(
    get, path = "/api/2.0/mlflow-artifacts/artifacts",
    tag = "mlflow", operation_id = "listArtifacts",
    summary = "List a directory of the artifact store",
    params(super::schema::ListArtifactsParams),
    responses(
        (status = 200, description = "The directory's immediate children", body = super::schema::ListArtifactsResponse),
        (status = 400, response = super::schema::MlflowBadRequest),
        super::schema::MlflowAuthErrors,
    )
)]
/// `GET .../artifacts?path=dir`: immediate children of a directory. At the root, only the
/// caller's experiments are listed.
pub async fn list(
    st: web::Data<AppState>,
    req: HttpRequest,
    p: Principal,
) -> Result<HttpResponse, MlflowError> {
    let dir = match Fields::from_query(&req)?.opt_str("path")? {
        Some(p) if !p.trim_matches('/').is_empty() => ArtifactPath::parse(&p)?.as_str().to_string(),
        _ => String::new(),
    };
    if !dir.is_empty() {
        check_path(&st, &p, &dir)?;
    }
    let root = dir.is_empty();
    let mut files = st.queries.read(move |c| artifacts::list(c, &dir)).await?;
    if root {
        files.retain(|f| own_experiment(&st, &p, &f.path));
    }
    files_json(files)
}

/// `GET /api/2.0/mlflow/artifacts/list?run_id=&path=`: run-relative listing.
#[utoipa::path(
    get, path = "/api/2.0/mlflow/artifacts/list", tag = "mlflow", operation_id = "listRunArtifacts",
    summary = "List a run's artifacts",
    params(super::schema::ListRunArtifactsParams),
    responses(
        (status = 200, description = "The directory listing, run-relative", body = super::schema::ListRunArtifactsResponse),
        (status = 400, response = super::schema::MlflowBadRequest),
        (status = 404, response = super::schema::MlflowNotFound),
        super::schema::MlflowAuthErrors,
    )
)]
pub async fn list_for_run(
    st: web::Data<AppState>,
    req: HttpRequest,
    p: Principal,
) -> Result<HttpResponse, MlflowError> {
    let f = Fields::from_query(&req)?;
    let run_id = f.run_id()?;
    Scope { st: &st, p: &p }.readable_run(&run_id)?;
    let sub = match f.opt_str("path")? {
        Some(p) if !p.trim_matches('/').is_empty() => {
            Some(ArtifactPath::parse(&p)?.as_str().to_string())
        }
        _ => None,
    };
    let (root_uri, files) = st
        .queries
        .read(move |c| {
            let run = runs::get(c, &run_id)?;
            let root = run.info.artifact_uri.clone();
            let base = root
                .strip_prefix("mlflow-artifacts:/")
                .unwrap_or(&root)
                .trim_matches('/')
                .to_string();
            let dir = match &sub {
                Some(s) => format!("{base}/{s}"),
                None => base,
            };
            let files = artifacts::list(c, &dir)?
                .into_iter()
                .map(|mut fi| {
                    if let Some(s) = &sub {
                        fi.path = format!("{s}/{}", fi.path);
                    }
                    fi
                })
                .collect::<Vec<_>>();
            Ok((root, files))
        })
        .await?;
    let mut out = json!({ "root_uri": root_uri });
    if !files.is_empty() {
        out["files"] = json!(files);
    }
    ok(out)
}
