//! The threads and queues of an annotation run; see the module overview in [`super`].

use std::collections::{HashMap, VecDeque};
use std::io::{BufWriter, Write};
use std::ops::Range;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, never, select, Receiver, Sender};

use crate::error::chain;
use crate::genome::build::InputReader;
use crate::genome::Build;
use crate::io::text::LineReader;
use crate::model::ModelSpec;
use crate::pipeline::cache::{window_namespace, Cache};
use crate::pipeline::engine::{Engine, EngineOptions};
use crate::pipeline::grid::DEFAULT_STRIDE;

use super::genes::NearestGenes;
use super::linker::Linker;
use super::progress::Progress;
use super::reader::{read_bed, read_bed_header, read_vcf, read_vcf_header, Item, Lines, Source};
use super::scorer::{Outcome, Prediction, Results, WindowCache, WindowScorer};
use super::{
    bed, vcf, write_all, write_bytes, AnnotateOptions, Error, Format, Input, Summary, ITEM_QUEUE,
    MAX_IN_FLIGHT, PLANNED_QUEUE,
};

/// In-memory tier of annotation's cache, MiB (daemon tiles read while streaming).
const MEMORY_MIB: usize = 64;

/// From the encoder to the collector, in input order.
struct Planned {
    /// Ids of the record's windows.
    windows: Range<u64>,
    kind: Kind,
}

enum Kind {
    Text(String),
    /// A line that could not be parsed: its bytes, line number and fault.
    Unparsed(Vec<u8>, usize, String),
    Vcf(vcf::Pending),
    Bed(bed::Pending),
    Fatal(Error),
}

/// Runs the pipeline (see [`super::annotate`]).
pub(super) fn run(
    build: &Build,
    spec: &ModelSpec,
    input: Input,
    output: Box<dyn Write + Send>,
    options: &AnnotateOptions,
) -> Result<Summary, Error> {
    let started = Instant::now();
    if options.batch_size == Some(0) {
        return Err(crate::track::Error::InvalidBatchSize.into());
    }
    let threshold = options.threshold.unwrap_or(spec.threshold);
    if !(0.0..=1.0).contains(&threshold) {
        return Err(crate::track::Error::InvalidThreshold(threshold).into());
    }
    let source = Source {
        name: input.name.clone(),
        compressed: input.compressed,
        format: input.format,
        strict: options.strict,
    };
    let (size, bytes_read) = (input.size, input.bytes_read.clone());
    let mut lines: Lines =
        LineReader::new(input.into_reader()).with_max_line(options.max_line_bytes);

    let cache = open_cache(build, options);
    let variant_background = match source.format {
        Format::Vcf => super::variant_background::load(&cache, build, spec),
        Format::Bed => None,
    };
    // link consequences: VCF alleles, with a link model, unless turned off
    let link_effects = (source.format == Format::Vcf && options.link_effects)
        .then(|| build.config().models.get(crate::track::links::LINK_ROLE))
        .flatten();
    // The header first: a bad input fails before the model loads.
    let (header, first, vcf_columns) = match source.format {
        Format::Vcf => {
            let header = read_vcf_header(&mut lines, &source)?;
            if [vcf::INFO_ID, vcf::SKIP_ID]
                .iter()
                .any(|id| header.has_info(id))
            {
                tracing::warn!(
                    "{} is already annotated by cistrack (its header declares INFO/{}): the old header lines and values are replaced",
                    source.name,
                    vcf::INFO_ID
                );
            }
            let columns = header.columns;
            (
                vcf::header_text(
                    &header,
                    build,
                    spec,
                    options.motifs.as_deref(),
                    (
                        variant_background.as_deref(),
                        link_effects.map(String::as_str),
                    ),
                    &options.command,
                ),
                None,
                columns,
            )
        }
        Format::Bed => {
            let (leading, first) = read_bed_header(&mut lines, &source)?;
            (
                bed::header_text(&leading, build, spec, threshold, &options.command),
                first,
                0,
            )
        }
    };

    let genes = NearestGenes::load(build)?;
    let shared_build = Arc::new(build.clone()); // for the engine and the linker
    let engine = Engine::start(
        shared_build.clone(),
        Arc::new(spec.clone()),
        cache.clone(),
        &EngineOptions::command(
            build,
            DEFAULT_STRIDE,
            options.device,
            options.workers,
            options.threads,
            options.batch_size,
        ),
    )?;
    let (device, batch_size) = (engine.device(), engine.max_batch());
    let masked = build.masked_modalities();
    tracing::info!(
        input = %source.name, format = %source.format, compressed = source.compressed,
        build = build.name(), model = %spec.id(), %device, batch_size, threads = options.threads,
        genes = genes.is_some(),
        masked = %if masked.is_empty() { "none".to_string() } else { masked.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(",") },
        "annotating"
    );

    let mut out = BufWriter::with_capacity(1 << 16, output);
    write_all(&mut out, &options.target, &header)?;
    let mut links_bed = match &options.links_bed {
        Some(_) if source.format == Format::Bed => {
            return Err(Error::LinksBedNeedsVcf {
                input: source.name.clone(),
            })
        }
        None => None,
        Some(path) => {
            let target = path.display().to_string();
            let file = std::fs::File::create(path).map_err(|source| Error::Write {
                target: target.clone(),
                source,
            })?;
            let mut w = BufWriter::new(file);
            write_all(&mut w, &target, vcf::links::BED_HEADER)?;
            Some((w, target))
        }
    };

    let (item_tx, item_rx) = bounded::<Item>(ITEM_QUEUE);
    {
        // Detached: a reader blocked on a slow stdin must not keep a failed run alive.
        let source = source.clone();
        std::thread::Builder::new()
            .name("annotate-reader".into())
            .spawn(move || match source.format {
                Format::Vcf => read_vcf(lines, vcf_columns, &source, &item_tx),
                Format::Bed => read_bed(lines, first, &source, &item_tx),
            })
            .expect("cannot spawn the input reader thread; this is a bug");
    }

    let (planned_tx, planned_rx) = bounded::<Planned>(PLANNED_QUEUE);
    let (stop_tx, stop_rx) = bounded::<()>(0);
    let summary = Summary::new(source.format, device, batch_size);
    let progress = Progress::new(options.progress, size, bytes_read);

    let window_cache = cache.has_lower_tiers().then(|| {
        Arc::new(WindowCache::new(
            cache.clone(),
            window_namespace(build.name(), &spec.id(), &spec.sha256),
            engine.variant(),
            engine.grid(),
            build.modality_mask(),
        ))
    });
    let linker = Linker::open(
        &shared_build,
        options.device,
        options.threads,
        cache.clone(),
        link_effects.is_some(),
    )?;
    let (mut scorer, results) = WindowScorer::new(&engine);
    if let Some(window_cache) = &window_cache {
        scorer = scorer.with_cache(window_cache.clone());
    }
    let mut planner = match source.format {
        Format::Vcf => Planner::Vcf(vcf::Planner::new(
            build,
            spec,
            genes.as_ref(),
            linker.as_ref(),
            options.motifs.as_deref(),
            variant_background,
        )?),
        Format::Bed => Planner::Bed(bed::Planner::new(
            build,
            spec,
            genes.as_ref(),
            linker.as_ref(),
            threshold,
        )?),
    };
    let mut signals = build.reader()?;
    let target = options.target.clone();
    let collector_cache = window_cache.clone();
    let collector_linker = linker.as_ref();
    let (result, mut summary) = std::thread::scope(|scope| {
        let collector = std::thread::Builder::new()
            .name("annotate-writer".into())
            .spawn_scoped(scope, move || {
                let mut summary = summary;
                let result = collect(
                    &planned_rx,
                    &results,
                    collector_cache.as_deref(),
                    collector_linker,
                    links_bed.as_mut(),
                    &mut out,
                    &target,
                    &mut summary,
                    &progress,
                );
                progress.finish();
                drop(stop_tx); // the encoder stops reading
                (result, summary)
            })
            .expect("cannot spawn the output thread; this is a bug");
        encode(
            &item_rx,
            &planned_tx,
            &mut scorer,
            &mut planner,
            &mut signals,
            &stop_rx,
        );
        drop(planned_tx);
        drop(scorer);
        collector
            .join()
            .expect("the output thread panicked; this is a bug")
    });
    if let Some(window_cache) = &window_cache {
        window_cache.flush();
        summary.windows_cached = window_cache.tile_hits.load(Ordering::Relaxed)
            + window_cache.window_hits.load(Ordering::Relaxed);
    }
    let stats = engine.stats();
    let (batches, rows) = (
        stats.batches.load(Ordering::Relaxed),
        stats.batch_rows.load(Ordering::Relaxed),
    );
    tracing::debug!(
        batches,
        windows = rows,
        fill = rows as f64 / (batches.max(1) * batch_size as u64) as f64,
        "model calls"
    );
    drop(engine);
    result?;
    summary.elapsed = started.elapsed();
    Ok(summary)
}

enum Planner<'a> {
    Vcf(vcf::Planner<'a>),
    Bed(bed::Planner<'a>),
}

/// The encoder (runs on the calling thread): plans each item, in order, and passes it on.
/// Returns when the input ends, after a fatal item, or when the collector has gone (`stop`
/// disconnects).
fn encode(
    items: &Receiver<Item>,
    planned: &Sender<Planned>,
    scorer: &mut WindowScorer<'_>,
    planner: &mut Planner<'_>,
    signals: &mut InputReader,
    stop: &Receiver<()>,
) {
    loop {
        let item = select! {
            recv(items) -> item => match item {
                Ok(item) => item,
                Err(_) => return,
            },
            recv(stop) -> _ => return,
        };
        let first = scorer.next_id();
        let kind = match (item, &mut *planner) {
            (Item::Text(text), _) => Kind::Text(text),
            (Item::Unparsed { raw, line, error }, _) => Kind::Unparsed(raw, line, error),
            (Item::Vcf(record, ending), Planner::Vcf(p)) => p
                .plan(record, ending, signals, scorer)
                .map_or_else(Kind::Fatal, Kind::Vcf),
            (Item::Bed(record, ending), Planner::Bed(p)) => p
                .plan(record, ending, signals, scorer)
                .map_or_else(Kind::Fatal, Kind::Bed),
            (Item::Fatal(e), _) => Kind::Fatal(e),
            _ => unreachable!("the reader and the planner agree on the format"),
        };
        let fatal = matches!(kind, Kind::Fatal(_));
        let message = Planned {
            windows: first..scorer.next_id(),
            kind,
        };
        if planned.send(message).is_err() || fatal {
            return;
        }
    }
}

/// A record in the reorder buffer.
struct Entry {
    windows: Range<u64>,
    kind: Kind,
    results: Vec<Option<Prediction>>,
    remaining: usize,
}

// An event lives for one turn of the collector loop, on its stack: no point boxing it.
#[allow(clippy::large_enum_variant)]
enum Event {
    Planned(Option<Planned>),
    Result(Option<Outcome>),
    Idle,
}

/// Opens the build's score cache for annotation: memory over the on-disk store, or memory only
/// (cache off, or a store that cannot be opened: annotation then goes on without it, after a
/// warning).
fn open_cache(build: &Build, options: &AnnotateOptions) -> Arc<Cache> {
    let settings = options.cache.as_ref();
    let cache = Cache::open(settings, build.name(), MEMORY_MIB).unwrap_or_else(|e| {
        tracing::warn!("{}; annotating without the score cache", chain(&e));
        Cache::open(None, build.name(), MEMORY_MIB).expect("a memory cache always opens")
    });
    if let Some(s) = settings {
        tracing::debug!(cache = %s.path(build.name()).display(), "using the score cache");
    }
    Arc::new(cache)
}

/// The collector: reorders, formats and writes. Returns when every record is written, or with
/// the first fatal error (after writing every record before it).
#[allow(clippy::too_many_arguments)]
fn collect(
    planned: &Receiver<Planned>,
    results: &Results,
    cache: Option<&WindowCache>,
    linker: Option<&Linker>,
    mut links_bed: Option<&mut (BufWriter<std::fs::File>, String)>,
    out: &mut dyn Write,
    target: &str,
    summary: &mut Summary,
    progress: &Progress,
) -> Result<(), Error> {
    let mut bed_text = String::new();
    let mut queue: VecDeque<Entry> = VecDeque::new();
    let mut early: HashMap<u64, Prediction> = HashMap::new();
    let mut planned_open = true;
    let no_planned = never::<Planned>();
    let results_in = results;
    let results = results.receiver();
    let mut text = String::new();
    let flush = |out: &mut dyn Write| {
        out.flush().map_err(|source| Error::Write {
            target: target.to_string(),
            source,
        })
    };
    loop {
        while queue.front().is_some_and(|e| e.remaining == 0) {
            let entry = queue.pop_front().expect("front exists");
            text.clear();
            summary.windows += entry.windows.end - entry.windows.start;
            match entry.kind {
                Kind::Text(line) => text.push_str(&line),
                Kind::Unparsed(raw, line, error) => {
                    summary.unparsed += 1;
                    summary.first_unparsed.get_or_insert((line, error));
                    write_bytes(out, target, &raw)?;
                }
                Kind::Vcf(mut p) => {
                    p.link_mut().resolve(linker)?;
                    p.link_effects_mut().resolve(linker)?;
                    if let Some((bed, bed_target)) = links_bed.as_deref_mut() {
                        bed_text.clear();
                        p.links_bed(&mut bed_text);
                        write_all(bed, bed_target, &bed_text)?;
                    }
                    p.write(entry.windows.start, &entry.results, &mut text, summary)
                }
                Kind::Bed(mut p) => {
                    p.link_mut().resolve(linker)?;
                    p.write(entry.windows.start, &entry.results, &mut text, summary)
                }
                Kind::Fatal(error) => {
                    let _ = flush(out);
                    return Err(error);
                }
            }
            write_all(out, target, &text)?;
            progress.update(summary, false);
        }
        if !planned_open && queue.is_empty() {
            break;
        }
        let accepting = planned_open && queue.len() < MAX_IN_FLIGHT;
        let planned_rx = if accepting { planned } else { &no_planned };
        let mut event = select! {
            recv(results) -> r => Event::Result(r.ok()),
            recv(planned_rx) -> m => Event::Planned(m.ok()),
            default => Event::Idle,
        };
        if let Event::Idle = event {
            flush(out)?;
            progress.update(summary, true);
            event = select! {
                recv(results) -> r => Event::Result(r.ok()),
                recv(planned_rx) -> m => Event::Planned(m.ok()),
                default(Duration::from_millis(200)) => Event::Idle,
            };
        }
        match event {
            Event::Idle => {}
            Event::Planned(None) => planned_open = false,
            Event::Result(None) => unreachable!("the results channel outlives the collector"),
            Event::Planned(Some(p)) => {
                let n = (p.windows.end - p.windows.start) as usize;
                let mut entry = Entry {
                    results: vec![None; n],
                    remaining: n,
                    windows: p.windows,
                    kind: p.kind,
                };
                if matches!(entry.kind, Kind::Fatal(_)) {
                    entry.remaining = 0;
                } else if !early.is_empty() {
                    for id in entry.windows.clone() {
                        if let Some(prediction) = early.remove(&id) {
                            entry.results[(id - entry.windows.start) as usize] = Some(prediction);
                            entry.remaining -= 1;
                        }
                    }
                }
                queue.push_back(entry);
            }
            Event::Result(Some((id, outcome))) => {
                results_in.taken();
                let score = outcome.map_err(|message| {
                    crate::Error::from(crate::pipeline::engine::Error::Failed(message))
                })?;
                if let Some(cache) = cache {
                    cache.store(id, &score);
                }
                let prediction = Prediction {
                    logit: score.logit,
                    probability: score.probability,
                };
                deliver(&mut queue, &mut early, id, prediction);
            }
        }
    }
    if let Some((bed, bed_target)) = links_bed {
        bed.flush().map_err(|source| Error::Write {
            target: bed_target.clone(),
            source,
        })?;
    }
    flush(out)
}

/// Puts window `id`'s result in its record, or aside until the record arrives.
fn deliver(
    queue: &mut VecDeque<Entry>,
    early: &mut HashMap<u64, Prediction>,
    id: u64,
    prediction: Prediction,
) {
    let at = queue.partition_point(|e| e.windows.end <= id);
    match queue.get_mut(at) {
        Some(entry) if entry.windows.contains(&id) => {
            let slot = &mut entry.results[(id - entry.windows.start) as usize];
            if slot.replace(prediction).is_none() && entry.remaining > 0 {
                entry.remaining -= 1;
            }
        }
        _ => {
            early.insert(id, prediction);
        }
    }
}
