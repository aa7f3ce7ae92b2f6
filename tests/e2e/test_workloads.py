"""The workload and node controllers inside `oxkube server`, driven by the real kubectl 1.37 with
hollow nodes (`oxkube agent --hollow 3`, plus one more agent whose node is made to fall silent):
Jobs with failures and backoffLimit, Indexed Jobs, StatefulSet ordered start with claims,
Endpoints/EndpointSlices following pods, a DaemonSet on every node, a silent node tainted and its pods evicted, and a CronJob
firing within one real minute.

Pod templates name a hollow node in `spec.nodeName`, except the DaemonSet's, which the server's
scheduler places."""

import json
import os
import signal
import subprocess
import time

import pytest

from conftest import OXKUBE, Server, eventually

NODE = "wl-hollow-0"
DOOMED = "wlx-hollow-0"


def agent(s, name, count):
    token = open(os.path.join(s.dir, "node-token")).read().strip()
    log = open(os.path.join(s.dir, f"agent-{name}.log"), "w")
    proc = subprocess.Popen(
        [OXKUBE, "agent", "--server", f"https://127.0.0.1:{s.port}", "--token", token,
         "--hollow", str(count), "--node-name", name, "--data-dir", os.path.join(s.dir, f"agent-{name}")],
        stdout=log, stderr=subprocess.STDOUT)
    return proc, log


CRONJOB = """
apiVersion: batch/v1
kind: CronJob
metadata: {name: tick, namespace: default}
spec:
  schedule: "*/1 * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          nodeName: wl-hollow-0
          restartPolicy: Never
          containers: [{name: c, image: busybox, command: [sh, -c, "exit 0"]}]
"""


@pytest.fixture(scope="module")
def cluster():
    s = Server("--node-monitor-grace-period", "15s")
    procs = [agent(s, "wl", 3), agent(s, "wlx", 1)]
    try:
        def nodes_ready():
            r = s.kubectl("get", "nodes", "-o", "json", check=False)
            if r.returncode != 0:
                return False
            items = json.loads(r.stdout)["items"]
            ready = [n for n in items if any(c["type"] == "Ready" and c["status"] == "True"
                                             for c in n["status"].get("conditions", []))]
            return len(ready) == 4
        eventually("four ready hollow nodes", nodes_ready)
        s.agents = procs
        # The CronJob starts first: its test runs last, within the minute.
        s.kubectl("apply", "-f", "-", input=CRONJOB)
        yield s
    finally:
        for proc, log in procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=30)
            log.close()
        s.finish()


def get_json(s, *args):
    return json.loads(s.kubectl("get", *args, "-o", "json").stdout)


def condition(obj, type_):
    return next((c for c in obj.get("status", {}).get("conditions", []) if c["type"] == type_), None)


def test_nodes_get_a_pod_cidr_from_the_cluster_cidr(cluster):
    def cidrs():
        items = get_json(cluster, "nodes")["items"]
        got = sorted(n["spec"].get("podCIDR", "") for n in items)
        return got if all(got) else None
    got = eventually("pod CIDRs", cidrs)
    assert len(set(got)) == 4
    assert all(c.startswith("10.42.") and c.endswith(".0/24") for c in got)


def test_job_with_failures_exceeds_its_backoff_limit(cluster):
    cluster.kubectl("apply", "-f", "-", input=f"""
apiVersion: batch/v1
kind: Job
metadata: {{name: flaky}}
spec:
  backoffLimit: 1
  template:
    spec:
      nodeName: {NODE}
      restartPolicy: Never
      containers: [{{name: c, image: busybox, command: [sh, -c, "exit 1"]}}]
""")
    cluster.kubectl("wait", "--for=condition=Failed", "job/flaky", "--timeout=40s", timeout=50)
    job = get_json(cluster, "job", "flaky")
    assert job["status"]["failed"] == 2
    failed = condition(job, "Failed")
    assert failed["reason"] == "BackoffLimitExceeded"
    assert failed["message"] == "Job has reached the specified backoff limit"
    assert condition(job, "FailureTarget")["status"] == "True"
    pods = get_json(cluster, "pods", "-l", "job-name=flaky")["items"]
    assert len(pods) == 2
    assert all("batch.kubernetes.io/job-tracking" not in p["metadata"].get("finalizers", []) for p in pods)
    out = cluster.kubectl("get", "job", "flaky").stdout
    assert "Failed" in out and "0/1" in out


def test_indexed_job_completes_every_index(cluster):
    cluster.kubectl("apply", "-f", "-", input=f"""
apiVersion: batch/v1
kind: Job
metadata: {{name: indexed}}
spec:
  completions: 3
  parallelism: 3
  completionMode: Indexed
  template:
    spec:
      nodeName: {NODE}
      restartPolicy: Never
      containers: [{{name: c, image: busybox, command: [sh, -c, "exit 0"]}}]
""")
    cluster.kubectl("wait", "--for=condition=Complete", "job/indexed", "--timeout=30s", timeout=40)
    job = get_json(cluster, "job", "indexed")
    assert job["status"]["succeeded"] == 3
    assert job["status"]["completedIndexes"] == "0-2"
    assert condition(job, "Complete")["reason"] == "CompletionsReached"
    assert job["status"].get("completionTime")
    pods = get_json(cluster, "pods", "-l", "job-name=indexed")["items"]
    indexes = sorted(p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"] for p in pods)
    assert indexes == ["0", "1", "2"]
    env = pods[0]["spec"]["containers"][0]["env"]
    assert any(e["name"] == "JOB_COMPLETION_INDEX" for e in env)
    assert "3/3" in cluster.kubectl("get", "job", "indexed").stdout


def test_statefulset_starts_in_order_with_claims(cluster):
    cluster.kubectl("apply", "-f", "-", input=f"""
apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: web}}
spec:
  replicas: 3
  serviceName: web
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      nodeName: {NODE}
      containers: [{{name: c, image: nginx, command: [sleep, "3600"]}}]
  volumeClaimTemplates:
  - metadata: {{name: www}}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {{requests: {{storage: 1Gi}}}}
""")
    cluster.kubectl("rollout", "status", "statefulset/web", "--timeout=40s", timeout=50)
    pods = {p["metadata"]["name"]: p for p in get_json(cluster, "pods", "-l", "app=web")["items"]}
    assert sorted(pods) == ["web-0", "web-1", "web-2"]
    for i in (1, 2):
        created = pods[f"web-{i}"]["metadata"]["creationTimestamp"]
        prev_ready = condition(pods[f"web-{i - 1}"], "Ready")["lastTransitionTime"]
        assert created >= prev_ready, f"web-{i} created before web-{i - 1} was ready"
        assert pods[f"web-{i}"]["spec"]["hostname"] == f"web-{i}"
    claims = sorted(c["metadata"]["name"] for c in get_json(cluster, "pvc")["items"])
    assert {"www-web-0", "www-web-1", "www-web-2"} <= set(claims)
    sts = get_json(cluster, "statefulset", "web")
    assert sts["status"]["readyReplicas"] == 3
    assert sts["status"]["currentRevision"] == sts["status"]["updateRevision"]
    assert "3/3" in cluster.kubectl("get", "statefulset", "web").stdout


def test_endpoints_and_slices_follow_the_pods(cluster):
    cluster.kubectl("apply", "-f", "-", input="""
apiVersion: v1
kind: Service
metadata: {name: echo}
spec:
  selector: {app: echo}
  ports: [{name: http, port: 80, targetPort: http}]
""")
    for name in ("echo-a", "echo-b"):
        cluster.kubectl("apply", "-f", "-", input=f"""
apiVersion: v1
kind: Pod
metadata: {{name: {name}, labels: {{app: echo}}}}
spec:
  nodeName: {NODE}
  containers:
  - name: c
    image: nginx
    command: [sleep, "3600"]
    ports: [{{name: http, containerPort: 8080}}]
""")

    def addresses():
        e = get_json(cluster, "endpoints", "echo")
        subsets = e.get("subsets") or []
        return sorted(a["targetRef"]["name"] for s in subsets for a in s.get("addresses", []))

    eventually("both pods ready in the Endpoints", lambda: addresses() == ["echo-a", "echo-b"])
    e = get_json(cluster, "endpoints", "echo")
    assert e["subsets"][0]["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]

    def slice_endpoints():
        slices = get_json(cluster, "endpointslices", "-l", "kubernetes.io/service-name=echo")["items"]
        if len(slices) != 1:
            return None
        return sorted((ep["targetRef"]["name"], ep["conditions"].get("ready"))
                      for ep in slices[0].get("endpoints") or [])

    eventually("both pods ready in the slice",
               lambda: slice_endpoints() == [("echo-a", True), ("echo-b", True)])
    cluster.kubectl("delete", "pod", "echo-b", "--wait=false")
    eventually("echo-b gone from the Endpoints", lambda: addresses() == ["echo-a"])
    eventually("echo-b not ready in the slice",
               lambda: (slice_endpoints() or [])[:1] == [("echo-a", True)]
               and all(not r for n, r in (slice_endpoints() or [])[1:]))


def test_daemonset_runs_one_pod_on_every_node_through_the_scheduler(cluster):
    ds = {"apiVersion": "apps/v1", "kind": "DaemonSet",
          "metadata": {"name": "every-node", "namespace": "default"},
          "spec": {"selector": {"matchLabels": {"app": "every-node"}},
                   "template": {"metadata": {"labels": {"app": "every-node"}},
                                "spec": {"containers": [{"name": "c", "image": "busybox",
                                                         "command": ["sleep", "3600"]}]}}}}
    cluster.kubectl("apply", "-f", "-", input=json.dumps(ds))
    nodes = json.loads(cluster.kubectl("get", "nodes", "-o", "json").stdout)["items"]
    names = sorted(n["metadata"]["name"] for n in nodes)

    def status():
        st = json.loads(cluster.kubectl("get", "ds", "every-node", "-o", "json").stdout).get("status", {})
        return (st.get("desiredNumberScheduled") == len(names) and st.get("numberReady") == len(names)
                and st.get("updatedNumberScheduled") == len(names))

    eventually("every node's pod ready", status, timeout=60)
    pods = json.loads(cluster.kubectl("get", "pods", "-l", "app=every-node", "-o", "json").stdout)["items"]
    assert sorted(p["spec"]["nodeName"] for p in pods) == names
    # Placed by the scheduler (the controller sets node affinity, not nodeName), tolerating a
    # node's trouble as upstream's DaemonSet pods do.
    for p in pods:
        terms = p["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert terms["nodeSelectorTerms"][0]["matchFields"][0]["values"] == [p["spec"]["nodeName"]]
        keys = {t.get("key") for t in p["spec"].get("tolerations", [])}
        assert {"node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"} <= keys, keys
    out = cluster.kubectl("rollout", "status", "ds/every-node", "--timeout=30s").stdout
    assert "successfully rolled out" in out, out
    cluster.kubectl("delete", "ds", "every-node", "--wait=true", "--timeout=60s")


def test_a_silent_node_is_tainted_and_its_pods_evicted(cluster):
    cluster.kubectl("apply", "-f", "-", input=f"""
apiVersion: v1
kind: Pod
metadata: {{name: doomed}}
spec:
  nodeName: {DOOMED}
  tolerations:
  - {{key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 1}}
  - {{key: node.kubernetes.io/not-ready, operator: Exists, effect: NoExecute, tolerationSeconds: 1}}
  containers: [{{name: c, image: busybox, command: [sleep, "3600"]}}]
""")
    cluster.kubectl("wait", "--for=condition=Ready", "pod/doomed", "--timeout=20s", timeout=30)
    # Silence the node's kubelet: no more lease renewals or status.
    silent, _ = cluster.agents[1]
    silent.send_signal(signal.SIGKILL)
    silent.wait(timeout=10)

    def tainted():
        node = get_json(cluster, "node", DOOMED)
        taints = {(t["key"], t["effect"]) for t in node["spec"].get("taints", [])}
        ready = condition(node, "Ready")
        return (ready["status"] == "Unknown"
                and ("node.kubernetes.io/unreachable", "NoExecute") in taints
                and ("node.kubernetes.io/unreachable", "NoSchedule") in taints) and ready
    ready = eventually("the node Unknown and tainted", tainted, timeout=40)
    assert ready["reason"] == "NodeStatusUnknown"
    assert ready["message"] == "Kubelet stopped posting node status."

    def evicted():
        r = cluster.kubectl("get", "pod", "doomed", "-o", "json", check=False)
        if r.returncode != 0:
            return True
        pod = json.loads(r.stdout)
        target = condition(pod, "DisruptionTarget")
        return pod["metadata"].get("deletionTimestamp") and target and target["reason"] == "DeletionByTaintManager"
    eventually("the pod evicted", evicted, timeout=20)


def test_cronjob_fires_within_a_minute(cluster):
    def fired():
        jobs = get_json(cluster, "jobs")["items"]
        return [j for j in jobs if any(r["kind"] == "CronJob" and r["name"] == "tick"
                                      for r in j["metadata"].get("ownerReferences", []))]
    jobs = eventually("a job of the cronjob", fired, timeout=70, interval=0.5)
    job = jobs[0]
    assert job["metadata"]["name"].startswith("tick-")
    minutes = int(job["metadata"]["name"].split("-")[1])
    scheduled = job["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"]
    assert scheduled.endswith(":00+00:00")
    assert minutes * 60 <= time.time() + 1
    cj = eventually("lastScheduleTime", lambda: get_json(cluster, "cronjob", "tick")["status"].get("lastScheduleTime") and get_json(cluster, "cronjob", "tick"))
    assert cj["status"]["lastScheduleTime"].endswith(":00Z")
