//! The Jobs API (ComfyUI 0.6 and later, e.g. 0.8) as typed methods on [`Client`]: one view
//! of queued, running and finished prompts, only under `/api`.

use reqwest::Method;
use serde::Deserialize;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::types::{Job, JobList, JobsQuery};

/// The body of the Jobs API's errors: `{"error": "Job not found"}`.
#[derive(Deserialize)]
struct JobsError {
    error: String,
}

impl Client {
    /// `GET /api/jobs`: one page of jobs, filtered and sorted as `query` asks.
    ///
    /// A server without the Jobs API (ComfyUI before 0.6) answers [`Error::Status`] 404;
    /// see [`supports_jobs_api`](Self::supports_jobs_api). A query the server refuses is
    /// [`Error::Status`] 400 with its message; a zero `limit` is refused here as
    /// [`Error::InvalidInput`].
    pub async fn jobs(&self, query: &JobsQuery) -> Result<JobList> {
        if query.limit == Some(0) {
            return Err(Error::InvalidInput(
                "the jobs limit must be positive".into(),
            ));
        }
        self.get_json(&self.jobs_route(&[]), &query.pairs()).await
    }

    /// `GET /api/jobs/{id}`: one job with its outputs, status messages and workflow;
    /// `None` when the server does not know it (its 404 `{"error": "Job not found"}`: never
    /// submitted, rejected, deleted from the history, or lost in a restart).
    ///
    /// A server without the Jobs API answers [`Error::Status`] 404 (an empty body, not
    /// "Job not found").
    pub async fn job(&self, id: &str) -> Result<Option<Job>> {
        let (req, url) = self.request(Method::GET, &self.jobs_route(&[id]));
        let resp = self.send_raw(req, &url).await?;
        let status = resp.status();
        if status.is_success() {
            return self.read_json(resp, &url).await.map(Some);
        }
        if status.as_u16() != 404 {
            return Err(self.status_error(resp, &url).await);
        }
        let body = self.read_body(resp, &url, 16 * 1024, "error body").await?;
        match serde_json::from_slice::<JobsError>(&body) {
            Ok(not_found) if !not_found.error.is_empty() => Ok(None),
            _ => Err(Error::Status {
                status: 404,
                path: crate::http::route(&url),
                body: crate::http::excerpt(&body),
            }),
        }
    }

    /// Whether the server serves the Jobs API: one `GET /api/jobs?limit=1` (every call
    /// asks again, so a server restarted as another release is seen; cache the answer per
    /// server if that cannot happen). `Ok(false)` on 404; other failures are errors.
    pub async fn supports_jobs_api(&self) -> Result<bool> {
        match self.jobs(&JobsQuery::new().limit(1)).await {
            Ok(_) => Ok(true),
            Err(Error::Status { status: 404, .. }) => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// The path segments of a Jobs API route: under `api/`, unless the base URL already
    /// ends in `/api/`.
    fn jobs_route<'a>(&self, rest: &[&'a str]) -> Vec<&'a str> {
        let base_is_api = self
            .inner
            .config
            .endpoint
            .base()
            .path_segments()
            .and_then(|mut segments| segments.rfind(|s| !s.is_empty()))
            == Some("api");
        let mut segments = if base_is_api {
            vec!["jobs"]
        } else {
            vec!["api", "jobs"]
        };
        segments.extend_from_slice(rest);
        segments
    }
}
