//! The recommender's plain-language reasoning.

use std::collections::BTreeMap;

use super::{failures, Candidate, Compliance, Goal};

pub(super) struct Context<'a> {
    pub(super) candidates: &'a [Candidate],
    pub(super) quality: &'a dyn Fn(&Candidate) -> Option<f64>,
    pub(super) latency: &'a dyn Fn(&Candidate) -> Option<f64>,
    pub(super) board: Option<&'a str>,
    pub(super) use_agreement: bool,
}

pub(super) fn explain(
    ctx: &Context,
    goal: Goal,
    winner: Option<usize>,
    order: &[usize],
    feasible: &[bool],
    checks: &[Vec<Compliance>],
    excluded_by: &BTreeMap<String, Vec<String>>,
) -> Vec<String> {
    let mut out = Vec::new();
    let cands = ctx.candidates;
    if cands.is_empty() {
        out.push("No candidates to choose from.".into());
        return out;
    }
    let n_feasible = feasible.iter().filter(|f| **f).count();
    match winner {
        Some(w) => {
            let c = &cands[w];
            let why = match goal {
                Goal::MaximizeAccuracy => format!("the most {} of the {n_feasible} candidates meeting every constraint", quality_word(ctx)),
                Goal::MinimizeSize => format!("the smallest of the {n_feasible} candidates meeting every constraint"),
                Goal::MinimizeLatency => format!(
                    "the fastest{} of the {n_feasible} candidates meeting every constraint",
                    ctx.board.map(|b| format!(" on {b}")).unwrap_or_default()
                ),
                Goal::Balanced => format!(
                    "the knee of the Pareto front (closest to the best accuracy, size and latency at once) among the {n_feasible} candidates meeting every constraint"
                ),
            };
            out.push(format!("{} wins: {why} ({}).", c.name, profile(ctx, c)));
            // Ties on the goal's own metric, broken by the secondary ones.
            for &i in order.iter().skip(1).filter(|&&i| feasible[i]) {
                if tied(ctx, goal, &cands[w], &cands[i]) {
                    out.push(format!(
                        "{} ties with {} on the goal's metric; the tie is broken by the other metrics, then by name.",
                        cands[i].name, c.name
                    ));
                }
            }
            for &i in order.iter().filter(|&&i| i != w && feasible[i]) {
                out.push(format!(
                    "{}: {}.",
                    cands[i].name,
                    compare(ctx, &cands[i], c)
                ));
            }
        }
        None => out.push("No candidate meets every constraint.".into()),
    }
    for &i in order.iter().filter(|&&i| !feasible[i]) {
        let failed: Vec<String> = checks[i]
            .iter()
            .filter(|x| !x.passed)
            .map(|x| format!("{} ({})", x.constraint, x.detail))
            .collect();
        out.push(format!(
            "{} is excluded by {}.",
            cands[i].name,
            failed.join(", ")
        ));
    }
    if winner.is_none() {
        for (constraint, names) in excluded_by {
            out.push(format!("{constraint} excludes {}.", names.join(", ")));
        }
        if let Some(&closest) = order.first() {
            out.push(format!(
                "Closest: {} fails {} constraint(s); relaxing them is the smallest change that yields a winner.",
                cands[closest].name,
                failures(&checks[closest])
            ));
        }
    }
    out
}

fn quality_word(ctx: &Context) -> &'static str {
    if ctx.use_agreement {
        "faithful to the original (top-1 agreement)"
    } else {
        "accurate"
    }
}

fn tied(ctx: &Context, goal: Goal, a: &Candidate, b: &Candidate) -> bool {
    let eq = |x: Option<f64>, y: Option<f64>| matches!((x, y), (Some(x), Some(y)) if (x - y).abs() < 1e-12);
    match goal {
        Goal::MaximizeAccuracy => eq((ctx.quality)(a), (ctx.quality)(b)),
        Goal::MinimizeSize => a.size_bytes == b.size_bytes,
        Goal::MinimizeLatency => eq((ctx.latency)(a), (ctx.latency)(b)),
        Goal::Balanced => false,
    }
}

fn profile(ctx: &Context, c: &Candidate) -> String {
    let mut parts = Vec::new();
    match (ctx.quality)(c) {
        Some(q) if ctx.use_agreement => parts.push(format!("agreement {:.2} %", q * 100.0)),
        Some(q) => parts.push(format!("accuracy {:.2} %", q * 100.0)),
        None => parts.push("accuracy unknown".into()),
    }
    parts.push(human_bytes(c.size_bytes as f64));
    if let (Some(ms), Some(b)) = ((ctx.latency)(c), ctx.board) {
        parts.push(format!("{} on {b}", ms_text(ms)));
    }
    parts.join(", ")
}

/// What `c` gives up and gains against the winner `w`, e.g.
/// "0.40 pt less accurate than fp16 but 2.1× smaller".
fn compare(ctx: &Context, c: &Candidate, w: &Candidate) -> String {
    let mut worse = Vec::new();
    let mut better = Vec::new();
    if let (Some(q), Some(qw)) = ((ctx.quality)(c), (ctx.quality)(w)) {
        let d = (q - qw) * 100.0;
        let what = if ctx.use_agreement {
            "agreement"
        } else {
            "accurate"
        };
        if d < -1e-9 {
            worse.push(if ctx.use_agreement {
                format!("{:.2} pt lower {what}", -d)
            } else {
                format!("{:.2} pt less {what}", -d)
            });
        } else if d > 1e-9 {
            better.push(if ctx.use_agreement {
                format!("{d:.2} pt higher {what}")
            } else {
                format!("{d:.2} pt more {what}")
            });
        }
    }
    ratio(
        c.size_bytes as f64,
        w.size_bytes as f64,
        "larger",
        "smaller",
        &mut worse,
        &mut better,
    );
    if let (Some(l), Some(lw)) = ((ctx.latency)(c), (ctx.latency)(w)) {
        ratio(l, lw, "slower", "faster", &mut worse, &mut better);
    }
    let vs = format!(" than {}", w.name);
    match (worse.is_empty(), better.is_empty()) {
        (true, true) => format!("equal to {} on every metric", w.name),
        (false, true) => format!("{}{vs}", worse.join(", ")),
        (true, false) => format!("{}{vs}, but ranked lower by the goal", better.join(", ")),
        (false, false) => format!("{}{vs} but {}", worse.join(", "), better.join(", ")),
    }
}

fn ratio(
    x: f64,
    xw: f64,
    more: &str,
    less: &str,
    worse: &mut Vec<String>,
    better: &mut Vec<String>,
) {
    if x <= 0.0 || xw <= 0.0 {
        return;
    }
    let r = x / xw;
    if r > 1.005 {
        worse.push(format!("{r:.1}× {more}"));
    } else if r < 1.0 / 1.005 {
        better.push(format!("{:.1}× {less}", 1.0 / r));
    }
}

pub(super) fn human_bytes(b: f64) -> String {
    if b >= 1024.0 * 1024.0 {
        format!("{:.2} MiB", b / (1024.0 * 1024.0))
    } else if b >= 1024.0 {
        format!("{:.1} KiB", b / 1024.0)
    } else {
        format!("{b:.0} B")
    }
}

pub(super) fn ms_text(ms: f64) -> String {
    if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else if ms >= 1.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.3} ms")
    }
}
