//! Annotations: warnings and infos collected during evaluation, with the position of the
//! sub-expression that caused them, rendered like Prometheus (`PromQL warning: <text> (L:C)`)
//! and de-duplicated by text (the first position wins). It never affects results.

use crate::parser::ast::PosRange;

/// Severity of an annotation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnnotationKind {
    Warning,
    Info,
}

/// One annotation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Annotation {
    pub kind: AnnotationKind,
    pub text: String,
    pub pos: PosRange,
}

impl Annotation {
    pub fn warning(text: impl Into<String>, pos: PosRange) -> Annotation {
        Annotation {
            kind: AnnotationKind::Warning,
            text: text.into(),
            pos,
        }
    }

    pub fn info(text: impl Into<String>, pos: PosRange) -> Annotation {
        Annotation {
            kind: AnnotationKind::Info,
            text: text.into(),
            pos,
        }
    }

    /// Prometheus' rendering against the query text.
    pub fn render(&self, query: &str) -> String {
        let kind = match self.kind {
            AnnotationKind::Warning => "PromQL warning",
            AnnotationKind::Info => "PromQL info",
        };
        format!(
            "{kind}: {} ({})",
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
        if !self
            .items
            .iter()
            .any(|x| x.kind == a.kind && x.text == a.text)
        {
            self.items.push(a);
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
