//! Where a request's token comes from: the `Authorization: Bearer` header by default, or a
//! configured header, cookie or query parameter.
//!
//! A request that carries more than one token, an empty token, or a token spread over several
//! header lines is rejected, never treated as anonymous.

use serde::Deserialize;

use crate::config::ConfigError;

/// Default maximum token size in bytes.
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 8 * 1024;

/// The `token` section of the configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSettings {
    /// Places to look for a token, all checked on every request.
    #[serde(default = "default_sources")]
    pub sources: Vec<SourceSettings>,
    /// Tokens larger than this are rejected before parsing.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: usize,
    /// Number of verified tokens kept per Wasm VM so repeated tokens skip the signature
    /// check; 0 disables the cache.
    #[serde(default = "default_cache_size")]
    pub cache_size: usize,
}

impl Default for TokenSettings {
    fn default() -> Self {
        Self {
            sources: default_sources(),
            max_bytes: DEFAULT_MAX_TOKEN_BYTES,
            cache_size: DEFAULT_CACHE_SIZE,
        }
    }
}

fn default_sources() -> Vec<SourceSettings> {
    vec![SourceSettings::Bearer]
}

/// Default number of cached verified tokens.
pub const DEFAULT_CACHE_SIZE: usize = 1000;

fn default_cache_size() -> usize {
    DEFAULT_CACHE_SIZE
}

fn default_max_bytes() -> usize {
    DEFAULT_MAX_TOKEN_BYTES
}

/// One token source.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum SourceSettings {
    /// `Authorization: Bearer TOKEN`, scheme case-insensitive.
    Bearer,
    /// Another header, with an optional prefix before the token.
    Header {
        name: String,
        #[serde(default)]
        prefix: Option<String>,
    },
    /// A cookie.
    Cookie { name: String },
    /// A query parameter.
    Query { name: String },
}

/// A request's token, or the lack of one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The one token the request carries.
    pub token: Option<String>,
    /// Whether an `Authorization` header with a scheme other than Bearer was present.
    pub foreign_scheme: bool,
}

/// Why the request's credentials are unusable; the request gets 401 `invalid_request`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    #[error("request carries more than one token")]
    MultipleTokens,
    #[error("request carries an empty token")]
    EmptyToken,
    #[error("token is not valid UTF-8")]
    NotUtf8,
}

impl SourceError {
    /// Stable reason code.
    pub fn reason(self) -> &'static str {
        match self {
            SourceError::MultipleTokens => "multiple_tokens",
            SourceError::EmptyToken => "empty_token",
            SourceError::NotUtf8 => "token_malformed",
        }
    }
}

/// The compiled token sources.
#[derive(Debug, Clone)]
pub struct TokenSources {
    sources: Vec<SourceSettings>,
    max_bytes: usize,
    cache_size: usize,
}

impl TokenSources {
    /// Checks the settings.
    pub fn compile(settings: &TokenSettings) -> Result<Self, ConfigError> {
        if settings.sources.is_empty() {
            return Err(ConfigError::new(
                "token.sources",
                "must name at least one source",
            ));
        }
        if settings.max_bytes == 0 || settings.max_bytes > 64 * 1024 {
            return Err(ConfigError::invalid(
                "token.max_bytes",
                &settings.max_bytes.to_string(),
                "expected 1 to 65536",
            ));
        }
        let mut sources = Vec::with_capacity(settings.sources.len());
        for (i, source) in settings.sources.iter().enumerate() {
            sources.push(compile_source(source, &format!("token.sources[{i}]"))?);
        }
        if settings.cache_size > 100_000 {
            return Err(ConfigError::invalid(
                "token.cache_size",
                &settings.cache_size.to_string(),
                "expected 0 to 100000",
            ));
        }
        Ok(Self {
            sources,
            max_bytes: settings.max_bytes,
            cache_size: settings.cache_size,
        })
    }

    /// Number of verified tokens to cache.
    pub fn cache_size(&self) -> usize {
        self.cache_size
    }

    /// Maximum token size in bytes.
    pub fn max_token_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Finds the request's token. `headers` has lower-case names and one entry per value;
    /// `query` is the raw query string.
    pub fn extract(
        &self,
        headers: &[(String, Vec<u8>)],
        query: Option<&str>,
    ) -> Result<Found, SourceError> {
        let mut found = Found {
            token: None,
            foreign_scheme: false,
        };
        for source in &self.sources {
            for token in self.tokens_from(source, headers, query, &mut found)? {
                if found.token.is_some() {
                    return Err(SourceError::MultipleTokens);
                }
                found.token = Some(token);
            }
        }
        Ok(found)
    }

    fn tokens_from(
        &self,
        source: &SourceSettings,
        headers: &[(String, Vec<u8>)],
        query: Option<&str>,
        found: &mut Found,
    ) -> Result<Vec<String>, SourceError> {
        match source {
            SourceSettings::Bearer => bearer_tokens(headers, found),
            SourceSettings::Header { name, prefix } => {
                header_tokens(headers, name, prefix.as_deref())
            }
            SourceSettings::Cookie { name } => cookie_tokens(headers, name),
            SourceSettings::Query { name } => query_tokens(query, name),
        }
    }
}

fn compile_source(source: &SourceSettings, field: &str) -> Result<SourceSettings, ConfigError> {
    match source {
        SourceSettings::Bearer => Ok(SourceSettings::Bearer),
        SourceSettings::Header { name, prefix } => {
            let lower = name.to_ascii_lowercase();
            if !crate::claims::is_header_name(&lower) || lower == "authorization" {
                return Err(ConfigError::invalid(
                    &format!("{field}.header.name"),
                    name,
                    "expected a header name other than authorization (use \"bearer\")",
                ));
            }
            Ok(SourceSettings::Header {
                name: lower,
                prefix: prefix.clone(),
            })
        }
        SourceSettings::Cookie { name } | SourceSettings::Query { name } if name.is_empty() => Err(
            ConfigError::new(&format!("{field}.name"), "must not be empty"),
        ),
        other => Ok(other.clone()),
    }
}

fn utf8(value: &[u8]) -> Result<&str, SourceError> {
    std::str::from_utf8(value).map_err(|_| SourceError::NotUtf8)
}

fn bearer_tokens(
    headers: &[(String, Vec<u8>)],
    found: &mut Found,
) -> Result<Vec<String>, SourceError> {
    let values: Vec<&Vec<u8>> = headers
        .iter()
        .filter(|(name, _)| name == "authorization")
        .map(|(_, value)| value)
        .collect();
    if values.len() > 1 {
        return Err(SourceError::MultipleTokens);
    }
    let Some(value) = values.first() else {
        return Ok(Vec::new());
    };
    let value = utf8(value)?.trim();
    let (scheme, credentials) = match value.split_once([' ', '\t']) {
        Some((scheme, rest)) => (scheme, rest.trim()),
        None => (value, ""),
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        found.foreign_scheme = true;
        return Ok(Vec::new());
    }
    single_token(credentials)
}

/// Checks one credential string; a comma means several values were joined into one line.
fn single_token(credentials: &str) -> Result<Vec<String>, SourceError> {
    if credentials.is_empty() {
        return Err(SourceError::EmptyToken);
    }
    if credentials.contains(',') {
        return Err(SourceError::MultipleTokens);
    }
    Ok(vec![credentials.to_owned()])
}

fn header_tokens(
    headers: &[(String, Vec<u8>)],
    name: &str,
    prefix: Option<&str>,
) -> Result<Vec<String>, SourceError> {
    let mut tokens = Vec::new();
    for (_, value) in headers.iter().filter(|(n, _)| n == name) {
        let value = utf8(value)?.trim();
        let value = match prefix {
            Some(prefix) => match value.strip_prefix(prefix) {
                Some(rest) => rest.trim(),
                None => continue,
            },
            None => value,
        };
        tokens.extend(single_token(value)?);
    }
    Ok(tokens)
}

fn cookie_tokens(headers: &[(String, Vec<u8>)], name: &str) -> Result<Vec<String>, SourceError> {
    let mut tokens = Vec::new();
    for (_, value) in headers.iter().filter(|(n, _)| n == "cookie") {
        for pair in utf8(value)?.split(';') {
            if let Some((cookie, value)) = pair.trim().split_once('=') {
                if cookie == name {
                    tokens.extend(single_token(value.trim().trim_matches('"'))?);
                }
            }
        }
    }
    Ok(tokens)
}

fn query_tokens(query: Option<&str>, name: &str) -> Result<Vec<String>, SourceError> {
    let mut tokens = Vec::new();
    for pair in query.unwrap_or_default().split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = percent_encoding::percent_decode_str(key).decode_utf8_lossy();
        if key == name {
            let value = percent_encoding::percent_decode_str(value)
                .decode_utf8()
                .map_err(|_| SourceError::NotUtf8)?;
            tokens.extend(single_token(&value)?);
        }
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(json: &str) -> TokenSources {
        let settings: TokenSettings = serde_json::from_str(json).unwrap();
        TokenSources::compile(&settings).unwrap()
    }

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    fn bearer() -> TokenSources {
        TokenSources::compile(&TokenSettings::default()).unwrap()
    }

    #[test]
    fn bearer_scheme_case_insensitive() {
        for value in ["Bearer abc", "bearer abc", "BEARER   abc ", "Bearer\tabc"] {
            let found = bearer().extract(&headers(&[("authorization", value)]), None);
            assert_eq!(found.unwrap().token.as_deref(), Some("abc"), "{value}");
        }
    }

    #[test]
    fn no_header_means_no_token() {
        let found = bearer().extract(&[], None).unwrap();
        assert_eq!(found.token, None);
        assert!(!found.foreign_scheme);
    }

    #[test]
    fn empty_bearer_rejected() {
        for value in ["Bearer", "Bearer ", "bearer    "] {
            let err = bearer().extract(&headers(&[("authorization", value)]), None);
            assert_eq!(err, Err(SourceError::EmptyToken), "{value}");
        }
    }

    #[test]
    fn basic_scheme_is_foreign() {
        let found = bearer()
            .extract(&headers(&[("authorization", "Basic dXNlcjpwdw==")]), None)
            .unwrap();
        assert_eq!(found.token, None);
        assert!(found.foreign_scheme);
    }

    #[test]
    fn repeated_authorization_rejected() {
        let pairs = [("authorization", "Bearer a"), ("authorization", "Bearer b")];
        let err = bearer().extract(&headers(&pairs), None);
        assert_eq!(err, Err(SourceError::MultipleTokens));
    }

    #[test]
    fn joined_authorization_rejected() {
        let err = bearer().extract(&headers(&[("authorization", "Bearer a,Bearer b")]), None);
        assert_eq!(err, Err(SourceError::MultipleTokens));
    }

    #[test]
    fn header_and_query_together_rejected() {
        let s = sources(r#"{"sources": ["bearer", {"query": {"name": "access_token"}}]}"#);
        let err = s.extract(
            &headers(&[("authorization", "Bearer a")]),
            Some("access_token=b"),
        );
        assert_eq!(err, Err(SourceError::MultipleTokens));
    }

    #[test]
    fn query_token_percent_decoded() {
        let s = sources(r#"{"sources": [{"query": {"name": "access_token"}}]}"#);
        let found = s.extract(&[], Some("x=1&access_token=a%2Eb")).unwrap();
        assert_eq!(found.token.as_deref(), Some("a.b"));
    }

    #[test]
    fn cookie_token_found_among_others() {
        let s = sources(r#"{"sources": [{"cookie": {"name": "session"}}]}"#);
        let found = s
            .extract(&headers(&[("cookie", "a=1; session=tok; b=2")]), None)
            .unwrap();
        assert_eq!(found.token.as_deref(), Some("tok"));
    }

    #[test]
    fn duplicate_cookie_rejected() {
        let s = sources(r#"{"sources": [{"cookie": {"name": "session"}}]}"#);
        let pairs = [("cookie", "session=a"), ("cookie", "session=b")];
        assert_eq!(
            s.extract(&headers(&pairs), None),
            Err(SourceError::MultipleTokens)
        );
    }

    #[test]
    fn custom_header_with_prefix() {
        let s =
            sources(r#"{"sources": [{"header": {"name": "X-Api-Token", "prefix": "Token "}}]}"#);
        let found = s
            .extract(&headers(&[("x-api-token", "Token abc")]), None)
            .unwrap();
        assert_eq!(found.token.as_deref(), Some("abc"));
    }

    #[test]
    fn non_utf8_header_rejected_without_panic() {
        let pairs = vec![("authorization".to_string(), b"Bearer \xff\xfe".to_vec())];
        assert_eq!(bearer().extract(&pairs, None), Err(SourceError::NotUtf8));
    }

    #[test]
    fn authorization_as_custom_header_rejected() {
        let settings: TokenSettings =
            serde_json::from_str(r#"{"sources": [{"header": {"name": "Authorization"}}]}"#)
                .unwrap();
        let err = TokenSources::compile(&settings).unwrap_err();
        assert_eq!(err.path, "token.sources[0].header.name");
    }
}
