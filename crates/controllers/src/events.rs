//! The event recorder: core/v1 Events as upstream's `record.EventRecorder` writes them (name
//! `<object>.<hex nanoseconds>`, `source.component`, first/last timestamps), with repeats of the same
//! (object, type, reason, message, component) aggregated by bumping `count` and `lastTimestamp`. One task
//! writes events in order; [`Recorder`] handles only queue them, so reconcile never waits on events.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, Resource};
use serde_json::json;
use tokio::sync::mpsc;

use crate::clock::SharedClock;

/// `type: Normal`.
pub const NORMAL: &str = "Normal";
/// `type: Warning`.
pub const WARNING: &str = "Warning";

#[derive(Debug)]
struct Pending {
    object: ObjectReference,
    type_: &'static str,
    reason: String,
    message: String,
    component: &'static str,
}

/// A cheap handle that queues events for the writer task.
#[derive(Debug, Clone)]
pub struct Recorder {
    tx: mpsc::UnboundedSender<Pending>,
    component: &'static str,
}

/// A reference to `obj` as Events' `involvedObject`.
pub fn object_ref<K: Resource<DynamicType = ()>>(obj: &K) -> ObjectReference {
    let meta = obj.meta();
    ObjectReference {
        api_version: Some(K::api_version(&()).into_owned()),
        kind: Some(K::kind(&()).into_owned()),
        namespace: meta.namespace.clone(),
        name: meta.name.clone(),
        uid: meta.uid.clone(),
        resource_version: meta.resource_version.clone(),
        field_path: None,
    }
}

impl Recorder {
    /// A recorder and the writer future that must be spawned to deliver its events.
    pub fn new(client: Client, clock: SharedClock) -> (Self, impl Future<Output = ()> + Send) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Recorder {
                tx,
                component: "controller-manager",
            },
            write_loop(client, clock, rx),
        )
    }

    /// The same recorder reporting as `component` (`source.component`, e.g. `deployment-controller`).
    pub fn for_component(&self, component: &'static str) -> Self {
        Recorder {
            tx: self.tx.clone(),
            component,
        }
    }

    /// Queues an event about `obj`.
    pub fn publish<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        type_: &'static str,
        reason: &str,
        message: String,
    ) {
        self.publish_ref(object_ref(obj), type_, reason, message);
    }

    /// Queues an event about the object `object`.
    pub fn publish_ref(
        &self,
        object: ObjectReference,
        type_: &'static str,
        reason: &str,
        message: String,
    ) {
        // The writer only stops at shutdown; events then are dropped as upstream's broadcaster drops them.
        let _ = self.tx.send(Pending {
            object,
            type_,
            reason: reason.to_string(),
            message,
            component: self.component,
        });
    }
}

type AggregateKey = (String, &'static str, String, String, &'static str);

/// The aggregation key of a pending event.
fn aggregate_key(p: &Pending) -> AggregateKey {
    (
        p.object.uid.clone().unwrap_or_default(),
        p.type_,
        p.reason.clone(),
        p.message.clone(),
        p.component,
    )
}

/// The first Event for `p`.
fn new_event(p: &Pending, now: jiff::Timestamp) -> Event {
    let namespace = p
        .object
        .namespace
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "default".into());
    let name = format!(
        "{}.{:x}",
        p.object.name.clone().unwrap_or_default(),
        now.as_nanosecond()
    );
    Event {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(namespace),
            ..Default::default()
        },
        involved_object: p.object.clone(),
        reason: Some(p.reason.clone()),
        message: Some(p.message.clone()),
        type_: Some(p.type_.to_string()),
        source: Some(EventSource {
            component: Some(p.component.to_string()),
            host: None,
        }),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        count: Some(1),
        reporting_component: Some(p.component.to_string()),
        reporting_instance: Some(p.component.to_string()),
        ..Default::default()
    }
}

async fn write_loop(client: Client, clock: SharedClock, mut rx: mpsc::UnboundedReceiver<Pending>) {
    // (namespace, name, count) of the last event written per aggregation key.
    let mut seen: HashMap<AggregateKey, (String, String, i32)> = HashMap::new();
    while let Some(p) = rx.recv().await {
        let key = aggregate_key(&p);
        let now = clock.now();
        if let Some((ns, name, count)) = seen.get(&key).cloned() {
            let api: Api<Event> = Api::namespaced(client.clone(), &ns);
            let patch =
                json!({"count": count + 1, "lastTimestamp": crate::clock::format_time(now)});
            if api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .is_ok()
            {
                seen.insert(key, (ns, name, count + 1));
                continue;
            }
        }
        let event = new_event(&p, now);
        let ns = event.metadata.namespace.clone().unwrap_or_default();
        let api: Api<Event> = Api::namespaced(client.clone(), &ns);
        match api.create(&PostParams::default(), &event).await {
            Ok(created) => {
                seen.insert(key, (ns, created.metadata.name.unwrap_or_default(), 1));
            }
            Err(e) => tracing::debug!(error = %e, reason = %p.reason, "event not recorded"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_events_are_named_and_stamped_as_upstream() {
        let p = Pending {
            object: ObjectReference {
                kind: Some("ReplicaSet".into()),
                namespace: Some("ns".into()),
                name: Some("web".into()),
                uid: Some("u1".into()),
                ..Default::default()
            },
            type_: NORMAL,
            reason: "SuccessfulCreate".into(),
            message: "Created pod: web-abc".into(),
            component: "replicaset-controller",
        };
        let now: jiff::Timestamp = "2026-01-01T00:00:00Z".parse().expect("time");
        let e = new_event(&p, now);
        assert_eq!(e.metadata.namespace.as_deref(), Some("ns"));
        assert_eq!(
            e.metadata.name.as_deref(),
            Some(format!("web.{:x}", now.as_nanosecond()).as_str())
        );
        assert_eq!(e.count, Some(1));
        assert_eq!(
            e.source.and_then(|s| s.component).as_deref(),
            Some("replicaset-controller")
        );
        let same = aggregate_key(&p);
        let other = aggregate_key(&Pending {
            message: "Created pod: web-def".into(),
            ..p
        });
        assert_ne!(same, other);
    }
}
