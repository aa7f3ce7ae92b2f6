//! The scheduler's I/O shell: watches feed one loop (the cache's and the queue's only writer), the
//! loop runs one cycle at a time, and side effects — binding, events, status patches, victim
//! deletion — run as spawned tasks that report back through the same channel.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{Node, ObjectReference, PersistentVolumeClaim, Pod};
use k8s_openapi::api::scheduling::v1::PriorityClass;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::watcher::{self, Event as WatchEvent};
use kube::{Client, Resource, ResourceExt};
use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use crate::cache::{Cache, ClaimState};
use crate::explain::{self, ExplainReply};
use crate::framework::Profile;
use crate::pod::{PodInfo, SCHEDULER_NAME};
use crate::preemption;
use crate::queue::Queue;
use crate::schedule::{self, Outcome};

/// How the scheduler runs.
#[derive(Debug, Clone)]
pub struct Options {
    pub profile: Profile,
    /// Where the explain endpoint's address is written (`<dir>/scheduler-address`).
    pub data_dir: PathBuf,
}

/// What can stop the scheduler.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("starting the explain endpoint")]
    Explain(#[source] explain::ExplainError),
}

/// Everything the loop reacts to.
#[derive(Debug)]
pub(crate) enum Input {
    Pod(Box<WatchEvent<Pod>>),
    Node(Box<WatchEvent<Node>>),
    Claim(Box<WatchEvent<PersistentVolumeClaim>>),
    Class(Box<WatchEvent<StorageClass>>),
    Priority(Box<WatchEvent<PriorityClass>>),
    /// A binding finished (`ok == false`: undo the assumption and retry).
    Bound {
        key: String,
        ok: bool,
    },
    Explain {
        namespace: String,
        name: String,
        reply: oneshot::Sender<ExplainReply>,
    },
}

fn forward<K, S>(stream: S, tx: mpsc::UnboundedSender<Input>, wrap: fn(WatchEvent<K>) -> Input)
where
    K: Send + 'static,
    S: Stream<Item = Result<WatchEvent<K>, watcher::Error>> + Send + 'static,
{
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(ev) => {
                    if tx.send(wrap(ev)).is_err() {
                        return;
                    }
                }
                Err(_) if tx.is_closed() => return,
                Err(e) => tracing::warn!(error = %e, "scheduler watch failed; retrying"),
            }
        }
    });
}

fn watch<K>(client: &Client, tx: &mpsc::UnboundedSender<Input>, wrap: fn(WatchEvent<K>) -> Input)
where
    K: Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::all(client.clone());
    forward(watcher(api), tx.clone(), wrap);
}

fn watcher<K>(api: Api<K>) -> impl Stream<Item = Result<WatchEvent<K>, watcher::Error>> + Send
where
    K: Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
    K::DynamicType: Default,
{
    watcher::watcher(api, watcher::Config::default()).default_backoff()
}

/// The loop's states: wait for the first full list of pods and nodes, then schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Syncing { pods: bool, nodes: bool },
    Running,
    Stopped,
}

/// Pods and nodes seen during a relist, to drop what vanished.
#[derive(Debug, Default)]
struct Relist {
    pods: Option<HashSet<String>>,
    nodes: Option<HashSet<String>>,
}

struct Scheduler {
    client: Client,
    profile: Profile,
    cache: Cache,
    queue: Queue,
    /// Every pod the scheduler knows, by key (to tell spec changes from status changes).
    pods: HashMap<String, Arc<Pod>>,
    priorities: HashMap<String, i32>,
    global_default: Option<i32>,
    relist: Relist,
    recorder: Recorder,
    tx: mpsc::UnboundedSender<Input>,
    start: usize,
    tie: u64,
    /// Which initial lists have completed (`Running` once both have).
    synced: State,
}

fn is_terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

fn pod_key(pod: &Pod) -> String {
    format!("{}/{}", pod.namespace().unwrap_or_default(), pod.name_any())
}

/// Spec, labels or annotations changed (status-only updates do not requeue a parked pod).
fn meaningful_change(old: &Pod, new: &Pod) -> bool {
    old.spec != new.spec
        || old.metadata.labels != new.metadata.labels
        || old.metadata.annotations != new.metadata.annotations
        || old.metadata.deletion_timestamp != new.metadata.deletion_timestamp
}

/// Node fields that change where pods fit.
fn node_changed(old: &Node, new: &Node) -> bool {
    let spec = |n: &Node| n.spec.as_ref().map(|s| (s.taints.clone(), s.unschedulable));
    let alloc = |n: &Node| n.status.as_ref().and_then(|s| s.allocatable.clone());
    old.metadata.labels != new.metadata.labels || spec(old) != spec(new) || alloc(old) != alloc(new)
}

impl Scheduler {
    fn info(&self, pod: Arc<Pod>) -> Arc<PodInfo> {
        let explicit = pod.spec.as_ref().and_then(|s| s.priority).is_some();
        let class = pod
            .spec
            .as_ref()
            .and_then(|s| s.priority_class_name.clone());
        let mut info = PodInfo::new(pod);
        if !explicit {
            info.priority = class
                .and_then(|c| self.priorities.get(&c).copied())
                .or(self.global_default)
                .unwrap_or(0);
        }
        Arc::new(info)
    }

    fn on_pod(&mut self, ev: WatchEvent<Pod>, now: Instant) {
        match ev {
            WatchEvent::Init => self.relist.pods = Some(HashSet::new()),
            WatchEvent::InitApply(pod) => {
                if let Some(seen) = self.relist.pods.as_mut() {
                    seen.insert(pod_key(&pod));
                }
                self.apply_pod(pod, now);
            }
            WatchEvent::InitDone => {
                if let Some(seen) = self.relist.pods.take() {
                    let gone: Vec<String> = self
                        .pods
                        .keys()
                        .filter(|k| !seen.contains(*k))
                        .cloned()
                        .collect();
                    for k in gone {
                        self.delete_pod(&k, now);
                    }
                }
                if let State::Syncing { nodes, .. } = self.synced {
                    self.synced = State::Syncing { pods: true, nodes };
                }
            }
            WatchEvent::Apply(pod) => self.apply_pod(pod, now),
            WatchEvent::Delete(pod) => self.delete_pod(&pod_key(&pod), now),
        }
    }

    fn apply_pod(&mut self, pod: Pod, now: Instant) {
        let key = pod_key(&pod);
        if is_terminal(&pod) {
            self.delete_pod(&key, now);
            return;
        }
        let pod = Arc::new(pod);
        let old = self.pods.insert(key.clone(), pod.clone());
        let bound = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .is_some_and(|n| !n.is_empty());
        if bound {
            let changed = old.as_ref().is_none_or(|o| meaningful_change(o, &pod))
                || self.cache.pod_node(&key).is_none()
                || self.cache.is_assumed(&key);
            if changed {
                self.cache.upsert_pod(self.info(pod));
            }
            self.queue.remove(&key);
        } else if PodInfo::wants_scheduling(&pod) {
            if self.cache.is_assumed(&key) {
                return;
            }
            let info = self.info(pod.clone());
            let requeue = old.as_ref().is_none_or(|o| meaningful_change(o, &pod));
            if requeue || !self.queue.contains(&key) {
                self.queue.upsert(info, now);
            } else {
                self.queue.refresh(info);
            }
        } else {
            self.queue.remove(&key);
            if self.cache.remove_pod(&key) {
                self.queue.move_all(now);
            }
        }
    }

    fn delete_pod(&mut self, key: &str, now: Instant) {
        self.pods.remove(key);
        self.queue.remove(key);
        if self.cache.remove_pod(key) {
            self.queue.move_all(now);
        }
    }

    fn on_node(&mut self, ev: WatchEvent<Node>, now: Instant) {
        match ev {
            WatchEvent::Init => self.relist.nodes = Some(HashSet::new()),
            WatchEvent::InitApply(node) => {
                if let Some(seen) = self.relist.nodes.as_mut() {
                    seen.insert(node.name_any());
                }
                self.apply_node(node, now);
            }
            WatchEvent::InitDone => {
                if let Some(seen) = self.relist.nodes.take() {
                    let gone: Vec<String> = self
                        .cache
                        .nodes()
                        .iter()
                        .filter(|n| n.node.is_some() && !seen.contains(&n.name))
                        .map(|n| n.name.clone())
                        .collect();
                    for n in gone {
                        self.cache.remove_node(&n);
                    }
                }
                if let State::Syncing { pods, .. } = self.synced {
                    self.synced = State::Syncing { pods, nodes: true };
                }
            }
            WatchEvent::Apply(node) => self.apply_node(node, now),
            WatchEvent::Delete(node) => self.cache.remove_node(&node.name_any()),
        }
    }

    fn apply_node(&mut self, node: Node, now: Instant) {
        let changed = match self
            .cache
            .node(&node.name_any())
            .and_then(|n| n.node.clone())
        {
            None => true,
            Some(old) => node_changed(&old, &node),
        };
        self.cache.upsert_node(Arc::new(node));
        if changed {
            self.queue.move_all(now);
        }
    }

    fn on_claim(&mut self, ev: WatchEvent<PersistentVolumeClaim>, now: Instant) {
        match ev {
            WatchEvent::Apply(c) | WatchEvent::InitApply(c) => {
                let key = format!("{}/{}", c.namespace().unwrap_or_default(), c.name_any());
                let spec = c.spec.as_ref();
                let state = ClaimState {
                    bound: spec
                        .and_then(|s| s.volume_name.as_deref())
                        .is_some_and(|v| !v.is_empty())
                        || c.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound"),
                    storage_class: spec
                        .and_then(|s| s.storage_class_name.clone())
                        .unwrap_or_default(),
                };
                self.cache.volumes.claims.insert(key, state);
                self.queue.move_all(now);
            }
            WatchEvent::Delete(c) => {
                let key = format!("{}/{}", c.namespace().unwrap_or_default(), c.name_any());
                self.cache.volumes.claims.remove(&key);
            }
            WatchEvent::Init | WatchEvent::InitDone => {}
        }
    }

    fn on_class(&mut self, ev: WatchEvent<StorageClass>, now: Instant) {
        match ev {
            WatchEvent::Apply(c) | WatchEvent::InitApply(c) => {
                let name = c.name_any();
                if c.volume_binding_mode.as_deref() == Some("WaitForFirstConsumer") {
                    self.cache.volumes.wait_for_first_consumer.insert(name);
                } else {
                    self.cache.volumes.wait_for_first_consumer.remove(&name);
                }
                self.queue.move_all(now);
            }
            WatchEvent::Delete(c) => {
                self.cache
                    .volumes
                    .wait_for_first_consumer
                    .remove(&c.name_any());
            }
            WatchEvent::Init | WatchEvent::InitDone => {}
        }
    }

    fn on_priority(&mut self, ev: WatchEvent<PriorityClass>) {
        match ev {
            WatchEvent::Apply(c) | WatchEvent::InitApply(c) => {
                if c.global_default == Some(true) {
                    self.global_default = c.value;
                }
                self.priorities.insert(c.name_any(), c.value.unwrap_or(0));
            }
            WatchEvent::Delete(c) => {
                if c.global_default == Some(true) {
                    self.global_default = None;
                }
                self.priorities.remove(&c.name_any());
            }
            WatchEvent::Init | WatchEvent::InitDone => {}
        }
    }

    fn on_input(&mut self, input: Input, now: Instant) {
        match input {
            Input::Pod(ev) => self.on_pod(*ev, now),
            Input::Node(ev) => self.on_node(*ev, now),
            Input::Claim(ev) => self.on_claim(*ev, now),
            Input::Class(ev) => self.on_class(*ev, now),
            Input::Priority(ev) => self.on_priority(*ev),
            Input::Bound { key, ok } => {
                if ok {
                    self.queue.remove(&key);
                } else if self.cache.is_assumed(&key) {
                    self.cache.remove_pod(&key);
                    self.queue.retry(&key, now);
                }
            }
            Input::Explain {
                namespace,
                name,
                reply,
            } => {
                let key = format!("{namespace}/{name}");
                let answer = match (self.queue.get(&key), self.cache.pod_node(&key)) {
                    (_, Some(node)) => ExplainReply::Bound(node.to_string()),
                    (Some(info), None) => ExplainReply::Pending(Box::new(schedule::explain(
                        &self.profile,
                        &self.cache,
                        &info,
                    ))),
                    (None, None) => ExplainReply::Unknown,
                };
                let _ = reply.send(answer);
            }
        }
    }

    /// One scheduling cycle for the next pod, if any.
    fn cycle(&mut self, now: Instant) -> bool {
        let Some(info) = self.queue.pop(now) else {
            return false;
        };
        self.tie = self
            .tie
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        match schedule::schedule(
            &self.profile,
            &self.cache,
            &info,
            &mut self.start,
            self.tie >> 33,
        ) {
            Outcome::Placed(p) => {
                let mut assumed = (*info).clone();
                assumed.node_name = p.node.clone();
                self.cache.assume(Arc::new(assumed), &p.node);
                self.spawn_bind(&info, p.node);
            }
            Outcome::Unschedulable(mut diagnosis, state) => {
                let mut nominate = None;
                if self.profile.preemption {
                    match preemption::preempt(&self.profile, &state, &info, &self.cache, &diagnosis)
                    {
                        Ok(p) => nominate = Some(p),
                        Err(msg) => diagnosis.post_filter = Some(msg),
                    }
                }
                self.queue.unschedulable(&info.key, now);
                let message = diagnosis.message();
                self.spawn_failed(&info, message, nominate);
            }
        }
        true
    }

    fn spawn_bind(&self, info: &PodInfo, node: String) {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &info.namespace);
        let name = info.name.clone();
        let key = info.key.clone();
        let tx = self.tx.clone();
        let recorder = self.recorder.clone();
        let reference = info.pod.object_ref(&());
        let note = format!("Successfully assigned {} to {node}", info.key);
        tokio::spawn(async move {
            let binding = json!({
                "apiVersion": "v1",
                "kind": "Binding",
                "metadata": {"name": name},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node},
            });
            let res: Result<serde_json::Value, _> = api
                .create_subresource("binding", &name, &PostParams::default(), &binding)
                .await;
            let ok = match res {
                Ok(_) => {
                    publish(
                        &recorder,
                        &reference,
                        EventType::Normal,
                        "Scheduled",
                        "Binding",
                        note,
                    )
                    .await;
                    true
                }
                Err(e) => {
                    tracing::warn!(pod = %key, error = %e, "binding failed");
                    false
                }
            };
            let _ = tx.send(Input::Bound { key, ok });
        });
    }

    fn spawn_failed(
        &self,
        info: &PodInfo,
        message: String,
        nominate: Option<preemption::Preemption>,
    ) {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &info.namespace);
        let name = info.name.clone();
        let recorder = self.recorder.clone();
        let reference = info.pod.object_ref(&());
        let preemptor_uid = info.uid.clone();
        let client = self.client.clone();
        tokio::spawn(async move {
            publish(
                &recorder,
                &reference,
                EventType::Warning,
                "FailedScheduling",
                "Scheduling",
                message.clone(),
            )
            .await;
            let now = jiff::Timestamp::now().to_string();
            let mut status = json!({
                "conditions": [{
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": message,
                    "lastProbeTime": null,
                    "lastTransitionTime": now,
                }]
            });
            if let Some(p) = &nominate {
                status["nominatedNodeName"] = json!(p.node);
            }
            let patch = json!({"status": status});
            if let Err(e) = api
                .patch_status(&name, &PatchParams::default(), &Patch::Strategic(&patch))
                .await
            {
                tracing::warn!(pod = %name, error = %e, "updating PodScheduled failed");
            }
            let Some(p) = nominate else {
                return;
            };
            for victim in p.victims {
                let vapi: Api<Pod> = Api::namespaced(client.clone(), &victim.namespace);
                let vref = victim.pod.object_ref(&());
                let note = format!("Preempted by pod {preemptor_uid} on node {}", p.node);
                publish(
                    &recorder,
                    &vref,
                    EventType::Normal,
                    "Preempted",
                    "Preempting",
                    note,
                )
                .await;
                if let Err(e) = vapi.delete(&victim.name, &DeleteParams::default()).await {
                    tracing::warn!(pod = %victim.key, error = %e, "deleting a preemption victim failed");
                }
            }
        });
    }
}

async fn publish(
    recorder: &Recorder,
    reference: &ObjectReference,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
) {
    let ev = Event {
        type_,
        reason: reason.into(),
        note: Some(note),
        action: action.into(),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&ev, reference).await {
        tracing::debug!(error = %e, reason, "publishing an event failed");
    }
}

/// Runs the scheduler until `shutdown` resolves.
pub async fn run(
    client: Client,
    options: Options,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), RunError> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let endpoint = explain::serve(tx.clone(), &options.data_dir)
        .await
        .map_err(RunError::Explain)?;
    tracing::info!(address = %endpoint, "scheduler explain endpoint listening");
    let pods: Api<Pod> = Api::all(client.clone());
    forward(watcher(pods), tx.clone(), |e| Input::Pod(Box::new(e)));
    watch::<Node>(&client, &tx, |e| Input::Node(Box::new(e)));
    watch::<StorageClass>(&client, &tx, |e| Input::Class(Box::new(e)));
    watch::<PriorityClass>(&client, &tx, |e| Input::Priority(Box::new(e)));
    let claims: Api<PersistentVolumeClaim> = Api::all(client.clone());
    forward(watcher(claims), tx.clone(), |e| Input::Claim(Box::new(e)));
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: SCHEDULER_NAME.into(),
            instance: None,
        },
    );
    let mut s = Scheduler {
        client,
        profile: options.profile,
        cache: Cache::new(),
        queue: Queue::new(),
        pods: HashMap::new(),
        priorities: HashMap::new(),
        global_default: None,
        relist: Relist::default(),
        recorder,
        tx,
        start: 0,
        tie: 0x9e37_79b9_7f4a_7c15,
        synced: State::Syncing {
            pods: false,
            nodes: false,
        },
    };
    let mut shutdown = std::pin::pin!(shutdown);
    let mut state = s.synced;
    while state != State::Stopped {
        state = step(&mut s, state, &mut rx, shutdown.as_mut()).await;
    }
    tracing::info!("scheduler stopped");
    Ok(())
}

/// One step of the loop: take every input that is ready, then (once synced) run one cycle, or
/// sleep until an input, the next backoff expiry or shutdown.
async fn step(
    s: &mut Scheduler,
    state: State,
    rx: &mut mpsc::UnboundedReceiver<Input>,
    shutdown: std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
) -> State {
    let now = Instant::now();
    while let Ok(input) = rx.try_recv() {
        s.on_input(input, now);
    }
    let state = match (state, s.synced) {
        (
            State::Syncing { .. },
            State::Syncing {
                pods: true,
                nodes: true,
            },
        ) => {
            tracing::info!(nodes = s.cache.node_count(), "scheduler synced");
            s.synced = State::Running;
            State::Running
        }
        (State::Syncing { .. }, synced) => synced,
        (other, _) => other,
    };
    if state == State::Running && s.cycle(now) {
        // Yield between cycles so spawned bindings and watches make progress.
        tokio::task::yield_now().await;
        return state;
    }
    let wake = s.queue.next_wake();
    let sleep = async {
        match wake {
            Some(t) => tokio::time::sleep_until(t.into()).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        input = rx.recv() => match input {
            Some(input) => {
                s.on_input(input, Instant::now());
                state
            }
            None => State::Stopped,
        },
        () = sleep => state,
        () = shutdown => State::Stopped,
    }
}
