//! The HTTP endpoints of ComfyUI as typed methods on [`Client`].

use std::collections::BTreeMap;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use reqwest::Method;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

use crate::client::Client;
use crate::error::{Error, Result};
use crate::http::{decode_json, route};
use crate::types::{
    Features, FreeRequest, History, HistoryEntry, ImageRef, NodeInfo, PromptBody, PromptInfo,
    PromptRequest, PromptResponse, Queue, SystemStats, Upload, UploadResponse,
};
use crate::validation::ValidationError;

impl Client {
    /// `POST /prompt`: queues a workflow as given. A `400` becomes [`Error::Validation`]
    /// with ComfyUI's `error` and `node_errors`. `client_id` defaults to this client's id.
    /// [`submit`](Self::submit) does the same from [`RunOptions`](crate::RunOptions).
    pub async fn queue_prompt(&self, request: &PromptRequest) -> Result<PromptResponse> {
        self.submit_body(&request.body(self.client_id())).await
    }

    /// [`queue_prompt`](Self::queue_prompt) of a borrowed body.
    pub(crate) async fn submit_body(&self, body: &PromptBody<'_>) -> Result<PromptResponse> {
        if !body.prompt.is_object() {
            return Err(Error::InvalidInput(
                "the workflow must be a JSON object of nodes".into(),
            ));
        }
        let (req, url) = self.request(Method::POST, &["prompt"]);
        let resp = self.send_raw(req.json(body), &url).await?;
        let status = resp.status();
        if status.is_success() {
            return self.read_json(resp, &url).await;
        }
        if status.as_u16() == 400 {
            let bytes = self
                .read_body(resp, &url, self.inner.config.max_response_size, "answer")
                .await?;
            return Err(match serde_json::from_slice::<ValidationError>(&bytes) {
                Ok(v) if !v.error.kind.is_empty() || !v.node_errors.is_empty() => {
                    Error::Validation(Box::new(v))
                }
                _ => Error::Status {
                    status: 400,
                    path: route(&url),
                    body: crate::http::excerpt(&bytes),
                },
            });
        }
        Err(self.status_error(resp, &url).await)
    }

    /// `GET /prompt`: the queue counter.
    pub async fn prompt_info(&self) -> Result<PromptInfo> {
        self.get_json(&["prompt"], &[]).await
    }

    /// `GET /queue`: running and pending prompts.
    pub async fn queue(&self) -> Result<Queue> {
        self.get_json(&["queue"], &[]).await
    }

    /// `POST /queue {delete: [...]}`: removes pending prompts (a running one stays).
    pub async fn delete_from_queue(&self, prompt_ids: &[&str]) -> Result<()> {
        self.post_json_unit(&["queue"], Some(&json!({ "delete": prompt_ids })))
            .await
    }

    /// `POST /queue {clear: true}`: removes every pending prompt.
    pub async fn clear_queue(&self) -> Result<()> {
        self.post_json_unit(&["queue"], Some(&json!({ "clear": true })))
            .await
    }

    /// `POST /interrupt`: interrupts the running prompt, or only `prompt_id` if it is the
    /// one running (a no-op otherwise).
    pub async fn interrupt(&self, prompt_id: Option<&str>) -> Result<()> {
        match prompt_id {
            Some(id) => {
                self.post_json_unit(&["interrupt"], Some(&json!({ "prompt_id": id })))
                    .await
            }
            None => self.post_json_unit::<Value>(&["interrupt"], None).await,
        }
    }

    /// `GET /history/{id}`: the finished prompt, or `None` if the server does not know it
    /// (still queued, running, deleted or lost).
    pub async fn history(&self, prompt_id: &str) -> Result<Option<HistoryEntry>> {
        let history: History = self.get_json(&["history", prompt_id], &[]).await?;
        Ok(history.take(prompt_id))
    }

    /// `GET /history[?max_items=N]`: finished prompts (the most recent `N`).
    pub async fn history_list(&self, max_items: Option<u32>) -> Result<History> {
        let query: Vec<(&str, String)> = max_items
            .map(|n| vec![("max_items", n.to_string())])
            .unwrap_or_default();
        self.get_json(&["history"], &query).await
    }

    /// `POST /history {delete: [...]}`.
    pub async fn delete_history(&self, prompt_ids: &[&str]) -> Result<()> {
        self.post_json_unit(&["history"], Some(&json!({ "delete": prompt_ids })))
            .await
    }

    /// `POST /history {clear: true}`.
    pub async fn clear_history(&self) -> Result<()> {
        self.post_json_unit(&["history"], Some(&json!({ "clear": true })))
            .await
    }

    /// `GET /object_info`: every node class definition.
    pub async fn object_info(&self) -> Result<BTreeMap<String, NodeInfo>> {
        self.get_json(&["object_info"], &[]).await
    }

    /// `GET /object_info` as its raw bytes (within the response size limit): for readers that
    /// keep only part of a multi-megabyte answer, such as `comfy-caps`.
    pub async fn object_info_bytes(&self) -> Result<Bytes> {
        let (req, url) = self.request(Method::GET, &["object_info"]);
        let resp = self.send(req, &url).await?;
        self.read_body(resp, &url, self.inner.config.max_response_size, "answer")
            .await
    }

    /// `GET /object_info/{class}`: one definition, `None` if the server lacks the class.
    pub async fn node_info(&self, class_type: &str) -> Result<Option<NodeInfo>> {
        let mut all: BTreeMap<String, NodeInfo> =
            self.get_json(&["object_info", class_type], &[]).await?;
        Ok(all.remove(class_type))
    }

    /// `GET /system_stats`: versions, RAM and devices (a cheap health check).
    pub async fn system_stats(&self) -> Result<SystemStats> {
        self.get_json(&["system_stats"], &[]).await
    }

    /// `GET /features`: server feature flags.
    pub async fn features(&self) -> Result<Features> {
        self.get_json(&["features"], &[]).await
    }

    /// `GET /embeddings`: embedding names.
    pub async fn embeddings(&self) -> Result<Vec<String>> {
        self.get_json(&["embeddings"], &[]).await
    }

    /// `GET /models`: model folder names.
    pub async fn model_folders(&self) -> Result<Vec<String>> {
        self.get_json(&["models"], &[]).await
    }

    /// `GET /models/{folder}`: model files in a folder.
    pub async fn models(&self, folder: &str) -> Result<Vec<String>> {
        self.get_json(&["models", folder], &[]).await
    }

    /// `POST /free`: unloads models and/or frees memory.
    pub async fn free(&self, request: FreeRequest) -> Result<()> {
        self.post_json_unit(&["free"], Some(&request)).await
    }

    /// `POST /upload/image` (multipart).
    pub async fn upload_image(&self, upload: Upload) -> Result<UploadResponse> {
        self.upload(&["upload", "image"], upload).await
    }

    /// `POST /upload/mask` (multipart; set [`Upload::original_ref`]).
    pub async fn upload_mask(&self, upload: Upload) -> Result<UploadResponse> {
        self.upload(&["upload", "mask"], upload).await
    }

    async fn upload(&self, segments: &[&str], upload: Upload) -> Result<UploadResponse> {
        let part = Part::stream(upload.bytes)
            .file_name(upload.filename)
            .mime_str(&upload.mime)
            .map_err(|_| Error::InvalidInput(format!("invalid mime type `{}`", upload.mime)))?;
        let mut form = Form::new()
            .part("image", part)
            .text("type", upload.kind)
            .text("subfolder", upload.subfolder)
            .text("overwrite", if upload.overwrite { "true" } else { "false" });
        if let Some(original) = upload.original_ref {
            let json = serde_json::to_string(&original)
                .map_err(|e| Error::InvalidInput(format!("original_ref: {e}")))?;
            form = form.text("original_ref", json);
        }
        let (req, url) = self.request(Method::POST, segments);
        let resp = self.send(req.multipart(form), &url).await?;
        self.read_json(resp, &url).await
    }

    /// `GET /view`: downloads a file whole, refusing more than the client's
    /// `max_download_size`.
    pub async fn download(&self, image: &ImageRef) -> Result<Bytes> {
        let (resp, url) = self.view_response(image).await?;
        self.read_body(resp, &url, self.inner.config.max_download_size, "download")
            .await
    }

    /// `GET /view` as a stream of chunks; the stream yields [`Error::TooLarge`] and ends
    /// once more than the client's `max_download_size` arrived.
    pub async fn download_stream(
        &self,
        image: &ImageRef,
    ) -> Result<impl Stream<Item = Result<Bytes>> + Send + 'static> {
        let (resp, url) = self.view_response(image).await?;
        let limit = self.inner.config.max_download_size;
        let what = format!("download of {}", route(&url));
        if resp.content_length().is_some_and(|n| n > limit) {
            return Err(Error::TooLarge { what, limit });
        }
        let mut seen: u64 = 0;
        let mut done = false;
        Ok(resp.bytes_stream().filter_map(move |chunk| {
            let item = if done {
                None
            } else {
                match chunk {
                    Ok(bytes) => {
                        seen += bytes.len() as u64;
                        if seen > limit {
                            done = true;
                            Some(Err(Error::TooLarge {
                                what: what.clone(),
                                limit,
                            }))
                        } else {
                            Some(Ok(bytes))
                        }
                    }
                    Err(e) => {
                        done = true;
                        Some(Err(Error::Http(Box::new(e.without_url()))))
                    }
                }
            };
            std::future::ready(item)
        }))
    }

    async fn view_response(&self, image: &ImageRef) -> Result<(reqwest::Response, url::Url)> {
        let url = self.inner.config.endpoint.http(&["view"]);
        // No total deadline: a large file may take long; the per-read deadline applies.
        let req = self.inner.http.get(url.clone()).query(&[
            ("filename", image.filename.as_str()),
            ("subfolder", image.subfolder.as_str()),
            ("type", image.kind.as_str()),
        ]);
        let resp = self.send(req, &url).await?;
        Ok((resp, url))
    }

    /// `GET` any route under the base URL as JSON (for endpoints this crate does not wrap).
    pub async fn get_raw(&self, path: &str) -> Result<Value> {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let (req, url) = self.request(Method::GET, &segments);
        let resp = self.send(req, &url).await?;
        let body = self
            .read_body(resp, &url, self.inner.config.max_response_size, "answer")
            .await?;
        decode_json(&body, &url)
    }
}
