//! Probability calibration of an enhancer model (`model.json` `calibration`, CONTRACT.md).
//!
//! The graph's `probability` is `sigmoid(logit)`; a model whose probabilities were found
//! over- or under-confident on its validation split carries a map from its logit to a
//! calibrated probability, fitted on that split, and the runtime applies it to every window
//! (the golden outputs hold the calibrated probability, so the parity tests check it).
//!
//! `by_modalities` holds one such map per set of present modalities (a model sure of itself
//! with all three inputs may be over-confident from sequence alone), chosen per window by its
//! modality mask, with a `default` for sets it was not fitted on.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::Modality;

/// A fitted map from logit to calibrated probability.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "method", rename_all = "lowercase", deny_unknown_fields)]
pub enum Calibration {
    /// Temperature scaling: `sigmoid(logit / temperature)`.
    Temperature {
        /// The temperature (> 0; above 1 softens over-confident probabilities).
        temperature: f64,
        /// What it was fitted on (for people; not read).
        #[serde(default)]
        fitted_on: Option<String>,
    },
    /// Isotonic regression: linear interpolation between knots `(logits[i], probabilities[i])`,
    /// constant beyond the first and the last knot.
    Isotonic {
        /// Knot logits, strictly increasing.
        logits: Vec<f64>,
        /// Knot probabilities in [0, 1], non-decreasing.
        probabilities: Vec<f64>,
        /// What it was fitted on (for people; not read).
        #[serde(default)]
        fitted_on: Option<String>,
    },
    /// One map per set of present modalities, keyed by [`modality_set`] (`"sequence"`,
    /// `"h3k27ac+accessibility"`, `"sequence+h3k27ac+accessibility"`, ...).
    #[serde(rename = "by_modalities")]
    ByModalities {
        /// Map per set (each a temperature or isotonic map).
        sets: BTreeMap<String, Calibration>,
        /// Map of the sets not listed.
        default: Box<Calibration>,
        /// What it was fitted on (for people; not read).
        #[serde(default)]
        fitted_on: Option<String>,
    },
}

/// The key of the modalities present in `mask` (model order, joined by `+`; `none` for none).
pub fn modality_set(mask: &[f32]) -> String {
    let present: Vec<&str> = Modality::ALL
        .iter()
        .zip(mask)
        .filter(|(_, &m)| m > 0.5)
        .map(|(m, _)| m.as_str())
        .collect();
    if present.is_empty() {
        "none".to_string()
    } else {
        present.join("+")
    }
}

impl Calibration {
    /// Checks the parameters; the message names the bad value.
    ///
    /// # Errors
    ///
    /// What is wrong, for [`super::Error::Spec`].
    pub fn check(&self) -> Result<(), String> {
        match self {
            Self::ByModalities { sets, default, .. } => {
                let valid: Vec<String> = (1..8u8)
                    .map(|bits| modality_set(&[0, 1, 2].map(|i| f32::from((bits >> i) & 1))))
                    .collect();
                for (key, c) in sets
                    .iter()
                    .map(|(k, c)| (k.as_str(), c))
                    .chain([("default", &**default)])
                {
                    if key != "default" && !valid.iter().any(|v| v == key) {
                        return Err(format!(
                            "calibration set {key:?} is not a set of modalities (e.g. {:?})",
                            valid[valid.len() - 1]
                        ));
                    }
                    if matches!(c, Self::ByModalities { .. }) {
                        return Err(format!("calibration set {key:?} nests by_modalities"));
                    }
                    c.check()
                        .map_err(|e| format!("calibration set {key:?}: {e}"))?;
                }
            }
            Self::Temperature { temperature, .. } => {
                if !(temperature.is_finite() && *temperature > 0.0) {
                    return Err(format!(
                        "calibration temperature must be positive, got {temperature}"
                    ));
                }
            }
            Self::Isotonic {
                logits,
                probabilities,
                ..
            } => {
                if logits.len() < 2 || logits.len() != probabilities.len() {
                    return Err(format!(
                        "isotonic calibration needs at least 2 knots and as many probabilities as logits, got {} logits and {} probabilities",
                        logits.len(),
                        probabilities.len()
                    ));
                }
                if let Some(i) = (1..logits.len())
                    .find(|&i| !(logits[i].is_finite() && logits[i] > logits[i - 1]))
                {
                    return Err(format!(
                        "isotonic calibration logits must be finite and strictly increasing (knot {i}: {} after {})",
                        logits[i],
                        logits[i - 1]
                    ));
                }
                if let Some(i) = (0..probabilities.len()).find(|&i| {
                    !(0.0..=1.0).contains(&probabilities[i])
                        || (i > 0 && probabilities[i] < probabilities[i - 1])
                }) {
                    return Err(format!(
                        "isotonic calibration probabilities must lie in [0, 1] and never decrease (knot {i}: {})",
                        probabilities[i]
                    ));
                }
            }
        }
        Ok(())
    }

    /// The calibrated probability of `logit` of a window with modality mask `mask` (computed
    /// in f64).
    pub fn apply(&self, logit: f32, mask: &[f32]) -> f32 {
        let z = f64::from(logit);
        let p = match self {
            Self::ByModalities { sets, default, .. } => {
                let c = sets.get(&modality_set(mask)).unwrap_or(default);
                return c.apply(logit, mask);
            }
            Self::Temperature { temperature, .. } => sigmoid(z / temperature),
            Self::Isotonic {
                logits,
                probabilities,
                ..
            } => {
                // first knot at or above z
                let i = logits.partition_point(|&k| k < z);
                if i == 0 {
                    probabilities[0]
                } else if i == logits.len() {
                    probabilities[i - 1]
                } else {
                    let (x0, x1) = (logits[i - 1], logits[i]);
                    let (y0, y1) = (probabilities[i - 1], probabilities[i]);
                    y0 + (y1 - y0) * (z - x0) / (x1 - x0)
                }
            }
        };
        p as f32
    }
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Calibration, String> {
        let c: Calibration = serde_json::from_str(json).map_err(|e| e.to_string())?;
        c.check().map(|()| c)
    }

    #[test]
    fn test_apply_temperature() {
        let c = parse(r#"{"method": "temperature", "temperature": 2.0}"#).unwrap();
        assert_eq!(c.apply(0.0, &ALL), 0.5);
        assert!((c.apply(2.0, &ALL) - sigmoid(1.0) as f32).abs() < 1e-7);
        assert!((c.apply(-4.0, &ALL) - sigmoid(-2.0) as f32).abs() < 1e-7);
    }

    #[test]
    fn test_apply_isotonic() {
        let c = parse(
            r#"{"method": "isotonic", "logits": [-2, 0, 2], "probabilities": [0.1, 0.3, 0.9],
                "fitted_on": "validation"}"#,
        )
        .unwrap();
        // constant outside the knots, linear between them, exact at them
        assert_eq!(c.apply(-10.0, &ALL), 0.1);
        assert_eq!(c.apply(10.0, &ALL), 0.9);
        assert_eq!(c.apply(0.0, &ALL), 0.3);
        assert!((c.apply(-1.0, &ALL) - 0.2).abs() < 1e-7);
        assert!((c.apply(1.5, &ALL) - 0.75).abs() < 1e-7);
        // monotone on a fine sweep
        let sweep: Vec<f32> = (-40..=40).map(|i| c.apply(i as f32 / 10.0, &ALL)).collect();
        assert!(sweep.windows(2).all(|w| w[0] <= w[1]));
    }

    const ALL: [f32; 3] = [1.0, 1.0, 1.0];

    #[test]
    fn test_apply_by_modalities_picks_the_window_set() {
        let c = parse(
            r#"{"method": "by_modalities",
                "sets": {"sequence": {"method": "temperature", "temperature": 4.0},
                         "h3k27ac+accessibility": {"method": "isotonic", "logits": [-1, 1], "probabilities": [0.2, 0.6]}},
                "default": {"method": "temperature", "temperature": 1.0}}"#,
        )
        .unwrap();
        assert!((c.apply(2.0, &[1.0, 0.0, 0.0]) - sigmoid(0.5) as f32).abs() < 1e-7);
        assert!((c.apply(0.0, &[0.0, 1.0, 1.0]) - 0.4).abs() < 1e-7);
        // a set it was not fitted on takes the default
        assert!((c.apply(2.0, &ALL) - sigmoid(2.0) as f32).abs() < 1e-7);
        assert_eq!(modality_set(&ALL), "sequence+h3k27ac+accessibility");
        assert_eq!(modality_set(&[0.0, 0.0, 1.0]), "accessibility");
        assert_eq!(modality_set(&[0.0, 0.0, 0.0]), "none");
    }

    #[test]
    fn test_check_errors() {
        let bad = [
            (
                r#"{"method": "temperature", "temperature": 0}"#,
                "temperature must be positive",
            ),
            (
                r#"{"method": "isotonic", "logits": [0], "probabilities": [0.5]}"#,
                "at least 2 knots",
            ),
            (
                r#"{"method": "isotonic", "logits": [0, 0], "probabilities": [0.1, 0.2]}"#,
                "strictly increasing (knot 1",
            ),
            (
                r#"{"method": "isotonic", "logits": [0, 1], "probabilities": [0.3, 0.2]}"#,
                "never decrease (knot 1: 0.2)",
            ),
            (
                r#"{"method": "isotonic", "logits": [0, 1], "probabilities": [0.3, 1.2]}"#,
                "never decrease (knot 1: 1.2)",
            ),
            (r#"{"method": "platt", "a": 1}"#, "unknown variant `platt`"),
            (
                r#"{"method": "temperature", "temperature": 1, "t": 2}"#,
                "unknown field `t`",
            ),
            (
                r#"{"method": "by_modalities", "sets": {"dna": {"method": "temperature", "temperature": 1}},
                    "default": {"method": "temperature", "temperature": 1}}"#,
                "calibration set \"dna\" is not a set of modalities",
            ),
            (
                r#"{"method": "by_modalities", "sets": {"sequence": {"method": "temperature", "temperature": -1}},
                    "default": {"method": "temperature", "temperature": 1}}"#,
                "calibration set \"sequence\": calibration temperature must be positive",
            ),
            (
                r#"{"method": "by_modalities", "sets": {},
                    "default": {"method": "by_modalities", "sets": {}, "default": {"method": "temperature", "temperature": 1}}}"#,
                "calibration set \"default\" nests by_modalities",
            ),
        ];
        for (json, needle) in bad {
            let e = parse(json).unwrap_err();
            assert!(e.contains(needle), "{json}: {e}");
        }
    }
}
