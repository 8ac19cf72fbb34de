//! Keyset pagination: opaque cursors and pages fetched with one extra row.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Datelike, Utc};

/// A cursor this API did not hand out (garbled, forged, or from another list): 400 `invalid_cursor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cursor is not one this API returned")]
pub struct CursorError;

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
    pub fn decode(raw: &str) -> Result<Self, CursorError> {
        let text = URL_SAFE_NO_PAD.decode(raw).ok().and_then(|b| String::from_utf8(b).ok()).ok_or(CursorError)?;
        let (key, id) = text.split_once('.').ok_or(CursorError)?;
        Ok(Self { key: key.parse().map_err(|_| CursorError)?, id: id.parse().map_err(|_| CursorError)? })
    }

    /// A cursor whose key is a moment, in microseconds since the epoch.
    pub fn for_time(at: DateTime<Utc>, id: i64) -> Self {
        Self { key: at.timestamp_micros(), id }
    }

    /// The key as a moment, exactly (no floating point on the way), for lists ordered by time. Only
    /// years 1970–9999 can come from this API; anything else was forged.
    pub fn time_key(self) -> Result<DateTime<Utc>, CursorError> {
        DateTime::from_timestamp_micros(self.key).filter(|at| (1970..=9999).contains(&at.year())).ok_or(CursorError)
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
            assert_eq!(Cursor::decode(garbage), Err(CursorError), "{garbage:?}");
        }
    }

    #[test]
    fn time_keys_are_exact_and_bounded() {
        let far = DateTime::parse_from_rfc3339("9999-12-31T23:59:59.999999Z").unwrap().to_utc();
        assert_eq!(Cursor::for_time(far, 1).time_key(), Ok(far));
        assert_eq!(Cursor::new(i64::MAX, 1).time_key(), Err(CursorError));
        assert_eq!(Cursor::new(-1, 1).time_key(), Err(CursorError));
    }

    #[test]
    fn a_page_has_a_next_cursor_only_when_more_rows_exist() {
        let (rows, next) = next_page(vec![5, 4, 3], 3, |r| Cursor::for_id(*r));
        assert_eq!((rows.len(), next), (3, None));
        let (rows, next) = next_page(vec![5, 4, 3, 2], 3, |r| Cursor::for_id(*r));
        assert_eq!((rows, next), (vec![5, 4, 3], Some(Cursor::for_id(3))));
    }
}
