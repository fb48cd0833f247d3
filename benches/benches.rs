#![allow(missing_docs)] // criterion_group! generates undocumented functions
//! criterion benchmarks: input extraction (FASTA + bigWig → encoded windows), inference per
//! batch size, and tiling. Results and the machine they ran on: `benches/README.md`.
//!
//! ```text
//! make bench            # or: cargo bench --bench benches
//! ```

use criterion::{criterion_group, criterion_main};

mod encode;
mod infer;
mod tiling;

criterion_group!(benches, encode::bench, infer::bench, tiling::bench);
criterion_main!(benches);
