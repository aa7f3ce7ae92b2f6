//! The table's one writer: kube-runtime reflectors of Services and EndpointSlices; after each burst
//! of changes (once both have listed) it rebuilds the record table and publishes it to the readers.

use std::sync::Arc;

use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector as reflect;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use tokio::sync::watch;

use crate::records::{Table, Zone};

/// Where the writer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for both reflectors' first lists.
    Syncing,
    /// Publishing a table per burst of changes; `serial` is the last one published.
    Serving { serial: u32 },
}

/// Feeds `tx` until the watches end (never, short of the client going away).
pub async fn feed(client: Client, zone: Zone, tx: watch::Sender<Arc<Table>>) {
    let (services, services_writer) = reflector::store::<Service>();
    let (slices, slices_writer) = reflector::store::<EndpointSlice>();
    let service_events = reflect(
        services_writer,
        watcher(
            Api::<Service>::all(client.clone()),
            watcher::Config::default(),
        )
        .default_backoff(),
    )
    .map(|_| ());
    let slice_events = reflect(
        slices_writer,
        watcher(
            Api::<EndpointSlice>::all(client),
            watcher::Config::default(),
        )
        .default_backoff(),
    )
    .map(|_| ());
    let mut events = std::pin::pin!(futures::stream::select(service_events, slice_events));
    let mut state = State::Syncing;
    while events.next().await.is_some() {
        // Take the whole burst before rebuilding.
        while let Some(Some(())) = events.next().now_or_never() {}
        state = step(state, &zone, &services, &slices, &tx);
    }
}

fn ready<K: kube::Resource + Clone>(store: &Store<K>) -> bool
where
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    store
        .wait_until_ready()
        .now_or_never()
        .is_some_and(|r| r.is_ok())
}

fn step(
    state: State,
    zone: &Zone,
    services: &Store<Service>,
    slices: &Store<EndpointSlice>,
    tx: &watch::Sender<Arc<Table>>,
) -> State {
    let serial = match state {
        State::Syncing if !(ready(services) && ready(slices)) => return State::Syncing,
        State::Syncing => 1,
        State::Serving { serial } => serial.wrapping_add(1),
    };
    let table = Table::build(zone.clone(), serial, &services.state(), &slices.state());
    if state == State::Syncing {
        tracing::info!(names = table.len(), "cluster DNS records loaded");
    }
    tx.send_replace(Arc::new(table));
    State::Serving { serial }
}
