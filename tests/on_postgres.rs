//! The daemon's black-box tests again, with its store on PostgreSQL: the
//! same files, compiled into this test binary, whose name tells
//! `common::store_address` to give each daemon a new database on the
//! tests' throwaway PostgreSQL server instead of `waflow.db`: the tests of
//! the delivery promise, the protections, contact lists and the console's
//! reads (the listener's and `http:` actions' tests do not touch the store
//! differently and run once). Without PostgreSQL installed they run on
//! SQLite again, with a note, unless `WAFLOW_POSTGRES_TESTS=require`.

// Each test file brings its own `mod common;`: loading it once per file is
// the point (each copy picks its store by this binary's name).
#![allow(clippy::duplicate_mod)]

#[path = "console.rs"]
mod console;
#[path = "crash.rs"]
mod crash;
#[path = "daemon.rs"]
mod daemon;
#[path = "lists.rs"]
mod lists;
#[path = "safety.rs"]
mod safety;
