//! What a request asks for, read from its method, path and query alone (upstream's RequestInfo):
//! which endpoint, which resource, object and subresource, which verb, and the typed query options.

use http::Method;

use oxkube_api::registry::{self, Resource, Subresource};

use crate::status::ApiError;

/// Where a request goes.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Health(Health),
    Version,
    /// `/cacerts`: the cluster CA, for joining nodes to check against the hash in their token.
    CaCerts,
    /// `/api`: the core group's versions.
    CoreVersions,
    /// `/apis`: every other group.
    Groups,
    /// `/apis/<group>`.
    Group(String),
    /// `/api/v1` or `/apis/<group>/<version>`.
    ResourceList {
        group: String,
        version: String,
    },
    OpenApiV2,
    OpenApiV3Root,
    OpenApiV3 {
        group: String,
        version: String,
    },
    Resource(ResourceRequest),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Healthz,
    Livez,
    Readyz,
}

/// The verb of a resource request, as authorization sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Get,
    List,
    Watch,
    Create,
    Update,
    Patch,
    Delete,
    DeleteCollection,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
            Verb::DeleteCollection => "deletecollection",
        }
    }
}

/// A request on a resource, an object or a subresource.
#[derive(Debug, Clone)]
pub struct ResourceRequest {
    pub resource: &'static Resource,
    pub verb: Verb,
    /// The namespace from the path (`None` for cluster-scoped resources and all-namespace lists).
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<Subresource>,
}

impl PartialEq for ResourceRequest {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.resource, other.resource)
            && self.verb == other.verb
            && self.namespace == other.namespace
            && self.name == other.name
            && self.subresource == other.subresource
    }
}

/// Reads the target of a request. Paths that name nothing give `NoSuchPath` (404); a method the
/// target does not take gives 405.
pub fn parse(method: &Method, path: &str, query: &Query) -> Result<Target, ApiError> {
    let parts: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|p| !p.is_empty())
        .collect();
    let read_only = |target: Target| {
        if method == Method::GET || method == Method::HEAD {
            Ok(target)
        } else {
            Err(ApiError::MethodNotAllowed)
        }
    };
    match parts.as_slice() {
        ["healthz", ..] => read_only(Target::Health(Health::Healthz)),
        ["livez", ..] => read_only(Target::Health(Health::Livez)),
        ["readyz", ..] => read_only(Target::Health(Health::Readyz)),
        ["version"] => read_only(Target::Version),
        ["cacerts"] => read_only(Target::CaCerts),
        ["api"] => read_only(Target::CoreVersions),
        ["apis"] => read_only(Target::Groups),
        ["openapi", "v2"] => read_only(Target::OpenApiV2),
        ["openapi", "v3"] => read_only(Target::OpenApiV3Root),
        ["openapi", "v3", "api", version] => read_only(Target::OpenApiV3 {
            group: String::new(),
            version: version.to_string(),
        }),
        ["openapi", "v3", "apis", group, version] => read_only(Target::OpenApiV3 {
            group: group.to_string(),
            version: version.to_string(),
        }),
        ["api", version] => read_only(Target::ResourceList {
            group: String::new(),
            version: version.to_string(),
        }),
        ["apis", group] => read_only(Target::Group(group.to_string())),
        ["apis", group, version] => read_only(Target::ResourceList {
            group: group.to_string(),
            version: version.to_string(),
        }),
        ["api", version, rest @ ..] => resource_request(method, "", version, rest, query),
        ["apis", group, version, rest @ ..] => {
            resource_request(method, group, version, rest, query)
        }
        _ => Err(ApiError::NoSuchPath),
    }
}

fn resource_request(
    method: &Method,
    group: &str,
    version: &str,
    parts: &[&str],
    query: &Query,
) -> Result<Target, ApiError> {
    let (legacy_watch, mut parts) = match parts {
        ["watch", rest @ ..] => (true, rest),
        rest => (false, rest),
    };
    let mut namespace = None;
    if let ["namespaces", ns, rest @ ..] = parts {
        namespace = Some(ns.to_string());
        if let [first, ..] = rest
            && *first != "status"
            && *first != "finalize"
        {
            parts = rest;
        }
    }
    let (plural, name, sub) = match parts {
        [plural] => (*plural, None, None),
        [plural, name] => (*plural, Some(*name), None),
        [plural, name, sub] => (*plural, Some(*name), Some(*sub)),
        _ => return Err(ApiError::NoSuchPath),
    };
    let resource = registry::find(group, version, plural).ok_or(ApiError::NoSuchPath)?;
    if resource.plural == "namespaces" {
        // `namespaces/<name>[/status|/finalize]`: the namespace is the object itself.
        namespace = None;
    }
    if namespace.is_some() && !resource.namespaced {
        return Err(ApiError::NoSuchPath);
    }
    let subresource = match sub {
        None => None,
        Some(sub) => Some(
            resource
                .subresources
                .iter()
                .copied()
                .find(|s| s.name() == sub)
                .ok_or(ApiError::NoSuchPath)?,
        ),
    };
    // A namespaced object is always reached through its namespace.
    if resource.namespaced && name.is_some() && namespace.is_none() {
        return Err(ApiError::NoSuchPath);
    }
    let verb = match (method.clone(), name.is_some()) {
        (_, _) if legacy_watch => {
            if *method != Method::GET {
                return Err(ApiError::MethodNotAllowed);
            }
            Verb::Watch
        }
        (Method::GET | Method::HEAD, true) => Verb::Get,
        (Method::GET | Method::HEAD, false) if query.watch => Verb::Watch,
        (Method::GET | Method::HEAD, false) => Verb::List,
        (Method::POST, _) => Verb::Create,
        (Method::PUT, true) => Verb::Update,
        (Method::PATCH, true) => Verb::Patch,
        (Method::DELETE, true) => Verb::Delete,
        (Method::DELETE, false) => Verb::DeleteCollection,
        _ => return Err(ApiError::MethodNotAllowed),
    };
    if verb == Verb::Create && name.is_some() && subresource.is_none() {
        return Err(ApiError::MethodNotAllowed);
    }
    if let Some(sub) = subresource
        && !sub.verbs().contains(&verb.as_str())
    {
        return Err(ApiError::MethodNotAllowed);
    }
    Ok(Target::Resource(ResourceRequest {
        resource,
        verb,
        namespace,
        name: name.map(str::to_string),
        subresource,
    }))
}

/// How a list or watch treats `resourceVersion` (upstream's resourceVersionMatch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VersionMatch {
    #[default]
    Unset,
    NotOlderThan,
    Exact,
}

/// fieldValidation of writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldValidation {
    Ignore,
    Warn,
    /// The default since 1.27 for requests that do not say (Warn in upstream's handler when the
    /// parameter is absent).
    #[default]
    Unset,
    Strict,
}

/// deletion propagation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    Orphan,
    Background,
    Foreground,
}

/// The query options a request may carry, typed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Query {
    pub label_selector: Option<String>,
    pub field_selector: Option<String>,
    pub limit: Option<i64>,
    pub continue_token: Option<String>,
    pub resource_version: Option<String>,
    pub resource_version_match: VersionMatch,
    pub watch: bool,
    pub allow_watch_bookmarks: bool,
    pub timeout_seconds: Option<u64>,
    pub send_initial_events: Option<bool>,
    pub dry_run: bool,
    pub field_manager: Option<String>,
    pub field_validation: FieldValidation,
    pub force: bool,
    pub propagation_policy: Option<Propagation>,
    pub grace_period_seconds: Option<i64>,
    pub orphan_dependents: Option<bool>,
    /// Table output: `includeObject` (None, Metadata, Object).
    pub include_object: Option<String>,
    /// pods/log and the node routes keep their raw query.
    pub raw: Vec<(String, String)>,
}

impl Query {
    /// Parses the query string; a value of the wrong type is a 400 as upstream.
    pub fn parse(query: Option<&str>) -> Result<Self, ApiError> {
        let mut q = Query::default();
        for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            let value = value.into_owned();
            match key.as_ref() {
                "labelSelector" => q.label_selector = Some(value.clone()),
                "fieldSelector" => q.field_selector = Some(value.clone()),
                "limit" => q.limit = Some(parse_int(&key, &value)?),
                "continue" => q.continue_token = Some(value.clone()).filter(|v| !v.is_empty()),
                "resourceVersion" => {
                    q.resource_version = Some(value.clone()).filter(|v| !v.is_empty())
                }
                "resourceVersionMatch" => {
                    q.resource_version_match = match value.as_str() {
                        "" => VersionMatch::Unset,
                        "NotOlderThan" => VersionMatch::NotOlderThan,
                        "Exact" => VersionMatch::Exact,
                        other => {
                            return Err(ApiError::BadRequest(format!(
                                "resourceVersionMatch: Unsupported value: {other:?}: supported values: \"Exact\", \"NotOlderThan\""
                            )));
                        }
                    }
                }
                "watch" => q.watch = parse_bool(&key, &value)?,
                "allowWatchBookmarks" => q.allow_watch_bookmarks = parse_bool(&key, &value)?,
                "timeoutSeconds" => {
                    let t = parse_int(&key, &value)?;
                    q.timeout_seconds = Some(u64::try_from(t).unwrap_or(0));
                }
                "sendInitialEvents" => q.send_initial_events = Some(parse_bool(&key, &value)?),
                "dryRun" => match value.as_str() {
                    "All" => q.dry_run = true,
                    "" => {}
                    other => {
                        return Err(ApiError::BadRequest(format!(
                            "dryRun: Unsupported value: {other:?}: supported values: \"All\""
                        )));
                    }
                },
                "fieldManager" => q.field_manager = Some(value.clone()),
                "fieldValidation" => {
                    q.field_validation = match value.as_str() {
                        "Ignore" => FieldValidation::Ignore,
                        "Warn" => FieldValidation::Warn,
                        "Strict" => FieldValidation::Strict,
                        "" => FieldValidation::Unset,
                        other => {
                            return Err(ApiError::BadRequest(format!(
                                "fieldValidation: Unsupported value: {other:?}: supported values: \"Ignore\", \"Strict\", \"Warn\""
                            )));
                        }
                    }
                }
                "force" => q.force = parse_bool(&key, &value)?,
                "propagationPolicy" => {
                    q.propagation_policy = Some(parse_propagation(&value)?);
                }
                "gracePeriodSeconds" => q.grace_period_seconds = Some(parse_int(&key, &value)?),
                "orphanDependents" => q.orphan_dependents = Some(parse_bool(&key, &value)?),
                "includeObject" => q.include_object = Some(value.clone()),
                _ => {}
            }
            q.raw.push((key.into_owned(), value));
        }
        Ok(q)
    }
}

/// Reads a deletion propagation policy.
pub fn parse_propagation(value: &str) -> Result<Propagation, ApiError> {
    match value {
        "Orphan" => Ok(Propagation::Orphan),
        "Background" => Ok(Propagation::Background),
        "Foreground" => Ok(Propagation::Foreground),
        other => Err(ApiError::BadRequest(format!(
            "propagationPolicy: Unsupported value: {other:?}: supported values: \"Orphan\", \"Background\", \"Foreground\""
        ))),
    }
}

fn parse_int(key: &str, value: &str) -> Result<i64, ApiError> {
    value.parse().map_err(|_| {
        ApiError::BadRequest(format!("invalid value {value:?} for {key}: not an integer"))
    })
}

fn parse_bool(key: &str, value: &str) -> Result<bool, ApiError> {
    match value {
        "" | "true" | "1" | "True" | "TRUE" | "t" | "T" => Ok(true),
        "false" | "0" | "False" | "FALSE" | "f" | "F" => Ok(false),
        _ => Err(ApiError::BadRequest(format!(
            "invalid value {value:?} for {key}: not a boolean"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(method: Method, path: &str, query: &str) -> Result<Target, ApiError> {
        let q = Query::parse(Some(query))?;
        parse(&method, path, &q)
    }

    fn resource(method: Method, path: &str, query: &str) -> ResourceRequest {
        match target(method, path, query) {
            Ok(Target::Resource(r)) => r,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn paths_become_resource_requests() {
        let r = resource(Method::GET, "/api/v1/namespaces/default/pods", "");
        assert_eq!((r.resource.plural, r.verb), ("pods", Verb::List));
        assert_eq!(r.namespace.as_deref(), Some("default"));

        let r = resource(Method::GET, "/api/v1/pods", "watch=true");
        assert_eq!((r.verb, r.namespace.as_deref()), (Verb::Watch, None));

        let r = resource(Method::GET, "/api/v1/watch/namespaces/a/pods", "");
        assert_eq!(r.verb, Verb::Watch);

        let r = resource(
            Method::PUT,
            "/apis/apps/v1/namespaces/a/deployments/web/scale",
            "",
        );
        assert_eq!(r.subresource, Some(Subresource::Scale));
        assert_eq!(r.name.as_deref(), Some("web"));

        let r = resource(Method::GET, "/api/v1/namespaces/kube-system", "");
        assert_eq!(
            (r.resource.plural, r.name.as_deref()),
            ("namespaces", Some("kube-system"))
        );
        assert_eq!(r.namespace, None);

        let r = resource(Method::PUT, "/api/v1/namespaces/x/finalize", "");
        assert_eq!(r.subresource, Some(Subresource::Finalize));

        let r = resource(Method::DELETE, "/api/v1/namespaces/x/configmaps", "");
        assert_eq!(r.verb, Verb::DeleteCollection);

        let r = resource(Method::POST, "/api/v1/namespaces/x/pods/p/binding", "");
        assert_eq!(
            (r.verb, r.subresource),
            (Verb::Create, Some(Subresource::Binding))
        );
    }

    #[test]
    fn nonsense_is_404_or_405() {
        assert_eq!(
            target(Method::GET, "/api/v1/nothings", ""),
            Err(ApiError::NoSuchPath)
        );
        assert_eq!(
            target(Method::GET, "/api/v2/pods", ""),
            Err(ApiError::NoSuchPath)
        );
        assert_eq!(
            target(Method::GET, "/api/v1/namespaces/a/nodes", ""),
            Err(ApiError::NoSuchPath)
        );
        assert_eq!(
            target(Method::GET, "/api/v1/pods/p", ""),
            Err(ApiError::NoSuchPath),
            "a namespaced object needs its namespace"
        );
        assert_eq!(
            target(Method::POST, "/api/v1/namespaces/a/pods/p", ""),
            Err(ApiError::MethodNotAllowed)
        );
        assert_eq!(
            target(
                Method::DELETE,
                "/apis/apps/v1/namespaces/a/deployments/d/scale",
                ""
            ),
            Err(ApiError::MethodNotAllowed)
        );
        assert_eq!(
            target(Method::POST, "/version", ""),
            Err(ApiError::MethodNotAllowed)
        );
        assert!(matches!(
            target(Method::GET, "/api/v1/pods", "limit=x"),
            Err(ApiError::BadRequest(_))
        ));
    }

    #[test]
    fn query_options_are_typed() {
        let q = Query::parse(Some(
            "labelSelector=app%3Dweb&limit=500&resourceVersionMatch=NotOlderThan&sendInitialEvents=true&fieldValidation=Strict&dryRun=All&propagationPolicy=Foreground",
        ))
        .expect("parse");
        assert_eq!(q.label_selector.as_deref(), Some("app=web"));
        assert_eq!(q.limit, Some(500));
        assert_eq!(q.resource_version_match, VersionMatch::NotOlderThan);
        assert_eq!(q.send_initial_events, Some(true));
        assert_eq!(q.field_validation, FieldValidation::Strict);
        assert!(q.dry_run);
        assert_eq!(q.propagation_policy, Some(Propagation::Foreground));
    }

    proptest::proptest! {
        #[test]
        fn any_path_and_query_is_answered_without_panic(path in ".{0,80}", query in ".{0,80}") {
            if let Ok(q) = Query::parse(Some(&query)) {
                let _ = parse(&Method::GET, &path, &q);
                let _ = parse(&Method::PATCH, &path, &q);
            }
        }
    }
}
