//! An HTTP upstream that answers every request with a JSON echo of what it received:
//! `{"method", "path", "headers": [[name, value], ...], "body"}`.
//!
//! The request header `x-echo-set-header: NAME=VALUE` (repeatable) makes the echo add that
//! response header, so tests can check what the filter does with upstream response headers.
//! Every response carries `server: meshguard-echo`.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;

/// A running echo server on a background thread; it stops with the process.
#[derive(Debug)]
pub struct EchoServer {
    /// Listening address.
    pub addr: SocketAddr,
}

impl EchoServer {
    /// Starts an echo server on 127.0.0.1 with an OS-chosen port.
    pub fn start() -> anyhow::Result<Self> {
        Self::start_on("127.0.0.1:0".parse()?)
    }

    /// Starts an echo server on `addr` in a thread of its own.
    pub fn start_on(addr: SocketAddr) -> anyhow::Result<Self> {
        let std_listener = std::net::TcpListener::bind(addr)?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        std::thread::Builder::new()
            .name("echo-upstream".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(err) => {
                        eprintln!("echo upstream: failed to start a runtime: {err}");
                        return;
                    }
                };
                runtime.block_on(async move {
                    match TcpListener::from_std(std_listener) {
                        Ok(listener) => serve(listener).await,
                        Err(err) => eprintln!("echo upstream: failed to listen: {err}"),
                    }
                });
            })?;
        Ok(Self { addr })
    }
}

/// Serves connections on `listener` until the process ends.
pub async fn serve(listener: TcpListener) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                eprintln!("echo upstream: accept failed: {err}");
                continue;
            }
        };
        tokio::spawn(async move {
            let connection =
                http1::Builder::new().serve_connection(TokioIo::new(stream), service_fn(echo));
            if let Err(err) = connection.await {
                eprintln!("echo upstream: connection error: {err}");
            }
        });
    }
}

async fn echo(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let headers: Vec<Value> = parts
        .headers
        .iter()
        .map(|(name, value)| json!([name.as_str(), String::from_utf8_lossy(value.as_bytes())]))
        .collect();
    let echo = json!({
        "method": parts.method.as_str(),
        "path": parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"),
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
    });
    let mut response = Response::builder()
        .header("content-type", "application/json")
        .header("server", "meshguard-echo");
    for value in parts.headers.get_all("x-echo-set-header") {
        if let Some((name, value)) = value.to_str().ok().and_then(|v| v.split_once('=')) {
            response = response.header(name.trim(), value.trim());
        }
    }
    let body = Full::new(Bytes::from(echo.to_string()));
    Ok(response
        .body(body.clone())
        .unwrap_or_else(|_| Response::new(body)))
}
