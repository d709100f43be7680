//! The Alertmanager API v2 request body (`[{labels, annotations, startsAt, endsAt,
//! generatorURL}]`). Pure functions; never does I/O.

use serde_json::{json, Map, Value as Json};
use vigil_storage::Labels;

use crate::rules::alert::OutgoingAlert;
use crate::rules::eval::format_rfc3339;

fn labels_json(l: &Labels) -> Json {
    Json::Object(
        l.iter()
            .map(|x| (x.name.to_string(), Json::String(x.value.to_string())))
            .collect::<Map<_, _>>(),
    )
}

/// The JSON array posted to `/api/v2/alerts`.
pub fn alerts_payload(alerts: &[OutgoingAlert]) -> Vec<u8> {
    let arr: Vec<Json> = alerts
        .iter()
        .map(|a| {
            json!({
                "labels": labels_json(&a.labels),
                "annotations": labels_json(&a.annotations),
                "startsAt": format_rfc3339(a.starts_at_ms),
                "endsAt": format_rfc3339(a.ends_at_ms),
                "generatorURL": a.generator_url,
            })
        })
        .collect();
    serde_json::to_vec(&Json::Array(arr)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn payload_has_api_v2_fields() {
        let a = OutgoingAlert {
            labels: Labels::from_pairs(&[("alertname", "X"), ("job", "api")]).unwrap(),
            annotations: Labels::from_pairs(&[("summary", "s")]).unwrap(),
            starts_at_ms: 1_767_360_600_000,
            ends_at_ms: 1_767_360_840_000,
            generator_url: "http://vigil:9090/graph?g0.expr=up&g0.tab=1".into(),
        };
        let v: Json = serde_json::from_slice(&alerts_payload(&[a])).unwrap();
        assert_eq!(
            v,
            json!([{"labels":{"alertname":"X","job":"api"},"annotations":{"summary":"s"},
                "startsAt":"2026-01-02T13:30:00Z","endsAt":"2026-01-02T13:34:00Z",
                "generatorURL":"http://vigil:9090/graph?g0.expr=up&g0.tab=1"}])
        );
    }
}
