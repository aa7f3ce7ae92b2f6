//! Joining a cluster with a node token `K10<sha256 of the CA certificate DER, hex>::server:<secret>`:
//! fetch the CA from the server's anonymous `/cacerts` (the one request made without verifying the
//! server, since the token pins what must come back), check its hash, then build a client that trusts
//! only that CA and presents the secret as its bearer token.

use std::str::FromStr;
use std::sync::Arc;

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};

/// The largest `/cacerts` body accepted.
const MAX_CA_BYTES: usize = 1 << 20;

/// A parsed node token.
#[derive(Clone, PartialEq, Eq)]
pub struct JoinToken {
    ca_hash: String,
    secret: String,
}

impl std::fmt::Debug for JoinToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinToken")
            .field("ca_hash", &self.ca_hash)
            .finish_non_exhaustive()
    }
}

/// Why a token does not parse.
#[derive(Debug, thiserror::Error)]
#[error("the token must look like K10<64 hex digits>::server:<secret>")]
pub struct TokenError;

impl FromStr for JoinToken {
    type Err = TokenError;

    fn from_str(s: &str) -> Result<Self, TokenError> {
        let (hash, secret) = s
            .trim()
            .strip_prefix("K10")
            .and_then(|rest| rest.split_once("::server:"))
            .ok_or(TokenError)?;
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) || secret.is_empty() {
            return Err(TokenError);
        }
        Ok(JoinToken {
            ca_hash: hash.to_ascii_lowercase(),
            secret: secret.into(),
        })
    }
}

/// A failed step of joining.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error("the server URL {0} has no host")]
    NoHost(String),
    #[error("the server URL {0} is not https")]
    NotHttps(String),
    #[error("connecting to {addr}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("setting up TLS")]
    Tls(#[source] rustls::Error),
    #[error("the TLS handshake with {addr}")]
    Handshake {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("requesting /cacerts")]
    Request(#[source] hyper::Error),
    #[error("building the /cacerts request")]
    BuildRequest(#[source] http::Error),
    #[error("/cacerts answered {0}")]
    Status(http::StatusCode),
    #[error("reading /cacerts")]
    Body(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("/cacerts holds no PEM certificate")]
    NoCertificate(#[source] rustls::pki_types::pem::Error),
    #[error(
        "the server's CA (sha256 {got}) is not the one the token pins ({want}): refusing to join"
    )]
    Mismatch { got: String, want: String },
}

/// Accepts any server certificate: used only for `/cacerts`, whose answer is checked against the token.
#[derive(Debug)]
struct AnyServer(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
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
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// The hex SHA-256 of a certificate's DER.
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Fetches the CA certificate (DER) from `/cacerts` without verifying the server.
async fn fetch_ca(server: &http::Uri) -> Result<Vec<u8>, JoinError> {
    if server.scheme_str() != Some("https") {
        return Err(JoinError::NotHttps(server.to_string()));
    }
    let host = server
        .host()
        .ok_or_else(|| JoinError::NoHost(server.to_string()))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = server.port_u16().unwrap_or(443);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(JoinError::Tls)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyServer(
            provider.signature_verification_algorithms,
        )))
        .with_no_client_auth();
    let addr = format!("{host}:{port}");
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|source| JoinError::Connect {
            addr: addr.clone(),
            source,
        })?;
    let name =
        ServerName::try_from(host.clone()).map_err(|_| JoinError::NoHost(server.to_string()))?;
    let stream = tokio_rustls::TlsConnector::from(Arc::new(tls))
        .connect(name, tcp)
        .await
        .map_err(|source| JoinError::Handshake {
            addr: addr.clone(),
            source,
        })?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(JoinError::Request)?;
    let driver = tokio::spawn(conn);
    let request = http::Request::get("/cacerts")
        .header(http::header::HOST, addr)
        .body(Empty::<Bytes>::new())
        .map_err(JoinError::BuildRequest)?;
    let response = sender
        .send_request(request)
        .await
        .map_err(JoinError::Request)?;
    if !response.status().is_success() {
        return Err(JoinError::Status(response.status()));
    }
    let body = Limited::new(response.into_body(), MAX_CA_BYTES)
        .collect()
        .await
        .map_err(JoinError::Body)?
        .to_bytes();
    driver.abort();
    let der = CertificateDer::from_pem_slice(&body).map_err(JoinError::NoCertificate)?;
    Ok(der.to_vec())
}

/// A client configuration for `server` after checking its CA against the token.
pub async fn client_config(
    server: &http::Uri,
    token: &JoinToken,
) -> Result<kube::Config, JoinError> {
    let der = fetch_ca(server).await?;
    let got = fingerprint(&der);
    if got != token.ca_hash {
        return Err(JoinError::Mismatch {
            got,
            want: token.ca_hash.clone(),
        });
    }
    let mut config = kube::Config::new(server.clone());
    config.root_cert = Some(vec![der]);
    config.auth_info.token = Some(token.secret.clone().into());
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_parse_only_in_their_one_shape() {
        let hash = "ab".repeat(32);
        let token: JoinToken = format!("K10{hash}::server:s3cret\n")
            .parse()
            .expect("valid");
        assert_eq!(token.ca_hash, hash);
        assert_eq!(token.secret, "s3cret");
        assert!(!format!("{token:?}").contains("s3cret"));
        for bad in [
            "s3cret".to_string(),
            format!("K10{hash}::server:"),
            format!("K10{}::server:x", "ab".repeat(31)),
            format!("K10{}::server:x", "zz".repeat(32)),
            format!("K11{hash}::server:x"),
        ] {
            assert!(bad.parse::<JoinToken>().is_err(), "{bad}");
        }
    }

    #[test]
    fn fingerprints_are_lowercase_hex_sha256() {
        assert_eq!(
            fingerprint(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
