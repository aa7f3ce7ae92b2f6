"""Starts the real `oxkube server` binary for the end-to-end tests and hands out kubectl and the
official Python client pointed at it."""

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

    def __init__(self, *extra, agent=False, dns=False):
        self.dir = tempfile.mkdtemp(prefix="oxkube-e2e-")
        self.port = free_port()
        self.log = open(os.path.join(self.dir, "server.log"), "w")
        self.proc = subprocess.Popen(
            [OXKUBE, "server", "--data-dir", self.dir, "--bind-address", "127.0.0.1",
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
