//! A small positioned YAML tree for rule and SLO files: every node keeps the 1-based line and
//! column where it starts, so validation errors can point at the offending value the way
//! Prometheus' yaml.v3 nodes do. Anchors, aliases and `<<` merge keys are resolved here. Only
//! the first document of a stream is read. This module never interprets rule semantics.

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A 1-based source position; `0:0` means "no node" (a field that was not written).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

impl std::fmt::Display for Pos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// What a node holds.
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    /// A scalar; `plain` is false for quoted and block scalars (which are never null/bool/int).
    Scalar {
        value: String,
        plain: bool,
    },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

/// One YAML node with its position.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub kind: Kind,
    pub pos: Pos,
}

/// The YAML merge key.
const MERGE_KEY: &str = "<<";

impl Node {
    /// True for an explicit or implicit null (`~`, `null`, empty plain scalar).
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, Kind::Scalar { value, plain: true }
            if value.is_empty() || value == "~" || value == "null" || value == "Null" || value == "NULL")
    }

    /// The scalar text, if this is a scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }

    /// The YAML tag name Go's yaml.v3 would report in a type error (`!!str`, `!!map`, …).
    pub fn tag(&self) -> &'static str {
        match &self.kind {
            Kind::Seq(_) => "!!seq",
            Kind::Map(_) => "!!map",
            Kind::Scalar { value, plain } => {
                if !*plain {
                    "!!str"
                } else if self.is_null() {
                    "!!null"
                } else if matches!(value.as_str(), "true" | "false" | "True" | "False") {
                    "!!bool"
                } else if value.parse::<i64>().is_ok() {
                    "!!int"
                } else if value.parse::<f64>().is_ok() {
                    "!!float"
                } else {
                    "!!str"
                }
            }
        }
    }

    /// Looks a key up in a mapping node.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.kind {
            Kind::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }
}

/// A YAML syntax error with its position, rendered like yaml.v3 (`yaml: line N: reason`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    pub pos: Pos,
    pub reason: String,
}

impl std::fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "yaml: line {}: {}", self.pos.line, self.reason)
    }
}

/// Parses the first document of `text`. An empty stream gives `Ok(None)`.
pub fn parse(text: &str) -> Result<Option<Node>, SyntaxError> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    parser.load(&mut builder, false).map_err(|e| SyntaxError {
        pos: pos_of(e.marker()),
        reason: e.info().to_string(),
    })?;
    if let Some(err) = builder.error {
        return Err(err);
    }
    Ok(builder.root)
}

fn pos_of(m: &Marker) -> Pos {
    // yaml-rust2 lines are 1-based and columns 0-based; yaml.v3 reports both 1-based.
    Pos {
        line: m.line(),
        col: m.col() + 1,
    }
}

enum Frame {
    Seq(Vec<Node>, Pos, usize),
    Map(Vec<(Node, Node)>, Option<Node>, Pos, usize),
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    anchors: std::collections::HashMap<usize, Node>,
    root: Option<Node>,
    done: bool,
    error: Option<SyntaxError>,
}

impl Builder {
    fn push_node(&mut self, node: Node, anchor: usize) {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => {
                if self.root.is_none() {
                    self.root = Some(node);
                }
                self.done = true;
            }
            Some(Frame::Seq(items, _, _)) => items.push(node),
            Some(Frame::Map(entries, pending, _, _)) => match pending.take() {
                None => *pending = Some(node),
                Some(key) => entries.push((key, node)),
            },
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.done || self.error.is_some() {
            return;
        }
        let pos = pos_of(&mark);
        match ev {
            Event::Scalar(value, style, anchor, _tag) => {
                let plain = matches!(style, TScalarStyle::Plain);
                self.push_node(
                    Node {
                        kind: Kind::Scalar { value, plain },
                        pos,
                    },
                    anchor,
                );
            }
            Event::SequenceStart(anchor, _) => self.stack.push(Frame::Seq(Vec::new(), pos, anchor)),
            Event::MappingStart(anchor, _) => {
                self.stack.push(Frame::Map(Vec::new(), None, pos, anchor))
            }
            Event::SequenceEnd => {
                if let Some(Frame::Seq(items, p, anchor)) = self.stack.pop() {
                    self.push_node(
                        Node {
                            kind: Kind::Seq(items),
                            pos: p,
                        },
                        anchor,
                    );
                }
            }
            Event::MappingEnd => {
                if let Some(Frame::Map(entries, _, mut p, anchor)) = self.stack.pop() {
                    // A block mapping's start event is marked at its first `:`; yaml.v3
                    // reports the first key, so take whichever comes first.
                    if let Some((k, _)) = entries.first() {
                        if (k.pos.line, k.pos.col) < (p.line, p.col) {
                            p = k.pos;
                        }
                    }
                    let entries = resolve_merges(entries);
                    self.push_node(
                        Node {
                            kind: Kind::Map(entries),
                            pos: p,
                        },
                        anchor,
                    );
                }
            }
            Event::Alias(id) => match self.anchors.get(&id).cloned() {
                Some(node) => self.push_node(node, 0),
                None => {
                    self.error = Some(SyntaxError {
                        pos,
                        reason: "unknown anchor referenced".to_string(),
                    })
                }
            },
            Event::DocumentEnd => {
                if self.root.is_some() {
                    self.done = true;
                }
            }
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentStart => {}
        }
    }
}

/// Applies `<<` merge keys: merged entries come after explicit ones never override them.
fn resolve_merges(entries: Vec<(Node, Node)>) -> Vec<(Node, Node)> {
    if !entries
        .iter()
        .any(|(k, _)| matches!(&k.kind, Kind::Scalar { value, plain: true } if value == MERGE_KEY))
    {
        return entries;
    }
    let mut own = Vec::new();
    let mut merged: Vec<(Node, Node)> = Vec::new();
    for (k, v) in entries {
        if matches!(&k.kind, Kind::Scalar { value, plain: true } if value == MERGE_KEY) {
            let sources = match v.kind {
                Kind::Map(m) => vec![m],
                Kind::Seq(items) => items
                    .into_iter()
                    .filter_map(|n| match n.kind {
                        Kind::Map(m) => Some(m),
                        _ => None,
                    })
                    .collect(),
                Kind::Scalar { .. } => Vec::new(),
            };
            for src in sources {
                for (mk, mv) in src {
                    if !merged.iter().any(|(ek, _)| ek.as_str() == mk.as_str()) {
                        merged.push((mk, mv));
                    }
                }
            }
        } else {
            own.push((k, v));
        }
    }
    for (mk, mv) in merged {
        if !own.iter().any(|(ek, _)| ek.as_str() == mk.as_str()) {
            own.push((mk, mv));
        }
    }
    own
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_point_at_values() {
        let n = parse("groups:\n  - name: yolo\n    rules:\n      - record: Hi\n")
            .unwrap()
            .unwrap();
        let g = match &n.get("groups").unwrap().kind {
            Kind::Seq(items) => items[0].clone(),
            _ => panic!("not a seq"),
        };
        assert_eq!(g.pos, Pos { line: 2, col: 5 });
        let rule = match &g.get("rules").unwrap().kind {
            Kind::Seq(items) => items[0].clone(),
            _ => panic!("not a seq"),
        };
        assert_eq!(rule.get("record").unwrap().pos, Pos { line: 4, col: 17 });
    }

    #[test]
    fn aliases_and_merge_keys_resolve() {
        let n = parse("a: &x {k: 1, j: 2}\nb:\n  <<: *x\n  k: 3\n")
            .unwrap()
            .unwrap();
        let b = n.get("b").unwrap();
        assert_eq!(b.get("k").unwrap().as_str(), Some("3"));
        assert_eq!(b.get("j").unwrap().as_str(), Some("2"));
    }

    #[test]
    fn only_first_document_and_empty_stream() {
        let n = parse("a: 1\n---\nb: 2\n").unwrap().unwrap();
        assert!(n.get("a").is_some());
        assert!(n.get("b").is_none());
        assert!(parse("").unwrap().is_none());
        assert!(parse("a: [1\n").is_err());
    }

    #[test]
    fn tags_follow_yaml_core_schema() {
        let n = parse("a: 1\nb: '1'\nc: x\nd: ~\ne: true\n")
            .unwrap()
            .unwrap();
        assert_eq!(n.get("a").unwrap().tag(), "!!int");
        assert_eq!(n.get("b").unwrap().tag(), "!!str");
        assert_eq!(n.get("c").unwrap().tag(), "!!str");
        assert_eq!(n.get("d").unwrap().tag(), "!!null");
        assert_eq!(n.get("e").unwrap().tag(), "!!bool");
    }
}
