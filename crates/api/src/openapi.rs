//! The OpenAPI documents kubectl and clients read: `/openapi/v3/<group-version>` (OpenAPI 3.0, one
//! document per group-version) and `/openapi/v2` (swagger 2.0, one document), with upstream's
//! component names, `x-kubernetes-*` extensions, operations and parameters. The schemas come from
//! `k8s-openapi`'s `schemars` impls; the list semantics (`x-kubernetes-list-type`, merge keys)
//! that those lack are added from [`LIST_SEMANTICS`], which strict validation and server-side
//! apply read as well.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::LazyLock;

use k8s_openapi::api::{
    apps::v1 as apps, authentication::v1 as authentication, autoscaling::v1 as autoscaling_v1,
    autoscaling::v2 as autoscaling_v2, batch::v1 as batch, coordination::v1 as coordination,
    core::v1 as core, discovery::v1 as discovery, events::v1 as events,
    networking::v1 as networking, policy::v1 as policy, rbac::v1 as rbac,
    scheduling::v1 as scheduling, storage::v1 as storage,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use schemars::{JsonSchema, SchemaGenerator, generate::SchemaSettings};
use serde_json::{Map, Value, json};

use crate::registry::{self, RESOURCES, Resource, Subresource};

/// The Kubernetes version the documents describe.
const INFO_VERSION: &str = "v1.37.0";

/// Where a schema of a kind comes from: its component name and the function adding it (and
/// everything it refers to) to a generator.
#[derive(Clone, Copy)]
struct KindSchema {
    name: fn() -> Cow<'static, str>,
    add: fn(&mut SchemaGenerator),
}

fn add<T: JsonSchema>(generator: &mut SchemaGenerator) {
    generator.subschema_for::<T>();
}

fn entry<T: JsonSchema>() -> KindSchema {
    KindSchema {
        name: T::schema_name,
        add: add::<T>,
    }
}

/// The typed schema of a kind served here (registry rows and the kinds their subresources take).
fn kind_schema(group: &str, version: &str, kind: &str) -> Option<KindSchema> {
    Some(match (group, version, kind) {
        ("", "v1", "Namespace") => entry::<core::Namespace>(),
        ("", "v1", "Pod") => entry::<core::Pod>(),
        ("", "v1", "Service") => entry::<core::Service>(),
        ("", "v1", "Endpoints") => entry::<core::Endpoints>(),
        ("", "v1", "ConfigMap") => entry::<core::ConfigMap>(),
        ("", "v1", "Secret") => entry::<core::Secret>(),
        ("", "v1", "ServiceAccount") => entry::<core::ServiceAccount>(),
        ("", "v1", "Node") => entry::<core::Node>(),
        ("", "v1", "Event") => entry::<core::Event>(),
        ("", "v1", "PersistentVolume") => entry::<core::PersistentVolume>(),
        ("", "v1", "PersistentVolumeClaim") => entry::<core::PersistentVolumeClaim>(),
        ("", "v1", "ReplicationController") => entry::<core::ReplicationController>(),
        ("", "v1", "ResourceQuota") => entry::<core::ResourceQuota>(),
        ("", "v1", "LimitRange") => entry::<core::LimitRange>(),
        ("", "v1", "PodTemplate") => entry::<core::PodTemplate>(),
        ("", "v1", "Binding") => entry::<core::Binding>(),
        ("apps", "v1", "Deployment") => entry::<apps::Deployment>(),
        ("apps", "v1", "ReplicaSet") => entry::<apps::ReplicaSet>(),
        ("apps", "v1", "StatefulSet") => entry::<apps::StatefulSet>(),
        ("apps", "v1", "DaemonSet") => entry::<apps::DaemonSet>(),
        ("apps", "v1", "ControllerRevision") => entry::<apps::ControllerRevision>(),
        ("events.k8s.io", "v1", "Event") => entry::<events::Event>(),
        ("autoscaling", "v2", "HorizontalPodAutoscaler") => {
            entry::<autoscaling_v2::HorizontalPodAutoscaler>()
        }
        ("autoscaling", "v1", "HorizontalPodAutoscaler") => {
            entry::<autoscaling_v1::HorizontalPodAutoscaler>()
        }
        ("autoscaling", "v1", "Scale") => entry::<autoscaling_v1::Scale>(),
        ("batch", "v1", "CronJob") => entry::<batch::CronJob>(),
        ("batch", "v1", "Job") => entry::<batch::Job>(),
        ("networking.k8s.io", "v1", "IngressClass") => entry::<networking::IngressClass>(),
        ("networking.k8s.io", "v1", "Ingress") => entry::<networking::Ingress>(),
        ("networking.k8s.io", "v1", "NetworkPolicy") => entry::<networking::NetworkPolicy>(),
        ("policy", "v1", "PodDisruptionBudget") => entry::<policy::PodDisruptionBudget>(),
        ("policy", "v1", "Eviction") => entry::<policy::Eviction>(),
        ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding") => {
            entry::<rbac::ClusterRoleBinding>()
        }
        ("rbac.authorization.k8s.io", "v1", "ClusterRole") => entry::<rbac::ClusterRole>(),
        ("rbac.authorization.k8s.io", "v1", "RoleBinding") => entry::<rbac::RoleBinding>(),
        ("rbac.authorization.k8s.io", "v1", "Role") => entry::<rbac::Role>(),
        ("storage.k8s.io", "v1", "CSIDriver") => entry::<storage::CSIDriver>(),
        ("storage.k8s.io", "v1", "CSINode") => entry::<storage::CSINode>(),
        ("storage.k8s.io", "v1", "StorageClass") => entry::<storage::StorageClass>(),
        ("storage.k8s.io", "v1", "VolumeAttachment") => entry::<storage::VolumeAttachment>(),
        ("scheduling.k8s.io", "v1", "PriorityClass") => entry::<scheduling::PriorityClass>(),
        ("coordination.k8s.io", "v1", "Lease") => entry::<coordination::Lease>(),
        ("discovery.k8s.io", "v1", "EndpointSlice") => entry::<discovery::EndpointSlice>(),
        ("authentication.k8s.io", "v1", "TokenRequest") => entry::<authentication::TokenRequest>(),
        _ => return None,
    })
}

/// The meta types every document carries.
const META: &[fn(&mut SchemaGenerator)] = &[
    add::<meta::ObjectMeta>,
    add::<meta::ListMeta>,
    add::<meta::Status>,
    add::<meta::DeleteOptions>,
    add::<meta::WatchEvent<()>>,
    add::<meta::Patch>,
    add::<meta::APIResourceList>,
];

const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
const WATCH_EVENT: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent";
const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";
const RESOURCE_LIST: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList";

/// How a list field merges, as upstream's `+listType`, `+listMapKey`, `+patchStrategy` and
/// `+patchMergeKey` tags say. Lists not named here are atomic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListType {
    /// Items are identified by the values of these keys (`x-kubernetes-list-type: map`).
    Map(&'static [&'static str]),
    /// Items are scalars identified by their value (`x-kubernetes-list-type: set`).
    Set,
}

/// One associative list: (definition, field, list type, strategic-merge-patch merge key and
/// strategy).
type ListSemantics = (
    &'static str,
    &'static str,
    ListType,
    Option<&'static str>,
    &'static str,
);

const NAME: &[&str] = &["name"];
const TYPE: &[&str] = &["type"];

/// The associative lists of the served kinds, from upstream's type tags.
pub const LIST_SEMANTICS: &[ListSemantics] = &[
    (
        "io.k8s.api.core.v1.PodSpec",
        "containers",
        ListType::Map(NAME),
        Some("name"),
        "merge",
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "initContainers",
        ListType::Map(NAME),
        Some("name"),
        "merge",
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "ephemeralContainers",
        ListType::Map(NAME),
        Some("name"),
        "merge",
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "volumes",
        ListType::Map(NAME),
        Some("name"),
        "merge,retainKeys",
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "imagePullSecrets",
        ListType::Map(NAME),
        Some("name"),
        "merge",
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "hostAliases",
        ListType::Map(&["ip"]),
        Some("ip"),
        "merge",
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "topologySpreadConstraints",
        ListType::Map(&["topologyKey", "whenUnsatisfiable"]),
        Some("topologyKey"),
        "merge",
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "resourceClaims",
        ListType::Map(NAME),
        Some("name"),
        "merge,retainKeys",
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "schedulingGates",
        ListType::Map(NAME),
        Some("name"),
        "merge",
    ),
    (
        "io.k8s.api.core.v1.Container",
        "ports",
        ListType::Map(&["containerPort", "protocol"]),
        Some("containerPort"),
        "merge",
    ),
    (
        "io.k8s.api.core.v1.Container",
        "env",
        ListType::Map(NAME),
        Some("name"),
        "merge",
    ),
    (
        "io.k8s.api.core.v1.Container",
        "volumeMounts",
        ListType::Map(&["mountPath"]),
        Some("mountPath"),
        "merge",
    ),
    (
        "io.k8s.api.core.v1.Container",
        "volumeDevices",
        ListType::Map(&["devicePath"]),
        Some("devicePath"),
        "merge",
    ),
    (
        "io.k8s.api.core.v1.EphemeralContainer",
        "ports",
        ListType::Map(&["containerPort", "protocol"]),
        Some("containerPort"),
        "merge",
    ),
    (
        "io.k8s.api.core.v1.EphemeralContainer",
        "env",
        ListType::Map(NAME),
        Some("name"),
        "merge",
    ),
    (
        "io.k8s.api.core.v1.EphemeralContainer",
        "volumeMounts",
        ListType::Map(&["mountPath"]),
        Some("mountPath"),
        "merge",
    ),
    (
        "io.k8s.api.core.v1.EphemeralContainer",
        "volumeDevices",
        ListType::Map(&["devicePath"]),
        Some("devicePath"),
        "merge",
    ),
    (
        "io.k8s.api.core.v1.PodStatus",
        "conditions",
        ListType::Map(TYPE),
        Some("type"),
        "merge",
    ),
    (
        "io.k8s.api.core.v1.PodStatus",
        "podIPs",
        ListType::Map(&["ip"]),
        Some("ip"),
        "merge",
    ),
    (
        "io.k8s.api.core.v1.ServiceSpec",
        "ports",
        ListType::Map(&["port", "protocol"]),
        Some("port"),
        "merge",
    ),
    (
        "io.k8s.api.core.v1.NodeStatus",
        "conditions",
        ListType::Map(TYPE),
        Some("type"),
        "merge",
    ),
    (
        "io.k8s.api.core.v1.NamespaceStatus",
        "conditions",
        ListType::Map(TYPE),
        Some("type"),
        "merge",
    ),
    (
        "io.k8s.api.core.v1.PersistentVolumeClaimStatus",
        "conditions",
        ListType::Map(TYPE),
        Some("type"),
        "merge",
    ),
    (
        "io.k8s.api.core.v1.ReplicationControllerStatus",
        "conditions",
        ListType::Map(TYPE),
        Some("type"),
        "merge",
    ),
    (
        "io.k8s.api.core.v1.ServiceStatus",
        "conditions",
        ListType::Map(TYPE),
        Some("type"),
        "merge",
    ),
    (
        "io.k8s.api.apps.v1.DeploymentStatus",
        "conditions",
        ListType::Map(TYPE),
        Some("type"),
        "merge",
    ),
    (
        "io.k8s.api.apps.v1.ReplicaSetStatus",
        "conditions",
        ListType::Map(TYPE),
        Some("type"),
        "merge",
    ),
    (
        "io.k8s.api.apps.v1.StatefulSetStatus",
        "conditions",
        ListType::Map(TYPE),
        Some("type"),
        "merge",
    ),
    (
        "io.k8s.api.apps.v1.DaemonSetStatus",
        "conditions",
        ListType::Map(TYPE),
        Some("type"),
        "merge",
    ),
    (
        "io.k8s.api.policy.v1.PodDisruptionBudgetStatus",
        "conditions",
        ListType::Map(TYPE),
        Some("type"),
        "merge",
    ),
    (
        "io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerStatus",
        "conditions",
        ListType::Map(TYPE),
        Some("type"),
        "merge",
    ),
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "ownerReferences",
        ListType::Map(&["uid"]),
        Some("uid"),
        "merge",
    ),
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "finalizers",
        ListType::Set,
        None,
        "merge",
    ),
];

/// Structs upstream marks `+structType=atomic`: owned and replaced as one value.
pub const ATOMIC_STRUCTS: &[&str] = &[
    "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector",
    "io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference",
    "io.k8s.api.core.v1.ObjectReference",
    "io.k8s.api.core.v1.LocalObjectReference",
    "io.k8s.api.core.v1.TypedLocalObjectReference",
    "io.k8s.api.core.v1.NodeSelector",
    "io.k8s.api.core.v1.NodeSelectorTerm",
    "io.k8s.api.core.v1.TopologySelectorTerm",
    "io.k8s.api.core.v1.ConfigMapKeySelector",
    "io.k8s.api.core.v1.SecretKeySelector",
    "io.k8s.api.core.v1.ObjectFieldSelector",
    "io.k8s.api.core.v1.ResourceFieldSelector",
];

/// The list type of `field` of `definition`, when the list is associative.
pub fn list_type(definition: &str, field: &str) -> Option<ListType> {
    LIST_SEMANTICS
        .iter()
        .find(|(d, f, ..)| *d == definition && *f == field)
        .map(|(_, _, t, ..)| *t)
}

/// The component name of the schema of a kind (`io.k8s.api.core.v1.Pod`).
pub fn schema_name(group: &str, version: &str, kind: &str) -> Option<String> {
    kind_schema(group, version, kind).map(|k| (k.name)().into_owned())
}

/// Every schema of the served kinds by component name, with refs as `#/definitions/<name>`
/// (swagger 2.0 form). Strict validation and server-side apply walk objects through it.
pub fn definitions() -> &'static Map<String, Value> {
    &DEFINITIONS
}

/// Resolves a `$ref` (either form) to the definition it names.
pub fn resolve(schema: &Value) -> &Value {
    let mut current = schema;
    // Upstream's v3 form wraps a described ref as `allOf: [{$ref}]`.
    if let Some(Value::Array(all)) = current.get("allOf")
        && let [only] = all.as_slice()
    {
        current = only;
    }
    match current.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let name = r
                .strip_prefix("#/definitions/")
                .or_else(|| r.strip_prefix("#/components/schemas/"))
                .unwrap_or(r);
            DEFINITIONS.get(name).unwrap_or(&Value::Null)
        }
        None => current,
    }
}

/// The OpenAPI v3 document of one group-version (group "" = core), as upstream serves at
/// /openapi/v3/api/v1 or /openapi/v3/apis/<group>/<version>.
pub fn v3_document(group: &str, version: &str) -> Option<Value> {
    V3.get(&(group.to_string(), version.to_string())).cloned()
}

/// The whole swagger 2.0 document (/openapi/v2).
pub fn v2_document() -> Value {
    V2.clone()
}

static DEFINITIONS: LazyLock<Map<String, Value>> = LazyLock::new(|| {
    let gvs: Vec<(&str, &str)> = registry::groups()
        .into_iter()
        .flat_map(|(g, vs)| vs.into_iter().map(move |v| (g, v)))
        .collect();
    schemas(&gvs)
});

static V3: LazyLock<BTreeMap<(String, String), Value>> = LazyLock::new(|| {
    registry::groups()
        .into_iter()
        .flat_map(|(g, vs)| vs.into_iter().map(move |v| (g, v)))
        .map(|(g, v)| ((g.to_string(), v.to_string()), build_v3(g, v)))
        .collect()
});

static V2: LazyLock<Value> = LazyLock::new(build_v2);

fn new_generator() -> SchemaGenerator {
    SchemaSettings::draft07()
        .with(|s| {
            s.definitions_path = "/definitions".into();
            s.meta_schema = None;
            s.transforms.clear();
        })
        .into_generator()
}

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({"group": group, "kind": kind, "version": version})
}

fn def_ref(name: &str) -> Value {
    json!({"$ref": format!("#/definitions/{name}")})
}

/// The schemas of the resources of `gvs` (kinds and lists, the kinds their subresources take)
/// and the meta types, with GVK extensions and list semantics.
fn schemas(gvs: &[(&str, &str)]) -> Map<String, Value> {
    let mut generator = new_generator();
    for add in META {
        add(&mut generator);
    }
    let mut kinds: Vec<(String, Value)> = Vec::new();
    let mut lists: Vec<(String, String, Value)> = Vec::new();
    for r in RESOURCES
        .iter()
        .filter(|r| gvs.contains(&(r.group, r.version)))
    {
        if let Some(k) = kind_schema(r.group, r.version, r.kind) {
            (k.add)(&mut generator);
            let name = (k.name)().into_owned();
            kinds.push((name.clone(), gvk(r.group, r.version, r.kind)));
            lists.push((
                name,
                r.kind.to_string(),
                gvk(r.group, r.version, &format!("{}List", r.kind)),
            ));
        }
        for (g, v, kind) in r.subresources.iter().filter_map(|s| s.kind()) {
            if let Some(k) = kind_schema(g, v, kind) {
                (k.add)(&mut generator);
                kinds.push(((k.name)().into_owned(), gvk(g, v, kind)));
            }
        }
    }
    let mut defs = generator.take_definitions(false);
    for (name, gvk) in kinds {
        set_gvk(&mut defs, &name, vec![gvk]);
    }
    for (item, kind, gvk) in lists {
        let list_name = format!("{item}List");
        defs.insert(
            list_name,
            json!({
                "description": format!("{kind}List is a list of {kind} objects."),
                "type": "object",
                "properties": {
                    "apiVersion": {"description": "APIVersion defines the versioned schema of this representation of an object.", "type": "string"},
                    "items": {"description": format!("List of {kind} objects."), "type": "array", "items": def_ref(&item)},
                    "kind": {"description": "Kind is a string value representing the REST resource this object represents.", "type": "string"},
                    "metadata": {"$ref": format!("#/definitions/{LIST_META}"), "description": "Standard list metadata."},
                },
                "required": ["items"],
                "x-kubernetes-group-version-kind": [gvk],
            }),
        );
    }
    set_gvk(&mut defs, STATUS, vec![gvk("", "v1", "Status")]);
    let per_gv = |kind: &str| gvs.iter().map(|(g, v)| gvk(g, v, kind)).collect::<Vec<_>>();
    set_gvk(&mut defs, DELETE_OPTIONS, per_gv("DeleteOptions"));
    set_gvk(&mut defs, WATCH_EVENT, per_gv("WatchEvent"));
    for name in ATOMIC_STRUCTS {
        if let Some(Value::Object(def)) = defs.get_mut(*name) {
            def.insert("x-kubernetes-map-type".into(), "atomic".into());
        }
    }
    for (definition, field, list, merge_key, strategy) in LIST_SEMANTICS {
        let Some(prop) = defs
            .get_mut(*definition)
            .and_then(|d| d.get_mut("properties"))
            .and_then(|p| p.get_mut(*field))
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        match list {
            ListType::Map(keys) => {
                prop.insert("x-kubernetes-list-type".into(), "map".into());
                prop.insert("x-kubernetes-list-map-keys".into(), json!(keys));
            }
            ListType::Set => {
                prop.insert("x-kubernetes-list-type".into(), "set".into());
            }
        }
        if let Some(key) = merge_key {
            prop.insert("x-kubernetes-patch-merge-key".into(), (*key).into());
        }
        prop.insert("x-kubernetes-patch-strategy".into(), (*strategy).into());
    }
    defs
}

fn set_gvk(defs: &mut Map<String, Value>, name: &str, gvks: Vec<Value>) {
    if let Some(Value::Object(def)) = defs.get_mut(name) {
        // k8s-openapi marks `metadata` (and some `spec`s) required, as its Rust fields are not
        // optional; upstream does not.
        if let Some(Value::Array(required)) = def.get_mut("required") {
            required.retain(|r| r != "metadata" && r != "spec");
            if required.is_empty() {
                def.remove("required");
            }
        }
        def.insert("x-kubernetes-group-version-kind".into(), Value::Array(gvks));
    }
}

/// A query or path parameter.
#[derive(Clone)]
struct Param {
    name: &'static str,
    location: &'static str,
    ty: &'static str,
    description: Cow<'static, str>,
}

const fn query(name: &'static str, ty: &'static str, description: &'static str) -> Param {
    Param {
        name,
        location: "query",
        ty,
        description: Cow::Borrowed(description),
    }
}

const ALLOW_WATCH_BOOKMARKS: Param = query(
    "allowWatchBookmarks",
    "boolean",
    "allowWatchBookmarks requests watch events with type \"BOOKMARK\". Servers may ignore it; clients must not assume bookmarks are sent at any interval.",
);
const CONTINUE: Param = query(
    "continue",
    "string",
    "The continue option should be set when retrieving more results from the server: the value the server returned in the previous list's metadata.continue.",
);
const DRY_RUN: Param = query(
    "dryRun",
    "string",
    "When present, indicates that modifications should not be persisted. Valid values are: - All: all dry run stages will be processed",
);
const FIELD_MANAGER: Param = query(
    "fieldManager",
    "string",
    "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters.",
);
const FIELD_MANAGER_APPLY: Param = query(
    "fieldManager",
    "string",
    "fieldManager is a name associated with the actor or entity that is making these changes. It is required for apply requests (application/apply-patch) and optional for the other patch types.",
);
const FIELD_VALIDATION: Param = query(
    "fieldValidation",
    "string",
    "fieldValidation instructs the server on how to handle objects in the request containing unknown or duplicate fields. Valid values are: - Ignore: drops them silently. - Warn: drops them and sends a warning for each one. - Strict: fails the request with a BadRequest error naming them. This is the default.",
);
const FIELD_SELECTOR: Param = query(
    "fieldSelector",
    "string",
    "A selector to restrict the list of returned objects by their fields. Defaults to everything.",
);
const FORCE: Param = query(
    "force",
    "boolean",
    "Force is going to \"force\" Apply requests: the request re-acquires conflicting fields owned by other people. Force must be unset for non-apply patch requests.",
);
const GRACE_PERIOD: Param = query(
    "gracePeriodSeconds",
    "integer",
    "The duration in seconds before the object should be deleted. Zero means delete immediately. If unset, the default grace period of the type is used.",
);
const IGNORE_STORE_READ_ERROR: Param = query(
    "ignoreStoreReadErrorWithClusterBreakingPotential",
    "boolean",
    "if set to true, it will trigger an unsafe deletion of the resource in case the normal deletion flow fails with a corrupt object error.",
);
const LABEL_SELECTOR: Param = query(
    "labelSelector",
    "string",
    "A selector to restrict the list of returned objects by their labels. Defaults to everything.",
);
const LIMIT: Param = query(
    "limit",
    "integer",
    "limit is a maximum number of responses to return for a list call. If more items exist, the server sets the continue field on the list metadata.",
);
const ORPHAN_DEPENDENTS: Param = query(
    "orphanDependents",
    "boolean",
    "Deprecated: please use the PropagationPolicy, this field will be deprecated in 1.7. Should the dependent objects be orphaned.",
);
const PRETTY: Param = query(
    "pretty",
    "string",
    "If 'true', then the output is pretty printed. Defaults to 'false' unless the user agent indicates a browser or command-line HTTP tool (curl and wget).",
);
const PROPAGATION_POLICY: Param = query(
    "propagationPolicy",
    "string",
    "Whether and how garbage collection will be performed. Acceptable values are: 'Orphan', 'Background', 'Foreground'.",
);
const RESOURCE_VERSION: Param = query(
    "resourceVersion",
    "string",
    "resourceVersion sets a constraint on what resource versions a request may be served from. Defaults to unset.",
);
const RESOURCE_VERSION_MATCH: Param = query(
    "resourceVersionMatch",
    "string",
    "resourceVersionMatch determines how resourceVersion is applied to list calls. Defaults to unset.",
);
const SEND_INITIAL_EVENTS: Param = query(
    "sendInitialEvents",
    "boolean",
    "`sendInitialEvents=true` may be set together with `watch=true`: the stream begins with synthetic events for the current state of the objects, then a bookmark.",
);
const TIMEOUT_SECONDS: Param = query(
    "timeoutSeconds",
    "integer",
    "Timeout for the list/watch call. This limits the duration of the call, regardless of any activity or inactivity.",
);
const WATCH: Param = query(
    "watch",
    "boolean",
    "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications. Specify resourceVersion.",
);
const NAMESPACE: Param = Param {
    name: "namespace",
    location: "path",
    ty: "string",
    description: Cow::Borrowed("object name and auth scope, such as for teams and projects"),
};

const LIST_PARAMS: &[Param] = &[
    ALLOW_WATCH_BOOKMARKS,
    CONTINUE,
    FIELD_SELECTOR,
    LABEL_SELECTOR,
    LIMIT,
    RESOURCE_VERSION,
    RESOURCE_VERSION_MATCH,
    SEND_INITIAL_EVENTS,
    TIMEOUT_SECONDS,
    WATCH,
];
const WRITE_PARAMS: &[Param] = &[DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION];
const PATCH_PARAMS: &[Param] = &[DRY_RUN, FIELD_MANAGER_APPLY, FIELD_VALIDATION, FORCE];
const DELETE_PARAMS: &[Param] = &[
    DRY_RUN,
    GRACE_PERIOD,
    IGNORE_STORE_READ_ERROR,
    ORPHAN_DEPENDENTS,
    PROPAGATION_POLICY,
];
const DELETE_COLLECTION_PARAMS: &[Param] = &[
    CONTINUE,
    DRY_RUN,
    FIELD_SELECTOR,
    GRACE_PERIOD,
    IGNORE_STORE_READ_ERROR,
    LABEL_SELECTOR,
    LIMIT,
    ORPHAN_DEPENDENTS,
    PROPAGATION_POLICY,
    RESOURCE_VERSION,
    RESOURCE_VERSION_MATCH,
    SEND_INITIAL_EVENTS,
    TIMEOUT_SECONDS,
];

const PATCH_TYPES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
];
const PRODUCES: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
];
const PRODUCES_LIST: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
    "application/json;stream=watch",
    "application/vnd.kubernetes.protobuf;stream=watch",
];

/// One operation of a path.
struct Operation {
    method: &'static str,
    id: String,
    description: String,
    action: &'static str,
    gvk: Value,
    params: &'static [Param],
    /// The request body's schema and content types.
    body: Option<(String, &'static [&'static str])>,
    /// Status codes with the schema of their body.
    responses: Vec<(u16, String)>,
    produces: &'static [&'static str],
}

/// One path with its path-level parameters.
struct PathItem {
    path: String,
    params: Vec<Param>,
    ops: Vec<Operation>,
}

/// `core_v1`, `apps_v1`, `rbacAuthorization_v1`: the tag of a group-version.
fn tag(group: &str, version: &str) -> String {
    let mut out = String::new();
    for (i, part) in group_words(group).iter().enumerate() {
        if i == 0 {
            out.push_str(part);
        } else {
            out.push_str(&capitalize(part));
        }
    }
    format!("{out}_{version}")
}

/// `CoreV1`, `AppsV1`, `RbacAuthorizationV1`: the group-version in operation ids.
fn op_gv(group: &str, version: &str) -> String {
    let words: String = group_words(group).iter().map(|w| capitalize(w)).collect();
    format!("{words}{}", capitalize(version))
}

fn group_words(group: &str) -> Vec<&str> {
    if group.is_empty() {
        return vec!["core"];
    }
    group.trim_end_matches(".k8s.io").split('.').collect()
}

fn capitalize(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn gv_prefix(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    }
}

/// The paths upstream serves for the resources of one group-version.
fn paths(group: &str, version: &str) -> Vec<PathItem> {
    let prefix = gv_prefix(group, version);
    let gv = op_gv(group, version);
    let mut out = vec![PathItem {
        path: format!("{prefix}/"),
        params: Vec::new(),
        ops: vec![Operation {
            method: "get",
            id: format!("get{gv}APIResources"),
            description: "get available resources".into(),
            action: "",
            gvk: Value::Null,
            params: &[],
            body: None,
            responses: vec![(200, RESOURCE_LIST.into())],
            produces: PRODUCES,
        }],
    }];
    for r in RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        let Some(name) = schema_name(r.group, r.version, r.kind) else {
            continue;
        };
        resource_paths(r, &name, &prefix, &gv, &mut out);
    }
    out
}

fn resource_paths(r: &Resource, schema: &str, prefix: &str, gv: &str, out: &mut Vec<PathItem>) {
    let kind = r.kind;
    let this = gvk(r.group, r.version, kind);
    let list = format!("{schema}List");
    let (ns_path, ns_word, ns_params) = if r.namespaced {
        ("/namespaces/{namespace}", "Namespaced", vec![NAMESPACE])
    } else {
        ("", "", Vec::new())
    };
    let name_param = Param {
        name: "name",
        location: "path",
        ty: "string",
        description: Cow::Owned(format!("name of the {kind}")),
    };
    let with = |mut params: Vec<Param>, extra: &[Param]| {
        params.extend_from_slice(extra);
        params
    };
    let op = |method, id: String, description: String, action, params, body, responses| Operation {
        method,
        id,
        description,
        action,
        gvk: this.clone(),
        params,
        body,
        responses,
        produces: PRODUCES,
    };
    let collection = format!("{prefix}{ns_path}/{}", r.plural);
    out.push(PathItem {
        path: collection.clone(),
        params: with(ns_params.clone(), &[PRETTY]),
        ops: vec![
            Operation {
                produces: PRODUCES_LIST,
                ..op(
                    "get",
                    format!("list{gv}{ns_word}{kind}"),
                    format!("list or watch objects of kind {kind}"),
                    "list",
                    LIST_PARAMS,
                    None,
                    vec![(200, list.clone())],
                )
            },
            op(
                "post",
                format!("create{gv}{ns_word}{kind}"),
                format!("create {} {kind}", article(kind)),
                "post",
                WRITE_PARAMS,
                Some((schema.to_string(), &["*/*"])),
                vec![
                    (200, schema.into()),
                    (201, schema.into()),
                    (202, schema.into()),
                ],
            ),
            op(
                "delete",
                format!("delete{gv}Collection{ns_word}{kind}"),
                format!("delete collection of {kind}"),
                "deletecollection",
                DELETE_COLLECTION_PARAMS,
                Some((DELETE_OPTIONS.to_string(), &["*/*"])),
                vec![(200, STATUS.into())],
            ),
        ],
    });
    out.push(PathItem {
        path: format!("{collection}/{{name}}"),
        params: with(
            vec![name_param.clone()],
            &with(ns_params.clone(), &[PRETTY]),
        ),
        ops: vec![
            op(
                "get",
                format!("read{gv}{ns_word}{kind}"),
                format!("read the specified {kind}"),
                "get",
                &[],
                None,
                vec![(200, schema.into())],
            ),
            op(
                "put",
                format!("replace{gv}{ns_word}{kind}"),
                format!("replace the specified {kind}"),
                "put",
                WRITE_PARAMS,
                Some((schema.to_string(), &["*/*"])),
                vec![(200, schema.into()), (201, schema.into())],
            ),
            op(
                "patch",
                format!("patch{gv}{ns_word}{kind}"),
                format!("partially update the specified {kind}"),
                "patch",
                PATCH_PARAMS,
                Some((PATCH.to_string(), PATCH_TYPES)),
                vec![(200, schema.into()), (201, schema.into())],
            ),
            op(
                "delete",
                format!("delete{gv}{ns_word}{kind}"),
                format!("delete {} {kind}", article(kind)),
                "delete",
                DELETE_PARAMS,
                Some((DELETE_OPTIONS.to_string(), &["*/*"])),
                vec![(200, STATUS.into()), (202, STATUS.into())],
            ),
        ],
    });
    if r.namespaced {
        out.push(PathItem {
            path: format!("{prefix}/{}", r.plural),
            params: with(Vec::new(), &[PRETTY]),
            ops: vec![Operation {
                produces: PRODUCES_LIST,
                ..op(
                    "get",
                    format!("list{gv}{kind}ForAllNamespaces"),
                    format!("list or watch objects of kind {kind}"),
                    "list",
                    LIST_PARAMS,
                    None,
                    vec![(200, list.clone())],
                )
            }],
        });
    }
    let watch_list = |path: String, id: String, params: Vec<Param>| PathItem {
        path,
        params: with(params, LIST_PARAMS),
        ops: vec![Operation {
            produces: PRODUCES_LIST,
            ..op(
                "get",
                id,
                format!(
                    "watch individual changes to a list of {kind}. deprecated: use the 'watch' parameter with a list operation instead."
                ),
                "watchlist",
                &[],
                None,
                vec![(200, WATCH_EVENT.into())],
            )
        }],
    };
    out.push(watch_list(
        format!("{prefix}/watch{ns_path}/{}", r.plural),
        format!("watch{gv}{ns_word}{kind}List"),
        ns_params.clone(),
    ));
    out.push(PathItem {
        path: format!("{prefix}/watch{ns_path}/{}/{{name}}", r.plural),
        params: with(with(vec![name_param.clone()], &ns_params), LIST_PARAMS),
        ops: vec![Operation {
            produces: PRODUCES_LIST,
            ..op(
                "get",
                format!("watch{gv}{ns_word}{kind}"),
                format!(
                    "watch changes to an object of kind {kind}. deprecated: use the 'watch' parameter with a list operation instead, filtered to a single item with the 'fieldSelector' parameter."
                ),
                "watch",
                &[],
                None,
                vec![(200, WATCH_EVENT.into())],
            )
        }],
    });
    if r.namespaced {
        out.push(watch_list(
            format!("{prefix}/watch/{}", r.plural),
            format!("watch{gv}{kind}ListForAllNamespaces"),
            Vec::new(),
        ));
    }
    for sub in r.subresources {
        let (verbs, body_kind): (&[&str], Option<(&str, &str, &str)>) = match sub {
            Subresource::Status => (&["get", "put", "patch"], None),
            Subresource::Scale => (&["get", "put", "patch"], sub.kind()),
            Subresource::Binding | Subresource::Eviction | Subresource::Token => {
                (&["post"], sub.kind())
            }
            Subresource::Finalize => (&["put"], None),
            Subresource::Log
            | Subresource::Exec
            | Subresource::Attach
            | Subresource::PortForward => continue,
        };
        let (sub_schema, sub_gvk) = match body_kind {
            Some((g, v, k)) => match schema_name(g, v, k) {
                Some(name) => (name, gvk(g, v, k)),
                None => continue,
            },
            None => (schema.to_string(), this.clone()),
        };
        let word = capitalize(sub.name());
        let noun = sub.name();
        let ops = verbs
            .iter()
            .map(|verb| {
                let (id, description, params, body, responses): (_, _, &'static [Param], _, _) =
                    match *verb {
                        "get" => (
                            format!("read{gv}{ns_word}{kind}{word}"),
                            format!("read {noun} of the specified {kind}"),
                            &[],
                            None,
                            vec![(200, sub_schema.clone())],
                        ),
                        "put" => (
                            format!("replace{gv}{ns_word}{kind}{word}"),
                            format!("replace {noun} of the specified {kind}"),
                            WRITE_PARAMS,
                            Some((sub_schema.clone(), &["*/*"][..])),
                            vec![(200, sub_schema.clone()), (201, sub_schema.clone())],
                        ),
                        "patch" => (
                            format!("patch{gv}{ns_word}{kind}{word}"),
                            format!("partially update {noun} of the specified {kind}"),
                            PATCH_PARAMS,
                            Some((PATCH.to_string(), PATCH_TYPES)),
                            vec![(200, sub_schema.clone()), (201, sub_schema.clone())],
                        ),
                        _ => (
                            format!("create{gv}{ns_word}{kind}{word}"),
                            format!("create {noun} of {} {kind}", article(kind)),
                            WRITE_PARAMS,
                            Some((sub_schema.clone(), &["*/*"][..])),
                            vec![
                                (200, sub_schema.clone()),
                                (201, sub_schema.clone()),
                                (202, sub_schema.clone()),
                            ],
                        ),
                    };
                Operation {
                    method: verb,
                    id,
                    description,
                    action: if *verb == "get" { "get" } else { verb },
                    gvk: sub_gvk.clone(),
                    params,
                    body,
                    responses,
                    produces: PRODUCES,
                }
            })
            .collect();
        out.push(PathItem {
            path: format!("{collection}/{{name}}/{}", sub.name()),
            params: with(
                vec![name_param.clone()],
                &with(ns_params.clone(), &[PRETTY]),
            ),
            ops,
        });
    }
}

fn article(kind: &str) -> &'static str {
    match kind.chars().next() {
        Some('A' | 'E' | 'I' | 'O' | 'U') => "an",
        _ => "a",
    }
}

fn response_description(code: u16) -> &'static str {
    match code {
        201 => "Created",
        202 => "Accepted",
        _ => "OK",
    }
}

fn render_param_v3(p: &Param) -> Value {
    let mut out = json!({
        "name": p.name,
        "in": p.location,
        "description": p.description,
        "schema": {"type": p.ty, "uniqueItems": true},
    });
    if p.location == "path" {
        out["required"] = true.into();
    }
    out
}

fn render_param_v2(p: &Param) -> Value {
    let mut out = json!({
        "name": p.name,
        "in": p.location,
        "description": p.description,
        "type": p.ty,
        "uniqueItems": true,
    });
    if p.location == "path" {
        out["required"] = true.into();
    }
    out
}

fn extensions(op: &Operation, out: &mut Map<String, Value>) {
    if !op.action.is_empty() {
        out.insert("x-kubernetes-action".into(), op.action.into());
    }
    if !op.gvk.is_null() {
        out.insert("x-kubernetes-group-version-kind".into(), op.gvk.clone());
    }
}

fn render_op_v3(op: &Operation, tag: &str) -> Value {
    let mut out = Map::new();
    out.insert("tags".into(), json!([tag]));
    out.insert("description".into(), op.description.clone().into());
    out.insert("operationId".into(), op.id.clone().into());
    if !op.params.is_empty() {
        let params = op.params.iter().map(render_param_v3).collect();
        out.insert("parameters".into(), Value::Array(params));
    }
    if let Some((schema, types)) = &op.body {
        let content: Map<String, Value> = types
            .iter()
            .map(|t| (t.to_string(), json!({"schema": def_ref(schema)})))
            .collect();
        out.insert(
            "requestBody".into(),
            json!({"content": content, "required": true}),
        );
    }
    let mut responses: Map<String, Value> = op
        .responses
        .iter()
        .map(|(code, schema)| {
            let content: Map<String, Value> = op
                .produces
                .iter()
                .map(|t| (t.to_string(), json!({"schema": def_ref(schema)})))
                .collect();
            (
                code.to_string(),
                json!({"description": response_description(*code), "content": content}),
            )
        })
        .collect();
    responses.insert("401".into(), json!({"description": "Unauthorized"}));
    out.insert("responses".into(), Value::Object(responses));
    extensions(op, &mut out);
    Value::Object(out)
}

fn render_op_v2(op: &Operation, tag: &str) -> Value {
    let mut out = Map::new();
    out.insert("description".into(), op.description.clone().into());
    let consumes = op.body.as_ref().map_or(&["*/*"][..], |(_, types)| *types);
    out.insert("consumes".into(), json!(consumes));
    out.insert("produces".into(), json!(op.produces));
    out.insert("schemes".into(), json!(["https"]));
    out.insert("tags".into(), json!([tag]));
    out.insert("operationId".into(), op.id.clone().into());
    let mut params: Vec<Value> = Vec::new();
    if let Some((schema, _)) = &op.body {
        params.push(
            json!({"name": "body", "in": "body", "required": true, "schema": def_ref(schema)}),
        );
    }
    params.extend(op.params.iter().map(render_param_v2));
    if !params.is_empty() {
        out.insert("parameters".into(), Value::Array(params));
    }
    let mut responses: Map<String, Value> = op
        .responses
        .iter()
        .map(|(code, schema)| {
            (
                code.to_string(),
                json!({"description": response_description(*code), "schema": def_ref(schema)}),
            )
        })
        .collect();
    responses.insert("401".into(), json!({"description": "Unauthorized"}));
    out.insert("responses".into(), Value::Object(responses));
    extensions(op, &mut out);
    Value::Object(out)
}

fn render_paths(
    items: &[PathItem],
    tag: &str,
    op: fn(&Operation, &str) -> Value,
    param: fn(&Param) -> Value,
) -> Map<String, Value> {
    items
        .iter()
        .map(|item| {
            let mut out = Map::new();
            for o in &item.ops {
                out.insert(o.method.into(), op(o, tag));
            }
            if !item.params.is_empty() {
                out.insert("parameters".into(), item.params.iter().map(param).collect());
            }
            (item.path.clone(), Value::Object(out))
        })
        .collect()
}

fn bearer_token() -> Value {
    json!({
        "BearerToken": {
            "type": "apiKey",
            "description": "Bearer Token authentication",
            "name": "authorization",
            "in": "header",
        }
    })
}

fn build_v3(group: &str, version: &str) -> Value {
    let defs = schemas(&[(group, version)]);
    let paths = render_paths(
        &paths(group, version),
        &tag(group, version),
        render_op_v3,
        render_param_v3,
    );
    let mut doc = json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": INFO_VERSION},
        "paths": paths,
        "components": {"schemas": defs, "securitySchemes": bearer_token()},
        "security": [{"BearerToken": []}],
    });
    to_v3_refs(&mut doc);
    doc
}

/// Rewrites `#/definitions/` refs to `#/components/schemas/`, wrapping a ref that carries other
/// keys (a description) as `allOf: [{$ref}]` as upstream's v3 documents do.
fn to_v3_refs(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref")
                && let Some(name) = r.strip_prefix("#/definitions/")
            {
                let target = json!({"$ref": format!("#/components/schemas/{name}")});
                map.remove("$ref");
                if map.is_empty() {
                    *value = target;
                } else {
                    map.insert("allOf".into(), json!([target]));
                }
                return;
            }
            map.values_mut().for_each(to_v3_refs);
        }
        Value::Array(items) => items.iter_mut().for_each(to_v3_refs),
        _ => {}
    }
}

fn build_v2() -> Value {
    let mut paths = Map::new();
    for (group, versions) in registry::groups() {
        for version in versions {
            paths.extend(render_paths(
                &self::paths(group, version),
                &tag(group, version),
                render_op_v2,
                render_param_v2,
            ));
        }
    }
    json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": INFO_VERSION},
        "paths": paths,
        "definitions": DEFINITIONS.clone(),
        "securityDefinitions": bearer_token(),
        "security": [{"BearerToken": []}],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `$ref` in `doc` with its JSON path.
    fn refs(value: &Value, path: &str, out: &mut Vec<(String, String)>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    if k == "$ref" {
                        if let Value::String(r) = v {
                            out.push((path.to_string(), r.clone()));
                        }
                    } else {
                        refs(v, &format!("{path}/{k}"), out);
                    }
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    refs(v, &format!("{path}/{i}"), out);
                }
            }
            _ => {}
        }
    }

    fn v3_schema<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
        let schema = match schema.get("allOf").and_then(|a| a.get(0)) {
            Some(inner) => inner,
            None => schema,
        };
        match schema.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                let name = r.strip_prefix("#/components/schemas/").expect("v3 ref");
                &doc["components"]["schemas"][name]
            }
            None => schema,
        }
    }

    #[test]
    fn every_kind_has_a_schema_with_its_gvk_in_its_document() {
        for r in RESOURCES {
            let doc = v3_document(r.group, r.version).expect("document");
            let name = schema_name(r.group, r.version, r.kind).expect("schema name");
            let schema = &doc["components"]["schemas"][&name];
            let gvks = schema["x-kubernetes-group-version-kind"]
                .as_array()
                .unwrap_or_else(|| panic!("{name} has no gvk"));
            assert!(
                gvks.contains(&gvk(r.group, r.version, r.kind)),
                "{name}: {gvks:?}"
            );
            let list = &doc["components"]["schemas"][format!("{name}List")];
            assert_eq!(
                list["x-kubernetes-group-version-kind"][0]["kind"],
                format!("{}List", r.kind)
            );
        }
    }

    #[test]
    fn every_ref_resolves_within_its_document() {
        for (group, versions) in registry::groups() {
            for version in versions {
                let doc = v3_document(group, version).expect("document");
                let mut found = Vec::new();
                refs(&doc, "", &mut found);
                assert!(!found.is_empty());
                for (path, r) in found {
                    let name = r
                        .strip_prefix("#/components/schemas/")
                        .unwrap_or_else(|| panic!("{path}: {r}"));
                    assert!(
                        doc["components"]["schemas"].get(name).is_some(),
                        "{group}/{version}{path}: {r} does not resolve"
                    );
                }
            }
        }
        let v2 = v2_document();
        let mut found = Vec::new();
        refs(&v2, "", &mut found);
        for (path, r) in found {
            let name = r
                .strip_prefix("#/definitions/")
                .unwrap_or_else(|| panic!("{path}: {r}"));
            assert!(v2["definitions"].get(name).is_some(), "{path}: {r}");
        }
    }

    #[test]
    fn pod_containers_resolve_to_a_described_container() {
        let doc = v3_document("", "v1").expect("core");
        let pod = &doc["components"]["schemas"]["io.k8s.api.core.v1.Pod"];
        let spec = v3_schema(&doc, &pod["properties"]["spec"]);
        let containers = &spec["properties"]["containers"];
        assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
        assert_eq!(containers["x-kubernetes-list-map-keys"], json!(["name"]));
        let container = v3_schema(&doc, &containers["items"]);
        assert!(
            container["description"]
                .as_str()
                .is_some_and(|d| !d.is_empty())
        );
        assert!(container["properties"]["image"]["description"].is_string());
        assert_eq!(container["required"], json!(["name"]));
        // A described ref is wrapped in allOf, as upstream.
        assert!(pod["properties"]["metadata"]["allOf"].is_array());
        assert!(pod["properties"]["metadata"]["description"].is_string());
    }

    #[test]
    fn patch_operations_take_all_four_types_and_field_validation() {
        let doc = v3_document("apps", "v1").expect("apps");
        let path = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"];
        let patch = &path["patch"];
        assert_eq!(patch["operationId"], "patchAppsV1NamespacedDeployment");
        assert_eq!(patch["x-kubernetes-action"], "patch");
        assert_eq!(
            patch["x-kubernetes-group-version-kind"],
            json!({"group": "apps", "kind": "Deployment", "version": "v1"})
        );
        let content = patch["requestBody"]["content"]
            .as_object()
            .expect("content");
        for t in PATCH_TYPES {
            assert!(content.contains_key(*t), "{t}");
        }
        let names: Vec<&str> = patch["parameters"]
            .as_array()
            .expect("parameters")
            .iter()
            .filter(|p| p["in"] == "query")
            .filter_map(|p| p["name"].as_str())
            .collect();
        for n in ["fieldValidation", "dryRun", "fieldManager", "force"] {
            assert!(names.contains(&n), "{n} missing: {names:?}");
        }
        // Scale is its own kind.
        let scale = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"];
        assert_eq!(
            scale["put"]["operationId"],
            "replaceAppsV1NamespacedDeploymentScale"
        );
        assert_eq!(
            scale["get"]["x-kubernetes-group-version-kind"]["kind"],
            "Scale"
        );
        assert!(doc["components"]["schemas"]["io.k8s.api.autoscaling.v1.Scale"].is_object());
    }

    #[test]
    fn core_paths_follow_upstream_names() {
        let doc = v3_document("", "v1").expect("core");
        let paths = &doc["paths"];
        assert_eq!(
            paths["/api/v1/pods"]["get"]["operationId"],
            "listCoreV1PodForAllNamespaces"
        );
        assert_eq!(
            paths["/api/v1/namespaces/{namespace}/pods"]["delete"]["operationId"],
            "deleteCoreV1CollectionNamespacedPod"
        );
        assert_eq!(
            paths["/api/v1/nodes/{name}/status"]["patch"]["operationId"],
            "patchCoreV1NodeStatus"
        );
        assert_eq!(
            paths["/api/v1/namespaces/{namespace}/pods"]["post"]["tags"],
            json!(["core_v1"])
        );
        let rbac = v3_document("rbac.authorization.k8s.io", "v1").expect("rbac");
        assert_eq!(
            rbac["paths"]["/apis/rbac.authorization.k8s.io/v1/clusterroles"]["get"]["operationId"],
            "listRbacAuthorizationV1ClusterRole"
        );
        assert!(v3_document("nope", "v1").is_none());
    }

    #[test]
    fn list_semantics_name_real_fields() {
        for (definition, field, ..) in LIST_SEMANTICS {
            let prop = &DEFINITIONS[*definition]["properties"][*field];
            assert_eq!(prop["type"], "array", "{definition}.{field}");
        }
        for name in ATOMIC_STRUCTS {
            assert_eq!(
                DEFINITIONS[*name]["x-kubernetes-map-type"], "atomic",
                "{name}"
            );
        }
        assert_eq!(
            list_type("io.k8s.api.core.v1.Container", "ports"),
            Some(ListType::Map(&["containerPort", "protocol"]))
        );
        assert_eq!(list_type("io.k8s.api.core.v1.PodSpec", "tolerations"), None);
    }

    #[test]
    fn v2_document_has_swagger_shape() {
        let v2 = v2_document();
        assert_eq!(v2["swagger"], "2.0");
        let patch = &v2["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"];
        assert_eq!(patch["consumes"], json!(PATCH_TYPES));
        assert_eq!(patch["parameters"][0]["in"], "body");
        assert!(
            v2["definitions"]["io.k8s.api.apps.v1.Deployment"]["x-kubernetes-group-version-kind"]
                .is_array()
        );
    }

    /// By hand: `cargo test -p oxkube-api openapi::tests::write_documents -- --ignored` writes
    /// the documents under $OPENAPI_OUT (default /tmp/openapi): `v3/api/v1.json`,
    /// `v3/apis/<group>/<version>.json` and `v2.json`, to serve to kubectl or diff upstream.
    #[test]
    #[ignore]
    fn write_documents() {
        let dir = std::env::var("OPENAPI_OUT").unwrap_or_else(|_| "/tmp/openapi".into());
        for (group, versions) in registry::groups() {
            for version in versions {
                let prefix = gv_prefix(group, version);
                let path = format!("{dir}/v3{prefix}.json");
                let parent = std::path::Path::new(&path).parent().expect("parent");
                std::fs::create_dir_all(parent).expect("mkdir");
                let doc = v3_document(group, version).expect("document");
                std::fs::write(&path, serde_json::to_string(&doc).expect("json")).expect("write");
            }
        }
        let text = serde_json::to_string(&v2_document()).expect("json");
        std::fs::write(format!("{dir}/v2.json"), text).expect("write");
    }
}
