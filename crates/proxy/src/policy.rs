//! NetworkPolicy (networking.k8s.io/v1) as nftables rules for this node's pods (pure): a pod that
//! a policy selects for Ingress (Egress) is isolated in that direction — a new connection to (from)
//! it must match some rule of some policy selecting it (peers by pod and namespace selectors or
//! IP blocks, ports by number, name or range), else it is dropped. Replies to allowed connections
//! pass. Each pod is checked on its own node (all its traffic is forwarded there); the node itself
//! reaches its pods without checks (probes), as upstream's plugins allow.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector as ApiSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use oxkube_api::selector::LabelSelector;

use crate::rules::{Chain, Ruleset};

/// The map from an isolated pod's address to its ingress chain.
pub const INGRESS_MAP: &str = "policy-ingress";
/// The map from an isolated pod's address to its egress chain.
pub const EGRESS_MAP: &str = "policy-egress";

/// A pod as policies see it.
#[derive(Debug, Clone)]
struct PodView<'a> {
    namespace: &'a str,
    name: &'a str,
    ip: String,
    labels: BTreeMap<String, String>,
    node: Option<&'a str>,
    /// Named container ports: (name, protocol) → number.
    ports: BTreeMap<(String, String), i32>,
}

fn view(pod: &Pod) -> Option<PodView<'_>> {
    let spec = pod.spec.as_ref()?;
    let status = pod.status.as_ref()?;
    if spec.host_network == Some(true)
        || matches!(status.phase.as_deref(), Some("Succeeded" | "Failed"))
    {
        return None;
    }
    let ip = status.pod_ip.clone().filter(|ip| !ip.contains(':'))?;
    let mut ports = BTreeMap::new();
    for c in &spec.containers {
        for p in c.ports.iter().flatten() {
            if let Some(name) = &p.name {
                let proto = p.protocol.clone().unwrap_or_else(|| "TCP".into());
                ports.insert((name.clone(), proto), p.container_port);
            }
        }
    }
    Some(PodView {
        namespace: pod.metadata.namespace.as_deref()?,
        name: pod.metadata.name.as_deref()?,
        ip,
        labels: pod.metadata.labels.clone().unwrap_or_default(),
        node: spec.node_name.as_deref(),
        ports,
    })
}

fn selector(s: &ApiSelector) -> LabelSelector {
    // A selector the API server accepted always converts; a broken one selects nothing.
    LabelSelector::from_meta(s).unwrap_or_else(|_| {
        LabelSelector::parse("oxkube.io/invalid-selector,!oxkube.io/invalid-selector")
            .unwrap_or_else(|_| LabelSelector::everything())
    })
}

/// The policy types of `p`, defaulted as upstream: Ingress always, Egress when it has egress rules.
fn types(p: &NetworkPolicy) -> (bool, bool) {
    let spec = p.spec.as_ref();
    match spec.and_then(|s| s.policy_types.as_ref()) {
        Some(t) => (
            t.iter().any(|t| t == "Ingress"),
            t.iter().any(|t| t == "Egress"),
        ),
        None => (true, spec.and_then(|s| s.egress.as_ref()).is_some()),
    }
}

/// Who a peer list allows: addresses (pod IPs and CIDRs, with exceptions), or everyone.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Peers {
    Anyone,
    Some {
        pods: Vec<usize>,
        blocks: Vec<(String, Vec<String>)>,
    },
}

struct World<'a> {
    pods: Vec<PodView<'a>>,
    namespaces: BTreeMap<&'a str, BTreeMap<String, String>>,
}

impl World<'_> {
    fn peers(&self, policy_ns: &str, peers: Option<&Vec<NetworkPolicyPeer>>) -> Peers {
        let Some(peers) = peers.filter(|p| !p.is_empty()) else {
            return Peers::Anyone;
        };
        let mut pods = BTreeSet::new();
        let mut blocks = Vec::new();
        for peer in peers {
            if let Some(block) = &peer.ip_block {
                blocks.push((block.cidr.clone(), block.except.clone().unwrap_or_default()));
                continue;
            }
            let pod_sel = peer.pod_selector.as_ref().map(selector);
            let ns_sel = peer.namespace_selector.as_ref().map(selector);
            for (i, pod) in self.pods.iter().enumerate() {
                let ns_ok = match &ns_sel {
                    Some(sel) => self
                        .namespaces
                        .get(pod.namespace)
                        .is_some_and(|labels| sel.matches(labels)),
                    None => pod.namespace == policy_ns,
                };
                let pod_ok = pod_sel.as_ref().is_none_or(|sel| sel.matches(&pod.labels));
                if ns_ok && pod_ok && (pod_sel.is_some() || ns_sel.is_some()) {
                    pods.insert(i);
                }
            }
        }
        Peers::Some {
            pods: pods.into_iter().collect(),
            blocks,
        }
    }
}

/// A port rule resolved against the pod a named port must be looked up on.
fn port_match(port: &NetworkPolicyPort, named_on: Option<&PodView>) -> Option<(String, String)> {
    let proto = port.protocol.clone().unwrap_or_else(|| "TCP".into());
    let nft_proto = match proto.as_str() {
        "TCP" => "tcp",
        "UDP" => "udp",
        "SCTP" => "sctp",
        _ => return None,
    };
    let number = match &port.port {
        None => return Some((nft_proto.into(), String::new())),
        Some(IntOrString::Int(n)) => *n,
        Some(IntOrString::String(name)) => *named_on?.ports.get(&(name.clone(), proto))?,
    };
    let text = match port.end_port {
        Some(end) if end > number => format!("{number}-{end}"),
        _ => number.to_string(),
    };
    Some((nft_proto.into(), text))
}

/// `th dport` conditions per protocol for `ports` (empty list: any port), named ports resolved
/// on `named_on`; `None` when every listed port is a name the pod lacks (the rule allows nothing).
fn port_clauses(
    ports: Option<&Vec<NetworkPolicyPort>>,
    named_on: Option<&PodView>,
) -> Option<Vec<String>> {
    let Some(ports) = ports.filter(|p| !p.is_empty()) else {
        return Some(vec![String::new()]);
    };
    let mut by_proto: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut any_port: BTreeSet<String> = BTreeSet::new();
    for p in ports {
        if let Some((proto, number)) = port_match(p, named_on) {
            if number.is_empty() {
                any_port.insert(proto);
            } else {
                by_proto.entry(proto).or_default().insert(number);
            }
        }
    }
    let mut out: Vec<String> = any_port
        .iter()
        .map(|proto| format!("meta l4proto {proto}"))
        .collect();
    for (proto, numbers) in by_proto {
        if any_port.contains(&proto) {
            continue;
        }
        let list: Vec<String> = numbers.into_iter().collect();
        out.push(format!(
            "meta l4proto {proto} th dport {{ {} }}",
            list.join(", ")
        ));
    }
    (!out.is_empty()).then_some(out)
}

fn chain_name(direction: &str, pod: &PodView) -> String {
    format!("{direction}-{}/{}", pod.namespace, pod.name)
}

/// Adds the policy chains for `node`'s pods to `r` (its `policy-forward` chain and maps come
/// from the skeleton).
pub fn add(
    r: &mut Ruleset,
    node: &str,
    pods: &[&Pod],
    namespaces: &[&Namespace],
    policies: &[&NetworkPolicy],
) {
    let world = World {
        pods: pods.iter().filter_map(|p| view(p)).collect(),
        namespaces: namespaces
            .iter()
            .filter_map(|n| {
                Some((
                    n.metadata.name.as_deref()?,
                    n.metadata.labels.clone().unwrap_or_default(),
                ))
            })
            .collect(),
    };
    for pod in world.pods.iter().filter(|p| p.node == Some(node)) {
        let selecting: Vec<&NetworkPolicy> = policies
            .iter()
            .copied()
            .filter(|p| {
                p.metadata.namespace.as_deref() == Some(pod.namespace)
                    && p.spec.as_ref().is_some_and(|s| {
                        s.pod_selector
                            .as_ref()
                            .is_none_or(|sel| selector(sel).matches(&pod.labels))
                    })
            })
            .collect();
        let ingress: Vec<&NetworkPolicy> =
            selecting.iter().copied().filter(|p| types(p).0).collect();
        let egress: Vec<&NetworkPolicy> =
            selecting.iter().copied().filter(|p| types(p).1).collect();
        if !ingress.is_empty() {
            let mut rules = Vec::new();
            for p in &ingress {
                let ns = p.metadata.namespace.as_deref().unwrap_or_default();
                for rule in p.spec.iter().flat_map(|s| s.ingress.iter().flatten()) {
                    let Some(ports) = port_clauses(rule.ports.as_ref(), Some(pod)) else {
                        continue;
                    };
                    let sources = sources(&world, world.peers(ns, rule.from.as_ref()), "saddr");
                    for src in &sources {
                        for port in &ports {
                            rules.push(join(&[src, port, "return"]));
                        }
                    }
                }
            }
            rules.push("drop comment \"not allowed by any NetworkPolicy\"".into());
            insert(r, INGRESS_MAP, &chain_name("ingress", pod), &pod.ip, rules);
        }
        if !egress.is_empty() {
            let mut rules = Vec::new();
            for p in &egress {
                let ns = p.metadata.namespace.as_deref().unwrap_or_default();
                for rule in p.spec.iter().flat_map(|s| s.egress.iter().flatten()) {
                    let peers = world.peers(ns, rule.to.as_ref());
                    rules.extend(egress_rules(&world, &peers, rule.ports.as_ref()));
                }
            }
            rules.push("drop comment \"not allowed by any NetworkPolicy\"".into());
            insert(r, EGRESS_MAP, &chain_name("egress", pod), &pod.ip, rules);
        }
    }
}

fn join(parts: &[&str]) -> String {
    parts
        .iter()
        .filter(|p| !p.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The address conditions of `peers` (`ip saddr …` or `ip daddr …`): one per IP block and one for
/// all peer pods; an empty condition for anyone; none when the peers resolve to nobody.
fn sources(world: &World, peers: Peers, field: &str) -> Vec<String> {
    match peers {
        Peers::Anyone => vec![String::new()],
        Peers::Some { pods, blocks } => {
            let mut out = Vec::new();
            let ips: BTreeSet<&str> = pods.iter().map(|&i| world.pods[i].ip.as_str()).collect();
            if !ips.is_empty() {
                let list: Vec<&str> = ips.into_iter().collect();
                out.push(format!("ip {field} {{ {} }}", list.join(", ")));
            }
            for (cidr, except) in blocks {
                let mut c = format!("ip {field} {cidr}");
                if !except.is_empty() {
                    c.push_str(&format!(" ip {field} != {{ {} }}", except.join(", ")));
                }
                out.push(c);
            }
            out
        }
    }
}

/// Egress rules: named ports are resolved on each destination pod, so those become
/// address-and-port pairs.
fn egress_rules(
    world: &World,
    peers: &Peers,
    ports: Option<&Vec<NetworkPolicyPort>>,
) -> Vec<String> {
    let named = ports.is_some_and(|ps| {
        ps.iter()
            .any(|p| matches!(p.port, Some(IntOrString::String(_))))
    });
    if !named {
        let Some(clauses) = port_clauses(ports, None) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for dst in sources(world, peers.clone(), "daddr") {
            for port in &clauses {
                out.push(join(&[&dst, port, "return"]));
            }
        }
        return out;
    }
    // Per destination pod (IP blocks cannot have named ports resolved: they match numbers only).
    let mut out = Vec::new();
    let targets: Vec<usize> = match peers {
        Peers::Anyone => (0..world.pods.len()).collect(),
        Peers::Some { pods, .. } => pods.clone(),
    };
    for i in targets {
        let pod = &world.pods[i];
        if let Some(clauses) = port_clauses(ports, Some(pod)) {
            for port in clauses {
                out.push(join(&[&format!("ip daddr {}", pod.ip), &port, "return"]));
            }
        }
    }
    out
}

fn insert(r: &mut Ruleset, map: &str, chain: &str, ip: &str, rules: Vec<String>) {
    r.chains
        .insert(chain.to_string(), Chain { base: None, rules });
    if let Some(m) = r.collections.get_mut(map) {
        m.elements
            .insert(ip.to_string(), Some(format!("jump {chain}")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, ContainerPort, PodSpec, PodStatus};
    use k8s_openapi::api::networking::v1::{
        IPBlock, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicySpec,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pod(ns: &str, name: &str, ip: &str, node: &str, labels: &[(&str, &str)]) -> Pod {
        Pod {
            metadata: ObjectMeta {
                namespace: Some(ns.into()),
                name: Some(name.into()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: Some(node.into()),
                containers: vec![Container {
                    name: "c".into(),
                    ports: Some(vec![ContainerPort {
                        name: Some("http".into()),
                        container_port: 8080,
                        ..Default::default()
                    }]),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            status: Some(PodStatus {
                pod_ip: Some(ip.into()),
                phase: Some("Running".into()),
                ..Default::default()
            }),
        }
    }

    fn namespace(name: &str, labels: &[(&str, &str)]) -> Namespace {
        Namespace {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> ApiSelector {
        ApiSelector {
            match_labels: Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..Default::default()
        }
    }

    fn policy(ns: &str, spec: NetworkPolicySpec) -> NetworkPolicy {
        NetworkPolicy {
            metadata: ObjectMeta {
                namespace: Some(ns.into()),
                name: Some("p".into()),
                ..Default::default()
            },
            spec: Some(spec),
        }
    }

    fn run(pods: &[Pod], namespaces: &[Namespace], policies: &[NetworkPolicy]) -> Ruleset {
        let mut r = crate::rules::compute(
            &crate::rules::NodeContext {
                name: "n1".into(),
                pod_cidr: None,
                cluster_pod_cidrs: Vec::new(),
            },
            std::iter::empty(),
        );
        add(
            &mut r,
            "n1",
            &pods.iter().collect::<Vec<_>>(),
            &namespaces.iter().collect::<Vec<_>>(),
            &policies.iter().collect::<Vec<_>>(),
        );
        r
    }

    fn world() -> (Vec<Pod>, Vec<Namespace>) {
        (
            vec![
                pod("web", "server", "10.42.0.5", "n1", &[("app", "server")]),
                pod("web", "client", "10.42.0.6", "n1", &[("app", "client")]),
                pod("other", "far", "10.42.1.7", "n2", &[("app", "client")]),
            ],
            vec![
                namespace("web", &[("team", "web")]),
                namespace("other", &[("team", "other")]),
            ],
        )
    }

    #[test]
    fn a_pod_nothing_selects_is_not_isolated() {
        let (pods, nss) = world();
        let r = run(&pods, &nss, &[]);
        assert!(r.collections[INGRESS_MAP].elements.is_empty());
        assert!(!r.chains.keys().any(|c| c.starts_with("ingress-")));
    }

    #[test]
    fn deny_all_ingress_isolates_with_nothing_allowed() {
        let (pods, nss) = world();
        let deny = policy(
            "web",
            NetworkPolicySpec {
                pod_selector: Some(labels(&[("app", "server")])),
                ..Default::default()
            },
        );
        let r = run(&pods, &nss, &[deny]);
        assert_eq!(
            r.collections[INGRESS_MAP].elements["10.42.0.5"].as_deref(),
            Some("jump ingress-web/server")
        );
        assert_eq!(
            r.chains["ingress-web/server"].rules,
            vec!["drop comment \"not allowed by any NetworkPolicy\""]
        );
    }

    #[test]
    fn allow_rules_resolve_pods_namespaces_named_ports_and_blocks() {
        let (pods, nss) = world();
        let allow = policy(
            "web",
            NetworkPolicySpec {
                pod_selector: Some(labels(&[("app", "server")])),
                ingress: Some(vec![
                    NetworkPolicyIngressRule {
                        from: Some(vec![NetworkPolicyPeer {
                            pod_selector: Some(labels(&[("app", "client")])),
                            ..Default::default()
                        }]),
                        ports: Some(vec![NetworkPolicyPort {
                            port: Some(IntOrString::String("http".into())),
                            ..Default::default()
                        }]),
                    },
                    NetworkPolicyIngressRule {
                        from: Some(vec![
                            NetworkPolicyPeer {
                                namespace_selector: Some(labels(&[("team", "other")])),
                                ..Default::default()
                            },
                            NetworkPolicyPeer {
                                ip_block: Some(IPBlock {
                                    cidr: "192.168.0.0/16".into(),
                                    except: Some(vec!["192.168.1.0/24".into()]),
                                }),
                                ..Default::default()
                            },
                        ]),
                        ports: None,
                    },
                ]),
                ..Default::default()
            },
        );
        let r = run(&pods, &nss, &[allow]);
        assert_eq!(
            r.chains["ingress-web/server"].rules,
            vec![
                // Same-namespace clients only (the other namespace's client is not selected by
                // a bare podSelector), on the named port resolved on the server.
                "ip saddr { 10.42.0.6 } meta l4proto tcp th dport { 8080 } return".to_string(),
                "ip saddr { 10.42.1.7 } return".to_string(),
                "ip saddr 192.168.0.0/16 ip saddr != { 192.168.1.0/24 } return".to_string(),
                "drop comment \"not allowed by any NetworkPolicy\"".to_string(),
            ]
        );
    }

    #[test]
    fn egress_isolation_needs_the_egress_type_and_resolves_named_ports_on_destinations() {
        let (pods, nss) = world();
        let egress = policy(
            "web",
            NetworkPolicySpec {
                pod_selector: Some(labels(&[("app", "client")])),
                egress: Some(vec![NetworkPolicyEgressRule {
                    to: Some(vec![NetworkPolicyPeer {
                        pod_selector: Some(labels(&[("app", "server")])),
                        ..Default::default()
                    }]),
                    ports: Some(vec![NetworkPolicyPort {
                        port: Some(IntOrString::String("http".into())),
                        ..Default::default()
                    }]),
                }]),
                ..Default::default()
            },
        );
        let r = run(&pods, &nss, &[egress]);
        assert_eq!(
            r.chains["egress-web/client"].rules[0],
            "ip daddr 10.42.0.5 meta l4proto tcp th dport { 8080 } return"
        );
        // Ingress too (policyTypes defaulted to Ingress + Egress), with no ingress rules.
        assert!(r.chains.contains_key("ingress-web/client"));
        // A pod on another node gets no chains here.
        assert!(!r.chains.keys().any(|c| c.ends_with("other/far")));
    }
}
