//! An in-memory table of records with string ids, kept in creation order. Handlers made from
//! a service spec keep their resources in these; the data is lost on restart.

use std::collections::{BTreeMap, HashMap};
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use tokio::sync::mpsc::Sender;

use super::{Batch, ListQuery, Page, ScanQuery, StoreError};

/// The most records a table holds unless told otherwise (`store.max_records`).
pub use super::DEFAULT_MAX_RECORDS;

/// A record a [`MemoryTable`] can keep.
pub trait Record: Clone + Send + Sync + 'static {
    /// The record's unique id.
    fn id(&self) -> &str;
    /// Whether the record matches `filter`, which is lowercase and not empty.
    fn matches(&self, filter: &str) -> bool;
    /// The field no two records may share (compared ignoring case) and the record's value of
    /// it, if the table keeps one unique: `Some(("email", &self.email))`. None by default.
    fn unique(&self) -> Option<(&'static str, &str)> {
        None
    }

    /// The record's size encoded, in bytes, which bounds a page of them by bytes
    /// ([`MemoryTable::with_max_page_bytes`]); 0 by default: pages bounded by count only.
    fn size(&self) -> usize {
        0
    }
}

/// Records by id, listed oldest first, at most `max_records` of them.
#[derive(Debug)]
pub struct MemoryTable<T> {
    state: RwLock<State<T>>,
    max_records: usize,
    max_page_bytes: usize,
}

#[derive(Debug)]
struct State<T> {
    next_sequence: u64,
    by_sequence: BTreeMap<u64, T>,
    sequence_by_id: HashMap<String, u64>,
    /// The unique field's value, lowercase, to the id of the record holding it.
    id_by_unique: HashMap<String, String>,
}

impl<T> Default for MemoryTable<T> {
    fn default() -> Self {
        Self::with_max_records(DEFAULT_MAX_RECORDS)
    }
}

impl<T> State<T> {
    fn sequence_of(&self, id: &str) -> Result<u64, StoreError> {
        self.sequence_by_id
            .get(id)
            .copied()
            .ok_or_else(|| StoreError::NotFound { id: id.to_owned() })
    }

    /// AlreadyExists when another record than `id` holds `record`'s unique value.
    fn check_unique(&self, record: &T, id: &str) -> Result<(), StoreError>
    where
        T: Record,
    {
        let Some((field, value)) = record.unique() else {
            return Ok(());
        };
        match self.id_by_unique.get(&value.to_lowercase()) {
            Some(holder) if holder != id => Err(StoreError::AlreadyExists {
                field,
                value: value.to_owned(),
            }),
            _ => Ok(()),
        }
    }
}

fn unique_key<T: Record>(record: &T) -> Option<String> {
    record.unique().map(|(_, value)| value.to_lowercase())
}

// A std lock, not tokio's: it is never held across an `.await`, and it is cheaper per call.
impl<T> MemoryTable<T> {
    /// An empty table that refuses new records once it holds `max_records`.
    pub fn with_max_records(max_records: usize) -> Self {
        Self {
            state: RwLock::new(State {
                next_sequence: 0,
                by_sequence: BTreeMap::new(),
                sequence_by_id: HashMap::new(),
                id_by_unique: HashMap::new(),
            }),
            max_records,
            max_page_bytes: super::DEFAULT_MAX_PAGE_BYTES,
        }
    }

    /// The same table with pages (and stream batches) of at most `max_page_bytes`, by the
    /// records' [`Record::size`]: a page ends early, and its token continues, rather than
    /// building a response over the message limit.
    pub fn with_max_page_bytes(mut self, max_page_bytes: usize) -> Self {
        self.max_page_bytes = max_page_bytes;
        self
    }

    fn read(&self) -> RwLockReadGuard<'_, State<T>> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, State<T>> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<T: Record> MemoryTable<T> {
    /// The record with this id.
    pub async fn get(&self, id: &str) -> Result<T, StoreError> {
        let state = self.read();
        let sequence = state.sequence_of(id)?;
        Ok(state.by_sequence[&sequence].clone())
    }

    /// Adds a record; the table must not be full, and its id and unique value must be new.
    pub async fn insert(&self, record: T) -> Result<T, StoreError> {
        let mut state = self.write();
        if state.by_sequence.len() >= self.max_records {
            return Err(StoreError::Full {
                max_records: self.max_records,
            });
        }
        let id = record.id().to_owned();
        if state.sequence_by_id.contains_key(&id) {
            return Err(StoreError::AlreadyExists {
                field: "id",
                value: id,
            });
        }
        state.check_unique(&record, &id)?;
        let sequence = state.next_sequence;
        state.next_sequence += 1;
        if let Some(key) = unique_key(&record) {
            state.id_by_unique.insert(key, id.clone());
        }
        state.sequence_by_id.insert(id, sequence);
        state.by_sequence.insert(sequence, record.clone());
        Ok(record)
    }

    /// Changes the record with this id and returns it as changed; nothing changes when the
    /// change would give it a unique value another record holds.
    pub async fn update(&self, id: &str, change: impl FnOnce(&mut T)) -> Result<T, StoreError> {
        let mut state = self.write();
        let sequence = state.sequence_of(id)?;
        let mut record = state.by_sequence[&sequence].clone();
        let before = unique_key(&record);
        change(&mut record);
        state.check_unique(&record, id)?;
        let after = unique_key(&record);
        if before != after {
            if let Some(key) = before {
                state.id_by_unique.remove(&key);
            }
            if let Some(key) = after {
                state.id_by_unique.insert(key, id.to_owned());
            }
        }
        state.by_sequence.insert(sequence, record.clone());
        Ok(record)
    }

    /// Removes the record with this id.
    pub async fn delete(&self, id: &str) -> Result<(), StoreError> {
        let mut state = self.write();
        let sequence = state.sequence_of(id)?;
        state.sequence_by_id.remove(id);
        if let Some(record) = state.by_sequence.remove(&sequence) {
            if let Some(key) = unique_key(&record) {
                state.id_by_unique.remove(&key);
            }
        }
        Ok(())
    }

    /// Up to `query.limit` records matching the query's filter (ignoring case) from position
    /// `query.start` on, oldest first: one pass from where the last batch ended.
    pub async fn scan(&self, query: ScanQuery<'_>) -> Result<Batch<T>, StoreError> {
        let filter = query.filter.to_lowercase();
        let state = self.read();
        let matching = state
            .by_sequence
            .range(query.start..)
            .filter(|(_, record)| filter.is_empty() || record.matches(&filter));
        let mut budget = super::PageBudget::new(self.max_page_bytes);
        let mut records: Vec<T> = Vec::new();
        let mut next = None;
        for (sequence, record) in matching {
            if records.len() == query.limit || !budget.take(record.size()) {
                next = Some(*sequence);
                break;
            }
            records.push(record.clone());
        }
        Ok(Batch { records, next })
    }

    /// Sends every record matching `filter` (ignoring case), oldest first, to `sink` until it
    /// is closed: [`super::stream`] over [`MemoryTable::scan`].
    pub async fn stream(&self, filter: &str, sink: Sender<Result<T, StoreError>>) {
        super::stream(filter, sink, |query| self.scan(query)).await;
    }

    /// The records matching the query's filter (ignoring case), oldest first, by offset: what
    /// handlers written before [`MemoryTable::scan`] call (kept so they build unchanged).
    pub async fn list(&self, query: ListQuery<'_>) -> Result<Page<T>, StoreError> {
        let filter = query.filter.to_lowercase();
        let state = self.read();
        let matching = state
            .by_sequence
            .values()
            .filter(|record| filter.is_empty() || record.matches(&filter));
        let total = matching.clone().count();
        let records = matching
            .skip(query.offset)
            .take(query.limit)
            .cloned()
            .collect();
        Ok(Page { records, total })
    }

    /// How many records match `filter` (ignoring case).
    pub async fn count(&self, filter: &str) -> Result<usize, StoreError> {
        let filter = filter.to_lowercase();
        let state = self.read();
        if filter.is_empty() {
            return Ok(state.by_sequence.len());
        }
        Ok(state
            .by_sequence
            .values()
            .filter(|record| record.matches(&filter))
            .count())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq)]
    struct Note {
        id: String,
        text: String,
    }

    impl Record for Note {
        fn id(&self) -> &str {
            &self.id
        }

        fn matches(&self, filter: &str) -> bool {
            self.text.to_lowercase().contains(filter)
        }

        fn size(&self) -> usize {
            self.id.len() + self.text.len()
        }
    }

    #[tokio::test]
    async fn a_page_stops_at_its_byte_budget_and_its_token_continues() {
        let table = MemoryTable::default().with_max_page_bytes(4 * 1024 * 1024);
        let megabyte = "x".repeat(1024 * 1024);
        for i in 0..10 {
            table
                .insert(note(&i.to_string(), &megabyte))
                .await
                .expect("inserted");
        }
        let query = ScanQuery {
            filter: "",
            start: 0,
            limit: 1000,
        };
        let page = table.scan(query).await.expect("a page");
        assert_eq!(page.records.len(), 3, "three 1 MB records fit in 4 MiB");
        let mut seen = page.records.len();
        let mut next = page.next;
        while let Some(start) = next {
            let page = table
                .scan(ScanQuery { start, ..query })
                .await
                .expect("a page");
            assert!(!page.records.is_empty() && page.records.len() <= 3);
            seen += page.records.len();
            next = page.next;
        }
        assert_eq!(seen, 10, "every record, page after page");
        // A record bigger than the budget still makes a page of its own.
        let small = MemoryTable::default().with_max_page_bytes(1024);
        small
            .insert(note("big", &megabyte))
            .await
            .expect("inserted");
        small.insert(note("next", "y")).await.expect("inserted");
        let page = small.scan(query).await.expect("a page");
        assert_eq!(page.records.len(), 1);
        assert!(page.next.is_some());
    }

    fn note(id: &str, text: &str) -> Note {
        Note {
            id: id.to_owned(),
            text: text.to_owned(),
        }
    }

    #[tokio::test]
    async fn records_are_kept_updated_and_deleted_by_id() {
        let table = MemoryTable::default();
        table.insert(note("a", "first")).await.expect("inserted");
        assert!(matches!(
            table.insert(note("a", "again")).await,
            Err(StoreError::AlreadyExists { .. })
        ));
        let changed = table
            .update("a", |n| n.text = "changed".to_owned())
            .await
            .expect("updated");
        assert_eq!(changed.text, "changed");
        assert_eq!(table.get("a").await.expect("found"), changed);
        table.delete("a").await.expect("deleted");
        assert!(matches!(
            table.get("a").await,
            Err(StoreError::NotFound { .. })
        ));
        assert!(matches!(
            table.delete("a").await,
            Err(StoreError::NotFound { .. })
        ));
    }

    /// A note whose text is unique, ignoring case.
    #[derive(Debug, Clone, PartialEq)]
    struct Titled(Note);

    impl Record for Titled {
        fn id(&self) -> &str {
            &self.0.id
        }

        fn matches(&self, filter: &str) -> bool {
            self.0.matches(filter)
        }

        fn unique(&self) -> Option<(&'static str, &str)> {
            Some(("text", &self.0.text))
        }
    }

    #[tokio::test]
    async fn a_unique_value_is_held_by_one_record_until_changed_or_deleted() {
        let table = MemoryTable::default();
        let titled = |id, text| Titled(note(id, text));
        table.insert(titled("a", "Title")).await.expect("inserted");
        let taken = table.insert(titled("b", "TITLE")).await;
        let expected = StoreError::AlreadyExists {
            field: "text",
            value: "TITLE".to_owned(),
        };
        assert_eq!(taken, Err(expected.clone()));
        table.insert(titled("b", "other")).await.expect("inserted");
        let refused = table.update("b", |t| t.0.text = "TITLE".to_owned()).await;
        assert_eq!(refused, Err(expected));
        assert_eq!(table.get("b").await.expect("kept").0.text, "other");
        // A record keeps its own value; a value given up or deleted can be taken again.
        table
            .update("a", |t| t.0.text = "title".to_owned())
            .await
            .expect("same record");
        table
            .update("a", |t| t.0.text = "renamed".to_owned())
            .await
            .expect("renamed");
        table
            .update("b", |t| t.0.text = "Title".to_owned())
            .await
            .expect("freed");
        table.delete("b").await.expect("deleted");
        table
            .insert(titled("c", "title"))
            .await
            .expect("freed again");
    }

    #[tokio::test]
    async fn a_full_table_refuses_more_records() {
        let table = MemoryTable::with_max_records(2);
        table.insert(note("a", "")).await.expect("room");
        table.insert(note("b", "")).await.expect("room");
        assert!(matches!(
            table.insert(note("c", "")).await,
            Err(StoreError::Full { .. })
        ));
    }

    #[tokio::test]
    async fn scans_page_by_position_and_skip_nothing_when_records_come_and_go() {
        let table = MemoryTable::default();
        for (id, text) in [
            ("a", "Apple"),
            ("b", "berry"),
            ("c", "apricot"),
            ("d", "APE"),
        ] {
            table.insert(note(id, text)).await.expect("inserted");
        }
        let first = table
            .scan(ScanQuery::from_request("ap", 2, "").expect("query"))
            .await
            .expect("scanned");
        let ids: Vec<&str> = first.records.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(ids, ["a", "c"]);
        let token = first.next_page_token();
        assert!(!token.is_empty(), "more to come");
        table.delete("a").await.expect("deleted");
        table.insert(note("e", "grape")).await.expect("inserted");
        let second = table
            .scan(ScanQuery::from_request("ap", 2, &token).expect("query"))
            .await
            .expect("scanned");
        let ids: Vec<&str> = second.records.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(ids, ["d", "e"]);
        assert_eq!(table.count("ap").await.expect("counted"), 3);
    }
}
