//! The EndpointSlice controller's pure core: a selector Service's slices from the pods it
//! selects (ready/serving/terminating conditions, ports resolved per pod, at most 100 endpoints a
//! slice, a placeholder slice when there are none), reusing existing slices where it can
//! (`pkg/controller/endpointslice`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::endpoints::{self, ResolvedPort};
use crate::workload;

/// The most endpoints one slice holds (upstream's default `--max-endpoints-per-slice`).
pub const MAX_PER_SLICE: usize = 100;
/// The label naming a slice's service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// The label naming a slice's manager.
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
/// This controller's name in [`MANAGED_BY_LABEL`].
pub const CONTROLLER_NAME: &str = "endpointslice-controller.k8s.io";

/// What one reconcile asks of the shell.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SliceSync {
    /// Slices to create (with `generateName`).
    pub create: Vec<EndpointSlice>,
    /// Existing slices with new content.
    pub update: Vec<EndpointSlice>,
    /// Slices to delete.
    pub delete: Vec<String>,
}

type Key = (String, Vec<ResolvedPort>);

fn to_port(p: &ResolvedPort) -> EndpointPort {
    EndpointPort {
        name: Some(p.name.clone().unwrap_or_default()),
        port: Some(p.port),
        protocol: Some(p.protocol.clone()),
        app_protocol: p.app_protocol.clone(),
    }
}

fn key_of(slice: &EndpointSlice) -> Key {
    let mut ports: Vec<ResolvedPort> = slice
        .ports
        .iter()
        .flatten()
        .map(|p| ResolvedPort {
            name: p.name.clone().filter(|n| !n.is_empty()),
            port: p.port.unwrap_or(0),
            protocol: p.protocol.clone().unwrap_or_else(|| "TCP".to_string()),
            app_protocol: p.app_protocol.clone(),
        })
        .collect();
    ports.sort();
    (slice.address_type.clone(), ports)
}

/// The labels upstream puts on a service's slices.
pub fn labels(service: &Service) -> BTreeMap<String, String> {
    let mut labels = service.metadata.labels.clone().unwrap_or_default();
    if endpoints::is_headless(service) {
        labels.insert(endpoints::HEADLESS_LABEL.to_string(), String::new());
    } else {
        labels.remove(endpoints::HEADLESS_LABEL);
    }
    labels.insert(
        SERVICE_NAME_LABEL.to_string(),
        service.metadata.name.clone().unwrap_or_default(),
    );
    labels.insert(MANAGED_BY_LABEL.to_string(), CONTROLLER_NAME.to_string());
    labels
}

/// The pod as an endpoint of `service` (upstream `podToEndpoint`).
pub fn endpoint(service: &Service, pod: &Pod) -> Endpoint {
    let publish = service
        .spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false);
    let serving = publish || workload::is_ready(pod);
    let terminating = workload::is_deleting(pod);
    Endpoint {
        addresses: vec![
            pod.status
                .as_ref()
                .and_then(|s| s.pod_ip.clone())
                .unwrap_or_default(),
        ],
        conditions: Some(EndpointConditions {
            ready: Some(serving && (publish || !terminating)),
            serving: Some(serving),
            terminating: Some(terminating),
        }),
        hostname: endpoints::hostname(service, pod),
        node_name: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
        target_ref: Some(endpoints::target_ref(pod)),
        ..Default::default()
    }
}

/// The slices for `service` given its `existing` slices.
pub fn reconcile(service: &Service, pods: &[Pod], existing: &[EndpointSlice]) -> SliceSync {
    let mut sync = SliceSync::default();
    if !endpoints::has_selector(service) || service.metadata.deletion_timestamp.is_some() {
        return sync;
    }
    let mut desired: BTreeMap<Key, Vec<Endpoint>> = BTreeMap::new();
    for pod in endpoints::selected(service, pods) {
        if !endpoints::should_include(pod, true) {
            continue;
        }
        let ep = endpoint(service, pod);
        let family = if ep.addresses.iter().any(|a| a.contains(':')) {
            "IPv6"
        } else {
            "IPv4"
        };
        let mut ports = endpoints::resolve_ports(service, pod);
        ports.sort();
        desired
            .entry((family.to_string(), ports))
            .or_default()
            .push(ep);
    }
    if desired.is_empty() {
        desired.insert(("IPv4".to_string(), Vec::new()), Vec::new());
    }
    let labels = labels(service);
    let mut by_key: BTreeMap<Key, Vec<&EndpointSlice>> = BTreeMap::new();
    for s in existing {
        by_key.entry(key_of(s)).or_default().push(s);
    }
    for slices in by_key.values_mut() {
        slices.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    }
    for (key, mut eps) in desired {
        eps.sort_by(|a, b| a.addresses.cmp(&b.addresses));
        let chunks: Vec<Vec<Endpoint>> = if eps.is_empty() {
            vec![Vec::new()]
        } else {
            eps.chunks(MAX_PER_SLICE)
                .map(<[Endpoint]>::to_vec)
                .collect()
        };
        let mut olds = by_key.remove(&key).unwrap_or_default().into_iter();
        let ports: Vec<EndpointPort> = key.1.iter().map(to_port).collect();
        for chunk in chunks {
            let endpoints = Some(chunk);
            let ports = (!ports.is_empty()).then(|| ports.clone());
            match olds.next() {
                Some(old) => {
                    let same = old.endpoints.clone().unwrap_or_default()
                        == endpoints.clone().unwrap_or_default()
                        && old.metadata.labels.as_ref() == Some(&labels);
                    if !same {
                        let mut s = old.clone();
                        s.endpoints = endpoints;
                        s.ports = ports;
                        s.metadata.labels = Some(labels.clone());
                        sync.update.push(s);
                    }
                }
                None => sync.create.push(EndpointSlice {
                    metadata: ObjectMeta {
                        generate_name: Some(format!(
                            "{}-",
                            service.metadata.name.clone().unwrap_or_default()
                        )),
                        namespace: service.metadata.namespace.clone(),
                        labels: Some(labels.clone()),
                        owner_references: Some(vec![workload::controller_ref(
                            "v1",
                            "Service",
                            &service.metadata,
                        )]),
                        ..Default::default()
                    },
                    address_type: key.0.clone(),
                    endpoints,
                    ports,
                }),
            }
        }
        sync.delete
            .extend(olds.filter_map(|s| s.metadata.name.clone()));
    }
    for slices in by_key.values() {
        sync.delete
            .extend(slices.iter().filter_map(|s| s.metadata.name.clone()));
    }
    sync
}

/// The EndpointSlice controller over Service, pod and EndpointSlice informers.
#[derive(Debug)]
pub struct EndpointSliceController {
    ctx: crate::manager::Context,
    services: crate::informer::Informer<Service>,
    pods: crate::informer::Informer<Pod>,
    slices: crate::informer::Informer<EndpointSlice>,
    queue: crate::queue::WorkQueue<crate::informer::ObjectKey>,
    expectations: crate::expectations::Expectations<crate::informer::ObjectKey>,
}

impl EndpointSliceController {
    /// Registers on the shared Service, pod and EndpointSlice informers.
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
                    if !endpoints::selected(&svc, std::slice::from_ref(pod)).is_empty() {
                        q.add(crate::informer::ObjectKey::of(&*svc));
                    }
                }
            }
        });
        let slices = ctx.informers.typed::<EndpointSlice>();
        let expectations = crate::expectations::Expectations::new(ctx.clock.clone());
        let q = queue.clone();
        let exp = expectations.clone();
        slices.on_change(move |c| {
            let s = crate::shell::changed(c);
            let labels = s.metadata.labels.clone().unwrap_or_default();
            if labels.get(MANAGED_BY_LABEL).map(String::as_str) == Some(CONTROLLER_NAME)
                && let Some(svc) = labels.get(SERVICE_NAME_LABEL)
            {
                let key = crate::informer::ObjectKey::new(
                    s.metadata.namespace.clone().unwrap_or_default(),
                    svc.clone(),
                );
                if matches!(c, crate::informer::Change::Added(_)) {
                    exp.creation_observed(&key);
                }
                q.add(key);
            }
        });
        EndpointSliceController {
            ctx: ctx.clone(),
            services,
            pods,
            slices,
            queue,
            expectations,
        }
    }
}

impl crate::manager::Controller for EndpointSliceController {
    type Key = crate::informer::ObjectKey;
    type Error = crate::shell::ShellError;

    fn name(&self) -> &'static str {
        "endpointslice"
    }

    fn queue(&self) -> &crate::queue::WorkQueue<Self::Key> {
        &self.queue
    }

    async fn sync(&self, key: &Self::Key) -> Result<(), Self::Error> {
        let Some(svc) = self.services.get(&key.namespace, &key.name) else {
            self.expectations.delete(key);
            return Ok(());
        };
        if !self.expectations.satisfied(key) {
            // Our own creates are not in the cache yet; their arrival requeues the service.
            return Ok(());
        }
        let uid = svc.metadata.uid.clone().unwrap_or_default();
        let existing: Vec<EndpointSlice> = self
            .slices
            .by_owner(&uid)
            .into_iter()
            .filter(|s| workload::is_controlled_by(&s.metadata, &uid))
            .map(|s| (*s).clone())
            .collect();
        let pods: Vec<Pod> = self
            .pods
            .by_namespace(&key.namespace)
            .into_iter()
            .map(|p| (*p).clone())
            .collect();
        let sync = reconcile(&svc, &pods, &existing);
        let api: kube::Api<EndpointSlice> =
            kube::Api::namespaced(self.ctx.client.clone(), &key.namespace);
        if !sync.create.is_empty() {
            self.expectations
                .expect(key, i64::try_from(sync.create.len()).unwrap_or(0), 0);
        }
        for slice in &sync.create {
            if let Err(e) = crate::shell::create(&api, "EndpointSlice", slice).await {
                self.expectations.creation_observed(key);
                return Err(e);
            }
        }
        for slice in &sync.update {
            let name = slice.metadata.name.clone().unwrap_or_default();
            let patch = serde_json::json!({
                "metadata": {"labels": slice.metadata.labels},
                "endpoints": slice.endpoints,
                "ports": slice.ports,
            });
            crate::shell::patch(&api, "EndpointSlice", &name, patch).await?;
        }
        for name in &sync.delete {
            crate::shell::delete(&api, "EndpointSlice", name, None).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::endpoints::tests::{backend, port, service};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    #[test]
    fn conditions_follow_readiness_and_termination() {
        let svc = service(vec![port("http", IntOrString::Int(8080))]);
        let mut terminating = backend("bb", true, None);
        terminating.metadata.deletion_timestamp =
            Some(Time(crate::workload::testing::ts("2026-01-01T00:00:00Z")));
        let sync = reconcile(
            &svc,
            &[
                backend("a", true, None),
                terminating,
                backend("ccc", false, None),
            ],
            &[],
        );
        assert_eq!(sync.create.len(), 1);
        let slice = &sync.create[0];
        assert_eq!(slice.metadata.generate_name.as_deref(), Some("web-"));
        assert_eq!(
            slice.metadata.labels.as_ref().unwrap()[SERVICE_NAME_LABEL],
            "web"
        );
        assert_eq!(slice.address_type, "IPv4");
        let conds: Vec<_> = slice
            .endpoints
            .as_ref()
            .unwrap()
            .iter()
            .map(|e| {
                let c = e.conditions.as_ref().unwrap();
                (
                    e.target_ref.as_ref().unwrap().name.clone().unwrap(),
                    c.ready,
                    c.serving,
                    c.terminating,
                )
            })
            .collect();
        assert!(conds.contains(&("a".into(), Some(true), Some(true), Some(false))));
        assert!(conds.contains(&("bb".into(), Some(false), Some(true), Some(true))));
        assert!(conds.contains(&("ccc".into(), Some(false), Some(false), Some(false))));
        assert_eq!(slice.ports.as_ref().unwrap()[0].port, Some(8080));
    }

    #[test]
    fn slices_hold_at_most_100_and_are_reused() {
        let svc = service(vec![port("http", IntOrString::Int(8080))]);
        let pods: Vec<Pod> = (0..150)
            .map(|i| {
                let mut p = backend(&format!("p{i}"), true, None);
                p.status.as_mut().unwrap().pod_ip = Some(format!("10.1.{}.{}", i / 100, i % 100));
                p
            })
            .collect();
        let sync = reconcile(&svc, &pods, &[]);
        let sizes: Vec<_> = sync
            .create
            .iter()
            .map(|s| s.endpoints.as_ref().unwrap().len())
            .collect();
        assert_eq!(sizes, [100, 50]);
        let existing: Vec<EndpointSlice> = sync
            .create
            .into_iter()
            .enumerate()
            .map(|(i, mut s)| {
                s.metadata.name = Some(format!("web-{i}"));
                s
            })
            .collect();
        assert_eq!(reconcile(&svc, &pods, &existing), SliceSync::default());
        let sync = reconcile(&svc, &pods[..10], &existing);
        assert_eq!(sync.update.len(), 1);
        assert_eq!(sync.delete, vec!["web-1".to_string()]);
    }

    #[test]
    fn an_empty_service_keeps_a_placeholder_slice() {
        let svc = service(vec![port("http", IntOrString::Int(8080))]);
        let sync = reconcile(&svc, &[], &[]);
        assert_eq!(sync.create.len(), 1);
        assert!(sync.create[0].endpoints.as_ref().unwrap().is_empty());
        assert!(sync.create[0].ports.is_none());
    }
}
