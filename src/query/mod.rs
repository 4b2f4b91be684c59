//! Reads from the DuckDB projection only. Every read first waits (bounded) until the projection
//! has applied everything committed before the read began, so a client always sees its own
//! writes. Pages of run searches are kept between identical searches while nothing they
//! searched has changed (`cache`).

pub mod analytics;
pub mod artifacts;
mod cache;
pub mod devices;
pub mod entities;
pub mod experiments;
pub mod jobs;
pub mod metrics;
pub mod runs;
pub mod search;

use std::sync::Arc;
use std::time::Duration;

use duckdb::Connection;
use parking_lot::Mutex;

use crate::log::SharedLog;
use crate::projection::{Projection, ProjectionError};

pub use entities::*;

/// How long a read waits for the projection to catch up before failing.
const READ_YOUR_WRITES_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("DuckDB error: {0}")]
    Db(#[from] duckdb::Error),
    #[error(transparent)]
    Projection(#[from] ProjectionError),
    #[error(transparent)]
    Search(#[from] search::SearchError),
    #[error("{0}")]
    NotFound(String),
    #[error("query task failed: {0}")]
    Task(String),
}

pub struct Queries {
    log: SharedLog,
    projection: Arc<Projection>,
    pool: Mutex<Vec<Connection>>,
    /// At most this many DuckDB queries run at once (see `query_slots`).
    slots: tokio::sync::Semaphore,
    run_pages: cache::PageCache<Run>,
}

impl Queries {
    pub fn new(log: SharedLog, projection: Arc<Projection>) -> Arc<Queries> {
        Arc::new(Queries {
            log,
            projection,
            pool: Mutex::new(Vec::new()),
            slots: tokio::sync::Semaphore::new(query_slots()),
            run_pages: cache::PageCache::default(),
        })
    }

    /// [`read`](Self::read) on behalf of `tenant`: `f` gets the tenant to bind, so every
    /// tenant-scoped query names it without each caller cloning it.
    pub async fn read_as<T, F>(&self, tenant: &str, f: F) -> Result<T, QueryError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &str) -> Result<T, QueryError> + Send + 'static,
    {
        let tenant = tenant.to_string();
        self.read(move |c| f(c, &tenant)).await
    }

    /// Run `f` on a pooled connection off the async runtime, after the projection caught up
    /// with the log head as of now.
    pub async fn read<T, F>(&self, f: F) -> Result<T, QueryError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, QueryError> + Send + 'static,
    {
        self.catch_up().await?;
        self.on_connection(f).await
    }

    /// A page of a run search, from the page cache when the same search was answered since
    /// the last change to the experiments it searches (see `cache`).
    pub async fn search_runs(&self, s: runs::RunSearch) -> Result<Arc<Page<Run>>, QueryError> {
        let q = s.compile()?;
        // The SQL and its values determine the answer (tenancy is in the experiment ids);
        // `{:?}` prints floats exactly.
        let key = format!("{}\u{0}{:?}", q.sql, q.params);
        self.catch_up().await?;
        let version = self.projection.tracking_version(&s.experiment_ids);
        if let Some(page) = self.run_pages.get(version, &key) {
            return Ok(page);
        }
        let page = Arc::new(self.on_connection(move |c| runs::search(c, &s, &q)).await?);
        self.run_pages.put(version, key, page.clone());
        Ok(page)
    }

    /// Wait until the projection has applied everything committed before now.
    async fn catch_up(&self) -> Result<(), QueryError> {
        Ok(self
            .projection
            .wait_for(self.log.head(), READ_YOUR_WRITES_TIMEOUT)
            .await?)
    }

    async fn on_connection<T, F>(&self, f: F) -> Result<T, QueryError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, QueryError> + Send + 'static,
    {
        let _slot = (self.slots.acquire().await).map_err(|e| QueryError::Task(e.to_string()))?;
        let conn = match self.pool.lock().pop() {
            Some(c) => c,
            None => self.projection.connection()?,
        };
        let (conn, result) = tokio::task::spawn_blocking(move || {
            let r = f(&conn);
            (conn, r)
        })
        .await
        .map_err(|e| QueryError::Task(e.to_string()))?;
        self.pool.lock().push(conn);
        result
    }
}

/// DuckDB already spreads one query over every core, so more queries at once than cores add
/// no throughput, only memory: each holds its own hash tables (with 8 concurrent searches,
/// tens of MB) and its own connection. Queries beyond this wait for a slot.
fn query_slots() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().max(2))
}

impl duckdb::ToSql for search::SqlValue {
    fn to_sql(&self) -> duckdb::Result<duckdb::types::ToSqlOutput<'_>> {
        use duckdb::types::ToSqlOutput;
        Ok(match self {
            search::SqlValue::Text(s) => ToSqlOutput::from(s.as_str()),
            search::SqlValue::Int(i) => ToSqlOutput::from(*i),
            search::SqlValue::Float(f) => ToSqlOutput::from(*f),
        })
    }
}
