//! Authentication and authorization, as separate stages: who is asking (x509 client certificate,
//! bearer token), then may they (today: every authenticated user; RBAC slots in behind `Authorizer`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use x509_parser::prelude::{FromDer, X509Certificate};

use crate::request::Target;
use crate::status::ApiError;

/// An authenticated user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub groups: Vec<String>,
}

impl User {
    /// The user of unauthenticated requests.
    pub fn anonymous() -> Self {
        User {
            name: "system:anonymous".into(),
            groups: vec!["system:unauthenticated".into()],
        }
    }

    fn authenticated(name: String, mut groups: Vec<String>) -> Self {
        groups.push("system:authenticated".into());
        User { name, groups }
    }

    pub fn is_anonymous(&self) -> bool {
        self.name == "system:anonymous"
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    #[error("cannot read token file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("token file {path} line {line}: want token,user,uid[,\"group1,group2\"]")]
    Line { path: PathBuf, line: usize },
}

/// Who a bearer token or client certificate names.
#[derive(Debug, Clone, Default)]
pub struct Authenticator {
    tokens: HashMap<String, User>,
}

impl Authenticator {
    /// Accepts the node join secret as the identity of joining nodes.
    pub fn new(node_secret: &str) -> Self {
        let mut tokens = HashMap::new();
        tokens.insert(
            node_secret.to_string(),
            User::authenticated("oxkube:node-join".into(), vec!["system:nodes".into()]),
        );
        Authenticator { tokens }
    }

    /// Adds the tokens of a static token file (upstream's `--token-auth-file` CSV:
    /// `token,user,uid,"group1,group2"`).
    pub fn load_token_file(&mut self, path: &Path) -> Result<(), TokenFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokenFileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (token, rest) = line.split_once(',').ok_or(TokenFileError::Line {
                path: path.to_path_buf(),
                line: i + 1,
            })?;
            let mut rest = rest.splitn(3, ',');
            let user = rest.next().unwrap_or("").trim();
            let _uid = rest.next();
            let groups = rest
                .next()
                .map(|g| {
                    g.trim_matches('"')
                        .split(',')
                        .map(str::trim)
                        .filter(|g| !g.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            if token.is_empty() || user.is_empty() {
                return Err(TokenFileError::Line {
                    path: path.to_path_buf(),
                    line: i + 1,
                });
            }
            self.tokens.insert(
                token.to_string(),
                User::authenticated(user.to_string(), groups),
            );
        }
        Ok(())
    }

    /// The user of a request: the verified client certificate wins, then a bearer token; neither
    /// makes the anonymous user. A bearer token that matches nothing is a 401.
    pub fn authenticate(
        &self,
        client_cert: Option<&[u8]>,
        authorization: Option<&str>,
    ) -> Result<User, ApiError> {
        if let Some(user) = client_cert.and_then(user_of_certificate) {
            return Ok(user);
        }
        match authorization.and_then(|h| h.strip_prefix("Bearer ")) {
            Some(token) => self
                .tokens
                .get(token.trim())
                .cloned()
                .ok_or(ApiError::Unauthorized),
            None => Ok(User::anonymous()),
        }
    }
}

/// CN is the user, each O a group (upstream's x509 authenticator).
fn user_of_certificate(der: &[u8]) -> Option<User> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let subject = cert.subject();
    let name = subject
        .iter_common_name()
        .next()?
        .as_str()
        .ok()?
        .to_string();
    let groups = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok().map(str::to_string))
        .collect();
    Some(User::authenticated(name, groups))
}

/// May `user` do what the request asks.
pub trait Authorizer: Send + Sync + std::fmt::Debug {
    fn authorize(&self, user: &User, target: &Target) -> Result<(), ApiError>;
}

/// Until RBAC lands: anonymous users reach only the health and version endpoints and the CA
/// certificate (401 elsewhere, as upstream with anonymous auth limited to those); every
/// authenticated user may do anything.
#[derive(Debug, Default)]
pub struct AuthenticatedMayAll;

impl Authorizer for AuthenticatedMayAll {
    fn authorize(&self, user: &User, target: &Target) -> Result<(), ApiError> {
        match target {
            Target::Health(_) | Target::Version | Target::CaCerts => Ok(()),
            _ if user.is_anonymous() => Err(ApiError::Unauthorized),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Health;

    #[test]
    fn tokens_and_anonymous() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("tokens.csv");
        std::fs::write(&path, "abc,alice,1,\"dev,ops\"\n# comment\nxyz,bob,2\n").expect("write");
        let mut auth = Authenticator::new("joinsecret");
        auth.load_token_file(&path).expect("load");
        let alice = auth.authenticate(None, Some("Bearer abc")).expect("alice");
        assert_eq!(alice.name, "alice");
        assert_eq!(alice.groups, ["dev", "ops", "system:authenticated"]);
        assert_eq!(
            auth.authenticate(None, Some("Bearer nope")),
            Err(ApiError::Unauthorized)
        );
        let anon = auth.authenticate(None, None).expect("anon");
        assert!(anon.is_anonymous());
        let node = auth
            .authenticate(None, Some("Bearer joinsecret"))
            .expect("node");
        assert!(node.groups.contains(&"system:nodes".to_string()));

        let authz = AuthenticatedMayAll;
        assert!(
            authz
                .authorize(&anon, &Target::Health(Health::Readyz))
                .is_ok()
        );
        assert_eq!(
            authz.authorize(&anon, &Target::Groups),
            Err(ApiError::Unauthorized)
        );
        assert!(authz.authorize(&alice, &Target::Groups).is_ok());
    }

    #[test]
    fn a_bad_token_file_names_the_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("tokens.csv");
        std::fs::write(&path, "abc,alice,1\nbroken\n").expect("write");
        let err = Authenticator::new("s")
            .load_token_file(&path)
            .expect_err("bad line");
        assert!(err.to_string().contains("line 2"), "{err}");
    }
}
