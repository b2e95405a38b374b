//! Plugin configuration of the inspector, its validation, and compiled policies.

use serde::Deserialize;

use super::rules;
use super::target::{TargetKind, TargetPattern};

/// What the filter does when a request's score reaches the threshold.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Reject the request (403).
    #[default]
    Block,
    /// Let the request through; log and count the findings.
    Detect,
    /// Inspect nothing.
    Off,
}

/// The `waf` section of the plugin configuration.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct WafSettings {
    /// Default `block`.
    #[serde(default)]
    pub mode: Mode,
    /// Rule set strictness, 1 (fewest false positives) to 3. Default 1.
    #[serde(default = "default_paranoia")]
    pub paranoia: u8,
    /// Score at which a request is blocked or reported. Default 5, the score of one
    /// critical finding.
    #[serde(default = "default_threshold")]
    pub threshold: u32,
    /// Largest body that is buffered and inspected, in bytes. Default 65536.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// HTTP status returned for an inspected body over `max_body_bytes`. Default 413.
    #[serde(default = "default_body_limit_action")]
    pub body_limit_action: u16,
    /// Maximum rounds of percent-decoding, 1 to 8. Default 3.
    #[serde(default = "default_decode_passes")]
    pub decode_passes: u8,
    /// Header names (case-insensitive) that are not inspected. Default `["authorization"]`;
    /// setting the field replaces the default list.
    #[serde(default = "default_skip_headers")]
    pub skip_headers: Vec<String>,
    /// Inspect the contents of multipart file parts, not just their names. Default false.
    #[serde(default)]
    pub inspect_file_uploads: bool,
    /// Findings to ignore. Default none.
    #[serde(default)]
    pub exclusions: Vec<ExclusionSettings>,
}

/// Per-route overrides of [`WafSettings`]. Unset fields keep the global value; exclusions
/// are added to the global ones.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct RoutePolicySettings {
    #[serde(default)]
    pub mode: Option<Mode>,
    #[serde(default)]
    pub threshold: Option<u32>,
    #[serde(default)]
    pub paranoia: Option<u8>,
    #[serde(default)]
    pub exclusions: Vec<ExclusionSettings>,
}

/// One exclusion: a finding is ignored when its rule id is listed (or `rule_ids` is
/// absent), its target matches one pattern (or `targets` is absent), and the request path
/// starts with `path_prefix` (or it is absent). At least one of `rule_ids` and `targets`
/// must be given.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct ExclusionSettings {
    #[serde(default)]
    pub rule_ids: Option<Vec<u32>>,
    /// Target patterns such as `body:json:/user/password`, `body:field:password`,
    /// `header:x-foo`, `query:q`, `cookie:*`; a trailing `*` matches any suffix.
    #[serde(default)]
    pub targets: Option<Vec<String>>,
    #[serde(default)]
    pub path_prefix: Option<String>,
}

fn default_paranoia() -> u8 {
    1
}

fn default_threshold() -> u32 {
    5
}

fn default_max_body_bytes() -> usize {
    64 * 1024
}

fn default_body_limit_action() -> u16 {
    413
}

fn default_decode_passes() -> u8 {
    3
}

fn default_skip_headers() -> Vec<String> {
    vec!["authorization".to_owned()]
}

impl Default for WafSettings {
    fn default() -> Self {
        WafSettings {
            mode: Mode::Block,
            paranoia: default_paranoia(),
            threshold: default_threshold(),
            max_body_bytes: default_max_body_bytes(),
            body_limit_action: default_body_limit_action(),
            decode_passes: default_decode_passes(),
            skip_headers: default_skip_headers(),
            inspect_file_uploads: false,
            exclusions: Vec::new(),
        }
    }
}

/// Largest accepted `max_body_bytes`: the body is buffered in the Wasm VM's memory.
pub const MAX_BODY_LIMIT: usize = 16 * 1024 * 1024;

/// Maximum number of exclusions in one policy, global and route ones together.
pub const MAX_EXCLUSIONS: usize = 128;

/// Invalid configuration value, naming the field path and the value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct WafConfigError {
    field: String,
    message: String,
}

impl WafConfigError {
    pub(crate) fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        WafConfigError {
            field: field.into(),
            message: message.into(),
        }
    }

    /// Field path, such as `waf.exclusions[2].rule_ids[0]`.
    pub fn field(&self) -> &str {
        &self.field
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// Prefixes the field path, for errors of [`super::Waf::compile_route`], whose paths
    /// are relative to the route's section: `error.within("routes[3].waf")`.
    pub fn within(mut self, prefix: &str) -> Self {
        self.field = format!("{prefix}.{}", self.field);
        self
    }
}

/// A compiled exclusion.
#[derive(Clone, Debug)]
pub(crate) struct Exclusion {
    /// Empty means every rule.
    pub rule_ids: Vec<u32>,
    /// Empty means every target.
    pub targets: Vec<TargetPattern>,
    pub path_prefix: Option<String>,
}

/// Compiled settings that apply to one request: the global default or a route override.
#[derive(Clone, Debug)]
pub struct Policy {
    pub(crate) mode: Mode,
    pub(crate) paranoia: u8,
    pub(crate) threshold: u32,
    pub(crate) exclusions: Vec<Exclusion>,
}

impl Policy {
    pub fn mode(&self) -> Mode {
        self.mode
    }

    pub fn paranoia(&self) -> u8 {
        self.paranoia
    }

    pub fn threshold(&self) -> u32 {
        self.threshold
    }

    /// Bit mask of the exclusions whose path prefix matches `path`.
    pub(crate) fn active_exclusions(&self, path: &str) -> u128 {
        let mut mask = 0u128;
        for (index, exclusion) in self.exclusions.iter().enumerate() {
            let applies = exclusion
                .path_prefix
                .as_deref()
                .is_none_or(|prefix| path.starts_with(prefix));
            if applies {
                mask |= 1 << index;
            }
        }
        mask
    }

    /// Whether a finding of `rule_id` on the target is excluded.
    pub(crate) fn excludes(
        &self,
        active: u128,
        rule_id: u32,
        kind: TargetKind,
        name: &str,
    ) -> bool {
        self.exclusions
            .iter()
            .enumerate()
            .any(|(index, exclusion)| {
                active & (1 << index) != 0
                    && (exclusion.rule_ids.is_empty() || exclusion.rule_ids.contains(&rule_id))
                    && (exclusion.targets.is_empty()
                        || exclusion
                            .targets
                            .iter()
                            .any(|pattern| pattern.matches(kind, name)))
            })
    }
}

pub(crate) fn check_paranoia(field: &str, value: u8) -> Result<u8, WafConfigError> {
    if (1..=3).contains(&value) {
        Ok(value)
    } else {
        Err(WafConfigError::new(
            field,
            format!("must be 1, 2 or 3, got {value}"),
        ))
    }
}

pub(crate) fn check_threshold(field: &str, value: u32) -> Result<u32, WafConfigError> {
    if value >= 1 {
        Ok(value)
    } else {
        Err(WafConfigError::new(field, "must be at least 1, got 0"))
    }
}

pub(crate) fn compile_exclusions(
    field: &str,
    settings: &[ExclusionSettings],
    out: &mut Vec<Exclusion>,
) -> Result<(), WafConfigError> {
    for (index, exclusion) in settings.iter().enumerate() {
        let base = format!("{field}[{index}]");
        if exclusion.rule_ids.is_none() && exclusion.targets.is_none() {
            return Err(WafConfigError::new(
                base,
                "must name rule_ids, targets or both; to inspect nothing, set mode to off",
            ));
        }
        let mut rule_ids = Vec::new();
        if let Some(ids) = &exclusion.rule_ids {
            if ids.is_empty() {
                return Err(WafConfigError::new(
                    format!("{base}.rule_ids"),
                    "must not be empty",
                ));
            }
            for (position, &id) in ids.iter().enumerate() {
                if rules::rule(id).is_none() {
                    return Err(WafConfigError::new(
                        format!("{base}.rule_ids[{position}]"),
                        format!("unknown rule id {id}"),
                    ));
                }
                rule_ids.push(id);
            }
        }
        let mut targets = Vec::new();
        if let Some(patterns) = &exclusion.targets {
            if patterns.is_empty() {
                return Err(WafConfigError::new(
                    format!("{base}.targets"),
                    "must not be empty",
                ));
            }
            for (position, pattern) in patterns.iter().enumerate() {
                let compiled = TargetPattern::parse(pattern).map_err(|message| {
                    WafConfigError::new(format!("{base}.targets[{position}]"), message)
                })?;
                targets.push(compiled);
            }
        }
        if let Some(prefix) = &exclusion.path_prefix {
            if !prefix.starts_with('/') {
                return Err(WafConfigError::new(
                    format!("{base}.path_prefix"),
                    format!("must start with '/', got {prefix:?}"),
                ));
            }
        }
        if out.len() >= MAX_EXCLUSIONS {
            return Err(WafConfigError::new(
                base,
                format!("too many exclusions: at most {MAX_EXCLUSIONS} per policy, global and route together"),
            ));
        }
        out.push(Exclusion {
            rule_ids,
            targets,
            path_prefix: exclusion.path_prefix.clone(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_from_empty_json() {
        let settings: WafSettings = serde_json::from_str("{}").unwrap();
        assert_eq!(settings, WafSettings::default());
        assert_eq!(settings.max_body_bytes, 65536);
        assert_eq!(settings.body_limit_action, 413);
        assert_eq!(settings.skip_headers, ["authorization"]);
    }

    #[test]
    fn unknown_fields_rejected() {
        let result: Result<WafSettings, _> = serde_json::from_str(r#"{"paranoid": 2}"#);
        assert!(result.is_err());
        let result: Result<WafSettings, _> =
            serde_json::from_str(r#"{"exclusions": [{"rule_id": [1001]}]}"#);
        assert!(result.is_err());
    }

    #[test]
    fn modes_parse_snake_case() {
        let settings: WafSettings = serde_json::from_str(r#"{"mode": "detect"}"#).unwrap();
        assert_eq!(settings.mode, Mode::Detect);
        let route: RoutePolicySettings = serde_json::from_str(r#"{"mode": "off"}"#).unwrap();
        assert_eq!(route.mode, Some(Mode::Off));
    }

    #[test]
    fn exclusion_errors_name_field_and_value() {
        let mut out = Vec::new();
        let settings = vec![
            ExclusionSettings {
                rule_ids: Some(vec![2001]),
                ..Default::default()
            },
            ExclusionSettings {
                rule_ids: Some(vec![2001, 99999]),
                ..Default::default()
            },
        ];
        let error = compile_exclusions("waf.exclusions", &settings, &mut out).unwrap_err();
        assert_eq!(
            error.to_string(),
            "waf.exclusions[1].rule_ids[1]: unknown rule id 99999"
        );

        let settings = vec![ExclusionSettings {
            targets: Some(vec!["bogus:x".into()]),
            ..Default::default()
        }];
        let error = compile_exclusions("waf.exclusions", &settings, &mut Vec::new()).unwrap_err();
        assert_eq!(error.field(), "waf.exclusions[0].targets[0]");
        assert!(error.message().contains("bogus:x"), "{error}");

        let settings = vec![ExclusionSettings::default()];
        let error = compile_exclusions("exclusions", &settings, &mut Vec::new()).unwrap_err();
        assert_eq!(
            error.within("routes[2].waf").field(),
            "routes[2].waf.exclusions[0]"
        );

        let settings = vec![ExclusionSettings {
            rule_ids: Some(vec![2001]),
            path_prefix: Some("login".into()),
            ..Default::default()
        }];
        let error = compile_exclusions("x", &settings, &mut Vec::new()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "x[0].path_prefix: must start with '/', got \"login\""
        );
    }

    #[test]
    fn paranoia_and_threshold_bounds() {
        assert!(check_paranoia("waf.paranoia", 0).is_err());
        assert_eq!(
            check_paranoia("waf.paranoia", 4).unwrap_err().to_string(),
            "waf.paranoia: must be 1, 2 or 3, got 4"
        );
        assert_eq!(check_paranoia("waf.paranoia", 2), Ok(2));
        assert!(check_threshold("waf.threshold", 0).is_err());
    }
}
