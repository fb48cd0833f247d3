//! The threads and queues of an annotation run; see the module overview in [`super`].

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{BufRead, BufWriter, Write};
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, never, select, Receiver, Sender};

use crate::genome::build::InputReader;
use crate::genome::Build;
use crate::io::text::{Ending, LineError, LineReader};
use crate::io::{bed as bed_io, vcf as vcf_io};
use crate::model::ModelSpec;
use crate::pipeline::cache::{window_namespace, Cache};
use crate::pipeline::engine::{inputs_fingerprint, Engine, EngineOptions};
use crate::pipeline::grid::DEFAULT_STRIDE;

use super::genes::NearestGenes;
use super::linker::Linker;
use super::scorer::{Outcome, Prediction, Results, WindowCache, WindowScorer};
use super::{
    bed, vcf, write_all, AnnotateOptions, Error, Format, Input, Summary, ITEM_QUEUE, MAX_IN_FLIGHT,
    PLANNED_QUEUE,
};

/// In-memory tier of annotation's cache, MiB (daemon tiles read while streaming).
const MEMORY_MIB: usize = 64;

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
    let cache = open_cache(build, options);
    let engine = Engine::start(
        Arc::new(build.clone()),
        Arc::new(spec.clone()),
        cache.clone(),
        &EngineOptions {
            stride: DEFAULT_STRIDE,
            device: options.device,
            workers: 1,
            intra_threads: options.threads,
            max_batch: options.batch_size,
            max_queued_windows: usize::MAX,
            fingerprint: inputs_fingerprint(build),
        },
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

    let window_cache = cache.disk().is_some().then(|| {
        Arc::new(WindowCache::new(
            cache.clone(),
            window_namespace(build.name(), &spec.id(), &spec.sha256),
            engine.variant(),
            engine.grid(),
            build.modality_mask(),
        ))
    });
    let linker = Linker::open(
        build,
        options.device,
        options.threads,
        cache.disk_shared().map(|d| (d, cache.stats().clone())),
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
    drop(engine);
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
        tracing::warn!("{e}; annotating without the score cache");
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
    out: &mut dyn Write,
    target: &str,
    summary: &mut Summary,
    progress: &Progress,
) -> Result<(), Error> {
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
                Kind::Vcf(mut p) => {
                    p.link_mut().resolve(linker)?;
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
