//! The verbs on resources: get, list, watch, create, update, patch, delete, deletecollection and the
//! status, scale and binding subresources, with upstream's semantics (optimistic concurrency,
//! spec/status split, generation, finalizers, graceful deletion, dry run, field validation).

use std::collections::{HashSet, VecDeque};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use parking_lot::Mutex;
use serde_json::{Map, Value, json};

use oxkube_api::registry::{self, RESOURCES, Resource, Subresource};
use oxkube_api::selector::{FieldSelector, LabelSelector};
use oxkube_api::{apply, convert, defaults, fields, patch, validation};
use oxkube_store::{KeyValue, RangeRequest, Revision, Store, StoreError};

use crate::alloc::{self, ServiceCidr};
use crate::auth::User;
use crate::cache::{self, Cache, Caches, ChangeKind, Entry, store_error};
use crate::negotiate::BodyType;
use crate::objects::{self, meta, meta_mut};
use crate::request::{FieldValidation, Propagation, Query, ResourceRequest, Verb, VersionMatch};
use crate::status::{self, ApiError, Cause};

/// The time, behind a seam so tests can set it.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> jiff::Timestamp;
}

#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> jiff::Timestamp {
        jiff::Timestamp::now()
    }
}

/// How many times a write without a client precondition is retried on a store conflict.
const RETRIES: usize = 16;
/// Bodies larger than this are refused with 413 (upstream's limit is 3 MiB).
pub const MAX_BODY: usize = 3 << 20;

/// One item of a list answer: straight from the cache (already encoded) or made for this request.
#[derive(Debug, Clone)]
pub enum Item {
    Cached(Arc<Entry>),
    Owned(Value),
}

impl Item {
    pub fn value(&self) -> &Value {
        match self {
            Item::Cached(e) => &e.object,
            Item::Owned(v) => v,
        }
    }
}

/// A list answer.
#[derive(Debug)]
pub struct ListBody {
    pub items: Vec<Item>,
    pub revision: Revision,
    pub continue_token: Option<String>,
    pub remaining: Option<i64>,
}

/// One event of a watch answer.
#[derive(Debug)]
pub enum WatchEvent {
    Object {
        kind: &'static str,
        object: Item,
    },
    Bookmark {
        revision: Revision,
        initial_events_end: bool,
    },
    Error(ApiError),
}

/// What a verb answers, before encoding.
pub enum Output {
    Object {
        code: http::StatusCode,
        object: Value,
    },
    List(ListBody),
    Status(Value),
    Watch(BoxStream<'static, WatchEvent>),
    /// Plain text streamed from a kubelet (pods/log).
    Text(BoxStream<'static, Bytes>),
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Output::Object { code, object } => f
                .debug_struct("Object")
                .field("code", code)
                .field("object", object)
                .finish(),
            Output::List(list) => f.debug_tuple("List").field(list).finish(),
            Output::Status(s) => f.debug_tuple("Status").field(s).finish(),
            Output::Watch(_) => f.write_str("Watch"),
            Output::Text(_) => f.write_str("Text"),
        }
    }
}

/// What a request brings besides its target.
#[derive(Debug)]
pub struct Call<'a> {
    pub req: &'a ResourceRequest,
    pub query: &'a Query,
    pub body: Bytes,
    pub body_type: BodyType,
    pub user: &'a User,
    pub user_agent: Option<&'a str>,
}

/// The answer to a call, with the warnings to send along.
#[derive(Debug)]
pub struct Answer {
    pub output: Output,
    pub warnings: Vec<String>,
}

impl From<Output> for Answer {
    fn from(output: Output) -> Self {
        Answer {
            output,
            warnings: Vec::new(),
        }
    }
}

/// Service IPs and node ports handed out but perhaps not yet in the cache.
#[derive(Debug, Default)]
struct Pending {
    ips: Vec<(Instant, Ipv4Addr)>,
    ports: Vec<(Instant, u16)>,
}

/// The state every verb works on.
#[derive(Debug)]
pub struct Rest {
    pub store: Arc<dyn Store>,
    caches: Caches,
    pub clock: Arc<dyn Clock>,
    pub service_cidr: ServiceCidr,
    pending: Mutex<Pending>,
}

impl Rest {
    /// Starts a watch cache for every stored resource.
    pub async fn start(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        service_cidr: ServiceCidr,
        history: Duration,
    ) -> Result<Rest, ApiError> {
        let stored = RESOURCES.iter().filter(|r| r.is_storage());
        let caches = Caches::start(store.clone(), stored, history).await?;
        Ok(Rest {
            store,
            caches,
            clock,
            service_cidr,
            pending: Mutex::new(Pending::default()),
        })
    }

    fn cache(&self, res: &Resource) -> Result<&Arc<Cache>, ApiError> {
        self.caches
            .get(res)
            .ok_or_else(|| ApiError::Internal(format!("no cache for {}", res.qualified())))
    }

    fn now(&self) -> String {
        objects::format_time(self.clock.now())
    }

    /// Serves one call.
    pub async fn call(&self, call: Call<'_>) -> Result<Answer, ApiError> {
        let req = call.req;
        match (req.verb, req.subresource) {
            (Verb::Get, None | Some(Subresource::Status)) => self.get(call).await.map(Into::into),
            (Verb::Get, Some(Subresource::Scale)) => self.get_scale(call).await.map(Into::into),
            (Verb::List, _) => self.list(call).await.map(|l| Output::List(l).into()),
            (Verb::Watch, _) => self.watch(call).await.map(|w| Output::Watch(w).into()),
            (Verb::Create, None) => self.create(call).await,
            (Verb::Create, Some(Subresource::Binding)) => self.bind(call).await.map(Into::into),
            (Verb::Create, Some(Subresource::Eviction)) => self.evict(call).await.map(Into::into),
            (Verb::Update, None | Some(Subresource::Status) | Some(Subresource::Finalize)) => {
                self.update(call).await
            }
            (Verb::Update, Some(Subresource::Scale)) => self.update_scale(call).await,
            (Verb::Patch, None | Some(Subresource::Status) | Some(Subresource::Scale)) => {
                self.patch(call).await
            }
            (Verb::Delete, None) => self.delete(call).await.map(Into::into),
            (Verb::DeleteCollection, None) => self.delete_collection(call).await.map(Into::into),
            (Verb::Get, Some(Subresource::Log)) => self.pod_log(call).await.map(Into::into),
            (_, Some(Subresource::Log | Subresource::Exec | Subresource::Attach)) => {
                Err(ApiError::BadRequest(format!(
                    "pod {} does not have a host assigned",
                    req.name.as_deref().unwrap_or("")
                )))
            }
            _ => Err(ApiError::MethodNotAllowed),
        }
    }

    /// pods/log: the pod's container log from the kubelet of its node, streamed.
    async fn pod_log(&self, call: Call<'_>) -> Result<Output, ApiError> {
        let (_, pod) = self.read(call.req).await?;
        let name = call.req.name.clone().unwrap_or_default();
        let namespace = call.req.namespace.clone().unwrap_or_default();
        let raw = &call.query.raw;
        let names: Vec<&str> = pod["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(
                pod["spec"]["initContainers"]
                    .as_array()
                    .into_iter()
                    .flatten(),
            )
            .filter_map(|c| c["name"].as_str())
            .collect();
        let container = match raw.iter().find(|(k, _)| k == "container") {
            Some((_, c)) => c.clone(),
            None => match pod["spec"]["containers"].as_array().map(Vec::as_slice) {
                Some([only]) => only["name"].as_str().unwrap_or_default().to_string(),
                _ => {
                    return Err(ApiError::BadRequest(format!(
                        "a container name must be specified for pod {name}, choose one of: [{}]",
                        names.join(" ")
                    )));
                }
            },
        };
        if !names.contains(&container.as_str()) {
            return Err(ApiError::BadRequest(format!(
                "container {container} is not valid for pod {name}"
            )));
        }
        let node_name = pod["spec"]["nodeName"].as_str().unwrap_or_default();
        if node_name.is_empty() {
            return Err(ApiError::BadRequest(format!(
                "pod {name} does not have a host assigned"
            )));
        }
        let nodes = registry::find("", "v1", "nodes")
            .ok_or_else(|| ApiError::Internal("nodes not served".into()))?;
        let (kv, _) = self
            .store
            .get(nodes.key(None, node_name).as_bytes(), None)
            .await
            .map_err(store_error)?;
        let kv = kv.ok_or_else(|| ApiError::not_found(nodes, node_name))?;
        let node = objects::decode(&kv)?;
        let addresses = node["status"]["addresses"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let address = ["InternalIP", "ExternalIP", "Hostname"]
            .iter()
            .find_map(|t| {
                addresses
                    .iter()
                    .find(|a| a["type"] == *t)
                    .and_then(|a| a["address"].as_str())
            })
            .unwrap_or(node_name)
            .to_string();
        let port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
            .as_i64()
            .and_then(|p| i32::try_from(p).ok())
            .filter(|p| *p > 0)
            .unwrap_or(10250);
        let query = {
            let mut query = form_urlencoded::Serializer::new(String::new());
            for (k, v) in raw {
                if matches!(
                    k.as_str(),
                    "follow" | "previous" | "timestamps" | "tailLines"
                ) {
                    query.append_pair(k, v);
                }
            }
            query.finish()
        };
        let path = format!("/containerLogs/{namespace}/{name}/{container}?{query}");
        let response = crate::kubelet_client::get(&address, port, &path)
            .await
            .map_err(|e| {
                let mut message = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(s) = source {
                    message = format!("{message}: {s}");
                    source = s.source();
                }
                ApiError::Internal(message)
            })?;
        if !response.status.is_success() {
            let body: Vec<Bytes> = response.body.collect().await;
            let text = String::from_utf8_lossy(&body.concat()).trim().to_string();
            return Err(ApiError::BadRequest(text));
        }
        Ok(Output::Text(response.body))
    }

    /// Creates `obj` unless an object of its name exists (the server's own bootstrap objects).
    pub async fn ensure(&self, res: &'static Resource, obj: Value) -> Result<(), ApiError> {
        let key = res.key(objects::namespace(&obj), objects::name(&obj).unwrap_or(""));
        let (existing, _) = self
            .store
            .get(key.as_bytes(), None)
            .await
            .map_err(store_error)?;
        if existing.is_some() {
            return Ok(());
        }
        let req = ResourceRequest {
            resource: res,
            verb: Verb::Create,
            namespace: objects::namespace(&obj).map(str::to_string),
            name: None,
            subresource: None,
        };
        match self
            .create_object(&req, obj, "oxkube", false, CreateKind::Create)
            .await
        {
            Ok(_) | Err(ApiError::AlreadyExists { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    // ---- reads -------------------------------------------------------------------------------

    async fn read(&self, req: &ResourceRequest) -> Result<(KeyValue, Value), ApiError> {
        let name = req.name.as_deref().unwrap_or("");
        let key = req.resource.key(req.namespace.as_deref(), name);
        let (kv, _) = self
            .store
            .get(key.as_bytes(), None)
            .await
            .map_err(store_error)?;
        let kv = kv.ok_or_else(|| ApiError::not_found(req.resource, name))?;
        let obj = objects::decode(&kv)?;
        Ok((kv, obj))
    }

    /// The object in the request's version, with its type set.
    fn present(&self, res: &'static Resource, obj: Value) -> Result<Value, ApiError> {
        let mut obj = if res.is_storage() {
            obj
        } else {
            convert::from_storage(res, obj).map_err(|e| ApiError::Internal(e.to_string()))?
        };
        objects::set_type(&mut obj, res);
        Ok(obj)
    }

    async fn get(&self, call: Call<'_>) -> Result<Output, ApiError> {
        let (_, obj) = self.read(call.req).await?;
        Ok(Output::Object {
            code: http::StatusCode::OK,
            object: self.present(call.req.resource, obj)?,
        })
    }

    async fn list(&self, call: Call<'_>) -> Result<ListBody, ApiError> {
        let req = call.req;
        let q = call.query;
        let filter = Filter::new(req.resource, q)?;
        let res = req.resource;
        let limit = q.limit.filter(|l| *l > 0);
        let exact = q.resource_version_match == VersionMatch::Exact;
        let rv = parse_rv(q.resource_version.as_deref())?;
        if q.resource_version_match != VersionMatch::Unset && rv.is_none() {
            return Err(ApiError::BadRequest(
                "resourceVersionMatch is forbidden unless resourceVersion is provided".into(),
            ));
        }
        let from_store =
            q.continue_token.is_some() || exact || (limit.is_some() && !matches!(rv, Some(0)));
        if from_store {
            return self
                .list_from_store(req, &filter, limit, rv, exact, q)
                .await;
        }
        let cache = self.cache(res)?;
        match rv {
            None => {
                let current = self.store.current_revision().await.map_err(store_error)?;
                cache.wait_for(current).await?;
            }
            Some(rv) if rv > 0 => cache.wait_for(rv).await?,
            Some(_) => {}
        }
        let snapshot = cache.snapshot(req.namespace.as_deref());
        let mut items = Vec::new();
        for entry in snapshot.entries {
            if !filter.matches(&entry.object) {
                continue;
            }
            if res.is_storage() {
                items.push(Item::Cached(entry));
            } else {
                items.push(Item::Owned(self.present(res, entry.object.clone())?));
            }
        }
        Ok(ListBody {
            items,
            revision: snapshot.revision,
            continue_token: None,
            remaining: None,
        })
    }

    async fn list_from_store(
        &self,
        req: &ResourceRequest,
        filter: &Filter,
        limit: Option<i64>,
        rv: Option<i64>,
        exact: bool,
        q: &Query,
    ) -> Result<ListBody, ApiError> {
        let res = req.resource;
        let prefix = res.key_prefix(req.namespace.as_deref());
        let (mut revision, mut start_after) = match &q.continue_token {
            Some(token) => {
                let (rev, start) = decode_continue(token, &prefix)?;
                (Some(rev), Some(Bytes::from(start)))
            }
            None => (if exact { rv } else { None }, None),
        };
        let want = limit.and_then(|l| usize::try_from(l).ok()).unwrap_or(0);
        let mut items = Vec::new();
        let mut remaining = None;
        let mut last_key: Option<Bytes>;
        loop {
            let page = if want == 0 {
                0
            } else {
                (want - items.len()).max(if filter.everything() { 0 } else { 64 })
            };
            let range = self
                .store
                .range(RangeRequest {
                    prefix: Bytes::from(prefix.clone()),
                    start_after: start_after.clone(),
                    limit: page,
                    revision,
                })
                .await
                .map_err(|e| match e {
                    StoreError::Compacted { .. } if q.continue_token.is_some() => ApiError::Expired(
                        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.".into(),
                    ),
                    other => store_error(other),
                })?;
            revision = Some(range.revision);
            last_key = range.kvs.last().map(|kv| kv.key.clone());
            // How many of this page's keys were looked at.
            let mut consumed = range.kvs.len();
            for (i, kv) in range.kvs.iter().enumerate() {
                let obj = objects::decode(kv)?;
                if !filter.matches(&obj) {
                    continue;
                }
                items.push(Item::Owned(self.present(res, obj)?));
                if want > 0 && items.len() >= want {
                    last_key = Some(kv.key.clone());
                    consumed = i + 1;
                    break;
                }
            }
            let more = range.more || consumed < range.kvs.len();
            if want > 0 && items.len() >= want {
                if more {
                    if filter.everything() {
                        let left = range.count.saturating_sub(consumed);
                        remaining = i64::try_from(left).ok().filter(|n| *n > 0);
                    }
                    let key = last_key.unwrap_or_default();
                    let token =
                        encode_continue(range.revision, &key[prefix.len().min(key.len())..]);
                    return Ok(ListBody {
                        items,
                        revision: range.revision,
                        continue_token: more.then_some(token),
                        remaining,
                    });
                }
                break;
            }
            if !range.more {
                break;
            }
            start_after = last_key;
        }
        Ok(ListBody {
            items,
            revision: revision.unwrap_or(0),
            continue_token: None,
            remaining: None,
        })
    }

    async fn watch(&self, call: Call<'_>) -> Result<BoxStream<'static, WatchEvent>, ApiError> {
        let req = call.req;
        let q = call.query;
        let res = req.resource;
        let filter = Filter::new(res, q)?;
        let cache = self.cache(res)?.clone();
        let rv = parse_rv(q.resource_version.as_deref())?;
        let send_initial = q.send_initial_events.unwrap_or(false);
        if send_initial && q.resource_version_match != VersionMatch::NotOlderThan {
            return Err(ApiError::Unprocessable(
                "sendInitialEvents: Forbidden: sendInitialEvents is forbidden for watch unless resourceVersionMatch is set to NotOlderThan".into(),
            ));
        }
        let initial = send_initial || matches!(rv, None | Some(0));
        let mut first: VecDeque<WatchEvent> = VecDeque::new();
        let start = if initial {
            if rv.is_none() || send_initial {
                let current = self.store.current_revision().await.map_err(store_error)?;
                cache.wait_for(current.max(rv.unwrap_or(0))).await?;
            }
            let snapshot = cache.snapshot(req.namespace.as_deref());
            for entry in snapshot.entries {
                if filter.matches(&entry.object) {
                    let object = if res.is_storage() {
                        Item::Cached(entry)
                    } else {
                        Item::Owned(self.present(res, entry.object.clone())?)
                    };
                    first.push_back(WatchEvent::Object {
                        kind: "ADDED",
                        object,
                    });
                }
            }
            if send_initial {
                first.push_back(WatchEvent::Bookmark {
                    revision: snapshot.revision,
                    initial_events_end: true,
                });
            }
            snapshot.revision
        } else {
            let rv = rv.unwrap_or(0);
            if rv > cache.revision() {
                cache.wait_for(rv).await?;
            }
            rv
        };
        let namespace_prefix = req.namespace.as_ref().map(|ns| res.key_prefix(Some(ns)));
        let changes = cache.changes(start).filter_map(move |change| {
            let out = match change {
                Err(e) => Some(WatchEvent::Error(e)),
                Ok(change) => {
                    let in_scope = namespace_prefix
                        .as_ref()
                        .is_none_or(|p| change.entry.key.starts_with(p.as_bytes()));
                    if in_scope {
                        watch_event(res, &filter, &change)
                    } else {
                        None
                    }
                }
            };
            std::future::ready(out)
        });
        let stream = futures::stream::iter(first).chain(changes);
        Ok(with_bookmarks(stream, q.allow_watch_bookmarks, cache).boxed())
    }

    // ---- writes ------------------------------------------------------------------------------

    /// The request body as an object of the request's kind, checked for shape and fields.
    fn decode_body(
        &self,
        call: &Call<'_>,
        res: &'static Resource,
        warnings: &mut Vec<String>,
    ) -> Result<Value, ApiError> {
        let mut obj = decode_value(&call.body, call.body_type)?;
        if !obj.is_object() {
            return Err(ApiError::BadRequest(format!(
                "the object provided is unrecognized (must be of type {})",
                res.kind
            )));
        }
        let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
        if !api_version.is_empty() && api_version != res.api_version() {
            return Err(ApiError::BadRequest(format!(
                "the API version in the data ({api_version}) does not match the expected API version ({})",
                res.api_version()
            )));
        }
        if !kind.is_empty() && kind != res.kind {
            return Err(ApiError::BadRequest(format!(
                "the kind in the data ({kind}) does not match the expected kind ({})",
                res.kind
            )));
        }
        objects::set_type(&mut obj, res);
        check_shape(res, &obj).map_err(ApiError::BadRequest)?;
        self.check_fields(call, res, &obj, warnings)?;
        Ok(obj)
    }

    fn check_fields(
        &self,
        call: &Call<'_>,
        res: &Resource,
        obj: &Value,
        warnings: &mut Vec<String>,
    ) -> Result<(), ApiError> {
        let mode = call.query.field_validation;
        if mode == FieldValidation::Ignore {
            return Ok(());
        }
        let mut problems: Vec<String> = fields::unknown_fields(res, obj);
        if matches!(call.body_type, BodyType::Json) {
            problems.extend(fields::duplicate_fields(&call.body));
        }
        if problems.is_empty() {
            return Ok(());
        }
        if mode == FieldValidation::Strict {
            return Err(ApiError::BadRequest(format!(
                "strict decoding error: {}",
                problems.join(", ")
            )));
        }
        warnings.extend(problems);
        Ok(())
    }

    fn manager(&self, call: &Call<'_>) -> String {
        call.query.field_manager.clone().unwrap_or_else(|| {
            call.user_agent
                .and_then(|ua| ua.split('/').next())
                .filter(|m| !m.is_empty())
                .unwrap_or("unknown")
                .to_string()
        })
    }

    async fn check_namespace(
        &self,
        res: &Resource,
        namespace: Option<&str>,
    ) -> Result<(), ApiError> {
        let Some(ns) = namespace.filter(|_| res.namespaced) else {
            return Ok(());
        };
        let namespaces = registry::find("", "v1", "namespaces")
            .ok_or_else(|| ApiError::Internal("namespaces not served".into()))?;
        let key = namespaces.key(None, ns);
        // The cache answers for namespaces it has seen (upstream's admission reads an informer
        // too); one it has not seen yet may have just been made, so the store decides.
        let deleting = match self.cache(namespaces)?.get(key.as_bytes()) {
            Some(entry) => objects::is_deleting(&entry.object),
            None => {
                let (kv, _) = self
                    .store
                    .get(key.as_bytes(), None)
                    .await
                    .map_err(store_error)?;
                let kv = kv.ok_or_else(|| ApiError::not_found(namespaces, ns))?;
                objects::is_deleting(&objects::decode(&kv)?)
            }
        };
        if deleting {
            return Err(ApiError::Forbidden {
                message: format!(
                    "{} {:?} is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                    res.qualified(),
                    ""
                ),
            });
        }
        Ok(())
    }

    async fn create(&self, call: Call<'_>) -> Result<Answer, ApiError> {
        let req = call.req;
        let res = req.resource;
        let mut warnings = Vec::new();
        let obj = self.decode_body(&call, res, &mut warnings)?;
        let manager = self.manager(&call);
        let object = self
            .create_object(req, obj, &manager, call.query.dry_run, CreateKind::Create)
            .await?;
        Ok(Answer {
            output: Output::Object {
                code: http::StatusCode::CREATED,
                object,
            },
            warnings,
        })
    }

    /// Creates `obj` (in the request's version) and answers it as stored.
    async fn create_object(
        &self,
        req: &ResourceRequest,
        mut obj: Value,
        manager: &str,
        dry_run: bool,
        how: CreateKind,
    ) -> Result<Value, ApiError> {
        let res = req.resource;
        let url_ns = req.namespace.as_deref();
        if res.namespaced {
            let url_ns = url_ns.ok_or(ApiError::MethodNotAllowed)?;
            match objects::namespace(&obj) {
                Some(ns) if ns != url_ns => {
                    return Err(ApiError::BadRequest(
                        "the namespace of the provided object does not match the namespace sent on the request".into(),
                    ));
                }
                _ => {
                    meta_mut(&mut obj).insert("namespace".into(), Value::from(url_ns));
                }
            }
        } else {
            meta_mut(&mut obj).remove("namespace");
        }
        if let (Some(url_name), Some(name)) = (req.name.as_deref(), objects::name(&obj))
            && url_name != name
        {
            return Err(ApiError::BadRequest(format!(
                "the name of the object ({name}) does not match the name on the URL ({url_name})"
            )));
        }
        let mut generate_name = None;
        if objects::name(&obj).is_none() {
            let generate = objects::str_field(meta(&obj), "generateName")
                .unwrap_or("")
                .to_string();
            if generate.is_empty() {
                return Err(ApiError::Invalid {
                    group: res.group.into(),
                    kind: res.kind.into(),
                    name: String::new(),
                    causes: vec![Cause {
                        reason: "FieldValueRequired".into(),
                        message: "Required value: name or generateName is required".into(),
                        field: "metadata.name".into(),
                    }],
                });
            }
            let name = format!("{generate}{}", random_suffix());
            meta_mut(&mut obj).insert("name".into(), Value::from(name));
            generate_name = Some(generate);
        }
        self.check_namespace(res, url_ns).await?;
        let storage = registry::storage_of(res);
        let mut obj = if res.is_storage() {
            obj
        } else {
            let mut o =
                convert::to_storage(res, obj).map_err(|e| ApiError::BadRequest(e.to_string()))?;
            objects::set_type(&mut o, storage);
            o
        };
        objects::set_type(&mut obj, storage);
        let now = self.now();
        {
            let m = meta_mut(&mut obj);
            m.insert("uid".into(), Value::from(uuid::Uuid::new_v4().to_string()));
            m.insert("creationTimestamp".into(), Value::from(now.clone()));
            m.remove("resourceVersion");
            m.remove("deletionTimestamp");
            m.remove("deletionGracePeriodSeconds");
            m.remove("selfLink");
            if storage.generation {
                m.insert("generation".into(), Value::from(1));
            } else {
                m.remove("generation");
            }
        }
        if how == CreateKind::Create {
            reset_status_on_create(storage, &mut obj);
        }
        defaults::apply(storage, &mut obj);
        match (storage.group, storage.kind) {
            ("batch", "Job") => defaults::job_selector(&mut obj),
            ("", "Namespace") => defaults::namespace_finalizer_on_create(&mut obj),
            _ => {}
        }
        self.admit(storage, &mut obj, None)?;
        validate(storage, &obj, None)?;
        if how == CreateKind::Create {
            apply::track_update(storage, None, &mut obj, manager, &now);
        }
        let name = objects::name(&obj).unwrap_or("").to_string();
        if dry_run {
            return self.present(res, obj);
        }
        let mut name = name;
        let mut tries = 0;
        let revision = loop {
            let key = storage.key(url_ns, &name);
            match self
                .store
                .create(key.as_bytes(), objects::encode(&obj)?)
                .await
            {
                Ok(rev) => break rev,
                // A generated name that is taken is generated again (upstream retries too).
                Err(StoreError::AlreadyExists) if generate_name.is_some() && tries < 7 => {
                    tries += 1;
                    name = format!(
                        "{}{}",
                        generate_name.as_deref().unwrap_or(""),
                        random_suffix()
                    );
                    meta_mut(&mut obj).insert("name".into(), Value::from(name.clone()));
                }
                Err(StoreError::AlreadyExists) => return Err(ApiError::already_exists(res, &name)),
                Err(e) => return Err(store_error(e)),
            }
        };
        objects::set_resource_version(&mut obj, revision);
        self.present(res, obj)
    }

    /// Admission that needs server state: service IPs and node ports; pod QoS class.
    fn admit(&self, res: &Resource, obj: &mut Value, old: Option<&Value>) -> Result<(), ApiError> {
        match (res.group, res.kind) {
            ("", "Secret") => {
                merge_string_data(obj);
                Ok(())
            }
            ("", "Service") => self.allocate_service(obj, old),
            ("", "Pod") if old.is_none() => {
                let qos = qos_class(obj);
                if let Some(status) = obj.get_mut("status").and_then(Value::as_object_mut) {
                    status.insert("qosClass".into(), Value::from(qos));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn allocate_service(&self, obj: &mut Value, old: Option<&Value>) -> Result<(), ApiError> {
        let spec_type = obj["spec"]["type"]
            .as_str()
            .unwrap_or("ClusterIP")
            .to_string();
        // Keep what the old object had when the new one leaves it out (upstream's patchAllocatedValues).
        if let Some(old) = old {
            let same_type = old["spec"]["type"].as_str().unwrap_or("ClusterIP") == spec_type;
            if same_type
                && obj["spec"]["clusterIP"].as_str().unwrap_or("").is_empty()
                && let Some(ip) = old["spec"]["clusterIP"].as_str()
                && let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut)
            {
                spec.insert("clusterIP".into(), Value::from(ip));
                spec.insert("clusterIPs".into(), old["spec"]["clusterIPs"].clone());
            }
            if same_type
                && let (Some(new_ports), Some(old_ports)) = (
                    obj.pointer_mut("/spec/ports").and_then(Value::as_array_mut),
                    old["spec"]["ports"].as_array(),
                )
            {
                for p in new_ports.iter_mut() {
                    if p.get("nodePort").is_none_or(Value::is_null)
                        && let Some(np) = old_ports
                            .iter()
                            .find(|o| o["port"] == p["port"] && o["protocol"] == p["protocol"])
                            .and_then(|o| o.get("nodePort"))
                            .filter(|v| !v.is_null())
                        && let Some(pm) = p.as_object_mut()
                    {
                        pm.insert("nodePort".into(), np.clone());
                    }
                }
            }
        }
        let old_ip = old
            .and_then(|o| o["spec"]["clusterIP"].as_str())
            .map(str::to_string);
        let old_ports: HashSet<u16> = old
            .and_then(|o| o["spec"]["ports"].as_array())
            .map(|ps| {
                ps.iter()
                    .filter_map(|p| p["nodePort"].as_u64())
                    .filter_map(|p| u16::try_from(p).ok())
                    .collect()
            })
            .unwrap_or_default();
        let (mut ips, mut ports) = self.taken_by_services(old);
        let mut pending = self.pending.lock();
        let horizon = Instant::now() - Duration::from_secs(60);
        pending.ips.retain(|(at, _)| *at > horizon);
        pending.ports.retain(|(at, _)| *at > horizon);
        ips.extend(pending.ips.iter().map(|(_, ip)| *ip));
        ports.extend(pending.ports.iter().map(|(_, p)| *p));
        let service_name = objects::name(obj).unwrap_or("").to_string();
        let invalid = |field: &str, value: &Value, detail: &str| ApiError::Invalid {
            group: String::new(),
            kind: "Service".into(),
            name: service_name.clone(),
            causes: vec![Cause {
                reason: "FieldValueInvalid".into(),
                message: format!("Invalid value: {value}: {detail}"),
                field: field.into(),
            }],
        };
        let spec = obj
            .get_mut("spec")
            .and_then(Value::as_object_mut)
            .ok_or_else(|| ApiError::BadRequest("a Service needs a spec".into()))?;
        if spec_type == "ExternalName" {
            spec.remove("clusterIP");
            spec.remove("clusterIPs");
        } else {
            let asked = spec
                .get("clusterIP")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            if asked.is_empty() {
                let ip = self
                    .service_cidr
                    .free_ip(&ips, rand::random())
                    .ok_or_else(|| ApiError::Internal("the service IP range is full".into()))?;
                pending.ips.push((Instant::now(), ip));
                spec.insert("clusterIP".into(), Value::from(ip.to_string()));
                spec.insert("clusterIPs".into(), json!([ip.to_string()]));
            } else if asked != "None" && old_ip.as_deref() != Some(asked.as_str()) {
                let ip: Ipv4Addr = asked.parse().map_err(|_| {
                    invalid(
                        "spec.clusterIPs[0]",
                        &Value::from(asked.clone()),
                        "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                    )
                })?;
                if !self.service_cidr.contains(ip) {
                    return Err(invalid(
                        "spec.clusterIPs",
                        &json!([asked]),
                        &format!(
                            "failed to allocate IP {asked}: the provided IP ({asked}) is not in the valid range. The range of valid IPs is {}",
                            self.service_cidr
                        ),
                    ));
                }
                if ips.contains(&ip) {
                    return Err(invalid(
                        "spec.clusterIPs",
                        &json!([asked]),
                        &format!("failed to allocate IP {asked}: provided IP is already allocated"),
                    ));
                }
                pending.ips.push((Instant::now(), ip));
                spec.insert("clusterIPs".into(), json!([asked]));
            } else {
                spec.insert("clusterIPs".into(), json!([asked]));
            }
        }
        let wants_node_ports = spec_type == "NodePort" || spec_type == "LoadBalancer";
        if let Some(list) = spec.get_mut("ports").and_then(Value::as_array_mut) {
            for (i, port) in list.iter_mut().enumerate() {
                let Some(pm) = port.as_object_mut() else {
                    continue;
                };
                if !wants_node_ports {
                    pm.remove("nodePort");
                    continue;
                }
                match pm.get("nodePort").and_then(Value::as_u64) {
                    Some(n) => {
                        let n16 = u16::try_from(n).unwrap_or(0);
                        if !alloc::NODE_PORTS.contains(&n16) {
                            return Err(invalid(
                                &format!("spec.ports[{i}].nodePort"),
                                &Value::from(n),
                                "provided port is not in the valid range. The range of valid ports is 30000-32767",
                            ));
                        }
                        if !old_ports.contains(&n16) && ports.contains(&n16) {
                            return Err(invalid(
                                &format!("spec.ports[{i}].nodePort"),
                                &Value::from(n),
                                "provided port is already allocated",
                            ));
                        }
                        ports.insert(n16);
                        pending.ports.push((Instant::now(), n16));
                    }
                    None => {
                        let p = alloc::free_port(&ports, rand::random()).ok_or_else(|| {
                            ApiError::Internal("the node port range is full".into())
                        })?;
                        ports.insert(p);
                        pending.ports.push((Instant::now(), p));
                        pm.insert("nodePort".into(), Value::from(p));
                    }
                }
            }
        }
        Ok(())
    }

    fn taken_by_services(&self, except: Option<&Value>) -> (HashSet<Ipv4Addr>, HashSet<u16>) {
        let mut ips = HashSet::new();
        let mut ports = HashSet::new();
        let except_uid = except.and_then(objects::uid);
        if let Some(res) = registry::find("", "v1", "services")
            && let Ok(cache) = self.cache(res)
        {
            for e in cache.snapshot(None).entries {
                if except_uid.is_some() && objects::uid(&e.object) == except_uid {
                    continue;
                }
                if let Some(ip) = e.object["spec"]["clusterIP"]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                {
                    ips.insert(ip);
                }
                for p in e.object["spec"]["ports"].as_array().into_iter().flatten() {
                    if let Some(n) = p["nodePort"].as_u64().and_then(|n| u16::try_from(n).ok()) {
                        ports.insert(n);
                    }
                }
            }
        }
        (ips, ports)
    }

    async fn update(&self, call: Call<'_>) -> Result<Answer, ApiError> {
        let req = call.req;
        let res = req.resource;
        let mut warnings = Vec::new();
        let body = self.decode_body(&call, res, &mut warnings)?;
        let manager = self.manager(&call);
        let name = req.name.clone().unwrap_or_default();
        if let Some(body_name) = objects::name(&body)
            && body_name != name
        {
            return Err(ApiError::BadRequest(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        if let (Some(ns), Some(body_ns)) = (req.namespace.as_deref(), objects::namespace(&body))
            && ns != body_ns
        {
            return Err(ApiError::BadRequest(
                "the namespace of the provided object does not match the namespace sent on the request".into(),
            ));
        }
        let precondition = objects::resource_version(&body)?;
        let output = self
            .guaranteed_update(req, precondition, &manager, call.query.dry_run, |_old| {
                Ok(body.clone())
            })
            .await?;
        Ok(Answer { output, warnings })
    }

    /// Reads the object, computes the new one from it, and writes it guarded by the read's
    /// revision; on a store conflict without a client precondition, tries again.
    async fn guaranteed_update<F>(
        &self,
        req: &ResourceRequest,
        precondition: Option<i64>,
        manager: &str,
        dry_run: bool,
        mut change: F,
    ) -> Result<Output, ApiError>
    where
        F: FnMut(&Value) -> Result<Value, ApiError>,
    {
        let res = req.resource;
        let name = req.name.clone().unwrap_or_default();
        for _ in 0..RETRIES {
            let (kv, stored) = self.read(req).await?;
            if let Some(rv) = precondition
                && rv != kv.mod_revision
            {
                return Err(ApiError::conflict(res, &name));
            }
            let old = self.present(res, stored.clone())?;
            let mut new = change(&old)?;
            objects::set_type(&mut new, res);
            match self
                .write_update(req, &kv, &stored, new, Some(manager), dry_run)
                .await
            {
                Ok(out) => return Ok(out),
                Err(WriteError::Conflict) if precondition.is_none() => continue,
                Err(WriteError::Conflict) => return Err(ApiError::conflict(res, &name)),
                Err(WriteError::Api(e)) => return Err(e),
            }
        }
        Err(ApiError::conflict(res, &name))
    }

    async fn write_update(
        &self,
        req: &ResourceRequest,
        kv: &KeyValue,
        old: &Value,
        new: Value,
        manager: Option<&str>,
        dry_run: bool,
    ) -> Result<Output, WriteError> {
        let res = req.resource;
        let storage = registry::storage_of(res);
        let mut new = if res.is_storage() {
            new
        } else {
            let mut o =
                convert::to_storage(res, new).map_err(|e| ApiError::BadRequest(e.to_string()))?;
            objects::set_type(&mut o, storage);
            o
        };
        let status_only = req.subresource == Some(Subresource::Status);
        if status_only {
            // /status changes only .status (upstream: ResetObjectMetaForStatus + spec from old).
            let status = new.get("status").cloned();
            let mut merged = old.clone();
            if let Some(map) = merged.as_object_mut() {
                match status {
                    Some(s) => map.insert("status".into(), s),
                    None => map.remove("status"),
                };
            }
            new = merged;
        } else if req.subresource == Some(Subresource::Finalize) {
            let finalizers = new["spec"]["finalizers"].clone();
            let mut merged = old.clone();
            if let Some(spec) = merged.get_mut("spec").and_then(Value::as_object_mut) {
                spec.insert("finalizers".into(), finalizers);
            }
            new = merged;
        } else if storage.has(Subresource::Status)
            && let Some(map) = new.as_object_mut()
        {
            match old.get("status") {
                Some(s) => map.insert("status".into(), s.clone()),
                None => map.remove("status"),
            };
            if (storage.group, storage.kind) == ("", "Namespace") {
                // spec.finalizers change only through /finalize (upstream's namespace strategy)
                let finalizers = old["spec"]["finalizers"].clone();
                if let Some(spec) = map
                    .entry("spec")
                    .or_insert_with(|| json!({}))
                    .as_object_mut()
                {
                    spec.insert("finalizers".into(), finalizers);
                }
            }
        }
        // System metadata comes from the stored object.
        {
            let old_meta = meta(old).clone();
            let m = meta_mut(&mut new);
            for key in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
                "namespace",
                "name",
            ] {
                match old_meta.get(key) {
                    Some(v) => m.insert(key.into(), v.clone()),
                    None => m.remove(key),
                };
            }
            m.remove("selfLink");
        }
        if storage.generation && !status_only && objects::spec_side(&new) != objects::spec_side(old)
        {
            let generation = meta(old)
                .get("generation")
                .and_then(Value::as_i64)
                .unwrap_or(0)
                + 1;
            meta_mut(&mut new).insert("generation".into(), Value::from(generation));
        }
        defaults::apply(storage, &mut new);
        self.admit(storage, &mut new, Some(old))?;
        validate(storage, &new, Some(old))?;
        if let Some(manager) = manager {
            apply::track_update(storage, Some(old), &mut new, manager, &self.now());
        }
        objects::set_resource_version(&mut new, kv.mod_revision);
        if &new == old {
            return Ok(Output::Object {
                code: http::StatusCode::OK,
                object: self.present(res, new)?,
            });
        }
        if dry_run {
            return Ok(Output::Object {
                code: http::StatusCode::OK,
                object: self.present(res, new)?,
            });
        }
        if objects::is_deleting(&new)
            && objects::finalizers(&new).is_empty()
            && !namespace_pending(storage, &new)
        {
            // The last finalizer is gone: the object goes now.
            match self.store.delete(&kv.key, Some(kv.mod_revision)).await {
                Ok(_) => {
                    return Ok(Output::Object {
                        code: http::StatusCode::OK,
                        object: self.present(res, new)?,
                    });
                }
                Err(StoreError::Conflict { .. } | StoreError::NotFound) => {
                    return Err(WriteError::Conflict);
                }
                Err(e) => return Err(store_error(e).into()),
            }
        }
        match self
            .store
            .update(&kv.key, objects::encode(&new)?, kv.mod_revision)
            .await
        {
            Ok(rev) => {
                objects::set_resource_version(&mut new, rev);
                Ok(Output::Object {
                    code: http::StatusCode::OK,
                    object: self.present(res, new)?,
                })
            }
            Err(StoreError::Conflict { current: None, .. } | StoreError::NotFound) => {
                Err(ApiError::not_found(res, objects::name(&new).unwrap_or("")).into())
            }
            Err(StoreError::Conflict { .. }) => Err(WriteError::Conflict),
            Err(e) => Err(store_error(e).into()),
        }
    }

    async fn patch(&self, call: Call<'_>) -> Result<Answer, ApiError> {
        let req = call.req;
        let res = req.resource;
        let manager = self.manager(&call);
        let patch_doc = decode_value(&call.body, call.body_type)?;
        if call.body_type == BodyType::ApplyPatch {
            if call
                .query
                .field_manager
                .as_deref()
                .is_none_or(str::is_empty)
            {
                return Err(ApiError::BadRequest(
                    "PATCH, application/apply-patch+yaml requires fieldManager to be set".into(),
                ));
            }
            return self.server_side_apply(&call, patch_doc, &manager).await;
        }
        if !matches!(
            call.body_type,
            BodyType::JsonPatch | BodyType::MergePatch | BodyType::StrategicMergePatch
        ) {
            return Err(ApiError::UnsupportedMediaType(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json".into(),
            ));
        }
        let precondition = if call.body_type == BodyType::JsonPatch {
            None
        } else {
            patch_doc
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
                .map(|rv| {
                    rv.parse::<i64>().map_err(|_| {
                        ApiError::BadRequest(format!("invalid resourceVersion {rv:?}"))
                    })
                })
                .transpose()?
        };
        let body_type = call.body_type;
        let scale = req.subresource == Some(Subresource::Scale);
        let validation_mode = call.query.field_validation;
        let mut warnings = Vec::new();
        let output = self
            .guaranteed_update(req, precondition, &manager, call.query.dry_run, |old| {
                let target = if scale {
                    scale_of(res, old)
                } else {
                    old.clone()
                };
                let patched = match body_type {
                    BodyType::JsonPatch => patch::json_patch(&target, &patch_doc),
                    BodyType::MergePatch => patch::merge_patch(&target, &patch_doc),
                    _ if scale => patch::merge_patch(&target, &patch_doc),
                    _ => patch::strategic_merge_patch(res, &target, &patch_doc),
                }
                .map_err(|e| ApiError::Unprocessable(e.to_string()))?;
                if scale {
                    return apply_scale(res, old, &patched);
                }
                check_shape(res, &patched).map_err(ApiError::Unprocessable)?;
                if validation_mode != FieldValidation::Ignore {
                    let unknown = fields::unknown_fields(res, &patched);
                    if validation_mode == FieldValidation::Strict && !unknown.is_empty() {
                        return Err(ApiError::BadRequest(format!(
                            "strict decoding error: {}",
                            unknown.join(", ")
                        )));
                    }
                    warnings = unknown;
                }
                Ok(patched)
            })
            .await?;
        let output = if scale {
            match output {
                Output::Object { code, object } => Output::Object {
                    code,
                    object: scale_of(res, &object),
                },
                other => other,
            }
        } else {
            output
        };
        Ok(Answer { output, warnings })
    }

    async fn server_side_apply(
        &self,
        call: &Call<'_>,
        applied: Value,
        manager: &str,
    ) -> Result<Answer, ApiError> {
        let req = call.req;
        let res = req.resource;
        let mut warnings = Vec::new();
        let mut applied = applied;
        objects::set_type(&mut applied, res);
        check_shape(res, &applied).map_err(ApiError::BadRequest)?;
        self.check_fields(call, res, &applied, &mut warnings)?;
        let force = call.query.force;
        let now = self.now();
        let name = req.name.clone().unwrap_or_default();
        for _ in 0..RETRIES {
            match self.read(req).await {
                Err(ApiError::NotFound { .. }) => {
                    let merged = apply::apply(res, None, &applied, manager, force, &now)
                        .map_err(|e| apply_error(res, &name, e))?;
                    let mut obj = merged;
                    if objects::name(&obj).is_none() {
                        meta_mut(&mut obj).insert("name".into(), Value::from(name.clone()));
                    }
                    match self
                        .create_object(req, obj, manager, call.query.dry_run, CreateKind::Apply)
                        .await
                    {
                        Ok(object) => {
                            return Ok(Answer {
                                output: Output::Object {
                                    code: http::StatusCode::CREATED,
                                    object,
                                },
                                warnings,
                            });
                        }
                        Err(ApiError::AlreadyExists { .. }) => continue,
                        Err(e) => return Err(e),
                    }
                }
                Err(e) => return Err(e),
                Ok((kv, stored)) => {
                    let old = self.present(res, stored.clone())?;
                    let merged = apply::apply(res, Some(&old), &applied, manager, force, &now)
                        .map_err(|e| apply_error(res, &name, e))?;
                    // `apply` has set the managed fields: the write records no Update entry.
                    match self
                        .write_update(req, &kv, &stored, merged, None, call.query.dry_run)
                        .await
                    {
                        Ok(output) => return Ok(Answer { output, warnings }),
                        Err(WriteError::Conflict) => continue,
                        Err(WriteError::Api(e)) => return Err(e),
                    }
                }
            }
        }
        Err(ApiError::conflict(res, &name))
    }

    async fn get_scale(&self, call: Call<'_>) -> Result<Output, ApiError> {
        let (_, obj) = self.read(call.req).await?;
        let obj = self.present(call.req.resource, obj)?;
        Ok(Output::Object {
            code: http::StatusCode::OK,
            object: scale_of(call.req.resource, &obj),
        })
    }

    async fn update_scale(&self, call: Call<'_>) -> Result<Answer, ApiError> {
        let req = call.req;
        let res = req.resource;
        let body = decode_value(&call.body, call.body_type)?;
        let precondition = objects::resource_version(&body)?;
        let manager = self.manager(&call);
        let output = self
            .guaranteed_update(req, precondition, &manager, call.query.dry_run, |old| {
                apply_scale(res, old, &body)
            })
            .await?;
        Ok(match output {
            Output::Object { code, object } => Output::Object {
                code,
                object: scale_of(res, &object),
            },
            other => other,
        }
        .into())
    }

    async fn bind(&self, call: Call<'_>) -> Result<Output, ApiError> {
        let req = call.req;
        let res = req.resource;
        let body = decode_value(&call.body, call.body_type)?;
        let node = body["target"]["name"].as_str().unwrap_or("").to_string();
        if node.is_empty() {
            return Err(ApiError::Invalid {
                group: String::new(),
                kind: "Binding".into(),
                name: req.name.clone().unwrap_or_default(),
                causes: vec![Cause {
                    reason: "FieldValueRequired".into(),
                    message: "Required value".into(),
                    field: "target.name".into(),
                }],
            });
        }
        let name = req.name.clone().unwrap_or_default();
        let now = self.now();
        let manager = self.manager(&call);
        for _ in 0..RETRIES {
            let (kv, mut pod) = self.read(req).await?;
            if objects::is_deleting(&pod) {
                return Err(ApiError::conflict_with(
                    res,
                    &name,
                    "pod is being deleted, cannot be assigned to a host",
                ));
            }
            if let Some(current) = pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) {
                return Err(ApiError::conflict_with(
                    res,
                    &name,
                    &format!("pod {name} is already assigned to node {current:?}"),
                ));
            }
            if let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) {
                spec.insert("nodeName".into(), Value::from(node.clone()));
            }
            set_condition(&mut pod, "PodScheduled", "True", &now);
            apply::track_update(res, None, &mut pod, &manager, &now);
            match self
                .store
                .update(&kv.key, objects::encode(&pod)?, kv.mod_revision)
                .await
            {
                Ok(_) => {
                    return Ok(Output::Object {
                        code: http::StatusCode::CREATED,
                        object: json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
                    });
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(store_error(e)),
            }
        }
        Err(ApiError::conflict(res, &name))
    }

    async fn evict(&self, call: Call<'_>) -> Result<Output, ApiError> {
        let req = call.req;
        let body = decode_value(&call.body, call.body_type).unwrap_or(Value::Null);
        let options = body.get("deleteOptions").cloned().unwrap_or(Value::Null);
        let delete = ResourceRequest {
            verb: Verb::Delete,
            subresource: None,
            ..req.clone()
        };
        self.delete_one(&delete, call.query, &options).await?;
        Ok(Output::Object {
            code: http::StatusCode::CREATED,
            object: json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
        })
    }

    async fn delete(&self, call: Call<'_>) -> Result<Output, ApiError> {
        let options = if call.body.is_empty() {
            Value::Null
        } else {
            decode_value(&call.body, call.body_type)?
        };
        self.delete_one(call.req, call.query, &options).await
    }

    async fn delete_one(
        &self,
        req: &ResourceRequest,
        query: &Query,
        options: &Value,
    ) -> Result<Output, ApiError> {
        let res = req.resource;
        let storage = registry::storage_of(res);
        let name = req.name.clone().unwrap_or_default();
        let dry_run = query.dry_run
            || options["dryRun"]
                .as_array()
                .is_some_and(|a| a.iter().any(|v| v == "All"));
        let grace_option = query
            .grace_period_seconds
            .or_else(|| options["gracePeriodSeconds"].as_i64());
        let propagation = match (
            query.propagation_policy,
            options["propagationPolicy"].as_str(),
        ) {
            (Some(p), _) => Some(p),
            (None, Some(p)) => Some(crate::request::parse_propagation(p)?),
            (None, None) => match query
                .orphan_dependents
                .or(options["orphanDependents"].as_bool())
            {
                Some(true) => Some(Propagation::Orphan),
                Some(false) => Some(Propagation::Background),
                None => None,
            },
        };
        for _ in 0..RETRIES {
            let (kv, mut obj) = self.read(req).await?;
            if let Some(uid) = options["preconditions"]["uid"].as_str()
                && objects::uid(&obj) != Some(uid)
            {
                return Err(ApiError::conflict_with(
                    res,
                    &name,
                    &format!(
                        "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                        objects::uid(&obj).unwrap_or("")
                    ),
                ));
            }
            if let Some(rv) = options["preconditions"]["resourceVersion"].as_str()
                && rv != kv.mod_revision.to_string()
            {
                return Err(ApiError::conflict_with(
                    res,
                    &name,
                    &format!(
                        "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                        kv.mod_revision
                    ),
                ));
            }
            let is_pod = (storage.group, storage.kind) == ("", "Pod");
            let grace = if is_pod {
                let bound = obj["spec"]["nodeName"]
                    .as_str()
                    .is_some_and(|n| !n.is_empty());
                let finished = matches!(
                    obj["status"]["phase"].as_str(),
                    Some("Succeeded" | "Failed")
                );
                if !bound || finished {
                    0
                } else {
                    grace_option
                        .or_else(|| obj["spec"]["terminationGracePeriodSeconds"].as_i64())
                        .unwrap_or(30)
                        .max(0)
                }
            } else {
                0
            };
            let mut finalizers = objects::finalizers(&obj);
            match propagation {
                Some(Propagation::Foreground)
                    if !finalizers.iter().any(|f| f == "foregroundDeletion") =>
                {
                    finalizers.push("foregroundDeletion".into());
                }
                Some(Propagation::Orphan) if !finalizers.iter().any(|f| f == "orphan") => {
                    finalizers.push("orphan".into());
                }
                _ => {}
            }
            let namespace_finalizers = (storage.group, storage.kind) == ("", "Namespace")
                && obj["spec"]["finalizers"]
                    .as_array()
                    .is_some_and(|a| !a.is_empty());
            let already = objects::is_deleting(&obj);
            if grace > 0 || !finalizers.is_empty() || namespace_finalizers {
                let now = self.clock.now();
                let m = meta_mut(&mut obj);
                let previous_grace = m.get("deletionGracePeriodSeconds").and_then(Value::as_i64);
                let shorten = previous_grace.is_none_or(|p| grace < p);
                if !already || (is_pod && shorten) {
                    let at = now
                        .checked_add(jiff::SignedDuration::from_secs(grace))
                        .unwrap_or(now);
                    m.insert(
                        "deletionTimestamp".into(),
                        Value::from(objects::format_time(at)),
                    );
                    m.insert("deletionGracePeriodSeconds".into(), Value::from(grace));
                }
                m.insert("finalizers".into(), json!(finalizers));
                if namespace_finalizers
                    && let Some(status) = obj
                        .as_object_mut()
                        .map(|o| o.entry("status").or_insert_with(|| json!({})))
                    && let Some(s) = status.as_object_mut()
                {
                    s.insert("phase".into(), Value::from("Terminating"));
                }
                if dry_run {
                    return Ok(Output::Object {
                        code: http::StatusCode::OK,
                        object: self.present(res, obj)?,
                    });
                }
                match self
                    .store
                    .update(&kv.key, objects::encode(&obj)?, kv.mod_revision)
                    .await
                {
                    Ok(rev) => {
                        objects::set_resource_version(&mut obj, rev);
                        return Ok(Output::Object {
                            code: http::StatusCode::OK,
                            object: self.present(res, obj)?,
                        });
                    }
                    Err(StoreError::Conflict { .. }) => continue,
                    Err(e) => return Err(store_error(e)),
                }
            }
            if dry_run {
                return Ok(Output::Object {
                    code: http::StatusCode::OK,
                    object: self.present(res, obj)?,
                });
            }
            match self.store.delete(&kv.key, Some(kv.mod_revision)).await {
                Ok((rev, _)) => {
                    objects::set_resource_version(&mut obj, rev);
                    if matches!(storage.kind, "Pod" | "Service" | "Namespace")
                        && storage.group.is_empty()
                    {
                        return Ok(Output::Object {
                            code: http::StatusCode::OK,
                            object: self.present(res, obj)?,
                        });
                    }
                    return Ok(Output::Status(status::success(
                        res,
                        &name,
                        objects::uid(&obj),
                    )));
                }
                Err(StoreError::Conflict { current: None, .. } | StoreError::NotFound) => {
                    return Err(ApiError::not_found(res, &name));
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(store_error(e)),
            }
        }
        Err(ApiError::conflict(res, &name))
    }

    async fn delete_collection(&self, call: Call<'_>) -> Result<Output, ApiError> {
        let req = call.req;
        let options = if call.body.is_empty() {
            Value::Null
        } else {
            decode_value(&call.body, call.body_type)?
        };
        let list_req = ResourceRequest {
            verb: Verb::List,
            ..req.clone()
        };
        let mut list_query = call.query.clone();
        list_query.limit = None;
        list_query.continue_token = None;
        let list = self
            .list(Call {
                req: &list_req,
                query: &list_query,
                body: Bytes::new(),
                body_type: BodyType::Json,
                user: call.user,
                user_agent: call.user_agent,
            })
            .await?;
        let mut deleted = Vec::new();
        for item in list.items {
            let obj = item.value();
            let one = ResourceRequest {
                verb: Verb::Delete,
                namespace: objects::namespace(obj).map(str::to_string),
                name: objects::name(obj).map(str::to_string),
                ..req.clone()
            };
            match self.delete_one(&one, call.query, &options).await {
                Ok(Output::Object { object, .. }) => deleted.push(object),
                Ok(_) => deleted.push(obj.clone()),
                Err(ApiError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Output::List(ListBody {
            items: deleted.into_iter().map(Item::Owned).collect(),
            revision: list.revision,
            continue_token: None,
            remaining: None,
        }))
    }
}

/// Why a write did not happen.
#[derive(Debug)]
enum WriteError {
    /// The object changed since it was read.
    Conflict,
    Api(ApiError),
}

impl From<ApiError> for WriteError {
    fn from(e: ApiError) -> Self {
        WriteError::Api(e)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CreateKind {
    Create,
    Apply,
}

fn apply_error(res: &Resource, name: &str, e: apply::ApplyError) -> ApiError {
    match e {
        apply::ApplyError::Conflicts(conflicts) => {
            let causes = conflicts
                .iter()
                .map(|c| Cause {
                    reason: "FieldManagerConflict".into(),
                    message: format!("conflict with {}", c.manager),
                    field: c.field.clone(),
                })
                .collect();
            ApiError::ApplyConflict {
                group: res.group.to_string(),
                resource: res.qualified(),
                name: name.to_string(),
                message: apply::ApplyError::Conflicts(conflicts).to_string(),
                causes,
            }
        }
        apply::ApplyError::Invalid(m) => ApiError::Unprocessable(m),
    }
}

/// Whether a deleting namespace still waits for its spec finalizers (the namespace controller).
fn namespace_pending(res: &Resource, obj: &Value) -> bool {
    (res.group, res.kind) == ("", "Namespace")
        && obj["spec"]["finalizers"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
}

/// Turns a body into a JSON value (JSON or YAML).
pub fn decode_value(body: &[u8], body_type: BodyType) -> Result<Value, ApiError> {
    if body_type == BodyType::Protobuf {
        return oxkube_api::protobuf::decode(body).map_err(|e| {
            ApiError::BadRequest(format!(
                "the object provided is unrecognized: cannot decode the protobuf body: {e}"
            ))
        });
    }
    let yaml = matches!(body_type, BodyType::Yaml | BodyType::ApplyPatch);
    let json_first = serde_json::from_slice::<Value>(body);
    match json_first {
        Ok(v) => Ok(v),
        Err(e) if !yaml => Err(ApiError::BadRequest(format!(
            "the object provided is unrecognized: couldn't decode the body as JSON: {e}"
        ))),
        Err(_) => serde_yaml_ng::from_slice::<Value>(body)
            .map_err(|e| ApiError::BadRequest(format!("error decoding YAML: {e}"))),
    }
}

fn validate(res: &Resource, obj: &Value, old: Option<&Value>) -> Result<(), ApiError> {
    let errors = validation::validate(res, obj, old);
    if errors.is_empty() {
        return Ok(());
    }
    Err(ApiError::Invalid {
        group: res.group.to_string(),
        kind: res.kind.to_string(),
        name: objects::name(obj).unwrap_or("").to_string(),
        causes: errors
            .iter()
            .map(|e| Cause {
                reason: e.reason().to_string(),
                message: e.message(),
                field: e.field.clone(),
            })
            .collect(),
    })
}

/// On create, status is the server's: reset it for kinds with a status subresource (nodes keep
/// theirs, as upstream), then set the first phase where upstream does.
fn reset_status_on_create(res: &Resource, obj: &mut Value) {
    let Some(map) = obj.as_object_mut() else {
        return;
    };
    match (res.group, res.kind) {
        ("", "Node") | ("storage.k8s.io", "VolumeAttachment") => {}
        ("", "Pod") => {
            map.insert("status".into(), json!({"phase": "Pending"}));
        }
        ("", "Namespace") => {
            map.insert("status".into(), json!({"phase": "Active"}));
        }
        ("", "PersistentVolume") | ("", "PersistentVolumeClaim") => {
            map.insert("status".into(), json!({"phase": "Pending"}));
        }
        ("", "Service") => {
            map.insert("status".into(), json!({"loadBalancer": {}}));
        }
        _ if res.has(Subresource::Status) => {
            map.insert("status".into(), json!({}));
        }
        _ => {}
    }
}

/// Decodes the object as its typed form: a body of the wrong shape is refused with upstream's words.
fn check_shape(res: &Resource, obj: &Value) -> Result<(), String> {
    (res.check)(obj).map_err(|e| {
        format!(
            "{} in version {:?} cannot be handled as a {}: {e}",
            res.kind, res.version, res.kind
        )
    })
}

/// A Secret's `stringData` is write-only: each entry goes into `data`, base64-encoded.
fn merge_string_data(obj: &mut Value) {
    let Some(map) = obj.as_object_mut() else {
        return;
    };
    let Some(Value::Object(strings)) = map.remove("stringData") else {
        return;
    };
    let data = map.entry("data").or_insert_with(|| json!({}));
    if !data.is_object() {
        *data = json!({});
    }
    if let Some(data) = data.as_object_mut() {
        for (k, v) in strings {
            let text = v.as_str().unwrap_or_default();
            data.insert(
                k,
                Value::from(base64::engine::general_purpose::STANDARD.encode(text)),
            );
        }
    }
}

/// upstream's QoS classes from container requests and limits.
fn qos_class(pod: &Value) -> &'static str {
    let containers: Vec<&Value> = ["containers", "initContainers"]
        .iter()
        .flat_map(|k| pod["spec"][*k].as_array().into_iter().flatten())
        .collect();
    let mut any = false;
    let mut guaranteed = true;
    for c in &containers {
        let requests = c["resources"]["requests"].as_object();
        let limits = c["resources"]["limits"].as_object();
        for r in ["cpu", "memory"] {
            let req = requests.and_then(|m| m.get(r));
            let lim = limits.and_then(|m| m.get(r));
            if req.is_some() || lim.is_some() {
                any = true;
            }
            match (req, lim) {
                (_, None) => guaranteed = false,
                (Some(q), Some(l)) if q != l => guaranteed = false,
                _ => {}
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

fn set_condition(obj: &mut Value, kind: &str, status: &str, now: &str) {
    let Some(map) = obj.as_object_mut() else {
        return;
    };
    let st = map.entry("status").or_insert_with(|| json!({}));
    let Some(st) = st.as_object_mut() else { return };
    let conditions = st.entry("conditions").or_insert_with(|| json!([]));
    let Some(list) = conditions.as_array_mut() else {
        return;
    };
    list.retain(|c| c["type"] != kind);
    list.push(
        json!({"type": kind, "status": status, "lastProbeTime": null, "lastTransitionTime": now}),
    );
}

/// The autoscaling/v1 Scale view of a scalable object.
fn scale_of(res: &Resource, obj: &Value) -> Value {
    let m = meta(obj);
    let selector = match &obj["spec"]["selector"] {
        Value::Object(sel)
            if sel.contains_key("matchLabels") || sel.contains_key("matchExpressions") =>
        {
            selector_string(sel)
        }
        Value::Object(labels) => labels
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
            .collect::<Vec<_>>()
            .join(","),
        _ => String::new(),
    };
    let mut metadata = Map::new();
    for key in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = m.get(key) {
            metadata.insert(key.into(), v.clone());
        }
    }
    let _ = res;
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": metadata,
        "spec": {"replicas": obj["spec"]["replicas"].as_i64().unwrap_or(1)},
        "status": {
            "replicas": obj["status"]["replicas"].as_i64().unwrap_or(0),
            "selector": selector,
        },
    })
}

fn selector_string(sel: &Map<String, Value>) -> String {
    let mut parts: Vec<String> = sel
        .get("matchLabels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect();
    for e in sel
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = e["key"].as_str().unwrap_or("");
        let values: Vec<&str> = e["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        match e["operator"].as_str() {
            Some("In") => parts.push(format!("{key} in ({})", values.join(","))),
            Some("NotIn") => parts.push(format!("{key} notin ({})", values.join(","))),
            Some("Exists") => parts.push(key.to_string()),
            Some("DoesNotExist") => parts.push(format!("!{key}")),
            _ => {}
        }
    }
    parts.join(",")
}

/// Sets `spec.replicas` from a Scale.
fn apply_scale(res: &Resource, old: &Value, scale: &Value) -> Result<Value, ApiError> {
    let replicas = scale["spec"]["replicas"]
        .as_i64()
        .ok_or_else(|| ApiError::Invalid {
            group: "autoscaling".into(),
            kind: "Scale".into(),
            name: objects::name(old).unwrap_or("").into(),
            causes: vec![Cause {
                reason: "FieldValueRequired".into(),
                message: "Required value".into(),
                field: "spec.replicas".into(),
            }],
        })?;
    if replicas < 0 {
        return Err(ApiError::Invalid {
            group: "autoscaling".into(),
            kind: "Scale".into(),
            name: objects::name(old).unwrap_or("").into(),
            causes: vec![Cause {
                reason: "FieldValueInvalid".into(),
                message: format!("Invalid value: {replicas}: must be greater than or equal to 0"),
                field: "spec.replicas".into(),
            }],
        });
    }
    let mut new = old.clone();
    if let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("replicas".into(), Value::from(replicas));
    }
    let _ = res;
    Ok(new)
}

/// Label and field selection of a list or watch.
#[derive(Debug)]
struct Filter {
    res: &'static Resource,
    labels: LabelSelector,
    fields: FieldSelector,
    fields_given: bool,
}

impl Filter {
    fn new(res: &'static Resource, q: &Query) -> Result<Self, ApiError> {
        let labels = match q.label_selector.as_deref() {
            Some(s) => LabelSelector::parse(s)
                .map_err(|e| ApiError::BadRequest(format!("unable to parse requirement: {e}")))?,
            None => LabelSelector::everything(),
        };
        let fields = match q.field_selector.as_deref() {
            Some(s) => FieldSelector::parse(s).map_err(|e| ApiError::BadRequest(e.to_string()))?,
            None => FieldSelector::everything(),
        };
        fields
            .check_supported(res)
            .map_err(|e| ApiError::BadRequest(e.to_string()))?;
        let fields_given = q
            .field_selector
            .as_deref()
            .is_some_and(|s| !s.trim().is_empty());
        Ok(Filter {
            res,
            labels,
            fields,
            fields_given,
        })
    }

    fn everything(&self) -> bool {
        self.labels.is_everything() && !self.fields_given
    }

    fn matches(&self, obj: &Value) -> bool {
        let labels = meta(obj).get("labels").cloned().unwrap_or(Value::Null);
        self.labels.matches(&labels) && self.fields.matches(self.res, obj)
    }
}

/// The watch event a change makes for a filtered watcher (upstream's cacheWatcher rules: moving into
/// the selection is ADDED, out of it DELETED).
fn watch_event(
    res: &'static Resource,
    filter: &Filter,
    change: &cache::Change,
) -> Option<WatchEvent> {
    let now = filter.matches(&change.entry.object);
    let before = change
        .prev
        .as_ref()
        .is_some_and(|p| filter.matches(&p.object));
    let kind = match change.kind {
        ChangeKind::Added if now => "ADDED",
        ChangeKind::Modified if now && before => "MODIFIED",
        ChangeKind::Modified if now => "ADDED",
        ChangeKind::Modified if before => "DELETED",
        ChangeKind::Deleted if now || before => "DELETED",
        _ => return None,
    };
    // Stored objects carry their kind and apiVersion: the cached bytes go out as they are.
    let object = if res.is_storage() {
        Item::Cached(change.entry.clone())
    } else {
        match convert::from_storage(res, change.entry.object.clone()) {
            Ok(mut o) => {
                objects::set_type(&mut o, res);
                Item::Owned(o)
            }
            Err(e) => return Some(WatchEvent::Error(ApiError::Internal(e.to_string()))),
        }
    };
    Some(WatchEvent::Object { kind, object })
}

/// Adds a bookmark after a minute without events, when the client allows them.
fn with_bookmarks(
    events: impl Stream<Item = WatchEvent> + Send + 'static,
    allow: bool,
    cache: Arc<Cache>,
) -> impl Stream<Item = WatchEvent> + Send + 'static {
    const EVERY: Duration = Duration::from_secs(60);
    struct State<S> {
        events: std::pin::Pin<Box<S>>,
        cache: Arc<Cache>,
        allow: bool,
        position: Revision,
    }
    let state = State {
        events: Box::pin(events),
        cache,
        allow,
        position: 0,
    };
    futures::stream::unfold(state, |mut state| async move {
        let next = if state.allow {
            match tokio::time::timeout(EVERY, state.events.next()).await {
                Ok(next) => next,
                Err(_) => {
                    let revision = state.cache.revision().max(state.position);
                    state.position = revision;
                    let bookmark = WatchEvent::Bookmark {
                        revision,
                        initial_events_end: false,
                    };
                    return Some((bookmark, state));
                }
            }
        } else {
            state.events.next().await
        };
        let event = next?;
        if let WatchEvent::Object { object, .. } = &event
            && let Ok(Some(rv)) = objects::resource_version(object.value())
        {
            state.position = rv;
        }
        Some((event, state))
    })
}

fn parse_rv(rv: Option<&str>) -> Result<Option<i64>, ApiError> {
    rv.map(|s| {
        s.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "resourceVersion: Invalid value: {s:?}: must be a number"
            ))
        })
    })
    .transpose()
}

fn encode_continue(revision: Revision, start: &[u8]) -> String {
    let token =
        json!({"v": "meta.k8s.io/v1", "rv": revision, "start": String::from_utf8_lossy(start)});
    base64::engine::general_purpose::URL_SAFE.encode(token.to_string())
}

fn decode_continue(token: &str, prefix: &str) -> Result<(Revision, String), ApiError> {
    let bad = || ApiError::BadRequest(format!("continue key is not valid: {token:?}"));
    let raw = base64::engine::general_purpose::URL_SAFE
        .decode(token)
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    if v["v"] != "meta.k8s.io/v1" {
        return Err(bad());
    }
    let rv = v["rv"].as_i64().filter(|r| *r > 0).ok_or_else(bad)?;
    let start = v["start"].as_str().ok_or_else(bad)?;
    if start.contains("..") || start.starts_with('/') {
        return Err(bad());
    }
    Ok((rv, format!("{prefix}{start}")))
}

fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..5)
        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip_and_refuse_garbage() {
        let t = encode_continue(42, b"default/web");
        assert_eq!(
            decode_continue(&t, "/registry/pods/"),
            Ok((42, "/registry/pods/default/web".to_string()))
        );
        assert!(decode_continue("nope", "/p/").is_err());
        let evil = base64::engine::general_purpose::URL_SAFE
            .encode(r#"{"v":"meta.k8s.io/v1","rv":3,"start":"../secrets/x"}"#);
        assert!(decode_continue(&evil, "/registry/pods/").is_err());
    }

    #[test]
    fn qos_classes() {
        assert_eq!(
            qos_class(&json!({"spec": {"containers": [{"name": "a"}]}})),
            "BestEffort"
        );
        let g = json!({"spec": {"containers": [{"resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1", "memory": "1Gi"}}}]}});
        assert_eq!(qos_class(&g), "Guaranteed");
        let b = json!({"spec": {"containers": [{"resources": {"requests": {"cpu": "1"}}}]}});
        assert_eq!(qos_class(&b), "Burstable");
    }

    #[test]
    fn scale_views() {
        let deploy = registry::find("apps", "v1", "deployments").expect("deployments");
        let d = json!({"metadata": {"name": "web", "namespace": "a", "resourceVersion": "5"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}}, "status": {"replicas": 2}});
        let s = scale_of(deploy, &d);
        assert_eq!(s["spec"]["replicas"], 3);
        assert_eq!(s["status"]["selector"], "app=web");
        let scaled = apply_scale(deploy, &d, &json!({"spec": {"replicas": 5}})).expect("scale");
        assert_eq!(scaled["spec"]["replicas"], 5);
        assert!(apply_scale(deploy, &d, &json!({"spec": {"replicas": -1}})).is_err());
    }

    #[test]
    fn bodies_decode_as_json_or_yaml() {
        assert_eq!(
            decode_value(b"{\"a\":1}", BodyType::Json),
            Ok(json!({"a": 1}))
        );
        assert_eq!(decode_value(b"a: 1\n", BodyType::Yaml), Ok(json!({"a": 1})));
        assert!(decode_value(b"a: 1\n", BodyType::Json).is_err());
        assert!(decode_value(b"{{{", BodyType::Yaml).is_err());
    }
}
