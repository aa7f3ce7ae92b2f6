//! Resource amounts as the scheduler counts them: a pod's effective requests (containers, init
//! containers, overhead) and a node's allocatable, in integer units (milli-CPU, bytes, pods).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// Upstream's `DefaultMilliCPURequest`: what a container without a CPU request counts as when
/// scoring (never when filtering).
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// Upstream's `DefaultMemoryRequest` (200 MiB), likewise for scoring only.
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

/// An amount of every resource the scheduler tracks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resource {
    pub milli_cpu: i64,
    pub memory: i64,
    pub ephemeral_storage: i64,
    pub pods: i64,
    /// Extended resources (`example.com/gpu`, `hugepages-2Mi`, …) in their integer units.
    pub scalar: BTreeMap<String, i64>,
}

impl Resource {
    /// Reads a resource list (requests, limits, capacity, allocatable).
    pub fn from_list(list: &BTreeMap<String, Quantity>) -> Resource {
        let mut r = Resource::default();
        for (name, q) in list {
            r.set(name, q);
        }
        r
    }

    fn set(&mut self, name: &str, q: &Quantity) {
        let value = oxkube_api::validation::parse_quantity(&q.0).unwrap_or(0.0);
        match name {
            "cpu" => self.milli_cpu = (value * 1000.0).ceil() as i64,
            "memory" => self.memory = value.ceil() as i64,
            "ephemeral-storage" => self.ephemeral_storage = value.ceil() as i64,
            "pods" => self.pods = value as i64,
            other if is_scalar(other) => {
                self.scalar.insert(other.to_string(), value.ceil() as i64);
            }
            _ => {}
        }
    }

    /// Adds `other` to this amount.
    pub fn add(&mut self, other: &Resource) {
        self.milli_cpu += other.milli_cpu;
        self.memory += other.memory;
        self.ephemeral_storage += other.ephemeral_storage;
        self.pods += other.pods;
        for (k, v) in &other.scalar {
            *self.scalar.entry(k.clone()).or_insert(0) += v;
        }
    }

    /// Subtracts `other` from this amount.
    pub fn sub(&mut self, other: &Resource) {
        self.milli_cpu -= other.milli_cpu;
        self.memory -= other.memory;
        self.ephemeral_storage -= other.ephemeral_storage;
        self.pods -= other.pods;
        for (k, v) in &other.scalar {
            *self.scalar.entry(k.clone()).or_insert(0) -= v;
        }
    }

    /// Each resource set to the larger of the two.
    pub fn max_with(&mut self, other: &Resource) {
        self.milli_cpu = self.milli_cpu.max(other.milli_cpu);
        self.memory = self.memory.max(other.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(other.ephemeral_storage);
        for (k, v) in &other.scalar {
            let e = self.scalar.entry(k.clone()).or_insert(0);
            *e = (*e).max(*v);
        }
    }

    /// The amount of one named resource.
    pub fn get(&self, name: &str) -> i64 {
        match name {
            "cpu" => self.milli_cpu,
            "memory" => self.memory,
            "ephemeral-storage" => self.ephemeral_storage,
            "pods" => self.pods,
            other => self.scalar.get(other).copied().unwrap_or(0),
        }
    }
}

/// Extended resources and huge pages: anything with a domain prefix, or `hugepages-*`.
fn is_scalar(name: &str) -> bool {
    name.starts_with("hugepages-") || (name.contains('/') && !name.starts_with("kubernetes.io/"))
}

fn container_requests(c: &Container) -> Resource {
    let mut r = Resource::default();
    if let Some(res) = &c.resources {
        // A limit without a request defaults the request (apiserver defaulting does this too;
        // kept here so pods from any source count the same).
        if let Some(limits) = &res.limits {
            r = Resource::from_list(limits);
        }
        if let Some(req) = &res.requests {
            for (name, q) in req {
                r.set(name, q);
            }
        }
    }
    r
}

/// Upstream `resource.PodRequests`: the sum over containers, raised to the largest init container
/// (restartable sidecar init containers add up as they keep running), plus the pod overhead.
/// `non_zero` applies the scoring defaults (100m CPU, 200 MiB) to containers that request none.
pub fn pod_requests(spec: &PodSpec, non_zero: bool) -> Resource {
    let fix = |mut r: Resource| {
        if non_zero {
            if r.milli_cpu == 0 {
                r.milli_cpu = DEFAULT_MILLI_CPU_REQUEST;
            }
            if r.memory == 0 {
                r.memory = DEFAULT_MEMORY_REQUEST;
            }
        }
        r
    };
    let mut total = Resource::default();
    for c in &spec.containers {
        total.add(&fix(container_requests(c)));
    }
    let mut sidecars = Resource::default();
    let mut init_max = Resource::default();
    for c in spec.init_containers.iter().flatten() {
        let r = fix(container_requests(c));
        if c.restart_policy.as_deref() == Some("Always") {
            sidecars.add(&r);
            init_max.max_with(&sidecars);
        } else {
            let mut with_sidecars = r;
            with_sidecars.add(&sidecars);
            init_max.max_with(&with_sidecars);
        }
    }
    total.add(&sidecars);
    total.max_with(&init_max);
    if let Some(overhead) = &spec.overhead {
        total.add(&Resource::from_list(overhead));
    }
    total.pods = 1;
    total
}

/// The pod's requests; a pod without a spec requests one pod slot only.
pub fn requests_of(pod: &Pod, non_zero: bool) -> Resource {
    match &pod.spec {
        Some(spec) => pod_requests(spec, non_zero),
        None => Resource {
            pods: 1,
            ..Resource::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ResourceRequirements;

    fn q(s: &str) -> Quantity {
        Quantity(s.to_string())
    }

    fn container(cpu: &str, mem: &str) -> Container {
        let mut req = BTreeMap::new();
        if !cpu.is_empty() {
            req.insert("cpu".to_string(), q(cpu));
        }
        if !mem.is_empty() {
            req.insert("memory".to_string(), q(mem));
        }
        Container {
            name: "c".into(),
            resources: Some(ResourceRequirements {
                requests: Some(req),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn requests_sum_containers_and_take_the_largest_init_container_plus_overhead() {
        let cases: Vec<(&str, PodSpec, bool, i64, i64)> = vec![
            (
                "two containers",
                PodSpec {
                    containers: vec![container("100m", "1Mi"), container("250m", "1Mi")],
                    ..Default::default()
                },
                false,
                350,
                2 << 20,
            ),
            (
                "init container larger than the sum",
                PodSpec {
                    containers: vec![container("100m", "1Mi")],
                    init_containers: Some(vec![container("2", "")]),
                    ..Default::default()
                },
                false,
                2000,
                1 << 20,
            ),
            (
                "sidecar adds to the containers",
                PodSpec {
                    containers: vec![container("100m", "")],
                    init_containers: Some(vec![Container {
                        restart_policy: Some("Always".into()),
                        ..container("200m", "")
                    }]),
                    ..Default::default()
                },
                false,
                300,
                0,
            ),
            (
                "overhead is added",
                PodSpec {
                    containers: vec![container("100m", "")],
                    overhead: Some(BTreeMap::from([("cpu".to_string(), q("50m"))])),
                    ..Default::default()
                },
                false,
                150,
                0,
            ),
            (
                "non-zero defaults for scoring",
                PodSpec {
                    containers: vec![container("", "")],
                    ..Default::default()
                },
                true,
                100,
                200 << 20,
            ),
        ];
        for (name, spec, non_zero, cpu, mem) in cases {
            let r = pod_requests(&spec, non_zero);
            assert_eq!((r.milli_cpu, r.memory, r.pods), (cpu, mem, 1), "{name}");
        }
    }

    #[test]
    fn allocatable_reads_every_kind_of_resource() {
        let r = Resource::from_list(&BTreeMap::from([
            ("cpu".to_string(), q("4")),
            ("memory".to_string(), q("8Gi")),
            ("pods".to_string(), q("110")),
            ("example.com/gpu".to_string(), q("2")),
        ]));
        assert_eq!(r.milli_cpu, 4000);
        assert_eq!(r.memory, 8 << 30);
        assert_eq!(r.pods, 110);
        assert_eq!(r.get("example.com/gpu"), 2);
    }
}
