//! Golden rule tables (datadriven, as raft-rs): each file in `testdata/` builds a node's services
//! and endpoints with short directives and shows the nftables script the proxy writes — the whole
//! table (`rules`) or the change since the last shown state (`diff`). `REWRITE=1 cargo test` updates
//! the expected outputs after an intended change; review the diff like code. Every script shown is
//! also applied, in order, to the real nftables of a network namespace the test makes (root and
//! `nft` required, as on CI), so a script the kernel would refuse fails here.
//!
//! Directives (input lines after the directive line):
//! - `node NAME [podcidr=CIDR]`
//! - `service NS/NAME ip=IP [type=NodePort|LoadBalancer] [affinity=SECONDS] [etp=Local] [itp=Local]
//!   [external=IP,IP]` then one line per port: `NAME PORT/PROTO [NODEPORT]` (`-` for no name)
//! - `delete-service NS/NAME`
//! - `endpoints NS/NAME` then `PORTNAME IP:PORT [node=N] [ready=false] [terminating=true]`
//!   (replaces that service's endpoints; `-` for the unnamed port)

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use oxkube_proxy::model::{Endpoint, PortId, Protocol, ServicePort};
use oxkube_proxy::nft;
use oxkube_proxy::rules::{self, NodeContext, Ruleset};

/// A network namespace of the test's own, removed when dropped.
struct Netns(String);

impl Netns {
    fn new(file: &str) -> Netns {
        let name = format!("oxk-golden-{}-{file}", std::process::id());
        let ok = std::process::Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .expect("ip netns add (iproute2, root)")
            .success();
        assert!(ok, "cannot make network namespace {name}");
        Netns(name)
    }

    fn apply(&self, script: &str) {
        use nft::Netfilter;
        nft::Nft {
            netns: Some(self.0.clone()),
        }
        .apply(script)
        .unwrap_or_else(|e| panic!("the kernel refused the script: {e}\n{script}"));
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.0])
            .status();
    }
}

struct World {
    netns: Netns,
    node: Option<NodeContext>,
    services: BTreeMap<(String, String), Vec<ServicePort>>,
    endpoints: BTreeMap<PortId, Vec<Endpoint>>,
    shown: Option<Ruleset>,
}

fn split_name(s: &str) -> (String, String) {
    let (ns, name) = s.split_once('/').expect("NS/NAME");
    (ns.to_string(), name.to_string())
}

fn options(words: &[&str]) -> BTreeMap<String, String> {
    words
        .iter()
        .filter_map(|w| w.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn protocol(s: &str) -> Protocol {
    match s {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        "sctp" => Protocol::Sctp,
        other => panic!("protocol {other}"),
    }
}

fn port_name(s: &str) -> String {
    if s == "-" {
        String::new()
    } else {
        s.to_string()
    }
}

impl World {
    fn compute(&self) -> Ruleset {
        let node = self.node.clone().expect("a `node` directive first");
        let empty = Vec::new();
        let ports: Vec<&ServicePort> = self.services.values().flatten().collect();
        rules::compute(
            &node,
            ports
                .into_iter()
                .map(|p| (p, self.endpoints.get(&p.id).unwrap_or(&empty).as_slice())),
        )
    }

    fn run(&mut self, directive: &str, input: &str) -> String {
        let mut lines = input.lines();
        match directive {
            "node" => {
                let words: Vec<&str> = lines
                    .next()
                    .expect("node line")
                    .split_whitespace()
                    .collect();
                let opts = options(&words[1..]);
                self.node = Some(NodeContext {
                    name: words[0].to_string(),
                    pod_cidr: opts.get("podcidr").cloned(),
                    cluster_pod_cidrs: opts.get("podcidr").into_iter().cloned().collect(),
                });
                String::new()
            }
            "service" => {
                let words: Vec<&str> = lines
                    .next()
                    .expect("service line")
                    .split_whitespace()
                    .collect();
                let (namespace, name) = split_name(words[0]);
                let opts = options(&words[1..]);
                let kind = opts.get("type").map(String::as_str).unwrap_or("ClusterIP");
                let cluster_ip: Ipv4Addr = opts["ip"].parse().expect("ip=");
                let ports = lines
                    .map(|line| {
                        let w: Vec<&str> = line.split_whitespace().collect();
                        let (number, proto) = w[1].split_once('/').expect("PORT/PROTO");
                        ServicePort {
                            id: PortId {
                                namespace: namespace.clone(),
                                name: name.clone(),
                                protocol: protocol(proto),
                                port_name: port_name(w[0]),
                            },
                            cluster_ip,
                            port: number.parse().expect("port"),
                            node_port: w
                                .get(2)
                                .filter(|_| kind != "ClusterIP")
                                .map(|n| n.parse().expect("node port")),
                            external_ips: opts
                                .get("external")
                                .map(|l| l.split(',').map(|ip| ip.parse().expect("ip")).collect())
                                .unwrap_or_default(),
                            affinity_seconds: opts
                                .get("affinity")
                                .map(|s| s.parse().expect("seconds")),
                            external_local: opts.get("etp").map(String::as_str) == Some("Local"),
                            internal_local: opts.get("itp").map(String::as_str) == Some("Local"),
                        }
                    })
                    .collect();
                self.services.insert((namespace, name), ports);
                String::new()
            }
            "delete-service" => {
                let key = split_name(lines.next().expect("NS/NAME").trim());
                self.services.remove(&key);
                self.endpoints
                    .retain(|id, _| (id.namespace.clone(), id.name.clone()) != key);
                String::new()
            }
            "endpoints" => {
                let (namespace, name) = split_name(lines.next().expect("NS/NAME").trim());
                self.endpoints
                    .retain(|id, _| id.namespace != namespace || id.name != name);
                for line in lines {
                    let w: Vec<&str> = line.split_whitespace().collect();
                    let opts = options(&w[2..]);
                    let (ip, number) = w[1].split_once(':').expect("IP:PORT");
                    let ready = opts.get("ready").map(String::as_str) != Some("false");
                    let terminating = opts.get("terminating").map(String::as_str) == Some("true");
                    let port = self
                        .services
                        .get(&(namespace.clone(), name.clone()))
                        .and_then(|ports| ports.iter().find(|p| p.id.port_name == port_name(w[0])))
                        .map(|p| p.id.clone())
                        .expect("endpoints of a known service port");
                    self.endpoints.entry(port).or_default().push(Endpoint {
                        ip: ip.parse().expect("ip"),
                        port: number.parse().expect("port"),
                        ready,
                        serving: ready || terminating,
                        terminating,
                        node: opts.get("node").cloned(),
                    });
                }
                String::new()
            }
            "rules" => {
                let r = self.compute();
                assert!(
                    rules::dangling_references(&r).is_empty(),
                    "dangling references"
                );
                let out = nft::full(&r);
                self.netns.apply(&out);
                self.shown = Some(r);
                out
            }
            "diff" => {
                let r = self.compute();
                let out = nft::diff(self.shown.as_ref().expect("a `rules` before a `diff`"), &r);
                if !out.is_empty() {
                    self.netns.apply(&out);
                }
                self.shown = Some(r);
                if out.is_empty() {
                    "(no change)\n".into()
                } else {
                    out
                }
            }
            other => panic!("unknown directive {other}"),
        }
    }
}

#[test]
fn golden_rule_tables() {
    datadriven::walk("testdata", |f| {
        let file = std::path::Path::new(&f.filename)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut world = World {
            netns: Netns::new(&file),
            node: None,
            services: BTreeMap::new(),
            endpoints: BTreeMap::new(),
            shown: None,
        };
        f.run(|tc| world.run(&tc.directive, &tc.input));
    });
}
