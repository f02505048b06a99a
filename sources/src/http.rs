use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{ETAG, IF_NONE_MATCH};
use reqwest::{StatusCode, Url};

use crate::background::{Background, error_chain};
use crate::{Script, Source, SourceError, validate_key};

/// How long one request may take by default.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

struct Shared {
    base: Url,
    client: reqwest::Client,
    /// Key → (ETag, script) of the last `200` that carried an ETag.
    known: Mutex<HashMap<String, (String, Script)>>,
    bg: Background,
}

/// Scripts served over HTTP(S): `get("lib/a.lua")` is `GET
/// {base_url}/lib/a.lua`. A response's `ETag` is remembered and sent back
/// as `If-None-Match`, so an unchanged script costs a `304 Not Modified`
/// and no body. `404`/`410` mean not found; other statuses, timeouts and
/// connection errors are `Unavailable`. HTTP has no listing, so `list` is
/// unsupported. Cheap to clone.
#[derive(Clone)]
pub struct HttpSource {
    timeout: Duration,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for HttpSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

impl HttpSource {
    /// A source under `base_url` (`http` or `https`).
    pub fn new(base_url: &str) -> Result<Self, SourceError> {
        let invalid = |reason: String| SourceError::unavailable(format!("http:{base_url}"), reason);
        let mut base = Url::parse(base_url).map_err(|e| invalid(format!("bad base URL: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(invalid("the base URL must be http(s)://host/…".to_owned()));
        }
        if let Ok(mut segs) = base.path_segments_mut() {
            segs.pop_if_empty();
        }
        let bg = Background::start("troupe-http-source")
            .map_err(|e| invalid(format!("cannot start its IO thread: {e}")))?;
        let client = {
            let _rt = bg.handle().enter();
            reqwest::Client::builder()
                .build()
                .map_err(|e| invalid(format!("cannot build the HTTP client: {e}")))?
        };
        Ok(Self {
            timeout: DEFAULT_TIMEOUT,
            shared: Arc::new(Shared {
                base,
                client,
                known: Mutex::new(HashMap::new()),
                bg,
            }),
        })
    }

    /// How long one request may take (default 5 s).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn known(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, Script)>> {
        self.shared.known.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What one GET brought back.
struct Fetched {
    status: StatusCode,
    etag: Option<String>,
    body: Vec<u8>,
}

impl Source for HttpSource {
    fn name(&self) -> String {
        format!("http:{}", self.shared.base)
    }

    fn get(&self, key: &str) -> Result<Script, SourceError> {
        validate_key(key)?;
        let mut url = self.shared.base.clone();
        if let Ok(mut segs) = url.path_segments_mut() {
            segs.extend(key.split('/'));
        }
        let mut req = self.shared.client.get(url).timeout(self.timeout);
        if let Some((etag, _)) = self.known().get(key) {
            req = req.header(IF_NONE_MATCH, etag.as_str());
        }
        let fetched = self
            .shared
            .bg
            .block(async move {
                let resp = req.send().await?;
                let status = resp.status();
                let etag = resp
                    .headers()
                    .get(ETAG)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let body = if status == StatusCode::OK {
                    resp.bytes().await?.to_vec()
                } else {
                    Vec::new()
                };
                Ok::<_, reqwest::Error>(Fetched { status, etag, body })
            })
            .ok_or_else(|| SourceError::unavailable(self.name(), "its IO thread stopped"))?
            .map_err(|e| SourceError::unavailable(self.name(), error_chain(&e)))?;
        match fetched.status {
            StatusCode::OK => {
                let script = Script::from_content(key, fetched.body);
                match fetched.etag {
                    Some(etag) => self.known().insert(key.to_owned(), (etag, script.clone())),
                    None => self.known().remove(key),
                };
                Ok(script)
            }
            StatusCode::NOT_MODIFIED => self
                .known()
                .get(key)
                .map(|(_, script)| script.clone())
                .ok_or_else(|| {
                    SourceError::unavailable(
                        self.name(),
                        format!("304 Not Modified for {key:?}, which was never fetched"),
                    )
                }),
            StatusCode::NOT_FOUND | StatusCode::GONE => {
                self.known().remove(key);
                Err(SourceError::NotFound {
                    key: key.to_owned(),
                    source_name: self.name(),
                })
            }
            status => Err(SourceError::unavailable(
                self.name(),
                format!("GET {key}: HTTP {status}"),
            )),
        }
    }

    fn list(&self, _prefix: &str) -> Result<Vec<String>, SourceError> {
        Err(SourceError::Unsupported {
            source_name: self.name(),
            operation: "list",
        })
    }
}
