//! What the proxy programs, as plain values: service ports and their endpoints, read from Service
//! and EndpointSlice objects (pure conversions, no I/O).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

/// The label naming an EndpointSlice's Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// A transport protocol a Service port can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    /// From the API's spelling (`TCP` when unset, as upstream defaults it).
    pub fn parse(s: Option<&str>) -> Option<Protocol> {
        match s.unwrap_or("TCP") {
            "TCP" => Some(Protocol::Tcp),
            "UDP" => Some(Protocol::Udp),
            "SCTP" => Some(Protocol::Sctp),
            _ => None,
        }
    }

    /// nftables' name for it.
    pub fn nft(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

/// One port of one Service: `namespace/name/protocol/port-name`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortId {
    pub namespace: String,
    pub name: String,
    pub protocol: Protocol,
    /// The port's name; empty for a Service's single unnamed port.
    pub port_name: String,
}

impl std::fmt::Display for PortId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{}/{}/{}",
            self.namespace,
            self.name,
            self.protocol.nft(),
            self.port_name
        )
    }
}

/// A Service port as the proxy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePort {
    pub id: PortId,
    pub cluster_ip: Ipv4Addr,
    pub port: u16,
    pub node_port: Option<u16>,
    /// `externalIPs` and `status.loadBalancer.ingress[].ip`: reached from outside like a node port.
    pub external_ips: Vec<Ipv4Addr>,
    /// `sessionAffinity: ClientIP`: its timeout in seconds.
    pub affinity_seconds: Option<u32>,
    /// `externalTrafficPolicy: Local` (meaningful for node ports and external IPs only).
    pub external_local: bool,
    /// `internalTrafficPolicy: Local`.
    pub internal_local: bool,
}

impl ServicePort {
    /// Whether anything but the cluster IP reaches it.
    pub fn externally_reachable(&self) -> bool {
        self.node_port.is_some() || !self.external_ips.is_empty()
    }
}

/// Upstream's default `sessionAffinityConfig.clientIP.timeoutSeconds` (3 hours).
pub const DEFAULT_AFFINITY_SECONDS: u32 = 10_800;

/// The ports the proxy programs for a Service: none for headless, ExternalName or IPv6-only ones.
pub fn service_ports(service: &Service) -> Vec<ServicePort> {
    let (Some(namespace), Some(name), Some(spec)) = (
        service.metadata.namespace.as_deref(),
        service.metadata.name.as_deref(),
        service.spec.as_ref(),
    ) else {
        return Vec::new();
    };
    if spec.type_.as_deref() == Some("ExternalName") {
        return Vec::new();
    }
    let Some(cluster_ip) = spec
        .cluster_ip
        .as_deref()
        .and_then(|ip| ip.parse::<Ipv4Addr>().ok())
    else {
        return Vec::new();
    };
    let mut external_ips: Vec<Ipv4Addr> = spec
        .external_ips
        .iter()
        .flatten()
        .filter_map(|ip| ip.parse().ok())
        .collect();
    if spec.type_.as_deref() == Some("LoadBalancer") {
        external_ips.extend(
            service
                .status
                .as_ref()
                .and_then(|s| s.load_balancer.as_ref())
                .and_then(|lb| lb.ingress.as_ref())
                .into_iter()
                .flatten()
                .filter_map(|i| i.ip.as_deref()?.parse::<Ipv4Addr>().ok()),
        );
    }
    external_ips.sort();
    external_ips.dedup();
    let affinity_seconds = (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
        spec.session_affinity_config
            .as_ref()
            .and_then(|c| c.client_ip.as_ref())
            .and_then(|c| c.timeout_seconds)
            .and_then(|t| u32::try_from(t).ok())
            .unwrap_or(DEFAULT_AFFINITY_SECONDS)
    });
    let with_node_ports = matches!(spec.type_.as_deref(), Some("NodePort" | "LoadBalancer"));
    spec.ports
        .iter()
        .flatten()
        .filter_map(|p| {
            Some(ServicePort {
                id: PortId {
                    namespace: namespace.to_string(),
                    name: name.to_string(),
                    protocol: Protocol::parse(p.protocol.as_deref())?,
                    port_name: p.name.clone().unwrap_or_default(),
                },
                cluster_ip,
                port: u16::try_from(p.port).ok()?,
                node_port: p
                    .node_port
                    .filter(|_| with_node_ports)
                    .and_then(|n| u16::try_from(n).ok()),
                external_ips: external_ips.clone(),
                affinity_seconds,
                external_local: spec.external_traffic_policy.as_deref() == Some("Local"),
                internal_local: spec.internal_traffic_policy.as_deref() == Some("Local"),
            })
        })
        .collect()
}

/// One backend of a Service port.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Endpoint {
    pub ip: Ipv4Addr,
    pub port: u16,
    pub ready: bool,
    pub serving: bool,
    pub terminating: bool,
    pub node: Option<String>,
}

/// The endpoints of every Service port, merged over all of a Service's EndpointSlices (an address
/// in two slices counts once, ready if either says so).
pub fn endpoints_by_port<'a>(
    slices: impl IntoIterator<Item = &'a EndpointSlice>,
) -> BTreeMap<PortId, Vec<Endpoint>> {
    let mut out: BTreeMap<PortId, BTreeMap<(Ipv4Addr, u16), Endpoint>> = BTreeMap::new();
    for slice in slices {
        if slice.address_type != "IPv4" {
            continue;
        }
        let (Some(namespace), Some(service)) = (
            slice.metadata.namespace.as_deref(),
            slice
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(SERVICE_NAME_LABEL)),
        ) else {
            continue;
        };
        for port in slice.ports.iter().flatten() {
            let (Some(protocol), Some(number)) = (
                Protocol::parse(port.protocol.as_deref()),
                port.port.and_then(|p| u16::try_from(p).ok()),
            ) else {
                continue;
            };
            let id = PortId {
                namespace: namespace.to_string(),
                name: service.clone(),
                protocol,
                port_name: port.name.clone().unwrap_or_default(),
            };
            let merged = out.entry(id).or_default();
            for ep in slice.endpoints.iter().flatten() {
                let Some(ip) = ep.addresses.first().and_then(|a| a.parse().ok()) else {
                    continue;
                };
                let conditions = ep.conditions.as_ref();
                // Upstream: an unset `ready` means ready; an unset `serving` follows `ready`.
                let ready = conditions.and_then(|c| c.ready).unwrap_or(true);
                let endpoint = Endpoint {
                    ip,
                    port: number,
                    ready,
                    serving: conditions.and_then(|c| c.serving).unwrap_or(ready),
                    terminating: conditions.and_then(|c| c.terminating).unwrap_or(false),
                    node: ep.node_name.clone(),
                };
                merged
                    .entry((ip, number))
                    .and_modify(|e| {
                        if endpoint.ready && !e.ready {
                            *e = endpoint.clone();
                        }
                    })
                    .or_insert(endpoint);
            }
        }
    }
    out.into_iter()
        .map(|(id, eps)| (id, eps.into_values().collect()))
        .collect()
}

/// Which endpoints serve which traffic (upstream's `CategorizeEndpoints`, without topology hints).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Categorized {
    /// For traffic that may go anywhere in the cluster.
    pub cluster: Vec<Endpoint>,
    /// For traffic that must stay on this node.
    pub local: Vec<Endpoint>,
}

/// Ready endpoints; when there are none, the serving ones that are terminating (so connections
/// drain instead of failing while a rollout replaces the last ready pod).
fn usable<'a>(endpoints: impl Iterator<Item = &'a Endpoint> + Clone) -> Vec<Endpoint> {
    let ready: Vec<Endpoint> = endpoints.clone().filter(|e| e.ready).cloned().collect();
    if !ready.is_empty() {
        return ready;
    }
    endpoints
        .filter(|e| e.serving && e.terminating)
        .cloned()
        .collect()
}

/// Splits a port's endpoints by the traffic they serve on node `node`.
pub fn categorize(port: &ServicePort, endpoints: &[Endpoint], node: &str) -> Categorized {
    let uses_cluster =
        !port.internal_local || (port.externally_reachable() && !port.external_local);
    let uses_local = port.internal_local || (port.externally_reachable() && port.external_local);
    Categorized {
        cluster: if uses_cluster {
            usable(endpoints.iter())
        } else {
            Vec::new()
        },
        local: if uses_local {
            usable(endpoints.iter().filter(|e| e.node.as_deref() == Some(node)))
        } else {
            Vec::new()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        ClientIPConfig, LoadBalancerIngress, LoadBalancerStatus, ServicePort as ApiPort,
        ServiceSpec, ServiceStatus, SessionAffinityConfig,
    };
    use k8s_openapi::api::discovery::v1::{
        Endpoint as ApiEndpoint, EndpointConditions, EndpointPort,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn service(spec: ServiceSpec) -> Service {
        Service {
            metadata: ObjectMeta {
                namespace: Some("ns".into()),
                name: Some("web".into()),
                ..Default::default()
            },
            spec: Some(spec),
            status: None,
        }
    }

    fn port(name: &str, number: i32, node_port: Option<i32>) -> ApiPort {
        ApiPort {
            name: Some(name.into()),
            port: number,
            node_port,
            ..Default::default()
        }
    }

    #[test]
    fn headless_and_external_name_services_have_no_ports() {
        let headless = service(ServiceSpec {
            cluster_ip: Some("None".into()),
            ports: Some(vec![port("http", 80, None)]),
            ..Default::default()
        });
        assert!(service_ports(&headless).is_empty());
        let external = service(ServiceSpec {
            type_: Some("ExternalName".into()),
            external_name: Some("example.com".into()),
            ports: Some(vec![port("http", 80, None)]),
            ..Default::default()
        });
        assert!(service_ports(&external).is_empty());
    }

    #[test]
    fn a_load_balancer_gets_node_ports_ingress_ips_and_affinity() {
        let mut svc = service(ServiceSpec {
            type_: Some("LoadBalancer".into()),
            cluster_ip: Some("10.96.0.20".into()),
            ports: Some(vec![
                port("http", 80, Some(30080)),
                ApiPort {
                    protocol: Some("UDP".into()),
                    ..port("dns", 53, Some(30053))
                },
            ]),
            session_affinity: Some("ClientIP".into()),
            session_affinity_config: Some(SessionAffinityConfig {
                client_ip: Some(ClientIPConfig {
                    timeout_seconds: Some(60),
                }),
            }),
            external_traffic_policy: Some("Local".into()),
            ..Default::default()
        });
        svc.status = Some(ServiceStatus {
            load_balancer: Some(LoadBalancerStatus {
                ingress: Some(vec![LoadBalancerIngress {
                    ip: Some("192.168.1.5".into()),
                    ..Default::default()
                }]),
            }),
            ..Default::default()
        });
        let ports = service_ports(&svc);
        assert_eq!(ports.len(), 2);
        assert_eq!(ports[0].id.to_string(), "ns/web/tcp/http");
        assert_eq!(ports[1].id.to_string(), "ns/web/udp/dns");
        assert_eq!(ports[0].node_port, Some(30080));
        assert_eq!(ports[0].external_ips, vec![Ipv4Addr::new(192, 168, 1, 5)]);
        assert_eq!(ports[0].affinity_seconds, Some(60));
        assert!(ports[0].external_local && !ports[0].internal_local);
    }

    #[test]
    fn a_cluster_ip_service_ignores_node_ports_it_should_not_have() {
        let svc = service(ServiceSpec {
            cluster_ip: Some("10.96.0.20".into()),
            ports: Some(vec![port("", 80, Some(30080))]),
            session_affinity: Some("ClientIP".into()),
            ..Default::default()
        });
        let ports = service_ports(&svc);
        assert_eq!(ports[0].node_port, None);
        assert_eq!(ports[0].affinity_seconds, Some(DEFAULT_AFFINITY_SECONDS));
        assert_eq!(ports[0].id.to_string(), "ns/web/tcp/");
    }

    fn slice(name: &str, endpoints: Vec<(&str, Option<bool>, Option<bool>)>) -> EndpointSlice {
        EndpointSlice {
            metadata: ObjectMeta {
                namespace: Some("ns".into()),
                name: Some(name.into()),
                labels: Some([(SERVICE_NAME_LABEL.to_string(), "web".to_string())].into()),
                ..Default::default()
            },
            address_type: "IPv4".into(),
            ports: Some(vec![EndpointPort {
                name: Some("http".into()),
                port: Some(8080),
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            endpoints: Some(
                endpoints
                    .into_iter()
                    .map(|(ip, ready, terminating)| ApiEndpoint {
                        addresses: vec![ip.into()],
                        conditions: Some(EndpointConditions {
                            ready,
                            serving: None,
                            terminating,
                        }),
                        node_name: Some("n1".into()),
                        ..Default::default()
                    })
                    .collect(),
            ),
        }
    }

    #[test]
    fn slices_merge_per_port_and_an_address_counts_once() {
        let a = slice(
            "web-a",
            vec![("10.42.0.5", Some(false), None), ("10.42.0.6", None, None)],
        );
        let b = slice("web-b", vec![("10.42.0.5", Some(true), None)]);
        let merged = endpoints_by_port([&a, &b]);
        let eps = &merged[&PortId {
            namespace: "ns".into(),
            name: "web".into(),
            protocol: Protocol::Tcp,
            port_name: "http".into(),
        }];
        assert_eq!(eps.len(), 2);
        assert!(eps.iter().all(|e| e.ready && e.serving && e.port == 8080));
    }

    fn ep(ip: [u8; 4], ready: bool, terminating: bool, node: &str) -> Endpoint {
        Endpoint {
            ip: Ipv4Addr::from(ip),
            port: 80,
            ready,
            serving: ready || terminating,
            terminating,
            node: Some(node.into()),
        }
    }

    fn plain_port() -> ServicePort {
        ServicePort {
            id: PortId {
                namespace: "ns".into(),
                name: "web".into(),
                protocol: Protocol::Tcp,
                port_name: "http".into(),
            },
            cluster_ip: Ipv4Addr::new(10, 96, 0, 20),
            port: 80,
            node_port: None,
            external_ips: Vec::new(),
            affinity_seconds: None,
            external_local: false,
            internal_local: false,
        }
    }

    #[test]
    fn terminating_endpoints_serve_only_when_none_is_ready() {
        let port = plain_port();
        let eps = vec![
            ep([10, 0, 0, 1], false, true, "n1"),
            ep([10, 0, 0, 2], true, false, "n2"),
        ];
        let c = categorize(&port, &eps, "n1");
        assert_eq!(c.cluster, vec![eps[1].clone()]);
        assert!(c.local.is_empty());
        let c = categorize(&port, &eps[..1], "n1");
        assert_eq!(c.cluster, vec![eps[0].clone()]);
        let not_serving = vec![ep([10, 0, 0, 3], false, false, "n1")];
        assert!(categorize(&port, &not_serving, "n1").cluster.is_empty());
    }

    #[test]
    fn local_policies_pick_this_nodes_endpoints() {
        let eps = vec![
            ep([10, 0, 0, 1], true, false, "n1"),
            ep([10, 0, 0, 2], true, false, "n2"),
        ];
        let internal = ServicePort {
            internal_local: true,
            ..plain_port()
        };
        let c = categorize(&internal, &eps, "n2");
        assert!(c.cluster.is_empty());
        assert_eq!(c.local, vec![eps[1].clone()]);
        let external = ServicePort {
            external_local: true,
            node_port: Some(30080),
            ..plain_port()
        };
        let c = categorize(&external, &eps, "n1");
        assert_eq!(c.cluster.len(), 2);
        assert_eq!(c.local, vec![eps[0].clone()]);
        // externalTrafficPolicy means nothing without a way in from outside.
        let c = categorize(
            &ServicePort {
                external_local: true,
                ..plain_port()
            },
            &eps,
            "n1",
        );
        assert!(c.local.is_empty());
    }
}
