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
    let id = match outcome.events.first() {
        Some(crate::events::Event::ExperimentCreated { experiment_id, .. }) => *experiment_id,
        _ => return Err(MlflowError::invalid("experiment was not created")),
    };
    ok(json!({ "experiment_id": id.to_string() }))
}

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

pub async fn get_by_name(
    st: web::Data<AppState>,
    req: HttpRequest,
    p: Principal,
) -> Result<HttpResponse, MlflowError> {
    let name = Fields::from_query(&req)?.str("experiment_name")?;
    let tenant = p.tenant().to_string();
    let e = st
        .queries
        .read(move |c| experiments::get_by_name(c, &tenant, &name))
        .await?;
    ok(json!({ "experiment": e }))
}

pub async fn search(
    st: web::Data<AppState>,
    req: HttpRequest,
    p: Principal,
    body: web::Bytes,
) -> Result<HttpResponse, MlflowError> {
    search_with(st, p, Fields::from_body(&req, &body)?).await
}

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
