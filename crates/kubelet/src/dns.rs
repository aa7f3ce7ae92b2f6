//! A pod's DNS settings (the resolv.conf its sandbox gets), as upstream's kubelet computes them
//! (`pkg/kubelet/network/dns`): from the pod's dnsPolicy and dnsConfig, the node's cluster DNS
//! and domain, and the host's resolv.conf. Pure: the host file's text is parsed, never read here.

use k8s_openapi::api::core::v1::{Pod, PodDNSConfigOption};

/// At most this many nameservers (glibc's MAXNS).
pub const MAX_NAMESERVERS: usize = 3;
/// At most this many search domains (upstream's validation.MaxDNSSearchPaths).
pub const MAX_SEARCH_PATHS: usize = 32;
/// The search line's length limit (upstream's validation.MaxDNSSearchListChars).
pub const MAX_SEARCH_CHARS: usize = 2048;
/// A search domain longer than this aborts some resolvers; upstream drops it.
const MAX_DOMAIN_CHARS: usize = 253;

/// The DNS part of a sandbox config (CRI `DNSConfig`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsConfig {
    pub servers: Vec<String>,
    pub searches: Vec<String>,
    pub options: Vec<String>,
}

/// What the node knows for pods' DNS (kubelet's `--cluster-dns`, `--cluster-domain`, and its
/// host's resolv.conf).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeDns {
    pub cluster_dns: Vec<String>,
    pub cluster_domain: String,
    pub host: DnsConfig,
}

/// The host's resolv.conf as upstream's kubelet reads it: every `nameserver`, the last `search`
/// line (trailing dots dropped), `options` merged by name.
pub fn parse_resolv_conf(text: &str) -> DnsConfig {
    let mut config = DnsConfig::default();
    for line in text.lines() {
        let line = line.split(['#', ';']).next().unwrap_or("");
        let mut fields = line.split_whitespace();
        match fields.next() {
            Some("nameserver") => config.servers.extend(fields.next().map(str::to_string)),
            Some("search") => {
                config.searches = fields
                    .map(|s| s.trim_end_matches('.').to_string())
                    .filter(|s| !s.is_empty())
                    .collect();
            }
            Some("options") => {
                let options: Vec<(String, Option<String>)> = fields.map(split_option).collect();
                config.options = merge_options(&config.options, &options);
            }
            _ => {}
        }
    }
    config
}

fn split_option(option: &str) -> (String, Option<String>) {
    match option.split_once(':') {
        Some((name, value)) => (name.to_string(), Some(value.to_string())),
        None => (option.to_string(), None),
    }
}

/// `existing` with `more` laid over it by option name (upstream's mergeDNSOptions), in first-seen
/// order.
fn merge_options(existing: &[String], more: &[(String, Option<String>)]) -> Vec<String> {
    let mut merged: Vec<(String, Option<String>)> =
        existing.iter().map(|o| split_option(o)).collect();
    for (name, value) in more {
        match merged.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value.clone(),
            None => merged.push((name.clone(), value.clone())),
        }
    }
    merged
        .into_iter()
        .map(|(name, value)| match value.filter(|v| !v.is_empty()) {
            Some(v) => format!("{name}:{v}"),
            None => name,
        })
        .collect()
}

fn omit_duplicates(list: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    list.into_iter()
        .filter(|s| seen.insert(s.clone()))
        .collect()
}

/// The pod's DNS kind (upstream's getPodDNSType).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Cluster,
    Host,
    None,
}

fn kind(pod: &Pod) -> Kind {
    let spec = pod.spec.as_ref();
    let host_network = spec.and_then(|s| s.host_network).unwrap_or(false);
    match spec
        .and_then(|s| s.dns_policy.as_deref())
        .unwrap_or("ClusterFirst")
    {
        "None" => Kind::None,
        "ClusterFirstWithHostNet" => Kind::Cluster,
        "Default" => Kind::Host,
        // ClusterFirst: a host-network pod behaves as Default.
        _ if host_network => Kind::Host,
        _ => Kind::Cluster,
    }
}

/// The pod's resolv.conf settings.
pub fn pod_dns(pod: &Pod, node: &NodeDns) -> DnsConfig {
    let mut config = match kind(pod) {
        Kind::None => DnsConfig::default(),
        Kind::Cluster if !node.cluster_dns.is_empty() => {
            let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
            let mut searches = Vec::new();
            if !node.cluster_domain.is_empty() {
                let domain = &node.cluster_domain;
                searches = vec![
                    format!("{ns}.svc.{domain}"),
                    format!("svc.{domain}"),
                    domain.clone(),
                ];
            }
            searches.extend(node.host.searches.iter().cloned());
            DnsConfig {
                servers: node.cluster_dns.clone(),
                searches: omit_duplicates(searches),
                options: vec!["ndots:5".into()],
            }
        }
        // No cluster DNS known: upstream falls back to the host's settings.
        Kind::Cluster | Kind::Host => node.host.clone(),
    };
    if let Some(extra) = pod.spec.as_ref().and_then(|s| s.dns_config.as_ref()) {
        config
            .servers
            .extend(extra.nameservers.iter().flatten().cloned());
        config.servers = omit_duplicates(std::mem::take(&mut config.servers));
        config
            .searches
            .extend(extra.searches.iter().flatten().cloned());
        config.searches = omit_duplicates(std::mem::take(&mut config.searches));
        let options: Vec<(String, Option<String>)> = extra
            .options
            .iter()
            .flatten()
            .filter_map(|PodDNSConfigOption { name, value }| {
                name.clone().map(|n| (n, value.clone()))
            })
            .collect();
        config.options = merge_options(&config.options, &options);
    }
    fit_limits(config)
}

/// Upstream's formDNSConfigFitsLimits: 3 nameservers, 32 search domains of at most 253
/// characters, a search line of at most 2048.
fn fit_limits(mut config: DnsConfig) -> DnsConfig {
    config.servers.truncate(MAX_NAMESERVERS);
    config.searches.truncate(MAX_SEARCH_PATHS);
    config.searches.retain(|s| s.len() <= MAX_DOMAIN_CHARS);
    while !config.searches.is_empty() && config.searches.join(" ").len() > MAX_SEARCH_CHARS {
        config.searches.pop();
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodDNSConfig, PodSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pod(policy: Option<&str>, host_network: bool, dns: Option<PodDNSConfig>) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("p".into()),
                namespace: Some("team".into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                dns_policy: policy.map(str::to_string),
                host_network: Some(host_network),
                dns_config: dns,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn node() -> NodeDns {
        NodeDns {
            cluster_dns: vec!["10.96.0.10".into()],
            cluster_domain: "cluster.local".into(),
            host: parse_resolv_conf(
                "nameserver 192.168.1.1\nnameserver 8.8.8.8\nsearch corp.example. lab.example\noptions edns0 timeout:2\n",
            ),
        }
    }

    fn s(list: &[&str]) -> Vec<String> {
        list.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn the_host_file_is_read_as_upstream_does() {
        let c = parse_resolv_conf(
            "# comment\nsearch old.example\nnameserver 10.0.0.1 # primary\nsearch a.example. b.example\noptions ndots:2 rotate\noptions ndots:3\n",
        );
        assert_eq!(c.servers, s(&["10.0.0.1"]));
        assert_eq!(c.searches, s(&["a.example", "b.example"]));
        assert_eq!(c.options, s(&["ndots:3", "rotate"]));
        assert_eq!(parse_resolv_conf(""), DnsConfig::default());
    }

    #[test]
    fn cluster_first_uses_the_cluster_dns_and_search_path() {
        let c = pod_dns(&pod(None, false, None), &node());
        assert_eq!(c.servers, s(&["10.96.0.10"]));
        assert_eq!(
            c.searches,
            s(&[
                "team.svc.cluster.local",
                "svc.cluster.local",
                "cluster.local",
                "corp.example",
                "lab.example"
            ])
        );
        assert_eq!(c.options, s(&["ndots:5"]));
        assert_eq!(pod_dns(&pod(Some("ClusterFirst"), false, None), &node()), c);
    }

    #[test]
    fn default_and_host_network_use_the_hosts_settings() {
        let host = node().host;
        assert_eq!(pod_dns(&pod(Some("Default"), false, None), &node()), host);
        assert_eq!(
            pod_dns(&pod(Some("ClusterFirst"), true, None), &node()),
            host
        );
        let with_host_net = pod_dns(&pod(Some("ClusterFirstWithHostNet"), true, None), &node());
        assert_eq!(with_host_net.servers, s(&["10.96.0.10"]));
        // No cluster DNS configured: ClusterFirst falls back to the host's.
        let no_cluster = NodeDns {
            cluster_dns: vec![],
            ..node()
        };
        assert_eq!(pod_dns(&pod(None, false, None), &no_cluster), host);
    }

    #[test]
    fn none_takes_only_the_pods_dns_config_and_merges_it_otherwise() {
        let extra = PodDNSConfig {
            nameservers: Some(s(&["1.1.1.1", "10.96.0.10"])),
            searches: Some(s(&["my.example", "svc.cluster.local"])),
            options: Some(vec![
                PodDNSConfigOption {
                    name: Some("ndots".into()),
                    value: Some("2".into()),
                },
                PodDNSConfigOption {
                    name: Some("edns0".into()),
                    value: None,
                },
            ]),
        };
        let none = pod_dns(&pod(Some("None"), false, Some(extra.clone())), &node());
        assert_eq!(none.servers, s(&["1.1.1.1", "10.96.0.10"]));
        assert_eq!(none.searches, s(&["my.example", "svc.cluster.local"]));
        assert_eq!(none.options, s(&["ndots:2", "edns0"]));
        assert_eq!(
            pod_dns(&pod(Some("None"), false, None), &node()),
            DnsConfig::default()
        );
        let merged = pod_dns(&pod(None, false, Some(extra)), &node());
        assert_eq!(merged.servers, s(&["10.96.0.10", "1.1.1.1"]));
        assert_eq!(
            merged.searches,
            s(&[
                "team.svc.cluster.local",
                "svc.cluster.local",
                "cluster.local",
                "corp.example",
                "lab.example",
                "my.example"
            ])
        );
        assert_eq!(merged.options, s(&["ndots:2", "edns0"]));
    }

    #[test]
    fn limits_cut_nameservers_and_search_domains() {
        let many = PodDNSConfig {
            nameservers: Some(s(&["1.0.0.1", "1.0.0.2", "1.0.0.3", "1.0.0.4"])),
            searches: Some(
                (0..40)
                    .map(|i| format!("d{i}.{}", "x".repeat(30)))
                    .collect(),
            ),
            options: None,
        };
        let c = pod_dns(&pod(Some("None"), false, Some(many)), &node());
        assert_eq!(c.servers.len(), MAX_NAMESERVERS);
        assert_eq!(c.searches.len(), MAX_SEARCH_PATHS);
        let long = PodDNSConfig {
            nameservers: None,
            searches: Some(vec!["a".repeat(254), "ok.example".into()]),
            options: None,
        };
        let c = pod_dns(&pod(Some("None"), false, Some(long)), &node());
        assert_eq!(c.searches, s(&["ok.example"]));
        let wide = PodDNSConfig {
            nameservers: None,
            searches: Some(
                (0..30)
                    .map(|i| format!("{i:02}{}", "y".repeat(98)))
                    .collect(),
            ),
            options: None,
        };
        let c = pod_dns(&pod(Some("None"), false, Some(wide)), &node());
        assert!(c.searches.join(" ").len() <= MAX_SEARCH_CHARS);
        assert_eq!(c.searches.len(), 20);
    }
}
