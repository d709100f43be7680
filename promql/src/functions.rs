//! The PromQL function table: every function's name, argument types (with optional and
//! variadic arguments), return type and experimental flag. One table serves the type checker
//! and the evaluator; the evaluator attaches implementations by matching on [`FunctionId`].
//! This module only describes functions; it never evaluates them.

use crate::parser::ast::ValueType;

/// Identifies a function; the evaluator matches on this to find the implementation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FunctionId {
    Abs,
    Absent,
    AbsentOverTime,
    Acos,
    Acosh,
    Asin,
    Asinh,
    Atan,
    Atanh,
    AvgOverTime,
    Ceil,
    Changes,
    Clamp,
    ClampMax,
    ClampMin,
    Cos,
    Cosh,
    CountOverTime,
    DayOfMonth,
    DayOfWeek,
    DayOfYear,
    DaysInMonth,
    Deg,
    Delta,
    Deriv,
    DoubleExponentialSmoothing,
    End,
    Exp,
    FirstOverTime,
    Floor,
    HistogramAvg,
    HistogramCount,
    HistogramFraction,
    HistogramQuantile,
    HistogramQuantiles,
    HistogramStddev,
    HistogramStdvar,
    HistogramSum,
    Hour,
    Idelta,
    Increase,
    Info,
    Irate,
    LabelJoin,
    LabelReplace,
    LastOverTime,
    Ln,
    Log10,
    Log2,
    MadOverTime,
    MaxOf,
    MaxOverTime,
    MinOf,
    MinOverTime,
    Minute,
    Month,
    Pi,
    PredictLinear,
    PresentOverTime,
    QuantileOverTime,
    Rad,
    Range,
    Rate,
    Resets,
    Round,
    Scalar,
    Sgn,
    Sin,
    Sinh,
    Sort,
    SortByLabel,
    SortByLabelDesc,
    SortDesc,
    Sqrt,
    Start,
    StartTimestamp,
    StddevOverTime,
    StdvarOverTime,
    Step,
    SumOverTime,
    Tan,
    Tanh,
    Time,
    Timestamp,
    TsOfFirstOverTime,
    TsOfLastOverTime,
    TsOfMaxOverTime,
    TsOfMinOverTime,
    Vector,
    Year,
}

/// Describes one function.
#[derive(Debug, PartialEq, Eq)]
pub struct Function {
    pub id: FunctionId,
    pub name: &'static str,
    /// Argument types in order. With `variadic != 0` the last entry is repeatable/optional.
    pub arg_types: &'static [ValueType],
    /// 0: exactly `arg_types.len()` arguments. n > 0: the last argument type may appear up
    /// to n times beyond `arg_types.len() - 1` (so it is optional). -1: unlimited.
    pub variadic: i32,
    pub return_type: ValueType,
    /// Only available with `ParserOptions::enable_experimental_functions`.
    pub experimental: bool,
}

impl Function {
    /// The minimum number of arguments.
    pub fn min_args(&self) -> usize {
        if self.variadic == 0 {
            self.arg_types.len()
        } else {
            self.arg_types.len().saturating_sub(1)
        }
    }

    /// The maximum number of arguments, None when unlimited.
    pub fn max_args(&self) -> Option<usize> {
        match self.variadic {
            0 => Some(self.arg_types.len()),
            n if n > 0 => Some(self.min_args() + n as usize),
            _ => None,
        }
    }

    /// The expected type of argument `i` (repeating the last type for variadic functions).
    pub fn arg_type(&self, i: usize) -> Option<ValueType> {
        match self.arg_types.get(i) {
            Some(t) => Some(*t),
            None if self.variadic != 0 => self.arg_types.last().copied(),
            None => None,
        }
    }
}

use ValueType::{Matrix as M, Scalar as S, String as Str, Vector as V};

const fn f(
    id: FunctionId,
    name: &'static str,
    arg_types: &'static [ValueType],
    variadic: i32,
    return_type: ValueType,
    experimental: bool,
) -> Function {
    Function {
        id,
        name,
        arg_types,
        variadic,
        return_type,
        experimental,
    }
}

/// Number of functions in [`FUNCTIONS`].
pub const FUNCTION_COUNT: usize = 90;

/// All functions, sorted by name.
pub static FUNCTIONS: [Function; FUNCTION_COUNT] = [
    f(FunctionId::Abs, "abs", &[V], 0, V, false),
    f(FunctionId::Absent, "absent", &[V], 0, V, false),
    f(
        FunctionId::AbsentOverTime,
        "absent_over_time",
        &[M],
        0,
        V,
        false,
    ),
    f(FunctionId::Acos, "acos", &[V], 0, V, false),
    f(FunctionId::Acosh, "acosh", &[V], 0, V, false),
    f(FunctionId::Asin, "asin", &[V], 0, V, false),
    f(FunctionId::Asinh, "asinh", &[V], 0, V, false),
    f(FunctionId::Atan, "atan", &[V], 0, V, false),
    f(FunctionId::Atanh, "atanh", &[V], 0, V, false),
    f(FunctionId::AvgOverTime, "avg_over_time", &[M], 0, V, false),
    f(FunctionId::Ceil, "ceil", &[V], 0, V, false),
    f(FunctionId::Changes, "changes", &[M], 0, V, false),
    f(FunctionId::Clamp, "clamp", &[V, S, S], 0, V, false),
    f(FunctionId::ClampMax, "clamp_max", &[V, S], 0, V, false),
    f(FunctionId::ClampMin, "clamp_min", &[V, S], 0, V, false),
    f(FunctionId::Cos, "cos", &[V], 0, V, false),
    f(FunctionId::Cosh, "cosh", &[V], 0, V, false),
    f(
        FunctionId::CountOverTime,
        "count_over_time",
        &[M],
        0,
        V,
        false,
    ),
    f(FunctionId::DayOfMonth, "day_of_month", &[V], 1, V, false),
    f(FunctionId::DayOfWeek, "day_of_week", &[V], 1, V, false),
    f(FunctionId::DayOfYear, "day_of_year", &[V], 1, V, false),
    f(FunctionId::DaysInMonth, "days_in_month", &[V], 1, V, false),
    f(FunctionId::Deg, "deg", &[V], 0, V, false),
    f(FunctionId::Delta, "delta", &[M], 0, V, false),
    f(FunctionId::Deriv, "deriv", &[M], 0, V, false),
    f(
        FunctionId::DoubleExponentialSmoothing,
        "double_exponential_smoothing",
        &[M, S, S],
        0,
        V,
        true,
    ),
    f(FunctionId::End, "end", &[], 0, S, true),
    f(FunctionId::Exp, "exp", &[V], 0, V, false),
    f(
        FunctionId::FirstOverTime,
        "first_over_time",
        &[M],
        0,
        V,
        false,
    ),
    f(FunctionId::Floor, "floor", &[V], 0, V, false),
    f(FunctionId::HistogramAvg, "histogram_avg", &[V], 0, V, false),
    f(
        FunctionId::HistogramCount,
        "histogram_count",
        &[V],
        0,
        V,
        false,
    ),
    f(
        FunctionId::HistogramFraction,
        "histogram_fraction",
        &[S, S, V],
        0,
        V,
        false,
    ),
    f(
        FunctionId::HistogramQuantile,
        "histogram_quantile",
        &[S, V],
        0,
        V,
        false,
    ),
    f(
        FunctionId::HistogramQuantiles,
        "histogram_quantiles",
        &[V, Str, S, S],
        9,
        V,
        true,
    ),
    f(
        FunctionId::HistogramStddev,
        "histogram_stddev",
        &[V],
        0,
        V,
        false,
    ),
    f(
        FunctionId::HistogramStdvar,
        "histogram_stdvar",
        &[V],
        0,
        V,
        false,
    ),
    f(FunctionId::HistogramSum, "histogram_sum", &[V], 0, V, false),
    f(FunctionId::Hour, "hour", &[V], 1, V, false),
    f(FunctionId::Idelta, "idelta", &[M], 0, V, false),
    f(FunctionId::Increase, "increase", &[M], 0, V, false),
    f(FunctionId::Info, "info", &[V, V], 1, V, true),
    f(FunctionId::Irate, "irate", &[M], 0, V, false),
    f(
        FunctionId::LabelJoin,
        "label_join",
        &[V, Str, Str, Str],
        -1,
        V,
        false,
    ),
    f(
        FunctionId::LabelReplace,
        "label_replace",
        &[V, Str, Str, Str, Str],
        0,
        V,
        false,
    ),
    f(
        FunctionId::LastOverTime,
        "last_over_time",
        &[M],
        0,
        V,
        false,
    ),
    f(FunctionId::Ln, "ln", &[V], 0, V, false),
    f(FunctionId::Log10, "log10", &[V], 0, V, false),
    f(FunctionId::Log2, "log2", &[V], 0, V, false),
    f(FunctionId::MadOverTime, "mad_over_time", &[M], 0, V, true),
    f(FunctionId::MaxOf, "max_of", &[S, S], 0, S, true),
    f(FunctionId::MaxOverTime, "max_over_time", &[M], 0, V, false),
    f(FunctionId::MinOf, "min_of", &[S, S], 0, S, true),
    f(FunctionId::MinOverTime, "min_over_time", &[M], 0, V, false),
    f(FunctionId::Minute, "minute", &[V], 1, V, false),
    f(FunctionId::Month, "month", &[V], 1, V, false),
    f(FunctionId::Pi, "pi", &[], 0, S, false),
    f(
        FunctionId::PredictLinear,
        "predict_linear",
        &[M, S],
        0,
        V,
        false,
    ),
    f(
        FunctionId::PresentOverTime,
        "present_over_time",
        &[M],
        0,
        V,
        false,
    ),
    f(
        FunctionId::QuantileOverTime,
        "quantile_over_time",
        &[S, M],
        0,
        V,
        false,
    ),
    f(FunctionId::Rad, "rad", &[V], 0, V, false),
    f(FunctionId::Range, "range", &[], 0, S, true),
    f(FunctionId::Rate, "rate", &[M], 0, V, false),
    f(FunctionId::Resets, "resets", &[M], 0, V, false),
    f(FunctionId::Round, "round", &[V, S], 1, V, false),
    f(FunctionId::Scalar, "scalar", &[V], 0, S, false),
    f(FunctionId::Sgn, "sgn", &[V], 0, V, false),
    f(FunctionId::Sin, "sin", &[V], 0, V, false),
    f(FunctionId::Sinh, "sinh", &[V], 0, V, false),
    f(FunctionId::Sort, "sort", &[V], 0, V, false),
    f(
        FunctionId::SortByLabel,
        "sort_by_label",
        &[V, Str],
        -1,
        V,
        true,
    ),
    f(
        FunctionId::SortByLabelDesc,
        "sort_by_label_desc",
        &[V, Str],
        -1,
        V,
        true,
    ),
    f(FunctionId::SortDesc, "sort_desc", &[V], 0, V, false),
    f(FunctionId::Sqrt, "sqrt", &[V], 0, V, false),
    f(FunctionId::Start, "start", &[], 0, S, true),
    f(
        FunctionId::StartTimestamp,
        "start_timestamp",
        &[V],
        0,
        V,
        true,
    ),
    f(
        FunctionId::StddevOverTime,
        "stddev_over_time",
        &[M],
        0,
        V,
        false,
    ),
    f(
        FunctionId::StdvarOverTime,
        "stdvar_over_time",
        &[M],
        0,
        V,
        false,
    ),
    f(FunctionId::Step, "step", &[], 0, S, true),
    f(FunctionId::SumOverTime, "sum_over_time", &[M], 0, V, false),
    f(FunctionId::Tan, "tan", &[V], 0, V, false),
    f(FunctionId::Tanh, "tanh", &[V], 0, V, false),
    f(FunctionId::Time, "time", &[], 0, S, false),
    f(FunctionId::Timestamp, "timestamp", &[V], 0, V, false),
    f(
        FunctionId::TsOfFirstOverTime,
        "ts_of_first_over_time",
        &[M],
        0,
        V,
        true,
    ),
    f(
        FunctionId::TsOfLastOverTime,
        "ts_of_last_over_time",
        &[M],
        0,
        V,
        true,
    ),
    f(
        FunctionId::TsOfMaxOverTime,
        "ts_of_max_over_time",
        &[M],
        0,
        V,
        true,
    ),
    f(
        FunctionId::TsOfMinOverTime,
        "ts_of_min_over_time",
        &[M],
        0,
        V,
        true,
    ),
    f(FunctionId::Vector, "vector", &[S], 0, V, false),
    f(FunctionId::Year, "year", &[V], 1, V, false),
];

/// Looks a function up by its exact (case-sensitive) name.
pub fn get_function(name: &str) -> Option<&'static Function> {
    FUNCTIONS
        .binary_search_by(|f| f.name.cmp(name))
        .ok()
        .map(|i| &FUNCTIONS[i])
}

impl FunctionId {
    /// The table entry of this function.
    pub fn function(self) -> &'static Function {
        // The table holds every id exactly once, in id order (both sorted by name).
        &FUNCTIONS[self as usize]
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_consistent() {
        for (i, w) in FUNCTIONS.iter().enumerate() {
            assert_eq!(w.id as usize, i, "{}", w.name);
            assert_eq!(get_function(w.name).unwrap().id, w.id);
            assert_eq!(w.id.function().name, w.name);
        }
        assert!(FUNCTIONS.windows(2).all(|w| w[0].name < w[1].name));
        assert!(get_function("nope").is_none());
        let lj = get_function("label_join").unwrap();
        assert_eq!((lj.min_args(), lj.max_args()), (3, None));
        let round = get_function("round").unwrap();
        assert_eq!((round.min_args(), round.max_args()), (1, Some(2)));
        let hq = get_function("histogram_quantiles").unwrap();
        assert_eq!((hq.min_args(), hq.max_args()), (3, Some(12)));
        assert!(get_function("info").unwrap().experimental);
        assert_eq!(
            get_function("rate").unwrap().arg_type(0),
            Some(ValueType::Matrix)
        );
    }
}
