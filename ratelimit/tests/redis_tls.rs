//! The Redis store over TLS (`rediss://`): a private redis-server with a test CA's certificate,
//! trusted through `ca_pem` (the `--redis-ca-file` setting).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use meshguard_dev::redis::RedisServer;
use meshguard_ratelimit::redis_url::RedisUrl;
use meshguard_ratelimit::server::StoreOptions;
use meshguard_ratelimit::store::redis::RedisOptions;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

struct TlsFiles {
    _dir: tempfile::TempDir,
    ca_pem: String,
    cert: String,
    key: String,
    ca: String,
}

/// Writes a CA certificate and a server certificate for 127.0.0.1 signed by it.
fn tls_files() -> TlsFiles {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server_cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&server_key, &ca)
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let (cert, key, ca_file) = (path("server.crt"), path("server.key"), path("ca.crt"));
    std::fs::write(&cert, server_cert.pem()).unwrap();
    std::fs::write(&key, server_key.serialize_pem()).unwrap();
    std::fs::write(&ca_file, ca.pem()).unwrap();
    TlsFiles {
        ca_pem: ca.pem(),
        _dir: dir,
        cert,
        key,
        ca: ca_file,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_url_with_ca_file_counts_hits() {
    let files = tls_files();
    let tls_port = meshguard_dev::free_port().unwrap().to_string();
    // The plain port stays open for the helper's PING; the service uses only the TLS port.
    let redis = RedisServer::start_with_args(&[
        "--tls-port",
        &tls_port,
        "--tls-cert-file",
        &files.cert,
        "--tls-key-file",
        &files.key,
        "--tls-ca-cert-file",
        &files.ca,
        "--tls-auth-clients",
        "no",
    ])
    .unwrap();
    let store = StoreOptions::Redis(RedisOptions {
        url: RedisUrl::parse(&format!("rediss://127.0.0.1:{tls_port}")).unwrap(),
        command_timeout: Duration::from_millis(2000),
        connect_timeout: Duration::from_millis(2000),
        ca_pem: Some(files.ca_pem.clone().into_bytes()),
    });
    let service = Service::start(&limits_file(&["{requests: 4, window: 1h}"]), store).await;
    let mut client = service.client().await;
    assert_eq!(allowed_of(&mut client, &[("k", "tls")], 6).await, 4);

    // The counters are in the TLS server's data set.
    let keys = meshguard_dev::redis::command(redis.port(), &["DBSIZE"]).unwrap();
    assert_eq!(keys, "1");
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_url_rejects_untrusted_certificate() {
    let files = tls_files();
    let tls_port = meshguard_dev::free_port().unwrap().to_string();
    let _redis = RedisServer::start_with_args(&[
        "--tls-port",
        &tls_port,
        "--tls-cert-file",
        &files.cert,
        "--tls-key-file",
        &files.key,
        "--tls-ca-cert-file",
        &files.ca,
        "--tls-auth-clients",
        "no",
    ])
    .unwrap();
    // Another CA than the one that signed the server certificate.
    let other = tls_files();
    let store = StoreOptions::Redis(RedisOptions {
        url: RedisUrl::parse(&format!("rediss://127.0.0.1:{tls_port}")).unwrap(),
        command_timeout: Duration::from_millis(2000),
        connect_timeout: Duration::from_millis(2000),
        ca_pem: Some(other.ca_pem.clone().into_bytes()),
    });
    let service = Service::start(&limits_file(&["{requests: 4, window: 1h}"]), store).await;
    let mut client = service.client().await;
    let error = client
        .should_rate_limit(request("test", vec![descriptor(&[("k", "tls")])], 0))
        .await
        .unwrap_err();
    assert_eq!(error.code(), tonic::Code::Unavailable, "{error:?}");
    service.stop().await;
}
