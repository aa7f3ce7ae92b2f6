//! The HTTP side: TLS (rustls) with optional client certificates, HTTP/1.1 and HTTP/2 (hyper),
//! the request pipeline (parse → authenticate → authorize → serve → encode), watch streaming, and
//! graceful shutdown (stop accepting, finish requests, end watches).

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited, StreamBody, combinators::UnsyncBoxBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::graceful::GracefulShutdown;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use oxkube_api::registry::Resource;
use oxkube_api::{openapi, registry, table};

use crate::auth::{Authenticator, Authorizer};
use crate::discovery;
use crate::negotiate::{self, Format};
use crate::request::{self, Health, Query, Target, Verb};
use crate::rest::{Answer, Call, Item, ListBody, MAX_BODY, Output, Rest, WatchEvent};
use crate::status::ApiError;

pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// Everything a request handler needs, shared by all connections.
#[derive(Debug)]
pub struct Handler {
    pub rest: Rest,
    pub authn: Authenticator,
    pub authz: Box<dyn Authorizer>,
    pub ready: AtomicBool,
    /// `host:port` clients reach the server at.
    pub server_address: String,
    /// The cluster CA certificate (PEM), served at `/cacerts`.
    pub ca_pem: String,
    pub shutdown: watch::Receiver<bool>,
    /// The `/openapi/v3` root's paths and hashes, made on first ask (building every document
    /// costs memory a server nobody asks does not need).
    openapi_hashes: std::sync::OnceLock<Vec<(String, String)>>,
    /// Requests served at once, beyond which clients get 429 (upstream's max-requests-inflight and
    /// max-mutating-requests-inflight; watches are long-running and not counted).
    reads: tokio::sync::Semaphore,
    writes: tokio::sync::Semaphore,
}

/// Upstream's defaults for the two in-flight limits.
const MAX_READS_IN_FLIGHT: usize = 400;
const MAX_WRITES_IN_FLIGHT: usize = 200;

impl Handler {
    pub fn new(
        rest: Rest,
        authn: Authenticator,
        authz: Box<dyn Authorizer>,
        server_address: String,
        ca_pem: String,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        Handler {
            rest,
            authn,
            authz,
            ready: AtomicBool::new(false),
            server_address,
            ca_pem,
            shutdown,
            openapi_hashes: std::sync::OnceLock::new(),
            reads: tokio::sync::Semaphore::new(MAX_READS_IN_FLIGHT),
            writes: tokio::sync::Semaphore::new(MAX_WRITES_IN_FLIGHT),
        }
    }

    fn openapi_hashes(&self) -> &[(String, String)] {
        self.openapi_hashes.get_or_init(|| {
            registry::groups()
                .iter()
                .flat_map(|(g, versions)| versions.iter().map(move |v| (*g, *v)))
                .filter_map(|(g, v)| {
                    let doc = openapi::v3_document(g, v)?;
                    let hash: String = Sha256::digest(doc.to_string().as_bytes())
                        .iter()
                        .take(32)
                        .map(|b| format!("{b:02X}"))
                        .collect();
                    let path = if g.is_empty() {
                        format!("api/{v}")
                    } else {
                        format!("apis/{g}/{v}")
                    };
                    Some((path, hash))
                })
                .collect()
        })
    }

    /// Serves one request; never fails (errors become Status answers).
    pub async fn serve(
        self: Arc<Self>,
        req: Request<Incoming>,
        client_cert: Option<Arc<Vec<u8>>>,
    ) -> Response<Body> {
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let accept = header_str(&req, header::ACCEPT).map(str::to_string);
        let started = std::time::Instant::now();
        let response = match self
            .route(req, client_cert.as_deref().map(Vec::as_slice))
            .await
        {
            Ok(response) => response,
            Err(e) => error_response(&e),
        };
        tracing::debug!(%method, %path, accept = accept.as_deref().unwrap_or(""), status = response.status().as_u16(), elapsed_us = started.elapsed().as_micros() as u64, "request");
        response
    }

    async fn route(
        &self,
        req: Request<Incoming>,
        client_cert: Option<&[u8]>,
    ) -> Result<Response<Body>, ApiError> {
        let query = Query::parse(req.uri().query())?;
        let target = request::parse(req.method(), req.uri().path(), &query)?;
        let user = self
            .authn
            .authenticate(client_cert, header_str(&req, header::AUTHORIZATION))?;
        self.authz.authorize(&user, &target)?;
        let accept = header_str(&req, header::ACCEPT).map(str::to_string);
        let accept = accept.as_deref();
        match target {
            Target::Health(which) => {
                let ok = which != Health::Readyz || self.ready.load(Ordering::Relaxed);
                let ok = ok && !*self.shutdown.borrow();
                let (code, text) = if ok {
                    (StatusCode::OK, "ok")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "not ready")
                };
                Ok(raw(
                    code,
                    "text/plain; charset=utf-8",
                    Bytes::from_static(text.as_bytes()),
                ))
            }
            Target::Version => json_response(StatusCode::OK, &discovery::version()),
            Target::CaCerts => Ok(raw(
                StatusCode::OK,
                "application/x-pem-file",
                Bytes::from(self.ca_pem.clone()),
            )),
            Target::CoreVersions => match negotiate::choose(accept, false, true)? {
                Format::Discovery => encoded(
                    StatusCode::OK,
                    Format::Discovery,
                    &discovery::aggregated(true),
                ),
                f => encoded(
                    StatusCode::OK,
                    f,
                    &discovery::core_versions(&self.server_address),
                ),
            },
            Target::Groups => match negotiate::choose(accept, false, true)? {
                Format::Discovery => encoded(
                    StatusCode::OK,
                    Format::Discovery,
                    &discovery::aggregated(false),
                ),
                f => encoded(StatusCode::OK, f, &discovery::group_list()),
            },
            Target::Group(g) => {
                let doc = discovery::group(&g).ok_or(ApiError::NoSuchPath)?;
                encoded(
                    StatusCode::OK,
                    negotiate::choose(accept, false, false)?,
                    &doc,
                )
            }
            Target::ResourceList { group, version } => {
                let doc = discovery::resource_list(&group, &version).ok_or(ApiError::NoSuchPath)?;
                encoded(
                    StatusCode::OK,
                    negotiate::choose(accept, false, false)?,
                    &doc,
                )
            }
            Target::OpenApiV2 => {
                let doc = openapi::v2_document();
                if negotiate::wants_openapi_v2_protobuf(accept) {
                    let body = Bytes::from(oxkube_api::openapi_proto::v2_protobuf(&doc));
                    return Ok(raw(StatusCode::OK, negotiate::OPENAPI_V2_PROTOBUF, body));
                }
                negotiate::choose(accept, false, false)?;
                json_response(StatusCode::OK, &doc)
            }
            Target::OpenApiV3Root => {
                let mut paths = serde_json::Map::new();
                for (path, hash) in self.openapi_hashes() {
                    paths.insert(
                        path.clone(),
                        json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={hash}")}),
                    );
                }
                json_response(StatusCode::OK, &json!({"paths": paths}))
            }
            Target::OpenApiV3 { group, version } => {
                let doc = openapi::v3_document(&group, &version).ok_or(ApiError::NoSuchPath)?;
                let mut response = json_response(StatusCode::OK, &doc)?;
                if query.raw.iter().any(|(k, _)| k == "hash") {
                    response.headers_mut().insert(
                        header::CACHE_CONTROL,
                        HeaderValue::from_static("public, immutable"),
                    );
                }
                Ok(response)
            }
            Target::Resource(rreq) => {
                let limit = match rreq.verb {
                    Verb::Watch => None,
                    Verb::Get | Verb::List => Some(&self.reads),
                    _ => Some(&self.writes),
                };
                let _permit = match limit.map(tokio::sync::Semaphore::try_acquire) {
                    Some(Err(_)) => {
                        return Err(ApiError::TooManyRequests(
                            "Too many requests, please try again later.".into(),
                        ));
                    }
                    Some(Ok(permit)) => Some(permit),
                    None => None,
                };
                let tableable = matches!(rreq.verb, Verb::Get | Verb::List | Verb::Watch)
                    && rreq.subresource.is_none();
                let format = negotiate::choose(accept, tableable, false)?;
                let body_type = if matches!(
                    req.method(),
                    &Method::POST | &Method::PUT | &Method::PATCH | &Method::DELETE
                ) {
                    negotiate::body_type(header_str(&req, header::CONTENT_TYPE))?
                } else {
                    negotiate::BodyType::Json
                };
                let user_agent = header_str(&req, header::USER_AGENT).map(str::to_string);
                let body = read_body(req).await?;
                let answer = self
                    .rest
                    .call(Call {
                        req: &rreq,
                        query: &query,
                        body,
                        body_type,
                        user: &user,
                        user_agent: user_agent.as_deref(),
                    })
                    .await?;
                self.encode_answer(rreq.resource, format, &query, answer)
            }
        }
    }

    fn encode_answer(
        &self,
        res: &'static Resource,
        format: Format,
        query: &Query,
        answer: Answer,
    ) -> Result<Response<Body>, ApiError> {
        let Answer { output, warnings } = answer;
        let mut response = match output {
            Output::Object { code, object } => match format {
                Format::Table => encoded(
                    code,
                    Format::Table,
                    &self.table(res, std::slice::from_ref(&object), None, query, true),
                )?,
                f => encoded(code, f, &object)?,
            },
            Output::Status(status) => json_response(StatusCode::OK, &status)?,
            Output::List(list) => match format {
                Format::Table => {
                    let objects: Vec<Value> =
                        list.items.iter().map(|i| i.value().clone()).collect();
                    encoded(
                        StatusCode::OK,
                        Format::Table,
                        &self.table(res, &objects, Some(&list), query, true),
                    )?
                }
                Format::Json => raw(
                    StatusCode::OK,
                    negotiate::content_type(Format::Json),
                    list_json(res, &list),
                ),
                f => {
                    let items: Vec<Value> = list.items.iter().map(|i| i.value().clone()).collect();
                    encoded(StatusCode::OK, f, &list_value(res, &list, items))?
                }
            },
            Output::Watch(events) => self.watch_response(res, format, query, events),
            Output::Text(chunks) => {
                let body = StreamBody::new(chunks.map(|b| Ok::<_, Infallible>(Frame::data(b))));
                let mut response = Response::new(body.boxed_unsync());
                response
                    .headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
                response
            }
        };
        for w in warnings {
            let text = format!("299 - {}", serde_json::to_string(&w).unwrap_or_default());
            if let Ok(v) = HeaderValue::from_str(&text) {
                response.headers_mut().append(header::WARNING, v);
            }
        }
        Ok(response)
    }

    fn table(
        &self,
        res: &Resource,
        objects: &[Value],
        list: Option<&ListBody>,
        query: &Query,
        columns: bool,
    ) -> Value {
        let now = self.rest.clock.now().as_second();
        let include = query.include_object.as_deref().unwrap_or("Metadata");
        let rows: Vec<Value> = objects
            .iter()
            .map(|obj| {
                let mut row = json!({"cells": table::cells(res, obj, now)});
                let object = match include {
                    "None" => None,
                    "Object" => Some(obj.clone()),
                    _ => Some(json!({
                        "kind": "PartialObjectMetadata",
                        "apiVersion": "meta.k8s.io/v1",
                        "metadata": obj.get("metadata").cloned().unwrap_or(json!({})),
                    })),
                };
                if let (Some(object), Some(map)) = (object, row.as_object_mut()) {
                    map.insert("object".into(), object);
                }
                row
            })
            .collect();
        let mut metadata = serde_json::Map::new();
        match list {
            Some(list) => {
                metadata.insert(
                    "resourceVersion".into(),
                    Value::from(list.revision.to_string()),
                );
                if let Some(c) = &list.continue_token {
                    metadata.insert("continue".into(), Value::from(c.clone()));
                }
                if let Some(n) = list.remaining {
                    metadata.insert("remainingItemCount".into(), Value::from(n));
                }
            }
            None => {
                if let Some(rv) = objects
                    .first()
                    .and_then(|o| o["metadata"]["resourceVersion"].as_str())
                {
                    metadata.insert("resourceVersion".into(), Value::from(rv));
                }
            }
        }
        let mut t = json!({
            "kind": "Table",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": metadata,
            "rows": rows,
        });
        if columns && let Some(map) = t.as_object_mut() {
            map.insert(
                "columnDefinitions".into(),
                Value::from(table::column_definitions(res)),
            );
        }
        t
    }

    fn watch_response(
        &self,
        res: &'static Resource,
        format: Format,
        query: &Query,
        events: futures::stream::BoxStream<'static, WatchEvent>,
    ) -> Response<Body> {
        let timeout = query
            .timeout_seconds
            .map(Duration::from_secs)
            .unwrap_or_else(|| Duration::from_secs(1800 + rand::random_range(0..1800)));
        let mut shutdown = self.shutdown.clone();
        let stop = async move {
            tokio::select! {
                _ = tokio::time::sleep(timeout) => {}
                _ = shutdown.wait_for(|s| *s) => {}
            }
        };
        let query = query.clone();
        let table_handler = TableMaker {
            now: self.rest.clock.clone(),
        };
        let mut first = true;
        let mut encode = move |event: WatchEvent, out: &mut Vec<u8>| {
            let line = match event {
                WatchEvent::Object {
                    kind,
                    object: Item::Cached(entry),
                } if format != Format::Table => {
                    // The cached bytes are the object: no decode, no re-encode per watcher.
                    out.extend_from_slice(b"{\"type\":\"");
                    out.extend_from_slice(kind.as_bytes());
                    out.extend_from_slice(b"\",\"object\":");
                    out.extend_from_slice(&entry.json);
                    out.extend_from_slice(b"}\n");
                    return;
                }
                WatchEvent::Object { kind, object } => {
                    let object = if format == Format::Table {
                        let t = table_handler.table(res, object.value(), &query, first);
                        first = false;
                        t
                    } else {
                        object.value().clone()
                    };
                    json!({"type": kind, "object": object})
                }
                WatchEvent::Bookmark {
                    revision,
                    initial_events_end,
                } => {
                    let mut metadata = json!({"resourceVersion": revision.to_string()});
                    if initial_events_end && let Some(m) = metadata.as_object_mut() {
                        m.insert(
                            "annotations".into(),
                            json!({"k8s.io/initial-events-end": "true"}),
                        );
                    }
                    json!({"type": "BOOKMARK", "object": {"kind": res.kind, "apiVersion": res.api_version(), "metadata": metadata}})
                }
                WatchEvent::Error(e) => json!({"type": "ERROR", "object": e.to_status()}),
            };
            if serde_json::to_writer(&mut *out, &line).is_ok() {
                out.push(b'\n');
            }
        };
        // Events that are ready together go out in one frame.
        let frames = events.take_until(stop).ready_chunks(256).map(move |batch| {
            let mut out = Vec::with_capacity(batch.len() * 512);
            for event in batch {
                encode(event, &mut out);
            }
            Ok::<_, Infallible>(Frame::data(Bytes::from(out)))
        });
        let mut response = Response::new(StreamBody::new(frames).boxed_unsync());
        let ct = match format {
            Format::Table => negotiate::content_type(Format::Table),
            _ => "application/json",
        };
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
        response
    }
}

/// Tables for watch events, outside the handler's borrow.
struct TableMaker {
    now: Arc<dyn crate::rest::Clock>,
}

impl TableMaker {
    fn table(&self, res: &Resource, obj: &Value, query: &Query, columns: bool) -> Value {
        let now = self.now.now().as_second();
        let include = query.include_object.as_deref().unwrap_or("Metadata");
        let mut row = json!({"cells": table::cells(res, obj, now)});
        let object = match include {
            "None" => None,
            "Object" => Some(obj.clone()),
            _ => Some(
                json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata").cloned().unwrap_or(json!({}))}),
            ),
        };
        if let (Some(o), Some(m)) = (object, row.as_object_mut()) {
            m.insert("object".into(), o);
        }
        let mut t = json!({
            "kind": "Table",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": {"resourceVersion": obj["metadata"]["resourceVersion"].clone()},
            "rows": [row],
        });
        if columns && let Some(m) = t.as_object_mut() {
            m.insert(
                "columnDefinitions".into(),
                Value::from(table::column_definitions(res)),
            );
        }
        t
    }
}

fn list_metadata(list: &ListBody) -> Value {
    let mut metadata = json!({"resourceVersion": list.revision.to_string()});
    if let Some(m) = metadata.as_object_mut() {
        if let Some(c) = &list.continue_token {
            m.insert("continue".into(), Value::from(c.clone()));
        }
        if let Some(n) = list.remaining {
            m.insert("remainingItemCount".into(), Value::from(n));
        }
    }
    metadata
}

fn list_value(res: &Resource, list: &ListBody, items: Vec<Value>) -> Value {
    json!({
        "kind": crate::objects::list_kind(res),
        "apiVersion": res.api_version(),
        "metadata": list_metadata(list),
        "items": items,
    })
}

/// A JSON list, with cached items copied in as the bytes they already are.
fn list_json(res: &Resource, list: &ListBody) -> Bytes {
    let head = json!({
        "kind": crate::objects::list_kind(res),
        "apiVersion": res.api_version(),
        "metadata": list_metadata(list),
    })
    .to_string();
    let mut out = BytesMut::with_capacity(head.len() + 64 + list.items.len() * 512);
    out.extend_from_slice(&head.as_bytes()[..head.len().saturating_sub(1)]);
    out.extend_from_slice(b",\"items\":[");
    for (i, item) in list.items.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b",");
        }
        match item {
            // Objects are stored with their kind and apiVersion: the cached bytes are the item.
            Item::Cached(entry) => out.extend_from_slice(&entry.json),
            Item::Owned(v) => out.extend_from_slice(&serde_json::to_vec(v).unwrap_or_default()),
        }
    }
    out.extend_from_slice(b"]}");
    out.freeze()
}

async fn read_body(req: Request<Incoming>) -> Result<Bytes, ApiError> {
    match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(ApiError::TooLarge(format!("limit is {MAX_BODY} bytes")))
        }
        Err(e) => Err(ApiError::BadRequest(format!(
            "reading the request body: {e}"
        ))),
    }
}

fn header_str<B>(req: &Request<B>, name: header::HeaderName) -> Option<&str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

fn raw(code: StatusCode, content_type: &'static str, body: Bytes) -> Response<Body> {
    let mut response = Response::new(Full::new(body).boxed_unsync());
    *response.status_mut() = code;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn json_response(code: StatusCode, value: &Value) -> Result<Response<Body>, ApiError> {
    encoded(code, Format::Json, value)
}

fn encoded(code: StatusCode, format: Format, value: &Value) -> Result<Response<Body>, ApiError> {
    let body = match format {
        Format::Yaml => serde_yaml_ng::to_string(value)
            .map(Bytes::from)
            .map_err(|e| ApiError::Internal(e.to_string()))?,
        _ => serde_json::to_vec(value)
            .map(Bytes::from)
            .map_err(|e| ApiError::Internal(e.to_string()))?,
    };
    Ok(raw(code, negotiate::content_type(format), body))
}

fn error_response(e: &ApiError) -> Response<Body> {
    let body = serde_json::to_vec(&e.to_status()).unwrap_or_default();
    let mut response = raw(e.code(), "application/json", Bytes::from(body));
    if matches!(e, ApiError::TooManyRequests(_)) {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

/// Serves HTTPS on `listener` until `shutdown` turns true, then stops accepting, lets requests in
/// flight finish (up to `drain`), and returns.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    handler: Arc<Handler>,
    mut shutdown: watch::Receiver<bool>,
    drain: Duration,
) {
    let acceptor = TlsAcceptor::from(tls);
    let graceful = GracefulShutdown::new();
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.wait_for(|s| *s) => break,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let handler = handler.clone();
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let tls =
                match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => return,
                };
            let client_cert = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| Arc::new(c.as_ref().to_vec()));
            let service = hyper::service::service_fn(move |req| {
                let handler = handler.clone();
                let cert = client_cert.clone();
                async move { Ok::<_, Infallible>(handler.serve(req, cert).await) }
            });
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
            if let Err(e) = watcher.watch(conn.into_owned()).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still running after the drain time; closing them");
    }
}

/// The rustls configuration: the serving certificate, client certificates verified against the
/// cluster CA when offered (not required: tokens and anonymous requests come without one),
/// HTTP/2 and HTTP/1.1 by ALPN.
pub fn tls_config(
    serving_cert_pem: &str,
    serving_key_pem: &str,
    ca_pem: &str,
) -> Result<rustls::ServerConfig, TlsError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(serving_cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|_| TlsError::Pem("serving certificate"))?;
    let key = PrivateKeyDer::from_pem_slice(serving_key_pem.as_bytes())
        .map_err(|_| TlsError::Pem("serving key"))?;
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        let ca = ca.map_err(|_| TlsError::Pem("CA certificate"))?;
        roots.add(ca).map_err(TlsError::Rustls)?;
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .allow_unauthenticated()
    .build()
    .map_err(|e| TlsError::Verifier(e.to_string()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Rustls)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(TlsError::Rustls)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the {0} PEM")]
    Pem(&'static str),
    #[error("TLS configuration")]
    Rustls(#[source] rustls::Error),
    #[error("client certificate verifier: {0}")]
    Verifier(String),
}
