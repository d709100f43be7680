//! A Go `text/template`-compatible engine for alert labels and annotations, with
//! Prometheus' template functions. It owns parsing (errors like Go's `template: NAME:LINE:
//! msg`), evaluation over dynamically typed values, and the alert data (`$labels`, `$value`,
//! `$externalLabels`, `$externalURL`). It never runs PromQL itself: the `query` function goes
//! through a caller-supplied [`QueryFn`].

mod exec;
pub mod format;
pub mod funcs;
mod lex;
mod parse;
pub mod value;

use std::collections::BTreeMap;

pub use value::{QuerySample, Value};

/// A template parse or execution error, rendered like Go's text/template.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("template: {name}:{line}: {msg}")]
    Parse {
        name: String,
        line: usize,
        msg: String,
    },
    #[error("template: {name}:{line}: executing {name:?} at <{at}>: {msg}")]
    Exec {
        name: String,
        line: usize,
        at: String,
        msg: String,
    },
}

impl TemplateError {
    fn parse(name: &str, line: usize, msg: impl Into<String>) -> TemplateError {
        TemplateError::Parse {
            name: name.to_string(),
            line,
            msg: msg.into(),
        }
    }

    fn exec(name: &str, line: usize, at: &str, msg: impl Into<String>) -> TemplateError {
        TemplateError::Exec {
            name: name.to_string(),
            line,
            at: at.to_string(),
            msg: msg.into(),
        }
    }
}

/// Runs an instant PromQL query for the `query` template function. Implementations convert
/// a scalar result to one sample with no labels and a string result to one sample whose
/// `__value__` label holds the string, as Prometheus does.
pub trait QueryFn {
    fn query(&self, expr: &str, ts_ms: i64) -> Result<Vec<QuerySample>, String>;
}

/// What functions can see besides the data: evaluation time, external URL, query engine.
#[derive(Clone, Copy, Default)]
pub struct Env<'a> {
    /// Evaluation timestamp (for `query` and `now`).
    pub ts_ms: i64,
    /// The external URL (`externalURL`, `pathPrefix`).
    pub external_url: &'a str,
    pub query: Option<&'a dyn QueryFn>,
}

/// A parsed template.
#[derive(Clone, Debug)]
pub struct Template {
    name: String,
    tree: parse::Tree,
}

impl Template {
    /// Parses `text`; unknown functions and undefined variables are parse errors, as in Go.
    pub fn parse(name: &str, text: &str) -> Result<Template, TemplateError> {
        let tokens = lex::lex(name, text)?;
        let tree = parse::parse(name, tokens, &funcs::is_func)?;
        Ok(Template {
            name: name.to_string(),
            tree,
        })
    }

    /// Executes the template with `data` as dot.
    pub fn execute(&self, data: &Value, env: &Env<'_>) -> Result<String, TemplateError> {
        let mut ex = exec::Exec::new(&self.name, &self.tree, env, data);
        ex.run(data)?;
        Ok(ex.out)
    }
}

/// The data an alert template sees.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AlertData {
    pub labels: BTreeMap<String, String>,
    pub external_labels: BTreeMap<String, String>,
    pub external_url: String,
    pub value: f64,
}

impl AlertData {
    /// The dot value: a struct with `Labels`, `ExternalLabels`, `ExternalURL`, `Value`.
    pub fn to_value(&self) -> Value {
        let map = |m: &BTreeMap<String, String>| {
            Value::string_map(m.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        };
        Value::Struct(
            "template.tmplData",
            vec![
                ("Labels".into(), map(&self.labels)),
                ("ExternalLabels".into(), map(&self.external_labels)),
                ("ExternalURL".into(), Value::Str(self.external_url.clone())),
                ("Value".into(), Value::Float(self.value)),
            ],
        )
    }
}

/// The variable definitions Prometheus puts in front of every alert template.
const ALERT_DEFS: &str = "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}";

/// Parses an alert label/annotation template as the rule checker does
/// (`template: __alert_NAME:1: ...` on failure).
pub fn check_alert_template(alert: &str, text: &str) -> Result<(), TemplateError> {
    Template::parse(&format!("__alert_{alert}"), &format!("{ALERT_DEFS}{text}")).map(|_| ())
}

/// Expands one alert label or annotation template.
pub fn expand_alert(
    alert: &str,
    text: &str,
    data: &AlertData,
    env: &Env<'_>,
) -> Result<String, TemplateError> {
    let t = Template::parse(&format!("__alert_{alert}"), &format!("{ALERT_DEFS}{text}"))?;
    t.execute(&data.to_value(), env)
}

#[cfg(test)]
mod tests;
