//! The service proxy of every node (upstream's kube-proxy, nftables mode): Services and their
//! EndpointSlices become one nftables table — cluster IPs, node ports and external IPs load-balanced
//! to ready endpoints — and other nodes' pod CIDRs become routes (a host-gw pod network).
//! NetworkPolicies are enforced in the same table. `model` reads the API objects, `rules` computes
//! the rule set, `policy` its NetworkPolicy part, `nft` writes it to the kernel, `routes` the pod
//! routes, `runner` is the loop that keeps them current.

pub mod bench;
pub mod conntrack;
pub mod model;
pub mod nft;
pub mod policy;
pub mod routes;
pub mod rules;
pub mod runner;

pub use runner::{Kernel, Options, ProxyError, run};
