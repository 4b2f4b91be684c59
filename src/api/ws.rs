//! `GET /ws/telemetry?device=&kind=`: newly committed telemetry events, filtered, as JSON text
//! messages. Each subscriber tails the log on its own from the head at connect time, so a slow
//! one never holds up writers; one that falls too far behind is closed.

use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::json;

use super::v1::error::ApiError;
use super::AppState;
use crate::events::{decode, Event};

/// A subscriber more than this many events behind the head is dropped.
const MAX_LAG: u64 = 100_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryFilter {
    pub device: Option<String>,
    pub kind: Option<String>,
}

pub async fn telemetry(
    st: web::Data<AppState>,
    req: HttpRequest,
    body: web::Payload,
    filter: web::Query<TelemetryFilter>,
) -> Result<HttpResponse, ApiError> {
    let (response, mut session, mut incoming) = actix_ws::handle(&req, body)
        .map_err(|e| ApiError::invalid(format!("not a WebSocket upgrade: {e}")))?;
    let filter = filter.into_inner();
    let log = st.log.clone();
    let mut events = log.subscribe_all(log.head());
    actix_web::rt::spawn(async move {
        loop {
            tokio::select! {
                msg = incoming.next() => match msg {
                    Some(Ok(actix_ws::Message::Ping(p))) if session.pong(&p).await.is_err() => return,
                    Some(Ok(actix_ws::Message::Close(_))) | None | Some(Err(_)) => return,
                    _ => {}
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
                    let Ok(Event::TelemetryIngested { device_id, events: records }) = decode(&rec) else {
                        continue;
                    };
                    if filter.device.as_ref().is_some_and(|d| *d != device_id) {
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
