//! Annotations: warnings and infos collected during evaluation, with the position of the
//! sub-expression that caused them, rendered like Prometheus (`PromQL warning: <text> (L:C)`)
//! and de-duplicated by text (the first position wins); the `histogram_quantile`
//! monotonicity info instead merges its details (bucket range, max diff, sample count,
//! time span) over every step it occurs in, as Prometheus does. It never affects results.

use crate::kernels::format::{format_go_float, format_go_float_prec};
use crate::kernels::time::civil_from_unix;
use crate::kernels::MS_PER_SECOND;
use crate::parser::ast::PosRange;

/// Significant digits of the max diff in the monotonicity info (Go `%.2g`).
const MAX_DIFF_PRECISION: usize = 2;

/// Details of a forced-monotonicity info, merged across steps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MonotonicityFix {
    pub min_ts: i64,
    pub max_ts: i64,
    pub min_bucket: f64,
    pub max_bucket: f64,
    pub max_diff: f64,
    /// Occurrences merged into this one beyond the first.
    pub merged: usize,
}

impl MonotonicityFix {
    fn merge(&mut self, o: &MonotonicityFix) {
        self.min_ts = self.min_ts.min(o.min_ts);
        self.max_ts = self.max_ts.max(o.max_ts);
        self.min_bucket = self.min_bucket.min(o.min_bucket);
        self.max_bucket = self.max_bucket.max(o.max_bucket);
        self.max_diff = self.max_diff.max(o.max_diff);
        self.merged += o.merged + 1;
    }

    fn render(&self) -> String {
        format!(
            ", from buckets {} to {}, with a max diff of {}, over {} samples from {} to {}",
            format_go_float(self.min_bucket),
            format_go_float(self.max_bucket),
            format_go_float_prec(self.max_diff, MAX_DIFF_PRECISION),
            self.merged + 1,
            rfc3339(self.min_ts),
            rfc3339(self.max_ts)
        )
    }
}

/// A millisecond timestamp as RFC 3339 UTC at second precision.
fn rfc3339(ts_ms: i64) -> String {
    let c = civil_from_unix(ts_ms.div_euclid(MS_PER_SECOND));
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

/// Severity of an annotation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnnotationKind {
    Warning,
    Info,
}

/// One annotation.
#[derive(Clone, Debug, PartialEq)]
pub struct Annotation {
    pub kind: AnnotationKind,
    pub text: String,
    pub pos: PosRange,
    /// Set for the mergeable monotonicity info.
    pub fix: Option<MonotonicityFix>,
}

impl Annotation {
    pub fn warning(text: impl Into<String>, pos: PosRange) -> Annotation {
        Annotation {
            kind: AnnotationKind::Warning,
            text: text.into(),
            pos,
            fix: None,
        }
    }

    pub fn info(text: impl Into<String>, pos: PosRange) -> Annotation {
        Annotation {
            kind: AnnotationKind::Info,
            text: text.into(),
            pos,
            fix: None,
        }
    }

    /// An info whose details merge with later ones of the same text.
    pub fn info_with_fix(
        text: impl Into<String>,
        pos: PosRange,
        fix: MonotonicityFix,
    ) -> Annotation {
        Annotation {
            fix: Some(fix),
            ..Annotation::info(text, pos)
        }
    }

    /// Prometheus' rendering against the query text.
    pub fn render(&self, query: &str) -> String {
        let kind = match self.kind {
            AnnotationKind::Warning => "PromQL warning",
            AnnotationKind::Info => "PromQL info",
        };
        let details = self.fix.map(|f| f.render()).unwrap_or_default();
        format!(
            "{kind}: {}{details} ({})",
            self.text,
            self.pos.start_pos_input(query)
        )
    }
}

/// The annotations of one query, in first-seen order, unique by kind and text.
#[derive(Clone, Debug, Default)]
pub struct Annotations {
    items: Vec<Annotation>,
}

impl Annotations {
    pub fn add(&mut self, a: Annotation) {
        match self
            .items
            .iter_mut()
            .find(|x| x.kind == a.kind && x.text == a.text)
        {
            Some(x) => {
                if let (Some(f), Some(o)) = (x.fix.as_mut(), a.fix.as_ref()) {
                    f.merge(o);
                }
            }
            None => self.items.push(a),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Annotation> {
        self.items.iter()
    }

    /// Rendered warnings and infos.
    pub fn render(&self, query: &str) -> (Vec<String>, Vec<String>) {
        let mut w = Vec::new();
        let mut i = Vec::new();
        for a in &self.items {
            match a.kind {
                AnnotationKind::Warning => w.push(a.render(query)),
                AnnotationKind::Info => i.push(a.render(query)),
            }
        }
        (w, i)
    }
}
