//! A raw HTTP/1.1 client for tests. It sends the request target and header bytes exactly as
//! given, so paths such as `//admin` or `/./admin` and non-UTF-8 header values reach Envoy
//! unchanged, which URL-parsing clients would not allow.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use serde_json::Value;

/// A request to send over a new connection.
#[derive(Debug, Clone)]
pub struct Request {
    method: String,
    target: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Body,
    timeout: Duration,
}

#[derive(Debug, Clone)]
enum Body {
    None,
    Whole(Vec<u8>),
    Chunked(Vec<Vec<u8>>),
}

/// A response read to its end.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Request {
    /// Creates a request with `method` and the raw request target, such as `/a?b=c`.
    pub fn new(method: &str, target: &str) -> Self {
        Self {
            method: method.to_owned(),
            target: target.to_owned(),
            headers: Vec::new(),
            body: Body::None,
            timeout: Duration::from_secs(10),
        }
    }

    /// Creates a GET request.
    pub fn get(target: &str) -> Self {
        Self::new("GET", target)
    }

    /// Creates a POST request.
    pub fn post(target: &str) -> Self {
        Self::new("POST", target)
    }

    /// Adds a header; repeated names are sent as repeated lines.
    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.headers
            .push((name.to_owned(), value.as_ref().to_vec()));
        self
    }

    /// Adds `Authorization: Bearer TOKEN`.
    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", format!("Bearer {token}"))
    }

    /// Sets a body sent with `content-length`.
    pub fn body(mut self, body: impl AsRef<[u8]>) -> Self {
        self.body = Body::Whole(body.as_ref().to_vec());
        self
    }

    /// Sets a body sent in these chunks with `transfer-encoding: chunked`.
    pub fn chunked<I, C>(mut self, chunks: I) -> Self
    where
        I: IntoIterator<Item = C>,
        C: AsRef<[u8]>,
    {
        self.body = Body::Chunked(chunks.into_iter().map(|c| c.as_ref().to_vec()).collect());
        self
    }

    /// Sets the time allowed for the whole exchange.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sends the request to 127.0.0.1:`port` and reads the response.
    pub fn send(&self, port: u16) -> anyhow::Result<Response> {
        let mut stream = TcpStream::connect(("127.0.0.1", port))
            .with_context(|| format!("failed to connect to 127.0.0.1:{port}"))?;
        stream.set_read_timeout(Some(self.timeout))?;
        stream.set_write_timeout(Some(self.timeout))?;
        stream.write_all(&self.to_bytes())?;
        let mut raw = Vec::new();
        stream
            .read_to_end(&mut raw)
            .context("failed to read the response")?;
        parse_response(&raw)
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!("{} {} HTTP/1.1\r\n", self.method, self.target).into_bytes();
        let has_host = self
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("host"));
        if !has_host {
            out.extend_from_slice(b"host: localhost\r\n");
        }
        for (name, value) in &self.headers {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"connection: close\r\n");
        match &self.body {
            Body::None => out.extend_from_slice(b"\r\n"),
            Body::Whole(body) => {
                out.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
                out.extend_from_slice(body);
            }
            Body::Chunked(chunks) => {
                out.extend_from_slice(b"transfer-encoding: chunked\r\n\r\n");
                for chunk in chunks.iter().filter(|c| !c.is_empty()) {
                    out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                    out.extend_from_slice(chunk);
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(b"0\r\n\r\n");
            }
        }
        out
    }
}

impl Response {
    /// Returns the first value of header `name` (case-insensitive), lossily decoded.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }

    /// Returns every value of header `name`.
    pub fn header_all(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .collect()
    }

    /// Returns the body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Parses the body as JSON.
    pub fn json(&self) -> anyhow::Result<Value> {
        serde_json::from_slice(&self.body)
            .with_context(|| format!("response body is not JSON: {}", self.text()))
    }

    /// For responses of the echo upstream: every value the upstream received for `name`.
    pub fn echoed_header(&self, name: &str) -> anyhow::Result<Vec<String>> {
        let echo = self.json()?;
        let headers = echo
            .get("headers")
            .and_then(Value::as_array)
            .ok_or_else(|| anyhow!("response is not an echo: {}", self.text()))?;
        Ok(headers
            .iter()
            .filter_map(Value::as_array)
            .filter(|pair| pair.first().and_then(Value::as_str) == Some(name))
            .filter_map(|pair| pair.get(1).and_then(Value::as_str).map(str::to_owned))
            .collect())
    }

    /// For responses of the echo upstream: the request target the upstream received.
    pub fn echoed_path(&self) -> anyhow::Result<String> {
        let echo = self.json()?;
        echo.get("path")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("response is not an echo: {}", self.text()))
    }
}

fn parse_response(raw: &[u8]) -> anyhow::Result<Response> {
    let mut header_buf = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Response::new(&mut header_buf);
    let head_len = match parsed.parse(raw)? {
        httparse::Status::Complete(len) => len,
        httparse::Status::Partial => bail!("incomplete response head ({} bytes)", raw.len()),
    };
    let status = parsed
        .code
        .ok_or_else(|| anyhow!("response has no status"))?;
    let headers: Vec<(String, Vec<u8>)> = parsed
        .headers
        .iter()
        .map(|h| (h.name.to_ascii_lowercase(), h.value.to_vec()))
        .collect();
    let rest = &raw[head_len..];
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && String::from_utf8_lossy(v).contains("chunked"));
    let body = if chunked {
        decode_chunked(rest)?
    } else {
        rest.to_vec()
    };
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn decode_chunked(mut data: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = find_crlf(data).ok_or_else(|| anyhow!("truncated chunk size"))?;
        let size_text = std::str::from_utf8(&data[..line_end])?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        if data.len() < size + 2 {
            bail!("truncated chunk");
        }
        body.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

fn find_crlf(data: &[u8]) -> Option<usize> {
    data.windows(2).position(|w| w == b"\r\n")
}
