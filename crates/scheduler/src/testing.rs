//! Builders of nodes and pods for the unit tables and the benchmark's synthetic cluster.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{
    Affinity, Container, ContainerImage, ContainerPort, Node, NodeAffinity, NodeSelector,
    NodeSelectorRequirement, NodeSelectorTerm, NodeSpec, NodeStatus, Pod, PodAffinity,
    PodAffinityTerm, PodAntiAffinity, PodSpec, PreferredSchedulingTerm, ResourceRequirements,
    Taint, Toleration, TopologySpreadConstraint, WeightedPodAffinityTerm,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use crate::pod::PodInfo;

/// Starts a node named `name` with 4 CPUs, 16 GiB and 110 pods.
pub fn node(name: &str) -> NodeBuilder {
    NodeBuilder {
        name: name.to_string(),
        alloc: BTreeMap::from([
            ("cpu".to_string(), Quantity("4".into())),
            ("memory".to_string(), Quantity("16Gi".into())),
            ("pods".to_string(), Quantity("110".into())),
        ]),
        labels: BTreeMap::from([("kubernetes.io/hostname".to_string(), name.to_string())]),
        taints: Vec::new(),
        unschedulable: false,
        images: Vec::new(),
    }
}

/// A node under construction.
#[derive(Debug, Clone)]
pub struct NodeBuilder {
    name: String,
    alloc: BTreeMap<String, Quantity>,
    labels: BTreeMap<String, String>,
    taints: Vec<Taint>,
    unschedulable: bool,
    images: Vec<(String, i64)>,
}

impl NodeBuilder {
    pub fn cpu(mut self, q: &str) -> Self {
        self.alloc.insert("cpu".into(), Quantity(q.into()));
        self
    }
    pub fn memory(mut self, q: &str) -> Self {
        self.alloc.insert("memory".into(), Quantity(q.into()));
        self
    }
    pub fn resource(mut self, name: &str, q: &str) -> Self {
        self.alloc.insert(name.into(), Quantity(q.into()));
        self
    }
    pub fn label(mut self, k: &str, v: &str) -> Self {
        self.labels.insert(k.into(), v.into());
        self
    }
    pub fn taint(mut self, k: &str, v: &str, effect: &str) -> Self {
        self.taints.push(Taint {
            key: k.into(),
            value: Some(v.into()).filter(|v: &String| !v.is_empty()),
            effect: effect.into(),
            ..Default::default()
        });
        self
    }
    pub fn unschedulable(mut self) -> Self {
        self.unschedulable = true;
        self
    }
    pub fn image(mut self, name: &str, size: i64) -> Self {
        self.images.push((name.into(), size));
        self
    }
    pub fn build(self) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some(self.name),
                labels: Some(self.labels),
                ..Default::default()
            },
            spec: Some(NodeSpec {
                taints: Some(self.taints).filter(|t| !t.is_empty()),
                unschedulable: Some(self.unschedulable).filter(|u| *u),
                ..Default::default()
            }),
            status: Some(NodeStatus {
                allocatable: Some(self.alloc.clone()),
                capacity: Some(self.alloc),
                images: Some(
                    self.images
                        .into_iter()
                        .map(|(n, s)| ContainerImage {
                            names: Some(vec![n]),
                            size_bytes: Some(s),
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
        }
    }
}

/// Starts a pod named `name` in `default` with one container requesting nothing.
pub fn pod(name: &str) -> PodBuilder {
    PodBuilder {
        meta: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("default".into()),
            uid: Some(format!("uid-{name}")),
            ..Default::default()
        },
        spec: PodSpec {
            containers: vec![Container {
                name: "c".into(),
                image: Some("busybox".into()),
                ..Default::default()
            }],
            priority: Some(0),
            ..Default::default()
        },
    }
}

/// A pod under construction.
#[derive(Debug, Clone)]
pub struct PodBuilder {
    meta: ObjectMeta,
    spec: PodSpec,
}

fn selector(k: &str, v: &str) -> LabelSelector {
    LabelSelector {
        match_labels: Some(BTreeMap::from([(k.to_string(), v.to_string())])),
        ..Default::default()
    }
}

impl PodBuilder {
    fn request(mut self, name: &str, q: &str) -> Self {
        let c = &mut self.spec.containers[0];
        c.resources
            .get_or_insert_with(ResourceRequirements::default)
            .requests
            .get_or_insert_with(BTreeMap::new)
            .insert(name.into(), Quantity(q.into()));
        self
    }
    pub fn cpu(self, q: &str) -> Self {
        self.request("cpu", q)
    }
    pub fn memory(self, q: &str) -> Self {
        self.request("memory", q)
    }
    pub fn resource(self, name: &str, q: &str) -> Self {
        self.request(name, q)
    }
    pub fn image(mut self, image: &str) -> Self {
        self.spec.containers[0].image = Some(image.into());
        self
    }
    pub fn namespace(mut self, ns: &str) -> Self {
        self.meta.namespace = Some(ns.into());
        self
    }
    pub fn node(mut self, n: &str) -> Self {
        self.spec.node_name = Some(n.into());
        self
    }
    pub fn label(mut self, k: &str, v: &str) -> Self {
        self.meta
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert(k.into(), v.into());
        self
    }
    pub fn priority(mut self, p: i32) -> Self {
        self.spec.priority = Some(p);
        self
    }
    pub fn toleration(mut self, k: &str, op: &str, v: &str, effect: &str) -> Self {
        self.spec
            .tolerations
            .get_or_insert_with(Vec::new)
            .push(Toleration {
                key: Some(k.into()).filter(|k: &String| !k.is_empty()),
                operator: Some(op.into()),
                value: Some(v.into()).filter(|v: &String| !v.is_empty()),
                effect: Some(effect.into()).filter(|e: &String| !e.is_empty()),
                ..Default::default()
            });
        self
    }
    pub fn node_selector(mut self, k: &str, v: &str) -> Self {
        self.spec
            .node_selector
            .get_or_insert_with(BTreeMap::new)
            .insert(k.into(), v.into());
        self
    }
    fn node_affinity(&mut self) -> &mut NodeAffinity {
        self.spec
            .affinity
            .get_or_insert_with(Affinity::default)
            .node_affinity
            .get_or_insert_with(NodeAffinity::default)
    }
    /// Required node affinity: label `k` In `values`.
    pub fn require_node(mut self, k: &str, values: &[&str]) -> Self {
        let term = NodeSelectorTerm {
            match_expressions: Some(vec![NodeSelectorRequirement {
                key: k.into(),
                operator: "In".into(),
                values: Some(values.iter().map(|s| s.to_string()).collect()),
            }]),
            match_fields: None,
        };
        self.node_affinity()
            .required_during_scheduling_ignored_during_execution
            .get_or_insert_with(|| NodeSelector {
                node_selector_terms: Vec::new(),
            })
            .node_selector_terms
            .push(term);
        self
    }
    /// Preferred node affinity with `weight`: label `k` = `v`.
    pub fn prefer_node(mut self, weight: i32, k: &str, v: &str) -> Self {
        let term = NodeSelectorTerm {
            match_expressions: Some(vec![NodeSelectorRequirement {
                key: k.into(),
                operator: "In".into(),
                values: Some(vec![v.into()]),
            }]),
            match_fields: None,
        };
        self.node_affinity()
            .preferred_during_scheduling_ignored_during_execution
            .get_or_insert_with(Vec::new)
            .push(PreferredSchedulingTerm {
                weight,
                preference: term,
            });
        self
    }
    pub fn host_port(mut self, port: i32) -> Self {
        self.spec.containers[0]
            .ports
            .get_or_insert_with(Vec::new)
            .push(ContainerPort {
                container_port: port,
                host_port: Some(port),
                protocol: Some("TCP".into()),
                ..Default::default()
            });
        self
    }
    fn term(k: &str, v: &str, topology: &str) -> PodAffinityTerm {
        PodAffinityTerm {
            label_selector: Some(selector(k, v)),
            topology_key: topology.into(),
            ..Default::default()
        }
    }
    /// Required anti-affinity to pods labelled `k=v` within `topology`.
    pub fn anti_affinity(mut self, k: &str, v: &str, topology: &str) -> Self {
        self.spec
            .affinity
            .get_or_insert_with(Affinity::default)
            .pod_anti_affinity
            .get_or_insert_with(PodAntiAffinity::default)
            .required_during_scheduling_ignored_during_execution
            .get_or_insert_with(Vec::new)
            .push(Self::term(k, v, topology));
        self
    }
    /// Preferred anti-affinity with `weight`.
    pub fn prefer_anti_affinity(mut self, weight: i32, k: &str, v: &str, topology: &str) -> Self {
        self.spec
            .affinity
            .get_or_insert_with(Affinity::default)
            .pod_anti_affinity
            .get_or_insert_with(PodAntiAffinity::default)
            .preferred_during_scheduling_ignored_during_execution
            .get_or_insert_with(Vec::new)
            .push(WeightedPodAffinityTerm {
                weight,
                pod_affinity_term: Self::term(k, v, topology),
            });
        self
    }
    /// Required affinity to pods labelled `k=v` within `topology`.
    pub fn affinity(mut self, k: &str, v: &str, topology: &str) -> Self {
        self.spec
            .affinity
            .get_or_insert_with(Affinity::default)
            .pod_affinity
            .get_or_insert_with(PodAffinity::default)
            .required_during_scheduling_ignored_during_execution
            .get_or_insert_with(Vec::new)
            .push(Self::term(k, v, topology));
        self
    }
    /// A topology spread constraint over pods labelled `k=v`.
    pub fn spread(mut self, max_skew: i32, topology: &str, hard: bool, k: &str, v: &str) -> Self {
        self.spec
            .topology_spread_constraints
            .get_or_insert_with(Vec::new)
            .push(TopologySpreadConstraint {
                max_skew,
                topology_key: topology.into(),
                when_unsatisfiable: if hard {
                    "DoNotSchedule"
                } else {
                    "ScheduleAnyway"
                }
                .into(),
                label_selector: Some(selector(k, v)),
                ..Default::default()
            });
        self
    }
    pub fn build(self) -> Pod {
        Pod {
            metadata: self.meta,
            spec: Some(self.spec),
            status: None,
        }
    }
    pub fn build_info(self) -> PodInfo {
        PodInfo::new(Arc::new(self.build()))
    }
}
