//! HTTP plumbing: sending, status checks, size-limited bodies, JSON decoding.

use bytes::{Bytes, BytesMut};
use reqwest::{Method, RequestBuilder, Response};
use serde::de::DeserializeOwned;
use url::Url;

use crate::client::Client;
use crate::error::{Error, Result};

const EXCERPT_CHARS: usize = 512;

impl Client {
    /// A request to `segments` under the base URL, with the request deadline.
    pub(crate) fn request(&self, method: Method, segments: &[&str]) -> (RequestBuilder, Url) {
        let url = self.inner.config.endpoint.http(segments);
        let req = self
            .inner
            .http
            .request(method, url.clone())
            .timeout(self.inner.config.request_timeout);
        (req, url)
    }

    /// Sends `req` and maps transport failures; the status is not checked.
    pub(crate) async fn send_raw(&self, req: RequestBuilder, url: &Url) -> Result<Response> {
        let c = &self.inner.config;
        req.send()
            .await
            .map_err(|e| Error::from_reqwest(e, url.as_str(), c.connect_timeout, c.request_timeout))
    }

    /// Sends `req`; a non-2xx status becomes [`Error::Status`] with a body excerpt.
    pub(crate) async fn send(&self, req: RequestBuilder, url: &Url) -> Result<Response> {
        let resp = self.send_raw(req, url).await?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        Err(self.status_error(resp, url).await)
    }

    /// The [`Error::Status`] for a failed answer (reads at most a small body excerpt).
    pub(crate) async fn status_error(&self, resp: Response, url: &Url) -> Error {
        let status = resp.status().as_u16();
        let body = self
            .read_body(resp, url, 16 * 1024, "error body")
            .await
            .map(|b| excerpt(&b))
            .unwrap_or_default();
        Error::Status {
            status,
            path: route(url),
            body,
        }
    }

    /// Reads a whole body, refusing more than `limit` bytes.
    pub(crate) async fn read_body(
        &self,
        mut resp: Response,
        url: &Url,
        limit: u64,
        what: &str,
    ) -> Result<Bytes> {
        let too_large = || Error::TooLarge {
            what: format!("{what} of {}", route(url)),
            limit,
        };
        if resp.content_length().is_some_and(|n| n > limit) {
            return Err(too_large());
        }
        let c = &self.inner.config;
        let mut buf = BytesMut::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| {
            Error::from_reqwest(e, url.as_str(), c.connect_timeout, c.request_timeout)
        })? {
            if (buf.len() + chunk.len()) as u64 > limit {
                return Err(too_large());
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(buf.freeze())
    }

    /// Reads a JSON body within the response size limit.
    pub(crate) async fn read_json<T: DeserializeOwned>(
        &self,
        resp: Response,
        url: &Url,
    ) -> Result<T> {
        let body = self
            .read_body(resp, url, self.inner.config.max_response_size, "answer")
            .await?;
        decode_json(&body, url)
    }

    /// `GET` a JSON answer.
    pub(crate) async fn get_json<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> Result<T> {
        let (mut req, url) = self.request(Method::GET, segments);
        if !query.is_empty() {
            req = req.query(query);
        }
        let resp = self.send(req, &url).await?;
        self.read_json(resp, &url).await
    }

    /// `POST` a JSON body and ignore the answer's body (ComfyUI often answers empty).
    pub(crate) async fn post_json_unit<B: serde::Serialize + ?Sized>(
        &self,
        segments: &[&str],
        body: Option<&B>,
    ) -> Result<()> {
        let (mut req, url) = self.request(Method::POST, segments);
        if let Some(body) = body {
            req = req.json(body);
        }
        let resp = self.send(req, &url).await?;
        self.read_body(resp, &url, self.inner.config.max_response_size, "answer")
            .await?;
        Ok(())
    }
}

/// Decodes JSON with the route as context.
pub(crate) fn decode_json<T: DeserializeOwned>(body: &[u8], url: &Url) -> Result<T> {
    serde_json::from_slice(body)
        .map_err(|e| Error::decode(format!("answer of {} ({})", route(url), excerpt(body)), e))
}

/// The path of `url`, for messages (`/prompt`, `/comfy/history/x`).
pub(crate) fn route(url: &Url) -> String {
    url.path().to_owned()
}

/// The start of a body as text, at most 512 characters.
pub(crate) fn excerpt(body: &[u8]) -> String {
    excerpt_n(body, EXCERPT_CHARS)
}

/// The start of a body as text, at most `n` characters.
fn excerpt_n(body: &[u8], n: usize) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out: String = text.chars().take(n).collect();
    if text.chars().nth(n).is_some() {
        out.push('…');
    }
    out
}
