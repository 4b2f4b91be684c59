//! Pages of searches kept while the tracking data under them is unchanged.
//!
//! DuckDB plans and runs a search page in two statements of 5-10 ms each, most of it fixed
//! cost whatever the data size, while dashboards and the MLflow UI repeat the same searches
//! over experiments that are not being written. A page is kept with the version of the
//! experiments it searched ([`crate::projection::Projection::tracking_version`]), which moves
//! with every applied batch that changed one of them, and served only while that version
//! holds: exactly what the query would answer again.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use super::Page;
use crate::log::Position;

/// Items kept across all cached pages at most (a run is about 1 KB in memory).
const MAX_ITEMS: usize = 5_000;

pub struct PageCache<T> {
    inner: Mutex<Entries<T>>,
}

struct Entries<T> {
    pages: HashMap<String, (Position, Arc<Page<T>>)>,
    items: usize,
}

impl<T> Default for PageCache<T> {
    fn default() -> Self {
        PageCache {
            inner: Mutex::new(Entries {
                pages: HashMap::new(),
                items: 0,
            }),
        }
    }
}

impl<T> PageCache<T> {
    /// The page cached for `key`, if it was read at `version`.
    pub fn get(&self, version: Position, key: &str) -> Option<Arc<Page<T>>> {
        match self.inner.lock().pages.get(key) {
            Some((v, page)) if *v == version => Some(page.clone()),
            _ => None,
        }
    }

    /// Keeps `page`, read from a snapshot taken after `version` was current, unless a page
    /// of a newer version is kept for `key`. When the cache is full it starts over.
    pub fn put(&self, version: Position, key: String, page: Arc<Page<T>>) {
        let mut e = self.inner.lock();
        let n = page.items.len();
        if n > MAX_ITEMS || e.pages.get(&key).is_some_and(|(v, _)| *v > version) {
            return;
        }
        if let Some((_, old)) = e.pages.remove(&key) {
            e.items -= old.items.len();
        }
        if e.items + n > MAX_ITEMS {
            e.pages.clear();
            e.items = 0;
        }
        e.items += n;
        e.pages.insert(key, (version, page));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(n: usize) -> Arc<Page<u32>> {
        Arc::new(Page {
            items: (0..n as u32).collect(),
            next_page_token: None,
        })
    }

    #[test]
    fn a_page_is_served_only_at_the_version_it_was_read_at() {
        let c = PageCache::default();
        c.put(5, "q".into(), page(3));
        assert_eq!(c.get(5, "q").unwrap().items, vec![0, 1, 2]);
        assert!(c.get(5, "other").is_none());
        assert!(c.get(6, "q").is_none(), "a newer version must miss");
        assert!(
            c.get(4, "q").is_none(),
            "an older reader must not see it either"
        );
    }

    #[test]
    fn a_page_of_an_older_version_does_not_replace_a_newer_one() {
        let c = PageCache::default();
        c.put(7, "a".into(), page(2));
        c.put(5, "a".into(), page(1));
        assert_eq!(c.get(7, "a").unwrap().items.len(), 2);
        c.put(9, "a".into(), page(3));
        assert!(c.get(7, "a").is_none());
        assert_eq!(c.get(9, "a").unwrap().items.len(), 3);
        c.put(1, "b".into(), page(1));
        assert!(
            c.get(1, "b").is_some(),
            "pages of other keys keep their own version"
        );
    }

    #[test]
    fn memory_is_bounded() {
        let c = PageCache::default();
        c.put(1, "huge".into(), page(MAX_ITEMS + 1));
        assert!(c.get(1, "huge").is_none());
        c.put(1, "a".into(), page(MAX_ITEMS - 10));
        c.put(1, "b".into(), page(20));
        assert!(c.get(1, "b").is_some());
        assert!(c.get(1, "a").is_none(), "the cache grew past its bound");
        c.put(1, "b".into(), page(20));
        assert_eq!(c.inner.lock().items, 20, "replacing a page counts it once");
    }
}
