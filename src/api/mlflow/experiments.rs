//! `/api/2.0/mlflow/experiments/*`.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::{execute, ok, page_response, Fields, Scope};
use crate::api::error::MlflowError;
use crate::api::AppState;
use crate::auth::Principal;
use crate::domain::Command;
use crate::query::experiments::{self, ExperimentSearch};
use crate::query::search::{decode_page_token, ViewType};

const MAX_SEARCH_RESULTS: u64 = 50_000;

#[utoipa::path(
    post, path = "/api/2.0/mlflow/experiments/create",
    tag = "mlflow", operation_id = "createExperiment",
    summary = "Create an experiment",
    description = "A name already taken (deleted experiments included) answers 400 `RESOURCE_ALREADY_EXISTS`.",
    request_body(content = super::schema::CreateExperiment, example = json!({"name": "kws-tuning", "tags": [{"key": "team", "value": "audio"}]})),
    responses(
        (status = 200, description = "The new experiment's id", body = super::schema::CreateExperimentResponse),
        (status = 400, response = super::schema::MlflowBadRequest),
        super::schema::MlflowAuthErrors,
    )
)]
pub async fn create(
    st: web::Data<AppState>,
    req: HttpRequest,
    p: Principal,
    body: web::Bytes,
) -> Result<HttpResponse, MlflowError> {
    let f = Fields::from_body(&req, &body)?;
    let cmd = Command::CreateExperiment {
        name: f.str("name")?,
        artifact_location: f.opt_str("artifact_location")?,
        tags: f.key_values("tags")?,
        tenant: p.tenant().to_string(),
    };
    let outcome = st.ledger.execute(cmd, &p.caller).await?;
    let id = match outcome.events.first().map(|e| &**e) {
        Some(crate::events::Event::ExperimentCreated { experiment_id, .. }) => *experiment_id,
        _ => return Err(MlflowError::invalid("experiment was not created")),
    };
    ok(json!({ "experiment_id": id.to_string() }))
}

#[utoipa::path(
    get, path = "/api/2.0/mlflow/experiments/get", tag = "mlflow", operation_id = "getExperiment",
    summary = "Get an experiment by id",
    params(super::schema::GetExperimentParams),
    responses(
        (status = 200, description = "The experiment (deleted ones too)", body = super::schema::ExperimentResponse),
        (status = 400, response = super::schema::MlflowBadRequest),
        (status = 404, response = super::schema::MlflowNotFound),
        super::schema::MlflowAuthErrors,
    )
)]
pub async fn get(
    st: web::Data<AppState>,
    req: HttpRequest,
    p: Principal,
) -> Result<HttpResponse, MlflowError> {
    let scope = Scope { st: &st, p: &p };
    let id = scope.experiment_id(&Fields::from_query(&req)?)?;
    scope.readable_experiment(id)?;
    let e = st.queries.read(move |c| experiments::get(c, id)).await?;
    ok(json!({ "experiment": e }))
}

#[utoipa::path(
    get, path = "/api/2.0/mlflow/experiments/get-by-name",
    tag = "mlflow", operation_id = "getExperimentByName",
    summary = "Get an experiment by name",
    params(super::schema::GetExperimentByNameParams),
    responses(
        (status = 200, description = "The experiment", body = super::schema::ExperimentResponse),
        (status = 400, response = super::schema::MlflowBadRequest),
        (status = 404, response = super::schema::MlflowNotFound),
        super::schema::MlflowAuthErrors,
    )
)]
pub async fn get_by_name(
    st: web::Data<AppState>,
    req: HttpRequest,
    p: Principal,
) -> Result<HttpResponse, MlflowError> {
    let name = Fields::from_query(&req)?.str("experiment_name")?;
    let e = st
        .queries
        .read_as(p.tenant(), move |c, t| {
            experiments::get_by_name(c, t, &name)
        })
        .await?;
    ok(json!({ "experiment": e }))
}

#[utoipa::path(
    post, path = "/api/2.0/mlflow/experiments/search",
    tag = "mlflow", operation_id = "searchExperiments",
    summary = "Search experiments",
    request_body(content = super::schema::SearchExperiments, example = json!({"filter": "name LIKE 'kws-%'", "order_by": ["creation_time DESC"], "max_results": 100, "view_type": "ACTIVE_ONLY"})),
    responses(
        (status = 200, description = "A page of experiments", body = super::schema::SearchExperimentsResponse),
        (status = 400, response = super::schema::MlflowBadRequest),
        super::schema::MlflowAuthErrors,
    )
)]
pub async fn search(
    st: web::Data<AppState>,
    req: HttpRequest,
    p: Principal,
    body: web::Bytes,
) -> Result<HttpResponse, MlflowError> {
    search_with(st, p, Fields::from_body(&req, &body)?).await
}

#[utoipa::path(
    get, path = "/api/2.0/mlflow/experiments/search",
    tag = "mlflow", operation_id = "searchExperimentsGet",
    summary = "Search experiments (query parameters)",
    params(super::schema::SearchExperiments),
    responses(
        (status = 200, description = "A page of experiments", body = super::schema::SearchExperimentsResponse),
        (status = 400, response = super::schema::MlflowBadRequest),
        super::schema::MlflowAuthErrors,
    )
)]
pub async fn search_get(
    st: web::Data<AppState>,
    req: HttpRequest,
    p: Principal,
) -> Result<HttpResponse, MlflowError> {
    search_with(st, p, Fields::from_query(&req)?).await
}

async fn search_with(
    st: web::Data<AppState>,
    p: Principal,
    f: Fields,
) -> Result<HttpResponse, MlflowError> {
    let max_results = super::max_results(&f, 1000, MAX_SEARCH_RESULTS)?;
    let s = ExperimentSearch {
        tenant: p.tenant().to_string(),
        filter: f.opt_str("filter")?.unwrap_or_default(),
        view: ViewType::parse(f.opt_str("view_type")?.as_deref())?,
        order_by: f.str_list("order_by")?,
        max_results,
        offset: decode_page_token(f.opt_str("page_token")?.as_deref())?,
    };
    let page = st.queries.read(move |c| experiments::search(c, &s)).await?;
    page_response("experiments", &page)
}

#[utoipa::path(
    post, path = "/api/2.0/mlflow/experiments/delete",
    tag = "mlflow", operation_id = "deleteExperiment",
    summary = "Delete an experiment (and mark its runs deleted)",
    request_body(content = super::schema::ExperimentIdRequest, example = json!({"experiment_id": "1"})),
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
    body: web::Bytes,
) -> Result<HttpResponse, MlflowError> {
    execute(st, req, p, body, |f, cx| {
        Ok(Command::DeleteExperiment {
            experiment_id: cx.experiment_id(f)?,
        })
    })
    .await
}

#[utoipa::path(
    post, path = "/api/2.0/mlflow/experiments/restore",
    tag = "mlflow", operation_id = "restoreExperiment",
    summary = "Restore a deleted experiment and its runs",
    request_body(content = super::schema::ExperimentIdRequest, example = json!({"experiment_id": "1"})),
    responses(
        (status = 200, description = "Restored", body = super::schema::Empty),
        (status = 400, response = super::schema::MlflowBadRequest),
        (status = 404, response = super::schema::MlflowNotFound),
        super::schema::MlflowAuthErrors,
    )
)]
pub async fn restore(
    st: web::Data<AppState>,
    req: HttpRequest,
    p: Principal,
    body: web::Bytes,
) -> Result<HttpResponse, MlflowError> {
    execute(st, req, p, body, |f, cx| {
        Ok(Command::RestoreExperiment {
            experiment_id: cx.experiment_id(f)?,
        })
    })
    .await
}

#[utoipa::path(
    post, path = "/api/2.0/mlflow/experiments/update",
    tag = "mlflow", operation_id = "updateExperiment",
    summary = "Rename an experiment",
    request_body(content = super::schema::UpdateExperiment, example = json!({"experiment_id": "1", "new_name": "kws-tuning-v2"})),
    responses(
        (status = 200, description = "Renamed", body = super::schema::Empty),
        (status = 400, response = super::schema::MlflowBadRequest),
        (status = 404, response = super::schema::MlflowNotFound),
        super::schema::MlflowAuthErrors,
    )
)]
pub async fn update(
    st: web::Data<AppState>,
    req: HttpRequest,
    p: Principal,
    body: web::Bytes,
) -> Result<HttpResponse, MlflowError> {
    execute(st, req, p, body, |f, cx| {
        Ok(Command::RenameExperiment {
            experiment_id: cx.experiment_id(f)?,
            new_name: f.str("new_name")?,
        })
    })
    .await
}

#[utoipa::path(
    post, path = "/api/2.0/mlflow/experiments/set-experiment-tag",
    tag = "mlflow", operation_id = "setExperimentTag",
    summary = "Set a tag on an experiment",
    request_body(content = super::schema::SetExperimentTag, example = json!({"experiment_id": "1", "key": "team", "value": "audio"})),
    responses(
        (status = 200, description = "Set", body = super::schema::Empty),
        (status = 400, response = super::schema::MlflowBadRequest),
        (status = 404, response = super::schema::MlflowNotFound),
        super::schema::MlflowAuthErrors,
    )
)]
pub async fn set_tag(
    st: web::Data<AppState>,
    req: HttpRequest,
    p: Principal,
    body: web::Bytes,
) -> Result<HttpResponse, MlflowError> {
    execute(st, req, p, body, |f, cx| {
        Ok(Command::SetExperimentTag {
            experiment_id: cx.experiment_id(f)?,
            key: f.str("key")?,
            value: f.str_allow_empty("value")?,
        })
    })
    .await
}

#[utoipa::path(
    post, path = "/api/2.0/mlflow/experiments/delete-experiment-tag",
    tag = "mlflow", operation_id = "deleteExperimentTag",
    summary = "Delete a tag of an experiment",
    request_body(content = super::schema::DeleteExperimentTag, example = json!({"experiment_id": "1", "key": "team"})),
    responses(
        (status = 200, description = "Deleted", body = super::schema::Empty),
        (status = 400, response = super::schema::MlflowBadRequest),
        (status = 404, response = super::schema::MlflowNotFound),
        super::schema::MlflowAuthErrors,
    )
)]
pub async fn delete_tag(
    st: web::Data<AppState>,
    req: HttpRequest,
    p: Principal,
    body: web::Bytes,
) -> Result<HttpResponse, MlflowError> {
    execute(st, req, p, body, |f, cx| {
        Ok(Command::DeleteExperimentTag {
            experiment_id: cx.experiment_id(f)?,
            key: f.str("key")?,
        })
    })
    .await
}
