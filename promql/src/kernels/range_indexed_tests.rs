//! Differential tests of [`range::extrapolated_rate_indexed`] (resets found once per
//! series) against [`range::extrapolated_rate`] on each window alone: the results must
//! be bit-identical on any input, including resets, NaN, ±Inf and negative values.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;

use super::range::{extrapolated_rate, extrapolated_rate_indexed, CounterResets};
use super::{Point, Window};

/// Compares both kernels on every window `(end - range, end]` of `points`, ends every
/// `step_ms` from the first timestamp.
fn check_all_windows(points: &[Point], range_ms: i64, step_ms: i64) {
    let mut resets = CounterResets::new();
    resets.rebuild(points);
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return;
    };
    let mut end = first.0 - step_ms;
    while end <= last.0 + range_ms {
        let start = end - range_ms;
        let lo = points.partition_point(|p| p.0 <= start);
        let hi = points.partition_point(|p| p.0 <= end);
        for (is_counter, is_rate) in [(true, true), (true, false), (false, false)] {
            let want = extrapolated_rate(
                &Window::new(&points[lo..hi], start, end),
                is_counter,
                is_rate,
            );
            let got =
                extrapolated_rate_indexed(points, lo, hi, &resets, start, end, is_counter, is_rate);
            assert_eq!(
                want.map(f64::to_bits),
                got.map(f64::to_bits),
                "window ({start}, {end}] counter={is_counter} rate={is_rate}: {want:?} vs {got:?}"
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
