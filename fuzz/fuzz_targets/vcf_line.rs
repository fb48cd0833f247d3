//! VCF text: the header parser on the leading lines, then every later line as a data record
//! against the header's column count. Never panics; a record that parses answers every
//! accessor.
#![no_main]

use cistrack::io::text::Ending;
use cistrack::io::vcf::{HeaderParser, Record};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n').enumerate();
    let mut parser = HeaderParser::new();
    // an input that starts with "##" is read as a header first; otherwise every line is a
    // record against the 8 fixed columns
    let mut columns = 8;
    if text.starts_with("##") {
        let mut done = false;
        for (i, line) in lines.by_ref() {
            match parser.push(line, Ending::Lf, i + 1) {
                Ok(true) => {
                    done = true;
                    break;
                }
                Ok(false) => {}
                Err(_) => return,
            }
        }
        if !done {
            return;
        }
        columns = parser.finish().columns;
    }
    let mut record = Record::default();
    for (i, line) in lines {
        let parsed = record.parse_into(line, columns, i + 1);
        if parsed.is_ok() {
            assert!(!record.chrom().is_empty());
            let _ = record.position();
            assert!(record.alleles_valid(), "{line:?}");
            assert!(record.alternates().all(|a| a.is_ok()), "{line:?}");
            let _ = (record.reference(), record.info(), record.info_range());
        }
    }
});
