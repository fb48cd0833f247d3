//! Tiles and window scores as the cache stores them: keys, slots and their byte codecs.

use std::sync::Arc;

/// Windows per tile.
pub const TILE_WINDOWS: usize = 64;

pub(super) const FORMAT_VERSION: u8 = 1;

/// A window's model outputs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    /// Logit.
    pub logit: f32,
    /// Probability.
    pub probability: f32,
    /// Attention share per modality (sequence, h3k27ac, accessibility).
    pub share: [f32; 3],
}

/// One window slot of a tile.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Slot {
    /// Not computed yet.
    #[default]
    Missing,
    /// Not scorable: no A/C/G/T base, or past the contig's end.
    Skipped,
    /// Scored.
    Scored(Score),
}

/// [`TILE_WINDOWS`] slots.
#[derive(Debug, Clone, PartialEq)]
pub struct Tile {
    /// Slots in window order.
    pub slots: [Slot; TILE_WINDOWS],
}

impl Default for Tile {
    fn default() -> Self {
        Self {
            slots: [Slot::Missing; TILE_WINDOWS],
        }
    }
}

impl Tile {
    /// Serialises: version, then per slot a tag and, when scored, five little-endian f32.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + TILE_WINDOWS * 21);
        out.push(FORMAT_VERSION);
        for slot in &self.slots {
            match slot {
                Slot::Missing => out.push(0),
                Slot::Skipped => out.push(1),
                Slot::Scored(s) => {
                    out.push(2);
                    for v in [s.logit, s.probability, s.share[0], s.share[1], s.share[2]] {
                        out.extend_from_slice(&v.to_le_bytes());
                    }
                }
            }
        }
        out
    }

    /// Parses [`Tile::encode`]'s output; `None` for anything malformed.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let (&version, mut rest) = bytes.split_first()?;
        if version != FORMAT_VERSION {
            return None;
        }
        let mut tile = Tile::default();
        for slot in tile.slots.iter_mut() {
            let (&tag, tail) = rest.split_first()?;
            rest = tail;
            *slot = match tag {
                0 => Slot::Missing,
                1 => Slot::Skipped,
                2 => {
                    if rest.len() < 20 {
                        return None;
                    }
                    let f = |i: usize| {
                        f32::from_le_bytes(rest[i * 4..i * 4 + 4].try_into().expect("4 bytes"))
                    };
                    let score = Score {
                        logit: f(0),
                        probability: f(1),
                        share: [f(2), f(3), f(4)],
                    };
                    rest = &rest[20..];
                    Slot::Scored(score)
                }
                _ => return None,
            };
        }
        rest.is_empty().then_some(tile)
    }

    /// Whether a slot is still to be computed.
    pub fn has_missing(&self) -> bool {
        self.slots.contains(&Slot::Missing)
    }

    /// Merges `other` into `self`: slots known in `other` replace missing ones here.
    pub fn merge(&mut self, other: &Tile) {
        for (mine, theirs) in self.slots.iter_mut().zip(&other.slots) {
            if *mine == Slot::Missing {
                *mine = *theirs;
            }
        }
    }
}

/// The key of a tile.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TileKey {
    /// Build, model, stride and input fingerprint (see [`variant_id`]).
    pub variant: Arc<str>,
    /// FASTA contig name.
    pub contig: Arc<str>,
    /// Tile index on the contig's grid.
    pub tile: u64,
}

impl TileKey {
    pub(super) fn bytes(&self) -> Vec<u8> {
        format!("{}\t{}\t{}", self.variant, self.contig, self.tile).into_bytes()
    }
}

/// A cache namespace for one build, model and stride: `build:name/version:sha8:sSTRIDE:fingerprint8`.
pub fn variant_id(
    build: &str,
    model_id: &str,
    model_sha256: &str,
    stride: u64,
    inputs_fingerprint: &str,
) -> String {
    format!(
        "{build}:{model_id}:{}:s{stride}:{}",
        &model_sha256[..8.min(model_sha256.len())],
        &inputs_fingerprint[..8.min(inputs_fingerprint.len())]
    )
}

/// The namespace of window scores cached by content for one build and model (used by
/// `cistrack annotate`, whose windows are centred on records rather than on the tile grid):
/// `build:name/version:sha8:windows`.
pub fn window_namespace(build: &str, model_id: &str, model_sha256: &str) -> String {
    format!(
        "{build}:{model_id}:{}:windows",
        &model_sha256[..8.min(model_sha256.len())]
    )
}

/// What identifies a window's score: a SHA-256 (first 128 bits) of exactly what the model is
/// given — the bases (A, C, G, T, anything else as N; case ignored), the normalised signal bins
/// as f32 bits and the modality mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WindowDigest(pub [u8; 16]);

impl WindowDigest {
    /// The digest of one window's model input.
    pub fn of(sequence: &[u8], h3k27ac: &[f32], accessibility: &[f32], mask: [f32; 3]) -> Self {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        let bases: Vec<u8> = sequence
            .iter()
            .map(|b| match b.to_ascii_uppercase() {
                c @ (b'A' | b'C' | b'G' | b'T') => c,
                _ => b'N',
            })
            .collect();
        h.update((bases.len() as u64).to_le_bytes());
        h.update(&bases);
        for values in [h3k27ac, accessibility, &mask[..]] {
            h.update((values.len() as u64).to_le_bytes());
            for v in values {
                h.update(v.to_bits().to_le_bytes());
            }
        }
        let full = h.finalize();
        Self(full[..16].try_into().expect("16 of 32 bytes"))
    }
}

pub(super) fn window_key(namespace: &str, digest: &WindowDigest) -> Vec<u8> {
    let hex: String = digest.0.iter().map(|b| format!("{b:02x}")).collect();
    format!("{namespace}\t{hex}").into_bytes()
}

pub(super) fn encode_score(s: &Score) -> Vec<u8> {
    let mut out = Vec::with_capacity(21);
    out.push(FORMAT_VERSION);
    for v in [s.logit, s.probability, s.share[0], s.share[1], s.share[2]] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

pub(super) fn decode_score(bytes: &[u8]) -> Option<Score> {
    if bytes.len() != 21 || bytes[0] != FORMAT_VERSION {
        return None;
    }
    let f = |i: usize| f32::from_le_bytes(bytes[1 + i * 4..5 + i * 4].try_into().expect("4 bytes"));
    Some(Score {
        logit: f(0),
        probability: f(1),
        share: [f(2), f(3), f(4)],
    })
}

/// A raw `(key, value)` entry of the store.
pub type RawEntry = (Vec<u8>, Vec<u8>);
