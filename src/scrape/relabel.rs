//! Applying relabel rules (`relabel_configs`, `metric_relabel_configs`) to a label set, with
//! Prometheus' semantics for every action: replace, keep, drop, keepequal, dropequal,
//! hashmod, labelmap, labeldrop, labelkeep, lowercase and uppercase. The rules arrive already
//! validated from `config::relabel`; this module never parses configuration and never
//! allocates when a rule does not change anything.

use vigil_storage::{Labels, LabelsBuilder};

use super::md5;
use crate::config::is_valid_label_name;
use crate::config::relabel::{Action, RelabelConfig};

/// Applies `rules` in order to `lb`. Returns false when a rule drops the label set.
pub fn process_builder(lb: &mut LabelsBuilder, rules: &[RelabelConfig]) -> bool {
    let mut val = String::new();
    for rule in rules {
        val.clear();
        for (i, name) in rule.source_labels.iter().enumerate() {
            if i > 0 {
                val.push_str(&rule.separator);
            }
            val.push_str(lb.get(name).unwrap_or_default());
        }
        let re = rule.regex.anchored();
        match rule.action {
            Action::Drop => {
                if re.is_match(&val) {
                    return false;
                }
            }
            Action::Keep => {
                if !re.is_match(&val) {
                    return false;
                }
            }
            Action::DropEqual => {
                if lb.get(&rule.target_label).unwrap_or_default() == val {
                    return false;
                }
            }
            Action::KeepEqual => {
                if lb.get(&rule.target_label).unwrap_or_default() != val {
                    return false;
                }
            }
            Action::Replace => {
                let Some(caps) = re.captures(&val) else {
                    continue;
                };
                let mut target = String::new();
                caps.expand(&rule.target_label, &mut target);
                if !is_valid_label_name(&target) {
                    continue;
                }
                let mut res = String::new();
                caps.expand(&rule.replacement, &mut res);
                if res.is_empty() {
                    lb.del(&target);
                } else {
                    lb.set(&target, &res);
                }
            }
            Action::Lowercase => {
                lb.set(&rule.target_label, &val.to_lowercase());
            }
            Action::Uppercase => {
                lb.set(&rule.target_label, &val.to_uppercase());
            }
            Action::HashMod => {
                let d = md5::digest(val.as_bytes());
                let mut tail = [0u8; 8];
                tail.copy_from_slice(&d[8..]);
                let m = u64::from_be_bytes(tail) % rule.modulus.max(1);
                lb.set(&rule.target_label, &m.to_string());
            }
            Action::LabelMap => {
                let current = lb.build();
                for l in current.iter() {
                    if let Some(caps) = re.captures(&l.name) {
                        let mut name = String::new();
                        caps.expand(&rule.replacement, &mut name);
                        lb.set(&name, &l.value);
                    }
                }
            }
            Action::LabelDrop => {
                lb.retain(|l| !re.is_match(&l.name));
            }
            Action::LabelKeep => {
                lb.retain(|l| re.is_match(&l.name));
            }
        }
    }
    true
}

/// Applies `rules` to `labels`; `None` when the set is dropped (or ends up empty).
pub fn process(labels: &Labels, rules: &[RelabelConfig]) -> Option<Labels> {
    let mut lb = LabelsBuilder::from(labels);
    if !process_builder(&mut lb, rules) {
        return None;
    }
    let out = lb.build();
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn rules(yaml: &str) -> Vec<RelabelConfig> {
        let r: Vec<RelabelConfig> = serde_yaml::from_str(yaml).unwrap();
        for c in &r {
            c.validate().unwrap();
        }
        r
    }

    fn ls(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs).unwrap()
    }

    fn run(pairs: &[(&str, &str)], yaml: &str) -> Option<Labels> {
        process(&ls(pairs), &rules(yaml))
    }

    #[test]
    fn replace_with_captures_and_separator() {
        let out = run(
            &[("a", "foo"), ("b", "bar")],
            "- source_labels: [a, b]\n  separator: '-'\n  regex: '(f.*)-(b.*)'\n  target_label: c\n  replacement: '${2}_$1'",
        )
        .unwrap();
        assert_eq!(out.get("c"), Some("bar_foo"));
        // No match: unchanged.
        let out = run(
            &[("a", "x")],
            "- source_labels: [a]\n  regex: 'y'\n  target_label: c",
        )
        .unwrap();
        assert_eq!(out, ls(&[("a", "x")]));
    }

    #[test]
    fn replace_with_empty_result_deletes_and_templated_target() {
        let out = run(
            &[("a", "foo"), ("c", "old")],
            "- source_labels: [b]\n  target_label: c",
        )
        .unwrap();
        assert_eq!(out.get("c"), None, "empty replacement deletes the target");
        let out = run(
            &[("a", "foo")],
            "- source_labels: [a]\n  regex: '(.*)'\n  target_label: 'x_${1}'\n  replacement: v",
        )
        .unwrap();
        assert_eq!(out.get("x_foo"), Some("v"));
        // A target that expands to an invalid name is skipped.
        let out = run(
            &[("a", "1-2")],
            "- source_labels: [a]\n  target_label: '${1}'\n  replacement: v",
        )
        .unwrap();
        assert_eq!(out, ls(&[("a", "1-2")]));
    }

    #[test]
    fn replace_regex_is_anchored_and_dot_matches_newline() {
        let out = run(
            &[("a", "xfoox")],
            "- source_labels: [a]\n  regex: 'foo'\n  target_label: b\n  replacement: hit",
        )
        .unwrap();
        assert_eq!(out.get("b"), None);
        let out = run(
            &[("a", "x\ny")],
            "- source_labels: [a]\n  regex: 'x.y'\n  target_label: b\n  replacement: hit",
        )
        .unwrap();
        assert_eq!(out.get("b"), Some("hit"));
    }

    #[test]
    fn keep_and_drop() {
        let keep = "- source_labels: [a]\n  regex: 'fo+'\n  action: keep";
        assert!(run(&[("a", "foo")], keep).is_some());
        assert!(run(&[("a", "bar")], keep).is_none());
        assert!(
            run(&[("b", "x")], keep).is_none(),
            "missing label is the empty string"
        );
        let drop = "- source_labels: [a]\n  regex: 'fo+'\n  action: drop";
        assert!(run(&[("a", "foo")], drop).is_none());
        assert!(run(&[("a", "bar")], drop).is_some());
    }

    #[test]
    fn keepequal_and_dropequal() {
        let keq = "- source_labels: [a]\n  target_label: b\n  action: keepequal";
        assert!(run(&[("a", "x"), ("b", "x")], keq).is_some());
        assert!(run(&[("a", "x"), ("b", "y")], keq).is_none());
        let deq = "- source_labels: [a]\n  target_label: b\n  action: dropequal";
        assert!(run(&[("a", "x"), ("b", "x")], deq).is_none());
        assert!(run(&[("a", "x"), ("b", "y")], deq).is_some());
    }

    #[test]
    fn hashmod_matches_prometheus() {
        // md5("foo") = acbd18db4cc2f85cedef654fccc4a4d8; last 8 bytes big-endian
        // 0xedef654fccc4a4d8 = 17145033699835028696; mod 1000 = 696.
        let out = run(
            &[("a", "foo")],
            "- source_labels: [a]\n  modulus: 1000\n  target_label: shard\n  action: hashmod",
        )
        .unwrap();
        assert_eq!(out.get("shard"), Some("696"));
    }

    #[test]
    fn labelmap_copies_matching_names() {
        let out = run(
            &[("__meta_x", "1"), ("__meta_y", "2"), ("keep", "k")],
            "- regex: '__meta_(.+)'\n  action: labelmap",
        )
        .unwrap();
        assert_eq!(out.get("x"), Some("1"));
        assert_eq!(out.get("y"), Some("2"));
        assert_eq!(out.get("__meta_x"), Some("1"), "labelmap copies, not moves");
        let out = run(
            &[("__meta_x", "1")],
            "- regex: '__meta_(.+)'\n  replacement: 'm_${1}'\n  action: labelmap",
        )
        .unwrap();
        assert_eq!(out.get("m_x"), Some("1"));
    }

    #[test]
    fn labeldrop_and_labelkeep() {
        let out = run(
            &[("a1", "x"), ("a2", "y"), ("b", "z")],
            "- regex: 'a.'\n  action: labeldrop",
        )
        .unwrap();
        assert_eq!(out, ls(&[("b", "z")]));
        let out = run(
            &[("a1", "x"), ("a2", "y"), ("b", "z")],
            "- regex: 'a.'\n  action: labelkeep",
        )
        .unwrap();
        assert_eq!(out, ls(&[("a1", "x"), ("a2", "y")]));
        assert!(
            run(&[("b", "z")], "- regex: 'a.'\n  action: labelkeep").is_none(),
            "a set left empty is dropped"
        );
    }

    #[test]
    fn lowercase_and_uppercase() {
        let out = run(
            &[("a", "FoO"), ("b", "Bar")],
            "- source_labels: [a, b]\n  target_label: lo\n  action: lowercase\n- source_labels: [a]\n  target_label: up\n  action: uppercase",
        )
        .unwrap();
        assert_eq!(out.get("lo"), Some("foo;bar"));
        assert_eq!(out.get("up"), Some("FOO"));
    }

    #[test]
    fn rules_apply_in_order() {
        let out = run(
            &[("a", "x")],
            "- source_labels: [a]\n  target_label: b\n- source_labels: [b]\n  regex: x\n  action: drop",
        );
        assert!(out.is_none());
    }
}
