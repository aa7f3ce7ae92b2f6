//! Server-side `meta.k8s.io/v1` Table output: each kind's column definitions and row cells, as
//! upstream's printers (`pkg/printers/internalversion`) produce them with `Wide: true` (the
//! apiserver always sends the wide cells; kubectl hides priority-1 columns itself).

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::convert;
use crate::registry::Resource;

/// One column of a Table.
struct Column {
    name: &'static str,
    ty: &'static str,
    format: &'static str,
    description: &'static str,
    priority: u8,
}

const NAME_DOC: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const CREATED_DOC: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
const CONTAINERS_DOC: &str = "Names of each container in the template.";
const IMAGES_DOC: &str = "Images referenced by each container in the template.";

/// A column shown by default.
const fn col(name: &'static str, ty: &'static str, description: &'static str) -> Column {
    Column {
        name,
        ty,
        format: "",
        description,
        priority: 0,
    }
}

/// A column shown only with `-o wide`.
const fn wide(name: &'static str, ty: &'static str, description: &'static str) -> Column {
    Column {
        name,
        ty,
        format: "",
        description,
        priority: 1,
    }
}

const NAME: Column = Column {
    name: "Name",
    ty: "string",
    format: "name",
    description: NAME_DOC,
    priority: 0,
};
const AGE: Column = col("Age", "string", CREATED_DOC);
const CREATED_AT: Column = col("Created At", "date", CREATED_DOC);
const CONTAINERS: Column = wide("Containers", "string", CONTAINERS_DOC);
const IMAGES: Column = wide("Images", "string", IMAGES_DOC);

const POD: &[Column] = &[
    NAME,
    col(
        "Ready",
        "string",
        "The aggregate readiness state of this pod for accepting traffic.",
    ),
    col(
        "Status",
        "string",
        "The aggregate status of the containers in this pod.",
    ),
    col(
        "Restarts",
        "string",
        "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
    ),
    AGE,
    wide(
        "IP",
        "string",
        "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.",
    ),
    wide(
        "Node",
        "string",
        "NodeName indicates in which node this pod is scheduled.",
    ),
    wide(
        "Nominated Node",
        "string",
        "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods.",
    ),
    wide(
        "Readiness Gates",
        "string",
        "If specified, all readiness gates will be evaluated for pod readiness.",
    ),
];

const POD_TEMPLATE: &[Column] = &[
    NAME,
    col("Containers", "string", CONTAINERS_DOC),
    col("Images", "string", IMAGES_DOC),
    col("Pod Labels", "string", "The labels for the pod template."),
];

const PDB: &[Column] = &[
    NAME,
    col(
        "Min Available",
        "string",
        "The minimum number of pods that must be available.",
    ),
    col(
        "Max Unavailable",
        "string",
        "The maximum number of pods that may be unavailable.",
    ),
    col(
        "Allowed Disruptions",
        "integer",
        "Calculated number of pods that may be disrupted at this time.",
    ),
    AGE,
];

const REPLICAS: &[Column] = &[
    NAME,
    col(
        "Desired",
        "integer",
        "Replicas is the number of desired replicas.",
    ),
    col(
        "Current",
        "integer",
        "Replicas is the most recently observed number of replicas.",
    ),
    col(
        "Ready",
        "integer",
        "The number of ready replicas for this replica set.",
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    wide(
        "Selector",
        "string",
        "Selector is a label query over pods that should match the replica count.",
    ),
];

const DAEMON_SET: &[Column] = &[
    NAME,
    col(
        "Desired",
        "integer",
        "The total number of nodes that should be running the daemon pod.",
    ),
    col(
        "Current",
        "integer",
        "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod.",
    ),
    col(
        "Ready",
        "integer",
        "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running with a Ready Condition.",
    ),
    col(
        "Up-to-date",
        "integer",
        "The total number of nodes that are running updated daemon pod",
    ),
    col(
        "Available",
        "integer",
        "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available",
    ),
    col(
        "Node Selector",
        "string",
        "NodeSelector is a selector which must be true for the pod to fit on a node.",
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    wide(
        "Selector",
        "string",
        "A label query over pods that are managed by the daemon set.",
    ),
];

const JOB: &[Column] = &[
    NAME,
    col("Status", "string", "Status of the job."),
    col(
        "Completions",
        "string",
        "The number of pods which reached phase Succeeded.",
    ),
    col("Duration", "string", "Time required to complete the job."),
    AGE,
    CONTAINERS,
    IMAGES,
    wide(
        "Selector",
        "string",
        "A label query over pods that should match the pod count.",
    ),
];

const CRON_JOB: &[Column] = &[
    NAME,
    col(
        "Schedule",
        "string",
        "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron.",
    ),
    col(
        "Timezone",
        "string",
        "The time zone name for the given schedule.",
    ),
    col(
        "Suspend",
        "boolean",
        "This flag tells the controller to suspend subsequent executions.",
    ),
    col(
        "Active",
        "integer",
        "A list of pointers to currently running jobs.",
    ),
    col(
        "Last Schedule",
        "string",
        "Information when was the last time the job was successfully scheduled.",
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    wide(
        "Selector",
        "string",
        "A label query over pods that should match the pod count.",
    ),
];

const SERVICE: &[Column] = &[
    NAME,
    col(
        "Type",
        "string",
        "type determines how the Service is exposed.",
    ),
    col(
        "Cluster-IP",
        "string",
        "clusterIP is the IP address of the service and is usually assigned randomly.",
    ),
    col(
        "External-IP",
        "string",
        "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.",
    ),
    col(
        "Port(s)",
        "string",
        "The list of ports that are exposed by this service.",
    ),
    AGE,
    wide(
        "Selector",
        "string",
        "Route service traffic to pods with label keys and values matching this selector.",
    ),
];

const INGRESS: &[Column] = &[
    NAME,
    col(
        "Class",
        "string",
        "The name of the IngressClass resource that should be used for additional configuration",
    ),
    col(
        "Hosts",
        "string",
        "Hosts that incoming requests are matched against before the ingress rule",
    ),
    col(
        "Address",
        "string",
        "Address is a list containing ingress points for the load-balancer",
    ),
    col("Ports", "string", "Ports of TLS configurations that open"),
    AGE,
];

const INGRESS_CLASS: &[Column] = &[
    NAME,
    col(
        "Controller",
        "string",
        "Controller that is responsible for handling this class",
    ),
    col(
        "Parameters",
        "string",
        "A reference to a resource with additional parameters",
    ),
    AGE,
];

const STATEFUL_SET: &[Column] = &[
    NAME,
    col("Ready", "string", "Number of the pod with ready state"),
    AGE,
    CONTAINERS,
    IMAGES,
];

const ENDPOINTS: &[Column] = &[
    NAME,
    col(
        "Endpoints",
        "string",
        "The set of all endpoints is the union of all subsets.",
    ),
    AGE,
];

const ENDPOINT_SLICE: &[Column] = &[
    NAME,
    col(
        "AddressType",
        "string",
        "addressType specifies the type of address carried by this EndpointSlice.",
    ),
    col(
        "Ports",
        "string",
        "ports specifies the list of network ports exposed by each endpoint in this slice.",
    ),
    col(
        "Endpoints",
        "string",
        "endpoints is a list of unique endpoints in this slice.",
    ),
    AGE,
];

const NODE: &[Column] = &[
    NAME,
    col("Status", "string", "The status of the node"),
    col("Roles", "string", "The roles of the node"),
    AGE,
    col("Version", "string", "Kubelet Version reported by the node."),
    wide(
        "Internal-IP",
        "string",
        "List of addresses reachable to the node.",
    ),
    wide(
        "External-IP",
        "string",
        "List of addresses reachable to the node.",
    ),
    wide(
        "OS-Image",
        "string",
        "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).",
    ),
    wide(
        "Kernel-Version",
        "string",
        "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).",
    ),
    wide(
        "Container-Runtime",
        "string",
        "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).",
    ),
];

const EVENT: &[Column] = &[
    col(
        "Last Seen",
        "string",
        "The time at which the most recent occurrence of this event was recorded.",
    ),
    col("Type", "string", "Type of this event (Normal, Warning)."),
    col(
        "Reason",
        "string",
        "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.",
    ),
    col("Object", "string", "The object that this event is about."),
    wide(
        "Subobject",
        "string",
        "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement.",
    ),
    wide(
        "Source",
        "string",
        "The component reporting this event. Should be a short machine understandable string.",
    ),
    col(
        "Message",
        "string",
        "A human-readable description of the status of this operation.",
    ),
    wide(
        "First Seen",
        "string",
        "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)",
    ),
    wide(
        "Count",
        "string",
        "The number of times this event has occurred.",
    ),
    Column {
        name: "Name",
        ty: "string",
        format: "name",
        description: NAME_DOC,
        priority: 1,
    },
];

const NAMESPACE: &[Column] = &[
    NAME,
    col("Status", "string", "The status of the namespace"),
    AGE,
];

const SECRET: &[Column] = &[
    NAME,
    col(
        "Type",
        "string",
        "Used to facilitate programmatic handling of secret data.",
    ),
    col("Data", "string", "Data contains the secret data."),
    AGE,
];

const SERVICE_ACCOUNT: &[Column] = &[
    NAME,
    col(
        "Secrets",
        "string",
        "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use.",
    ),
    AGE,
];

const PERSISTENT_VOLUME: &[Column] = &[
    NAME,
    col(
        "Capacity",
        "string",
        "capacity is the description of the persistent volume's resources and capacity.",
    ),
    col(
        "Access Modes",
        "string",
        "accessModes contains all ways the volume can be mounted.",
    ),
    col(
        "Reclaim Policy",
        "string",
        "persistentVolumeReclaimPolicy defines what happens to a persistent volume when released from its claim.",
    ),
    col(
        "Status",
        "string",
        "phase indicates if a volume is available, bound to a claim, or released by a claim.",
    ),
    col(
        "Claim",
        "string",
        "claimRef is part of a bi-directional binding between PersistentVolume and PersistentVolumeClaim.",
    ),
    col("StorageClass", "string", "StorageClass of the pv"),
    col(
        "VolumeAttributesClass",
        "string",
        "VolumeAttributesClass of the pv",
    ),
    col(
        "Reason",
        "string",
        "reason is a brief CamelCase string that describes any failure and is meant for machine parsing and tidy display in the CLI.",
    ),
    AGE,
    wide(
        "VolumeMode",
        "string",
        "volumeMode defines if a volume is intended to be used with a formatted filesystem or to remain in raw block state.",
    ),
];

const PERSISTENT_VOLUME_CLAIM: &[Column] = &[
    NAME,
    col(
        "Status",
        "string",
        "phase represents the current phase of PersistentVolumeClaim.",
    ),
    col(
        "Volume",
        "string",
        "volumeName is the binding reference to the PersistentVolume backing this claim.",
    ),
    col(
        "Capacity",
        "string",
        "capacity represents the actual resources of the underlying volume.",
    ),
    col(
        "Access Modes",
        "string",
        "accessModes contains the actual access modes the volume backing the PVC has.",
    ),
    col("StorageClass", "string", "StorageClass of the pvc"),
    col(
        "VolumeAttributesClass",
        "string",
        "VolumeAttributesClass of the pvc",
    ),
    AGE,
    wide(
        "VolumeMode",
        "string",
        "volumeMode defines what type of volume is required by the claim.",
    ),
];

const DEPLOYMENT: &[Column] = &[
    NAME,
    col("Ready", "string", "Number of the pod with ready state"),
    col(
        "Up-to-date",
        "string",
        "Total number of non-terminating pods targeted by this deployment that have the desired template spec.",
    ),
    col(
        "Available",
        "string",
        "Total number of available non-terminating pods (ready for at least minReadySeconds) targeted by this deployment.",
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    wide("Selector", "string", "Label selector for pods."),
];

const HPA: &[Column] = &[
    NAME,
    col(
        "Reference",
        "string",
        "scaleTargetRef points to the target resource to scale, and is used to the pods for which metrics should be collected, as well as to actually change the replica count.",
    ),
    col(
        "Targets",
        "string",
        "metrics contains the specifications for which to use to calculate the desired replica count.",
    ),
    col(
        "MinPods",
        "string",
        "minReplicas is the lower limit for the number of replicas to which the autoscaler can scale down.",
    ),
    col(
        "MaxPods",
        "string",
        "maxReplicas is the upper limit for the number of replicas to which the autoscaler can scale up.",
    ),
    col(
        "Replicas",
        "string",
        "currentReplicas is current number of replicas of pods managed by this autoscaler, as last seen by the autoscaler.",
    ),
    AGE,
];

const CONFIG_MAP: &[Column] = &[
    NAME,
    col("Data", "string", "Data contains the configuration data."),
    AGE,
];

const NETWORK_POLICY: &[Column] = &[
    NAME,
    col(
        "Pod-Selector",
        "string",
        "podSelector selects the pods to which this NetworkPolicy object applies.",
    ),
    AGE,
];

const ROLE: &[Column] = &[NAME, CREATED_AT];

const ROLE_BINDING: &[Column] = &[
    NAME,
    col(
        "Role",
        "string",
        "RoleRef can reference a Role in the current namespace or a ClusterRole in the global namespace.",
    ),
    AGE,
    wide("Users", "string", "Users in the roleBinding"),
    wide("Groups", "string", "Groups in the roleBinding"),
    wide(
        "ServiceAccounts",
        "string",
        "ServiceAccounts in the roleBinding",
    ),
];

const CLUSTER_ROLE_BINDING: &[Column] = &[
    NAME,
    col(
        "Role",
        "string",
        "RoleRef can only reference a ClusterRole in the global namespace.",
    ),
    AGE,
    wide("Users", "string", "Users in the clusterRoleBinding"),
    wide("Groups", "string", "Groups in the clusterRoleBinding"),
    wide(
        "ServiceAccounts",
        "string",
        "ServiceAccounts in the clusterRoleBinding",
    ),
];

const LEASE: &[Column] = &[
    NAME,
    col(
        "Holder",
        "string",
        "holderIdentity contains the identity of the holder of a current lease.",
    ),
    AGE,
];

const STORAGE_CLASS: &[Column] = &[
    NAME,
    col(
        "Provisioner",
        "string",
        "provisioner indicates the type of the provisioner.",
    ),
    col(
        "ReclaimPolicy",
        "string",
        "reclaimPolicy controls the reclaimPolicy for dynamically provisioned PersistentVolumes of this storage class.",
    ),
    col(
        "VolumeBindingMode",
        "string",
        "volumeBindingMode indicates how PersistentVolumeClaims should be provisioned and bound.",
    ),
    col(
        "AllowVolumeExpansion",
        "string",
        "allowVolumeExpansion shows whether the storage class allow volume expand.",
    ),
    AGE,
];

const CONTROLLER_REVISION: &[Column] = &[
    NAME,
    col("Controller", "string", "Controller of the object"),
    col(
        "Revision",
        "string",
        "Revision indicates the revision of the state represented by Data.",
    ),
    AGE,
];

const RESOURCE_QUOTA: &[Column] = &[
    NAME,
    col(
        "Request",
        "string",
        "Request represents a minimum amount of cpu/memory that a container may consume.",
    ),
    col(
        "Limit",
        "string",
        "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node.",
    ),
    AGE,
];

const PRIORITY_CLASS: &[Column] = &[
    NAME,
    col(
        "Value",
        "integer",
        "value represents the integer value of this priority class.",
    ),
    col(
        "Global-Default",
        "boolean",
        "globalDefault specifies whether this PriorityClass should be considered as the default priority for pods that do not have any priority class.",
    ),
    AGE,
    col(
        "PreemptionPolicy",
        "string",
        "preemptionPolicy is the Policy for preempting pods with lower priority.",
    ),
];

const VOLUME_ATTACHMENT: &[Column] = &[
    NAME,
    Column {
        name: "Attacher",
        ty: "string",
        format: "name",
        description: "attacher indicates the name of the volume driver that MUST handle this request.",
        priority: 0,
    },
    col(
        "PV",
        "string",
        "persistentVolumeName represents the name of the persistent volume to attach.",
    ),
    col(
        "Node",
        "string",
        "nodeName represents the node that the volume should be attached to.",
    ),
    col(
        "Attached",
        "boolean",
        "attached indicates the volume is successfully attached.",
    ),
    AGE,
];

const CSI_NODE: &[Column] = &[
    NAME,
    col(
        "Drivers",
        "integer",
        "Drivers indicates the number of CSI drivers registered on the node",
    ),
    AGE,
];

const CSI_DRIVER: &[Column] = &[
    NAME,
    col(
        "AttachRequired",
        "boolean",
        "attachRequired indicates this CSI volume driver requires an attach operation.",
    ),
    col(
        "PodInfoOnMount",
        "boolean",
        "podInfoOnMount indicates this CSI volume driver requires additional pod information during mount operations.",
    ),
    col(
        "StorageCapacity",
        "boolean",
        "storageCapacity indicates that the CSI volume driver wants pod scheduling to consider the storage capacity.",
    ),
    col(
        "TokenRequests",
        "string",
        "tokenRequests indicates the CSI driver needs pods' service account tokens it is mounting volume for to do necessary authentication.",
    ),
    col(
        "RequiresRepublish",
        "boolean",
        "requiresRepublish indicates the CSI driver wants `NodePublishVolume` being periodically called to reflect any possible change in the mounted volume.",
    ),
    col(
        "Modes",
        "string",
        "volumeLifecycleModes defines what kind of volumes this CSI volume driver supports.",
    ),
    AGE,
];

/// The columns of upstream's default table convertor, for kinds without a printer.
const DEFAULT: &[Column] = &[NAME, CREATED_AT];

fn columns(res: &Resource) -> &'static [Column] {
    match (res.group, res.kind) {
        ("", "Pod") => POD,
        ("", "PodTemplate") => POD_TEMPLATE,
        ("policy", "PodDisruptionBudget") => PDB,
        ("", "ReplicationController") | ("apps", "ReplicaSet") => REPLICAS,
        ("apps", "DaemonSet") => DAEMON_SET,
        ("batch", "Job") => JOB,
        ("batch", "CronJob") => CRON_JOB,
        ("", "Service") => SERVICE,
        ("networking.k8s.io", "Ingress") => INGRESS,
        ("networking.k8s.io", "IngressClass") => INGRESS_CLASS,
        ("networking.k8s.io", "NetworkPolicy") => NETWORK_POLICY,
        ("apps", "StatefulSet") => STATEFUL_SET,
        ("", "Endpoints") => ENDPOINTS,
        ("discovery.k8s.io", "EndpointSlice") => ENDPOINT_SLICE,
        ("", "Node") => NODE,
        ("", "Event") | ("events.k8s.io", "Event") => EVENT,
        ("", "Namespace") => NAMESPACE,
        ("", "Secret") => SECRET,
        ("", "ServiceAccount") => SERVICE_ACCOUNT,
        ("", "PersistentVolume") => PERSISTENT_VOLUME,
        ("", "PersistentVolumeClaim") => PERSISTENT_VOLUME_CLAIM,
        ("apps", "Deployment") => DEPLOYMENT,
        ("autoscaling", "HorizontalPodAutoscaler") => HPA,
        ("", "ConfigMap") => CONFIG_MAP,
        ("rbac.authorization.k8s.io", "Role" | "ClusterRole") | ("", "LimitRange") => ROLE,
        ("rbac.authorization.k8s.io", "RoleBinding") => ROLE_BINDING,
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => CLUSTER_ROLE_BINDING,
        ("coordination.k8s.io", "Lease") => LEASE,
        ("storage.k8s.io", "StorageClass") => STORAGE_CLASS,
        ("storage.k8s.io", "VolumeAttachment") => VOLUME_ATTACHMENT,
        ("storage.k8s.io", "CSINode") => CSI_NODE,
        ("storage.k8s.io", "CSIDriver") => CSI_DRIVER,
        ("apps", "ControllerRevision") => CONTROLLER_REVISION,
        ("", "ResourceQuota") => RESOURCE_QUOTA,
        ("scheduling.k8s.io", "PriorityClass") => PRIORITY_CLASS,
        _ => DEFAULT,
    }
}

/// The `columnDefinitions` of a meta.k8s.io/v1 Table for the resource: `[{name, type, format,
/// description, priority}]`, upstream's columns (priority 1 = shown with `-o wide`).
pub fn column_definitions(res: &Resource) -> Vec<Value> {
    columns(res)
        .iter()
        .map(|c| {
            json!({
                "name": c.name,
                "type": c.ty,
                "format": c.format,
                "description": c.description,
                "priority": c.priority,
            })
        })
        .collect()
}

/// One row's `cells` for the object, aligned with [`column_definitions`] (wide cells included).
/// `now` is the current time in unix seconds; ages are computed from it.
pub fn cells(res: &Resource, obj: &Value, now: i64) -> Vec<Value> {
    let o = Obj { v: obj, now };
    match (res.group, res.kind) {
        ("", "Pod") => pod(o),
        ("", "PodTemplate") => pod_template(o),
        ("policy", "PodDisruptionBudget") => pdb(o),
        ("", "ReplicationController") => replicas(o, labels_cell(o.get(&["spec", "selector"]))),
        ("apps", "ReplicaSet") => replicas(o, format_label_selector(o.get(&["spec", "selector"]))),
        ("apps", "DaemonSet") => daemon_set(o),
        ("batch", "Job") => job(o),
        ("batch", "CronJob") => cron_job(o),
        ("", "Service") => service(o),
        ("networking.k8s.io", "Ingress") => ingress(o),
        ("networking.k8s.io", "IngressClass") => ingress_class(o),
        ("networking.k8s.io", "NetworkPolicy") => vec![
            o.name(),
            format_label_selector(o.get(&["spec", "podSelector"])),
            o.age(),
        ],
        ("apps", "StatefulSet") => stateful_set(o),
        ("", "Endpoints") => vec![o.name(), endpoints(o).into(), o.age()],
        ("discovery.k8s.io", "EndpointSlice") => endpoint_slice(o),
        ("", "Node") => node(o),
        ("", "Event") => event(o),
        ("events.k8s.io", "Event") => {
            let core = convert::event_to_core(obj.clone());
            event(Obj { v: &core, now })
        }
        ("", "Namespace") => vec![o.name(), o.str(&["status", "phase"]).into(), o.age()],
        ("", "Secret") => secret(o),
        ("", "ServiceAccount") => vec![o.name(), o.len(&["secrets"]).into(), o.age()],
        ("", "PersistentVolume") => persistent_volume(o),
        ("", "PersistentVolumeClaim") => persistent_volume_claim(o),
        ("apps", "Deployment") => deployment(o),
        ("autoscaling", "HorizontalPodAutoscaler") => {
            if res.version == "v1" {
                let v2 = convert::hpa_v1_to_v2(obj.clone());
                hpa(Obj { v: &v2, now })
            } else {
                hpa(o)
            }
        }
        ("", "ConfigMap") => vec![
            o.name(),
            (o.len(&["data"]) + o.len(&["binaryData"])).into(),
            o.age(),
        ],
        ("rbac.authorization.k8s.io", "Role" | "ClusterRole") | ("", "LimitRange") => {
            vec![o.name(), o.created_at()]
        }
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => role_binding(o),
        ("coordination.k8s.io", "Lease") => {
            vec![o.name(), o.str(&["spec", "holderIdentity"]).into(), o.age()]
        }
        ("storage.k8s.io", "StorageClass") => storage_class(o),
        ("storage.k8s.io", "VolumeAttachment") => vec![
            o.name(),
            o.str(&["spec", "attacher"]).into(),
            o.str(&["spec", "source", "persistentVolumeName"]).into(),
            o.str(&["spec", "nodeName"]).into(),
            o.bool(&["status", "attached"]).into(),
            o.age(),
        ],
        ("storage.k8s.io", "CSINode") => {
            vec![o.name(), o.len(&["spec", "drivers"]).into(), o.age()]
        }
        ("storage.k8s.io", "CSIDriver") => csi_driver(o),
        ("apps", "ControllerRevision") => controller_revision(o),
        ("", "ResourceQuota") => resource_quota(o),
        ("scheduling.k8s.io", "PriorityClass") => priority_class(o),
        _ => vec![o.name(), o.created_at()],
    }
}

/// Read access to an object, with the time the row is printed at.
#[derive(Clone, Copy)]
struct Obj<'a> {
    v: &'a Value,
    now: i64,
}

impl<'a> Obj<'a> {
    fn get(&self, path: &[&str]) -> Option<&'a Value> {
        at(self.v, path)
    }

    fn str(&self, path: &[&str]) -> &'a str {
        self.get(path).and_then(Value::as_str).unwrap_or("")
    }

    fn int(&self, path: &[&str]) -> i64 {
        self.get(path).and_then(Value::as_i64).unwrap_or(0)
    }

    fn bool(&self, path: &[&str]) -> bool {
        self.get(path).and_then(Value::as_bool).unwrap_or(false)
    }

    fn list(&self, path: &[&str]) -> &'a [Value] {
        list(self.get(path))
    }

    /// The number of entries of a list or map.
    fn len(&self, path: &[&str]) -> i64 {
        let n = match self.get(path) {
            Some(Value::Array(a)) => a.len(),
            Some(Value::Object(m)) => m.len(),
            _ => 0,
        };
        i64::try_from(n).unwrap_or(i64::MAX)
    }

    fn name(&self) -> Value {
        self.str(&["metadata", "name"]).into()
    }

    fn deleting(&self) -> bool {
        self.get(&["metadata", "deletionTimestamp"])
            .is_some_and(|v| !v.is_null())
    }

    fn age(&self) -> Value {
        self.since(&["metadata", "creationTimestamp"]).into()
    }

    /// `translateTimestampSince`: the human age of a timestamp, `<unknown>` when unset.
    fn since(&self, path: &[&str]) -> String {
        match timestamp(self.get(path)) {
            Some(t) => human_duration(self.now.saturating_sub(t)),
            None => "<unknown>".into(),
        }
    }

    /// The creation time as RFC 3339 in UTC, as the "Created At" columns show it.
    fn created_at(&self) -> Value {
        match self
            .get(&["metadata", "creationTimestamp"])
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<jiff::Timestamp>().ok())
        {
            Some(t) => t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string().into(),
            None => "0001-01-01T00:00:00Z".into(),
        }
    }
}

fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(k))
}

fn list(v: Option<&Value>) -> &[Value] {
    v.and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn str_of<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    at(v, path).and_then(Value::as_str).unwrap_or("")
}

fn int_of(v: &Value, path: &[&str]) -> i64 {
    at(v, path).and_then(Value::as_i64).unwrap_or(0)
}

/// Parses an RFC 3339 time into unix seconds; `None` when absent or unparsable.
fn timestamp(v: Option<&Value>) -> Option<i64> {
    v?.as_str()?
        .parse::<jiff::Timestamp>()
        .ok()
        .map(|t| t.as_second())
}

/// Upstream's `duration.HumanDuration`: a short, rounded-down rendering of a number of seconds.
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// `labels.FormatLabels`: `k=v` pairs sorted by key, `<none>` when empty.
fn labels_cell(map: Option<&Value>) -> Value {
    let pairs: Vec<String> = map
        .and_then(Value::as_object)
        .map(|m| {
            let mut pairs: Vec<(&String, &Value)> = m.iter().collect();
            pairs.sort_by_key(|(k, _)| *k);
            pairs
                .into_iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    if pairs.is_empty() {
        "<none>".into()
    } else {
        pairs.join(",").into()
    }
}

/// A LabelSelector as upstream's `labels.Selector.String()`; `None` when it is invalid.
fn selector_string(sel: Option<&Value>) -> Option<String> {
    let Some(sel) = sel.filter(|v| !v.is_null()) else {
        return Some(String::new());
    };
    let mut reqs: Vec<(String, String)> = Vec::new();
    if let Some(m) = sel.get("matchLabels").and_then(Value::as_object) {
        for (k, v) in m {
            reqs.push((k.clone(), format!("{k}={}", v.as_str()?)));
        }
    }
    for e in list(sel.get("matchExpressions")) {
        let key = e.get("key")?.as_str()?;
        let values: BTreeSet<&str> = list(e.get("values"))
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let values = values.into_iter().collect::<Vec<_>>().join(",");
        let text = match e.get("operator")?.as_str()? {
            "In" => format!("{key} in ({values})"),
            "NotIn" => format!("{key} notin ({values})"),
            "Exists" => key.to_string(),
            "DoesNotExist" => format!("!{key}"),
            _ => return None,
        };
        reqs.push((key.to_string(), text));
    }
    reqs.sort_by(|a, b| a.0.cmp(&b.0));
    Some(
        reqs.into_iter()
            .map(|(_, t)| t)
            .collect::<Vec<_>>()
            .join(","),
    )
}

/// `metav1.FormatLabelSelector`: `<none>` when empty, `<error>` when invalid.
fn format_label_selector(sel: Option<&Value>) -> Value {
    match selector_string(sel) {
        None => "<error>".into(),
        Some(s) if s.is_empty() => "<none>".into(),
        Some(s) => s.into(),
    }
}

/// The names and images of a container list, comma-joined.
fn containers_cells(containers: &[Value]) -> [Value; 2] {
    let names: Vec<&str> = containers.iter().map(|c| str_of(c, &["name"])).collect();
    let images: Vec<&str> = containers.iter().map(|c| str_of(c, &["image"])).collect();
    [names.join(",").into(), images.join(",").into()]
}

/// Whether the first condition of type `ty` has status True.
fn condition_true(conditions: &[Value], ty: &str) -> bool {
    conditions
        .iter()
        .find(|c| str_of(c, &["type"]) == ty)
        .is_some_and(|c| str_of(c, &["status"]) == "True")
}

/// The latest `lastState.terminated.finishedAt` seen so far, as unix seconds.
fn later_restart(latest: Option<i64>, status: &Value) -> Option<i64> {
    let finished = timestamp(at(status, &["lastState", "terminated", "finishedAt"]));
    match (latest, finished) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

fn pod(o: Obj) -> Vec<Value> {
    let mut restarts: i64 = 0;
    let mut sidecar_restarts: i64 = 0;
    let mut last_restart: Option<i64> = None;
    let mut last_sidecar_restart: Option<i64> = None;
    let mut ready = 0;
    let init_specs = o.list(&["spec", "initContainers"]);
    let sidecar = |name: &str| {
        init_specs
            .iter()
            .any(|c| str_of(c, &["name"]) == name && str_of(c, &["restartPolicy"]) == "Always")
    };
    let total = o.list(&["spec", "containers"]).len()
        + init_specs
            .iter()
            .filter(|c| str_of(c, &["restartPolicy"]) == "Always")
            .count();
    let conditions = o.list(&["status", "conditions"]);
    let phase = o.str(&["status", "phase"]);
    let mut reason = match o.str(&["status", "reason"]) {
        "" => phase.to_string(),
        r => r.to_string(),
    };
    if conditions.iter().any(|c| {
        str_of(c, &["type"]) == "PodScheduled" && str_of(c, &["reason"]) == "SchedulingGated"
    }) {
        reason = "SchedulingGated".into();
    }

    let mut initializing = false;
    for (i, status) in o
        .list(&["status", "initContainerStatuses"])
        .iter()
        .enumerate()
    {
        let count = int_of(status, &["restartCount"]);
        restarts = restarts.saturating_add(count);
        last_restart = later_restart(last_restart, status);
        let name = str_of(status, &["name"]);
        let is_sidecar = sidecar(name);
        if is_sidecar {
            sidecar_restarts = sidecar_restarts.saturating_add(count);
            last_sidecar_restart = later_restart(last_sidecar_restart, status);
        }
        let terminated = at(status, &["state", "terminated"]).filter(|v| !v.is_null());
        let waiting_reason = str_of(status, &["state", "waiting", "reason"]);
        if terminated.is_some_and(|t| int_of(t, &["exitCode"]) == 0) {
            continue;
        }
        if is_sidecar && status.get("started").and_then(Value::as_bool) == Some(true) {
            if status.get("ready").and_then(Value::as_bool) == Some(true) {
                ready += 1;
            }
            continue;
        }
        reason = if let Some(t) = terminated {
            match str_of(t, &["reason"]) {
                "" if int_of(t, &["signal"]) != 0 => {
                    format!("Init:Signal:{}", int_of(t, &["signal"]))
                }
                "" => format!("Init:ExitCode:{}", int_of(t, &["exitCode"])),
                r => format!("Init:{r}"),
            }
        } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
            format!("Init:{waiting_reason}")
        } else {
            format!("Init:{i}/{}", init_specs.len())
        };
        initializing = true;
        break;
    }

    if !initializing || condition_true(conditions, "Initialized") {
        restarts = sidecar_restarts;
        last_restart = last_sidecar_restart;
        let mut has_running = false;
        for status in o.list(&["status", "containerStatuses"]).iter().rev() {
            restarts = restarts.saturating_add(int_of(status, &["restartCount"]));
            last_restart = later_restart(last_restart, status);
            let waiting = str_of(status, &["state", "waiting", "reason"]);
            let terminated = at(status, &["state", "terminated"]).filter(|v| !v.is_null());
            let running = at(status, &["state", "running"]).is_some_and(|v| !v.is_null());
            if !waiting.is_empty() {
                reason = waiting.to_string();
            } else if let Some(t) = terminated {
                reason = match str_of(t, &["reason"]) {
                    "" if int_of(t, &["signal"]) != 0 => {
                        format!("Signal:{}", int_of(t, &["signal"]))
                    }
                    "" => format!("ExitCode:{}", int_of(t, &["exitCode"])),
                    r => r.to_string(),
                };
            } else if status.get("ready").and_then(Value::as_bool) == Some(true) && running {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            let ready_condition = conditions
                .iter()
                .any(|c| str_of(c, &["type"]) == "Ready" && str_of(c, &["status"]) == "True");
            reason = if ready_condition {
                "Running".into()
            } else {
                "NotReady".into()
            };
        }
    }

    if o.deleting() && o.str(&["status", "reason"]) == "NodeLost" {
        reason = "Unknown".into();
    } else if o.deleting() && phase != "Succeeded" && phase != "Failed" {
        reason = "Terminating".into();
    }

    let restarts_cell = match last_restart {
        Some(t) if restarts != 0 => format!(
            "{restarts} ({} ago)",
            human_duration(o.now.saturating_sub(t))
        ),
        _ => restarts.to_string(),
    };

    let ip = o
        .list(&["status", "podIPs"])
        .first()
        .map(|p| str_of(p, &["ip"]))
        .unwrap_or("");
    let gates = o.list(&["spec", "readinessGates"]);
    let gates_cell = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let passing = gates
            .iter()
            .filter(|g| {
                let ty = str_of(g, &["conditionType"]);
                conditions
                    .iter()
                    .find(|c| str_of(c, &["type"]) == ty)
                    .is_some_and(|c| str_of(c, &["status"]) == "True")
            })
            .count();
        format!("{passing}/{}", gates.len())
    };
    vec![
        o.name(),
        format!("{ready}/{total}").into(),
        reason.into(),
        restarts_cell.into(),
        o.age(),
        or_none(ip),
        or_none(o.str(&["spec", "nodeName"])),
        or_none(o.str(&["status", "nominatedNodeName"])),
        gates_cell.into(),
    ]
}

fn or_none(s: &str) -> Value {
    if s.is_empty() {
        "<none>".into()
    } else {
        s.into()
    }
}

fn pod_template(o: Obj) -> Vec<Value> {
    let [names, images] = containers_cells(o.list(&["template", "spec", "containers"]));
    vec![
        o.name(),
        names,
        images,
        labels_cell(o.get(&["template", "metadata", "labels"])),
    ]
}

/// An IntOrString as upstream prints it, `N/A` when unset.
fn int_or_string(v: Option<&Value>) -> Value {
    match v {
        Some(Value::Number(n)) => n.to_string().into(),
        Some(Value::String(s)) => s.clone().into(),
        _ => "N/A".into(),
    }
}

fn pdb(o: Obj) -> Vec<Value> {
    vec![
        o.name(),
        int_or_string(o.get(&["spec", "minAvailable"])),
        int_or_string(o.get(&["spec", "maxUnavailable"])),
        o.int(&["status", "disruptionsAllowed"]).into(),
        o.age(),
    ]
}

/// `spec.replicas`, which defaulting sets to 1 when absent.
fn desired(o: Obj) -> i64 {
    o.get(&["spec", "replicas"])
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

fn replicas(o: Obj, selector: Value) -> Vec<Value> {
    let [names, images] = containers_cells(o.list(&["spec", "template", "spec", "containers"]));
    vec![
        o.name(),
        desired(o).into(),
        o.int(&["status", "replicas"]).into(),
        o.int(&["status", "readyReplicas"]).into(),
        o.age(),
        names,
        images,
        selector,
    ]
}

fn daemon_set(o: Obj) -> Vec<Value> {
    let [names, images] = containers_cells(o.list(&["spec", "template", "spec", "containers"]));
    vec![
        o.name(),
        o.int(&["status", "desiredNumberScheduled"]).into(),
        o.int(&["status", "currentNumberScheduled"]).into(),
        o.int(&["status", "numberReady"]).into(),
        o.int(&["status", "updatedNumberScheduled"]).into(),
        o.int(&["status", "numberAvailable"]).into(),
        labels_cell(o.get(&["spec", "template", "spec", "nodeSelector"])),
        o.age(),
        names,
        images,
        format_label_selector(o.get(&["spec", "selector"])),
    ]
}

fn job(o: Obj) -> Vec<Value> {
    let succeeded = o.int(&["status", "succeeded"]);
    let completions = match (
        o.get(&["spec", "completions"]).and_then(Value::as_i64),
        o.get(&["spec", "parallelism"]).and_then(Value::as_i64),
    ) {
        (Some(c), _) => format!("{succeeded}/{c}"),
        (None, Some(p)) if p > 1 => format!("{succeeded}/1 of {p}"),
        _ => format!("{succeeded}/1"),
    };
    let start = timestamp(o.get(&["status", "startTime"]));
    let end = timestamp(o.get(&["status", "completionTime"]));
    let duration = match (start, end) {
        (None, _) => String::new(),
        (Some(s), None) => human_duration(o.now.saturating_sub(s)),
        (Some(s), Some(e)) => human_duration(e.saturating_sub(s)),
    };
    let conditions = o.list(&["status", "conditions"]);
    let status = if condition_true(conditions, "Complete") {
        "Complete"
    } else if condition_true(conditions, "Failed") {
        "Failed"
    } else if o.deleting() {
        "Terminating"
    } else if condition_true(conditions, "Suspended") {
        "Suspended"
    } else if condition_true(conditions, "FailureTarget") {
        "FailureTarget"
    } else if condition_true(conditions, "SuccessCriteriaMet") {
        "SuccessCriteriaMet"
    } else {
        "Running"
    };
    let [names, images] = containers_cells(o.list(&["spec", "template", "spec", "containers"]));
    vec![
        o.name(),
        status.into(),
        completions.into(),
        duration.into(),
        o.age(),
        names,
        images,
        format_label_selector(o.get(&["spec", "selector"])),
    ]
}

/// `printBoolPtr`: `True`/`False`, `<unset>` when absent.
fn bool_ptr(v: Option<&Value>) -> Value {
    match v.and_then(Value::as_bool) {
        Some(true) => "True".into(),
        Some(false) => "False".into(),
        None => "<unset>".into(),
    }
}

fn cron_job(o: Obj) -> Vec<Value> {
    let last = match o.get(&["status", "lastScheduleTime"]) {
        Some(v) if !v.is_null() => o.since(&["status", "lastScheduleTime"]),
        _ => "<none>".into(),
    };
    let [names, images] = containers_cells(o.list(&[
        "spec",
        "jobTemplate",
        "spec",
        "template",
        "spec",
        "containers",
    ]));
    vec![
        o.name(),
        o.str(&["spec", "schedule"]).into(),
        or_none(o.str(&["spec", "timeZone"])),
        bool_ptr(o.get(&["spec", "suspend"])),
        o.len(&["status", "active"]).into(),
        last.into(),
        o.age(),
        names,
        images,
        format_label_selector(o.get(&["spec", "jobTemplate", "spec", "selector"])),
    ]
}

/// A load balancer's ingress points, comma-joined; shortened to 16 characters unless wide.
fn load_balancer(status: Option<&Value>, wide: bool) -> String {
    let points: BTreeSet<&str> = list(status.and_then(|s| s.get("ingress")))
        .iter()
        .filter_map(|i| {
            let ip = str_of(i, &["ip"]);
            let host = str_of(i, &["hostname"]);
            if !ip.is_empty() {
                Some(ip)
            } else if !host.is_empty() {
                Some(host)
            } else {
                None
            }
        })
        .collect();
    let mut r = points.into_iter().collect::<Vec<_>>().join(",");
    if !wide && r.len() > 16 {
        r = format!("{}...", r.chars().take(13).collect::<String>());
    }
    r
}

fn service(o: Obj) -> Vec<Value> {
    let ty = o.str(&["spec", "type"]);
    let cluster_ip = match o
        .list(&["spec", "clusterIPs"])
        .first()
        .and_then(Value::as_str)
    {
        Some(ip) => ip,
        None => o.str(&["spec", "clusterIP"]),
    };
    let external: Vec<&str> = o
        .list(&["spec", "externalIPs"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let external_cell = match ty {
        "ClusterIP" | "NodePort" if !external.is_empty() => external.join(","),
        "ClusterIP" | "NodePort" => "<none>".into(),
        "LoadBalancer" => {
            let lb = load_balancer(o.get(&["status", "loadBalancer"]), true);
            let mut all: Vec<&str> = lb.split(',').filter(|s| !s.is_empty()).collect();
            all.extend(external.iter());
            if all.is_empty() {
                "<pending>".into()
            } else {
                all.join(",")
            }
        }
        "ExternalName" => o.str(&["spec", "externalName"]).into(),
        _ => "<unknown>".into(),
    };
    let ports: Vec<String> = o
        .list(&["spec", "ports"])
        .iter()
        .map(|p| {
            let port = int_of(p, &["port"]);
            let proto = str_of(p, &["protocol"]);
            match int_of(p, &["nodePort"]) {
                n if n > 0 => format!("{port}:{n}/{proto}"),
                _ => format!("{port}/{proto}"),
            }
        })
        .collect();
    vec![
        o.name(),
        ty.into(),
        or_none(cluster_ip),
        external_cell.into(),
        or_none(&ports.join(",")),
        o.age(),
        labels_cell(o.get(&["spec", "selector"])),
    ]
}

fn ingress(o: Obj) -> Vec<Value> {
    let rules = o.list(&["spec", "rules"]);
    let max = 3;
    let mut hosts: Vec<&str> = Vec::new();
    let mut more = false;
    for rule in rules {
        if hosts.len() == max {
            more = true;
        }
        let host = str_of(rule, &["host"]);
        if !more && !host.is_empty() {
            hosts.push(host);
        }
    }
    let hosts_cell = if hosts.is_empty() {
        "*".to_string()
    } else if more {
        format!("{} + {} more...", hosts.join(","), rules.len() - max)
    } else {
        hosts.join(",")
    };
    let ports = if o.list(&["spec", "tls"]).is_empty() {
        "80"
    } else {
        "80, 443"
    };
    vec![
        o.name(),
        or_none(o.str(&["spec", "ingressClassName"])),
        hosts_cell.into(),
        load_balancer(o.get(&["status", "loadBalancer"]), true).into(),
        ports.into(),
        o.age(),
    ]
}

fn ingress_class(o: Obj) -> Vec<Value> {
    let parameters = match o.get(&["spec", "parameters"]).filter(|v| !v.is_null()) {
        None => "<none>".to_string(),
        Some(p) => {
            let mut s = str_of(p, &["kind"]).to_string();
            if let Some(g) = p.get("apiGroup").and_then(Value::as_str) {
                s = format!("{s}.{g}");
            }
            format!("{s}/{}", str_of(p, &["name"]))
        }
    };
    vec![
        o.name(),
        o.str(&["spec", "controller"]).into(),
        parameters.into(),
        o.age(),
    ]
}

fn stateful_set(o: Obj) -> Vec<Value> {
    let [names, images] = containers_cells(o.list(&["spec", "template", "spec", "containers"]));
    vec![
        o.name(),
        format!("{}/{}", o.int(&["status", "readyReplicas"]), desired(o)).into(),
        o.age(),
        names,
        images,
    ]
}

fn host_port(ip: &str, port: i64) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

/// `formatEndpoints`: up to three `ip:port`, then `+ N more...`; `<none>` without subsets.
fn endpoints(o: Obj) -> String {
    let subsets = o.list(&["subsets"]);
    if subsets.is_empty() {
        return "<none>".into();
    }
    let max = 3;
    let mut shown: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0;
    let mut add = |s: String| {
        if shown.len() == max {
            more = true;
        }
        if !more {
            shown.push(s);
        }
        count += 1;
    };
    for ss in subsets {
        let addresses = list(ss.get("addresses"));
        let ports = list(ss.get("ports"));
        if ports.is_empty() {
            for a in addresses {
                add(str_of(a, &["ip"]).to_string());
            }
        } else {
            for p in ports {
                for a in addresses {
                    add(host_port(str_of(a, &["ip"]), int_of(p, &["port"])));
                }
            }
        }
    }
    let joined = shown.join(",");
    if more {
        format!("{joined} + {} more...", count - max)
    } else {
        joined
    }
}

/// `listWithMoreString`: up to three entries, `<unset>` when there are none.
fn list_with_more(items: Vec<String>) -> String {
    let max = 3;
    let count = items.len();
    let joined = items.into_iter().take(max).collect::<Vec<_>>().join(",");
    if count > max {
        format!("{joined} + {} more...", count - max)
    } else if joined.is_empty() {
        "<unset>".into()
    } else {
        joined
    }
}

fn endpoint_slice(o: Obj) -> Vec<Value> {
    let ports = o
        .list(&["ports"])
        .iter()
        .map(
            |p| match (p.get("port").and_then(Value::as_i64), p.get("name")) {
                (Some(n), _) => n.to_string(),
                (None, Some(Value::String(name))) => name.clone(),
                _ => "*".into(),
            },
        )
        .collect();
    let addresses = o
        .list(&["endpoints"])
        .iter()
        .flat_map(|e| list(e.get("addresses")))
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect();
    vec![
        o.name(),
        o.str(&["addressType"]).into(),
        list_with_more(ports).into(),
        list_with_more(addresses).into(),
        o.age(),
    ]
}

fn node(o: Obj) -> Vec<Value> {
    let mut status: Vec<&str> = Vec::new();
    if let Some(c) = o
        .list(&["status", "conditions"])
        .iter()
        .rev()
        .find(|c| str_of(c, &["type"]) == "Ready")
    {
        status.push(if str_of(c, &["status"]) == "True" {
            "Ready"
        } else {
            "NotReady"
        });
    }
    if status.is_empty() {
        status.push("Unknown");
    }
    if o.bool(&["spec", "unschedulable"]) {
        status.push("SchedulingDisabled");
    }
    let mut roles: BTreeSet<&str> = BTreeSet::new();
    if let Some(labels) = o.get(&["metadata", "labels"]).and_then(Value::as_object) {
        for (k, v) in labels {
            if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
                if !role.is_empty() {
                    roles.insert(role);
                }
            } else if k == "kubernetes.io/role"
                && let Some(v) = v.as_str().filter(|v| !v.is_empty())
            {
                roles.insert(v);
            }
        }
    }
    let roles_cell = if roles.is_empty() {
        "<none>".to_string()
    } else {
        roles.into_iter().collect::<Vec<_>>().join(",")
    };
    let address = |ty: &str| {
        o.list(&["status", "addresses"])
            .iter()
            .find(|a| str_of(a, &["type"]) == ty)
            .map(|a| str_of(a, &["address"]))
            .unwrap_or("<none>")
    };
    let unknown = |s: &str| -> Value {
        if s.is_empty() {
            "<unknown>".into()
        } else {
            s.into()
        }
    };
    vec![
        o.name(),
        status.join(",").into(),
        roles_cell.into(),
        o.age(),
        o.str(&["status", "nodeInfo", "kubeletVersion"]).into(),
        address("InternalIP").into(),
        address("ExternalIP").into(),
        unknown(o.str(&["status", "nodeInfo", "osImage"])),
        unknown(o.str(&["status", "nodeInfo", "kernelVersion"])),
        unknown(o.str(&["status", "nodeInfo", "containerRuntimeVersion"])),
    ]
}

/// A core/v1 Event's row.
fn event(o: Obj) -> Vec<Value> {
    let first = if timestamp(o.get(&["firstTimestamp"])).is_some() {
        o.since(&["firstTimestamp"])
    } else {
        o.since(&["eventTime"])
    };
    let mut last = if timestamp(o.get(&["lastTimestamp"])).is_some() {
        o.since(&["lastTimestamp"])
    } else {
        first.clone()
    };
    let mut count = o.int(&["count"]);
    if o.get(&["series"]).is_some_and(|s| !s.is_null()) {
        last = o.since(&["series", "lastObservedTime"]);
        count = o.int(&["series", "count"]);
    } else if count == 0 {
        count = 1;
    }
    let kind = o.str(&["involvedObject", "kind"]).to_lowercase();
    let target = match o.str(&["involvedObject", "name"]) {
        "" => kind,
        name => format!("{kind}/{name}"),
    };
    let first_non_empty = |a: &'static [&'static str], b: &'static [&'static str]| match o.str(a) {
        "" => o.str(b),
        s => s,
    };
    let component = first_non_empty(&["source", "component"], &["reportingComponent"]);
    let instance = first_non_empty(&["source", "host"], &["reportingInstance"]);
    let source = if instance.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {instance}")
    };
    vec![
        last.into(),
        o.str(&["type"]).into(),
        o.str(&["reason"]).into(),
        target.into(),
        o.str(&["involvedObject", "fieldPath"]).into(),
        source.into(),
        o.str(&["message"]).trim().into(),
        first.into(),
        count.into(),
        o.name(),
    ]
}

fn secret(o: Obj) -> Vec<Value> {
    let mut keys: BTreeSet<&str> = BTreeSet::new();
    for field in ["data", "stringData"] {
        if let Some(m) = o.get(&[field]).and_then(Value::as_object) {
            keys.extend(m.keys().map(String::as_str));
        }
    }
    vec![
        o.name(),
        o.str(&["type"]).into(),
        i64::try_from(keys.len()).unwrap_or(i64::MAX).into(),
        o.age(),
    ]
}

/// `GetAccessModesAsString`: the modes present, in upstream's fixed order.
fn access_modes(modes: &[Value]) -> String {
    let has = |m: &str| modes.iter().any(|v| v.as_str() == Some(m));
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(m, _)| has(m))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}

/// A quantity as printed; `0` when absent.
fn quantity(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => "0".into(),
    }
}

/// The storage class of a volume or claim: the beta annotation, else `spec.storageClassName`.
fn storage_class_name<'a>(o: &Obj<'a>) -> &'a str {
    match o
        .get(&[
            "metadata",
            "annotations",
            "volume.beta.kubernetes.io/storage-class",
        ])
        .and_then(Value::as_str)
    {
        Some(s) => s,
        None => o.str(&["spec", "storageClassName"]),
    }
}

fn unset(v: &str) -> Value {
    if v.is_empty() {
        "<unset>".into()
    } else {
        v.into()
    }
}

fn persistent_volume(o: Obj) -> Vec<Value> {
    let claim = match o.get(&["spec", "claimRef"]).filter(|v| !v.is_null()) {
        Some(c) => format!("{}/{}", str_of(c, &["namespace"]), str_of(c, &["name"])),
        None => String::new(),
    };
    let phase = if o.deleting() {
        "Terminating"
    } else {
        o.str(&["status", "phase"])
    };
    vec![
        o.name(),
        quantity(o.get(&["spec", "capacity", "storage"])).into(),
        access_modes(o.list(&["spec", "accessModes"])).into(),
        o.str(&["spec", "persistentVolumeReclaimPolicy"]).into(),
        phase.into(),
        claim.into(),
        storage_class_name(&o).into(),
        unset(o.str(&["spec", "volumeAttributesClassName"])),
        o.str(&["status", "reason"]).into(),
        o.age(),
        unset(o.str(&["spec", "volumeMode"])),
    ]
}

fn persistent_volume_claim(o: Obj) -> Vec<Value> {
    let phase = if o.deleting() {
        "Terminating"
    } else {
        o.str(&["status", "phase"])
    };
    let volume = o.str(&["spec", "volumeName"]);
    let (capacity, modes) = if volume.is_empty() {
        (String::new(), String::new())
    } else {
        (
            quantity(o.get(&["status", "capacity", "storage"])),
            access_modes(o.list(&["status", "accessModes"])),
        )
    };
    vec![
        o.name(),
        phase.into(),
        volume.into(),
        capacity.into(),
        modes.into(),
        storage_class_name(&o).into(),
        unset(o.str(&["spec", "volumeAttributesClassName"])),
        o.age(),
        unset(o.str(&["spec", "volumeMode"])),
    ]
}

fn deployment(o: Obj) -> Vec<Value> {
    let [names, images] = containers_cells(o.list(&["spec", "template", "spec", "containers"]));
    let selector = selector_string(o.get(&["spec", "selector"])).unwrap_or("<invalid>".into());
    vec![
        o.name(),
        format!("{}/{}", o.int(&["status", "readyReplicas"]), desired(o)).into(),
        o.int(&["status", "updatedReplicas"]).into(),
        o.int(&["status", "availableReplicas"]).into(),
        o.age(),
        names,
        images,
        selector.into(),
    ]
}

/// `formatHPAMetrics` over autoscaling/v2 metric specs and their current statuses.
fn hpa_metrics(specs: &[Value], statuses: &[Value]) -> String {
    if specs.is_empty() {
        return "<none>".into();
    }
    let q = |v: &Value, path: &[&str]| quantity(at(v, path));
    let mut shown: Vec<String> = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let status = statuses.get(i);
        let ty = str_of(spec, &["type"]);
        // The status entry for this metric, when it has the same source.
        let current = |field: &str| status.and_then(|s| s.get(field)).filter(|v| !v.is_null());
        let entry = match ty {
            "External" | "Object" => {
                let field = if ty == "External" {
                    "external"
                } else {
                    "object"
                };
                let target = at(spec, &[field, "target"]).unwrap_or(&Value::Null);
                if target.get("averageValue").is_some_and(|v| !v.is_null()) {
                    let cur = current(field)
                        .and_then(|c| at(c, &["current", "averageValue"]))
                        .map(|v| quantity(Some(v)))
                        .unwrap_or("<unknown>".into());
                    format!("{cur}/{} (avg)", q(target, &["averageValue"]))
                } else {
                    let cur = current(field)
                        .map(|c| q(c, &["current", "value"]))
                        .unwrap_or("<unknown>".into());
                    format!("{cur}/{}", q(target, &["value"]))
                }
            }
            "Pods" => {
                let cur = current("pods")
                    .map(|c| q(c, &["current", "averageValue"]))
                    .unwrap_or("<unknown>".into());
                format!("{cur}/{}", q(spec, &["pods", "target", "averageValue"]))
            }
            "Resource" | "ContainerResource" => {
                let field = if ty == "Resource" {
                    "resource"
                } else {
                    "containerResource"
                };
                let name = str_of(spec, &[field, "name"]);
                let target = at(spec, &[field, "target"]).unwrap_or(&Value::Null);
                if target.get("averageValue").is_some_and(|v| !v.is_null()) {
                    let cur = current(field)
                        .map(|c| q(c, &["current", "averageValue"]))
                        .unwrap_or("<unknown>".into());
                    format!("{name}: {cur}/{}", q(target, &["averageValue"]))
                } else {
                    let cur = current(field)
                        .and_then(|c| at(c, &["current", "averageUtilization"]))
                        .and_then(Value::as_i64)
                        .map(|u| format!("{u}%"))
                        .unwrap_or("<unknown>".into());
                    let goal = target
                        .get("averageUtilization")
                        .and_then(Value::as_i64)
                        .map(|u| format!("{u}%"))
                        .unwrap_or("<auto>".into());
                    format!("{name}: {cur}/{goal}")
                }
            }
            _ => "<unknown type>".into(),
        };
        shown.push(entry);
    }
    let count = shown.len();
    if count > 2 {
        shown.truncate(2);
        format!("{} + {} more...", shown.join(", "), count - 2)
    } else {
        shown.join(", ")
    }
}

fn hpa(o: Obj) -> Vec<Value> {
    let min = match o.get(&["spec", "minReplicas"]).and_then(Value::as_i64) {
        Some(n) => n.to_string(),
        None => "<unset>".into(),
    };
    vec![
        o.name(),
        format!(
            "{}/{}",
            o.str(&["spec", "scaleTargetRef", "kind"]),
            o.str(&["spec", "scaleTargetRef", "name"])
        )
        .into(),
        hpa_metrics(
            o.list(&["spec", "metrics"]),
            o.list(&["status", "currentMetrics"]),
        )
        .into(),
        min.into(),
        o.int(&["spec", "maxReplicas"]).into(),
        o.int(&["status", "currentReplicas"]).into(),
        o.age(),
    ]
}

fn role_binding(o: Obj) -> Vec<Value> {
    let mut users = Vec::new();
    let mut groups = Vec::new();
    let mut sas = Vec::new();
    for s in o.list(&["subjects"]) {
        let name = str_of(s, &["name"]);
        match str_of(s, &["kind"]) {
            "User" => users.push(name.to_string()),
            "Group" => groups.push(name.to_string()),
            "ServiceAccount" => sas.push(format!("{}/{name}", str_of(s, &["namespace"]))),
            _ => {}
        }
    }
    vec![
        o.name(),
        format!(
            "{}/{}",
            o.str(&["roleRef", "kind"]),
            o.str(&["roleRef", "name"])
        )
        .into(),
        o.age(),
        users.join(", ").into(),
        groups.join(", ").into(),
        sas.join(", ").into(),
    ]
}

fn storage_class(o: Obj) -> Vec<Value> {
    let default = [
        "storageclass.kubernetes.io/is-default-class",
        "storageclass.beta.kubernetes.io/is-default-class",
    ]
    .iter()
    .any(|a| o.str(&["metadata", "annotations", a]) == "true");
    let name = o.str(&["metadata", "name"]);
    let name = if default {
        format!("{name} (default)")
    } else {
        name.to_string()
    };
    let or = |path: &[&str], dflt: &'static str| match o.str(path) {
        "" => dflt,
        s => s,
    };
    vec![
        name.into(),
        o.str(&["provisioner"]).into(),
        or(&["reclaimPolicy"], "Delete").into(),
        or(&["volumeBindingMode"], "Immediate").into(),
        o.bool(&["allowVolumeExpansion"]).into(),
        o.age(),
    ]
}

fn csi_driver(o: Obj) -> Vec<Value> {
    let modes: Vec<&str> = o
        .list(&["spec", "volumeLifecycleModes"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let tokens = match o.get(&["spec", "tokenRequests"]).and_then(Value::as_array) {
        Some(t) => t
            .iter()
            .map(|t| str_of(t, &["audience"]))
            .collect::<Vec<_>>()
            .join(","),
        None => "<unset>".into(),
    };
    vec![
        o.name(),
        o.get(&["spec", "attachRequired"])
            .and_then(Value::as_bool)
            .unwrap_or(true)
            .into(),
        o.bool(&["spec", "podInfoOnMount"]).into(),
        o.bool(&["spec", "storageCapacity"]).into(),
        tokens.into(),
        o.bool(&["spec", "requiresRepublish"]).into(),
        or_none(&modes.join(",")),
        o.age(),
    ]
}

fn controller_revision(o: Obj) -> Vec<Value> {
    let controller = o
        .list(&["metadata", "ownerReferences"])
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
        .map(|r| {
            let api_version = str_of(r, &["apiVersion"]);
            let group = api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
            let kind = str_of(r, &["kind"]);
            let group_kind = if group.is_empty() {
                kind.to_string()
            } else {
                format!("{kind}.{group}")
            };
            let name = str_of(r, &["name"]);
            if group_kind.is_empty() {
                name.to_string()
            } else {
                format!("{}/{name}", group_kind.to_lowercase())
            }
        })
        .unwrap_or("<none>".into());
    vec![
        o.name(),
        controller.into(),
        o.int(&["revision"]).into(),
        o.age(),
    ]
}

fn resource_quota(o: Obj) -> Vec<Value> {
    let mut request = Vec::new();
    let mut limit = Vec::new();
    if let Some(hard) = o.get(&["status", "hard"]).and_then(Value::as_object) {
        let mut names: Vec<&String> = hard.keys().collect();
        names.sort();
        for name in names {
            let used = quantity(o.get(&["status", "used", name]));
            let entry = format!("{name}: {used}/{}", quantity(hard.get(name)));
            if name.split('.').count() > 1 && name.starts_with("limits.") {
                limit.push(entry);
            } else {
                request.push(entry);
            }
        }
    }
    vec![
        o.name(),
        request.join(", ").into(),
        limit.join(", ").into(),
        o.age(),
    ]
}

fn priority_class(o: Obj) -> Vec<Value> {
    vec![
        o.name(),
        o.int(&["value"]).into(),
        o.bool(&["globalDefault"]).into(),
        o.age(),
        o.str(&["preemptionPolicy"]).into(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{RESOURCES, find};
    use proptest::prelude::*;

    const NOW: i64 = 1_700_000_000;

    fn ago(seconds: i64) -> String {
        jiff::Timestamp::from_second(NOW - seconds)
            .expect("time")
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    }

    fn row(plural: &str, group: &str, version: &str, obj: Value) -> Vec<Value> {
        let res = find(group, version, plural).expect("row");
        cells(res, &obj, NOW)
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            "[a-zA-Z0-9:. -]{0,12}".prop_map(Value::from),
            Just(json!("2024-01-01T00:00:00Z")),
        ];
        leaf.prop_recursive(5, 64, 6, |inner| {
            let keys = prop_oneof![
                "[a-z]{1,3}",
                Just("metadata".to_string()),
                Just("spec".to_string()),
                Just("status".to_string()),
                Just("containers".to_string()),
                Just("conditions".to_string()),
                Just("creationTimestamp".to_string()),
            ];
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map(keys, inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn any_object_gives_one_cell_per_column(obj in arb_json(), i in 0..RESOURCES.len(),
                                                now in any::<i64>()) {
            let res = &RESOURCES[i];
            prop_assert_eq!(cells(res, &obj, now).len(), column_definitions(res).len());
        }

        #[test]
        fn human_duration_never_panics(s in any::<i64>()) {
            prop_assert!(!human_duration(s).is_empty());
        }
    }

    #[test]
    fn human_durations_match_upstream() {
        let cases = [
            (-5, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (5, "5s"),
            (119, "119s"),
            (120, "2m"),
            (182, "3m2s"),
            (600, "10m"),
            (3 * 3600 - 1, "179m"),
            (3 * 3600 + 4 * 60, "3h4m"),
            (5 * 3600, "5h"),
            (8 * 3600 + 59, "8h"),
            (47 * 3600, "47h"),
            (2 * 86400, "2d"),
            (2 * 86400 + 3 * 3600, "2d3h"),
            (5 * 86400, "5d"),
            (8 * 86400, "8d"),
            (400 * 86400, "400d"),
            (730 * 86400, "2y"),
            (800 * 86400, "2y70d"),
            (3000 * 86400, "8y"),
        ];
        for (s, want) in cases {
            assert_eq!(human_duration(s), want, "{s}s");
        }
    }

    #[test]
    fn every_row_has_a_name_column_and_cells_match_columns() {
        for res in RESOURCES {
            let cols = column_definitions(res);
            assert!(
                cols.iter()
                    .any(|c| c["name"] == "Name" && c["format"] == "name"),
                "{}",
                res.qualified()
            );
            let obj = json!({"metadata": {"name": "x", "creationTimestamp": ago(10)}});
            assert_eq!(
                cells(res, &obj, NOW).len(),
                cols.len(),
                "{}",
                res.qualified()
            );
        }
        let pods = find("", "v1", "pods").expect("pods");
        assert_eq!(column_definitions(pods)[0]["name"], "Name");
    }

    #[test]
    fn running_pod() {
        let pod = json!({
            "metadata": {"name": "web-1", "creationTimestamp": ago(3 * 3600 + 4 * 60)},
            "spec": {"nodeName": "node-a", "containers": [{"name": "c", "image": "nginx"}]},
            "status": {
                "phase": "Running",
                "podIP": "10.0.0.7",
                "podIPs": [{"ip": "10.0.0.7"}],
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [{
                    "name": "c", "ready": true, "restartCount": 0, "started": true,
                    "state": {"running": {"startedAt": ago(3 * 3600)}}
                }]
            }
        });
        assert_eq!(
            row("pods", "", "v1", pod),
            vec![
                json!("web-1"),
                json!("1/1"),
                json!("Running"),
                json!("0"),
                json!("3h4m"),
                json!("10.0.0.7"),
                json!("node-a"),
                json!("<none>"),
                json!("<none>")
            ]
        );
    }

    #[test]
    fn crash_looping_pod() {
        let pod = json!({
            "metadata": {"name": "bad", "creationTimestamp": ago(10 * 60)},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            "status": {
                "phase": "Running",
                "containerStatuses": [{
                    "name": "c", "ready": false, "restartCount": 5,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": {"terminated": {"exitCode": 1, "reason": "Error",
                                                 "finishedAt": ago(65)}}
                }]
            }
        });
        let cells = row("pods", "", "v1", pod);
        assert_eq!(
            &cells[..5],
            &[
                json!("bad"),
                json!("0/1"),
                json!("CrashLoopBackOff"),
                json!("5 (65s ago)"),
                json!("10m")
            ]
        );
    }

    #[test]
    fn terminating_and_completed_and_init_pods() {
        let terminating = json!({
            "metadata": {"name": "t", "creationTimestamp": ago(300), "deletionTimestamp": ago(0)},
            "spec": {"containers": [{"name": "c"}]},
            "status": {"phase": "Running", "containerStatuses": [{
                "name": "c", "ready": true, "state": {"running": {}}}]}
        });
        let c = row("pods", "", "v1", terminating);
        assert_eq!(
            &c[1..5],
            &[json!("1/1"), json!("Terminating"), json!("0"), json!("5m")]
        );

        let completed = json!({
            "metadata": {"name": "done", "creationTimestamp": ago(60)},
            "spec": {"containers": [{"name": "c"}]},
            "status": {"phase": "Succeeded", "containerStatuses": [{
                "name": "c", "ready": false,
                "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}
        });
        assert_eq!(row("pods", "", "v1", completed)[2], json!("Completed"));

        let init = json!({
            "metadata": {"name": "i", "creationTimestamp": ago(5)},
            "spec": {"initContainers": [{"name": "setup"}], "containers": [{"name": "c"}]},
            "status": {"phase": "Pending",
                "initContainerStatuses": [{"name": "setup", "state": {"running": {}}}],
                "containerStatuses": [{"name": "c", "state": {"waiting": {"reason": "PodInitializing"}}}]}
        });
        assert_eq!(row("pods", "", "v1", init)[2], json!("Init:0/1"));

        let creating = json!({
            "metadata": {"name": "n", "creationTimestamp": ago(5)},
            "spec": {"containers": [{"name": "c"}]},
            "status": {"phase": "Pending", "containerStatuses": [{
                "name": "c", "state": {"waiting": {"reason": "ContainerCreating"}}}]}
        });
        assert_eq!(
            row("pods", "", "v1", creating)[2],
            json!("ContainerCreating")
        );

        let lost = json!({
            "metadata": {"name": "l", "creationTimestamp": ago(5), "deletionTimestamp": ago(0)},
            "spec": {"containers": [{"name": "c"}]},
            "status": {"phase": "Running", "reason": "NodeLost"}
        });
        assert_eq!(row("pods", "", "v1", lost)[2], json!("Unknown"));

        let sidecar = json!({
            "metadata": {"name": "s", "creationTimestamp": ago(5)},
            "spec": {"initContainers": [{"name": "proxy", "restartPolicy": "Always"}],
                     "containers": [{"name": "c"}]},
            "status": {"phase": "Running",
                "conditions": [{"type": "Initialized", "status": "True"}],
                "initContainerStatuses": [{"name": "proxy", "started": true, "ready": true,
                                           "state": {"running": {}}}],
                "containerStatuses": [{"name": "c", "ready": true, "state": {"running": {}}}]}
        });
        assert_eq!(
            &row("pods", "", "v1", sidecar)[1..3],
            &[json!("2/2"), json!("Running")]
        );
    }

    #[test]
    fn deployment_row() {
        let d = json!({
            "metadata": {"name": "nginx", "creationTimestamp": ago(5 * 86400)},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "nginx"}},
                     "template": {"spec": {"containers": [
                         {"name": "nginx", "image": "nginx:1.25"},
                         {"name": "log", "image": "busybox"}]}}},
            "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}
        });
        assert_eq!(
            row("deployments", "apps", "v1", d),
            vec![
                json!("nginx"),
                json!("2/3"),
                json!(3),
                json!(2),
                json!("5d"),
                json!("nginx,log"),
                json!("nginx:1.25,busybox"),
                json!("app=nginx")
            ]
        );
    }

    #[test]
    fn selectors_print_like_upstream() {
        let sel = json!({"matchLabels": {"b": "2", "a": "1"},
            "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "dev"]},
                                 {"key": "zz", "operator": "DoesNotExist"}]});
        assert_eq!(
            selector_string(Some(&sel)).as_deref(),
            Some("a=1,b=2,env in (dev,prod),!zz")
        );
        assert_eq!(format_label_selector(Some(&json!({}))), json!("<none>"));
        let bad = json!({"matchExpressions": [{"key": "k", "operator": "Near"}]});
        assert_eq!(format_label_selector(Some(&bad)), json!("<error>"));
    }

    #[test]
    fn node_port_service() {
        let svc = json!({
            "metadata": {"name": "web", "creationTimestamp": ago(42)},
            "spec": {"type": "NodePort", "clusterIP": "10.96.0.12", "clusterIPs": ["10.96.0.12"],
                     "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"},
                               {"port": 53, "protocol": "UDP"}],
                     "selector": {"app": "web"}}
        });
        assert_eq!(
            row("services", "", "v1", svc),
            vec![
                json!("web"),
                json!("NodePort"),
                json!("10.96.0.12"),
                json!("<none>"),
                json!("80:30080/TCP,53/UDP"),
                json!("42s"),
                json!("app=web")
            ]
        );
        let lb = json!({"metadata": {"name": "lb"}, "spec": {"type": "LoadBalancer"}});
        assert_eq!(row("services", "", "v1", lb)[3], json!("<pending>"));
    }

    #[test]
    fn ready_node() {
        let node = json!({
            "metadata": {"name": "node-a", "creationTimestamp": ago(30 * 86400),
                "labels": {"node-role.kubernetes.io/control-plane": "",
                           "node-role.kubernetes.io/worker": "", "kubernetes.io/os": "linux"}},
            "spec": {"unschedulable": true},
            "status": {
                "conditions": [{"type": "MemoryPressure", "status": "False"},
                               {"type": "Ready", "status": "True"}],
                "addresses": [{"type": "InternalIP", "address": "192.168.1.10"},
                              {"type": "Hostname", "address": "node-a"}],
                "nodeInfo": {"kubeletVersion": "v1.37.0", "osImage": "Debian GNU/Linux 12",
                             "kernelVersion": "6.1.0", "containerRuntimeVersion": "containerd://2.0.0"}
            }
        });
        assert_eq!(
            row("nodes", "", "v1", node),
            vec![
                json!("node-a"),
                json!("Ready,SchedulingDisabled"),
                json!("control-plane,worker"),
                json!("30d"),
                json!("v1.37.0"),
                json!("192.168.1.10"),
                json!("<none>"),
                json!("Debian GNU/Linux 12"),
                json!("6.1.0"),
                json!("containerd://2.0.0")
            ]
        );
        let bare = json!({"metadata": {"name": "n"}});
        let c = row("nodes", "", "v1", bare);
        assert_eq!(
            &c[1..4],
            &[json!("Unknown"), json!("<none>"), json!("<unknown>")]
        );
    }

    #[test]
    fn jobs_cronjobs_and_small_kinds() {
        let job = json!({
            "metadata": {"name": "pi", "creationTimestamp": ago(120)},
            "spec": {"completions": 1, "template": {"spec": {"containers": [{"name": "pi", "image": "perl"}]}},
                     "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u"}}},
            "status": {"succeeded": 1, "startTime": ago(120), "completionTime": ago(100),
                       "conditions": [{"type": "Complete", "status": "True"}]}
        });
        let c = row("jobs", "batch", "v1", job);
        assert_eq!(
            &c[..5],
            &[
                json!("pi"),
                json!("Complete"),
                json!("1/1"),
                json!("20s"),
                json!("2m")
            ]
        );

        let cj = json!({"metadata": {"name": "c", "creationTimestamp": ago(5)},
                        "spec": {"schedule": "*/1 * * * *", "suspend": false}});
        let c = row("cronjobs", "batch", "v1", cj);
        assert_eq!(
            &c[..7],
            &[
                json!("c"),
                json!("*/1 * * * *"),
                json!("<none>"),
                json!("False"),
                json!(0),
                json!("<none>"),
                json!("5s")
            ]
        );

        let cm = json!({"metadata": {"name": "cfg", "creationTimestamp": ago(5)},
                        "data": {"a": "1", "b": "2"}, "binaryData": {"c": ""}});
        assert_eq!(
            row("configmaps", "", "v1", cm),
            vec![json!("cfg"), json!(3), json!("5s")]
        );

        let role = json!({"metadata": {"name": "r", "creationTimestamp": "2024-01-02T03:04:05Z"}});
        assert_eq!(
            row("roles", "rbac.authorization.k8s.io", "v1", role),
            vec![json!("r"), json!("2024-01-02T03:04:05Z")]
        );

        let ep = json!({"metadata": {"name": "e"}, "subsets": [{
            "addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}, {"ip": "fd00::1"}, {"ip": "10.0.0.4"}],
            "ports": [{"port": 80}]}]});
        assert_eq!(
            row("endpoints", "", "v1", ep)[1],
            json!("10.0.0.1:80,10.0.0.2:80,[fd00::1]:80 + 1 more...")
        );
    }

    #[test]
    fn quotas_claims_and_load_balancers() {
        let quota = json!({"metadata": {"name": "q", "creationTimestamp": ago(7)},
            "status": {"hard": {"pods": "4", "requests.cpu": "1", "limits.memory": "2Gi"},
                       "used": {"pods": "1", "limits.memory": "512Mi"}}});
        assert_eq!(
            row("resourcequotas", "", "v1", quota),
            vec![
                json!("q"),
                json!("pods: 1/4, requests.cpu: 0/1"),
                json!("limits.memory: 512Mi/2Gi"),
                json!("7s")
            ]
        );
        let pvc = json!({"metadata": {"name": "data", "creationTimestamp": ago(7)},
            "spec": {"volumeName": "pv-1", "storageClassName": "standard",
                     "volumeAttributesClassName": "gold", "volumeMode": "Filesystem"},
            "status": {"phase": "Bound", "capacity": {"storage": "1Gi"},
                       "accessModes": ["ReadWriteMany", "ReadWriteOnce"]}});
        assert_eq!(
            row("persistentvolumeclaims", "", "v1", pvc),
            vec![
                json!("data"),
                json!("Bound"),
                json!("pv-1"),
                json!("1Gi"),
                json!("RWO,RWX"),
                json!("standard"),
                json!("gold"),
                json!("7s"),
                json!("Filesystem")
            ]
        );
        let lb = json!({"metadata": {"name": "lb"},
            "spec": {"type": "LoadBalancer", "externalIPs": ["9.9.9.9"]},
            "status": {"loadBalancer": {"ingress": [{"ip": "5.5.5.5"}, {"hostname": "a.example"},
                                                    {"ip": "5.5.5.5"}]}}});
        assert_eq!(
            row("services", "", "v1", lb)[3],
            json!("5.5.5.5,a.example,9.9.9.9")
        );
    }

    #[test]
    fn events_in_both_versions() {
        let core = json!({
            "metadata": {"name": "p.1"},
            "involvedObject": {"kind": "Pod", "name": "p", "fieldPath": "spec.containers{c}"},
            "reason": "Pulled", "message": "pulled image \n", "type": "Normal",
            "source": {"component": "kubelet", "host": "node-a"},
            "firstTimestamp": ago(300), "lastTimestamp": ago(60), "count": 3
        });
        let want = vec![
            json!("60s"),
            json!("Normal"),
            json!("Pulled"),
            json!("pod/p"),
            json!("spec.containers{c}"),
            json!("kubelet, node-a"),
            json!("pulled image"),
            json!("5m"),
            json!(3),
            json!("p.1"),
        ];
        assert_eq!(row("events", "", "v1", core), want);
        let new = json!({
            "metadata": {"name": "p.1"},
            "regarding": {"kind": "Pod", "name": "p", "fieldPath": "spec.containers{c}"},
            "reason": "Pulled", "note": "pulled image \n", "type": "Normal",
            "deprecatedSource": {"component": "kubelet", "host": "node-a"},
            "deprecatedFirstTimestamp": ago(300), "deprecatedLastTimestamp": ago(60),
            "deprecatedCount": 3
        });
        assert_eq!(row("events", "events.k8s.io", "v1", new), want);
    }

    #[test]
    fn hpa_in_both_versions() {
        let v2 = json!({
            "metadata": {"name": "h", "creationTimestamp": ago(5)},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 1,
                     "maxReplicas": 5, "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                         "target": {"type": "Utilization", "averageUtilization": 50}}}]},
            "status": {"currentReplicas": 2, "currentMetrics": [{"type": "Resource",
                "resource": {"name": "cpu", "current": {"averageUtilization": 20}}}]}
        });
        let want = vec![
            json!("h"),
            json!("Deployment/web"),
            json!("cpu: 20%/50%"),
            json!("1"),
            json!(5),
            json!(2),
            json!("5s"),
        ];
        assert_eq!(
            row("horizontalpodautoscalers", "autoscaling", "v2", v2),
            want
        );
        let v1 = json!({
            "metadata": {"name": "h", "creationTimestamp": ago(5)},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 1,
                     "maxReplicas": 5, "targetCPUUtilizationPercentage": 50},
            "status": {"currentReplicas": 2, "currentCPUUtilizationPercentage": 20}
        });
        assert_eq!(
            row("horizontalpodautoscalers", "autoscaling", "v1", v1),
            want
        );
    }
}
