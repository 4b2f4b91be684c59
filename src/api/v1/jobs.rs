//! `/api/v1/jobs`: start, read, list and cancel optimization jobs; their recommendation (also
//! recomputed under other constraints); variant downloads; registered model versions.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use tokio_util::io::ReaderStream;

use super::error::{ApiError, Code};
use super::{json_body, Pagination};
use crate::api::AppState;
use crate::auth::Principal;
use crate::domain::job::JobView;
use crate::domain::Command;
use crate::events::{BoardTarget, JobSpec, TechniqueSpec};
use crate::jobs::worker_candidates;
use crate::optimize::recommend::{recommend, Constraints, Goal};
use crate::query::jobs::{self as q, JobFilter};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateJob {
    pub name: Option<String>,
    pub model_id: String,
    pub calibration_dataset_id: String,
    /// Default: the calibration dataset.
    pub evaluation_dataset_id: Option<String>,
    pub techniques: Vec<TechniqueSpec>,
    #[serde(default)]
    pub boards: Vec<BoardTarget>,
    /// `{min_accuracy, max_accuracy_drop (pt), max_size_bytes, max_latency_ms: {board: ms},
    /// must_fit: [board], target_board}`.
    #[schema(value_type = Option<Constraints>)]
    pub constraints: Option<serde_json::Value>,
    /// maximize_accuracy, minimize_size, minimize_latency or balanced (default).
    #[schema(value_type = Option<Goal>)]
    pub goal: Option<serde_json::Value>,
    /// MLflow experiment for the job's runs (default "0").
    pub experiment_id: Option<String>,
}

fn constraints(v: Option<serde_json::Value>) -> Result<Constraints, ApiError> {
    v.map(serde_json::from_value)
        .transpose()
        .map_err(|e| ApiError::invalid(format!("Field 'constraints': {e}")))
        .map(Option::unwrap_or_default)
}

fn goal(v: Option<serde_json::Value>) -> Result<Goal, ApiError> {
    v.map(serde_json::from_value)
        .transpose()
        .map_err(|e| ApiError::invalid(format!("Field 'goal': {e}")))
        .map(|g| g.unwrap_or(Goal::Balanced))
}

#[utoipa::path(
    post,
    path = "/api/v1/jobs",
    tag = "jobs",
    operation_id = "createJob",
    summary = "Start an optimization job",
    request_body(content = CreateJob, example = json!({"model_id": "3b5d5c37", "calibration_dataset_id": "a1f0c2d4", "techniques": [{"name": "int8-static"}, {"name": "prune-unstructured", "sparsity": 0.5}], "boards": [{"board": "rpi4"}], "constraints": {"max_accuracy_drop": 1.0, "must_fit": ["rpi4"]}, "goal": "balanced"})),
    responses(
        (status = 201, description = "The queued job", body = crate::domain::job::JobView),
        (status = 400, response = crate::api::openapi::errors::BadRequest),
        (status = 404, response = crate::api::openapi::errors::NotFound),
        (status = 402, response = crate::api::openapi::errors::QuotaExceeded),
        crate::api::openapi::errors::NativeAuthErrors,
    )
)]
pub async fn create(
    st: web::Data<AppState>,
    p: Principal,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let req: CreateJob = json_body(&body)?;
    let experiment_id = match req.experiment_id.as_deref() {
        None => 0,
        Some(s) => s
            .parse()
            .map_err(|_| ApiError::invalid(format!("Field 'experiment_id': '{s}' is not an id")))?,
    };
    let tenant = p.tenant().to_string();
    let (experiment_id, model_name) = st.ledger.read(|s| {
        (
            s.resolve_experiment(&tenant, experiment_id),
            s.models
                .get(&req.model_id)
                .filter(|m| m.tenant == tenant)
                .map(|m| m.name.clone()),
        )
    });
    let model_name = model_name.unwrap_or_else(|| req.model_id.clone());
    let spec = JobSpec {
        name: req.name.unwrap_or_else(|| format!("optimize {model_name}")),
        evaluation_dataset_id: req
            .evaluation_dataset_id
            .unwrap_or_else(|| req.calibration_dataset_id.clone()),
        model_id: req.model_id,
        calibration_dataset_id: req.calibration_dataset_id,
        techniques: req.techniques,
        boards: req.boards,
        constraints: constraints(req.constraints)?,
        goal: goal(req.goal)?,
        experiment_id,
        priority: 0,
    };
    let job_id = st.jobs.submit(spec, &p.caller).await?;
    let job = st
        .queries
        .read_as(&tenant, move |c, t| q::job(c, t, &job_id))
        .await?;
    Ok(HttpResponse::Created().json(job))
}

#[utoipa::path(
    get,
    path = "/api/v1/jobs/{id}",
    tag = "jobs",
    operation_id = "getJob",
    summary = "Get a job with its progress and results",
    params(("id" = String, Path, description = "The job id.")),
    responses(
        (status = 200, description = "The job", body = crate::domain::job::JobView),
        (status = 404, response = crate::api::openapi::errors::NotFound),
        crate::api::openapi::errors::NativeAuthErrors,
    )
)]
pub async fn get(
    st: web::Data<AppState>,
    p: Principal,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let job = st
        .queries
        .read_as(p.tenant(), move |c, t| q::job(c, t, &id));
    Ok(HttpResponse::Ok().json(job.await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListJobs {
    /// queued, running, completed, failed or cancelled.
    pub status: Option<String>,
    pub model_id: Option<String>,
    pub limit: Option<u64>,
    pub offset: Option<u64>,
}

#[utoipa::path(
    get,
    path = "/api/v1/jobs",
    tag = "jobs",
    operation_id = "listJobs",
    summary = "List jobs, newest first",
    params(ListJobs),
    responses(
        (status = 200, description = "A page of jobs; `next_offset` is set when more follow", body = super::Page<crate::domain::job::JobView>),
        (status = 400, response = crate::api::openapi::errors::BadRequest),
        crate::api::openapi::errors::NativeAuthErrors,
    )
)]
pub async fn list(
    st: web::Data<AppState>,
    p: Principal,
    query: web::Query<ListJobs>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let (limit, offset) = Pagination {
        limit: query.limit,
        offset: query.offset,
    }
    .bounds(1000)?;
    if let Some(s) = &query.status {
        s.parse::<crate::events::JobStatus>()
            .map_err(|e| ApiError::invalid(format!("Parameter 'status': {e}")))?;
    }
    let filter = JobFilter {
        tenant: p.tenant().to_string(),
        status: query.status,
        model_id: query.model_id,
    };
    let items = st
        .queries
        .read(move |c| q::jobs(c, &filter, limit + 1, offset))
        .await?;
    Ok(HttpResponse::Ok().json(super::page(items, limit, offset)))
}

#[utoipa::path(
    post,
    path = "/api/v1/jobs/{id}/cancel",
    tag = "jobs",
    operation_id = "cancelJob",
    summary = "Cancel a job",
    params(("id" = String, Path, description = "The job id.")),
    responses(
        (status = 200, description = "The job", body = crate::domain::job::JobView),
        (status = 404, response = crate::api::openapi::errors::NotFound),
        (status = 409, response = crate::api::openapi::errors::Conflict),
        crate::api::openapi::errors::NativeAuthErrors,
    )
)]
pub async fn cancel(
    st: web::Data<AppState>,
    p: Principal,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    st.jobs.cancel(&id, &p.caller).await?;
    let job = st
        .queries
        .read_as(p.tenant(), move |c, t| q::job(c, t, &id));
    Ok(HttpResponse::Ok().json(job.await?))
}

/// The job as folded by the projection.
async fn job_view(st: &AppState, p: &Principal, id: String) -> Result<JobView, ApiError> {
    let doc = st
        .queries
        .read_as(p.tenant(), move |c, t| q::job(c, t, &id))
        .await?;
    serde_json::from_value(doc).map_err(ApiError::internal)
}

#[utoipa::path(
    get,
    path = "/api/v1/jobs/{id}/recommendation",
    tag = "jobs",
    operation_id = "getRecommendation",
    summary = "Get a job's recommendation",
    description = "409 while the job has no recommendation yet.",
    params(("id" = String, Path, description = "The job id.")),
    responses(
        (status = 200, description = "The ranking under the job's constraints and goal", body = crate::optimize::recommend::Recommendation),
        (status = 404, response = crate::api::openapi::errors::NotFound),
        (status = 409, response = crate::api::openapi::errors::Conflict),
        crate::api::openapi::errors::NativeAuthErrors,
    )
)]
pub async fn recommendation(
    st: web::Data<AppState>,
    p: Principal,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let job = job_view(&st, &p, id.into_inner()).await?;
    match job.recommendation {
        Some(r) => Ok(HttpResponse::Ok().json(r)),
        None => Err(ApiError::new(
            Code::Conflict,
            format!(
                "Job '{}' is {} and has no recommendation yet",
                job.job_id,
                job.status.as_str()
            ),
        )),
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Recompute {
    #[schema(value_type = Option<Constraints>)]
    pub constraints: Option<serde_json::Value>,
    #[schema(value_type = Option<Goal>)]
    pub goal: Option<serde_json::Value>,
}

/// Recompute the recommendation over the job's measured results, without re-running it.
#[utoipa::path(
    post,
    path = "/api/v1/jobs/{id}/recommendation",
    tag = "jobs",
    operation_id = "recomputeRecommendation",
    summary = "Recompute the recommendation under other constraints",
    params(("id" = String, Path, description = "The job id.")),
    request_body(content = Recompute, example = json!({"constraints": {"max_size_bytes": 250000, "max_latency_ms": {"rpi4": 15.0}}, "goal": "minimize_latency"})),
    responses(
        (status = 200, description = "The ranking over the job's measured results", body = crate::optimize::recommend::Recommendation),
        (status = 400, response = crate::api::openapi::errors::BadRequest),
        (status = 404, response = crate::api::openapi::errors::NotFound),
        crate::api::openapi::errors::NativeAuthErrors,
    )
)]
pub async fn recompute(
    st: web::Data<AppState>,
    p: Principal,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let req: Recompute = json_body(&body)?;
    let (c, g) = (constraints(req.constraints)?, goal(req.goal)?);
    let job = job_view(&st, &p, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(recommend(&worker_candidates(&job), &c, g)))
}

/// Stream a variant (`original` is the uploaded model) as an ONNX file.
#[utoipa::path(
    get,
    path = "/api/v1/jobs/{id}/variants/{technique}/model",
    tag = "jobs",
    operation_id = "downloadVariant",
    summary = "Download a variant as ONNX",
    params(("id" = String, Path, description = "The job id."), ("technique" = String, Path, description = "The variant's key, or `original` for the uploaded model.")),
    responses(
        (status = 200, description = "The ONNX file", content_type = "application/octet-stream", body = crate::api::openapi::schemas::Binary, headers(("Content-Disposition" = String, description = "`attachment; filename=\"<job>-<technique>.onnx\"`"), ("ETag" = String, description = "The file's SHA-256, quoted."))),
        (status = 404, response = crate::api::openapi::errors::NotFound),
        (status = 409, response = crate::api::openapi::errors::Conflict),
        crate::api::openapi::errors::NativeAuthErrors,
    )
)]
pub async fn download(
    st: web::Data<AppState>,
    p: Principal,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, technique) = path.into_inner();
    let job = job_view(&st, &p, id.clone()).await?;
    let sha = if technique == "original" {
        st.ledger
            .read(|s| s.models.get(&job.spec.model_id).map(|m| m.sha256.clone()))
    } else {
        let t = job.technique(&technique).ok_or_else(|| {
            ApiError::new(
                Code::NotFound,
                format!("Job '{id}' has no technique '{technique}'"),
            )
        })?;
        t.result.as_ref().map(|r| r.sha256.clone())
    };
    let sha = sha.ok_or_else(|| {
        ApiError::new(
            Code::Conflict,
            format!("Technique '{technique}' of job '{id}' has no variant (yet)"),
        )
    })?;
    let path = st.jobs.blobs.path(&sha)?;
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| ApiError::internal(format!("variant {sha}: {e}")))?;
    let len = file.metadata().await.map(|m| m.len()).unwrap_or(0);
    Ok(HttpResponse::Ok()
        .content_type("application/octet-stream")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{id}-{technique}.onnx\""),
        ))
        .insert_header(("ETag", format!("\"{sha}\"")))
        .no_chunking(len)
        .streaming(ReaderStream::new(file)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterVersion {
    pub job_id: String,
    /// The variant's key, or `original`.
    pub technique: String,
}

/// A registered model's versions.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = ModelVersionList)]
struct Versions {
    versions: Vec<q::ModelVersionView>,
}

#[utoipa::path(
    post,
    path = "/api/v1/registered-models/{name}/versions",
    tag = "registry",
    operation_id = "registerModelVersion",
    summary = "Register a variant as a new model version",
    params(("name" = String, Path, description = "The registered model's name.")),
    request_body(content = RegisterVersion, example = json!({"job_id": "0c9a7e31", "technique": "int8-static"})),
    responses(
        (status = 201, description = "The new version", body = crate::query::jobs::ModelVersionView),
        (status = 400, response = crate::api::openapi::errors::BadRequest),
        (status = 404, response = crate::api::openapi::errors::NotFound),
        (status = 409, response = crate::api::openapi::errors::Conflict),
        crate::api::openapi::errors::NativeAuthErrors,
    )
)]
pub async fn register_version(
    st: web::Data<AppState>,
    p: Principal,
    name: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let req: RegisterVersion = json_body(&body)?;
    let name = name.into_inner();
    let out = st
        .ledger
        .execute(
            Command::RegisterModelVersion {
                name: name.clone(),
                job_id: req.job_id,
                technique: req.technique,
                tenant: p.tenant().to_string(),
            },
            &p.caller,
        )
        .await?;
    let version = out.events.iter().find_map(|e| match &**e {
        crate::events::Event::ModelVersionRegistered { version, .. } => Some(*version as i64),
        _ => None,
    });
    let versions = st
        .queries
        .read_as(p.tenant(), move |c, t| q::model_versions(c, t, &name))
        .await?;
    let v = versions
        .into_iter()
        .find(|v| Some(v.version) == version)
        .ok_or_else(|| ApiError::internal("registered version not projected"))?;
    Ok(HttpResponse::Created().json(v))
}

#[utoipa::path(
    get,
    path = "/api/v1/registered-models/{name}/versions",
    tag = "registry",
    operation_id = "listModelVersions",
    summary = "List a registered model's versions",
    params(("name" = String, Path, description = "The registered model's name.")),
    responses(
        (status = 200, description = "Its versions, oldest first", body = Versions),
        crate::api::openapi::errors::NativeAuthErrors,
    )
)]
pub async fn list_versions(
    st: web::Data<AppState>,
    p: Principal,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = name.into_inner();
    let versions = st
        .queries
        .read_as(p.tenant(), move |c, t| q::model_versions(c, t, &name))
        .await?;
    Ok(HttpResponse::Ok().json(Versions { versions }))
}
