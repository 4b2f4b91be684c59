//! Domain events: the payloads written to the log, their envelope, and upcasting.
//!
//! Every event type carries a schema version; `decode` upcasts old versions to the current
//! shape on read, so the log is never rewritten. `schemas/` is generated from these types.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::log::{NewEvent, RecordedEvent};

pub mod accounts;
pub mod jobs;
mod schema;
mod subject;
mod telemetry;
pub use accounts::{
    default_tenant, tenant_stream, user_stream, Role, TenantInfo, Tier, TokenInfo, UserInfo,
    DEFAULT_TENANT,
};
pub use jobs::{
    dataset_stream, job_stream, model_stream, registered_model_stream, BoardEstimate, BoardTarget,
    DatasetInfo, JobSpec, JobStatus, TechniqueSpec, VariantResult,
};
pub use schema::{json_schema, schema_text, write_schema_file, write_schemas, SCHEMA_FILE};
pub use subject::SearchSubject;
pub use telemetry::{FieldValue, Severity, TelemetryRecord};

/// Current schema version of every event payload. Bump per type when its shape changes and
/// add an upcaster arm in [`decode`].
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, utoipa::ToSchema)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
}

/// A metric value as logged. NaN and ±Infinity are kept as `null` + flag in JSON, because
/// JSON has no NaN; `value` holds the clamped finite value for infinities.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MetricPoint {
    pub key: String,
    /// `None` encodes NaN.
    pub value: Option<f64>,
    pub timestamp: i64,
    pub step: i64,
}

impl MetricPoint {
    pub fn value_f64(&self) -> f64 {
        self.value.unwrap_or(f64::NAN)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Dataset {
    pub name: String,
    pub digest: String,
    pub source_type: String,
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DatasetInput {
    pub dataset: Dataset,
    #[serde(default)]
    pub tags: Vec<KeyValue>,
}

/// Every domain event. The variant name is the event type written in the envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", content = "data")]
pub enum Event {
    ExperimentCreated {
        experiment_id: i64,
        name: String,
        artifact_location: String,
        #[serde(default)]
        tags: Vec<KeyValue>,
        /// Owning tenant (events before tenancy: the default tenant).
        #[serde(default = "default_tenant")]
        tenant: String,
    },
    ExperimentRenamed {
        experiment_id: i64,
        new_name: String,
    },
    ExperimentDeleted {
        experiment_id: i64,
    },
    ExperimentRestored {
        experiment_id: i64,
    },
    ExperimentTagSet {
        experiment_id: i64,
        key: String,
        value: String,
    },
    ExperimentTagDeleted {
        experiment_id: i64,
        key: String,
    },
    RunCreated {
        run_id: String,
        experiment_id: i64,
        run_name: String,
        user_id: String,
        start_time: i64,
        artifact_uri: String,
        #[serde(default)]
        tags: Vec<KeyValue>,
    },
    RunUpdated {
        run_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        end_time: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        run_name: Option<String>,
    },
    RunDeleted {
        run_id: String,
    },
    RunRestored {
        run_id: String,
    },
    ParamsLogged {
        run_id: String,
        params: Vec<KeyValue>,
    },
    /// One per log-metric or log-batch request; the projector expands it into rows.
    MetricsLogged {
        run_id: String,
        metrics: Vec<MetricPoint>,
    },
    RunTagsSet {
        run_id: String,
        tags: Vec<KeyValue>,
    },
    RunTagDeleted {
        run_id: String,
        key: String,
    },
    DatasetInputsLogged {
        run_id: String,
        inputs: Vec<DatasetInput>,
    },
    ArtifactStored {
        run_id: Option<String>,
        path: String,
        size: u64,
        crc32c: u32,
    },
    ArtifactDeleted {
        run_id: Option<String>,
        path: String,
    },
    /// A device was registered; only the SHA-256 of its API key is recorded.
    DeviceRegistered {
        device_id: String,
        name: String,
        #[serde(default)]
        tags: Vec<KeyValue>,
        model_name: Option<String>,
        model_version: Option<String>,
        run_id: Option<String>,
        key_hash: String,
        /// Owning tenant (events before tenancy: the default tenant).
        #[serde(default = "default_tenant")]
        tenant: String,
    },
    /// The device's key was replaced; the old key stops working.
    DeviceKeyRotated {
        device_id: String,
        key_hash: String,
    },
    /// The device's key was revoked; it cannot ingest until a rotation issues a new key.
    DeviceKeyRevoked {
        device_id: String,
    },
    /// One per accepted telemetry request; the projector expands it into rows.
    TelemetryIngested {
        device_id: String,
        events: Vec<TelemetryRecord>,
        /// The device's tenant, so analytics filter rows without a join.
        #[serde(default = "default_tenant")]
        tenant: String,
    },
    /// An ONNX model was uploaded and validated; its bytes are stored by SHA-256.
    ModelUploaded {
        model_id: String,
        name: String,
        sha256: String,
        size_bytes: u64,
        /// The graph summary (inputs, outputs, parameters, MACs, operators).
        summary: serde_json::Value,
        /// Owning tenant (events before tenancy: the default tenant).
        #[serde(default = "default_tenant")]
        tenant: String,
    },
    /// Inputs and optional labels with their preprocessing (same JSON as a struct variant).
    DatasetRegistered(DatasetInfo),
    JobQueued {
        job_id: String,
        spec: JobSpec,
        /// The MLflow run standing for the whole job.
        parent_run_id: String,
        /// Owning tenant (events before tenancy: the default tenant).
        #[serde(default = "default_tenant")]
        tenant: String,
    },
    /// A worker took the job (appended with the stream's expected version: one winner).
    JobClaimed {
        job_id: String,
        worker: String,
    },
    /// The original model measured the way every variant is.
    BaselineMeasured {
        job_id: String,
        result: VariantResult,
    },
    TechniqueStarted {
        job_id: String,
        technique: String,
        /// The technique's child run.
        run_id: String,
    },
    TechniqueProgressed {
        job_id: String,
        technique: String,
        stage: String,
        percent: f64,
        /// From the measured rate of this technique so far.
        eta_seconds: Option<f64>,
        /// For the whole job, from the measured times of finished techniques.
        job_eta_seconds: Option<f64>,
    },
    TechniqueCompleted {
        job_id: String,
        technique: String,
        result: VariantResult,
    },
    TechniqueFailed {
        job_id: String,
        technique: String,
        reason: String,
    },
    RecommendationMade {
        job_id: String,
        recommendation: serde_json::Value,
    },
    JobCompleted {
        job_id: String,
    },
    JobFailed {
        job_id: String,
        reason: String,
    },
    JobCancelled {
        job_id: String,
    },
    /// A job's variant became version `version` of a registered model.
    ModelVersionRegistered {
        name: String,
        version: u64,
        job_id: String,
        technique: String,
        source_model_id: String,
        sha256: String,
        size_bytes: u64,
        run_id: Option<String>,
        artifact_path: Option<String>,
        /// Owning tenant (events before tenancy: the default tenant).
        #[serde(default = "default_tenant")]
        tenant: String,
    },
    TenantCreated(TenantInfo),
    TenantTierChanged {
        tenant_id: String,
        tier: Tier,
    },
    UserCreated(UserInfo),
    UserPasswordChanged {
        username: String,
        password_hash: String,
    },
    UserRoleChanged {
        username: String,
        role: Role,
    },
    TokenIssued(TokenInfo),
    TokenRevoked {
        username: String,
        token_id: String,
    },
}

impl Event {
    pub fn type_name(&self) -> &'static str {
        match self {
            Event::ExperimentCreated { .. } => "ExperimentCreated",
            Event::ExperimentRenamed { .. } => "ExperimentRenamed",
            Event::ExperimentDeleted { .. } => "ExperimentDeleted",
            Event::ExperimentRestored { .. } => "ExperimentRestored",
            Event::ExperimentTagSet { .. } => "ExperimentTagSet",
            Event::ExperimentTagDeleted { .. } => "ExperimentTagDeleted",
            Event::RunCreated { .. } => "RunCreated",
            Event::RunUpdated { .. } => "RunUpdated",
            Event::RunDeleted { .. } => "RunDeleted",
            Event::RunRestored { .. } => "RunRestored",
            Event::ParamsLogged { .. } => "ParamsLogged",
            Event::MetricsLogged { .. } => "MetricsLogged",
            Event::RunTagsSet { .. } => "RunTagsSet",
            Event::RunTagDeleted { .. } => "RunTagDeleted",
            Event::DatasetInputsLogged { .. } => "DatasetInputsLogged",
            Event::ArtifactStored { .. } => "ArtifactStored",
            Event::ArtifactDeleted { .. } => "ArtifactDeleted",
            Event::DeviceRegistered { .. } => "DeviceRegistered",
            Event::DeviceKeyRotated { .. } => "DeviceKeyRotated",
            Event::DeviceKeyRevoked { .. } => "DeviceKeyRevoked",
            Event::TelemetryIngested { .. } => "TelemetryIngested",
            Event::ModelUploaded { .. } => "ModelUploaded",
            Event::DatasetRegistered(_) => "DatasetRegistered",
            Event::JobQueued { .. } => "JobQueued",
            Event::JobClaimed { .. } => "JobClaimed",
            Event::BaselineMeasured { .. } => "BaselineMeasured",
            Event::TechniqueStarted { .. } => "TechniqueStarted",
            Event::TechniqueProgressed { .. } => "TechniqueProgressed",
            Event::TechniqueCompleted { .. } => "TechniqueCompleted",
            Event::TechniqueFailed { .. } => "TechniqueFailed",
            Event::RecommendationMade { .. } => "RecommendationMade",
            Event::JobCompleted { .. } => "JobCompleted",
            Event::JobFailed { .. } => "JobFailed",
            Event::JobCancelled { .. } => "JobCancelled",
            Event::ModelVersionRegistered { .. } => "ModelVersionRegistered",
            Event::TenantCreated(_) => "TenantCreated",
            Event::TenantTierChanged { .. } => "TenantTierChanged",
            Event::UserCreated(_) => "UserCreated",
            Event::UserPasswordChanged { .. } => "UserPasswordChanged",
            Event::UserRoleChanged { .. } => "UserRoleChanged",
            Event::TokenIssued(_) => "TokenIssued",
            Event::TokenRevoked { .. } => "TokenRevoked",
        }
    }

    /// The job a job event belongs to.
    pub fn job_id(&self) -> Option<&str> {
        match self {
            Event::JobQueued { job_id, .. }
            | Event::JobClaimed { job_id, .. }
            | Event::BaselineMeasured { job_id, .. }
            | Event::TechniqueStarted { job_id, .. }
            | Event::TechniqueProgressed { job_id, .. }
            | Event::TechniqueCompleted { job_id, .. }
            | Event::TechniqueFailed { job_id, .. }
            | Event::RecommendationMade { job_id, .. }
            | Event::JobCompleted { job_id }
            | Event::JobFailed { job_id, .. }
            | Event::JobCancelled { job_id } => Some(job_id),
            _ => None,
        }
    }

    /// Wrap the event for appending, stamped with its actor and the wall-clock time.
    pub fn to_new(&self, actor: &str, time_ms: i64) -> NewEvent {
        let event_type = self.type_name().to_string();
        // Serialising a plain data enum cannot fail.
        let payload = serde_json::to_vec(self).unwrap_or_default();
        NewEvent {
            id: Uuid::new_v4(),
            event_type,
            schema_version: SCHEMA_VERSION,
            actor: actor.to_string(),
            time_ms,
            payload,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("event at position {position} ({event_type} v{version}) is unreadable: {source}")]
    Payload {
        position: u64,
        event_type: String,
        version: u32,
        source: serde_json::Error,
    },
    #[error("event at position {position} has unknown schema version {version} of {event_type}")]
    UnknownVersion {
        position: u64,
        event_type: String,
        version: u32,
    },
}

/// Decode a recorded event, upcasting older schema versions to the current one.
pub fn decode(rec: &RecordedEvent) -> Result<Event, DecodeError> {
    match rec.schema_version {
        // Version 1 is current: no upcasting needed yet.
        1 => serde_json::from_slice(&rec.payload).map_err(|source| DecodeError::Payload {
            position: rec.position,
            event_type: rec.event_type.clone(),
            version: rec.schema_version,
            source,
        }),
        v => Err(DecodeError::UnknownVersion {
            position: rec.position,
            event_type: rec.event_type.clone(),
            version: v,
        }),
    }
}

pub fn experiment_stream(id: i64) -> String {
    format!("experiment-{id}")
}

pub fn run_stream(id: &str) -> String {
    format!("run-{id}")
}

pub fn device_stream(id: &str) -> String {
    format!("device-{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_through_envelope() {
        let ev = Event::MetricsLogged {
            run_id: "abc".into(),
            metrics: vec![MetricPoint {
                key: "loss".into(),
                value: None,
                timestamp: 5,
                step: 1,
            }],
        };
        let new = ev.to_new("user:alice", 42);
        assert_eq!(new.event_type, "MetricsLogged");
        let rec = RecordedEvent {
            position: 7,
            stream: "run-abc".into(),
            version: 0,
            id: new.id,
            event_type: new.event_type,
            schema_version: new.schema_version,
            actor: new.actor,
            time_ms: new.time_ms,
            payload: new.payload.into(),
        };
        assert_eq!(decode(&rec).unwrap(), ev);
    }

    /// `schemas/` is generated from the Rust types; run `runledger schemas` when this fails.
    #[test]
    fn committed_schema_is_current() {
        let committed = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("schemas")
                .join(SCHEMA_FILE),
        )
        .expect("schemas/events.schema.json is missing: run `runledger schemas`");
        let current = schema_text(&json_schema());
        assert!(
            committed == current,
            "schemas/ is stale: run `runledger schemas`"
        );
    }

    #[test]
    fn unknown_version_is_an_error() {
        let rec = RecordedEvent {
            position: 1,
            stream: "s".into(),
            version: 0,
            id: Uuid::new_v4(),
            event_type: "RunDeleted".into(),
            schema_version: 99,
            actor: "system".into(),
            time_ms: 0,
            payload: b"{}".to_vec().into(),
        };
        assert!(matches!(
            decode(&rec),
            Err(DecodeError::UnknownVersion { .. })
        ));
    }
}
