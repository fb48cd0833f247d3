//! Enhancer–gene links: the cost of the supervised E2G score per gene (features + logistic
//! regression over every candidate within its 2-Mb reach) against the link model's gene graph
//! for the same gene (promoter + 60 candidates, sequence masked as for most demo elements).
//! The whole-pipeline rates (genes/s cold and warm) are `benches/links_e2e.sh`.

use criterion::{Criterion, Throughput};

use cistrack::model::e2g::E2gModel;
use cistrack::model::link::{GeneBatch, LinkPredictor, LinkSpec};
use cistrack::model::onnx::SessionOptions;
use cistrack::model::Device;
use cistrack::track::links_output::{ContactSource, GeneLinks, Link};

/// A gene with `n` candidates (seeded values in the ranges of the demo build).
fn gene(n: usize) -> GeneLinks {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % 10_000) as f32 / 10_000.0
    };
    let links = (0..n)
        .map(|j| {
            let distance = (j as u64 + 1) * 2_000_000 / n as u64;
            Link {
                element_start: 2_000_000 + distance,
                element_end: 2_000_500 + distance,
                distance,
                score: 0.0,
                attention: if j < 60 { next() / 30.0 } else { 0.0 },
                attended: j < 60,
                abc_score: 0.0,
                activity: 3.0 * next(),
                contact: ((5001.0 / (distance.max(5000) as f64 + 1.0)).powf(1.024)) as f32,
                contact_source: ContactSource::Powerlaw,
                tss_between: (j / 10) as u32,
            }
        })
        .collect();
    GeneLinks {
        id: "ENSG00000000001".into(),
        name: "GENE".into(),
        contig: "chr1".into(),
        tss: 2_000_000,
        strand: '+',
        expression: 1.0,
        promoter_activity: 2.0,
        candidates: n,
        links,
    }
}

pub fn bench(c: &mut Criterion) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let e2g = E2gModel::load(&root.join("models/link-e2g/0.1.0")).unwrap();
    let mut group = c.benchmark_group("links");
    group.sample_size(20);
    // 334 candidates: the mean per gene of the CRISPRi genes' feature table (2-Mb reach)
    let one = gene(334);
    group.throughput(Throughput::Elements(1));
    group.bench_function("e2g_score_gene_334_candidates", |b| {
        b.iter(|| {
            let mut g = one.clone();
            e2g.score(&mut g);
            g
        })
    });
    let spec = LinkSpec::load(&root.join("models/link-epinformer/0.1.0")).unwrap();
    let mut predictor = LinkPredictor::new(
        &spec,
        SessionOptions {
            device: Device::Cpu,
            intra_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        },
    )
    .unwrap();
    let mut batch = GeneBatch::zeros(1, 60, predictor.embedding_dim());
    for (i, v) in batch.candidate_features.iter_mut().enumerate() {
        *v = (i % 7) as f32 / 7.0;
    }
    batch.candidate_mask.fill(1.0);
    group.bench_function("link_model_gene_60_candidates", |b| {
        b.iter(|| predictor.predict_genes(&batch).unwrap())
    });
    group.finish();
}
