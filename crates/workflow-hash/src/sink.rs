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
            copy_short(dst, bytes);
            self.len = end;
        } else {
            self.put_slow(bytes);
        }
    }

    #[inline(always)]
    fn put3(&mut self, prefix: &[u8], body: &[u8], suffix: &[u8]) {
        let start = self.len;
        let end = start + prefix.len() + body.len() + suffix.len();
        if let Some(dst) = self.buf.get_mut(start..end) {
            let (p, rest) = dst.split_at_mut(prefix.len());
            let (b, q) = rest.split_at_mut(body.len());
            copy_short(p, prefix);
            copy_short(b, body);
            copy_short(q, suffix);
            self.len = end;
        } else {
            self.put(prefix);
            self.put(body);
            self.put(suffix);
        }
    }
}

/// Copies `src` into `dst` (of the same length) without calling `memcpy` for the short pieces
/// canonical JSON is made of: two overlapping word copies (first and last `N` bytes) cover any
/// length from `N` to `2 * N`. A constant `src` folds to its single case.
#[inline(always)]
fn copy_short(dst: &mut [u8], src: &[u8]) {
    #[inline(always)]
    fn ends<const N: usize>(dst: &mut [u8], src: &[u8]) {
        if let (Some(d), Some(s)) = (dst.first_chunk_mut::<N>(), src.first_chunk::<N>()) {
            *d = *s;
        }
        if let (Some(d), Some(s)) = (dst.last_chunk_mut::<N>(), src.last_chunk::<N>()) {
            *d = *s;
        }
    }
    match src.len() {
        0..=3 => dst.iter_mut().zip(src).for_each(|(d, s)| *d = *s),
        4..=7 => ends::<4>(dst, src),
        8..=16 => ends::<8>(dst, src),
        17..=32 => ends::<16>(dst, src),
        _ => dst.copy_from_slice(src),
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
