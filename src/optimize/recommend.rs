//! Picks the best optimized variant of a model under the user's constraints and explains why.
//!
//! Pure: candidates (the original plus each technique's result, with measured accuracy and
//! estimated per-board latency/memory) in, a ranked, reasoned recommendation out.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use checks::check;
use explain::{explain, Context};

#[path = "recommend_checks.rs"]
mod checks;
#[path = "recommend_explain.rs"]
mod explain;

/// One model variant. Accuracy and agreement are fractions in [0, 1], as the evaluator reports
/// them; accuracy differences are reported in percentage points.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// The technique that produced it, e.g. "int8-static"; the original is usually "original".
    pub name: String,
    /// Whether this is the unoptimized original that accuracy drops are measured against.
    #[serde(default)]
    pub baseline: bool,
    #[serde(default)]
    pub accuracy: Option<f64>,
    /// Share of samples whose top-1 class equals the baseline's.
    #[serde(default)]
    pub agreement: Option<f64>,
    pub size_bytes: u64,
    /// Estimates per board id.
    #[serde(default)]
    pub boards: BTreeMap<String, BoardFit>,
}

/// Estimated behaviour of a candidate on one board.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BoardFit {
    #[serde(default)]
    pub latency_ms: Option<f64>,
    #[serde(default)]
    pub ram_kb: Option<f64>,
    #[serde(default)]
    pub flash_kb: Option<f64>,
    /// Whether RAM and flash fit the board.
    #[serde(default)]
    pub fits: Option<bool>,
}

/// Limits a candidate must meet; every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Constraints {
    /// Minimum accuracy, a fraction in [0, 1].
    #[serde(default)]
    pub min_accuracy: Option<f64>,
    /// Maximum accuracy loss against the baseline, in percentage points.
    #[serde(default)]
    pub max_accuracy_drop: Option<f64>,
    #[serde(default)]
    pub max_size_bytes: Option<u64>,
    /// Maximum latency per board id, ms.
    #[serde(default)]
    pub max_latency_ms: BTreeMap<String, f64>,
    /// Boards whose RAM and flash the model must fit.
    #[serde(default)]
    pub must_fit: Vec<String>,
    /// Board whose latency the latency goal and the balanced goal use; default: the first board
    /// with a latency limit, else the first `must_fit` board, else the first board any candidate
    /// has a latency for (by id).
    #[serde(default)]
    pub target_board: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Goal {
    MaximizeAccuracy,
    MinimizeSize,
    MinimizeLatency,
    /// The knee of the Pareto front over accuracy (up), size (down) and latency (down): the front
    /// member closest (Euclidean) to the utopia point after scaling each objective to [0, 1] by
    /// its min and max over the feasible candidates.
    Balanced,
}

/// Verdict of one constraint on one candidate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Compliance {
    /// Constraint name, e.g. "max_latency_ms[rpi4]".
    pub constraint: String,
    pub passed: bool,
    /// The candidate's value (`None` when unknown: an unverifiable constraint fails).
    pub actual: Option<f64>,
    pub limit: f64,
    /// One sentence, e.g. "3.1 pt > 1.0 pt".
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Ranked {
    pub rank: usize,
    pub name: String,
    pub feasible: bool,
    /// On the Pareto front of the feasible candidates (accuracy, size, latency).
    pub pareto: bool,
    /// Balanced goal only: normalized distance to the utopia point (smaller is better).
    #[serde(default)]
    pub score: Option<f64>,
    pub compliance: Vec<Compliance>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Recommendation {
    pub goal: Goal,
    pub winner: Option<String>,
    /// Board the latency figures refer to, if any.
    pub target_board: Option<String>,
    pub ranking: Vec<Ranked>,
    /// Plain sentences: why the winner, what each other candidate gives up or gains.
    pub reasoning: Vec<String>,
    /// Constraint name → candidates it excluded.
    pub excluded_by: BTreeMap<String, Vec<String>>,
}

/// Ranks `candidates` under `constraints` for `goal`. Never fails: an empty or infeasible
/// set yields no winner and the reasons.
pub fn recommend(
    candidates: &[Candidate],
    constraints: &Constraints,
    goal: Goal,
) -> Recommendation {
    let baseline = candidates.iter().find(|c| c.baseline);
    let board = target_board(candidates, constraints);
    let use_agreement = candidates.iter().all(|c| c.accuracy.is_none());
    let quality = |c: &Candidate| -> Option<f64> {
        if use_agreement {
            // Without labels, agreement with the original is the only quality signal.
            if c.baseline {
                Some(1.0)
            } else {
                c.agreement
            }
        } else {
            c.accuracy
        }
    };
    let latency = |c: &Candidate| {
        board
            .as_ref()
            .and_then(|b| c.boards.get(b))
            .and_then(|f| f.latency_ms)
    };

    let checks: Vec<Vec<Compliance>> = candidates
        .iter()
        .map(|c| check(c, baseline, constraints))
        .collect();
    let feasible: Vec<bool> = checks.iter().map(|v| v.iter().all(|x| x.passed)).collect();

    // Pareto front and knee distance over the feasible set.
    let feas_ix: Vec<usize> = (0..candidates.len()).filter(|&i| feasible[i]).collect();
    let objectives = |i: usize| -> [Option<f64>; 3] {
        let c = &candidates[i];
        // All three as "smaller is better".
        [
            quality(c).map(|q| -q),
            Some(c.size_bytes as f64),
            latency(c),
        ]
    };
    let pareto: Vec<bool> = (0..candidates.len())
        .map(|i| {
            feasible[i]
                && !feas_ix
                    .iter()
                    .any(|&j| j != i && dominates(&objectives(j), &objectives(i)))
        })
        .collect();
    let scores = knee_scores(&feas_ix, &objectives, candidates.len());

    let mut order: Vec<usize> = (0..candidates.len()).collect();
    order.sort_by(|&a, &b| {
        let (ca, cb) = (&candidates[a], &candidates[b]);
        let by_acc = cmp_desc(quality(ca), quality(cb));
        let by_size = ca.size_bytes.cmp(&cb.size_bytes);
        let by_lat = cmp_asc(latency(ca), latency(cb));
        feasible[b]
            .cmp(&feasible[a])
            .then_with(|| match goal {
                Goal::MaximizeAccuracy => by_acc.then(by_size).then(by_lat),
                Goal::MinimizeSize => by_size.then(by_acc).then(by_lat),
                Goal::MinimizeLatency => by_lat.then(by_acc).then(by_size),
                Goal::Balanced => pareto[b]
                    .cmp(&pareto[a])
                    .then(cmp_asc(scores[a], scores[b]))
                    .then(by_acc)
                    .then(by_size)
                    .then(by_lat),
            })
            // Fewer failed constraints first among the infeasible, then a stable name order.
            .then_with(|| failures(&checks[a]).cmp(&failures(&checks[b])))
            .then_with(|| ca.name.cmp(&cb.name))
    });

    let winner = order.first().copied().filter(|&i| feasible[i]);
    let ranking = order
        .iter()
        .enumerate()
        .map(|(rank, &i)| Ranked {
            rank: rank + 1,
            name: candidates[i].name.clone(),
            feasible: feasible[i],
            pareto: pareto[i],
            score: if goal == Goal::Balanced {
                scores[i]
            } else {
                None
            },
            compliance: checks[i].clone(),
        })
        .collect();

    let mut excluded_by: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for &i in &order {
        for x in checks[i].iter().filter(|x| !x.passed) {
            excluded_by
                .entry(x.constraint.clone())
                .or_default()
                .push(candidates[i].name.clone());
        }
    }

    let ctx = Context {
        candidates,
        quality: &quality,
        latency: &latency,
        board: board.as_deref(),
        use_agreement,
    };
    let reasoning = explain(&ctx, goal, winner, &order, &feasible, &checks, &excluded_by);
    Recommendation {
        goal,
        winner: winner.map(|i| candidates[i].name.clone()),
        target_board: board,
        ranking,
        reasoning,
        excluded_by,
    }
}

fn target_board(candidates: &[Candidate], c: &Constraints) -> Option<String> {
    c.target_board
        .clone()
        .or_else(|| c.max_latency_ms.keys().next().cloned())
        .or_else(|| c.must_fit.first().cloned())
        .or_else(|| {
            let mut boards: Vec<&String> = candidates
                .iter()
                .flat_map(|c| {
                    c.boards
                        .iter()
                        .filter(|(_, f)| f.latency_ms.is_some())
                        .map(|(b, _)| b)
                })
                .collect();
            boards.sort();
            boards.first().map(|b| (*b).clone())
        })
}

fn failures(v: &[Compliance]) -> usize {
    v.iter().filter(|x| !x.passed).count()
}

/// Descending order with unknown values last.
fn cmp_desc(a: Option<f64>, b: Option<f64>) -> Ordering {
    match (a, b) {
        (Some(x), Some(y)) => y.total_cmp(&x),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

/// Ascending order with unknown values last.
fn cmp_asc(a: Option<f64>, b: Option<f64>) -> Ordering {
    match (a, b) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

/// `a` dominates `b`: no worse on every objective known for both, strictly better on one.
/// An objective unknown for either side is ignored.
fn dominates(a: &[Option<f64>; 3], b: &[Option<f64>; 3]) -> bool {
    let pairs: Vec<(f64, f64)> = a
        .iter()
        .zip(b)
        .filter_map(|(x, y)| Some(((*x)?, (*y)?)))
        .collect();
    !pairs.is_empty() && pairs.iter().all(|(x, y)| x <= y) && pairs.iter().any(|(x, y)| x < y)
}

/// Distance to the utopia point with each objective min-max scaled over the feasible set; an
/// objective unknown for a candidate counts as its worst (1); objectives equal for everyone
/// are ignored.
fn knee_scores(
    feas: &[usize],
    objectives: &dyn Fn(usize) -> [Option<f64>; 3],
    n: usize,
) -> Vec<Option<f64>> {
    let mut out = vec![None; n];
    let objs: Vec<[Option<f64>; 3]> = feas.iter().map(|&i| objectives(i)).collect();
    let mut ranges = [None; 3];
    for (k, range) in ranges.iter_mut().enumerate() {
        let vals: Vec<f64> = objs.iter().filter_map(|o| o[k]).collect();
        let lo = vals.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if hi > lo {
            *range = Some((lo, hi));
        }
    }
    for (pos, &i) in feas.iter().enumerate() {
        let d2: f64 = ranges
            .iter()
            .enumerate()
            .filter_map(|(k, r)| {
                r.map(|(lo, hi)| objs[pos][k].map(|v| (v - lo) / (hi - lo)).unwrap_or(1.0))
            })
            .map(|x| x * x)
            .sum();
        out[i] = Some(d2.sqrt());
    }
    out
}

#[cfg(test)]
#[path = "recommend_tests.rs"]
mod tests;
