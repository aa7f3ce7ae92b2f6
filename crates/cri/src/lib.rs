//! The real node runtime: a CRI v1 client behind the kubelet's runtime seam, the node's own
//! containerd (configured and supervised), the pod network's CNI config, the project's pause
//! program, deterministic OCI images, and the real node that ties them to the kubelet's agent.

pub mod cni;
pub mod containerd;
pub mod host;
pub mod image;
pub mod node;
pub mod pause;
pub mod runtime;
