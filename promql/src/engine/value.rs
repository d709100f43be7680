//! Query values: the public result shapes (`Value::{Scalar, String, Vector, Matrix}` with
//! Prometheus' sample shapes) and the evaluator's internal step-aligned series. Plain data;
//! this module never evaluates expressions or reads storage.

use std::sync::Arc;

use vigil_storage::Labels;

/// One float point of a series.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    pub t: i64,
    pub v: f64,
}

/// One element of an instant vector.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub labels: Labels,
    pub t: i64,
    pub v: f64,
}

/// One series of a range vector or a range query result.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub labels: Labels,
    pub points: Vec<Point>,
}

/// A query result.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Scalar { t: i64, v: f64 },
    String { t: i64, v: String },
    Vector(Vec<Sample>),
    Matrix(Vec<Series>),
}

/// A shared label set; cloning it per step costs one reference count.
pub(crate) type Metric = Arc<Labels>;

/// A series inside the evaluator: for instant-vector expressions, at most one point per
/// evaluation step, at the step's timestamp; `drop_name` is Prometheus' delayed name removal.
#[derive(Clone, Debug)]
pub(crate) struct ESeries {
    pub metric: Metric,
    pub points: Vec<Point>,
    pub drop_name: bool,
}

/// One element of a per-step vector inside the evaluator.
#[derive(Clone, Debug)]
pub(crate) struct ESample {
    pub metric: Metric,
    pub v: f64,
    pub drop_name: bool,
}

/// What an expression evaluates to over all steps.
#[derive(Clone, Debug)]
pub(crate) enum EVal {
    /// Instant-vector expressions: series with points at step timestamps.
    Vector(Vec<ESeries>),
    /// One value per step.
    Scalar(Vec<f64>),
    String(String),
}

/// Total number of points held by a set of series.
pub(crate) fn total_points(m: &[ESeries]) -> usize {
    m.iter().map(|s| s.points.len()).sum()
}
