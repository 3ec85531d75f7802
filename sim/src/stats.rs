//! Figures from samples: percentiles of latencies and launch rates from
//! event times.
//!
//! The frameworks record raw samples (one latency and one TASK_RUNNING
//! time per task); the report turns them into figures here, so the
//! arithmetic is tested without a cluster.

/// Errors of this module (none of its functions can fail today; the enum
/// keeps the one-enum-per-module rule and room for input checks).
#[derive(Debug, thiserror::Error)]
pub enum StatsError {}

/// The `q`-quantile (0 ≤ q ≤ 1) of samples by the nearest-rank method, or
/// `None` when there are none. `samples` need not be sorted.
pub fn percentile(samples: &[f64], q: f64) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    Some(percentile_sorted(&sorted, q))
}

/// As [`percentile`] on samples already sorted ascending (not empty).
pub fn percentile_sorted(sorted: &[f64], q: f64) -> f64 {
    let q = q.clamp(0.0, 1.0);
    // Nearest rank: the smallest sample with at least q of all at or below it.
    let rank = (q * sorted.len() as f64).ceil() as usize;
    let index = rank.saturating_sub(1).min(sorted.len() - 1);
    sorted[index]
}

/// Events per second from the start of a run (time 0) to the last event:
/// the rate sustained over the whole run. `times` are seconds since the
/// start.
pub fn sustained_rate(times: &[f64]) -> Option<f64> {
    let last = times
        .iter()
        .copied()
        .fold(None, |m: Option<f64>, t| Some(m.map_or(t, |m| m.max(t))))?;
    if last <= 0.0 {
        return None;
    }
    Some(times.len() as f64 / last)
}

/// The most events in any window of `window` seconds, divided by the
/// window: the peak rate.
pub fn peak_rate(times: &[f64], window: f64) -> Option<f64> {
    if times.is_empty() || window <= 0.0 {
        return None;
    }
    let mut sorted = times.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mut best = 0usize;
    let mut start = 0usize;
    for end in 0..sorted.len() {
        while sorted[end] - sorted[start] >= window {
            start += 1;
        }
        best = best.max(end - start + 1);
    }
    Some(best as f64 / window)
}

/// Mean of samples, or `None` when there are none.
pub fn mean(samples: &[f64]) -> Option<f64> {
    if samples.is_empty() {
        None
    } else {
        Some(samples.iter().sum::<f64>() / samples.len() as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let samples: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        assert_eq!(percentile(&samples, 0.5), Some(50.0));
        assert_eq!(percentile(&samples, 0.99), Some(99.0));
        assert_eq!(percentile(&samples, 1.0), Some(100.0));
        assert_eq!(percentile(&samples, 0.0), Some(1.0));
        assert_eq!(percentile(&[7.0], 0.99), Some(7.0));
        assert_eq!(percentile(&[], 0.5), None);
        // Ten samples: p99 is the largest, p50 the fifth.
        let ten: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentile(&ten, 0.99), Some(10.0));
        assert_eq!(percentile(&ten, 0.5), Some(5.0));
    }

    #[test]
    fn sustained_rate_spans_the_whole_run() {
        // 10 events by t = 2 s: 5 per second, however they bunch up.
        let times = [0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 2.0];
        assert_eq!(sustained_rate(&times), Some(5.0));
        assert_eq!(sustained_rate(&[]), None);
        assert_eq!(sustained_rate(&[0.0]), None);
    }

    #[test]
    fn peak_rate_finds_the_busiest_window() {
        let times = [0.1, 0.2, 0.3, 0.4, 2.0, 5.0];
        assert_eq!(peak_rate(&times, 1.0), Some(4.0));
        assert_eq!(peak_rate(&times, 0.5), Some(8.0));
        // Events exactly a window apart fall in different windows.
        assert_eq!(peak_rate(&[0.0, 1.0, 2.0], 1.0), Some(1.0));
        assert_eq!(peak_rate(&[], 1.0), None);
    }

    #[test]
    fn mean_of_nothing_is_none() {
        assert_eq!(mean(&[]), None);
        assert_eq!(mean(&[1.0, 2.0, 3.0]), Some(2.0));
    }
}
