//! The values a [`TestEngine`](super::TestEngine) exchanges with the runner: samples to load
//! and query outcomes (scalar, string, vector, matrix, with float or histogram samples, plus
//! warning and info annotations rendered as Prometheus renders them).
//!
//! Plain data with `Display` for failure messages; this module must never compare values or
//! talk to storage.

use std::fmt;

use vigil_storage::Labels;

use super::histogram::FloatHistogram;
use super::number::format_go_float;

/// A sample value: float (possibly the stale marker) or native histogram.
#[derive(Clone, Debug, PartialEq)]
pub enum SampleValue {
    Float(f64),
    Histogram(FloatHistogram),
}

impl fmt::Display for SampleValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SampleValue::Float(v) => f.write_str(&format_go_float(*v)),
            SampleValue::Histogram(h) => f.write_str(&h.test_expression()),
        }
    }
}

/// One sample to load.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadedSample {
    pub t_ms: i64,
    /// Start timestamp from an `@st` line (ms); `None` when unknown.
    pub st_ms: Option<i64>,
    pub value: SampleValue,
}

/// One series of a `load` block, samples in timestamp order.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadedSeries {
    pub labels: Labels,
    pub samples: Vec<LoadedSample>,
}

/// One sample of an instant vector.
#[derive(Clone, Debug, PartialEq)]
pub struct VectorSample {
    pub labels: Labels,
    pub t_ms: i64,
    pub value: SampleValue,
}

/// One series of a matrix; floats and histograms are separate, each in timestamp order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MatrixSeries {
    pub labels: Labels,
    pub floats: Vec<(i64, f64)>,
    pub histograms: Vec<(i64, FloatHistogram)>,
}

/// A query result.
#[derive(Clone, Debug, PartialEq)]
pub enum TestValue {
    Scalar { t_ms: i64, value: f64 },
    String { t_ms: i64, value: String },
    Vector(Vec<VectorSample>),
    Matrix(Vec<MatrixSeries>),
}

/// What an engine returns for one query: the result or the error text (without any position
/// suffix), and the annotations rendered as `PromQL warning: <text> (L:C)` /
/// `PromQL info: <text> (L:C)`.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryOutcome {
    pub result: Result<TestValue, String>,
    pub warnings: Vec<String>,
    pub infos: Vec<String>,
}

impl QueryOutcome {
    /// A successful outcome without annotations.
    pub fn ok(value: TestValue) -> QueryOutcome {
        QueryOutcome {
            result: Ok(value),
            warnings: Vec::new(),
            infos: Vec::new(),
        }
    }

    /// A failed outcome.
    pub fn err(message: impl Into<String>) -> QueryOutcome {
        QueryOutcome {
            result: Err(message.into()),
            warnings: Vec::new(),
            infos: Vec::new(),
        }
    }
}

impl fmt::Display for MatrixSeries {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} =>", self.labels)?;
        for (t, v) in &self.floats {
            write!(f, " {} @[{t}]", format_go_float(*v))?;
        }
        for (t, h) in &self.histograms {
            write!(f, " {} @[{t}]", h.test_expression())?;
        }
        Ok(())
    }
}

impl fmt::Display for TestValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TestValue::Scalar { t_ms, value } => {
                write!(f, "scalar: {} @[{t_ms}]", format_go_float(*value))
            }
            TestValue::String { t_ms, value } => write!(f, "string: {value:?} @[{t_ms}]"),
            TestValue::Vector(v) => {
                for (i, s) in v.iter().enumerate() {
                    if i > 0 {
                        f.write_str("\n")?;
                    }
                    write!(f, "{} => {} @[{}]", s.labels, s.value, s.t_ms)?;
                }
                Ok(())
            }
            TestValue::Matrix(m) => {
                for (i, s) in m.iter().enumerate() {
                    if i > 0 {
                        f.write_str("\n")?;
                    }
                    write!(f, "{s}")?;
                }
                Ok(())
            }
        }
    }
}
