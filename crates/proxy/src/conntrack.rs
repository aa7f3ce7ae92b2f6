//! Stale UDP flows: conntrack keeps sending a UDP "connection" (a client's DNS socket, say) to the
//! endpoint it was first DNATed to, even after that endpoint is gone from the Service — so, as
//! upstream's proxy does, flows to a removed UDP endpoint are deleted once the new rules are in.
//! Which flows is pure (from the old and new rule sets); deleting them is behind `Conntrack`.

use std::collections::BTreeSet;

use crate::rules::Ruleset;

/// A UDP service address and one endpoint it no longer sends to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct StaleFlow {
    /// The address clients used (cluster or external IP).
    pub service_ip: String,
    pub endpoint_ip: String,
}

fn udp_pairs(r: &Ruleset) -> BTreeSet<StaleFlow> {
    let mut out = BTreeSet::new();
    for (name, c) in &r.collections {
        if !(name.starts_with("vip-") && name.ends_with("-udp")) {
            continue;
        }
        for (key, value) in &c.elements {
            // key "IP . PORT . INDEX", value "IP . PORT"
            let (Some(service_ip), Some(endpoint_ip)) = (
                key.split(" . ").next(),
                value.as_deref().and_then(|v| v.split(" . ").next()),
            ) else {
                continue;
            };
            out.insert(StaleFlow {
                service_ip: service_ip.to_string(),
                endpoint_ip: endpoint_ip.to_string(),
            });
        }
    }
    out
}

/// The (service address, endpoint) UDP pairs of `old` that `new` no longer has.
pub fn stale(old: &Ruleset, new: &Ruleset) -> Vec<StaleFlow> {
    let now = udp_pairs(new);
    udp_pairs(old)
        .into_iter()
        .filter(|p| !now.contains(p))
        .collect()
}

/// Deleting flows failed.
#[derive(Debug, thiserror::Error)]
#[error("running conntrack")]
pub struct ConntrackError(#[source] pub std::io::Error);

/// The kernel's connection tracking table, as far as stale UDP flows go.
pub trait Conntrack: Send + Sync + std::fmt::Debug {
    fn delete(&self, flows: &[StaleFlow]) -> Result<(), ConntrackError>;
}

/// The real one: the `conntrack` tool (a flow that is already gone is not an error).
#[derive(Debug, Clone, Default)]
pub struct ConntrackTool;

impl Conntrack for ConntrackTool {
    fn delete(&self, flows: &[StaleFlow]) -> Result<(), ConntrackError> {
        for f in flows {
            std::process::Command::new("conntrack")
                .args([
                    "-D",
                    "-p",
                    "udp",
                    "--orig-dst",
                    &f.service_ip,
                    "--dst-nat",
                    &f.endpoint_ip,
                ])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .map_err(ConntrackError)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Endpoint, PortId, Protocol, ServicePort};
    use crate::rules::{NodeContext, compute};

    fn dns(endpoints: &[[u8; 4]]) -> Ruleset {
        let port = ServicePort {
            id: PortId {
                namespace: "kube-system".into(),
                name: "kube-dns".into(),
                protocol: Protocol::Udp,
                port_name: "dns".into(),
            },
            cluster_ip: "10.96.0.10".parse().expect("ip"),
            port: 53,
            node_port: None,
            external_ips: Vec::new(),
            affinity_seconds: None,
            external_local: false,
            internal_local: false,
        };
        let eps: Vec<Endpoint> = endpoints
            .iter()
            .map(|ip| Endpoint {
                ip: (*ip).into(),
                port: 53,
                ready: true,
                serving: true,
                terminating: false,
                node: None,
            })
            .collect();
        let node = NodeContext {
            name: "n1".into(),
            pod_cidr: None,
            cluster_pod_cidrs: Vec::new(),
        };
        compute(&node, [(&port, eps.as_slice())])
    }

    #[test]
    fn a_removed_udp_endpoint_is_stale_and_a_kept_one_is_not() {
        let old = dns(&[[10, 42, 0, 5], [10, 42, 0, 6]]);
        let new = dns(&[[10, 42, 0, 6]]);
        assert_eq!(
            stale(&old, &new),
            vec![StaleFlow {
                service_ip: "10.96.0.10".into(),
                endpoint_ip: "10.42.0.5".into()
            }]
        );
        assert!(
            stale(&new, &old).is_empty(),
            "an added endpoint leaves nothing stale"
        );
    }
}
