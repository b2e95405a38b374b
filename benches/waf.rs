//! Benchmarks of the attack-pattern inspector on native code: a 200-byte query string, a
//! 2 KiB JSON body and a set of 20 request headers, all benign, plus one attack query.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use meshguard::waf::{Report, RequestHead, Waf, WafSettings};

const QUERY_PATH: &str = "/search?q=red+running+shoes+size+10&category=footwear&brand=acme&sort=price_asc&page=2&per_page=24&color=blue%2Cblack&min_price=20&max_price=150&in_stock=true&ref=homepage_banner";

const ATTACK_PATH: &str = "/search?q=1%27%20union%20select%20username,password%20from%20users--&category=footwear&brand=acme&sort=price_asc&page=2&per_page=24&color=blue&min_price=20&max_price=150&in_stock=true";

fn json_body() -> Vec<u8> {
    let item = r#"{"sku":"SKU-10442-BL","name":"Trail runner \"Alpine\" men's shoe","qty":2,"price":89.95,"options":{"size":"10","color":"blue","width":"regular"},"note":"Gift wrap please -- it's for my brother's birthday!"}"#;
    let mut body = String::from(
        r#"{"customer":{"name":"Seán O'Brien","email":"sean.obrien@example.com","phone":"+353 1 555 0199"},"shipping":{"street":"12 Rue de l'Église","city":"Paris","zip":"75004","country":"FR"},"items":["#,
    );
    while body.len() < 1800 {
        if !body.ends_with('[') {
            body.push(',');
        }
        body.push_str(item);
    }
    body.push_str(r#"],"coupon":"SPRING-20","accept_terms":true}"#);
    body.into_bytes()
}

fn headers() -> Vec<(&'static str, &'static [u8])> {
    vec![
        (":authority", b"shop.example.com"),
        (":method", b"POST"),
        (":scheme", b"https"),
        ("user-agent", b"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36"),
        ("accept", b"text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"),
        ("accept-language", b"en-US,en;q=0.9,fr;q=0.8"),
        ("accept-encoding", b"gzip, deflate, br"),
        ("cache-control", b"max-age=0"),
        ("sec-ch-ua", b"\"Chromium\";v=\"122\", \"Not(A:Brand\";v=\"24\", \"Google Chrome\";v=\"122\""),
        ("sec-ch-ua-mobile", b"?0"),
        ("sec-ch-ua-platform", b"\"Windows\""),
        ("sec-fetch-site", b"same-origin"),
        ("sec-fetch-mode", b"navigate"),
        ("sec-fetch-dest", b"document"),
        ("referer", b"https://shop.example.com/products?id=42&ref=home"),
        ("cookie", b"_ga=GA1.2.1234567890.1700000000; session=eyJ1c2VyIjoiYm9iIn0.Zx9_abc-DEF; theme=dark"),
        ("content-type", b"application/json"),
        ("x-request-id", b"4bf92f35-77b3-4da6-a3ce-929d0e0e4736"),
        ("x-forwarded-for", b"203.0.113.195, 70.41.3.18"),
        ("authorization", b"Bearer eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl"),
    ]
}

fn inspector(criterion: &mut Criterion) {
    let Ok(waf) = Waf::compile(&WafSettings::default()) else {
        return;
    };
    let policy = waf.default_policy();

    criterion.bench_function("waf/query_200b", |bench| {
        let head = RequestHead {
            path_and_query: QUERY_PATH,
            headers: &[],
        };
        bench.iter(|| waf.inspect_head(policy, black_box(&head)))
    });

    criterion.bench_function("waf/query_attack", |bench| {
        let head = RequestHead {
            path_and_query: ATTACK_PATH,
            headers: &[],
        };
        bench.iter(|| waf.inspect_head(policy, black_box(&head)))
    });

    let body = json_body();
    criterion.bench_function("waf/json_body_2kib", |bench| {
        bench.iter(|| {
            let mut report = Report::new();
            waf.inspect_body(
                policy,
                Some(b"application/json"),
                black_box(&body),
                &mut report,
            );
            report
        })
    });

    let header_set = headers();
    criterion.bench_function("waf/headers_20", |bench| {
        let head = RequestHead {
            path_and_query: "/checkout",
            headers: &header_set,
        };
        bench.iter(|| waf.inspect_head(policy, black_box(&head)))
    });
}

criterion_group!(benches, inspector);
criterion_main!(benches);
