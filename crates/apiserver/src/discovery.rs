//! Discovery documents, all made from the registry: `/api`, `/apis`, `/apis/<group>`, the
//! APIResourceLists, aggregated discovery (apidiscovery.k8s.io/v2) and `/version`.

use serde_json::{Value, json};

use oxkube_api::registry::{self, RESOURCES, Resource, VERBS, group_version};

/// The version reported by `/version` and in node/kubectl output.
pub const GIT_VERSION: &str = "v1.37.0+oxkube";

pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "37",
        "emulationMajor": "1",
        "emulationMinor": "37",
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "36",
        "gitVersion": GIT_VERSION,
        "gitCommit": env!("CARGO_PKG_VERSION"),
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
        "goVersion": "rust",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        }),
    })
}

/// `/api`.
pub fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

fn api_group(group: &str, versions: &[&str]) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": group_version(group, v), "version": v}))
        .collect();
    json!({
        "name": group,
        "versions": versions,
        "preferredVersion": versions.first().cloned().unwrap_or(Value::Null),
    })
}

/// `/apis`.
pub fn group_list() -> Value {
    let groups: Vec<Value> = registry::groups()
        .iter()
        .filter(|(g, _)| !g.is_empty())
        .map(|(g, v)| api_group(g, v))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/<group>`.
pub fn group(name: &str) -> Option<Value> {
    registry::groups()
        .iter()
        .find(|(g, _)| !g.is_empty() && *g == name)
        .map(|(g, v)| {
            let mut doc = api_group(g, v);
            if let Some(map) = doc.as_object_mut() {
                map.insert("kind".into(), Value::from("APIGroup"));
                map.insert("apiVersion".into(), Value::from("v1"));
            }
            doc
        })
}

fn in_version<'a>(
    group: &'a str,
    version: &'a str,
) -> impl Iterator<Item = &'static Resource> + 'a {
    RESOURCES
        .iter()
        .filter(move |r| r.group == group && r.version == version)
}

/// `/api/v1` or `/apis/<group>/<version>`.
pub fn resource_list(group: &str, version: &str) -> Option<Value> {
    let mut resources = Vec::new();
    for r in in_version(group, version) {
        let mut entry = json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": VERBS,
        });
        add_names(&mut entry, r);
        resources.push(entry);
        for sub in r.subresources {
            let mut entry = json!({
                "name": format!("{}/{}", r.plural, sub.name()),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": sub.verbs(),
            });
            if let (Some((g, v, k)), Some(map)) = (sub.kind(), entry.as_object_mut()) {
                map.insert("group".into(), Value::from(g));
                map.insert("version".into(), Value::from(v));
                map.insert("kind".into(), Value::from(k));
            }
            resources.push(entry);
        }
    }
    if resources.is_empty() {
        return None;
    }
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version(group, version),
        "resources": resources,
    }))
}

/// Short names and categories, each only when the resource has some (as upstream omits them).
fn add_names(entry: &mut Value, r: &Resource) {
    if let Some(map) = entry.as_object_mut() {
        if !r.short_names.is_empty() {
            map.insert("shortNames".into(), json!(r.short_names));
        }
        if !r.categories.is_empty() {
            map.insert("categories".into(), json!(r.categories));
        }
    }
}

fn aggregated_resource(r: &Resource) -> Value {
    let subresources: Vec<Value> = r
        .subresources
        .iter()
        .map(|sub| {
            let (g, v, k) = sub.kind().unwrap_or((r.group, r.version, r.kind));
            json!({
                "subresource": sub.name(),
                "responseKind": {"group": g, "version": v, "kind": k},
                "verbs": sub.verbs(),
            })
        })
        .collect();
    let mut entry = json!({
        "resource": r.plural,
        "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": r.singular,
        "verbs": VERBS,
    });
    add_names(&mut entry, r);
    if !subresources.is_empty()
        && let Some(map) = entry.as_object_mut()
    {
        map.insert("subresources".into(), Value::from(subresources));
    }
    entry
}

/// Aggregated discovery of the core group (`core = true`, for `/api`) or of the others (`/apis`).
pub fn aggregated(core: bool) -> Value {
    let items: Vec<Value> = registry::groups()
        .iter()
        .filter(|(g, _)| g.is_empty() == core)
        .map(|(g, versions)| {
            let versions: Vec<Value> = versions
                .iter()
                .map(|v| {
                    let resources: Vec<Value> = in_version(g, v).map(aggregated_resource).collect();
                    json!({"version": v, "resources": resources, "freshness": "Current"})
                })
                .collect();
            json!({"metadata": {"name": g, "creationTimestamp": null}, "versions": versions})
        })
        .collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_v1_lists_pods_with_their_subresources() {
        let list = resource_list("", "v1").expect("v1");
        let names: Vec<&str> = list["resources"]
            .as_array()
            .expect("array")
            .iter()
            .filter_map(|r| r["name"].as_str())
            .collect();
        for want in [
            "pods",
            "pods/status",
            "pods/binding",
            "pods/log",
            "namespaces",
            "nodes/status",
        ] {
            assert!(names.contains(&want), "{want} missing from {names:?}");
        }
        let pods = &list["resources"][names.iter().position(|n| *n == "pods").expect("pods")];
        assert_eq!(pods["shortNames"], json!(["po"]));
        assert_eq!(pods["categories"], json!(["all"]));
    }

    #[test]
    fn scale_is_an_autoscaling_v1_scale() {
        let list = resource_list("apps", "v1").expect("apps/v1");
        let scale = list["resources"]
            .as_array()
            .expect("array")
            .iter()
            .find(|r| r["name"] == "deployments/scale")
            .expect("deployments/scale");
        assert_eq!(
            (scale["group"].as_str(), scale["kind"].as_str()),
            (Some("autoscaling"), Some("Scale"))
        );
    }

    #[test]
    fn groups_and_aggregated_agree() {
        let groups = group_list();
        let agg = aggregated(false);
        let names: Vec<&str> = groups["groups"]
            .as_array()
            .expect("groups")
            .iter()
            .filter_map(|g| g["name"].as_str())
            .collect();
        let agg_names: Vec<&str> = agg["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter_map(|g| g["metadata"]["name"].as_str())
            .collect();
        assert_eq!(names, agg_names);
        assert!(names.contains(&"apps"));
        assert_eq!(aggregated(true)["items"][0]["metadata"]["name"], "");
        assert!(resource_list("apps", "v9").is_none());
        assert_eq!(
            group("autoscaling").expect("autoscaling")["preferredVersion"]["version"],
            "v2"
        );
    }
}
