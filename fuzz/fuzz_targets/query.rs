//! The daemon's query strings (everything after `?`), for every route that takes one: never
//! panics; a query that decodes has no key twice.
#![no_main]

use cistrack::server::query::{self, EnhancersQuery, LinksQuery, TrackQuery};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(pairs) = query::decode(text) {
        let mut keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
        keys.sort_unstable();
        let n = keys.len();
        keys.dedup();
        assert_eq!(keys.len(), n, "{text:?}");
    }
    let _ = query::parse::<EnhancersQuery>(text);
    let _ = query::parse::<LinksQuery>(text);
    let _ = query::parse::<TrackQuery>(text);
});
