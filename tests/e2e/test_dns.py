"""The cluster DNS inside `oxkube server` (with a real node): the kube-dns Service and its endpoints,
records for a ClusterIP and a headless Service of a Deployment queried at the node's address over
UDP and TCP from the host, and the resolv.conf a pod gets."""

import json
import random
import socket
import struct

import pytest

from conftest import BUSYBOX, eventually as wait_for, real_node

NODE = "e2e-dns-node"
A, SRV, AAAA = 1, 33, 28
NOERROR, NXDOMAIN = 0, 3


def encode_name(name):
    return b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split(".")) + b"\0"


def read_name(msg, off):
    labels, jumped, end = [], False, off
    while True:
        n = msg[off]
        if n & 0xC0 == 0xC0:
            if not jumped:
                end = off + 2
            off, jumped = ((n & 0x3F) << 8) | msg[off + 1], True
            continue
        if n == 0:
            return ".".join(labels), (end if jumped else off + 1)
        labels.append(msg[off + 1:off + 1 + n].decode())
        off += n + 1


def query(server_ip, name, qtype, tcp=False):
    """(rcode, answers as (type, value), authority count): one raw DNS query."""
    qid = random.randrange(65536)
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + encode_name(name) + struct.pack(">HH", qtype, 1)
    if tcp:
        with socket.create_connection((server_ip, 53), timeout=3) as s:
            s.sendall(struct.pack(">H", len(q)) + q)
            data = b""
            while len(data) < 2 or len(data) < 2 + struct.unpack(">H", data[:2])[0]:
                chunk = s.recv(4096)
                assert chunk, "connection closed"
                data += chunk
            msg = data[2:]
    else:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(3)
            s.sendto(q, (server_ip, 53))
            msg = s.recv(4096)
    rid, flags, qd, an, ns, _ = struct.unpack(">HHHHHH", msg[:12])
    assert rid == qid
    off = 12
    for _ in range(qd):
        _, off = read_name(msg, off)
        off += 4
    answers = []
    for _ in range(an):
        _, off = read_name(msg, off)
        rtype, _, _, rdlen = struct.unpack(">HHIH", msg[off:off + 10])
        off += 10
        rdata = msg[off:off + rdlen]
        if rtype == A:
            answers.append((A, socket.inet_ntoa(rdata)))
        elif rtype == SRV:
            _, _, port = struct.unpack(">HHH", rdata[:6])
            answers.append((SRV, (port, read_name(msg, off + 6)[0])))
        else:
            answers.append((rtype, None))
        off += rdlen
    return flags & 0xF, answers, ns


@pytest.fixture(scope="module")
def cluster():
    with real_node(NODE, dns=True) as s:
        wait_for("the DNS to listen (port 53 of the node's address must be free)",
                 lambda: "cluster DNS listening" in s.read_log(), timeout=10)
        yield s


def node_ip(s):
    return s.kubectl("get", "node", NODE, "-o",
                     "jsonpath={.status.addresses[?(@.type=='InternalIP')].address}").stdout


def test_kube_dns_service_and_endpoints_point_at_the_server(cluster):
    ip = node_ip(cluster)
    def get_json(*args):
        r = cluster.kubectl("get", *args, "-o", "json", check=False)
        return json.loads(r.stdout) if r.returncode == 0 else None

    svc = wait_for("the kube-dns Service", lambda: get_json("svc", "kube-dns", "-n", "kube-system"))
    assert svc["spec"]["clusterIP"] == "10.96.0.10"
    assert "selector" not in svc["spec"]
    assert svc["metadata"]["labels"]["k8s-app"] == "kube-dns"
    assert [(p["name"], p["protocol"], p["port"]) for p in svc["spec"]["ports"]] == [
        ("dns", "UDP", 53), ("dns-tcp", "TCP", 53)]
    table = cluster.kubectl("get", "svc", "-n", "kube-system").stdout
    assert "kube-dns" in table and "10.96.0.10" in table and "53/UDP,53/TCP" in table, table
    slices = wait_for("the kube-dns EndpointSlice", lambda: get_json(
        "endpointslices", "-n", "kube-system", "-l", "kubernetes.io/service-name=kube-dns")["items"])
    assert len(slices) == 1
    assert slices[0]["endpoints"][0]["addresses"] == [ip]
    assert slices[0]["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == "oxkube-dns"
    ep = wait_for("the kube-dns Endpoints", lambda: get_json("endpoints", "kube-dns", "-n", "kube-system"))
    assert ep["subsets"][0]["addresses"][0]["ip"] == ip
    # The bootstrap and the DNS Service answer at the node's address.
    rcode, answers, _ = query(ip, "kube-dns.kube-system.svc.cluster.local", A)
    assert (rcode, answers) == (NOERROR, [(A, "10.96.0.10")])
    rcode, answers, _ = query(ip, "kubernetes.default.svc.cluster.local", A, tcp=True)
    assert (rcode, answers) == (NOERROR, [(A, "10.96.0.1")])


def test_services_of_a_deployment_resolve_from_the_host(cluster):
    ns = "dnsapp"
    ip = node_ip(cluster)
    cluster.kubectl("create", "namespace", ns)
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": ns},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                     "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "c", "image": BUSYBOX,
                                     "command": ["sh", "-c", "exec sleep 3600"],
                                     "ports": [{"name": "http", "containerPort": 8080}]}]}}}}
    services = [{"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
                 "spec": {**extra, "selector": {"app": "web"},
                          "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}
                for name, extra in [("web", {}), ("web-headless", {"clusterIP": "None"})]]
    cluster.kubectl("apply", "-f", "-", input=json.dumps(
        {"apiVersion": "v1", "kind": "List", "items": [deployment, *services]}))
    cluster_ip = cluster.kubectl("get", "svc", "web", "-n", ns, "-o", "jsonpath={.spec.clusterIP}").stdout
    assert cluster_ip.startswith("10.")
    fqdn = f"web.{ns}.svc.cluster.local"
    assert wait_for("the service's A record", lambda: query(ip, fqdn, A)[1] == [(A, cluster_ip)])
    rcode, answers, _ = query(ip, f"_http._tcp.{fqdn}", SRV, tcp=True)
    assert (rcode, answers) == (NOERROR, [(SRV, (80, fqdn))])
    # Headless: the ready pods' addresses, SRV per pod.
    cluster.kubectl("rollout", "status", "deployment/web", "-n", ns, "--timeout=60s")
    pod_ips = sorted(cluster.kubectl("get", "pods", "-n", ns, "-l", "app=web", "-o",
                                     "jsonpath={.items[*].status.podIP}").stdout.split())
    assert len(pod_ips) == 2
    headless = f"web-headless.{ns}.svc.cluster.local"
    assert wait_for("the headless A records", lambda: sorted(
        v for _, v in query(ip, headless, A)[1]) == pod_ips)
    rcode, answers, _ = query(ip, f"_http._tcp.{headless}", SRV)
    assert rcode == NOERROR
    assert sorted(answers) == sorted(
        (SRV, (8080, f"{p.replace('.', '-')}.{headless}")) for p in pod_ips)
    # Pod names; NXDOMAIN and NODATA carry the SOA.
    assert query(ip, f"{pod_ips[0].replace('.', '-')}.{ns}.pod.cluster.local", A)[1] == [(A, pod_ips[0])]
    rcode, answers, authority = query(ip, f"nope.{ns}.svc.cluster.local", A)
    assert (rcode, answers, authority) == (NXDOMAIN, [], 1)
    rcode, answers, authority = query(ip, fqdn, AAAA)
    assert (rcode, answers, authority) == (NOERROR, [], 1)
    # Scaling to zero empties the headless name: NXDOMAIN (spec 2.4.1).
    cluster.kubectl("scale", "deployment/web", "-n", ns, "--replicas=0")
    assert wait_for("the headless name to go", lambda: query(ip, headless, A)[0] == NXDOMAIN)


def test_pods_get_the_cluster_resolv_conf(cluster):
    ns = "dnspods"
    cluster.kubectl("create", "namespace", ns)
    for name, extra in [
        ("first", {}),
        ("none", {"dnsPolicy": "None", "dnsConfig": {
            "nameservers": ["192.0.2.53"], "searches": ["example.test"],
            "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}}),
    ]:
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
               "spec": {"nodeName": NODE, "restartPolicy": "Never", **extra,
                        "containers": [{"name": "c", "image": BUSYBOX,
                                        "command": ["cat", "/etc/resolv.conf"]}]}}
        cluster.kubectl("apply", "-f", "-", input=json.dumps(pod))

    def resolv(name):
        phase = cluster.kubectl("get", "pod", name, "-n", ns, "-o", "jsonpath={.status.phase}").stdout
        if phase != "Succeeded":
            return None
        return cluster.kubectl("logs", name, "-n", ns).stdout.splitlines() or None

    first = wait_for("the ClusterFirst pod's resolv.conf", lambda: resolv("first"))
    assert "nameserver 10.96.0.10" in first, first
    search = next(l for l in first if l.startswith("search "))
    assert search.split()[1:4] == [f"{ns}.svc.cluster.local", "svc.cluster.local", "cluster.local"], first
    assert "options ndots:5" in first, first
    none = wait_for("the None pod's resolv.conf", lambda: resolv("none"))
    assert [l for l in none if l.startswith("nameserver")] == ["nameserver 192.0.2.53"], none
    assert "search example.test" in none, none
    assert any(l.startswith("options") and "ndots:2" in l and "edns0" in l for l in none), none
