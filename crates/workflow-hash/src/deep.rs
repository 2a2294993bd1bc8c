//! [`Deep`]: the error of a value nested deeper than [`MAX_DEPTH`], carrying its path.

use crate::canonical::MAX_DEPTH;
use crate::error::Error;

/// A container nested too deeply; carries the path while the error unwinds (innermost first),
/// so the happy path never tracks it.
pub(crate) struct Deep {
    // A boxed slice keeps `Result<(), Deep>` two words wide, returned in registers.
    segments: Box<[Segment]>,
}

enum Segment {
    Key(String),
    Index(usize),
}

impl Deep {
    pub(crate) fn new() -> Self {
        Self {
            segments: Box::default(),
        }
    }

    #[cold]
    fn push(self, segment: Segment) -> Self {
        let mut segments = Vec::from(self.segments);
        segments.push(segment);
        Self {
            segments: segments.into_boxed_slice(),
        }
    }

    pub(crate) fn at_key(self, key: &str) -> Self {
        self.push(Segment::Key(key.to_owned()))
    }

    pub(crate) fn at_index(self, index: usize) -> Self {
        self.push(Segment::Index(index))
    }

    pub(crate) fn into_error(self) -> Error {
        let mut node = String::new();
        let mut pointer = String::new();
        for (i, segment) in self.segments.iter().rev().enumerate() {
            pointer.push('/');
            match segment {
                Segment::Key(key) => {
                    if i == 0 {
                        node.clone_from(key);
                    }
                    pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
                }
                Segment::Index(index) => pointer.push_str(&index.to_string()),
            }
        }
        Error::TooDeep {
            node,
            pointer,
            limit: MAX_DEPTH,
        }
    }
}
