//! Opening the input: a file or stdin, plain or gzip/bgzip (detected by magic bytes, not by
//! name), and its format (from `--format`, else the file name, else the first line).

use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::{Error, Format};

/// The 28-byte empty block that ends every complete BGZF file.
const BGZF_EOF: [u8; 28] = [
    0x1f, 0x8b, 0x08, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0x06, 0x00, 0x42, 0x43, 0x02, 0x00,
    0x1b, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
];

/// An opened input stream.
pub struct Input {
    /// `stdin` or the path as given.
    pub name: String,
    /// The format.
    pub format: Format,
    /// Size in bytes when the input is a regular file (for progress and ETA).
    pub size: Option<u64>,
    /// Bytes consumed from the file or stdin so far (compressed bytes for gzip input).
    pub bytes_read: Arc<AtomicU64>,
    /// True for gzip/bgzip input.
    pub compressed: bool,
    reader: Box<dyn BufRead + Send>,
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Input")
            .field("name", &self.name)
            .field("format", &self.format)
            .field("size", &self.size)
            .field("compressed", &self.compressed)
            .finish()
    }
}

impl Input {
    /// Opens `path` (`None` or `-` for stdin). The format is `format` when given, else the
    /// file name's (`.vcf`, `.vcf.gz`, `.vcf.bgz`, `.bed`, `.bed.gz`, `.bed.bgz`), else the
    /// first line's: `##fileformat=VCF` means VCF, anything else BED.
    ///
    /// # Errors
    ///
    /// [`Error::Open`] when the file cannot be opened or read.
    pub fn open(path: Option<&Path>, format: Option<Format>) -> Result<Self, Error> {
        match path.filter(|p| p.as_os_str() != "-") {
            None => Self::from_reader("stdin", Box::new(std::io::stdin()), None, format),
            Some(path) => {
                let name = path.display().to_string();
                let open_error = |source| Error::Open {
                    input: name.clone(),
                    source,
                };
                let file = std::fs::File::open(path).map_err(open_error)?;
                let metadata = file.metadata().map_err(open_error)?;
                if metadata.is_dir() {
                    return Err(open_error(std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        "it is a directory",
                    )));
                }
                let size = metadata.is_file().then_some(metadata.len());
                if metadata.is_file() {
                    warn_if_bgzf_without_eof(path);
                }
                let format = format.or_else(|| format_from_name(path));
                Self::from_reader(&name, Box::new(file), size, format)
            }
        }
    }

    /// Wraps any byte stream (decompressing it when it starts with the gzip magic bytes).
    ///
    /// # Errors
    ///
    /// [`Error::Open`] when its first bytes cannot be read.
    pub fn from_reader(
        name: &str,
        raw: Box<dyn Read + Send>,
        size: Option<u64>,
        format: Option<Format>,
    ) -> Result<Self, Error> {
        let open_error = |source| Error::Open {
            input: name.to_string(),
            source,
        };
        let bytes_read = Arc::new(AtomicU64::new(0));
        let counting = Counting {
            inner: raw,
            count: bytes_read.clone(),
        };
        let (mut reader, compressed) =
            crate::io::text::decompressed(counting).map_err(open_error)?;
        let format = match format {
            Some(format) => format,
            None => {
                let mut first = Vec::new();
                reader.read_until(b'\n', &mut first).map_err(|source| {
                    if compressed {
                        Error::Truncated {
                            input: name.to_string(),
                            line: 0,
                            source,
                        }
                    } else {
                        open_error(source)
                    }
                })?;
                let format = sniff(&first);
                reader = Box::new(BufReader::with_capacity(
                    1 << 16,
                    std::io::Cursor::new(first).chain(reader),
                ));
                format
            }
        };
        Ok(Self {
            name: name.to_string(),
            format,
            size,
            bytes_read,
            compressed,
            reader,
        })
    }

    /// The decompressed text stream.
    pub fn into_reader(self) -> Box<dyn BufRead + Send> {
        self.reader
    }
}

/// The format a file name implies, if any (case-insensitive).
///
/// # Examples
///
/// ```
/// use cistrack::annotate::{input::format_from_name, Format};
/// assert_eq!(format_from_name("calls.vcf.gz".as_ref()), Some(Format::Vcf));
/// assert_eq!(format_from_name("peaks.BED".as_ref()), Some(Format::Bed));
/// assert_eq!(format_from_name("data.txt".as_ref()), None);
/// ```
pub fn format_from_name(path: &Path) -> Option<Format> {
    let name = path.file_name()?.to_string_lossy().to_ascii_lowercase();
    let stem = name
        .strip_suffix(".gz")
        .or_else(|| name.strip_suffix(".bgz"))
        .unwrap_or(&name);
    if stem.ends_with(".vcf") {
        Some(Format::Vcf)
    } else if stem.ends_with(".bed") {
        Some(Format::Bed)
    } else {
        None
    }
}

/// The format of a stream from its first line: `##fileformat=VCF` is VCF, anything else BED.
pub fn sniff(first_line: &[u8]) -> Format {
    if first_line.starts_with(crate::io::vcf::FILEFORMAT_PREFIX.as_bytes()) {
        Format::Vcf
    } else {
        Format::Bed
    }
}

/// A gzip member cut at a member boundary still decompresses cleanly; for BGZF files the
/// missing end-of-file block is the only sign, so say so (as htslib does).
fn warn_if_bgzf_without_eof(path: &Path) {
    let check = || -> std::io::Result<bool> {
        let mut file = std::fs::File::open(path)?;
        let mut head = [0u8; 16];
        if file.read(&mut head)? < 16 {
            return Ok(false);
        }
        let bgzf = head[..2] == [0x1f, 0x8b] && head[3] & 4 != 0 && head[12..14] == *b"BC";
        let length = file.metadata()?.len();
        if !bgzf || length < 28 {
            return Ok(false);
        }
        file.seek(SeekFrom::End(-28))?;
        let mut tail = [0u8; 28];
        file.read_exact(&mut tail)?;
        Ok(tail != BGZF_EOF)
    };
    if let Ok(true) = check() {
        tracing::warn!(
            "{} has no BGZF end-of-file marker: the file may be truncated",
            path.display()
        );
    }
}

/// Counts the bytes read through it.
struct Counting {
    inner: Box<dyn Read + Send>,
    count: Arc<AtomicU64>,
}

impl Read for Counting {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    fn read_all(input: Input) -> std::io::Result<String> {
        let mut text = String::new();
        input.into_reader().read_to_string(&mut text)?;
        Ok(text)
    }

    #[test]
    fn test_from_reader_sniffs_and_decompresses() {
        let vcf = b"##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n";
        for (bytes, compressed) in [(vcf.to_vec(), false), (gzip(vcf), true)] {
            let input = Input::from_reader(
                "x",
                Box::new(std::io::Cursor::new(bytes.clone())),
                None,
                None,
            )
            .unwrap();
            assert_eq!((input.format, input.compressed), (Format::Vcf, compressed));
            let counter = input.bytes_read.clone();
            assert_eq!(read_all(input).unwrap().as_bytes(), vcf);
            assert_eq!(counter.load(Ordering::Relaxed), bytes.len() as u64);
        }
        let input = Input::from_reader("x", Box::new(&b"chr1\t1\t2\n"[..]), None, None).unwrap();
        assert_eq!(input.format, Format::Bed);
        assert_eq!(read_all(input).unwrap(), "chr1\t1\t2\n");
        let input = Input::from_reader("x", Box::new(&b""[..]), None, Some(Format::Vcf)).unwrap();
        assert_eq!(read_all(input).unwrap(), "");
        let input = Input::from_reader("x", Box::new(&b"A"[..]), None, None).unwrap();
        assert_eq!(
            (input.format, read_all(input).unwrap().as_str()),
            (Format::Bed, "A")
        );
    }

    #[test]
    fn test_truncated_gzip_is_an_error() {
        let text: String = (0..5000)
            .map(|i| format!("chr1\t{i}\t{}\n", i + 1))
            .collect();
        let bytes = gzip(text.as_bytes());
        let cut = bytes[..bytes.len() / 2].to_vec();
        let input = Input::from_reader(
            "x",
            Box::new(std::io::Cursor::new(cut)),
            None,
            Some(Format::Bed),
        )
        .unwrap();
        assert!(read_all(input).is_err());
    }

    #[test]
    fn test_format_from_name() {
        for (name, format) in [
            ("a.vcf", Some(Format::Vcf)),
            ("a.vcf.bgz", Some(Format::Vcf)),
            ("dir.bed/a.VCF.GZ", Some(Format::Vcf)),
            ("a.bed.gz", Some(Format::Bed)),
            ("a.gz", None),
            ("vcf", None),
        ] {
            assert_eq!(format_from_name(name.as_ref()), format, "{name}");
        }
    }
}
