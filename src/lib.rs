//! meshguard: a proxy-wasm HTTP filter for Envoy.

pub mod waf;
