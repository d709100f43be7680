//! Black-box tests of the Prometheus HTTP API: backfill a data directory with
//! `vigil tsdb create-blocks-from openmetrics`, start the real `vigil` binary on a free port
//! (parsing the bound address from its log), and check status codes, JSON shapes and values
//! of the acceptance checklist in HTTP-API.md §9 with a minimal HTTP/1.1 client. Each item
//! that takes GET+POST is checked both ways with identical results.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;

use serde_json::Value;

/// First sample time of the backfilled data (Unix seconds).
const DATA_START: i64 = 1_724_000_000 - 3600;
/// Last sample time of the backfilled data.
const DATA_END: i64 = 1_724_004_000;
const DATA_STEP: i64 = 15;

/// A running `vigil` with a backfilled data directory; killed on drop.
struct Server {
    vigil: common::RunningVigil,
    addr: String,
    dir: tempfile::TempDir,
}

/// The historic data set (one backfilled block, so background compaction has nothing to
/// merge while the tests run), or only recent samples for federation.
fn openmetrics_input(recent: bool) -> String {
    let mut s = String::new();
    if recent {
        // Within the 5m lookback of "now".
        let now = now_s();
        s.push_str("# TYPE fed gauge\n");
        s.push_str(&format!("fed{{job=\"f\"}} 3 {}\n", now - 60));
        s.push_str(&format!("fed{{job=\"f\"}} 4 {}\n", now - 30));
        s.push_str("# TYPE up gauge\n");
        s.push_str(&format!("up{{job=\"f\"}} 1.5e-07 {}\n", now - 30));
        s.push_str("# EOF\n");
        return s;
    }
    s.push_str("# TYPE up gauge\n# HELP up Whether the target is up.\n");
    for (labels, v) in [
        (r#"env="d",instance="a1",job="a""#, 1),
        (r#"instance="b1",job="b""#, 0),
    ] {
        let mut t = DATA_START;
        while t <= DATA_END {
            s.push_str(&format!("up{{{labels}}} {v} {t}\n"));
            t += DATA_STEP;
        }
    }
    s.push_str("# TYPE some_gauge gauge\n");
    let mut t = DATA_START;
    while t <= DATA_END {
        s.push_str(&format!("some_gauge{{job=\"a\"}} {} {t}\n", (t % 7) as f64));
        t += DATA_STEP;
    }
    s.push_str("# TYPE node_cpu_seconds counter\n");
    let mut t = DATA_START;
    while t <= DATA_END {
        s.push_str(&format!(
            "node_cpu_seconds_total{{cpu=\"0\",job=\"a\"}} {} {t}\n",
            t - DATA_START
        ));
        t += DATA_STEP;
    }
    s.push_str("# TYPE http_requests gauge\n");
    s.push_str(&format!(
        "http_requests{{\"http.status\"=\"200\",job=\"a\"}} 5 {DATA_END}\n"
    ));
    s.push_str(&format!(
        "http_requests{{\"http.status\"=\"500\",job=\"a\"}} 1 {DATA_END}\n"
    ));
    s.push_str("# EOF\n");
    s
}

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn backfill(dir: &Path, recent: bool) {
    let input = dir.join("input.om");
    std::fs::write(&input, openmetrics_input(recent)).unwrap();
    let data = dir.join("data");
    common::run_ok(
        common::vigil()
            .args([
                "tsdb",
                "create-blocks-from",
                "openmetrics",
                "-q",
                "--max-block-duration=1d",
            ])
            .arg(&input)
            .arg(&data),
    );
}

fn start(extra: &[&str]) -> Server {
    start_with(extra, false)
}

fn start_with(extra: &[&str], recent: bool) -> Server {
    let dir = tempfile::tempdir().unwrap();
    backfill(dir.path(), recent);
    let mut args: Vec<String> = vec![
        format!("--storage.tsdb.path={}", dir.path().join("data").display()),
        "--web.listen-address=127.0.0.1:0".to_string(),
        "--storage.tsdb.retention.time=0".to_string(),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    let vigil = common::start_vigil(&args);
    Server {
        addr: vigil.addr.clone(),
        vigil,
        dir,
    }
}

/// A raw HTTP reply.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

impl Server {
    fn request(&self, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        let mut req = format!(
            "{method} {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).unwrap();
        s.write_all(body).unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8(raw[..split].to_vec()).unwrap();
        let mut hl = head.split("\r\n");
        let status: u16 = hl
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers = hl
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        Reply {
            status,
            headers,
            body: raw[split + 4..].to_vec(),
        }
    }

    fn get(&self, path: &str, query: &str) -> Reply {
        let target = if query.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{query}")
        };
        self.request("GET", &target, &[], b"")
    }

    fn post(&self, path: &str, form: &str) -> Reply {
        self.request(
            "POST",
            path,
            &[("Content-Type", "application/x-www-form-urlencoded")],
            form.as_bytes(),
        )
    }

    /// GET with URL parameters and POST with a form body must give the same status and
    /// body; returns the GET reply.
    fn both(&self, path: &str, params: &str) -> Reply {
        let g = self.get(path, params);
        let p = self.post(path, params);
        assert_eq!(g.status, p.status, "GET vs POST status for {path}?{params}");
        if params.contains("stats=") || (!params.contains("time=") && path.ends_with("/query")) {
            // Timings differ between runs, and without `time` both default to "now".
            return g;
        }
        assert_eq!(g.text(), p.text(), "GET vs POST body for {path}?{params}");
        g
    }
}

fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn assert_bad_data(r: &Reply) {
    assert_eq!(r.status, 400, "{}", r.text());
    let j = r.json();
    assert_eq!(j["status"], "error");
    assert_eq!(j["errorType"], "bad_data");
}

fn query(s: &Server, q: &str, extra: &str) -> Reply {
    s.both("/api/v1/query", &format!("query={}&{extra}", enc(q)))
}

fn result_of(r: &Reply) -> Value {
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(j["status"], "success");
    j["data"].clone()
}

#[test]
fn instant_queries_encode_values_and_timestamps() {
    let s = start(&[]);
    // 1. Health check, exact bytes, with both timeout spellings.
    for extra in ["time=4", "time=4&timeout=2m", "time=4&timeout=2m0s"] {
        let r = query(&s, "1+1", extra);
        assert_eq!(
            r.text(),
            r#"{"status":"success","data":{"resultType":"scalar","result":[4,"2"]}}"#
        );
        assert_eq!(r.header("content-type"), Some("application/json"));
    }
    // 6. Instant results keep the evaluation time to the millisecond.
    let d = result_of(&query(&s, "vector(1)", "time=1724000000.123"));
    assert_eq!(d["resultType"], "vector");
    assert!(query(&s, "vector(1)", "time=1724000000.123")
        .text()
        .contains(r#""value":[1724000000.123,"1"]"#));
    assert!(query(&s, "vector(1)", "time=1724000000.123456")
        .text()
        .contains("[1724000000.123,\"1\"]"));
    let before = now_s() as f64;
    let d = result_of(&query(&s, "vector(1)", ""));
    let after = now_s() as f64 + 1.0;
    let t = d["result"][0]["value"][0].as_f64().unwrap();
    assert!(before <= t && t <= after, "{before} <= {t} <= {after}");
    let d = result_of(&query(&s, "up[5m]", "time=1724000000"));
    assert_eq!(d["resultType"], "matrix");
    assert_eq!(d["result"].as_array().unwrap().len(), 2);
    assert_eq!(d["result"][0]["values"].as_array().unwrap().len(), 20);
    let d = result_of(&query(&s, "\"foo\"", "time=10"));
    assert_eq!(
        d,
        serde_json::json!({"resultType":"string","result":[10,"foo"]})
    );
    // 7. Specials and exponent rules.
    for (q, want) in [("0/0", "NaN"), ("1/0", "+Inf"), ("-1/0", "-Inf")] {
        let d = result_of(&query(&s, q, "time=1"));
        assert_eq!(d["result"][1], want, "{q}");
    }
    let d = result_of(&query(&s, "vector(1e-7)", "time=1"));
    assert_eq!(d["result"][0]["value"][1], "1e-07");
    let d = result_of(&query(&s, "1e-7", "time=1"));
    assert_eq!(d["result"][1], "0.0000001");
    let d = result_of(&query(&s, "123456789012", "time=1"));
    assert_eq!(d["result"][1], "123456789012");
    let d = result_of(&query(&s, "vector(1e21)", "time=1"));
    assert_eq!(d["result"][0]["value"][1], "1e+21");
    // 8. Empty results are [].
    let r = query(&s, "no_such_metric", "time=1724000000");
    assert!(r.text().contains(r#""result":[]"#), "{}", r.text());
    // 17. Filters and integer times.
    let d = result_of(&query(
        &s,
        r#"up{job="a",instance=~"a.*",env!="p"}"#,
        "time=1724000000",
    ));
    assert_eq!(d["result"].as_array().unwrap().len(), 1);
    assert_eq!(d["result"][0]["metric"]["instance"], "a1");
    assert_eq!(
        d["result"][0]["value"],
        serde_json::json!([1724000000, "1"])
    );
    // 10. Annotations travel beside data.
    let r = query(&s, "rate(some_gauge[5m])", "time=1724000000");
    let j = r.json();
    assert_eq!(j["status"], "success");
    let infos = j["infos"].as_array().expect("infos array");
    assert!(infos.iter().all(Value::is_string) && !infos.is_empty());
    // Query `limit` cuts the result with a warning.
    let r = query(&s, "up", "time=1724000000&limit=1");
    let j = r.json();
    assert_eq!(j["data"]["result"].as_array().unwrap().len(), 1);
    assert_eq!(j["warnings"][0], "results truncated due to limit");
    // stats=true adds timings and samples.
    let d = result_of(&query(&s, "up", "time=1724000000&stats=true"));
    assert!(d["stats"]["timings"]["evalTotalTime"].is_number());
    assert!(d["stats"]["samples"]["totalQueryableSamples"].is_u64());
}

#[test]
fn range_queries_follow_the_grid_and_limits() {
    let s = start(&[]);
    let range =
        |q: &str, extra: &str| s.both("/api/v1/query_range", &format!("query={}&{extra}", enc(q)));
    // 3. 241 points on the 15s grid.
    let d = result_of(&range(
        "vector(1)",
        "start=1724000400&end=1724004000&step=15",
    ));
    assert_eq!(d["resultType"], "matrix");
    let pts = d["result"][0]["values"].as_array().unwrap();
    assert_eq!(pts.len(), 241);
    assert_eq!(pts[0][0], 1724000400);
    assert_eq!(pts[240][0], 1724004000);
    // 4. Fractional times and steps, units, RFC3339.
    let d = result_of(&range(
        "vector(1)",
        "start=1724000000.5&end=1724000010.5&step=0.5",
    ));
    let pts = d["result"][0]["values"].as_array().unwrap();
    assert_eq!(pts.len(), 21);
    assert_eq!(pts[0][0].as_f64(), Some(1724000000.5));
    for extra in [
        "start=1724000000&end=1724003600&step=15s",
        "start=1724000000&end=1724003600&step=1m",
        "start=2024-08-18T16:53:20Z&end=1724003600&step=1m",
    ] {
        result_of(&range("vector(1)", extra));
    }
    // 5. Step limits.
    assert_bad_data(&range("vector(1)", "start=0&end=10&step=0"));
    assert_bad_data(&range("vector(1)", "start=0&end=11001&step=1"));
    let d = result_of(&range("vector(1)", "start=0&end=11000&step=1"));
    assert_eq!(d["result"][0]["values"].as_array().unwrap().len(), 11001);
    let r = range("vector(1)", "start=10&end=0&step=1");
    assert_bad_data(&r);
    assert_eq!(
        r.json()["error"],
        "invalid parameter \"end\": end timestamp must not be before start time"
    );
    // A scalar is one series with empty labels.
    let d = result_of(&range("2", "start=0&end=30&step=15"));
    assert_eq!(d["result"][0]["metric"], serde_json::json!({}));
    assert_eq!(d["result"][0]["values"][2], serde_json::json!([30, "2"]));
    // Stored data, sorted by labels, timestamps never in exponent form.
    let r = range("up", "start=1724000000&end=1724000600&step=60");
    let d = result_of(&r);
    assert_eq!(d["result"][0]["metric"]["job"], "a");
    assert_eq!(d["result"][1]["metric"]["job"], "b");
    assert!(!r.text().contains("e+"));
    // 18. 600s at step 1: 601 points, byte-identical on repeat.
    let a = range("up", "start=1724000000&end=1724000600&step=1");
    let b = range("up", "start=1724000000&end=1724000600&step=1");
    assert_eq!(
        result_of(&a)["result"][0]["values"]
            .as_array()
            .unwrap()
            .len(),
        601
    );
    assert_eq!(a.body, b.body);
}

#[test]
fn query_errors_have_types_and_statuses() {
    let s = start(&[]);
    // 9. Parse error, execution error, timeout, bad parameters.
    let r = query(&s, "sum(", "time=1");
    assert_bad_data(&r);
    assert!(r.json()["error"]
        .as_str()
        .unwrap()
        .starts_with("invalid parameter \"query\": 1:5: parse error"));
    let r = query(
        &s,
        r#"label_replace(vector(1),"a","x","","") + on() (vector(1) or label_replace(vector(2),"b","y","",""))"#,
        "time=1",
    );
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(r.json()["errorType"], "execution");
    let r = s.both(
        "/api/v1/query_range",
        &format!(
            "query={}&start=1724000000&end=1724010000&step=1&timeout=1ms",
            enc("max_over_time(sum(up)[1h:1s])")
        ),
    );
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["errorType"], "timeout");
    let r = query(&s, "1", "time=abc");
    assert_bad_data(&r);
    assert_eq!(
        r.json()["error"],
        "invalid parameter \"time\": Invalid time value for 'time': cannot parse \"abc\" to a valid timestamp"
    );
    assert_bad_data(&query(&s, "1", "time=1&timeout=abc"));
    // Wrong methods are 405 with a JSON body, unknown paths 404.
    let r = s.request("DELETE", "/api/v1/query?query=1", &[], b"");
    assert_eq!(r.status, 405);
    assert_eq!(r.json()["status"], "error");
    assert_eq!(s.get("/api/v1/nope", "").status, 404);
    // 11. Grafana's exemplar probe (milliseconds as seconds: far future, still valid).
    let r = s.both(
        "/api/v1/query_exemplars",
        "query=test&start=1724000000000&end=1724001800000",
    );
    assert_eq!(r.text(), r#"{"status":"success","data":[]}"#);
    assert_bad_data(&s.both("/api/v1/query_exemplars", "query=sum("));
    // 23. format_query.
    let r = s.both(
        "/api/v1/format_query",
        &format!("query={}", enc("sum(rate(x[5m]))by(job)")),
    );
    assert_eq!(
        r.text(),
        r#"{"status":"success","data":"sum by (job) (rate(x[5m]))"}"#
    );
    assert_bad_data(&s.both("/api/v1/format_query", "query=sum("));
    // parse_query: Prometheus 3's JSON AST.
    let r = s.both(
        "/api/v1/parse_query",
        &format!(
            "query={}",
            enc("sum by (job) (rate(x[5m] offset 1m)) > bool 2")
        ),
    );
    let ast = result_of(&r);
    assert_eq!(ast["type"], "binaryExpr");
    assert_eq!(ast["op"], ">");
    assert_eq!(ast["bool"], true);
    assert_eq!(ast["matching"], Value::Null);
    assert_eq!(
        ast["rhs"],
        serde_json::json!({"type":"numberLiteral","val":"2"})
    );
    let agg = &ast["lhs"];
    assert_eq!(agg["type"], "aggregation");
    assert_eq!(agg["op"], "sum");
    assert_eq!(agg["grouping"], serde_json::json!(["job"]));
    assert_eq!(agg["param"], Value::Null);
    let call = &agg["expr"];
    assert_eq!(call["func"]["name"], "rate");
    assert_eq!(call["func"]["argTypes"], serde_json::json!(["matrix"]));
    let sel = &call["args"][0];
    assert_eq!(sel["type"], "matrixSelector");
    assert_eq!(sel["range"], 300_000);
    assert_eq!(sel["offset"], 60_000);
    assert_eq!(
        sel["matchers"],
        serde_json::json!([{"type":"=","name":"__name__","value":"x"}])
    );
    assert_bad_data(&s.both("/api/v1/parse_query", "query=sum("));
}

#[test]
fn labels_series_and_metadata() {
    let s = start(&[]);
    // 12. Label names: sorted, union of selectors, limit with warning.
    let d = result_of(&s.both(
        "/api/v1/labels",
        "start=1724000000&end=1724003600&limit=40000&match[]=up",
    ));
    assert_eq!(d, serde_json::json!(["__name__", "env", "instance", "job"]));
    let d = result_of(&s.both(
        "/api/v1/labels",
        &format!(
            "match[]=some_gauge&match[]={}",
            enc("node_cpu_seconds_total")
        ),
    ));
    assert_eq!(d, serde_json::json!(["__name__", "cpu", "job"]));
    let r = s.both("/api/v1/labels", "match[]=up&limit=1");
    let j = r.json();
    assert_eq!(j["data"], serde_json::json!(["__name__"]));
    assert_eq!(
        j["warnings"],
        serde_json::json!(["results truncated due to limit"])
    );
    let all = result_of(&s.both("/api/v1/labels", ""));
    assert!(all.as_array().unwrap().contains(&"http.status".into()));
    // 8. Empty label list is [].
    let r = s.both("/api/v1/labels", "match[]=no_such_metric");
    assert_eq!(r.text(), r#"{"status":"success","data":[]}"#);
    // 13. Label values (GET only).
    let r = s.get(
        "/api/v1/label/__name__/values",
        &format!("match[]={}&limit=1000", enc(r#"{__name__=~".*cpu.*"}"#)),
    );
    assert_eq!(result_of(&r), serde_json::json!(["node_cpu_seconds_total"]));
    let d = result_of(&s.get("/api/v1/label/__name__/values", ""));
    assert_eq!(
        d,
        serde_json::json!([
            "http_requests",
            "node_cpu_seconds_total",
            "some_gauge",
            "up"
        ])
    );
    let d = result_of(&s.get(
        "/api/v1/label/job/values",
        &format!("match[]={}", enc(r#"up{instance=~"a.*"}"#)),
    ));
    assert_eq!(d, serde_json::json!(["a"]));
    let d = result_of(&s.get("/api/v1/label/U__http_2e_status/values", ""));
    assert_eq!(d, serde_json::json!(["200", "500"]));
    assert_eq!(
        result_of(&s.get("/api/v1/label/nope/values", "")),
        serde_json::json!([])
    );
    assert_bad_data(&s.get("/api/v1/label/U__bad_zz_/values", ""));
    assert_eq!(s.post("/api/v1/label/job/values", "").status, 405);
    // 14. Series.
    let d = result_of(&s.both(
        "/api/v1/series",
        &format!("match[]={}&limit=40000", enc(r#"{__name__!=""}"#)),
    ));
    assert_eq!(d.as_array().unwrap().len(), 6);
    assert!(d
        .as_array()
        .unwrap()
        .contains(&serde_json::json!({"__name__":"up","env":"d","instance":"a1","job":"a"})));
    let r = s.both("/api/v1/series", "");
    assert_bad_data(&r);
    assert_eq!(r.json()["error"], "no match[] parameter provided");
    let r = s.both(
        "/api/v1/series",
        &format!("match[]={}", enc(r#"{__name__=~".*"}"#)),
    );
    assert_bad_data(&r);
    assert_eq!(
        r.json()["error"],
        "match[] must contain at least one non-empty matcher"
    );
    // 21. promtool's far-away defaults.
    let now = now_s();
    let d = result_of(&s.both(
        "/api/v1/series",
        &format!(
            "match[]=up&start={}&end={}",
            now - 9999 * 3600,
            now + 9999 * 3600
        ),
    ));
    assert!(d.is_array());
    let d = result_of(&s.both("/api/v1/series", "match[]=up&start=-1e12&end=1e12"));
    assert_eq!(d.as_array().unwrap().len(), 2);
    // Series outside the range are not returned.
    let d = result_of(&s.both("/api/v1/series", "match[]=up&start=0&end=1000"));
    assert_eq!(d, serde_json::json!([]));
    // 15. Metadata: an object (backfilled blocks carry none).
    let d = result_of(&s.get("/api/v1/metadata", "limit=40000"));
    assert!(d.is_object());
    assert_eq!(s.post("/api/v1/metadata", "").status, 405);
}

#[test]
fn status_rules_targets_and_robustness() {
    let s = start(&[]);
    // 2. buildinfo and 405s.
    let d = result_of(&s.get("/api/v1/status/buildinfo", ""));
    let o = d.as_object().unwrap();
    assert_eq!(o.len(), 6);
    assert!(o.values().all(Value::is_string));
    assert!(!o.contains_key("features"));
    let v: Vec<u32> = d["version"]
        .as_str()
        .unwrap()
        .split('.')
        .map(|p| p.parse().unwrap())
        .collect();
    assert!(v >= vec![2, 24, 0]);
    for path in [
        "/api/v1/status/buildinfo",
        "/api/v1/label/x/values",
        "/api/v1/metadata",
        "/api/v1/rules",
    ] {
        assert_eq!(s.post(path, "").status, 405, "{path}");
    }
    // 16. Rules and alerts with nothing loaded.
    for q in ["", "type=alert&rule_group[]=x&file[]=y"] {
        assert_eq!(
            s.get("/api/v1/rules", q).text(),
            r#"{"status":"success","data":{"groups":[]}}"#
        );
    }
    assert_eq!(
        s.get("/api/v1/alerts", "").text(),
        r#"{"status":"success","data":{"alerts":[]}}"#
    );
    assert_bad_data(&s.get("/api/v1/rules", "type=bogus"));
    // 24. Status pages.
    assert_bad_data(&s.get("/api/v1/status/tsdb", "limit=0"));
    let d = result_of(&s.get("/api/v1/status/tsdb", ""));
    assert_eq!(d.as_object().unwrap().len(), 5);
    for k in [
        "numSeries",
        "numLabelPairs",
        "chunkCount",
        "minTime",
        "maxTime",
    ] {
        assert!(
            d["headStats"][k].is_i64() || d["headStats"][k].is_u64(),
            "{k}"
        );
    }
    let d = result_of(&s.get("/api/v1/status/walreplay", ""));
    for k in ["min", "max", "current"] {
        assert!(d[k].is_u64(), "{k}");
    }
    assert_eq!(d["current"], d["max"]);
    let d = result_of(&s.get("/api/v1/status/flags", ""));
    assert!(d.as_object().unwrap().values().all(Value::is_string));
    assert_eq!(d["query.timeout"], "2m");
    assert_eq!(d["query.lookback-delta"], "5m");
    let d = result_of(&s.get("/api/v1/status/config", ""));
    assert!(d["yaml"].as_str().unwrap().contains("scrape_configs"));
    let d = result_of(&s.get("/api/v1/status/runtimeinfo", ""));
    for k in [
        "startTime",
        "CWD",
        "hostname",
        "serverTime",
        "reloadConfigSuccess",
        "lastConfigTime",
        "corruptionCount",
        "goroutineCount",
        "GOMAXPROCS",
        "GOMEMLIMIT",
        "GOGC",
        "GODEBUG",
        "storageRetention",
    ] {
        assert!(d.get(k).is_some(), "{k}");
    }
    let d = result_of(&s.get("/api/v1/targets", "state=active"));
    assert!(d["activeTargets"].is_array());
    assert!(d["droppedTargets"].is_array());
    // The embedded default configuration scrapes Vigil itself as job "vigil".
    assert_eq!(
        result_of(&s.get("/api/v1/scrape_pools", "")),
        serde_json::json!({"scrapePools":["vigil"]})
    );
    assert_eq!(
        result_of(&s.get("/api/v1/alertmanagers", "")),
        serde_json::json!({"activeAlertmanagers":[],"droppedAlertmanagers":[]})
    );
    // 19. Unknown parameters ignored; first value wins; big bodies; gzip.
    let d = result_of(&query(
        &s,
        "vector(1)",
        "time=1&time=2&dedup=false&partial_response=true",
    ));
    assert_eq!(d["result"][0]["value"][0], 1);
    let mut big = format!("query={}&time=5&pad=", enc("vector(1)"));
    big.push_str(&"x".repeat(1 << 20));
    let d = result_of(&s.post("/api/v1/query", &big));
    assert_eq!(d["result"][0]["value"][0], 5);
    // POST body wins over URL parameters.
    let r = s.request(
        "POST",
        "/api/v1/query?query=vector(2)&time=7",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"time=8",
    );
    assert_eq!(
        result_of(&r)["result"][0]["value"],
        serde_json::json!([8, "2"])
    );
    let r = s.request(
        "GET",
        "/api/v1/query_range?query=up&start=1724000000&end=1724003600&step=15",
        &[("Accept-Encoding", "gzip")],
        b"",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    let mut plain = String::new();
    flate2::read::GzDecoder::new(&r.body[..])
        .read_to_string(&mut plain)
        .unwrap();
    let j: Value = serde_json::from_str(&plain).unwrap();
    assert_eq!(j["data"]["result"].as_array().unwrap().len(), 2);
    let r = s.get(
        "/api/v1/query_range",
        "query=up&start=1724000000&end=1724003600&step=15",
    );
    assert_eq!(r.header("content-encoding"), None);
    // 25. Lifecycle off: healthy/ready fine, reload forbidden, GET not allowed.
    assert_eq!(s.get("/-/healthy", "").status, 200);
    assert_eq!(s.get("/-/ready", "").status, 200);
    assert_eq!(s.get("/-/reload", "").status, 405);
    let r = s.post("/-/reload", "");
    assert_eq!(r.status, 403);
    assert_eq!(r.text(), "Lifecycle API is not enabled.");
    assert_eq!(s.post("/-/quit", "").status, 403);
    // Admin API off.
    let r = s.post("/api/v1/admin/tsdb/snapshot", "");
    assert_eq!(r.status, 500);
    assert_eq!(r.json()["errorType"], "unavailable");
    assert_eq!(r.json()["error"], "admin APIs disabled");
}

#[test]
fn federation_serves_newest_samples_as_text() {
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = cfg_dir.path().join("prometheus.yml");
    std::fs::write(
        &cfg,
        "global:\n  external_labels:\n    region: eu\n    job: ignored\nremote_write:\n  - url: http://x\n    basic_auth:\n      username: u\n      password: hunter2\n",
    )
    .unwrap();
    let s = start_with(&[&format!("--config.file={}", cfg.display())], true);
    let yaml = result_of(&s.get("/api/v1/status/config", ""))["yaml"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        yaml.contains("region: eu") && yaml.contains("<secret>"),
        "{yaml}"
    );
    assert!(!yaml.contains("hunter2"));
    // 29. Federation.
    let r = s.get("/federate", "match[]=fed");
    assert_eq!(r.status, 200);
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let body = r.text();
    let mut lines = body.lines();
    assert_eq!(lines.next(), Some("# TYPE fed untyped"));
    let sample = lines.next().unwrap();
    // External labels are added where absent; the series' own `job` wins.
    assert!(
        sample.starts_with("fed{job=\"f\",region=\"eu\"} 4 "),
        "{sample}"
    );
    let ts: i64 = sample.rsplit(' ').next().unwrap().parse().unwrap();
    assert_eq!(ts % 1000, 0);
    assert!(ts > 1_000_000_000_000, "timestamp in milliseconds: {ts}");
    assert_eq!(lines.next(), None);
    let r = s.get("/federate", "match[]=fed&match[]=up");
    let body = r.text();
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines.len(), 4, "{body}");
    assert_eq!(lines[2], "# TYPE up untyped");
    assert!(
        lines[3].starts_with("up{job=\"f\",region=\"eu\"} 1.5e-07 "),
        "{body}"
    );
    let r = s.get("/federate", "");
    assert_eq!((r.status, r.text().as_str()), (200, ""));
    assert_eq!(s.get("/federate", "match[]=sum(").status, 400);
    assert_eq!(s.post("/federate", "match[]=fed").status, 405);
}

#[test]
fn admin_and_lifecycle_when_enabled() {
    let s = start(&["--web.enable-admin-api", "--web.enable-lifecycle"]);
    // Snapshot: every block hard-linked under snapshots/<name>/.
    let r = s.post("/api/v1/admin/tsdb/snapshot", "");
    let name = result_of(&r)["name"].as_str().unwrap().to_string();
    assert_eq!(name.len(), "20260102T133700Z-a1b2c3d4e5f67890".len());
    let snap = s.dir.path().join("data/snapshots").join(&name);
    let blocks: Vec<_> = std::fs::read_dir(&snap).unwrap().collect();
    let data_blocks = std::fs::read_dir(s.dir.path().join("data"))
        .unwrap()
        .filter(|e| {
            let e = e.as_ref().unwrap();
            e.path().join("meta.json").exists()
        })
        .count();
    assert!(data_blocks > 0);
    assert_eq!(blocks.len(), data_blocks);
    common::ensure_wal_dir(&snap);
    let listed = common::run_ok(common::vigil().args(["tsdb", "list"]).arg(&snap));
    assert!(listed.lines().count() > data_blocks, "{listed}");
    // Delete series, then they are gone.
    let r = s.post("/api/v1/admin/tsdb/delete_series", "match[]=some_gauge");
    assert_eq!(r.status, 204, "{}", r.text());
    assert!(r.body.is_empty());
    let d = result_of(&s.both("/api/v1/series", "match[]=some_gauge"));
    assert_eq!(d, serde_json::json!([]));
    assert_bad_data(&s.post("/api/v1/admin/tsdb/delete_series", ""));
    let r = s.request("PUT", "/api/v1/admin/tsdb/clean_tombstones", &[], b"");
    assert_eq!(r.status, 204, "{}", r.text());
    let d = result_of(&s.both("/api/v1/series", "match[]=some_gauge"));
    assert_eq!(d, serde_json::json!([]));
    // The backfilled `up` series; not the server's own scrape of its embedded default
    // config (job "vigil"), which may or may not have run yet.
    let d = result_of(&s.both(
        "/api/v1/series",
        &format!("match[]={}", enc(r#"up{job!="vigil"}"#)),
    ));
    assert_eq!(d.as_array().unwrap().len(), 2);
    assert_eq!(s.get("/api/v1/admin/tsdb/snapshot", "").status, 405);
    // Lifecycle: reload succeeds; quit stops the server.
    assert_eq!(s.post("/-/reload", "").status, 200);
    assert_eq!(s.request("PUT", "/-/reload", &[], b"").status, 200);
    assert_eq!(s.get("/-/quit", "").status, 405);
    assert_eq!(s.post("/-/quit", "").status, 200);
    let mut s = s;
    let status = s.vigil.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

#[test]
fn promtool_queries_succeed() {
    let Some(promtool) = common::interop_bin("promtool") else {
        return;
    };
    let s = start(&[]);
    let url = format!("http://{}", s.addr);
    // 22. promtool's query commands exit 0 and print what the API returned.
    let out = common::run_ok(std::process::Command::new(&promtool).args([
        "query",
        "instant",
        "--time=1724000000",
        &url,
        "up",
    ]));
    assert!(
        out.contains("up{env=\"d\", instance=\"a1\", job=\"a\"} => 1 @["),
        "{out}"
    );
    let out = common::run_ok(std::process::Command::new(&promtool).args([
        "query",
        "range",
        "--start=1724000000",
        "--end=1724000600",
        "--step=15s",
        &url,
        "rate(node_cpu_seconds_total[5m])",
    ]));
    assert!(out.contains("{cpu=\"0\", job=\"a\"} =>"), "{out}");
    let out = common::run_ok(std::process::Command::new(&promtool).args([
        "query",
        "series",
        "--start=1724000000",
        "--end=1724003600",
        "--match=up",
        &url,
    ]));
    assert_eq!(out.lines().count(), 2, "{out}");
    let out = common::run_ok(std::process::Command::new(&promtool).args([
        "query",
        "labels",
        "--start=1724000000",
        "--end=1724003600",
        &url,
        "job",
    ]));
    assert_eq!(out.lines().collect::<Vec<_>>(), vec!["a", "b"], "{out}");
    // With promtool's own far-away defaults the commands still succeed.
    common::run_ok(std::process::Command::new(&promtool).args(["query", "instant", &url, "up"]));
    common::run_ok(std::process::Command::new(&promtool).args([
        "query",
        "series",
        "--match=up",
        &url,
    ]));
}

/// Value of the unlabelled metric `name` on `/metrics`.
fn metric_value(s: &Server, name: &str) -> f64 {
    let text = s.get("/metrics", "").text();
    let prefix = format!("{name} ");
    text.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
}

/// Polls (bounded) until `cond` holds.
fn poll_until(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..300 {
        if cond() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

/// A client that gives up (closes its connection) stops its query, as Prometheus' Go server
/// cancels the request context: the engine ends with `canceled` instead of running to the
/// 2m default timeout.
#[test]
fn a_query_stops_when_its_client_goes_away() {
    let s = start(&[]);
    let canceled = |s: &Server| metric_value(s, "vigil_api_queries_canceled_total");
    let running = |s: &Server| metric_value(s, "prometheus_engine_queries");
    assert_eq!(canceled(&s), 0.0);
    // Far longer than the wait below: a quantile over 2.6M points at each of 361 steps.
    let slow = enc("quantile_over_time(0.5, vector(time())[30d:1s])");
    let mut c = TcpStream::connect(&s.addr).unwrap();
    write!(
        c,
        "GET /api/v1/query_range?query={slow}&start=1724000000&end=1724003600&step=10 HTTP/1.1\r\nHost: {}\r\n\r\n",
        s.addr
    )
    .unwrap();
    c.flush().unwrap();
    poll_until("the query to run", || running(&s) >= 1.0);
    drop(c);
    poll_until("the query to be canceled", || canceled(&s) >= 1.0);
    poll_until("no query running", || running(&s) == 0.0);
    // The server goes on answering.
    assert_eq!(query(&s, "1", "time=1").status, 200);
}
