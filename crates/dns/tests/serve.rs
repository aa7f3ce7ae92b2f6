//! The hickory shell answering real UDP and TCP queries on 127.0.0.1 from a fixed table, and
//! forwarding what is not the cluster's to a fake upstream resolver on loopback.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use hickory_server::proto::op::{Message, Query, ResponseCode};
use hickory_server::proto::rr::rdata::A;
use hickory_server::proto::rr::{Name, RData, Record, RecordType};
use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use oxkube_dns::forward::Resolvers;
use oxkube_dns::records::{Table, Zone};
use oxkube_dns::server::{self, Handler};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::watch;

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn table() -> Table {
    let web = Service {
        metadata: ObjectMeta {
            name: Some("web".into()),
            namespace: Some("default".into()),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            cluster_ip: Some("10.96.5.6".into()),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                protocol: Some("TCP".into()),
                port: 80,
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    };
    let ext = Service {
        metadata: ObjectMeta {
            name: Some("ext".into()),
            namespace: Some("default".into()),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            type_: Some("ExternalName".into()),
            external_name: Some("far.example.org".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    Table::build(
        Zone::new("cluster.local", Some("10.96.0.10".parse().expect("ip"))),
        42,
        &[Arc::new(web), Arc::new(ext)],
        &[],
    )
}

fn query(name: &str, rtype: RecordType, id: u16) -> Vec<u8> {
    let mut m = Message::query();
    m.metadata.id = id;
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).expect("name"), rtype));
    m.to_vec().expect("encode")
}

async fn udp(server: SocketAddr, q: &[u8]) -> Message {
    let socket = UdpSocket::bind((LOOPBACK, 0)).await.expect("bind");
    socket.connect(server).await.expect("connect");
    socket.send(q).await.expect("send");
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), socket.recv(&mut buf))
        .await
        .expect("answer in time")
        .expect("recv");
    Message::from_vec(&buf[..n]).expect("decode")
}

async fn tcp(server: SocketAddr, q: &[u8]) -> Message {
    let mut stream = TcpStream::connect(server).await.expect("connect");
    let mut framed = (q.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(q);
    stream.write_all(&framed).await.expect("write");
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await.expect("len");
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut buf).await.expect("body");
    Message::from_vec(&buf).expect("decode")
}

/// A fake upstream on loopback: answers every A question with 192.0.2.7 (and counts them).
async fn fake_upstream() -> (SocketAddr, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let socket = UdpSocket::bind((LOOPBACK, 0)).await.expect("bind");
    let addr = socket.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok((n, from)) = socket.recv_from(&mut buf).await else {
                return;
            };
            let Ok(q) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let mut answer = Message::response(q.metadata.id, q.metadata.op_code);
            answer.metadata.recursion_available = true;
            for query in &q.queries {
                let _ = tx.send(query.name().to_string());
                answer.add_query(query.clone());
                if query.query_type() == RecordType::A {
                    answer.add_answer(Record::from_rdata(
                        query.name().clone(),
                        60,
                        RData::A(A(Ipv4Addr::new(192, 0, 2, 7))),
                    ));
                }
            }
            let _ = socket
                .send_to(&answer.to_vec().expect("encode"), from)
                .await;
        }
    });
    (addr, rx)
}

async fn start(upstream: Resolvers) -> server::Listening {
    let (_tx, rx) = watch::channel(Arc::new(table()));
    // The sender may go: the receiver keeps the last table.
    server::listen(LOOPBACK, 0, 2, Handler::new(rx, Arc::new(upstream)))
        .await
        .expect("listen")
}

fn addresses(m: &Message) -> Vec<String> {
    m.answers
        .iter()
        .map(|r| match &r.data {
            RData::A(a) => a.0.to_string(),
            RData::CNAME(c) => format!("cname {}", c.0),
            RData::SRV(s) => format!("srv {} {}", s.port, s.target),
            other => format!("{other:?}"),
        })
        .collect()
}

#[tokio::test]
async fn answers_over_udp_and_tcp_with_soa_on_negative_answers() {
    let dns = start(Resolvers::new(Vec::new())).await;
    for (i, transport) in ["udp", "tcp"].into_iter().enumerate() {
        let ask = |name: &str, t: RecordType| query(name, t, 100 + i as u16);
        let exchange = |q: Vec<u8>| async move {
            match transport {
                "udp" => udp(dns.addr, &q).await,
                _ => tcp(dns.addr, &q).await,
            }
        };
        let m = exchange(ask("WEB.default.svc.cluster.local.", RecordType::A)).await;
        assert_eq!(m.metadata.id, 100 + i as u16);
        assert_eq!(
            m.metadata.response_code,
            ResponseCode::NoError,
            "{transport}"
        );
        assert!(m.metadata.authoritative);
        assert_eq!(addresses(&m), vec!["10.96.5.6"]);
        assert_eq!(m.answers[0].ttl, server::TTL);

        let m = exchange(ask(
            "_http._tcp.web.default.svc.cluster.local.",
            RecordType::SRV,
        ))
        .await;
        assert_eq!(addresses(&m), vec!["srv 80 web.default.svc.cluster.local."]);
        assert_eq!(m.additionals.len(), 1, "the target's A in additionals");

        let m = exchange(ask("nope.default.svc.cluster.local.", RecordType::A)).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
        assert_eq!(m.authorities.len(), 1);
        let RData::SOA(soa) = &m.authorities[0].data else {
            panic!("SOA expected, got {:?}", m.authorities);
        };
        assert_eq!(soa.serial, 42);
        assert_eq!(soa.mname.to_string(), "ns.dns.cluster.local.");

        let m = exchange(ask("web.default.svc.cluster.local.", RecordType::AAAA)).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.answers.is_empty());
        assert_eq!(m.authorities.len(), 1, "NODATA carries the SOA");

        let m = exchange(ask("10-42-1-2.default.pod.cluster.local.", RecordType::A)).await;
        assert_eq!(addresses(&m), vec!["10.42.1.2"]);
    }
    dns.stop().await;
}

#[tokio::test]
async fn forwards_other_names_and_chases_external_names_upstream() {
    let (upstream, mut asked) = fake_upstream().await;
    let dns = start(Resolvers::new(vec![upstream])).await;
    let m = udp(dns.addr, &query("www.example.com.", RecordType::A, 7)).await;
    assert_eq!(m.metadata.id, 7);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(!m.metadata.authoritative);
    assert_eq!(addresses(&m), vec!["192.0.2.7"]);
    assert_eq!(asked.recv().await.as_deref(), Some("www.example.com."));

    let m = tcp(
        dns.addr,
        &query("ext.default.svc.cluster.local.", RecordType::A, 8),
    )
    .await;
    assert_eq!(addresses(&m), vec!["cname far.example.org.", "192.0.2.7"]);
    assert_eq!(asked.recv().await.as_deref(), Some("far.example.org."));
    dns.stop().await;

    // No upstream answering: SERVFAIL, not silence.
    let dead = UdpSocket::bind((LOOPBACK, 0)).await.expect("bind");
    let dns = start(Resolvers::new(vec![dead.local_addr().expect("addr")])).await;
    drop(dead);
    let m = udp(dns.addr, &query("www.example.com.", RecordType::A, 9)).await;
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    dns.stop().await;
}

#[tokio::test]
async fn a_second_server_on_the_same_address_fails_to_bind() {
    let dns = start(Resolvers::new(Vec::new())).await;
    let (_tx, rx) = watch::channel(Arc::new(table()));
    let second = server::listen(
        LOOPBACK,
        dns.addr.port(),
        2,
        Handler::new(rx, Arc::new(Resolvers::new(Vec::new()))),
    )
    .await;
    assert!(
        matches!(second, Err(server::ServeError::BindTcp { .. })),
        "{second:?}"
    );
    // The first still answers.
    let m = udp(
        dns.addr,
        &query("web.default.svc.cluster.local.", RecordType::A, 1),
    )
    .await;
    assert_eq!(addresses(&m), vec!["10.96.5.6"]);
    dns.stop().await;
}
