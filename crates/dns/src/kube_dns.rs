//! The cluster DNS's own objects: the `kube-system/kube-dns` Service as upstream's add-on shapes
//! it (no selector, a fixed cluster IP) and the EndpointSlice and Endpoints that point it at this
//! server's listen address (pure), applied with server-side apply until the API takes them.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort as CoreEndpointPort, EndpointSubset, Endpoints, Service,
    ServicePort, ServiceSpec,
};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};

use crate::records::SERVICE_NAME_LABEL;

pub const NAMESPACE: &str = "kube-system";
pub const NAME: &str = "kube-dns";
/// The field manager and the EndpointSlice `managed-by` value: the EndpointSlice controller
/// leaves slices managed by anyone else alone.
pub const MANAGER: &str = "oxkube-dns";
const MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
/// Upstream's mirroring controller skips Endpoints with this label.
const SKIP_MIRROR: &str = "endpointslice.kubernetes.io/skip-mirror";
/// How long a failed apply waits before the next try.
const RETRY: Duration = Duration::from_secs(1);

/// Applying an object failed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("applying {kind} {NAMESPACE}/{NAME}")]
    Apply {
        kind: &'static str,
        #[source]
        source: kube::Error,
    },
}

fn labels() -> BTreeMap<String, String> {
    [
        ("k8s-app", "kube-dns"),
        ("kubernetes.io/cluster-service", "true"),
        ("kubernetes.io/name", "CoreDNS"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn meta(labels: BTreeMap<String, String>) -> ObjectMeta {
    ObjectMeta {
        name: Some(NAME.into()),
        namespace: Some(NAMESPACE.into()),
        labels: Some(labels),
        ..Default::default()
    }
}

const PORTS: [(&str, &str); 2] = [("dns", "UDP"), ("dns-tcp", "TCP")];

/// The Service: upstream's `kube-dns` with `cluster_ip`, ports 53 UDP and TCP, no selector.
pub fn service(cluster_ip: IpAddr) -> Service {
    Service {
        metadata: meta(labels()),
        spec: Some(ServiceSpec {
            cluster_ip: Some(cluster_ip.to_string()),
            cluster_ips: Some(vec![cluster_ip.to_string()]),
            type_: Some("ClusterIP".into()),
            ports: Some(
                PORTS
                    .iter()
                    .map(|(name, protocol)| ServicePort {
                        name: Some(name.to_string()),
                        protocol: Some(protocol.to_string()),
                        port: 53,
                        target_port: Some(IntOrString::Int(53)),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The EndpointSlice: the server's listen address, ready, managed by us.
pub fn endpoint_slice(listen: SocketAddr, node_name: Option<&str>) -> EndpointSlice {
    let mut labels = labels();
    labels.insert(SERVICE_NAME_LABEL.into(), NAME.into());
    labels.insert(MANAGED_BY.into(), MANAGER.into());
    EndpointSlice {
        metadata: meta(labels),
        address_type: match listen.ip() {
            IpAddr::V4(_) => "IPv4".into(),
            IpAddr::V6(_) => "IPv6".into(),
        },
        endpoints: Some(vec![Endpoint {
            addresses: vec![listen.ip().to_string()],
            conditions: Some(EndpointConditions {
                ready: Some(true),
                serving: Some(true),
                terminating: Some(false),
            }),
            node_name: node_name.map(str::to_string),
            ..Default::default()
        }]),
        ports: Some(
            PORTS
                .iter()
                .map(|(name, protocol)| EndpointPort {
                    name: Some(name.to_string()),
                    protocol: Some(protocol.to_string()),
                    port: Some(i32::from(listen.port())),
                    ..Default::default()
                })
                .collect(),
        ),
    }
}

/// The Endpoints: the same address and ports (for clients still reading core/v1 Endpoints).
pub fn endpoints(listen: SocketAddr, node_name: Option<&str>) -> Endpoints {
    let mut labels = labels();
    labels.insert(SKIP_MIRROR.into(), "true".into());
    Endpoints {
        metadata: meta(labels),
        subsets: Some(vec![EndpointSubset {
            addresses: Some(vec![EndpointAddress {
                ip: listen.ip().to_string(),
                node_name: node_name.map(str::to_string),
                ..Default::default()
            }]),
            ports: Some(
                PORTS
                    .iter()
                    .map(|(name, protocol)| CoreEndpointPort {
                        name: Some(name.to_string()),
                        protocol: Some(protocol.to_string()),
                        port: i32::from(listen.port()),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }]),
    }
}

async fn apply<K>(client: &Client, kind: &'static str, object: &K) -> Result<(), ApplyError>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(client.clone(), NAMESPACE);
    let mut value = serde_json::to_value(object).map_err(|e| ApplyError::Apply {
        kind,
        source: kube::Error::SerdeError(e),
    })?;
    // Server-side apply wants apiVersion and kind in the body.
    if let Some(map) = value.as_object_mut() {
        map.insert(
            "apiVersion".into(),
            K::api_version(&Default::default()).into(),
        );
        map.insert("kind".into(), K::kind(&Default::default()).into());
    }
    api.patch(
        NAME,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(value),
    )
    .await
    .map(|_| ())
    .map_err(|source| ApplyError::Apply { kind, source })
}

/// Applies the three objects once.
pub async fn ensure_once(
    client: &Client,
    cluster_ip: IpAddr,
    listen: SocketAddr,
    node_name: Option<&str>,
) -> Result<(), ApplyError> {
    apply(client, "Service", &service(cluster_ip)).await?;
    apply(client, "EndpointSlice", &endpoint_slice(listen, node_name)).await?;
    apply(client, "Endpoints", &endpoints(listen, node_name)).await
}

/// Applies the objects, retrying every second until it works (the API may still be starting).
pub async fn ensure(
    client: Client,
    cluster_ip: IpAddr,
    listen: SocketAddr,
    node_name: Option<String>,
) {
    let mut logged = false;
    loop {
        match ensure_once(&client, cluster_ip, listen, node_name.as_deref()).await {
            Ok(()) => {
                tracing::info!(service = %cluster_ip, endpoint = %listen, "kube-dns Service in place");
                return;
            }
            Err(e) => {
                if !logged {
                    tracing::warn!(error = %e, cause = ?std::error::Error::source(&e), "kube-dns Service not in place yet; retrying");
                    logged = true;
                }
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_service_is_upstreams_kube_dns_without_a_selector() {
        let s = service("10.96.0.10".parse().expect("ip"));
        assert_eq!(s.metadata.name.as_deref(), Some("kube-dns"));
        assert_eq!(s.metadata.namespace.as_deref(), Some("kube-system"));
        let labels = s.metadata.labels.as_ref().expect("labels");
        assert_eq!(labels["k8s-app"], "kube-dns");
        let spec = s.spec.expect("spec");
        assert_eq!(spec.cluster_ip.as_deref(), Some("10.96.0.10"));
        assert!(spec.selector.is_none());
        let ports: Vec<(String, String, i32)> = spec
            .ports
            .expect("ports")
            .into_iter()
            .map(|p| (p.name.expect("name"), p.protocol.expect("proto"), p.port))
            .collect();
        assert_eq!(
            ports,
            vec![
                ("dns".into(), "UDP".into(), 53),
                ("dns-tcp".into(), "TCP".into(), 53)
            ]
        );
    }

    #[test]
    fn the_endpoints_point_at_the_listen_address_and_are_ours() {
        let listen: SocketAddr = "192.168.1.5:5353".parse().expect("addr");
        let slice = endpoint_slice(listen, Some("node-a"));
        let labels = slice.metadata.labels.as_ref().expect("labels");
        assert_eq!(labels[SERVICE_NAME_LABEL], "kube-dns");
        assert_eq!(labels[MANAGED_BY], MANAGER);
        assert_eq!(slice.address_type, "IPv4");
        let endpoint = &slice.endpoints.as_ref().expect("endpoints")[0];
        assert_eq!(endpoint.addresses, vec!["192.168.1.5"]);
        assert_eq!(endpoint.node_name.as_deref(), Some("node-a"));
        assert!(slice.ports.iter().flatten().all(|p| p.port == Some(5353)));
        let ep = endpoints(listen, None);
        let subset = &ep.subsets.expect("subsets")[0];
        assert_eq!(
            subset.addresses.as_ref().expect("addresses")[0].ip,
            "192.168.1.5"
        );
        assert_eq!(subset.ports.as_ref().expect("ports").len(), 2);
        assert_eq!(ep.metadata.labels.expect("labels")[SKIP_MIRROR], "true");
    }
}
