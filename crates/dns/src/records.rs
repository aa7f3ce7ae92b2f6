//! The pure core: the record table of the cluster domain, built from Service and EndpointSlice
//! snapshots (upstream's DNS spec, schema 1.1.0, as CoreDNS's `kubernetes` plugin serves it with
//! `pods insecure`), and the answer to one (name, type) question. No I/O.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

/// The schema version `dns-version.<zone>` answers (upstream's spec 2.1).
pub const SCHEMA_VERSION: &str = "1.1.0";
/// The label naming an EndpointSlice's Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// The record types the table knows; anything else is `Other` (always no data in the zone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QType {
    A,
    Aaaa,
    Cname,
    Srv,
    Ptr,
    Txt,
    Ns,
    Soa,
    Any,
    Other,
}

/// One record's data; names are lower case without the trailing dot.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Data {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Cname(String),
    Srv {
        priority: u16,
        weight: u16,
        port: u16,
        target: String,
    },
    Ptr(String),
    Txt(String),
    Ns(String),
    /// The zone's SOA (its fields are the shell's: they come from the zone and the serial).
    Soa,
}

impl Data {
    fn qtype(&self) -> QType {
        match self {
            Data::A(_) => QType::A,
            Data::Aaaa(_) => QType::Aaaa,
            Data::Cname(_) => QType::Cname,
            Data::Srv { .. } => QType::Srv,
            Data::Ptr(_) => QType::Ptr,
            Data::Txt(_) => QType::Txt,
            Data::Ns(_) => QType::Ns,
            Data::Soa => QType::Soa,
        }
    }
}

/// A record: owner name (lower case, no trailing dot) and data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub name: String,
    pub data: Data,
}

/// The answer to one question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The name has records of the type. `chase` is a CNAME target outside the zone whose records
    /// of the asked type belong in the answer too (upstream resolves ExternalName targets).
    Found {
        answers: Vec<Record>,
        additionals: Vec<Record>,
        chase: Option<String>,
    },
    /// The name exists in the zone but has no records of the type (SOA goes in the authority).
    NoData,
    /// The name does not exist in the zone (SOA goes in the authority).
    NxDomain,
    /// Not ours: forward it to the upstream resolvers.
    Forward,
}

/// The zone's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    /// The cluster domain, e.g. `cluster.local` (lower case, no trailing dot).
    pub domain: String,
    /// The cluster DNS Service's address, served as `ns.dns.<domain>` (the apex NS).
    pub dns_ip: Option<IpAddr>,
}

impl Zone {
    pub fn new(domain: &str, dns_ip: Option<IpAddr>) -> Self {
        Zone {
            domain: normalize(domain),
            dns_ip,
        }
    }

    /// The SOA's primary server name (CoreDNS's `ns.dns.<zone>`).
    pub fn mname(&self) -> String {
        format!("ns.dns.{}", self.domain)
    }

    /// The SOA's responsible mailbox (CoreDNS's `hostmaster.<zone>`).
    pub fn rname(&self) -> String {
        format!("hostmaster.{}", self.domain)
    }
}

/// Lower case, without the trailing dot.
pub fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// The record table: every name of the zone with its records, plus the names that exist only as
/// ancestors of others (empty non-terminals, which answer NODATA rather than NXDOMAIN).
#[derive(Debug, Clone)]
pub struct Table {
    zone: Zone,
    /// The SOA serial: the caller's generation of the snapshot.
    pub serial: u32,
    records: HashMap<String, Vec<Data>>,
    ancestors: HashSet<String>,
}

/// The IP's dashed form, as pod names and unnamed endpoints use (`10-1-2-3`, `fd00--1`).
pub fn dashed(ip: IpAddr) -> String {
    ip.to_string().replace(['.', ':'], "-")
}

/// The reverse-lookup name of an address (`4.3.2.1.in-addr.arpa`, nibbles for IPv6).
pub fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut labels: Vec<String> = Vec::with_capacity(33);
            for byte in v6.octets().iter().rev() {
                labels.push(format!("{:x}", byte & 0x0f));
                labels.push(format!("{:x}", byte >> 4));
            }
            labels.push("ip6.arpa".into());
            labels.join(".")
        }
    }
}

fn address(ip: IpAddr) -> Data {
    match ip {
        IpAddr::V4(v4) => Data::A(v4),
        IpAddr::V6(v6) => Data::Aaaa(v6),
    }
}

/// A ready endpoint of a headless Service: its address and the label it is known by.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Endpoint {
    ip: IpAddr,
    host: String,
}

/// A named port of an EndpointSlice: `_name._proto` and its number.
type NamedPort = (String, String, u16);

#[derive(Debug, Default)]
struct Builder {
    records: HashMap<String, BTreeSet<Data>>,
}

impl Builder {
    fn add(&mut self, name: String, data: Data) {
        self.records.entry(name).or_default().insert(data);
    }
}

impl Table {
    /// The table of `services` and their `slices`, generation `serial`.
    pub fn build(
        zone: Zone,
        serial: u32,
        services: &[Arc<Service>],
        slices: &[Arc<EndpointSlice>],
    ) -> Table {
        let mut by_service: HashMap<(&str, &str), Vec<&EndpointSlice>> = HashMap::new();
        for slice in slices {
            let (Some(ns), Some(svc)) = (
                slice.metadata.namespace.as_deref(),
                slice
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(SERVICE_NAME_LABEL)),
            ) else {
                continue;
            };
            by_service
                .entry((ns, svc.as_str()))
                .or_default()
                .push(slice);
        }
        let mut b = Builder::default();
        let domain = zone.domain.clone();
        b.add(domain.clone(), Data::Soa);
        b.add(domain.clone(), Data::Ns(zone.mname()));
        if let Some(ip) = zone.dns_ip {
            b.add(zone.mname(), address(ip));
        }
        b.add(
            format!("dns-version.{domain}"),
            Data::Txt(SCHEMA_VERSION.into()),
        );
        for service in services {
            let (Some(name), Some(ns), Some(spec)) = (
                service.metadata.name.as_deref(),
                service.metadata.namespace.as_deref(),
                service.spec.as_ref(),
            ) else {
                continue;
            };
            let fqdn = format!("{name}.{ns}.svc.{domain}").to_ascii_lowercase();
            if spec.type_.as_deref() == Some("ExternalName") {
                if let Some(target) = spec.external_name.as_deref().filter(|t| !t.is_empty()) {
                    b.add(fqdn, Data::Cname(normalize(target)));
                }
                continue;
            }
            if spec.cluster_ip.as_deref() == Some("None") {
                let slices = by_service
                    .get(&(ns, name))
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                headless(&mut b, &fqdn, slices);
                continue;
            }
            let ips: BTreeSet<IpAddr> = spec
                .cluster_ips
                .iter()
                .flatten()
                .chain(spec.cluster_ip.iter())
                .filter_map(|ip| ip.parse().ok())
                .collect();
            if ips.is_empty() {
                continue;
            }
            for ip in &ips {
                b.add(fqdn.clone(), address(*ip));
                b.add(reverse_name(*ip), Data::Ptr(fqdn.clone()));
            }
            for port in spec.ports.iter().flatten() {
                let (Some(pname), Ok(number)) = (port.name.as_deref(), u16::try_from(port.port))
                else {
                    continue;
                };
                if pname.is_empty() {
                    continue;
                }
                let proto = port.protocol.as_deref().unwrap_or("TCP");
                b.add(
                    srv_name(pname, proto, &fqdn),
                    Data::Srv {
                        priority: 0,
                        weight: 100,
                        port: number,
                        target: fqdn.clone(),
                    },
                );
            }
        }
        let records: HashMap<String, Vec<Data>> = b
            .records
            .into_iter()
            .map(|(name, set)| (name, set.into_iter().collect()))
            .collect();
        let suffix = format!(".{domain}");
        let mut ancestors = HashSet::new();
        for name in records.keys() {
            let Some(inner) = name.strip_suffix(&suffix) else {
                continue;
            };
            let mut rest = inner;
            while let Some((_, parent)) = rest.split_once('.') {
                ancestors.insert(format!("{parent}{suffix}"));
                rest = parent;
            }
        }
        Table {
            zone,
            serial,
            records,
            ancestors,
        }
    }

    pub fn zone(&self) -> &Zone {
        &self.zone
    }

    /// How many names have records.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    fn in_zone(&self, name: &str) -> bool {
        name == self.zone.domain
            || name
                .strip_suffix(&self.zone.domain)
                .is_some_and(|head| head.ends_with('.'))
    }

    /// The answer to `name` (any case, trailing dot or not) of type `qtype`.
    pub fn lookup(&self, name: &str, qtype: QType) -> Answer {
        let name = normalize(name);
        if !self.in_zone(&name) {
            // Reverse names of our addresses are answered; any other falls through upstream.
            return match self.records.get(&name) {
                Some(data) => self.found(&name, data, qtype).unwrap_or(Answer::NoData),
                None => Answer::Forward,
            };
        }
        if let Some(answer) = self.pod(&name, qtype) {
            return answer;
        }
        match self.records.get(&name) {
            Some(data) => self.found(&name, data, qtype).unwrap_or(Answer::NoData),
            None if self.ancestors.contains(&name) => Answer::NoData,
            None => Answer::NxDomain,
        }
    }

    /// `a-b-c-d.<ns>.pod.<zone>`: the address in the name, unchecked (CoreDNS's `pods insecure`).
    fn pod(&self, name: &str, qtype: QType) -> Option<Answer> {
        let head = name.strip_suffix(&format!(".pod.{}", self.zone.domain))?;
        let (ip_label, ns) = head.split_once('.')?;
        if ns.is_empty() || ns.contains('.') {
            return Some(Answer::NxDomain);
        }
        let ip: IpAddr = match ip_label.replace('-', ".").parse::<Ipv4Addr>() {
            Ok(v4) => IpAddr::V4(v4),
            Err(_) => match ip_label.replace('-', ":").parse::<Ipv6Addr>() {
                Ok(v6) => IpAddr::V6(v6),
                Err(_) => return Some(Answer::NxDomain),
            },
        };
        Some(
            self.found(name, &[address(ip)], qtype)
                .unwrap_or(Answer::NoData),
        )
    }

    fn found(&self, name: &str, data: &[Data], qtype: QType) -> Option<Answer> {
        // A CNAME owner has nothing else: it answers every type (RFC 1034 3.6.2).
        if let Some(Data::Cname(target)) = data.iter().find(|d| matches!(d, Data::Cname(_))) {
            let answers = vec![Record {
                name: name.to_string(),
                data: Data::Cname(target.clone()),
            }];
            if qtype == QType::Cname {
                return Some(Answer::Found {
                    answers,
                    additionals: Vec::new(),
                    chase: None,
                });
            }
            let mut answers = answers;
            let chase = match self.in_zone(target) {
                true => {
                    if let Some(Answer::Found { answers: more, .. }) = self
                        .records
                        .get(target)
                        .and_then(|d| self.found(target, d, qtype))
                    {
                        answers.extend(more);
                    }
                    None
                }
                false => Some(target.clone()),
            };
            return Some(Answer::Found {
                answers,
                additionals: Vec::new(),
                chase,
            });
        }
        let answers: Vec<Record> = data
            .iter()
            .filter(|d| qtype == QType::Any || d.qtype() == qtype)
            .map(|d| Record {
                name: name.to_string(),
                data: d.clone(),
            })
            .collect();
        if answers.is_empty() {
            return None;
        }
        let mut additionals = Vec::new();
        let mut seen = HashSet::new();
        for record in &answers {
            if let Data::Srv { target, .. } = &record.data
                && seen.insert(target.clone())
            {
                for d in self.records.get(target).into_iter().flatten() {
                    if matches!(d, Data::A(_) | Data::Aaaa(_)) {
                        additionals.push(Record {
                            name: target.clone(),
                            data: d.clone(),
                        });
                    }
                }
            }
        }
        Some(Answer::Found {
            answers,
            additionals,
            chase: None,
        })
    }
}

fn srv_name(port: &str, proto: &str, fqdn: &str) -> String {
    format!(
        "_{}._{}.{fqdn}",
        port.to_ascii_lowercase(),
        proto.to_ascii_lowercase()
    )
}

/// The records of a headless Service: its ready endpoints (nil `ready` counts as ready, as the
/// API says), per endpoint a name (its hostname, else its dashed address), SRV per named port.
fn headless(b: &mut Builder, fqdn: &str, slices: &[&EndpointSlice]) {
    let mut endpoints: BTreeSet<Endpoint> = BTreeSet::new();
    let mut srv: BTreeMap<String, BTreeSet<(u16, String)>> = BTreeMap::new();
    for slice in slices {
        let ports: Vec<NamedPort> = slice
            .ports
            .iter()
            .flatten()
            .filter_map(|p| {
                let name = p.name.as_deref().filter(|n| !n.is_empty())?;
                let number = u16::try_from(p.port?).ok()?;
                Some((
                    name.to_string(),
                    p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                    number,
                ))
            })
            .collect();
        for endpoint in slice.endpoints.iter().flatten() {
            let ready = endpoint
                .conditions
                .as_ref()
                .and_then(|c| c.ready)
                .unwrap_or(true);
            if !ready {
                continue;
            }
            for ip in endpoint
                .addresses
                .iter()
                .filter_map(|a| a.parse::<IpAddr>().ok())
            {
                let host = endpoint
                    .hostname
                    .as_deref()
                    .filter(|h| !h.is_empty())
                    .map_or_else(|| dashed(ip), str::to_ascii_lowercase);
                let target = format!("{host}.{fqdn}");
                for (name, proto, number) in &ports {
                    srv.entry(srv_name(name, proto, fqdn))
                        .or_default()
                        .insert((*number, target.clone()));
                }
                endpoints.insert(Endpoint { ip, host });
            }
        }
    }
    for Endpoint { ip, host } in &endpoints {
        let name = format!("{host}.{fqdn}");
        b.add(fqdn.to_string(), address(*ip));
        b.add(name.clone(), address(*ip));
        b.add(reverse_name(*ip), Data::Ptr(name));
    }
    for (name, targets) in srv {
        // CoreDNS's weights: the 100 of one priority shared evenly.
        let weight = u16::try_from(100 / targets.len().max(1)).unwrap_or(0);
        for (port, target) in targets {
            b.add(
                name.clone(),
                Data::Srv {
                    priority: 0,
                    weight,
                    port,
                    target,
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ServicePort, ServiceSpec};
    use k8s_openapi::api::discovery::v1::{self as discovery, EndpointConditions};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn service(ns: &str, name: &str, spec: ServiceSpec) -> Arc<Service> {
        Arc::new(Service {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some(ns.into()),
                ..Default::default()
            },
            spec: Some(spec),
            ..Default::default()
        })
    }

    fn cluster_ip(ip: &str, ports: &[(&str, &str, i32)]) -> ServiceSpec {
        ServiceSpec {
            cluster_ip: Some(ip.into()),
            cluster_ips: (ip != "None").then(|| vec![ip.into()]),
            ports: Some(
                ports
                    .iter()
                    .map(|(name, proto, port)| ServicePort {
                        name: (!name.is_empty()).then(|| name.to_string()),
                        protocol: Some(proto.to_string()),
                        port: *port,
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }
    }

    /// (address, hostname, ready)
    fn slice(
        ns: &str,
        svc: &str,
        name: &str,
        endpoints: &[(&str, Option<&str>, Option<bool>)],
        ports: &[(&str, &str, i32)],
    ) -> Arc<EndpointSlice> {
        Arc::new(EndpointSlice {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some(ns.into()),
                labels: Some([(SERVICE_NAME_LABEL.to_string(), svc.to_string())].into()),
                ..Default::default()
            },
            address_type: "IPv4".into(),
            endpoints: Some(
                endpoints
                    .iter()
                    .map(|(ip, host, ready)| discovery::Endpoint {
                        addresses: vec![ip.to_string()],
                        hostname: host.map(str::to_string),
                        conditions: Some(EndpointConditions {
                            ready: *ready,
                            ..Default::default()
                        }),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ports: Some(
                ports
                    .iter()
                    .map(|(name, proto, port)| discovery::EndpointPort {
                        name: Some(name.to_string()),
                        protocol: Some(proto.to_string()),
                        port: Some(*port),
                        ..Default::default()
                    })
                    .collect(),
            ),
        })
    }

    fn table() -> Table {
        let services = vec![
            service(
                "default",
                "web",
                cluster_ip("10.96.3.4", &[("http", "TCP", 80), ("", "TCP", 81)]),
            ),
            service(
                "prod",
                "db",
                cluster_ip("None", &[("pg", "TCP", 5432), ("", "TCP", 9)]),
            ),
            service(
                "default",
                "empty-headless",
                cluster_ip("None", &[("x", "TCP", 1)]),
            ),
            service(
                "default",
                "ext",
                ServiceSpec {
                    type_: Some("ExternalName".into()),
                    external_name: Some("www.example.com.".into()),
                    ..Default::default()
                },
            ),
            service(
                "default",
                "alias",
                ServiceSpec {
                    type_: Some("ExternalName".into()),
                    external_name: Some("web.default.svc.cluster.local".into()),
                    ..Default::default()
                },
            ),
        ];
        let slices = vec![
            slice(
                "prod",
                "db",
                "db-a",
                &[
                    ("10.42.0.5", Some("db-0"), Some(true)),
                    ("10.42.0.6", None, None),
                    ("10.42.0.7", Some("db-2"), Some(false)),
                ],
                &[("pg", "TCP", 5432)],
            ),
            slice(
                "prod",
                "db",
                "db-b",
                &[("10.42.0.8", Some("db-3"), Some(true))],
                &[("pg", "TCP", 5432)],
            ),
            slice(
                "default",
                "empty-headless",
                "e",
                &[("10.42.0.9", None, Some(false))],
                &[("x", "TCP", 1)],
            ),
            // Slices of a ClusterIP service add nothing to DNS.
            slice(
                "default",
                "web",
                "web-a",
                &[("10.42.0.10", Some("w"), Some(true))],
                &[("http", "TCP", 8080)],
            ),
        ];
        Table::build(
            Zone::new("Cluster.Local.", Some("10.96.0.10".parse().expect("ip"))),
            7,
            &services,
            &slices,
        )
    }

    fn answers(answer: &Answer) -> Vec<Data> {
        match answer {
            Answer::Found { answers, .. } => answers.iter().map(|r| r.data.clone()).collect(),
            other => panic!("no records: {other:?}"),
        }
    }

    fn a(ip: &str) -> Data {
        Data::A(ip.parse().expect("ip"))
    }

    #[test]
    fn a_cluster_ip_service_has_its_address_srv_for_named_ports_and_ptr() {
        let t = table();
        assert_eq!(
            answers(&t.lookup("WEB.default.svc.cluster.local.", QType::A)),
            vec![a("10.96.3.4")]
        );
        let srv = t.lookup("_http._tcp.web.default.svc.cluster.local", QType::Srv);
        assert_eq!(
            answers(&srv),
            vec![Data::Srv {
                priority: 0,
                weight: 100,
                port: 80,
                target: "web.default.svc.cluster.local".into()
            }]
        );
        let Answer::Found { additionals, .. } = srv else {
            panic!("srv")
        };
        assert_eq!(additionals[0].data, a("10.96.3.4"));
        assert_eq!(
            answers(&t.lookup("4.3.96.10.in-addr.arpa.", QType::Ptr)),
            vec![Data::Ptr("web.default.svc.cluster.local".into())]
        );
        // The service's slices (ClusterIP) do not make endpoint names.
        assert_eq!(
            t.lookup("w.web.default.svc.cluster.local", QType::A),
            Answer::NxDomain
        );
        assert_eq!(
            t.lookup("_http._udp.web.default.svc.cluster.local", QType::Srv),
            Answer::NxDomain
        );
    }

    #[test]
    fn nodata_for_an_existing_name_nxdomain_for_a_missing_one() {
        let t = table();
        assert_eq!(
            t.lookup("web.default.svc.cluster.local", QType::Aaaa),
            Answer::NoData
        );
        assert_eq!(
            t.lookup("web.default.svc.cluster.local", QType::Other),
            Answer::NoData
        );
        assert_eq!(
            t.lookup("nope.default.svc.cluster.local", QType::A),
            Answer::NxDomain
        );
        assert_eq!(t.lookup("nope.cluster.local", QType::A), Answer::NxDomain);
        // Empty non-terminals exist: the namespace, `svc`, `_tcp.<svc>`.
        for ent in [
            "default.svc.cluster.local",
            "svc.cluster.local",
            "_tcp.web.default.svc.cluster.local",
        ] {
            assert_eq!(t.lookup(ent, QType::A), Answer::NoData, "{ent}");
        }
        assert_eq!(
            t.lookup("missing-ns.svc.cluster.local", QType::A),
            Answer::NxDomain
        );
    }

    #[test]
    fn a_headless_service_answers_its_ready_endpoints_only() {
        let t = table();
        let mut ips = answers(&t.lookup("db.prod.svc.cluster.local", QType::A));
        ips.sort();
        assert_eq!(ips, vec![a("10.42.0.5"), a("10.42.0.6"), a("10.42.0.8")]);
        assert_eq!(
            answers(&t.lookup("db-0.db.prod.svc.cluster.local", QType::A)),
            vec![a("10.42.0.5")]
        );
        // Without a hostname, the endpoint is known by its dashed address.
        assert_eq!(
            answers(&t.lookup("10-42-0-6.db.prod.svc.cluster.local", QType::A)),
            vec![a("10.42.0.6")]
        );
        // Not ready: no record.
        assert_eq!(
            t.lookup("db-2.db.prod.svc.cluster.local", QType::A),
            Answer::NxDomain
        );
        // No ready endpoints: NXDOMAIN (spec 2.4.1).
        assert_eq!(
            t.lookup("empty-headless.default.svc.cluster.local", QType::A),
            Answer::NxDomain
        );
        let srv = t.lookup("_pg._tcp.db.prod.svc.cluster.local", QType::Srv);
        let mut targets: Vec<(u16, u16, String)> = answers(&srv)
            .into_iter()
            .map(|d| match d {
                Data::Srv {
                    weight,
                    port,
                    target,
                    ..
                } => (weight, port, target),
                other => panic!("{other:?}"),
            })
            .collect();
        targets.sort();
        assert_eq!(
            targets,
            vec![
                (33, 5432, "10-42-0-6.db.prod.svc.cluster.local".into()),
                (33, 5432, "db-0.db.prod.svc.cluster.local".into()),
                (33, 5432, "db-3.db.prod.svc.cluster.local".into()),
            ]
        );
        let Answer::Found { additionals, .. } = srv else {
            panic!("srv")
        };
        assert_eq!(additionals.len(), 3);
        assert_eq!(
            answers(&t.lookup("5.0.42.10.in-addr.arpa", QType::Ptr)),
            vec![Data::Ptr("db-0.db.prod.svc.cluster.local".into())]
        );
        assert_eq!(
            t.lookup("7.0.42.10.in-addr.arpa", QType::Ptr),
            Answer::Forward
        );
    }

    #[test]
    fn external_names_are_cnames_chased_outside_the_zone_and_followed_inside() {
        let t = table();
        assert_eq!(
            t.lookup("ext.default.svc.cluster.local", QType::A),
            Answer::Found {
                answers: vec![Record {
                    name: "ext.default.svc.cluster.local".into(),
                    data: Data::Cname("www.example.com".into())
                }],
                additionals: vec![],
                chase: Some("www.example.com".into()),
            }
        );
        assert_eq!(
            answers(&t.lookup("ext.default.svc.cluster.local", QType::Cname)),
            vec![Data::Cname("www.example.com".into())]
        );
        assert_eq!(
            answers(&t.lookup("alias.default.svc.cluster.local", QType::A)),
            vec![
                Data::Cname("web.default.svc.cluster.local".into()),
                a("10.96.3.4")
            ]
        );
    }

    #[test]
    fn pod_names_answer_the_address_they_spell() {
        let t = table();
        assert_eq!(
            answers(&t.lookup("10-42-0-99.any.pod.cluster.local", QType::A)),
            vec![a("10.42.0.99")]
        );
        assert_eq!(
            answers(&t.lookup("fd00--1.ns.pod.cluster.local", QType::Aaaa)),
            vec![Data::Aaaa("fd00::1".parse().expect("ip"))]
        );
        assert_eq!(
            t.lookup("10-42-0-99.any.pod.cluster.local", QType::Aaaa),
            Answer::NoData
        );
        assert_eq!(
            t.lookup("not-an-ip.any.pod.cluster.local", QType::A),
            Answer::NxDomain
        );
        assert_eq!(
            t.lookup("10-42-0-300.any.pod.cluster.local", QType::A),
            Answer::NxDomain
        );
    }

    #[test]
    fn the_zone_apex_version_and_name_server() {
        let t = table();
        assert_eq!(
            answers(&t.lookup("cluster.local", QType::Soa)),
            vec![Data::Soa]
        );
        assert_eq!(
            answers(&t.lookup("cluster.local", QType::Ns)),
            vec![Data::Ns("ns.dns.cluster.local".into())]
        );
        assert_eq!(
            answers(&t.lookup("ns.dns.cluster.local", QType::A)),
            vec![a("10.96.0.10")]
        );
        assert_eq!(
            answers(&t.lookup("dns-version.cluster.local", QType::Txt)),
            vec![Data::Txt("1.1.0".into())]
        );
        assert_eq!(t.lookup("cluster.local", QType::A), Answer::NoData);
    }

    #[test]
    fn everything_outside_the_zone_is_forwarded() {
        let t = table();
        assert_eq!(t.lookup("example.com", QType::A), Answer::Forward);
        assert_eq!(t.lookup("notcluster.local", QType::A), Answer::Forward);
        assert_eq!(
            t.lookup("1.1.1.1.in-addr.arpa", QType::Ptr),
            Answer::Forward
        );
    }

    #[test]
    fn reverse_names_and_dashes() {
        assert_eq!(
            reverse_name("10.96.0.1".parse().expect("ip")),
            "1.0.96.10.in-addr.arpa"
        );
        let v6 = reverse_name("2001:db8::1".parse().expect("ip"));
        assert!(v6.starts_with("1.0.0.0.0.0.0.0"), "{v6}");
        assert!(v6.ends_with("8.b.d.0.1.0.0.2.ip6.arpa"), "{v6}");
        assert_eq!(dashed("10.1.2.3".parse().expect("ip")), "10-1-2-3");
    }
}
