//! The per-element features of a link model (`models/CONTRACT.md`, "Link models"):
//! [`ElementFeatures`] and the [`powerlaw_contact`] they use.

/// Per-element features, in input order.
pub const FEATURE_NAMES: [&str; 5] = [
    "distance",
    "contact",
    "activity",
    "accessibility",
    "h3k27ac",
];
/// Number of per-element features.
pub const FEATURES: usize = FEATURE_NAMES.len();
/// The feature normalisation this runtime implements (`features.normalisation` in model.json).
pub const FEATURE_NORMALISATION: &str = "window-mean/track-mean/log1p";

/// The power-law contact of an element `distance` bp from the TSS, relative to its value at
/// `min_distance`: `((min_distance + 1) / (max(distance, min_distance) + 1)) ^ gamma`.
pub fn powerlaw_contact(distance: u64, gamma: f64, min_distance: u64) -> f64 {
    let d = distance.max(min_distance) as f64;
    ((min_distance as f64 + 1.0) / (d + 1.0)).powf(gamma)
}

/// The five per-element features, in [`FEATURE_NAMES`] order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ElementFeatures {
    /// `ln(1 + d / 1000)`, `d` = |midpoint − TSS| in bp.
    pub distance: f32,
    /// Relative contact (1 for the promoter).
    pub contact: f32,
    /// `ln(1 + sqrt(a · h))`.
    pub activity: f32,
    /// `ln(1 + a)`.
    pub accessibility: f32,
    /// `ln(1 + h)`.
    pub h3k27ac: f32,
}

impl ElementFeatures {
    /// Computes the features in f64 and rounds them to f32 (`models/CONTRACT.md`).
    ///
    /// `accessibility` and `h3k27ac` are the element's zero-filled mean signal divided by the
    /// track's mean over covered bases; negative values count as 0. `contact` is
    /// [`powerlaw_contact`] (or a Hi-C value on the same scale).
    ///
    /// # Examples
    ///
    /// ```
    /// use cistrack::model::link::ElementFeatures;
    ///
    /// let promoter = ElementFeatures::compute(0, 1.0, 3.0, 3.0);
    /// assert_eq!(promoter.distance, 0.0);
    /// assert!((promoter.activity - 4f32.ln()).abs() < 1e-6);
    /// ```
    pub fn compute(distance_bp: u64, contact: f64, accessibility: f64, h3k27ac: f64) -> Self {
        let a = accessibility.max(0.0);
        let h = h3k27ac.max(0.0);
        Self {
            distance: (distance_bp as f64 / 1000.0).ln_1p() as f32,
            contact: contact as f32,
            activity: (a * h).sqrt().ln_1p() as f32,
            accessibility: a.ln_1p() as f32,
            h3k27ac: h.ln_1p() as f32,
        }
    }

    /// As an array in input order.
    pub fn to_array(self) -> [f32; FEATURES] {
        [
            self.distance,
            self.contact,
            self.activity,
            self.accessibility,
            self.h3k27ac,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_powerlaw_contact() {
        let gamma = 1.024238616787792;
        assert_eq!(powerlaw_contact(0, gamma, 5000), 1.0);
        assert_eq!(powerlaw_contact(5000, gamma, 5000), 1.0);
        let c = powerlaw_contact(100_000, gamma, 5000);
        let expected = (5001.0f64 / 100_001.0).powf(gamma);
        assert!((c - expected).abs() < 1e-15, "{c} vs {expected}");
        assert!(powerlaw_contact(50_000, gamma, 5000) > c);
    }

    #[test]
    fn test_element_features_compute() {
        let f = ElementFeatures::compute(2500, 0.5, 4.0, 1.0);
        assert!((f.distance - 3.5f64.ln() as f32).abs() < 1e-7);
        assert_eq!(f.contact, 0.5);
        assert!((f.activity - 3f64.ln() as f32).abs() < 1e-7);
        assert!((f.accessibility - 5f64.ln() as f32).abs() < 1e-7);
        assert!((f.h3k27ac - 2f64.ln() as f32).abs() < 1e-7);
        // negative signal counts as 0
        let z = ElementFeatures::compute(0, 1.0, -2.0, 3.0);
        assert_eq!((z.activity, z.accessibility), (0.0, 0.0));
        assert_eq!(f.to_array()[1], 0.5);
    }
}
