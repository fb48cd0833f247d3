//! Probability calibration of an enhancer model (`model.json` `calibration`, CONTRACT.md).
//!
//! The graph's `probability` is `sigmoid(logit)`; a model whose probabilities were found
//! over- or under-confident on its validation split carries a map from its logit to a
//! calibrated probability, fitted on that split, and the runtime applies it to every window
//! (the golden outputs hold the calibrated probability, so the parity tests check it).

use serde::Deserialize;

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
}

impl Calibration {
    /// Checks the parameters; the message names the bad value.
    ///
    /// # Errors
    ///
    /// What is wrong, for [`super::Error::Spec`].
    pub fn check(&self) -> Result<(), String> {
        match self {
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

    /// The calibrated probability of `logit` (computed in f64).
    pub fn apply(&self, logit: f32) -> f32 {
        let z = f64::from(logit);
        let p = match self {
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
        assert_eq!(c.apply(0.0), 0.5);
        assert!((c.apply(2.0) - sigmoid(1.0) as f32).abs() < 1e-7);
        assert!((c.apply(-4.0) - sigmoid(-2.0) as f32).abs() < 1e-7);
    }

    #[test]
    fn test_apply_isotonic() {
        let c = parse(
            r#"{"method": "isotonic", "logits": [-2, 0, 2], "probabilities": [0.1, 0.3, 0.9],
                "fitted_on": "validation"}"#,
        )
        .unwrap();
        // constant outside the knots, linear between them, exact at them
        assert_eq!(c.apply(-10.0), 0.1);
        assert_eq!(c.apply(10.0), 0.9);
        assert_eq!(c.apply(0.0), 0.3);
        assert!((c.apply(-1.0) - 0.2).abs() < 1e-7);
        assert!((c.apply(1.5) - 0.75).abs() < 1e-7);
        // monotone on a fine sweep
        let sweep: Vec<f32> = (-40..=40).map(|i| c.apply(i as f32 / 10.0)).collect();
        assert!(sweep.windows(2).all(|w| w[0] <= w[1]));
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
        ];
        for (json, needle) in bad {
            let e = parse(json).unwrap_err();
            assert!(e.contains(needle), "{json}: {e}");
        }
    }
}
