//! Keyset pagination: opaque cursors and pages fetched with one extra row.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::validation::ValidationError;

/// Where a page starts: the sort key and id of the last item of the previous page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    key: i64,
    id: i64,
}

impl Cursor {
    /// A cursor after the item with this sort key and id.
    pub fn new(key: i64, id: i64) -> Self {
        Self { key, id }
    }

    /// A cursor for lists ordered by id alone.
    pub fn for_id(id: i64) -> Self {
        Self { key: id, id }
    }

    /// The sort key of the last item of the previous page.
    pub fn key(self) -> i64 {
        self.key
    }

    /// The id of the last item of the previous page.
    pub fn id(self) -> i64 {
        self.id
    }

    /// The opaque form given to clients.
    pub fn encode(self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}.{}", self.key, self.id))
    }

    /// Reads a cursor from a client.
    pub fn decode(raw: &str) -> Result<Self, ValidationError> {
        let invalid = || ValidationError::new("cursor", "invalid_cursor", "cursor is not one this API returned");
        let text = URL_SAFE_NO_PAD.decode(raw).ok().and_then(|b| String::from_utf8(b).ok()).ok_or_else(invalid)?;
        let (key, id) = text.split_once('.').ok_or_else(invalid)?;
        Ok(Self { key: key.parse().map_err(|_| invalid())?, id: id.parse().map_err(|_| invalid())? })
    }
}

/// Cuts rows fetched with `LIMIT limit + 1` down to `limit`, with the cursor of the next page when
/// the extra row showed there is one.
pub fn next_page<T>(mut rows: Vec<T>, limit: u8, cursor_of: impl Fn(&T) -> Cursor) -> (Vec<T>, Option<Cursor>) {
    if rows.len() <= usize::from(limit) {
        return (rows, None);
    }
    rows.truncate(usize::from(limit));
    let next = rows.last().map(cursor_of);
    (rows, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let cursor = Cursor::new(-42, 7);
        assert_eq!(Cursor::decode(&cursor.encode()), Ok(cursor));
        for garbage in ["", "abc", "!!!", &URL_SAFE_NO_PAD.encode("1"), &URL_SAFE_NO_PAD.encode("a.b")] {
            assert_eq!(Cursor::decode(garbage).unwrap_err().code, "invalid_cursor", "{garbage:?}");
        }
    }

    #[test]
    fn a_page_has_a_next_cursor_only_when_more_rows_exist() {
        let (rows, next) = next_page(vec![5, 4, 3], 3, |r| Cursor::for_id(*r));
        assert_eq!((rows.len(), next), (3, None));
        let (rows, next) = next_page(vec![5, 4, 3, 2], 3, |r| Cursor::for_id(*r));
        assert_eq!((rows, next), (vec![5, 4, 3], Some(Cursor::for_id(3))));
    }
}
