//! BED lines: never panic; a record that parses has start <= end and a non-empty chrom.
#![no_main]

use cistrack::io::bed::{line_kind, LineKind, Record};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut record = Record::default();
    for (i, line) in text.split('\n').enumerate() {
        if line_kind(line) == LineKind::Header {
            continue;
        }
        if record.parse_into(line, i + 1).is_ok() {
            assert!(!record.chrom().is_empty(), "{line:?}");
            assert!(record.start0() <= record.end0(), "{line:?}");
        }
    }
});
