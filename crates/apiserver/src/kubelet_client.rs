//! The API server's client for kubelets (pods/log and friends): one HTTPS/1.1 GET to a node's
//! kubelet port, the body streamed back. Kubelet serving certificates are not verified, as upstream
//! without `--kubelet-certificate-authority`.

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// A kubelet request that failed.
#[derive(Debug, thiserror::Error)]
pub enum KubeletError {
    #[error("dial tcp {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS to the kubelet at {addr}")]
    Tls {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0:?} is not a host name or address")]
    Name(String),
    #[error("TLS configuration")]
    Config(#[source] rustls::Error),
    #[error("HTTP to the kubelet at {addr}")]
    Http {
        addr: String,
        #[source]
        source: hyper::Error,
    },
    #[error("the kubelet request")]
    Request(#[source] http::Error),
}

/// Accepts any kubelet certificate (signatures still checked).
#[derive(Debug)]
struct AnyKubelet(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyKubelet {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A kubelet's answer: its status and its body as a stream.
pub struct KubeletResponse {
    pub status: http::StatusCode,
    pub body: BoxStream<'static, Bytes>,
}

impl std::fmt::Debug for KubeletResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeletResponse")
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// GETs `path_and_query` from the kubelet at `host:port`.
pub async fn get(
    host: &str,
    port: i32,
    path_and_query: &str,
) -> Result<KubeletResponse, KubeletError> {
    let addr = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(KubeletError::Config)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyKubelet(provider)))
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(&addr)
        .await
        .map_err(|source| KubeletError::Connect {
            addr: addr.clone(),
            source,
        })?;
    let name =
        ServerName::try_from(host.to_string()).map_err(|_| KubeletError::Name(host.to_string()))?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|source| KubeletError::Tls {
            addr: addr.clone(),
            source,
        })?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|source| KubeletError::Http {
            addr: addr.clone(),
            source,
        })?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let request = http::Request::get(path_and_query)
        .header(http::header::HOST, &addr)
        .body(Empty::<Bytes>::new())
        .map_err(KubeletError::Request)?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|source| KubeletError::Http { addr, source })?;
    let status = response.status();
    let body = response
        .into_body()
        .into_data_stream()
        .take_while(|r| futures::future::ready(r.is_ok()))
        .filter_map(|r| futures::future::ready(r.ok()))
        .boxed();
    Ok(KubeletResponse { status, body })
}
