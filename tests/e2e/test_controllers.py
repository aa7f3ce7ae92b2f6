"""The controller-manager inside `oxkube server`, driven by the real kubectl 1.37 with three hollow nodes
(`oxkube agent --hollow 3`): deployments roll out, scale, update, roll back; namespaces empty themselves;
foreground and orphan deletion; every namespace gets its ServiceAccount and root CA ConfigMap.

The scheduler is not part of this suite, so pod templates name a hollow node in `spec.nodeName`."""

import json
import os
import subprocess
import time

import pytest

from conftest import OXKUBE, Server, eventually

NODE = "ctl-hollow-0"


@pytest.fixture(scope="module")
def cluster():
    s = Server()
    token = open(os.path.join(s.dir, "node-token")).read().strip()
    agent_log = open(os.path.join(s.dir, "agent.log"), "w")
    agent = subprocess.Popen(
        [OXKUBE, "agent", "--server", f"https://127.0.0.1:{s.port}", "--token", token,
         "--hollow", "3", "--node-name", "ctl", "--data-dir", os.path.join(s.dir, "agent")],
        stdout=agent_log, stderr=subprocess.STDOUT)
    try:
        def nodes_ready():
            r = s.kubectl("get", "nodes", "-o", "json", check=False)
            if r.returncode != 0:
                return False
            items = json.loads(r.stdout)["items"]
            ready = [n for n in items if any(c["type"] == "Ready" and c["status"] == "True"
                                             for c in n["status"].get("conditions", []))]
            return len(ready) == 3
        eventually("three ready hollow nodes", nodes_ready)
        yield s
    finally:
        agent.terminate()
        agent.wait(timeout=30)
        agent_log.close()
        s.finish()


def make_ns(s, name):
    s.kubectl("create", "namespace", name)
    return name


def get_json(s, *args):
    return json.loads(s.kubectl("get", *args, "-o", "json").stdout)


def deployment(name, replicas, image, node=NODE, extra_spec=""):
    return f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: {name}}}
{extra_spec}  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      nodeName: {node}
      containers:
      - name: main
        image: {image}
        command: ["sleep", "3600"]
"""


def test_every_namespace_gets_a_default_service_account_and_the_root_ca(cluster):
    ns = make_ns(cluster, "sa-check")
    sa = eventually("the default service account",
                    lambda: cluster.kubectl("get", "sa", "default", "-n", ns, check=False).returncode == 0)
    assert sa
    cm = eventually("kube-root-ca.crt", lambda: (lambda r: r.returncode == 0 and json.loads(r.stdout))(
        cluster.kubectl("get", "cm", "kube-root-ca.crt", "-n", ns, "-o", "json", check=False)))
    ca = open(os.path.join(cluster.dir, "tls", "ca.crt")).read()
    assert cm["data"]["ca.crt"] == ca
    # Deleted: it comes back.
    cluster.kubectl("delete", "cm", "kube-root-ca.crt", "-n", ns)
    eventually("kube-root-ca.crt again",
               lambda: cluster.kubectl("get", "cm", "kube-root-ca.crt", "-n", ns, check=False).returncode == 0)


def test_deployment_create_scale_update_rollback_history(cluster):
    ns = make_ns(cluster, "deploy")
    k = lambda *a, **kw: cluster.kubectl(*a, "-n", ns, **kw)
    k("apply", "-f", "-", input=deployment("web", 3, "nginx:1.0"))
    out = k("rollout", "status", "deployment/web", "--timeout=60s").stdout
    assert 'deployment "web" successfully rolled out' in out
    d = get_json(cluster, "deploy", "web", "-n", ns)
    assert d["status"]["readyReplicas"] == 3 and d["status"]["updatedReplicas"] == 3
    conds = {c["type"]: c for c in d["status"]["conditions"]}
    assert conds["Available"]["reason"] == "MinimumReplicasAvailable"
    assert conds["Progressing"]["reason"] == "NewReplicaSetAvailable"
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    rs = get_json(cluster, "rs", "-n", ns)["items"]
    assert len(rs) == 1
    hash_ = rs[0]["metadata"]["labels"]["pod-template-hash"]
    assert rs[0]["metadata"]["name"] == f"web-{hash_}"
    pods = get_json(cluster, "pods", "-n", ns)["items"]
    assert len(pods) == 3 and all(p["metadata"]["labels"]["pod-template-hash"] == hash_ for p in pods)

    k("scale", "deployment/web", "--replicas=5")
    k("rollout", "status", "deployment/web", "--timeout=60s")
    assert get_json(cluster, "deploy", "web", "-n", ns)["status"]["availableReplicas"] == 5

    k("set", "image", "deployment/web", "main=nginx:2.0")
    out = k("rollout", "status", "deployment/web", "--timeout=60s").stdout
    assert 'deployment "web" successfully rolled out' in out
    d = get_json(cluster, "deploy", "web", "-n", ns)
    assert d["status"]["updatedReplicas"] == 5 and d["status"]["replicas"] == 5
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    rs = {r["spec"]["template"]["spec"]["containers"][0]["image"]: r
          for r in get_json(cluster, "rs", "-n", ns)["items"]}
    assert rs["nginx:2.0"]["spec"]["replicas"] == 5 and rs["nginx:1.0"]["spec"]["replicas"] == 0
    def old_pods_gone():
        pods = get_json(cluster, "pods", "-n", ns)["items"]
        return len(pods) == 5 and all(p["spec"]["containers"][0]["image"] == "nginx:2.0" for p in pods)
    eventually("only new pods", old_pods_gone)
    events = k("get", "events", "--field-selector", "involvedObject.name=web").stdout
    assert "ScalingReplicaSet" in events

    k("rollout", "undo", "deployment/web")
    k("rollout", "status", "deployment/web", "--timeout=60s")
    d = get_json(cluster, "deploy", "web", "-n", ns)
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.0"
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    rs = {r["spec"]["template"]["spec"]["containers"][0]["image"]: r
          for r in get_json(cluster, "rs", "-n", ns)["items"]}
    assert len(rs) == 2, "the rollback reuses the first ReplicaSet"
    assert rs["nginx:1.0"]["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    assert rs["nginx:1.0"]["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "1"
    history = k("rollout", "history", "deployment/web").stdout
    revisions = [line.split()[0] for line in history.splitlines()[2:] if line.strip()]
    assert revisions == ["2", "3"], history


def test_recreate_and_paused_deployments(cluster):
    ns = make_ns(cluster, "recreate")
    k = lambda *a, **kw: cluster.kubectl(*a, "-n", ns, **kw)
    k("apply", "-f", "-", input=deployment("db", 2, "db:1", extra_spec="  strategy: {type: Recreate}\n"))
    k("rollout", "status", "deployment/db", "--timeout=60s")
    k("rollout", "pause", "deployment/db")
    k("set", "image", "deployment/db", "main=db:2")
    cond = eventually("the paused condition", lambda: next(
        (c for c in get_json(cluster, "deploy", "db", "-n", ns)["status"].get("conditions", [])
         if c["type"] == "Progressing" and c["reason"] == "DeploymentPaused"), None))
    assert cond["status"] == "Unknown"
    assert len(get_json(cluster, "rs", "-n", ns)["items"]) == 1, "paused: no new ReplicaSet"
    k("rollout", "resume", "deployment/db")
    k("rollout", "status", "deployment/db", "--timeout=60s")
    pods = get_json(cluster, "pods", "-n", ns)["items"]
    assert sorted(p["spec"]["containers"][0]["image"] for p in pods) == ["db:2", "db:2"]


def test_replication_controller_keeps_its_replicas(cluster):
    ns = make_ns(cluster, "rc")
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=f"""apiVersion: v1
kind: ReplicationController
metadata: {{name: legacy}}
spec:
  replicas: 2
  selector: {{app: legacy}}
  template:
    metadata: {{labels: {{app: legacy}}}}
    spec:
      nodeName: {NODE}
      containers: [{{name: main, image: x, command: [sleep, "3600"]}}]
""")
    eventually("2 ready replicas", lambda: get_json(cluster, "rc", "legacy", "-n", ns)
               .get("status", {}).get("readyReplicas") == 2)
    victim = get_json(cluster, "pods", "-n", ns)["items"][0]["metadata"]["name"]
    cluster.kubectl("delete", "pod", victim, "-n", ns, "--wait=false")
    def replaced():
        pods = get_json(cluster, "pods", "-n", ns)["items"]
        live = [p for p in pods if "deletionTimestamp" not in p["metadata"]]
        return len(live) == 2 and victim not in [p["metadata"]["name"] for p in live]
    eventually("a replacement pod", replaced)


def test_namespace_deletion_removes_everything(cluster):
    ns = make_ns(cluster, "doomed")
    k = lambda *a, **kw: cluster.kubectl(*a, "-n", ns, **kw)
    k("apply", "-f", "-", input=deployment("app", 2, "app:1"))
    k("create", "configmap", "settings", "--from-literal=a=b")
    k("create", "secret", "generic", "creds", "--from-literal=a=b")
    k("rollout", "status", "deployment/app", "--timeout=60s")
    start = time.time()
    cluster.kubectl("delete", "namespace", ns, "--timeout=45s")
    assert time.time() - start < 45
    r = cluster.kubectl("get", "namespace", ns, check=False)
    assert r.returncode != 0 and "NotFound" in r.stderr
    for kind in ["pods", "replicasets", "deployments", "configmaps", "secrets", "serviceaccounts"]:
        items = get_json(cluster, kind, "-A")["items"]
        assert not [i for i in items if i["metadata"]["namespace"] == ns], kind


def test_foreground_deletion_removes_dependents_before_the_owner(cluster):
    """One pod is held by a finalizer of the test's own: the owner (with foregroundDeletion) and its
    ReplicaSet must wait for it, and go once it is released."""
    ns = make_ns(cluster, "foreground")
    k = lambda *a, **kw: cluster.kubectl(*a, "-n", ns, **kw)
    k("apply", "-f", "-", input=deployment("fg", 2, "fg:1"))
    k("rollout", "status", "deployment/fg", "--timeout=60s")
    held = get_json(cluster, "pods", "-n", ns)["items"][0]["metadata"]["name"]
    k("patch", "pod", held, "--type=merge", "-p", '{"metadata":{"finalizers":["e2e.oxkube.io/hold"]}}')
    k("delete", "deployment", "fg", "--cascade=foreground", "--wait=false")
    d = get_json(cluster, "deploy", "fg", "-n", ns)
    assert "foregroundDeletion" in d["metadata"]["finalizers"]
    assert "deletionTimestamp" in d["metadata"]

    def only_the_held_pod_left():
        pods = get_json(cluster, "pods", "-n", ns)["items"]
        return [p["metadata"]["name"] for p in pods] == [held]
    eventually("the other pod gone", only_the_held_pod_left, timeout=45)
    pod = get_json(cluster, "pod", held, "-n", ns)
    assert "deletionTimestamp" in pod["metadata"], "the held dependent is being deleted"
    assert get_json(cluster, "deploy", "fg", "-n", ns)["metadata"]["name"] == "fg", "the owner waits"
    assert len(get_json(cluster, "rs", "-n", ns)["items"]) == 1, "the ReplicaSet waits too"
    k("patch", "pod", held, "--type=json", "-p", '[{"op":"remove","path":"/metadata/finalizers"}]')

    def all_gone():
        deploy = k("get", "deploy", "fg", "--ignore-not-found", "-o", "name").stdout.strip()
        rs = get_json(cluster, "rs", "-n", ns)["items"]
        pods = get_json(cluster, "pods", "-n", ns)["items"]
        return not deploy and not rs and not pods
    eventually("the deployment, its ReplicaSet and pods gone", all_gone, timeout=45)


def test_orphan_deletion_leaves_dependents(cluster):
    ns = make_ns(cluster, "orphan")
    k = lambda *a, **kw: cluster.kubectl(*a, "-n", ns, **kw)
    k("apply", "-f", "-", input=f"""apiVersion: apps/v1
kind: ReplicaSet
metadata: {{name: keep}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: keep}}}}
  template:
    metadata: {{labels: {{app: keep}}}}
    spec:
      nodeName: {NODE}
      containers: [{{name: main, image: x, command: [sleep, "3600"]}}]
""")
    eventually("2 pods", lambda: len(get_json(cluster, "pods", "-n", ns)["items"]) == 2)
    k("delete", "rs", "keep", "--cascade=orphan", "--timeout=60s")
    assert k("get", "rs", "keep", "--ignore-not-found", "-o", "name").stdout.strip() == ""
    pods = get_json(cluster, "pods", "-n", ns)["items"]
    assert len(pods) == 2
    assert all(not p["metadata"].get("ownerReferences") for p in pods)
    assert all("deletionTimestamp" not in p["metadata"] for p in pods)


def test_background_deletion_removes_dependents(cluster):
    ns = make_ns(cluster, "background")
    k = lambda *a, **kw: cluster.kubectl(*a, "-n", ns, **kw)
    k("apply", "-f", "-", input=deployment("bg", 2, "bg:1"))
    k("rollout", "status", "deployment/bg", "--timeout=60s")
    k("delete", "deployment", "bg")
    eventually("replica sets and pods gone",
               lambda: not get_json(cluster, "rs", "-n", ns)["items"]
               and not get_json(cluster, "pods", "-n", ns)["items"], timeout=45)


def test_a_resource_quota_shows_what_its_namespace_uses(cluster):
    ns = make_ns(cluster, "quota")
    k = lambda *a, **kw: cluster.kubectl(*a, "-n", ns, **kw)
    k("create", "quota", "q", "--hard=pods=10,requests.cpu=4,limits.memory=8Gi,configmaps=20,"
      "count/deployments.apps=5,services=3")
    k("apply", "-f", "-", input=deployment("web", 2, "nginx:1.0", extra_spec="").replace(
        "command: [\"sleep\", \"3600\"]",
        "command: [\"sleep\", \"3600\"]\n        resources:\n"
        "          requests: {cpu: 250m}\n          limits: {memory: 1Gi}"))
    k("create", "configmap", "extra", "--from-literal=a=b")
    k("create", "service", "clusterip", "web", "--tcp=80:80")

    def used():
        status = get_json(cluster, "resourcequota", "q", "-n", ns).get("status", {})
        return status.get("used")

    want = {"pods": "2", "requests.cpu": "500m", "limits.memory": "2Gi",
            # kube-root-ca.crt, published by the ServiceAccount controller, counts too.
            "configmaps": "2", "count/deployments.apps": "1", "services": "1"}
    eventually("the quota's usage", lambda: used() == want, timeout=30)
    out = k("describe", "quota", "q").stdout
    assert "requests.cpu" in out and "500m" in out
    # Usage follows deletions.
    k("scale", "deployment/web", "--replicas=1")
    k("delete", "configmap", "extra")
    want.update({"pods": "1", "requests.cpu": "250m", "limits.memory": "1Gi", "configmaps": "1"})
    eventually("the quota's usage after deletions", lambda: used() == want, timeout=30)
