//! WebSocket streams. `GET /ws/telemetry?device=&kind=`: newly committed telemetry events,
//! filtered. `GET /ws/jobs/{id}?after=`: a job's progress (a snapshot first, or everything
//! after a position for a reconnecting client). Each subscriber tails the log on its own, so a
//! slow one never holds up writers; one that falls too far behind is closed.

use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::json;

use super::v1::error::ApiError;
use super::AppState;
use crate::auth::Principal;
use crate::domain::job::JobView;
use crate::events::{decode, job_stream, Event};
use crate::jobs::messages;

/// A subscriber more than this many events behind the head is dropped.
const MAX_LAG: u64 = 100_000;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TelemetryFilter {
    /// Only this device's events.
    pub device: Option<String>,
    /// Only events of this kind.
    pub kind: Option<String>,
}

#[utoipa::path(
    get,
    path = "/ws/telemetry",
    tag = "telemetry",
    operation_id = "streamTelemetry",
    summary = "Stream newly ingested telemetry (WebSocket)",
    params(TelemetryFilter),
    description = "Upgrades to a WebSocket. Each text message is one event committed after the connection opened: `{\"position\": <log position>, \"device_id\": ..., \"received_ms\": ..., \"event\": {event_id, ts, kind, model_name, model_version, severity, fields}}`. A subscriber that falls more than 100,000 events behind is closed with code 1008.",
    responses(
        (status = 101, description = "Switching Protocols: the WebSocket is open"),
        (status = 400, response = super::openapi::errors::BadRequest),
        super::openapi::errors::NativeAuthErrors,
    )
)]
pub async fn telemetry(
    st: web::Data<AppState>,
    req: HttpRequest,
    p: Principal,
    body: web::Payload,
    filter: web::Query<TelemetryFilter>,
) -> Result<HttpResponse, ApiError> {
    let (response, mut session, mut incoming) = actix_ws::handle(&req, body)
        .map_err(|e| ApiError::invalid(format!("not a WebSocket upgrade: {e}")))?;
    let filter = filter.into_inner();
    let tenant = p.tenant().to_string();
    let log = st.log.clone();
    let mut events = log.subscribe_all(log.head());
    actix_web::rt::spawn(async move {
        loop {
            tokio::select! {
                msg = incoming.next() => if client_gone(msg, &mut session).await {
                    return;
                },
                rec = events.next() => {
                    let Some(Ok(rec)) = rec else { break };
                    if rec.event_type != "TelemetryIngested" {
                        continue;
                    }
                    if log.head().saturating_sub(rec.position) > MAX_LAG {
                        let _ = session
                            .close(Some(actix_ws::CloseReason {
                                code: actix_ws::CloseCode::Policy,
                                description: Some("subscriber fell too far behind".into()),
                            }))
                            .await;
                        return;
                    }
                    let Ok(Event::TelemetryIngested { device_id, events: records, tenant: owner }) = decode(&rec) else {
                        continue;
                    };
                    // Only the subscriber's tenant, whatever the filter names.
                    if owner != tenant || filter.device.as_ref().is_some_and(|d| *d != device_id) {
                        continue;
                    }
                    for e in records.iter().filter(|e| filter.kind.as_ref().is_none_or(|k| *k == e.kind)) {
                        let msg = json!({
                            "position": rec.position,
                            "device_id": device_id,
                            "received_ms": rec.time_ms,
                            "event": e,
                        });
                        if session.text(msg.to_string()).await.is_err() {
                            return;
                        }
                    }
                }
            }
        }
        let _ = session.close(None).await;
    });
    Ok(response)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct JobStreamQuery {
    /// Send every message after this log position instead of a snapshot.
    pub after: Option<u64>,
}

#[utoipa::path(
    get,
    path = "/ws/jobs/{id}",
    tag = "jobs",
    operation_id = "streamJobProgress",
    summary = "Stream a job's progress (WebSocket)",
    description = "Upgrades to a WebSocket. Without `after` the first message is a snapshot of the job; then one JSON message per change (technique started, progress, finished, job finished) carrying its log `position`. A reconnecting client passes the last position it saw as `after` to get every message since. The server closes the socket once the job has finished.",
    params(("id" = String, Path, description = "The job id."), JobStreamQuery),
    responses(
        (status = 101, description = "Switching Protocols: the WebSocket is open"),
        (status = 400, response = super::openapi::errors::BadRequest),
        (status = 404, response = super::openapi::errors::NotFound),
        super::openapi::errors::NativeAuthErrors,
    )
)]
pub async fn job(
    st: web::Data<AppState>,
    req: HttpRequest,
    p: Principal,
    body: web::Payload,
    id: web::Path<String>,
    query: web::Query<JobStreamQuery>,
) -> Result<HttpResponse, ApiError> {
    let job_id = id.into_inner();
    let stream = job_stream(&job_id);
    let log = st.log.clone();
    // The job's history, folded: a late subscriber's snapshot, or the replay after `after`.
    let mut history = Vec::new();
    loop {
        let batch = log
            .read_stream(&stream, history.len() as u64, 1000)
            .await
            .map_err(ApiError::internal)?;
        if batch.is_empty() {
            break;
        }
        history.extend(batch);
    }
    let mut view: Option<JobView> = None;
    let mut backlog = Vec::new();
    let mut last = 0;
    for rec in &history {
        let event = decode(rec).map_err(ApiError::internal)?;
        fold(&mut view, &event, rec.time_ms);
        if let (Some(v), Some(after)) = (&view, query.after) {
            if rec.position > after {
                backlog.extend(messages::for_event(v, &event, rec.position));
            }
        }
        last = rec.position;
    }
    // Another tenant's job reads as a missing one.
    let Some(mut view) = view.filter(|v| v.tenant == p.tenant()) else {
        return Err(ApiError::new(
            super::v1::error::Code::NotFound,
            format!("No job with id '{job_id}'"),
        ));
    };
    if query.after.is_none() {
        backlog.push(messages::snapshot(&view, last));
    }
    let (response, mut session, mut incoming) = actix_ws::handle(&req, body)
        .map_err(|e| ApiError::invalid(format!("not a WebSocket upgrade: {e}")))?;
    actix_web::rt::spawn(async move {
        let mut finished = view.status.is_finished();
        for m in backlog {
            if session.text(m.to_string()).await.is_err() {
                return;
            }
        }
        let mut events = log.subscribe_all(last + 1);
        while !finished {
            tokio::select! {
                msg = incoming.next() => if client_gone(msg, &mut session).await {
                    return;
                },
                rec = events.next() => {
                    let Some(Ok(rec)) = rec else { break };
                    if rec.stream != stream {
                        continue;
                    }
                    let Ok(event) = decode(&rec) else { continue };
                    view.apply(&event, rec.time_ms);
                    for m in messages::for_event(&view, &event, rec.position) {
                        if session.text(m.to_string()).await.is_err() {
                            return;
                        }
                    }
                    finished = view.status.is_finished();
                }
            }
        }
        let _ = session.close(None).await;
    });
    Ok(response)
}

/// Answers a client's ping; `true` once the client closed or the connection failed.
async fn client_gone(
    msg: Option<Result<actix_ws::Message, actix_ws::ProtocolError>>,
    session: &mut actix_ws::Session,
) -> bool {
    match msg {
        Some(Ok(actix_ws::Message::Ping(p))) => session.pong(&p).await.is_err(),
        Some(Ok(actix_ws::Message::Close(_))) | None | Some(Err(_)) => true,
        _ => false,
    }
}

fn fold(view: &mut Option<JobView>, event: &Event, time_ms: i64) {
    match (view.as_mut(), event) {
        (
            None,
            Event::JobQueued {
                job_id,
                spec,
                parent_run_id,
                tenant,
            },
        ) => *view = Some(JobView::new(job_id, spec, parent_run_id, tenant, time_ms)),
        (Some(v), e) => v.apply(e, time_ms),
        _ => {}
    }
}
