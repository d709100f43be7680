//! Deterministic dashboard-style data set for the HTTP API interop test and the query latency
//! example: counters (with one reset), gauges, classic histograms, a metric that stops midway,
//! written as one OpenMetrics text file that both `promtool tsdb create-blocks-from
//! openmetrics` and `vigil tsdb create-blocks-from openmetrics` read. Sample times sit 3 s
//! off the 15 s grid so whole-minute evaluation times never coincide with a sample: at such
//! coincidences Prometheus 2.42 (left-closed ranges and lookback) and 3.x (left-open) differ.
//! Test support only: it must never read the wall clock itself, so two calls with the same
//! arguments give the same bytes.
#![allow(dead_code)]

use std::fmt::Write as _;

/// Scrape interval of the generated data, seconds.
pub const STEP_S: i64 = 15;
/// Offset of every sample from the 15 s grid, seconds.
pub const SAMPLE_OFFSET_S: i64 = 3;
/// Histogram bucket bounds; none is an integer so that 2.42 and 3.x (which normalises `le`
/// to a float form, `1` → `1.0`) spell them the same.
pub const BUCKETS: [&str; 9] = [
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "2.5", "+Inf",
];

/// What to generate.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// Instances per job; the series count grows linearly with it.
    pub instances: usize,
    /// First sample time, Unix seconds, a multiple of [`STEP_S`] (the offset is added).
    pub start_s: i64,
    /// Number of samples per series.
    pub points: usize,
}

impl Shape {
    /// The data's first sample time, Unix seconds.
    pub fn first_s(&self) -> i64 {
        self.start_s + SAMPLE_OFFSET_S
    }
    /// The data's last sample time, Unix seconds.
    pub fn last_s(&self) -> i64 {
        self.first_s() + (self.points as i64 - 1) * STEP_S
    }
    /// Series in the file.
    pub fn series_count(&self) -> usize {
        let i = self.instances;
        // http_requests_total, request_duration (buckets + sum + count), memory, cpu,
        // temperature, up, batch_last_success, queue_depth.
        JOBS.len() * i * METHODS.len() * CODES.len()
            + JOBS.len() * i * (BUCKETS.len() + 2)
            + JOBS.len() * i
            + JOBS.len() * i * CPUS * MODES.len()
            + SENSORS
            + JOBS.len() * i
            + 1
            + QUEUES
    }
}

const JOBS: [&str; 2] = ["api", "web"];
const METHODS: [&str; 2] = ["GET", "POST"];
const CODES: [&str; 3] = ["200", "404", "500"];
const CPUS: usize = 2;
const MODES: [&str; 3] = ["idle", "system", "user"];
const SENSORS: usize = 6;
const QUEUES: usize = 8;

/// A small deterministic hash to vary values per series and time.
fn mix(a: u64, b: u64) -> u64 {
    let mut x = a
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(b.wrapping_mul(0xC2B2_AE3D_27D4_EB4F));
    x ^= x >> 31;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^ (x >> 29)
}

/// A value in [0, 1) from a hash.
fn unit(a: u64, b: u64) -> f64 {
    (mix(a, b) >> 11) as f64 / (1u64 << 53) as f64
}

fn times(shape: &Shape) -> impl Iterator<Item = (usize, i64)> + '_ {
    (0..shape.points).map(move |k| (k, shape.first_s() + k as i64 * STEP_S))
}

fn instance(j: usize, i: usize) -> String {
    format!("{}-{i}:9100", JOBS[j])
}

/// The OpenMetrics text of the whole data set (ends with `# EOF`).
pub fn openmetrics(shape: &Shape) -> String {
    let mut s = String::with_capacity(shape.series_count() * shape.points * 80);
    let n = shape.instances;

    s.push_str("# HELP http_requests Requests served.\n# TYPE http_requests counter\n");
    let mut id = 0u64;
    for (j, job) in JOBS.iter().enumerate() {
        for i in 0..n {
            let inst = instance(j, i);
            for method in METHODS {
                for (c, code) in CODES.iter().enumerate() {
                    id += 1;
                    let base_rate = [20.0, 0.7, 0.15][c] * (1.0 + unit(id, 0));
                    let mut v = 0.0f64;
                    for (k, t) in times(shape) {
                        // One counter reset in the middle of the first series of every job.
                        if i == 0 && method == "GET" && c == 0 && k == shape.points / 2 {
                            v = 0.0;
                        }
                        v += (base_rate * STEP_S as f64 * (0.5 + unit(id, k as u64))).round();
                        let _ = writeln!(
                            s,
                            "http_requests_total{{code=\"{code}\",instance=\"{inst}\",job=\"{job}\",method=\"{method}\"}} {v} {t}"
                        );
                    }
                }
            }
        }
    }

    s.push_str("# HELP request_duration_seconds Request latency.\n# TYPE request_duration_seconds histogram\n");
    for (j, job) in JOBS.iter().enumerate() {
        for i in 0..n {
            id += 1;
            let inst = instance(j, i);
            let labels = format!("instance=\"{inst}\",job=\"{job}\"");
            let mut counts = [0.0f64; BUCKETS.len()];
            let mut sum = 0.0f64;
            let mut rows: Vec<String> = Vec::with_capacity(shape.points);
            for (k, t) in times(shape) {
                let requests = 10 + (mix(id, k as u64) % 40);
                for r in 0..requests {
                    let x = unit(id ^ 0x5555, (k as u64) << 8 | r);
                    // Latency skewed towards small values.
                    let lat = 0.002 + x * x * x * (1.5 + j as f64);
                    sum += lat;
                    for (b, bound) in BUCKETS.iter().enumerate() {
                        let le: f64 = bound.parse().unwrap_or(f64::INFINITY);
                        if lat <= le {
                            counts[b] += 1.0;
                        }
                    }
                }
                let mut row = String::new();
                for (b, bound) in BUCKETS.iter().enumerate() {
                    let _ = writeln!(
                        row,
                        "request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {} {t}",
                        counts[b]
                    );
                }
                let _ = writeln!(row, "request_duration_seconds_sum{{{labels}}} {sum} {t}");
                let _ = writeln!(
                    row,
                    "request_duration_seconds_count{{{labels}}} {} {t}",
                    counts[BUCKETS.len() - 1]
                );
                rows.push(row);
            }
            for row in rows {
                s.push_str(&row);
            }
        }
    }

    s.push_str("# HELP memory_usage_bytes Resident memory.\n# TYPE memory_usage_bytes gauge\n# UNIT memory_usage_bytes bytes\n");
    for (j, job) in JOBS.iter().enumerate() {
        for i in 0..n {
            id += 1;
            let inst = instance(j, i);
            let base = 2.0e8 + 1.0e8 * unit(id, 1);
            for (k, t) in times(shape) {
                // A slow leak plus noise: predict_linear has something to extrapolate.
                let v = (base + 4.0e4 * k as f64 + 1.0e6 * unit(id, k as u64)).round();
                let _ = writeln!(
                    s,
                    "memory_usage_bytes{{instance=\"{inst}\",job=\"{job}\"}} {v} {t}"
                );
            }
        }
    }

    s.push_str("# HELP node_cpu_seconds CPU time.\n# TYPE node_cpu_seconds counter\n");
    for (j, job) in JOBS.iter().enumerate() {
        for i in 0..n {
            let inst = instance(j, i);
            for cpu in 0..CPUS {
                for (m, mode) in MODES.iter().enumerate() {
                    id += 1;
                    let share = [0.7, 0.1, 0.2][m];
                    let mut v = 1000.0 * unit(id, 2);
                    for (k, t) in times(shape) {
                        v += share * STEP_S as f64 * (0.8 + 0.4 * unit(id, k as u64));
                        let v = (v * 100.0).round() / 100.0;
                        let _ = writeln!(
                            s,
                            "node_cpu_seconds_total{{cpu=\"{cpu}\",instance=\"{inst}\",job=\"{job}\",mode=\"{mode}\"}} {v} {t}"
                        );
                    }
                }
            }
        }
    }

    s.push_str("# HELP temperature_celsius Sensor reading.\n# TYPE temperature_celsius gauge\n");
    for sensor in 0..SENSORS {
        id += 1;
        for (k, t) in times(shape) {
            let phase = k as f64 / 40.0 + sensor as f64;
            let v = (20.0 + 5.0 * phase.sin() + unit(id, k as u64)) * 1000.0;
            let v = v.round() / 1000.0;
            let room = if sensor % 2 == 0 { "lab" } else { "office" };
            let _ = writeln!(
                s,
                "temperature_celsius{{room=\"{room}\",sensor=\"s{sensor}\"}} {v} {t}"
            );
        }
    }

    s.push_str("# HELP up Target health.\n# TYPE up gauge\n");
    for (j, job) in JOBS.iter().enumerate() {
        for i in 0..n {
            id += 1;
            let inst = instance(j, i);
            for (k, t) in times(shape) {
                // The last instance of each job is down for a stretch.
                let down = i + 1 == n && (shape.points / 3..shape.points / 3 + 20).contains(&k);
                let v = if down { 0 } else { 1 };
                let _ = writeln!(s, "up{{instance=\"{inst}\",job=\"{job}\"}} {v} {t}");
            }
        }
    }

    s.push_str("# HELP batch_last_success_timestamp_seconds Last good run.\n# TYPE batch_last_success_timestamp_seconds gauge\n");
    for (k, t) in times(shape) {
        // Stops reporting after the first half: absent() and lookback have work to do.
        if k < shape.points / 2 {
            let v = t - (t % 600);
            let _ = writeln!(
                s,
                "batch_last_success_timestamp_seconds{{job=\"batch\"}} {v} {t}"
            );
        }
    }

    s.push_str("# HELP queue_depth Items waiting.\n# TYPE queue_depth gauge\n");
    for q in 0..QUEUES {
        id += 1;
        for (k, t) in times(shape) {
            let v = mix(id, k as u64 / 4) % (10 + 10 * q as u64);
            let _ = writeln!(
                s,
                "queue_depth{{queue=\"q{q}\",shard=\"{}\"}} {v} {t}",
                q % 3
            );
        }
    }

    s.push_str("# EOF\n");
    s
}
