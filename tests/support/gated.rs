//! A predictor that tests hold at a gate (shared by tests/engine.rs and tests/server.rs).
#![allow(dead_code)]

use cistrack::model::Device;
use cistrack::pipeline::batcher::PADDING;

/// The real ONNX Runtime predictor behind a gate: each call first tells `started`, then waits
/// until the gate opens (its sender is dropped), so a test decides when batches finish instead
/// of assuming that the model is slow.
pub struct Gated {
    /// The real predictor.
    pub inner: cistrack::model::onnx::OrtPredictor,
    /// Told the window count of each batch (padding row excluded) as it reaches the gate.
    pub started: crossbeam_channel::Sender<usize>,
    /// Closed (every sender dropped) = open.
    pub gate: crossbeam_channel::Receiver<()>,
}

impl cistrack::model::Predictor for Gated {
    fn predict(
        &mut self,
        batch: &cistrack::model::Batch,
    ) -> Result<cistrack::model::Predictions, cistrack::model::Error> {
        let rows = batch.keys().iter().filter(|&&k| k != PADDING).count();
        let _ = self.started.send(rows);
        let _ = self.gate.recv(); // Err once the gate is open
        self.inner.predict(batch)
    }
}

/// An ONNX Runtime session on the CPU with 2 threads.
pub fn ort(spec: &cistrack::model::ModelSpec) -> cistrack::model::onnx::OrtPredictor {
    cistrack::model::onnx::OrtPredictor::new(
        spec,
        cistrack::model::onnx::SessionOptions {
            device: Device::Cpu,
            intra_threads: 2,
        },
    )
    .unwrap()
}
