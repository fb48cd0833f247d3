//! The scoring core that every command uses: `score`, `annotate`, `serve`, `precompute`,
//! `export`.
//!
//! ```text
//! region or record ─► grid windows ─► cache (memory LRU ─► SQLite) ─hit─► result
//!                                        │ miss
//!                                        ▼
//!               engine: tile jobs (shared by concurrent requesters) ─► one queue
//!               ─► model workers (read + encode + ONNX Runtime) ─► cache ─► result
//! ```
//!
//! | file | what it decides |
//! |---|---|
//! | [`grid`] | the one window grid: window `i` of a contig has the core `[i·stride, (i+1)·stride)` |
//! | [`inputs`] | reading a span of the build and encoding a window; windows cut by the caller |
//! | [`batcher`] | the queue in front of the workers, the batch-size default, the no-lone-row rule |
//! | [`workers`] | model worker threads (one ONNX Runtime session each) |
//! | [`pool`] | sessions shared by the engines of one model (the daemon's cell groups) |
//! | [`engine`] | views: cache first, then deduplicated tile jobs on the queue; single windows |
//! | `jobs` | a tile job: the slots of one tile being computed, shared by its requesters |
//! | [`cache`] | tiles and window scores in memory and on disk, keys and checksums |
//! | [`regions`] | blocking driver for the CLI: score whole regions through an engine |

pub mod background;
pub mod batcher;
pub mod cache;
pub mod engine;
pub mod grid;
pub mod inputs;
mod jobs;
pub mod pool;
pub mod regions;
pub mod workers;

pub use engine::{Engine, EngineOptions};
pub use grid::{Grid, Window};
