//! A container's environment as upstream's kubelet makes it: `envFrom` then `env` (values,
//! `fieldRef`, `configMapKeyRef`, `secretKeyRef`), each value `$(VAR)`-expanded against the variables
//! before it, and command/args expanded against the whole environment. Pure: ConfigMaps and Secrets
//! come in as data.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod};

/// The data of the ConfigMaps and Secrets a container refers to, by name (Secrets already decoded).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sources {
    pub config_maps: BTreeMap<String, BTreeMap<String, String>>,
    pub secrets: BTreeMap<String, BTreeMap<String, String>>,
}

/// Why an environment cannot be made (upstream shows `CreateContainerConfigError`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    #[error("configmap \"{0}\" not found")]
    ConfigMap(String),
    #[error("secret \"{0}\" not found")]
    Secret(String),
    #[error("couldn't find key {key} in {kind} {namespace}/{name}")]
    Key {
        kind: &'static str,
        namespace: String,
        name: String,
        key: String,
    },
    #[error("unsupported fieldRef {0}")]
    Field(String),
}

/// The ConfigMaps and Secrets a container's environment reads: (config maps, secrets).
pub fn references(container: &Container) -> (Vec<String>, Vec<String>) {
    let mut maps = Vec::new();
    let mut secrets = Vec::new();
    for from in container.env_from.iter().flatten() {
        if let Some(r) = &from.config_map_ref {
            maps.push(r.name.clone());
        }
        if let Some(r) = &from.secret_ref {
            secrets.push(r.name.clone());
        }
    }
    for var in container.env.iter().flatten() {
        let Some(source) = &var.value_from else {
            continue;
        };
        if let Some(r) = &source.config_map_key_ref {
            maps.push(r.name.clone());
        }
        if let Some(r) = &source.secret_key_ref {
            secrets.push(r.name.clone());
        }
    }
    maps.sort();
    maps.dedup();
    secrets.sort();
    secrets.dedup();
    (maps, secrets)
}

/// Upstream's `$(VAR)` expansion: `$$` is a literal `$`, `$(NAME)` is NAME's value when NAME is
/// defined and is left as written otherwise.
pub fn expand(input: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(tail) = after.strip_prefix('(') {
            match tail.find(')') {
                Some(end) => {
                    let name = &tail[..end];
                    match vars.get(name) {
                        Some(value) => out.push_str(value),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &tail[end + 1..];
                }
                None => {
                    out.push_str("$(");
                    rest = tail;
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

fn field(pod: &Pod, path: &str, pod_ip: &str, host_ip: &str) -> Result<String, EnvError> {
    let meta = &pod.metadata;
    let spec = pod.spec.as_ref();
    let keyed = |prefix: &str, map: Option<&BTreeMap<String, String>>| {
        let key = path
            .strip_prefix(prefix)?
            .strip_prefix("['")?
            .strip_suffix("']")?;
        Some(map.and_then(|m| m.get(key)).cloned().unwrap_or_default())
    };
    if let Some(v) = keyed("metadata.labels", meta.labels.as_ref()) {
        return Ok(v);
    }
    if let Some(v) = keyed("metadata.annotations", meta.annotations.as_ref()) {
        return Ok(v);
    }
    Ok(match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        "status.podIP" | "status.podIPs" => pod_ip.to_string(),
        "status.hostIP" | "status.hostIPs" => host_ip.to_string(),
        other => return Err(EnvError::Field(other.to_string())),
    })
}

fn lookup(
    kind: &'static str,
    maps: &BTreeMap<String, BTreeMap<String, String>>,
    namespace: &str,
    name: &str,
    key: &str,
    optional: bool,
) -> Result<Option<String>, EnvError> {
    let Some(data) = maps.get(name) else {
        if optional {
            return Ok(None);
        }
        return Err(if kind == "configmap" {
            EnvError::ConfigMap(name.into())
        } else {
            EnvError::Secret(name.into())
        });
    };
    match data.get(key) {
        Some(v) => Ok(Some(v.clone())),
        None if optional => Ok(None),
        None => Err(EnvError::Key {
            kind,
            namespace: namespace.into(),
            name: name.into(),
            key: key.into(),
        }),
    }
}

/// The container's environment, in order (a later definition of a name replaces the earlier one in
/// place, as upstream).
pub fn resolve(
    pod: &Pod,
    container: &Container,
    sources: &Sources,
    pod_ip: &str,
    host_ip: &str,
) -> Result<Vec<(String, String)>, EnvError> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let mut order: Vec<String> = Vec::new();
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    let set = |order: &mut Vec<String>,
               vars: &mut BTreeMap<String, String>,
               name: String,
               value: String| {
        if vars.insert(name.clone(), value).is_none() {
            order.push(name);
        }
    };
    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.as_deref().unwrap_or_default();
        let (kind, maps, name, optional) = match (&from.config_map_ref, &from.secret_ref) {
            (Some(r), _) => (
                "configmap",
                &sources.config_maps,
                &r.name,
                r.optional.unwrap_or(false),
            ),
            (None, Some(r)) => (
                "secret",
                &sources.secrets,
                &r.name,
                r.optional.unwrap_or(false),
            ),
            (None, None) => continue,
        };
        match maps.get(name) {
            Some(data) => {
                for (k, v) in data {
                    set(&mut order, &mut vars, format!("{prefix}{k}"), v.clone());
                }
            }
            None if optional => {}
            None if kind == "configmap" => return Err(EnvError::ConfigMap(name.clone())),
            None => return Err(EnvError::Secret(name.clone())),
        }
    }
    for var in container.env.iter().flatten() {
        let value = match &var.value_from {
            None => Some(expand(var.value.as_deref().unwrap_or_default(), &vars)),
            Some(source) => {
                if let Some(f) = &source.field_ref {
                    Some(field(pod, &f.field_path, pod_ip, host_ip)?)
                } else if let Some(r) = &source.config_map_key_ref {
                    lookup(
                        "configmap",
                        &sources.config_maps,
                        namespace,
                        &r.name,
                        &r.key,
                        r.optional.unwrap_or(false),
                    )?
                } else if let Some(r) = &source.secret_key_ref {
                    lookup(
                        "secret",
                        &sources.secrets,
                        namespace,
                        &r.name,
                        &r.key,
                        r.optional.unwrap_or(false),
                    )?
                } else {
                    Some(String::new())
                }
            }
        };
        if let Some(value) = value {
            set(&mut order, &mut vars, var.name.clone(), value);
        }
    }
    Ok(order
        .into_iter()
        .map(|n| {
            let v = vars.get(&n).cloned().unwrap_or_default();
            (n, v)
        })
        .collect())
}

/// The container's command and args with `$(VAR)` expanded against its environment.
pub fn expand_command(
    container: &Container,
    env: &[(String, String)],
) -> (Vec<String>, Vec<String>) {
    let vars: BTreeMap<String, String> = env.iter().cloned().collect();
    let all = |v: &Option<Vec<String>>| {
        v.iter()
            .flatten()
            .map(|s| expand(s, &vars))
            .collect::<Vec<_>>()
    };
    (all(&container.command), all(&container.args))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        ConfigMapKeySelector, EnvFromSource, EnvVar, EnvVarSource, ObjectFieldSelector, PodSpec,
        SecretEnvSource,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn expansion_follows_upstream() {
        let v = vars(&[("A", "1"), ("B", "two")]);
        assert_eq!(expand("$(A)-$(B)", &v), "1-two");
        assert_eq!(expand("$$(A)", &v), "$(A)");
        assert_eq!(expand("$(C)", &v), "$(C)");
        assert_eq!(expand("a$b", &v), "a$b");
        assert_eq!(expand("x$(A", &v), "x$(A");
        assert_eq!(expand("$", &v), "$");
    }

    fn var(name: &str, value: Option<&str>, from: Option<EnvVarSource>) -> EnvVar {
        EnvVar {
            name: name.into(),
            value: value.map(Into::into),
            value_from: from,
        }
    }

    #[test]
    fn env_resolves_sources_in_order_and_expands_earlier_vars() {
        let pod = Pod {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("ns".into()),
                labels: Some([("app".to_string(), "x".to_string())].into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: Some("n1".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let container = Container {
            name: "c".into(),
            env_from: Some(vec![EnvFromSource {
                prefix: Some("S_".into()),
                secret_ref: Some(SecretEnvSource {
                    name: "sec".into(),
                    optional: None,
                }),
                ..Default::default()
            }]),
            env: Some(vec![
                var("A", Some("a"), None),
                var("B", Some("$(A)-$(S_k)-$(LATER)"), None),
                var(
                    "POD",
                    None,
                    Some(EnvVarSource {
                        field_ref: Some(ObjectFieldSelector {
                            field_path: "metadata.name".into(),
                            api_version: None,
                        }),
                        ..Default::default()
                    }),
                ),
                var(
                    "LBL",
                    None,
                    Some(EnvVarSource {
                        field_ref: Some(ObjectFieldSelector {
                            field_path: "metadata.labels['app']".into(),
                            api_version: None,
                        }),
                        ..Default::default()
                    }),
                ),
                var(
                    "IP",
                    None,
                    Some(EnvVarSource {
                        field_ref: Some(ObjectFieldSelector {
                            field_path: "status.podIP".into(),
                            api_version: None,
                        }),
                        ..Default::default()
                    }),
                ),
                var(
                    "CM",
                    None,
                    Some(EnvVarSource {
                        config_map_key_ref: Some(ConfigMapKeySelector {
                            name: "cm".into(),
                            key: "k".into(),
                            optional: None,
                        }),
                        ..Default::default()
                    }),
                ),
                var("LATER", Some("l"), None),
                var("A", Some("again"), None),
            ]),
            command: Some(vec!["sh".into(), "-c".into()]),
            args: Some(vec!["echo $(B) $(CM) $$(A)".into()]),
            ..Default::default()
        };
        let sources = Sources {
            config_maps: [("cm".to_string(), vars(&[("k", "from-cm")]))].into(),
            secrets: [("sec".to_string(), vars(&[("k", "s")]))].into(),
        };
        assert_eq!(
            references(&container),
            (vec!["cm".to_string()], vec!["sec".to_string()])
        );
        let env = resolve(&pod, &container, &sources, "10.42.0.5", "10.0.0.1").expect("env");
        let got: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            got,
            vec![
                ("S_k", "s"),
                ("A", "again"),
                ("B", "a-s-$(LATER)"),
                ("POD", "web"),
                ("LBL", "x"),
                ("IP", "10.42.0.5"),
                ("CM", "from-cm"),
                ("LATER", "l"),
            ]
        );
        let (command, args) = expand_command(&container, &env);
        assert_eq!(command, vec!["sh", "-c"]);
        assert_eq!(args, vec!["echo a-s-$(LATER) from-cm $(A)"]);
        let missing = Sources::default();
        assert_eq!(
            resolve(&pod, &container, &missing, "", ""),
            Err(EnvError::Secret("sec".into()))
        );
    }
}
