//! The messages of `/ws/jobs/{id}`, derived from the job's events and its folded view.
//! Every message carries the log `position` of the event it came from, so a client that
//! reconnects with `?after=<position>` misses nothing.

use serde_json::{json, Value};

use crate::domain::job::{JobView, TechniqueStatus};
use crate::events::Event;

const MB: f64 = 1_048_576.0;

/// A late subscriber's first message: the job as of `position`.
pub fn snapshot(view: &JobView, position: u64) -> Value {
    json!({ "type": "snapshot", "job_id": view.job_id, "position": position, "job": view })
}

/// Messages for `event`, given the view with the event already applied.
pub fn for_event(view: &JobView, event: &Event, position: u64) -> Vec<Value> {
    match event {
        Event::JobClaimed { .. }
        | Event::TechniqueStarted { .. }
        | Event::TechniqueProgressed { .. } => vec![progress_update(view, position)],
        Event::TechniqueCompleted {
            technique, result, ..
        } => vec![
            json!({
                "type": "technique_completed",
                "job_id": view.job_id,
                "position": position,
                "technique": technique,
                "result": result,
            }),
            progress_update(view, position),
        ],
        Event::TechniqueFailed {
            technique, reason, ..
        } => vec![json!({
            "type": "error",
            "job_id": view.job_id,
            "position": position,
            "technique": technique,
            "message": reason,
        })],
        Event::RecommendationMade { recommendation, .. } => vec![json!({
            "type": "recommendation",
            "job_id": view.job_id,
            "position": position,
            "recommendation": recommendation,
        })],
        Event::JobCompleted { .. } | Event::JobFailed { .. } | Event::JobCancelled { .. } => {
            vec![json!({
                "type": "job_finished",
                "job_id": view.job_id,
                "position": position,
                "status": view.status,
                "error": view.error,
                "overall_progress": overall(view),
            })]
        }
        _ => vec![],
    }
}

fn overall(view: &JobView) -> Value {
    json!({
        "completed_techniques": view.finished_techniques(),
        "total_techniques": view.techniques.len(),
        "progress_percent": view.progress_percent(),
        "eta_seconds": view.eta_seconds,
    })
}

fn progress_update(view: &JobView, position: u64) -> Value {
    let current = view
        .techniques
        .iter()
        .find(|t| t.status == TechniqueStatus::Running)
        .map(|t| {
            json!({
                "name": t.key,
                "progress_percent": t.progress_percent,
                "eta_seconds": t.eta_seconds,
                "stage": t.stage,
            })
        });
    // The latest finished variant is the "current" model; before any, the original.
    let latest = view
        .techniques
        .iter()
        .filter_map(|t| t.result.as_ref().zip(t.finished_ms))
        .max_by_key(|(_, at)| *at)
        .map(|(r, _)| r)
        .or(view.baseline.as_ref());
    let size_mb = |b: u64| b as f64 / MB;
    json!({
        "type": "progress_update",
        "job_id": view.job_id,
        "position": position,
        "current_technique": current,
        "overall_progress": overall(view),
        "metrics": {
            "original_accuracy": view.baseline.as_ref().and_then(|b| b.accuracy),
            "current_accuracy": latest.and_then(|r| r.accuracy),
            "original_size_mb": view.baseline.as_ref().map(|b| size_mb(b.size_bytes)),
            "current_size_mb": latest.map(|r| size_mb(r.size_bytes)),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{JobSpec, TechniqueSpec, VariantResult};
    use crate::optimize::recommend::{Constraints, Goal};

    fn spec() -> JobSpec {
        let t = |n: &str| TechniqueSpec {
            name: n.into(),
            label: None,
            sparsity: None,
            fraction: None,
            block: None,
        };
        JobSpec {
            name: "j".into(),
            model_id: "m".into(),
            calibration_dataset_id: "c".into(),
            evaluation_dataset_id: "e".into(),
            techniques: vec![t("fp16"), t("int8-weight")],
            boards: vec![],
            constraints: Constraints::default(),
            goal: Goal::Balanced,
            experiment_id: 0,
            priority: 0,
        }
    }

    fn result(acc: f64, size: u64) -> VariantResult {
        VariantResult {
            sha256: "0".repeat(64),
            size_bytes: size,
            accuracy: Some(acc),
            agreement: None,
            sqnr_db: None,
            host_latency_ms: None,
            estimates: Default::default(),
            artifact_path: None,
            seconds: 1.0,
        }
    }

    #[test]
    fn progress_update_has_the_documented_shape() {
        let mut v = JobView::new("j1", &spec(), "run", "default", 0);
        let events = [
            Event::JobClaimed {
                job_id: "j1".into(),
                worker: "local/1".into(),
            },
            Event::BaselineMeasured {
                job_id: "j1".into(),
                result: result(0.98, 2 * 1_048_576),
            },
            Event::TechniqueStarted {
                job_id: "j1".into(),
                technique: "fp16".into(),
                run_id: "c1".into(),
            },
            Event::TechniqueProgressed {
                job_id: "j1".into(),
                technique: "fp16".into(),
                stage: "layer 1/2".into(),
                percent: 50.0,
                eta_seconds: Some(1.5),
                job_eta_seconds: Some(4.5),
            },
        ];
        let mut last = vec![];
        for (i, e) in events.iter().enumerate() {
            v.apply(e, i as i64);
            last = for_event(&v, e, i as u64);
        }
        let m = &last[0];
        assert_eq!(m["type"], "progress_update");
        assert_eq!(m["position"], 3);
        assert_eq!(m["current_technique"]["name"], "fp16");
        assert_eq!(m["current_technique"]["progress_percent"], 50.0);
        assert_eq!(m["current_technique"]["eta_seconds"], 1.5);
        assert_eq!(m["overall_progress"]["completed_techniques"], 0);
        assert_eq!(m["overall_progress"]["total_techniques"], 2);
        assert_eq!(m["overall_progress"]["progress_percent"], 25.0);
        assert_eq!(m["overall_progress"]["eta_seconds"], 4.5);
        assert_eq!(m["metrics"]["original_accuracy"], 0.98);
        assert_eq!(m["metrics"]["original_size_mb"], 2.0);

        let done = Event::TechniqueCompleted {
            job_id: "j1".into(),
            technique: "fp16".into(),
            result: result(0.97, 1_048_576),
        };
        v.apply(&done, 10);
        let msgs = for_event(&v, &done, 4);
        assert_eq!(msgs[0]["type"], "technique_completed");
        assert_eq!(msgs[1]["metrics"]["current_accuracy"], 0.97);
        assert_eq!(msgs[1]["metrics"]["current_size_mb"], 1.0);
        assert_eq!(msgs[1]["overall_progress"]["completed_techniques"], 1);

        let fin = Event::JobCancelled {
            job_id: "j1".into(),
        };
        v.apply(&fin, 11);
        let msgs = for_event(&v, &fin, 5);
        assert_eq!(msgs[0]["type"], "job_finished");
        assert_eq!(msgs[0]["status"], "cancelled");
    }
}
