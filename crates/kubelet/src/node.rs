//! The node's own objects: the `Node` it registers (labels, capacity, conditions, nodeInfo, addresses
//! as upstream's kubelet sets them), its heartbeat `Lease` in `kube-node-lease`, and the API calls that
//! create, renew and re-post them.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{
    DaemonEndpoint, Node, NodeAddress, NodeCondition, NodeDaemonEndpoints, NodeSpec, NodeStatus,
    NodeSystemInfo,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference, Time};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};

/// The version every node reports.
pub const KUBELET_VERSION: &str = "v1.37.0+oxkube";
/// Where node leases live.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";
/// Upstream's lease duration (`nodeLeaseDurationSeconds`).
pub const LEASE_DURATION_SECONDS: i32 = 40;

/// What a node says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFacts {
    pub name: String,
    pub internal_ip: String,
    pub pod_cidr: Option<String>,
    pub cpu: String,
    pub memory: String,
    pub ephemeral_storage: String,
    pub runtime_version: String,
}

/// A failed node API call.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("registering node {name}")]
    Register {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("posting the status of node {name}")]
    Status {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("renewing the lease of node {name}")]
    Lease {
        name: String,
        #[source]
        source: kube::Error,
    },
}

fn time(now: Timestamp) -> Time {
    Time(Timestamp::from_second(now.as_second()).unwrap_or(now))
}

fn condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: Timestamp,
) -> NodeCondition {
    NodeCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_heartbeat_time: Some(time(now)),
        last_transition_time: Some(time(now)),
    }
}

/// The node's status at `now`; transition times are kept from `old` where a condition did not change.
pub fn node_status(facts: &NodeFacts, old: Option<&NodeStatus>, now: Timestamp) -> NodeStatus {
    let resources = BTreeMap::from([
        ("cpu".to_string(), Quantity(facts.cpu.clone())),
        ("memory".to_string(), Quantity(facts.memory.clone())),
        ("pods".to_string(), Quantity("110".into())),
        (
            "ephemeral-storage".to_string(),
            Quantity(facts.ephemeral_storage.clone()),
        ),
    ]);
    let mut conditions = vec![
        condition(
            "MemoryPressure",
            "False",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available",
            now,
        ),
        condition(
            "DiskPressure",
            "False",
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure",
            now,
        ),
        condition(
            "PIDPressure",
            "False",
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available",
            now,
        ),
        condition(
            "Ready",
            "True",
            "KubeletReady",
            "kubelet is posting ready status",
            now,
        ),
    ];
    let old_conditions = old
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or_default();
    for c in &mut conditions {
        if let Some(o) = old_conditions
            .iter()
            .find(|o| o.type_ == c.type_ && o.status == c.status)
        {
            c.last_transition_time = o.last_transition_time.clone();
        }
    }
    NodeStatus {
        capacity: Some(resources.clone()),
        allocatable: Some(resources),
        conditions: Some(conditions),
        addresses: Some(vec![
            NodeAddress {
                type_: "InternalIP".into(),
                address: facts.internal_ip.clone(),
            },
            NodeAddress {
                type_: "Hostname".into(),
                address: facts.name.clone(),
            },
        ]),
        daemon_endpoints: Some(NodeDaemonEndpoints {
            kubelet_endpoint: Some(DaemonEndpoint { port: 10250 }),
        }),
        node_info: Some(NodeSystemInfo {
            architecture: std::env::consts::ARCH
                .replace("x86_64", "amd64")
                .replace("aarch64", "arm64"),
            boot_id: String::new(),
            container_runtime_version: facts.runtime_version.clone(),
            kernel_version: String::new(),
            kube_proxy_version: String::new(),
            kubelet_version: KUBELET_VERSION.into(),
            machine_id: String::new(),
            operating_system: std::env::consts::OS.into(),
            os_image: "oxkube".into(),
            system_uuid: String::new(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The `Node` a kubelet registers.
pub fn node_object(facts: &NodeFacts, now: Timestamp) -> Node {
    let status = node_status(facts, None, now);
    let arch = status
        .node_info
        .as_ref()
        .map(|i| i.architecture.clone())
        .unwrap_or_default();
    let os = std::env::consts::OS.to_string();
    let labels = BTreeMap::from([
        ("kubernetes.io/hostname".to_string(), facts.name.clone()),
        ("kubernetes.io/os".to_string(), os.clone()),
        ("kubernetes.io/arch".to_string(), arch.clone()),
        ("beta.kubernetes.io/os".to_string(), os),
        ("beta.kubernetes.io/arch".to_string(), arch),
    ]);
    Node {
        metadata: ObjectMeta {
            name: Some(facts.name.clone()),
            labels: Some(labels),
            annotations: Some(BTreeMap::from([(
                "node.alpha.kubernetes.io/ttl".to_string(),
                "0".to_string(),
            )])),
            ..Default::default()
        },
        spec: Some(NodeSpec {
            pod_cidr: facts.pod_cidr.clone(),
            pod_cidrs: facts.pod_cidr.clone().map(|c| vec![c]),
            ..Default::default()
        }),
        status: Some(status),
    }
}

/// Creates the node, or refreshes its status when it already exists; returns its uid.
pub async fn register(client: &Client, facts: &NodeFacts) -> Result<String, NodeError> {
    let api: Api<Node> = Api::all(client.clone());
    let now = Timestamp::now();
    let err = |source| NodeError::Register {
        name: facts.name.clone(),
        source,
    };
    match api
        .create(&PostParams::default(), &node_object(facts, now))
        .await
    {
        Ok(node) => Ok(node.metadata.uid.unwrap_or_default()),
        Err(kube::Error::Api(s)) if s.code == 409 => {
            let old = api.get(&facts.name).await.map_err(err)?;
            let node = post_status(client, facts, old.status.as_ref()).await?;
            Ok(node.metadata.uid.unwrap_or_default())
        }
        Err(e) => Err(err(e)),
    }
}

/// Re-posts the node's status (heartbeat times now, transition times kept from `old`).
pub async fn post_status(
    client: &Client,
    facts: &NodeFacts,
    old: Option<&NodeStatus>,
) -> Result<Node, NodeError> {
    let api: Api<Node> = Api::all(client.clone());
    let status = node_status(facts, old, Timestamp::now());
    let patch = serde_json::json!({ "status": status });
    api.patch_status(&facts.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|source| NodeError::Status {
            name: facts.name.clone(),
            source,
        })
}

/// The node's lease as it is first created, owned by the node.
pub fn lease_object(name: &str, node_uid: &str, now: Timestamp) -> Lease {
    Lease {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(LEASE_NAMESPACE.into()),
            owner_references: Some(vec![OwnerReference {
                api_version: "v1".into(),
                kind: "Node".into(),
                name: name.into(),
                uid: node_uid.into(),
                ..Default::default()
            }]),
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(name.into()),
            lease_duration_seconds: Some(LEASE_DURATION_SECONDS),
            renew_time: Some(MicroTime(now)),
            ..Default::default()
        }),
    }
}

/// Renews the node's lease, creating it when missing.
pub async fn renew_lease(client: &Client, name: &str, node_uid: &str) -> Result<(), NodeError> {
    let api: Api<Lease> = Api::namespaced(client.clone(), LEASE_NAMESPACE);
    let now = Timestamp::now();
    let err = |source| NodeError::Lease {
        name: name.into(),
        source,
    };
    let patch = serde_json::json!({ "spec": {
        "holderIdentity": name,
        "leaseDurationSeconds": LEASE_DURATION_SECONDS,
        "renewTime": MicroTime(now),
    }});
    match api
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => {
            match api
                .create(&PostParams::default(), &lease_object(name, node_uid, now))
                .await
            {
                Ok(_) => Ok(()),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
                Err(e) => Err(err(e)),
            }
        }
        Err(e) => Err(err(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> NodeFacts {
        NodeFacts {
            name: "n1".into(),
            internal_ip: "10.64.0.1".into(),
            pod_cidr: None,
            cpu: "4".into(),
            memory: "16Gi".into(),
            ephemeral_storage: "100Gi".into(),
            runtime_version: "fake://0.1.0".into(),
        }
    }

    #[test]
    fn a_node_registers_as_upstream_shows_it() {
        let now = Timestamp::from_second(1_800_000_000).expect("time");
        let node = node_object(&facts(), now);
        let labels = node.metadata.labels.expect("labels");
        assert_eq!(labels["kubernetes.io/hostname"], "n1");
        assert_eq!(labels["kubernetes.io/os"], "linux");
        let status = node.status.expect("status");
        let ready = status
            .conditions
            .as_ref()
            .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
            .expect("Ready");
        assert_eq!(ready.status, "True");
        assert_eq!(ready.reason.as_deref(), Some("KubeletReady"));
        assert_eq!(status.capacity.expect("capacity")["pods"].0, "110");
        assert_eq!(
            status.node_info.expect("info").kubelet_version,
            KUBELET_VERSION
        );
    }

    #[test]
    fn a_re_post_keeps_transition_times_and_moves_heartbeats() {
        let t0 = Timestamp::from_second(1_800_000_000).expect("time");
        let t1 = Timestamp::from_second(1_800_000_300).expect("time");
        let first = node_status(&facts(), None, t0);
        let second = node_status(&facts(), Some(&first), t1);
        let c = &second.conditions.expect("conditions")[3];
        assert_eq!(c.last_transition_time, Some(Time(t0)));
        assert_eq!(c.last_heartbeat_time, Some(Time(t1)));
    }
}
