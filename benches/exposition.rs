//! Parse throughput (samples/s and MB/s) of a generated node_exporter-like page, about
//! 2000 samples, in the text 0.0.4 and OpenMetrics formats, through the streaming
//! `parse_with` hot path and the owned `parse`. Benchmarks only; never asserts on time.

use std::fmt::Write as _;
use std::hint::black_box;
use std::ops::ControlFlow;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use vigil::exposition::{parse, parse_with, Entry, Format};

const CPUS: usize = 16;
const CPU_MODES: [&str; 8] = [
    "idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user",
];
const DEVICES: [&str; 8] = [
    "nvme0n1", "nvme1n1", "sda", "sdb", "dm-0", "dm-1", "loop0", "loop1",
];
const INTERFACES: [&str; 6] = ["eth0", "eth1", "lo", "docker0", "wlan0", "bond0"];
const BUCKETS: [&str; 11] = [
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10",
];
const HISTOGRAMS: usize = 20;
/// Filesystem gauges, sized so the page has about 2000 samples.
const FILESYSTEMS: usize = 464;

/// Builds the page; returns it with its sample count.
fn page(om: bool) -> (String, usize) {
    let mut s = String::new();
    let mut n = 0;
    let counter_sample = |s: &mut String, name: &str| {
        if om {
            let _ = write!(s, "{name}_total");
        } else {
            s.push_str(name);
        }
    };
    let _ = writeln!(
        s,
        "# HELP node_cpu_seconds Seconds the CPUs spent in each mode."
    );
    let _ = writeln!(s, "# TYPE node_cpu_seconds counter");
    for cpu in 0..CPUS {
        for (i, mode) in CPU_MODES.iter().enumerate() {
            counter_sample(&mut s, "node_cpu_seconds");
            let _ = writeln!(
                s,
                "{{cpu=\"{cpu}\",mode=\"{mode}\"}} {}.{}",
                1000 * cpu + 37 * i,
                17 + i
            );
            n += 1;
        }
    }
    for metric in [
        "node_disk_read_bytes",
        "node_disk_written_bytes",
        "node_disk_io_time_seconds",
        "node_disk_reads_completed",
        "node_disk_writes_completed",
    ] {
        let _ = writeln!(s, "# HELP {metric} Disk statistic from /proc/diskstats.");
        let _ = writeln!(s, "# TYPE {metric} counter");
        for (i, dev) in DEVICES.iter().enumerate() {
            counter_sample(&mut s, metric);
            let _ = writeln!(s, "{{device=\"{dev}\"}} {}", 1.234_567e9 * (i as f64 + 1.0));
            n += 1;
        }
    }
    for metric in [
        "node_network_receive_bytes",
        "node_network_transmit_bytes",
        "node_network_receive_packets",
        "node_network_transmit_packets",
        "node_network_receive_errs",
        "node_network_transmit_errs",
        "node_network_receive_drop",
        "node_network_transmit_drop",
    ] {
        let _ = writeln!(s, "# HELP {metric} Network device statistic.");
        let _ = writeln!(s, "# TYPE {metric} counter");
        for (i, dev) in INTERFACES.iter().enumerate() {
            counter_sample(&mut s, metric);
            let _ = writeln!(s, "{{device=\"{dev}\"}} {}", 98_765_432 * (i + 1));
            n += 1;
        }
    }
    let _ = writeln!(
        s,
        "# HELP node_filesystem_avail_bytes Filesystem space available."
    );
    let _ = writeln!(s, "# TYPE node_filesystem_avail_bytes gauge");
    for i in 0..FILESYSTEMS {
        let _ = writeln!(s, "node_filesystem_avail_bytes{{device=\"/dev/mapper/vg-lv{i}\",fstype=\"ext4\",mountpoint=\"/srv/data/volume{i}\"}} {}", 5.4e10 + i as f64);
        n += 1;
    }
    for h in 0..HISTOGRAMS {
        let fam = format!("http_request_duration_seconds_{h}");
        let _ = writeln!(s, "# HELP {fam} Request latency.");
        let _ = writeln!(s, "# TYPE {fam} histogram");
        for handler in [
            "/api/v1/query",
            "/api/v1/query_range",
            "/metrics",
            "/-/healthy",
        ] {
            let mut cum = 0;
            for (i, le) in BUCKETS.iter().enumerate() {
                cum += 3 * i + 1;
                let _ = writeln!(
                    s,
                    "{fam}_bucket{{handler=\"{handler}\",method=\"GET\",le=\"{le}\"}} {cum}"
                );
                n += 1;
            }
            let _ = writeln!(
                s,
                "{fam}_bucket{{handler=\"{handler}\",method=\"GET\",le=\"+Inf\"}} {cum}"
            );
            let _ = writeln!(
                s,
                "{fam}_sum{{handler=\"{handler}\",method=\"GET\"}} {}.25",
                cum * 2
            );
            let _ = writeln!(
                s,
                "{fam}_count{{handler=\"{handler}\",method=\"GET\"}} {cum}"
            );
            n += 3;
        }
    }
    if om {
        s.push_str("# EOF\n");
    }
    (s, n)
}

fn bench(c: &mut Criterion) {
    for (label, format) in [
        ("text", Format::PrometheusText),
        ("openmetrics", Format::OpenMetrics),
    ] {
        let (text, samples) = page(format == Format::OpenMetrics);
        let input = text.as_bytes();
        // The page must be valid, or the numbers would measure error paths.
        let parsed = parse(input, format).unwrap_or_else(|e| panic!("bench page invalid: {e}"));
        assert_eq!(parsed.samples.len(), samples);

        let mut g = c.benchmark_group(format!("exposition_{label}_samples"));
        g.throughput(Throughput::Elements(samples as u64));
        g.bench_function("parse_with", |b| {
            b.iter(|| {
                let mut sum = 0.0;
                parse_with(black_box(input), format, |e| {
                    if let Entry::Sample(s) = e {
                        sum += s.value;
                    }
                    ControlFlow::Continue(())
                })
                .unwrap_or_default();
                sum
            })
        });
        g.bench_function("parse_owned", |b| {
            b.iter(|| parse(black_box(input), format).map(|p| p.samples.len()))
        });
        g.finish();

        let mut g = c.benchmark_group(format!("exposition_{label}_bytes"));
        g.throughput(Throughput::Bytes(input.len() as u64));
        g.bench_function("parse_with", |b| {
            b.iter(|| parse_with(black_box(input), format, |_| ControlFlow::Continue(())))
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
