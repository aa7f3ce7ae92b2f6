//! Shared informers: one list+watch per resource type (kube-runtime's `watcher`, which re-lists on 410
//! Gone), feeding a local cache with indexes by namespace, by owner UID and by node name. The informer
//! task is the cache's only writer; [`Informer`] handles are cheap clones that read it and register
//! change handlers. [`Informers`] hands every controller the same informer for a type.

use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::sync::Arc;

use futures::{StreamExt, future::BoxFuture};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DynamicObject};
use kube::core::ApiResource;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use parking_lot::{Mutex, RwLock};
use serde::de::DeserializeOwned;
use tokio::sync::watch;

/// Namespace (empty when cluster-scoped) and name of a cached object.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    /// Empty for cluster-scoped objects.
    pub namespace: String,
    /// The object's name.
    pub name: String,
}

impl ObjectKey {
    /// The key of a namespaced object.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        ObjectKey {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// The key of `obj`.
    pub fn of<K: Resource>(obj: &K) -> Self {
        ObjectKey {
            namespace: obj.meta().namespace.clone().unwrap_or_default(),
            name: obj.meta().name.clone().unwrap_or_default(),
        }
    }
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{}", self.name)
        } else {
            write!(f, "{}/{}", self.namespace, self.name)
        }
    }
}

/// One change seen by an informer.
#[derive(Debug)]
pub enum Change<K> {
    /// A new object.
    Added(Arc<K>),
    /// An object changed (old, new).
    Updated(Arc<K>, Arc<K>),
    /// An object is gone (its last known state).
    Deleted(Arc<K>),
}

type Handler<K> = Arc<dyn Fn(&Change<K>) + Send + Sync>;
type NodeIndex<K> = fn(&K) -> Option<String>;

#[derive(Debug)]
struct Cache<K> {
    objects: HashMap<ObjectKey, Arc<K>>,
    by_namespace: HashMap<String, HashSet<ObjectKey>>,
    by_owner: HashMap<String, HashSet<ObjectKey>>,
    by_node: HashMap<String, HashSet<ObjectKey>>,
}

fn index_insert(index: &mut HashMap<String, HashSet<ObjectKey>>, value: &str, key: &ObjectKey) {
    index
        .entry(value.to_string())
        .or_default()
        .insert(key.clone());
}

fn index_remove(index: &mut HashMap<String, HashSet<ObjectKey>>, value: &str, key: &ObjectKey) {
    if let Some(set) = index.get_mut(value) {
        set.remove(key);
        if set.is_empty() {
            index.remove(value);
        }
    }
}

impl<K: Resource> Cache<K> {
    fn new() -> Self {
        Cache {
            objects: HashMap::new(),
            by_namespace: HashMap::new(),
            by_owner: HashMap::new(),
            by_node: HashMap::new(),
        }
    }

    fn unindex(&mut self, key: &ObjectKey, obj: &K, node_index: Option<NodeIndex<K>>) {
        index_remove(&mut self.by_namespace, &key.namespace, key);
        for owner in obj.meta().owner_references.iter().flatten() {
            index_remove(&mut self.by_owner, &owner.uid, key);
        }
        if let Some(node) = node_index.and_then(|f| f(obj)) {
            index_remove(&mut self.by_node, &node, key);
        }
    }

    fn put(&mut self, obj: Arc<K>, node_index: Option<NodeIndex<K>>) -> Option<Arc<K>> {
        let key = ObjectKey::of(obj.as_ref());
        let old = self.objects.insert(key.clone(), obj.clone());
        if let Some(old) = &old {
            self.unindex(&key, old, node_index);
        }
        index_insert(&mut self.by_namespace, &key.namespace, &key);
        for owner in obj.meta().owner_references.iter().flatten() {
            index_insert(&mut self.by_owner, &owner.uid, &key);
        }
        if let Some(node) = node_index.and_then(|f| f(&obj)) {
            index_insert(&mut self.by_node, &node, &key);
        }
        old
    }

    fn remove(&mut self, key: &ObjectKey, node_index: Option<NodeIndex<K>>) -> Option<Arc<K>> {
        let old = self.objects.remove(key)?;
        self.unindex(key, &old, node_index);
        Some(old)
    }

    fn collect(&self, keys: Option<&HashSet<ObjectKey>>) -> Vec<Arc<K>> {
        keys.into_iter()
            .flatten()
            .filter_map(|k| self.objects.get(k).cloned())
            .collect()
    }
}

struct Shared<K> {
    api: Api<K>,
    cache: RwLock<Cache<K>>,
    handlers: RwLock<Vec<Handler<K>>>,
    synced: watch::Sender<bool>,
    node_index: Option<NodeIndex<K>>,
}

/// A cheap, cloneable handle on one resource type's shared cache.
pub struct Informer<K> {
    shared: Arc<Shared<K>>,
}

impl<K> Clone for Informer<K> {
    fn clone(&self) -> Self {
        Informer {
            shared: self.shared.clone(),
        }
    }
}

impl<K> Debug for Informer<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Informer")
            .field("synced", &*self.shared.synced.borrow())
            .finish_non_exhaustive()
    }
}

/// What an informer's object type must offer.
pub trait Object: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static {}
impl<K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static> Object for K {}

impl<K: Object> Informer<K> {
    fn new(api: Api<K>, node_index: Option<NodeIndex<K>>) -> Self {
        Informer {
            shared: Arc::new(Shared {
                api,
                cache: RwLock::new(Cache::new()),
                handlers: RwLock::new(Vec::new()),
                synced: watch::channel(false).0,
                node_index,
            }),
        }
    }

    /// Calls `handler` on every later change (register before the informers start to see the first list).
    pub fn on_change(&self, handler: impl Fn(&Change<K>) + Send + Sync + 'static) {
        self.shared.handlers.write().push(Arc::new(handler));
    }

    /// The cached object `namespace/name` (namespace empty for cluster-scoped).
    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<K>> {
        self.shared
            .cache
            .read()
            .objects
            .get(&ObjectKey::new(namespace, name))
            .cloned()
    }

    /// Every cached object.
    pub fn list(&self) -> Vec<Arc<K>> {
        self.shared.cache.read().objects.values().cloned().collect()
    }

    /// The cached objects in `namespace`.
    pub fn by_namespace(&self, namespace: &str) -> Vec<Arc<K>> {
        let cache = self.shared.cache.read();
        cache.collect(cache.by_namespace.get(namespace))
    }

    /// The cached objects with an owner reference to `uid`.
    pub fn by_owner(&self, uid: &str) -> Vec<Arc<K>> {
        let cache = self.shared.cache.read();
        cache.collect(cache.by_owner.get(uid))
    }

    /// The cached objects on node `node` (types with a node index: pods).
    pub fn by_node(&self, node: &str) -> Vec<Arc<K>> {
        let cache = self.shared.cache.read();
        cache.collect(cache.by_node.get(node))
    }

    /// Whether the first list completed.
    pub fn has_synced(&self) -> bool {
        *self.shared.synced.borrow()
    }

    /// Resolves once the first list completed.
    pub async fn wait_synced(&self) {
        let mut rx = self.shared.synced.subscribe();
        // The sender lives as long as `self`, so this cannot fail while we wait.
        let _ = rx.wait_for(|s| *s).await;
    }

    /// The API handle this informer watches.
    pub fn api(&self) -> &Api<K> {
        &self.shared.api
    }

    fn dispatch(&self, changes: Vec<Change<K>>) {
        if changes.is_empty() {
            return;
        }
        let handlers = self.shared.handlers.read().clone();
        for change in &changes {
            for handler in &handlers {
                handler(change);
            }
        }
    }

    /// Applies one watcher event to the cache (the only writer) and returns the changes it made.
    fn apply(
        &self,
        event: watcher::Event<K>,
        relist: &mut Option<HashMap<ObjectKey, K>>,
    ) -> Vec<Change<K>> {
        let node_index = self.shared.node_index;
        match event {
            watcher::Event::Init => {
                *relist = Some(HashMap::new());
                Vec::new()
            }
            watcher::Event::InitApply(obj) => {
                if let Some(buffer) = relist.as_mut() {
                    buffer.insert(ObjectKey::of(&obj), obj);
                }
                Vec::new()
            }
            watcher::Event::InitDone => {
                let fresh = relist.take().unwrap_or_default();
                let mut cache = self.shared.cache.write();
                let gone: Vec<ObjectKey> = cache
                    .objects
                    .keys()
                    .filter(|k| !fresh.contains_key(*k))
                    .cloned()
                    .collect();
                let mut changes = Vec::new();
                for key in gone {
                    if let Some(old) = cache.remove(&key, node_index) {
                        changes.push(Change::Deleted(old));
                    }
                }
                for (_, obj) in fresh {
                    let obj = Arc::new(obj);
                    match cache.put(obj.clone(), node_index) {
                        Some(old) if old.resource_version() == obj.resource_version() => {}
                        Some(old) => changes.push(Change::Updated(old, obj)),
                        None => changes.push(Change::Added(obj)),
                    }
                }
                drop(cache);
                self.shared.synced.send_replace(true);
                changes
            }
            watcher::Event::Apply(obj) => {
                let obj = Arc::new(obj);
                let old = self.shared.cache.write().put(obj.clone(), node_index);
                vec![match old {
                    Some(old) => Change::Updated(old, obj),
                    None => Change::Added(obj),
                }]
            }
            watcher::Event::Delete(obj) => {
                let key = ObjectKey::of(&obj);
                let old = self.shared.cache.write().remove(&key, node_index);
                vec![Change::Deleted(old.unwrap_or_else(|| Arc::new(obj)))]
            }
        }
    }

    /// The informer loop: list, watch, re-list on expiry; runs until dropped.
    pub async fn run(self) {
        let stream = watcher(self.shared.api.clone(), watcher::Config::default()).default_backoff();
        futures::pin_mut!(stream);
        let mut relist = None;
        while let Some(event) = stream.next().await {
            match event {
                Ok(event) => {
                    let changes = self.apply(event, &mut relist);
                    self.dispatch(changes);
                }
                Err(e) => tracing::debug!(error = %e, "informer watch error; retrying"),
            }
        }
    }
}

/// A metadata change handler: `(old, new)`, `None` = absent.
pub type MetaHandler = Arc<dyn Fn(Option<&ObjectMeta>, Option<&ObjectMeta>) + Send + Sync>;

/// An informer seen through object metadata only, whatever its type (the garbage collector's view).
pub trait MetaInformer: Send + Sync {
    /// The resource this informer watches.
    fn resource(&self) -> &ApiResource;
    /// Calls `handler(old, new)` on every later change (`None` = absent).
    fn on_meta_change(&self, handler: MetaHandler);
    /// The metadata of the cached object `namespace/name`.
    fn get_meta(&self, namespace: &str, name: &str) -> Option<ObjectMeta>;
    /// The metadata of the cached objects owned by `uid`.
    fn owned_by(&self, uid: &str) -> Vec<ObjectMeta>;
    /// The metadata of the cached objects in `namespace`.
    fn in_namespace(&self, namespace: &str) -> Vec<ObjectMeta>;
    /// Whether the first list completed.
    fn synced(&self) -> bool;
}

struct MetaView<K> {
    informer: Informer<K>,
    resource: ApiResource,
}

impl<K: Object> MetaInformer for MetaView<K> {
    fn resource(&self) -> &ApiResource {
        &self.resource
    }

    fn on_meta_change(&self, handler: MetaHandler) {
        self.informer.on_change(move |change| match change {
            Change::Added(o) => handler(None, Some(o.meta())),
            Change::Updated(old, new) => handler(Some(old.meta()), Some(new.meta())),
            Change::Deleted(o) => handler(Some(o.meta()), None),
        });
    }

    fn get_meta(&self, namespace: &str, name: &str) -> Option<ObjectMeta> {
        self.informer.get(namespace, name).map(|o| o.meta().clone())
    }

    fn owned_by(&self, uid: &str) -> Vec<ObjectMeta> {
        self.informer
            .by_owner(uid)
            .iter()
            .map(|o| o.meta().clone())
            .collect()
    }

    fn in_namespace(&self, namespace: &str) -> Vec<ObjectMeta> {
        self.informer
            .by_namespace(namespace)
            .iter()
            .map(|o| o.meta().clone())
            .collect()
    }

    fn synced(&self) -> bool {
        self.informer.has_synced()
    }
}

/// The resource identity informers are shared by: `group/version/kind`.
fn type_key(ar: &ApiResource) -> String {
    format!("{}/{}", ar.api_version, ar.kind)
}

#[derive(Default)]
struct Registry {
    typed: HashMap<String, Box<dyn Any + Send + Sync>>,
    metas: HashMap<String, Arc<dyn MetaInformer>>,
    runners: Vec<BoxFuture<'static, ()>>,
    started: bool,
}

/// The factory of shared informers: one per resource type, started together by the manager.
#[derive(Clone)]
pub struct Informers {
    client: Client,
    registry: Arc<Mutex<Registry>>,
}

impl Debug for Informers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let registry = self.registry.lock();
        f.debug_struct("Informers")
            .field("types", &registry.metas.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Node index for pods: `spec.nodeName`.
fn pod_node(pod: &k8s_openapi::api::core::v1::Pod) -> Option<String> {
    pod.spec
        .as_ref()?
        .node_name
        .clone()
        .filter(|n| !n.is_empty())
}

impl Informers {
    /// A factory whose informers list and watch through `client`.
    pub fn new(client: Client) -> Self {
        Informers {
            client,
            registry: Arc::new(Mutex::new(Registry::default())),
        }
    }

    /// The shared informer of `K` (cluster-wide), created on first use.
    pub fn typed<K>(&self) -> Informer<K>
    where
        K: Object + Resource<DynamicType = ()>,
    {
        let ar = ApiResource::erase::<K>(&());
        let key = type_key(&ar);
        let mut registry = self.registry.lock();
        if let Some(existing) = registry
            .typed
            .get(&key)
            .and_then(|b| b.downcast_ref::<Informer<K>>())
        {
            return existing.clone();
        }
        let node_index: Option<NodeIndex<K>> = Some(|obj: &K| {
            (obj as &dyn Any)
                .downcast_ref::<k8s_openapi::api::core::v1::Pod>()
                .and_then(pod_node)
        });
        let informer = Informer::new(Api::<K>::all(self.client.clone()), node_index);
        self.adopt(&mut registry, key.clone(), ar, informer.clone());
        registry.typed.insert(key, Box::new(informer.clone()));
        informer
    }

    /// A metadata view of the informer for `ar`: the typed one when a controller registered it, else a
    /// dynamic one created now.
    pub fn meta(&self, ar: &ApiResource) -> Arc<dyn MetaInformer> {
        let key = type_key(ar);
        let mut registry = self.registry.lock();
        if let Some(existing) = registry.metas.get(&key) {
            return existing.clone();
        }
        let api = Api::<DynamicObject>::all_with(self.client.clone(), ar);
        let informer = Informer::new(api, None);
        self.adopt(&mut registry, key, ar.clone(), informer)
    }

    /// Every metadata view registered so far.
    pub fn metas(&self) -> Vec<Arc<dyn MetaInformer>> {
        self.registry.lock().metas.values().cloned().collect()
    }

    fn adopt<K: Object>(
        &self,
        registry: &mut Registry,
        key: String,
        ar: ApiResource,
        informer: Informer<K>,
    ) -> Arc<dyn MetaInformer> {
        let runner = informer.clone().run();
        if registry.started {
            tokio::spawn(runner);
        } else {
            registry.runners.push(Box::pin(runner));
        }
        let view: Arc<dyn MetaInformer> = Arc::new(MetaView {
            informer,
            resource: ar,
        });
        registry.metas.insert(key, view.clone());
        view
    }

    /// Starts every informer registered so far (later ones start as they are created); the returned
    /// tasks run until aborted.
    pub fn start(&self) -> Vec<tokio::task::JoinHandle<()>> {
        let mut registry = self.registry.lock();
        registry.started = true;
        registry.runners.drain(..).map(tokio::spawn).collect()
    }

    /// Resolves once every registered informer listed once.
    pub async fn wait_synced(&self) {
        loop {
            if self.metas().iter().all(|m| m.synced()) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}
