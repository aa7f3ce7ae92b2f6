"""The official Python client (`kubernetes` on PyPI) against `oxkube server`: paging, watch from a
resourceVersion, optimistic concurrency, and 410 Gone after compaction."""

import json
import time

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from conftest import Server


# The ServiceAccount controller publishes the cluster CA in every namespace, as upstream does.
ROOT_CA = "kube-root-ca.crt"

def configmap(name, **data):
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, labels={"set": "paging"}), data=data)


def test_list_with_limit_and_continue_is_one_consistent_snapshot(core, namespace):
    for i in range(25):
        core.create_namespaced_config_map(namespace, configmap(f"cm-{i:02}", i=str(i)))
    first = core.list_namespaced_config_map(namespace, limit=10, label_selector="set=paging")
    assert len(first.items) == 10 and first.metadata._continue
    # a write between pages is not seen by the pages of the first list
    core.create_namespaced_config_map(namespace, configmap("cm-99"))
    names = [c.metadata.name for c in first.items]
    token = first.metadata._continue
    while token:
        page = core.list_namespaced_config_map(namespace, limit=10, _continue=token, label_selector="set=paging")
        assert page.metadata.resource_version == first.metadata.resource_version
        names += [c.metadata.name for c in page.items]
        token = page.metadata._continue
    assert names == [f"cm-{i:02}" for i in range(25)]
    everything = core.list_namespaced_config_map(namespace, label_selector="set=paging")
    assert len(everything.items) == 26


def test_watch_from_a_resource_version_replays_what_followed(core, namespace):
    rv = core.list_namespaced_config_map(namespace).metadata.resource_version
    core.create_namespaced_config_map(namespace, configmap("w1", a="1"))
    core.patch_namespaced_config_map("w1", namespace, {"data": {"a": "2"}})
    core.delete_namespaced_config_map("w1", namespace)
    seen = []
    for event in watch.Watch().stream(core.list_namespaced_config_map, namespace,
                                      resource_version=rv, timeout_seconds=3):
        if event["object"].metadata.name == ROOT_CA:
            continue
        seen.append((event["type"], event["object"].metadata.name, (event["object"].data or {}).get("a")))
        if len(seen) == 3:
            break
    assert seen == [("ADDED", "w1", "1"), ("MODIFIED", "w1", "2"), ("DELETED", "w1", "2")]


def test_a_stale_update_is_409_conflict(core, namespace):
    core.create_namespaced_config_map(namespace, configmap("c", v="1"))
    stale = core.read_namespaced_config_map("c", namespace)
    fresh = core.read_namespaced_config_map("c", namespace)
    fresh.data = {"v": "2"}
    core.replace_namespaced_config_map("c", namespace, fresh)
    stale.data = {"v": "3"}
    with pytest.raises(ApiException) as e:
        core.replace_namespaced_config_map("c", namespace, stale)
    assert e.value.status == 409
    assert "the object has been modified" in e.value.body
    with pytest.raises(ApiException) as e:
        core.create_namespaced_config_map(namespace, configmap("c"))
    assert e.value.status == 409 and "AlreadyExists" in e.value.body


def test_a_watch_from_before_compaction_is_410_gone():
    server = Server("--compaction-interval-seconds", "1")
    try:
        core = client.CoreV1Api(server.api_client())
        old = core.list_namespaced_config_map("default").metadata.resource_version
        for i in range(3):
            core.create_namespaced_config_map("default", configmap(f"x{i}"))
        time.sleep(4.5)  # at least two compaction ticks: everything before them is gone
        with pytest.raises(ApiException) as e:
            for _ in watch.Watch().stream(core.list_namespaced_config_map, "default",
                                          resource_version=old, timeout_seconds=3):
                pass
        assert e.value.status == 410
        with pytest.raises(ApiException) as e:
            core.list_namespaced_config_map("default", resource_version=old, resource_version_match="Exact")
        assert e.value.status == 410
    finally:
        server.finish()


def test_watch_list_sends_initial_events_then_the_end_bookmark(core, namespace):
    """client-go's WatchList (kubectl wait / rollout status) relies on this stream shape."""
    for name in ["a", "b"]:
        core.create_namespaced_config_map(namespace, configmap(name))
    resp = core.list_namespaced_config_map(
        namespace, watch=True, send_initial_events=True, resource_version_match="NotOlderThan",
        allow_watch_bookmarks=True, timeout_seconds=2, _preload_content=False)
    events = [json.loads(line) for line in resp.read().decode().splitlines() if line.strip()]
    events = [e for e in events if e["object"]["metadata"].get("name") != ROOT_CA]
    kinds = [(e["type"], e["object"]["metadata"].get("name")) for e in events]
    assert kinds[:2] == [("ADDED", "a"), ("ADDED", "b")], kinds
    assert kinds[2][0] == "BOOKMARK"
    assert events[2]["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"] == "true"
