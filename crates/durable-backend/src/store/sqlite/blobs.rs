//! Event bytes and entity states too large for the clustered tables' rows, kept in a rowid table of their own.
//!
//! `history`, `inbox` and `entities` are clustered by their key (`WITHOUT ROWID`): a row is stored whole in the
//! B-tree, and a row over about 1,000 bytes spills the rest into overflow pages. SQLite compares a search key
//! against whole records, so every search that passes such a row (the next turn's history append, a message's
//! delete, a turn's read of its inbox, an entity's lease) reads all of its overflow pages first. A larger event
//! therefore lives in `blobs`, keyed by an integer (a search there compares integers only), and its row keeps an
//! empty event and the blob's id in `blob`; a larger entity state likewise keeps an empty state and the id in
//! `state_blob`. A reader fetches the blob by id when a row names one ([`read`]), so the rows that name none cost
//! no join. Triggers delete a blob with the row that names it, and an entity's old state blob when a new state
//! replaces it (see the schema's versions 15 and 16), so no delete path has to know about them.

use std::borrow::Cow;

use rusqlite::{Connection, Row};

use crate::error::StoreError;

/// The largest event a row keeps itself: with its key it stays within SQLite's in-page limit for index pages
/// (`maxLocal`, 1,002 bytes of a 4 KiB page).
pub(super) const INLINE_BYTES: usize = 800;

/// The value of a row's `event` and `blob` columns for `bytes`: the bytes themselves, or an empty event and the id
/// of the `blobs` row that now holds them.
pub(super) fn place(c: &Connection, bytes: Vec<u8>) -> Result<(Vec<u8>, Option<i64>), StoreError> {
    if bytes.len() <= INLINE_BYTES {
        return Ok((bytes, None));
    }
    Ok((Vec::new(), Some(insert(c, &bytes)?)))
}

/// The event of a history or inbox row: its own bytes (column `event`), or its blob's when column `blob` names
/// one. `None` for a row without an event (an inbox message that only wakes its instance).
pub(super) fn event_of<'r>(
    c: &Connection,
    row: &'r Row<'_>,
    event: usize,
    blob: usize,
) -> Result<Option<Cow<'r, [u8]>>, StoreError> {
    if let Some(id) = row.get::<_, Option<i64>>(blob)? {
        return Ok(Some(Cow::Owned(read(c, id)?)));
    }
    Ok(row
        .get_ref(event)?
        .as_blob_or_null()
        .map_err(rusqlite::Error::from)?
        .map(Cow::Borrowed))
}

/// [`place`] for a text column (an entity's state): no text stays no text, and a large one leaves an empty text
/// behind, so `state IS NULL` keeps meaning "no state".
pub(super) fn place_text(
    c: &Connection,
    text: Option<String>,
) -> Result<(Option<String>, Option<i64>), StoreError> {
    match text {
        Some(text) if text.len() > INLINE_BYTES => {
            Ok((Some(String::new()), Some(insert(c, text.as_bytes())?)))
        }
        text => Ok((text, None)),
    }
}

fn insert(c: &Connection, bytes: &[u8]) -> Result<i64, StoreError> {
    c.prepare_cached("INSERT INTO blobs (data) VALUES (?1)")?
        .execute([bytes])?;
    Ok(c.last_insert_rowid())
}

/// The text of a row whose text column holds `text` and whose blob column holds `blob`. Only the empty text that
/// [`place_text`] leaves behind defers to the blob.
pub(super) fn read_text(
    c: &Connection,
    text: Option<String>,
    blob: Option<i64>,
) -> Result<Option<String>, StoreError> {
    match blob.filter(|_| text.as_deref() == Some("")) {
        None => Ok(text),
        Some(id) => String::from_utf8(read(c, id)?)
            .map(Some)
            .map_err(|e| StoreError::Internal(format!("blob {id} is not text: {e}"))),
    }
}

/// The bytes of blob `id`. A row names only a blob that exists (its trigger deletes the blob with it), so a
/// missing one is a damaged store.
pub(super) fn read(c: &Connection, id: i64) -> Result<Vec<u8>, StoreError> {
    use rusqlite::OptionalExtension;
    c.prepare_cached("SELECT data FROM blobs WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?
        .ok_or_else(|| StoreError::Internal(format!("blob {id} is named by a row but missing")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::Synchronous;

    fn store() -> Connection {
        let c = Connection::open_in_memory().unwrap();
        super::super::schema::prepare(&c, Synchronous::Off).unwrap();
        c
    }

    fn count(c: &Connection, sql: &str) -> i64 {
        c.query_row(sql, [], |r| r.get(0)).unwrap()
    }

    #[test]
    fn small_events_stay_in_their_row_and_large_ones_go_to_a_blob() {
        let c = store();
        let small = vec![7; INLINE_BYTES];
        assert_eq!(place(&c, small.clone()).unwrap(), (small, None));
        let large = vec![9; INLINE_BYTES + 1];
        let (event, blob) = place(&c, large.clone()).unwrap();
        assert!(event.is_empty());
        let stored: Vec<u8> = c
            .query_row(
                "SELECT data FROM blobs WHERE id = ?1",
                [blob.unwrap()],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(stored, large);
    }

    #[test]
    fn a_missing_blob_is_an_error_not_an_empty_event() {
        let c = store();
        let (_, blob) = place(&c, vec![3; 2000]).unwrap();
        assert_eq!(read(&c, blob.unwrap()).unwrap(), vec![3; 2000]);
        let error = read(&c, blob.unwrap() + 1).unwrap_err();
        assert!(error.to_string().contains("missing"), "{error}");
    }

    /// Whatever deletes a row (a turn's message, a purge, a rewind, a whole hub), its blob goes with it, and only
    /// its own.
    #[test]
    fn a_blob_goes_with_the_row_that_names_it() {
        let c = store();
        for (table, key) in [("history", "seq"), ("inbox", "id")] {
            let mut blobs = Vec::new();
            for n in 0..3 {
                let (event, blob) = place(&c, vec![1; 5000]).unwrap();
                blobs.push(blob.unwrap());
                let sql = if table == "history" {
                    "INSERT INTO history (hub, instance_id, seq, event, turn, blob) VALUES ('h', 'i', ?1, ?2, 1, ?3)"
                } else {
                    "INSERT INTO inbox (hub, instance_id, priority, id, visible_at, event, delayed, blob) \
                     VALUES ('h', 'i', 1, ?1, 0, ?2, 0, ?3)"
                };
                c.execute(sql, rusqlite::params![n, event, blob]).unwrap();
            }
            c.execute(
                &format!("DELETE FROM {table} WHERE hub = 'h' AND {key} = 0"),
                [],
            )
            .unwrap();
            let left: Vec<i64> = c
                .prepare("SELECT id FROM blobs ORDER BY id")
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert_eq!(left, blobs[1..], "{table}");
            c.execute(&format!("DELETE FROM {table} WHERE hub = 'h'"), [])
                .unwrap();
            assert_eq!(count(&c, "SELECT COUNT(*) FROM blobs"), 0, "{table}");
        }
    }
}
