//! Token ids: the words of one text pair mapped to integers, so n-gram counting and LCS
//! compare and hash integers instead of strings.

use rustc_hash::FxHashMap;

/// Ids handed out in first-seen order.
#[derive(Debug, Default)]
pub struct Vocab<'a> {
    ids: FxHashMap<&'a str, u32>,
}

impl<'a> Vocab<'a> {
    /// The ids of `tokens`, new words getting the next free id.
    pub fn ids(&mut self, tokens: impl IntoIterator<Item = &'a str>) -> Vec<u32> {
        tokens
            .into_iter()
            .map(|t| {
                let next = self.ids.len() as u32;
                *self.ids.entry(t).or_insert(next)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_words_share_an_id_across_calls() {
        let mut v = Vocab::default();
        assert_eq!(v.ids(["og", "så", "og"]), [0, 1, 0]);
        assert_eq!(v.ids(["så", "ost"]), [1, 2]);
    }
}
