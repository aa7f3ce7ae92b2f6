//! The controller-manager: independent reconcile loops that drive observed cluster state toward the
//! desired state, each a pure `reconcile` core in its own module behind a thin informer shell.

pub mod cron;
pub mod cronjob;
pub mod daemonset;
pub mod endpoints;
pub mod endpointslice;
pub mod job;
pub mod node_lifecycle;
pub mod podgc;
pub mod resourcequota;
pub mod statefulset;
pub mod ttl_after_finished;
pub mod workload;
