//! What a cache key names: the build, the model (id and sha256), the stride and a fingerprint of
//! the inputs, so that a changed input or model never reads back stale scores.

use crate::genome::Build;
use crate::model::ModelSpec;

use super::tile::variant_id;

/// A fingerprint of everything outside the model that a score depends on: FASTA and signal
/// paths, sizes and modification times, signal scales, stride.
pub fn inputs_fingerprint(build: &Build) -> String {
    use sha2::Digest;
    let add = add_file_identity;
    let mut h = sha2::Sha256::new();
    add(&mut h, &build.config().fasta);
    for s in build.signals() {
        add(&mut h, s.track.path());
        if let Some(f) = s.track.fragments() {
            // which cells: the group table and the group
            if let Some(table) = &f.groups_path {
                add(&mut h, table);
            }
            h.update(f.group_name().as_bytes());
        }
        h.update(s.modality.as_str().as_bytes());
        h.update(s.scale.to_le_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Feeds a file's path, size and modification time to a digest (what the cache namespaces
/// use to notice that an input changed). The path is made absolute first (symbolic links
/// resolved), so that commands run from other folders, or with the config named by another
/// path, share the cache.
pub fn add_file_identity(h: &mut sha2::Sha256, path: &std::path::Path) {
    use sha2::Digest;
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    h.update(path.to_string_lossy().as_bytes());
    if let Ok(meta) = std::fs::metadata(&path) {
        h.update(meta.len().to_le_bytes());
        if let Ok(modified) = meta.modified() {
            let nanos = modified
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            h.update(nanos.to_le_bytes());
        }
    }
}

/// The cache namespace an engine for `build`, `spec` and `stride` reads and writes.
pub fn variant_for(build: &Build, spec: &ModelSpec, stride: u64) -> String {
    variant_id(
        build.name(),
        &spec.id(),
        &spec.sha256,
        stride,
        &inputs_fingerprint(build),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_a_file_named_two_ways_has_one_identity() {
        use sha2::Digest;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("genome.fa");
        std::fs::write(&file, b">a\nACGT\n").unwrap();
        let digest = |p: &std::path::Path| {
            let mut h = sha2::Sha256::new();
            add_file_identity(&mut h, p);
            h.finalize()
        };
        let before = digest(&file);
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        assert_eq!(before, digest(&dir.path().join("sub/../genome.fa")));
        std::fs::write(&file, b">a\nACGTA\n").unwrap();
        assert_ne!(before, digest(&file), "a changed file has another identity");
    }
}
