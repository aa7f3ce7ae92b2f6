//! ServiceAccount controllers (upstream's `serviceaccount-controller` and `root-ca-cert-publisher`): every
//! active namespace gets the `default` ServiceAccount and the `kube-root-ca.crt` ConfigMap holding the
//! cluster CA; both are recreated when deleted and the ConfigMap is put back when edited.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, Patch, PatchParams, PostParams};

use crate::informer::{Change, Informer};
use crate::manager::{Context, Controller};
use crate::queue::WorkQueue;

/// The ServiceAccount every namespace gets.
pub const DEFAULT_SA: &str = "default";
/// The ConfigMap carrying the cluster CA.
pub const ROOT_CA_CONFIGMAP: &str = "kube-root-ca.crt";
/// Its data key.
pub const ROOT_CA_KEY: &str = "ca.crt";
/// Upstream's description annotation on the ConfigMap.
pub const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

/// One step toward the desired state of a namespace.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Create the `default` ServiceAccount.
    CreateServiceAccount,
    /// Create the root CA ConfigMap.
    CreateConfigMap(ConfigMap),
    /// Put the root CA ConfigMap's data and annotation back.
    UpdateConfigMap(ConfigMap),
}

/// The root CA ConfigMap as it should be in `namespace`.
pub fn root_ca_configmap(namespace: &str, ca: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(ROOT_CA_CONFIGMAP.into()),
            namespace: Some(namespace.into()),
            annotations: Some(BTreeMap::from([(
                "kubernetes.io/description".to_string(),
                DESCRIPTION.to_string(),
            )])),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(ROOT_CA_KEY.to_string(), ca.to_string())])),
        ..Default::default()
    }
}

/// The pure core: what namespace `ns` lacks.
pub fn reconcile(
    ns: &Namespace,
    has_default_sa: bool,
    configmap: Option<&ConfigMap>,
    ca: &str,
) -> Vec<Action> {
    let terminating = ns.metadata.deletion_timestamp.is_some()
        || ns.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating");
    if terminating {
        return Vec::new();
    }
    let name = ns.metadata.name.as_deref().unwrap_or_default();
    let mut actions = Vec::new();
    if !has_default_sa {
        actions.push(Action::CreateServiceAccount);
    }
    let want = root_ca_configmap(name, ca);
    match configmap {
        None => actions.push(Action::CreateConfigMap(want)),
        Some(cm) => {
            let data_ok = cm
                .data
                .as_ref()
                .and_then(|d| d.get(ROOT_CA_KEY))
                .map(String::as_str)
                == Some(ca)
                && cm.data.as_ref().is_some_and(|d| d.len() == 1);
            let note_ok = cm
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("kubernetes.io/description"))
                .is_some();
            if !data_ok || !note_ok {
                actions.push(Action::UpdateConfigMap(want));
            }
        }
    }
    actions
}

/// Failures of one namespace's sync.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// Creating the `default` ServiceAccount failed.
    #[error("creating the default service account in {namespace}")]
    CreateServiceAccount {
        /// The namespace.
        namespace: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// Writing the root CA ConfigMap failed.
    #[error("writing {ROOT_CA_CONFIGMAP} in {namespace}")]
    WriteConfigMap {
        /// The namespace.
        namespace: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
}

/// The controller, keyed by namespace name.
#[derive(Debug)]
pub struct ServiceAccountController {
    ctx: Context,
    queue: WorkQueue<String>,
    namespaces: Informer<Namespace>,
    accounts: Informer<ServiceAccount>,
    configmaps: Informer<ConfigMap>,
    ca: String,
}

impl ServiceAccountController {
    /// Registers on the namespace, service account and config map informers.
    pub fn new(ctx: &Context, ca: String) -> Self {
        let queue = WorkQueue::new();
        let namespaces = ctx.informers.typed::<Namespace>();
        let accounts = ctx.informers.typed::<ServiceAccount>();
        let configmaps = ctx.informers.typed::<ConfigMap>();
        let q = queue.clone();
        namespaces.on_change(move |c| match c {
            Change::Added(ns) | Change::Updated(_, ns) => {
                q.add(ns.metadata.name.clone().unwrap_or_default())
            }
            Change::Deleted(_) => {}
        });
        let q = queue.clone();
        accounts.on_change(move |c| {
            if let Change::Deleted(sa) = c
                && sa.metadata.name.as_deref() == Some(DEFAULT_SA)
            {
                q.add(sa.metadata.namespace.clone().unwrap_or_default());
            }
        });
        let q = queue.clone();
        configmaps.on_change(move |c| match c {
            Change::Updated(_, cm) | Change::Deleted(cm)
                if cm.metadata.name.as_deref() == Some(ROOT_CA_CONFIGMAP) =>
            {
                q.add(cm.metadata.namespace.clone().unwrap_or_default())
            }
            _ => {}
        });
        ServiceAccountController {
            ctx: ctx.clone(),
            queue,
            namespaces,
            accounts,
            configmaps,
            ca,
        }
    }
}

fn already_exists(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

impl Controller for ServiceAccountController {
    type Key = String;
    type Error = SyncError;

    fn name(&self) -> &'static str {
        "serviceaccount"
    }

    fn queue(&self) -> &WorkQueue<String> {
        &self.queue
    }

    async fn sync(&self, namespace: &String) -> Result<(), SyncError> {
        let Some(ns) = self.namespaces.get("", namespace) else {
            return Ok(());
        };
        let has_sa = self.accounts.get(namespace, DEFAULT_SA).is_some();
        let cm = self.configmaps.get(namespace, ROOT_CA_CONFIGMAP);
        for action in reconcile(&ns, has_sa, cm.as_deref(), &self.ca) {
            match action {
                Action::CreateServiceAccount => {
                    let api: Api<ServiceAccount> =
                        Api::namespaced(self.ctx.client.clone(), namespace);
                    let sa = ServiceAccount {
                        metadata: ObjectMeta {
                            name: Some(DEFAULT_SA.into()),
                            ..Default::default()
                        },
                        ..Default::default()
                    };
                    match api.create(&PostParams::default(), &sa).await {
                        Ok(_) => {}
                        Err(e) if already_exists(&e) => {}
                        Err(source) => {
                            return Err(SyncError::CreateServiceAccount {
                                namespace: namespace.clone(),
                                source,
                            });
                        }
                    }
                }
                Action::CreateConfigMap(cm) => {
                    let api: Api<ConfigMap> = Api::namespaced(self.ctx.client.clone(), namespace);
                    match api.create(&PostParams::default(), &cm).await {
                        Ok(_) => {}
                        Err(e) if already_exists(&e) => {}
                        Err(source) => {
                            return Err(SyncError::WriteConfigMap {
                                namespace: namespace.clone(),
                                source,
                            });
                        }
                    }
                }
                Action::UpdateConfigMap(cm) => {
                    let api: Api<ConfigMap> = Api::namespaced(self.ctx.client.clone(), namespace);
                    let patch = serde_json::json!({
                        "metadata": {"annotations": cm.metadata.annotations},
                        "data": cm.data,
                    });
                    api.patch(
                        ROOT_CA_CONFIGMAP,
                        &PatchParams::default(),
                        &Patch::Merge(&patch),
                    )
                    .await
                    .map_err(|source| SyncError::WriteConfigMap {
                        namespace: namespace.clone(),
                        source,
                    })?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::NamespaceStatus;

    fn ns(phase: &str) -> Namespace {
        Namespace {
            metadata: ObjectMeta {
                name: Some("team".into()),
                ..Default::default()
            },
            status: Some(NamespaceStatus {
                phase: Some(phase.into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn new_namespace_gets_both() {
        let actions = reconcile(&ns("Active"), false, None, "PEM");
        assert_eq!(actions.len(), 2);
        assert_eq!(actions[0], Action::CreateServiceAccount);
        assert_eq!(
            actions[1],
            Action::CreateConfigMap(root_ca_configmap("team", "PEM"))
        );
    }

    #[test]
    fn edited_configmap_is_restored_and_complete_namespace_is_left_alone() {
        let mut cm = root_ca_configmap("team", "PEM");
        assert!(reconcile(&ns("Active"), true, Some(&cm), "PEM").is_empty());
        cm.data = Some(BTreeMap::from([(
            ROOT_CA_KEY.to_string(),
            "other".to_string(),
        )]));
        assert_eq!(
            reconcile(&ns("Active"), true, Some(&cm), "PEM"),
            vec![Action::UpdateConfigMap(root_ca_configmap("team", "PEM"))]
        );
    }

    #[test]
    fn terminating_namespace_gets_nothing() {
        assert!(reconcile(&ns("Terminating"), false, None, "PEM").is_empty());
    }
}
