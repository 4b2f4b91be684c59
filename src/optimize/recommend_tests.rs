//! Given/when/then tests of the recommender.

use super::*;

fn cand(name: &str, acc: Option<f64>, size: u64, rpi4_ms: f64) -> Candidate {
    let mut boards = BTreeMap::new();
    boards.insert(
        "rpi4".to_string(),
        BoardFit {
            latency_ms: Some(rpi4_ms),
            ram_kb: Some(100.0),
            flash_kb: Some(size as f64 / 1024.0),
            fits: Some(true),
        },
    );
    Candidate {
        name: name.into(),
        baseline: false,
        accuracy: acc,
        agreement: None,
        size_bytes: size,
        boards,
    }
}

/// The original fp32 model plus three optimized variants.
fn family() -> Vec<Candidate> {
    let mut original = cand("original", Some(0.9890), 4_000_000, 20.0);
    original.baseline = true;
    vec![
        original,
        cand("fp16", Some(0.9889), 2_000_000, 19.0),
        cand("int8-static", Some(0.9850), 1_000_000, 9.0),
        cand("pruned-50", Some(0.9500), 900_000, 8.5),
    ]
}

#[test]
fn given_no_constraints_when_maximizing_accuracy_then_the_original_wins() {
    let r = recommend(&family(), &Constraints::default(), Goal::MaximizeAccuracy);
    assert_eq!(r.winner.as_deref(), Some("original"));
    assert_eq!(r.ranking.len(), 4);
    assert!(r.ranking.iter().all(|x| x.feasible));
    assert!(
        r.reasoning[0].starts_with("original wins"),
        "{:?}",
        r.reasoning
    );
}

#[test]
fn given_an_accuracy_drop_limit_when_minimizing_size_then_the_smallest_compliant_wins() {
    let k = Constraints {
        max_accuracy_drop: Some(1.0),
        ..Default::default()
    };
    let r = recommend(&family(), &k, Goal::MinimizeSize);
    assert_eq!(r.winner.as_deref(), Some("int8-static"));
    let pruned = r.ranking.iter().find(|x| x.name == "pruned-50").unwrap();
    assert!(!pruned.feasible);
    let c = &pruned.compliance[0];
    assert_eq!(c.constraint, "max_accuracy_drop");
    assert!((c.actual.unwrap() - 3.9).abs() < 1e-6, "{c:?}");
    assert_eq!(
        r.excluded_by["max_accuracy_drop"],
        vec!["pruned-50".to_string()]
    );
    // The runner-up sentence says what it gives up and gains.
    let fp16 = r.reasoning.iter().find(|s| s.starts_with("fp16:")).unwrap();
    assert_eq!(
        fp16,
        "fp16: 2.0× larger, 2.1× slower than int8-static but 0.39 pt more accurate."
    );
}

#[test]
fn given_a_latency_limit_when_minimizing_latency_then_the_fastest_compliant_wins() {
    let mut k = Constraints::default();
    k.max_latency_ms.insert("rpi4".into(), 10.0);
    k.min_accuracy = Some(0.98);
    let r = recommend(&family(), &k, Goal::MinimizeLatency);
    assert_eq!(r.winner.as_deref(), Some("int8-static"));
    assert_eq!(r.target_board.as_deref(), Some("rpi4"));
    let original = r.ranking.iter().find(|x| x.name == "original").unwrap();
    let lat = original
        .compliance
        .iter()
        .find(|c| c.constraint == "max_latency_ms[rpi4]")
        .unwrap();
    assert!(!lat.passed && lat.actual == Some(20.0) && lat.limit == 10.0);
}

#[test]
fn given_equal_sizes_when_minimizing_size_then_accuracy_breaks_the_tie() {
    let cands = vec![
        cand("a", Some(0.90), 1000, 5.0),
        cand("b", Some(0.95), 1000, 6.0),
    ];
    let r = recommend(&cands, &Constraints::default(), Goal::MinimizeSize);
    assert_eq!(r.winner.as_deref(), Some("b"));
    assert!(
        r.reasoning.iter().any(|s| s.contains("ties with b")),
        "{:?}",
        r.reasoning
    );
}

#[test]
fn given_identical_candidates_when_ranking_then_the_name_decides_deterministically() {
    let cands = vec![
        cand("zeta", Some(0.9), 1000, 5.0),
        cand("alpha", Some(0.9), 1000, 5.0),
    ];
    for goal in [
        Goal::MaximizeAccuracy,
        Goal::MinimizeSize,
        Goal::MinimizeLatency,
        Goal::Balanced,
    ] {
        let r = recommend(&cands, &Constraints::default(), goal);
        assert_eq!(r.winner.as_deref(), Some("alpha"), "{goal:?}");
    }
}

#[test]
fn given_missing_accuracy_when_a_drop_limit_applies_then_agreement_bounds_it() {
    let mut cands = family();
    cands[2].accuracy = None;
    cands[2].agreement = Some(0.995); // at most 0.5 pt lost
    cands[3].accuracy = None; // nothing known: cannot verify
    let k = Constraints {
        max_accuracy_drop: Some(1.0),
        ..Default::default()
    };
    let r = recommend(&cands, &k, Goal::MinimizeSize);
    assert_eq!(r.winner.as_deref(), Some("int8-static"));
    let pruned = r.ranking.iter().find(|x| x.name == "pruned-50").unwrap();
    assert!(!pruned.feasible);
    assert!(
        pruned.compliance[0].detail.contains("cannot verify"),
        "{:?}",
        pruned.compliance
    );
}

#[test]
fn given_missing_accuracy_when_maximizing_accuracy_then_unknowns_rank_last() {
    let mut cands = family();
    cands[0].accuracy = None;
    let r = recommend(&cands, &Constraints::default(), Goal::MaximizeAccuracy);
    assert_eq!(r.winner.as_deref(), Some("fp16"));
    assert_eq!(r.ranking.last().unwrap().name, "original");
}

#[test]
fn given_no_labels_at_all_when_maximizing_then_agreement_is_the_quality() {
    let mut cands = family();
    for (c, g) in cands
        .iter_mut()
        .zip([None, Some(0.999), Some(0.99), Some(0.9)])
    {
        c.accuracy = None;
        c.agreement = g;
    }
    let k = Constraints {
        max_size_bytes: Some(3_000_000),
        ..Default::default()
    };
    let r = recommend(&cands, &k, Goal::MaximizeAccuracy);
    assert_eq!(r.winner.as_deref(), Some("fp16"));
    assert!(r.reasoning[0].contains("agreement"), "{:?}", r.reasoning);
}

#[test]
fn given_impossible_constraints_when_recommending_then_no_winner_and_each_exclusion_is_named() {
    let mut k = Constraints {
        max_size_bytes: Some(500_000),
        must_fit: vec!["stm32l4r5".into()],
        ..Default::default()
    };
    k.max_latency_ms.insert("rpi4".into(), 1.0);
    let r = recommend(&family(), &k, Goal::Balanced);
    assert_eq!(r.winner, None);
    assert!(r.ranking.iter().all(|x| !x.feasible));
    assert_eq!(r.excluded_by["max_size_bytes"].len(), 4);
    assert_eq!(r.excluded_by["must_fit[stm32l4r5]"].len(), 4);
    assert!(r.reasoning[0].starts_with("No candidate meets every constraint"));
    assert!(
        r.reasoning
            .iter()
            .any(|s| s.starts_with("max_size_bytes excludes")),
        "{:?}",
        r.reasoning
    );
    let fit = &r.ranking[0]
        .compliance
        .iter()
        .find(|c| c.constraint.starts_with("must_fit"))
        .unwrap();
    assert!(fit.detail.contains("cannot verify"));
}

#[test]
fn given_a_board_that_does_not_fit_when_must_fit_then_the_candidate_is_excluded() {
    let mut cands = family();
    cands[0].boards.get_mut("rpi4").unwrap().fits = Some(false);
    let k = Constraints {
        must_fit: vec!["rpi4".into()],
        ..Default::default()
    };
    let r = recommend(&cands, &k, Goal::MaximizeAccuracy);
    assert_eq!(r.winner.as_deref(), Some("fp16"));
    assert!(r
        .reasoning
        .iter()
        .any(|s| s.starts_with("original is excluded by must_fit[rpi4] (does not fit rpi4")));
}

#[test]
fn given_a_tradeoff_when_balanced_then_the_knee_wins_and_dominated_ones_are_off_the_front() {
    // fp16 is dominated by nothing; "bloated" is worse than the original on every axis.
    let mut cands = family();
    cands.push(cand("bloated", Some(0.98), 5_000_000, 30.0));
    let r = recommend(&cands, &Constraints::default(), Goal::Balanced);
    assert_eq!(r.winner.as_deref(), Some("int8-static"));
    let bloated = r.ranking.iter().find(|x| x.name == "bloated").unwrap();
    assert!(!bloated.pareto);
    assert_eq!(r.ranking.last().unwrap().name, "bloated");
    assert!(r.ranking.iter().all(|x| x.score.is_some()));
}

#[test]
fn given_no_candidates_when_recommending_then_it_says_so() {
    let r = recommend(&[], &Constraints::default(), Goal::Balanced);
    assert_eq!(r.winner, None);
    assert_eq!(
        r.reasoning,
        vec!["No candidates to choose from.".to_string()]
    );
}

#[test]
fn given_json_inputs_when_deserialized_then_snake_case_and_defaults_apply() {
    let goal: Goal = serde_json::from_str("\"maximize_accuracy\"").unwrap();
    assert_eq!(goal, Goal::MaximizeAccuracy);
    let k: Constraints =
        serde_json::from_str(r#"{"max_latency_ms": {"rpi4": 50}, "must_fit": ["esp32"]}"#).unwrap();
    assert_eq!(k.max_latency_ms["rpi4"], 50.0);
    let c: Candidate = serde_json::from_str(r#"{"name": "int8", "size_bytes": 10}"#).unwrap();
    assert!(!c.baseline && c.accuracy.is_none() && c.boards.is_empty());
    let r = recommend(&[c], &k, Goal::Balanced);
    let json = serde_json::to_string(&r).unwrap();
    assert!(
        json.contains("\"goal\":\"balanced\"") && json.contains("\"excluded_by\""),
        "{json}"
    );
    let back: Recommendation = serde_json::from_str(&json).unwrap();
    assert_eq!(back, r);
}
