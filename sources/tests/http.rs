//! `HttpSource` against a real HTTP server on 127.0.0.1 that serves
//! scripts with ETags and answers `If-None-Match` with `304`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use troupe_sources::{HttpSource, Source, SourceError};

/// Path → (etag, body) served; and the status of every request answered.
#[derive(Default)]
struct Site {
    files: Mutex<HashMap<String, (String, String)>>,
    log: Mutex<Vec<(String, u16)>>,
}

impl Site {
    fn put(&self, path: &str, etag: &str, body: &str) {
        self.files
            .lock()
            .unwrap()
            .insert(path.to_owned(), (etag.to_owned(), body.to_owned()));
    }

    fn statuses(&self) -> Vec<(String, u16)> {
        std::mem::take(&mut *self.log.lock().unwrap())
    }
}

/// Serves `site` until the test process ends; returns the base URL.
fn serve(site: Arc<Site>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            let path = request_line
                .split_whitespace()
                .nth(1)
                .unwrap_or("/")
                .to_owned();
            let mut if_none_match = None;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some((name, value)) = line.split_once(':')
                    && name.eq_ignore_ascii_case("if-none-match")
                {
                    if_none_match = Some(value.trim().to_owned());
                }
            }
            let file = site.files.lock().unwrap().get(&path).cloned();
            let (status, head, body) = match file {
                _ if path.starts_with("/scripts/broken") => (500, String::new(), String::new()),
                None => (404, String::new(), String::new()),
                Some((etag, _)) if if_none_match.as_deref() == Some(etag.as_str()) => {
                    (304, format!("ETag: {etag}\r\n"), String::new())
                }
                Some((etag, body)) => (200, format!("ETag: {etag}\r\n"), body),
            };
            site.log.lock().unwrap().push((path, status));
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\n{head}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{addr}/scripts/")
}

#[test]
fn revalidates_with_etags_and_maps_statuses() {
    let site = Arc::new(Site::default());
    site.put("/scripts/lib/a.lua", "\"v1\"", "return 1");
    let src = HttpSource::new(&serve(Arc::clone(&site))).unwrap();

    let first = src.get("lib/a.lua").unwrap();
    assert_eq!(&*first.code, b"return 1");
    let again = src.get("lib/a.lua").unwrap();
    assert_eq!(again, first, "a 304 serves the copy it revalidated");
    assert_eq!(
        site.statuses(),
        vec![
            ("/scripts/lib/a.lua".to_owned(), 200),
            ("/scripts/lib/a.lua".to_owned(), 304)
        ]
    );

    site.put("/scripts/lib/a.lua", "\"v2\"", "return 2");
    let changed = src.get("lib/a.lua").unwrap();
    assert_eq!(&*changed.code, b"return 2");
    assert_ne!(changed.version, first.version);
    assert_eq!(
        site.statuses(),
        vec![("/scripts/lib/a.lua".to_owned(), 200)]
    );

    assert!(matches!(
        src.get("missing.lua"),
        Err(SourceError::NotFound { .. })
    ));
    let err = src.get("broken.lua").unwrap_err();
    assert!(
        err.is_retryable() && err.to_string().contains("500"),
        "{err}"
    );
    assert!(matches!(src.list(""), Err(SourceError::Unsupported { .. })));
}

#[test]
fn a_server_that_is_down_is_unavailable_and_named() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let src = HttpSource::new(&format!("http://127.0.0.1:{port}/s")).unwrap();
    let err = src.get("a.lua").unwrap_err();
    assert!(matches!(err, SourceError::Unavailable { .. }), "{err}");
    assert!(err.is_retryable());
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
}
