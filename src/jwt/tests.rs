use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use meshguard_dev::tokens::{hmac_signature, now, signing_input, SigningKey};
use serde_json::{json, Value};

use std::rc::Rc;

use super::*;

const ISSUER: &str = "https://issuer.test";

fn no_env(_: &str) -> Option<String> {
    None
}

fn key(name: &str) -> SigningKey {
    SigningKey::load(name).unwrap()
}

fn provider(jwks: Vec<Value>, extra: Value) -> ProviderSettings {
    let mut settings = json!({
        "name": "test",
        "issuer": ISSUER,
        "audiences": ["api"],
        "jwks": {"keys": jwks},
    });
    if let (Some(target), Some(extra)) = (settings.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            target.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(settings).unwrap()
}

fn verifier(jwks: Vec<Value>, extra: Value) -> Verifier {
    Verifier::compile(&[provider(jwks, extra)], 8192, &no_env).unwrap()
}

fn all_keys_verifier() -> Verifier {
    verifier(
        vec![
            key("hs256").public_jwk(Some("HS256")),
            key("rsa").public_jwk(Some("RS256")),
            key("p256").public_jwk(None),
            key("p384").public_jwk(None),
            key("ed25519").public_jwk(None),
        ],
        json!({}),
    )
}

fn claims() -> Value {
    let now = now();
    json!({"iss": ISSUER, "aud": "api", "sub": "alice", "exp": now + 300, "iat": now, "roles": ["admin"]})
}

fn with(mut base: Value, changes: Value) -> Value {
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            base.as_object_mut().unwrap().remove(k);
        } else {
            base[k] = v.clone();
        }
    }
    base
}

fn sign(key_name: &str, alg: &str, claims: &Value) -> String {
    key(key_name).sign(alg, claims, &json!({})).unwrap()
}

fn verify(v: &Verifier, token: &str) -> Result<Rc<VerifiedToken>, TokenError> {
    v.verify(token, now())
}

#[test]
fn accepts_each_key_type() {
    let v = all_keys_verifier();
    for (name, alg) in [
        ("hs256", "HS256"),
        ("rsa", "RS256"),
        ("p256", "ES256"),
        ("p384", "ES384"),
        ("ed25519", "EdDSA"),
    ] {
        let token = verify(&v, &sign(name, alg, &claims()));
        let token = token.unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(token.subject.as_deref(), Some("alice"), "{alg}");
        assert_eq!(token.roles, vec!["admin"], "{alg}");
    }
}

#[test]
fn accepts_rsa_pss_and_longer_hashes_when_pinned() {
    for alg in ["RS384", "RS512", "PS256", "PS384", "PS512"] {
        let v = verifier(vec![key("rsa").public_jwk(Some(alg))], json!({}));
        assert!(verify(&v, &sign("rsa", alg, &claims())).is_ok(), "{alg}");
    }
}

#[test]
fn rejects_alg_not_pinned_to_key() {
    let v = verifier(vec![key("rsa").public_jwk(Some("RS256"))], json!({}));
    let token = sign("rsa", "PS256", &claims());
    assert_eq!(
        verify(&v, &token).unwrap_err(),
        TokenError::AlgorithmNotAllowed
    );
}

#[test]
fn rejects_alg_outside_provider_list() {
    let v = verifier(
        vec![key("rsa").public_jwk(None)],
        json!({"algorithms": ["RS256", "PS256"]}),
    );
    assert!(verify(&v, &sign("rsa", "PS256", &claims())).is_ok());
    let token = sign("rsa", "RS512", &claims());
    assert_eq!(
        verify(&v, &token).unwrap_err(),
        TokenError::AlgorithmNotAllowed
    );
}

#[test]
fn rejects_alg_none_in_any_spelling() {
    let v = all_keys_verifier();
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = json!({"alg": alg, "typ": "JWT"});
        let unsigned = signing_input(&header, &claims()).unwrap();
        for token in [format!("{unsigned}."), format!("{unsigned}.c2ln")] {
            assert_eq!(
                verify(&v, &token).unwrap_err(),
                TokenError::AlgorithmNotAllowed,
                "{alg}: {token}"
            );
        }
    }
}

#[test]
fn rejects_hs256_signed_with_rsa_public_key() {
    let v = verifier(vec![key("rsa").public_jwk(Some("RS256"))], json!({}));
    let public = key("rsa").public_jwk(Some("RS256"));
    let header = json!({"alg": "HS256", "typ": "JWT", "kid": "test-rsa"});
    let signed = signing_input(&header, &claims()).unwrap();
    for secret in [
        public.to_string().into_bytes(),
        public["n"].as_str().unwrap().as_bytes().to_vec(),
    ] {
        let signature = hmac_signature("HS256", &secret, signed.as_bytes());
        let token = format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature));
        assert_eq!(
            verify(&v, &token).unwrap_err(),
            TokenError::AlgorithmNotAllowed
        );
    }
}

#[test]
fn rejects_wrong_issuer() {
    let v = all_keys_verifier();
    let token = sign(
        "rsa",
        "RS256",
        &with(claims(), json!({"iss": "https://evil.test"})),
    );
    assert_eq!(verify(&v, &token).unwrap_err(), TokenError::UnknownIssuer);
    let token = sign("rsa", "RS256", &with(claims(), json!({"iss": null})));
    assert_eq!(verify(&v, &token).unwrap_err(), TokenError::UnknownIssuer);
}

#[test]
fn rejects_wrong_audience() {
    let v = all_keys_verifier();
    for aud in [json!("other"), json!(["x", "y"]), json!([])] {
        let token = sign("rsa", "RS256", &with(claims(), json!({"aud": aud})));
        assert_eq!(
            verify(&v, &token).unwrap_err(),
            TokenError::AudienceMismatch,
            "{aud}"
        );
    }
    let token = sign("rsa", "RS256", &with(claims(), json!({"aud": null})));
    assert_eq!(
        verify(&v, &token).unwrap_err(),
        TokenError::AudienceMismatch
    );
}

#[test]
fn accepts_audience_array_overlap() {
    let v = all_keys_verifier();
    let token = sign(
        "rsa",
        "RS256",
        &with(claims(), json!({"aud": ["other", "api"]})),
    );
    assert!(verify(&v, &token).is_ok());
}

#[test]
fn rejects_non_string_audience() {
    let v = all_keys_verifier();
    let token = sign("rsa", "RS256", &with(claims(), json!({"aud": [1, "api"]})));
    assert_eq!(
        verify(&v, &token).unwrap_err(),
        TokenError::InvalidClaim("aud")
    );
}

#[test]
fn rejects_expired_beyond_leeway() {
    let v = all_keys_verifier();
    let expired = sign("rsa", "RS256", &with(claims(), json!({"exp": now() - 61})));
    assert_eq!(verify(&v, &expired).unwrap_err(), TokenError::Expired);
    let within_leeway = sign("rsa", "RS256", &with(claims(), json!({"exp": now() - 30})));
    assert!(verify(&v, &within_leeway).is_ok());
}

#[test]
fn leeway_is_configurable() {
    let v = verifier(
        vec![key("rsa").public_jwk(Some("RS256"))],
        json!({"leeway_seconds": 0}),
    );
    let token = sign("rsa", "RS256", &with(claims(), json!({"exp": now() - 1})));
    assert_eq!(verify(&v, &token).unwrap_err(), TokenError::Expired);
}

#[test]
fn rejects_not_yet_valid() {
    let v = all_keys_verifier();
    let token = sign("rsa", "RS256", &with(claims(), json!({"nbf": now() + 120})));
    assert_eq!(verify(&v, &token).unwrap_err(), TokenError::NotYetValid);
}

#[test]
fn rejects_issued_in_future() {
    let v = all_keys_verifier();
    let token = sign("rsa", "RS256", &with(claims(), json!({"iat": now() + 120})));
    assert_eq!(verify(&v, &token).unwrap_err(), TokenError::IssuedInFuture);
}

#[test]
fn requires_exp_by_default() {
    let v = all_keys_verifier();
    let token = sign("rsa", "RS256", &with(claims(), json!({"exp": null})));
    assert_eq!(
        verify(&v, &token).unwrap_err(),
        TokenError::MissingExpiration
    );
    let lenient = verifier(
        vec![key("rsa").public_jwk(Some("RS256"))],
        json!({"require_expiration": false}),
    );
    assert!(verify(&lenient, &token).is_ok());
}

#[test]
fn rejects_time_claims_that_are_not_numbers() {
    let v = all_keys_verifier();
    for (claim, value) in [
        ("exp", json!("9999999999")),
        ("nbf", json!(true)),
        ("iat", json!([1])),
    ] {
        let token = sign("rsa", "RS256", &with(claims(), json!({claim: value})));
        assert!(
            matches!(verify(&v, &token).unwrap_err(), TokenError::InvalidClaim(_)),
            "{claim}"
        );
    }
}

#[test]
fn accepts_fractional_exp() {
    let v = all_keys_verifier();
    let token = sign(
        "rsa",
        "RS256",
        &with(claims(), json!({"exp": now() as f64 + 100.5})),
    );
    assert!(verify(&v, &token).is_ok());
}

#[test]
fn rejects_tampered_payload() {
    let v = all_keys_verifier();
    let token = sign("hs256", "HS256", &claims());
    let parts: Vec<&str> = token.split('.').collect();
    let forged = with(claims(), json!({"roles": ["superuser"]}));
    let payload = URL_SAFE_NO_PAD.encode(forged.to_string());
    let tampered = format!("{}.{payload}.{}", parts[0], parts[2]);
    assert_eq!(
        verify(&v, &tampered).unwrap_err(),
        TokenError::InvalidSignature
    );
}

#[test]
fn rejects_signature_of_other_rsa_key() {
    let v = verifier(vec![key("rsa").public_jwk(Some("RS256"))], json!({}));
    let forged = key("rsa-other")
        .sign("RS256", &claims(), &json!({"kid": "test-rsa"}))
        .unwrap();
    assert_eq!(
        verify(&v, &forged).unwrap_err(),
        TokenError::InvalidSignature
    );
}

#[test]
fn rejects_truncated_tokens() {
    let v = all_keys_verifier();
    let token = sign("rsa", "RS256", &claims());
    let truncated_signature = &token[..token.len() - 10];
    assert!(verify(&v, truncated_signature).is_err());
    let two_parts: String = token.rsplit_once('.').unwrap().0.to_owned();
    assert!(matches!(
        verify(&v, &two_parts).unwrap_err(),
        TokenError::Malformed(_)
    ));
    assert!(matches!(
        verify(&v, "abc").unwrap_err(),
        TokenError::Malformed(_)
    ));
    assert!(matches!(
        verify(&v, "").unwrap_err(),
        TokenError::Malformed(_)
    ));
    assert!(matches!(
        verify(&v, "a.b.c.d").unwrap_err(),
        TokenError::Malformed(_)
    ));
}

#[test]
fn rejects_oversized_token_before_parsing() {
    let v = Verifier::compile(
        &[provider(
            vec![key("rsa").public_jwk(Some("RS256"))],
            json!({}),
        )],
        1024,
        &no_env,
    )
    .unwrap();
    let big = with(claims(), json!({"pad": "x".repeat(2000)}));
    let token = sign("rsa", "RS256", &big);
    assert_eq!(verify(&v, &token).unwrap_err(), TokenError::TooLarge(1024));
    assert_eq!(
        verify(&v, &"a".repeat(5000)).unwrap_err(),
        TokenError::TooLarge(1024)
    );
}

#[test]
fn rejects_unknown_crit() {
    let v = all_keys_verifier();
    let token = key("rsa")
        .sign(
            "RS256",
            &claims(),
            &json!({"crit": ["exp-ext"], "exp-ext": 1}),
        )
        .unwrap();
    assert_eq!(
        verify(&v, &token).unwrap_err(),
        TokenError::UnsupportedCritical
    );
}

#[test]
fn embedded_jwk_is_never_a_key_source() {
    let v = verifier(vec![key("rsa").public_jwk(Some("RS256"))], json!({}));
    let attacker = key("rsa-other");
    let header = json!({
        "jwk": attacker.public_jwk(Some("RS256")),
        "jku": "https://evil.test/jwks",
        "x5u": "https://evil.test/cert",
        "kid": "test-rsa",
    });
    let token = attacker.sign("RS256", &claims(), &header).unwrap();
    assert_eq!(
        verify(&v, &token).unwrap_err(),
        TokenError::InvalidSignature
    );
}

#[test]
fn unknown_kid_rejected() {
    let v = all_keys_verifier();
    let token = key("rsa")
        .sign("RS256", &claims(), &json!({"kid": "nope"}))
        .unwrap();
    assert_eq!(verify(&v, &token).unwrap_err(), TokenError::UnknownKey);
}

#[test]
fn token_without_kid_tries_keys_of_its_type() {
    let v = verifier(
        vec![
            key("rsa-other").public_jwk(Some("RS256")),
            key("rsa").public_jwk(Some("RS256")),
        ],
        json!({}),
    );
    let token = key("rsa")
        .sign("RS256", &claims(), &json!({"kid": null}))
        .unwrap();
    assert!(verify(&v, &token).is_ok());
}

#[test]
fn kid_selects_only_within_matching_provider() {
    let other = ProviderSettings {
        name: "other".into(),
        issuer: "https://other.test".into(),
        ..provider(vec![key("rsa-other").public_jwk(Some("RS256"))], json!({}))
    };
    let mine = provider(vec![key("rsa").public_jwk(Some("RS256"))], json!({}));
    let v = Verifier::compile(&[other, mine], 8192, &no_env).unwrap();
    // Signed by the other provider's key but claiming this issuer.
    let token = key("rsa-other")
        .sign("RS256", &claims(), &json!({}))
        .unwrap();
    assert_eq!(verify(&v, &token).unwrap_err(), TokenError::UnknownKey);
}

#[test]
fn token_type_claim_checked() {
    let v = verifier(
        vec![key("rsa").public_jwk(Some("RS256"))],
        json!({"token_type": {"claim": "type", "values": ["access"]}}),
    );
    let access = sign("rsa", "RS256", &with(claims(), json!({"type": "access"})));
    assert!(verify(&v, &access).is_ok());
    let refresh = sign("rsa", "RS256", &with(claims(), json!({"type": "refresh"})));
    assert_eq!(
        verify(&v, &refresh).unwrap_err(),
        TokenError::WrongTokenType
    );
    assert_eq!(
        verify(&v, &sign("rsa", "RS256", &claims())).unwrap_err(),
        TokenError::WrongTokenType
    );
}

#[test]
fn revoked_jti_rejected() {
    let v = verifier(
        vec![key("rsa").public_jwk(Some("RS256"))],
        json!({"revoked_token_ids": ["t-1"]}),
    );
    let revoked = sign("rsa", "RS256", &with(claims(), json!({"jti": "t-1"})));
    assert_eq!(verify(&v, &revoked).unwrap_err(), TokenError::Revoked);
    let other = sign("rsa", "RS256", &with(claims(), json!({"jti": "t-2"})));
    assert!(verify(&v, &other).is_ok());
}

#[test]
fn roles_from_nested_and_space_separated_claims() {
    let v = verifier(
        vec![key("rsa").public_jwk(Some("RS256"))],
        json!({"roles_claim": "realm_access.roles"}),
    );
    let token = sign(
        "rsa",
        "RS256",
        &with(claims(), json!({"realm_access": {"roles": ["ops"]}})),
    );
    assert_eq!(verify(&v, &token).unwrap().roles, vec!["ops"]);
    let v = verifier(
        vec![key("rsa").public_jwk(Some("RS256"))],
        json!({"roles_claim": "scope"}),
    );
    let token = sign(
        "rsa",
        "RS256",
        &with(claims(), json!({"scope": "read write"})),
    );
    assert_eq!(verify(&v, &token).unwrap().roles, vec!["read", "write"]);
}

#[test]
fn hmac_secret_from_environment() {
    let settings: ProviderSettings = serde_json::from_value(json!({
        "name": "env",
        "issuer": ISSUER,
        "hmac_secrets": [{"kid": "k1", "alg": "HS256", "env": "SECRET"}],
    }))
    .unwrap();
    let env = |name: &str| (name == "SECRET").then(|| "s".repeat(32));
    let v = Verifier::compile(std::slice::from_ref(&settings), 8192, &env).unwrap();
    let token = SigningKey::hmac("k1", "s".repeat(32).as_bytes())
        .sign("HS256", &claims(), &json!({}))
        .unwrap();
    assert!(verify(&v, &token).is_ok());
    let err = Verifier::compile(&[settings], 8192, &no_env).unwrap_err();
    assert_eq!(err.path, "providers[0].hmac_secrets[0].env");
    assert!(err.message.contains("SECRET"), "{err}");
}

#[test]
fn config_errors_name_key_field() {
    let bad = provider(
        vec![json!({"kty": "RSA", "n": "AQAB", "e": "AQAB", "alg": "RS256"})],
        json!({}),
    );
    let err = Verifier::compile(&[bad], 8192, &no_env).unwrap_err();
    assert_eq!(err.path, "providers[0].jwks.keys[0]");
    assert!(err.message.contains("2048"), "{err}");
    let unknown_alg = provider(
        vec![key("rsa").public_jwk(None)],
        json!({"algorithms": ["RS257"]}),
    );
    let err = Verifier::compile(&[unknown_alg], 8192, &no_env).unwrap_err();
    assert_eq!(err.path, "providers[0].algorithms[0]");
    assert!(err.message.contains("RS257"));
}

#[test]
fn provider_without_keys_rejected() {
    let empty = provider(vec![], json!({}));
    let err = Verifier::compile(&[empty], 8192, &no_env).unwrap_err();
    assert_eq!(err.path, "providers[0]");
}

#[test]
fn duplicate_issuer_rejected() {
    let a = provider(vec![key("rsa").public_jwk(Some("RS256"))], json!({}));
    let err = Verifier::compile(&[a.clone(), a], 8192, &no_env).unwrap_err();
    assert_eq!(err.path, "providers[1].issuer");
}

#[test]
fn garbage_never_panics() {
    let v = all_keys_verifier();
    let samples = [
        "..",
        ".a.",
        "a..",
        "\u{0}.\u{0}.\u{0}",
        "eyJ.eyJ.eyJ",
        "e30.e30.e30",
        "W10.W10.AA",
        "eyJhbGciOiJIUzI1NiJ9.bnVsbA.AA",
        "eyJhbGciOjF9.e30.AA",
    ];
    for token in samples {
        assert!(verify(&v, token).is_err(), "{token:?}");
    }
}

fn cached_verifier() -> Verifier {
    let settings = provider(vec![key("rsa").public_jwk(Some("RS256"))], json!({}));
    Verifier::compile_with_cache(&[settings], 8192, 16, &no_env).unwrap()
}

#[test]
fn cached_token_is_checked_for_expiry_again() {
    let v = cached_verifier();
    let jwt = sign("rsa", "RS256", &claims());
    let first = v.verify(&jwt, now()).unwrap();
    let second = v.verify(&jwt, now()).unwrap();
    assert!(
        Rc::ptr_eq(&first, &second),
        "second use should come from the cache"
    );
    assert_eq!(
        v.verify(&jwt, now() + 3600).unwrap_err(),
        TokenError::Expired
    );
}

#[test]
fn cache_never_serves_a_different_token() {
    let v = cached_verifier();
    let jwt = sign("rsa", "RS256", &claims());
    v.verify(&jwt, now()).unwrap();
    let mut tampered = jwt.clone();
    tampered.pop();
    tampered.push('A');
    if tampered != jwt {
        assert!(v.verify(&tampered, now()).is_err());
    }
    let two = format!("{jwt} ");
    assert!(v.verify(&two, now()).is_err());
}

#[test]
fn cache_is_bounded() {
    let settings = provider(vec![key("hs256").public_jwk(Some("HS256"))], json!({}));
    let v = Verifier::compile_with_cache(&[settings], 8192, 2, &no_env).unwrap();
    let tokens: Vec<String> = (0..3)
        .map(|i| {
            sign(
                "hs256",
                "HS256",
                &with(claims(), json!({"jti": format!("t{i}")})),
            )
        })
        .collect();
    let first = v.verify(&tokens[0], now()).unwrap();
    v.verify(&tokens[1], now()).unwrap();
    v.verify(&tokens[2], now()).unwrap();
    let again = v.verify(&tokens[0], now()).unwrap();
    assert!(
        !Rc::ptr_eq(&first, &again),
        "the oldest entry should have been evicted"
    );
}
