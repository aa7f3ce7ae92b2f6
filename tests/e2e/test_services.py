"""Services on a real node: the service proxy programs nftables from Services and EndpointSlices, so
a ClusterIP load-balances over ready pods (from pods and from the node), a NodePort answers on the
node's address, a Service without endpoints refuses at once, ClientIP affinity pins a client, and a
scale-down loses no request."""

import json
import socket
import time
import urllib.request

import pytest

from conftest import BUSYBOX, GET, SERVE, eventually, real_node

NODE = "e2e-svc-node"

@pytest.fixture(scope="module")
def node():
    with real_node(NODE) as s:
        yield s


def apply(s, obj):
    s.kubectl("apply", "-f", "-", input=json.dumps(obj))


def deployment(ns, name, replicas):
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "terminationGracePeriodSeconds": 5,
                    "containers": [{
                        "name": "web", "image": BUSYBOX, "command": ["sh", "-c", SERVE],
                        "ports": [{"name": "http", "containerPort": 8080}],
                    }],
                },
            },
        },
    }


def service(ns, name, kind="ClusterIP", affinity=None, app=None):
    spec = {"type": kind, "selector": {"app": app or name},
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}
    if affinity:
        spec["sessionAffinity"] = affinity
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
            "spec": spec}


def ready_endpoints(s, ns, name):
    out = s.kubectl("get", "endpointslices", "-n", ns, "-l", f"kubernetes.io/service-name={name}",
                    "-o", "json").stdout
    ips = []
    for sl in json.loads(out)["items"]:
        for ep in sl.get("endpoints") or []:
            if (ep.get("conditions") or {}).get("ready"):
                ips += ep["addresses"]
    return sorted(ips)


def pod_names(s, ns, app):
    out = s.kubectl("get", "pods", "-n", ns, "-l", f"app={app}", "-o",
                    "jsonpath={.items[*].metadata.name}").stdout
    return sorted(out.split())


def get(url, timeout=2):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode().strip()


def run_client(s, ns, name, script, timeout=90, labels=None):
    """A pod that runs `script` (with `get` defined) to completion; its log."""
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": ns, "labels": labels or {}},
           "spec": {"restartPolicy": "Never",
                    "containers": [{"name": "c", "image": BUSYBOX, "command": ["sh", "-c", GET + script]}]}}
    apply(s, pod)
    eventually(f"{name} to finish", lambda: s.kubectl(
        "get", "pod", name, "-n", ns, "-o", "jsonpath={.status.phase}").stdout
        in ("Succeeded", "Failed"), timeout=timeout)
    return s.kubectl("logs", name, "-n", ns).stdout


@pytest.fixture(scope="module")
def web(node):
    ns = "svc"
    node.kubectl("create", "namespace", ns)
    apply(node, deployment(ns, "web", 3))
    apply(node, service(ns, "web", kind="NodePort"))
    eventually("3 ready endpoints", lambda: len(ready_endpoints(node, ns, "web")) == 3, timeout=90)
    svc = json.loads(node.kubectl("get", "svc", "web", "-n", ns, "-o", "json").stdout)
    return ns, svc


def node_ip(s):
    return s.kubectl("get", "node", NODE, "-o",
                     "jsonpath={.status.addresses[?(@.type=='InternalIP')].address}").stdout


def test_a_cluster_ip_balances_over_every_ready_pod_from_a_pod(node, web):
    ns, svc = web
    ip = svc["spec"]["clusterIP"]
    log = run_client(node, ns, "client",
                     f"for i in $(seq 1 60); do get {ip}; done")
    answers = log.split()
    assert "FAIL" not in answers, log
    assert sorted(set(answers)) == pod_names(node, ns, "web"), log


def test_the_node_reaches_cluster_ips_and_node_ports(node, web):
    ns, svc = web
    pods = pod_names(node, ns, "web")
    seen = {get(f"http://{svc['spec']['clusterIP']}/") for _ in range(40)}
    assert seen == set(pods), seen
    port = svc["spec"]["ports"][0]["nodePort"]
    seen = {get(f"http://{node_ip(node)}:{port}/") for _ in range(40)}
    assert seen == set(pods), seen


def test_a_service_without_endpoints_refuses_at_once(node):
    ns = "empty"
    node.kubectl("create", "namespace", ns)
    apply(node, service(ns, "nothing"))
    ip = node.kubectl("get", "svc", "nothing", "-n", ns, "-o", "jsonpath={.spec.clusterIP}").stdout

    def refused():
        started = time.monotonic()
        try:
            socket.create_connection((ip, 80), timeout=3).close()
            return False
        except ConnectionRefusedError:
            return time.monotonic() - started < 1
        except OSError:
            return False

    assert eventually("a refusal, not a timeout", refused, timeout=20)


def test_client_ip_affinity_pins_a_client(node, web):
    ns, _ = web
    apply(node, service(ns, "sticky", affinity="ClientIP", app="web"))
    eventually("sticky endpoints", lambda: len(ready_endpoints(node, ns, "sticky")) == 3)
    ip = node.kubectl("get", "svc", "sticky", "-n", ns, "-o", "jsonpath={.spec.clusterIP}").stdout
    log = run_client(node, ns, "sticky-client",
                     f"for i in $(seq 1 30); do get {ip}; done")
    answers = log.split()
    assert len(answers) == 30 and len(set(answers)) == 1 and answers[0] != "FAIL", log


def test_scaling_loses_no_request(node, web):
    ns, svc = web
    ip = svc["spec"]["clusterIP"]
    # A bounded loop of requests (1,000, at least 20 s) runs while the deployment goes 3 → 5 → 2.
    script = (f"i=0; fails=0; while [ $i -lt 1000 ]; do i=$((i+1)); "
              f"[ $(get {ip}) = FAIL ] && fails=$((fails+1)); sleep 0.02; done; "
              f"echo requests=$i failures=$fails")
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "loop", "namespace": ns},
           "spec": {"restartPolicy": "Never",
                    "containers": [{"name": "c", "image": BUSYBOX, "command": ["sh", "-c", GET + script]}]}}
    apply(node, pod)
    eventually("the loop to run", lambda: node.kubectl(
        "get", "pod", "loop", "-n", ns, "-o", "jsonpath={.status.phase}").stdout == "Running")
    node.kubectl("scale", "deployment", "web", "-n", ns, "--replicas=5")
    eventually("5 ready endpoints", lambda: len(ready_endpoints(node, ns, "web")) == 5, timeout=60)
    node.kubectl("scale", "deployment", "web", "-n", ns, "--replicas=2")
    eventually("2 ready endpoints", lambda: len(ready_endpoints(node, ns, "web")) == 2, timeout=60)
    assert node.kubectl("get", "pod", "loop", "-n", ns, "-o", "jsonpath={.status.phase}").stdout \
        == "Running", "the loop ended before the change did: the test proves nothing"
    eventually("the loop to finish", lambda: node.kubectl(
        "get", "pod", "loop", "-n", ns, "-o", "jsonpath={.status.phase}").stdout == "Succeeded",
        timeout=120)
    log = node.kubectl("logs", "loop", "-n", ns).stdout
    assert "requests=1000 failures=0" in log, log


def test_a_pod_reaches_itself_through_its_service(node, web):
    ns, svc = web
    ip = svc["spec"]["clusterIP"]
    # A fourth backend that, once it serves, asks its own Service until it answers itself
    # (hairpin: the DNAT sends it back to itself, masqueraded so the reply returns).
    script = (GET + "mkdir -p /www && hostname > /www/index.html && httpd -p 8080 -h /www && "
              f"for i in $(seq 1 300); do r=$(get {ip}); echo $r; "
              "[ \"$r\" = hairpin ] && break; sleep 0.05; done")
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "hairpin", "namespace": ns, "labels": {"app": "web"}},
           "spec": {"restartPolicy": "Never", "containers": [{
               "name": "c", "image": BUSYBOX, "command": ["sh", "-c", script],
               "ports": [{"name": "http", "containerPort": 8080}]}]}}
    apply(node, pod)
    eventually("hairpin to finish", lambda: node.kubectl(
        "get", "pod", "hairpin", "-n", ns, "-o", "jsonpath={.status.phase}").stdout
        in ("Succeeded", "Failed"), timeout=90)
    log = node.kubectl("logs", "hairpin", "-n", ns).stdout.split()
    assert log and log[-1] == "hairpin" and "FAIL" not in log, log


def test_a_network_policy_denies_ingress_and_an_allow_rule_restores_it(node):
    ns = "np"
    node.kubectl("create", "namespace", ns)
    apply(node, {"apiVersion": "v1", "kind": "Pod",
                 "metadata": {"name": "guarded", "namespace": ns, "labels": {"app": "guarded"}},
                 "spec": {"containers": [{"name": "web", "image": BUSYBOX, "command": ["sh", "-c", SERVE],
                                          "ports": [{"name": "http", "containerPort": 8080}]}]}})
    apply(node, service(ns, "guarded"))
    eventually("guarded ready", lambda: len(ready_endpoints(node, ns, "guarded")) == 1, timeout=60)
    ip = node.kubectl("get", "svc", "guarded", "-n", ns, "-o", "jsonpath={.spec.clusterIP}").stdout

    def client(name, want):
        # Asks until the answer is `want` (at most 10 times), so the proxy's update has time.
        log = run_client(node, ns, name, f"for i in $(seq 1 10); do r=$(get {ip}); echo $r; "
                                         f"[ \"$r\" = {want} ] && break; done")
        return log.split()

    assert client("before", "guarded")[-1] == "guarded"
    apply(node, {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                 "metadata": {"name": "deny-all", "namespace": ns},
                 "spec": {"podSelector": {"matchLabels": {"app": "guarded"}},
                          "policyTypes": ["Ingress"]}})
    denied = client("denied", "FAIL")
    assert denied[-1] == "FAIL", denied
    apply(node, {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                 "metadata": {"name": "allow-clients", "namespace": ns},
                 "spec": {"podSelector": {"matchLabels": {"app": "guarded"}},
                          "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "client"}}}],
                                       "ports": [{"port": "http"}]}]}})
    # The client pods carry no role label: still denied; one with role=client is let in.
    assert client("unlabelled", "FAIL")[-1] == "FAIL"
    allowed = run_client(node, ns, "allowed", f"for i in $(seq 1 10); do r=$(get {ip}); echo $r; "
                                              f"[ \"$r\" = guarded ] && break; done",
                         labels={"role": "client"}).split()
    assert allowed[-1] == "guarded", allowed
