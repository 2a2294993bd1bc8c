//! [`Outputs`]: serving a job's output files — proxied from the producing server's `/view`,
//! or copied to a local directory when the job completes and served from there; images sent
//! only over the websocket come from the job's record.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use comfy_client::Client;
use comfy_client::ImageRef;
use pool_core::{JobOutput, JobRecord};
use pool_store::ServiceStore;

use crate::api_error::ApiError;
use crate::config::{OutputMode, OutputsConfig, ServerAuth, ServerEntry};
use crate::fleet::Fleet;
use crate::views::{OutputView, extension, output_files};

/// Where output files come from.
pub(crate) struct Outputs {
    mode: OutputMode,
    dir: Option<PathBuf>,
}

impl std::fmt::Debug for Outputs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outputs")
            .field("mode", &self.mode)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// A name safe as one path component.
fn component(text: &str) -> String {
    let safe: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if safe.is_empty() || safe.starts_with('.') {
        format!("_{safe}")
    } else {
        safe
    }
}

/// The content type of a file, by its extension.
fn content_type(filename: &str) -> &'static str {
    let ext = filename
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "wav" => "audio/wav",
        "mp3" => "audio/mpeg",
        "flac" => "audio/flac",
        "json" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn file_response(filename: &str, body: Body) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(filename)),
    );
    if let Ok(disposition) =
        HeaderValue::from_str(&format!("inline; filename=\"{}\"", component(filename)))
    {
        headers.insert(header::CONTENT_DISPOSITION, disposition);
    }
    response
}

/// A client for one configured server (credentials in headers, never in messages).
pub(crate) fn client_for(server: &ServerEntry) -> Option<Client> {
    let mut builder = Client::builder(server.url.as_str());
    match &server.auth {
        Some(ServerAuth::Bearer(token)) => builder = builder.bearer_auth(token.expose()),
        Some(ServerAuth::Basic { user, password }) => {
            builder = builder.basic_auth(user.as_str(), Some(password.expose().to_owned()));
        }
        None => {}
    }
    builder.build().ok()
}

impl Outputs {
    pub(crate) fn new(config: &OutputsConfig) -> Self {
        Self {
            mode: config.mode,
            dir: config.dir.clone(),
        }
    }

    fn local_path(&self, job: &str, file: &OutputView, index: usize) -> Option<PathBuf> {
        let dir = self.dir.as_deref()?;
        Some(
            dir.join(component(job))
                .join(component(&file.node))
                .join(format!("{index}-{}", component(&file.filename))),
        )
    }

    /// With `mode = "copy"`: downloads every output file of a completed job into the
    /// directory (before its webhook goes out). Failures are logged; such files are then
    /// proxied.
    pub(crate) async fn keep(&self, record: &JobRecord, fleet: &Fleet) {
        if self.mode != OutputMode::Copy {
            return;
        }
        let Some(output) = &record.result else {
            return;
        };
        let job = record.id.to_string();
        let Some(client) = fleet.client(output.server.as_str()) else {
            tracing::warn!(%job, server = %output.server, "no client to copy outputs from");
            return;
        };
        for (index, file) in node_files(&job, output) {
            let Some(path) = self.local_path(&job, &file, index) else {
                return;
            };
            if let Err(error) = copy_one(&client, &file, &path).await {
                tracing::warn!(%job, file = %file.filename, %error, "cannot copy an output");
            }
        }
    }

    /// The file `index` of node `node` of a completed job.
    pub(crate) async fn node_file(
        &self,
        record: &JobRecord,
        node: &str,
        index: usize,
        fleet: &Fleet,
    ) -> Result<Response, ApiError> {
        let missing = || ApiError::not_found("output");
        let output = record.result.as_ref().ok_or_else(missing)?;
        let job = record.id.to_string();
        let (_, file) = node_files(&job, output)
            .into_iter()
            .filter(|(_, f)| f.node == node)
            .nth(index)
            .ok_or_else(missing)?;
        if self.mode == OutputMode::Copy
            && let Some(path) = self.local_path(&job, &file, index)
            && let Ok(bytes) = tokio::fs::read(&path).await
        {
            return Ok(file_response(&file.filename, Body::from(bytes)));
        }
        let client = fleet
            .client(output.server.as_str())
            .ok_or_else(|| ApiError::Upstream(format!("server {} is unknown", output.server)))?;
        let image = image_ref(&file);
        let stream = client
            .download_stream(&image)
            .await
            .map_err(|e| ApiError::Upstream(format!("server {}: {e}", output.server)))?;
        Ok(file_response(&file.filename, Body::from_stream(stream)))
    }

    /// Websocket-only image `index` of a completed job (bytes with the record or in the
    /// store).
    pub(crate) async fn ws_image(
        &self,
        record: &JobRecord,
        index: usize,
        store: &Arc<dyn ServiceStore>,
    ) -> Result<Response, ApiError> {
        let missing = || ApiError::not_found("output");
        let output = record.result.as_ref().ok_or_else(missing)?;
        let image = output.ws_images.get(index).ok_or_else(missing)?;
        let bytes = match image.image.bytes() {
            Some(bytes) => bytes.clone(),
            None => store
                .get_blob(&image.image.key())
                .await?
                .ok_or_else(missing)?,
        };
        let name = format!("{}-{index}.{}", image.node, extension(image.format));
        Ok(file_response(&name, Body::from(bytes)))
    }
}

/// The files of a job's output that live on its server, each with its index within its
/// node.
fn node_files(job: &str, output: &JobOutput) -> Vec<(usize, OutputView)> {
    let mut per_node: HashMap<String, usize> = HashMap::new();
    output_files(job, output)
        .into_iter()
        .filter(|f| f.kind != "websocket")
        .map(|f| {
            let n = per_node.entry(f.node.clone()).or_default();
            let index = *n;
            *n += 1;
            (index, f)
        })
        .collect()
}

fn image_ref(file: &OutputView) -> ImageRef {
    let mut image = ImageRef::output(file.filename.as_str());
    image.subfolder = file.subfolder.clone();
    image.kind = file.folder.clone();
    image
}

async fn copy_one(client: &Client, file: &OutputView, path: &Path) -> Result<(), String> {
    let bytes = client
        .download(&image_ref(file))
        .await
        .map_err(|e| e.to_string())?;
    if let Some(parent) = path.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| e.to_string())?;
    }
    let partial = path.with_extension("partial");
    tokio::fs::write(&partial, &bytes)
        .await
        .map_err(|e| e.to_string())?;
    tokio::fs::rename(&partial, path)
        .await
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_components_cannot_escape_the_directory() {
        assert_eq!(component("../../etc/passwd"), "_.._.._etc_passwd");
        assert_eq!(component(".."), "_..");
        assert_eq!(component(""), "_");
        assert_eq!(component("ComfyUI_00001_.png"), "ComfyUI_00001_.png");
    }

    #[test]
    fn content_types_follow_the_extension() {
        assert_eq!(content_type("a.PNG"), "image/png");
        assert_eq!(content_type("a.tar.gz"), "application/octet-stream");
    }
}
