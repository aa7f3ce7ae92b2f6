//! The objects a cluster has from its first start: the four system namespaces and the `kubernetes`
//! Service in `default` with its Endpoints and EndpointSlice pointing at the API server.

use std::net::IpAddr;

use serde_json::json;

use oxkube_api::registry;

use crate::rest::Rest;
use crate::status::ApiError;

pub const NAMESPACES: [&str; 4] = ["default", "kube-system", "kube-public", "kube-node-lease"];

/// Creates what is missing; leaves what exists alone.
pub async fn ensure(rest: &Rest, host_ip: IpAddr, port: u16) -> Result<(), ApiError> {
    let find = |g: &str, v: &str, p: &str| {
        registry::find(g, v, p).ok_or_else(|| ApiError::Internal(format!("{p} not served")))
    };
    let namespaces = find("", "v1", "namespaces")?;
    for ns in NAMESPACES {
        rest.ensure(namespaces, json!({"metadata": {"name": ns}}))
            .await?;
    }
    let ip = rest.service_cidr.first().to_string();
    rest.ensure(
        find("", "v1", "services")?,
        json!({
            "metadata": {"name": "kubernetes", "namespace": "default",
                "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"type": "ClusterIP", "clusterIP": ip, "sessionAffinity": "None",
                "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}]},
        }),
    )
    .await?;
    let host = host_ip.to_string();
    rest.ensure(
        find("", "v1", "endpoints")?,
        json!({
            "metadata": {"name": "kubernetes", "namespace": "default",
                "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
            "subsets": [{"addresses": [{"ip": host}],
                "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}],
        }),
    )
    .await?;
    rest.ensure(
        find("discovery.k8s.io", "v1", "endpointslices")?,
        json!({
            "metadata": {"name": "kubernetes", "namespace": "default",
                "labels": {"kubernetes.io/service-name": "kubernetes",
                    "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}},
            "addressType": if host_ip.is_ipv4() { "IPv4" } else { "IPv6" },
            "endpoints": [{"addresses": [host], "conditions": {"ready": true}}],
            "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
        }),
    )
    .await
}
