//! Defaulting as upstream's `pkg/apis/*/v1/defaults.go` (plus the few admission and
//! strategy-time defaults clients always see: pod service account, priority and default
//! tolerations, namespace finalizer and phase, service IP family fields, job selectors).
//! Cluster IPs and node ports are allocated by the server, not here.

use serde_json::{Map, Value, json};

use crate::registry::Resource;

/// Fills in what upstream's defaulters fill in for a create or an update, in place. Fields of
/// the wrong shape are left alone (the typed check and validation report them).
///
/// On update the server keeps a namespace's stored finalizers and status as upstream does; the
/// `kubernetes` finalizer comes from [`namespace_finalizer_on_create`].
pub fn apply(res: &Resource, obj: &mut Value) {
    match (res.group, res.kind) {
        ("", "Pod") => pod(obj),
        ("", "PodTemplate") => template_at(obj, &["template"]),
        ("", "ReplicationController") => replication_controller(obj),
        ("apps", "Deployment") => deployment(obj),
        ("apps", "ReplicaSet") => {
            replicas(obj);
            template_at(obj, &["spec", "template"]);
        }
        ("apps", "StatefulSet") => stateful_set(obj),
        ("apps", "DaemonSet") => daemon_set(obj),
        ("batch", "Job") => job(obj),
        ("batch", "CronJob") => cron_job(obj),
        ("", "Service") => service(obj),
        ("", "Namespace") => namespace(obj),
        ("", "Secret") => {
            if let Some(o) = obj.as_object_mut() {
                default_str(o, "type", "Opaque");
            }
        }
        ("", "PersistentVolumeClaim") => pvc(obj),
        ("", "PersistentVolume") => {
            if let Some(spec) = child(obj, "spec") {
                default_str(spec, "persistentVolumeReclaimPolicy", "Retain");
                default_str(spec, "volumeMode", "Filesystem");
            }
            if let Some(status) = child(obj, "status") {
                default_str(status, "phase", "Pending");
            }
        }
        ("", "Node") => node(obj),
        ("", "Endpoints") => {
            for subset in items(obj, &["subsets"]) {
                for port in items(subset, &["ports"]) {
                    if let Some(p) = port.as_object_mut() {
                        default_str(p, "protocol", "TCP");
                    }
                }
            }
        }
        ("discovery.k8s.io", "EndpointSlice") => {
            for port in items(obj, &["ports"]) {
                if let Some(p) = port.as_object_mut() {
                    default_val(p, "name", json!(""));
                    default_val(p, "protocol", json!("TCP"));
                }
            }
        }
        ("networking.k8s.io", "NetworkPolicy") => network_policy(obj),
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => role_binding(obj),
        ("scheduling.k8s.io", "PriorityClass") => {
            if let Some(o) = obj.as_object_mut() {
                default_str(o, "preemptionPolicy", "PreemptLowerPriority");
            }
        }
        ("storage.k8s.io", "StorageClass") => {
            if let Some(o) = obj.as_object_mut() {
                default_str(o, "reclaimPolicy", "Delete");
                default_str(o, "volumeBindingMode", "Immediate");
            }
        }
        _ => {}
    }
}

/// Sets the selector and template labels upstream's job strategy generates on create (unless
/// `spec.manualSelector` is true): `controller-uid` / `batch.kubernetes.io/controller-uid` from
/// `metadata.uid`, and `job-name` / `batch.kubernetes.io/job-name` from `metadata.name`. Labels the
/// user set are kept (validation rejects conflicts). Does nothing without a uid. As upstream's
/// read-time defaulting does, a job without labels of its own takes its template's.
pub fn job_selector(obj: &mut Value) {
    let Some(uid) = obj
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .map(str::to_string)
    else {
        return;
    };
    if obj.pointer("/spec/manualSelector") == Some(&Value::Bool(true)) {
        return;
    }
    let name = text(obj, "/metadata/name");
    let Some(labels) = path(obj, &["spec", "template"])
        .and_then(|t| child(t, "metadata"))
        .and_then(|m| object(m, "labels"))
    else {
        return;
    };
    for key in ["job-name", "batch.kubernetes.io/job-name"] {
        labels
            .entry(key)
            .or_insert_with(|| Value::String(name.clone()));
    }
    for key in ["controller-uid", "batch.kubernetes.io/controller-uid"] {
        labels
            .entry(key)
            .or_insert_with(|| Value::String(uid.clone()));
    }
    let template_labels = Value::Object(labels.clone());
    if let Some(match_labels) = child(obj, "spec")
        .and_then(|s| object(s, "selector"))
        .and_then(|s| object(s, "matchLabels"))
    {
        match_labels
            .entry("batch.kubernetes.io/controller-uid")
            .or_insert_with(|| Value::String(uid));
    }
    if let Some(meta) = child(obj, "metadata") {
        let empty = meta
            .get("labels")
            .and_then(Value::as_object)
            .is_none_or(Map::is_empty);
        if empty {
            meta.insert("labels".to_string(), template_labels);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Per kind
// ---------------------------------------------------------------------------------------------

fn pod(obj: &mut Value) {
    let Some(spec) = child(obj, "spec") else {
        return;
    };
    // SetDefaults_Pod: requests default to limits.
    for list in ["containers", "initContainers"] {
        for c in array(spec, list) {
            requests_from_limits(c);
        }
    }
    default_val(spec, "enableServiceLinks", json!(true));
    // Admission: ServiceAccount, Priority, DefaultTolerationSeconds.
    let account = spec
        .get("serviceAccountName")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .or_else(|| {
            spec.get("serviceAccount")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        })
        .unwrap_or("default")
        .to_string();
    spec.insert("serviceAccountName".into(), Value::String(account));
    let no_class = spec
        .get("priorityClassName")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty);
    if no_class {
        default_val(spec, "priority", json!(0));
        default_str(spec, "preemptionPolicy", "PreemptLowerPriority");
    }
    default_tolerations(spec);
    pod_spec(spec);
}

/// Upstream's DefaultTolerationSeconds admission: tolerate not-ready and unreachable nodes for
/// 300 seconds unless the pod already tolerates them.
fn default_tolerations(spec: &mut Map<String, Value>) {
    let existing: Vec<(String, String)> = spec
        .get("tolerations")
        .and_then(Value::as_array)
        .map(|ts| {
            ts.iter()
                .map(|t| {
                    let get = |k: &str| t.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                    (get("key"), get("effect"))
                })
                .collect()
        })
        .unwrap_or_default();
    let mut add = Vec::new();
    for key in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    ] {
        let tolerated = existing
            .iter()
            .any(|(k, e)| (k == key || k.is_empty()) && (e == "NoExecute" || e.is_empty()));
        if !tolerated {
            add.push(json!({
                "key": key,
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": 300
            }));
        }
    }
    if add.is_empty() {
        return;
    }
    match spec.get_mut("tolerations") {
        Some(Value::Array(ts)) => ts.extend(add),
        Some(Value::Null) | None => {
            spec.insert("tolerations".into(), Value::Array(add));
        }
        Some(_) => {}
    }
}

fn requests_from_limits(container: &mut Value) {
    let Some(res) = container
        .get_mut("resources")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    let Some(limits) = res.get("limits").and_then(Value::as_object).cloned() else {
        return;
    };
    let Some(requests) = object(res, "requests") else {
        return;
    };
    for (k, v) in limits {
        requests.entry(k).or_insert(v);
    }
}

/// The defaults of a pod template's metadata-free spec, at `at` (a PodTemplateSpec).
fn template_at(obj: &mut Value, at: &[&str]) {
    if let Some(spec) = path(obj, at).and_then(|t| child(t, "spec")) {
        pod_spec(spec);
    }
}

/// SetDefaults_PodSpec and everything nested in a pod spec.
fn pod_spec(spec: &mut Map<String, Value>) {
    default_str(spec, "dnsPolicy", "ClusterFirst");
    default_str(spec, "restartPolicy", "Always");
    default_val(spec, "securityContext", json!({}));
    default_val(spec, "terminationGracePeriodSeconds", json!(30));
    default_str(spec, "schedulerName", "default-scheduler");
    // The deprecated serviceAccount field mirrors serviceAccountName.
    let account = spec
        .get("serviceAccountName")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .or_else(|| {
            spec.get("serviceAccount")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        })
        .map(str::to_string);
    if let Some(account) = account {
        spec.insert("serviceAccountName".into(), Value::String(account.clone()));
        spec.insert("serviceAccount".into(), Value::String(account));
    }
    let host_network = spec.get("hostNetwork") == Some(&Value::Bool(true));
    for list in ["containers", "initContainers"] {
        for c in array(spec, list) {
            if let Some(c) = c.as_object_mut() {
                container(c, host_network);
            }
        }
    }
    for v in array(spec, "volumes") {
        if let Some(v) = v.as_object_mut() {
            volume(v);
        }
    }
}

fn container(c: &mut Map<String, Value>, host_network: bool) {
    if c.get("imagePullPolicy")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        let image = c.get("image").and_then(Value::as_str).unwrap_or("");
        c.insert("imagePullPolicy".into(), json!(pull_policy_for(image)));
    }
    default_str(c, "terminationMessagePath", "/dev/termination-log");
    default_str(c, "terminationMessagePolicy", "File");
    default_val(c, "resources", json!({}));
    for port in array(c, "ports") {
        if let Some(p) = port.as_object_mut() {
            default_str(p, "protocol", "TCP");
            if host_network
                && p.get("hostPort").and_then(Value::as_i64).unwrap_or(0) == 0
                && let Some(cp) = p.get("containerPort").cloned()
            {
                p.insert("hostPort".into(), cp);
            }
        }
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = c.get_mut(probe).and_then(Value::as_object_mut) {
            default_val(p, "timeoutSeconds", json!(1));
            default_val(p, "periodSeconds", json!(10));
            default_val(p, "successThreshold", json!(1));
            default_val(p, "failureThreshold", json!(3));
            http_get(p);
        }
    }
    if let Some(lifecycle) = c.get_mut("lifecycle").and_then(Value::as_object_mut) {
        for hook in ["postStart", "preStop"] {
            if let Some(h) = lifecycle.get_mut(hook).and_then(Value::as_object_mut) {
                http_get(h);
            }
        }
    }
    for env in array(c, "env") {
        if let Some(r) = env
            .pointer_mut("/valueFrom/fieldRef")
            .and_then(Value::as_object_mut)
        {
            default_str(r, "apiVersion", "v1");
        }
    }
}

fn http_get(handler: &mut Map<String, Value>) {
    if let Some(h) = handler.get_mut("httpGet").and_then(Value::as_object_mut) {
        default_str(h, "path", "/");
        default_str(h, "scheme", "HTTP");
    }
}

/// `Always` for `:latest` or untagged images, else `IfNotPresent` (also for digests and for
/// names upstream's reference parser rejects).
fn pull_policy_for(image: &str) -> &'static str {
    if image.is_empty() {
        return "IfNotPresent";
    }
    let (name, digest) = match image.split_once('@') {
        Some((n, _)) => (n, true),
        None => (image, false),
    };
    let last_slash = name.rfind('/').map_or(0, |i| i + 1);
    let (repo, tag) = match name[last_slash..].rfind(':') {
        Some(i) => (&name[..last_slash + i], Some(&name[last_slash + i + 1..])),
        None => (name, None),
    };
    // The domain (first component with a dot or port, or localhost) may hold upper case; the
    // path may not.
    let path = match repo.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            rest
        }
        _ => repo,
    };
    if path.is_empty() || path.chars().any(|c| c.is_ascii_uppercase()) {
        return "IfNotPresent";
    }
    match tag {
        Some("latest") => "Always",
        Some(_) => "IfNotPresent",
        None if digest => "IfNotPresent",
        None => "Always",
    }
}

fn volume(v: &mut Map<String, Value>) {
    let has_source = v.keys().any(|k| k != "name");
    if !has_source {
        v.insert("emptyDir".into(), json!({}));
    }
    for source in ["secret", "configMap", "downwardAPI", "projected"] {
        if let Some(s) = v.get_mut(source).and_then(Value::as_object_mut) {
            default_val(s, "defaultMode", json!(420));
        }
    }
    if let Some(h) = v.get_mut("hostPath").and_then(Value::as_object_mut) {
        default_val(h, "type", json!(""));
    }
    if let Some(items) = v
        .get_mut("downwardAPI")
        .and_then(|d| d.get_mut("items"))
        .and_then(Value::as_array_mut)
    {
        for item in items {
            if let Some(r) = item.get_mut("fieldRef").and_then(Value::as_object_mut) {
                default_str(r, "apiVersion", "v1");
            }
        }
    }
    if let Some(sources) = v
        .get_mut("projected")
        .and_then(|p| p.get_mut("sources"))
        .and_then(Value::as_array_mut)
    {
        for s in sources {
            if let Some(t) = s
                .get_mut("serviceAccountToken")
                .and_then(Value::as_object_mut)
            {
                default_val(t, "expirationSeconds", json!(3600));
            }
            if let Some(items) = s
                .pointer_mut("/downwardAPI/items")
                .and_then(Value::as_array_mut)
            {
                for item in items {
                    if let Some(r) = item.get_mut("fieldRef").and_then(Value::as_object_mut) {
                        default_str(r, "apiVersion", "v1");
                    }
                }
            }
        }
    }
}

fn replicas(obj: &mut Value) {
    if let Some(spec) = child(obj, "spec") {
        default_val(spec, "replicas", json!(1));
    }
}

fn replication_controller(obj: &mut Value) {
    let labels = obj
        .pointer("/spec/template/metadata/labels")
        .filter(|l| l.as_object().is_some_and(|m| !m.is_empty()))
        .cloned();
    if let Some(labels) = labels {
        if let Some(spec) = child(obj, "spec") {
            default_nonempty(spec, "selector", labels.clone());
        }
        if let Some(meta) = child(obj, "metadata") {
            default_nonempty(meta, "labels", labels);
        }
    }
    replicas(obj);
    template_at(obj, &["spec", "template"]);
}

fn deployment(obj: &mut Value) {
    if let Some(spec) = child(obj, "spec") {
        default_val(spec, "replicas", json!(1));
        default_val(spec, "revisionHistoryLimit", json!(10));
        default_val(spec, "progressDeadlineSeconds", json!(600));
        if let Some(strategy) = object(spec, "strategy") {
            default_str(strategy, "type", "RollingUpdate");
            if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate")
                && let Some(ru) = object(strategy, "rollingUpdate")
            {
                default_val(ru, "maxUnavailable", json!("25%"));
                default_val(ru, "maxSurge", json!("25%"));
            }
        }
    }
    template_at(obj, &["spec", "template"]);
}

fn stateful_set(obj: &mut Value) {
    if let Some(spec) = child(obj, "spec") {
        default_str(spec, "podManagementPolicy", "OrderedReady");
        if let Some(strategy) = object(spec, "updateStrategy") {
            let unset = strategy
                .get("type")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty);
            if unset {
                strategy.insert("type".into(), json!("RollingUpdate"));
                default_val(strategy, "rollingUpdate", json!({}));
            }
            if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate")
                && let Some(ru) = strategy
                    .get_mut("rollingUpdate")
                    .and_then(Value::as_object_mut)
            {
                default_val(ru, "partition", json!(0));
                // MaxUnavailableStatefulSet: beta, on by default since 1.35.
                default_val(ru, "maxUnavailable", json!(1));
            }
        }
        if let Some(policy) = object(spec, "persistentVolumeClaimRetentionPolicy") {
            default_str(policy, "whenDeleted", "Retain");
            default_str(policy, "whenScaled", "Retain");
        }
        default_val(spec, "replicas", json!(1));
        default_val(spec, "revisionHistoryLimit", json!(10));
        for claim in array(spec, "volumeClaimTemplates") {
            pvc(claim);
        }
    }
    template_at(obj, &["spec", "template"]);
}

fn daemon_set(obj: &mut Value) {
    if let Some(spec) = child(obj, "spec") {
        if let Some(strategy) = object(spec, "updateStrategy") {
            default_str(strategy, "type", "RollingUpdate");
            if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate")
                && let Some(ru) = object(strategy, "rollingUpdate")
            {
                default_val(ru, "maxUnavailable", json!(1));
                default_val(ru, "maxSurge", json!(0));
            }
        }
        default_val(spec, "revisionHistoryLimit", json!(10));
    }
    template_at(obj, &["spec", "template"]);
}

fn job(obj: &mut Value) {
    let template_labels = obj
        .pointer("/spec/template/metadata/labels")
        .filter(|l| l.as_object().is_some_and(|m| !m.is_empty()))
        .cloned();
    if let Some(spec) = child(obj, "spec") {
        let unset = |s: &Map<String, Value>, k: &str| s.get(k).is_none_or(Value::is_null);
        if unset(spec, "completions") && unset(spec, "parallelism") {
            spec.insert("completions".into(), json!(1));
            spec.insert("parallelism".into(), json!(1));
        }
        default_val(spec, "parallelism", json!(1));
        let backoff = if unset(spec, "backoffLimitPerIndex") {
            json!(6)
        } else {
            json!(i32::MAX)
        };
        default_val(spec, "backoffLimit", backoff);
        default_val(spec, "completionMode", json!("NonIndexed"));
        default_val(spec, "suspend", json!(false));
        let replacement = if unset(spec, "podFailurePolicy") {
            "TerminatingOrFailed"
        } else {
            "Failed"
        };
        default_val(spec, "podReplacementPolicy", json!(replacement));
        if let Some(rules) = spec
            .get_mut("podFailurePolicy")
            .and_then(|p| p.get_mut("rules"))
            .and_then(Value::as_array_mut)
        {
            for rule in rules {
                for cond in items(rule, &["onPodConditions"]) {
                    if let Some(c) = cond.as_object_mut() {
                        default_str(c, "status", "True");
                    }
                }
            }
        }
    }
    if let Some(labels) = template_labels
        && let Some(meta) = child(obj, "metadata")
    {
        default_nonempty(meta, "labels", labels);
    }
    template_at(obj, &["spec", "template"]);
}

fn cron_job(obj: &mut Value) {
    if let Some(spec) = child(obj, "spec") {
        default_str(spec, "concurrencyPolicy", "Allow");
        default_val(spec, "suspend", json!(false));
        default_val(spec, "successfulJobsHistoryLimit", json!(3));
        default_val(spec, "failedJobsHistoryLimit", json!(1));
    }
    template_at(obj, &["spec", "jobTemplate", "spec", "template"]);
}

fn service(obj: &mut Value) {
    let Some(spec) = child(obj, "spec") else {
        return;
    };
    default_str(spec, "sessionAffinity", "None");
    match spec.get("sessionAffinity").and_then(Value::as_str) {
        Some("None") => {
            spec.remove("sessionAffinityConfig");
        }
        Some("ClientIP") => {
            let has_timeout = spec
                .get("sessionAffinityConfig")
                .and_then(|c| c.pointer("/clientIP/timeoutSeconds"))
                .is_some_and(|t| !t.is_null());
            if !has_timeout {
                spec.insert(
                    "sessionAffinityConfig".into(),
                    json!({"clientIP": {"timeoutSeconds": 10800}}),
                );
            }
        }
        _ => {}
    }
    default_str(spec, "type", "ClusterIP");
    for port in array(spec, "ports") {
        if let Some(p) = port.as_object_mut() {
            default_str(p, "protocol", "TCP");
            let target_unset = match p.get("targetPort") {
                None | Some(Value::Null) => true,
                Some(Value::Number(n)) => n.as_i64() == Some(0),
                Some(Value::String(s)) => s.is_empty(),
                Some(_) => false,
            };
            if target_unset && let Some(port) = p.get("port").cloned() {
                p.insert("targetPort".into(), port);
            }
        }
    }
    let kind = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let external_ips = spec
        .get("externalIPs")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    let externally_accessible =
        kind == "LoadBalancer" || kind == "NodePort" || (kind == "ClusterIP" && external_ips);
    if externally_accessible {
        default_str(spec, "externalTrafficPolicy", "Cluster");
    }
    if matches!(kind.as_str(), "ClusterIP" | "NodePort" | "LoadBalancer") {
        default_val(spec, "internalTrafficPolicy", json!("Cluster"));
        let headless_without_selector = spec.get("clusterIP").and_then(Value::as_str)
            == Some("None")
            && spec
                .get("selector")
                .and_then(Value::as_object)
                .is_none_or(Map::is_empty);
        let policy = if headless_without_selector {
            "RequireDualStack"
        } else {
            "SingleStack"
        };
        default_val(spec, "ipFamilyPolicy", json!(policy));
        default_nonempty(spec, "ipFamilies", json!(["IPv4"]));
    }
    if kind == "LoadBalancer" {
        default_val(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
}

fn namespace(obj: &mut Value) {
    let name = text(obj, "/metadata/name");
    if !name.is_empty()
        && let Some(labels) = child(obj, "metadata").and_then(|m| object(m, "labels"))
    {
        labels.insert("kubernetes.io/metadata.name".into(), Value::String(name));
    }
    if let Some(status) = child(obj, "status") {
        default_str(status, "phase", "Active");
    }
}

/// A namespace being created gets the `kubernetes` finalizer (upstream's PrepareForCreate); on
/// update the stored finalizers stay, and only `/finalize` removes them.
pub fn namespace_finalizer_on_create(obj: &mut Value) {
    if let Some(spec) = child(obj, "spec")
        && let Some(finalizers) = array_field(spec, "finalizers")
        && !finalizers.iter().any(|f| f == "kubernetes")
    {
        finalizers.push(json!("kubernetes"));
    }
}

fn pvc(obj: &mut Value) {
    if let Some(spec) = child(obj, "spec") {
        default_val(spec, "volumeMode", json!("Filesystem"));
    }
    if let Some(status) = child(obj, "status") {
        default_str(status, "phase", "Pending");
    }
}

fn node(obj: &mut Value) {
    if let Some(status) = obj.get_mut("status").and_then(Value::as_object_mut)
        && let Some(capacity) = status.get("capacity").filter(|c| c.is_object()).cloned()
    {
        default_val(status, "allocatable", capacity);
    }
}

fn network_policy(obj: &mut Value) {
    let Some(spec) = child(obj, "spec") else {
        return;
    };
    for dir in ["ingress", "egress"] {
        for rule in array(spec, dir) {
            for port in items(rule, &["ports"]) {
                if let Some(p) = port.as_object_mut() {
                    default_val(p, "protocol", json!("TCP"));
                }
            }
        }
    }
    let has_types = spec
        .get("policyTypes")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    if !has_types {
        let mut types = vec![json!("Ingress")];
        if spec
            .get("egress")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
        {
            types.push(json!("Egress"));
        }
        spec.insert("policyTypes".into(), Value::Array(types));
    }
}

fn role_binding(obj: &mut Value) {
    if let Some(r) = obj.get_mut("roleRef").and_then(Value::as_object_mut) {
        default_str(r, "apiGroup", "rbac.authorization.k8s.io");
    }
    for subject in items(obj, &["subjects"]) {
        if let Some(s) = subject.as_object_mut() {
            let group = match s.get("kind").and_then(Value::as_str) {
                Some("User" | "Group") => "rbac.authorization.k8s.io",
                _ => continue,
            };
            default_str(s, "apiGroup", group);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// JSON helpers
// ---------------------------------------------------------------------------------------------

/// Sets `key` when it is absent, null or `""` (Go's zero string).
fn default_str(m: &mut Map<String, Value>, key: &str, value: &str) {
    let unset = match m.get(key) {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(_) => false,
    };
    if unset {
        m.insert(key.to_string(), Value::String(value.to_string()));
    }
}

/// Sets `key` when it is absent or null (an unset pointer).
fn default_val(m: &mut Map<String, Value>, key: &str, value: Value) {
    if m.get(key).is_none_or(Value::is_null) {
        m.insert(key.to_string(), value);
    }
}

/// Sets `key` when it is absent, null or an empty map or list (Go's `len(x) == 0`).
fn default_nonempty(m: &mut Map<String, Value>, key: &str, value: Value) {
    let empty = match m.get(key) {
        None | Some(Value::Null) => true,
        Some(Value::Object(o)) => o.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(_) => false,
    };
    if empty {
        m.insert(key.to_string(), value);
    }
}

/// The object at `key` of `m`, created empty when absent or null; `None` for other shapes.
fn object<'a>(m: &'a mut Map<String, Value>, key: &str) -> Option<&'a mut Map<String, Value>> {
    let slot = m.entry(key).or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut()
}

/// The list at `key` of `m`, created empty when absent or null; `None` for other shapes.
fn array_field<'a>(m: &'a mut Map<String, Value>, key: &str) -> Option<&'a mut Vec<Value>> {
    let slot = m.entry(key).or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Array(Vec::new());
    }
    slot.as_array_mut()
}

/// The object at `key` of `v`, created empty when absent or null.
fn child<'a>(v: &'a mut Value, key: &str) -> Option<&'a mut Map<String, Value>> {
    object(v.as_object_mut()?, key)
}

/// The existing value at `keys` under `v`.
fn path<'a>(v: &'a mut Value, keys: &[&str]) -> Option<&'a mut Value> {
    keys.iter().try_fold(v, |v, k| v.get_mut(*k))
}

/// The elements of the existing list at `keys` under `v` (none when absent).
fn items<'a>(v: &'a mut Value, keys: &[&str]) -> impl Iterator<Item = &'a mut Value> {
    path(v, keys)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
}

/// The elements of the existing list at `key` of `m` (none when absent).
fn array<'a>(m: &'a mut Map<String, Value>, key: &str) -> impl Iterator<Item = &'a mut Value> {
    m.get_mut(key)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
}

fn text(v: &Value, pointer: &str) -> String {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::find_kind;

    fn defaulted(group: &str, kind: &str, mut obj: Value) -> Value {
        let res = find_kind(group, "v1", kind).expect("kind is served");
        apply(res, &mut obj);
        obj
    }

    /// The nginx Deployment of the official docs, and what `kubectl get -o json` shows of it
    /// (less the server-set metadata and status).
    #[test]
    fn docs_deployment_is_defaulted_as_upstream() {
        let manifest = json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "nginx-deployment", "labels": {"app": "nginx"}},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "nginx"}},
                "template": {
                    "metadata": {"labels": {"app": "nginx"}},
                    "spec": {"containers": [{
                        "name": "nginx",
                        "image": "nginx:1.14.2",
                        "ports": [{"containerPort": 80}]
                    }]}
                }
            }
        });
        let want = json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "nginx-deployment", "labels": {"app": "nginx"}},
            "spec": {
                "progressDeadlineSeconds": 600,
                "replicas": 3,
                "revisionHistoryLimit": 10,
                "selector": {"matchLabels": {"app": "nginx"}},
                "strategy": {
                    "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
                    "type": "RollingUpdate"
                },
                "template": {
                    "metadata": {"labels": {"app": "nginx"}},
                    "spec": {
                        "containers": [{
                            "image": "nginx:1.14.2",
                            "imagePullPolicy": "IfNotPresent",
                            "name": "nginx",
                            "ports": [{"containerPort": 80, "protocol": "TCP"}],
                            "resources": {},
                            "terminationMessagePath": "/dev/termination-log",
                            "terminationMessagePolicy": "File"
                        }],
                        "dnsPolicy": "ClusterFirst",
                        "restartPolicy": "Always",
                        "schedulerName": "default-scheduler",
                        "securityContext": {},
                        "terminationGracePeriodSeconds": 30
                    }
                }
            }
        });
        let got = defaulted("apps", "Deployment", manifest);
        assert_eq!(got, want);
        // Defaulting is idempotent.
        assert_eq!(defaulted("apps", "Deployment", got.clone()), got);
    }

    #[test]
    fn pods_get_admission_defaults_and_probe_defaults() {
        let pod = defaulted(
            "",
            "Pod",
            json!({
                "metadata": {"name": "p"},
                "spec": {
                    "containers": [{
                        "name": "c",
                        "image": "busybox",
                        "resources": {"limits": {"cpu": "1"}},
                        "livenessProbe": {"httpGet": {"port": 80}},
                        "env": [{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
                    }],
                    "volumes": [{"name": "v"}, {"name": "s", "secret": {"secretName": "x"}}],
                    "tolerations": [{"key": "node.kubernetes.io/unreachable", "operator": "Exists"}]
                }
            }),
        );
        let spec = &pod["spec"];
        assert_eq!(spec["serviceAccountName"], "default");
        assert_eq!(spec["serviceAccount"], "default");
        assert_eq!(spec["enableServiceLinks"], true);
        assert_eq!(spec["priority"], 0);
        assert_eq!(spec["preemptionPolicy"], "PreemptLowerPriority");
        let c = &spec["containers"][0];
        assert_eq!(c["imagePullPolicy"], "Always");
        assert_eq!(c["resources"]["requests"], json!({"cpu": "1"}));
        assert_eq!(
            c["livenessProbe"],
            json!({"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"},
                   "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1,
                   "failureThreshold": 3})
        );
        assert_eq!(c["env"][0]["valueFrom"]["fieldRef"]["apiVersion"], "v1");
        assert_eq!(spec["volumes"][0], json!({"name": "v", "emptyDir": {}}));
        assert_eq!(spec["volumes"][1]["secret"]["defaultMode"], 420);
        // unreachable is already tolerated (any effect); not-ready is added.
        assert_eq!(
            spec["tolerations"],
            json!([
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists"},
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                 "effect": "NoExecute", "tolerationSeconds": 300}
            ])
        );
    }

    #[test]
    fn image_pull_policy_follows_the_tag() {
        let cases = [
            ("nginx", "Always"),
            ("nginx:latest", "Always"),
            ("nginx:1.25", "IfNotPresent"),
            ("registry:5000/nginx", "Always"),
            ("registry:5000/nginx:1", "IfNotPresent"),
            ("nginx@sha256:abcd", "IfNotPresent"),
            ("nginx:latest@sha256:abcd", "Always"),
            ("Nginx", "IfNotPresent"),
            ("", "IfNotPresent"),
        ];
        for (image, want) in cases {
            assert_eq!(pull_policy_for(image), want, "{image}");
        }
    }

    #[test]
    fn services_get_ports_and_ip_family_defaults() {
        let svc = defaulted(
            "",
            "Service",
            json!({"spec": {"type": "NodePort", "ports": [{"port": 80}, {"port": 81, "targetPort": "http"}]}}),
        );
        let spec = &svc["spec"];
        assert_eq!(
            spec["ports"][0],
            json!({"port": 80, "protocol": "TCP", "targetPort": 80})
        );
        assert_eq!(spec["ports"][1]["targetPort"], "http");
        assert_eq!(spec["sessionAffinity"], "None");
        assert_eq!(spec["externalTrafficPolicy"], "Cluster");
        assert_eq!(spec["internalTrafficPolicy"], "Cluster");
        assert_eq!(spec["ipFamilyPolicy"], "SingleStack");
        assert_eq!(spec["ipFamilies"], json!(["IPv4"]));
        let ext = defaulted(
            "",
            "Service",
            json!({"spec": {"type": "ExternalName", "externalName": "x.example"}}),
        );
        assert!(ext["spec"].get("ipFamilies").is_none());
        assert!(ext["spec"].get("externalTrafficPolicy").is_none());
    }

    #[test]
    fn workloads_get_their_defaults() {
        let sts = defaulted(
            "apps",
            "StatefulSet",
            json!({"spec": {"template": {"spec": {}}}}),
        );
        assert_eq!(
            sts["spec"],
            json!({
                "podManagementPolicy": "OrderedReady",
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0, "maxUnavailable": 1}},
                "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
                "replicas": 1,
                "revisionHistoryLimit": 10,
                "template": {"spec": {
                    "dnsPolicy": "ClusterFirst", "restartPolicy": "Always", "securityContext": {},
                    "terminationGracePeriodSeconds": 30, "schedulerName": "default-scheduler"
                }}
            })
        );
        let ds = defaulted("apps", "DaemonSet", json!({"spec": {}}));
        assert_eq!(
            ds["spec"]["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
        );
        let cj = defaulted("batch", "CronJob", json!({"spec": {"schedule": "@hourly"}}));
        assert_eq!(cj["spec"]["concurrencyPolicy"], "Allow");
        assert_eq!(cj["spec"]["successfulJobsHistoryLimit"], 3);
        assert_eq!(cj["spec"]["failedJobsHistoryLimit"], 1);
        assert_eq!(cj["spec"]["suspend"], false);
        let rc = defaulted(
            "",
            "ReplicationController",
            json!({"spec": {"template": {"metadata": {"labels": {"a": "b"}}, "spec": {}}}}),
        );
        assert_eq!(rc["spec"]["selector"], json!({"a": "b"}));
        assert_eq!(rc["metadata"]["labels"], json!({"a": "b"}));
        assert_eq!(rc["spec"]["replicas"], 1);
    }

    #[test]
    fn jobs_get_defaults_and_a_generated_selector() {
        let mut job = defaulted(
            "batch",
            "Job",
            json!({
                "metadata": {"name": "pi", "uid": "u-1"},
                "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": []}}}
            }),
        );
        let spec = &job["spec"];
        assert_eq!(spec["parallelism"], 1);
        assert_eq!(spec["completions"], 1);
        assert_eq!(spec["backoffLimit"], 6);
        assert_eq!(spec["completionMode"], "NonIndexed");
        assert_eq!(spec["suspend"], false);
        assert_eq!(spec["podReplacementPolicy"], "TerminatingOrFailed");
        assert!(spec.get("manualSelector").is_none());
        assert_eq!(spec["template"]["spec"]["restartPolicy"], "Never");
        job_selector(&mut job);
        let labels = json!({
            "batch.kubernetes.io/controller-uid": "u-1",
            "batch.kubernetes.io/job-name": "pi",
            "controller-uid": "u-1",
            "job-name": "pi"
        });
        assert_eq!(job["spec"]["template"]["metadata"]["labels"], labels);
        assert_eq!(
            job["spec"]["selector"],
            json!({"matchLabels": {"batch.kubernetes.io/controller-uid": "u-1"}})
        );
        assert_eq!(job["metadata"]["labels"], labels);

        let mut manual = json!({"metadata": {"uid": "u"}, "spec": {"manualSelector": true}});
        job_selector(&mut manual);
        assert!(manual["spec"].get("selector").is_none());
    }

    #[test]
    fn namespaces_secrets_and_claims() {
        let mut ns = defaulted("", "Namespace", json!({"metadata": {"name": "dev"}}));
        assert!(ns["spec"].get("finalizers").is_none(), "{ns}");
        namespace_finalizer_on_create(&mut ns);
        assert_eq!(
            ns,
            json!({
                "metadata": {"name": "dev", "labels": {"kubernetes.io/metadata.name": "dev"}},
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"}
            })
        );
        // Finalizing removed it: a later write does not bring it back.
        let mut finalized = json!({"metadata": {"name": "dev"}, "spec": {"finalizers": []}});
        apply(
            find_kind("", "v1", "Namespace").expect("namespaces"),
            &mut finalized,
        );
        assert_eq!(finalized["spec"]["finalizers"], json!([]));
        let secret = defaulted("", "Secret", json!({"metadata": {"name": "s"}}));
        assert_eq!(secret["type"], "Opaque");
        let pvc = defaulted("", "PersistentVolumeClaim", json!({"spec": {}}));
        assert_eq!(pvc["spec"]["volumeMode"], "Filesystem");
        assert_eq!(pvc["status"]["phase"], "Pending");
        // Wrong shapes are left alone, never a panic.
        let odd = defaulted("apps", "Deployment", json!({"spec": "nope"}));
        assert_eq!(odd, json!({"spec": "nope"}));
    }

    /// Arbitrary JSON shaped loosely like objects (keys drawn from real field names).
    fn arb_json() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (-3i64..70000).prop_map(|n| json!(n)),
            prop_oneof![
                Just("None"),
                Just(""),
                Just("x"),
                Just("25%"),
                Just("RollingUpdate")
            ]
            .prop_map(|s| json!(s)),
        ];
        let keys = prop_oneof![
            Just("spec"),
            Just("template"),
            Just("metadata"),
            Just("labels"),
            Just("containers"),
            Just("ports"),
            Just("selector"),
            Just("strategy"),
            Just("rollingUpdate"),
            Just("name"),
            Just("image"),
            Just("volumes"),
            Just("status"),
            Just("type"),
            Just("clusterIP"),
            Just("jobTemplate"),
            Just("updateStrategy"),
            Just("tolerations"),
            Just("httpGet"),
            Just("livenessProbe"),
            Just("data"),
            Just("rules"),
            Just("subjects"),
            Just("roleRef"),
        ];
        leaf.prop_recursive(4, 48, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(keys.clone(), inner, 0..5).prop_map(|m| {
                    Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
                }),
            ]
        })
    }

    proptest::proptest! {
        #[test]
        fn defaulting_never_panics_and_is_idempotent(obj in arb_json(), i in 0usize..64) {
            let res = &crate::registry::RESOURCES[i % crate::registry::RESOURCES.len()];
            let mut once = obj;
            apply(res, &mut once);
            job_selector(&mut once);
            let mut twice = once.clone();
            apply(res, &mut twice);
            proptest::prop_assert_eq!(twice, once.clone());
            // Validation of anything, as a create or an update, never panics either.
            let _ = crate::validation::validate(res, &once, None);
            let _ = crate::validation::validate(res, &once, Some(&once));
        }
    }
}
