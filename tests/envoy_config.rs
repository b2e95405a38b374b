//! The shipped Envoy configurations, and Envoy's handling of invalid plugin configurations.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};

use meshguard::config::Config;
use meshguard_dev::echo::EchoServer;
use meshguard_dev::envoy::{validate, Envoy, EnvoyConfig};
use meshguard_dev::workspace_root;
use serde_json::{json, Value};

/// Every Envoy bootstrap the repository ships: `envoy/envoy*.yaml` and `bench/envoy-*.yaml`.
fn shipped_envoy_configs() -> Vec<PathBuf> {
    let mut configs = Vec::new();
    for dir in ["envoy", "bench"] {
        for entry in std::fs::read_dir(workspace_root().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if name.starts_with("envoy") && name.ends_with(".yaml") {
                configs.push(path);
            }
        }
    }
    configs.sort();
    configs
}

#[test]
fn shipped_envoy_configs_validate() {
    let configs = shipped_envoy_configs();
    assert!(!configs.is_empty(), "no envoy/*.yaml found");
    for config in configs {
        validate(&config).unwrap_or_else(|e| panic!("{e:#}"));
    }
}

/// Reads the block scalar that follows `value: |` in an Envoy YAML file.
fn inline_plugin_config(yaml_path: &Path) -> Value {
    let yaml = std::fs::read_to_string(yaml_path).unwrap();
    let mut lines = yaml
        .lines()
        .skip_while(|line| !line.trim_end().ends_with("value: |"));
    let key_line = lines.next().expect("no `value: |` block");
    let key_indent = key_line.len() - key_line.trim_start().len();
    let block: Vec<&str> = lines
        .take_while(|line| {
            line.trim().is_empty() || line.len() - line.trim_start().len() > key_indent
        })
        .collect();
    serde_json::from_str(&block.join("\n")).expect("inline configuration is not JSON")
}

fn shipped_plugin_config() -> Value {
    let text = std::fs::read_to_string(workspace_root().join("envoy/meshguard.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn envoy_yaml_embeds_meshguard_json() {
    let embedded = inline_plugin_config(&workspace_root().join("envoy/envoy.yaml"));
    assert_eq!(
        embedded,
        shipped_plugin_config(),
        "envoy/envoy.yaml must embed envoy/meshguard.json unchanged"
    );
}

#[test]
fn bench_configs_embed_meshguard_json() {
    let cases = [
        ("bench/envoy-meshguard.yaml", &["rate_limit"][..]),
        (
            "bench/envoy-meshguard-auth.yaml",
            &["rate_limit", "waf"][..],
        ),
    ];
    for (file, removed) in cases {
        let embedded = inline_plugin_config(&workspace_root().join(file));
        let mut expected = shipped_plugin_config();
        for section in removed {
            expected.as_object_mut().unwrap().remove(*section);
        }
        assert_eq!(
            embedded, expected,
            "{file} must embed envoy/meshguard.json less {removed:?}"
        );
    }
}

#[test]
fn shipped_plugin_config_compiles() {
    let json = serde_json::to_vec(&shipped_plugin_config()).unwrap();
    Config::from_json(&json, &|_| None).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn dev_key_file_matches_shipped_jwks() {
    let key = std::fs::read_to_string(workspace_root().join("envoy/dev-hs256.key")).unwrap();
    let config = shipped_plugin_config();
    let k = config["providers"][0]["jwks"]["keys"][0]["k"]
        .as_str()
        .unwrap();
    assert_eq!(k, key.trim());
}

fn start_with_config(plugin_config: Value) -> anyhow::Result<Envoy> {
    let upstream = EchoServer::start().unwrap();
    Envoy::start(&EnvoyConfig::new(plugin_config, upstream.addr))
}

#[test]
fn invalid_plugin_config_is_refused_with_field_path() {
    let cases = [
        (
            json!({"rules": [{"name": "a", "require": "public", "match": {"path": {"prefix": "/a/../b"}}}]}),
            "rules[0].match.path.prefix",
        ),
        (json!({"ruless": []}), "unknown field `ruless`"),
        (
            json!({"providers": [{"name": "p", "issuer": "i", "jwks": {"keys": [{"kty": "oct", "k": "c2hvcnQ", "alg": "HS256"}]}}]}),
            "providers[0].jwks.keys[0]",
        ),
        (
            json!({"providers": [{"name": "p", "issuer": "i", "hmac_secrets": [{"alg": "HS256", "env": "MESHGUARD_UNSET_VARIABLE"}]}]}),
            "MESHGUARD_UNSET_VARIABLE",
        ),
    ];
    for (config, expected) in cases {
        let err = match start_with_config(config.clone()) {
            Ok(envoy) => panic!("Envoy started with {config}:\n{}", envoy.logs()),
            Err(err) => format!("{err:#}"),
        };
        assert!(
            err.contains("invalid plugin configuration"),
            "{config}: {err}"
        );
        assert!(
            err.contains(expected),
            "{config}: expected {expected:?} in:\n{err}"
        );
    }
}

#[test]
fn config_that_is_not_json_is_refused() {
    let upstream = EchoServer::start().unwrap();
    let mut config = EnvoyConfig::new(json!({}), upstream.addr);
    config.plugin_config = Value::Null;
    let mut bootstrap = config.bootstrap().unwrap();
    let filter = bootstrap.pointer_mut(
        "/static_resources/listeners/0/filter_chains/0/filters/0/typed_config/http_filters/0/typed_config/config/configuration/value",
    );
    *filter.unwrap() = json!("rules: [");
    let err = Envoy::start_bootstrap(&bootstrap).unwrap_err();
    assert!(
        format!("{err:#}").contains("invalid plugin configuration"),
        "{err:#}"
    );
}
