//! Tests of the public inspector API.

use super::*;

fn waf_with(json: &str) -> Waf {
    let settings: WafSettings = serde_json::from_str(json).unwrap();
    Waf::compile(&settings).unwrap()
}

fn head_report(waf: &Waf, path: &str, headers: &[(&str, &[u8])]) -> Report {
    waf.inspect_head(
        waf.default_policy(),
        &RequestHead {
            path_and_query: path,
            headers,
        },
    )
}

fn body_report(waf: &Waf, content_type: &str, body: &[u8]) -> Report {
    let mut report = Report::new();
    waf.inspect_body(
        waf.default_policy(),
        Some(content_type.as_bytes()),
        body,
        &mut report,
    );
    report
}

fn targets(report: &Report) -> Vec<String> {
    report
        .findings
        .iter()
        .map(|f| format!("{}@{}", f.rule_id, f.target))
        .collect()
}

#[test]
fn benign_request_is_clean() {
    let waf = waf_with("{}");
    let headers: &[(&str, &[u8])] = &[
        (":method", b"GET"),
        (":authority", b"shop.example.com"),
        ("user-agent", b"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0 Safari/537.36"),
        ("accept", b"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
        ("sec-ch-ua", b"\"Chromium\";v=\"122\", \"Not(A:Brand\";v=\"24\", \"Google Chrome\";v=\"122\""),
        ("cookie", b"_ga=GA1.2.1234567890.1700000000; session=eyJ1c2VyIjoiYm9iIn0.Zx9_abc-DEF; theme=dark"),
        ("referer", b"https://shop.example.com/search?q=union+station&page=2"),
        ("authorization", b"Bearer ' or 1=1 --"),
    ];
    let report = head_report(
        &waf,
        "/products/shoes/42?q=O%27Brien%27s+boots&sort=price-asc&tags=a,b",
        headers,
    );
    assert_eq!(report.findings, vec![]);
    assert_eq!(report.verdict(waf.default_policy()), Verdict::Allow);
}

/// Path, headers and the target expected to carry a finding.
type HeadCase<'a> = (&'a str, &'a [(&'a str, &'a [u8])], &'a str);

#[test]
fn attacks_in_every_head_target() {
    let waf = waf_with("{}");
    let cases: &[HeadCase] = &[
        ("/search?q=1%27%20or%20%271%27%3D%271", &[], "query:q"),
        ("/item/1%20union%20select%201,2,3", &[], "path"),
        ("/static/..%2f..%2f..%2fetc%2fpasswd", &[], "path"),
        (
            "/",
            &[("user-agent", b"<script>alert(1)</script>")],
            "header:user-agent",
        ),
        (
            "/",
            &[("x-forwarded-for", b"127.0.0.1; cat /etc/passwd")],
            "header:x-forwarded-for",
        ),
        (
            "/",
            &[("referer", b"https://x.example/?a=%0d%0aSet-Cookie:%20x=1")],
            "header:referer",
        ),
        (
            "/",
            &[("cookie", b"a=1; session=' or 1=1--")],
            "cookie:session",
        ),
        (
            "/",
            &[("cookie", b"<script>alert(1)</script>=1")],
            "cookie-name:<script>alert(1)</script>",
        ),
        ("/?%3Cscript%3E=1", &[], "query-name:<script>"),
        (
            "/",
            &[("x-api-version", b"${jndi:ldap://127.0.0.1/a}")],
            "header:x-api-version",
        ),
    ];
    for (path, headers, target) in cases {
        let report = head_report(&waf, path, headers);
        assert_eq!(
            report.verdict(waf.default_policy()),
            Verdict::Block,
            "{path} {headers:?}: {report:?}"
        );
        assert!(
            report.findings.iter().any(|f| f.target == *target),
            "{target}: {:?}",
            targets(&report)
        );
    }
}

#[test]
fn skip_headers_default_and_override() {
    let waf = waf_with("{}");
    let report = head_report(&waf, "/", &[("authorization", b"' or 1=1--")]);
    assert!(report.findings.is_empty());
    let waf = waf_with(r#"{"skip_headers": ["X-Internal"]}"#);
    let report = head_report(
        &waf,
        "/",
        &[
            ("x-internal", b"' or 1=1--"),
            ("authorization", b"' or 1=1--"),
        ],
    );
    assert_eq!(targets(&report), ["2001@header:authorization"]);
}

#[test]
fn detect_mode_and_off_mode() {
    let waf = waf_with(r#"{"mode": "detect"}"#);
    let report = head_report(&waf, "/?q=<script>alert(1)</script>", &[]);
    assert_eq!(report.verdict(waf.default_policy()), Verdict::DetectOnly);
    assert!(report.score >= 5);

    let waf = waf_with(r#"{"mode": "off"}"#);
    let report = head_report(&waf, "/?q=<script>alert(1)</script>", &[]);
    assert_eq!(report, Report::new());
    assert_eq!(waf.body_plan(waf.default_policy(), &[]), BodyPlan::Skip);
}

#[test]
fn threshold_sums_scores() {
    let waf = waf_with(r#"{"threshold": 10}"#);
    let report = head_report(&waf, "/?q=<iframe src=javascript:alert(1)>", &[]);
    assert!(report.score >= 10, "{report:?}");
    assert_eq!(report.verdict(waf.default_policy()), Verdict::Block);
    let report = head_report(&waf, "/?q=%27%20or%201=1", &[]);
    assert_eq!(report.score, 5);
    assert_eq!(report.verdict(waf.default_policy()), Verdict::Allow);
}

#[test]
fn exclusions_by_target_rule_and_prefix() {
    let waf = waf_with(
        r#"{"exclusions": [
            {"targets": ["body:field:password"]},
            {"rule_ids": [2004], "path_prefix": "/legacy"},
            {"targets": ["header:x-foo"], "rule_ids": [6001]}
        ]}"#,
    );
    let report = body_report(
        &waf,
        "application/json",
        br#"{"user":{"name":"bob","password":"x' or '1'='1"}}"#,
    );
    assert!(report.findings.is_empty(), "{:?}", targets(&report));
    let report = body_report(
        &waf,
        "application/x-www-form-urlencoded",
        b"password=%27or%201%3D1--&user=bob",
    );
    assert!(report.findings.is_empty(), "{:?}", targets(&report));
    let report = body_report(
        &waf,
        "application/x-www-form-urlencoded",
        b"user=%27or%201%3D1--",
    );
    assert!(!report.findings.is_empty());

    let report = head_report(&waf, "/legacy/login?u=admin%27--", &[]);
    assert!(report.findings.is_empty(), "{:?}", targets(&report));
    let report = head_report(&waf, "/legacy/../login?u=admin%27--", &[]);
    assert_eq!(
        report.verdict(waf.default_policy()),
        Verdict::Block,
        "{:?}",
        targets(&report)
    );
    let report = head_report(&waf, "/login?u=admin%27--", &[]);
    assert_eq!(targets(&report), ["2004@query:u"]);

    let report = head_report(&waf, "/", &[("x-foo", b"<script>x</script>")]);
    assert!(report.findings.is_empty(), "{:?}", targets(&report));
    let report = head_report(&waf, "/", &[("x-foo", b"<img src=x onerror=alert(1)>")]);
    assert_eq!(targets(&report), ["6002@header:x-foo", "6009@header:x-foo"]);
}

#[test]
fn route_policy_overrides() {
    let waf = waf_with(r#"{"exclusions": [{"rule_ids": [6001]}]}"#);
    let route: RoutePolicySettings = serde_json::from_str(
        r#"{"mode": "detect", "paranoia": 2, "exclusions": [{"targets": ["query:html"]}]}"#,
    )
    .unwrap();
    let policy = waf.compile_route(&route).unwrap();
    assert_eq!(policy.mode(), Mode::Detect);
    assert_eq!(policy.paranoia(), 2);
    assert_eq!(policy.threshold(), 5);
    let head = RequestHead {
        path_and_query: "/?html=<iframe onload=alert(1)>&q=<script>",
        headers: &[],
    };
    let report = waf.inspect_head(&policy, &head);
    assert!(
        report.findings.iter().all(|f| f.target != "query:html"),
        "{:?}",
        targets(&report)
    );
    assert!(report.findings.iter().all(|f| f.rule_id != 6001));

    let bad: RoutePolicySettings =
        serde_json::from_str(r#"{"exclusions": [{"rule_ids": [7]}]}"#).unwrap();
    let error = waf.compile_route(&bad).unwrap_err().within("routes[1].waf");
    assert_eq!(
        error.to_string(),
        "routes[1].waf.exclusions[0].rule_ids[0]: unknown rule id 7"
    );
}

#[test]
fn compile_rejects_bad_settings() {
    let cases = [
        (
            r#"{"paranoia": 0}"#,
            "waf.paranoia: must be 1, 2 or 3, got 0",
        ),
        (
            r#"{"threshold": 0}"#,
            "waf.threshold: must be at least 1, got 0",
        ),
        (
            r#"{"max_body_bytes": 0}"#,
            "waf.max_body_bytes: must be between 1 and 16777216, got 0",
        ),
        (
            r#"{"body_limit_action": 200}"#,
            "waf.body_limit_action: must be an HTTP error status from 400 to 599, got 200",
        ),
        (
            r#"{"decode_passes": 9}"#,
            "waf.decode_passes: must be between 1 and 8, got 9",
        ),
        (
            r#"{"skip_headers": ["bad name"]}"#,
            "waf.skip_headers[0]: invalid header name \"bad name\"",
        ),
        (
            r#"{"exclusions": [{"rule_ids": [1001]}, {"rule_ids": [1, 2]}]}"#,
            "waf.exclusions[1].rule_ids[0]: unknown rule id 1",
        ),
    ];
    for (json, expected) in cases {
        let settings: WafSettings = serde_json::from_str(json).unwrap();
        let error = Waf::compile(&settings).unwrap_err();
        assert_eq!(error.to_string(), expected);
    }
}

#[test]
fn json_body_targets_use_pointers() {
    let waf = waf_with("{}");
    let body = br#"{"user": {"name": "O'Brien", "bio": "<script>alert(1)</script>"}, "tags": ["ok", "1; cat /etc/passwd"], "a/b": {"<img src=x onerror=alert(1)>": 1}}"#;
    let report = body_report(&waf, "application/json", body);
    let found = targets(&report);
    assert!(
        found.contains(&"6001@body:json:/user/bio".to_owned()),
        "{found:?}"
    );
    assert!(
        found.iter().any(|t| t.ends_with("@body:json:/tags/1")),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|t| t.starts_with("6002@body:json-key:/a~1b/")),
        "{found:?}"
    );
    assert!(!found.iter().any(|t| t.contains("/user/name")), "{found:?}");
}

#[test]
fn json_escapes_are_decoded() {
    let waf = waf_with("{}");
    let report = body_report(
        &waf,
        "application/json",
        br#"{"q": "\u003cscript\u003ealert(1)\u003c/script\u003e"}"#,
    );
    assert!(
        report.findings.iter().any(|f| f.rule_id == 6001),
        "{:?}",
        targets(&report)
    );
}

#[test]
fn json_escape_with_sign_is_invalid_json() {
    let waf = waf_with("{}");
    let report = body_report(&waf, "application/json", br#"{"q": "\u+041"}"#);
    assert!(
        report.findings.iter().any(|f| f.rule_id == 1009),
        "{:?}",
        targets(&report)
    );
}

#[test]
fn json_value_rules_by_trigger() {
    let waf = waf_with(r#"{"paranoia": 2}"#);
    // Each payload lacks most punctuation, so the rule runs only if the detector's
    // character-class gate lets it through.
    let cases: &[(&str, u32)] = &[
        ("alert`1`", 6009),
        ("x document.cookie", 6009),
        ("eval (name)", 6009),
        ("x.y -moz-binding", 6006),
        ("width:expression(alert(1))", 6006),
        ("behavior: url(x.htc)", 6006),
        ("{{constructor.constructor('alert(1)')()}}", 6007),
        ("a\\nSet-Cookie: x=1", 5004),
    ];
    for &(payload, rule_id) in cases {
        let body = format!(r#"{{"q": "{payload}"}}"#);
        let report = body_report(&waf, "application/json", body.as_bytes());
        let found = targets(&report);
        assert!(
            found.contains(&format!("{rule_id}@body:json:/q")),
            "{payload}: {found:?}"
        );
    }
}

#[test]
fn json_string_escapes_and_controls() {
    let waf = waf_with("{}");
    let body = br#"{"a\u002fb\"c": "<scr\u0069pt>alert(1)</script> tail", "k": 1}"#;
    let report = body_report(&waf, "application/json", body);
    let found = targets(&report);
    assert!(
        found.contains(&"6001@body:json:/a~1b\"c".to_owned()),
        "{found:?}"
    );
    assert!(!found.iter().any(|t| t.starts_with("1009")), "{found:?}");

    let report = body_report(&waf, "application/json", b"{\"q\": \"a\x01b\"}");
    assert_eq!(targets(&report), ["1009@body"]);
    let report = body_report(&waf, "application/json", b"{\"q\": \"a\\\"}");
    assert_eq!(targets(&report), ["1009@body"]);
}

#[test]
fn invalid_json_is_inspected_as_text() {
    let waf = waf_with("{}");
    let report = body_report(&waf, "application/json", b"{\"q\": \"' or 1=1 --\", }");
    let found = targets(&report);
    assert!(found.contains(&"1009@body".to_owned()), "{found:?}");
    assert!(
        found.iter().any(|t| t.starts_with("2001@body")),
        "{found:?}"
    );
    let deep = format!("{}1{}", "[".repeat(100), "]".repeat(100));
    let report = body_report(&waf, "application/json", deep.as_bytes());
    assert_eq!(targets(&report), ["1009@body"]);
}

#[test]
fn form_and_text_bodies() {
    let waf = waf_with("{}");
    let report = body_report(
        &waf,
        "application/x-www-form-urlencoded",
        b"comment=nice+post&redirect=javascript%3Aalert(1)",
    );
    assert_eq!(
        targets(&report),
        ["6003@body:form:redirect", "6009@body:form:redirect"]
    );
    let report = body_report(&waf, "text/plain", b"hello\n<iframe src=//x.example>");
    assert_eq!(targets(&report), ["6001@body"]);
}

#[test]
fn multipart_fields_files_and_malformed() {
    let waf = waf_with("{}");
    let body = b"--b1\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\n' union select 1,2--\r\n--b1\r\nContent-Disposition: form-data; name=\"upload\"; filename=\"../../etc/passwd\"\r\nContent-Type: application/octet-stream\r\n\r\n<script>alert(1)</script>\r\n--b1--\r\n";
    let report = body_report(&waf, "multipart/form-data; boundary=b1", body);
    let found = targets(&report);
    assert!(
        found.contains(&"2002@body:multipart:title".to_owned()),
        "{found:?}"
    );
    assert!(
        found.contains(&"3001@body:multipart-filename:upload".to_owned()),
        "{found:?}"
    );
    assert!(!found.iter().any(|t| t.starts_with("6001")), "{found:?}");

    let waf = waf_with(r#"{"inspect_file_uploads": true}"#);
    let report = body_report(&waf, "multipart/form-data; boundary=b1", body);
    assert!(targets(&report).contains(&"6001@body:multipart:upload".to_owned()));

    let report = body_report(&waf, "multipart/form-data", b"<script>x</script>");
    assert_eq!(targets(&report), ["1010@body", "6001@body"]);
}

#[test]
fn body_plan_and_limits() {
    let waf = waf_with(r#"{"max_body_bytes": 16, "body_limit_action": 400}"#);
    let policy = waf.default_policy();
    assert_eq!(
        waf.body_plan(policy, &[("content-type", b"application/json")]),
        BodyPlan::Inspect {
            kind: BodyKind::Json,
            encoding: ContentEncoding::Identity,
            max_bytes: 16,
            over_limit_status: 400
        }
    );
    assert_eq!(
        waf.body_plan(
            policy,
            &[
                ("content-type", b"application/json"),
                ("content-type", b"text/plain")
            ]
        ),
        BodyPlan::ConflictingContentType
    );
    let mut report = Report::new();
    waf.inspect_body(
        policy,
        Some(b"text/plain"),
        b"0123456789abcdef-and-more",
        &mut report,
    );
    assert_eq!(targets(&report), ["1011@body"]);
}

#[test]
fn paranoia_levels_add_rules() {
    let low = waf_with("{}");
    let high = waf_with(r#"{"paranoia": 3}"#);
    let path = "/?q=%3Cb%3Ehello%3C/b%3E&n=1--";
    assert!(head_report(&low, path, &[]).findings.is_empty());
    let found = targets(&head_report(&high, path, &[]));
    assert!(found.contains(&"6011@query:q".to_owned()), "{found:?}");
    assert!(found.contains(&"2010@query:n".to_owned()), "{found:?}");
}

#[test]
fn encoding_anomalies() {
    let waf = waf_with("{}");
    let report = head_report(&waf, "/files/..%c0%af..%c0%afetc/passwd", &[]);
    let found = targets(&report);
    assert!(found.contains(&"1002@path".to_owned()), "{found:?}");
    assert!(found.contains(&"3001@path".to_owned()), "{found:?}");
    let report = head_report(&waf, "/download?file=report.pdf%00.txt", &[]);
    assert_eq!(targets(&report), ["1003@query:file"]);
    let report = head_report(&waf, "/?q=caf%E9", &[]);
    assert_eq!(targets(&report), ["1001@query:q"]);
    assert_eq!(report.verdict(waf.default_policy()), Verdict::Allow);
}

#[test]
fn excerpts_are_short_and_escaped() {
    let waf = waf_with("{}");
    let long = format!(
        "/?q={}%0d%0aSet-Cookie:%20a=b{}",
        "x".repeat(200),
        "y".repeat(200)
    );
    let report = head_report(&waf, &long, &[]);
    assert!(!report.findings.is_empty());
    for finding in &report.findings {
        assert!(
            finding.excerpt.chars().count() <= EXCERPT_CHARS * 2,
            "{}",
            finding.excerpt
        );
        assert!(!finding.excerpt.contains('\r'), "{}", finding.excerpt);
        assert!(!finding.excerpt.contains('\n'), "{}", finding.excerpt);
    }
}

#[test]
fn pathological_bodies_stay_linear() {
    let waf = waf_with("{}");
    let size = 64 * 1024;
    for unit in [
        "'-- ", "<a ", "<a<a", ";id", "' or '", "/*", "&#", "%25", "\"x\" on", ";cat ",
    ] {
        let body = unit.repeat(size / unit.len());
        let started = std::time::Instant::now();
        let mut report = Report::new();
        waf.inspect_body(
            waf.default_policy(),
            Some(b"text/plain"),
            body.as_bytes(),
            &mut report,
        );
        let elapsed = started.elapsed();
        // Debug builds are slow; a quadratic scan of 64 KiB takes minutes, not seconds.
        assert!(elapsed.as_secs() < 5, "{unit:?} took {elapsed:?}");
    }
}

#[test]
fn random_requests_never_panic() {
    let waf = waf_with(r#"{"paranoia": 3}"#);
    let alphabet: &[u8] =
        b"%0123456789abcdefABCDEF'\"`<>/\\;|&$(){}[]=?#+-*.,: \r\n\t\x00\xc0\xaf\xff\xe2\x80uUxX";
    let mut state: u64 = 0xDEAD_BEEF_CAFE_F00D;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..500 {
        let length = (next() % 120) as usize;
        let bytes: Vec<u8> = (0..length)
            .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
            .collect();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let headers: &[(&str, &[u8])] = &[("x-test", &bytes), ("cookie", &bytes)];
        let mut report = waf.inspect_head(
            waf.default_policy(),
            &RequestHead {
                path_and_query: &text,
                headers,
            },
        );
        for content_type in [
            "application/json",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=a",
            "text/plain",
        ] {
            waf.inspect_body(
                waf.default_policy(),
                Some(content_type.as_bytes()),
                &bytes,
                &mut report,
            );
        }
        assert!(report.findings.len() <= MAX_FINDINGS);
    }
}

const JSON_ATTACK: &[u8] = br#"{"a":"1' UNION SELECT password FROM users--"}"#;

#[test]
fn content_types_inspected_or_skipped() {
    let waf = waf_with("{}");
    let inspected = [
        "application/json",
        "application/octet-stream",
        "application/x-json",
        "application/jsonx",
        "multipart/mixed",
        "application/grpc",
        "application/csp-report",
        "application/cbor",
        "application/msgpack",
        "application/x-ndjson",
        "image/svg+xml",
        "text/plain; charset=utf-8",
        "",
    ];
    for content_type in inspected {
        let headers: &[(&str, &[u8])] = &[("content-type", content_type.as_bytes())];
        let plan = waf.body_plan(waf.default_policy(), headers);
        assert!(
            matches!(plan, BodyPlan::Inspect { .. }),
            "{content_type}: {plan:?}"
        );
        let report = body_report(&waf, content_type, JSON_ATTACK);
        assert_eq!(
            report.verdict(waf.default_policy()),
            Verdict::Block,
            "{content_type}: {report:?}"
        );
    }
    for content_type in [
        "image/png",
        "video/mp4",
        "audio/ogg",
        "font/woff2",
        "application/zip",
        "application/pdf",
    ] {
        let headers: &[(&str, &[u8])] = &[("content-type", content_type.as_bytes())];
        assert_eq!(
            waf.body_plan(waf.default_policy(), headers),
            BodyPlan::Skip,
            "{content_type}"
        );
    }
}

#[test]
fn unknown_type_json_walked() {
    let waf = waf_with("{}");
    let report = body_report(&waf, "application/octet-stream", JSON_ATTACK);
    assert_eq!(targets(&report), ["2002@body:json:/a"]);
    // Binary data of an unknown type does not raise decoding anomalies.
    let report = body_report(&waf, "application/octet-stream", b"\x00\x01\xff\xfe plain");
    assert_eq!(report.score, 0, "{report:?}");
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn encoded_report(waf: &Waf, encoding: ContentEncoding, body: &[u8]) -> Report {
    let mut report = Report::new();
    waf.inspect_encoded_body(
        waf.default_policy(),
        Some(b"application/json"),
        encoding,
        body,
        &mut report,
    );
    report
}

#[test]
fn gzip_body_decompressed() {
    let waf = waf_with("{}");
    let headers: &[(&str, &[u8])] = &[
        ("content-type", b"application/json"),
        ("content-encoding", b"gzip"),
    ];
    let plan = waf.body_plan(waf.default_policy(), headers);
    let BodyPlan::Inspect { encoding, .. } = plan else {
        panic!("{plan:?}");
    };
    assert_eq!(encoding, ContentEncoding::Gzip);
    let benign = gzip(br#"{"name":"Ada Lovelace","tags":["math","poetry"],"age":36}"#);
    let report = encoded_report(&waf, encoding, &benign);
    assert_eq!(report.score, 0, "{report:?}");
    let report = encoded_report(&waf, encoding, &gzip(JSON_ATTACK));
    assert_eq!(targets(&report), ["2002@body:json:/a"]);
}

#[test]
fn compression_bomb_reported() {
    let waf = waf_with("{}");
    let bomb = gzip(&vec![b' '; 8 << 20]);
    let started = std::time::Instant::now();
    let report = encoded_report(&waf, ContentEncoding::Gzip, &bomb);
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    assert!(
        targets(&report).contains(&"1013@body".to_string()),
        "{report:?}"
    );
    let report = encoded_report(&waf, ContentEncoding::Gzip, b"\x1f\x8b\x08garbage");
    assert!(targets(&report).contains(&"1013@body".to_string()));
}

#[test]
fn unsupported_encoding_blocks_head() {
    let waf = waf_with("{}");
    for coding in ["br", "zstd", "gzip, br", "compress", "x-custom"] {
        let headers: &[(&str, &[u8])] = &[
            ("content-type", b"application/json"),
            ("content-encoding", coding.as_bytes()),
        ];
        let report = head_report(&waf, "/upload", headers);
        assert_eq!(
            targets(&report),
            ["1012@header:content-encoding"],
            "{coding}"
        );
        assert_eq!(report.verdict(waf.default_policy()), Verdict::Block);
    }
    for coding in ["identity", "gzip", "deflate"] {
        let headers: &[(&str, &[u8])] = &[("content-encoding", coding.as_bytes())];
        assert_eq!(head_report(&waf, "/upload", headers).score, 0, "{coding}");
    }
    let empty: &[(&str, &[u8])] = &[("content-encoding", b"br"), ("content-length", b"0")];
    assert_eq!(head_report(&waf, "/upload", empty).score, 0);
}

#[test]
fn body_substitution_blocks() {
    let waf = waf_with("{}");
    for body in [r#"{"comment":"$(id)"}"#, r#"{"comment":"`id`"}"#] {
        let report = body_report(&waf, "application/json", body.as_bytes());
        assert_eq!(targets(&report), ["4002@body:json:/comment"], "{body}");
        assert_eq!(report.verdict(waf.default_policy()), Verdict::Block);
    }
    let report = body_report(&waf, "application/x-www-form-urlencoded", b"c=%60id%60");
    assert_eq!(targets(&report), ["4002@body:form:c"]);
    let report = body_report(
        &waf,
        "application/json",
        br#"{"comment":"Run `ls -la` to list files"}"#,
    );
    assert_eq!(report.verdict(waf.default_policy()), Verdict::Allow);
}

#[test]
fn prose_false_positives_pass() {
    let waf = waf_with("{}");
    for path in [
        "/?q=use%20%60ls%20-la%60%20to%20list",
        "/?q=apples,+oranges,+etc/passwd-free",
    ] {
        let report = head_report(&waf, path, &[]);
        assert_eq!(
            report.verdict(waf.default_policy()),
            Verdict::Allow,
            "{path}: {report:?}"
        );
    }
}
