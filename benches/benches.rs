#![allow(missing_docs)] // criterion_group! generates undocumented functions
//! criterion benchmarks: input extraction (FASTA + bigWig → encoded windows), inference per
//! batch size, enhancer–gene links (E2G score vs the link model per gene), and tiling. Results and the machine they ran on: `benches/README.md`.
//!
//! ```text
//! make bench            # or: cargo bench --bench benches
//! ```

use criterion::{criterion_group, criterion_main};

mod encode;
mod infer;
mod links;
mod tiling;

criterion_group!(
    benches,
    encode::bench,
    infer::bench,
    links::bench,
    tiling::bench
);
criterion_main!(benches);
