//! Tiling a 1-Mb region into windows at the default stride.

use criterion::{Criterion, Throughput};

use cistrack::genome::Region;
use cistrack::pipeline::Grid;

pub fn bench(c: &mut Criterion) {
    let grid = Grid::new(2000, 200).unwrap();
    let region = Region::new("chr1", 10_000_000, 11_000_000).unwrap();
    let mut group = c.benchmark_group("tiling");
    group.throughput(Throughput::Elements(grid.count(&region) as u64));
    group.bench_function("1Mb_stride200", |b| {
        b.iter(|| grid.windows(&region).map(|w| w.core_end0).sum::<u64>())
    });
    group.finish();
}
