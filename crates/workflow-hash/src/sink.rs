//! Byte sinks the canonical writer streams into: a `String` (to show the canonical form) or a
//! buffered SHA-256 state (to hash it without building the string).

use sha2::{Digest, Sha256};

/// Where canonical JSON text goes (always UTF-8). Implemented by `Vec<u8>` and [`HashSink`].
pub(crate) trait Sink {
    /// Appends `bytes`.
    fn put(&mut self, bytes: &[u8]);

    /// Appends `prefix`, `body` and `suffix` (one bounds check for the common small case).
    #[inline(always)]
    fn put3(&mut self, prefix: &[u8], body: &[u8], suffix: &[u8]) {
        self.put(prefix);
        self.put(body);
        self.put(suffix);
    }
}

impl Sink for Vec<u8> {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

impl<T: Sink + ?Sized> Sink for &mut T {
    #[inline(always)]
    fn put(&mut self, bytes: &[u8]) {
        (**self).put(bytes);
    }

    #[inline(always)]
    fn put3(&mut self, prefix: &[u8], body: &[u8], suffix: &[u8]) {
        (**self).put3(prefix, body, suffix);
    }
}

const BUF: usize = 512;

/// SHA-256 with a small write buffer in front, so the many tiny pieces of canonical JSON
/// (`{`, `"`, `:` …) become a few large `update` calls.
pub(crate) struct HashSink {
    state: Sha256,
    buf: [u8; BUF],
    len: usize,
}

impl HashSink {
    pub(crate) fn new() -> Self {
        Self {
            state: Sha256::new(),
            buf: [0; BUF],
            len: 0,
        }
    }

    fn flush(&mut self) {
        if let Some(pending) = self.buf.get(..self.len) {
            self.state.update(pending);
        }
        self.len = 0;
    }

    /// Flushes the buffer and returns the digest.
    pub(crate) fn finish(mut self) -> [u8; 32] {
        self.flush();
        self.state.finalize().into()
    }
}

impl HashSink {
    #[cold]
    #[inline(never)]
    fn put_slow(&mut self, bytes: &[u8]) {
        self.flush();
        match self.buf.get_mut(..bytes.len()) {
            Some(dst) if bytes.len() < BUF / 2 => {
                dst.copy_from_slice(bytes);
                self.len = bytes.len();
            }
            _ => self.state.update(bytes),
        }
    }
}

impl Sink for HashSink {
    #[inline(always)]
    fn put(&mut self, bytes: &[u8]) {
        let end = self.len + bytes.len();
        if let Some(dst) = self.buf.get_mut(self.len..end) {
            dst.copy_from_slice(bytes);
            self.len = end;
        } else {
            self.put_slow(bytes);
        }
    }

    #[inline(always)]
    fn put3(&mut self, prefix: &[u8], body: &[u8], suffix: &[u8]) {
        let start = self.len;
        let mid = start + prefix.len();
        let tail = mid + body.len();
        let end = tail + suffix.len();
        if let Some(dst) = self.buf.get_mut(start..end) {
            let (p, rest) = dst.split_at_mut(prefix.len());
            let (b, q) = rest.split_at_mut(body.len());
            p.copy_from_slice(prefix);
            b.copy_from_slice(body);
            q.copy_from_slice(suffix);
            self.len = end;
        } else {
            self.put(prefix);
            self.put(body);
            self.put(suffix);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffered_digest_equals_one_shot_digest() {
        let pieces: Vec<String> = (0..2000).map(|i| "x".repeat(i % 700)).collect();
        let mut sink = HashSink::new();
        let mut whole = Vec::new();
        for (i, p) in pieces.iter().enumerate() {
            if i % 3 == 0 {
                sink.put3(b"<", p.as_bytes(), b">");
                whole.put3(b"<", p.as_bytes(), b">");
            } else {
                sink.put(p.as_bytes());
                whole.put(p.as_bytes());
            }
        }
        let expected: [u8; 32] = Sha256::digest(&whole).into();
        assert_eq!(sink.finish(), expected);
    }
}
