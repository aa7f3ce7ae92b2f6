//! The resource registry: one row per served resource. The row drives routing, discovery, OpenAPI,
//! tables, field selectors, validation and defaulting; the per-kind rules live in their modules and
//! are found by the row's group and kind.

use serde::de::DeserializeOwned;
use serde_json::Value;

use k8s_openapi::api::{
    apps::v1 as apps, autoscaling::v1 as autoscaling_v1, autoscaling::v2 as autoscaling_v2,
    batch::v1 as batch, coordination::v1 as coordination, core::v1 as core,
    discovery::v1 as discovery, events::v1 as events, networking::v1 as networking,
    policy::v1 as policy, rbac::v1 as rbac, scheduling::v1 as scheduling, storage::v1 as storage,
};

/// A subresource served beside a resource, with the verbs upstream lists for it in discovery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subresource {
    /// `/status`: only `.status` is written through it; the main resource ignores `.status`.
    Status,
    /// `/scale`: an `autoscaling/v1` Scale view of `.spec.replicas`.
    Scale,
    /// `pods/binding`: sets `spec.nodeName`.
    Binding,
    /// `pods/eviction`: a policy/v1 Eviction.
    Eviction,
    /// `pods/log`, `pods/exec`, `pods/attach`, `pods/portforward`: served by the node.
    Log,
    Exec,
    Attach,
    PortForward,
    /// `namespaces/finalize`.
    Finalize,
    /// `serviceaccounts/token`.
    Token,
}

impl Subresource {
    /// The path segment after the object name.
    pub fn name(self) -> &'static str {
        match self {
            Subresource::Status => "status",
            Subresource::Scale => "scale",
            Subresource::Binding => "binding",
            Subresource::Eviction => "eviction",
            Subresource::Log => "log",
            Subresource::Exec => "exec",
            Subresource::Attach => "attach",
            Subresource::PortForward => "portforward",
            Subresource::Finalize => "finalize",
            Subresource::Token => "token",
        }
    }

    /// The verbs discovery lists for the subresource.
    pub fn verbs(self) -> &'static [&'static str] {
        match self {
            Subresource::Status | Subresource::Scale => &["get", "patch", "update"],
            Subresource::Binding | Subresource::Eviction | Subresource::Token => &["create"],
            Subresource::Log => &["get"],
            Subresource::Exec | Subresource::Attach | Subresource::PortForward => {
                &["create", "get"]
            }
            Subresource::Finalize => &["update"],
        }
    }

    /// The group, version and kind of the object the subresource takes and returns, when it is
    /// not the resource's own kind.
    pub fn kind(self) -> Option<(&'static str, &'static str, &'static str)> {
        match self {
            Subresource::Scale => Some(("autoscaling", "v1", "Scale")),
            Subresource::Binding => Some(("", "v1", "Binding")),
            Subresource::Eviction => Some(("policy", "v1", "Eviction")),
            Subresource::Token => Some(("authentication.k8s.io", "v1", "TokenRequest")),
            Subresource::Exec | Subresource::Attach => Some(("", "v1", "PodExecOptions")),
            Subresource::PortForward => Some(("", "v1", "PodPortForwardOptions")),
            Subresource::Log | Subresource::Status | Subresource::Finalize => None,
        }
    }
}

/// The verbs every resource here serves, in upstream's discovery order.
pub const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// One served resource: a group-version-kind under a plural name.
#[derive(Debug)]
pub struct Resource {
    /// API group; `""` for the core group.
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    pub subresources: &'static [Subresource],
    /// Whether `metadata.generation` is kept (set to 1 on create, bumped on spec changes).
    pub generation: bool,
    /// The group and resource name objects are stored under. Two rows that serve one stored
    /// resource in two versions (autoscaling v1/v2, core and events.k8s.io events) share it; the
    /// row whose `group`/`plural` equal it holds the stored form.
    pub storage: (&'static str, &'static str),
    /// Decodes the object as its typed form, to reject bodies whose fields have the wrong shape.
    pub check: fn(&Value) -> Result<(), serde_json::Error>,
}

impl Resource {
    /// `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        group_version(self.group, self.version)
    }

    /// The resource name with its group, as upstream prints it (`deployments.apps`).
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// Whether the row holds the stored form of its objects (other rows convert to and from it).
    pub fn is_storage(&self) -> bool {
        RESOURCES
            .iter()
            .find(|r| (r.group, r.plural) == self.storage)
            .is_some_and(|r| std::ptr::eq(r, self))
    }

    /// The store key prefix of this resource's objects: all of them, or those in `namespace`.
    /// Keys follow upstream: `/registry/<resource>/<namespace>/<name>`, with the group folded in
    /// for groups other than core and apps as upstream does for a few (`/registry/<group>/...` is
    /// not needed: resource names are unique across the groups served here).
    pub fn key_prefix(&self, namespace: Option<&str>) -> String {
        match namespace.filter(|_| self.namespaced) {
            Some(ns) => format!("/registry/{}/{}/", self.storage.1, ns),
            None => format!("/registry/{}/", self.storage.1),
        }
    }

    /// The store key of one object.
    pub fn key(&self, namespace: Option<&str>, name: &str) -> String {
        format!("{}{}", self.key_prefix(namespace), name)
    }

    /// Whether the resource has the subresource.
    pub fn has(&self, sub: Subresource) -> bool {
        self.subresources.contains(&sub)
    }
}

/// `v1` for the core group, `group/version` otherwise.
pub fn group_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    }
}

fn check<T: DeserializeOwned>(value: &Value) -> Result<(), serde_json::Error> {
    T::deserialize(value).map(drop)
}

use Subresource::{
    Attach, Binding, Eviction, Exec, Finalize, Log, PortForward, Scale, Status, Token,
};

/// Builds the rows below: `row!(group, version, Kind, plural, singular, namespaced, short names,
/// categories, subresources, generation, type)`.
macro_rules! row {
    ($g:literal, $v:literal, $k:literal, $p:literal, $s:literal, $ns:literal, [$($sn:literal),*],
     [$($c:literal),*], [$($sub:ident),*], $gen:literal, $t:ty) => {
        row!($g, $v, $k, $p, $s, $ns, [$($sn),*], [$($c),*], [$($sub),*], $gen, $t, ($g, $p))
    };
    ($g:literal, $v:literal, $k:literal, $p:literal, $s:literal, $ns:literal, [$($sn:literal),*],
     [$($c:literal),*], [$($sub:ident),*], $gen:literal, $t:ty, $storage:expr) => {
        Resource {
            group: $g,
            version: $v,
            kind: $k,
            plural: $p,
            singular: $s,
            namespaced: $ns,
            short_names: &[$($sn),*],
            categories: &[$($c),*],
            subresources: &[$($sub),*],
            generation: $gen,
            storage: $storage,
            check: check::<$t>,
        }
    };
}

/// Every served resource. Groups appear in upstream's discovery order; the first version of a
/// group listed is its preferred version.
pub static RESOURCES: &[Resource] = &[
    // core/v1
    row!(
        "",
        "v1",
        "Namespace",
        "namespaces",
        "namespace",
        false,
        ["ns"],
        [],
        [Status, Finalize],
        false,
        core::Namespace
    ),
    row!(
        "",
        "v1",
        "Pod",
        "pods",
        "pod",
        true,
        ["po"],
        ["all"],
        [Status, Binding, Eviction, Log, Exec, Attach, PortForward],
        true,
        core::Pod
    ),
    row!(
        "",
        "v1",
        "Service",
        "services",
        "service",
        true,
        ["svc"],
        ["all"],
        [Status],
        false,
        core::Service
    ),
    row!(
        "",
        "v1",
        "Endpoints",
        "endpoints",
        "endpoints",
        true,
        ["ep"],
        [],
        [],
        false,
        core::Endpoints
    ),
    row!(
        "",
        "v1",
        "ConfigMap",
        "configmaps",
        "configmap",
        true,
        ["cm"],
        [],
        [],
        false,
        core::ConfigMap
    ),
    row!(
        "",
        "v1",
        "Secret",
        "secrets",
        "secret",
        true,
        [],
        [],
        [],
        false,
        core::Secret
    ),
    row!(
        "",
        "v1",
        "ServiceAccount",
        "serviceaccounts",
        "serviceaccount",
        true,
        ["sa"],
        [],
        [Token],
        false,
        core::ServiceAccount
    ),
    row!(
        "",
        "v1",
        "Node",
        "nodes",
        "node",
        false,
        ["no"],
        [],
        [Status],
        false,
        core::Node
    ),
    row!(
        "",
        "v1",
        "Event",
        "events",
        "event",
        true,
        ["ev"],
        [],
        [],
        false,
        core::Event
    ),
    row!(
        "",
        "v1",
        "PersistentVolume",
        "persistentvolumes",
        "persistentvolume",
        false,
        ["pv"],
        [],
        [Status],
        false,
        core::PersistentVolume
    ),
    row!(
        "",
        "v1",
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        "persistentvolumeclaim",
        true,
        ["pvc"],
        [],
        [Status],
        false,
        core::PersistentVolumeClaim
    ),
    row!(
        "",
        "v1",
        "ReplicationController",
        "replicationcontrollers",
        "replicationcontroller",
        true,
        ["rc"],
        ["all"],
        [Scale, Status],
        true,
        core::ReplicationController
    ),
    row!(
        "",
        "v1",
        "ResourceQuota",
        "resourcequotas",
        "resourcequota",
        true,
        ["quota"],
        [],
        [Status],
        false,
        core::ResourceQuota
    ),
    row!(
        "",
        "v1",
        "LimitRange",
        "limitranges",
        "limitrange",
        true,
        ["limits"],
        [],
        [],
        false,
        core::LimitRange
    ),
    row!(
        "",
        "v1",
        "PodTemplate",
        "podtemplates",
        "podtemplate",
        true,
        [],
        [],
        [],
        false,
        core::PodTemplate
    ),
    // apps/v1
    row!(
        "apps",
        "v1",
        "Deployment",
        "deployments",
        "deployment",
        true,
        ["deploy"],
        ["all"],
        [Scale, Status],
        true,
        apps::Deployment
    ),
    row!(
        "apps",
        "v1",
        "ReplicaSet",
        "replicasets",
        "replicaset",
        true,
        ["rs"],
        ["all"],
        [Scale, Status],
        true,
        apps::ReplicaSet
    ),
    row!(
        "apps",
        "v1",
        "StatefulSet",
        "statefulsets",
        "statefulset",
        true,
        ["sts"],
        ["all"],
        [Scale, Status],
        true,
        apps::StatefulSet
    ),
    row!(
        "apps",
        "v1",
        "DaemonSet",
        "daemonsets",
        "daemonset",
        true,
        ["ds"],
        ["all"],
        [Status],
        true,
        apps::DaemonSet
    ),
    row!(
        "apps",
        "v1",
        "ControllerRevision",
        "controllerrevisions",
        "controllerrevision",
        true,
        [],
        [],
        [],
        false,
        apps::ControllerRevision
    ),
    // events.k8s.io/v1: the core events, seen through the newer schema.
    row!(
        "events.k8s.io",
        "v1",
        "Event",
        "events",
        "event",
        true,
        ["ev"],
        [],
        [],
        false,
        events::Event,
        ("", "events")
    ),
    // autoscaling: v2 is stored and preferred; v1 is a view of it.
    row!(
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        "horizontalpodautoscaler",
        true,
        ["hpa"],
        ["all"],
        [Status],
        true,
        autoscaling_v2::HorizontalPodAutoscaler
    ),
    row!(
        "autoscaling",
        "v1",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        "horizontalpodautoscaler",
        true,
        ["hpa"],
        ["all"],
        [Status],
        true,
        autoscaling_v1::HorizontalPodAutoscaler,
        ("autoscaling", "horizontalpodautoscalers")
    ),
    // batch/v1
    row!(
        "batch",
        "v1",
        "CronJob",
        "cronjobs",
        "cronjob",
        true,
        ["cj"],
        ["all"],
        [Status],
        true,
        batch::CronJob
    ),
    row!(
        "batch",
        "v1",
        "Job",
        "jobs",
        "job",
        true,
        [],
        ["all"],
        [Status],
        true,
        batch::Job
    ),
    // networking.k8s.io/v1
    row!(
        "networking.k8s.io",
        "v1",
        "IngressClass",
        "ingressclasses",
        "ingressclass",
        false,
        [],
        [],
        [],
        false,
        networking::IngressClass
    ),
    row!(
        "networking.k8s.io",
        "v1",
        "Ingress",
        "ingresses",
        "ingress",
        true,
        ["ing"],
        [],
        [Status],
        true,
        networking::Ingress
    ),
    row!(
        "networking.k8s.io",
        "v1",
        "NetworkPolicy",
        "networkpolicies",
        "networkpolicy",
        true,
        ["netpol"],
        [],
        [],
        true,
        networking::NetworkPolicy
    ),
    // policy/v1
    row!(
        "policy",
        "v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        "poddisruptionbudget",
        true,
        ["pdb"],
        [],
        [Status],
        true,
        policy::PodDisruptionBudget
    ),
    // rbac.authorization.k8s.io/v1
    row!(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        "clusterrolebinding",
        false,
        [],
        [],
        [],
        false,
        rbac::ClusterRoleBinding
    ),
    row!(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRole",
        "clusterroles",
        "clusterrole",
        false,
        [],
        [],
        [],
        false,
        rbac::ClusterRole
    ),
    row!(
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        "rolebindings",
        "rolebinding",
        true,
        [],
        [],
        [],
        false,
        rbac::RoleBinding
    ),
    row!(
        "rbac.authorization.k8s.io",
        "v1",
        "Role",
        "roles",
        "role",
        true,
        [],
        [],
        [],
        false,
        rbac::Role
    ),
    // storage.k8s.io/v1
    row!(
        "storage.k8s.io",
        "v1",
        "CSIDriver",
        "csidrivers",
        "csidriver",
        false,
        [],
        [],
        [],
        false,
        storage::CSIDriver
    ),
    row!(
        "storage.k8s.io",
        "v1",
        "CSINode",
        "csinodes",
        "csinode",
        false,
        [],
        [],
        [],
        false,
        storage::CSINode
    ),
    row!(
        "storage.k8s.io",
        "v1",
        "StorageClass",
        "storageclasses",
        "storageclass",
        false,
        ["sc"],
        [],
        [],
        false,
        storage::StorageClass
    ),
    row!(
        "storage.k8s.io",
        "v1",
        "VolumeAttachment",
        "volumeattachments",
        "volumeattachment",
        false,
        [],
        [],
        [Status],
        false,
        storage::VolumeAttachment
    ),
    // scheduling.k8s.io/v1
    row!(
        "scheduling.k8s.io",
        "v1",
        "PriorityClass",
        "priorityclasses",
        "priorityclass",
        false,
        ["pc"],
        [],
        [],
        false,
        scheduling::PriorityClass
    ),
    // coordination.k8s.io/v1
    row!(
        "coordination.k8s.io",
        "v1",
        "Lease",
        "leases",
        "lease",
        true,
        [],
        [],
        [],
        false,
        coordination::Lease
    ),
    // discovery.k8s.io/v1
    row!(
        "discovery.k8s.io",
        "v1",
        "EndpointSlice",
        "endpointslices",
        "endpointslice",
        true,
        [],
        [],
        [],
        false,
        discovery::EndpointSlice
    ),
];

/// The row serving `plural` in `group`/`version`.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static Resource> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The row serving `kind` in `group`/`version`.
pub fn find_kind(group: &str, version: &str, kind: &str) -> Option<&'static Resource> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.kind == kind)
}

/// The row holding the stored form of `resource`'s objects.
/// (Every row's storage names a row of the table: the `table_is_consistent` test holds it.)
pub fn storage_of(resource: &'static Resource) -> &'static Resource {
    RESOURCES
        .iter()
        .find(|r| (r.group, r.plural) == resource.storage)
        .unwrap_or(resource)
}

/// The served groups with their versions, preferred first, in discovery order.
pub fn groups() -> Vec<(&'static str, Vec<&'static str>)> {
    let mut out: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
    for r in RESOURCES {
        match out.iter_mut().find(|(g, _)| *g == r.group) {
            Some((_, versions)) if !versions.contains(&r.version) => versions.push(r.version),
            Some(_) => {}
            None => out.push((r.group, vec![r.version])),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_consistent() {
        for r in RESOURCES {
            assert!(
                RESOURCES
                    .iter()
                    .any(|s| s.is_storage() && s.storage == r.storage),
                "{} has no storage row",
                r.qualified()
            );
            let same = RESOURCES
                .iter()
                .filter(|s| s.group == r.group && s.version == r.version && s.plural == r.plural)
                .count();
            assert_eq!(same, 1, "{} {} served twice", r.api_version(), r.plural);
        }
    }

    #[test]
    fn one_row_holds_each_stored_form() {
        let v1 = find("autoscaling", "v1", "horizontalpodautoscalers").expect("v1");
        let v2 = find("autoscaling", "v2", "horizontalpodautoscalers").expect("v2");
        assert!(v2.is_storage() && !v1.is_storage());
        assert!(std::ptr::eq(storage_of(v1), v2));
        let events = find("events.k8s.io", "v1", "events").expect("events");
        assert!(!events.is_storage());
        assert_eq!(storage_of(events).group, "");
    }

    #[test]
    fn preferred_versions_come_first() {
        let groups = groups();
        let autoscaling = groups
            .iter()
            .find(|(g, _)| *g == "autoscaling")
            .map(|(_, v)| v.clone());
        assert_eq!(autoscaling, Some(vec!["v2", "v1"]));
        assert_eq!(groups[0].0, "");
    }

    #[test]
    fn the_typed_check_rejects_wrong_shapes() {
        let pods = find("", "v1", "pods").expect("pods");
        let good = serde_json::json!({"metadata": {"name": "a"}, "spec": {"containers": []}});
        assert!((pods.check)(&good).is_ok());
        let bad = serde_json::json!({"metadata": {"name": "a"}, "spec": {"containers": "x"}});
        assert!((pods.check)(&bad).is_err());
    }
}
