//! The service load balancer without a cloud (k3s's servicelb role): a Service of
//! `type: LoadBalancer` (no `loadBalancerClass`) gets the InternalIPs of the Ready nodes as
//! `status.loadBalancer.ingress`, and every node's service proxy serves the Service's ports on
//! those addresses. A Service that stops being a LoadBalancer loses its ingress.

use k8s_openapi::api::core::v1::{Node, Service};

use crate::informer::{Change, Informer, ObjectKey};
use crate::manager::{Context, Controller};
use crate::queue::WorkQueue;
use crate::shell::{self, ShellError};

/// The ingress addresses `service` should show, or `None` when what it shows is right.
pub fn desired_ingress<'a>(
    service: &Service,
    nodes: impl IntoIterator<Item = &'a Node>,
) -> Option<Vec<String>> {
    let spec = service.spec.as_ref()?;
    let ours = spec.type_.as_deref() == Some("LoadBalancer") && spec.load_balancer_class.is_none();
    let current: Vec<String> = service
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .map(|i| i.iter().filter_map(|i| i.ip.clone()).collect())
        .unwrap_or_default();
    let mut wanted: Vec<String> = if ours {
        nodes
            .into_iter()
            .filter(|n| ready(n))
            .filter_map(internal_ip)
            .collect()
    } else if spec.type_.as_deref() == Some("LoadBalancer") {
        // Another implementation's (a loadBalancerClass): not ours to touch.
        return None;
    } else {
        Vec::new()
    };
    wanted.sort();
    wanted.dedup();
    (wanted != current).then_some(wanted)
}

fn ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn internal_ip(node: &Node) -> Option<String> {
    node.status
        .as_ref()?
        .addresses
        .as_ref()?
        .iter()
        .find(|a| a.type_ == "InternalIP")
        .map(|a| a.address.clone())
}

/// The controller over the Service and Node informers.
#[derive(Debug)]
pub struct ServiceLbController {
    ctx: Context,
    services: Informer<Service>,
    nodes: Informer<Node>,
    queue: WorkQueue<ObjectKey>,
}

impl ServiceLbController {
    /// Registers on the shared Service and Node informers: a Service change queues it, a Node
    /// change queues every LoadBalancer Service.
    pub fn new(ctx: &Context) -> Self {
        let queue = WorkQueue::new();
        let services = ctx.informers.typed::<Service>();
        let nodes = ctx.informers.typed::<Node>();
        let q = queue.clone();
        services.on_change(move |c| {
            if !matches!(c, Change::Deleted(_)) {
                q.add(ObjectKey::of(shell::changed(c)));
            }
        });
        let q = queue.clone();
        let all = services.clone();
        nodes.on_change(move |_| {
            for s in all.list() {
                if s.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("LoadBalancer") {
                    q.add(ObjectKey::of(s.as_ref()));
                }
            }
        });
        ServiceLbController {
            ctx: ctx.clone(),
            services,
            nodes,
            queue,
        }
    }
}

impl Controller for ServiceLbController {
    type Key = ObjectKey;
    type Error = ShellError;

    fn name(&self) -> &'static str {
        "service-lb"
    }

    fn queue(&self) -> &WorkQueue<Self::Key> {
        &self.queue
    }

    fn workers(&self) -> usize {
        1
    }

    async fn sync(&self, key: &Self::Key) -> Result<(), Self::Error> {
        let Some(service) = self.services.get(&key.namespace, &key.name) else {
            return Ok(());
        };
        let nodes = self.nodes.list();
        let Some(ips) = desired_ingress(&service, nodes.iter().map(|n| n.as_ref())) else {
            return Ok(());
        };
        let ingress: Vec<serde_json::Value> = ips
            .iter()
            .map(|ip| serde_json::json!({ "ip": ip, "ipMode": "VIP" }))
            .collect();
        let api: kube::Api<Service> =
            kube::Api::namespaced(self.ctx.client.clone(), &key.namespace);
        shell::patch_status(
            &api,
            "Service",
            &key.name,
            serde_json::json!({ "loadBalancer": { "ingress": ingress } }),
        )
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        LoadBalancerIngress, LoadBalancerStatus, NodeAddress, NodeCondition, NodeStatus,
        ServiceSpec, ServiceStatus,
    };

    fn node(ip: &str, ready: &str) -> Node {
        Node {
            status: Some(NodeStatus {
                addresses: Some(vec![NodeAddress {
                    type_: "InternalIP".into(),
                    address: ip.into(),
                }]),
                conditions: Some(vec![NodeCondition {
                    type_: "Ready".into(),
                    status: ready.into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn service(kind: &str, class: Option<&str>, ingress: &[&str]) -> Service {
        Service {
            spec: Some(ServiceSpec {
                type_: Some(kind.into()),
                load_balancer_class: class.map(Into::into),
                ..Default::default()
            }),
            status: Some(ServiceStatus {
                load_balancer: Some(LoadBalancerStatus {
                    ingress: Some(
                        ingress
                            .iter()
                            .map(|ip| LoadBalancerIngress {
                                ip: Some(ip.to_string()),
                                ..Default::default()
                            })
                            .collect(),
                    ),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_load_balancer_gets_the_ready_nodes_addresses() {
        let nodes = [
            node("10.0.0.2", "True"),
            node("10.0.0.1", "True"),
            node("10.0.0.3", "Unknown"),
        ];
        assert_eq!(
            desired_ingress(&service("LoadBalancer", None, &[]), &nodes),
            Some(vec!["10.0.0.1".to_string(), "10.0.0.2".to_string()])
        );
        assert_eq!(
            desired_ingress(
                &service("LoadBalancer", None, &["10.0.0.1", "10.0.0.2"]),
                &nodes
            ),
            None,
            "already right"
        );
    }

    #[test]
    fn other_classes_are_left_alone_and_former_load_balancers_are_cleared() {
        let nodes = [node("10.0.0.1", "True")];
        assert_eq!(
            desired_ingress(&service("LoadBalancer", Some("metallb"), &[]), &nodes),
            None
        );
        assert_eq!(
            desired_ingress(&service("ClusterIP", None, &["10.0.0.1"]), &nodes),
            Some(vec![])
        );
        assert_eq!(
            desired_ingress(&service("ClusterIP", None, &[]), &nodes),
            None
        );
    }
}
