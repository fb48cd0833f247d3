//! A gene's inputs: its candidates (nearest first, within reach), their signals, contacts and
//! sequence windows, read through the engine's reader and cached per element.

use super::*;

/// Elements closer than this (bp) are read in one span by [`LinkEngine::prefetch_signals`].
const PREFETCH_GAP: u64 = 10_000;
/// Longest span read at once for signals, bp.
const PREFETCH_SPAN: u64 = 200_000;

impl LinkEngine {
    /// The key of a gene's record in the cache (under the engine's namespace).
    pub(super) fn record_key(&self, key: &GeneKey) -> String {
        format!("{}\t{}\t{}", key.0, key.1, key.2)
    }

    /// The cached signals of element `[start0, end0)` of `contig`.
    fn cached_signals(&self, contig: &str, start0: u64, end0: u64) -> Option<(f64, f64)> {
        self.cache
            .get_memory_record::<(f64, f64)>(&self.elements, &signal_key(contig, start0, end0))
            .map(|v| *v)
    }

    fn keep_signals(&self, contig: &str, start0: u64, end0: u64, v: (f64, f64)) {
        let key = signal_key(contig, start0, end0);
        self.cache
            .put_record(&self.elements, &key, Arc::new(v), 16, None);
    }

    /// The cached sequence input of the element window centred on `centre`.
    pub(super) fn cached_embedding(&self, contig: &str, centre: u64) -> Option<Embedding> {
        self.cache
            .get_memory_record::<Embedding>(&self.elements, &embedding_key(contig, centre))
            .map(|e| (*e).clone())
    }

    pub(super) fn keep_embedding(&self, contig: &str, centre: u64, e: Embedding) {
        let bytes = 16 + e.as_ref().map_or(0, |e| 4 * e.len());
        self.cache.put_record(
            &self.elements,
            &embedding_key(contig, centre),
            Arc::new(e),
            bytes,
            None,
        );
    }

    fn reader<'s>(&self, state: &'s mut State) -> Result<&'s mut InputReader, Error> {
        if state.reader.is_none() {
            state.reader = Some(
                self.build
                    .reader()
                    .map_err(|e| Error::Failed(Arc::new(e)))?,
            );
        }
        Ok(state.reader.as_mut().expect("set above"))
    }

    /// One element's inputs: the zero-filled means of accessibility and H3K27ac over
    /// `[start0, end0)`, each divided by its track's mean, and the sequence input of the window
    /// centred on `centre` (its cached embedding, its one-hot, or masked when too much of it is
    /// not A/C/G/T). Whatever is not cached is read in one span.
    fn element(
        &self,
        state: &mut State,
        contig: &Contig,
        (start0, end0): (u64, u64),
        centre: u64,
    ) -> Result<((f64, f64), Sequence), Error> {
        let signals = self.cached_signals(&contig.name, start0, end0);
        let embedded = self.cached_embedding(&contig.name, centre);
        if let (Some(v), Some(e)) = (signals, &embedded) {
            return Ok((v, e.clone().map_or(Sequence::Masked, Sequence::Embedded)));
        }
        let length = self.settings.sequence_length;
        let window0 = centre as i64 - (length / 2) as i64;
        let mut lo = i64::MAX;
        let mut hi = i64::MIN;
        if signals.is_none() {
            (lo, hi) = (start0 as i64, end0 as i64);
        }
        if embedded.is_none() {
            (lo, hi) = (lo.min(window0), hi.max(window0 + length as i64));
        }
        let span = self.read_span(state, contig, lo, hi)?;
        let signals = signals.unwrap_or_else(|| {
            let part = (start0 as i64 - lo) as usize..(end0 as i64 - lo) as usize;
            let v = self.signal_means(&span, part);
            self.keep_signals(&contig.name, start0, end0, v);
            v
        });
        let sequence = match embedded {
            Some(e) => e.map_or(Sequence::Masked, Sequence::Embedded),
            None => {
                let at = (window0 - lo) as usize;
                match self.one_hot(&span.sequence[at..at + length]) {
                    None => {
                        self.keep_embedding(&contig.name, centre, None);
                        Sequence::Masked
                    }
                    Some(one_hot) => Sequence::OneHot(one_hot.into()), // embedded in `run`, batched
                }
            }
        };
        Ok((signals, sequence))
    }

    /// The one-hot encoder input of a sequence window, or `None` when more than
    /// `max_n_fraction` of it is not A/C/G/T (masked, as in training).
    pub(super) fn one_hot(&self, bases: &[u8]) -> Option<Vec<f32>> {
        let other = bases
            .iter()
            .filter(|b| !matches!(b.to_ascii_uppercase(), b'A' | b'C' | b'G' | b'T'))
            .count();
        if other as f64 > self.settings.max_n_fraction * bases.len() as f64 {
            return None;
        }
        let mut one_hot = vec![0f32; 4 * bases.len()];
        one_hot_into(bases, &mut one_hot);
        Some(one_hot)
    }

    /// `[lo, hi)` of `contig` through the state's reader; a failed read drops the reader, so
    /// the next one opens the files again (a file replaced or repaired meanwhile is read).
    pub(super) fn read_span(
        &self,
        state: &mut State,
        contig: &Contig,
        lo: i64,
        hi: i64,
    ) -> Result<Span, Error> {
        let mut span = Span::default();
        let reader = self.reader(state)?;
        if let Err(e) = reader.read_span(contig, lo, hi, &mut span) {
            state.reader = None;
            return Err(Error::Failed(Arc::new(e)));
        }
        Ok(span)
    }

    /// Accessibility and H3K27ac over `part` of `span`: zero-filled means, each divided by its
    /// track's mean (0 for a missing track).
    fn signal_means(&self, span: &Span, part: std::ops::Range<usize>) -> (f64, f64) {
        let mean = |values: &[f32], scale: f64| {
            if scale > 0.0 {
                values.iter().map(|&v| v.max(0.0) as f64).sum::<f64>() / values.len() as f64 / scale
            } else {
                0.0
            }
        };
        (
            mean(&span.accessibility[part.clone()], self.scales[0]),
            mean(&span.h3k27ac[part], self.scales[1]),
        )
    }

    /// An element's normalised signals only (for candidates the link model does not see).
    fn signals(
        &self,
        state: &mut State,
        contig: &Contig,
        (start0, end0): (u64, u64),
    ) -> Result<(f64, f64), Error> {
        if let Some(v) = self.cached_signals(&contig.name, start0, end0) {
            return Ok(v);
        }
        let span = self.read_span(state, contig, start0 as i64, end0 as i64)?;
        let v = self.signal_means(&span, 0..(end0 - start0) as usize);
        self.keep_signals(&contig.name, start0, end0, v);
        Ok(v)
    }

    /// Reads the signals of the elements `intervals` (sorted by start) that are not cached yet,
    /// neighbours together: one span per run of elements less than [`PREFETCH_GAP`] apart and
    /// at most [`PREFETCH_SPAN`] long, instead of one read each (a gene within 2 Mb of an E2G
    /// model has thousands). Same values as [`LinkEngine::signals`] per element.
    fn prefetch_signals(
        &self,
        state: &mut State,
        contig: &Contig,
        intervals: &[(u64, u64)],
    ) -> Result<(), Error> {
        let missing: Vec<(u64, u64)> = intervals
            .iter()
            .copied()
            .filter(|&(s, e)| self.cached_signals(&contig.name, s, e).is_none())
            .collect();
        let mut i = 0;
        while i < missing.len() {
            let (lo, mut hi) = missing[i];
            let mut j = i + 1;
            while j < missing.len()
                && missing[j].0 < hi + PREFETCH_GAP
                && missing[j].1.max(hi) - lo <= PREFETCH_SPAN
            {
                hi = hi.max(missing[j].1);
                j += 1;
            }
            if j - i > 1 {
                let span = self.read_span(state, contig, lo as i64, hi as i64)?;
                for &(s, e) in &missing[i..j] {
                    let v = self.signal_means(&span, (s - lo) as usize..(e - lo) as usize);
                    self.keep_signals(&contig.name, s, e, v);
                }
            }
            i = j;
        }
        Ok(())
    }

    pub(super) fn prepare(
        &self,
        state: &mut State,
        contig: &Contig,
        tss: &Tss,
    ) -> Result<Prepared, Error> {
        let s = &self.settings.model;
        let t = tss.position0;
        let promoter = (t.saturating_sub(s.promoter_window), t + s.promoter_window);
        let ((pa, ph), promoter_sequence) = if self.scores_only {
            (self.signals(state, contig, promoter)?, Sequence::Masked)
        } else {
            self.element(state, contig, promoter, t)?
        };
        let promoter_features = ElementFeatures::compute(0, 1.0, pa, ph).to_array();
        let promoter_activity = (pa.max(0.0) * ph.max(0.0)).sqrt();
        let (list, longest) = self
            .candidates
            .get(&contig.name)
            .map_or((&[][..], 0), |(list, longest)| (list.as_slice(), *longest));
        // A midpoint within the reach of the TSS needs a start within the reach plus the
        // longest candidate before it, and no later than the reach after it.
        let reach = self.reach;
        let lo = t.saturating_sub(reach + longest);
        let from = list.partition_point(|&(start, _)| start < lo);
        let mut chosen: Vec<(u64, u64, u64)> = Vec::new(); // (distance, start, end)
        for &(start, end) in &list[from..] {
            if start > t + reach {
                break;
            }
            let mid = (start + end) / 2;
            let distance = mid.abs_diff(t);
            let overlaps =
                start < t + s.promoter_exclusion && end > t.saturating_sub(s.promoter_exclusion);
            if distance <= reach && !overlaps {
                chosen.push((distance, start, end));
            }
        }
        chosen.sort_unstable();
        if self.e2g.is_none() && reach == s.max_distance {
            chosen.truncate(s.max_candidates); // the link model's inputs only
        }
        let positions = self
            .tss_positions
            .get(&contig.name)
            .map_or(&[][..], Vec::as_slice);
        // the link model sees the nearest candidates within its own reach
        let attended =
            |rank: usize, distance: u64| rank < s.max_candidates && distance <= s.max_distance;
        // whose sequence window is read (and encoded) with its signals
        let with_sequence = |rank, distance| attended(rank, distance) && !self.scores_only;
        // the elements read for their signals alone, read together
        let mut signals_only: Vec<(u64, u64)> = chosen
            .iter()
            .enumerate()
            .filter(|&(rank, &(distance, _, _))| !with_sequence(rank, distance))
            .map(|(_, &(_, start, end))| (start, end))
            .collect();
        signals_only.sort_unstable();
        self.prefetch_signals(state, contig, &signals_only)?;
        let mut candidates = Vec::with_capacity(chosen.len());
        for (rank, (distance, start, end)) in chosen.into_iter().enumerate() {
            let attended = attended(rank, distance);
            let mid = (start + end) / 2;
            let ((a, h), sequence) = if with_sequence(rank, distance) {
                self.element(state, contig, (start, end), mid)?
            } else {
                (self.signals(state, contig, (start, end))?, Sequence::Masked)
            };
            let (contact, contact_source) = match self
                .contacts
                .as_ref()
                .and_then(|table| table.get(&contig.name, mid, t))
            {
                Some(v) => (v, ContactSource::Hic),
                None => (
                    powerlaw_contact(distance, s.gamma, s.min_distance),
                    ContactSource::Powerlaw,
                ),
            };
            let features = ElementFeatures::compute(distance, contact, a, h).to_array();
            // TSSs strictly between the element's midpoint and this TSS, this one excluded
            let between = e2g::count_strictly_between(positions, mid.min(t), mid.max(t));
            candidates.push(PreparedCandidate {
                cand: Candidate {
                    start0: start,
                    end0: end,
                    accessibility: a,
                    h3k27ac: h,
                },
                distance,
                contact,
                contact_source,
                features,
                sequence,
                attended,
                tss_between: between as u32,
            });
        }
        Ok(Prepared {
            tss: tss.clone(),
            promoter_features,
            promoter_activity,
            promoter_sequence,
            candidates,
        })
    }
}

fn signal_key(contig: &str, start0: u64, end0: u64) -> String {
    format!("signals\t{contig}\t{start0}\t{end0}")
}

fn embedding_key(contig: &str, centre: u64) -> String {
    format!("embedding\t{contig}\t{centre}")
}
