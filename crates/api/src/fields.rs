//! Strict field validation (`fieldValidation=Strict|Warn`): the fields of a body its kind's
//! schema does not know, and the fields a JSON body names twice, reported as upstream's strict
//! decoder reports them (`unknown field "spec.foo"`, `duplicate field "metadata.name"`).

use std::collections::HashSet;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::openapi;
use crate::registry::Resource;

/// The fields of `obj` its schema does not know, each as upstream's message:
/// `unknown field "spec.foo"`, inside lists `unknown field "spec.containers[0].foo"`. Maps with
/// free-form keys (labels, annotations, data, …) and `x-kubernetes-preserve-unknown-fields`
/// are not looked into. Fields come in key order.
pub fn unknown_fields(res: &Resource, obj: &Value) -> Vec<String> {
    let Some(name) = openapi::schema_name(res.group, res.version, res.kind) else {
        return Vec::new();
    };
    let Some(schema) = openapi::definitions().get(&name) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    walk(schema, obj, "", &mut out);
    out
}

fn walk(schema: &Value, value: &Value, path: &str, out: &mut Vec<String>) {
    let schema = openapi::resolve(schema);
    if schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)) {
        return;
    }
    match value {
        Value::Object(map) => {
            if let Some(Value::Object(props)) = schema.get("properties") {
                for (key, child) in map {
                    let child_path = join(path, key);
                    match props.get(key) {
                        Some(prop) => walk(prop, child, &child_path, out),
                        None => out.push(format!("unknown field \"{child_path}\"")),
                    }
                }
            } else if let Some(values @ Value::Object(_)) = schema.get("additionalProperties") {
                for (key, child) in map {
                    walk(values, child, &join(path, key), out);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item) = schema.get("items") {
                for (i, child) in items.iter().enumerate() {
                    walk(item, child, &format!("{path}[{i}]"), out);
                }
            }
        }
        _ => {}
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// The fields the raw JSON `body` names twice in one object, each as upstream's message
/// (`duplicate field "metadata.name"`), in the order they appear. Found by one streaming pass
/// over the bytes; a body that is not JSON has none (its decoding fails elsewhere).
pub fn duplicate_fields(body: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(body);
    // A body that is not JSON is reported by the decoder; what was found before the error stands.
    let _ = Scan {
        path: String::new(),
        out: &mut out,
    }
    .deserialize(&mut de);
    out
}

/// Walks one JSON value, recording duplicate keys of every object in it.
struct Scan<'a> {
    path: String,
    out: &'a mut Vec<String>,
}

impl<'de> DeserializeSeed<'de> for Scan<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Scan<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0;
        loop {
            let item = Scan {
                path: format!("{}[{i}]", self.path),
                out: &mut *self.out,
            };
            if seq.next_element_seed(item)?.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = join(&self.path, &key);
            if !seen.insert(key) {
                self.out.push(format!("duplicate field \"{path}\""));
            }
            map.next_value_seed(Scan {
                path,
                out: &mut *self.out,
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::find;
    use k8s_openapi::api::{apps::v1 as apps, core::v1 as core};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
    use proptest::prelude::*;
    use serde_json::json;

    fn pods() -> &'static Resource {
        find("", "v1", "pods").expect("pods")
    }

    #[test]
    fn reports_unknown_fields_with_upstream_paths() {
        let pod = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "a", "labels": {"any": "key"}, "bogus": 1},
            "spec": {
                "foo": true,
                "containers": [
                    {"name": "c", "image": "nginx"},
                    {"name": "d", "image": "nginx", "imagee": "x", "ports": [{"containerPort": 80, "nope": 1}]},
                ],
            },
        });
        assert_eq!(
            unknown_fields(pods(), &pod),
            vec![
                "unknown field \"metadata.bogus\"",
                "unknown field \"spec.containers[1].imagee\"",
                "unknown field \"spec.containers[1].ports[0].nope\"",
                "unknown field \"spec.foo\"",
            ]
        );
        assert_eq!(
            unknown_fields(pods(), &json!({"top": 1})),
            vec!["unknown field \"top\""]
        );
    }

    #[test]
    fn free_form_maps_are_not_checked() {
        let cms = find("", "v1", "configmaps").expect("configmaps");
        let cm = json!({"metadata": {"name": "a", "annotations": {"x/y": "z"}}, "data": {"anything": "v"}});
        assert!(unknown_fields(cms, &cm).is_empty());
        // RawExtension and FieldsV1 hold arbitrary objects.
        let revisions = find("apps", "v1", "controllerrevisions").expect("revisions");
        let rev = json!({
            "metadata": {"name": "r", "managedFields": [{"manager": "m", "fieldsV1": {"f:spec": {}}}]},
            "revision": 1,
            "data": {"spec": {"whatever": 1}},
        });
        assert!(unknown_fields(revisions, &rev).is_empty());
    }

    #[test]
    fn finds_duplicate_fields_in_order() {
        let body = br#"{"metadata": {"name": "a", "labels": {"x": "1"}, "name": "b"},
            "spec": {"containers": [{"name": "c"}, {"name": "d", "image": "i", "image": "j"}]},
            "kind": "Pod", "kind": "Pod"}"#;
        assert_eq!(
            duplicate_fields(body),
            vec![
                "duplicate field \"metadata.name\"",
                "duplicate field \"spec.containers[1].image\"",
                "duplicate field \"kind\"",
            ]
        );
        assert!(duplicate_fields(br#"{"a": {"b": 1}, "c": {"b": 2}}"#).is_empty());
        // Escapes are compared decoded.
        assert_eq!(
            duplicate_fields(br#"{"a": 1, "\u0061": 2}"#),
            vec!["duplicate field \"a\""]
        );
        assert!(duplicate_fields(b"not json").is_empty());
    }

    fn name() -> impl Strategy<Value = String> {
        "[a-z][a-z0-9-]{0,10}"
    }

    fn container() -> impl Strategy<Value = core::Container> {
        (
            name(),
            proptest::option::of(name()),
            proptest::collection::vec((1..65535i32, proptest::option::of(name())), 0..3),
            proptest::collection::vec((name(), name()), 0..3),
        )
            .prop_map(|(name, image, ports, env)| core::Container {
                name,
                image,
                ports: Some(
                    ports
                        .into_iter()
                        .map(|(container_port, name)| core::ContainerPort {
                            container_port,
                            name,
                            protocol: Some("TCP".into()),
                            ..Default::default()
                        })
                        .collect(),
                ),
                env: Some(
                    env.into_iter()
                        .map(|(name, value)| core::EnvVar {
                            name,
                            value: Some(value),
                            ..Default::default()
                        })
                        .collect(),
                ),
                resources: Some(core::ResourceRequirements {
                    limits: Some(
                        [(
                            "cpu".to_string(),
                            k8s_openapi::apimachinery::pkg::api::resource::Quantity("1".into()),
                        )]
                        .into(),
                    ),
                    ..Default::default()
                }),
                ..Default::default()
            })
    }

    fn meta() -> impl Strategy<Value = ObjectMeta> {
        (
            name(),
            proptest::collection::btree_map(name(), name(), 0..3),
        )
            .prop_map(|(name, labels)| ObjectMeta {
                name: Some(name),
                labels: Some(labels),
                finalizers: Some(vec!["x/y".into()]),
                ..Default::default()
            })
    }

    fn pod_spec() -> impl Strategy<Value = core::PodSpec> {
        (
            proptest::collection::vec(container(), 1..3),
            proptest::option::of(name()),
        )
            .prop_map(|(containers, node_name)| core::PodSpec {
                containers,
                node_name,
                volumes: Some(vec![core::Volume {
                    name: "v".into(),
                    empty_dir: Some(core::EmptyDirVolumeSource::default()),
                    ..Default::default()
                }]),
                ..Default::default()
            })
    }

    proptest! {
        #[test]
        fn typed_objects_have_no_unknown_fields(
            meta in meta(),
            spec in pod_spec(),
            replicas in proptest::option::of(0..10i32),
        ) {
            let pod = core::Pod {
                metadata: meta.clone(),
                spec: Some(spec.clone()),
                status: Some(core::PodStatus {
                    phase: Some("Running".into()),
                    conditions: Some(vec![core::PodCondition {
                        type_: "Ready".into(),
                        status: "True".into(),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }),
            };
            let mut value = serde_json::to_value(&pod).expect("pod");
            value["apiVersion"] = json!("v1");
            value["kind"] = json!("Pod");
            prop_assert!(unknown_fields(pods(), &value).is_empty(), "{}", value);

            let deployment = apps::Deployment {
                metadata: meta,
                spec: apps::DeploymentSpec {
                    replicas,
                    selector: LabelSelector::default(),
                    template: core::PodTemplateSpec {
                        metadata: None,
                        spec: Some(spec),
                    },
                    ..Default::default()
                },
                status: None,
            };
            let value = serde_json::to_value(&deployment).expect("deployment");
            let deployments = find("apps", "v1", "deployments").expect("deployments");
            prop_assert!(unknown_fields(deployments, &value).is_empty(), "{}", value);
            // The same object with one more field is caught.
            let mut extra = value.clone();
            extra["spec"]["template"]["spec"]["containers"][0]["extra"] = json!(1);
            prop_assert_eq!(
                unknown_fields(deployments, &extra),
                vec!["unknown field \"spec.template.spec.containers[0].extra\"".to_string()]
            );
        }

        #[test]
        fn a_serialized_map_has_no_duplicates(
            map in proptest::collection::btree_map(name(), name(), 0..8)
        ) {
            let body = serde_json::to_vec(&json!({"metadata": {"labels": map}})).expect("json");
            prop_assert!(duplicate_fields(&body).is_empty());
        }
    }
}
