//! The multi-node pod network (host-gw): every other node's pod CIDR is routed via that node's
//! address. The wanted routes are computed from Node objects (pure); the kernel's routing table sits
//! behind the `Routes` trait — the real one is iproute2, tagging its routes with its own protocol
//! number so it finds and removes exactly the routes it made — with a recording fake.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Node;

/// The routing protocol number marking the proxy's routes (`ip route … proto 117`).
pub const ROUTE_PROTOCOL: &str = "117";

/// What routing needs of a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFacts {
    pub name: String,
    pub pod_cidr: String,
    pub internal_ip: String,
}

/// A node's facts, when it has a pod CIDR and an InternalIP.
pub fn facts(node: &Node) -> Option<NodeFacts> {
    let name = node.metadata.name.clone()?;
    let pod_cidr = node.spec.as_ref()?.pod_cidr.clone()?;
    let internal_ip = node
        .status
        .as_ref()?
        .addresses
        .as_ref()?
        .iter()
        .find(|a| a.type_ == "InternalIP")?
        .address
        .clone();
    Some(NodeFacts {
        name,
        pod_cidr,
        internal_ip,
    })
}

/// A route to a pod CIDR through a node.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Route {
    pub cidr: String,
    pub via: String,
}

/// The routes node `me` wants: one per other node that shares no address with it (two nodes on one
/// address share a pod network already).
pub fn desired(me: &str, nodes: &[NodeFacts]) -> Vec<Route> {
    let my_ip = nodes
        .iter()
        .find(|n| n.name == me)
        .map(|n| n.internal_ip.as_str());
    let mut out: Vec<Route> = nodes
        .iter()
        .filter(|n| n.name != me && Some(n.internal_ip.as_str()) != my_ip)
        .map(|n| Route {
            cidr: n.pod_cidr.clone(),
            via: n.internal_ip.clone(),
        })
        .collect();
    out.sort();
    out.dedup_by(|a, b| a.cidr == b.cidr);
    out
}

/// Changing the routing table failed.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error("running ip {args}")]
    Spawn {
        args: String,
        #[source]
        source: std::io::Error,
    },
    #[error("ip {args}: {stderr}")]
    Failed { args: String, stderr: String },
}

/// The node's routing table, as far as pod routes go.
pub trait Routes: Send + Sync + std::fmt::Debug {
    /// Makes the routes this trait manages exactly `wanted`.
    fn sync(&self, wanted: &[Route]) -> Result<(), RouteError>;
}

/// The routes of `ip -4 route show proto 117` output: `CIDR via ADDRESS …` lines.
pub fn parse_routes(text: &str) -> Vec<Route> {
    text.lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let via = words.iter().position(|w| *w == "via")?;
            Some(Route {
                cidr: words.first()?.to_string(),
                via: words.get(via + 1)?.to_string(),
            })
        })
        .collect()
}

/// The changes that turn `current` into `wanted`: routes to replace, CIDRs to delete.
pub fn plan(current: &[Route], wanted: &[Route]) -> (Vec<Route>, Vec<String>) {
    let now: BTreeMap<&str, &str> = current
        .iter()
        .map(|r| (r.cidr.as_str(), r.via.as_str()))
        .collect();
    let want: BTreeMap<&str, &str> = wanted
        .iter()
        .map(|r| (r.cidr.as_str(), r.via.as_str()))
        .collect();
    let replace = wanted
        .iter()
        .filter(|r| now.get(r.cidr.as_str()) != Some(&r.via.as_str()))
        .cloned()
        .collect();
    let delete = current
        .iter()
        .filter(|r| !want.contains_key(r.cidr.as_str()))
        .map(|r| r.cidr.clone())
        .collect();
    (replace, delete)
}

/// The real routing table, through iproute2.
#[derive(Debug, Clone, Default)]
pub struct IpRoutes;

fn ip(args: &[&str]) -> Result<String, RouteError> {
    let joined = args.join(" ");
    let output = std::process::Command::new("ip")
        .args(args)
        .output()
        .map_err(|source| RouteError::Spawn {
            args: joined.clone(),
            source,
        })?;
    if !output.status.success() {
        return Err(RouteError::Failed {
            args: joined,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

impl Routes for IpRoutes {
    fn sync(&self, wanted: &[Route]) -> Result<(), RouteError> {
        let current = parse_routes(&ip(&["-4", "route", "show", "proto", ROUTE_PROTOCOL])?);
        let (replace, delete) = plan(&current, wanted);
        for r in replace {
            ip(&[
                "route",
                "replace",
                &r.cidr,
                "via",
                &r.via,
                "proto",
                ROUTE_PROTOCOL,
            ])?;
        }
        for cidr in delete {
            ip(&["route", "del", &cidr, "proto", ROUTE_PROTOCOL])?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(name: &str, cidr: &str, ip: &str) -> NodeFacts {
        NodeFacts {
            name: name.into(),
            pod_cidr: cidr.into(),
            internal_ip: ip.into(),
        }
    }

    #[test]
    fn every_other_node_is_routed_via_its_address() {
        let nodes = vec![
            n("a", "10.42.0.0/24", "10.99.0.1"),
            n("b", "10.42.1.0/24", "10.99.0.2"),
            n("c", "10.42.2.0/24", "10.99.0.3"),
            n("twin", "10.42.3.0/24", "10.99.0.1"),
        ];
        assert_eq!(
            desired("a", &nodes),
            vec![
                Route {
                    cidr: "10.42.1.0/24".into(),
                    via: "10.99.0.2".into()
                },
                Route {
                    cidr: "10.42.2.0/24".into(),
                    via: "10.99.0.3".into()
                },
            ]
        );
    }

    #[test]
    fn plans_replace_changed_routes_and_delete_stale_ones() {
        let current = parse_routes(
            "10.42.1.0/24 via 10.99.0.2 dev br0 \n10.42.9.0/24 via 10.99.0.9 dev br0 \n",
        );
        assert_eq!(current.len(), 2);
        let wanted = vec![
            Route {
                cidr: "10.42.1.0/24".into(),
                via: "10.99.0.2".into(),
            },
            Route {
                cidr: "10.42.2.0/24".into(),
                via: "10.99.0.3".into(),
            },
        ];
        let (replace, delete) = plan(&current, &wanted);
        assert_eq!(replace, vec![wanted[1].clone()]);
        assert_eq!(delete, vec!["10.42.9.0/24".to_string()]);
    }
}
