//! Per-group, per-step accumulators of the simple aggregations (`sum avg count min max group
//! stddev stdvar`) over a range query: series are fed one at a time, in input order, and
//! each value lands in its group's cell for that step, so every cell sees its values in
//! the same order as a step-by-step evaluation would (bit-identical sums). Group label
//! sets are computed and hashed once per series, never per step. The output order is
//! that of a step-by-step evaluation: groups by the first step they appear at, then by
//! first appearance in the input. This module never evaluates expressions.

use std::collections::HashMap;
use std::sync::Arc;

use vigil_storage::labels::METRIC_NAME;
use vigil_storage::Labels;

use super::value::{ESeries, Metric, Point};
use crate::kernels::stats::{AvgAcc, SumAcc, VarianceAcc};
use crate::parser::ast::AggregateOp;

/// The output labels of a group: only the `by` labels, or all but the `without` labels
/// and the metric name.
pub(crate) fn grouping_labels(l: &Labels, grouping: &[String], without: bool) -> Labels {
    if without {
        l.without(|n| n == METRIC_NAME || grouping.iter().any(|g| g == n))
    } else {
        l.without(|n| !grouping.iter().any(|g| g == n))
    }
}

/// Whether `op` is one [`StepGroups`] computes.
pub(crate) fn is_cell_op(op: AggregateOp) -> bool {
    matches!(
        op,
        AggregateOp::Sum
            | AggregateOp::Avg
            | AggregateOp::Count
            | AggregateOp::Min
            | AggregateOp::Max
            | AggregateOp::Group
            | AggregateOp::Stddev
            | AggregateOp::Stdvar
    )
}

/// The running state of an operator that needs more than one value.
#[derive(Clone, Copy, Debug, Default)]
enum Acc {
    #[default]
    Plain,
    Sum(SumAcc),
    Avg(AvgAcc),
    Var(VarianceAcc),
}

/// One group at one step.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Cell {
    seen: bool,
    drop_name: bool,
    /// min, max and group.
    value: f64,
    count: f64,
    acc: Acc,
}

impl Cell {
    /// Adds one input value (from a series with delayed name removal `drop_name`).
    pub fn add(&mut self, op: AggregateOp, f: f64, drop_name: bool) {
        if !self.seen {
            *self = Cell {
                seen: true,
                drop_name,
                value: if op == AggregateOp::Group { 1.0 } else { f },
                count: 1.0,
                acc: match op {
                    AggregateOp::Sum => Acc::Sum(SumAcc::new()),
                    AggregateOp::Avg => Acc::Avg(AvgAcc::new()),
                    AggregateOp::Stddev | AggregateOp::Stdvar => Acc::Var(VarianceAcc::new()),
                    _ => Acc::Plain,
                },
            };
        } else {
            if drop_name {
                self.drop_name = true;
            }
            self.count += 1.0;
            match op {
                AggregateOp::Max if self.value < f || self.value.is_nan() => self.value = f,
                AggregateOp::Min if self.value > f || self.value.is_nan() => self.value = f,
                _ => {}
            }
        }
        match &mut self.acc {
            Acc::Sum(s) => s.add(f),
            Acc::Avg(a) => a.add(f),
            Acc::Var(v) => v.add(f),
            Acc::Plain => {}
        }
    }

    /// Whether any value was added.
    pub fn seen(&self) -> bool {
        self.seen
    }

    /// Whether the output sample has delayed name removal.
    pub fn drop_name(&self) -> bool {
        self.drop_name
    }

    /// The aggregated value.
    pub fn value(&self, op: AggregateOp) -> f64 {
        match (op, &self.acc) {
            (AggregateOp::Count, _) => self.count,
            (AggregateOp::Stddev, Acc::Var(v)) => v.stddev(),
            (AggregateOp::Stdvar, Acc::Var(v)) => v.stdvar(),
            (_, Acc::Sum(s)) => s.value(),
            (_, Acc::Avg(a)) => a.value(),
            _ => self.value,
        }
    }
}

/// Groups of one aggregation over a grid of `steps` steps.
pub(crate) struct StepGroups<'g> {
    op: AggregateOp,
    grouping: &'g [String],
    without: bool,
    steps: usize,
    index: HashMap<Labels, usize>,
    metrics: Vec<Metric>,
    /// Per group, one cell per step (allocated when the group first appears).
    cells: Vec<Vec<Cell>>,
}

impl<'g> StepGroups<'g> {
    /// `grouping` must be sorted (as the output labels are).
    pub fn new(op: AggregateOp, grouping: &'g [String], without: bool, steps: usize) -> Self {
        StepGroups {
            op,
            grouping,
            without,
            steps,
            index: HashMap::new(),
            metrics: Vec::new(),
            cells: Vec::new(),
        }
    }

    /// The group of a series with labels `l`, created on first sight (groups are numbered
    /// in order of first appearance).
    pub fn group_of(&mut self, l: &Labels) -> usize {
        let key = grouping_labels(l, self.grouping, self.without);
        if let Some(&g) = self.index.get(&key) {
            return g;
        }
        let g = self.metrics.len();
        self.metrics.push(Arc::new(key.clone()));
        self.index.insert(key, g);
        self.cells.push(vec![Cell::default(); self.steps]);
        g
    }

    /// Adds value `v` of a series in group `g` at step `step` (ignored outside the grid).
    pub fn add(&mut self, g: usize, step: usize, v: f64, drop_name: bool) {
        if let Some(c) = self.cells.get_mut(g).and_then(|c| c.get_mut(step)) {
            c.add(self.op, v, drop_name);
        }
    }

    /// Adds the `(step, value)` results of one series in group `g` (steps outside the
    /// grid are ignored).
    pub fn add_series(&mut self, g: usize, values: &[(usize, f64)], drop_name: bool) {
        let op = self.op;
        let Some(cells) = self.cells.get_mut(g) else {
            return;
        };
        for &(step, v) in values {
            if let Some(c) = cells.get_mut(step) {
                c.add(op, v, drop_name);
            }
        }
    }

    /// The aggregated series, points at `step_ts(step)`, in step-by-step output order;
    /// a series' delayed name removal is that of its first point.
    pub fn finish(self, step_ts: impl Fn(usize) -> i64) -> Vec<ESeries> {
        let op = self.op;
        let mut order: Vec<(usize, usize)> = self
            .cells
            .iter()
            .enumerate()
            .filter_map(|(g, cells)| cells.iter().position(Cell::seen).map(|first| (first, g)))
            .collect();
        order.sort_unstable();
        let mut out = Vec::with_capacity(order.len());
        for (first, g) in order {
            let cells = &self.cells[g];
            let points = cells
                .iter()
                .enumerate()
                .filter(|(_, c)| c.seen())
                .map(|(step, c)| Point {
                    t: step_ts(step),
                    v: c.value(op),
                })
                .collect();
            out.push(ESeries {
                metric: self.metrics[g].clone(),
                points,
                drop_name: cells[first].drop_name(),
            });
        }
        out
    }
}
