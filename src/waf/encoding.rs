//! Request body content codings (`Content-Encoding`): which ones the inspector decodes, and
//! bounded decompression of gzip and deflate bodies.

use std::io::Read;

use super::head::trim;

/// Maximum ratio of decompressed to compressed size. Ordinary JSON and form bodies compress
/// by an estimated 3 to 20 times, so a body that expands further is treated as a
/// decompression bomb.
pub const MAX_COMPRESSION_RATIO: usize = 100;

/// Decompressed size that is always allowed (within the body limit) whatever the ratio, so
/// that small bodies, whose gzip header and trailer dominate, are not rejected.
const MIN_DECOMPRESSED_ALLOWANCE: usize = 4096;

/// Content coding of a request body that the inspector can decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentEncoding {
    /// No `Content-Encoding`, or only `identity`.
    Identity,
    /// `gzip` or `x-gzip` (RFC 1952), one or more members.
    Gzip,
    /// `deflate`: a zlib stream (RFC 1950), or a raw deflate stream (RFC 1951), which some
    /// clients send under this name.
    Deflate,
}

/// Returns the coding named by the `Content-Encoding` headers, or `None` when the inspector
/// cannot decode it: `br`, `zstd`, `compress`, an unknown name, or more than one coding
/// other than `identity`. Header names are compared case-insensitively.
pub(crate) fn content_encoding(headers: &[(&str, &[u8])]) -> Option<ContentEncoding> {
    let mut found = ContentEncoding::Identity;
    for (name, value) in headers {
        if !name.eq_ignore_ascii_case("content-encoding") {
            continue;
        }
        for coding in value.split(|&b| b == b',') {
            let coding = trim(coding);
            if coding.is_empty() || coding.eq_ignore_ascii_case(b"identity") {
                continue;
            }
            let decoded =
                if coding.eq_ignore_ascii_case(b"gzip") || coding.eq_ignore_ascii_case(b"x-gzip") {
                    ContentEncoding::Gzip
                } else if coding.eq_ignore_ascii_case(b"deflate") {
                    ContentEncoding::Deflate
                } else {
                    return None;
                };
            if found != ContentEncoding::Identity {
                return None;
            }
            found = decoded;
        }
    }
    Some(found)
}

/// Result of decompressing a body.
pub(crate) struct Decompressed {
    /// The decompressed bytes, cut at the size bound.
    pub bytes: Vec<u8>,
    /// The stream was corrupt, or its output passed the size bound.
    pub failed: bool,
}

/// Decompresses `body`, stopping once the output passes `max_bytes` or
/// [`MAX_COMPRESSION_RATIO`] times the input, whichever is smaller (but at least
/// `MIN_DECOMPRESSED_ALLOWANCE` bytes when `max_bytes` allows). Work and memory are
/// therefore bounded by the input length and the bound, whatever the stream claims.
pub(crate) fn decompress(body: &[u8], encoding: ContentEncoding, max_bytes: usize) -> Decompressed {
    let bound = body
        .len()
        .saturating_mul(MAX_COMPRESSION_RATIO)
        .max(MIN_DECOMPRESSED_ALLOWANCE)
        .min(max_bytes);
    match encoding {
        ContentEncoding::Identity => Decompressed {
            bytes: body.to_vec(),
            failed: false,
        },
        ContentEncoding::Gzip => read_bounded(flate2::read::MultiGzDecoder::new(body), bound),
        ContentEncoding::Deflate => {
            let zlib = read_bounded(flate2::read::ZlibDecoder::new(body), bound);
            if zlib.failed && zlib.bytes.is_empty() {
                read_bounded(flate2::read::DeflateDecoder::new(body), bound)
            } else {
                zlib
            }
        }
    }
}

fn read_bounded(decoder: impl Read, bound: usize) -> Decompressed {
    let mut bytes = Vec::new();
    // Reading one byte past the bound separates a body that fits exactly from a larger one.
    let limit = u64::try_from(bound).unwrap_or(u64::MAX).saturating_add(1);
    let result = decoder.take(limit).read_to_end(&mut bytes);
    let over = bytes.len() > bound;
    bytes.truncate(bound);
    Decompressed {
        bytes,
        failed: result.is_err() || over,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn content_encoding_names() {
        let cases: &[(&[u8], Option<ContentEncoding>)] = &[
            (b"gzip", Some(ContentEncoding::Gzip)),
            (b"X-Gzip", Some(ContentEncoding::Gzip)),
            (b"deflate", Some(ContentEncoding::Deflate)),
            (b"identity", Some(ContentEncoding::Identity)),
            (b"identity, gzip", Some(ContentEncoding::Gzip)),
            (b"", Some(ContentEncoding::Identity)),
            (b"br", None),
            (b"zstd", None),
            (b"compress", None),
            (b"gzip, gzip", None),
            (b"deflate, gzip", None),
            (b"rot13", None),
        ];
        for &(value, expected) in cases {
            let headers = [("Content-Encoding", value)];
            assert_eq!(
                content_encoding(&headers),
                expected,
                "{}",
                String::from_utf8_lossy(value)
            );
        }
        assert_eq!(content_encoding(&[]), Some(ContentEncoding::Identity));
        let stacked: &[(&str, &[u8])] =
            &[("content-encoding", b"gzip"), ("content-encoding", b"br")];
        assert_eq!(content_encoding(stacked), None);
    }

    #[test]
    fn gzip_round_trip() {
        let decoded = decompress(&gzip(b"{\"a\":1}"), ContentEncoding::Gzip, 1000);
        assert!(!decoded.failed);
        assert_eq!(decoded.bytes, b"{\"a\":1}");
    }

    #[test]
    fn gzip_members_concatenated() {
        let mut body = gzip(b"first ");
        body.extend(gzip(b"second"));
        let decoded = decompress(&body, ContentEncoding::Gzip, 1000);
        assert!(!decoded.failed);
        assert_eq!(decoded.bytes, b"first second");
    }

    #[test]
    fn deflate_zlib_and_raw() {
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        zlib.write_all(b"zlib body").unwrap();
        let decoded = decompress(&zlib.finish().unwrap(), ContentEncoding::Deflate, 100);
        assert_eq!(decoded.bytes, b"zlib body");
        assert!(!decoded.failed);

        let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        raw.write_all(b"raw body").unwrap();
        let decoded = decompress(&raw.finish().unwrap(), ContentEncoding::Deflate, 100);
        assert_eq!(decoded.bytes, b"raw body");
        assert!(!decoded.failed);
    }

    #[test]
    fn corrupt_stream_fails() {
        let decoded = decompress(b"not gzip at all", ContentEncoding::Gzip, 1000);
        assert!(decoded.failed);
        let mut truncated = gzip(b"some text that is long enough");
        truncated.truncate(truncated.len() - 6);
        assert!(decompress(&truncated, ContentEncoding::Gzip, 1000).failed);
    }

    #[test]
    fn bomb_stops_at_bounds() {
        let bomb = gzip(&vec![b'a'; 10 << 20]);
        assert!(bomb.len() < 20_000, "{}", bomb.len());
        // The body limit binds first.
        let decoded = decompress(&bomb, ContentEncoding::Gzip, 65536);
        assert!(decoded.failed);
        assert_eq!(decoded.bytes.len(), 65536);
        // The ratio binds first.
        let decoded = decompress(&bomb, ContentEncoding::Gzip, 16 << 20);
        assert!(decoded.failed);
        assert_eq!(decoded.bytes.len(), bomb.len() * MAX_COMPRESSION_RATIO);
    }

    #[test]
    fn exact_fit_passes() {
        let data = vec![b'x'; MIN_DECOMPRESSED_ALLOWANCE];
        let decoded = decompress(&gzip(&data), ContentEncoding::Gzip, data.len());
        assert!(!decoded.failed);
        assert_eq!(decoded.bytes.len(), data.len());
    }
}
