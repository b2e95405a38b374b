//! Development tools for meshguard: the test harness that runs real Envoy and Redis processes,
//! the echo upstream and a token signer.

pub mod echo;
pub mod envoy;
pub mod http;
pub mod redis;
pub mod tokens;

use std::path::PathBuf;

/// The workspace root, where `envoy/`, `target/` and the key fixtures are.
pub fn workspace_root() -> PathBuf {
    let dev_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    dev_dir.parent().map(PathBuf::from).unwrap_or(dev_dir)
}

/// Returns a TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}
