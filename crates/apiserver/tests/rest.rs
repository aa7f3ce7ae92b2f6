//! The verbs' semantics without HTTP: requests parsed as the server parses them and served by
//! `Rest` over a real embedded store (spec/status split, generation, dry run, preconditions,
//! finalizers, graceful pod deletion, binding, scale, deletecollection, apply conflicts).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use serde_json::{Value, json};

use oxkube_apiserver::auth::User;
use oxkube_apiserver::negotiate::{self, BodyType};
use oxkube_apiserver::request::{self, Query, Target};
use oxkube_apiserver::rest::{Call, Output, Rest, SystemClock};
use oxkube_apiserver::status::ApiError;
use oxkube_store::{EmbeddedOptions, EmbeddedStore, Store};

struct Api {
    rest: Rest,
    _dir: tempfile::TempDir,
}

async fn api() -> Api {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> =
        Arc::new(EmbeddedStore::open(EmbeddedOptions::new(dir.path())).expect("store"));
    let rest = Rest::start(
        store,
        Arc::new(SystemClock),
        "10.96.0.0/12".parse().expect("cidr"),
        Duration::from_secs(300),
    )
    .await
    .expect("rest");
    let api = Api { rest, _dir: dir };
    for ns in ["default", "other"] {
        api.ok(
            Method::POST,
            "/api/v1/namespaces",
            json!({"metadata": {"name": ns}}),
        )
        .await;
    }
    api
}

impl Api {
    async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<Value>,
        content_type: &str,
    ) -> Result<Value, ApiError> {
        let (path, query) = match path_and_query.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path_and_query, None),
        };
        let query = Query::parse(query)?;
        let Target::Resource(req) = request::parse(&method, path, &query)? else {
            panic!("{path} is not a resource path");
        };
        let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let answer = self
            .rest
            .call(Call {
                req: &req,
                query: &query,
                body,
                body_type: negotiate::body_type(Some(content_type))?,
                user: &User::anonymous(),
                user_agent: Some("rest-test/1"),
            })
            .await?;
        Ok(match answer.output {
            Output::Object { object, .. } => object,
            Output::Status(s) => s,
            Output::List(list) => {
                json!({"items": list.items.iter().map(|i| i.value().clone()).collect::<Vec<_>>(),
                       "metadata": {"resourceVersion": list.revision.to_string(), "continue": list.continue_token}})
            }
            Output::Watch(_) => panic!("watch in a plain call"),
            Output::Text(_) => panic!("a log stream in a plain call"),
        })
    }

    async fn ok(&self, method: Method, path: &str, body: Value) -> Value {
        self.send(method.clone(), path, Some(body), "application/json")
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    async fn get(&self, path: &str) -> Result<Value, ApiError> {
        self.send(Method::GET, path, None, "application/json").await
    }

    async fn patch(&self, path: &str, content_type: &str, body: Value) -> Result<Value, ApiError> {
        self.send(Method::PATCH, path, Some(body), content_type)
            .await
    }
}

fn deployment(name: &str, replicas: i64) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "nginx:1.25"}]}}}
    })
}

const DEPLOYMENTS: &str = "/apis/apps/v1/namespaces/default/deployments";

#[tokio::test]
async fn generation_moves_with_spec_and_status_is_its_own_door() {
    let api = api().await;
    let d = api
        .ok(Method::POST, DEPLOYMENTS, deployment("web", 1))
        .await;
    assert_eq!(d["metadata"]["generation"], 1);
    assert_eq!(d["status"], json!({}), "status is the server's on create");

    let mut changed = d.clone();
    changed["spec"]["replicas"] = json!(3);
    changed["status"] = json!({"replicas": 99});
    let u = api
        .ok(Method::PUT, &format!("{DEPLOYMENTS}/web"), changed)
        .await;
    assert_eq!(u["metadata"]["generation"], 2);
    assert_eq!(u["status"], json!({}), "the main resource ignores status");

    let mut status = u.clone();
    status["status"] = json!({"replicas": 2, "observedGeneration": 2});
    status["spec"]["replicas"] = json!(7);
    let s = api
        .ok(Method::PUT, &format!("{DEPLOYMENTS}/web/status"), status)
        .await;
    assert_eq!(s["status"]["replicas"], 2);
    assert_eq!(s["spec"]["replicas"], 3, "/status ignores the spec");
    assert_eq!(s["metadata"]["generation"], 2);

    // a label change is not a spec change
    let l = api
        .patch(
            &format!("{DEPLOYMENTS}/web"),
            "application/merge-patch+json",
            json!({"metadata": {"labels": {"x": "y"}}}),
        )
        .await
        .expect("label");
    assert_eq!(l["metadata"]["generation"], 2);
}

#[tokio::test]
async fn stale_writes_conflict_and_preconditions_hold() {
    let api = api().await;
    let d = api
        .ok(Method::POST, DEPLOYMENTS, deployment("web", 1))
        .await;
    let mut first = d.clone();
    first["spec"]["replicas"] = json!(2);
    api.ok(Method::PUT, &format!("{DEPLOYMENTS}/web"), first)
        .await;
    let mut stale = d.clone();
    stale["spec"]["replicas"] = json!(5);
    let err = api
        .send(
            Method::PUT,
            &format!("{DEPLOYMENTS}/web"),
            Some(stale),
            "application/json",
        )
        .await
        .expect_err("stale");
    assert_eq!(err.code().as_u16(), 409);

    let err = api
        .send(
            Method::DELETE,
            &format!("{DEPLOYMENTS}/web"),
            Some(json!({"preconditions": {"uid": "not-it"}})),
            "application/json",
        )
        .await
        .expect_err("uid precondition");
    assert!(
        err.to_string()
            .contains("Precondition failed: UID in precondition: not-it"),
        "{err}"
    );
    assert!(api.get(&format!("{DEPLOYMENTS}/web")).await.is_ok());
}

#[tokio::test]
async fn dry_run_changes_nothing() {
    let api = api().await;
    let d = api
        .ok(
            Method::POST,
            &format!("{DEPLOYMENTS}?dryRun=All"),
            deployment("dry", 1),
        )
        .await;
    assert_eq!(d["metadata"]["name"], "dry");
    assert_eq!(
        api.get(&format!("{DEPLOYMENTS}/dry"))
            .await
            .map_err(|e| e.code().as_u16()),
        Err(404)
    );
}

#[tokio::test]
async fn finalizers_hold_an_object_until_they_are_gone() {
    let api = api().await;
    let cms = "/api/v1/namespaces/default/configmaps";
    api.ok(
        Method::POST,
        cms,
        json!({"metadata": {"name": "held", "finalizers": ["example.com/hold"]}}),
    )
    .await;
    let deleted = api
        .send(
            Method::DELETE,
            &format!("{cms}/held"),
            None,
            "application/json",
        )
        .await
        .expect("delete");
    assert!(deleted["metadata"]["deletionTimestamp"].is_string());
    let still = api.get(&format!("{cms}/held")).await.expect("still there");
    assert_eq!(still["metadata"]["finalizers"], json!(["example.com/hold"]));
    api.patch(
        &format!("{cms}/held"),
        "application/merge-patch+json",
        json!({"metadata": {"finalizers": null}}),
    )
    .await
    .expect("drop finalizer");
    assert_eq!(
        api.get(&format!("{cms}/held"))
            .await
            .map_err(|e| e.code().as_u16()),
        Err(404)
    );
}

#[tokio::test]
async fn bound_pods_go_gracefully_unbound_pods_at_once() {
    let api = api().await;
    let pods = "/api/v1/namespaces/default/pods";
    let pod = |name: &str| json!({"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
    let p = api.ok(Method::POST, pods, pod("bound")).await;
    assert_eq!(p["status"]["phase"], "Pending");
    assert_eq!(p["spec"]["terminationGracePeriodSeconds"], 30);
    api.ok(
        Method::POST,
        &format!("{pods}/bound/binding"),
        json!({"metadata": {"name": "bound"}, "target": {"kind": "Node", "name": "n1"}}),
    )
    .await;
    let again = api
        .send(
            Method::POST,
            &format!("{pods}/bound/binding"),
            Some(json!({"metadata": {"name": "bound"}, "target": {"kind": "Node", "name": "n2"}})),
            "application/json",
        )
        .await
        .expect_err("already bound");
    assert_eq!(again.code().as_u16(), 409);
    let bound = api.get(&format!("{pods}/bound")).await.expect("get");
    assert_eq!(bound["spec"]["nodeName"], "n1");

    let d = api
        .send(
            Method::DELETE,
            &format!("{pods}/bound"),
            None,
            "application/json",
        )
        .await
        .expect("delete");
    assert_eq!(d["metadata"]["deletionGracePeriodSeconds"], 30);
    assert!(
        api.get(&format!("{pods}/bound")).await.is_ok(),
        "the kubelet finishes a bound pod"
    );
    api.send(
        Method::DELETE,
        &format!("{pods}/bound?gracePeriodSeconds=0"),
        None,
        "application/json",
    )
    .await
    .expect("force");
    assert_eq!(
        api.get(&format!("{pods}/bound"))
            .await
            .map_err(|e| e.code().as_u16()),
        Err(404)
    );

    api.ok(Method::POST, pods, pod("loose")).await;
    api.send(
        Method::DELETE,
        &format!("{pods}/loose"),
        None,
        "application/json",
    )
    .await
    .expect("delete");
    assert_eq!(
        api.get(&format!("{pods}/loose"))
            .await
            .map_err(|e| e.code().as_u16()),
        Err(404)
    );
}

#[tokio::test]
async fn scale_subresource_reads_and_writes_replicas() {
    let api = api().await;
    api.ok(Method::POST, DEPLOYMENTS, deployment("web", 2))
        .await;
    let scale = api
        .get(&format!("{DEPLOYMENTS}/web/scale"))
        .await
        .expect("scale");
    assert_eq!(
        (scale["kind"].as_str(), scale["spec"]["replicas"].as_i64()),
        (Some("Scale"), Some(2))
    );
    let patched = api
        .patch(
            &format!("{DEPLOYMENTS}/web/scale"),
            "application/merge-patch+json",
            json!({"spec": {"replicas": 4}}),
        )
        .await
        .expect("patch scale");
    assert_eq!(patched["spec"]["replicas"], 4);
    let d = api.get(&format!("{DEPLOYMENTS}/web")).await.expect("get");
    assert_eq!(
        (
            d["spec"]["replicas"].as_i64(),
            d["metadata"]["generation"].as_i64()
        ),
        (Some(4), Some(2))
    );
}

#[tokio::test]
async fn delete_collection_takes_what_the_selector_picks() {
    let api = api().await;
    let cms = "/api/v1/namespaces/default/configmaps";
    for (name, tier) in [("a", "x"), ("b", "x"), ("c", "y")] {
        api.ok(
            Method::POST,
            cms,
            json!({"metadata": {"name": name, "labels": {"tier": tier}}}),
        )
        .await;
    }
    api.send(
        Method::DELETE,
        &format!("{cms}?labelSelector=tier%3Dx"),
        None,
        "application/json",
    )
    .await
    .expect("deletecollection");
    let left = api.get(cms).await.expect("list");
    let names: Vec<&str> = left["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["metadata"]["name"].as_str())
        .collect();
    assert_eq!(names, ["c"]);
}

#[tokio::test]
async fn creating_in_a_missing_namespace_is_404_and_bad_bodies_are_4xx() {
    let api = api().await;
    let err = api
        .send(
            Method::POST,
            "/api/v1/namespaces/nope/configmaps",
            Some(json!({"metadata": {"name": "a"}})),
            "application/json",
        )
        .await
        .expect_err("no namespace");
    assert_eq!(err.to_string(), r#"namespaces "nope" not found"#);
    for (body, ct) in [
        (Bytes::from_static(b"{not json"), "application/json"),
        (Bytes::from_static(b"[1,2]"), "application/json"),
        (
            Bytes::from_static(br#"{"kind":"Secret","metadata":{"name":"a"}}"#),
            "application/json",
        ),
        (
            Bytes::from_static(br#"{"metadata":{"name":"a","namespace":"other"}}"#),
            "application/json",
        ),
        (
            Bytes::from_static(br#"{"metadata":{"name":"a"},"data":{"k":1}}"#),
            "application/json",
        ),
        (Bytes::from_static(b"a: [\n"), "application/yaml"),
    ] {
        let query = Query::default();
        let Ok(Target::Resource(req)) = request::parse(
            &Method::POST,
            "/api/v1/namespaces/default/configmaps",
            &query,
        ) else {
            panic!("path");
        };
        let err = api
            .rest
            .call(Call {
                req: &req,
                query: &query,
                body: body.clone(),
                body_type: negotiate::body_type(Some(ct)).unwrap_or(BodyType::Json),
                user: &User::anonymous(),
                user_agent: None,
            })
            .await
            .expect_err("refused");
        let code = err.code().as_u16();
        assert!((400..500).contains(&code), "{body:?}: {code} {err}");
    }
}

#[tokio::test]
async fn server_side_apply_conflicts_name_the_other_manager() {
    let api = api().await;
    let apply = "application/apply-patch+yaml";
    api.patch(
        &format!("{DEPLOYMENTS}/web?fieldManager=alice"),
        apply,
        deployment("web", 2),
    )
    .await
    .expect("create by apply");
    let err = api
        .patch(
            &format!("{DEPLOYMENTS}/web?fieldManager=bob"),
            apply,
            deployment("web", 3),
        )
        .await
        .expect_err("conflict");
    assert_eq!(err.code().as_u16(), 409);
    assert!(
        err.to_string().contains(r#"conflict with "alice""#),
        "{err}"
    );
    let forced = api
        .patch(
            &format!("{DEPLOYMENTS}/web?fieldManager=bob&force=true"),
            apply,
            deployment("web", 3),
        )
        .await
        .expect("forced");
    assert_eq!(forced["spec"]["replicas"], 3);
}

#[tokio::test]
async fn services_get_unique_cluster_ips_and_node_ports() {
    let api = api().await;
    let svcs = "/api/v1/namespaces/default/services";
    let svc = |name: &str, node_port: Option<i64>| {
        let mut port = json!({"port": 80});
        if let Some(n) = node_port {
            port["nodePort"] = json!(n);
        }
        json!({"metadata": {"name": name}, "spec": {"type": "NodePort", "selector": {"a": "b"}, "ports": [port]}})
    };
    let a = api.ok(Method::POST, svcs, svc("a", Some(30100))).await;
    let b = api.ok(Method::POST, svcs, svc("b", None)).await;
    assert_ne!(a["spec"]["clusterIP"], b["spec"]["clusterIP"]);
    assert_ne!(b["spec"]["ports"][0]["nodePort"], json!(30100));
    let dup = api
        .send(
            Method::POST,
            svcs,
            Some(svc("c", Some(30100))),
            "application/json",
        )
        .await
        .expect_err("taken");
    assert_eq!(dup.code().as_u16(), 422);
    // an update that leaves the allocated values out keeps them
    let mut update = svc("a", None);
    update["metadata"]["resourceVersion"] = a["metadata"]["resourceVersion"].clone();
    let u = api.ok(Method::PUT, &format!("{svcs}/a"), update).await;
    assert_eq!(u["spec"]["clusterIP"], a["spec"]["clusterIP"]);
    assert_eq!(u["spec"]["ports"][0]["nodePort"], 30100);
}
