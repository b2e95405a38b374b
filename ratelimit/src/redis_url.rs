//! Redis connection URLs for the three deployments, with the password kept out of logs.
//!
//! - `redis://[USER[:PASSWORD]@]HOST[:PORT][/DB]`, or `rediss://` for TLS: one server.
//! - `redis+sentinel://[USER[:PASSWORD]@]HOST[:PORT][,HOST[:PORT]...]/MASTER_NAME[/DB]`, or
//!   `rediss+sentinel://`: the listed Sentinels are asked for the current master of
//!   MASTER_NAME. The credentials and the DB apply to the master; the Sentinels are reached
//!   without authentication. Ports default to 26379.
//! - `redis+cluster://[USER[:PASSWORD]@]HOST[:PORT][,HOST[:PORT]...]`, or `rediss+cluster://`:
//!   seed nodes of a Redis Cluster; the credentials apply to every node.
//!
//! Percent-encode reserved characters in the user name and password (`@` as `%40`).

use std::fmt;

/// A parsed `--redis-url`. Its `Debug` and `Display` forms show `***` in place of the password.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl {
    pub deployment: Deployment,
    pub tls: bool,
    /// Percent-decoded user name, if any.
    pub username: Option<String>,
    /// Percent-decoded password, if any.
    pub password: Option<String>,
    pub db: i64,
    redacted: String,
}

/// Redis deployment named by a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deployment {
    /// One server; `url` is the original text, which the redis crate parses itself.
    Standalone {
        url: String,
    },
    Sentinel {
        sentinels: Vec<(String, u16)>,
        master_name: String,
    },
    Cluster {
        nodes: Vec<(String, u16)>,
    },
}

/// Error from [`RedisUrl::parse`]. The message never contains the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid redis URL {url}: {reason}")]
pub struct RedisUrlError {
    url: String,
    reason: String,
}

impl RedisUrl {
    pub fn parse(text: &str) -> Result<RedisUrl, RedisUrlError> {
        let redacted = redact(text);
        let fail = |reason: &str| RedisUrlError {
            url: redacted.clone(),
            reason: reason.to_owned(),
        };
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| fail("missing scheme, expected e.g. redis://127.0.0.1:6379"))?;
        let (tls, kind) = match scheme {
            "redis" => (false, "standalone"),
            "rediss" => (true, "standalone"),
            "redis+sentinel" => (false, "sentinel"),
            "rediss+sentinel" => (true, "sentinel"),
            "redis+cluster" => (false, "cluster"),
            "rediss+cluster" => (true, "cluster"),
            _ => {
                return Err(fail(
                    "unknown scheme (use redis, rediss, redis+sentinel, rediss+sentinel, redis+cluster or rediss+cluster)",
                ))
            }
        };
        let (authority, path) = match rest.find('/') {
            Some(slash) => (&rest[..slash], &rest[slash + 1..]),
            None => (rest, ""),
        };
        let (userinfo, hosts) = match authority.rsplit_once('@') {
            Some((userinfo, hosts)) => (Some(userinfo), hosts),
            None => (None, authority),
        };
        let (username, password) = match userinfo {
            None => (None, None),
            Some(userinfo) => {
                let (user, password) = match userinfo.split_once(':') {
                    Some((user, password)) => (user, Some(password)),
                    None => (userinfo, None),
                };
                let user = percent_decode(user)
                    .ok_or_else(|| fail("invalid percent-encoding in user name"))?;
                let password = match password {
                    Some(password) => Some(
                        percent_decode(password)
                            .ok_or_else(|| fail("invalid percent-encoding in password"))?,
                    ),
                    None => None,
                };
                ((!user.is_empty()).then_some(user), password)
            }
        };
        let parse_db = |text: &str| -> Result<i64, RedisUrlError> {
            if text.is_empty() {
                Ok(0)
            } else {
                text.parse()
                    .map_err(|_| fail("the database must be a number"))
            }
        };

        let (deployment, db) = match kind {
            "standalone" => {
                if hosts.contains(',') {
                    return Err(fail(
                        "several hosts need redis+sentinel:// or redis+cluster://",
                    ));
                }
                let db_text = path.split(['?', '#']).next().unwrap_or("");
                (
                    Deployment::Standalone {
                        url: text.to_owned(),
                    },
                    parse_db(db_text)?,
                )
            }
            "sentinel" => {
                let mut parts = path.splitn(2, '/');
                let master_name = parts.next().unwrap_or("");
                if master_name.is_empty() {
                    return Err(fail(
                        "missing master name, expected redis+sentinel://HOST:26379/MASTER_NAME",
                    ));
                }
                let db = parse_db(parts.next().unwrap_or(""))?;
                (
                    Deployment::Sentinel {
                        sentinels: parse_hosts(hosts, 26379).map_err(|reason| fail(&reason))?,
                        master_name: master_name.to_owned(),
                    },
                    db,
                )
            }
            _ => {
                if !path.is_empty() {
                    return Err(fail(
                        "a cluster URL takes no path (Redis Cluster has only database 0)",
                    ));
                }
                (
                    Deployment::Cluster {
                        nodes: parse_hosts(hosts, 6379).map_err(|reason| fail(&reason))?,
                    },
                    0,
                )
            }
        };
        Ok(RedisUrl {
            deployment,
            tls,
            username,
            password,
            db,
            redacted,
        })
    }
}

impl fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisUrl({})", self.redacted)
    }
}

/// Replaces the password in a URL with `***`.
pub fn redact(text: &str) -> String {
    let Some((scheme, rest)) = text.split_once("://") else {
        return text.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return text.to_owned();
    };
    match rest[..at].split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***{}", &rest[at..]),
        None => text.to_owned(),
    }
}

fn parse_hosts(text: &str, default_port: u16) -> Result<Vec<(String, u16)>, String> {
    let mut hosts = Vec::new();
    for part in text.split(',') {
        let (host, port) = if let Some(bracketed) = part.strip_prefix('[') {
            // IPv6 literal: [::1]:6379
            let (host, after) = bracketed
                .split_once(']')
                .ok_or_else(|| format!("unclosed '[' in host {part:?}"))?;
            match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None if after.is_empty() => (host, None),
                None => return Err(format!("invalid host {part:?}")),
            }
        } else {
            match part.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (part, None),
            }
        };
        if host.is_empty() {
            return Err(format!("empty host in {text:?}"));
        }
        let port = match port {
            Some(port) => port
                .parse()
                .map_err(|_| format!("invalid port {port:?} for host {host:?}"))?,
            None => default_port,
        };
        hosts.push((host.to_owned(), port));
    }
    Ok(hosts)
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_standalone() {
        let url = RedisUrl::parse("redis://127.0.0.1:6380/2").unwrap();
        assert!(!url.tls);
        assert_eq!(url.db, 2);
        assert_eq!(
            url.deployment,
            Deployment::Standalone {
                url: "redis://127.0.0.1:6380/2".into()
            }
        );
        assert!(RedisUrl::parse("rediss://host").unwrap().tls);
    }

    #[test]
    fn redacts_password() {
        let url = RedisUrl::parse("rediss://app:s3cr%40t@cache:6379/0").unwrap();
        assert_eq!(url.password.as_deref(), Some("s3cr@t"));
        assert_eq!(url.username.as_deref(), Some("app"));
        assert_eq!(url.to_string(), "rediss://app:***@cache:6379/0");
        assert!(!format!("{url:?}").contains("s3cr"));
        let error = RedisUrl::parse("redis://:hunter2@a,b").unwrap_err();
        assert!(!error.to_string().contains("hunter2"), "{error}");
        assert_eq!(redact("redis://:pw@h"), "redis://:***@h");
        assert_eq!(redact("redis://user@h"), "redis://user@h");
    }

    #[test]
    fn parses_sentinel() {
        let url = RedisUrl::parse("redis+sentinel://:pw@s1,s2:26380/mymaster/3").unwrap();
        assert_eq!(url.db, 3);
        assert_eq!(url.password.as_deref(), Some("pw"));
        assert_eq!(url.username, None);
        assert_eq!(
            url.deployment,
            Deployment::Sentinel {
                sentinels: vec![("s1".into(), 26379), ("s2".into(), 26380)],
                master_name: "mymaster".into()
            }
        );
        assert!(RedisUrl::parse("redis+sentinel://s1:26379").is_err());
    }

    #[test]
    fn parses_cluster() {
        let url = RedisUrl::parse("rediss+cluster://[::1]:7000,10.0.0.2").unwrap();
        assert!(url.tls);
        assert_eq!(
            url.deployment,
            Deployment::Cluster {
                nodes: vec![("::1".into(), 7000), ("10.0.0.2".into(), 6379)]
            }
        );
        assert!(RedisUrl::parse("redis+cluster://a:7000/1").is_err());
    }

    #[test]
    fn rejects_bad_urls() {
        for text in [
            "127.0.0.1:6379",
            "http://x",
            "redis://a,b",
            "redis://h/x",
            "redis+cluster://h:port",
        ] {
            assert!(
                RedisUrl::parse(text).is_err(),
                "{text:?} should be rejected"
            );
        }
    }
}
