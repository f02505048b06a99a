//! `http` from scripts against a real HTTP/1.1 server on 127.0.0.1, started
//! by the test: status, headers and body come back; a slow server is
//! `TIMEOUT`, a closed port `UNAVAILABLE`; a URL the policy forbids is never
//! requested.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{json, run};
use serde_json::json;
use troupe_io::Http;
use troupe_modules::{Class, Policy, RuleEffect};

/// A request as the server parsed it.
struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn read_request(stream: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    stream.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let mut headers = Vec::new();
    loop {
        line.clear();
        stream.read_line(&mut line).ok()?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':')?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    let len = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    stream.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        path,
        headers,
        body,
    })
}

fn respond(stream: &mut TcpStream, status: &str, headers: &[(&str, &str)], body: &[u8]) {
    let mut out = format!(
        "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let _ = stream.write_all(out.as_bytes());
    let _ = stream.write_all(body);
}

/// Serves one connection: `/hello`, `/echo` (method, body and the
/// `x-request-id` header back), `/slow` (never answers), anything else 404.
fn serve(stream: TcpStream, hits: &AtomicUsize) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
    let Some(req) = read_request(&mut reader) else {
        return;
    };
    hits.fetch_add(1, Ordering::SeqCst);
    let mut stream = stream;
    match req.path.as_str() {
        "/hello" => respond(
            &mut stream,
            "200 OK",
            &[
                ("x-served-by", "test"),
                ("set-cookie", "a=1"),
                ("set-cookie", "b=2"),
            ],
            b"hello",
        ),
        "/echo" => {
            let id = req
                .headers
                .iter()
                .find(|(k, _)| k == "x-request-id")
                .map_or("", |(_, v)| v.as_str());
            let mut body = format!("{} ", req.method).into_bytes();
            body.extend_from_slice(&req.body);
            respond(&mut stream, "201 Created", &[("x-request-id", id)], &body);
        }
        "/binary" => respond(&mut stream, "200 OK", &[], &[0, 159, 146, 150]),
        "/redirect" => respond(&mut stream, "302 Found", &[("location", "/hello")], b""),
        // Hold the connection without answering until the client gives up.
        "/slow" => {
            let mut sink = [0u8; 64];
            let _ = reader.read(&mut sink);
        }
        _ => respond(&mut stream, "404 Not Found", &[], b"no such page"),
    }
}

/// Starts the server on an ephemeral port of 127.0.0.1; returns its base
/// URL and the count of requests it has parsed.
fn start_server() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let base = format!("http://{}", listener.local_addr().expect("local addr"));
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&hits);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let counter = Arc::clone(&counter);
            std::thread::spawn(move || serve(stream, &counter));
        }
    });
    (base, hits)
}

fn policy() -> Policy {
    Policy::plugin().allow_class(Class::Network)
}

#[test]
fn status_headers_and_body_come_back() {
    let (base, hits) = start_server();
    let http = Http::new().unwrap();
    let code = format!(
        r#"
        local http = require("http")
        local base = "{base}"
        local out = {{}}
        local r = http.get(base .. "/hello")
        out.hello = {{r.status, r.body, r.headers["x-served-by"], r.headers["set-cookie"]}}
        local e = http.request{{method = "post", url = base .. "/echo",
            headers = {{["X-Request-Id"] = "abc-1"}}, body = "payload", timeout = "5s"}}
        out.echo = {{e.status, e.body, e.headers["x-request-id"]}}
        out.missing = http.get(base .. "/nope", {{timeout = 5000}}).status
        out.binary = #http.get(base .. "/binary").body
        local red = http.get(base .. "/redirect")
        out.redirect = {{red.status, red.headers.location}}
        local _, bad = http.get("ftp://example.com/file")
        out.bad_scheme = bad:kind()
        return out
        "#
    );
    let v = run(&[&http], policy(), &code).unwrap();
    assert_eq!(
        json(&v),
        json!({
            "hello": [200, "hello", "test", "a=1, b=2"],
            "echo": [201, "POST payload", "abc-1"],
            "missing": 404,
            "binary": 4,
            "redirect": [302, "/hello"],
            "bad_scheme": "INVALID",
        })
    );
    // Redirects are not followed: five requests, not six.
    assert_eq!(hits.load(Ordering::SeqCst), 5);
}

#[test]
fn http_client_is_the_http_module_under_the_references_name() {
    let (base, _) = start_server();
    let http = Http::new().unwrap();
    let code = format!(
        r#"
        local client = require("http_client")
        return {{client.get("{base}/hello").body, client.get == require("http").get}}
        "#
    );
    // Allowed by its class, by the alias alone, or by the real name alone.
    for policy in [
        policy(),
        Policy::deny_all().allow_module("http_client"),
        Policy::deny_all().allow_module("http"),
    ] {
        let v = run(&[&http], policy, &code).unwrap();
        assert_eq!(json(&v), json!(["hello", true]));
    }
    // Denying either name denies the module.
    let denied = r#"local ok, e = pcall(require, "http_client") return e:kind()"#;
    let v = run(&[&http], policy().deny_module("http"), denied).unwrap();
    assert_eq!(json(&v), json!("PERMISSION_DENIED"));
    let denied = r#"local ok, e = pcall(require, "http") return e:kind()"#;
    let v = run(&[&http], policy().deny_module("http_client"), denied).unwrap();
    assert_eq!(json(&v), json!("PERMISSION_DENIED"));
}

#[test]
fn slow_servers_time_out_and_closed_ports_are_unavailable() {
    let (base, _) = start_server();
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let http = Http::new().unwrap().timeout(Duration::from_secs(30));
    let code = format!(
        r#"
        local http = require("http")
        local errors = require("errors")
        local r, err = http.get("{base}/slow", {{timeout = "200ms"}})
        assert(r == nil)
        local _, refused = http.request{{url = "http://{closed}/", timeout = "5s"}}
        return {{err:kind(), err:retryable(), refused:kind(), refused:retryable()}}
        "#
    );
    let v = run(&[&http], policy(), &code).unwrap();
    assert_eq!(json(&v), json!(["TIMEOUT", true, "UNAVAILABLE", true]));

    // The host's default timeout applies when the script sets none.
    let quick = Http::new().unwrap().timeout(Duration::from_millis(200));
    let code = format!(r#"local _, err = require("http").get("{base}/slow") return err:kind()"#);
    let v = run(&[&quick], policy(), &code).unwrap();
    assert_eq!(json(&v), json!("TIMEOUT"));
}

#[test]
fn forbidden_urls_are_never_requested() {
    let (base, hits) = start_server();
    let http = Http::new().unwrap();
    let rules = policy()
        .rule("http.get", &format!("{base}/hello"), RuleEffect::Allow)
        .rule("http.get", &format!("{base}/public/**"), RuleEffect::Allow)
        .rule("http.request", "**", RuleEffect::Deny);
    let code = format!(
        r#"
        local http = require("http")
        local _, get_err = http.get("{base}/echo")
        local _, dodge_err = http.get("{base}/public/../echo")
        local _, req_err = http.request{{url = "{base}/hello"}}
        local hello = http.get("{base}/public/../hello")
        return {{hello.body, get_err:kind(), dodge_err:kind(), req_err:kind()}}
        "#
    );
    let v = run(&[&http], rules, &code).unwrap();
    assert_eq!(
        json(&v),
        json!([
            "hello",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "PERMISSION_DENIED"
        ])
    );
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    let e = run(&[&http], Policy::plugin(), r#"return require("http")"#).unwrap_err();
    assert_eq!(e.kind(), troupe_dispatcher::ErrorKind::PermissionDenied);
}
