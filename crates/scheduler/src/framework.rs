//! The plugin framework: the `Plugin` trait with one method per extension point (PreFilter,
//! Filter, PreScore, Score, NormalizeScore, Reserve, Permit; PostFilter and Bind are the
//! preemption and binder modules), plugin statuses, per-cycle state, and profiles that say which
//! plugins run at which point with which weight.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crate::cache::{Cache, NodeInfo};
use crate::plugins;
use crate::pod::PodInfo;

/// The highest score a plugin gives a node (upstream `MaxNodeScore`).
pub const MAX_NODE_SCORE: i64 = 100;

/// A plugin's verdict (upstream `framework.Code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Code {
    Success,
    /// Could fit if something changed on the node (preemption may help).
    Unschedulable,
    /// Nothing on the node can change that (preemption will not help).
    UnschedulableAndUnresolvable,
    /// The plugin failed, not the pod.
    Error,
}

/// A plugin's verdict with its reasons.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Status {
    pub code: Code,
    pub reasons: Vec<String>,
    /// The plugin that gave it (empty for success).
    pub plugin: &'static str,
}

impl Status {
    /// All is well.
    pub fn success() -> Status {
        Status {
            code: Code::Success,
            reasons: Vec::new(),
            plugin: "",
        }
    }

    /// Rejected; preemption might help.
    pub fn unschedulable(plugin: &'static str, reason: impl Into<String>) -> Status {
        Status {
            code: Code::Unschedulable,
            reasons: vec![reason.into()],
            plugin,
        }
    }

    /// Rejected; preemption cannot help.
    pub fn unresolvable(plugin: &'static str, reason: impl Into<String>) -> Status {
        Status {
            code: Code::UnschedulableAndUnresolvable,
            reasons: vec![reason.into()],
            plugin,
        }
    }

    /// Whether the status lets the pod through.
    pub fn is_success(&self) -> bool {
        self.code == Code::Success
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reasons.join(", "))
    }
}

/// Data plugins compute once per pod (PreFilter, PreScore) and read per node.
#[derive(Default)]
pub struct CycleState {
    data: HashMap<&'static str, Box<dyn Any + Send + Sync>>,
}

impl fmt::Debug for CycleState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CycleState")
            .field("keys", &self.data.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl CycleState {
    /// Stores a plugin's data under its key.
    pub fn write<T: Any + Send + Sync>(&mut self, key: &'static str, value: T) {
        self.data.insert(key, Box::new(value));
    }

    /// Reads a plugin's data.
    pub fn read<T: Any + Send + Sync>(&self, key: &'static str) -> Option<&T> {
        self.data.get(key).and_then(|b| b.downcast_ref())
    }
}

/// A scheduling plugin. Every extension point has a default that does nothing, so a plugin
/// implements only its points; the profile lists which points each plugin is enabled at.
pub trait Plugin: Send + Sync + fmt::Debug {
    /// The upstream plugin name.
    fn name(&self) -> &'static str;

    /// Once per pod before filtering; may reject the pod outright.
    fn pre_filter(&self, _state: &mut CycleState, _pod: &PodInfo, _cache: &Cache) -> Status {
        Status::success()
    }

    /// Whether the pod fits this node.
    fn filter(&self, _state: &CycleState, _pod: &PodInfo, _node: &NodeInfo) -> Status {
        Status::success()
    }

    /// Once per pod over the feasible nodes, before scoring.
    fn pre_score(
        &self,
        _state: &mut CycleState,
        _pod: &PodInfo,
        _cache: &Cache,
        _feasible: &[&NodeInfo],
    ) {
    }

    /// This node's raw score for the pod.
    fn score(&self, _state: &CycleState, _pod: &PodInfo, _node: &NodeInfo) -> i64 {
        0
    }

    /// Brings the raw scores of all feasible nodes into 0..=100.
    fn normalize(&self, _state: &CycleState, _pod: &PodInfo, _scores: &mut [i64]) {}

    /// After a node is chosen, before binding; the cache has already assumed the pod.
    fn reserve(&self, _state: &mut CycleState, _pod: &PodInfo, _node: &str) -> Status {
        Status::success()
    }

    /// May hold or refuse the binding; no default plugin does.
    fn permit(&self, _state: &CycleState, _pod: &PodInfo, _node: &str) -> Status {
        Status::success()
    }
}

/// A score plugin and its weight.
#[derive(Debug, Clone)]
pub struct Scorer {
    pub plugin: Arc<dyn Plugin>,
    pub weight: i64,
}

/// One scheduling profile: which plugins run where.
#[derive(Debug, Clone)]
pub struct Profile {
    pub scheduler_name: String,
    pub pre_filter: Vec<Arc<dyn Plugin>>,
    pub filter: Vec<Arc<dyn Plugin>>,
    pub pre_score: Vec<Arc<dyn Plugin>>,
    pub score: Vec<Scorer>,
    pub reserve: Vec<Arc<dyn Plugin>>,
    pub permit: Vec<Arc<dyn Plugin>>,
    /// Upstream's percentageOfNodesToScore; 0 means the adaptive default.
    pub percentage_of_nodes_to_score: u32,
    /// Whether DefaultPreemption runs at PostFilter.
    pub preemption: bool,
}

impl Profile {
    /// Upstream's default plugin set and weights (`default-scheduler`).
    pub fn default_profile() -> Profile {
        let unschedulable: Arc<dyn Plugin> =
            Arc::new(plugins::node_unschedulable::NodeUnschedulable);
        let node_name: Arc<dyn Plugin> = Arc::new(plugins::node_name::NodeName);
        let taints: Arc<dyn Plugin> = Arc::new(plugins::taint_toleration::TaintToleration);
        let affinity: Arc<dyn Plugin> = Arc::new(plugins::node_affinity::NodeAffinity);
        let ports: Arc<dyn Plugin> = Arc::new(plugins::node_ports::NodePorts);
        let fit: Arc<dyn Plugin> =
            Arc::new(plugins::node_resources_fit::NodeResourcesFit::default());
        let volumes: Arc<dyn Plugin> = Arc::new(plugins::volume_binding::VolumeBinding);
        let spread: Arc<dyn Plugin> = Arc::new(plugins::pod_topology_spread::PodTopologySpread);
        let inter: Arc<dyn Plugin> = Arc::new(plugins::inter_pod_affinity::InterPodAffinity);
        let balanced: Arc<dyn Plugin> = Arc::new(plugins::balanced_allocation::BalancedAllocation);
        let images: Arc<dyn Plugin> = Arc::new(plugins::image_locality::ImageLocality);
        let scorer = |plugin: &Arc<dyn Plugin>, weight| Scorer {
            plugin: plugin.clone(),
            weight,
        };
        Profile {
            scheduler_name: crate::pod::SCHEDULER_NAME.to_string(),
            pre_filter: vec![affinity.clone(), volumes, spread.clone(), inter.clone()],
            filter: vec![
                unschedulable,
                node_name,
                taints.clone(),
                affinity.clone(),
                ports,
                fit.clone(),
                spread.clone(),
                inter.clone(),
            ],
            pre_score: vec![
                taints.clone(),
                affinity.clone(),
                spread.clone(),
                inter.clone(),
            ],
            score: vec![
                scorer(&taints, 3),
                scorer(&affinity, 2),
                scorer(&fit, 1),
                scorer(&spread, 2),
                scorer(&inter, 2),
                scorer(&balanced, 1),
                scorer(&images, 1),
            ],
            reserve: Vec::new(),
            permit: Vec::new(),
            percentage_of_nodes_to_score: 0,
            preemption: true,
        }
    }
}
