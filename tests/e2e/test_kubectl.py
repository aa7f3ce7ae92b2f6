"""The real kubectl 1.37 against `oxkube server`: what a Kubernetes user types, answered as upstream."""

import hashlib
import http.client
import json
import os
import ssl
import stat
import subprocess
import tempfile
import time

from conftest import manifest


def test_a_fresh_cluster_has_its_namespaces_and_the_kubernetes_service(server):
    out = server.kubectl("get", "ns").stdout
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"]:
        assert ns in out
    assert "Active" in out
    svc = json.loads(server.kubectl("get", "svc", "kubernetes", "-o", "json").stdout)
    assert svc["spec"]["clusterIP"] == "10.96.0.1"
    assert svc["spec"]["ports"][0]["port"] == 443
    eps = json.loads(server.kubectl("get", "endpointslices", "-l", "kubernetes.io/service-name=kubernetes", "-o", "json").stdout)
    assert len(eps["items"]) == 1
    version = server.kubectl("version", "-o", "json").stdout
    assert json.loads(version)["serverVersion"]["minor"] == "37"


def test_anonymous_requests_get_401_except_health(server):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE

    def status(path, headers=None):
        conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=ctx, timeout=10)
        conn.request("GET", path, headers=headers or {})
        r = conn.getresponse()
        body = r.read()
        conn.close()
        return r.status, body

    for path in ["/healthz", "/livez", "/readyz", "/version", "/cacerts"]:
        assert status(path)[0] == 200, path
    ca = status("/cacerts")[1].decode()
    token = open(os.path.join(server.dir, "node-token")).read().strip()
    der = ssl.PEM_cert_to_DER_cert(ca)
    assert token.startswith("K10" + hashlib.sha256(der).hexdigest() + "::server:"), "the token pins the CA"
    code, body = status("/api/v1/namespaces")
    assert code == 401 and json.loads(body)["reason"] == "Unauthorized"
    assert status("/api/v1/namespaces", {"Authorization": "Bearer wrong"})[0] == 401
    url = f"https://127.0.0.1:{server.port}"
    r = subprocess.run(["kubectl", "--server", url, "--insecure-skip-tls-verify", "--kubeconfig", "/dev/null",
                        "--token", "wrong", "get", "ns"], capture_output=True, text=True)
    # kubectl says "Unauthorized", or client-go's discovery words for a 401 when nothing is cached
    assert r.returncode != 0 and "You must be logged in to the server" in r.stderr, r.stderr


def test_upstream_example_manifests_apply_unchanged(server, namespace):
    for name in ["nginx-deployment.yaml", "service.yaml", "configmap.yaml", "cronjob.yaml"]:
        r = server.kubectl("apply", "-n", namespace, "-f", manifest(name))
        assert "created" in r.stdout, r.stdout
    out = server.kubectl("get", "deploy,svc,cm,cronjob", "-n", namespace).stdout
    for want in ["deployment.apps/nginx-deployment", "service/my-service", "configmap/game-demo", "cronjob.batch/hello"]:
        assert want in out, out
    d = json.loads(server.kubectl("get", "deploy", "nginx-deployment", "-n", namespace, "-o", "json").stdout)
    assert d["metadata"]["generation"] == 1
    assert d["spec"]["strategy"]["rollingUpdate"]["maxSurge"] == "25%"
    assert d["spec"]["revisionHistoryLimit"] == 10
    assert d["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    svc = json.loads(server.kubectl("get", "svc", "my-service", "-n", namespace, "-o", "json").stdout)
    assert svc["spec"]["clusterIP"].startswith("10.")
    assert svc["spec"]["sessionAffinity"] == "None"


def test_apply_twice_with_a_change_then_server_side_with_a_conflict(server, namespace):
    path = os.path.join(tempfile.mkdtemp(), "d.yaml")
    text = open(manifest("nginx-deployment.yaml")).read()
    open(path, "w").write(text)
    server.kubectl("apply", "-n", namespace, "-f", path)
    unchanged = server.kubectl("apply", "-n", namespace, "-f", path).stdout
    assert "unchanged" in unchanged, unchanged
    open(path, "w").write(text.replace("replicas: 3", "replicas: 4"))
    assert "configured" in server.kubectl("apply", "-n", namespace, "-f", path).stdout
    d = json.loads(server.kubectl("get", "deploy", "nginx-deployment", "-n", namespace, "-o", "json").stdout)
    assert (d["spec"]["replicas"], d["metadata"]["generation"]) == (4, 2)

    assert "serverside-applied" in server.kubectl("apply", "--server-side", "-n", namespace, "-f", path).stdout
    open(path, "w").write(text.replace("replicas: 3", "replicas: 6"))
    r = server.kubectl("apply", "--server-side", "--field-manager", "other", "-n", namespace, "-f", path, check=False)
    assert r.returncode != 0
    assert "Apply failed with 1 conflict" in r.stderr and ".spec.replicas" in r.stderr, r.stderr
    server.kubectl("apply", "--server-side", "--field-manager", "other", "--force-conflicts", "-n", namespace, "-f", path)
    d = json.loads(server.kubectl("get", "deploy", "nginx-deployment", "-n", namespace, "-o", "json",
                                  "--show-managed-fields").stdout)
    assert d["spec"]["replicas"] == 6
    managers = {m["manager"] for m in d["metadata"]["managedFields"]}
    assert "other" in managers


def test_get_in_every_output(server, namespace):
    server.kubectl("apply", "-n", namespace, "-f", manifest("nginx-deployment.yaml"))
    wide = server.kubectl("get", "deploy", "-n", namespace, "-o", "wide").stdout
    assert wide.split("\n")[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"]
    assert "nginx:1.14.2" in wide and "app=nginx" in wide
    y = server.kubectl("get", "deploy", "nginx-deployment", "-n", namespace, "-o", "yaml").stdout
    assert "kind: Deployment" in y and "resourceVersion:" in y
    jp = server.kubectl("get", "deploy", "-n", namespace, "-o", "jsonpath={.items[0].metadata.name}").stdout
    assert jp == "nginx-deployment"
    assert "nginx-deployment" in server.kubectl("get", "deploy", "-n", namespace, "-l", "app=nginx").stdout
    assert "No resources found" in server.kubectl("get", "deploy", "-n", namespace, "-l", "app=other").stderr
    by_field = server.kubectl("get", "deploy", "-A", "--field-selector", f"metadata.namespace={namespace}").stdout
    assert by_field.split("\n")[0].split()[0] == "NAMESPACE" and "nginx-deployment" in by_field
    svcs = server.kubectl("get", "svc", "-A").stdout
    assert svcs.split("\n")[0].split() == ["NAMESPACE", "NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]


def test_get_watch_sees_changes(server, namespace):
    watch = subprocess.Popen(["kubectl", "get", "cm", "-n", namespace, "--watch", "--request-timeout=8s"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=dict(os.environ, KUBECONFIG=server.kubeconfig))
    time.sleep(1.5)
    server.kubectl("apply", "-n", namespace, "-f", "-",
                   input="apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: watched\ndata:\n  a: b\n")
    try:
        out, _ = watch.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        watch.kill()
        out, _ = watch.communicate()
    assert "watched" in out, out


def test_describe_edit_patch_label_annotate_scale(server, namespace):
    server.kubectl("apply", "-n", namespace, "-f", manifest("nginx-deployment.yaml"))
    d = server.kubectl("describe", "deploy", "nginx-deployment", "-n", namespace).stdout
    assert "RollingUpdateStrategy:  25% max unavailable, 25% max surge" in d, d

    editor = os.path.join(tempfile.mkdtemp(), "editor.sh")
    open(editor, "w").write('#!/bin/sh\nsed -i "s/replicas: 3/replicas: 5/" "$1"\n')
    os.chmod(editor, stat.S_IRWXU)
    server.kubectl("edit", "deploy", "nginx-deployment", "-n", namespace, env={"KUBE_EDITOR": editor})
    get = lambda path: server.kubectl("get", "deploy", "nginx-deployment", "-n", namespace, "-o", f"jsonpath={path}").stdout
    assert get("{.spec.replicas}") == "5"

    server.kubectl("patch", "deploy", "nginx-deployment", "-n", namespace, "--type=merge", "-p", '{"spec":{"replicas":2}}')
    assert get("{.spec.replicas}") == "2"
    server.kubectl("patch", "deploy", "nginx-deployment", "-n", namespace, "--type=json",
                   "-p", '[{"op":"add","path":"/spec/minReadySeconds","value":3}]')
    assert get("{.spec.minReadySeconds}") == "3"
    server.kubectl("patch", "deploy", "nginx-deployment", "-n", namespace, "-p",
                   '{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"busybox"}]}}}}')
    assert get("{.spec.template.spec.containers[*].name}") == "sidecar nginx"

    server.kubectl("label", "deploy", "nginx-deployment", "-n", namespace, "tier=web")
    server.kubectl("annotate", "deploy", "nginx-deployment", "-n", namespace, "note=hello")
    assert get("{.metadata.labels.tier}") == "web"
    assert get("{.metadata.annotations.note}") == "hello"
    server.kubectl("scale", "deploy", "nginx-deployment", "-n", namespace, "--replicas=7")
    assert get("{.spec.replicas}") == "7"
    scale = json.loads(server.kubectl("get", "--raw", f"/apis/apps/v1/namespaces/{namespace}/deployments/nginx-deployment/scale").stdout)
    assert scale["kind"] == "Scale" and scale["spec"]["replicas"] == 7 and scale["status"]["selector"] == "app=nginx"


def test_delete_wait_and_foreground(server, namespace):
    for name in ["gone", "kept"]:
        server.kubectl("apply", "-n", namespace, "-f", "-",
                       input=f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n")
    waiter = subprocess.Popen(["kubectl", "wait", "--for=delete", "cm/gone", "-n", namespace, "--timeout=20s"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=dict(os.environ, KUBECONFIG=server.kubeconfig))
    time.sleep(1)
    assert "deleted" in server.kubectl("delete", "cm", "gone", "-n", namespace, "--wait").stdout
    out, err = waiter.communicate(timeout=30)
    assert waiter.returncode == 0, err

    # Foreground deletion of an object without dependents: the garbage collector finishes it.
    server.kubectl("delete", "cm", "kept", "-n", namespace, "--cascade=foreground", "--timeout=30s")
    r = server.kubectl("get", "cm", "kept", "-n", namespace, check=False)
    assert r.returncode != 0 and "NotFound" in r.stderr
    # A finalizer of someone else's holds the object, marked, until it is removed.
    server.kubectl("apply", "-n", namespace, "-f", "-", input=(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: held\n  finalizers: [e2e.oxkube.io/hold]\n"))
    server.kubectl("delete", "cm", "held", "-n", namespace, "--wait=false")
    cm = json.loads(server.kubectl("get", "cm", "held", "-n", namespace, "-o", "json").stdout)
    assert cm["metadata"]["deletionTimestamp"] and cm["metadata"]["finalizers"] == ["e2e.oxkube.io/hold"]
    server.kubectl("patch", "cm", "held", "-n", namespace, "--type=json", "-p", '[{"op":"remove","path":"/metadata/finalizers"}]')
    r = server.kubectl("get", "cm", "held", "-n", namespace, check=False)
    assert r.returncode != 0 and "NotFound" in r.stderr, "removing the last finalizer deletes the object"


def test_discovery_commands(server):
    resources = server.kubectl("api-resources").stdout
    for want in ["deployments", "deploy", "apps/v1", "horizontalpodautoscalers", "leases", "priorityclasses"]:
        assert want in resources
    versions = server.kubectl("api-versions").stdout.split()
    assert {"v1", "apps/v1", "autoscaling/v2", "autoscaling/v1", "batch/v1", "rbac.authorization.k8s.io/v1"} <= set(versions)
    explain = server.kubectl("explain", "deployment.spec.replicas").stdout
    assert "FIELD: replicas <integer>" in explain
    explain = server.kubectl("explain", "pods.spec.containers").stdout
    assert "image" in explain


def test_errors_are_statuses(server, namespace):
    bad_name = server.kubectl("apply", "-n", namespace, "-f", "-", check=False,
                              input="apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Not_Valid\n")
    assert bad_name.returncode != 0 and "is invalid" in bad_name.stderr, bad_name.stderr
    strict = server.kubectl("apply", "-n", namespace, "-f", "-", check=False,
                            input="apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\nbogus: 1\n")
    assert strict.returncode != 0 and 'unknown field "bogus"' in strict.stderr, strict.stderr
    missing = server.kubectl("get", "deploy", "nope", "-n", namespace, check=False)
    assert 'deployments.apps "nope" not found' in missing.stderr


def test_imperative_commands_send_protobuf_and_work(server):
    """kubectl's typed clients send protobuf bodies (create namespace/configmap/secret/deployment/
    job, expose); `run` sends JSON."""
    ns = "imperative"
    server.kubectl("create", "namespace", ns)
    server.kubectl("create", "configmap", "c", "-n", ns, "--from-literal=a=b")
    server.kubectl("create", "secret", "generic", "s", "-n", ns, "--from-literal=p=q")
    server.kubectl("create", "deployment", "d", "-n", ns, "--image=nginx:1.25", "--replicas=2")
    server.kubectl("create", "job", "j", "-n", ns, "--image=busybox", "--", "echo", "hi")
    server.kubectl("run", "p", "-n", ns, "--image=busybox", "--", "sleep", "10")
    server.kubectl("expose", "deployment", "d", "-n", ns, "--port=80")
    get = lambda *a: json.loads(server.kubectl("get", *a, "-n", ns, "-o", "json").stdout)
    assert get("cm", "c")["data"] == {"a": "b"}
    assert get("secret", "s")["data"] == {"p": "cQ=="}
    d = get("deploy", "d")
    assert d["spec"]["replicas"] == 2 and d["spec"]["strategy"]["type"] == "RollingUpdate"
    assert get("job", "j")["spec"]["template"]["spec"]["containers"][0]["command"] == ["echo", "hi"]
    assert get("pod", "p")["spec"]["containers"][0]["args"] == ["sleep", "10"]
    assert get("svc", "d")["spec"]["selector"] == {"app": "d"}


def test_a_list_manifest_is_validated_with_openapi_v2_and_created(server, namespace):
    """For a `List`, kubectl validates each item against `/openapi/v2` in protobuf (gnostic)."""
    items = ("apiVersion: v1\nkind: List\nitems:\n"
             "- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: a}\n  data: {x: '1'}\n"
             "- apiVersion: v1\n  kind: Secret\n  metadata: {name: b}\n  stringData: {y: '2'}\n")
    out = server.kubectl("create", "-n", namespace, "-f", "-", input=items).stdout
    assert "configmap/a created" in out and "secret/b created" in out, out
    bad = items.replace("data: {x: '1'}", "data: {x: '1'}\n  bogus: 1")
    refused = server.kubectl("apply", "-n", namespace, "-f", "-", check=False, input=bad)
    assert refused.returncode != 0, refused.stdout
    assert 'ValidationError(ConfigMap): unknown field "bogus" in io.k8s.api.core.v1.ConfigMap' \
        in refused.stderr, refused.stderr
