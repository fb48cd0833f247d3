//! The one window grid of a build, shared by every command.
//!
//! With window length `W` and stride `S` (`1 <= S <= W`), window `i` of a contig (`i >= 0`) has
//! the *core* `[i·S, (i+1)·S)` and spans `W` bases starting `(W - S) / 2` (rounded down) before
//! its core's start, so the core sits in the middle of the window. The cores partition the
//! contig; a window's score is reported for its core, clipped to the region asked for. Windows
//! may extend past the contig's ends; those bases are read as N with zero signal.
//!
//! The grid is global (it starts at the contig's position 0, not at a region's start), so every
//! view of a region — the daemon's tiles, `score`, `precompute`, `export`, `annotate` on BED
//! intervals — asks for the same windows and shares one cache. A region that does not start on
//! the grid gets a first core clipped to the region (shorter than the stride).

use crate::genome::Region;

use crate::track::Error;

/// Default distance between window centres (the core length), in bases.
pub const DEFAULT_STRIDE: u64 = 200;

/// Window length and stride.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grid {
    window: u64,
    stride: u64,
}

/// One model window and the core it reports for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Global window index on the contig (core `[index·stride, (index+1)·stride)`).
    pub index: u64,
    /// 0-based start of the whole window; may be negative near a contig start.
    pub start0: i64,
    /// 0-based start of the core, clipped to the region.
    pub core_start0: u64,
    /// 0-based exclusive end of the core, clipped to the region.
    pub core_end0: u64,
}

impl Grid {
    /// A grid with `window` bases per window and cores of `stride` bases.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidStride`] unless `1 <= stride <= window`.
    pub fn new(window: u64, stride: u64) -> Result<Self, Error> {
        if stride == 0 || stride > window {
            return Err(Error::InvalidStride { stride, window });
        }
        Ok(Self { window, stride })
    }

    /// Window length.
    pub fn window(&self) -> u64 {
        self.window
    }

    /// Stride (core length).
    pub fn stride(&self) -> u64 {
        self.stride
    }

    /// Bases between a window's start and its core's start.
    pub fn lead(&self) -> u64 {
        (self.window - self.stride) / 2
    }

    /// 0-based start of window `index`.
    pub fn window_start0(&self, index: u64) -> i64 {
        (index * self.stride) as i64 - self.lead() as i64
    }

    /// The index of the window starting at `start0`, if a window of the grid starts there.
    pub fn index_at(&self, start0: i64) -> Option<u64> {
        let core = start0 + self.lead() as i64;
        (core >= 0 && core as u64 % self.stride == 0).then(|| core as u64 / self.stride)
    }

    /// Global indices `[first, end)` of the windows whose cores overlap `region`.
    pub fn index_range(&self, region: &Region) -> (u64, u64) {
        (
            region.start0() / self.stride,
            region.end0().div_ceil(self.stride),
        )
    }

    /// Number of windows for `region`.
    pub fn count(&self, region: &Region) -> usize {
        let (first, end) = self.index_range(region);
        (end - first) as usize
    }

    /// The windows of `region`, in order, cores clipped to it.
    ///
    /// # Examples
    ///
    /// ```
    /// use cistrack::pipeline::Grid;
    /// let grid = Grid::new(2000, 200)?;
    /// let region = cistrack::genome::Region::new("chr1", 1000, 1500)?;
    /// let w: Vec<_> = grid.windows(&region).collect();
    /// assert_eq!(w.len(), 3);
    /// assert_eq!((w[0].index, w[0].start0, w[0].core_start0, w[0].core_end0), (5, 100, 1000, 1200));
    /// assert_eq!((w[2].core_start0, w[2].core_end0), (1400, 1500));
    /// // off the grid: the first core is clipped to the region
    /// let region = cistrack::genome::Region::new("chr1", 1050, 1500)?;
    /// let w: Vec<_> = grid.windows(&region).collect();
    /// assert_eq!((w[0].start0, w[0].core_start0, w[0].core_end0), (100, 1050, 1200));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn windows<'a>(&self, region: &'a Region) -> impl Iterator<Item = Window> + 'a {
        let grid = *self;
        let (first, end) = self.index_range(region);
        (first..end).map(move |index| Window {
            index,
            start0: grid.window_start0(index),
            core_start0: (index * grid.stride).max(region.start0()),
            core_end0: ((index + 1) * grid.stride).min(region.end0()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn test_new() {
        assert!(Grid::new(2000, 200).is_ok());
        assert!(Grid::new(2000, 2000).is_ok());
        assert!(matches!(
            Grid::new(2000, 0),
            Err(Error::InvalidStride {
                stride: 0,
                window: 2000
            })
        ));
        assert!(Grid::new(2000, 2001).is_err());
    }

    #[test]
    fn test_index_at() {
        let g = Grid::new(2000, 200).unwrap();
        assert_eq!(g.lead(), 900);
        assert_eq!(g.index_at(-900), Some(0));
        assert_eq!(g.index_at(100), Some(5));
        assert_eq!(g.index_at(101), None);
        assert_eq!(g.index_at(-901), None);
        assert_eq!(g.window_start0(5), 100);
    }

    #[test]
    fn test_windows_near_contig_start() {
        let t = Grid::new(2000, 200).unwrap();
        let r = Region::new("chr1", 0, 200).unwrap();
        let w: Vec<_> = t.windows(&r).collect();
        assert_eq!(
            w,
            [Window {
                index: 0,
                start0: -900,
                core_start0: 0,
                core_end0: 200
            }]
        );
    }

    proptest! {
        #[test]
        fn prop_cores_partition_region(start0 in 0u64..1_000_000, len in 1u64..20_000, window in 1u64..3000, stride_frac in 0.0f64..1.0) {
            let stride = ((window as f64 * stride_frac) as u64).clamp(1, window);
            let grid = Grid::new(window, stride).unwrap();
            let region = Region::new("c", start0, start0 + len).unwrap();
            let windows: Vec<Window> = grid.windows(&region).collect();
            prop_assert_eq!(windows.len(), grid.count(&region));
            // brute-force oracle: each base of the region is in exactly one core
            let mut covered = vec![0u8; len as usize];
            let mut previous_end = region.start0();
            for (i, w) in windows.iter().enumerate() {
                prop_assert_eq!(w.index, region.start0() / stride + i as u64); // global index
                prop_assert_eq!(w.core_start0, previous_end); // contiguous, in order
                prop_assert!(w.core_start0 < w.core_end0);
                prop_assert!(w.core_end0 - w.core_start0 <= stride);
                // the window starts on the global grid and its whole core lies inside it
                prop_assert_eq!(w.start0, (w.index * stride) as i64 - ((window - stride) / 2) as i64);
                prop_assert_eq!(grid.index_at(w.start0), Some(w.index));
                let window_end = w.start0 + window as i64;
                prop_assert!(w.start0 <= w.core_start0 as i64 && w.core_end0 as i64 <= window_end);
                if i > 0 {
                    prop_assert_eq!(w.start0 - windows[i - 1].start0, stride as i64);
                }
                for p in w.core_start0..w.core_end0 {
                    covered[(p - region.start0()) as usize] += 1;
                }
                previous_end = w.core_end0;
            }
            prop_assert_eq!(previous_end, region.end0());
            prop_assert!(covered.iter().all(|&c| c == 1));
        }
    }
}
