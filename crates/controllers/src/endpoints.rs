//! The Endpoints controller's pure core: a selector Service's Endpoints object from the pods it
//! selects (ready and not-ready addresses, named target ports resolved per pod,
//! publishNotReadyAddresses, headless services, hostnames), repacked by port set as upstream
//! (`pkg/controller/endpoint`). The pod-to-address helpers are shared with EndpointSlices.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Pod, Service,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::workload;

/// The label marking headless services' endpoints.
pub const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";
/// The label naming the Endpoints' manager.
pub const MANAGED_BY_LABEL: &str = "endpoints.kubernetes.io/managed-by";

/// A service port as an endpoint exposes it for one pod.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ResolvedPort {
    /// The service port's name.
    pub name: Option<String>,
    /// The pod's port number.
    pub port: i32,
    /// TCP, UDP or SCTP.
    pub protocol: String,
    /// The service port's appProtocol.
    pub app_protocol: Option<String>,
}

/// The pods a service selects (its selector as equality on labels; none without a selector).
pub fn selected<'a>(service: &Service, pods: &'a [Pod]) -> Vec<&'a Pod> {
    let Some(selector) = service
        .spec
        .as_ref()
        .and_then(|s| s.selector.as_ref())
        .filter(|s| !s.is_empty())
    else {
        return Vec::new();
    };
    pods.iter()
        .filter(|p| p.metadata.namespace == service.metadata.namespace)
        .filter(|p| {
            let labels = p.metadata.labels.clone().unwrap_or_default();
            selector.iter().all(|(k, v)| labels.get(k) == Some(v))
        })
        .collect()
}

/// Whether a service manages endpoints (has a non-empty selector).
pub fn has_selector(service: &Service) -> bool {
    service
        .spec
        .as_ref()
        .and_then(|s| s.selector.as_ref())
        .is_some_and(|s| !s.is_empty())
}

/// Upstream `ShouldPodBeInEndpoints`: an address, not terminal, not being deleted (unless
/// terminating pods are included).
pub fn should_include(pod: &Pod, include_terminating: bool) -> bool {
    let has_ip = pod
        .status
        .as_ref()
        .and_then(|s| s.pod_ip.as_deref())
        .is_some_and(|ip| !ip.is_empty());
    has_ip && !workload::is_terminal(pod) && (include_terminating || !workload::is_deleting(pod))
}

/// The service's ports resolved against the pod's containers (a named port the pod lacks is
/// left out).
pub fn resolve_ports(service: &Service, pod: &Pod) -> Vec<ResolvedPort> {
    let ports = service
        .spec
        .as_ref()
        .and_then(|s| s.ports.clone())
        .unwrap_or_default();
    let containers = pod
        .spec
        .as_ref()
        .map(|s| s.containers.clone())
        .unwrap_or_default();
    ports
        .into_iter()
        .filter_map(|sp| {
            let protocol = sp.protocol.clone().unwrap_or_else(|| "TCP".to_string());
            let port = match &sp.target_port {
                None => sp.port,
                Some(IntOrString::Int(p)) => *p,
                Some(IntOrString::String(name)) => containers
                    .iter()
                    .flat_map(|c| c.ports.iter().flatten())
                    .find(|cp| {
                        cp.name.as_deref() == Some(name.as_str())
                            && cp.protocol.as_deref().unwrap_or("TCP") == protocol
                    })
                    .map(|cp| cp.container_port)?,
            };
            Some(ResolvedPort {
                name: sp.name.clone(),
                port,
                protocol,
                app_protocol: sp.app_protocol.clone(),
            })
        })
        .collect()
}

/// The pod as an endpoint's target.
pub fn target_ref(pod: &Pod) -> ObjectReference {
    ObjectReference {
        kind: Some("Pod".to_string()),
        namespace: pod.metadata.namespace.clone(),
        name: pod.metadata.name.clone(),
        uid: pod.metadata.uid.clone(),
        ..Default::default()
    }
}

/// The pod's DNS hostname for the service (set when its subdomain is the service).
pub fn hostname(service: &Service, pod: &Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    let host = spec.hostname.clone().filter(|h| !h.is_empty())?;
    (spec.subdomain.as_deref() == service.metadata.name.as_deref()).then_some(host)
}

/// Whether the service is headless (`clusterIP: None`).
pub fn is_headless(service: &Service) -> bool {
    service.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None")
}

/// The labels upstream puts on a service's Endpoints.
fn labels(service: &Service) -> BTreeMap<String, String> {
    let mut labels = service.metadata.labels.clone().unwrap_or_default();
    if is_headless(service) {
        labels.insert(HEADLESS_LABEL.to_string(), String::new());
    } else {
        labels.remove(HEADLESS_LABEL);
    }
    labels.insert(
        MANAGED_BY_LABEL.to_string(),
        "endpoint-controller".to_string(),
    );
    labels
}

/// The subsets for the service's pods, repacked so ports with the same addresses share one.
pub fn subsets(service: &Service, pods: &[Pod]) -> Vec<EndpointSubset> {
    let publish = service
        .spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false);
    type Addrs = (BTreeSet<(String, String)>, BTreeSet<(String, String)>);
    let mut by_port: BTreeMap<Option<ResolvedPort>, Addrs> = BTreeMap::new();
    let mut addresses: BTreeMap<(String, String), EndpointAddress> = BTreeMap::new();
    let has_ports = service
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .is_some_and(|p| !p.is_empty());
    for pod in selected(service, pods) {
        if !should_include(pod, publish) {
            continue;
        }
        let ip = pod
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.clone())
            .unwrap_or_default();
        let key = (ip.clone(), pod.metadata.uid.clone().unwrap_or_default());
        addresses.insert(
            key.clone(),
            EndpointAddress {
                ip,
                hostname: hostname(service, pod),
                node_name: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
                target_ref: Some(target_ref(pod)),
            },
        );
        let ready = publish || workload::is_ready(pod);
        let ports: Vec<Option<ResolvedPort>> = if has_ports {
            resolve_ports(service, pod).into_iter().map(Some).collect()
        } else if is_headless(service) {
            vec![None]
        } else {
            Vec::new()
        };
        for port in ports {
            let entry = by_port.entry(port).or_default();
            if ready {
                entry.0.insert(key.clone());
            } else {
                entry.1.insert(key.clone());
            }
        }
    }
    // Ports sharing the same address sets share a subset.
    let mut groups: BTreeMap<Addrs, Vec<ResolvedPort>> = BTreeMap::new();
    for (port, addrs) in by_port {
        let ports = groups.entry(addrs).or_default();
        ports.extend(port);
    }
    let to_list = |keys: &BTreeSet<(String, String)>| {
        let list: Vec<EndpointAddress> = keys
            .iter()
            .filter_map(|k| addresses.get(k).cloned())
            .collect();
        (!list.is_empty()).then_some(list)
    };
    groups
        .into_iter()
        .map(|((ready, not_ready), ports)| EndpointSubset {
            addresses: to_list(&ready),
            not_ready_addresses: to_list(&not_ready),
            ports: (!ports.is_empty()).then(|| {
                ports
                    .into_iter()
                    .map(|p| EndpointPort {
                        name: p.name,
                        port: p.port,
                        protocol: Some(p.protocol),
                        app_protocol: p.app_protocol,
                    })
                    .collect()
            }),
        })
        .collect()
}

/// The Endpoints object to write for `service`, or `None` when `existing` already says it (or
/// the service has no selector).
pub fn reconcile(
    service: &Service,
    pods: &[Pod],
    existing: Option<&Endpoints>,
) -> Option<Endpoints> {
    if !has_selector(service) || service.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let subsets = subsets(service, pods);
    let subsets = (!subsets.is_empty()).then_some(subsets);
    let labels = labels(service);
    if let Some(e) = existing
        && e.subsets == subsets
        && e.metadata.labels.as_ref() == Some(&labels)
    {
        return None;
    }
    let mut meta = existing
        .map(|e| e.metadata.clone())
        .unwrap_or_else(|| ObjectMeta {
            name: service.metadata.name.clone(),
            namespace: service.metadata.namespace.clone(),
            ..Default::default()
        });
    meta.labels = Some(labels);
    Some(Endpoints {
        metadata: meta,
        subsets,
    })
}

/// The Endpoints controller over Service, pod and Endpoints informers.
#[derive(Debug)]
pub struct EndpointsController {
    ctx: crate::manager::Context,
    services: crate::informer::Informer<Service>,
    pods: crate::informer::Informer<Pod>,
    endpoints: crate::informer::Informer<Endpoints>,
    queue: crate::queue::WorkQueue<crate::informer::ObjectKey>,
}

impl EndpointsController {
    /// Registers on the shared Service, pod and Endpoints informers.
    pub fn new(ctx: &crate::manager::Context) -> Self {
        let queue = crate::queue::WorkQueue::new();
        let services = ctx.informers.typed::<Service>();
        let pods = ctx.informers.typed::<Pod>();
        let q = queue.clone();
        services
            .on_change(move |c| q.add(crate::informer::ObjectKey::of(crate::shell::changed(c))));
        let q = queue.clone();
        let svcs = services.clone();
        pods.on_change(move |c| {
            let mut pods = vec![crate::shell::changed(c)];
            if let crate::informer::Change::Updated(old, _) = c {
                pods.push(old);
            }
            for pod in pods {
                let ns = pod.metadata.namespace.clone().unwrap_or_default();
                for svc in svcs.by_namespace(&ns) {
                    if !selected(&svc, std::slice::from_ref(pod)).is_empty() {
                        q.add(crate::informer::ObjectKey::of(&*svc));
                    }
                }
            }
        });
        let endpoints = ctx.informers.typed::<Endpoints>();
        let q = queue.clone();
        endpoints
            .on_change(move |c| q.add(crate::informer::ObjectKey::of(crate::shell::changed(c))));
        EndpointsController {
            ctx: ctx.clone(),
            services,
            pods,
            endpoints,
            queue,
        }
    }
}

impl crate::manager::Controller for EndpointsController {
    type Key = crate::informer::ObjectKey;
    type Error = crate::shell::ShellError;

    fn name(&self) -> &'static str {
        "endpoints"
    }

    fn queue(&self) -> &crate::queue::WorkQueue<Self::Key> {
        &self.queue
    }

    async fn sync(&self, key: &Self::Key) -> Result<(), Self::Error> {
        let api: kube::Api<Endpoints> =
            kube::Api::namespaced(self.ctx.client.clone(), &key.namespace);
        let existing = self.endpoints.get(&key.namespace, &key.name);
        let Some(svc) = self.services.get(&key.namespace, &key.name) else {
            // The service is gone: so are its endpoints (ones it managed).
            let managed = existing
                .as_ref()
                .and_then(|e| e.metadata.labels.as_ref())
                .is_some_and(|l| l.contains_key(MANAGED_BY_LABEL));
            if managed {
                crate::shell::delete(&api, "Endpoints", &key.name, None).await?;
            }
            return Ok(());
        };
        let pods: Vec<Pod> = self
            .pods
            .by_namespace(&key.namespace)
            .into_iter()
            .map(|p| (*p).clone())
            .collect();
        let Some(desired) = reconcile(&svc, &pods, existing.as_deref()) else {
            return Ok(());
        };
        if existing.is_some() {
            let patch = serde_json::json!({
                "metadata": {"labels": desired.metadata.labels},
                "subsets": desired.subsets,
            });
            crate::shell::patch(&api, "Endpoints", &key.name, patch).await
        } else {
            // A conflict means the cache lags our own create: look again once it caught up.
            if crate::shell::create(&api, "Endpoints", &desired)
                .await?
                .is_none()
            {
                self.queue.add_rate_limited(key.clone());
            }
            Ok(())
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;
    use crate::workload::testing::pod;
    use k8s_openapi::api::core::v1::{Container, ContainerPort, ServicePort, ServiceSpec};

    pub(crate) fn service(ports: Vec<ServicePort>) -> Service {
        Service {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("default".into()),
                uid: Some("svc-uid".into()),
                labels: Some([("app".to_string(), "web".to_string())].into()),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                selector: Some([("app".to_string(), "web".to_string())].into()),
                ports: Some(ports),
                ..Default::default()
            }),
            status: None,
        }
    }

    pub(crate) fn port(name: &str, target: IntOrString) -> ServicePort {
        ServicePort {
            name: Some(name.into()),
            port: 80,
            target_port: Some(target),
            ..Default::default()
        }
    }

    pub(crate) fn backend(name: &str, ready: bool, http_port: Option<i32>) -> Pod {
        let mut p = pod(name, "Running", ready);
        p.metadata.labels = Some([("app".to_string(), "web".to_string())].into());
        p.spec.as_mut().unwrap().node_name = Some("n1".into());
        p.spec.as_mut().unwrap().containers = vec![Container {
            name: "c".into(),
            ports: http_port.map(|cp| {
                vec![ContainerPort {
                    name: Some("http".into()),
                    container_port: cp,
                    ..Default::default()
                }]
            }),
            ..Default::default()
        }];
        p
    }

    #[test]
    fn ready_and_not_ready_addresses_with_named_ports_resolved() {
        let svc = service(vec![port("http", IntOrString::String("http".into()))]);
        let pods = [
            backend("a", true, Some(8080)),
            backend("bb", false, Some(8080)),
            backend("ccc", true, None),
        ];
        let e = reconcile(&svc, &pods, None).unwrap();
        let subsets = e.subsets.unwrap();
        assert_eq!(subsets.len(), 1, "ccc lacks the named port");
        let s = &subsets[0];
        assert_eq!(s.addresses.as_ref().unwrap().len(), 1);
        assert_eq!(s.not_ready_addresses.as_ref().unwrap().len(), 1);
        assert_eq!(s.ports.as_ref().unwrap()[0].port, 8080);
        let addr = &s.addresses.as_ref().unwrap()[0];
        assert_eq!(addr.node_name.as_deref(), Some("n1"));
        assert_eq!(addr.target_ref.as_ref().unwrap().name.as_deref(), Some("a"));
        assert_eq!(
            e.metadata.labels.unwrap()[MANAGED_BY_LABEL],
            "endpoint-controller"
        );
    }

    #[test]
    fn publish_not_ready_and_unchanged_endpoints() {
        let mut svc = service(vec![port("p", IntOrString::Int(9000))]);
        svc.spec.as_mut().unwrap().publish_not_ready_addresses = Some(true);
        let pods = [backend("a", false, None)];
        let e = reconcile(&svc, &pods, None).unwrap();
        assert_eq!(
            e.subsets.as_ref().unwrap()[0]
                .addresses
                .as_ref()
                .unwrap()
                .len(),
            1
        );
        assert!(
            reconcile(&svc, &pods, Some(&e)).is_none(),
            "nothing to write"
        );
        // Terminal and deleted pods drop out.
        let mut gone = backend("a", true, None);
        gone.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                crate::workload::testing::ts("2026-01-01T00:00:00Z"),
            ));
        svc.spec.as_mut().unwrap().publish_not_ready_addresses = None;
        let e = reconcile(&svc, &[gone], None).unwrap();
        assert!(e.subsets.is_none());
    }

    #[test]
    fn services_without_selector_are_not_managed() {
        let mut svc = service(vec![]);
        svc.spec.as_mut().unwrap().selector = None;
        assert!(reconcile(&svc, &[backend("a", true, None)], None).is_none());
    }
}
