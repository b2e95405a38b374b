//! Prints a token signed with the development HS256 key (`envoy/dev-hs256.key`), valid for
//! the local configuration in `envoy/meshguard.json`.

use anyhow::Context as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use clap::Parser;
use meshguard_dev::tokens::{now, SigningKey};
use serde_json::json;

/// Signs a development token.
#[derive(Parser)]
struct Args {
    /// Subject (`sub` claim).
    #[arg(long, default_value = "alice")]
    sub: String,
    /// Roles, comma-separated (`roles` claim).
    #[arg(long, default_value = "")]
    roles: String,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    ttl: u64,
    /// Value of the `type` claim; the local configuration accepts `access`.
    #[arg(long = "type", default_value = "access")]
    token_type: String,
    /// Issuer (`iss` claim).
    #[arg(long, default_value = "https://auth.meshguard.local")]
    issuer: String,
    /// Audience (`aud` claim).
    #[arg(long, default_value = "meshguard-demo")]
    audience: String,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let key_path = meshguard_dev::workspace_root().join("envoy/dev-hs256.key");
    let encoded = std::fs::read_to_string(&key_path)
        .with_context(|| format!("failed to read {}", key_path.display()))?;
    let secret = URL_SAFE_NO_PAD
        .decode(encoded.trim())
        .with_context(|| format!("{} is not base64url", key_path.display()))?;
    let roles: Vec<&str> = args.roles.split(',').filter(|r| !r.is_empty()).collect();
    let issued = now();
    let claims = json!({
        "iss": args.issuer,
        "aud": args.audience,
        "sub": args.sub,
        "roles": roles,
        "type": args.token_type,
        "iat": issued,
        "exp": issued + args.ttl,
    });
    let token = SigningKey::hmac("dev-hs256", &secret).sign("HS256", &claims, &json!({}))?;
    println!("{token}");
    Ok(())
}
