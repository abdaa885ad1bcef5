//! The tags and notes block of the sweep and run pages (`said.html`), with the editor's forms.

use store::annotations::Annotations;

use crate::format::time;

/// Tags and notes of one sweep or run, and where its forms post.
pub struct Said {
    /// Tags, sorted.
    pub tags: Vec<String>,
    /// (author, time, text), oldest first.
    pub notes: Vec<(String, String, String)>,
    /// `/sweeps/NAME` or `/runs/ID`: the forms post to `{base}/tags` and `{base}/notes`.
    pub base: String,
}

impl Said {
    /// The block for the sweep or run at `base`.
    pub fn new(a: Annotations, base: String) -> Said {
        Said {
            tags: a.tags,
            notes: a
                .notes
                .into_iter()
                .map(|n| {
                    (
                        n.author.unwrap_or_else(|| "someone".into()),
                        time(&n.at),
                        n.text,
                    )
                })
                .collect(),
            base,
        }
    }
}
