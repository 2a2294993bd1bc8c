//! Binary websocket frames: a big-endian `u32` event type, then a type-specific layout.

use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::Event;
use crate::error::{Error, Result};

/// Frame type 1: a preview image (`u32` format, then the image bytes).
pub const PREVIEW_IMAGE: u32 = 1;
/// Frame type 3: progress text (`u32` node-id length, node id, UTF-8 text).
pub const TEXT: u32 = 3;
/// Frame type 4: a preview with metadata (`u32` JSON length, JSON, image bytes).
pub const PREVIEW_IMAGE_WITH_METADATA: u32 = 4;

/// The encoding of a preview image.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ImageFormat {
    /// JPEG (type-1 code 1, `image/jpeg`).
    Jpeg,
    /// PNG (type-1 code 2, `image/png`).
    Png,
    /// WebP (type-1 code 3, `image/webp`).
    Webp,
    /// A type-1 format code this crate does not know.
    Code(u32),
    /// A metadata `image_type` this crate does not know.
    Mime(String),
}

impl ImageFormat {
    fn from_code(code: u32) -> Self {
        match code {
            1 => Self::Jpeg,
            2 => Self::Png,
            3 => Self::Webp,
            other => Self::Code(other),
        }
    }

    fn code(&self) -> u32 {
        match self {
            Self::Jpeg => 1,
            Self::Webp => 3,
            Self::Code(c) => *c,
            Self::Png | Self::Mime(_) => 2,
        }
    }

    fn from_mime(mime: Option<&str>) -> Self {
        match mime {
            Some("image/jpeg") => Self::Jpeg,
            Some("image/png") => Self::Png,
            Some("image/webp") => Self::Webp,
            Some(other) => Self::Mime(other.to_owned()),
            None => Self::Mime(String::new()),
        }
    }

    /// The MIME type, when known.
    pub fn mime(&self) -> Option<&str> {
        match self {
            Self::Jpeg => Some("image/jpeg"),
            Self::Png => Some("image/png"),
            Self::Webp => Some("image/webp"),
            Self::Mime(m) if !m.is_empty() => Some(m),
            _ => None,
        }
    }
}

/// The JSON header of a type-4 preview frame.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PreviewMetadata {
    /// The node that produced the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
    /// The prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_id: Option<String>,
    /// The node shown in the UI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_node_id: Option<String>,
    /// The enclosing node of a subgraph node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_node_id: Option<String>,
    /// The node id before subgraph expansion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub real_node_id: Option<String>,
    /// The MIME type of the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_type: Option<String>,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A preview image (frame type 1 or 4). `SaveImageWebsocket` sends its outputs this way.
#[derive(Debug, Clone, PartialEq)]
pub struct Preview {
    /// The image encoding.
    pub format: ImageFormat,
    /// The metadata of a type-4 frame.
    pub metadata: Option<PreviewMetadata>,
    /// The encoded image.
    pub image: Bytes,
    /// The prompt it belongs to: from the metadata, or (type 1, which has none) the prompt
    /// executing on this client id when it arrived, filled in by the client.
    pub prompt_id: Option<String>,
    /// The node it belongs to, found the same way as `prompt_id`.
    pub node_id: Option<String>,
}

/// Progress text of a node (frame type 3, broadcast to every socket).
#[derive(Debug, Clone, PartialEq)]
pub struct NodeText {
    /// The node.
    pub node_id: String,
    /// The text.
    pub text: String,
    /// The prompt executing on this client id when it arrived (filled in by the client).
    pub prompt_id: Option<String>,
}

/// A binary frame of a type this crate does not know, kept whole.
#[derive(Debug, Clone, PartialEq)]
pub struct UnknownBinary {
    /// The frame's event type.
    pub event_type: u32,
    /// Everything after the type.
    pub payload: Bytes,
}

fn split_u32<'a>(buf: &'a [u8], what: &str) -> Result<(u32, &'a [u8])> {
    match buf.split_first_chunk::<4>() {
        Some((head, rest)) => Ok((u32::from_be_bytes(*head), rest)),
        None => Err(Error::decode(
            "binary frame",
            format!("truncated before {what}"),
        )),
    }
}

fn split_len<'a>(buf: &'a [u8], what: &str) -> Result<(&'a [u8], &'a [u8])> {
    let (len, rest) = split_u32(buf, what)?;
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    if len > rest.len() {
        return Err(Error::decode(
            "binary frame",
            format!("{what} of {len} bytes but only {} remain", rest.len()),
        ));
    }
    Ok(rest.split_at(len))
}

/// Decodes one binary frame.
pub(crate) fn parse(frame: &Bytes) -> Result<Event> {
    let (event_type, body) = split_u32(frame, "the event type")?;
    let offset = |rest: &[u8]| frame.len() - rest.len();
    match event_type {
        PREVIEW_IMAGE => {
            let (code, image) = split_u32(body, "the image format")?;
            Ok(Event::Preview(Preview {
                format: ImageFormat::from_code(code),
                metadata: None,
                image: frame.slice(offset(image)..),
                prompt_id: None,
                node_id: None,
            }))
        }
        TEXT => {
            let (node, text) = split_len(body, "the node id")?;
            let node_id = std::str::from_utf8(node)
                .map_err(|e| Error::decode("binary text frame node id", e))?;
            let text = std::str::from_utf8(text)
                .map_err(|e| Error::decode("binary text frame text", e))?;
            Ok(Event::Text(NodeText {
                node_id: node_id.to_owned(),
                text: text.to_owned(),
                prompt_id: None,
            }))
        }
        PREVIEW_IMAGE_WITH_METADATA => {
            let (json, image) = split_len(body, "the metadata")?;
            let metadata: PreviewMetadata =
                serde_json::from_slice(json).map_err(|e| Error::decode("preview metadata", e))?;
            Ok(Event::Preview(Preview {
                format: ImageFormat::from_mime(metadata.image_type.as_deref()),
                prompt_id: metadata.prompt_id.clone(),
                node_id: metadata.node_id.clone(),
                metadata: Some(metadata),
                image: frame.slice(offset(image)..),
            }))
        }
        other => Ok(Event::UnknownBinary(UnknownBinary {
            event_type: other,
            payload: frame.slice(4..),
        })),
    }
}

fn put_len(out: &mut BytesMut, len: usize) -> Result<()> {
    let len = u32::try_from(len).map_err(|_| Error::TooLarge {
        what: "binary frame section".into(),
        limit: u64::from(u32::MAX),
    })?;
    out.put_u32(len);
    Ok(())
}

/// Encodes a frame in the server's layout (type 4 when metadata is present).
/// `None` for events that are not binary frames.
pub(crate) fn encode(frame: &Event) -> Result<Option<Vec<u8>>> {
    let mut out = BytesMut::new();
    match frame {
        Event::Preview(p) => match &p.metadata {
            Some(meta) => {
                let json = serde_json::to_vec(meta).map_err(|e| Error::decode("metadata", e))?;
                out.put_u32(PREVIEW_IMAGE_WITH_METADATA);
                put_len(&mut out, json.len())?;
                out.put_slice(&json);
                out.put_slice(&p.image);
            }
            None => {
                out.put_u32(PREVIEW_IMAGE);
                out.put_u32(p.format.code());
                out.put_slice(&p.image);
            }
        },
        Event::Text(t) => {
            out.put_u32(TEXT);
            put_len(&mut out, t.node_id.len())?;
            out.put_slice(t.node_id.as_bytes());
            out.put_slice(t.text.as_bytes());
        }
        Event::UnknownBinary(u) => {
            out.put_u32(u.event_type);
            out.put_slice(&u.payload);
        }
        _ => return Ok(None),
    }
    Ok(Some(out.to_vec()))
}
