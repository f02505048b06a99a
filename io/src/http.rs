//! `http`: an HTTP client on reqwest (rustls, no native TLS).
//!
//! `get(url, opts?)` and `request{method, url, headers, body, timeout}`
//! return `{status, headers, body}`. The URL is checked against the policy's
//! `http.get` / `http.request` rules before the request is yielded. Redirects
//! are not followed: a redirect to a URL the policy forbids would otherwise
//! slip past the check, so scripts see the 3xx and follow it themselves.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Client, Method, Url};
use troupe_dispatcher::{Command, Error, ErrorKind, Value};
use troupe_modules::builtin::parse_duration_ms;
use troupe_modules::types::{Decl, Field, Signature, Type, Types};
use troupe_modules::{Args, CallError, Class, FnCx, ModuleDef, Ret};

use crate::{HostModule, check_action, ids, text_or_bytes};

/// Default whole-request timeout: 30 s.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Default largest response body: 16 MiB.
const DEFAULT_MAX_BODY: usize = 16 << 20;

/// The `http` module. Cheap to clone; clones share one connection pool.
///
/// ```
/// use std::time::Duration;
/// use troupe_io::{HostModule, Http};
///
/// let http = Http::new()?.timeout(Duration::from_secs(5)).max_body_bytes(1 << 20);
/// assert_eq!(http.module().name(), "http");
/// # Ok::<(), troupe_dispatcher::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Http {
    client: Client,
    timeout: Duration,
    max_body: usize,
}

impl Http {
    /// A client with the default timeout (30 s) and body limit (16 MiB).
    pub fn new() -> Result<Self, Error> {
        let client = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("troupe/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::internal(format!("http: cannot build client: {e}")))?;
        Ok(Self {
            client,
            timeout: DEFAULT_TIMEOUT,
            max_body: DEFAULT_MAX_BODY,
        })
    }

    /// The timeout of requests that set none (default 30 s); a request that
    /// takes longer, body included, is `TIMEOUT`.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The largest response body (default 16 MiB); a bigger one is
    /// `LIMIT_EXCEEDED`.
    #[must_use]
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }
}

command! {
    /// One request, as yielded (and journaled).
    RequestCmd = ids::HTTP_REQUEST, "http.request" -> Value {
        method: String,
        url: String,
        headers: BTreeMap<String, String>,
        body: Option<Value>,
        timeout_ms: Option<f64>,
    }
}

fn invalid(function: &str, what: impl std::fmt::Display) -> CallError {
    CallError::Fail(Error::invalid(format!("{function}: {what}")))
}

/// The request for `method` and `url` with the `headers`, `body` and
/// `timeout` options of a request table.
fn request_cmd(
    function: &str,
    method: String,
    url: String,
    opts: &BTreeMap<String, Value>,
) -> Result<RequestCmd, CallError> {
    let mut headers = BTreeMap::new();
    match opts.get("headers") {
        None | Some(Value::Nil) => {}
        Some(Value::Map(m)) => {
            for (name, v) in m {
                let value = match v {
                    Value::String(s) => s.clone(),
                    Value::Int(_) | Value::Float(_) | Value::Bool(_) => v.to_json(),
                    other => {
                        return Err(invalid(
                            function,
                            format!(
                                "header {name:?} must be a string, got {}",
                                other.type_name()
                            ),
                        ));
                    }
                };
                headers.insert(name.clone(), value);
            }
        }
        Some(Value::Array(a)) if a.is_empty() => {}
        Some(other) => {
            return Err(invalid(
                function,
                format!("headers must be a table, got {}", other.type_name()),
            ));
        }
    }
    let body = match opts.get("body") {
        None | Some(Value::Nil) => None,
        Some(b @ (Value::String(_) | Value::Bytes(_))) => Some(b.clone()),
        Some(other) => {
            return Err(invalid(
                function,
                format!(
                    "body must be a string (encode tables with json.encode), got {}",
                    other.type_name()
                ),
            ));
        }
    };
    let timeout_ms = match opts.get("timeout") {
        None | Some(Value::Nil) => None,
        Some(t) => Some(parse_duration_ms(t).map_err(|e| invalid(function, e.message()))?),
    };
    Ok(RequestCmd {
        method,
        url,
        headers,
        body,
        timeout_ms,
    })
}

/// Checks the URL (http or https, allowed by the policy) and yields the
/// request. The policy sees the URL as it will be requested, normalized
/// (`/public/../admin` is `/admin`, the host lower-cased), so a pattern
/// cannot be dodged by spelling.
fn yield_request(
    cx: &FnCx<'_>,
    args: &Args,
    method: String,
    url: String,
    opts: &BTreeMap<String, Value>,
) -> Result<Ret, CallError> {
    let function = args.function();
    let parsed =
        Url::parse(&url).map_err(|e| invalid(function, format!("bad URL {url:?}: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(invalid(
            function,
            format!("only http and https URLs are supported, got {url:?}"),
        ));
    }
    Method::from_bytes(method.as_bytes())
        .map_err(|_| invalid(function, format!("bad method {method:?}")))?;
    let url = String::from(parsed);
    check_action(cx, function, &url)?;
    Ok(Ret::Call(
        request_cmd(function, method, url, opts)?.to_call()?,
    ))
}

/// Maps a reqwest error to the structured error a script sees.
fn request_error(url: &str, e: &reqwest::Error) -> Error {
    let kind = if e.is_timeout() {
        ErrorKind::Timeout
    } else if e.is_builder() {
        ErrorKind::Invalid
    } else {
        ErrorKind::Unavailable
    };
    // The source chain says why (connection refused, DNS, TLS, …).
    let mut why = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        why.push_str(": ");
        why.push_str(&s.to_string());
        source = s.source();
    }
    Error::new(kind, format!("http {url}: {why}"))
}

impl Http {
    async fn send(&self, cmd: RequestCmd) -> Result<Value, Error> {
        let url = cmd.url;
        let method = Method::from_bytes(cmd.method.as_bytes())
            .map_err(|_| Error::invalid(format!("http: bad method {:?}", cmd.method)))?;
        let mut headers = HeaderMap::new();
        for (name, value) in &cmd.headers {
            let n = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| Error::invalid(format!("http: bad header name {name:?}")))?;
            let v = HeaderValue::from_str(value)
                .map_err(|_| Error::invalid(format!("http: bad value for header {name:?}")))?;
            headers.append(n, v);
        }
        let timeout = match cmd.timeout_ms {
            Some(ms) => Duration::try_from_secs_f64(ms / 1e3)
                .map_err(|e| Error::invalid(format!("http: bad timeout: {e}")))?,
            None => self.timeout,
        };
        let mut req = self
            .client
            .request(method, &url)
            .headers(headers)
            .timeout(timeout);
        match cmd.body {
            Some(Value::String(s)) => req = req.body(s),
            Some(Value::Bytes(b)) => req = req.body(b),
            _ => {}
        }
        let mut resp = req.send().await.map_err(|e| request_error(&url, &e))?;
        let status = Value::Int(i64::from(resp.status().as_u16()));
        let mut headers: BTreeMap<String, Value> = BTreeMap::new();
        for (name, value) in resp.headers() {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            match headers.get_mut(name.as_str()) {
                Some(Value::String(prev)) => {
                    prev.push_str(", ");
                    prev.push_str(&value);
                }
                _ => {
                    headers.insert(name.as_str().to_owned(), Value::String(value));
                }
            }
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| request_error(&url, &e))? {
            if body.len() + chunk.len() > self.max_body {
                return Err(Error::new(
                    ErrorKind::LimitExceeded,
                    format!(
                        "http {url}: response body is larger than {} bytes",
                        self.max_body
                    ),
                ));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Value::Map(BTreeMap::from([
            ("status".to_owned(), status),
            ("headers".to_owned(), Value::Map(headers)),
            ("body".to_owned(), text_or_bytes(body)),
        ])))
    }
}

/// What `http` exports, for editors and the module reference.
fn types() -> Types {
    Types::new()
        .function(
            "get",
            Signature::new("A GET request. Fails with TIMEOUT past the timeout and UNAVAILABLE when the server cannot be reached; redirects are returned, not followed.")
                .param("url", Type::String)
                .optional("opts", Type::named("Options"))
                .returns(Type::named("Response"))
                .fallible(),
        )
        .function(
            "request",
            Signature::new("A request with any method, headers and body.")
                .param("request", Type::named("Request"))
                .returns(Type::named("Response"))
                .fallible(),
        )
        .decl(Decl::record(
            "Options",
            "Options of `http.get`.",
            [
                Field::optional("headers", Type::table(Type::String, Type::String)),
                Field::optional("timeout", Type::union([Type::Number, Type::String]))
                    .doc("ms or \"1.5s\"; the host's default otherwise"),
            ],
        ))
        .decl(Decl::record(
            "Request",
            "What `http.request` takes.",
            [
                Field::new("url", Type::String),
                Field::optional("method", Type::String).doc("GET by default"),
                Field::optional("headers", Type::table(Type::String, Type::String)),
                Field::optional("body", Type::String),
                Field::optional("timeout", Type::union([Type::Number, Type::String]))
                    .doc("ms or \"1.5s\"; the host's default otherwise"),
            ],
        ))
        .decl(Decl::record(
            "Response",
            "What a request returns.",
            [
                Field::new("status", Type::Integer),
                Field::new("headers", Type::table(Type::String, Type::String))
                    .doc("lower-case names; repeated headers joined with \", \""),
                Field::new("body", Type::String),
            ],
        ))
}

/// The `http` module definition.
pub(crate) fn definition() -> ModuleDef {
    ModuleDef::new("http")
        .alias("http_client")
        .describe("HTTP requests")
        .class(Class::Network)
        .types(types())
        .command("get", |cx, args| {
            let url = args.string(0)?;
            let opts = args.opt_map(1)?.unwrap_or_default();
            yield_request(cx, &args, "GET".to_owned(), url, &opts)
        })
        .command("request", |cx, args| {
            let opts = args.map(0)?;
            let Some(url) = opts.get("url").and_then(Value::as_str) else {
                return Err(args.error(0, "table with a url").into());
            };
            let method = match opts.get("method") {
                None | Some(Value::Nil) => "GET".to_owned(),
                Some(m) => match m.as_str() {
                    Some(m) => m.to_ascii_uppercase(),
                    None => return Err(args.error(0, "table with a string method").into()),
                },
            };
            yield_request(cx, &args, method, url.to_owned(), &opts)
        })
}

impl HostModule for Http {
    fn module(&self) -> ModuleDef {
        let http = self.clone();
        definition().handle_async(move |_pid, cmd: RequestCmd| {
            let http = http.clone();
            async move { http.send(cmd).await }
        })
    }
}
