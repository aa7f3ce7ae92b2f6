//! API errors and the `Status` objects they become: upstream's HTTP codes, reasons and messages
//! (apimachinery `api/errors`), so clients that branch on them behave as against kube-apiserver.

use http::StatusCode;
use serde_json::{Value, json};

use oxkube_api::registry::Resource;

/// One field problem of an Invalid (422) answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Cause {
    pub reason: String,
    pub message: String,
    pub field: String,
}

/// Every way a request fails, each with upstream's code and reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("Unauthorized")]
    Unauthorized,
    #[error("{message}")]
    Forbidden { message: String },
    #[error("{}", not_found_message(.resource, .name))]
    NotFound {
        group: String,
        resource: String,
        name: String,
    },
    /// A path that names nothing served.
    #[error("the server could not find the requested resource")]
    NoSuchPath,
    #[error("the server does not allow this method on the requested resource")]
    MethodNotAllowed,
    #[error("{0}")]
    NotAcceptable(String),
    #[error("{}", already_exists_message(.resource, .name))]
    AlreadyExists {
        group: String,
        resource: String,
        name: String,
    },
    #[error("Operation cannot be fulfilled on {}: {message}", qualified_name(.resource, .name))]
    Conflict {
        group: String,
        resource: String,
        name: String,
        message: String,
    },
    /// A server-side apply that would take fields other managers own.
    #[error("{message}")]
    ApplyConflict {
        group: String,
        resource: String,
        name: String,
        message: String,
        causes: Vec<Cause>,
    },
    #[error("{0}")]
    Expired(String),
    #[error("the request is too large: {0}")]
    TooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{kind} {name:?} is invalid: {}", join_causes(.causes))]
    Invalid {
        group: String,
        kind: String,
        name: String,
        causes: Vec<Cause>,
    },
    /// 422 with a message of its own (apply conflicts of managers are 409; this is for the rest).
    #[error("{0}")]
    Unprocessable(String),
    #[error("{0}")]
    TooManyRequests(String),
    #[error("Internal error occurred: {0}")]
    Internal(String),
    #[error("{0}")]
    ServiceUnavailable(String),
    #[error("{0}")]
    Timeout(String),
}

fn qualified_name(resource: &str, name: &str) -> String {
    format!("{resource} {name:?}")
}

fn not_found_message(resource: &str, name: &str) -> String {
    format!("{resource} {name:?} not found")
}

fn already_exists_message(resource: &str, name: &str) -> String {
    format!("{resource} {name:?} already exists")
}

fn join_causes(causes: &[Cause]) -> String {
    let parts: Vec<String> = causes
        .iter()
        .map(|c| {
            if c.field.is_empty() {
                c.message.clone()
            } else {
                format!("{}: {}", c.field, c.message)
            }
        })
        .collect();
    if parts.len() == 1 {
        parts.join("")
    } else {
        format!("[{}]", parts.join(", "))
    }
}

impl ApiError {
    /// A 404 for an object of `res`.
    pub fn not_found(res: &Resource, name: &str) -> Self {
        ApiError::NotFound {
            group: res.group.to_string(),
            resource: res.qualified(),
            name: name.to_string(),
        }
    }

    /// A 409 AlreadyExists for an object of `res`.
    pub fn already_exists(res: &Resource, name: &str) -> Self {
        ApiError::AlreadyExists {
            group: res.group.to_string(),
            resource: res.qualified(),
            name: name.to_string(),
        }
    }

    /// The 409 Conflict of a stale write.
    pub fn conflict(res: &Resource, name: &str) -> Self {
        Self::conflict_with(
            res,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// A 409 Conflict with its own message (preconditions, apply conflicts).
    pub fn conflict_with(res: &Resource, name: &str, message: &str) -> Self {
        ApiError::Conflict {
            group: res.group.to_string(),
            resource: res.qualified(),
            name: name.to_string(),
            message: message.to_string(),
        }
    }

    /// The 410 of a resourceVersion older than what is kept.
    pub fn too_old(requested: i64, oldest: i64) -> Self {
        ApiError::Expired(format!("too old resource version: {requested} ({oldest})"))
    }

    pub fn code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::NotFound { .. } | ApiError::NoSuchPath => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            ApiError::AlreadyExists { .. }
            | ApiError::Conflict { .. }
            | ApiError::ApplyConflict { .. } => StatusCode::CONFLICT,
            ApiError::Expired(_) => StatusCode::GONE,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Invalid { .. } | ApiError::Unprocessable(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::ServiceUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// The `reason` field of the Status (empty for a plain 400, as upstream).
    pub fn reason(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "BadRequest",
            ApiError::Unauthorized => "Unauthorized",
            ApiError::Forbidden { .. } => "Forbidden",
            ApiError::NotFound { .. } | ApiError::NoSuchPath => "NotFound",
            ApiError::MethodNotAllowed => "MethodNotAllowed",
            ApiError::NotAcceptable(_) => "NotAcceptable",
            ApiError::AlreadyExists { .. } => "AlreadyExists",
            ApiError::Conflict { .. } | ApiError::ApplyConflict { .. } => "Conflict",
            ApiError::Expired(_) => "Expired",
            ApiError::TooLarge(_) => "RequestEntityTooLarge",
            ApiError::UnsupportedMediaType(_) => "UnsupportedMediaType",
            ApiError::Invalid { .. } | ApiError::Unprocessable(_) => "Invalid",
            ApiError::TooManyRequests(_) => "TooManyRequests",
            ApiError::Internal(_) => "InternalError",
            ApiError::ServiceUnavailable(_) => "ServiceUnavailable",
            ApiError::Timeout(_) => "Timeout",
        }
    }

    /// The `Status` object sent as the body.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": self.reason(),
            "code": self.code().as_u16(),
        });
        let details = match self {
            ApiError::NotFound {
                group,
                resource,
                name,
            }
            | ApiError::AlreadyExists {
                group,
                resource,
                name,
            }
            | ApiError::Conflict {
                group,
                resource,
                name,
                ..
            } => Some(details(group, resource, name, &[])),
            ApiError::NoSuchPath => Some(json!({})),
            ApiError::ApplyConflict {
                group,
                resource,
                name,
                causes,
                ..
            } => Some(details(group, resource, name, causes)),
            ApiError::Invalid {
                group,
                kind,
                name,
                causes,
            } => Some(details(group, kind, name, causes)),
            _ => None,
        };
        if let (Some(details), Some(map)) = (details, status.as_object_mut()) {
            map.insert("details".into(), details);
        }
        if let (ApiError::BadRequest(_), Some(map)) = (self, status.as_object_mut()) {
            // upstream's plain 400 carries reason BadRequest as well
            map.insert("reason".into(), Value::from("BadRequest"));
        }
        status
    }
}

/// A Status's `details`: the object named, and its causes when there are any. `kind` is the
/// resource (or kind) without its group.
fn details(group: &str, kind: &str, name: &str, causes: &[Cause]) -> Value {
    let mut details = json!({
        "name": name,
        "group": group,
        "kind": kind.split('.').next().unwrap_or(kind),
    });
    if !causes.is_empty()
        && let Some(map) = details.as_object_mut()
    {
        let causes: Vec<Value> = causes
            .iter()
            .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
            .collect();
        map.insert("causes".into(), Value::from(causes));
    }
    details
}

/// The `Status` of a successful delete of an object that is gone.
pub fn success(res: &Resource, name: &str, uid: Option<&str>) -> Value {
    let mut details = json!({"name": name, "group": res.group, "kind": res.plural});
    if let (Some(uid), Some(map)) = (uid, details.as_object_mut()) {
        map.insert("uid".into(), Value::from(uid));
    }
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxkube_api::registry::find;

    #[test]
    fn messages_and_codes_are_upstreams() {
        let deploy = find("apps", "v1", "deployments").expect("deployments");
        let e = ApiError::not_found(deploy, "web");
        assert_eq!(e.to_string(), r#"deployments.apps "web" not found"#);
        assert_eq!(e.code(), StatusCode::NOT_FOUND);
        let s = e.to_status();
        assert_eq!(s["details"]["kind"], "deployments");
        assert_eq!(s["details"]["group"], "apps");

        let pods = find("", "v1", "pods").expect("pods");
        let e = ApiError::conflict(pods, "p");
        assert_eq!(
            e.to_string(),
            r#"Operation cannot be fulfilled on pods "p": the object has been modified; please apply your changes to the latest version and try again"#
        );
        assert_eq!(ApiError::too_old(3, 10).to_status()["code"], 410);
    }

    #[test]
    fn invalid_lists_its_causes() {
        let e = ApiError::Invalid {
            group: String::new(),
            kind: "Pod".into(),
            name: "p".into(),
            causes: vec![
                Cause {
                    reason: "FieldValueRequired".into(),
                    message: "Required value".into(),
                    field: "spec.containers".into(),
                },
                Cause {
                    reason: "FieldValueInvalid".into(),
                    message: "Invalid value: \"A\": bad".into(),
                    field: "metadata.name".into(),
                },
            ],
        };
        assert_eq!(
            e.to_string(),
            r#"Pod "p" is invalid: [spec.containers: Required value, metadata.name: Invalid value: "A": bad]"#
        );
        assert_eq!(
            e.to_status()["details"]["causes"][0]["field"],
            "spec.containers"
        );
        assert_eq!(e.code().as_u16(), 422);
    }
}
