//! The explain endpoint behind `oxkube why-pending`: an HTTP/1 server on loopback (its address
//! written to `<data-dir>/scheduler-address`) answering `GET /why-pending/<namespace>/<name>`
//! with the scheduler loop's explanation as JSON, and the client side that queries it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

use crate::runner::Input;
use crate::schedule::Explanation;

/// The file under the data dir holding the endpoint's address.
pub const ADDRESS_FILE: &str = "scheduler-address";

/// The loop's answer about one pod.
#[derive(Debug)]
pub enum ExplainReply {
    Pending(Box<Explanation>),
    Bound(String),
    Unknown,
}

/// What can go wrong serving or querying explanations.
#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    #[error("listening on loopback")]
    Listen(#[source] std::io::Error),
    #[error("writing the endpoint address to {0}")]
    WriteAddress(PathBuf, #[source] std::io::Error),
    #[error(
        "reading the scheduler's address from {0} (is `oxkube server` running with this --data-dir?)"
    )]
    ReadAddress(PathBuf, #[source] std::io::Error),
    #[error("the scheduler's address {0:?} is not an address")]
    BadAddress(String),
    #[error("connecting to the scheduler at {0}")]
    Connect(SocketAddr, #[source] std::io::Error),
    #[error("talking to the scheduler")]
    Http(#[source] hyper::Error),
    #[error("building the request")]
    Request(#[source] hyper::http::Error),
    #[error("{0}")]
    Refused(String),
    #[error("decoding the scheduler's answer")]
    Decode(#[source] serde_json::Error),
}

fn text(code: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = code;
    r
}

async fn handle(req: Request<Incoming>, tx: mpsc::UnboundedSender<Input>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let ["why-pending", namespace, name] = parts.as_slice() else {
        return text(
            StatusCode::NOT_FOUND,
            "use GET /why-pending/<namespace>/<name>\n".into(),
        );
    };
    let (reply, answer) = oneshot::channel();
    let input = Input::Explain {
        namespace: namespace.to_string(),
        name: name.to_string(),
        reply,
    };
    if tx.send(input).is_err() {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "the scheduler is stopping\n".into(),
        );
    }
    match answer.await {
        Ok(ExplainReply::Pending(e)) => match serde_json::to_string(&e) {
            Ok(body) => text(StatusCode::OK, body),
            Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
        },
        Ok(ExplainReply::Bound(node)) => text(
            StatusCode::CONFLICT,
            format!("pod {namespace}/{name} is not pending: it is assigned to node {node}"),
        ),
        Ok(ExplainReply::Unknown) => text(
            StatusCode::NOT_FOUND,
            format!(
                "pod {namespace}/{name} is not waiting in the scheduler's queue (no such pod, or another scheduler's)"
            ),
        ),
        Err(_) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "the scheduler is stopping\n".into(),
        ),
    }
}

/// Listens on 127.0.0.1 (a free port), writes the address file and serves in the background.
pub(crate) async fn serve(
    tx: mpsc::UnboundedSender<Input>,
    data_dir: &Path,
) -> Result<SocketAddr, ExplainError> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(ExplainError::Listen)?;
    let addr = listener.local_addr().map_err(ExplainError::Listen)?;
    let file = data_dir.join(ADDRESS_FILE);
    std::fs::write(&file, addr.to_string()).map_err(|e| ExplainError::WriteAddress(file, e))?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let tx = tx.clone();
            if tx.is_closed() {
                return;
            }
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let tx = tx.clone();
                    async move { Ok::<_, std::convert::Infallible>(handle(req, tx).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(addr)
}

/// Asks the scheduler whose address sits under `data_dir` why the pod is pending.
pub async fn query(
    data_dir: &Path,
    namespace: &str,
    name: &str,
) -> Result<Explanation, ExplainError> {
    let file = data_dir.join(ADDRESS_FILE);
    let raw = std::fs::read_to_string(&file).map_err(|e| ExplainError::ReadAddress(file, e))?;
    let addr: SocketAddr = raw
        .trim()
        .parse()
        .map_err(|_| ExplainError::BadAddress(raw.trim().to_string()))?;
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| ExplainError::Connect(addr, e))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(ExplainError::Http)?;
    tokio::spawn(conn);
    let req = Request::get(format!("/why-pending/{namespace}/{name}"))
        .header("host", addr.to_string())
        .body(Full::new(Bytes::new()))
        .map_err(ExplainError::Request)?;
    let resp = sender.send_request(req).await.map_err(ExplainError::Http)?;
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(ExplainError::Http)?
        .to_bytes();
    if status != StatusCode::OK {
        return Err(ExplainError::Refused(
            String::from_utf8_lossy(&body).trim().to_string(),
        ));
    }
    serde_json::from_slice(&body).map_err(ExplainError::Decode)
}
