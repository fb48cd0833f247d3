//! Cutting a region into model windows.
//!
//! With window length `W` and stride `S` (`1 <= S <= W`), a region `[s, e)` is cut into
//! `ceil((e - s) / S)` windows. Window `i` has the *core* `[s + i·S, min(s + (i+1)·S, e))` and
//! spans `W` bases starting `(W - S) / 2` (rounded down) before its core's start, so the core
//! sits in the middle of the window. The cores partition the region exactly: every base of the
//! region is in exactly one core, and a window's score is reported for its core. Windows may
//! extend past the contig's ends; those bases are read as N with zero signal.

use crate::genome::Region;

use super::Error;

/// Window length and stride.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tiling {
    window: u64,
    stride: u64,
}

/// One model window and the core it reports for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Position in the region's window list.
    pub index: usize,
    /// 0-based start of the whole window; may be negative near a contig start.
    pub start0: i64,
    /// 0-based start of the core.
    pub core_start0: u64,
    /// 0-based exclusive end of the core.
    pub core_end0: u64,
}

impl Tiling {
    /// A tiling with `window` bases per window and cores of `stride` bases.
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

    /// Number of windows for `region`.
    pub fn count(&self, region: &Region) -> usize {
        region.len().div_ceil(self.stride) as usize
    }

    /// The windows of `region`, in order.
    ///
    /// # Examples
    ///
    /// ```
    /// use cistrack::track::Tiling;
    /// let tiling = Tiling::new(2000, 200)?;
    /// let region = cistrack::genome::Region::new("chr1", 1000, 1500)?;
    /// let w: Vec<_> = tiling.windows(&region).collect();
    /// assert_eq!(w.len(), 3);
    /// assert_eq!((w[0].start0, w[0].core_start0, w[0].core_end0), (100, 1000, 1200));
    /// assert_eq!((w[2].core_start0, w[2].core_end0), (1400, 1500));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn windows<'a>(&self, region: &'a Region) -> impl Iterator<Item = Window> + 'a {
        let (stride, lead) = (self.stride, ((self.window - self.stride) / 2) as i64);
        (0..self.count(region)).map(move |index| {
            let core_start0 = region.start0() + index as u64 * stride;
            Window {
                index,
                start0: core_start0 as i64 - lead,
                core_start0,
                core_end0: (core_start0 + stride).min(region.end0()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn test_new() {
        assert!(Tiling::new(2000, 200).is_ok());
        assert!(Tiling::new(2000, 2000).is_ok());
        assert_eq!(
            Tiling::new(2000, 0),
            Err(Error::InvalidStride {
                stride: 0,
                window: 2000
            })
        );
        assert!(Tiling::new(2000, 2001).is_err());
    }

    #[test]
    fn test_windows_near_contig_start() {
        let t = Tiling::new(2000, 200).unwrap();
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
            let tiling = Tiling::new(window, stride).unwrap();
            let region = Region::new("c", start0, start0 + len).unwrap();
            let windows: Vec<Window> = tiling.windows(&region).collect();
            prop_assert_eq!(windows.len(), tiling.count(&region));
            // brute-force oracle: each base of the region is in exactly one core
            let mut covered = vec![0u8; len as usize];
            let mut previous_end = region.start0();
            for (i, w) in windows.iter().enumerate() {
                prop_assert_eq!(w.index, i);
                prop_assert_eq!(w.core_start0, previous_end); // contiguous, in order
                prop_assert!(w.core_start0 < w.core_end0);
                prop_assert!(w.core_end0 - w.core_start0 <= stride);
                // the core lies inside its window, centred up to rounding
                let window_end = w.start0 + window as i64;
                prop_assert!(w.start0 <= w.core_start0 as i64 && w.core_end0 as i64 <= window_end);
                let lead = w.core_start0 as i64 - w.start0;
                prop_assert_eq!(lead, ((window - stride) / 2) as i64);
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
