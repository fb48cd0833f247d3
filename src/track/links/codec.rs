//! Gene results in the on-disk cache: a compact JSON value per gene, under the engine's
//! namespace.

use super::*;

impl LinkEngine {
    /// Every gene result stored on disk under this engine's namespace.
    pub fn stored_genes(&self) -> Vec<GeneLinks> {
        self.cache
            .stored_records(&self.namespace)
            .into_iter()
            .filter_map(|(key, value)| {
                let contig = key.split('\t').next()?.to_string();
                decode_gene(&value, &contig)
            })
            .collect()
    }
}

/// What a gene result holds in memory, about (for the cache's byte bound).
pub(super) fn gene_bytes(g: &GeneLinks) -> usize {
    std::mem::size_of::<GeneLinks>()
        + g.links.len() * std::mem::size_of::<Link>()
        + g.id.len()
        + g.name.len()
}

/// Serialises a gene result (JSON: compact, versioned by the namespace's model sha256s).
pub(super) fn encode_gene(g: &GeneLinks) -> Vec<u8> {
    let links: Vec<_> = g
        .links
        .iter()
        .map(|l| {
            serde_json::json!([
                l.element_start,
                l.element_end,
                l.distance,
                l.score,
                l.abc_score,
                l.activity,
                l.contact,
                l.attention,
                l.attended,
                l.contact_source.as_str(),
                l.tss_between,
            ])
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "id": g.id, "name": g.name, "tss": g.tss, "strand": g.strand.to_string(),
        "expression": g.expression, "promoter_activity": g.promoter_activity,
        "candidates": g.candidates, "links": links,
    }))
    .expect("JSON of plain values")
}

pub(super) fn decode_gene(bytes: &[u8], contig: &str) -> Option<GeneLinks> {
    let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let links = v["links"]
        .as_array()?
        .iter()
        .map(|l| {
            let l = l.as_array()?;
            let u = |i: usize| l.get(i)?.as_u64();
            let f = |i: usize| l.get(i)?.as_f64().map(|x| x as f32);
            Some(Link {
                element_start: u(0)?,
                element_end: u(1)?,
                distance: u(2)?,
                score: f(3)?,
                abc_score: f(4)?,
                activity: f(5)?,
                contact: f(6)?,
                attention: f(7)?,
                attended: l.get(8)?.as_bool()?,
                contact_source: match l.get(9)?.as_str()? {
                    "hic" => ContactSource::Hic,
                    "powerlaw" => ContactSource::Powerlaw,
                    _ => return None,
                },
                tss_between: u32::try_from(u(10)?).ok()?,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(GeneLinks {
        id: v["id"].as_str()?.to_string(),
        name: v["name"].as_str()?.to_string(),
        contig: contig.to_string(),
        tss: v["tss"].as_u64()?,
        strand: v["strand"].as_str()?.chars().next()?,
        expression: v["expression"].as_f64()? as f32,
        promoter_activity: v["promoter_activity"].as_f64()? as f32,
        candidates: v["candidates"].as_u64()? as usize,
        links,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_gene_round_trip() {
        let g = GeneLinks {
            id: "G".into(),
            name: "G".into(),
            contig: "chr1".into(),
            tss: 100,
            strand: '-',
            expression: 1.5,
            promoter_activity: 2.0,
            candidates: 1,
            links: vec![Link {
                element_start: 10,
                element_end: 20,
                distance: 85,
                score: 0.75,
                attention: 1.0,
                attended: true,
                abc_score: 1.0,
                activity: 0.25,
                contact: 1.0,
                contact_source: ContactSource::Hic,
                tss_between: 3,
            }],
        };
        assert_eq!(decode_gene(&encode_gene(&g), "chr1"), Some(g));
        assert_eq!(decode_gene(b"{}", "chr1"), None);
    }
}
