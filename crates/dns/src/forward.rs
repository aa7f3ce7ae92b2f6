//! Forwarding what is not the cluster's: the host's resolvers read from a resolv.conf (parsing is
//! pure), and the `Upstream` seam that exchanges one raw DNS message with them (UDP, then TCP
//! when the answer comes back truncated).

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// How long one upstream server gets to answer before the next is tried.
const TIMEOUT: Duration = Duration::from_secs(2);
/// The largest DNS message over UDP we accept.
const MAX_UDP: usize = 4096;

/// A failed exchange with the upstream resolvers.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error("no upstream resolvers")]
    NoServers,
    #[error("reading {path}")]
    ReadConf {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("exchanging with {server}")]
    Exchange {
        server: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("{server} did not answer in time")]
    Timeout { server: SocketAddr },
}

/// The upstream resolvers: one raw query in, one raw answer out.
#[async_trait]
pub trait Upstream: Send + Sync + std::fmt::Debug + 'static {
    async fn exchange(&self, query: &[u8]) -> Result<Vec<u8>, ForwardError>;
}

/// The `nameserver` addresses of a resolv.conf's text, in order, port 53 (ones that are not IP
/// addresses are skipped, as libc does).
pub fn nameservers(resolv_conf: &str) -> Vec<SocketAddr> {
    resolv_conf
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            (fields.next() == Some("nameserver"))
                .then(|| fields.next())
                .flatten()
        })
        .filter_map(|ip| ip.parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

/// The host's resolvers over UDP (TCP for truncated answers), tried in order.
#[derive(Debug, Clone)]
pub struct Resolvers {
    servers: Vec<SocketAddr>,
}

impl Resolvers {
    pub fn new(servers: Vec<SocketAddr>) -> Self {
        Resolvers { servers }
    }

    /// The resolvers of the resolv.conf at `path`, leaving out `except` (our own listen address:
    /// forwarding to ourselves would loop).
    pub fn from_resolv_conf(path: &Path, except: &[SocketAddr]) -> Result<Self, ForwardError> {
        let text = std::fs::read_to_string(path).map_err(|source| ForwardError::ReadConf {
            path: path.display().to_string(),
            source,
        })?;
        let servers = nameservers(&text)
            .into_iter()
            .filter(|s| !except.contains(s))
            .collect();
        Ok(Resolvers { servers })
    }

    pub fn servers(&self) -> &[SocketAddr] {
        &self.servers
    }
}

/// Whether a raw DNS message has the TC (truncated) bit.
fn truncated(message: &[u8]) -> bool {
    message.get(2).is_some_and(|flags| flags & 0x02 != 0)
}

async fn udp(server: SocketAddr, query: &[u8]) -> std::io::Result<Vec<u8>> {
    let local: SocketAddr = match server {
        SocketAddr::V4(_) => ([0, 0, 0, 0], 0).into(),
        SocketAddr::V6(_) => ([0u16; 8], 0).into(),
    };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(server).await?;
    socket.send(query).await?;
    let mut buf = vec![0u8; MAX_UDP];
    loop {
        let n = socket.recv(&mut buf).await?;
        // Only the answer to this query (same ID) counts.
        if n >= 2 && query.len() >= 2 && buf[..2] == query[..2] {
            buf.truncate(n);
            return Ok(buf);
        }
    }
}

async fn tcp(server: SocketAddr, query: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(server).await?;
    let len = u16::try_from(query.len())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "query too long"))?;
    let mut framed = Vec::with_capacity(query.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(query);
    stream.write_all(&framed).await?;
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await?;
    let mut answer = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut answer).await?;
    Ok(answer)
}

#[async_trait]
impl Upstream for Resolvers {
    async fn exchange(&self, query: &[u8]) -> Result<Vec<u8>, ForwardError> {
        let mut last = ForwardError::NoServers;
        for &server in &self.servers {
            let attempt = async {
                let answer = udp(server, query).await?;
                match truncated(&answer) {
                    true => tcp(server, query).await,
                    false => Ok(answer),
                }
            };
            match tokio::time::timeout(TIMEOUT, attempt).await {
                Ok(Ok(answer)) => return Ok(answer),
                Ok(Err(source)) => last = ForwardError::Exchange { server, source },
                Err(_) => last = ForwardError::Timeout { server },
            }
        }
        Err(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nameservers_are_read_in_order() {
        let text = "# generated\nsearch example.com\nnameserver 10.0.0.2\nnameserver  fd00::53 \n\
                    nameserver not-an-ip\noptions ndots:1\n  nameserver 1.1.1.1\n";
        assert_eq!(
            nameservers(text),
            vec![
                "10.0.0.2:53".parse().expect("addr"),
                "[fd00::53]:53".parse().expect("addr"),
                "1.1.1.1:53".parse().expect("addr"),
            ]
        );
        assert!(nameservers("").is_empty());
    }

    #[test]
    fn our_own_address_is_never_an_upstream() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("resolv.conf");
        std::fs::write(&path, "nameserver 10.1.1.1\nnameserver 10.2.2.2\n").expect("write");
        let own: SocketAddr = "10.1.1.1:53".parse().expect("addr");
        let r = Resolvers::from_resolv_conf(&path, &[own]).expect("read");
        assert_eq!(r.servers(), &["10.2.2.2:53".parse().expect("addr")]);
        assert!(Resolvers::from_resolv_conf(&dir.path().join("missing"), &[]).is_err());
    }

    #[test]
    fn the_truncation_bit() {
        assert!(truncated(&[0, 1, 0x82, 0]));
        assert!(!truncated(&[0, 1, 0x80, 0]));
        assert!(!truncated(&[0]));
    }
}
