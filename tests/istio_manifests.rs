#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Checks the Kubernetes and Istio manifests in `istio/` without a cluster. Istio resources are
//! validated against the `openAPIV3Schema` of their CustomResourceDefinition and core resources
//! against the fields they use. The WasmPlugin's `pluginConfig` is compiled with the filter's own
//! parser, and the references between resources (selectors, ports, Secrets, ConfigMaps,
//! principals) must resolve.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{json, Map, Value};

/// Environment variable that overrides where the Istio CRDs are read from.
const CRDS_ENV: &str = "MESHGUARD_ISTIO_CRDS";
const NAMESPACE: &str = "meshguard-demo";
/// Namespace of the Istio ingress gateway, whose resources live there.
const GATEWAY_NAMESPACE: &str = "istio-system";
/// Secrets the manifests reference but do not ship, because they hold real keys. istio/README.md
/// describes how to create each.
const EXTERNAL_SECRETS: &[(&str, &str)] = &[("meshguard-jwt", "hs256-secret")];
const TRUST_DOMAIN: &str = "cluster.local";

/// One YAML document of a file in `istio/`.
#[derive(Debug, Clone)]
struct Resource {
    file: String,
    index: usize,
    value: Value,
}

impl Resource {
    fn api_version(&self) -> &str {
        self.value["apiVersion"].as_str().unwrap_or("")
    }

    fn kind(&self) -> &str {
        self.value["kind"].as_str().unwrap_or("")
    }

    fn name(&self) -> &str {
        self.value["metadata"]["name"].as_str().unwrap_or("")
    }

    fn namespace(&self) -> &str {
        self.value["metadata"]["namespace"].as_str().unwrap_or("")
    }

    /// `file#index kind/name`, for messages.
    fn id(&self) -> String {
        format!(
            "{}#{} {}/{}",
            self.file,
            self.index,
            self.kind(),
            self.name()
        )
    }
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("failed to read {}: {error}", path.display()))
}

/// Parses every document of a YAML text into a JSON value, skipping empty documents.
fn parse_yaml_documents(text: &str, origin: &str) -> Vec<Value> {
    let mut documents = Vec::new();
    for (index, document) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let value = Value::deserialize(document).unwrap_or_else(|error| {
            panic!("{origin}: document {index} is not valid YAML: {error}")
        });
        if !value.is_null() {
            documents.push(value);
        }
    }
    documents
}

fn istio_yaml_files() -> Vec<PathBuf> {
    let dir = repo_root().join("istio");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("failed to list {}: {error}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.extension()
                .is_some_and(|ext| ext == "yaml" || ext == "yml")
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no YAML files in {}", dir.display());
    files
}

fn load_resources() -> Vec<Resource> {
    let mut resources = Vec::new();
    for path in istio_yaml_files() {
        let file = format!("istio/{}", path.file_name().unwrap().to_string_lossy());
        for (index, value) in parse_yaml_documents(&read(&path), &file)
            .into_iter()
            .enumerate()
        {
            resources.push(Resource {
                file: file.clone(),
                index,
                value,
            });
        }
    }
    resources
}

fn of_kind<'a>(resources: &'a [Resource], kind: &str) -> Vec<&'a Resource> {
    resources.iter().filter(|r| r.kind() == kind).collect()
}

fn find<'a>(resources: &'a [Resource], kind: &str, name: &str) -> &'a Resource {
    resources
        .iter()
        .find(|r| r.kind() == kind && r.name() == name)
        .unwrap_or_else(|| panic!("no {kind} named {name:?} in istio/*.yaml"))
}

fn is_istio(resource: &Resource) -> bool {
    resource.api_version().contains(".istio.io/")
}

// ---------------------------------------------------------------------------------------------
// Istio CRD schemas

fn crds_path() -> PathBuf {
    match std::env::var_os(CRDS_ENV) {
        Some(path) => PathBuf::from(path),
        None => repo_root().join("../shared/schemas/istio-crds.yaml"),
    }
}

/// The `openAPIV3Schema` of every served version of every CRD, keyed by (apiVersion, kind).
fn load_crd_schemas() -> HashMap<(String, String), Value> {
    let path = crds_path();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| {
        panic!(
            "failed to read the Istio CRDs at {}: {error}. Point {CRDS_ENV} at Istio's \
             CustomResourceDefinitions file (kubernetes/customresourcedefinitions.gen.yaml of \
             istio/api), for example {CRDS_ENV}=/path/to/istio-crds.yaml cargo test -p meshguard \
             --test istio_manifests",
            path.display()
        )
    });
    let mut schemas = HashMap::new();
    for crd in parse_yaml_documents(&text, &path.display().to_string()) {
        if crd["kind"] != "CustomResourceDefinition" {
            continue;
        }
        let group = crd["spec"]["group"].as_str().unwrap();
        let kind = crd["spec"]["names"]["kind"].as_str().unwrap();
        for version in crd["spec"]["versions"].as_array().unwrap() {
            let name = version["name"].as_str().unwrap();
            let schema = &version["schema"]["openAPIV3Schema"];
            if schema.is_object() {
                schemas.insert((format!("{group}/{name}"), kind.to_owned()), schema.clone());
            }
        }
    }
    assert!(
        !schemas.is_empty(),
        "{} holds no CustomResourceDefinition with an openAPIV3Schema",
        path.display()
    );
    schemas
}

/// Turns a Kubernetes structural schema into a JSON Schema (draft 4) that rejects what the API
/// server would reject or silently drop:
/// - objects with `properties` get `additionalProperties: false` unless they carry
///   `x-kubernetes-preserve-unknown-fields`, because the API server prunes unknown fields, and a
///   misspelt field would vanish instead of failing (`kubectl apply --validate=strict` rejects
///   it);
/// - OpenAPI's `nullable: true` becomes a `null` alternative of `type`;
/// - `x-kubernetes-*` keywords are removed, since the validator does not know them.
///
/// NOTE: `x-kubernetes-validations` (CEL rules) are dropped, not evaluated; the tests check the
/// rules that concern these manifests by hand (see `wasmplugin_cel_rules`).
fn structural_to_json_schema(schema: &Value) -> Value {
    let Value::Object(object) = schema else {
        return schema.clone();
    };
    let mut out = Map::new();
    for (key, value) in object {
        let converted = match key.as_str() {
            "properties" | "patternProperties" | "definitions" => {
                let members = value.as_object().unwrap();
                Value::Object(
                    members
                        .iter()
                        .map(|(name, sub)| (name.clone(), structural_to_json_schema(sub)))
                        .collect(),
                )
            }
            "items" | "additionalProperties" | "not" => structural_to_json_schema(value),
            "anyOf" | "oneOf" | "allOf" => Value::Array(
                value
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(structural_to_json_schema)
                    .collect(),
            ),
            key if key.starts_with("x-kubernetes-") || key == "nullable" => continue,
            _ => value.clone(),
        };
        out.insert(key.clone(), converted);
    }
    if object.get("nullable") == Some(&Value::Bool(true)) {
        if let Some(Value::String(kind)) = out.get("type").cloned() {
            out.insert("type".into(), json!([kind, "null"]));
        }
    }
    let preserves_unknown =
        object.get("x-kubernetes-preserve-unknown-fields") == Some(&json!(true));
    if out.contains_key("properties")
        && !out.contains_key("additionalProperties")
        && !preserves_unknown
    {
        out.insert("additionalProperties".into(), Value::Bool(false));
    }
    Value::Object(out)
}

/// Builds the JSON Schema for a whole resource: the CRD schema plus the fields every object has,
/// which CRDs leave out.
fn resource_schema(crd_schema: &Value, api_version: &str, kind: &str) -> Value {
    let mut schema = structural_to_json_schema(crd_schema);
    let object = schema.as_object_mut().unwrap();
    let properties = object
        .entry("properties")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .unwrap();
    properties.insert("apiVersion".into(), json!({"enum": [api_version]}));
    properties.insert("kind".into(), json!({"enum": [kind]}));
    properties.insert("metadata".into(), metadata_schema());
    object.insert("additionalProperties".into(), Value::Bool(false));
    let required = object.entry("required").or_insert_with(|| json!([]));
    for field in ["apiVersion", "kind", "metadata"] {
        required.as_array_mut().unwrap().push(json!(field));
    }
    schema
}

/// `metadata` as these manifests may set it: a DNS-1123 name, a namespace, string labels and
/// annotations.
fn metadata_schema() -> Value {
    json!({
        "type": "object",
        "required": ["name"],
        "additionalProperties": false,
        "properties": {
            "name": {
                "type": "string",
                "maxLength": 253,
                "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
            },
            "namespace": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
            "labels": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 63}},
            "annotations": {"type": "object", "additionalProperties": {"type": "string"}}
        }
    })
}

fn schema_errors(schema: &Value, instance: &Value) -> Vec<String> {
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft4)
        .build(schema)
        .unwrap_or_else(|error| panic!("the converted CRD schema does not compile: {error}"));
    validator
        .iter_errors(instance)
        .map(|error| format!("{}: {error}", error.instance_path()))
        .collect()
}

#[test]
fn istio_resources_match_crd_schemas() {
    let schemas = load_crd_schemas();
    let resources = load_resources();
    let istio: Vec<&Resource> = resources.iter().filter(|r| is_istio(r)).collect();
    assert!(!istio.is_empty(), "no Istio resources in istio/*.yaml");
    let mut failures = Vec::new();
    for resource in istio {
        let key = (
            resource.api_version().to_owned(),
            resource.kind().to_owned(),
        );
        let Some(crd_schema) = schemas.get(&key) else {
            failures.push(format!(
                "{}: {} {} is not a version served by the CRDs in {}",
                resource.id(),
                key.0,
                key.1,
                crds_path().display()
            ));
            continue;
        };
        let schema = resource_schema(crd_schema, &key.0, &key.1);
        for error in schema_errors(&schema, &resource.value) {
            failures.push(format!("{}: {error}", resource.id()));
        }
    }
    assert!(
        failures.is_empty(),
        "schema violations:\n{}",
        failures.join("\n")
    );
}

#[test]
fn crd_schema_rejects_misspelt_field() {
    let schemas = load_crd_schemas();
    let key = (
        "security.istio.io/v1".to_owned(),
        "PeerAuthentication".to_owned(),
    );
    let schema = resource_schema(&schemas[&key], &key.0, &key.1);
    let valid = json!({
        "apiVersion": "security.istio.io/v1",
        "kind": "PeerAuthentication",
        "metadata": {"name": "default", "namespace": NAMESPACE},
        "spec": {"mtls": {"mode": "STRICT"}}
    });
    assert_eq!(schema_errors(&schema, &valid), Vec::<String>::new());

    let mut misspelt = valid.clone();
    misspelt["spec"] = json!({"mtls": {"mod": "STRICT"}});
    assert!(
        !schema_errors(&schema, &misspelt).is_empty(),
        "unknown field mtls.mod was accepted"
    );

    let mut bad_enum = valid;
    bad_enum["spec"]["mtls"]["mode"] = json!("STRICTEST");
    assert!(
        !schema_errors(&schema, &bad_enum).is_empty(),
        "mode STRICTEST was accepted"
    );
}

// ---------------------------------------------------------------------------------------------
// Core Kubernetes kinds

fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// Fails with the unexpected keys of `object` at `path`.
fn check_keys(failures: &mut Vec<String>, id: &str, path: &str, object: &Value, allowed: &[&str]) {
    let Some(map) = object.as_object() else {
        failures.push(format!("{id}: {path} is not an object"));
        return;
    };
    for key in map.keys() {
        if !allowed.contains(&key.as_str()) {
            failures.push(format!(
                "{id}: {path}.{key} is not a field this check knows"
            ));
        }
    }
}

fn check_string_map(failures: &mut Vec<String>, id: &str, path: &str, value: &Value) {
    match value.as_object() {
        Some(map) => {
            for (key, item) in map {
                if !item.is_string() {
                    failures.push(format!("{id}: {path}.{key} must be a string, found {item}"));
                }
            }
        }
        None => failures.push(format!("{id}: {path} must be a map of strings")),
    }
}

fn check_container(failures: &mut Vec<String>, id: &str, path: &str, container: &Value) {
    let name = container["name"].as_str().unwrap_or("");
    if !is_dns_label(name) {
        failures.push(format!("{id}: {path}.name {name:?} is not a DNS label"));
    }
    if name == "istio-proxy" {
        // A sidecar override: Istio's injector merges it into the injected proxy.
        if container["image"] != "auto" {
            failures.push(format!(
                "{id}: {path} (istio-proxy override) must have image: auto"
            ));
        }
        check_keys(failures, id, path, container, &["name", "image", "env"]);
        return;
    }

    check_keys(
        failures,
        id,
        path,
        container,
        &[
            "name",
            "image",
            "args",
            "command",
            "env",
            "ports",
            "readinessProbe",
            "livenessProbe",
            "resources",
            "securityContext",
            "volumeMounts",
        ],
    );
    if !container["image"]
        .as_str()
        .is_some_and(|image| image.contains(':'))
    {
        failures.push(format!("{id}: {path}.image must name a tag"));
    }
    for kind in ["requests", "limits"] {
        for resource in ["cpu", "memory"] {
            if !container["resources"][kind][resource].is_string() {
                failures.push(format!(
                    "{id}: {path}.resources.{kind}.{resource} is missing or not a string"
                ));
            }
        }
    }

    check_security_context(failures, id, path, &container["securityContext"]);

    let ports = declared_ports(container);
    for (port_name, number) in &ports {
        if *number == 0 || *number > 65535 {
            failures.push(format!(
                "{id}: {path} port {port_name:?} has no valid containerPort"
            ));
        }
        if port_name.len() > 15 || !is_dns_label(port_name) {
            failures.push(format!(
                "{id}: {path} port name {port_name:?} must be a DNS label of at most 15 characters"
            ));
        }
    }

    check_probes(failures, id, path, container, &ports);
}

fn check_security_context(failures: &mut Vec<String>, id: &str, path: &str, security: &Value) {
    for (field, expected) in [
        ("runAsNonRoot", json!(true)),
        ("allowPrivilegeEscalation", json!(false)),
        ("readOnlyRootFilesystem", json!(true)),
        ("capabilities", json!({"drop": ["ALL"]})),
    ] {
        if security[field] != expected {
            failures.push(format!(
                "{id}: {path}.securityContext.{field} must be {expected}"
            ));
        }
    }
    if security["runAsUser"].as_u64().is_none_or(|uid| uid == 0) {
        failures.push(format!(
            "{id}: {path}.securityContext.runAsUser must be a non-zero uid"
        ));
    }
}

/// Returns the (name, containerPort) pairs of a container; a missing field reads as "" or 0.
fn declared_ports(container: &Value) -> Vec<(String, u64)> {
    container["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|port| {
            (
                port["name"].as_str().unwrap_or("").to_owned(),
                port["containerPort"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

/// Checks that both probes exist and that an HTTP or TCP probe targets a declared port.
fn check_probes(
    failures: &mut Vec<String>,
    id: &str,
    path: &str,
    container: &Value,
    ports: &[(String, u64)],
) {
    for probe_name in ["readinessProbe", "livenessProbe"] {
        let probe = &container[probe_name];
        if !probe.is_object() {
            failures.push(format!("{id}: {path}.{probe_name} is missing"));
            continue;
        }
        let port = probe["httpGet"]["port"].clone();
        let port = if port.is_null() {
            probe["tcpSocket"]["port"].clone()
        } else {
            port
        };
        if port.is_null() {
            if !probe["exec"]["command"].is_array() {
                failures.push(format!(
                    "{id}: {path}.{probe_name} needs httpGet, tcpSocket or exec"
                ));
            }
            continue;
        }
        if !port_matches(&port, ports) {
            failures.push(format!(
                "{id}: {path}.{probe_name} port {port} is not a port of the container"
            ));
        }
    }
}

/// Returns whether a port reference (a name or a number) names one of `ports`.
fn port_matches(reference: &Value, ports: &[(String, u64)]) -> bool {
    match reference {
        Value::String(name) => ports.iter().any(|(port_name, _)| port_name == name),
        Value::Number(number) => ports.iter().any(|(_, port)| Some(*port) == number.as_u64()),
        _ => false,
    }
}

fn check_deployment(failures: &mut Vec<String>, resource: &Resource) {
    let id = resource.id();
    let spec = &resource.value["spec"];
    check_keys(
        failures,
        &id,
        "spec",
        spec,
        &["replicas", "selector", "template"],
    );
    let selector = &spec["selector"]["matchLabels"];
    let pod_labels = &spec["template"]["metadata"]["labels"];
    check_string_map(failures, &id, "spec.selector.matchLabels", selector);
    if !labels_match(selector, pod_labels) {
        failures.push(format!(
            "{id}: spec.selector.matchLabels {selector} does not match the pod labels {pod_labels}"
        ));
    }

    let pod = &spec["template"]["spec"];
    check_keys(
        failures,
        &id,
        "spec.template.spec",
        pod,
        &[
            "serviceAccountName",
            "automountServiceAccountToken",
            "securityContext",
            "containers",
            "volumes",
        ],
    );
    let containers = pod["containers"].as_array().cloned().unwrap_or_default();
    if containers.is_empty() {
        failures.push(format!("{id}: spec.template.spec.containers is empty"));
    }

    let volumes: Vec<&str> = pod["volumes"]
        .as_array()
        .map(|volumes| volumes.iter().filter_map(|v| v["name"].as_str()).collect())
        .unwrap_or_default();
    for (index, container) in containers.iter().enumerate() {
        let path = format!("spec.template.spec.containers[{index}]");
        check_container(failures, &id, &path, container);
        for mount in container["volumeMounts"].as_array().into_iter().flatten() {
            let name = mount["name"].as_str().unwrap_or("");
            if !volumes.contains(&name) {
                failures.push(format!(
                    "{id}: {path} mounts volume {name:?}, which the pod does not declare"
                ));
            }
        }
    }
}

/// Returns whether every label of `selector` is set to the same value in `labels`. An empty selector
/// matches everything.
fn labels_match(selector: &Value, labels: &Value) -> bool {
    selector
        .as_object()
        .is_some_and(|selector| selector.iter().all(|(key, value)| &labels[key] == value))
}

fn check_service(failures: &mut Vec<String>, resource: &Resource) {
    let id = resource.id();
    let spec = &resource.value["spec"];
    check_keys(failures, &id, "spec", spec, &["selector", "ports"]);
    check_string_map(failures, &id, "spec.selector", &spec["selector"]);
    for (index, port) in spec["ports"].as_array().into_iter().flatten().enumerate() {
        let path = format!("spec.ports[{index}]");
        check_keys(
            failures,
            &id,
            &path,
            port,
            &["name", "port", "targetPort", "appProtocol", "protocol"],
        );
        if !port["port"]
            .as_u64()
            .is_some_and(|p| (1..=65535).contains(&p))
        {
            failures.push(format!("{id}: {path}.port must be 1 to 65535"));
        }
        // Istio picks the protocol from appProtocol or the name prefix (http, grpc, tcp, ...).
        if !port["appProtocol"].is_string() {
            failures.push(format!(
                "{id}: {path}.appProtocol is missing, so Istio has to guess the protocol"
            ));
        }
    }
}

fn check_network_policy(failures: &mut Vec<String>, resource: &Resource) {
    let id = resource.id();
    let spec = &resource.value["spec"];
    check_keys(
        failures,
        &id,
        "spec",
        spec,
        &["podSelector", "policyTypes", "ingress", "egress"],
    );
    if !spec["podSelector"].is_object() {
        failures.push(format!("{id}: spec.podSelector is required"));
    }
    let types = spec["policyTypes"].as_array().cloned().unwrap_or_default();
    if types.is_empty() {
        failures.push(format!("{id}: spec.policyTypes must be set"));
    }
    for policy_type in &types {
        if policy_type != "Ingress" && policy_type != "Egress" {
            failures.push(format!(
                "{id}: policyTypes value {policy_type} must be Ingress or Egress"
            ));
        }
    }
    for (direction, peers_key) in [("ingress", "from"), ("egress", "to")] {
        for (index, rule) in spec[direction].as_array().into_iter().flatten().enumerate() {
            let path = format!("spec.{direction}[{index}]");
            check_keys(failures, &id, &path, rule, &[peers_key, "ports"]);
            for (peer_index, peer) in rule[peers_key].as_array().into_iter().flatten().enumerate() {
                check_keys(
                    failures,
                    &id,
                    &format!("{path}.{peers_key}[{peer_index}]"),
                    peer,
                    &["podSelector", "namespaceSelector", "ipBlock"],
                );
            }
            for port in rule["ports"].as_array().into_iter().flatten() {
                check_keys(
                    failures,
                    &id,
                    &format!("{path}.ports[]"),
                    port,
                    &["protocol", "port"],
                );
                let protocol = port["protocol"].as_str().unwrap_or("");
                if !["TCP", "UDP", "SCTP"].contains(&protocol) {
                    failures.push(format!(
                        "{id}: {path} port protocol {protocol:?} must be TCP, UDP or SCTP"
                    ));
                }
                if !port["port"]
                    .as_u64()
                    .is_some_and(|p| (1..=65535).contains(&p))
                {
                    failures.push(format!(
                        "{id}: {path} port {} must be a number from 1 to 65535",
                        port["port"]
                    ));
                }
            }
        }
    }
}

#[test]
fn core_resources_are_well_formed() {
    let resources = load_resources();
    let mut failures = Vec::new();
    for resource in resources.iter().filter(|r| !is_istio(r)) {
        let id = resource.id();
        check_keys(
            &mut failures,
            &id,
            "",
            &resource.value,
            &[
                "apiVersion",
                "kind",
                "metadata",
                "spec",
                "data",
                "stringData",
                "type",
            ],
        );
        let known = matches!(
            (resource.api_version(), resource.kind()),
            (
                "v1",
                "Namespace" | "Service" | "ServiceAccount" | "ConfigMap" | "Secret"
            ) | ("apps/v1", "Deployment")
                | ("networking.k8s.io/v1", "NetworkPolicy")
        );
        if !known {
            failures.push(format!(
                "{id}: {} {} is not a kind this test checks",
                resource.api_version(),
                resource.kind()
            ));
            continue;
        }
        let metadata = &resource.value["metadata"];
        check_keys(
            &mut failures,
            &id,
            "metadata",
            metadata,
            &["name", "namespace", "labels", "annotations"],
        );
        if !is_dns_label(resource.name()) {
            failures.push(format!(
                "{id}: metadata.name {:?} is not a DNS label",
                resource.name()
            ));
        }
        if !metadata["labels"].is_null() {
            check_string_map(&mut failures, &id, "metadata.labels", &metadata["labels"]);
        }
        if resource.kind() == "Namespace" {
            if !resource.namespace().is_empty() {
                failures.push(format!("{id}: a Namespace has no metadata.namespace"));
            }
        } else if resource.namespace() != NAMESPACE {
            failures.push(format!("{id}: metadata.namespace must be {NAMESPACE}"));
        }
        match resource.kind() {
            "Deployment" => check_deployment(&mut failures, resource),
            "Service" => check_service(&mut failures, resource),
            "NetworkPolicy" => check_network_policy(&mut failures, resource),
            "ConfigMap" => check_string_map(&mut failures, &id, "data", &resource.value["data"]),
            "Secret" => {
                check_string_map(
                    &mut failures,
                    &id,
                    "stringData",
                    &resource.value["stringData"],
                );
                if resource.value["type"] != "Opaque" {
                    failures.push(format!("{id}: type must be Opaque"));
                }
            }
            _ => {}
        }
    }
    assert!(
        failures.is_empty(),
        "invalid resources:\n{}",
        failures.join("\n")
    );
}

#[test]
fn istio_resources_use_demo_namespaces() {
    for resource in load_resources().iter().filter(|r| is_istio(r)) {
        let expected = if resource.kind() == "RequestAuthentication" {
            GATEWAY_NAMESPACE
        } else {
            NAMESPACE
        };
        assert_eq!(
            resource.namespace(),
            expected,
            "{}: metadata.namespace",
            resource.id()
        );
    }
}

#[test]
fn namespace_has_sidecar_injection() {
    let resources = load_resources();
    let namespace = find(&resources, "Namespace", NAMESPACE);
    assert_eq!(
        namespace.value["metadata"]["labels"]["istio-injection"],
        "enabled"
    );
}

// ---------------------------------------------------------------------------------------------
// The WasmPlugin and the filter configuration

fn wasm_plugin(resources: &[Resource]) -> &Resource {
    let plugins = of_kind(resources, "WasmPlugin");
    assert_eq!(
        plugins.len(),
        1,
        "expected exactly one WasmPlugin in istio/*.yaml"
    );
    plugins[0]
}

/// Names of the `vmConfig.env` variables the WasmPlugin takes from the proxy (`valueFrom: HOST`).
fn host_env_names(plugin: &Resource) -> Vec<String> {
    plugin.value["spec"]["vmConfig"]["env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|env| env["valueFrom"] == "HOST")
        .map(|env| env["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn plugin_config_compiles() {
    let resources = load_resources();
    let plugin = wasm_plugin(&resources);
    let plugin_config = &plugin.value["spec"]["pluginConfig"];
    assert!(
        plugin_config.is_object(),
        "{}: spec.pluginConfig is missing",
        plugin.id()
    );
    let json = serde_json::to_vec(plugin_config).unwrap();

    // Every variable the manifest declares gets a dummy 32-byte secret, in base64url as the
    // configuration's `encoding` requires. A variable it does not declare reads as unset.
    let declared: BTreeMap<String, String> = plugin.value["spec"]["vmConfig"]["env"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|env| {
            let name = env["name"].as_str().unwrap().to_owned();
            let value = env["value"].as_str().map_or_else(
                || "ZHVtbXktdGVzdC1zZWNyZXQtMzItYnl0ZXMtbG9uZyEh".to_owned(),
                str::to_owned,
            );
            (name, value)
        })
        .collect();
    let env = |name: &str| declared.get(name).cloned();
    let config = meshguard::config::Config::from_json(&json, &env).unwrap_or_else(|error| {
        panic!(
            "{}: spec.pluginConfig is rejected by the filter: {error}",
            plugin.id()
        )
    });
    assert!(
        config.summary().starts_with("1 providers"),
        "{}",
        config.summary()
    );

    for provider in plugin_config["providers"].as_array().unwrap() {
        for secret in provider["hmac_secrets"].as_array().into_iter().flatten() {
            let name = secret["env"].as_str().unwrap();
            assert!(
                host_env_names(plugin)
                    .iter()
                    .any(|declared| declared == name),
                "{}: hmac_secrets env {name:?} is not in vmConfig.env with valueFrom: HOST",
                plugin.id()
            );
        }
    }
}

#[test]
fn plugin_config_rejects_misspelt_field() {
    let resources = load_resources();
    let mut config = wasm_plugin(&resources).value["spec"]["pluginConfig"].clone();
    config["default_actoin"] = json!("deny");
    let json = serde_json::to_vec(&config).unwrap();
    let env = |_: &str| Some("ZHVtbXktdGVzdC1zZWNyZXQtMzItYnl0ZXMtbG9uZyEh".to_owned());
    let error = meshguard::config::Config::from_json(&json, &env).unwrap_err();
    assert!(error.to_string().contains("default_actoin"), "{error}");
}

/// Top-level fields whose value differs between Envoy and Istio on purpose: the rate-limit
/// service is an Envoy cluster, whose name depends on the environment.
const ENVIRONMENT_FIELDS: &[&str] = &["rate_limit"];

#[test]
fn plugin_config_matches_envoy_config() {
    let resources = load_resources();
    let istio = wasm_plugin(&resources).value["spec"]["pluginConfig"].clone();
    let envoy: Value =
        serde_json::from_str(&read(&repo_root().join("envoy/meshguard.json"))).unwrap();

    let mut envoy_top = envoy.as_object().unwrap().clone();
    let mut istio_top = istio.as_object().unwrap().clone();
    for field in ENVIRONMENT_FIELDS {
        envoy_top.remove(*field);
        istio_top.remove(*field);
    }
    let envoy_providers = envoy_top.remove("providers").unwrap_or_default();
    let istio_providers = istio_top.remove("providers").unwrap_or_default();
    for (field, value) in &envoy_top {
        assert_eq!(
            istio_top.get(field),
            Some(value),
            "pluginConfig.{field} in istio/wasmplugin.yaml differs from envoy/meshguard.json"
        );
    }
    for field in istio_top.keys() {
        assert!(
            envoy_top.contains_key(field),
            "pluginConfig.{field} is not in envoy/meshguard.json"
        );
    }

    // Providers match apart from where the keys come from: an inline JWKS locally, Secrets in
    // the mesh.
    let strip_keys = |providers: &Value| -> Vec<Value> {
        providers
            .as_array()
            .unwrap()
            .iter()
            .map(|provider| {
                let mut provider = provider.clone();
                let object = provider.as_object_mut().unwrap();
                object.remove("jwks");
                object.remove("hmac_secrets");
                provider
            })
            .collect()
    };
    assert_eq!(strip_keys(&istio_providers), strip_keys(&envoy_providers));
}

#[test]
fn dev_key_absent_from_manifests() {
    let dev_key = read(&repo_root().join("envoy/dev-hs256.key"))
        .trim()
        .to_owned();
    assert!(dev_key.len() >= 32, "envoy/dev-hs256.key looks empty");
    for path in istio_yaml_files() {
        assert!(
            !read(&path).contains(&dev_key),
            "{} contains the development key",
            path.display()
        );
    }
    let resources = load_resources();
    let plugin = wasm_plugin(&resources);
    for provider in plugin.value["spec"]["pluginConfig"]["providers"]
        .as_array()
        .unwrap()
    {
        assert!(
            provider["jwks"].is_null(),
            "{}: providers use hmac_secrets, not an inline jwks",
            plugin.id()
        );
    }
}

/// The CEL rules (`x-kubernetes-validations`) of the WasmPlugin CRD that apply to this
/// manifest, which the schema check cannot evaluate.
#[test]
fn wasmplugin_cel_rules() {
    let resources = load_resources();
    let plugin = wasm_plugin(&resources);
    let spec = &plugin.value["spec"];

    let url = spec["url"].as_str().unwrap();
    let scheme = url
        .split_once("://")
        .map(|(scheme, _)| scheme)
        .unwrap_or("");
    assert!(
        ["oci", "file", "http", "https"].contains(&scheme),
        "url {url:?} must use oci, file, http or https"
    );

    let targets = ["selector", "targetRef", "targetRefs"]
        .iter()
        .filter(|field| !spec[**field].is_null())
        .count();
    assert!(
        targets <= 1,
        "only one of selector, targetRef and targetRefs may be set"
    );

    for env in spec["vmConfig"]["env"].as_array().into_iter().flatten() {
        if env["valueFrom"] == "HOST" {
            assert!(
                env["value"].is_null(),
                "vmConfig.env {}: value may only be set when valueFrom is INLINE",
                env["name"]
            );
        }
    }
    for key in spec["selector"]["matchLabels"].as_object().unwrap().keys() {
        assert!(
            !key.is_empty() && !key.contains('*'),
            "selector label key {key:?}"
        );
    }
}

#[test]
fn wasmplugin_settings() {
    let resources = load_resources();
    let spec = &wasm_plugin(&resources).value["spec"];
    assert_eq!(spec["phase"], "AUTHN");
    assert_eq!(spec["failStrategy"], "FAIL_CLOSE");
    assert!(spec["url"].as_str().unwrap().starts_with("oci://"));
    assert!(spec["imagePullPolicy"].is_string());
    assert_eq!(
        spec["match"],
        json!([{"mode": "SERVER", "ports": [{"number": 8080}]}])
    );
}

// ---------------------------------------------------------------------------------------------
// References between resources

fn deployments_in<'a>(resources: &'a [Resource], namespace: &str) -> Vec<&'a Resource> {
    of_kind(resources, "Deployment")
        .into_iter()
        .filter(|d| d.namespace() == namespace)
        .collect()
}

fn pod_labels(deployment: &Resource) -> &Value {
    &deployment.value["spec"]["template"]["metadata"]["labels"]
}

fn pod_spec(deployment: &Resource) -> &Value {
    &deployment.value["spec"]["template"]["spec"]
}

/// Returns the Deployments in the namespace whose pods a label selector selects.
fn selected<'a>(resources: &'a [Resource], namespace: &str, selector: &Value) -> Vec<&'a Resource> {
    deployments_in(resources, namespace)
        .into_iter()
        .filter(|d| labels_match(selector, pod_labels(d)))
        .collect()
}

fn container_ports(deployment: &Resource) -> Vec<(String, u64)> {
    pod_spec(deployment)["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(declared_ports)
        .collect()
}

#[test]
fn wasmplugin_selects_orders() {
    let resources = load_resources();
    let plugin = wasm_plugin(&resources);
    let selector = &plugin.value["spec"]["selector"]["matchLabels"];
    assert_eq!(selector, &json!({"app": "orders"}));
    let orders = find(&resources, "Deployment", "orders");
    assert!(
        labels_match(selector, pod_labels(orders)),
        "the WasmPlugin selector does not match the orders pods"
    );
    assert_eq!(
        selected(&resources, NAMESPACE, selector).len(),
        1,
        "the WasmPlugin must select the orders pods only"
    );
    let port = plugin.value["spec"]["match"][0]["ports"][0]["number"].clone();
    assert!(
        port_matches(&port, &container_ports(orders)),
        "WasmPlugin port {port} is not a port of orders"
    );
}

#[test]
fn proxy_env_provides_host_variables() {
    let resources = load_resources();
    let plugin = wasm_plugin(&resources);
    let orders = find(&resources, "Deployment", "orders");
    let proxy = pod_spec(orders)["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "istio-proxy")
        .expect("orders has no istio-proxy override container to set the proxy environment");
    let names: Vec<&str> = proxy["env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    for name in host_env_names(plugin) {
        assert!(
            names.contains(&name.as_str()),
            "the orders istio-proxy container does not set {name}"
        );
    }
}

#[test]
fn services_select_deployments() {
    let resources = load_resources();
    for service in of_kind(&resources, "Service") {
        let selector = &service.value["spec"]["selector"];
        let targets = selected(&resources, service.namespace(), selector);
        assert_eq!(
            targets.len(),
            1,
            "{}: selector {selector} must select exactly one Deployment",
            service.id()
        );
        let ports = container_ports(targets[0]);
        for port in service.value["spec"]["ports"].as_array().unwrap() {
            let target = if port["targetPort"].is_null() {
                &port["port"]
            } else {
                &port["targetPort"]
            };
            assert!(
                port_matches(target, &ports),
                "{}: targetPort {target} is not a container port of {}",
                service.id(),
                targets[0].id()
            );
        }
    }
}

#[test]
fn deployments_use_own_service_accounts() {
    let resources = load_resources();
    for deployment in of_kind(&resources, "Deployment") {
        let account = pod_spec(deployment)["serviceAccountName"]
            .as_str()
            .unwrap_or("");
        let found = of_kind(&resources, "ServiceAccount")
            .iter()
            .any(|sa| sa.name() == account && sa.namespace() == deployment.namespace());
        assert!(
            found,
            "{}: serviceAccountName {account:?} is not defined in istio/*.yaml",
            deployment.id()
        );
    }
}

#[test]
fn deployments_reference_defined_objects() {
    let resources = load_resources();
    for deployment in of_kind(&resources, "Deployment") {
        let pod = pod_spec(deployment);
        for volume in pod["volumes"].as_array().into_iter().flatten() {
            if let Some(name) = volume["configMap"]["name"].as_str() {
                find(&resources, "ConfigMap", name);
            }
        }
        for container in pod["containers"].as_array().unwrap() {
            for env in container["env"].as_array().into_iter().flatten() {
                let reference = &env["valueFrom"]["secretKeyRef"];
                if reference.is_null() {
                    continue;
                }
                let name = reference["name"].as_str().unwrap();
                let key = reference["key"].as_str().unwrap();
                if EXTERNAL_SECRETS.contains(&(name, key)) {
                    continue;
                }
                let secret = find(&resources, "Secret", name);
                assert!(
                    secret.value["stringData"][key].is_string()
                        || secret.value["data"][key].is_string(),
                    "{}: Secret {name} has no key {key}",
                    deployment.id()
                );
            }
        }
    }
}

#[test]
fn external_secrets_documented() {
    let readme = read(&repo_root().join("istio/README.md"));
    for (name, key) in EXTERNAL_SECRETS {
        assert!(
            readme.contains(name) && readme.contains(key),
            "istio/README.md must say how to create Secret {name} with key {key}"
        );
    }
}

/// Formats the principal of a Kubernetes service account as AuthorizationPolicy expects it.
fn principal(namespace: &str, account: &str) -> String {
    format!("{TRUST_DOMAIN}/ns/{namespace}/sa/{account}")
}

#[test]
fn authorization_policies_match_workloads() {
    let resources = load_resources();
    let policies = of_kind(&resources, "AuthorizationPolicy");

    let deny_all: Vec<_> = policies
        .iter()
        .filter(|p| p.value["spec"] == json!({}))
        .collect();
    assert_eq!(
        deny_all.len(),
        1,
        "expected one allow-nothing AuthorizationPolicy with an empty spec"
    );

    let accounts: Vec<String> = deployments_in(&resources, NAMESPACE)
        .iter()
        .map(|d| {
            principal(
                NAMESPACE,
                pod_spec(d)["serviceAccountName"].as_str().unwrap(),
            )
        })
        .collect();
    for policy in policies.iter().filter(|p| p.value["spec"] != json!({})) {
        let spec = &policy.value["spec"];
        assert_eq!(spec["action"], "ALLOW", "{}", policy.id());
        let targets = selected(
            &resources,
            policy.namespace(),
            &spec["selector"]["matchLabels"],
        );
        assert_eq!(
            targets.len(),
            1,
            "{}: selector must select exactly one Deployment",
            policy.id()
        );
        let ports = container_ports(targets[0]);
        for rule in spec["rules"].as_array().unwrap() {
            for source in rule["from"].as_array().unwrap() {
                for principal in source["source"]["principals"].as_array().unwrap() {
                    let principal = principal.as_str().unwrap();
                    let from_gateway =
                        principal.starts_with(&format!("{TRUST_DOMAIN}/ns/{GATEWAY_NAMESPACE}/"));
                    assert!(
                        from_gateway || accounts.iter().any(|account| account == principal),
                        "{}: principal {principal} is neither the gateway nor a service account of {NAMESPACE}",
                        policy.id()
                    );
                }
            }
            for target in rule["to"].as_array().unwrap() {
                for port in target["operation"]["ports"].as_array().unwrap() {
                    let number: u64 = port.as_str().unwrap().parse().unwrap();
                    assert!(
                        port_matches(&json!(number), &ports),
                        "{}: port {number} is not a port of {}",
                        policy.id(),
                        targets[0].id()
                    );
                }
            }
        }
    }

    let allows = |target: &str, source: &str, port: &str| {
        policies.iter().any(|policy| {
            let spec = &policy.value["spec"];
            spec["selector"]["matchLabels"]["app"] == target
                && spec["rules"].as_array().into_iter().flatten().any(|rule| {
                    rule["from"][0]["source"]["principals"]
                        .as_array()
                        .unwrap()
                        .contains(&json!(source))
                        && rule["to"][0]["operation"]["ports"]
                            .as_array()
                            .unwrap()
                            .contains(&json!(port))
                })
        })
    };
    let gateway = principal(GATEWAY_NAMESPACE, "istio-ingressgateway-service-account");
    assert!(
        allows("orders", &gateway, "8080"),
        "the gateway may not reach orders"
    );
    assert!(
        allows(
            "meshguard-ratelimit",
            &principal(NAMESPACE, "orders"),
            "8081"
        ),
        "orders may not reach the rate-limit gRPC port"
    );
}

#[test]
fn network_policies_match_workloads() {
    let resources = load_resources();
    let policies = of_kind(&resources, "NetworkPolicy");
    assert!(
        policies
            .iter()
            .any(|p| p.value["spec"]["podSelector"] == json!({})
                && p.value["spec"]["policyTypes"] == json!(["Ingress"])
                && p.value["spec"]["ingress"].is_null()),
        "expected a default-deny ingress NetworkPolicy"
    );
    for policy in policies {
        let spec = &policy.value["spec"];
        let selector = spec["podSelector"]["matchLabels"].clone();
        if selector.is_null() {
            continue;
        }
        let targets = selected(&resources, NAMESPACE, &selector);
        assert_eq!(
            targets.len(),
            1,
            "{}: podSelector must select exactly one Deployment",
            policy.id()
        );
        for rule in spec["ingress"].as_array().into_iter().flatten() {
            for port in rule["ports"].as_array().unwrap() {
                assert!(
                    port_matches(&port["port"], &container_ports(targets[0])),
                    "{}: ingress port {} is not a port of {}",
                    policy.id(),
                    port["port"],
                    targets[0].id()
                );
            }
            for peer in rule["from"].as_array().unwrap() {
                // A peer without namespaceSelector is a pod of this namespace.
                if peer["namespaceSelector"].is_null() {
                    let peers =
                        selected(&resources, NAMESPACE, &peer["podSelector"]["matchLabels"]);
                    assert_eq!(
                        peers.len(),
                        1,
                        "{}: from.podSelector must select one Deployment",
                        policy.id()
                    );
                }
            }
        }
        for rule in spec["egress"].as_array().into_iter().flatten() {
            for peer in rule["to"].as_array().unwrap() {
                if peer["namespaceSelector"].is_null() {
                    let peers =
                        selected(&resources, NAMESPACE, &peer["podSelector"]["matchLabels"]);
                    assert_eq!(
                        peers.len(),
                        1,
                        "{}: to.podSelector must select one Deployment",
                        policy.id()
                    );
                    for port in rule["ports"].as_array().unwrap() {
                        assert!(
                            port_matches(&port["port"], &container_ports(peers[0])),
                            "{}: egress port {}",
                            policy.id(),
                            port["port"]
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn ratelimit_limits_parse() {
    let resources = load_resources();
    let config_map = find(&resources, "ConfigMap", "meshguard-ratelimit-limits");
    let text = config_map.value["data"]["limits.yaml"]
        .as_str()
        .expect("data.limits.yaml is missing");
    let documents = parse_yaml_documents(
        text,
        "ConfigMap meshguard-ratelimit-limits data.limits.yaml",
    );
    assert_eq!(documents.len(), 1);
    let limits = &documents[0];
    assert_eq!(limits["domain"], "meshguard");

    // The limits-file format of meshguard-ratelimit: descriptors with entries and limits.
    let mut names = Vec::new();
    for descriptor in limits["descriptors"].as_array().unwrap() {
        let name = descriptor["name"].as_str().unwrap();
        names.push(name);
        let keys: Vec<&str> = descriptor["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["key"].as_str().unwrap())
            .collect();
        assert_eq!(
            keys,
            ["endpoint", "remote_address", "subject"],
            "descriptor {name}"
        );
        for limit in descriptor["limits"].as_array().unwrap() {
            assert!(
                limit["requests"].as_u64().is_some_and(|n| n > 0),
                "descriptor {name}: requests"
            );
            let window = limit["window"].as_str().unwrap();
            let (number, unit) = window.split_at(window.len() - 1);
            assert!(
                number.parse::<u64>().is_ok_and(|n| n > 0) && ["s", "m", "h", "d"].contains(&unit),
                "descriptor {name}: window {window:?}"
            );
        }
    }
    assert_eq!(
        names,
        [
            "login",
            "register",
            "dataset_upload",
            "ai_analysis",
            "compute_jobs",
            "default"
        ]
    );

    let envoy_limits = repo_root().join("envoy/ratelimit.yaml");
    if envoy_limits.exists() {
        let expected = parse_yaml_documents(&read(&envoy_limits), "envoy/ratelimit.yaml");
        assert_eq!(
            documents, expected,
            "the ConfigMap limits differ from envoy/ratelimit.yaml"
        );
    }
}

#[test]
fn ratelimit_deployment_wiring() {
    let resources = load_resources();
    let deployment = find(&resources, "Deployment", "meshguard-ratelimit");
    let container = &pod_spec(deployment)["containers"][0];
    let env: HashMap<&str, &Value> = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap(), e))
        .collect();
    assert_eq!(env["MESHGUARD_RL_GRPC_ADDR"]["value"], "0.0.0.0:8081");
    assert_eq!(env["MESHGUARD_RL_HTTP_ADDR"]["value"], "0.0.0.0:8082");
    assert!(
        env["MESHGUARD_RL_REDIS_URL"]["valueFrom"]["secretKeyRef"].is_object(),
        "the Redis URL must come from a Secret"
    );
    assert_eq!(
        container["readinessProbe"]["httpGet"],
        json!({"path": "/healthz", "port": "http"})
    );

    let config = env["MESHGUARD_RL_CONFIG"]["value"].as_str().unwrap();
    let mount = container["volumeMounts"][0]["mountPath"].as_str().unwrap();
    assert_eq!(
        config,
        format!("{mount}/limits.yaml"),
        "MESHGUARD_RL_CONFIG is not the mounted limits file"
    );

    let service = find(&resources, "Service", "meshguard-ratelimit");
    let grpc = service.value["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "grpc")
        .unwrap();
    assert_eq!(grpc["port"], 8081);
    assert_eq!(grpc["appProtocol"], "grpc");
}

#[test]
fn readme_names_ratelimit_cluster() {
    let readme = read(&repo_root().join("istio/README.md"));
    assert!(readme.contains("outbound|8081||meshguard-ratelimit.meshguard-demo.svc.cluster.local"));
}

// ---------------------------------------------------------------------------------------------
// compose.yaml

#[test]
fn compose_services_defined() {
    let text = read(&repo_root().join("compose.yaml"));
    let documents = parse_yaml_documents(&text, "compose.yaml");
    assert_eq!(documents.len(), 1);
    let services = documents[0]["services"]
        .as_object()
        .expect("compose.yaml has no services");
    for name in ["envoy", "echo", "meshguard-ratelimit", "redis"] {
        assert!(
            services.contains_key(name),
            "compose.yaml has no service {name}"
        );
    }
    for (name, service) in services {
        let dockerfile = service["build"]["dockerfile"].as_str();
        if let Some(dockerfile) = dockerfile {
            assert!(
                repo_root().join(dockerfile).exists(),
                "service {name}: {dockerfile} does not exist"
            );
        }
    }
    let envoy = &services["envoy"];
    let working_dir = envoy["working_dir"].as_str().unwrap();
    assert!(
        envoy["volumes"].as_array().unwrap().iter().any(|v| v.as_str().is_some_and(|v| v.starts_with(&format!(".:{working_dir}")))),
        "the envoy service must mount the repository at its working_dir, where envoy/envoy.yaml's relative paths resolve"
    );

    let compose_limits = documents[0]["configs"]["ratelimit-limits"]["content"]
        .as_str()
        .unwrap();
    let resources = load_resources();
    let config_map = find(&resources, "ConfigMap", "meshguard-ratelimit-limits");
    let manifest_limits = config_map.value["data"]["limits.yaml"].as_str().unwrap();
    assert_eq!(
        parse_yaml_documents(compose_limits, "compose.yaml configs.ratelimit-limits"),
        parse_yaml_documents(manifest_limits, "istio/ratelimit.yaml"),
        "the limits in compose.yaml differ from the ConfigMap in istio/ratelimit.yaml"
    );
}
