//! The resource catalogue from discovery: every served resource with its scope and verbs, shared by the
//! garbage collector (owners and dependents of any kind) and the namespace controller (all namespaced
//! content). Discovered once per leadership term.

use std::collections::HashMap;

use kube::Client;
use kube::api::{Api, DynamicObject};
use kube::core::ApiResource;
use kube::discovery::{Discovery, Scope};

/// One served resource.
#[derive(Debug, Clone)]
pub struct Served {
    /// Group, version, kind and plural.
    pub resource: ApiResource,
    /// Whether it lives in namespaces.
    pub namespaced: bool,
    /// Its verbs (`list`, `watch`, `delete`, `deletecollection`, …).
    pub verbs: Vec<String>,
}

impl Served {
    /// Whether the resource supports `verb`.
    pub fn can(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == verb)
    }

    /// A dynamic API for it in `namespace` (ignored when cluster-scoped).
    pub fn api(&self, client: &Client, namespace: &str) -> Api<DynamicObject> {
        if self.namespaced {
            Api::namespaced_with(client.clone(), namespace, &self.resource)
        } else {
            Api::all_with(client.clone(), &self.resource)
        }
    }
}

/// Failures of discovery.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// The discovery documents could not be read.
    #[error("running API discovery")]
    Discover(#[source] kube::Error),
}

/// Every served resource (preferred version per group), looked up by group and kind.
#[derive(Debug, Clone, Default)]
pub struct Catalogue {
    served: Vec<Served>,
    by_group_kind: HashMap<(String, String), usize>,
}

impl Catalogue {
    /// A catalogue of `served`.
    pub fn new(served: Vec<Served>) -> Self {
        let by_group_kind = served
            .iter()
            .enumerate()
            .map(|(i, s)| ((s.resource.group.clone(), s.resource.kind.clone()), i))
            .collect();
        Catalogue {
            served,
            by_group_kind,
        }
    }

    /// Reads discovery from the API server.
    pub async fn discover(client: &Client) -> Result<Self, DiscoveryError> {
        let discovery = Discovery::new(client.clone())
            .run()
            .await
            .map_err(DiscoveryError::Discover)?;
        let mut served = Vec::new();
        for group in discovery.groups() {
            for (resource, caps) in group.recommended_resources() {
                if resource.plural.contains('/') {
                    continue;
                }
                served.push(Served {
                    resource,
                    namespaced: caps.scope == Scope::Namespaced,
                    verbs: caps.operations.clone(),
                });
            }
        }
        Ok(Catalogue::new(served))
    }

    /// Every served resource.
    pub fn all(&self) -> &[Served] {
        &self.served
    }

    /// The resource of `kind` in the group of `api_version` (`v1`, `apps/v1`, …).
    pub fn by_kind(&self, api_version: &str, kind: &str) -> Option<&Served> {
        let group = api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
        self.by_group_kind
            .get(&(group.to_string(), kind.to_string()))
            .map(|i| &self.served[*i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::GroupVersionKind;

    #[test]
    fn finds_kinds_across_versions_of_a_group() {
        let rs = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("apps", "v1", "ReplicaSet"),
            "replicasets",
        );
        let pod =
            ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("", "v1", "Pod"), "pods");
        let cat = Catalogue::new(vec![
            Served {
                resource: rs,
                namespaced: true,
                verbs: vec!["list".into()],
            },
            Served {
                resource: pod,
                namespaced: true,
                verbs: vec!["delete".into()],
            },
        ]);
        assert_eq!(
            cat.by_kind("apps/v1", "ReplicaSet")
                .map(|s| s.resource.plural.as_str()),
            Some("replicasets")
        );
        assert!(cat.by_kind("v1", "Pod").is_some_and(|s| s.can("delete")));
        assert!(cat.by_kind("extensions/v1beta1", "ReplicaSet").is_none());
    }
}
