//! The threads and queues of an annotation run; see the module overview in [`super`].

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{BufRead, BufWriter, Write};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{
    bounded, never, select, unbounded, Receiver, RecvTimeoutError, Sender, TrySendError,
};

use crate::genome::build::InputReader;
use crate::genome::Build;
use crate::io::text::{Ending, LineError, LineReader};
use crate::io::{bed as bed_io, vcf as vcf_io};
use crate::model::onnx::{ActiveDevice, OrtPredictor, SessionOptions};
use crate::model::worker::{Done, WorkerPool};
use crate::model::{Batch, ModelSpec};
use crate::track::cache::{window_namespace, DiskStore, Score, Stats};
use crate::track::engine::variant_for;
use crate::track::score::{DEFAULT_BATCH_SIZE_CPU, DEFAULT_BATCH_SIZE_CUDA, DEFAULT_STRIDE};

use super::genes::NearestGenes;
use super::linker::Linker;
use super::scorer::{Prediction, WindowCache, WindowScorer, PADDING};
use super::{
    bed, vcf, write_all, AnnotateOptions, Error, Format, Input, Summary, BATCHES, ITEM_QUEUE,
    MAX_IN_FLIGHT, PLANNED_QUEUE,
};

/// A partly filled batch is submitted once its oldest window has waited this long, so that a
/// slow input or a long run of pass-through records never holds scores back.
const FLUSH_AFTER: Duration = Duration::from_millis(20);

type Lines = LineReader<Box<dyn BufRead + Send>>;

/// From the reader thread to the encoder, in input order.
enum Item {
    /// A line written as it is (a BED comment or track line), terminator included.
    Text(String),
    /// A VCF record.
    Vcf(vcf_io::Record, Ending),
    /// A BED record.
    Bed(bed_io::Record, Ending),
    /// The input cannot go on: everything before is written, then this error ends the run.
    Fatal(Error),
}

/// From the encoder to the collector, in input order.
struct Planned {
    /// Ids of the record's windows.
    windows: Range<u64>,
    kind: Kind,
}

enum Kind {
    Text(String),
    Vcf(vcf::Pending),
    Bed(bed::Pending),
    Fatal(Error),
}

/// Names an input for error messages.
#[derive(Debug, Clone)]
struct Source {
    name: String,
    compressed: bool,
    format: Format,
}

impl Source {
    fn line_error(&self, error: LineError) -> Error {
        match error {
            LineError::NotUtf8 { line } => match self.format {
                Format::Vcf => Error::Vcf {
                    input: self.name.clone(),
                    source: vcf_io::ParseError {
                        line,
                        kind: vcf_io::ParseErrorKind::NotUtf8,
                    },
                },
                Format::Bed => Error::Bed {
                    input: self.name.clone(),
                    source: bed_io::ParseError {
                        line,
                        kind: bed_io::ParseErrorKind::NotUtf8,
                    },
                },
            },
            LineError::Io { line, source } if self.compressed => Error::Truncated {
                input: self.name.clone(),
                line,
                source,
            },
            LineError::Io { line, source } => Error::Read {
                input: self.name.clone(),
                line,
                source,
            },
        }
    }

    fn vcf_error(&self, source: vcf_io::ParseError) -> Error {
        Error::Vcf {
            input: self.name.clone(),
            source,
        }
    }

    fn bed_error(&self, source: bed_io::ParseError) -> Error {
        Error::Bed {
            input: self.name.clone(),
            source,
        }
    }
}

/// Warns once when records are not sorted (which annotation does not need).
#[derive(Default)]
struct OrderCheck {
    current: Option<(String, u64)>,
    finished: HashSet<String>,
    warned: bool,
}

impl OrderCheck {
    fn check(&mut self, input: &str, contig: &str, position: u64, line: usize) {
        if self.warned {
            return;
        }
        let unsorted = match &mut self.current {
            Some((current, last)) if current == contig => {
                let before = position < *last;
                *last = position;
                before
            }
            current => {
                if let Some((previous, _)) = current.take() {
                    self.finished.insert(previous);
                }
                *current = Some((contig.to_string(), position));
                self.finished.contains(contig)
            }
        };
        if unsorted {
            self.warned = true;
            tracing::warn!("{input} is not sorted by position (line {line}, {contig}:{position}); that is fine: annotation keeps input order and needs no sorting, but reads the reference less efficiently");
        }
    }
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
    };
    let (size, bytes_read) = (input.size, input.bytes_read.clone());
    let mut lines: Lines = LineReader::new(input.into_reader());

    // The header first: a bad input fails before the model loads.
    let (header, first, vcf_columns) = match source.format {
        Format::Vcf => {
            let header = read_vcf_header(&mut lines, &source)?;
            for id in [vcf::INFO_ID, vcf::SKIP_ID] {
                if header.has_info(id) {
                    return Err(Error::AlreadyAnnotated {
                        input: source.name.clone(),
                        id,
                    });
                }
            }
            let columns = header.columns;
            (
                vcf::header_text(&header, build, spec, &options.command),
                None,
                columns,
            )
        }
        Format::Bed => {
            let (leading, first) = read_bed_header(&mut lines, &source);
            (
                bed::header_text(&leading, build, spec, threshold, &options.command),
                first,
                0,
            )
        }
    };

    let genes = NearestGenes::load(build)?;
    let predictor = OrtPredictor::new(
        spec,
        SessionOptions {
            device: options.device,
            intra_threads: options.threads,
        },
    )?;
    let device = predictor.device();
    let batch_size = options.batch_size.unwrap_or(match device {
        ActiveDevice::Cpu => DEFAULT_BATCH_SIZE_CPU,
        ActiveDevice::Cuda => DEFAULT_BATCH_SIZE_CUDA,
    });
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

    let pool = WorkerPool::new(vec![predictor], 1);
    let (free_tx, free_rx) = bounded::<Batch>(BATCHES);
    for _ in 0..BATCHES {
        free_tx
            .send(Batch::for_spec(spec, batch_size.max(2)))
            .expect("fresh channel; this is a bug");
    }
    let (done_tx, done_rx) = unbounded::<Done>();
    let (hits_tx, hits_rx) = unbounded::<(u64, Score)>();
    let (planned_tx, planned_rx) = bounded::<Planned>(PLANNED_QUEUE);
    let stop = AtomicBool::new(false);
    let summary = Summary::new(source.format, device, batch_size);
    let progress = Progress::new(options.progress, size, bytes_read);

    let cache = open_cache(build, spec, options);
    let linker = Linker::open(
        build,
        options.device,
        options.threads,
        cache.as_ref().map(|c| (c.store_shared(), c.stats())),
    )?;
    let mut scorer = WindowScorer::new(&pool, free_rx, done_tx, batch_size, build.modality_mask());
    if let Some(cache) = &cache {
        scorer = scorer.with_cache(cache.clone(), hits_tx);
    } else {
        drop(hits_tx);
    }
    let mut planner = match source.format {
        Format::Vcf => Planner::Vcf(vcf::Planner::new(
            build,
            spec,
            genes.as_ref(),
            linker.as_ref(),
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
    let collector_cache = cache.clone();
    let (result, mut summary) = std::thread::scope(|scope| {
        let stop = &stop;
        let collector = std::thread::Builder::new()
            .name("annotate-writer".into())
            .spawn_scoped(scope, move || {
                let mut summary = summary;
                let result = collect(
                    &planned_rx,
                    &done_rx,
                    &hits_rx,
                    collector_cache.as_deref(),
                    &free_tx,
                    &mut out,
                    &target,
                    &mut summary,
                    &progress,
                );
                progress.finish();
                stop.store(true, Ordering::SeqCst);
                (result, summary)
            })
            .expect("cannot spawn the output thread; this is a bug");
        encode(
            &item_rx,
            &planned_tx,
            &mut scorer,
            &mut planner,
            &mut signals,
            stop,
        );
        drop(planned_tx);
        drop(scorer);
        collector
            .join()
            .expect("the output thread panicked; this is a bug")
    });
    drop(pool);
    if let Some(cache) = &cache {
        cache.flush();
        summary.windows_cached = cache.tile_hits.load(std::sync::atomic::Ordering::Relaxed)
            + cache.window_hits.load(std::sync::atomic::Ordering::Relaxed);
    }
    result?;
    summary.elapsed = started.elapsed();
    Ok(summary)
}

fn read_vcf_header(lines: &mut Lines, source: &Source) -> Result<vcf_io::Header, Error> {
    let mut parser = vcf_io::HeaderParser::new();
    let mut line = String::new();
    loop {
        let ending = lines
            .read_line(&mut line)
            .map_err(|e| source.line_error(e))?;
        let Some(ending) = ending else {
            let number = lines.line_number();
            return Err(source.vcf_error(vcf_io::ParseError {
                line: number,
                kind: if number == 0 {
                    vcf_io::ParseErrorKind::EmptyInput
                } else {
                    vcf_io::ParseErrorKind::MissingHeaderLine
                },
            }));
        };
        if parser
            .push(&line, ending, lines.line_number())
            .map_err(|e| source.vcf_error(e))?
        {
            return Ok(parser.finish());
        }
    }
}

/// Reads the leading header lines of a BED stream; returns them and the item for the first
/// line after them (a record, or the error that line gives), if any.
fn read_bed_header(lines: &mut Lines, source: &Source) -> (String, Option<Item>) {
    let mut leading = String::new();
    let mut line = String::new();
    loop {
        match lines.read_line(&mut line) {
            Ok(None) => return (leading, None),
            Ok(Some(ending)) => {
                if bed_io::line_kind(&line) == bed_io::LineKind::Header {
                    leading.push_str(&line);
                    leading.push_str(ending.as_str());
                    continue;
                }
                let mut record = bed_io::Record::default();
                let item = match record.parse_into(&line, lines.line_number()) {
                    Ok(()) => Item::Bed(record, ending),
                    Err(e) => Item::Fatal(source.bed_error(e)),
                };
                return (leading, Some(item));
            }
            Err(e) => return (leading, Some(Item::Fatal(source.line_error(e)))),
        }
    }
}

/// The reader thread for VCF data lines.
fn read_vcf(mut lines: Lines, columns: usize, source: &Source, items: &Sender<Item>) {
    let mut line = String::new();
    let mut order = OrderCheck::default();
    loop {
        let item = match lines.read_line(&mut line) {
            Ok(None) => return,
            Ok(Some(ending)) => {
                let number = lines.line_number();
                let mut record = vcf_io::Record::default();
                let parsed = if line.starts_with('#') {
                    Err(vcf_io::ParseError {
                        line: number,
                        kind: vcf_io::ParseErrorKind::HeaderAfterColumns,
                    })
                } else {
                    record.parse_into(&line, columns, number)
                };
                match parsed {
                    Ok(()) => {
                        order.check(&source.name, record.chrom(), record.position(), number);
                        Item::Vcf(record, ending)
                    }
                    Err(e) => Item::Fatal(source.vcf_error(e)),
                }
            }
            Err(e) => Item::Fatal(source.line_error(e)),
        };
        let fatal = matches!(item, Item::Fatal(_));
        if items.send(item).is_err() || fatal {
            return;
        }
    }
}

/// The reader thread for BED lines (after the leading header).
fn read_bed(mut lines: Lines, first: Option<Item>, source: &Source, items: &Sender<Item>) {
    let mut order = OrderCheck::default();
    let mut check = |record: &bed_io::Record, number| {
        order.check(&source.name, record.chrom(), record.start0(), number);
    };
    if let Some(item) = first {
        if let Item::Bed(record, _) = &item {
            check(record, lines.line_number());
        }
        let fatal = matches!(item, Item::Fatal(_));
        if items.send(item).is_err() || fatal {
            return;
        }
    } else {
        return;
    }
    let mut line = String::new();
    loop {
        let item = match lines.read_line(&mut line) {
            Ok(None) => return,
            Ok(Some(ending)) => {
                let number = lines.line_number();
                if bed_io::line_kind(&line) == bed_io::LineKind::Header {
                    Item::Text(format!("{line}{}", ending.as_str()))
                } else {
                    let mut record = bed_io::Record::default();
                    match record.parse_into(&line, number) {
                        Ok(()) => {
                            check(&record, number);
                            Item::Bed(record, ending)
                        }
                        Err(e) => Item::Fatal(source.bed_error(e)),
                    }
                }
            }
            Err(e) => Item::Fatal(source.line_error(e)),
        };
        let fatal = matches!(item, Item::Fatal(_));
        if items.send(item).is_err() || fatal {
            return;
        }
    }
}

enum Planner<'a> {
    Vcf(vcf::Planner<'a>),
    Bed(bed::Planner<'a>),
}

/// The encoder (runs on the calling thread): plans each item, in order, and passes it on.
/// Returns when the input ends, after a fatal item, or when the collector has gone.
fn encode(
    items: &Receiver<Item>,
    planned: &Sender<Planned>,
    scorer: &mut WindowScorer<'_>,
    planner: &mut Planner<'_>,
    signals: &mut InputReader,
    stop: &AtomicBool,
) {
    loop {
        let item = match items.recv_timeout(FLUSH_AFTER) {
            Ok(item) => item,
            Err(RecvTimeoutError::Timeout) => {
                if stop.load(Ordering::SeqCst) || scorer.flush().is_err() {
                    return;
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let first = scorer.next_id();
        let kind = match (item, &mut *planner) {
            (Item::Text(text), _) => Kind::Text(text),
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
        match planned.try_send(message) {
            Ok(()) => {}
            Err(TrySendError::Full(message)) => {
                // The collector waits for results: let it have the windows held here first.
                if scorer.flush().is_err() || planned.send(message).is_err() {
                    return;
                }
            }
            Err(TrySendError::Disconnected(_)) => return,
        }
        if fatal {
            let _ = scorer.flush();
            return;
        }
        if scorer.pending_for() >= FLUSH_AFTER && scorer.flush().is_err() {
            return;
        }
    }
    let _ = scorer.flush();
}

/// A record in the reorder buffer.
struct Entry {
    windows: Range<u64>,
    kind: Kind,
    results: Vec<Option<Prediction>>,
    remaining: usize,
}

enum Event {
    Planned(Option<Planned>),
    Done(Option<Done>),
    Hit(Option<(u64, Score)>),
    Idle,
}

/// Opens the build's on-disk score cache for annotation, or `None` (cache off, or a store
/// that cannot be opened: annotation then goes on without it, after a warning).
fn open_cache(
    build: &Build,
    spec: &ModelSpec,
    options: &AnnotateOptions,
) -> Option<Arc<WindowCache>> {
    let settings = options.cache.as_ref()?;
    let path = settings.dir.join(format!("{}.sqlite", build.name()));
    let stats = Arc::new(Stats::default());
    match DiskStore::open(&path, settings.max_bytes, stats.clone()) {
        Ok(store) => {
            tracing::debug!(cache = %path.display(), "using the score cache");
            Some(Arc::new(WindowCache::new(
                store,
                stats,
                window_namespace(build.name(), &spec.id(), &spec.sha256),
                &variant_for(build, spec, DEFAULT_STRIDE),
                DEFAULT_STRIDE,
                spec.window.length as u64,
                build.modality_mask(),
            )))
        }
        Err(e) => {
            tracing::warn!("{e}; annotating without the score cache");
            None
        }
    }
}

/// The collector: reorders, formats and writes. Returns when every record is written, or with
/// the first fatal error (after writing every record before it).
#[allow(clippy::too_many_arguments)]
fn collect(
    planned: &Receiver<Planned>,
    done: &Receiver<Done>,
    hits: &Receiver<(u64, Score)>,
    cache: Option<&WindowCache>,
    free: &Sender<Batch>,
    out: &mut dyn Write,
    target: &str,
    summary: &mut Summary,
    progress: &Progress,
) -> Result<(), Error> {
    let mut queue: VecDeque<Entry> = VecDeque::new();
    let mut early: HashMap<u64, Prediction> = HashMap::new();
    let (mut planned_open, mut done_open, mut hits_open) = (true, true, true);
    let (no_planned, no_done, no_hits) = (never::<Planned>(), never::<Done>(), never());
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
                Kind::Vcf(p) => p.write(entry.windows.start, &entry.results, &mut text, summary),
                Kind::Bed(p) => p.write(entry.windows.start, &entry.results, &mut text, summary),
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
        if !accepting && !done_open && !hits_open {
            return Err(
                crate::model::Error::WorkersGone("model results stopped arriving".into()).into(),
            );
        }
        let planned_rx = if accepting { planned } else { &no_planned };
        let done_rx = if done_open { done } else { &no_done };
        let hits_rx = if hits_open { hits } else { &no_hits };
        let mut event = select! {
            recv(hits_rx) -> h => Event::Hit(h.ok()),
            recv(planned_rx) -> m => Event::Planned(m.ok()),
            recv(done_rx) -> d => Event::Done(d.ok()),
            default => Event::Idle,
        };
        if let Event::Idle = event {
            flush(out)?;
            progress.update(summary, true);
            event = select! {
                recv(hits_rx) -> h => Event::Hit(h.ok()),
                recv(planned_rx) -> m => Event::Planned(m.ok()),
                recv(done_rx) -> d => Event::Done(d.ok()),
                default(Duration::from_millis(200)) => Event::Idle,
            };
        }
        match event {
            Event::Idle => {}
            Event::Hit(None) => hits_open = false,
            Event::Hit(Some((id, score))) => {
                let prediction = Prediction {
                    logit: score.logit,
                    probability: score.probability,
                };
                deliver(&mut queue, &mut early, id, prediction);
            }
            Event::Planned(None) => planned_open = false,
            Event::Done(None) => done_open = false,
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
            Event::Done(Some(finished)) => {
                let predictions = finished.result?;
                for (row, &id) in finished.batch.keys().iter().enumerate() {
                    if id == PADDING {
                        continue;
                    }
                    let prediction = Prediction {
                        logit: predictions.logit[row],
                        probability: predictions.probability[row],
                    };
                    if let Some(cache) = cache {
                        let score = Score {
                            logit: prediction.logit,
                            probability: prediction.probability,
                            share: predictions
                                .modality_share
                                .get(row)
                                .copied()
                                .unwrap_or_default(),
                        };
                        cache.store(id, &score);
                    }
                    deliver(&mut queue, &mut early, id, prediction);
                }
                let _ = free.send(finished.batch);
            }
        }
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

/// The progress line on stderr (drawn only when stderr is a terminal).
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    bytes_read: Arc<AtomicU64>,
    started: Instant,
    last: std::sync::Mutex<Instant>,
}

impl Progress {
    fn new(enabled: bool, size: Option<u64>, bytes_read: Arc<AtomicU64>) -> Self {
        use std::io::IsTerminal;
        let bar = (enabled && std::io::stderr().is_terminal()).then(|| {
            let (bar, template) = match size {
                Some(size) => (
                    indicatif::ProgressBar::with_draw_target(
                        Some(size),
                        indicatif::ProgressDrawTarget::stderr(),
                    ),
                    "{spinner} annotating: {msg} [{elapsed_precise}] {bytes}/{total_bytes} read, ETA {eta}",
                ),
                None => (
                    indicatif::ProgressBar::with_draw_target(
                        None,
                        indicatif::ProgressDrawTarget::stderr(),
                    ),
                    "{spinner} annotating: {msg} [{elapsed_precise}] {bytes} read",
                ),
            };
            bar.set_style(
                indicatif::ProgressStyle::with_template(template)
                    .expect("static progress template; this is a bug"),
            );
            bar
        });
        let now = Instant::now();
        Self {
            bar,
            bytes_read,
            started: now,
            last: std::sync::Mutex::new(now),
        }
    }

    fn update(&self, summary: &Summary, force: bool) {
        let Some(bar) = &self.bar else { return };
        let mut last = self.last.lock().expect("progress lock; this is a bug");
        if !force && last.elapsed() < Duration::from_millis(100) {
            return;
        }
        *last = Instant::now();
        let seconds = self.started.elapsed().as_secs_f64().max(1e-9);
        bar.set_position(self.bytes_read.load(Ordering::Relaxed));
        bar.set_message(format!(
            "{} records ({:.0}/s), {} scored",
            summary.records,
            summary.records as f64 / seconds,
            summary.scored
        ));
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
