//! `oxkube bench scheduler`: upstream scheduler_perf's workloads run in-process against the real
//! queue, cache, plugins and preemption, with a fake binder (a placement is confirmed at once and
//! a preemption victim is deleted at once). Prints pods/s per workload.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cache::Cache;
use crate::framework::Profile;
use crate::preemption;
use crate::queue::Queue;
use crate::schedule::{Outcome, schedule};
use crate::testing::{PodBuilder, node, pod};

/// Sizes of the workloads.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub nodes: usize,
    pub pods: usize,
    pub preemption_nodes: usize,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            nodes: 5000,
            pods: 10000,
            preemption_nodes: 500,
        }
    }
}

/// One workload's result.
#[derive(Debug, Clone)]
pub struct Row {
    pub name: &'static str,
    pub nodes: usize,
    pub init_pods: usize,
    pub measured: usize,
    pub scheduled: usize,
    pub elapsed: Duration,
    /// Upstream's CI threshold for the workload (pods/s).
    pub upstream: f64,
}

impl Row {
    fn rate(&self) -> f64 {
        self.scheduled as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Every workload's row.
#[derive(Debug, Clone)]
pub struct Report(pub Vec<Row>);

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "scheduler, in-process with a fake binder ({} threads)",
            rayon::current_num_threads()
        )?;
        writeln!(
            f,
            "{:<18} {:>6} {:>9} {:>9} {:>10} {:>10} {:>9} {:>7}",
            "workload",
            "nodes",
            "init pods",
            "measured",
            "scheduled",
            "seconds",
            "pods/s",
            "vs ups."
        )?;
        for r in &self.0 {
            writeln!(
                f,
                "{:<18} {:>6} {:>9} {:>9} {:>10} {:>10.2} {:>9.0} {:>6.0}x",
                r.name,
                r.nodes,
                r.init_pods,
                r.measured,
                r.scheduled,
                r.elapsed.as_secs_f64(),
                r.rate(),
                r.rate() / r.upstream
            )?;
        }
        Ok(())
    }
}

const ZONE: &str = "topology.kubernetes.io/zone";

fn cluster(nodes: usize, cpu: &str) -> Cache {
    let mut cache = Cache::new();
    for i in 0..nodes {
        let n = node(&format!("node-{i}"))
            .cpu(cpu)
            .memory("64Gi")
            .label(ZONE, &format!("zone-{}", i % 10))
            .label("bench/group", if i % 2 == 0 { "even" } else { "odd" })
            .build();
        cache.upsert_node(Arc::new(n));
    }
    cache
}

/// Places pods directly (the workload's initial pods, not measured).
fn place(cache: &mut Cache, pods: Vec<PodBuilder>) {
    let count = cache.node_count();
    let names: Vec<String> = cache.nodes().iter().map(|n| n.name.clone()).collect();
    for (i, p) in pods.into_iter().enumerate() {
        let n = &names[i % count.max(1)];
        cache.upsert_pod(Arc::new(p.node(n).build_info()));
    }
}

/// Schedules every pod through the queue; returns how many were placed and the time it took.
fn drive(profile: &Profile, cache: &mut Cache, pods: Vec<PodBuilder>) -> (usize, Duration) {
    let mut queue = Queue::new();
    let begin = Instant::now();
    for p in pods {
        queue.upsert(Arc::new(p.build_info()), begin);
    }
    let mut start = 0;
    let mut tie = 0u64;
    let mut placed = 0;
    while let Some(info) = queue.pop(Instant::now()) {
        tie = tie.wrapping_mul(6364136223846793005).wrapping_add(1);
        match schedule(profile, cache, &info, &mut start, tie >> 33) {
            Outcome::Placed(p) => {
                let mut bound = (*info).clone();
                bound.node_name = p.node.clone();
                cache.assume(Arc::new(bound), &p.node);
                queue.remove(&info.key);
                placed += 1;
            }
            Outcome::Unschedulable(d, state) => {
                match preemption::preempt(profile, &state, &info, cache, &d) {
                    Ok(pre) => {
                        for v in &pre.victims {
                            cache.remove_pod(&v.key);
                        }
                        let mut nominated = (*info).clone();
                        nominated.nominated_node = pre.node;
                        queue.remove(&info.key);
                        queue.upsert(Arc::new(nominated), Instant::now());
                    }
                    Err(_) => queue.remove(&info.key),
                }
            }
        }
    }
    (placed, begin.elapsed())
}

fn basic(i: usize) -> PodBuilder {
    pod(&format!("p-{i}")).cpu("10m").memory("16Mi")
}

/// Runs the five workloads.
pub fn run(opts: &BenchOptions) -> Report {
    let profile = Profile::default_profile();
    let mut rows = Vec::new();
    let (n, m) = (opts.nodes, opts.pods);

    let mut cache = cluster(n, "32");
    let (done, t) = drive(&profile, &mut cache, (0..m).map(basic).collect());
    rows.push(Row {
        name: "SchedulingBasic",
        nodes: n,
        init_pods: 0,
        measured: m,
        scheduled: done,
        elapsed: t,
        upstream: 270.0,
    });

    let mut cache = cluster(n, "32");
    let pods = (0..m)
        .map(|i| basic(i).require_node("bench/group", &["even"]))
        .collect();
    let (done, t) = drive(&profile, &mut cache, pods);
    rows.push(Row {
        name: "NodeAffinity",
        nodes: n,
        init_pods: 0,
        measured: m,
        scheduled: done,
        elapsed: t,
        upstream: 220.0,
    });

    let mut cache = cluster(n, "32");
    let init = n;
    place(
        &mut cache,
        (0..init)
            .map(|i| basic(i + m).label("app", "spread"))
            .collect(),
    );
    let measured = (m / 5).max(1);
    let pods = (0..measured)
        .map(|i| {
            basic(i)
                .label("app", "spread")
                .spread(5, ZONE, true, "app", "spread")
        })
        .collect();
    let (done, t) = drive(&profile, &mut cache, pods);
    rows.push(Row {
        name: "TopologySpreading",
        nodes: n,
        init_pods: init,
        measured,
        scheduled: done,
        elapsed: t,
        upstream: 85.0,
    });

    let mut cache = cluster(n, "32");
    let init = (n / 5).max(1);
    place(
        &mut cache,
        (0..init)
            .map(|i| basic(i + m).label("color", "green"))
            .collect(),
    );
    let measured = (n / 5).max(1);
    let pods = (0..measured)
        .map(|i| {
            basic(i).label("color", "green").anti_affinity(
                "color",
                "green",
                "kubernetes.io/hostname",
            )
        })
        .collect();
    let (done, t) = drive(&profile, &mut cache, pods);
    rows.push(Row {
        name: "PodAntiAffinity",
        nodes: n,
        init_pods: init,
        measured,
        scheduled: done,
        elapsed: t,
        upstream: 60.0,
    });

    let pn = opts.preemption_nodes;
    let mut cache = cluster(pn, "4");
    let init = pn * 4;
    place(
        &mut cache,
        (0..init)
            .map(|i| pod(&format!("low-{i}")).cpu("900m").priority(1))
            .collect(),
    );
    let measured = pn;
    let pods = (0..measured)
        .map(|i| pod(&format!("high-{i}")).cpu("3").priority(100))
        .collect();
    let (done, t) = drive(&profile, &mut cache, pods);
    rows.push(Row {
        name: "PreemptionBasic",
        nodes: pn,
        init_pods: init,
        measured,
        scheduled: done,
        elapsed: t,
        upstream: 18.0,
    });

    Report(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_workload_schedules_every_measured_pod_on_a_small_cluster() {
        let report = run(&BenchOptions {
            nodes: 200,
            pods: 400,
            preemption_nodes: 20,
        });
        assert_eq!(report.0.len(), 5);
        for r in &report.0 {
            assert_eq!(r.scheduled, r.measured, "{}", r.name);
        }
        assert!(report.to_string().contains("PreemptionBasic"));
    }
}
