//! The PromQL abstract syntax tree: expression nodes with byte spans, value types, vector
//! matching, and a walker. Owns the shape of parsed queries; it never parses text, checks
//! types (see `check`) or evaluates anything.

use vigil_storage::Matcher;

use crate::functions::Function;

/// A byte range `[start, end)` in the query text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PosRange {
    pub start: usize,
    pub end: usize,
}

impl PosRange {
    pub fn new(start: usize, end: usize) -> PosRange {
        PosRange { start, end }
    }

    /// Prometheus' `line:col` rendering of the start position (1-based, byte columns).
    pub fn start_pos_input(&self, query: &str) -> String {
        if query.is_empty() {
            return "unknown position".to_string();
        }
        if self.start > query.len() {
            return "invalid position".to_string();
        }
        let prefix = &query.as_bytes()[..self.start];
        let line = 1 + prefix.iter().filter(|b| **b == b'\n').count();
        let col = match prefix.iter().rposition(|b| *b == b'\n') {
            Some(nl) => self.start - nl,
            None => self.start + 1,
        };
        format!("{line}:{col}")
    }
}

/// The type an expression evaluates to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ValueType {
    None,
    Scalar,
    Vector,
    Matrix,
    String,
}

impl ValueType {
    /// Prometheus' internal name (`vector`, `matrix`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ValueType::None => "none",
            ValueType::Scalar => "scalar",
            ValueType::Vector => "vector",
            ValueType::Matrix => "matrix",
            ValueType::String => "string",
        }
    }

    /// The user-facing name (`instant vector`, `range vector`, ...).
    pub fn documented(self) -> &'static str {
        match self {
            ValueType::Vector => "instant vector",
            ValueType::Matrix => "range vector",
            t => t.as_str(),
        }
    }
}

/// Aggregation operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AggregateOp {
    Sum,
    Avg,
    Count,
    Min,
    Max,
    Group,
    Stddev,
    Stdvar,
    Topk,
    Bottomk,
    Quantile,
    CountValues,
    Limitk,
    LimitRatio,
}

impl AggregateOp {
    pub fn as_str(self) -> &'static str {
        match self {
            AggregateOp::Sum => "sum",
            AggregateOp::Avg => "avg",
            AggregateOp::Count => "count",
            AggregateOp::Min => "min",
            AggregateOp::Max => "max",
            AggregateOp::Group => "group",
            AggregateOp::Stddev => "stddev",
            AggregateOp::Stdvar => "stdvar",
            AggregateOp::Topk => "topk",
            AggregateOp::Bottomk => "bottomk",
            AggregateOp::Quantile => "quantile",
            AggregateOp::CountValues => "count_values",
            AggregateOp::Limitk => "limitk",
            AggregateOp::LimitRatio => "limit_ratio",
        }
    }

    /// Whether the aggregation takes a parameter before the vector.
    pub fn has_param(self) -> bool {
        matches!(
            self,
            AggregateOp::Topk
                | AggregateOp::Bottomk
                | AggregateOp::Quantile
                | AggregateOp::CountValues
                | AggregateOp::Limitk
                | AggregateOp::LimitRatio
        )
    }

    /// Whether the aggregation is behind the experimental-functions flag.
    pub fn is_experimental(self) -> bool {
        matches!(self, AggregateOp::Limitk | AggregateOp::LimitRatio)
    }
}

/// Binary operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Atan2,
    Eql,
    Neq,
    Gtr,
    Lss,
    Gte,
    Lte,
    TrimUpper,
    TrimLower,
    And,
    Or,
    Unless,
}

impl BinaryOp {
    pub fn as_str(self) -> &'static str {
        match self {
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Mod => "%",
            BinaryOp::Pow => "^",
            BinaryOp::Atan2 => "atan2",
            BinaryOp::Eql => "==",
            BinaryOp::Neq => "!=",
            BinaryOp::Gtr => ">",
            BinaryOp::Lss => "<",
            BinaryOp::Gte => ">=",
            BinaryOp::Lte => "<=",
            BinaryOp::TrimUpper => "</",
            BinaryOp::TrimLower => ">/",
            BinaryOp::And => "and",
            BinaryOp::Or => "or",
            BinaryOp::Unless => "unless",
        }
    }

    /// `== != > < >= <=` (the trim operators are not comparisons).
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinaryOp::Eql
                | BinaryOp::Neq
                | BinaryOp::Gtr
                | BinaryOp::Lss
                | BinaryOp::Gte
                | BinaryOp::Lte
        )
    }

    /// `and or unless`.
    pub fn is_set_operator(self) -> bool {
        matches!(self, BinaryOp::And | BinaryOp::Or | BinaryOp::Unless)
    }

    /// Precedence, higher binds tighter (Prometheus' yacc table).
    pub fn precedence(self) -> u8 {
        match self {
            BinaryOp::Or => 1,
            BinaryOp::And | BinaryOp::Unless => 2,
            BinaryOp::Eql
            | BinaryOp::Neq
            | BinaryOp::Gtr
            | BinaryOp::Lss
            | BinaryOp::Gte
            | BinaryOp::Lte
            | BinaryOp::TrimUpper
            | BinaryOp::TrimLower => 3,
            BinaryOp::Add | BinaryOp::Sub => 4,
            BinaryOp::Mul | BinaryOp::Div | BinaryOp::Mod | BinaryOp::Atan2 => 5,
            BinaryOp::Pow => 6,
        }
    }

    pub fn is_right_assoc(self) -> bool {
        self == BinaryOp::Pow
    }
}

/// Unary operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    Add,
    Sub,
}

impl UnaryOp {
    pub fn as_str(self) -> &'static str {
        match self {
            UnaryOp::Add => "+",
            UnaryOp::Sub => "-",
        }
    }
}

/// `@ start()` / `@ end()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AtModifier {
    Start,
    End,
}

/// Cardinality of vector matching.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VectorMatchCardinality {
    OneToOne,
    ManyToOne,
    OneToMany,
    ManyToMany,
}

impl VectorMatchCardinality {
    pub fn as_str(self) -> &'static str {
        match self {
            VectorMatchCardinality::OneToOne => "one-to-one",
            VectorMatchCardinality::ManyToOne => "many-to-one",
            VectorMatchCardinality::OneToMany => "one-to-many",
            VectorMatchCardinality::ManyToMany => "many-to-many",
        }
    }
}

/// Values used for series missing on one side (`fill`, `fill_left`, `fill_right`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FillValues {
    pub lhs: Option<f64>,
    pub rhs: Option<f64>,
}

/// How the two sides of a vector/vector binary operation are matched.
#[derive(Clone, Debug, PartialEq)]
pub struct VectorMatching {
    pub card: VectorMatchCardinality,
    /// Labels from `on(...)` or `ignoring(...)`.
    pub matching_labels: Vec<String>,
    /// True for `on`, false for `ignoring`.
    pub on: bool,
    /// Extra labels from `group_left(...)`/`group_right(...)`.
    pub include: Vec<String>,
    pub fill_values: FillValues,
}

impl Default for VectorMatching {
    fn default() -> Self {
        VectorMatching {
            card: VectorMatchCardinality::OneToOne,
            matching_labels: Vec::new(),
            on: false,
            include: Vec::new(),
            fill_values: FillValues::default(),
        }
    }
}

/// Operators of duration expressions (`[5m+1m]`, `offset step()*2`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DurationOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Step,
    Range,
    MinOf,
    MaxOf,
}

impl DurationOp {
    pub fn as_str(self) -> &'static str {
        match self {
            DurationOp::Add => "+",
            DurationOp::Sub => "-",
            DurationOp::Mul => "*",
            DurationOp::Div => "/",
            DurationOp::Mod => "%",
            DurationOp::Pow => "^",
            DurationOp::Step => "step",
            DurationOp::Range => "range",
            DurationOp::MinOf => "min_of",
            DurationOp::MaxOf => "max_of",
        }
    }
}

/// A number; `duration` records that it was written as a duration (`5m`).
#[derive(Clone, Debug, PartialEq)]
pub struct NumberLiteral {
    pub val: f64,
    pub duration: bool,
    pub pos: PosRange,
}

#[derive(Clone, Debug, PartialEq)]
pub struct StringLiteral {
    pub val: String,
    pub pos: PosRange,
}

/// An instant vector selector. Durations are in milliseconds.
#[derive(Clone, Debug, PartialEq)]
pub struct VectorSelector {
    /// The metric name written before the braces ("" when none).
    pub name: String,
    /// All matchers; a name written before braces is the last `__name__` matcher.
    pub matchers: Vec<Matcher>,
    /// The offset as written (ms).
    pub original_offset: i64,
    /// The offset as a duration expression, when not a literal.
    pub original_offset_expr: Option<Box<DurationExpr>>,
    /// The effective offset (ms), filled in by the engine.
    pub offset: i64,
    /// `@ <timestamp>` in milliseconds.
    pub timestamp: Option<i64>,
    /// `@ start()` / `@ end()`.
    pub start_or_end: Option<AtModifier>,
    pub anchored: bool,
    pub smoothed: bool,
    /// Set for the label-selector argument of `info()`.
    pub bypass_empty_matcher_check: bool,
    pub pos: PosRange,
}

/// `selector[range]`.
#[derive(Clone, Debug, PartialEq)]
pub struct MatrixSelector {
    pub vector_selector: Box<VectorSelector>,
    /// Range in milliseconds.
    pub range: i64,
    pub range_expr: Option<Box<DurationExpr>>,
    pub end_pos: usize,
}

/// `expr[range:step]`.
#[derive(Clone, Debug, PartialEq)]
pub struct SubqueryExpr {
    pub expr: Box<Expr>,
    pub range: i64,
    pub range_expr: Option<Box<DurationExpr>>,
    /// Step in milliseconds; 0 means the default resolution.
    pub step: i64,
    pub step_expr: Option<Box<DurationExpr>>,
    pub original_offset: i64,
    pub original_offset_expr: Option<Box<DurationExpr>>,
    pub offset: i64,
    pub timestamp: Option<i64>,
    pub start_or_end: Option<AtModifier>,
    pub end_pos: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    pub func: &'static Function,
    pub args: Vec<Expr>,
    pub pos: PosRange,
}

#[derive(Clone, Debug, PartialEq)]
pub struct AggregateExpr {
    pub op: AggregateOp,
    pub expr: Box<Expr>,
    pub param: Option<Box<Expr>>,
    pub grouping: Vec<String>,
    pub without: bool,
    pub pos: PosRange,
}

#[derive(Clone, Debug, PartialEq)]
pub struct BinaryExpr {
    pub op: BinaryOp,
    pub lhs: Box<Expr>,
    pub rhs: Box<Expr>,
    /// Present when both sides are instant vectors (after type checking).
    pub matching: Option<VectorMatching>,
    pub return_bool: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct UnaryExpr {
    pub op: UnaryOp,
    pub expr: Box<Expr>,
    pub start_pos: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ParenExpr {
    pub expr: Box<Expr>,
    pub pos: PosRange,
}

/// Marks a subtree whose value is the same at every step (inserted by `preprocess`).
#[derive(Clone, Debug, PartialEq)]
pub struct StepInvariantExpr {
    pub expr: Box<Expr>,
}

/// An arithmetic expression over durations. Unary forms have `lhs == None`; `step()` and
/// `range()` have neither side.
#[derive(Clone, Debug, PartialEq)]
pub struct DurationExpr {
    pub op: DurationOp,
    pub lhs: Option<Box<Expr>>,
    pub rhs: Option<Box<Expr>>,
    /// Written in parentheses (kept so printing round-trips).
    pub wrapped: bool,
    pub start_pos: usize,
    pub end_pos: usize,
}

/// A PromQL expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    NumberLiteral(NumberLiteral),
    StringLiteral(StringLiteral),
    VectorSelector(Box<VectorSelector>),
    MatrixSelector(MatrixSelector),
    Subquery(SubqueryExpr),
    Call(Call),
    Aggregate(AggregateExpr),
    Binary(BinaryExpr),
    Unary(UnaryExpr),
    Paren(ParenExpr),
    StepInvariant(StepInvariantExpr),
    Duration(DurationExpr),
}

impl Expr {
    /// The type this expression evaluates to.
    pub fn value_type(&self) -> ValueType {
        match self {
            Expr::NumberLiteral(_) | Expr::Duration(_) => ValueType::Scalar,
            Expr::StringLiteral(_) => ValueType::String,
            Expr::VectorSelector(_) | Expr::Aggregate(_) => ValueType::Vector,
            Expr::MatrixSelector(_) | Expr::Subquery(_) => ValueType::Matrix,
            Expr::Call(c) => c.func.return_type,
            Expr::Binary(b) => {
                if b.lhs.value_type() == ValueType::Scalar
                    && b.rhs.value_type() == ValueType::Scalar
                {
                    ValueType::Scalar
                } else {
                    ValueType::Vector
                }
            }
            Expr::Unary(u) => u.expr.value_type(),
            Expr::Paren(p) => p.expr.value_type(),
            Expr::StepInvariant(s) => s.expr.value_type(),
        }
    }

    /// The byte span of the expression in the query.
    pub fn pos(&self) -> PosRange {
        match self {
            Expr::NumberLiteral(n) => n.pos,
            Expr::StringLiteral(s) => s.pos,
            Expr::VectorSelector(v) => v.pos,
            Expr::MatrixSelector(m) => PosRange::new(m.vector_selector.pos.start, m.end_pos),
            Expr::Subquery(s) => PosRange::new(s.expr.pos().start, s.end_pos),
            Expr::Call(c) => c.pos,
            Expr::Aggregate(a) => a.pos,
            Expr::Binary(b) => PosRange::new(b.lhs.pos().start, b.rhs.pos().end),
            Expr::Unary(u) => PosRange::new(u.start_pos, u.expr.pos().end),
            Expr::Paren(p) => p.pos,
            Expr::StepInvariant(s) => s.expr.pos(),
            Expr::Duration(d) => d.pos(),
        }
    }

    /// The direct children, in evaluation order (aggregation: expression, then parameter).
    pub fn children(&self) -> Vec<&Expr> {
        match self {
            Expr::Aggregate(a) => {
                let mut v = vec![a.expr.as_ref()];
                if let Some(p) = &a.param {
                    v.push(p);
                }
                v
            }
            Expr::Binary(b) => vec![&b.lhs, &b.rhs],
            Expr::Call(c) => c.args.iter().collect(),
            Expr::Subquery(s) => vec![&s.expr],
            Expr::Paren(p) => vec![&p.expr],
            Expr::Unary(u) => vec![&u.expr],
            Expr::StepInvariant(s) => vec![&s.expr],
            Expr::MatrixSelector(_)
            | Expr::NumberLiteral(_)
            | Expr::StringLiteral(_)
            | Expr::VectorSelector(_)
            | Expr::Duration(_) => Vec::new(),
        }
    }

    /// Visits the tree depth-first, parents before children, with the path of ancestors.
    /// The visitor returns `false` to skip a node's children.
    pub fn walk<'a>(&'a self, f: &mut impl FnMut(&'a Expr, &[&'a Expr]) -> bool) {
        let mut path = Vec::new();
        self.walk_inner(f, &mut path);
    }

    fn walk_inner<'a>(
        &'a self,
        f: &mut impl FnMut(&'a Expr, &[&'a Expr]) -> bool,
        path: &mut Vec<&'a Expr>,
    ) {
        if !f(self, path) {
            return;
        }
        path.push(self);
        for c in self.children() {
            c.walk_inner(f, path);
        }
        path.pop();
    }

    /// The matchers of every vector selector in the tree (matrix selectors included).
    pub fn extract_selectors(&self) -> Vec<&[Matcher]> {
        let mut out: Vec<&[Matcher]> = Vec::new();
        self.walk(&mut |e, _| {
            match e {
                Expr::VectorSelector(v) => out.push(&v.matchers),
                Expr::MatrixSelector(m) => out.push(&m.vector_selector.matchers),
                _ => {}
            }
            true
        });
        out
    }

    /// Strips any number of enclosing parentheses and step-invariant markers.
    pub fn unwrap_parens(&self) -> &Expr {
        match self {
            Expr::Paren(p) => p.expr.unwrap_parens(),
            Expr::StepInvariant(s) => s.expr.unwrap_parens(),
            e => e,
        }
    }
}

impl DurationExpr {
    /// The span of the duration expression.
    pub fn pos(&self) -> PosRange {
        match (&self.lhs, &self.rhs) {
            (None, None) => PosRange::new(self.start_pos, self.end_pos),
            (Some(l), None) => PosRange::new(self.start_pos, l.pos().end),
            (None, Some(r)) => PosRange::new(self.start_pos, r.pos().end),
            (Some(l), Some(r)) => PosRange::new(l.pos().start, r.pos().end),
        }
    }
}
