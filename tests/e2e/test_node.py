"""The real node: `oxkube server` WITHOUT --disable-agent runs containerd and the kubelet over CRI.
Pods run busybox from an image built and imported with `oxkube image`, and must look in kubectl as
they do upstream (Running, CrashLoopBackOff, graceful deletion, env and $(VAR) expansion)."""

import json
import os
import subprocess
import time

import pytest

from conftest import BUSYBOX, eventually as wait_for, real_node

NODE = "e2e-node"


@pytest.fixture(scope="module")
def node():
    with real_node(NODE) as s:
        yield s


def pod_json(s, ns, name):
    r = s.kubectl("get", "pod", name, "-n", ns, "-o", "json", check=False)
    return json.loads(r.stdout) if r.returncode == 0 else None


def phase(s, ns, name):
    pod = pod_json(s, ns, name)
    return pod and pod.get("status", {}).get("phase")


def apply_pod(s, ns, name, container, restart="Always", grace=None, extra=None):
    spec = {"nodeName": NODE, "restartPolicy": restart, "containers": [container]}
    if grace is not None:
        spec["terminationGracePeriodSeconds"] = grace
    spec.update(extra or {})
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": ns}, "spec": spec}
    s.kubectl("apply", "-f", "-", input=json.dumps(pod))


def ns_of(s, name):
    s.kubectl("create", "namespace", name)
    return name


def test_kubectl_run_busybox_gets_running_with_a_pod_ip(node):
    ns = ns_of(node, "run")
    node.kubectl("run", "web", "-n", ns, f"--image={BUSYBOX}", "--restart=Always",
                 "--overrides", json.dumps({"spec": {"nodeName": NODE}}),
                 "--", "sh", "-c", "echo started; echo second; exec sleep 3600")
    wait_for("Running", lambda: phase(node, ns, "web") == "Running")
    pod = pod_json(node, ns, "web")
    status = pod["status"]
    assert status["podIP"].startswith("10.42.0."), status
    assert status["hostIP"] and status["hostIP"] == status["hostIPs"][0]["ip"]
    c = status["containerStatuses"][0]
    assert c["ready"] is True and c["started"] is True and "running" in c["state"]
    assert c["containerID"].startswith("containerd://")
    assert c["image"] == BUSYBOX and c["imageID"]
    out = node.kubectl("get", "pod", "web", "-n", ns).stdout
    assert "1/1" in out and "Running" in out, out
    # kubectl logs goes API server -> pods/log -> the kubelet's /containerLogs.
    assert wait_for("logs", lambda: node.kubectl("logs", "web", "-n", ns).stdout
                    == "started\nsecond\n")
    assert node.kubectl("logs", "web", "-n", ns, "--tail=1").stdout == "second\n"
    stamped = node.kubectl("logs", "web", "-n", ns, "--timestamps").stdout.splitlines()
    assert [l.split(" ", 1)[1] for l in stamped] == ["started", "second"], stamped


def test_a_crashing_container_goes_to_crashloopbackoff(node):
    ns = ns_of(node, "crash")
    apply_pod(node, ns, "crash", {"name": "c", "image": BUSYBOX, "command": ["sh", "-c", "exit 3"]})

    def waiting_reason():
        pod = pod_json(node, ns, "crash")
        cs = (pod or {}).get("status", {}).get("containerStatuses") or [{}]
        return (cs[0].get("state", {}).get("waiting") or {}).get("reason") == "CrashLoopBackOff" and cs[0]

    c = wait_for("CrashLoopBackOff", waiting_reason)
    assert c["restartCount"] >= 1
    assert c["lastState"]["terminated"]["exitCode"] == 3
    assert c["lastState"]["terminated"]["reason"] == "Error"
    out = node.kubectl("get", "pod", "crash", "-n", ns).stdout
    assert "CrashLoopBackOff" in out and "0/1" in out, out
    r = node.kubectl("logs", "crash", "-n", ns, "--previous", check=False)
    assert r.returncode == 0, r.stderr


def test_deletion_is_graceful(node):
    ns = ns_of(node, "grace")
    # sh as PID 1 ignores SIGTERM unless trapped: this one exits at once on SIGTERM...
    apply_pod(node, ns, "polite", {"name": "c", "image": BUSYBOX, "command": [
        "sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"]}, grace=30)
    # ...and this one ignores it, so it is killed when its 2 s grace period ends.
    apply_pod(node, ns, "stubborn", {"name": "c", "image": BUSYBOX, "command": [
        "sh", "-c", "trap '' TERM; while true; do sleep 0.1; done"]}, grace=2)
    for name in ("polite", "stubborn"):
        wait_for(f"{name} Running", lambda: phase(node, ns, name) == "Running")
    took = {}
    for name in ("polite", "stubborn"):
        start = time.time()
        node.kubectl("delete", "pod", name, "-n", ns, "--wait=false")
        pod = pod_json(node, ns, name)
        assert pod is None or pod["metadata"].get("deletionTimestamp"), pod
        wait_for(f"{name} gone", lambda: pod_json(node, ns, name) is None)
        took[name] = time.time() - start
    assert took["polite"] < 1.8, took
    assert 1.8 <= took["stubborn"] < 6, took


def test_env_sources_and_var_expansion_reach_the_container(node):
    ns = ns_of(node, "env")
    node.kubectl("create", "configmap", "cm", "-n", ns, "--from-literal=greeting=hi")
    node.kubectl("create", "secret", "generic", "sec", "-n", ns, "--from-literal=pw=s3cret")
    script = ('test "$GREETING" = hi && test "$PW" = s3cret && test "$NAME" = envpod '
              '&& test "$BOTH" = hi-envpod && test "$1" = hi-envpod && test -n "$IP" || exit 7')
    apply_pod(node, ns, "envpod", {
        "name": "c", "image": BUSYBOX,
        "command": ["sh", "-c", script, "$(BOTH)"],
        "args": ["$(BOTH)"],
        "env": [
            {"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "greeting"}}},
            {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "pw"}}},
            {"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "BOTH", "value": "$(GREETING)-$(NAME)"},
        ]}, restart="Never")
    final = wait_for("the pod to finish", lambda: phase(node, ns, "envpod") in ("Succeeded", "Failed")
                     and phase(node, ns, "envpod"))
    c = pod_json(node, ns, "envpod")["status"]["containerStatuses"][0]
    assert final == "Succeeded", c
    assert c["state"]["terminated"]["reason"] == "Completed"


def test_a_pod_runs_an_image_from_oxkube_image_build(node):
    ns = ns_of(node, "img")
    apply_pod(node, ns, "hello", {"name": "c", "image": "oxkube.local/hello:1"}, restart="Never")
    wait_for("Succeeded", lambda: phase(node, ns, "hello") == "Succeeded")
    c = pod_json(node, ns, "hello")["status"]["containerStatuses"][0]
    assert c["state"]["terminated"]["exitCode"] == 0
