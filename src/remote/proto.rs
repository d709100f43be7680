//! The remote-write protobuf messages, written by hand with `prost` derives (no protoc, no
//! build script): RW 1.0 `prometheus.WriteRequest` and RW 2.0 `io.prometheus.write.v2.Request`
//! with their parts, field numbers as in the upstream `.proto` schemas. Strings that arrive
//! from the network (label names and values, symbols, help, unit) are kept as raw `Bytes`
//! slices of the decompressed body, so invalid UTF-8 is found per series by the receiver
//! instead of failing the whole message, and nothing is copied at decode time.
//! This module only declares wire shapes: it never validates or stores anything.

use bytes::Bytes;

// ---- shared by both versions ----------------------------------------------------------

/// A span of consecutive native-histogram buckets.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BucketSpan {
    #[prost(sint32, tag = "1")]
    pub offset: i32,
    #[prost(uint32, tag = "2")]
    pub length: u32,
}

/// The observation count of a native histogram: integer or float.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum HistogramCount {
    #[prost(uint64, tag = "1")]
    CountInt(u64),
    #[prost(double, tag = "2")]
    CountFloat(f64),
}

/// The zero-bucket count of a native histogram: integer or float.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum HistogramZeroCount {
    #[prost(uint64, tag = "6")]
    ZeroCountInt(u64),
    #[prost(double, tag = "7")]
    ZeroCountFloat(f64),
}

/// A native histogram sample. The RW 1.0 and 2.0 messages share field numbers 1–16; 2.0
/// adds `start_timestamp = 17`, which a 1.0 message simply never carries.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Histogram {
    #[prost(oneof = "HistogramCount", tags = "1, 2")]
    pub count: Option<HistogramCount>,
    #[prost(double, tag = "3")]
    pub sum: f64,
    #[prost(sint32, tag = "4")]
    pub schema: i32,
    #[prost(double, tag = "5")]
    pub zero_threshold: f64,
    #[prost(oneof = "HistogramZeroCount", tags = "6, 7")]
    pub zero_count: Option<HistogramZeroCount>,
    #[prost(message, repeated, tag = "8")]
    pub negative_spans: Vec<BucketSpan>,
    #[prost(sint64, repeated, tag = "9")]
    pub negative_deltas: Vec<i64>,
    #[prost(double, repeated, tag = "10")]
    pub negative_counts: Vec<f64>,
    #[prost(message, repeated, tag = "11")]
    pub positive_spans: Vec<BucketSpan>,
    #[prost(sint64, repeated, tag = "12")]
    pub positive_deltas: Vec<i64>,
    #[prost(double, repeated, tag = "13")]
    pub positive_counts: Vec<f64>,
    #[prost(int32, tag = "14")]
    pub reset_hint: i32,
    #[prost(int64, tag = "15")]
    pub timestamp: i64,
    #[prost(double, repeated, tag = "16")]
    pub custom_values: Vec<f64>,
    #[prost(int64, tag = "17")]
    pub start_timestamp: i64,
}

// ---- RW 1.0: package prometheus -------------------------------------------------------

/// `prometheus.WriteRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
    #[prost(message, repeated, tag = "3")]
    pub metadata: Vec<MetricMetadata>,
}

/// `prometheus.TimeSeries`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
    #[prost(message, repeated, tag = "3")]
    pub exemplars: Vec<Exemplar>,
    #[prost(message, repeated, tag = "4")]
    pub histograms: Vec<Histogram>,
}

/// `prometheus.Label`; name and value are raw bytes (UTF-8 is checked by the receiver).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Label {
    #[prost(bytes = "bytes", tag = "1")]
    pub name: Bytes,
    #[prost(bytes = "bytes", tag = "2")]
    pub value: Bytes,
}

/// `prometheus.Sample`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Sample {
    #[prost(double, tag = "1")]
    pub value: f64,
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// `prometheus.Exemplar`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Exemplar {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(double, tag = "2")]
    pub value: f64,
    #[prost(int64, tag = "3")]
    pub timestamp: i64,
}

/// `prometheus.MetricMetadata`; `type` uses the numbering of [`metric_type_code`].
#[derive(Clone, PartialEq, prost::Message)]
pub struct MetricMetadata {
    #[prost(int32, tag = "1")]
    pub r#type: i32,
    #[prost(bytes = "bytes", tag = "2")]
    pub metric_family_name: Bytes,
    #[prost(bytes = "bytes", tag = "4")]
    pub help: Bytes,
    #[prost(bytes = "bytes", tag = "5")]
    pub unit: Bytes,
}

/// The metric type numbering shared by `prometheus.MetricMetadata.MetricType` and
/// `io.prometheus.write.v2.Metadata.MetricType` (0 = unknown / unspecified).
pub mod metric_type_code {
    pub const UNKNOWN: i32 = 0;
    pub const COUNTER: i32 = 1;
    pub const GAUGE: i32 = 2;
    pub const HISTOGRAM: i32 = 3;
    pub const GAUGEHISTOGRAM: i32 = 4;
    pub const SUMMARY: i32 = 5;
    pub const INFO: i32 = 6;
    pub const STATESET: i32 = 7;
}

// ---- RW 2.0: package io.prometheus.write.v2 -------------------------------------------

/// `io.prometheus.write.v2.Request`. Fields 1–3 are reserved so that a 1.0 body read with
/// this schema decodes as an empty request.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RequestV2 {
    #[prost(bytes = "bytes", repeated, tag = "4")]
    pub symbols: Vec<Bytes>,
    #[prost(message, repeated, tag = "5")]
    pub timeseries: Vec<TimeSeriesV2>,
}

/// `io.prometheus.write.v2.TimeSeries`. Field 6 is `created_timestamp` in the v3.6-era
/// schema (reserved later, when it moved to per-sample `start_timestamp`); it is decoded as
/// a fallback start timestamp for every sample of the series.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeriesV2 {
    #[prost(uint32, repeated, tag = "1")]
    pub labels_refs: Vec<u32>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<SampleV2>,
    #[prost(message, repeated, tag = "3")]
    pub histograms: Vec<Histogram>,
    #[prost(message, repeated, tag = "4")]
    pub exemplars: Vec<ExemplarV2>,
    #[prost(message, optional, tag = "5")]
    pub metadata: Option<MetadataV2>,
    #[prost(int64, tag = "6")]
    pub created_timestamp: i64,
}

/// `io.prometheus.write.v2.Sample`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SampleV2 {
    #[prost(double, tag = "1")]
    pub value: f64,
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
    #[prost(int64, tag = "3")]
    pub start_timestamp: i64,
}

/// `io.prometheus.write.v2.Exemplar`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ExemplarV2 {
    #[prost(uint32, repeated, tag = "1")]
    pub labels_refs: Vec<u32>,
    #[prost(double, tag = "2")]
    pub value: f64,
    #[prost(int64, tag = "3")]
    pub timestamp: i64,
}

/// `io.prometheus.write.v2.Metadata`: type plus symbol refs of help and unit.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MetadataV2 {
    #[prost(int32, tag = "1")]
    pub r#type: i32,
    #[prost(uint32, tag = "3")]
    pub help_ref: u32,
    #[prost(uint32, tag = "4")]
    pub unit_ref: u32,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn v1_roundtrip_keeps_stale_nan_bits() {
        let stale = f64::from_bits(0x7ff0_0000_0000_0002);
        let req = WriteRequest {
            timeseries: vec![TimeSeries {
                labels: vec![Label {
                    name: Bytes::from_static(b"__name__"),
                    value: Bytes::from_static(b"up"),
                }],
                samples: vec![Sample {
                    value: stale,
                    timestamp: 7,
                }],
                ..Default::default()
            }],
            metadata: vec![],
        };
        let bytes = req.encode_to_vec();
        let back = WriteRequest::decode(bytes.as_slice()).unwrap();
        assert_eq!(
            back.timeseries[0].samples[0].value.to_bits(),
            0x7ff0_0000_0000_0002
        );
        assert_eq!(&back.timeseries[0].labels[0].value[..], b"up");
    }

    #[test]
    fn golden_v1_sample_bytes() {
        // Sample{value: 1.0, timestamp: 1}: field 1 fixed64, field 2 varint.
        let s = Sample {
            value: 1.0,
            timestamp: 1,
        };
        assert_eq!(
            s.encode_to_vec(),
            vec![0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0x10, 0x01]
        );
    }

    #[test]
    fn v1_body_read_as_v2_is_empty() {
        let req = WriteRequest {
            timeseries: vec![TimeSeries {
                labels: vec![Label {
                    name: Bytes::from_static(b"__name__"),
                    value: Bytes::from_static(b"up"),
                }],
                ..Default::default()
            }],
            metadata: vec![],
        };
        let v2 = RequestV2::decode(req.encode_to_vec().as_slice()).unwrap();
        assert!(v2.timeseries.is_empty() && v2.symbols.is_empty());
    }

    #[test]
    fn v2_created_timestamp_field_6() {
        let ts = TimeSeriesV2 {
            labels_refs: vec![1, 2],
            created_timestamp: 42,
            ..Default::default()
        };
        let back = TimeSeriesV2::decode(ts.encode_to_vec().as_slice()).unwrap();
        assert_eq!(back.created_timestamp, 42);
        assert_eq!(back.labels_refs, vec![1, 2]);
    }
}
