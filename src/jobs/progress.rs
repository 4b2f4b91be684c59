//! Progress bookkeeping of a running job: which reports become events, and ETAs from the
//! rates measured so far (never from guesses).

use std::time::Duration;

/// Decides which progress reports are worth an event: a new stage, the end, or the
/// interval elapsed since the last one.
#[derive(Debug)]
pub struct Throttle {
    interval: Duration,
    last: Option<(Duration, String)>,
}

impl Throttle {
    pub fn new(interval: Duration) -> Throttle {
        Throttle {
            interval,
            last: None,
        }
    }

    /// `now` is the time since the technique started.
    pub fn admit(&mut self, now: Duration, stage: &str, fraction: f64) -> bool {
        let due = match &self.last {
            None => true,
            Some((t, s)) => {
                s != stage || fraction >= 1.0 || now.saturating_sub(*t) >= self.interval
            }
        };
        if due {
            self.last = Some((now, stage.to_string()));
        }
        due
    }
}

/// Seconds left for a technique `fraction` done after `elapsed`, at the rate so far. `None`
/// until there is enough progress to measure a rate.
pub fn technique_eta(elapsed: Duration, fraction: f64) -> Option<f64> {
    if !(0.01..=1.0).contains(&fraction) {
        return None;
    }
    Some(elapsed.as_secs_f64() * (1.0 - fraction) / fraction)
}

/// Seconds left for the job: the current technique's ETA plus, for each technique not yet
/// started, the mean measured duration of the finished ones (or, before any finished, the
/// current one's projected total).
pub fn job_eta(
    current_eta: Option<f64>,
    current_elapsed: Duration,
    finished_seconds: &[f64],
    not_started: usize,
) -> Option<f64> {
    let current_eta = current_eta?;
    let per_technique = if finished_seconds.is_empty() {
        current_elapsed.as_secs_f64() + current_eta
    } else {
        finished_seconds.iter().sum::<f64>() / finished_seconds.len() as f64
    };
    Some(current_eta + per_technique * not_started as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_admits_new_stages_the_end_and_each_interval() {
        let mut t = Throttle::new(Duration::from_millis(500));
        let ms = Duration::from_millis;
        assert!(t.admit(ms(0), "prepare", 0.0));
        assert!(!t.admit(ms(100), "prepare", 0.1));
        assert!(t.admit(ms(150), "layer 1/4", 0.2));
        assert!(!t.admit(ms(600), "layer 1/4", 0.3));
        assert!(t.admit(ms(650), "layer 1/4", 0.4));
        assert!(t.admit(ms(700), "layer 1/4", 1.0));
    }

    #[test]
    fn etas_come_from_measured_rates() {
        assert_eq!(technique_eta(Duration::from_secs(2), 0.0), None);
        assert_eq!(technique_eta(Duration::from_secs(2), 0.5), Some(2.0));
        assert_eq!(technique_eta(Duration::from_secs(3), 0.75), Some(1.0));
        // Before any technique finished: the current one's projected total per technique.
        assert_eq!(
            job_eta(Some(2.0), Duration::from_secs(2), &[], 2),
            Some(2.0 + 4.0 * 2.0)
        );
        // After: the mean of the finished ones.
        assert_eq!(
            job_eta(Some(1.0), Duration::from_secs(1), &[3.0, 5.0], 1),
            Some(5.0)
        );
        assert_eq!(job_eta(None, Duration::ZERO, &[1.0], 1), None);
    }
}
