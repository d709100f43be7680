//! Template values: the dynamically typed data a Go template manipulates (bools, ints,
//! float64, strings, string maps, lists, query samples, times, durations), with Go's truth
//! rules, `%v` printing and type names for error messages. No evaluation logic here.

use std::collections::BTreeMap;
use std::rc::Rc;

use super::format::format_float_v;

/// One sample returned by the `query` template function.
#[derive(Clone, Debug, PartialEq)]
pub struct QuerySample {
    /// Labels including `__name__` when present.
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A template value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// Text marked safe (`safeHtml`); prints as-is.
    Html(String),
    /// A string-keyed map (labels, `args`); missing keys read as the zero value `""`.
    Map(BTreeMap<String, Value>),
    List(Vec<Value>),
    Sample(Rc<QuerySample>),
    /// A struct with named fields (the alert data `.Labels`, `.Value`, …).
    Struct(&'static str, Vec<(String, Value)>),
    /// A point in time: Unix seconds and nanoseconds, printed in UTC like Go's `time.Time`.
    Time {
        secs: i64,
        nanos: u32,
    },
    /// A duration in nanoseconds, printed like Go's `time.Duration`.
    Duration(i64),
}

impl Value {
    /// Go's truth: false, 0, nil, and empty strings, maps and lists are false.
    pub fn truth(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) | Value::Html(s) => !s.is_empty(),
            Value::Map(m) => !m.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Duration(d) => *d != 0,
            Value::Sample(_) | Value::Struct(..) | Value::Time { .. } => true,
        }
    }

    /// Go's type name, for `%!d(string=x)` and error messages.
    pub fn go_type(&self) -> &'static str {
        match self {
            Value::Nil => "<nil>",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::Html(_) => "template.HTML",
            Value::Map(_) => "map[string]string",
            Value::List(_) => "template.queryResult",
            Value::Sample(_) => "*template.sample",
            Value::Struct(name, _) => name,
            Value::Time { .. } => "*time.Time",
            Value::Duration(_) => "*time.Duration",
        }
    }

    /// The `%v` rendering.
    pub fn to_go_string(&self) -> String {
        match self {
            Value::Nil => "<nil>".into(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => format_float_v(*f),
            Value::Str(s) | Value::Html(s) => s.clone(),
            Value::Map(m) => {
                let parts: Vec<String> = m
                    .iter()
                    .map(|(k, v)| format!("{k}:{}", v.to_go_string()))
                    .collect();
                format!("map[{}]", parts.join(" "))
            }
            Value::List(l) => {
                let parts: Vec<String> = l.iter().map(Value::to_go_string).collect();
                format!("[{}]", parts.join(" "))
            }
            Value::Sample(s) => {
                let parts: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}:{v}")).collect();
                format!("&{{map[{}] {}}}", parts.join(" "), format_float_v(s.value))
            }
            Value::Struct(_, fields) => {
                let parts: Vec<String> = fields.iter().map(|(_, v)| v.to_go_string()).collect();
                format!("{{{}}}", parts.join(" "))
            }
            Value::Time { secs, nanos } => go_time_string(*secs, *nanos),
            Value::Duration(ns) => go_duration_string(*ns),
        }
    }

    /// A string map built from label pairs.
    pub fn string_map<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Value {
        Value::Map(
            pairs
                .into_iter()
                .map(|(k, v)| (k.to_string(), Value::Str(v.to_string())))
                .collect(),
        )
    }
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

const SECS_PER_DAY: i64 = 86_400;
const NANOS_PER_SEC: i64 = 1_000_000_000;

/// Go's `time.Time.String()` in UTC: `2006-01-02 15:04:05.999999999 +0000 UTC`.
pub fn go_time_string(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(SECS_PER_DAY);
    let sod = secs.rem_euclid(SECS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    let mut s = format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    );
    if nanos > 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push_str(" +0000 UTC");
    s
}

/// Go's `time.Duration.String()`: `1h2m3.5s`, `1.5ms`, `0s`.
pub fn go_duration_string(ns: i64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let neg = ns < 0;
    let u = ns.unsigned_abs();
    let body = if u < NANOS_PER_SEC as u64 {
        let (div, unit) = if u < 1_000 {
            (1u64, "ns")
        } else if u < 1_000_000 {
            (1_000, "µs")
        } else {
            (1_000_000, "ms")
        };
        format!("{}{unit}", frac_string(u, div))
    } else {
        let total_secs = u / NANOS_PER_SEC as u64;
        let h = total_secs / 3600;
        let m = (total_secs / 60) % 60;
        let s_ns = u - (h * 3600 + m * 60) * NANOS_PER_SEC as u64;
        let secs = format!("{}s", frac_string(s_ns, NANOS_PER_SEC as u64));
        if h > 0 {
            format!("{h}h{m}m{secs}")
        } else if m > 0 {
            format!("{m}m{secs}")
        } else {
            secs
        }
    };
    if neg {
        format!("-{body}")
    } else {
        body
    }
}

fn frac_string(v: u64, div: u64) -> String {
    let int = v / div;
    let frac = v % div;
    if frac == 0 {
        return int.to_string();
    }
    let width = div.to_string().len() - 1;
    let f = format!("{frac:0width$}");
    format!("{int}.{}", f.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_time_and_duration_strings() {
        assert_eq!(go_time_string(0, 0), "1970-01-01 00:00:00 +0000 UTC");
        assert_eq!(
            go_time_string(1_435_065_584, 128_000_000),
            "2015-06-23 13:19:44.128 +0000 UTC"
        );
        assert_eq!(go_duration_string(0), "0s");
        assert_eq!(go_duration_string(3_723_500_000_000), "1h2m3.5s");
        assert_eq!(go_duration_string(1_500_000), "1.5ms");
        assert_eq!(go_duration_string(-60_000_000_000), "-1m0s");
    }

    #[test]
    fn truth_follows_go() {
        assert!(!Value::Str(String::new()).truth());
        assert!(Value::Float(0.1).truth());
        assert!(!Value::Int(0).truth());
        assert!(!Value::Map(BTreeMap::new()).truth());
    }
}
