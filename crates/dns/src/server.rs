//! The hickory glue: a `RequestHandler` that answers from the newest record table (pure lookups)
//! and forwards the rest upstream, and the UDP + TCP listeners it serves on.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_server::Server;
use hickory_server::net::runtime::Time;
use hickory_server::proto::op::{
    Edns, Header, HeaderCounts, Message, MessageType, Metadata, OpCode, Query, ResponseCode,
};
use hickory_server::proto::rr::rdata::{A, AAAA, CNAME, NS, PTR, SOA, SRV, TXT};
use hickory_server::proto::rr::{Name, RData, Record, RecordType};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;

use crate::forward::Upstream;
use crate::records::{self, Answer, Data, QType, Table};

/// The TTL of every cluster record (CoreDNS's `kubernetes` plugin default).
pub const TTL: u32 = 5;
/// How long a TCP client may stay idle.
const TCP_IDLE: Duration = Duration::from_secs(10);
/// The EDNS payload we advertise (the DNS flag day's safe size).
const EDNS_PAYLOAD: u16 = 1232;

/// Binding a listener failed.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("binding UDP {addr}")]
    BindUdp {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("binding TCP {addr}")]
    BindTcp {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("reading the bound address")]
    LocalAddr(#[source] std::io::Error),
}

/// Answers queries from the table the one writer publishes; forwards what is not ours.
#[derive(Debug, Clone)]
pub struct Handler {
    table: watch::Receiver<Arc<Table>>,
    upstream: Arc<dyn Upstream>,
}

impl Handler {
    pub fn new(table: watch::Receiver<Arc<Table>>, upstream: Arc<dyn Upstream>) -> Self {
        Handler { table, upstream }
    }
}

fn qtype(t: RecordType) -> QType {
    match t {
        RecordType::A => QType::A,
        RecordType::AAAA => QType::Aaaa,
        RecordType::CNAME => QType::Cname,
        RecordType::SRV => QType::Srv,
        RecordType::PTR => QType::Ptr,
        RecordType::TXT => QType::Txt,
        RecordType::NS => QType::Ns,
        RecordType::SOA => QType::Soa,
        RecordType::ANY => QType::Any,
        _ => QType::Other,
    }
}

fn name(s: &str) -> Option<Name> {
    Name::from_ascii(format!("{s}.")).ok()
}

fn soa(table: &Table) -> Option<Record> {
    let zone = table.zone();
    let soa = SOA::new(
        name(&zone.mname())?,
        name(&zone.rname())?,
        table.serial,
        7200,
        1800,
        86400,
        TTL,
    );
    Some(Record::from_rdata(
        name(&zone.domain)?,
        TTL,
        RData::SOA(soa),
    ))
}

/// The wire record of a table record (`None` for a name that is not valid DNS).
fn record(table: &Table, r: &records::Record) -> Option<Record> {
    let rdata = match &r.data {
        Data::A(ip) => RData::A(A(*ip)),
        Data::Aaaa(ip) => RData::AAAA(AAAA(*ip)),
        Data::Cname(t) => RData::CNAME(CNAME(name(t)?)),
        Data::Ptr(t) => RData::PTR(PTR(name(t)?)),
        Data::Ns(t) => RData::NS(NS(name(t)?)),
        Data::Txt(t) => RData::TXT(TXT::new(vec![t.clone()])),
        Data::Srv {
            priority,
            weight,
            port,
            target,
        } => RData::SRV(SRV::new(*priority, *weight, *port, name(target)?)),
        Data::Soa => return soa(table),
    };
    Some(Record::from_rdata(name(&r.name)?, TTL, rdata))
}

/// The answer records of a forwarded query for `target`/`rtype` (an ExternalName's target).
async fn chase(upstream: &dyn Upstream, target: &str, rtype: RecordType) -> Vec<Record> {
    let Some(target) = name(target) else {
        return Vec::new();
    };
    let mut query = Message::query();
    query.metadata.recursion_desired = true;
    query.add_query(Query::query(target, rtype));
    let Ok(bytes) = query.to_vec() else {
        return Vec::new();
    };
    match upstream.exchange(&bytes).await {
        Ok(answer) => Message::from_vec(&answer)
            .map(|m| m.answers)
            .unwrap_or_default(),
        Err(e) => {
            tracing::debug!(error = %e, "resolving an ExternalName target failed");
            Vec::new()
        }
    }
}

/// What goes back: code, flags and sections.
struct Reply {
    code: ResponseCode,
    authoritative: bool,
    answers: Vec<Record>,
    authorities: Vec<Record>,
    additionals: Vec<Record>,
}

impl Reply {
    fn code(code: ResponseCode) -> Self {
        Reply {
            code,
            authoritative: false,
            answers: Vec::new(),
            authorities: Vec::new(),
            additionals: Vec::new(),
        }
    }
}

impl Handler {
    async fn reply(&self, request: &Request) -> Reply {
        if request.metadata.op_code != OpCode::Query
            || request.metadata.message_type != MessageType::Query
        {
            return Reply::code(ResponseCode::NotImp);
        }
        let Ok(info) = request.request_info() else {
            return Reply::code(ResponseCode::FormErr);
        };
        let rtype = info.query.query_type();
        let table = self.table.borrow().clone();
        let asked = info.query.name().to_string();
        match table.lookup(&asked, qtype(rtype)) {
            Answer::Forward => match self.upstream.exchange(request.as_slice()).await {
                Ok(bytes) => match Message::from_vec(&bytes) {
                    Ok(m) => Reply {
                        code: m.metadata.response_code,
                        authoritative: m.metadata.authoritative,
                        answers: m.answers,
                        authorities: m.authorities,
                        additionals: m.additionals,
                    },
                    Err(e) => {
                        tracing::debug!(error = %e, "undecodable upstream answer");
                        Reply::code(ResponseCode::ServFail)
                    }
                },
                Err(e) => {
                    tracing::debug!(error = %e, name = %asked, "forwarding failed");
                    Reply::code(ResponseCode::ServFail)
                }
            },
            Answer::Found {
                answers,
                additionals,
                chase: target,
            } => {
                let mut answers: Vec<Record> =
                    answers.iter().filter_map(|r| record(&table, r)).collect();
                if let Some(target) = target {
                    answers.extend(chase(self.upstream.as_ref(), &target, rtype).await);
                }
                Reply {
                    code: ResponseCode::NoError,
                    authoritative: true,
                    answers,
                    authorities: Vec::new(),
                    additionals: additionals
                        .iter()
                        .filter_map(|r| record(&table, r))
                        .collect(),
                }
            }
            Answer::NoData => negative(&table, ResponseCode::NoError),
            Answer::NxDomain => negative(&table, ResponseCode::NXDomain),
        }
    }
}

/// NODATA or NXDOMAIN: no answers, the zone's SOA in the authority section (RFC 2308).
fn negative(table: &Table, code: ResponseCode) -> Reply {
    Reply {
        code,
        authoritative: true,
        answers: Vec::new(),
        authorities: soa(table).into_iter().collect(),
        additionals: Vec::new(),
    }
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response: R,
    ) -> ResponseInfo {
        let reply = self.reply(request).await;
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.response_code = reply.code;
        metadata.authoritative = reply.authoritative;
        metadata.recursion_available = true;
        let mut edns = Edns::new();
        edns.set_max_payload(EDNS_PAYLOAD);
        let mut builder = MessageResponseBuilder::from_message_request(request);
        if request.edns.is_some() {
            builder.edns(&edns);
        }
        let message = builder.build(
            metadata,
            reply.answers.iter(),
            reply.authorities.iter(),
            std::iter::empty(),
            reply.additionals.iter(),
        );
        match response.send_response(message).await {
            Ok(info) => info,
            Err(e) => {
                tracing::debug!(error = %e, "sending a DNS response failed");
                metadata.response_code = ResponseCode::ServFail;
                ResponseInfo::from(Header {
                    metadata,
                    counts: HeaderCounts::default(),
                })
            }
        }
    }
}

/// A DNS server listening on UDP and TCP of one address.
pub struct Listening {
    /// The bound address (the same port for UDP and TCP).
    pub addr: SocketAddr,
    server: Server<Handler>,
}

impl std::fmt::Debug for Listening {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listening")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Listening {
    /// Stops accepting and waits for the listeners to end.
    pub async fn stop(mut self) {
        if let Err(e) = self.server.shutdown_gracefully().await {
            tracing::debug!(error = %e, "DNS server stop");
        }
    }
}

/// A non-blocking UDP socket on `addr` with SO_REUSEPORT, so several can share the port.
fn reuse_port_udp(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    use rustix::net::{AddressFamily, SocketType};
    let family = match addr {
        SocketAddr::V4(_) => AddressFamily::INET,
        SocketAddr::V6(_) => AddressFamily::INET6,
    };
    let fd = rustix::net::socket(family, SocketType::DGRAM, None)?;
    rustix::net::sockopt::set_socket_reuseport(&fd, true)?;
    rustix::net::bind(&fd, &addr)?;
    let socket = std::net::UdpSocket::from(fd);
    socket.set_nonblocking(true)?;
    UdpSocket::from_std(socket)
}

/// Binds `udp_sockets` UDP sockets (SO_REUSEPORT: the kernel spreads clients over them, each with
/// its own receive loop, so a multi-threaded runtime serves in parallel) and a TCP listener on
/// `ip:port` (port 0: a free port, the same for all), and serves `handler`.
pub async fn listen(
    ip: IpAddr,
    port: u16,
    udp_sockets: usize,
    handler: Handler,
) -> Result<Listening, ServeError> {
    let asked = SocketAddr::new(ip, port);
    let first = reuse_port_udp(asked).map_err(|source| ServeError::BindUdp {
        addr: asked,
        source,
    })?;
    let addr = first.local_addr().map_err(ServeError::LocalAddr)?;
    let mut udp = vec![first];
    for _ in 1..udp_sockets.max(1) {
        udp.push(reuse_port_udp(addr).map_err(|source| ServeError::BindUdp { addr, source })?);
    }
    // The TCP listener has no SO_REUSEPORT: a second server on the same address fails here (and
    // drops its UDP sockets) instead of sharing the port with the first.
    let tcp = TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::BindTcp { addr, source })?;
    let mut server = Server::new(handler);
    for socket in udp {
        server.register_socket(socket);
    }
    server.register_listener(tcp, TCP_IDLE, 64);
    Ok(Listening { addr, server })
}
