//! Storage keys for counters.
//!
//! A key has the form `PREFIX:{TAG}:ALGORITHM:WINDOW_MS:MODE` followed by the encoded
//! descriptor. ALGORITHM is `log` or `counter`, with `-shadow` appended for a shadow limit.
//! A shadow limit skips the hits it has no room for, so it cannot share an enforced counter. The encoding writes the domain and then each entry's key and value, every
//! component as `LENGTH:BYTES` (decimal byte length, a colon, the bytes). That encoding is
//! prefix-free, so the key is injective: two distinct descriptors, or one descriptor under two
//! limits with different windows or algorithms, never share a counter, whatever bytes the values
//! contain. MODE is `p` for plain values and `h` when each value is replaced by its hex SHA-256
//! digest, so client tokens never appear in storage.
//!
//! TAG is the first 16 hex digits of SHA-256 over the encoded descriptor. Redis Cluster hashes
//! only the text between the first `{` and the next `}`, so all keys of one descriptor land on
//! one shard and a single script can check and update them together. The prefix may not contain
//! braces (the limits file validation rejects them).

use std::fmt::Write as _;

use sha2::{Digest, Sha256};

use crate::config::Limit;

/// The encoded descriptor that every key of one descriptor shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescriptorKey {
    /// Text inside the hash-tag braces, also used by the memory store to pick a shard.
    pub hash_tag: String,
    base: String,
    encoded: String,
}

impl DescriptorKey {
    /// Encodes a descriptor of a domain under a key prefix.
    pub fn new<K, V>(prefix: &str, hash_values: bool, domain: &str, entries: &[(K, V)]) -> Self
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut encoded = String::with_capacity(64);
        encoded.push(if hash_values { 'h' } else { 'p' });
        push_component(&mut encoded, domain);
        for (key, value) in entries {
            push_component(&mut encoded, key.as_ref());
            if hash_values {
                push_component(&mut encoded, &hex_sha256(value.as_ref()));
            } else {
                push_component(&mut encoded, value.as_ref());
            }
        }
        let hash_tag = hex_sha256(&encoded)[..16].to_owned();
        let base = format!("{prefix}:{{{hash_tag}}}");
        DescriptorKey {
            hash_tag,
            base,
            encoded,
        }
    }

    /// Returns the storage key of this descriptor's counter for one limit.
    pub fn limit_key(&self, limit: &Limit) -> String {
        let shadow = if limit.shadow { "-shadow" } else { "" };
        format!(
            "{}:{}{shadow}:{}:{}",
            self.base,
            limit.algorithm.as_str(),
            limit.window.as_millis(),
            self.encoded
        )
    }
}

fn push_component(out: &mut String, component: &str) {
    // fmt::Write for String never returns an error.
    let _ = write!(out, "{}:", component.len());
    out.push_str(component);
}

fn hex_sha256(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    let mut hex = String::with_capacity(64);
    for byte in digest {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::Algorithm;

    fn limit(window_ms: u64, algorithm: Algorithm) -> Limit {
        Limit {
            name: "l".into(),
            requests: 1,
            window: Duration::from_millis(window_ms),
            algorithm,
            shadow: false,
        }
    }

    fn key(hash: bool, entries: &[(&str, &str)]) -> String {
        DescriptorKey::new("mg", hash, "d", entries).limit_key(&limit(1000, Algorithm::SlidingLog))
    }

    #[test]
    fn layout_has_hash_tag_and_lengths() {
        let key = key(false, &[("endpoint", "login"), ("subject", "alice")]);
        let tag = &key[4..20];
        assert_eq!(
            key,
            format!("mg:{{{tag}}}:log:1000:p1:d8:endpoint5:login7:subject5:alice")
        );
        assert!(tag.chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn colon_joined_collisions_stay_distinct() {
        // Joined with ':' these pairs read "a:b:c" and would share a counter.
        let pairs = [
            (vec![("a", "b:c")], vec![("a:b", "c")]),
            (vec![("k", "x"), ("y", "z")], vec![("k", "x:y"), ("", "z")]),
            (vec![("k", "1:k")], vec![("k", "1"), ("k", "")]),
        ];
        for (left, right) in pairs {
            assert_ne!(key(false, &left), key(false, &right));
            assert_ne!(key(true, &left), key(true, &right));
        }
    }

    #[test]
    fn limits_of_one_descriptor_share_hash_tag() {
        let descriptor = DescriptorKey::new("mg", false, "d", &[("k", "v")]);
        let log = descriptor.limit_key(&limit(1000, Algorithm::SlidingLog));
        let counter = descriptor.limit_key(&limit(1000, Algorithm::SlidingCounter));
        let longer = descriptor.limit_key(&limit(60_000, Algorithm::SlidingLog));
        let shadow = descriptor.limit_key(&Limit {
            shadow: true,
            ..limit(1000, Algorithm::SlidingLog)
        });
        assert_ne!(log, counter);
        assert_ne!(log, longer);
        assert_ne!(log, shadow);
        assert!(shadow.contains(":log-shadow:1000:"), "{shadow}");
        let tag = |key: &str| key[key.find('{').unwrap()..=key.find('}').unwrap()].to_owned();
        assert_eq!(tag(&log), tag(&counter));
        assert_eq!(tag(&log), tag(&longer));
    }

    #[test]
    fn hashed_values_hide_the_value() {
        let token = "eyJhbGciOiJIUzI1NiJ9.secret";
        let hashed = key(true, &[("token", token)]);
        assert!(!hashed.contains(token));
        assert!(hashed.contains(":h1:d5:token64:"));
        assert_ne!(hashed, key(false, &[("token", token)]));
    }

    #[test]
    fn braces_in_values_do_not_move_hash_tag() {
        let key = key(false, &[("k", "}{x}")]);
        assert_eq!(key.find('{'), Some(3));
        assert_eq!(key.find('}'), Some(20));
    }
}
