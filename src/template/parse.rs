//! The parser of the Go `text/template` language: tokens → a tree of text, actions, `if`,
//! `range`, `with`, `define`/`block`/`template`, `break`/`continue`. Like Go it rejects
//! unknown functions and undefined variables at parse time. It never evaluates anything.

use std::collections::BTreeMap;

use super::lex::{Tok, Token};
use super::TemplateError;

/// A literal or reference inside a command.
#[derive(Clone, Debug, PartialEq)]
pub enum Operand {
    Dot,
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// `.A.B`
    Field(Vec<String>),
    /// `$x.A.B` (`$` alone is the root data).
    Var(String, Vec<String>),
    /// A function name.
    Func(String),
    /// `(pipeline).A.B`
    Sub(Box<Pipe>, Vec<String>),
}

/// One command of a pipeline: an operand and its arguments.
#[derive(Clone, Debug, PartialEq)]
pub struct Cmd {
    pub args: Vec<Operand>,
}

/// A pipeline, optionally declaring (`:=`) or assigning (`=`) variables.
#[derive(Clone, Debug, PartialEq)]
pub struct Pipe {
    pub decl: Vec<String>,
    pub assign: bool,
    pub cmds: Vec<Cmd>,
}

/// A node of the template tree.
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    Text(String),
    Action {
        line: usize,
        pipe: Pipe,
    },
    If {
        line: usize,
        pipe: Pipe,
        then: Vec<Node>,
        els: Vec<Node>,
    },
    Range {
        line: usize,
        pipe: Pipe,
        body: Vec<Node>,
        els: Vec<Node>,
    },
    With {
        line: usize,
        pipe: Pipe,
        body: Vec<Node>,
        els: Vec<Node>,
    },
    Template {
        line: usize,
        name: String,
        pipe: Option<Pipe>,
    },
    Break {
        line: usize,
    },
    Continue {
        line: usize,
    },
}

/// A parsed template: the main tree and the trees named by `define`/`block`.
#[derive(Clone, Debug, PartialEq)]
pub struct Tree {
    pub root: Vec<Node>,
    pub defines: BTreeMap<String, Vec<Node>>,
}

/// What ended a list of nodes.
#[derive(Debug, PartialEq)]
enum Stop {
    Eof,
    End,
    Else,
    ElseIf(usize),
    ElseWith(usize),
}

/// Parses tokens; `is_func` says which identifiers are defined functions.
pub fn parse(
    name: &str,
    tokens: Vec<Token>,
    is_func: &dyn Fn(&str) -> bool,
) -> Result<Tree, TemplateError> {
    let mut p = Parser {
        name,
        toks: tokens,
        pos: 0,
        vars: vec!["$".to_string()],
        is_func,
        defines: BTreeMap::new(),
        loop_depth: 0,
    };
    let (root, end) = p.list(true)?;
    if end != Stop::Eof {
        return Err(p.err_at(p.line(), "unexpected {{end}}"));
    }
    Ok(Tree {
        root,
        defines: p.defines,
    })
}

struct Parser<'a> {
    name: &'a str,
    toks: Vec<Token>,
    pos: usize,
    vars: Vec<String>,
    is_func: &'a dyn Fn(&str) -> bool,
    defines: BTreeMap<String, Vec<Node>>,
    loop_depth: usize,
}

impl Parser<'_> {
    fn err_at(&self, line: usize, msg: impl Into<String>) -> TemplateError {
        TemplateError::parse(self.name, line, msg)
    }

    fn line(&self) -> usize {
        self.toks
            .get(self.pos)
            .or_else(|| self.toks.last())
            .map(|t| t.line)
            .unwrap_or(1)
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.tok)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).map(|t| t.tok.clone());
        self.pos += 1;
        t
    }

    fn expect_right(&mut self, ctx: &str) -> Result<(), TemplateError> {
        let line = self.line();
        match self.next() {
            Some(Tok::RightDelim) => Ok(()),
            Some(t) => Err(self.err_at(line, format!("unexpected {} in {ctx}", describe(&t)))),
            None => Err(self.err_at(line, "unexpected EOF")),
        }
    }

    /// Parses nodes until `{{end}}`, `{{else}}` or EOF.
    fn list(&mut self, top: bool) -> Result<(Vec<Node>, Stop), TemplateError> {
        let mut out = Vec::new();
        loop {
            let line = self.line();
            let Some(tok) = self.next() else {
                return if top {
                    Ok((out, Stop::Eof))
                } else {
                    Err(self.err_at(line, "unexpected EOF"))
                };
            };
            match tok {
                Tok::Text(t) => out.push(Node::Text(t)),
                Tok::LeftDelim => {
                    let kw = match self.peek() {
                        Some(Tok::Ident(k)) => Some(k.clone()),
                        _ => None,
                    };
                    match kw.as_deref() {
                        Some("end") => {
                            self.pos += 1;
                            self.expect_right("end")?;
                            if top {
                                return Err(self.err_at(line, "unexpected {{end}}"));
                            }
                            return Ok((out, Stop::End));
                        }
                        Some("else") => {
                            self.pos += 1;
                            if top {
                                return Err(self.err_at(line, "unexpected {{else}}"));
                            }
                            return match self.peek() {
                                Some(Tok::Ident(k)) if k == "if" => {
                                    self.pos += 1;
                                    Ok((out, Stop::ElseIf(line)))
                                }
                                Some(Tok::Ident(k)) if k == "with" => {
                                    self.pos += 1;
                                    Ok((out, Stop::ElseWith(line)))
                                }
                                _ => {
                                    self.expect_right("else")?;
                                    Ok((out, Stop::Else))
                                }
                            };
                        }
                        Some("if") => {
                            self.pos += 1;
                            out.push(self.control(line, "if")?);
                        }
                        Some("range") => {
                            self.pos += 1;
                            out.push(self.control(line, "range")?);
                        }
                        Some("with") => {
                            self.pos += 1;
                            out.push(self.control(line, "with")?);
                        }
                        Some("define") => {
                            self.pos += 1;
                            if !top {
                                return Err(self.err_at(line, "unexpected <define> in command"));
                            }
                            self.define(line)?;
                        }
                        Some("block") => {
                            self.pos += 1;
                            out.push(self.template(line, true)?);
                        }
                        Some("template") => {
                            self.pos += 1;
                            out.push(self.template(line, false)?);
                        }
                        Some("break") | Some("continue") => {
                            self.pos += 1;
                            let is_break = kw.as_deref() == Some("break");
                            if self.loop_depth == 0 {
                                let kw = if is_break { "break" } else { "continue" };
                                return Err(self
                                    .err_at(line, format!("{{{{{kw}}}}} outside {{{{range}}}}")));
                            }
                            self.expect_right(if is_break { "break" } else { "continue" })?;
                            out.push(if is_break {
                                Node::Break { line }
                            } else {
                                Node::Continue { line }
                            });
                        }
                        _ => {
                            let pipe = self.pipeline("command", true)?;
                            out.push(Node::Action { line, pipe });
                        }
                    }
                }
                t => return Err(self.err_at(line, format!("unexpected {}", describe(&t)))),
            }
        }
    }

    /// `if`/`range`/`with` after the keyword.
    fn control(&mut self, line: usize, kind: &str) -> Result<Node, TemplateError> {
        let scope = self.vars.len();
        let pipe = self.pipeline(kind, true)?;
        if kind == "range" {
            self.loop_depth += 1;
        }
        let (body, end) = self.list(false)?;
        if kind == "range" {
            self.loop_depth -= 1;
        }
        let els = match end {
            Stop::End => Vec::new(),
            Stop::Else => {
                let (els, end2) = self.list(false)?;
                if end2 != Stop::End {
                    return Err(self.err_at(self.line(), "expected end; found {{else}}"));
                }
                els
            }
            Stop::ElseIf(l) if kind == "if" => vec![self.control(l, "if")?],
            Stop::ElseWith(l) if kind == "with" => vec![self.control(l, "with")?],
            Stop::ElseIf(l) | Stop::ElseWith(l) => {
                return Err(self.err_at(l, "unexpected {{else}}"));
            }
            Stop::Eof => return Err(self.err_at(self.line(), "unexpected EOF")),
        };
        self.vars.truncate(scope);
        Ok(match kind {
            "if" => Node::If {
                line,
                pipe,
                then: body,
                els,
            },
            "range" => Node::Range {
                line,
                pipe,
                body,
                els,
            },
            _ => Node::With {
                line,
                pipe,
                body,
                els,
            },
        })
    }

    fn define(&mut self, line: usize) -> Result<(), TemplateError> {
        let name = match self.next() {
            Some(Tok::Str(s)) => s,
            _ => return Err(self.err_at(line, "name of template must be a string")),
        };
        self.expect_right("define clause")?;
        let saved = std::mem::replace(&mut self.vars, vec!["$".to_string()]);
        let (body, end) = self.list(false)?;
        self.vars = saved;
        if end != Stop::End {
            return Err(self.err_at(line, "unexpected {{else}} in define"));
        }
        self.defines.insert(name, body);
        Ok(())
    }

    fn template(&mut self, line: usize, block: bool) -> Result<Node, TemplateError> {
        let ctx = if block {
            "block clause"
        } else {
            "template clause"
        };
        let name = match self.next() {
            Some(Tok::Str(s)) => s,
            Some(t) => {
                return Err(self.err_at(line, format!("unexpected {} in {ctx}", describe(&t))))
            }
            None => return Err(self.err_at(line, "unexpected EOF")),
        };
        let pipe = if self.peek() == Some(&Tok::RightDelim) {
            self.pos += 1;
            None
        } else {
            Some(self.pipeline(ctx, false)?)
        };
        if block {
            let saved = std::mem::replace(&mut self.vars, vec!["$".to_string()]);
            let (body, end) = self.list(false)?;
            self.vars = saved;
            if end != Stop::End {
                return Err(self.err_at(line, "unexpected {{else}} in block"));
            }
            self.defines.insert(name.clone(), body);
        }
        Ok(Node::Template { line, name, pipe })
    }

    /// Parses a pipeline up to and including `}}` (or `)` when nested, not consumed).
    fn pipeline(&mut self, ctx: &str, allow_decl: bool) -> Result<Pipe, TemplateError> {
        let line = self.line();
        let mut decl = Vec::new();
        let mut assign = false;
        // Declarations: `$x :=`, `$x, $y :=`, `$x =`.
        if allow_decl {
            if let Some(Tok::Var(v)) = self.peek().cloned() {
                let save = self.pos;
                self.pos += 1;
                match self.peek() {
                    Some(Tok::Declare) | Some(Tok::Assign) => {
                        assign = self.peek() == Some(&Tok::Assign);
                        self.pos += 1;
                        decl.push(v);
                    }
                    Some(Tok::Comma) if ctx == "range" => {
                        self.pos += 1;
                        if let Some(Tok::Var(v2)) = self.next() {
                            match self.next() {
                                Some(Tok::Declare) => {}
                                Some(Tok::Assign) => assign = true,
                                _ => return Err(self.err_at(line, "expected := or =")),
                            }
                            decl.push(v);
                            decl.push(v2);
                        } else {
                            return Err(self.err_at(line, "too many declarations in range"));
                        }
                    }
                    _ => self.pos = save,
                }
            }
        }
        let mut cmds = Vec::new();
        loop {
            let line = self.line();
            match self.peek() {
                Some(Tok::RightDelim) => {
                    self.pos += 1;
                    break;
                }
                Some(Tok::RightParen) if ctx == "parenthesized pipeline" => break,
                None => return Err(self.err_at(line, "unclosed action")),
                _ => {}
            }
            let cmd = self.command()?;
            cmds.push(cmd);
            match self.peek() {
                Some(Tok::Pipe) => {
                    self.pos += 1;
                    if matches!(
                        self.peek(),
                        Some(Tok::RightDelim) | Some(Tok::RightParen) | None
                    ) {
                        return Err(self.err_at(line, "missing command"));
                    }
                }
                Some(Tok::RightDelim) | Some(Tok::RightParen) => {}
                Some(t) => {
                    let d = describe(t);
                    return Err(self.err_at(line, format!("unexpected {d} in operand")));
                }
                None => return Err(self.err_at(line, "unclosed action")),
            }
        }
        if cmds.is_empty() {
            return Err(self.err_at(line, format!("missing value for {ctx}")));
        }
        if assign {
            for v in &decl {
                if !self.vars.contains(v) {
                    return Err(self.err_at(line, format!("undefined variable \"{v}\"")));
                }
            }
        } else {
            self.vars.extend(decl.iter().cloned());
        }
        Ok(Pipe { decl, assign, cmds })
    }

    fn command(&mut self) -> Result<Cmd, TemplateError> {
        let mut args = Vec::new();
        loop {
            match self.peek() {
                None
                | Some(Tok::RightDelim)
                | Some(Tok::RightParen)
                | Some(Tok::Pipe)
                | Some(Tok::Comma)
                | Some(Tok::Declare)
                | Some(Tok::Assign) => break,
                _ => {}
            }
            args.push(self.operand()?);
        }
        if args.is_empty() {
            return Err(self.err_at(self.line(), "empty command"));
        }
        Ok(Cmd { args })
    }

    fn fields(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(Tok::Field(f)) = self.peek().cloned() {
            self.pos += 1;
            out.push(f);
        }
        out
    }

    fn operand(&mut self) -> Result<Operand, TemplateError> {
        let line = self.line();
        let Some(tok) = self.next() else {
            return Err(self.err_at(line, "unclosed action"));
        };
        let op = match tok {
            Tok::Dot => Operand::Dot,
            Tok::Nil => Operand::Nil,
            Tok::Bool(b) => Operand::Bool(b),
            Tok::Str(s) => Operand::Str(s),
            Tok::Char(c) => Operand::Int(c),
            Tok::Number(n) => parse_number(&n).ok_or_else(|| {
                self.err_at(line, format!("illegal number syntax: {:?}", n.as_str()))
            })?,
            Tok::Field(f) => {
                let mut path = vec![f];
                path.extend(self.fields());
                Operand::Field(path)
            }
            Tok::Var(v) => {
                if !self.vars.contains(&v) {
                    return Err(self.err_at(line, format!("undefined variable \"{v}\"")));
                }
                let path = self.fields();
                Operand::Var(v, path)
            }
            Tok::Ident(name) => {
                if !(self.is_func)(&name) {
                    return Err(self.err_at(line, format!("function \"{name}\" not defined")));
                }
                Operand::Func(name)
            }
            Tok::LeftParen => {
                let pipe = self.pipeline("parenthesized pipeline", false)?;
                match self.next() {
                    Some(Tok::RightParen) => {}
                    _ => return Err(self.err_at(line, "unclosed left paren")),
                }
                let path = self.fields();
                Operand::Sub(Box::new(pipe), path)
            }
            t => {
                return Err(self.err_at(line, format!("unexpected {} in operand", describe(&t))));
            }
        };
        Ok(op)
    }
}

fn parse_number(s: &str) -> Option<Operand> {
    let clean: String = s.chars().filter(|c| *c != '_').collect();
    let (neg, body) = match clean.strip_prefix('-') {
        Some(b) => (true, b.to_string()),
        None => (false, clean.trim_start_matches('+').to_string()),
    };
    if let Some(hex) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        let v = i64::from_str_radix(hex, 16).ok()?;
        return Some(Operand::Int(if neg { -v } else { v }));
    }
    if !body.contains(['.', 'e', 'E']) {
        if let Ok(v) = body.parse::<i64>() {
            return Some(Operand::Int(if neg { -v } else { v }));
        }
    }
    let v: f64 = body.parse().ok()?;
    Some(Operand::Float(if neg { -v } else { v }))
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Text(s) => format!("{s:?}"),
        Tok::LeftDelim => "\"{{\"".into(),
        Tok::RightDelim => "\"}}\"".into(),
        Tok::Ident(s) => format!("<{s}>"),
        Tok::Field(s) => format!("<.{s}>"),
        Tok::Var(s) => format!("<{s}>"),
        Tok::Dot => "<.>".into(),
        Tok::Str(s) => format!("{s:?}"),
        Tok::Number(s) => format!("<{s}>"),
        Tok::Char(c) => format!("<{c}>"),
        Tok::Bool(b) => format!("<{b}>"),
        Tok::Nil => "<nil>".into(),
        Tok::Pipe => "\"|\"".into(),
        Tok::LeftParen => "\"(\"".into(),
        Tok::RightParen => "\")\"".into(),
        Tok::Declare => "\":=\"".into(),
        Tok::Assign => "\"=\"".into(),
        Tok::Comma => "\",\"".into(),
    }
}
