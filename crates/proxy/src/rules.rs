//! The rule set for one node, computed from its Service ports and endpoints (pure): the chains,
//! verdict maps and sets of the proxy's nftables table, shaped as upstream kube-proxy's nftables
//! mode (dispatch through verdict maps, a chain per service port, random choice with `numgen`,
//! session affinity in timed sets, masquerading by a packet mark) — but without a chain per
//! endpoint unless affinity needs one: the choice and the DNAT are one rule, which keeps large
//! clusters' tables (and their writes) several times smaller.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use sha2::{Digest, Sha256};

use crate::model::{Categorized, Endpoint, PortId, Protocol, ServicePort};

/// The packet mark that asks for masquerading (upstream's 0x4000).
pub const MASQUERADE_MARK: &str = "0x4000";

/// A chain: its base-chain declaration (hook and priority) if it has one, and its rules in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Chain {
    pub base: Option<&'static str>,
    pub rules: Vec<String>,
}

/// A set or map: its declaration and its elements (for maps `key : verdict`, keyed by `key`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Collection {
    pub map: bool,
    pub declaration: String,
    pub elements: BTreeMap<String, Option<String>>,
}

/// Everything the proxy's table holds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ruleset {
    pub chains: BTreeMap<String, Chain>,
    pub collections: BTreeMap<String, Collection>,
}

/// What the node itself contributes: its name (for local endpoints) and pod CIDR (traffic from
/// elsewhere to a cluster IP is masqueraded, upstream's `--detect-local-mode=NodeCIDR`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeContext {
    pub name: String,
    pub pod_cidr: Option<String>,
    /// Every node's pod CIDR: pod traffic to anywhere else is masqueraded to the node's address
    /// (the pod network's outbound NAT, which the CNI bridge leaves to us so pod-to-pod traffic
    /// across nodes keeps its source address).
    pub cluster_pod_cidrs: Vec<String>,
}

const SERVICE_IPS: &str = "service-ips";
const SERVICE_NODEPORTS: &str = "service-nodeports";
const NO_ENDPOINT_SERVICES: &str = "no-endpoint-services";
const NO_ENDPOINT_NODEPORTS: &str = "no-endpoint-nodeports";
const CLUSTER_IPS: &str = "cluster-ips";
/// How a packet names the service port it wants, which keys the endpoint maps: by address and
/// port (cluster IPs, external IPs) or by node port alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    Address,
    NodePort,
}

/// An endpoint map: per protocol (a map's port type names its protocol), per key kind, and for
/// `externalTrafficPolicy: Local` a second pair holding the cluster-wide endpoints that pods and
/// the node itself still use.
fn endpoints_map(via: Via, cluster_wide: bool, protocol: Protocol) -> String {
    let via = match via {
        Via::Address => "vip",
        Via::NodePort => "nodeport",
    };
    let scope = if cluster_wide { "-cluster" } else { "" };
    format!("{via}{scope}-endpoints-{}", protocol.nft())
}

/// The maps' key expression (the packet's) without the endpoint index.
fn map_key(via: Via, protocol: Protocol) -> String {
    let p = protocol.nft();
    match via {
        Via::Address => format!("ip daddr . {p} dport"),
        Via::NodePort => format!("{p} dport"),
    }
}

const NODEPORT_MASQUERADE: &str = "nodeport-masquerade";
const POD_CIDRS: &str = "pod-cidrs";
const EXTERNAL_MASQUERADE: &str = "external-masquerade";
const HAIRPIN: &str = "hairpin";
const MARK_FOR_MASQUERADE: &str = "mark-for-masquerade";
const REJECT_CHAIN: &str = "reject-chain";

/// A short stable hash of a name, as upstream prefixes its chain names (8 base32 characters), so
/// names stay unique however the readable part reads.
fn hash(text: &str) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let digest = Sha256::digest(text.as_bytes());
    let mut bits = u64::from_be_bytes([
        digest[0], digest[1], digest[2], digest[3], digest[4], digest[5], digest[6], digest[7],
    ]);
    let mut out = String::with_capacity(8);
    for _ in 0..8 {
        out.push(char::from(ALPHABET[(bits >> 59) as usize]));
        bits <<= 5;
    }
    out
}

fn port_chain(prefix: &str, id: &PortId) -> String {
    let id = id.to_string();
    format!("{prefix}-{}-{id}", hash(&id))
}

fn endpoint_suffix(id: &PortId, ep: &Endpoint) -> String {
    format!("{id}__{}/{}", ep.ip, ep.port)
}

fn endpoint_chain(id: &PortId, ep: &Endpoint) -> String {
    let name = endpoint_suffix(id, ep);
    format!("endpoint-{}-{name}", hash(&name))
}

/// An endpoint's affinity set; its timeout is part of the hash, so a changed timeout is a new set.
fn affinity_set(id: &PortId, ep: &Endpoint, seconds: u32) -> String {
    let name = endpoint_suffix(id, ep);
    format!("affinity-{}-{name}", hash(&format!("{name} {seconds}")))
}

fn collection(map: bool, declaration: &str) -> Collection {
    Collection {
        map,
        declaration: declaration.to_string(),
        elements: BTreeMap::new(),
    }
}

fn chain(base: Option<&'static str>, rules: &[&str]) -> Chain {
    Chain {
        base,
        rules: rules.iter().map(|r| r.to_string()).collect(),
    }
}

/// The chains and collections every rule set has, whatever the services.
fn skeleton(node: &NodeContext) -> Ruleset {
    let mut r = Ruleset::default();
    let chains = [
        (
            "filter-input",
            Some("type filter hook input priority -110; policy accept;"),
            vec![
                "ct state new jump nodeport-endpoints-check",
                "ct state new jump service-endpoints-check",
            ],
        ),
        (
            "filter-forward",
            Some("type filter hook forward priority -110; policy accept;"),
            vec![
                "ct state new jump service-endpoints-check",
                "ct state new jump cluster-ips-check",
            ],
        ),
        (
            "filter-output",
            Some("type filter hook output priority -110; policy accept;"),
            vec!["ct state new jump service-endpoints-check"],
        ),
        (
            "filter-output-post-dnat",
            Some("type filter hook output priority -90; policy accept;"),
            vec!["ct state new jump cluster-ips-check"],
        ),
        (
            "nat-prerouting",
            Some("type nat hook prerouting priority dstnat; policy accept;"),
            vec!["jump services"],
        ),
        (
            "nat-output",
            Some("type nat hook output priority -100; policy accept;"),
            vec!["jump services"],
        ),
        (
            "nat-postrouting",
            Some("type nat hook postrouting priority srcnat; policy accept;"),
            vec![
                "ct status dnat ip saddr . ip daddr @hairpin masquerade comment \"an endpoint reaching itself\"",
                "jump masquerading",
            ],
        ),
        (
            "services",
            None,
            vec![
                "ip daddr . meta l4proto . th dport @external-masquerade jump mark-for-masquerade",
                "fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport @nodeport-masquerade jump mark-for-masquerade",
                "ip daddr . meta l4proto . th dport vmap @service-ips",
                "fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports",
            ],
        ),
        (
            "service-endpoints-check",
            None,
            vec!["ip daddr . meta l4proto . th dport vmap @no-endpoint-services"],
        ),
        (
            "nodeport-endpoints-check",
            None,
            vec![
                "fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @no-endpoint-nodeports",
            ],
        ),
        (
            "cluster-ips-check",
            None,
            vec!["ip daddr @cluster-ips reject comment \"no service port here\""],
        ),
        (
            MARK_FOR_MASQUERADE,
            None,
            vec!["meta mark set meta mark | 0x4000"],
        ),
        (
            "masquerading",
            None,
            vec![
                "meta mark & 0x4000 == 0 return",
                "meta mark set meta mark ^ 0x4000",
                "masquerade fully-random",
            ],
        ),
        (REJECT_CHAIN, None, vec!["reject"]),
        (
            "policy-forward",
            Some("type filter hook forward priority 0; policy accept;"),
            vec![
                "ct state established,related accept",
                "ip saddr vmap @policy-egress",
                "ip daddr vmap @policy-ingress",
            ],
        ),
    ];
    for (name, base, rules) in chains {
        r.chains.insert(name.to_string(), chain(base, &rules));
    }
    let ip_port = "type ipv4_addr . inet_proto . inet_service : verdict;";
    let port = "type inet_proto . inet_service : verdict;";
    for (name, map, decl) in [
        (SERVICE_IPS, true, ip_port),
        (SERVICE_NODEPORTS, true, port),
        (NO_ENDPOINT_SERVICES, true, ip_port),
        (NO_ENDPOINT_NODEPORTS, true, port),
        (CLUSTER_IPS, false, "type ipv4_addr;"),
        (HAIRPIN, false, "type ipv4_addr . ipv4_addr;"),
        (POD_CIDRS, false, "type ipv4_addr; flags interval;"),
        (
            crate::policy::INGRESS_MAP,
            true,
            "type ipv4_addr : verdict;",
        ),
        (crate::policy::EGRESS_MAP, true, "type ipv4_addr : verdict;"),
    ] {
        r.collections
            .insert(name.to_string(), collection(map, decl));
    }
    r.collections.insert(
        NODEPORT_MASQUERADE.into(),
        collection(false, "type inet_proto . inet_service;"),
    );
    r.collections.insert(
        EXTERNAL_MASQUERADE.into(),
        collection(false, "type ipv4_addr . inet_proto . inet_service;"),
    );
    for protocol in [Protocol::Tcp, Protocol::Udp, Protocol::Sctp] {
        for via in [Via::Address, Via::NodePort] {
            for cluster_wide in [false, true] {
                let key = map_key(via, protocol);
                let p = protocol.nft();
                r.collections.insert(
                    endpoints_map(via, cluster_wide, protocol),
                    collection(
                        true,
                        &format!("typeof {key} . numgen random mod 1 : ip daddr . {p} dport;"),
                    ),
                );
            }
        }
    }
    let mut cidrs = node.cluster_pod_cidrs.clone();
    cidrs.sort();
    cidrs.dedup();
    for cidr in cidrs {
        r.element(POD_CIDRS, cidr, None);
    }
    if let (Some(cidr), Some(post)) = (&node.pod_cidr, r.chains.get_mut("nat-postrouting")) {
        post.rules.push(format!(
            "ip saddr {cidr} ip daddr != @{POD_CIDRS} ip daddr != 224.0.0.0/4 masquerade comment \"pods to outside the pod network\""
        ));
    }
    // Traffic to a cluster IP from outside this node's pods is masqueraded, so replies come back
    // through this node (upstream's per-service rule, here once for all services).
    if let Some(cidr) = &node.pod_cidr
        && let Some(services) = r.chains.get_mut("services")
    {
        services.rules.insert(
            0,
            format!("ip daddr @cluster-ips ip saddr != {cidr} jump {MARK_FOR_MASQUERADE}"),
        );
    }
    r
}

impl Ruleset {
    fn element(&mut self, collection: &str, key: String, value: Option<String>) {
        if let Some(c) = self.collections.get_mut(collection) {
            c.elements.insert(key, value);
        }
    }

    /// With session affinity: a chain choosing one of `endpoints` — the one a client was sent to
    /// before (each endpoint's chain records its clients in a timed set), else one at random.
    fn balance_with_affinity(
        &mut self,
        name: String,
        port: &ServicePort,
        endpoints: &[Endpoint],
        seconds: u32,
        lead: Vec<String>,
    ) {
        let mut rules = lead;
        for ep in endpoints {
            rules.push(format!(
                "ip saddr @{} goto {}",
                affinity_set(&port.id, ep, seconds),
                endpoint_chain(&port.id, ep)
            ));
        }
        let arms: Vec<String> = endpoints
            .iter()
            .enumerate()
            .map(|(i, ep)| format!("{i} : goto {}", endpoint_chain(&port.id, ep)))
            .collect();
        rules.push(format!(
            "numgen random mod {} vmap {{ {} }}",
            endpoints.len(),
            arms.join(", ")
        ));
        self.chains.insert(name, Chain { base: None, rules });
    }

    /// Without affinity: `endpoints` as the elements of an endpoint map under `key` (index `i` is
    /// the i-th endpoint), and the shared chain that picks one of `n` at random and DNATs to it —
    /// one chain (one map lookup) per map and endpoint count, whatever the number of services,
    /// since the kernel's cost of a map grows with the rules that look it up.
    fn balancer(
        &mut self,
        via: Via,
        cluster_wide: bool,
        protocol: Protocol,
        key: &str,
        endpoints: &[Endpoint],
    ) -> String {
        let map = endpoints_map(via, cluster_wide, protocol);
        for (i, ep) in endpoints.iter().enumerate() {
            self.element(
                &map,
                format!("{key} . {i}"),
                Some(format!("{} . {}", ep.ip, ep.port)),
            );
        }
        let n = endpoints.len();
        let chain = format!("balance-{map}-{n}");
        self.chains.entry(chain.clone()).or_insert_with(|| Chain {
            base: None,
            rules: vec![format!(
                "meta l4proto {p} dnat ip to {} . numgen random mod {n} map @{map}",
                map_key(via, protocol),
                p = protocol.nft()
            )],
        });
        chain
    }

    /// A service port's node port and external IPs refuse connections (nothing serves them).
    fn reject_external(&mut self, port: &ServicePort) {
        let proto = port.id.protocol.nft();
        let reject = Some(format!("goto {REJECT_CHAIN}"));
        if let Some(node_port) = port.node_port {
            self.element(
                NO_ENDPOINT_NODEPORTS,
                format!("{proto} . {node_port}"),
                reject.clone(),
            );
        }
        for ip in &port.external_ips {
            self.element(
                NO_ENDPOINT_SERVICES,
                format!("{ip} . {proto} . {}", port.port),
                reject.clone(),
            );
        }
    }

    /// The rules of a service port without session affinity: dispatch-map entries straight to the
    /// shared balancers, and a chain of its own only for `externalTrafficPolicy: Local`.
    fn port_shared(&mut self, node: &NodeContext, port: &ServicePort, eps: &Categorized) {
        let protocol = port.id.protocol;
        let proto = protocol.nft();
        let address = |ip: Ipv4Addr| format!("{ip} . {}", port.port);
        let dispatch = |ip: Ipv4Addr| format!("{ip} . {proto} . {}", port.port);
        let reject = Some(format!("goto {REJECT_CHAIN}"));
        let internal = if port.internal_local {
            &eps.local
        } else {
            &eps.cluster
        };
        if internal.is_empty() {
            self.element(
                NO_ENDPOINT_SERVICES,
                dispatch(port.cluster_ip),
                reject.clone(),
            );
        } else {
            let chain = self.balancer(
                Via::Address,
                false,
                protocol,
                &address(port.cluster_ip),
                internal,
            );
            self.element(
                SERVICE_IPS,
                dispatch(port.cluster_ip),
                Some(format!("goto {chain}")),
            );
        }
        if !port.externally_reachable() {
            return;
        }
        let (usable, local) = if port.external_local {
            (!eps.cluster.is_empty() || !eps.local.is_empty(), true)
        } else {
            (!eps.cluster.is_empty(), false)
        };
        if !usable {
            self.reject_external(port);
            return;
        }
        let mut entries: Vec<(Via, String, &'static str, String)> = Vec::new();
        if let Some(node_port) = port.node_port {
            entries.push((
                Via::NodePort,
                node_port.to_string(),
                SERVICE_NODEPORTS,
                format!("{proto} . {node_port}"),
            ));
        }
        for ip in &port.external_ips {
            entries.push((Via::Address, address(*ip), SERVICE_IPS, dispatch(*ip)));
        }
        for (via, key, dispatch_map, dispatch_key) in entries {
            let target = if local {
                // Pods and the node itself may still use any endpoint; traffic from outside
                // only this node's, keeping its source address.
                let mut rules = Vec::new();
                if !eps.cluster.is_empty() {
                    let cluster = self.balancer(via, true, protocol, &key, &eps.cluster);
                    if let Some(cidr) = &node.pod_cidr {
                        rules.push(format!("ip saddr {cidr} goto {cluster}"));
                    }
                    rules.push(format!("fib saddr type local jump {MARK_FOR_MASQUERADE}"));
                    rules.push(format!("fib saddr type local goto {cluster}"));
                }
                rules.push(if eps.local.is_empty() {
                    "drop comment \"no local endpoints\"".to_string()
                } else {
                    format!(
                        "goto {}",
                        self.balancer(via, false, protocol, &key, &eps.local)
                    )
                });
                let prefix = match via {
                    Via::Address => "external",
                    Via::NodePort => "nodeport",
                };
                let name = port_chain(prefix, &port.id);
                self.chains
                    .insert(name.clone(), Chain { base: None, rules });
                name
            } else {
                let masquerade = match via {
                    Via::Address => EXTERNAL_MASQUERADE,
                    Via::NodePort => NODEPORT_MASQUERADE,
                };
                let marked = match via {
                    Via::Address => dispatch_key.clone(),
                    Via::NodePort => dispatch_key.clone(),
                };
                self.element(masquerade, marked, None);
                self.balancer(via, false, protocol, &key, &eps.cluster)
            };
            self.element(dispatch_map, dispatch_key, Some(format!("goto {target}")));
        }
    }

    fn endpoint(&mut self, port: &ServicePort, ep: &Endpoint) {
        let mut rules = Vec::new();
        if let Some(seconds) = port.affinity_seconds {
            let set = affinity_set(&port.id, ep, seconds);
            rules.push(format!("update @{set} {{ ip saddr }}"));
            self.collections.insert(
                set,
                collection(
                    false,
                    &format!("type ipv4_addr; flags dynamic,timeout; timeout {seconds}s;"),
                ),
            );
        }
        rules.push(format!(
            "meta l4proto {} dnat to {}:{}",
            port.id.protocol.nft(),
            ep.ip,
            ep.port
        ));
        self.chains
            .insert(endpoint_chain(&port.id, ep), Chain { base: None, rules });
    }

    /// The rules of one service port (with session affinity: chains of its own, upstream's shape).
    fn port(&mut self, node: &NodeContext, port: &ServicePort, eps: &Categorized) {
        let id = &port.id;
        let proto = id.protocol.nft();
        let cluster_chain = port_chain("service", id);
        let local_chain = port_chain("local", id);
        let external_chain = port_chain("external", id);
        self.element(CLUSTER_IPS, port.cluster_ip.to_string(), None);
        for ep in eps.cluster.iter().chain(&eps.local) {
            self.element(HAIRPIN, format!("{ip} . {ip}", ip = ep.ip), None);
        }
        let Some(seconds) = port.affinity_seconds else {
            self.port_shared(node, port, eps);
            return;
        };
        for ep in eps.cluster.iter().chain(&eps.local) {
            self.endpoint(port, ep);
        }
        if !eps.cluster.is_empty() {
            let lead = node
                .pod_cidr
                .iter()
                .map(|cidr| {
                    format!(
                        "ip daddr {} {proto} dport {} ip saddr != {cidr} jump {MARK_FOR_MASQUERADE}",
                        port.cluster_ip, port.port
                    )
                })
                .collect();
            self.balance_with_affinity(cluster_chain.clone(), port, &eps.cluster, seconds, lead);
        }
        if !eps.local.is_empty() {
            self.balance_with_affinity(local_chain.clone(), port, &eps.local, seconds, Vec::new());
        }
        let key = |ip: Ipv4Addr| format!("{ip} . {proto} . {}", port.port);
        let reject = Some(format!("goto {REJECT_CHAIN}"));

        let internal = if port.internal_local {
            (!eps.local.is_empty()).then_some(&local_chain)
        } else {
            (!eps.cluster.is_empty()).then_some(&cluster_chain)
        };
        match internal {
            Some(chain) => self.element(
                SERVICE_IPS,
                key(port.cluster_ip),
                Some(format!("goto {chain}")),
            ),
            None => self.element(NO_ENDPOINT_SERVICES, key(port.cluster_ip), reject.clone()),
        }

        if !port.externally_reachable() {
            return;
        }
        let external = if port.external_local {
            // Pods and the node itself may still use any endpoint; traffic from outside only
            // this node's, keeping its source address.
            let mut rules = Vec::new();
            if !eps.cluster.is_empty() {
                if let Some(cidr) = &node.pod_cidr {
                    rules.push(format!("ip saddr {cidr} goto {cluster_chain}"));
                }
                rules.push(format!("fib saddr type local jump {MARK_FOR_MASQUERADE}"));
                rules.push(format!("fib saddr type local goto {cluster_chain}"));
            }
            rules.push(if eps.local.is_empty() {
                "drop comment \"no local endpoints\"".to_string()
            } else {
                format!("goto {local_chain}")
            });
            (!eps.cluster.is_empty() || !eps.local.is_empty()).then_some(rules)
        } else {
            (!eps.cluster.is_empty()).then(|| {
                vec![
                    format!("jump {MARK_FOR_MASQUERADE}"),
                    format!("goto {cluster_chain}"),
                ]
            })
        };
        match external {
            Some(rules) => {
                self.chains
                    .insert(external_chain.clone(), Chain { base: None, rules });
                let to = Some(format!("goto {external_chain}"));
                if let Some(node_port) = port.node_port {
                    self.element(
                        SERVICE_NODEPORTS,
                        format!("{proto} . {node_port}"),
                        to.clone(),
                    );
                }
                for ip in &port.external_ips {
                    self.element(SERVICE_IPS, key(*ip), to.clone());
                }
            }
            None => self.reject_external(port),
        }
    }
}

/// The whole rule set for `node` given every service port and its endpoints.
pub fn compute<'a>(
    node: &NodeContext,
    ports: impl IntoIterator<Item = (&'a ServicePort, &'a [Endpoint])>,
) -> Ruleset {
    let mut r = skeleton(node);
    for (port, endpoints) in ports {
        let eps = crate::model::categorize(port, endpoints, &node.name);
        r.port(node, port, &eps);
    }
    r
}

/// The names of the chains a rule set jumps to or maps to that it does not define (a rule set
/// from `compute` has none).
pub fn dangling_references(r: &Ruleset) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let targets = r.chains.values().flat_map(|c| c.rules.iter()).chain(
        r.collections
            .values()
            .flat_map(|c| c.elements.values().flatten()),
    );
    for text in targets {
        let words: Vec<&str> = text.split_whitespace().collect();
        for pair in words.windows(2) {
            if matches!(pair[0], "goto" | "jump") {
                let name = pair[1].trim_end_matches([',', '}']);
                if !r.chains.contains_key(name) {
                    out.insert(name.to_string());
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_name_hashes_are_stable_and_base32() {
        let h = hash("default/kubernetes/tcp/https");
        assert_eq!(h.len(), 8);
        assert!(
            h.chars()
                .all(|c| c.is_ascii_uppercase() || ('2'..='7').contains(&c))
        );
        assert_eq!(h, hash("default/kubernetes/tcp/https"));
        assert_ne!(h, hash("default/kubernetes/tcp/http"));
    }
}
