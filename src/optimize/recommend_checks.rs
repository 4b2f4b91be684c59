//! Constraint checks of the recommender: one verdict per constraint and candidate.

use super::explain::{human_bytes, ms_text};
use super::{Candidate, Compliance, Constraints};

pub(super) fn check(
    c: &Candidate,
    baseline: Option<&Candidate>,
    k: &Constraints,
) -> Vec<Compliance> {
    let mut out = Vec::new();
    if let Some(min) = k.min_accuracy {
        out.push(match c.accuracy {
            Some(a) => Compliance {
                constraint: "min_accuracy".into(),
                passed: a >= min,
                actual: Some(a),
                limit: min,
                detail: format!(
                    "{:.2} % {} {:.2} %",
                    a * 100.0,
                    if a >= min { ">=" } else { "<" },
                    min * 100.0
                ),
            },
            None => unknown("min_accuracy", min, "accuracy not measured"),
        });
    }
    if let Some(max) = k.max_accuracy_drop {
        out.push(accuracy_drop(c, baseline, max));
    }
    if let Some(max) = k.max_size_bytes {
        let ok = c.size_bytes <= max;
        out.push(Compliance {
            constraint: "max_size_bytes".into(),
            passed: ok,
            actual: Some(c.size_bytes as f64),
            limit: max as f64,
            detail: format!(
                "{} {} {}",
                human_bytes(c.size_bytes as f64),
                if ok { "<=" } else { ">" },
                human_bytes(max as f64)
            ),
        });
    }
    for (board, &max) in &k.max_latency_ms {
        let name = format!("max_latency_ms[{board}]");
        out.push(match c.boards.get(board).and_then(|f| f.latency_ms) {
            Some(ms) => Compliance {
                constraint: name,
                passed: ms <= max,
                actual: Some(ms),
                limit: max,
                detail: format!(
                    "{} {} {} on {board}",
                    ms_text(ms),
                    if ms <= max { "<=" } else { ">" },
                    ms_text(max)
                ),
            },
            None => unknown(&name, max, &format!("no latency estimate for {board}")),
        });
    }
    for board in &k.must_fit {
        let name = format!("must_fit[{board}]");
        let fit = c.boards.get(board);
        out.push(match fit.and_then(|f| f.fits) {
            Some(ok) => {
                let f = fit.cloned().unwrap_or_default();
                let mem = match (f.ram_kb, f.flash_kb) {
                    (Some(r), Some(fl)) => format!(" (RAM {r:.0} KiB, flash {fl:.0} KiB)"),
                    _ => String::new(),
                };
                Compliance {
                    constraint: name,
                    passed: ok,
                    actual: Some(if ok { 1.0 } else { 0.0 }),
                    limit: 1.0,
                    detail: format!("{} {board}{mem}", if ok { "fits" } else { "does not fit" }),
                }
            }
            None => unknown(&name, 1.0, &format!("no memory estimate for {board}")),
        });
    }
    out
}

fn unknown(constraint: &str, limit: f64, why: &str) -> Compliance {
    Compliance {
        constraint: constraint.into(),
        passed: false,
        actual: None,
        limit,
        detail: format!("cannot verify: {why}"),
    }
}

/// Accuracy loss in points. Without accuracies, top-1 agreement bounds it: accuracy can fall by
/// at most the share of samples whose prediction changed, so (1 − agreement) × 100 is an upper
/// bound that passes the constraint when it is within the limit.
fn accuracy_drop(c: &Candidate, baseline: Option<&Candidate>, max: f64) -> Compliance {
    let name = "max_accuracy_drop";
    if c.baseline {
        return Compliance {
            constraint: name.into(),
            passed: true,
            actual: Some(0.0),
            limit: max,
            detail: "the baseline itself".into(),
        };
    }
    if let (Some(a), Some(b)) = (c.accuracy, baseline.and_then(|b| b.accuracy)) {
        let drop = (b - a) * 100.0;
        let ok = drop <= max + 1e-9;
        return Compliance {
            constraint: name.into(),
            passed: ok,
            actual: Some(drop),
            limit: max,
            detail: format!("{drop:.2} pt {} {max:.2} pt", if ok { "<=" } else { ">" }),
        };
    }
    match c.agreement {
        Some(g) => {
            let bound = (1.0 - g) * 100.0;
            let ok = bound <= max + 1e-9;
            Compliance {
                constraint: name.into(),
                passed: ok,
                actual: Some(bound),
                limit: max,
                detail: if ok {
                    format!(
                        "at most {bound:.2} pt (agreement {:.2} %) <= {max:.2} pt",
                        g * 100.0
                    )
                } else {
                    format!(
                        "cannot verify: up to {bound:.2} pt (agreement {:.2} %) > {max:.2} pt",
                        g * 100.0
                    )
                },
            }
        }
        None if baseline.is_none() => unknown(name, max, "no baseline candidate"),
        None => unknown(name, max, "accuracy not measured"),
    }
}
