//! The ResourceQuota controller (upstream `pkg/controller/resourcequota` with the core
//! evaluators): a quota's `status.used` for each resource in `spec.hard`, from the namespace's
//! pods, services, claims and object counts (`configmaps`, `count/<resource>.<group>` …), kept
//! current from the shared informers.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, Pod, ResourceQuota, ResourceQuotaStatus, ResourceRequirements, Service,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::workload;

/// What a namespace holds, as the quota evaluators see it.
#[derive(Debug, Clone, Default)]
pub struct Usage {
    /// The namespace's pods.
    pub pods: Vec<Pod>,
    /// The namespace's services.
    pub services: Vec<Service>,
    /// The namespace's claims.
    pub claims: Vec<PersistentVolumeClaim>,
    /// Object counts by quota resource name (`configmaps`, `secrets`, `count/deployments.apps`…).
    pub counts: BTreeMap<String, i64>,
}

/// A quantity in thousandths, remembering whether it was written with a binary suffix.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Milli {
    value: i128,
    binary: bool,
}

fn parse(q: &Quantity) -> Milli {
    let s = q.0.trim();
    let binary = ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]
        .iter()
        .any(|b| s.ends_with(b));
    let v = oxkube_api::validation::parse_quantity(s).unwrap_or(0.0);
    #[allow(clippy::cast_possible_truncation)]
    let value = (v * 1000.0).round() as i128;
    Milli { value, binary }
}

/// Formats thousandths canonically (binary suffixes when the inputs used them).
fn format(m: Milli) -> Quantity {
    let v = m.value;
    if v % 1000 != 0 {
        return Quantity(format!("{v}m"));
    }
    let mut n = v / 1000;
    if n == 0 {
        return Quantity("0".to_string());
    }
    let (base, suffixes): (i128, &[&str]) = if m.binary {
        (1024, &["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"])
    } else {
        (1000, &["", "k", "M", "G", "T", "P", "E"])
    };
    let mut i = 0;
    while i + 1 < suffixes.len() && n % base == 0 {
        n /= base;
        i += 1;
    }
    Quantity(format!("{n}{}", suffixes[i]))
}

fn add(a: Milli, b: Milli) -> Milli {
    Milli {
        value: a.value + b.value,
        binary: a.binary || b.binary,
    }
}

fn get(req: Option<&ResourceRequirements>, limits: bool, name: &str) -> Milli {
    let Some(r) = req else {
        return Milli::default();
    };
    let map = if limits {
        r.limits.as_ref()
    } else {
        r.requests.as_ref()
    };
    map.and_then(|m| m.get(name)).map(parse).unwrap_or_default()
}

/// A pod's effective request or limit of `name` (containers summed, init containers' max,
/// plus overhead).
fn pod_amount(pod: &Pod, limits: bool, name: &str) -> Milli {
    let Some(spec) = pod.spec.as_ref() else {
        return Milli::default();
    };
    let sum = spec
        .containers
        .iter()
        .map(|c| get(c.resources.as_ref(), limits, name))
        .fold(Milli::default(), add);
    let init = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| get(c.resources.as_ref(), limits, name))
        .fold(
            Milli::default(),
            |a, b| if b.value > a.value { b } else { a },
        );
    let mut total = if init.value > sum.value { init } else { sum };
    if let Some(o) = spec.overhead.as_ref().and_then(|o| o.get(name)) {
        total = add(total, parse(o));
    }
    total
}

/// The usage of quota resource `resource`.
fn used(resource: &str, usage: &Usage) -> Milli {
    let count = |n: usize| Milli {
        value: i128::try_from(n).unwrap_or(0) * 1000,
        binary: false,
    };
    let live: Vec<&Pod> = usage
        .pods
        .iter()
        .filter(|p| !workload::is_terminal(p))
        .collect();
    let pods_sum = |limits: bool, name: &str| {
        live.iter()
            .map(|p| pod_amount(p, limits, name))
            .fold(Milli::default(), add)
    };
    let service_type = |t: &str| {
        usage
            .services
            .iter()
            .filter(|s| s.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some(t))
            .count()
    };
    match resource {
        "pods" | "count/pods" => count(live.len()),
        "cpu" | "requests.cpu" => pods_sum(false, "cpu"),
        "memory" | "requests.memory" => pods_sum(false, "memory"),
        "ephemeral-storage" | "requests.ephemeral-storage" => pods_sum(false, "ephemeral-storage"),
        "limits.cpu" => pods_sum(true, "cpu"),
        "limits.memory" => pods_sum(true, "memory"),
        "limits.ephemeral-storage" => pods_sum(true, "ephemeral-storage"),
        "services" | "count/services" => count(usage.services.len()),
        "services.loadbalancers" => count(service_type("LoadBalancer")),
        "services.nodeports" => {
            let n: usize = usage
                .services
                .iter()
                .filter(|s| {
                    matches!(
                        s.spec.as_ref().and_then(|s| s.type_.as_deref()),
                        Some("NodePort" | "LoadBalancer")
                    )
                })
                .map(|s| {
                    s.spec
                        .as_ref()
                        .and_then(|s| s.ports.as_ref())
                        .map_or(0, Vec::len)
                })
                .sum();
            count(n)
        }
        "persistentvolumeclaims" | "count/persistentvolumeclaims" => count(usage.claims.len()),
        "requests.storage" => usage
            .claims
            .iter()
            .map(|c| {
                get(
                    c.spec
                        .as_ref()
                        .and_then(|s| s.resources.as_ref())
                        .map(|r| ResourceRequirements {
                            requests: r.requests.clone(),
                            ..Default::default()
                        })
                        .as_ref(),
                    false,
                    "storage",
                )
            })
            .fold(Milli::default(), add),
        other => {
            let key = other.strip_prefix("count/").map_or(other, |k| k);
            let n = usage
                .counts
                .get(other)
                .or_else(|| usage.counts.get(key))
                .copied()
                .unwrap_or(0);
            Milli {
                value: i128::from(n) * 1000,
                binary: false,
            }
        }
    }
}

/// The resource a quota's object-count name counts, as `(group, plural)`: `count/<plural>` (core),
/// `count/<plural>.<group>`, or one of upstream's legacy names (`configmaps`, `secrets`,
/// `replicationcontrollers`, `resourcequotas`). `None` for names the evaluators compute
/// (pods, services, claims, compute resources) and for anything else.
pub fn counted_resource(name: &str) -> Option<(String, String)> {
    if let Some(rest) = name.strip_prefix("count/") {
        let (plural, group) = rest.split_once('.').unwrap_or((rest, ""));
        if plural.is_empty()
            || matches!(
                (plural, group),
                ("pods" | "services" | "persistentvolumeclaims", "")
            )
        {
            return None;
        }
        return Some((group.to_string(), plural.to_string()));
    }
    matches!(
        name,
        "configmaps" | "secrets" | "replicationcontrollers" | "resourcequotas"
    )
    .then(|| (String::new(), name.to_string()))
}

/// The status to write for `quota`, or `None` when it already says it.
pub fn reconcile(quota: &ResourceQuota, usage: &Usage) -> Option<ResourceQuotaStatus> {
    let hard = quota
        .spec
        .as_ref()
        .and_then(|s| s.hard.clone())
        .unwrap_or_default();
    let used: BTreeMap<String, Quantity> = hard
        .keys()
        .map(|k| (k.clone(), format(used(k, usage))))
        .collect();
    let status = ResourceQuotaStatus {
        hard: Some(hard),
        used: Some(used),
    };
    (quota.status.as_ref() != Some(&status)).then_some(status)
}

/// How often every quota is recomputed even without a change (upstream's
/// `--resource-quota-sync-period`).
const RESYNC: std::time::Duration = std::time::Duration::from_secs(300);

/// The controller over the ResourceQuota, Pod, Service and PersistentVolumeClaim informers and a
/// metadata view of every other countable resource.
pub struct ResourceQuotaController {
    ctx: crate::manager::Context,
    quotas: crate::informer::Informer<ResourceQuota>,
    pods: crate::informer::Informer<Pod>,
    services: crate::informer::Informer<Service>,
    claims: crate::informer::Informer<PersistentVolumeClaim>,
    /// Metadata views by `(group, plural)`, for object counts.
    counted: HashMap<(String, String), Arc<dyn crate::informer::MetaInformer>>,
    queue: crate::queue::WorkQueue<crate::informer::ObjectKey>,
}

impl std::fmt::Debug for ResourceQuotaController {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResourceQuotaController")
            .field("counted", &self.counted.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Queues every quota of `namespace`.
fn enqueue_namespace(
    quotas: &crate::informer::Informer<ResourceQuota>,
    queue: &crate::queue::WorkQueue<crate::informer::ObjectKey>,
    namespace: &str,
) {
    for q in quotas.by_namespace(namespace) {
        queue.add(crate::informer::ObjectKey::of(q.as_ref()));
    }
}

impl ResourceQuotaController {
    /// Registers on the shared informers: a quota change queues it; a change of anything a quota
    /// can count queues the quotas of its namespace.
    pub fn new(ctx: &crate::manager::Context, catalogue: &crate::resources::Catalogue) -> Self {
        use crate::informer::{Change, ObjectKey};
        let queue = crate::queue::WorkQueue::new();
        let quotas = ctx.informers.typed::<ResourceQuota>();
        let q = queue.clone();
        quotas.on_change(move |c| {
            if !matches!(c, Change::Deleted(_)) {
                q.add(ObjectKey::of(crate::shell::changed(c)));
            }
        });
        fn watch<K: crate::informer::Object>(
            informer: &crate::informer::Informer<K>,
            quotas: &crate::informer::Informer<ResourceQuota>,
            queue: &crate::queue::WorkQueue<ObjectKey>,
        ) {
            let (quotas, queue) = (quotas.clone(), queue.clone());
            informer.on_change(move |c| {
                let ns = crate::shell::changed(c).meta().namespace.clone();
                enqueue_namespace(&quotas, &queue, ns.as_deref().unwrap_or_default());
            });
        }
        let pods = ctx.informers.typed::<Pod>();
        let services = ctx.informers.typed::<Service>();
        let claims = ctx.informers.typed::<PersistentVolumeClaim>();
        watch(&pods, &quotas, &queue);
        watch(&services, &quotas, &queue);
        watch(&claims, &quotas, &queue);
        let mut counted = HashMap::new();
        for served in catalogue.all() {
            let r = &served.resource;
            let evaluated = r.group.is_empty()
                && matches!(
                    r.plural.as_str(),
                    "pods" | "services" | "persistentvolumeclaims"
                );
            if !served.namespaced
                || evaluated
                || r.kind == "Event"
                || !(served.can("list") && served.can("watch"))
            {
                continue;
            }
            let meta = ctx.informers.meta(r);
            let (quotas, queue) = (quotas.clone(), queue.clone());
            meta.on_meta_change(Arc::new(move |old, new| {
                if let Some(ns) = new.or(old).and_then(|m| m.namespace.as_deref()) {
                    enqueue_namespace(&quotas, &queue, ns);
                }
            }));
            counted.insert((r.group.clone(), r.plural.clone()), meta);
        }
        ResourceQuotaController {
            ctx: ctx.clone(),
            quotas,
            pods,
            services,
            claims,
            counted,
            queue,
        }
    }

    /// What the quota's namespace holds, for the resources it names.
    fn usage(&self, quota: &ResourceQuota, namespace: &str) -> Usage {
        let owned = |v: Vec<Arc<Pod>>| v.iter().map(|p| (**p).clone()).collect();
        let counts = quota
            .spec
            .as_ref()
            .and_then(|s| s.hard.as_ref())
            .into_iter()
            .flat_map(|h| h.keys())
            .filter_map(|name| {
                let view = self.counted.get(&counted_resource(name)?)?;
                let n = i64::try_from(view.in_namespace(namespace).len()).unwrap_or(i64::MAX);
                Some((name.clone(), n))
            })
            .collect();
        Usage {
            pods: owned(self.pods.by_namespace(namespace)),
            services: self
                .services
                .by_namespace(namespace)
                .iter()
                .map(|s| (**s).clone())
                .collect(),
            claims: self
                .claims
                .by_namespace(namespace)
                .iter()
                .map(|c| (**c).clone())
                .collect(),
            counts,
        }
    }
}

impl crate::manager::Controller for ResourceQuotaController {
    type Key = crate::informer::ObjectKey;
    type Error = crate::shell::ShellError;

    fn name(&self) -> &'static str {
        "resourcequota"
    }

    fn queue(&self) -> &crate::queue::WorkQueue<Self::Key> {
        &self.queue
    }

    async fn sync(&self, key: &Self::Key) -> Result<(), Self::Error> {
        let Some(quota) = self.quotas.get(&key.namespace, &key.name) else {
            return Ok(());
        };
        self.queue.add_after(key.clone(), RESYNC);
        let Some(status) = reconcile(&quota, &self.usage(&quota, &key.namespace)) else {
            return Ok(());
        };
        let api: kube::Api<ResourceQuota> =
            kube::Api::namespaced(self.ctx.client.clone(), &key.namespace);
        let status = serde_json::to_value(&status).unwrap_or_default();
        crate::shell::patch_status(&api, "ResourceQuota", &key.name, status).await?;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::workload::testing::pod;
    use k8s_openapi::api::core::v1::{Container, ResourceQuotaSpec, ServiceSpec};

    fn with_resources(name: &str, phase: &str, cpu: &str, mem: &str) -> Pod {
        let mut p = pod(name, phase, true);
        p.spec.as_mut().unwrap().containers = vec![Container {
            name: "c".into(),
            resources: Some(ResourceRequirements {
                requests: Some(
                    [
                        ("cpu".to_string(), Quantity(cpu.into())),
                        ("memory".to_string(), Quantity(mem.into())),
                    ]
                    .into(),
                ),
                limits: Some([("memory".to_string(), Quantity(mem.into()))].into()),
                ..Default::default()
            }),
            ..Default::default()
        }];
        p
    }

    #[test]
    fn usage_sums_live_pods_and_counts_objects() {
        let hard: BTreeMap<String, Quantity> = [
            "pods",
            "requests.cpu",
            "requests.memory",
            "limits.memory",
            "services",
            "services.nodeports",
            "configmaps",
            "count/deployments.apps",
        ]
        .iter()
        .map(|k| (k.to_string(), Quantity("100".into())))
        .collect();
        let quota = ResourceQuota {
            spec: Some(ResourceQuotaSpec {
                hard: Some(hard),
                ..Default::default()
            }),
            ..Default::default()
        };
        let usage = Usage {
            pods: vec![
                with_resources("a", "Running", "500m", "1Gi"),
                with_resources("b", "Pending", "1", "512Mi"),
                with_resources("c", "Succeeded", "4", "4Gi"),
            ],
            services: vec![Service {
                spec: Some(ServiceSpec {
                    type_: Some("NodePort".into()),
                    ports: Some(vec![Default::default(), Default::default()]),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            claims: vec![],
            counts: [
                ("configmaps".to_string(), 3),
                ("count/deployments.apps".to_string(), 2),
            ]
            .into(),
        };
        let status = reconcile(&quota, &usage).unwrap();
        let used = status.used.clone().unwrap();
        let get = |k: &str| used[k].0.clone();
        assert_eq!(get("pods"), "2");
        assert_eq!(get("requests.cpu"), "1500m");
        assert_eq!(get("requests.memory"), "1536Mi");
        assert_eq!(get("limits.memory"), "1536Mi");
        assert_eq!(get("services"), "1");
        assert_eq!(get("services.nodeports"), "2");
        assert_eq!(get("configmaps"), "3");
        assert_eq!(get("count/deployments.apps"), "2");
        let mut q = quota.clone();
        q.status = Some(status);
        assert!(reconcile(&q, &usage).is_none());
    }

    #[test]
    fn count_names_map_to_resources() {
        let r = |n: &str| counted_resource(n);
        let gp = |g: &str, p: &str| Some((g.to_string(), p.to_string()));
        assert_eq!(r("count/deployments.apps"), gp("apps", "deployments"));
        assert_eq!(r("count/configmaps"), gp("", "configmaps"));
        assert_eq!(r("secrets"), gp("", "secrets"));
        assert_eq!(r("count/widgets.example.com"), gp("example.com", "widgets"));
        // The evaluators count these themselves (pods only while not terminal).
        assert_eq!(r("count/pods"), None);
        assert_eq!(r("pods"), None);
        assert_eq!(r("requests.cpu"), None);
        assert_eq!(r("count/"), None);
    }

    #[test]
    fn quantities_format_canonically() {
        let m = |value: i128, binary: bool| format(Milli { value, binary }).0;
        assert_eq!(m(0, false), "0");
        assert_eq!(m(2000, false), "2");
        assert_eq!(m(2_000_000, false), "2k");
        assert_eq!(m(1_073_741_824_000, true), "1Gi");
        assert_eq!(m(1_500, true), "1500m");
    }
}
