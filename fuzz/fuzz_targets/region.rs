//! `chr:start-end` text (`--region`, `score`, `export`): never panics, and a region that parses
//! prints as text that parses back to the same region.
#![no_main]

use cistrack::genome::Region;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(region) = text.parse::<Region>() {
        assert!(region.start0() < region.end0(), "{text:?} -> {region:?}");
        let again: Region = region
            .to_string()
            .parse()
            .unwrap_or_else(|e| panic!("{text:?} -> {region} does not parse back: {e}"));
        assert_eq!(again, region, "{text:?}");
    }
});
