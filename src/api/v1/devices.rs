//! `/api/v1/devices`: register a device (its API key is shown once), read, rotate, revoke.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::error::ApiError;
use super::{json_body, Pagination};
use crate::api::AppState;
use crate::auth::keys::{generate_device_key, hash_key};
use crate::auth::Principal;
use crate::domain::device::NewDevice;
use crate::domain::Command;
use crate::events::KeyValue;
use crate::query::devices::{self, DeviceView};

/// Tags as an object (`{"site": "depot-3"}`) or MLflow-style pairs.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Tags {
    Map(std::collections::BTreeMap<String, String>),
    List(Vec<KeyValue>),
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterDevice {
    pub name: String,
    #[serde(default)]
    pub tags: Option<Tags>,
    pub model_name: Option<String>,
    pub model_version: Option<String>,
    /// Tracking run the deployed model came from.
    pub run_id: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeviceWithKey {
    pub device: DeviceView,
    /// Shown once: only its hash is stored.
    pub api_key: String,
}

#[utoipa::path(
    post,
    path = "/api/v1/devices",
    tag = "devices",
    operation_id = "registerDevice",
    summary = "Register a device",
    description = "A `model_name` of the registry must name one of its versions (404 otherwise); a name already registered answers 409.",
    request_body(content = RegisterDevice, example = json!({"name": "cab-0042", "tags": {"site": "depot-3"}, "model_name": "drowsiness", "model_version": "7"})),
    responses(
        (status = 201, description = "The device and its API key (shown once: only its hash is stored)", body = DeviceWithKey),
        (status = 400, response = crate::api::openapi::errors::BadRequest),
        (status = 404, response = crate::api::openapi::errors::NotFound),
        (status = 409, response = crate::api::openapi::errors::Conflict),
        crate::api::openapi::errors::NativeAuthErrors,
    )
)]
pub async fn register(
    st: web::Data<AppState>,
    p: Principal,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let req: RegisterDevice = json_body(&body)?;
    let tags = match req.tags {
        None => vec![],
        Some(Tags::List(l)) => l,
        Some(Tags::Map(m)) => m
            .into_iter()
            .map(|(key, value)| KeyValue { key, value })
            .collect(),
    };
    let key = generate_device_key();
    let device_id = Uuid::new_v4().simple().to_string();
    st.ledger
        .execute(
            Command::RegisterDevice(NewDevice {
                device_id: device_id.clone(),
                name: req.name,
                tags,
                model_name: req.model_name,
                model_version: req.model_version,
                run_id: req.run_id,
                key_hash: hash_key(&key),
                tenant: p.tenant().to_string(),
            }),
            &p.caller,
        )
        .await?;
    let device = read_device(&st, &p, device_id).await?;
    Ok(HttpResponse::Created().json(DeviceWithKey {
        device,
        api_key: key,
    }))
}

#[utoipa::path(
    get,
    path = "/api/v1/devices/{id}",
    tag = "devices",
    operation_id = "getDevice",
    summary = "Get a device",
    params(("id" = String, Path, description = "The device id.")),
    responses(
        (status = 200, description = "The device", body = DeviceView),
        (status = 400, response = crate::api::openapi::errors::BadRequest),
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
    let device = read_device(&st, &p, id).await?;
    Ok(HttpResponse::Ok().json(device))
}

#[utoipa::path(
    get,
    path = "/api/v1/devices",
    tag = "devices",
    operation_id = "listDevices",
    summary = "List devices in registration order",
    params(Pagination),
    responses(
        (status = 200, description = "A page of devices; `next_offset` is set when more follow", body = super::Page<DeviceView>),
        (status = 400, response = crate::api::openapi::errors::BadRequest),
        crate::api::openapi::errors::NativeAuthErrors,
    )
)]
pub async fn list(
    st: web::Data<AppState>,
    p: Principal,
    page: web::Query<Pagination>,
) -> Result<HttpResponse, ApiError> {
    let (limit, offset) = page.bounds(1000)?;
    let items = st
        .queries
        .read_as(p.tenant(), move |c, t| {
            devices::list(c, t, limit + 1, offset)
        })
        .await?;
    Ok(HttpResponse::Ok().json(super::page(items, limit, offset)))
}

#[utoipa::path(
    post,
    path = "/api/v1/devices/{id}/keys/rotate",
    tag = "devices",
    operation_id = "rotateDeviceKey",
    summary = "Replace a device's API key",
    params(("id" = String, Path, description = "The device id.")),
    responses(
        (status = 200, description = "The device and its new API key (the old one stops working)", body = DeviceWithKey),
        (status = 400, response = crate::api::openapi::errors::BadRequest),
        (status = 404, response = crate::api::openapi::errors::NotFound),
        crate::api::openapi::errors::NativeAuthErrors,
    )
)]
pub async fn rotate(
    st: web::Data<AppState>,
    p: Principal,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let device_id = id.into_inner();
    let key = generate_device_key();
    st.ledger
        .execute(
            Command::RotateDeviceKey {
                device_id: device_id.clone(),
                key_hash: hash_key(&key),
            },
            &p.caller,
        )
        .await?;
    let device = read_device(&st, &p, device_id).await?;
    Ok(HttpResponse::Ok().json(DeviceWithKey {
        device,
        api_key: key,
    }))
}

#[utoipa::path(
    post,
    path = "/api/v1/devices/{id}/keys/revoke",
    tag = "devices",
    operation_id = "revokeDeviceKey",
    summary = "Revoke a device's API key",
    params(("id" = String, Path, description = "The device id.")),
    responses(
        (status = 200, description = "The device, `key_state` `revoked`", body = DeviceView),
        (status = 400, response = crate::api::openapi::errors::BadRequest),
        (status = 404, response = crate::api::openapi::errors::NotFound),
        crate::api::openapi::errors::NativeAuthErrors,
    )
)]
pub async fn revoke(
    st: web::Data<AppState>,
    p: Principal,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let device_id = id.into_inner();
    st.ledger
        .execute(
            Command::RevokeDeviceKey {
                device_id: device_id.clone(),
            },
            &p.caller,
        )
        .await?;
    let device = read_device(&st, &p, device_id).await?;
    Ok(HttpResponse::Ok().json(device))
}

/// Queries wait for the projection to reach the log head, which covers a write just made.
async fn read_device(st: &AppState, p: &Principal, id: String) -> Result<DeviceView, ApiError> {
    Ok(st
        .queries
        .read_as(p.tenant(), move |c, t| devices::get(c, t, &id))
        .await?)
}
