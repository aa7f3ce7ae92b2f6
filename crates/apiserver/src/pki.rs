//! The server's credentials on disk: a cluster CA, the serving certificate, the admin client
//! certificate, `DIR/kubeconfig` and the node join token. Made on first start, reused after.
//!
//! Layout under the data directory: `tls/ca.{crt,key}`, `tls/serving.{crt,key}`,
//! `tls/admin.{crt,key}`, `kubeconfig`, `node-token` (mode 0600, as every key file).
//! The join token is `K10<sha256 of the CA certificate, hex>::server:<secret>`: an agent that holds
//! it can check the CA it is shown (pinning) and authenticate with the secret.

use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use sha2::{Digest, Sha256};

/// Every way preparing the credentials fails.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("cannot create directory {path}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot make the {what} certificate")]
    Generate {
        what: &'static str,
        #[source]
        source: rcgen::Error,
    },
    #[error("{path} does not hold a usable {what}")]
    Parse { path: PathBuf, what: &'static str },
}

/// What the server needs to serve and what it hands out.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub ca_pem: String,
    pub serving_cert_pem: String,
    pub serving_key_pem: String,
    /// The secret part of the node join token, accepted as a bearer token for joining nodes.
    pub node_secret: String,
    pub kubeconfig_path: PathBuf,
}

/// Names and addresses the serving certificate is valid for.
#[derive(Debug, Clone)]
pub struct ServingNames {
    pub dns: Vec<String>,
    pub ips: Vec<IpAddr>,
}

/// Makes (first start) or loads (later starts) the credentials under `dir`, and writes the
/// kubeconfig for `server_url`.
pub fn prepare(
    dir: &Path,
    names: &ServingNames,
    server_url: &str,
) -> Result<Credentials, PkiError> {
    let tls = dir.join("tls");
    fs::create_dir_all(&tls).map_err(|source| PkiError::CreateDir {
        path: tls.clone(),
        source,
    })?;
    let ca_crt = tls.join("ca.crt");
    let ca_key = tls.join("ca.key");
    if !ca_crt.exists() || !ca_key.exists() {
        let key =
            KeyPair::generate().map_err(|source| PkiError::Generate { what: "CA", source })?;
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, "oxkube-ca");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params
            .self_signed(&key)
            .map_err(|source| PkiError::Generate { what: "CA", source })?;
        write_private(&ca_key, key.serialize_pem().as_bytes())?;
        write_file(&ca_crt, cert.pem().as_bytes())?;
    }
    let ca_pem = read(&ca_crt)?;
    let issuer = || -> Result<Issuer<'static, KeyPair>, PkiError> {
        let key = KeyPair::from_pem(&read(&ca_key)?).map_err(|_| PkiError::Parse {
            path: ca_key.clone(),
            what: "private key",
        })?;
        Issuer::from_ca_cert_pem(&ca_pem, key).map_err(|_| PkiError::Parse {
            path: ca_crt.clone(),
            what: "CA certificate",
        })
    };

    let serving_crt = tls.join("serving.crt");
    let serving_key = tls.join("serving.key");
    if !serving_crt.exists() || !serving_key.exists() {
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        for dns in &names.dns {
            let name = dns
                .clone()
                .try_into()
                .map_err(|source| PkiError::Generate {
                    what: "serving",
                    source,
                })?;
            params.subject_alt_names.push(SanType::DnsName(name));
        }
        for ip in &names.ips {
            params.subject_alt_names.push(SanType::IpAddress(*ip));
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        sign(&params, "serving", &issuer()?, &serving_crt, &serving_key)?;
    }

    let admin_crt = tls.join("admin.crt");
    let admin_key = tls.join("admin.key");
    if !admin_crt.exists() || !admin_key.exists() {
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, "system:admin");
        params
            .distinguished_name
            .push(DnType::OrganizationName, "system:masters");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        sign(&params, "admin", &issuer()?, &admin_crt, &admin_key)?;
    }

    let token_path = dir.join("node-token");
    if !token_path.exists() {
        let secret: String = (0..32)
            .map(|_| format!("{:02x}", rand::random::<u8>()))
            .collect();
        let token = format!("K10{}::server:{secret}", ca_fingerprint(&ca_pem)?);
        write_private(&token_path, format!("{token}\n").as_bytes())?;
    }
    let token = read(&token_path)?;
    let node_secret = token
        .trim()
        .rsplit_once("::server:")
        .map(|(_, secret)| secret.to_string())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| PkiError::Parse {
            path: token_path.clone(),
            what: "node join token",
        })?;

    let kubeconfig_path = dir.join("kubeconfig");
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    certificate-authority-data: {}\n    server: {server_url}\n  name: oxkube\ncontexts:\n- context:\n    cluster: oxkube\n    user: admin\n  name: oxkube\ncurrent-context: oxkube\npreferences: {{}}\nusers:\n- name: admin\n  user:\n    client-certificate-data: {}\n    client-key-data: {}\n",
        b64(&ca_pem),
        b64(&read(&admin_crt)?),
        b64(&read(&admin_key)?),
    );
    write_private(&kubeconfig_path, kubeconfig.as_bytes())?;

    Ok(Credentials {
        serving_cert_pem: read(&serving_crt)?,
        serving_key_pem: read(&serving_key)?,
        ca_pem,
        node_secret,
        kubeconfig_path,
    })
}

/// The hex SHA-256 of the CA certificate's DER, as the join token pins it.
pub fn ca_fingerprint(ca_pem: &str) -> Result<String, PkiError> {
    let der = pem_der(ca_pem).ok_or_else(|| PkiError::Parse {
        path: PathBuf::from("ca.crt"),
        what: "CA certificate",
    })?;
    Ok(Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

fn pem_der(pem: &str) -> Option<Vec<u8>> {
    let body: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    base64::engine::general_purpose::STANDARD.decode(body).ok()
}

fn sign(
    params: &CertificateParams,
    what: &'static str,
    issuer: &Issuer<'static, KeyPair>,
    crt: &Path,
    key_path: &Path,
) -> Result<(), PkiError> {
    let key = KeyPair::generate().map_err(|source| PkiError::Generate { what, source })?;
    let cert = params
        .signed_by(&key, issuer)
        .map_err(|source| PkiError::Generate { what, source })?;
    write_private(key_path, key.serialize_pem().as_bytes())?;
    write_file(crt, cert.pem().as_bytes())
}

fn read(path: &Path) -> Result<String, PkiError> {
    fs::read_to_string(path).map_err(|source| PkiError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn write_file(path: &Path, data: &[u8]) -> Result<(), PkiError> {
    write_with_mode(path, data, 0o644)
}

fn write_private(path: &Path, data: &[u8]) -> Result<(), PkiError> {
    write_with_mode(path, data, 0o600)
}

/// Writes whole or not at all: a temporary file, synced, renamed over the target.
fn write_with_mode(path: &Path, data: &[u8], mode: u32) -> Result<(), PkiError> {
    let err = |source| PkiError::Write {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(err)?;
    file.write_all(data).map_err(err)?;
    file.sync_all().map_err(err)?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(mode)).map_err(err)?;
    fs::rename(&tmp, path).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> ServingNames {
        ServingNames {
            dns: vec!["localhost".into()],
            ips: vec!["127.0.0.1".parse().expect("ip")],
        }
    }

    #[test]
    fn first_start_makes_everything_and_later_starts_reuse_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = prepare(dir.path(), &names(), "https://127.0.0.1:6443").expect("first");
        let token = fs::read_to_string(dir.path().join("node-token")).expect("token");
        assert!(token.starts_with(&format!(
            "K10{}::server:",
            ca_fingerprint(&first.ca_pem).expect("fp")
        )));
        let mode = fs::metadata(dir.path().join("node-token"))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let kubeconfig = fs::read_to_string(&first.kubeconfig_path).expect("kubeconfig");
        assert!(kubeconfig.contains("server: https://127.0.0.1:6443"));

        let second = prepare(dir.path(), &names(), "https://127.0.0.1:7443").expect("second");
        assert_eq!(first.ca_pem, second.ca_pem);
        assert_eq!(first.serving_cert_pem, second.serving_cert_pem);
        assert_eq!(first.node_secret, second.node_secret);
        let kubeconfig = fs::read_to_string(&second.kubeconfig_path).expect("kubeconfig");
        assert!(kubeconfig.contains("server: https://127.0.0.1:7443"));
    }

    #[test]
    fn a_damaged_key_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::create_dir_all(dir.path().join("tls")).expect("mkdir");
        fs::write(dir.path().join("tls/ca.crt"), "garbage").expect("write");
        fs::write(dir.path().join("tls/ca.key"), "garbage").expect("write");
        let err = prepare(dir.path(), &names(), "https://127.0.0.1:6443").expect_err("damaged");
        assert!(matches!(err, PkiError::Parse { .. }), "{err}");
    }
}
