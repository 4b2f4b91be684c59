//! `/api/v1/models` (ONNX uploads) and `/api/v1/datasets` (`.npy` files and presets).
//! Uploads stream to a temporary blob, are validated, and only then stored and recorded; a
//! refused upload leaves nothing behind.

use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::json_body;
use crate::api::AppState;
use crate::auth::Principal;
use crate::blobs::{BlobStore, PendingBlob};
use crate::domain::job::{DatasetInfo, ModelInfo};
use crate::domain::{tier, Command, DomainError};
use crate::jobs::{presets, work};
use crate::optimize::data::Preprocess;
use crate::optimize::graph::summarize_proto;
use crate::optimize::model::OnnxModel;
use crate::query::jobs as q;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UploadModel {
    /// A name for the model, e.g. `mnist-8`.
    pub name: String,
}

/// Stream the request body into a pending blob of at most `limit` bytes.
async fn receive(
    blobs: &BlobStore,
    mut body: web::Payload,
    limit: u64,
) -> Result<PendingBlob, ApiError> {
    let mut blob = blobs.begin(limit)?;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| ApiError::invalid(format!("cannot read the body: {e}")))?;
        blob.write(&chunk)?;
    }
    if blob.size() == 0 {
        return Err(ApiError::invalid("the request body is empty"));
    }
    Ok(blob)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("blocking task: {e}")))?
}

/// The largest upload to accept: the server's cap, or the tenant's tier's when smaller (then
/// also the refusal to give when the body turns out larger). `Content-Length` is checked before
/// a byte is read.
fn upload_cap(
    st: &AppState,
    p: &Principal,
    req: &HttpRequest,
) -> Result<(u64, Option<DomainError>), ApiError> {
    let server_cap = st.jobs.config.max_model_bytes;
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let t = p.tenant();
    Ok(st.ledger.read(|s| {
        if let Some(n) = declared {
            tier::check_model_size(s, t, n)?;
        }
        let tier = tier::tier_of(s, t);
        Ok::<_, DomainError>(match tier::limits(tier).max_model_bytes {
            Some(max) if max < server_cap => (max, Some(tier::model_too_large(tier, None, max))),
            _ => (server_cap, None),
        })
    })?)
}

#[utoipa::path(
    post,
    path = "/api/v1/models",
    tag = "models",
    operation_id = "uploadModel",
    summary = "Upload an ONNX model",
    params(UploadModel),
    request_body(content = crate::api::openapi::schemas::Binary, content_type = "application/octet-stream", description = "The ONNX file; it must load and run in the server's runtime."),
    responses(
        (status = 201, description = "The stored model with its graph summary", body = crate::query::jobs::ModelView),
        (status = 400, response = crate::api::openapi::errors::BadRequest),
        (status = 413, response = crate::api::openapi::errors::PayloadTooLarge),
        crate::api::openapi::errors::NativeAuthErrors,
    )
)]
pub async fn upload(
    st: web::Data<AppState>,
    req: HttpRequest,
    p: Principal,
    query: web::Query<UploadModel>,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    super::writable(&p)?;
    let jobs = &st.jobs;
    let (cap, over_tier) = upload_cap(&st, &p, &req)?;
    let blob = match receive(&jobs.blobs, body, cap).await {
        // Past the tier's cap (not the server's): say which limit it was.
        Err(e) if e.code == super::error::Code::PayloadTooLarge => {
            return Err(over_tier.map(ApiError::from).unwrap_or(e))
        }
        other => other?,
    };
    let (blob, summary) = blocking(move || {
        let bytes = std::fs::read(blob.tmp_path())
            .map_err(|e| ApiError::internal(format!("reading the upload: {e}")))?;
        let invalid = |e: crate::optimize::error::OptimizeError| {
            ApiError::invalid(format!("the body is not a usable ONNX model: {e}"))
                .with_details(serde_json::json!({ "field": "body" }))
        };
        let model = OnnxModel::from_bytes(&bytes).map_err(invalid)?;
        // Tract must be able to run it, or no technique can.
        model.runner(1).map_err(invalid)?;
        let summary = summarize_proto(&model.proto, None).map_err(invalid)?;
        Ok((blob, summary))
    })
    .await?;
    let size_bytes = blob.size();
    let blobs = jobs.blobs.clone();
    let sha256 = blocking(move || Ok(blobs.commit(blob)?)).await?;
    let model_id = uuid::Uuid::new_v4().simple().to_string();
    st.ledger
        .execute(
            Command::UploadModel {
                model: ModelInfo {
                    model_id: model_id.clone(),
                    name: query.into_inner().name,
                    sha256,
                    size_bytes,
                    tenant: p.tenant().to_string(),
                },
                summary: serde_json::to_value(&summary).unwrap_or_default(),
            },
            &p.caller,
        )
        .await?;
    let view = st
        .queries
        .read_as(p.tenant(), move |c, t| q::model(c, t, &model_id))
        .await?;
    Ok(HttpResponse::Created().json(view))
}

#[utoipa::path(
    get,
    path = "/api/v1/models/{id}",
    tag = "models",
    operation_id = "getModel",
    summary = "Get an uploaded model",
    params(("id" = String, Path, description = "The model id.")),
    responses(
        (status = 200, description = "The model", body = crate::query::jobs::ModelView),
        (status = 404, response = crate::api::openapi::errors::NotFound),
        crate::api::openapi::errors::NativeAuthErrors,
    )
)]
pub async fn get_model(
    st: web::Data<AppState>,
    p: Principal,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let model = st
        .queries
        .read_as(p.tenant(), move |c, t| q::model(c, t, &id));
    Ok(HttpResponse::Ok().json(model.await?))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StoredFile {
    pub sha256: String,
    pub size_bytes: u64,
    /// Samples (first axis) and the shape of one sample.
    pub samples: u64,
    pub sample_shape: Vec<u64>,
}

/// `POST /api/v1/datasets/files`: one `.npy` file (inputs or labels), stored by digest.
#[utoipa::path(
    post,
    path = "/api/v1/datasets/files",
    tag = "models",
    operation_id = "uploadDatasetFile",
    summary = "Upload a `.npy` file (inputs or labels)",
    request_body(content = crate::api::openapi::schemas::Binary, content_type = "application/octet-stream", description = "A NumPy `.npy` file; the first axis is the sample axis."),
    responses(
        (status = 201, description = "Stored by SHA-256; use the digest in `POST /api/v1/datasets`", body = StoredFile),
        (status = 400, response = crate::api::openapi::errors::BadRequest),
        (status = 413, response = crate::api::openapi::errors::PayloadTooLarge),
        crate::api::openapi::errors::NativeAuthErrors,
    )
)]
pub async fn upload_file(
    st: web::Data<AppState>,
    p: Principal,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    super::writable(&p)?;
    let jobs = &st.jobs;
    let blob = receive(&jobs.blobs, body, jobs.config.max_dataset_bytes).await?;
    let (blob, shape) = blocking(move || {
        let shape = crate::optimize::data::read_npy_shape(blob.tmp_path()).map_err(|e| {
            ApiError::invalid(format!("the body is not a usable .npy file: {e}"))
                .with_details(serde_json::json!({ "field": "body" }))
        })?;
        Ok((blob, shape))
    })
    .await?;
    let size_bytes = blob.size();
    let blobs = jobs.blobs.clone();
    let sha256 = blocking(move || Ok(blobs.commit(blob)?)).await?;
    let (samples, sample_shape) = shape
        .split_first()
        .map(|(n, rest)| (*n, rest.to_vec()))
        .unwrap_or((0, vec![]));
    Ok(HttpResponse::Created().json(StoredFile {
        sha256,
        size_bytes,
        samples,
        sample_shape,
    }))
}

/// Either a preset, or uploaded files with their preprocessing.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterDataset {
    pub name: Option<String>,
    /// mnist-calibration, mnist-evaluation, digits8x8 or photos224-calibration.
    pub preset: Option<String>,
    /// Digest returned by `POST /api/v1/datasets/files`.
    pub inputs_sha256: Option<String>,
    pub labels_sha256: Option<String>,
    /// `{layout, channel_order, scale, mean, std}`, all optional.
    #[schema(value_type = Option<Object>)]
    pub preprocess: Option<serde_json::Value>,
}

#[utoipa::path(
    post,
    path = "/api/v1/datasets",
    tag = "models",
    operation_id = "registerDataset",
    summary = "Register a dataset from a preset or uploaded files",
    request_body(content = RegisterDataset, example = json!({"name": "mnist-calib", "inputs_sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "labels_sha256": null, "preprocess": {"layout": "nchw", "scale": 0.00392156862745098}})),
    responses(
        (status = 201, description = "The dataset", body = crate::query::jobs::DatasetView),
        (status = 400, response = crate::api::openapi::errors::BadRequest),
        (status = 404, response = crate::api::openapi::errors::NotFound),
        crate::api::openapi::errors::NativeAuthErrors,
    )
)]
pub async fn register_dataset(
    st: web::Data<AppState>,
    p: Principal,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let req: RegisterDataset = json_body(&body)?;
    let blobs = st.jobs.blobs.clone();
    let presets_dir = st.jobs.config.datasets_dir.clone();
    let tenant = p.tenant().to_string();
    let info =
        blocking(move || resolve_dataset(&blobs, presets_dir.as_deref(), &tenant, req)).await?;
    let dataset_id = info.dataset_id.clone();
    st.ledger
        .execute(Command::RegisterDataset(info), &p.caller)
        .await?;
    let view = st
        .queries
        .read_as(p.tenant(), move |c, t| q::dataset(c, t, &dataset_id))
        .await?;
    Ok(HttpResponse::Created().json(view))
}

fn resolve_dataset(
    blobs: &BlobStore,
    presets_dir: Option<&std::path::Path>,
    tenant: &str,
    req: RegisterDataset,
) -> Result<DatasetInfo, ApiError> {
    let (name, source, inputs, labels, preprocess) = match (&req.preset, &req.inputs_sha256) {
        (Some(p), None) => {
            let preset = presets::find(p).ok_or_else(|| {
                ApiError::invalid(format!(
                    "Field 'preset': unknown preset '{p}' (known: {})",
                    presets::names()
                ))
            })?;
            let dir = presets_dir
                .ok_or_else(|| ApiError::invalid("Field 'preset': no datasets directory is configured"))?;
            let store = |file: &str| -> Result<String, ApiError> {
                let bytes = std::fs::read(dir.join(file)).map_err(|e| {
                    ApiError::invalid(format!(
                        "Field 'preset': {p} needs {file} in the datasets directory: {e}"
                    ))
                })?;
                Ok(blobs.put(&bytes)?)
            };
            let inputs = store(preset.inputs)?;
            let labels = preset.labels.map(store).transpose()?;
            (
                req.name.clone().unwrap_or_else(|| p.clone()),
                format!("preset:{p}"),
                inputs,
                labels,
                (preset.preprocess)(),
            )
        }
        (None, Some(inputs)) => (
            req.name
                .clone()
                .ok_or_else(|| ApiError::invalid("Field 'name' is required"))?,
            "upload".to_string(),
            inputs.clone(),
            req.labels_sha256.clone(),
            req.preprocess.clone().unwrap_or_else(|| serde_json::json!({})),
        ),
        _ => {
            return Err(ApiError::invalid(
                "Give either 'preset' or 'inputs_sha256' (with optional 'labels_sha256' and 'preprocess')",
            ))
        }
    };
    serde_json::from_value::<Preprocess>(preprocess.clone())
        .map_err(|e| ApiError::invalid(format!("Field 'preprocess': {e}")))?;
    let path = |field: &str, sha: &str| {
        blobs.path(sha).ok().filter(|p| p.exists()).ok_or_else(|| {
            ApiError::new(
                super::error::Code::NotFound,
                format!("Field '{field}': no uploaded file {sha}"),
            )
        })
    };
    let inputs_path = path("inputs_sha256", &inputs)?;
    let labels_path = labels
        .as_deref()
        .map(|l| path("labels_sha256", l))
        .transpose()?;
    let (samples, sample_shape) = work::inspect_npy(&inputs_path, labels_path.as_deref())
        .map_err(|e| ApiError::invalid(format!("Field 'inputs_sha256': {e}")))?;
    Ok(DatasetInfo {
        dataset_id: uuid::Uuid::new_v4().simple().to_string(),
        name,
        source,
        inputs_sha256: inputs,
        labels_sha256: labels,
        preprocess,
        samples,
        sample_shape,
        tenant: tenant.to_string(),
    })
}

#[utoipa::path(
    get,
    path = "/api/v1/datasets/{id}",
    tag = "models",
    operation_id = "getDataset",
    summary = "Get a dataset",
    params(("id" = String, Path, description = "The dataset id.")),
    responses(
        (status = 200, description = "The dataset", body = crate::query::jobs::DatasetView),
        (status = 404, response = crate::api::openapi::errors::NotFound),
        crate::api::openapi::errors::NativeAuthErrors,
    )
)]
pub async fn get_dataset(
    st: web::Data<AppState>,
    p: Principal,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let dataset = st
        .queries
        .read_as(p.tenant(), move |c, t| q::dataset(c, t, &id));
    Ok(HttpResponse::Ok().json(dataset.await?))
}
