//! SQL injection detector: a small SQL lexer plus grammar checks on its token stream.
//!
//! A value is an injection when, read as SQL, it leaves the literal it was meant to be and
//! continues the surrounding query. The detector reads the value in two ways:
//!
//! - from the start, as if pasted into a numeric context (`id=1 OR 1=1`);
//! - after every quote character, as if that quote closed the application's string literal
//!   (`name=x' OR 'a'='a`). The quote-free prefix is ignored, so `O'Brien` reads as the word
//!   `Brien`, which continues nothing.
//!
//! Each reading is checked against short grammar shapes (boolean conditions, UNION SELECT
//! with a select list, stacked statements, truncating comments, clauses, subqueries), and
//! the whole stream is checked for time-delay functions and probing names. Prose such as
//! "union station" or "select a seat from the list" does not match any shape, because a
//! shape needs operators, literals or punctuation that prose seldom has.

use super::rules::RuleId;

/// Maximum number of tokens examined after one quote.
const WINDOW_TOKENS: usize = 24;
/// Maximum number of bytes after one quote that its reading lexes.
const MAX_BREAK_BYTES: usize = 2048;
/// Maximum number of tokens examined in the from-the-start reading.
const MAX_TOKENS: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Str,
    Num,
    /// Identifier or keyword without a special role.
    Word,
    /// Word followed by `(`.
    Func,
    /// `@name` or `@@name`.
    Var,
    /// Arithmetic, bit or unary operator.
    Op,
    /// Comparison operator, including LIKE, IS, IN, BETWEEN, REGEXP.
    Cmp,
    /// AND, OR, XOR, `&&`, `||`.
    Logic,
    Union,
    /// Statement keyword (SELECT, DROP, ...).
    Stmt,
    /// Clause keyword (FROM, ORDER, INTO, ...).
    Clause,
    /// TRUE, FALSE, NULL.
    Lit,
    LParen,
    RParen,
    Comma,
    Semi,
    Dot,
    Comment,
    Other,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kw {
    None,
    Select,
    Insert,
    Update,
    Delete,
    Drop,
    Create,
    Alter,
    Truncate,
    Exec,
    Declare,
    Shutdown,
    Waitfor,
    Grant,
    From,
    Where,
    Into,
    Order,
    Group,
    By,
    Having,
    Limit,
    Procedure,
    Set,
    All,
    Distinct,
    Delay,
    Table,
    ObjectKind,
    FileSink,
    Analyse,
    With,
    Null,
    Values,
    Sleep,
    Benchmark,
    Probe,
    SystemProc,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CommentKind {
    /// `--` or `#` followed by nothing but blanks, `-` or `+` up to the end of the line.
    LineStrong,
    /// `--` or `#` followed by other text.
    LineWeak,
    /// `/* ... */`, closed.
    BlockClosed,
    /// `/*` without a closing `*/` and with nothing but whitespace after it.
    BlockOpen,
}

#[derive(Clone, Copy, Debug)]
struct Token {
    kind: Kind,
    kw: Kw,
    comment: CommentKind,
    start: usize,
    end: usize,
    /// First byte of the token, which distinguishes operators.
    first: u8,
}

struct Lexer<'a> {
    bytes: &'a [u8],
    pos: usize,
    in_executable_comment: bool,
    saw_executable_comment: Option<usize>,
}

fn is_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r' | 0x0B | 0x0C)
}

/// Bytes of identifiers and keywords: ASCII letters and digits, `_`, `$` and every
/// non-ASCII byte. A table, because the lexer tests every byte of every word.
const WORD_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        let b = byte as u8;
        table[byte] = b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80;
        byte += 1;
    }
    table
};

fn is_word_byte(byte: u8) -> bool {
    WORD_BYTES[byte as usize]
}

fn lower_word(bytes: &[u8], buffer: &mut [u8; 24]) -> Option<usize> {
    if bytes.len() > buffer.len() {
        return None;
    }
    for (slot, byte) in buffer.iter_mut().zip(bytes) {
        *slot = byte.to_ascii_lowercase();
    }
    Some(bytes.len())
}

/// Length of the shortest and the longest keyword that [`classify`] knows.
const KEYWORD_LENGTHS: std::ops::RangeInclusive<usize> = 2..=18;

fn classify(word: &[u8]) -> (Kind, Kw) {
    if !KEYWORD_LENGTHS.contains(&word.len()) {
        return (Kind::Word, Kw::None);
    }
    let mut buffer = [0u8; 24];
    let Some(length) = lower_word(word, &mut buffer) else {
        return (Kind::Word, Kw::None);
    };
    match &buffer[..length] {
        b"and" | b"or" | b"xor" => (Kind::Logic, Kw::None),
        b"not" | b"div" | b"mod" => (Kind::Op, Kw::None),
        b"like" | b"rlike" | b"regexp" | b"is" | b"in" | b"between" | b"sounds" | b"glob"
        | b"similar" => (Kind::Cmp, Kw::None),
        b"union" | b"intersect" | b"except" => (Kind::Union, Kw::None),
        b"select" => (Kind::Stmt, Kw::Select),
        b"insert" | b"replace" => (Kind::Stmt, Kw::Insert),
        b"update" => (Kind::Stmt, Kw::Update),
        b"delete" => (Kind::Stmt, Kw::Delete),
        b"drop" => (Kind::Stmt, Kw::Drop),
        b"create" => (Kind::Stmt, Kw::Create),
        b"alter" => (Kind::Stmt, Kw::Alter),
        b"truncate" => (Kind::Stmt, Kw::Truncate),
        b"exec" | b"execute" => (Kind::Stmt, Kw::Exec),
        b"declare" => (Kind::Stmt, Kw::Declare),
        b"shutdown" => (Kind::Stmt, Kw::Shutdown),
        b"waitfor" => (Kind::Stmt, Kw::Waitfor),
        b"grant" | b"revoke" => (Kind::Stmt, Kw::Grant),
        b"from" => (Kind::Clause, Kw::From),
        b"where" => (Kind::Clause, Kw::Where),
        b"into" => (Kind::Clause, Kw::Into),
        b"order" => (Kind::Clause, Kw::Order),
        b"group" => (Kind::Clause, Kw::Group),
        b"by" => (Kind::Clause, Kw::By),
        b"having" => (Kind::Clause, Kw::Having),
        b"limit" => (Kind::Clause, Kw::Limit),
        b"procedure" => (Kind::Clause, Kw::Procedure),
        b"set" => (Kind::Clause, Kw::Set),
        b"all" => (Kind::Clause, Kw::All),
        b"distinct" => (Kind::Clause, Kw::Distinct),
        b"delay" | b"time" => (Kind::Word, Kw::Delay),
        b"values" => (Kind::Clause, Kw::Values),
        b"table" => (Kind::Word, Kw::Table),
        b"database" | b"schema" | b"view" | b"index" | b"user" | b"trigger" | b"function"
        | b"login" => (Kind::Word, Kw::ObjectKind),
        b"outfile" | b"dumpfile" => (Kind::Word, Kw::FileSink),
        b"analyse" | b"analyze" => (Kind::Word, Kw::Analyse),
        b"with" => (Kind::Word, Kw::With),
        b"true" | b"false" | b"unknown" => (Kind::Lit, Kw::None),
        b"null" => (Kind::Lit, Kw::Null),
        b"sleep" | b"pg_sleep" | b"randomblob" | b"receive_message" => (Kind::Word, Kw::Sleep),
        b"benchmark" => (Kind::Word, Kw::Benchmark),
        b"information_schema"
        | b"load_file"
        | b"sysobjects"
        | b"syscolumns"
        | b"pg_catalog"
        | b"sqlite_master"
        | b"pg_shadow"
        | b"utl_http"
        | b"utl_inaddr"
        | b"extractvalue"
        | b"updatexml"
        | b"pg_read_file"
        | b"sys_exec"
        | b"sys_eval" => (Kind::Word, Kw::Probe),
        b"xp_cmdshell" | b"sp_executesql" | b"sp_configure" | b"xp_dirtree" | b"sp_oacreate"
        | b"xp_regread" | b"master" => (Kind::Word, Kw::SystemProc),
        _ => (Kind::Word, Kw::None),
    }
}

impl<'a> Lexer<'a> {
    fn new(bytes: &'a [u8], start: usize) -> Self {
        Lexer {
            bytes,
            pos: start,
            in_executable_comment: false,
            saw_executable_comment: None,
        }
    }

    fn peek(&self, offset: usize) -> Option<u8> {
        self.bytes.get(self.pos + offset).copied()
    }

    fn token(&self, kind: Kind, start: usize) -> Token {
        let first = self.bytes.get(start).copied().unwrap_or(0);
        Token {
            kind,
            kw: Kw::None,
            comment: CommentKind::BlockClosed,
            start,
            end: self.pos,
            first,
        }
    }

    /// Skips whitespace and the markers of executable comments, whose contents the server
    /// runs as code.
    fn skip_space(&mut self) {
        loop {
            let Some(byte) = self.peek(0) else { return };
            if is_space(byte) {
                self.pos += 1;
            } else if byte == b'/' && self.peek(1) == Some(b'*') && self.peek(2) == Some(b'!') {
                self.saw_executable_comment.get_or_insert(self.pos);
                self.in_executable_comment = true;
                self.pos += 3;
                while self.peek(0).is_some_and(|b| b.is_ascii_digit()) {
                    self.pos += 1;
                }
            } else if byte == b'*' && self.peek(1) == Some(b'/') && self.in_executable_comment {
                self.in_executable_comment = false;
                self.pos += 2;
            } else {
                return;
            }
        }
    }

    fn next_token(&mut self) -> Option<Token> {
        self.skip_space();
        let start = self.pos;
        let byte = self.peek(0)?;
        let token = match byte {
            b'\'' | b'"' => self.string(byte),
            b'`' => {
                self.pos += 1;
                while self.peek(0).is_some_and(|b| b != b'`') {
                    self.pos += 1;
                }
                if self.peek(0).is_some() {
                    self.pos += 1;
                }
                self.token(Kind::Word, start)
            }
            b'0'..=b'9' => self.number(),
            b'.' if self.peek(1).is_some_and(|b| b.is_ascii_digit()) => self.number(),
            b'@' => {
                self.pos += 1;
                if self.peek(0) == Some(b'@') {
                    self.pos += 1;
                }
                let name_start = self.pos;
                while self.peek(0).is_some_and(|b| is_word_byte(b) || b == b'.') {
                    self.pos += 1;
                }
                let mut token = self.token(Kind::Var, start);
                if self.bytes[name_start..self.pos].eq_ignore_ascii_case(b"version") {
                    token.kw = Kw::Probe;
                }
                token
            }
            b'#' => self.line_comment(1),
            b'-' if self.peek(1) == Some(b'-') => self.line_comment(2),
            b'/' if self.peek(1) == Some(b'*') => {
                self.pos += 2;
                let mut token = self.token(Kind::Comment, start);
                match super::decode::find(&self.bytes[self.pos..], b"*/") {
                    Some(offset) => {
                        self.pos += offset + 2;
                        token.comment = CommentKind::BlockClosed;
                    }
                    None => {
                        // An unclosed comment truncates the query. With text after it, as
                        // in the glob `'/*.js'`, it is more likely not SQL at all.
                        let rest = &self.bytes[self.pos..];
                        token.comment = if rest.iter().all(|&b| is_space(b)) {
                            CommentKind::BlockOpen
                        } else {
                            CommentKind::LineWeak
                        };
                        self.pos = self.bytes.len();
                    }
                }
                token.end = self.pos;
                token
            }
            b'(' => self.single(Kind::LParen),
            b')' => self.single(Kind::RParen),
            b',' => self.single(Kind::Comma),
            b';' => self.single(Kind::Semi),
            b'.' => self.single(Kind::Dot),
            b'|' if self.peek(1) == Some(b'|') => self.double(Kind::Logic),
            b'&' if self.peek(1) == Some(b'&') => self.double(Kind::Logic),
            b'<' | b'>' | b'=' | b'!' => self.comparison(),
            b':' if self.peek(1) == Some(b'=') => self.double(Kind::Op),
            b':' if self.peek(1) == Some(b':') => self.double(Kind::Op),
            b'+' | b'-' | b'*' | b'/' | b'%' | b'^' | b'|' | b'&' | b'~' => self.single(Kind::Op),
            _ if is_word_byte(byte) => self.word(),
            _ => {
                self.pos += 1;
                while self.peek(0).is_some_and(|b| (0x80..0xC0).contains(&b)) {
                    self.pos += 1;
                }
                self.token(Kind::Other, start)
            }
        };
        Some(token)
    }

    fn single(&mut self, kind: Kind) -> Token {
        let start = self.pos;
        self.pos += 1;
        self.token(kind, start)
    }

    fn double(&mut self, kind: Kind) -> Token {
        let start = self.pos;
        self.pos += 2;
        self.token(kind, start)
    }

    fn comparison(&mut self) -> Token {
        let start = self.pos;
        let first = self.peek(0);
        self.pos += 1;
        match (first, self.peek(0)) {
            (Some(b'<'), Some(b'=')) => {
                self.pos += 1;
                if self.peek(0) == Some(b'>') {
                    self.pos += 1;
                }
            }
            (Some(b'<'), Some(b'<')) | (Some(b'>'), Some(b'>')) => {
                self.pos += 1;
                return self.token(Kind::Op, start);
            }
            (Some(b'<' | b'>' | b'!'), Some(b'=' | b'>')) => self.pos += 1,
            (Some(b'!'), _) => return self.token(Kind::Op, start),
            _ => {}
        }
        self.token(Kind::Cmp, start)
    }

    fn string(&mut self, quote: u8) -> Token {
        let start = self.pos;
        self.pos += 1;
        loop {
            match memchr::memchr(quote, &self.bytes[self.pos..]) {
                Some(offset) => {
                    self.pos += offset + 1;
                    // A doubled quote is an escaped quote inside the literal.
                    if self.peek(0) == Some(quote) {
                        self.pos += 1;
                        continue;
                    }
                    break;
                }
                None => {
                    self.pos = self.bytes.len();
                    break;
                }
            }
        }
        self.token(Kind::Str, start)
    }

    fn number(&mut self) -> Token {
        let start = self.pos;
        let hex = self.peek(0) == Some(b'0') && matches!(self.peek(1), Some(b'x' | b'X' | b'b'));
        if hex {
            self.pos += 2;
            while self.peek(0).is_some_and(|b| b.is_ascii_hexdigit()) {
                self.pos += 1;
            }
        } else {
            while self
                .peek(0)
                .is_some_and(|b| b.is_ascii_digit() || b == b'.')
            {
                self.pos += 1;
            }
            if matches!(self.peek(0), Some(b'e' | b'E'))
                && self
                    .peek(1)
                    .is_some_and(|b| b.is_ascii_digit() || b == b'-' || b == b'+')
            {
                self.pos += 2;
                while self.peek(0).is_some_and(|b| b.is_ascii_digit()) {
                    self.pos += 1;
                }
            }
        }
        // Letters glued to a number: MySQL reads `1union` as `1 union`, but `2nd` is a word.
        if self.peek(0).is_some_and(is_word_byte) {
            let word_start = self.pos;
            let mut end = self.pos;
            while self.bytes.get(end).copied().is_some_and(is_word_byte) {
                end += 1;
            }
            let (kind, _) = classify(&self.bytes[word_start..end]);
            if !matches!(kind, Kind::Union | Kind::Logic | Kind::Clause | Kind::Cmp) {
                self.pos = end;
                return self.token(Kind::Word, start);
            }
        }
        self.token(Kind::Num, start)
    }

    fn line_comment(&mut self, marker: usize) -> Token {
        let start = self.pos;
        self.pos += marker;
        let body_start = self.pos;
        while self.peek(0).is_some_and(|b| b != b'\n') {
            self.pos += 1;
        }
        // `admin'--`, `admin' -- -` and `admin'#` end the query; `"# Title` or
        // `"Nice" -- really` are text that happens to contain a comment marker.
        let strong = self.bytes[body_start..self.pos]
            .iter()
            .all(|&b| is_space(b) || b == b'-' || b == b'+');
        let mut token = self.token(Kind::Comment, start);
        token.comment = if strong {
            CommentKind::LineStrong
        } else {
            CommentKind::LineWeak
        };
        token
    }

    fn word(&mut self) -> Token {
        let start = self.pos;
        let rest = &self.bytes[start..];
        self.pos += rest
            .iter()
            .position(|&b| !is_word_byte(b))
            .unwrap_or(rest.len());
        let (mut kind, kw) = classify(&self.bytes[start..self.pos]);
        // Only a blank, a comment marker or `(` after the word can make it a function call.
        let call_may_follow = self
            .peek(0)
            .is_some_and(|b| b == b'(' || b == b'/' || b == b'*' || is_space(b));
        if kind == Kind::Word && call_may_follow {
            let save = self.pos;
            let saved_state = self.in_executable_comment;
            self.skip_space();
            let mut look = self.pos;
            // Block comments between a function name and `(` are allowed by MySQL.
            while self.bytes[look..].starts_with(b"/*") {
                match super::decode::find(&self.bytes[look + 2..], b"*/") {
                    Some(offset) => look += offset + 4,
                    None => break,
                }
                while self.bytes.get(look).copied().is_some_and(is_space) {
                    look += 1;
                }
            }
            if self.bytes.get(look) == Some(&b'(') {
                kind = Kind::Func;
            }
            self.pos = save;
            self.in_executable_comment = saved_state;
        }
        let mut token = self.token(kind, start);
        token.kw = kw;
        token
    }
}

/// A detection: rule and byte range of the value it points at.
pub(crate) type Hit = (RuleId, std::ops::Range<usize>);

/// Token window with helpers for the grammar checks. Comments are skipped by [`Window::sig`]
/// and examined explicitly where they matter.
struct Window<'t> {
    tokens: &'t [Token],
}

/// Lexes up to [`WINDOW_TOKENS`] tokens, starting with `first`, into `buffer`. Returns how
/// many were written.
fn fill(lexer: &mut Lexer<'_>, first: Token, buffer: &mut [Token; WINDOW_TOKENS]) -> usize {
    buffer[0] = first;
    let mut length = 1;
    while length < WINDOW_TOKENS {
        match lexer.next_token() {
            Some(token) => {
                buffer[length] = token;
                length += 1;
            }
            None => break,
        }
    }
    length
}

impl<'t> Window<'t> {
    fn get(&self, index: usize) -> Option<&'t Token> {
        self.tokens.get(index)
    }

    /// The window starting at token `start`, at most [`WINDOW_TOKENS`] long.
    fn from(&self, start: usize) -> Window<'t> {
        let end = (start + WINDOW_TOKENS).min(self.tokens.len());
        Window {
            tokens: self.tokens.get(start..end).unwrap_or(&[]),
        }
    }

    fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Index of the first non-comment token at or after `index`.
    fn sig(&self, mut index: usize) -> Option<usize> {
        while let Some(token) = self.get(index) {
            if token.kind != Kind::Comment {
                return Some(index);
            }
            index += 1;
        }
        None
    }

    fn kind(&self, index: Option<usize>) -> Option<Kind> {
        index.and_then(|i| self.get(i)).map(|t| t.kind)
    }

    fn kw(&self, index: Option<usize>) -> Option<Kw> {
        index.and_then(|i| self.get(i)).map(|t| t.kw)
    }

    fn span(&self, from: usize, to: usize) -> std::ops::Range<usize> {
        let start = self.get(from).map_or(0, |t| t.start);
        let end = self
            .get(to.min(self.len().saturating_sub(1)))
            .map_or(start, |t| t.end);
        start..end.max(start)
    }

    /// Skips opening parentheses and unary operators, then one operand. Returns the index
    /// after the operand and whether the operand was a literal, a function or a subquery.
    fn operand(&self, index: usize) -> Option<(usize, Operand)> {
        let mut i = self.sig(index)?;
        while matches!(self.kind(Some(i)), Some(Kind::LParen | Kind::Op)) {
            if self.kind(Some(i)) == Some(Kind::LParen)
                && self.kind(self.sig(i + 1)) == Some(Kind::Stmt)
            {
                return Some((i + 1, Operand::Subquery));
            }
            i = self.sig(i + 1)?;
        }
        let token = self.get(i)?;
        let operand = match token.kind {
            Kind::Str | Kind::Num | Kind::Lit | Kind::Var => Operand::Literal,
            Kind::Word => Operand::Name,
            Kind::Func => Operand::Function,
            _ => return None,
        };
        let mut next = i + 1;
        if token.kind == Kind::Func {
            next = self.skip_group(next);
        }
        // Dotted names such as `users.id`.
        while self.kind(self.sig(next)) == Some(Kind::Dot) {
            next = self.sig(next).map_or(next, |d| d + 2);
            if self.kind(Some(next.saturating_sub(1))) == Some(Kind::Func) {
                next = self.skip_group(next);
            }
        }
        while self.kind(self.sig(next)) == Some(Kind::RParen) {
            next = self.sig(next).map_or(next, |p| p + 1);
        }
        Some((next, operand))
    }

    /// Skips a parenthesized group that starts at or after `index`.
    fn skip_group(&self, index: usize) -> usize {
        let Some(open) = self.sig(index) else {
            return index;
        };
        if self.kind(Some(open)) != Some(Kind::LParen) {
            return index;
        }
        let mut depth = 0usize;
        let mut i = open;
        while let Some(token) = self.get(i) {
            match token.kind {
                Kind::LParen => depth += 1,
                Kind::RParen => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return i + 1;
                    }
                }
                _ => {}
            }
            i += 1;
        }
        i
    }

    /// Checks for a condition such as `1=1`, `'a'='a'`, `sleep(5)`, `1 --` or `(select ...)`
    /// starting at `index`. `strict` requires a literal on one side of a comparison.
    fn condition(&self, index: usize, strict: bool) -> Option<usize> {
        let (mut next, left) = self.operand(index)?;
        if left == Operand::Subquery {
            return Some(next);
        }
        // Arithmetic on the left side, as in `2*3*8=6*8`.
        while self.kind(self.sig(next)) == Some(Kind::Op) {
            match self.sig(next).and_then(|op| self.operand(op + 1)) {
                Some((after_operand, _)) => next = after_operand,
                None => break,
            }
        }
        let after = self.sig(next);
        match self.kind(after) {
            Some(Kind::Cmp) => {
                let (end, right) = self.operand(after? + 1)?;
                let has_literal = left != Operand::Name || right != Operand::Name;
                (!strict || has_literal).then_some(end)
            }
            _ if left == Operand::Function => Some(next),
            _ if left == Operand::Literal && self.literal_ends_condition(next) => Some(next),
            _ => None,
        }
    }

    /// A bare literal after AND/OR is a condition when a comment, another AND/OR or a
    /// semicolon follows it, as in `' or 1 --`.
    fn literal_ends_condition(&self, index: usize) -> bool {
        match self.get(index) {
            Some(token) if token.kind == Kind::Comment => {
                matches!(
                    token.comment,
                    CommentKind::LineStrong | CommentKind::BlockOpen
                ) || self.get(index + 1).is_none()
            }
            Some(token) => matches!(token.kind, Kind::Logic | Kind::Semi),
            None => false,
        }
    }

    /// UNION [ALL|DISTINCT] SELECT followed by a select list that looks like code.
    fn union_select(&self, index: usize) -> bool {
        let mut i = match self.sig(index + 1) {
            Some(i) => i,
            None => return false,
        };
        while matches!(self.kw(Some(i)), Some(Kw::All | Kw::Distinct))
            || self.kind(Some(i)) == Some(Kind::LParen)
        {
            i = match self.sig(i + 1) {
                Some(next) => next,
                None => return false,
            };
        }
        self.kw(Some(i)) == Some(Kw::Select) && self.select_list(i + 1)
    }

    /// Evidence that what follows SELECT is a select list rather than prose.
    fn select_list(&self, index: usize) -> bool {
        let Some(first) = self.sig(index) else {
            return false;
        };
        for i in first..first + 6 {
            let Some(token) = self.get(i) else {
                return false;
            };
            match token.kind {
                Kind::Num | Kind::Str | Kind::Lit | Kind::Var | Kind::Func | Kind::Comma => {
                    return true
                }
                Kind::Op if token.first == b'*' => return true,
                Kind::Comment => return i > first,
                Kind::Clause if token.kw == Kw::From => {
                    return matches!(self.kind(self.sig(i + 1)), Some(Kind::Word | Kind::LParen));
                }
                Kind::Word | Kind::Dot | Kind::LParen | Kind::Clause => {}
                _ => return false,
            }
        }
        false
    }

    /// A statement whose shape is specific enough to be a stacked query.
    fn statement(&self, index: usize) -> bool {
        let Some(i) = self.sig(index) else {
            return false;
        };
        let Some(token) = self.get(i) else {
            return false;
        };
        if token.kind != Kind::Stmt {
            return false;
        }
        let next = self.sig(i + 1);
        let next_kw = self.kw(next);
        let next_kind = self.kind(next);
        match token.kw {
            Kw::Select => self.select_list(i + 1),
            Kw::Drop | Kw::Truncate | Kw::Alter | Kw::Create => {
                matches!(next_kw, Some(Kw::Table | Kw::ObjectKind))
            }
            Kw::Delete => next_kw == Some(Kw::From),
            Kw::Insert => next_kw == Some(Kw::Into),
            Kw::Update => {
                next_kind == Some(Kind::Word)
                    && self.kw(next.and_then(|n| self.sig(n + 1))) == Some(Kw::Set)
            }
            Kw::Exec => {
                matches!(next_kw, Some(Kw::SystemProc))
                    || matches!(next_kind, Some(Kind::Var | Kind::Str | Kind::LParen))
                    || next
                        .and_then(|n| self.get(n))
                        .is_some_and(|t| t.kind == Kind::Func)
            }
            Kw::Declare => next_kind == Some(Kind::Var),
            Kw::Shutdown => {
                matches!(next_kind, None | Some(Kind::Semi)) || next_kw == Some(Kw::With)
            }
            Kw::Waitfor => next_kw == Some(Kw::Delay),
            Kw::Grant => matches!(next_kind, Some(Kind::Clause | Kind::Stmt)),
            _ => false,
        }
    }

    /// ORDER BY n, GROUP BY n, HAVING cond, LIMIT n, PROCEDURE ANALYSE, INTO OUTFILE.
    fn clause(&self, index: usize) -> bool {
        let Some(token) = self.get(index) else {
            return false;
        };
        let next = self.sig(index + 1);
        match token.kw {
            Kw::Order | Kw::Group => {
                self.kw(next) == Some(Kw::By) && {
                    let target = next.and_then(|n| self.sig(n + 1));
                    match self.kind(target) {
                        Some(Kind::Num) => true,
                        Some(Kind::Word) => {
                            let after = target.and_then(|t| self.get(t + 1));
                            after.is_some_and(|t| {
                                t.kind == Kind::Comment
                                    || matches!(t.kw, Kw::Having)
                                    || t.kind == Kind::Comma
                            })
                        }
                        _ => false,
                    }
                }
            }
            Kw::Having | Kw::Where => self.condition(index + 1, true).is_some(),
            Kw::Limit => {
                self.kind(next) == Some(Kind::Num) && {
                    let after = next.map_or(index, |n| n + 1);
                    matches!(
                        self.get(after).map(|t| t.kind),
                        Some(Kind::Comment | Kind::Union | Kind::Comma)
                    ) || self.kw(self.sig(after)) == Some(Kw::Into)
                }
            }
            Kw::Procedure => self.kw(next) == Some(Kw::Analyse),
            Kw::Into => {
                matches!(self.kw(next), Some(Kw::FileSink)) || self.kind(next) == Some(Kind::Var)
            }
            _ => false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Operand {
    Literal,
    Name,
    Function,
    Subquery,
}

/// Token buffer reused across values, so that benign input allocates nothing once it has
/// grown.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    tokens: Vec<Token>,
}

/// SQL injection detector for one decoded value.
pub(crate) struct Detector<'a> {
    bytes: &'a [u8],
}

impl<'a> Detector<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Detector {
            bytes: text.as_bytes(),
        }
    }

    /// Runs every reading and pushes the hits. Rules that only higher paranoia levels use
    /// are reported too; the caller filters by level.
    pub(crate) fn detect(&self, scratch: &mut Scratch, hits: &mut Vec<Hit>) {
        self.bare_reading(scratch, hits);
        for at in memchr::memchr3_iter(b'\'', b'"', b'`', self.bytes) {
            self.break_reading(at + 1, hits);
        }
    }

    fn push(hits: &mut Vec<Hit>, rule: RuleId, span: std::ops::Range<usize>) {
        if !hits.iter().any(|(existing, _)| *existing == rule) {
            hits.push((rule, span));
        }
    }

    /// Reads the value from the start, as pasted into a numeric or identifier context, and
    /// scans the whole token stream for time-delay functions, probing names and statements.
    fn bare_reading(&self, scratch: &mut Scratch, hits: &mut Vec<Hit>) {
        let tokens = &mut scratch.tokens;
        tokens.clear();
        let mut lexer = Lexer::new(self.bytes, 0);
        while let Some(token) = lexer.next_token() {
            if tokens.len() == MAX_TOKENS {
                break;
            }
            tokens.push(token);
        }
        let all = Window { tokens };
        self.check_start(&all.from(0), hits);
        for (index, token) in tokens.iter().enumerate() {
            let trigger = matches!(
                token.kind,
                Kind::Func | Kind::Union | Kind::Semi | Kind::Stmt | Kind::Var
            ) || matches!(token.kw, Kw::Probe | Kw::SystemProc);
            if trigger {
                self.check_anywhere(&all.from(index), hits);
            }
        }
        if let Some(at) = lexer.saw_executable_comment {
            Self::push(
                hits,
                RuleId::SQLI_EXEC_COMMENT,
                at..(at + 3).min(self.bytes.len()),
            );
        }
    }

    /// Shapes at the start of a numeric reading: `1 or 1=1`, `1 union select`, `1; drop`.
    fn check_start(&self, window: &Window, hits: &mut Vec<Hit>) {
        if window.kind(Some(0)) == Some(Kind::Stmt) && window.statement(0) {
            Self::push(hits, RuleId::SQLI_STATEMENT, window.span(0, 3));
        }
        let Some(first) = window.get(0) else { return };
        let mut i = 0;
        if first.kind == Kind::Op && window.kind(Some(1)) == Some(Kind::Num) {
            i = 1;
        }
        let leading = window.kind(Some(i));
        if !matches!(leading, Some(Kind::Num | Kind::Word | Kind::Var)) {
            return;
        }
        let numeric = leading == Some(Kind::Num);
        let mut next = i + 1;
        while window.kind(Some(next)) == Some(Kind::RParen) {
            next += 1;
        }
        let Some(token) = window.get(next) else {
            return;
        };
        match token.kind {
            Kind::Logic if window.condition(next + 1, !numeric).is_some() => {
                Self::push(hits, RuleId::SQLI_BOOLEAN, window.span(0, next + 4));
            }
            Kind::Comment if numeric => {
                Self::push(hits, RuleId::SQLI_NUMERIC_COMMENT, window.span(0, next));
            }
            Kind::Clause if numeric && window.clause(next) => {
                Self::push(hits, RuleId::SQLI_CLAUSE, window.span(0, next + 3));
            }
            Kind::Stmt if window.statement(next) => {
                Self::push(hits, RuleId::SQLI_STATEMENT, window.span(0, next + 3));
            }
            _ => {}
        }
    }

    /// Shapes that are injections wherever they appear.
    fn check_anywhere(&self, window: &Window, hits: &mut Vec<Hit>) {
        let Some(first) = window.get(0) else { return };
        match first.kind {
            Kind::Func if matches!(first.kw, Kw::Sleep | Kw::Benchmark) => {
                let open = window.sig(1);
                let argument = open.and_then(|o| window.sig(o + 1));
                if matches!(
                    window.kind(argument),
                    Some(Kind::Num | Kind::Var | Kind::Func | Kind::LParen)
                ) {
                    Self::push(hits, RuleId::SQLI_TIME_DELAY, window.span(0, 3));
                }
            }
            Kind::Stmt if first.kw == Kw::Waitfor => {
                let next = window.sig(1);
                if window.kw(next) == Some(Kw::Delay)
                    && window.kind(next.and_then(|n| window.sig(n + 1))) == Some(Kind::Str)
                {
                    Self::push(hits, RuleId::SQLI_TIME_DELAY, window.span(0, 2));
                }
            }
            Kind::Union if window.union_select(0) => {
                Self::push(hits, RuleId::SQLI_UNION, window.span(0, 3));
            }
            Kind::Semi if window.statement(1) => {
                Self::push(hits, RuleId::SQLI_STACKED, window.span(0, 3));
            }
            _ => {}
        }
        let probe = match first.kw {
            Kw::SystemProc => self.word_is_system_proc(first),
            Kw::Probe => {
                matches!(first.kind, Kind::Func | Kind::Var)
                    || window.kind(window.sig(1)) == Some(Kind::Dot)
            }
            _ => false,
        };
        if probe {
            Self::push(hits, RuleId::SQLI_PROBE, window.span(0, 1));
        }
    }

    /// `master` alone is an ordinary word; only the `xp_`/`sp_` names count as probes.
    fn word_is_system_proc(&self, token: &Token) -> bool {
        let word = &self.bytes[token.start..token.end];
        word.len() > 3
            && (word[..3].eq_ignore_ascii_case(b"xp_") || word[..3].eq_ignore_ascii_case(b"sp_"))
    }

    /// Reads the value as if the quote just before `start` closed the application's string.
    fn break_reading(&self, start: usize, hits: &mut Vec<Hit>) {
        // Each reading sees at most MAX_BREAK_BYTES, so that many quotes followed by long
        // comments or strings cost linear time.
        let end = (start + MAX_BREAK_BYTES).min(self.bytes.len());
        let mut lexer = Lexer::new(&self.bytes[..end], start);
        let Some(first) = lexer.next_token() else {
            return;
        };
        if !matches!(
            first.kind,
            Kind::Logic
                | Kind::Cmp
                | Kind::Op
                | Kind::Union
                | Kind::Semi
                | Kind::Comment
                | Kind::RParen
                | Kind::Clause
                | Kind::Comma
                | Kind::Stmt
        ) {
            return;
        }
        let mut buffer = [first; WINDOW_TOKENS];
        let length = fill(&mut lexer, first, &mut buffer);
        let window = Window {
            tokens: &buffer[..length],
        };
        let quote = start.saturating_sub(1);
        let mut i = 0;
        while window.kind(Some(i)) == Some(Kind::RParen) {
            i += 1;
        }
        let Some(token) = window.get(i) else { return };
        let span = |to: usize| {
            let range = window.span(i, to);
            quote..range.end.max(quote + 1)
        };
        match token.kind {
            Kind::Comment => match token.comment {
                CommentKind::LineStrong | CommentKind::BlockOpen => {
                    Self::push(hits, RuleId::SQLI_COMMENT_BREAK, span(i));
                }
                CommentKind::BlockClosed => {
                    // `'/**/or/**/1=1`: look at what follows the comment.
                    self.after_break(&window, i + 1, hits, quote);
                }
                CommentKind::LineWeak => {
                    Self::push(hits, RuleId::SQLI_WEAK_COMMENT, span(i));
                }
            },
            _ => self.after_break(&window, i, hits, quote),
        }
        self.check_anywhere_in(&window, hits);
    }

    fn after_break(&self, window: &Window, index: usize, hits: &mut Vec<Hit>, quote: usize) {
        let Some(i) = window.sig(index) else { return };
        let Some(token) = window.get(i) else { return };
        let span = |to: usize| {
            let range = window.span(i, to);
            quote..range.end.max(quote + 1)
        };
        match token.kind {
            Kind::Logic if window.condition(i + 1, false).is_some() => {
                Self::push(hits, RuleId::SQLI_BOOLEAN, span(i + 4));
            }
            Kind::Cmp => {
                // Word operators (IN, IS, LIKE) are common in prose after a quote, as in
                // `5'11" in cm`, so they need a literal on the right.
                let symbolic = matches!(token.first, b'=' | b'<' | b'>' | b'!');
                if let Some((end, operand)) = window.operand(i + 1) {
                    let ends = match window.get(end) {
                        None => true,
                        Some(t) => matches!(t.kind, Kind::Logic | Kind::Semi | Kind::Comment),
                    };
                    if ends && (symbolic || operand == Operand::Literal) {
                        Self::push(hits, RuleId::SQLI_BOOLEAN, span(end));
                    }
                }
            }
            Kind::Op | Kind::Comma => {
                if let Some((end, operand)) = window.operand(i + 1) {
                    if operand == Operand::Subquery
                        || (operand == Operand::Function
                            && window.get(i + 1).is_some_and(|t| t.kind == Kind::Func)
                            && window.get(end).is_none_or(|t| {
                                matches!(
                                    t.kind,
                                    Kind::Op | Kind::Logic | Kind::Comment | Kind::Comma
                                )
                            }))
                    {
                        Self::push(hits, RuleId::SQLI_SUBQUERY, span(end));
                    }
                }
            }
            Kind::Union if window.union_select(i) => {
                Self::push(hits, RuleId::SQLI_UNION, span(i + 3));
            }
            Kind::Semi if window.statement(i + 1) => {
                Self::push(hits, RuleId::SQLI_STACKED, span(i + 3));
            }
            Kind::Clause if window.clause(i) => {
                Self::push(hits, RuleId::SQLI_CLAUSE, span(i + 3));
            }
            _ => {}
        }
    }

    fn check_anywhere_in(&self, window: &Window, hits: &mut Vec<Hit>) {
        for (start, token) in window.tokens.iter().enumerate() {
            if matches!(
                token.kind,
                Kind::Func | Kind::Union | Kind::Semi | Kind::Stmt
            ) {
                self.check_anywhere(&window.from(start), hits);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> Vec<u32> {
        let mut hits = Vec::new();
        Detector::new(text).detect(&mut Scratch::default(), &mut hits);
        let mut ids: Vec<u32> = hits.iter().map(|(rule, _)| rule.0).collect();
        ids.sort_unstable();
        ids
    }

    fn level_one(text: &str) -> Vec<u32> {
        rules(text)
            .into_iter()
            .filter(|&id| RuleId(id).info().is_some_and(|info| info.paranoia == 1))
            .collect()
    }

    #[test]
    fn tautologies_after_quote() {
        for attack in [
            "' or 1=1--",
            "' OR 'a'='a",
            "admin' or '1'='1",
            "x') or ('x'='x",
            "' or ''='",
            "'or 1 --",
            "' || 1=1 #",
            "1' and 1=0 --",
            "'/**/or/**/1=1#",
            "' or true--",
            "' OR username IS NOT NULL --",
            "' and ascii(substring(user(),1,1))>64--",
        ] {
            assert!(
                level_one(attack).contains(&2001),
                "{attack}: {:?}",
                rules(attack)
            );
        }
    }

    #[test]
    fn numeric_tautologies() {
        for attack in [
            "1 or 1=1",
            "-1 OR 2>1",
            "1) or (1=1",
            "10 and sleep(5)",
            "1 AnD 1=2",
        ] {
            assert!(
                level_one(attack).contains(&2001),
                "{attack}: {:?}",
                rules(attack)
            );
        }
    }

    #[test]
    fn union_select() {
        for attack in [
            "1 union select 1,2,3",
            "' UNION ALL SELECT NULL,NULL--",
            "-1 union/**/select/**/username,password/**/from/**/users",
            "1 /*!50000union*/ /*!50000select*/ 1,2",
            "x' union select * from users--",
            "0 union(select(1),2)",
        ] {
            assert!(
                level_one(attack).contains(&2002),
                "{attack}: {:?}",
                rules(attack)
            );
        }
    }

    #[test]
    fn stacked_queries() {
        for attack in [
            "1; drop table users",
            "'; DROP TABLE users; --",
            "x'; exec xp_cmdshell 'dir'--",
            "1; shutdown --",
            "'; insert into admins values ('x')--",
            "1;update users set role='admin'",
            "'; waitfor delay '0:0:5'--",
            "'; declare @q varchar(99)--",
        ] {
            assert!(
                level_one(attack).contains(&2003),
                "{attack}: {:?}",
                rules(attack)
            );
        }
    }

    #[test]
    fn comment_truncation() {
        for attack in [
            "admin'--",
            "admin' #",
            "admin'/*",
            "admin')-- -",
            "admin\"--",
        ] {
            assert!(
                level_one(attack).contains(&2004),
                "{attack}: {:?}",
                rules(attack)
            );
        }
    }

    #[test]
    fn time_delay_and_probes() {
        assert!(rules("1 and sleep(5)").contains(&2005));
        assert!(rules("benchmark(5000000,md5(1))").contains(&2005));
        assert!(rules("';select pg_sleep(10)--").contains(&2005));
        assert!(rules("1;waitfor delay '0:0:10'").contains(&2005));
        assert!(rules("select @@version").contains(&2008));
        assert!(rules("select table_name from information_schema.tables").contains(&2008));
        assert!(rules("load_file('/etc/passwd')").contains(&2008));
    }

    #[test]
    fn executable_comment() {
        assert!(rules("1/*!50000or*/1=1").contains(&2006));
        assert!(rules("/*!union*/").contains(&2006));
    }

    #[test]
    fn clauses_after_break() {
        for attack in [
            "' order by 3--",
            "1 order by 10",
            "' group by columnnames having 1=1--",
            "' into outfile '/tmp/x'",
            "1 procedure analyse()",
            "' limit 1 union select 1--",
        ] {
            assert!(
                level_one(attack).iter().any(|&id| id == 2007 || id == 2002),
                "{attack}: {:?}",
                rules(attack)
            );
        }
    }

    #[test]
    fn subqueries_after_break() {
        assert!(level_one("'||(select password from users)||'").contains(&2001));
        assert!(level_one("'+(select 1)+'").contains(&2009));
        assert!(level_one("x', (select 1))--")
            .iter()
            .any(|&id| id == 2009 || id == 2004));
    }

    #[test]
    fn benign_text_passes() {
        for benign in [
            "union station",
            "O'Brien",
            "Tom & Jerry",
            "100%",
            "Tr0ub4dor&3!x#Q",
            "p@$$w0rd'\"!",
            "select a seat from the list",
            "Please select your country from the drop down",
            "It's 5 o'clock somewhere",
            "drop me a line; I'll update you",
            "I'd order by phone",
            "rock 'n' roll",
            "\"rock\" and \"roll\" -live",
            "the 'or' operator",
            "he said 'yes' or 'no'",
            "1 + 1 = 2",
            "version 2.0 (beta)",
            "sleep 8 hours",
            "the delete key; the insert key",
            "Kids' group by age",
            "we'd like 1 or 2 more",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            "color: #ff0000; font-weight: bold",
            "use the '#' key",
            "run with '--verbose'",
            "match files like '/*.js'",
            "It's a union select committee",
            "a=1&b=2",
            "SELECT is a keyword",
        ] {
            assert!(
                level_one(benign).is_empty(),
                "{benign}: {:?}",
                rules(benign)
            );
        }
    }

    #[test]
    fn random_input_never_panics() {
        let alphabet = b"'\"` ()=<>!|&-#/*;,.0123456789@abcUNIONselectorSLEEP\x80\xff";
        let mut state: u64 = 0x2545_F491_4F6C_DD1D;
        for _ in 0..3000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let length = (state % 48) as usize;
            let mut raw = Vec::with_capacity(length);
            for _ in 0..length {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                raw.push(alphabet[(state % alphabet.len() as u64) as usize]);
            }
            let text = String::from_utf8_lossy(&raw);
            let mut hits = Vec::new();
            Detector::new(&text).detect(&mut Scratch::default(), &mut hits);
            for (_, span) in hits {
                assert!(span.start <= span.end);
                assert!(span.end <= text.len());
            }
        }
    }
}
