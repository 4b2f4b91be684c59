//! A job as an MLflow run tree: a parent run for the job, a child run per technique (tagged
//! `mlflow.parentRunId`, as MLflow marks nested runs) with its parameters, metrics and the
//! variant as an artifact.

use crate::artifacts::{ArtifactPath, ArtifactStore, ARTIFACT_STREAM};
use crate::domain::{run_names, Caller, Command};
use crate::events::{Event, KeyValue, MetricPoint, VariantResult};
use crate::ledger::{now_ms, Ledger, LedgerError};

/// The worker's identity inside a job's tenant.
pub fn worker_caller(tenant: &str) -> Caller {
    Caller::system("jobs", tenant)
}

fn kv(key: &str, value: impl ToString) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: value.to_string(),
    }
}

pub async fn create_run(
    ledger: &Ledger,
    caller: &Caller,
    experiment_id: i64,
    name: &str,
    tags: Vec<KeyValue>,
) -> Result<String, LedgerError> {
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    ledger
        .execute(
            Command::CreateRun {
                run_id: run_id.clone(),
                experiment_id,
                generated_name: run_names::generate(),
                run_name: Some(name.to_string()),
                user_id: "runledger".into(),
                start_time: now_ms(),
                tags,
            },
            caller,
        )
        .await?;
    Ok(run_id)
}

pub fn job_tags(job_id: &str, parent: Option<&str>) -> Vec<KeyValue> {
    let mut tags = vec![kv("runledger.job_id", job_id)];
    if let Some(p) = parent {
        tags.push(kv("mlflow.parentRunId", p));
    }
    tags
}

/// A variant's figures as MLflow metrics: quality, size, host latency, estimates per board.
pub fn metrics(r: &VariantResult) -> Vec<MetricPoint> {
    let t = now_ms();
    let m = |key: String, v: f64| MetricPoint {
        key,
        value: v.is_finite().then_some(v),
        timestamp: t,
        step: 0,
    };
    let mut out = vec![
        m("size_bytes".into(), r.size_bytes as f64),
        m("size_mb".into(), r.size_bytes as f64 / 1_048_576.0),
        m("seconds".into(), r.seconds),
    ];
    for (k, v) in [
        ("accuracy", r.accuracy),
        ("agreement", r.agreement),
        ("sqnr_db", r.sqnr_db),
        ("host_latency_ms", r.host_latency_ms),
    ] {
        if let Some(v) = v {
            out.push(m(k.into(), v));
        }
    }
    for (board, e) in &r.estimates {
        out.push(m(format!("est_latency_ms.{board}"), e.latency_ms));
        out.push(m(format!("est_ram_kb.{board}"), e.ram_kb));
        out.push(m(format!("est_flash_kb.{board}"), e.flash_kb));
        out.push(m(format!("est_energy_uj.{board}"), e.energy_uj));
    }
    out
}

pub async fn log(
    ledger: &Ledger,
    caller: &Caller,
    run_id: &str,
    params: Vec<KeyValue>,
    metrics: Vec<MetricPoint>,
    tags: Vec<KeyValue>,
) -> Result<(), LedgerError> {
    ledger
        .execute(
            Command::LogBatch {
                run_id: run_id.to_string(),
                metrics,
                params,
                tags,
            },
            caller,
        )
        .await?;
    Ok(())
}

pub async fn finish(
    ledger: &Ledger,
    caller: &Caller,
    run_id: &str,
    status: &str,
) -> Result<(), LedgerError> {
    ledger
        .execute(
            Command::UpdateRun {
                run_id: run_id.to_string(),
                status: Some(status.to_string()),
                end_time: Some(now_ms()),
                run_name: None,
            },
            caller,
        )
        .await?;
    Ok(())
}

/// Store the variant as `model.onnx` among the run's artifacts; returns its artifact path.
/// Runs of experiments with an artifact location outside the store get no copy.
pub async fn store_variant(
    ledger: &Ledger,
    caller: &Caller,
    artifacts: &ArtifactStore,
    run_id: &str,
    bytes: Vec<u8>,
) -> anyhow::Result<Option<String>> {
    let Some(uri) = ledger.read(|s| s.run(run_id).map(|r| r.artifact_uri.clone())) else {
        return Ok(None);
    };
    let Some(root) = uri.strip_prefix("mlflow-artifacts:/") else {
        return Ok(None);
    };
    let path = ArtifactPath::parse(&format!("{root}/model.onnx"))?;
    let mut pending = artifacts.create(&path)?;
    let (size, crc32c) = tokio::task::spawn_blocking(move || {
        pending.write(&bytes)?;
        pending.commit()
    })
    .await??;
    ledger
        .record(
            ARTIFACT_STREAM,
            vec![Event::ArtifactStored {
                run_id: Some(run_id.to_string()),
                path: path.as_str().to_string(),
                size,
                crc32c,
            }],
            &caller.actor,
        )
        .await?;
    Ok(Some(path.as_str().to_string()))
}
