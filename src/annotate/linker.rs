//! The linked gene of a record: among the genes whose candidate elements overlap the record,
//! the one whose promoter gives such an element the highest link score (the build's link
//! model, see [`crate::track::links`]).

use std::sync::{Arc, Mutex};

use crate::genome::{Build, Contig};
use crate::pipeline::cache::Cache;
use crate::pipeline::engine::inputs_fingerprint;
use crate::track::links::{self, AlleleEdit, AlleleLink, LinkEngine};

/// Finds linked genes with the build's link model, with gene results cached in memory and in
/// the build's cache (shared with `cistrack serve` when it has a disk tier).
#[derive(Debug)]
pub struct Linker {
    engine: LinkEngine,
    /// The link model alone (no E2G, its own reach), for what alleles do to it
    /// ([`Linker::allele_links`]); `None` when not asked for.
    effects: Option<LinkEngine>,
    block: Mutex<Option<Block>>,
}

/// Records are looked up through the links of the [`BLOCK`]-aligned stretch they fall in, read
/// once for all its records (sorted input: once per stretch).
pub const BLOCK: u64 = 20_000;

/// The links of one stretch of a contig: every link whose element overlaps it, in the order of
/// the link view (genes by TSS, then each gene's links), so that the first best link wins as it
/// does in a view of one record.
#[derive(Debug)]
struct Block {
    contig: String,
    start0: u64,
    end0: u64,
    genes: Vec<String>,
    /// `(element_start, element_end, index in genes, score)`.
    links: Vec<(u64, u64, usize, f32)>,
}

impl Block {
    fn holds(&self, contig: &str, start0: u64, end0: u64) -> bool {
        self.contig == contig && self.start0 <= start0 && end0 <= self.end0
    }

    fn top(&self, start0: u64, end0: u64) -> Option<(String, f32)> {
        let mut best: Option<(usize, f32)> = None;
        for &(s, e, gene, score) in &self.links {
            if s < end0 && e > start0 && best.is_none_or(|(_, b)| score > b) {
                best = Some((gene, score));
            }
        }
        best.map(|(g, s)| (self.genes[g].clone(), s))
    }
}

impl Linker {
    /// The build's link model, or `None` when the build configures none; with `effects`, also
    /// the link model for [`Linker::allele_links`].
    ///
    /// # Errors
    ///
    /// Model errors, or a build without genes or candidates.
    pub fn open(
        build: &Arc<Build>,
        device: crate::model::Device,
        threads: usize,
        cache: Arc<Cache>,
        effects: bool,
    ) -> crate::Result<Option<Self>> {
        if !build.config().models.contains_key(links::LINK_ROLE) {
            return Ok(None);
        }
        let fingerprint = inputs_fingerprint(build);
        let engine = links::open(
            build.clone(),
            cache.clone(),
            &fingerprint,
            device,
            threads,
            true,
        )?;
        // the linked gene needs only each link's E2G score: skip the link model if it can
        let engine = engine.scores_only();
        let effects = if effects {
            Some(links::open(
                build.clone(),
                cache,
                &fingerprint,
                device,
                threads,
                false,
            )?)
        } else {
            None
        };
        Ok(Some(Self {
            engine,
            effects,
            block: Mutex::new(None),
        }))
    }

    /// Whether [`Linker::allele_links`] answers.
    pub fn has_effects(&self) -> bool {
        self.effects.is_some()
    }

    /// What `edit` does to the link model (see [`LinkEngine::allele_links`]); empty without
    /// the effects engine.
    ///
    /// # Errors
    ///
    /// Inputs that cannot be read, or a model failure.
    pub fn allele_links(
        &self,
        contig: &Contig,
        edit: AlleleEdit<'_>,
    ) -> Result<Vec<AlleleLink>, crate::Error> {
        match &self.effects {
            Some(engine) => Ok(engine.allele_links(contig, edit)?),
            None => Ok(Vec::new()),
        }
    }

    /// Model name/version.
    pub fn model_name(&self) -> &str {
        self.engine.model_name()
    }

    /// The gene with the highest link score to a candidate element overlapping
    /// `[start0, end0)`, with that score; `None` when no candidate element overlaps.
    ///
    /// # Errors
    ///
    /// Inputs that cannot be read, or a model failure.
    pub fn top(
        &self,
        contig: &Contig,
        start0: u64,
        end0: u64,
    ) -> Result<Option<(String, f32)>, crate::Error> {
        let end0 = end0.max(start0 + 1);
        let mut block = self
            .block
            .lock()
            .expect("linked-gene block poisoned; this is a bug");
        if !block
            .as_ref()
            .is_some_and(|b| b.holds(&contig.name, start0, end0))
        {
            *block = Some(self.block(contig, start0, end0)?);
        }
        Ok(block.as_ref().expect("just filled").top(start0, end0))
    }

    /// The links of the [`BLOCK`]-aligned stretch holding `[start0, end0)`.
    fn block(&self, contig: &Contig, start0: u64, end0: u64) -> Result<Block, crate::Error> {
        let start0 = start0 / BLOCK * BLOCK;
        let end0 = end0.div_ceil(BLOCK) * BLOCK;
        let view = self.engine.view(contig, start0, end0, None, || true)?;
        let mut genes = Vec::new();
        let mut links = Vec::new();
        for g in &view.genes {
            let at = genes.len();
            let before = links.len();
            links.extend(
                g.links
                    .iter()
                    .filter(|l| l.element_start < end0 && l.element_end > start0)
                    .map(|l| (l.element_start, l.element_end, at, l.score)),
            );
            if links.len() > before {
                genes.push(g.name.clone());
            }
        }
        Ok(Block {
            contig: contig.name.clone(),
            start0,
            end0,
            genes,
            links,
        })
    }
}

/// A record's linked gene: asked for by the encoder, looked up by the collector (so that the
/// link model's work never holds up the windows queued for the enhancer model).
#[derive(Debug, Clone, Default, PartialEq)]
pub enum LinkedGene {
    /// No lookup (no link model, or nothing scored).
    #[default]
    NotAsked,
    /// To look up: the interval on the contig.
    Ask {
        /// The contig.
        contig: Contig,
        /// 0-based start.
        start0: u64,
        /// 0-based exclusive end.
        end0: u64,
    },
    /// Looked up: the gene (name sanitised for the output) and its link score, if any.
    Found(Option<(String, f32)>),
}

impl LinkedGene {
    /// Answers an [`LinkedGene::Ask`] with `linker`.
    ///
    /// # Errors
    ///
    /// Inputs that cannot be read, or a model failure.
    pub fn resolve(&mut self, linker: Option<&Linker>) -> Result<(), crate::Error> {
        if let (
            LinkedGene::Ask {
                contig,
                start0,
                end0,
            },
            Some(linker),
        ) = (&*self, linker)
        {
            let found = linker.top(contig, *start0, *end0)?;
            *self = LinkedGene::Found(found.map(|(n, s)| (super::sanitize(&n), s)));
        }
        Ok(())
    }

    /// The gene and score, once found.
    pub fn get(&self) -> Option<&(String, f32)> {
        match self {
            LinkedGene::Found(found) => found.as_ref(),
            _ => None,
        }
    }
}
