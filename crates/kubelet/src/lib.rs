//! The node agent (kubelet): pod workers over a container-runtime seam, node registration and
//! leases, and hollow nodes (many simulated nodes over the in-memory runtime, for scale tests).

pub mod agent;
mod dispatch;
pub mod dns;
pub mod env;
pub mod fake;
pub mod hollow;
pub mod join;
pub mod log_server;
pub mod logs;
pub mod node;
pub mod pod_sync;
pub mod pod_worker;
pub mod runtime;
