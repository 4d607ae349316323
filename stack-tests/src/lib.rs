//! Whole-stack tests of the workspace. The code is in `tests/e2e/`, one test
//! binary (`e2e`); this library is empty.
//!
//! ```text
//! cargo test -p stack-tests --test e2e
//! ```
