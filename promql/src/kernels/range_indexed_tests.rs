//! Differential tests of [`range::IndexedRate`] (resets found once per series, factors
//! reused while the window shape repeats) against [`range::extrapolated_rate`] on each window alone, and of both against
//! a plain transcription of Prometheus' `extrapolatedRate` (no shortcuts): the results
//! must be bit-identical on any input, including resets, NaN, ±Inf and negative values.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;

use super::range::{extrapolated_rate, CounterResets, IndexedRate};
use super::{duration_seconds, Point, Window};

/// Prometheus' extrapolated rate without start timestamps, step by step as written there.
fn reference_rate(
    points: &[Point],
    start: i64,
    end: i64,
    counter: bool,
    rate: bool,
) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let (first_t, first_v) = points[0];
    let (last_t, last_v) = points[points.len() - 1];
    let mut result = last_v - first_v;
    if counter {
        for pair in points.windows(2) {
            if pair[1].1 < pair[0].1 {
                result += pair[0].1;
            }
        }
    }
    let mut duration_to_start = (first_t - start) as f64 / 1000.0;
    let mut duration_to_end = (end - last_t) as f64 / 1000.0;
    let sampled_interval = (last_t - first_t) as f64 / 1000.0;
    let average_spacing = sampled_interval / (points.len() - 1) as f64;
    let threshold = average_spacing * 1.1;
    if duration_to_start >= threshold {
        duration_to_start = average_spacing / 2.0;
    }
    if counter {
        let mut duration_to_zero = duration_to_start;
        if result > 0.0 && first_v >= 0.0 {
            duration_to_zero = sampled_interval * (first_v / result);
        }
        if duration_to_zero < duration_to_start {
            duration_to_start = duration_to_zero;
        }
    }
    if duration_to_end >= threshold {
        duration_to_end = average_spacing / 2.0;
    }
    let mut factor = (sampled_interval + duration_to_start + duration_to_end) / sampled_interval;
    if rate {
        let range_ms = end - start;
        factor /= (range_ms / 1000) as f64 + ((range_ms % 1000) * 1_000_000) as f64 / 1e9;
    }
    Some(result * factor)
}

/// Compares both kernels on every window `(end - range, end]` of `points`, ends every
/// `step_ms` from the first timestamp.
fn check_all_windows(points: &[Point], range_ms: i64, step_ms: i64) {
    let mut resets = CounterResets::new();
    resets.rebuild(points);
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return;
    };
    let mut end = first.0 - step_ms;
    let mut indexed = [
        IndexedRate::new(points, &resets, true, true),
        IndexedRate::new(points, &resets, true, false),
        IndexedRate::new(points, &resets, false, false),
    ];
    while end <= last.0 + range_ms {
        let start = end - range_ms;
        let lo = points.partition_point(|p| p.0 <= start);
        let hi = points.partition_point(|p| p.0 <= end);
        for (k, (is_counter, is_rate)) in [(true, true), (true, false), (false, false)]
            .into_iter()
            .enumerate()
        {
            let want = extrapolated_rate(
                &Window::new(&points[lo..hi], start, end),
                is_counter,
                is_rate,
            );
            let got = indexed[k].window(lo, hi, start, end);
            assert_eq!(
                want.map(f64::to_bits),
                got.map(f64::to_bits),
                "window ({start}, {end}] counter={is_counter} rate={is_rate}: {want:?} vs {got:?}"
            );
            let reference = reference_rate(&points[lo..hi], start, end, is_counter, is_rate);
            assert_eq!(
                want.map(f64::to_bits),
                reference.map(f64::to_bits),
                "window ({start}, {end}] counter={is_counter} rate={is_rate}: {want:?} vs reference {reference:?}"
            );
        }
        end += step_ms;
    }
}

/// A value that is usually an ordinary counter increment and sometimes a reset, a huge
/// or tiny number, NaN or an infinity.
fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        8 => 0.0..1000.0f64,
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => -1e300..1e300f64,
        1 => 1e-300..1e-290f64,
    ]
}

proptest! {
    #[test]
    fn indexed_rate_is_bit_identical(
        gaps in prop::collection::vec(1i64..40_000, 1..120),
        values in prop::collection::vec(value(), 120),
        jumps in prop::collection::vec(prop::bool::weighted(0.7), 120),
        range_ms in 1i64..400_000,
        step_ms in 1_000i64..60_000,
    ) {
        // Mostly increasing (a running sum), with resets where `jumps` is false.
        let mut t = 0;
        let mut acc = 0.0;
        let points: Vec<Point> = gaps
            .iter()
            .enumerate()
            .map(|(i, g)| {
                t += g;
                acc = if jumps[i] { acc + values[i] } else { values[i] };
                (t, acc)
            })
            .collect();
        check_all_windows(&points, range_ms, step_ms);
    }
}

#[test]
fn duration_seconds_without_remainder_is_exact() {
    for ms in [
        0,
        1_000,
        -1_000,
        300_000,
        86_400_000,
        i64::MAX / 1000 * 1000,
    ] {
        assert_eq!(
            duration_seconds(ms).to_bits(),
            ((ms / 1000) as f64 + 0.0).to_bits()
        );
    }
}

#[test]
fn zero_point_limit_still_applies_to_small_counters() {
    // A counter starting near zero: the extrapolation stops at its zero point.
    let points: Vec<Point> = [1.0, 11.0, 21.0, 31.0]
        .iter()
        .enumerate()
        .map(|(i, v)| (10_000 + i as i64 * 15_000, *v))
        .collect();
    let (start, end) = (0, 60_000);
    let got = extrapolated_rate(&Window::new(&points, start, end), true, false);
    assert_eq!(got, reference_rate(&points, start, end, true, false));
    // Without the limit it would extrapolate 10s back to the range start; with it only
    // 1.5s (to where the counter was 0); 5s forward to the range end.
    assert_eq!(got, Some(30.0 * ((45.0 + 1.5 + 5.0) / 45.0)));
    check_all_windows(&points, 60_000, 5_000);
    // Two samples, the first value equal to the increase: the zero point (10s back) is
    // nearer than the range start (10.5s back, still within 1.1 × the spacing).
    let two = [(10_000, 10.0), (20_000, 20.0)];
    let got = extrapolated_rate(&Window::new(&two, -500, 20_000), true, false);
    assert_eq!(got, Some(10.0 * ((10.0 + 10.0 + 0.0) / 10.0)));
    assert_eq!(got, reference_rate(&two, -500, 20_000, true, false));
}

#[test]
fn resets_counted_only_inside_the_window() {
    // 10 20 5 15 3 8: resets after index 1 (20 → 5) and 3 (15 → 3).
    let points: Vec<Point> = [10.0, 20.0, 5.0, 15.0, 3.0, 8.0]
        .iter()
        .enumerate()
        .map(|(i, v)| (i as i64 * 1000, *v))
        .collect();
    let mut resets = CounterResets::new();
    resets.rebuild(&points);
    assert_eq!(resets.len(), 2);
    // The window 2..6 (5 15 3 8) holds only the second reset.
    assert_eq!(resets.add_within(2, 6, 0.0), 15.0);
    // The window 1..3 (20 5) holds the first; 0..2 (10 20) none.
    assert_eq!(resets.add_within(1, 3, 0.0), 20.0);
    assert_eq!(resets.add_within(0, 2, 0.0), 0.0);
    assert_eq!(resets.add_within(0, 6, 1.0), 36.0);
    resets.rebuild(&points[..2]);
    assert!(resets.is_empty());
    check_all_windows(&points, 2500, 500);
}

proptest! {
    #[test]
    fn regular_scrapes_match_with_repeated_shapes(
        scrape_s in 1i64..60,
        phase_ms in 0i64..1_000,
        values in prop::collection::vec(value(), 2..200),
        jumps in prop::collection::vec(prop::bool::weighted(0.9), 200),
        range_scrapes in 1i64..30,
        step_scrapes in 1i64..4,
        missed in prop::collection::vec(prop::bool::weighted(0.05), 200),
    ) {
        // Scrapes on a fixed interval (a few missed): consecutive windows mostly have the
        // same shape, so the reused factor is exercised, including across resets and
        // across windows where the zero-point limit applies.
        let scrape_ms = scrape_s * 1000;
        let mut acc = 0.0;
        let points: Vec<Point> = values
            .iter()
            .enumerate()
            .filter(|(i, _)| !missed[*i])
            .map(|(i, v)| {
                acc = if jumps[i] { acc + v } else { *v };
                (phase_ms + i as i64 * scrape_ms, acc)
            })
            .collect();
        check_all_windows(&points, range_scrapes * scrape_ms, step_scrapes * scrape_ms);
    }
}
