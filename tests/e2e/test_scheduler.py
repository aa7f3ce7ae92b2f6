"""The scheduler end to end: the real `oxkube server` (scheduler in-process) with three hollow
nodes, driven by the real kubectl; results read as upstream users see them (spec.nodeName, the
PodScheduled condition, FailedScheduling / Scheduled / Preempted events, `oxkube why-pending`)."""

import json
import os
import subprocess
import time

import pytest

from conftest import OXKUBE, Server, eventually as wait_for

NODES = ["s-hollow-0", "s-hollow-1", "s-hollow-2"]
ZONES = {"s-hollow-0": "a", "s-hollow-1": "b", "s-hollow-2": "c"}


def start_agent(srv, name, count):
    with open(os.path.join(srv.dir, "node-token")) as f:
        token = f.read().strip()
    log = open(os.path.join(srv.dir, f"agent-{name}.log"), "w")
    return subprocess.Popen(
        [OXKUBE, "agent", "--server", f"https://127.0.0.1:{srv.port}", "--token", token,
         "--hollow", str(count), "--node-name", name, "--data-dir", os.path.join(srv.dir, name)],
        stdout=log, stderr=subprocess.STDOUT)


@pytest.fixture(scope="module")
def cluster():
    srv = Server()
    agent = start_agent(srv, "s", 3)
    try:
        def ready():
            r = srv.kubectl("get", "nodes", "-o", "name", check=False)
            return len(r.stdout.split()) == 3
        wait_for("three nodes", ready)
        for node, zone in ZONES.items():
            srv.kubectl("label", "node", node, f"topology.kubernetes.io/zone={zone}")
        yield srv
    finally:
        agent.terminate()
        agent.wait(timeout=30)
        srv.finish()


@pytest.fixture
def ns(cluster, request):
    name = "s-" + request.node.name.replace("_", "-")[5:45].lower().strip("-")
    cluster.kubectl("create", "namespace", name)
    yield name
    # Without the namespace controller, pods must go explicitly or they keep holding resources.
    cluster.kubectl("delete", "pods", "--all", "-n", name, "--grace-period=0", "--force",
                    check=False)
    wait_for("pods gone", lambda: cluster.kubectl(
        "get", "pods", "-n", name, "-o", "name").stdout.strip() == "")


def pod_yaml(name, cpu="100m", extra_spec="", labels=None):
    labels = labels or {"app": name}
    label_lines = "".join(f"\n    {k}: {v}" for k, v in labels.items())
    return f"""apiVersion: v1
kind: Pod
metadata:
  name: {name}
  labels:{label_lines}
spec:
  containers:
  - name: c
    image: busybox
    command: ["sleep", "3600"]
    resources:
      requests:
        cpu: {cpu}
{extra_spec}"""


def create(srv, ns, text):
    srv.kubectl("apply", "-n", ns, "-f", "-", input=text)


def get_pod(srv, ns, name):
    return json.loads(srv.kubectl("get", "pod", name, "-n", ns, "-o", "json").stdout)


def node_of(srv, ns, name, timeout=20):
    return wait_for(f"{name} bound", lambda: get_pod(srv, ns, name)["spec"].get("nodeName"),
                    timeout)


def failed_message(srv, ns, name, contains="", timeout=20):
    """The latest FailedScheduling event's message for the pod (via core/v1 events)."""
    def find():
        events = json.loads(srv.kubectl("get", "events", "-n", ns, "-o", "json").stdout)["items"]
        msgs = [e["message"] for e in events
                if e["involvedObject"]["name"] == name and e["reason"] == "FailedScheduling"
                and contains in e["message"]]
        return msgs[-1] if msgs else None
    return wait_for(f"FailedScheduling for {name}", find, timeout)


def events(srv, ns, reason):
    items = json.loads(srv.kubectl("get", "events", "-n", ns, "-o", "json").stdout)["items"]
    return [e for e in items if e["reason"] == reason]


def why_pending(srv, ns, name):
    r = subprocess.run([OXKUBE, "why-pending", name, "-n", ns, "--data-dir", srv.dir],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_resources_fit_and_insufficient_cpu(cluster, ns):
    create(cluster, ns, pod_yaml("small", cpu="1"))
    assert node_of(cluster, ns, "small") in NODES
    pod = get_pod(cluster, ns, "small")
    cond = {c["type"]: c for c in pod["status"]["conditions"]}
    assert cond["PodScheduled"]["status"] == "True"
    scheduled = wait_for("Scheduled event", lambda: events(cluster, ns, "Scheduled"))
    assert scheduled[0]["message"] == f"Successfully assigned {ns}/small to {pod['spec']['nodeName']}"
    assert "default-scheduler" in (scheduled[0].get("reportingComponent"),
                                   scheduled[0].get("source", {}).get("component")), scheduled[0]

    create(cluster, ns, pod_yaml("big", cpu="5"))
    msg = failed_message(cluster, ns, "big")
    assert msg == ("0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are "
                   "available: 3 No preemption victims found for incoming pod."), msg
    pod = get_pod(cluster, ns, "big")
    cond = {c["type"]: c for c in pod["status"]["conditions"]}
    assert cond["PodScheduled"]["status"] == "False"
    assert cond["PodScheduled"]["reason"] == "Unschedulable"
    assert "Insufficient cpu" in cond["PodScheduled"]["message"]
    out = why_pending(cluster, ns, "big")
    assert "0/3 nodes are available" in out, out
    for node in NODES:
        assert any(node in line and "NodeResourcesFit" in line and "Insufficient cpu" in line
                   for line in out.splitlines()), out


def test_node_selector(cluster, ns):
    cluster.kubectl("label", "node", "s-hollow-1", "disk=ssd")
    try:
        create(cluster, ns, pod_yaml("ssd", extra_spec="  nodeSelector:\n    disk: ssd\n"))
        assert node_of(cluster, ns, "ssd") == "s-hollow-1"
        create(cluster, ns, pod_yaml("nvme", extra_spec="  nodeSelector:\n    disk: nvme\n"))
        msg = failed_message(cluster, ns, "nvme")
        assert msg.startswith(
            "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector. "
            "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."), msg
    finally:
        cluster.kubectl("label", "node", "s-hollow-1", "disk-")


def test_node_affinity_required_and_preferred(cluster, ns):
    required = """  affinity:
    nodeAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        nodeSelectorTerms:
        - matchExpressions:
          - {key: topology.kubernetes.io/zone, operator: In, values: [b]}
"""
    preferred = """  affinity:
    nodeAffinity:
      preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        preference:
          matchExpressions:
          - {key: topology.kubernetes.io/zone, operator: In, values: [c]}
"""
    create(cluster, ns, pod_yaml("req", extra_spec=required))
    create(cluster, ns, pod_yaml("pref", extra_spec=preferred))
    assert node_of(cluster, ns, "req") == "s-hollow-1"
    assert node_of(cluster, ns, "pref") == "s-hollow-2"


def test_taints_and_tolerations(cluster, ns):
    for node in NODES:
        cluster.kubectl("taint", "node", node, "dedicated=gpu:NoSchedule")
    try:
        create(cluster, ns, pod_yaml("plain"))
        msg = failed_message(cluster, ns, "plain")
        assert msg.startswith(
            "0/3 nodes are available: 3 node(s) had untolerated taint {dedicated: gpu}."), msg
        out = why_pending(cluster, ns, "plain")
        assert out.count("TaintToleration") == 3, out
        assert "node(s) had untolerated taint {dedicated: gpu}" in out, out
        tolerating = """  tolerations:
  - {key: dedicated, operator: Equal, value: gpu, effect: NoSchedule}
"""
        create(cluster, ns, pod_yaml("tolerant", extra_spec=tolerating))
        assert node_of(cluster, ns, "tolerant") in NODES
    finally:
        for node in NODES:
            cluster.kubectl("taint", "node", node, "dedicated=gpu:NoSchedule-")
    # The untaint is a node update: the parked pod gets another try and lands.
    assert node_of(cluster, ns, "plain") in NODES


def test_pod_anti_affinity_spreads_replicas(cluster, ns):
    anti = """  affinity:
    podAntiAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
      - labelSelector:
          matchLabels: {app: web}
        topologyKey: kubernetes.io/hostname
"""
    for i in range(3):
        create(cluster, ns, pod_yaml(f"web-{i}", labels={"app": "web"}, extra_spec=anti))
    nodes = {node_of(cluster, ns, f"web-{i}") for i in range(3)}
    assert nodes == set(NODES)
    create(cluster, ns, pod_yaml("web-3", labels={"app": "web"}, extra_spec=anti))
    msg = failed_message(cluster, ns, "web-3")
    assert msg.startswith("0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules."), msg


def test_topology_spread_across_zones(cluster, ns):
    spread = """  topologySpreadConstraints:
  - maxSkew: 1
    topologyKey: topology.kubernetes.io/zone
    whenUnsatisfiable: DoNotSchedule
    labelSelector:
      matchLabels: {app: spread}
"""
    text = "---\n".join(pod_yaml(f"sp-{i}", labels={"app": "spread"}, extra_spec=spread)
                        for i in range(6))
    create(cluster, ns, text)
    zones = [ZONES[node_of(cluster, ns, f"sp-{i}")] for i in range(6)]
    assert sorted(zones) == ["a", "a", "b", "b", "c", "c"], zones


def test_preemption_of_a_lower_priority_pod(cluster, ns):
    classes = """apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: sched-low}
value: 100
---
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: sched-high}
value: 1000
"""
    cluster.kubectl("apply", "-f", "-", input=classes)
    low = "  priorityClassName: sched-low\n"
    for i in range(3):
        create(cluster, ns, pod_yaml(f"low-{i}", cpu="3", extra_spec=low))
    assert {node_of(cluster, ns, f"low-{i}") for i in range(3)} == set(NODES)
    create(cluster, ns, pod_yaml("high", cpu="3", extra_spec="  priorityClassName: sched-high\n"))
    node = node_of(cluster, ns, "high", timeout=30)
    preempted = events(cluster, ns, "Preempted")
    assert len(preempted) == 1, preempted
    victim = preempted[0]["involvedObject"]["name"]
    assert preempted[0]["message"].endswith(f"on node {node}"), preempted[0]
    names = cluster.kubectl("get", "pods", "-n", ns, "-o", "name").stdout.split()
    assert f"pod/{victim}" not in names and len(names) == 3, names


def test_node_ports_conflict(cluster, ns):
    port = """    ports:
    - {containerPort: 8080, hostPort: 8080, protocol: TCP}
"""
    def with_port(name):
        return pod_yaml(name).replace("        cpu: 100m\n", "        cpu: 100m\n" + port)
    for i in range(3):
        create(cluster, ns, with_port(f"hp-{i}"))
    assert {node_of(cluster, ns, f"hp-{i}") for i in range(3)} == set(NODES)
    create(cluster, ns, with_port("hp-3"))
    msg = failed_message(cluster, ns, "hp-3")
    assert msg.startswith(
        "0/3 nodes are available: 3 node(s) didn't have free ports for the requested pod ports."), msg


def test_pod_pending_until_a_node_is_added(cluster, ns):
    create(cluster, ns, pod_yaml(
        "late", extra_spec="  nodeSelector:\n    kubernetes.io/hostname: late-hollow-0\n"))
    failed_message(cluster, ns, "late")
    agent = start_agent(cluster, "late", 1)
    try:
        assert node_of(cluster, ns, "late", timeout=30) == "late-hollow-0"
    finally:
        cluster.kubectl("delete", "pods", "--all", "-n", ns, "--grace-period=0", "--force",
                        check=False)
        agent.terminate()
        agent.wait(timeout=30)
        cluster.kubectl("delete", "node", "late-hollow-0", check=False)
