//! The scheduler: picks a node for every pending pod through a plugin framework (filter, score,
//! reserve, bind) as kube-scheduler does, and binds it through pods/binding.
//!
//! Pure core: `queue` (activeQ/backoffQ/unschedulable), `cache` (node infos with assumed pods),
//! `framework` + `plugins` (one file per upstream plugin), `schedule` (one cycle, the failure
//! message, the explanation), `preemption`. Thin shell: `runner` (watches, the loop, binding,
//! events, status), `explain` (the loopback endpoint behind `oxkube why-pending`), `bench`.

pub mod bench;
pub mod cache;
pub mod explain;
pub mod framework;
pub mod plugins;
pub mod pod;
pub mod preemption;
pub mod queue;
pub mod resources;
pub mod runner;
pub mod schedule;
pub mod testing;

pub use runner::{Options, RunError, run};
