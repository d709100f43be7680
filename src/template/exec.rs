//! The evaluator of parsed Go templates: walks the tree with a dot value and a variable
//! stack, evaluates pipelines (piping the previous result as the last argument), `if`,
//! `range` (lists, maps in key order, ints), `with`, `template`, `break`/`continue`, and the
//! short-circuit `and`/`or`. Function bodies live in `funcs.rs`; this module never formats
//! numbers itself.

use super::funcs;
use super::parse::{Cmd, Node, Operand, Pipe, Tree};
use super::value::Value;
use super::{Env, TemplateError};

/// Deepest `template` recursion allowed (Go's limit is 100000; ours is smaller and safe).
const MAX_TEMPLATE_DEPTH: usize = 1000;

enum Flow {
    Normal,
    Break,
    Continue,
}

pub struct Exec<'a> {
    pub name: &'a str,
    pub tree: &'a Tree,
    pub env: &'a Env<'a>,
    vars: Vec<(String, Value)>,
    pub out: String,
    line: usize,
    depth: usize,
}

impl<'a> Exec<'a> {
    pub fn new(name: &'a str, tree: &'a Tree, env: &'a Env<'a>, data: &Value) -> Exec<'a> {
        Exec {
            name,
            tree,
            env,
            vars: vec![("$".to_string(), data.clone())],
            out: String::new(),
            line: 1,
            depth: 0,
        }
    }

    fn err(&self, at: &str, msg: impl Into<String>) -> TemplateError {
        TemplateError::exec(self.name, self.line, at, msg)
    }

    pub fn run(&mut self, data: &Value) -> Result<(), TemplateError> {
        let tree = self.tree;
        self.walk(data, &tree.root)?;
        Ok(())
    }

    fn walk(&mut self, dot: &Value, nodes: &[Node]) -> Result<Flow, TemplateError> {
        for node in nodes {
            match node {
                Node::Text(t) => self.out.push_str(t),
                Node::Action { line, pipe } => {
                    self.line = *line;
                    let v = self.pipe(dot, pipe)?;
                    if pipe.decl.is_empty() {
                        self.print(&v);
                    }
                }
                Node::If {
                    line,
                    pipe,
                    then,
                    els,
                } => {
                    self.line = *line;
                    let scope = self.vars.len();
                    let v = self.pipe(dot, pipe)?;
                    let flow = if v.truth() {
                        self.walk(dot, then)?
                    } else {
                        self.walk(dot, els)?
                    };
                    self.vars.truncate(scope);
                    if !matches!(flow, Flow::Normal) {
                        return Ok(flow);
                    }
                }
                Node::With {
                    line,
                    pipe,
                    body,
                    els,
                } => {
                    self.line = *line;
                    let scope = self.vars.len();
                    let v = self.pipe(dot, pipe)?;
                    let flow = if v.truth() {
                        self.walk(&v, body)?
                    } else {
                        self.walk(dot, els)?
                    };
                    self.vars.truncate(scope);
                    if !matches!(flow, Flow::Normal) {
                        return Ok(flow);
                    }
                }
                Node::Range {
                    line,
                    pipe,
                    body,
                    els,
                } => {
                    self.line = *line;
                    self.range(dot, pipe, body, els)?;
                }
                Node::Template { line, name, pipe } => {
                    self.line = *line;
                    let data = match pipe {
                        Some(p) => self.pipe(dot, p)?,
                        None => Value::Nil,
                    };
                    let out = self.call_template(name, &data)?;
                    self.out.push_str(&out);
                }
                Node::Break { .. } => return Ok(Flow::Break),
                Node::Continue { .. } => return Ok(Flow::Continue),
            }
        }
        Ok(Flow::Normal)
    }

    /// Runs a `define`d template with `data` as dot and returns its output.
    pub fn call_template(&mut self, name: &str, data: &Value) -> Result<String, TemplateError> {
        let tree = self.tree;
        let Some(body) = tree.defines.get(name) else {
            return Err(self.err(
                &format!("{{{{template {:?}}}}}", name),
                format!("template {name:?} not defined"),
            ));
        };
        if self.depth >= MAX_TEMPLATE_DEPTH {
            return Err(self.err(name, "exceeded maximum template depth"));
        }
        let saved_vars = std::mem::replace(&mut self.vars, vec![("$".to_string(), data.clone())]);
        let saved_out = std::mem::take(&mut self.out);
        self.depth += 1;
        let res = self.walk(data, body);
        self.depth -= 1;
        let out = std::mem::replace(&mut self.out, saved_out);
        self.vars = saved_vars;
        res?;
        Ok(out)
    }

    fn range(
        &mut self,
        dot: &Value,
        pipe: &Pipe,
        body: &[Node],
        els: &[Node],
    ) -> Result<(), TemplateError> {
        let scope = self.vars.len();
        // Evaluate without declaring; declarations are bound per element.
        let undeclared = Pipe {
            decl: Vec::new(),
            assign: false,
            cmds: pipe.cmds.clone(),
        };
        let v = self.pipe(dot, &undeclared)?;
        let items: Vec<(Value, Value)> = match v {
            Value::List(l) => l
                .into_iter()
                .enumerate()
                .map(|(i, e)| (Value::Int(i as i64), e))
                .collect(),
            Value::Map(m) => m.into_iter().map(|(k, e)| (Value::Str(k), e)).collect(),
            Value::Int(n) => (0..n.max(0))
                .map(|i| (Value::Int(i), Value::Int(i)))
                .collect(),
            Value::Nil => Vec::new(),
            other => {
                return Err(self.err(
                    "range",
                    format!("range can't iterate over {}", other.to_go_string()),
                ))
            }
        };
        if items.is_empty() {
            self.walk(dot, els)?;
            self.vars.truncate(scope);
            return Ok(());
        }
        for (key, elem) in items {
            match pipe.decl.len() {
                1 => self.bind(&pipe.decl[0], elem.clone(), pipe.assign),
                2 => {
                    self.bind(&pipe.decl[0], key, pipe.assign);
                    self.bind(&pipe.decl[1], elem.clone(), pipe.assign);
                }
                _ => {}
            }
            let flow = self.walk(&elem, body)?;
            self.vars
                .truncate(scope + if pipe.assign { 0 } else { pipe.decl.len() });
            if matches!(flow, Flow::Break) {
                break;
            }
        }
        self.vars.truncate(scope);
        Ok(())
    }

    fn bind(&mut self, name: &str, v: Value, assign: bool) {
        if assign {
            if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                slot.1 = v;
                return;
            }
        }
        self.vars.push((name.to_string(), v));
    }

    fn print(&mut self, v: &Value) {
        match v {
            Value::Nil => self.out.push_str("<no value>"),
            v => self.out.push_str(&v.to_go_string()),
        }
    }

    fn pipe(&mut self, dot: &Value, pipe: &Pipe) -> Result<Value, TemplateError> {
        let mut val: Option<Value> = None;
        for cmd in &pipe.cmds {
            val = Some(self.cmd(dot, cmd, val)?);
        }
        let v = val.unwrap_or(Value::Nil);
        for name in &pipe.decl {
            self.bind(name, v.clone(), pipe.assign);
        }
        Ok(v)
    }

    fn cmd(&mut self, dot: &Value, cmd: &Cmd, fin: Option<Value>) -> Result<Value, TemplateError> {
        let Some(first) = cmd.args.first() else {
            return Err(self.err("", "empty command"));
        };
        if let Operand::Func(name) = first {
            return self.call(dot, name, &cmd.args[1..], fin);
        }
        if cmd.args.len() > 1 || fin.is_some() {
            return Err(self.err(
                "",
                format!("can't give argument to non-function {}", describe(first)),
            ));
        }
        if matches!(first, Operand::Nil) {
            return Err(self.err("nil", "nil is not a command"));
        }
        self.arg(dot, first)
    }

    fn call(
        &mut self,
        dot: &Value,
        name: &str,
        args: &[Operand],
        fin: Option<Value>,
    ) -> Result<Value, TemplateError> {
        // `and`/`or` evaluate lazily and return the deciding operand.
        if name == "and" || name == "or" {
            let want = name == "or";
            let mut last = Value::Nil;
            let n = args.len() + usize::from(fin.is_some());
            if n == 0 {
                return Err(self.err(
                    name,
                    format!("wrong number of args for {name}: want at least 1 got 0"),
                ));
            }
            for a in args {
                last = self.arg(dot, a)?;
                if last.truth() == want {
                    return Ok(last);
                }
            }
            if let Some(f) = fin {
                last = f;
            }
            return Ok(last);
        }
        let mut vals = Vec::with_capacity(args.len() + 1);
        for a in args {
            vals.push(self.arg(dot, a)?);
        }
        if let Some(f) = fin {
            vals.push(f);
        }
        if name == "tmpl" {
            let Some(Value::Str(tname)) = vals.first().cloned() else {
                return Err(self.err(name, "error calling tmpl: template name must be a string"));
            };
            let data = vals.get(1).cloned().unwrap_or(Value::Nil);
            return Ok(Value::Html(self.call_template(&tname, &data)?));
        }
        funcs::call(name, vals, self.env)
            .map_err(|msg| self.err(name, format!("error calling {name}: {msg}")))
    }

    fn arg(&mut self, dot: &Value, op: &Operand) -> Result<Value, TemplateError> {
        match op {
            Operand::Dot => Ok(dot.clone()),
            Operand::Nil => Ok(Value::Nil),
            Operand::Bool(b) => Ok(Value::Bool(*b)),
            Operand::Int(i) => Ok(Value::Int(*i)),
            Operand::Float(f) => Ok(Value::Float(*f)),
            Operand::Str(s) => Ok(Value::Str(s.clone())),
            Operand::Field(path) => self.fields(dot.clone(), path),
            Operand::Var(name, path) => {
                let v = self
                    .vars
                    .iter()
                    .rev()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
                    .ok_or_else(|| self.err(name, format!("undefined variable: {name}")))?;
                self.fields(v, path)
            }
            Operand::Func(name) => self.call(dot, name, &[], None),
            Operand::Sub(pipe, path) => {
                let scope = self.vars.len();
                let v = self.pipe(dot, pipe)?;
                self.vars.truncate(scope);
                self.fields(v, path)
            }
        }
    }

    fn fields(&self, mut v: Value, path: &[String]) -> Result<Value, TemplateError> {
        for f in path {
            v = match v {
                Value::Map(m) => m.get(f).cloned().unwrap_or(Value::Str(String::new())),
                Value::Struct(tname, fields) => fields
                    .into_iter()
                    .find(|(n, _)| n == f)
                    .map(|(_, v)| v)
                    .ok_or_else(|| {
                        self.err(
                            &format!(".{f}"),
                            format!("can't evaluate field {f} in type {tname}"),
                        )
                    })?,
                Value::Sample(s) => match f.as_str() {
                    "Labels" => {
                        Value::string_map(s.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                    }
                    "Value" => Value::Float(s.value),
                    _ => {
                        return Err(self.err(
                            &format!(".{f}"),
                            format!("can't evaluate field {f} in type *template.sample"),
                        ))
                    }
                },
                Value::Nil => {
                    return Err(self.err(
                        &format!(".{f}"),
                        format!("nil pointer evaluating interface {{}}.{f}"),
                    ))
                }
                other => {
                    return Err(self.err(
                        &format!(".{f}"),
                        format!("can't evaluate field {f} in type {}", other.go_type()),
                    ))
                }
            };
        }
        Ok(v)
    }
}

fn describe(op: &Operand) -> String {
    match op {
        Operand::Dot => ".".into(),
        Operand::Field(p) => format!(".{}", p.join(".")),
        Operand::Var(n, p) if p.is_empty() => n.clone(),
        Operand::Var(n, p) => format!("{n}.{}", p.join(".")),
        Operand::Str(s) => format!("{s:?}"),
        Operand::Int(i) => i.to_string(),
        Operand::Float(f) => f.to_string(),
        Operand::Bool(b) => b.to_string(),
        Operand::Nil => "nil".into(),
        Operand::Func(n) => n.clone(),
        Operand::Sub(..) => "(pipeline)".into(),
    }
}
