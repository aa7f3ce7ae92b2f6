"""Starts the real `oxkube server` binary for the end-to-end tests and hands out kubectl and the
official Python client pointed at it."""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest
from kubernetes import client, config

OXKUBE = os.environ.get("OXKUBE_BIN", "target/debug/oxkube")


def eventually(what, check, timeout=60, interval=0.1):
    """Polls `check` until it returns something truthy (returned), or fails after `timeout` s."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One `oxkube server` process on a free loopback port and a fresh data directory. The cluster
    DNS (port 53 of the node's address: one per machine) runs only when asked for with `dns`."""

    def __init__(self, *extra, agent=False, dns=False, bind="127.0.0.1"):
        self.dir = tempfile.mkdtemp(prefix="oxkube-e2e-")
        self.port = free_port()
        self.log = open(os.path.join(self.dir, "server.log"), "w")
        self.proc = subprocess.Popen(
            [OXKUBE, "server", "--data-dir", self.dir, "--bind-address", bind,
             "--secure-port", str(self.port), *([] if agent else ["--disable-agent"]),
             *([] if dns else ["--disable-dns"]), *extra],
            stdout=self.log, stderr=subprocess.STDOUT)
        self.kubeconfig = os.path.join(self.dir, "kubeconfig")
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("server exited early:\n" + self.read_log())
            if os.path.exists(self.kubeconfig):
                r = self.kubectl("get", "--raw", "/readyz", check=False)
                if r.returncode == 0 and r.stdout.strip() == "ok":
                    return
            time.sleep(0.1)
        # Never left running (it would hold ports and, with a node, containerd) when a test gives up.
        self.proc.kill()
        self.proc.wait(timeout=30)
        raise RuntimeError("server never became ready:\n" + self.read_log())

    def read_log(self):
        with open(os.path.join(self.dir, "server.log")) as f:
            return f.read()

    def kubectl(self, *args, check=True, input=None, env=None, timeout=60):
        full_env = dict(os.environ, KUBECONFIG=self.kubeconfig)
        full_env.update(env or {})
        r = subprocess.run(["kubectl", *args], capture_output=True, text=True, input=input,
                           env=full_env, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
        return r

    def api_client(self):
        return config.new_client_from_config(config_file=self.kubeconfig)

    def stop(self):
        """SIGTERM, as a service manager stops it; the server must exit 0."""
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=30)
        self.log.close()
        return code

    def finish(self):
        """Stops the server, asserts a clean exit (showing its log if not), and removes its data."""
        code = self.stop()
        assert code == 0, self.read_log()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def server():
    s = Server()
    yield s
    s.finish()


@pytest.fixture(scope="session")
def api(server):
    return server.api_client()


@pytest.fixture(scope="session")
def core(api):
    return client.CoreV1Api(api)


@pytest.fixture
def namespace(server, request):
    """A namespace of the test's own."""
    name = "t-" + request.node.name.replace("_", "-")[:50].lower().strip("-")
    server.kubectl("apply", "-f", "-",
                   input=f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n")
    return name


def manifest(name):
    return os.path.join(os.path.dirname(__file__), "manifests", name)


BUSYBOX = "oxkube.local/busybox:1.35"

# A web server that answers with its pod's name and, on SIGTERM, keeps serving for two seconds
# before it exits (the drain a preStop sleep gives upstream).
SERVE = ("mkdir -p /www && hostname > /www/index.html && httpd -p 8080 -h /www && "
         "trap 'sleep 2; exit 0' TERM; while true; do sleep 1; done")

# `get IP [PORT]`: the body of http://IP:PORT/ (port 80 by default), or FAIL. busybox-static's wget
# crashes without NSS files, nc does not; nc's own complaints are dropped (they would race FAIL into
# the log, stderr and stdout being separate streams).
GET = ("get() { r=$(printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 $1 ${2:-80} 2>/dev/null | tail -n 1); "
       "[ -n \"$r\" ] && echo \"$r\" || echo FAIL; }; ")


def build_image(tmp, name, entrypoint, files=None, cmd=()):
    """An image of busybox-static (every applet linked) plus `files`, built and imported."""
    rootfs = os.path.join(tmp, name.replace("/", "_").replace(":", "_"))
    os.makedirs(os.path.join(rootfs, "bin"))
    shutil.copy("/bin/busybox", os.path.join(rootfs, "bin", "busybox"))
    applets = subprocess.run(["/bin/busybox", "--list"], capture_output=True, text=True,
                             check=True).stdout.split()
    for applet in applets:
        if applet != "busybox":
            os.symlink("busybox", os.path.join(rootfs, "bin", applet))
    for path, (mode, text) in (files or {}).items():
        full = os.path.join(rootfs, path)
        with open(full, "w") as f:
            f.write(text)
        os.chmod(full, mode)
    out = rootfs + ".tar"
    subprocess.run([OXKUBE, "image", "build", "--rootfs", rootfs, "--entrypoint",
                    json.dumps(entrypoint), "--cmd", json.dumps(list(cmd)), "-t", name, "-o", out],
                   check=True)
    return out


def remove_proxy_state():
    """The service proxy leaves its nftables table and pod routes in place on exit (as upstream's
    kube-proxy, so a restart does not interrupt Services); a test's node removes them."""
    subprocess.run(["nft", "delete", "table", "ip", "oxkube-proxy"], capture_output=True, check=False)
    subprocess.run(["ip", "route", "flush", "proto", "117"], capture_output=True, check=False)


@contextlib.contextmanager
def real_node(name, *extra, dns=False):
    """`oxkube server` running this machine's node `name` (containerd, CNI, the service proxy),
    with the busybox test images imported; on the way out every pod is deleted, the server stopped
    (it must exit 0), and its bridge, mounts, rules and data removed."""
    s = Server("--node-name", name, *extra, agent=True, dns=dns)
    tmp = tempfile.mkdtemp(prefix="oxkube-img-")
    try:
        eventually("the node to be Ready", lambda: s.kubectl(
            "get", "node", name, "-o",
            "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
            check=False).stdout == "True")
        for image in [build_image(tmp, BUSYBOX, [], cmd=["sh"]),
                      build_image(tmp, "oxkube.local/hello:1", ["/hello.sh"],
                                  {"hello.sh": (0o755, "#!/bin/sh\necho hello from $0\nexit 0\n")})]:
            subprocess.run([OXKUBE, "image", "import", image, "--data-dir", s.dir], check=True)
        yield s
    finally:
        s.kubectl("delete", "deployments,replicasets,statefulsets,daemonsets,jobs,cronjobs", "--all",
                  "--all-namespaces", "--wait=false", check=False)
        s.kubectl("delete", "pods", "--all", "--all-namespaces", "--grace-period=1",
                  "--wait=false", check=False)
        try:
            eventually("every pod to be gone", lambda: s.kubectl(
                "get", "pods", "-A", "-o", "name", check=False).stdout.strip() == "", timeout=30)
        finally:
            code = s.stop()
            log = s.read_log()
            bridges = subprocess.run(["ip", "-o", "link", "show", "type", "bridge"],
                                     capture_output=True, text=True).stdout
            for line in bridges.splitlines():
                bridge = line.split(":")[1].strip()
                if bridge.startswith("oxk"):
                    subprocess.run(["ip", "link", "del", bridge], check=False)
            remove_proxy_state()
            with open("/proc/mounts") as f:
                mounts = [line.split()[1] for line in f if line.split()[1].startswith(s.dir)]
            for m in reversed(mounts):
                subprocess.run(["umount", m], capture_output=True, check=False)
            shutil.rmtree(s.dir, ignore_errors=True)
            shutil.rmtree(tmp, ignore_errors=True)
        assert code == 0, log
