//! Content negotiation: which of the media types a client accepts the server answers in (JSON,
//! YAML, a meta.k8s.io Table, aggregated discovery), and which request bodies it reads.

use crate::status::ApiError;

/// What the server can answer in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Yaml,
    /// A `meta.k8s.io/v1` Table (`v1beta1` asked is answered the same way as upstream's v1beta1 is
    /// wire-identical).
    Table,
    /// `apidiscovery.k8s.io/v2` APIGroupDiscoveryList.
    Discovery,
}

/// The Content-Type of each format.
pub fn content_type(format: Format) -> &'static str {
    match format {
        Format::Json => "application/json",
        Format::Yaml => "application/yaml",
        Format::Table => "application/json;as=Table;v=v1;g=meta.k8s.io",
        Format::Discovery => "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
    }
}

#[derive(Debug, Clone, PartialEq)]
struct MediaRange {
    essence: String,
    params: Vec<(String, String)>,
}

impl MediaRange {
    fn param(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

fn parse_accept(header: &str) -> Vec<MediaRange> {
    header
        .split(',')
        .filter_map(|part| {
            let mut pieces = part.split(';').map(str::trim);
            let essence = pieces.next()?.to_ascii_lowercase();
            if essence.is_empty() {
                return None;
            }
            let params = pieces
                .filter_map(|p| p.split_once('='))
                .map(|(k, v)| (k.trim().to_string(), v.trim().trim_matches('"').to_string()))
                .collect();
            Some(MediaRange { essence, params })
        })
        .collect()
}

/// Picks the answer's format from the `Accept` header, among the formats the endpoint offers.
/// Ranges naming something else are skipped; none fitting is 406.
pub fn choose(accept: Option<&str>, table: bool, discovery: bool) -> Result<Format, ApiError> {
    let Some(header) = accept.filter(|h| !h.trim().is_empty()) else {
        return Ok(Format::Json);
    };
    for range in parse_accept(header) {
        let as_ = range.param("as");
        let g = range.param("g");
        let v = range.param("v");
        match (range.essence.as_str(), as_) {
            ("application/json", Some("Table"))
                if table && g == Some("meta.k8s.io") && matches!(v, Some("v1" | "v1beta1")) =>
            {
                return Ok(Format::Table);
            }
            ("application/json", Some("APIGroupDiscoveryList"))
                if discovery && g == Some("apidiscovery.k8s.io") && v == Some("v2") =>
            {
                return Ok(Format::Discovery);
            }
            ("application/json", Some(_)) => continue,
            ("application/json" | "application/*" | "*/*", None) => return Ok(Format::Json),
            ("application/yaml", None) => return Ok(Format::Yaml),
            _ => continue,
        }
    }
    Err(ApiError::NotAcceptable(
        "only the following media types are accepted: application/json, application/yaml".into(),
    ))
}

/// The media type of the OpenAPI v2 document in protobuf as upstream answers it (kubectl asks with
/// `@v1.0`, which Go's media-type parser rejects in a Content-Type).
pub const OPENAPI_V2_PROTOBUF: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// Whether the client asks `/openapi/v2` in protobuf (kubectl's only form) before anything the
/// JSON answer would satisfy. Both spellings upstream accepts count (`@v1.0` and `.v1.0`).
pub fn wants_openapi_v2_protobuf(accept: Option<&str>) -> bool {
    let Some(header) = accept else {
        return false;
    };
    for range in parse_accept(header) {
        match range.essence.as_str() {
            "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
            | "application/com.github.proto-openapi.spec.v2.v1.0+protobuf" => return true,
            "application/json" | "application/*" | "*/*" | "application/yaml" => return false,
            _ => {}
        }
    }
    false
}

/// How a request body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyType {
    Json,
    Yaml,
    /// `application/vnd.kubernetes.protobuf`: what kubectl's typed clients send.
    Protobuf,
    JsonPatch,
    MergePatch,
    StrategicMergePatch,
    ApplyPatch,
}

/// Reads the Content-Type of a body; others are 415.
pub fn body_type(content_type: Option<&str>) -> Result<BodyType, ApiError> {
    let essence = content_type
        .and_then(|c| c.split(';').next())
        .map(|c| c.trim().to_ascii_lowercase())
        .unwrap_or_default();
    match essence.as_str() {
        "" | "application/json" | "*/*" => Ok(BodyType::Json),
        "application/yaml" | "application/x-yaml" | "text/yaml" => Ok(BodyType::Yaml),
        "application/vnd.kubernetes.protobuf" => Ok(BodyType::Protobuf),
        "application/json-patch+json" => Ok(BodyType::JsonPatch),
        "application/merge-patch+json" => Ok(BodyType::MergePatch),
        "application/strategic-merge-patch+json" => Ok(BodyType::StrategicMergePatch),
        "application/apply-patch+yaml" | "application/apply-patch+json" => Ok(BodyType::ApplyPatch),
        other => Err(ApiError::UnsupportedMediaType(format!(
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got {other:?})"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_get_gets_a_table() {
        let kubectl = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(choose(Some(kubectl), true, false), Ok(Format::Table));
        assert_eq!(choose(Some(kubectl), false, false), Ok(Format::Json));
    }

    #[test]
    fn discovery_is_answered_in_the_asked_format() {
        let kubectl = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert_eq!(choose(Some(kubectl), false, true), Ok(Format::Discovery));
        assert_eq!(choose(Some(kubectl), false, false), Ok(Format::Json));
        let reordered = "application/json;as=APIGroupDiscoveryList;v=v2;g=apidiscovery.k8s.io";
        assert_eq!(choose(Some(reordered), false, true), Ok(Format::Discovery));
    }

    #[test]
    fn openapi_v2_protobuf_only_when_asked_first() {
        assert!(wants_openapi_v2_protobuf(Some(
            "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
        )));
        assert!(wants_openapi_v2_protobuf(Some(
            "application/com.github.proto-openapi.spec.v2.v1.0+protobuf, application/json"
        )));
        assert!(!wants_openapi_v2_protobuf(Some(
            "application/json, application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
        )));
        assert!(!wants_openapi_v2_protobuf(None));
    }

    #[test]
    fn protobuf_only_is_406_and_nothing_is_json() {
        assert_eq!(
            choose(Some("application/vnd.kubernetes.protobuf"), true, false)
                .map_err(|e| e.code().as_u16()),
            Err(406)
        );
        assert_eq!(choose(None, true, true), Ok(Format::Json));
        assert_eq!(choose(Some("*/*"), true, true), Ok(Format::Json));
        assert_eq!(
            choose(Some("application/yaml"), true, true),
            Ok(Format::Yaml)
        );
    }

    #[test]
    fn body_types() {
        assert_eq!(
            body_type(Some("application/json; charset=utf-8")),
            Ok(BodyType::Json)
        );
        assert_eq!(
            body_type(Some("application/strategic-merge-patch+json")),
            Ok(BodyType::StrategicMergePatch)
        );
        assert_eq!(
            body_type(Some("text/plain")).map_err(|e| e.code().as_u16()),
            Err(415)
        );
    }
}
