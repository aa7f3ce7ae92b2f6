//! The scheduler's picture of the cluster: per node its object, allocatable, the pods on it (bound
//! and assumed) and their summed requests and ports, kept incrementally from watch events. One
//! writer (the scheduling loop); each cycle reads it in place, no per-pod snapshot copy.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Taint};

use crate::pod::{HostPort, PodInfo, PodKey};
use crate::resources::Resource;

/// One node and what is placed on it.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    pub name: String,
    /// `None` while pods name a node whose object has not been seen (or was deleted).
    pub node: Option<Arc<Node>>,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<Taint>,
    pub unschedulable: bool,
    pub allocatable: Resource,
    pub requested: Resource,
    pub non_zero_requested: Resource,
    pub pods: Vec<Arc<PodInfo>>,
    pub used_ports: Vec<HostPort>,
    /// Image name → size in bytes, from `status.images`.
    pub images: HashMap<String, i64>,
    /// Pods here with required anti-affinity terms (existing pods' anti-affinity check).
    pub pods_with_anti_affinity: usize,
}

impl NodeInfo {
    /// A node with nothing on it.
    pub fn new(name: &str) -> NodeInfo {
        NodeInfo {
            name: name.to_string(),
            node: None,
            labels: BTreeMap::new(),
            taints: Vec::new(),
            unschedulable: false,
            allocatable: Resource::default(),
            requested: Resource::default(),
            non_zero_requested: Resource::default(),
            pods: Vec::new(),
            used_ports: Vec::new(),
            images: HashMap::new(),
            pods_with_anti_affinity: 0,
        }
    }

    /// A node built from its object (tests, benchmarks).
    pub fn from_node(node: Node) -> NodeInfo {
        let name = node.metadata.name.clone().unwrap_or_default();
        let mut info = NodeInfo::new(&name);
        info.set_node(Arc::new(node));
        info
    }

    /// Takes the node object's labels, taints, allocatable and images.
    pub fn set_node(&mut self, node: Arc<Node>) {
        self.labels = node.metadata.labels.clone().unwrap_or_default();
        let spec = node.spec.as_ref();
        self.taints = spec.and_then(|s| s.taints.clone()).unwrap_or_default();
        self.unschedulable = spec.and_then(|s| s.unschedulable).unwrap_or(false);
        let status = node.status.as_ref();
        self.allocatable = status
            .and_then(|s| s.allocatable.as_ref().or(s.capacity.as_ref()))
            .map(Resource::from_list)
            .unwrap_or_default();
        self.images = status
            .and_then(|s| s.images.as_ref())
            .map(|imgs| {
                imgs.iter()
                    .flat_map(|i| {
                        let size = i.size_bytes.unwrap_or(0);
                        i.names.iter().flatten().map(move |n| (n.clone(), size))
                    })
                    .collect()
            })
            .unwrap_or_default();
        self.node = Some(node);
    }

    /// Places a pod here.
    pub fn add_pod(&mut self, pod: Arc<PodInfo>) {
        self.requested.add(&pod.requests);
        self.non_zero_requested.add(&pod.non_zero);
        self.used_ports.extend(pod.host_ports.iter().cloned());
        if !pod.anti_affinity.is_empty() {
            self.pods_with_anti_affinity += 1;
        }
        self.pods.push(pod);
    }

    /// Takes a pod off; false when it was not here.
    pub fn remove_pod(&mut self, key: &str) -> bool {
        let Some(i) = self.pods.iter().position(|p| p.key == key) else {
            return false;
        };
        let pod = self.pods.swap_remove(i);
        self.requested.sub(&pod.requests);
        self.non_zero_requested.sub(&pod.non_zero);
        for hp in &pod.host_ports {
            if let Some(j) = self.used_ports.iter().position(|u| u == hp) {
                self.used_ports.swap_remove(j);
            }
        }
        if !pod.anti_affinity.is_empty() {
            self.pods_with_anti_affinity -= 1;
        }
        true
    }
}

/// Where a pod sits in the cache.
#[derive(Debug, Clone)]
struct PodState {
    node: String,
    /// Placed by this scheduler and not yet seen bound in a watch event.
    assumed: bool,
}

/// Every node's info; the scheduling loop is its only writer.
#[derive(Debug, Default)]
pub struct Cache {
    nodes: Vec<NodeInfo>,
    index: HashMap<String, usize>,
    pods: HashMap<PodKey, PodState>,
    /// Image name → how many nodes have it (ImageLocality's spread).
    image_nodes: HashMap<String, usize>,
    /// PersistentVolumeClaims (`namespace/name`) and storage classes, for VolumeBinding.
    pub volumes: Volumes,
}

/// What VolumeBinding needs of a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimState {
    pub bound: bool,
    pub storage_class: String,
}

/// Claims by `namespace/name` and the storage classes that wait for the first consumer.
#[derive(Debug, Default)]
pub struct Volumes {
    pub claims: HashMap<String, ClaimState>,
    pub wait_for_first_consumer: std::collections::HashSet<String>,
}

impl Cache {
    /// An empty cache.
    pub fn new() -> Cache {
        Cache::default()
    }

    /// All node infos, including placeholders for pods on unknown nodes.
    pub fn nodes(&self) -> &[NodeInfo] {
        &self.nodes
    }

    /// How many real nodes (with a Node object) there are.
    pub fn node_count(&self) -> usize {
        self.nodes.iter().filter(|n| n.node.is_some()).count()
    }

    /// One node's info by name.
    pub fn node(&self, name: &str) -> Option<&NodeInfo> {
        self.index.get(name).map(|&i| &self.nodes[i])
    }

    /// How many nodes have this image.
    pub fn image_spread(&self, image: &str) -> usize {
        self.image_nodes.get(image).copied().unwrap_or(0)
    }

    fn slot(&mut self, name: &str) -> &mut NodeInfo {
        let i = match self.index.get(name) {
            Some(&i) => i,
            None => {
                self.nodes.push(NodeInfo::new(name));
                let i = self.nodes.len() - 1;
                self.index.insert(name.to_string(), i);
                i
            }
        };
        &mut self.nodes[i]
    }

    /// A node was added or changed.
    pub fn upsert_node(&mut self, node: Arc<Node>) {
        let name = node.metadata.name.clone().unwrap_or_default();
        let old: Vec<String> = self.slot(&name).images.keys().cloned().collect();
        for img in old {
            if let Some(c) = self.image_nodes.get_mut(&img) {
                *c = c.saturating_sub(1);
            }
        }
        let info = self.slot(&name);
        info.set_node(node);
        let new: Vec<String> = info.images.keys().cloned().collect();
        for img in new {
            *self.image_nodes.entry(img).or_insert(0) += 1;
        }
    }

    /// A node was deleted; its pods stay counted on a placeholder until they go.
    pub fn remove_node(&mut self, name: &str) {
        let Some(&i) = self.index.get(name) else {
            return;
        };
        for img in self.nodes[i].images.keys() {
            if let Some(c) = self.image_nodes.get_mut(img) {
                *c = c.saturating_sub(1);
            }
        }
        if self.nodes[i].pods.is_empty() {
            self.nodes.swap_remove(i);
            self.index.remove(name);
            if i < self.nodes.len() {
                let moved = self.nodes[i].name.clone();
                self.index.insert(moved, i);
            }
        } else {
            let info = &mut self.nodes[i];
            *info = NodeInfo {
                pods: std::mem::take(&mut info.pods),
                requested: info.requested.clone(),
                non_zero_requested: info.non_zero_requested.clone(),
                used_ports: std::mem::take(&mut info.used_ports),
                pods_with_anti_affinity: info.pods_with_anti_affinity,
                ..NodeInfo::new(name)
            };
        }
    }

    /// Places a pod this scheduler chose, before the binding is confirmed.
    pub fn assume(&mut self, pod: Arc<PodInfo>, node: &str) {
        self.remove_pod(&pod.key);
        self.pods.insert(
            pod.key.clone(),
            PodState {
                node: node.to_string(),
                assumed: true,
            },
        );
        self.slot(node).add_pod(pod);
    }

    /// Whether the pod is assumed and not yet confirmed by a watch event.
    pub fn is_assumed(&self, key: &str) -> bool {
        self.pods.get(key).is_some_and(|p| p.assumed)
    }

    /// A bound pod was seen (added, updated, or confirming an assumption).
    pub fn upsert_pod(&mut self, pod: Arc<PodInfo>) {
        self.remove_pod(&pod.key);
        let node = pod.node_name.clone();
        self.pods.insert(
            pod.key.clone(),
            PodState {
                node: node.clone(),
                assumed: false,
            },
        );
        self.slot(&node).add_pod(pod);
    }

    /// A pod left (deleted, finished, or an assumption undone).
    pub fn remove_pod(&mut self, key: &str) -> bool {
        let Some(state) = self.pods.remove(key) else {
            return false;
        };
        let Some(&i) = self.index.get(&state.node) else {
            return false;
        };
        let removed = self.nodes[i].remove_pod(key);
        if self.nodes[i].node.is_none() && self.nodes[i].pods.is_empty() {
            self.remove_node(&state.node.clone());
        }
        removed
    }

    /// The pod's cached info and node, if it is placed.
    pub fn pod_node(&self, key: &str) -> Option<&str> {
        self.pods.get(key).map(|p| p.node.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{node, pod};

    #[test]
    fn assumed_pods_count_until_forgotten_and_confirmation_replaces_them() {
        let mut cache = Cache::new();
        cache.upsert_node(Arc::new(node("n1").cpu("2").build()));
        let p = Arc::new(pod("p").cpu("500m").build_info());
        cache.assume(p.clone(), "n1");
        assert!(cache.is_assumed("default/p"));
        assert_eq!(cache.node("n1").map(|n| n.requested.milli_cpu), Some(500));
        let bound = Arc::new(pod("p").cpu("500m").node("n1").build_info());
        cache.upsert_pod(bound);
        assert!(!cache.is_assumed("default/p"));
        assert_eq!(cache.node("n1").map(|n| n.requested.milli_cpu), Some(500));
        assert!(cache.remove_pod("default/p"));
        assert_eq!(cache.node("n1").map(|n| n.requested.milli_cpu), Some(0));
    }

    #[test]
    fn pods_on_unknown_nodes_wait_on_a_placeholder() {
        let mut cache = Cache::new();
        cache.upsert_pod(Arc::new(pod("p").cpu("1").node("n9").build_info()));
        assert_eq!(cache.node_count(), 0);
        cache.upsert_node(Arc::new(node("n9").cpu("2").build()));
        assert_eq!(cache.node_count(), 1);
        assert_eq!(cache.node("n9").map(|n| n.requested.milli_cpu), Some(1000));
        cache.remove_node("n9");
        assert_eq!(cache.node_count(), 0);
        cache.remove_pod("default/p");
        assert!(cache.node("n9").is_none());
    }
}
