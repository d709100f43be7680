//! Restoring alert `for` state after a restart from the `ALERTS_FOR_STATE` series
//! (Prometheus `Group.RestoreForState`): for each pending/firing alert of a rule whose `for`
//! is at least the grace period, the last sample within the outage tolerance gives the old
//! `activeAt`, shifted by the outage or clamped so the alert fires no sooner than
//! `grace` after the restart. Reads storage only; never writes samples.

use vigil_storage::labels::METRIC_NAME;
use vigil_storage::{MatchType, Matcher, Queryable};

use super::alert::{AlertState, ALERTNAME_LABEL, ALERTS_FOR_STATE_METRIC};
use super::eval::STALE_NAN_BITS;
use super::group::{Group, RuleKind};

/// Prometheus' default `--rules.alert.for-grace-period` (10m).
pub const DEFAULT_FOR_GRACE_PERIOD_MS: i64 = 10 * 60 * 1000;
/// Prometheus' default `--rules.alert.for-outage-tolerance` (1h).
pub const DEFAULT_FOR_OUTAGE_TOLERANCE_MS: i64 = 60 * 60 * 1000;

/// Restoration settings.
#[derive(Clone, Copy, Debug)]
pub struct RestoreOpts {
    pub grace_ms: i64,
    pub outage_tolerance_ms: i64,
}

impl Default for RestoreOpts {
    fn default() -> Self {
        RestoreOpts {
            grace_ms: DEFAULT_FOR_GRACE_PERIOD_MS,
            outage_tolerance_ms: DEFAULT_FOR_OUTAGE_TOLERANCE_MS,
        }
    }
}

/// The new `activeAt` of an alert whose state was saved at `down_at_ms` with `activeAt`
/// `old_active_ms`, restored at `now_ms` for a rule with `for_ms`.
pub fn restored_active_at(
    now_ms: i64,
    down_at_ms: i64,
    old_active_ms: i64,
    for_ms: i64,
    grace_ms: i64,
) -> i64 {
    let remaining = for_ms - (down_at_ms - old_active_ms);
    if remaining <= 0 {
        old_active_ms
    } else if remaining < grace_ms {
        now_ms + grace_ms - for_ms
    } else {
        old_active_ms + (now_ms - down_at_ms)
    }
}

/// Restores `for` state of every alerting rule of `group` at `now_ms` and marks the rules
/// restored. Storage errors leave the affected rule unrestored-but-marked (as Prometheus
/// does) and are returned for logging.
pub fn restore_for_state(
    group: &mut Group,
    store: &dyn Queryable,
    now_ms: i64,
    opts: RestoreOpts,
) -> Vec<String> {
    let mut errors = Vec::new();
    for rule in &mut group.rules {
        let RuleKind::Alerting(a) = &mut rule.kind else {
            continue;
        };
        if a.for_ms < opts.grace_ms || a.active_alerts().next().is_none() {
            a.restored = true;
            continue;
        }
        let mut matchers = Vec::new();
        let mut push = |name: &str, value: &str| match Matcher::new(MatchType::Equal, name, value) {
            Ok(m) => matchers.push(m),
            Err(e) => errors.push(format!("restore {}: {e}", a.name)),
        };
        push(METRIC_NAME, ALERTS_FOR_STATE_METRIC);
        push(ALERTNAME_LABEL, &a.name);
        for (k, v) in &a.labels {
            if !v.contains("{{") {
                push(k, v);
            }
        }
        let series = store
            .querier(now_ms - opts.outage_tolerance_ms, now_ms)
            .and_then(|q| q.select(&matchers));
        let series = match series {
            Ok(s) => s,
            Err(e) => {
                errors.push(format!("restore {}: {e}", a.name));
                a.restored = true;
                continue;
            }
        };
        for alert in a.active.values_mut() {
            if alert.state == AlertState::Inactive {
                continue;
            }
            let Some(s) = series
                .iter()
                .find(|s| s.labels.without(|n| n == METRIC_NAME) == alert.labels)
            else {
                continue;
            };
            let samples = match s.samples() {
                Ok(x) => x,
                Err(e) => {
                    errors.push(format!("restore {}: {e}", a.name));
                    continue;
                }
            };
            let Some(last) = samples.last() else { continue };
            if last.v.to_bits() == STALE_NAN_BITS {
                continue;
            }
            let old_active_ms = (last.v as i64).saturating_mul(1000);
            let down_at_ms = last.t.div_euclid(1000) * 1000;
            alert.active_at_ms =
                restored_active_at(now_ms, down_at_ms, old_active_ms, a.for_ms, opts.grace_ms);
        }
        a.restored = true;
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    #[test]
    fn restore_cases() {
        let grace = 10 * MIN;
        // Was firing (pending 30m of a 20m for): keeps the old activeAt.
        assert_eq!(
            restored_active_at(100 * MIN, 60 * MIN, 30 * MIN, 20 * MIN, grace),
            30 * MIN
        );
        // 5m remaining < grace: fires grace after the restart.
        assert_eq!(
            restored_active_at(100 * MIN, 60 * MIN, 45 * MIN, 20 * MIN, grace),
            100 * MIN + grace - 20 * MIN
        );
        // 50m remaining: shifted by the 40m outage.
        assert_eq!(
            restored_active_at(100 * MIN, 60 * MIN, 50 * MIN, 60 * MIN, grace),
            90 * MIN
        );
    }
}
