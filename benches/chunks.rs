//! Criterion benchmarks of the XOR chunk codec on 120-sample chunks (Prometheus' chunk size)
//! of realistic counter and gauge series: encode and decode throughput per sample, with the
//! encoded size in bytes per sample shown in the group name.
//!
//! Benchmarks only measure; they must never assert on timings.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use vigil_storage::chunkenc::{XorEncoder, XorIterator};

/// Samples per chunk, as Prometheus cuts head chunks.
const SAMPLES_PER_CHUNK: usize = 120;
/// Scrape interval in milliseconds.
const SCRAPE_INTERVAL_MS: i64 = 15_000;
/// A fixed start time (2023-11-14T22:13:20Z).
const START_MS: i64 = 1_700_000_000_000;

/// Deterministic xorshift so runs are comparable without a rand dependency.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Scrape timestamps: mostly on the interval (Prometheus aligns timestamps within a small
/// tolerance), with a few milliseconds of jitter on one scrape in ten.
fn timestamps(rng: &mut XorShift) -> Vec<i64> {
    (0..SAMPLES_PER_CHUNK as i64)
        .map(|i| {
            let jitter = if rng.next() % 10 == 0 {
                (rng.next() % 5) as i64
            } else {
                0
            };
            START_MS + i * SCRAPE_INTERVAL_MS + jitter
        })
        .collect()
}

/// A request counter: integer increments with a varying rate.
fn counter_series() -> Vec<(i64, f64)> {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut v = 1_234_567.0;
    timestamps(&mut rng)
        .into_iter()
        .map(|t| {
            v += (rng.next() % 300) as f64;
            (t, v)
        })
        .collect()
}

/// A gauge: memory in use, fluctuating bytes (large values, noisy low bits).
fn gauge_series() -> Vec<(i64, f64)> {
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    let mut v = 1.5e9;
    timestamps(&mut rng)
        .into_iter()
        .map(|t| {
            v += (rng.unit() - 0.5) * 4.0e6;
            (t, v.round())
        })
        .collect()
}

/// A gauge with fractional values (e.g. a CPU ratio), the hardest case for XOR.
fn ratio_series() -> Vec<(i64, f64)> {
    let mut rng = XorShift(0x1234_5678_9abc_def1);
    timestamps(&mut rng)
        .into_iter()
        .map(|t| (t, rng.unit()))
        .collect()
}

fn encode(samples: &[(i64, f64)]) -> XorEncoder {
    let mut e = XorEncoder::new();
    for &(t, v) in samples {
        e.append(t, v);
    }
    e
}

fn bench_xor(c: &mut Criterion) {
    for (name, samples) in [
        ("counter", counter_series()),
        ("gauge", gauge_series()),
        ("ratio", ratio_series()),
    ] {
        let bytes = encode(&samples).bytes().to_vec();
        let per_sample = bytes.len() as f64 / samples.len() as f64;
        let mut g = c.benchmark_group(format!("xor/{name} ({per_sample:.2} bytes/sample)"));
        g.throughput(Throughput::Elements(samples.len() as u64));
        g.bench_function("encode_120", |b| {
            b.iter(|| black_box(encode(black_box(&samples))).num_samples())
        });
        g.bench_function("decode_120", |b| {
            b.iter(|| {
                let mut it = XorIterator::new(black_box(&bytes));
                let mut sum = 0.0;
                let mut last = 0;
                while it.next() {
                    let (t, v) = it.at();
                    sum += v;
                    last = t;
                }
                black_box((sum, last))
            })
        });
        g.finish();
    }
}

criterion_group!(benches, bench_xor);
criterion_main!(benches);
