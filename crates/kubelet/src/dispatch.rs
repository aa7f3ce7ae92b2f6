//! Routes the events of one pod watch to per-pod workers on the right node (by `spec.nodeName`):
//! spawns a worker for a new pod, feeds it newer versions, and tells it when the pod is gone.

use std::collections::{HashMap, HashSet};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};
use std::sync::Arc;
use tokio::sync::watch;

use crate::pod_worker::{self, NodeHandle};

/// Routes pod events to per-pod workers on the right node.
#[derive(Debug)]
pub(crate) struct Dispatcher {
    nodes: HashMap<String, NodeHandle>,
    workers: HashMap<String, watch::Sender<Option<Arc<Pod>>>>,
    /// Pods seen during a relist, to drop those that vanished meanwhile.
    relisted: HashSet<String>,
}

impl Dispatcher {
    /// A dispatcher for the nodes of these names.
    pub(crate) fn new(nodes: HashMap<String, NodeHandle>) -> Self {
        Dispatcher {
            nodes,
            workers: HashMap::new(),
            relisted: HashSet::new(),
        }
    }

    fn apply(&mut self, pod: Pod) {
        let Some(uid) = pod.metadata.uid.clone() else {
            return;
        };
        let node = pod.spec.as_ref().and_then(|s| s.node_name.as_deref());
        let Some(handle) = node.and_then(|n| self.nodes.get(n)) else {
            return;
        };
        self.relisted.insert(uid.clone());
        let pod = Some(Arc::new(pod));
        match self.workers.get(&uid) {
            Some(tx) => {
                tx.send_replace(pod);
            }
            None => {
                let (tx, rx) = watch::channel(pod);
                tokio::spawn(pod_worker::run(handle.clone(), uid.clone(), rx));
                self.workers.insert(uid, tx);
            }
        }
    }

    fn delete(&mut self, uid: &str) {
        if let Some(tx) = self.workers.remove(uid) {
            tx.send_replace(None);
        }
    }

    fn handle(&mut self, event: Event<Pod>) {
        match event {
            Event::Init => self.relisted.clear(),
            Event::InitApply(pod) | Event::Apply(pod) => self.apply(pod),
            Event::Delete(pod) => {
                if let Some(uid) = pod.metadata.uid {
                    self.delete(&uid);
                }
            }
            Event::InitDone => {
                let gone: Vec<String> = self
                    .workers
                    .keys()
                    .filter(|uid| !self.relisted.contains(*uid))
                    .cloned()
                    .collect();
                for uid in gone {
                    self.delete(&uid);
                }
            }
        }
    }
}

/// Watches the pods matching `fields` (a field selector) and feeds them to `dispatcher`, forever.
pub(crate) async fn watch_pods(client: Client, fields: &str, dispatcher: Dispatcher) {
    let api: Api<Pod> = Api::all(client);
    let config = watcher::Config::default().fields(fields);
    watcher::watcher(api, config)
        .default_backoff()
        .fold(dispatcher, |mut d, event| async move {
            match event {
                Ok(event) => d.handle(event),
                Err(e) => tracing::warn!(error = %e, "pod watch failed; retrying"),
            }
            d
        })
        .await;
}
