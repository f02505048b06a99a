//! `troupe run --source URL`: a script source named by a URL.
//!
//! ```text
//! file:///DIR
//! http://HOST[:PORT]/PATH            https://HOST[:PORT]/PATH
//! etcd://HOST[:PORT]/PREFIX          (feature etcd; port 2379)
//! redis://[USER[:PASSWORD]@]HOST[:PORT]/PREFIX[?db=N]   (feature redis; port 6379)
//! sqlite:///PATH?table=T             (feature sql)
//! postgres://[USER[:PASSWORD]@]HOST[:PORT]/DB?table=T[&sslmode=…]   (feature sql; also postgresql://)
//! git+file:///REPO[?ref=REF][&path=SUBDIR]   (feature git; ref HEAD, path the root)
//! zip:///PATH    tar+gz:///PATH    tgz:///PATH   (feature archive)
//! s3://BUCKET/PREFIX[?endpoint=URL]  (feature object-store; AWS_* credentials)
//! ```
//!
//! Parsing ([`parse`]) does no IO, so a bad URL is a usage error before
//! anything runs; [`SourceSpec::open`] makes the source. Passwords come from
//! the environment (`TROUPE_SOURCE_PASSWORD`, else `REDIS_PASSWORD` for
//! Redis; PostgreSQL's driver reads `PGPASSWORD` and `~/.pgpass` itself). A
//! password written in the URL still works but is warned about, and no
//! message, log line or `Debug` output shows it: sources are named by
//! [`SourceSpec::shown`], which never holds credentials or query strings
//! other than `table`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::builder::TypedValueParser;
use troupe::{
    CachedSource, Error, FileSource, HttpSource, LayerStrategy, LayeredSource, Source, SourceError,
    source_error,
};
use url::Url;

/// The password of every `--source` that takes one, unless its URL has one.
pub(crate) const PASSWORD_ENV: &str = "TROUPE_SOURCE_PASSWORD";

/// The schemes `--source` knows, for the message about an unknown one.
const KNOWN: &str = "file, http, https, etcd, redis, sqlite, postgres, postgresql, git+file, \
                     zip, tar+gz, tgz, s3";

/// The `--source` layers as one source: a single one as it is, several as
/// a [`LayeredSource`] with [`LayerStrategy::Fallback`], so an earlier
/// `--source` wins when several have a key, and an outage of one is an
/// error rather than a silent fallback to the next. Every kind of source
/// reports changes, so `watch` follows them all.
pub(crate) fn open_all(specs: &[SourceSpec], watch: bool) -> Result<Arc<dyn Source>, Error> {
    let mut layers = Vec::with_capacity(specs.len());
    for spec in specs {
        layers.push(spec.open(watch).map_err(source_error)?);
    }
    if layers.len() == 1 {
        return Ok(layers.remove(0));
    }
    let layered = layers
        .into_iter()
        .fold(LayeredSource::new(LayerStrategy::Fallback), |l, s| {
            l.layer(s)
        });
    Ok(Arc::new(layered))
}

/// FILE as a key of the `--source` sources: its text, as given.
pub(crate) fn key(file: &Path) -> Result<String, Error> {
    file.to_str()
        .map(str::to_owned)
        .ok_or_else(|| Error::invalid(format!("script key {} is not valid UTF-8", file.display())))
}

/// Makes the source of a parsed URL.
type Opener = dyn Fn() -> Result<Arc<dyn Source>, SourceError> + Send + Sync;

/// A parsed `--source` URL: what it names, and how to open it.
#[derive(Clone)]
pub(crate) struct SourceSpec {
    /// The URL without credentials (and without query parameters other
    /// than `table`), for messages.
    shown: String,
    /// Every read is a round trip to a server: worth a cache under
    /// `--watch`, where change events keep the cache fresh.
    networked: bool,
    /// The URL holds a password (warned about when opened).
    password_in_url: bool,
    open: Arc<Opener>,
}

impl fmt::Debug for SourceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl SourceSpec {
    /// Opens the source. With `watch`, a networked source is wrapped in a
    /// [`CachedSource`]: its change events invalidate the copy, so spawns
    /// stop costing a round trip without ever running stale code.
    pub(crate) fn open(&self, watch: bool) -> Result<Arc<dyn Source>, SourceError> {
        if self.password_in_url {
            tracing::warn!(
                source = %self.shown,
                "the --source URL holds a password, which shows in process lists and shell \
                 history: set {PASSWORD_ENV} (or REDIS_PASSWORD / PGPASSWORD) instead"
            );
        }
        let source = (self.open)()?;
        Ok(if watch && self.networked {
            Arc::new(CachedSource::new(source))
        } else {
            source
        })
    }
}

/// `--source URL` for clap: a bad URL is a usage error whose one line
/// never repeats the URL's credentials (clap's own message would quote the
/// value as given).
#[derive(Clone, Copy, Debug)]
pub(crate) struct SourceUrlParser;

impl TypedValueParser for SourceUrlParser {
    type Value = SourceSpec;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<SourceSpec, clap::Error> {
        let fail = |msg: String| {
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!("--source: {msg}\n"),
            )
            .with_cmd(cmd)
        };
        let text = value
            .to_str()
            .ok_or_else(|| fail("the URL is not valid UTF-8".to_owned()))?;
        parse(text).map_err(fail)
    }
}

/// Parses a source URL (no IO). The error is one line, without the URL's
/// credentials.
pub(crate) fn parse(text: &str) -> Result<SourceSpec, String> {
    let Some((scheme, _)) = text.split_once("://") else {
        return Err(format!(
            "{:?} is not a source URL (e.g. file:///ABSOLUTE/DIR; known schemes: {KNOWN})",
            redact(text)
        ));
    };
    let scheme = scheme.to_ascii_lowercase();
    let url = Url::parse(text).map_err(|e| format!("invalid URL {}: {e}", redact(text)))?;
    /// `$parse` when the cargo feature is compiled in, else the error
    /// naming the feature to build with.
    macro_rules! with_feature {
        ($feature:literal, $parse:expr) => {{
            #[cfg(feature = $feature)]
            let parsed = $parse;
            #[cfg(not(feature = $feature))]
            let parsed = Err(format!(
                "{scheme}:// sources are not in this build (build troupe with --features {})",
                $feature
            ));
            parsed
        }};
    }
    match scheme.as_str() {
        "file" => file(&url),
        "http" | "https" => http(&url),
        "etcd" => with_feature!("etcd", etcd(&url)),
        "redis" => with_feature!("redis", redis(&url)),
        "sqlite" => with_feature!("sql", sqlite(&url)),
        "postgres" | "postgresql" => with_feature!("sql", postgres(&url)),
        "git+file" => with_feature!("git", git(&url)),
        "zip" => with_feature!("archive", zip(&url)),
        "tar+gz" | "tgz" => with_feature!("archive", tar_gz(&url)),
        "s3" => with_feature!("object-store", s3(&url)),
        other => Err(format!("unknown source scheme {other:?} (known: {KNOWN})")),
    }
}

/// `text` with any `user:password@` of its authority and its query and
/// fragment removed, for messages about a URL that may not parse.
fn redact(text: &str) -> String {
    let text = text.split(['?', '#']).next().unwrap_or_default();
    let Some((scheme, rest)) = text.split_once("://") else {
        return text.to_owned();
    };
    let end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    format!("{scheme}://{host}{path}")
}

/// Percent-decodes `text` (`%2F` → `/`); the result must be UTF-8.
fn decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push(u8::try_from(hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)).unwrap_or(0));
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| format!("{text:?} is not UTF-8 once decoded"))
}

/// The query parameters of `url`, refusing any not in `allowed` and any
/// given twice.
fn params(url: &Url, allowed: &[&str]) -> Result<Vec<(String, String)>, String> {
    let mut found: Vec<(String, String)> = Vec::new();
    for (key, value) in url.query_pairs() {
        if !allowed.contains(&&*key) {
            return Err(if allowed.is_empty() {
                format!("{}:// takes no query parameters", url.scheme())
            } else {
                format!(
                    "unknown parameter {key:?} in a {}:// URL (known: {})",
                    url.scheme(),
                    allowed.join(", ")
                )
            });
        }
        if found.iter().any(|(k, _)| *k == key) {
            return Err(format!("parameter {key:?} is given twice"));
        }
        found.push((key.into_owned(), value.into_owned()));
    }
    Ok(found)
}

/// The value of parameter `key` among `params`.
#[cfg(any(feature = "redis", feature = "sql", feature = "git"))]
fn param<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// The absolute path of a `scheme:///PATH` URL (no host, no credentials).
fn local_path(url: &Url) -> Result<PathBuf, String> {
    let scheme = url.scheme();
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("{scheme}:// takes no user or password"));
    }
    match url.host_str() {
        None | Some("" | "localhost") => {}
        Some(host) => {
            return Err(format!(
                "{scheme}:// takes an absolute path, {scheme}:///PATH (this one names host {host:?})"
            ));
        }
    }
    if url.port().is_some() {
        return Err(format!("{scheme}:// takes no port"));
    }
    let path = decode(url.path())?;
    if !path.starts_with('/') || path.len() < 2 {
        return Err(format!(
            "{scheme}:// needs an absolute path: {scheme}:///PATH"
        ));
    }
    Ok(PathBuf::from(path))
}

/// The host of a networked URL (required) and its port.
fn host_port(url: &Url, default_port: u16) -> Result<(String, u16), String> {
    let host = url.host_str().filter(|h| !h.is_empty()).ok_or_else(|| {
        format!(
            "{}:// needs a host: {}://HOST[:PORT]/…",
            url.scheme(),
            url.scheme()
        )
    })?;
    Ok((host.to_owned(), url.port().unwrap_or(default_port)))
}

/// The path after the host, without its leading `/`, decoded: a key prefix.
#[cfg(any(feature = "etcd", feature = "redis"))]
fn prefix(url: &Url) -> Result<String, String> {
    decode(url.path().strip_prefix('/').unwrap_or(url.path()))
}

/// Wraps a source for [`Opener`].
fn boxed(source: impl Source) -> Arc<dyn Source> {
    Arc::new(source)
}

/// A spec without credentials.
fn spec(
    shown: String,
    networked: bool,
    open: impl Fn() -> Result<Arc<dyn Source>, SourceError> + Send + Sync + 'static,
) -> SourceSpec {
    SourceSpec {
        shown,
        networked,
        password_in_url: false,
        open: Arc::new(open),
    }
}

/// `file:///DIR`: the directory must exist when the run starts.
fn file(url: &Url) -> Result<SourceSpec, String> {
    params(url, &[])?;
    let dir = local_path(url)?;
    let shown = format!("file://{}", dir.display());
    let name = shown.clone();
    Ok(spec(shown, false, move || {
        if !dir.is_dir() {
            return Err(SourceError::unavailable(name.clone(), "no such directory"));
        }
        Ok(boxed(FileSource::new(&dir)))
    }))
}

/// `http(s)://HOST/PATH`: `GET URL/KEY`. Credentials would show in the
/// source's name, so the URL may hold none.
fn http(url: &Url) -> Result<SourceSpec, String> {
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "{}:// source URLs take no user or password",
            url.scheme()
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "{}:// source URLs take no query or fragment",
            url.scheme()
        ));
    }
    host_port(url, 0)?;
    let base = url.as_str().to_owned();
    // Watched by polling with ETags (see `HttpSource::subscribe`).
    Ok(spec(base.clone(), true, move || {
        HttpSource::new(&base).map(boxed)
    }))
}

/// `etcd://HOST[:PORT]/PREFIX`: the endpoint `http://HOST:PORT`.
#[cfg(feature = "etcd")]
fn etcd(url: &Url) -> Result<SourceSpec, String> {
    params(url, &[])?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "etcd:// takes no user or password (etcd authentication is not supported)".to_owned(),
        );
    }
    let (host, port) = host_port(url, 2379)?;
    let prefix = prefix(url)?;
    let endpoint = format!("http://{host}:{port}");
    Ok(spec(
        format!("etcd://{host}:{port}/{prefix}"),
        true,
        move || troupe::EtcdSource::connect(&[&endpoint], &prefix).map(boxed),
    ))
}

/// The password to use when the URL has none: `TROUPE_SOURCE_PASSWORD`,
/// else `fallback` (if any); empty values count as unset.
#[cfg(any(feature = "redis", feature = "sql"))]
fn env_password(fallback: Option<&str>) -> Option<String> {
    std::iter::once(PASSWORD_ENV)
        .chain(fallback)
        .filter_map(|var| std::env::var(var).ok())
        .find(|v| !v.is_empty())
}

/// `redis://[USER[:PASSWORD]@]HOST[:PORT]/PREFIX[?db=N]`.
#[cfg(feature = "redis")]
fn redis(url: &Url) -> Result<SourceSpec, String> {
    let params = params(url, &["db"])?;
    let (host, port) = host_port(url, 6379)?;
    let db = match param(&params, "db") {
        None => 0,
        Some(n) => n
            .parse::<u32>()
            .map_err(|_| format!("db must be a database number, not {n:?}"))?,
    };
    let user = decode(url.username())?;
    let url_password = url.password().map(decode).transpose()?;
    let prefix = prefix(url)?;
    let mut shown = format!("redis://{host}:{port}/{prefix}");
    if db != 0 {
        shown.push_str(&format!("?db={db}"));
    }
    let name = shown.clone();
    let password_in_url = url_password.is_some();
    let open = move || {
        let password = url_password
            .clone()
            .or_else(|| env_password(Some("REDIS_PASSWORD")));
        let invalid = |what: &str| SourceError::unavailable(name.clone(), what);
        let mut target = Url::parse(&format!("redis://{host}:{port}/{db}"))
            .map_err(|e| invalid(&format!("invalid Redis URL: {e}")))?;
        if !user.is_empty() {
            target
                .set_username(&user)
                .map_err(|()| invalid("invalid user name"))?;
        }
        if let Some(password) = &password {
            target
                .set_password(Some(password))
                .map_err(|()| invalid("invalid password"))?;
        }
        troupe::RedisSource::new(target.as_str(), &prefix).map(boxed)
    };
    Ok(SourceSpec {
        password_in_url,
        ..spec(shown, true, open)
    })
}

/// The `table` parameter of an SQL URL.
#[cfg(feature = "sql")]
fn table(url: &Url, params: &[(String, String)]) -> Result<String, String> {
    let table = param(params, "table").ok_or_else(|| {
        format!(
            "{}:// needs the table: ?table=NAME (a table with columns key, code, version)",
            url.scheme()
        )
    })?;
    let ok = table.split('.').all(|part| {
        part.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    });
    if !ok || table.split('.').count() > 2 {
        return Err(format!(
            "invalid table {table:?}: NAME or SCHEMA.NAME, letters, digits and _"
        ));
    }
    Ok(table.to_owned())
}

/// `sqlite:///PATH?table=T` (an existing database file).
#[cfg(feature = "sql")]
fn sqlite(url: &Url) -> Result<SourceSpec, String> {
    let params = params(url, &["table"])?;
    let table = table(url, &params)?;
    let path = local_path(url)?;
    let db = format!("sqlite://{}", path.display());
    Ok(spec(
        format!("sqlite://{}?table={table}", path.display()),
        false,
        move || troupe::SqlSource::connect(&db, &table).map(boxed),
    ))
}

/// `postgres://[USER[:PASSWORD]@]HOST[:PORT]/DB?table=T[&…]`: the other
/// parameters (`sslmode`, …) go to the driver.
#[cfg(feature = "sql")]
fn postgres(url: &Url) -> Result<SourceSpec, String> {
    let all: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if all.iter().filter(|(k, _)| k == "table").count() > 1 {
        return Err("parameter \"table\" is given twice".to_owned());
    }
    let table = table(url, &all)?;
    let password_in_url = url.password().is_some() || param(&all, "password").is_some();
    let mut target = url.clone();
    target.set_query(None);
    {
        let mut query = target.query_pairs_mut();
        for (k, v) in all.iter().filter(|(k, _)| k != "table") {
            query.append_pair(k, v);
        }
    }
    if target.query() == Some("") {
        target.set_query(None);
    }
    let host = url.host_str().unwrap_or_default();
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    let shown = format!(
        "{}://{host}{port}{}?table={table}",
        url.scheme(),
        url.path()
    );
    let name = shown.clone();
    let open = move || {
        let mut target = target.clone();
        if !password_in_url && let Some(password) = env_password(None) {
            target.set_password(Some(&password)).map_err(|()| {
                SourceError::unavailable(name.clone(), "this URL cannot take a password")
            })?;
        }
        troupe::SqlSource::connect(target.as_str(), &table).map(boxed)
    };
    Ok(SourceSpec {
        password_in_url,
        ..spec(shown, true, open)
    })
}

/// `git+file:///REPO[?ref=REF][&path=SUBDIR]`.
#[cfg(feature = "git")]
fn git(url: &Url) -> Result<SourceSpec, String> {
    let params = params(url, &["ref", "path"])?;
    let repo = local_path(url)?;
    let reference = param(&params, "ref").unwrap_or("HEAD").to_owned();
    let subdir = param(&params, "path").unwrap_or_default().to_owned();
    let mut shown = format!("git+file://{}?ref={reference}", repo.display());
    if !subdir.is_empty() {
        shown.push_str(&format!("&path={subdir}"));
    }
    Ok(spec(shown, false, move || {
        troupe::GitSource::open(&repo, &reference, &subdir).map(boxed)
    }))
}

/// `s3://BUCKET/PREFIX[?endpoint=URL]`: credentials, region and (without
/// `endpoint`) the endpoint come from the `AWS_*` environment variables.
#[cfg(feature = "object-store")]
fn s3(url: &Url) -> Result<SourceSpec, String> {
    let params = params(url, &["endpoint"])?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("s3:// takes its credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, not the URL".to_owned());
    }
    let bucket = url
        .host_str()
        .filter(|b| !b.is_empty())
        .ok_or("s3:// needs a bucket: s3://BUCKET/PREFIX")?
        .to_owned();
    let prefix = prefix(url)?;
    let endpoint = param(&params, "endpoint").map(str::to_owned);
    let shown = match &endpoint {
        Some(e) => format!("s3://{bucket}/{prefix} ({e})"),
        None => format!("s3://{bucket}/{prefix}"),
    };
    Ok(spec(shown, true, move || {
        troupe::ObjectStoreSource::s3(&bucket, &prefix, endpoint.as_deref()).map(boxed)
    }))
}

/// `zip:///PATH`.
#[cfg(feature = "archive")]
fn zip(url: &Url) -> Result<SourceSpec, String> {
    params(url, &[])?;
    let path = local_path(url)?;
    Ok(spec(
        format!("zip://{}", path.display()),
        false,
        move || troupe::ZipSource::open(&path).map(boxed),
    ))
}

/// `tar+gz:///PATH` or `tgz:///PATH`.
#[cfg(feature = "archive")]
fn tar_gz(url: &Url) -> Result<SourceSpec, String> {
    params(url, &[])?;
    let path = local_path(url)?;
    Ok(spec(
        format!("{}://{}", url.scheme(), path.display()),
        false,
        move || troupe::TarGzSource::open(&path).map(boxed),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(url: &str) -> String {
        parse(url)
            .map(|s| s.shown)
            .unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    fn error(url: &str) -> String {
        match parse(url) {
            Ok(s) => panic!("{url} parsed as {s:?}"),
            Err(e) => {
                assert!(!e.contains('\n'), "one line: {e}");
                e
            }
        }
    }

    #[test]
    fn local_urls() {
        assert_eq!(shown("file:///srv/scripts"), "file:///srv/scripts");
        assert_eq!(shown("file:///srv/my%20scripts"), "file:///srv/my scripts");
        assert!(error("file://scripts").contains("absolute path"));
        assert!(error("file:///srv?x=1").contains("no query"));
        assert!(error("scripts/").contains("not a source URL"));
        let spec = parse("file:///srv").unwrap();
        assert!(!spec.networked);
    }

    #[test]
    fn unknown_schemes_and_missing_features() {
        let e = error("ftp://host/x");
        assert!(
            e.contains("unknown source scheme \"ftp\"") && e.contains("git+file"),
            "{e}"
        );
        #[cfg(not(feature = "object-store"))]
        assert!(error("s3://bucket/x").contains("--features object-store"));
        #[cfg(feature = "object-store")]
        assert!(error("s3://u:p@bucket/x").contains("AWS_ACCESS_KEY_ID"));
        for (url, feature, on) in [
            ("etcd://h/p/", "etcd", cfg!(feature = "etcd")),
            ("redis://h/p/", "redis", cfg!(feature = "redis")),
            ("sqlite:///x.db?table=t", "sql", cfg!(feature = "sql")),
            ("git+file:///r", "git", cfg!(feature = "git")),
            ("zip:///a.zip", "archive", cfg!(feature = "archive")),
        ] {
            match parse(url) {
                Ok(_) => assert!(on, "{url}"),
                Err(e) => {
                    assert!(!on, "{url}: {e}");
                    assert!(e.contains(&format!("--features {feature}")), "{e}");
                }
            }
        }
    }

    #[test]
    fn http_urls_hold_no_credentials() {
        assert_eq!(
            shown("https://example.com/scripts/"),
            "https://example.com/scripts/"
        );
        assert!(!error("https://u:secret@example.com/").contains("secret"));
        assert!(error("http://example.com/?token=1").contains("no query"));
        let spec = parse("http://example.com/").unwrap();
        assert!(spec.networked);
    }

    #[test]
    fn bad_urls_never_show_passwords() {
        let e = error("redis://:s3cret@host:99999/p/");
        assert!(e.contains("invalid URL redis://host:99999/p/"), "{e}");
        assert!(!e.contains("s3cret"), "{e}");
        assert_eq!(redact("x://u:p@h/a?password=q"), "x://h/a");
    }

    #[cfg(feature = "redis")]
    #[test]
    fn redis_urls() {
        assert_eq!(
            shown("redis://127.0.0.1/troupe/"),
            "redis://127.0.0.1:6379/troupe/"
        );
        let spec = parse("redis://:s3cret@h:7000/p/?db=2").unwrap();
        assert_eq!(spec.shown, "redis://h:7000/p/?db=2");
        assert!(spec.password_in_url && !format!("{spec:?}").contains("s3cret"));
        assert!(!parse("redis://h/p/").unwrap().password_in_url);
        assert!(error("redis://h/p/?db=x").contains("db must be"));
        assert!(error("redis://h/p/?dbase=1").contains("unknown parameter"));
        assert!(error("redis:///p/").contains("needs a host"));
    }

    #[cfg(feature = "sql")]
    #[test]
    fn sql_urls() {
        assert!(error("sqlite:///x.db").contains("needs the table"));
        assert!(error("postgres://h/db").contains("needs the table"));
        assert!(error("postgres://h/db?table=a;drop").contains("invalid table"));
        assert_eq!(
            shown("sqlite:///x.db?table=scripts"),
            "sqlite:///x.db?table=scripts"
        );
        let spec = parse("postgres://u:pw@h:5433/app?sslmode=disable&table=s").unwrap();
        assert_eq!(spec.shown, "postgres://h:5433/app?table=s");
        assert!(spec.password_in_url);
        assert!(
            parse("postgres://h/app?table=s&password=x")
                .unwrap()
                .password_in_url
        );
    }

    #[cfg(feature = "git")]
    #[test]
    fn git_urls() {
        assert_eq!(shown("git+file:///r"), "git+file:///r?ref=HEAD");
        assert_eq!(
            shown("git+file:///r?ref=v1&path=scripts"),
            "git+file:///r?ref=v1&path=scripts"
        );
        assert!(error("git+file:///r?branch=main").contains("unknown parameter"));
    }

    #[cfg(feature = "etcd")]
    #[test]
    fn etcd_urls() {
        assert_eq!(
            shown("etcd://127.0.0.1/troupe/"),
            "etcd://127.0.0.1:2379/troupe/"
        );
        assert!(error("etcd://u:p@h/x").contains("no user or password"));
        assert!(error("etcd://h:port/x").contains("invalid URL"));
    }
}
