//! A real PostgreSQL for tests: throwaway clusters, the run's URL, and a database per test.
//!
//! ```no_run
//! let url = test_infra::pg::fresh_database(&test_infra::pg::pg_url());
//! // connect to `url` with any client: postgres://postgres@127.0.0.1:PORT/test_...
//! ```

mod account;
mod bin;
mod cluster;
mod database;
mod error;
mod run;
mod scratch;
mod url;
mod watchdog;

pub use bin::PgBin;
pub use cluster::{Cluster, DATABASE, SUPERUSER};
#[cfg(feature = "async")]
pub use database::new_pg_database;
pub use database::{PG_URL_VAR, fresh_database, pg_url, try_fresh_database};
pub use error::PgError;
