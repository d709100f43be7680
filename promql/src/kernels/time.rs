//! Calendar kernels for `year`, `month`, `day_of_month`, `day_of_week`, `day_of_year`,
//! `days_in_month`, `hour` and `minute`: a sample value (Unix seconds) is truncated to
//! whole seconds as Go's `int64(v)` does and read as a UTC civil time (proleptic
//! Gregorian calendar). Pure arithmetic; this module never reads the clock or time zones.

const SECONDS_PER_DAY: i64 = 86_400;
const SECONDS_PER_HOUR: i64 = 3_600;
const SECONDS_PER_MINUTE: i64 = 60;
/// 1970-01-01 was a Thursday (Sunday = 0).
const EPOCH_WEEKDAY: i64 = 4;
/// Days in a 400-year Gregorian era.
const DAYS_PER_ERA: i64 = 146_097;
/// Days from 0000-03-01 to 1970-01-01.
const EPOCH_SHIFT_DAYS: i64 = 719_468;

/// A UTC civil time broken into the fields the date functions return.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CivilTime {
    pub year: i64,
    /// 1..=12
    pub month: u32,
    /// 1..=31
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    /// 0 = Sunday ..= 6 = Saturday
    pub weekday: u32,
    /// 1..=366
    pub day_of_year: u32,
}

/// Whether `year` is a Gregorian leap year.
pub fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// Days in `month` (1..=12) of `year`.
pub fn days_in_month_of(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Converts days since 1970-01-01 to (year, month, day) in the proleptic Gregorian
/// calendar, counting in eras of 400 years that start on March 1st.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + EPOCH_SHIFT_DAYS;
    let era = z.div_euclid(DAYS_PER_ERA);
    let day_of_era = z.rem_euclid(DAYS_PER_ERA); // [0, 146096]
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146_096) / 365;
    let day_of_year_from_march =
        day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year_from_march + 2) / 153; // 0 = March
    let day = (day_of_year_from_march - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Breaks Unix seconds into a UTC civil time.
pub fn civil_from_unix(secs: i64) -> CivilTime {
    let days = secs.div_euclid(SECONDS_PER_DAY);
    let secs_of_day = secs.rem_euclid(SECONDS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    let day_of_year = (1..month).map(|m| days_in_month_of(year, m)).sum::<u32>() + day;
    CivilTime {
        year,
        month,
        day,
        hour: (secs_of_day / SECONDS_PER_HOUR) as u32,
        minute: (secs_of_day % SECONDS_PER_HOUR / SECONDS_PER_MINUTE) as u32,
        second: (secs_of_day % SECONDS_PER_MINUTE) as u32,
        weekday: (days + EPOCH_WEEKDAY).rem_euclid(7) as u32,
        day_of_year,
    }
}

/// A sample value as Unix seconds, truncated toward zero like Go's `int64(v)`. NaN and
/// values outside the i64 range give `i64::MIN`, as Go does on amd64.
pub fn unix_seconds_from_value(v: f64) -> i64 {
    const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
    if !(-TWO_POW_63..TWO_POW_63).contains(&v) {
        return i64::MIN;
    }
    v as i64
}

/// The timestamp the date functions use without an argument: the evaluation time in
/// whole seconds (`ts_ms / 1000`, truncated).
pub fn unix_seconds_from_eval_ts(ts_ms: i64) -> i64 {
    ts_ms / super::MS_PER_SECOND
}

fn field(v: f64, f: impl Fn(&CivilTime) -> i64) -> f64 {
    f(&civil_from_unix(unix_seconds_from_value(v))) as f64
}

/// `year(v)`.
pub fn year(v: f64) -> f64 {
    field(v, |c| c.year)
}
/// `month(v)`: 1..12.
pub fn month(v: f64) -> f64 {
    field(v, |c| i64::from(c.month))
}
/// `day_of_month(v)`: 1..31.
pub fn day_of_month(v: f64) -> f64 {
    field(v, |c| i64::from(c.day))
}
/// `day_of_week(v)`: 0 (Sunday)..6.
pub fn day_of_week(v: f64) -> f64 {
    field(v, |c| i64::from(c.weekday))
}
/// `day_of_year(v)`: 1..366.
pub fn day_of_year(v: f64) -> f64 {
    field(v, |c| i64::from(c.day_of_year))
}
/// `days_in_month(v)`: 28..31.
pub fn days_in_month(v: f64) -> f64 {
    field(v, |c| i64::from(days_in_month_of(c.year, c.month)))
}
/// `hour(v)`: 0..23.
pub fn hour(v: f64) -> f64 {
    field(v, |c| i64::from(c.hour))
}
/// `minute(v)`: 0..59.
pub fn minute(v: f64) -> f64 {
    field(v, |c| i64::from(c.minute))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn functions_test_dates() {
        // functions.test "Tests for date functions".
        assert_eq!(year(0.0), 1970.0);
        assert_eq!(month(0.0), 1.0);
        assert_eq!(day_of_month(0.0), 1.0);
        assert_eq!(day_of_week(0.0), 4.0);
        assert_eq!(hour(0.0), 0.0);
        assert_eq!(minute(0.0), 0.0);
        // 2006-01-02 22:04:05 UTC (a Monday).
        let t = 1_136_239_445.0;
        assert_eq!(
            (
                year(t),
                month(t),
                day_of_month(t),
                hour(t),
                minute(t),
                day_of_week(t)
            ),
            (2006.0, 1.0, 2.0, 22.0, 4.0, 1.0)
        );
        assert_eq!(day_of_year(t), 2.0);
        // 2016-02-29 in a leap year, 2016-03-01.
        assert_eq!(
            month(1_456_704_000.0) + day_of_month(1_456_704_000.0) / 100.0,
            2.29
        );
        assert_eq!(
            month(1_456_790_400.0) + day_of_month(1_456_790_400.0) / 100.0,
            3.01
        );
        assert_eq!(day_of_year(1_483_191_420.0), 366.0);
        assert_eq!(day_of_year(1_672_493_820.0), 365.0);
        assert_eq!(days_in_month(1_454_284_800.0), 29.0);
        assert_eq!(days_in_month(1_485_907_200.0), 28.0);
        // Fractions truncate toward zero; negative times are before the epoch.
        assert_eq!(minute(59.9), 0.0);
        assert_eq!(year(-1.0), 1969.0);
        assert_eq!(day_of_week(-1.0), 3.0);
        assert_eq!(hour(-0.5), 0.0);
    }

    #[test]
    fn calendar_edges() {
        assert_eq!(civil_from_unix(951_782_400).month, 2); // 2000-02-29
        assert_eq!(civil_from_unix(951_782_400).day, 29);
        assert_eq!(civil_from_unix(4_107_542_400).year, 2100); // 2100-03-01
        assert!(!is_leap_year(2100) && is_leap_year(2000) && is_leap_year(2024));
        assert_eq!(days_in_month_of(2023, 12), 31);
        assert_eq!(days_in_month_of(2023, 4), 30);
        assert_eq!(unix_seconds_from_value(f64::NAN), i64::MIN);
        assert_eq!(unix_seconds_from_value(1e300), i64::MIN);
        assert_eq!(unix_seconds_from_value(-2.9), -2);
        assert_eq!(unix_seconds_from_eval_ts(1_999), 1);
        // The extreme value must not panic.
        let _ = civil_from_unix(i64::MIN);
        let _ = civil_from_unix(i64::MAX);
    }
}
