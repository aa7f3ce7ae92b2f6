"""Two real nodes on one machine: each `oxkube agent` runs in a network namespace of its own (own
address on a test bridge, own containerd, own service proxy), joined to one server. Pods on one node
reach pods on the other by pod IP (host-gw routes from Node objects), a ClusterIP balances over
pods on both nodes, and a NodePort answers on each node's address. The harness makes and removes
its own bridge, namespaces and rules; only they are ever targeted."""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import urllib.request

import pytest

from conftest import (BUSYBOX, GET, OXKUBE, SERVE, Server, build_image, eventually)

BRIDGE = "oxkt0"
GATEWAY = "10.250.0.1"
NODES = {"mn-a": "10.250.0.11", "mn-b": "10.250.0.12"}


def sh(*args):
    subprocess.run(args, check=True, capture_output=True)


def netns(node):
    return f"oxkt-{node}"


def make_network():
    # A plain switch between the nodes, like a physical network: frames crossing it are not
    # passed through this host's netfilter (br_netfilter would, and any NAT rule of the host
    # would then rewrite node-to-node traffic).
    sh("ip", "link", "add", BRIDGE, "type", "bridge", "nf_call_iptables", "0")
    sh("ip", "addr", "add", f"{GATEWAY}/24", "dev", BRIDGE)
    sh("ip", "link", "set", BRIDGE, "up")
    for i, (node, ip) in enumerate(NODES.items()):
        ns, host_end = netns(node), f"oxkt-h{i}"
        sh("ip", "netns", "add", ns)
        sh("ip", "link", "add", host_end, "type", "veth", "peer", "name", "eth0", "netns", ns)
        sh("ip", "link", "set", host_end, "master", BRIDGE, "up")
        sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", "eth0")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", ns, "route", "add", "default", "via", GATEWAY)


def remove_network():
    for node in NODES:
        subprocess.run(["ip", "netns", "del", netns(node)], capture_output=True, check=False)
    subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True, check=False)


class Agent:
    def __init__(self, server, node):
        self.node = node
        self.dir = tempfile.mkdtemp(prefix=f"oxkube-agent-{node}-")
        with open(os.path.join(server.dir, "node-token")) as f:
            token = f.read().strip()
        self.log = open(os.path.join(self.dir, "agent.log"), "w")
        self.proc = subprocess.Popen(
            # nsenter, not `ip netns exec`: that remounts /sys, hiding the cgroup mounts runc needs.
            ["nsenter", f"--net=/run/netns/{netns(node)}", "--", OXKUBE, "agent", "--server",
             f"https://{GATEWAY}:{server.port}", "--token", token, "--data-dir", self.dir,
             "--node-name", node],
            stdout=self.log, stderr=subprocess.STDOUT)

    def read_log(self):
        with open(os.path.join(self.dir, "agent.log")) as f:
            return f.read()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=30)
        self.log.close()
        with open("/proc/mounts") as f:
            mounts = [line.split()[1] for line in f if line.split()[1].startswith(self.dir)]
        for m in reversed(mounts):
            subprocess.run(["umount", m], capture_output=True, check=False)
        return code


@pytest.fixture(scope="module")
def cluster():
    remove_network()
    make_network()
    server, agents, tmp = None, [], tempfile.mkdtemp(prefix="oxkube-img-")
    try:
        server = Server(bind=GATEWAY, dns=True)
        agents = [Agent(server, node) for node in NODES]
        for a in agents:
            eventually(f"node {a.node} Ready", lambda a=a: a.proc.poll() is None and server.kubectl(
                "get", "node", a.node, "-o",
                "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
                check=False).stdout == "True", timeout=90) or None
        image = build_image(tmp, BUSYBOX, [], cmd=["sh"])
        for a in agents:
            subprocess.run([OXKUBE, "image", "import", image, "--data-dir", a.dir], check=True)
        yield server
    finally:
        codes = {}
        if server:
            server.kubectl("delete", "deployments,replicasets", "--all", "--all-namespaces",
                           "--wait=false", check=False)
            server.kubectl("delete", "pods", "--all", "--all-namespaces", "--grace-period=1",
                           "--wait=false", check=False)
            try:
                eventually("every pod to be gone", lambda: server.kubectl(
                    "get", "pods", "-A", "-o", "name", check=False).stdout.strip() == "",
                    timeout=30)
            finally:
                for a in agents:
                    codes[a.node] = (a.stop(), a.read_log())
                codes["server"] = (server.stop(), server.read_log())
        remove_network()
        for a in agents:
            shutil.rmtree(a.dir, ignore_errors=True)
        if server:
            shutil.rmtree(server.dir, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)
        for who, (code, log) in codes.items():
            assert code == 0, f"{who} exited {code}:\n{log[-5000:]}"


def apply(s, obj):
    s.kubectl("apply", "-f", "-", input=json.dumps(obj))


def pod(name, node, command, restart="Always", labels=None):
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "labels": labels or {}},
            "spec": {"nodeName": node, "restartPolicy": restart, "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "c", "image": BUSYBOX, "command": ["sh", "-c", command]}]}}


def pod_field(s, name, path):
    return s.kubectl("get", "pod", name, "-o", f"jsonpath={path}", check=False).stdout


def finished_log(s, name, timeout=90):
    eventually(f"{name} to finish", lambda: pod_field(s, name, "{.status.phase}")
               in ("Succeeded", "Failed"), timeout=timeout)
    return s.kubectl("logs", name).stdout


def test_every_node_gets_its_own_pod_cidr_and_routes_to_the_others(cluster):
    cidrs = {n: cluster.kubectl("get", "node", n, "-o", "jsonpath={.spec.podCIDR}").stdout
             for n in NODES}
    assert len(set(cidrs.values())) == 2 and all(cidrs.values()), cidrs
    for node in NODES:
        routes = subprocess.run(["ip", "-n", netns(node), "route", "show", "proto", "117"],
                                capture_output=True, text=True, check=True).stdout
        for other, ip in NODES.items():
            if other != node:
                assert f"{cidrs[other]} via {ip}" in routes, routes


def test_a_pod_reaches_a_pod_on_the_other_node_by_pod_ip(cluster):
    apply(cluster, pod("server-b", "mn-b", SERVE))
    ip = eventually("server-b's IP", lambda: pod_field(cluster, "server-b", "{.status.podIP}")
                    if pod_field(cluster, "server-b", "{.status.phase}") == "Running" else None)
    apply(cluster, pod("client-a", "mn-a", GET + f"for i in 1 2 3; do get {ip} 8080; done",
                       restart="Never"))
    log = finished_log(cluster, "client-a")
    assert log.split() == ["server-b"] * 3, log


@pytest.fixture(scope="module")
def web(cluster):
    labels = {"app": "spread"}
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "spread", "namespace": "default"},
        "spec": {"replicas": 3, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels}, "spec": {
                     "terminationGracePeriodSeconds": 1,
                     "topologySpreadConstraints": [{
                         "maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                         "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": labels}}],
                     "containers": [{"name": "web", "image": BUSYBOX, "command": ["sh", "-c", SERVE],
                                     "ports": [{"name": "http", "containerPort": 8080}]}]}}}}
    apply(cluster, deployment)
    apply(cluster, {"apiVersion": "v1", "kind": "Service",
                    "metadata": {"name": "spread", "namespace": "default"},
                    "spec": {"type": "NodePort", "selector": labels,
                             "ports": [{"port": 80, "targetPort": "http"}]}})

    def ready():
        out = cluster.kubectl("get", "endpointslices", "-l", "kubernetes.io/service-name=spread",
                              "-o", "json").stdout
        eps = [e for sl in json.loads(out)["items"] for e in sl.get("endpoints") or []
               if (e.get("conditions") or {}).get("ready")]
        return len(eps) == 3 and {e.get("nodeName") for e in eps} == set(NODES)

    eventually("3 ready endpoints on both nodes", ready, timeout=120)
    pods = cluster.kubectl("get", "pods", "-l", "app=spread", "-o",
                           "jsonpath={.items[*].metadata.name}").stdout.split()
    return json.loads(cluster.kubectl("get", "svc", "spread", "-o", "json").stdout), set(pods)


def test_a_cluster_ip_balances_over_pods_on_both_nodes(cluster, web):
    svc, pods = web
    ip = svc["spec"]["clusterIP"]
    apply(cluster, pod("client-svc", "mn-a", GET + f"for i in $(seq 1 60); do get {ip}; done",
                       restart="Never"))
    answers = finished_log(cluster, "client-svc").split()
    assert "FAIL" not in answers and set(answers) == pods, answers


def test_a_node_port_answers_on_every_nodes_address(cluster, web):
    svc, pods = web
    port = svc["spec"]["ports"][0]["nodePort"]
    for ip in NODES.values():
        seen = set()
        for _ in range(40):
            with urllib.request.urlopen(f"http://{ip}:{port}/", timeout=2) as r:
                seen.add(r.read().decode().strip())
        assert seen == pods, (ip, seen)


def test_a_load_balancer_gets_the_node_addresses_and_serves_on_them(cluster, web):
    _, pods = web
    apply(cluster, {"apiVersion": "v1", "kind": "Service",
                    "metadata": {"name": "spread-lb", "namespace": "default"},
                    "spec": {"type": "LoadBalancer", "selector": {"app": "spread"},
                             "ports": [{"port": 80, "targetPort": "http"}]}})
    ingress = eventually("status.loadBalancer.ingress", lambda: cluster.kubectl(
        "get", "svc", "spread-lb", "-o", "jsonpath={.status.loadBalancer.ingress[*].ip}").stdout)
    assert sorted(ingress.split()) == sorted(NODES.values()), ingress
    assert sorted(NODES.values())[0] in cluster.kubectl("get", "svc", "spread-lb").stdout
    for ip in NODES.values():
        def answers(ip=ip):
            try:
                with urllib.request.urlopen(f"http://{ip}/", timeout=2) as r:
                    return r.read().decode().strip()
            except OSError:
                return None
        first = eventually(f"an answer on {ip}:80", answers, timeout=20)
        seen = {first} | {answers() for _ in range(40)}
        assert seen == pods, (ip, seen)


def test_a_network_policy_sees_the_real_source_of_a_pod_on_another_node(cluster):
    apply(cluster, pod("guard-b", "mn-b", SERVE, labels={"app": "guard-b"}))
    ip = eventually("guard-b's IP", lambda: pod_field(cluster, "guard-b", "{.status.podIP}")
                    if pod_field(cluster, "guard-b", "{.status.phase}") == "Running" else None)
    apply(cluster, {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                    "metadata": {"name": "clients-only", "namespace": "default"},
                    "spec": {"podSelector": {"matchLabels": {"app": "guard-b"}},
                             "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "client"}}}]}]}})
    ask = GET + f"for i in $(seq 1 10); do r=$(get {ip} 8080); echo $r; [ \"$r\" = $WANT ] && break; done"
    allowed = pod("np-client-a", "mn-a", "WANT=guard-b; " + ask, restart="Never",
                  labels={"role": "client"})
    denied = pod("np-stranger-a", "mn-a", "WANT=FAIL; " + ask, restart="Never")
    apply(cluster, allowed)
    apply(cluster, denied)
    # Allowed only if the packet arrives from the client pod's own address (not its node's).
    assert finished_log(cluster, "np-client-a").split()[-1] == "guard-b"
    assert finished_log(cluster, "np-stranger-a").split()[-1] == "FAIL"


def test_pods_on_both_nodes_find_a_service_by_name_through_the_cluster_dns(cluster, web):
    _, pods = web
    # busybox's nslookup has its own resolver (its libc one needs NSS files the image lacks); it
    # asks the nameserver of the pod's resolv.conf: 10.96.0.10, DNATed by the node's proxy to the
    # server's DNS.
    script = GET + ("grep nameserver /etc/resolv.conf; "
                    "ip=$(nslookup spread.default.svc.cluster.local | awk '/^Address/ {a=$NF} END {print a}'); "
                    "echo resolved=$ip; for i in $(seq 1 40); do get $ip; done")
    for node in NODES:
        name = f"dns-client-{node}"
        apply(cluster, pod(name, node, script, restart="Never"))
        log = finished_log(cluster, name).split()
        assert log[:2] == ["nameserver", "10.96.0.10"], log
        svc_ip = cluster.kubectl("get", "svc", "spread", "-o", "jsonpath={.spec.clusterIP}").stdout
        assert f"resolved={svc_ip}" in log, log
        assert set(log[3:]) == pods, log
